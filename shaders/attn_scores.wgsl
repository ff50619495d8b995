// Attention step 1 of 3: s[h, t, j] = (q[t0 + t, h, :] · k[j, h / group, :]) · scale for the keys
// row t sees (j <= pos, and j > pos − window with a sliding window), pos = pos0 + t0 + t, over a
// tile of `rows` query rows; n_kv = pos0 + t0 + rows keys per row. Keys a row does not see are not
// written (steps 2 and 3 read only the keys a row sees). group = heads / kv_heads (grouped-query
// attention): the query heads of one kv head read its keys together. One invocation per (row,
// kv head, up to GT of its query heads, eight keys): each key value is decoded once for all those
// heads and each query value read once for all eight keys. head_dim a multiple of 4. Keys in a
// row's recent window are read exactly (kv_window.wgsl).
@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>; // [m, q_stride / 4], q at the start of a row
// binding 1: the cache [2, n_ctx, kv_heads, head_dim], keys first, read with kv_load4 (kv_*.wgsl)
@group(0) @binding(2) var<storage, read_write> s: array<f32>; // [heads, rows, n_kv], then attn_softmax's stats

struct Params {
    rows: u32, // query rows in this tile
    heads: u32,
    kv_heads: u32,
    head_dim: u32,
    q_stride: u32, // floats per token row of q (q·k·v stacked: more than heads · head_dim)
    scale: f32,
    window: u32, // keys a query sees (a sliding window), 0: all
    t0: u32,     // the tile's first query row
    recent: u32, // kv_window.wgsl's Recent
    slots: u32,
    ring_at: u32,
    _pad0: u32,
}
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<uniform> step: Step;
@group(0) @binding(5) var<storage, read> stage: array<u32>; // the step's exact keys and values (kv_window.wgsl)

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_id(gid, nwg);
    let n_kv = step.pos0 + p.t0 + p.rows;
    let quads = (n_kv + 7u) / 8u; // eights of keys
    let group = p.heads / p.kv_heads;
    let tiles = (group + GT - 1u) / GT;
    if (idx >= p.rows * p.kv_heads * tiles * quads) { return; }
    let j0 = (idx % quads) * 8u;
    let r = idx / quads; // (t * kv_heads + kvh) * tiles + tile
    let h0 = (r / tiles % p.kv_heads) * group + (r % tiles) * GT;
    let gn = min(GT, group - (r % tiles) * GT); // query heads of this invocation
    let kvh = r / tiles % p.kv_heads;
    let t = r / (tiles * p.kv_heads);
    let pos = step.pos0 + p.t0 + t;
    let first = first_key(pos, p.window);
    if (j0 > pos || j0 + 7u < first) { return; }
    let qo = (p.t0 + t) * p.q_stride + h0 * p.head_dim;
    // Keys past the row's last are read as the last (and never written).
    let k0 = (min(j0, pos) * p.kv_heads + kvh) * p.head_dim;
    let k1 = (min(j0 + 1u, pos) * p.kv_heads + kvh) * p.head_dim;
    let k2 = (min(j0 + 2u, pos) * p.kv_heads + kvh) * p.head_dim;
    let k3 = (min(j0 + 3u, pos) * p.kv_heads + kvh) * p.head_dim;
    let k4 = (min(j0 + 4u, pos) * p.kv_heads + kvh) * p.head_dim;
    let k5 = (min(j0 + 5u, pos) * p.kv_heads + kvh) * p.head_dim;
    let k6 = (min(j0 + 6u, pos) * p.kv_heads + kvh) * p.head_dim;
    let k7 = (min(j0 + 7u, pos) * p.kv_heads + kvh) * p.head_dim;
    // Where keys in the row's recent window are exact (most eights have none).
    var ex = array<u32, 8>(NOT_EXACT, NOT_EXACT, NOT_EXACT, NOT_EXACT, NOT_EXACT, NOT_EXACT, NOT_EXACT, NOT_EXACT);
    let near = p.recent != 0u && j0 + 7u + p.recent > pos;
    if (near) {
        let w = Recent(p.recent, p.slots, p.ring_at, p.kv_heads * p.head_dim);
        for (var i = 0u; i < 8u; i++) {
            ex[i] = exact_at(w, min(j0 + i, pos), pos, kvh * p.head_dim / 2u, 0u);
        }
    }
    var lo = array<vec4<f32>, GT>(); // keys j0 .. j0 + 3
    var hi = array<vec4<f32>, GT>(); // keys j0 + 4 .. j0 + 7
    for (var d = 0u; d < p.head_dim; d += 4u) {
        // Keys from their codes, unless some of the eight are in the window (one test a step).
        var a0 = vec4<f32>();
        var a1 = vec4<f32>();
        var a2 = vec4<f32>();
        var a3 = vec4<f32>();
        var a4 = vec4<f32>();
        var a5 = vec4<f32>();
        var a6 = vec4<f32>();
        var a7 = vec4<f32>();
        if (near) {
            a0 = key4(ex[0], k0 + d, d);
            a1 = key4(ex[1], k1 + d, d);
            a2 = key4(ex[2], k2 + d, d);
            a3 = key4(ex[3], k3 + d, d);
            a4 = key4(ex[4], k4 + d, d);
            a5 = key4(ex[5], k5 + d, d);
            a6 = key4(ex[6], k6 + d, d);
            a7 = key4(ex[7], k7 + d, d);
        } else {
            a0 = kv_load4(k0 + d);
            a1 = kv_load4(k1 + d);
            a2 = kv_load4(k2 + d);
            a3 = kv_load4(k3 + d);
            a4 = kv_load4(k4 + d);
            a5 = kv_load4(k5 + d);
            a6 = kv_load4(k6 + d);
            a7 = kv_load4(k7 + d);
        }
        for (var g = 0u; g < GT; g++) {
            if (g < gn) {
                let qd = q[(qo + g * p.head_dim + d) / 4u];
                lo[g] += vec4<f32>(dot(qd, a0), dot(qd, a1), dot(qd, a2), dot(qd, a3));
                hi[g] += vec4<f32>(dot(qd, a4), dot(qd, a5), dot(qd, a6), dot(qd, a7));
            }
        }
    }
    for (var g = 0u; g < gn; g++) {
        let so = ((h0 + g) * p.rows + t) * n_kv;
        for (var i = 0u; i < 8u; i++) {
            let j = j0 + i;
            let v = select(lo[g][i & 3u], hi[g][i & 3u], i >= 4u);
            if (j >= first && j <= pos) { s[so + j] = v * p.scale; }
        }
    }
}
