//! The activations' format: what the INT8 and INT4 matrices multiply, f32 or 8-bit.

use leptos::prelude::*;
use lowbit::Activations;

use super::state::ModelState;
use crate::ui::glossary::Explain;

/// Weights-only quantization (f32 activations) or 8-bit activations too (W8A8, W4A8).
#[component]
pub fn ActivationsFormat() -> impl IntoView {
    let model = expect_context::<ModelState>();
    let engine = model.engine;
    // 8-bit activations change nothing unless some matrix is at INT8 or INT4.
    let applies = move || model.plan.get().precisions().into_iter().any(|p| p.int_dot());
    view! {
        <div class="activations">
            <h3>"Activations"</h3>
            <div class="segmented" role="group" aria-label="Activations' format">
                {Activations::ALL.iter().map(|&a| view! {
                    <button data-testid=format!("act-{}", a.name())
                        aria-pressed=move || (model.act.get() == a).to_string()
                        disabled=move || engine.busy() && model.act.get() != a
                        on:click=move |_| model.set_act(a)>
                        <span class="p-name">{a.name().to_uppercase()}</span>
                        <span class="p-bytes">{match a {
                            Activations::F32 => "weights only",
                            Activations::Int8 => "8-bit inputs too",
                        }}</span>
                    </button>
                }).collect_view()}
            </div>
            <p class="hint" data-testid="act-status">{move || match (model.act.get(), applies()) {
                (Activations::F32, _) => "The matrices multiply 32-bit activations: only the weights are quantized.".to_string(),
                (_, true) => "The INT8 and INT4 matrices multiply 8-bit activations, as whole numbers.".to_string(),
                (_, false) => "No matrix is at INT8 or INT4 now: 8-bit activations apply once one is.".to_string(),
            }}</p>
            <Explain words=&["activations"]>"Quantizing the weights saves memory; quantizing what they multiply too lets \
                the arithmetic itself be done on 8-bit whole numbers, four at a time, which is where the speed of low \
                precision on fast GPUs comes from. Each block of 32 inputs gets its own scale, as the weights do. The \
                quality panel and the compare view measure what it costs; the speed panel's benchmark what it buys on \
                this GPU (on a software GPU, little: there, reading the weights is what takes the time)."</Explain>
        </div>
    }
}
