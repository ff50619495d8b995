// Append keys or values to a KV cache: src[0 .. n) go to cache values offset .. offset + n, in the
// cache's format (composed with one kv_{f32,f16,int8}.wgsl). One invocation per KV_UNIT values.
@group(0) @binding(0) var<storage, read> src: array<f32>; // [n] = [m, kv_heads * head_dim]

struct Params {
    n: u32,
    offset: u32, // pos0 * kv_heads * head_dim
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let u = linear_id(gid, nwg);
    if (u * KV_UNIT >= p.n) { return; }
    var v: array<f32, KV_UNIT>;
    for (var j = 0u; j < KV_UNIT; j++) {
        v[j] = src[u * KV_UNIT + j];
    }
    kv_store_unit(p.offset + u * KV_UNIT, v);
}
