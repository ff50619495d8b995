// Sum over the 4 consecutive invocations that share a matrix row, with subgroup shuffles (no
// barrier). Needs a subgroup size that is a multiple of 4 (the host checks the adapter's minimum).
fn row_sum4(v: f32, lid: u32) -> f32 {
    var s = v + subgroupShuffleXor(v, 1u);
    s = s + subgroupShuffleXor(s, 2u);
    return s;
}
