//! The kernel benchmark in the page: the matvec kernel at each precision and shape against a copy
//! kernel, run by the worker on its device.

use leptos::prelude::*;

use super::DiagState;
use crate::ui::fmt;
use crate::ui::glossary::Explain;

#[component]
pub fn KernelBenchPanel() -> impl IntoView {
    let diag = expect_context::<DiagState>();
    let engine = diag.model.engine;
    view! {
        <section>
            <h2>"Kernel benchmark"</h2>
            <Explain words=&["roofline"]>"Decoding one token reads every weight once, so its speed follows the bytes read. This times the matrix–vector kernel at each precision and compares the bytes it reads per second with a plain copy kernel on the same GPU."</Explain>
            <button data-testid="kernel-bench" on:click=move |_| diag.run_bench() disabled=move || engine.busy() || !engine.ready()
                title=move || engine.busy_reason()>"Run benchmark"</button>
            <span class="status" data-testid="kernel-bench-status">{move || diag.bench_status.get()}</span>
            {move || diag.bench.get().map(|r| view! {
                <p class="explain" data-testid="kernel-bench-copy">{format!("Copy kernel: {:.2} GB/s (read + write) on {}", r.copy_gbps, fmt::adapter_name(&r.adapter))}</p>
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
