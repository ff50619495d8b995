//! Calibration: a text run through the model at its source precision (the CPU reference, the
//! file's own weights), recording what reaches each weight matrix. The calibrated methods read
//! these activations: their per-column mean squares ([`Inputs::importance`], llama.cpp's
//! importance matrix) or their `XᵀX` ([`Calibration::factor`], GPTQ's Hessian). Computed once per
//! model and reused by every method and precision.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::gptq::Factor;
use crate::gguf::Gguf;
use crate::model::cpu::CpuBackend;
use crate::model::{Config, Mat};
use crate::{Error, Precision, Result};

/// The built-in calibration text (written for this project, CC0): mixed genres, never the
/// text the quality panel or the README's tables evaluate on.
pub const TEXT: &str = include_str!("../../texts/calibration.txt");

/// Tokens of calibration text used unless asked otherwise.
pub const DEFAULT_TOKENS: usize = 512;

/// The first `n` tokens of a calibration `text` (BOS as the model's metadata says, special
/// tokens not parsed): what every calibration runs.
pub fn text_tokens(tok: &crate::tokenizer::Tokenizer, text: &str, n: usize) -> Vec<u32> {
    let mut toks = tok.encode_with_bos(text, false);
    toks.truncate(n);
    toks
}

/// Tokens per forward pass (each chunk starts at position 0, as llama.cpp's `imatrix` does).
pub const CHUNK: usize = 512;

/// Where an activation enters weight matrices: matrices that read the same input share a site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Site {
    /// The attention's normed input: Q, K and V.
    Qkv(usize),
    /// The attention's output: O.
    O(usize),
    /// The feed-forward's normed input: gate and up.
    GateUp(usize),
    /// The gated activation: down.
    Down(usize),
    /// The final normed hidden state: the output head (the embedding when tied).
    Output,
}

impl Site {
    /// The site whose activations multiply matrix `m`; `None` for an untied embedding (a row
    /// lookup: no activation multiplies it).
    pub fn of(m: Mat, tied: bool) -> Option<Site> {
        Some(match m {
            Mat::Q(l) | Mat::K(l) | Mat::V(l) => Site::Qkv(l),
            Mat::O(l) => Site::O(l),
            Mat::Gate(l) | Mat::Up(l) => Site::GateUp(l),
            Mat::Down(l) => Site::Down(l),
            Mat::Output => Site::Output,
            Mat::Embedding if tied => Site::Output,
            Mat::Embedding => return None,
        })
    }

    /// The one matrix per site whose input the CPU backend records (the others read the same).
    pub fn recorded_at(m: Mat) -> Option<Site> {
        match m {
            Mat::Q(_) | Mat::O(_) | Mat::Gate(_) | Mat::Down(_) | Mat::Output => Site::of(m, false),
            _ => None,
        }
    }
}

/// The activations `x [n, cols]` that reached one site.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    pub cols: usize,
    pub x: Vec<f32>,
}

impl Inputs {
    pub fn rows(&self) -> usize {
        if self.cols == 0 { 0 } else { self.x.len() / self.cols }
    }

    /// Each column's mean squared activation (the diagonal of `XᵀX / n`).
    pub fn importance(&self) -> Vec<f32> {
        let mut s = vec![0f64; self.cols];
        for row in self.x.chunks_exact(self.cols.max(1)) {
            for (a, v) in s.iter_mut().zip(row) {
                *a += (*v as f64) * (*v as f64);
            }
        }
        let n = self.rows().max(1) as f64;
        s.iter().map(|v| (v / n) as f32).collect()
    }

    /// `XᵀX / n`, `[cols, cols]` row-major, in f64.
    pub fn gram(&self) -> Vec<f64> {
        let (n, k) = (self.rows(), self.cols);
        // Columns as contiguous rows, so every entry is one contiguous dot product.
        let mut xt = vec![0f32; k * n];
        for (t, row) in self.x.chunks_exact(k.max(1)).enumerate() {
            for (i, v) in row.iter().enumerate() {
                xt[i * n + t] = *v;
            }
        }
        let rows = super::par_map(k, |i| {
            let a = &xt[i * n..(i + 1) * n];
            (0..=i).map(|j| crate::model::cpu::dot8(a, &xt[j * n..(j + 1) * n]) as f64 / n.max(1) as f64).collect::<Vec<f64>>()
        });
        let mut h = vec![0f64; k * k];
        for (i, r) in rows.iter().enumerate() {
            for (j, v) in r.iter().enumerate() {
                h[i * k + j] = *v;
                h[j * k + i] = *v;
            }
        }
        h
    }
}

/// Tokens per [`Calibrator::step`].
pub const STEP: usize = 64;

/// Runs calibration tokens through the CPU reference a few at a time, so a caller can report
/// progress and cancel between steps (the page's worker does). Positions continue within each
/// [`CHUNK`] of tokens and start again at 0 with the next.
pub struct Calibrator {
    cfg: Config,
    cpu: CpuBackend,
    tokens: Vec<u32>,
    pub done: usize,
    t0: f64,
}

impl Calibrator {
    pub fn new(g: &Gguf, tokens: Vec<u32>) -> Result<Calibrator> {
        if tokens.is_empty() {
            return Err(Error::Usage("the calibration text has no tokens".into()));
        }
        let t0 = crate::util::now_ms();
        let cfg = Config::from_gguf(g)?;
        let mut cpu = CpuBackend::load(g)?;
        cpu.record_inputs();
        Ok(Calibrator { cfg, cpu, tokens, done: 0, t0 })
    }

    pub fn total(&self) -> usize {
        self.tokens.len()
    }

    /// Run the next few tokens; false once every token is done.
    pub fn step(&mut self) -> Result<bool> {
        let pos = self.done % CHUNK;
        let n = STEP.min(CHUNK - pos).min(self.tokens.len() - self.done);
        if n > 0 {
            // Every position's logits, so the output head's input is recorded for each.
            crate::model::forward(&self.cfg, &mut self.cpu, &self.tokens[self.done..self.done + n], pos, true)?;
            self.done += n;
        }
        Ok(self.done < self.tokens.len())
    }

    pub fn finish(mut self) -> Calibration {
        Calibration {
            tokens: self.done,
            seconds: (crate::util::now_ms() - self.t0) / 1000.0,
            tied: self.cfg.tied_output,
            inputs: self.cpu.take_inputs(),
            last_factor: Mutex::new(None),
            awq: Mutex::new(HashMap::new()),
        }
    }
}

/// A model's calibration activations.
#[derive(Debug, Default)]
pub struct Calibration {
    /// Tokens run through the model.
    pub tokens: usize,
    /// Wall-clock seconds the forward passes took.
    pub seconds: f64,
    pub tied: bool,
    inputs: HashMap<Site, Inputs>,
    /// GPTQ's factor of the last site asked for (Q, K and V share one; the next site replaces it).
    last_factor: Mutex<Option<(Site, Arc<Factor>)>>,
    /// AWQ's scales per site and precision ([`super::awq`]), searched once.
    awq: Mutex<HashMap<(Site, Precision), Option<Arc<Vec<f32>>>>>,
}

impl Calibration {
    /// Run `tokens` through the model in `g` and record every matrix's input (all at once; see
    /// [`Calibrator`] for steps with progress).
    pub fn collect(g: &Gguf, tokens: &[u32]) -> Result<Calibration> {
        let mut c = Calibrator::new(g, tokens.to_vec())?;
        while c.step()? {}
        Ok(c.finish())
    }

    /// What reached matrix `m` (`None` for an untied embedding).
    pub fn inputs(&self, m: Mat) -> Option<&Inputs> {
        Site::of(m, self.tied).and_then(|s| self.inputs.get(&s))
    }

    /// GPTQ's factor of the inputs of matrix `m` ([`Factor::of`]), shared by the matrices of
    /// one site when they are quantized one after another.
    pub fn factor(&self, m: Mat) -> Result<Arc<Factor>> {
        let site = Site::of(m, self.tied).ok_or_else(|| Error::Usage(format!("{m:?} has no calibration inputs")))?;
        let mut last = self.last_factor.lock().map_err(|_| Error::Usage("calibration lock poisoned".into()))?;
        if let Some((s, f)) = last.as_ref() {
            if *s == site {
                return Ok(f.clone());
            }
        }
        let inputs = self.inputs.get(&site).ok_or_else(|| Error::Usage(format!("no calibration inputs for {site:?}")))?;
        let f = Arc::new(Factor::of(inputs)?);
        *last = Some((site, f.clone()));
        Ok(f)
    }

    /// AWQ's scales of `site` at `p`: `search()` the first time, then as found.
    pub fn awq_scales(&self, site: Site, p: Precision, search: impl FnOnce() -> Result<Option<Vec<f32>>>) -> Result<Option<Arc<Vec<f32>>>> {
        let mut cache = self.awq.lock().map_err(|_| Error::Usage("calibration lock poisoned".into()))?;
        if let Some(s) = cache.get(&(site, p)) {
            return Ok(s.clone());
        }
        let s = search()?.map(Arc::new);
        cache.insert((site, p), s.clone());
        Ok(s)
    }

    /// From recorded inputs (tests).
    pub fn from_inputs(inputs: HashMap<Site, Inputs>, tied: bool) -> Calibration {
        let tokens = inputs.values().map(Inputs::rows).max().unwrap_or(0);
        Calibration { tokens, seconds: 0.0, tied, inputs, last_factor: Mutex::new(None), awq: Mutex::new(HashMap::new()) }
    }
}
