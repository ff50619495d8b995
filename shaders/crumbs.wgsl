// Two-bit codes, shared by the INT2 and INT3 weight formats (composed before either).

// The 8 two-bit codes in the low 16 bits of w (through i32: one SIMD conversion on CPU adapters).
fn crumbs(w: u32) -> W8 {
    let lo = vec4<f32>(vec4<i32>(vec4<u32>(w, w >> 2u, w >> 4u, w >> 6u) & vec4<u32>(3u)));
    let hi = vec4<f32>(vec4<i32>(vec4<u32>(w >> 8u, w >> 10u, w >> 12u, w >> 14u) & vec4<u32>(3u)));
    return W8(lo, hi);
}
