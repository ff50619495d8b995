// A decode token's activations quantized to 8 bits per block of 32 (llama.cpp's Q8_0), once before
// the integer matvecs (`matvec_q8*.wgsl`): h = x (times the norm's weights g when NORM),
// d = max|h| / 127, q = round(h / d). The norm's scale 1/rms is one factor for the whole row, so it
// is not applied to h (the codes would be the same): it is computed here, left in xd[nb].x, and the
// matvec multiplies its sums by it. A generated header says NORM (with `norm_w`), INTERLEAVE (INT4's
// packed dot products want each 8 codes as the 4 even ones, then the 4 odd ones: its nibble order),
// ROWS and the workgroup size WG:
// - GPUs (ROWS false, one workgroup of WG = 64): invocation i takes every WG-th block from i, and
//   one barrier adds their sums of squares.
// - CPU adapters (ROWS true, the barrier-free matvec's: workgroups of 8, a barrier there is a
//   coroutine switch and one workgroup runs on one thread): invocation b codes block b, and
//   invocation nb alone adds the sum of squares, beside them.
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;       // [nb * 8] zero-padded
@group(0) @binding(1) var<storage, read_write> xq: array<vec4<u32>>; // [nb * 2] 4 codes per word
@group(0) @binding(2) var<storage, read_write> xd: array<vec2<f32>>; // [nb + 1] (d, d·Σq) per block

struct Params {
    k: u32,   // inputs
    nb: u32,  // blocks = ceil(k / 32)
    eps: f32, // rmsnorm epsilon (NORM)
    _pad: u32,
}
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> part: array<f32, WG>;

fn codes(h: vec4<f32>, id: f32) -> vec4<i32> {
    return vec4<i32>(clamp(round(h * id), vec4<f32>(-127.0), vec4<f32>(127.0)));
}

// The two words of codes 8j .. 8j+7 (a: the first 4, c: the next 4).
fn pack8(a: vec4<i32>, c: vec4<i32>) -> vec2<u32> {
    if (INTERLEAVE) {
        return vec2<u32>(pack4xI8(vec4<i32>(a.x, a.z, c.x, c.z)), pack4xI8(vec4<i32>(a.y, a.w, c.y, c.w)));
    }
    return vec2<u32>(pack4xI8(a), pack4xI8(c));
}

fn max4(v: vec4<f32>) -> f32 {
    return max(max(v.x, v.y), max(v.z, v.w));
}

// Codes block b; returns its sum of squares (before the norm's weights).
fn block(b: u32) -> f32 {
    let o = b * 8u;
    let v0 = x[o];
    let v1 = x[o + 1u];
    let v2 = x[o + 2u];
    let v3 = x[o + 3u];
    let v4 = x[o + 4u];
    let v5 = x[o + 5u];
    let v6 = x[o + 6u];
    let v7 = x[o + 7u];
    let h0 = v0 * norm_w(o);
    let h1 = v1 * norm_w(o + 1u);
    let h2 = v2 * norm_w(o + 2u);
    let h3 = v3 * norm_w(o + 3u);
    let h4 = v4 * norm_w(o + 4u);
    let h5 = v5 * norm_w(o + 5u);
    let h6 = v6 * norm_w(o + 6u);
    let h7 = v7 * norm_w(o + 7u);
    let m = max4(max(max(abs(h0), abs(h1)), max(abs(h2), abs(h3))));
    let amax = max(m, max4(max(max(abs(h4), abs(h5)), max(abs(h6), abs(h7)))));
    let id = select(0.0, 127.0 / amax, amax > 0.0);
    let q0 = codes(h0, id);
    let q1 = codes(h1, id);
    let q2 = codes(h2, id);
    let q3 = codes(h3, id);
    let q4 = codes(h4, id);
    let q5 = codes(h5, id);
    let q6 = codes(h6, id);
    let q7 = codes(h7, id);
    let sq = (q0 + q1) + (q2 + q3) + (q4 + q5) + (q6 + q7);
    let d = amax / 127.0;
    xq[b * 2u] = vec4<u32>(pack8(q0, q1), pack8(q2, q3));
    xq[b * 2u + 1u] = vec4<u32>(pack8(q4, q5), pack8(q6, q7));
    xd[b] = vec2<f32>(d, d * f32((sq.x + sq.y) + (sq.z + sq.w)));
    return (dot(v0, v0) + dot(v1, v1) + dot(v2, v2) + dot(v3, v3)) + (dot(v4, v4) + dot(v5, v5) + dot(v6, v6) + dot(v7, v7));
}

// The norm's scale 1/rms from the row's sum of squares t (1 without the norm).
fn norm_scale(t: f32) -> vec2<f32> {
    if (NORM) {
        return vec2<f32>(1.0 / sqrt(t / f32(p.k) + p.eps), 0.0);
    }
    return vec2<f32>(1.0, 0.0);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    if (ROWS) {
        let b = gid.x;
        if (b < p.nb) {
            block(b);
        } else if (b == p.nb) {
            var ss = vec4<f32>(0.0);
            if (NORM) {
                for (var i = 0u; i < p.nb * 8u; i++) {
                    ss += x[i] * x[i];
                }
            }
            xd[p.nb] = norm_scale((ss.x + ss.y) + (ss.z + ss.w));
        }
        return;
    }
    var ss = 0.0;
    for (var b = lid; b < p.nb; b += WG) {
        ss += block(b);
    }
    if (NORM) {
        part[lid] = ss;
        workgroupBarrier();
    }
    if (lid == 0u) {
        var t = 0.0;
        if (NORM) {
            for (var i = 0u; i < WG; i++) { t += part[i]; }
        }
        xd[p.nb] = norm_scale(t);
    }
}
