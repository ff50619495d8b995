// Integer matvec inputs, shared by its variants: y = W·x̂ for one token (decode), x̂ the 8-bit
// activations `act_q8.wgsl` wrote (4 codes per word, a scale and its codes' sum per block), W in
// the INT8 or INT4 layout composed beside this file (its `dot_q8`: Σ q_w·q_x as an integer). A
// generated header says PAIRS and ADD, as for `matvec_io.wgsl`; a fused norm was applied by
// `act_q8.wgsl`, which left the norm's scale in xd[nb].x (1 without one).
@group(0) @binding(2) var<storage, read> xq: array<vec4<u32>>; // [nb * 2]

struct Params {
    n: u32,   // outputs (rows of W, or half of them with PAIRS = 2)
    k: u32,   // inputs
    nb: u32,  // blocks per row = ceil(k / 32)
    eps: f32, // unused here (the norm ran in act_q8)
}
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<storage, read> xd: array<vec2<f32>>; // [nb + 1] (d, d·Σq); [nb].x the norm scale

// Σ w·x̂ over block b of `row` from its integer dot product: Σ (d_w·q_w + m)·d·q
// = d_w·d·Σ q_w·q + m·(d·Σ q) (ds = (d, d·Σ q) of the block).
fn dot_block_q8(row: u32, b: u32, xa: vec4<u32>, xb: vec4<u32>, ds: vec2<f32>) -> f32 {
    let blk = row * p.nb + b;
    let sm = block_scale(blk);
    var r = (sm.x * ds.x) * f32(dot_q8(blk, xa, xb));
    if (HAS_MIN) { r += sm.y * ds.y; }
    return r;
}
