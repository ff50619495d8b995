// Sum over the 4 consecutive invocations that share a matrix row, through workgroup memory
// (portable fallback for adapters without subgroups). Call from uniform control flow; the first
// barrier lets a second call reuse the memory after every lane has read the first.
var<workgroup> red: array<f32, 64>;

fn row_sum4(v: f32, lid: u32) -> f32 {
    workgroupBarrier();
    red[lid] = v;
    workgroupBarrier();
    let b = lid & ~3u;
    return (red[b] + red[b + 1u]) + (red[b + 2u] + red[b + 3u]);
}
