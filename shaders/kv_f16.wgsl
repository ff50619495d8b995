// KV cache in f16: values 2i and 2i+1 in the low and high halves of word i (no shader-f16 needed).
@group(0) @binding(1) var<storage, read_write> kv: array<u32>; // [n_ctx * kv_heads * head_dim / 2]

const KV_UNIT: u32 = 2u;

// Values i .. i + 4 (i a multiple of 4).
fn kv_load4(i: u32) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(kv[i >> 1u]), unpack2x16float(kv[(i >> 1u) + 1u]));
}

// Values i .. i + 8 (i a multiple of 8).
fn kv_load8(i: u32) -> W8 {
    return W8(kv_load4(i), kv_load4(i + 4u));
}

// Store values i0 .. i0 + KV_UNIT (i0 even).
fn kv_store_unit(i0: u32, v: array<f32, KV_UNIT>) {
    kv[i0 >> 1u] = pack2x16float(vec2<f32>(v[0], v[1]));
}
