//! A model's bytes from the network or a picked file: the size limit, the allowed hosts, HTTP
//! errors named, progress as it arrives, Cancel between chunks.

use js_sys::Uint8Array;
use lowbit::session::Stage;
use lowbit::util::now_ms;
use lowbit_app::protocol::model::{blocked_host_message, download_allowed, file_too_large_message, http_status_message, MAX_FILE_BYTES};
use lowbit_app::protocol::ErrorKind;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::model::progress;
use crate::{cancelled, js_err, scope, Fail};

pub async fn response_bytes(resp: web_sys::Response, name: &str, what: &str) -> Result<Vec<u8>, Fail> {
    let total = resp
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    // Refused before a byte is read when the size is known, else as soon as it is passed: the
    // worker's memory would run out part way and take the loaded model with it.
    let too_large = |bytes: u64| Fail(ErrorKind::FileTooLarge, file_too_large_message(name, bytes));
    if total > MAX_FILE_BYTES {
        return Err(too_large(total));
    }
    let body = resp.body().ok_or_else(|| Fail(ErrorKind::FetchFailed, format!("{what}: empty response")))?;
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut out = Vec::with_capacity(total as usize);
    let mut last = now_ms();
    progress(name, Stage::Download, 0, total);
    loop {
        if cancelled() {
            let _ = reader.cancel();
            return Err(Fail::cancelled());
        }
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| js_err(what, e))?;
        let done = js_sys::Reflect::get(&chunk, &"done".into()).ok().and_then(|v| v.as_bool()).unwrap_or(true);
        if done {
            break;
        }
        let value: Uint8Array = js_sys::Reflect::get(&chunk, &"value".into()).map_err(|e| js_err(what, e))?.unchecked_into();
        let start = out.len();
        if (start + value.length() as usize) as u64 > MAX_FILE_BYTES {
            let _ = reader.cancel();
            return Err(too_large((start + value.length() as usize) as u64));
        }
        out.resize(start + value.length() as usize, 0);
        value.copy_to(&mut out[start..]);
        if now_ms() - last > 100.0 {
            progress(name, Stage::Download, out.len() as u64, total.max(out.len() as u64));
            last = now_ms();
        }
    }
    progress(name, Stage::Download, out.len() as u64, out.len() as u64);
    Ok(out)
}

/// A Hugging Face file page (`…/blob/main/x.gguf`) as its download link (`…/resolve/main/x.gguf`).
pub fn hugging_face_file_url(url: &str) -> String {
    match url.split_once("huggingface.co/") {
        Some((head, tail)) if tail.contains("/blob/") => format!("{head}huggingface.co/{}", tail.replacen("/blob/", "/resolve/", 1)),
        _ => url.to_string(),
    }
}

/// Refuses, with the reason, a URL the page's security policy would block (another host than the
/// page's own and Hugging Face's): the browser would only say "Failed to fetch".
fn check_host(url: &str) -> Result<(), Fail> {
    let here = scope().location();
    let parsed = web_sys::Url::new_with_base(url, &here.href())
        .map_err(|_| Fail(ErrorKind::NotAnAddress, format!("“{url}” is not a web address: paste the file's full https:// link")))?;
    let own = parsed.origin() == here.origin();
    if own || (parsed.protocol() == "https:" && download_allowed(&parsed.hostname())) {
        return Ok(());
    }
    Err(Fail(ErrorKind::HostBlocked, blocked_host_message(&parsed.host())))
}

/// Larger than any web page a model link could land on (a Hugging Face file page is ~100 kB).
const WEB_PAGE_BYTES: u64 = 4 << 20;

pub async fn download(url: &str, name: &str) -> Result<Vec<u8>, Fail> {
    let resp = answer(url, false).await?.ok_or_else(|| Fail(ErrorKind::Internal, format!("{url}: no answer")))?;
    response_bytes(resp, name, &format!("downloading {url}")).await
}

/// [`download`], except that a file the server does not have (404) is `None`.
pub async fn download_if_present(url: &str, name: &str) -> Result<Option<Vec<u8>>, Fail> {
    match answer(url, true).await? {
        Some(resp) => Ok(Some(response_bytes(resp, name, &format!("downloading {url}")).await?)),
        None => Ok(None),
    }
}

/// `url`'s answer, once it is known to be a file (`None`: a 404, when `optional`).
async fn answer(url: &str, optional: bool) -> Result<Option<web_sys::Response>, Fail> {
    check_host(url)?;
    // fetch rejects (a TypeError, "Failed to fetch") only when no answer came at all.
    let resp = JsFuture::from(scope().fetch_with_str(url)).await.map_err(|e| {
        let Fail(_, why) = js_err("", e);
        Fail(ErrorKind::Unreachable, format!("{url} did not answer ({}): check the connection and the address", why.trim_start_matches(": ")))
    })?;
    let resp: web_sys::Response = resp.unchecked_into();
    if optional && resp.status() == 404 {
        return Ok(None);
    }
    if !resp.ok() {
        return Err(Fail(ErrorKind::HttpStatus, http_status_message(url, resp.status(), &resp.status_text())));
    }
    // A web page says so in its type and is small; a large file sent as text/html by a
    // misconfigured host is read, and the parser judges it.
    let kind = resp.headers().get("content-type").ok().flatten().unwrap_or_default();
    let length = resp.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<u64>().ok());
    if kind.starts_with("text/html") && length.is_none_or(|n| n < WEB_PAGE_BYTES) {
        return Err(Fail(
            ErrorKind::NotAFile,
            format!("{url} answered with a web page, not a model file (on Hugging Face, use the file's resolve/main/… link)"),
        ));
    }
    Ok(Some(resp))
}

pub async fn read_file(file: &web_sys::File, name: &str) -> Result<Vec<u8>, Fail> {
    let resp = web_sys::Response::new_with_opt_blob(Some(file)).map_err(|e| js_err("reading the file", e))?;
    let headers = resp.headers();
    let _ = headers.set("content-length", &file.size().to_string());
    let bytes = response_bytes(resp, name, &format!("reading {name}")).await?;
    if (bytes.len() as f64) != file.size() {
        return Err(Fail(ErrorKind::BadFile, format!("read {} of {} bytes of {name}", bytes.len(), file.size())));
    }
    Ok(bytes)
}
