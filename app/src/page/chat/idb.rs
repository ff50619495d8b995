//! The page's saved chats in IndexedDB (database `lowbit`, store `chats`: one JSON record per
//! chat, keyed by its id), and the browser's storage estimate and persistence.

use js_sys::{Array, Promise};
use leptos::prelude::window;
use lowbit_app::history::SavedChat;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbRequest, IdbTransactionMode};

const DB: &str = "lowbit";
const STORE: &str = "chats";

fn js(e: JsValue) -> String {
    e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())).or_else(|| e.as_string()).unwrap_or_else(|| format!("{e:?}"))
}

/// The request's result once it succeeds.
async fn finished(req: &IdbRequest) -> Result<JsValue, String> {
    let p = Promise::new(&mut |resolve, reject| {
        req.set_onsuccess(Some(Closure::once_into_js(move |_: web_sys::Event| resolve.call0(&JsValue::NULL)).unchecked_ref()));
        req.set_onerror(Some(Closure::once_into_js(move |_: web_sys::Event| reject.call0(&JsValue::NULL)).unchecked_ref()));
    });
    match JsFuture::from(p).await {
        Ok(_) => req.result().map_err(js),
        Err(_) => Err(req.error().ok().flatten().map_or("IndexedDB request failed".into(), |e| e.message())),
    }
}

async fn open() -> Result<IdbDatabase, String> {
    let factory = window().indexed_db().map_err(js)?.ok_or("this browser offers no IndexedDB (a private window?)")?;
    let req = factory.open_with_u32(DB, 1).map_err(js)?;
    let upgrade = req.clone();
    let on_upgrade = Closure::<dyn FnMut(web_sys::IdbVersionChangeEvent)>::new(move |_| {
        if let Ok(db) = upgrade.result().and_then(|r| r.dyn_into::<IdbDatabase>()) {
            if !db.object_store_names().contains(STORE) {
                let _ = db.create_object_store(STORE);
            }
        }
    });
    req.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
    let db = finished(&req).await?;
    drop(on_upgrade);
    db.dyn_into::<IdbDatabase>().map_err(|_| "IndexedDB did not open".into())
}

fn store(db: &IdbDatabase, mode: IdbTransactionMode) -> Result<web_sys::IdbObjectStore, String> {
    db.transaction_with_str_and_mode(STORE, mode).and_then(|t| t.object_store(STORE)).map_err(js)
}

/// Every saved chat, the most recently updated first (records that no longer parse are skipped).
pub async fn all() -> Result<Vec<SavedChat>, String> {
    let db = open().await?;
    let values = finished(&store(&db, IdbTransactionMode::Readonly)?.get_all().map_err(js)?).await?;
    let mut chats: Vec<SavedChat> =
        Array::from(&values).iter().filter_map(|v| v.as_string()).filter_map(|s| serde_json::from_str(&s).ok()).collect();
    chats.sort_by(|a, b| b.updated_ms.total_cmp(&a.updated_ms));
    Ok(chats)
}

pub async fn put(chat: &SavedChat) -> Result<(), String> {
    let db = open().await?;
    let json = serde_json::to_string(chat).map_err(|e| e.to_string())?;
    let req = store(&db, IdbTransactionMode::Readwrite)?.put_with_key(&JsValue::from_str(&json), &JsValue::from_str(&chat.id)).map_err(js)?;
    finished(&req).await.map(|_| ())
}

pub async fn delete(id: &str) -> Result<(), String> {
    let db = open().await?;
    let req = store(&db, IdbTransactionMode::Readwrite)?.delete(&JsValue::from_str(id)).map_err(js)?;
    finished(&req).await.map(|_| ())
}

/// Ask the browser to keep this site's storage when space runs low (it may say no); whether it is
/// kept, the bytes used and the quota.
pub async fn persist_and_estimate() -> Result<(bool, f64, f64), String> {
    let storage = window().navigator().storage();
    let persisted = JsFuture::from(storage.persist().map_err(js)?).await.map_err(js)?.as_bool().unwrap_or(false);
    let est: web_sys::StorageEstimate = JsFuture::from(storage.estimate().map_err(js)?).await.map_err(js)?.unchecked_into();
    Ok((persisted, est.get_usage().unwrap_or(0.0), est.get_quota().unwrap_or(0.0)))
}

/// Offer `text` as a file download named `name`.
pub fn download(name: &str, text: &str) -> Result<(), String> {
    let parts = Array::of1(&JsValue::from_str(text));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type("application/json");
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &opts).map_err(js)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(js)?;
    let a: web_sys::HtmlAnchorElement = window().document().ok_or("no document")?.create_element("a").map_err(js)?.unchecked_into();
    a.set_href(&url);
    a.set_download(name);
    a.click();
    // The download has started from the URL; let it go a little later.
    let revoke = Closure::once_into_js(move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(revoke.unchecked_ref(), 10_000);
    Ok(())
}
