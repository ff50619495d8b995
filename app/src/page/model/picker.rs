//! Recommended models on Hugging Face, with what each would take on this GPU before any download.

use leptos::prelude::*;

use super::state::ModelState;
use crate::ui::fmt::{self, megabytes};

/// Recommended models on Hugging Face ([`lowbit::catalog::MODELS`]): each with its size, licence
/// and what its weights would take on this GPU at FP16, INT8 and INT4, before any download.
/// Choosing one downloads it through the same path as a typed URL (fit check, progress, cache).
#[component]
pub fn ModelPicker() -> impl IntoView {
    let model = expect_context::<ModelState>();
    let engine = model.engine;
    let can_load = move || model.can_load();
    let rows = lowbit::catalog::MODELS.iter().map(|e| {
        let e = *e;
        let needs = move || engine.adapter.get().map(|a| e.needs(&a)).unwrap_or_default();
        let loaded = move || model.model.with(|m| m.as_ref().is_some_and(|m| m.name == e.file()));
        view! {
            <li data-testid=format!("pick-{}", e.id)>
                <div class="pick-head">
                    <a href=e.url.replace("/resolve/main/", "/blob/main/") target="_blank" rel="noopener noreferrer">{e.name}</a>
                    <button data-testid=format!("pick-{}-load", e.id) disabled=move || !can_load() || loaded()
                        aria-label=format!("Download {}", e.name)
                        title=move || if loaded() { Some("Loaded") } else { engine.busy_reason() }
                        on:click=move |_| model.load_url(e.url)>"Download"</button>
                </div>
                <span class="pick-note">{format!("{} · {} · ", e.note, e.format)}<span class="nowrap">{format!("≈ {} MB", e.file_mb)}</span>" · "
                    <span class="nowrap" data-testid="pick-license">{e.license}</span></span>
                <span class="pick-fits">{move || {
                    let needs = needs();
                    if needs.is_empty() {
                        return view! { <span>"…"</span> }.into_any();
                    }
                    needs.into_iter().map(|n| view! {
                        <span class="pick-fit" class:too-large=!n.fit.fits title=n.fit.message.clone()>
                            {format!("{} ", fmt::precision_label(n.precision))}
                            <span data-testid=format!("pick-{}-{}", e.id, n.precision)>
                                {format!("{} {}", megabytes(n.weight_bytes), if n.fit.fits { "✓" } else { "✗ too large" })}
                            </span>
                        </span>
                    }).collect_view().into_any()
                }}</span>
            </li>
        }
    }).collect_view();
    view! {
        <details class="model-picker" data-testid="model-picker">
            <summary>"More models (Hugging Face)"</summary>
            <p class="hint">"What each model's weights take on this GPU at each precision (✗: one of its buffers is larger than this GPU allows). Downloads go straight from Hugging Face to this page and stay in its cache."</p>
            <ul>{rows}</ul>
        </details>
    }
}
