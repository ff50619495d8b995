//! Axis tick labels that read alike on every chart.

/// The spacing of the ticks plotters draws on `lo..hi` when asked for at most `n`: the finest of
/// 1, 2 and 5 times a power of ten that gives no more than `n` ticks.
pub(super) fn tick_step(lo: f64, hi: f64, n: usize) -> f64 {
    let range = (hi - lo).abs();
    if !(range > 0.0) || !range.is_finite() {
        return 1.0;
    }
    let top = range.log10().floor() as i32 + 1;
    let count = |s: f64| (hi.max(lo) / s).floor() - (lo.min(hi) / s).ceil() + 1.0;
    let mut best = 10f64.powi(top);
    for e in (top - 4..=top).rev() {
        for m in [5.0, 2.0, 1.0] {
            let s = m * 10f64.powi(e);
            if count(s) <= n as f64 && s < best {
                best = s;
            }
        }
    }
    best
}

/// Axis labels that read alike on every chart: as many decimals as the tick spacing needs, k and
/// M for large values, powers of ten only for spacings below 0.001, and exactly `0` at zero
/// (not `1.7e-18` or `-2.8e-17` from floating-point tick arithmetic).
pub fn ticks(lo: f64, hi: f64, n: usize) -> impl Fn(&f64) -> String {
    let step = tick_step(lo, hi, n);
    let mag = lo.abs().max(hi.abs());
    move |v: &f64| tick(*v, step, mag)
}

fn tick(v: f64, step: f64, mag: f64) -> String {
    if v.abs() < step * 1e-3 {
        return "0".into();
    }
    let (v, step, suffix) = if mag >= 1e6 {
        (v / 1e6, step / 1e6, "M")
    } else if mag >= 1e4 {
        (v / 1e3, step / 1e3, "k")
    } else {
        (v, step, "")
    };
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    if decimals > 3 {
        format!("{v:.1e}")
    } else {
        format!("{v:.decimals$}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(lo: f64, hi: f64, n: usize, at: &[f64]) -> Vec<String> {
        let f = ticks(lo, hi, n);
        at.iter().map(|v| f(v)).collect()
    }

    #[test]
    fn tick_labels_are_plain_and_alike() {
        // Zero from floating-point tick arithmetic reads 0 (the inspector printed -2.8e-17).
        assert_eq!(labels(-0.25, 0.25, 5, &[-0.2, -0.1, -2.8e-17, 0.1, 0.2]), ["-0.2", "-0.1", "0", "0.1", "0.2"]);
        // Steps of 0.05 keep two decimals, so 0.05 and 0.10 do not both read 0.1.
        assert_eq!(tick_step(0.0, 0.115, 4), 0.05);
        assert_eq!(labels(0.0, 0.115, 4, &[0.0, 0.05, 0.1]), ["0", "0.05", "0.10"]);
        // Large values in k and M, small spacings as powers of ten.
        assert_eq!(labels(0.0, 690_000.0, 4, &[200_000.0, 400_000.0]), ["200k", "400k"]);
        assert_eq!(labels(0.0, 3.2e7, 4, &[1e7, 2e7]), ["10M", "20M"]);
        assert_eq!(labels(0.0, 0.0022, 4, &[1e-3, 2e-3]), ["0.001", "0.002"]);
        assert_eq!(labels(0.0, 0.0022, 5, &[5e-4, 1e-3, 1.5e-17]), ["5.0e-4", "1.0e-3", "0"]);
        assert_eq!(labels(0.0, 46.0, 4, &[20.0, 40.0]), ["20", "40"]);
        // An empty range does not loop or divide by zero.
        assert_eq!(tick_step(1.0, 1.0, 4), 1.0);
    }

    #[test]
    fn tick_step_never_gives_more_ticks_than_asked() {
        for (lo, hi) in [(0.0, 1.0), (0.0, 0.115), (-0.4, 0.4), (0.0, 598_745.0), (3.0, 7.5), (0.0, 2.3e-3)] {
            for n in 2..8 {
                let s = tick_step(lo, hi, n);
                let count = (hi / s).floor() - (lo / s).ceil() + 1.0;
                assert!(count <= n as f64 && count >= 1.0, "{lo}..{hi} n={n}: step {s} gives {count}");
                // And the next finer step of the 1-2-5 series would give too many.
                let finer = [s / 2.0, s / 2.5, s / 2.0].into_iter().find(|f| {
                    let m = f / 10f64.powf(f.log10().floor());
                    [1.0, 2.0, 5.0].iter().any(|x| (m - x).abs() < 1e-9)
                });
                if let Some(f) = finer {
                    assert!((hi / f).floor() - (lo / f).ceil() + 1.0 > n as f64, "{lo}..{hi} n={n}: {f} also fits");
                }
            }
        }
    }
}
