//! lowbit engine: weight formats, a GGUF reader, WGSL kernels with their naive CPU
//! references ([`reference`]), the kernel self-test and the kernel benchmark.
//!
//! Everything here compiles natively (wgpu on Vulkan/Metal/DX12) and to wasm32
//! (wgpu on the browser's WebGPU). The UI crate holds no numerics: it calls into this crate.

pub mod bench;
pub mod catalog;
pub mod chat;
pub mod error;
pub mod export;
pub mod ggml;
pub mod gguf;
pub mod gpu;
pub mod hf;
pub mod info;
pub mod inspect;
pub mod layout;
pub mod lockstep;
pub mod method;
pub mod model;
pub mod plan;
pub mod quality;
pub mod reference;
pub mod safetensors;
pub mod sampler;
pub mod selftest;
pub mod session;
pub mod synth;
pub mod tokenizer;
pub mod util;

pub use error::{Error, Result};
pub use layout::{Activations, KvPrecision, Precision, QuantMatrix};
