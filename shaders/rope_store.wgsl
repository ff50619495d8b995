// RoPE and the KV-cache append, for m tokens at positions pos0 + t, from the stacked projection
// qkv [m, q_dim + 2·kv_dim] (q, then k, then v per token): q is rotated in place; k rotated and v
// as it is go into the layer's cache (keys first, values from value v_base on) in the cache's
// format (composed with one kv_*.wgsl, and hadamard.wgsl: the rotated formats rotate k and v
// before they are quantized; the 4- and 3-bit formats subtract the layer's mean key from k first:
// every score of a query then moves by the same q·mean, which softmax does not see; the rotated
// ones then multiply each key channel by its scale λ, `kv_balance.wgsl`, which the queries undo in
// `kv_rotate.wgsl`). With a recent window (kv_window.wgsl), the values a unit codes also go to
// `stage` in f16, as they are before they are coded. One invocation per q pair or cache unit.
// Pair i (< n_rot / 2) rotates by pos · scale · base^(-2i / n_rot) / factors[i]: dims (2i, 2i+1),
// or (i, i + n_rot/2) for GPT-NeoX (scale: linear RoPE scaling; factors: Llama 3's frequency
// divisors, ones for other models).
@group(0) @binding(0) var<storage, read_write> qkv: array<f32>; // [m, heads·hd + 2·kv_heads·hd]
// binding 1: the layer's cache [2, n_ctx, kv_heads, head_dim] in its format

struct Params {
    m: u32,
    heads: u32,
    kv_heads: u32,
    head_dim: u32,
    n_rot: u32,
    neox: u32, // 1: GPT-NeoX pairs
    base: f32,
    v_base: u32, // first value of the value half of the cache: n_ctx · kv_heads · head_dim
    scale: f32,  // positions times this (linear scaling: 1 / factor)
    rot: u32,    // the rotated formats' rotation block (0: not rotated)
    center: u32, // 1: subtract the layer's mean key (kmean from mean_at) before a key is stored
    mean_at: u32,
    scale_at: u32, // the layer's key scales λ in kmean
    scaled: u32,   // 1: multiply each key (less its mean) by its channel's λ
    recent: u32,   // 1: write what is coded to stage too
    _pad1: u32,
}
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<uniform> step: Step;
@group(0) @binding(4) var<storage, read> factors: array<f32>; // [n_rot / 2]
@group(0) @binding(5) var<storage, read> kmean: array<f32>;   // means, then λ: [2, layers, kv_heads · head_dim]
@group(0) @binding(6) var<storage, read_write> stage: array<u32>; // [m, 2, kv_heads · head_dim / 2] f16 pairs

fn angle(pos: u32, i: u32) -> f32 {
    return f32(pos) * p.scale * pow(p.base, -2.0 * f32(i) / f32(p.n_rot)) / factors[i];
}

// Dims (a, b) of pair i of a head.
fn pair(i: u32) -> vec2<u32> {
    if (p.neox != 0u) { return vec2<u32>(i, i + p.n_rot / 2u); }
    return vec2<u32>(2u * i, 2u * i + 1u);
}

// Value e of the head starting at o, rotated for position pos (read, not written).
fn rotated(o: u32, e: u32, pos: u32) -> f32 {
    let v = qkv[o + e];
    if (e >= p.n_rot) { return v; }
    let half = p.n_rot / 2u;
    var i = e / 2u;
    if (p.neox != 0u) { i = e % half; }
    let ab = pair(i);
    let first = e == ab.x;
    let w = qkv[o + select(ab.x, ab.y, first)];
    let t = angle(pos, i);
    // (x0, x1) → (x0·c − x1·s, x0·s + x1·c)
    return select(w * sin(t) + v * cos(t), v * cos(t) - w * sin(t), first);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_id(gid, nwg);
    let half = p.n_rot / 2u;
    let qd = p.heads * p.head_dim;
    let kvd = p.kv_heads * p.head_dim;
    let units = kvd / KV_UNIT;
    let per = p.heads * half + 2u * units;
    if (idx >= p.m * per) { return; }
    let t = idx / per;
    let r = idx % per;
    let pos = step.pos0 + t;
    let row = t * (qd + 2u * kvd);
    if (r < p.heads * half) {
        let o = row + (r / half) * p.head_dim;
        let ab = pair(r % half);
        let th = angle(pos, r % half);
        let c = cos(th);
        let s = sin(th);
        let x0 = qkv[o + ab.x];
        let x1 = qkv[o + ab.y];
        qkv[o + ab.x] = x0 * c - x1 * s;
        qkv[o + ab.y] = x0 * s + x1 * c;
        return;
    }
    let u = r - p.heads * half;
    let is_v = u >= units;
    let i0 = (u % units) * KV_UNIT;
    var vals: array<f32, KV_UNIT>;
    for (var j = 0u; j < KV_UNIT; j++) {
        let e = i0 + j;
        if (is_v) {
            vals[j] = qkv[row + qd + kvd + e];
        } else {
            vals[j] = rotated(row + qd + (e / p.head_dim) * p.head_dim, e % p.head_dim, pos);
            if (p.center != 0u) { vals[j] -= kmean[p.mean_at + e]; }
            if (p.scaled != 0u) { vals[j] *= kmean[p.scale_at + e]; }
        }
    }
    if (p.rot != 0u) {
        var b: array<f32, ROT_MAX>;
        for (var j = 0u; j < KV_UNIT; j++) { b[j] = vals[j]; }
        rotate(&b, KV_UNIT, p.rot, i0, p.head_dim, false);
        for (var j = 0u; j < KV_UNIT; j++) { vals[j] = b[j]; }
    }
    if (p.recent != 0u) {
        let so = (t * 2u + select(0u, 1u, is_v)) * (kvd / 2u) + i0 / 2u;
        for (var j = 0u; j < KV_UNIT / 2u; j++) {
            stage[so + j] = pack2x16float(vec2<f32>(vals[2u * j], vals[2u * j + 1u]));
        }
    }
    kv_store_unit(select(0u, p.v_base, is_v) + pos * kvd + i0, vals);
}
