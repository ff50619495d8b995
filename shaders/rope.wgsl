// Rotary position embedding, in place. Token t is at position pos0 + t. Pair i (< n_rot / 2)
// rotates by pos · base^(-2i / n_rot): dims (2i, 2i+1) normally, (i, i + n_rot/2) for GPT-NeoX.
// One invocation per (token, head, pair).
@group(0) @binding(0) var<storage, read_write> x: array<f32>; // [m, heads, head_dim]

struct Params {
    m: u32,
    heads: u32,
    head_dim: u32,
    n_rot: u32,
    pos0: u32,
    neox: u32, // 1: GPT-NeoX pairs
    base: f32,
    _pad: u32,
}
@group(0) @binding(1) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_id(gid, nwg);
    let half = p.n_rot / 2u;
    if (idx >= p.m * p.heads * half) { return; }
    let i = idx % half;
    let th = idx / half; // token * heads + head
    let pos = f32(p.pos0 + th / p.heads);
    let theta = pos * pow(p.base, -2.0 * f32(i) / f32(p.n_rot));
    let c = cos(theta);
    let s = sin(theta);
    let o = th * p.head_dim;
    var a = o + 2u * i;
    var b = a + 1u;
    if (p.neox != 0u) {
        a = o + i;
        b = a + half;
    }
    let x0 = x[a];
    let x1 = x[b];
    x[a] = x0 * c - x1 * s;
    x[b] = x0 * s + x1 * c;
}
