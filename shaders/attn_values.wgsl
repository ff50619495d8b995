// Attention step 2 of 2, the softmax folded in: o[t, h, d] = Σ_j e_j · v[j, h / group, d] / Σ_j e_j
// with e_j = exp(s[h, t, j] − max_j s[h, t, j]) over keys j <= pos0 + t (the last `window` of them
// with a sliding window). One invocation per
// (token, head, dim); each finds its row's maximum and sum itself, so no barrier and no pass between.
@group(0) @binding(0) var<storage, read> s: array<f32>;       // [heads, m, n_kv] scores
// binding 1: the cache [2, n_ctx, kv_heads, head_dim], values from value v_base on (kv_{f32,f16,int8}.wgsl)
@group(0) @binding(2) var<storage, read_write> o: array<f32>; // [m, heads, head_dim]

struct Params {
    m: u32,
    heads: u32,
    kv_heads: u32,
    head_dim: u32,
    v_base: u32, // first value of the value half of the cache
    window: u32, // keys a query sees (a sliding window), 0: all
    _pad1: u32,
    _pad2: u32,
}
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<uniform> step: Step;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_id(gid, nwg);
    if (idx >= p.m * p.heads * p.head_dim) { return; }
    let n_kv = step.pos0 + p.m;
    let d = idx % p.head_dim;
    let th = idx / p.head_dim; // t * heads + h
    let t = th / p.heads;
    let h = th % p.heads;
    let kvh = h / (p.heads / p.kv_heads);
    let so = (h * p.m + t) * n_kv;
    let last = step.pos0 + t;
    var first = 0u;
    if (p.window != 0u && last + 1u > p.window) { first = last + 1u - p.window; }
    var mx = s[so + first];
    for (var j = first + 1u; j <= last; j++) {
        mx = max(mx, s[so + j]);
    }
    var sum = 0.0;
    var acc = 0.0;
    for (var j = first; j <= last; j++) {
        let e = exp(s[so + j] - mx);
        sum += e;
        acc += e * kv_load(p.v_base + (j * p.kv_heads + kvh) * p.head_dim + d);
    }
    o[idx] = acc / sum;
}
