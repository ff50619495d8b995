//! The library's one error type. File input never panics: every bad count, length,
//! offset or type in a file becomes one of these.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("not a GGUF file: it begins with {} where a GGUF file begins with \"GGUF\"", magic_text(*.0))]
    BadMagic(u32),
    #[error("unsupported GGUF version {0} (lowbit reads v2 and v3)")]
    UnsupportedVersion(u32),
    #[error("GGUF file truncated: needed {needed} bytes at offset {offset}, file has {len}")]
    Truncated { offset: u64, needed: u64, len: u64 },
    #[error("GGUF: {0}")]
    Malformed(String),
    #[error("GGUF: metadata key {0} appears twice")]
    DuplicateKey(String),
    #[error("GGUF: two tensors are named {0}")]
    DuplicateTensor(String),
    #[error("GGUF: general.alignment is {0}, not a power of two")]
    BadAlignment(String),
    #[error("GGUF: tensor {tensor}'s data offset {offset} is not a multiple of the alignment {alignment}")]
    Misaligned { tensor: String, offset: u64, alignment: u64 },
    #[error("GGUF: tensors {0} and {1} share bytes")]
    OverlappingTensors(String, String),
    #[error("GGUF: tensor {tensor} has dimensions {dims:?} (zero, or more elements than can be counted)")]
    BadDimensions { tensor: String, dims: Vec<u64> },
    #[error("GGUF: the file has no {0}")]
    MissingKey(String),
    #[error("GGUF: {key} is not {expected}")]
    WrongType { key: String, expected: &'static str },
    #[error("tokenizer: {key} has {len} entries for a vocabulary of {vocab} tokens")]
    TokenizerArrays { key: String, len: usize, vocab: usize },
    #[error("tokenizer: {key} = {id} is not a token of the {vocab}-token vocabulary")]
    TokenId { key: String, id: String, vocab: usize },
    #[error("architecture '{0}' is not supported yet (llama, qwen2, qwen3 and gemma3 are)")]
    UnsupportedArchitecture(String),
    #[error("model: {0}")]
    BadConfig(String),
    #[error("model: tensor {tensor} has dimensions {found:?}, the metadata implies {expected:?}")]
    TensorShape { tensor: String, expected: Vec<usize>, found: Vec<u64> },
    #[error("{0} are not finite numbers (NaN or infinity): the model's weights hold such values")]
    NonFinite(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error("unknown GGUF metadata value type {0}")]
    UnknownValueType(u32),
    #[error("unknown ggml tensor type {0}")]
    UnknownTensorType(u32),
    #[error("tensor type {0} cannot be dequantized by lowbit yet")]
    UnsupportedTensorType(String),
    #[error("tensor not found: {0}")]
    TensorNotFound(String),
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A safetensors checkpoint that is not what its header says (see `safetensors`).
    #[error("safetensors: {0}")]
    Safetensors(String),
    /// A Hugging Face checkpoint lowbit cannot read: a file missing or malformed, a tokenizer or
    /// tensor it does not know (see `hf`).
    #[error("Hugging Face checkpoint: {0}")]
    Hf(String),
    #[error("unknown precision '{0}' (expected fp16, int8 or int4)")]
    UnknownPrecision(String),
    #[error("no GPU adapter found (WebGPU/Vulkan/Metal/DX12)")]
    NoAdapter,
    #[error("GPU device request failed: {0}")]
    RequestDevice(String),
    #[error("GPU: {0}")]
    Gpu(String),
    /// An allocation or dispatch the device could not find memory for.
    #[error("out of GPU memory: {0}")]
    OutOfMemory(String),
    /// The device is gone (driver reset, GPU removed, the browser reclaimed it): nothing on it
    /// can be used again; a new device must be requested and the weights uploaded again.
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),
    #[error("{what} needs {needed} bytes but the adapter allows {limit}")]
    TooLarge { what: String, needed: u64, limit: u64 },
    #[error("the conversation needs {needed} tokens but the context holds {size}: start a new chat")]
    ContextFull { needed: usize, size: usize },
    #[error("I/O: {0}")]
    Io(String),
    #[error("usage: {0}")]
    Usage(String),
    /// The caller asked a long run to stop (the page's Cancel).
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// The file is at fault: it is not a GGUF lowbit can read, or not a model it can run.
    pub fn is_bad_file(&self) -> bool {
        matches!(
            self,
            Error::BadMagic(_)
                | Error::UnsupportedVersion(_)
                | Error::Truncated { .. }
                | Error::Malformed(_)
                | Error::UnknownValueType(_)
                | Error::UnknownTensorType(_)
                | Error::UnsupportedTensorType(_)
                | Error::TensorNotFound(_)
                | Error::Shape(_)
                | Error::DuplicateKey(_)
                | Error::DuplicateTensor(_)
                | Error::BadAlignment(_)
                | Error::Misaligned { .. }
                | Error::OverlappingTensors(..)
                | Error::BadDimensions { .. }
                | Error::MissingKey(_)
                | Error::WrongType { .. }
                | Error::TokenizerArrays { .. }
                | Error::TokenId { .. }
                | Error::UnsupportedArchitecture(_)
                | Error::BadConfig(_)
                | Error::TensorShape { .. }
                | Error::NonFinite(_)
                | Error::Template(_)
                | Error::Safetensors(_)
                | Error::Hf(_)
        )
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A file's first four bytes as a reader sees them: `"<!DO"` when printable, else hex.
fn magic_text(magic: u32) -> String {
    let b = magic.to_le_bytes();
    if b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        format!("\"{}\"", String::from_utf8_lossy(&b))
    } else {
        format!("the bytes {:02x} {:02x} {:02x} {:02x}", b[0], b[1], b[2], b[3])
    }
}
