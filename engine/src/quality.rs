//! What each precision costs in quality, measured on one text: perplexity, the KL divergence of
//! each position's next-token distribution from FP16's, and how often its top-1 token is FP16's.
//! The same numbers reach the CLI (`lowbit compare`) and, later, the page.

use serde::{Deserialize, Serialize};

use crate::gguf::Gguf;
use crate::gpu::Gpu;
use crate::model::cpu::CpuBackend;
use crate::model::gpu::GpuBackend;
use crate::model::{argmax, log_softmax, perplexity, perplexity_of, score, Config};
use crate::plan::Variant;
use crate::{Precision, Result};

/// What a quality row scored: the file's own weights on the CPU, or a variant on the GPU. In JSON
/// it is `source` or the variant's [`Variant::code`] (`fp16`, `int4`, `fp16-int4-fp16`,
/// `fp16+kv-int8`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Scored {
    Source,
    Variant(Variant),
}

impl Scored {
    /// FP16 weights with an f32 KV cache: what every other row is compared with.
    pub const REFERENCE: Scored = Scored::Variant(Variant::REFERENCE);

    /// The variant scored, unless it is the source.
    pub fn variant(self) -> Option<Variant> {
        match self {
            Scored::Source => None,
            Scored::Variant(v) => Some(v),
        }
    }

    pub fn code(self) -> String {
        match self {
            Scored::Source => "source".into(),
            Scored::Variant(v) => v.code(),
        }
    }
}

impl From<Scored> for String {
    fn from(s: Scored) -> String {
        s.code()
    }
}

impl TryFrom<String> for Scored {
    type Error = crate::Error;
    fn try_from(s: String) -> Result<Scored> {
        if s == "source" { Ok(Scored::Source) } else { Variant::parse(&s).map(Scored::Variant) }
    }
}

impl From<Variant> for Scored {
    fn from(v: Variant) -> Scored {
        Scored::Variant(v)
    }
}

impl std::fmt::Display for Scored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scored::Source => f.write_str("source"),
            Scored::Variant(v) => v.fmt(f),
        }
    }
}

/// Quality of one precision on a text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// What was scored (in JSON: `source` or a [`Variant::code`]).
    pub precision: Scored,
    pub ppl: f64,
    /// Mean over positions of KL(P_fp16 ‖ P_this), in nats (0 for FP16 itself; None for source).
    pub kl_vs_fp16: Option<f64>,
    /// Fraction of positions whose argmax is FP16's.
    pub top1_vs_fp16: Option<f64>,
    pub tokens_per_second: f64,
    /// Weight bytes on the GPU (None for source).
    pub weight_bytes: Option<u64>,
    /// KV cache bytes per token (None for source).
    pub kv_bytes_per_token: Option<u64>,
    /// How far this perplexity may sit from FP16's by chance on a text this short: two standard
    /// errors of the mean per-token difference in log-probability from FP16's, in nats. When
    /// `|ln(ppl / ppl_fp16)|` is below it the two precisions are not told apart by this text (0 for
    /// FP16 itself; None without FP16 to compare with).
    #[serde(default)]
    pub noise_vs_fp16: Option<f64>,
    /// `log p(next token)` at each position, for [`with_noise`].
    #[serde(skip)]
    pub logprobs: Vec<f32>,
}

impl Quality {
    /// Whether this perplexity differs from `fp16_ppl` by less than the run's noise.
    pub fn within_noise_of(&self, fp16_ppl: f64) -> bool {
        self.noise_vs_fp16.is_some_and(|n| (self.ppl / fp16_ppl).ln().abs() <= n)
    }
}

/// Two standard errors of the mean of `a[i] − b[i]` (paired: the same token scored twice), in the
/// units of `a` and `b`. 0 for fewer than two pairs.
pub fn paired_noise(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len());
    if n < 2 {
        return 0.0;
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(&x, &y)| x as f64 - y as f64).collect();
    let mean = d.iter().sum::<f64>() / n as f64;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    2.0 * (var / n as f64).sqrt()
}

/// Fill in every row's [`Quality::noise_vs_fp16`] against the `fp16` row's log-probabilities.
pub fn with_noise(mut rows: Vec<Quality>) -> Vec<Quality> {
    let reference = rows.iter().find(|r| r.precision == Scored::REFERENCE).map(|r| r.logprobs.clone());
    if let Some(reference) = reference {
        for r in &mut rows {
            r.noise_vs_fp16 = Some(paired_noise(&r.logprobs, &reference));
        }
    }
    rows
}

/// KL(P ‖ Q) in nats from log-probabilities.
pub fn kl_divergence(log_p: &[f32], log_q: &[f32]) -> f64 {
    log_p.iter().zip(log_q).map(|(&p, &q)| (p as f64).exp() * (p as f64 - q as f64)).sum()
}

/// Score `tokens` at each plan (FP16 first) on one GPU model (requantized in place between
/// them), and at the source precision on the CPU when `with_source`.
/// `calib`: the calibration activations, where a plan's method needs them.
pub async fn compare(
    gpu: &Gpu,
    g: &Gguf<'_>,
    tokens: &[u32],
    chunk: usize,
    with_source: bool,
    plans: &[Variant],
    calib: Option<std::sync::Arc<crate::method::Calibration>>,
) -> Result<Vec<Quality>> {
    let cfg = Config::from_gguf(g)?;
    let mut out = Vec::new();
    if with_source {
        let mut cpu = CpuBackend::load(g)?;
        let r = perplexity(&cfg, &mut cpu, tokens, chunk).await?;
        out.push(Quality {
            precision: Scored::Source,
            ppl: r.ppl,
            kl_vs_fp16: None,
            top1_vs_fp16: None,
            tokens_per_second: r.tokens_per_second,
            weight_bytes: None,
            kv_bytes_per_token: None,
            noise_vs_fp16: None,
            logprobs: r.target_logprob,
        });
    }
    let mut b = GpuBackend::load_calibrated(gpu, g, Precision::Fp16, tokens.len(), calib)?;
    out.extend(compare_on(&mut b, g, tokens, chunk, plans, |_| true).await?);
    Ok(with_noise(out))
}

/// FP16, INT8 and INT4 everywhere (f32 KV cache).
pub fn uniform_plans() -> Vec<Variant> {
    Precision::COMMON.map(Variant::from).to_vec()
}

/// Score `tokens` at each plan on a loaded backend, requantizing it in place (`on_plan` is told
/// each one as it starts; false stops the run with [`crate::Error::Cancelled`]). FP16 with an f32 KV cache is the reference, so it is scored first
/// (added when `plans` lacks it). The KV cache is overwritten and the backend is left at the
/// last variant.
pub async fn compare_on(
    b: &mut GpuBackend,
    g: &Gguf<'_>,
    tokens: &[u32],
    chunk: usize,
    plans: &[Variant],
    mut on_plan: impl FnMut(Variant) -> bool,
) -> Result<Vec<Quality>> {
    let cfg = b.cfg.clone();
    let mut out = Vec::new();
    let fp16 = Variant::REFERENCE;
    let mut order = vec![fp16];
    order.extend(plans.iter().filter(|&&p| p != fp16));
    // FP16's next-token distribution at every position: the reference.
    let mut reference: Vec<(Vec<f32>, usize)> = Vec::new();
    for p in order {
        if !on_plan(p) {
            return Err(crate::Error::Cancelled);
        }
        b.set_precision(g, p.plan)?;
        b.set_kv(g, p.kv)?;
        b.set_activations(p.act).await?;
        let (mut lp, mut kl, mut same) = (Vec::new(), 0f64, 0usize);
        let secs = score(&cfg, b, tokens, chunk, |i, row| {
            let ls = log_softmax(row);
            lp.push(ls[tokens[i + 1] as usize]);
            let top = argmax(row);
            if p == fp16 {
                reference.push((ls, top));
            } else {
                let (ref_lp, ref_top) = &reference[i];
                kl += kl_divergence(ref_lp, &ls);
                same += (top == *ref_top) as usize;
            }
        })
        .await?;
        let n = lp.len().max(1) as f64;
        let (kl, top1) = if p == fp16 { (0.0, 1.0) } else { (kl / n, same as f64 / n) };
        out.push(Quality {
            precision: Scored::Variant(p),
            ppl: perplexity_of(&lp),
            kl_vs_fp16: Some(kl),
            top1_vs_fp16: Some(top1),
            tokens_per_second: tokens.len() as f64 / secs.max(1e-9),
            weight_bytes: Some(b.weight_bytes()),
            kv_bytes_per_token: Some(b.kv_bytes_per_token()),
            noise_vs_fp16: None,
            logprobs: lp,
        });
    }
    Ok(with_noise(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_noise_is_two_standard_errors_of_the_difference() {
        // Differences 1, -1, 1, -1: mean 0, sample variance 4/3, se = sqrt(4/3 / 4).
        let a = [0.0f32, -2.0, 0.0, -2.0];
        let b = [-1.0f32, -1.0, -1.0, -1.0];
        assert!((paired_noise(&a, &b) - 2.0 * (1.0f64 / 3.0).sqrt()).abs() < 1e-9);
        // A constant shift is a difference, not noise.
        assert_eq!(paired_noise(&[-1.5, -2.5, -0.5], &[-1.0, -2.0, 0.0]), 0.0);
        assert_eq!(paired_noise(&[1.0], &[2.0]), 0.0);
        let row = |p: &str, lp: Vec<f32>| Quality {
            precision: Scored::try_from(p.to_string()).unwrap(),
            ppl: perplexity_of(&lp),
            kl_vs_fp16: None,
            top1_vs_fp16: None,
            tokens_per_second: 1.0,
            weight_bytes: None,
            kv_bytes_per_token: None,
            noise_vs_fp16: None,
            logprobs: lp,
        };
        let rows = with_noise(vec![row("fp16", vec![-1.0, -3.0, -2.0, -2.0]), row("int8", vec![-0.9, -3.2, -1.9, -1.9]), row("int4", vec![-2.0, -4.0, -3.0, -3.0])]);
        assert_eq!(rows[0].noise_vs_fp16, Some(0.0));
        // INT8 is 0.025 nats better on average, well inside its noise; INT4 a whole nat worse, every token.
        assert!(rows[1].within_noise_of(rows[0].ppl) && rows[1].ppl < rows[0].ppl);
        assert!(!rows[2].within_noise_of(rows[0].ppl));
    }

    #[test]
    fn scored_rows_are_their_codes_in_json() {
        for code in ["source", "fp16", "int4", "fp16-int4-int8", "fp16+kv-int8"] {
            let s = Scored::try_from(code.to_string()).unwrap();
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{code}\""));
            assert_eq!(serde_json::from_str::<Scored>(&format!("\"{code}\"")).unwrap(), s);
        }
        assert!(serde_json::from_str::<Scored>("\"int5\"").is_err());
        assert_eq!(Scored::REFERENCE.variant(), Some(Variant::REFERENCE));
    }

    #[test]
    fn kl_is_zero_for_equal_and_positive_otherwise() {
        let p = log_softmax(&[1.0, 2.0, 3.0]);
        assert!(kl_divergence(&p, &p).abs() < 1e-12);
        let q = log_softmax(&[3.0, 2.0, 1.0]);
        let kl = kl_divergence(&p, &q);
        // By hand: p = softmax(1,2,3) = (.0900, .2447, .6652); log p − log q = (−2, 0, 2).
        assert!((kl - (0.0900306 * -2.0 + 0.6652410 * 2.0)).abs() < 1e-5, "{kl}");
        let s: f64 = p.iter().map(|&v| (v as f64).exp()).sum();
        assert!((s - 1.0).abs() < 1e-6);
    }
}
