// KV cache in f16: values 2i and 2i+1 in the low and high halves of word i (no shader-f16 needed).
@group(0) @binding(1) var<storage, read_write> kv: array<u32>; // [n_ctx * kv_heads * head_dim / 2]

const KV_UNIT: u32 = 2u;

fn kv_load(i: u32) -> f32 {
    return unpack2x16float(kv[i >> 1u])[i & 1u];
}

// Store values i0 .. i0 + KV_UNIT (i0 even).
fn kv_store_unit(i0: u32, v: array<f32, KV_UNIT>) {
    kv[i0 >> 1u] = pack2x16float(vec2<f32>(v[0], v[1]));
}
