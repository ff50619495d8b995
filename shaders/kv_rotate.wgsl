// The rotated KV formats' other half: queries divided by their kv head's key scales λ
// (`kv_balance.wgsl`: the stored keys were multiplied by them) and rotated like the stored keys
// before the scores, and the attention output rotated back after the values (hadamard.wgsl), in
// place over heads of m rows. One invocation per (row, head, block of r).
@group(0) @binding(0) var<storage, read_write> x: array<f32>; // [m, stride], heads · head_dim at the start of a row

struct Params {
    m: u32,
    heads: u32,
    head_dim: u32,
    stride: u32,
    r: u32,       // the rotation block
    inverse: u32, // 1: rotate back (the output: no scales)
    kv_heads: u32,
    scale_at: u32, // the layer's key scales in scales
    scaled: u32,   // 1: divide by them before rotating (never with inverse)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> scales: array<f32>; // [.., kv_heads · head_dim]

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_id(gid, nwg);
    let blocks = p.head_dim / p.r;
    if (idx >= p.m * p.heads * blocks) { return; }
    let b = idx % blocks;
    let th = idx / blocks;
    let h = th % p.heads;
    let o = (th / p.heads) * p.stride + h * p.head_dim + b * p.r;
    let s = p.scale_at + (h / (p.heads / p.kv_heads)) * p.head_dim + b * p.r;
    var v: array<f32, ROT_MAX>;
    for (var i = 0u; i < p.r; i++) {
        v[i] = x[o + i];
        if (p.scaled != 0u) { v[i] /= scales[s + i]; }
    }
    rotate(&v, p.r, p.r, b * p.r, p.head_dim, p.inverse != 0u);
    for (var i = 0u; i < p.r; i++) {
        x[o + i] = v[i];
    }
}
