// KV cache in f32: value i is word i (bit-cast). Composed with kv_store / attn_scores / attn_values.
@group(0) @binding(1) var<storage, read_write> kv: array<u32>; // [n_ctx * kv_heads * head_dim]

const KV_UNIT: u32 = 1u;

fn kv_load(i: u32) -> f32 {
    return bitcast<f32>(kv[i]);
}

// Store values i0 .. i0 + KV_UNIT.
fn kv_store_unit(i0: u32, v: array<f32, KV_UNIT>) {
    kv[i0] = bitcast<u32>(v[0]);
}
