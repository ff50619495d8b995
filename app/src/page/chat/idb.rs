//! The page's saved chats in IndexedDB (database `lowbit`, store `chats`: one JSON record per
//! chat, keyed by its id), and the browser's storage estimate and persistence. One connection is
//! kept open; a write is done when its transaction has completed (committed), not when its
//! request succeeded, so what the page shows as saved or deleted survives a reload at any moment.

use std::cell::RefCell;

use js_sys::{Array, Promise};
use leptos::prelude::window;
use lowbit_app::history::SavedChat;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbObjectStore, IdbRequest, IdbTransaction, IdbTransactionMode};

const DB: &str = "lowbit";
const STORE: &str = "chats";

thread_local! {
    /// The open connection (None until the first use, and again after the browser closed it).
    static CONNECTION: RefCell<Option<IdbDatabase>> = const { RefCell::new(None) };
}

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

/// The connection, opened on first use and kept; when the browser closes it (another tab
/// upgrading the database, storage cleared) the next use opens it again.
async fn connection() -> Result<IdbDatabase, String> {
    if let Some(db) = CONNECTION.with(|c| c.borrow().clone()) {
        return Ok(db);
    }
    let db = open().await?;
    let forget = Closure::<dyn FnMut()>::new(|| CONNECTION.with(|c| *c.borrow_mut() = None));
    db.set_onclose(Some(forget.as_ref().unchecked_ref()));
    db.set_onversionchange(Some(forget.as_ref().unchecked_ref()));
    forget.forget();
    CONNECTION.with(|c| *c.borrow_mut() = Some(db.clone()));
    Ok(db)
}

/// Once `tx` has completed: its writes are committed. An error or abort says why.
async fn committed(tx: &IdbTransaction) -> Result<(), String> {
    let p = Promise::new(&mut |resolve, reject| {
        let failed = reject.clone();
        tx.set_oncomplete(Some(Closure::once_into_js(move |_: web_sys::Event| resolve.call0(&JsValue::NULL)).unchecked_ref()));
        tx.set_onerror(Some(Closure::once_into_js(move |_: web_sys::Event| failed.call0(&JsValue::NULL)).unchecked_ref()));
        tx.set_onabort(Some(Closure::once_into_js(move |_: web_sys::Event| reject.call0(&JsValue::NULL)).unchecked_ref()));
    });
    match JsFuture::from(p).await {
        Ok(_) => Ok(()),
        Err(_) => Err(tx.error().map_or("the IndexedDB transaction was aborted".into(), |e| e.message())),
    }
}

/// Run `write` on the chats store in one read-write transaction with strict durability (flushed
/// to disk before it completes) and wait for it to complete.
async fn write(write: impl FnOnce(&IdbObjectStore) -> Result<IdbRequest, JsValue>) -> Result<(), String> {
    let db = connection().await?;
    // `db.transaction(store, "readwrite", { durability: "strict" })`: web-sys has the options
    // only behind its unstable APIs.
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"durability".into(), &"strict".into()).map_err(js)?;
    let transaction: js_sys::Function = js_sys::Reflect::get(&db, &"transaction".into()).map_err(js)?.unchecked_into();
    let tx: IdbTransaction = transaction.call3(&db, &STORE.into(), &"readwrite".into(), &options).map_err(js)?.unchecked_into();
    write(&tx.object_store(STORE).map_err(js)?).map_err(js)?;
    committed(&tx).await
}

/// Every saved chat, the most recently updated first (records that no longer parse are skipped).
pub async fn all() -> Result<Vec<SavedChat>, String> {
    let db = connection().await?;
    let store = db.transaction_with_str_and_mode(STORE, IdbTransactionMode::Readonly).and_then(|t| t.object_store(STORE)).map_err(js)?;
    let values = finished(&store.get_all().map_err(js)?).await?;
    let mut chats: Vec<SavedChat> =
        Array::from(&values).iter().filter_map(|v| v.as_string()).filter_map(|s| serde_json::from_str(&s).ok()).collect();
    chats.sort_by(|a, b| b.updated_ms.total_cmp(&a.updated_ms));
    Ok(chats)
}

/// Save `chat` (replacing the record with its id); done once committed.
pub async fn put(chat: &SavedChat) -> Result<(), String> {
    let json = serde_json::to_string(chat).map_err(|e| e.to_string())?;
    write(|s| s.put_with_key(&JsValue::from_str(&json), &JsValue::from_str(&chat.id))).await
}

/// Save every chat of `chats` in one transaction (an import): all or none.
pub async fn put_all(chats: &[SavedChat]) -> Result<(), String> {
    let records: Vec<(String, String)> = chats.iter().map(|c| Ok((c.id.clone(), serde_json::to_string(c)?))).collect::<Result<_, serde_json::Error>>().map_err(|e| e.to_string())?;
    write(|s| {
        let mut last = None;
        for (id, json) in &records {
            last = Some(s.put_with_key(&JsValue::from_str(json), &JsValue::from_str(id))?);
        }
        last.map_or_else(|| s.count(), Ok)
    })
    .await
}

/// Delete the chat `id`; done once committed.
pub async fn delete(id: &str) -> Result<(), String> {
    write(|s| s.delete(&JsValue::from_str(id))).await
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
