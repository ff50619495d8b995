// INT8 weights W [rows, k]: rows of nb = ceil(k / 32) blocks, zero-padded; w = d * q.
// Block `blk` = row * nb + b: 32 signed bytes in 8 words (weight 4i+t in byte t of word i).
@group(0) @binding(0) var<storage, read> w_q: array<u32>; // [rows * nb * 8]
@group(0) @binding(1) var<storage, read> w_s: array<u32>; // [ceil(rows * nb / 2)] f16 d, block blk in half blk & 1

fn block_scale(blk: u32) -> vec2<f32> {
    return vec2<f32>(unpack2x16float(w_s[blk >> 1u])[blk & 1u], 0.0);
}

fn i8x4(w: u32) -> vec4<f32> {
    let v = bitcast<i32>(w);
    return vec4<f32>(f32(extractBits(v, 0u, 8u)), f32(extractBits(v, 8u, 8u)),
                     f32(extractBits(v, 16u, 8u)), f32(extractBits(v, 24u, 8u)));
}

// Weights 8j .. 8j+7 of block blk, where g = blk * 4 + j.
fn weights8(g: u32, sm: vec2<f32>) -> W8 {
    let o = g * 2u;
    return W8(i8x4(w_q[o]) * sm.x, i8x4(w_q[o + 1u]) * sm.x);
}
