// Matvec inputs, outputs and fused steps, shared by the matvec variants: y = W·x for one token
// (decode), W [rows, k] in the weight layout composed beside this file; f32 in and out. x is read
// as vec4s and as whole blocks of 32: activation buffers are zero-padded to a multiple of 32 values.
// A generated header says what is fused in: NORM (x is rmsnorm'd with weights g first), PAIRS = 2
// (output o is silu(row o)·(row o + n): the gate and up projections stacked) and ADD (the result
// is added to y: the residual connection); the output and `finish` come from `matvec_out.wgsl`.
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>; // [nb * 8]

struct Params {
    n: u32,   // outputs (rows of W, or half of them with PAIRS = 2)
    k: u32,   // inputs
    nb: u32,  // blocks per row = ceil(k / 32)
    eps: f32, // rmsnorm epsilon (NORM)
}
@group(0) @binding(4) var<uniform> p: Params;

// x[i] (4 values), times the norm's weights when the norm is fused in.
fn xin(i: u32) -> vec4<f32> {
    return x[i] * norm_w(i);
}

// rmsnorm's 1 / sqrt(mean(x²) + eps) when the norm is fused in, else 1. The weights g are applied
// per input by `xin`; the scale once per output by `finish`.
fn norm_scale() -> f32 {
    if (!NORM) { return 1.0; }
    return norm_of(sum_squares(0u, 1u));
}

// Σ x² over the vec4s lane, lane + step, … of x (step divides the nb * 8 vec4s, so every
// invocation makes the same trips, as subgroup operations after the loop need).
fn sum_squares(lane: u32, step: u32) -> vec4<f32> {
    var ss = vec4<f32>(0.0);
    for (var i = 0u; i < p.nb * 8u; i += step) {
        let v = x[i + lane];
        ss += v * v;
    }
    return ss;
}

// rmsnorm's scale from the sum of squares (4 partial sums).
fn norm_of(ss: vec4<f32>) -> f32 {
    return 1.0 / sqrt(((ss.x + ss.y) + (ss.z + ss.w)) / f32(p.k) + p.eps);
}

// x of block b (32 values), times the norm's weights when it is fused in.
fn load_block(b: u32) -> Xs {
    let o = b * 8u;
    return Xs(xin(o), xin(o + 1u), xin(o + 2u), xin(o + 3u), xin(o + 4u), xin(o + 5u), xin(o + 6u), xin(o + 7u));
}

// Σ x of a block, for the minimum term (0 where the format has no minimum).
fn block_sx(x: Xs) -> f32 {
    if (!HAS_MIN) { return 0.0; }
    return x_sum(x);
}

// Σ w·x over block b of `row`, with the scale and minimum out of the inner loop:
// Σ (d·q + m)·x = d·Σ q·x + m·Σ x (sx = Σ x of the block).
fn dot_block(row: u32, b: u32, x: Xs, sx: f32) -> f32 {
    let blk = row * p.nb + b;
    let sm = block_scale(blk);
    var r = sm.x * dot_raw(blk, x);
    if (HAS_MIN) { r += sm.y * sx; }
    return r;
}

// `dot_block` with x pre-scaled by the format's `weights_x` (the rows matvec); sx = `x_sum`.
fn dot_block_prescaled(row: u32, b: u32, xw: Xs, sx: f32) -> f32 {
    let blk = row * p.nb + b;
    let sm = block_scale(blk);
    var r = sm.x * dot_raw_prescaled(blk, xw, sx);
    if (HAS_MIN) { r += sm.y * sx; }
    return r;
}
