//! The progress of a measurement that takes more than a moment: its step now, a bar, the time
//! left by the pace so far, and Cancel. Every long lab run and the self-test show it.

use leptos::prelude::*;
use lowbit_app::job::JobKind;

use crate::worker::Engine;

/// Shown while the running job is one `is` accepts and has reported a step; `testid` names it.
#[component]
pub fn RunProgress(
    is: fn(&JobKind) -> bool,
    testid: &'static str,
    /// Whether it brings its own Cancel (false where the panel has one).
    #[prop(default = true)]
    cancel: bool,
) -> impl IntoView {
    let engine = expect_context::<Engine>();
    move || {
        let r = engine.job.get().filter(|r| is(&r.kind))?;
        let s = r.step.clone()?;
        let left = r.seconds_left(js_sys::Date::now());
        let frac = if s.total == 0 { 0.0 } else { s.done as f64 / s.total as f64 };
        Some(view! {
            <div class="run-progress" data-testid=testid role="status">
                <span data-testid="run-step">{format!("{}…", s.what)}</span>
                <progress max="1" value=frac aria-label="progress"></progress>
                <span class="hint" data-testid="run-left">{format!("step {} of {}{}", s.done + 1, s.total, left.map_or(String::new(), |t| format!(" · about {} left", duration(t))))}</span>
                {cancel.then(|| view! { <button class="ghost small" data-testid="run-cancel" on:click=move |_| engine.cancel()>"Cancel"</button> })}
            </div>
        })
    }
}

/// `40 s`, `3 min`.
fn duration(seconds: f64) -> String {
    if seconds < 90.0 { format!("{:.0} s", seconds.max(1.0)) } else { format!("{:.0} min", seconds / 60.0) }
}
