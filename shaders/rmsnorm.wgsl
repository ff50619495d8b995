// y[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) · w, or y[r, :] += that with ADD (Gemma's norm
// after attention and the feed-forward, then the residual connection). A generated header says
// which. One invocation per row (no barrier).
@group(0) @binding(0) var<storage, read> x: array<f32>;       // [rows, d]
@group(0) @binding(1) var<storage, read> w: array<f32>;       // [d]
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // [rows, d]

struct Params {
    rows: u32,
    d: u32,
    eps: f32,
    _pad: u32,
}
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = linear_id(gid, nwg);
    if (r >= p.rows) { return; }
    let o = r * p.d;
    var ss = 0.0;
    for (var i = 0u; i < p.d; i++) {
        ss += x[o + i] * x[o + i];
    }
    let s = 1.0 / sqrt(ss / f32(p.d) + p.eps);
    for (var i = 0u; i < p.d; i++) {
        var v = x[o + i] * s * w[i];
        if (ADD) { v += y[o + i]; }
        y[o + i] = v;
    }
}
