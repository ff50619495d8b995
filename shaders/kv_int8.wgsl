// KV cache in INT8: blocks of 32 values along a token's row, 9 words each: 8 words of signed
// bytes (value 4i+t in byte t of word i), then the f16 scale d in the low half; v = d * q.
@group(0) @binding(1) var<storage, read_write> kv: array<u32>; // [n_ctx * kv_heads * head_dim / 32 * 9]

const KV_UNIT: u32 = 32u;

// Values i .. i + 4 (i a multiple of 4): one word of codes, one scale.
fn kv_load4(i: u32) -> vec4<f32> {
    let b = (i >> 5u) * 9u;
    let w = bitcast<i32>(kv[b + ((i & 31u) >> 2u)]);
    let q = vec4<i32>(extractBits(w, 0u, 8u), extractBits(w, 8u, 8u), extractBits(w, 16u, 8u), extractBits(w, 24u, 8u));
    return vec4<f32>(q) * unpack2x16float(kv[b + 8u]).x;
}

// Values i .. i + 8 (i a multiple of 8): two words of codes, one scale.
fn kv_load8(i: u32) -> W8 {
    let b = (i >> 5u) * 9u;
    let o = b + ((i & 31u) >> 2u);
    let w0 = bitcast<i32>(kv[o]);
    let w1 = bitcast<i32>(kv[o + 1u]);
    let d = unpack2x16float(kv[b + 8u]).x;
    let q0 = vec4<i32>(extractBits(w0, 0u, 8u), extractBits(w0, 8u, 8u), extractBits(w0, 16u, 8u), extractBits(w0, 24u, 8u));
    let q1 = vec4<i32>(extractBits(w1, 0u, 8u), extractBits(w1, 8u, 8u), extractBits(w1, 16u, 8u), extractBits(w1, 24u, 8u));
    return W8(vec4<f32>(q0) * d, vec4<f32>(q1) * d);
}

// Quantize and store the block of values i0 .. i0 + 32 (i0 a multiple of 32): d = f16(max|v| / 127),
// q = round(v / d), as the CPU's BlockInt8.
fn kv_store_unit(i0: u32, v: array<f32, KV_UNIT>) {
    var amax = 0.0;
    for (var j = 0u; j < KV_UNIT; j++) {
        amax = max(amax, abs(v[j]));
    }
    let d = unpack2x16float(pack2x16float(vec2<f32>(amax / 127.0, 0.0))).x;
    let inv = select(0.0, 1.0 / d, d > 0.0);
    let b = (i0 >> 5u) * 9u;
    for (var w = 0u; w < 8u; w++) {
        var word = 0u;
        for (var t = 0u; t < 4u; t++) {
            let q = i32(clamp(round(v[w * 4u + t] * inv), -127.0, 127.0));
            word |= (bitcast<u32>(q) & 0xffu) << (t * 8u);
        }
        kv[b + w] = word;
    }
    kv[b + 8u] = pack2x16float(vec2<f32>(d, 0.0)) & 0xffffu;
}
