//! Weight formats: round-trip error budgets on random data and on the default model's rows,
//! and the GPU layout against the CPU blocks.

use crate::common;

use half::f16;
use lowbit::gguf::{Gguf, GgmlType};
use lowbit::layout::{roundtrip_budget, roundtrip_error, BLOCK, ROUNDTRIP_BUDGET};
use lowbit::util::Rng;
use lowbit::{Precision, QuantMatrix};

#[test]
fn random_data_roundtrip_is_within_budget() {
    let (rows, cols) = (64, 300); // 300 is not a multiple of the block size
    let values = Rng::new(1).normals(rows * cols, 1.0);
    println!("budget table: {ROUNDTRIP_BUDGET:?}");
    for p in Precision::ALL {
        let e = roundtrip_error(&values, rows, cols, p).unwrap();
        let b = roundtrip_budget(p);
        println!("{p}: rel_rms {:.2e} (budget {:.2e}), max/block-absmax {:.2e} (budget {:.2e})",
            e.rel_rms, b.rel_rms_random, e.max_err_over_block_absmax, b.max_err_over_block_absmax);
        assert!(e.rel_rms <= b.rel_rms_random, "{p}: {e:?}");
        assert!(e.max_err_over_block_absmax <= b.max_err_over_block_absmax, "{p}: {e:?}");
    }
    // The formats are ordered: more bits, less error.
    let err = |p| roundtrip_error(&values, rows, cols, p).unwrap().rel_rms;
    assert!(err(Precision::Fp16) < err(Precision::Int8) && err(Precision::Int8) < err(Precision::Int4));
    assert!(err(Precision::Int4) < err(Precision::Int3) && err(Precision::Int3) < err(Precision::Int2));
}

#[test]
fn exact_values_roundtrip_exactly() {
    // Values each format can represent come back unchanged.
    let ints: Vec<f32> = (0..BLOCK).map(|i| i as f32 - 16.0).collect();
    for p in Precision::ALL {
        let q = QuantMatrix::quantize(&ints, 1, BLOCK, p).unwrap();
        let back = q.dequantize();
        match p {
            // -16..15 in steps of 1: fp16 exact; int8 d = 16/127 is not exact in f16, so only close.
            Precision::Int8 => assert!(back.iter().zip(&ints).all(|(a, b)| (a - b).abs() < 0.07)),
            // int4 range 31 over 15 steps is not a unit step; a 0..15 ramp is exact.
            Precision::Int4 => {
                let ramp: Vec<f32> = (0..BLOCK).map(|i| (i % 16) as f32).collect();
                let q = QuantMatrix::quantize(&ramp, 1, BLOCK, p).unwrap();
                assert_eq!(q.dequantize(), ramp);
            }
            // 0..7 and 0..3 ramps are exact at 8 and 4 levels.
            Precision::Int3 | Precision::Int2 => {
                let top = if p == Precision::Int3 { 8 } else { 4 };
                let ramp: Vec<f32> = (0..BLOCK).map(|i| (i % top) as f32).collect();
                let q = QuantMatrix::quantize(&ramp, 1, BLOCK, p).unwrap();
                assert_eq!(q.dequantize(), ramp, "{p}");
            }
            Precision::Fp16 => assert_eq!(back, ints),
        }
    }
    // All-zero blocks and padding stay zero.
    for p in Precision::ALL {
        let q = QuantMatrix::quantize(&[0.0; 40], 1, 40, p).unwrap();
        assert_eq!(q.dequantize(), vec![0.0; 40]);
        assert_eq!(q.blocks_per_row(), 2);
    }
}

#[test]
fn block_bit_layouts_are_as_documented() {
    let x: [f32; BLOCK] = std::array::from_fn(|i| i as f32 * 0.25 - 3.0);
    let q = QuantMatrix::quantize(&x, 1, BLOCK, Precision::Int4).unwrap();
    let l = q.gpu_layout();
    let sm = l.s[0];
    let (d, m) = (f16::from_bits(sm as u16).to_f32(), f16::from_bits((sm >> 16) as u16).to_f32());
    for (i, &xi) in x.iter().enumerate() {
        let nib = (l.q[i / 8] >> (4 * (i % 8))) & 15;
        assert!((d * nib as f32 + m - xi).abs() <= d * 0.51, "int4 weight {i}");
    }
    // INT3: two low bits of weight 16j + t at bits 2t of word j, the high bit at bit i of word 2.
    let q = QuantMatrix::quantize(&x, 1, BLOCK, Precision::Int3).unwrap();
    let l = q.gpu_layout();
    assert_eq!(l.q.len(), 3);
    let (d, m) = (f16::from_bits(l.s[0] as u16).to_f32(), f16::from_bits((l.s[0] >> 16) as u16).to_f32());
    for (i, &xi) in x.iter().enumerate() {
        let code = (l.q[i / 16] >> (2 * (i % 16))) & 3 | ((l.q[2] >> i) & 1) << 2;
        assert!((d * code as f32 + m - xi).abs() <= d * 0.51, "int3 weight {i}");
    }
    // INT2: weight 16j + t at bits 2t of word j.
    let q = QuantMatrix::quantize(&x, 1, BLOCK, Precision::Int2).unwrap();
    let l = q.gpu_layout();
    assert_eq!(l.q.len(), 2);
    let (d, m) = (f16::from_bits(l.s[0] as u16).to_f32(), f16::from_bits((l.s[0] >> 16) as u16).to_f32());
    for (i, &xi) in x.iter().enumerate() {
        let code = (l.q[i / 16] >> (2 * (i % 16))) & 3;
        assert!((d * code as f32 + m - xi).abs() <= d * 0.51, "int2 weight {i}");
    }
    let q = QuantMatrix::quantize(&x, 1, BLOCK, Precision::Int8).unwrap();
    let l = q.gpu_layout();
    let d = f16::from_bits(l.s[0] as u16).to_f32();
    for (i, &xi) in x.iter().enumerate() {
        let byte = (l.q[i / 4] >> (8 * (i % 4))) as u8 as i8;
        assert!((d * byte as f32 - xi).abs() <= d * 0.51, "int8 weight {i}");
    }
    let q = QuantMatrix::quantize(&x, 1, BLOCK, Precision::Fp16).unwrap();
    let l = q.gpu_layout();
    for (i, &xi) in x.iter().enumerate() {
        assert_eq!(f16::from_bits((l.q[i / 2] >> (16 * (i % 2))) as u16).to_f32(), xi);
    }
}

#[test]
fn gpu_layout_roundtrips_to_the_same_blocks() {
    let values = Rng::new(5).normals(7 * 99, 0.3);
    for p in Precision::ALL {
        let q = QuantMatrix::quantize(&values, 7, 99, p).unwrap();
        let l = q.gpu_layout();
        assert_eq!(l.q.len() * 4 + l.s.len() * 4 >= q.bytes(), true);
        assert_eq!(QuantMatrix::from_gpu_layout(p, 7, 99, &l).unwrap(), q);
    }
}

/// Symmetric INT4 (`d · (q − 8)`, one f16 scale), for the format decision only.
fn symmetric_int4_rel_rms(values: &[f32]) -> f32 {
    let (mut num, mut den) = (0f64, 0f64);
    for b in values.chunks(BLOCK) {
        let amax = b.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = f16::from_f32(amax / 7.5).to_f32();
        for &v in b {
            let q = if d > 0.0 { (v / d).round().clamp(-8.0, 7.0) } else { 0.0 };
            num += ((v - q * d) as f64).powi(2);
            den += (v as f64).powi(2);
        }
    }
    (num / den).sqrt() as f32
}

#[test]
fn real_rows_roundtrip() {
    let Some(bytes) = common::default_model() else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let mut n_tensors = 0;
    // Mean squared relative RMS over the Q4_1 tensors, asymmetric (ours) and symmetric INT4.
    let (mut sym, mut asym, mut n_q41) = (0f64, 0f64, 0f64);
    for t in g.tensors.iter().filter(|t| t.dims.len() == 2) {
        let (rows, cols) = t.matrix_shape();
        let take = rows.min(64);
        let values = g.dequantize_rows(t, 0, take).unwrap();
        for p in Precision::ALL {
            let e = roundtrip_error(&values, take, cols, p).unwrap();
            let b = roundtrip_budget(p);
            assert!(e.max_err_over_block_absmax <= b.max_err_over_block_absmax, "{} {p}: {e:?}", t.name);
            assert!(e.rel_rms <= b.rel_rms_random, "{} {p}: {e:?}", t.name);
            if p == Precision::Int4 && t.ggml_type == GgmlType::Q4_1 {
                // A Q4_1 source is already asymmetric 4-bit: our INT4 must reproduce it almost exactly.
                assert!(e.rel_rms < 5e-3, "{}: int4 of a Q4_1 source lost {e:?}", t.name);
                asym += (e.rel_rms as f64).powi(2);
                sym += (symmetric_int4_rel_rms(&values) as f64).powi(2);
                n_q41 += 1.0;
            }
        }
        n_tensors += 1;
    }
    let (asym, sym) = ((asym / n_q41).sqrt(), (sym / n_q41).sqrt());
    println!("default model, {n_q41} Q4_1 tensors x 64 rows: INT4 rel RMS asymmetric {asym:.2e}, symmetric {sym:.2e}");
    assert!(n_tensors >= 200, "expected the model's 2-D tensors, found {n_tensors}");
    assert!(asym * 10.0 < sym, "asymmetric INT4 must be far closer to the Q4_1 source than symmetric");
}

/// A source already in one of lowbit's GPU formats comes through requantization unchanged: Q8_0
/// (`d·q`, f16 d) as INT8 and Q4_1 (`d·q + m`, f16 d and m) as INT4 give back every source weight
/// to the bit, so a switch to the file's own precision loses nothing (the first 64 rows of every
/// Q8_0 and Q4_1 tensor of the default model).
#[test]
fn a_source_in_a_gpu_format_is_kept_exactly() {
    let Some(bytes) = common::default_model() else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let mut checked = 0;
    for t in g.tensors.iter().filter(|t| t.dims.len() == 2) {
        let p = match t.ggml_type {
            GgmlType::Q8_0 => Precision::Int8,
            GgmlType::Q4_1 => Precision::Int4,
            _ => continue,
        };
        // As a load does it: the file's own blocks, kept.
        let (rows, cols) = t.matrix_shape();
        let q = QuantMatrix::from_ggml(t.ggml_type, g.tensor_data(t), rows, cols, p).expect("kept as stored");
        assert_eq!(differing(&q.dequantize(), &lowbit::gguf::dequantize(t.ggml_type, g.tensor_data(t)).unwrap()), 0, "{} at {p}", t.name);
        checked += 1;
    }
    assert!(checked >= 200, "{checked} tensors");
}

/// How many of `a`'s values differ from `b`'s (+0 and −0 alike).
fn differing(a: &[f32], b: &[f32]) -> usize {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).filter(|(x, y)| x != y).count()
}

/// Blocks of `ty` made as an importance matrix or a search makes them: a scale and a minimum
/// that are not the block's (max − min)/15 and min, integers that do not reach both ends.
fn chosen_blocks(ty: GgmlType, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let h = |v: f32| f16::from_f32(v).to_le_bytes();
    let mut out = vec![];
    for _ in 0..rows * cols / BLOCK {
        let d = 0.01 + 0.02 * rng.uniform();
        match ty {
            GgmlType::Q4_1 => {
                out.extend(h(d));
                out.extend(h(-0.1 * rng.uniform() - 0.05));
                out.extend((0..16).map(|_| (2 + (rng.uniform() * 10.0) as u8) | (3 + (rng.uniform() * 9.0) as u8) << 4));
            }
            GgmlType::Q4_0 => {
                out.extend(h(if rng.uniform() < 0.5 { -d } else { d }));
                out.extend((0..16).map(|_| (1 + (rng.uniform() * 13.0) as u8) | (2 + (rng.uniform() * 12.0) as u8) << 4));
            }
            GgmlType::Q8_0 => {
                out.extend(h(d));
                out.extend((0..32).map(|_| ((rng.uniform() * 200.0) as i32 - 100) as i8 as u8));
            }
            _ => unreachable!(),
        }
    }
    out
}

#[test]
fn blocks_a_file_chose_load_as_it_chose_them() {
    // Q4_1 and Q4_0 as INT4 and Q8_0 as INT8: every weight the file's, where requantizing from the
    // values by min and max (the earlier load path) would move most of them.
    let (rows, cols) = (7, 96);
    for (ty, p) in [(GgmlType::Q4_1, Precision::Int4), (GgmlType::Q4_0, Precision::Int4), (GgmlType::Q8_0, Precision::Int8)] {
        let data = chosen_blocks(ty, rows, cols, 3);
        let source = lowbit::gguf::dequantize(ty, &data).unwrap();
        let kept = QuantMatrix::from_ggml(ty, &data, rows, cols, p).expect("kept as stored");
        assert_eq!(differing(&kept.dequantize(), &source), 0, "{ty:?} at {p}");
        // The GPU layout holds the same blocks.
        let back = QuantMatrix::from_gpu_layout(p, rows, cols, &kept.gpu_layout()).unwrap();
        assert_eq!(back, kept);
        let rerounded = QuantMatrix::quantize(&source, rows, cols, p).unwrap().dequantize();
        let moved = differing(&rerounded, &source);
        println!("{ty:?} at {p}: requantized by min and max, {moved} of {} weights move", source.len());
        if ty != GgmlType::Q8_0 {
            assert!(moved > source.len() / 2, "{ty:?}: the test's blocks must be ones min and max do not reproduce");
        }
    }
    // Formats that are not the target's are not kept: the caller requantizes.
    let data = chosen_blocks(GgmlType::Q4_1, rows, cols, 4);
    assert!(QuantMatrix::from_ggml(GgmlType::Q4_1, &data, rows, cols, Precision::Int8).is_none());
    assert!(QuantMatrix::from_ggml(GgmlType::Q4_1, &data[..data.len() - 1], rows, cols, Precision::Int4).is_none());
}

#[test]
fn q4_k_super_blocks_load_at_int4_as_their_own_sub_blocks() {
    // Random Q4_K super-blocks (any 6-bit scales and mins, any nibbles): each 32-weight sub-block
    // becomes one INT4 block with the same integers; only d·sc and dmin·m round to f16.
    let (rows, cols) = (3, 512);
    let mut rng = Rng::new(8);
    let h = |v: f32| f16::from_f32(v).to_le_bytes();
    let mut data = vec![];
    for _ in 0..rows * cols / 256 {
        data.extend(h(0.001 + 0.002 * rng.uniform()));
        data.extend(h(0.001 + 0.003 * rng.uniform()));
        data.extend((0..12 + 128).map(|_| (rng.uniform() * 256.0) as u8));
    }
    let source = lowbit::gguf::dequantize(GgmlType::Q4K, &data).unwrap();
    assert!(QuantMatrix::keeps(GgmlType::Q4K, cols, Precision::Int4));
    let kept = QuantMatrix::from_ggml(GgmlType::Q4K, &data, rows, cols, Precision::Int4).expect("kept");
    let back = kept.dequantize();
    let err = |a: &[f32]| a.iter().zip(&source).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>().sqrt();
    let rerounded = QuantMatrix::quantize(&source, rows, cols, Precision::Int4).unwrap().dequantize();
    let widened: Vec<f32> = source.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
    println!("Q4_K at INT4: kept {:.3e}, requantized by min and max {:.3e}, widened to FP16 {:.3e}", err(&back), err(&rerounded), err(&widened));
    // Each weight within 2⁻¹⁰ of its sub-block's range (f16 has 11 significant bits).
    for (b, (x, y)) in back.chunks(32).zip(source.chunks(32)).enumerate() {
        let range = y.iter().fold(0f32, |a, v| a.max(v.abs())) + 1e-6;
        for (x, y) in x.iter().zip(y) {
            assert!((x - y).abs() <= range / 1024.0, "block {b}: {x} vs {y}");
        }
    }
    assert!(err(&back) < 0.1 * err(&rerounded));
    // Not at other precisions, nor from a truncated tensor.
    assert!(QuantMatrix::from_ggml(GgmlType::Q4K, &data, rows, cols, Precision::Int8).is_none());
    assert!(QuantMatrix::from_ggml(GgmlType::Q4K, &data[..data.len() - 1], rows, cols, Precision::Int4).is_none());
}
