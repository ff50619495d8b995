// y = W·x for one token (decode), for CPU adapters (lavapipe, SwiftShader), which run a
// workgroup's invocations as SIMD lanes and a barrier as a coroutine switch: no reduction and no
// barrier. Each invocation takes ROWS rows of W (ROWS / PAIRS outputs; 64 rows per workgroup of 8
// lanes), so every x value it loads serves ROWS rows: on those adapters a load costs about as much
// as the arithmetic it feeds.
const ROWS: u32 = 8u;
const LANES: u32 = 8u;

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let outs = ROWS / PAIRS;
    let o0 = (wid.x + wid.y * nwg.x) * outs * LANES + lid;
    // Lanes take neighbouring outputs; outputs past the end repeat the last one and are not stored.
    // Row i is output o0 + LANES·(i / PAIRS), or its up row (n further on) when i is odd in a pair.
    var rows: array<u32, ROWS>;
    for (var i = 0u; i < ROWS; i++) {
        rows[i] = min(o0 + LANES * (i / PAIRS), p.n - 1u) + (i % PAIRS) * p.n;
    }
    let s = norm_scale();
    var acc: array<f32, ROWS>;
    for (var b = 0u; b < p.nb; b++) {
        // d·Σ q·x + m·Σ x per row: the scale and minimum out of the inner loop. Zeroed by an
        // explicit initializer: Chromium's SwiftShader kept the previous iteration's values for a
        // plain `var` declared in the loop (WGSL zero-initializes it on every iteration).
        var dq = array<vec4<f32>, ROWS>();
        var sx = vec4<f32>(0.0);
        for (var j = 0u; j < 4u; j++) {
            let xa = xin(b * 8u + j * 2u);
            let xb = xin(b * 8u + j * 2u + 1u);
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
    for (var i = 0u; i < outs; i++) {
        let o = o0 + LANES * i;
        if (o < p.n) { finish(o, acc[i * PAIRS], acc[i * PAIRS + PAIRS - 1u], s); }
    }
}
