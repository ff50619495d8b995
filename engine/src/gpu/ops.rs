//! Typed ops over the kernels, recorded into one command encoder and one compute pass (a pass per
//! dispatch only while timing them). A recorder given a [`BindCache`] keeps every bind group and
//! parameter buffer it makes, keyed by what they hold: replaying a decode step over the same
//! long-lived buffers then creates nothing (web-rwkv's way: built once, replayed every step).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::params::{
    ActQ8Params, ActQ8RowsParams, ArgmaxParams, SampleParams, AttnScoresParams, AttnSoftmaxParams, AttnValuesParams, KvRecentParams, AttnMergeParams, KvRotateParams, KvMeanParams, KvQuerySqParams, KvBalanceParams, EmbeddingParams, LenParams, MatmulParams, MatvecParams, Params,
    RmsnormParams, RopeStoreParams, GluParams, HeadNormParams,
};
use super::{grid, grid_for, Buffer, Fuse, Gpu, GpuMatrix, IntDot, Kernel, PassTimer, Reduce, Tiling};
use crate::reference::{Attention, Rope};
use crate::sampler::Draw;
use crate::KvPrecision;

/// What a binding of a dispatch holds: a buffer, the kernel's parameters (a uniform made from
/// their words), or nothing (a gap: FP16 weights have no scale binding).
pub enum Bind<'b> {
    Buf(&'b Buffer),
    Params(&'b [u32]),
    None,
}

/// The most bindings a kernel has.
const MAX_BINDS: usize = 8;
/// The most words a kernel's parameters have.
const MAX_PARAM_WORDS: usize = 16;

/// What a binding holds, as a [`BindCache`] key: owned, so the cache keeps its buffers alive (and
/// their identity unique), and of a fixed size, so looking a dispatch up allocates nothing.
/// Parameters are zero-padded: one kernel's always have the same length.
#[derive(Clone, PartialEq, Eq, Hash)]
enum BindKey {
    Buf(Buffer),
    Params([u32; MAX_PARAM_WORDS]),
    None,
}

/// A dispatch's kernel and bindings (the slots past its last binding hold `None`).
type DispatchKey = (Kernel, [BindKey; MAX_BINDS]);

impl BindKey {
    fn of(kernel: Kernel, binds: &[Bind]) -> DispatchKey {
        assert!(binds.len() <= MAX_BINDS, "{} binds for {}: at most {MAX_BINDS}", binds.len(), kernel.name());
        let key = std::array::from_fn(|i| match binds.get(i) {
            Some(Bind::Buf(b)) => BindKey::Buf((*b).clone()),
            Some(Bind::Params(w)) => {
                let mut words = [0; MAX_PARAM_WORDS];
                words[..w.len()].copy_from_slice(w);
                BindKey::Params(words)
            }
            Some(Bind::None) | None => BindKey::None,
        });
        (kernel, key)
    }
}

/// The most candidates `sample.wgsl` keeps (top-k).
pub const SAMPLE_MAX_K: usize = 256;
/// The most recent tokens `sample.wgsl` penalizes.
pub const SAMPLE_MAX_RECENT: usize = 510;

/// Whether `sample.wgsl` can make draw `d` (else the logits are read back and drawn from here).
pub fn sample_fits(d: &Draw) -> bool {
    (d.temperature <= 0.0 || (1..=SAMPLE_MAX_K).contains(&d.top_k)) && d.recent.len() <= SAMPLE_MAX_RECENT
}

/// The storage words of a draw for `sample.wgsl`: [bits of u, n_recent, recent…], padded to a
/// fixed size (one buffer, written once per draw).
pub fn draw_words(d: &Draw) -> Vec<u32> {
    let mut w = vec![0u32; SAMPLE_MAX_RECENT + 2];
    w[0] = d.u.to_bits();
    w[1] = d.recent.len().min(SAMPLE_MAX_RECENT) as u32;
    for (slot, &t) in w[2..].iter_mut().zip(&d.recent) {
        *slot = t;
    }
    w
}

/// Bind groups and parameter buffers kept for reuse. Only for dispatches whose buffers all live
/// as long as the cache (weights, the KV cache, a decode step's activations): the cache holds
/// them alive. Its owner clears it when those buffers change.
#[derive(Default)]
pub struct BindCache {
    binds: HashMap<DispatchKey, wgpu::BindGroup>,
    uniforms: HashMap<Vec<u32>, Buffer>,
}

impl BindCache {
    pub fn clear(&mut self) {
        self.binds.clear();
        self.uniforms.clear();
    }

    pub fn len(&self) -> usize {
        self.binds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.binds.is_empty()
    }
}

/// Records dispatches into one command encoder, optionally timing each.
pub struct Recorder {
    pub gpu: Gpu,
    enc: wgpu::CommandEncoder,
    pass: Option<wgpu::ComputePass<'static>>,
    timer: Option<Rc<PassTimer>>,
    dispatches: u32,
    capacity: u32,
    /// The kernel of every dispatch recorded while timing (what each timestamp pair measured).
    pub kernels: Vec<Kernel>,
    cache: Option<Rc<RefCell<BindCache>>>,
}

impl Recorder {
    /// A recorder whose first `capacity` dispatches write timestamps into `timer`.
    pub fn new(gpu: &Gpu, timer: Option<Rc<PassTimer>>, capacity: u32) -> Self {
        Recorder { gpu: gpu.clone(), enc: gpu.encoder(), pass: None, timer, dispatches: 0, capacity, kernels: vec![], cache: None }
    }

    /// A recorder that reuses (and fills) `cache`.
    pub fn cached(gpu: &Gpu, cache: Rc<RefCell<BindCache>>, timer: Option<Rc<PassTimer>>, capacity: u32) -> Self {
        Recorder { cache: Some(cache), ..Recorder::new(gpu, timer, capacity) }
    }

    /// Dispatches recorded so far.
    pub fn dispatches(&self) -> u32 {
        self.dispatches
    }

    /// The command encoder, for copies (ends the open compute pass).
    pub fn encoder(&mut self) -> &mut wgpu::CommandEncoder {
        self.pass = None;
        &mut self.enc
    }

    /// The bind group of a dispatch: the cache's when it has one (found without allocating), else
    /// made (and kept when caching).
    fn bind_group(&self, kernel: Kernel, binds: &[Bind]) -> wgpu::BindGroup {
        let key = self.cache.as_ref().map(|_| BindKey::of(kernel, binds));
        if let Some((c, key)) = self.cache.as_ref().zip(key.as_ref()) {
            if let Some(bg) = c.borrow().binds.get(key) {
                return bg.clone();
            }
        }
        let uniforms: Vec<Option<Buffer>> = binds
            .iter()
            .map(|b| match b {
                Bind::Params(w) => Some(match &self.cache {
                    Some(c) => {
                        let found = c.borrow().uniforms.get(*w).cloned();
                        found.unwrap_or_else(|| {
                            let u = self.gpu.uniform("params", w);
                            c.borrow_mut().uniforms.insert(w.to_vec(), u.clone());
                            u
                        })
                    }
                    None => self.gpu.uniform("params", w),
                }),
                _ => None,
            })
            .collect();
        let entries: Vec<wgpu::BindGroupEntry> = binds
            .iter()
            .zip(&uniforms)
            .enumerate()
            .filter_map(|(i, (b, u))| {
                let buf = match b {
                    Bind::Buf(b) => *b,
                    Bind::Params(_) => u.as_ref()?,
                    Bind::None => return None,
                };
                Some(wgpu::BindGroupEntry { binding: i as u32, resource: buf.as_entire_binding() })
            })
            .collect();
        let bg = self.gpu.bind_group(kernel, &entries);
        if let Some((c, key)) = self.cache.as_ref().zip(key) {
            c.borrow_mut().binds.insert(key, bg.clone());
        }
        bg
    }

    fn run(&mut self, kernel: Kernel, binds: &[Bind], groups: [u32; 3]) {
        let pipeline = self.gpu.pipeline(kernel);
        let bg = self.bind_group(kernel, binds);
        let timed = self.timer.clone().filter(|_| self.dispatches < self.capacity);
        if let Some(t) = timed {
            self.kernels.push(kernel);
            self.pass = None;
            let (set, i) = t.slot(self.dispatches);
            let tw = wgpu::ComputePassTimestampWrites {
                query_set: set,
                beginning_of_pass_write_index: Some(i),
                end_of_pass_write_index: Some(i + 1),
            };
            let mut pass = self.enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: Some(tw) });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        } else {
            let enc = &mut self.enc;
            let pass = self.pass.get_or_insert_with(|| {
                enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None }).forget_lifetime()
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        }
        self.dispatches += 1;
    }

    /// A timestamp at this point of the recording, into query `index` of `set` (an empty compute
    /// pass that writes it: at its beginning when `begin`, else at its end).
    pub fn mark(&mut self, set: &wgpu::QuerySet, index: u32, begin: bool) {
        self.pass = None;
        let tw = wgpu::ComputePassTimestampWrites {
            query_set: set,
            beginning_of_pass_write_index: begin.then_some(index),
            end_of_pass_write_index: (!begin).then_some(index),
        };
        drop(self.enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("mark"),
            timestamp_writes: Some(tw),
        }));
    }

    /// Submit everything recorded (resolving the timer's queries first).
    pub fn submit(mut self) {
        self.pass = None;
        if let Some(t) = &self.timer {
            t.resolve(&mut self.enc);
        }
        self.gpu.submit(self.enc);
    }

    fn weights<'b>(w: &'b GpuMatrix) -> [Bind<'b>; 2] {
        let (q, s) = w.whole();
        [Bind::Buf(q), s.map_or(Bind::None, Bind::Buf)]
    }

    /// `y [n] = W [n, k] · x [k]`, with the adapter's best matvec.
    pub fn matvec(&mut self, w: &GpuMatrix, x: &Buffer, y: &Buffer) {
        self.matvec_with(w, x, y, self.gpu.reduce());
    }

    /// `matvec` with a chosen variant (tests run each).
    pub fn matvec_with(&mut self, w: &GpuMatrix, x: &Buffer, y: &Buffer, reduce: Reduce) {
        self.matvec_fused(w, x, y, Fuse::None, None, reduce);
    }

    /// A decode matvec with `fuse` folded in (`norm` = (rmsnorm weights, eps) for the fusions that
    /// normalize x): `y = W·x`, `y = W·rmsnorm(x)`, `y += W·x` or `y = silu(Wg·h)·(Wu·h)` with
    /// `W = [Wg; Wu]`. The output has `rows / fuse.pairs()` values.
    pub fn matvec_fused(
        &mut self,
        w: &GpuMatrix,
        x: &Buffer,
        y: &Buffer,
        fuse: Fuse,
        norm: Option<(&Buffer, f32)>,
        reduce: Reduce,
    ) {
        let n = w.rows / fuse.pairs();
        let p = MatvecParams {
            n: n as u32,
            k: w.cols as u32,
            nb: w.blocks_per_row() as u32,
            eps: norm.map_or(0.0, |(_, e)| e),
        };
        let groups = match reduce {
            // 8 lanes × 8 rows (matvec_rows.wgsl): 64 rows, 64 / pairs outputs per workgroup.
            Reduce::Row | Reduce::RowSubgroup => grid(n.div_ceil(64 / fuse.pairs()) as u32),
            Reduce::Subgroup | Reduce::Workgroup => grid(n.div_ceil(16) as u32),
        };
        let [q, s] = Self::weights(w);
        let g = norm.map_or(Bind::None, |(g, _)| Bind::Buf(g));
        let binds = [q, s, Bind::Buf(x), Bind::Buf(y), Bind::Params(p.words()), g];
        // The fusions that normalize x bind its norm's weights last.
        let used = if fuse.norm() { binds.len() } else { binds.len() - 1 };
        self.run(Kernel::Matvec(w.precision, reduce, fuse), &binds[..used], groups);
    }

    /// Prefill's activations `x [m, k]` quantized to 8 bits per block into `y`: with `codes`, the
    /// codes and scales [`Recorder::matmul_q8`] reads ([`q8_rows_words`]: `[m · nb · 8]` words of
    /// 4 codes, then `[m · nb]` scales), else the values they stand for, in f32 (`[m, k]`).
    pub fn act_q8_rows(&mut self, x: &Buffer, y: &Buffer, m: usize, k: usize, codes: bool) {
        let nb = k.div_ceil(32);
        let p = ActQ8RowsParams { m: m as u32, k: k as u32, nb: nb as u32, _pad: 0 };
        self.run(Kernel::ActQ8Rows { codes }, &[Bind::Buf(x), Bind::Buf(y), Bind::Params(p.words())], grid_for(m * nb));
    }

    /// [`Recorder::matvec_fused`] over 8-bit activations (INT8 or INT4 `w`): `act_q8` writes the
    /// codes and block scales of `x [k]` (zero-padded to whole blocks) into `q8` = (codes, scales),
    /// with the norm's weights folded in for the fusions that normalize (`norm` = (weights, eps))
    /// and the norm's scale left for the matvec; then the integer matvec ([`Kernel::matvec_q8`])
    /// multiplies them.
    #[allow(clippy::too_many_arguments)]
    pub fn matvec_q8(&mut self, w: &GpuMatrix, x: &Buffer, y: &Buffer, fuse: Fuse, norm: Option<(&Buffer, f32)>, q8: (&Buffer, &Buffer), reduce: Reduce, dot: IntDot) {
        let (xq, xd) = q8;
        let kernel = Kernel::matvec_q8(w.precision, reduce, fuse, dot);
        let norm = norm.filter(|_| fuse.norm());
        let (k, nb) = (w.cols as u32, w.blocks_per_row() as u32);
        let p = ActQ8Params { k, nb, eps: norm.map_or(0.0, |(_, e)| e), _pad: 0 };
        let g = norm.map_or(Bind::None, |(g, _)| Bind::Buf(g));
        let binds = [Bind::Buf(x), Bind::Buf(xq), Bind::Buf(xd), Bind::Params(p.words()), g];
        let used = if norm.is_some() { binds.len() } else { binds.len() - 1 };
        let q8_input = kernel.q8_input(norm.is_some());
        let Kernel::ActQ8 { rows, .. } = q8_input else { unreachable!() };
        let q8_groups = if rows { grid((nb + 1).div_ceil(Kernel::act_q8_workgroup(rows))) } else { [1, 1, 1] };
        self.run(q8_input, &binds[..used], q8_groups);
        let Kernel::MatvecQ8(_, reduce, fuse, _) = kernel else { unreachable!() };
        let n = w.rows / fuse.pairs();
        let p = MatvecParams { n: n as u32, k, nb, eps: 0.0 };
        let groups = match reduce {
            Reduce::Row | Reduce::RowSubgroup => grid(n.div_ceil(64 / fuse.pairs()) as u32),
            Reduce::Subgroup | Reduce::Workgroup => grid(n.div_ceil(16) as u32),
        };
        let [q, s] = Self::weights(w);
        let binds = [q, s, Bind::Buf(xq), Bind::Buf(y), Bind::Params(p.words()), Bind::Buf(xd)];
        self.run(kernel, &binds, groups);
    }

    /// `Y [m, n] = X [m, k] · W [n, k]ᵀ`, with the adapter's best tiling ([`matmul_tiling`]).
    pub fn matmul(&mut self, w: &GpuMatrix, x: &Buffer, y: &Buffer, m: usize) {
        self.matmul_with(w, x, y, m, matmul_tiling(&self.gpu, w));
    }

    /// `matmul` with a chosen tiling (tests run both).
    pub fn matmul_with(&mut self, w: &GpuMatrix, x: &Buffer, y: &Buffer, m: usize, tiling: Tiling) {
        self.matmul_kernel(Kernel::Matmul(w.precision, tiling), tiling, w, x, y, m);
    }

    /// [`Recorder::matmul`] over 8-bit activations (`xq` from [`Recorder::act_q8_rows`] with
    /// codes), INT8 or INT4 `w`, with a barrier-free `tiling` (`Rows` or `RowsSubgroup`; k a
    /// multiple of 4).
    pub fn matmul_q8(&mut self, w: &GpuMatrix, xq: &Buffer, y: &Buffer, m: usize, tiling: Tiling) {
        debug_assert!(tiling != Tiling::Shared && w.cols % 4 == 0 && w.precision.int_dot());
        self.matmul_kernel(Kernel::MatmulQ8(w.precision, tiling), tiling, w, xq, y, m);
    }

    fn matmul_kernel(&mut self, kernel: Kernel, tiling: Tiling, w: &GpuMatrix, x: &Buffer, y: &Buffer, m: usize) {
        let p = MatmulParams { m: m as u32, n: w.rows as u32, k: w.cols as u32, nb: w.blocks_per_row() as u32 };
        let groups = match tiling {
            Tiling::Shared => [p.n.div_ceil(32), p.m.div_ceil(32), 1],
            // 64 rows × 8 tokens per workgroup (matmul_rows.wgsl).
            Tiling::Rows | Tiling::RowsSubgroup => grid((w.rows.div_ceil(64) * m.div_ceil(8)) as u32),
        };
        let [q, s] = Self::weights(w);
        self.run(kernel, &[q, s, Bind::Buf(x), Bind::Buf(y), Bind::Params(p.words())], groups);
    }

    /// `out [m, k] = W[ids] · scale`, dequantized: one dispatch per part of W, each writing the
    /// rows it holds.
    pub fn embedding(&mut self, w: &GpuMatrix, ids: &Buffer, out: &Buffer, m: usize, scale: f32) {
        let groups = grid_for(m * w.blocks_per_row() * 4);
        for part in w.parts() {
            let (k, nb) = (w.cols as u32, w.blocks_per_row() as u32);
            let p = EmbeddingParams { m: m as u32, k, nb, first: part.first as u32, rows: part.rows as u32, scale, ..Default::default() };
            let s = part.s.as_ref().map_or(Bind::None, Bind::Buf);
            self.run(Kernel::Embedding(w.precision), &[Bind::Buf(&part.q), s, Bind::Buf(ids), Bind::Buf(out), Bind::Params(p.words())], groups);
        }
    }

    /// `y [rows, d] = rmsnorm(x) · w`.
    pub fn rmsnorm(&mut self, x: &Buffer, w: &Buffer, y: &Buffer, rows: usize, d: usize, eps: f32) {
        self.rmsnorm_kernel(Kernel::Rmsnorm, x, w, y, rows, d, eps);
    }

    /// `y [rows, d] += rmsnorm(x) · w`.
    pub fn rmsnorm_add(&mut self, x: &Buffer, w: &Buffer, y: &Buffer, rows: usize, d: usize, eps: f32) {
        self.rmsnorm_kernel(Kernel::RmsnormAdd, x, w, y, rows, d, eps);
    }

    #[allow(clippy::too_many_arguments)]
    fn rmsnorm_kernel(&mut self, k: Kernel, x: &Buffer, w: &Buffer, y: &Buffer, rows: usize, d: usize, eps: f32) {
        let p = RmsnormParams { rows: rows as u32, d: d as u32, eps, _pad: 0 };
        self.run(k, &[Bind::Buf(x), Bind::Buf(w), Bind::Buf(y), Bind::Params(p.words())], grid_for(rows));
    }

    /// Per-head RMSNorm in place of the q and k heads of `qkv [m, (heads + 2·kv_heads)·head_dim]`,
    /// with `w [2, head_dim]` (q's weights, then k's).
    #[allow(clippy::too_many_arguments)]
    pub fn head_norm(&mut self, qkv: &Buffer, w: &Buffer, m: usize, heads: usize, kv_heads: usize, head_dim: usize, eps: f32) {
        let p = HeadNormParams {
            m: m as u32,
            heads: heads as u32,
            kv_heads: kv_heads as u32,
            head_dim: head_dim as u32,
            eps,
            ..Default::default()
        };
        self.run(Kernel::HeadNorm, &[Bind::Buf(qkv), Bind::Buf(w), Bind::Params(p.words())], grid_for(m * (heads + kv_heads)));
    }

    /// `out [m, n] = act(gu[:, :n]) · gu[:, n:]` over stacked gate and up projections `gu [m, 2n]`.
    pub fn glu(&mut self, act: crate::model::Activation, gu: &Buffer, out: &Buffer, m: usize, n: usize) {
        let p = GluParams { m: m as u32, n: n as u32, ..Default::default() };
        self.run(Kernel::Glu(act), &[Bind::Buf(gu), Bind::Buf(out), Bind::Params(p.words())], grid_for(m * n));
    }

    /// `a += b`.
    pub fn add(&mut self, a: &Buffer, b: &Buffer, len: usize) {
        let p = LenParams { len: len as u32, ..Default::default() };
        self.run(Kernel::Add, &[Bind::Buf(a), Bind::Buf(b), Bind::Params(p.words())], grid_for(len));
    }

    /// RoPE on q and k of `qkv [m, (heads + 2·kv_heads)·head_dim]` (q, k, v stacked per token) for
    /// positions `step.pos0 ..`: q rotated in place, k rotated and v appended to `cache` (format `kv`,
    /// keys first, values from value `v_base` on). `r.heads` is the number of query heads; pair i
    /// turns by `pos · r.scale · base^(−2i / n_rot) / factors[i]` (`factors [n_rot / 2]`, ones when
    /// the model has none). The 4- and 3-bit formats ([`KvPrecision::centered`]) store each key
    /// less the layer's mean key, `stats` from value `mean_at` on (`kv_heads·head_dim` of them);
    /// the rotated ones times the layer's key scales λ from value `scale_at` on ([`Recorder::kv_balance`]).
    #[allow(clippy::too_many_arguments)]
    pub fn rope_store(
        &mut self,
        qkv: &Buffer,
        cache: &Buffer,
        step: &Buffer,
        m: usize,
        r: &Rope,
        kv_heads: usize,
        v_base: usize,
        kv: KvPrecision,
        factors: &Buffer,
        (stats, mean_at, scale_at): (&Buffer, usize, usize),
        stage: &Buffer,
    ) {
        let p = RopeStoreParams {
            m: m as u32,
            heads: r.heads as u32,
            kv_heads: kv_heads as u32,
            head_dim: r.head_dim as u32,
            n_rot: r.n_rot as u32,
            neox: r.neox as u32,
            base: r.base,
            v_base: v_base as u32,
            scale: r.scale,
            rot: if kv.rotated() { crate::layout::rot_block(r.head_dim) as u32 } else { 0 },
            center: kv.centered() as u32,
            mean_at: mean_at as u32,
            scale_at: scale_at as u32,
            scaled: kv.scaled() as u32,
            recent: (kv.recent() > 0) as u32,
            ..Default::default()
        };
        let per = r.heads * r.n_rot / 2 + 2 * kv_heads * r.head_dim / kv.unit();
        let binds = [Bind::Buf(qkv), Bind::Buf(cache), Bind::Params(p.words()), Bind::Buf(step), Bind::Buf(factors), Bind::Buf(stats), Bind::Buf(stage)];
        self.run(Kernel::RopeStore(kv), &binds, grid_for(m * per));
    }

    /// Causal grouped-query attention of `q [m, q_stride]` (each row starting with `heads` query
    /// heads) over the first `n_kv = pos0 + m` keys and values of `cache` (values from value
    /// `v_base` on; the last `a.window` of them per query with a sliding window), into
    /// `out [m, heads, head_dim]`. Queries go through in tiles of as many rows as `scores` holds
    /// ([`scores_len`] floats a tile), so a long prompt needs no scores buffer the square of its
    /// length. A rotated format divides `q` in place by the layer's key scales (`scales` from
    /// value `scale_at` on, [`Recorder::kv_balance`]) and rotates it first, and rotates `out` back
    /// last. `a.pos0` sizes the dispatches; the kernels read it from `step`.
    #[allow(clippy::too_many_arguments)]
    pub fn attention(
        &mut self,
        q: &Buffer,
        q_stride: usize,
        cache: &Buffer,
        step: &Buffer,
        scores: &Buffer,
        out: &Buffer,
        m: usize,
        a: &Attention,
        v_base: usize,
        kv: KvPrecision,
        scales: (&Buffer, usize),
        (stage, ring_at): (&Buffer, usize),
    ) {
        let (heads, kvh, hd) = (a.heads as u32, a.kv_heads as u32, a.head_dim as u32);
        let (recent, slots, ring_at) = (kv.recent() as u32, crate::layout::KV_RECENT_SLOTS as u32, ring_at as u32);
        if kv.rotated() {
            self.kv_rotate(q, m, (a.heads, a.kv_heads, a.head_dim), q_stride, (scales.0, scales.1, kv.scaled()), false);
        }
        let tile = ((scores.size() / 4) as usize / scores_len(a.heads, a.head_dim, 1, a.pos0 + m).max(1)).clamp(1, m.max(1));
        // Query heads of a kv head go GT at a time (`GT` in attn_scores.wgsl).
        let tiles = (a.heads / a.kv_heads.max(1)).div_ceil(ATTN_GROUP_TILE);
        for t0 in (0..m).step_by(tile) {
            let rows = tile.min(m - t0);
            let n_kv = a.pos0 + t0 + rows;
            let (ru, t0u, window) = (rows as u32, t0 as u32, a.window as u32);
            let ps = AttnScoresParams { rows: ru, heads, kv_heads: kvh, head_dim: hd, q_stride: q_stride as u32, scale: a.scale, window, t0: t0u, recent, slots, ring_at, _pad0: 0 };
            let binds = [Bind::Buf(q), Bind::Buf(cache), Bind::Buf(scores), Bind::Params(ps.words()), Bind::Buf(step), Bind::Buf(stage)];
            self.run(Kernel::AttnScores(kv), &binds, grid_for(rows * a.kv_heads * tiles * n_kv.div_ceil(8)));
            let pm = AttnSoftmaxParams { rows: ru, heads, window, t0: t0u };
            let binds = [Bind::Buf(scores), Bind::Params(pm.words()), Bind::Buf(step)];
            self.run(Kernel::AttnSoftmax, &binds, grid_for(a.heads * rows * n_kv.div_ceil(ATTN_CHUNK)));
            let pv = AttnValuesParams { rows: ru, heads, kv_heads: kvh, head_dim: hd, v_base: v_base as u32, window, t0: t0u, recent, slots, ring_at, ..Default::default() };
            let binds = [Bind::Buf(scores), Bind::Buf(cache), Bind::Params(pv.words()), Bind::Buf(step), Bind::Buf(stage)];
            let splits = n_kv.div_ceil(ATTN_CHUNK).div_ceil(ATTN_SPLIT);
            self.run(Kernel::AttnValues(kv), &binds, grid_for(splits * rows * a.kv_heads * tiles * a.head_dim / 8));
            let pm = AttnMergeParams { rows: ru, heads, head_dim: hd, t0: t0u };
            let binds = [Bind::Buf(scores), Bind::Buf(out), Bind::Params(pm.words()), Bind::Buf(step)];
            self.run(Kernel::AttnMerge, &binds, grid_for(rows * a.heads * a.head_dim));
        }
        if kv.rotated() {
            self.kv_rotate(out, m, (a.heads, a.kv_heads, a.head_dim), a.heads * a.head_dim, (scales.0, 0, false), true);
        }
        if recent > 0 {
            self.kv_recent(stage, cache, step, m, a.kv_heads * a.head_dim, ring_at as usize);
        }
    }

    /// The exact keys and values of a step's last `min(m, slots)` positions (`stage [m, 2,
    /// kv_dim / 2]` f16 pairs) into the layer's ring of recent positions at word `ring_at` of
    /// `cache`: [`crate::reference::Recent::keep`].
    pub fn kv_recent(&mut self, stage: &Buffer, cache: &Buffer, step: &Buffer, m: usize, kv_dim: usize, ring_at: usize) {
        let slots = crate::layout::KV_RECENT_SLOTS;
        let p = KvRecentParams { m: m as u32, kvd: kv_dim as u32, slots: slots as u32, at: ring_at as u32 };
        let binds = [Bind::Buf(stage), Bind::Buf(cache), Bind::Params(p.words()), Bind::Buf(step)];
        self.run(Kernel::KvRecent, &binds, grid_for(m.min(slots) * (kv_dim + 1)));
    }

    /// Rotate the heads (`heads` of `head_dim`, in groups over `kv_heads`) of `x [m, stride]` in
    /// place as the rotated KV formats rotate keys ([`crate::layout::rotate`]), divided first by
    /// their kv head's key scales (`scales` from value `at` on) when `divide`; or (`inverse`)
    /// rotate them back.
    pub fn kv_rotate(&mut self, x: &Buffer, m: usize, (heads, kv_heads, head_dim): (usize, usize, usize), stride: usize, (scales, at, divide): (&Buffer, usize, bool), inverse: bool) {
        let r = crate::layout::rot_block(head_dim);
        let p = KvRotateParams {
            m: m as u32,
            heads: heads as u32,
            head_dim: head_dim as u32,
            stride: stride as u32,
            r: r as u32,
            inverse: inverse as u32,
            kv_heads: kv_heads as u32,
            scale_at: at as u32,
            scaled: (divide && !inverse) as u32,
            ..Default::default()
        };
        self.run(Kernel::KvRotate, &[Bind::Buf(x), Bind::Params(p.words()), Bind::Buf(scales)], grid_for(m * heads * head_dim / r));
    }

    /// `out[0] = argmax(v [n])` (the lowest index among equals).
    pub fn argmax(&mut self, v: &Buffer, out: &Buffer, n: usize) {
        let p = ArgmaxParams { n: n as u32, ..Default::default() };
        self.run(Kernel::Argmax, &[Bind::Buf(v), Bind::Buf(out), Bind::Params(p.words())], [1, 1, 1]);
    }

    /// `out[0]` = one draw from the logits `v [n]` (penalized in place) with `d`'s settings;
    /// `draw` holds [`draw_words`]`(d)`. `d.top_k` must be 1 ..= [`SAMPLE_MAX_K`] (or the draw
    /// greedy).
    pub fn sample(&mut self, v: &Buffer, out: &Buffer, draw: &Buffer, n: usize, d: &Draw) {
        let greedy = d.temperature <= 0.0;
        let p = SampleParams {
            n: n as u32,
            k: if greedy { 1 } else { d.top_k as u32 },
            penalty: d.penalty,
            top_p: d.top_p,
            min_p: d.min_p,
            temperature: d.temperature.max(0.0),
            ..Default::default()
        };
        self.run(Kernel::Sample, &[Bind::Buf(v), Bind::Buf(out), Bind::Params(p.words()), Bind::Buf(draw)], [1, 1, 1]);
    }

    /// `out[at + e]` = the mean of channel `e` of the first `n` keys of a layer's f32 `cache`
    /// (`[n_ctx, kv_dim]` keys first): [`crate::reference::kv_mean`].
    pub fn kv_mean(&mut self, cache: &Buffer, out: &Buffer, n: usize, kv_dim: usize, at: usize) {
        let p = KvMeanParams { n: n as u32, kv_dim: kv_dim as u32, at: at as u32, ..Default::default() };
        self.run(Kernel::KvMean, &[Bind::Buf(cache), Bind::Buf(out), Bind::Params(p.words())], grid_for(kv_dim));
    }

    /// `out[at + e] +=` the sum of the squared queries that meet key channel `e` over the `m` rows
    /// of `q [m, stride]` (`heads` query heads of `head_dim` first in a row, grouped over
    /// `kv_heads`): [`crate::reference::kv_query_sq`].
    pub fn kv_query_sq(&mut self, q: &Buffer, out: &Buffer, m: usize, (heads, kv_heads, head_dim): (usize, usize, usize), stride: usize, at: usize) {
        let p = KvQuerySqParams { m: m as u32, heads: heads as u32, kv_heads: kv_heads as u32, head_dim: head_dim as u32, stride: stride as u32, at: at as u32, ..Default::default() };
        self.run(Kernel::KvQuerySq, &[Bind::Buf(q), Bind::Buf(out), Bind::Params(p.words())], grid_for(kv_heads * head_dim));
    }

    /// The rotated KV formats' key scales λ of one layer into `stats` from value `scale_at` on,
    /// from the first `n` keys of its f32 `cache` (`[n_ctx, kv_dim]` keys first), their means (in
    /// `stats` from `mean_at`) and the queries' sums of squares (`qsq` from `qsq_at`,
    /// [`Recorder::kv_query_sq`]): [`crate::reference::kv_balance`].
    #[allow(clippy::too_many_arguments)]
    pub fn kv_balance(&mut self, cache: &Buffer, stats: &Buffer, qsq: &Buffer, n: usize, kv_dim: usize, head_dim: usize, (mean_at, scale_at, qsq_at): (usize, usize, usize)) {
        let p = KvBalanceParams {
            n: n as u32,
            kv_dim: kv_dim as u32,
            head_dim: head_dim as u32,
            mean_at: mean_at as u32,
            scale_at: scale_at as u32,
            qsq_at: qsq_at as u32,
            ..Default::default()
        };
        let binds = [Bind::Buf(cache), Bind::Buf(stats), Bind::Params(p.words()), Bind::Buf(qsq)];
        self.run(Kernel::KvBalance, &binds, grid_for(kv_dim / head_dim.max(1)));
    }

    /// `dst = src` for `len_vec4` 16-byte elements.
    pub fn copy(&mut self, src: &Buffer, dst: &Buffer, len_vec4: usize) {
        let p = LenParams { len: len_vec4 as u32, ..Default::default() };
        self.run(Kernel::Copy, &[Bind::Buf(src), Bind::Buf(dst), Bind::Params(p.words())], grid_for(len_vec4));
    }
}

/// Query heads of one kv head an `attn_scores` invocation takes (`GT`).
pub const ATTN_GROUP_TILE: usize = 4;

/// Keys one `attn_softmax` invocation takes (`CHUNK` in `attn_softmax.wgsl` and `attn_values.wgsl`).
pub const ATTN_CHUNK: usize = 32;

/// Chunks of keys one `attn_values` invocation takes (`SPLIT`): rows longer than this are split
/// over more invocations, their shares added by `attn_merge`.
pub const ATTN_SPLIT: usize = 8;

/// Floats the scores buffer of an attention tile of `rows` query rows over `n_kv` keys takes:
/// the scores, a (maximum, sum) pair per chunk of keys, each split's share of the output, and a
/// (maximum, sum) pair per split.
/// The tiling [`Recorder::matmul`] runs `w` with: the adapter's, but the tiled one where a row of
/// x is not whole vec4s (the barrier-free kernels read them so).
pub fn matmul_tiling(gpu: &Gpu, w: &GpuMatrix) -> Tiling {
    if w.cols % 4 == 0 { gpu.tiling() } else { Tiling::Shared }
}

/// Words [`Recorder::act_q8_rows`] writes with codes for `m` tokens of `k` inputs: each token's
/// blocks of 32 codes (8 words), then every block's scale.
pub fn q8_rows_words(m: usize, k: usize) -> usize {
    m * k.div_ceil(32) * 9
}

pub fn scores_len(heads: usize, head_dim: usize, rows: usize, n_kv: usize) -> usize {
    let chunks = n_kv.div_ceil(ATTN_CHUNK);
    heads * rows * (n_kv + 2 * chunks + chunks.div_ceil(ATTN_SPLIT) * (head_dim + 2))
}
