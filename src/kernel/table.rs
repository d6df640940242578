//! `Table<T>`: a whole-array input, read at any index the kernel computes.
//!
//! An element-wise input gives each element its own value (`Expr<T>`); a table gives
//! every element the whole array: n-body reads all bodies, matrix multiply a row and a
//! column, k-means every centroid, a blur its neighbours. `table.at(j)` is element `j`.
//!
//! **Out-of-range reads have one meaning on every device**: `at` clamps the index to
//! the nearest element (`-3` reads element 0, `len + 5` the last), `at_or` gives a
//! default instead, and an empty table reads as the default (`at`: zero). WGSL's robust
//! buffer access does not give one answer across drivers (it may return any element
//! of the buffer, or zero), so the checks are generated, never left to the driver;
//! no device ever reads outside the data it was given.
//!
//! An index is `i32` or `u32` (any other type is a compile error). Reads the library
//! can bound to a fixed distance from the element's own index (`img.at(i + width)`)
//! move only a halo around each device's share; others move the whole table once per
//! device and call (see `kernel::range`).

use std::marker::PhantomData;

use super::expr::{node, typed, Expr, Node};
use super::scalar::{Integer, ScalarType, Value};

/// A whole-array input of a kernel: any element can be read, at an index computed in
/// the kernel. Made by [`Kernel::new`](crate::Kernel::new) for an argument declared as
/// `Table<T>`.
pub struct Table<T> {
    slot: u8,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Table<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Table<T> {}

impl<T> std::fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Table({})", self.slot)
    }
}

/// The types a table may be indexed with: `i32` and `u32`.
pub trait TableIndex: Integer {}
impl TableIndex for i32 {}
impl TableIndex for u32 {}

impl<T: Value> Table<T> {
    pub(crate) fn new(slot: u8) -> Self {
        Table {
            slot,
            _t: PhantomData,
        }
    }

    /// Element `i`; an index outside the table reads the nearest element (`i < 0`
    /// the first, `i >= len` the last), and an empty table reads zero.
    ///
    /// The index is an integer expression; a float index does not compile:
    ///
    /// ```compile_fail
    /// use hybrid::{Expr, Kernel, Table};
    /// let k = Kernel::new(|(x, t): (Expr<f32>, Table<f32>)| t.at(x));
    /// ```
    pub fn at<I: TableIndex>(&self, i: impl Into<Expr<I>>) -> Expr<T> {
        self.load(i.into(), None)
    }

    /// Element `i`, or `default` when `i` is outside the table (or it is empty).
    pub fn at_or<I: TableIndex>(
        &self,
        i: impl Into<Expr<I>>,
        default: impl Into<Expr<T>>,
    ) -> Expr<T> {
        self.load(i.into(), Some(default.into()))
    }

    /// The number of elements, `u32`.
    pub fn len(&self) -> Expr<u32> {
        typed(node(ScalarType::U32, Node::TableLen(self.slot)))
    }

    fn load<I: TableIndex>(&self, i: Expr<I>, default: Option<Expr<T>>) -> Expr<T> {
        typed(node(
            T::TYPE,
            Node::Load {
                table: self.slot,
                index: i.into_node(),
                default: default.map(Expr::into_node),
            },
        ))
    }
}
