// y = W·x̂ for one token with 8-bit activations, for GPUs: as `matvec.wgsl` (64 invocations, 4 per
// output, each taking every 4th block; the 4 partial sums added by the reduction composed beside
// this file), each block a handful of packed integer dot products (`dot_q8`).

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let o = (wid.x + wid.y * nwg.x) * 16u + lid / 4u;
    var a = 0.0;
    var b = 0.0;
    if (o < p.n) {
        for (var blk = lid % 4u; blk < p.nb; blk += 4u) {
            let xa = xq[blk * 2u];
            let xb = xq[blk * 2u + 1u];
            let ds = xd[blk];
            a += dot_block_q8(o, blk, xa, xb, ds);
            if (PAIRS == 2u) { b += dot_block_q8(o + p.n, blk, xa, xb, ds); }
        }
    }
    let sa = row_sum4(a, lid);
    let sb = row_sum4(b, lid);
    if (o < p.n && lid % 4u == 0u) {
        finish(o, sa, sb, xd[p.nb].x);
    }
}
