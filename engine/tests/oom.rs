//! A device that runs out of memory: what is made inside `Gpu::oom_scope` fails with a typed
//! `Error::OutOfMemory`, and the device stays usable. Real memory runs out here: the test runs
//! itself again in a child process whose address space is capped (`ulimit -v`), where lavapipe's
//! device memory (host memory) runs out long before the machine's.

mod common;

use lowbit::gpu::Gpu;
use lowbit::Error;
use pollster::block_on;

const CHILD: &str = "LOWBIT_OOM_CHILD";
/// The child's address space: enough for lavapipe, its threads and a few buffers.
const LIMIT_KIB: u64 = 3 << 20;

#[test]
fn running_out_of_gpu_memory_is_a_named_error_and_the_device_goes_on() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    // Without an adapter (outside CI) `common::gpu` skips; in CI it fails loudly.
    if common::gpu().is_none() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {LIMIT_KIB}; exec timeout 120 \"$0\" \"$@\""))
        .arg(&exe)
        .args(["--exact", "running_out_of_gpu_memory_is_a_named_error_and_the_device_goes_on", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("child: {stdout}\n{stderr}");
    assert!(out.status.success(), "the child failed ({:?})", out.status);
    assert!(stdout.contains("out of GPU memory: test buffers:"), "{stdout}");
}

fn child() {
    let gpu = block_on(Gpu::new()).expect("an adapter");
    let size = gpu.binding_limit().min(256 << 20);
    let scope = gpu.oom_scope("test buffers");
    let mut held = vec![];
    // Past the address space many times over: some allocation must fail.
    for _ in 0..(4 * (LIMIT_KIB << 10) / size) {
        held.push(gpu.zeros("big", (size / 4) as usize).expect("within the adapter's limits"));
    }
    match block_on(scope.check()) {
        Err(e @ Error::OutOfMemory(_)) => println!("{e}"),
        other => panic!("expected OutOfMemory after {} buffers of {size} bytes, got {other:?}", held.len()),
    }
    drop(held);
    // The device goes on: nothing else was reported, and a small buffer round-trips.
    gpu.check().expect("no error outside the scope");
    let b = gpu.storage_f32("small", &[1.0, 2.0]).unwrap();
    assert_eq!(block_on(gpu.read_f32(&b, 2)).unwrap(), [1.0, 2.0]);
    println!("a small buffer round-trips after the out-of-memory error");
}
