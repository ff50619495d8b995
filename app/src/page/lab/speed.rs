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

#[component]
pub fn SpeedPanel() -> impl IntoView {
    let lab = expect_context::<LabState>();
    let (engine, model) = (lab.model.engine, lab.model);
    view! {
        <section class="speed-panel" data-testid="speed-panel">
            <h2>"Speed"</h2>
            <Explain words=&["roofline", "prefill-decode"]>"Writing one token reads every weight once (and the keys and values so far), with only two \
                arithmetic operations per weight: the GPU spends its time waiting for memory. So the fair yardstick is \
                how many bytes per second a token step reads, against what a plain copy kernel reaches on this GPU. \
                Fewer bytes per weight should mean more tokens per second, until something other than memory is the \
                limit (on a software GPU it is arithmetic)."</Explain>
            <div class="row">
                <button data-testid="speed-profile" disabled=move || !model.can_run() on:click=move |_| lab.profile()>
                    {move || format!("Profile a decode step at {}", plan_short(&model.plan.get().into()))}</button>
                <span class="status">{move || engine.running(|k| matches!(k, JobKind::Profile)).then_some("profiling…")}</span>
            </div>
            <ModelBenchPanel/>
            {move || {
                let compare = lab.compare.get().and_then(|c| c.summaries);
                let profiles = lab.profiles.get();
                let copy = profiles.last().map(|p| p.copy_gbps);
                (compare.is_some() || !profiles.is_empty()).then(|| view! {
                    <table data-testid="speed-table" tabindex="0" aria-label="Speed per precision">
                        <caption>{match copy {
                            Some(c) => format!("copy kernel on this GPU: {c:.2} GB/s (the roofline)"),
                            None => "profile a step to measure this GPU's copy bandwidth (the roofline)".into(),
                        }}</caption>
                        <thead><tr><th>"precision"</th><th>"from"</th><th class="num">"prefill tok/s"</th><th class="num">"decode tok/s"</th>
                            <th class="num">"MB read / token"</th><th class="num">"GB/s"</th><th>"of the copy roofline"</th></tr></thead>
                        <tbody>
                            {compare.unwrap_or_default().into_iter().map(|r| speed_row(r.variant, "comparison", Some(r.prefill_tokens_per_second), r.decode_tokens_per_second, r.bytes_per_token, copy)).collect_view()}
                            {profiles.iter().map(|p| speed_row(Variant { plan: p.plan, kv: p.kv }, "profiled step", None, 1e3 / p.wall_ms.max(1e-9), p.bytes_per_token, copy)).collect_view()}
                        </tbody>
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
                            <table data-testid="kernel-times">
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

/// The model benchmark in the page: what `lowbit bench model` prints natively, on the loaded
/// model and this browser's GPU. `bench-result` holds the report as JSON for scripts.
#[component]
fn ModelBenchPanel() -> impl IntoView {
    let lab = expect_context::<LabState>();
    let (engine, model) = (lab.model.engine, lab.model);
    let (prompt, decode) = lab.bench_tokens;
    view! {
        <h3>"Benchmark: prefill and decode at every precision"</h3>
        <Explain words=&["prefill-decode"]>"Reads a prompt, then writes tokens greedily, at FP16, INT8 and INT4 in turn, on this model \
            and this GPU. Tokens per second are wall-clock time, so they include everything the browser does per \
            token. The conversation stays on screen; the next reply reads it again."</Explain>
        <div class="row">
            <label>"prompt tokens "
                <input type="number" min="1" max="1024" data-testid="bench-prompt-tokens" prop:value=move || prompt.get().to_string()
                    on:change=move |ev| { if let Ok(v) = event_target_value(&ev).parse::<usize>() { prompt.set(v.clamp(1, 1024)) } }/></label>
            <label>"decode tokens "
                <input type="number" min="2" max="1024" data-testid="bench-decode-tokens" prop:value=move || decode.get().to_string()
                    on:change=move |ev| { if let Ok(v) = event_target_value(&ev).parse::<usize>() { decode.set(v.clamp(2, 1024)) } }/></label>
            <button data-testid="bench-run" disabled=move || !model.can_run() on:click=move |_| lab.run_bench()>"Run the benchmark"</button>
            <span class="status">{move || engine.running(|k| matches!(k, JobKind::Bench)).then_some("benchmarking FP16, INT8 and INT4…")}</span>
        </div>
        {move || lab.bench.get().map(|b| {
            let json = serde_json::to_string_pretty(&b).unwrap_or_default();
            let ratio = b.int4_over_fp16();
            view! {
                <table data-testid="model-bench-table" tabindex="0" aria-label="Model benchmark per precision">
                    <caption>{format!(
                        "{} ({}): prompt {} tokens, {} decoded; copy kernel {:.2} GB/s; matvec kernel {}, matmul {}",
                        b.adapter.name, b.adapter.backend, b.prompt_tokens, b.decode_tokens, b.copy_gbps, b.adapter.matvec_kernel, b.adapter.matmul_kernel
                    )}</caption>
                    <thead><tr><th>"precision"</th><th class="num">"prefill tok/s"</th><th class="num">"decode tok/s"</th>
                        <th class="num">"MB read / token"</th><th class="num">"GB/s"</th><th class="num">"of copy"</th>
                        <th class="num">"dispatches / token"</th><th class="num">"GPU objects made / token"</th></tr></thead>
                    <tbody>{b.rows.iter().map(|r| view! {
                        <tr data-testid="model-bench-row" data-plan=r.precision.name()>
                            <td>{r.precision.name().to_uppercase()}</td>
                            <td class="num">{format!("{:.1}", r.prefill_tokens_per_second)}</td>
                            <td class="num" data-testid="model-bench-decode-tps">{format!("{:.2}", r.decode_tokens_per_second)}</td>
                            <td class="num">{format!("{:.1}", r.bytes_per_token as f64 / 1e6)}</td>
                            <td class="num">{format!("{:.2}", r.gbps)}</td>
                            <td class="num">{format!("{:.1}%", r.roofline_ratio * 100.0)}</td>
                            <td class="num">{r.dispatches_per_token}</td>
                            <td class="num">{format!("{:.0}", r.buffers_per_token + r.bind_groups_per_token)}</td>
                        </tr>
                    }).collect_view()}</tbody>
                </table>
                {ratio.map(|r| view! { <p data-testid="bench-ratio">{format!("INT4 decodes {r:.2}× as fast as FP16 here.")}</p> })}
                <details><summary>"The report as JSON"</summary><pre data-testid="bench-result">{json}</pre></details>
            }
        })}
    }
}

fn speed_row(v: Variant, from: &'static str, prefill: Option<f64>, decode: f64, bytes: u64, copy: Option<f64>) -> impl IntoView {
    let gbps = bytes as f64 * decode / 1e9;
    let frac = copy.map(|c| (gbps / c.max(1e-12)).min(1.0));
    view! {
        <tr data-testid="speed-row" data-plan=v.code()>
            <td title=v.to_string()>{plan_short(&v)}</td>
            <td>{from}</td>
            <td class="num">{prefill.map_or("–".into(), |p| format!("{p:.1}"))}</td>
            <td class="num">{format!("{decode:.2}")}</td>
            <td class="num">{format!("{:.1}", bytes as f64 / 1e6)}</td>
            <td class="num" data-testid="speed-gbps">{format!("{gbps:.2}")}</td>
            <td>{frac.map(|f| view! {
                <span class="roofline"><progress max="1" value=f></progress>{format!(" {:.0}%", f * 100.0)}</span>
            })}</td>
        </tr>
    }
}
