// y = W·x for one token (decode). W [n, k] in the weight layout prepended above; f32 in and out.
// 64 invocations per workgroup, 4 per row (16 rows per workgroup); each of a row's 4 invocations
// takes every 4th block, then the 4 partial sums are added.
@group(0) @binding(2) var<storage, read> x: array<f32>;       // [k]
@group(0) @binding(3) var<storage, read_write> y: array<f32>; // [n]

struct Params {
    n: u32,  // rows of W
    k: u32,  // inputs
    nb: u32, // blocks per row = ceil(k / 32)
    _pad: u32,
}
@group(0) @binding(4) var<uniform> p: Params;

fn x4(o: u32) -> vec4<f32> {
    if (o + 3u < p.k) {
        return vec4<f32>(x[o], x[o + 1u], x[o + 2u], x[o + 3u]);
    }
    var v = vec4<f32>(0.0);
    for (var i = 0u; i < 4u; i++) {
        if (o + i < p.k) { v[i] = x[o + i]; }
    }
    return v;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row = (wid.x + wid.y * nwg.x) * 16u + lid / 4u;
    var acc = 0.0;
    if (row < p.n) {
        for (var b = lid % 4u; b < p.nb; b += 4u) {
            let blk = row * p.nb + b;
            let sm = block_scale(blk);
            for (var j = 0u; j < 4u; j++) {
                let w = weights8(blk * 4u + j, sm);
                let o = b * 32u + j * 8u;
                acc += dot(w.lo, x4(o)) + dot(w.hi, x4(o + 4u));
            }
        }
    }
    let s = row_sum4(acc, lid);
    if (row < p.n && lid % 4u == 0u) {
        y[row] = s;
    }
}
