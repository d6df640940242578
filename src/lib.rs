//! # hybrid
//!
//! One data-parallel kernel, written once, run on the CPU cores (rayon), on the GPUs
//! (wgpu compute shaders), or split across both; the PCI bus between them is treated as
//! what it is, a network link with a latency and a bandwidth, and every call says what
//! it moved and how long each stage took.
//!
//! ```
//! use hybrid::{Expr, Kernel, Placement, Runtime};
//!
//! # fn main() -> hybrid::Result<()> {
//! let xs: Vec<f32> = (0..100_000).map(|i| i as f32 * 1e-3).collect();
//! let k = Kernel::map(|x: Expr<f32>| (x * 2.0 + 1.0).sqrt());
//!
//! let ys = hybrid::map(&xs, &k)?; // the global runtime, Placement::Auto
//! assert_eq!(ys.len(), xs.len());
//!
//! let rt = Runtime::builder().backend(hybrid::Backend::Cpu).build()?;
//! let run = rt.map(&xs, &k, Placement::Cpu)?;
//! assert_eq!(run.output, ys);
//! println!("{}", run.report);
//! # Ok(())
//! # }
//! ```
//!
//! ## Map of the crate
//!
//! - Kernels: [`Kernel::map`], [`Kernel::map2`] over symbolic [`Expr`] values, with
//!   [`select`], [`index`] and [`fold`] (a loop with a constant trip count).
//! - Parameters: a [`Param`] is a value a kernel reads that can change between calls
//!   without recompiling its shader (`a.expr() * x + y`, then `a.set(3.0)`); each call
//!   reads it once, at its start. [`Runtime::compilations`] counts the pipelines
//!   compiled.
//! - Entry points: [`map`] and [`map2`] on the global runtime; [`Runtime::map`] and
//!   [`Runtime::map2`] with a [`Placement`], returning a [`Run`] with the output and its
//!   [`Report`].
//! - Devices: [`Runtime::devices`] lists them ([`DeviceInfo`]).
//! - Links: [`Runtime::links`] gives each GPU's fitted [`Link`]; [`Share::transfer`]
//!   each call's [`TransferStats`], measured beside predicted.
//! - Errors: one enum, [`Error`].
//!
//! ## Semantics
//!
//! A kernel means what WGSL says it means, on every device: integer arithmetic wraps,
//! `x / 0 == x` and `x % 0 == 0` for integers, shift amounts are masked to `0..=31`,
//! float-to-integer casts saturate (NaN gives 0), `round` ties to even. Float results
//! may differ between devices by rounding only (a GPU may fuse `a * b + c`, and its
//! `sin`, `exp`, ... are less exact than the CPU's).
//!
//! ## Environment
//!
//! - `HYBRID_BACKEND`: `cpu` (CPU only), `gpu` (GPUs only), unset or `all`.
//! - `HYBRID_REQUIRE_GPU=1`: the test suite fails instead of skipping when no GPU
//!   adapter exists.
//! - `HYBRID_CACHE_DIR`: where link calibrations are stored (default: the user's cache
//!   directory).
//! - `HYBRID_CHUNK_BYTES`, `HYBRID_RING`: override the transfer layer's chunk size
//!   (bytes per buffer) and ring depth ([`TransferConfig`]).
//!
//! ## Features
//!
//! - `gpu` (default): the wgpu backend. Without it the crate has no wgpu dependency and
//!   runs on the CPU.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod cache;
mod device;
mod error;
mod kernel;
mod report;
mod runtime;
mod schedule;
mod transfer;

pub use device::sim::SimDevice;
pub use device::{DeviceInfo, DeviceKind};
pub use error::{Error, Result};
pub use kernel::{
    fold, index, select, Element, Expr, Integer, Kernel, Numeric, Param, Scalar, ScalarType,
};
pub use report::{Forecast, Report, Share};
pub use runtime::{Backend, Run, Runtime, RuntimeBuilder};
pub use schedule::Placement;
pub use transfer::{Calibration, Link, LinkDir, TransferConfig, TransferStats};

/// Applies `kernel` to every element of `xs` on the global runtime, wherever is best
/// ([`Placement::Auto`]). With no GPU this runs on the CPU; it is never an error.
pub fn map<I: Element, O: Element>(xs: &[I], kernel: &Kernel<I, O>) -> Result<Vec<O>> {
    Ok(Runtime::global()?.map(xs, kernel, Placement::Auto)?.output)
}

/// Applies a two-input `kernel` to every pair `(a[i], b[i])` on the global runtime.
pub fn map2<I: Element, O: Element>(a: &[I], b: &[I], kernel: &Kernel<I, O>) -> Result<Vec<O>> {
    Ok(Runtime::global()?
        .map2(a, b, kernel, Placement::Auto)?
        .output)
}

/// Internals exposed for the benches only; not part of the API.
#[doc(hidden)]
pub mod __bench {
    /// The split solver on synthetic devices: one `(ready_s, fixed_s, per_elem_s,
    /// fill_elems, fill_extra_s)` per device; returns each device's share of `n`.
    pub fn solve(n: usize, devices: &[(f64, f64, f64, f64, f64)]) -> Vec<usize> {
        let costs: Vec<crate::schedule::plan::Cost> = devices
            .iter()
            .map(
                |&(ready_s, fixed_s, per_elem_s, fill_elems, fill_extra_s)| {
                    crate::schedule::plan::Cost {
                        ready_s,
                        fixed_s,
                        per_elem_s,
                        fill_elems,
                        fill_extra_s,
                    }
                },
            )
            .collect();
        crate::schedule::plan::solve(n, &costs)
    }
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
