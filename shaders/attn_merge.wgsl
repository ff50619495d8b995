// Attention step 4 of 4: o[t0 + t, h, d] = Σ_s g_s o_s / Σ_s g_s L_s with g_s = exp(M_s − max_s M_s),
// over attn_values' splits (o_s its share, M_s its largest chunk maximum, L_s its sum). One
// invocation per (row, head, dim).
@group(0) @binding(0) var<storage, read> s: array<f32>;       // [heads, rows, n_kv] e_j, stats, then the splits' o
@group(0) @binding(1) var<storage, read_write> o: array<f32>; // [m, heads, head_dim]

struct Params {
    rows: u32,
    heads: u32,
    head_dim: u32,
    t0: u32,
}
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<uniform> step: Step;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_id(gid, nwg);
    let n = p.rows * p.heads * p.head_dim;
    if (idx >= n) { return; }
    let n_kv = step.pos0 + p.t0 + p.rows;
    let chunks = (n_kv + CHUNK - 1u) / CHUNK;
    let splits = (chunks + SPLIT - 1u) / SPLIT;
    let shares = p.heads * p.rows * (n_kv + 2u * chunks);
    let th = idx / p.head_dim; // t * heads + h
    let ml = shares + splits * n + 2u * th; // split sp's (M_s, L_s) at ml + 2 · sp · rows · heads
    let step_ml = 2u * p.rows * p.heads;
    var mx = -1e30;
    for (var sp = 0u; sp < splits; sp++) {
        mx = max(mx, s[ml + sp * step_ml]);
    }
    var sum = 0.0;
    var acc = 0.0;
    for (var sp = 0u; sp < splits; sp++) {
        let g = exp(s[ml + sp * step_ml] - mx);
        sum += g * s[ml + sp * step_ml + 1u];
        acc += g * s[shares + sp * n + idx];
    }
    o[p.t0 * p.heads * p.head_dim + idx] = acc / sum;
}
