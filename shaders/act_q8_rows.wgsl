// Prefill's activations X [m, k] quantized to 8 bits per block of 32 and back into Y
// (d = max|x| / 127, y = d · round(x / d), blocks restarting at each row): the f32 matmul then
// multiplies exactly the values decode's integer matvecs multiply. One invocation per block.
@group(0) @binding(0) var<storage, read> x: array<f32>;       // [m, k]
@group(0) @binding(1) var<storage, read_write> y: array<f32>; // [m, k]

struct Params {
    m: u32,  // tokens
    k: u32,  // inputs
    nb: u32, // blocks per row = ceil(k / 32)
    _pad: u32,
}
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (i >= p.m * p.nb) { return; }
    let b = i % p.nb;
    let o = (i / p.nb) * p.k + b * 32u;
    let len = min(32u, p.k - b * 32u);
    var amax = 0.0;
    for (var j = 0u; j < len; j++) { amax = max(amax, abs(x[o + j])); }
    let d = amax / 127.0;
    let id = select(0.0, 127.0 / amax, amax > 0.0);
    for (var j = 0u; j < len; j++) { y[o + j] = d * clamp(round(x[o + j] * id), -127.0, 127.0); }
}
