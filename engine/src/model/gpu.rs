//! GPU backend: weights requantized on load from any source dtype to FP16, INT8 or INT4, the KV
//! cache on the GPU, and every op of a forward pass recorded into one command encoder and
//! submitted once. [`GpuBackend::set_precision`] swaps the weights of a loaded model in place and
//! keeps the KV cache (the conversation).

use std::collections::HashMap;

use super::{Backend, Config, Mat, Norm};
use crate::gguf::{Gguf, TensorInfo};
use crate::gpu::{ops::Recorder, Gpu, GpuMatrix};
use crate::plan::Plan;
use crate::{Error, KvPrecision, Precision, QuantMatrix, Result};

/// Activations `[m, width]` in a GPU buffer.
pub struct Act {
    pub buf: wgpu::Buffer,
    pub m: usize,
    pub width: usize,
}

pub struct GpuBackend<'g> {
    pub gpu: &'g Gpu,
    pub cfg: Config,
    pub plan: Plan,
    /// Token embedding (also the output head when tied).
    embd: GpuMatrix,
    mats: HashMap<Mat, GpuMatrix>,
    norms: HashMap<Norm, wgpu::Buffer>,
    k_cache: Vec<wgpu::Buffer>,
    v_cache: Vec<wgpu::Buffer>,
    /// How the KV cache stores keys and values.
    pub kv: KvPrecision,
    /// Tokens the KV cache holds room for.
    pub n_ctx: usize,
    rec: Option<Recorder<'g>>,
}

/// Dequantize a tensor of `file` and requantize it to `p`.
fn requantize(file: &[u8], t: &TensorInfo, p: Precision) -> Result<QuantMatrix> {
    let (rows, cols) = t.matrix_shape();
    QuantMatrix::quantize(&crate::gguf::dequantize(t.ggml_type, t.data(file)?)?, rows, cols, p)
}

/// The weight matrices of a model at one plan of precisions, on the GPU.
#[derive(Clone)]
pub struct Weights {
    pub plan: Plan,
    /// Token embedding (also the output head when tied).
    embd: GpuMatrix,
    mats: HashMap<Mat, GpuMatrix>,
}

/// Requantizes and uploads a model's weight matrices one tensor per [`Requantizer::step`], so a
/// caller can report progress and cancel between tensors (the page does, in its worker).
pub struct Requantizer {
    pub plan: Plan,
    /// `(matrix, tensor)` still to do, in load order (embedding first; None is the embedding).
    todo: std::collections::VecDeque<(Option<Mat>, TensorInfo)>,
    /// Matrices already on the GPU at the precision the plan wants (shared, not requantized).
    reuse: HashMap<Option<Mat>, GpuMatrix>,
    embd: Option<GpuMatrix>,
    mats: HashMap<Mat, GpuMatrix>,
    pub tensors_done: usize,
    pub tensors_total: usize,
    /// Bytes of the source tensors requantized so far, and in all.
    pub source_bytes_done: u64,
    pub source_bytes_total: u64,
    /// Bytes uploaded to the GPU so far (at `precision`).
    pub uploaded_bytes: u64,
}

impl Requantizer {
    pub fn new(cfg: &Config, g: &Gguf, plan: Plan) -> Result<Self> {
        let mut todo = std::collections::VecDeque::new();
        todo.push_back((None, g.tensor("token_embd.weight")?.clone()));
        for m in Mat::all(cfg.n_layers) {
            if m == Mat::Output && cfg.tied_output {
                continue;
            }
            todo.push_back((Some(m), g.tensor(&m.tensor_name(false))?.clone()));
        }
        let source_bytes_total = todo.iter().map(|t| t.1.n_bytes).sum();
        Ok(Requantizer {
            plan,
            tensors_total: todo.len(),
            todo,
            reuse: HashMap::new(),
            embd: None,
            mats: HashMap::new(),
            tensors_done: 0,
            source_bytes_done: 0,
            source_bytes_total,
            uploaded_bytes: 0,
        })
    }

    /// Share the matrices of `w` that are already at the precision the plan wants for them:
    /// those are not requantized again (switching one group only touches that group).
    pub fn reusing(mut self, w: &Weights) -> Self {
        for (m, t) in &self.todo {
            let have = match m {
                None => &w.embd,
                Some(m) => match w.mats.get(m) {
                    Some(x) => x,
                    None => continue,
                },
            };
            if have.precision == self.plan.of(*m) && have.rows * have.cols == t.n_elements() as usize {
                self.reuse.insert(*m, have.clone());
            }
        }
        self
    }

    /// Requantize and upload the next tensor of `file` (the bytes [`Requantizer::new`]'s GGUF
    /// was parsed from); false once every tensor is done.
    pub fn step(&mut self, gpu: &Gpu, file: &[u8]) -> Result<bool> {
        let Some((m, t)) = self.todo.pop_front() else { return Ok(false) };
        let w = match self.reuse.remove(&m) {
            Some(w) => w,
            None => gpu.upload_matrix(&t.name, &requantize(file, &t, self.plan.of(m))?)?,
        };
        self.uploaded_bytes += w.bytes();
        match m {
            None => self.embd = Some(w),
            Some(m) => {
                self.mats.insert(m, w);
            }
        }
        self.tensors_done += 1;
        self.source_bytes_done += t.n_bytes;
        Ok(!self.todo.is_empty())
    }

    /// Every tensor at once.
    pub fn run(mut self, gpu: &Gpu, file: &[u8]) -> Result<Weights> {
        while self.step(gpu, file)? {}
        self.finish()
    }

    pub fn finish(self) -> Result<Weights> {
        if !self.todo.is_empty() {
            return Err(Error::Usage(format!("{} tensors not requantized yet", self.todo.len())));
        }
        let embd = self.embd.ok_or_else(|| Error::TensorNotFound("token_embd.weight".into()))?;
        Ok(Weights { plan: self.plan, embd, mats: self.mats })
    }
}

impl<'g> GpuBackend<'g> {
    /// Upload the model at `plan` with a KV cache of `n_ctx` tokens.
    pub fn load(gpu: &'g Gpu, g: &Gguf, plan: impl Into<Plan>, n_ctx: usize) -> Result<Self> {
        let cfg = Config::from_gguf(g)?;
        let weights = Requantizer::new(&cfg, g, plan.into())?.run(gpu, g.bytes())?;
        Self::with_weights(gpu, g, weights, n_ctx)
    }

    /// A backend over weights already on the GPU (see [`Requantizer`]): uploads the norms and
    /// makes a KV cache of `n_ctx` tokens.
    pub fn with_weights(gpu: &'g Gpu, g: &Gguf, weights: Weights, n_ctx: usize) -> Result<Self> {
        let cfg = Config::from_gguf(g)?;
        let n_ctx = n_ctx.min(cfg.context_length).max(1);
        let mut norms = HashMap::new();
        for n in (0..cfg.n_layers).flat_map(|l| [Norm::Attn(l), Norm::Ffn(l)]).chain([Norm::Output]) {
            let name = n.tensor_name();
            norms.insert(n, gpu.storage_f32(&name, &g.dequantize_tensor(g.tensor(&name)?)?)?);
        }
        let Weights { plan, embd, mats } = weights;
        let mut b = GpuBackend { gpu, cfg, plan, embd, mats, norms, k_cache: vec![], v_cache: vec![], kv: KvPrecision::F32, n_ctx, rec: None };
        b.set_kv(KvPrecision::F32)?;
        Ok(b)
    }

    /// Store the KV cache as `kv` from now on. A new format makes the caches anew (empty), so
    /// whatever they held must be computed again; the format they already have keeps them.
    pub fn set_kv(&mut self, kv: KvPrecision) -> Result<()> {
        if kv == self.kv && !self.k_cache.is_empty() {
            return Ok(());
        }
        let kvd = self.cfg.n_kv_heads * self.cfg.head_dim;
        if kvd % kv.unit() != 0 {
            return Err(Error::Usage(format!(
                "a {} KV cache needs rows of a multiple of {} values; this model has {kvd}",
                kv,
                kv.unit()
            )));
        }
        self.flush();
        let (n, layers, gpu) = (kv.words(self.n_ctx * kvd), self.cfg.n_layers, self.gpu);
        let cache = |what: &str| -> Result<Vec<wgpu::Buffer>> { (0..layers).map(|l| gpu.zeros(&format!("{what}.{l}"), n)).collect() };
        // Drop the old caches before making the new ones: the two never need to coexist.
        (self.k_cache, self.v_cache) = (vec![], vec![]);
        (self.k_cache, self.v_cache) = (cache("k_cache")?, cache("v_cache")?);
        self.kv = kv;
        Ok(())
    }

    /// Requantize the weights whose precision changes to `plan`'s, keeping the KV cache.
    pub fn set_precision(&mut self, g: &Gguf, plan: impl Into<Plan>) -> Result<()> {
        let plan = plan.into();
        if plan == self.plan {
            return Ok(());
        }
        let w = Requantizer::new(&self.cfg, g, plan)?.reusing(&self.weights()).run(self.gpu, g.bytes())?;
        self.set_weights(w);
        Ok(())
    }

    /// Swap in weights at another plan (from a [`Requantizer`]), keeping the KV cache.
    pub fn set_weights(&mut self, w: Weights) {
        self.flush();
        self.embd = w.embd;
        self.mats = w.mats;
        self.plan = w.plan;
    }

    /// The weight matrices (shared GPU buffers, not copies).
    pub fn weights(&self) -> Weights {
        Weights { plan: self.plan, embd: self.embd.clone(), mats: self.mats.clone() }
    }

    /// Bytes of the KV cache on the GPU.
    pub fn kv_bytes(&self) -> u64 {
        self.k_cache.iter().chain(&self.v_cache).map(|b| b.size()).sum()
    }

    /// The kernels a forward pass runs (compiling them ahead avoids a stall on the first token).
    pub fn kernels(&self) -> Vec<crate::gpu::Kernel> {
        use crate::gpu::Kernel;
        let mut v = vec![Kernel::Embedding(self.plan.embeddings)];
        for p in self.plan.precisions() {
            v.extend([Kernel::Matvec(p, self.gpu.reduce()), Kernel::Matmul(p, self.gpu.tiling())]);
        }
        v.extend([
            Kernel::Rmsnorm,
            Kernel::Rope,
            Kernel::SiluMul,
            Kernel::Add,
            Kernel::AttnScores(self.kv),
            Kernel::Softmax,
            Kernel::AttnValues(self.kv),
            Kernel::KvStore(self.kv),
        ]);
        v
    }

    /// Bytes of weight data on the GPU at the current precision (norms included).
    pub fn weight_bytes(&self) -> u64 {
        self.embd.bytes()
            + self.mats.values().map(GpuMatrix::bytes).sum::<u64>()
            + self.norms.values().map(|b| b.size()).sum::<u64>()
    }

    /// KV cache bytes one token of context takes (keys and values, every layer).
    pub fn kv_bytes_per_token(&self) -> u64 {
        self.kv_bytes() / self.n_ctx.max(1) as u64
    }

    /// Bytes one decode step at position `pos` reads: every weight matrix once (the token
    /// embedding only as the output head when tied, else one row of it), the norms, and the
    /// keys and values of `pos + 1` tokens.
    pub fn bytes_per_token(&self, pos: usize) -> u64 {
        let embd_read = if self.cfg.tied_output { self.embd.bytes() } else { self.embd.bytes() / self.embd.rows.max(1) as u64 };
        self.weight_bytes() - self.embd.bytes() + embd_read + self.kv_bytes_per_token() * (pos as u64 + 1)
    }

    /// Run one decode step of `token` at position `pos` with a timestamp around every pass:
    /// `(kernel, ms)` per pass, or None when the adapter has no timestamp queries. It writes the
    /// KV cache at `pos`, like any step.
    pub async fn profile_step(&mut self, token: u32, pos: usize) -> Result<Option<Vec<(crate::gpu::Kernel, f64)>>> {
        // WebGPU allows 4096 queries per set: two per pass.
        const PASSES: u32 = 2000;
        self.flush();
        let Some(timer) = crate::gpu::PassTimer::new(self.gpu, PASSES).map(std::rc::Rc::new) else { return Ok(None) };
        self.rec = Some(Recorder::new(self.gpu, Some(timer.clone()), PASSES));
        let cfg = self.cfg.clone();
        let logits = super::forward(&cfg, self, &[token], pos, false)?;
        let rec = self.rec.take().ok_or_else(|| Error::Gpu("the profiled pass was not recorded".into()))?;
        let kernels = rec.kernels.clone();
        rec.submit();
        self.gpu.wait().await?;
        drop(logits);
        let ms = timer.read_ms(self.gpu).await?;
        Ok(Some(kernels.into_iter().zip(ms).collect()))
    }

    fn rec(&mut self) -> &mut Recorder<'g> {
        recorder(&mut self.rec, self.gpu)
    }

    /// Submit everything recorded so far.
    pub fn flush(&mut self) {
        if let Some(r) = self.rec.take() {
            r.submit();
        }
    }

    fn new_act(&self, m: usize, width: usize) -> Result<Act> {
        Ok(Act { buf: self.gpu.zeros("act", m * width)?, m, width })
    }

}

/// The open recorder (a field borrow, so weights can be borrowed beside it).
fn recorder<'a, 'g>(slot: &'a mut Option<Recorder<'g>>, gpu: &'g Gpu) -> &'a mut Recorder<'g> {
    slot.get_or_insert_with(|| Recorder::new(gpu, None, 0))
}

impl<'g> Backend for GpuBackend<'g> {
    type Act = Act;

    fn embed(&mut self, ids: &[u32]) -> Result<Act> {
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= self.embd.rows) {
            return Err(Error::Shape(format!("token id {bad} outside the vocabulary of {}", self.embd.rows)));
        }
        let idb = self.gpu.storage_u32("ids", ids)?;
        let out = self.new_act(ids.len(), self.embd.cols)?;
        recorder(&mut self.rec, self.gpu).embedding(&self.embd, &idb, &out.buf, ids.len());
        Ok(out)
    }

    fn rmsnorm(&mut self, x: &Act, w: Norm) -> Result<Act> {
        let out = self.new_act(x.m, x.width)?;
        let wb = self.norms.get(&w).ok_or_else(|| Error::TensorNotFound(w.tensor_name()))?;
        recorder(&mut self.rec, self.gpu).rmsnorm(&x.buf, wb, &out.buf, x.m, x.width, self.cfg.rms_eps);
        Ok(out)
    }

    fn linear(&mut self, x: &Act, w: Mat) -> Result<Act> {
        let wm = self.mats.get(&w).unwrap_or(&self.embd);
        if wm.cols != x.width {
            return Err(Error::Shape(format!("{w:?}: {} inputs, activations of {}", wm.cols, x.width)));
        }
        let out = Act { buf: self.gpu.zeros("act", x.m * wm.rows)?, m: x.m, width: wm.rows };
        let rec = recorder(&mut self.rec, self.gpu);
        if x.m == 1 {
            rec.matvec(wm, &x.buf, &out.buf);
        } else {
            rec.matmul(wm, &x.buf, &out.buf, x.m);
        }
        Ok(out)
    }

    fn rope(&mut self, x: &mut Act, heads: usize, pos0: usize) -> Result<()> {
        let p = self.cfg.rope(heads, pos0);
        self.rec().rope(&x.buf, x.m, &p);
        Ok(())
    }

    fn attention(&mut self, layer: usize, q: &Act, k: &Act, v: &Act, pos0: usize) -> Result<Act> {
        let c = self.cfg.clone();
        let m = q.m;
        if pos0 + m > self.n_ctx {
            return Err(Error::ContextFull { needed: pos0 + m, size: self.n_ctx });
        }
        let kvd = c.n_kv_heads * c.head_dim;
        let scores = self.gpu.zeros("scores", c.n_heads * m * (pos0 + m))?;
        let out = self.new_act(m, c.n_heads * c.head_dim)?;
        let (kc, vc, kv) = (&self.k_cache[layer], &self.v_cache[layer], self.kv);
        let rec = recorder(&mut self.rec, self.gpu);
        rec.kv_store(&k.buf, kc, m * kvd, pos0 * kvd, kv);
        rec.kv_store(&v.buf, vc, m * kvd, pos0 * kvd, kv);
        let a = c.attention(pos0);
        rec.attention(&q.buf, kc, vc, &scores, &out.buf, m, &a, kv);
        Ok(out)
    }

    fn silu_mul(&mut self, gate: &Act, up: &Act) -> Result<Act> {
        let out = self.new_act(gate.m, gate.width)?;
        self.rec().silu_mul(&gate.buf, &up.buf, &out.buf, gate.m * gate.width);
        Ok(out)
    }

    fn add(&mut self, a: &mut Act, b: &Act) -> Result<()> {
        self.rec().add(&a.buf, &b.buf, a.m * a.width);
        Ok(())
    }

    fn last_row(&mut self, x: &Act) -> Result<Act> {
        let out = self.new_act(1, x.width)?;
        let off = ((x.m - 1) * x.width * 4) as u64;
        self.rec().enc.copy_buffer_to_buffer(&x.buf, off, &out.buf, 0, (x.width * 4) as u64);
        Ok(out)
    }

    fn copy(&mut self, x: &Act) -> Result<Act> {
        let out = self.new_act(x.m, x.width)?;
        self.rec().enc.copy_buffer_to_buffer(&x.buf, 0, &out.buf, 0, (x.m * x.width * 4) as u64);
        Ok(out)
    }

    async fn read(&mut self, x: &Act) -> Result<Vec<f32>> {
        self.flush();
        self.gpu.read_f32(&x.buf, x.m * x.width).await
    }
}
