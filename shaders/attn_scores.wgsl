// Attention step 1 of 2: s[h, t, j] = (q[t, h, :] · k[j, h / group, :]) · scale for key j <= pos0 + t,
// and -1e30 (masked, exp → 0) for later keys and, with a sliding window, for keys window or more
// positions back, over n_kv = pos0 + m keys. group = heads / kv_heads
// (grouped-query attention). One invocation per (head, token, key). Step 2 is attn_values.
@group(0) @binding(0) var<storage, read> q: array<f32>;       // [m, q_stride], q at the start of a row
// binding 1: the cache [2, n_ctx, kv_heads, head_dim], keys first, read with kv_load (kv_{f32,f16,int8}.wgsl)
@group(0) @binding(2) var<storage, read_write> s: array<f32>; // [heads, m, n_kv]

struct Params {
    m: u32,
    heads: u32,
    kv_heads: u32,
    head_dim: u32,
    q_stride: u32, // floats per token row of q (q·k·v stacked: more than heads · head_dim)
    scale: f32,
    window: u32, // keys a query sees (a sliding window), 0: all
    _pad1: u32,
}
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<uniform> step: Step;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_id(gid, nwg);
    let n_kv = step.pos0 + p.m;
    if (idx >= p.heads * p.m * n_kv) { return; }
    let j = idx % n_kv;
    let t = (idx / n_kv) % p.m;
    let h = idx / (n_kv * p.m);
    let pos = step.pos0 + t;
    if (j > pos || (p.window != 0u && pos - j >= p.window)) {
        s[idx] = -1e30;
        return;
    }
    let kvh = h / (p.heads / p.kv_heads);
    let qo = t * p.q_stride + h * p.head_dim;
    let ko = (j * p.kv_heads + kvh) * p.head_dim;
    var acc = 0.0;
    for (var d = 0u; d < p.head_dim; d++) {
        acc += q[qo + d] * kv_load(ko + d);
    }
    s[idx] = acc * p.scale;
}
