//! The compare view: one prompt at FP16 and other variants in lock-step, token by token, with the
//! KL at each position and a summary per lane.

use leptos::prelude::*;
use lowbit::lockstep::{LaneSummary, Mode};
use lowbit::method::Method;
use lowbit::plan::{Plan, Variant};
use lowbit::{Activations, KvPrecision, Precision};
use lowbit_app::charts;
use lowbit_app::job::JobKind;

use super::share::share_link;
use super::state::{CompareRun, LabState};
use crate::ui::fmt::{self, megabytes, plan_short};
use crate::ui::glossary::Explain;
use crate::ui::layout::chart_width;
use crate::ui::progress::RunProgress;

#[component]
pub fn CompareView() -> impl IntoView {
    view! {
        <section class="compare-view" id="compare" data-testid="compare-view">
            <h2>"Side by side"</h2>
            <Explain words=&["token", "kl", "top1"]>"One prompt, one seed, every precision at once. In "<em>"same text"</em>" mode each column \
                reads FP16's text so far and shows the token it would write next, so every position asks all precisions \
                the same question: a highlighted token is one FP16 would not have written, KL divergence says how far its \
                whole next-token distribution moved. In "<em>"free"</em>" mode each precision writes its own text, as it \
                would in the chat; after its first different token the texts part ways."</Explain>
            <CompareForm/>
            {move || expect_context::<LabState>().compare.get().filter(|c| !c.lanes.is_empty()).map(|c| view! { <CompareResult run=c/> })}
        </section>
    }
}

/// A lane's checkbox: compare `p` with FP16 or not.
fn lane_checkbox(lab: LabState, p: Variant) -> impl IntoView {
    let f = lab.compare_form;
    view! {
        <label class="inline" title=fmt::plan_name(&p)>
            <input type="checkbox" data-testid=format!("compare-lane-{}", p.code())
                prop:checked=move || f.lanes.get().contains(&p)
                on:change=move |ev| {
                    let on = event_target_checked(&ev);
                    f.lanes.update(|v| { v.retain(|x| *x != p); if on { v.push(p) } });
                }/>
            <span>{plan_short(&p)}</span>
        </label>
    }
}

/// Where the comparison is.
fn status(run: Option<CompareRun>) -> String {
    match run {
        None => String::new(),
        Some(c) if c.lanes.is_empty() => "preparing the lanes (requantizing)…".into(),
        Some(c) if c.summaries.is_some() => format!("{} positions{}", c.steps.len(), if c.stopped { ", stopped" } else { "" }),
        Some(c) if c.steps.is_empty() => format!("reading the prompt ({} tokens) in {} lanes…", c.prompt_tokens, c.lanes.len()),
        Some(c) => format!("position {}…", c.steps.len()),
    }
}

/// The lanes offered beside FP16 on every model.
const FIXED_LANES: [Variant; 6] = [
    Variant { plan: Plan::uniform(Precision::Int8), kv: KvPrecision::F32, act: Activations::F32 },
    Variant { plan: Plan::uniform(Precision::Int4), kv: KvPrecision::F32, act: Activations::F32 },
    Variant { plan: Plan::uniform(Precision::Int3), kv: KvPrecision::F32, act: Activations::F32 },
    Variant { plan: Plan::uniform(Precision::Int2), kv: KvPrecision::F32, act: Activations::F32 },
    Variant { plan: Plan::uniform(Precision::Fp16), kv: KvPrecision::F16, act: Activations::F32 },
    Variant { plan: Plan::uniform(Precision::Fp16), kv: KvPrecision::Int8, act: Activations::F32 },
];

/// INT8 and INT4 multiplying 8-bit activations (W8A8, W4A8), beside their weights-only lanes.
const ACT_LANES: [Variant; 2] = [
    Variant { plan: Plan::uniform(Precision::Int8), kv: KvPrecision::F32, act: Activations::Int8 },
    Variant { plan: Plan::uniform(Precision::Int4), kv: KvPrecision::F32, act: Activations::Int8 },
];

/// The lanes offered on models whose KV rows hold units of 64 (the INT4/INT3 caches): the
/// rotated INT4 and INT3 caches, the long-context issue's lesson.
const KV_LANES: [Variant; 2] = [
    Variant { plan: Plan::uniform(Precision::Fp16), kv: KvPrecision::Int4Rot, act: Activations::F32 },
    Variant { plan: Plan::uniform(Precision::Fp16), kv: KvPrecision::Int3Rot, act: Activations::F32 },
];

/// The prompt, mode, length and lanes to compare; Run or Stop; the link to share.
#[component]
fn CompareForm() -> impl IntoView {
    let lab = expect_context::<LabState>();
    let (engine, model) = (lab.model.engine, lab.model);
    let f = lab.compare_form;
    let link = RwSignal::new(String::new());
    // The file's own setting (As stored), and the chat's own plan when no box is it: a mix, or
    // a method other than rounding.
    let stored = move || model.model.get().and_then(|m| m.info.stored_plan()).map(Variant::from);
    let mixed = move || {
        // A method that changes nothing here is the same lane as rounding.
        let plan = model.plan.get();
        Some(model.model.with(|m| m.as_ref().map_or(plan, |m| m.info.canonical(plan))))
            .filter(|p| p.uniform_precision().is_none() || (p.method != Method::Rtn && p.quantized()))
            .map(Variant::from)
            .filter(|v| Some(*v) != stored())
    };
    let lane_toggle = move |p: Variant| lane_checkbox(lab, p);
    // The KV lanes this model's cache rows can hold.
    let kv_lanes = move || -> Vec<Variant> {
        let m = model.model.get();
        KV_LANES.into_iter().filter(|v| m.as_ref().is_some_and(|m| m.kv_unfit(v.kv).is_none())).collect()
    };
    let status = move || status(lab.compare.get());
    view! {
    <div class="compare-form">
        <textarea rows="2" data-testid="compare-prompt" aria-label="Prompt to compare" prop:value=move || f.prompt.get()
            on:input=move |ev| f.prompt.set(event_target_value(&ev))></textarea>
        <div class="row">
            <label class="inline"><input type="checkbox" data-testid="compare-chat" prop:checked=move || f.chat.get()
                on:change=move |ev| f.chat.set(event_target_checked(&ev))/><span>"as a chat message"</span></label>
            <select data-testid="compare-mode" aria-label="Comparison mode" prop:value=move || f.mode.get().code()
                on:change=move |ev| f.mode.set(Mode::parse(&event_target_value(&ev)).unwrap_or_default())>
                <option value="same">"same text (FP16's)"</option>
                <option value="free">"free (each its own)"</option>
            </select>
            <label class="inline"><span>"tokens"</span>
                <input type="number" min="1" max="512" data-testid="compare-max-tokens" prop:value=move || f.max_tokens.get().to_string()
                    on:change=move |ev| { if let Ok(v) = event_target_value(&ev).parse::<usize>() { f.max_tokens.set(v.clamp(1, 512)) } }/></label>
            <span class="k">"with FP16:"</span>
            {FIXED_LANES.iter().map(|&v| lane_toggle(v)).collect_view()}
            {ACT_LANES.iter().map(|&v| lane_toggle(v)).collect_view()}
            {move || kv_lanes().into_iter().map(lane_toggle).collect_view()}
            {move || stored().map(lane_toggle)}
            {move || mixed().map(lane_toggle)}
            // Any other lane ticked (a shared link's mix): shown, so it can be unticked.
            {move || {
                let shown: Vec<Variant> = FIXED_LANES.iter().copied().chain(ACT_LANES).chain(kv_lanes()).chain(stored()).chain(mixed()).collect();
                f.lanes.get().into_iter().filter(|l| !shown.contains(l)).map(lane_toggle).collect_view()
            }}
        </div>
        <p class="hint" data-testid="compare-sampling">{move || {
            let s = lab.chat.sampling.get();
            if s.temperature <= 0.0 { "greedy (temperature 0); change under Sampling".to_string() } else {
                format!("temperature {} · top-k {} · top-p {} · min-p {} · seed {} (change under Sampling)", s.temperature, s.top_k, s.top_p, s.min_p, s.seed)
            }
        }}</p>
        <div class="row">
            {move || if engine.running(|k| matches!(k, JobKind::Compare)) {
                view! { <button class="stop" data-testid="compare-stop" on:click=move |_| engine.stop()>"Stop"</button> }.into_any()
            } else {
                view! { <button data-testid="compare-run" disabled=move || !model.can_run() || f.prompt.get().trim().is_empty()
                    on:click=move |_| lab.run_compare()>"Compare"</button> }.into_any()
            }}
            <button class="ghost" data-testid="compare-share" on:click=move |_| link.set(share_link(&lab))>"Copy a link to this comparison"</button>
            <span class="status" data-testid="compare-status">{status}</span>
        </div>
        {move || lab.compare.get().is_some_and(|c| c.lanes.is_empty()).then(|| view! {
            <RunProgress is=|k| matches!(k, JobKind::Compare) testid="compare-progress"/>
        })}
        {move || (!link.get().is_empty()).then(|| view! {
            <input type="text" readonly class="link" data-testid="compare-link" prop:value=move || link.get()/>
        })}
        {move || (lab.compare_pending.get() && model.model.get().is_none()).then(|| view! {
            <p class="source-note" data-testid="compare-pending">"This link holds a comparison: it runs as soon as a model is loaded."</p>
        })}
    </div>
    }
}

/// The first position where each lane's token differs from FP16's: the engine's once the run is
/// done; while it runs, the first differing token so far.
fn first_divergence(c: &CompareRun) -> Vec<Option<usize>> {
    (0..c.lanes.len())
        .map(|i| match c.summaries.as_ref().and_then(|s| s.get(i)) {
            Some(s) => s.first_divergence,
            None => c.steps.iter().find(|s| s.lanes.get(i).is_some_and(|l| !l.same_as_fp16 && !(l.stopped && l.text.is_empty()))).map(|s| s.position),
        })
        .collect()
}

/// Each lane's tokens, the KL chart and the summary table.
#[component]
fn CompareResult(run: CompareRun) -> impl IntoView {
    let c = run;
    let first_div = first_divergence(&c);
    let kl_series: Vec<(String, charts::RGBColor, Vec<(f64, f64)>)> = c.lanes.iter().enumerate().skip(1).map(|(i, p)| {
        let pts = c.steps.iter().filter_map(|s| s.lanes.get(i).and_then(|l| l.kl).map(|k| (s.position as f64, k))).collect();
        (plan_short(p), charts::plan_color(p), pts)
    }).collect();
    let show_chart = c.steps.len() >= 2;
    view! {
        <div class="lanes">
            {c.lanes.iter().enumerate().map(|(i, p)| lane_view(&c, i, p, first_div[i])).collect_view()}
        </div>
        {show_chart.then(|| view! {
            <div class="chart" data-testid="compare-kl-chart" inner_html=charts::lines("KL vs FP16 at each position (nats)", &kl_series, chart_width(1000))></div>
        })}
        {c.summaries.clone().map(|s| summary_table(&s))}
        {c.summaries.as_ref().map(|_| view! { <p class="hint" data-testid="compare-caveat">{caveat(c.steps.len())}</p> })}
    }
}

/// What `n` positions can and cannot tell apart (the quality panel gives a noise band; a
/// comparison this short has none).
fn caveat(n: usize) -> String {
    let point = 100.0 / n.max(1) as f64;
    format!(
        "Sample size: {n} positions compared, so one position is {point:.1} points of top-1 agreement. Over this few \
         positions the lanes' agreement and mean KL can order differently (a lane may pick FP16's token less often yet \
         drift less on average): a difference of a few positions is noise, not a ranking. The quality panel scores a \
         whole text with a noise band; more tokens here narrow the uncertainty."
    )
}

/// Lane `i` (variant `p`): its tokens, those FP16 would not have written highlighted.
fn lane_view(c: &CompareRun, i: usize, p: &Variant, first_div: Option<usize>) -> impl IntoView {
    view! {
        <div class="lane" data-testid="compare-lane" data-plan=p.code()>
            <h3 title=fmt::plan_name(p)><span class=format!("badge {}", badge_class(p))>{plan_short(p)}</span>
                <span class="hint">{c.weight_bytes.get(i).map(|b| format!(" {} of weights", megabytes(*b)))}</span></h3>
            <div class="lane-text" data-testid="compare-lane-text">
                {c.steps.iter().filter_map(|s| s.lanes.get(i).map(|l| (s.position, l.clone()))).map(|(pos, l)| {
                    let mut class = String::from("tok");
                    if !l.same_as_fp16 && i > 0 { class.push_str(" diverge") }
                    if first_div == Some(pos) && i > 0 { class.push_str(" first") }
                    let title = match (l.kl, l.top1_so_far) {
                        (Some(k), Some(t)) => format!("position {pos}: KL {k:.4} nats, top-1 agreement so far {:.0}%", t * 100.0),
                        _ => format!("position {pos}: not compared (the texts differ)"),
                    };
                    // A first difference that is only white space is drawn, not left an empty box.
                    let first = first_div == Some(pos) && i > 0;
                    let text = match (l.stopped && l.text.is_empty(), first && l.text.trim().is_empty()) {
                        (true, _) => "⏎".to_string(),
                        (false, true) => l.text.replace(' ', "␣").replace('\n', "⏎\n").replace('\t', "⇥"),
                        (false, false) => l.text.clone(),
                    };
                    view! { <span class=class title=title data-kl=l.kl.map(|k| format!("{k:.6}"))>{text}</span> }
                }).collect_view()}
            </div>
        </div>
    }
}

/// The badge colour class of a lane.
fn badge_class(v: &Variant) -> String {
    match (v.plan.uniform_precision(), v.kv) {
        (Some(p), KvPrecision::F32) => p.name().to_string(),
        (_, KvPrecision::F32) => "mixed".into(),
        _ => "kv".into(),
    }
}

fn summary_table(rows: &[LaneSummary]) -> impl IntoView {
    view! {
        <table data-testid="compare-summary" tabindex="0" aria-label="Comparison summary per precision">
            <thead><tr>
                <th>"precision"</th><th class="num">"tokens"</th><th class="num" title="The lanes take turns token by token, so this is not the benchmark's figure: the speed panel's benchmark times each precision alone">"decode tok/s (in turn)"</th><th class="num">"prefill tok/s"</th>
                <th class="num">"weights"</th><th class="num">"KV / token"</th><th class="num">"mean KL vs FP16"</th><th class="num">"top-1 = FP16"</th><th class="num">"first divergence"</th>
            </tr></thead>
            <tbody>
                {rows.iter().map(|r| {
                    let code = r.variant.code();
                    view! {
                        <tr data-testid="compare-summary-row" data-plan=code.clone()>
                            <td title=fmt::plan_name(&r.variant)>{plan_short(&r.variant)}</td>
                            <td class="num">{r.tokens}</td>
                            <td class="num" data-testid="compare-decode-tps">{format!("{:.2}", r.decode_tokens_per_second)}</td>
                            <td class="num">{format!("{:.1}", r.prefill_tokens_per_second)}</td>
                            <td class="num">{megabytes(r.weight_bytes)}</td>
                            <td class="num">{format!("{:.1} KB", r.kv_bytes_per_token as f64 / 1e3)}</td>
                            <td class="num" data-testid="compare-mean-kl">{format!("{:.5}", r.mean_kl)}</td>
                            <td class="num" data-testid="compare-top1">{format!("{:.1}% of {}", r.top1_agreement * 100.0, r.compared_positions)}</td>
                            <td class="num" data-testid="compare-first-divergence">{r.first_divergence.map_or("none".into(), |p| format!("position {p}"))}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}
