//! The speed panel: a decode step profiled kernel by kernel, the model benchmark at every
//! precision, and tokens per second against the copy roofline.

use leptos::prelude::*;
use lowbit::plan::Variant;
use lowbit_app::charts;
use lowbit_app::job::JobKind;

use super::state::LabState;
use crate::ui::fmt::{self, plan_short};
use crate::ui::glossary::Explain;
use crate::ui::layout::chart_width;
use crate::ui::progress::RunProgress;

/// How many times the page's benchmark runs every precision.
pub const BENCH_REPEATS: usize = 3;

#[component]
pub fn SpeedPanel() -> impl IntoView {
    let lab = expect_context::<LabState>();
    let (engine, model) = (lab.model.engine, lab.model);
    view! {
        <section class="speed-panel" data-testid="speed-panel">
            <h2>"Speed"</h2>
            <Explain words=&["roofline", "prefill-decode"]>"Writing one token reads every weight once (and the keys and values so far), with only two \
                arithmetic operations per weight. Where memory is the limit, the time per token is the time to read those bytes, \
                and the fair yardstick is a plain copy kernel's bytes per second on this GPU (the roofline). Whether memory is \
                the limit here, or arithmetic, or the overhead between kernels, is measured below, not assumed."</Explain>
            {move || roofline(&lab).map(|c| view! {
                <p class="note" data-testid="speed-roofline">{format!(
                    "Copy kernel on this GPU: {c:.2} GB/s (the roofline). Measured once for this model, over as many bytes as an FP16 step reads (at most 64 MB); every figure below is compared with it."
                )}</p>
            })}
            {move || limit_sentence(&lab).map(|l| view! { <p class="finding" data-testid="speed-limit">{l}</p> })}
            <div class="row">
                <button data-testid="speed-profile" disabled=move || !model.can_run() on:click=move |_| lab.profile()>
                    {move || format!("Profile a decode step at {}", plan_short(&model.plan.get().into()))}</button>
                <span class="status">{move || engine.running(|k| matches!(k, JobKind::Profile)).then_some("profiling…")}</span>
            </div>
            {move || {
                let profiles = lab.profiles.get();
                (!profiles.is_empty()).then(|| view! {
                    <table data-testid="speed-table" tabindex="0" aria-label="Profiled decode steps">
                        <caption>"One decode step per precision profiled (wall time the median of 3 steps), against the roofline above"</caption>
                        <thead><tr><th>"precision"</th><th class="num">"step ms (wall)"</th><th class="num">"GPU ms in kernels"</th>
                            <th class="num">"MB read / step"</th><th class="num">"GB/s"</th><th>"of the copy roofline"</th></tr></thead>
                        <tbody>{profiles.iter().map(profile_row).collect_view()}</tbody>
                    </table>
                })
            }}
            {move || lab.profiles.get().last().cloned().map(|p| {
                let total: f64 = p.kernels.iter().map(|k| k.ms).sum();
                let items: Vec<(String, f64)> = p.kernels.iter().map(|k| (k.kernel.clone(), k.ms)).collect();
                let top = charts::top_n(&items, 6, "kernels");
                let share = move |ms: f64| format!("{} ms · {:.0}%", fmt::ms(ms), 100.0 * ms / total.max(1e-12));
                view! {
                    <h3>{format!("Where one decode step at {} spends its time", plan_short(&p.plan.into()))}</h3>
                    {if p.kernels.is_empty() {
                        view! { <p class="hint">"This GPU offers no timestamp queries, so only the whole step is timed."</p> }.into_any()
                    } else {
                        view! {
                            <div class="chart" data-testid="kernel-chart"
                                inner_html=charts::hbars("GPU time per kernel in one step", &top, charts::plan_color(&p.plan.into()), &share, chart_width(1000))></div>
                            <table data-testid="kernel-times" tabindex="0">
                                <caption data-testid="kernel-times-caption">{profile_caption(&p, total)}</caption>
                                <thead><tr><th>"kernel"</th><th class="num">"calls"</th><th class="num">"ms"</th><th class="num">"share"</th></tr></thead>
                                <tbody>{p.kernels.iter().map(|k| view! {
                                    <tr data-testid="kernel-time-row"><td>{k.kernel.clone()}</td><td class="num">{k.calls}</td>
                                        <td class="num">{format!("{:.3}", k.ms)}</td><td class="num">{format!("{:.1}%", 100.0 * k.ms / total.max(1e-12))}</td></tr>
                                }).collect_view()}</tbody>
                            </table>
                        }.into_any()
                    }}
                }
            })}
            <ModelBenchPanel/>
            <super::context_speed::ContextSpeedPanel/>
        </section>
    }
}

/// What the kernel table's times are a part of. The kernels are timed in a step of their own (a
/// pass and two timestamps per kernel), so their sum is compared with that step's wall time, and
/// the untimed steps' wall time is named separately.
fn profile_caption(p: &lowbit::bench::DecodeProfile, total: f64) -> String {
    match p.timed_wall_ms {
        Some(timed) => format!(
            "Timed kernel by kernel, the step took {} ms wall: {} ms in these kernels on the GPU and {} ms recording, \
             submitting, waiting and reading back. Without the timers a step takes {} ms (median of 3).",
            fmt::ms(timed), fmt::ms(total), fmt::ms((timed - total).max(0.0)), fmt::ms(p.wall_ms)
        ),
        None => format!("GPU time in these kernels {} ms; a step without timers takes {} ms wall (median of 3).", fmt::ms(total), fmt::ms(p.wall_ms)),
    }
}

/// The roofline every speed figure here is compared with: the session measures it once, so a
/// profile and a benchmark carry the same figure.
fn roofline(lab: &LabState) -> Option<f64> {
    lab.profiles.get().last().map(|p| p.copy_gbps).or_else(|| lab.bench.get().map(|b| b.copy_gbps))
}

/// What limits decode here, in a sentence that names the step it was read from: the latest
/// profiled step, else the benchmark's FP16 row.
pub fn limit_sentence(lab: &LabState) -> Option<String> {
    let profiled = lab.profiles.get().last().and_then(|p| Some((fmt::plan_name(&Variant::new(p.plan, p.kv)), p.limit()?)));
    let benched = || lab.bench.get().and_then(|b| b.limit()).map(|(p, l)| (fmt::precision_label(p).to_string(), l));
    profiled.or_else(benched).map(|(at, l)| l.sentence(&at))
}

/// The model benchmark in the page: what `lowbit bench model` prints natively, on the loaded
/// model and this browser's GPU. `bench-result` holds the report as JSON for scripts.
#[component]
fn ModelBenchPanel() -> impl IntoView {
    let lab = expect_context::<LabState>();
    let model = lab.model;
    let (prompt, decode) = lab.bench_tokens;
    view! {
        <h3>"Benchmark: prefill and decode at every precision"</h3>
        <Explain words=&["prefill-decode"]>{format!("Reads a prompt, then writes tokens greedily, at FP16, INT8 and INT4 in turn, {BENCH_REPEATS} times \
            over (the precisions take turns, so a slow moment of this machine falls on all of them), on this model and this GPU. \
            Each figure is the median of the runs, with their range: a speed ratio means little without it. Tokens per second \
            are wall-clock time, so they include everything the browser does per token. The conversation stays on screen; the \
            next reply reads it again. Decode records its steps a batch ahead and reads the tokens back a batch at a time; \
            tick \"one token at a time\" to read each token back before the next step is recorded, and see what that round \
            trip costs.")}</Explain>
        <div class="row">
            <label class="inline">"prompt tokens "
                <input type="number" min="1" max="1024" data-testid="bench-prompt-tokens" prop:value=move || prompt.get().to_string()
                    on:change=move |ev| { if let Ok(v) = event_target_value(&ev).parse::<usize>() { prompt.set(v.clamp(1, 1024)) } }/></label>
            <label class="inline">"decode tokens "
                <input type="number" min="2" max="1024" data-testid="bench-decode-tokens" prop:value=move || decode.get().to_string()
                    on:change=move |ev| { if let Ok(v) = event_target_value(&ev).parse::<usize>() { decode.set(v.clamp(2, 1024)) } }/></label>
            <label class="inline"><input type="checkbox" data-testid="bench-one-at-a-time" prop:checked=move || lab.bench_one_at_a_time.get()
                on:change=move |ev| lab.bench_one_at_a_time.set(event_target_checked(&ev))/>" one token at a time"</label>
            <label class="inline" title="INT8 and INT4 also with 8-bit activations (W8A8, W4A8): what integer arithmetic buys on this GPU">
                <input type="checkbox" data-testid="bench-acts" prop:checked=move || lab.bench_acts.get()
                    on:change=move |ev| lab.bench_acts.set(event_target_checked(&ev))/>" 8-bit activations too"</label>
            <button data-testid="bench-run" disabled=move || !model.can_run() on:click=move |_| lab.run_bench()>"Run the benchmark"</button>
        </div>
        <RunProgress is=|k| matches!(k, JobKind::Bench) testid="bench-progress"/>
        {move || lab.bench.get().map(|b| {
            let json = serde_json::to_string_pretty(&b).unwrap_or_default();
            let ratio = b.int4_over_fp16();
            let a8 = b.int4_a8_over_int4();
            let bytes = b.int4_bytes_ratio();
            view! {
                <table data-testid="model-bench-table" tabindex="0" aria-label="Model benchmark per precision">
                    <caption>{format!(
                        "{} · {}: prompt {} tokens, {} decoded ({}), {}; matvec kernel {}, matmul {}; \"of copy\" against the roofline above",
                        fmt::adapter_name(&b.adapter), b.adapter.backend, b.prompt_tokens, b.decode_tokens, b.chain_phrase(), b.runs_phrase(),
                        b.adapter.matvec_kernel, b.adapter.matmul_kernel
                    )}</caption>
                    <thead><tr><th>"precision"</th><th class="num">"prefill tok/s"</th><th class="num">"decode tok/s"</th>
                        <th class="num">"MB read / token"</th><th class="num">"GB/s"</th><th class="num">"of copy"</th>
                        <th class="num">"dispatches / token"</th>
                        <th class="num" title="Waits for the GPU to hand tokens back, per token">"round trips / token"</th>
                        <th class="num" title="A token's wall time minus its step's GPU time (a timestamp before and after each step): recording, submitting, waiting, reading back">"host ms / token"</th>
                        <th class="num">"GPU objects made / token"</th></tr></thead>
                    <tbody>{b.rows.iter().map(|r| view! {
                        <tr data-testid="model-bench-row" data-plan=r.label()>
                            <td>{r.label().to_uppercase()}</td>
                            <td class="num">{format!("{:.1}", r.prefill_tokens_per_second)}<RunRange runs=r.prefill_runs.clone() decimals=1/></td>
                            <td class="num"><span data-testid="model-bench-decode-tps">{format!("{:.2}", r.decode_tokens_per_second)}</span><RunRange runs=r.decode_runs.clone() decimals=2/></td>
                            <td class="num">{format!("{:.1}", r.bytes_per_token as f64 / 1e6)}</td>
                            <td class="num">{format!("{:.2}", r.gbps)}</td>
                            <td class="num">{format!("{:.1}%", r.roofline_ratio * 100.0)}</td>
                            <td class="num">{r.dispatches_per_token}</td>
                            <td class="num" data-testid="model-bench-trips">{format!("{:.3}", r.round_trips_per_token)}</td>
                            <td class="num" data-testid="model-bench-host-ms">{r.host_ms_per_token.map_or("–".into(), |h| format!("{h:.2}"))}</td>
                            <td class="num">{format!("{:.0}", r.buffers_per_token + r.bind_groups_per_token)}</td>
                        </tr>
                    }).collect_view()}</tbody>
                </table>
                {ratio.map(|r| view! { <p data-testid="bench-ratio">{format!(
                    "INT4 decodes {:.2}× as fast as FP16 here{}{}",
                    r.median,
                    r.range_phrase(2, "×"),
                    bytes.map_or(".".into(), |x| format!(", reading {x:.1}× fewer bytes per token."))
                )}</p> })}
                {a8.map(|r| view! { <p data-testid="bench-a8-ratio">{format!(
                    "INT4 with 8-bit activations decodes {:.2}× as fast as INT4 with 32-bit ones here{}.",
                    r.median,
                    r.range_phrase(2, "×")
                )}</p> })}
                <details><summary>"The report as JSON"</summary><pre data-testid="bench-result">{json}</pre></details>
            }
        })}
    }
}

/// One profiled step: its wall and kernel time, bytes, and GB/s against the roofline.
fn profile_row(p: &lowbit::bench::DecodeProfile) -> impl IntoView {
    let v = Variant::new(p.plan, p.kv);
    let gbps = p.achieved_gbps();
    let frac = (gbps / p.copy_gbps.max(1e-12)).min(1.0);
    view! {
        <tr data-testid="speed-row" data-plan=v.code()>
            <td title=fmt::plan_name(&v)>{plan_short(&v)}</td>
            <td class="num">{fmt::ms(p.wall_ms)}</td>
            <td class="num">{p.gpu_ms.map_or("–".into(), fmt::ms)}</td>
            <td class="num">{format!("{:.1}", p.bytes_per_token as f64 / 1e6)}</td>
            <td class="num" data-testid="speed-gbps">{format!("{gbps:.2}")}</td>
            <td><span class="roofline"><progress max="1" value=frac></progress>{format!(" {:.0}%", frac * 100.0)}</span></td>
        </tr>
    }
}

/// A benchmark figure's range over its runs, after the median (nothing for one run).
#[component]
fn RunRange(runs: Vec<f64>, decimals: usize) -> impl IntoView {
    lowbit::bench::Spread::of(&runs).and_then(|s| Some((s.runs, s.range(decimals)?))).map(|(n, range)| view! {
        <span class="range" title=format!("{n} runs: {}", runs.iter().map(|x| format!("{x:.decimals$}")).collect::<Vec<_>>().join(", "))>
            {format!(" ({range})")}</span>
    })
}
