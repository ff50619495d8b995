//! lowbit page (Leptos, client-side rendered). Components only: all numerics live in the engine.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use lowbit::bench::{self, BenchReport};
use lowbit::gpu::{AdapterSummary, Gpu};
use lowbit::selftest::{self, Row};
use serde::Deserialize;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

thread_local! {
    static GPU: RefCell<Option<Rc<Gpu>>> = const { RefCell::new(None) };
}

/// The page's one GPU device, created on first use.
async fn gpu() -> Result<Rc<Gpu>, String> {
    if let Some(g) = GPU.with(|g| g.borrow().clone()) {
        return Ok(g);
    }
    let g = Rc::new(Gpu::new().await.map_err(|e| format!("WebGPU unavailable: {e}"))?);
    GPU.with(|c| *c.borrow_mut() = Some(g.clone()));
    Ok(g)
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

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

#[component]
fn App() -> impl IntoView {
    let adapter = RwSignal::new(None::<AdapterSummary>);
    let gpu_error = RwSignal::new(None::<String>);
    spawn_local(async move {
        match gpu().await {
            Ok(g) => adapter.set(Some(g.info.clone())),
            Err(e) => gpu_error.set(Some(e)),
        }
    });
    view! {
        <main>
            <header>
                <h1>"lowbit"</h1>
                <p>"A small quantized language model on your own GPU, in FP16, INT8 or INT4 — nothing leaves this page."</p>
            </header>
            <ModelPanel/>
            <AdapterPanel adapter gpu_error/>
            <SelfTestPanel/>
            <BenchPanel/>
        </main>
    }
}

#[component]
fn ModelPanel() -> impl IntoView {
    let models = LocalResource::new(|| async {
        let text = fetch_text("models/manifest.json").await?;
        serde_json::from_str::<Manifest>(&text).map_err(|e| format!("models/manifest.json: {e}"))
    });
    view! {
        <section data-testid="model-panel">
            <h2>"Default model"</h2>
            <Suspense fallback=|| view! { <p>"Looking for models…"</p> }>
                {move || models.get().map(|r| match r {
                    Ok(m) => m.models.into_iter().map(|e| view! {
                        <dl>
                            <dt>"File"</dt><dd data-testid="model-file">{e.file.clone()}</dd>
                            <dt>"Size"</dt><dd data-testid="model-size">{format!("{} ({} bytes)", megabytes(e.bytes), e.bytes)}</dd>
                            <dt>"From"</dt><dd>{format!("{} · {}", e.source, e.license)}</dd>
                        </dl>
                    }).collect_view().into_any(),
                    Err(e) => view! { <p class="error" data-testid="model-error">{e}</p> }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn AdapterPanel(adapter: RwSignal<Option<AdapterSummary>>, gpu_error: RwSignal<Option<String>>) -> impl IntoView {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    view! {
        <section data-testid="adapter-info">
            <h2>"Your GPU"</h2>
            {move || gpu_error.get().map(|e| view! { <p class="error" data-testid="error-message">{e}</p> })}
            {move || adapter.get().map(|a| view! {
                <dl>
                    <dt>"Adapter"</dt><dd data-testid="adapter-name">{format!("{} ({}, {})", a.name, a.backend, a.device_type)}</dd>
                    <dt>"Subgroups"</dt><dd>{if a.subgroups {
                        format!("in use (size {}–{})", a.subgroup_min_size, a.subgroup_max_size)
                    } else {
                        "not in use: matvec reduces through workgroup memory".to_string()
                    }}</dd>
                    <dt>"Timestamp queries"</dt><dd>{yes_no(a.timestamp_query)}</dd>
                    <dt>"shader-f16"</dt><dd>{format!("{} (lowbit does not need it: f16 is unpacked from u32)", if a.shader_f16_available { "available" } else { "absent" })}</dd>
                    <dt>"Largest buffer"</dt><dd>{megabytes(a.max_buffer_size.min(a.max_storage_buffer_binding_size))}</dd>
                </dl>
            })}
        </section>
    }
}

#[component]
fn SelfTestPanel() -> impl IntoView {
    let rows = RwSignal::new(Vec::<Row>::new());
    let status = RwSignal::new(String::new());
    let running = RwSignal::new(false);
    let run = move |_| {
        running.set(true);
        status.set("running…".into());
        rows.set(vec![]);
        spawn_local(async move {
            let result = async {
                let g = gpu().await?;
                let cases = selftest::standard_cases(g.info.subgroups);
                let mut out = Vec::new();
                for (i, c) in cases.iter().enumerate() {
                    status.set(format!("running {} ({}/{})", c.kernel_name(), i + 1, cases.len()));
                    let row = selftest::run_case(&g, c, 1 + i as u64).await.map_err(|e| e.to_string())?;
                    out.push(row);
                    rows.set(out.clone());
                }
                Ok::<_, String>(out)
            }
            .await;
            match result {
                Ok(r) => {
                    let passed = r.iter().filter(|r| r.pass).count();
                    status.set(format!("{passed}/{} passed", r.len()));
                }
                Err(e) => status.set(format!("error: {e}")),
            }
            running.set(false);
        });
    };
    view! {
        <section>
            <h2>"Kernel self-test"</h2>
            <p class="explain">"Runs every WGSL kernel on your GPU and compares it with the same naive CPU reference, compiled to WebAssembly, within the per-precision tolerance. Matrix shapes are deliberately not multiples of the workgroup or block size."</p>
            <button data-testid="kernel-selftest" on:click=run disabled=move || running.get()>"Run self-test"</button>
            <span class="status" data-testid="kernel-selftest-status">{move || status.get()}</span>
            <table data-testid="kernel-selftest-result">
                <thead><tr>
                    <th>"kernel"</th><th>"precision"</th><th>"shape"</th><th>"result"</th>
                    <th class="num">"max error"</th><th class="num">"error / tolerance"</th><th class="num">"time (ms)"</th>
                </tr></thead>
                <tbody>
                    {move || rows.get().into_iter().map(|r| view! {
                        <tr data-testid="selftest-row" data-kernel=r.kernel.clone() data-precision=r.dtype.name() data-pass=r.pass.to_string()>
                            <td>{r.kernel.clone()}</td>
                            <td>{r.dtype.name()}</td>
                            <td>{r.shape.clone()}</td>
                            <td class=if r.pass { "pass" } else { "fail" }>{if r.pass { "pass" } else { "FAIL" }}</td>
                            <td class="num">{format!("{:.2e}", r.max_err)}</td>
                            <td class="num">{format!("{:.3}", r.err_over_tol)}</td>
                            <td class="num">{format!("{:.2} ({})", r.ms, r.timer)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    }
}

#[component]
fn BenchPanel() -> impl IntoView {
    let report = RwSignal::new(None::<BenchReport>);
    let status = RwSignal::new(String::new());
    let running = RwSignal::new(false);
    let run = move |_| {
        running.set(true);
        status.set("measuring… (quantizes and uploads 3 × 3 matrices first)".into());
        spawn_local(async move {
            let result = async {
                let g = gpu().await?;
                bench::run(&g, &bench::BENCH_SHAPES, 10).await.map_err(|e| e.to_string())
            }
            .await;
            match result {
                Ok(r) => {
                    status.set(format!("timer: {}, {} reps", r.timer, r.reps));
                    report.set(Some(r));
                }
                Err(e) => status.set(format!("error: {e}")),
            }
            running.set(false);
        });
    };
    view! {
        <section>
            <h2>"Kernel benchmark"</h2>
            <p class="explain">"Decoding one token reads every weight once, so its speed follows the bytes read. This times the matrix–vector kernel at each precision and compares the bytes it reads per second with a plain copy kernel on the same GPU."</p>
            <button data-testid="kernel-bench" on:click=run disabled=move || running.get()>"Run benchmark"</button>
            <span class="status" data-testid="kernel-bench-status">{move || status.get()}</span>
            {move || report.get().map(|r| view! {
                <p class="explain" data-testid="kernel-bench-copy">{format!("Copy kernel: {:.2} GB/s (read + write) on {}", r.copy_gbps, r.adapter.name)}</p>
                <table data-testid="kernel-bench-result">
                    <thead><tr>
                        <th>"precision"</th><th>"k × n"</th><th class="num">"weights (MB)"</th>
                        <th class="num">"median (µs)"</th><th class="num">"GB/s"</th><th class="num">"of copy"</th>
                    </tr></thead>
                    <tbody>
                        {r.rows.iter().map(|b| view! {
                            <tr data-testid="bench-row">
                                <td>{b.precision.name()}</td>
                                <td>{format!("{} × {}", b.k, b.n)}</td>
                                <td class="num">{format!("{:.2}", b.weight_bytes as f64 / 1e6)}</td>
                                <td class="num">{format!("{:.1}", b.median_us)}</td>
                                <td class="num">{format!("{:.2}", b.gbps)}</td>
                                <td class="num">{format!("{:.0}%", b.ratio_to_copy * 100.0)}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
        </section>
    }
}
