// The rotated KV formats' per-channel key scales λ, from a layer's calibration pass: each key
// channel e is stored as (k − mean)·λ_e and each query meets it divided by λ_e, which leaves every
// score as it was (Σ q/λ · kλ = Σ q·k). A key's coding error then reaches a score as
// Σ_e q_e·err_e / λ_e, with err about the same across a block: its expected square is least when
// λ_e⁴ ∝ E[q_e²] / E[(k_e − mean_e)²], which spends the block's range on the channels queries
// weigh most (a smoothing of outlier channels, as SmoothQuant does for activations). Per kv head
// the λ are then scaled so that the head's keys keep their energy: Σ E[(k − mean)²]·λ² = Σ E[(k −
// mean)²]. A floor of 10⁻³ of the head's mean on either expectation keeps a channel neither side
// uses finite. One invocation per kv head; what `rope_store.wgsl` and `kv_rotate.wgsl` apply.
@group(0) @binding(0) var<storage, read> kv: array<f32>;         // [n_ctx, kv_dim] keys, then values (f32)
@group(0) @binding(1) var<storage, read_write> st: array<f32>;   // means from mean_at, λ to scale_at
@group(0) @binding(3) var<storage, read> qsq: array<f32>;        // the queries' Σq² from qsq_at (kv_query_sq.wgsl)

struct Params {
    n: u32,
    kv_dim: u32,
    head_dim: u32,
    mean_at: u32,
    scale_at: u32,
    qsq_at: u32,
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let h = linear_id(gid, nwg);
    if (h >= p.kv_dim / p.head_dim) { return; }
    let e0 = h * p.head_dim;
    // The keys' spread per channel (Σ over the n tokens: every scale below is a ratio), kept in
    // the λ row until it is replaced.
    var sk = 0.0;
    var sq = 0.0;
    for (var c = 0u; c < p.head_dim; c++) {
        let e = e0 + c;
        let m = st[p.mean_at + e];
        var s = 0.0;
        for (var t = 0u; t < p.n; t++) {
            let d = kv[t * p.kv_dim + e] - m;
            s += d * d;
        }
        st[p.scale_at + e] = s;
        sk += s;
        sq += qsq[p.qsq_at + e];
    }
    let floor_k = 1e-3 * sk / f32(p.head_dim);
    let floor_q = 1e-3 * sq / f32(p.head_dim);
    var num = 0.0;
    var den = 0.0;
    for (var c = 0u; c < p.head_dim; c++) {
        let e = e0 + c;
        let k2 = st[p.scale_at + e];
        let l = sqrt(sqrt((qsq[p.qsq_at + e] + floor_q) / max(k2 + floor_k, 1e-30)));
        st[p.scale_at + e] = l;
        num += k2;
        den += k2 * l * l;
    }
    // A head whose keys never move, or that no query reads, keeps λ = 1.
    let ok = den > 0.0 && num > 0.0;
    let f = select(1.0, sqrt(num / den), ok);
    for (var c = 0u; c < p.head_dim; c++) {
        let e = e0 + c;
        st[p.scale_at + e] = select(1.0, st[p.scale_at + e] * f, ok);
    }
}
