//! The runtime: the devices of one process, the entry points, and environment overrides.
//!
//! `Runtime::new()` takes the CPU and every GPU adapter wgpu finds, filtered by
//! `HYBRID_BACKEND` (`cpu`, `gpu`, or unset/`all`). The global runtime behind
//! [`crate::map`] is built on first use and lives for the process.
//!
//! A call goes down once: an entry point ([`entry`](self)) checks its inputs and
//! binds the kernel's parameters; host data runs through `host.rs`, arrays through
//! `arrays.rs`; both ask the device health record which devices may take part,
//! hand the call to the scheduler's placement (`crate::schedule`), and turn what it
//! decided into a [`Report`](crate::Report) (`receipt.rs`).

mod array_tables;
mod arrays;
mod builder;
mod call;
mod custom;
mod entry;
mod health;
mod host;
mod lazy;
mod receipt;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, OnceLock};

use crate::device::{Device, DeviceInfo, DeviceResources};
use crate::error::{Error, Result};
use crate::kernel::reduce::Reduce;
use crate::kernel::{Bound, Element};
use crate::report::Report;
use crate::schedule::auto::Call;
use crate::schedule::model::Models;
use crate::transfer::{Calibration, Link, TransferStats};

pub use builder::{Backend, RuntimeBuilder};
pub use call::{ArgData, ArgView, CallData, ResultArrays};
use health::Sick;

/// The output of a call on an explicit runtime, and its receipt.
#[derive(Debug, Clone)]
pub struct Run<T> {
    /// The result, in input order.
    pub output: T,
    /// What ran where, what moved, how long it took.
    pub report: Report,
}

/// A set of devices and the entry points that run kernels on them.
pub struct Runtime {
    devices: Vec<Arc<dyn Device>>,
    infos: Vec<DeviceInfo>,
    /// Why no GPU is in this runtime, when none is.
    no_gpu: Option<String>,
    /// Throughput models per (kernel, device).
    models: Arc<Models>,
    /// Every device is simulated: times are virtual.
    virtual_clock: bool,
    /// Per device: why it is unhealthy, when it is.
    health: Vec<Mutex<Option<Sick>>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("devices", &self.infos)
            .field("no_gpu", &self.no_gpu)
            .finish()
    }
}

static GLOBAL: OnceLock<Result<Runtime>> = OnceLock::new();

impl Runtime {
    /// The CPU and every GPU adapter found, as `HYBRID_BACKEND` allows.
    pub fn new() -> Result<Runtime> {
        Runtime::builder().build()
    }

    /// A builder, starting from the default devices.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::with_defaults()
    }

    /// The process-wide runtime behind [`crate::map`] and friends, built on first use.
    pub fn global() -> Result<&'static Runtime> {
        GLOBAL
            .get_or_init(Runtime::new)
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The devices of this runtime.
    pub fn devices(&self) -> &[DeviceInfo] {
        &self.infos
    }

    /// How many compute pipelines this runtime's GPUs have compiled so far (all of
    /// them together; 0 without a GPU). A kernel compiles once per GPU, on its first
    /// GPU call, and stays cached: changing a [`Param`](crate::Param)'s value never
    /// compiles anything, and neither do kernels that differ only in their parameters'
    /// values.
    pub fn compilations(&self) -> u64 {
        self.devices
            .iter()
            .filter_map(|d| d.hooks())
            .map(|h| h.compilations())
            .sum()
    }

    /// Whether the runtime has at least one GPU.
    pub fn has_gpu(&self) -> bool {
        self.infos.iter().any(|i| i.kind.is_gpu())
    }

    /// Why the runtime has no GPU, when it has none.
    pub fn no_gpu_reason(&self) -> Option<&str> {
        self.no_gpu.as_deref()
    }

    /// Each linked device's fitted link (host to device and back), calibrating on
    /// first need: measured once per adapter and driver, then reloaded from disk.
    /// Devices with no link (the CPU) and failed calibrations are left out.
    pub fn links(&self) -> Vec<(DeviceInfo, Link)> {
        self.devices
            .iter()
            .zip(&self.infos)
            .filter_map(|(d, i)| d.link().map(|l| (i.clone(), l)))
            .collect()
    }

    /// Each linked device's whole calibration: the link, the dispatch overhead, the
    /// measured samples, whether it was reloaded and where it is stored.
    pub fn calibrations(&self) -> Vec<(DeviceInfo, Calibration)> {
        self.devices
            .iter()
            .zip(&self.infos)
            .filter_map(|(d, i)| {
                let c = d.host_link()?.calibration()?;
                Some((i.clone(), c))
            })
            .collect()
    }

    /// Each device's retained resources, in [`devices`](Self::devices) order. For the
    /// resource-bound tests; not part of the API.
    #[doc(hidden)]
    pub fn __resources(&self) -> Vec<DeviceResources> {
        self.devices
            .iter()
            .map(|d| d.hooks().map(|h| h.resources()).unwrap_or_default())
            .collect()
    }

    /// Moves data over device `device`'s link (an index into [`devices`]) with no
    /// kernel, through the same staging, chunking and ring as a kernel's data: `up`
    /// alone uploads, `down` alone downloads (whatever the device buffer holds), both
    /// make a round trip of `up` into `down`. For link benchmarks.
    /// [`Error::NoSuchDevice`] for an index past the devices, [`Error::NoTransfer`] for
    /// a device with no link to move data over.
    ///
    /// [`devices`]: Self::devices
    pub fn transfer<T: Element>(
        &self,
        device: usize,
        up: Option<&[T]>,
        down: Option<&mut [T]>,
    ) -> Result<TransferStats> {
        let d = self.devices.get(device).ok_or(Error::NoSuchDevice {
            index: device,
            devices: self.devices.len(),
        })?;
        let up: Option<&[u32]> = up.map(bytemuck::cast_slice);
        let down: Option<&mut [u32]> = down.map(bytemuck::cast_slice_mut);
        d.host_link()
            .and_then(|l| l.transfer(up, down))
            .unwrap_or_else(|| {
                Err(Error::NoTransfer {
                    device: d.info().name.clone(),
                })
            })
    }

    /// The call as the scheduler sees it (a kernel without tables).
    fn sched_call<'a>(
        &'a self,
        kernel: &'a Bound,
        inputs: &'a [&'a [u32]],
        op: Option<Reduce>,
        healthy: &'a [bool],
    ) -> Call<'a> {
        self.call_with(kernel, inputs, &[], &[], op, healthy)
    }

    /// The call as the scheduler sees it: `tables` whole, and per table the bytes a
    /// linked device is sent once (`None`: a halo, sent with each share).
    fn call_with<'a>(
        &'a self,
        kernel: &'a Bound,
        inputs: &'a [&'a [u32]],
        tables: &'a [crate::device::TableArg<'a>],
        table_bytes: &'a [Option<u64>],
        op: Option<Reduce>,
        healthy: &'a [bool],
    ) -> Call<'a> {
        Call {
            devices: &self.devices,
            infos: &self.infos,
            models: &self.models,
            kernel,
            inputs,
            tables,
            table_bytes,
            virtual_clock: self.virtual_clock,
            op,
            healthy,
            teach: true,
        }
    }

    /// Why a placement that needs a GPU cannot have one here.
    fn no_gpu(&self) -> &str {
        self.no_gpu.as_deref().unwrap_or("no gpu in this runtime")
    }
}
