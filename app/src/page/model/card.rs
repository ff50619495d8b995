//! The model card: what the loaded file is, and what it takes on this GPU at each precision.

use leptos::prelude::*;

use super::state::ModelState;
use crate::ui::fmt::{self, megabytes, precision_label};

#[component]
pub fn ModelCard() -> impl IntoView {
    let model = expect_context::<ModelState>();
    let engine = model.engine;
    move || {
        model.model.get().map(|m| {
            let i = &m.info;
            let adapter = engine.adapter.get();
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
                        <dt>"Source dtypes"</dt><dd data-testid="card-dtypes">{dtypes}</dd>
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
                        <dt>"KV cache"</dt><dd>{format!("{} ({})", megabytes(m.kv_bytes), model.kv.get())}</dd>
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
