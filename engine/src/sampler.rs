//! Token sampling: greedy, temperature, top-k, top-p, min-p and repetition penalty, in
//! llama.cpp's order (penalty → top-k → top-p → min-p → temperature). Deterministic for a seed.

use serde::{Deserialize, Serialize};

use crate::util::Rng;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplerConfig {
    /// 0 = greedy (argmax).
    pub temperature: f32,
    /// 0 = off.
    pub top_k: usize,
    /// 1 = off.
    pub top_p: f32,
    /// 0 = off: drop tokens whose probability is below `min_p ·` the top probability.
    pub min_p: f32,
    /// 1 = off: logits of recently seen tokens are divided (positive) or multiplied (negative) by it.
    pub repetition_penalty: f32,
    /// How many recent tokens the penalty looks at.
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig { temperature: 0.0, top_k: 40, top_p: 0.95, min_p: 0.05, repetition_penalty: 1.0, repeat_last_n: 64, seed: 0 }
    }
}

#[derive(Clone)]
pub struct Sampler {
    pub cfg: SamplerConfig,
    rng: Rng,
}

impl Sampler {
    pub fn new(cfg: SamplerConfig) -> Self {
        let rng = Rng::new(cfg.seed);
        Sampler { cfg, rng }
    }

    /// Whether [`Sampler::sample`] is the plain argmax of the logits (so a backend may take the
    /// argmax itself and read back only the token).
    pub fn is_greedy(&self) -> bool {
        self.cfg.temperature <= 0.0 && self.cfg.repetition_penalty == 1.0
    }

    /// The settings of the next draw given the tokens so far: the distinct recent tokens the
    /// penalty applies to, and the uniform number the draw uses (taken from the seeded generator
    /// only when the draw is random, so every backend consumes it alike).
    pub fn draw(&mut self, history: &[u32]) -> Draw {
        let u = self.next_u();
        self.draw_with(history, u)
    }

    /// The next draw's uniform number: from the seeded generator when the draw is random, else
    /// 0 (nothing taken). [`Sampler::draw`] is `draw_with(history, next_u())`.
    pub fn next_u(&mut self) -> f32 {
        if self.cfg.temperature > 0.0 {
            self.rng.uniform()
        } else {
            0.0
        }
    }

    /// A draw with uniform number `u`, its penalty over the recent tokens of `history`.
    pub fn draw_with(&self, history: &[u32], u: f32) -> Draw {
        let c = &self.cfg;
        let mut recent = history[history.len() - self.window(history.len())..].to_vec();
        recent.sort_unstable();
        recent.dedup();
        Draw {
            recent,
            penalty: c.repetition_penalty,
            top_k: c.top_k,
            top_p: c.top_p,
            min_p: c.min_p,
            temperature: c.temperature,
            u,
        }
    }

    /// How many of the last tokens of a history of `len` the penalty looks at (0 when it is off).
    pub fn window(&self, len: usize) -> usize {
        if self.cfg.repetition_penalty != 1.0 {
            self.cfg.repeat_last_n.min(len)
        } else {
            0
        }
    }

    /// Pick the next token from `logits` given the tokens so far.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let d = self.draw(history);
        sample(logits, &d)
    }
}

/// One draw's settings ([`Sampler::draw`]): everything [`sample`] needs besides the logits, so a
/// backend can draw where the logits are.
#[derive(Clone, Debug, PartialEq)]
pub struct Draw {
    /// Distinct tokens the repetition penalty applies to (empty when it is off).
    pub recent: Vec<u32>,
    pub penalty: f32,
    /// 0 = every token.
    pub top_k: usize,
    pub top_p: f32,
    pub min_p: f32,
    /// 0 = greedy (after the penalty).
    pub temperature: f32,
    /// Uniform in [0, 1): the draw picks the first token whose cumulative probability exceeds it.
    pub u: f32,
}

/// One draw from `logits` (the CPU reference of `sample.wgsl`), in llama.cpp's order: repetition
/// penalty → top-k → top-p → min-p → temperature. Candidates are ranked by logit, then by id.
pub fn sample(logits: &[f32], d: &Draw) -> u32 {
    let mut l = logits.to_vec();
    for &t in &d.recent {
        if let Some(v) = l.get_mut(t as usize) {
            *v = if *v > 0.0 { *v / d.penalty } else { *v * d.penalty };
        }
    }
    if d.temperature <= 0.0 {
        return crate::model::argmax(&l) as u32;
    }
    let mut cand: Vec<(u32, f32)> = l.iter().enumerate().map(|(i, &v)| (i as u32, v)).collect();
    cand.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if d.top_k > 0 {
        cand.truncate(d.top_k);
    }
    let probs = |cand: &[(u32, f32)], t: f32| -> Vec<f64> {
        let mx = cand[0].1;
        let e: Vec<f64> = cand.iter().map(|&(_, v)| (((v - mx) / t) as f64).exp()).collect();
        let s: f64 = e.iter().sum();
        e.into_iter().map(|x| x / s).collect()
    };
    if d.top_p < 1.0 {
        let p = probs(&cand, 1.0);
        let mut acc = 0.0;
        let keep = p.iter().position(|&x| {
            acc += x;
            acc >= d.top_p as f64
        });
        cand.truncate(keep.map_or(cand.len(), |k| k + 1));
    }
    if d.min_p > 0.0 {
        let p = probs(&cand, 1.0);
        let floor = p[0] * d.min_p as f64;
        let keep = p.iter().take_while(|&&x| x >= floor).count().max(1);
        cand.truncate(keep);
    }
    let p = probs(&cand, d.temperature);
    let r = d.u as f64;
    let mut acc = 0.0;
    for (i, x) in p.iter().enumerate() {
        acc += x;
        if r < acc {
            return cand[i].0;
        }
    }
    cand[cand.len() - 1].0
}
