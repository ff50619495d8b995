// The fixed random-sign Walsh–Hadamard rotation of the rotated KV formats (int4-rot, int3-rot):
// per block of r values of a head (r: the largest power of two dividing head_dim, at most
// ROT_MAX), y = H·D·x / √r with D the signs rot_sign gives the dims of a head and H the r×r
// Hadamard matrix; the inverse is x = D·H·y / √r. Orthogonal per head, so q·k is the same when
// both are rotated. The CPU's layout::rotate is the reference.

const ROT_MAX: u32 = 64u;

fn rot_sign(d: u32) -> f32 {
    var x = d * 747796405u + 2891336453u;
    x = ((x >> ((x >> 28u) + 4u)) ^ x) * 277803737u;
    x = (x >> 22u) ^ x;
    return select(1.0, -1.0, (x & 1u) == 1u);
}

// Rotate v[0 .. n) in place: n a multiple of r, v[i] at index i0 + i of rows of heads of
// head_dim (i0 a multiple of r), so v[i] is dim (i0 + i) % head_dim of its head.
fn rotate(v: ptr<function, array<f32, ROT_MAX>>, n: u32, r: u32, i0: u32, head_dim: u32, inverse: bool) {
    if (!inverse) {
        for (var i = 0u; i < n; i++) {
            (*v)[i] *= rot_sign((i0 + i) % head_dim);
        }
    }
    for (var len = 1u; len < r; len <<= 1u) {
        for (var i = 0u; i < n; i++) {
            if ((i & len) == 0u) {
                let a = (*v)[i];
                let b = (*v)[i + len];
                (*v)[i] = a + b;
                (*v)[i + len] = a - b;
            }
        }
    }
    let k = 1.0 / sqrt(f32(r));
    for (var i = 0u; i < n; i++) {
        var s = k;
        if (inverse) { s *= rot_sign((i0 + i) % head_dim); }
        (*v)[i] *= s;
    }
}
