//! GPU backend: weights requantized on load from any source dtype to FP16, INT8 or INT4, the KV
//! cache on the GPU, and every op of a forward step recorded into one command encoder and one
//! compute pass, submitted once. [`GpuBackend::set_precision`] swaps the weights of a loaded model
//! in place and keeps the KV cache (the conversation).
//!
//! A decode step (one token) runs 7 dispatches a layer plus 3, over buffers allocated on the
//! first step and reused ([`RunState`], llama2.c's way) and bind groups built once and replayed
//! (a [`BindCache`]): after the first step a decode step creates no buffer and no bind group. What
//! changes per step (the position) is one `queue.write_buffer` into a uniform. Recording a layer
//! allocates no host memory either (tests/alloc.rs): the config is borrowed, matrix handles share
//! their parts, and a dispatch's bind group is found by a fixed-size key.
//!
//! Decode chains its steps ([`crate::model::decode`]): the pick (argmax or the sampler's draw)
//! writes the token into the step's ids buffer and into a token history on the GPU, so the next
//! step is recorded and submitted without waiting for the CPU to see the token; the CPU reads the
//! history back a batch at a time, one batch behind the GPU ([`CHAIN_AHEAD`] steps at most).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use super::{Backend, Config, Mat, Vector};
use crate::gguf::{Gguf, TensorInfo};
use crate::gpu::ops::{matmul_tiling, q8_rows_words, scores_len, BindCache, Recorder};
use crate::gpu::params::{Params, Step};
use crate::gpu::{Buffer, Fuse, Gpu, GpuMatrix, Kernel, PassTimer, Tiling};
use crate::method::Calibration;
use crate::plan::Plan;
use crate::{Activations, Error, KvPrecision, Precision, QuantMatrix, Result};

/// Activations `[m, width]` in a GPU buffer: the GPU backend's [`Backend::Act`].
pub struct GpuActivations {
    pub buf: Buffer,
    pub m: usize,
    pub width: usize,
}

/// A weight matrix as the GPU holds it: the attention's Q, K and V stacked into one matrix, and
/// the feed-forward's gate and up, so each is one matvec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    Embedding,
    Qkv(usize),
    O(usize),
    GateUp(usize),
    Down(usize),
    /// The output head when it is not the embedding.
    Output,
}

impl Unit {
    /// The unit a matrix of the model is part of.
    pub fn of(m: Mat) -> Unit {
        match m {
            Mat::Embedding => Unit::Embedding,
            Mat::Q(l) | Mat::K(l) | Mat::V(l) => Unit::Qkv(l),
            Mat::O(l) => Unit::O(l),
            Mat::Gate(l) | Mat::Up(l) => Unit::GateUp(l),
            Mat::Down(l) => Unit::Down(l),
            Mat::Output => Unit::Output,
        }
    }

    /// A matrix of the unit (for its precision in a plan).
    pub fn first(self) -> Mat {
        match self {
            Unit::Embedding => Mat::Embedding,
            Unit::Qkv(l) => Mat::Q(l),
            Unit::O(l) => Mat::O(l),
            Unit::GateUp(l) => Mat::Gate(l),
            Unit::Down(l) => Mat::Down(l),
            Unit::Output => Mat::Output,
        }
    }

    fn name(self) -> String {
        format!("{self:?}").to_lowercase()
    }

    /// The norm in front of the unit, which a method may fold scales into ([`crate::method::awq`]).
    fn norm(self) -> Option<Vector> {
        match self {
            Unit::Qkv(l) => Some(Vector::Attn(l)),
            Unit::GateUp(l) => Some(Vector::Ffn(l)),
            _ => None,
        }
    }
}

/// Dispatches a profiled step may time: WebGPU allows 4096 queries per set, two per dispatch.
const TIMED_DISPATCHES: u32 = 2000;

/// The most a prefill's attention scores take at once: longer prompts go through in query tiles.
const SCORES_TILE_BYTES: u64 = 32 << 20;


/// The weight matrices of a model at one plan of precisions, on the GPU.
#[derive(Clone)]
pub struct GpuWeights {
    pub plan: Plan,
    mats: HashMap<Unit, GpuMatrix>,
    /// Vectors the plan's method changed (AWQ's scales folded into norms), replacing the file's.
    vectors: HashMap<Vector, Buffer>,
}

impl GpuWeights {
    pub fn get(&self, u: Unit) -> Result<&GpuMatrix> {
        self.mats.get(&u).ok_or_else(|| Error::TensorNotFound(u.name()))
    }
}

/// Requantizes and uploads a model's weight matrices one tensor per [`Requantizer::step`], so a
/// caller can report progress and cancel between tensors (the page does, in its worker).
pub struct Requantizer {
    pub plan: Plan,
    /// `(matrix, tensor)` still to do, in load order ([`Config::matrices`]: the embedding first);
    /// the tensors of a [`Unit`] are consecutive.
    todo: std::collections::VecDeque<(Mat, TensorInfo)>,
    /// Units already on the GPU at the precision the plan wants (shared, not requantized).
    reuse: HashMap<Unit, GpuMatrix>,
    /// Requantized tensors of the unit being built.
    pending: Vec<QuantMatrix>,
    mats: HashMap<Unit, GpuMatrix>,
    vectors: HashMap<Vector, Buffer>,
    /// Makes each matrix (and the vectors a method changes) from the file.
    quantizer: crate::method::Quantizer,
    pub tensors_done: usize,
    pub tensors_total: usize,
    /// Bytes of the source tensors requantized so far, and in all.
    pub source_bytes_done: u64,
    pub source_bytes_total: u64,
    /// Bytes uploaded to the GPU so far (at `precision`).
    pub uploaded_bytes: u64,
    /// The calibration activations the plan's method reads, if it is a calibrated one.
    calibration: Option<Arc<Calibration>>,
}

impl Requantizer {
    pub fn new(cfg: &Config, g: &Gguf, plan: Plan) -> Result<Self> {
        let mut todo = std::collections::VecDeque::new();
        for m in cfg.matrices() {
            todo.push_back((m, g.tensor(&m.tensor_name(false))?.clone()));
        }
        let source_bytes_total = todo.iter().map(|t| t.1.n_bytes).sum();
        Ok(Requantizer {
            plan,
            tensors_total: todo.len(),
            todo,
            reuse: HashMap::new(),
            pending: vec![],
            mats: HashMap::new(),
            vectors: HashMap::new(),
            quantizer: crate::method::Quantizer::new(cfg, g, plan)?,
            tensors_done: 0,
            source_bytes_done: 0,
            source_bytes_total,
            uploaded_bytes: 0,
            calibration: None,
        })
    }

    /// Whether the plan's method needs calibration activations here: it is a calibrated one and
    /// some tensor left to do is requantized (not kept as stored).
    pub fn needs_calibration(&self) -> bool {
        self.plan.method.calibrated()
            && self.calibration.is_none()
            && self.todo.iter().any(|(m, t)| !self.reuse.contains_key(&Unit::of(*m)) && !QuantMatrix::keeps(t.ggml_type, t.matrix_shape().1, self.plan.of(*m)))
    }

    /// Quantize with these calibration activations (the calibrated methods need them).
    pub fn calibrated(mut self, c: Option<Arc<Calibration>>) -> Self {
        self.set_calibration(c);
        self
    }

    pub fn set_calibration(&mut self, c: Option<Arc<Calibration>>) {
        self.calibration = c;
    }

    /// Share the units of `w` that are already at the precision the plan wants for them: those
    /// are not requantized again (switching one group only touches that group).
    pub fn reusing(mut self, w: &GpuWeights) -> Self {
        let mut elements: HashMap<Unit, usize> = HashMap::new();
        for (m, t) in &self.todo {
            *elements.entry(Unit::of(*m)).or_default() += t.n_elements() as usize;
        }
        for (u, have) in &w.mats {
            let want = self.plan.of(u.first());
            let same_numbers = w.plan.method == self.plan.method || want == Precision::Fp16;
            if have.precision == want && same_numbers && elements.get(u) == Some(&(have.rows * have.cols)) {
                self.reuse.insert(*u, have.clone());
                // Its norm as the method left it for these numbers.
                if let Some(v) = u.norm().and_then(|n| w.vectors.get(&n).map(|b| (n, b))) {
                    self.vectors.insert(v.0, v.1.clone());
                }
            }
        }
        self
    }

    /// Requantize the next tensor of `file` (the bytes [`Requantizer::new`]'s GGUF was parsed
    /// from), uploading its unit once complete; false once every tensor is done.
    pub fn step(&mut self, gpu: &Gpu, file: &[u8]) -> Result<bool> {
        let Some((m, t)) = self.todo.pop_front() else { return Ok(false) };
        let unit = Unit::of(m);
        if !self.reuse.contains_key(&unit) {
            self.pending.push(self.quantizer.matrix(file, &t, m, self.calibration.as_deref())?);
        }
        let unit_done = self.todo.front().is_none_or(|(next, _)| Unit::of(*next) != unit);
        if unit_done {
            let w = match self.reuse.remove(&unit) {
                Some(w) => w,
                None => {
                    let w = QuantMatrix::stack(std::mem::take(&mut self.pending))?;
                    let up = match unit {
                        // Read part by part (the embedding lookup, the output head): a large
                        // vocabulary's may be split over several bindings.
                        Unit::Embedding | Unit::Output => gpu.upload_split(&unit.name(), &w)?,
                        _ => gpu.upload_matrix(&unit.name(), &w)?,
                    };
                    if let Some(n) = unit.norm() {
                        if let Some(v) = self.quantizer.vector(file, n, self.calibration.as_deref())? {
                            self.vectors.insert(n, gpu.storage_f32(&n.tensor_name(), &v)?);
                        }
                    }
                    up
                }
            };
            self.uploaded_bytes += w.bytes();
            self.mats.insert(unit, w);
        }
        self.tensors_done += 1;
        self.source_bytes_done += t.n_bytes;
        Ok(!self.todo.is_empty())
    }

    /// Every tensor at once.
    pub fn run(mut self, gpu: &Gpu, file: &[u8]) -> Result<GpuWeights> {
        while self.step(gpu, file)? {}
        self.finish()
    }

    pub fn finish(self) -> Result<GpuWeights> {
        if !self.todo.is_empty() {
            return Err(Error::Usage(format!("{} tensors not requantized yet", self.todo.len())));
        }
        if !self.mats.contains_key(&Unit::Embedding) {
            return Err(Error::TensorNotFound(Mat::Embedding.tensor_name(false)));
        }
        Ok(GpuWeights { plan: self.plan, mats: self.mats, vectors: self.vectors })
    }
}

/// The buffers of a decode step, allocated on the first one and reused by every later one
/// (llama2.c's `RunState`). Activations come from `acts` in the order the step asks for them,
/// which is the same every step.
#[derive(Default)]
struct RunState {
    /// Whether the step being recorded is a decode step (one token).
    decoding: bool,
    /// The step's activations, in order: x [dim]; per layer qkv [q + 2·kv dims], attention out
    /// [heads·head_dim], glu [ffn]; logits [vocab].
    acts: Vec<Buffer>,
    /// Next slot of `acts` this step.
    next: usize,
    /// The token id [1].
    ids: Option<Buffer>,
    /// Attention scores [heads, n_ctx].
    scores: Option<Buffer>,
    /// A decode step's keys and values as a recent window reads them [2, kv_dim / 2] (f16 pairs,
    /// `kv_window.wgsl`); a prefill's [m, 2, kv_dim / 2], made for it by the layer's store and
    /// taken by its attention.
    stage: Option<Buffer>,
    prefill_stage: Option<Buffer>,
    /// The argmax of the logits, or the sampled token [1].
    token: Option<Buffer>,
    /// The sampler's draw: [bits of u, n_recent, recent ids…] ([`crate::gpu::ops::draw_words`]).
    draw: Option<Buffer>,
    /// Read-back buffer (the largest read so far).
    staging: Option<Buffer>,
    /// A chained decode's token history [n_ctx + 1] (index i: the token at position i).
    hist: Option<Buffer>,
    /// With 8-bit activations, a matvec's input as codes [nb · 8 words] and block scales
    /// [2 · (nb + 1)] (`act_q8.wgsl`), nb for the widest input.
    xq: Option<Buffer>,
    xd: Option<Buffer>,
    /// The chain's read-back buffers, taken in turn, and the reads under way (oldest first).
    chain_staging: Vec<Buffer>,
    chain_turn: usize,
    chain_reads: std::collections::VecDeque<crate::gpu::PendingRead>,
}

/// The most decode steps a chained decode records ahead of the tokens it has read back
/// ([`crate::model::decode`]), unless [`GpuBackend::chain`] says otherwise.
pub const CHAIN_AHEAD: usize = 16;
/// Read-back buffers of a chain: one batch being read, one recorded behind it, one spare.
const CHAIN_STAGING: usize = 3;

/// The keys and values of the first `positions` positions of every layer, copied aside
/// ([`GpuBackend::save_kv`]): one buffer per layer, keys then values.
pub struct KvSnapshot {
    kv: KvPrecision,
    positions: usize,
    layers: Vec<Buffer>,
}

pub struct GpuBackend {
    pub gpu: Gpu,
    pub cfg: Config,
    pub plan: Plan,
    weights: GpuWeights,
    /// Every [`Vector`] of the model, in f32.
    vectors: HashMap<Vector, Buffer>,
    /// The biases' values, to repeat over the rows of a prefill.
    biases: HashMap<Vector, Vec<f32>>,
    /// RoPE frequency divisors [n_rot / 2]: the model's (Llama 3), else ones.
    rope_factors: Buffer,
    /// Per layer: keys [n_ctx, kv_heads, head_dim], then values, in the `kv` format.
    kv_cache: Vec<Buffer>,
    /// How the KV cache stores keys and values.
    pub kv: KvPrecision,
    /// The format of the activations the INT8 and INT4 matrices multiply.
    pub activations: Activations,
    /// Tokens the KV cache holds room for.
    pub n_ctx: usize,
    /// What the calibration text tells of each layer's keys, `[2, layers, kv_heads·head_dim]`
    /// ([`GpuBackend::key_stat_at`]): each channel's mean key (what the 4- and 3-bit caches
    /// subtract from keys, [`KvPrecision::centered`]), then its scale λ (what the rotated ones
    /// multiply them by, `kv_balance.wgsl`); and whether they have been measured
    /// ([`GpuBackend::measure_key_stats`]; means 0 and scales 1 until then).
    key_stats: Buffer,
    key_stats_measured: bool,
    /// While the key statistics are measured: where each layer's queries add up their squares
    /// (`[layers, kv_heads·head_dim]`, `kv_query_sq.wgsl`).
    query_sq: Option<Buffer>,
    /// The per-step uniform ([`Step`]): the position of the step's first token.
    step: Buffer,
    run: RunState,
    /// Bind groups of decode steps (over the weights, the cache and `run`'s buffers).
    binds: Rc<RefCell<BindCache>>,
    /// Timestamps for the next step (profiling).
    timer: Option<Rc<PassTimer>>,
    rec: Option<Recorder>,
    /// Calibration activations for the calibrated methods ([`crate::method`]).
    calibration: Option<Arc<Calibration>>,
    /// How many decode steps may run ahead of the tokens read back ([`CHAIN_AHEAD`]; 1: read
    /// every token before the next step).
    pub chain: usize,
    /// Timing whole steps ([`GpuBackend::time_steps`]): a timestamp pair per step, the next
    /// step's slot, and whether a step is open (its end still to be marked).
    step_timer: Option<(Rc<PassTimer>, u32, bool)>,
}

impl GpuBackend {
    /// Upload the model at `plan` with a KV cache of `n_ctx` tokens.
    pub fn load(gpu: &Gpu, g: &Gguf, plan: impl Into<Plan>, n_ctx: usize) -> Result<Self> {
        Self::load_calibrated(gpu, g, plan, n_ctx, None)
    }

    /// [`GpuBackend::load`] with calibration activations for the calibrated methods (kept for
    /// later [`GpuBackend::set_precision`]s).
    pub fn load_calibrated(gpu: &Gpu, g: &Gguf, plan: impl Into<Plan>, n_ctx: usize, calib: Option<Arc<Calibration>>) -> Result<Self> {
        let cfg = Config::from_gguf(g)?;
        let weights = Requantizer::new(&cfg, g, plan.into())?.calibrated(calib.clone()).run(gpu, g.bytes())?;
        let mut b = Self::with_weights(gpu, g, weights, n_ctx)?;
        b.calibration = calib;
        Ok(b)
    }

    /// The calibration activations later precision switches quantize with.
    pub fn set_calibration(&mut self, c: Option<Arc<Calibration>>) {
        self.calibration = c;
    }

    pub fn calibration(&self) -> Option<&Arc<Calibration>> {
        self.calibration.as_ref()
    }

    /// A backend over weights already on the GPU (see [`Requantizer`]): uploads the vectors and
    /// makes a KV cache of `n_ctx` tokens.
    pub fn with_weights(gpu: &Gpu, g: &Gguf, weights: GpuWeights, n_ctx: usize) -> Result<Self> {
        let cfg = Config::from_gguf(g)?;
        let n_ctx = n_ctx.min(cfg.context_length).max(1);
        let mut vectors = HashMap::new();
        let mut biases = HashMap::new();
        for n in cfg.vectors() {
            let v = n.values(g)?;
            vectors.insert(n, gpu.storage_f32(&n.tensor_name(), &v)?);
            if matches!(n, Vector::QkvBias(_)) {
                biases.insert(n, v);
            }
        }
        let rope_factors = match vectors.get(&Vector::RopeFreqs) {
            Some(f) => f.clone(),
            None => gpu.storage_f32("rope_factors", &vec![1.0; (cfg.n_rot / 2).max(1)])?,
        };
        let per = (cfg.n_layers * cfg.n_kv_heads * cfg.head_dim).max(1);
        let key_stats = gpu.storage_f32("key_stats", &[vec![0.0; per], vec![1.0; per]].concat())?;
        let mut b = GpuBackend {
            gpu: gpu.clone(),
            cfg,
            plan: weights.plan,
            weights,
            vectors,
            biases,
            rope_factors,
            kv_cache: vec![],
            kv: KvPrecision::F32,
            activations: Activations::F32,
            n_ctx,
            key_stats,
            key_stats_measured: false,
            query_sq: None,
            step: gpu.uniform("step", &Step::default().words()),
            run: RunState::default(),
            binds: Default::default(),
            timer: None,
            rec: None,
            calibration: None,
            chain: CHAIN_AHEAD,
            step_timer: None,
        };
        b.make_kv(KvPrecision::F32)?;
        Ok(b)
    }

    /// Values in one half (keys or values) of a layer's cache: where the values start.
    fn v_base(&self) -> usize {
        self.n_ctx * self.cfg.n_kv_heads * self.cfg.head_dim
    }

    /// Copy the keys and values of positions `0..positions` of every layer aside, so work that
    /// overwrites the cache (a measurement on the loaded model) can give it back afterwards with
    /// [`GpuBackend::restore_kv`]. Costs the bytes of those positions only.
    pub fn save_kv(&mut self, positions: usize) -> Result<KvSnapshot> {
        let (half, v_off) = self.kv_ranges(positions);
        let (ring_at, ring) = self.ring_range();
        self.flush();
        let mut enc = self.gpu.encoder();
        let mut layers = vec![];
        if half > 0 {
            for (l, cache) in self.kv_cache.iter().enumerate() {
                let b = self.gpu.zeros(&format!("kv_snapshot.{l}"), ((2 * half + ring) / 4) as usize)?;
                enc.copy_buffer_to_buffer(cache, 0, &b, 0, half);
                enc.copy_buffer_to_buffer(cache, v_off, &b, half, half);
                if ring > 0 {
                    enc.copy_buffer_to_buffer(cache, ring_at, &b, 2 * half, ring);
                }
                layers.push(b);
            }
        }
        self.gpu.submit(enc);
        Ok(KvSnapshot { kv: self.kv, positions, layers })
    }

    /// Put a [`GpuBackend::save_kv`] snapshot back (the cache must be in the snapshot's format).
    pub fn restore_kv(&mut self, snap: &KvSnapshot) -> Result<()> {
        if snap.kv != self.kv || (!snap.layers.is_empty() && snap.layers.len() != self.kv_cache.len()) {
            return Err(Error::Gpu(format!("a {} KV snapshot cannot go back into a {} cache", snap.kv, self.kv)));
        }
        let (half, v_off) = self.kv_ranges(snap.positions);
        let (ring_at, ring) = self.ring_range();
        self.flush();
        let mut enc = self.gpu.encoder();
        for (b, cache) in snap.layers.iter().zip(&self.kv_cache) {
            enc.copy_buffer_to_buffer(b, 0, cache, 0, half);
            enc.copy_buffer_to_buffer(b, half, cache, v_off, half);
            if ring > 0 {
                enc.copy_buffer_to_buffer(b, 2 * half, cache, ring_at, ring);
            }
        }
        self.gpu.submit(enc);
        Ok(())
    }

    /// Make room for `n_ctx` tokens (at most the model's context length), keeping the keys and
    /// values of the first `keep` positions (as many as fit). Returns the positions kept.
    pub fn set_context(&mut self, n_ctx: usize, keep: usize) -> Result<usize> {
        let n_ctx = n_ctx.min(self.cfg.context_length).max(1);
        let keep = keep.min(n_ctx);
        if n_ctx == self.n_ctx {
            return Ok(keep);
        }
        let snapshot = self.save_kv(keep)?;
        self.flush();
        self.forget_binds();
        // The step's buffers are sized by the context (attention scores): made again next step.
        self.run = RunState::default();
        let old = std::mem::replace(&mut self.n_ctx, n_ctx);
        self.kv_cache = vec![];
        if let Err(e) = self.make_kv(self.kv) {
            // Too large for this GPU (or out of memory): back to the size it had, cache and all.
            self.n_ctx = old;
            self.kv_cache = vec![];
            self.make_kv(self.kv)?;
            self.restore_kv(&snapshot)?;
            return Err(e);
        }
        self.restore_kv(&snapshot)?;
        Ok(keep)
    }

    /// Where a layer's ring of recent positions starts in its cache, and its bytes (0 without a
    /// recent window, [`KvPrecision::recent`]).
    fn ring_range(&self) -> (u64, u64) {
        let kvd = self.cfg.n_kv_heads * self.cfg.head_dim;
        (self.ring_at() as u64 * 4, self.kv.ring_words(kvd) as u64 * 4)
    }

    /// The word of a layer's cache where its ring of recent positions starts: after the codes.
    fn ring_at(&self) -> usize {
        self.kv.words(2 * self.v_base())
    }

    /// Bytes of `positions` positions in one half of a layer's cache, and where the values start.
    fn kv_ranges(&self, positions: usize) -> (u64, u64) {
        let kvd = self.cfg.n_kv_heads * self.cfg.head_dim;
        (self.kv.words(positions.min(self.n_ctx) * kvd) as u64 * 4, self.kv.words(self.v_base()) as u64 * 4)
    }

    /// Multiply 8-bit activations (`Int8`: the INT8 and INT4 matrices) or f32 ones from the next
    /// step on. The first switch to 8 bits measures which integer matvec form this adapter runs
    /// faster ([`Gpu::choose_int_dot`]).
    pub async fn set_activations(&mut self, a: Activations) -> Result<()> {
        if a == Activations::Int8 {
            self.gpu.choose_int_dot().await?;
        }
        self.flush();
        self.activations = a;
        Ok(())
    }

    /// Store the KV cache as `kv` from now on. A new format makes the caches anew (empty), so
    /// whatever they held must be computed again; the format they already have keeps them. The
    /// first 4- or 3-bit format measures the mean keys first (`g`: the model's file, for its
    /// tokenizer; [`GpuBackend::measure_key_stats`]).
    pub fn set_kv(&mut self, g: &Gguf, kv: KvPrecision) -> Result<()> {
        if kv == self.kv && !self.kv_cache.is_empty() {
            return Ok(());
        }
        if let Some(why) = self.cfg.kv_unfit(kv) {
            return Err(Error::Usage(why));
        }
        if kv.centered() {
            self.measure_key_stats(g)?;
        }
        self.make_kv(kv)
    }

    /// The mean keys this backend's 4- and 3-bit caches subtract and the key scales its rotated
    /// ones multiply by, once measured: another backend of the same model can take them
    /// ([`GpuBackend::share_key_stats`]) rather than measure its own.
    pub fn key_stats(&self) -> Option<Buffer> {
        self.key_stats_measured.then(|| self.key_stats.clone())
    }

    /// Use `stats` (another backend's [`GpuBackend::key_stats`], of the same model) from now on.
    /// Only before this backend has stored keys in a 4- or 3-bit cache: keys already stored less
    /// other means, or times other scales, would no longer give the same scores.
    pub fn share_key_stats(&mut self, stats: Buffer) -> Result<()> {
        if self.kv.centered() || stats.size() != self.key_stats.size() {
            return Err(Error::Usage("key statistics are shared between backends of one model before either stores a 4- or 3-bit cache".into()));
        }
        self.flush();
        self.forget_binds();
        self.key_stats = stats;
        self.key_stats_measured = true;
        Ok(())
    }

    /// Where layer `l`'s key statistic `row` starts in [`GpuBackend::key_stats`]: row 0 the mean
    /// keys, row 1 the key scales.
    fn key_stat_at(&self, row: usize, l: usize) -> usize {
        (row * self.cfg.n_layers + l) * self.cfg.n_kv_heads * self.cfg.head_dim
    }

    /// Measure each layer's mean key and key scales over the calibration text
    /// ([`super::key_mean_tokens`]), once per backend: the text is run through the model at its
    /// current weights into a cache of its own (f32, just long enough), each layer's queries
    /// adding up their squares on the way (`kv_query_sq`); then the `kv_mean` kernel averages each
    /// layer's keys after RoPE and `kv_balance` weighs their spread against the queries'. The
    /// conversation's cache is left as it was.
    pub fn measure_key_stats(&mut self, g: &Gguf) -> Result<()> {
        if self.key_stats_measured {
            return Ok(());
        }
        let toks = super::key_mean_tokens(g, &self.cfg);
        let n = toks.len();
        self.flush();
        self.forget_binds();
        // The pass is nobody's step: no profile or step timer sees it.
        let kept = (std::mem::take(&mut self.kv_cache), self.kv, self.n_ctx, std::mem::take(&mut self.run), self.timer.take(), self.step_timer.take());
        self.n_ctx = n;
        let cfg = self.cfg.clone();
        let kvd = cfg.n_kv_heads * cfg.head_dim;
        let measured = self.make_kv(KvPrecision::F32).and_then(|_| {
            let qsq = self.gpu.zeros("query_sq", cfg.n_layers * kvd)?;
            self.query_sq = Some(qsq.clone());
            let pass = super::forward(&cfg, self, &toks, 0, false);
            self.query_sq = None;
            pass?;
            let (caches, stats) = (self.kv_cache.clone(), self.key_stats.clone());
            for (l, cache) in caches.iter().enumerate() {
                let (mean_at, scale_at) = (self.key_stat_at(0, l), self.key_stat_at(1, l));
                self.rec().kv_mean(cache, &stats, n, kvd, mean_at);
                self.rec().kv_balance(cache, &stats, &qsq, n, kvd, cfg.head_dim, (mean_at, scale_at, l * kvd));
            }
            self.flush();
            Ok(())
        });
        if measured.is_err() {
            // What a failed pass recorded writes only its own buffers: not worth submitting.
            self.rec = None;
        }
        self.forget_binds();
        (self.kv_cache, self.kv, self.n_ctx, self.run, self.timer, self.step_timer) = kept;
        measured?;
        self.key_stats_measured = true;
        Ok(())
    }

    /// Make the caches anew in format `kv` (its fit already checked).
    fn make_kv(&mut self, kv: KvPrecision) -> Result<()> {
        self.flush();
        self.forget_binds();
        // Drop the old caches before making the new ones: the two never need to coexist.
        self.kv_cache = vec![];
        let words = kv.words(2 * self.v_base()) + kv.ring_words(self.cfg.n_kv_heads * self.cfg.head_dim);
        self.kv_cache = (0..self.cfg.n_layers).map(|l| self.gpu.zeros(&format!("kv_cache.{l}"), words)).collect::<Result<_>>()?;
        self.kv = kv;
        Ok(())
    }

    /// Requantize the weights whose precision changes to `plan`'s, keeping the KV cache.
    pub fn set_precision(&mut self, g: &Gguf, plan: impl Into<Plan>) -> Result<()> {
        let plan = plan.into();
        if plan == self.plan {
            return Ok(());
        }
        let w = Requantizer::new(&self.cfg, g, plan)?.reusing(&self.weights).calibrated(self.calibration.clone()).run(&self.gpu, g.bytes())?;
        self.set_weights(w);
        Ok(())
    }

    /// Swap in weights at another plan (from a [`Requantizer`]), keeping the KV cache.
    pub fn set_weights(&mut self, w: GpuWeights) {
        self.flush();
        self.forget_binds();
        self.plan = w.plan;
        self.weights = w;
    }

    /// Drop the decode step's bind groups (they hold the buffers they bind).
    fn forget_binds(&mut self) {
        self.binds.borrow_mut().clear();
    }

    /// The weight matrices (shared GPU buffers, not copies).
    pub fn weights(&self) -> GpuWeights {
        self.weights.clone()
    }

    /// Bytes of the KV cache on the GPU, its rings of recent positions included (the buffers'
    /// padding not counted).
    pub fn kv_bytes(&self) -> u64 {
        self.kv_cache.len() as u64 * (self.ring_at() as u64 * 4 + self.ring_range().1)
    }

    /// The kernels a forward step runs (compiling them ahead avoids a stall on the first token).
    pub fn kernels(&self) -> Vec<Kernel> {
        let (reduce, tiling) = (self.gpu.reduce(), self.gpu.tiling());
        let c = &self.cfg;
        let mut v = vec![Kernel::Embedding(self.plan.embeddings)];
        for p in self.plan.precisions() {
            let fuses = [Fuse::None, Fuse::Norm, Fuse::Add, Fuse::NormGlu(c.activation)];
            v.extend(fuses.map(|f| Kernel::Matvec(p, reduce, f)));
            v.push(Kernel::Matmul(p, tiling));
            if self.activations.quantizes_for(p) {
                let dot = self.gpu.int_dot();
                v.extend(fuses.map(|f| Kernel::matvec_q8(p, reduce, f, dot)));
                let q8 = Kernel::matvec_q8(p, reduce, Fuse::None, dot);
                v.extend([false, true].map(|norm| q8.q8_input(norm)));
                let codes = tiling != Tiling::Shared;
                v.push(Kernel::ActQ8Rows { codes });
                if codes {
                    v.push(Kernel::MatmulQ8(p, tiling));
                }
            }
        }
        if c.qk_norm {
            v.push(Kernel::HeadNorm);
        }
        if c.family == super::Family::Gemma {
            v.push(Kernel::RmsnormAdd);
        }
        v.extend([
            Kernel::Rmsnorm,
            Kernel::Glu(c.activation),
            Kernel::Add,
            Kernel::Argmax,
            Kernel::RopeStore(self.kv),
            Kernel::AttnScores(self.kv),
            Kernel::AttnSoftmax,
            Kernel::AttnValues(self.kv),
            Kernel::AttnMerge,
        ]);
        if self.kv.rotated() {
            v.push(Kernel::KvRotate);
        }
        v
    }

    /// The token embedding.
    fn embd(&self) -> &GpuMatrix {
        &self.weights.mats[&Unit::Embedding]
    }

    /// The output head (the embedding when tied).
    fn output(&self) -> Result<&GpuMatrix> {
        self.weights.get(if self.cfg.tied_output { Unit::Embedding } else { Unit::Output })
    }

    /// Bytes of weight data on the GPU at the current precision (vectors included).
    pub fn weight_bytes(&self) -> u64 {
        self.weights.mats.values().map(GpuMatrix::bytes).sum::<u64>() + self.cfg.vector_bytes()
    }

    /// KV cache bytes one token of context takes (keys and values, every layer).
    pub fn kv_bytes_per_token(&self) -> u64 {
        self.kv_bytes() / self.n_ctx.max(1) as u64
    }

    /// Bytes one decode step at position `pos` reads: every weight matrix once (the token
    /// embedding only as the output head when tied, else one row of it), the vectors, and the
    /// keys and values of `pos + 1` tokens.
    pub fn bytes_per_token(&self, pos: usize) -> u64 {
        let e = self.embd();
        let embd_read = if self.cfg.tied_output { e.bytes() } else { e.bytes() / e.rows.max(1) as u64 };
        self.weight_bytes() - e.bytes() + embd_read + self.kv_bytes_per_token() * (pos as u64 + 1)
    }

    /// Run one decode step of `token` at position `pos` (and the greedy pick) with a timestamp
    /// around every dispatch: `(kernel, ms)` per dispatch, or None when the adapter has no
    /// timestamp queries. It writes the KV cache at `pos`, like any step.
    pub async fn profile_step(&mut self, token: u32, pos: usize) -> Result<Option<Vec<(Kernel, f64)>>> {
        self.flush();
        let Some(timer) = PassTimer::new(&self.gpu, TIMED_DISPATCHES).map(Rc::new) else { return Ok(None) };
        self.timer = Some(timer.clone());
        let cfg = self.cfg.clone();
        let logits = super::forward(&cfg, self, &[token], pos, false).and_then(|l| {
            // The greedy pick is part of a decode step.
            let out = Self::run_buffer(&self.gpu, &mut self.run.token, "token", 1)?;
            self.rec().argmax(&l.buf, &out, l.width);
            Ok(l)
        });
        self.timer = None;
        let logits = logits?;
        let rec = self.rec.take().ok_or_else(|| Error::Gpu("the profiled step was not recorded".into()))?;
        let kernels = rec.kernels.clone();
        rec.submit();
        self.gpu.wait().await?;
        drop(logits);
        let ms = timer.read_ms(&self.gpu).await?;
        Ok(Some(kernels.into_iter().zip(ms).collect()))
    }

    /// Dispatches per decode step: 9 per layer (attention is 4 of them; one more with q/k norms,
    /// two more with post-norms, one more with biases, two more with a rotated KV cache), plus the
    /// embedding and the output head part by part, and the argmax.
    pub fn dispatches_per_token(&self) -> usize {
        let c = &self.cfg;
        let per_layer = 9
            + c.qk_norm as usize
            + 2 * (c.family == super::Family::Gemma) as usize
            + c.qkv_bias as usize
            + 2 * self.kv.rotated() as usize;
        let output = self.output().ok();
        // With 8-bit activations each INT8 or INT4 matvec quantizes its input first (`act_q8`).
        let q8 = |w: &GpuMatrix| self.activations.quantizes_for(w.precision) as usize;
        let layer_q8 = |l| [Unit::Qkv(l), Unit::O(l), Unit::GateUp(l), Unit::Down(l)].map(|u| self.weights.get(u).map_or(0, q8)).iter().sum::<usize>();
        let act_q8 = (0..c.n_layers).map(layer_q8).sum::<usize>() + output.map_or(0, |o| o.parts().len() * q8(o));
        per_layer * c.n_layers + self.embd().parts().len() + output.map_or(1, |o| o.parts().len()) + 1 + act_q8
    }

    /// Submit everything recorded so far.
    pub fn flush(&mut self) {
        if let Some(mut r) = self.rec.take() {
            if let Some((t, next, open @ true)) = &mut self.step_timer {
                let (set, i) = t.slot(*next);
                r.mark(set, i + 1, false);
                *next += 1;
                *open = false;
            }
            r.submit();
        }
    }

    /// Time the next `steps` steps (forward passes) whole on the GPU, each between a timestamp
    /// before its first kernel and one after its last: what [`GpuBackend::step_times`] reads.
    /// False when the adapter has no timestamp queries.
    pub fn time_steps(&mut self, steps: usize) -> bool {
        self.flush();
        // WebGPU allows 4,096 queries a set: 2,048 steps.
        self.step_timer =
            PassTimer::new(&self.gpu, steps.clamp(1, 2048) as u32).map(|t| (Rc::new(t), 0, false));
        self.step_timer.is_some()
    }

    /// The GPU milliseconds of each step timed since [`GpuBackend::time_steps`] (in order), and
    /// the end of the timing. None when nothing was timed.
    pub async fn step_times(&mut self) -> Result<Option<Vec<f64>>> {
        self.flush();
        let Some((t, n, _)) = self.step_timer.take().filter(|(_, n, _)| *n > 0) else {
            return Ok(None);
        };
        let mut enc = self.gpu.encoder();
        t.resolve_first(&mut enc, n);
        self.gpu.submit(enc);
        Ok(Some(t.read_first_ms(&self.gpu, n).await?))
    }

    fn rec(&mut self) -> &mut Recorder {
        let (gpu, binds, timer, decoding) = (&self.gpu, &self.binds, &self.timer, self.run.decoding);
        self.rec.get_or_insert_with(|| match decoding {
            true => Recorder::cached(gpu, binds.clone(), timer.clone(), TIMED_DISPATCHES),
            false => Recorder::new(gpu, timer.clone(), TIMED_DISPATCHES),
        })
    }

    /// An activation `[m, width]`: the step's next slot when decoding, else a new buffer.
    fn act(&mut self, m: usize, width: usize) -> Result<GpuActivations> {
        if !(self.run.decoding && m == 1) {
            return Ok(GpuActivations { buf: self.gpu.zeros("act", m * width)?, m, width });
        }
        let slot = self.run.next;
        self.run.next += 1;
        let bytes = (width * 4) as u64;
        match self.run.acts.get(slot) {
            Some(b) if b.size() >= bytes => {}
            _ => {
                let b = self.gpu.zeros(&format!("act.{slot}"), width)?;
                if slot < self.run.acts.len() {
                    // A buffer bound before is replaced: its bind groups go with it.
                    self.forget_binds();
                    self.run.acts[slot] = b;
                } else {
                    self.run.acts.push(b);
                }
            }
        }
        Ok(GpuActivations { buf: self.run.acts[slot].clone(), m, width })
    }

    /// A decode step's stage of what a recent window reads ([`RunState`]'s `stage`, one row),
    /// also bound where a step has no window.
    fn step_stage(&mut self) -> Result<Buffer> {
        Self::run_buffer(&self.gpu, &mut self.run.stage, "kv_stage", self.cfg.n_kv_heads * self.cfg.head_dim)
    }

    /// A long-lived buffer of `run` (made once, at `len` u32/f32 values or more).
    fn run_buffer(gpu: &Gpu, slot: &mut Option<Buffer>, label: &str, len: usize) -> Result<Buffer> {
        match slot {
            Some(b) if b.size() >= (len * 4) as u64 => Ok(b.clone()),
            _ => Ok(slot.insert(gpu.zeros(label, len)?).clone()),
        }
    }

    /// Add bias `n` to every row of `x`. A decode step adds the bias buffer itself; a prefill of
    /// m rows adds the bias repeated m times (made for the call: prefill allocates anyway).
    fn add_bias(&mut self, x: &GpuActivations, n: Vector) -> Result<()> {
        let bias = self.vector(n)?.clone();
        if x.m == 1 {
            self.rec().add(&x.buf, &bias, x.width);
            return Ok(());
        }
        let one = self.biases.get(&n).ok_or_else(|| Error::TensorNotFound(n.tensor_name()))?;
        let rows = self.gpu.storage_f32("bias.rows", &one.repeat(x.m))?;
        self.rec().add(&x.buf, &rows, x.m * x.width);
        Ok(())
    }

    fn vector(&self, n: Vector) -> Result<&Buffer> {
        self.weights.vectors.get(&n).or_else(|| self.vectors.get(&n)).ok_or_else(|| Error::TensorNotFound(n.tensor_name()))
    }

    /// Start a step at `pos0`: the embedding rows of `ids`, or (None) of the token a chained pick
    /// left in the step's ids buffer.
    fn embed_from(&mut self, ids: Option<&[u32]>, pos0: usize) -> Result<GpuActivations> {
        let m = ids.map_or(1, <[u32]>::len);
        // A step is one submission: what it writes (the position, the token) applies to it all.
        self.flush();
        self.run.decoding = m == 1;
        self.run.next = 0;
        self.gpu.queue.write_buffer(
            &self.step,
            0,
            bytemuck::bytes_of(&Step {
                pos0: pos0 as u32,
                ..Default::default()
            }),
        );
        let idb = match ids {
            Some(ids) if m > 1 => self.gpu.storage_u32("ids", ids)?,
            _ => {
                let b = Self::run_buffer(&self.gpu, &mut self.run.ids, "ids", 1)?;
                if let Some(ids) = ids {
                    self.gpu
                        .queue
                        .write_buffer(&b, 0, bytemuck::cast_slice(ids));
                }
                b
            }
        };
        let out = self.act(m, self.embd().cols)?;
        let (e, scale) = (self.embd().clone(), self.cfg.embed_scale);
        let mark = match &mut self.step_timer {
            Some((t, next, open)) if *next < t.passes() => {
                *open = true;
                Some((t.clone(), *next))
            }
            _ => None,
        };
        if let Some((t, i)) = mark {
            let (set, i) = t.slot(i);
            self.rec().mark(set, i, true);
        }
        self.rec().embedding(&e, &idb, &out.buf, m, scale);
        Ok(out)
    }

    /// The token id a picking kernel (argmax, sample) wrote into `token` (4 bytes read back).
    async fn read_token(&mut self, token: &Buffer) -> Result<u32> {
        let b = self.read_back(token, 4).await?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Read `bytes` bytes of `buf` back (through the kept staging buffer).
    async fn read_back(&mut self, buf: &Buffer, bytes: u64) -> Result<Vec<u8>> {
        self.flush();
        let staging = match &self.run.staging {
            Some(s) if s.size() >= bytes => s.clone(),
            _ => self.run.staging.insert(self.gpu.staging(bytes)).clone(),
        };
        self.gpu.read_with(buf, bytes, &staging).await
    }

    /// Matrix `w`, checked to map activations of `a.width` into the residual stream `x`.
    fn residual_matrix(&self, x: &GpuActivations, a: &GpuActivations, w: Mat) -> Result<GpuMatrix> {
        let wm = self.weights.get(Unit::of(w))?.clone();
        if wm.cols != a.width || wm.rows != x.width {
            return Err(Error::Shape(format!("{w:?}: {}x{} for activations of {} → {}", wm.rows, wm.cols, a.width, x.width)));
        }
        Ok(wm)
    }

    /// `a · Wᵀ` into a new activation: the matvec when decoding, else the matmul.
    fn project(&mut self, a: &GpuActivations, w: &GpuMatrix) -> Result<GpuActivations> {
        let y = self.act(a.m, w.rows)?;
        if a.m == 1 {
            self.matvec(w, &a.buf, &y.buf, Fuse::None, None)?;
        } else {
            self.prefill_matmul(a, w, &y.buf)?;
        }
        Ok(y)
    }

    /// A decode matvec of `w` with `fuse` (`norm`: the norm's weights and epsilon for the fusions
    /// that normalize x): over 8-bit codes of x when the activations are 8-bit for `w`'s
    /// precision, else over x.
    fn matvec(&mut self, w: &GpuMatrix, x: &Buffer, y: &Buffer, fuse: Fuse, norm: Option<(&Buffer, f32)>) -> Result<()> {
        let reduce = self.gpu.reduce();
        if !self.activations.quantizes_for(w.precision) {
            self.rec().matvec_fused(w, x, y, fuse, norm, reduce);
            return Ok(());
        }
        let c = &self.cfg;
        let nb = c.dim.max(c.ffn_dim).max(c.n_heads * c.head_dim).div_ceil(32);
        let xq = Self::run_buffer(&self.gpu, &mut self.run.xq, "xq", nb * 8)?;
        let xd = Self::run_buffer(&self.gpu, &mut self.run.xd, "xd", 2 * (nb + 1))?;
        let dot = self.gpu.int_dot();
        self.rec().matvec_q8(w, x, y, fuse, norm, (&xq, &xd), reduce, dot);
        Ok(())
    }

    /// A prefill's `y = a · Wᵀ`. When the activations are 8-bit for `w`'s precision, `a` is
    /// quantized first, and the matmul multiplies what decode's integer matvecs do: the
    /// barrier-free matmul (CPU adapters) reads the codes and scales themselves, a quarter of the
    /// bytes; the tiled one their values in f32.
    fn prefill_matmul(&mut self, a: &GpuActivations, w: &GpuMatrix, y: &Buffer) -> Result<()> {
        let m = a.m;
        if !self.activations.quantizes_for(w.precision) {
            self.rec().matmul(w, &a.buf, y, m);
            return Ok(());
        }
        let tiling = matmul_tiling(&self.gpu, w);
        let codes = tiling != Tiling::Shared;
        let q = self.act(m, if codes { q8_rows_words(1, a.width) } else { a.width })?.buf;
        let rec = self.rec();
        rec.act_q8_rows(&a.buf, &q, m, a.width, codes);
        if codes {
            rec.matmul_q8(w, &q, y, m, tiling);
        } else {
            rec.matmul_with(w, &q, y, m, tiling);
        }
        Ok(())
    }

    /// `y = W·rmsnorm(x)` (or `act(Wg·h)·(Wu·h)` with `fuse`) for m tokens: fused into the matvec
    /// when decoding, else rmsnorm then the matmul (and the SwiGLU gate).
    fn norm_linear(&mut self, x: &GpuActivations, norm: Vector, w: &GpuMatrix, fuse: Fuse) -> Result<GpuActivations> {
        if w.cols != x.width {
            return Err(Error::Shape(format!("{norm:?}: {} inputs, activations of {}", w.cols, x.width)));
        }
        let g = self.vector(norm)?.clone();
        let (m, eps) = (x.m, self.cfg.rms_eps);
        let out = self.act(m, w.rows / fuse.pairs())?;
        if m == 1 {
            self.matvec(w, &x.buf, &out.buf, fuse, Some((&g, eps)))?;
        } else {
            let h = self.act(m, x.width)?;
            self.rec().rmsnorm(&x.buf, &g, &h.buf, m, x.width, eps);
            match fuse {
                Fuse::NormGlu(act) => {
                    let gu = self.act(m, w.rows)?;
                    self.prefill_matmul(&h, w, &gu.buf)?;
                    self.rec().glu(act, &gu.buf, &out.buf, m, out.width);
                }
                _ => self.prefill_matmul(&h, w, &out.buf)?,
            }
        }
        Ok(out)
    }
}

impl Backend for GpuBackend {
    type Act = GpuActivations;

    fn embed(&mut self, ids: &[u32], pos0: usize) -> Result<GpuActivations> {
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= self.embd().rows) {
            return Err(Error::Shape(format!("token id {bad} outside the vocabulary of {}", self.embd().rows)));
        }
        if ids.is_empty() {
            return Err(Error::Usage("no tokens".into()));
        }
        self.embed_from(Some(ids), pos0)
    }

    fn qkv(&mut self, x: &GpuActivations, l: usize, pos0: usize) -> Result<GpuActivations> {
        let m = x.m;
        if pos0 + m > self.n_ctx {
            return Err(Error::ContextFull { needed: pos0 + m, size: self.n_ctx });
        }
        let w = self.weights.get(Unit::Qkv(l))?.clone();
        let qkv = self.norm_linear(x, Vector::Attn(l), &w, Fuse::Norm)?;
        if self.cfg.qkv_bias {
            self.add_bias(&qkv, Vector::QkvBias(l))?;
        }
        // The few numbers the kernels need, copied out of the config (a clone of it would allocate
        // its architecture name for every layer of every token).
        let c = &self.cfg;
        let (rope, kv_heads, head_dim, eps) = (c.rope(l, c.n_heads, pos0), c.n_kv_heads, c.head_dim, c.rms_eps);
        let (v_base, kv) = (self.v_base(), self.kv);
        if self.cfg.qk_norm {
            let w = self.vector(Vector::QkNorm(l))?.clone();
            self.rec().head_norm(&qkv.buf, &w, m, rope.heads, kv_heads, head_dim, eps);
        }
        let (cache, step, factors, stats) = (self.kv_cache[l].clone(), self.step.clone(), self.rope_factors.clone(), self.key_stats.clone());
        let at = (self.key_stat_at(0, l), self.key_stat_at(1, l));
        let stage = if m == 1 || kv.recent() == 0 {
            self.step_stage()?
        } else {
            self.run.prefill_stage.insert(self.gpu.zeros("kv_stage", m * kv_heads * head_dim)?).clone()
        };
        self.rec().rope_store(&qkv.buf, &cache, &step, m, &rope, kv_heads, v_base, kv, &factors, (&stats, at.0, at.1), &stage);
        if let Some(qsq) = self.query_sq.clone() {
            self.rec().kv_query_sq(&qkv.buf, &qsq, m, (rope.heads, kv_heads, head_dim), qkv.width, l * kv_heads * head_dim);
        }
        Ok(qkv)
    }

    fn attend(&mut self, l: usize, q: &GpuActivations, pos0: usize) -> Result<GpuActivations> {
        let (a, m) = (self.cfg.attention(l, pos0), q.m);
        let scores = if self.run.decoding && m == 1 {
            Self::run_buffer(&self.gpu, &mut self.run.scores, "scores", scores_len(a.heads, a.head_dim, 1, self.n_ctx))?
        } else {
            // Query tiles of as many rows as SCORES_TILE_BYTES (or one binding) holds.
            let cap = (SCORES_TILE_BYTES.min(self.gpu.binding_limit()) / 4) as usize;
            let rows = (cap / scores_len(a.heads, a.head_dim, 1, pos0 + m)).clamp(1, m);
            self.gpu.zeros("scores", scores_len(a.heads, a.head_dim, rows, pos0 + m))?
        };
        let out = self.act(m, a.heads * a.head_dim)?;
        let (cache, step, v_base, kv) = (self.kv_cache[l].clone(), self.step.clone(), self.v_base(), self.kv);
        let (stats, scale_at) = (self.key_stats.clone(), self.key_stat_at(1, l));
        let stage = match self.run.prefill_stage.take() {
            Some(b) if m > 1 => b,
            _ => self.step_stage()?,
        };
        let ring_at = self.ring_at();
        self.rec().attention(&q.buf, q.width, &cache, &step, &scores, &out.buf, m, &a, v_base, kv, (&stats, scale_at), (&stage, ring_at));
        Ok(out)
    }

    fn linear_add(&mut self, x: &mut GpuActivations, a: &GpuActivations, w: Mat) -> Result<()> {
        let wm = self.residual_matrix(x, a, w)?;
        if a.m == 1 {
            self.matvec(&wm, &a.buf, &x.buf, Fuse::Add, None)?;
        } else {
            let y = self.project(a, &wm)?;
            self.rec().add(&x.buf, &y.buf, y.m * y.width);
        }
        Ok(())
    }

    fn linear_norm_add(&mut self, x: &mut GpuActivations, a: &GpuActivations, w: Mat, norm: Vector) -> Result<()> {
        let wm = self.residual_matrix(x, a, w)?;
        let (g, eps) = (self.vector(norm)?.clone(), self.cfg.rms_eps);
        let y = self.project(a, &wm)?;
        self.rec().rmsnorm_add(&y.buf, &g, &x.buf, y.m, x.width, eps);
        Ok(())
    }

    fn glu(&mut self, x: &GpuActivations, l: usize) -> Result<GpuActivations> {
        let w = self.weights.get(Unit::GateUp(l))?.clone();
        self.norm_linear(x, Vector::Ffn(l), &w, Fuse::NormGlu(self.cfg.activation))
    }

    fn max_logit_rows(&self) -> usize {
        (self.gpu.binding_limit() / (self.cfg.vocab as u64 * 4).max(1)) as usize
    }

    fn logits(&mut self, x: &GpuActivations) -> Result<GpuActivations> {
        let w = self.output()?.clone();
        if w.parts().len() == 1 {
            return self.norm_linear(x, Vector::Output, &w, Fuse::Norm);
        }
        // A head larger than one binding: each part's logits, copied into their place.
        let out = self.act(x.m, w.rows)?;
        for (i, first) in w.parts().iter().map(|p| p.first).enumerate() {
            let part = w.part(i);
            let y = self.norm_linear(x, Vector::Output, &part, Fuse::Norm)?;
            let enc = self.rec().encoder();
            for t in 0..x.m {
                let (src, dst) = (t * part.rows, t * w.rows + first);
                enc.copy_buffer_to_buffer(&y.buf, src as u64 * 4, &out.buf, dst as u64 * 4, part.rows as u64 * 4);
            }
        }
        Ok(out)
    }

    fn last_row(&mut self, x: &GpuActivations) -> Result<GpuActivations> {
        if x.m == 1 {
            return Ok(GpuActivations { buf: x.buf.clone(), m: 1, width: x.width });
        }
        let out = self.act(1, x.width)?;
        let off = ((x.m - 1) * x.width * 4) as u64;
        self.rec().encoder().copy_buffer_to_buffer(&x.buf, off, &out.buf, 0, (x.width * 4) as u64);
        Ok(out)
    }

    fn copy(&mut self, x: &GpuActivations) -> Result<GpuActivations> {
        let out = GpuActivations { buf: self.gpu.zeros("act", x.m * x.width)?, m: x.m, width: x.width };
        self.rec().encoder().copy_buffer_to_buffer(&x.buf, 0, &out.buf, 0, (x.m * x.width * 4) as u64);
        Ok(out)
    }

    async fn read(&mut self, x: &GpuActivations) -> Result<Vec<f32>> {
        let b = self.read_back(&x.buf, (x.m * x.width * 4) as u64).await?;
        Ok(bytemuck::pod_collect_to_vec(&b))
    }

    async fn argmax(&mut self, x: &GpuActivations) -> Result<u32> {
        if x.m != 1 {
            return Err(Error::Shape(format!("argmax of {} rows", x.m)));
        }
        let token = Self::run_buffer(&self.gpu, &mut self.run.token, "token", 1)?;
        self.rec().argmax(&x.buf, &token, x.width);
        self.read_token(&token).await
    }

    async fn sample(&mut self, x: &GpuActivations, d: &crate::sampler::Draw) -> Result<u32> {
        use crate::gpu::ops::{draw_words, sample_fits};
        if x.m != 1 {
            return Err(Error::Shape(format!("sampling from {} rows", x.m)));
        }
        if !sample_fits(d) {
            return Ok(crate::sampler::sample(&self.read(x).await?, d));
        }
        let words = draw_words(d);
        let token = Self::run_buffer(&self.gpu, &mut self.run.token, "token", 1)?;
        let draw = Self::run_buffer(&self.gpu, &mut self.run.draw, "draw", words.len())?;
        // Queued writes land before the next submission, which holds this draw's dispatch.
        self.gpu.queue.write_buffer(&draw, 0, bytemuck::cast_slice(&words));
        self.rec().sample(&x.buf, &token, &draw, x.width, d);
        self.read_token(&token).await
    }

    fn chain_ahead(&self, d: Option<&crate::sampler::Draw>, window: usize) -> usize {
        use crate::gpu::ops::{sample_fits, SAMPLE_MAX_RECENT};
        match d {
            Some(d) if !sample_fits(d) || window > SAMPLE_MAX_RECENT => 1,
            _ => self.chain.max(1),
        }
    }

    fn chain_start(&mut self, history: &[u32]) -> Result<()> {
        use crate::gpu::ops::SAMPLE_MAX_RECENT;
        self.chain_end();
        let len = self.n_ctx + 1;
        if history.len() >= len {
            return Err(Error::Usage(format!(
                "a history of {} tokens in a context of {}",
                history.len(),
                self.n_ctx
            )));
        }
        let hist = Self::run_buffer(&self.gpu, &mut self.run.hist, "history", len)?;
        // The penalty's window reaches back at most this far.
        let from = history.len().saturating_sub(SAMPLE_MAX_RECENT);
        if from < history.len() {
            self.gpu.queue.write_buffer(
                &hist,
                (from * 4) as u64,
                bytemuck::cast_slice(&history[from..]),
            );
        }
        let bytes = (self.chain.max(1) * 4) as u64;
        if self
            .run
            .chain_staging
            .first()
            .is_none_or(|s| s.size() < bytes)
        {
            self.run.chain_staging = (0..CHAIN_STAGING)
                .map(|_| self.gpu.staging(bytes))
                .collect();
        }
        Ok(())
    }

    fn pick_chained(
        &mut self,
        x: &GpuActivations,
        at: usize,
        draw: Option<(&crate::sampler::Draw, usize)>,
    ) -> Result<()> {
        if x.m != 1 {
            return Err(Error::Shape(format!("a chained pick from {} rows", x.m)));
        }
        let hist = self
            .run
            .hist
            .clone()
            .ok_or_else(|| Error::Usage("a chained pick before the chain started".into()))?;
        if at > self.n_ctx || (at * 4) as u64 >= hist.size() {
            return Err(Error::Usage(format!(
                "token {at} of a chain in a context of {}",
                self.n_ctx
            )));
        }
        let token = Self::run_buffer(&self.gpu, &mut self.run.token, "token", 1)?;
        let ids = Self::run_buffer(&self.gpu, &mut self.run.ids, "ids", 1)?;
        match draw {
            None => self.rec().argmax(&x.buf, &token, x.width),
            Some((d, window)) => {
                use crate::gpu::ops::SAMPLE_MAX_RECENT;
                if window > SAMPLE_MAX_RECENT || window > at {
                    return Err(Error::Usage(format!(
                        "a penalty over {window} tokens before token {at}"
                    )));
                }
                let dr =
                    Self::run_buffer(&self.gpu, &mut self.run.draw, "draw", SAMPLE_MAX_RECENT + 2)?;
                // The uniform number and the window's length land before this step's submission;
                // the window itself is copied from the history on the device.
                self.gpu.queue.write_buffer(
                    &dr,
                    0,
                    bytemuck::cast_slice(&[d.u.to_bits(), window as u32]),
                );
                let rec = self.rec();
                if window > 0 {
                    rec.encoder().copy_buffer_to_buffer(
                        &hist,
                        ((at - window) * 4) as u64,
                        &dr,
                        8,
                        (window * 4) as u64,
                    );
                }
                rec.sample(&x.buf, &token, &dr, x.width, d);
            }
        }
        let enc = self.rec().encoder();
        enc.copy_buffer_to_buffer(&token, 0, &ids, 0, 4);
        enc.copy_buffer_to_buffer(&token, 0, &hist, (at * 4) as u64, 4);
        Ok(())
    }

    fn embed_chained(&mut self, pos0: usize) -> Result<GpuActivations> {
        self.embed_from(None, pos0)
    }

    fn chain_send(&mut self, from: usize, to: usize) -> Result<()> {
        self.flush();
        let n = to.saturating_sub(from);
        let hist = self
            .run
            .hist
            .clone()
            .ok_or_else(|| Error::Usage("a chained read before the chain started".into()))?;
        if self.run.chain_reads.len() >= CHAIN_STAGING {
            return Err(Error::Usage(format!(
                "more than {CHAIN_STAGING} chained reads under way"
            )));
        }
        let staging = self
            .run
            .chain_staging
            .get(self.run.chain_turn % CHAIN_STAGING)
            .cloned();
        let staging = staging
            .ok_or_else(|| Error::Usage("a chained read before the chain started".into()))?;
        self.run.chain_turn += 1;
        let read = self
            .gpu
            .read_later(&hist, (from * 4) as u64, (n * 4) as u64, &staging)?;
        self.run.chain_reads.push_back(read);
        Ok(())
    }

    async fn chain_read(&mut self) -> Result<Vec<u32>> {
        let read = self
            .run
            .chain_reads
            .pop_front()
            .ok_or_else(|| Error::Usage("no chained read under way".into()))?;
        let bytes = read.finish(&self.gpu).await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    fn chain_end(&mut self) {
        self.run.chain_reads.clear();
        self.run.chain_turn = 0;
    }
}
