//! The precision lab: the lock-step compare view, the speed panel and the inspector. Components
//! only; every number comes from the engine (`lowbit::lockstep`, `bench`, `inspect`).

use leptos::prelude::*;
use lowbit::lockstep::{LaneSummary, Mode};
use lowbit::plan::Variant;
use lowbit::{KvPrecision, Precision};
use lowbit_app::share;

use lowbit_app::charts;
use crate::client::Store;
use lowbit_app::job::JobKind;
use crate::glossary::Explain;
use crate::fmt::{self, megabytes, plan_label, plan_short};

/// Set the address bar to the comparison's link (without reloading) and return the link.
fn share_link(store: &Store) -> String {
    let q = share::to_query(&store.shared());
    let Some(w) = web_sys::window() else { return q };
    let loc = w.location();
    let base = format!("{}{}", loc.origin().unwrap_or_default(), loc.pathname().unwrap_or_default());
    let url = format!("{base}{q}#compare");
    if let Ok(h) = w.history() {
        let _ = h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
    }
    let _ = w.navigator().clipboard().write_text(&url);
    url
}

/// Read a comparison from the page's URL, if it carries one.
pub fn apply_url(store: &Store) {
    let Some(q) = web_sys::window().and_then(|w| w.location().search().ok()) else { return };
    if let Some(sh) = share::from_query(&q, &store.shared()) {
        store.apply_shared(sh);
    }
}

#[component]
pub fn CompareView() -> impl IntoView {
    let store = expect_context::<Store>();
    let f = store.compare_form;
    let link = RwSignal::new(String::new());
    let lane_toggle = move |p: Variant| {
        view! {
            <label class="inline" title=p.to_string()>
                <input type="checkbox" data-testid=format!("compare-lane-{}", p.code())
                    prop:checked=move || f.lanes.get().contains(&p)
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        f.lanes.update(|v| { v.retain(|x| *x != p); if on { v.push(p) } });
                    }/>
                <span>{plan_short(&p.code())}</span>
            </label>
        }
    };
    let mixed = move || Some(store.plan.get()).filter(|p| p.uniform_precision().is_none()).map(Variant::from);
    let status = move || match store.compare.get() {
        None => String::new(),
        Some(c) if c.lanes.is_empty() => "preparing the lanes (requantizing)…".into(),
        Some(c) if c.summaries.is_some() => format!(
            "{} positions{}",
            c.steps.len(),
            if c.stopped { ", stopped" } else { "" }
        ),
        Some(c) if c.steps.is_empty() => format!("reading the prompt ({} tokens) in {} lanes…", c.prompt_tokens, c.lanes.len()),
        Some(c) => format!("position {}…", c.steps.len()),
    };
    view! {
        <section class="compare-view" id="compare" data-testid="compare-view">
            <h2>"Side by side"</h2>
            <Explain words=&["token", "kl", "top1"]>"One prompt, one seed, every precision at once. In "<em>"same text"</em>" mode each column \
                reads FP16's text so far and shows the token it would write next, so every position asks all precisions \
                the same question: a highlighted token is one FP16 would not have written, KL divergence says how far its \
                whole next-token distribution moved. In "<em>"free"</em>" mode each precision writes its own text, as it \
                would in the chat; after its first different token the texts part ways."</Explain>
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
                    {lane_toggle(Precision::Int8.into())}
                    {lane_toggle(Precision::Int4.into())}
                    {lane_toggle(Variant::new(Precision::Fp16, KvPrecision::F16))}
                    {lane_toggle(Variant::new(Precision::Fp16, KvPrecision::Int8))}
                    {move || mixed().map(lane_toggle)}
                </div>
                <p class="hint" data-testid="compare-sampling">{move || {
                    let s = store.sampling.get();
                    if s.temperature <= 0.0 { "greedy (temperature 0); change under Sampling".to_string() } else {
                        format!("temperature {} · top-k {} · top-p {} · min-p {} · seed {} (change under Sampling)", s.temperature, s.top_k, s.top_p, s.min_p, s.seed)
                    }
                }}</p>
                <div class="row">
                    {move || if store.running(|k| matches!(k, JobKind::Compare)) {
                        view! { <button class="stop" data-testid="compare-stop" on:click=move |_| store.stop()>"Stop"</button> }.into_any()
                    } else {
                        view! { <button data-testid="compare-run" disabled=move || !store.can_chat() || f.prompt.get().trim().is_empty()
                            on:click=move |_| store.run_compare()>"Compare"</button> }.into_any()
                    }}
                    <button class="ghost" data-testid="compare-share" on:click=move |_| link.set(share_link(&store))>"Copy a link to this comparison"</button>
                    <span class="status" data-testid="compare-status">{status}</span>
                </div>
                {move || (!link.get().is_empty()).then(|| view! {
                    <input type="text" readonly class="link" data-testid="compare-link" prop:value=move || link.get()/>
                })}
                {move || (store.compare_pending.get() && store.model.get().is_none()).then(|| view! {
                    <p class="source-note" data-testid="compare-pending">"This link holds a comparison: it runs as soon as a model is loaded."</p>
                })}
            </div>
            {move || store.compare.get().filter(|c| !c.lanes.is_empty()).map(|c| {
                // The engine's first divergence once done; while running, the first token that differs.
                let first_div: Vec<Option<usize>> = (0..c.lanes.len())
                    .map(|i| match c.summaries.as_ref().and_then(|s| s.get(i)) {
                        Some(s) => s.first_divergence,
                        None => c.steps.iter().find(|s| s.lanes.get(i).is_some_and(|l| !l.same_as_fp16 && !(l.stopped && l.text.is_empty()))).map(|s| s.position),
                    })
                    .collect();
                let kl_series: Vec<(String, charts::RGBColor, Vec<(f64, f64)>)> = c.lanes.iter().enumerate().skip(1).map(|(i, p)| {
                    let pts = c.steps.iter().filter_map(|s| s.lanes.get(i).and_then(|l| l.kl).map(|k| (s.position as f64, k))).collect();
                    (plan_short(&p.code()), charts::plan_color(&p.code()), pts)
                }).collect();
                let show_chart = c.steps.len() >= 2;
                view! {
                    <div class="lanes">
                        {c.lanes.iter().enumerate().map(|(i, p)| {
                            let code = p.code();
                            let steps = c.steps.clone();
                            view! {
                                <div class="lane" data-testid="compare-lane" data-plan=code.clone()>
                                    <h3 title=p.to_string()><span class=format!("badge {}", badge_class(p))>{plan_short(&code)}</span>
                                        <span class="hint">{c.weight_bytes.get(i).map(|b| format!(" {} of weights", megabytes(*b)))}</span></h3>
                                    <div class="lane-text" data-testid="compare-lane-text">
                                        {steps.iter().filter_map(|s| s.lanes.get(i).map(|l| (s.position, l.clone()))).map(|(pos, l)| {
                                            let mut class = String::from("tok");
                                            if !l.same_as_fp16 && i > 0 { class.push_str(" diverge") }
                                            if first_div[i] == Some(pos) && i > 0 { class.push_str(" first") }
                                            let title = match (l.kl, l.top1_so_far) {
                                                (Some(k), Some(t)) => format!("position {pos}: KL {k:.4} nats, top-1 agreement so far {:.0}%", t * 100.0),
                                                _ => format!("position {pos}: not compared (the texts differ)"),
                                            };
                                            let text = if l.stopped && l.text.is_empty() { "⏎".to_string() } else { l.text.clone() };
                                            view! { <span class=class title=title data-kl=l.kl.map(|k| format!("{k:.6}"))>{text}</span> }
                                        }).collect_view()}
                                    </div>
                                </div>
                            }
                        }).collect_view()}
                    </div>
                    {show_chart.then(|| view! {
                        <div class="chart" data-testid="compare-kl-chart" inner_html=charts::lines("KL vs FP16 at each position (nats)", &kl_series, crate::chart_width(1000))></div>
                    })}
                    {c.summaries.clone().map(|s| summary_table(&s))}
                }
            })}
        </section>
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
                <th>"precision"</th><th class="num">"tokens"</th><th class="num">"decode tok/s"</th><th class="num">"prefill tok/s"</th>
                <th class="num">"weights"</th><th class="num">"KV / token"</th><th class="num">"mean KL vs FP16"</th><th class="num">"top-1 = FP16"</th><th class="num">"first divergence"</th>
            </tr></thead>
            <tbody>
                {rows.iter().map(|r| {
                    let code = r.variant.code();
                    view! {
                        <tr data-testid="compare-summary-row" data-plan=code.clone()>
                            <td title=plan_label(&code)>{plan_short(&code)}</td>
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

#[component]
pub fn SpeedPanel() -> impl IntoView {
    let store = expect_context::<Store>();
    view! {
        <section class="speed-panel" data-testid="speed-panel">
            <h2>"Speed"</h2>
            <Explain words=&["roofline", "prefill-decode"]>"Writing one token reads every weight once (and the keys and values so far), with only two \
                arithmetic operations per weight: the GPU spends its time waiting for memory. So the fair yardstick is \
                how many bytes per second a token step reads, against what a plain copy kernel reaches on this GPU. \
                Fewer bytes per weight should mean more tokens per second, until something other than memory is the \
                limit (on a software GPU it is arithmetic)."</Explain>
            <div class="row">
                <button data-testid="speed-profile" disabled=move || !store.can_chat() on:click=move |_| store.profile()>
                    {move || format!("Profile a decode step at {}", plan_short(&store.plan.get().code()))}</button>
                <span class="status">{move || store.running(|k| matches!(k, JobKind::Profile)).then_some("profiling…")}</span>
            </div>
            <BenchPanel/>
            {move || {
                let compare = store.compare.get().and_then(|c| c.summaries);
                let profiles = store.profiles.get();
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
                            {compare.unwrap_or_default().into_iter().map(|r| speed_row(&r.variant.code(), "comparison", Some(r.prefill_tokens_per_second), r.decode_tokens_per_second, r.bytes_per_token, copy)).collect_view()}
                            {profiles.iter().map(|p| speed_row(&Variant { plan: p.plan, kv: p.kv }.code(), "profiled step", None, 1e3 / p.wall_ms.max(1e-9), p.bytes_per_token, copy)).collect_view()}
                        </tbody>
                    </table>
                })
            }}
            {move || store.profiles.get().last().cloned().map(|p| {
                let total: f64 = p.kernels.iter().map(|k| k.ms).sum();
                let items: Vec<(String, f64)> = p.kernels.iter().map(|k| (k.kernel.clone(), k.ms)).collect();
                let top = charts::top_n(&items, 6, "kernels");
                let share = move |ms: f64| format!("{} ms · {:.0}%", fmt::ms(ms), 100.0 * ms / total.max(1e-12));
                view! {
                    <h3>{format!("Where one decode step at {} spends its time", plan_short(&p.plan.code()))}</h3>
                    {if p.kernels.is_empty() {
                        view! { <p class="hint">"This GPU offers no timestamp queries, so only the whole step is timed."</p> }.into_any()
                    } else {
                        view! {
                            <div class="chart" data-testid="kernel-chart"
                                inner_html=charts::hbars("GPU time per kernel in one step", &top, charts::plan_color(&p.plan.code()), &share, crate::chart_width(1000))></div>
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
fn BenchPanel() -> impl IntoView {
    let store = expect_context::<Store>();
    let (prompt, decode) = store.bench_tokens;
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
            <button data-testid="bench-run" disabled=move || !store.can_chat() on:click=move |_| store.run_bench()>"Run the benchmark"</button>
            <span class="status">{move || store.running(|k| matches!(k, JobKind::Bench)).then_some("benchmarking FP16, INT8 and INT4…")}</span>
        </div>
        {move || store.bench.get().map(|b| {
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

fn speed_row(code: &str, from: &'static str, prefill: Option<f64>, decode: f64, bytes: u64, copy: Option<f64>) -> impl IntoView {
    let gbps = bytes as f64 * decode / 1e9;
    let frac = copy.map(|c| (gbps / c.max(1e-12)).min(1.0));
    let code = code.to_string();
    view! {
        <tr data-testid="speed-row" data-plan=code.clone()>
            <td title=plan_label(&code)>{plan_short(&code)}</td>
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

#[component]
pub fn Inspector() -> impl IntoView {
    let store = expect_context::<Store>();
    let chosen = RwSignal::new(String::new());
    // Default to the first FFN down-projection: a typical, small matrix.
    Effect::new(move |_| {
        let t = store.tensors.get();
        if !t.iter().any(|e| e.name == chosen.get_untracked()) {
            let pick = t.iter().find(|e| e.name.contains("ffn_down")).or(t.first());
            chosen.set(pick.map(|e| e.name.clone()).unwrap_or_default());
        }
    });
    view! {
        <section class="inspector" data-testid="inspector">
            <h2>"Inspector"</h2>
            <Explain words=&["block-scale", "quantization"]>"Pick a weight matrix. The first chart is its values as stored in the file. INT8 and INT4 \
                store each block of 32 weights as whole numbers times the block's scale: the scale charts show how \
                those scales spread. The error charts show requantized minus original, weight by weight, and the RMS \
                error says how large it is next to the weights themselves."</Explain>
            <div class="row">
                <select data-testid="inspector-tensor" aria-label="Weight tensor" prop:value=move || chosen.get() on:change=move |ev| chosen.set(event_target_value(&ev))>
                    {move || store.tensors.get().into_iter().map(|t| {
                        let label = format!("{} · {} · {}×{}", t.name, t.dtype, t.rows, t.cols);
                        view! { <option value=t.name.clone()>{label}</option> }
                    }).collect_view()}
                </select>
                <button data-testid="inspector-run" disabled=move || !store.can_chat() || chosen.get().is_empty()
                    on:click=move |_| store.inspect(&chosen.get_untracked())>"Inspect"</button>
                <span class="status">{move || store.running(|k| matches!(k, JobKind::Inspect)).then_some("reading the tensor…")}</span>
            </div>
            {move || store.inspection.get().map(|i| {
                let src = charts::RGBColor(0xb8, 0xc0, 0xd0);
                view! {
                    <p class="hint" data-testid="inspector-summary">{format!(
                        "{} ({}, {}×{}): {} of {} weights{}; mean {:.4}, standard deviation {:.4}",
                        i.tensor.name, i.tensor.dtype, i.tensor.rows, i.tensor.cols, i.n_values, i.n_total,
                        if i.n_values < i.n_total { format!(" ({} evenly spaced rows)", i.rows_inspected) } else { String::new() },
                        i.mean, i.std)}</p>
                    <div class="charts">
                        <div class="chart" data-testid="inspector-histogram"
                            inner_html=charts::histogram(&format!("{} values", i.tensor.dtype), i.values.lo, i.values.hi, &i.values.counts, src, crate::chart_width(1000).min(380))></div>
                        {i.precisions.iter().filter_map(|p| p.scales.as_ref().map(|s| (p.precision, s.clone()))).map(|(p, s)| view! {
                            <div class="chart" data-testid="inspector-scales"
                                inner_html=charts::histogram(&format!("{} block scales", p.name().to_uppercase()), s.lo, s.hi, &s.counts, charts::plan_color(p.name()), crate::chart_width(1000).min(380))></div>
                        }).collect_view()}
                        {i.precisions.iter().map(|p| view! {
                            <div class="chart" data-testid="inspector-error"
                                inner_html=charts::histogram(&format!("{} error", p.precision.name().to_uppercase()), p.error.lo, p.error.hi, &p.error.counts, charts::plan_color(p.precision.name()), crate::chart_width(1000).min(380))></div>
                        }).collect_view()}
                    </div>
                    <table data-testid="inspector-errors">
                        <thead><tr><th>"precision"</th><th class="num">"RMS error / RMS weight"</th><th class="num">"largest error"</th><th class="num">"blocks"</th></tr></thead>
                        <tbody>{i.precisions.iter().map(|p| view! {
                            <tr data-testid="inspector-error-row" data-precision=p.precision.name()>
                                <td>{p.precision.name().to_uppercase()}</td>
                                <td class="num">{format!("{:.2e}", p.relative_rms_error)}</td>
                                <td class="num">{format!("{:.2e}", p.max_abs_error)}</td>
                                <td class="num">{p.n_blocks}</td>
                            </tr>
                        }).collect_view()}</tbody>
                    </table>
                    <Explain>"An error of exactly zero means the file already stores this matrix in that format: \
                        requantizing finds the file's own blocks again. In the default model the layer matrices are Q4_1, \
                        which INT4 keeps exactly, while the embedding (also the output head) is Q8_0, which only INT8 and \
                        FP16 keep: that one matrix is where INT4 loses. Try the mixed precision with the embeddings at INT8."</Explain>
                }
            })}
            <h3>"Error layer by layer"</h3>
            <Explain words=&["residual-stream"]>"The same sentence goes through the model at FP16 and at each other precision; after every \
                layer the two residual streams (the vector each token carries from layer to layer) are compared: \
                ‖other − FP16‖ / ‖FP16‖. Brighter cells drift more. Errors made early travel through every later layer."</Explain>
            <div class="row">
                <button data-testid="inspector-layers" disabled=move || !store.can_chat()
                    on:click=move |_| store.measure_layers(crate::texts::TEXTS[0].1, 32)>"Measure each layer (32 tokens)"</button>
                <span class="status">{move || store.running(|k| matches!(k, JobKind::Layers)).then_some("running every precision…")}</span>
            </div>
            {move || store.layer_errors.get().map(|e| {
                let rows: Vec<(String, Vec<f64>)> = e.rows.iter().map(|(v, errs)| (plan_short(&v.code()), errs.clone())).collect();
                view! {
                    <div class="chart" data-testid="inspector-heatmap"
                        inner_html=charts::heatmap(&format!("relative error per layer, {} tokens", e.n_tokens), &rows, crate::chart_width(1000))></div>
                }
            })}
        </section>
    }
}
