//! The wgpu device: one per adapter, with a pipeline cache; its data moves through the
//! transfer layer (`src/transfer/`): pooled staging, chunks pipelined through a ring,
//! a link model calibrated on first need and stored on disk.
//!
//! Every driver complaint becomes an [`Error`] for the call (error scopes, a device-lost
//! callback), and nothing panics. This file holds the device itself, what every part
//! of it shares (configuration, error scopes, the lost flag) and the scheduler's view
//! of it, [`Device`]; `README.md` beside it says how a call flows through the others.

mod discover;
mod launch;
mod pipelines;
mod probe;
mod resident;
mod tables;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use pollster::block_on;

use super::{
    Device, DeviceInfo, DeviceResources, Hooks, HostLink, HostTask, Memory, Resident, ResidentTask,
    ShareStats, Timed,
};
use crate::error::{Error, Result};
use crate::kernel::reduce::{Partial, Reduce};
use crate::kernel::ScalarType;
use crate::transfer::calibrate::Calibration;
use crate::transfer::staging::{Ctx, Pool, DEFAULT_IDLE_BYTES};
use crate::transfer::{Link, TransferConfig, TransferStats};

pub(crate) use discover::discover;
use pipelines::{PipelineCache, CACHE_CAPACITY};

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
    /// The current call's whole-array inputs (see `tables.rs`).
    tables: Mutex<crate::device::HeldTables<wgpu::Buffer>>,
    /// Storage buffers one kernel may bind (inputs, tables and the output).
    max_storage_bindings: u32,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<GpuDevice>();
};

/// The next GPU device's [`GpuDevice::id`].
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl GpuDevice {
    /// The device for `adapter`, or why it cannot be one.
    fn new(adapter: &wgpu::Adapter) -> std::result::Result<GpuDevice, String> {
        let info = discover::describe(&adapter.get_info(), adapter.features());
        let opened = discover::open(adapter, &info)?;
        Ok(GpuDevice {
            info,
            device: opened.device,
            queue: opened.queue,
            max_chunk_bytes: opened.max_chunk_bytes,
            max_groups: opened.max_groups,
            cache: Mutex::default(),
            compilations: AtomicU64::new(0),
            lost: opened.lost,
            pool: Arc::new(Pool::new(DEFAULT_IDLE_BYTES)),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            config: Mutex::new(TransferConfig::from_env()),
            timestamp_period: opened.timestamp_period,
            calibration: OnceLock::new(),
            stamp_cost: OnceLock::new(),
            fault: AtomicU64::new(u64::MAX),
            tables: Mutex::default(),
            max_storage_bindings: opened.max_storage_bindings,
        })
    }

    /// Replaces the transfer configuration (unset fields keep the environment's).
    pub(crate) fn configure(&self, cfg: &TransferConfig) {
        let merged = cfg.or(&TransferConfig::from_env());
        if let Some(b) = merged.pool_idle_bytes {
            self.pool.set_max_idle_bytes(b);
        }
        *lock(&self.config) = merged;
    }

    fn config(&self) -> TransferConfig {
        lock(&self.config).clone()
    }

    /// Buffers the pool has allocated since the device was made.
    #[cfg(test)]
    pub(crate) fn pool_allocations(&self) -> u64 {
        self.pool.allocations()
    }

    /// The transfer context for this device; `timed` asks for device timestamps.
    fn with_ctx<T>(&self, timed: bool, f: impl FnOnce(&Ctx) -> Result<T>) -> Result<T> {
        self.alive()?;
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

    /// The error for a failure at `stage`: `DeviceLost` once the device is lost.
    fn failed(&self, stage: &'static str, reason: impl ToString) -> Error {
        failure(&self.info.name, &self.lost, stage, reason)
    }

    /// `Err(DeviceLost)` once the device-lost callback has fired.
    fn alive(&self) -> Result<()> {
        alive(&self.info.name, &self.lost)
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
        self.alive()
    }
}

use crate::sync::lock;

/// `Err(DeviceLost)` for device `name` once its device-lost callback has filled `lost`.
fn alive(name: &str, lost: &Mutex<Option<String>>) -> Result<()> {
    match lock(lost).as_ref() {
        Some(reason) => Err(Error::DeviceLost {
            device: name.to_string(),
            reason: reason.clone(),
        }),
        None => Ok(()),
    }
}

/// The error for a failure of device `name` at `stage`: `DeviceLost` once the device
/// is lost (whatever failed then is a symptom), else `DeviceFailed` with `reason`.
fn failure(
    name: &str,
    lost: &Mutex<Option<String>>,
    stage: &'static str,
    reason: impl ToString,
) -> Error {
    match alive(name, lost) {
        Err(e) => e,
        Ok(()) => Error::DeviceFailed {
            device: name.to_string(),
            stage,
            reason: reason.to_string(),
        },
    }
}

/// Combines a reduction's per-workgroup results (bit patterns of type `ty`) in order,
/// as the streamed and resident reductions both read them back.
fn fold_partials(op: Reduce, ty: ScalarType, bits: &[u32], words: usize) -> Partial {
    let word = |w: &[u32], k: usize| w[k] as u64 | (w[k + 1] as u64) << 32;
    bits.chunks_exact(words.max(1))
        .fold(op.identity(ty), |acc, w| {
            let p = match w.len() {
                4 => Partial::Comp(f64::from_bits(word(w, 0)), f64::from_bits(word(w, 2))),
                2 => Partial::of_value(op, ty, word(w, 0)),
                _ => Partial::of_value(op, ty, w[0] as u64),
            };
            acc.combine(p, op, ty)
        })
}

impl Device for GpuDevice {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn run(&self, task: &HostTask<'_>, out: &mut [u32]) -> Result<Timed> {
        Timed::wall(|| {
            self.map_streamed(task.kernel, task.inputs, task.tables, task.first_index, out)
        })
    }

    fn reduce(&self, task: &HostTask<'_>, op: Reduce) -> Result<(Partial, Timed)> {
        let t = std::time::Instant::now();
        let (part, stats) = self.reduce_streamed(
            task.kernel,
            op,
            task.inputs,
            task.tables,
            task.first_index,
            task.len,
        )?;
        let secs = t.elapsed().as_secs_f64();
        Ok((part, Timed { stats, secs }))
    }

    fn computes(&self, kernel: &crate::kernel::Bound, _op: Option<Reduce>) -> Result<()> {
        super::computes_by_info(&self.info, kernel)?;
        if let Some(f) = kernel.program()?.wide_math() {
            return Err(Error::DeviceCannot {
                device: self.info.name.clone(),
                reason: format!(
                    "a GPU has no f64 {f} (SPIR-V's, Metal's and DX12's f64 math stops at \
                     sqrt, floor and the like)"
                ),
            });
        }
        Ok(())
    }

    fn accepts(
        &self,
        kernel: &crate::kernel::Bound,
        op: Option<Reduce>,
        table_bytes: u64,
    ) -> Result<()> {
        let shader = match op {
            None => kernel.shader()?,
            Some(op) => kernel.reduce_shader(op)?,
        };
        self.check_bindings(&shader)?;
        if table_bytes > self.max_chunk_bytes {
            return Err(Error::DeviceCannot {
                device: self.info.name.clone(),
                reason: format!(
                    "a table of {table_bytes} bytes exceeds its largest buffer ({} bytes)",
                    self.max_chunk_bytes
                ),
            });
        }
        Ok(())
    }

    fn memory(&self) -> Option<&dyn Memory> {
        Some(self)
    }

    fn host_link(&self) -> Option<&dyn HostLink> {
        Some(self)
    }

    fn hooks(&self) -> Option<&dyn Hooks> {
        Some(self)
    }
}

impl Memory for GpuDevice {
    fn id(&self) -> u64 {
        self.id
    }

    fn max_resident(&self) -> usize {
        self.max_part()
    }

    fn upload(&self, data: &[u32]) -> Result<(Arc<dyn Resident>, ShareStats)> {
        self.upload_part(data)
    }

    fn run(&self, task: &ResidentTask<'_>) -> Result<(Vec<Arc<dyn Resident>>, Timed)> {
        self.map_parts(task)
    }

    fn reduce(&self, task: &ResidentTask<'_>, op: Reduce) -> Result<(Partial, Timed)> {
        let (part, stats, secs) = self.reduce_parts(task, op)?;
        Ok((part, Timed { stats, secs }))
    }

    fn gather(&self, parts: &[&dyn Resident]) -> Result<(Arc<dyn Resident>, ShareStats)> {
        self.gather_parts(parts)
    }
}

impl HostLink for GpuDevice {
    fn fitted(&self) -> Option<Link> {
        GpuDevice::calibration(self).map(|c| c.link)
    }

    fn calibration(&self) -> Option<Calibration> {
        GpuDevice::calibration(self).cloned()
    }

    fn configure(&self, cfg: &TransferConfig) {
        GpuDevice::configure(self, cfg);
    }

    fn transfer(
        &self,
        src: Option<&[u32]>,
        dst: Option<&mut [u32]>,
    ) -> Option<Result<TransferStats>> {
        Some(self.move_data(src, dst))
    }
}

impl Hooks for GpuDevice {
    fn inject_fault(&self, after_chunks: u64) {
        self.fault.store(after_chunks, Ordering::Relaxed);
    }

    fn resources(&self) -> DeviceResources {
        DeviceResources {
            pool_allocations: self.pool.allocations(),
            pipelines: self.pipelines_held(),
            pipeline_capacity: CACHE_CAPACITY,
        }
    }

    fn compilations(&self) -> u64 {
        self.compilations.load(Ordering::Relaxed)
    }
}
