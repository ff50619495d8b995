//! The inspector: one weight matrix's values, block scales and requantization error at each
//! precision, and the error each layer adds at each precision.

use leptos::prelude::*;
use lowbit_app::charts;
use lowbit_app::job::JobKind;

use super::state::LabState;
use crate::ui::fmt::plan_short;
use crate::ui::glossary::Explain;
use crate::ui::layout::chart_width;
use crate::ui::progress::RunProgress;
use crate::ui::texts::TEXTS;

#[component]
pub fn Inspector() -> impl IntoView {
    let lab = expect_context::<LabState>();
    let model = lab.model;
    let engine = model.engine;
    let chosen = RwSignal::new(String::new());
    // Default to the first FFN down-projection: a typical, small matrix.
    Effect::new(move |_| {
        let t = lab.tensors.get();
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
                    {move || lab.tensors.get().into_iter().map(|t| {
                        let label = format!("{} · {} · {}×{}", t.name, t.dtype, t.rows, t.cols);
                        view! { <option value=t.name.clone()>{label}</option> }
                    }).collect_view()}
                </select>
                <button data-testid="inspector-run" disabled=move || !model.can_run() || chosen.get().is_empty()
                    on:click=move |_| lab.inspect(&chosen.get_untracked())>"Inspect"</button>
                <span class="status">{move || engine.running(|k| matches!(k, JobKind::Inspect)).then_some("reading the tensor…")}</span>
            </div>
            {move || lab.inspection.get().map(|i| {
                let src = charts::RGBColor(0xb8, 0xc0, 0xd0);
                view! {
                    <p class="hint" data-testid="inspector-summary">{format!(
                        "{} ({}, {}×{}): {} of {} weights{}; mean {:.4}, standard deviation {:.4}",
                        i.tensor.name, i.tensor.dtype, i.tensor.rows, i.tensor.cols, i.n_values, i.n_total,
                        if i.n_values < i.n_total { format!(" ({} evenly spaced rows)", i.rows_inspected) } else { String::new() },
                        i.mean, i.std)}</p>
                    <div class="charts">
                        <div class="chart" data-testid="inspector-histogram"
                            inner_html=charts::histogram(&format!("{} values", i.tensor.dtype), i.values.lo, i.values.hi, &i.values.counts, src, chart_width(1000).min(380))></div>
                        {i.precisions.iter().filter_map(|p| p.scales.as_ref().map(|s| (p.precision, s.clone()))).map(|(p, s)| view! {
                            <div class="chart" data-testid="inspector-scales"
                                inner_html=charts::histogram(&format!("{} block scales", p.name().to_uppercase()), s.lo, s.hi, &s.counts, charts::plan_color(&p.into()), chart_width(1000).min(380))></div>
                        }).collect_view()}
                        {i.precisions.iter().map(|p| view! {
                            <div class="chart" data-testid="inspector-error"
                                inner_html=charts::histogram(&format!("{} error", p.precision.name().to_uppercase()), p.error.lo, p.error.hi, &p.error.counts, charts::plan_color(&p.precision.into()), chart_width(1000).min(380))></div>
                        }).collect_view()}
                    </div>
                    <table data-testid="inspector-errors">
                        <thead><tr><th>"precision"</th><th class="num">"RMS error / RMS weight"</th><th class="num" title="The same rows with each block's scale and offset searched (the data-free method): what a better method recovers">"searched scales"</th><th class="num">"largest error"</th><th class="num">"blocks"</th></tr></thead>
                        <tbody>{i.precisions.iter().map(|p| view! {
                            <tr data-testid="inspector-error-row" data-precision=p.precision.name()>
                                <td>{p.precision.name().to_uppercase()}</td>
                                <td class="num">{format!("{:.2e}", p.relative_rms_error)}</td>
                                <td class="num" data-testid="inspector-searched">{p.searched_relative_rms_error.map_or("–".into(), |e| format!("{e:.2e}"))}</td>
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
            <LayerErrorsView/>
        </section>
    }
}

/// Each layer's output error at each precision vs FP16, as a heatmap.
#[component]
fn LayerErrorsView() -> impl IntoView {
    let lab = expect_context::<LabState>();
    let model = lab.model;
    view! {
    <h3>"Error layer by layer"</h3>
    <Explain words=&["residual-stream"]>"The same sentence goes through the model at FP16 and at each other precision; after every \
        layer the two residual streams (the vector each token carries from layer to layer) are compared: \
        ‖other − FP16‖ / ‖FP16‖, on a logarithmic colour scale (below the chart). Brighter cells drift more. \
        An error made early travels through every later layer, yet the relative error can fall with depth: \
        every layer adds its output to the stream, so the stream grows and the same error is a smaller part \
        of it (and the first layers carry the embedding's rounding, which later layers dilute)."</Explain>
    <div class="row">
        <button data-testid="inspector-layers" disabled=move || !model.can_run()
            on:click=move |_| lab.measure_layers(TEXTS[0].1, 32)>"Measure each layer (32 tokens)"</button>
    </div>
    <RunProgress is=|k| matches!(k, JobKind::Layers) testid="layers-progress"/>
    {move || lab.layer_errors.get().map(|e| {
        let rows: Vec<(String, Vec<f64>)> = e.rows.iter().map(|(v, errs)| (plan_short(v), errs.clone())).collect();
        view! {
            <div class="chart" data-testid="inspector-heatmap"
                inner_html=charts::heatmap(&format!("relative error per layer, {} tokens", e.n_tokens), &rows, chart_width(1000))></div>
        }
    })}
    }
}
