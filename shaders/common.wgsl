// Shared by every kernel (prepended by the engine's shader composer).

// Eight consecutive weights, dequantized: elements 0..3 in `lo`, 4..7 in `hi`.
struct W8 {
    lo: vec4<f32>,
    hi: vec4<f32>,
}

// Index of this invocation in a 1-D grid of 64-wide workgroups dispatched as (x, y):
// the host splits more than 65535 workgroups over y.
fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 64u;
}
