// The grid of the INT4 and INT3 KV formats (composed after kv_int4.wgsl or kv_int3.wgsl, which
// set KV_HALF): code q stands for d · kv_level(q), u = q − KV_HALF steps from the middle, either
// the uniform grid (KV_A = 1, KV_B = 0, d = max|v| / KV_HALF: every code used, none at 0) or, for
// the rotated formats, a Lloyd–Max grid u · (KV_A + KV_B · u²) with d = max|v| (KV_DIV = 1). The
// engine prepends KV_A, KV_B and KV_DIV (layout::KvPrecision::grid, the CPU reference), KV_SEARCH
// and KV_SEARCH_STEP (KvPrecision::search, layout::KV_SEARCH_STEP), and the grid's midpoints
// KV_MIDS, KV_MIDS_N vec4s (KvPrecision::midpoints).

fn kv_level(q: vec4<u32>) -> vec4<f32> {
    let u = vec4<f32>(q) - KV_HALF;
    return u * (KV_A + KV_B * u * u);
}

// The code of y (a value over its block scale): the number of midpoints between adjacent levels
// below it, as the CPU's KvPrecision::code (KV_MIDS: KvPrecision::midpoints, from the engine).
fn kv_code(y: f32) -> u32 {
    var q = vec4<u32>();
    for (var i = 0u; i < KV_MIDS_N; i++) {
        q += select(vec4<u32>(0u), vec4<u32>(1u), vec4<f32>(y) > KV_MIDS[i]);
    }
    return q.x + q.y + q.z + q.w;
}

// The f16 scale of block h (values 32h .. 32h + 32) of a unit, as KvPrecision::block_scale: of
// the KV_SEARCH scales f16(max|v| · (1 − KV_SEARCH_STEP · k) / KV_DIV), k = 0, 1, …, the first
// whose codes leave the least squared error (rotated INT3, whose coarse grid gains from clipping
// the largest value; the others try only k = 0).
fn kv_block_scale(v: array<f32, KV_UNIT>, h: u32) -> f32 {
    var amax = 0.0;
    for (var j = 0u; j < 32u; j++) {
        amax = max(amax, abs(v[h * 32u + j]));
    }
    let first = f16_round(amax / KV_DIV);
    if (KV_SEARCH <= 1u || first <= 0.0) { return first; }
    // Each value read once for every scale tried (the errors add up in the CPU's order).
    var d: array<f32, KV_SEARCH>;
    var inv: array<f32, KV_SEARCH>;
    var e: array<f32, KV_SEARCH>;
    for (var k = 0u; k < KV_SEARCH; k++) {
        d[k] = f16_round(amax * (1.0 - KV_SEARCH_STEP * f32(k)) / KV_DIV);
        inv[k] = 1.0 / d[k];
    }
    for (var j = 0u; j < 32u; j++) {
        let x = v[h * 32u + j];
        for (var k = 0u; k < KV_SEARCH; k++) {
            let r = d[k] * kv_level(vec4<u32>(kv_code(x * inv[k]))).x;
            e[k] += (r - x) * (r - x);
        }
    }
    var best = first;
    var least = e[0];
    for (var k = 1u; k < KV_SEARCH; k++) {
        if (d[k] > 0.0 && e[k] < least) {
            best = d[k];
            least = e[k];
        }
    }
    return best;
}

fn f16_round(x: f32) -> f32 {
    return unpack2x16float(pack2x16float(vec2<f32>(x, 0.0))).x;
}
