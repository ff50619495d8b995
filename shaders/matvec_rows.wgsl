// y = W·x for one token (decode), for CPU adapters (lavapipe, SwiftShader), which run a
// workgroup's invocations as SIMD lanes and a barrier as a coroutine switch: no reduction and no
// barrier. Each invocation computes ROWS rows (64 rows per workgroup of 8), so every x value it
// loads serves ROWS rows: on those adapters a load costs about as much as the arithmetic it feeds.
const ROWS: u32 = 8u;
const LANES: u32 = 8u;

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row0 = (wid.x + wid.y * nwg.x) * ROWS * LANES + lid;
    // Lanes take neighbouring rows; rows past the end repeat the last one and are not stored.
    var rows: array<u32, ROWS>;
    for (var i = 0u; i < ROWS; i++) {
        rows[i] = min(row0 + LANES * i, p.n - 1u);
    }
    var acc: array<f32, ROWS>;
    for (var b = 0u; b < p.nb; b++) {
        // d·Σ q·x + m·Σ x per row: the scale and minimum out of the inner loop.
        var dq: array<vec4<f32>, ROWS>;
        var sx = vec4<f32>(0.0);
        for (var j = 0u; j < 4u; j++) {
            let xa = x[b * 8u + j * 2u];
            let xb = x[b * 8u + j * 2u + 1u];
            if (HAS_MIN) { sx += xa + xb; }
            for (var i = 0u; i < ROWS; i++) {
                let w = weights8_raw((rows[i] * p.nb + b) * 4u + j);
                dq[i] += w.lo * xa + w.hi * xb;
            }
        }
        let sxs = (sx.x + sx.y) + (sx.z + sx.w);
        for (var i = 0u; i < ROWS; i++) {
            let sm = block_scale(rows[i] * p.nb + b);
            var r = sm.x * ((dq[i].x + dq[i].y) + (dq[i].z + dq[i].w));
            if (HAS_MIN) { r += sm.y * sxs; }
            acc[i] += r;
        }
    }
    for (var i = 0u; i < ROWS; i++) {
        if (row0 + LANES * i < p.n) { y[row0 + LANES * i] = acc[i]; }
    }
}
