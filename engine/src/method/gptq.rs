//! GPTQ (Frantar et al., 2022; `IST-DASLab/gptq`, `gptq.py`): a matrix's columns are quantized
//! in order, and each column's rounding error is fed forward onto the columns not yet quantized
//! so that the layer's output on the calibration inputs changes least. With `H = XᵀX/n`
//! (damped) and `U` the upper Cholesky factor of `H⁻¹` (`H⁻¹ = UᵀU`), column `j`'s error
//! `e = (w_j − ŵ_j) / U_jj` updates `w_k −= e · U_jk` for every `k > j`.
//!
//! Groups are lowbit's 32-weight blocks: a block's scale (and min) are chosen when its first
//! column comes up, from the weights as the earlier errors left them, by the importance-weighted
//! search ([`super::search`]). Rows are independent given `U`: tiles of rows run in parallel,
//! each streaming `U` once.

use half::f16;

use super::{par_map, search, Inputs};
use crate::layout::{AsymBlock, BlockInt2, BlockInt3, BlockInt4, BlockInt8, Blocks, BLOCK};
use crate::{Error, Precision, QuantMatrix, Result};

/// Damping added to `H`'s diagonal, as a fraction of its mean (GPTQ's `percdamp`).
const DAMP: f64 = 0.01;
/// Rows quantized together (they share each streamed row of `U`).
const TILE: usize = 16;

/// `U`, the upper Cholesky factor of the damped `H⁻¹`, for one site's inputs.
#[derive(Debug)]
pub struct Factor {
    pub cols: usize,
    /// `[cols, cols]` row-major; entries below the diagonal unused.
    pub u: Vec<f32>,
    /// Columns no calibration token activated: their weights are irrelevant and set to 0.
    pub dead: Vec<bool>,
}

/// `Σ a[i]·b[i]` in four independent lanes (a single running sum cannot be vectorized).
fn dot64(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..4 {
            acc[i] += x[i] * y[i];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// Lower Cholesky factor of the symmetric `a [k, k]`; `None` if it is not positive definite.
fn cholesky(a: &[f64], k: usize) -> Option<Vec<f64>> {
    let mut l = vec![0f64; k * k];
    for i in 0..k {
        for j in 0..=i {
            let s = a[i * k + j] - dot64(&l[i * k..i * k + j], &l[j * k..j * k + j]);
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * k + i] = s.sqrt();
            } else {
                l[i * k + j] = s / l[j * k + j];
            }
        }
    }
    Some(l)
}

impl Factor {
    pub fn of(inputs: &Inputs) -> Result<Factor> {
        Self::of_gram(inputs.gram(), inputs.cols)
    }

    /// From `H [k, k]` directly.
    pub fn of_gram(mut h: Vec<f64>, k: usize) -> Result<Factor> {
        let dead: Vec<bool> = (0..k).map(|j| h[j * k + j] <= 0.0).collect();
        for j in (0..k).filter(|&j| dead[j]) {
            h[j * k + j] = 1.0;
        }
        let mean = (0..k).map(|j| h[j * k + j]).sum::<f64>() / k.max(1) as f64;
        // H = V Vᵀ with V upper is the Cholesky factor of H with rows and columns reversed;
        // then H⁻¹ = V⁻ᵀ V⁻¹, so U = V⁻¹: one factorisation and one triangular inverse.
        let mut damp = DAMP * mean;
        let l = loop {
            let rev: Vec<f64> = (0..k * k).map(|i| {
                let (r, c) = (k - 1 - i / k, k - 1 - i % k);
                h[r * k + c] + if r == c { damp } else { 0.0 }
            }).collect();
            if let Some(l) = cholesky(&rev, k) {
                break l;
            }
            damp *= 10.0;
            if damp > 1e6 * mean.max(1e-30) {
                return Err(Error::Shape("GPTQ: the calibration inputs' XᵀX is not positive definite".into()));
            }
        };
        // Column c of L⁻¹, rows c..k.
        let inv_cols = par_map(k, |c| {
            let mut x = vec![0f64; k - c];
            x[0] = 1.0 / l[c * k + c];
            for i in c + 1..k {
                let s = dot64(&l[i * k + c..i * k + i], &x[..i - c]);
                x[i - c] = -s / l[i * k + i];
            }
            x
        });
        let mut u = vec![0f32; k * k];
        for a in 0..k {
            for b in a..k {
                u[a * k + b] = inv_cols[k - 1 - b][b - a] as f32;
            }
        }
        Ok(Factor { cols: k, u, dead })
    }
}

/// How a block's values are rounded once its scale (and min) are fixed.
#[derive(Clone, Copy)]
enum Grid {
    /// `d·q + m`, `q` in `0..=levels` (INT4, INT3, INT2).
    Asym { d: f32, m: f32, levels: f32 },
    Int8 { d: f32 },
}

fn asym_grid<B: AsymBlock>(x: &[f32; BLOCK], w: &[f32; BLOCK]) -> Grid {
    let (d, m) = search::asym::<B>(x, w).dm();
    Grid::Asym { d: f16::from_bits(d).to_f32(), m: f16::from_bits(m).to_f32(), levels: B::LEVELS as f32 }
}

impl Grid {
    fn fit(p: Precision, x: &[f32; BLOCK], w: &[f32; BLOCK]) -> Grid {
        match p {
            Precision::Int8 | Precision::Fp16 => Grid::Int8 { d: f16::from_bits(search::int8(x, w).d).to_f32() },
            Precision::Int4 => asym_grid::<BlockInt4>(x, w),
            Precision::Int3 => asym_grid::<BlockInt3>(x, w),
            Precision::Int2 => asym_grid::<BlockInt2>(x, w),
        }
    }
    /// The level of `x` and the value it decodes to.
    fn round(self, x: f32) -> (f32, f32) {
        match self {
            Grid::Asym { d, m, levels } => {
                let q = if d > 0.0 { crate::layout::level((x - m) / d, 0.0, levels) } else { 0.0 };
                (q, d * q + m)
            }
            Grid::Int8 { d } => {
                let q = if d > 0.0 { crate::layout::level(x / d, -127.0, 127.0) } else { 0.0 };
                (q, d * q)
            }
        }
    }
}

/// A block from its grid and levels.
enum Block {
    Int8(BlockInt8),
    Int4(BlockInt4),
    Int3(BlockInt3),
    Int2(BlockInt2),
}

fn block(p: Precision, g: Grid, q: &[f32; BLOCK]) -> Block {
    match g {
        Grid::Asym { d, m, .. } => {
            let (d, m, codes) = (f16::from_f32(d).to_bits(), f16::from_f32(m).to_bits(), q.map(|v| v as u8));
            match p {
                Precision::Int3 => Block::Int3(BlockInt3::from_codes(d, m, &codes)),
                Precision::Int2 => Block::Int2(BlockInt2::from_codes(d, m, &codes)),
                _ => Block::Int4(BlockInt4::from_codes(d, m, &codes)),
            }
        }
        Grid::Int8 { d } => Block::Int8(BlockInt8 { d: f16::from_f32(d).to_bits(), qs: q.map(|v| v as i8) }),
    }
}

/// Rows `r0..r0 + n` quantized with error feedback: their blocks in order.
fn tile(values: &[f32], cols: usize, r0: usize, n: usize, p: Precision, f: &Factor, wb: &[[f32; BLOCK]]) -> Vec<Block> {
    let mut w: Vec<Vec<f32>> = (r0..r0 + n)
        .map(|r| values[r * cols..(r + 1) * cols].iter().zip(&f.dead).map(|(&v, &dead)| if dead { 0.0 } else { v }).collect())
        .collect();
    let nb = cols / BLOCK;
    let mut out: Vec<Vec<Block>> = (0..n).map(|_| Vec::with_capacity(nb)).collect();
    let mut err = vec![0f32; n];
    for b in 0..nb {
        let grids: Vec<Grid> = w.iter().map(|row| Grid::fit(p, row[b * BLOCK..(b + 1) * BLOCK].try_into().unwrap_or(&[0.0; BLOCK]), &wb[b])).collect();
        let mut levels = vec![[0f32; BLOCK]; n];
        for i in 0..BLOCK {
            let j = b * BLOCK + i;
            let ujj = f.u[j * cols + j];
            for t in 0..n {
                let (q, deq) = grids[t].round(w[t][j]);
                levels[t][i] = q;
                err[t] = (w[t][j] - deq) / ujj;
            }
            let urow = &f.u[j * cols + j + 1..(j + 1) * cols];
            for t in 0..n {
                let e = err[t];
                for (wk, uk) in w[t][j + 1..].iter_mut().zip(urow) {
                    *wk -= e * uk;
                }
            }
        }
        for t in 0..n {
            out[t].push(block(p, grids[t], &levels[t]));
        }
    }
    out.into_iter().flatten().collect()
}

/// A row-major `[rows, cols]` matrix quantized by GPTQ at INT8 or INT4 (`cols` a multiple of
/// 32), blocks' scales chosen under the per-column `weights`.
pub fn quantize(values: &[f32], rows: usize, cols: usize, p: Precision, f: &Factor, weights: &[f32]) -> Result<QuantMatrix> {
    if cols % BLOCK != 0 || f.cols != cols || weights.len() != cols || values.len() != rows * cols || p == Precision::Fp16 {
        return Err(Error::Shape(format!("GPTQ: a {rows}x{cols} {p} matrix with a factor of {} columns", f.cols)));
    }
    let wb = super::block_weights(weights, cols);
    let tiles = par_map(rows.div_ceil(TILE), |i| tile(values, cols, i * TILE, TILE.min(rows - i * TILE), p, f, &wb));
    let all = tiles.into_iter().flatten();
    let blocks = match p {
        Precision::Int4 => Blocks::Int4(all.filter_map(|b| if let Block::Int4(b) = b { Some(b) } else { None }).collect()),
        Precision::Int3 => Blocks::Int3(all.filter_map(|b| if let Block::Int3(b) = b { Some(b) } else { None }).collect()),
        Precision::Int2 => Blocks::Int2(all.filter_map(|b| if let Block::Int2(b) = b { Some(b) } else { None }).collect()),
        _ => Blocks::Int8(all.filter_map(|b| if let Block::Int8(b) = b { Some(b) } else { None }).collect()),
    };
    Ok(QuantMatrix { rows, cols, blocks })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::Rng;

    /// Correlated inputs `x [n, k]`: a few shared factors plus noise, with uneven column scales.
    fn inputs(n: usize, k: usize, rng: &mut Rng) -> Inputs {
        sample(n, k, &Rng::new(1234).normals(4 * k, 1.0), rng)
    }

    /// `n` inputs mixing 4 shared factors through `mix [4, k]`.
    fn sample(n: usize, k: usize, mix: &[f32], rng: &mut Rng) -> Inputs {
        let f: Vec<f32> = rng.normals(n * 4, 1.0);
        let scale: Vec<f32> = (0..k).map(|j| 0.2 + (j % 7) as f32 * 0.5).collect();
        let mut x = vec![0f32; n * k];
        for t in 0..n {
            for j in 0..k {
                let s: f32 = (0..4).map(|a| f[t * 4 + a] * mix[a * k + j]).sum();
                x[t * k + j] = (s + 0.3 * rng.normal()) * scale[j];
            }
        }
        Inputs { cols: k, x }
    }

    /// `Σ_t ‖W x_t − Ŵ x_t‖²` over the inputs.
    fn output_error(w: &[f32], q: &QuantMatrix, inp: &Inputs) -> f64 {
        let wq = q.dequantize();
        let k = inp.cols;
        let mut e = 0f64;
        for x in inp.x.chunks_exact(k) {
            for r in 0..q.rows {
                let d: f32 = (0..k).map(|j| (w[r * k + j] - wq[r * k + j]) * x[j]).sum();
                e += (d as f64).powi(2);
            }
        }
        e
    }

    #[test]
    fn factor_is_the_upper_cholesky_of_the_inverse() {
        let mut rng = Rng::new(5);
        let inp = inputs(200, 37, &mut rng);
        let f = Factor::of(&inp).unwrap();
        let k = 37;
        let mut h = inp.gram();
        let mean = (0..k).map(|j| h[j * k + j]).sum::<f64>() / k as f64;
        for j in 0..k {
            h[j * k + j] += DAMP * mean;
        }
        // (UᵀU) H = I.
        for i in 0..k {
            for j in 0..k {
                let uu = |a: usize, b: usize| (0..k).map(|c| f.u[c * k + a] as f64 * f.u[c * k + b] as f64 * ((c <= a && c <= b) as u8 as f64)).sum::<f64>();
                let v: f64 = (0..k).map(|c| uu(i, c) * h[c * k + j]).sum();
                assert!((v - (i == j) as u8 as f64).abs() < 1e-3, "({i},{j}) = {v}");
            }
        }
    }

    #[test]
    fn gptq_beats_rtn_and_the_weighted_search_on_the_layer_output() {
        let mut rng = Rng::new(9);
        let (rows, k) = (21, 96);
        let inp = inputs(300, k, &mut rng);
        let w = rng.normals(rows * k, 0.05);
        let imp = inp.importance();
        let f = Factor::of(&inp).unwrap();
        for p in [Precision::Int4, Precision::Int8, Precision::Int3, Precision::Int2] {
            let rtn = output_error(&w, &QuantMatrix::quantize(&w, rows, k, p).unwrap(), &inp);
            let calib = super::super::Calibration::from_inputs([(super::super::Site::Qkv(0), inp.clone())].into(), false);
            let im = super::super::quantize(&w, rows, k, p, super::super::Method::Imatrix, crate::model::Mat::Q(0), Some(&calib)).unwrap();
            let im = output_error(&w, &im, &inp);
            let g = output_error(&w, &quantize(&w, rows, k, p, &f, &imp).unwrap(), &inp);
            assert!(im < rtn, "{p}: imatrix {im} vs rtn {rtn}");
            assert!(g < 0.8 * im, "{p}: gptq {g} vs imatrix {im} vs rtn {rtn}");
            // On fresh inputs from the same distribution too (it must not merely fit the sample).
            let fresh = inputs(300, k, &mut Rng::new(77));
            let gq = quantize(&w, rows, k, p, &f, &imp).unwrap();
            let imq = super::super::quantize(&w, rows, k, p, super::super::Method::Imatrix, crate::model::Mat::Q(0), Some(&calib)).unwrap();
            let (g2, im2) = (output_error(&w, &gq, &fresh), output_error(&w, &imq, &fresh));
            eprintln!("{p}: fit rtn {rtn:.4e} im {im:.4e} gptq {g:.4e}; fresh im {im2:.4e} gptq {g2:.4e}");
            assert!(g2 < im2, "{p}: on fresh inputs gptq {g2} vs imatrix {im2}");
        }
    }
}
