//! lowbit's own formats: the FP16, INT8 and INT4 weight layouts it keeps on the GPU, and the KV
//! cache's formats; not the formats a GGUF file stores, which are in [`crate::ggml`].
//!
//! The one source of truth for the block layouts lowbit keeps on the GPU.
//!
//! Every format stores a weight matrix `[rows, cols]` row by row, each row cut into blocks of
//! [`BLOCK`] = 32 consecutive weights. A row whose length is not a multiple of 32 is padded with
//! zero weights up to the next block, so every kernel reads whole blocks.
//!
//! | precision | CPU block              | bytes / 32 weights | bits / weight |
//! |-----------|------------------------|--------------------|---------------|
//! | FP16      | [`BlockFp16`]          | 64                 | 16            |
//! | INT8      | [`BlockInt8`]          | 34                 | 8.5           |
//! | INT4      | [`BlockInt4`]          | 20                 | 5             |
//! | INT3      | [`BlockInt3`]          | 16                 | 4             |
//! | INT2      | [`BlockInt2`]          | 12                 | 3             |
//!
//! INT3 and INT2 are INT4's scheme with 8 and 4 levels (`w = d·q + m`): the bottom of the
//! ladder, where the lab shows quality falling off a cliff.
//!
//! **GPU layout** ([`GpuLayout`]): two `array<u32>` bindings per matrix.
//! `q` holds the quantized values of all blocks in order (row-major, block-major inside a row),
//! which is byte-for-byte the concatenation of the CPU blocks' value fields; `s` holds the per-block
//! scales as packed f16 (`unpack2x16float`), so no binding needs `shader-f16`.
//!
//! **Why INT4 is asymmetric (scale + min, like ggml's Q4_1).** Measured on the default model
//! (SmolLM2-135M-Instruct Q4_1, the first 64 rows of each of its 210 Q4_1 tensors; the
//! `real_rows_roundtrip` test): asymmetric INT4 reproduces the Q4_1 source exactly (relative RMS
//! error 0: the source's own scale and min survive the f16 round trip), while symmetric INT4
//! (`d·(q−8)`, one scale) loses 9.9e-2 — for 0.5 bit per weight less. On random N(0, 1) data the two
//! are close; real weight blocks are skewed, and most checkpoints people load are asymmetric.

use bytemuck::{Pod, Zeroable};
use half::f16;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Weights per block, for every format.
pub const BLOCK: usize = 32;

/// `v.round().clamp(lo, hi)` (ties away from zero) for integer bounds within ±2²³: the level a
/// quantizer assigns. `f32::round` is a call into the C library on x86-64 and in wasm (neither
/// has an instruction that rounds ties away from zero), and the searches call this for every
/// weight of every candidate scale. Clamping first gives the same level (rounding is monotone
/// and keeps integers); adding the float just below ½, signed, then truncating is exact there: a
/// fraction of ½ or more reaches the next integer (at the tie below 1 by rounding to even), a
/// smaller one stays short of it. A NaN gives 0.
#[inline]
pub fn level(v: f32, lo: f32, hi: f32) -> f32 {
    const JUST_BELOW_HALF: f32 = f32::from_bits(0x3eff_ffff);
    let c = v.clamp(lo, hi);
    (c + JUST_BELOW_HALF.copysign(c)) as i32 as f32
}

/// The GPU weight precisions the product switches between.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Fp16,
    Int8,
    Int4,
    Int3,
    Int2,
}

impl Precision {
    pub const ALL: [Precision; 5] = [Precision::Fp16, Precision::Int8, Precision::Int4, Precision::Int3, Precision::Int2];
    /// The precisions a run measures unless asked for the bottom of the ladder too.
    pub const COMMON: [Precision; 3] = [Precision::Fp16, Precision::Int8, Precision::Int4];

    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp16 => "fp16",
            Precision::Int8 => "int8",
            Precision::Int4 => "int4",
            Precision::Int3 => "int3",
            Precision::Int2 => "int2",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "fp16" | "f16" => Ok(Precision::Fp16),
            "int8" | "q8" => Ok(Precision::Int8),
            "int4" | "q4" => Ok(Precision::Int4),
            "int3" | "q3" => Ok(Precision::Int3),
            "int2" | "q2" => Ok(Precision::Int2),
            _ => Err(Error::UnknownPrecision(s.to_string())),
        }
    }

    /// Whether the format has integer kernels for 8-bit activations ([`Activations::Int8`]).
    pub fn int_dot(self) -> bool {
        matches!(self, Precision::Int8 | Precision::Int4)
    }

    /// Bytes one block of 32 weights takes (CPU block and GPU layout alike).
    pub fn block_bytes(self) -> usize {
        match self {
            Precision::Fp16 => std::mem::size_of::<BlockFp16>(),
            Precision::Int8 => std::mem::size_of::<BlockInt8>(),
            Precision::Int4 => std::mem::size_of::<BlockInt4>(),
            Precision::Int3 => std::mem::size_of::<BlockInt3>(),
            Precision::Int2 => std::mem::size_of::<BlockInt2>(),
        }
    }

    /// `u32` words one block's values take in the GPU `q` binding.
    pub fn block_words(self) -> usize {
        match self {
            Precision::Fp16 => 16,
            Precision::Int8 => 8,
            Precision::Int4 => 4,
            Precision::Int3 => 3,
            Precision::Int2 => 2,
        }
    }

    pub fn bits_per_weight(self) -> f64 {
        self.block_bytes() as f64 * 8.0 / BLOCK as f64
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// FP16 block: `h[i]` is weight `i` as IEEE-754 binary16 bits. GPU `q`: 16 `u32`, weight `2j`
/// in the low half of word `j`, weight `2j+1` in the high half. No scales.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq)]
pub struct BlockFp16 {
    pub h: [u16; BLOCK],
}

/// INT8 block, symmetric: `w[i] = d · qs[i]`, `d = max|w| / 127` stored as f16 bits,
/// `qs[i] = round(w[i] / d)` in `-127..=127`. GPU `q`: 8 `u32`, weight `4j+t` in byte `t`
/// (two's complement) of word `j`; GPU `s`: block `b`'s `d` in half `b & 1` of word `b >> 1`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq)]
pub struct BlockInt8 {
    pub d: u16,
    pub qs: [i8; BLOCK],
}

/// INT4 block, asymmetric: `w[i] = d · q[i] + m` with `q[i]` in `0..=15`, `m = min(w)` and
/// `d = (max(w) − min(w)) / 15`, both stored as f16 bits. Byte `qs[j]` holds `q[2j]` in bits 0..3
/// and `q[2j+1]` in bits 4..7. GPU `q`: 4 `u32` (the 16 bytes little-endian: weight `8j+t` in bits
/// `4t..4t+3` of word `j`); GPU `s`: one `u32` per block, `d` in the low half, `m` in the high half.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq)]
pub struct BlockInt4 {
    pub d: u16,
    pub m: u16,
    pub qs: [u8; BLOCK / 2],
}

/// INT3 block: `w[i] = d · q[i] + m`, `q[i]` in `0..=7`, `m = min(w)`, `d = (max − min) / 7`
/// (f16 bits). The codes in two planes: bits 0..1 of `q[i]` in bits `2(i % 4)` of `qs[i / 4]`
/// (bytes 0..8), bit 2 in bit `i % 8` of `qs[8 + i / 8]`. GPU `q`: 3 `u32` (the 12 bytes
/// little-endian: weight `16j + t`'s low bits at bits `2t` of word `j`, its high bit at bit `i` of
/// word 2); GPU `s`: as INT4.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq)]
pub struct BlockInt3 {
    pub d: u16,
    pub m: u16,
    pub qs: [u8; 12],
}

/// INT2 block: `w[i] = d · q[i] + m`, `q[i]` in `0..=3`, `m = min(w)`, `d = (max − min) / 3`
/// (f16 bits); `q[i]` in bits `2(i % 4)` of `qs[i / 4]`. GPU `q`: 2 `u32` (weight `16j + t` at bits
/// `2t` of word `j`); GPU `s`: as INT4.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq)]
pub struct BlockInt2 {
    pub d: u16,
    pub m: u16,
    pub qs: [u8; 8],
}

/// An asymmetric block of `levels + 1` codes: built from its scale, min and codes; read back as
/// codes. INT4, INT3 and INT2 share every method through it.
pub trait AsymBlock: Copy {
    const LEVELS: u8;
    fn from_codes(d: u16, m: u16, q: &[u8; BLOCK]) -> Self;
    fn codes(&self) -> [u8; BLOCK];
    fn dm(&self) -> (u16, u16);

    /// Min and max, rounded to nearest (the `rtn` method).
    fn quantize_minmax(x: &[f32; BLOCK]) -> Self {
        let min = x.iter().fold(f32::INFINITY, |a, &v| a.min(v));
        let max = x.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
        let levels = Self::LEVELS as f32;
        let m = f16::from_f32(min);
        let d = f16::from_f32((max - m.to_f32()) / levels);
        let (df, mf) = (d.to_f32(), m.to_f32());
        let inv = if df > 0.0 { 1.0 / df } else { 0.0 };
        Self::from_codes(d.to_bits(), m.to_bits(), &x.map(|v| level((v - mf) * inv, 0.0, levels) as u8))
    }

    fn dequantize_codes(&self, out: &mut [f32; BLOCK]) {
        let (d, m) = self.dm();
        let (d, m) = (f16::from_bits(d).to_f32(), f16::from_bits(m).to_f32());
        for (o, q) in out.iter_mut().zip(self.codes()) {
            *o = d * q as f32 + m;
        }
    }
}

impl AsymBlock for BlockInt4 {
    const LEVELS: u8 = 15;
    fn from_codes(d: u16, m: u16, q: &[u8; BLOCK]) -> Self {
        BlockInt4 { d, m, qs: std::array::from_fn(|j| q[2 * j] | q[2 * j + 1] << 4) }
    }
    fn codes(&self) -> [u8; BLOCK] {
        std::array::from_fn(|i| (self.qs[i / 2] >> (4 * (i % 2))) & 15)
    }
    fn dm(&self) -> (u16, u16) {
        (self.d, self.m)
    }
}

impl AsymBlock for BlockInt3 {
    const LEVELS: u8 = 7;
    fn from_codes(d: u16, m: u16, q: &[u8; BLOCK]) -> Self {
        let mut qs = [0u8; 12];
        for (i, &c) in q.iter().enumerate() {
            qs[i / 4] |= (c & 3) << (2 * (i % 4));
            qs[8 + i / 8] |= (c >> 2 & 1) << (i % 8);
        }
        BlockInt3 { d, m, qs }
    }
    fn codes(&self) -> [u8; BLOCK] {
        std::array::from_fn(|i| (self.qs[i / 4] >> (2 * (i % 4)) & 3) | (self.qs[8 + i / 8] >> (i % 8) & 1) << 2)
    }
    fn dm(&self) -> (u16, u16) {
        (self.d, self.m)
    }
}

impl AsymBlock for BlockInt2 {
    const LEVELS: u8 = 3;
    fn from_codes(d: u16, m: u16, q: &[u8; BLOCK]) -> Self {
        let mut qs = [0u8; 8];
        for (i, &c) in q.iter().enumerate() {
            qs[i / 4] |= (c & 3) << (2 * (i % 4));
        }
        BlockInt2 { d, m, qs }
    }
    fn codes(&self) -> [u8; BLOCK] {
        std::array::from_fn(|i| self.qs[i / 4] >> (2 * (i % 4)) & 3)
    }
    fn dm(&self) -> (u16, u16) {
        (self.d, self.m)
    }
}

const _: () = assert!(std::mem::size_of::<BlockInt3>() == 16);
const _: () = assert!(std::mem::size_of::<BlockInt2>() == 12);
const _: () = assert!(std::mem::size_of::<BlockFp16>() == 64);
const _: () = assert!(std::mem::size_of::<BlockInt8>() == 34);
const _: () = assert!(std::mem::size_of::<BlockInt4>() == 20);

impl BlockFp16 {
    pub fn quantize(x: &[f32; BLOCK]) -> Self {
        BlockFp16 { h: x.map(|v| f16::from_f32(v).to_bits()) }
    }
    pub fn dequantize(&self, out: &mut [f32; BLOCK]) {
        for (o, h) in out.iter_mut().zip(self.h) {
            *o = f16::from_bits(h).to_f32();
        }
    }
}

impl BlockInt8 {
    pub fn quantize(x: &[f32; BLOCK]) -> Self {
        let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = f16::from_f32(amax / 127.0);
        let df = d.to_f32();
        let inv = if df > 0.0 { 1.0 / df } else { 0.0 };
        BlockInt8 { d: d.to_bits(), qs: x.map(|v| level(v * inv, -127.0, 127.0) as i8) }
    }
    pub fn dequantize(&self, out: &mut [f32; BLOCK]) {
        let d = f16::from_bits(self.d).to_f32();
        for (o, q) in out.iter_mut().zip(self.qs) {
            *o = d * q as f32;
        }
    }
}

impl BlockInt4 {
    pub fn quantize(x: &[f32; BLOCK]) -> Self {
        Self::quantize_minmax(x)
    }
    pub fn dequantize(&self, out: &mut [f32; BLOCK]) {
        self.dequantize_codes(out)
    }
}

/// How the KV cache stores keys and values:
/// - `f32`; `f16` (two per `u32`);
/// - `int8`: blocks of 32 values along a token's row with one f16 scale each (`v = d · q`, like
///   [`BlockInt8`]), 9 words per block: 8 words of signed bytes (value `4i + t` in byte `t` of
///   word `i`), then the scale in the low half of the 9th;
/// - `int4` and `int3`: units of 64 values (two blocks of 32, one f16 scale each, `d = max|v| / h`
///   with `h` = 7.5 or 3.5) holding unsigned codes `q` for `v = d · (q − h)`, a grid symmetric
///   about zero that uses every code. INT4: 8 words of nibbles (value `i` in bits `4(i % 8)` of
///   word `i / 8`), then both scales (9 words). INT3: the low two bits of each code in 4 words
///   (value `i` at bits `2(i % 16)` of word `i / 16`), the high bits in 2 words (bit `i % 32` of
///   word `4 + i / 32`), then both scales (7 words, 3.5 bits a value);
/// - `int4-rot` and `int3-rot`: the same layout, holding the keys and values after a fixed
///   random-sign Walsh–Hadamard rotation per head ([`rotate`]): a key's or value's outliers are
///   spread over its block, so the block's scale fits the rest of it. Rotated coordinates are
///   close to Gaussian, so their codes stand for a Lloyd–Max grid for that distribution rather
///   than a uniform one ([`KvPrecision::grid`]); rotated INT3 searches each block's scale
///   ([`KvPrecision::block_scale`]). Queries are rotated the same way (the scores do
///   not change: the rotation is orthogonal) and the attention output rotated back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum KvPrecision {
    #[default]
    F32,
    F16,
    Int8,
    Int4,
    Int3,
    #[serde(rename = "int4-rot")]
    Int4Rot,
    #[serde(rename = "int3-rot")]
    Int3Rot,
}

/// Values of one INT4 or INT3 KV unit (two scale blocks).
pub const KV_UNIT: usize = 64;

/// The largest rotation block: the rotated formats rotate within one [`KV_UNIT`].
pub const ROT_MAX: usize = KV_UNIT;

/// The sign the rotation gives dim `d` of a head (a fixed hash: the same on the CPU and in
/// `hadamard.wgsl`).
pub fn rot_sign(d: u32) -> f32 {
    let mut x = d.wrapping_mul(747796405).wrapping_add(2891336453);
    x = ((x >> ((x >> 28) + 4)) ^ x).wrapping_mul(277803737);
    x ^= x >> 22;
    if x & 1 == 1 { -1.0 } else { 1.0 }
}

/// The rotation block for heads of `head_dim`: the largest power of two dividing it, at most
/// [`ROT_MAX`]. Head sizes that are not powers of two (48, 80, 96) are rotated in blocks of 16,
/// 16 and 32: a transform padded to the next power of two would need room the cache's rows do not
/// have, and blocks inside a head keep the rotation orthogonal per head, which is all the scores
/// need.
pub fn rot_block(head_dim: usize) -> usize {
    (1usize << head_dim.trailing_zeros().min(ROT_MAX.trailing_zeros())).min(head_dim.max(1))
}

/// Rotate `x` in place, a whole number of rows of heads of `head_dim` (`x[i]` is dim
/// `i % head_dim` of its head): per block of `r = rot_block(head_dim)`, `y = H·D·x / √r` (`D` the
/// [`rot_sign`]s, `H` the Walsh–Hadamard matrix), or its inverse `x = D·H·y / √r`. The CPU
/// reference of `kv_rotate` and of the rotated stores.
pub fn rotate(x: &mut [f32], head_dim: usize, inverse: bool) {
    let r = rot_block(head_dim);
    let k = 1.0 / (r as f32).sqrt();
    for (b, blk) in x.chunks_mut(r).enumerate() {
        let d0 = (b * r) % head_dim.max(1);
        if !inverse {
            for (i, v) in blk.iter_mut().enumerate() {
                *v *= rot_sign((d0 + i) as u32);
            }
        }
        let mut len = 1;
        while len < blk.len() {
            for i in 0..blk.len() {
                if i & len == 0 {
                    let (a, c) = (blk[i], blk[i + len]);
                    blk[i] = a + c;
                    blk[i + len] = a - c;
                }
            }
            len <<= 1;
        }
        for (i, v) in blk.iter_mut().enumerate() {
            *v *= if inverse { k * rot_sign((d0 + i) as u32) } else { k };
        }
    }
}

/// How much smaller each scale a block's search tries is than the one before, as a fraction of
/// the first ([`KvPrecision::block_scale`]).
pub const KV_SEARCH_STEP: f32 = 0.02;

/// Positions a query reads exactly from a 4- or 3-bit cache ([`KvPrecision::recent`]): itself
/// and the 15 before it.
pub const KV_RECENT: usize = 16;
/// Slots of a layer's ring of recent positions: the window, and room for the steps a chained
/// decode runs past its end (twice [`crate::model::gpu::CHAIN_AHEAD`]), so that rolling the cache
/// back over them leaves the window whole.
pub const KV_RECENT_SLOTS: usize = KV_RECENT + 2 * crate::model::gpu::CHAIN_AHEAD;

/// Whether the measuring switch `var` is set to 1 in the environment (read once, into `seen`):
/// the KV formats' `LOWBIT_KV_NO_*` switches, natively only; in the browser never.
fn switched_off(var: &str, seen: &std::sync::OnceLock<bool>) -> bool {
    cfg!(not(target_arch = "wasm32")) && *seen.get_or_init(|| std::env::var_os(var).is_some_and(|v| v == "1"))
}

impl KvPrecision {
    pub const ALL: [KvPrecision; 7] = [
        KvPrecision::F32,
        KvPrecision::F16,
        KvPrecision::Int8,
        KvPrecision::Int4,
        KvPrecision::Int3,
        KvPrecision::Int4Rot,
        KvPrecision::Int3Rot,
    ];

    pub fn name(self) -> &'static str {
        match self {
            KvPrecision::F32 => "f32",
            KvPrecision::F16 => "f16",
            KvPrecision::Int8 => "int8",
            KvPrecision::Int4 => "int4",
            KvPrecision::Int3 => "int3",
            KvPrecision::Int4Rot => "int4-rot",
            KvPrecision::Int3Rot => "int3-rot",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        KvPrecision::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| Error::UnknownPrecision(s.to_string()))
    }

    /// Whether keys and values are stored rotated ([`rotate`]).
    pub fn rotated(self) -> bool {
        matches!(self, KvPrecision::Int4Rot | KvPrecision::Int3Rot)
    }

    /// Whether keys are stored less their layer's mean key (the 4- and 3-bit formats): a key's
    /// constant offset (a key bias, or channels every token shares) would otherwise take the
    /// block scale's range. Attention is unchanged, since every score of a query moves by the same
    /// `q·mean`. The means come from the calibration text, measured once per loaded model
    /// ([`crate::model::key_mean_tokens`]). Natively, `LOWBIT_KV_NO_CENTER=1` turns it off on
    /// both backends, to measure what it does.
    pub fn centered(self) -> bool {
        static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        !switched_off("LOWBIT_KV_NO_CENTER", &OFF) && matches!(self.bits(), 3 | 4)
    }

    /// Whether keys are stored times per-channel scales λ, with queries divided by them (the
    /// rotated formats; `kv_balance.wgsl` explains the scales, measured with the mean keys).
    /// Natively, `LOWBIT_KV_NO_SCALES=1` turns them off on both backends, to measure what they do
    /// (and `LOWBIT_KV_NO_CENTER=1`, which measures neither).
    pub fn scaled(self) -> bool {
        static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        !switched_off("LOWBIT_KV_NO_SCALES", &OFF) && self.rotated() && self.centered()
    }

    /// Positions a query reads exactly (0: none): the 4- and 3-bit formats keep each token's keys
    /// and values in f16 beside their codes while they are among the last [`KV_RECENT`] positions
    /// of a query (after KIVI's full-precision residual, `kv_window.wgsl`): attention leans hardest
    /// on the latest tokens, where coding errors average out least. Natively,
    /// `LOWBIT_KV_NO_RECENT=1` turns it off, to measure what it does.
    pub fn recent(self) -> usize {
        static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        if matches!(self.bits(), 3 | 4) && !switched_off("LOWBIT_KV_NO_RECENT", &OFF) {
            KV_RECENT
        } else {
            0
        }
    }

    /// `u32` words of a layer's ring of recent positions, after its codes: [`KV_RECENT_SLOTS`]
    /// rows of keys then values in f16 pairs, then a tag per slot (its position + 1). 0 without
    /// a recent window.
    pub fn ring_words(self, kv_dim: usize) -> usize {
        if self.recent() == 0 {
            return 0;
        }
        KV_RECENT_SLOTS * (kv_dim + 1)
    }

    /// What `rope_store.wgsl` writes for a recent window of the row `x` (heads of `head_dim`):
    /// its values in f16 pairs, in the basis they are coded in (rotated, for the rotated formats).
    pub fn exact_words(self, x: &[f32], head_dim: usize) -> Vec<u32> {
        let mut v = x.to_vec();
        if self.rotated() {
            rotate(&mut v, head_dim, false);
        }
        v.chunks(2).map(|p| f16::from_f32(p[0]).to_bits() as u32 | (f16::from_f32(p.get(1).copied().unwrap_or(0.0)).to_bits() as u32) << 16).collect()
    }

    /// What a recent window reads of the row `x`: [`KvPrecision::exact_words`], given back in
    /// `x`'s basis.
    pub fn exact(self, x: &[f32], head_dim: usize) -> Vec<f32> {
        let mut v = KvPrecision::F16.decode(&self.exact_words(x, head_dim), head_dim);
        v.truncate(x.len());
        if self.rotated() {
            rotate(&mut v, head_dim, true);
        }
        v
    }

    /// Bits of a code: 0 for the float formats.
    pub fn bits(self) -> u32 {
        match self {
            KvPrecision::F32 | KvPrecision::F16 => 0,
            KvPrecision::Int8 => 8,
            KvPrecision::Int4 | KvPrecision::Int4Rot => 4,
            KvPrecision::Int3 | KvPrecision::Int3Rot => 3,
        }
    }

    /// Values one store handles together (a token's row must be a multiple of it).
    pub fn unit(self) -> usize {
        match self {
            KvPrecision::F32 => 1,
            KvPrecision::F16 => 2,
            KvPrecision::Int8 => BLOCK,
            _ => KV_UNIT,
        }
    }

    /// `u32` words `n` values take (`n` a multiple of [`KvPrecision::unit`]).
    pub fn words(self, n: usize) -> usize {
        match self {
            KvPrecision::F32 => n,
            KvPrecision::F16 => n / 2,
            KvPrecision::Int8 => n / BLOCK * 9,
            KvPrecision::Int4 | KvPrecision::Int4Rot => n / KV_UNIT * 9,
            KvPrecision::Int3 | KvPrecision::Int3Rot => n / KV_UNIT * 7,
        }
    }

    /// Bytes per stored value, scales included.
    pub fn bytes_per_value(self) -> f64 {
        self.words(KV_UNIT) as f64 * 4.0 / KV_UNIT as f64
    }

    /// Why heads of `head_dim` in rows of `kv_dim` values cannot be stored as `self`, if so.
    pub fn unfit(self, kv_dim: usize, head_dim: usize) -> Option<String> {
        if head_dim % 8 != 0 {
            return Some(format!("attention reads a head 8 values at a time; heads of {head_dim} values are not whole eights"));
        }
        if kv_dim % self.unit() != 0 {
            return Some(format!("a {self} KV cache needs rows of a multiple of {} values; this model has {kv_dim}", self.unit()));
        }
        if self.rotated() && rot_block(head_dim) < 8 {
            return Some(format!("a {self} KV cache rotates heads in blocks of 8 or more values; heads of {head_dim} have none"));
        }
        None
    }

    /// The cache words for `x`, rows of heads of `head_dim` (the CPU reference of the `kv_store`
    /// kernel).
    pub fn encode(self, x: &[f32], head_dim: usize) -> Result<Vec<u32>> {
        if x.len() % self.unit() != 0 || head_dim == 0 || x.len() % head_dim != 0 {
            return Err(Error::Shape(format!("{} values are not whole {} KV units of {} in heads of {head_dim}", x.len(), self.name(), self.unit())));
        }
        let mut rotated;
        let x = if self.rotated() {
            rotated = x.to_vec();
            rotate(&mut rotated, head_dim, false);
            &rotated[..]
        } else {
            x
        };
        Ok(match self {
            KvPrecision::F32 => x.iter().map(|v| v.to_bits()).collect(),
            KvPrecision::F16 => x
                .chunks_exact(2)
                .map(|p| f16::from_f32(p[0]).to_bits() as u32 | (f16::from_f32(p[1]).to_bits() as u32) << 16)
                .collect(),
            KvPrecision::Int8 => {
                let mut out = Vec::with_capacity(self.words(x.len()));
                for c in x.chunks_exact(BLOCK) {
                    let b = BlockInt8::quantize(c.try_into().map_err(|_| Error::Shape("block".into()))?);
                    out.extend(b.qs.chunks_exact(4).map(|q| u32::from_le_bytes([q[0] as u8, q[1] as u8, q[2] as u8, q[3] as u8])));
                    out.push(b.d as u32);
                }
                out
            }
            _ => {
                let mut out = Vec::with_capacity(self.words(x.len()));
                for u in x.chunks_exact(KV_UNIT) {
                    out.extend(self.encode_unit(u));
                }
                out
            }
        })
    }

    /// Half the code range: code `q` is `u = q − h` steps from the middle, `−h ..= h`.
    fn half(self) -> f32 {
        ((1u32 << self.bits()) as f32 - 1.0) / 2.0
    }

    /// The INT4/INT3 grid `(a, b, div)`: code `q` stands for `d · u · (a + b·u²)` (`u = q − h`)
    /// with the block scale `d = f16(max|v| / div)` ([`KvPrecision::block_scale`]). Plain formats:
    /// the uniform grid `(1, 0, h)`. Rotated formats: `div = 1` and a cubic through the Lloyd–Max
    /// levels of a block's coordinates over its scale (Gaussian coordinates, 32 a block):
    /// - INT4, `d = max|v|`: 10 % less RMS error than the uniform grid;
    /// - INT3, `d` searched ([`KvPrecision::search`]): the levels Lloyd's algorithm and the search
    ///   settle on together, ±0.10, ±0.32, ±0.59, ±0.97 of `d` (against ±0.10, ±0.31, ±0.56,
    ///   ±0.88 of `max|v|` without a search): 0.90 of the squared error of the unsearched grid
    ///   on Gaussian blocks, which has 13 % less RMS error than the uniform one.
    ///
    /// The cubics are within 0.6 % of the exact levels. The same numbers are the `KV_A`, `KV_B`,
    /// `KV_DIV` constants of the shaders.
    pub fn grid(self) -> (f32, f32, f32) {
        match self {
            KvPrecision::Int4Rot => (0.10067, 0.000508, 1.0),
            KvPrecision::Int3Rot => (0.1984, 0.0064, 1.0),
            k => (1.0, 0.0, k.half()),
        }
    }

    /// Scales a block's search tries ([`KvPrecision::block_scale`]): 1 (none) but for rotated
    /// INT3, whose grid is coarse enough that its largest value is worth clipping. Measured on the
    /// CPU reference (default model, the long text's 2,048 tokens, perplexity against the f16
    /// cache): rotated INT3 +4.74 % without the search, +2.82 % with it; rotated INT4 gained
    /// nothing (over 1,024 tokens, 24.49 without and 24.56 with, against 24.57 for f32).
    pub fn search(self) -> u32 {
        if self == KvPrecision::Int3Rot { 21 } else { 1 }
    }

    /// The fraction of the first scale that the `k`-th scale a search tries is: `1 − k ·`
    /// [`KV_SEARCH_STEP`] (as `kv_block_scale` in `kv_grid.wgsl`).
    pub fn search_fraction(k: u32) -> f32 {
        1.0 - KV_SEARCH_STEP * k as f32
    }

    /// The scale of a block of 32 values `blk` (as `kv_block_scale` in `kv_grid.wgsl`): of the
    /// [`KvPrecision::search`] scales `f16(max|v| · search_fraction(k) / div)`, `k = 0, 1, …`,
    /// the first whose codes leave the least squared error (with one, `f16(max|v| / div)`).
    pub fn block_scale(self, blk: &[f32]) -> f16 {
        let (amax, div) = (blk.iter().fold(0f32, |a, v| a.max(v.abs())), self.grid().2);
        let first = f16::from_f32(amax / div);
        if self.search() == 1 || first.to_f32() <= 0.0 {
            return first;
        }
        let mut best = (first, f32::INFINITY);
        for k in 0..self.search() {
            let d = f16::from_f32(amax * KvPrecision::search_fraction(k) / div);
            let df = d.to_f32();
            if df <= 0.0 {
                break;
            }
            let inv = 1.0 / df;
            let e = blk.iter().fold(0f32, |e, v| {
                let r = df * self.level(self.code(v * inv));
                e + (r - v) * (r - v)
            });
            if e < best.1 {
                best = (d, e);
            }
        }
        best.0
    }

    /// The widest gap between adjacent levels of an INT format, over its block's largest value:
    /// how far one code rounded the other way moves a value (1/127 for INT8, 1/h for the uniform
    /// grids).
    pub fn widest_step(self) -> f32 {
        match self.bits() {
            0 => 0.0,
            8 => 1.0 / 127.0,
            b => (1..1u32 << b).map(|q| self.level(q) - self.level(q - 1)).fold(0.0, f32::max) / self.grid().2,
        }
    }

    /// The value of code `q` at scale 1 ([`KvPrecision::grid`]).
    fn level(self, q: u32) -> f32 {
        let (a, b, _) = self.grid();
        let u = q as f32 - self.half();
        u * (a + b * u * u)
    }

    /// The midpoints between adjacent levels of an INT4/INT3 grid at scale 1, in order: the
    /// `KV_MIDS` constant of the shaders (padded there to whole `vec4`s).
    pub fn midpoints(self) -> Vec<f32> {
        (1..=(2.0 * self.half()) as u32).map(|k| self.midpoint(k)).collect()
    }

    /// The midpoint between levels `k − 1` and `k`.
    fn midpoint(self, k: u32) -> f32 {
        (self.level(k - 1) + self.level(k)) / 2.0
    }

    /// The code of `y` (a value over its block scale): the number of midpoints between adjacent
    /// levels below it (`kv_code` in the shaders).
    fn code(self, y: f32) -> u32 {
        (1..=(2.0 * self.half()) as u32).filter(|&k| y > self.midpoint(k)).count() as u32
    }

    /// One INT4/INT3 unit of 64 values (as `kv_int4.wgsl` / `kv_int3.wgsl` store it).
    fn encode_unit(self, u: &[f32]) -> Vec<u32> {
        let mut codes = [0u32; KV_UNIT];
        let mut scales = 0u32;
        for (b, blk) in u.chunks_exact(BLOCK).enumerate() {
            let d = self.block_scale(blk);
            let df = d.to_f32();
            let inv = if df > 0.0 { 1.0 / df } else { 0.0 };
            for (i, v) in blk.iter().enumerate() {
                codes[b * BLOCK + i] = self.code(v * inv);
            }
            scales |= (d.to_bits() as u32) << (16 * b);
        }
        let mut w = Vec::with_capacity(9);
        if self.bits() == 4 {
            w.extend(codes.chunks_exact(8).map(|c| c.iter().enumerate().fold(0u32, |a, (i, q)| a | q << (4 * i))));
        } else {
            w.extend(codes.chunks_exact(16).map(|c| c.iter().enumerate().fold(0u32, |a, (i, q)| a | (q & 3) << (2 * i))));
            w.extend(codes.chunks_exact(32).map(|c| c.iter().enumerate().fold(0u32, |a, (i, q)| a | (q >> 2) << i)));
        }
        w.push(scales);
        w
    }

    /// The 64 values of one INT4/INT3 unit's words (before any rotation back).
    fn decode_unit(self, u: &[u32]) -> Vec<f32> {
        let n = u.len();
        (0..KV_UNIT)
            .map(|i| {
                let q = if self.bits() == 4 {
                    u[i / 8] >> (4 * (i % 8)) & 15
                } else {
                    (u[i / 16] >> (2 * (i % 16)) & 3) | (u[4 + i / 32] >> (i % 32) & 1) << 2
                };
                f16::from_bits((u[n - 1] >> (16 * (i / BLOCK))) as u16).to_f32() * self.level(q)
            })
            .collect()
    }

    /// The values the cache words hold, rotated back for the rotated formats: what attention
    /// computes with.
    pub fn decode(self, w: &[u32], head_dim: usize) -> Vec<f32> {
        let mut out: Vec<f32> = match self {
            KvPrecision::F32 => w.iter().map(|&b| f32::from_bits(b)).collect(),
            KvPrecision::F16 => w
                .iter()
                .flat_map(|&b| [f16::from_bits(b as u16).to_f32(), f16::from_bits((b >> 16) as u16).to_f32()])
                .collect(),
            KvPrecision::Int8 => w
                .chunks_exact(9)
                .flat_map(|b| {
                    let d = f16::from_bits(b[8] as u16).to_f32();
                    b[..8].iter().flat_map(move |w| w.to_le_bytes().map(|q| q as i8 as f32 * d))
                })
                .collect(),
            _ => w.chunks_exact(self.words(KV_UNIT)).flat_map(|u| self.decode_unit(u)).collect(),
        };
        if self.rotated() && head_dim > 0 {
            rotate(&mut out, head_dim, true);
        }
        out
    }
}

/// The format of the activations a matrix multiplies (the lab's third dimension, after the
/// weights and the KV cache). `Int8`: each block of 32 inputs is quantized to 8 bits with its own
/// scale (absmax / 127, llama.cpp's Q8_0) before the product, and INT8 and INT4 weights multiply
/// them as integers (packed dot products); FP16, INT3 and INT2 weights keep f32 activations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Activations {
    #[default]
    F32,
    Int8,
}

impl Activations {
    pub const ALL: [Activations; 2] = [Activations::F32, Activations::Int8];

    pub fn name(self) -> &'static str {
        match self {
            Activations::F32 => "f32",
            Activations::Int8 => "int8",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Activations::ALL.into_iter().find(|a| a.name() == s).ok_or_else(|| Error::Usage(format!("activations {s:?}: f32 or int8")))
    }

    /// Whether matrices at weight precision `p` multiply 8-bit activations in this mode.
    pub fn quantizes_for(self, p: Precision) -> bool {
        self == Activations::Int8 && p.int_dot()
    }
}

impl std::fmt::Display for Activations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `x` quantized to 8 bits per block of 32 and back, in rows of `k` (blocks restart at each row;
/// the last block of a row may be short): `d = max|x| / 127`, `q = round(x · 127 / max|x|)`
/// (ties to even, as WGSL's `round`). The CPU reference of `act_q8.wgsl` and `act_q8_rows.wgsl`.
pub fn quantize_activations(x: &mut [f32], k: usize) {
    for row in x.chunks_mut(k.max(1)) {
        for b in row.chunks_mut(BLOCK) {
            let (q, d) = q8_block(b);
            for (v, q) in b.iter_mut().zip(q) {
                *v = d * q as f32;
            }
        }
    }
}

/// One block of activations as 8-bit codes and their scale (see [`quantize_activations`]).
pub fn q8_block(x: &[f32]) -> (Vec<i8>, f32) {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let (d, id) = if amax > 0.0 { (amax / 127.0, 127.0 / amax) } else { (0.0, 0.0) };
    (x.iter().map(|v| (v * id).round_ties_even().clamp(-127.0, 127.0) as i8).collect(), d)
}

impl std::fmt::Display for KvPrecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Bytes a `[rows, cols]` matrix takes at `p` (rows padded to whole blocks).
pub fn matrix_bytes(rows: usize, cols: usize, p: Precision) -> u64 {
    (rows * cols.div_ceil(BLOCK) * p.block_bytes()) as u64
}

/// A quantized matrix `[rows, cols]`: `rows · blocks_per_row` blocks of one precision.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantMatrix {
    pub rows: usize,
    pub cols: usize,
    pub blocks: Blocks,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Blocks {
    Fp16(Vec<BlockFp16>),
    Int8(Vec<BlockInt8>),
    Int4(Vec<BlockInt4>),
    Int3(Vec<BlockInt3>),
    Int2(Vec<BlockInt2>),
}

/// The GPU form of a [`QuantMatrix`]: see the module docs for the bit layout.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuLayout {
    /// Quantized values, `rows · blocks_per_row · block_words` words.
    pub q: Vec<u32>,
    /// Packed f16 scales (empty for FP16).
    pub s: Vec<u32>,
}

fn pack_halves(h: impl Iterator<Item = u16>) -> Vec<u32> {
    let h: Vec<u16> = h.collect();
    h.chunks(2).map(|c| c[0] as u32 | (*c.get(1).unwrap_or(&0) as u32) << 16).collect()
}

fn unpack_halves(words: &[u32], n: usize) -> impl Iterator<Item = u16> + '_ {
    (0..n).map(move |i| (words[i / 2] >> (16 * (i % 2))) as u16)
}

impl QuantMatrix {
    /// The rows of `parts` one after another (same columns and precision): how the GPU holds the
    /// attention's Q, K and V, and the feed-forward's gate and up, as one matrix each.
    pub fn stack(parts: Vec<QuantMatrix>) -> Result<QuantMatrix> {
        let mut it = parts.into_iter();
        let mut out = it.next().ok_or_else(|| Error::Shape("nothing to stack".into()))?;
        for p in it {
            if p.cols != out.cols {
                return Err(Error::Shape(format!("stacking {} columns onto {}", p.cols, out.cols)));
            }
            match (&mut out.blocks, p.blocks) {
                (Blocks::Fp16(a), Blocks::Fp16(b)) => a.extend(b),
                (Blocks::Int8(a), Blocks::Int8(b)) => a.extend(b),
                (Blocks::Int4(a), Blocks::Int4(b)) => a.extend(b),
                (Blocks::Int3(a), Blocks::Int3(b)) => a.extend(b),
                (Blocks::Int2(a), Blocks::Int2(b)) => a.extend(b),
                _ => return Err(Error::Shape("stacking matrices of different precisions".into())),
            }
            out.rows += p.rows;
        }
        Ok(out)
    }

    /// Whether a tensor of ggml type `ty` with rows of `cols` is kept as stored at `precision`
    /// ([`QuantMatrix::from_ggml`]): then no method changes it.
    pub fn keeps(ty: crate::gguf::GgmlType, cols: usize, precision: Precision) -> bool {
        use crate::gguf::GgmlType;
        cols % BLOCK == 0
            && matches!((ty, precision), (GgmlType::Q4_1 | GgmlType::Q4_0 | GgmlType::Q4K, Precision::Int4) | (GgmlType::Q8_0, Precision::Int8))
    }

    /// Rows `first..first + rows` as a matrix of their own.
    pub fn rows_range(&self, first: usize, rows: usize) -> QuantMatrix {
        let nb = self.blocks_per_row();
        let r = first * nb..(first + rows) * nb;
        let blocks = match &self.blocks {
            Blocks::Fp16(b) => Blocks::Fp16(b[r].to_vec()),
            Blocks::Int8(b) => Blocks::Int8(b[r].to_vec()),
            Blocks::Int4(b) => Blocks::Int4(b[r].to_vec()),
            Blocks::Int3(b) => Blocks::Int3(b[r].to_vec()),
            Blocks::Int2(b) => Blocks::Int2(b[r].to_vec()),
        };
        QuantMatrix { rows, cols: self.cols, blocks }
    }

    /// Quantize a row-major f32 matrix. Rows are zero-padded to a whole number of blocks.
    pub fn quantize(values: &[f32], rows: usize, cols: usize, precision: Precision) -> Result<Self> {
        if values.len() != rows * cols {
            return Err(Error::Shape(format!(
                "quantize: {} values for a {rows}x{cols} matrix",
                values.len()
            )));
        }
        let nb = cols.div_ceil(BLOCK);
        let mut chunks = Vec::with_capacity(rows * nb);
        for r in 0..rows {
            let row = &values[r * cols..(r + 1) * cols];
            for b in 0..nb {
                let mut x = [0f32; BLOCK];
                let src = &row[b * BLOCK..((b + 1) * BLOCK).min(cols)];
                x[..src.len()].copy_from_slice(src);
                chunks.push(x);
            }
        }
        let blocks = match precision {
            Precision::Fp16 => Blocks::Fp16(chunks.iter().map(BlockFp16::quantize).collect()),
            Precision::Int8 => Blocks::Int8(chunks.iter().map(BlockInt8::quantize).collect()),
            Precision::Int4 => Blocks::Int4(chunks.iter().map(BlockInt4::quantize).collect()),
            Precision::Int3 => Blocks::Int3(chunks.iter().map(BlockInt3::quantize_minmax).collect()),
            Precision::Int2 => Blocks::Int2(chunks.iter().map(BlockInt2::quantize_minmax).collect()),
        };
        Ok(QuantMatrix { rows, cols, blocks })
    }

    /// A matrix stored in `data` as ggml blocks of type `ty` (whole rows of `cols`), at `precision`,
    /// *kept as stored* where the file's blocks map onto lowbit's: Q4_1 and Q4_0 as INT4 (Q4_0's
    /// `d·q`, q in −8..7, is `d·(q+8) − 8d`: the same scale, min = −8d), Q8_0 as INT8: the same
    /// scales, minima and integers, only the nibbles reordered (ggml packs weights j and j+16 in a
    /// byte, lowbit 2j and 2j+1). Every weight then decodes to the file's value (to the bit, ±0
    /// aside), however the file chose its blocks: with an importance matrix, by search, or by
    /// min and max. Q4_K's super-blocks are eight 32-weight sub-blocks of 4-bit integers, each
    /// with scale `d·sc` and min `−dmin·m` (6-bit `sc` and `m`): kept as eight INT4 blocks with
    /// the same integers, the products rounded to f16 (a weight moves by at most 2⁻¹¹ of its
    /// sub-block's range, as much as widening it to FP16 moves it).
    /// `None` where the formats differ (the caller requantizes from the values).
    pub fn from_ggml(ty: crate::gguf::GgmlType, data: &[u8], rows: usize, cols: usize, precision: Precision) -> Option<Self> {
        use crate::gguf::GgmlType;
        use crate::ggml::{IntBlock, Q4_0, Q4_1, Q8_0};
        let nb = cols / BLOCK;
        if !Self::keeps(ty, cols, precision) || rows == 0 {
            return None;
        }
        let half = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        if ty == GgmlType::Q4K {
            return Self::from_q4_k(data, rows, cols);
        }
        let block_bytes = match ty {
            GgmlType::Q4_1 => 20,
            GgmlType::Q4_0 => 18,
            _ => 34,
        };
        let blocks = data.chunks_exact(block_bytes);
        if data.len() != rows * nb * block_bytes {
            return None;
        }
        let mut q = [0i8; BLOCK];
        let kept = match ty {
            GgmlType::Q8_0 => Blocks::Int8(
                blocks
                    .map(|b| {
                        Q8_0::ints(b, &mut q);
                        BlockInt8 { d: half(b, 0), qs: q }
                    })
                    .collect(),
            ),
            _ => {
                let mut out = Vec::with_capacity(rows * nb);
                for b in blocks {
                    let (d, m) = if ty == GgmlType::Q4_1 {
                        Q4_1::ints(b, &mut q);
                        (half(b, 0), half(b, 2))
                    } else {
                        let d = Q4_0::ints(b, &mut q).0;
                        q.iter_mut().for_each(|v| *v += 8);
                        // −8d is exact in f16 (a power of two times d) unless it overflows.
                        let m = f16::from_f32(-8.0 * d);
                        if m.to_f32() != -8.0 * d {
                            return None;
                        }
                        (half(b, 0), m.to_bits())
                    };
                    let mut qs = [0u8; BLOCK / 2];
                    for (j, byte) in qs.iter_mut().enumerate() {
                        *byte = q[2 * j] as u8 | (q[2 * j + 1] as u8) << 4;
                    }
                    out.push(BlockInt4 { d, m, qs });
                }
                Blocks::Int4(out)
            }
        };
        Some(QuantMatrix { rows, cols, blocks: kept })
    }

    /// Q4_K super-blocks (144 bytes: f16 `d`, f16 `dmin`, 12 bytes of 6-bit scales and mins, 128
    /// bytes of nibbles) as INT4 blocks ([`QuantMatrix::from_ggml`]).
    fn from_q4_k(data: &[u8], rows: usize, cols: usize) -> Option<Self> {
        const SUPER: usize = 256;
        if cols % SUPER != 0 || data.len() != rows * cols / SUPER * 144 {
            return None;
        }
        let h = |b: &[u8], i: usize| f16::from_bits(u16::from_le_bytes([b[i], b[i + 1]])).to_f32();
        let mut out = Vec::with_capacity(rows * cols / BLOCK);
        for b in data.chunks_exact(144) {
            let (d, dmin, scales, qs) = (h(b, 0), h(b, 2), &b[4..16], &b[16..144]);
            for j in 0..SUPER / BLOCK {
                let (sc, m) = crate::ggml::scale_min_k4(j, scales);
                // Sub-block j: the low nibbles of 32 bytes for even j, their high nibbles for odd.
                let nib = |l: usize| {
                    let q = qs[32 * (j / 2) + l];
                    if j % 2 == 0 { q & 15 } else { q >> 4 }
                };
                let mut q = [0u8; BLOCK / 2];
                for (i, byte) in q.iter_mut().enumerate() {
                    *byte = nib(2 * i) | nib(2 * i + 1) << 4;
                }
                let (dd, mm) = (f16::from_f32(d * sc as f32), f16::from_f32(-dmin * m as f32));
                if !dd.is_finite() || !mm.is_finite() {
                    return None;
                }
                out.push(BlockInt4 { d: dd.to_bits(), m: mm.to_bits(), qs: q });
            }
        }
        Some(QuantMatrix { rows, cols, blocks: Blocks::Int4(out) })
    }

    /// Every block's scale `d` (empty for FP16, which has none).
    pub fn block_scales(&self) -> Vec<f32> {
        let h = |d: u16| f16::from_bits(d).to_f32();
        match &self.blocks {
            Blocks::Fp16(_) => vec![],
            Blocks::Int8(b) => b.iter().map(|b| h(b.d)).collect(),
            Blocks::Int4(b) => b.iter().map(|b| h(b.d)).collect(),
            Blocks::Int3(b) => b.iter().map(|b| h(b.d)).collect(),
            Blocks::Int2(b) => b.iter().map(|b| h(b.d)).collect(),
        }
    }

    pub fn precision(&self) -> Precision {
        match self.blocks {
            Blocks::Fp16(_) => Precision::Fp16,
            Blocks::Int8(_) => Precision::Int8,
            Blocks::Int4(_) => Precision::Int4,
            Blocks::Int3(_) => Precision::Int3,
            Blocks::Int2(_) => Precision::Int2,
        }
    }

    pub fn blocks_per_row(&self) -> usize {
        self.cols.div_ceil(BLOCK)
    }

    /// Bytes of weight data (equal on CPU and GPU).
    pub fn bytes(&self) -> usize {
        matrix_bytes(self.rows, self.cols, self.precision()) as usize
    }

    fn dequantize_block(&self, i: usize, out: &mut [f32; BLOCK]) {
        match &self.blocks {
            Blocks::Fp16(b) => b[i].dequantize(out),
            Blocks::Int8(b) => b[i].dequantize(out),
            Blocks::Int4(b) => b[i].dequantize(out),
            Blocks::Int3(b) => b[i].dequantize_codes(out),
            Blocks::Int2(b) => b[i].dequantize_codes(out),
        }
    }

    /// Dequantize row `r` into `out[..cols]`.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        let nb = self.blocks_per_row();
        let mut tmp = [0f32; BLOCK];
        for b in 0..nb {
            self.dequantize_block(r * nb + b, &mut tmp);
            let lo = b * BLOCK;
            let hi = (lo + BLOCK).min(self.cols);
            out[lo..hi].copy_from_slice(&tmp[..hi - lo]);
        }
    }

    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.cols];
        for r in 0..self.rows {
            self.dequantize_row(r, &mut out[r * self.cols..(r + 1) * self.cols]);
        }
        out
    }

    /// Repack for the GPU: every binding is an `array<u32>`.
    pub fn gpu_layout(&self) -> GpuLayout {
        match &self.blocks {
            Blocks::Fp16(b) => GpuLayout { q: bytemuck::cast_slice(&b[..]).to_vec(), s: vec![] },
            Blocks::Int8(b) => GpuLayout {
                q: b.iter().flat_map(|blk| bytemuck::cast::<_, [u32; 8]>(blk.qs)).collect(),
                s: pack_halves(b.iter().map(|blk| blk.d)),
            },
            Blocks::Int4(b) => GpuLayout {
                q: b.iter().flat_map(|blk| bytemuck::cast::<_, [u32; 4]>(blk.qs)).collect(),
                s: b.iter().map(|blk| blk.d as u32 | (blk.m as u32) << 16).collect(),
            },
            Blocks::Int3(b) => GpuLayout {
                q: b.iter().flat_map(|blk| bytemuck::cast::<_, [u32; 3]>(blk.qs)).collect(),
                s: b.iter().map(|blk| blk.d as u32 | (blk.m as u32) << 16).collect(),
            },
            Blocks::Int2(b) => GpuLayout {
                q: b.iter().flat_map(|blk| bytemuck::cast::<_, [u32; 2]>(blk.qs)).collect(),
                s: b.iter().map(|blk| blk.d as u32 | (blk.m as u32) << 16).collect(),
            },
        }
    }

    /// Rebuild a matrix from its GPU layout (the inverse of [`Self::gpu_layout`]).
    pub fn from_gpu_layout(
        precision: Precision,
        rows: usize,
        cols: usize,
        layout: &GpuLayout,
    ) -> Result<Self> {
        let n = rows * cols.div_ceil(BLOCK);
        let words = precision.block_words();
        let s_words = match precision {
            Precision::Fp16 => 0,
            Precision::Int8 => n.div_ceil(2),
            Precision::Int4 | Precision::Int3 | Precision::Int2 => n,
        };
        if layout.q.len() != n * words || layout.s.len() != s_words {
            return Err(Error::Shape(format!(
                "GPU layout of {} words + {} scale words does not fit {rows}x{cols} {precision}",
                layout.q.len(),
                layout.s.len()
            )));
        }
        let q = |i: usize| -> &[u32] { &layout.q[i * words..(i + 1) * words] };
        let blocks = match precision {
            Precision::Fp16 => Blocks::Fp16(bytemuck::cast_slice(&layout.q).to_vec()),
            Precision::Int8 => Blocks::Int8(
                unpack_halves(&layout.s, n)
                    .enumerate()
                    .map(|(i, d)| BlockInt8 { d, qs: bytemuck::cast_slice(q(i)).try_into().unwrap() })
                    .collect(),
            ),
            Precision::Int4 => Blocks::Int4(
                (0..n)
                    .map(|i| BlockInt4 {
                        d: layout.s[i] as u16,
                        m: (layout.s[i] >> 16) as u16,
                        qs: bytemuck::cast_slice(q(i)).try_into().unwrap(),
                    })
                    .collect(),
            ),
            Precision::Int3 => Blocks::Int3(
                (0..n)
                    .map(|i| BlockInt3 { d: layout.s[i] as u16, m: (layout.s[i] >> 16) as u16, qs: bytemuck::cast_slice(q(i)).try_into().unwrap() })
                    .collect(),
            ),
            Precision::Int2 => Blocks::Int2(
                (0..n)
                    .map(|i| BlockInt2 { d: layout.s[i] as u16, m: (layout.s[i] >> 16) as u16, qs: bytemuck::cast_slice(q(i)).try_into().unwrap() })
                    .collect(),
            ),
        };
        Ok(QuantMatrix { rows, cols, blocks })
    }
}

/// Round-trip error budget of one format (quantize → dequantize).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RoundTripBudget {
    /// `‖w − ŵ‖₂ / ‖w‖₂` over a whole matrix of N(0, 1) weights.
    pub rel_rms_random: f32,
    /// Max `|w − ŵ|` inside a block, as a fraction of that block's `max|w|`.
    pub max_err_over_block_absmax: f32,
}

/// The round-trip error budgets, one row per format: asserted on random data and on real rows
/// of the default model (tests/suite/layout.rs).
pub const ROUNDTRIP_BUDGET: [(Precision, RoundTripBudget); 5] = [
    // binary16 keeps 11 significant bits: |err| <= 2^-11 |w|.
    (Precision::Fp16, RoundTripBudget { rel_rms_random: 4e-4, max_err_over_block_absmax: 4.9e-4 }),
    // half a step of max|w|/127, plus the f16 rounding of d (127 · 2^-11 steps at most).
    (Precision::Int8, RoundTripBudget { rel_rms_random: 0.01, max_err_over_block_absmax: 0.0045 }),
    // half a step of (max−min)/15 <= 2·max|w|/15, plus f16 rounding of d and m.
    (Precision::Int4, RoundTripBudget { rel_rms_random: 0.12, max_err_over_block_absmax: 0.07 }),
    // half a step of (max−min)/7 <= 2·max|w|/7, plus f16 rounding of d and m.
    (Precision::Int3, RoundTripBudget { rel_rms_random: 0.25, max_err_over_block_absmax: 0.15 }),
    // half a step of (max−min)/3 <= 2·max|w|/3.
    (Precision::Int2, RoundTripBudget { rel_rms_random: 0.55, max_err_over_block_absmax: 0.34 }),
];

pub fn roundtrip_budget(p: Precision) -> RoundTripBudget {
    ROUNDTRIP_BUDGET.iter().find(|(q, _)| *q == p).map(|(_, b)| *b).expect("every precision has a budget")
}

/// Measured round-trip error of `values` (a `[rows, cols]` matrix) at `precision`.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RoundTripError {
    pub rel_rms: f32,
    pub max_err_over_block_absmax: f32,
}

pub fn roundtrip_error(values: &[f32], rows: usize, cols: usize, precision: Precision) -> Result<RoundTripError> {
    let q = QuantMatrix::quantize(values, rows, cols, precision)?;
    let back = q.dequantize();
    Ok(compare_blocks(values, &back, cols))
}

/// `rel_rms` and the worst block-relative error between `a` (reference) and `b`, rows of `cols`.
pub fn compare_blocks(a: &[f32], b: &[f32], cols: usize) -> RoundTripError {
    let (mut num, mut den, mut worst) = (0f64, 0f64, 0f32);
    for (ra, rb) in a.chunks(cols).zip(b.chunks(cols)) {
        for (ba, bb) in ra.chunks(BLOCK).zip(rb.chunks(BLOCK)) {
            let amax = ba.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (x, y) in ba.iter().zip(bb) {
                let e = (x - y) as f64;
                num += e * e;
                den += (*x as f64) * (*x as f64);
                if amax > 0.0 {
                    worst = worst.max((x - y).abs() / amax);
                }
            }
        }
    }
    RoundTripError { rel_rms: if den > 0.0 { (num / den).sqrt() as f32 } else { 0.0 }, max_err_over_block_absmax: worst }
}

#[cfg(test)]
mod kv_tests {
    use super::*;

    #[test]
    fn kv_formats_round_trip_within_their_precision() {
        let x: Vec<f32> = (0..64).map(|i| ((i * 37 % 64) as f32 - 31.5) / 13.0).collect();
        for kv in KvPrecision::ALL {
            let w = kv.encode(&x, 32).unwrap();
            assert_eq!(w.len(), kv.words(x.len()));
            let back = kv.decode(&w, 32);
            let err = back.iter().zip(&x).fold(0f32, |a, (b, v)| a.max((b - v).abs()));
            let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
            let budget = match kv {
                KvPrecision::F32 => 0.0,
                KvPrecision::F16 => amax / 2048.0,
                KvPrecision::Int8 => amax / 127.0 / 2.0 * 1.01,
                KvPrecision::Int4 => amax / 7.5 / 2.0 * 1.02,
                KvPrecision::Int3 => amax / 3.5 / 2.0 * 1.02,
                // Rotated: a rotated coordinate is at most √32·amax, so its error at most half the
                // widest gap of the grid (or the distance from the outer level, at the smallest
                // scale a search tries, to 1) times that; rotated back, the errors of 32
                // coordinates add at most √32-fold.
                KvPrecision::Int4Rot | KvPrecision::Int3Rot => {
                    let top = kv.level((1 << kv.bits()) - 1) * KvPrecision::search_fraction(kv.search() - 1);
                    amax * 32.0 * kv.widest_step().max(1.0 - top) * 1.02
                }
            };
            assert!(err <= budget, "{kv}: {err} > {budget}");
        }
        assert_eq!(KvPrecision::Int8.bytes_per_value(), 1.125);
        assert!(KvPrecision::Int8.encode(&x[..40], 40).is_err());
        assert!(KvPrecision::Int4.encode(&x[..32], 32).is_err());
        // The goal: rotated INT3 at most 0.22 of the f16 cache's bytes, scales included.
        assert_eq!(KvPrecision::Int3Rot.bytes_per_value() / KvPrecision::F16.bytes_per_value(), 0.21875);
        assert_eq!(KvPrecision::Int4.bytes_per_value(), 0.5625);
        for kv in KvPrecision::ALL {
            assert_eq!(KvPrecision::parse(kv.name()).unwrap(), kv);
            assert_eq!(serde_json::to_string(&kv).unwrap(), format!("\"{}\"", kv.name()));
        }
    }

    /// The rotated grids beat the uniform one on Gaussian blocks (what rotated coordinates are),
    /// and every grid is symmetric, increasing, and codes its own levels back to themselves.
    #[test]
    fn lloyd_max_grids_beat_the_uniform_grid_on_gaussian_blocks() {
        let mut state = 0x9e3779b97f4a7c15u64;
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        // Box–Muller normals, 2,000 blocks of 32.
        let x: Vec<f32> = (0..64_000).map(|_| ((-2.0 * uniform().max(1e-12).ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos()) as f32).collect();
        let rms = |kv: KvPrecision| {
            let back: Vec<f32> = x.chunks(KV_UNIT).flat_map(|u| kv.decode_unit(&kv.encode_unit(u))).collect();
            (back.iter().zip(&x).map(|(b, v)| (b - v) * (b - v)).sum::<f32>() / x.len() as f32).sqrt()
        };
        let (u4, l4, u3, l3) = (rms(KvPrecision::Int4), rms(KvPrecision::Int4Rot), rms(KvPrecision::Int3), rms(KvPrecision::Int3Rot));
        assert!(l4 < 0.93 * u4, "4 bits: Lloyd–Max {l4} vs uniform {u4}");
        assert!(l3 < 0.9 * u3, "3 bits: Lloyd–Max {l3} vs uniform {u3}");
        for kv in [KvPrecision::Int4, KvPrecision::Int3, KvPrecision::Int4Rot, KvPrecision::Int3Rot] {
            let n = 1u32 << kv.bits();
            for q in 0..n {
                assert_eq!(kv.level(q), -kv.level(n - 1 - q), "{kv} {q}");
                assert_eq!(kv.code(kv.level(q)), q, "{kv} {q}");
                if q > 0 {
                    assert!(kv.level(q) > kv.level(q - 1));
                }
            }
            // The top level times the block scale is at most the block's largest value.
            assert!(kv.level(n - 1) <= kv.grid().2 + 1e-6);
        }
    }

    /// Rotated INT3's searched block scale: never more squared error in a block than its largest
    /// value's scale with the same grid (which the search tries first), and on Gaussian blocks
    /// clearly less in all; the other formats keep `max|v| / div`.
    #[test]
    fn the_searched_block_scale_leaves_less_error() {
        let mut rng = crate::util::Rng::new(11);
        let x = rng.normals(32 * 2000, 1.0);
        let kv = KvPrecision::Int3Rot;
        let sse = |blk: &[f32], d: f16| {
            let (df, inv) = (d.to_f32(), 1.0 / d.to_f32());
            blk.iter().map(|v| (df * kv.level(kv.code(v * inv)) - v).powi(2)).sum::<f32>()
        };
        let (mut searched, mut largest) = (0f32, 0f32);
        for blk in x.chunks_exact(BLOCK) {
            let amax = f16::from_f32(blk.iter().fold(0f32, |a, v| a.max(v.abs())));
            let (s, l) = (sse(blk, kv.block_scale(blk)), sse(blk, amax));
            assert!(s <= l, "{s} > {l}");
            (searched, largest) = (searched + s, largest + l);
        }
        assert!(searched < 0.93 * largest, "searched {searched} vs largest value's {largest}");
        for other in [KvPrecision::Int4Rot, KvPrecision::Int4, KvPrecision::Int3] {
            let blk = &x[..BLOCK];
            let amax = blk.iter().fold(0f32, |a, v| a.max(v.abs()));
            assert_eq!(other.block_scale(blk), f16::from_f32(amax / other.grid().2), "{other}");
        }
        assert_eq!(kv.block_scale(&[0.0; BLOCK]), f16::ZERO);
    }

    #[test]
    fn rotation_blocks_and_signs() {
        assert_eq!([64, 128, 256, 96, 80, 48, 40, 1].map(rot_block), [64, 64, 64, 32, 16, 16, 8, 1]);
        // The signs are a fixed pattern, not all equal.
        let s: Vec<f32> = (0..64).map(rot_sign).collect();
        let neg = s.iter().filter(|&&v| v < 0.0).count();
        assert!((20..=44).contains(&neg), "{neg} of 64 signs negative");
        assert_eq!(s, (0..64).map(rot_sign).collect::<Vec<_>>());
    }

    #[test]
    fn rotation_is_orthogonal_and_undone_by_its_inverse() {
        for head_dim in [64, 96, 80, 128] {
            let x: Vec<f32> = (0..3 * head_dim).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * (1 + i % 5) as f32).collect();
            let y0: Vec<f32> = (0..3 * head_dim).map(|i| (i * 104729 % 997) as f32 / 498.5 - 1.0).collect();
            let (mut xr, mut yr) = (x.clone(), y0.clone());
            rotate(&mut xr, head_dim, false);
            rotate(&mut yr, head_dim, false);
            assert_ne!(xr, x);
            // Per head, dot products (the attention scores) and norms are unchanged.
            for h in 0..3 {
                let r = h * head_dim..(h + 1) * head_dim;
                let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f32>();
                let (before, after) = (dot(&x[r.clone()], &y0[r.clone()]), dot(&xr[r.clone()], &yr[r.clone()]));
                assert!((before - after).abs() < 1e-4 * dot(&x[r.clone()], &x[r.clone()]).max(1.0), "{head_dim}: {before} vs {after}");
            }
            let mut back = xr.clone();
            rotate(&mut back, head_dim, true);
            let err = back.iter().zip(&x).fold(0f32, |a, (b, v)| a.max((b - v).abs()));
            assert!(err < 1e-5, "{head_dim}: round trip {err}");
        }
    }

    /// The rotation's point: a key with one outlier channel (as real keys have) loses most of its
    /// other channels to the outlier's block scale unrotated; rotated, the outlier's energy is
    /// spread and the error falls.
    #[test]
    fn rotation_lowers_the_error_of_keys_with_an_outlier_channel() {
        let head_dim = 64;
        let x: Vec<f32> = (0..64 * head_dim)
            .map(|i| {
                let g = ((i * 2654435761usize) % 10007) as f32 / 10007.0 - 0.5;
                if i % head_dim == 3 { 12.0 + g } else { g }
            })
            .collect();
        let rms = |kv: KvPrecision| {
            let back = kv.decode(&kv.encode(&x, head_dim).unwrap(), head_dim);
            (back.iter().zip(&x).map(|(b, v)| (b - v) * (b - v)).sum::<f32>() / x.len() as f32).sqrt()
        };
        for (plain, rot) in [(KvPrecision::Int4, KvPrecision::Int4Rot), (KvPrecision::Int3, KvPrecision::Int3Rot)] {
            let (a, b) = (rms(plain), rms(rot));
            assert!(b < 0.7 * a, "{rot} {b} vs {plain} {a}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_is_round_then_clamp() {
        let mut rng = crate::util::Rng::new(3);
        let ties = (-300..=300).map(|i| i as f32 * 0.5);
        let near = (-300..=300).flat_map(|i| {
            let t = i as f32 * 0.5;
            [f32::from_bits(t.to_bits() + 1), f32::from_bits(t.to_bits().saturating_sub(1)), t + 1e-3, t - 1e-3]
        });
        let random = (0..100_000).map(|_| (rng.uniform() - 0.5) * 600.0);
        let huge = [1e9, -1e9, 3e38, -3e38, f32::INFINITY, f32::NEG_INFINITY, 0.49999997, -0.49999997, -0.0];
        for v in ties.chain(near).chain(random).chain(huge) {
            for (lo, hi) in [(-127.0, 127.0), (0.0, 15.0), (0.0, 7.0), (0.0, 3.0)] {
                // `==`: a level of -0 and 0 is the same code.
                assert_eq!(level(v, lo, hi), v.round().clamp(lo, hi), "{v} in [{lo}, {hi}]");
            }
        }
        assert_eq!(level(f32::NAN, -127.0, 127.0), 0.0);
    }
}
