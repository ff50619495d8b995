// How the barrier-free kernels (matvec_rows, matmul_rows) load the inputs every invocation of a
// workgroup shares: here each invocation loads them all itself (adapters without subgroups).
// The kernel defines `x_pair(a, c, i)`: pair i (0..3) of the 8 vec4s it needs at (a, c), as a W8
// (8 consecutive values).
// The entry point's per-invocation builtins (the workgroup's come as parameters of their own: a
// browser's uniformity analysis treats a struct parameter as one, non-uniform, value).
struct RowsIn {
    @builtin(local_invocation_index) lid: u32,
}

// Invocations that split a load (lane 0 .. SHARERS - 1 each take a part).
const SHARERS: u32 = 1u;

fn lane(inv: RowsIn) -> u32 {
    return 0u;
}

// The 8 vec4s at (a, c).
fn load8(a: u32, c: u32, lane: u32) -> Xs {
    let q0 = x_pair(a, c, 0u);
    let q1 = x_pair(a, c, 1u);
    let q2 = x_pair(a, c, 2u);
    let q3 = x_pair(a, c, 3u);
    return Xs(q0.lo, q0.hi, q1.lo, q1.hi, q2.lo, q2.hi, q3.lo, q3.hi);
}

// The sum of v over the sharers: v itself.
fn total4(v: vec4<f32>) -> vec4<f32> {
    return v;
}
