// KV cache in f32: value i is word i (bit-cast). Composed with rope_store / attn_scores / attn_values.
@group(0) @binding(1) var<storage, read_write> kv: array<u32>; // [n_ctx * kv_heads * head_dim]

const KV_UNIT: u32 = 1u;

// Values i .. i + 4 (i a multiple of 4).
fn kv_load4(i: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(vec4<u32>(kv[i], kv[i + 1u], kv[i + 2u], kv[i + 3u]));
}

// Values i .. i + 8 (i a multiple of 8).
fn kv_load8(i: u32) -> W8 {
    return W8(kv_load4(i), kv_load4(i + 4u));
}

// Store values i0 .. i0 + KV_UNIT.
fn kv_store_unit(i0: u32, v: array<f32, KV_UNIT>) {
    kv[i0] = bitcast<u32>(v[0]);
}
