// Shared by every kernel (prepended by the engine's shader composer).

// Eight consecutive weights, dequantized: elements 0..3 in `lo`, 4..7 in `hi`.
struct W8 {
    lo: vec4<f32>,
    hi: vec4<f32>,
}

// The first key the query at position pos sees: 0, or the start of its sliding window of
// `window` keys (0: no window). As reference::Attention::first_key.
fn first_key(pos: u32, window: u32) -> u32 {
    if (window != 0u && pos + 1u > window) { return pos + 1u - window; }
    return 0u;
}

// Index of this invocation in a 1-D grid of 64-wide workgroups dispatched as (x, y):
// the host splits more than 65535 workgroups over y.
fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 64u;
}

// The 32 inputs of one weight block as 8 vec4s: group j's values 8j .. 8j+3 in aj, 8j+4 .. 8j+7 in
// bj (named members, not an array: a software compiler that does not unroll keeps arrays in memory).
struct Xs {
    a0: vec4<f32>, b0: vec4<f32>,
    a1: vec4<f32>, b1: vec4<f32>,
    a2: vec4<f32>, b2: vec4<f32>,
    a3: vec4<f32>, b3: vec4<f32>,
}

fn sum4(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}

// Σ x of a block.
fn x_sum(x: Xs) -> f32 {
    return sum4(x.a0 + x.b0 + x.a1 + x.b1 + x.a2 + x.b2 + x.a3 + x.b3);
}
