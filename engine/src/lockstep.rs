//! Lock-step comparison: one prompt and seed run at several precisions side by side, one token
//! position at a time, each lane with its own weights (shared with the session's where the
//! precision is the same) and its own KV cache. Lane 0 is FP16, the reference.
//!
//! Two modes:
//! - [`Mode::SameContext`]: every lane reads FP16's text so far, so each position asks every
//!   precision the same question. A lane's token is what *it* would write next; its KL
//!   divergence from FP16's next-token distribution is defined at every position.
//! - [`Mode::Free`]: every lane continues its own text, as a chat reply would. KL and agreement
//!   are measured while a lane's text is still FP16's; after its first divergence the two
//!   models read different texts and there is nothing to compare position by position.

use serde::{Deserialize, Serialize};

use crate::chat::Message;
use crate::model::gpu::{GpuBackend, Requantizer};
use crate::model::{forward, log_softmax, Backend};
use crate::plan::Variant;
use crate::quality::kl_divergence;
use crate::sampler::{Sampler, SamplerConfig};
use crate::session::Session;
use crate::util::now_ms;
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Every lane reads FP16's text (teacher-forced on the reference).
    #[default]
    SameContext,
    /// Every lane writes its own text.
    Free,
}

impl Mode {
    pub fn code(self) -> &'static str {
        match self {
            Mode::SameContext => "same",
            Mode::Free => "free",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "same" => Some(Mode::SameContext),
            "free" => Some(Mode::Free),
            _ => None,
        }
    }
}

/// What to compare: everything a shared link carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareSettings {
    pub prompt: String,
    /// Wrap the prompt in the model's chat template as a user turn (after `system`, if any).
    pub chat: bool,
    pub system: String,
    pub sampling: SamplerConfig,
    pub max_tokens: usize,
    /// The lanes after the reference (FP16 weights, f32 KV cache: always lane 0, added when
    /// missing).
    pub lanes: Vec<Variant>,
    pub mode: Mode,
}

/// One lane at one position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LaneStep {
    pub token: u32,
    /// The token's text (lossy for a token that is part of a multi-byte character).
    pub text: String,
    /// The token is FP16's at this position.
    pub same_as_fp16: bool,
    /// KL(P_fp16 ‖ P_lane) at this position, when both read the same text.
    pub kl: Option<f64>,
    /// Positions so far whose top-1 token is FP16's, as a fraction of those compared.
    pub top1_so_far: Option<f64>,
    /// The lane stopped (end of turn) at or before this position.
    pub stopped: bool,
}

/// Every lane at one generated position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareStep {
    pub position: usize,
    pub lanes: Vec<LaneStep>,
}

/// A lane's totals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LaneSummary {
    pub variant: Variant,
    pub tokens: usize,
    pub text: String,
    pub prefill_tokens_per_second: f64,
    pub decode_tokens_per_second: f64,
    pub weight_bytes: u64,
    /// Bytes a decode step reads: every weight matrix once (the embedding table as the output
    /// head, or one row of it), the norms, and the keys and values so far.
    pub bytes_per_token: u64,
    /// KV cache bytes per token of context.
    pub kv_bytes_per_token: u64,
    /// Mean KL(P_fp16 ‖ P_lane) over the positions compared (0 for FP16).
    pub mean_kl: f64,
    /// Fraction of compared positions whose top-1 token is FP16's.
    pub top1_agreement: f64,
    pub compared_positions: usize,
    /// The first position whose token is not FP16's (None: none).
    pub first_divergence: Option<usize>,
}

struct Lane {
    variant: Variant,
    backend: GpuBackend,
    sampler: Sampler,
    /// Prompt and generated tokens this lane has read or will read next.
    history: Vec<u32>,
    logits: Vec<f32>,
    tokens: Vec<u32>,
    /// Positions this lane has picked a token at.
    steps: usize,
    stopped: bool,
    kl_sum: f64,
    agree: usize,
    compared: usize,
    first_divergence: Option<usize>,
    prefill_ms: f64,
    decode_ms: f64,
    decoded: usize,
}

/// A running comparison (see the module docs). Drive it with [`LockStep::prefill`] and
/// [`LockStep::step`] until `step` returns `None`.
pub struct LockStep<'s> {
    session: &'s Session,
    lanes: Vec<Lane>,
    pub settings: CompareSettings,
    pub prompt_tokens: usize,
    prompt: Vec<u32>,
    position: usize,
}

impl<'s> LockStep<'s> {
    /// Lanes for FP16 and `settings.lanes` over the session's model, all made at once (see
    /// [`LockStep::start`] and [`LockStep::prepare_next`] to make them one at a time).
    pub fn new(session: &'s Session, settings: CompareSettings) -> Result<Self> {
        let mut ls = Self::start(session, settings)?;
        while ls.prepare_next()?.is_some() {}
        Ok(ls)
    }

    /// A comparison with its prompt read and checked but no lane made yet: call
    /// [`LockStep::prepare_next`] until it returns `None` before [`LockStep::prefill`].
    pub fn start(session: &'s Session, mut settings: CompareSettings) -> Result<Self> {
        let mut lanes = vec![Variant::REFERENCE];
        for v in &settings.lanes {
            if !lanes.contains(v) {
                lanes.push(*v);
            }
        }
        settings.lanes = lanes.clone();
        let prompt = if settings.chat {
            let mut msgs = vec![];
            if !settings.system.trim().is_empty() {
                msgs.push(Message::new("system", settings.system.trim()));
            }
            msgs.push(Message::new("user", &settings.prompt));
            session.prompt(&msgs)?
        } else {
            session.tok.encode_with_bos(&settings.prompt, false)
        };
        if prompt.is_empty() || settings.prompt.trim().is_empty() {
            return Err(Error::Usage("the prompt is empty".into()));
        }
        let n_ctx = prompt.len() + settings.max_tokens.max(1);
        if n_ctx > session.cfg.context_length {
            return Err(Error::ContextFull { needed: n_ctx, size: session.cfg.context_length });
        }
        for v in &lanes {
            session.info.check_fit(&session.gpu().info, &v.plan)?;
        }
        Ok(LockStep { session, lanes: vec![], prompt_tokens: prompt.len(), prompt, settings, position: 0 })
    }

    /// How many lanes are made, of how many.
    pub fn prepared(&self) -> (usize, usize) {
        (self.lanes.len(), self.settings.lanes.len())
    }

    /// Make the next lane (its weights requantized, unless at the session's precision, and a KV
    /// cache just long enough): its variant, or `None` once every lane is made.
    pub fn prepare_next(&mut self) -> Result<Option<Variant>> {
        let Some(&variant) = self.settings.lanes.get(self.lanes.len()) else { return Ok(None) };
        let session = self.session;
        let g = session.gguf()?;
        let gpu = session.gpu();
        let calib = session.calibration().cloned();
        let w = Requantizer::new(&session.cfg, &g, variant.plan)?.reusing(&session.weights()).calibrated(calib).run(gpu, session.bytes())?;
        let mut backend = GpuBackend::with_weights(gpu, &g, w, self.prompt.len() + self.settings.max_tokens.max(1))?;
        // The session's mean keys where it has measured them: the lanes' 4- and 3-bit caches then
        // subtract the same means as the chat's, and none measures its own.
        if let Some(means) = session.key_stats() {
            backend.share_key_stats(means)?;
        }
        backend.set_kv(&g, variant.kv)?;
        // The integer matvec form the device has chosen (measured where the session or the
        // caller switched to 8-bit activations first: `Gpu::choose_int_dot`).
        backend.activations = variant.act;
        self.lanes.push(Lane {
            variant,
            backend,
            sampler: Sampler::new(self.settings.sampling.clone()),
            history: self.prompt.clone(),
            logits: vec![],
            tokens: vec![],
            steps: 0,
            stopped: false,
            kl_sum: 0.0,
            agree: 0,
            compared: 0,
            first_divergence: None,
            prefill_ms: 0.0,
            decode_ms: 0.0,
            decoded: 0,
        });
        Ok(Some(variant))
    }

    /// The lanes' variants, the reference first.
    pub fn variants(&self) -> Vec<Variant> {
        self.lanes.iter().map(|l| l.variant).collect()
    }

    pub fn weight_bytes(&self) -> Vec<u64> {
        self.lanes.iter().map(|l| l.backend.weight_bytes()).collect()
    }

    /// Read the prompt in every lane.
    pub async fn prefill(&mut self) -> Result<()> {
        let cfg = self.session.cfg.clone();
        for lane in &mut self.lanes {
            let t0 = now_ms();
            let l = forward(&cfg, &mut lane.backend, &self.prompt, 0, false)?;
            lane.logits = lane.backend.read(&l).await?;
            lane.prefill_ms = now_ms() - t0;
        }
        Ok(())
    }

    /// Pick the next token in every lane, compare it with FP16's, and feed the lanes. `None`
    /// once FP16 (and, in free mode, every lane) has stopped or `max_tokens` are written.
    pub async fn step(&mut self) -> Result<Option<CompareStep>> {
        let tok = &self.session.tok;
        let free = self.settings.mode == Mode::Free;
        let max = self.settings.max_tokens;
        let done = |l: &Lane| l.stopped || l.steps >= max;
        let finished = if free { self.lanes.iter().all(done) } else { done(&self.lanes[0]) };
        if finished || self.lanes[0].logits.is_empty() {
            return Ok(None);
        }
        let position = self.position;
        // Every lane's pick and next-token distribution at this position.
        let mut picks = Vec::with_capacity(self.lanes.len());
        for lane in &mut self.lanes {
            if done(lane) {
                picks.push(None);
                continue;
            }
            lane.steps += 1;
            let id = lane.sampler.sample(&lane.logits, &lane.history);
            picks.push(Some((id, log_softmax(&lane.logits))));
        }
        let reference = picks[0].clone();
        let ref_history = self.lanes[0].history.clone();
        let ref_stops = reference.as_ref().is_none_or(|r| tok.is_stop(r.0));
        let mut out = Vec::with_capacity(self.lanes.len());
        for (lane, pick) in self.lanes.iter_mut().zip(&picks) {
            let Some((id, ls)) = pick else {
                out.push(LaneStep { token: 0, text: String::new(), same_as_fp16: false, kl: None, top1_so_far: None, stopped: true });
                continue;
            };
            // Comparable while this lane has read the same text as FP16.
            let (same, kl) = match reference.as_ref().filter(|_| !free || lane.history == ref_history) {
                Some((ref_id, ref_ls)) => (ref_id == id, Some(kl_divergence(ref_ls, ls).max(0.0))),
                None => (false, None),
            };
            if let Some(k) = kl {
                lane.kl_sum += k;
                lane.compared += 1;
                lane.agree += same as usize;
            }
            if !same && lane.first_divergence.is_none() {
                lane.first_divergence = Some(position);
            }
            let stop = tok.is_stop(*id);
            if !stop {
                lane.tokens.push(*id);
            }
            // FP16 decides when every lane stops, except in free mode.
            lane.stopped = if free { stop } else { ref_stops };
            out.push(LaneStep {
                token: *id,
                text: if stop { String::new() } else { String::from_utf8_lossy(&tok.token_bytes(*id)).into_owned() },
                same_as_fp16: same,
                kl,
                top1_so_far: (lane.compared > 0).then(|| lane.agree as f64 / lane.compared as f64),
                stopped: stop,
            });
        }
        // Feed each lane the token it reads next: FP16's (same context) or its own (free).
        let cfg = self.session.cfg.clone();
        for (lane, pick) in self.lanes.iter_mut().zip(&picks) {
            let Some((own, _)) = pick else { continue };
            let next = if free { *own } else { reference.as_ref().map_or(*own, |r| r.0) };
            if done(lane) {
                continue;
            }
            let t0 = now_ms();
            let pos = lane.history.len();
            lane.history.push(next);
            let l = forward(&cfg, &mut lane.backend, &[next], pos, false)?;
            lane.logits = lane.backend.read(&l).await?;
            lane.decode_ms += now_ms() - t0;
            lane.decoded += 1;
        }
        self.position += 1;
        Ok(Some(CompareStep { position, lanes: out }))
    }

    /// Every lane's totals so far.
    pub fn summaries(&self) -> Vec<LaneSummary> {
        let tok = &self.session.tok;
        self.lanes
            .iter()
            .map(|l| {
                let mid = self.prompt.len() + l.tokens.len() / 2;
                LaneSummary {
                    variant: l.variant,
                    tokens: l.tokens.len(),
                    text: tok.decode(&l.tokens),
                    prefill_tokens_per_second: self.prompt.len() as f64 / (l.prefill_ms / 1e3).max(1e-9),
                    decode_tokens_per_second: l.decoded as f64 / (l.decode_ms / 1e3).max(1e-9),
                    weight_bytes: l.backend.weight_bytes(),
                    bytes_per_token: l.backend.bytes_per_token(mid),
                    kv_bytes_per_token: l.backend.kv_bytes_per_token(),
                    mean_kl: if l.compared > 0 { l.kl_sum / l.compared as f64 } else { 0.0 },
                    top1_agreement: if l.compared > 0 { l.agree as f64 / l.compared as f64 } else { 0.0 },
                    compared_positions: l.compared,
                    first_divergence: l.first_divergence,
                }
            })
            .collect()
    }
}
