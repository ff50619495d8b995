// Which rows the barrier-free decode matvecs (`matvec_rows.wgsl`, `matvec_q8_rows.wgsl`) give an
// invocation, and where its outputs go: 8 rows per invocation, 8 invocations (lanes) per workgroup.
const LANES: u32 = 8u;

// Row i (0..8) of the invocation whose first output is o0: output o0 + LANES·(i / PAIRS), or its
// up row (n further on) when i is odd in a pair. Outputs past the end repeat the last one.
fn row_of(o0: u32, i: u32) -> u32 {
    return min(o0 + LANES * (i / PAIRS), p.n - 1u) + (i % PAIRS) * p.n;
}

fn store(o: u32, a: f32, b: f32, s: f32) {
    if (o < p.n) { finish(o, a, b, s); }
}

