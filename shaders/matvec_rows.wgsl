// y = W·x for one token (decode), for CPU adapters (lavapipe, SwiftShader), which run a
// workgroup's invocations as SIMD lanes and a barrier as a coroutine switch: no reduction and no
// barrier. Each invocation takes 8 rows of W (8 / PAIRS outputs; 64 rows per workgroup of 8
// lanes), so each block of x it loads serves 8 rows: on those adapters a load costs about as much
// as the arithmetic it feeds. Written without private arrays (8 named accumulators): a software
// compiler that does not unroll loops would keep an indexed array in memory. x and its norm are
// loaded as `rows_lanes.wgsl` or `rows_subgroup.wgsl` (composed in) says: by each invocation, or a
// quarter each and shared. Rows and outputs are laid out by `rows_of.wgsl`.

// x[b * 32 + 8i .. + 8] (with the norm's weights): pair i of block b for `load8`.
fn x_pair(b: u32, unused: u32, i: u32) -> W8 {
    let o = b * 8u + i * 2u;
    return W8(xin(o), xin(o + 1u));
}

// `norm_scale` with the sum of squares split over the sharers of a load (x has 8 vec4s per block,
// a multiple of SHARERS).
fn norm_scale_shared(lane: u32) -> f32 {
    if (!NORM) { return 1.0; }
    return norm_of(total4(sum_squares(lane, SHARERS)));
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, inv: RowsIn) {
    let o0 = (wid.x + wid.y * nwg.x) * (8u / PAIRS) * LANES + inv.lid;
    let lane = lane(inv);
    let r0 = row_of(o0, 0u);
    let r1 = row_of(o0, 1u);
    let r2 = row_of(o0, 2u);
    let r3 = row_of(o0, 3u);
    let r4 = row_of(o0, 4u);
    let r5 = row_of(o0, 5u);
    let r6 = row_of(o0, 6u);
    let r7 = row_of(o0, 7u);
    let s = norm_scale_shared(lane);
    var a0 = 0.0;
    var a1 = 0.0;
    var a2 = 0.0;
    var a3 = 0.0;
    var a4 = 0.0;
    var a5 = 0.0;
    var a6 = 0.0;
    var a7 = 0.0;
    for (var b = 0u; b < p.nb; b++) {
        let x = load8(b, 0u, lane);
        let sx = x_sum(x);
        let xw = weights_x(x);
        a0 += dot_block_prescaled(r0, b, xw, sx);
        a1 += dot_block_prescaled(r1, b, xw, sx);
        a2 += dot_block_prescaled(r2, b, xw, sx);
        a3 += dot_block_prescaled(r3, b, xw, sx);
        a4 += dot_block_prescaled(r4, b, xw, sx);
        a5 += dot_block_prescaled(r5, b, xw, sx);
        a6 += dot_block_prescaled(r6, b, xw, sx);
        a7 += dot_block_prescaled(r7, b, xw, sx);
    }
    store8(o0, a0, a1, a2, a3, a4, a5, a6, a7, s);
}
