//! The runtime: the devices of one process, the entry points, and environment overrides.
//!
//! `Runtime::new()` takes the CPU and every GPU adapter wgpu finds, filtered by
//! `HYBRID_BACKEND` (`cpu`, `gpu`, or unset/`all`). The global runtime behind
//! [`crate::map`] is built on first use and lives for the process.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use crate::array::{self, Array, ArrayRef, HostData, Input, Part};
use crate::device::cpu::CpuDevice;
use crate::device::sim::SimDevice;
use crate::device::{Device, DeviceInfo, DeviceKind, Resident, ShareStats};
use crate::error::{Error, Result};
use crate::kernel::custom;
use crate::kernel::reduce::{Partial, Reduce};
use crate::kernel::{Element, Expr, Kernel, KernelInner};
use crate::report::{Recovery, Report, Share};
use crate::schedule::auto::{self, Call, Decided};
use crate::schedule::exec::{self, Failure, Runner};
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

/// A device that failed: left out of calls until a probe finds it healthy.
#[derive(Debug, Clone)]
struct Sick {
    reason: String,
    /// Calls that left it out since it failed (or since its last failed probe).
    skipped: u32,
    /// Calls to leave it out before probing it again (doubles per failed probe).
    wait: u32,
}

/// Calls an unhealthy device sits out before its first probe.
const SICK_WAIT: u32 = 8;
/// The most calls between probes.
const SICK_WAIT_MAX: u32 = 1024;
/// Elements of a call a probe of an unhealthy device runs.
const HEALTH_PROBE: usize = 4096;

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
    gpu_fault: Option<u64>,
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
            devices.iter().for_each(|d| d.configure_transfer(cfg));
        }
        if let Some(k) = self.gpu_fault {
            devices.iter().for_each(|d| d.inject_fault(k));
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

    /// Each device's retained resources, in [`devices`](Self::devices) order. For the
    /// resource-bound tests; not part of the API.
    #[doc(hidden)]
    pub fn __resources(&self) -> Vec<DeviceResources> {
        self.devices.iter().map(|d| d.resources()).collect()
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

    /// Applies a one-input kernel to every element of `xs`: host data (a slice, a
    /// `Vec`, an array `[T; N]`), giving a `Vec`, or an [`Array`], giving an `Array`
    /// whose parts stay where they were computed (see [`crate::array`]).
    pub fn map<I: Element, O: Element, X: Input<I> + ?Sized>(
        &self,
        xs: &X,
        kernel: &Kernel<I, O>,
        placement: Placement,
    ) -> Result<Run<X::Mapped<O>>> {
        X::map_on(self, xs, None, kernel, placement)
    }

    /// Applies a two-input kernel to every pair `(a[i], b[i])`: both host data (any
    /// mix of slices, `Vec`s and `[T; N]`), giving a `Vec`, or both arrays, giving an
    /// `Array`.
    pub fn map2<I, O, X, Y>(
        &self,
        a: &X,
        b: &Y,
        kernel: &Kernel<I, O>,
        placement: Placement,
    ) -> Result<Run<X::Mapped<O>>>
    where
        I: Element,
        O: Element,
        X: Input<I> + ?Sized,
        Y: Input<I, Mapped<O> = X::Mapped<O>> + ?Sized,
    {
        X::map_on(
            self,
            a,
            Some((b.as_host(), b.as_array())),
            kernel,
            placement,
        )
    }

    /// Applies a one-input kernel to every element of `xs` (host data or an array)
    /// and combines the values with `op`, in one pass (no mapped array is written).
    /// Sums of `f32` are accurate to a stated bound, integer sums wrap, `f32` min/max
    /// ignore NaN, and an empty input gives the operation's identity: see [`Reduce`].
    pub fn reduce<I: Element, O: Element, X: Input<I> + ?Sized>(
        &self,
        xs: &X,
        kernel: &Kernel<I, O>,
        op: Reduce,
        placement: Placement,
    ) -> Result<Run<O>> {
        match (xs.as_host(), xs.as_array()) {
            (Some(h), _) => self.reduce_host(h, kernel, op, placement),
            (_, Some(a)) => self.reduce_array(a, kernel, op, placement),
            _ => Err(Error::InvalidKernel {
                reason: "reduce: an input that is neither host data nor an array".into(),
            }),
        }
    }

    /// Applies a two-input kernel to every pair `(a[i], b[i])` and combines the values
    /// with `op` (a dot product is `a * b` summed): both host data, or both arrays.
    pub fn reduce2<I, O, X, Y>(
        &self,
        a: &X,
        b: &Y,
        kernel: &Kernel<I, O>,
        op: Reduce,
        placement: Placement,
    ) -> Result<Run<O>>
    where
        I: Element,
        O: Element,
        X: Input<I> + ?Sized,
        Y: Input<I, Mapped<O> = X::Mapped<O>> + ?Sized,
    {
        match (a.as_host(), b.as_host(), a.as_array(), b.as_array()) {
            (Some(a), Some(b), _, _) => self.reduce2_host(a, b, kernel, op, placement),
            (_, _, Some(a), Some(b)) => self.reduce2_array(a, b, kernel, op, placement),
            _ => Err(Error::InvalidKernel {
                reason: "map2/reduce2: both inputs must be host data, or both arrays".into(),
            }),
        }
    }

    pub(crate) fn map_host<I: Element, O: Element>(
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

    pub(crate) fn map2_host<I: Element, O: Element>(
        &self,
        a: &[I],
        b: &[I],
        kernel: &Kernel<I, O>,
        placement: Placement,
    ) -> Result<Run<Vec<O>>> {
        same_len(a.len(), b.len())?;
        check_arity(kernel.inner(), 2)?;
        self.run(
            kernel.inner(),
            &[bytemuck::cast_slice(a), bytemuck::cast_slice(b)],
            a.len(),
            placement,
        )
    }

    pub(crate) fn reduce_host<I: Element, O: Element>(
        &self,
        xs: &[I],
        kernel: &Kernel<I, O>,
        op: Reduce,
        placement: Placement,
    ) -> Result<Run<O>> {
        check_arity(kernel.inner(), 1)?;
        self.run_reduce(
            kernel.inner(),
            op,
            &[bytemuck::cast_slice(xs)],
            xs.len(),
            placement,
        )
    }

    pub(crate) fn reduce2_host<I: Element, O: Element>(
        &self,
        a: &[I],
        b: &[I],
        kernel: &Kernel<I, O>,
        op: Reduce,
        placement: Placement,
    ) -> Result<Run<O>> {
        same_len(a.len(), b.len())?;
        check_arity(kernel.inner(), 2)?;
        self.run_reduce(
            kernel.inner(),
            op,
            &[bytemuck::cast_slice(a), bytemuck::cast_slice(b)],
            a.len(),
            placement,
        )
    }

    /// The sum of `xs` ([`Reduce::Sum`] of the identity kernel).
    pub fn sum<T: Element>(&self, xs: &[T], placement: Placement) -> Result<Run<T>> {
        self.reduce(xs, &Kernel::map(|x: Expr<T>| x), Reduce::Sum, placement)
    }

    /// Applies a one-input kernel to every element of an array. The output is an
    /// array whose parts stay where they were computed (a GPU's in its memory); a part
    /// already on the device that computes it moves nothing. See [`crate::array`] for
    /// the model, and for `Auto`'s choice between keeping data where it is and moving
    /// it.
    ///
    /// ```
    /// use hybrid::{Array, Expr, Kernel, Placement, Runtime};
    /// # fn main() -> hybrid::Result<()> {
    /// let rt = Runtime::new()?;
    /// let xs = Array::from_vec((0..1000).map(|i| i as f32).collect());
    /// let twice = Kernel::map(|x: Expr<f32>| x * 2.0);
    /// let a = rt.map_array(&xs, &twice, Placement::Auto)?.output;
    /// let b = rt.map_array(&a, &twice, Placement::Auto)?.output;
    /// assert_eq!(b.to_vec()?[10], 40.0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn map_array<I: Element, O: Element>(
        &self,
        xs: &Array<I>,
        kernel: &Kernel<I, O>,
        placement: Placement,
    ) -> Result<Run<Array<O>>> {
        check_arity(kernel.inner(), 1)?;
        let run = self.array_map(kernel.inner(), &[xs.view()], placement)?;
        Ok(Run {
            output: Array::from_parts(xs.len(), run.output),
            report: run.report,
        })
    }

    /// [`map_array`](Self::map_array) for a two-input kernel.
    pub fn map2_array<I: Element, O: Element>(
        &self,
        a: &Array<I>,
        b: &Array<I>,
        kernel: &Kernel<I, O>,
        placement: Placement,
    ) -> Result<Run<Array<O>>> {
        same_len(a.len(), b.len())?;
        check_arity(kernel.inner(), 2)?;
        let run = self.array_map(kernel.inner(), &[a.view(), b.view()], placement)?;
        Ok(Run {
            output: Array::from_parts(a.len(), run.output),
            report: run.report,
        })
    }

    /// [`reduce2`](Self::reduce2) over two arrays, each pair of parts reduced where it
    /// is.
    pub fn reduce2_array<I: Element, O: Element>(
        &self,
        a: &Array<I>,
        b: &Array<I>,
        kernel: &Kernel<I, O>,
        op: Reduce,
        placement: Placement,
    ) -> Result<Run<O>> {
        same_len(a.len(), b.len())?;
        check_arity(kernel.inner(), 2)?;
        let run = self.array_reduce(kernel.inner(), op, &[a.view(), b.view()], placement)?;
        Ok(Run {
            output: O::from_bits(run.output),
            report: run.report,
        })
    }

    /// [`reduce`](Self::reduce) over an array: each part is reduced where it is (a
    /// GPU sends back one partial per 2,048 elements, not the data).
    pub fn reduce_array<I: Element, O: Element>(
        &self,
        xs: &Array<I>,
        kernel: &Kernel<I, O>,
        op: Reduce,
        placement: Placement,
    ) -> Result<Run<O>> {
        check_arity(kernel.inner(), 1)?;
        let run = self.array_reduce(kernel.inner(), op, &[xs.view()], placement)?;
        Ok(Run {
            output: O::from_bits(run.output),
            report: run.report,
        })
    }

    /// A report of a call that ran nothing.
    pub(crate) fn empty_report(&self, n: usize, placement: Placement) -> Report {
        let decided = Decided {
            outcomes: Vec::new(),
            decision: "nothing to run".into(),
            forecasts: Vec::new(),
            predicted_s: None,
            cpu_only_s: None,
            gpu_only_s: None,
            notes: Vec::new(),
            failures: Vec::new(),
        };
        let mut r = self.report(n, placement, decided, Instant::now(), None, Vec::new());
        r.steps = 0;
        r
    }

    /// A map over arrays: the output's parts, in order, and the report.
    pub(crate) fn array_map(
        &self,
        kernel: &Arc<KernelInner>,
        inputs: &[ArrayRef<'_>],
        placement: Placement,
    ) -> Result<Run<Vec<Part>>> {
        let start = Instant::now();
        kernel.program()?;
        let kernel = &kernel.bind();
        let n = inputs.first().map_or(0, |a| a.len);
        let produced: Mutex<Vec<Part>> = Mutex::new(Vec::new());
        let runner = |dev: usize, range: &Range<usize>, _: &mut [()]| {
            let (made, stats, secs) = self.array_range(
                dev,
                range,
                inputs,
                |d, ins, first| {
                    let (out, st, _) = d.run_resident(kernel, ins, first)?;
                    Ok((out, st))
                },
                |d, ins, first, len| {
                    let mut out = vec![0u32; len];
                    let (st, s) = d.run_timed(kernel, ins, first, &mut out)?;
                    Ok((out, st, s))
                },
            )?;
            lock(&produced).extend(made.into_iter().map(|(r, x)| match x {
                Made::Device(d) => Part::on_device(r, d),
                Made::Host(h) => Part::on_host(r, h),
            }));
            Ok((stats, secs))
        };
        let (decided, notes, read_back) =
            self.place_array(kernel, inputs, None, n, placement, &runner)?;
        let mut parts = produced.into_inner().unwrap_or_else(|e| e.into_inner());
        parts.sort_by_key(|p| p.range.start);
        let mut report = self.report(n, placement, decided, start, None, notes);
        report.gathered = read_back;
        Ok(Run {
            output: parts,
            report,
        })
    }

    /// A reduction over arrays: the combined value's bits, and the report.
    pub(crate) fn array_reduce(
        &self,
        kernel: &Arc<KernelInner>,
        op: Reduce,
        inputs: &[ArrayRef<'_>],
        placement: Placement,
    ) -> Result<Run<u32>> {
        let start = Instant::now();
        let ty = kernel.output_type()?;
        let kernel = &kernel.bind();
        let n = inputs.first().map_or(0, |a| a.len);
        let partials: Mutex<Vec<(usize, Partial)>> = Mutex::new(Vec::new());
        let runner = |dev: usize, range: &Range<usize>, _: &mut [()]| {
            let (made, stats, secs) = self.array_range(
                dev,
                range,
                inputs,
                |d, ins, first| {
                    let (p, st, _) = d.reduce_resident(kernel, op, ins, first)?;
                    Ok((p, st))
                },
                |d, ins, first, len| d.reduce_timed(kernel, op, ins, first, len),
            )?;
            lock(&partials).extend(made.into_iter().map(|(r, x)| match x {
                Made::Device(p) | Made::Host(p) => (r.start, p),
            }));
            Ok((stats, secs))
        };
        let (decided, notes, read_back) =
            self.place_array(kernel, inputs, Some(op), n, placement, &runner)?;
        let mut parts = partials.into_inner().unwrap_or_else(|e| e.into_inner());
        // combined in input order, as for slices
        parts.sort_by_key(|p| p.0);
        let value = parts
            .into_iter()
            .fold(op.identity(ty), |acc, (_, p)| acc.combine(p, op, ty));
        let mut report = self.report(n, placement, decided, start, Some(op), notes);
        report.gathered = read_back;
        Ok(Run {
            output: value.bits(),
            report,
        })
    }

    /// One range of an array call on device `dev`: on a device that keeps data, in
    /// pieces of at most one resident part, each input brought there (nothing moves
    /// for a part already there) and `on_device` run on it; elsewhere on the host,
    /// `on_host` over the inputs' host data (read back as needed). What each piece
    /// made, the bytes moved and the seconds (virtual on a simulated device).
    #[allow(clippy::type_complexity)]
    fn array_range<D, H>(
        &self,
        dev: usize,
        range: &Range<usize>,
        inputs: &[ArrayRef<'_>],
        on_device: impl Fn(&dyn Device, &[&dyn Resident], u64) -> Result<(D, ShareStats)>,
        on_host: impl Fn(&dyn Device, &[&[u32]], u64, usize) -> Result<(H, ShareStats, f64)>,
    ) -> Result<(Vec<(Range<usize>, Made<D, H>)>, ShareStats, f64)> {
        let t = Instant::now();
        let d = self.devices[dev].as_ref();
        let mut stats = ShareStats::default();
        let mut made = Vec::new();
        let mut virtual_s = 0.0;
        if d.max_resident() > 0 {
            for piece in array::pieces(range.clone(), d.max_resident()) {
                let ins: Vec<Arc<dyn Resident>> = inputs
                    .iter()
                    .map(|a| a.on_device(piece.clone(), d, &mut stats))
                    .collect::<Result<_>>()?;
                let refs: Vec<&dyn Resident> = ins.iter().map(|r| r.as_ref()).collect();
                let (x, st) = on_device(d, &refs, piece.start as u64)?;
                exec::add(&mut stats, &st);
                made.push((piece, Made::Device(x)));
            }
        } else {
            let data: Vec<HostData> = inputs
                .iter()
                .map(|a| a.host_range(range.clone(), &mut stats))
                .collect::<Result<_>>()?;
            let ins: Vec<&[u32]> = data.iter().map(HostData::as_slice).collect();
            let (x, st, s) = on_host(d, &ins, range.start as u64, range.len())?;
            exec::add(&mut stats, &st);
            virtual_s = s;
            made.push((range.clone(), Made::Host(x)));
        }
        let secs = if d.is_virtual() {
            virtual_s
        } else {
            t.elapsed().as_secs_f64()
        };
        Ok((made, stats, secs))
    }

    /// Places an array call: health, hand-written kernels' check, then the placement
    /// (for `Auto`, keep the data where it is or move it; see [`crate::array`]).
    /// Returns what ran, the notes, and the bytes read back before planning.
    fn place_array(
        &self,
        kernel: &Arc<KernelInner>,
        inputs: &[ArrayRef<'_>],
        op: Option<Reduce>,
        n: usize,
        placement: Placement,
        runner: &Runner<'_, ()>,
    ) -> Result<(Decided, Vec<String>, u64)> {
        let mut notes = Vec::new();
        let mut read = ShareStats::default();
        // host data only where it is needed: a hand-written kernel's check, or a
        // device due for a health probe
        if kernel.custom().is_some() && n > 0 {
            let data: Vec<HostData> = inputs
                .iter()
                .map(|a| a.host_range(0..n, &mut read))
                .collect::<Result<_>>()?;
            let views: Vec<&[u32]> = data.iter().map(HostData::as_slice).collect();
            self.check_custom(kernel, &views, n)?;
        }
        let sick = self.health.iter().any(|h| lock(h).is_some());
        let m = if sick { n.min(HEALTH_PROBE) } else { 0 };
        let probe: Vec<HostData> = inputs
            .iter()
            .filter(|_| m > 0)
            .map(|a| a.host_range(0..m, &mut read))
            .collect::<Result<_>>()?;
        let probe: Vec<&[u32]> = probe.iter().map(HostData::as_slice).collect();
        let healthy = self.healthy(kernel, &probe, m, op, &mut notes);
        let mut units = vec![(); n];
        fn quiet(c: Call<'_>) -> Call<'_> {
            Call { teach: false, ..c }
        }
        if placement != Placement::Auto {
            let call = quiet(self.call(kernel, &[], op, &healthy));
            let decided = self.place(&call, &mut units, placement, runner)?;
            return Ok((decided, notes, read.bytes_from_device));
        }
        // Auto: data only on GPUs is kept there, or moved when the models say it pays
        let layout = inputs.first().map(ArrayRef::layout).unwrap_or_default();
        let shape = |l: &[(Range<usize>, u64, u64)]| -> Vec<(Range<usize>, u64)> {
            l.iter().map(|(r, o, _)| (r.clone(), *o)).collect()
        };
        let same = inputs.iter().all(|a| shape(&a.layout()) == shape(&layout));
        if layout.iter().any(|(_, owner, _)| *owner != 0) {
            let cpu = self.infos.iter().position(|i| !i.kind.is_gpu());
            let where_: Option<Vec<(usize, Range<usize>)>> = layout
                .iter()
                .map(|(r, owner, _)| {
                    let d = match owner {
                        0 => cpu,
                        o => self.devices.iter().position(|d| d.id() == *o),
                    };
                    d.filter(|&d| healthy[d]).map(|d| (d, r.clone()))
                })
                .collect();
            match (where_, same) {
                (Some(plan), true) => {
                    let call = quiet(self.call(kernel, &[], op, &healthy));
                    let mut bytes: Vec<(usize, u64)> = Vec::new();
                    for ((d, _), (_, _, b)) in plan.iter().zip(&layout) {
                        bytes.push((*d, *b * inputs.len() as u64));
                    }
                    let (keep, why) = auto::keep_or_move(&call, &plan, &bytes)?;
                    if keep {
                        let decided = auto::fixed(&call, plan, &mut units, runner, why)?;
                        return Ok((decided, notes, read.bytes_from_device));
                    }
                    notes.push(why);
                }
                _ => notes.push(
                    "auto: the inputs' parts differ, or a part is on a device this call cannot use: read back to plan on the host".into(),
                ),
            }
        }
        let data: Vec<HostData> = inputs
            .iter()
            .map(|a| a.host_range(0..n, &mut read))
            .collect::<Result<_>>()?;
        let views: Vec<&[u32]> = data.iter().map(HostData::as_slice).collect();
        if read.bytes_from_device > 0 {
            notes.push(format!(
                "read back {} bytes to plan on the host",
                read.bytes_from_device
            ));
        }
        let call = quiet(self.call(kernel, &views, op, &healthy));
        let decided = self.place(&call, &mut units, placement, runner)?;
        Ok((decided, notes, read.bytes_from_device))
    }

    /// Each device, with the reason it is unhealthy when it is: a device that failed
    /// during a call is left out of later calls until a probe (a small run on a later
    /// call's input, after 8 calls, then after twice as many per failed probe, at most
    /// 1,024) finds it healthy again.
    pub fn health(&self) -> Vec<(DeviceInfo, Option<String>)> {
        self.infos
            .iter()
            .zip(&self.health)
            .map(|(i, h)| (i.clone(), lock(h).as_ref().map(|s| s.reason.clone())))
            .collect()
    }

    /// Which devices may take part in this call: the healthy ones, and the unhealthy
    /// ones whose probe is due and passes on this call's first elements.
    fn healthy(
        &self,
        kernel: &KernelInner,
        inputs: &[&[u32]],
        n: usize,
        op: Option<Reduce>,
        notes: &mut Vec<String>,
    ) -> Vec<bool> {
        let mut ok = Vec::with_capacity(self.devices.len());
        for (d, h) in self.devices.iter().zip(&self.health) {
            let mut sick = lock(h);
            let Some(s) = sick.as_mut() else {
                ok.push(true);
                continue;
            };
            s.skipped += 1;
            if s.skipped <= s.wait || n == 0 {
                notes.push(format!(
                    "{} left out: unhealthy ({})",
                    d.info().name,
                    s.reason
                ));
                ok.push(false);
                continue;
            }
            let m = n.min(HEALTH_PROBE);
            let ins: Vec<&[u32]> = inputs.iter().map(|x| &x[..m]).collect();
            let probe = match op {
                None => d.run(kernel, &ins, 0, &mut vec![0u32; m]).map(|_| ()),
                Some(op) => d.reduce(kernel, op, &ins, 0, m).map(|_| ()),
            };
            match probe {
                Ok(()) => {
                    notes.push(format!("{} probed healthy again", d.info().name));
                    *sick = None;
                    ok.push(true);
                }
                Err(e) => {
                    notes.push(format!("{} probed, still unhealthy: {e}", d.info().name));
                    s.reason = e.to_string();
                    s.skipped = 0;
                    s.wait = (s.wait * 2).min(SICK_WAIT_MAX);
                    ok.push(false);
                }
            }
        }
        ok
    }

    /// Marks the devices that failed in a call unhealthy, and says who redid what.
    fn recoveries(&self, failures: &[Failure]) -> Vec<Recovery> {
        failures
            .iter()
            .map(|f| {
                *lock(&self.health[f.dev]) = Some(Sick {
                    reason: f.error.to_string(),
                    skipped: 0,
                    wait: SICK_WAIT,
                });
                Recovery {
                    device: self.infos[f.dev].name.clone(),
                    range: f.range.clone(),
                    error: f.error.clone(),
                    redone_by: self.infos[f.redone_by].name.clone(),
                }
            })
            .collect()
    }

    fn call<'a>(
        &'a self,
        kernel: &'a Arc<KernelInner>,
        inputs: &'a [&'a [u32]],
        op: Option<Reduce>,
        healthy: &'a [bool],
    ) -> Call<'a> {
        Call {
            devices: &self.devices,
            infos: &self.infos,
            models: &self.models,
            kernel,
            inputs,
            virtual_clock: self.virtual_clock,
            op,
            healthy,
            teach: true,
        }
    }

    /// Places a call of `out.len()` elements and runs each range through `runner`.
    fn place<T: Send>(
        &self,
        call: &Call<'_>,
        out: &mut [T],
        placement: Placement,
        runner: &Runner<'_, T>,
    ) -> Result<Decided> {
        match placement {
            Placement::Auto => auto::auto(call, out, runner),
            p => {
                let kinds: Vec<DeviceKind> = self.infos.iter().map(|i| i.kind).collect();
                let reason = self.no_gpu.as_deref().unwrap_or("no gpu in this runtime");
                let mut plan = schedule::shares(out.len(), p, &kinds, reason)?;
                let mut why = format!("{p}, as asked");
                // an unhealthy device's part goes to a healthy one, the CPU first
                let mut standby: Vec<usize> =
                    (0..kinds.len()).filter(|&d| call.healthy[d]).collect();
                standby.sort_by_key(|&d| kinds[d].is_gpu());
                for (d, _) in plan.iter_mut().filter(|(d, _)| !call.healthy[*d]) {
                    if let Some(&s) = standby.first() {
                        why.push_str(&format!(
                            "; {}'s part to {} ({} is unhealthy)",
                            self.infos[*d].name, self.infos[s].name, self.infos[*d].name
                        ));
                        *d = s;
                    }
                }
                auto::fixed(call, plan, out, runner, why)
            }
        }
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
        self.check_custom(kernel, inputs, n)?;
        let mut notes = Vec::new();
        let healthy = self.healthy(kernel, inputs, n, None, &mut notes);
        let call = self.call(kernel, inputs, None, &healthy);
        let mut output: Vec<O> = vec![O::default(); n];
        let out_bits: &mut [u32] = bytemuck::cast_slice_mut(&mut output);
        let runner = |dev: usize, range: &Range<usize>, out: &mut [u32]| {
            let ins: Vec<&[u32]> = inputs.iter().map(|x| &x[range.clone()]).collect();
            self.devices[dev].run_timed(kernel, &ins, range.start as u64, out)
        };
        let decided = self.place(&call, out_bits, placement, &runner)?;
        let report = self.report(n, placement, decided, start, None, notes);
        Ok(Run { output, report })
    }

    fn run_reduce<O: Element>(
        &self,
        kernel: &Arc<KernelInner>,
        op: Reduce,
        inputs: &[&[u32]],
        n: usize,
        placement: Placement,
    ) -> Result<Run<O>> {
        let start = Instant::now();
        let ty = kernel.output_type()?;
        let kernel = &kernel.bind();
        self.check_custom(kernel, inputs, n)?;
        let mut notes = Vec::new();
        let healthy = self.healthy(kernel, inputs, n, Some(op), &mut notes);
        let call = self.call(kernel, inputs, Some(op), &healthy);
        // a reduction writes no output: its "elements" are zero-sized
        let mut none = vec![(); n];
        let partials: Mutex<Vec<(usize, Partial)>> = Mutex::new(Vec::new());
        let runner = |dev: usize, range: &Range<usize>, _: &mut [()]| {
            let ins: Vec<&[u32]> = inputs.iter().map(|x| &x[range.clone()]).collect();
            let (part, stats, secs) = self.devices[dev].reduce_timed(
                kernel,
                op,
                &ins,
                range.start as u64,
                range.len(),
            )?;
            partials
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((range.start, part));
            Ok((stats, secs))
        };
        let decided = self.place(&call, &mut none, placement, &runner)?;
        let mut parts = partials.into_inner().unwrap_or_else(|e| e.into_inner());
        // combined in input order, so a call's result does not depend on timing
        // beyond where the ranges were cut
        parts.sort_by_key(|p| p.0);
        let value = parts
            .into_iter()
            .fold(op.identity(ty), |acc, (_, p)| acc.combine(p, op, ty));
        let report = self.report(n, placement, decided, start, Some(op), notes);
        Ok(Run {
            output: O::from_bits(value.bits()),
            report,
        })
    }

    /// For a hand-written kernel: runs both halves on a sample of this call's input
    /// on each GPU not yet checked (every GPU, every call, in debug builds) and fails
    /// on the first element where they disagree. See [`crate::kernel::custom`].
    fn check_custom(&self, kernel: &KernelInner, inputs: &[&[u32]], n: usize) -> Result<()> {
        let Some(c) = kernel.custom() else {
            return Ok(());
        };
        let ty = kernel.output_type()?;
        let windows = custom::windows(n);
        for (d, info) in self.devices.iter().zip(&self.infos) {
            let always = cfg!(debug_assertions);
            if !info.kind.is_gpu() || d.is_virtual() || (!always && c.is_verified(&info.name)) {
                continue;
            }
            for w in &windows {
                let ins: Vec<&[u32]> = inputs.iter().map(|x| &x[w.clone()]).collect();
                let mut gpu = vec![0u32; w.len()];
                d.run(kernel, &ins, w.start as u64, &mut gpu)?;
                let mut cpu = vec![0u32; w.len()];
                (c.cpu)(&ins, w.start as u64, &mut cpu);
                let rel = c.tolerance();
                if let Some(k) = (0..w.len()).find(|&k| !custom::agree(ty, cpu[k], gpu[k], rel)) {
                    return Err(Error::CustomMismatch {
                        device: info.name.clone(),
                        index: w.start + k,
                        cpu: custom::show(ty, cpu[k]),
                        gpu: custom::show(ty, gpu[k]),
                        tolerance: rel,
                    });
                }
            }
            if !windows.is_empty() {
                c.mark_verified(&info.name);
            }
        }
        Ok(())
    }

    fn report(
        &self,
        n: usize,
        placement: Placement,
        decided: Decided,
        start: Instant,
        op: Option<Reduce>,
        mut notes: Vec<String>,
    ) -> Report {
        if let Some(r) = &self.no_gpu {
            notes.push(format!("no gpu: {r}"));
        }
        if let Some(op) = op {
            notes.push(format!(
                "reduction: {op}, one partial per range, combined on the host"
            ));
        }
        notes.extend(decided.notes);
        let recoveries = self.recoveries(&decided.failures);
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
        Report {
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
            recoveries,
            fused: 1,
            steps: 1,
            gathered: 0,
        }
    }
}

/// What one piece of an array call made: on a device, or on the host.
enum Made<D, H> {
    Device(D),
    Host(H),
}

/// Two inputs of a call must have one length.
fn same_len(left: usize, right: usize) -> Result<()> {
    if left != right {
        return Err(Error::LengthMismatch { left, right });
    }
    Ok(())
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
