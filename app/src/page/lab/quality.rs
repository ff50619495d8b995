//! The quality panel: perplexity, KL and top-1 agreement of each precision vs FP16 on one text,
//! with the noise band of the run.

use leptos::prelude::*;
use lowbit::plan::Variant;
use lowbit::quality::{Quality, Scored};
use lowbit_app::charts;
use lowbit_app::job::JobKind;

use super::state::LabState;
use crate::model::ModelState;
use crate::ui::fmt::{megabytes, scored_short};
use crate::ui::glossary::Explain;
use crate::ui::layout::chart_width;
use crate::ui::progress::RunProgress;
use crate::ui::texts::{LONG_TEXT_TITLE, TEXTS};

/// The text the quality panel scores: a built-in one (by its place in [`TEXTS`]) or the user's.
/// Its `value()` is the choice's `<option>` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextChoice {
    Builtin(usize),
    Own,
}

impl TextChoice {
    pub fn value(self) -> String {
        match self {
            TextChoice::Builtin(i) => i.to_string(),
            TextChoice::Own => "own".into(),
        }
    }

    pub fn parse(v: &str) -> TextChoice {
        v.parse().ok().filter(|i| *i < TEXTS.len()).map_or(TextChoice::Own, TextChoice::Builtin)
    }

    /// The built-in text chosen (None for the user's own).
    pub fn text(self) -> Option<&'static str> {
        match self {
            TextChoice::Builtin(i) => TEXTS.get(i).map(|t| t.1),
            TextChoice::Own => None,
        }
    }
}

/// A checkbox that adds variants to the measurement.
fn option_box(testid: &'static str, title: &'static str, label: &'static str, on: RwSignal<bool>) -> impl IntoView {
    view! {
        <label class="inline" title=title>
            <input type="checkbox" data-testid=testid prop:checked=move || on.get() on:change=move |ev| on.set(event_target_checked(&ev))/>
            <span>{label}</span>
        </label>
    }
}

#[component]
pub fn QualityPanel() -> impl IntoView {
    let lab = expect_context::<LabState>();
    let (engine, model) = (lab.model.engine, lab.model);
    let text = RwSignal::new(TEXTS[0].1.to_string());
    let choice = RwSignal::new(TextChoice::Builtin(0));
    let max_tokens = RwSignal::new(128usize);
    let methods = RwSignal::new(false);
    let ladder = RwSignal::new(false);
    let kv = RwSignal::new(false);
    let acts = RwSignal::new(false);
    let on_choice = move |ev: leptos::ev::Event| {
        let c = TextChoice::parse(&event_target_value(&ev));
        if let Some(t) = c.text() {
            text.set(t.to_string());
        }
        // The long text is for the KV cache formats: scored whole, with them.
        if let TextChoice::Builtin(i) = c {
            if TEXTS[i].0 == LONG_TEXT_TITLE {
                max_tokens.set(2048);
                kv.set(true);
            }
        }
        choice.set(c);
    };
    view! {
        <section class="quality-panel" data-testid="quality-panel">
            <h2>"Quality at each precision"</h2>
            <Explain words=&["perplexity", "nats", "kl", "top1", "teacher-forcing", "noise"]>"Perplexity is how surprised the model is by each next word of a text (lower is better). \
                KL divergence measures how far INT8's and INT4's next-word probabilities drift from FP16's, \
                and top-1 agreement how often they would pick the same next word. All three run on this \
                device, on the same loaded model."</Explain>
            {move || source_note(&model).map(|n| view! { <p class="source-note" data-testid="quality-source-note">{n}</p> })}
            <div class="quality-form">
                <select data-testid="quality-text-choice" aria-label="Text to score" on:change=on_choice prop:value=move || choice.get().value()>
                    {TEXTS.iter().enumerate().map(|(i, (title, _))| view! { <option value=TextChoice::Builtin(i).value()>{*title}</option> }).collect_view()}
                    <option value=TextChoice::Own.value()>"Your own text (paste below)"</option>
                </select>
                <label class="inline">
                    <span>"tokens"</span>
                    <input type="number" min="2" step="1" data-testid="quality-max-tokens" prop:value=move || max_tokens.get().to_string()
                        on:change=move |ev| { if let Ok(v) = event_target_value(&ev).parse::<usize>() { max_tokens.set(v.max(2)) } }/>
                </label>
                <button data-testid="quality-run" disabled=move || !model.can_run() || text.get().trim().is_empty()
                    on:click=move |_| lab.measure_quality(&text.get_untracked(), max_tokens.get_untracked(), methods.get_untracked(), ladder.get_untracked(), kv.get_untracked(), acts.get_untracked())>"Measure"</button>
                {option_box("quality-methods", "Adds INT4 made by each quantization method (searched scales, importance-weighted, AWQ, GPTQ) beside round-to-nearest", "every INT4 method", methods)}
                {option_box("quality-ladder", "Adds INT3 and INT2: 4 and 3 bits per weight, where quality falls off a cliff", "INT3 and INT2", ladder)}
                {option_box("quality-kv", "Adds FP16 weights with each KV cache format this model's rows can hold (f16, INT8, INT4 and INT3, plain and rotated): what each costs at a long context", "every KV cache format", kv)}
                {option_box("quality-acts", "Adds INT8 and INT4 multiplying 8-bit activations (W8A8, W4A8) beside the same weights with 32-bit ones", "8-bit activations", acts)}
                <span class="status" data-testid="quality-status">{move || match (engine.quality_step(), engine.quality_calibrating()) {
                    (Some(None), Some((done, total))) => format!("calibrating on the built-in text: {done} / {total} tokens…"),
                    (Some(Some(step)), _) => format!("{}…", step.what),
                    (Some(None), None) => "starting…".into(),
                    (None, _) => String::new(),
                }}</span>
                // Cancel while it calibrates; once it scores, the progress below has it.
                {move || (engine.quality_step() == Some(None)).then(|| view! {
                    <button class="ghost small" data-testid="quality-cancel" title="Stops after the precision being scored"
                        on:click=move |_| engine.cancel()>"Cancel"</button>
                })}
            </div>
            <RunProgress is=|k| matches!(k, JobKind::Quality { .. }) testid="quality-progress"/>
            <textarea rows="4" data-testid="quality-text" aria-label="Text to score (editable)" prop:value=move || text.get()
                on:input=move |ev| { text.set(event_target_value(&ev)); choice.set(TextChoice::Own); }></textarea>
            {move || lab.quality.get().map(|(n, rows)| view! { <QualityResult n=n rows=rows/> })}
        </section>
    }
}

/// What the file's own precision means for this comparison.
fn source_note(model: &ModelState) -> Option<String> {
    let m = model.model.get()?;
    let (dtype, bits) = m.info.matrix_dtype.clone()?;
    let others: Vec<String> = m.info.source_dtypes.keys().filter(|d| **d != dtype && d.as_str() != "F32").cloned().collect();
    Some(if bits < 16.0 {
        format!(
            "This file stores its weight matrices as {dtype} ({bits:.1} bits per weight). FP16 and INT8 hold those values almost \
             exactly, so they measure the file itself: no precision can add back what was lost when the file was quantized.{}{}{}",
            if matches!(dtype.as_str(), "Q4_1" | "Q4_0" | "Q4_K") { " INT4 keeps the file's own blocks, so it holds those matrices exactly too." } else { "" },
            if bits < 6.0 {
                " Its FP16 is those few-bit weights widened, so FP16 and INT4 cannot differ here as much as on a full-precision \
                 model: to see what 4 bits really cost, load a model stored at 8 bits or more (Q8_0, F16 or BF16)."
            } else { "" },
            if others.is_empty() { String::new() } else {
                format!(" Where INT4 loses is in the tensors stored more finely ({}): the inspector below shows each tensor's error.", others.join(", "))
            }
        )
    } else {
        format!("This file stores its weight matrices as {dtype}: every precision here is a real reduction from the source.")
    })
}

/// The quality table and charts of a run over `n` tokens.
#[component]
fn QualityResult(n: usize, rows: Vec<Quality>) -> impl IntoView {
    let gpu_rows: Vec<_> = rows.iter().filter(|r| r.kl_vs_fp16.is_some()).collect();
    let labels: Vec<String> = gpu_rows.iter().map(|r| scored_short(r.precision)).collect();
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let ppl: Vec<f64> = gpu_rows.iter().map(|r| r.ppl).collect();
    let kl: Vec<f64> = gpu_rows.iter().map(|r| r.kl_vs_fp16.unwrap_or(0.0)).collect();
    let colors: Vec<_> = gpu_rows.iter().map(|r| charts::plan_color(&r.precision.variant().unwrap_or(Variant::REFERENCE))).collect();
    let colors = &colors[..];
    let fp16_ppl = rows.iter().find(|r| r.precision == Scored::REFERENCE).map_or(f64::NAN, |r| r.ppl);
    let half = (chart_width(1000) / 2).saturating_sub(10).max(chart_width(300));
    view! {
    <div class="charts" data-testid="quality-charts">
        <div class="chart" inner_html=charts::bars("perplexity (lower is better)", &labels, &ppl, colors, half)></div>
        <div class="chart" inner_html=charts::bars("KL vs FP16, nats (lower is better)", &labels, &kl, colors, half)></div>
    </div>
    <table data-testid="quality-result" tabindex="0" aria-label="Quality per precision">
        <caption>{format!("{n} tokens, teacher-forced (each position predicts the text's real next token)")}</caption>
        <thead><tr>
            <th>"precision"</th><th class="num">"perplexity"</th><th class="num">"vs FP16"</th><th class="num">"KL vs FP16 (nats)"</th>
            <th class="num">"top-1 = FP16"</th><th class="num">"weights"</th><th class="num">"KV / token"</th><th class="num">"tok/s"</th>
        </tr></thead>
        <tbody>
            {rows.iter().cloned().map(|r| view! {
                <tr data-testid="quality-row" data-precision=r.precision.code()>
                    <td title=r.precision.to_string()>{scored_short(r.precision)}</td>
                    <td class="num" data-testid="quality-ppl">{format!("{:.3}", r.ppl)}</td>
                    <td class="num" data-testid="quality-vs-fp16" data-noise=r.noise_vs_fp16.map(|n| format!("{n:.6}"))>{vs_fp16(&r, fp16_ppl)}</td>
                    <td class="num" data-testid="quality-kl">{r.kl_vs_fp16.map_or("–".into(), |k| format!("{k:.5}"))}</td>
                    <td class="num" data-testid="quality-top1">{r.top1_vs_fp16.map_or("–".into(), |t| format!("{:.1}%", t * 100.0))}</td>
                    <td class="num">{r.weight_bytes.map_or("–".into(), megabytes)}</td>
                    <td class="num">{r.kv_bytes_per_token.map_or("–".into(), |b| format!("{:.1} KB", b as f64 / 1e3))}</td>
                    <td class="num">{format!("{:.1}", r.tokens_per_second)}</td>
                </tr>
            }).collect_view()}
        </tbody>
    </table>
    <p class="hint" data-testid="quality-noise-note">{noise_note(&rows, fp16_ppl, n)}</p>
}
}

/// A perplexity beside FP16's: `+2.3%`, and whether the difference is inside the run's noise.
fn vs_fp16(r: &Quality, fp16_ppl: f64) -> String {
    match r.noise_vs_fp16 {
        _ if r.precision == Scored::REFERENCE || !fp16_ppl.is_finite() => "–".into(),
        Some(noise) => {
            let pct = (r.ppl / fp16_ppl - 1.0) * 100.0;
            let band = (noise.exp() - 1.0) * 100.0;
            if r.within_noise_of(fp16_ppl) { format!("{pct:+.1}% (within ±{band:.1}% noise)") } else { format!("{pct:+.1}% (noise ±{band:.1}%)") }
        }
        None => format!("{:+.1}%", (r.ppl / fp16_ppl - 1.0) * 100.0),
    }
}

/// What the perplexity differences mean on a text of `n` tokens: which rows this text cannot
/// tell from FP16, and why a lower perplexity than FP16's is luck rather than a better model.
fn noise_note(rows: &[Quality], fp16_ppl: f64, n: usize) -> String {
    let others: Vec<&Quality> = rows.iter().filter(|r| r.precision != Scored::REFERENCE && r.noise_vs_fp16.is_some()).collect();
    let (same, apart): (Vec<_>, Vec<_>) = others.iter().partition(|r| r.within_noise_of(fp16_ppl));
    let names = |v: &[&&Quality]| v.iter().map(|r| scored_short(r.precision)).collect::<Vec<_>>().join(", ");
    let mut note = String::from(
        "Noise: the same text scored at two precisions differs token by token; two standard errors of that difference \
         over this text give the ± band. ",
    );
    if !same.is_empty() {
        note += &format!(
            "{} cannot be told apart from FP16 on these {n} tokens: the difference is inside the band{}. ",
            names(&same),
            if same.iter().any(|r| r.ppl < fp16_ppl) { ", so a lower perplexity than FP16's is chance, not a better model (rounding helps some tokens as often as it hurts others)" } else { "" }
        );
    }
    if !apart.is_empty() {
        note += &format!("{} differ{} from FP16 by more than the band. ", names(&apart), if apart.len() == 1 { "s" } else { "" });
    }
    note + "A longer text narrows the band."
}

