//! The model picker's list: small GGUF models people download, with their Hugging Face URLs,
//! licences and shapes, so the page can say what each would take on this GPU at every precision
//! before a byte is downloaded. The shapes are the models' published hyper-parameters; the test
//! suite checks them against the real files it has (Gemma 3 270M, Qwen2.5-Coder-0.5B).

use serde::Serialize;

use crate::gpu::AdapterSummary;
use crate::model::{Config, Features};
use crate::info::{fit_of, weight_sizes, Fit};
use crate::Precision;

/// One recommended model.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Entry {
    /// A short stable id (for the page's test ids).
    pub id: &'static str,
    pub name: &'static str,
    /// What it is good for, in a few words.
    pub note: &'static str,
    /// The GGUF file on Hugging Face (`resolve/main`, which the page may download from), or the
    /// repository of a full-precision checkpoint (see [`Entry::is_checkpoint`]).
    pub url: &'static str,
    /// The download's size in MB, roughly (the download itself reports the exact size).
    pub file_mb: u32,
    /// The format most of its matrices are stored in.
    pub format: &'static str,
    pub license: &'static str,
    pub architecture: &'static str,
    pub layers: usize,
    pub dim: usize,
    pub ffn: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub vocab: usize,
    pub tied: bool,
}

pub const MODELS: [Entry; 11] = [
    // Full precision, as the authors publish it (safetensors, BF16): the lab's FP16 is then a
    // real baseline. `file_mb` is the BF16 size of the shape's weights.
    Entry {
        id: "smollm2-135m-instruct-bf16",
        name: "SmolLM2 135M Instruct (full precision)",
        note: "the default model before quantization",
        url: "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
        file_mb: 269,
        format: "BF16",
        license: "Apache-2.0",
        architecture: "llama",
        layers: 30,
        dim: 576,
        ffn: 1536,
        heads: 9,
        kv_heads: 3,
        head_dim: 64,
        vocab: 49_152,
        tied: true,
    },
    Entry {
        id: "smollm2-360m-instruct-bf16",
        name: "SmolLM2 360M Instruct (full precision)",
        note: "its larger sibling, unquantized",
        url: "https://huggingface.co/HuggingFaceTB/SmolLM2-360M-Instruct",
        file_mb: 724,
        format: "BF16",
        license: "Apache-2.0",
        architecture: "llama",
        layers: 32,
        dim: 960,
        ffn: 2560,
        heads: 15,
        kv_heads: 5,
        head_dim: 64,
        vocab: 49_152,
        tied: true,
    },
    Entry {
        id: "qwen2.5-0.5b-instruct-bf16",
        name: "Qwen2.5 0.5B Instruct (full precision)",
        note: "multilingual chat, unquantized",
        url: "https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct",
        file_mb: 988,
        format: "BF16",
        license: "Apache-2.0",
        architecture: "qwen2",
        layers: 24,
        dim: 896,
        ffn: 4864,
        heads: 14,
        kv_heads: 2,
        head_dim: 64,
        vocab: 151_936,
        tied: true,
    },
    Entry {
        id: "qwen3-0.6b-bf16",
        name: "Qwen3 0.6B (full precision)",
        note: "thinks before it answers, unquantized",
        url: "https://huggingface.co/Qwen/Qwen3-0.6B",
        file_mb: 1192,
        format: "BF16",
        license: "Apache-2.0",
        architecture: "qwen3",
        layers: 28,
        dim: 1024,
        ffn: 3072,
        heads: 16,
        kv_heads: 8,
        head_dim: 128,
        vocab: 151_936,
        tied: true,
    },
    Entry {
        id: "gemma-3-270m-it",
        name: "Gemma 3 270M Instruct",
        note: "Google's smallest Gemma; 262k-token vocabulary",
        url: "https://huggingface.co/ggml-org/gemma-3-270m-it-GGUF/resolve/main/gemma-3-270m-it-Q8_0.gguf",
        file_mb: 292,
        format: "Q8_0",
        license: "Gemma Terms of Use",
        architecture: "gemma3",
        layers: 18,
        dim: 640,
        ffn: 2048,
        heads: 4,
        kv_heads: 1,
        head_dim: 256,
        vocab: 262_144,
        tied: true,
    },
    Entry {
        id: "smollm2-360m-instruct",
        name: "SmolLM2 360M Instruct",
        note: "the default model's larger sibling",
        url: "https://huggingface.co/HuggingFaceTB/SmolLM2-360M-Instruct-GGUF/resolve/main/smollm2-360m-instruct-q8_0.gguf",
        file_mb: 386,
        format: "Q8_0",
        license: "Apache-2.0",
        architecture: "llama",
        layers: 32,
        dim: 960,
        ffn: 2560,
        heads: 15,
        kv_heads: 5,
        head_dim: 64,
        vocab: 49_152,
        tied: true,
    },
    Entry {
        id: "qwen2.5-0.5b-instruct",
        name: "Qwen2.5 0.5B Instruct",
        note: "multilingual chat",
        url: "https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/qwen2.5-0.5b-instruct-q4_k_m.gguf",
        file_mb: 491,
        format: "Q4_K_M",
        license: "Apache-2.0",
        architecture: "qwen2",
        layers: 24,
        dim: 896,
        ffn: 4864,
        heads: 14,
        kv_heads: 2,
        head_dim: 64,
        vocab: 151_936,
        // Qwen's GGUF files carry the output head as its own tensor.
        tied: false,
    },
    Entry {
        id: "qwen2.5-coder-0.5b-instruct",
        name: "Qwen2.5 Coder 0.5B Instruct",
        note: "writes code",
        url: "https://huggingface.co/Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF/resolve/main/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        file_mb: 491,
        format: "Q4_K_M",
        license: "Apache-2.0",
        architecture: "qwen2",
        layers: 24,
        dim: 896,
        ffn: 4864,
        heads: 14,
        kv_heads: 2,
        head_dim: 64,
        vocab: 151_936,
        tied: false,
    },
    Entry {
        id: "qwen3-0.6b",
        name: "Qwen3 0.6B",
        note: "thinks before it answers",
        url: "https://huggingface.co/Qwen/Qwen3-0.6B-GGUF/resolve/main/Qwen3-0.6B-Q8_0.gguf",
        file_mb: 639,
        format: "Q8_0",
        license: "Apache-2.0",
        architecture: "qwen3",
        layers: 28,
        dim: 1024,
        ffn: 3072,
        heads: 16,
        kv_heads: 8,
        head_dim: 128,
        vocab: 151_936,
        tied: true,
    },
    Entry {
        id: "tinyllama-1.1b-chat",
        name: "TinyLlama 1.1B Chat",
        note: "Llama 2's layer at 1.1B",
        url: "https://huggingface.co/TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/resolve/main/tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf",
        file_mb: 669,
        format: "Q4_K_M",
        license: "Apache-2.0",
        architecture: "llama",
        layers: 22,
        dim: 2048,
        ffn: 5632,
        heads: 32,
        kv_heads: 4,
        head_dim: 64,
        vocab: 32_000,
        tied: false,
    },
    Entry {
        id: "llama-3.2-1b-instruct",
        name: "Llama 3.2 1B Instruct",
        note: "Meta's smallest Llama 3",
        url: "https://huggingface.co/bartowski/Llama-3.2-1B-Instruct-GGUF/resolve/main/Llama-3.2-1B-Instruct-Q4_K_M.gguf",
        file_mb: 808,
        format: "Q4_K_M",
        license: "Llama 3.2 Community License",
        architecture: "llama",
        layers: 16,
        dim: 2048,
        ffn: 8192,
        heads: 32,
        kv_heads: 8,
        head_dim: 64,
        vocab: 128_256,
        tied: true,
    },
];

/// What one entry would take at one precision on this GPU.
#[derive(Clone, Debug, Serialize)]
pub struct Need {
    pub precision: Precision,
    /// Bytes of weights on the GPU (norms included).
    pub weight_bytes: u64,
    pub fit: Fit,
}

impl Entry {
    /// The model's configuration as its file would give it (the parts that size its buffers).
    /// Every listed architecture is one lowbit runs (`tests/suite/catalog.rs`).
    pub fn config(&self) -> Config {
        let f = Features::of(self.architecture).unwrap_or(Features::LLAMA);
        Config {
            architecture: self.architecture.into(),
            n_layers: self.layers,
            dim: self.dim,
            ffn_dim: self.ffn,
            n_heads: self.heads,
            n_kv_heads: self.kv_heads,
            head_dim: self.head_dim,
            n_rot: self.head_dim,
            vocab: self.vocab,
            context_length: 2048,
            rope_base: 10000.0,
            rope_neox: f.rope_neox,
            rms_eps: 1e-6,
            tied_output: self.tied,
            qkv_bias: f.qkv_bias,
            qk_norm: f.qk_norm,
            family: f.family,
            activation: f.activation,
            embed_scale: 1.0,
            sliding_window: 0,
            swa_period: 1,
            rope_base_local: 10000.0,
            rope_scale: 1.0,
            rope_factors: false,
        }
    }

    /// Weight bytes and the buffer-limit check at FP16, INT8 and INT4 on `adapter`.
    pub fn needs(&self, adapter: &AdapterSummary) -> Vec<Need> {
        let sizes = weight_sizes(&self.config());
        let fits = fit_of(&sizes.largest_buffer, adapter);
        Precision::COMMON
            .into_iter()
            .filter_map(|p| {
                let weight_bytes = sizes.weight_bytes.iter().find(|t| t.0 == p)?.1;
                let fit = fits.iter().find(|f| f.precision == p)?.clone();
                Some(Need { precision: p, weight_bytes, fit })
            })
            .collect()
    }

    /// A Hugging Face checkpoint (safetensors, converted in the page), not a GGUF file.
    pub fn is_checkpoint(&self) -> bool {
        crate::hf::Repo::parse(self.url).is_some()
    }

    /// Weights in the shape (norms and biases included): the parameter count.
    pub fn parameters(&self) -> u64 {
        let (c, d) = (self.config(), self.dim as u64);
        let (q, kv, f) = ((c.n_heads * c.head_dim) as u64, (c.n_kv_heads * c.head_dim) as u64, c.ffn_dim as u64);
        let mut layer = d * q + 2 * d * kv + q * d + 3 * d * f + 2 * d;
        if c.qkv_bias {
            layer += q + 2 * kv;
        }
        if c.qk_norm {
            layer += 2 * c.head_dim as u64;
        }
        let embed = c.vocab as u64 * d;
        embed * if c.tied_output { 1 } else { 2 } + c.n_layers as u64 * layer + d
    }

    /// The file's name (a checkpoint's: its repository's name), as the page names a download.
    pub fn file(&self) -> &'static str {
        crate::util::url_file_name(self.url)
    }
}
