//! A loaded model ready to chat: the GGUF bytes, tokenizer, chat template and GPU backend, plus
//! the tokens whose keys and values are in the KV cache, so a multi-turn conversation only
//! prefills what is new. This is what the page's worker holds; the CLI uses the same pieces.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::chat::{ChatTemplate, Message};
use crate::gguf::Gguf;
use crate::gpu::Gpu;
use crate::info::{tokenizer_and_template, ModelInfo};
use crate::method::calibration::Calibrator;
use crate::method::Calibration;
use crate::model::gpu::{GpuBackend, Requantizer};
use crate::model::{self, Backend, Config, Generation, Prefill, Step};
use crate::plan::Plan;
use crate::sampler::{Sampler, SamplerConfig};
use crate::tokenizer::Tokenizer;
use crate::{Error, Result};

/// A reply reads its prompt in slices of about this long, so Stop answers within about this
/// much (plus the first slice, [`model::FIRST_SLICE`] tokens) even on a software GPU.
pub const PREFILL_SLICE_MS: f64 = 250.0;

/// Statistics of one reply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplyStats {
    pub plan: Option<Plan>,
    pub prompt_tokens: usize,
    /// Prompt tokens whose keys and values were already in the cache (not prefilled again).
    pub reused_tokens: usize,
    pub prefill_tokens: usize,
    pub generated_tokens: usize,
    pub prefill_tokens_per_second: f64,
    pub decode_tokens_per_second: f64,
    pub time_to_first_token_ms: f64,
    /// Tokens in the KV cache after the reply, and its room.
    pub context_used: usize,
    pub context_size: usize,
    /// Ended at an end-of-turn or end-of-text token (false: max tokens or stopped).
    pub end_of_turn: bool,
    /// The oldest messages after the system prompt that the model did not read: the
    /// conversation outgrew the context ([`Session::fit_context`]).
    #[serde(default)]
    pub dropped_messages: usize,
}

/// A stage of loading a model (see [`Loader`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Download,
    Parse,
    Requantize,
    Upload,
    Compile,
    /// A calibration text through the model at source precision (for the calibrated methods);
    /// units are tokens.
    Calibrate,
}

impl Stage {
    pub const ALL: [Stage; 6] = [Stage::Download, Stage::Parse, Stage::Requantize, Stage::Upload, Stage::Compile, Stage::Calibrate];
    pub fn label(self) -> &'static str {
        match self {
            Stage::Download => "download",
            Stage::Parse => "parse",
            Stage::Requantize => "requantize",
            Stage::Upload => "GPU upload",
            Stage::Compile => "shader compile",
            Stage::Calibrate => "calibration",
        }
    }
}

/// Progress of one stage: `done` of `total` units (bytes, or kernels for `Compile`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub stage: Stage,
    pub done: u64,
    pub total: u64,
}

/// Where a measurement is: `done` of `total` steps, `what` the step starting now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunStep {
    pub done: usize,
    pub total: usize,
    pub what: String,
    /// After how many steps the pace so far says how long the rest takes (steps of unequal length
    /// repeat with this period: a benchmark's round of every precision); 0 or 1: after the first.
    #[serde(default)]
    pub settle: usize,
}

/// A model loaded on the GPU, with its conversation state.
pub struct Session {
    bytes: Vec<u8>,
    pub cfg: Config,
    pub info: ModelInfo,
    pub tok: Tokenizer,
    template: ChatTemplate,
    backend: GpuBackend,
    /// Tokens whose keys and values are in the KV cache, from position 0.
    cached: Vec<u32>,
    /// The copy kernel's GB/s on this GPU, measured once ([`Session::roofline`]).
    roofline: Option<f64>,
}

/// Loads a [`Session`] a step at a time, so the caller can show progress and cancel.
pub struct Loader {
    gpu: Gpu,
    bytes: Vec<u8>,
    cfg: Config,
    tok: Tokenizer,
    template: ChatTemplate,
    info: ModelInfo,
    n_ctx: usize,
    rq: Requantizer,
    calibration: Option<Arc<Calibration>>,
}

impl Loader {
    /// Parse the file (header, tokenizer, template) and check it fits the adapter at `plan`
    /// (`None`: the file's [`ModelInfo::suggested_plan`]).
    pub fn new(gpu: &Gpu, bytes: Vec<u8>, plan: Option<Plan>, n_ctx: usize) -> Result<Self> {
        let g = Gguf::parse(&bytes)?;
        let (cfg, tok) = (Config::from_gguf(&g), tokenizer_and_template(&g));
        let info = ModelInfo::from_parts(&g, bytes.len() as u64, &cfg, &tok);
        // The vocabulary first, as the CLI reads it: an empty or inconsistent one is the cause
        // of the embedding's shape disagreeing with the metadata, not the other way round.
        let (tok, template) = tok?;
        let cfg = cfg?;
        let plan = plan.unwrap_or_else(|| info.suggested_plan().0);
        info.check_fit(&gpu.info, &plan)?;
        let rq = Requantizer::new(&cfg, &g, plan)?;
        drop(g);
        Ok(Loader { gpu: gpu.clone(), bytes, cfg, tok, template, info, n_ctx, rq, calibration: None })
    }

    /// Whether the plan's method needs a calibration ([`Loader::calibrator`]) before the steps.
    pub fn needs_calibration(&self) -> bool {
        self.rq.needs_calibration()
    }

    /// A calibrator on the built-in text (see [`Session::calibrator`]).
    pub fn calibrator(&self, tokens: usize) -> Result<Calibrator> {
        let toks = crate::method::calibration::text_tokens(&self.tok, crate::method::calibration::TEXT, tokens.max(1));
        Calibrator::new(&Gguf::parse(&self.bytes)?, toks)
    }

    pub fn set_calibration(&mut self, c: Calibration) {
        let c = Arc::new(c);
        self.rq.set_calibration(Some(c.clone()));
        self.calibration = Some(c);
    }

    /// The model file.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The plan the weights are being loaded at.
    pub fn plan(&self) -> Plan {
        self.rq.plan
    }

    pub fn progress(&self) -> [Progress; 2] {
        let rq = &self.rq;
        let upload_total = self.info.weight_bytes_of(&rq.plan);
        [
            Progress { stage: Stage::Requantize, done: rq.source_bytes_done, total: rq.source_bytes_total },
            Progress { stage: Stage::Upload, done: rq.uploaded_bytes, total: upload_total.max(rq.uploaded_bytes) },
        ]
    }

    /// Requantize and upload one tensor; false when all are done.
    pub fn step(&mut self) -> Result<bool> {
        self.rq.step(&self.gpu, &self.bytes)
    }

    /// Build the session (norms, KV cache, tokenizer) once every step is done.
    pub fn finish(self) -> Result<Session> {
        let g = Gguf::parse(&self.bytes)?;
        let weights = self.rq.finish()?;
        let mut backend = GpuBackend::with_weights(&self.gpu, &g, weights, self.n_ctx)?;
        backend.set_calibration(self.calibration);
        drop(g);
        Ok(Session { bytes: self.bytes, cfg: self.cfg, info: self.info, tok: self.tok, template: self.template, backend, cached: vec![], roofline: None })
    }
}

/// Switches a [`Session`]'s weights to another precision a step at a time.
pub struct Switch(Requantizer);

impl Switch {
    pub fn progress(&self) -> Progress {
        Progress { stage: Stage::Requantize, done: self.0.source_bytes_done, total: self.0.source_bytes_total }
    }
}

impl Session {
    /// Load at once (no progress): the CLI and tests.
    pub fn load(gpu: &Gpu, bytes: Vec<u8>, plan: impl Into<Plan>, n_ctx: usize) -> Result<Self> {
        let mut l = Loader::new(gpu, bytes, Some(plan.into()), n_ctx)?;
        while l.step()? {}
        l.finish()
    }

    /// The model file.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The weights on the GPU (shared buffers).
    pub fn weights(&self) -> crate::model::gpu::GpuWeights {
        self.backend.weights()
    }

    pub fn gguf(&self) -> Result<Gguf<'_>> {
        Gguf::parse(&self.bytes)
    }

    pub fn plan(&self) -> Plan {
        self.backend.plan
    }

    /// How the KV cache stores keys and values.
    pub fn kv(&self) -> crate::KvPrecision {
        self.backend.kv
    }

    /// The mean keys the session's 4- and 3-bit caches subtract, once measured
    /// ([`GpuBackend::key_stats`]).
    pub fn key_stats(&self) -> Option<crate::gpu::Buffer> {
        self.backend.key_stats()
    }

    /// The format of the activations the INT8 and INT4 matrices multiply.
    pub fn activations(&self) -> crate::Activations {
        self.backend.activations
    }

    /// Multiply 8-bit activations (or f32 ones) from the next token on; the conversation's cache
    /// is kept, as a precision switch keeps it.
    pub async fn set_activations(&mut self, a: crate::Activations) -> Result<()> {
        self.backend.set_activations(a).await
    }

    /// Store the KV cache as `kv`. The cache is made anew, so the next reply prefills the whole
    /// conversation again.
    pub fn set_kv(&mut self, kv: crate::KvPrecision) -> Result<()> {
        if kv == self.backend.kv {
            return Ok(());
        }
        self.cached.clear();
        let g = Gguf::parse(&self.bytes)?;
        self.backend.set_kv(&g, kv)
    }

    /// The device the model is on.
    /// The model file, giving the session up (to load it again on a new device after a loss).
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn gpu(&self) -> &Gpu {
        &self.backend.gpu
    }

    pub fn weight_bytes(&self) -> u64 {
        self.backend.weight_bytes()
    }

    pub fn kv_bytes(&self) -> u64 {
        self.backend.kv_bytes()
    }

    pub fn context_size(&self) -> usize {
        self.backend.n_ctx
    }

    /// Tokens whose keys and values are in the cache.
    pub fn context_used(&self) -> usize {
        self.cached.len()
    }

    pub fn kernels(&self) -> Vec<crate::gpu::Kernel> {
        self.backend.kernels()
    }

    /// Start switching to `plan` (step it, then [`Session::finish_switch`]). The KV cache is
    /// kept; matrices whose precision does not change are kept too. A calibrated method needs
    /// [`Session::calibration`] first.
    pub fn begin_switch(&self, plan: Plan) -> Result<Switch> {
        self.info.check_fit(&self.backend.gpu.info, &plan)?;
        let calib = self.backend.calibration().cloned();
        Ok(Switch(Requantizer::new(&self.cfg, &self.gguf()?, plan)?.reusing(&self.backend.weights()).calibrated(calib)))
    }

    /// Whether switching to `plan` needs a calibration first ([`Session::calibrator`]): its method
    /// is a calibrated one, none was made yet, and some tensor is requantized, not kept as stored.
    pub fn needs_calibration(&self, plan: Plan) -> Result<bool> {
        Ok(self.calibration().is_none() && self.begin_switch(plan)?.0.needs_calibration())
    }

    /// The calibration activations the calibrated methods use, once made.
    pub fn calibration(&self) -> Option<&Arc<Calibration>> {
        self.backend.calibration()
    }

    /// Start calibrating on `text` (the built-in calibration text when `None`), its first
    /// `tokens` tokens: step the [`Calibrator`], then [`Session::set_calibration`].
    pub fn calibrator(&self, text: Option<&str>, tokens: usize) -> Result<Calibrator> {
        let toks = crate::method::calibration::text_tokens(&self.tok, text.unwrap_or(crate::method::calibration::TEXT), tokens.max(1));
        Calibrator::new(&self.gguf()?, toks)
    }

    pub fn set_calibration(&mut self, c: Calibration) {
        self.backend.set_calibration(Some(Arc::new(c)));
    }

    pub fn step_switch(&self, s: &mut Switch) -> Result<bool> {
        s.0.step(&self.backend.gpu, &self.bytes)
    }

    pub fn finish_switch(&mut self, s: Switch) -> Result<()> {
        let w = s.0.finish()?;
        self.backend.set_weights(w);
        Ok(())
    }

    /// Switch at once.
    pub fn set_precision(&mut self, plan: impl Into<Plan>) -> Result<()> {
        let mut s = self.begin_switch(plan.into())?;
        while self.step_switch(&mut s)? {}
        self.finish_switch(s)
    }

    /// Make the KV cache hold `n_ctx` tokens (at most the model's context length); the
    /// conversation's cached tokens are kept as far as they fit.
    pub fn set_context(&mut self, n_ctx: usize) -> Result<()> {
        let kept = self.backend.set_context(n_ctx, self.cached.len());
        match kept {
            Ok(n) => self.cached.truncate(n),
            // The backend went back to its previous size with the cache restored, unless even
            // that failed (then it has no cache: the error says so, and the session must not
            // be used for a reply).
            Err(Error::TooLarge { .. }) => {}
            Err(_) => self.cached.clear(),
        }
        kept.map(|_| ())
    }

    /// Forget the conversation (the cache is overwritten from position 0 by the next prompt).
    pub fn reset(&mut self) {
        self.cached.clear();
    }

    /// The prompt tokens for `messages` (the model's chat template, assistant turn opened).
    pub fn prompt(&self, messages: &[Message]) -> Result<Vec<u32>> {
        let text = self.template.render(messages, true)?;
        Ok(self.tok.encode_with_bos(&text, true))
    }

    /// The prompt for `messages` with room left for a reply of `max_tokens` (at least a quarter
    /// of the context, or `max_tokens` if less): when the conversation is too long, the oldest
    /// turns after the system prompt are left out, a whole exchange at a time, so what the model
    /// reads still starts with a user message. Returns the prompt and how many messages were left
    /// out; [`Error::ContextFull`] when even the system prompt and the last message do not fit.
    pub fn fit_context(&self, messages: &[Message], max_tokens: usize) -> Result<(Vec<u32>, usize)> {
        let n_ctx = self.backend.n_ctx;
        let room = max_tokens.clamp(1, (n_ctx / 4).max(1));
        let system = usize::from(messages.first().is_some_and(|m| m.role == "system"));
        let mut dropped = 0;
        loop {
            let kept: Vec<Message> = messages[..system].iter().chain(&messages[system + dropped..]).cloned().collect();
            let prompt = self.prompt(&kept)?;
            if prompt.len() + room <= n_ctx {
                return Ok((prompt, dropped));
            }
            // Leave out the oldest message, and any replies after it, up to the next user message.
            let rest = &messages[system + dropped..];
            match rest.iter().skip(1).position(|m| m.role == "user") {
                Some(i) => dropped += i + 1,
                None if prompt.len() < n_ctx => return Ok((prompt, dropped)),
                None => return Err(Error::ContextFull { needed: prompt.len() + 1, size: n_ctx }),
            }
        }
    }

    /// Answer the last message of `messages`, streaming text and the prompt's reading through
    /// `on_step` (return false to stop, while the prompt is read too). Only the tokens that differ
    /// from what the KV cache already holds are prefilled: earlier turns of the same conversation
    /// are not computed again, nor the part of a prompt read before a stop.
    pub async fn reply(
        &mut self,
        messages: &[Message],
        sampling: &SamplerConfig,
        max_tokens: usize,
        on_step: impl FnMut(Step<'_>) -> bool,
    ) -> Result<(Generation, ReplyStats)> {
        let (prompt, dropped) = self.fit_context(messages, max_tokens)?;
        let n_ctx = self.backend.n_ctx;
        let max_tokens = max_tokens.min(n_ctx - prompt.len());
        // Reuse the longest cached prefix, but always prefill at least one token for logits.
        let reused = common_prefix(&self.cached, &prompt).min(prompt.len() - 1);
        self.cached.truncate(reused);
        let mut sampler = Sampler::new(sampling.clone());
        let plan = self.plan();
        let gen = model::generate(
            &self.cfg,
            &mut self.backend,
            &self.tok,
            &prompt[..reused],
            &prompt[reused..],
            max_tokens,
            &mut sampler,
            Prefill::Sliced { slice_ms: PREFILL_SLICE_MS },
            on_step,
        )
        .await;
        let gen = match gen {
            Ok(g) => g,
            Err(e) => {
                // What the cache holds is unknown after a failure: start over next time.
                self.cached.clear();
                return Err(e);
            }
        };
        // The generated tokens that were fed back are in the cache: all of them after an end of
        // turn (the last one produced the logits that chose the end), else all but the last.
        match gen.end_pos.checked_sub(prompt.len()) {
            Some(fed) => {
                self.cached = prompt.clone();
                self.cached.extend(&gen.ids[..fed]);
            }
            // Stopped while reading the prompt: what was read stays for the next reply.
            None => self.cached = prompt[..gen.end_pos].to_vec(),
        }
        let stats = ReplyStats {
            plan: Some(plan),
            prompt_tokens: prompt.len(),
            reused_tokens: reused,
            prefill_tokens: gen.prefill_tokens,
            generated_tokens: gen.ids.len(),
            prefill_tokens_per_second: gen.prefill_tokens_per_second,
            decode_tokens_per_second: gen.decode_tokens_per_second,
            time_to_first_token_ms: gen.time_to_first_token_ms,
            context_used: self.cached.len(),
            context_size: n_ctx,
            end_of_turn: gen.stopped,
            dropped_messages: dropped,
        };
        Ok((gen, stats))
    }
}

impl Session {
    /// Lend the GPU backend and the parsed file to a measurement that requantizes and overwrites
    /// the KV cache. The conversation's part of the cache is copied aside first; the plan, the KV
    /// format, the activations' format and that part are put back afterwards, whatever the measurement did, so the next
    /// reply reads only its own new tokens.
    async fn with_backend<T>(&mut self, f: impl AsyncFnOnce(&mut GpuBackend, &Gguf<'_>) -> Result<T>) -> Result<T> {
        let (was, kv, act) = (self.plan(), self.kv(), self.activations());
        let snapshot = self.backend.save_kv(self.cached.len());
        let g = Gguf::parse(&self.bytes)?;
        let r = f(&mut self.backend, &g).await;
        let mut restored = self.backend.set_precision(&g, was).and_then(|_| self.backend.set_kv(&g, kv));
        if restored.is_ok() {
            restored = self.backend.set_activations(act).await;
        }
        match (&restored, &snapshot) {
            // A cancelled run stopped between steps: the snapshot is as good as after a whole one.
            (Ok(()), Ok(s)) if r.is_ok() || matches!(r, Err(Error::Cancelled)) => {
                if self.backend.restore_kv(s).is_err() {
                    self.cached.clear();
                }
            }
            // After a failure, what the cache holds is unknown: the next reply starts over.
            _ => self.cached.clear(),
        }
        let r = r?;
        restored?;
        Ok(r)
    }

    /// Perplexity, KL vs FP16 and top-1 agreement of each precision on `text` (cut to
    /// `max_tokens` and to the context). Runs in the KV cache; the conversation's part of it, the
    /// precision and the KV format are restored afterwards.
    pub async fn quality(
        &mut self,
        text: &str,
        max_tokens: usize,
        plans: &[crate::plan::Variant],
        on_plan: impl FnMut(crate::plan::Variant) -> bool,
    ) -> Result<(usize, Vec<crate::quality::Quality>)> {
        let mut toks = self.tok.encode_with_bos(text, false);
        toks.truncate(max_tokens.min(self.backend.n_ctx));
        if toks.len() < 2 {
            return Err(Error::Usage("the text needs at least 2 tokens".into()));
        }
        let n = toks.len();
        let rows = self.with_backend(async |b, g| crate::quality::compare_on(b, g, &toks, n, plans, on_plan).await).await?;
        Ok((toks.len(), rows))
    }
}

impl Session {
    /// Time one decode step at the current plan (after the conversation, which it keeps): its
    /// wall time, every kernel's GPU time, and the copy bandwidth to compare its bytes with.
    pub async fn profile_decode(&mut self) -> Result<crate::bench::DecodeProfile> {
        let n_ctx = self.backend.n_ctx;
        // The step writes the cache slot after the conversation, which holds nothing yet.
        let pos = self.cached.len().min(n_ctx - 1);
        self.cached.truncate(pos);
        let token = self.cached.last().copied().unwrap_or(0);
        let cfg = self.cfg.clone();
        let mut wall = vec![];
        for _ in 0..3 {
            let t0 = crate::util::now_ms();
            let l = model::forward(&cfg, &mut self.backend, &[token], pos, false)?;
            self.backend.read(&l).await?;
            wall.push(crate::util::now_ms() - t0);
        }
        let t0 = crate::util::now_ms();
        let passes = self.backend.profile_step(token, pos).await?;
        let timed_wall_ms = passes.as_ref().map(|_| crate::util::now_ms() - t0);
        let kernels = passes.as_deref().map(crate::bench::by_kernel).unwrap_or_default();
        let bytes_per_token = self.backend.bytes_per_token(pos);
        let copy_gbps = self.roofline().await?;
        Ok(crate::bench::DecodeProfile {
            plan: self.plan(),
            kv: self.kv(),
            position: pos,
            gpu_ms: passes.map(|p| p.iter().map(|x| x.1).sum()),
            kernels,
            wall_ms: crate::util::median(&wall),
            timed_wall_ms,
            bytes_per_token,
            copy_gbps,
        })
    }
}

impl Session {
    /// The model benchmark ([`crate::bench::model_on`]) on the loaded model: prefill
    /// `prompt_tokens` and decode `decode_tokens` greedily at each precision. Uses the KV cache
    /// like [`Session::quality`] and restores it (the conversation's part), the precision and the
    /// KV format afterwards.
    /// `on_step` hears of each step and cancels the run by answering false.
    pub async fn bench(
        &mut self,
        name: &str,
        settings: &crate::bench::BenchSettings,
        on_step: impl FnMut(RunStep) -> bool,
    ) -> Result<crate::bench::ModelBench> {
        let prompt = crate::bench::bench_prompt(Some(&self.tok), self.cfg.vocab, settings.prompt_tokens);
        let copy = self.roofline().await?;
        self.with_backend(async |b, g| crate::bench::model_on(b, g, name, settings, prompt, copy, on_step).await).await
    }

    /// Decode speed at growing contexts per KV format at the current plan
    /// ([`crate::bench::context_sweep`]); the plan, the KV format and the conversation's part of
    /// the cache are restored afterwards.
    pub async fn context_sweep(
        &mut self,
        kvs: &[crate::KvPrecision],
        contexts: &[usize],
        decode_tokens: usize,
        on_step: impl FnMut(RunStep) -> bool,
    ) -> Result<crate::bench::ContextSweep> {
        // Checked before the cache is touched, so a refusal keeps the conversation.
        let unfit = crate::bench::sweep_unfit(kvs.len(), contexts, decode_tokens, self.backend.n_ctx);
        if let Some(why) = unfit.or_else(|| kvs.iter().find_map(|&kv| self.cfg.kv_unfit(kv))) {
            return Err(Error::Usage(why));
        }
        self.with_backend(async |b, g| crate::bench::context_sweep(b, g, kvs, contexts, decode_tokens, on_step).await).await
    }

    /// The copy kernel's GB/s on this GPU over as many bytes as an FP16 decode step of this
    /// model reads (within a binding and 64 MiB): measured on first use, then the same figure
    /// for every profile and benchmark of the session, so the speed tables share one roofline.
    pub async fn roofline(&mut self) -> Result<f64> {
        if let Some(r) = self.roofline {
            return Ok(r);
        }
        let gpu = &self.backend.gpu;
        let bytes = crate::bench::roofline_bytes(gpu, self.info.weight_bytes_at(crate::Precision::Fp16));
        let r = crate::bench::copy_bandwidth(gpu, bytes, 10).await?.0;
        self.roofline = Some(r);
        Ok(r)
    }
}

impl Session {
    /// Each layer's output error at `variants` vs FP16 on `text` (cut to `max_tokens`). Uses the
    /// KV cache like [`Session::quality`] and restores it (the conversation's part), the precision and
    /// the KV format afterwards.
    pub async fn layer_errors(
        &mut self,
        text: &str,
        max_tokens: usize,
        variants: &[crate::plan::Variant],
        on_variant: impl FnMut(crate::plan::Variant) -> bool,
    ) -> Result<crate::inspect::LayerErrors> {
        let mut toks = self.tok.encode_with_bos(text, false);
        toks.truncate(max_tokens.min(self.backend.n_ctx));
        if toks.is_empty() {
            return Err(Error::Usage("the text is empty".into()));
        }
        self.with_backend(async |b, g| crate::inspect::layer_errors(b, g, &toks, variants, on_variant).await).await
    }
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

