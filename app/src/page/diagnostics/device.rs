//! The adapter, a simulated device loss, and the GPU buffers the engine holds.

use leptos::prelude::*;

use super::DiagState;
use crate::ui::fmt::{self, megabytes};
use crate::ui::glossary::Explain;

#[component]
pub fn AdapterPanel() -> impl IntoView {
    let adapter = expect_context::<DiagState>().model.engine.adapter;
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    view! {
        <section data-testid="adapter-info">
            <h2>"Your GPU"</h2>
            {move || adapter.get().map(|a| view! {
                <dl>
                    <dt>"Adapter"</dt><dd data-testid="adapter-name">{format!("{} · {} · {}", a.name, a.backend, fmt::device_kind(a.device_type))}</dd>
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

/// Diagnostics: destroy the GPU device as a driver reset would, to see (and test) the recovery.
#[component]
pub fn DeviceLoss() -> impl IntoView {
    let diag = expect_context::<DiagState>();
    let (engine, model) = (diag.model.engine, diag.model);
    view! {
        <section data-testid="device-loss">
            <h2>"A lost GPU"</h2>
            <Explain>"A driver update, a GPU reset or the browser reclaiming memory can take the GPU device away \
                from a page. lowbit then asks for a new device and loads the same model again at the same precision; \
                the conversation stays, and the next reply reads it again. This button destroys the device to show it."</Explain>
            <button data-testid="lose-device" disabled=move || !model.can_run() title=move || engine.busy_reason()
                on:click=move |_| diag.lose_device()>"Simulate a lost GPU"</button>
        </section>
    }
}

/// Diagnostics: what the engine holds on the GPU now, counted after every job.
#[component]
pub fn GpuHoldings() -> impl IntoView {
    let diag = expect_context::<DiagState>();
    view! {
        <section data-testid="gpu-holdings">
            <h2>"What the engine holds on the GPU"</h2>
            <Explain>"Every buffer lowbit makes on the GPU is counted while it exists. Switching precision or \
                loading a model again gives back what the model held before, so after any number of switches the \
                counts return to what they were at the same precision; after a lost GPU there is still one device."</Explain>
            <p data-testid="gpu-resources" role="status">{move || match diag.resources.get() {
                None => "Not counted yet: the count comes when the engine has a GPU device.".to_string(),
                Some((devices, live)) => format!(
                    "{devices} GPU device{}, {} buffer{} holding {} in all (the model's weights, its KV cache and the \
                     working buffers of one step).",
                    if devices == 1 { "" } else { "s" },
                    live.buffers,
                    if live.buffers == 1 { "" } else { "s" },
                    megabytes(live.bytes),
                ),
            }}</p>
            <details class="exact">
                <summary>"Exact counts (for comparing two moments)"</summary>
                <p class="hint" data-testid="gpu-resources-exact">{move || diag.resources.get().map(|(d, l)| format!("devices={d} buffers={} bytes={}", l.buffers, l.bytes))}</p>
            </details>
        </section>
    }
}
