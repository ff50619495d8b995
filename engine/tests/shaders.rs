//! Every WGSL kernel variant parses and validates with naga (the compiler wgpu uses).

use lowbit::gpu::Kernel;

#[test]
fn every_kernel_variant_validates_with_naga() {
    let mut failures = Vec::new();
    for k in Kernel::all() {
        let src = k.wgsl();
        let module = match naga::front::wgsl::parse_str(&src) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{}: parse error\n{}", k.name(), e.emit_to_string(&src)));
                continue;
            }
        };
        // unpack2x16float is core WGSL; naga gates it behind this capability for old GL targets.
        let mut caps = naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32;
        if k.needs_subgroups() {
            caps |= naga::valid::Capabilities::SUBGROUP;
        }
        let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
        if k.needs_subgroups() {
            v.subgroup_stages(naga::valid::ShaderStages::COMPUTE);
            v.subgroup_operations(naga::valid::SubgroupOperationSet::all());
        }
        if let Err(e) = v.validate(&module) {
            failures.push(format!("{}: validation error\n{}", k.name(), e.emit_to_string(&src)));
        } else {
            println!("naga ok: {}", k.name());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_shader_file_is_used_by_a_kernel() {
    let all: String = Kernel::all().iter().map(|k| k.wgsl()).collect();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shaders");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(all.contains(&text), "{} is not part of any kernel", path.display());
    }
}
