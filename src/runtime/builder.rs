//! Building a runtime: which devices (`HYBRID_BACKEND`, simulated ones), how their
//! transfers are configured, where their models are stored, and the faults tests
//! inject.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::Runtime;
use crate::device::cpu::CpuDevice;
use crate::device::sim::SimDevice;
use crate::device::{Device, DeviceInfo};
use crate::error::{Error, Result};
use crate::schedule::model::Models;
use crate::transfer::TransferConfig;

/// Which kinds of device a runtime uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// The CPU and every GPU found (the default).
    #[default]
    All,
    /// The CPU only: no GPU is looked for (headless CI).
    Cpu,
    /// GPUs only; building fails when there is none.
    Gpu,
}

impl Backend {
    /// The backend `HYBRID_BACKEND` asks for; unset or empty means [`Backend::All`].
    pub fn from_env() -> Result<Backend> {
        match std::env::var("HYBRID_BACKEND") {
            Err(_) => Ok(Backend::All),
            Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
                "" | "all" => Ok(Backend::All),
                "cpu" => Ok(Backend::Cpu),
                "gpu" => Ok(Backend::Gpu),
                _ => Err(Error::BadEnvironment {
                    var: "HYBRID_BACKEND",
                    value: v,
                }),
            },
        }
    }
}

/// Builds a [`Runtime`] with chosen devices.
#[derive(Debug, Clone, Default)]
pub struct RuntimeBuilder {
    defaults: bool,
    backend: Option<Backend>,
    cpu_threads: Option<usize>,
    extra_cpu: bool,
    transfer: Option<TransferConfig>,
    sims: Vec<SimDevice>,
    cache_dir: Option<PathBuf>,
    gpu_fault: Option<u64>,
}

impl RuntimeBuilder {
    /// A builder starting from the default devices.
    pub(super) fn with_defaults() -> Self {
        RuntimeBuilder {
            defaults: true,
            ..RuntimeBuilder::default()
        }
    }

    /// Start from no devices at all instead of the CPU and the GPUs found.
    pub fn no_default_devices(mut self) -> Self {
        self.defaults = false;
        self
    }

    /// Use this backend instead of the one `HYBRID_BACKEND` names.
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Add the CPU device (it is a default device; this is for a builder that started
    /// from [`no_default_devices`](Self::no_default_devices)).
    pub fn cpu(mut self) -> Self {
        self.extra_cpu = true;
        self
    }

    /// Run the CPU device on a rayon pool of its own with `n` threads, instead of
    /// rayon's global pool.
    pub fn cpu_threads(mut self, n: usize) -> Self {
        self.cpu_threads = Some(n);
        self
    }

    /// Chunk size, ring depth, pool bound and calibration directory for the GPUs'
    /// transfers (unset fields: `HYBRID_CHUNK_BYTES`, `HYBRID_RING`,
    /// `HYBRID_CACHE_DIR`, else chosen from the link model).
    pub fn transfer(mut self, cfg: TransferConfig) -> Self {
        self.transfer = Some(cfg);
        self
    }

    /// Add a simulated device (see [`SimDevice`]). A runtime made only of simulated
    /// devices runs on a virtual clock: its reports' times are virtual.
    pub fn device(mut self, device: SimDevice) -> Self {
        self.sims.push(device);
        self
    }

    /// Keep the throughput models in `dir` instead of the default cache directory
    /// (`HYBRID_CACHE_DIR`, else the user's cache). Simulated devices' models are kept
    /// on disk only when this is set.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Fault injection, for tests of recovery: once each real GPU of the runtime has
    /// streamed `chunks` chunks (in all, over every call), every further chunk it
    /// streams fails with [`Error::DeviceFailed`]. Simulated devices have their own
    /// ([`SimDevice::fail_after`]).
    pub fn fail_gpu_after_chunks(mut self, chunks: u64) -> Self {
        self.gpu_fault = Some(chunks);
        self
    }

    /// Finds the devices and builds the runtime.
    pub fn build(self) -> Result<Runtime> {
        let backend = match self.backend {
            Some(b) => b,
            None => Backend::from_env()?,
        };
        let mut devices: Vec<Arc<dyn Device>> = Vec::new();
        let mut no_gpu = None;
        let want_cpu = (self.defaults && backend != Backend::Gpu) || self.extra_cpu;
        if want_cpu {
            devices.push(Arc::new(CpuDevice::new(self.cpu_threads)?));
        }
        if self.defaults && backend != Backend::Cpu {
            match discover_gpus() {
                Ok(gpus) => devices.extend(gpus),
                Err(reason) => no_gpu = Some(reason),
            }
        } else if backend == Backend::Cpu {
            no_gpu = Some("HYBRID_BACKEND=cpu".into());
        } else {
            no_gpu = Some("no gpu was added to this runtime".into());
        }
        let real = devices.len();
        for sim in self.sims {
            devices.push(Arc::new(sim.into_device()?));
        }
        if devices.iter().any(|d| d.info().kind.is_gpu()) {
            no_gpu = None;
        }
        if backend == Backend::Gpu && !devices.iter().any(|d| d.info().kind.is_gpu()) {
            return Err(Error::NoAdapter {
                reason: no_gpu.unwrap_or_else(|| "HYBRID_BACKEND=gpu and no gpu found".into()),
            });
        }
        if let Some(cfg) = &self.transfer {
            for l in devices.iter().filter_map(|d| d.host_link()) {
                l.configure(cfg);
            }
        }
        if let Some(k) = self.gpu_fault {
            for h in devices.iter().filter_map(|d| d.hooks()) {
                h.inject_fault(k);
            }
        }
        let infos: Vec<DeviceInfo> = devices.iter().map(|d| d.info().clone()).collect();
        let persist: Vec<bool> = (0..devices.len())
            .map(|i| i < real || self.cache_dir.is_some())
            .collect();
        let dir = self.cache_dir.unwrap_or_else(crate::cache::dir);
        let models = Arc::new(Models::new(&infos, &persist, dir));
        let virtual_clock = !devices.is_empty() && devices.iter().all(|d| d.is_virtual());
        let health = devices.iter().map(|_| Mutex::new(None)).collect();
        Ok(Runtime {
            health,
            devices,
            infos,
            no_gpu,
            models,
            virtual_clock,
        })
    }
}

#[cfg(feature = "gpu")]
fn discover_gpus() -> std::result::Result<Vec<Arc<dyn Device>>, String> {
    let gpus = crate::device::gpu::discover()?;
    Ok(gpus
        .into_iter()
        .map(|g| Arc::new(g) as Arc<dyn Device>)
        .collect())
}

#[cfg(not(feature = "gpu"))]
fn discover_gpus() -> std::result::Result<Vec<Arc<dyn Device>>, String> {
    Err("built without the `gpu` feature".into())
}
