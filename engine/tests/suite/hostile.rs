//! Hostile files: the bad-input matrix at the command line (a named error on stderr, exit 1,
//! never a panic, a signal, a hang or unbounded memory), and a seeded, structure-aware mutation
//! test of the reader, the loader, the tokenizer and the chat template in process.
//!
//! Every file is built here from a small valid model (random weights at the tiny shape, a
//! byte-fallback SentencePiece vocabulary, a ChatML template), so nothing needs a download.

use crate::common;

use std::path::PathBuf;
use std::process::Command;

use half::f16;
use lowbit::chat::{ChatTemplate, Message};
use lowbit::gguf::{self, Array, GgmlType, Gguf, TensorOut, Value};
use lowbit::hf::{self, Files};
use lowbit::safetensors::Dtype;
use lowbit::model::Config;
use lowbit::synth::{self, Shape};
use lowbit::tokenizer::Tokenizer;
use lowbit::util::Rng;

/// A model as metadata and tensors, to edit and write back.
#[derive(Clone)]
struct Model {
    meta: Vec<(String, Value)>,
    tensors: Vec<(String, Vec<u64>, GgmlType, Vec<u8>)>,
    alignment: u64,
}

/// Tokens: `<unk>`, `<s>`, `</s>`, `<|im_start|>`, `<|im_end|>`, then the 256 byte tokens.
const VOCAB: usize = 5 + 256;

fn base() -> Model {
    let bytes = synth::bare(&Shape::TINY, VOCAB, 3).unwrap();
    let g = Gguf::parse(&bytes).unwrap();
    let mut meta: Vec<(String, Value)> = g.metadata.iter().filter(|(k, _)| !k.starts_with("tokenizer.")).map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"].map(String::from).to_vec();
    tokens.extend((0..256).map(|b| format!("<0x{b:02X}>")));
    let mut types = vec![2, 3, 3, 3, 3];
    types.extend([6; 256]);
    meta.extend([
        ("tokenizer.ggml.model".to_string(), Value::String("llama".into())),
        ("tokenizer.ggml.tokens".into(), Value::Array(Array::String(tokens))),
        ("tokenizer.ggml.scores".into(), Value::Array(Array::F32(vec![0.0; VOCAB]))),
        ("tokenizer.ggml.token_type".into(), Value::Array(Array::I32(types))),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(4)),
        ("tokenizer.chat_template".into(), Value::String(lowbit::chat::CHATML.into())),
    ]);
    let tensors = g.tensors.iter().map(|t| (t.name.clone(), t.dims.clone(), t.ggml_type, g.tensor_data(t).to_vec())).collect();
    Model { meta, tensors, alignment: g.alignment }
}

impl Model {
    fn bytes(&self) -> Vec<u8> {
        let t: Vec<TensorOut> =
            self.tensors.iter().map(|(name, dims, ty, data)| TensorOut { name: name.clone(), dims: dims.clone(), ggml_type: *ty, data }).collect();
        gguf::write(&self.meta, &t, self.alignment)
    }
    fn set(mut self, key: &str, v: Value) -> Self {
        self.meta.retain(|(k, _)| k != key);
        self.meta.push((key.into(), v));
        self
    }
    fn remove(mut self, key: &str) -> Self {
        self.meta.retain(|(k, _)| k != key);
        self
    }
    fn tensor(&mut self, name: &str) -> &mut (String, Vec<u64>, GgmlType, Vec<u8>) {
        self.tensors.iter_mut().find(|t| t.0 == name).unwrap()
    }
}

/// Where tensor `name`'s info (dims, type, offset) sits in `bytes`: the byte after its name.
fn info_at(bytes: &[u8], name: &str) -> usize {
    let mut key = (name.len() as u64).to_le_bytes().to_vec();
    key.extend(name.as_bytes());
    bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len()
}

/// The offset field of tensor `name` (relative to the data section).
fn offset_field(bytes: &[u8], name: &str) -> usize {
    let at = info_at(bytes, name);
    let n_dims = u32_at(bytes, at) as usize;
    at + 4 + 8 * n_dims + 4
}

fn patch_u64(mut bytes: Vec<u8>, at: usize, v: u64) -> Vec<u8> {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
    bytes
}

fn write_tmp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lowbit-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The page meets the same matrix (e2e/specs/hostile.spec.mjs): each case as `{case}.gguf` with
/// the error text it must show in `{case}.expect`, under target/hostile-files/.
fn for_the_page(case: &str, bytes: &[u8], expect: &str) {
    page_file("", &format!("{case}.gguf"), bytes);
    page_file("", &format!("{case}.expect"), expect.as_bytes());
}

/// Files the page loads but must then say something about (a template that fails, NaN
/// weights), under target/hostile-files/loads/.
fn loads_in_the_page(name: &str, bytes: &[u8]) {
    page_file("loads", name, bytes);
}

fn page_file(sub: &str, name: &str, bytes: &[u8]) {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/hostile-files")).join(sub);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// Run `lowbit` under a 2 GiB address-space limit and a 60 s timeout: (exit code, stderr).
/// A signal (an abort, or the limit's kill) or the timeout fails the calling test.
fn lowbit(args: &[&str]) -> (i32, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 2097152; exec timeout 60 \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_lowbit"))
        .args(args)
        .output()
        .expect("run lowbit");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let code = out.status.code().unwrap_or_else(|| panic!("lowbit {args:?} was killed by a signal: {err}"));
    assert_ne!(code, 124, "lowbit {args:?} did not finish within 60 s");
    (code, err)
}

/// `info`, then `generate` on the CPU (the whole loader, the tokenizer and the template): each
/// must fail with a message containing `expect` (or one of its `|`-separated alternatives),
/// exit 1, no panic (`info` may instead describe the file as unsupported).
fn rejects(case: &str, bytes: &[u8], expect: &str) {
    let p = write_tmp(&format!("{case}.gguf"), bytes);
    for_the_page(case, bytes, expect);
    let path = p.to_str().unwrap();
    for args in [vec!["info", path], vec!["generate", path, "--prompt", "hi", "--chat", "--precision", "source", "--max-tokens", "2"]] {
        let (code, err) = lowbit(&args);
        assert!(!err.contains("panicked"), "{case}: lowbit {} panicked: {err}", args[0]);
        if args[0] == "info" && code == 0 {
            continue; // info describes files it cannot run (supported: false)
        }
        assert_eq!(code, 1, "{case}: lowbit {} exited {code}: {err}", args[0]);
        assert!(expect.split('|').any(|e| err.contains(e)), "{case}: lowbit {}: expected '{expect}' in: {err}", args[0]);
    }
}

#[test]
fn the_base_file_runs() {
    let p = write_tmp("base.gguf", &base().bytes());
    let (code, err) = lowbit(&["generate", p.to_str().unwrap(), "--prompt", "hi", "--chat", "--precision", "source", "--max-tokens", "2"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn truncated_files_at_every_structural_boundary() {
    let bytes = base().bytes();
    let g = Gguf::parse(&bytes).unwrap();
    let first = info_at(&bytes, &g.tensors[0].name);
    let last = offset_field(&bytes, &g.tensors.last().unwrap().name) + 8;
    let end = g.tensors.iter().map(|t| t.offset + t.n_bytes).max().unwrap() as usize;
    // Empty; in the magic, the version, the counts; the first key's length and bytes; a value;
    // the tensor infos; the data section's start and a tensor's middle; one byte short.
    for (what, n) in [
        ("empty", 0),
        ("magic", 2),
        ("version", 6),
        ("tensor count", 12),
        ("metadata count", 20),
        ("first key length", 28),
        ("first key", 30),
        ("tensor name", first - 2),
        ("tensor info", first + 6),
        ("last offset", last - 3),
        ("data start", g.data_offset as usize),
        ("tensor data", (g.tensors[3].offset + g.tensors[3].n_bytes / 2) as usize),
        ("last byte", end - 1),
    ] {
        // A count the remaining bytes cannot hold is caught before the bytes run out.
        rejects(&format!("truncated-{}", what.replace(' ', "-")), &bytes[..n], "truncated|exceeds the file size");
    }
}

#[test]
fn header_magic_versions_and_counts() {
    let bytes = base().bytes();
    let mut b = bytes.clone();
    b[..4].copy_from_slice(b"GGML");
    rejects("magic", &b, r#"not a GGUF file: it begins with "GGML" where a GGUF file begins with "GGUF""#);
    b[..4].copy_from_slice(&[0x7f, b'E', b'L', b'F']);
    rejects("magic-binary", &b, "it begins with the bytes 7f 45 4c 46");
    for v in [1u32, 4] {
        let mut b = bytes.clone();
        b[4..8].copy_from_slice(&v.to_le_bytes());
        rejects(&format!("version-{v}"), &b, &format!("unsupported GGUF version {v}"));
    }
    rejects("tensor-count", &patch_u64(bytes.clone(), 8, 1 << 40), "exceeds the file size");
    rejects("metadata-count", &patch_u64(bytes.clone(), 16, u64::MAX), "exceeds the file size");
    // The first key's length past the end of the file.
    rejects("key-length", &patch_u64(bytes.clone(), 24, 1 << 50), "truncated");
}

#[test]
fn metadata_past_eof_huge_nested_or_duplicated() {
    // A string value whose length runs past the file.
    let m = base().set("general.name", Value::String("abcdef".into()));
    let bytes = m.bytes();
    let at = bytes.windows(6).position(|w| w == b"abcdef").unwrap() - 8;
    rejects("string-past-eof", &patch_u64(bytes, at, 1 << 40), "truncated");
    // An array count past the file.
    let m = base().set("general.tags", Value::Array(Array::U32(vec![7, 8, 9])));
    let bytes = m.bytes();
    let tag = b"general.tags";
    let at = bytes.windows(tag.len()).position(|w| w == tag).unwrap() + tag.len() + 4 + 4;
    rejects("array-past-eof", &patch_u64(bytes, at, 1 << 40), "exceeds the file size");
    // 64 MiB of u8 metadata: small on disk, and small in memory too (under the 2 GiB limit, which
    // one enum per element would pass).
    let m = base().set("general.blob", Value::Array(Array::U8(vec![7; 64 << 20])));
    let p = write_tmp("huge-u8-array.gguf", &m.bytes());
    let (code, err) = lowbit(&["generate", p.to_str().unwrap(), "--prompt", "hi", "--precision", "source", "--max-tokens", "2"]);
    assert_eq!(code, 0, "a file with a 64 MiB u8 array: {err}");
    // Arrays nested three deep.
    let deep = Array::Array(vec![Array::Array(vec![Array::I32(vec![1])])]);
    rejects("nested", &base().set("general.deep", Value::Array(deep)).bytes(), "nested deeper");
    // Duplicate keys and tensor names.
    let mut m = base();
    m.meta.push(("general.architecture".into(), Value::String("llama".into())));
    rejects("duplicate-key", &m.bytes(), "appears twice");
    let mut m = base();
    let t = m.tensors[0].clone();
    m.tensors.push(t);
    rejects("duplicate-tensor", &m.bytes(), "two tensors are named");
}

#[test]
fn alignment_offsets_and_dimensions() {
    for (what, v) in [("zero", Value::U32(0)), ("three", Value::U32(3)), ("string", Value::String("32".into()))] {
        rejects(&format!("alignment-{what}"), &base().set("general.alignment", v).bytes(), ", not a power of two");
    }
    // An unusual but valid alignment (1) and a large one (4096) load.
    for a in [1u64, 4096] {
        let mut m = base().set("general.alignment", Value::U32(a as u32));
        m.alignment = a;
        let p = write_tmp(&format!("alignment-{a}.gguf"), &m.bytes());
        let (code, err) = lowbit(&["generate", p.to_str().unwrap(), "--prompt", "hi", "--precision", "source", "--max-tokens", "2"]);
        assert_eq!(code, 0, "alignment {a}: {err}");
    }
    let bytes = base().bytes();
    let g = Gguf::parse(&bytes).unwrap();
    let (a, b) = (&g.tensors[1], &g.tensors[2]);
    let rel = |t: &gguf::TensorInfo| t.offset - g.data_offset;
    rejects("misaligned", &patch_u64(bytes.clone(), offset_field(&bytes, &b.name), rel(b) + 4), "not a multiple of the alignment");
    rejects("overlapping", &patch_u64(bytes.clone(), offset_field(&bytes, &b.name), rel(a)), "share bytes");
    rejects("offset-past-eof", &patch_u64(bytes.clone(), offset_field(&bytes, &b.name), 1 << 40), "truncated");
    // A zero dimension, and dimensions whose product overflows.
    let at = info_at(&bytes, "blk.0.attn_q.weight") + 4;
    rejects("zero-dimension", &patch_u64(bytes.clone(), at, 0), "dimensions");
    let mut b2 = patch_u64(bytes.clone(), at, 1 << 40);
    b2 = patch_u64(b2, at + 8, 1 << 40);
    rejects("overflowing-dimensions", &b2, "dimensions");
}

#[test]
fn tensor_types_architecture_and_shapes() {
    let bytes = base().bytes();
    let g = Gguf::parse(&bytes).unwrap();
    let name = &g.tensors[0].name;
    let type_at = offset_field(&bytes, name) - 4;
    let mut b = bytes.clone();
    b[type_at..type_at + 4].copy_from_slice(&99u32.to_le_bytes());
    rejects("unknown-dtype", &b, "unknown ggml tensor type 99");
    // A type lowbit knows but cannot dequantize: layer 0's Q as Q8_1 bytes.
    let mut m = base();
    let t = m.tensor("blk.0.attn_q.weight");
    let n = (t.1.iter().product::<u64>() / 32) as usize;
    t.2 = GgmlType::Q8_1;
    t.3 = vec![0; n * 36];
    rejects("unsupported-dtype", &m.bytes(), "cannot be dequantized");
    rejects("unknown-architecture", &base().set("general.architecture", Value::String("mamba9".into())).bytes(), "architecture 'mamba9'");
    rejects("yarn-rope", &base().set("llama.rope.scaling.type", Value::String("yarn".into())).bytes(), "RoPE scaling 'yarn' is not supported yet");
    // Llama 3's scaling names its divisors, which must then be in the file.
    rejects("llama3-rope-without-factors", &base().set("llama.rope.scaling.type", Value::String("llama3".into())).bytes(), "RoPE scaling 'llama3'");
    rejects("negative-rope-scaling", &base().set("llama.rope.scaling.type", Value::String("linear".into())).set("llama.rope.scaling.factor", Value::F32(-2.0)).bytes(), "rope scale -0.5");
    let mut m = base();
    m.tensors.retain(|t| t.0 != "blk.1.ffn_down.weight");
    rejects("missing-tensor", &m.bytes(), "tensor not found: blk.1.ffn_down.weight");
    // The config disagrees with the tensors: an absurd width, an absurd layer count, a shape.
    rejects("absurd-embedding-length", &base().set("llama.embedding_length", Value::U64(1 << 40)).bytes(), "llama.embedding_length = 1099511627776 is not a plausible size");
    rejects("large-embedding-length", &base().set("llama.embedding_length", Value::U64(1 << 20)).bytes(), "metadata implies");
    rejects("absurd-block-count", &base().set("llama.block_count", Value::U64(1 << 40)).bytes(), "llama.block_count = 1099511627776 is not a plausible size");
    rejects("many-blocks", &base().set("llama.block_count", Value::U64(1 << 20)).bytes(), "tensor not found: blk.2.attn_norm.weight");
    rejects("zero-block-count", &base().set("llama.block_count", Value::U32(0)).bytes(), "0 layers");
    rejects("zero-heads", &base().set("llama.attention.head_count", Value::U32(0)).bytes(), "inconsistent heads");
    let mut m = base();
    m.tensor("blk.0.ffn_up.weight").1 = vec![96, 112, 2];
    rejects("inconsistent-shape", &m.bytes(), "blk.0.ffn_up.weight has dimensions");
}

#[test]
fn tokenizer_arrays_and_special_tokens() {
    rejects("scores-short", &base().set("tokenizer.ggml.scores", Value::Array(Array::F32(vec![0.0; 10]))).bytes(), "tokenizer.ggml.scores has 10 entries");
    rejects("types-long", &base().set("tokenizer.ggml.token_type", Value::Array(Array::I32(vec![1; VOCAB + 1]))).bytes(), "token_type has");
    rejects("scores-strings", &base().set("tokenizer.ggml.scores", Value::Array(Array::String(vec!["x".into()]))).bytes(), "is not an array of numbers");
    rejects("tokens-missing", &base().remove("tokenizer.ggml.tokens").bytes(), "tokenizer.ggml.tokens");
    rejects("tokens-empty", &base().set("tokenizer.ggml.tokens", Value::Array(Array::String(vec![]))).bytes(), "tokenizer.ggml.tokens");
    // The embedding's rows disagree with the vocabulary.
    let mut tokens = match &base().meta.iter().find(|(k, _)| k == "tokenizer.ggml.tokens").unwrap().1 {
        Value::Array(Array::String(t)) => t.clone(),
        _ => unreachable!(),
    };
    tokens.push("extra".into());
    let m = base()
        .set("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)))
        .set("tokenizer.ggml.scores", Value::Array(Array::F32(vec![0.0; VOCAB + 1])))
        .remove("tokenizer.ggml.token_type");
    rejects("embedding-rows", &m.bytes(), "token_embd.weight has dimensions");
    for key in ["tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id"] {
        rejects(key, &base().set(key, Value::U32(VOCAB as u32)).bytes(), "is not a token of the 261-token vocabulary");
    }
    rejects("negative-token-id", &base().set("tokenizer.ggml.eos_token_id", Value::I32(-1)).bytes(), "is not a token");
}

#[test]
fn templates_that_loop_recurse_or_explode_fall_back_to_chatml() {
    for (what, t) in [
        ("loop", "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"),
        ("recursion", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
        ("explosion", "{% for i in range(1000) %}{{ 'x' * 99999999 }}{% endfor %}"),
        ("syntax", "{% for %}"),
        ("raise", "{{ raise_exception('no system role') }}"),
    ] {
        let bytes = base().set("tokenizer.chat_template", Value::String(t.into())).bytes();
        if what == "loop" {
            loads_in_the_page("template-loop.gguf", &bytes);
        }
        let p = write_tmp(&format!("template-{what}.gguf"), &bytes);
        let (code, err) = lowbit(&["generate", p.to_str().unwrap(), "--prompt", "hi", "--chat", "--precision", "source", "--max-tokens", "2"]);
        assert_eq!(code, 0, "{what}: {err}");
        assert!(err.contains("chat template failed") && err.contains("using ChatML"), "{what}: {err}");
    }
}

#[test]
fn nan_weights_are_named_not_printed_as_a_perplexity() {
    let mut m = base();
    let t = m.tensor("blk.0.attn_output.weight");
    // The first block's scale d (an f16 first in Q4_1 and Q8_0 blocks) is NaN.
    assert!(matches!(t.2, GgmlType::Q4_1 | GgmlType::Q8_0), "{:?}", t.2);
    t.3[..2].copy_from_slice(&f16::NAN.to_bits().to_le_bytes());
    loads_in_the_page("nan.gguf", &m.bytes());
    let p = write_tmp("nan.gguf", &m.bytes());
    let text = write_tmp("nan.txt", b"Some text to score, long enough for a few positions.");
    let (code, err) = lowbit(&["perplexity", p.to_str().unwrap(), "--file", text.to_str().unwrap(), "--precision", "source", "--backend", "cpu"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not finite numbers"), "{err}");
    // A chat does not turn NaN logits into arbitrary tokens either.
    let (code, err) = lowbit(&["generate", p.to_str().unwrap(), "--prompt", "hi", "--chat", "--precision", "source", "--max-tokens", "2"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the logits of the reply's first token are not finite numbers"), "{err}");
}

fn u32_at(b: &[u8], p: usize) -> u32 {
    u32::from_le_bytes(b[p..p + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], p: usize) -> u64 {
    u64::from_le_bytes(b[p..p + 8].try_into().unwrap())
}

/// The positions and widths of every count, length, type, dimension and offset field of a valid
/// file (walked the way the reader walks it), then of every scalar metadata value (the model's
/// sizes, token ids, the alignment): the first kind breaks the structure, the second the meaning.
fn fields(b: &[u8]) -> (Vec<(usize, usize)>, Vec<(usize, usize)>) {
    let mut out = vec![(4, 4), (8, 8), (16, 8)];
    let mut scalars = vec![];
    let mut p = 24;
    fn value(b: &[u8], p: &mut usize, t: u32, out: &mut Vec<(usize, usize)>) {
        match t {
            0 | 1 | 7 => *p += 1,
            2 | 3 => *p += 2,
            4..=6 => *p += 4,
            10..=12 => *p += 8,
            8 => {
                out.push((*p, 8));
                *p += 8 + u64_at(b, *p) as usize;
            }
            _ => {
                let et = u32_at(b, *p);
                out.push((*p, 4));
                out.push((*p + 4, 8));
                let n = u64_at(b, *p + 4);
                *p += 12;
                for _ in 0..n {
                    value(b, p, et, out);
                }
            }
        }
    }
    for _ in 0..u64_at(b, 16) {
        out.push((p, 8));
        p += 8 + u64_at(b, p) as usize;
        let t = u32_at(b, p);
        out.push((p, 4));
        p += 4;
        match t {
            4..=6 => scalars.push((p, 4)),
            10..=12 => scalars.push((p, 8)),
            _ => {}
        }
        value(b, &mut p, t, &mut out);
    }
    for _ in 0..u64_at(b, 8) {
        out.push((p, 8));
        p += 8 + u64_at(b, p) as usize;
        let n = u32_at(b, p) as usize;
        out.push((p, 4));
        p += 4;
        for _ in 0..n {
            out.push((p, 8));
            p += 8;
        }
        out.push((p, 4));
        out.push((p + 4, 8));
        p += 12;
    }
    (out, scalars)
}

/// Everything a loaded file goes through before the GPU: must return, never panic, and every
/// error must be one the page shows as the file's fault. True when the mutated file still parsed
/// (so the mutations reach past the reader).
fn load_everything(bytes: &[u8]) -> bool {
    let file_fault = |e: lowbit::Error| assert!(e.is_bad_file(), "not classed as a bad file: {e}");
    let g = match Gguf::parse(bytes) {
        Ok(g) => g,
        Err(e) => {
            file_fault(e);
            return false;
        }
    };
    if let Err(e) = Config::from_gguf(&g) {
        file_fault(e);
    }
    match Tokenizer::from_gguf(&g) {
        Ok(tok) => {
            let ids = tok.encode_with_bos("Hello, <|im_start|>world 123 ü", true);
            let _ = tok.decode(&ids);
            let t = ChatTemplate::from_gguf(&g, &tok);
            if let Err(e) = t.render(&[Message::new("user", "hi")], true) {
                file_fault(e);
            }
        }
        Err(e) => file_fault(e),
    }
    for t in &g.tensors {
        let (rows, _) = t.matrix_shape();
        if let Err(e) = g.dequantize_rows(t, 0, rows.min(2)) {
            file_fault(e);
        }
    }
    let _ = lowbit::info::ModelInfo::from_gguf(&g, bytes.len() as u64);
    true
}

#[test]
fn seeded_structure_aware_mutations_never_panic() {
    let bytes = base().bytes();
    let (structure, scalars) = fields(&bytes);
    let g = Gguf::parse(&bytes).unwrap();
    assert!(structure.len() > 40 && scalars.len() > 8, "walked {} + {} fields", structure.len(), scalars.len());
    let mut rng = Rng::new(2026);
    let pick = |rng: &mut Rng, n: usize| (((rng.next_u32() as u64) << 32 | rng.next_u32() as u64) % n as u64) as usize;
    let t0 = std::time::Instant::now();
    let (mut runs, mut parsed) = (0, 0);
    while runs < 20000 && t0.elapsed().as_secs() < 60 {
        let mut b = bytes.clone();
        for _ in 0..1 + pick(&mut rng, 3) {
            let fields = if pick(&mut rng, 2) == 0 { &structure } else { &scalars };
            let (at, width) = fields[pick(&mut rng, fields.len())];
            let old = if width == 8 { u64_at(&b, at) } else { u32_at(&b, at) as u64 };
            let v = match pick(&mut rng, 9) {
                0 => 0,
                1 => 1,
                2 => old.wrapping_add(1),
                3 => old.wrapping_sub(1),
                4 => old.wrapping_mul(2),
                5 => u64::MAX,
                6 => 1 << (pick(&mut rng, 63)),
                7 => g.alignment * pick(&mut rng, 64) as u64,
                _ => ((rng.next_u32() as u64) << 32 | rng.next_u32() as u64) % 1024,
            };
            match width {
                8 => b[at..at + 8].copy_from_slice(&v.to_le_bytes()),
                _ => b[at..at + 4].copy_from_slice(&(v as u32).to_le_bytes()),
            }
        }
        // Sometimes cut the file too.
        if pick(&mut rng, 8) == 0 {
            b.truncate(pick(&mut rng, b.len()));
        }
        match std::panic::catch_unwind(|| load_everything(&b)) {
            Ok(ok) => parsed += ok as usize,
            Err(_) => {
                let p = write_tmp(&format!("mutation-{runs}.gguf"), &b);
                panic!("mutation {runs} panicked; the file is {}", p.display());
            }
        }
        runs += 1;
    }
    eprintln!("{runs} mutations in {:.1} s, {parsed} still parsed", t0.elapsed().as_secs_f64());
    assert!(runs >= 2000, "only {runs} mutations ran");
    assert!(parsed * 5 >= runs, "only {parsed} of {runs} mutated files parsed: the mutations stop at the reader");
}

/// A Hugging Face checkpoint of the tiny model (BF16 in two shards) with one thing wrong.
type Edit = Box<dyn Fn(&mut Files)>;

fn edit_json(file: &'static str, f: impl Fn(&mut serde_json::Value) + 'static) -> Edit {
    Box::new(move |c: &mut Files| {
        let mut v: serde_json::Value = serde_json::from_slice(&c[file]).unwrap();
        f(&mut v);
        c.insert(file.into(), serde_json::to_vec(&v).unwrap());
    })
}

fn header_len(b: &[u8]) -> usize {
    u64::from_le_bytes(b[..8].try_into().unwrap()) as usize
}

/// A safetensors header replaced in place, padded with spaces to its old length.
fn rewrite_header(b: &mut [u8], header: &serde_json::Map<String, serde_json::Value>) {
    let h = header_len(b);
    let text = serde_json::to_string(header).unwrap();
    assert!(text.len() <= h);
    b[8..8 + h].copy_from_slice(format!("{text:<h$}").as_bytes());
}

/// Rewrite the shard that holds tensor `name`, with `f` applied to that tensor's (shape, values).
fn edit_tensor(name: &'static str, f: impl Fn(&mut Vec<usize>, &mut Vec<f32>) + 'static) -> Edit {
    Box::new(move |c: &mut Files| {
        let shard = c
            .iter()
            .find(|(k, b)| k.ends_with(".safetensors") && lowbit::safetensors::SafeTensors::parse(b).unwrap().get(name).is_ok())
            .map(|(k, _)| k.clone())
            .unwrap();
        let st = lowbit::safetensors::SafeTensors::parse(&c[&shard]).unwrap();
        let mut list: Vec<(String, Dtype, Vec<usize>, Vec<f32>)> = st.tensors.iter().map(|t| (t.name.clone(), t.dtype, t.shape.clone(), t.to_f32())).collect();
        let t = list.iter_mut().find(|t| t.0 == name).unwrap();
        f(&mut t.2, &mut t.3);
        let refs: Vec<(&str, Dtype, &[usize], &[f32])> = list.iter().map(|t| (t.0.as_str(), t.1, t.2.as_slice(), t.3.as_slice())).collect();
        let bytes = lowbit::safetensors::write(&refs, &st.metadata).unwrap();
        c.insert(shard, bytes);
    })
}

/// The bad-checkpoint matrix: (case, edit, what the error must say).
fn checkpoint_cases(shard: &str) -> Vec<(&'static str, Edit, &'static str)> {
    let shard = shard.to_string();
    let on_shard = move |f: fn(&mut Vec<u8>)| -> Edit {
        let s = shard.clone();
        Box::new(move |c: &mut Files| f(c.get_mut(&s).unwrap()))
    };
    vec![
        ("no-config", Box::new(|c: &mut Files| drop(c.remove(hf::CONFIG))), "has no config.json"),
        ("no-tokenizer", Box::new(|c: &mut Files| drop(c.remove(hf::TOKENIZER))), "has no tokenizer.json"),
        ("config-not-json", Box::new(|c: &mut Files| drop(c.insert(hf::CONFIG.into(), b"{ hidden".to_vec()))), "config.json is not JSON"),
        ("truncated-header", on_shard(|b| b.truncate(20)), "the header claims"),
        ("huge-header-length", on_shard(|b| b[..8].copy_from_slice(&u64::MAX.to_le_bytes())), "more than the 100000000 a header may have"),
        ("offsets-past-the-end", on_shard(|b| b.truncate(b.len() - 64)), "of the data, which has"),
        (
            "bad-dtype",
            on_shard(|b| {
                let h = header_len(b);
                let text = String::from_utf8(b[8..8 + h].to_vec()).unwrap().replacen("\"BF16\"", "\"I64\" ", 1);
                b[8..8 + h].copy_from_slice(text.as_bytes());
            }),
            "is I64: lowbit reads F32, F16 and BF16",
        ),
        (
            "overlapping",
            on_shard(|b| {
                // The second tensor (by offset) moved two bytes back, into the first.
                let mut header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&b[8..8 + header_len(b)]).unwrap();
                let mut ranges: Vec<(u64, String)> = header
                    .iter()
                    .filter_map(|(k, v)| Some((v.get("data_offsets")?[0].as_u64()?, k.clone())))
                    .collect();
                ranges.sort();
                let first_end = header[&ranges[0].1]["data_offsets"][1].as_u64().unwrap();
                let second_end = header[&ranges[1].1]["data_offsets"][1].as_u64().unwrap();
                header[&ranges[1].1]["data_offsets"] = serde_json::json!([first_end - 2, second_end - 2]);
                rewrite_header(b, &header);
            }),
            "share bytes",
        ),
        ("shapes-unlike-the-config", edit_json(hf::CONFIG, |v| v["intermediate_size"] = serde_json::json!(448)), "where config.json implies"),
        (
            "scalar-tensor",
            edit_tensor("model.norm.weight", |shape, values| {
                shape.clear();
                values.truncate(1);
            }),
            "has 0 dimensions",
        ),
        (
            "huge-vocabulary",
            edit_tensor("model.embed_tokens.weight", |shape, values| {
                *shape = vec![100_000_000, 0];
                values.clear();
            }),
            "where config.json implies [vocabulary, 96]",
        ),
        (
            "token-id-past-the-vocabulary",
            edit_json(hf::TOKENIZER, |v| v["added_tokens"][0]["id"] = serde_json::json!(4_000_000)),
            "past the vocabulary's",
        ),
        ("untied-without-head", edit_json(hf::CONFIG, |v| v["tie_word_embeddings"] = serde_json::json!(false)), "has no lm_head.weight"),
        ("huge-head", edit_json(hf::CONFIG, |v| v["head_dim"] = serde_json::json!(1u64 << 31)), "not a plausible head size"),
        ("unknown-architecture", edit_json(hf::CONFIG, |v| v["architectures"] = serde_json::json!(["GPTNeoXForCausalLM"])), "architecture 'GPTNeoXForCausalLM' is not supported"),
        (
            "byte-fallback-byte-level",
            edit_json(hf::TOKENIZER, |v| v["model"]["byte_fallback"] = serde_json::json!(true)),
            "is not one lowbit knows for SentencePiece-style BPE",
        ),
        (
            "merge-makes-no-token",
            edit_json(hf::TOKENIZER, |v| v["model"]["merges"][0] = serde_json::json!("\u{0120}q \u{0120}q")),
            "which is not a token",
        ),
        ("unknown-pre-tokenizer", edit_json(hf::TOKENIZER, |v| v["pre_tokenizer"] = serde_json::json!({ "type": "Whitespace" })), "pre-tokenizer is not one lowbit knows"),
        ("index-elsewhere", edit_json(hf::INDEX, |v| {
            let m = v["weight_map"].as_object_mut().unwrap();
            let k = m.keys().next().unwrap().clone();
            let other = if m[&k] == "model-00001-of-00002.safetensors" { "model-00002-of-00002.safetensors" } else { "model-00001-of-00002.safetensors" };
            m.insert(k, serde_json::json!(other));
        }), "which the index puts elsewhere"),
        ("index-outside", edit_json(hf::INDEX, |v| {
            let m = v["weight_map"].as_object_mut().unwrap();
            let k = m.keys().next().unwrap().clone();
            m.insert(k, serde_json::json!("../model.safetensors"));
        }), "which is not a file beside it"),
    ]
}

/// Hostile Hugging Face checkpoints: each ends in its named error in process (a file error, as
/// the page reports it), at the command line (`info` and `generate` on the directory: exit 1, no
/// panic, bounded memory), and is written under target/hostile-files/checkpoints/ for the page.
#[test]
fn hostile_checkpoints_end_in_named_errors() {
    let Some(bytes) = common::tiny_model() else { return };
    let files = hf::from_gguf(&Gguf::parse(&bytes).unwrap(), Dtype::BF16, 2).unwrap();
    assert!(hf::to_gguf(&files, "ok", hf::OutType::AsStored).is_ok());
    let shard = files.keys().find(|k| k.ends_with(".safetensors")).unwrap().clone();
    let root = std::env::temp_dir().join(format!("lowbit-hostile-hf-{}", std::process::id()));
    let for_page = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/hostile-files/checkpoints"));
    std::fs::remove_dir_all(&for_page).ok();
    for (case, edit, expect) in checkpoint_cases(&shard) {
        let mut c = files.clone();
        edit(&mut c);
        let err = match hf::to_gguf(&c, "x", hf::OutType::AsStored) {
            Err(e) => e,
            Ok(_) => panic!("{case}: accepted"),
        };
        println!("{case:26} {err}");
        assert!(err.is_bad_file(), "{case}: {err:?} is not a file error");
        assert!(err.to_string().contains(expect), "{case}: expected '{expect}' in: {err}");
        let dir = root.join(case);
        hf::write_dir(&dir, &c).unwrap();
        let page = for_page.join(case);
        hf::write_dir(&page, &c).unwrap();
        std::fs::write(page.join("expect.txt"), expect).unwrap();
        let path = dir.to_str().unwrap();
        for args in [vec!["info", path], vec!["generate", path, "--prompt", "hi", "--precision", "source", "--max-tokens", "2"]] {
            let (code, err) = lowbit(&args);
            assert!(!err.contains("panicked"), "{case}: lowbit {} panicked: {err}", args[0]);
            assert_eq!(code, 1, "{case}: lowbit {} exited {code}: {err}", args[0]);
            // A missing file is named by the directory reader, before conversion.
            let missing = case == "no-config" || case == "no-tokenizer";
            assert!(err.contains(expect) || (missing && err.contains("No such file")), "{case}: lowbit {}: expected '{expect}' in: {err}", args[0]);
        }
    }
    std::fs::remove_dir_all(&root).ok();
}
