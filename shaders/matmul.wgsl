// Y = X·Wᵀ for m tokens (prefill). W [n, k] in the weight layout prepended above.
// Tiled: a workgroup of 8×8 invocations computes a 32-token × 32-row tile of Y, 4×4 per
// invocation, staging one 32-wide block of X and of W (dequantized) in workgroup memory.
@group(0) @binding(2) var<storage, read> x: array<f32>;       // [m, k]
@group(0) @binding(3) var<storage, read_write> y: array<f32>; // [m, n]

struct Params {
    m: u32,  // tokens
    n: u32,  // rows of W
    k: u32,  // inputs
    nb: u32, // blocks per row = ceil(k / 32)
}
@group(0) @binding(4) var<uniform> p: Params;

var<workgroup> xs: array<f32, 1024>; // [32 tokens][32 k]
var<workgroup> ws: array<f32, 1024>; // [32 rows][32 k]

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let n0 = wid.x * 32u;
    let m0 = wid.y * 32u;
    var acc: array<f32, 16>; // [4 tokens][4 rows]
    for (var b = 0u; b < p.nb; b++) {
        for (var i = 0u; i < 16u; i++) {
            let e = lid + i * 64u;
            let gm = m0 + e / 32u;
            let gk = b * 32u + e % 32u;
            var v = 0.0;
            if (gm < p.m && gk < p.k) { v = x[gm * p.k + gk]; }
            xs[e] = v;
        }
        for (var i = 0u; i < 2u; i++) {
            let g = lid + i * 64u; // 32 rows × 4 groups of 8
            let r = g / 4u;
            let j = g % 4u;
            var w = W8(vec4<f32>(0.0), vec4<f32>(0.0));
            if (n0 + r < p.n) {
                let blk = (n0 + r) * p.nb + b;
                w = weights8(blk * 4u + j, block_scale(blk));
            }
            let o = r * 32u + j * 8u;
            for (var t = 0u; t < 4u; t++) {
                ws[o + t] = w.lo[t];
                ws[o + 4u + t] = w.hi[t];
            }
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 32u; kk++) {
            var xv: array<f32, 4>;
            var wv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                xv[i] = xs[(l.y * 4u + i) * 32u + kk];
                wv[i] = ws[(l.x * 4u + i) * 32u + kk];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] += xv[i] * wv[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            let gm = m0 + l.y * 4u + i;
            let gn = n0 + l.x * 4u + j;
            if (gm < p.m && gn < p.n) { y[gm * p.n + gn] = acc[i * 4u + j]; }
        }
    }
}
