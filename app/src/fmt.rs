//! How the page writes sizes, counts and precisions.

use lowbit::Precision;

pub fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2} B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} M", n as f64 / 1e6),
        n => n.to_string(),
    }
}

/// `done / total` for a progress bar (0 while the total is unknown).
pub fn fraction(done: u64, total: u64) -> f64 {
    if total == 0 { 0.0 } else { (done as f64 / total as f64).min(1.0) }
}

pub fn precision_label(p: Precision) -> &'static str {
    match p {
        Precision::Fp16 => "FP16",
        Precision::Int8 => "INT8",
        Precision::Int4 => "INT4",
    }
}
