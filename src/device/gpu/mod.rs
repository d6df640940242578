//! The wgpu device: one per adapter, with a pipeline cache; its data moves through the
//! transfer layer (`src/transfer/`): pooled staging, chunks pipelined through a ring,
//! a link model calibrated on first need and stored on disk.
//!
//! Every driver complaint becomes an [`Error`] for the call (error scopes, a device-lost
//! callback), and nothing panics.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use pollster::block_on;

use super::{Device, DeviceInfo, DeviceKind, Resident, ShareStats};
use crate::error::{Error, Result};
use crate::kernel::reduce::{Partial, Reduce};
use crate::kernel::wgsl::{Shader, ENTRY_POINT, REDUCE_PER_GROUP, WORKGROUP_SIZE};
use crate::kernel::KernelInner;
use crate::transfer::calibrate::{self, Calibration};
use crate::transfer::staging::{grid, Compute, Ctx, Job, Kind, Pool, Streamed, DEFAULT_IDLE_BYTES};
use crate::transfer::{plan_chunks, Link, TransferConfig, TransferStats};

/// Compiled kernels kept per device; the least recently used goes beyond this.
const CACHE_CAPACITY: usize = 64;

/// Bytes of the uniform parameter block: base, len, row, zero.
use crate::transfer::staging::PARAMS_BYTES;
const _: () = assert!(PARAMS_BYTES == crate::kernel::wgsl::HEADER_BYTES);

/// Measured runs per size when calibrating (after one warm-up); the fastest counts.
const CALIBRATION_REPS: usize = 3;

/// Bytes of the round trip that measures what device timestamps cost.
const STAMP_PROBE_BYTES: u64 = 64 << 10;

/// Timed repetitions of each variant (with and without timestamps), after a warm-up.
const STAMP_PROBE_REPS: usize = 8;

/// The most of a chunk's predicted transfer time its device timestamps may cost for a
/// call to be timed with them: timing should not change what it measures.
const STAMP_SHARE: f64 = 1.0 / 64.0;

/// A GPU, as the scheduler sees it.
pub(crate) struct GpuDevice {
    info: DeviceInfo,
    device: wgpu::Device,
    queue: wgpu::Queue,
    /// Largest chunk in bytes per buffer the adapter allows (binding and buffer limits).
    max_chunk_bytes: u64,
    max_groups: u32,
    cache: Mutex<PipelineCache>,
    /// Pipelines compiled since the device was made.
    compilations: AtomicU64,
    /// Set by the device-lost callback.
    lost: Arc<Mutex<Option<String>>>,
    /// Staging and device buffers, reused across calls and kernels (shared with the
    /// resident data that gives its buffers back when dropped).
    pool: Arc<Pool>,
    /// Unique in the process: which device a resident part lives on.
    id: u64,
    /// Chunking, ring depth and cache-dir overrides.
    config: Mutex<TransferConfig>,
    /// Nanoseconds per timestamp tick, when copies and passes can be timed on the device.
    timestamp_period: Option<f32>,
    /// The link calibration, measured or loaded on first need (`None`: it failed).
    calibration: OnceLock<Option<Calibration>>,
    /// Seconds that writing, resolving and reading back one chunk's device timestamps
    /// adds to a call, measured on first need (`None`: no timestamps on this device).
    stamp_cost: OnceLock<Option<f64>>,
    /// Fault injection: chunks left before every further chunk fails (`u64::MAX`:
    /// never).
    fault: AtomicU64,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<GpuDevice>();
};

/// The next GPU device's [`GpuDevice::id`].
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A part of an array held in a GPU's memory: a storage buffer from the device's pool
/// (given back when dropped), and what it takes to read it back without the device
/// object (wgpu's handles are shared).
pub(crate) struct GpuData {
    buffer: Option<wgpu::Buffer>,
    len: usize,
    owner: u64,
    name: String,
    device: wgpu::Device,
    queue: wgpu::Queue,
    pool: Arc<Pool>,
    lost: Arc<Mutex<Option<String>>>,
}

impl GpuData {
    fn buffer(&self) -> Result<&wgpu::Buffer> {
        self.buffer.as_ref().ok_or_else(|| Error::DeviceFailed {
            device: self.name.clone(),
            stage: "resident",
            reason: "the buffer was released".into(),
        })
    }

    /// The buffer bound as `len` elements (it may be larger: pooled size classes).
    fn binding(&self) -> Result<wgpu::BindingResource<'_>> {
        Ok(wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.buffer()?,
            offset: 0,
            size: wgpu::BufferSize::new(self.len as u64 * 4),
        }))
    }

    fn failed(&self, stage: &'static str, reason: impl ToString) -> Error {
        let lost = self.lost.lock().unwrap_or_else(|e| e.into_inner());
        match lost.as_ref() {
            Some(r) => Error::DeviceLost {
                device: self.name.clone(),
                reason: r.clone(),
            },
            None => Error::DeviceFailed {
                device: self.name.clone(),
                stage,
                reason: reason.to_string(),
            },
        }
    }
}

impl Drop for GpuData {
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            self.pool.give(Kind::Input, b);
        }
    }
}

impl Resident for GpuData {
    fn len(&self) -> usize {
        self.len
    }

    fn owner(&self) -> u64 {
        self.owner
    }

    fn owner_name(&self) -> &str {
        &self.name
    }

    fn download(&self, out: &mut [u32]) -> Result<ShareStats> {
        let t = Instant::now();
        let bytes = self.len as u64 * 4;
        if out.len() != self.len {
            return Err(Error::LengthMismatch {
                left: self.len,
                right: out.len(),
            });
        }
        if bytes == 0 {
            return Ok(ShareStats::default());
        }
        let down = self.pool.take(&self.device, Kind::Download, bytes);
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("hybrid resident download"),
            });
        enc.copy_buffer_to_buffer(self.buffer()?, 0, &down, 0, bytes);
        let sub = self.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        down.slice(..bytes)
            .map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(sub),
                timeout: Some(std::time::Duration::from_secs(60)),
            })
            .map_err(|e| self.failed("download", e))?;
        match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(self.failed("download", e)),
            Err(e) => return Err(self.failed("download", e)),
        }
        {
            let view = down
                .slice(..bytes)
                .get_mapped_range()
                .map_err(|e| self.failed("download", e))?;
            out.copy_from_slice(bytemuck::cast_slice(&view));
        }
        down.unmap();
        self.pool.give(Kind::Download, down);
        let secs = t.elapsed().as_secs_f64();
        Ok(ShareStats {
            bytes_from_device: bytes,
            download_s: secs,
            chunks: 1,
            ..ShareStats::default()
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A compiled kernel and the layout its bind groups follow.
pub(crate) struct Pipeline {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    inputs: usize,
    /// Bytes of the uniform block: the header, then the kernel's parameter values.
    uniform_bytes: u64,
}

#[derive(Default)]
struct PipelineCache {
    /// Shader hash -> (pipeline, last use).
    map: HashMap<u64, (Arc<Pipeline>, u64)>,
    tick: u64,
}

impl PipelineCache {
    fn get(&mut self, key: u64) -> Option<Arc<Pipeline>> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(&key).map(|(p, used)| {
            *used = tick;
            p.clone()
        })
    }

    fn insert(&mut self, key: u64, p: Arc<Pipeline>) {
        self.tick += 1;
        self.map.insert(key, (p, self.tick));
        while self.map.len() > CACHE_CAPACITY {
            let oldest = self
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k);
            match oldest {
                Some(k) => self.map.remove(&k),
                None => break,
            };
        }
    }
}

/// Every usable GPU adapter as a device, or why there is none.
///
/// `WGPU_BACKEND` (e.g. `vulkan`, `gl`) chooses the backends; otherwise the primary
/// ones (Vulkan, Metal, DX12), and GL only when they find nothing, so one GPU seen
/// through two APIs is not counted twice.
pub(crate) fn discover() -> std::result::Result<Vec<GpuDevice>, String> {
    let adapters = match wgpu::Backends::from_env() {
        Some(backends) => adapters(backends),
        None => {
            let primary = adapters(wgpu::Backends::PRIMARY);
            if primary.is_empty() {
                adapters(wgpu::Backends::GL)
            } else {
                primary
            }
        }
    };
    if adapters.is_empty() {
        return Err("no adapter found".into());
    }
    let mut devices = Vec::new();
    let mut reasons = Vec::new();
    for adapter in adapters {
        match GpuDevice::new(&adapter) {
            Ok(d) => devices.push(d),
            Err(e) => reasons.push(e),
        }
    }
    if devices.is_empty() {
        return Err(reasons.join("; "));
    }
    Ok(devices)
}

fn adapters(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle_from_env()
    });
    block_on(instance.enumerate_adapters(backends))
}

impl GpuDevice {
    fn new(adapter: &wgpu::Adapter) -> std::result::Result<GpuDevice, String> {
        let a = adapter.get_info();
        let kind = match a.device_type {
            wgpu::DeviceType::DiscreteGpu => DeviceKind::DiscreteGpu,
            wgpu::DeviceType::IntegratedGpu => DeviceKind::IntegratedGpu,
            wgpu::DeviceType::Cpu => DeviceKind::SoftwareGpu,
            _ => DeviceKind::OtherGpu,
        };
        let driver = format!("{} {}", a.driver, a.driver_info).trim().to_string();
        let info = DeviceInfo {
            name: a.name.clone(),
            backend: a.backend.to_str().into(),
            kind,
            driver,
        };
        // The adapter's own limits: storage bindings and buffers as large as it allows.
        let limits = adapter.limits();
        // Timestamps inside command encoders time each chunk's copies and compute.
        let stamps =
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS;
        let features = adapter.features() & stamps;
        let desc = wgpu::DeviceDescriptor {
            label: Some("hybrid"),
            required_limits: limits.clone(),
            required_features: features,
            ..Default::default()
        };
        let (device, queue) =
            block_on(adapter.request_device(&desc)).map_err(|e| format!("{}: {e}", info.name))?;
        // Errors outside a scope are recorded, never a panic; every call uses scopes.
        device.on_uncaptured_error(Arc::new(|_e: wgpu::Error| {}));
        let lost = Arc::new(Mutex::new(None));
        let slot = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(format!("{reason:?}: {message}"));
        });
        let per_buffer = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let max_groups = limits.max_compute_workgroups_per_dimension.max(1);
        let chunk_elements = chunk_elements(per_buffer, max_groups);
        if chunk_elements == 0 {
            let e = Error::BufferTooLarge {
                requested: WORKGROUP_SIZE as u64 * 4,
                max: per_buffer,
            };
            return Err(format!("{}: {e}", info.name));
        }
        let timestamp_period = (features == stamps).then(|| queue.get_timestamp_period());
        Ok(GpuDevice {
            info,
            device,
            queue,
            max_chunk_bytes: chunk_elements as u64 * 4,
            max_groups,
            cache: Mutex::default(),
            compilations: AtomicU64::new(0),
            lost,
            pool: Arc::new(Pool::new(DEFAULT_IDLE_BYTES)),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            config: Mutex::new(TransferConfig::from_env()),
            timestamp_period,
            calibration: OnceLock::new(),
            stamp_cost: OnceLock::new(),
            fault: AtomicU64::new(u64::MAX),
        })
    }

    /// Replaces the transfer configuration (unset fields keep the environment's).
    pub(crate) fn configure(&self, cfg: &TransferConfig) {
        let merged = cfg.or(&TransferConfig::from_env());
        if let Some(b) = merged.pool_idle_bytes {
            self.pool.set_max_idle_bytes(b);
        }
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = merged;
    }

    fn config(&self) -> TransferConfig {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Buffers the pool has allocated since the device was made.
    #[cfg(test)]
    pub(crate) fn pool_allocations(&self) -> u64 {
        self.pool.allocations()
    }

    /// The transfer context for this device; `timed` asks for device timestamps.
    fn with_ctx<T>(&self, timed: bool, f: impl FnOnce(&Ctx) -> Result<T>) -> Result<T> {
        if let Some(e) = self.lost_error() {
            return Err(e);
        }
        let fail = |stage: &'static str, reason: String| self.failed(stage, reason);
        let ctx = Ctx {
            device: &self.device,
            queue: &self.queue,
            pool: &self.pool,
            timestamp_period: self.timestamp_period.filter(|_| timed),
            fail: &fail,
            fault: (self.fault.load(Ordering::Relaxed) != u64::MAX).then_some(&self.fault),
        };
        f(&ctx)
    }

    /// The link calibration: loaded from the cache directory, or measured now (once
    /// per device) and stored. `None` when measuring failed (said on stderr).
    pub(crate) fn calibration(&self) -> Option<&Calibration> {
        self.calibration
            .get_or_init(|| {
                let dir = self.config().cache_dir.unwrap_or_else(crate::cache::dir);
                let key =
                    calibrate::Key::new(&self.info.name, &self.info.backend, &self.info.driver);
                let now = calibrate::now_unix_s();
                match calibrate::load_or_measure(&dir, &key, now, || self.measure(now)) {
                    Ok((c, _, warnings)) => {
                        for w in warnings {
                            eprintln!("hybrid: warning: {}: {w}", self.info.name);
                        }
                        Some(c)
                    }
                    Err(e) => {
                        eprintln!(
                            "hybrid: warning: {}: link calibration failed: {e}",
                            self.info.name
                        );
                        None
                    }
                }
            })
            .as_ref()
    }

    /// Measures uploads and downloads from 4 KiB to 64 MiB (as the adapter allows) and
    /// an empty dispatch, and fits the link.
    fn measure(&self, now: u64) -> Result<Calibration> {
        let sizes: Vec<u64> = calibrate::SIZES
            .iter()
            .copied()
            .filter(|&b| b <= self.max_chunk_bytes)
            .collect();
        let largest = sizes.last().copied().unwrap_or(0) as usize / 4;
        let src = vec![0x5a5a_5a5au32; largest];
        let mut dst = vec![0u32; largest];
        let (mut up, mut down) = (Vec::new(), Vec::new());
        self.with_ctx(false, |ctx| {
            for &b in &sizes {
                let n = b as usize / 4;
                let (mut best_up, mut best_down) = (f64::INFINITY, f64::INFINITY);
                for rep in 0..=CALIBRATION_REPS {
                    let t = Instant::now();
                    ctx.stream(one_chunk(&[&src[..n]], None, n))?;
                    let t_up = t.elapsed().as_secs_f64();
                    let t = Instant::now();
                    ctx.stream(one_chunk(&[], Some(&mut dst[..n]), n))?;
                    let t_down = t.elapsed().as_secs_f64();
                    if rep > 0 {
                        best_up = best_up.min(t_up);
                        best_down = best_down.min(t_down);
                    }
                }
                up.push((b, best_up));
                down.push((b, best_down));
            }
            Ok(())
        })?;
        let dispatch_s = self.measure_dispatch()?;
        Calibration::from_samples(up, down, dispatch_s, now).ok_or_else(|| {
            self.failed(
                "calibrate",
                "transfer times do not grow with size; no link fitted",
            )
        })
    }

    /// Seconds to submit one empty workgroup and wait for it: the fastest of a few.
    fn measure_dispatch(&self) -> Result<f64> {
        let shader = Shader::from_source("@compute @workgroup_size(1) fn main() {}\n".into(), 0);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("hybrid empty"),
                source: wgpu::ShaderSource::Wgsl(Cow::Borrowed(&shader.source)),
            });
        let pipeline = self.scoped("calibrate", || {
            Ok(self
                .device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some("hybrid empty"),
                    layout: None,
                    module: &module,
                    entry_point: Some(ENTRY_POINT),
                    compilation_options: Default::default(),
                    cache: None,
                }))
        })?;
        let mut best = f64::INFINITY;
        for rep in 0..=10 {
            let t = Instant::now();
            let mut enc = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("hybrid empty"),
                });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
                pass.set_pipeline(&pipeline);
                pass.dispatch_workgroups(1, 1, 1);
            }
            self.queue.submit([enc.finish()]);
            self.wait("calibrate")?;
            if rep > 0 {
                best = best.min(t.elapsed().as_secs_f64());
            }
        }
        Ok(best)
    }

    /// What one chunk's device timestamps cost a call: the fastest of a few one-chunk
    /// 64 KiB round trips with them, less the fastest without, interleaved. `None`
    /// when the device has no timestamps (or measuring failed).
    fn stamp_cost(&self) -> Option<f64> {
        *self.stamp_cost.get_or_init(|| {
            self.timestamp_period?;
            let n = STAMP_PROBE_BYTES as usize / 4;
            let src = vec![0u32; n];
            let mut dst = vec![0u32; n];
            let mut best = [f64::INFINITY; 2];
            for rep in 0..=STAMP_PROBE_REPS {
                for (k, timed) in [false, true].into_iter().enumerate() {
                    let t = Instant::now();
                    self.with_ctx(timed, |ctx| {
                        ctx.stream(one_chunk(&[&src[..]], Some(&mut dst[..]), n))
                    })
                    .ok()?;
                    if rep > 0 {
                        best[k] = best[k].min(t.elapsed().as_secs_f64());
                    }
                }
            }
            Some((best[1] - best[0]).max(0.0))
        })
    }

    /// Whether a call moving chunks of `chunk` elements should time them with device
    /// timestamps: when the device has them and they cost at most [`STAMP_SHARE`] of
    /// one chunk's predicted transfer time (`HYBRID_DEVICE_TIMESTAMPS=1` or `0`
    /// forces the choice). On drivers where a timestamp costs a flush (lavapipe:
    /// ~100 µs a chunk) small transfers go untimed, and their receipts say so.
    fn timed(&self, chunk: usize, link: Option<&Link>) -> bool {
        if self.timestamp_period.is_none() {
            return false;
        }
        match std::env::var("HYBRID_DEVICE_TIMESTAMPS").ok().as_deref() {
            Some("1") => return true,
            Some("0") => return false,
            _ => {}
        }
        let Some(cost) = self.stamp_cost() else {
            return false;
        };
        let bytes = chunk as u64 * 4;
        let chunk_s = link.map_or(0.0, |l| l.up.time_s(bytes).min(l.down.time_s(bytes)));
        cost <= STAMP_SHARE * chunk_s
    }

    /// Chunk length and ring depth for `n` elements, from the link model and the
    /// configuration.
    fn plan(&self, n: usize) -> (usize, usize, Option<Link>) {
        let cfg = self.config();
        let cal = self.calibration();
        let link = cal.map(|c| c.link);
        let dispatch_s = cal.map_or(0.0, |c| c.dispatch_s);
        let (chunk, ring) = plan_chunks(
            n,
            link.as_ref(),
            dispatch_s,
            &cfg,
            self.max_chunk_bytes,
            WORKGROUP_SIZE as usize,
        );
        (chunk, ring, link)
    }

    /// Moves `src` to the device and/or `dst` back from it through the transfer layer,
    /// with no kernel: `src` alone uploads, `dst` alone downloads (whatever the device
    /// buffer holds), both make a round trip of `src` into `dst`.
    pub(crate) fn move_data(
        &self,
        src: Option<&[u32]>,
        dst: Option<&mut [u32]>,
    ) -> Result<TransferStats> {
        let n = match (&src, &dst) {
            (Some(s), Some(d)) if s.len() != d.len() => {
                return Err(Error::LengthMismatch {
                    left: s.len(),
                    right: d.len(),
                })
            }
            (Some(s), _) => s.len(),
            (None, Some(d)) => d.len(),
            (None, None) => 0,
        };
        let inputs: Vec<&[u32]> = src.into_iter().collect();
        let (chunk, ring, link) = self.plan(n);
        let timed = self.timed(chunk, link.as_ref());
        let st = self.with_ctx(timed, |ctx| {
            ctx.stream(Job {
                inputs: &inputs,
                out: dst,
                compute: None,
                len: n,
                chunk,
                ring,
                link,
            })
        })?;
        Ok(st.transfer)
    }

    fn failed(&self, stage: &'static str, reason: impl ToString) -> Error {
        match self.lost_error() {
            Some(e) => e,
            None => Error::DeviceFailed {
                device: self.info.name.clone(),
                stage,
                reason: reason.to_string(),
            },
        }
    }

    fn lost_error(&self) -> Option<Error> {
        let lost = self.lost.lock().unwrap_or_else(|e| e.into_inner());
        lost.as_ref().map(|reason| Error::DeviceLost {
            device: self.info.name.clone(),
            reason: reason.clone(),
        })
    }

    /// Runs `f` inside validation and out-of-memory error scopes; an error either
    /// raises becomes a `DeviceFailed` for `stage`.
    fn scoped<T>(&self, stage: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = block_on(validation.pop());
        let o = block_on(oom.pop());
        if let Some(e) = v.or(o) {
            return Err(self.failed(stage, e));
        }
        out
    }

    /// Blocks until the queue is idle.
    fn wait(&self, stage: &'static str) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| self.failed(stage, e))?;
        match self.lost_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The compiled pipeline for `shader`, from the cache or compiled now.
    pub(crate) fn pipeline(&self, shader: &Shader) -> Result<Arc<Pipeline>> {
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(shader.hash);
        if let Some(p) = cached {
            return Ok(p);
        }
        let p = Arc::new(self.compile(shader)?);
        self.compilations.fetch_add(1, Ordering::Relaxed);
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(shader.hash, p.clone());
        Ok(p)
    }

    fn rejected(&self, shader: &Shader, message: String, line: u32) -> Error {
        let source_line = match line {
            0 => String::new(),
            l => shader
                .source
                .lines()
                .nth(l as usize - 1)
                .unwrap_or("")
                .trim()
                .to_string(),
        };
        Error::ShaderRejected {
            device: self.info.name.clone(),
            message,
            line,
            source_line,
        }
    }

    fn compile(&self, shader: &Shader) -> Result<Pipeline> {
        if let Some(e) = self.lost_error() {
            return Err(e);
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("hybrid kernel"),
                source: wgpu::ShaderSource::Wgsl(Cow::Borrowed(&shader.source)),
            });
        let info = block_on(module.get_compilation_info());
        let err = block_on(scope.pop());
        let first = info
            .messages
            .iter()
            .find(|m| m.message_type == wgpu::CompilationMessageType::Error);
        if let Some(m) = first {
            let line = m.location.map_or(0, |l| l.line_number);
            return Err(self.rejected(shader, m.message.clone(), line));
        }
        if let Some(e) = err {
            return Err(self.rejected(shader, e.to_string(), 0));
        }

        let inputs = shader.inputs as usize;
        let storage = |read_only| wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        };
        let mut entries: Vec<wgpu::BindGroupLayoutEntry> = (0..=inputs)
            .map(|k| wgpu::BindGroupLayoutEntry {
                binding: k as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: storage(k < inputs),
                count: None,
            })
            .collect();
        entries.push(wgpu::BindGroupLayoutEntry {
            binding: inputs as u32 + 1,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: wgpu::BufferSize::new(shader.uniform_bytes.max(PARAMS_BYTES)),
            },
            count: None,
        });
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let layout = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("hybrid kernel"),
                entries: &entries,
            });
        let pipeline_layout = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("hybrid kernel"),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("hybrid kernel"),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(ENTRY_POINT),
                compilation_options: Default::default(),
                cache: None,
            });
        if let Some(e) = block_on(scope.pop()) {
            if let Some(lost) = self.lost_error() {
                return Err(lost);
            }
            return Err(self.rejected(shader, e.to_string(), 0));
        }
        Ok(Pipeline {
            pipeline,
            layout,
            inputs,
            uniform_bytes: shader.uniform_bytes.max(PARAMS_BYTES),
        })
    }

    /// Computes `out.len()` elements with `p`, through the transfer layer's ring;
    /// `params` are the kernel's parameter values (bit patterns).
    pub(crate) fn dispatch(
        &self,
        p: &Pipeline,
        params: &[u32],
        inputs: &[&[u32]],
        first_index: u64,
        out: &mut [u32],
    ) -> Result<ShareStats> {
        let n = out.len();
        self.launch(p, params, inputs, first_index, n, out, 1, WORKGROUP_SIZE)
    }

    /// Runs `p` over `n` elements through the transfer layer's ring; each workgroup
    /// covers `group_elems` elements and the kernel writes one output per `out_ratio`
    /// inputs (1 for a map, [`REDUCE_PER_GROUP`] for a reduction's partials).
    #[allow(clippy::too_many_arguments)]
    fn launch(
        &self,
        p: &Pipeline,
        params: &[u32],
        inputs: &[&[u32]],
        first_index: u64,
        n: usize,
        out: &mut [u32],
        out_ratio: usize,
        group_elems: u32,
    ) -> Result<ShareStats> {
        if n == 0 {
            return Ok(ShareStats::default());
        }
        if inputs.len() != p.inputs || inputs.iter().any(|x| x.len() != n) {
            return Err(Error::WrongArity {
                expected: p.inputs,
                given: inputs.len(),
            });
        }
        let (chunk, ring, link) = self.plan(n);
        // a chunk's outputs start where its inputs do, divided by the ratio
        let chunk = (chunk / out_ratio).max(1) * out_ratio;
        let timed = self.timed(chunk, link.as_ref());
        let st: Streamed = self.with_ctx(timed, |ctx| {
            ctx.stream(Job {
                inputs,
                out: Some(out),
                compute: Some(Compute {
                    pipeline: &p.pipeline,
                    layout: &p.layout,
                    max_groups: self.max_groups,
                    first_index,
                    group_elems,
                    out_ratio,
                    uniform_bytes: p.uniform_bytes,
                    params,
                }),
                len: n,
                chunk,
                ring,
                link,
            })
        })?;
        let t = st.transfer;
        Ok(ShareStats {
            bytes_to_device: t.bytes_up,
            bytes_from_device: t.bytes_down,
            upload_s: t.measured_up_s(),
            compute_s: st.compute_s,
            download_s: t.measured_down_s(),
            chunks: t.chunks,
            transfer: t,
        })
    }
}

impl GpuDevice {
    /// The largest resident part: what one storage binding may hold, in whole
    /// workgroups a 2D grid covers.
    fn max_part(&self) -> usize {
        (self.max_chunk_bytes / 4) as usize
    }

    fn data(&self, buffer: wgpu::Buffer, len: usize) -> GpuData {
        GpuData {
            buffer: Some(buffer),
            len,
            owner: self.id,
            name: self.info.name.clone(),
            device: self.device.clone(),
            queue: self.queue.clone(),
            pool: self.pool.clone(),
            lost: self.lost.clone(),
        }
    }

    /// This device's own buffer behind `r`, or an error naming the device it is on.
    fn own<'a>(&self, r: &'a dyn Resident) -> Result<&'a GpuData> {
        match r.as_any().downcast_ref::<GpuData>() {
            Some(d) if d.owner == self.id => Ok(d),
            _ => Err(self.failed(
                "resident",
                format!("the data is on {}, not on this device", r.owner_name()),
            )),
        }
    }

    /// Counts one resident run down the injected fault (as one chunk).
    fn spend_fault(&self) -> Result<()> {
        let left = self
            .fault
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                (v != 0 && v != u64::MAX).then(|| v - 1)
            });
        match left {
            Ok(_) | Err(u64::MAX) => Ok(()),
            Err(_) => Err(self.failed("compute", "injected fault (fail_gpu_after_chunks)")),
        }
    }

    /// Runs `p` over the elements of resident `inputs` (all of one length) into a new
    /// resident buffer of `out_len` elements; one workgroup covers `group_elems`
    /// elements.
    fn run_on(
        &self,
        p: &Pipeline,
        params: &[u32],
        inputs: &[&dyn Resident],
        first_index: u64,
        out_len: usize,
        group_elems: u32,
    ) -> Result<(GpuData, ShareStats, f64)> {
        let t = Instant::now();
        let len = inputs.first().map_or(0, |r| r.len());
        if let Some(e) = self.lost_error() {
            return Err(e);
        }
        if inputs.len() != p.inputs {
            return Err(Error::WrongArity {
                expected: p.inputs,
                given: inputs.len(),
            });
        }
        let ins: Vec<&GpuData> = inputs.iter().map(|r| self.own(*r)).collect::<Result<_>>()?;
        if let Some(d) = ins.iter().find(|d| d.len != len) {
            return Err(Error::LengthMismatch {
                left: len,
                right: d.len,
            });
        }
        if len > self.max_part() {
            return Err(Error::BufferTooLarge {
                requested: len as u64 * 4,
                max: self.max_chunk_bytes,
            });
        }
        self.spend_fault()?;
        let out = self
            .pool
            .take(&self.device, Kind::Input, (out_len as u64 * 4).max(4));
        let out = self.data(out, out_len);
        let uniform = self.pool.take(&self.device, Kind::Params, p.uniform_bytes);
        self.scoped("compute", || {
            let (gx, gy, row) = grid(len, self.max_groups, group_elems);
            // the global index wraps at 2^32, as `index()` promises
            let block: [u32; 4] = [first_index as u32, len as u32, row, 0];
            self.queue
                .write_buffer(&uniform, 0, bytemuck::cast_slice(&block));
            if !params.is_empty() {
                self.queue
                    .write_buffer(&uniform, PARAMS_BYTES, bytemuck::cast_slice(params));
            }
            let mut entries = Vec::with_capacity(ins.len() + 2);
            for (k, d) in ins.iter().enumerate() {
                entries.push(wgpu::BindGroupEntry {
                    binding: k as u32,
                    resource: d.binding()?,
                });
            }
            entries.push(wgpu::BindGroupEntry {
                binding: ins.len() as u32,
                resource: out.binding()?,
            });
            entries.push(wgpu::BindGroupEntry {
                binding: ins.len() as u32 + 1,
                resource: uniform.as_entire_binding(),
            });
            let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("hybrid resident"),
                layout: &p.layout,
                entries: &entries,
            });
            let mut enc = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("hybrid resident"),
                });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("hybrid resident"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(&p.pipeline);
                pass.set_bind_group(0, &group, &[]);
                pass.dispatch_workgroups(gx, gy, 1);
            }
            self.queue.submit([enc.finish()]);
            Ok(())
        })?;
        let waited = self.wait("compute");
        self.pool.give(Kind::Params, uniform);
        waited?;
        let secs = t.elapsed().as_secs_f64();
        let stats = ShareStats {
            compute_s: secs,
            chunks: 1,
            ..ShareStats::default()
        };
        Ok((out, stats, secs))
    }
}

/// A one-chunk, one-slot job with no kernel (for calibration).
fn one_chunk<'a, 'b>(inputs: &'a [&'a [u32]], out: Option<&'b mut [u32]>, n: usize) -> Job<'a, 'b> {
    Job {
        inputs,
        out,
        compute: None,
        len: n,
        chunk: n,
        ring: 1,
        link: None,
    }
}

/// Elements per chunk for buffers of at most `per_buffer` bytes: a multiple of the
/// workgroup size that a 2D grid of `max_groups`² workgroups covers.
fn chunk_elements(per_buffer: u64, max_groups: u32) -> usize {
    let wg = WORKGROUP_SIZE as u64;
    let by_grid = max_groups as u64 * max_groups as u64 * wg;
    let by_index = 1u64 << 31;
    let n = (per_buffer / 4).min(by_grid).min(by_index);
    (n / wg * wg) as usize
}

impl Device for GpuDevice {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn link(&self) -> Option<Link> {
        self.calibration().map(|c| c.link)
    }

    fn calibration(&self) -> Option<Calibration> {
        GpuDevice::calibration(self).cloned()
    }

    fn configure_transfer(&self, cfg: &TransferConfig) {
        self.configure(cfg);
    }

    fn inject_fault(&self, after_chunks: u64) {
        self.fault.store(after_chunks, Ordering::Relaxed);
    }

    fn resources(&self) -> crate::runtime::DeviceResources {
        let pipelines = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len();
        crate::runtime::DeviceResources {
            pool_allocations: self.pool.allocations(),
            pipelines,
            pipeline_capacity: CACHE_CAPACITY,
        }
    }

    fn transfer(
        &self,
        src: Option<&[u32]>,
        dst: Option<&mut [u32]>,
    ) -> Option<Result<TransferStats>> {
        Some(self.move_data(src, dst))
    }

    fn run(
        &self,
        kernel: &KernelInner,
        inputs: &[&[u32]],
        first_index: u64,
        out: &mut [u32],
    ) -> Result<ShareStats> {
        if out.is_empty() {
            return Ok(ShareStats::default());
        }
        let shader = kernel.shader()?;
        let pipeline = self.pipeline(&shader)?;
        self.dispatch(&pipeline, &kernel.values(), inputs, first_index, out)
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn max_resident(&self) -> usize {
        self.max_part()
    }

    fn upload(&self, data: &[u32]) -> Result<(Arc<dyn Resident>, ShareStats)> {
        let t = Instant::now();
        if let Some(e) = self.lost_error() {
            return Err(e);
        }
        if data.len() > self.max_part() {
            return Err(Error::BufferTooLarge {
                requested: data.len() as u64 * 4,
                max: self.max_chunk_bytes,
            });
        }
        let bytes = data.len() as u64 * 4;
        let buffer = self.scoped("upload", || {
            let b = self.pool.take(&self.device, Kind::Input, bytes.max(4));
            // wgpu stages the copy itself; the resident path moves whole parts, where
            // the streaming path's ring would only add copies
            self.queue.write_buffer(&b, 0, bytemuck::cast_slice(data));
            self.queue.submit([]);
            Ok(b)
        })?;
        let d = self.data(buffer, data.len());
        self.wait("upload")?;
        let secs = t.elapsed().as_secs_f64();
        Ok((
            Arc::new(d),
            ShareStats {
                bytes_to_device: bytes,
                upload_s: secs,
                chunks: 1,
                ..ShareStats::default()
            },
        ))
    }

    fn run_resident(
        &self,
        kernel: &KernelInner,
        inputs: &[&dyn Resident],
        first_index: u64,
    ) -> Result<(Arc<dyn Resident>, ShareStats, f64)> {
        let len = inputs.first().map_or(0, |r| r.len());
        let shader = kernel.shader()?;
        let pipeline = self.pipeline(&shader)?;
        let (out, stats, secs) = self.run_on(
            &pipeline,
            &kernel.values(),
            inputs,
            first_index,
            len,
            WORKGROUP_SIZE,
        )?;
        Ok((Arc::new(out), stats, secs))
    }

    fn reduce_resident(
        &self,
        kernel: &KernelInner,
        op: Reduce,
        inputs: &[&dyn Resident],
        first_index: u64,
    ) -> Result<(Partial, ShareStats, f64)> {
        let t = Instant::now();
        let ty = kernel.output_type()?;
        let len = inputs.first().map_or(0, |r| r.len());
        if len == 0 {
            return Ok((op.identity(ty), ShareStats::default(), 0.0));
        }
        let shader = kernel.reduce_shader(op)?;
        let pipeline = self.pipeline(&shader)?;
        let groups = len.div_ceil(REDUCE_PER_GROUP as usize);
        let (partials, mut stats, _) = self.run_on(
            &pipeline,
            &kernel.values(),
            inputs,
            first_index,
            groups,
            REDUCE_PER_GROUP,
        )?;
        // one value per workgroup comes back: the data itself stays
        let mut bits = vec![0u32; groups];
        let down = partials.download(&mut bits)?;
        stats.bytes_from_device = down.bytes_from_device;
        stats.download_s = down.download_s;
        let part = bits.iter().fold(op.identity(ty), |acc, &b| {
            acc.combine(Partial::of_value(op, ty, b), op, ty)
        });
        Ok((part, stats, t.elapsed().as_secs_f64()))
    }

    fn compilations(&self) -> u64 {
        self.compilations.load(Ordering::Relaxed)
    }

    fn reduce(
        &self,
        kernel: &KernelInner,
        op: Reduce,
        inputs: &[&[u32]],
        first_index: u64,
        len: usize,
    ) -> Result<(Partial, ShareStats)> {
        let ty = kernel.output_type()?;
        if len == 0 {
            return Ok((op.identity(ty), ShareStats::default()));
        }
        let shader = kernel.reduce_shader(op)?;
        let pipeline = self.pipeline(&shader)?;
        let ratio = REDUCE_PER_GROUP as usize;
        let mut partials = vec![0u32; len.div_ceil(ratio)];
        let stats = self.launch(
            &pipeline,
            &kernel.values(),
            inputs,
            first_index,
            len,
            &mut partials,
            ratio,
            REDUCE_PER_GROUP,
        )?;
        let part = partials.iter().fold(op.identity(ty), |acc, &b| {
            acc.combine(Partial::of_value(op, ty, b), op, ty)
        });
        Ok((part, stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{index, Expr, Kernel};

    /// The first GPU, or `None` (after saying why) when the test must skip.
    fn device() -> Option<GpuDevice> {
        let var = |k: &str| {
            std::env::var(k)
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        };
        if var("HYBRID_BACKEND") == "cpu" {
            eprintln!("skipped: HYBRID_BACKEND=cpu");
            return None;
        }
        match discover() {
            Ok(mut d) if !d.is_empty() => Some(d.swap_remove(0)),
            Ok(_) | Err(_) if var("HYBRID_REQUIRE_GPU") == "1" => {
                panic!("HYBRID_REQUIRE_GPU=1 but no gpu: {:?}", discover().err())
            }
            other => {
                eprintln!("skipped: no gpu: {:?}", other.err());
                None
            }
        }
    }

    #[test]
    fn grid_and_chunks() {
        assert_eq!(chunk_elements(128 << 20, 65_535), 32 << 20);
        assert_eq!(chunk_elements(1000, 65_535), 0);
        assert_eq!(chunk_elements(u64::MAX, 65_535), 1 << 31);
        assert_eq!(chunk_elements(u64::MAX, 2) % 256, 0);
    }

    #[test]
    fn rejected_shader_names_message_and_line() {
        let Some(d) = device() else { return };
        let src = "@group(0) @binding(0) var<storage, read_write> out: array<u32>;\n\
                   @compute @workgroup_size(256)\n\
                   fn main(@builtin(global_invocation_id) gid: vec3<u32>) {\n\
                   \x20   out[gid.x] = undefined_thing + 1u;\n\
                   }\n";
        let shader = Shader::from_source(src.into(), 0);
        match d.pipeline(&shader) {
            Err(Error::ShaderRejected {
                message,
                line,
                source_line,
                ..
            }) => {
                assert!(message.contains("undefined_thing"), "{message}");
                assert_eq!(line, 4, "{message}");
                assert!(source_line.contains("undefined_thing"), "{source_line}");
            }
            Err(e) => panic!("expected ShaderRejected, got {e}"),
            Ok(_) => panic!("an invalid shader was accepted"),
        }
        // The device still works afterwards.
        let k = Kernel::map(|x: Expr<u32>| x + 1u32);
        let mut out = [0u32; 3];
        let stats = d.run(k.inner(), &[&[1, 2, 3]], 0, &mut out);
        assert!(stats.is_ok(), "{stats:?}");
        assert_eq!(out, [2, 3, 4]);
    }

    #[test]
    fn many_chunks_equal_one() {
        let Some(d) = device() else { return };
        d.configure(&TransferConfig {
            chunk_bytes: Some(512 * 4),
            ring: Some(2),
            ..Default::default()
        });
        let k = Kernel::map2(|a: Expr<u32>, b: Expr<u32>| (a * 7u32) ^ b ^ index());
        let n = 512 * 5 + 3;
        let a: Vec<u32> = (0..n as u32).map(|i| i.wrapping_mul(0x9e37_79b9)).collect();
        let b: Vec<u32> = (0..n as u32).rev().collect();
        // Start near the top of the u32 range: the global index wraps.
        let first = u32::MAX as u64 - 1000;
        let mut out = vec![0u32; n];
        let stats = d
            .run(k.inner(), &[&a, &b], first, &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stats.chunks, 6);
        assert_eq!(stats.bytes_to_device, 8 * n as u64);
        assert_eq!(stats.bytes_from_device, 4 * n as u64);
        for i in 0..n {
            let idx = (first + i as u64) as u32;
            assert_eq!(out[i], a[i].wrapping_mul(7) ^ b[i] ^ idx, "element {i}");
        }
    }

    #[test]
    fn pool_reuses_buffers_across_calls_and_kernels() {
        let Some(d) = device() else { return };
        d.configure(&TransferConfig {
            chunk_bytes: Some(4096),
            ring: Some(3),
            ..Default::default()
        });
        let n = 1024 * 7 + 5;
        let xs: Vec<u32> = (0..n as u32).collect();
        let k1 = Kernel::map(|x: Expr<u32>| x + 1u32);
        let k2 = Kernel::map(|x: Expr<u32>| x * 3u32);
        let mut out = vec![0u32; n];
        let first = d.run(k1.inner(), &[&xs], 0, &mut out);
        let first = first.unwrap_or_else(|e| panic!("{e}"));
        assert!(first.transfer.allocations > 0);
        assert_eq!(first.chunks, 8);
        let warm = d.pool_allocations();
        for k in [&k1, &k2, &k1] {
            let s = d.run(k.inner(), &[&xs], 0, &mut out);
            let s = s.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s.transfer.allocations, 0, "no allocation once warm");
        }
        assert_eq!(out[n - 1], n as u32);
        assert_eq!(d.pool_allocations(), warm);
        // The pool is bounded: shrinking the bound releases idle buffers.
        assert!(d.pool.idle_bytes() > 0);
        d.pool.set_max_idle_bytes(0);
        assert_eq!(d.pool.idle_bytes(), 0);
    }

    #[test]
    fn pipeline_cache_is_bounded_and_reuses() {
        let Some(d) = device() else { return };
        let k = Kernel::map(|x: Expr<f32>| x * 2.0);
        let s = k.inner().shader().unwrap_or_else(|e| panic!("{e}"));
        let p1 = d.pipeline(&s).unwrap_or_else(|e| panic!("{e}"));
        let p2 = d.pipeline(&s).unwrap_or_else(|e| panic!("{e}"));
        assert!(Arc::ptr_eq(&p1, &p2), "a kernel compiles once per device");
        for c in 0..(CACHE_CAPACITY as u32 + 5) {
            let k = Kernel::map(move |x: Expr<u32>| x + c);
            let s = k.inner().shader().unwrap_or_else(|e| panic!("{e}"));
            assert!(d.pipeline(&s).is_ok());
        }
        let cache = d.cache.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(cache.map.len(), CACHE_CAPACITY);
        assert!(
            !cache.map.contains_key(&s.hash),
            "the least recently used went first"
        );
    }
}
