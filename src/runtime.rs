//! The runtime: the devices of one process, the entry points, and environment overrides.
//!
//! `Runtime::new()` takes the CPU and every GPU adapter wgpu finds, filtered by
//! `HYBRID_BACKEND` (`cpu`, `gpu`, or unset/`all`). The global runtime behind
//! [`crate::map`] is built on first use and lives for the process.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::device::cpu::CpuDevice;
use crate::device::sim::SimDevice;
use crate::device::{Device, DeviceInfo, DeviceKind};
use crate::error::{Error, Result};
use crate::kernel::{Element, Kernel, KernelInner};
use crate::report::{Report, Share};
use crate::schedule::auto::{self, Call};
use crate::schedule::model::Models;
use crate::schedule::{self, Placement};
use crate::transfer::{Calibration, Link, TransferConfig, TransferStats};

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
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("devices", &self.infos)
            .field("no_gpu", &self.no_gpu)
            .finish()
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
}

impl RuntimeBuilder {
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
            devices.iter().for_each(|d| d.configure_transfer(cfg));
        }
        let infos: Vec<DeviceInfo> = devices.iter().map(|d| d.info().clone()).collect();
        let persist: Vec<bool> = (0..devices.len())
            .map(|i| i < real || self.cache_dir.is_some())
            .collect();
        let dir = self.cache_dir.unwrap_or_else(crate::cache::dir);
        let models = Arc::new(Models::new(&infos, &persist, dir));
        let virtual_clock = !devices.is_empty() && devices.iter().all(|d| d.is_virtual());
        Ok(Runtime {
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

static GLOBAL: OnceLock<Result<Runtime>> = OnceLock::new();

impl Runtime {
    /// The CPU and every GPU adapter found, as `HYBRID_BACKEND` allows.
    pub fn new() -> Result<Runtime> {
        Runtime::builder().build()
    }

    /// A builder, starting from the default devices.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            defaults: true,
            ..RuntimeBuilder::default()
        }
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
        self.devices.iter().map(|d| d.compilations()).sum()
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
            .filter_map(|(d, i)| d.calibration().map(|c| (i.clone(), c)))
            .collect()
    }

    /// Moves data over device `device`'s link (an index into [`devices`]) with no
    /// kernel, through the same staging, chunking and ring as a kernel's data: `up`
    /// alone uploads, `down` alone downloads (whatever the device buffer holds), both
    /// make a round trip of `up` into `down`. For link benchmarks.
    ///
    /// [`devices`]: Self::devices
    pub fn transfer<T: Element>(
        &self,
        device: usize,
        up: Option<&[T]>,
        down: Option<&mut [T]>,
    ) -> Result<TransferStats> {
        let d = self
            .devices
            .get(device)
            .ok_or(Error::NoDevice { kind: "gpu" })?;
        let up: Option<&[u32]> = up.map(bytemuck::cast_slice);
        let down: Option<&mut [u32]> = down.map(bytemuck::cast_slice_mut);
        d.transfer(up, down)
            .unwrap_or(Err(Error::NoDevice { kind: "gpu" }))
    }

    /// Applies a one-input kernel to every element of `xs`.
    pub fn map<I: Element, O: Element>(
        &self,
        xs: &[I],
        kernel: &Kernel<I, O>,
        placement: Placement,
    ) -> Result<Run<Vec<O>>> {
        check_arity(kernel.inner(), 1)?;
        self.run(
            kernel.inner(),
            &[bytemuck::cast_slice(xs)],
            xs.len(),
            placement,
        )
    }

    /// Applies a two-input kernel to every pair `(a[i], b[i])`.
    pub fn map2<I: Element, O: Element>(
        &self,
        a: &[I],
        b: &[I],
        kernel: &Kernel<I, O>,
        placement: Placement,
    ) -> Result<Run<Vec<O>>> {
        if a.len() != b.len() {
            return Err(Error::LengthMismatch {
                left: a.len(),
                right: b.len(),
            });
        }
        check_arity(kernel.inner(), 2)?;
        self.run(
            kernel.inner(),
            &[bytemuck::cast_slice(a), bytemuck::cast_slice(b)],
            a.len(),
            placement,
        )
    }

    fn run<O: Element>(
        &self,
        kernel: &Arc<KernelInner>,
        inputs: &[&[u32]],
        n: usize,
        placement: Placement,
    ) -> Result<Run<Vec<O>>> {
        let start = Instant::now();
        kernel.program()?;
        // The parameters' values are read once, here: every device sees the same.
        let kernel = &kernel.bind();
        let mut notes = Vec::new();
        if let Some(r) = &self.no_gpu {
            notes.push(format!("no gpu: {r}"));
        }
        let call = Call {
            devices: &self.devices,
            infos: &self.infos,
            models: &self.models,
            kernel,
            inputs,
            virtual_clock: self.virtual_clock,
        };
        let mut output: Vec<O> = vec![O::default(); n];
        let out_bits: &mut [u32] = bytemuck::cast_slice_mut(&mut output);
        let decided = match placement {
            Placement::Auto => auto::auto(&call, out_bits)?,
            p => {
                let kinds: Vec<DeviceKind> = self.infos.iter().map(|i| i.kind).collect();
                let reason = self.no_gpu.as_deref().unwrap_or("no gpu in this runtime");
                let plan = schedule::shares(n, p, &kinds, reason)?;
                auto::fixed(&call, plan, out_bits, format!("{p}, as asked"))?
            }
        };
        notes.extend(decided.notes);
        let mut outcomes = decided.outcomes;
        outcomes.sort_by_key(|o| o.range.start);
        let shares: Vec<Share> = outcomes
            .into_iter()
            .map(|o| {
                let info = &self.infos[o.dev];
                Share {
                    device: info.name.clone(),
                    kind: info.kind,
                    range: o.range,
                    stats: o.stats,
                    busy_s: o.busy_s,
                }
            })
            .collect();
        let wall_s = if self.virtual_clock {
            shares.iter().map(|s| s.busy_s).fold(0.0, f64::max)
        } else {
            start.elapsed().as_secs_f64()
        };
        let report = Report {
            elements: n,
            placement,
            decision: decided.decision,
            notes,
            shares,
            wall_s,
            virtual_clock: self.virtual_clock,
            forecasts: decided.forecasts,
            predicted_s: decided.predicted_s,
            cpu_only_s: decided.cpu_only_s,
            gpu_only_s: decided.gpu_only_s,
        };
        Ok(Run { output, report })
    }
}

fn check_arity(k: &KernelInner, given: usize) -> Result<()> {
    let want = k.program()?.inputs.len();
    if want != given {
        return Err(Error::WrongArity {
            expected: want,
            given,
        });
    }
    Ok(())
}
