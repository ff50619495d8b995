//! The precision panel: FP16, INT8, INT4 or the file's own, a precision per tensor group, and
//! the KV cache.

use leptos::prelude::*;
use lowbit::plan::{Group, Plan};
use lowbit::method::Method;
use lowbit::session::Stage;
use lowbit::Precision;

use super::method::MethodPicker;

use super::activations::ActivationsFormat;
use super::kv::KvCache;
use super::state::ModelState;
use crate::ui::fmt::{self, megabytes, precision_label};
use crate::ui::glossary::Explain;

#[component]
pub fn PrecisionPanel() -> impl IntoView {
    let model = expect_context::<ModelState>();
    let engine = model.engine;
    let bytes_at = move |p: Precision| model.model.get().map(|m| m.info.weight_bytes_at(p));
    // Whether the active plan has `plan`'s precisions (whatever its method).
    // Before a load nothing is pressed unless chosen: the file's own precisions are the default.
    let at = move |plan: Plan| (model.loaded() || model.plan_chosen.get()) && model.plan.get().with_method(Method::Rtn) == plan;
    view! {
        <section class="precision-panel">
            <h2>"Precision"</h2>
            <div class="segmented" role="group" aria-label="Weight precision">
                {Precision::ALL.iter().map(|&p| view! {
                    <button
                        data-testid=format!("precision-{}", p.name())
                        aria-pressed=move || at(Plan::uniform(p)).to_string()
                        disabled=move || engine.busy() && !at(Plan::uniform(p))
                        title=move || (!at(Plan::uniform(p))).then(|| engine.busy_reason()).flatten()
                        on:click=move |_| model.set_plan(Plan::uniform(p).with_method(model.plan.get_untracked().method))
                    >
                        <span class="p-name">{precision_label(p)}</span>
                        <span class="p-bytes">{move || bytes_at(p).map(megabytes).unwrap_or_else(|| format!("{:.1} bits/weight", p.bits_per_weight()))}</span>
                    </button>
                }).collect_view()}
                {move || {
                    // A file stored at mixed precisions (say Q4_1 matrices, a Q8_0 embedding) gets
                    // a button for exactly those.
                    let info = model.model.get()?.info;
                    let (own, _) = info.suggested_plan();
                    own.uniform_precision().is_none().then(|| view! {
                        <button
                            data-testid="precision-file"
                            aria-pressed=move || at(own).to_string()
                            disabled=move || engine.busy() && !at(own)
                            title=move || engine.busy_reason().map(str::to_string).unwrap_or_else(|| format!("The precisions the file stores: {}", fmt::plan_name(&own.into())))
                            on:click=move |_| model.set_plan(own.with_method(model.plan.get_untracked().method))
                        >
                            <span class="p-name">"As stored"</span>
                            <span class="p-bytes">{megabytes(info.weight_bytes_of(&own))}</span>
                        </button>
                    })
                }}
            </div>
            {move || (!model.loaded() && !model.plan_chosen.get()).then(|| view! {
                <p class="hint" data-testid="precision-default">"A model loads at the precisions its file stores (As stored) unless you pick one here."</p>
            })}
            <MethodPicker/>
            {move || model.plan_reason.get().map(|why| view! {
                <p class="hint" data-testid="precision-reason">{format!("Loaded at {why}.")}</p>
            })}
            {move || engine.switching().map(|(p, prog)| view! {
                <div class="switch-progress" data-testid="switch-progress">
                    <span>{match prog {
                        Some(g) if g.stage == Stage::Calibrate => format!("Calibrating for {}: {} / {} tokens", fmt::plan_name(&p.into()), g.done, g.total),
                        _ => format!("Requantizing to {}", fmt::plan_name(&p.into())),
                    }}</span>
                    <progress max="1" value=prog.map_or(0.0, |g| fmt::fraction(g.done, g.total))></progress>
                    <button class="ghost small" on:click=move |_| engine.cancel()>"Cancel"</button>
                </div>
            })}
            <p class="weights">
                "Weights on the GPU: "
                <span data-testid="weights-bytes">{move || if model.model.get().is_some() {
                    format!("{} at {}", megabytes(model.weight_bytes.get()), fmt::plan_name(&model.plan.get().into()))
                } else {
                    "no model loaded".into()
                }}</span>
                {move || model.last_switch_ms.get().map(|ms| view! { <span class="hint">{format!(" (last switch {:.1} s)", ms / 1e3)}</span> })}
            </p>
            <super::export::ExportGguf/>
            <MixedPrecision/>
            <KvCache/>
            <ActivationsFormat/>
            <Explain words=&["quantization", "block-scale"]>"Switching requantizes the loaded file's weights on this device and keeps the conversation. Each reply is labelled with the precision that wrote it."</Explain>
            <PrecisionExplained/>
        </section>
    }
}

/// Precision per tensor group: e.g. INT4 feed-forward with FP16 attention.
#[component]
pub fn MixedPrecision() -> impl IntoView {
    let model = expect_context::<ModelState>();
    let engine = model.engine;
    let draft = RwSignal::new(model.plan.get_untracked());
    // Follow the active plan whenever it changes (a switch, a load).
    Effect::new(move |_| draft.set(model.plan.get()));
    let bytes = move || model.model.get().map(|m| m.info.weight_bytes_of(&draft.get()));
    view! {
        <details class="mixed" data-testid="mixed-precision">
            <summary>"Mixed precision: a precision per tensor group"</summary>
            <div class="mixed-grid">
                {Group::ALL.iter().map(|&g| view! {
                    <label>
                        <span>{g.label()}</span>
                        <select data-testid=format!("mix-{}", g.name())
                            prop:value=move || draft.get().get(g).name().to_string()
                            on:change=move |ev| { if let Ok(p) = Precision::parse(&event_target_value(&ev)) { draft.update(|d| *d = d.with(g, p)) } }>
                            {Precision::ALL.iter().map(|p| view! { <option value=p.name()>{precision_label(*p)}</option> }).collect_view()}
                        </select>
                    </label>
                }).collect_view()}
            </div>
            <p class="hint" data-testid="mix-bytes">{move || match bytes() {
                Some(b) => format!("{}: {} of weights", draft.get(), megabytes(b)),
                None => "Load a model to see the memory of a mix.".into(),
            }}</p>
            <button data-testid="mix-apply" disabled=move || engine.busy() || draft.get() == model.plan.get()
                on:click=move |_| model.set_plan(draft.get_untracked())>"Apply"</button>
            <Explain words=&["quantization"]>"Not every weight matters equally. The feed-forward matrices hold about two thirds of a \
                layer's weights, so INT4 there saves most of the memory; attention and the output head are often more \
                sensitive. Only the groups you change are requantized. The quality panel measures the mix beside FP16, INT8 \
                and INT4."</Explain>
        </details>
    }
}

/// What block scales are, why INT4 is 5 bits per weight, and when speed follows bytes (with
/// what the speed panel measured on this GPU, so the two panels say the same).
#[component]
fn PrecisionExplained() -> impl IntoView {
    let lab = expect_context::<crate::lab::LabState>();
    view! {
    <details class="learn" data-testid="precision-explained">
        <summary>"What do these numbers mean?"</summary>
        <p><strong>"Block scales. "</strong>"INT8 and INT4 cut every row of weights into blocks of 32. Each block keeps one \
            small number, its scale (for INT4 also a minimum), and the 32 weights are stored as whole numbers that the \
            scale turns back into real values. Blocks let a large weight in one place not spoil the precision of small \
            weights elsewhere."</p>
        <p><strong>"Why INT4 is not exactly 4× smaller. "</strong>"FP16 spends 16 bits on every weight. INT4 spends 4 \
            bits on each weight plus a 16-bit scale and a 16-bit minimum per block of 32: 32 × 4 + 32 = 160 bits, or \
            5 bits per weight, so 3.2× smaller. INT8 is 8 bits plus a 16-bit scale per block: 8.5 bits. The norms stay \
            in 32-bit floats."</p>
        <p><strong>"INT3 and INT2. "</strong>"The same scheme with 8 and 4 levels per block: 4 and 3 bits per \
            weight. Each bit less doubles the rounding step, and below 4 bits a small model's quality falls off a cliff: \
            the quality panel measures it (tick “INT3 and INT2”). Careful methods push the cliff lower, they do not \
            remove it."</p>
        <p><strong>"When speed follows bytes. "</strong>"Writing one token reads every weight of the model once and does \
            only two arithmetic operations with each. A typical GPU does arithmetic far faster than it fetches memory, so \
            the time per token is mostly the time to read the weights: fewer bytes per weight, more tokens per second. \
            Not every GPU is typical: a software GPU, or a fast one running many small kernels, is limited by arithmetic or by \
            the overhead between kernels instead. (Reading a prompt is different: many tokens share each weight read, so it \
            leans on arithmetic.)"</p>
        <p data-testid="precision-speed-limit">{move || match crate::lab::speed::limit_sentence(&lab) {
            Some(l) => format!("Measured in the speed panel: {l}"),
            None => "Which it is on this GPU, the lab's speed panel measures: profile a decode step there.".into(),
        }}</p>
    </details>
    }
}
