// The barrier-free matmul's input (`matmul_rows.wgsl`) as 8-bit activations, as
// `act_q8_rows.wgsl` writes them: each row's blocks of 32 codes (8 words, 4 codes a word, in
// order), then every block's scale d. A pair of 8 values costs 3 loads instead of 8 (a quarter
// of the bytes), and x̂ = d·q is exactly the f32 value the f32 input would hold after
// quantization, so the kernel's sums are the same to the bit.
@group(0) @binding(2) var<storage, read> x: array<u32>; // [m · nb · 8] codes, then [m · nb] f32 d

// x̂[t0 + i, o .. o + 8) (o a multiple of 8): pair i for `load8`, zero past the last token (codes
// past k are zero).
fn x_pair(t0: u32, o: u32, i: u32) -> W8 {
    let t = t0 + i;
    if (t >= p.m || o >= p.k) { return W8(vec4<f32>(0.0), vec4<f32>(0.0)); }
    let w = t * p.nb * 8u + o / 4u;
    let d = bitcast<f32>(x[p.m * p.nb * 8u + t * p.nb + o / 32u]);
    return W8(vec4<f32>(unpack4xI8(x[w])) * d, vec4<f32>(unpack4xI8(x[w + 1u])) * d);
}
