// Per-head RMSNorm of the q and k heads of the stacked projection qkv [m, (heads + 2·kv_heads)·hd],
// in place: a q head with w[0 .. hd], a k head with w[hd .. 2·hd]; v is left alone (Gemma 3's and
// Qwen3's q/k norms, before RoPE). One invocation per (token, head) (no barrier).
@group(0) @binding(0) var<storage, read_write> qkv: array<f32>; // [m, (heads + 2·kv_heads)·hd]
@group(0) @binding(1) var<storage, read> w: array<f32>;         // [2, hd]: q's weights, k's

struct Params {
    m: u32,
    heads: u32,
    kv_heads: u32,
    head_dim: u32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = linear_id(gid, nwg);
    let per = p.heads + p.kv_heads;
    if (r >= p.m * per) { return; }
    let t = r / per;
    let h = r % per;
    let o = t * (p.heads + 2u * p.kv_heads) * p.head_dim + h * p.head_dim;
    let wo = select(p.head_dim, 0u, h < p.heads);
    var ss = 0.0;
    for (var i = 0u; i < p.head_dim; i++) {
        ss += qkv[o + i] * qkv[o + i];
    }
    let s = 1.0 / sqrt(ss / f32(p.head_dim) + p.eps);
    for (var i = 0u; i < p.head_dim; i++) {
        qkv[o + i] = qkv[o + i] * s * w[wo + i];
    }
}
