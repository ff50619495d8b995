// INT3 weights W [rows, k]: rows of nb = ceil(k / 32) blocks, zero-padded; w = d * q + m, q in 0..7.
// Block `blk` = row * nb + b: 3 words. Words 0 and 1 hold each code's low two bits (weight 16j+t in
// bits 2t..2t+1 of word j, read by `crumbs` in crumbs.wgsl), word 2 its high bit (weight i in bit i).
@group(0) @binding(0) var<storage, read> w_q: array<u32>; // [rows * nb * 3]
@group(0) @binding(1) var<storage, read> w_s: array<u32>; // [rows * nb] f16 d (low half), f16 m (high half)

// w = d * q + m: block_dot adds m · Σx.
const HAS_MIN: bool = true;

fn block_scale(blk: u32) -> vec2<f32> {
    return unpack2x16float(w_s[blk]);
}

// The 8 codes whose two low bits are in the low 16 bits of l and high bits in the low 8 bits of h.
fn codes8(l: u32, h: u32) -> W8 {
    let c = crumbs(l);
    let top_lo = vec4<f32>(vec4<i32>(vec4<u32>(h, h >> 1u, h >> 2u, h >> 3u) & vec4<u32>(1u)));
    let top_hi = vec4<f32>(vec4<i32>(vec4<u32>(h >> 4u, h >> 5u, h >> 6u, h >> 7u) & vec4<u32>(1u)));
    return W8(c.lo + 4.0 * top_lo, c.hi + 4.0 * top_hi);
}

// The 8 codes q of group g = blk * 4 + j (weights 8j .. 8j+7 of block blk).
fn weights8_raw(g: u32) -> W8 {
    let base = (g >> 2u) * 3u;
    let j = g & 3u;
    return codes8(w_q[base + (j >> 1u)] >> (16u * (j & 1u)), w_q[base + 2u] >> (8u * j));
}

// Weights 8j .. 8j+7 of block blk, where g = blk * 4 + j.
fn weights8(g: u32, sm: vec2<f32>) -> W8 {
    let r = weights8_raw(g);
    return W8(r.lo * sm.x + sm.y, r.hi * sm.x + sm.y);
}

fn code8(l: u32, h: u32, a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
    let q = codes8(l, h);
    return q.lo * a + q.hi * b;
}

// Σ q·x over block blk (its 3 words loaded once).
fn dot_raw(blk: u32, x: Xs) -> f32 {
    let w0 = w_q[blk * 3u];
    let w1 = w_q[blk * 3u + 1u];
    let h = w_q[blk * 3u + 2u];
    let d = code8(w0, h, x.a0, x.b0) + code8(w0 >> 16u, h >> 8u, x.a1, x.b1)
          + code8(w1, h >> 16u, x.a2, x.b2) + code8(w1 >> 16u, h >> 24u, x.a3, x.b3);
    return (d.x + d.y) + (d.z + d.w);
}

// The rows matvec's form: no pre-scaling for this format (x as it is).
fn weights_x(x: Xs) -> Xs {
    return x;
}

fn dot_raw_prescaled(blk: u32, x: Xs, sx: f32) -> f32 {
    return dot_raw(blk, x);
}
