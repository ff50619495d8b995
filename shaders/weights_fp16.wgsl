// FP16 weights W [rows, k]: rows of nb = ceil(k / 32) blocks, zero-padded.
// Block `blk` = row * nb + b holds 32 halves in 4 vec4 words; weight 2i in the low half of word i.
@group(0) @binding(0) var<storage, read> w_q: array<vec4<u32>>; // [rows * nb * 4]

// Blocks carry no additive minimum: block_dot skips the Σx term.
const HAS_MIN: bool = false;

// (scale, min) of a block: FP16 has neither.
fn block_scale(blk: u32) -> vec2<f32> {
    return vec2<f32>(1.0, 0.0);
}

// The 8 stored values of group g = blk * 4 + j (weights 8j .. 8j+7 of block blk), before scale and
// min: here the weights themselves.
fn weights8_raw(g: u32) -> W8 {
    return halves(w_q[g]);
}

// The 8 halves of one vec4 word.
fn halves(w: vec4<u32>) -> W8 {
    return W8(vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)),
              vec4<f32>(unpack2x16float(w.z), unpack2x16float(w.w)));
}

// Weights 8j .. 8j+7 of block blk, where g = blk * 4 + j.
fn weights8(g: u32, sm: vec2<f32>) -> W8 {
    return weights8_raw(g);
}

// Σ w·x over one block's 32 weights.
fn dot32(w0: W8, w1: W8, w2: W8, w3: W8, x: Xs) -> f32 {
    let d = w0.lo * x.a0 + w0.hi * x.b0 + w1.lo * x.a1 + w1.hi * x.b1
          + w2.lo * x.a2 + w2.hi * x.b2 + w3.lo * x.a3 + w3.hi * x.b3;
    return (d.x + d.y) + (d.z + d.w);
}

// Σ w·x over block blk (each of its 4 words loaded once).
fn dot_raw(blk: u32, x: Xs) -> f32 {
    let i = blk * 4u;
    return dot32(halves(w_q[i]), halves(w_q[i + 1u]), halves(w_q[i + 2u]), halves(w_q[i + 3u]), x);
}

// The form for CPU adapters (the rows matvec), which emulate unpack2x16float in many instructions:
// a half's exponent and mantissa are moved into an f32's by integer operations, which gives the
// half · 2^-112 (exact for normal halves; a subnormal half, |w| < 6.1e-5, becomes an f32
// subnormal, which those adapters may flush to zero). x is pre-scaled by 2^56 once per block and
// the block's sum by 2^56 (exact: powers of two), so the products are the same.
const F16_X: f32 = 72057594037927936.0; // 2^56

fn weights_x(x: Xs) -> Xs {
    return Xs(x.a0 * F16_X, x.b0 * F16_X, x.a1 * F16_X, x.b1 * F16_X, x.a2 * F16_X, x.b2 * F16_X, x.a3 * F16_X, x.b3 * F16_X);
}

// The 8 halves of one vec4 word, each · 2^-112.
fn halves_scaled(w: vec4<u32>) -> W8 {
    let lo = ((w & vec4<u32>(0x7fffu)) << vec4<u32>(13u)) | ((w & vec4<u32>(0x8000u)) << vec4<u32>(16u));
    let hi = ((w >> vec4<u32>(3u)) & vec4<u32>(0x0fffe000u)) | (w & vec4<u32>(0x80000000u));
    return W8(bitcast<vec4<f32>>(vec4<u32>(lo.x, hi.x, lo.y, hi.y)), bitcast<vec4<f32>>(vec4<u32>(lo.z, hi.z, lo.w, hi.w)));
}

// Σ w·x over block blk, x from `weights_x` (sx, Σ x, is not needed here).
fn dot_raw_prescaled(blk: u32, x: Xs, sx: f32) -> f32 {
    let i = blk * 4u;
    return dot32(halves_scaled(w_q[i]), halves_scaled(w_q[i + 1u]), halves_scaled(w_q[i + 2u]), halves_scaled(w_q[i + 3u]), x) * F16_X;
}
