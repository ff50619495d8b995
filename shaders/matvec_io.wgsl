// Matvec inputs and outputs, shared by the matvec variants: y = W·x for one token (decode),
// W [n, k] in the weight layout composed beside this file; f32 in and out. x is read as vec4s and
// as whole blocks of 32: activation buffers are zero-padded to a multiple of 32 values.
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>; // [nb * 8]
@group(0) @binding(3) var<storage, read_write> y: array<f32>; // [n]

struct Params {
    n: u32,  // rows of W
    k: u32,  // inputs
    nb: u32, // blocks per row = ceil(k / 32)
    _pad: u32,
}
@group(0) @binding(4) var<uniform> p: Params;
