//! The inspector on the default model: histograms count every inspected weight, and the errors
//! say what the file already is — INT4 reproduces its Q4_1 blocks exactly, while its Q8_0
//! embedding (also the output head) is where INT4 loses.

use crate::common;

use lowbit::gguf::Gguf;
use lowbit::inspect::{inspect, tensors};
use lowbit::Precision;

#[test]
fn inspect_a_q4_1_matrix_and_the_q8_0_embedding() {
    let Some(bytes) = common::default_model() else { return };
    let g = Gguf::parse(&bytes).unwrap();
    let list = tensors(&g);
    assert_eq!(list.len(), 30 * 7 + 1);
    let view = |name: &str| {
        let i = inspect(&g, name, 40).unwrap();
        println!("{name} ({}): {} of {} values, mean {:.5} std {:.5}", i.tensor.dtype, i.n_values, i.n_total, i.mean, i.std);
        assert_eq!(i.values.counts.iter().sum::<u64>() as usize, i.n_values);
        for p in &i.precisions {
            println!("  {}: relative RMS error {:.3e}, max {:.3e}, {} blocks", p.precision, p.relative_rms_error, p.max_abs_error, p.n_blocks);
            assert_eq!(p.error.counts.iter().sum::<u64>() as usize, i.n_values);
            assert_eq!(p.scales.as_ref().map(|s| s.counts.iter().sum::<u64>() as usize), (p.precision != Precision::Fp16).then_some(p.n_blocks));
        }
        i
    };
    let down = view("blk.0.ffn_down.weight");
    assert_eq!(down.tensor.dtype, "Q4_1");
    assert_eq!(down.n_values, down.n_total, "a small matrix is inspected whole");
    let rel = |i: &lowbit::inspect::Inspection, p: Precision| i.precisions.iter().find(|v| v.precision == p).unwrap().relative_rms_error;
    assert!(rel(&down, Precision::Int4) < 1e-3, "INT4 keeps Q4_1's blocks");
    let embd = view("token_embd.weight");
    assert_eq!(embd.tensor.dtype, "Q8_0");
    assert!(embd.n_values < embd.n_total && embd.n_values <= lowbit::inspect::MAX_VALUES);
    assert!(rel(&embd, Precision::Int4) > 0.05, "INT4 loses on the Q8_0 embedding");
    assert!(rel(&embd, Precision::Int8) < 0.02 && rel(&embd, Precision::Fp16) < 1e-3);
    // A kept tensor has no other method to show; a requantized one shows what searched scales
    // recover, at every precision below INT8's kept blocks, and the ladder's error grows.
    let searched = |i: &lowbit::inspect::Inspection, p: Precision| i.precisions.iter().find(|v| v.precision == p).unwrap().searched_relative_rms_error;
    assert_eq!(searched(&down, Precision::Int4), None);
    assert_eq!(searched(&embd, Precision::Int8), None);
    for p in [Precision::Int4, Precision::Int3, Precision::Int2] {
        let s = searched(&embd, p).unwrap();
        println!("embedding {p}: min/max {:.4}, searched {s:.4}", rel(&embd, p));
        assert!(s < rel(&embd, p), "{p}: searched {s} vs {}", rel(&embd, p));
    }
    assert!(rel(&embd, Precision::Int4) < rel(&embd, Precision::Int3) && rel(&embd, Precision::Int3) < rel(&embd, Precision::Int2));
}

#[test]
fn each_layers_output_error_grows_with_coarser_weights() {
    use lowbit::plan::{Plan, Variant};
    use lowbit::session::Session;
    // The tiny model has the default model's formats (Q4_1 layers, Q8_0 embedding).
    let Some(bytes) = common::tiny_model() else { return };
    let Some(gpu) = common::gpu() else { return };
    let layers = lowbit::synth::Shape::TINY.layers;
    let mut s = Session::load(&gpu, bytes, Precision::Int8, 64).unwrap();
    // INT4 layers with an INT8 embedding / head: the file's own formats (Q4_1 and Q8_0).
    let own = Variant::from(Plan::parse("int4-int4-int8").unwrap());
    let variants = [Precision::Int8.into(), Precision::Int4.into(), own];
    let text = "The lighthouse keeper climbed the spiral stairs every evening at six.";
    let e = pollster::block_on(s.layer_errors(text, 32, &variants, |_| true)).unwrap();
    assert_eq!(e.rows.len(), 3);
    for (v, errs) in &e.rows {
        println!("{v}: {}", errs.iter().map(|x| format!("{x:.4}")).collect::<Vec<_>>().join(" "));
        assert_eq!(errs.len(), layers);
        assert!(errs.iter().all(|x| x.is_finite() && *x >= 0.0));
    }
    let last = |i: usize| e.rows[i].1[layers - 1];
    assert!(last(2) < last(0) && last(0) < last(1), "own formats < INT8 < INT4 at the last layer");
    // The session is back where it was.
    assert_eq!(s.plan(), Plan::uniform(Precision::Int8));
}
