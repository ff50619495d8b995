// Y = X·Wᵀ for m tokens (prefill) without workgroup memory or barriers, for CPU adapters (which
// run invocations as SIMD lanes, where a load costs more than the arithmetic it feeds). One
// invocation computes 8 rows of W × 8 tokens: each group of 8 weights it decodes serves 8 tokens
// and each group of x serves 8 rows. 8 lanes per workgroup take neighbouring rows (64 rows per
// workgroup), and all load the same x: as `rows_lanes.wgsl` or `rows_subgroup.wgsl` (composed
// in) says, each by itself or a quarter each and shared. Written without private arrays (16 named
// accumulators, each a vec4 over 4 tokens): a software compiler that does not unroll loops keeps
// an indexed array in memory. The input file composed before this one (`matmul_x_f32.wgsl`, or
// `matmul_x_q8.wgsl` for 8-bit activations) binds x and defines `x_pair`; k must be a multiple of
// 4 (the host runs the tiled matmul otherwise).
@group(0) @binding(3) var<storage, read_write> y: array<f32>; // [m, n]

struct Params {
    m: u32,  // tokens
    n: u32,  // rows of W
    k: u32,  // inputs
    nb: u32, // blocks per row = ceil(k / 32)
}
@group(0) @binding(4) var<uniform> p: Params;

const LANES: u32 = 8u;
const TILE: u32 = 8u; // tokens per invocation

// The 8 weights w against each token's 8 inputs: one sum per token.
fn mac(w: W8, v: Xs) -> vec4<f32> {
    return vec4<f32>(dot(w.lo, v.a0) + dot(w.hi, v.b0), dot(w.lo, v.a1) + dot(w.hi, v.b1),
                     dot(w.lo, v.a2) + dot(w.hi, v.b2), dot(w.lo, v.a3) + dot(w.hi, v.b3));
}

// Row i (0..8) of the invocation whose first row is r0; rows past the end repeat the last one.
fn row_of(r0: u32, i: u32) -> u32 {
    return min(r0 + LANES * i, p.n - 1u);
}

// Output row r for the tile's tokens t0 .. t0 + 4 (those that exist).
fn store(r: u32, t0: u32, a: vec4<f32>) {
    if (r >= p.n) { return; }
    if (t0 < p.m) { y[t0 * p.n + r] = a.x; }
    if (t0 + 1u < p.m) { y[(t0 + 1u) * p.n + r] = a.y; }
    if (t0 + 2u < p.m) { y[(t0 + 2u) * p.n + r] = a.z; }
    if (t0 + 3u < p.m) { y[(t0 + 3u) * p.n + r] = a.w; }
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, inv: RowsIn) {
    let wg = wid.x + wid.y * nwg.x;
    let lane = lane(inv);
    let row_groups = (p.n + 8u * LANES - 1u) / (8u * LANES);
    let t0 = (wg / row_groups) * TILE;
    if (t0 >= p.m) { return; }
    let t1 = t0 + 4u;
    let r0 = (wg % row_groups) * 8u * LANES + inv.lid;
    // Blocks of row i start at bi.
    let b0 = row_of(r0, 0u) * p.nb;
    let b1 = row_of(r0, 1u) * p.nb;
    let b2 = row_of(r0, 2u) * p.nb;
    let b3 = row_of(r0, 3u) * p.nb;
    let b4 = row_of(r0, 4u) * p.nb;
    let b5 = row_of(r0, 5u) * p.nb;
    let b6 = row_of(r0, 6u) * p.nb;
    let b7 = row_of(r0, 7u) * p.nb;
    // Row i's sums for tokens t0 .. t0 + 4 in ai, for t1 .. t1 + 4 in ci.
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    var a4 = vec4<f32>(0.0);
    var a5 = vec4<f32>(0.0);
    var a6 = vec4<f32>(0.0);
    var a7 = vec4<f32>(0.0);
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    var c4 = vec4<f32>(0.0);
    var c5 = vec4<f32>(0.0);
    var c6 = vec4<f32>(0.0);
    var c7 = vec4<f32>(0.0);
    for (var b = 0u; b < p.nb; b++) {
        let s0 = block_scale(b0 + b);
        let s1 = block_scale(b1 + b);
        let s2 = block_scale(b2 + b);
        let s3 = block_scale(b3 + b);
        let s4 = block_scale(b4 + b);
        let s5 = block_scale(b5 + b);
        let s6 = block_scale(b6 + b);
        let s7 = block_scale(b7 + b);
        for (var j = 0u; j < 4u; j++) {
            let w0 = weights8((b0 + b) * 4u + j, s0);
            let w1 = weights8((b1 + b) * 4u + j, s1);
            let w2 = weights8((b2 + b) * 4u + j, s2);
            let w3 = weights8((b3 + b) * 4u + j, s3);
            let w4 = weights8((b4 + b) * 4u + j, s4);
            let w5 = weights8((b5 + b) * 4u + j, s5);
            let w6 = weights8((b6 + b) * 4u + j, s6);
            let w7 = weights8((b7 + b) * 4u + j, s7);
            let v = load8(t0, b * 32u + j * 8u, lane);
            a0 += mac(w0, v);
            a1 += mac(w1, v);
            a2 += mac(w2, v);
            a3 += mac(w3, v);
            a4 += mac(w4, v);
            a5 += mac(w5, v);
            a6 += mac(w6, v);
            a7 += mac(w7, v);
            let u = load8(t1, b * 32u + j * 8u, lane);
            c0 += mac(w0, u);
            c1 += mac(w1, u);
            c2 += mac(w2, u);
            c3 += mac(w3, u);
            c4 += mac(w4, u);
            c5 += mac(w5, u);
            c6 += mac(w6, u);
            c7 += mac(w7, u);
        }
    }
    store(r0, t0, a0);
    store(r0 + LANES, t0, a1);
    store(r0 + 2u * LANES, t0, a2);
    store(r0 + 3u * LANES, t0, a3);
    store(r0 + 4u * LANES, t0, a4);
    store(r0 + 5u * LANES, t0, a5);
    store(r0 + 6u * LANES, t0, a6);
    store(r0 + 7u * LANES, t0, a7);
    store(r0, t1, c0);
    store(r0 + LANES, t1, c1);
    store(r0 + 2u * LANES, t1, c2);
    store(r0 + 3u * LANES, t1, c3);
    store(r0 + 4u * LANES, t1, c4);
    store(r0 + 5u * LANES, t1, c5);
    store(r0 + 6u * LANES, t1, c6);
    store(r0 + 7u * LANES, t1, c7);
}
