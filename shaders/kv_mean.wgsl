// The mean key of each channel over the first n positions of a layer's f32 cache (keys first,
// [n_ctx, kv_dim]): out[at + e] = Σ_t k[t, e] / n. One invocation per channel; what the 4- and
// 3-bit caches subtract from every key before they code it (rope_store.wgsl).
@group(0) @binding(0) var<storage, read> kv: array<f32>;        // [n_ctx, kv_dim] keys, then values
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // [layers, kv_dim]

struct Params {
    n: u32,
    kv_dim: u32,
    at: u32,
    _pad: u32,
}
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = linear_id(gid, nwg);
    if (e >= p.kv_dim) { return; }
    var s = 0.0;
    for (var t = 0u; t < p.n; t++) {
        s += kv[t * p.kv_dim + e];
    }
    out[p.at + e] = s / f32(max(p.n, 1u));
}
