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

/// One precision of a model benchmark.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelBenchRow {
    pub precision: Precision,
    pub prefill_tokens_per_second: f64,
    pub decode_tokens_per_second: f64,
    /// Bytes a decode step reads (weights, norms, the KV cache at the middle position).
    pub bytes_per_token: u64,
    /// `bytes_per_token` × decode tokens per second.
    pub gbps: f64,
    /// `gbps` / the copy kernel's GB/s: the share of the memory roofline decode reaches.
    pub roofline_ratio: f64,
    pub dispatches_per_token: usize,
    /// GPU objects created per decode step after the first (must be 0).
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
    /// The prompt's token ids ([`prompt_ids`] or [`text_prompt`]).
    pub prompt: Vec<u32>,
    /// The prompt as text when it came from the model's tokenizer ([`text_prompt`]), so a peer
    /// runtime can read the same prompt.
    pub prompt_text: Option<String>,
    pub copy_gbps: f64,
    pub rows: Vec<ModelBenchRow>,
}

/// Prefill `prompt_tokens` tokens, then decode `decode_tokens` greedily, at each precision:
/// tokens per second, bytes and GB/s, the roofline ratio against the copy kernel, dispatches and
/// GPU objects created per decode step, and one decode step's GPU time by kernel. Every pipeline
/// is compiled and run once before anything is timed. One backend is loaded and switched from
/// precision to precision (as the page does).
pub async fn model(
    gpu: &Gpu,
    g: &crate::gguf::Gguf<'_>,
    name: &str,
    precisions: &[Precision],
    prompt_tokens: usize,
    decode_tokens: usize,
) -> Result<ModelBench> {
    let first = *precisions.first().ok_or_else(|| Error::Usage("no precision to benchmark".into()))?;
    let mut b = crate::model::gpu::GpuBackend::load(gpu, g, first, prompt_tokens + decode_tokens + 2)?;
    let tok = crate::tokenizer::Tokenizer::from_gguf(g).ok();
    let prompt = bench_prompt(tok.as_ref(), b.cfg.vocab, prompt_tokens);
    model_on(&mut b, g, name, precisions, prompt, decode_tokens).await
}

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

/// The benchmark's prompt: `n` token ids spread over the vocabulary (the same on every run).
pub fn prompt_ids(vocab: usize, n: usize) -> Vec<u32> {
    (0..n).map(|i| ((i * 7919 + 13) % vocab) as u32).collect()
}

/// [`model`] on a loaded backend, whose precision it switches (and leaves at the last one) and
/// whose KV cache it overwrites.
pub async fn model_on(
    b: &mut crate::model::gpu::GpuBackend,
    g: &crate::gguf::Gguf<'_>,
    name: &str,
    precisions: &[Precision],
    (prompt, prompt_text): (Vec<u32>, Option<String>),
    decode_tokens: usize,
) -> Result<ModelBench> {
    use crate::model::{forward, Backend};
    let prompt_tokens = prompt.len();
    let gpu = b.gpu.clone();
    let cfg = b.cfg.clone();
    let n_ctx = b.n_ctx;
    if prompt_tokens == 0 || decode_tokens == 0 || prompt_tokens + decode_tokens + 2 > n_ctx {
        return Err(Error::Usage(format!(
            "the benchmark needs 1 or more prompt and decode tokens, {} in all with 2 of warm-up, within the context of {n_ctx}",
            prompt_tokens + decode_tokens + 2
        )));
    }
    let mut rows = Vec::new();
    let mut copy_gbps = 0.0;
    for &p in precisions {
        b.set_precision(g, p)?;
        if copy_gbps == 0.0 {
            // The copy yardstick over as many bytes as a decode step reads.
            copy_gbps = copy_bandwidth(&gpu, b.bytes_per_token(0).min(gpu.binding_limit()).min(256 << 20), 10).await?.0;
        }
        for k in b.kernels() {
            gpu.pipeline(k);
        }
        // Warm-up: a short prefill and two decode steps run every kernel once.
        let l = forward(&cfg, b, &prompt[..prompt_tokens.min(4)], 0, false)?;
        let t = b.argmax(&l).await?;
        for pos in 4..6 {
            let l = forward(&cfg, b, &[t], pos, false)?;
            b.argmax(&l).await?;
        }
        let t0 = now_ms();
        let l = forward(&cfg, b, &prompt, 0, false)?;
        let mut next = b.argmax(&l).await?;
        let prefill_s = (now_ms() - t0) / 1e3;
        let mut pos = prompt_tokens;
        let (mut created0, mut t1) = (gpu.created(), now_ms());
        for i in 0..decode_tokens {
            if i == 1 {
                // Objects are counted from the second step on: the first may make its buffers.
                (created0, t1) = (gpu.created(), now_ms());
            }
            let l = forward(&cfg, b, &[next], pos, false)?;
            next = b.argmax(&l).await?;
            pos += 1;
        }
        let steps = decode_tokens.saturating_sub(1).max(1) as f64;
        let decode_s = (now_ms() - t1) / 1e3;
        let created = gpu.created();
        let decode_tps = steps / decode_s.max(1e-9);
        let kernels = b.profile_step(next, pos.min(n_ctx - 1)).await?.as_deref().map(by_kernel).unwrap_or_default();
        let bytes = b.bytes_per_token(prompt_tokens + decode_tokens / 2);
        let gbps = bytes as f64 * decode_tps / 1e9;
        rows.push(ModelBenchRow {
            precision: p,
            prefill_tokens_per_second: prompt_tokens as f64 / prefill_s.max(1e-9),
            decode_tokens_per_second: decode_tps,
            bytes_per_token: bytes,
            gbps,
            roofline_ratio: gbps / copy_gbps.max(1e-9),
            dispatches_per_token: b.dispatches_per_token(),
            buffers_per_token: (created.buffers - created0.buffers) as f64 / steps,
            bind_groups_per_token: (created.bind_groups - created0.bind_groups) as f64 / steps,
            kernels,
        });
    }
    gpu.check()?;
    Ok(ModelBench { adapter: gpu.info.clone(), model: name.to_string(), prompt_tokens, decode_tokens, prompt, prompt_text, copy_gbps, rows })
}

impl ModelBench {
    /// INT4 decode speed over FP16's, when both ran.
    pub fn int4_over_fp16(&self) -> Option<f64> {
        let t = |p| self.rows.iter().find(|r| r.precision == p).map(|r| r.decode_tokens_per_second);
        Some(t(Precision::Int4)? / t(Precision::Fp16)?)
    }
}

impl Report for ModelBench {
    /// The table as Markdown (README's performance section, `scripts/perf.sh`).
    fn markdown(&self) -> String {
        let head = format!(
            "{}. Model: {}; prefill {} tokens, decode {} tokens greedily; copy kernel {:.2} GB/s.",
            adapter_line(&self.adapter),
            self.model,
            self.prompt_tokens,
            self.decode_tokens,
            self.copy_gbps
        );
        let header = ["precision", "prefill tok/s", "decode tok/s", "MB read/token", "GB/s", "of copy", "dispatches/token", "created/token"];
        let rows = self.rows.iter().map(|r| {
            vec![
                r.precision.name().to_string(),
                format!("{:.1}", r.prefill_tokens_per_second),
                format!("{:.2}", r.decode_tokens_per_second),
                format!("{:.1}", r.bytes_per_token as f64 / 1e6),
                format!("{:.2}", r.gbps),
                format!("{:.3}", r.roofline_ratio),
                r.dispatches_per_token.to_string(),
                format!("{:.0} buffers, {:.0} bind groups", r.buffers_per_token, r.bind_groups_per_token),
            ]
        });
        let mut s = markdown_table(&head, &header, rows);
        if let Some(r) = self.int4_over_fp16() {
            s += &format!("\nINT4 decode ÷ FP16 decode: **{r:.2}**\n");
        }
        s
    }

    /// Plain-text table.
    fn table(&self) -> String {
        let a = &self.adapter;
        let mut s = format!(
            "adapter: {} ({}, {})  matvec: {}  matmul: {}\nmodel: {}  prompt {} tokens, decode {} tokens  copy kernel: {:.2} GB/s\n",
            a.name, a.backend, a.device_type, a.matvec_kernel, a.matmul_kernel, self.model, self.prompt_tokens, self.decode_tokens, self.copy_gbps
        );
        s += &format!(
            "{:<6} {:>12} {:>12} {:>10} {:>8} {:>9} {:>11} {:>14}\n",
            "prec", "prefill t/s", "decode t/s", "MB/token", "GB/s", "roofline", "dispatches", "created/token"
        );
        for r in &self.rows {
            s += &format!(
                "{:<6} {:>12.1} {:>12.2} {:>10.1} {:>8.2} {:>9.3} {:>11} {:>14}\n",
                r.precision.name(),
                r.prefill_tokens_per_second,
                r.decode_tokens_per_second,
                r.bytes_per_token as f64 / 1e6,
                r.gbps,
                r.roofline_ratio,
                r.dispatches_per_token,
                format!("{:.0}+{:.0}", r.buffers_per_token, r.bind_groups_per_token)
            );
        }
        if let (Some(fp16), Some(int4)) = (
            self.rows.iter().find(|r| r.precision == Precision::Fp16),
            self.rows.iter().find(|r| r.precision == Precision::Int4),
        ) {
            s += &format!(
                "int4 decode / fp16 decode: {:.2}   int4 prefill / fp16 prefill: {:.2}\n",
                int4.decode_tokens_per_second / fp16.decode_tokens_per_second.max(1e-9),
                int4.prefill_tokens_per_second / fp16.prefill_tokens_per_second.max(1e-9)
            );
        }
        for r in &self.rows {
            let top: Vec<String> = r.kernels.iter().take(5).map(|k| format!("{} {:.2}", k.kernel, k.ms)).collect();
            if !top.is_empty() {
                s += &format!("{} step GPU ms by kernel: {}\n", r.precision.name(), top.join(", "));
            }
        }
        s
    }
}
