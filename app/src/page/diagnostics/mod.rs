//! Diagnostics: the adapter, the kernel self-test and the kernel benchmark (run by the worker on
//! its GPU device, with or without a model), a simulated device loss, and what the engine holds
//! on the GPU.

pub mod bench;
pub mod device;
pub mod selftest;

use leptos::prelude::*;
use lowbit::bench::BenchReport;
use lowbit::gpu::Live;
use lowbit::selftest::Row;
use lowbit_app::job::JobKind;
use lowbit_app::protocol::{Control, DiagnosticsEvent, DiagnosticsJob, Job};

use crate::model::ModelState;

#[derive(Clone, Copy)]
pub struct DiagState {
    pub model: ModelState,
    /// The worker's GPU devices and buffers, when last counted.
    pub resources: RwSignal<Option<(usize, Live)>>,
    /// The self-test's rows so far, and what it says (running, passed, an error).
    pub selftest: RwSignal<Vec<Row>>,
    pub selftest_status: RwSignal<String>,
    pub bench: RwSignal<Option<BenchReport>>,
    pub bench_status: RwSignal<String>,
}

impl DiagState {
    pub fn new(model: ModelState) -> Self {
        DiagState {
            model,
            resources: RwSignal::new(None),
            selftest: RwSignal::new(vec![]),
            selftest_status: RwSignal::new(String::new()),
            bench: RwSignal::new(None),
            bench_status: RwSignal::new(String::new()),
        }
    }

    /// Ask the worker to count its GPU devices and buffers.
    pub fn count_resources(&self) {
        self.model.engine.control(Control::Resources);
    }

    /// Every kernel against its CPU reference, on the worker's device.
    pub fn run_selftest(&self) {
        if self.model.engine.busy() {
            return;
        }
        self.selftest.set(vec![]);
        self.selftest_status.set("starting…".into());
        self.model.engine.start(JobKind::SelfTest { done: 0, total: 0, kernel: None }, Job::Diagnostics(DiagnosticsJob::SelfTest), &[]);
    }

    pub fn run_bench(&self) {
        if self.model.engine.busy() {
            return;
        }
        self.bench_status.set("measuring… (quantizes and uploads 3 × 3 matrices first)".into());
        self.model.engine.start(JobKind::KernelBench, Job::Diagnostics(DiagnosticsJob::KernelBench), &[]);
    }

    /// Destroy the GPU device: the worker recovers as from a real loss.
    pub fn lose_device(&self) {
        if !self.model.engine.busy() {
            self.model.engine.start(JobKind::LoseDevice, Job::Diagnostics(DiagnosticsJob::LoseDevice), &[]);
        }
    }

    /// A diagnostics job ended without its result (`why`: the error, or that it was cancelled).
    pub fn ended(&self, kind: Option<&JobKind>, why: &str) {
        match kind {
            Some(JobKind::SelfTest { .. }) => self.selftest_status.set(why.to_string()),
            Some(JobKind::KernelBench) => self.bench_status.set(why.to_string()),
            _ => {}
        }
    }

    pub fn apply(&self, e: DiagnosticsEvent) {
        match e {
            DiagnosticsEvent::SelfTestRunning { kernel, done, total } => {
                self.selftest_status.set(format!("running {kernel} ({}/{total})", done + 1));
                self.model.engine.step(lowbit::session::RunStep { done, total, what: format!("running {kernel}"), settle: 1 });
                self.model.engine.update_job(|k| *k = JobKind::SelfTest { done, total, kernel: Some(kernel) });
            }
            DiagnosticsEvent::SelfTestRow { row } => self.selftest.update(|rows| rows.push(row)),
            DiagnosticsEvent::SelfTestDone { passed, total } => self.selftest_status.set(format!("{passed}/{total} passed")),
            DiagnosticsEvent::KernelBench { report } => {
                self.bench_status.set(format!("timer: {}, {} reps", report.timer, report.reps));
                self.bench.set(Some(report));
            }
            DiagnosticsEvent::Resources { devices, live } => self.resources.set(Some((devices, live))),
        }
    }
}

/// The diagnostics section, folded.
#[component]
pub fn Diagnostics() -> impl IntoView {
    view! {
        <details class="diagnostics">
            <summary>"Diagnostics: your GPU, kernel self-test and benchmark"</summary>
            <device::AdapterPanel/>
            <selftest::SelfTestPanel/>
            <bench::KernelBenchPanel/>
            <device::DeviceLoss/>
            <device::GpuHoldings/>
        </details>
    }
}
