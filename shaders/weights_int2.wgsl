// INT2 weights W [rows, k]: rows of nb = ceil(k / 32) blocks, zero-padded; w = d * q + m, q in 0..3.
// Block `blk` = row * nb + b: 32 two-bit codes in 2 words (weight 16j+t in bits 2t..2t+1 of word j),
// read by `crumbs` (crumbs.wgsl).
@group(0) @binding(0) var<storage, read> w_q: array<u32>; // [rows * nb * 2]
@group(0) @binding(1) var<storage, read> w_s: array<u32>; // [rows * nb] f16 d (low half), f16 m (high half)

// w = d * q + m: block_dot adds m · Σx.
const HAS_MIN: bool = true;

fn block_scale(blk: u32) -> vec2<f32> {
    return unpack2x16float(w_s[blk]);
}

// The 8 codes q of group g = blk * 4 + j (weights 8j .. 8j+7 of block blk).
fn weights8_raw(g: u32) -> W8 {
    let j = g & 3u;
    return crumbs(w_q[(g >> 2u) * 2u + (j >> 1u)] >> (16u * (j & 1u)));
}

// Weights 8j .. 8j+7 of block blk, where g = blk * 4 + j.
fn weights8(g: u32, sm: vec2<f32>) -> W8 {
    let r = weights8_raw(g);
    return W8(r.lo * sm.x + sm.y, r.hi * sm.x + sm.y);
}

fn crumb8(w: u32, a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
    let q = crumbs(w);
    return q.lo * a + q.hi * b;
}

// Σ q·x over block blk (its 2 words loaded once).
fn dot_raw(blk: u32, x: Xs) -> f32 {
    let w0 = w_q[blk * 2u];
    let w1 = w_q[blk * 2u + 1u];
    let d = crumb8(w0, x.a0, x.b0) + crumb8(w0 >> 16u, x.a1, x.b1) + crumb8(w1, x.a2, x.b2) + crumb8(w1 >> 16u, x.a3, x.b3);
    return (d.x + d.y) + (d.z + d.w);
}

// The rows matvec's form: no pre-scaling for this format (x as it is).
fn weights_x(x: Xs) -> Xs {
    return x;
}

fn dot_raw_prescaled(blk: u32, x: Xs, sx: f32) -> f32 {
    return dot_raw(blk, x);
}
