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

    /// Pick the next token from `logits` given the tokens so far.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let c = &self.cfg;
        let mut l = logits.to_vec();
        if c.repetition_penalty != 1.0 {
            let start = history.len().saturating_sub(c.repeat_last_n);
            let mut seen = history[start..].to_vec();
            seen.sort_unstable();
            seen.dedup();
            for &t in &seen {
                if let Some(v) = l.get_mut(t as usize) {
                    *v = if *v > 0.0 { *v / c.repetition_penalty } else { *v * c.repetition_penalty };
                }
            }
        }
        if c.temperature <= 0.0 {
            return crate::model::argmax(&l) as u32;
        }
        let mut cand: Vec<(u32, f32)> = l.iter().enumerate().map(|(i, &v)| (i as u32, v)).collect();
        cand.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if c.top_k > 0 {
            cand.truncate(c.top_k);
        }
        let probs = |cand: &[(u32, f32)], t: f32| -> Vec<f64> {
            let mx = cand[0].1;
            let e: Vec<f64> = cand.iter().map(|&(_, v)| (((v - mx) / t) as f64).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(|x| x / s).collect()
        };
        if c.top_p < 1.0 {
            let p = probs(&cand, 1.0);
            let mut acc = 0.0;
            let keep = p.iter().position(|&x| {
                acc += x;
                acc >= c.top_p as f64
            });
            cand.truncate(keep.map_or(cand.len(), |k| k + 1));
        }
        if c.min_p > 0.0 {
            let p = probs(&cand, 1.0);
            let floor = p[0] * c.min_p as f64;
            let keep = p.iter().take_while(|&&x| x >= floor).count().max(1);
            cand.truncate(keep);
        }
        let p = probs(&cand, c.temperature);
        let r = self.rng.uniform() as f64;
        let mut acc = 0.0;
        for (i, x) in p.iter().enumerate() {
            acc += x;
            if r < acc {
                return cand[i].0;
            }
        }
        cand[cand.len() - 1].0
    }
}
