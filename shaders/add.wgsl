// a += b, elementwise (the residual connection).
@group(0) @binding(0) var<storage, read_write> a: array<f32>; // [len]
@group(0) @binding(1) var<storage, read> b: array<f32>;       // [len]

struct Params {
    len: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= p.len) { return; }
    a[i] = a[i] + b[i];
}
