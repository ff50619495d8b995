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

// Σ w·x over block blk (each of its 4 words loaded once).
fn dot_raw(blk: u32, x: Xs) -> f32 {
    let w0 = halves(w_q[blk * 4u]);
    let w1 = halves(w_q[blk * 4u + 1u]);
    let w2 = halves(w_q[blk * 4u + 2u]);
    let w3 = halves(w_q[blk * 4u + 3u]);
    let d = w0.lo * x.a0 + w0.hi * x.b0 + w1.lo * x.a1 + w1.hi * x.b1
          + w2.lo * x.a2 + w2.hi * x.b2 + w3.lo * x.a3 + w3.hi * x.b3;
    return (d.x + d.y) + (d.z + d.w);
}

// The rows matvec's form: nothing to pre-scale in this format.
fn weights_x(x: Xs) -> Xs {
    return x;
}

fn dot_raw_prescaled(blk: u32, x: Xs) -> f32 {
    return dot_raw(blk, x);
}
