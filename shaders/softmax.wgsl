// Row-wise softmax in place. One invocation per row (no barrier).
@group(0) @binding(0) var<storage, read_write> x: array<f32>; // [rows, n]

struct Params {
    rows: u32,
    n: u32,
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(1) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = linear_id(gid, nwg);
    if (r >= p.rows) { return; }
    let o = r * p.n;
    var mx = x[o];
    for (var i = 1u; i < p.n; i++) {
        mx = max(mx, x[o + i]);
    }
    var sum = 0.0;
    for (var i = 0u; i < p.n; i++) {
        let e = exp(x[o + i] - mx);
        x[o + i] = e;
        sum += e;
    }
    let inv = 1.0 / sum;
    for (var i = 0u; i < p.n; i++) {
        x[o + i] *= inv;
    }
}
