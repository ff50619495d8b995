// y = W·x for one token (decode), for GPUs: 64 invocations per workgroup, 4 per row (16 rows per
// workgroup); each of a row's 4 invocations takes every 4th block, then the 4 partial sums are
// added by the reduction composed beside this file (subgroup shuffles or workgroup memory).

// Σ w·x over block b of row `row`, with the block's scale and minimum out of the inner loop:
// Σ (d·q + m)·x = d·Σ q·x + m·Σ x.
fn block_dot(row: u32, b: u32) -> f32 {
    let blk = row * p.nb + b;
    var dq = vec4<f32>(0.0);
    var sx = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
        let w = weights8_raw(blk * 4u + j);
        let xa = x[b * 8u + j * 2u];
        let xb = x[b * 8u + j * 2u + 1u];
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
    let row = (wid.x + wid.y * nwg.x) * 16u + lid / 4u;
    var acc = 0.0;
    if (row < p.n) {
        for (var b = lid % 4u; b < p.nb; b += 4u) {
            acc += block_dot(row, b);
        }
    }
    let s = row_sum4(acc, lid);
    if (row < p.n && lid % 4u == 0u) {
        y[row] = s;
    }
}
