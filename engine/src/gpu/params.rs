//! Kernel parameters as typed `#[repr(C)]` structs, one per WGSL `Params` (ratchet's way): the
//! host fills fields by name, and a naga test checks that every kernel's `Params` (and `Step`) has
//! the same members at the same offsets and the same size as its struct here.

use super::Kernel;

/// A uniform struct shared with WGSL.
pub trait Params: bytemuck::Pod {
    /// The WGSL struct's name.
    const WGSL: &'static str;
    /// `(member, byte offset)` in declaration order.
    const FIELDS: &'static [(&'static str, usize)];

    /// Its words, as the uniform holds them (borrowed: recording a dispatch allocates nothing).
    fn words(&self) -> &[u32] {
        bytemuck::cast_slice(std::slice::from_ref(self))
    }
}

macro_rules! params {
    ($(#[$doc:meta])* $name:ident as $wgsl:literal { $($field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $(pub $field: $ty),*
        }

        impl Params for $name {
            const WGSL: &'static str = $wgsl;
            const FIELDS: &'static [(&'static str, usize)] = &[$((stringify!($field), std::mem::offset_of!($name, $field))),*];
        }
    };
}

params!(
    /// `matvec_io.wgsl`, `matvec_q8_io.wgsl`.
    MatvecParams as "Params" { n: u32, k: u32, nb: u32, eps: f32 }
);
params!(
    /// `act_q8.wgsl`.
    ActQ8Params as "Params" { k: u32, nb: u32, eps: f32, _pad: u32 }
);
params!(
    /// `act_q8_rows.wgsl`.
    ActQ8RowsParams as "Params" { m: u32, k: u32, nb: u32, _pad: u32 }
);
params!(
    /// `matmul.wgsl`, `matmul_rows.wgsl`.
    MatmulParams as "Params" { m: u32, n: u32, k: u32, nb: u32 }
);
params!(
    /// `embedding.wgsl`.
    EmbeddingParams as "Params" { m: u32, k: u32, nb: u32, first: u32, rows: u32, scale: f32, _pad1: u32, _pad2: u32 }
);
params!(
    /// `rmsnorm.wgsl`.
    RmsnormParams as "Params" { rows: u32, d: u32, eps: f32, _pad: u32 }
);
params!(
    /// `glu.wgsl`.
    GluParams as "Params" { m: u32, n: u32, _pad0: u32, _pad1: u32 }
);
params!(
    /// `head_norm.wgsl`.
    HeadNormParams as "Params" { m: u32, heads: u32, kv_heads: u32, head_dim: u32, eps: f32, _pad0: u32, _pad1: u32, _pad2: u32 }
);
params!(
    /// `add.wgsl`, `copy.wgsl`.
    LenParams as "Params" { len: u32, _pad0: u32, _pad1: u32, _pad2: u32 }
);
params!(
    /// `rope_store.wgsl`.
    RopeStoreParams as "Params" {
        m: u32, heads: u32, kv_heads: u32, head_dim: u32, n_rot: u32, neox: u32, base: f32, v_base: u32,
        scale: f32, rot: u32, center: u32, mean_at: u32, scale_at: u32, scaled: u32, recent: u32, _pad1: u32,
    }
);
params!(
    /// `attn_scores.wgsl`.
    AttnScoresParams as "Params" {
        rows: u32, heads: u32, kv_heads: u32, head_dim: u32, q_stride: u32, scale: f32, window: u32, t0: u32,
        recent: u32, slots: u32, ring_at: u32, _pad0: u32,
    }
);
params!(
    /// `attn_softmax.wgsl`.
    AttnSoftmaxParams as "Params" { rows: u32, heads: u32, window: u32, t0: u32 }
);
params!(
    /// `attn_values.wgsl`.
    AttnValuesParams as "Params" {
        rows: u32, heads: u32, kv_heads: u32, head_dim: u32, v_base: u32, window: u32, t0: u32, recent: u32,
        slots: u32, ring_at: u32, _pad0: u32, _pad1: u32,
    }
);
params!(
    /// `attn_merge.wgsl`.
    AttnMergeParams as "Params" { rows: u32, heads: u32, head_dim: u32, t0: u32 }
);
params!(
    /// `kv_rotate.wgsl`.
    KvRotateParams as "Params" {
        m: u32, heads: u32, head_dim: u32, stride: u32, r: u32, inverse: u32, kv_heads: u32, scale_at: u32,
        scaled: u32, _pad0: u32, _pad1: u32, _pad2: u32,
    }
);
params!(
    /// `kv_recent.wgsl`.
    KvRecentParams as "Params" { m: u32, kvd: u32, slots: u32, at: u32 }
);
params!(
    /// `kv_mean.wgsl`.
    KvMeanParams as "Params" { n: u32, kv_dim: u32, at: u32, _pad: u32 }
);
params!(
    /// `kv_query_sq.wgsl`.
    KvQuerySqParams as "Params" { m: u32, heads: u32, kv_heads: u32, head_dim: u32, stride: u32, at: u32, _pad0: u32, _pad1: u32 }
);
params!(
    /// `kv_balance.wgsl`.
    KvBalanceParams as "Params" { n: u32, kv_dim: u32, head_dim: u32, mean_at: u32, scale_at: u32, qsq_at: u32, _pad0: u32, _pad1: u32 }
);
params!(
    /// `argmax.wgsl`.
    ArgmaxParams as "Params" { n: u32, _pad0: u32, _pad1: u32, _pad2: u32 }
);
params!(
    /// `sample.wgsl` (the draw's recent tokens and random number travel in a storage buffer).
    SampleParams as "Params" {
        n: u32, k: u32, penalty: f32, top_p: f32, min_p: f32, temperature: f32, _pad0: u32, _pad1: u32,
    }
);
params!(
    /// `step.wgsl`: what changes between forward steps, bound beside `Params` as `step`.
    Step as "Step" { pos0: u32, _pad0: u32, _pad1: u32, _pad2: u32 }
);

/// The layout of a kernel's uniforms: `(WGSL struct, members, size)` for `p`, then for `step`
/// where it has one.
pub type Layout = (&'static str, &'static [(&'static str, usize)], usize);

fn layout<P: Params>() -> Layout {
    (P::WGSL, P::FIELDS, std::mem::size_of::<P>())
}

impl Kernel {
    /// The layouts of this kernel's `p` and `step` uniforms (what the naga test compares).
    pub fn uniforms(&self) -> Vec<(&'static str, Layout)> {
        let p = match self {
            Kernel::Matvec(..) | Kernel::MatvecQ8(..) => layout::<MatvecParams>(),
            Kernel::ActQ8 { .. } => layout::<ActQ8Params>(),
            Kernel::ActQ8Rows { .. } => layout::<ActQ8RowsParams>(),
            Kernel::Matmul(..) | Kernel::MatmulQ8(..) => layout::<MatmulParams>(),
            Kernel::Embedding(_) => layout::<EmbeddingParams>(),
            Kernel::Rmsnorm | Kernel::RmsnormAdd => layout::<RmsnormParams>(),
            Kernel::HeadNorm => layout::<HeadNormParams>(),
            Kernel::Glu(_) => layout::<GluParams>(),
            Kernel::Add | Kernel::Copy => layout::<LenParams>(),
            Kernel::RopeStore(_) => layout::<RopeStoreParams>(),
            Kernel::AttnScores(_) => layout::<AttnScoresParams>(),
            Kernel::AttnSoftmax => layout::<AttnSoftmaxParams>(),
            Kernel::AttnValues(_) => layout::<AttnValuesParams>(),
            Kernel::KvRotate => layout::<KvRotateParams>(),
            Kernel::KvMean => layout::<KvMeanParams>(),
            Kernel::KvRecent => layout::<KvRecentParams>(),
            Kernel::KvQuerySq => layout::<KvQuerySqParams>(),
            Kernel::KvBalance => layout::<KvBalanceParams>(),
            Kernel::AttnMerge => layout::<AttnMergeParams>(),
            Kernel::Argmax => layout::<ArgmaxParams>(),
            Kernel::Sample => layout::<SampleParams>(),
        };
        let mut v = vec![("p", p)];
        if matches!(self, Kernel::RopeStore(_) | Kernel::AttnScores(_) | Kernel::AttnSoftmax | Kernel::AttnValues(_) | Kernel::AttnMerge | Kernel::KvRecent) {
            v.push(("step", layout::<Step>()));
        }
        v
    }
}
