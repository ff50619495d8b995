//! The WGSL kernels and how their sources are composed from `shaders/`.
//!
//! A weight-reading kernel (matvec, matmul, embedding) is one file written against the weight
//! interface (`block_scale`, `weights8`, bindings 0 and 1) and is composed with one
//! `weights_{fp16,int8,int4}.wgsl` file: the block layouts live in exactly one WGSL file each.
//! The matvecs share `matvec_io.wgsl` (bindings and the block dot product with the scale and
//! minimum out of the inner loop) and differ in how a row is spread over invocations ([`Reduce`]);
//! prefill matmuls come tiled in workgroup memory or barrier-free ([`Tiling`]). Which variant runs
//! is chosen per adapter at start-up by a short measurement ([`super::tune::fastest`]).

use crate::model::Activation;
use crate::{KvPrecision, Precision};

/// Every shader file, by name (compiled in).
const SHADERS: &[(&str, &str)] = &[
    ("common", include_str!("../../../shaders/common.wgsl")),
    ("reduce_subgroup", include_str!("../../../shaders/reduce_subgroup.wgsl")),
    ("reduce_workgroup", include_str!("../../../shaders/reduce_workgroup.wgsl")),
    ("weights_fp16", include_str!("../../../shaders/weights_fp16.wgsl")),
    ("weights_int8", include_str!("../../../shaders/weights_int8.wgsl")),
    ("weights_int4", include_str!("../../../shaders/weights_int4.wgsl")),
    ("crumbs", include_str!("../../../shaders/crumbs.wgsl")),
    ("weights_int3", include_str!("../../../shaders/weights_int3.wgsl")),
    ("weights_int2", include_str!("../../../shaders/weights_int2.wgsl")),
    ("matvec_io", include_str!("../../../shaders/matvec_io.wgsl")),
    ("matvec_out", include_str!("../../../shaders/matvec_out.wgsl")),
    ("rows_of", include_str!("../../../shaders/rows_of.wgsl")),
    ("act_q8", include_str!("../../../shaders/act_q8.wgsl")),
    ("act_q8_rows", include_str!("../../../shaders/act_q8_rows.wgsl")),
    ("matmul_x_f32", include_str!("../../../shaders/matmul_x_f32.wgsl")),
    ("matmul_x_q8", include_str!("../../../shaders/matmul_x_q8.wgsl")),
    ("matvec_q8_io", include_str!("../../../shaders/matvec_q8_io.wgsl")),
    ("matvec_q8", include_str!("../../../shaders/matvec_q8.wgsl")),
    ("matvec_q8_rows", include_str!("../../../shaders/matvec_q8_rows.wgsl")),
    ("matvec", include_str!("../../../shaders/matvec.wgsl")),
    ("matvec_rows", include_str!("../../../shaders/matvec_rows.wgsl")),
    ("matmul", include_str!("../../../shaders/matmul.wgsl")),
    ("matmul_rows", include_str!("../../../shaders/matmul_rows.wgsl")),
    ("rows_lanes", include_str!("../../../shaders/rows_lanes.wgsl")),
    ("rows_subgroup", include_str!("../../../shaders/rows_subgroup.wgsl")),
    ("embedding", include_str!("../../../shaders/embedding.wgsl")),
    ("rmsnorm", include_str!("../../../shaders/rmsnorm.wgsl")),
    ("rope_store", include_str!("../../../shaders/rope_store.wgsl")),
    ("step", include_str!("../../../shaders/step.wgsl")),
    ("argmax", include_str!("../../../shaders/argmax.wgsl")),
    ("sample", include_str!("../../../shaders/sample.wgsl")),
    ("glu", include_str!("../../../shaders/glu.wgsl")),
    ("act_silu", include_str!("../../../shaders/act_silu.wgsl")),
    ("act_gelu", include_str!("../../../shaders/act_gelu.wgsl")),
    ("head_norm", include_str!("../../../shaders/head_norm.wgsl")),
    ("add", include_str!("../../../shaders/add.wgsl")),
    ("attn_scores", include_str!("../../../shaders/attn_scores.wgsl")),
    ("attn_softmax", include_str!("../../../shaders/attn_softmax.wgsl")),
    ("attn_values", include_str!("../../../shaders/attn_values.wgsl")),
    ("attn_merge", include_str!("../../../shaders/attn_merge.wgsl")),
    ("hadamard", include_str!("../../../shaders/hadamard.wgsl")),
    ("kv_rotate", include_str!("../../../shaders/kv_rotate.wgsl")),
    ("copy", include_str!("../../../shaders/copy.wgsl")),
    ("kv_mean", include_str!("../../../shaders/kv_mean.wgsl")),
    ("kv_recent", include_str!("../../../shaders/kv_recent.wgsl")),
    ("kv_window", include_str!("../../../shaders/kv_window.wgsl")),
    ("kv_query_sq", include_str!("../../../shaders/kv_query_sq.wgsl")),
    ("kv_balance", include_str!("../../../shaders/kv_balance.wgsl")),
    ("kv_f32", include_str!("../../../shaders/kv_f32.wgsl")),
    ("kv_f16", include_str!("../../../shaders/kv_f16.wgsl")),
    ("kv_int8", include_str!("../../../shaders/kv_int8.wgsl")),
    ("kv_int4", include_str!("../../../shaders/kv_int4.wgsl")),
    ("kv_int3", include_str!("../../../shaders/kv_int3.wgsl")),
    ("kv_grid", include_str!("../../../shaders/kv_grid.wgsl")),
];

/// The text of `shaders/{name}.wgsl`. Natively, `LOWBIT_SHADER_DIR` reads the files from that
/// folder at run time instead (trying a kernel change without rebuilding the engine).
fn part(name: &str) -> String {
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(dir) = std::env::var_os("LOWBIT_SHADER_DIR") {
        if let Ok(text) = std::fs::read_to_string(std::path::Path::new(&dir).join(format!("{name}.wgsl"))) {
            return text;
        }
    }
    SHADERS.iter().find(|(n, _)| *n == name).map(|(_, t)| t.to_string()).unwrap_or_default()
}

/// How a matvec spreads a row over invocations (and so how it adds a row's partial sums).
/// Reports name it in lower case (`subgroup`, `workgroup`, `row`, `row-subgroup`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reduce {
    /// 4 invocations per row, added with `subgroupShuffleXor`, no barrier (needs `subgroups`).
    Subgroup,
    /// 4 invocations per row, added through workgroup memory and one barrier (every adapter).
    #[default]
    Workgroup,
    /// One invocation per row: nothing to add, no barrier. Fastest on CPU adapters, which run
    /// invocations as SIMD lanes; slow on GPUs (the lanes' loads do not coalesce).
    Row,
    /// `Row` with each load of x split over 4 invocations and shared with `subgroupBroadcast`
    /// (needs `subgroups`): on CPU adapters, whose loads cost a loop over the lanes, far fewer loads.
    #[serde(rename = "row-subgroup")]
    RowSubgroup,
}

impl Reduce {
    pub const ALL: [Reduce; 4] = [Reduce::Subgroup, Reduce::Workgroup, Reduce::Row, Reduce::RowSubgroup];

    /// Whether the variant needs the `subgroups` feature.
    pub fn needs_subgroups(self) -> bool {
        matches!(self, Reduce::Subgroup | Reduce::RowSubgroup)
    }

    /// Suffix of the kernel name.
    pub fn suffix(self) -> &'static str {
        match self {
            Reduce::Subgroup => "",
            Reduce::Workgroup => "_wg",
            Reduce::Row => "_rows",
            Reduce::RowSubgroup => "_rows_sg",
        }
    }
}

/// How a prefill matmul is organised. Reports name it in lower case (`shared`, `rows`,
/// `rows-subgroup`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tiling {
    /// 32×32 output tiles staged in workgroup memory (GPUs).
    #[default]
    Shared,
    /// One invocation per (8 rows, 8 tokens), no workgroup memory or barrier (CPU adapters).
    Rows,
    /// `Rows` with each load of x split over 4 invocations and shared with `subgroupBroadcast`
    /// (needs `subgroups`).
    #[serde(rename = "rows-subgroup")]
    RowsSubgroup,
}

impl Tiling {
    pub const ALL: [Tiling; 3] = [Tiling::Shared, Tiling::Rows, Tiling::RowsSubgroup];

    /// Whether the variant needs the `subgroups` feature.
    pub fn needs_subgroups(self) -> bool {
        self == Tiling::RowsSubgroup
    }
}

impl std::fmt::Display for Reduce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reduce::Subgroup => "subgroup",
            Reduce::Workgroup => "workgroup",
            Reduce::Row => "row",
            Reduce::RowSubgroup => "row-subgroup",
        })
    }
}

impl std::fmt::Display for Tiling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tiling::Shared => "shared",
            Tiling::Rows => "rows",
            Tiling::RowsSubgroup => "rows-subgroup",
        })
    }
}

/// How an integer matvec multiplies a block of weights by 8-bit activation codes. Reports name it
/// in lower case (`packed`, `unpacked`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntDot {
    /// WGSL's packed 4×8-bit dot products (`dot4I8Packed`): one instruction per 4 weights where
    /// the adapter has them.
    #[default]
    Packed,
    /// The codes converted to f32 once per block and multiplied as the f32 kernels do (CPU
    /// adapters, which emulate the packed products; the barrier-free matvec only).
    Unpacked,
}

impl std::fmt::Display for IntDot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IntDot::Packed => "packed",
            IntDot::Unpacked => "unpacked",
        })
    }
}

/// What a decode matvec does besides `W·x` (one kernel per combination: the flags are WGSL
/// constants, so each variant compiles to just its own work).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fuse {
    /// `y = W·x`.
    None,
    /// `y = W·rmsnorm(x)`: the attention's stacked Q, K, V projection and the output head.
    Norm,
    /// `y += W·x`: the O and down projections with the residual connection.
    Add,
    /// `y = act(Wg·h) ⊙ (Wu·h)`, `h = rmsnorm(x)`, over gate and up stacked: the gated
    /// feed-forward's input (SwiGLU, GeGLU).
    NormGlu(Activation),
}

impl Fuse {
    pub const ALL: [Fuse; 5] =
        [Fuse::None, Fuse::Norm, Fuse::Add, Fuse::NormGlu(Activation::Silu), Fuse::NormGlu(Activation::Gelu)];

    pub fn norm(self) -> bool {
        matches!(self, Fuse::Norm | Fuse::NormGlu(_))
    }

    /// Matrix rows per output: 2 when gate and up are stacked.
    pub fn pairs(self) -> usize {
        if matches!(self, Fuse::NormGlu(_)) { 2 } else { 1 }
    }

    fn suffix(self) -> &'static str {
        match self {
            Fuse::None => "",
            Fuse::Norm => "_norm",
            Fuse::Add => "_add",
            Fuse::NormGlu(Activation::Silu) => "_norm_silu",
            Fuse::NormGlu(Activation::Gelu) => "_norm_gelu",
        }
    }

    /// The fusion an integer matvec runs for this one: the norm has been applied by `act_q8`
    /// (its scale is in the activations' scales), so `Norm` is `None` there.
    pub fn without_norm(self) -> Fuse {
        if self == Fuse::Norm { Fuse::None } else { self }
    }

    /// The generated WGSL header `matvec_io.wgsl` expects.
    fn header(self) -> String {
        norm_header(self.norm(), 5) + &self.output_header()
    }

    /// The part of the header `matvec_out.wgsl` reads (the gate's activation, PAIRS, ADD).
    fn output_header(self) -> String {
        let act = match self {
            Fuse::NormGlu(a) => part(act(a)),
            _ => "fn act(v: f32) -> f32 { return v; }\n".into(),
        };
        format!("{act}const PAIRS: u32 = {}u;\nconst ADD: bool = {};\n", self.pairs(), self == Fuse::Add)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Matvec(Precision, Reduce, Fuse),
    /// A decode matvec over 8-bit activations (`act_q8`), INT8 or INT4 weights: `Reduce::Row`
    /// is the barrier-free form (CPU adapters), with either [`IntDot`]; the reducing forms use
    /// packed dot products. The fusion is never `Norm` ([`Fuse::without_norm`]).
    MatvecQ8(Precision, Reduce, Fuse, IntDot),
    /// A decode token's activations to 8-bit codes per block of 32 (with the norm's weights when
    /// `norm`; interleaved for INT4's packed products when `interleave`; barrier-free, an
    /// invocation a block, for the barrier-free matvec when `rows`).
    ActQ8 { norm: bool, interleave: bool, rows: bool },
    /// Prefill's activations to 8 bits: the codes and scales (`codes`, for [`Kernel::MatmulQ8`])
    /// or the values they stand for, in f32 (for the tiled matmul).
    ActQ8Rows { codes: bool },
    Matmul(Precision, Tiling),
    /// The barrier-free prefill matmul (`Tiling::Rows` or `RowsSubgroup`) over 8-bit activations
    /// (`ActQ8Rows { codes: true }`), INT8 or INT4 weights.
    MatmulQ8(Precision, Tiling),
    Embedding(Precision),
    Rmsnorm,
    /// `y += rmsnorm(x)·w`.
    RmsnormAdd,
    /// Per-head RMSNorm of q and k in the stacked projection (q/k norms).
    HeadNorm,
    /// `act(gate)·up` over stacked gate and up projections (prefill).
    Glu(Activation),
    Add,
    /// RoPE on q and k of the stacked QKV projection, k and v appended to the cache.
    RopeStore(KvPrecision),
    AttnScores(KvPrecision),
    /// The softmax's maxima, exponentials and sums, per chunk of keys.
    AttnSoftmax,
    /// The weighted sum of values, the chunks merged, per split of the keys.
    AttnValues(KvPrecision),
    /// The splits' shares added up.
    AttnMerge,
    /// The rotated KV formats' rotation of queries, and back of the attention output.
    KvRotate,
    KvMean,
    /// A step's exact keys and values into the layer's ring of recent positions.
    KvRecent,
    /// Each key channel's sum of squared queries over a calibration pass.
    KvQuerySq,
    /// The rotated KV formats' per-channel key scales from a calibration pass.
    KvBalance,
    Argmax,
    /// One draw of the sampler (penalty, top-k, top-p, min-p, temperature).
    Sample,
    Copy,
}

/// The KV cache format a kernel reads or writes (one file per layout; a rotated format shares
/// its plain one's, with its own grid constants, [`crate::KvPrecision::grid`]).
fn kv(k: KvPrecision) -> &'static [&'static str] {
    match k {
        KvPrecision::F32 => &["kv_f32"],
        KvPrecision::F16 => &["kv_f16"],
        KvPrecision::Int8 => &["kv_int8"],
        KvPrecision::Int4 | KvPrecision::Int4Rot => &["kv_int4", "kv_grid"],
        KvPrecision::Int3 | KvPrecision::Int3Rot => &["kv_int3", "kv_grid"],
    }
}

/// The header of a kernel that may fold an rmsnorm's weights into its input: NORM, `norm_w(i)`
/// (the weights of vec4 i, or ones) and, with the norm, the weights' binding.
fn norm_header(norm: bool, binding: u32) -> String {
    if norm {
        format!(
            "@group(0) @binding({binding}) var<storage, read> g: array<vec4<f32>>; // [nb * 8] the norm's weights\n\
             const NORM: bool = true;\nfn norm_w(i: u32) -> vec4<f32> {{ return g[i]; }}\n"
        )
    } else {
        "const NORM: bool = false;\nfn norm_w(i: u32) -> vec4<f32> { return vec4<f32>(1.0); }\n".into()
    }
}

/// How the barrier-free kernels load the x every invocation shares: split over a subgroup and
/// broadcast, or each invocation all of it.
fn rows_loads(subgroups: bool) -> &'static str {
    if subgroups { "rows_subgroup" } else { "rows_lanes" }
}

/// The gate activation's file.
fn act(a: Activation) -> &'static str {
    match a {
        Activation::Silu => "act_silu",
        Activation::Gelu => "act_gelu",
    }
}

/// The weight format's files (INT3 and INT2 read two-bit codes through `crumbs`).
fn weights(p: Precision) -> &'static [&'static str] {
    match p {
        Precision::Fp16 => &["weights_fp16"],
        Precision::Int8 => &["weights_int8"],
        Precision::Int4 => &["weights_int4"],
        Precision::Int3 => &["crumbs", "weights_int3"],
        Precision::Int2 => &["crumbs", "weights_int2"],
    }
}

impl Kernel {
    /// Every kernel variant (each is validated by naga in the tests).
    pub fn all() -> Vec<Kernel> {
        let mut v = Vec::new();
        for p in Precision::ALL {
            for r in Reduce::ALL {
                v.extend(Fuse::ALL.map(|f| Kernel::Matvec(p, r, f)));
            }
            v.extend(Tiling::ALL.map(|t| Kernel::Matmul(p, t)));
            v.push(Kernel::Embedding(p));
            if p.int_dot() {
                v.extend(Kernel::matvec_q8_variants(p));
                v.extend([Tiling::Rows, Tiling::RowsSubgroup].map(|t| Kernel::MatmulQ8(p, t)));
            }
        }
        for norm in [false, true] {
            for rows in [false, true] {
                v.extend([false, true].map(|interleave| Kernel::ActQ8 { norm, interleave, rows }));
            }
        }
        v.extend([false, true].map(|codes| Kernel::ActQ8Rows { codes }));
        v.extend([Kernel::Rmsnorm, Kernel::RmsnormAdd, Kernel::HeadNorm, Kernel::Add, Kernel::Argmax, Kernel::Sample, Kernel::Copy]);
        v.extend([Activation::Silu, Activation::Gelu].map(Kernel::Glu));
        for k in KvPrecision::ALL {
            v.extend([Kernel::RopeStore(k), Kernel::AttnScores(k), Kernel::AttnValues(k)]);
        }
        v.extend([Kernel::AttnSoftmax, Kernel::AttnMerge, Kernel::KvRotate, Kernel::KvMean, Kernel::KvRecent, Kernel::KvQuerySq, Kernel::KvBalance]);
        v
    }

    /// The integer matvec that runs for this request: the barrier-free form needs no subgroups
    /// (its loads of x are already few), the reducing forms use packed products, and the norm
    /// is `act_q8`'s.
    pub fn matvec_q8(p: Precision, reduce: Reduce, fuse: Fuse, dot: IntDot) -> Kernel {
        match reduce {
            Reduce::Row | Reduce::RowSubgroup => Kernel::MatvecQ8(p, Reduce::Row, fuse.without_norm(), dot),
            r => Kernel::MatvecQ8(p, r, fuse.without_norm(), IntDot::Packed),
        }
    }

    /// `act_q8`'s workgroup size: 8 in the barrier-free form (one invocation a block, and one for
    /// the sum of squares), one workgroup of 64 otherwise.
    pub const fn act_q8_workgroup(rows: bool) -> u32 {
        if rows { 8 } else { 64 }
    }

    /// The `act_q8` pass that writes this integer matvec's codes (`norm`: with the norm's
    /// weights): in INT4's interleaved order for INT4's packed products.
    pub fn q8_input(&self, norm: bool) -> Kernel {
        Kernel::ActQ8 {
            norm,
            interleave: matches!(self, Kernel::MatvecQ8(Precision::Int4, _, _, IntDot::Packed)),
            rows: matches!(self, Kernel::MatvecQ8(_, Reduce::Row | Reduce::RowSubgroup, ..)),
        }
    }

    /// The integer matvec's forms an adapter can run (the reducing ones with packed products, the
    /// barrier-free one both ways).
    pub fn q8_forms(subgroups: bool) -> Vec<(Reduce, IntDot)> {
        let all = [(Reduce::Subgroup, IntDot::Packed), (Reduce::Workgroup, IntDot::Packed), (Reduce::Row, IntDot::Packed), (Reduce::Row, IntDot::Unpacked)];
        all.into_iter().filter(|(r, _)| subgroups || !r.needs_subgroups()).collect()
    }

    /// Every integer matvec at precision `p` (each fusion, each form).
    pub fn matvec_q8_variants(p: Precision) -> Vec<Kernel> {
        let fuses = Fuse::ALL.into_iter().filter(|f| *f != Fuse::Norm);
        fuses.flat_map(|f| Kernel::q8_forms(true).into_iter().map(move |(r, d)| Kernel::MatvecQ8(p, r, f, d))).collect()
    }

    pub fn name(&self) -> String {
        match self {
            Kernel::MatvecQ8(p, r, f, d) => {
                let dot = if *d == IntDot::Unpacked { "_unpacked" } else { "" };
                format!("matvec_q8_{p}{}{dot}{}", r.suffix(), f.suffix())
            }
            Kernel::ActQ8 { norm, interleave, rows } => {
                format!("act_q8{}{}{}", if *rows { "_rows" } else { "" }, if *norm { "_norm" } else { "" }, if *interleave { "_interleaved" } else { "" })
            }
            Kernel::ActQ8Rows { codes } => format!("act_q8_rows{}", if *codes { "_codes" } else { "" }),
            Kernel::Matvec(p, r, f) => format!("matvec_{p}{}{}", r.suffix(), f.suffix()),
            Kernel::Matmul(p, Tiling::Shared) => format!("matmul_{p}"),
            Kernel::Matmul(p, Tiling::Rows) => format!("matmul_{p}_rows"),
            Kernel::Matmul(p, Tiling::RowsSubgroup) => format!("matmul_{p}_rows_sg"),
            Kernel::MatmulQ8(p, t) => format!("matmul_q8_{p}_rows{}", if t.needs_subgroups() { "_sg" } else { "" }),
            Kernel::Embedding(p) => format!("embedding_{p}"),
            Kernel::Rmsnorm => "rmsnorm".into(),
            Kernel::RmsnormAdd => "rmsnorm_add".into(),
            Kernel::HeadNorm => "head_norm".into(),
            Kernel::Glu(Activation::Silu) => "silu_mul".into(),
            Kernel::Glu(Activation::Gelu) => "gelu_mul".into(),
            Kernel::Add => "add".into(),
            Kernel::AttnScores(KvPrecision::F32) => "attn_scores".into(),
            Kernel::AttnValues(KvPrecision::F32) => "attn_values".into(),
            Kernel::AttnScores(k) => format!("attn_scores_kv_{k}"),
            Kernel::AttnValues(k) => format!("attn_values_kv_{k}"),
            Kernel::AttnSoftmax => "attn_softmax".into(),
            Kernel::AttnMerge => "attn_merge".into(),
            Kernel::KvRotate => "kv_rotate".into(),
            Kernel::KvMean => "kv_mean".into(),
            Kernel::KvRecent => "kv_recent".into(),
            Kernel::KvQuerySq => "kv_query_sq".into(),
            Kernel::KvBalance => "kv_balance".into(),
            Kernel::RopeStore(k) => format!("rope_store_kv_{k}"),
            Kernel::Argmax => "argmax".into(),
            Kernel::Sample => "sample".into(),
            Kernel::Copy => "copy".into(),
        }
    }

    /// Whether the kernel needs the `subgroups` feature.
    pub fn needs_subgroups(&self) -> bool {
        match self {
            Kernel::Matvec(_, r, _) | Kernel::MatvecQ8(_, r, _, _) => r.needs_subgroups(),
            Kernel::Matmul(_, t) | Kernel::MatmulQ8(_, t) => t.needs_subgroups(),
            _ => false,
        }
    }

    /// The complete WGSL module. Browsers (Tint) need `enable subgroups;` before subgroup
    /// builtins; naga (native wgpu) rejects the directive and enables them by capability.
    pub fn source(&self) -> String {
        let enable = if cfg!(target_arch = "wasm32") && self.needs_subgroups() { "enable subgroups;\n" } else { "" };
        enable.to_string() + &self.wgsl()
    }

    /// The shader files this kernel is composed of, in order.
    pub fn parts(&self) -> Vec<&'static str> {
        match *self {
            Kernel::Matvec(p, r @ (Reduce::Row | Reduce::RowSubgroup), _) => {
                [&["common"][..], weights(p), &["matvec_io", "matvec_out", rows_loads(r.needs_subgroups()), "rows_of", "matvec_rows"]].concat()
            }
            Kernel::Matvec(p, r, _) => {
                let reduce = if r == Reduce::Subgroup { "reduce_subgroup" } else { "reduce_workgroup" };
                [&[reduce, "common"][..], weights(p), &["matvec_io", "matvec_out", "matvec"]].concat()
            }
            Kernel::MatvecQ8(p, Reduce::Row | Reduce::RowSubgroup, _, _) => {
                [&["common"][..], weights(p), &["matvec_q8_io", "matvec_out", "rows_of", "matvec_q8_rows"]].concat()
            }
            Kernel::MatvecQ8(p, r, _, _) => {
                let reduce = if r == Reduce::Subgroup { "reduce_subgroup" } else { "reduce_workgroup" };
                [&[reduce, "common"][..], weights(p), &["matvec_q8_io", "matvec_out", "matvec_q8"]].concat()
            }
            Kernel::ActQ8 { .. } => vec!["act_q8"],
            Kernel::ActQ8Rows { .. } => vec!["act_q8_rows"],
            Kernel::Matmul(p, Tiling::Shared) => [&["common"][..], weights(p), &["matmul"]].concat(),
            Kernel::Matmul(p, t @ (Tiling::Rows | Tiling::RowsSubgroup)) => {
                [&["common"][..], weights(p), &[rows_loads(t.needs_subgroups()), "matmul_x_f32", "matmul_rows"]].concat()
            }
            Kernel::MatmulQ8(p, t) => [&["common"][..], weights(p), &[rows_loads(t.needs_subgroups()), "matmul_x_q8", "matmul_rows"]].concat(),
            Kernel::Embedding(p) => [&["common"][..], weights(p), &["embedding"]].concat(),
            Kernel::Rmsnorm | Kernel::RmsnormAdd => vec!["common", "rmsnorm"],
            Kernel::HeadNorm => vec!["common", "head_norm"],
            Kernel::Glu(a) => vec!["common", act(a), "glu"],
            Kernel::Add => vec!["common", "add"],
            Kernel::RopeStore(k) => [&["common", "step", "hadamard"][..], kv(k), &["rope_store"]].concat(),
            Kernel::AttnScores(k) => [&["common", "step"][..], kv(k), &["kv_window", "attn_scores"]].concat(),
            Kernel::AttnSoftmax => vec!["common", "step", "attn_softmax"],
            Kernel::AttnValues(k) => [&["common", "step"][..], kv(k), &["kv_window", "attn_values"]].concat(),
            Kernel::KvRotate => vec!["common", "hadamard", "kv_rotate"],
            Kernel::KvMean => vec!["common", "kv_mean"],
            Kernel::KvRecent => vec!["common", "step", "kv_recent"],
            Kernel::KvQuerySq => vec!["common", "kv_query_sq"],
            Kernel::KvBalance => vec!["common", "kv_balance"],
            Kernel::AttnMerge => vec!["common", "step", "attn_merge"],
            Kernel::Argmax => vec!["argmax"],
            Kernel::Sample => vec!["sample"],
            Kernel::Copy => vec!["common", "copy"],
        }
    }

    /// The WGSL module as naga reads it (no enable directive).
    pub fn wgsl(&self) -> String {
        use super::ops::{ATTN_CHUNK, ATTN_GROUP_TILE, ATTN_SPLIT};
        let mut header = match self {
            Kernel::Matvec(_, _, f) => f.header(),
            Kernel::MatvecQ8(_, _, f, d) => format!("{}const PACKED: bool = {};\n", f.output_header(), *d == IntDot::Packed),
            Kernel::ActQ8 { norm, interleave, rows } => {
                norm_header(*norm, 4) + &format!("const INTERLEAVE: bool = {interleave};\nconst ROWS: bool = {rows};\nconst WG: u32 = {};\n", Kernel::act_q8_workgroup(*rows))
            }
            Kernel::Rmsnorm => "const ADD: bool = false;\n".into(),
            Kernel::RmsnormAdd => "const ADD: bool = true;\n".into(),
            Kernel::ActQ8Rows { codes } => format!("const CODES: bool = {codes};\n"),
            Kernel::AttnSoftmax => format!("const CHUNK: u32 = {ATTN_CHUNK}u;\n"),
            Kernel::AttnValues(_) => format!("const CHUNK: u32 = {ATTN_CHUNK}u;\nconst SPLIT: u32 = {ATTN_SPLIT}u;\nconst GT: u32 = {ATTN_GROUP_TILE}u;\n"),
            Kernel::AttnMerge => format!("const CHUNK: u32 = {ATTN_CHUNK}u;\nconst SPLIT: u32 = {ATTN_SPLIT}u;\n"),
            Kernel::AttnScores(_) => format!("const GT: u32 = {ATTN_GROUP_TILE}u;\n"),
            _ => String::new(),
        };
        if let Kernel::RopeStore(k) | Kernel::AttnScores(k) | Kernel::AttnValues(k) = self {
            // The INT4/INT3 grid (unused by the other formats).
            let (a, b, div) = k.grid();
            header += &format!("const KV_A: f32 = {a:?};\nconst KV_B: f32 = {b:?};\nconst KV_DIV: f32 = {div:?};\nconst KV_SEARCH: u32 = {}u;\nconst KV_SEARCH_STEP: f32 = {:?};\n", k.search(), crate::layout::KV_SEARCH_STEP);
            // The grid's midpoints, padded to whole vec4s with a value no code reaches.
            let mut mids = if matches!(k.bits(), 3 | 4) { k.midpoints() } else { vec![] };
            mids.resize(mids.len().div_ceil(4).max(1) * 4, 1e30);
            let quads: Vec<String> = mids.chunks(4).map(|c| format!("vec4<f32>({:?}, {:?}, {:?}, {:?})", c[0], c[1], c[2], c[3])).collect();
            header += &format!("const KV_MIDS_N: u32 = {}u;\nconst KV_MIDS = array<vec4<f32>, {}>({});\n", quads.len(), quads.len(), quads.join(", "));
        }
        header + &self.parts().into_iter().map(part).collect::<Vec<_>>().join("\n")
    }
}
