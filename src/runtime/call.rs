//! Calls of kernels of any signature ([`Kernel::new`]): the data of each argument,
//! checked against the kernel's type at compile time, then one way down: host data to
//! `host.rs`, arrays to `arrays.rs`.
//!
//! A call's data is a tuple with one entry per argument of the kernel, in order: a
//! slice, `Vec`, array or [`Array`] of the argument's element type, for an
//! element-wise input and for a table alike (the kernel's type says which is which).
//! A wrong count or a wrong element type does not compile. Element-wise inputs must
//! have one length, the call's; a kernel whose arguments are all tables says its
//! length ([`Runtime::call_over`]).
//!
//! Design choices:
//!
//! - **Results as `Vec`s or as arrays, chosen by the method.** [`Runtime::call`] gives
//!   one `Vec` per result (what an array among the inputs computed on a device is read
//!   back, and the report counts it); [`Runtime::call_arrays`] gives one [`Array`] per
//!   result, each left where it was computed, so the next call over them moves
//!   nothing. Rust cannot pick the result's form from a mix of argument types without
//!   a trait per combination; a method per form says it at the call.
//! - **Host data beside arrays** (element-wise) is made an array first (copied): the
//!   call then runs over arrays. A table of host data stays host data.
//! - **A table that is an array** stays where its parts are: a GPU binds the parts it
//!   already holds, sends the others once and keeps them with the array (n-body
//!   stepping on a GPU sends its positions once, then never again); the CPU reads it on
//!   the host.

use super::arrays::TableSrc;
use super::{Run, Runtime};
use crate::array::{Array, ArrayRef, Part};
use crate::error::{Error, Result};
use crate::kernel::reduce::Reduce;
use crate::kernel::sig::ArgKind;
use crate::kernel::{InType, InTypes, Kernel, OutTypes, Table, Value};
use crate::placement::Placement;

/// One argument's data, as the runtime sees it.
#[doc(hidden)]
pub struct ArgView<'a>(View<'a>);

enum View<'a> {
    /// Host data as 32-bit words, and the words per element (2 for a 64-bit type).
    Host(&'a [u32], usize),
    Array(ArrayRef<'a>),
}

impl<'a> ArgView<'a> {
    /// Host data's words and words per element (`None` for an array).
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn host_words(&self) -> Option<(&'a [u32], usize)> {
        match self.0 {
            View::Host(d, w) => Some((d, w)),
            View::Array(_) => None,
        }
    }
}

impl View<'_> {
    /// Elements.
    fn len(&self) -> usize {
        match self {
            View::Host(d, w) => d.len() / w,
            View::Array(a) => a.len,
        }
    }
}

/// Host data of `T` as the runtime sees it.
fn host<T: bytemuck::Pod>(d: &[T]) -> ArgView<'_> {
    ArgView(View::Host(
        bytemuck::cast_slice(d),
        std::mem::size_of::<T>() / 4,
    ))
}

/// The data of one argument of type `A` (an element type, or `Table<T>`): a slice,
/// `Vec` or array of its elements, or an [`Array`].
pub trait ArgData<A> {
    /// The elements as the runtime sees them.
    #[doc(hidden)]
    fn view(&self) -> ArgView<'_>;
}

macro_rules! arg_data {
    ($($ty:ty),*) => {$(
        impl<T: Value> ArgData<T> for $ty {
            fn view(&self) -> ArgView<'_> {
                host(&self[..])
            }
        }
        impl<T: Value> ArgData<Table<T>> for $ty {
            fn view(&self) -> ArgView<'_> {
                host(&self[..])
            }
        }
    )*};
}

arg_data!(&[T], &Vec<T>, &mut [T], Vec<T>);

impl<T: Value, const N: usize> ArgData<T> for &[T; N] {
    fn view(&self) -> ArgView<'_> {
        host(&self[..])
    }
}

impl<T: Value, const N: usize> ArgData<Table<T>> for &[T; N] {
    fn view(&self) -> ArgView<'_> {
        host(&self[..])
    }
}

impl<T: Value> ArgData<T> for &Array<T> {
    fn view(&self) -> ArgView<'_> {
        ArgView(View::Array(Array::view(self)))
    }
}

impl<T: Value> ArgData<Table<T>> for &Array<T> {
    fn view(&self) -> ArgView<'_> {
        ArgView(View::Array(Array::view(self)))
    }
}

/// A call's data: a tuple with one [`ArgData`] per argument of the kernel's type `I`.
pub trait CallData<I: InTypes> {
    /// The element-wise inputs and the tables, each in order.
    #[doc(hidden)]
    fn split(&self) -> (Vec<ArgView<'_>>, Vec<ArgView<'_>>);
}

macro_rules! call_data {
    ($($A:ident $D:ident $k:tt),+) => {
        impl<$($A: InType, $D: ArgData<$A>),+> CallData<($($A,)+)> for ($($D,)+)
        where
            ($($A,)+): InTypes,
        {
            fn split(&self) -> (Vec<ArgView<'_>>, Vec<ArgView<'_>>) {
                let (mut each, mut whole) = (Vec::new(), Vec::new());
                $(match $A::KIND {
                    ArgKind::Each(_) => each.push(self.$k.view()),
                    ArgKind::Whole(_) => whole.push(self.$k.view()),
                })+
                (each, whole)
            }
        }
    };
}

impl CallData<()> for () {
    fn split(&self) -> (Vec<ArgView<'_>>, Vec<ArgView<'_>>) {
        (Vec::new(), Vec::new())
    }
}

/// A kernel's results as arrays ([`Runtime::call_arrays`]) or gathered on the host:
/// `Array<T>` for one result, a tuple of arrays for a tuple. Implemented for every
/// kernel's result types.
pub trait ResultArrays: OutTypes {
    /// One [`Array`] per result.
    type Arrays;
    #[doc(hidden)]
    fn from_arrays(results: Vec<Array<u32>>) -> Self::Arrays;
    #[doc(hidden)]
    fn from_columns(results: Vec<Vec<u32>>) -> Self::Host;
}

impl<T: Value> ResultArrays for T {
    type Arrays = Array<T>;
    fn from_arrays(results: Vec<Array<u32>>) -> Array<T> {
        results
            .into_iter()
            .next()
            .unwrap_or_else(|| Array::from_vec(Vec::new()))
            .retype()
    }
    fn from_columns(results: Vec<Vec<u32>>) -> Vec<T> {
        column(results.into_iter().next())
    }
}

/// One result's values from their bit patterns, two words (low first) for a 64-bit
/// type (none: empty).
fn column<T: Value>(c: Option<Vec<u32>>) -> Vec<T> {
    let words = c.unwrap_or_default();
    match T::TYPE.is_wide() {
        true => words
            .chunks_exact(2)
            .map(|w| T::from_bits64(w[0] as u64 | (w[1] as u64) << 32))
            .collect(),
        false => words
            .into_iter()
            .map(|w| T::from_bits64(w as u64))
            .collect(),
    }
}

macro_rules! result_arrays {
    ($($T:ident),+) => {
        impl<$($T: Value),+> ResultArrays for ($($T,)+) {
            type Arrays = ($(Array<$T>,)+);
            fn from_arrays(results: Vec<Array<u32>>) -> Self::Arrays {
                let mut it = results.into_iter();
                ($(it.next().unwrap_or_else(|| Array::from_vec(Vec::new())).retype::<$T>(),)+)
            }
            fn from_columns(results: Vec<Vec<u32>>) -> Self::Host {
                let mut it = results.into_iter();
                ($(column::<$T>(it.next()),)+)
            }
        }
    };
}

result_arrays!(A);
result_arrays!(A, B);
result_arrays!(A, B, C);
result_arrays!(A, B, C, D);
result_arrays!(A, B, C, D, E);
result_arrays!(A, B, C, D, E, F);
result_arrays!(A, B, C, D, E, F, G);
result_arrays!(A, B, C, D, E, F, G, H);

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
fn length(each: &[ArgView<'_>], whole: &[ArgView<'_>], given: Option<usize>) -> Result<usize> {
    let n = match (each.first(), given) {
        (Some(x), _) => x.0.len(),
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
        if x.0.len() != n {
            return Err(Error::LengthMismatch {
                left: n,
                right: x.0.len(),
            });
        }
    }
    if let Some(g) = given {
        if g != n {
            return Err(Error::LengthMismatch { left: g, right: n });
        }
    }
    if let Some(t) = whole.iter().find(|t| t.0.len() > u32::MAX as usize) {
        return Err(Error::BufferTooLarge {
            requested: 4 * t.0.len() as u64,
            max: 4 * u32::MAX as u64,
        });
    }
    Ok(n)
}

/// A call's data in one form: host data throughout, or arrays (element-wise host data
/// made arrays; host tables kept as they are).
enum Data<'a> {
    Host(Vec<&'a [u32]>, Vec<&'a [u32]>),
    Arrays {
        /// Element-wise host data made arrays, in order.
        made: Vec<Array<u32>>,
        /// Per element-wise input: the caller's array, or `None` for the next of `made`.
        each: Vec<Option<ArrayRef<'a>>>,
        tables: Vec<View<'a>>,
    },
}

impl<'a> Data<'a> {
    fn of(each: Vec<ArgView<'a>>, whole: Vec<ArgView<'a>>, arrays: bool) -> Data<'a> {
        let any = arrays
            || each
                .iter()
                .chain(&whole)
                .any(|v| matches!(v.0, View::Array(_)));
        if !any {
            let host = |v: Vec<ArgView<'a>>| -> Vec<&'a [u32]> {
                v.into_iter()
                    .filter_map(|v| match v.0 {
                        View::Host(d, _) => Some(d),
                        View::Array(_) => None,
                    })
                    .collect()
            };
            return Data::Host(host(each), host(whole));
        }
        let mut made = Vec::new();
        let each = each
            .into_iter()
            .map(|v| match v.0 {
                View::Host(d, w) => {
                    // one part of the host data's words, as many per element as it has
                    let n = d.len() / w.max(1);
                    made.push(Array::from_parts(n, vec![Part::on_host(0..n, d.to_vec())]));
                    None
                }
                View::Array(a) => Some(a),
            })
            .collect();
        Data::Arrays {
            made,
            each,
            tables: whole.into_iter().map(|v| v.0).collect(),
        }
    }

    /// The array form's element-wise inputs and tables, as the array path reads them.
    fn refs(&self) -> (Vec<ArrayRef<'_>>, Vec<TableSrc<'_>>) {
        let Data::Arrays { made, each, tables } = self else {
            return (Vec::new(), Vec::new());
        };
        let mut made = made.iter();
        let inputs = each
            .iter()
            .filter_map(|a| match a {
                Some(a) => Some(*a),
                None => made.next().map(Array::view),
            })
            .collect();
        let tables = tables
            .iter()
            .map(|t| match t {
                View::Host(d, w) => TableSrc::Host(d, *w),
                View::Array(a) => TableSrc::Array(*a),
            })
            .collect();
        (inputs, tables)
    }
}

impl Runtime {
    /// Runs a kernel of any signature ([`Kernel::new`]) over its data: one entry
    /// of `data` per argument (a slice, `Vec`, array or [`Array`]; element-wise inputs
    /// all of one length, tables of any), giving one `Vec` per result. With arrays
    /// among the data, what devices computed is read back (the report counts it in
    /// `gathered`); [`call_arrays`](Self::call_arrays) leaves the results where they
    /// were computed.
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
    pub fn call<I: InTypes, O: ResultArrays, D: CallData<I>>(
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
    pub fn call_over<I: InTypes, O: ResultArrays, D: CallData<I>>(
        &self,
        n: usize,
        kernel: &Kernel<I, O>,
        data: D,
        placement: Placement,
    ) -> Result<Run<O::Host>> {
        self.call_len(Some(n), kernel, data, placement)
    }

    fn call_len<I: InTypes, O: ResultArrays, D: CallData<I>>(
        &self,
        given: Option<usize>,
        kernel: &Kernel<I, O>,
        data: D,
        placement: Placement,
    ) -> Result<Run<O::Host>> {
        let (each, whole) = data.split();
        let n = length(&each, &whole, given)?;
        match Data::of(each, whole, false) {
            Data::Host(each, whole) => {
                let run =
                    self.map_host::<O::Row>(kernel.inner(), &each, &whole, n, placement, I::KINDS)?;
                Ok(Run {
                    output: O::from_rows(run.output),
                    report: run.report,
                })
            }
            arrays => {
                let Run { output, mut report } =
                    self.arrays_of(&arrays, kernel.inner(), n, placement, I::KINDS)?;
                let mut cols = Vec::with_capacity(output.len());
                let mut bytes = 0;
                for a in output {
                    let (v, b) = a.to_vec_counted()?;
                    cols.push(v);
                    bytes += b;
                }
                if bytes > 0 {
                    report.gathered += bytes;
                    report
                        .notes
                        .push(format!("gathered on the host: {bytes} bytes read back"));
                }
                Ok(Run {
                    output: O::from_columns(cols),
                    report,
                })
            }
        }
    }

    /// [`call`](Self::call) with each result an [`Array`] left where it was computed
    /// (in parts, one per range a device computed): the next call over them, or a
    /// table read from them, moves nothing. Host data among the element-wise inputs is
    /// made an array first.
    ///
    /// ```
    /// use hybrid::{Array, Expr, Kernel, Placement, Runtime};
    /// # fn main() -> hybrid::Result<()> {
    /// let rt = Runtime::new()?;
    /// let norm_and_sign = Kernel::new(|(x, y): (Expr<f32>, Expr<f32>)| {
    ///     ((x.clone() * x.clone() + y.clone() * y.clone()).sqrt(), x.lt(0.0f32).select(-1i32, 1i32))
    /// });
    /// let x = Array::from_vec(vec![3.0f32, -6.0]);
    /// let y = Array::from_vec(vec![4.0f32, 8.0]);
    /// let (r, sign) = rt.call_arrays(&norm_and_sign, (&x, &y), Placement::Auto)?.output;
    /// assert_eq!(r.to_vec()?, [5.0, 10.0]);
    /// assert_eq!(sign.to_vec()?, [1, -1]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn call_arrays<I: InTypes, O: ResultArrays, D: CallData<I>>(
        &self,
        kernel: &Kernel<I, O>,
        data: D,
        placement: Placement,
    ) -> Result<Run<O::Arrays>> {
        self.call_arrays_len(None, kernel, data, placement)
    }

    /// [`call_arrays`](Self::call_arrays) over `n` elements, for a kernel whose
    /// arguments are all tables.
    pub fn call_arrays_over<I: InTypes, O: ResultArrays, D: CallData<I>>(
        &self,
        n: usize,
        kernel: &Kernel<I, O>,
        data: D,
        placement: Placement,
    ) -> Result<Run<O::Arrays>> {
        self.call_arrays_len(Some(n), kernel, data, placement)
    }

    fn call_arrays_len<I: InTypes, O: ResultArrays, D: CallData<I>>(
        &self,
        given: Option<usize>,
        kernel: &Kernel<I, O>,
        data: D,
        placement: Placement,
    ) -> Result<Run<O::Arrays>> {
        let (each, whole) = data.split();
        let n = length(&each, &whole, given)?;
        let data = Data::of(each, whole, true);
        let run = self.arrays_of(&data, kernel.inner(), n, placement, I::KINDS)?;
        Ok(Run {
            output: O::from_arrays(run.output),
            report: run.report,
        })
    }

    /// The array call of `data` (in its array form): one array per result.
    fn arrays_of(
        &self,
        data: &Data<'_>,
        kernel: &std::sync::Arc<crate::kernel::KernelDef>,
        n: usize,
        placement: Placement,
        kinds: &[ArgKind],
    ) -> Result<Run<Vec<Array<u32>>>> {
        let (inputs, tables) = data.refs();
        let run = self.array_call(kernel, &inputs, &tables, n, placement, kinds)?;
        Ok(Run {
            output: run
                .output
                .into_iter()
                .map(|parts| Array::from_parts(n, parts))
                .collect(),
            report: run.report,
        })
    }

    /// Runs a kernel of any signature with one result over its data (host data or
    /// arrays) and combines the values with `op` (see [`Reduce`]), in one pass: a dot
    /// product of inputs of two types, a sum over a kernel of three inputs, a
    /// reduction over a table read.
    pub fn call_reduce<I: InTypes, O: Value, D: CallData<I>>(
        &self,
        kernel: &Kernel<I, O>,
        data: D,
        op: Reduce,
        placement: Placement,
    ) -> Result<Run<O>> {
        let (each, whole) = data.split();
        let n = length(&each, &whole, None)?;
        let run = match Data::of(each, whole, false) {
            Data::Host(each, whole) => {
                self.reduce_host(kernel.inner(), op, &each, &whole, n, placement, I::KINDS)?
            }
            arrays => {
                let (inputs, tables) = arrays.refs();
                self.array_call_reduce(
                    kernel.inner(),
                    op,
                    &inputs,
                    &tables,
                    n,
                    placement,
                    I::KINDS,
                )?
            }
        };
        Ok(Run {
            output: O::from_bits64(run.output),
            report: run.report,
        })
    }
}
