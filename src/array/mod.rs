//! Arrays that stay where they were computed, and lazy chains that fuse.
//!
//! An [`Array`] is a handle to `len` elements (32-bit, or 64-bit as two words each,
//! low first) cut into parts; each part has up to two
//! copies, one in host memory and one in a GPU's memory, and a coherence record per
//! copy in the style of StarPU's per-handle MSI states ([`State`]):
//!
//! - `Modified`: the only valid copy (the other location has none, or a stale one);
//! - `Shared`: valid, and the other location holds a valid copy too;
//! - `Invalid`: no valid copy here.
//!
//! What a user can rely on:
//!
//! - **Arrays are values.** Every operation returns a new array and never writes its
//!   inputs, so a part on a GPU is never stale.
//! - **Parts follow the work.** A map's output has one part per range a device
//!   computed, held where it was computed; the next operation over the same partition
//!   on the same devices moves nothing.
//! - **Moving is explicit in the report.** A part that must run where its data is not
//!   is read back (the host copy is kept) and sent; every byte is counted in that
//!   share's `bytes_to_device` / `bytes_from_device`.
//! - **Kernels of any signature** ([`Runtime::call_arrays`](crate::Runtime::call_arrays))
//!   take arrays as element-wise inputs and as tables, and give one array per result,
//!   each part where it was computed. An array read as a table is bound on a GPU
//!   where its parts are: a part the GPU lacks is sent once and kept by the array
//!   (`Shared`), so the next call that reads it moves nothing.
//! - **Auto and residency.** With data only on a GPU, `Auto` keeps the partition
//!   unless the throughput models predict moving it at least 20% faster; the report's
//!   decision says which and why.
//! - **Fusion.** [`Array::lazy`] starts a chain of element-wise kernels that runs as
//!   one kernel (intermediates never written) when evaluated: [`Lazy::eval`],
//!   [`Lazy::to_vec`] or [`Lazy::reduce`]; [`Lazy::fuse`]`(false)` runs the stages one
//!   after another instead. A stage takes the chain's value as its argument 0:
//!   [`Lazy::map`] takes a one-input kernel; [`Lazy::zip`] a `Kernel<(T, U), O>` and
//!   an array of `U`s; [`Lazy::zip_n`] a `Kernel<(T, A, B, ..), O>` and a tuple of
//!   arrays `(&a, &b, ..)` (1 to 11, any element types). The fused kernel reads the
//!   source and every stage's arrays in one pass; each array must have the source's
//!   length ([`Error::LengthMismatch`](crate::Error::LengthMismatch) when evaluated).
//!   A stage cannot read a [`Table`](crate::Table) or give several results: such a
//!   kernel's type is not one a stage takes (run it with
//!   [`Runtime::call`](crate::Runtime::call)). Hand-written kernels are opaque to
//!   fusion: a chain with one runs stage by stage.
//! - **Failure.** A device that fails mid-run has its range redone elsewhere; a device
//!   lost with the only copy of a part loses it, and the call returns its error.
//! - **Memory.** Dropping an array (the last clone of a part) gives its GPU buffers
//!   back to the device's pool.
//!
//! How it is built, and why, is in `src/array/README.md` beside the code.

mod coherence;
mod handle;
mod input;
mod lazy;
mod part;

pub use coherence::{Coherence, State};
pub use handle::{Array, PartInfo};
pub use input::Input;
#[doc(hidden)]
pub use input::{Mapped, Source};
pub use lazy::{Lazy, ZipArrays};

pub(crate) use part::{pieces, ArrayRef, HostData, Part, PartAt};
