// KV cache in INT4: units of 64 values along a token's row (two blocks of 32, one f16 scale d
// each), 9 words a unit: 8 words of nibbles (value i in bits 4(i % 8) of word i / 8), then both
// scales (block 0 low half); code q stands for d · kv_level(q) (kv_grid.wgsl).
@group(0) @binding(1) var<storage, read_write> kv: array<u32>; // [n_ctx * kv_heads * head_dim / 64 * 9]

const KV_UNIT: u32 = 64u;
const KV_HALF: f32 = 7.5;

// Values i .. i + 4 (i a multiple of 4): four nibbles of one word, one scale.
fn kv_load4(i: u32) -> vec4<f32> {
    let b = (i >> 6u) * 9u;
    let r = i & 63u;
    let w = kv[b + (r >> 3u)] >> ((r & 7u) * 4u);
    let q = vec4<u32>(w, w >> 4u, w >> 8u, w >> 12u) & vec4<u32>(15u);
    return kv_level(q) * unpack2x16float(kv[b + 8u])[r >> 5u];
}

// Values i .. i + 8 (i a multiple of 8): one word of nibbles, one scale.
fn kv_load8(i: u32) -> W8 {
    let b = (i >> 6u) * 9u;
    let r = i & 63u;
    let w = kv[b + (r >> 3u)];
    let d = unpack2x16float(kv[b + 8u])[r >> 5u];
    let lo = vec4<u32>(w, w >> 4u, w >> 8u, w >> 12u) & vec4<u32>(15u);
    let hi = vec4<u32>(w >> 16u, w >> 20u, w >> 24u, w >> 28u) & vec4<u32>(15u);
    return W8(kv_level(lo) * d, kv_level(hi) * d);
}

// Quantize and store the unit of values i0 .. i0 + 64 (i0 a multiple of 64).
fn kv_store_unit(i0: u32, v: array<f32, KV_UNIT>) {
    let b = (i0 >> 6u) * 9u;
    var scales = 0u;
    for (var h = 0u; h < 2u; h++) {
        let d = kv_block_scale(v, h);
        let inv = select(0.0, 1.0 / d, d > 0.0);
        for (var w = 0u; w < 4u; w++) {
            var word = 0u;
            for (var t = 0u; t < 8u; t++) {
                word |= kv_code(v[h * 32u + w * 8u + t] * inv) << (t * 4u);
            }
            kv[b + h * 4u + w] = word;
        }
        scales |= (pack2x16float(vec2<f32>(d, 0.0)) & 0xffffu) << (h * 16u);
    }
    kv[b + 8u] = scales;
}
