//! Every WGSL kernel against its CPU reference on the GPU (lavapipe in CI), within the per-dtype
//! tolerance table `selftest::KERNEL_TOLERANCE`.

use crate::common;

use lowbit::gpu::{Reduce, Tiling};
use lowbit::selftest::{self, Case, KERNEL_TOLERANCE};
use lowbit::{Precision, QuantMatrix};

fn run_and_check(cases: &[Case], seed: u64) {
    let Some(gpu) = common::gpu() else { return };
    let cases: Vec<Case> = cases
        .iter()
        .copied()
        .filter(|c| match c {
            Case::Matvec { reduce, .. } => gpu.info.subgroups || !reduce.needs_subgroups(),
            Case::Matmul { tiling, .. } => gpu.info.subgroups || !tiling.needs_subgroups(),
            _ => true,
        })
        .collect();
    let rows = pollster::block_on(selftest::run_cases(&gpu, &cases, seed)).expect("GPU run");
    println!("tolerances (|gpu - cpu| <= atol + rtol * scale): {KERNEL_TOLERANCE:?}");
    println!("{}", selftest::table(&rows));
    let failed: Vec<_> = rows.iter().filter(|r| !r.pass).map(|r| format!("{} {}", r.kernel, r.shape)).collect();
    assert!(failed.is_empty(), "kernels outside tolerance: {failed:?}");
    assert_eq!(rows.len(), cases.len());
}

#[test]
fn every_kernel_matches_its_cpu_reference_on_odd_shapes() {
    // The subgroup variants too wherever the adapter has subgroups.
    run_and_check(&selftest::standard_cases(true), 1);
}

#[test]
fn kernels_match_at_the_default_models_shapes_with_subgroups_and_shared_tiles() {
    run_and_check(&selftest::model_shape_cases(Reduce::Subgroup, Tiling::Shared), 2);
}

#[test]
fn kernels_match_at_the_default_models_shapes_with_workgroup_reduction() {
    let cases: Vec<Case> = selftest::model_shape_cases(Reduce::Workgroup, Tiling::Shared)
        .into_iter()
        .filter(|c| matches!(c, Case::Matvec { .. }))
        .collect();
    run_and_check(&cases, 3);
}

/// The matvec and matmul cases at the default model's shapes with these variants.
fn weight_cases(reduce: Reduce, tiling: Tiling) -> Vec<Case> {
    selftest::model_shape_cases(reduce, tiling).into_iter().filter(|c| matches!(c, Case::Matvec { .. } | Case::Matmul { .. })).collect()
}

#[test]
fn barrier_free_kernels_match_at_the_default_models_shapes() {
    run_and_check(&weight_cases(Reduce::Row, Tiling::Rows), 4);
}

#[test]
fn barrier_free_kernels_sharing_x_in_subgroups_match_at_the_default_models_shapes() {
    run_and_check(&weight_cases(Reduce::RowSubgroup, Tiling::RowsSubgroup), 5);
}

#[test]
fn gpu_layout_holds_the_same_numbers_as_the_cpu_blocks() {
    // The embedding kernel decodes every weight through the GPU layout; it must reproduce the CPU
    // dequantization bit for bit, for every row, at every precision.
    let Some(gpu) = common::gpu() else { return };
    let (rows, cols) = (41, 333);
    let values = lowbit::util::Rng::new(9).normals(rows * cols, 0.7);
    for p in Precision::ALL {
        let w = QuantMatrix::quantize(&values, rows, cols, p).unwrap();
        let gw = gpu.upload_matrix("w", &w).unwrap();
        let ids: Vec<u32> = (0..rows as u32).collect();
        let (gi, go) = (gpu.storage_u32("ids", &ids).unwrap(), gpu.zeros("out", rows * cols).unwrap());
        let mut rec = lowbit::gpu::ops::Recorder::new(&gpu, None, 0);
        rec.embedding(&gw, &gi, &go, rows, 1.0);
        rec.submit();
        let got = pollster::block_on(gpu.read_f32(&go, rows * cols)).unwrap();
        let want = w.dequantize();
        let same = got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{p}: GPU layout decodes differently from the CPU blocks");
    }
}

#[test]
fn a_corrupt_layout_is_rejected_with_a_named_error() {
    let w = QuantMatrix::quantize(&[0.5; 64], 2, 32, Precision::Int4).unwrap();
    let mut l = w.gpu_layout();
    l.s.pop();
    assert!(matches!(QuantMatrix::from_gpu_layout(Precision::Int4, 2, 32, &l), Err(lowbit::Error::Shape(_))));
}

#[test]
fn the_sample_kernel_draws_what_the_cpu_sampler_draws() {
    // Many draws over logits with ties at the top-k cut, at several k, vocabulary sizes that are
    // not multiples of the workgroup, with and without the penalty, top-p and min-p.
    let Some(gpu) = common::gpu() else { return };
    let mut rng = lowbit::util::Rng::new(11);
    let (mut draws, mut differ) = (0, vec![]);
    for n in [300, 3001] {
        for k in [1, 2, 40, 256] {
            for variant in 0..8 {
                let (x, mut d) = selftest::sample_case(&mut rng, n, k);
                if variant % 2 == 1 {
                    d.recent.clear();
                }
                if variant % 4 >= 2 {
                    (d.top_p, d.min_p) = (1.0, 0.0);
                }
                if variant >= 4 && k > 1 {
                    d.temperature = 1.7;
                }
                let words = lowbit::gpu::ops::draw_words(&d);
                let (gx, go, gd) = (gpu.storage_f32("x", &x).unwrap(), gpu.zeros("out", 1).unwrap(), gpu.storage_u32("draw", &words).unwrap());
                let mut rec = lowbit::gpu::ops::Recorder::new(&gpu, None, 0);
                rec.sample(&gx, &go, &gd, n, &d);
                rec.submit();
                let got = pollster::block_on(gpu.read_u32(&go, 1)).unwrap()[0];
                let want = lowbit::sampler::sample(&x, &d);
                draws += 1;
                if got != want {
                    differ.push(format!("n {n} k {k} variant {variant}: gpu {got} cpu {want}"));
                }
            }
        }
    }
    assert!(differ.is_empty(), "{} of {draws} draws differ: {differ:?}", differ.len());
}
