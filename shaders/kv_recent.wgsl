// After a step's attention: the exact copies of its last min(m, slots) positions (`stage`, from
// rope_store.wgsl) go into the layer's ring of recent positions (kv_window.wgsl), slot pos % slots,
// each tagged with pos + 1. One invocation per word of a copied row, and one per tag.
@group(0) @binding(0) var<storage, read> stage: array<u32>;  // [m, 2, kv_dim / 2] f16 pairs
@group(0) @binding(1) var<storage, read_write> kv: array<u32>; // the layer's cache; its ring from word at

struct Params {
    m: u32,
    kvd: u32,   // kv_heads · head_dim: the words of a row (keys and values)
    slots: u32,
    at: u32,
}
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<uniform> step: Step;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = linear_id(gid, nwg);
    let n = min(p.m, p.slots);
    if (idx >= n * (p.kvd + 1u)) { return; }
    let t = p.m - n + idx / (p.kvd + 1u);
    let w = idx % (p.kvd + 1u);
    let pos = step.pos0 + t;
    let slot = pos % p.slots;
    if (w < p.kvd) {
        kv[p.at + slot * p.kvd + w] = stage[t * p.kvd + w];
    } else {
        kv[p.at + p.slots * p.kvd + slot] = pos + 1u;
    }
}
