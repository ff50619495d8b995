// Y = X·Wᵀ for m tokens (prefill) without workgroup memory or barriers, for CPU adapters: one
// invocation per (row of W, tile of 8 tokens). Each group of 8 weights is decoded once and used for
// the tile's 8 tokens; a workgroup's lanes take consecutive rows, so they read the same x.
// x is read as vec4s: k must be a multiple of 4 (the host runs the tiled matmul otherwise).
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>; // [m, k / 4]
@group(0) @binding(3) var<storage, read_write> y: array<f32>; // [m, n]

struct Params {
    m: u32,  // tokens
    n: u32,  // rows of W
    k: u32,  // inputs
    nb: u32, // blocks per row = ceil(k / 32)
}
@group(0) @binding(4) var<uniform> p: Params;

const TILE: u32 = 8u;

// x[t, o .. o + 4), zero past the row or the last token.
fn xt4(t: u32, o: u32) -> vec4<f32> {
    if (t >= p.m || o >= p.k) { return vec4<f32>(0.0); }
    return x[(t * p.k + o) / 4u];
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    let row = i % p.n;
    let m0 = (i / p.n) * TILE;
    if (m0 >= p.m) { return; }
    var acc: array<f32, TILE>;
    for (var b = 0u; b < p.nb; b++) {
        let blk = row * p.nb + b;
        // Σ q·x and Σ x of this block for each token: d·Σ q·x + m·Σ x.
        var dq: array<f32, TILE>;
        var sx: array<f32, TILE>;
        for (var j = 0u; j < 4u; j++) {
            let w = weights8_raw(blk * 4u + j);
            let o = b * 32u + j * 8u;
            for (var t = 0u; t < TILE; t++) {
                let xa = xt4(m0 + t, o);
                let xb = xt4(m0 + t, o + 4u);
                dq[t] += dot(w.lo, xa) + dot(w.hi, xb);
                if (HAS_MIN) { sx[t] += dot(xa + xb, vec4<f32>(1.0)); }
            }
        }
        let sm = block_scale(blk);
        for (var t = 0u; t < TILE; t++) {
            acc[t] += sm.x * dq[t] + sm.y * sx[t];
        }
    }
    for (var t = 0u; t < TILE; t++) {
        if (m0 + t < p.m) { y[(m0 + t) * p.n + row] = acc[t]; }
    }
}
