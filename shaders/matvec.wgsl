// y = W·x for one token (decode), for GPUs: 64 invocations per workgroup, 4 per output (16 outputs
// per workgroup); each of an output's 4 invocations takes every 4th block, then the 4 partial sums
// are added by the reduction composed beside this file (subgroup shuffles or workgroup memory).

// Σ w·x over block b of row `row`, with the block's scale and minimum out of the inner loop:
// Σ (d·q + m)·x = d·Σ q·x + m·Σ x.
fn block_dot(row: u32, b: u32) -> f32 {
    let blk = row * p.nb + b;
    var dq = vec4<f32>(0.0);
    var sx = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
        let w = weights8_raw(blk * 4u + j);
        let xa = xin(b * 8u + j * 2u);
        let xb = xin(b * 8u + j * 2u + 1u);
        dq += w.lo * xa + w.hi * xb;
        if (HAS_MIN) { sx += xa + xb; }
    }
    let sm = block_scale(blk);
    var r = sm.x * ((dq.x + dq.y) + (dq.z + dq.w));
    if (HAS_MIN) { r += sm.y * ((sx.x + sx.y) + (sx.z + sx.w)); }
    return r;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let o = (wid.x + wid.y * nwg.x) * 16u + lid / 4u;
    let s = norm_scale();
    var a = 0.0;
    var b = 0.0;
    if (o < p.n) {
        for (var blk = lid % 4u; blk < p.nb; blk += 4u) {
            a += block_dot(o, blk);
            if (PAIRS == 2u) { b += block_dot(o + p.n, blk); }
        }
    }
    let sa = row_sum4(a, lid);
    let sb = row_sum4(b, lid);
    if (o < p.n && lid % 4u == 0u) {
        finish(o, sa, sb, s);
    }
}
