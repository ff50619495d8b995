//! Typed ops over the kernels: each records one (or, for attention, three) compute passes into a
//! [`Recorder`]. One token's whole forward pass can be recorded and submitted at once.

use std::rc::Rc;

use super::{grid, grid_for, Gpu, GpuMatrix, Kernel, PassTimer, Reduce, Tiling};
use crate::cpu::{Attention, Rope};
use crate::KvPrecision;

/// Records compute passes into one command encoder, optionally timing each pass.
pub struct Recorder<'a> {
    pub gpu: &'a Gpu,
    pub enc: wgpu::CommandEncoder,
    timer: Option<Rc<PassTimer>>,
    passes: u32,
    capacity: u32,
    /// The kernel of every pass recorded while timing (what each timestamp pair measured).
    pub kernels: Vec<Kernel>,
}

fn f(x: f32) -> u32 {
    x.to_bits()
}

impl<'a> Recorder<'a> {
    /// A recorder whose first `capacity` passes write timestamps into `timer`.
    pub fn new(gpu: &'a Gpu, timer: Option<Rc<PassTimer>>, capacity: u32) -> Self {
        Recorder { gpu, enc: gpu.encoder(), timer, passes: 0, capacity, kernels: vec![] }
    }

    /// Passes recorded so far.
    pub fn passes(&self) -> u32 {
        self.passes
    }

    fn run(&mut self, kernel: Kernel, buffers: &[Option<&wgpu::Buffer>], params: &[u32], groups: [u32; 3]) {
        let ts = self.timer.as_deref().filter(|_| self.passes < self.capacity).map(|t| t.slot(self.passes));
        if ts.is_some() {
            self.kernels.push(kernel);
        }
        self.gpu.dispatch(&mut self.enc, kernel, buffers, params, groups, ts);
        self.passes += 1;
    }

    /// Submit everything recorded (resolving the timer's queries first).
    pub fn submit(mut self) {
        if let Some(t) = &self.timer {
            t.resolve(&mut self.enc);
        }
        self.gpu.submit(self.enc);
    }

    /// `y [n] = W [n, k] · x [k]`, with the adapter's best row reduction.
    pub fn matvec(&mut self, w: &GpuMatrix, x: &wgpu::Buffer, y: &wgpu::Buffer) {
        self.matvec_with(w, x, y, self.gpu.reduce());
    }

    /// `matvec` with a chosen row reduction (tests run both).
    pub fn matvec_with(&mut self, w: &GpuMatrix, x: &wgpu::Buffer, y: &wgpu::Buffer, reduce: Reduce) {
        let (n, k, nb) = (w.rows as u32, w.cols as u32, w.blocks_per_row() as u32);
        let kernel = Kernel::Matvec(w.precision, reduce);
        let groups = match reduce {
            Reduce::Row => grid_for(w.rows),
            Reduce::Subgroup | Reduce::Workgroup => grid(n.div_ceil(16)),
        };
        self.run(kernel, &[Some(&w.q), w.s.as_ref(), Some(x), Some(y)], &[n, k, nb], groups);
    }

    /// `Y [m, n] = X [m, k] · W [n, k]ᵀ`, with the adapter's best tiling.
    pub fn matmul(&mut self, w: &GpuMatrix, x: &wgpu::Buffer, y: &wgpu::Buffer, m: usize) {
        // The barrier-free kernel reads rows of x as vec4s.
        let tiling = if w.cols % 4 == 0 { self.gpu.tiling() } else { Tiling::Shared };
        self.matmul_with(w, x, y, m, tiling);
    }

    /// `matmul` with a chosen tiling (tests run both).
    pub fn matmul_with(&mut self, w: &GpuMatrix, x: &wgpu::Buffer, y: &wgpu::Buffer, m: usize, tiling: Tiling) {
        let (n, k, nb) = (w.rows as u32, w.cols as u32, w.blocks_per_row() as u32);
        let groups = match tiling {
            Tiling::Shared => [n.div_ceil(32), (m as u32).div_ceil(32), 1],
            // TILE = 8 tokens per invocation (matmul_rows.wgsl).
            Tiling::Rows => grid_for(w.rows * m.div_ceil(8)),
        };
        let kernel = Kernel::Matmul(w.precision, tiling);
        self.run(kernel, &[Some(&w.q), w.s.as_ref(), Some(x), Some(y)], &[m as u32, n, k, nb], groups);
    }

    /// `out [m, k] = W [ids, :]`, dequantized.
    pub fn embedding(&mut self, w: &GpuMatrix, ids: &wgpu::Buffer, out: &wgpu::Buffer, m: usize) {
        let (k, nb) = (w.cols as u32, w.blocks_per_row() as u32);
        let groups = grid_for(m * nb as usize * 4);
        self.run(Kernel::Embedding(w.precision), &[Some(&w.q), w.s.as_ref(), Some(ids), Some(out)], &[m as u32, k, nb], groups);
    }

    /// `y [rows, d] = rmsnorm(x) · w`.
    pub fn rmsnorm(&mut self, x: &wgpu::Buffer, w: &wgpu::Buffer, y: &wgpu::Buffer, rows: usize, d: usize, eps: f32) {
        self.run(Kernel::Rmsnorm, &[Some(x), Some(w), Some(y)], &[rows as u32, d as u32, f(eps)], grid_for(rows));
    }

    /// Rotary embedding in place on `x [m, heads, head_dim]`.
    pub fn rope(&mut self, x: &wgpu::Buffer, m: usize, p: &Rope) {
        let params = [m, p.heads, p.head_dim, p.n_rot, p.pos0, p.neox as usize].map(|v| v as u32);
        let mut params = params.to_vec();
        params.push(f(p.base));
        self.run(Kernel::Rope, &[Some(x)], &params, grid_for(m * p.heads * p.n_rot / 2));
    }

    /// Row-wise softmax in place on `x [rows, n]`.
    pub fn softmax(&mut self, x: &wgpu::Buffer, rows: usize, n: usize) {
        self.run(Kernel::Softmax, &[Some(x)], &[rows as u32, n as u32], grid_for(rows));
    }

    /// `out = silu(gate) · up`.
    pub fn silu_mul(&mut self, gate: &wgpu::Buffer, up: &wgpu::Buffer, out: &wgpu::Buffer, len: usize) {
        self.run(Kernel::SiluMul, &[Some(gate), Some(up), Some(out)], &[len as u32], grid_for(len));
    }

    /// `a += b`.
    pub fn add(&mut self, a: &wgpu::Buffer, b: &wgpu::Buffer, len: usize) {
        self.run(Kernel::Add, &[Some(a), Some(b)], &[len as u32], grid_for(len));
    }

    /// Causal grouped-query attention of `q [m, heads, hd]` over the caches `k, v [pos0 + m,
    /// kv_heads, hd]` stored as `kv` into `out [m, heads, hd]`; `scores` holds
    /// `heads · m · (pos0 + m)` floats.
    #[allow(clippy::too_many_arguments)]
    pub fn attention(
        &mut self,
        q: &wgpu::Buffer,
        k: &wgpu::Buffer,
        v: &wgpu::Buffer,
        scores: &wgpu::Buffer,
        out: &wgpu::Buffer,
        m: usize,
        a: &Attention,
        kv: KvPrecision,
    ) {
        let n_kv = a.pos0 + m;
        let shape = [m, a.heads, a.kv_heads, a.head_dim, a.pos0, n_kv].map(|v| v as u32);
        let mut sp = shape.to_vec();
        sp.push(f(a.scale));
        self.run(Kernel::AttnScores(kv), &[Some(q), Some(k), Some(scores)], &sp, grid_for(a.heads * m * n_kv));
        self.softmax(scores, a.heads * m, n_kv);
        self.run(Kernel::AttnValues(kv), &[Some(scores), Some(v), Some(out)], &shape, grid_for(m * a.heads * a.head_dim));
    }

    /// Store `n` values of `src` into the cache `cache` (format `kv`) from value `offset` on.
    pub fn kv_store(&mut self, src: &wgpu::Buffer, cache: &wgpu::Buffer, n: usize, offset: usize, kv: KvPrecision) {
        let units = n / kv.unit();
        self.run(Kernel::KvStore(kv), &[Some(src), Some(cache)], &[n as u32, offset as u32], grid_for(units));
    }

    /// `dst = src` for `len_vec4` 16-byte elements.
    pub fn copy(&mut self, src: &wgpu::Buffer, dst: &wgpu::Buffer, len_vec4: usize) {
        self.run(Kernel::Copy, &[Some(src), Some(dst)], &[len_vec4 as u32], grid_for(len_vec4));
    }
}
