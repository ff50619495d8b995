//! Decode speed as the context grows, per KV cache format: the cache filled to 256, 1k, 2k, 4k…
//! tokens and a few tokens decoded at each, at the current precision (the engine's
//! `bench::context_sweep`).

use leptos::prelude::*;
use lowbit::KvPrecision;
use lowbit_app::charts;
use lowbit_app::job::JobKind;

use super::state::{sweep_request, LabState, SWEEP_DECODE_TOKENS};
use crate::ui::fmt::plan_short;
use crate::ui::glossary::Explain;
use crate::ui::layout::chart_width;
use crate::ui::progress::RunProgress;

#[component]
pub fn ContextSpeedPanel() -> impl IntoView {
    let lab = expect_context::<LabState>();
    let model = lab.model;
    let request = move || model.model.get().map_or((vec![], vec![]), |m| sweep_request(&m, lab.sweep_kvs.get()));
    view! {
        <h3>"Decode speed as the context grows"</h3>
        <Explain words=&["kv-cache", "rotation"]>{format!("Every new token reads the keys and values of all the tokens before it, so \
            writing slows down as a conversation grows, and a KV cache stored in fewer bits has fewer bytes to read. This fills the \
            cache to each length below (untimed), writes {SWEEP_DECODE_TOKENS} tokens there and times all but the first, for each \
            ticked KV format, at the current precision. The longest point is 4,096 tokens, or the fullest the \
            context size in the KV cache settings allows.")}</Explain>
        <div class="row sweep-kvs" data-testid="sweep-kvs">
            {KvPrecision::ALL.into_iter().map(|kv| {
                let unfit = move || model.model.get().and_then(|m| m.kv_unfit(kv));
                view! {
                    <label class="inline" title=move || unfit().unwrap_or_else(|| format!("{} bytes a value", kv.bytes_per_value()))>
                        <input type="checkbox" data-testid="sweep-kv" data-kv=kv.name() disabled=move || unfit().is_some()
                            prop:checked=move || lab.sweep_kvs.get().contains(&kv) && unfit().is_none()
                            on:change=move |ev| {
                                let on = event_target_checked(&ev);
                                lab.sweep_kvs.update(|v| {
                                    v.retain(|&k| k != kv);
                                    if on {
                                        v.push(kv);
                                        v.sort_by_key(|k| KvPrecision::ALL.iter().position(|a| a == k));
                                    }
                                });
                            }/>
                        <span>{kv.name()}</span>
                    </label>
                }
            }).collect_view()}
        </div>
        <div class="row">
            <button data-testid="sweep-run" disabled=move || { let (kvs, contexts) = request(); !model.can_run() || contexts.is_empty() || kvs.is_empty() }
                on:click=move |_| lab.run_sweep()>
                {move || format!("Measure at {}", request().1.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", "))}</button>
            <span class="hint">{move || {
                let m = model.model.get()?;
                request().1.is_empty().then(|| format!("A context of {} tokens is too small to measure in.", m.context_size))
            }}</span>
        </div>
        <RunProgress is=|k| matches!(k, JobKind::ContextSweep) testid="sweep-progress"/>
        {move || lab.sweep.get().map(|sw| {
            let contexts: Vec<usize> = sw.rows.first().map_or(vec![], |r| r.points.iter().map(|p| p.context).collect());
            let series: Vec<(String, charts::RGBColor, Vec<(f64, f64)>)> = sw.rows.iter().enumerate().map(|(i, r)| (
                format!("{} KV", r.kv),
                charts::PRECISION_COLORS[i % charts::PRECISION_COLORS.len()],
                r.points.iter().map(|p| (p.context as f64, p.decode_tokens_per_second)).collect(),
            )).collect();
            let plan = plan_short(&sw.plan.into());
            let title = format!("Decode tok/s at {plan} as the context grows");
            view! {
                <div class="chart" data-testid="sweep-chart" inner_html=charts::lines_over(&title, "tokens already in the KV cache", &series, chart_width(1000))></div>
                <table data-testid="sweep-table" tabindex="0" aria-label="Decode speed at each context length per KV format">
                    <caption>{format!("Decode tok/s at {plan}, {} tokens written at each context (timed from the second), one run each", sw.decode_tokens)}</caption>
                    <thead><tr><th>"KV cache"</th>
                        {contexts.iter().map(|c| view! { <th class="num">{format!("from {c}")}</th> }).collect_view()}
                        <th class="num">"longest ÷ shortest"</th></tr></thead>
                    <tbody>{sw.rows.iter().map(|r| view! {
                        <tr data-testid="sweep-row" data-kv=r.kv.name()>
                            <td>{r.kv.name()}</td>
                            {r.points.iter().map(|p| view! { <td class="num" data-testid="sweep-tps">{format!("{:.2}", p.decode_tokens_per_second)}</td> }).collect_view()}
                            <td class="num" data-testid="sweep-kept">{r.kept().map_or("–".into(), |k| format!("{k:.2}×"))}</td>
                        </tr>
                    }).collect_view()}</tbody>
                </table>
            }
        })}
    }
}
