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
    let w = w_q[g];
    return W8(vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)),
              vec4<f32>(unpack2x16float(w.z), unpack2x16float(w.w)));
}

// Weights 8j .. 8j+7 of block blk, where g = blk * 4 + j.
fn weights8(g: u32, sm: vec2<f32>) -> W8 {
    return weights8_raw(g);
}
