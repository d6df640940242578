//! Devices: what the scheduler sees of a CPU pool, a GPU or a simulated device.
//!
//! One narrow interface per capability, and no wgpu type in any of them, so the
//! scheduler treats N unlike devices uniformly:
//!
//! - [`Device`]: compute a range ([`Task`] in, [`Timed`] stats out, a map's values
//!   written or a reduction's partial returned); every device has it;
//! - [`Memory`]: hold array parts between calls ([`Resident`]) and compute on them;
//! - [`HostLink`]: the link data crosses to reach the device (its fitted α, β; raw
//!   transfers for benchmarks);
//! - [`Hooks`]: counters and fault injection for tests.
//!
//! A device hands out the capabilities it has ([`Device::memory`],
//! [`Device::host_link`], [`Device::hooks`]); the CPU has none of them. A [`Task`]
//! names its inputs in one place, so inputs of other kinds (several outputs, whole
//! arrays read at any index) are new fields of it, not new trait methods.

pub(crate) mod cpu;
#[cfg(feature = "gpu")]
pub(crate) mod gpu;
pub(crate) mod sim;

use std::fmt;

use std::sync::Arc;

use crate::error::Result;
use crate::kernel::reduce::{Partial, Reduce};
use crate::kernel::{Bound, ScalarType};
use crate::transfer::{Calibration, Link, TransferConfig, TransferStats};

/// What kind of device this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeviceKind {
    /// The host's CPU cores (rayon).
    Cpu,
    /// A discrete GPU, behind a PCI bus.
    DiscreteGpu,
    /// A GPU sharing the host's memory.
    IntegratedGpu,
    /// A GPU implemented in software on the CPU (e.g. Mesa's lavapipe).
    SoftwareGpu,
    /// A virtualised GPU, or one of unknown kind.
    OtherGpu,
}

impl DeviceKind {
    /// Whether the device is a GPU of any kind.
    pub fn is_gpu(self) -> bool {
        !matches!(self, DeviceKind::Cpu)
    }

    /// A short lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::DiscreteGpu => "discrete gpu",
            DeviceKind::IntegratedGpu => "integrated gpu",
            DeviceKind::SoftwareGpu => "software gpu",
            DeviceKind::OtherGpu => "gpu",
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Who a device is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Human-readable name (the adapter's name, or "cpu (N threads)").
    pub name: String,
    /// The API it is driven through: "rayon", "vulkan", "metal", "dx12", "gl".
    pub backend: String,
    /// Discrete, integrated, software, CPU.
    pub kind: DeviceKind,
    /// Driver name and version, empty when unknown.
    pub driver: String,
    /// The scalar types kernels may compute in on the device: `f32`, `i32`, `u32` and
    /// `bool` everywhere; `f64` on the CPU and on a GPU with wgpu's `SHADER_F64`, `i64`
    /// and `u64` on the CPU and on a GPU with `SHADER_INT64`. A
    /// kernel that computes in a type its device lacks is not run there (`Auto` and
    /// `Split` leave the device out, and the report says why).
    pub types: Vec<ScalarType>,
}

impl DeviceInfo {
    /// The types every device has.
    pub(crate) const BASE_TYPES: [ScalarType; 4] = [
        ScalarType::F32,
        ScalarType::I32,
        ScalarType::U32,
        ScalarType::Bool,
    ];

    /// The base types and the 64-bit ones (`f64`, `i64`, `u64`).
    pub(crate) fn all_types() -> Vec<ScalarType> {
        let mut t = Self::BASE_TYPES.to_vec();
        t.extend([ScalarType::F64, ScalarType::I64, ScalarType::U64]);
        t
    }

    /// The first type `kernel` computes in that the device lacks, with the wgpu
    /// feature that would give it.
    pub(crate) fn lacks(&self, kernel: &Bound) -> Option<(ScalarType, &'static str)> {
        let p = kernel.program().ok()?;
        let t = p.regs.iter().find(|t| !self.types.contains(t))?;
        Some((
            *t,
            if *t == ScalarType::F64 {
                "SHADER_F64"
            } else {
                "SHADER_INT64"
            },
        ))
    }
}

impl fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {})", self.name, self.kind, self.backend)?;
        if !self.driver.is_empty() {
            write!(f, ", driver {}", self.driver)?;
        }
        Ok(())
    }
}

/// What one device did for one call: bytes moved and seconds per stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ShareStats {
    pub(crate) bytes_to_device: u64,
    pub(crate) bytes_from_device: u64,
    pub(crate) upload_s: f64,
    pub(crate) compute_s: f64,
    pub(crate) download_s: f64,
    /// Number of chunks the share was cut into.
    pub(crate) chunks: u32,
    /// Bytes of each whole-array input (table) sent to the device, by table index
    /// (a table already there, or sent earlier in the call, counts nothing).
    pub(crate) table_bytes: [u64; MAX_TABLES],
    /// Seconds spent sending tables (included in `upload_s`).
    pub(crate) table_s: f64,
    /// The transfer layer's detail (all zero for a device with no link).
    pub(crate) transfer: TransferStats,
}

impl ShareStats {
    /// Adds another run's figures into these (a device that took several pieces).
    pub(crate) fn add(&mut self, b: &ShareStats) {
        self.bytes_to_device += b.bytes_to_device;
        self.bytes_from_device += b.bytes_from_device;
        self.upload_s += b.upload_s;
        self.compute_s += b.compute_s;
        self.download_s += b.download_s;
        self.chunks += b.chunks;
        for (a, b) in self.table_bytes.iter_mut().zip(&b.table_bytes) {
            *a += b;
        }
        self.table_s += b.table_s;
        self.transfer.absorb(&b.transfer);
    }
}

/// What one device keeps between calls, for tests that memory stays bounded under
/// repeated calls. Not part of the API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceResources {
    /// Buffers the device's transfer pool has allocated since it was made (a warm pool
    /// reuses its buffers, so this stops growing).
    pub pool_allocations: u64,
    /// Compiled kernels in the device's pipeline cache.
    pub pipelines: usize,
    /// The most compiled kernels the cache keeps (0: the device keeps none).
    pub pipeline_capacity: usize,
}

/// The most whole-array inputs one kernel may read.
pub(crate) const MAX_TABLES: usize = 12;

/// A whole-array input as one task receives it: the part of the table the task's
/// reads can reach (all of it, or its range plus a halo), on the host or, for a
/// table that is an [`crate::Array`], already in the device's memory.
#[derive(Clone, Copy)]
pub(crate) struct TableArg<'a> {
    /// The table's elements `start..start + elements()`, `words` each (empty when
    /// `held`).
    pub(crate) data: &'a [u32],
    /// The elements `start..start + held.len()` in the memory of the device the task
    /// runs on: bound where they are, nothing sent.
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    pub(crate) held: Option<&'a dyn Resident>,
    pub(crate) start: usize,
    /// The whole table's length.
    pub(crate) len: usize,
    /// The call this table belongs to (unique in the process) and its index among the
    /// kernel's tables: a device keeps what it was sent for the rest of the call, so a
    /// share cut into several runs sends a table once.
    pub(crate) call: u64,
    pub(crate) index: usize,
    /// Words per element: 1, or 2 for a 64-bit type (low word first).
    pub(crate) words: usize,
}

impl TableArg<'_> {
    /// The elements `data` holds.
    pub(crate) fn elements(&self) -> usize {
        self.data.len() / self.words.max(1)
    }
}

/// The table windows a device holds for the rest of one call: a share cut into
/// several runs sends each table once. At most one call's windows are held: a run of
/// another call replaces them. `B` is what holds a window (a GPU's buffer; nothing for
/// a simulated device, which only counts).
pub(crate) struct HeldTables<B> {
    held: Vec<HeldWindow<B>>,
}

struct HeldWindow<B> {
    call: u64,
    index: usize,
    /// Global indices of the elements held.
    start: usize,
    end: usize,
    value: B,
}

impl<B> Default for HeldTables<B> {
    fn default() -> Self {
        HeldTables { held: Vec::new() }
    }
}

impl<B> HeldTables<B> {
    /// Forgets every window of a call other than `call`.
    pub(crate) fn begin(&mut self, call: u64) {
        self.held.retain(|h| h.call == call);
    }

    /// The window holding `t`'s elements, and where it starts and ends: one already
    /// held that covers them, or `send()`'s (kept, in place of the table's earlier
    /// window); whether it was sent.
    pub(crate) fn hold(
        &mut self,
        t: &TableArg<'_>,
        send: impl FnOnce() -> Result<B>,
    ) -> Result<(&B, usize, usize, bool)> {
        let end = t.start + t.elements();
        let have = self
            .held
            .iter()
            .position(|h| h.index == t.index && h.start <= t.start && end <= h.end);
        let (i, sent) = match have {
            Some(i) => (i, false),
            None => {
                let value = send()?;
                self.held.retain(|h| h.index != t.index);
                self.held.push(HeldWindow {
                    call: t.call,
                    index: t.index,
                    start: t.start,
                    end,
                    value,
                });
                (self.held.len() - 1, true)
            }
        };
        let h = &self.held[i];
        Ok((&h.value, h.start, h.end, sent))
    }
}

/// The element-wise inputs' words for elements `range`, each input `words[k]` words
/// per element (1 when not given).
pub(crate) fn slice_inputs<'a>(
    inputs: &[&'a [u32]],
    words: &[usize],
    range: std::ops::Range<usize>,
) -> Vec<&'a [u32]> {
    inputs
        .iter()
        .enumerate()
        .map(|(k, x)| {
            let w = words.get(k).copied().unwrap_or(1);
            &x[range.start * w..range.end * w]
        })
        .collect()
}

/// What every device's [`Device::computes`] checks from its [`DeviceInfo`]: the types
/// the kernel computes in, and for a GPU's 64-bit inputs or results, `u64` (a shader
/// puts a 64-bit element together from its two words, and takes one apart, through
/// `u64`: naga has no bitcast between a 64-bit type and `vec2<u32>`).
pub(crate) fn computes_by_info(info: &DeviceInfo, kernel: &Bound) -> Result<()> {
    let cannot = |reason: String| crate::error::Error::DeviceCannot {
        device: info.name.clone(),
        reason,
    };
    if kernel.wide_io() && info.kind.is_gpu() && !info.types.contains(&ScalarType::U64) {
        return Err(cannot(
            "its 64-bit inputs and results travel as u64 in a shader, and the adapter \
             lacks wgpu's SHADER_INT64 feature"
                .into(),
        ));
    }
    match info.lacks(kernel) {
        Some((t, feature)) => Err(cannot(format!(
            "it computes in no {t} (the adapter lacks wgpu's {feature} feature)"
        ))),
        None => Ok(()),
    }
}

/// One range of one call, as a device receives it.
#[derive(Clone, Copy)]
pub(crate) struct Task<'a, I> {
    /// The kernel, bound to this call's parameter values.
    pub(crate) kernel: &'a Bound,
    /// The element-wise inputs, each covering the range: host slices of 32-bit
    /// patterns, or resident parts on the device.
    pub(crate) inputs: &'a [I],
    /// The whole-array inputs, in the kernel's order (none for most kernels).
    pub(crate) tables: &'a [TableArg<'a>],
    /// The global index of the range's first element.
    pub(crate) first_index: u64,
    /// Elements in the range.
    pub(crate) len: usize,
}

/// A range of host data.
pub(crate) type HostTask<'a> = Task<'a, &'a [u32]>;
/// A range of resident parts.
pub(crate) type ResidentTask<'a> = Task<'a, &'a dyn Resident>;

impl<'a, I> Task<'a, I> {
    pub(crate) fn new(kernel: &'a Bound, inputs: &'a [I], first_index: u64, len: usize) -> Self {
        Task {
            kernel,
            inputs,
            tables: &[],
            first_index,
            len,
        }
    }

    /// The task with whole-array inputs.
    pub(crate) fn with_tables(self, tables: &'a [TableArg<'a>]) -> Self {
        Task { tables, ..self }
    }
}

/// What a run did, and how long it took: wall seconds, or virtual ones on a
/// simulated device.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Timed {
    pub(crate) stats: ShareStats,
    pub(crate) secs: f64,
}

impl Timed {
    /// Runs `f` and times it on the wall clock.
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    pub(crate) fn wall(f: impl FnOnce() -> Result<ShareStats>) -> Result<Timed> {
        let t = std::time::Instant::now();
        let stats = f()?;
        Ok(Timed {
            stats,
            secs: t.elapsed().as_secs_f64(),
        })
    }
}

/// Elements a device keeps between calls: one part of an [`crate::Array`], held in
/// the device's memory. Dropping it gives the memory back to the device's pool.
pub(crate) trait Resident: Send + Sync {
    /// Number of elements (32-bit patterns).
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    fn len(&self) -> usize;
    /// The [`Memory::id`] of the device that holds it.
    fn owner(&self) -> u64;
    /// The name of that device, for reports.
    fn owner_name(&self) -> &str;
    /// Copies the elements to the host.
    fn download(&self, out: &mut [u32]) -> Result<ShareStats>;
    /// For the device that made it, to reach its own buffer.
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    fn as_any(&self) -> &dyn std::any::Any;
}

/// A device the scheduler can hand a range of elements to.
pub(crate) trait Device: Send + Sync {
    /// Who the device is.
    fn info(&self) -> &DeviceInfo;

    /// Whether the device's times are virtual (a [`sim::SimDevice`]): its runs return
    /// at once and say how long they would have taken.
    fn is_virtual(&self) -> bool {
        false
    }

    /// Computes the task's kernel for its `len` elements: `task.inputs[k][i]` is input
    /// `k` of element `i`, and result `k` of element `i` goes to `out[i * m + k]` for a
    /// kernel with `m` results (`out` has `len * m` words). On error, `out` may be
    /// partly written and must not be used.
    fn run(&self, task: &HostTask<'_>, out: &mut [u32]) -> Result<Timed>;

    /// Applies the task's kernel to its elements and combines the values with `op`,
    /// returning the range's partial result; no mapped array is written.
    fn reduce(&self, task: &HostTask<'_>, op: Reduce) -> Result<(Partial, Timed)>;

    /// `Err` when the device cannot compute what `kernel` computes (a map, or a
    /// reduction with `op`): a type it lacks (`f64` without wgpu's `SHADER_F64`), an
    /// operation it has no instruction for.
    /// Unlike [`accepts`](Self::accepts), a split that names the device still runs, on
    /// the others: the kernel, not the call's size, is what the device cannot take.
    fn computes(&self, kernel: &Bound, _op: Option<Reduce>) -> Result<()> {
        computes_by_info(self.info(), kernel)
    }

    /// `Err` when the device cannot run `kernel` at all (a map, or a reduction with
    /// `op`) with tables of up to `table_bytes` each: more buffers than it can bind, a
    /// table larger than its buffers. Such a device is left out of the call.
    fn accepts(&self, _kernel: &Bound, _op: Option<Reduce>, _table_bytes: u64) -> Result<()> {
        Ok(())
    }

    /// The device's memory for array parts, when it keeps data between calls.
    fn memory(&self) -> Option<&dyn Memory> {
        None
    }

    /// The link data crosses to reach the device; `None` for the CPU, which works on
    /// host memory.
    fn host_link(&self) -> Option<&dyn HostLink> {
        None
    }

    /// Counters and fault injection, for tests; `None` for a device with nothing to
    /// count.
    fn hooks(&self) -> Option<&dyn Hooks> {
        None
    }
}

impl dyn Device + '_ {
    /// The device's fitted link, when it has one and it is known.
    pub(crate) fn link(&self) -> Option<Link> {
        self.host_link().and_then(HostLink::fitted)
    }
}

/// A device's memory: array parts kept between calls, and kernels run on them.
pub(crate) trait Memory: Send + Sync {
    /// An identity unique in the process, that [`Resident::owner`] names.
    fn id(&self) -> u64;

    /// The most elements one resident part may hold (a storage binding's limit).
    fn max_resident(&self) -> usize;

    /// Copies `data` into the device's memory, to stay there.
    fn upload(&self, data: &[u32]) -> Result<(Arc<dyn Resident>, ShareStats)>;

    /// [`Device::run`] on resident inputs (each `task.len` elements, all held by this
    /// device; tables on the host or held), the outputs staying resident: one part per
    /// result of the kernel, in order.
    fn run(&self, task: &ResidentTask<'_>) -> Result<(Vec<Arc<dyn Resident>>, Timed)>;

    /// [`Device::reduce`] on resident inputs.
    fn reduce(&self, task: &ResidentTask<'_>, op: Reduce) -> Result<(Partial, Timed)>;

    /// One resident part holding `parts` (all held by this device) end to end,
    /// copied within the device's memory: nothing crosses the link. How an array cut
    /// into several parts becomes one table.
    fn gather(&self, parts: &[&dyn Resident]) -> Result<(Arc<dyn Resident>, ShareStats)>;
}

/// The link between the host and a device's memory.
pub(crate) trait HostLink: Send + Sync {
    /// The fitted link (α, β each way), measured or loaded on first need; `None` when
    /// it could not be measured.
    fn fitted(&self) -> Option<Link>;

    /// The whole calibration (fitted link, dispatch overhead, samples), for a link
    /// that was measured; `None` for a modelled one.
    fn calibration(&self) -> Option<Calibration> {
        None
    }

    /// Sets how transfers are chunked and pipelined and where calibration is stored.
    fn configure(&self, _cfg: &TransferConfig) {}

    /// Moves data over the link with no kernel: `src` alone uploads, `dst` alone
    /// downloads, both make a round trip; `None` for a link that is only modelled.
    fn transfer(
        &self,
        _src: Option<&[u32]>,
        _dst: Option<&mut [u32]>,
    ) -> Option<Result<TransferStats>> {
        None
    }
}

/// Counters and fault injection, for tests.
pub(crate) trait Hooks: Send + Sync {
    /// After `after_chunks` more chunks, every chunk the device streams fails as a
    /// device fault.
    fn inject_fault(&self, after_chunks: u64);

    /// What the device keeps between calls (pooled buffers, compiled kernels).
    fn resources(&self) -> DeviceResources;

    /// Compute pipelines the device has compiled so far.
    fn compilations(&self) -> u64;
}
