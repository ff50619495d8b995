//! The sampling settings a reply is drawn with (and the compare view's lanes).

use leptos::prelude::*;

use super::state::ChatState;

#[component]
pub fn SamplingPanel() -> impl IntoView {
    let chat = expect_context::<ChatState>();
    let num = move |label: &'static str, id: &'static str, step: &'static str, get: fn(&lowbit::sampler::SamplerConfig) -> String, set: fn(&mut lowbit::sampler::SamplerConfig, f64)| {
        view! {
            <label>
                <span>{label}</span>
                <input type="number" step=step data-testid=id prop:value=move || chat.sampling.with(get)
                    on:change=move |ev| { if let Ok(v) = event_target_value(&ev).parse::<f64>() { chat.sampling.update(|s| set(s, v)) } }/>
            </label>
        }
    };
    view! {
        <details class="sampling" data-testid="sampling">
            <summary>"Sampling"</summary>
            <div class="grid">
                {num("temperature (0 = greedy)", "temperature", "0.05", |s| s.temperature.to_string(), |s, v| s.temperature = v.max(0.0) as f32)}
                {num("top-k (0 = off)", "top-k", "1", |s| s.top_k.to_string(), |s, v| s.top_k = v.max(0.0) as usize)}
                {num("top-p", "top-p", "0.01", |s| s.top_p.to_string(), |s, v| s.top_p = v.clamp(0.0, 1.0) as f32)}
                {num("min-p", "min-p", "0.01", |s| s.min_p.to_string(), |s, v| s.min_p = v.clamp(0.0, 1.0) as f32)}
                {num("repetition penalty", "repetition-penalty", "0.05", |s| s.repetition_penalty.to_string(), |s, v| s.repetition_penalty = v.max(0.01) as f32)}
                {num("seed", "seed", "1", |s| s.seed.to_string(), |s, v| s.seed = v.max(0.0) as u64)}
            </div>
        </details>
    }
}
