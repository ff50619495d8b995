// The barrier-free matmul's input (`matmul_rows.wgsl`): X [m, k] in f32, read as vec4s.
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>; // [m, k / 4]

// x[t, o .. o + 4), zero past the row or the last token.
fn xt4(t: u32, o: u32) -> vec4<f32> {
    if (t >= p.m || o >= p.k) { return vec4<f32>(0.0); }
    return x[(t * p.k + o) / 4u];
}

// x[t0 + i, o .. o + 8): pair i for `load8`, which gives the 4 tokens' values (token i's in ai, bi).
fn x_pair(t0: u32, o: u32, i: u32) -> W8 {
    return W8(xt4(t0 + i, o), xt4(t0 + i, o + 4u));
}
