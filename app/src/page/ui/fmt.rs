//! How the page writes sizes, counts and precisions.

use std::cell::RefCell;

use lowbit::info::ModelInfo;
use lowbit::plan::Variant;
use lowbit::quality::Scored;
use lowbit::Precision;

pub fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2} B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} M", n as f64 / 1e6),
        n => n.to_string(),
    }
}

/// `done / total` for a progress bar (0 while the total is unknown).
pub fn fraction(done: u64, total: u64) -> f64 {
    if total == 0 { 0.0 } else { (done as f64 / total as f64).min(1.0) }
}

pub fn precision_label(p: Precision) -> &'static str {
    match p {
        Precision::Fp16 => "FP16",
        Precision::Int8 => "INT8",
        Precision::Int4 => "INT4",
        Precision::Int3 => "INT3",
        Precision::Int2 => "INT2",
    }
}

thread_local! {
    /// The loaded model's description, which names its settings (see [`plan_name`]).
    static MODEL: RefCell<Option<ModelInfo>> = const { RefCell::new(None) };
}

/// The model whose settings [`plan_name`] and [`plan_short`] name (None: no model loaded).
pub fn set_model(info: Option<ModelInfo>) {
    MODEL.with(|m| *m.borrow_mut() = info);
}

/// A setting's one name for people, the same in the precision buttons, reply badges, status,
/// notices, compare and quality: `As stored (INT4 layers, INT8 embeddings)`, `INT4 (GPTQ)`
/// (see `Variant::name_in`).
pub fn plan_name(v: &Variant) -> String {
    MODEL.with(|m| match &*m.borrow() {
        Some(i) => i.name_of(v),
        None => v.name_in(None, v.plan.quantized()),
    })
}

/// [`plan_name`] for tables and chart axes: `As stored`, `INT4 GPTQ`, `MIX a16 f4 e16`, `FP16 KV8`.
pub fn plan_short(v: &Variant) -> String {
    MODEL.with(|m| match &*m.borrow() {
        Some(i) => i.short_name_of(v),
        None => v.short_name_in(None, v.plan.quantized()),
    })
}

/// A quality row's short name: `SOURCE`, or its variant's [`plan_short`].
pub fn scored_short(s: Scored) -> String {
    match s {
        Scored::Source => "SOURCE".into(),
        Scored::Variant(v) => plan_short(&v),
    }
}

/// Milliseconds with the decimals their size needs: 0.105, 3.63, 45.1, 1234.
pub fn ms(v: f64) -> String {
    if v < 1.0 {
        format!("{v:.3}")
    } else if v < 10.0 {
        format!("{v:.2}")
    } else if v < 1000.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// `1 token`, `2 tokens`.
pub fn tokens(n: usize) -> String {
    if n == 1 { "1 token".into() } else { format!("{n} tokens") }
}

/// The adapter's name, saying once that it is a software fallback (the engine's name for a
/// hidden adapter already says so), without nesting parentheses in a name that has its own.
pub fn adapter_name(a: &lowbit::gpu::AdapterSummary) -> String {
    if a.is_fallback && !a.name.contains("software fallback") { format!("{}, a software fallback", a.name) } else { a.name.clone() }
}

/// What kind of device an adapter is, in words.
pub fn device_kind(k: lowbit::gpu::DeviceKind) -> &'static str {
    use lowbit::gpu::DeviceKind::*;
    match k {
        DiscreteGpu => "a discrete GPU",
        IntegratedGpu => "an integrated GPU",
        VirtualGpu => "a virtual GPU",
        Cpu => "software: the processor does the GPU's work",
        Other => "a device of unknown kind",
    }
}

/// A duration for people: `40 s`, `3 min`, `1 h 5 min`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s < 90 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min", (s + 30) / 60)
    } else {
        format!("{} h {} min", s / 3600, (s % 3600 + 30) / 60)
    }
}
