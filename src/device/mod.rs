//! Devices: what the scheduler sees of a CPU pool or a GPU.
//!
//! The interface is deliberately narrow — who the device is ([`DeviceInfo`]) and "run
//! this kernel over this range" — and holds no wgpu types, so the scheduler treats N
//! unlike devices uniformly.

pub(crate) mod cpu;
#[cfg(feature = "gpu")]
pub(crate) mod gpu;
pub(crate) mod sim;

use std::fmt;

use crate::error::Result;
use crate::kernel::reduce::{Partial, Reduce};
use crate::kernel::KernelInner;

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
    /// The transfer layer's detail (all zero for a device with no link).
    pub(crate) transfer: crate::transfer::TransferStats,
}

/// Elements a device keeps between calls: one part of an [`crate::Array`], held in
/// the device's memory. Dropping it gives the memory back to the device's pool.
pub(crate) trait Resident: Send + Sync {
    /// Number of elements (32-bit patterns).
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    fn len(&self) -> usize;
    /// The [`Device::id`] of the device that holds it.
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

    /// The device's link to the host, when data must cross one (a GPU); `None` for
    /// the CPU, which works on host memory.
    fn link(&self) -> Option<crate::transfer::Link> {
        None
    }

    /// The device's link calibration (fitted link, dispatch overhead, samples), when
    /// it has a link; measured or loaded on first need.
    fn calibration(&self) -> Option<crate::transfer::Calibration> {
        None
    }

    /// Sets how transfers are chunked and pipelined and where calibration is stored;
    /// ignored by a device with no transfer layer.
    fn configure_transfer(&self, _cfg: &crate::transfer::TransferConfig) {}

    /// Fault injection for tests: after `after_chunks` more chunks, every chunk the
    /// device streams fails as a device fault. Ignored by devices with no chunks.
    fn inject_fault(&self, _after_chunks: u64) {}

    /// Moves data over the device's link with no kernel: `src` alone uploads, `dst`
    /// alone downloads, both make a round trip. `None` for a device with no link.
    fn transfer(
        &self,
        _src: Option<&[u32]>,
        _dst: Option<&mut [u32]>,
    ) -> Option<Result<crate::transfer::TransferStats>> {
        None
    }

    /// Computes `kernel` for `out.len()` elements: `inputs[k][i]` is input `k` of element
    /// `i` (each as a 32-bit pattern), `first_index` is the global index of element 0,
    /// and the result of element `i` goes to `out[i]`. Every slice has `out.len()`
    /// elements. On error, `out` may be partly written and must not be used.
    fn run(
        &self,
        kernel: &KernelInner,
        inputs: &[&[u32]],
        first_index: u64,
        out: &mut [u32],
    ) -> Result<ShareStats>;

    /// Applies `kernel` to the `len` elements of `inputs` (as [`run`](Self::run) does,
    /// `first_index` being the global index of element 0) and combines the values with
    /// `op`, returning the range's partial result; no mapped array is written.
    fn reduce(
        &self,
        kernel: &KernelInner,
        op: Reduce,
        inputs: &[&[u32]],
        first_index: u64,
        len: usize,
    ) -> Result<(Partial, ShareStats)>;

    /// [`reduce`](Self::reduce), and the seconds it took (wall or virtual).
    fn reduce_timed(
        &self,
        kernel: &KernelInner,
        op: Reduce,
        inputs: &[&[u32]],
        first_index: u64,
        len: usize,
    ) -> Result<(Partial, ShareStats, f64)> {
        let t = std::time::Instant::now();
        let (p, stats) = self.reduce(kernel, op, inputs, first_index, len)?;
        Ok((p, stats, t.elapsed().as_secs_f64()))
    }

    /// What the device keeps between calls (pooled buffers, compiled kernels), for the
    /// resource-bound tests; nothing for a device that keeps nothing.
    fn resources(&self) -> crate::runtime::DeviceResources {
        crate::runtime::DeviceResources::default()
    }

    /// Compute pipelines the device has compiled so far (0 for a device that compiles
    /// nothing).
    fn compilations(&self) -> u64 {
        0
    }

    /// Whether the device's times are virtual (a [`sim::SimDevice`]): its runs return
    /// at once and say how long they would have taken.
    fn is_virtual(&self) -> bool {
        false
    }

    /// An identity unique in the process, for a device that can keep data between
    /// calls ([`Resident`]); 0 for one that cannot.
    fn id(&self) -> u64 {
        0
    }

    /// The most elements one resident part may hold (a storage binding's limit); 0
    /// for a device that keeps no data.
    fn max_resident(&self) -> usize {
        0
    }

    /// Copies `data` into the device's memory, to stay there.
    fn upload(&self, _data: &[u32]) -> Result<(std::sync::Arc<dyn Resident>, ShareStats)> {
        Err(crate::error::Error::NoDevice { kind: "gpu" })
    }

    /// [`run`](Self::run) on resident inputs (each [`Resident::len`] elements, all held
    /// by this device), the output staying resident; and the seconds it took.
    fn run_resident(
        &self,
        _kernel: &KernelInner,
        _inputs: &[&dyn Resident],
        _first_index: u64,
    ) -> Result<(std::sync::Arc<dyn Resident>, ShareStats, f64)> {
        Err(crate::error::Error::NoDevice { kind: "gpu" })
    }

    /// [`reduce`](Self::reduce) on resident inputs; and the seconds it took.
    fn reduce_resident(
        &self,
        _kernel: &KernelInner,
        _op: Reduce,
        _inputs: &[&dyn Resident],
        _first_index: u64,
    ) -> Result<(Partial, ShareStats, f64)> {
        Err(crate::error::Error::NoDevice { kind: "gpu" })
    }

    /// [`run`](Self::run), and the seconds it took: measured on the wall clock, or the
    /// virtual time of a simulated device.
    fn run_timed(
        &self,
        kernel: &KernelInner,
        inputs: &[&[u32]],
        first_index: u64,
        out: &mut [u32],
    ) -> Result<(ShareStats, f64)> {
        let t = std::time::Instant::now();
        let stats = self.run(kernel, inputs, first_index, out)?;
        Ok((stats, t.elapsed().as_secs_f64()))
    }
}
