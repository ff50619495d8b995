//! The lab's jobs in the worker: quality, the lock-step comparison, the decode profile and model
//! benchmark, the inspector and the layer errors, each on the loaded session.

use lowbit::lockstep::{CompareSettings, LockStep};
use lowbit::plan::Variant;
use lowbit::session::RunStep;
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
        LabJob::Bench { name, settings } => {
            let bench = with_session(async |s| Ok(s.bench(&name, &settings, step).await?)).await?;
            emit(LabEvent::Bench { bench });
            Ok(())
        }
        LabJob::ContextSweep { kvs, contexts, decode_tokens } => {
            let sweep = with_session(async |s| Ok(s.context_sweep(&kvs, &contexts, decode_tokens, step).await?)).await?;
            emit(LabEvent::ContextSweep { sweep });
            Ok(())
        }
        LabJob::Inspect { tensor } => {
            let inspection = with_session(async |s| Ok(lowbit::inspect::inspect(&s.gguf()?, &tensor, 48)?)).await?;
            emit(LabEvent::Inspection { inspection });
            Ok(())
        }
        LabJob::LayerErrors { text, max_tokens, variants } => {
            let errors = with_session(async |s| {
                let on_variant = variant_steps(s.info.clone(), &variants, "running every layer at");
                Ok(s.layer_errors(&text, max_tokens, &variants, on_variant).await?)
            })
            .await?;
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
                let on_plan = variant_steps(s.info.clone(), &plans, "scoring at");
                Ok(s.quality(&text, max_tokens, &plans, on_plan).await?)
            })
            .await?;
            emit(LabEvent::QualityDone { n_tokens, rows });
            Ok(())
        }
    }
}

/// The steps of a measurement that runs FP16 first, then each of `variants` that is not FP16
/// (quality, layer errors): "`doing` <the variant's name>", posted as each begins.
fn variant_steps(info: lowbit::info::ModelInfo, variants: &[Variant], doing: &'static str) -> impl FnMut(Variant) -> bool {
    let total = 1 + variants.iter().filter(|v| **v != Variant::REFERENCE).count();
    let mut done = 0;
    move |v| {
        done += 1;
        step(RunStep { done: done - 1, total, what: format!("{doing} {}", info.name_of(&v)), settle: 1 })
    }
}

/// Post a measurement's step; false once Cancel has arrived (the measurement then ends).
fn step(step: RunStep) -> bool {
    emit(LabEvent::Step { step });
    !crate::cancelled()
}

/// Run a lock-step comparison, posting every position; Stop ends it after the current one.
/// Making the lanes (requantizing) is a step each, and Cancel or Stop there ends it with nothing.
async fn compare(session: &Session, settings: CompareSettings) -> Result<(), Fail> {
    if settings.lanes.iter().any(|v| v.act != lowbit::Activations::F32) {
        session.gpu().choose_int_dot().await?;
    }
    let mut ls = LockStep::start(session, settings)?;
    loop {
        let (done, total) = ls.prepared();
        let Some(&next) = ls.settings.lanes.get(done) else { break };
        if !step(RunStep { done, total, what: format!("preparing the {} lane", session.info.name_of(&next)), settle: 1 }) || stopped() {
            return Err(Fail::cancelled());
        }
        yield_now().await;
        if crate::cancelled() || stopped() {
            return Err(Fail::cancelled());
        }
        ls.prepare_next()?;
    }
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

