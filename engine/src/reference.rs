//! Naive CPU reference ops, one per WGSL kernel and with the kernel's name. They are written for
//! clarity, not speed: the GPU kernels are tested against them.
//!
//! Conventions shared with the shaders: matrices are row-major; a weight matrix `W` is `[n, k]`
//! (n output rows of k inputs); activations of `m` tokens are `[m, k]`; heads are laid out
//! `[token, head, head_dim]`.

use crate::layout::QuantMatrix;

/// `y = W·x` for one token: `W [n, k]`, `x [k]`, `y [n]`.
pub fn matvec(w: &QuantMatrix, x: &[f32]) -> Vec<f32> {
    matmul(w, x, 1)
}

/// `Y = X·Wᵀ` for `m` tokens: `W [n, k]`, `X [m, k]`, `Y [m, n]`.
pub fn matmul(w: &QuantMatrix, x: &[f32], m: usize) -> Vec<f32> {
    let (n, k) = (w.rows, w.cols);
    let mut row = vec![0f32; k];
    let mut y = vec![0f32; m * n];
    for r in 0..n {
        w.dequantize_row(r, &mut row);
        for t in 0..m {
            y[t * n + r] = dot(&row, &x[t * k..(t + 1) * k]);
        }
    }
    y
}

/// Per output, `Σ |w·x|` (the scale against which a dot product's rounding is judged).
pub fn matmul_abs(w: &QuantMatrix, x: &[f32], m: usize) -> Vec<f32> {
    let (n, k) = (w.rows, w.cols);
    let mut row = vec![0f32; k];
    let mut y = vec![0f32; m * n];
    for r in 0..n {
        w.dequantize_row(r, &mut row);
        for t in 0..m {
            y[t * n + r] = row.iter().zip(&x[t * k..(t + 1) * k]).map(|(a, b)| (a * b).abs()).sum();
        }
    }
    y
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `out[t, :] = W[ids[t], :]` dequantized: `W [rows, k]`, `out [m, k]`.
pub fn embedding(w: &QuantMatrix, ids: &[u32]) -> Vec<f32> {
    let k = w.cols;
    let mut out = vec![0f32; ids.len() * k];
    for (t, &id) in ids.iter().enumerate() {
        w.dequantize_row(id as usize, &mut out[t * k..(t + 1) * k]);
    }
    out
}

/// `y[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) · w` for rows of `w.len()`.
pub fn rmsnorm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let d = w.len();
    let mut y = vec![0f32; x.len()];
    for (xr, yr) in x.chunks(d).zip(y.chunks_mut(d)) {
        let ms = xr.iter().map(|v| v * v).sum::<f32>() / d as f32;
        let s = 1.0 / (ms + eps).sqrt();
        for ((o, v), g) in yr.iter_mut().zip(xr).zip(w) {
            *o = v * s * g;
        }
    }
    y
}

/// Rotary position embedding parameters.
#[derive(Clone, Copy, Debug)]
pub struct Rope {
    pub heads: usize,
    pub head_dim: usize,
    /// Dimensions rotated (<= head_dim); the rest pass through.
    pub n_rot: usize,
    /// Position of token 0.
    pub pos0: usize,
    pub base: f32,
    /// GPT-NeoX rotation: pairs `(i, i + n_rot/2)`; otherwise the normal pairs `(2i, 2i+1)`.
    pub neox: bool,
    /// Positions are multiplied by this (linear RoPE scaling: 1 / factor; else 1).
    pub scale: f32,
}

/// Rotation frequency of pair `i`: `base^(-2i / n_rot)`.
pub fn rope_freq(base: f32, i: usize, n_rot: usize) -> f32 {
    base.powf(-2.0 * i as f32 / n_rot as f32)
}

/// In place on `x [m, heads, head_dim]`: token `t` is at position `pos0 + t`.
pub fn rope(x: &mut [f32], p: &Rope) {
    rope_with(x, p, &[]);
}

/// [`rope`] with per-pair frequency divisors `factors [n_rot / 2]` (Llama 3's `rope_freqs`; empty:
/// none): pair `i` turns by `pos · scale · base^(−2i / n_rot) / factors[i]`.
pub fn rope_with(x: &mut [f32], p: &Rope, factors: &[f32]) {
    let hd = p.head_dim;
    for (th, v) in x.chunks_mut(hd).enumerate() {
        let pos = (p.pos0 + th / p.heads) as f32;
        for i in 0..p.n_rot / 2 {
            let theta = pos * p.scale * rope_freq(p.base, i, p.n_rot) / factors.get(i).copied().unwrap_or(1.0);
            let (s, c) = theta.sin_cos();
            let (a, b) = if p.neox { (i, i + p.n_rot / 2) } else { (2 * i, 2 * i + 1) };
            let (x0, x1) = (v[a], v[b]);
            v[a] = x0 * c - x1 * s;
            v[b] = x0 * s + x1 * c;
        }
    }
}

/// Row-wise softmax in place over rows of `n`.
pub fn softmax(x: &mut [f32], n: usize) {
    for r in x.chunks_mut(n) {
        let mx = r.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
        let mut sum = 0.0;
        for v in r.iter_mut() {
            *v = (*v - mx).exp();
            sum += *v;
        }
        for v in r.iter_mut() {
            *v /= sum;
        }
    }
}

pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// `out = silu(gate) · up`, elementwise.
pub fn silu_mul(gate: &[f32], up: &[f32]) -> Vec<f32> {
    gate.iter().zip(up).map(|(&g, &u)| silu(g) * u).collect()
}

/// GELU with the tanh approximation (ggml's `gelu`, Gemma's `gelu_pytorch_tanh`):
/// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
pub fn gelu(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)).tanh())
}

/// `out = gelu(gate) · up`, elementwise (GeGLU).
pub fn gelu_mul(gate: &[f32], up: &[f32]) -> Vec<f32> {
    gate.iter().zip(up).map(|(&g, &u)| gelu(g) * u).collect()
}

/// `out = act(gate) · up` with the gated feed-forward's activation (the `glu` kernel's reference).
pub fn glu(act: crate::model::Activation, gate: &[f32], up: &[f32]) -> Vec<f32> {
    match act {
        crate::model::Activation::Silu => silu_mul(gate, up),
        crate::model::Activation::Gelu => gelu_mul(gate, up),
    }
}

/// Per-head RMSNorm of the q and k heads of stacked projections `qkv [m, (heads + 2·kv_heads)·hd]`
/// in place: each q head with `w[..hd]`, each k head with `w[hd..]`; v is left alone (Gemma 3's and
/// Qwen3's q/k norms).
pub fn head_norm(qkv: &mut [f32], w: &[f32], heads: usize, kv_heads: usize, eps: f32) {
    let hd = w.len() / 2;
    let stride = (heads + 2 * kv_heads) * hd;
    for row in qkv.chunks_mut(stride) {
        let (q, rest) = row.split_at_mut(heads * hd);
        q.copy_from_slice(&rmsnorm(q, &w[..hd], eps));
        let k = &mut rest[..kv_heads * hd];
        k.copy_from_slice(&rmsnorm(k, &w[hd..], eps));
    }
}

/// `y += rmsnorm(x) · w` for rows of `w.len()` (Gemma 3's norm after attention and the FFN, then
/// the residual connection).
pub fn rmsnorm_add(y: &mut [f32], x: &[f32], w: &[f32], eps: f32) {
    add(y, &rmsnorm(x, w, eps));
}

/// `a += b`, elementwise (the residual connection).
pub fn add(a: &mut [f32], b: &[f32]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// Attention shape: `heads` query heads share `kv_heads` key/value heads (grouped-query).
#[derive(Clone, Copy, Debug)]
pub struct Attention {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// Position of the first query token; the cache holds `pos0 + m` keys once the new ones are in.
    pub pos0: usize,
    pub scale: f32,
    /// Sliding window: a query sees only the last `window` keys, itself included (0: all of them).
    pub window: usize,
}

impl Attention {
    /// The first key query position `pos` sees.
    pub fn first_key(&self, pos: usize) -> usize {
        if self.window == 0 { 0 } else { (pos + 1).saturating_sub(self.window) }
    }
}

/// Causal attention over a KV cache: `q [m, heads, hd]`, `k, v [pos0 + m, kv_heads, hd]`,
/// returns `[m, heads, hd]`. Query `t` sees keys `first_key(pos0 + t) ..= pos0 + t`; head `h`
/// reads kv head `h / (heads / kv_heads)`.
pub fn attention(q: &[f32], k: &[f32], v: &[f32], m: usize, a: &Attention) -> Vec<f32> {
    attention_with(q, (k, v), (k, v), m, a, |_, _| false)
}

/// [`attention`] where the query at position `pos` reads key and value `j` from `exact` (the
/// recent window's copies) when `is_exact(pos, j)`, from `stored` otherwise.
pub fn attention_with(q: &[f32], (k, v): (&[f32], &[f32]), exact: (&[f32], &[f32]), m: usize, a: &Attention, is_exact: impl Fn(usize, usize) -> bool) -> Vec<f32> {
    let (hd, group) = (a.head_dim, a.heads / a.kv_heads);
    let pick = |pos: usize, j: usize| if is_exact(pos, j) { exact } else { (k, v) };
    let mut out = vec![0f32; m * a.heads * hd];
    for t in 0..m {
        let (first, n) = (a.first_key(a.pos0 + t), a.pos0 + t + 1);
        for h in 0..a.heads {
            let kvh = h / group;
            let qv = &q[(t * a.heads + h) * hd..][..hd];
            let pos = a.pos0 + t;
            let mut s: Vec<f32> = (first..n).map(|j| dot(qv, &pick(pos, j).0[(j * a.kv_heads + kvh) * hd..][..hd]) * a.scale).collect();
            softmax(&mut s, n - first);
            let o = &mut out[(t * a.heads + h) * hd..][..hd];
            for (j, p) in (first..).zip(&s) {
                for (od, vd) in o.iter_mut().zip(&pick(pos, j).1[(j * a.kv_heads + kvh) * hd..][..hd]) {
                    *od += p * vd;
                }
            }
        }
    }
    out
}

/// The recent window of the 4- and 3-bit caches (`kv_window.wgsl`): which keys and values a
/// query reads in f16 rather than from their codes. A query at `pos` reads position `j` exactly
/// when `pos − j < r` and the copy is at hand: the step's own positions always are (rope_store
/// wrote them), earlier ones while the ring of recent positions still holds them (`tags[slot]`:
/// position + 1 of what slot `j % slots` holds, 0 for nothing).
#[derive(Clone, Debug, PartialEq)]
pub struct Recent {
    pub r: usize,
    pub tags: Vec<u32>,
}

impl Recent {
    /// A window of `r` positions (0: none) and an empty ring.
    pub fn new(r: usize) -> Recent {
        Recent { r, tags: vec![0; crate::layout::KV_RECENT_SLOTS] }
    }

    /// Whether the query at `pos`, of a step from `pos0`, reads position `j` exactly.
    pub fn exact(&self, j: usize, pos: usize, pos0: usize) -> bool {
        self.r > 0 && j + self.r > pos && (j >= pos0 || self.tags[j % self.tags.len()] as usize == j + 1)
    }

    /// After the attention of a step of `m` positions from `pos0`: its last `min(m, slots)`
    /// positions go into the ring (the `kv_recent` kernel, [`kv_recent`]).
    pub fn keep(&mut self, pos0: usize, m: usize) {
        let slots = self.tags.len();
        for t in Recent::kept(m) {
            self.tags[(pos0 + t) % slots] = (pos0 + t + 1) as u32;
        }
    }

    /// The rows of a step of `m` positions its ring keeps: the last `min(m, slots)`.
    pub fn kept(m: usize) -> std::ops::Range<usize> {
        m - m.min(crate::layout::KV_RECENT_SLOTS)..m
    }
}

/// The `kv_recent` kernel: a step's rows `stage [m, kv_dim]` (words: keys then values in f16
/// pairs) from position `pos0` go into the ring at word `at` of a layer's `cache` (`[slots,
/// kv_dim]` words, then `[slots]` tags), as [`Recent::keep`] tags them.
pub fn kv_recent(stage: &[u32], cache: &mut [u32], m: usize, pos0: usize, kv_dim: usize, at: usize) {
    let slots = crate::layout::KV_RECENT_SLOTS;
    for t in Recent::kept(m) {
        let slot = (pos0 + t) % slots;
        cache[at + slot * kv_dim..][..kv_dim].copy_from_slice(&stage[t * kv_dim..][..kv_dim]);
        cache[at + slots * kv_dim + slot] = (pos0 + t + 1) as u32;
    }
}

/// The KV cache words of `x`, rows of heads of `head_dim`, stored as `kv` (the `kv_store` kernel).
pub fn kv_store(kv: crate::KvPrecision, x: &[f32], head_dim: usize) -> crate::Result<Vec<u32>> {
    kv.encode(x, head_dim)
}

/// Each channel's mean over the first `n` rows of `keys [_, kv_dim]` (the `kv_mean` kernel).
pub fn kv_mean(keys: &[f32], n: usize, kv_dim: usize) -> Vec<f32> {
    let mut s = vec![0f64; kv_dim];
    for row in keys.chunks_exact(kv_dim.max(1)).take(n) {
        for (a, v) in s.iter_mut().zip(row) {
            *a += *v as f64;
        }
    }
    s.iter().map(|v| (v / n.max(1) as f64) as f32).collect()
}

/// Each key channel's sum of the squared queries that meet it (the `kv_query_sq` kernel, which
/// adds this to what its output holds): `q [m, stride]` with `heads` query heads of `head_dim`
/// first in a row; the query heads of a kv head's group folded onto it. Returns `[kv_heads · head_dim]`.
pub fn kv_query_sq(q: &[f32], m: usize, stride: usize, heads: usize, kv_heads: usize, head_dim: usize) -> Vec<f32> {
    let g = heads / kv_heads.max(1);
    (0..kv_heads * head_dim)
        .map(|e| {
            let first = (e / head_dim) * g * head_dim + e % head_dim;
            let mut s = 0f32;
            for t in 0..m {
                for j in 0..g {
                    let v = q[t * stride + first + j * head_dim];
                    s += v * v;
                }
            }
            s
        })
        .collect()
}

/// Queries `q [_, heads, head_dim]` divided by their kv head's key scales `scales [kv_heads ·
/// head_dim]` (query head h meets kv head h / (heads / kv_heads)): what the `kv_rotate` kernel does
/// to queries before it rotates them, so that they meet keys stored times the scales.
pub fn divide_queries(q: &[f32], heads: usize, kv_heads: usize, head_dim: usize, scales: &[f32]) -> Vec<f32> {
    let group = heads / kv_heads.max(1);
    q.iter().enumerate().map(|(i, x)| x / scales[((i / head_dim) % heads / group) * head_dim + i % head_dim]).collect()
}

/// The rotated KV formats' per-channel key scales λ (the `kv_balance` kernel, which explains
/// them): from the first `n` keys of a layer `keys [_, kv_dim]`, their `means [kv_dim]` and the
/// queries' [`kv_query_sq`] sums `qsq [kv_dim]`, λ_e⁴ ∝ Σq_e² / Σ(k_e − mean_e)² per kv head of
/// `head_dim` channels, scaled so that the head's keys keep their energy.
pub fn kv_balance(keys: &[f32], n: usize, kv_dim: usize, head_dim: usize, means: &[f32], qsq: &[f32]) -> Vec<f32> {
    let mut out = vec![1f32; kv_dim];
    for e0 in (0..kv_dim).step_by(head_dim.max(1)) {
        let spread: Vec<f32> = (e0..e0 + head_dim)
            .map(|e| {
                let mut s = 0f32;
                for t in 0..n {
                    let d = keys[t * kv_dim + e] - means[e];
                    s += d * d;
                }
                s
            })
            .collect();
        let (sk, sq) = (spread.iter().fold(0f32, |a, v| a + v), qsq[e0..e0 + head_dim].iter().fold(0f32, |a, v| a + v));
        let (floor_k, floor_q) = (1e-3 * sk / head_dim as f32, 1e-3 * sq / head_dim as f32);
        let (mut num, mut den) = (0f32, 0f32);
        let l: Vec<f32> = (0..head_dim)
            .map(|c| {
                let (k2, l) = (spread[c], ((qsq[e0 + c] + floor_q) / (spread[c] + floor_k).max(1e-30)).sqrt().sqrt());
                num += k2;
                den += k2 * l * l;
                l
            })
            .collect();
        if den > 0.0 && num > 0.0 {
            let f = (num / den).sqrt();
            out[e0..e0 + head_dim].iter_mut().zip(&l).for_each(|(o, l)| *o = l * f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With all-zero queries every visible key weighs the same: the output is the mean of the
    /// values a query sees, which shows the window's edges by hand.
    #[test]
    fn a_sliding_window_sees_the_last_window_keys() {
        // One head of one dim; values 0, 1, …, 5 at positions 0..6; queries at positions 2..6.
        let v: Vec<f32> = (0..6).map(|j| j as f32).collect();
        let k = vec![0f32; 6];
        let q = vec![0f32; 4];
        let a = Attention { heads: 1, kv_heads: 1, head_dim: 1, pos0: 2, scale: 1.0, window: 3 };
        // Position 2 sees 0, 1, 2; position 3 sees 1, 2, 3; …
        assert_eq!(attention(&q, &k, &v, 4, &a), vec![1.0, 2.0, 3.0, 4.0]);
        // No window: every earlier key.
        let all = Attention { window: 0, ..a };
        assert_eq!(attention(&q, &k, &v, 4, &all), vec![1.0, 1.5, 2.0, 2.5]);
        assert_eq!((a.first_key(1), a.first_key(2), a.first_key(5)), (0, 0, 3));
    }

    /// The recent window by hand: a query reads exactly its own position and the r − 1 before
    /// it, from the step itself or from the ring while the ring still holds them; a ring rolled
    /// back over more than its spare slots leaves the overwritten positions to their codes.
    #[test]
    fn the_recent_window_by_hand() {
        let slots = crate::layout::KV_RECENT_SLOTS;
        let mut w = Recent::new(4);
        // A step of 10 positions from 0: within it, every query's last 4 are exact.
        assert!(w.exact(9, 9, 0) && w.exact(6, 9, 0) && !w.exact(5, 9, 0));
        w.keep(0, 10);
        // The next step, from 10: positions 7..9 come from the ring.
        assert!(w.exact(7, 10, 10) && !w.exact(6, 10, 10) && w.exact(9, 12, 10) && !w.exact(8, 12, 10));
        // A step longer than the ring keeps only its last `slots` positions.
        w.keep(10, slots + 5);
        let end = 10 + slots + 5;
        assert!(w.exact(end - 1, end, end) && w.exact(end - 3, end, end));
        assert_eq!(w.tags.iter().filter(|&&t| t > 0).count(), slots);
        let mut w2 = Recent::new(4);
        w2.keep(0, 10);
        w2.keep(10, slots);
        // Position 9's slot now holds 9 + slots: rolled back to 10, position 9 is read from codes.
        assert!(!w2.exact(9, 10, 10) && w2.exact(10, 10, 10));
        // No window: never exact.
        assert!(!Recent::new(0).exact(3, 3, 3));
    }

    /// The kernel reference keeps what `Recent::keep` tags, each row in its slot.
    #[test]
    fn kv_recent_puts_rows_in_their_slots() {
        let slots = crate::layout::KV_RECENT_SLOTS;
        let (kvd, at, m, pos0) = (3, 2, 4, slots - 2);
        let stage: Vec<u32> = (0..m * kvd).map(|i| 100 + i as u32).collect();
        let mut cache = vec![0u32; at + slots * (kvd + 1)];
        kv_recent(&stage, &mut cache, m, pos0, kvd, at);
        let mut w = Recent::new(4);
        w.keep(pos0, m);
        assert_eq!(&cache[at + slots * kvd..], &w.tags[..]);
        // Position pos0 + 2 wrapped around to slot 0.
        assert_eq!(&cache[at..at + kvd], &[106, 107, 108]);
        assert_eq!(&cache[at + (slots - 1) * kvd..][..kvd], &[103, 104, 105]);
        assert_eq!(&cache[..at], &[0, 0]);
    }

    /// Why the 4- and 3-bit caches may store keys less their mean: moving every key by the same
    /// vector moves all of a query's scores by the same amount, which softmax does not see (with
    /// a sliding window too). A shift that differs between keys would change the output.
    #[test]
    fn keys_moved_by_one_vector_leave_attention_unchanged() {
        let mut rng = crate::util::Rng::new(7);
        let (heads, kv_heads, head_dim, m, pos0) = (4, 2, 8, 3, 9);
        let kvd = kv_heads * head_dim;
        let q = rng.normals(m * heads * head_dim, 1.0);
        let (k, v) = (rng.normals((pos0 + m) * kvd, 1.0), rng.normals((pos0 + m) * kvd, 1.0));
        let mean = rng.normals(kvd, 5.0);
        let moved: Vec<f32> = k.iter().enumerate().map(|(i, x)| x - mean[i % kvd]).collect();
        for window in [0, 5] {
            let a = Attention { heads, kv_heads, head_dim, pos0, scale: 0.35, window };
            let (want, got) = (attention(&q, &k, &v, m, &a), attention(&q, &moved, &v, m, &a));
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-4, "window {window}: {got:?} vs {want:?}");
            }
            let uneven: Vec<f32> = moved.iter().enumerate().map(|(i, x)| if i / kvd == pos0 { x + 3.0 } else { *x }).collect();
            let off = attention(&q, &uneven, &v, m, &a).iter().zip(&want).fold(0f32, |e, (g, w)| e.max((g - w).abs()));
            assert!(off > 1e-2, "window {window}: moving one key alone changed nothing ({off})");
        }
    }

    /// Why the rotated caches may store keys times per-channel scales λ: queries divided by the
    /// same λ give every score unchanged (the `kv_rotate` kernel divides them).
    #[test]
    fn keys_scaled_per_channel_with_queries_divided_leave_attention_unchanged() {
        let mut rng = crate::util::Rng::new(11);
        let (heads, kv_heads, head_dim, m, pos0) = (4, 2, 8, 3, 9);
        let kvd = kv_heads * head_dim;
        let q = rng.normals(m * heads * head_dim, 1.0);
        let (k, v) = (rng.normals((pos0 + m) * kvd, 1.0), rng.normals((pos0 + m) * kvd, 1.0));
        let lam: Vec<f32> = (0..kvd).map(|_| 0.25 + 3.0 * rng.uniform()).collect();
        let ks: Vec<f32> = k.iter().enumerate().map(|(i, x)| x * lam[i % kvd]).collect();
        let qs = divide_queries(&q, heads, kv_heads, head_dim, &lam);
        let a = Attention { heads, kv_heads, head_dim, pos0, scale: 0.35, window: 0 };
        let (want, got) = (attention(&q, &k, &v, m, &a), attention(&qs, &ks, &v, m, &a));
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-4, "{got:?} vs {want:?}");
        }
        // Scaled keys met by queries that are not divided do change the output.
        let off = attention(&q, &ks, &v, m, &a).iter().zip(&want).fold(0f32, |e, (g, w)| e.max((g - w).abs()));
        assert!(off > 1e-2, "scaling keys alone changed nothing ({off})");
    }

    /// The key scales by hand and by their properties: a channel the queries weigh 16 times as
    /// much, at the same spread, gets twice the scale (λ⁴ ∝ E[q²]/E[k²]); a channel of 16 times
    /// the spread, at the same query weight, half; the head's keys keep their energy; a head whose
    /// keys never move keeps scales of 1; and the scales do not change when every query sum or
    /// every key is scaled.
    #[test]
    fn key_scales_by_hand() {
        // One head of 4 channels over 2 tokens, keys ±s about a mean of 3: spread Σ(k − mean)² = 2s².
        let (n, hd) = (2, 4);
        let s = [1.0f32, 1.0, 4.0, 1.0];
        let keys: Vec<f32> = (0..n).flat_map(|t| s.map(|s| 3.0 + if t == 0 { s } else { -s })).collect();
        let means = [3.0f32; 4];
        let qsq = [1.0f32, 16.0, 1.0, 1.0];
        let l = kv_balance(&keys, n, hd, hd, &means, &qsq);
        // Floors of 10⁻³ of the means move the ratios by under 1 %.
        assert!((l[1] / l[0] - 2.0).abs() < 0.02, "{l:?}");
        assert!((l[2] / l[0] - 0.5).abs() < 0.01, "{l:?}");
        assert!((l[3] / l[0] - 1.0).abs() < 1e-6, "{l:?}");
        let energy = |l: &[f32]| s.iter().zip(l).map(|(s, l)| s * s * l * l).sum::<f32>();
        assert!((energy(&l) / energy(&[1.0; 4]) - 1.0).abs() < 1e-5, "{l:?}");
        let q4: Vec<f32> = qsq.iter().map(|v| v * 7.0).collect();
        let k4: Vec<f32> = keys.iter().map(|v| v * 5.0).collect();
        let m4: Vec<f32> = means.iter().map(|v| v * 5.0).collect();
        for (i, (a, b)) in kv_balance(&k4, n, hd, hd, &m4, &q4).iter().zip(&l).enumerate() {
            assert!((a / b - 1.0).abs() < 1e-4, "channel {i}: {a} vs {b}");
        }
        // Two heads, the first's keys constant: ones there, the second's as before.
        let two: Vec<f32> = (0..n).flat_map(|t| [&means[..], &keys[t * hd..(t + 1) * hd]].concat()).collect();
        let l2 = kv_balance(&two, n, 2 * hd, hd, &[means, means].concat(), &[qsq, qsq].concat());
        assert_eq!(&l2[..hd], &[1.0; 4]);
        assert_eq!(&l2[hd..], &l[..]);
    }

    /// The queries' sums of squares fold a group's query heads onto their kv head and skip
    /// what follows the queries in a row.
    #[test]
    fn query_squares_fold_a_group_by_hand() {
        // 2 tokens, 4 query heads of 2 dims over 2 kv heads, rows of 8 queries and 3 others.
        let row = |t: f32| -> Vec<f32> { [(1..=8).map(|i| i as f32 * t).collect::<Vec<_>>(), vec![100.0; 3]].concat() };
        let q = [row(1.0), row(2.0)].concat();
        // kv head 0, dim 0: heads 0 and 1, dims 0: values 1 and 3 (times t): (1 + 9)·(1 + 4) = 50.
        assert_eq!(kv_query_sq(&q, 2, 11, 4, 2, 2), vec![50.0, 100.0, 370.0, 500.0]);
    }

    /// Llama 3's frequency divisors and linear scaling, by hand: 4 rotated dims (2 pairs), base
    /// 10,000, factors [1, 8], scale 1/2, position 3. Pair 0 turns by 3 · 1/2 · 1 / 1 = 1.5 rad;
    /// pair 1 by 3 · 1/2 · 10000^(−1/2) / 8 = 0.001875 rad.
    #[test]
    fn rope_frequency_factors_and_scale_by_hand() {
        let p = Rope { heads: 1, head_dim: 4, n_rot: 4, pos0: 3, base: 10000.0, neox: false, scale: 0.5 };
        let mut x = vec![1.0, 0.0, 1.0, 0.0];
        rope_with(&mut x, &p, &[1.0, 8.0]);
        let want = [1.5f32.cos(), 1.5f32.sin(), 0.001_875f32.cos(), 0.001_875f32.sin()];
        for (g, w) in x.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{x:?} vs {want:?}");
        }
    }

    /// GELU's tanh approximation at hand-computed points (ggml's and PyTorch's `tanh` GELU).
    #[test]
    fn gelu_at_known_points() {
        for (x, want) in [(0.0, 0.0), (1.0, 0.841_192), (-1.0, -0.158_808), (3.0, 2.996_363), (-20.0, 0.0)] {
            assert!((gelu(x) - want).abs() < 1e-5, "gelu({x}) = {} not {want}", gelu(x));
        }
    }

    /// Each q head is normalized with the first half of the weights, each k head with the second;
    /// v passes through.
    #[test]
    fn head_norm_normalizes_q_and_k_heads_and_leaves_v() {
        // 2 q heads, 1 kv head, head_dim 2: [q0 q0 | q1 q1 | k k | v v].
        let mut x = vec![3.0, 4.0, 1.0, 1.0, 0.0, 2.0, 7.0, 8.0];
        head_norm(&mut x, &[1.0, 1.0, 2.0, 3.0], 2, 1, 0.0);
        let r = 12.5f32.sqrt(); // rms of (3, 4)
        let want = [3.0 / r, 4.0 / r, 1.0, 1.0, 0.0, 2.0f32.sqrt() * 3.0, 7.0, 8.0];
        for (g, w) in x.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{x:?}");
        }
    }
}
