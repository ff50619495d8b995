// How the barrier-free kernels (matvec_rows, matmul_rows) load the inputs every invocation of a
// workgroup shares, with subgroups: invocations 0..3 of a subgroup each load a quarter and
// `subgroupBroadcast` hands it to the others. On CPU adapters a storage load costs a loop over the
// SIMD lanes (lavapipe loads each lane's each component in turn), a broadcast a register move:
// this cuts the loads of x 4-fold. Needs subgroups of at least 4 invocations (the host checks).
// The kernel defines `x_pair(a, c, i)`: pair i (0..3) of the 8 vec4s it needs at (a, c), as a W8
// (8 consecutive values).
// The entry point's per-invocation builtins (the workgroup's come as parameters of their own: a
// browser's uniformity analysis treats a struct parameter as one, non-uniform, value).
struct RowsIn {
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) sg: u32,
}

// Invocations that split a load (lane 0 .. SHARERS - 1 each take a part).
const SHARERS: u32 = 4u;

fn lane(inv: RowsIn) -> u32 {
    return inv.sg & 3u;
}

// The 8 vec4s at (a, c): this invocation loads pair `lane`, the subgroup's lanes 0..3 give the rest.
fn load8(a: u32, c: u32, lane: u32) -> Xs {
    let q = x_pair(a, c, lane);
    return Xs(subgroupBroadcast(q.lo, 0u), subgroupBroadcast(q.hi, 0u), subgroupBroadcast(q.lo, 1u), subgroupBroadcast(q.hi, 1u),
              subgroupBroadcast(q.lo, 2u), subgroupBroadcast(q.hi, 2u), subgroupBroadcast(q.lo, 3u), subgroupBroadcast(q.hi, 3u));
}

// The sum of v over the sharers (lanes 0..3 of the subgroup).
fn total4(v: vec4<f32>) -> vec4<f32> {
    return (subgroupBroadcast(v, 0u) + subgroupBroadcast(v, 1u)) + (subgroupBroadcast(v, 2u) + subgroupBroadcast(v, 3u));
}
