// INT4 weights W [rows, k]: rows of nb = ceil(k / 32) blocks, zero-padded; w = d * q + m, q in 0..15.
// Block `blk` = row * nb + b: 32 nibbles in one vec4 (weight 8i+t in bits 4t..4t+3 of word i).
@group(0) @binding(0) var<storage, read> w_q: array<vec4<u32>>; // [rows * nb]
@group(0) @binding(1) var<storage, read> w_s: array<u32>; // [rows * nb] f16 d (low half), f16 m (high half)

// w = d * q + m: block_dot adds m · Σx.
const HAS_MIN: bool = true;

fn block_scale(blk: u32) -> vec2<f32> {
    return unpack2x16float(w_s[blk]);
}

// The 8 codes q of group g = blk * 4 + j (weights 8j .. 8j+7 of block blk).
fn weights8_raw(g: u32) -> W8 {
    return nibbles(w_q[g >> 2u][g & 3u]);
}

// The 8 codes of one word.
fn nibbles(w: u32) -> W8 {
    // Through i32 (the codes are 0..15): a signed conversion is one SIMD instruction on CPU
    // adapters, an unsigned one several.
    let lo = vec4<f32>(vec4<i32>(vec4<u32>(w, w >> 4u, w >> 8u, w >> 12u) & vec4<u32>(15u)));
    let hi = vec4<f32>(vec4<i32>(vec4<u32>(w >> 16u, w >> 20u, w >> 24u, w >> 28u) & vec4<u32>(15u)));
    return W8(lo, hi);
}

// Weights 8j .. 8j+7 of block blk, where g = blk * 4 + j.
fn weights8(g: u32, sm: vec2<f32>) -> W8 {
    let r = weights8_raw(g);
    return W8(r.lo * sm.x + sm.y, r.hi * sm.x + sm.y);
}

fn nib8(w: u32, a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
    let q = nibbles(w);
    return q.lo * a + q.hi * b;
}

// Σ q·x over block blk (its one vec4 loaded once).
fn dot_raw(blk: u32, x: Xs) -> f32 {
    let w = w_q[blk];
    let d = nib8(w.x, x.a0, x.b0) + nib8(w.y, x.a1, x.b1) + nib8(w.z, x.a2, x.b2) + nib8(w.w, x.a3, x.b3);
    return (d.x + d.y) + (d.z + d.w);
}

// The shift-free form for CPU adapters (the rows matvec): nibble t of a word is masked in place,
// q·16^t, and converted as is (exact: 4 significant bits), against x pre-scaled by 16^-t once per
// block by `weights_x` (exact: powers of two), so q·16^t · x·16^-t = q·x with one operation less
// per weight. The top nibble is shifted down (as i32 it would be negative).
const X_LO: vec4<f32> = vec4<f32>(1.0, 0.0625, 0.00390625, 0.000244140625);
const X_HI: vec4<f32> = vec4<f32>(1.52587890625e-5, 9.5367431640625e-7, 5.9604644775390625e-8, 1.0);

fn weights_x(x: Xs) -> Xs {
    return Xs(x.a0 * X_LO, x.b0 * X_HI, x.a1 * X_LO, x.b1 * X_HI, x.a2 * X_LO, x.b2 * X_HI, x.a3 * X_LO, x.b3 * X_HI);
}

fn nib8_prescaled(w: u32, a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
    let lo = vec4<f32>(vec4<i32>(vec4<u32>(w) & vec4<u32>(0xfu, 0xf0u, 0xf00u, 0xf000u)));
    let hi = vec4<f32>(vec4<i32>(vec4<u32>(w & 0xf0000u, w & 0xf00000u, w & 0xf000000u, w >> 28u)));
    return lo * a + hi * b;
}

// Σ q·x over block blk, x from `weights_x` (sx, Σ x, is not needed here).
fn dot_raw_prescaled(blk: u32, x: Xs, sx: f32) -> f32 {
    let w = w_q[blk];
    let d = nib8_prescaled(w.x, x.a0, x.b0) + nib8_prescaled(w.y, x.a1, x.b1) + nib8_prescaled(w.z, x.a2, x.b2) + nib8_prescaled(w.w, x.a3, x.b3);
    return (d.x + d.y) + (d.z + d.w);
}

// Σ q·q_x over the 8 weights of word w: its even nibbles are bytes of w & 0x0f0f0f0f, its odd ones
// of (w >> 4) & 0x0f0f0f0f, against the codes of those weights (`act_q8.wgsl` interleaves them so:
// ev holds codes 0, 2, 4, 6 of the 8, od codes 1, 3, 5, 7).
fn nib_dot(w: u32, ev: u32, od: u32) -> i32 {
    return dot4I8Packed(w & 0x0f0f0f0fu, ev) + dot4I8Packed((w >> 4u) & 0x0f0f0f0fu, od);
}

// Σ q·q_x over block blk against its 32 8-bit activation codes, interleaved per 8 (see `nib_dot`),
// as packed integer dot products.
fn dot_q8(blk: u32, xa: vec4<u32>, xb: vec4<u32>) -> i32 {
    let w = w_q[blk];
    return (nib_dot(w.x, xa.x, xa.y) + nib_dot(w.y, xa.z, xa.w)) + (nib_dot(w.z, xb.x, xb.y) + nib_dot(w.w, xb.z, xb.w));
}
