//! lowbit page (Leptos, client-side rendered). Components only: the model runs in the engine
//! worker (`bin/lowbit-worker.rs`), reached through `client.rs`; all numerics live in the engine.

mod client;
mod diagnostics;
mod fmt;
mod glossary;
mod idb;
mod saved;
mod lab;
mod texts;

use leptos::prelude::*;
use lowbit::session::Stage;
use lowbit::plan::{Group, Plan};
use lowbit::{KvPrecision, Precision};
use lowbit_app::charts;
use lowbit_app::protocol::CachedModel;
use serde::Deserialize;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use client::{ChatMsg, Store};
use glossary::Explain;
use fmt::{megabytes, plan_label, plan_short, precision_label};

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

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

async fn fetch_text(url: &str) -> Result<String, String> {
    let window = web_sys::window().ok_or("no window")?;
    let resp = JsFuture::from(window.fetch_with_str(url)).await.map_err(|e| format!("{e:?}"))?;
    let resp: web_sys::Response = resp.dyn_into().map_err(|_| "not a Response")?;
    if !resp.ok() {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    let text = JsFuture::from(resp.text().map_err(|e| format!("{e:?}"))?).await.map_err(|e| format!("{e:?}"))?;
    text.as_string().ok_or_else(|| "not text".into())
}

#[component]
fn App() -> impl IntoView {
    let store = Store::new();
    provide_context(store);
    lab::apply_url(&store);
    client::start_worker(store);
    store.restore_chats();
    view! {
        <main>
            <a class="skip-link" href="#chat" data-testid="skip-to-chat" on:click=move |ev: leptos::ev::MouseEvent| {
                ev.prevent_default();
                if let Some(el) = document().query_selector("[data-testid=chat-input]").ok().flatten() {
                    if let Ok(el) = el.dyn_into::<web_sys::HtmlElement>() {
                        el.scroll_into_view();
                        let _ = el.focus();
                    }
                }
            }>"Skip to the chat"</a>
            <header>
                <h1>"lowbit"</h1>
                <p>"A small quantized language model on your own GPU, in FP16, INT8 or INT4. Nothing you type leaves this page."</p>
            </header>
            <ErrorBanner/>
            <div class="layout" class:loaded=move || store.model.get().is_some()>
                <aside>
                    <ModelPanel/>
                    <PrecisionPanel/>
                    <ModelCard/>
                </aside>
                <div class="chat-column">
                    <ChatPanel/>
                    <SamplingPanel/>
                    <ChatsPanel/>
                </div>
            </div>
            <lab::CompareView/>
            <QualityPanel/>
            <lab::SpeedPanel/>
            <lab::Inspector/>
            <glossary::Glossary/>
            <details class="diagnostics">
                <summary>"Diagnostics: your GPU, kernel self-test and benchmark"</summary>
                <diagnostics::AdapterPanel adapter=store.adapter/>
                <diagnostics::SelfTestPanel/>
                <diagnostics::BenchPanel/>
                <DeviceLoss/>
                <GpuHoldings/>
            </details>
        </main>
    }
}

/// A perplexity beside FP16's: `+2.3%`, and whether the difference is inside the run's noise.
fn vs_fp16(r: &lowbit::quality::Quality, fp16_ppl: f64) -> String {
    match r.noise_vs_fp16 {
        _ if r.precision == "fp16" || !fp16_ppl.is_finite() => "–".into(),
        Some(noise) => {
            let pct = (r.ppl / fp16_ppl - 1.0) * 100.0;
            let band = (noise.exp() - 1.0) * 100.0;
            if r.within_noise_of(fp16_ppl) { format!("{pct:+.1}% (within ±{band:.1}% noise)") } else { format!("{pct:+.1}% (noise ±{band:.1}%)") }
        }
        None => format!("{:+.1}%", (r.ppl / fp16_ppl - 1.0) * 100.0),
    }
}

/// What the perplexity differences mean on a text of `n` tokens: which rows this text cannot
/// tell from FP16, and why a lower perplexity than FP16's is luck rather than a better model.
fn noise_note(rows: &[lowbit::quality::Quality], fp16_ppl: f64, n: usize) -> String {
    let others: Vec<&lowbit::quality::Quality> = rows.iter().filter(|r| r.precision != "fp16" && r.noise_vs_fp16.is_some()).collect();
    let (same, apart): (Vec<_>, Vec<_>) = others.iter().partition(|r| r.within_noise_of(fp16_ppl));
    let names = |v: &[&&lowbit::quality::Quality]| v.iter().map(|r| plan_short(&r.precision)).collect::<Vec<_>>().join(", ");
    let mut note = String::from(
        "Noise: the same text scored at two precisions differs token by token; two standard errors of that difference \
         over this text give the ± band. ",
    );
    if !same.is_empty() {
        note += &format!(
            "{} cannot be told apart from FP16 on these {n} tokens: the difference is inside the band{}. ",
            names(&same),
            if same.iter().any(|r| r.ppl < fp16_ppl) { ", so a lower perplexity than FP16's is chance, not a better model (rounding helps some tokens as often as it hurts others)" } else { "" }
        );
    }
    if !apart.is_empty() {
        note += &format!("{} differ{} from FP16 by more than the band. ", names(&apart), if apart.len() == 1 { "s" } else { "" });
    }
    note + "A longer text narrows the band."
}

/// The window's width in CSS pixels, when the browser gives it.
pub fn window_width() -> Option<f64> {
    leptos::prelude::window().inner_width().ok().and_then(|w| w.as_f64())
}

/// The width a chart can take in a panel on this window, at most `max` pixels (charts are drawn
/// at this size; narrower windows scale them down).
pub fn chart_width(max: u32) -> u32 {
    let window = window_width().unwrap_or(1280.0);
    // main's padding (2 × 24 at most), a section's padding and border (2 × 19), a scroll bar.
    ((window.min(1280.0) - 48.0 - 38.0 - 16.0).max(0.0) as u32).clamp(260, max.max(260))
}

/// The saved chats: open, delete, export and import; where they are kept and how much room.
#[component]
fn ChatsPanel() -> impl IntoView {
    let store = expect_context::<Store>();
    let on_import = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|f| f.get(0)) else { return };
        input.set_value("");
        leptos::task::spawn_local(async move {
            match JsFuture::from(file.text()).await {
                Ok(text) => store.import_chats(&text.as_string().unwrap_or_default()),
                Err(_) => store.history_note.set(Some("The file could not be read.".into())),
            }
        });
    };
    let when = |ms: f64| String::from(js_sys::Date::new(&ms.into()).to_locale_string("en-GB", &wasm_bindgen::JsValue::UNDEFINED));
    view! {
        <details class="chats" data-testid="chats">
            <summary>{move || format!("Saved chats ({})", store.chats.with(|c| c.len()))}</summary>
            <p class="hint" data-testid="storage-estimate">{move || match store.storage.get() {
                Some((kept, used, quota)) => format!(
                    "Kept in this browser only (IndexedDB), never sent anywhere: this site uses {} of {} here; {}.",
                    megabytes(used as u64), megabytes(quota as u64),
                    if kept { "the browser keeps it when space runs low" } else { "the browser may clear it when space runs low (export to keep a copy)" }
                ),
                None => "Kept in this browser only (IndexedDB), never sent anywhere.".into(),
            }}</p>
            <ul class="chat-list">
                <For each=move || store.chats.get() key=|c| (c.id.clone(), c.updated_ms.to_bits()) children=move |c| {
                    let (id, id2) = (c.id.clone(), c.id.clone());
                    let this = StoredValue::new(c.id.clone());
                    let current = move || this.with_value(|id| store.chat_id.get() == *id);
                    view! {
                        <li data-testid="saved-chat" class:current=current.clone()>
                            <button class="ghost link-like" data-testid="open-chat" aria-current=move || current().then_some("true")
                                disabled=move || store.generating().is_some()
                                on:click=move |_| store.open_chat(&id)>{c.title.clone()}</button>
                            <span class="hint">{format!("{} · {} messages", when(c.updated_ms), c.messages.len())}</span>
                            <button class="ghost small" data-testid="delete-chat" aria-label=format!("Delete the chat “{}”", c.title)
                                on:click=move |_| store.delete_chat(&id2)>"Delete"</button>
                        </li>
                    }
                }/>
            </ul>
            <div class="row">
                <button class="ghost small" data-testid="export-chats" disabled=move || store.chats.with(|c| c.is_empty())
                    on:click=move |_| store.export_chats()>"Export all (JSON)"</button>
                <label class="file-button small">
                    "Import chats…"
                    <input type="file" accept=".json,application/json" data-testid="import-chats" on:change=on_import/>
                </label>
            </div>
            {move || store.history_note.get().map(|n| view! { <p class="hint" data-testid="history-note" role="status">{n}</p> })}
        </details>
    }
}

/// Diagnostics: destroy the GPU device as a driver reset would, to see (and test) the recovery.
#[component]
fn DeviceLoss() -> impl IntoView {
    let store = expect_context::<Store>();
    view! {
        <section data-testid="device-loss">
            <h2>"A lost GPU"</h2>
            <Explain>"A driver update, a GPU reset or the browser reclaiming memory can take the GPU device away \
                from a page. lowbit then asks for a new device and loads the same model again at the same precision; \
                the conversation stays, and the next reply reads it again. This button destroys the device to show it."</Explain>
            <button data-testid="lose-device" disabled=move || !store.can_chat() title=move || store.busy_reason()
                on:click=move |_| store.lose_device()>"Simulate a lost GPU"</button>
        </section>
    }
}

/// Diagnostics: what the engine holds on the GPU now, counted after every job.
#[component]
fn GpuHoldings() -> impl IntoView {
    let store = expect_context::<Store>();
    view! {
        <section data-testid="gpu-holdings">
            <h2>"What the engine holds on the GPU"</h2>
            <Explain>"Every buffer lowbit makes on the GPU is counted while it exists. Switching precision or \
                loading a model again gives back what the model held before, so after any number of switches the \
                counts return to what they were at the same precision; after a lost GPU there is still one device."</Explain>
            <p data-testid="gpu-resources" role="status">{move || match store.resources.get() {
                None => "not counted yet".to_string(),
                Some((devices, live)) => format!(
                    "{devices} GPU device{}, {} buffer{} holding {}",
                    if devices == 1 { "" } else { "s" },
                    live.buffers,
                    if live.buffers == 1 { "" } else { "s" },
                    megabytes(live.bytes),
                ),
            }}</p>
            <p class="hint" data-testid="gpu-resources-exact">{move || store.resources.get().map(|(d, l)| format!("devices={d} buffers={} bytes={}", l.buffers, l.bytes))}</p>
        </section>
    }
}

#[component]
fn ErrorBanner() -> impl IntoView {
    let store = expect_context::<Store>();
    move || {
        store.error.get().map(|(kind, msg)| {
            view! {
                <div class="error-banner" role="alert" data-testid="error-message" data-kind=format!("{kind:?}")>
                    <strong>{kind.title()}</strong>
                    <span>{msg}</span>
                    <button class="ghost" data-testid="error-dismiss" on:click=move |_| store.error.set(None)>"Dismiss"</button>
                </div>
            }
        })
    }
}

#[component]
fn ModelPanel() -> impl IntoView {
    let store = expect_context::<Store>();
    let manifest = LocalResource::new(|| async {
        let text = fetch_text("models/manifest.json").await?;
        serde_json::from_str::<Manifest>(&text).map_err(|e| format!("models/manifest.json: {e}"))
    });
    let url = RwSignal::new(String::new());
    let dragging = RwSignal::new(false);
    let ready = move || store.adapter.get().is_some();
    let can_load = move || ready() && !store.busy();
    let on_file = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        if let Some(f) = input.files().and_then(|fs| fs.get(0)) {
            store.load_file(f);
        }
        input.set_value("");
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        if !can_load() {
            return;
        }
        if let Some(f) = ev.data_transfer().and_then(|d| d.files()).and_then(|fs| fs.get(0)) {
            store.load_file(f);
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
            <p class="status" data-testid="model-status">{move || model_status(&store)}</p>
            <Suspense fallback=|| view! { <p>"Looking for models…"</p> }>
                {move || manifest.get().map(|r| match r {
                    Ok(m) => m.models.into_iter().take(1).map(|e| {
                        let url = format!("models/{}", e.file);
                        let file = StoredValue::new(e.file.clone());
                        let loaded = move || store.model.with(|m| m.as_ref().is_some_and(|m| file.with_value(|f| m.name == *f)));
                        view! {
                            <div class="default-model">
                                <button data-testid="model-load-default" disabled=move || !can_load() || loaded()
                                    title=move || if loaded() { Some("The default model is loaded") } else { store.busy_reason() }
                                    on:click=move |_| store.load_url(&url)>"Load the default model"</button>
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
            <div class="open-row">
                <label class="file-button" class:disabled=move || !can_load()>
                    "Open a .gguf file…"
                    <input type="file" accept=".gguf" data-testid="model-file-input" on:change=on_file disabled=move || !can_load()/>
                </label>
                <span class="hint">"or drop one here"</span>
            </div>
            <form class="url-row" novalidate on:submit=move |ev| {
                ev.prevent_default();
                if can_load() && !url.get_untracked().trim().is_empty() { store.load_url(url.get_untracked().trim()) }
            }>
                <input type="url" placeholder="https://huggingface.co/…/resolve/main/model.gguf" data-testid="model-url-input"
                    aria-label="Model URL (Hugging Face)"
                    prop:value=move || url.get() on:input=move |ev| url.set(event_target_value(&ev))/>
                <button type="submit" data-testid="model-url-load" disabled=move || !can_load() || url.get().trim().is_empty()>"Download"</button>
            </form>
            <ModelPicker/>
            <LoadProgress/>
            <CachedList/>
        </section>
    }
}

/// Recommended models on Hugging Face ([`lowbit::catalog::MODELS`]): each with its size, licence
/// and what its weights would take on this GPU at FP16, INT8 and INT4, before any download.
/// Choosing one downloads it through the same path as a typed URL (fit check, progress, cache).
#[component]
fn ModelPicker() -> impl IntoView {
    let store = expect_context::<Store>();
    let can_load = move || store.adapter.get().is_some() && !store.busy();
    let rows = lowbit::catalog::MODELS.iter().map(|e| {
        let e = *e;
        let needs = move || store.adapter.get().map(|a| e.needs(&a)).unwrap_or_default();
        let loaded = move || store.model.with(|m| m.as_ref().is_some_and(|m| m.name == e.file()));
        view! {
            <li data-testid=format!("pick-{}", e.id)>
                <div class="pick-head">
                    <a href=e.url.replace("/resolve/main/", "/blob/main/") target="_blank" rel="noopener noreferrer">{e.name}</a>
                    <button data-testid=format!("pick-{}-load", e.id) disabled=move || !can_load() || loaded()
                        aria-label=format!("Download {}", e.name)
                        title=move || if loaded() { Some("Loaded") } else { store.busy_reason() }
                        on:click=move |_| store.load_url(e.url)>"Download"</button>
                </div>
                <span class="pick-note">{format!("{} · {} · ≈ {} MB · {}", e.note, e.format, e.file_mb, e.license)}</span>
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

fn model_status(store: &Store) -> String {
    if store.adapter.get().is_none() {
        return match store.error.get() {
            Some((lowbit_app::protocol::ErrorKind::NoWebgpu, _)) => {
                "WebGPU is not available here: lowbit needs a browser with WebGPU (Chrome, Edge, or Firefox/Safari with WebGPU on)".into()
            }
            _ => "starting the engine (WebGPU)…".into(),
        };
    }
    if let Some((name, _)) = store.loading() {
        return format!("loading {name}…");
    }
    if let Some((p, _)) = store.switching() {
        return format!("switching to {p}…");
    }
    match store.model.get() {
        Some(m) if m.recovered => format!("ready: {} at {} (loaded again on a new GPU device after the last one was lost)", m.name, store.plan.get()),
        Some(m) => format!("ready: {} at {}", m.name, store.plan.get()),
        None => "no model loaded".into(),
    }
}

#[component]
fn LoadProgress() -> impl IntoView {
    let store = expect_context::<Store>();
    move || {
        store.loading().map(|(name, stages)| {
            view! {
                <div class="load-progress" data-testid="load-progress">
                    <div class="load-head">
                        <span>{format!("Loading {name}")}</span>
                        <button class="ghost" data-testid="load-cancel" on:click=move |_| store.cancel()>"Cancel"</button>
                    </div>
                    {Stage::ALL.iter().map(|&st| {
                        let p = stages.iter().find(|p| p.stage == st).copied();
                        let (frac, text) = match p {
                            Some(p) if st == Stage::Compile => (fmt::fraction(p.done, p.total), format!("{} / {} kernels", p.done, p.total)),
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
fn CachedList() -> impl IntoView {
    let store = expect_context::<Store>();
    view! {
        <div class="cached" data-testid="cached-models">
            <h3>"Cached on this device"</h3>
            {move || {
                let entries = store.cache.get();
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
                                    <button class="small" disabled=move || store.busy() || store.adapter.get().is_none()
                                        on:click=move |_| store.load_cached(&e1)>"Load"</button>
                                    <button class="small ghost" data-testid="cached-delete" disabled=move || store.busy()
                                        on:click=move |_| store.delete_cached(&key)>"Delete"</button>
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
    if key.contains(lowbit_app::protocol::LOCAL_FILE_KEY) {
        "opened from a file".into()
    } else {
        key.to_string()
    }
}

#[component]
fn PrecisionPanel() -> impl IntoView {
    let store = expect_context::<Store>();
    let bytes_at = move |p: Precision| store.model.get().map(|m| m.info.weight_bytes_at(p));
    view! {
        <section class="precision-panel">
            <h2>"Precision"</h2>
            <div class="segmented" role="group" aria-label="Weight precision">
                {Precision::ALL.iter().map(|&p| view! {
                    <button
                        data-testid=format!("precision-{}", p.name())
                        aria-pressed=move || (store.plan.get() == Plan::uniform(p)).to_string()
                        disabled=move || store.busy() && store.plan.get() != Plan::uniform(p)
                        title=move || (store.plan.get() != Plan::uniform(p)).then(|| store.busy_reason()).flatten()
                        on:click=move |_| store.set_plan(Plan::uniform(p))
                    >
                        <span class="p-name">{precision_label(p)}</span>
                        <span class="p-bytes">{move || bytes_at(p).map(megabytes).unwrap_or_else(|| format!("{:.1} bits/weight", p.bits_per_weight()))}</span>
                    </button>
                }).collect_view()}
                {move || {
                    // A file stored at mixed precisions (say Q4_1 matrices, a Q8_0 embedding) gets
                    // a button for exactly those.
                    let info = store.model.get()?.info;
                    let (own, _) = info.suggested_plan();
                    own.uniform_precision().is_none().then(|| view! {
                        <button
                            data-testid="precision-file"
                            aria-pressed=move || (store.plan.get() == own).to_string()
                            disabled=move || store.busy() && store.plan.get() != own
                            title=move || store.busy_reason().map(str::to_string).unwrap_or_else(|| format!("The precisions the file stores: {own}"))
                            on:click=move |_| store.set_plan(own)
                        >
                            <span class="p-name">"As stored"</span>
                            <span class="p-bytes">{megabytes(info.weight_bytes_of(&own))}</span>
                        </button>
                    })
                }}
            </div>
            {move || store.plan_reason.get().map(|why| view! {
                <p class="hint" data-testid="precision-reason">{format!("Loaded at {why}.")}</p>
            })}
            {move || store.switching().map(|(p, prog)| view! {
                <div class="switch-progress" data-testid="switch-progress">
                    <span>{format!("Requantizing to {p}")}</span>
                    <progress max="1" value=prog.map_or(0.0, |g| fmt::fraction(g.done, g.total))></progress>
                    <button class="ghost small" on:click=move |_| store.cancel()>"Cancel"</button>
                </div>
            })}
            <p class="weights">
                "Weights on the GPU: "
                <span data-testid="weights-bytes">{move || if store.model.get().is_some() {
                    format!("{} at {}", megabytes(store.weight_bytes.get()), store.plan.get())
                } else {
                    "no model loaded".into()
                }}</span>
                {move || store.last_switch_ms.get().map(|ms| view! { <span class="hint">{format!(" (last switch {:.1} s)", ms / 1e3)}</span> })}
            </p>
            <MixedPrecision/>
            <KvCache/>
            <Explain words=&["quantization", "block-scale"]>"Switching requantizes the loaded file's weights on this device and keeps the conversation. Each reply is labelled with the precision that wrote it."</Explain>
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
                <p><strong>"Why speed follows bytes. "</strong>"Writing one token reads every weight of the model once and does \
                    only two arithmetic operations with each. A GPU can do arithmetic far faster than it can fetch memory, so \
                    the time per token is mostly the time to read the weights: fewer bytes per weight, more tokens per second. \
                    (Reading a prompt is different: many tokens share each weight read, so it leans on arithmetic.)"</p>
            </details>
        </section>
    }
}

/// How the KV cache stores keys and values: f32, f16 or INT8.
#[component]
fn KvCache() -> impl IntoView {
    let store = expect_context::<Store>();
    let per_token = move |kv: KvPrecision| {
        store.model.get().and_then(|m| m.info.config).map(|c| (2 * c.n_layers * c.n_kv_heads * c.head_dim) as f64 * kv.bytes_per_value())
    };
    view! {
        <div class="kv-cache">
            <h3>"KV cache"</h3>
            <div class="segmented" role="group" aria-label="KV cache precision">
                {KvPrecision::ALL.iter().map(|&kv| view! {
                    <button data-testid=format!("kv-{}", kv.name())
                        aria-pressed=move || (store.kv.get() == kv).to_string()
                        disabled=move || store.busy() && store.kv.get() != kv
                        on:click=move |_| store.set_kv(kv)>
                        <span class="p-name">{kv.name().to_uppercase()}</span>
                        <span class="p-bytes">{move || per_token(kv).map_or_else(|| format!("{} bytes/value", kv.bytes_per_value()), |b| format!("{:.1} KB/token", b / 1e3))}</span>
                    </button>
                }).collect_view()}
            </div>
            <label class="inline context-size">
                <span>"context"</span>
                <select data-testid="context-size" disabled=move || store.busy()
                    on:change=move |ev| { if let Ok(n) = event_target_value(&ev).parse::<usize>() { store.set_context(n) } }>
                    {move || {
                        let max = store.model.get().and_then(|m| m.info.context_length).unwrap_or(usize::MAX);
                        let now = store.model.get().map_or(store.n_ctx.get(), |m| m.context_size);
                        client::CONTEXT_SIZES.iter().filter(|&&n| n <= max).map(|&n| view! {
                            <option value=n.to_string() selected=n == now>{format!("{n} tokens")}</option>
                        }).collect_view()
                    }}
                </select>
            </label>
            <p class="hint" data-testid="kv-bytes">{move || match store.model.get() {
                Some(m) => format!("{} for {} tokens at {}", megabytes(m.kv_bytes), m.context_size, store.kv.get()),
                None => format!("{} (applied after the load)", store.kv.get()),
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

/// Precision per tensor group: e.g. INT4 feed-forward with FP16 attention.
#[component]
fn MixedPrecision() -> impl IntoView {
    let store = expect_context::<Store>();
    let draft = RwSignal::new(store.plan.get_untracked());
    // Follow the active plan whenever it changes (a switch, a load).
    Effect::new(move |_| draft.set(store.plan.get()));
    let bytes = move || store.model.get().map(|m| m.info.weight_bytes_of(&draft.get()));
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
            <button data-testid="mix-apply" disabled=move || store.busy() || draft.get() == store.plan.get()
                on:click=move |_| store.set_plan(draft.get_untracked())>"Apply"</button>
            <Explain words=&["quantization"]>"Not every weight matters equally. The feed-forward matrices hold about two thirds of a \
                layer's weights, so INT4 there saves most of the memory; attention and the output head are often more \
                sensitive. Only the groups you change are requantized. The quality panel measures the mix beside FP16, INT8 \
                and INT4."</Explain>
        </details>
    }
}

#[component]
fn ModelCard() -> impl IntoView {
    let store = expect_context::<Store>();
    move || {
        store.model.get().map(|m| {
            let i = &m.info;
            let adapter = store.adapter.get();
            let dtypes = i.source_dtypes.iter().map(|(k, v)| format!("{k} ×{v}")).collect::<Vec<_>>().join(", ");
            view! {
                <section class="model-card" data-testid="model-card">
                    <h2 data-testid="model-title" title=i.name.clone().map(|n| format!("general.name: {n}"))>{i.title(&m.name)}</h2>
                    <dl>
                        <dt>"File"</dt><dd>{format!("{} ({}{})", m.name, megabytes(i.file_bytes), if m.from_cache { ", from cache" } else { "" })}</dd>
                        <dt>"Architecture"</dt><dd data-testid="card-architecture">{i.architecture.clone().unwrap_or_default()}</dd>
                        <dt>"Parameters"</dt><dd>{fmt::count(i.n_params)}</dd>
                        <dt>"Layers"</dt><dd>{i.n_layers.unwrap_or(0)}</dd>
                        <dt>"Context"</dt><dd>{format!("{} tokens (this page uses {})", i.context_length.unwrap_or(0), m.context_size)}</dd>
                        <dt>"Source dtypes"</dt><dd>{dtypes}</dd>
                        <dt>"Chat template"</dt><dd data-testid="chat-template">{match (i.chat_template, &i.chat_template_fallback) {
                            (true, None) if i.chat_template_folds_system => {
                                "from the file; it takes no system message, so the system prompt opens your first message".to_string()
                            }
                            (true, None) => "from the file".to_string(),
                            (true, Some(why)) => format!("the file's failed ({why}): {} instead", i.chat_template_builtin),
                            (false, _) if i.chat_template_folds_system => format!(
                                "none in the file: {}'s turns; they take no system message, so the system prompt opens your first message",
                                i.chat_template_builtin
                            ),
                            (false, _) => format!("none in the file: {}", i.chat_template_builtin),
                        }}</dd>
                        <dt>"KV cache"</dt><dd>{format!("{} ({})", megabytes(m.kv_bytes), store.kv.get())}</dd>
                        <dt>"Loaded in"</dt><dd>{format!("{:.1} s", m.load_ms / 1e3)}</dd>
                        {adapter.map(|a| view! {
                            <dt>"GPU"</dt><dd>{fmt::adapter_name(&a)}</dd>
                            <dt>"shader-f16"</dt><dd>{if a.shader_f16_available { "available, not needed" } else { "absent, not needed" }}</dd>
                            <dt>"Subgroups"</dt><dd>{if a.subgroups { "available" } else { "not available" }}</dd>
                        })}
                    </dl>
                    <table class="fit">
                        <thead><tr><th>"precision"</th><th class="num">"weights"</th><th>"fits this GPU"</th></tr></thead>
                        <tbody>
                            {m.fit.iter().map(|f| view! {
                                <tr>
                                    <td>{precision_label(f.precision)}</td>
                                    <td class="num">{megabytes(i.weight_bytes_at(f.precision))}</td>
                                    <td class=if f.fits { "pass" } else { "fail" }>{f.message.clone()}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </section>
            }
        })
    }
}

#[component]
fn ChatPanel() -> impl IntoView {
    let store = expect_context::<Store>();
    let input = store.draft;
    let pane = NodeRef::<leptos::html::Div>::new();
    let input_ref = NodeRef::<leptos::html::Textarea>::new();
    // Follow the newest message unless the user scrolled up to read an earlier one: `pinned` is
    // where the pane was last scrolled to; above it, the user has moved.
    let follow = StoredValue::new(true);
    let pinned = StoredValue::new(0i32);
    let send = move || {
        let text = input.get_untracked();
        if store.can_chat() && !text.trim().is_empty() {
            follow.set_value(true);
            pinned.set_value(0);
            store.send_message(&text);
            input.set(String::new());
        }
    };
    Effect::new(move |prev: Option<Option<u64>>| {
        store.messages.with(|m| m.last().map(|c| c.text.track()));
        store.job.track();
        let generating = store.generating();
        // A new reply (sent, regenerated, edited) is followed from its start.
        if generating.is_some() && prev != Some(generating) {
            follow.set_value(true);
            pinned.set_value(0);
        }
        let Some(el) = pane.get_untracked() else { return generating };
        if el.scroll_top() < pinned.get_value() - 2 {
            follow.set_value(false);
        }
        if follow.get_value() {
            el.set_scroll_top(el.scroll_height());
            pinned.set_value(el.scroll_top());
        }
        generating
    });
    // The input takes the focus when a model is ready and when a reply ends (the Stop button
    // it may have had is gone), unless the user is typing somewhere else.
    Effect::new(move |prev: Option<(bool, bool)>| {
        let now = (store.loading().is_some(), store.generating().is_some());
        let ended = prev.is_some_and(|(loading, generating)| (loading && !now.0) || (generating && !now.1));
        if ended && store.model.with_untracked(|m| m.is_some()) && !typing_elsewhere(input_ref) {
            if let Some(el) = input_ref.get_untracked() {
                let _ = el.focus();
            }
        }
        now
    });
    Effect::new(move |_| {
        if store.editing.get().is_some() {
            if let Some(el) = input_ref.get_untracked() {
                let _ = el.focus();
            }
        }
    });
    // Esc stops the reply (or the comparison) being generated, wherever the focus is.
    let esc = window_event_listener(leptos::ev::keydown, move |ev| {
        // (`stop` stops only a job that Stop ends.)
        if ev.key() == "Escape" {
            store.stop();
        }
    });
    on_cleanup(move || esc.remove());
    view! {
        <section class="chat" id="chat" data-testid="chat">
            <div class="chat-head">
                <h2>"Chat"</h2>
                <div class="chat-actions">
                    <button class="ghost small" data-testid="regenerate" disabled=move || !store.can_chat() || store.messages.get().is_empty()
                        on:click=move |_| store.regenerate()>"Regenerate"</button>
                    <button class="ghost small" data-testid="new-chat" disabled=move || store.generating().is_some()
                        on:click=move |_| store.new_chat()>"New chat"</button>
                </div>
            </div>
            <label class="system">
                <span>"System prompt"</span>
                <textarea rows="2" data-testid="system-prompt" prop:value=move || store.system_prompt.get()
                    on:input=move |ev| store.system_prompt.set(event_target_value(&ev))></textarea>
            </label>
            <div class="messages" data-testid="messages" node_ref=pane
                on:click=open_links_elsewhere
                on:scroll=move |_| if let Some(el) = pane.get_untracked() {
                    if el.scroll_height() - el.scroll_top() - el.client_height() < 40 {
                        follow.set_value(true);
                        pinned.set_value(el.scroll_top());
                    } else if el.scroll_top() < pinned.get_value() - 2 {
                        follow.set_value(false);
                    }
                }>
                {move || store.messages.get().is_empty().then(|| view! {
                    <p class="hint empty">{move || if store.model.get().is_some() { "Ask something." } else { "Load a model to start." }}</p>
                })}
                <For each=move || store.messages.get() key=|m| m.id children=move |m: ChatMsg| message_view(m)/>
            </div>
            <div class="composer-meta">
                <ContextBar/>
                <label class="inline max-tokens" title="The longest reply, in tokens (a token is about three quarters of a word)">
                    <span>"max tokens"</span>
                    <input type="number" step="1" min="1" data-testid="max-tokens" prop:value=move || store.max_tokens.get().to_string()
                        on:change=move |ev| { if let Ok(v) = event_target_value(&ev).parse::<usize>() { store.max_tokens.set(v.max(1)) } }/>
                </label>
            </div>
            {move || store.editing.get().map(|_| view! {
                <p class="hint editing" data-testid="editing">"Editing an earlier message: sending replaces it and everything after it. "
                    <button type="button" class="ghost small" on:click=move |_| { store.editing.set(None); input.set(String::new()); }>"Cancel"</button>
                </p>
            })}
            <form class="composer" on:submit=move |ev| { ev.prevent_default(); send(); }>
                <textarea rows="2" placeholder="Message (Enter to send, Shift+Enter for a new line, Esc to stop)" data-testid="chat-input"
                    aria-label="Message" node_ref=input_ref
                    prop:value=move || input.get()
                    on:input=move |ev| input.set(event_target_value(&ev))
                    on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                        if ev.key() == "Enter" && !ev.shift_key() { ev.prevent_default(); send(); }
                    }></textarea>
                {move || if store.generating().is_some() {
                    view! { <button type="button" class="stop" data-testid="stop" on:click=move |_| store.stop()>"Stop"</button> }.into_any()
                } else {
                    view! { <button type="submit" data-testid="send" disabled=move || !store.can_chat() || input.get().trim().is_empty()>"Send"</button> }.into_any()
                }}
            </form>
            <SpeedNotice/>
            <Stats/>
        </section>
    }
}

/// What to expect on a slow GPU: on a software adapter, or once a reply of the chosen max tokens
/// is measured to take more than half a minute, the speed measured here and how long a reply of
/// max tokens takes at it.
#[component]
fn SpeedNotice() -> impl IntoView {
    let store = expect_context::<Store>();
    move || {
        let adapter = store.adapter.get()?;
        store.model.get()?;
        let max = store.max_tokens.get();
        let text = match store.speed.get() {
            Some((plan, decode, prefill)) if decode > 0.0 => {
                let secs = max as f64 / decode;
                if !adapter.is_fallback && secs < 30.0 {
                    return None;
                }
                format!(
                    "Measured here at {}: {decode:.1} tokens per second written, {prefill:.0} read. A reply of up to {} takes \
                     {}, plus reading the conversation{}. Fewer max tokens, INT4, or a browser with a hardware GPU make \
                     replies quicker; Stop (Esc) ends one at any time.",
                    plan_short(&plan.code()),
                    fmt::tokens(max),
                    if secs < 1.0 { "under a second".to_string() } else { format!("up to {}", fmt::duration(secs)) },
                    if adapter.is_fallback { " (this is a software GPU: the processor does a graphics card's work)" } else { "" }
                )
            }
            _ if adapter.is_fallback => format!(
                "This page runs on a software GPU ({}): the processor does a graphics card's work, so replies come at a few \
                 tokens per second and reading a long conversation takes a while. The first reply measures the speed; this \
                 note then says how long a reply of up to {} takes. Stop (Esc) ends a reply at any time.",
                fmt::adapter_name(&adapter),
                fmt::tokens(max)
            ),
            _ => return None,
        };
        Some(view! { <p class="hint speed-notice" data-testid="slow-gpu-notice">{text}</p> })
    }
}

/// The user is typing in a field other than the chat input (focus must not be taken from it).
fn typing_elsewhere(input: NodeRef<leptos::html::Textarea>) -> bool {
    let Some(active) = document().active_element() else { return false };
    let tag = active.tag_name().to_lowercase();
    let is_input = input.get_untracked().is_some_and(|i| {
        let i: &web_sys::Element = &i;
        i == &active
    });
    // The model URL field is where a keyboard user pressed Enter to load: the chat comes next.
    let url_field = active.get_attribute("data-testid").as_deref() == Some("model-url-input");
    !is_input && !url_field && (tag == "textarea" || tag == "select" || (tag == "input" && active.get_attribute("type").as_deref() != Some("file")))
}

fn message_view(m: ChatMsg) -> impl IntoView {
    let store = expect_context::<Store>();
    let id = m.id;
    let is_assistant = m.role == "assistant";
    let p = m.plan.map(|p| p.code()).unwrap_or_default();
    let badge = if m.plan.is_some_and(|p| p.uniform_precision().is_none()) { "mixed".to_string() } else { p.clone() };
    let label = m.plan.map(|p| p.to_string());
    let (done, stats, stopped, text) = (m.done, m.stats, m.stopped, m.text);
    // Out of the context: the last reply's model did not read this message.
    let forgotten = move || store.messages.with(|ms| ms.iter().position(|c| c.id == id).is_some_and(|i| i < store.forgotten.get()));
    view! {
        <div class=format!("msg {}", m.role) class:forgotten=forgotten
            data-testid=if is_assistant { "assistant-message" } else { "user-message" }
            data-precision=p.clone()
            data-done=move || done.get().to_string()>
            <div class="msg-meta">
                <span class="role">{if is_assistant { "assistant" } else { "you" }}</span>
                {label.map(|l| view! { <span class=format!("badge {badge}")>{l}</span> })}
                {move || forgotten().then(|| view! { <span class="hint" data-testid="out-of-context">"out of context"</span> })}
                {move || (!done.get()).then(|| view! { <span class="typing" data-testid="reply-state">{move || match store.reading() {
                    Some((read, total)) if store.generating() == Some(id) => format!("reading the prompt: {read} / {total} tokens…"),
                    _ if text.with(|t| t.is_empty()) => "reading the prompt…".to_string(),
                    _ => "generating…".to_string(),
                }}</span> })}
                {move || stopped.get().then(|| view! { <span class="hint">{move || if stats.with(|s| s.as_ref().is_some_and(|s| s.generated_tokens == 0)) {
                    "stopped while reading the prompt"
                } else {
                    "stopped"
                }}</span> })}
                {move || stats.get().map(|s| view! {
                    <span class="hint" data-testid="message-stats">{format!("{} · {:.1} tok/s · first token {:.0} ms", fmt::tokens(s.generated_tokens), s.decode_tokens_per_second, s.time_to_first_token_ms)}</span>
                })}
            </div>
            {if is_assistant {
                view! { <div class="msg-text markdown" data-testid="message-text" inner_html=move || lowbit_app::markdown::to_html(&text.get())></div> }.into_any()
            } else {
                view! { <div class="msg-text" data-testid="message-text">{move || text.get()}</div> }.into_any()
            }}
            <div class="msg-actions">
                <button class="ghost small" data-testid="copy-message" title="Copy this message's text (Markdown as written)"
                    on:click=move |_| copy_text(&text.get_untracked())>"Copy"</button>
                {if is_assistant {
                    view! { <button class="ghost small" data-testid="regenerate-message" disabled=move || !store.can_chat() || !done.get()
                        title=move || store.busy_reason().unwrap_or("Write this reply again (it and everything after it are replaced)")
                        on:click=move |_| store.regenerate_at(id)>"Regenerate"</button> }.into_any()
                } else {
                    view! { <button class="ghost small" data-testid="edit-message" disabled=move || store.generating().is_some()
                        title="Change this message and send it again (the replies after it are replaced)"
                        on:click=move |_| store.edit(id)>"Edit"</button> }.into_any()
                }}
            </div>
        </div>
    }
}

/// Put `text` on the clipboard.
fn copy_text(text: &str) {
    let clipboard = window().navigator().clipboard();
    let _ = clipboard.write_text(text);
}

/// A link in a reply opens in a new tab, so the conversation stays on this one.
fn open_links_elsewhere(ev: leptos::ev::MouseEvent) {
    let Some(target) = ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) else { return };
    let Ok(Some(link)) = target.closest("a[href]") else { return };
    ev.prevent_default();
    let href = link.get_attribute("href").unwrap_or_default();
    if href.starts_with("http://") || href.starts_with("https://") || href.starts_with("mailto:") {
        let _ = window().open_with_url_and_target_and_features(&href, "_blank", "noopener,noreferrer");
    }
}

#[component]
fn ContextBar() -> impl IntoView {
    let store = expect_context::<Store>();
    move || {
        let size = store.model.get().map(|m| m.context_size)?;
        let used = store.last_stats.get().map_or(0, |s| s.context_used);
        let forgotten = store.forgotten.get();
        Some(view! {
            <div class="context-bar" data-testid="context-usage" title="Tokens held in the KV cache">
                <progress max=size value=used></progress>
                <span>{format!("context {used} / {size} tokens")}</span>
            </div>
            {(forgotten > 0).then(|| view! {
                <p class="hint context-notice" data-testid="context-notice">{format!(
                    "The conversation outgrew the model's {size}-token context: the last reply was written without the {} oldest {} \
                     (marked \"out of context\"); the system prompt is always kept. New chat starts afresh.",
                    forgotten, if forgotten == 1 { "message" } else { "messages" })}</p>
            })}
        })
    }
}

#[component]
fn Stats() -> impl IntoView {
    let store = expect_context::<Store>();
    let s = move || store.last_stats.get();
    view! {
        <div class="stats" data-testid="reply-stats">
            <div><span class="k">"prefill"</span><span data-testid="prefill-tps">{move || s().map_or("–".into(), |s| format!("{:.1} tok/s", s.prefill_tokens_per_second))}</span></div>
            <div><span class="k">"decode"</span><span data-testid="decode-tps">{move || match (store.generating(), store.live.get(), s()) {
                // While a reply streams: its running rate (from the second token on).
                (Some(_), Some((n, tps)), _) if n > 1 => format!("{tps:.2} tok/s"),
                (Some(_), _, _) => "…".into(),
                (None, _, Some(s)) => format!("{:.2} tok/s", s.decode_tokens_per_second),
                (None, _, None) => "–".into(),
            }}</span></div>
            <div><span class="k">"first token"</span><span data-testid="ttft">{move || s().map_or("–".into(), |s| format!("{:.0} ms", s.time_to_first_token_ms))}</span></div>
            <div><span class="k">"prompt"</span><span data-testid="prompt-tokens">{move || s().map_or("–".into(), |s| format!("{} ({} reused from the cache)", fmt::tokens(s.prompt_tokens), s.reused_tokens))}</span></div>
        </div>
    }
}

#[component]
fn SamplingPanel() -> impl IntoView {
    let store = expect_context::<Store>();
    let num = move |label: &'static str, id: &'static str, step: &'static str, get: fn(&lowbit::sampler::SamplerConfig) -> String, set: fn(&mut lowbit::sampler::SamplerConfig, f64)| {
        view! {
            <label>
                <span>{label}</span>
                <input type="number" step=step data-testid=id prop:value=move || store.sampling.with(get)
                    on:change=move |ev| { if let Ok(v) = event_target_value(&ev).parse::<f64>() { store.sampling.update(|s| set(s, v)) } }/>
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

#[component]
fn QualityPanel() -> impl IntoView {
    let store = expect_context::<Store>();
    let text = RwSignal::new(texts::TEXTS[0].1.to_string());
    let choice = RwSignal::new("0".to_string());
    let max_tokens = RwSignal::new(128usize);
    let on_choice = move |ev: leptos::ev::Event| {
        let v = event_target_value(&ev);
        if let Some((_, t)) = v.parse::<usize>().ok().and_then(|i| texts::TEXTS.get(i)) {
            text.set(t.to_string());
        }
        choice.set(v);
    };
    let source_note = move || {
        let m = store.model.get()?;
        let (dtype, bits) = m.info.matrix_dtype.clone()?;
        let others: Vec<String> = m.info.source_dtypes.keys().filter(|d| **d != dtype && d.as_str() != "F32").cloned().collect();
        Some(if bits < 16.0 {
            format!(
                "This file stores its weight matrices as {dtype} ({bits:.1} bits per weight). FP16 and INT8 hold those values almost \
                 exactly, so they measure the file itself: no precision can add back what was lost when the file was quantized.{}{}",
                if dtype == "Q4_1" { " INT4 uses Q4_1's own block layout, so it keeps those matrices exactly too." } else { "" },
                if others.is_empty() { String::new() } else {
                    format!(" Where INT4 loses is in the tensors stored more finely ({}): the inspector below shows each tensor's error.", others.join(", "))
                }
            )
        } else {
            format!("This file stores its weight matrices as {dtype}: every precision here is a real reduction from the source.")
        })
    };
    view! {
        <section class="quality-panel" data-testid="quality-panel">
            <h2>"Quality at each precision"</h2>
            <Explain words=&["perplexity", "nats", "kl", "top1", "teacher-forcing", "noise"]>"Perplexity is how surprised the model is by each next word of a text (lower is better). \
                KL divergence measures how far INT8's and INT4's next-word probabilities drift from FP16's, \
                and top-1 agreement how often they would pick the same next word. All three run on this \
                device, on the same loaded model."</Explain>
            {move || source_note().map(|n| view! { <p class="source-note" data-testid="quality-source-note">{n}</p> })}
            <div class="quality-form">
                <select data-testid="quality-text-choice" aria-label="Text to score" on:change=on_choice prop:value=move || choice.get()>
                    {texts::TEXTS.iter().enumerate().map(|(i, (title, _))| view! { <option value=i.to_string()>{*title}</option> }).collect_view()}
                    <option value="own">"Your own text (paste below)"</option>
                </select>
                <label class="inline">
                    <span>"tokens"</span>
                    <input type="number" min="2" step="1" data-testid="quality-max-tokens" prop:value=move || max_tokens.get().to_string()
                        on:change=move |ev| { if let Ok(v) = event_target_value(&ev).parse::<usize>() { max_tokens.set(v.max(2)) } }/>
                </label>
                <button data-testid="quality-run" disabled=move || !store.can_chat() || text.get().trim().is_empty()
                    on:click=move |_| store.measure_quality(&text.get_untracked(), max_tokens.get_untracked())>"Measure"</button>
                <span class="status" data-testid="quality-status">{move || match store.quality_at() {
                    Some(Some(p)) => format!("scoring at {p}…"),
                    Some(None) => "starting…".into(),
                    None => String::new(),
                }}</span>
            </div>
            <textarea rows="4" data-testid="quality-text" aria-label="Text to score (editable)" prop:value=move || text.get()
                on:input=move |ev| { text.set(event_target_value(&ev)); choice.set("own".into()); }></textarea>
            {move || store.quality.get().map(|(n, rows)| {
                let gpu_rows: Vec<_> = rows.iter().filter(|r| r.kl_vs_fp16.is_some()).collect();
                let labels: Vec<String> = gpu_rows.iter().map(|r| plan_short(&r.precision)).collect();
                let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
                let ppl: Vec<f64> = gpu_rows.iter().map(|r| r.ppl).collect();
                let kl: Vec<f64> = gpu_rows.iter().map(|r| r.kl_vs_fp16.unwrap_or(0.0)).collect();
                let colors: Vec<_> = gpu_rows.iter().map(|r| charts::plan_color(&r.precision)).collect();
                let colors = &colors[..];
                let fp16_ppl = rows.iter().find(|r| r.precision == "fp16").map_or(f64::NAN, |r| r.ppl);
                let half = (chart_width(1000) / 2).saturating_sub(10).max(chart_width(300));
                view! {
                <div class="charts" data-testid="quality-charts">
                    <div class="chart" inner_html=charts::bars("perplexity (lower is better)", &labels, &ppl, colors, half)></div>
                    <div class="chart" inner_html=charts::bars("KL vs FP16, nats (lower is better)", &labels, &kl, colors, half)></div>
                </div>
                <table data-testid="quality-result" tabindex="0" aria-label="Quality per precision">
                    <caption>{format!("{n} tokens, teacher-forced (each position predicts the text's real next token)")}</caption>
                    <thead><tr>
                        <th>"precision"</th><th class="num">"perplexity"</th><th class="num">"vs FP16"</th><th class="num">"KL vs FP16 (nats)"</th>
                        <th class="num">"top-1 = FP16"</th><th class="num">"weights"</th><th class="num">"KV / token"</th><th class="num">"tok/s"</th>
                    </tr></thead>
                    <tbody>
                        {rows.iter().cloned().map(|r| view! {
                            <tr data-testid="quality-row" data-precision=r.precision.clone()>
                                <td title=plan_label(&r.precision)>{plan_short(&r.precision)}</td>
                                <td class="num" data-testid="quality-ppl">{format!("{:.3}", r.ppl)}</td>
                                <td class="num" data-testid="quality-vs-fp16" data-noise=r.noise_vs_fp16.map(|n| format!("{n:.6}"))>{vs_fp16(&r, fp16_ppl)}</td>
                                <td class="num" data-testid="quality-kl">{r.kl_vs_fp16.map_or("–".into(), |k| format!("{k:.5}"))}</td>
                                <td class="num" data-testid="quality-top1">{r.top1_vs_fp16.map_or("–".into(), |t| format!("{:.1}%", t * 100.0))}</td>
                                <td class="num">{r.weight_bytes.map_or("–".into(), megabytes)}</td>
                                <td class="num">{r.kv_bytes_per_token.map_or("–".into(), |b| format!("{:.1} KB", b as f64 / 1e3))}</td>
                                <td class="num">{format!("{:.1}", r.tokens_per_second)}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
                <p class="hint" data-testid="quality-noise-note">{noise_note(&rows, fp16_ppl, n)}</p>
            }})}
        </section>
    }
}
