//! Diagnostics' jobs and events: the kernel self-test and the kernel benchmark run on the
//! worker's GPU device (the page opens none of its own), the worker's GPU resources, and a
//! simulated device loss.

use lowbit::bench::BenchReport;
use lowbit::gpu::Live;
use lowbit::selftest::Row;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum DiagnosticsJob {
    /// Every kernel against its CPU reference ([`lowbit::selftest`]), a row per case; Cancel ends it.
    SelfTest,
    /// The matvec kernels at each precision and shape against a copy kernel ([`lowbit::bench::run`]).
    KernelBench,
    /// Destroy the GPU device, as a driver reset would (simulate a lost GPU): the worker then
    /// recovers as from a real loss, on a new device with the same model.
    LoseDevice,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum DiagnosticsEvent {
    /// The self-test is about to run case `done + 1` of `total`, `kernel`.
    SelfTestRunning { kernel: String, done: usize, total: usize },
    SelfTestRow { row: Row },
    SelfTestDone { passed: usize, total: usize },
    KernelBench { report: BenchReport },
    /// The GPU devices the worker holds and the buffers on them (what a switch or a reload must
    /// leave as it found); about no job.
    Resources { devices: usize, live: Live },
}

impl DiagnosticsEvent {
    pub fn ends_job(&self) -> bool {
        match self {
            DiagnosticsEvent::SelfTestDone { .. } | DiagnosticsEvent::KernelBench { .. } => true,
            DiagnosticsEvent::SelfTestRunning { .. } | DiagnosticsEvent::SelfTestRow { .. } | DiagnosticsEvent::Resources { .. } => false,
        }
    }
}
