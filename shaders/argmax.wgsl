// The index of the largest of n values (the lowest index among equals, as the CPU's argmax): greedy
// sampling on the GPU, so a decode step reads back 4 bytes instead of the vocabulary's logits.
// One workgroup of 256: each invocation scans every 256th value, then a tree through workgroup
// memory (8 barriers, once per token).
@group(0) @binding(0) var<storage, read> v: array<f32>;         // [n]
@group(0) @binding(1) var<storage, read_write> out: array<u32>; // [1]

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
@group(0) @binding(2) var<uniform> p: Params;

var<workgroup> best_v: array<f32, 256>;
var<workgroup> best_i: array<u32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    var bv = -3.4e38;
    var bi = 0xffffffffu;
    for (var i = lid; i < p.n; i += 256u) {
        let x = v[i];
        if (x > bv) { bv = x; bi = i; }
    }
    best_v[lid] = bv;
    best_i[lid] = bi;
    for (var w = 128u; w > 0u; w >>= 1u) {
        workgroupBarrier();
        if (lid < w) {
            let ov = best_v[lid + w];
            let oi = best_i[lid + w];
            if (ov > best_v[lid] || (ov == best_v[lid] && oi < best_i[lid])) {
                best_v[lid] = ov;
                best_i[lid] = oi;
            }
        }
    }
    if (lid == 0u) { out[0] = min(best_i[0], p.n - 1u); }
}
