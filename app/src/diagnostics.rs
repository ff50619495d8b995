//! Diagnostics: the adapter, the kernel self-test and the kernel benchmark (they run on the
//! page's own GPU device, not the worker's, and load no model).

use std::cell::RefCell;

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::glossary::Explain;
use lowbit::bench::{self, BenchReport};
use lowbit::gpu::{AdapterSummary, Gpu};
use lowbit::selftest::{self, Row};

use crate::fmt::megabytes;

thread_local! {
    static GPU: RefCell<Option<Gpu>> = const { RefCell::new(None) };
}

/// The page's GPU device for the self-test and benchmark, created on first use.
async fn gpu() -> Result<Gpu, String> {
    if let Some(g) = GPU.with(|g| g.borrow().clone()) {
        return Ok(g);
    }
    let g = Gpu::new().await.map_err(|e| format!("WebGPU unavailable: {e}"))?;
    GPU.with(|c| *c.borrow_mut() = Some(g.clone()));
    Ok(g)
}

#[component]
pub fn AdapterPanel(adapter: RwSignal<Option<AdapterSummary>>) -> impl IntoView {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    view! {
        <section data-testid="adapter-info">
            <h2>"Your GPU"</h2>
            {move || adapter.get().map(|a| view! {
                <dl>
                    <dt>"Adapter"</dt><dd data-testid="adapter-name">{format!("{} ({}, {})", a.name, a.backend, a.device_type)}</dd>
                    <dt>"Subgroups"</dt><dd data-testid="adapter-subgroups">{if a.subgroups {
                        format!("available (size {}–{}); the start-up measurement picked the {} matvec", a.subgroup_min_size, a.subgroup_max_size, a.matvec_kernel)
                    } else {
                        format!("not available; the start-up measurement picked the {} matvec", a.matvec_kernel)
                    }}</dd>
                    <dt>"Timestamp queries"</dt><dd>{yes_no(a.timestamp_query)}</dd>
                    <dt>"shader-f16"</dt><dd>{format!("{} (lowbit does not need it: f16 is unpacked from u32)", if a.shader_f16_available { "available" } else { "absent" })}</dd>
                    <dt>"Largest buffer"</dt><dd>{megabytes(a.binding_limit())}</dd>
                </dl>
            })}
        </section>
    }
}

#[component]
pub fn SelfTestPanel() -> impl IntoView {
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
            <Explain>"Runs every WGSL kernel on your GPU and compares it with the same naive CPU reference, compiled to WebAssembly, within the per-precision tolerance. Matrix shapes are deliberately not multiples of the workgroup or block size."</Explain>
            <button data-testid="kernel-selftest" on:click=run disabled=move || running.get()>"Run self-test"</button>
            <span class="status" data-testid="kernel-selftest-status">{move || status.get()}</span>
            <table data-testid="kernel-selftest-result" tabindex="0" aria-label="Kernel self-test results">
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
pub fn BenchPanel() -> impl IntoView {
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
            <Explain words=&["roofline"]>"Decoding one token reads every weight once, so its speed follows the bytes read. This times the matrix–vector kernel at each precision and compares the bytes it reads per second with a plain copy kernel on the same GPU."</Explain>
            <button data-testid="kernel-bench" on:click=run disabled=move || running.get()>"Run benchmark"</button>
            <span class="status" data-testid="kernel-bench-status">{move || status.get()}</span>
            {move || report.get().map(|r| view! {
                <p class="explain" data-testid="kernel-bench-copy">{format!("Copy kernel: {:.2} GB/s (read + write) on {}", r.copy_gbps, r.adapter.name)}</p>
                <table data-testid="kernel-bench-result" tabindex="0" aria-label="Kernel benchmark results">
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
