//! Kernel benchmark: matvec (the decode hot path) at each precision and shape, against a plain
//! copy kernel on the same adapter. Shared by `lowbit bench kernels` and the page.

use serde::{Deserialize, Serialize};

use crate::gpu::tune::Timer;
use crate::gpu::{ops::Recorder, AdapterSummary, Gpu};
use crate::util::{now_ms, Rng};
use crate::{Error, Precision, QuantMatrix, Result};

/// Benchmark shapes, inputs × outputs (k × n).
pub const BENCH_SHAPES: [(usize, usize); 3] = [(576, 1536), (2048, 2048), (4096, 4096)];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchRow {
    pub precision: Precision,
    pub k: usize,
    pub n: usize,
    pub weight_bytes: u64,
    pub median_us: f64,
    /// Weight bytes read per second.
    pub gbps: f64,
    /// `gbps` / the copy kernel's GB/s.
    pub ratio_to_copy: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchReport {
    pub adapter: AdapterSummary,
    /// How the passes were timed.
    pub timer: Timer,
    pub reps: u32,
    /// Copy kernel bandwidth, bytes read + bytes written per second.
    pub copy_gbps: f64,
    pub copy_bytes: u64,
    pub rows: Vec<BenchRow>,
}

/// Median milliseconds of one pass recorded by `record`, over `reps` passes: GPU timestamps where
/// the adapter has them, else wall clock.
async fn time_passes(gpu: &Gpu, reps: u32, record: &dyn Fn(&mut Recorder)) -> Result<(f64, Timer)> {
    crate::gpu::tune::time_passes_with(gpu, reps, record, true).await
}

/// The copy kernel's bandwidth over `bytes` (bytes read + bytes written per second, in GB/s):
/// the most a memory-bound kernel can hope for on this adapter.
pub async fn copy_bandwidth(gpu: &Gpu, bytes: u64, reps: u32) -> Result<(f64, Timer)> {
    let bytes = bytes.div_ceil(16) * 16;
    let src = gpu.zeros("copy.src", (bytes / 4) as usize)?;
    let dst = gpu.zeros("copy.dst", (bytes / 4) as usize)?;
    let (ms, timer) = time_passes(gpu, reps, &|r| r.copy(&src, &dst, (bytes / 16) as usize)).await?;
    Ok((2.0 * bytes as f64 / (ms * 1e-3) / 1e9, timer))
}

/// Run the kernel benchmark on `shapes` (k × n) at every precision.
pub async fn run(gpu: &Gpu, shapes: &[(usize, usize)], reps: u32) -> Result<BenchReport> {
    let mut rng = Rng::new(7);
    // Copy yardstick: as many bytes as the largest FP16 matrix.
    let (k, n) = shapes.iter().copied().max_by_key(|(k, n)| k * n).unwrap_or((4096, 4096));
    let copy_bytes = (k * n * 2) as u64;
    let (copy_gbps, timer) = copy_bandwidth(gpu, copy_bytes, reps).await?;
    let mut rows = Vec::new();
    for &(k, n) in shapes {
        let values = rng.normals(n * k, 0.05);
        let x = gpu.storage_f32("x", &rng.normals(k, 1.0))?;
        let y = gpu.zeros("y", n)?;
        for p in Precision::ALL {
            let w = gpu.upload_matrix("w", &QuantMatrix::quantize(&values, n, k, p)?)?;
            let (ms, _) = time_passes(gpu, reps, &|r| r.matvec(&w, &x, &y)).await?;
            let gbps = w.bytes() as f64 / (ms * 1e-3) / 1e9;
            rows.push(BenchRow {
                precision: p,
                k,
                n,
                weight_bytes: w.bytes(),
                median_us: ms * 1e3,
                gbps,
                ratio_to_copy: gbps / copy_gbps,
            });
        }
    }
    Ok(BenchReport { adapter: gpu.info.clone(), timer, reps, copy_gbps, copy_bytes, rows })
}

/// A report the CLI prints as JSON, a plain table or Markdown.
pub trait Report: Serialize {
    fn table(&self) -> String;
    fn markdown(&self) -> String;
}

/// `head`, then a Markdown table.
fn markdown_table(head: &str, header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut s = format!("{head}\n\n| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
    for r in rows {
        s += &format!("| {} |\n", r.join(" | "));
    }
    s
}

/// The adapter line every Markdown table starts with.
fn adapter_line(a: &AdapterSummary) -> String {
    format!("Adapter: **{}** ({}, {}), matvec `{}`, prefill matmul `{}`", a.name, a.backend, a.device_type, a.matvec_kernel, a.matmul_kernel)
}

impl BenchReport {
    /// Median time ratio of two precisions at one shape.
    pub fn time_ratio(&self, a: Precision, b: Precision, k: usize, n: usize) -> Option<f64> {
        let t = |p| self.rows.iter().find(|r| r.precision == p && r.k == k && r.n == n).map(|r| r.median_us);
        Some(t(a)? / t(b)?)
    }
}

impl Report for BenchReport {
    /// The table as Markdown (README's performance section, `scripts/perf.sh`).
    fn markdown(&self) -> String {
        let head = format!(
            "{}. Matvec, median of {} ({} timer); copy kernel {:.2} GB/s.",
            adapter_line(&self.adapter),
            self.reps,
            self.timer,
            self.copy_gbps
        );
        let rows = self.rows.iter().map(|r| {
            vec![
                r.precision.name().to_string(),
                format!("{}×{}", r.k, r.n),
                format!("{:.2}", r.weight_bytes as f64 / 1e6),
                format!("{:.1}", r.median_us),
                format!("{:.2}", r.gbps),
                format!("{:.3}", r.ratio_to_copy),
            ]
        });
        markdown_table(&head, &["precision", "k × n", "weight MB", "µs", "GB/s", "of copy"], rows)
    }

    fn table(&self) -> String {
        let mut s = format!(
            "adapter: {} ({}, {})  matvec: {}  matmul: {}  timer: {}  reps: {}\ncopy kernel: {:.2} GB/s (read + write, {} MB)\n",
            self.adapter.name,
            self.adapter.backend,
            self.adapter.device_type,
            self.adapter.matvec_kernel,
            self.adapter.matmul_kernel,
            self.timer,
            self.reps,
            self.copy_gbps,
            self.copy_bytes / 1_000_000
        );
        s += &format!("{:<6} {:>11} {:>12} {:>12} {:>9} {:>8}\n", "prec", "k x n", "weight MB", "median us", "GB/s", "/copy");
        for r in &self.rows {
            s += &format!(
                "{:<6} {:>11} {:>12.2} {:>12.1} {:>9.2} {:>8.3}\n",
                r.precision.name(),
                format!("{}x{}", r.k, r.n),
                r.weight_bytes as f64 / 1e6,
                r.median_us,
                r.gbps,
                r.ratio_to_copy
            );
        }
        if let Some((k, n)) = BENCH_SHAPES.last().copied() {
            if let Some(r) = self.time_ratio(Precision::Int4, Precision::Fp16, k, n) {
                s += &format!("int4 time / fp16 time at {k}x{n}: {r:.3}\n");
            }
        }
        s
    }
}

/// Where the time of one decode step goes, per kernel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelTime {
    pub kernel: String,
    pub calls: usize,
    pub ms: f64,
}

/// One decode step of a loaded model, measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecodeProfile {
    pub plan: crate::plan::Plan,
    pub kv: crate::KvPrecision,
    /// Position of the profiled token (its KV cache length).
    pub position: usize,
    /// GPU time per kernel from timestamp queries, slowest first (empty without them).
    pub kernels: Vec<KernelTime>,
    /// Sum of the kernels' GPU time (None without timestamp queries).
    pub gpu_ms: Option<f64>,
    /// Wall-clock time of a whole step, logits read back included (median of a few).
    pub wall_ms: f64,
    /// Wall-clock time of the step that was timed kernel by kernel (one pass and two timestamps
    /// per kernel, the greedy pick included, timestamps read back): the kernels' GPU time is a
    /// part of it (None without timestamp queries).
    #[serde(default)]
    pub timed_wall_ms: Option<f64>,
    /// Bytes the step reads (weights, norms, keys and values).
    pub bytes_per_token: u64,
    /// The copy kernel's bandwidth on this adapter, GB/s.
    pub copy_gbps: f64,
}

impl DecodeProfile {
    /// Weight and cache bytes read per second of wall time, GB/s.
    pub fn achieved_gbps(&self) -> f64 {
        self.bytes_per_token as f64 / (self.wall_ms * 1e-3).max(1e-12) / 1e9
    }

    /// What limits this step: its wall time, its kernels' GPU time and its bytes against the
    /// copy roofline.
    pub fn limit(&self) -> Option<Limit> {
        Limit::read(self.bytes_per_token, self.wall_ms, self.gpu_ms, self.copy_gbps)
    }
}

/// Sum per-pass timings by kernel, slowest first.
pub fn by_kernel(passes: &[(crate::gpu::Kernel, f64)]) -> Vec<KernelTime> {
    let mut out: Vec<KernelTime> = Vec::new();
    for (k, ms) in passes {
        let name = k.name();
        match out.iter_mut().find(|t| t.kernel == name) {
            Some(t) => {
                t.calls += 1;
                t.ms += ms;
            }
            None => out.push(KernelTime { kernel: name, calls: 1, ms: *ms }),
        }
    }
    out.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    out
}

fn one() -> usize {
    1
}

fn f32_name() -> String {
    "f32".into()
}

impl ModelBenchRow {
    /// `int4`, or `int4 a8` with 8-bit activations.
    pub fn label(&self) -> String {
        match self.activations.as_str() {
            "f32" => self.precision.name().to_string(),
            _ => format!("{} a8", self.precision.name()),
        }
    }
}

/// One precision (and activations' format) of a model benchmark.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelBenchRow {
    pub precision: Precision,
    /// Medians of the runs below.
    pub prefill_tokens_per_second: f64,
    pub decode_tokens_per_second: f64,
    /// Every run's figure, in run order.
    #[serde(default)]
    pub prefill_runs: Vec<f64>,
    #[serde(default)]
    pub decode_runs: Vec<f64>,
    /// Bytes a decode step reads (weights, norms, the KV cache at the middle position).
    pub bytes_per_token: u64,
    /// `bytes_per_token` × decode tokens per second.
    pub gbps: f64,
    /// `gbps` / the copy kernel's GB/s: the share of the memory roofline decode reaches.
    pub roofline_ratio: f64,
    pub dispatches_per_token: usize,
    /// The activations' format in the matrix products ("f32": weights-only quantization).
    #[serde(default = "f32_name")]
    pub activations: String,
    /// Waits for the GPU to read tokens back, per decode token (1 when each token is read before
    /// the next step is recorded; a chained decode reads a batch at a time).
    #[serde(default)]
    pub round_trips_per_token: f64,
    /// Milliseconds of a decode token's wall time in which the GPU is not running its step
    /// (recording, submitting, waiting, reading back): wall ms per token minus the GPU ms of a
    /// step, timed whole by a timestamp before and after it (median of the runs). None without
    /// timestamp queries.
    #[serde(default)]
    pub host_ms_per_token: Option<f64>,
    /// Every run's `host_ms_per_token`, in run order.
    #[serde(default)]
    pub host_ms_runs: Vec<f64>,
    /// GPU objects created per decode step (must be 0).
    pub buffers_per_token: f64,
    pub bind_groups_per_token: f64,
    /// GPU time of one decode step by kernel (timestamp queries), largest first.
    pub kernels: Vec<KernelTime>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelBench {
    pub adapter: AdapterSummary,
    pub model: String,
    pub prompt_tokens: usize,
    pub decode_tokens: usize,
    /// The position decode started at ([`BenchSettings::context`], or the prompt's length).
    #[serde(default)]
    pub context: usize,
    /// The KV cache's format.
    #[serde(default)]
    pub kv: String,
    /// How many times every precision ran (taking turns).
    #[serde(default = "one")]
    pub repeats: usize,
    /// How many decode steps ran ahead of the tokens read back (1: each token was read before
    /// the next step was recorded).
    #[serde(default = "one")]
    pub chain: usize,
    /// The prompt's token ids ([`prompt_ids`] or [`text_prompt`]).
    pub prompt: Vec<u32>,
    /// The prompt as text when it came from the model's tokenizer ([`text_prompt`]), so a peer
    /// runtime can read the same prompt.
    pub prompt_text: Option<String>,
    pub copy_gbps: f64,
    pub rows: Vec<ModelBenchRow>,
}

/// What a model benchmark runs: prefill `prompt_tokens`, then decode `decode_tokens` greedily, at
/// each of `precisions`, `repeats` times over (the precisions take turns, so a slow spell of the
/// machine falls on all of them rather than on one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchSettings {
    pub precisions: Vec<Precision>,
    pub prompt_tokens: usize,
    pub decode_tokens: usize,
    pub repeats: usize,
    /// The position decode starts at: the KV cache's length then. The positions before the timed
    /// prompt are filled first, untimed, in slices of [`FILL_SLICE`] tokens; at most
    /// `prompt_tokens`, decode starts right after the prompt.
    #[serde(default)]
    pub context: usize,
    /// The KV cache's format (None: the backend's own).
    #[serde(default)]
    pub kv: Option<crate::KvPrecision>,
    /// The activations' formats, each run at every precision that has it ([`Activations`]:
    /// 8-bit activations only at INT8 and INT4). Empty: f32.
    #[serde(default)]
    pub activations: Vec<crate::Activations>,
    /// How many decode steps may run ahead of the tokens read back (None: the backend's own,
    /// [`crate::model::gpu::CHAIN_AHEAD`]; 1: every token read before the next step).
    #[serde(default)]
    pub chain: Option<usize>,
}

/// How many tokens at a time a long context is filled with before the timed prompt: a slice's
/// attention scores (heads × slice × context) stay well inside one binding at 8k tokens.
pub const FILL_SLICE: usize = 256;

impl BenchSettings {
    /// The context a backend needs for these settings (warm-up included).
    pub fn n_ctx(&self) -> usize {
        self.context.max(self.prompt_tokens) + self.decode_tokens + 2
    }
}

/// A measurement over repeated runs: its median and range.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

impl Spread {
    /// None for no runs.
    pub fn of(v: &[f64]) -> Option<Spread> {
        let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        (!finite.is_empty()).then(|| Spread {
            median: crate::util::median(&finite),
            min: finite.iter().copied().fold(f64::INFINITY, f64::min),
            max: finite.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            runs: finite.len(),
        })
    }

    /// `1.40× (median of 3 runs, 1.27–1.54×)`, or `1.40× (one run)`, with `unit` after each number.
    pub fn describe(&self, decimals: usize, unit: &str) -> String {
        format!("{:.*}{unit}{}", decimals, self.median, self.range_phrase(decimals, unit))
    }

    /// What [`Spread::describe`] says after the median: ` (median of 3 runs, 1.27–1.54×)`.
    pub fn range_phrase(&self, decimals: usize, unit: &str) -> String {
        match self.range(decimals) {
            Some(r) => format!(" (median of {} runs, {r}{unit})", self.runs),
            None => " (one run)".into(),
        }
    }

    /// `1.27–1.54`: lowest to highest, for two runs or more.
    pub fn range(&self, decimals: usize) -> Option<String> {
        (self.runs > 1).then(|| format!("{:.*}–{:.*}", decimals, self.min, decimals, self.max))
    }
}

/// Prefill and decode at each precision ([`BenchSettings`]): tokens per second (median and every
/// run), bytes and GB/s, the roofline ratio against the copy kernel, dispatches and GPU objects
/// created per decode step, and one decode step's GPU time by kernel. Every pipeline is compiled
/// and run once before anything is timed. One backend is loaded and switched from precision to
/// precision (as the page does).
pub async fn model(gpu: &Gpu, g: &crate::gguf::Gguf<'_>, name: &str, settings: &BenchSettings) -> Result<ModelBench> {
    let first = *settings.precisions.first().ok_or_else(|| Error::Usage("no precision to benchmark".into()))?;
    let mut b = crate::model::gpu::GpuBackend::load(gpu, g, first, settings.n_ctx())?;
    if let Some(kv) = settings.kv {
        b.set_kv(g, kv)?;
    }
    let tok = crate::tokenizer::Tokenizer::from_gguf(g).ok();
    let prompt = bench_prompt(tok.as_ref(), b.cfg.vocab, settings.prompt_tokens);
    // The copy yardstick over as many bytes as the first precision's decode step reads.
    let copy = copy_bandwidth(gpu, roofline_bytes(gpu, b.bytes_per_token(0)), 10).await?.0;
    model_on(&mut b, g, name, settings, prompt, copy, |_| true).await
}

/// How many bytes the copy yardstick moves for a step that reads `step_bytes`: as many, within a
/// binding and [`ROOFLINE_MAX_BYTES`].
pub fn roofline_bytes(gpu: &Gpu, step_bytes: u64) -> u64 {
    step_bytes.min(gpu.binding_limit()).min(ROOFLINE_MAX_BYTES).max(1 << 20)
}

/// The most the copy yardstick moves: past any cache, and small beside a loaded model (it needs
/// twice this while it runs).
pub const ROOFLINE_MAX_BYTES: u64 = 64 << 20;

/// What the benchmark's text prompt is cut from (repeated as needed).
const PROMPT_TEXT: &str = "The history of the bicycle begins in the early nineteenth century, when inventors in \
    Europe tried to build a machine that a person could ride without a horse. The first designs had no \
    pedals: riders pushed along the ground with their feet. Pedals, chains, air-filled tyres and gears came \
    later, each one making the machine faster, safer or more comfortable. ";

/// The benchmark's prompt of `n` tokens: English text ([`text_prompt`]) where the model's
/// tokenizer can make it, else [`prompt_ids`] (a bare shape's stand-in vocabulary).
pub fn bench_prompt(tok: Option<&crate::tokenizer::Tokenizer>, vocab: usize, n: usize) -> (Vec<u32>, Option<String>) {
    match tok.and_then(|t| text_prompt(t, n)) {
        Some((ids, text)) => (ids, Some(text)),
        None => (prompt_ids(vocab, n), None),
    }
}

/// A prompt of exactly `n` tokens of English text for `tok`: the ids (with the model's BOS when it
/// has one) and the text they decode to, which a peer runtime tokenizes back to the same ids; None
/// when the tokenizer makes fewer tokens of it.
pub fn text_prompt(tok: &crate::tokenizer::Tokenizer, n: usize) -> Option<(Vec<u32>, String)> {
    let mut text = String::from(PROMPT_TEXT);
    let mut ids = tok.encode_with_bos(&text, false);
    // Each repetition adds tokens (a tokenizer that makes none gives a shorter prompt).
    for _ in 0..n {
        if ids.len() >= n {
            break;
        }
        text.push_str(PROMPT_TEXT);
        ids = tok.encode_with_bos(&text, false);
    }
    if ids.len() < n {
        return None;
    }
    ids.truncate(n);
    let body: Vec<u32> = ids.iter().copied().filter(|&id| Some(id) != tok.bos).collect();
    Some((ids, tok.decode(&body)))
}

/// Decode speed as the context grows, per KV cache format: the speed-vs-context chart of the
/// page's speed panel (`lowbit bench model --context N --kv K` measures one point natively).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextSweep {
    /// The weights' plan, the same for every point.
    pub plan: crate::plan::Plan,
    /// Tokens decoded at each point (timed from the second).
    pub decode_tokens: usize,
    pub rows: Vec<ContextSweepRow>,
}

/// One KV format's points, shortest context first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextSweepRow {
    pub kv: crate::KvPrecision,
    pub points: Vec<ContextPoint>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContextPoint {
    /// The KV cache's length when the timed decode started.
    pub context: usize,
    pub decode_tokens_per_second: f64,
}

impl ContextSweepRow {
    /// Decode speed at the longest context over that at the shortest.
    pub fn kept(&self) -> Option<f64> {
        let (first, last) = (self.points.first()?, self.points.last()?);
        (self.points.len() > 1 && first.decode_tokens_per_second > 0.0).then(|| last.decode_tokens_per_second / first.decode_tokens_per_second)
    }
}

/// The longest context a sweep measures at: the 4k (a longer fill takes minutes on a
/// CPU adapter for every format ticked).
pub const SWEEP_MAX: usize = 4096;

/// The contexts a sweep of `decode_tokens` measures at in a cache of `n_ctx` tokens: 256, 1k,
/// 2k and 4k while the decode after them fits, then the fullest the cache allows when 4k does
/// not fit (2,030 in a cache of 2,048); in a cache too small for two of those, an eighth, a
/// quarter and a half of it.
pub fn sweep_contexts(n_ctx: usize, decode_tokens: usize) -> Vec<usize> {
    let fits = |c: &usize| *c > 0 && c + decode_tokens + 2 <= n_ctx;
    let mut standard: Vec<usize> = [256, 1024, 2048, SWEEP_MAX].into_iter().filter(fits).collect();
    let fullest = n_ctx.saturating_sub(decode_tokens + 2).min(SWEEP_MAX);
    if standard.last().is_some_and(|&l| fullest >= l + l / 2) {
        standard.push(fullest);
    }
    if standard.len() >= 2 {
        return standard;
    }
    let mut small: Vec<usize> = [n_ctx / 8, n_ctx / 4, n_ctx / 2].into_iter().filter(fits).collect();
    small.dedup_by(|b, a| *b < *a + decode_tokens.max(2) + 6);
    small
}

/// Why a sweep of `kvs` formats at `contexts` cannot run in a cache of `n_ctx` tokens, if so.
pub fn sweep_unfit(kvs: usize, contexts: &[usize], decode_tokens: usize, n_ctx: usize) -> Option<String> {
    let decode_tokens = decode_tokens.max(2);
    let spaced = contexts.windows(2).all(|w| w[1] >= w[0] + decode_tokens + 6);
    (kvs == 0 || contexts.is_empty() || !spaced || contexts[contexts.len() - 1] + decode_tokens + 2 > n_ctx).then(|| {
        format!(
            "a context sweep needs a KV format and contexts in ascending order, {} or more apart, the last with its {decode_tokens} decoded tokens within the context of {n_ctx}",
            decode_tokens + 6
        )
    })
}

/// Decode tok/s at each of `contexts` (ascending, at least `decode_tokens` + 6 apart) for each
/// of `kvs`, on a loaded backend at its plan: per format, the cache is filled a slice at a time
/// (untimed) up to each context in turn and `decode_tokens` are decoded greedily there, timed
/// from the second. Leaves the last format set and the cache overwritten (the session restores
/// both); `on_step` hears of every step and ends the run with [`Error::Cancelled`] when it
/// answers false.
pub async fn context_sweep(
    b: &mut crate::model::gpu::GpuBackend,
    g: &crate::gguf::Gguf<'_>,
    kvs: &[crate::KvPrecision],
    contexts: &[usize],
    decode_tokens: usize,
    mut on_step: impl FnMut(crate::session::RunStep) -> bool,
) -> Result<ContextSweep> {
    use crate::model::{forward, Backend};
    let cfg = b.cfg.clone();
    let decode_tokens = decode_tokens.max(2);
    if let Some(why) = sweep_unfit(kvs.len(), contexts, decode_tokens, b.n_ctx) {
        return Err(Error::Usage(why));
    }
    let ids = prompt_ids(cfg.vocab, FILL_SLICE);
    let round = contexts.len();
    let mut steps = Steps { on_step: &mut on_step, done: 0, total: kvs.len() * round, round, what: String::new() };
    let mut rows = Vec::new();
    for &kv in kvs {
        b.set_kv(g, kv)?;
        let mut points = Vec::new();
        // Warm-up at the start of the cache: every kernel runs once; the fill overwrites it.
        let l = forward(&cfg, b, &ids[..4], 0, false)?;
        let mut next = b.argmax(&l).await?;
        let mut pos = 0;
        for &c in contexts {
            steps.next(format!("{kv} KV cache: filling to {c} tokens, then decoding {decode_tokens}"))?;
            next = fill_cache(&cfg, b, &ids, pos, c, &mut steps).await?.unwrap_or(next);
            pos = c;
            let mut t0 = now_ms();
            for token in 0..decode_tokens {
                if token == 1 {
                    t0 = now_ms();
                }
                let l = forward(&cfg, b, &[next], pos, false)?;
                next = b.argmax(&l).await?;
                pos += 1;
            }
            let secs = (now_ms() - t0) / 1e3;
            points.push(ContextPoint { context: c, decode_tokens_per_second: (decode_tokens - 1) as f64 / secs.max(1e-9) });
        }
        rows.push(ContextSweepRow { kv, points });
    }
    Ok(ContextSweep { plan: b.plan, decode_tokens, rows })
}

/// Fill the cache from position `from` up to `to`, untimed, [`FILL_SLICE`] tokens a step, with
/// `ids` repeated by position; Cancel is heard after every slice. The last slice's greedy token,
/// if there was a slice.
async fn fill_cache<F: FnMut(crate::session::RunStep) -> bool>(
    cfg: &crate::model::Config,
    b: &mut crate::model::gpu::GpuBackend,
    ids: &[u32],
    from: usize,
    to: usize,
    steps: &mut Steps<'_, F>,
) -> Result<Option<u32>> {
    use crate::model::{forward, Backend};
    let (mut at, mut next) = (from, None);
    while at < to {
        let n = FILL_SLICE.min(to - at);
        let slice: Vec<u32> = (at..at + n).map(|i| ids[i % ids.len()]).collect();
        let l = forward(cfg, b, &slice, at, false)?;
        next = Some(b.argmax(&l).await?);
        at += n;
        steps.again()?;
    }
    Ok(next)
}

/// The benchmark's prompt: `n` token ids spread over the vocabulary (the same on every run).
pub fn prompt_ids(vocab: usize, n: usize) -> Vec<u32> {
    (0..n).map(|i| ((i * 7919 + 13) % vocab) as u32).collect()
}

/// [`model`] on a loaded backend, whose precision it switches (and leaves at the last one) and
/// whose KV cache it overwrites; `copy_gbps` is the roofline its rows are compared with.
/// `on_step` hears of every step before it runs and ends the run with [`Error::Cancelled`] when
/// it answers false.
pub async fn model_on(
    b: &mut crate::model::gpu::GpuBackend,
    g: &crate::gguf::Gguf<'_>,
    name: &str,
    settings: &BenchSettings,
    prompt: (Vec<u32>, Option<String>),
    copy_gbps: f64,
    on_step: impl FnMut(crate::session::RunStep) -> bool,
) -> Result<ModelBench> {
    let chain_was = b.chain;
    if let Some(c) = settings.chain {
        b.chain = c.max(1);
    }
    let r = model_at_chain(b, g, name, settings, prompt, copy_gbps, on_step).await;
    b.chain = chain_was;
    r
}

/// [`model_on`] at the backend's chain length.
async fn model_at_chain(
    b: &mut crate::model::gpu::GpuBackend,
    g: &crate::gguf::Gguf<'_>,
    name: &str,
    settings: &BenchSettings,
    (prompt, prompt_text): (Vec<u32>, Option<String>),
    copy_gbps: f64,
    mut on_step: impl FnMut(crate::session::RunStep) -> bool,
) -> Result<ModelBench> {
    use crate::model::{forward, Backend};
    let (precisions, decode_tokens, repeats) = (&settings.precisions, settings.decode_tokens, settings.repeats.max(1));
    let prompt_tokens = prompt.len();
    let gpu = b.gpu.clone();
    let cfg = b.cfg.clone();
    let n_ctx = b.n_ctx;
    // The positions filled before the timed prompt, and where decode starts.
    let fill = settings.context.saturating_sub(prompt_tokens);
    let start = fill + prompt_tokens;
    if precisions.is_empty() || prompt_tokens == 0 || decode_tokens == 0 || start + decode_tokens + 2 > n_ctx {
        return Err(Error::Usage(format!(
            "the benchmark needs a precision, and 1 or more prompt and decode tokens, {} in all with 2 of warm-up, within the context of {n_ctx}",
            start + decode_tokens + 2
        )));
    }
    let mut rows: Vec<ModelBenchRow> = Vec::new();
    let mut greedy = crate::sampler::Sampler::new(crate::sampler::SamplerConfig {
        temperature: 0.0,
        ..Default::default()
    });
    // Every precision with every activations' format it has.
    let acts = if settings.activations.is_empty() { vec![crate::Activations::F32] } else { settings.activations.clone() };
    let combos: Vec<(Precision, crate::Activations)> =
        precisions.iter().flat_map(|&p| acts.iter().filter(move |a| **a == crate::Activations::F32 || p.int_dot()).map(move |&a| (p, a))).collect();
    if combos.is_empty() {
        return Err(Error::Usage("8-bit activations run at INT8 and INT4 only".into()));
    }
    // Three steps per precision and run: switch and warm up, read the prompt, decode.
    let round = combos.len() * 3;
    let mut steps = Steps { on_step: &mut on_step, done: 0, total: repeats * round, round, what: String::new() };
    for run in 0..repeats {
        for (i, &(p, act)) in combos.iter().enumerate() {
            let of = if repeats > 1 { format!("run {} of {repeats}: ", run + 1) } else { String::new() };
            let label = match act {
                crate::Activations::F32 => p.name().to_uppercase(),
                a => format!("{} with {a} activations", p.name().to_uppercase()),
            };
            steps.next(format!("{of}switching to {label}"))?;
            b.set_precision(g, p)?;
            b.set_activations(act).await?;
            for k in b.kernels() {
                gpu.pipeline(k);
            }
            // Warm-up: a short prefill and a short decode run every kernel once and make the
            // decode's buffers.
            let l = forward(&cfg, b, &prompt[..prompt_tokens.min(4)], 0, false)?;
            let mut warm: Vec<u32> = prompt[..prompt_tokens.min(4)].to_vec();
            crate::model::decode(&cfg, b, l, &mut warm, 3, &mut greedy, |_| true).await?;
            // A long context: the prompt's tokens over and over.
            fill_cache(&cfg, b, &prompt, 0, fill, &mut steps).await?;
            steps.next(format!("{of}{label}, reading {prompt_tokens} prompt tokens"))?;
            let t0 = now_ms();
            let l = forward(&cfg, b, &prompt, fill, false)?;
            let next = b.argmax(&l).await?;
            let prefill_s = (now_ms() - t0) / 1e3;
            steps.next(format!("{of}{label}, writing {decode_tokens} tokens"))?;
            // Greedy picks read only the history's length: the positions before `start` count.
            let mut history = vec![0u32; start];
            history.push(next);
            // Every step timed whole on the GPU too (two timestamps each): the rest of a token's
            // wall time is the host's.
            b.time_steps(decode_tokens);
            let (created0, t1) = (gpu.created(), now_ms());
            let l = forward(&cfg, b, &[next], start, false)?;
            let mut shown = 0;
            let mut cancelled = false;
            let d =
                crate::model::decode(&cfg, b, l, &mut history, decode_tokens, &mut greedy, |_| {
                    shown += 1;
                    // A long decode hears Cancel too.
                    cancelled |= shown % 16 == 0 && steps.again().is_err();
                    !cancelled
                })
                .await?;
            if cancelled {
                return Err(Error::Cancelled);
            }
            let pos = start + 1 + d.fed;
            // Every decode step is timed (the first pick's read-back included).
            let timed = decode_tokens as f64;
            let decode_s = (now_ms() - t1) / 1e3;
            let trips = d.round_trips as f64 / timed;
            let created = gpu.created();
            let host_ms = b.step_times().await?.filter(|ms| !ms.is_empty()).map(|ms| {
                let gpu_ms = ms.iter().sum::<f64>() / ms.len() as f64;
                (decode_s * 1e3 / timed - gpu_ms).max(0.0)
            });
            let prefill_tps = prompt_tokens as f64 / prefill_s.max(1e-9);
            let decode_tps = timed / decode_s.max(1e-9);
            let (buffers, bind_groups) = ((created.buffers - created0.buffers) as f64 / timed, (created.bind_groups - created0.bind_groups) as f64 / timed);
            if run == 0 {
                let bytes = b.bytes_per_token(start + decode_tokens / 2);
                rows.push(ModelBenchRow {
                    precision: p,
                    prefill_tokens_per_second: 0.0,
                    decode_tokens_per_second: 0.0,
                    prefill_runs: vec![],
                    decode_runs: vec![],
                    bytes_per_token: bytes,
                    gbps: 0.0,
                    roofline_ratio: 0.0,
                    dispatches_per_token: b.dispatches_per_token(),
                    activations: act.name().to_string(),
                    round_trips_per_token: 0.0,
                    host_ms_per_token: None,
                    host_ms_runs: vec![],
                    buffers_per_token: 0.0,
                    bind_groups_per_token: 0.0,
                    kernels: vec![],
                });
            }
            let row = &mut rows[i];
            row.prefill_runs.push(prefill_tps);
            row.decode_runs.push(decode_tps);
            // What any run made is what the row says (every run must make nothing).
            row.buffers_per_token = row.buffers_per_token.max(buffers);
            row.bind_groups_per_token = row.bind_groups_per_token.max(bind_groups);
            row.round_trips_per_token = row.round_trips_per_token.max(trips);
            row.host_ms_runs.extend(host_ms);
            if run + 1 == repeats {
                row.kernels = b.profile_step(next, pos.min(n_ctx - 1)).await?.as_deref().map(by_kernel).unwrap_or_default();
            }
        }
    }
    for r in &mut rows {
        r.prefill_tokens_per_second = crate::util::median(&r.prefill_runs);
        r.decode_tokens_per_second = crate::util::median(&r.decode_runs);
        r.host_ms_per_token =
            (!r.host_ms_runs.is_empty()).then(|| crate::util::median(&r.host_ms_runs));
        r.gbps = r.bytes_per_token as f64 * r.decode_tokens_per_second / 1e9;
        r.roofline_ratio = r.gbps / copy_gbps.max(1e-9);
    }
    gpu.check()?;
    Ok(ModelBench {
        adapter: gpu.info.clone(),
        model: name.to_string(),
        prompt_tokens,
        decode_tokens,
        context: start,
        kv: b.kv.name().to_string(),
        repeats,
        chain: b.chain,
        prompt,
        prompt_text,
        copy_gbps,
        rows,
    })
}

/// `1.95 (1.80–2.01)` for several runs, `1.95` for one.
fn with_range(median: f64, runs: &[f64], decimals: usize) -> String {
    match Spread::of(runs).and_then(|s| s.range(decimals)) {
        Some(r) => format!("{median:.decimals$} ({r})"),
        None => format!("{median:.decimals$}"),
    }
}

/// A benchmark's steps as its `on_step` hears them: each announced before it runs, and asked
/// again within a long one, so Cancel is heard there too.
struct Steps<'f, F: FnMut(crate::session::RunStep) -> bool> {
    on_step: &'f mut F,
    done: usize,
    total: usize,
    /// Steps in one round of every precision: the pace is known after one.
    round: usize,
    what: String,
}

impl<F: FnMut(crate::session::RunStep) -> bool> Steps<'_, F> {
    /// Announce the next step; Cancel (false) ends the run.
    fn next(&mut self, what: String) -> Result<()> {
        self.what = what;
        self.done += 1;
        self.again()
    }

    /// Announce the step running again (nothing counted).
    fn again(&mut self) -> Result<()> {
        let step = crate::session::RunStep { done: self.done - 1, total: self.total, what: self.what.clone(), settle: self.round };
        if (self.on_step)(step) { Ok(()) } else { Err(Error::Cancelled) }
    }
}

impl ModelBench {
    /// How decode read its tokens back, in words.
    pub fn chain_phrase(&self) -> String {
        match self.chain {
            0 | 1 => "each token read back before the next step".into(),
            n => format!("tokens read back a batch at a time, up to {n} steps ahead"),
        }
    }

    /// What each run did: the prompt, the decode and where it started, the KV cache's format,
    /// how the tokens were read back.
    fn workload(&self) -> String {
        format!(
            "prefill {} tokens, decode {} tokens greedily from position {} ({} KV cache; {})",
            self.prompt_tokens,
            self.decode_tokens,
            self.context,
            self.kv,
            self.chain_phrase()
        )
    }

    /// `median of 3 runs` or `one run`.
    pub fn runs_phrase(&self) -> String {
        if self.repeats > 1 { format!("median (and range) of {} runs, the precisions taking turns", self.repeats) } else { "one run".into() }
    }

    /// The row of precision `p` with f32 activations.
    fn row(&self, p: Precision) -> Option<&ModelBenchRow> {
        self.rows.iter().find(|r| r.precision == p && r.activations == "f32")
    }

    /// INT4 decode with 8-bit activations over INT4 with f32 ones, when both ran (run by run).
    pub fn int4_a8_over_int4(&self) -> Option<Spread> {
        let a8 = self.rows.iter().find(|r| r.precision == Precision::Int4 && r.activations == "int8")?;
        let f = self.row(Precision::Int4)?;
        Spread::of(&a8.decode_runs.iter().zip(&f.decode_runs).map(|(a, b)| a / b.max(1e-12)).collect::<Vec<_>>())
    }

    /// INT4 decode speed over FP16's, when both ran: run by run (the precisions took turns in
    /// each run), its median and range.
    pub fn int4_over_fp16(&self) -> Option<Spread> {
        let (int4, fp16) = (self.row(Precision::Int4)?, self.row(Precision::Fp16)?);
        let ratios: Vec<f64> = int4.decode_runs.iter().zip(&fp16.decode_runs).map(|(a, b)| a / b.max(1e-12)).collect();
        Spread::of(&ratios)
    }

    /// FP16's decode-step bytes over INT4's: how much faster INT4 would be if reading memory were
    /// all a step did.
    pub fn int4_bytes_ratio(&self) -> Option<f64> {
        Some(self.row(Precision::Fp16)?.bytes_per_token as f64 / self.row(Precision::Int4)?.bytes_per_token.max(1) as f64)
    }

    /// What limits decode on this adapter, from the FP16 row (the most bytes per token; else the
    /// first): its wall time per token, its kernels' GPU time and its bytes against the copy
    /// roofline. With the precision it was read at.
    pub fn limit(&self) -> Option<(Precision, Limit)> {
        let r = self.row(Precision::Fp16).or(self.rows.first())?;
        let gpu_ms: f64 = r.kernels.iter().map(|k| k.ms).sum();
        let l = Limit::read(r.bytes_per_token, 1e3 / r.decode_tokens_per_second.max(1e-12), (!r.kernels.is_empty()).then_some(gpu_ms), self.copy_gbps)?;
        Some((r.precision, l))
    }
}

/// What sets the pace of a decode step on this adapter, read from one step's numbers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limit {
    pub kind: LimitKind,
    /// The kernels' GPU time over the step's wall time (None without timestamp queries).
    pub gpu_share: Option<f64>,
    /// The bytes the step reads per second of the kernels' GPU time (or, without timestamps, of
    /// wall time) over the copy kernel's GB/s.
    pub of_copy: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LimitKind {
    /// The GPU waits between kernels more than it works: recording, submitting and reading back.
    Overhead,
    /// The kernels read near the copy kernel's speed: fewer bytes per weight buy speed.
    Memory,
    /// The kernels read well below the copy kernel's speed: their arithmetic (or too little work
    /// at once) sets the pace, so fewer bytes buy less than they would.
    Arithmetic,
    /// Without GPU timers the step reads well below copy speed, and wall time alone cannot say why.
    Unknown,
}

impl Limit {
    /// Read the limit of a step that reads `bytes` in `wall_ms`, `gpu_ms` of it in kernels.
    pub fn read(bytes: u64, wall_ms: f64, gpu_ms: Option<f64>, copy_gbps: f64) -> Option<Limit> {
        if bytes == 0 || !(wall_ms > 0.0) || !(copy_gbps > 0.0) {
            return None;
        }
        let gbps = |ms: f64| bytes as f64 / (ms.max(1e-9) * 1e-3) / 1e9;
        Some(match gpu_ms.filter(|g| *g > 0.0) {
            Some(gpu) => {
                let (share, of_copy) = (gpu / wall_ms, gbps(gpu) / copy_gbps);
                let kind = if share < 0.5 {
                    LimitKind::Overhead
                } else if of_copy >= 0.5 {
                    LimitKind::Memory
                } else {
                    LimitKind::Arithmetic
                };
                Limit { kind, gpu_share: Some(share.min(1.0)), of_copy }
            }
            None => {
                let of_copy = gbps(wall_ms) / copy_gbps;
                Limit { kind: if of_copy >= 0.5 { LimitKind::Memory } else { LimitKind::Unknown }, gpu_share: None, of_copy }
            }
        })
    }

    /// The finding in a sentence, with the numbers it rests on, for a step at `at` (a precision's
    /// name: the finding is about that step).
    pub fn sentence(&self, at: &str) -> String {
        let pct = |f: f64| format!("{:.0} %", 100.0 * f);
        match (self.kind, self.gpu_share) {
            (LimitKind::Overhead, Some(s)) => format!(
                "On this GPU a decode step at {at} is limited by overhead: the kernels run for only {} of a step's wall time, the rest is \
                 recording, submitting and reading back. Fewer bits per weight shorten only the kernels' part.",
                pct(s)
            ),
            (LimitKind::Memory, Some(s)) => format!(
                "On this GPU a decode step at {at} is limited by memory: the kernels run for {} of a step and read the weights at {} of the \
                 copy kernel's speed, so fewer bytes per weight mean more tokens per second.",
                pct(s),
                pct(self.of_copy)
            ),
            (LimitKind::Memory, None) => format!(
                "On this GPU a decode step at {at} is limited by memory: it reads the weights at {} of the copy kernel's speed, so fewer \
                 bytes per weight mean more tokens per second.",
                pct(self.of_copy)
            ),
            (LimitKind::Arithmetic, Some(s)) => format!(
                "On this GPU a decode step at {at} is limited by arithmetic, not memory: the kernels run for {} of a step but read the \
                 weights at only {} of the copy kernel's speed, so fewer bytes per weight buy less speed than they save \
                 memory (unpacking them costs arithmetic too).",
                pct(s),
                pct(self.of_copy)
            ),
            _ => format!(
                "A decode step at {at} reads the weights at {} of the copy kernel's speed. This GPU has no timestamp queries, so wall time \
                 alone cannot say whether arithmetic or overhead is the limit.",
                pct(self.of_copy)
            ),
        }
    }
}

impl Report for ModelBench {
    /// The table as Markdown (README's performance section, `scripts/perf.sh`).
    fn markdown(&self) -> String {
        let head = format!(
            "{}. Model: {}; {}; {}; copy kernel {:.2} GB/s.",
            adapter_line(&self.adapter),
            self.model,
            self.workload(),
            self.runs_phrase(),
            self.copy_gbps
        );
        let header = [
            "precision",
            "prefill tok/s",
            "decode tok/s",
            "MB read/token",
            "GB/s",
            "of copy",
            "dispatches/token",
            "round trips/token",
            "host ms/token",
            "created/token",
        ];
        let rows = self.rows.iter().map(|r| {
            vec![
                r.label(),
                with_range(r.prefill_tokens_per_second, &r.prefill_runs, 1),
                with_range(r.decode_tokens_per_second, &r.decode_runs, 2),
                format!("{:.1}", r.bytes_per_token as f64 / 1e6),
                format!("{:.2}", r.gbps),
                format!("{:.3}", r.roofline_ratio),
                r.dispatches_per_token.to_string(),
                format!("{:.3}", r.round_trips_per_token),
                r.host_ms_per_token
                    .map_or("–".into(), |h| format!("{h:.2}")),
                format!(
                    "{:.0} buffers, {:.0} bind groups",
                    r.buffers_per_token, r.bind_groups_per_token
                ),
            ]
        });
        let mut s = markdown_table(&head, &header, rows);
        if let Some(r) = self.int4_over_fp16() {
            s += &format!("\nINT4 decode ÷ FP16 decode: **{}**\n", r.describe(2, "×"));
        }
        if let Some(r) = self.int4_a8_over_int4() {
            s += &format!("\nINT4 with 8-bit activations ÷ INT4, decode: **{}**\n", r.describe(2, "×"));
        }
        s
    }

    /// Plain-text table.
    fn table(&self) -> String {
        let a = &self.adapter;
        let mut s = format!(
            "adapter: {} ({}, {})  matvec: {}  matmul: {}\nmodel: {}  {}, {}  copy kernel: {:.2} GB/s\n",
            a.name,
            a.backend,
            a.device_type,
            a.matvec_kernel,
            a.matmul_kernel,
            self.model,
            self.workload(),
            self.runs_phrase(),
            self.copy_gbps
        );
        s += &format!(
            "{:<8} {:>22} {:>22} {:>10} {:>8} {:>9} {:>11} {:>8} {:>8} {:>14}\n",
            "prec",
            "prefill t/s",
            "decode t/s",
            "MB/token",
            "GB/s",
            "roofline",
            "dispatches",
            "trips/t",
            "host ms",
            "created/token"
        );
        for r in &self.rows {
            s += &format!(
                "{:<8} {:>22} {:>22} {:>10.1} {:>8.2} {:>9.3} {:>11} {:>8.3} {:>8} {:>14}\n",
                r.label(),
                with_range(r.prefill_tokens_per_second, &r.prefill_runs, 1),
                with_range(r.decode_tokens_per_second, &r.decode_runs, 2),
                r.bytes_per_token as f64 / 1e6,
                r.gbps,
                r.roofline_ratio,
                r.dispatches_per_token,
                r.round_trips_per_token,
                r.host_ms_per_token
                    .map_or("-".into(), |h| format!("{h:.2}")),
                format!("{:.0}+{:.0}", r.buffers_per_token, r.bind_groups_per_token)
            );
        }
        if let (Some(fp16), Some(int4)) = (
            self.rows.iter().find(|r| r.precision == Precision::Fp16),
            self.rows.iter().find(|r| r.precision == Precision::Int4),
        ) {
            s += &format!(
                "int4 decode / fp16 decode: {}   int4 prefill / fp16 prefill: {:.2}\n",
                self.int4_over_fp16().map_or("-".into(), |r| r.describe(2, "")),
                int4.prefill_tokens_per_second / fp16.prefill_tokens_per_second.max(1e-9)
            );
        }
        if let Some(r) = self.int4_a8_over_int4() {
            s += &format!("int4 a8 decode / int4 decode: {}\n", r.describe(2, ""));
        }
        if let Some((p, l)) = self.limit() {
            s += &format!("{}\n", l.sentence(&p.name().to_uppercase()));
        }
        for r in &self.rows {
            let top: Vec<String> = r.kernels.iter().take(5).map(|k| format!("{} {:.2}", k.kernel, k.ms)).collect();
            if !top.is_empty() {
                s += &format!("{} step GPU ms by kernel: {}\n", r.label(), top.join(", "));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spread_is_the_median_and_range_of_its_runs() {
        let s = Spread::of(&[1.54, 1.27, 1.40]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.runs), (1.40, 1.27, 1.54, 3));
        assert_eq!(s.describe(2, "×"), "1.40× (median of 3 runs, 1.27–1.54×)");
        assert_eq!(Spread::of(&[2.0]).unwrap().describe(1, " tok/s"), "2.0 tok/s (one run)");
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[f64::NAN, 3.0]).unwrap().runs, 1);
    }

    #[test]
    fn a_context_sweep_measures_at_the_contexts_that_fit() {
        assert_eq!(sweep_contexts(4096 + 34, 32), vec![256, 1024, 2048, 4096]);
        // 4k does not fit: the fullest the cache allows instead.
        assert_eq!(sweep_contexts(4096, 32), vec![256, 1024, 2048, 4062]);
        assert_eq!(sweep_contexts(2048, 16), vec![256, 1024, 2030]);
        // Not when the fullest is hardly past the last (1,030 after 1,024).
        assert_eq!(sweep_contexts(1048, 16), vec![256, 1024]);
        assert_eq!(sweep_contexts(32768, 16), vec![256, 1024, 2048, 4096]);
        assert_eq!(sweep_contexts(512, 16), vec![256, 494]);
        // Too small for two of those: an eighth, a quarter and a half of the cache.
        assert_eq!(sweep_contexts(300, 16), vec![37, 75, 150]);
        assert_eq!(sweep_contexts(128, 4), vec![16, 32, 64]);
        // Points too close together for the decode between them are left out.
        assert_eq!(sweep_contexts(64, 8), vec![8, 32]);
        assert!(sweep_contexts(8, 8).is_empty());
        let row = ContextSweepRow {
            kv: crate::KvPrecision::Int8,
            points: vec![ContextPoint { context: 256, decode_tokens_per_second: 10.0 }, ContextPoint { context: 4096, decode_tokens_per_second: 4.0 }],
        };
        assert_eq!(row.kept(), Some(0.4));
        assert_eq!(ContextSweepRow { points: row.points[..1].to_vec(), ..row }.kept(), None);
    }

    #[test]
    fn the_limit_is_read_from_the_steps_own_numbers() {
        // 100 MB in a 10 ms step, copy at 20 GB/s: 10 GB/s over wall time.
        let mb = 100_000_000;
        // The kernels run 4 of the 10 ms: the rest is overhead.
        assert_eq!(Limit::read(mb, 10.0, Some(4.0), 20.0).unwrap().kind, LimitKind::Overhead);
        // They run 9 ms, reading at 11.1 GB/s: over half of copy speed, so memory.
        let memory = Limit::read(mb, 10.0, Some(9.0), 20.0).unwrap();
        assert_eq!(memory.kind, LimitKind::Memory);
        assert!((memory.of_copy - 100.0 / 9.0 / 20.0).abs() < 1e-9);
        assert!(memory.sentence("INT4").starts_with("On this GPU a decode step at INT4 is limited by memory"), "{}", memory.sentence("INT4"));
        // At 40 GB/s copy the same kernels read at 28 % of it: arithmetic.
        let arithmetic = Limit::read(mb, 10.0, Some(9.0), 40.0).unwrap();
        assert_eq!(arithmetic.kind, LimitKind::Arithmetic);
        assert!(arithmetic.sentence("FP16").contains("only 28 %"), "{}", arithmetic.sentence("FP16"));
        // Without timers: memory when wall time alone reaches half of copy, else unknown.
        assert_eq!(Limit::read(mb, 10.0, None, 15.0).unwrap().kind, LimitKind::Memory);
        let unknown = Limit::read(mb, 10.0, None, 40.0).unwrap();
        assert_eq!(unknown.kind, LimitKind::Unknown);
        assert!(unknown.sentence("FP16").contains("no timestamp queries"));
        assert_eq!(Limit::read(0, 10.0, None, 40.0), None);
    }
}
