//! Every block format lowbit decodes, against gguf-py's dequantization (ggml's dequantizers as
//! maintained in the llama.cpp repository): random blocks of every type, and the first rows of a
//! real tensor of each type in Gemma 3 270M Q4_K_M.

use crate::common;

use lowbit::ggml::block_size;
use lowbit::gguf::{GgmlType, Gguf};
use lowbit::util::Rng;

/// Where each type keeps its f16 scales (random bytes there could be NaN or infinite).
fn f16_fields(t: GgmlType) -> &'static [usize] {
    match t {
        GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::IQ4NL => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4K | GgmlType::Q5K => &[0, 2],
        GgmlType::Q2K => &[80, 82],
        GgmlType::Q3K => &[108],
        GgmlType::Q6K => &[208],
        GgmlType::F16 => &[0],
        _ => &[],
    }
}

fn random_blocks(t: GgmlType, n: usize, rng: &mut Rng) -> Vec<u8> {
    let (_, bytes) = block_size(t);
    let mut out = Vec::with_capacity(n * bytes);
    for _ in 0..n {
        let mut b: Vec<u8> = (0..bytes).map(|_| rng.next_u32() as u8).collect();
        for &at in f16_fields(t) {
            b[at..at + 2].copy_from_slice(&half::f16::from_f32(rng.normal()).to_bits().to_le_bytes());
        }
        if t == GgmlType::BF16 {
            b.copy_from_slice(&half::bf16::from_f32(rng.normal()).to_bits().to_le_bytes());
        }
        out.extend(b);
    }
    out
}

fn read_f32(path: &std::path::Path) -> Vec<f32> {
    std::fs::read(path).unwrap().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

/// The largest difference relative to max(1, |reference|).
fn max_rel_diff(ours: &[f32], theirs: &[f32]) -> f32 {
    assert_eq!(ours.len(), theirs.len());
    ours.iter().zip(theirs).map(|(a, b)| (a - b).abs() / b.abs().max(1.0)).fold(0.0, f32::max)
}

#[test]
fn random_blocks_of_every_type_decode_as_gguf_py_does() {
    let Some(_) = common::gguf_py() else { return };
    let dir = std::env::temp_dir().join(format!("lowbit-blocks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = Rng::new(7);
    let types = [
        GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
        GgmlType::IQ4NL, GgmlType::Q2K, GgmlType::Q3K, GgmlType::Q4K, GgmlType::Q5K, GgmlType::Q6K,
    ];
    for t in types {
        let data = random_blocks(t, 64, &mut rng);
        let (src, dst) = (dir.join(format!("{}.in", t.name())), dir.join(format!("{}.out", t.name())));
        std::fs::write(&src, &data).unwrap();
        let out = common::gguf_py().unwrap().args(["blocks", t.name()]).arg(&src).arg(&dst).output().unwrap();
        assert!(out.status.success(), "gguf-py on {}: {}", t.name(), String::from_utf8_lossy(&out.stderr));
        let ours = lowbit::gguf::dequantize(t, &data).unwrap();
        let diff = max_rel_diff(&ours, &read_f32(&dst));
        println!("{:7} {} weights, largest difference {diff:.1e}", t.name(), ours.len());
        assert!(diff <= 1e-6, "{}: ours and gguf-py's differ by {diff}", t.name());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_real_tensor_of_each_type_in_gemma_decodes_as_gguf_py_does() {
    let (Some(_), Some(path)) = (common::gguf_py(), common::gemma_model_path()) else { return };
    let bytes = std::fs::read(&path).unwrap();
    let g = Gguf::parse(&bytes).unwrap();
    let dir = std::env::temp_dir().join(format!("lowbit-gemma-rows-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The first tensor of each type (gguf-py reads the file once for all of them).
    let mut firsts: Vec<&lowbit::gguf::TensorInfo> = vec![];
    for t in &g.tensors {
        if !firsts.iter().any(|f| f.ggml_type == t.ggml_type) {
            firsts.push(t);
        }
    }
    let mut py = common::gguf_py().unwrap();
    py.arg("tensors").arg(&path).arg("2").arg(&dir).args(firsts.iter().map(|t| &t.name));
    let out = py.output().unwrap();
    assert!(out.status.success(), "gguf-py: {}", String::from_utf8_lossy(&out.stderr));
    for t in &firsts {
        let ours = g.dequantize_rows(t, 0, t.matrix_shape().0.min(2)).unwrap();
        let diff = max_rel_diff(&ours, &read_f32(&dir.join(format!("{}.f32", t.name))));
        println!("{:7} {} ({} values), largest difference {diff:.1e}", t.ggml_type.name(), t.name, ours.len());
        assert!(diff <= 1e-6, "{}: ours and gguf-py's differ by {diff}", t.name);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let seen: Vec<GgmlType> = firsts.iter().map(|t| t.ggml_type).collect();
    assert!(seen.contains(&GgmlType::Q4K) && seen.contains(&GgmlType::Q6K), "{seen:?}");
}
