//! The KV cache: its format (f32, f16, INT8) and how many tokens it holds.

use leptos::prelude::*;
use lowbit::KvPrecision;

use super::state::{ModelState, CONTEXT_SIZES};
use crate::ui::fmt::megabytes;
use crate::ui::glossary::Explain;

/// How the KV cache stores keys and values: f32, f16 or INT8.
#[component]
pub fn KvCache() -> impl IntoView {
    let model = expect_context::<ModelState>();
    let engine = model.engine;
    let per_token = move |kv: KvPrecision| {
        model.model.get().and_then(|m| m.info.config).map(|c| (2 * c.n_layers * c.n_kv_heads * c.head_dim) as f64 * kv.bytes_per_value())
    };
    view! {
        <div class="kv-cache">
            <h3>"KV cache"</h3>
            <div class="segmented" role="group" aria-label="KV cache precision">
                {KvPrecision::ALL.iter().map(|&kv| view! {
                    <button data-testid=format!("kv-{}", kv.name())
                        aria-pressed=move || (model.kv.get() == kv).to_string()
                        disabled=move || engine.busy() && model.kv.get() != kv
                        on:click=move |_| model.set_kv(kv)>
                        <span class="p-name">{kv.name().to_uppercase()}</span>
                        <span class="p-bytes">{move || per_token(kv).map_or_else(|| format!("{} bytes/value", kv.bytes_per_value()), |b| format!("{:.1} KB/token", b / 1e3))}</span>
                    </button>
                }).collect_view()}
            </div>
            <label class="inline context-size">
                <span>"context"</span>
                <select data-testid="context-size" disabled=move || engine.busy()
                    on:change=move |ev| { if let Ok(n) = event_target_value(&ev).parse::<usize>() { model.set_context(n) } }>
                    {move || {
                        let max = model.model.get().and_then(|m| m.info.context_length).unwrap_or(usize::MAX);
                        let now = model.model.get().map_or(model.n_ctx.get(), |m| m.context_size);
                        CONTEXT_SIZES.iter().filter(|&&n| n <= max).map(|&n| view! {
                            <option value=n.to_string() selected=n == now>{format!("{n} tokens")}</option>
                        }).collect_view()
                    }}
                </select>
            </label>
            <p class="hint" data-testid="kv-bytes">{move || match model.model.get() {
                Some(m) => format!("{} for {} tokens at {}", megabytes(m.kv_bytes), m.context_size, model.kv.get()),
                None => format!("{} (applied after the load)", model.kv.get()),
            }}</p>
            <Explain words=&["kv-cache", "token"]>"To write each new token the model looks back at every earlier token's keys and values, \
                kept in this cache: it grows with the conversation, and long contexts make it larger than the weights. \
                f16 halves it; INT8 stores blocks of 32 values with one scale, 3.6× smaller than f32. Changing the \
                format clears the cache, so the next reply reads the conversation again (changing the context size \
                keeps it); the compare view and the quality panel show what it costs. A conversation longer than the \
                context leaves out its oldest exchanges."</Explain>
        </div>
    }
}
