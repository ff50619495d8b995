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

#[test]
fn kernel_params_match_their_wgsl_structs_member_by_member() {
    // The host fills `gpu::params` structs by field name; the shader reads its `Params` (and
    // `Step`) by member. Same names, same offsets, same size, or the test says which differs.
    let mut failures = Vec::new();
    for k in Kernel::all() {
        let module = naga::front::wgsl::parse_str(&k.wgsl()).expect("parses (checked above)");
        let uniforms: Vec<_> = module.global_variables.iter().filter(|(_, g)| g.space == naga::AddressSpace::Uniform).collect();
        if uniforms.len() != k.uniforms().len() {
            failures.push(format!("{}: {} uniforms in WGSL, {} described in gpu::params", k.name(), uniforms.len(), k.uniforms().len()));
        }
        for (var, (wgsl_name, fields, size)) in k.uniforms() {
            let Some((_, gv)) = uniforms.iter().find(|(_, g)| g.name.as_deref() == Some(var)) else {
                failures.push(format!("{}: no uniform `{var}`", k.name()));
                continue;
            };
            let ty = &module.types[gv.ty];
            let naga::TypeInner::Struct { members, span } = &ty.inner else {
                failures.push(format!("{}: `{var}` is not a struct", k.name()));
                continue;
            };
            let got: Vec<(String, u32)> = members.iter().map(|m| (m.name.clone().unwrap_or_default(), m.offset)).collect();
            let want: Vec<(String, u32)> = fields.iter().map(|(n, o)| (n.to_string(), *o as u32)).collect();
            if ty.name.as_deref() != Some(wgsl_name) || got != want || *span as usize != size {
                failures.push(format!(
                    "{}: `{var}` is {:?} {got:?} ({span} bytes) in WGSL, {wgsl_name} {want:?} ({size} bytes) in Rust",
                    k.name(),
                    ty.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
