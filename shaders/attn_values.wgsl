// Attention step 3 of 3: o[t, h, d] = Σ_{j <= pos0 + t} prob[h, t, j] · v[j, h / group, d].
// One invocation per (token, head, dim).
@group(0) @binding(0) var<storage, read> prob: array<f32>;    // [heads, m, n_kv] (softmaxed scores)
// binding 1: the value cache [>= n_kv, kv_heads, head_dim], read with kv_load (kv_{f32,f16,int8}.wgsl)
@group(0) @binding(2) var<storage, read_write> o: array<f32>; // [m, heads, head_dim]

struct Params {
    m: u32,
    heads: u32,
    kv_heads: u32,
    head_dim: u32,
    pos0: u32,
    n_kv: u32,
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_id(gid, nwg);
    if (idx >= p.m * p.heads * p.head_dim) { return; }
    let d = idx % p.head_dim;
    let th = idx / p.head_dim; // t * heads + h
    let t = th / p.heads;
    let h = th % p.heads;
    let kvh = h / (p.heads / p.kv_heads);
    let po = (h * p.m + t) * p.n_kv;
    var acc = 0.0;
    for (var j = 0u; j <= p.pos0 + t; j++) {
        acc += prob[po + j] * kv_load((j * p.kv_heads + kvh) * p.head_dim + d);
    }
    o[idx] = acc;
}
