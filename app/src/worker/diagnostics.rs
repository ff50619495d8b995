//! Diagnostics' jobs in the worker: the kernel self-test and the kernel benchmark on the
//! worker's own device (with or without a model loaded), and a simulated device loss.

use lowbit::{bench, selftest};
use lowbit_app::protocol::{DiagnosticsEvent, DiagnosticsJob, ErrorKind};

use crate::{cancelled, emit, gpu, session_gpu, yield_now, Fail};

pub async fn run(job: DiagnosticsJob) -> Result<(), Fail> {
    match job {
        DiagnosticsJob::SelfTest => self_test().await,
        DiagnosticsJob::KernelBench => {
            let g = gpu().await?;
            let report = bench::run(&g, &bench::BENCH_SHAPES, 10).await?;
            emit(DiagnosticsEvent::KernelBench { report });
            Ok(())
        }
        DiagnosticsJob::LoseDevice => {
            let gpu = session_gpu().ok_or_else(|| Fail(ErrorKind::Internal, "no GPU device to lose".into()))?;
            gpu.destroy();
            Err(Fail(ErrorKind::DeviceLost, "the GPU device was destroyed on request (Diagnostics: simulate a lost GPU)".into()))
        }
    }
}

/// Every case of the standard self-test, a row as each finishes; Cancel ends it between cases.
async fn self_test() -> Result<(), Fail> {
    let g = gpu().await?;
    let cases = selftest::standard_cases(g.info.subgroups);
    let total = cases.len();
    let mut passed = 0;
    for (i, c) in cases.iter().enumerate() {
        emit(DiagnosticsEvent::SelfTestRunning { kernel: c.kernel_name(), done: i, total });
        yield_now().await;
        if cancelled() {
            return Err(Fail::cancelled());
        }
        let row = selftest::run_case(&g, c, 1 + i as u64).await?;
        passed += row.pass as usize;
        emit(DiagnosticsEvent::SelfTestRow { row });
    }
    emit(DiagnosticsEvent::SelfTestDone { passed, total });
    Ok(())
}
