//! The model's settings that remake or retune what is loaded without requantizing it: the KV
//! cache's format and size, and the activations' format; whatever does not fit leaves what was
//! there before.

use lowbit::session::Session;
use lowbit_app::protocol::{ModelEvent, ModelJob};

use crate::model::compile_kernels;
use crate::{emit, with_session, Fail};

/// Run a `SetKv`, `SetActivations` or `SetContext` job.
pub async fn run(job: ModelJob) -> Result<(), Fail> {
    match job {
        ModelJob::SetKv { kv } => {
            let (kv, kv_bytes) = with_session(async |s| {
                let before = s.kv();
                remake_kv(s, &format!("a {kv} KV cache"), |s| s.set_kv(kv), |s| s.set_kv(before)).await?;
                compile_kernels(s).await?;
                Ok((s.kv(), s.kv_bytes()))
            })
            .await?;
            emit(ModelEvent::KvSwitched { kv, kv_bytes });
            Ok(())
        }
        ModelJob::SetActivations { act } => {
            let act = with_session(async |s| {
                s.set_activations(act).await?;
                compile_kernels(s).await?;
                Ok(s.activations())
            })
            .await?;
            emit(ModelEvent::ActivationsSwitched { act });
            Ok(())
        }
        ModelJob::SetContext { n_ctx } => {
            let (context_size, kv_bytes, context_used) = with_session(async |s| {
                let before = s.context_size();
                remake_kv(s, &format!("a KV cache of {n_ctx} tokens"), |s| s.set_context(n_ctx), |s| s.set_context(before)).await?;
                s.gpu().check()?;
                Ok((s.context_size(), s.kv_bytes(), s.context_used()))
            })
            .await?;
            emit(ModelEvent::ContextSet { context_size, kv_bytes, context_used });
            Ok(())
        }
        _ => Err(Fail(lowbit_app::protocol::ErrorKind::Internal, "not a settings job".into())),
    }
}

/// Remake the KV cache with `change` inside an out-of-memory scope; if the new one does not fit,
/// `undo` makes the one before again (it fitted).
async fn remake_kv(
    s: &mut Session,
    what: &str,
    change: impl FnOnce(&mut Session) -> lowbit::Result<()>,
    undo: impl FnOnce(&mut Session) -> lowbit::Result<()>,
) -> Result<(), Fail> {
    let oom = s.gpu().oom_scope(what);
    change(s)?;
    if let Err(e) = oom.check().await {
        undo(s)?;
        return Err(e.into());
    }
    Ok(())
}

