// out[t, i] = act(gu[t, i]) · gu[t, n + i]: the gated feed-forward's gate over the stacked gate and
// up projections of m tokens (prefill; decode fuses this into the matvec). `act` is composed in
// from one act_{silu,gelu}.wgsl: SwiGLU or GeGLU.
@group(0) @binding(0) var<storage, read> gu: array<f32>;        // [m, 2n]
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // [m, n]

struct Params {
    m: u32,
    n: u32,
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= p.m * p.n) { return; }
    let t = i / p.n;
    out[i] = act(gu[t * 2u * p.n + i % p.n]) * gu[t * 2u * p.n + p.n + i % p.n];
}
