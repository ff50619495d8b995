//! The kernel self-test in the page: every WGSL kernel on this GPU against its CPU reference,
//! run by the worker, a row per case as it finishes.

use leptos::prelude::*;
use lowbit_app::job::JobKind;

use super::DiagState;
use crate::ui::glossary::Explain;
use crate::ui::progress::RunProgress;

#[component]
pub fn SelfTestPanel() -> impl IntoView {
    let diag = expect_context::<DiagState>();
    let engine = diag.model.engine;
    let running = move || engine.running(|k| matches!(k, JobKind::SelfTest { .. }));
    view! {
        <section>
            <h2>"Kernel self-test"</h2>
            <Explain>"Runs every WGSL kernel on your GPU and compares it with the same naive CPU reference, compiled to WebAssembly, within the per-precision tolerance. Matrix shapes are deliberately not multiples of the workgroup or block size."</Explain>
            {move || if running() {
                view! { <button class="ghost" data-testid="kernel-selftest-cancel" on:click=move |_| engine.cancel()>"Cancel"</button> }.into_any()
            } else {
                view! { <button data-testid="kernel-selftest" on:click=move |_| diag.run_selftest() disabled=move || engine.busy() || !engine.ready()
                    title=move || engine.busy_reason()>"Run self-test"</button> }.into_any()
            }}
            <span class="status" data-testid="kernel-selftest-status">{move || diag.selftest_status.get()}</span>
            <RunProgress is=|k| matches!(k, JobKind::SelfTest { .. }) testid="selftest-progress" cancel=false/>
            <table data-testid="kernel-selftest-result" tabindex="0" aria-label="Kernel self-test results">
                <thead><tr>
                    <th>"kernel"</th><th>"precision"</th><th>"shape"</th><th>"result"</th>
                    <th class="num">"max error"</th><th class="num">"error / tolerance"</th><th class="num">"time (ms)"</th>
                </tr></thead>
                <tbody>
                    {move || diag.selftest.get().into_iter().map(|r| view! {
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
