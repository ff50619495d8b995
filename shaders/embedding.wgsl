// out[t, :] = W[ids[t], :] · scale, dequantized from the weight layout prepended above, for the tokens
// whose id is among the rows first..first + rows this part of W holds (a matrix larger than one
// binding is dispatched part by part; the other tokens' rows are left to the other parts).
// One invocation per (token, group of 8 weights).
@group(0) @binding(2) var<storage, read> ids: array<u32>;       // [m]
@group(0) @binding(3) var<storage, read_write> out: array<f32>; // [m, k]

struct Params {
    m: u32,  // tokens
    k: u32,  // row length
    nb: u32, // blocks per row = ceil(k / 32)
    first: u32, // the first row of W this part holds
    rows: u32,  // rows in this part
    scale: f32, // Gemma's √dim, else 1
    _pad1: u32,
    _pad2: u32,
}
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    let groups = p.nb * 4u;
    if (i >= p.m * groups) { return; }
    let t = i / groups;
    let g = i % groups;
    let id = ids[t];
    if (id < p.first || id - p.first >= p.rows) { return; }
    let blk = (id - p.first) * p.nb + g / 4u;
    let w = weights8(blk * 4u + g % 4u, block_scale(blk));
    let k0 = g * 8u;
    for (var e = 0u; e < 4u; e++) {
        if (k0 + e < p.k) { out[t * p.k + k0 + e] = w.lo[e] * p.scale; }
        if (k0 + 4u + e < p.k) { out[t * p.k + k0 + 4u + e] = w.hi[e] * p.scale; }
    }
}
