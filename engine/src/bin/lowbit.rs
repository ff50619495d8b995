//! `lowbit` command-line tool. JSON on stdout, errors on stderr with a non-zero exit, never a panic.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use lowbit::chat::{ChatTemplate, Message};
use lowbit::gguf::Gguf;
use lowbit::gpu::Gpu;
use lowbit::model::{self, cpu::CpuBackend, gpu::GpuBackend, Config};
use lowbit::sampler::{Sampler, SamplerConfig};
use lowbit::info::ModelInfo;
use lowbit::method::{calibration, Calibration, Method};
use lowbit::plan::{Plan, Variant};
use lowbit::tokenizer::Tokenizer;
use lowbit::{bench, quality, selftest, Error, Precision, Result};

const USAGE: &str = "usage:
  lowbit info MODEL.gguf
  lowbit tokenize MODEL.gguf --text TEXT
  lowbit perplexity MODEL.gguf --file TEXT_FILE --precision source|fp16|int8|int4|int3|int2 [--backend cpu|gpu] [--max-tokens 1024]
      (scores up to --max-tokens tokens of the text in one context that holds them all)
  lowbit generate MODEL.gguf --prompt TEXT [--chat] [--system TEXT] --precision source|fp16|int8|int4|int3|int2
                  [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--min-p P]
                  [--repeat-penalty R] [--seed S] [--json]
  lowbit compare MODEL.gguf --file TEXT_FILE [--max-tokens 256] [--no-source] [--plans fp16,int8,int4,int4-int4-int8,fp16+kv-int8,int4@gptq]
      (a plan is one precision, or attention-ffn-embeddings precisions; @METHOD picks its method;
       +kv-f16, +kv-int8, +kv-int4, +kv-int3, +kv-int4-rot or +kv-int3-rot stores the KV cache so;
       +act-int8 last gives its INT8 and INT4 matrices 8-bit activations: int4+kv-int8+act-int8)
  perplexity, generate and compare also take
      [--kv f32|f16|int8|int4|int3|int4-rot|int3-rot] (the KV cache; -rot: rotated first; default f32; on the CPU backend, keys and values pass through the format: its model-level reference)
      [--activations f32|int8] (8-bit activations per block of 32, multiplied as integers by INT8 and INT4 matrices; default f32; on the CPU backend every matrix's input passes through 8 bits)
      [--method rtn|search|imatrix|awq|gptq] (how int8/int4 are made; default rtn; a plan's own @METHOD wins)
      [--calib TEXT_FILE] [--calib-tokens 512] (the calibration text of imatrix, awq and gptq; default: the built-in one)
  lowbit quantize MODEL.gguf -o OUT.gguf --precision int8|int4|PLAN [--method …] [--calib FILE] [--calib-tokens N]
      (the weights lowbit runs at that plan, as GGUF: INT4 blocks as Q4_1, INT8 as Q8_0, FP16 as F16)
  lowbit convert IN.gguf OUT.gguf --to f16|q8_0|q4_0
  lowbit convert HF_DIR -o OUT.gguf [--to source|bf16|f16|f32]
      (a Hugging Face checkpoint as the GGUF llama.cpp's converter writes; source keeps its dtype)
  lowbit checkpoint MODEL.gguf -o DIR [--dtype bf16|f16|f32] [--shards N] [--tokenizer-only]
      (the model as a Hugging Face checkpoint: config.json, tokenizer.json, safetensors)
  Every MODEL.gguf may also be a Hugging Face checkpoint directory (config.json, tokenizer.json,
  model.safetensors or shards with model.safetensors.index.json), read as stored.
  lowbit synth BASE.gguf OUT.gguf [--shape tiny|smollm2-135m|smollm2-1.7b|LAYERS:DIM:FFN:HEADS:KV_HEADS] [--seed S]
      (random weights at that shape, with BASE's tokenizer and chat template)
  lowbit bench kernels [--json | --markdown] [--reps N]
  lowbit bench model [MODEL.gguf | --shape smollm2-135m|qwen2.5-0.5b|llama-3.2-1b|smollm2-1.7b|tiny]
                     [--precision fp16,int8,int4,int3,int2] [--prompt-tokens 128] [--tokens 128] [--repeats 3] [--json | --markdown]
                     [--context N] [--kv f32|f16|int8|int4|int3|int4-rot|int3-rot] [--chain N] [--activations f32,int8]
      (--shape: random weights at that model's shape, no file needed; --context: decode from position N,
       the KV cache filled first; --chain: decode steps run ahead of the tokens read back, 1 to read
       every token before the next step; 16 by default; --activations: each at every precision that has it)
  lowbit selftest [--json]";

struct Args {
    positional: Vec<String>,
    flags: BTreeMap<String, Option<String>>,
}

const SWITCHES: [&str; 5] = ["--json", "--chat", "--no-source", "--markdown", "--tokenizer-only"];

impl Args {
    fn parse(raw: &[String]) -> Result<Self> {
        let (mut positional, mut flags) = (Vec::new(), BTreeMap::new());
        let mut it = raw.iter();
        while let Some(a) = it.next() {
            if SWITCHES.contains(&a.as_str()) {
                flags.insert(a.clone(), None);
            } else if a.starts_with("--") || a == "-o" {
                let v = it.next().ok_or_else(|| Error::Usage(format!("{a} needs a value\n{USAGE}")))?;
                flags.insert(a.clone(), Some(v.clone()));
            } else {
                positional.push(a.clone());
            }
        }
        Ok(Args { positional, flags })
    }
    fn has(&self, f: &str) -> bool {
        self.flags.contains_key(f)
    }
    fn get(&self, f: &str) -> Option<&str> {
        self.flags.get(f).and_then(|v| v.as_deref())
    }
    fn num<T: std::str::FromStr>(&self, f: &str, default: T) -> Result<T> {
        match self.get(f) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| Error::Usage(format!("{f} {v}: not a number"))),
        }
    }
    fn model(&self) -> Result<Vec<u8>> {
        read_model(self.positional.get(1).ok_or_else(|| Error::Usage(USAGE.into()))?)
    }
}

/// A GGUF file, or a Hugging Face checkpoint directory converted to GGUF in memory (its
/// matrices as stored: BF16, F16 or F32).
fn read_model(path: &str) -> Result<Vec<u8>> {
    if std::path::Path::new(path).is_dir() {
        return checkpoint_gguf(path, lowbit::hf::OutType::AsStored);
    }
    std::fs::read(path).map_err(|e| Error::Io(format!("{path}: {e}")))
}

/// The checkpoint in folder `dir` as GGUF, its matrices in `to`'s dtype, named after the folder.
fn checkpoint_gguf(dir: &str, to: lowbit::hf::OutType) -> Result<Vec<u8>> {
    let p = std::path::Path::new(dir);
    let name = p.file_name().map_or(dir.to_string(), |n| n.to_string_lossy().into_owned());
    lowbit::hf::to_gguf(&lowbit::hf::read_dir(p)?, &name, to)
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string(v).map_err(|e| Error::Io(e.to_string()))?);
    Ok(())
}

/// Where a precision runs: `source` on the CPU; the GPU precisions on the GPU.
enum Engine {
    Cpu(Box<CpuBackend>),
    Gpu(Box<GpuBackend>),
}

/// `--precision`: `source` (None), one precision, or a mixed plan `ATTENTION-FFN-EMBEDDINGS`,
/// made by `--method` unless it names its own (`int4@gptq`).
/// `--kv f32|f16|int8|int4|int3|int4-rot|int3-rot`: the KV cache format (the GPU's, or the one
/// the CPU reference passes keys and values through).
fn kv_arg(a: &Args) -> Result<Option<lowbit::KvPrecision>> {
    a.get("--kv").map(lowbit::KvPrecision::parse).transpose()
}

/// `--activations f32|int8`: the format of the activations the matrices multiply (8-bit: the
/// GPU's INT8 and INT4 matrices, every matrix of the CPU reference).
fn act_arg(a: &Args) -> Result<Option<lowbit::Activations>> {
    a.get("--activations").map(lowbit::Activations::parse).transpose()
}

fn precision_arg(a: &Args) -> Result<Option<Plan>> {
    match a.get("--precision").unwrap_or("source") {
        "source" => Ok(None),
        p => plan_arg(a, p).map(Some),
    }
}

/// A plan code from the command line, with `--method` applied unless it carries `@METHOD`.
fn plan_arg(a: &Args, code: &str) -> Result<Plan> {
    method_arg(a, code, Plan::parse(code)?)
}

/// `plan` (read from `code`) made by `--method`, unless `code` names its own method or the plan
/// quantizes nothing (FP16 is the same by every method, and stays the one FP16 reference).
fn method_arg(a: &Args, code: &str, plan: Plan) -> Result<Plan> {
    match (code.contains('@'), a.get("--method")) {
        (false, Some(m)) => {
            let m = Method::parse(m)?;
            Ok(if plan.quantized() { plan.with_method(m) } else { plan })
        }
        _ => Ok(plan),
    }
}

/// The calibration activations when some plan's method needs them (a calibrated method, and a
/// tensor it requantizes rather than keeps as stored): `--calib` (or the built-in text), its
/// first `--calib-tokens`, through the model at source precision on the CPU.
fn calibration(a: &Args, g: &Gguf, plans: &[Plan]) -> Result<Option<Arc<Calibration>>> {
    let cfg = Config::from_gguf(g)?;
    let mut needed = false;
    for p in plans {
        needed |= lowbit::model::gpu::Requantizer::new(&cfg, g, *p)?.needs_calibration();
    }
    if !needed {
        return Ok(None);
    }
    let text = match a.get("--calib") {
        Some(path) => std::fs::read_to_string(path).map_err(|e| Error::Io(format!("{path}: {e}")))?,
        None => calibration::TEXT.to_string(),
    };
    let toks = calibration::text_tokens(&Tokenizer::from_gguf(g)?, &text, a.num("--calib-tokens", calibration::DEFAULT_TOKENS)?);
    let c = Calibration::collect(g, &toks)?;
    eprintln!("lowbit: calibrated on {} tokens in {:.1} s", c.tokens, c.seconds);
    Ok(Some(Arc::new(c)))
}

/// `{tokens, seconds}` of a calibration, for the JSON output.
fn calibration_json(c: &Option<Arc<Calibration>>) -> serde_json::Value {
    match c {
        Some(c) => serde_json::json!({ "tokens": c.tokens, "seconds": c.seconds }),
        None => serde_json::Value::Null,
    }
}

async fn engine(a: &Args, g: &Gguf<'_>, gpu: &Option<Gpu>, n_ctx: usize) -> Result<Engine> {
    let precision = precision_arg(a)?;
    let backend = a.get("--backend").unwrap_or(if precision.is_some() { "gpu" } else { "cpu" });
    match (precision, backend) {
        (None, "cpu") => {
            let mut b = CpuBackend::load(g)?;
            if let Some(kv) = kv_arg(a)? {
                b.set_kv(g, kv)?;
            }
            b.activations = act_arg(a)?.unwrap_or_default();
            Ok(Engine::Cpu(Box::new(b)))
        }
        (None, _) => Err(Error::Usage("precision source runs on the CPU backend only".into())),
        (Some(p), "gpu") => {
            let gpu = gpu.as_ref().ok_or(Error::NoAdapter)?;
            let calib = calibration(a, g, &[p])?;
            let mut b = GpuBackend::load_calibrated(gpu, g, p, n_ctx, calib)?;
            if let Some(kv) = kv_arg(a)? {
                b.set_kv(g, kv)?;
            }
            b.set_activations(act_arg(a)?.unwrap_or_default()).await?;
            Ok(Engine::Gpu(Box::new(b)))
        }
        (Some(_), "cpu") => Err(Error::Usage("fp16, int8 and int4 run on the GPU backend (--backend gpu)".into())),
        (_, other) => Err(Error::Usage(format!("unknown backend '{other}' (cpu or gpu)"))),
    }
}

fn needs_gpu(a: &Args) -> Result<bool> {
    Ok(precision_arg(a)?.is_some() && a.get("--backend") != Some("cpu"))
}

fn info(a: &Args) -> Result<()> {
    let bytes = a.model()?;
    let g = Gguf::parse(&bytes)?;
    let tok = Tokenizer::from_gguf(&g).ok();
    let mut out = serde_json::to_value(ModelInfo::from_gguf(&g, bytes.len() as u64)).map_err(|e| Error::Io(e.to_string()))?;
    out["bos"] = serde_json::json!(tok.as_ref().and_then(|t| t.bos));
    out["eos"] = serde_json::json!(tok.as_ref().and_then(|t| t.eos));
    out["add_bos"] = serde_json::json!(tok.as_ref().map(|t| t.add_bos));
    print_json(&out)
}

fn convert(a: &Args) -> Result<()> {
    let input = a.positional.get(1).ok_or_else(|| Error::Usage(USAGE.into()))?;
    let out = a.get("-o").or(a.positional.get(2).map(String::as_str)).ok_or_else(|| Error::Usage(USAGE.into()))?;
    if std::path::Path::new(input).is_dir() {
        // A Hugging Face checkpoint: GGUF as llama.cpp's converter writes it.
        let converted = checkpoint_gguf(input, lowbit::hf::OutType::parse(a.get("--to").unwrap_or("source"))?)?;
        let g = Gguf::parse(&converted)?;
        std::fs::write(out, &converted).map_err(|e| Error::Io(format!("{out}: {e}")))?;
        return print_json(&serde_json::json!({ "output": out, "bytes": converted.len(), "tensors": g.tensors.len() }));
    }
    let bytes = a.model()?;
    let to = lowbit::gguf::ConvertTo::parse(a.get("--to").ok_or_else(|| Error::Usage("--to is required".into()))?)?;
    let g = Gguf::parse(&bytes)?;
    let converted = lowbit::gguf::convert(&g, to)?;
    Gguf::parse(&converted)?; // what we write must read back
    std::fs::write(out, &converted).map_err(|e| Error::Io(format!("{out}: {e}")))?;
    print_json(&serde_json::json!({ "output": out, "bytes": converted.len(), "tensors": g.tensors.len() }))
}

/// `checkpoint`: the model as a Hugging Face checkpoint directory (the suite's stand-in for
/// published checkpoints; `--tokenizer-only` for vocabulary-only GGUFs).
fn checkpoint(a: &Args) -> Result<()> {
    let bytes = a.model()?;
    let out = a.get("-o").ok_or_else(|| Error::Usage(format!("checkpoint needs -o DIR\n{USAGE}")))?;
    let g = Gguf::parse(&bytes)?;
    let files = if a.has("--tokenizer-only") {
        lowbit::hf::tokenizer_files(&g)?
    } else {
        let dtype = match a.get("--dtype").unwrap_or("bf16") {
            "bf16" => lowbit::safetensors::Dtype::BF16,
            "f16" => lowbit::safetensors::Dtype::F16,
            "f32" => lowbit::safetensors::Dtype::F32,
            other => return Err(Error::Usage(format!("--dtype {other}: expected bf16, f16 or f32"))),
        };
        lowbit::hf::from_gguf(&g, dtype, a.num("--shards", 1usize)?)?
    };
    lowbit::hf::write_dir(std::path::Path::new(out), &files)?;
    let names: Vec<&String> = files.keys().collect();
    print_json(&serde_json::json!({ "output": out, "files": names, "bytes": files.values().map(Vec::len).sum::<usize>() }))
}

/// `quantize`: the model at `--precision` (and `--method`) written as GGUF to `-o`.
fn quantize(a: &Args) -> Result<()> {
    let bytes = a.model()?;
    let out = a.get("-o").ok_or_else(|| Error::Usage(format!("quantize needs -o OUT.gguf\n{USAGE}")))?;
    let g = Gguf::parse(&bytes)?;
    let plan = precision_arg(a)?.ok_or_else(|| Error::Usage("quantize needs --precision int8|int4|PLAN".into()))?;
    let calib = calibration(a, &g, &[plan])?;
    let t0 = std::time::Instant::now();
    let written = lowbit::export::export(&g, &plan, calib.as_deref(), |_, _| {})?;
    Gguf::parse(&written)?; // what we write must read back
    std::fs::write(out, &written).map_err(|e| Error::Io(format!("{out}: {e}")))?;
    print_json(&serde_json::json!({
        "output": out,
        "bytes": written.len(),
        "plan": plan.code(),
        "seconds": t0.elapsed().as_secs_f64(),
        "calibration": calibration_json(&calib),
    }))
}

fn synth(a: &Args) -> Result<()> {
    let bytes = a.model()?;
    let out = a.positional.get(2).ok_or_else(|| Error::Usage(USAGE.into()))?;
    let shape = lowbit::synth::Shape::parse(a.get("--shape").unwrap_or("tiny"))?;
    let g = Gguf::parse(&bytes)?;
    let model = lowbit::synth::model(&g, &shape, a.num("--seed", 1u64)?)?;
    let written = Gguf::parse(&model)?; // what we write must read back and load
    let cfg = Config::from_gguf(&written)?;
    std::fs::write(out, &model).map_err(|e| Error::Io(format!("{out}: {e}")))?;
    print_json(&serde_json::json!({ "output": out, "bytes": model.len(), "tensors": written.tensors.len(), "config": cfg }))
}

fn tokenize(a: &Args) -> Result<()> {
    let bytes = a.model()?;
    let g = Gguf::parse(&bytes)?;
    let tok = Tokenizer::from_gguf(&g)?;
    let text = a.get("--text").ok_or_else(|| Error::Usage("--text is required".into()))?;
    print_json(&serde_json::json!({ "ids": tok.encode(text, true) }))
}

/// The tokens of `--file` (BOS per metadata, specials not parsed), cut to `--max-tokens`.
fn text_tokens(a: &Args, g: &Gguf, default_max: usize) -> Result<Vec<u32>> {
    let tok = Tokenizer::from_gguf(g)?;
    let path = a.get("--file").ok_or_else(|| Error::Usage("--file is required".into()))?;
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io(format!("{path}: {e}")))?;
    let mut toks = tok.encode_with_bos(&text, false);
    toks.truncate(a.num("--max-tokens", default_max)?);
    if toks.len() < 2 {
        return Err(Error::Usage("the text has fewer than 2 tokens".into()));
    }
    Ok(toks)
}

async fn perplexity(a: &Args, gpu: &Option<Gpu>) -> Result<()> {
    let bytes = a.model()?;
    let g = Gguf::parse(&bytes)?;
    let toks = text_tokens(a, &g, 1024)?;
    let cfg = Config::from_gguf(&g)?;
    let (r, calib) = match engine(a, &g, gpu, toks.len()).await? {
        Engine::Cpu(mut b) => (model::perplexity(&cfg, b.as_mut(), &toks, 512).await?, None),
        Engine::Gpu(mut b) => (model::perplexity(&cfg, b.as_mut(), &toks, 256).await?, b.calibration().cloned()),
    };
    print_json(&serde_json::json!({
        "ppl": r.ppl,
        "n_tokens": r.n_tokens,
        "argmax": r.argmax,
        "tokens_per_second": r.tokens_per_second,
        "precision": precision_arg(a)?.map_or("source".to_string(), |p| p.code()),
        "kv": kv_arg(a)?.unwrap_or_default().name(),
        "activations": act_arg(a)?.unwrap_or_default().name(),
        "calibration": calibration_json(&calib),
    }))
}

async fn compare(a: &Args, gpu: &Gpu) -> Result<()> {
    let bytes = a.model()?;
    let g = Gguf::parse(&bytes)?;
    let toks = text_tokens(a, &g, 256)?;
    let plans = match a.get("--plans") {
        Some(list) => list
            .split(',')
            .map(|c| {
                let v = Variant::parse(c.trim())?;
                // --kv and --activations for the plans that do not name their own (+kv-…, +act-…).
                let kv = if c.contains("+kv-") { v.kv } else { kv_arg(a)?.unwrap_or(v.kv) };
                let act = if c.contains("+act-") { v.act } else { act_arg(a)?.unwrap_or(v.act) };
                Ok(Variant::new(method_arg(a, c, v.plan)?, kv).with_act(act))
            })
            .collect::<Result<Vec<_>>>()?,
        None => quality::uniform_plans()
            .into_iter()
            .map(|v| Ok(Variant::new(method_arg(a, "", v.plan)?, kv_arg(a)?.unwrap_or(v.kv)).with_act(act_arg(a)?.unwrap_or(v.act))))
            .collect::<Result<_>>()?,
    };
    let calib = calibration(a, &g, &plans.iter().map(|v| v.plan).collect::<Vec<_>>())?;
    let rows = quality::compare(gpu, &g, &toks, 256, !a.has("--no-source"), &plans, calib.clone()).await?;
    print_json(&serde_json::json!({
        "calibration": calibration_json(&calib),
        "n_tokens": toks.len(),
        "source_dtypes": ModelInfo::from_gguf(&g, bytes.len() as u64).source_dtypes,
        "adapter": gpu.info.name,
        "precisions": rows,
    }))
}

async fn generate(a: &Args, gpu: &Option<Gpu>) -> Result<()> {
    let bytes = a.model()?;
    let g = Gguf::parse(&bytes)?;
    let tok = Tokenizer::from_gguf(&g)?;
    let cfg = Config::from_gguf(&g)?;
    let prompt_text = a.get("--prompt").ok_or_else(|| Error::Usage("--prompt is required".into()))?;
    let prompt = if a.has("--chat") {
        let mut msgs = Vec::new();
        if let Some(s) = a.get("--system") {
            msgs.push(Message::new("system", s));
        }
        msgs.push(Message::new("user", prompt_text));
        let template = ChatTemplate::from_gguf(&g, &tok);
        if let Some(why) = &template.fallback {
            eprintln!("lowbit: the file's chat template failed ({why}); using {}", template.builtin);
        }
        if template.fold_system && a.get("--system").is_some() {
            eprintln!("lowbit: the chat template takes no system message; the system prompt opens the user message");
        }
        let text = template.render(&msgs, true)?;
        tok.encode_with_bos(&text, true)
    } else {
        tok.encode_with_bos(prompt_text, true)
    };
    let max_tokens = a.num("--max-tokens", 128usize)?;
    let d = SamplerConfig::default();
    let mut sampler = Sampler::new(SamplerConfig {
        temperature: a.num("--temperature", 0.0f32)?,
        top_k: a.num("--top-k", d.top_k)?,
        top_p: a.num("--top-p", d.top_p)?,
        min_p: a.num("--min-p", d.min_p)?,
        repetition_penalty: a.num("--repeat-penalty", d.repetition_penalty)?,
        repeat_last_n: d.repeat_last_n,
        seed: a.num("--seed", 0u64)?,
    });
    let json = a.has("--json");
    let n_ctx = prompt.len() + max_tokens + 1;
    let on_step = |s: model::Step| {
        if let (model::Step::Text(s), false) = (s, json) {
            print!("{s}");
            let _ = std::io::stdout().flush();
        }
        true
    };
    let whole = model::Prefill::Whole;
    let r = match engine(a, &g, gpu, n_ctx).await? {
        Engine::Cpu(mut b) => model::generate(&cfg, b.as_mut(), &tok, &[], &prompt, max_tokens, &mut sampler, whole, on_step).await?,
        Engine::Gpu(mut b) => model::generate(&cfg, b.as_mut(), &tok, &[], &prompt, max_tokens, &mut sampler, whole, on_step).await?,
    };
    if json {
        print_json(&serde_json::json!({
            "ids": r.ids,
            "text": r.text,
            "prompt_tokens": r.prefill_tokens,
            "prefill_tokens_per_second": r.prefill_tokens_per_second,
            "decode_tokens_per_second": r.decode_tokens_per_second,
            "stopped_at_end_of_turn": r.stopped,
        }))
    } else {
        println!();
        Ok(())
    }
}

fn bench_model(a: &Args) -> Result<()> {
    let precisions: Vec<Precision> = a
        .get("--precision")
        .unwrap_or("fp16,int8,int4")
        .split(',')
        .map(Precision::parse)
        .collect::<Result<_>>()?;
    let settings = bench::BenchSettings {
        precisions,
        prompt_tokens: a.num("--prompt-tokens", 128usize)?.max(1),
        decode_tokens: a.num("--tokens", 128usize)?.max(2),
        repeats: a.num("--repeats", 3usize)?.max(1),
        context: a.num("--context", 0usize)?,
        kv: kv_arg(a)?,
        activations: a.get("--activations").unwrap_or("f32").split(',').map(lowbit::Activations::parse).collect::<Result<_>>()?,
        chain: a
            .get("--chain")
            .map(|_| a.num("--chain", 1usize))
            .transpose()?,
    };
    let (bytes, name) = match (a.get("--shape"), a.positional.get(2)) {
        (Some(shape), None) => {
            let (_, s, vocab) = lowbit::synth::Shape::NAMED
                .into_iter()
                .find(|(n, _, _)| *n == shape)
                .ok_or_else(|| Error::Usage(format!("unknown shape '{shape}'\n{USAGE}")))?;
            // Random weights have no trained context: room for the benchmark's (--context 4096).
            let s = lowbit::synth::Shape { context: s.context.max(settings.n_ctx()), ..s };
            (lowbit::synth::bare(&s, vocab, 1)?, format!("{shape} shape, random weights"))
        }
        (None, Some(path)) => (read_model(path)?, path.clone()),
        _ => return Err(Error::Usage(format!("bench model takes a MODEL.gguf or --shape\n{USAGE}"))),
    };
    let g = Gguf::parse(&bytes)?;
    let gpu = pollster::block_on(Gpu::new())?;
    let report = pollster::block_on(bench::model(&gpu, &g, &name, &settings))?;
    print_report(a, &report)
}

/// A report as JSON (`--json`), Markdown (`--markdown`) or a plain table.
fn print_report(a: &Args, r: &impl bench::Report) -> Result<()> {
    if a.has("--json") {
        return print_json(r);
    }
    print!("{}", if a.has("--markdown") { r.markdown() } else { r.table() });
    Ok(())
}

fn run(raw: &[String]) -> Result<()> {
    let a = Args::parse(raw)?;
    let json = a.has("--json");
    let gpu_if = |need: bool| -> Result<Option<Gpu>> { if need { pollster::block_on(Gpu::new()).map(Some) } else { Ok(None) } };
    match a.positional.first().map(String::as_str) {
        Some("info") => info(&a),
        Some("convert") => convert(&a),
        Some("checkpoint") => checkpoint(&a),
        Some("quantize") => quantize(&a),
        Some("synth") => synth(&a),
        Some("tokenize") => tokenize(&a),
        Some("perplexity") => {
            let gpu = gpu_if(needs_gpu(&a)?)?;
            pollster::block_on(perplexity(&a, &gpu))
        }
        Some("compare") => {
            let gpu = pollster::block_on(Gpu::new())?;
            pollster::block_on(compare(&a, &gpu))
        }
        Some("generate") => {
            let gpu = gpu_if(needs_gpu(&a)?)?;
            pollster::block_on(generate(&a, &gpu))
        }
        Some("bench") if a.positional.get(1).map(String::as_str) == Some("model") => bench_model(&a),
        Some("bench") if a.positional.get(1).map(String::as_str) == Some("kernels") => {
            let gpu = pollster::block_on(Gpu::new())?;
            // Small matrices on big GPUs measure launch latency, not bandwidth: the CLI adds two
            // large ones to the page's shapes.
            let shapes = [&bench::BENCH_SHAPES[..], &[(8192, 8192), (16384, 4096)]].concat();
            let report = pollster::block_on(bench::run(&gpu, &shapes, a.num("--reps", 30u32)?))?;
            print_report(&a, &report)
        }
        Some("selftest") => {
            let gpu = pollster::block_on(Gpu::new())?;
            let cases = selftest::standard_cases(gpu.info.subgroups);
            let rows = pollster::block_on(selftest::run_cases(&gpu, &cases, 1))?;
            if json {
                print_json(&rows)?;
            } else {
                eprintln!("adapter: {} ({})", gpu.info.name, gpu.info.backend);
                print!("{}", selftest::table(&rows));
            }
            if rows.iter().all(|r| r.pass) { Ok(()) } else { Err(Error::Gpu("self-test failed".into())) }
        }
        _ => Err(Error::Usage(USAGE.into())),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lowbit: {e}");
            ExitCode::FAILURE
        }
    }
}
