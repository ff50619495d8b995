//! wgpu context: adapter and device, pipeline cache, buffers, dispatch and read-back.
//! The same code runs natively (Vulkan/Metal/DX12) and in the browser (WebGPU).

#[cfg(target_arch = "wasm32")]
mod browser;
pub mod kernels;
pub mod ops;
pub mod params;
pub mod tune;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ops::Deref;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

pub use kernels::{Fuse, IntDot, Kernel, Reduce, Tiling};

use crate::{Error, Result};

/// What the page and the CLI show about the adapter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: DeviceKind,
    pub driver: String,
    pub is_fallback: bool,
    /// The device has subgroup operations (natively through wgpu, in browsers through
    /// `gpu::browser`), with a minimum size that is a multiple of 4, so the subgroup matvec can run.
    pub subgroups: bool,
    pub subgroup_min_size: u32,
    pub subgroup_max_size: u32,
    pub timestamp_query: bool,
    /// Whether the adapter offers `shader-f16` (lowbit never needs it).
    pub shader_f16_available: bool,
    pub max_buffer_size: u64,
    pub max_storage_buffer_binding_size: u64,
    /// The matvec and prefill kernels chosen for this adapter by [`tune::fastest`].
    #[serde(default)]
    pub matvec_kernel: Reduce,
    #[serde(default)]
    pub matmul_kernel: Tiling,
}

/// What kind of device the adapter is (wgpu's `DeviceType`; `Cpu` is a software adapter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceKind {
    DiscreteGpu,
    IntegratedGpu,
    VirtualGpu,
    Cpu,
    #[default]
    Other,
}

impl From<wgpu::DeviceType> for DeviceKind {
    fn from(t: wgpu::DeviceType) -> Self {
        match t {
            wgpu::DeviceType::DiscreteGpu => DeviceKind::DiscreteGpu,
            wgpu::DeviceType::IntegratedGpu => DeviceKind::IntegratedGpu,
            wgpu::DeviceType::VirtualGpu => DeviceKind::VirtualGpu,
            wgpu::DeviceType::Cpu => DeviceKind::Cpu,
            wgpu::DeviceType::Other => DeviceKind::Other,
        }
    }
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl AdapterSummary {
    /// The most bytes one buffer may have and be bound as storage.
    pub fn binding_limit(&self) -> u64 {
        self.max_storage_buffer_binding_size.min(self.max_buffer_size)
    }
}

/// The GPU device: a handle that clones cheaply. A model's backend keeps a clone, so the device
/// lives exactly as long as something uses it; when the last clone goes, the device is destroyed
/// (its memory freed at once, not when a garbage collector gets to it).
#[derive(Clone)]
pub struct Gpu(Rc<GpuShared>);

/// What every clone of a [`Gpu`] shares.
pub struct GpuShared {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: AdapterSummary,
    pipelines: RefCell<HashMap<Kernel, wgpu::ComputePipeline>>,
    /// The matvec and matmul variants this adapter runs fastest (see [`tune::fastest`]).
    choice: Cell<(Reduce, Tiling)>,
    /// The integer matvec form, once 8-bit activations first asked for it ([`Gpu::choose_int_dot`]).
    int_dot: Cell<Option<IntDot>>,
    /// The first error the device reported on its own (out of memory, validation, device lost);
    /// [`Gpu::check`] turns it into an [`Error`] instead of wgpu's default panic.
    fault: std::sync::Arc<std::sync::Mutex<Option<Fault>>>,
    created: Cell<Created>,
    live: Rc<Cell<Live>>,
    /// A binding limit lower than the adapter's, set by a test (0: none).
    test_limit: Cell<u64>,
}

impl Deref for Gpu {
    type Target = GpuShared;
    fn deref(&self) -> &GpuShared {
        &self.0
    }
}

/// Devices created and not yet dropped, in this process (or this worker).
static LIVE_DEVICES: AtomicUsize = AtomicUsize::new(0);

/// How many [`Gpu`] devices exist now: after a reload or a device loss, still one.
pub fn live_devices() -> usize {
    LIVE_DEVICES.load(Ordering::Relaxed)
}

impl Drop for GpuShared {
    fn drop(&mut self) {
        self.device.destroy();
        LIVE_DEVICES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Buffers that exist now (made through a [`Gpu`] and not yet dropped), and their bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Live {
    pub buffers: u64,
    pub bytes: u64,
}

/// A GPU buffer, counted in [`Gpu::live`] while any clone of it exists (dereferences to wgpu's).
#[derive(Clone, Debug)]
pub struct Buffer {
    raw: wgpu::Buffer,
    _counted: Rc<Counted>,
}

#[derive(Debug)]
struct Counted {
    live: Rc<Cell<Live>>,
    bytes: u64,
}

impl Drop for Counted {
    fn drop(&mut self) {
        let l = self.live.get();
        self.live.set(Live { buffers: l.buffers - 1, bytes: l.bytes - self.bytes });
    }
}

impl Deref for Buffer {
    type Target = wgpu::Buffer;
    fn deref(&self) -> &wgpu::Buffer {
        &self.raw
    }
}

impl PartialEq for Buffer {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for Buffer {}

impl std::hash::Hash for Buffer {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.raw.hash(h)
    }
}

/// What the device reported on its own, outside any call that could return it.
#[derive(Clone, Debug)]
enum Fault {
    OutOfMemory(String),
    Lost(String),
    Other(String),
}

/// GPU objects created so far: a decode step after the first must create none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    pub buffers: u64,
    pub bind_groups: u64,
}

/// A weight matrix on the GPU in one of the [`crate::layout`] layouts: one part, or (a matrix
/// larger than one binding may be: a large vocabulary's embedding) several parts of consecutive
/// rows, each with its own buffers.
#[derive(Clone)]
pub struct GpuMatrix {
    pub precision: crate::Precision,
    pub rows: usize,
    pub cols: usize,
    /// Shared by its clones: a clone (one per matrix a forward step records) allocates nothing.
    parts: Rc<[RowPart]>,
    /// Bytes of its layout (the buffers' padding not counted).
    bytes: u64,
}

/// Rows `first..first + rows` of a [`GpuMatrix`]: values `q` and scales `s` (none for FP16).
#[derive(Clone)]
pub struct RowPart {
    pub first: usize,
    pub rows: usize,
    pub q: Buffer,
    pub s: Option<Buffer>,
}

impl GpuMatrix {
    pub fn blocks_per_row(&self) -> usize {
        self.cols.div_ceil(crate::layout::BLOCK)
    }
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    pub fn parts(&self) -> &[RowPart] {
        &self.parts
    }
    /// Part `i` as a matrix of its own (its rows counted from 0).
    pub fn part(&self, i: usize) -> GpuMatrix {
        let p = &self.parts[i];
        let bytes = crate::layout::matrix_bytes(p.rows, self.cols, self.precision);
        GpuMatrix { rows: p.rows, parts: Rc::new([RowPart { first: 0, ..p.clone() }]), bytes, ..*self }
    }
    /// The values and scales of a matrix in one part (the kernels that take a whole matrix).
    pub fn whole(&self) -> (&Buffer, Option<&Buffer>) {
        (&self.parts[0].q, self.parts[0].s.as_ref())
    }
}

/// Every buffer's size is a multiple of this: 32 f32 values, one weight block, so kernels may read
/// activations as vec4s and whole blocks (the padding is zero and meets zero-padded weights).
pub const PAD_BYTES: u64 = 128;

fn padded(bytes: u64) -> u64 {
    bytes.max(1).div_ceil(PAD_BYTES) * PAD_BYTES
}

/// Workgroup counts for `groups` 1-D workgroups, split over y past the 65535 limit
/// (shaders recombine with `linear_id`).
pub fn grid(groups: u32) -> [u32; 3] {
    if groups <= 65535 {
        [groups.max(1), 1, 1]
    } else {
        [65535, groups.div_ceil(65535), 1]
    }
}

/// `grid` for one invocation per item with 64-wide workgroups.
pub fn grid_for(items: usize) -> [u32; 3] {
    grid(items.div_ceil(64) as u32)
}

impl Gpu {
    /// Request the default adapter and a device with its full limits, plus subgroups and
    /// timestamp queries where offered.
    pub async fn new() -> Result<Self> {
        #[cfg(target_arch = "wasm32")]
        browser::install();
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|_| Error::NoAdapter)?;
        let ai = adapter.get_info();
        let feats = adapter.features();
        let subgroups = feats.contains(wgpu::Features::SUBGROUP);
        let timestamps = feats.contains(wgpu::Features::TIMESTAMP_QUERY);
        let mut required = wgpu::Features::empty();
        if subgroups {
            required |= wgpu::Features::SUBGROUP;
        }
        if timestamps {
            required |= wgpu::Features::TIMESTAMP_QUERY;
        }
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("lowbit"),
                required_features: required,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::RequestDevice(e.to_string()))?;
        // In a browser the device got `subgroups` from `browser`'s wrapper, where the adapter has it.
        #[cfg(target_arch = "wasm32")]
        let (subgroups, (sg_min, sg_max)) = match browser::sizes() {
            Some(s) => (true, s),
            None => (false, (ai.subgroup_min_size, ai.subgroup_max_size)),
        };
        #[cfg(not(target_arch = "wasm32"))]
        let (sg_min, sg_max) = (ai.subgroup_min_size, ai.subgroup_max_size);
        // The subgroup matvec sums over 4 consecutive invocations.
        let subgroups = subgroups && sg_min >= 4 && sg_min % 4 == 0;
        let name = match (ai.name.is_empty(), ai.device_type) {
            (false, _) => ai.name.clone(),
            (true, wgpu::DeviceType::Cpu) => "software fallback adapter (name hidden by the browser)".into(),
            (true, _) => "GPU adapter (name hidden by the browser)".into(),
        };
        let info = AdapterSummary {
            name,
            backend: format!("{:?}", ai.backend),
            device_type: ai.device_type.into(),
            driver: format!("{} {}", ai.driver, ai.driver_info).trim().to_string(),
            is_fallback: ai.device_type == wgpu::DeviceType::Cpu,
            subgroups,
            subgroup_min_size: sg_min,
            subgroup_max_size: sg_max,
            timestamp_query: timestamps,
            shader_f16_available: feats.contains(wgpu::Features::SHADER_F16),
            max_buffer_size: limits.max_buffer_size,
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size as u64,
            matvec_kernel: Reduce::default(),
            matmul_kernel: Tiling::default(),
        };
        let fault = std::sync::Arc::new(std::sync::Mutex::new(None::<Fault>));
        let record = |slot: &std::sync::Arc<std::sync::Mutex<Option<Fault>>>, fault: Fault| {
            if let Ok(mut s) = slot.lock() {
                // A loss outranks what came before it: nothing else can be done on the device.
                if s.is_none() || matches!(fault, Fault::Lost(_)) {
                    *s = Some(fault);
                }
            }
        };
        let f = fault.clone();
        device.on_uncaptured_error(std::sync::Arc::new(move |e: wgpu::Error| {
            record(
                &f,
                match &e {
                    wgpu::Error::OutOfMemory { .. } => Fault::OutOfMemory(e.to_string()),
                    _ => Fault::Other(e.to_string()),
                },
            )
        }));
        let f = fault.clone();
        device.set_device_lost_callback(move |reason, msg| {
            // `Destroyed` is lowbit dropping or destroying the device itself.
            let why = if reason == wgpu::DeviceLostReason::Destroyed { format!("destroyed: {msg}") } else { msg };
            record(&f, Fault::Lost(why))
        });
        let reduce = if subgroups { Reduce::Subgroup } else { Reduce::Workgroup };
        let choice = Cell::new((reduce, Tiling::Shared));
        let (created, live) = Default::default();
        LIVE_DEVICES.fetch_add(1, Ordering::Relaxed);
        let shared = GpuShared { device, queue, info, pipelines: RefCell::new(HashMap::new()), choice, int_dot: Cell::new(None), fault, created, live, test_limit: Cell::new(0) };
        let mut gpu = Gpu(Rc::new(shared));
        let (reduce, tiling) = tune::fastest(&gpu).await?;
        gpu.choose(reduce, tiling)?;
        // Natively, LOWBIT_MATVEC=subgroup|workgroup|row|row-subgroup and
        // LOWBIT_MATMUL=shared|rows|rows-subgroup force a variant (experiments).
        #[cfg(not(target_arch = "wasm32"))]
        {
            let env = |k: &str| std::env::var(k).unwrap_or_default();
            let r = gpu.reduces().into_iter().find(|r| r.to_string().eq_ignore_ascii_case(&env("LOWBIT_MATVEC")));
            let t = gpu.tilings().into_iter().find(|t| t.to_string().eq_ignore_ascii_case(&env("LOWBIT_MATMUL")));
            gpu.choose(r.unwrap_or(reduce), t.unwrap_or(tiling))?;
        }
        Ok(gpu)
    }

    /// Run `reduce` matvecs and `tiling` matmuls from now on (while the device is being set up,
    /// before anything else holds a clone of it).
    fn choose(&mut self, reduce: Reduce, tiling: Tiling) -> Result<()> {
        let shared = Rc::get_mut(&mut self.0).ok_or_else(|| Error::Gpu("the device is in use: its kernels are chosen once".into()))?;
        shared.choice.set((reduce, tiling));
        shared.info.matvec_kernel = reduce;
        shared.info.matmul_kernel = tiling;
        Ok(())
    }

    /// The matvec variants this adapter can run.
    pub fn reduces(&self) -> Vec<Reduce> {
        Reduce::ALL.into_iter().filter(|&r| !r.needs_subgroups() || self.info.subgroups).collect()
    }

    /// The prefill matmul variants this adapter can run.
    pub fn tilings(&self) -> Vec<Tiling> {
        Tiling::ALL.into_iter().filter(|&t| !t.needs_subgroups() || self.info.subgroups).collect()
    }

    /// The error the device reported since the last check, if any.
    pub fn check(&self) -> Result<()> {
        let fault = self.fault.lock().ok().and_then(|mut s| match s.as_ref() {
            // A lost device stays lost: every later check says so.
            Some(Fault::Lost(_)) => s.clone(),
            _ => s.take(),
        });
        match fault {
            Some(Fault::OutOfMemory(m)) => Err(Error::OutOfMemory(m)),
            Some(Fault::Lost(m)) => Err(Error::DeviceLost(m)),
            Some(Fault::Other(m)) => Err(Error::Gpu(m)),
            None => Ok(()),
        }
    }

    /// The device's loss as an error: what it reported, or `when` it was noticed.
    fn lost(&self, when: &str) -> Error {
        match self.check() {
            Err(e @ Error::DeviceLost(_)) => e,
            _ => Error::DeviceLost(when.into()),
        }
    }

    /// Catch the out-of-memory errors of what is made until [`OomScope::check`] (WebGPU's
    /// `pushErrorScope('out-of-memory')`, wgpu's error scope natively): a model that does not fit
    /// fails with [`Error::OutOfMemory`] naming `what` it was making, and the device, with the
    /// model loaded before, stays usable. Scopes nest: check them in the reverse order.
    pub fn oom_scope(&self, what: &str) -> OomScope {
        OomScope { guard: self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory), what: what.to_string() }
    }

    /// Destroy the device, as a driver reset or the browser would: the test hook for recovery
    /// from a lost device (every later use fails with [`Error::DeviceLost`]).
    pub fn destroy(&self) {
        self.device.destroy();
    }

    /// Whether the device has been lost (every later use fails; request a new one).
    pub fn is_lost(&self) -> bool {
        self.fault.lock().is_ok_and(|s| matches!(*s, Some(Fault::Lost(_))))
    }

    /// Buffers and bind groups created so far (through this `Gpu`).
    pub fn created(&self) -> Created {
        self.created.get()
    }

    /// Buffers that exist now and their bytes: what a switch or reload must leave as it was.
    pub fn live(&self) -> Live {
        self.live.get()
    }

    fn count(&self, buffers: u64, bind_groups: u64) {
        let c = self.created.get();
        self.created.set(Created { buffers: c.buffers + buffers, bind_groups: c.bind_groups + bind_groups });
    }

    /// Every buffer is made here: counted as created, and as live until its last clone drops.
    fn buffer(&self, label: &str, size: u64, usage: wgpu::BufferUsages) -> Buffer {
        self.count(1, 0);
        let raw = self.device.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size, usage, mapped_at_creation: false });
        let l = self.live.get();
        self.live.set(Live { buffers: l.buffers + 1, bytes: l.bytes + size });
        Buffer { raw, _counted: Rc::new(Counted { live: self.live.clone(), bytes: size }) }
    }

    /// A uniform buffer holding `words` (a [`params::Params`] struct).
    pub fn uniform(&self, label: &str, words: &[u32]) -> Buffer {
        self.filled(label, bytemuck::cast_slice(words), wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST)
    }

    /// A buffer holding `contents` (a multiple of 4 bytes), written through the queue rather than
    /// mapped at creation: on a lost device wgpu's mapped creation panics natively, a queued write
    /// is an error the device reports ([`Gpu::check`]).
    fn filled(&self, label: &str, contents: &[u8], usage: wgpu::BufferUsages) -> Buffer {
        let buf = self.buffer(label, contents.len() as u64, usage);
        if !contents.is_empty() {
            self.queue.write_buffer(&buf, 0, contents);
        }
        buf
    }

    /// A bind group for `kernel`'s pipeline.
    pub fn bind_group(&self, kernel: Kernel, entries: &[wgpu::BindGroupEntry]) -> wgpu::BindGroup {
        self.count(0, 1);
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &self.pipeline(kernel).get_bind_group_layout(0),
            entries,
        })
    }

    /// The matvec variant this adapter runs.
    pub fn reduce(&self) -> Reduce {
        self.choice.get().0
    }

    /// The prefill matmul variant this adapter runs.
    pub fn tiling(&self) -> Tiling {
        self.choice.get().1
    }

    /// The integer matvec form 8-bit activations run with ([`Gpu::choose_int_dot`]; packed
    /// products until it has measured).
    pub fn int_dot(&self) -> IntDot {
        self.int_dot.get().unwrap_or_default()
    }

    /// Measure, once, which integer matvec form runs faster here ([`tune::fastest_int_dot`]):
    /// only the barrier-free matvec (CPU adapters) has two. Natively, LOWBIT_INTDOT=packed|unpacked
    /// forces one (experiments).
    pub async fn choose_int_dot(&self) -> Result<IntDot> {
        if let Some(d) = self.int_dot.get() {
            return Ok(d);
        }
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(d) = [IntDot::Packed, IntDot::Unpacked].into_iter().find(|d| d.to_string() == std::env::var("LOWBIT_INTDOT").unwrap_or_default()) {
            self.int_dot.set(Some(d));
            return Ok(d);
        }
        let d = tune::fastest_int_dot(self).await?;
        self.int_dot.set(Some(d));
        Ok(d)
    }

    /// The compiled pipeline of a kernel (compiled once, then cached).
    pub fn pipeline(&self, kernel: Kernel) -> wgpu::ComputePipeline {
        if let Some(p) = self.pipelines.borrow().get(&kernel) {
            return p.clone();
        }
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&kernel.name()),
            source: wgpu::ShaderSource::Wgsl(kernel.source().into()),
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&kernel.name()),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        self.pipelines.borrow_mut().insert(kernel, pipeline.clone());
        pipeline
    }

    fn check_size(&self, what: &str, bytes: u64) -> Result<()> {
        let limit = self.binding_limit();
        if bytes > limit {
            return Err(Error::TooLarge { what: what.to_string(), needed: bytes, limit });
        }
        Ok(())
    }

    /// A storage buffer holding `data`, zero-padded to a multiple of [`PAD_BYTES`] (at least that).
    pub fn storage(&self, label: &str, data: &[u8]) -> Result<Buffer> {
        let size = padded(data.len() as u64);
        self.check_size(label, size)?;
        let mut padded_data;
        let contents = if size as usize == data.len() {
            data
        } else {
            padded_data = vec![0u8; size as usize];
            padded_data[..data.len()].copy_from_slice(data);
            &padded_data[..]
        };
        Ok(self.filled(label, contents, wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST))
    }

    pub fn storage_f32(&self, label: &str, data: &[f32]) -> Result<Buffer> {
        self.storage(label, bytemuck::cast_slice(data))
    }

    pub fn storage_u32(&self, label: &str, data: &[u32]) -> Result<Buffer> {
        self.storage(label, bytemuck::cast_slice(data))
    }

    /// A zeroed storage buffer of `len` f32 (or u32) elements (padded to [`PAD_BYTES`]).
    pub fn zeros(&self, label: &str, len: usize) -> Result<Buffer> {
        let size = padded(len as u64 * 4);
        self.check_size(label, size)?;
        Ok(self.buffer(label, size, wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST))
    }

    /// Upload a quantized matrix in its GPU layout, in one part; [`TooLarge`](Error::TooLarge)
    /// past the binding limit.
    pub fn upload_matrix(&self, name: &str, w: &crate::QuantMatrix) -> Result<GpuMatrix> {
        self.upload_parts(name, w, w.rows)
    }

    /// Upload a matrix in parts of consecutive rows, each within the binding limit: for the
    /// token embedding and output head, which the model reads part by part.
    pub fn upload_split(&self, name: &str, w: &crate::QuantMatrix) -> Result<GpuMatrix> {
        let row_bytes = crate::layout::matrix_bytes(1, w.cols, w.precision()).max(1);
        // Padding and an odd row's packed scales take a little more than the rows' bytes.
        let rows = ((self.binding_limit().saturating_sub(2 * PAD_BYTES)) / row_bytes) as usize;
        if rows == 0 {
            return Err(Error::TooLarge { what: format!("one row of {name}"), needed: row_bytes, limit: self.binding_limit() });
        }
        self.upload_parts(name, w, rows)
    }

    fn upload_parts(&self, name: &str, w: &crate::QuantMatrix, rows_per_part: usize) -> Result<GpuMatrix> {
        let mut parts = vec![];
        let mut bytes = 0;
        for first in (0..w.rows.max(1)).step_by(rows_per_part.max(1)) {
            let rows = rows_per_part.min(w.rows - first);
            let slice;
            let m = if rows == w.rows { w } else {
                slice = w.rows_range(first, rows);
                &slice
            };
            let layout = m.gpu_layout();
            let tag = if rows == w.rows { String::new() } else { format!("[{first}..]") };
            let s = if layout.s.is_empty() { None } else { Some(self.storage_u32(&format!("{name}{tag}.s"), &layout.s)?) };
            let q = self.storage_u32(&format!("{name}{tag}.q"), &layout.q)?;
            bytes += (layout.q.len() + layout.s.len()) as u64 * 4;
            parts.push(RowPart { first, rows, q, s });
        }
        Ok(GpuMatrix { precision: w.precision(), rows: w.rows, cols: w.cols, parts: parts.into(), bytes })
    }

    /// The most bytes one buffer may have and be bound (the adapter's limits, or a lower one a
    /// test set).
    pub fn binding_limit(&self) -> u64 {
        let adapter = self.info.binding_limit();
        match self.test_limit.get() {
            0 => adapter,
            l => l.min(adapter),
        }
    }

    /// Lower the binding limit, as a GPU with smaller buffers would have it (tests).
    pub fn set_binding_limit(&self, bytes: u64) {
        self.test_limit.set(bytes);
    }

    pub fn encoder(&self) -> wgpu::CommandEncoder {
        self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
    }

    pub fn submit(&self, enc: wgpu::CommandEncoder) {
        self.queue.submit([enc.finish()]);
    }

    /// Wait until all submitted work is done.
    pub async fn wait(&self) -> Result<()> {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.queue.on_submitted_work_done(move || {
            let _ = tx.send(());
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(e.to_string()))?;
        rx.await.map_err(|_| self.lost("while waiting for the GPU"))
    }

    /// Copy `bytes` bytes of `buf` (from offset 0) back to the CPU.
    pub async fn read_bytes(&self, buf: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let staging = self.staging(bytes);
        self.read_with(buf, bytes, &staging).await
    }

    /// A buffer to read `bytes` bytes back through (see [`Gpu::read_with`]).
    pub fn staging(&self, bytes: u64) -> Buffer {
        self.buffer("readback", bytes.div_ceil(4).max(1) * 4, wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST)
    }

    /// Copy `bytes` bytes of `buf` back to the CPU through `staging` (kept by a caller that reads
    /// every step, so a decode step creates no buffer).
    pub async fn read_with(
        &self,
        buf: &wgpu::Buffer,
        bytes: u64,
        staging: &wgpu::Buffer,
    ) -> Result<Vec<u8>> {
        self.read_later(buf, 0, bytes, staging)?.finish(self).await
    }

    /// Start reading `bytes` bytes of `buf` from `offset` back through `staging`, behind the work
    /// submitted so far, without waiting: work submitted after this call does not delay it
    /// ([`PendingRead::finish`] waits for this copy alone). Dropping the read unfinished cancels
    /// it (the staging buffer is unmapped, ready for the next read).
    pub fn read_later(
        &self,
        buf: &wgpu::Buffer,
        offset: u64,
        bytes: u64,
        staging: &wgpu::Buffer,
    ) -> Result<PendingRead> {
        let size = bytes.div_ceil(4) * 4;
        if size > staging.size() {
            return Err(Error::Gpu(format!("read-back of {size} bytes through a {}-byte buffer", staging.size())));
        }
        let mut enc = self.encoder();
        enc.copy_buffer_to_buffer(buf, offset, staging, 0, size);
        let index = self.queue.submit([enc.finish()]);
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.map_async(wgpu::MapMode::Read, ..size, move |r| {
            let _ = tx.send(r);
        });
        Ok(PendingRead {
            staging: Some(staging.clone()),
            bytes,
            size,
            rx,
            index,
        })
    }

    pub async fn read_f32(&self, buf: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
        let b = self.read_bytes(buf, (len * 4) as u64).await?;
        Ok(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    pub async fn read_u32(&self, buf: &wgpu::Buffer, len: usize) -> Result<Vec<u32>> {
        let b = self.read_bytes(buf, (len * 4) as u64).await?;
        Ok(b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}

/// A read-back under way ([`Gpu::read_later`]).
pub struct PendingRead {
    /// None once finished.
    staging: Option<wgpu::Buffer>,
    bytes: u64,
    size: u64,
    rx: futures_channel::oneshot::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    index: wgpu::SubmissionIndex,
}

impl PendingRead {
    /// Wait for the copy (and the work submitted before it), then the bytes.
    pub async fn finish(mut self, gpu: &Gpu) -> Result<Vec<u8>> {
        #[cfg(not(target_arch = "wasm32"))]
        if gpu
            .device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(self.index.clone()),
                timeout: None,
            })
            .is_err()
        {
            // The copy's submission failed (a lost device): wait for everything, and the mapping
            // says what happened.
            gpu.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| Error::Gpu(e.to_string()))?;
        }
        let rx = std::mem::replace(&mut self.rx, futures_channel::oneshot::channel().1);
        rx.await
            .map_err(|_| gpu.lost("during a read-back"))?
            .map_err(|e| {
                if gpu.is_lost() {
                    gpu.lost("during a read-back")
                } else {
                    Error::Gpu(format!("map failed: {e}"))
                }
            })?;
        let staging = self.staging.take().expect("a read is finished once");
        let out = {
            let view = staging
                .get_mapped_range(..self.size)
                .map_err(|e| Error::Gpu(format!("{e:?}")))?;
            view[..self.bytes as usize].to_vec()
        };
        staging.unmap();
        gpu.check()?;
        Ok(out)
    }
}

impl Drop for PendingRead {
    fn drop(&mut self) {
        // Unfinished: cancel the mapping (or undo it, if it already happened).
        if let Some(s) = self.staging.take() {
            s.unmap();
        }
    }
}

/// See [`Gpu::oom_scope`].
pub struct OomScope {
    guard: wgpu::ErrorScopeGuard,
    what: String,
}

impl OomScope {
    /// The out-of-memory error of the scope's allocations, if one failed.
    pub async fn check(self) -> Result<()> {
        match self.guard.pop().await {
            Some(e) => Err(Error::OutOfMemory(format!("{}: {e}", self.what))),
            None => Ok(()),
        }
    }
}

/// Timestamp queries for `passes` compute passes (2 queries each), when the adapter has them.
pub struct PassTimer {
    pub set: wgpu::QuerySet,
    resolve: Buffer,
    passes: u32,
}

impl PassTimer {
    pub fn new(gpu: &Gpu, passes: u32) -> Option<Self> {
        if !gpu.info.timestamp_query {
            return None;
        }
        let set = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: passes * 2,
        });
        let resolve = gpu.buffer("timestamps.resolve", passes as u64 * 16, wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC);
        Some(PassTimer { set, resolve, passes })
    }

    /// How many passes it times.
    pub fn passes(&self) -> u32 {
        self.passes
    }

    /// Query index for pass `i`.
    pub fn slot(&self, i: u32) -> (&wgpu::QuerySet, u32) {
        (&self.set, 2 * i)
    }

    pub fn resolve(&self, enc: &mut wgpu::CommandEncoder) {
        self.resolve_first(enc, self.passes);
    }

    /// Resolve the first `passes` passes' queries only (the ones written).
    pub fn resolve_first(&self, enc: &mut wgpu::CommandEncoder, passes: u32) {
        enc.resolve_query_set(&self.set, 0..passes.min(self.passes) * 2, &self.resolve, 0);
    }

    /// Per-pass durations in milliseconds (after `resolve` was submitted).
    pub async fn read_ms(&self, gpu: &Gpu) -> Result<Vec<f64>> {
        self.read_first_ms(gpu, self.passes).await
    }

    /// The first `passes` passes' durations in milliseconds (after they were resolved).
    pub async fn read_first_ms(&self, gpu: &Gpu, passes: u32) -> Result<Vec<f64>> {
        let b = gpu
            .read_bytes(&self.resolve, passes.min(self.passes) as u64 * 16)
            .await?;
        let period = gpu.queue.get_timestamp_period() as f64;
        let t: Vec<u64> = b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect();
        Ok(t.chunks_exact(2).map(|p| p[1].saturating_sub(p[0]) as f64 * period / 1e6).collect())
    }
}
