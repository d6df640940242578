//! Calls of kernels of any signature ([`Kernel::new`]): the data of each argument,
//! checked against the kernel's type at compile time, then one way down (`host.rs`).
//!
//! A call's data is a tuple with one entry per argument of the kernel, in order: a
//! slice, `Vec` or array of the argument's element type, for an element-wise input
//! and for a table alike (the kernel's type says which is which). A wrong count or a
//! wrong element type does not compile. Element-wise inputs must have one length,
//! the call's; a kernel whose arguments are all tables says its length
//! ([`Runtime::call_over`]).
//!
//! Host data only, for now: the results come back as `Vec`s (one per result).

use super::{Run, Runtime};
use crate::error::{Error, Result};
use crate::kernel::reduce::Reduce;
use crate::kernel::sig::ArgKind;
use crate::kernel::{Element, InType, InTypes, Kernel, OutTypes, Table};
use crate::placement::Placement;

/// The data of one argument of type `A` (an element type, or `Table<T>`): a slice,
/// `Vec` or array of its elements.
pub trait ArgData<A> {
    /// The elements as 32-bit patterns.
    #[doc(hidden)]
    fn bits(&self) -> &[u32];
}

macro_rules! arg_data {
    ($($ty:ty),*) => {$(
        impl<T: Element> ArgData<T> for $ty {
            fn bits(&self) -> &[u32] {
                bytemuck::cast_slice(&self[..])
            }
        }
        impl<T: Element> ArgData<Table<T>> for $ty {
            fn bits(&self) -> &[u32] {
                bytemuck::cast_slice(&self[..])
            }
        }
    )*};
}

arg_data!(&[T], &Vec<T>, &mut [T], Vec<T>);

impl<T: Element, const N: usize> ArgData<T> for &[T; N] {
    fn bits(&self) -> &[u32] {
        bytemuck::cast_slice(&self[..])
    }
}

impl<T: Element, const N: usize> ArgData<Table<T>> for &[T; N] {
    fn bits(&self) -> &[u32] {
        bytemuck::cast_slice(&self[..])
    }
}

/// A call's data: a tuple with one [`ArgData`] per argument of the kernel's type `I`.
pub trait CallData<I: InTypes> {
    /// The element-wise inputs and the tables, each in order.
    #[doc(hidden)]
    fn split(&self) -> (Vec<&[u32]>, Vec<&[u32]>);
}

macro_rules! call_data {
    ($($A:ident $D:ident $k:tt),+) => {
        impl<$($A: InType, $D: ArgData<$A>),+> CallData<($($A,)+)> for ($($D,)+)
        where
            ($($A,)+): InTypes,
        {
            fn split(&self) -> (Vec<&[u32]>, Vec<&[u32]>) {
                let (mut each, mut whole) = (Vec::new(), Vec::new());
                $(match $A::KIND {
                    ArgKind::Each(_) => each.push(self.$k.bits()),
                    ArgKind::Whole(_) => whole.push(self.$k.bits()),
                })+
                (each, whole)
            }
        }
    };
}

impl CallData<()> for () {
    fn split(&self) -> (Vec<&[u32]>, Vec<&[u32]>) {
        (Vec::new(), Vec::new())
    }
}

call_data!(A0 D0 0);
call_data!(A0 D0 0, A1 D1 1);
call_data!(A0 D0 0, A1 D1 1, A2 D2 2);
call_data!(A0 D0 0, A1 D1 1, A2 D2 2, A3 D3 3);
call_data!(A0 D0 0, A1 D1 1, A2 D2 2, A3 D3 3, A4 D4 4);
call_data!(A0 D0 0, A1 D1 1, A2 D2 2, A3 D3 3, A4 D4 4, A5 D5 5);
call_data!(A0 D0 0, A1 D1 1, A2 D2 2, A3 D3 3, A4 D4 4, A5 D5 5, A6 D6 6);
call_data!(A0 D0 0, A1 D1 1, A2 D2 2, A3 D3 3, A4 D4 4, A5 D5 5, A6 D6 6, A7 D7 7);
call_data!(A0 D0 0, A1 D1 1, A2 D2 2, A3 D3 3, A4 D4 4, A5 D5 5, A6 D6 6, A7 D7 7, A8 D8 8);
call_data!(A0 D0 0, A1 D1 1, A2 D2 2, A3 D3 3, A4 D4 4, A5 D5 5, A6 D6 6, A7 D7 7, A8 D8 8, A9 D9 9);
call_data!(A0 D0 0, A1 D1 1, A2 D2 2, A3 D3 3, A4 D4 4, A5 D5 5, A6 D6 6, A7 D7 7, A8 D8 8, A9 D9 9, A10 D10 10);
call_data!(A0 D0 0, A1 D1 1, A2 D2 2, A3 D3 3, A4 D4 4, A5 D5 5, A6 D6 6, A7 D7 7, A8 D8 8, A9 D9 9, A10 D10 10, A11 D11 11);

/// The call's length: the element-wise inputs' common one (`given`, when the caller
/// said it, must agree), and every table indexable by `u32`.
fn length(each: &[&[u32]], whole: &[&[u32]], given: Option<usize>) -> Result<usize> {
    let n = match (each.first(), given) {
        (Some(x), _) => x.len(),
        (None, Some(n)) => n,
        (None, None) => {
            return Err(Error::InvalidKernel {
                reason: "every argument of this kernel is a table: say the call's length \
                         with call_over"
                    .into(),
            })
        }
    };
    for x in each {
        if x.len() != n {
            return Err(Error::LengthMismatch {
                left: n,
                right: x.len(),
            });
        }
    }
    if let Some(g) = given {
        if g != n {
            return Err(Error::LengthMismatch { left: g, right: n });
        }
    }
    if let Some(t) = whole.iter().find(|t| t.len() > u32::MAX as usize) {
        return Err(Error::BufferTooLarge {
            requested: 4 * t.len() as u64,
            max: 4 * u32::MAX as u64,
        });
    }
    Ok(n)
}

impl Runtime {
    /// Runs a kernel of any signature ([`Kernel::new`]) over host data: one entry of
    /// `data` per argument (a slice, `Vec` or array; element-wise inputs all of one
    /// length, tables of any), giving one `Vec` per result.
    ///
    /// ```
    /// use hybrid::{Expr, Kernel, Placement, Runtime, Table};
    /// # fn main() -> hybrid::Result<()> {
    /// let rt = Runtime::new()?;
    /// // each x against every centroid: the nearest one's index and distance
    /// let nearest = Kernel::new(|(x, c): (Expr<f32>, Table<f32>)| {
    ///     let (best, d) = hybrid::fold_with(c.len(), (Expr::constant(0u32), Expr::constant(f32::MAX)),
    ///         |(best, d), j| {
    ///             let dj = (x.clone() - c.at(j.clone())).abs();
    ///             let closer = dj.lt(d.clone());
    ///             (closer.select(j, best), closer.select(dj, d))
    ///         });
    ///     (best, d)
    /// });
    /// let xs = [0.1f32, 2.2, 4.9];
    /// let centroids = [0.0f32, 2.0, 5.0];
    /// let (label, dist) = rt.call(&nearest, (&xs, &centroids), Placement::Auto)?.output;
    /// assert_eq!(label, [0, 1, 2]);
    /// assert!((dist[1] - 0.2).abs() < 1e-6);
    /// # Ok(())
    /// # }
    /// ```
    pub fn call<I: InTypes, O: OutTypes, D: CallData<I>>(
        &self,
        kernel: &Kernel<I, O>,
        data: D,
        placement: Placement,
    ) -> Result<Run<O::Host>> {
        self.call_len(None, kernel, data, placement)
    }

    /// [`call`](Self::call) over `n` elements: for a kernel whose arguments are all
    /// tables (a blur reading an image around each pixel), which has no element-wise
    /// input to take the length from. With element-wise inputs, `n` must be theirs.
    pub fn call_over<I: InTypes, O: OutTypes, D: CallData<I>>(
        &self,
        n: usize,
        kernel: &Kernel<I, O>,
        data: D,
        placement: Placement,
    ) -> Result<Run<O::Host>> {
        self.call_len(Some(n), kernel, data, placement)
    }

    fn call_len<I: InTypes, O: OutTypes, D: CallData<I>>(
        &self,
        given: Option<usize>,
        kernel: &Kernel<I, O>,
        data: D,
        placement: Placement,
    ) -> Result<Run<O::Host>> {
        let (each, whole) = data.split();
        let n = length(&each, &whole, given)?;
        let run = self.map_host::<O::Row>(kernel.inner(), &each, &whole, n, placement, I::KINDS)?;
        Ok(Run {
            output: O::from_rows(run.output),
            report: run.report,
        })
    }

    /// Runs a kernel of any signature with one result over host data and combines
    /// the values with `op` (see [`Reduce`]), in one pass: a dot product of inputs of
    /// two types, a sum over a kernel of three inputs, a reduction over a table read.
    pub fn call_reduce<I: InTypes, O: Element, D: CallData<I>>(
        &self,
        kernel: &Kernel<I, O>,
        data: D,
        op: Reduce,
        placement: Placement,
    ) -> Result<Run<O>> {
        let (each, whole) = data.split();
        let n = length(&each, &whole, None)?;
        let run = self.reduce_host(kernel.inner(), op, &each, &whole, n, placement, I::KINDS)?;
        Ok(Run {
            output: O::from_bits(run.output),
            report: run.report,
        })
    }
}
