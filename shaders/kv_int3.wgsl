// KV cache in INT3: units of 64 values along a token's row (two blocks of 32, one f16 scale d
// each), 7 words a unit: the low two bits of each code in 4 words (value i at bits 2(i % 16) of
// word i / 16), the high bits in 2 words (bit i % 32 of word 4 + i / 32), then both scales
// (block 0 low half): 3.5 bits a value; code q stands for d · kv_level(q) (kv_grid.wgsl).
@group(0) @binding(1) var<storage, read_write> kv: array<u32>; // [n_ctx * kv_heads * head_dim / 64 * 7]

const KV_UNIT: u32 = 64u;
const KV_HALF: f32 = 3.5;

// Values i .. i + 4 (i a multiple of 4): four crumbs, four high bits, one scale.
fn kv_load4(i: u32) -> vec4<f32> {
    let b = (i >> 6u) * 7u;
    let r = i & 63u;
    let lo = kv[b + (r >> 4u)] >> ((r & 15u) * 2u);
    let hi = kv[b + 4u + (r >> 5u)] >> (r & 31u);
    let q = (vec4<u32>(lo, lo >> 2u, lo >> 4u, lo >> 6u) & vec4<u32>(3u)) | ((vec4<u32>(hi, hi >> 1u, hi >> 2u, hi >> 3u) & vec4<u32>(1u)) << vec4<u32>(2u));
    return kv_level(q) * unpack2x16float(kv[b + 6u])[r >> 5u];
}

// Values i .. i + 8 (i a multiple of 8): eight crumbs, eight high bits, one scale.
fn kv_load8(i: u32) -> W8 {
    let b = (i >> 6u) * 7u;
    let r = i & 63u;
    let lo = kv[b + (r >> 4u)] >> ((r & 15u) * 2u);
    let hi = kv[b + 4u + (r >> 5u)] >> (r & 31u);
    let d = unpack2x16float(kv[b + 6u])[r >> 5u];
    let m3 = vec4<u32>(3u);
    let m1 = vec4<u32>(1u);
    let q0 = (vec4<u32>(lo, lo >> 2u, lo >> 4u, lo >> 6u) & m3) | ((vec4<u32>(hi, hi >> 1u, hi >> 2u, hi >> 3u) & m1) << vec4<u32>(2u));
    let q1 = (vec4<u32>(lo >> 8u, lo >> 10u, lo >> 12u, lo >> 14u) & m3) | ((vec4<u32>(hi >> 4u, hi >> 5u, hi >> 6u, hi >> 7u) & m1) << vec4<u32>(2u));
    return W8(kv_level(q0) * d, kv_level(q1) * d);
}

// Quantize and store the unit of values i0 .. i0 + 64 (i0 a multiple of 64).
fn kv_store_unit(i0: u32, v: array<f32, KV_UNIT>) {
    let b = (i0 >> 6u) * 7u;
    var scales = 0u;
    for (var h = 0u; h < 2u; h++) {
        let d = kv_block_scale(v, h);
        let inv = select(0.0, 1.0 / d, d > 0.0);
        var high = 0u;
        for (var w = 0u; w < 2u; w++) {
            var word = 0u;
            for (var t = 0u; t < 16u; t++) {
                let q = kv_code(v[h * 32u + w * 16u + t] * inv);
                word |= (q & 3u) << (t * 2u);
                high |= (q >> 2u) << (w * 16u + t);
            }
            kv[b + h * 2u + w] = word;
        }
        kv[b + 4u + h] = high;
        scales |= (pack2x16float(vec2<f32>(d, 0.0)) & 0xffffu) << (h * 16u);
    }
    kv[b + 6u] = scales;
}
