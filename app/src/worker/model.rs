//! The model's jobs in the worker: load (parse, requantize, upload, compile, each stage with
//! progress and Cancel) and switch precisions; the KV cache's and the activations' settings are in
//! `settings.rs`. Whatever does not fit leaves what was there before.

use lowbit::method::calibration::Calibrator;
use lowbit::plan::Plan;
use lowbit::session::{Loader, Progress, Session, Stage};
use lowbit::util::now_ms;
use lowbit::hf;
use lowbit_app::protocol::model::{Calibrated, CheckpointManifest, LoadedModel, CHECKPOINT_MANIFEST, LOCAL_FILE_KEY};
use lowbit_app::protocol::{ErrorKind, LabEvent, ModelEvent, ModelJob};

use crate::cache::{cached_bytes, checkpoint_manifest, checkpoint_name, key_name, store, store_manifest, unstore};
use crate::download::{download, download_if_present, hugging_face_file_url, read_file};
use crate::{checkpoint, emit, gpu, set_model, with_session, Fail};

/// Run one of the model feature's jobs (`files`: the files a `LoadFile` or `LoadCheckpointFiles`
/// came with).
pub async fn run(job: ModelJob, files: Vec<web_sys::File>) -> Result<(), Fail> {
    match job {
        ModelJob::LoadUrl { url, name, plan, n_ctx } => {
            let url = hugging_face_file_url(&url);
            match cached_bytes(&url, &name).await? {
                Some(b) => load(name, b, plan, n_ctx, Origin::Cache).await,
                None => {
                    let b = download(&url, &name).await?;
                    load(name, b, plan, n_ctx, Origin::Fetched { cache_key: url }).await
                }
            }
        }
        ModelJob::LoadCheckpoint { base, name, plan, n_ctx } => {
            let manifest = checkpoint_manifest(&base).await?;
            load_checkpoint(&base, name, manifest, plan, n_ctx).await
        }
        ModelJob::LoadCheckpointFiles { name, plan, n_ctx } => {
            let mut read = hf::Files::new();
            let n = files.len();
            for (i, f) in files.iter().enumerate() {
                let label = format!("{name} · {} ({} of {n})", f.name(), i + 1);
                read.insert(f.name(), read_file(f, &label).await?);
            }
            progress(&name, Stage::Parse, 0, 1);
            let gguf = hf::to_gguf(&read, &name, hf::OutType::AsStored)?;
            drop(read);
            let cache_key = format!("{LOCAL_FILE_KEY}{}", js_sys::encode_uri_component(&name));
            load(name, gguf, plan, n_ctx, Origin::Fetched { cache_key }).await
        }
        ModelJob::LoadFile { name, plan, n_ctx } => {
            let file = files.into_iter().next().ok_or_else(|| Fail(ErrorKind::Internal, "no file sent with LoadFile".into()))?;
            let bytes = read_file(&file, &name).await?;
            let cache_key = format!("{LOCAL_FILE_KEY}{}", js_sys::encode_uri_component(&name));
            load(name, bytes, plan, n_ctx, Origin::Fetched { cache_key }).await
        }
        ModelJob::LoadCached { key, plan, n_ctx } if key.ends_with('/') => {
            // A checkpoint: complete (its manifest names it), or an interrupted download, which
            // this finishes.
            let manifest = checkpoint_manifest(&key).await?;
            let name = manifest.as_ref().map_or_else(|| checkpoint_name(&key), |m| m.name.clone());
            load_checkpoint(&key, name, manifest, plan, n_ctx).await
        }
        ModelJob::LoadCached { key, plan, n_ctx } => {
            let name = key_name(&key);
            let bytes = cached_bytes(&key, &name)
                .await?
                .ok_or_else(|| Fail(ErrorKind::FetchFailed, format!("{name} is no longer in the cache")))?;
            load(name, bytes, plan, n_ctx, Origin::Cache).await
        }
        ModelJob::SetPrecision { plan } => switch(plan).await,
        ModelJob::Export => export().await,
        job @ (ModelJob::SetKv { .. } | ModelJob::SetActivations { .. } | ModelJob::SetContext { .. }) => crate::settings::run(job).await,
    }
}

/// Compile the kernels the session's forward pass runs now (after a precision or KV change),
/// so the next token does not stall on them.
pub async fn compile_kernels(session: &Session) -> Result<(), Fail> {
    let gpu = session.gpu();
    for k in session.kernels() {
        gpu.pipeline(k);
    }
    gpu.wait().await?;
    gpu.check()?;
    Ok(())
}

pub fn progress(name: &str, stage: Stage, done: u64, total: u64) {
    emit(ModelEvent::Progress { name: name.to_string(), progress: Progress { stage, done, total } });
}

/// A Hugging Face checkpoint whose files are at `base` + their names: each from the model cache,
/// else downloaded and cached, progress per file; then converted to GGUF (`lowbit::hf`) and
/// loaded. Once cached whole, its `manifest` lists its files, so a load asks the network for
/// nothing. A checkpoint that does not convert leaves nothing in the cache.
async fn load_checkpoint(base: &str, name: String, manifest: Option<CheckpointManifest>, plan: Option<Plan>, n_ctx: usize) -> Result<(), Fail> {
    // Cache keys of the checkpoint's files: all, and those this load stored.
    let (mut keys, mut stored) = (vec![], vec![]);
    let converted = checkpoint_gguf(base, &name, manifest.as_ref(), &mut keys, &mut stored).await;
    match converted {
        // A checkpoint that is not one leaves nothing behind; a failed download leaves nothing of
        // this attempt (a cancelled one keeps what arrived, for the next try).
        Err(f) => {
            let drop_keys = match f.0 {
                ErrorKind::BadFile => {
                    keys.push(format!("{base}{CHECKPOINT_MANIFEST}"));
                    &keys
                }
                ErrorKind::Cancelled => &vec![],
                _ => &stored,
            };
            for k in drop_keys {
                unstore(k).await;
            }
            Err(f)
        }
        Ok((gguf, listed)) => {
            store_manifest(base, &listed).await;
            load(name, gguf, plan, n_ctx, if stored.is_empty() { Origin::Cache } else { Origin::Converted }).await
        }
    }
}

/// The checkpoint at `base` as GGUF, and the manifest of its files (see [`load_checkpoint`]).
async fn checkpoint_gguf(
    base: &str,
    name: &str,
    manifest: Option<&CheckpointManifest>,
    keys: &mut Vec<String>,
    stored: &mut Vec<String>,
) -> Result<(Vec<u8>, CheckpointManifest), Fail> {
    let mut files = hf::Files::new();
    let mut fetch = async |file: &str, required: bool, label: String| -> Result<Option<Vec<u8>>, Fail> {
        let key = format!("{base}{file}");
        let bytes = match cached_bytes(&key, &label).await? {
            Some(b) => Some(b),
            None => {
                let got = if required { Some(download(&key, &label).await?) } else { download_if_present(&key, &label).await? };
                if let Some(b) = &got {
                    store(&key, &label, b).await;
                    stored.push(key.clone());
                }
                got
            }
        };
        if bytes.is_some() {
            keys.push(key);
        }
        Ok(bytes)
    };
    // The small files first (a missing config or tokenizer fails before the weights download);
    // then the weights, as the index lists them, or the one file.
    let small: Vec<(String, bool)> = match manifest {
        Some(m) => m.files.iter().filter(|f| !f.ends_with(".safetensors")).map(|f| (f.clone(), true)).collect(),
        None => hf::META_FILES.iter().map(|(f, r)| (f.to_string(), *r)).chain([(hf::INDEX.to_string(), false)]).collect(),
    };
    for (file, required) in &small {
        if let Some(b) = fetch(file, *required, format!("{name} · {file}")).await? {
            files.insert(file.clone(), b);
        }
    }
    let weights = hf::weight_files(files.get(hf::INDEX).map(Vec::as_slice))?;
    let n = weights.len();
    for (i, w) in weights.iter().enumerate() {
        let label = if n > 1 { format!("{name} · {w} ({} of {n})", i + 1) } else { format!("{name} · {w}") };
        if let Some(b) = fetch(w, true, label).await? {
            files.insert(w.clone(), b);
        }
    }
    progress(name, Stage::Parse, 0, 1);
    let gguf = hf::to_gguf(&files, name, hf::OutType::AsStored)?;
    Ok((gguf, CheckpointManifest { name: name.to_string(), files: files.keys().cloned().collect() }))
}

/// Where the bytes of a model came from.
pub enum Origin {
    Cache,
    /// Converted from a checkpoint whose files were downloaded (and cached, file by file).
    Converted,
    /// The model that was loaded, again (after the device was lost).
    Reloaded,
    /// Downloaded or opened: cached under `cache_key` once the file parses.
    Fetched { cache_key: String },
}

/// Parse, requantize, upload and compile, reporting each stage; the previous model is replaced
/// only once the new one is ready (a failed or cancelled load leaves it in place).
pub async fn load(name: String, bytes: Vec<u8>, plan: Option<Plan>, n_ctx: usize, origin: Origin) -> Result<(), Fail> {
    let t0 = now_ms();
    let gpu = gpu().await?;
    let mut last = now_ms();
    progress(&name, Stage::Parse, 0, bytes.len() as u64);
    checkpoint(&mut last).await?;
    let n = bytes.len() as u64;
    let mut loader = Loader::new(&gpu, bytes, plan, n_ctx)?;
    progress(&name, Stage::Parse, n, n);
    if loader.needs_calibration() {
        let mut c = loader.calibrator(lowbit::method::calibration::DEFAULT_TOKENS)?;
        run_calibrator(&mut c, |d, t| progress(&name, Stage::Calibrate, d, t)).await?;
        loader.set_calibration(c.finish());
    }
    // Everything the new model allocates, in one out-of-memory scope: if it does not fit, it goes
    // and the model loaded before stays (both are on the device until the new one is ready).
    let oom = gpu.oom_scope(&format!("loading {name}"));
    // Cached once it parses (a download cancelled later need not be fetched again), and taken out
    // of the cache again if a later stage finds it cannot be loaded.
    let cached = match &origin {
        Origin::Fetched { cache_key } => {
            store(cache_key, &name, loader.bytes()).await;
            Some(cache_key.clone())
        }
        _ => None,
    };
    let weights = async {
        loop {
            for p in loader.progress() {
                progress(&name, p.stage, p.done, p.total);
            }
            checkpoint(&mut last).await?;
            if !loader.step()? {
                break;
            }
        }
        for p in loader.progress() {
            progress(&name, p.stage, p.done, p.total);
        }
        Ok::<_, Fail>(())
    }
    .await;
    if let (Err(f), Some(key)) = (&weights, &cached) {
        if f.0 == ErrorKind::BadFile {
            unstore(key).await;
        }
    }
    weights?;
    let chosen = loader.plan();
    let session = loader.finish()?;
    oom.check().await?;
    let kernels = session.kernels();
    for (i, k) in kernels.iter().enumerate() {
        progress(&name, Stage::Compile, i as u64, kernels.len() as u64);
        checkpoint(&mut last).await?;
        gpu.pipeline(*k);
    }
    gpu.wait().await?;
    gpu.check()?;
    progress(&name, Stage::Compile, kernels.len() as u64, kernels.len() as u64);
    // The tensor list first: `Loaded` ends the job, and the page takes no event of it after that.
    if let Ok(g) = session.gguf() {
        emit(LabEvent::Tensors { tensors: lowbit::inspect::tensors(&g) });
    }
    emit(ModelEvent::Loaded(Box::new(LoadedModel {
        name: name.clone(),
        fit: session.info.fit(&gpu.info),
        info: session.info.clone(),
        plan: chosen,
        plan_reason: plan.is_none().then(|| session.info.suggested_plan().1),
        weight_bytes: session.weight_bytes(),
        kv_bytes: session.kv_bytes(),
        context_size: session.context_size(),
        from_cache: matches!(origin, Origin::Cache | Origin::Reloaded),
        load_ms: now_ms() - t0,
        calibration: session.calibration().map(|c| Calibrated::from(&**c)),
    })));
    set_model(name, session);
    Ok(())
}

thread_local! {
    /// The last export's `blob:` URL: let go when the next export is made.
    static EXPORT_URL: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The model at its current plan as a GGUF file, a tensor a step (progress, Cancel), offered to
/// the page as a `blob:` URL.
async fn export() -> Result<(), Fail> {
    let (bytes, plan) = with_session(async |s| {
        let g = s.gguf()?;
        let plan = s.plan();
        let mut e = lowbit::export::Exporter::new(&g, plan)?;
        let calib = s.calibration().cloned();
        let mut last = now_ms();
        loop {
            emit(ModelEvent::ExportProgress { done: e.done(), total: e.total() });
            checkpoint(&mut last).await?;
            if !e.step(&g, calib.as_deref())? {
                break;
            }
        }
        Ok((e.finish(&g)?, plan))
    })
    .await?;
    let js = |e: wasm_bindgen::JsValue| Fail(ErrorKind::Internal, format!("export: {e:?}"));
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(&bytes[..]));
    let blob = web_sys::Blob::new_with_u8_array_sequence(&parts).map_err(js)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(js)?;
    if let Some(old) = EXPORT_URL.with(|u| u.replace(Some(url.clone()))) {
        let _ = web_sys::Url::revoke_object_url(&old);
    }
    let stem = crate::model_name();
    let stem = stem.strip_suffix(".gguf").unwrap_or(&stem);
    emit(ModelEvent::Exported { url, name: format!("{stem}.lowbit-{}.gguf", plan.code()), bytes: bytes.len() as u64 });
    Ok(())
}

/// Run the built-in calibration text through the model at source precision (a few tokens a
/// step, with progress and Cancel) and keep its activations for every later calibrated switch.
pub async fn calibrate(session: &mut Session, report: impl Fn(u64, u64)) -> Result<(), Fail> {
    let mut c = session.calibrator(None, lowbit::method::calibration::DEFAULT_TOKENS)?;
    run_calibrator(&mut c, report).await?;
    session.set_calibration(c.finish());
    Ok(())
}

/// Step a calibrator to the end, telling `report` the tokens done and the total before each step.
async fn run_calibrator(c: &mut Calibrator, report: impl Fn(u64, u64)) -> Result<(), Fail> {
    let total = c.total() as u64;
    let mut last = now_ms();
    loop {
        report(c.done as u64, total);
        checkpoint(&mut last).await?;
        if !c.step()? {
            break;
        }
    }
    report(total, total);
    Ok(())
}

async fn switch(plan: Plan) -> Result<(), Fail> {
    let t0 = now_ms();
    let (plan, weight_bytes, calibration) = with_session(async |session| {
        if session.needs_calibration(plan)? {
            calibrate(session, |d, t| progress("", Stage::Calibrate, d, t)).await?;
        }
        let mut sw = session.begin_switch(plan)?;
        // The new weights are made beside the old ones, which stay if they do not fit.
        let oom = session.gpu().oom_scope(&format!("switching to {plan}"));
        let mut last = now_ms();
        loop {
            let p = sw.progress();
            progress("", p.stage, p.done, p.total);
            checkpoint(&mut last).await?;
            if !session.step_switch(&mut sw)? {
                break;
            }
        }
        oom.check().await?;
        session.finish_switch(sw)?;
        compile_kernels(session).await?;
        Ok((session.plan(), session.weight_bytes(), session.calibration().map(|c| Calibrated::from(&**c))))
    })
    .await?;
    emit(ModelEvent::Switched { plan, weight_bytes, ms: now_ms() - t0, calibration });
    Ok(())
}

