//! `Param<T>`: a value a kernel reads that can change between calls without
//! recompiling anything.
//!
//! A `Param` is a shared cell (an `Arc` around the value's bit pattern, 64 bits, and a
//! process-unique id). A kernel's closure captures it with [`Param::expr`]; the
//! expression tree keeps the cell, not the value. Each call reads every parameter
//! once, at its start (a snapshot), so all devices of a split see the same value:
//! - on the GPU the values go into the kernel's uniform block after its 4-word header,
//!   so the generated WGSL (and with it [`Kernel::id`](crate::Kernel::id) and the
//!   pipeline cache key) never depends on them;
//! - on the CPU they are bound into the evaluation plan as literals, as if they were
//!   constants; each kernel keeps its last few plans keyed by the values, so a repeated
//!   value costs a lookup and a new one one plan build: a few microseconds (figures
//!   in `KernelDef::plan`).
//!
//! Deviation from the issue's sketch, none in substance: the cell holds the value's
//! bits and an id only; the type lives in the expression node, as for every value.
//!
//! Imports go one way: `expr` uses this module (the cell), never the reverse. The
//! method that turns a `Param` into an `Expr` ([`Param::expr`]) is therefore written
//! in `expr.rs`, beside the node it makes.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::scalar::Numeric;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The shared cell behind a [`Param`].
#[derive(Debug)]
pub(crate) struct ParamCell {
    /// Process-unique: two cells are the same parameter exactly when their ids are equal.
    pub(crate) id: u64,
    bits: AtomicU64,
}

impl ParamCell {
    /// The current value's bit pattern.
    pub(crate) fn bits(&self) -> u64 {
        self.bits.load(Ordering::Acquire)
    }
}

/// A parameter cell as the program holds it: compared and hashed by identity.
#[derive(Debug, Clone)]
pub(crate) struct ParamRef(pub(crate) Arc<ParamCell>);

impl PartialEq for ParamRef {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for ParamRef {}

impl std::hash::Hash for ParamRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.id.hash(state);
    }
}

/// A kernel parameter: a value of type `T` (`f32`, `i32` or `u32`) that a kernel reads
/// like a constant but that can be changed between calls without recompiling the
/// kernel's shader.
///
/// A clone shares the value: setting one sets all. A kernel built from a closure that
/// uses [`expr`](Self::expr) reads the value current when each call starts.
///
/// ```
/// use hybrid::{Backend, Expr, Kernel, Param, Placement, Runtime};
/// # fn main() -> hybrid::Result<()> {
/// let a = Param::new(2.0f32);
/// let saxpy = Kernel::map2(|x: Expr<f32>, y: Expr<f32>| a.expr() * x + y);
/// let rt = Runtime::builder().backend(Backend::Cpu).build()?;
/// let (xs, ys) = (vec![1.0f32, 2.0], vec![10.0f32, 20.0]);
/// assert_eq!(rt.map2(&xs, &ys, &saxpy, Placement::Auto)?.output, [12.0, 24.0]);
/// a.set(3.0);
/// assert_eq!(rt.map2(&xs, &ys, &saxpy, Placement::Auto)?.output, [13.0, 26.0]);
/// # Ok(())
/// # }
/// ```
pub struct Param<T> {
    cell: Arc<ParamCell>,
    _t: PhantomData<fn() -> T>,
}

impl<T: Numeric> Param<T> {
    /// A new parameter with the value `value`.
    pub fn new(value: T) -> Param<T> {
        Param {
            cell: Arc::new(ParamCell {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                bits: AtomicU64::new(value.bits()),
            }),
            _t: PhantomData,
        }
    }

    /// Sets the value; calls that start afterwards use it. A call already running
    /// keeps the value it started with.
    pub fn set(&self, value: T) {
        self.cell.bits.store(value.bits(), Ordering::Release);
    }

    /// The current value.
    pub fn get(&self) -> T {
        T::from_bits64(self.cell.bits())
    }

    /// The shared cell, for the expression tree ([`Param::expr`], in `expr.rs`).
    pub(crate) fn cell(&self) -> &Arc<ParamCell> {
        &self.cell
    }
}

impl<T> Clone for Param<T> {
    fn clone(&self) -> Self {
        Param {
            cell: self.cell.clone(),
            _t: PhantomData,
        }
    }
}

impl<T: Numeric> fmt::Debug for Param<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Param")
            .field("id", &self.cell.id)
            .field("value", &self.get())
            .finish()
    }
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Param<f32>>();
    assert_send_sync::<Param<i32>>();
    assert_send_sync::<Param<u32>>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_value() {
        let a = Param::new(1.5f32);
        let b = a.clone();
        b.set(-2.0);
        assert_eq!(a.get(), -2.0);
        let i = Param::new(-7i32);
        assert_eq!(i.get(), -7);
        i.set(i32::MIN);
        assert_eq!(i.get(), i32::MIN);
        let u = Param::new(u32::MAX);
        assert_eq!(u.get(), u32::MAX);
        assert_ne!(a.cell.id, i.cell.id);
    }
}
