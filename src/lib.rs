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
//! - Reductions (a map and a combination in one pass): [`reduce`], [`reduce2`] and
//!   [`sum`]; [`Runtime::reduce`], [`Runtime::reduce2`], [`Runtime::sum`]; [`Reduce`]
//!   says what each operation means and how exact it is.
//! - Arrays that stay where they were computed: [`Array`], [`Runtime::map_array`],
//!   [`Runtime::map2_array`], [`Runtime::reduce_array`]; lazy chains that fuse into
//!   one kernel: [`Array::lazy`], [`Lazy`]. The model (per-copy MSI states, `Auto`'s
//!   keep-or-move choice) is in [`array`](mod@array).
//! - Devices: [`Runtime::devices`] lists them ([`DeviceInfo`]).
//! - Links: [`Runtime::links`] gives each GPU's fitted [`Link`]; [`Share::transfer`]
//!   each call's [`TransferStats`], measured beside predicted.
//! - Clusters (feature `mpi`): `cluster::Cluster` places one call across the ranks
//!   of an MPI job, each with its own runtime, by each network link's fitted latency
//!   and bandwidth and each node's measured throughput.
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
//! ## What the type system rejects
//!
//! An operation a type does not support is not a run-time error: the kernel does not
//! compile. Each block below fails to build, and its neighbour with the right type
//! builds.
//!
//! ```
//! use hybrid::{Expr, Kernel};
//! let _ok = Kernel::map(|x: Expr<f32>| x.sqrt());
//! let _ok = Kernel::map(|x: Expr<u32>| (x << 3u32) & 0xffu32);
//! let _ok = Kernel::map(|x: Expr<i32>| -x);
//! let _ok = Kernel::map(|x: Expr<i32>| x.cast::<f32>() + 1.0);
//! ```
//!
//! `sqrt` (like `sin`, `exp`, `ln`, `floor`, `pow`) is for `f32` only:
//!
//! ```compile_fail,E0599
//! use hybrid::{Expr, Kernel};
//! let _ = Kernel::map(|x: Expr<i32>| x.sqrt());
//! ```
//!
//! Shifts and bitwise operations are for integers only:
//!
//! ```compile_fail,E0369
//! use hybrid::{Expr, Kernel};
//! let _ = Kernel::map(|x: Expr<f32>| x << 3u32);
//! ```
//!
//! ```compile_fail,E0369
//! use hybrid::{Expr, Kernel};
//! let _ = Kernel::map(|x: Expr<f32>| x & 1.0);
//! ```
//!
//! Negation is for signed types only:
//!
//! ```compile_fail,E0600
//! use hybrid::{Expr, Kernel};
//! let _ = Kernel::map(|x: Expr<u32>| -x);
//! ```
//!
//! Operands of different types need an explicit `cast`:
//!
//! ```compile_fail,E0308
//! use hybrid::{Expr, Kernel};
//! let _ = Kernel::map(|x: Expr<i32>| x + 1.0f32);
//! ```
//!
//! A parameter has one element type; a kernel of another type must `cast` what it
//! reads:
//!
//! ```compile_fail,E0308
//! use hybrid::{Expr, Kernel, Param};
//! let scale = Param::new(2u32);
//! let _ = Kernel::map(move |x: Expr<f32>| x * scale.expr());
//! ```
//!
//! Element types are `f32`, `i32` and `u32` only:
//!
//! ```compile_fail,E0277
//! use hybrid::{Expr, Kernel};
//! let _ = Kernel::map(|x: Expr<f64>| x * 2.0);
//! ```
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
//! - `mpi`: `cluster`, one call spread across the nodes of an MPI job (rsmpi; needs
//!   an MPI library and libclang to build). Off by default.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

// The floors, top to bottom: each module imports only from floors below it (or its
// own); `tests/layers.rs` checks it and src/README.md draws it.
pub mod array; //   arrays and lazy chains
mod cache; //       where calibration and models are stored
#[cfg(feature = "mpi")]
pub mod cluster; //  one call across the nodes of an MPI job
mod cost; //        the cost model
mod device; //      cpu, gpu, simulated
mod error; //       the error type
mod kernel; //      kernels: expressions, WGSL, the CPU evaluator
mod placement; //   what a caller asks for
mod report; //      the per-call receipt
mod runtime; //     entry points, health, receipts
mod schedule; //    placement, Auto, execution
mod sync;
mod transfer; //    links, staging, calibration //        locks that survive a panic

pub use array::{Array, Coherence, Input, Lazy, PartInfo, State, ZipArrays};
pub use device::sim::SimDevice;
#[doc(hidden)]
pub use device::DeviceResources;
pub use device::{DeviceInfo, DeviceKind};
pub use error::{Error, Result};
pub use kernel::{
    fold, fold_while, fold_with, index, select, Arg, Args, Carry, Element, Expr, Float, InType,
    InTypes, Integer, Kernel, Numeric, OutTypes, Param, Reduce, Results, Scalar, ScalarType, Table,
    TableIndex, Value,
};
pub use placement::Placement;
pub use report::{Forecast, InputMove, Recovery, Report, Sent, Share};
#[doc(hidden)]
pub use runtime::ArgView;
pub use runtime::{ArgData, Backend, CallData, ResultArrays, Run, Runtime, RuntimeBuilder};
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

/// Applies `kernel` to every element of `xs` and combines the values with `op`, in one
/// pass, on the global runtime ([`Placement::Auto`]). See [`Reduce`] for the meaning
/// of each operation, the float error bound and the result of an empty input.
///
/// ```
/// use hybrid::{Expr, Kernel, Reduce};
/// # fn main() -> hybrid::Result<()> {
/// let xs = [1.0f32, 2.0, 3.0];
/// let sumsq: f32 = hybrid::reduce(&xs, &Kernel::map(|x: Expr<f32>| x.clone() * x), Reduce::Sum)?;
/// assert_eq!(sumsq, 14.0);
/// # Ok(())
/// # }
/// ```
pub fn reduce<I: Element, O: Element>(xs: &[I], kernel: &Kernel<I, O>, op: Reduce) -> Result<O> {
    Ok(Runtime::global()?
        .reduce(xs, kernel, op, Placement::Auto)?
        .output)
}

/// Applies a two-input `kernel` to every pair `(a[i], b[i])` and combines the values
/// with `op` on the global runtime: a dot product is `Kernel::map2(|a, b| a * b)` with
/// [`Reduce::Sum`].
pub fn reduce2<I: Element, O: Element>(
    a: &[I],
    b: &[I],
    kernel: &Kernel<I, O>,
    op: Reduce,
) -> Result<O> {
    Ok(Runtime::global()?
        .reduce2(a, b, kernel, op, Placement::Auto)?
        .output)
}

/// Runs a kernel of any signature ([`Kernel::new`]: several inputs of their own types,
/// tables, several results) over host data or arrays on the global runtime, wherever
/// is best ([`Placement::Auto`]): one entry of `data` per argument, one `Vec` per
/// result. See [`Runtime::call`].
pub fn call<I: InTypes, O: ResultArrays, D: CallData<I>>(
    kernel: &Kernel<I, O>,
    data: D,
) -> Result<O::Host> {
    Ok(Runtime::global()?
        .call(kernel, data, Placement::Auto)?
        .output)
}

/// [`call`] over `n` elements, for a kernel whose arguments are all tables. See
/// [`Runtime::call_over`].
pub fn call_over<I: InTypes, O: ResultArrays, D: CallData<I>>(
    n: usize,
    kernel: &Kernel<I, O>,
    data: D,
) -> Result<O::Host> {
    Ok(Runtime::global()?
        .call_over(n, kernel, data, Placement::Auto)?
        .output)
}

/// [`call`] with each result an [`Array`] left where it was computed, on the global
/// runtime. See [`Runtime::call_arrays`].
pub fn call_arrays<I: InTypes, O: ResultArrays, D: CallData<I>>(
    kernel: &Kernel<I, O>,
    data: D,
) -> Result<O::Arrays> {
    Ok(Runtime::global()?
        .call_arrays(kernel, data, Placement::Auto)?
        .output)
}

/// A kernel of any signature with one result, its values combined with `op`, on the
/// global runtime. See [`Runtime::call_reduce`].
pub fn call_reduce<I: InTypes, O: Element, D: CallData<I>>(
    kernel: &Kernel<I, O>,
    data: D,
    op: Reduce,
) -> Result<O> {
    Ok(Runtime::global()?
        .call_reduce(kernel, data, op, Placement::Auto)?
        .output)
}

/// The sum of `xs` on the global runtime: wrapping for integers, accurate to the
/// bound [`Reduce`] states for `f32`.
pub fn sum<T: Element>(xs: &[T]) -> Result<T> {
    Ok(Runtime::global()?.sum(xs, Placement::Auto)?.output)
}

/// Internals exposed for the benches only; not part of the API.
#[doc(hidden)]
pub mod __bench {
    /// The split solver on synthetic devices: one `(ready_s, fixed_s, per_elem_s,
    /// fill_elems, fill_extra_s)` per device; returns each device's share of `n`.
    pub fn solve(n: usize, devices: &[(f64, f64, f64, f64, f64)]) -> Vec<usize> {
        let costs: Vec<crate::cost::Cost> = devices
            .iter()
            .map(
                |&(ready_s, fixed_s, per_elem_s, fill_elems, fill_extra_s)| crate::cost::Cost {
                    ready_s,
                    fixed_s,
                    per_elem_s,
                    fill_elems,
                    fill_extra_s,
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
