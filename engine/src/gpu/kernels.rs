//! The WGSL kernels and how their sources are composed from `shaders/`.
//!
//! A weight-reading kernel (matvec, matmul, embedding) is one file written against the weight
//! interface (`block_scale`, `weights8`, bindings 0 and 1) and is composed with one
//! `weights_{fp16,int8,int4}.wgsl` file: the block layouts live in exactly one WGSL file each.
//! The matvec adds its row reduction: subgroup shuffles, or workgroup memory as a fallback.

use crate::{KvPrecision, Precision};

const COMMON: &str = include_str!("../../../shaders/common.wgsl");
const REDUCE_SUBGROUP: &str = include_str!("../../../shaders/reduce_subgroup.wgsl");
const REDUCE_WORKGROUP: &str = include_str!("../../../shaders/reduce_workgroup.wgsl");
const WEIGHTS_FP16: &str = include_str!("../../../shaders/weights_fp16.wgsl");
const WEIGHTS_INT8: &str = include_str!("../../../shaders/weights_int8.wgsl");
const WEIGHTS_INT4: &str = include_str!("../../../shaders/weights_int4.wgsl");
const MATVEC: &str = include_str!("../../../shaders/matvec.wgsl");
const MATMUL: &str = include_str!("../../../shaders/matmul.wgsl");
const EMBEDDING: &str = include_str!("../../../shaders/embedding.wgsl");
const RMSNORM: &str = include_str!("../../../shaders/rmsnorm.wgsl");
const ROPE: &str = include_str!("../../../shaders/rope.wgsl");
const SOFTMAX: &str = include_str!("../../../shaders/softmax.wgsl");
const SILU_MUL: &str = include_str!("../../../shaders/silu_mul.wgsl");
const ADD: &str = include_str!("../../../shaders/add.wgsl");
const ATTN_SCORES: &str = include_str!("../../../shaders/attn_scores.wgsl");
const ATTN_VALUES: &str = include_str!("../../../shaders/attn_values.wgsl");
const COPY: &str = include_str!("../../../shaders/copy.wgsl");
const KV_F32: &str = include_str!("../../../shaders/kv_f32.wgsl");
const KV_F16: &str = include_str!("../../../shaders/kv_f16.wgsl");
const KV_INT8: &str = include_str!("../../../shaders/kv_int8.wgsl");
const KV_STORE: &str = include_str!("../../../shaders/kv_store.wgsl");

/// How the matvec adds the partial sums of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reduce {
    /// `subgroupShuffleXor`, no barrier (needs the `subgroups` feature).
    Subgroup,
    /// Workgroup memory and one barrier (every adapter).
    Workgroup,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Matvec(Precision, Reduce),
    Matmul(Precision),
    Embedding(Precision),
    Rmsnorm,
    Rope,
    Softmax,
    SiluMul,
    Add,
    AttnScores(KvPrecision),
    AttnValues(KvPrecision),
    KvStore(KvPrecision),
    Copy,
}

/// The KV cache format a kernel reads or writes (one file per format).
fn kv(k: KvPrecision) -> &'static str {
    match k {
        KvPrecision::F32 => KV_F32,
        KvPrecision::F16 => KV_F16,
        KvPrecision::Int8 => KV_INT8,
    }
}

fn weights(p: Precision) -> &'static str {
    match p {
        Precision::Fp16 => WEIGHTS_FP16,
        Precision::Int8 => WEIGHTS_INT8,
        Precision::Int4 => WEIGHTS_INT4,
    }
}

impl Kernel {
    /// Every kernel variant (each is validated by naga in the tests).
    pub fn all() -> Vec<Kernel> {
        let mut v = Vec::new();
        for p in Precision::ALL {
            v.push(Kernel::Matvec(p, Reduce::Subgroup));
            v.push(Kernel::Matvec(p, Reduce::Workgroup));
            v.push(Kernel::Matmul(p));
            v.push(Kernel::Embedding(p));
        }
        v.extend([
            Kernel::Rmsnorm,
            Kernel::Rope,
            Kernel::Softmax,
            Kernel::SiluMul,
            Kernel::Add,
            Kernel::Copy,
        ]);
        for k in KvPrecision::ALL {
            v.extend([Kernel::AttnScores(k), Kernel::AttnValues(k), Kernel::KvStore(k)]);
        }
        v
    }

    pub fn name(&self) -> String {
        match self {
            Kernel::Matvec(p, Reduce::Subgroup) => format!("matvec_{p}"),
            Kernel::Matvec(p, Reduce::Workgroup) => format!("matvec_{p}_wg"),
            Kernel::Matmul(p) => format!("matmul_{p}"),
            Kernel::Embedding(p) => format!("embedding_{p}"),
            Kernel::Rmsnorm => "rmsnorm".into(),
            Kernel::Rope => "rope".into(),
            Kernel::Softmax => "softmax".into(),
            Kernel::SiluMul => "silu_mul".into(),
            Kernel::Add => "add".into(),
            Kernel::AttnScores(KvPrecision::F32) => "attn_scores".into(),
            Kernel::AttnValues(KvPrecision::F32) => "attn_values".into(),
            Kernel::AttnScores(k) => format!("attn_scores_kv_{k}"),
            Kernel::AttnValues(k) => format!("attn_values_kv_{k}"),
            Kernel::KvStore(k) => format!("kv_store_{k}"),
            Kernel::Copy => "copy".into(),
        }
    }

    /// Whether the kernel needs the `subgroups` feature.
    pub fn needs_subgroups(&self) -> bool {
        matches!(self, Kernel::Matvec(_, Reduce::Subgroup))
    }

    /// The complete WGSL module. Browsers (Tint) need `enable subgroups;` before subgroup
    /// builtins; naga (native wgpu) rejects the directive and enables them by capability.
    pub fn source(&self) -> String {
        let enable = if cfg!(target_arch = "wasm32") && self.needs_subgroups() { "enable subgroups;\n" } else { "" };
        enable.to_string() + &self.wgsl()
    }

    /// The WGSL module as naga reads it (no enable directive).
    pub fn wgsl(&self) -> String {
        let parts: Vec<&str> = match *self {
            Kernel::Matvec(p, r) => {
                let reduce = if r == Reduce::Subgroup { REDUCE_SUBGROUP } else { REDUCE_WORKGROUP };
                vec![reduce, COMMON, weights(p), MATVEC]
            }
            Kernel::Matmul(p) => vec![COMMON, weights(p), MATMUL],
            Kernel::Embedding(p) => vec![COMMON, weights(p), EMBEDDING],
            Kernel::Rmsnorm => vec![COMMON, RMSNORM],
            Kernel::Rope => vec![COMMON, ROPE],
            Kernel::Softmax => vec![COMMON, SOFTMAX],
            Kernel::SiluMul => vec![COMMON, SILU_MUL],
            Kernel::Add => vec![COMMON, ADD],
            Kernel::AttnScores(k) => vec![COMMON, kv(k), ATTN_SCORES],
            Kernel::AttnValues(k) => vec![COMMON, kv(k), ATTN_VALUES],
            Kernel::KvStore(k) => vec![COMMON, kv(k), KV_STORE],
            Kernel::Copy => vec![COMMON, COPY],
        };
        parts.join("\n")
    }
}
