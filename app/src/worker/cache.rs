//! The model cache (the Cache API, `lowbit-models-v1`): a file is kept under its URL, or under
//! `protocol::model::LOCAL_FILE_KEY` and its name when it was opened from the disk. A checkpoint's
//! files are kept under their URLs, with a manifest beside them (`CHECKPOINT_MANIFEST`); the list
//! shows the checkpoint as one entry, keyed by its base URL.

use js_sys::{Array, Uint8Array};
use lowbit_app::protocol::model::{CheckpointManifest, CHECKPOINT_MANIFEST};
use lowbit_app::protocol::CachedModel;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen::JsCast;

use crate::download::response_bytes;
use crate::{js_err, scope, Fail};

/// The Cache API cache holding model files.
const CACHE: &str = "lowbit-models-v1";

pub async fn open_cache() -> Result<web_sys::Cache, Fail> {
    let caches = scope().caches().map_err(|e| js_err("the model cache", e))?;
    let c = JsFuture::from(caches.open(CACHE)).await.map_err(|e| js_err("the model cache", e))?;
    Ok(c.unchecked_into())
}

/// The display name stored with a cache entry (falls back to the key's last path segment).
pub fn key_name(key: &str) -> String {
    let last = key.rsplit('/').next().unwrap_or(key);
    js_sys::decode_uri_component(last).ok().and_then(|s| s.as_string()).unwrap_or_else(|| last.to_string())
}

pub async fn cached_bytes(key: &str, name: &str) -> Result<Option<Vec<u8>>, Fail> {
    let cache = open_cache().await?;
    let hit = JsFuture::from(cache.match_with_str(key)).await.map_err(|e| js_err("the model cache", e))?;
    if hit.is_undefined() || hit.is_null() {
        return Ok(None);
    }
    let resp: web_sys::Response = hit.unchecked_into();
    Ok(Some(response_bytes(resp, name, "reading the model cache").await?))
}

/// Take a file that turned out not to load out of the model cache.
pub async fn unstore(key: &str) {
    if let Ok(cache) = open_cache().await {
        let _ = JsFuture::from(cache.delete_with_str(key)).await;
    }
}

/// Keep a copy in the cache (best effort: a full disk only means the next visit downloads again).
pub async fn store(key: &str, name: &str, bytes: &[u8]) {
    let r = async {
        let cache = open_cache().await?;
        let init = web_sys::ResponseInit::new();
        let headers = web_sys::Headers::new().map_err(|e| js_err("cache", e))?;
        headers.set("content-type", "application/octet-stream").map_err(|e| js_err("cache", e))?;
        headers.set("content-length", &bytes.len().to_string()).map_err(|e| js_err("cache", e))?;
        headers.set("x-lowbit-name", &js_sys::encode_uri_component(name).as_string().unwrap_or_default()).map_err(|e| js_err("cache", e))?;
        init.set_headers(&headers);
        let body = Uint8Array::from(bytes);
        let resp = web_sys::Response::new_with_opt_buffer_source_and_init(Some(&body), &init).map_err(|e| js_err("cache", e))?;
        JsFuture::from(cache.put_with_str(key, &resp)).await.map_err(|e| js_err("cache", e))?;
        Ok::<_, Fail>(())
    };
    if let Err(Fail(_, m)) = r.await {
        web_sys::console::warn_1(&format!("lowbit: could not cache {name}: {m}").into());
    }
}

/// The manifest of the checkpoint at `base`, if the cache holds one.
pub async fn checkpoint_manifest(base: &str) -> Result<Option<CheckpointManifest>, Fail> {
    let key = format!("{base}{CHECKPOINT_MANIFEST}");
    let Some(bytes) = cached_bytes(&key, CHECKPOINT_MANIFEST).await? else { return Ok(None) };
    Ok(serde_json::from_slice(&bytes).ok())
}

/// Record that the cache holds the checkpoint at `base` (its files cached one by one).
pub async fn store_manifest(base: &str, m: &CheckpointManifest) {
    if let Ok(bytes) = serde_json::to_vec(m) {
        store(&format!("{base}{CHECKPOINT_MANIFEST}"), &m.name, &bytes).await;
    }
}

/// The checkpoint a cached file belongs to: the base URL of a file a checkpoint reads (or of its
/// manifest), None for a model file of its own.
fn checkpoint_of(key: &str) -> Option<&str> {
    let (base, file) = key.rsplit_once('/')?;
    (file == CHECKPOINT_MANIFEST || lowbit::hf::reads_file(file)).then(|| &key[..base.len() + 1])
}

/// A checkpoint's name from its base URL (`…/owner/NAME/resolve/REVISION/`).
pub fn checkpoint_name(base: &str) -> String {
    let parts: Vec<&str> = base.trim_end_matches('/').split('/').collect();
    match parts.iter().position(|p| *p == "resolve") {
        Some(i) if i > 0 => parts[i - 1].to_string(),
        _ => parts.last().copied().unwrap_or(base).to_string(),
    }
}

/// Take `key` out of the cache; a checkpoint's key (its base URL, ending in `/`) takes its files.
pub async fn delete(key: &str) -> Result<(), Fail> {
    let cache = open_cache().await?;
    let keys: Array = JsFuture::from(cache.keys()).await.map_err(|e| js_err("the model cache", e))?.unchecked_into();
    for req in keys.iter() {
        let url = req.unchecked_ref::<web_sys::Request>().url();
        if url == key || (key.ends_with('/') && checkpoint_of(&url) == Some(key)) {
            JsFuture::from(cache.delete_with_str(&url)).await.map_err(|e| js_err("the model cache", e))?;
        }
    }
    Ok(())
}

pub async fn list_cache() -> Result<Vec<CachedModel>, Fail> {
    let cache = open_cache().await?;
    let keys: Array = JsFuture::from(cache.keys()).await.map_err(|e| js_err("the model cache", e))?.unchecked_into();
    let mut out: Vec<CachedModel> = Vec::new();
    // Checkpoints (base URL → its entry), summed as their files are met; one whose download was
    // interrupted has no manifest yet, and says so.
    let mut checkpoints: Vec<(String, CachedModel)> = Vec::new();
    for req in keys.iter() {
        let url = req.unchecked_ref::<web_sys::Request>().url();
        let Some(base) = checkpoint_of(&url) else { continue };
        if checkpoints.iter().any(|(b, _)| b == base) {
            continue;
        }
        let name = match checkpoint_manifest(base).await? {
            Some(m) => m.name,
            None => format!("{} (download not finished)", checkpoint_name(base)),
        };
        checkpoints.push((base.to_string(), CachedModel { key: base.to_string(), name, bytes: 0 }));
    }
    for req in keys.iter() {
        let req: web_sys::Request = req.unchecked_into();
        let key = req.url();
        let hit = JsFuture::from(cache.match_with_request(&req)).await.map_err(|e| js_err("the model cache", e))?;
        if hit.is_undefined() {
            continue;
        }
        let resp: web_sys::Response = hit.unchecked_into();
        let h = resp.headers();
        let bytes = h.get("content-length").ok().flatten().and_then(|v| v.parse().ok()).unwrap_or(0);
        let name = h
            .get("x-lowbit-name")
            .ok()
            .flatten()
            .and_then(|n| js_sys::decode_uri_component(&n).ok().and_then(|s| s.as_string()))
            .unwrap_or_else(|| key_name(&key));
        match checkpoint_of(&key).and_then(|b| checkpoints.iter_mut().find(|(base, _)| base == b)) {
            Some((_, c)) if !key.ends_with(CHECKPOINT_MANIFEST) => c.bytes += bytes,
            Some(_) => {}
            None => out.push(CachedModel { key, name, bytes }),
        }
    }
    out.extend(checkpoints.into_iter().map(|(_, c)| c));
    Ok(out)
}
