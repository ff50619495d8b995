// The decode matvecs' output (`matvec_io.wgsl`, `matvec_q8_io.wgsl`): y [n], written by `finish`
// with what the generated header fuses in (PAIRS = 2: the gate and up rows stacked; ADD: the
// residual connection).
@group(0) @binding(3) var<storage, read_write> y: array<f32>; // [n]

// Write output o from its row sums: a (and b, the up row, with PAIRS = 2), times the norm scale s.
fn finish(o: u32, a: f32, b: f32, s: f32) {
    var v = a * s;
    if (PAIRS == 2u) { v = act(v) * (b * s); }
    if (ADD) { v += y[o]; }
    y[o] = v;
}

