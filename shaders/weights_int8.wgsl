// INT8 weights W [rows, k]: rows of nb = ceil(k / 32) blocks, zero-padded; w = d * q.
// Block `blk` = row * nb + b: 32 signed bytes in 2 vec4 words (weight 4i+t in byte t of word i).
@group(0) @binding(0) var<storage, read> w_q: array<vec4<u32>>; // [rows * nb * 2]
@group(0) @binding(1) var<storage, read> w_s: array<u32>; // [ceil(rows * nb / 2)] f16 d, block blk in half blk & 1

const HAS_MIN: bool = false;

fn block_scale(blk: u32) -> vec2<f32> {
    return vec2<f32>(unpack2x16float(w_s[blk >> 1u])[blk & 1u], 0.0);
}

fn i8x4(w: u32) -> vec4<f32> {
    return vec4<f32>(unpack4xI8(w));
}

// The 8 codes q of group g = blk * 4 + j (weights 8j .. 8j+7 of block blk).
fn weights8_raw(g: u32) -> W8 {
    let v = w_q[g >> 1u];
    let w = select(v.xy, v.zw, (g & 1u) == 1u);
    return W8(i8x4(w.x), i8x4(w.y));
}

// Weights 8j .. 8j+7 of block blk, where g = blk * 4 + j.
fn weights8(g: u32, sm: vec2<f32>) -> W8 {
    let r = weights8_raw(g);
    return W8(r.lo * sm.x, r.hi * sm.x);
}

// Σ q·x over block blk (each of its 2 words loaded once).
fn dot_raw(blk: u32, x: Xs) -> f32 {
    let v0 = w_q[blk * 2u];
    let v1 = w_q[blk * 2u + 1u];
    let d = i8x4(v0.x) * x.a0 + i8x4(v0.y) * x.b0 + i8x4(v0.z) * x.a1 + i8x4(v0.w) * x.b1
          + i8x4(v1.x) * x.a2 + i8x4(v1.y) * x.b2 + i8x4(v1.z) * x.a3 + i8x4(v1.w) * x.b3;
    return (d.x + d.y) + (d.z + d.w);
}

// The form for CPU adapters (the rows matvec): flipping each byte's top bit makes it q + 128,
// unsigned; byte t is then masked in place, (q + 128)·256^t, and converted through i32 (exact),
// against x pre-scaled by 256^-t once per block (exact: powers of two); Σ (q + 128)·x − 128·Σx
// = Σ q·x. The top byte is shifted down (as i32 it would be negative).
const X8: vec4<f32> = vec4<f32>(1.0, 0.00390625, 1.52587890625e-5, 1.0);

fn weights_x(x: Xs) -> Xs {
    return Xs(x.a0 * X8, x.b0 * X8, x.a1 * X8, x.b1 * X8, x.a2 * X8, x.b2 * X8, x.a3 * X8, x.b3 * X8);
}

fn u8x4_scaled(w: u32) -> vec4<f32> {
    let v = w ^ 0x80808080u;
    return vec4<f32>(vec4<i32>(vec4<u32>(v & 0xffu, v & 0xff00u, v & 0xff0000u, v >> 24u)));
}

// Σ q·x over block blk, x from `weights_x`, sx = Σ x of the block.
fn dot_raw_prescaled(blk: u32, x: Xs, sx: f32) -> f32 {
    let v0 = w_q[blk * 2u];
    let v1 = w_q[blk * 2u + 1u];
    let d = u8x4_scaled(v0.x) * x.a0 + u8x4_scaled(v0.y) * x.b0 + u8x4_scaled(v0.z) * x.a1 + u8x4_scaled(v0.w) * x.b1
          + u8x4_scaled(v1.x) * x.a2 + u8x4_scaled(v1.y) * x.b2 + u8x4_scaled(v1.z) * x.a3 + u8x4_scaled(v1.w) * x.b3;
    return ((d.x + d.y) + (d.z + d.w)) - 128.0 * sx;
}

// Σ q·q_x over block blk against its 32 8-bit activation codes (in order, 4 per word: xa holds
// codes 0..15, xb 16..31), as packed integer dot products.
fn dot_q8(blk: u32, xa: vec4<u32>, xb: vec4<u32>) -> i32 {
    let v0 = w_q[blk * 2u];
    let v1 = w_q[blk * 2u + 1u];
    return (dot4I8Packed(v0.x, xa.x) + dot4I8Packed(v0.y, xa.y) + dot4I8Packed(v0.z, xa.z) + dot4I8Packed(v0.w, xa.w))
         + (dot4I8Packed(v1.x, xb.x) + dot4I8Packed(v1.y, xb.y) + dot4I8Packed(v1.z, xb.z) + dot4I8Packed(v1.w, xb.w));
}
