// y = W·x̂ for one token with 8-bit activations, for CPU adapters: as `matvec_rows.wgsl` (8 rows
// per invocation, no barrier; rows laid out by `rows_of.wgsl`), each block of codes loaded once
// (2 words: a quarter of an f32 block's loads) for its 8 rows. PACKED (generated header) picks
// how a block is multiplied: packed integer dot products (`dot_q8`), or the codes converted to
// f32 once per block and multiplied as the f32 kernel does (`dot_raw_prescaled`): where the
// adapter emulates the packed products, the second can be faster (the start-up measurement picks).

// The 32 codes of a block as f32, in order (INTERLEAVE is off for the unpacked form).
fn codes_f32(xa: vec4<u32>, xb: vec4<u32>) -> Xs {
    return Xs(vec4<f32>(unpack4xI8(xa.x)), vec4<f32>(unpack4xI8(xa.y)), vec4<f32>(unpack4xI8(xa.z)), vec4<f32>(unpack4xI8(xa.w)),
              vec4<f32>(unpack4xI8(xb.x)), vec4<f32>(unpack4xI8(xb.y)), vec4<f32>(unpack4xI8(xb.z)), vec4<f32>(unpack4xI8(xb.w)));
}

// Σ w·x̂ over block b of `row` from codes already converted (`codes_f32`, pre-scaled by the
// format's `weights_x`; sq = Σ q).
fn dot_block_unpacked(row: u32, b: u32, xw: Xs, sq: f32, ds: vec2<f32>) -> f32 {
    let blk = row * p.nb + b;
    let sm = block_scale(blk);
    var r = (sm.x * ds.x) * dot_raw_prescaled(blk, xw, sq);
    if (HAS_MIN) { r += sm.y * ds.y; }
    return r;
}

fn dot_row(row: u32, b: u32, xa: vec4<u32>, xb: vec4<u32>, xw: Xs, sq: f32, ds: vec2<f32>) -> f32 {
    if (PACKED) { return dot_block_q8(row, b, xa, xb, ds); }
    return dot_block_unpacked(row, b, xw, sq, ds);
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let o0 = (wid.x + wid.y * nwg.x) * (8u / PAIRS) * LANES + lid;
    let r0 = row_of(o0, 0u);
    let r1 = row_of(o0, 1u);
    let r2 = row_of(o0, 2u);
    let r3 = row_of(o0, 3u);
    let r4 = row_of(o0, 4u);
    let r5 = row_of(o0, 5u);
    let r6 = row_of(o0, 6u);
    let r7 = row_of(o0, 7u);
    var a0 = 0.0;
    var a1 = 0.0;
    var a2 = 0.0;
    var a3 = 0.0;
    var a4 = 0.0;
    var a5 = 0.0;
    var a6 = 0.0;
    var a7 = 0.0;
    for (var b = 0u; b < p.nb; b++) {
        let xa = xq[b * 2u];
        let xb = xq[b * 2u + 1u];
        let ds = xd[b];
        var xw: Xs;
        var sq = 0.0;
        if (!PACKED) {
            let c = codes_f32(xa, xb);
            sq = x_sum(c);
            xw = weights_x(c);
        }
        a0 += dot_row(r0, b, xa, xb, xw, sq, ds);
        a1 += dot_row(r1, b, xa, xb, xw, sq, ds);
        a2 += dot_row(r2, b, xa, xb, xw, sq, ds);
        a3 += dot_row(r3, b, xa, xb, xw, sq, ds);
        a4 += dot_row(r4, b, xa, xb, xw, sq, ds);
        a5 += dot_row(r5, b, xa, xb, xw, sq, ds);
        a6 += dot_row(r6, b, xa, xb, xw, sq, ds);
        a7 += dot_row(r7, b, xa, xb, xw, sq, ds);
    }
    let s = xd[p.nb].x;
    store8(o0, a0, a1, a2, a3, a4, a5, a6, a7, s);
}
