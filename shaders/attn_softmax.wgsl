// Attention step 2 of 3: the softmax's work, once per score. The keys of a row are cut into chunks
// of CHUNK; per (head, row, chunk) of the keys the row sees, the chunk's maximum M and
// e_j = exp(s_j − M) (written over the scores) and L = Σ e_j (stats [heads, rows, chunks] of
// (M, L) after the scores). Step 3 (attn_values) merges the chunks: no score is exponentiated
// twice, and no invocation walks a whole row alone.
@group(0) @binding(0) var<storage, read_write> s: array<f32>; // [heads, rows, n_kv], then stats

struct Params {
    rows: u32,
    heads: u32,
    window: u32, // keys a query sees (a sliding window), 0: all
    t0: u32,
}
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<uniform> step: Step;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_id(gid, nwg);
    let n_kv = step.pos0 + p.t0 + p.rows;
    let chunks = (n_kv + CHUNK - 1u) / CHUNK;
    if (idx >= p.heads * p.rows * chunks) { return; }
    let c = idx % chunks;
    let ht = idx / chunks; // h * rows + t
    let t = ht % p.rows;
    let last = step.pos0 + p.t0 + t;
    let first = first_key(last, p.window);
    let lo = max(c * CHUNK, first);
    let hi = min(c * CHUNK + CHUNK, last + 1u);
    let so = ht * n_kv;
    var mx = -1e30;
    for (var j = lo; j < hi; j++) {
        mx = max(mx, s[so + j]);
    }
    var sum = 0.0;
    for (var j = lo; j < hi; j++) {
        let e = exp(s[so + j] - mx);
        s[so + j] = e;
        sum += e;
    }
    let st = p.heads * p.rows * n_kv + 2u * idx;
    s[st] = mx;
    s[st + 1u] = sum;
}
