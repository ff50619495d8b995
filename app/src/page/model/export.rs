//! *Download as GGUF*: the loaded model at its current precisions and method, written by the
//! worker as a GGUF file that llama.cpp and other GGUF runtimes load (INT4 as Q4_1, INT8 as Q8_0).

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::state::ModelState;
use crate::job::JobKind;
use crate::ui::fmt::{self, megabytes};

#[component]
pub fn ExportGguf() -> impl IntoView {
    let model = expect_context::<ModelState>();
    let engine = model.engine;
    let progress = move || {
        engine.running_as(|k| match k {
            JobKind::Export { done, total } => Some((*done, *total)),
            _ => None,
        })
    };
    view! {
        <div class="export-gguf">
            {move || match progress() {
                Some((done, total)) => view! {
                    <span>{format!("Writing GGUF: {done} / {total} tensors")}</span>
                    <progress max="1" value=fmt::fraction(done as u64, total as u64)></progress>
                    <button class="ghost small" on:click=move |_| engine.cancel()>"Cancel"</button>
                }.into_any(),
                None => view! {
                    <button class="ghost small" data-testid="export-gguf" disabled=move || !model.can_run()
                        title=move || format!("Save the weights this page runs at {} as a .gguf file that llama.cpp and other GGUF runtimes load", crate::ui::fmt::plan_name(&model.plan.get().into()))
                        on:click=move |_| model.export()>"Download as GGUF"</button>
                }.into_any(),
            }}
            {move || model.exported.get().map(|(name, bytes)| view! {
                <span class="hint" data-testid="export-done">{format!(" {name} ({})", megabytes(bytes))}</span>
            })}
        </div>
    }
}

/// Offer the worker's `blob:` URL as a download named `name`.
pub fn save(url: &str, name: &str) {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else { return };
    if let Ok(a) = doc.create_element("a") {
        let a: web_sys::HtmlAnchorElement = a.unchecked_into();
        a.set_href(url);
        a.set_download(name);
        a.click();
    }
}
