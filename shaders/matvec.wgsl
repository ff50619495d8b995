// y = W·x for one token (decode), for GPUs: 64 invocations per workgroup, 4 per output (16 outputs
// per workgroup); each of an output's 4 invocations takes every 4th block, then the 4 partial sums
// are added by the reduction composed beside this file (subgroup shuffles or workgroup memory).

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let o = (wid.x + wid.y * nwg.x) * 16u + lid / 4u;
    let s = norm_scale();
    var a = 0.0;
    var b = 0.0;
    if (o < p.n) {
        for (var blk = lid % 4u; blk < p.nb; blk += 4u) {
            let x = load_block(blk);
            let sx = block_sx(x);
            a += dot_block(o, blk, x, sx);
            if (PAIRS == 2u) { b += dot_block(o + p.n, blk, x, sx); }
        }
    }
    let sa = row_sum4(a, lid);
    let sb = row_sum4(b, lid);
    if (o < p.n && lid % 4u == 0u) {
        finish(o, sa, sb, s);
    }
}
