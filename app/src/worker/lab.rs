//! The lab's jobs in the worker: quality, the lock-step comparison, the decode profile and model
//! benchmark, the inspector and the layer errors, each on the loaded session.

use lowbit::lockstep::{CompareSettings, LockStep};
use lowbit::session::Session;
use lowbit_app::protocol::{LabEvent, LabJob};

use crate::{emit, stopped, with_session, yield_now, Fail};

pub async fn run(job: LabJob) -> Result<(), Fail> {
    match job {
        LabJob::Compare { settings } => with_session(async |s| compare(s, settings).await).await,
        LabJob::Profile => {
            let profile = with_session(async |s| Ok(s.profile_decode().await?)).await?;
            emit(LabEvent::Profile { profile });
            Ok(())
        }
        LabJob::Bench { name, precisions, prompt_tokens, decode_tokens } => {
            let bench = with_session(async |s| Ok(s.bench(&name, &precisions, prompt_tokens, decode_tokens).await?)).await?;
            emit(LabEvent::Bench { bench });
            Ok(())
        }
        LabJob::Inspect { tensor } => {
            let inspection = with_session(async |s| Ok(lowbit::inspect::inspect(&s.gguf()?, &tensor, 48)?)).await?;
            emit(LabEvent::Inspection { inspection });
            Ok(())
        }
        LabJob::LayerErrors { text, max_tokens, variants } => {
            let errors = with_session(async |s| Ok(s.layer_errors(&text, max_tokens, &variants, |_| {}).await?)).await?;
            emit(LabEvent::LayerErrors { errors });
            Ok(())
        }
        LabJob::Quality { text, max_tokens, plans } => {
            let (n_tokens, rows) = with_session(async |s| {
                let mut needed = false;
                for v in &plans {
                    needed |= s.needs_calibration(v.plan)?;
                }
                if needed {
                    crate::model::calibrate(s, |done, total| emit(LabEvent::Calibrating { done, total })).await?;
                    if let Some(c) = s.calibration() {
                        emit(LabEvent::Calibrated { tokens: c.tokens, seconds: c.seconds });
                    }
                }
                // Cancel is taken between variants (each one's scoring runs to its end).
                Ok(s.quality(&text, max_tokens, &plans, |plan| {
                    emit(LabEvent::QualityProgress { plan });
                    !crate::cancelled()
                })
                .await?)
            })
            .await?;
            emit(LabEvent::QualityDone { n_tokens, rows });
            Ok(())
        }
    }
}

/// Run a lock-step comparison, posting every position; Stop ends it after the current one.
async fn compare(session: &Session, settings: CompareSettings) -> Result<(), Fail> {
    let mut ls = LockStep::new(session, settings)?;
    emit(LabEvent::CompareStarted { lanes: ls.variants(), prompt_tokens: ls.prompt_tokens, weight_bytes: ls.weight_bytes() });
    yield_now().await;
    ls.prefill().await?;
    let mut stop = false;
    while let Some(step) = ls.step().await? {
        emit(LabEvent::CompareStep { step });
        yield_now().await;
        if stopped() {
            stop = true;
            break;
        }
    }
    session.gpu().check()?;
    emit(LabEvent::CompareDone { summaries: ls.summaries(), stopped: stop });
    Ok(())
}

