//! The KV cache: its format (f32, f16, INT8, INT4, INT3, rotated or not) and how many tokens it holds.

use leptos::prelude::*;
use lowbit::KvPrecision;

use super::state::{ModelState, CONTEXT_SIZES};
use crate::ui::fmt::megabytes;
use crate::ui::glossary::Explain;

/// How the KV cache stores keys and values: f32, f16, INT8, INT4 or INT3 (those two also rotated).
#[component]
pub fn KvCache() -> impl IntoView {
    let model = expect_context::<ModelState>();
    let engine = model.engine;
    let per_token = move |kv: KvPrecision| {
        model.model.get().and_then(|m| m.info.config).map(|c| (2 * c.n_layers * c.n_kv_heads * c.head_dim) as f64 * kv.bytes_per_value())
    };
    // Why the loaded model's heads cannot be stored so, if they cannot.
    let unfit = move |kv: KvPrecision| model.model.get().and_then(|m| m.info.config).and_then(|c| c.kv_unfit(kv));
    // The longest context a format fits: one layer's keys and values in one buffer of this GPU,
    // and no longer than the model was trained for.
    let longest = move |kv: KvPrecision| {
        let m = model.model.get()?;
        let c = m.info.config?;
        let fits = c.kv_positions_in(kv, m.fit.first()?.limit);
        Some(m.info.context_length.map_or(fits, |t| t.min(fits)))
    };
    view! {
        <div class="kv-cache">
            <h3>"KV cache"</h3>
            <div class="segmented" role="group" aria-label="KV cache precision">
                {KvPrecision::ALL.iter().map(|&kv| view! {
                    <button data-testid=format!("kv-{}", kv.name())
                        aria-pressed=move || (model.kv.get() == kv).to_string()
                        disabled=move || (engine.busy() && model.kv.get() != kv) || unfit(kv).is_some()
                        title=move || unfit(kv).or_else(|| longest(kv).map(|n| format!("up to {n} tokens of context fit this GPU's buffers")))
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
            <Explain words=&["kv-cache", "rotation", "token"]>"To write each new token the model looks back at every earlier token's keys and values, \
                kept in this cache: it grows with the conversation, and long contexts make it larger than the weights. \
                f16 halves it; INT8 stores blocks of 32 values with one scale, 3.6× smaller than f32; INT4 and INT3 \
                7.1× and 9.1× smaller. -ROT rotates keys and values before rounding them, so one large value no longer \
                costs its neighbours their detail, and scales each key channel by how much the queries weigh it. INT4 and \
                INT3, rotated or not, first subtract each layer's average key (measured once, with those scales, the first \
                time you pick one of them; up to a minute on a software GPU), which attention does not notice, and keep the \
                last 16 tokens' keys and values unrounded beside their codes (in f16, a fixed 1.1 MB on the default model): \
                each new token leans hardest on the few just before it. Changing the \
                format clears the cache, so the next reply reads the conversation again (changing the context size \
                keeps it); the compare view and the quality panel show what it costs. A conversation longer than the \
                context leaves out its oldest exchanges."</Explain>
        </div>
    }
}
