//! GGUF reader: metadata of every type, tensor infos, dequantization of hand-built blocks with
//! known values, named errors (never a panic) on corrupt input, and the default model's header.

use crate::common;

use half::{bf16, f16};
use lowbit::gguf::{self, Array, Gguf, GgmlType, TensorOut, Value};
use lowbit::Error;

fn h(x: f32) -> [u8; 2] {
    f16::from_f32(x).to_bits().to_le_bytes()
}

/// Q8_0 block: d = 0.5, q = -16..15 → x = q / 2.
fn q8_0() -> (Vec<u8>, Vec<f32>) {
    let mut b = h(0.5).to_vec();
    b.extend((0..32).map(|i| (i as i8 - 16) as u8));
    (b, (0..32).map(|i| (i as f32 - 16.0) * 0.5).collect())
}

/// Q4_0 block: d = 2, nibble j = j % 16 in both halves → x = 2 (q − 8).
fn q4_0() -> (Vec<u8>, Vec<f32>) {
    let mut b = h(2.0).to_vec();
    b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let mut x: Vec<f32> = (0..16).map(|j| 2.0 * (j as f32 - 8.0)).collect();
    x.extend((0..16).map(|j| 2.0 * ((15 - j) as f32 - 8.0)));
    (b, x)
}

/// Q4_1 block: d = 0.25, m = -1 → x = 0.25 q − 1.
fn q4_1() -> (Vec<u8>, Vec<f32>) {
    let mut b = h(0.25).to_vec();
    b.extend(h(-1.0));
    b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
    let mut x: Vec<f32> = (0..16).map(|j| 0.25 * j as f32 - 1.0).collect();
    x.extend((0..16).map(|j| 0.25 * (15 - j) as f32 - 1.0));
    (b, x)
}

/// Q5_0 block: d = 1, low nibbles j % 16, high bit set for odd elements → x = q − 16.
fn q5_0() -> (Vec<u8>, Vec<f32>) {
    let mut b = h(1.0).to_vec();
    let qh: u32 = 0xAAAA_AAAA; // bit i set for odd i
    b.extend(qh.to_le_bytes());
    b.extend((0..16u8).map(|j| j | (j << 4)));
    let x = (0..32).map(|i| ((i % 16) as f32 + if i % 2 == 1 { 16.0 } else { 0.0 }) - 16.0).collect();
    (b, x)
}

/// Q5_1 block: d = 0.5, m = 3, same bits as q5_0 → x = 0.5 q + 3.
fn q5_1() -> (Vec<u8>, Vec<f32>) {
    let mut b = h(0.5).to_vec();
    b.extend(h(3.0));
    b.extend(0xAAAA_AAAAu32.to_le_bytes());
    b.extend((0..16u8).map(|j| j | (j << 4)));
    let x = (0..32).map(|i| 0.5 * ((i % 16) as f32 + if i % 2 == 1 { 16.0 } else { 0.0 }) + 3.0).collect();
    (b, x)
}

#[test]
fn dequantizes_hand_built_blocks() {
    for (t, (bytes, want)) in [
        (GgmlType::Q8_0, q8_0()),
        (GgmlType::Q4_0, q4_0()),
        (GgmlType::Q4_1, q4_1()),
        (GgmlType::Q5_0, q5_0()),
        (GgmlType::Q5_1, q5_1()),
    ] {
        assert_eq!(gguf::dequantize(t, &bytes).unwrap(), want, "{}", t.name());
    }
    let f: Vec<u8> = [1.5f32, -2.25].iter().flat_map(|x| x.to_le_bytes()).collect();
    assert_eq!(gguf::dequantize(GgmlType::F32, &f).unwrap(), vec![1.5, -2.25]);
    let f: Vec<u8> = [1.5f32, -2.25].iter().flat_map(|&x| h(x)).collect();
    assert_eq!(gguf::dequantize(GgmlType::F16, &f).unwrap(), vec![1.5, -2.25]);
    let f: Vec<u8> = [1.5f32, -2.25].iter().flat_map(|&x| bf16::from_f32(x).to_bits().to_le_bytes()).collect();
    assert_eq!(gguf::dequantize(GgmlType::BF16, &f).unwrap(), vec![1.5, -2.25]);
    assert!(matches!(gguf::dequantize(GgmlType::Q8_0, &[0u8; 33]), Err(Error::Malformed(_))));
}

fn sample_file() -> Vec<u8> {
    let (q8, _) = q8_0();
    let (q41, _) = q4_1();
    let f32s: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let meta = vec![
        ("general.architecture".to_string(), Value::String("llama".into())),
        ("u8".into(), Value::U8(7)),
        ("i8".into(), Value::I8(-7)),
        ("u16".into(), Value::U16(700)),
        ("i16".into(), Value::I16(-700)),
        ("u32".into(), Value::U32(70000)),
        ("i32".into(), Value::I32(-70000)),
        ("u64".into(), Value::U64(1 << 40)),
        ("i64".into(), Value::I64(-(1 << 40))),
        ("f32".into(), Value::F32(0.5)),
        ("f64".into(), Value::F64(-0.25)),
        ("bool".into(), Value::Bool(true)),
        ("strings".into(), Value::Array(Array::String(vec!["a".into(), "bc".into()]))),
        (
            "nested".into(),
            Value::Array(Array::Array(vec![Array::I32(vec![1, 2]), Array::I32(vec![3])])),
        ),
        ("general.alignment".into(), Value::U32(64)),
    ];
    let tensors = [
        TensorOut { name: "a".into(), dims: vec![3, 2], ggml_type: GgmlType::F32, data: &f32s },
        TensorOut { name: "b".into(), dims: vec![32], ggml_type: GgmlType::Q8_0, data: &q8 },
        TensorOut { name: "c".into(), dims: vec![32, 1], ggml_type: GgmlType::Q4_1, data: &q41 },
    ];
    gguf::write(&meta, &tensors, 64)
}

#[test]
fn reads_every_metadata_type_and_tensor() {
    let bytes = sample_file();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.alignment, 64);
    assert_eq!(g.data_offset % 64, 0);
    assert_eq!(g.get_str("general.architecture"), Some("llama"));
    assert_eq!(g.get("i8"), Some(&Value::I8(-7)));
    assert_eq!(g.get("i64"), Some(&Value::I64(-(1 << 40))));
    assert_eq!(g.get_u64("u64"), Some(1 << 40));
    assert_eq!(g.get("f64"), Some(&Value::F64(-0.25)));
    assert_eq!(g.get("bool"), Some(&Value::Bool(true)));
    let nested = g.get("nested").and_then(Value::as_array).unwrap();
    assert_eq!(nested, &Array::Array(vec![Array::I32(vec![1, 2]), Array::I32(vec![3])]));
    assert_eq!(g.get("strings").and_then(Value::as_array).and_then(Array::strings), Some(&["a".to_string(), "bc".to_string()][..]));
    let a = g.tensor("a").unwrap();
    assert_eq!(a.matrix_shape(), (2, 3));
    assert_eq!(g.dequantize_tensor(a).unwrap(), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(g.dequantize_rows(a, 1, 1).unwrap(), vec![3.0, 4.0, 5.0]);
    assert_eq!(g.dequantize_tensor(g.tensor("b").unwrap()).unwrap(), q8_0().1);
    assert_eq!(g.dequantize_tensor(g.tensor("c").unwrap()).unwrap(), q4_1().1);
    assert!(matches!(g.tensor("zzz"), Err(Error::TensorNotFound(_))));
    assert!(g.dequantize_rows(a, 2, 1).is_err());
}

#[test]
fn corrupt_files_give_named_errors_not_panics() {
    let bytes = sample_file();
    let g = Gguf::parse(&bytes).unwrap();
    let end = g.tensors.iter().map(|t| t.offset + t.n_bytes).max().unwrap() as usize;
    // Every truncation short of the last tensor's end fails cleanly (only padding may go).
    for n in 0..end {
        assert!(Gguf::parse(&bytes[..n]).is_err(), "truncated at {n} parsed");
    }
    // Flipping any header or metadata byte never panics.
    for i in 0..g.data_offset as usize {
        for v in [0x00u8, 0xFF, 0x7F] {
            let mut b = bytes.clone();
            b[i] = v;
            let _ = Gguf::parse(&b);
        }
    }
    assert!(matches!(Gguf::parse(b"GGML\x03\0\0\0"), Err(Error::BadMagic(_))));
    let mut b = bytes.clone();
    b[4] = 9;
    assert!(matches!(Gguf::parse(&b), Err(Error::UnsupportedVersion(9))));
    // A huge tensor count is rejected before any allocation.
    let mut b = bytes.clone();
    b[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(Gguf::parse(&b), Err(Error::Malformed(_))));
}

#[test]
fn reads_the_default_models_header() {
    let Some(bytes) = common::default_model() else { return };
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.get_str("general.architecture"), Some("llama"));
    assert_eq!(g.get_u64("llama.block_count"), Some(30));
    assert_eq!(g.get_u64("llama.embedding_length"), Some(576));
    assert_eq!(g.get_u64("llama.attention.head_count"), Some(9));
    assert_eq!(g.get_u64("llama.attention.head_count_kv"), Some(3));
    assert_eq!(g.get_str("tokenizer.ggml.pre"), Some("smollm"));
    assert_eq!(g.get("tokenizer.ggml.tokens").and_then(Value::as_array).map(|a| a.len()), Some(49152));
    let emb = g.tensor("token_embd.weight").unwrap();
    assert_eq!((emb.ggml_type, emb.dims.clone()), (GgmlType::Q8_0, vec![576, 49152]));
    let q = g.tensor("blk.0.attn_q.weight").unwrap();
    assert_eq!((q.ggml_type, q.matrix_shape()), (GgmlType::Q4_1, (576, 576)));
    // Every tensor dequantizes (the types this model uses are all supported).
    for t in &g.tensors {
        assert_eq!(g.dequantize_rows(t, 0, 1).unwrap().len(), t.dims[0] as usize, "{}", t.name);
    }
}
