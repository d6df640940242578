//! The devices a test runs on, and the one rule for a GPU that is not there.
//!
//! A test that needs a GPU asks for it here. When there is none to test (no adapter, or
//! `HYBRID_BACKEND=cpu`) the test prints why and skips; with `HYBRID_REQUIRE_GPU=1` it
//! fails instead, so CI cannot pass by skipping. A conformance body takes a [`Target`]
//! and is run for every one of [`targets`]: the CPU, and the GPU when there is one.

use std::sync::OnceLock;

use hybrid::{Backend, Placement, Runtime, SimDevice};

fn env_is(var: &str, value: &str) -> bool {
    std::env::var(var)
        .map(|v| v.trim().eq_ignore_ascii_case(value))
        .unwrap_or(false)
}

/// Whether `HYBRID_BACKEND=cpu` leaves GPUs out of this run.
pub fn backend_is_cpu() -> bool {
    env_is("HYBRID_BACKEND", "cpu")
}

/// Whether `HYBRID_REQUIRE_GPU=1` makes a GPU that is not there a failure (also when
/// `HYBRID_BACKEND=cpu` is what leaves it out: the two contradict each other).
pub fn gpu_required() -> bool {
    env_is("HYBRID_REQUIRE_GPU", "1")
}

/// `Ok` with the runtime `build` makes when it has a GPU, else why there is none.
fn find_gpu(build: impl FnOnce() -> hybrid::Result<Runtime>) -> Result<Runtime, String> {
    if backend_is_cpu() {
        return Err("HYBRID_BACKEND=cpu leaves GPUs out".into());
    }
    match build() {
        Ok(rt) if rt.has_gpu() => Ok(rt),
        Ok(rt) => Err(format!(
            "no GPU adapter is usable ({})",
            rt.no_gpu_reason().unwrap_or("the runtime has no gpu")
        )),
        Err(e) => Err(format!("the runtime did not build: {e}")),
    }
}

/// The rule: `Some` when there is a GPU to test; otherwise prints why and gives `None`
/// (the test skips), or panics when `HYBRID_REQUIRE_GPU=1`.
fn skip_or_fail<T, E: std::fmt::Display>(found: Result<T, E>) -> Option<T> {
    match found {
        Ok(x) => Some(x),
        Err(why) if gpu_required() => panic!("HYBRID_REQUIRE_GPU=1 but {why}"),
        Err(why) => {
            eprintln!("skipping the gpu: {why}");
            None
        }
    }
}

/// The runtime `build` makes, when it has a GPU; `None` (or a failure) as the rule says.
/// For tests that need a GPU runtime built their own way (a transfer configuration,
/// injected faults, a cache directory).
pub fn gpu_runtime_with(build: impl FnOnce() -> hybrid::Result<Runtime>) -> Option<Runtime> {
    skip_or_fail(find_gpu(build))
}

/// A fresh default runtime with a GPU (and the CPU); `None` (or a failure) as the rule says.
pub fn gpu_runtime() -> Option<Runtime> {
    gpu_runtime_with(Runtime::new)
}

/// A fresh runtime with the CPU device only, whatever the environment says.
pub fn cpu_runtime() -> Runtime {
    Runtime::builder()
        .backend(Backend::Cpu)
        .build()
        .expect("a CPU-only runtime builds")
}

/// A runtime of two simulated devices on a virtual clock: "sim-cpu" computing
/// `cpu_rate` elements per second, and "sim-gpu" computing `gpu_rate` behind a link of
/// latency `alpha_s` and `bytes_per_s` each way.
pub fn sim_runtime(cpu_rate: f64, gpu_rate: f64, alpha_s: f64, bytes_per_s: f64) -> Runtime {
    Runtime::builder()
        .no_default_devices()
        .device(SimDevice::cpu("sim-cpu", cpu_rate))
        .device(SimDevice::gpu("sim-gpu", gpu_rate).link(alpha_s, bytes_per_s, bytes_per_s))
        .build()
        .expect("a runtime of simulated devices builds")
}

/// One CPU-only runtime shared by the tests of this binary.
pub fn shared_cpu() -> &'static Runtime {
    static CPU: OnceLock<Runtime> = OnceLock::new();
    CPU.get_or_init(cpu_runtime)
}

/// One default runtime with a GPU shared by the tests of this binary; `None` (or a
/// failure) as the rule says, with the reason printed by every test that asks.
pub fn shared_gpu() -> Option<&'static Runtime> {
    static GPU: OnceLock<Result<Runtime, String>> = OnceLock::new();
    skip_or_fail(GPU.get_or_init(|| find_gpu(Runtime::new)).as_ref())
}

/// A device kind under test: a runtime that has it and the placement that gives it the
/// work (the whole call, or a split of it with the CPU).
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub rt: &'static Runtime,
    pub placement: Placement,
}

impl Target {
    /// Whether the GPU computes some of the call.
    pub fn uses_gpu(&self) -> bool {
        self.placement != Placement::Cpu
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.placement)
    }
}

/// Every device kind: the CPU, and the GPU when there is one (skipped or failed as the
/// rule says when not).
pub fn targets() -> Vec<Target> {
    targets_with_splits(&[])
}

/// [`targets`], and the GPU splitting the call with the CPU at each fraction of `splits`.
pub fn targets_with_splits(splits: &[f64]) -> Vec<Target> {
    let mut t = vec![Target {
        rt: shared_cpu(),
        placement: Placement::Cpu,
    }];
    t.extend(gpu_targets(splits));
    t
}

/// The GPU taking the whole call, then taking each fraction of `splits` with the CPU;
/// empty when there is no GPU (skipped or failed as the rule says).
pub fn gpu_targets(splits: &[f64]) -> Vec<Target> {
    let Some(rt) = shared_gpu() else {
        return Vec::new();
    };
    std::iter::once(Placement::Gpu)
        .chain(splits.iter().map(|&f| Placement::Split(f)))
        .map(|placement| Target { rt, placement })
        .collect()
}
