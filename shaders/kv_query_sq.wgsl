// Each key channel's sum of the squared queries that meet it, over m rows of a stacked projection
// (q first in a row of `stride`, after RoPE): out[at + e] += Σ_t Σ_{h of kv head e / head_dim}
// q[t, h, e % head_dim]², the query heads of a group folded onto their kv head. Added to what out
// holds, so a calibration text may come in several passes. One invocation per key channel; what
// `kv_balance.wgsl` weighs each channel's key error by.
@group(0) @binding(0) var<storage, read> q: array<f32>;          // [m, stride], heads · head_dim first
@group(0) @binding(1) var<storage, read_write> out: array<f32>;  // [.., kv_heads · head_dim]

struct Params {
    m: u32,
    heads: u32,
    kv_heads: u32,
    head_dim: u32,
    stride: u32,
    at: u32,
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = linear_id(gid, nwg);
    if (e >= p.kv_heads * p.head_dim) { return; }
    let g = p.heads / p.kv_heads;
    let first = (e / p.head_dim) * g * p.head_dim + e % p.head_dim;
    var s = 0.0;
    for (var t = 0u; t < p.m; t++) {
        for (var j = 0u; j < g; j++) {
            let v = q[t * p.stride + first + j * p.head_dim];
            s += v * v;
        }
    }
    out[p.at + e] += s;
}
