//! lowbit engine: weight formats, a GGUF reader, WGSL kernels with their naive CPU
//! references, the kernel self-test and the kernel benchmark.
//!
//! Everything here compiles natively (wgpu on Vulkan/Metal/DX12) and to wasm32
//! (wgpu on the browser's WebGPU). The UI crate holds no numerics: it calls into this crate.

pub mod bench;
pub mod blocks;
pub mod catalog;
pub mod chat;
pub mod cpu;
pub mod error;
pub mod gguf;
pub mod gpu;
pub mod inspect;
pub mod lockstep;
pub mod model;
pub mod plan;
pub mod quality;
pub mod quant;
pub mod sampler;
pub mod selftest;
pub mod session;
pub mod synth;
pub mod tokenizer;
pub mod util;

pub use error::{Error, Result};
pub use quant::{KvPrecision, Precision, QuantMatrix};
