// One draw from the logits v [n] as the CPU's `sampler::sample` makes it, in llama.cpp's order:
// repetition penalty → top-k → top-p → min-p → temperature, then the first token whose cumulative
// probability exceeds u. A decode step then reads back 4 bytes instead of the vocabulary's logits.
// One workgroup of 256:
//   1. the penalty, in place, on the recent tokens of `draw` (each distinct token once);
//   2. the k-th largest logit by radix select: 4 passes of a 256-bin histogram over 8 bits of an
//      order-preserving key each, no sort of the vocabulary;
//   3. the candidates (logits above it, and the ties at it) gathered and ranked by logit, then id;
//   4. top-p, min-p, temperature and the draw over those ≤ k candidates by one invocation.
@group(0) @binding(0) var<storage, read_write> v: array<f32>;   // [n] logits (penalized in place)
@group(0) @binding(1) var<storage, read_write> out: array<u32>; // [1] the token

struct Params {
    n: u32,
    k: u32,          // 1 ..= 256 (1: greedy after the penalty)
    penalty: f32,
    top_p: f32,
    min_p: f32,
    temperature: f32, // 0: greedy
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(2) var<uniform> p: Params;
// [bits of u as f32, n_recent, the recent token ids…], written once per draw (the CPU lists them
// distinct; a chained draw copies the history's window as it is, repeats and all).
@group(0) @binding(3) var<storage, read> draw: array<u32>;

const WG: u32 = 256u;
// Candidates gathered: the k best and the ties at the k-th logit (ties past this are dropped, so
// only a row with hundreds of equal logits at the cut could differ from the CPU).
const CAP: u32 = 512u;

var<workgroup> hist: array<atomic<u32>, 256>;
// (key of the k-th largest logit so far, how many of the logits with that key prefix to take).
var<workgroup> sel: vec2<u32>;
var<workgroup> n_cand: atomic<u32>;
var<workgroup> cand_v: array<f32, CAP>;
var<workgroup> cand_i: array<u32, CAP>;
var<workgroup> top_v: array<f32, 256>;
var<workgroup> top_i: array<u32, 256>;

// Orders floats as their bits order unsigned integers (as `f32::total_cmp` orders them).
fn key(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// Whether candidate a ranks before candidate b: larger logit, then lower id.
fn before(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
    let ka = key(va);
    let kb = key(vb);
    return ka > kb || (ka == kb && ia < ib);
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    // 1. Repetition penalty.
    let n_recent = min(draw[1], arrayLength(&draw) - 2u);
    for (var j = lid; j < n_recent; j += WG) {
        let t = draw[2u + j];
        // A token listed twice (a chained draw lists the window as it is) is penalized once.
        var first = true;
        for (var i = 0u; i < j; i++) {
            if (draw[2u + i] == t) {
                first = false;
                break;
            }
        }
        if (first && t < p.n) {
            let x = v[t];
            v[t] = select(x * p.penalty, x / p.penalty, x > 0.0);
        }
    }
    let k = min(p.k, p.n);
    if (lid == 0u) {
        sel = vec2<u32>(0u, k);
        atomicStore(&n_cand, 0u);
    }
    storageBarrier();
    workgroupBarrier();

    // 2. Radix select of the k-th largest key, 8 bits a pass from the top (one round a byte).
    for (var round = 0u; round < 4u; round++) {
        let shift = 24u - 8u * round;
        atomicStore(&hist[lid], 0u);
        workgroupBarrier();
        let prefix = sel.x;
        let high = ~(0xffffffffu >> (8u * round)); // the bits fixed by earlier passes
        for (var i = lid; i < p.n; i += WG) {
            let kk = key(v[i]);
            if ((kk & high) == (prefix & high)) {
                atomicAdd(&hist[(kk >> shift) & 255u], 1u);
            }
        }
        workgroupBarrier();
        if (lid == 0u) {
            var need = sel.y;
            var d = 255u;
            loop {
                let c = atomicLoad(&hist[d]);
                if (c >= need || d == 0u) { break; }
                need -= c;
                d -= 1u;
            }
            sel = vec2<u32>(prefix | (d << shift), need);
        }
        workgroupBarrier();
    }

    // 3. Gather every logit at or above the k-th, then rank them.
    let cut = sel.x;
    for (var i = lid; i < p.n; i += WG) {
        let x = v[i];
        if (key(x) >= cut) {
            let slot = atomicAdd(&n_cand, 1u);
            if (slot < CAP) {
                cand_v[slot] = x;
                cand_i[slot] = i;
            }
        }
    }
    workgroupBarrier();
    let m = min(atomicLoad(&n_cand), CAP);
    for (var c = lid; c < m; c += WG) {
        let vc = cand_v[c];
        let ic = cand_i[c];
        var rank = 0u;
        for (var j = 0u; j < m; j++) {
            rank += u32(before(cand_v[j], cand_i[j], vc, ic));
        }
        if (rank < k) {
            top_v[rank] = vc;
            top_i[rank] = ic;
        }
    }
    workgroupBarrier();

    // 4. Top-p, min-p, temperature and the draw, over the ranked candidates.
    if (lid != 0u) { return; }
    var kept = min(k, m);
    if (p.temperature <= 0.0) {
        out[0] = top_i[0];
        return;
    }
    let v0 = top_v[0];
    if (p.top_p < 1.0) {
        var s = 0.0;
        for (var i = 0u; i < kept; i++) { s += exp(top_v[i] - v0); }
        var acc = 0.0;
        for (var i = 0u; i < kept; i++) {
            acc += exp(top_v[i] - v0) / s;
            if (acc >= p.top_p) {
                kept = i + 1u;
                break;
            }
        }
    }
    if (p.min_p > 0.0) {
        // p_i ≥ min_p · p_0, with p_i / p_0 = exp(v_i − v_0) whatever the normalization.
        var keep = 1u;
        for (var i = 1u; i < kept; i++) {
            if (exp(top_v[i] - v0) < p.min_p) { break; }
            keep = i + 1u;
        }
        kept = keep;
    }
    var s = 0.0;
    for (var i = 0u; i < kept; i++) { s += exp((top_v[i] - v0) / p.temperature); }
    let u = bitcast<f32>(draw[0]);
    var acc = 0.0;
    var pick = top_i[kept - 1u];
    for (var i = 0u; i < kept; i++) {
        acc += exp((top_v[i] - v0) / p.temperature) / s;
        if (u < acc) {
            pick = top_i[i];
            break;
        }
    }
    out[0] = pick;
}
