//! The window's measures, the clipboard and plain fetches: what panels ask of the browser.

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

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

/// Put `text` on the clipboard.
pub fn copy_text(text: &str) {
    let clipboard = leptos::prelude::window().navigator().clipboard();
    let _ = clipboard.write_text(text);
}

/// A setting this browser remembers for the page (localStorage), if it has one.
pub fn remembered(key: &str) -> Option<String> {
    leptos::prelude::window().local_storage().ok().flatten()?.get_item(key).ok().flatten()
}

/// Remember a setting for the next visit (best effort: a private window may refuse).
pub fn remember(key: &str, value: &str) {
    if let Some(s) = leptos::prelude::window().local_storage().ok().flatten() {
        let _ = s.set_item(key, value);
    }
}

/// The text at `url` on the page's own site.
pub async fn fetch_text(url: &str) -> Result<String, String> {
    let window = web_sys::window().ok_or("no window")?;
    let resp = JsFuture::from(window.fetch_with_str(url)).await.map_err(|e| format!("{e:?}"))?;
    let resp: web_sys::Response = resp.dyn_into().map_err(|_| "not a Response")?;
    if !resp.ok() {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    let text = JsFuture::from(resp.text().map_err(|e| format!("{e:?}"))?).await.map_err(|e| format!("{e:?}"))?;
    text.as_string().ok_or_else(|| "not text".into())
}
