// Attention step 3 of 4: o[t0 + t, h, d] = Σ_c f_c Σ_{j in chunk c} e_j · v[j, h / group, d] / Σ_c f_c L_c
// with f_c = exp(M_c − max_c M_c), from attn_softmax's e_j and per-chunk (M_c, L_c), over the
// chunks of the keys row t sees, cut into splits of SPLIT chunks (flash-decoding: a long row is
// many invocations' work). Each split writes its share of o relative to its own largest chunk
// maximum M_s, with L_s = Σ exp(M_c − M_s) L_c over its chunks; step 4 (attn_merge) merges the
// splits as step 3 merges chunks. One invocation per (split, row, kv head, up to GT of its query
// heads, 8 dims): each value is decoded once for all those heads (kv_load8; head_dim a multiple
// of 8), and no exponential is taken per key. Values in a row's recent window are read exactly
// (kv_window.wgsl).
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
    recent: u32, // kv_window.wgsl's Recent
    slots: u32,
    ring_at: u32,
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<uniform> step: Step;
@group(0) @binding(4) var<storage, read> stage: array<u32>; // the step's exact keys and values (kv_window.wgsl)

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_id(gid, nwg);
    let octs = p.head_dim / 8u;
    let group = p.heads / p.kv_heads;
    let tiles = (group + GT - 1u) / GT;
    let n_kv = step.pos0 + p.t0 + p.rows;
    let chunks = (n_kv + CHUNK - 1u) / CHUNK;
    let splits = (chunks + SPLIT - 1u) / SPLIT;
    let per_split = p.rows * p.kv_heads * tiles * octs;
    if (idx >= splits * per_split) { return; }
    let sp = idx / per_split;
    let d = (idx % octs) * 8u;
    let r = idx % per_split / octs; // (t * kv_heads + kvh) * tiles + tile
    let kvh = r / tiles % p.kv_heads;
    let h0 = kvh * group + (r % tiles) * GT;
    let gn = min(GT, group - (r % tiles) * GT); // query heads of this invocation
    let t = r / (tiles * p.kv_heads);
    let last = step.pos0 + p.t0 + t;
    let first = first_key(last, p.window);
    // This split's chunks of the row's (none where the row is shorter or its window later).
    let c0 = max(first / CHUNK, sp * SPLIT);
    let c1 = min(last / CHUNK, sp * SPLIT + SPLIT - 1u);
    // Per query head g: its e_j row, its chunk stats, its largest chunk maximum in this split.
    var so: array<u32, GT>;
    var st: array<u32, GT>;
    var mx: array<f32, GT>;
    for (var g = 0u; g < GT; g++) {
        let ht = (h0 + min(g, gn - 1u)) * p.rows + t;
        so[g] = ht * n_kv;
        st[g] = p.heads * p.rows * n_kv + 2u * ht * chunks;
        mx[g] = -1e30;
        for (var c = c0; c <= c1; c++) {
            mx[g] = max(mx[g], s[st[g] + 2u * c]);
        }
    }
    let stride = p.kv_heads * p.head_dim;
    let vo = p.v_base + kvh * p.head_dim + d;
    let w = Recent(p.recent, p.slots, p.ring_at, p.kv_heads * p.head_dim);
    // The row's first key in its recent window (none without one).
    var wfirst = last + 1u;
    if (p.recent != 0u) { wfirst = last + 1u - min(p.recent, last + 1u); }
    var sum = array<f32, GT>();
    var a = array<vec4<f32>, GT>();
    var b = array<vec4<f32>, GT>();
    for (var c = c0; c <= c1; c++) {
        let lo = max(c * CHUNK, first);
        let hi = min(c * CHUNK + CHUNK, last + 1u);
        // Zeroed per chunk, explicitly: a declaration without an initializer inside a loop was
        // zeroed only once in Chromium on SwiftShader (the self-test's long rows caught it).
        var pa = array<vec4<f32>, GT>();
        var pb = array<vec4<f32>, GT>();
        for (var j = lo; j < hi; j++) {
            var v: W8;
            if (j < wfirst) {
                v = kv_load8(vo + j * stride);
            } else {
                v = value8(exact_at(w, j, last, kvh * p.head_dim / 2u, 1u), vo + j * stride, d);
            }
            for (var g = 0u; g < GT; g++) {
                if (g < gn) {
                    let e = s[so[g] + j];
                    pa[g] += e * v.lo;
                    pb[g] += e * v.hi;
                }
            }
        }
        for (var g = 0u; g < GT; g++) {
            let f = exp(s[st[g] + 2u * c] - mx[g]);
            sum[g] += f * s[st[g] + 2u * c + 1u];
            a[g] += f * pa[g];
            b[g] += f * pb[g];
        }
    }
    // After the stats: the splits' shares [splits, rows, heads, head_dim], then their (M_s, L_s)
    // [splits, rows, heads].
    let shares = p.heads * p.rows * (n_kv + 2u * chunks);
    for (var g = 0u; g < gn; g++) {
        let th = t * p.heads + h0 + g;
        let oo = shares + sp * p.rows * p.heads * p.head_dim + th * p.head_dim + d;
        s[oo] = a[g].x;
        s[oo + 1u] = a[g].y;
        s[oo + 2u] = a[g].z;
        s[oo + 3u] = a[g].w;
        s[oo + 4u] = b[g].x;
        s[oo + 5u] = b[g].y;
        s[oo + 6u] = b[g].z;
        s[oo + 7u] = b[g].w;
        if (d == 0u) {
            let ml = shares + splits * p.rows * p.heads * p.head_dim + 2u * (sp * p.rows * p.heads + th);
            s[ml] = mx[g];
            s[ml + 1u] = sum[g];
        }
    }
}
