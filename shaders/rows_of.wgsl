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

// The 8 row sums of the invocation whose first output is o0 (rows as `row_of` gives them), times
// the norm scale s.
fn store8(o0: u32, a0: f32, a1: f32, a2: f32, a3: f32, a4: f32, a5: f32, a6: f32, a7: f32, s: f32) {
    if (PAIRS == 2u) {
        store(o0, a0, a1, s);
        store(o0 + LANES, a2, a3, s);
        store(o0 + 2u * LANES, a4, a5, s);
        store(o0 + 3u * LANES, a6, a7, s);
    } else {
        store(o0, a0, 0.0, s);
        store(o0 + LANES, a1, 0.0, s);
        store(o0 + 2u * LANES, a2, 0.0, s);
        store(o0 + 3u * LANES, a3, 0.0, s);
        store(o0 + 4u * LANES, a4, 0.0, s);
        store(o0 + 5u * LANES, a5, 0.0, s);
        store(o0 + 6u * LANES, a6, 0.0, s);
        store(o0 + 7u * LANES, a7, 0.0, s);
    }
}
