//! The model panel: the default model, a file, a URL, the picker, load progress and the model
//! cache.

use leptos::prelude::*;
use lowbit::session::Stage;
use lowbit_app::protocol::CachedModel;
use serde::Deserialize;

use super::picker::ModelPicker;
use super::state::ModelState;
use crate::ui::fmt::{self, megabytes, plan_name};
use crate::ui::layout::fetch_text;

#[derive(Clone, Debug, Deserialize)]
struct ModelEntry {
    file: String,
    bytes: u64,
    source: String,
    license: String,
}

#[derive(Clone, Debug, Deserialize)]
struct Manifest {
    models: Vec<ModelEntry>,
}

#[component]
pub fn ModelPanel() -> impl IntoView {
    let model = expect_context::<ModelState>();
    let dragging = RwSignal::new(false);
    let can_load = move || model.can_load();
    let on_file = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        if let Some(fs) = input.files() {
            open_files(model, &fs);
        }
        input.set_value("");
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        if !can_load() {
            return;
        }
        if let Some(fs) = ev.data_transfer().and_then(|d| d.files()) {
            open_files(model, &fs);
        }
    };
    view! {
        <section
            class="model-panel"
            class:dragging=move || dragging.get()
            data-testid="model-panel"
            on:dragover=move |ev: leptos::ev::DragEvent| { ev.prevent_default(); dragging.set(true); }
            on:dragleave=move |_| dragging.set(false)
            on:drop=on_drop
        >
            <h2>"Model"</h2>
            <p class="status" data-testid="model-status">{move || model_status(&model)}</p>
            <DefaultModel/>
            <div class="open-row">
                <label class="file-button" class:disabled=move || !can_load()>
                    "Open a .gguf file…"
                    <input type="file" accept=".gguf,.safetensors,.json,.jinja" multiple data-testid="model-file-input" on:change=on_file disabled=move || !can_load()/>
                </label>
                <label class="file-button" class:disabled=move || !can_load() title="A Hugging Face checkpoint's folder: config.json, tokenizer.json and its .safetensors">
                    "Open a checkpoint folder…"
                    <input type="file" prop:webkitdirectory=true data-testid="model-folder-input" on:change=on_file disabled=move || !can_load()/>
                </label>
                <span class="hint">"or drop a .gguf file, or a checkpoint's files, here"</span>
            </div>
            <UrlForm/>
            <ModelPicker/>
            <LoadProgress/>
            <CachedList/>
        </section>
    }
}

/// The model this page ships (`models/manifest.json`), with its size and origin.
#[component]
fn DefaultModel() -> impl IntoView {
    let model = expect_context::<ModelState>();
    let engine = model.engine;
    let can_load = move || model.can_load();
    let manifest = LocalResource::new(|| async {
        let text = fetch_text("models/manifest.json").await?;
        serde_json::from_str::<Manifest>(&text).map_err(|e| format!("models/manifest.json: {e}"))
    });
    view! {
    <Suspense fallback=|| view! { <p>"Looking for models…"</p> }>
        {move || manifest.get().map(|r| match r {
            Ok(m) => m.models.into_iter().take(1).map(|e| {
                let url = format!("models/{}", e.file);
                let file = StoredValue::new(e.file.clone());
                let loaded = move || model.model.with(|m| m.as_ref().is_some_and(|m| file.with_value(|f| m.name == *f)));
                view! {
                    <div class="default-model">
                        <button data-testid="model-load-default" disabled=move || !can_load() || loaded()
                            title=move || if loaded() { Some("The default model is loaded") } else { engine.busy_reason() }
                            on:click=move |_| model.load_url(&url)>"Load the default model"</button>
                        <dl>
                            <dt>"File"</dt><dd data-testid="model-file">{e.file.clone()}</dd>
                            <dt>"Size"</dt><dd data-testid="model-size">{format!("{} ({} bytes)", megabytes(e.bytes), e.bytes)}</dd>
                            <dt>"From"</dt><dd>{format!("{} · {}", e.source, e.license)}</dd>
                        </dl>
                    </div>
                }
            }).collect_view().into_any(),
            Err(e) => view! { <p class="error" data-testid="model-error">{e}</p> }.into_any(),
        })}
    </Suspense>
    }
}

/// Files picked or dropped: one GGUF file, or a Hugging Face checkpoint's files (those it reads;
/// from a picked folder, those at its top, the folder naming the model).
fn open_files(model: ModelState, list: &web_sys::FileList) {
    let files: Vec<web_sys::File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
    match &files[..] {
        [] => {}
        [f] if f.name().to_ascii_lowercase().ends_with(".gguf") => model.load_file(f.clone()),
        _ => {
            // A folder's files carry their path inside it ("SmolLM2-135M-Instruct/config.json").
            let path = |f: &web_sys::File| js_sys::Reflect::get(f, &"webkitRelativePath".into()).ok().and_then(|p| p.as_string()).unwrap_or_default();
            let folder = files.iter().find_map(|f| path(f).split_once('/').map(|(d, _)| d.to_string()));
            let wanted: Vec<web_sys::File> =
                files.into_iter().filter(|f| path(f).matches('/').count() <= 1 && lowbit::hf::reads_file(&f.name())).collect();
            model.load_checkpoint_files(folder.unwrap_or_else(|| "checkpoint".into()), wanted);
        }
    }
}

/// A model file's address (Hugging Face, or this site), or a Hugging Face model id (its
/// full-precision checkpoint).
#[component]
fn UrlForm() -> impl IntoView {
    let model = expect_context::<ModelState>();
    let can_load = move || model.can_load();
    let url = RwSignal::new(String::new());
    view! {
    <form class="url-row" novalidate on:submit=move |ev| {
        ev.prevent_default();
        if can_load() && !url.get_untracked().trim().is_empty() { model.load_url(url.get_untracked().trim()) }
    }>
        <input type="url" placeholder="HuggingFaceTB/SmolLM2-135M-Instruct, or a …/resolve/main/model.gguf link" data-testid="model-url-input"
            aria-label="Model: a Hugging Face model id, or a GGUF file's address"
            prop:value=move || url.get() on:input=move |ev| url.set(event_target_value(&ev))/>
        <button type="submit" data-testid="model-url-load" disabled=move || !can_load() || url.get().trim().is_empty()>"Download"</button>
    </form>
    }
}

fn model_status(model: &ModelState) -> String {
    let engine = model.engine;
    if engine.adapter.get().is_none() {
        return match engine.error.get() {
            Some((lowbit_app::protocol::ErrorKind::NoWebgpu, _)) => {
                "WebGPU is not available here: lowbit needs a browser with WebGPU (Chrome, Edge, or Firefox/Safari with WebGPU on)".into()
            }
            _ => "starting the engine (WebGPU)…".into(),
        };
    }
    if let Some((name, _)) = engine.loading() {
        return format!("loading {name}…");
    }
    if let Some((p, _)) = engine.switching() {
        return format!("switching to {}…", plan_name(&p.into()));
    }
    let at = plan_name(&model.plan.get().into());
    // A measurement runs: the model is busy with it, and says so.
    let doing = engine.job.get().and_then(|r| Some((r.kind.doing()?, r.step)));
    match (model.model.get(), doing) {
        (Some(m), Some((doing, step))) => {
            format!("{} at {at}: {doing}{}…", m.name, step.map_or(String::new(), |s| format!(" (step {} of {})", s.done + 1, s.total)))
        }
        (Some(m), _) if m.recovered => format!("ready: {} at {at} (loaded again on a new GPU device after the last one was lost)", m.name),
        (Some(m), _) => format!("ready: {} at {at}", m.name),
        (None, _) => "no model loaded".into(),
    }
}

#[component]
pub fn LoadProgress() -> impl IntoView {
    let model = expect_context::<ModelState>();
    let engine = model.engine;
    move || {
        engine.loading().map(|(name, stages)| {
            view! {
                <div class="load-progress" data-testid="load-progress">
                    <div class="load-head">
                        <span>{format!("Loading {name}")}</span>
                        <button class="ghost" data-testid="load-cancel" on:click=move |_| engine.cancel()>"Cancel"</button>
                    </div>
                    {Stage::ALL.iter().filter(|&&st| st != Stage::Calibrate || stages.iter().any(|p| p.stage == st)).map(|&st| {
                        let p = stages.iter().find(|p| p.stage == st).copied();
                        let (frac, text) = match p {
                            Some(p) if st == Stage::Compile => (fmt::fraction(p.done, p.total), format!("{} / {} kernels", p.done, p.total)),
                            Some(p) if st == Stage::Calibrate => (fmt::fraction(p.done, p.total), format!("{} / {} tokens", p.done, p.total)),
                            Some(p) => (fmt::fraction(p.done, p.total), format!("{} / {}", megabytes(p.done), megabytes(p.total))),
                            None => (0.0, "waiting".to_string()),
                        };
                        view! {
                            <div class="stage" data-stage=format!("{st:?}").to_lowercase()>
                                <span class="stage-name">{st.label()}</span>
                                <progress max="1" value=frac></progress>
                                <span class="stage-bytes">{text}</span>
                            </div>
                        }
                    }).collect_view()}
                </div>
            }
        })
    }
}

#[component]
pub fn CachedList() -> impl IntoView {
    let model = expect_context::<ModelState>();
    let engine = model.engine;
    view! {
        <div class="cached" data-testid="cached-models">
            <h3>"Cached on this device"</h3>
            {move || {
                let entries = model.cache.get();
                if entries.is_empty() {
                    return view! { <p class="hint">"Nothing yet: a loaded model is kept here for the next visit."</p> }.into_any();
                }
                let total: u64 = entries.iter().map(|e| e.bytes).sum();
                view! {
                    <ul>
                        {entries.into_iter().map(|e: CachedModel| {
                            let (e1, key) = (e.clone(), e.key.clone());
                            view! {
                                <li data-testid="cached-model">
                                    <span class="name">{e.name.clone()}<small class="source">{cached_source(&e.key)}</small></span>
                                    <span class="size">{megabytes(e.bytes)}</span>
                                    <button class="small" disabled=move || engine.busy() || engine.adapter.get().is_none()
                                        on:click=move |_| model.load_cached(&e1)>"Load"</button>
                                    <button class="small ghost" data-testid="cached-delete" disabled=move || engine.busy()
                                        on:click=move |_| model.delete_cached(&key)>"Delete"</button>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                    <p class="hint">{format!("{} in all", megabytes(total))}</p>
                }.into_any()
            }}
        </div>
    }
}

/// Where a cached model came from: its URL, or a file the user opened.
fn cached_source(key: &str) -> String {
    if key.contains(lowbit_app::protocol::model::LOCAL_FILE_KEY) {
        "opened from a file".into()
    } else if key.ends_with('/') {
        format!("Hugging Face checkpoint, {key}")
    } else {
        key.to_string()
    }
}
