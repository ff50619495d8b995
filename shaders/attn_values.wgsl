// Attention step 3 of 4: o[t0 + t, h, d] = Σ_c f_c Σ_{j in chunk c} e_j · v[j, h / group, d] / Σ_c f_c L_c
// with f_c = exp(M_c − max_c M_c), from attn_softmax's e_j and per-chunk (M_c, L_c), over the
// chunks of the keys row t sees, cut into splits of SPLIT chunks (flash-decoding: a long row is
// many invocations' work). Each split writes its share of o relative to its own largest chunk
// maximum M_s, with L_s = Σ exp(M_c − M_s) L_c over its chunks; step 4 (attn_merge) merges the
// splits as step 3 merges chunks. One invocation per (split, row,
// head, 8 dims): e_j and a block's scale are read once for 8 values (kv_load8; head_dim a
// multiple of 8), and no exponential is taken per key.
@group(0) @binding(0) var<storage, read_write> s: array<f32>; // [heads, rows, n_kv] e_j, stats, then the splits' o
// binding 1: the cache [2, n_ctx, kv_heads, head_dim], values from value v_base on (kv_*.wgsl)

struct Params {
    rows: u32,
    heads: u32,
    kv_heads: u32,
    head_dim: u32,
    v_base: u32, // first value of the value half of the cache
    window: u32, // keys a query sees (a sliding window), 0: all
    t0: u32,
    _pad0: u32,
}
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<uniform> step: Step;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_id(gid, nwg);
    let octs = p.head_dim / 8u;
    let n_kv = step.pos0 + p.t0 + p.rows;
    let chunks = (n_kv + CHUNK - 1u) / CHUNK;
    let splits = (chunks + SPLIT - 1u) / SPLIT;
    let per_split = p.rows * p.heads * octs;
    if (idx >= splits * per_split) { return; }
    let sp = idx / per_split;
    let d = (idx % octs) * 8u;
    let th = idx % per_split / octs; // t * heads + h
    let t = th / p.heads;
    let h = th % p.heads;
    let kvh = h / (p.heads / p.kv_heads);
    let last = step.pos0 + p.t0 + t;
    var first = 0u;
    if (p.window != 0u && last + 1u > p.window) { first = last + 1u - p.window; }
    // This split's chunks of the row's (none where the row is shorter or its window later).
    let c0 = max(first / CHUNK, sp * SPLIT);
    let c1 = min(last / CHUNK, sp * SPLIT + SPLIT - 1u);
    let ht = h * p.rows + t;
    let so = ht * n_kv;
    let st = p.heads * p.rows * n_kv + 2u * ht * chunks;
    var mx = -1e30;
    for (var c = c0; c <= c1; c++) {
        mx = max(mx, s[st + 2u * c]);
    }
    let stride = p.kv_heads * p.head_dim;
    let vo = p.v_base + kvh * p.head_dim + d;
    var sum = 0.0;
    var a = vec4<f32>(0.0);
    var b = vec4<f32>(0.0);
    for (var c = c0; c <= c1; c++) {
        let lo = max(c * CHUNK, first);
        let hi = min(c * CHUNK + CHUNK, last + 1u);
        var pa = vec4<f32>(0.0);
        var pb = vec4<f32>(0.0);
        for (var j = lo; j < hi; j++) {
            let e = s[so + j];
            let v = kv_load8(vo + j * stride);
            pa += e * v.lo;
            pb += e * v.hi;
        }
        let f = exp(s[st + 2u * c] - mx);
        sum += f * s[st + 2u * c + 1u];
        a += f * pa;
        b += f * pb;
    }
    // After the stats: the splits' shares [splits, rows, heads, head_dim], then their (M_s, L_s)
    // [splits, rows, heads].
    let shares = p.heads * p.rows * (n_kv + 2u * chunks);
    let oo = shares + sp * p.rows * p.heads * p.head_dim + th * p.head_dim + d;
    s[oo] = a.x;
    s[oo + 1u] = a.y;
    s[oo + 2u] = a.z;
    s[oo + 3u] = a.w;
    s[oo + 4u] = b.x;
    s[oo + 5u] = b.y;
    s[oo + 6u] = b.z;
    s[oo + 7u] = b.w;
    if (d == 0u) {
        let ml = shares + splits * p.rows * p.heads * p.head_dim + 2u * (sp * p.rows * p.heads + th);
        s[ml] = mx;
        s[ml + 1u] = sum;
    }
}
