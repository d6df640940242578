//! The entry points: maps and reductions over host data or arrays. Each checks its
//! inputs (lengths, the kernel's arity), matches once on what it was given, and goes
//! down one way: host data to `host.rs`, arrays to `arrays.rs`.

use super::{Run, Runtime};
use crate::array::{Array, Input, Mapped, Source};
use crate::error::{Error, Result};
use crate::kernel::reduce::Reduce;
use crate::kernel::{Element, Expr, Kernel, KernelDef};
use crate::placement::Placement;

/// Inputs of one call, in the one kind the call runs over. Host data stays in an
/// array on the stack: a call over host data allocates nothing before it is placed.
enum Inputs<'a, const N: usize> {
    /// Host data, as 32-bit patterns.
    Host([&'a [u32]; N]),
    /// Arrays; host data given beside an array is made an array (copied) first.
    Arrays(Vec<Array<u32>>),
}

impl<'a, const N: usize> Inputs<'a, N> {
    /// Checks that the inputs have one length and the kernel takes as many.
    fn of<T: Element>(
        sources: [Source<'a, T>; N],
        kernel: &KernelDef,
    ) -> Result<(Inputs<'a, N>, usize)> {
        let len = |s: &Source<'_, T>| match s {
            Source::Host(h) => h.len(),
            Source::Array(a) => a.len(),
        };
        let n = sources.first().map_or(0, len);
        for s in &sources {
            if len(s) != n {
                return Err(Error::LengthMismatch {
                    left: n,
                    right: len(s),
                });
            }
        }
        let want = kernel.program()?.inputs.len();
        if want != N {
            return Err(Error::WrongArity {
                expected: want,
                given: N,
            });
        }
        let mut host: [&[u32]; N] = [&[]; N];
        for (h, s) in host.iter_mut().zip(&sources) {
            match s {
                Source::Host(x) => *h = bytemuck::cast_slice(x),
                Source::Array(_) => {
                    let arrays = sources
                        .iter()
                        .map(|s| match s {
                            Source::Host(h) => Array::from_slice(h).retype(),
                            Source::Array(a) => (*a).clone().retype(),
                        })
                        .collect();
                    return Ok((Inputs::Arrays(arrays), n));
                }
            }
        }
        Ok((Inputs::Host(host), n))
    }
}

impl Runtime {
    /// Applies a one-input kernel to every element of `xs`: host data (a slice, a
    /// `Vec`, an array `[T; N]`), giving a `Vec`, or an [`Array`], giving an `Array`
    /// whose parts stay where they were computed (see [`crate::array`]).
    pub fn map<I: Element, O: Element, X: Input<I> + ?Sized>(
        &self,
        xs: &X,
        kernel: &Kernel<I, O>,
        placement: Placement,
    ) -> Result<Run<X::Mapped<O>>> {
        self.map_sources([xs.source()], kernel.inner(), placement)
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
        self.map_sources([a.source(), b.source()], kernel.inner(), placement)
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
        self.reduce_sources([xs.source()], kernel.inner(), op, placement)
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
        self.reduce_sources([a.source(), b.source()], kernel.inner(), op, placement)
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
        self.map(xs, kernel, placement)
    }

    /// [`map_array`](Self::map_array) for a two-input kernel.
    pub fn map2_array<I: Element, O: Element>(
        &self,
        a: &Array<I>,
        b: &Array<I>,
        kernel: &Kernel<I, O>,
        placement: Placement,
    ) -> Result<Run<Array<O>>> {
        self.map2(a, b, kernel, placement)
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
        self.reduce(xs, kernel, op, placement)
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
        self.reduce2(a, b, kernel, op, placement)
    }

    /// A map over inputs of one kind: host data gives a `Vec`, arrays an `Array`.
    fn map_sources<I: Element, O: Element, M: Mapped<O>, const N: usize>(
        &self,
        sources: [Source<'_, I>; N],
        kernel: &std::sync::Arc<KernelDef>,
        placement: Placement,
    ) -> Result<Run<M>> {
        let (inputs, n) = Inputs::of(sources, kernel)?;
        match inputs {
            Inputs::Host(bits) => {
                let run = self.map_host::<O>(kernel, &bits, &[], n, placement, &[])?;
                Ok(Run {
                    output: M::from_vec(run.output),
                    report: run.report,
                })
            }
            Inputs::Arrays(arrays) => {
                let views: Vec<_> = arrays.iter().map(Array::view).collect();
                let run = self.array_map(kernel, &views, placement)?;
                let (output, gathered) = M::from_array(Array::from_parts(n, run.output))?;
                let mut report = run.report;
                report.gathered += gathered;
                Ok(Run { output, report })
            }
        }
    }

    /// A reduction over inputs of one kind.
    fn reduce_sources<I: Element, O: Element, const N: usize>(
        &self,
        sources: [Source<'_, I>; N],
        kernel: &std::sync::Arc<KernelDef>,
        op: Reduce,
        placement: Placement,
    ) -> Result<Run<O>> {
        let (inputs, n) = Inputs::of(sources, kernel)?;
        let run = match inputs {
            Inputs::Host(bits) => self.reduce_host(kernel, op, &bits, &[], n, placement, &[])?,
            Inputs::Arrays(arrays) => {
                let views: Vec<_> = arrays.iter().map(Array::view).collect();
                self.array_reduce(kernel, op, &views, placement)?
            }
        };
        Ok(Run {
            output: O::from_bits64(run.output),
            report: run.report,
        })
    }
}
