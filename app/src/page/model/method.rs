//! The quantization method: how INT8 and INT4 choose their integers and scales. The same
//! precisions, layouts and kernels; only the stored numbers differ.

use leptos::prelude::*;
use lowbit::method::Method;

use super::state::ModelState;
use crate::ui::glossary::Explain;

/// A method's name for people.
pub fn method_label(m: Method) -> &'static str {
    match m {
        Method::Rtn => "Round to nearest",
        Method::Search => "Searched scales",
        Method::Imatrix => "Importance-weighted",
        Method::Awq => "AWQ (activation-aware)",
        Method::Gptq => "GPTQ",
    }
}

#[component]
pub fn MethodPicker() -> impl IntoView {
    let model = expect_context::<ModelState>();
    let engine = model.engine;
    let method = move || model.plan.get().method;
    let fp16_only = move || !model.plan.get().quantized();
    // Every group the plan quantizes is kept as the file stores it: no method changes a number.
    let all_kept = move || model.model.get().is_some_and(|m| !m.info.method_matters(&model.plan.get())) && !fp16_only();
    view! {
        <div class="method-picker">
            <label class="inline">
                <span>"Method"</span>
                <select data-testid="method" aria-label="Quantization method"
                    prop:value=move || method().name().to_string()
                    disabled=move || engine.busy()
                    on:change=move |ev| { if let Ok(m) = Method::parse(&event_target_value(&ev)) { model.set_plan(model.plan.get_untracked().with_method(m)) } }>
                    {Method::ALL.iter().map(|&m| view! { <option value=m.name()>{method_label(m)}</option> }).collect_view()}
                </select>
            </label>
            <p class="hint" data-testid="method-explain">{move || format!("{}.", capitalized(method().explain()))}
                {move || (fp16_only() && method() != Method::Rtn).then_some(" FP16 stores every weight as it is: the method matters at INT8 and below.")}
                {move || (all_kept() && method() != Method::Rtn).then_some(" This file already stores its weights in these precisions' blocks, which are kept as they are: \
                    every method gives the same numbers here. It matters where a group is requantized (uniform INT4 or INT8, INT3, INT2).")}</p>
            {move || model.calibrated.get().map(|(tokens, secs)| view! {
                <p class="hint" data-testid="calibration-note">{format!(
                    "Calibrated on {tokens} tokens of the built-in calibration text in {secs:.1} s (once per model; every calibrated switch reuses it)."
                )}</p>
            })}
            <Explain words=&["method", "calibration"]>"A method changes only which numbers are stored: the memory and the speed are \
                the same. Importance-weighted, AWQ and GPTQ first run a calibration text through the model as stored, to see which \
                inputs each weight meets; the quality panel then compares them with FP16 on a different text."</Explain>
        </div>
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}
