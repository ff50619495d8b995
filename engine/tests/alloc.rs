//! Host allocations of a decode step: recording a layer allocates nothing on the CPU side (no
//! config clone, no bind-group key, no parameter words, no matrix handle), so recording a step
//! allocates as much at 8 layers as at 2, but for the doublings of wgpu's command list (which
//! holds 4 times the commands). A counting global allocator counts the test thread's allocations
//! while a counter is on; a test binary of its own, so no other test shares the allocator.
//!
//! The whole step (submission, argmax, read-back) is printed too: it grows by about one
//! allocation per dispatch inside wgpu-core, which collects each dispatch's buffer transitions into
//! a new `Vec` when it encodes the pass (`CommandEncoder::drain_barriers`), outside lowbit.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use lowbit::gguf::Gguf;
use lowbit::gpu::Gpu;
use lowbit::model::gpu::GpuBackend;
use lowbit::model::{forward, Backend};
use lowbit::synth::{self, Shape};
use lowbit::Precision;
use pollster::block_on;

/// Counts the allocations (and reallocations) of threads that turned counting on.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

const VOCAB: usize = 256;
const STEPS: usize = 8;

/// Host allocations per greedy decode step of a bare model of `layers` layers at `p`, after a
/// prefill and two warm-up steps (which make the step's buffers and bind groups): `(recording the
/// step's forward pass, the whole step)`. The whole step adds the submission, wgpu's encoding of
/// the pass, the argmax and its read-back. Checks that the counted steps created no GPU object.
fn per_step(gpu: &Gpu, layers: usize, p: Precision) -> (f64, f64) {
    let bytes = synth::bare(&Shape { layers, ..Shape::TINY }, VOCAB, 1).unwrap();
    let g = Gguf::parse(&bytes).unwrap();
    let mut b = GpuBackend::load(gpu, &g, p, 64).unwrap();
    let cfg = b.cfg.clone();
    let prompt: Vec<u32> = (1..9).collect();
    let l = forward(&cfg, &mut b, &prompt, 0, false).unwrap();
    let mut next = block_on(b.argmax(&l)).unwrap();
    let mut pos = prompt.len();
    let (mut recording, mut whole, mut created) = (0, 0, gpu.created());
    for step in 0..2 + STEPS {
        if step == 2 {
            created = gpu.created();
        }
        let mut l = None;
        let r = allocations(|| l = Some(forward(&cfg, &mut b, &[next], pos, false).unwrap()));
        let w = r + allocations(|| next = block_on(b.argmax(&l.take().unwrap())).unwrap());
        pos += 1;
        if step >= 2 {
            (recording, whole) = (recording + r, whole + w);
        }
    }
    assert_eq!(gpu.created(), created, "{layers} layers at {p}: decode steps after the first two created GPU objects");
    (recording as f64 / STEPS as f64, whole as f64 / STEPS as f64)
}

#[test]
fn a_decode_steps_host_allocations_do_not_grow_with_its_layers() {
    let Some(gpu) = common::gpu() else { return };
    for p in Precision::ALL {
        let ((rec2, whole2), (rec8, whole8)) = (per_step(&gpu, 2, p), per_step(&gpu, 8, p));
        println!("{p}: host allocations per decode step, recording {rec2} at 2 layers, {rec8} at 8; whole step {whole2} and {whole8}");
        // One allocation per layer would add 6; wgpu's command list doubles twice.
        assert!(rec8 <= rec2 + 2.0, "{p}: recording a decode step allocates more with more layers ({rec2} at 2 layers, {rec8} at 8)");
    }
}
