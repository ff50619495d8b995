// FP16 weights W [rows, k]: rows of nb = ceil(k / 32) blocks, zero-padded.
// Block `blk` = row * nb + b holds 32 halves in 16 words; weight 2i in the low half of word i.
@group(0) @binding(0) var<storage, read> w_q: array<u32>; // [rows * nb * 16]

// (scale, min) of a block: FP16 has neither.
fn block_scale(blk: u32) -> vec2<f32> {
    return vec2<f32>(1.0, 0.0);
}

// Weights 8j .. 8j+7 of block blk, where g = blk * 4 + j.
fn weights8(g: u32, sm: vec2<f32>) -> W8 {
    let o = g * 4u;
    return W8(vec4<f32>(unpack2x16float(w_q[o]), unpack2x16float(w_q[o + 1u])),
              vec4<f32>(unpack2x16float(w_q[o + 2u]), unpack2x16float(w_q[o + 3u])));
}
