// Y = X·Wᵀ for m tokens (prefill) without workgroup memory or barriers, for CPU adapters (which
// run invocations as SIMD lanes, where every load costs about as much as the arithmetic it feeds).
// One invocation computes a tile of ROWS rows of W × TILE tokens: each decoded group of 8 weights
// serves TILE tokens and each x load serves ROWS rows. 8 lanes per workgroup take neighbouring rows.
// x is read as vec4s: k must be a multiple of 4 (the host runs the tiled matmul otherwise).
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>; // [m, k / 4]
@group(0) @binding(3) var<storage, read_write> y: array<f32>; // [m, n]

struct Params {
    m: u32,  // tokens
    n: u32,  // rows of W
    k: u32,  // inputs
    nb: u32, // blocks per row = ceil(k / 32)
}
@group(0) @binding(4) var<uniform> p: Params;

const ROWS: u32 = 8u;
const LANES: u32 = 8u;
const TILE: u32 = 8u;

// x[t, o .. o + 4), zero past the row or the last token.
fn xt4(t: u32, o: u32) -> vec4<f32> {
    if (t >= p.m || o >= p.k) { return vec4<f32>(0.0); }
    return x[(t * p.k + o) / 4u];
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let wg = wid.x + wid.y * nwg.x;
    let row_groups = (p.n + ROWS * LANES - 1u) / (ROWS * LANES);
    let m0 = (wg / row_groups) * TILE;
    if (m0 >= p.m) { return; }
    let r0 = (wg % row_groups) * ROWS * LANES + lid;
    // Rows past the end repeat the last one and are not stored.
    var rows: array<u32, ROWS>;
    for (var i = 0u; i < ROWS; i++) {
        rows[i] = min(r0 + LANES * i, p.n - 1u);
    }
    var acc: array<f32, 64>; // [ROWS][TILE]
    for (var b = 0u; b < p.nb; b++) {
        var sm: array<vec2<f32>, ROWS>;
        for (var i = 0u; i < ROWS; i++) {
            sm[i] = block_scale(rows[i] * p.nb + b);
        }
        for (var j = 0u; j < 4u; j++) {
            var w: array<W8, ROWS>;
            for (var i = 0u; i < ROWS; i++) {
                w[i] = weights8((rows[i] * p.nb + b) * 4u + j, sm[i]);
            }
            let o = b * 32u + j * 8u;
            for (var t = 0u; t < TILE; t++) {
                let xa = xt4(m0 + t, o);
                let xb = xt4(m0 + t, o + 4u);
                for (var i = 0u; i < ROWS; i++) {
                    acc[i * TILE + t] += dot(w[i].lo, xa) + dot(w[i].hi, xb);
                }
            }
        }
    }
    for (var i = 0u; i < ROWS; i++) {
        for (var t = 0u; t < TILE; t++) {
            if (r0 + LANES * i < p.n && m0 + t < p.m) { y[(m0 + t) * p.n + r0 + LANES * i] = acc[i * TILE + t]; }
        }
    }
}
