//! CPU backend: weights exactly as stored in the file ("source" precision), the reference the
//! GPU precisions are measured against. Matrix products use the available cores.
//!
//! A matrix stored in a 32-block integer format (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) stays in that
//! form (i8 quants with per-block scale and min: a quarter of the f32 memory) and is multiplied
//! in f32 as `Σ_blocks d·(q·x) + m·Σx`, which is the dequantized product. Other formats are
//! dequantized to f32 on load.
//!
//! Activations stay f32 by default. (Emulating llama.cpp's 8-bit activation quantization as the
//! default was measured and dropped: it moved the full-text perplexity from −0.28% to +0.02% of
//! llama.cpp's, but argmax agreement from 0.954 to 0.951; the residual difference to llama.cpp is
//! elsewhere.) `CpuBackend::activations` = `Int8` quantizes every matrix's input to 8 bits per
//! block and back: the reference of the lab's 8-bit activations.

use std::cell::RefCell;
use std::collections::HashMap;

use super::{Backend, Config, Mat, Vector};
use crate::method::{Inputs, Site};
use crate::reference;
use crate::gguf::Gguf;
use crate::{Activations, Error, KvPrecision, Result};

/// A dense f32 matrix `[rows, cols]`.
pub struct F32Mat {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

/// A matrix in a 32-block integer format, decoded to `w = d · q + m` per block (`q` as i8).
pub struct BlockMat {
    pub rows: usize,
    pub cols: usize,
    pub q: Vec<i8>,
    pub d: Vec<f32>,
    /// Block minimum for Q4_1/Q5_1 (activations then carry their block sum, as Q8_1 does).
    pub m: Option<Vec<f32>>,
}

/// A weight matrix as the CPU backend holds it: in f32, or in its file's 32-block integer form.
pub enum CpuMatrix {
    F32(F32Mat),
    Blocks(BlockMat),
}

impl CpuMatrix {
    fn rows(&self) -> usize {
        match self {
            CpuMatrix::F32(w) => w.rows,
            CpuMatrix::Blocks(w) => w.rows,
        }
    }
}

/// A 32-weight integer tensor as integer quants and per-block scale (and min); `None` for other
/// formats (they are dequantized to f32).
fn load_blocks(g: &Gguf, name: &str) -> Result<Option<BlockMat>> {
    let t = g.tensor(name)?;
    let (rows, cols) = t.matrix_shape();
    Ok(crate::ggml::integer_blocks(t.ggml_type, g.tensor_data(t)).map(|(q, d, m)| BlockMat { rows, cols, q, d, m }))
}

/// `Y [m, n] = X [m, k] · Wᵀ` for a block-integer W, in f32. Each row's codes are converted to
/// f32 once and multiplied with 4 tokens at a time (each weight loaded serves 4 tokens); every
/// token's sums are the same operations in the same order as one at a time.
pub fn matmul_blocks(w: &BlockMat, x: &[f32], m: usize) -> Vec<f32> {
    let k = w.cols;
    let nb = k / 32;
    // Σx per activation block (for the block minimum).
    let xsum: Vec<f32> = x.chunks_exact(32).map(|b| b.iter().sum()).collect();
    par_rows(w.rows, m, |r, out| {
        let qw: Vec<f32> = w.q[r * k..(r + 1) * k].iter().map(|&q| q as f32).collect();
        let row = |t0: usize, out: &mut [f32], n: usize| {
            let mut acc = [0f32; 4];
            for b in 0..nb {
                let xs: [&[f32]; 4] = std::array::from_fn(|t| &x[(t0 + t.min(n - 1)) * k + b * 32..][..32]);
                let s = lanes8::<4>(&qw[b * 32..b * 32 + 32], xs);
                for t in 0..n {
                    acc[t] += w.d[r * nb + b] * s[t];
                    if let Some(mins) = &w.m {
                        acc[t] += mins[r * nb + b] * xsum[(t0 + t) * nb + b];
                    }
                }
            }
            out[..n].copy_from_slice(&acc[..n]);
        };
        for t0 in (0..m).step_by(4) {
            let n = (m - t0).min(4);
            row(t0, &mut out[t0..], n);
        }
    })
}

/// `Σ a[i]·x_t[i]` for N rows x_t at once, each in eight f32 lanes added up in order at the end
/// (the lengths are a multiple of 8): each a[i] loaded serves N tokens.
fn lanes8<const N: usize>(a: &[f32], xs: [&[f32]; N]) -> [f32; N] {
    let mut acc = [[0f32; 8]; N];
    for (c, w) in a.chunks_exact(8).enumerate() {
        let w: &[f32; 8] = w.try_into().unwrap();
        for t in 0..N {
            let xt: &[f32; 8] = xs[t][c * 8..c * 8 + 8].try_into().unwrap();
            for i in 0..8 {
                acc[t][i] += w[i] * xt[i];
            }
        }
    }
    acc.map(|l| l.iter().sum::<f32>())
}

/// Compute `rows` outputs of `m` values each over the available cores; `f(r, out[..m])` fills
/// row `r`. Returns `[m, rows]`.
fn par_rows(rows: usize, m: usize, f: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    // One thread on wasm (the worker calibrates on it): spawning would fail there.
    let threads = if cfg!(target_arch = "wasm32") { 1 } else { std::thread::available_parallelism().map_or(1, |t| t.get()).min(8) };
    if threads == 1 {
        let mut y = vec![0f32; m * rows];
        let mut out = vec![0f32; m];
        for r in 0..rows {
            f(r, &mut out);
            for (t, v) in out.iter().enumerate() {
                y[t * rows + r] = *v;
            }
        }
        return y;
    }
    let chunk = rows.div_ceil(threads).max(1);
    let f = &f;
    let parts: Vec<Vec<f32>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..rows)
            .step_by(chunk)
            .map(|r0| {
                s.spawn(move || {
                    let r1 = (r0 + chunk).min(rows);
                    let mut out = vec![0f32; (r1 - r0) * m];
                    for r in r0..r1 {
                        f(r, &mut out[(r - r0) * m..(r - r0 + 1) * m]);
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });
    let mut y = vec![0f32; m * rows];
    for (ci, part) in parts.iter().enumerate() {
        let r0 = ci * chunk;
        for (i, v) in part.iter().enumerate() {
            y[(i % m) * rows + r0 + i / m] = *v;
        }
    }
    y
}

/// Activations `[m, width]`: the CPU backend's [`Backend::Act`].
#[derive(Clone, Debug)]
pub struct CpuActivations {
    pub data: Vec<f32>,
    pub m: usize,
    pub width: usize,
}

pub struct CpuBackend {
    pub cfg: Config,
    embd: F32Mat,
    mats: HashMap<Mat, CpuMatrix>,
    /// Every [`Vector`] of the model.
    vectors: HashMap<Vector, Vec<f32>>,
    k_cache: Vec<Vec<f32>>,
    v_cache: Vec<Vec<f32>>,
    /// The format keys and values pass through on their way into the cache (each row encoded
    /// and decoded by [`KvPrecision`], as the GPU stores and reads it): the model-level
    /// reference of the GPU's KV formats. f32 keeps them as computed.
    kv: KvPrecision,
    /// Per layer, each channel's mean key over the calibration text, once a 4- or 3-bit format
    /// has asked for it ([`CpuBackend::set_kv`]).
    key_means: Option<Vec<Vec<f32>>>,
    /// Per layer, each key channel's scale λ, measured with the means: the rotated formats code
    /// keys (less their mean) times λ and divide what they decode by it (`kv_balance.wgsl`).
    key_scales: Option<Vec<Vec<f32>>>,
    /// While the means are measured: per layer, each key channel's sum of squared queries.
    query_sq: Option<Vec<Vec<f32>>>,
    /// Per layer, the keys and values as a recent window reads them ([`KvPrecision::exact`]),
    /// and which of them its ring holds (4- and 3-bit formats, [`KvPrecision::recent`]).
    exact: Vec<(Vec<f32>, Vec<f32>)>,
    recent: Vec<reference::Recent>,
    /// Every matrix's input so far, by site, while recording ([`CpuBackend::record_inputs`]).
    recorded: Option<RefCell<HashMap<Site, Inputs>>>,
    /// `Int8`: every matrix multiplies its input quantized to 8 bits per block of 32 and back
    /// ([`crate::layout::quantize_activations`]), the model-level reference of the GPU's 8-bit
    /// activations (which its INT8 and INT4 matrices multiply).
    pub activations: Activations,
}

fn load(g: &Gguf, name: &str) -> Result<F32Mat> {
    let t = g.tensor(name)?;
    let (rows, cols) = t.matrix_shape();
    Ok(F32Mat { rows, cols, data: g.dequantize_tensor(t)? })
}

fn load_matrix(g: &Gguf, name: &str) -> Result<CpuMatrix> {
    Ok(match load_blocks(g, name)? {
        Some(b) => CpuMatrix::Blocks(b),
        None => CpuMatrix::F32(load(g, name)?),
    })
}

/// `Σ a[i]·b[i]` in eight f32 lanes (the CPU reference's matmuls; calibration's `XᵀX`).
pub(crate) fn dot8(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `Y [m, n] = X [m, k] · Wᵀ` in f32, 4 tokens at a time (each token's sum exactly `dot8`'s).
pub fn matmul_f32(w: &F32Mat, x: &[f32], m: usize) -> Vec<f32> {
    let k = w.cols;
    let k8 = k / 8 * 8;
    par_rows(w.rows, m, |r, out| {
        let row = &w.data[r * k..(r + 1) * k];
        for t0 in (0..m).step_by(4) {
            let n = (m - t0).min(4);
            let xs: [&[f32]; 4] = std::array::from_fn(|t| &x[(t0 + t.min(n - 1)) * k..][..k]);
            let s = lanes8::<4>(&row[..k8], xs);
            for t in 0..n {
                let tail: f32 = row[k8..].iter().zip(&xs[t][k8..]).map(|(a, b)| a * b).sum();
                out[t0 + t] = s[t] + tail;
            }
        }
    })
}

impl CpuBackend {
    pub fn load(g: &Gguf) -> Result<Self> {
        let cfg = Config::from_gguf(g)?;
        // The embedding in f32 for its row lookups; as a matrix too when it is the output head.
        let embd = load(g, &Mat::Embedding.tensor_name(false))?;
        let mut mats = HashMap::new();
        for m in Mat::all(cfg.n_layers) {
            if m != Mat::Embedding {
                mats.insert(m, load_matrix(g, &m.tensor_name(cfg.tied_output))?);
            }
        }
        let mut vectors = HashMap::new();
        for n in cfg.vectors() {
            vectors.insert(n, n.values(g)?);
        }
        let n = cfg.n_layers;
        Ok(CpuBackend { cfg, embd, mats, vectors, k_cache: vec![vec![]; n], v_cache: vec![vec![]; n], kv: KvPrecision::F32, key_means: None, key_scales: None, query_sq: None, exact: vec![(vec![], vec![]); n], recent: vec![reference::Recent::new(0); n], recorded: None, activations: Activations::F32 })
    }

    /// Store keys and values as `kv` from now on (the cache so far is kept as it was stored). The
    /// first 4- or 3-bit format measures the mean keys and key scales first, as the GPU backend
    /// does ([`crate::model::gpu::GpuBackend::measure_key_stats`]): keys are coded less their
    /// layer's mean (times the scales, rotated formats) and decoded back.
    pub fn set_kv(&mut self, g: &crate::gguf::Gguf, kv: KvPrecision) -> Result<()> {
        if let Some(why) = self.cfg.kv_unfit(kv) {
            return Err(Error::Usage(why));
        }
        if kv.centered() && self.key_means.is_none() {
            let toks = super::key_mean_tokens(g, &self.cfg);
            let kept = (std::mem::replace(&mut self.kv, KvPrecision::F32), std::mem::take(&mut self.k_cache), std::mem::take(&mut self.v_cache));
            let n_layers = self.cfg.n_layers;
            (self.k_cache, self.v_cache) = (vec![vec![]; n_layers], vec![vec![]; n_layers]);
            let cfg = self.cfg.clone();
            let kvd = cfg.n_kv_heads * cfg.head_dim;
            self.query_sq = Some(vec![vec![0.0; kvd]; n_layers]);
            let r = super::forward(&cfg, self, &toks, 0, false);
            let qsq = self.query_sq.take().unwrap_or_default();
            let measured = std::mem::replace(&mut self.k_cache, kept.1);
            (self.kv, self.v_cache) = (kept.0, kept.2);
            r?;
            let means: Vec<Vec<f32>> = measured.iter().map(|k| crate::reference::kv_mean(k, toks.len(), kvd)).collect();
            let scales = measured.iter().zip(&means).zip(&qsq).map(|((k, m), q)| crate::reference::kv_balance(k, toks.len(), kvd, cfg.head_dim, m, q)).collect();
            self.key_means = Some(means);
            self.key_scales = Some(scales);
        }
        if kv != self.kv {
            self.recent = vec![reference::Recent::new(kv.recent()); self.cfg.n_layers];
        }
        self.kv = kv;
        Ok(())
    }

    /// Per layer, the mean keys a 4- or 3-bit format subtracts, once measured.
    pub fn key_means(&self) -> Option<&[Vec<f32>]> {
        self.key_means.as_deref()
    }

    /// Per layer, the key scales a rotated format multiplies keys by, once measured.
    pub fn key_scales(&self) -> Option<&[Vec<f32>]> {
        self.key_scales.as_deref()
    }

    /// From now on, keep the activations every matrix multiplies (for calibration).
    pub fn record_inputs(&mut self) {
        self.recorded = Some(RefCell::new(HashMap::new()));
    }

    /// The activations recorded since [`CpuBackend::record_inputs`], by site; stops recording.
    pub fn take_inputs(&mut self) -> HashMap<Site, Inputs> {
        self.recorded.take().map(RefCell::into_inner).unwrap_or_default()
    }

    fn mat(&self, m: Mat) -> Result<&CpuMatrix> {
        self.mats.get(&m).ok_or_else(|| Error::TensorNotFound(m.tensor_name(self.cfg.tied_output)))
    }
}

impl CpuBackend {
    fn rmsnorm(&self, x: &CpuActivations, w: Vector) -> CpuActivations {
        CpuActivations { data: reference::rmsnorm(&x.data, &self.vectors[&w], self.cfg.rms_eps), ..*x }
    }

    fn linear(&self, x: &CpuActivations, m: Mat) -> Result<CpuActivations> {
        if let (Some(rec), Some(site)) = (&self.recorded, Site::recorded_at(m)) {
            let mut rec = rec.borrow_mut();
            let inputs = rec.entry(site).or_insert_with(|| Inputs { cols: x.width, x: vec![] });
            inputs.x.extend_from_slice(&x.data);
        }
        let w = self.mat(m)?;
        let input: std::borrow::Cow<[f32]> = match self.activations {
            Activations::F32 => (&x.data).into(),
            Activations::Int8 => {
                let mut q = x.data.clone();
                crate::layout::quantize_activations(&mut q, x.width);
                q.into()
            }
        };
        let data = match w {
            CpuMatrix::F32(f) => matmul_f32(f, &input, x.m),
            CpuMatrix::Blocks(b) => matmul_blocks(b, &input, x.m),
        };
        Ok(CpuActivations { data, m: x.m, width: w.rows() })
    }
}

impl Backend for CpuBackend {
    type Act = CpuActivations;

    fn embed(&mut self, ids: &[u32], _pos0: usize) -> Result<CpuActivations> {
        let d = self.embd.cols;
        let mut data = Vec::with_capacity(ids.len() * d);
        for &id in ids {
            let id = id as usize;
            if id >= self.embd.rows {
                return Err(Error::Shape(format!("token id {id} outside the vocabulary of {}", self.embd.rows)));
            }
            data.extend(self.embd.data[id * d..(id + 1) * d].iter().map(|v| v * self.cfg.embed_scale));
        }
        Ok(CpuActivations { data, m: ids.len(), width: d })
    }

    fn qkv(&mut self, x: &CpuActivations, l: usize, pos0: usize) -> Result<CpuActivations> {
        let h = self.rmsnorm(x, Vector::Attn(l));
        let (mut q, mut k, mut v) = (self.linear(&h, Mat::Q(l))?, self.linear(&h, Mat::K(l))?, self.linear(&h, Mat::V(l))?);
        if let Some(bias) = self.vectors.get(&Vector::QkvBias(l)) {
            let (qd, kvd) = (q.width, k.width);
            for (act, b) in [(&mut q, &bias[..qd]), (&mut k, &bias[qd..qd + kvd]), (&mut v, &bias[qd + kvd..])] {
                for row in act.data.chunks_exact_mut(b.len()) {
                    reference::add(row, b);
                }
            }
        }
        let c = &self.cfg;
        if let Some(w) = self.vectors.get(&Vector::QkNorm(l)) {
            let hd = c.head_dim;
            for (act, w) in [(&mut q, &w[..hd]), (&mut k, &w[hd..])] {
                act.data = reference::rmsnorm(&act.data, w, c.rms_eps);
            }
        }
        let factors = self.vectors.get(&Vector::RopeFreqs).map_or(&[][..], |f| &f[..]);
        reference::rope_with(&mut q.data, &c.rope(l, c.n_heads, pos0), factors);
        reference::rope_with(&mut k.data, &c.rope(l, c.n_kv_heads, pos0), factors);
        let kvd = c.n_kv_heads * c.head_dim;
        if let Some(qsq) = &mut self.query_sq {
            let sums = reference::kv_query_sq(&q.data, q.m, q.width, c.n_heads, c.n_kv_heads, c.head_dim);
            qsq[l].iter_mut().zip(sums).for_each(|(a, s)| *a += s);
        }
        let (kc, vc) = (&mut self.k_cache[l], &mut self.v_cache[l]);
        if kc.len() < pos0 * kvd {
            return Err(Error::Shape(format!("position {pos0} is past the cache ({} tokens)", kc.len() / kvd)));
        }
        kc.truncate(pos0 * kvd);
        vc.truncate(pos0 * kvd);
        let recent = self.kv.recent() > 0;
        let (ek, ev) = &mut self.exact[l];
        ek.truncate(pos0 * kvd);
        ev.truncate(pos0 * kvd);
        if self.kv == KvPrecision::F32 {
            kc.extend_from_slice(&k.data);
            vc.extend_from_slice(&v.data);
        } else {
            let mean = match (&self.key_means, self.kv.centered()) {
                (Some(m), true) => Some(&m[l]),
                _ => None,
            };
            let ones = vec![1f32; kvd];
            let scale = match (&self.key_scales, self.kv.scaled()) {
                (Some(s), true) => &s[l],
                _ => &ones,
            };
            // Keys are coded less their mean (0 where not centered) times their scales (1 where
            // not scaled) and given back as the keys they stand for; values as they are. A recent
            // window also keeps what it reads of both: in f16 as they are coded.
            let zero = vec![0f32; kvd];
            let mean = mean.unwrap_or(&zero);
            let hd = c.head_dim;
            for row in k.data.chunks_exact(kvd) {
                let coded: Vec<f32> = row.iter().zip(mean).zip(scale).map(|((v, m), s)| (v - m) * s).collect();
                let back = |x: Vec<f32>| x.into_iter().zip(mean).zip(scale).map(|((v, m), s)| v / s + m);
                kc.extend(back(self.kv.decode(&self.kv.encode(&coded, hd)?, hd)));
                if recent {
                    ek.extend(back(self.kv.exact(&coded, hd)));
                }
            }
            for row in v.data.chunks_exact(kvd) {
                vc.extend(self.kv.decode(&self.kv.encode(row, hd)?, hd));
                if recent {
                    ev.extend(self.kv.exact(row, hd));
                }
            }
        }
        Ok(q)
    }

    fn attend(&mut self, l: usize, q: &CpuActivations, pos0: usize) -> Result<CpuActivations> {
        let c = &self.cfg;
        let a = c.attention(l, pos0);
        let (exact, recent) = (&self.exact[l], &mut self.recent[l]);
        let stored = (&self.k_cache[l][..], &self.v_cache[l][..]);
        let data = if self.kv.recent() > 0 {
            let data = reference::attention_with(&q.data, stored, (&exact.0, &exact.1), q.m, &a, |pos, j| recent.exact(j, pos, pos0));
            recent.keep(pos0, q.m);
            data
        } else {
            reference::attention(&q.data, stored.0, stored.1, q.m, &a)
        };
        Ok(CpuActivations { data, m: q.m, width: c.n_heads * c.head_dim })
    }

    fn linear_add(&mut self, x: &mut CpuActivations, a: &CpuActivations, w: Mat) -> Result<()> {
        let y = self.linear(a, w)?;
        reference::add(&mut x.data, &y.data);
        Ok(())
    }

    fn linear_norm_add(&mut self, x: &mut CpuActivations, a: &CpuActivations, w: Mat, norm: Vector) -> Result<()> {
        let y = self.linear(a, w)?;
        let g = self.vectors.get(&norm).ok_or_else(|| Error::TensorNotFound(norm.tensor_name()))?;
        reference::rmsnorm_add(&mut x.data, &y.data, g, self.cfg.rms_eps);
        Ok(())
    }

    fn glu(&mut self, x: &CpuActivations, l: usize) -> Result<CpuActivations> {
        let h = self.rmsnorm(x, Vector::Ffn(l));
        let (gate, up) = (self.linear(&h, Mat::Gate(l))?, self.linear(&h, Mat::Up(l))?);
        Ok(CpuActivations { data: reference::glu(self.cfg.activation, &gate.data, &up.data), ..gate })
    }

    fn logits(&mut self, x: &CpuActivations) -> Result<CpuActivations> {
        let h = self.rmsnorm(x, Vector::Output);
        self.linear(&h, Mat::Output)
    }

    fn last_row(&mut self, x: &CpuActivations) -> Result<CpuActivations> {
        Ok(CpuActivations { data: x.data[(x.m - 1) * x.width..].to_vec(), m: 1, width: x.width })
    }

    fn copy(&mut self, x: &CpuActivations) -> Result<CpuActivations> {
        Ok(CpuActivations { data: x.data.clone(), m: x.m, width: x.width })
    }

    async fn read(&mut self, x: &CpuActivations) -> Result<Vec<f32>> {
        Ok(x.data.clone())
    }
}
