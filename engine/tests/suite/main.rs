//! The engine's integration tests, one binary: each linked test binary repeats every dependency,
//! and linking them took minutes of a cold test run; in one binary, libtest also runs tests of
//! different files side by side. The tests that count what the whole process holds (devices,
//! buffers, allocations, an out-of-memory child) stay binaries of their own: `hygiene.rs`,
//! `alloc.rs`, `oom.rs`.

#[path = "../common/mod.rs"]
mod common;

mod catalog;
mod chat_sampler_cli;
mod convert;
mod export;
mod gemma3;
mod ggml;
mod gguf;
mod hf;
mod hostile;
mod inspect;
mod kernels;
mod layout;
mod lockstep;
mod methods;
mod model_cpu;
mod model_gpu;
mod quality;
mod qwen2;
mod session;
mod shaders;
mod tokenizer;
mod vocab;
