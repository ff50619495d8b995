//! Shareable comparisons: the page's address carries the compare form, the sampling settings and
//! the precision (`lowbit_app::share`), so one link reproduces a comparison.

use lowbit_app::share;

use super::state::LabState;

/// Set the address bar to the comparison's link (without reloading) and return the link.
pub fn share_link(lab: &LabState) -> String {
    let q = share::to_query(&lab.shared());
    let Some(w) = web_sys::window() else { return q };
    let loc = w.location();
    let base = format!("{}{}", loc.origin().unwrap_or_default(), loc.pathname().unwrap_or_default());
    let url = format!("{base}{q}#compare");
    if let Ok(h) = w.history() {
        let _ = h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
    }
    let _ = w.navigator().clipboard().write_text(&url);
    url
}

/// Read a comparison from the page's URL, if it carries one.
pub fn apply_url(lab: &LabState) {
    let Some(q) = web_sys::window().and_then(|w| w.location().search().ok()) else { return };
    if let Some(sh) = share::from_query(&q, &lab.shared()) {
        lab.apply_shared(sh);
    }
}

