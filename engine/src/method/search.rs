//! Per-block scale (and minimum) by search: the `d` (and `m`) that minimise a block's weighted
//! squared error `Σ wᵢ (xᵢ − x̂ᵢ)²`, where `x̂ᵢ` is what the GPU decodes (f16 scale and minimum,
//! integers rounded to the nearest level under them). Read llama.cpp's `make_qkx2_quants` and
//! `make_qx_quants` (`ggml/src/ggml-quants.c`) for the idea: try a grid of scales around the
//! min/max one, fit the scale (and min) to each grid's integers by weighted least squares,
//! keep the best after rounding to f16, then re-assign and re-fit until nothing improves.
//!
//! The weights are 1 for the data-free `search` method, and each column's mean squared
//! activation (the diagonal of `XᵀX`) for `imatrix`: then the error is the block's expected
//! contribution to the layer's output error, ignoring correlations between columns (GPTQ keeps
//! those: [`super::gptq`]).

use half::f16;

use crate::layout::{level, AsymBlock, BlockInt8, BLOCK};

/// Candidate inverse scales around the min/max one: `(levels + STEP_LO + STEP·i) / range`.
const STEPS: i32 = 24;
const STEP_LO: f32 = -1.2;
const STEP: f32 = 0.1;
/// Re-assign / re-fit rounds after the grid.
const REFITS: usize = 4;

fn f16r(v: f32) -> f32 {
    f16::from_f32(v).to_f32()
}

/// An asymmetric fit `x̂ = d·q + m`, `q` in `0..=levels`, with `d` and `m` already rounded to f16.
#[derive(Clone, Copy, Debug)]
struct Affine {
    d: f32,
    m: f32,
    levels: f32,
}

impl Affine {
    fn level(&self, x: f32) -> f32 {
        if self.d > 0.0 { level((x - self.m) / self.d, 0.0, self.levels) } else { 0.0 }
    }
    fn error(&self, x: &[f32; BLOCK], w: &[f32; BLOCK]) -> f64 {
        x.iter().zip(w).map(|(&x, &w)| {
            let e = (self.d * self.level(x) + self.m - x) as f64;
            w as f64 * e * e
        }).sum()
    }
    fn rounded(d: f32, m: f32, levels: f32) -> Affine {
        Affine { d: f16r(d.max(0.0)), m: f16r(m), levels }
    }
}

/// Weighted least squares `min Σ wᵢ (d·qᵢ + m − xᵢ)²` for fixed levels `q`; `None` when the
/// levels are all equal (then only `m` is determined).
fn fit_affine(x: &[f32; BLOCK], w: &[f32; BLOCK], q: &[f32; BLOCK]) -> Option<(f32, f32)> {
    let (mut sw, mut sq, mut sqq, mut sx, mut sqx) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for i in 0..BLOCK {
        let (wi, qi, xi) = (w[i] as f64, q[i] as f64, x[i] as f64);
        sw += wi;
        sq += wi * qi;
        sqq += wi * qi * qi;
        sx += wi * xi;
        sqx += wi * qi * xi;
    }
    let det = sw * sqq - sq * sq;
    if det <= 1e-12 * sw * sqq.max(1e-30) {
        return None;
    }
    let d = (sw * sqx - sq * sx) / det;
    let m = (sqq * sx - sq * sqx) / det;
    Some((d as f32, m as f32))
}

/// The asymmetric block (INT4, INT3, INT2) of `x` that minimises the `w`-weighted squared error
/// (never worse than its min/max block under the same weights).
pub fn asym<B: AsymBlock>(x: &[f32; BLOCK], w: &[f32; BLOCK]) -> B {
    let min = x.iter().fold(f32::INFINITY, |a, &v| a.min(v));
    let max = x.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
    let levels = B::LEVELS as f32;
    let rtn = B::quantize_minmax(x);
    let (d0, m0) = rtn.dm();
    let mut best = Affine { d: f16::from_bits(d0).to_f32(), m: f16::from_bits(m0).to_f32(), levels };
    let mut best_err = best.error(x, w);
    if max <= min || best_err == 0.0 {
        return rtn;
    }
    let try_fit = |q: &[f32; BLOCK], best: &mut Affine, best_err: &mut f64| -> bool {
        let Some((d, m)) = fit_affine(x, w, q) else { return false };
        let a = Affine::rounded(d, m, levels);
        let e = a.error(x, w);
        if e < *best_err {
            (*best, *best_err) = (a, e);
            true
        } else {
            false
        }
    };
    for i in 0..=STEPS {
        let iscale = (levels + STEP_LO + STEP * i as f32) / (max - min);
        let q = x.map(|v| level((v - min) * iscale, 0.0, levels));
        try_fit(&q, &mut best, &mut best_err);
    }
    for _ in 0..REFITS {
        let q = x.map(|v| best.level(v));
        if !try_fit(&q, &mut best, &mut best_err) {
            break;
        }
    }
    B::from_codes(f16::from_f32(best.d).to_bits(), f16::from_f32(best.m).to_bits(), &x.map(|v| best.level(v) as u8))
}

fn sym_level(d: f32, x: f32) -> f32 {
    if d > 0.0 { level(x / d, -127.0, 127.0) } else { 0.0 }
}

fn sym_error(d: f32, x: &[f32; BLOCK], w: &[f32; BLOCK]) -> f64 {
    x.iter().zip(w).map(|(&x, &w)| {
        let e = (d * sym_level(d, x) - x) as f64;
        w as f64 * e * e
    }).sum()
}

/// The INT8 block of `x` that minimises the `w`-weighted squared error (never worse than
/// [`BlockInt8::quantize`]'s absmax block under the same weights).
pub fn int8(x: &[f32; BLOCK], w: &[f32; BLOCK]) -> BlockInt8 {
    let rtn = BlockInt8::quantize(x);
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let mut best = f16::from_bits(rtn.d).to_f32();
    let mut best_err = sym_error(best, x, w);
    if amax == 0.0 || best_err == 0.0 {
        return rtn;
    }
    let consider = |q: [f32; BLOCK], best: &mut f32, best_err: &mut f64| -> bool {
        let (mut sxq, mut sqq) = (0f64, 0f64);
        for i in 0..BLOCK {
            sxq += (w[i] * x[i] * q[i]) as f64;
            sqq += (w[i] * q[i] * q[i]) as f64;
        }
        if sqq <= 0.0 {
            return false;
        }
        let d = f16r((sxq / sqq) as f32);
        let e = sym_error(d, x, w);
        if e < *best_err {
            (*best, *best_err) = (d, e);
            true
        } else {
            false
        }
    };
    for i in -10..=10 {
        let iscale = (127.0 + 0.1 * i as f32) / amax;
        consider(x.map(|v| level(v * iscale, -127.0, 127.0)), &mut best, &mut best_err);
    }
    for _ in 0..REFITS {
        if !consider(x.map(|v| sym_level(best, v)), &mut best, &mut best_err) {
            break;
        }
    }
    BlockInt8 { d: f16::from_f32(best).to_bits(), qs: x.map(|v| sym_level(best, v) as i8) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::BlockInt4;
    use crate::util::Rng;

    fn err4(b: &BlockInt4, x: &[f32; BLOCK], w: &[f32; BLOCK]) -> f64 {
        let mut y = [0f32; BLOCK];
        b.dequantize(&mut y);
        (0..BLOCK).map(|i| w[i] as f64 * ((y[i] - x[i]) as f64).powi(2)).sum()
    }

    fn err8(b: &BlockInt8, x: &[f32; BLOCK], w: &[f32; BLOCK]) -> f64 {
        let mut y = [0f32; BLOCK];
        b.dequantize(&mut y);
        (0..BLOCK).map(|i| w[i] as f64 * ((y[i] - x[i]) as f64).powi(2)).sum()
    }

    #[test]
    fn search_never_loses_to_min_max_and_usually_wins() {
        let mut rng = Rng::new(7);
        let (mut wins, mut total_rtn, mut total_search) = (0, 0f64, 0f64);
        for trial in 0..400 {
            let x: [f32; BLOCK] = std::array::from_fn(|_| rng.normal() * 0.02);
            // Uniform weights half the time, skewed "activation" weights the other half.
            let w: [f32; BLOCK] = std::array::from_fn(|_| if trial % 2 == 0 { 1.0 } else { (rng.normal() * 2.0).exp() });
            let (r, s) = (err4(&BlockInt4::quantize(&x), &x, &w), err4(&asym::<BlockInt4>(&x, &w), &x, &w));
            assert!(s <= r * (1.0 + 1e-9), "trial {trial}: search {s} > min/max {r}");
            wins += (s < r * 0.999) as usize;
            total_rtn += r;
            total_search += s;
            let (r8, s8) = (err8(&BlockInt8::quantize(&x), &x, &w), err8(&int8(&x, &w), &x, &w));
            assert!(s8 <= r8 * (1.0 + 1e-9), "trial {trial}: int8 search {s8} > absmax {r8}");
            let errn = |b: &dyn Fn(&mut [f32; BLOCK])| {
                let mut y = [0f32; BLOCK];
                b(&mut y);
                (0..BLOCK).map(|i| w[i] as f64 * ((y[i] - x[i]) as f64).powi(2)).sum::<f64>()
            };
            use crate::layout::{BlockInt2, BlockInt3};
            let (r3, s3) = (errn(&|y| BlockInt3::quantize_minmax(&x).dequantize_codes(y)), errn(&|y| asym::<BlockInt3>(&x, &w).dequantize_codes(y)));
            let (r2, s2) = (errn(&|y| BlockInt2::quantize_minmax(&x).dequantize_codes(y)), errn(&|y| asym::<BlockInt2>(&x, &w).dequantize_codes(y)));
            assert!(s3 <= r3 * (1.0 + 1e-9) && s2 <= r2 * (1.0 + 1e-9), "trial {trial}: int3 {s3} vs {r3}, int2 {s2} vs {r2}");
        }
        // Gaussian blocks: min/max wastes levels on the tails; the search finds a tighter grid.
        assert!(wins > 300, "search won only {wins} of 400 blocks");
        assert!(total_search < 0.8 * total_rtn, "search {total_search} vs min/max {total_rtn}");
    }

    #[test]
    fn weights_steer_the_error_to_the_columns_that_matter() {
        let mut rng = Rng::new(3);
        let x: [f32; BLOCK] = std::array::from_fn(|_| rng.normal());
        // Column 5 carries almost all the activation energy.
        let mut w = [1e-3f32; BLOCK];
        w[5] = 1.0;
        let y = asym::<BlockInt4>(&x, &w);
        let mut dq = [0f32; BLOCK];
        y.dequantize(&mut dq);
        let mut flat = [0f32; BLOCK];
        asym::<BlockInt4>(&x, &[1.0; BLOCK]).dequantize(&mut flat);
        assert!((dq[5] - x[5]).abs() <= (flat[5] - x[5]).abs() + 1e-6);
        assert!((dq[5] - x[5]).abs() < 1e-2 * x.iter().fold(0f32, |a, v| a.max(v.abs())), "{} vs {}", dq[5], x[5]);
    }

    #[test]
    fn constant_and_zero_blocks_are_exact() {
        let w = [1.0; BLOCK];
        for c in [0.0f32, 0.5, -3.0] {
            let x = [c; BLOCK];
            assert_eq!(err4(&asym::<BlockInt4>(&x, &w), &x, &w), err4(&BlockInt4::quantize(&x), &x, &w));
            assert_eq!(err8(&int8(&x, &w), &x, &w), err8(&BlockInt8::quantize(&x), &x, &w));
        }
    }
}
