// Prefill's activations X [m, k] quantized to 8 bits per block of 32 (d = max|x| / 127,
// q = round(x / d), blocks restarting at each row). A generated header says CODES: the codes and
// scales themselves for the barrier-free matmul (`matmul_x_q8.wgsl`: each row's blocks of 8 words,
// 4 codes a word, then every block's d), or else the values d · q back as f32 for the tiled
// matmul. Either way the matmul multiplies exactly the values decode's integer matvecs multiply.
// One invocation per block.
@group(0) @binding(0) var<storage, read> x: array<f32>;       // [m, k]
@group(0) @binding(1) var<storage, read_write> y: array<u32>; // CODES: [m·nb·8] codes, [m·nb] d; else [m, k] f32

struct Params {
    m: u32,  // tokens
    k: u32,  // inputs
    nb: u32, // blocks per row = ceil(k / 32)
    _pad: u32,
}
@group(0) @binding(2) var<uniform> p: Params;

// The code of x[o + j] (0 past the block's end, len).
fn code(o: u32, j: u32, len: u32, id: f32) -> i32 {
    if (j >= len) { return 0; }
    return i32(clamp(round(x[o + j] * id), -127.0, 127.0));
}

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
    if (CODES) {
        // Block i of the row-major [m, nb] blocks: words 8i .. 8i + 8.
        for (var w = 0u; w < 8u; w++) {
            let j = w * 4u;
            y[i * 8u + w] = pack4xI8(vec4<i32>(code(o, j, len, id), code(o, j + 1u, len, id), code(o, j + 2u, len, id), code(o, j + 3u, len, id)));
        }
        y[p.m * p.nb * 8u + i] = bitcast<u32>(d);
        return;
    }
    for (var j = 0u; j < len; j++) { y[o + j] = bitcast<u32>(d * f32(code(o, j, len, id))); }
}
