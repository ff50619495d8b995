// The grid of the INT4 and INT3 KV formats (composed after kv_int4.wgsl or kv_int3.wgsl, which
// set KV_HALF): code q stands for d · kv_level(q), u = q − KV_HALF steps from the middle, either
// the uniform grid (KV_A = 1, KV_B = 0, d = max|v| / KV_HALF: every code used, none at 0) or, for
// the rotated formats, a Lloyd–Max grid u · (KV_A + KV_B · u²) with d = max|v| (KV_DIV = 1). The
// engine prepends KV_A, KV_B and KV_DIV (layout::KvPrecision::grid, the CPU reference).

fn kv_level(q: vec4<u32>) -> vec4<f32> {
    let u = vec4<f32>(q) - KV_HALF;
    return u * (KV_A + KV_B * u * u);
}

// The code of y (a value over its block scale): the number of midpoints between adjacent levels
// below it, as the CPU's KvPrecision::code.
fn kv_code(y: f32) -> u32 {
    var q = 0u;
    for (var k = 1u; k <= u32(2.0 * KV_HALF); k++) {
        let m = kv_level(vec4<u32>(k - 1u, k, 0u, 0u));
        q += u32(y > (m.x + m.y) / 2.0);
    }
    return q;
}

// The f16 scale of block h (values 32h .. 32h + 32) of a unit, as KvPrecision::block_scale: of
// the KV_SEARCH scales f16(max|v| · (1 − k / 50) / KV_DIV), k = 0, 1, …, the first whose codes
// leave the least squared error (rotated INT3, whose coarse grid gains from clipping the largest
// value; the others try only k = 0).
fn kv_block_scale(v: array<f32, KV_UNIT>, h: u32) -> f32 {
    var amax = 0.0;
    for (var j = 0u; j < 32u; j++) {
        amax = max(amax, abs(v[h * 32u + j]));
    }
    var best = f16_round(amax / KV_DIV);
    var least = 0.0;
    for (var k = 0u; k < KV_SEARCH && KV_SEARCH > 1u; k++) {
        let d = f16_round(amax * (1.0 - 0.02 * f32(k)) / KV_DIV);
        if (d <= 0.0) { break; }
        let inv = 1.0 / d;
        var e = 0.0;
        for (var j = 0u; j < 32u; j++) {
            let x = v[h * 32u + j];
            let r = d * kv_level(vec4<u32>(kv_code(x * inv))).x;
            e += (r - x) * (r - x);
        }
        if (k == 0u || e < least) {
            best = d;
            least = e;
        }
    }
    return best;
}

fn f16_round(x: f32) -> f32 {
    return unpack2x16float(pack2x16float(vec2<f32>(x, 0.0))).x;
}
