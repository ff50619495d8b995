//! ggml's block formats, what a GGUF file may store its tensors in (Q4_0 … Q6_K, IQ4_NL, F16, BF16),
//! and their decoders; not lowbit's own GPU layouts, which are in [`crate::layout`].
//!
//! One definition per format (candle's `GgmlType` in spirit): every format is a type implementing
//! [`Block`] with its size and its decoder, and the 32-weight integer formats also [`IntBlock`],
//! their decoding to integer quants that the CPU backend multiplies without dequantizing.
//! [`dequantize`] and the CPU backend's block loading both go through these, so each bit layout
//! is written once. Layouts as ggml-common.h defines them; the super-block ("K") formats hold 256
//! weights in sub-blocks of 16 or 32.

use half::{bf16, f16};

use crate::gguf::GgmlType;
use crate::{Error, Result};

/// One block format: `WEIGHTS` weights in `BYTES` bytes.
pub trait Block {
    const TYPE: GgmlType;
    const WEIGHTS: usize;
    const BYTES: usize;
    /// Decode one block (`BYTES` bytes) into `out` (`WEIGHTS` values).
    fn decode(b: &[u8], out: &mut [f32]);
}

/// A 32-weight block of integer quants with one scale and an optional minimum: weight
/// `i` is `d · q[i] + m`.
pub trait IntBlock: Block {
    /// Whether the format has a block minimum (else `m` is 0).
    const HAS_MIN: bool;
    /// The quants into `q`; returns `(d, m)`.
    fn ints(b: &[u8], q: &mut [i8; 32]) -> (f32, f32);
}

/// [`Block::decode`] for an [`IntBlock`]: `d · q + m`.
fn decode_ints<B: IntBlock>(b: &[u8], out: &mut [f32]) {
    let mut q = [0i8; 32];
    let (d, m) = B::ints(b, &mut q);
    for (o, &q) in out.iter_mut().zip(&q) {
        *o = d * q as f32 + m;
    }
}

/// [`Block`] for a 32-weight [`IntBlock`] format of `$bytes` bytes: decoded as `d · q + m`.
macro_rules! int_block {
    ($t:ident, $bytes:expr) => {
        impl Block for $t {
            const TYPE: GgmlType = GgmlType::$t;
            const WEIGHTS: usize = 32;
            const BYTES: usize = $bytes;
            fn decode(b: &[u8], out: &mut [f32]) {
                decode_ints::<Self>(b, out)
            }
        }
    };
}

fn half(b: &[u8], i: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[i], b[i + 1]])).to_f32()
}

/// Nibble `j` of 32 packed in 16 bytes the ggml way: low nibbles are weights 0..16, high 16..32.
fn nibble(qs: &[u8], j: usize) -> u8 {
    if j < 16 { qs[j] & 15 } else { qs[j - 16] >> 4 }
}

pub struct F32;
pub struct F16;
pub struct BF16;
/// `d` (f16), `qs[32]` (i8): `d · q`.
pub struct Q8_0;
/// `d` (f16), `qs[16]` (nibbles): `d · (q − 8)`.
pub struct Q4_0;
/// `d`, `m` (f16), `qs[16]`: `d · q + m`.
pub struct Q4_1;
/// `d` (f16), `qh` (u32: the 5th bits), `qs[16]`: `d · (q − 16)`.
pub struct Q5_0;
/// `d`, `m` (f16), `qh`, `qs[16]`: `d · q + m`.
pub struct Q5_1;
/// `d` (f16), `qs[16]`: `d · kvalues[q]`, a non-linear 4-bit grid.
pub struct IQ4NL;
/// 16 sub-blocks of 16: `scales[16]` (4-bit scale, 4-bit min), `qs[64]` (2 bits), `d`, `dmin`.
pub struct Q2K;
/// 16 sub-blocks of 16: `hmask[32]` (3rd bits), `qs[64]` (2 bits), `scales[12]` (6 bits, −32), `d`.
pub struct Q3K;
/// 8 sub-blocks of 32: `d`, `dmin`, `scales[12]` (6-bit scales and mins), `qs[128]` (4 bits).
pub struct Q4K;
/// 8 sub-blocks of 32: `d`, `dmin`, `scales[12]`, `qh[32]` (5th bits), `qs[128]` (4 bits).
pub struct Q5K;
/// 16 sub-blocks of 16: `ql[128]` (4 bits), `qh[64]` (2 bits), `scales[16]` (i8), `d`.
pub struct Q6K;

/// Weights per super-block.
const QK_K: usize = 256;

/// The 16 values of IQ4_NL's grid (`kvalues_iq4nl`).
const KVALUES_IQ4NL: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

impl Block for F32 {
    const TYPE: GgmlType = GgmlType::F32;
    const WEIGHTS: usize = 1;
    const BYTES: usize = 4;
    fn decode(b: &[u8], out: &mut [f32]) {
        out[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
}

impl Block for F16 {
    const TYPE: GgmlType = GgmlType::F16;
    const WEIGHTS: usize = 1;
    const BYTES: usize = 2;
    fn decode(b: &[u8], out: &mut [f32]) {
        out[0] = half(b, 0);
    }
}

impl Block for BF16 {
    const TYPE: GgmlType = GgmlType::BF16;
    const WEIGHTS: usize = 1;
    const BYTES: usize = 2;
    fn decode(b: &[u8], out: &mut [f32]) {
        out[0] = bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32();
    }
}

int_block!(Q8_0, 2 + 32);

impl IntBlock for Q8_0 {
    const HAS_MIN: bool = false;
    fn ints(b: &[u8], q: &mut [i8; 32]) -> (f32, f32) {
        for (q, &x) in q.iter_mut().zip(&b[2..34]) {
            *q = x as i8;
        }
        (half(b, 0), 0.0)
    }
}

int_block!(Q4_0, 2 + 16);

impl IntBlock for Q4_0 {
    const HAS_MIN: bool = false;
    fn ints(b: &[u8], q: &mut [i8; 32]) -> (f32, f32) {
        for (j, q) in q.iter_mut().enumerate() {
            *q = nibble(&b[2..18], j) as i8 - 8;
        }
        (half(b, 0), 0.0)
    }
}

int_block!(Q4_1, 2 + 2 + 16);

impl IntBlock for Q4_1 {
    const HAS_MIN: bool = true;
    fn ints(b: &[u8], q: &mut [i8; 32]) -> (f32, f32) {
        for (j, q) in q.iter_mut().enumerate() {
            *q = nibble(&b[4..20], j) as i8;
        }
        (half(b, 0), half(b, 2))
    }
}

/// The 5-bit quants of Q5_0/Q5_1: nibbles of `qs` with the 5th bit `j` of `qh`.
fn five_bits(qh: &[u8], qs: &[u8], q: &mut [i8; 32], offset: i8) {
    let qh = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    for (j, q) in q.iter_mut().enumerate() {
        *q = (nibble(qs, j) | (((qh >> j) & 1) as u8) << 4) as i8 - offset;
    }
}

int_block!(Q5_0, 2 + 4 + 16);

impl IntBlock for Q5_0 {
    const HAS_MIN: bool = false;
    fn ints(b: &[u8], q: &mut [i8; 32]) -> (f32, f32) {
        five_bits(&b[2..6], &b[6..22], q, 16);
        (half(b, 0), 0.0)
    }
}

int_block!(Q5_1, 2 + 2 + 4 + 16);

impl IntBlock for Q5_1 {
    const HAS_MIN: bool = true;
    fn ints(b: &[u8], q: &mut [i8; 32]) -> (f32, f32) {
        five_bits(&b[4..8], &b[8..24], q, 0);
        (half(b, 0), half(b, 2))
    }
}

int_block!(IQ4NL, 2 + 16);

impl IntBlock for IQ4NL {
    const HAS_MIN: bool = false;
    fn ints(b: &[u8], q: &mut [i8; 32]) -> (f32, f32) {
        for (j, q) in q.iter_mut().enumerate() {
            *q = KVALUES_IQ4NL[nibble(&b[2..18], j) as usize];
        }
        (half(b, 0), 0.0)
    }
}

impl Block for Q2K {
    const TYPE: GgmlType = GgmlType::Q2K;
    const WEIGHTS: usize = QK_K;
    const BYTES: usize = 16 + 64 + 2 + 2;
    fn decode(b: &[u8], out: &mut [f32]) {
        let (scales, qs) = (&b[0..16], &b[16..80]);
        let (d, dmin) = (half(b, 80), half(b, 82));
        // Two halves of 128 weights, each 32 bytes of qs read four times at shifts 0, 2, 4, 6;
        // each read is two sub-blocks of 16 (bytes 0..16 and 16..32).
        for (n, out) in out.chunks_exact_mut(128).enumerate() {
            let q = &qs[32 * n..32 * n + 32];
            for (k, out) in out.chunks_exact_mut(16).enumerate() {
                let (shift, half16) = (2 * (k / 2), k % 2);
                let sc = scales[8 * n + k];
                let (dl, ml) = (d * (sc & 15) as f32, dmin * (sc >> 4) as f32);
                for (l, o) in out.iter_mut().enumerate() {
                    *o = dl * ((q[16 * half16 + l] >> shift) & 3) as f32 - ml;
                }
            }
        }
    }
}

/// Q3_K's 16 six-bit scales, unpacked from 12 bytes (low 4 bits in bytes 0..8, high 2 bits in
/// bytes 8..12), with their offset of 32 taken away.
fn q3k_scales(s: &[u8]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        let low = if i < 8 { s[i] & 15 } else { s[i - 8] >> 4 };
        let high = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
        *o = (low | high << 4) as i8 - 32;
    }
    out
}

impl Block for Q3K {
    const TYPE: GgmlType = GgmlType::Q3K;
    const WEIGHTS: usize = QK_K;
    const BYTES: usize = 32 + 64 + 12 + 2;
    fn decode(b: &[u8], out: &mut [f32]) {
        let (hmask, qs, scales, d) = (&b[0..32], &b[32..96], q3k_scales(&b[96..108]), half(b, 108));
        // As Q2_K's walk; the third bit of weight l (of each 32) is bit `m` of hmask[l], where m
        // counts the four shifts of both halves (0..8), and a clear bit means −4.
        for (n, out) in out.chunks_exact_mut(128).enumerate() {
            let q = &qs[32 * n..32 * n + 32];
            for (k, out) in out.chunks_exact_mut(16).enumerate() {
                let (shift, half16, bit) = (2 * (k / 2), k % 2, 4 * n + k / 2);
                let dl = d * scales[8 * n + k] as f32;
                for (l, o) in out.iter_mut().enumerate() {
                    let j = 16 * half16 + l;
                    let low = ((q[j] >> shift) & 3) as i8;
                    let high = if hmask[j] >> bit & 1 == 1 { 0 } else { 4 };
                    *o = dl * (low - high) as f32;
                }
            }
        }
    }
}

/// Scale and min `j` (0..8) of Q4_K/Q5_K's 12 scale bytes (ggml's `get_scale_min_k4`).
pub(crate) fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 15) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

impl Block for Q4K {
    const TYPE: GgmlType = GgmlType::Q4K;
    const WEIGHTS: usize = QK_K;
    const BYTES: usize = 2 + 2 + 12 + 128;
    fn decode(b: &[u8], out: &mut [f32]) {
        let (d, dmin, scales, qs) = (half(b, 0), half(b, 2), &b[4..16], &b[16..144]);
        // Four groups of 64 weights: the low nibbles of 32 bytes, then their high nibbles.
        for (j, out) in out.chunks_exact_mut(32).enumerate() {
            let (sc, m) = scale_min_k4(j, scales);
            let (d1, m1) = (d * sc as f32, dmin * m as f32);
            let q = &qs[32 * (j / 2)..32 * (j / 2) + 32];
            for (o, &q) in out.iter_mut().zip(q) {
                *o = d1 * (if j % 2 == 0 { q & 15 } else { q >> 4 }) as f32 - m1;
            }
        }
    }
}

impl Block for Q5K {
    const TYPE: GgmlType = GgmlType::Q5K;
    const WEIGHTS: usize = QK_K;
    const BYTES: usize = 2 + 2 + 12 + 32 + 128;
    fn decode(b: &[u8], out: &mut [f32]) {
        let (d, dmin, scales, qh, qs) = (half(b, 0), half(b, 2), &b[4..16], &b[16..48], &b[48..176]);
        // As Q4_K, with the 5th bit of weight l of sub-block j in bit j of qh[l].
        for (j, out) in out.chunks_exact_mut(32).enumerate() {
            let (sc, m) = scale_min_k4(j, scales);
            let (d1, m1) = (d * sc as f32, dmin * m as f32);
            let q = &qs[32 * (j / 2)..32 * (j / 2) + 32];
            for (l, o) in out.iter_mut().enumerate() {
                let low = if j % 2 == 0 { q[l] & 15 } else { q[l] >> 4 };
                let high = (qh[l] >> j) & 1;
                *o = d1 * (low | high << 4) as f32 - m1;
            }
        }
    }
}

impl Block for Q6K {
    const TYPE: GgmlType = GgmlType::Q6K;
    const WEIGHTS: usize = QK_K;
    const BYTES: usize = 128 + 64 + 16 + 2;
    fn decode(b: &[u8], out: &mut [f32]) {
        let (ql, qh, scales, d) = (&b[0..128], &b[128..192], &b[192..208], half(b, 208));
        // Two halves of 128 weights (64 bytes of ql, 32 of qh, 8 scales each); in a half, weight
        // 32·k + l takes the low (k even) or high (k odd) nibble of ql[l + 32·(k % 2)]… as ggml.
        for (n, out) in out.chunks_exact_mut(128).enumerate() {
            let (ql, qh, sc) = (&ql[64 * n..64 * n + 64], &qh[32 * n..32 * n + 32], &scales[8 * n..8 * n + 8]);
            for l in 0..32 {
                let is = l / 16;
                let q = [
                    (ql[l] & 15) | ((qh[l] & 3) << 4),
                    (ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4),
                    (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                    (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4),
                ];
                for (k, &q) in q.iter().enumerate() {
                    out[32 * k + l] = d * (sc[is + 2 * k] as i8) as f32 * (q as i8 - 32) as f32;
                }
            }
        }
    }
}

/// Runs `$body` with `$B` the [`Block`] type of `$t`, or `$other` for a type without a decoder.
macro_rules! with_block {
    ($t:expr, $B:ident => $body:expr, $other:expr) => {
        match $t {
            GgmlType::F32 => { type $B = F32; $body }
            GgmlType::F16 => { type $B = F16; $body }
            GgmlType::BF16 => { type $B = BF16; $body }
            GgmlType::Q8_0 => { type $B = Q8_0; $body }
            GgmlType::Q4_0 => { type $B = Q4_0; $body }
            GgmlType::Q4_1 => { type $B = Q4_1; $body }
            GgmlType::Q5_0 => { type $B = Q5_0; $body }
            GgmlType::Q5_1 => { type $B = Q5_1; $body }
            GgmlType::IQ4NL => { type $B = IQ4NL; $body }
            GgmlType::Q2K => { type $B = Q2K; $body }
            GgmlType::Q3K => { type $B = Q3K; $body }
            GgmlType::Q4K => { type $B = Q4K; $body }
            GgmlType::Q5K => { type $B = Q5K; $body }
            GgmlType::Q6K => { type $B = Q6K; $body }
            GgmlType::Q8_1 | GgmlType::Q8K => $other,
        }
    };
}

/// Whether lowbit can decode `t`.
pub fn decodes(t: GgmlType) -> bool {
    with_block!(t, B => B::WEIGHTS > 0, false)
}

/// Dequantize whole blocks of `t` to f32.
pub fn dequantize(t: GgmlType, data: &[u8]) -> Result<Vec<f32>> {
    fn all<B: Block>(data: &[u8]) -> Result<Vec<f32>> {
        if data.len() % B::BYTES != 0 {
            return Err(Error::Malformed(format!("{} data of {} bytes is not whole blocks", B::TYPE.name(), data.len())));
        }
        let mut out = vec![0f32; data.len() / B::BYTES * B::WEIGHTS];
        for (b, o) in data.chunks_exact(B::BYTES).zip(out.chunks_exact_mut(B::WEIGHTS)) {
            B::decode(b, o);
        }
        Ok(out)
    }
    with_block!(t, B => all::<B>(data), Err(Error::UnsupportedTensorType(t.name().to_string())))
}

/// Whole 32-weight integer blocks of `t` as quants, scales and (when the format has them) mins;
/// `None` for other formats.
#[allow(clippy::type_complexity)]
pub fn integer_blocks(t: GgmlType, data: &[u8]) -> Option<(Vec<i8>, Vec<f32>, Option<Vec<f32>>)> {
    fn all<B: IntBlock>(data: &[u8]) -> (Vec<i8>, Vec<f32>, Option<Vec<f32>>) {
        let n = data.len() / B::BYTES;
        let (mut q, mut d, mut m) = (Vec::with_capacity(n * 32), Vec::with_capacity(n), Vec::new());
        let mut block = [0i8; 32];
        for b in data.chunks_exact(B::BYTES) {
            let (scale, min) = B::ints(b, &mut block);
            q.extend_from_slice(&block);
            d.push(scale);
            if B::HAS_MIN {
                m.push(min);
            }
        }
        (q, d, B::HAS_MIN.then_some(m))
    }
    match t {
        GgmlType::Q8_0 => Some(all::<Q8_0>(data)),
        GgmlType::Q4_0 => Some(all::<Q4_0>(data)),
        GgmlType::Q4_1 => Some(all::<Q4_1>(data)),
        GgmlType::Q5_0 => Some(all::<Q5_0>(data)),
        GgmlType::Q5_1 => Some(all::<Q5_1>(data)),
        GgmlType::IQ4NL => Some(all::<IQ4NL>(data)),
        _ => None,
    }
}

/// (weights per block, bytes per block) of `t`, as ggml-common.h defines them.
pub fn block_size(t: GgmlType) -> (usize, usize) {
    match t {
        GgmlType::Q8_1 => (32, 36),
        GgmlType::Q8K => (QK_K, 4 + QK_K + QK_K / 16 * 2),
        _ => with_block!(t, B => (B::WEIGHTS, B::BYTES), unreachable!()),
    }
}

// The sizes ggml-common.h asserts (`static_assert(sizeof(block_q4_K) == …)`).
const _: () = {
    assert!(Q8_0::BYTES == 34 && Q4_0::BYTES == 18 && Q4_1::BYTES == 20 && Q5_0::BYTES == 22 && Q5_1::BYTES == 24);
    assert!(IQ4NL::BYTES == 18);
    assert!(Q2K::BYTES == 2 * 2 + QK_K / 16 + QK_K / 4);
    assert!(Q3K::BYTES == 2 + QK_K / 4 + QK_K / 8 + 12);
    assert!(Q4K::BYTES == 2 * 2 + 12 + QK_K / 2);
    assert!(Q5K::BYTES == 2 * 2 + 12 + QK_K / 2 + QK_K / 8);
    assert!(Q6K::BYTES == 2 + QK_K / 16 + 3 * QK_K / 4);
};

#[cfg(test)]
mod tests {
    use super::*;

    fn h(x: f32) -> [u8; 2] {
        f16::from_f32(x).to_bits().to_le_bytes()
    }

    fn decode<B: Block>(b: &[u8]) -> Vec<f32> {
        assert_eq!(b.len(), B::BYTES);
        dequantize(B::TYPE, b).unwrap()
    }

    #[test]
    fn legacy_blocks_decode_their_known_values() {
        // Q8_0: d = 0.5, q = -3 at 0, 100 at 31.
        let mut b = [0u8; 34];
        b[..2].copy_from_slice(&h(0.5));
        b[2] = (-3i8) as u8;
        b[33] = 100;
        let w = decode::<Q8_0>(&b);
        assert_eq!((w[0], w[1], w[31]), (-1.5, 0.0, 50.0));
        // Q4_0: byte j holds weight j (low nibble) and j + 16 (high); q − 8.
        let mut b = [0u8; 18];
        b[..2].copy_from_slice(&h(2.0));
        b[2] = 0xF1;
        let w = decode::<Q4_0>(&b);
        assert_eq!((w[0], w[16], w[1]), (-14.0, 14.0, -16.0));
        // Q4_1: d · q + m.
        let mut b = [0u8; 20];
        b[..2].copy_from_slice(&h(0.25));
        b[2..4].copy_from_slice(&h(-1.0));
        b[4 + 3] = 0x4C;
        let w = decode::<Q4_1>(&b);
        assert_eq!((w[3], w[19], w[0]), (2.0, 0.0, -1.0));
        // Q5_0: the 5th bit of weight j is bit j of qh; q − 16.
        let mut b = [0u8; 22];
        b[..2].copy_from_slice(&h(1.0));
        b[2..6].copy_from_slice(&(1u32 << 20 | 1).to_le_bytes());
        b[6 + 4] = 0x73;
        let w = decode::<Q5_0>(&b);
        assert_eq!((w[0], w[4], w[20], w[5]), (0.0, -13.0, 7.0, -16.0));
        // Q5_1: d · q + m, q up to 31.
        let mut b = [0u8; 24];
        b[..2].copy_from_slice(&h(1.0));
        b[2..4].copy_from_slice(&h(0.5));
        b[4..8].copy_from_slice(&(1u32 << 31).to_le_bytes());
        b[8 + 15] = 0xF0;
        let w = decode::<Q5_1>(&b);
        assert_eq!((w[31], w[15]), (31.5, 0.5));
    }

    #[test]
    fn iq4_nl_maps_nibbles_through_its_grid() {
        let mut b = [0u8; 18];
        b[..2].copy_from_slice(&h(0.5));
        b[2] = 0xF0;
        let w = decode::<IQ4NL>(&b);
        assert_eq!((w[0], w[16], w[1]), (-63.5, 56.5, -63.5));
    }

    #[test]
    fn bf16_and_f16_are_one_value_per_block() {
        assert_eq!(dequantize(GgmlType::BF16, &[0x80, 0x3F, 0x00, 0xC0]).unwrap(), [1.0, -2.0]);
        assert_eq!(dequantize(GgmlType::F16, &h(-0.25)).unwrap(), [-0.25]);
    }

    #[test]
    fn q2_k_walks_four_shifts_of_two_halves() {
        let mut b = [0u8; 84];
        // Sub-block 0: scale 3, min 1; sub-block 15 (second half, shift 6, bytes 16..32): 2, 5.
        b[0] = 0x13;
        b[15] = 0x52;
        b[16] = 0b10; // qs[0]: weight 0 = 2 (shift 0)
        b[16 + 32 + 16 + 15] = 0b11 << 6; // second half, byte 31, shift 6: weight 128 + 112 + 15
        b[80..82].copy_from_slice(&h(0.5));
        b[82..84].copy_from_slice(&h(0.25));
        let w = decode::<Q2K>(&b);
        assert_eq!(w[0], 0.5 * 3.0 * 2.0 - 0.25);
        assert_eq!(w[255], 0.5 * 2.0 * 3.0 - 0.25 * 5.0);
        assert_eq!(w[1], -0.25);
    }

    #[test]
    fn q3_k_unpacks_six_bit_scales_and_the_high_bit_mask() {
        // Scales: scale i = low 4 bits (byte i, or high nibble of byte i − 8) | 2 bits of byte
        // 8 + i % 4 at shift 2·(i / 4), minus 32. Scale 0 = 33 (1 + 32), scale 13 = 32 + 16 + 1 − 32.
        let mut s = [0u8; 12];
        s[0] = 0x01;
        s[8] = 0b10;
        s[5] = 0x10 | 0x00; // scale 13's low bits (high nibble of byte 5) = 1
        s[9] = 0b11 << 6; // scale 13's high bits: byte 8 + 1, shift 6 = 3
        let sc = q3k_scales(&s);
        assert_eq!(sc[0], 1 + 32 - 32);
        assert_eq!(sc[13], (1 | 3 << 4) - 32);
        assert_eq!(sc[1], -32);
        // Weight 0: low bits 3, high bit set (so no −4) at scale 1 → 3·d; weight 1: bits 0, high
        // bit clear → −4·(−32)·d.
        let mut b = [0u8; 110];
        b[0] = 1; // hmask[0] bit 0
        b[32] = 3; // qs[0]
        b[96..108].copy_from_slice(&s);
        b[108..110].copy_from_slice(&h(0.5));
        let w = decode::<Q3K>(&b);
        assert_eq!(w[0], 0.5 * 1.0 * 3.0);
        assert_eq!(w[1], 0.5 * 1.0 * -4.0);
        assert_eq!(w[16], 0.5 * -32.0 * -4.0);
    }

    #[test]
    fn q4_k_and_q5_k_take_six_bit_scales_and_mins() {
        let mut scales = [0u8; 12];
        // Sub-block 0: scale 3, min 1. Sub-block 5: scale (byte 9 low | byte 1 top 2 bits << 4) =
        // 1 | 16, min (byte 9 high | byte 5 top 2 bits << 4) = 2 | 32.
        scales[0] = 3;
        scales[4] = 1;
        scales[9] = 0x21;
        scales[1] = 0b01 << 6;
        scales[5] = 0b10 << 6;
        assert_eq!(scale_min_k4(5, &scales), (17, 34));
        let mut b = [0u8; 144];
        b[..2].copy_from_slice(&h(2.0));
        b[2..4].copy_from_slice(&h(1.0));
        b[4..16].copy_from_slice(&scales);
        b[16] = 7; // sub-block 0 weight 0 (low nibble of qs[0])
        b[16 + 64 + 3] = 0x90; // sub-block 5 weight 3: high nibble of qs[64 + 3]
        let w = decode::<Q4K>(&b);
        assert_eq!(w[0], 2.0 * 3.0 * 7.0 - 1.0);
        assert_eq!(w[5 * 32 + 3], 2.0 * 17.0 * 9.0 - 34.0);
        // Q5_K: the same, and the 5th bit of sub-block j's weight l is bit j of qh[l].
        let mut b5 = [0u8; 176];
        b5[..16].copy_from_slice(&b[..16]);
        b5[16 + 3] = 1 << 5; // qh[3], bit 5
        b5[48 + 64 + 3] = 0x90;
        let w = decode::<Q5K>(&b5);
        assert_eq!(w[5 * 32 + 3], 2.0 * 17.0 * (9.0 + 16.0) - 34.0);
        assert_eq!(w[4 * 32 + 3], 2.0 * 0.0 - 0.0);
    }

    #[test]
    fn q6_k_joins_four_and_two_bits_with_signed_scales() {
        let mut b = [0u8; 210];
        b[0] = 0x5A; // ql[0]: weight 0 low 10, weight 64 high 5
        b[128] = 0b11_10_01_00; // qh[0]: weight 0 +0, weight 32 +16, weight 64 +32, weight 96 +48
        b[192] = 4; // scale of weights 0..16
        b[192 + 4] = (-6i8) as u8; // scale of weights 64..80
        b[192 + 2] = 1; // weights 32..48
        b[208..210].copy_from_slice(&h(0.5));
        let w = decode::<Q6K>(&b);
        assert_eq!(w[0], 0.5 * 4.0 * (10.0 - 32.0));
        assert_eq!(w[64], 0.5 * -6.0 * ((5 | 32) as f32 - 32.0));
        assert_eq!(w[32], 0.5 * 1.0 * (16.0 - 32.0));
        // Second half: ql[64 + 17 + 32] high nibble, qh[32 + 17] bits 6..8, scale 8 + 1 + 6.
        b[64 + 49] = 0x30;
        b[128 + 32 + 17] = 0b01 << 6;
        b[192 + 15] = 2;
        let w = decode::<Q6K>(&b);
        assert_eq!(w[128 + 96 + 17], 0.5 * 2.0 * ((3 | 16) as f32 - 32.0));
    }

    #[test]
    fn sizes_are_ggmls_and_unknown_blocks_are_refused() {
        assert_eq!(block_size(GgmlType::Q4K), (256, 144));
        assert_eq!(block_size(GgmlType::Q6K), (256, 210));
        assert_eq!(block_size(GgmlType::Q8K), (256, 292));
        assert!(!decodes(GgmlType::Q8_1) && decodes(GgmlType::Q3K));
        assert!(matches!(dequantize(GgmlType::Q8_1, &[0; 36]), Err(Error::UnsupportedTensorType(_))));
        assert!(matches!(dequantize(GgmlType::Q4K, &[0; 143]), Err(Error::Malformed(_))));
    }
}
