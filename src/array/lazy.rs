//! A lazy chain of element-wise kernels over an array: recorded here, fused into one
//! kernel (one shader, one CPU pass) or run stage by stage when the runtime
//! evaluates it ([`Lazy::eval`], [`Lazy::to_vec`], [`Lazy::reduce`]).
//!
//! Each stage takes the chain's value as its argument 0; a stage of several inputs
//! ([`Lazy::zip`], [`Lazy::zip_n`]) reads its other arguments from arrays of the
//! chain's length, which the fused kernel takes as inputs of its own (after the
//! source and the earlier stages' arrays). Stages are element-wise with one result:
//! a kernel that reads tables or gives several results does not fit a stage's type.

use std::marker::PhantomData;
use std::sync::Arc;

use super::handle::Array;
use super::part::ArrayRef;
use crate::error::{Error, Result};
use crate::kernel::{Element, Kernel, KernelDef, ScalarType};

/// A chain of element-wise kernels over an array, not yet run: see [`Array::lazy`].
#[must_use = "a lazy chain does nothing until it is evaluated"]
pub struct Lazy<'a, I, T> {
    pub(crate) source: &'a Array<I>,
    pub(crate) stages: Vec<Stage<'a>>,
    pub(crate) fuse: bool,
    _t: PhantomData<fn() -> T>,
}

/// One stage of a chain: its kernel, and the arrays of its arguments 1.. (argument
/// 0 is the chain's value), each with its element type.
pub(crate) struct Stage<'a> {
    pub(crate) kernel: Arc<KernelDef>,
    pub(crate) with: Vec<(ArrayRef<'a>, ScalarType)>,
}

impl Stage<'_> {
    /// The stage's inputs when the chain's value is `chain`: it, then the stage's
    /// arrays.
    pub(crate) fn inputs<'b>(&'b self, chain: ArrayRef<'b>) -> Vec<ArrayRef<'b>> {
        std::iter::once(chain)
            .chain(self.with.iter().map(|w| w.0))
            .collect()
    }
}

impl<T: Element> Array<T> {
    /// A lazy chain of element-wise kernels starting from this array, run as one
    /// fused kernel when evaluated.
    pub fn lazy(&self) -> Lazy<'_, T, T> {
        Lazy {
            source: self,
            stages: Vec::new(),
            fuse: true,
            _t: PhantomData,
        }
    }
}

impl<'a, I: Element, T: Element> Lazy<'a, I, T> {
    /// Adds a stage of one input: the chain's value.
    pub fn map<O: Element>(self, kernel: &Kernel<T, O>) -> Lazy<'a, I, O> {
        self.push(kernel.inner().clone(), Vec::new())
    }

    /// Adds a stage of two inputs: the chain's value (argument 0) and `other`'s
    /// element at the same index (argument 1). `other` must have the chain's length
    /// ([`Error::LengthMismatch`] when the chain is evaluated).
    ///
    /// ```
    /// use hybrid::{Array, Expr, Kernel, Placement, Runtime};
    /// # fn main() -> hybrid::Result<()> {
    /// let rt = Runtime::new()?;
    /// let x = Array::from_vec(vec![1.0f32, 2.0, 3.0]);
    /// let w = Array::from_vec(vec![10u32, 20, 30]);
    /// let scale = Kernel::new(|(x, w): (Expr<f32>, Expr<u32>)| x * w.cast::<f32>());
    /// let run = x
    ///     .lazy()
    ///     .map(&Kernel::map(|x: Expr<f32>| x + 1.0))
    ///     .zip(&w, &scale)
    ///     .to_vec(&rt, Placement::Cpu)?;
    /// assert_eq!(run.output, [20.0, 60.0, 120.0]);
    /// assert_eq!(run.report.kernels_fused(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn zip<U: Element, O: Element>(
        self,
        other: &'a Array<U>,
        kernel: &Kernel<(T, U), O>,
    ) -> Lazy<'a, I, O> {
        self.zip_n((other,), kernel)
    }

    /// Adds a stage of 2 to 12 inputs: the chain's value (argument 0), then the
    /// element at the same index of each array of `arrays`, a tuple of 1 to 11
    /// `&Array`s of any element types (arguments 1..). Every array must have the
    /// chain's length ([`Error::LengthMismatch`] when the chain is evaluated).
    ///
    /// ```
    /// use hybrid::{Array, Expr, Kernel, Placement, Runtime};
    /// # fn main() -> hybrid::Result<()> {
    /// let rt = Runtime::new()?;
    /// let x = Array::from_vec(vec![1.0f32, 2.0]);
    /// let (a, b) = (Array::from_vec(vec![3u32, 4]), Array::from_vec(vec![-1i32, 1]));
    /// let k = Kernel::new(|(x, a, b): (Expr<f32>, Expr<u32>, Expr<i32>)| {
    ///     x * a.cast::<f32>() + b.cast::<f32>()
    /// });
    /// let v = x.lazy().zip_n((&a, &b), &k).to_vec(&rt, Placement::Cpu)?.output;
    /// assert_eq!(v, [2.0, 9.0]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn zip_n<A: ZipArrays<'a, T>, O: Element>(
        self,
        arrays: A,
        kernel: &Kernel<A::Args, O>,
    ) -> Lazy<'a, I, O> {
        arrays.stage(self, kernel)
    }

    /// Whether to fuse the stages into one kernel (the default) or run them one after
    /// another (each output an array that stays where it was computed).
    pub fn fuse(mut self, on: bool) -> Self {
        self.fuse = on;
        self
    }

    /// Number of stages.
    pub fn stages(&self) -> usize {
        self.stages.len()
    }

    /// Every stage's kernel takes the chain's value and its arrays, of their types,
    /// and gives one result; every array has the chain's length.
    pub(crate) fn check(&self) -> Result<()> {
        let n = self.source.len();
        let mut value = I::TYPE;
        for s in &self.stages {
            if let Some((a, _)) = s.with.iter().find(|(a, _)| a.len != n) {
                return Err(Error::LengthMismatch {
                    left: n,
                    right: a.len,
                });
            }
            let p = s.kernel.program()?;
            let (want, given) = (p.inputs.len() + p.tables.len(), 1 + s.with.len());
            if want != given {
                return Err(Error::WrongArity {
                    expected: want,
                    given,
                });
            }
            if !p.tables.is_empty() || p.outputs.len() != 1 {
                return Err(Error::InvalidKernel {
                    reason: "a lazy stage cannot read tables or give several results: \
                             run it with Runtime::call"
                        .into(),
                });
            }
            let types: Vec<ScalarType> = std::iter::once(value)
                .chain(s.with.iter().map(|w| w.1))
                .collect();
            if p.inputs != types {
                return Err(Error::InvalidKernel {
                    reason: format!(
                        "a lazy stage takes {:?}, the chain gives it {:?}",
                        p.inputs, types
                    ),
                });
            }
            value = p.output();
        }
        Ok(())
    }

    /// The kernel fusing every stage, when fusion is on and possible (hand-written
    /// kernels are opaque to it). Its inputs are the source, then each stage's
    /// arrays in order: [`inputs`](Self::inputs).
    pub(crate) fn fused(&self) -> Result<Option<Arc<KernelDef>>> {
        if !self.fuse
            || self.stages.len() < 2
            || self.stages.iter().any(|s| s.kernel.custom().is_some())
        {
            return Ok(None);
        }
        let kernels: Vec<Arc<KernelDef>> = self.stages.iter().map(|s| s.kernel.clone()).collect();
        KernelDef::fused(&kernels[0], &kernels[1..]).map(Some)
    }

    /// The fused kernel's inputs: the source, then each stage's arrays in order.
    pub(crate) fn inputs(&self) -> Vec<ArrayRef<'a>> {
        std::iter::once(self.source.view())
            .chain(self.stages.iter().flat_map(|s| s.with.iter().map(|w| w.0)))
            .collect()
    }
}

impl<'a, I, T> Lazy<'a, I, T> {
    /// The chain with one more stage, whose output is an `O`.
    pub(crate) fn push<O>(
        mut self,
        kernel: Arc<KernelDef>,
        with: Vec<(ArrayRef<'a>, ScalarType)>,
    ) -> Lazy<'a, I, O> {
        self.stages.push(Stage { kernel, with });
        self.retype()
    }

    /// The same chain, its output seen as another element type.
    pub(crate) fn retype<O>(self) -> Lazy<'a, I, O> {
        Lazy {
            source: self.source,
            stages: self.stages,
            fuse: self.fuse,
            _t: PhantomData,
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// The arrays a stage of [`Lazy::zip_n`] reads beside the chain's value: a tuple of 1
/// to 11 `&Array`s, of any element types, all of the chain's length.
pub trait ZipArrays<'a, T>: sealed::Sealed {
    /// The stage kernel's argument types: the chain's element type `T`, then each
    /// array's (`(T, A, B)` for `(&Array<A>, &Array<B>)`), as in
    /// `Kernel<(T, A, B), O>`.
    type Args;

    /// `chain` with the stage `kernel` over these arrays added.
    #[doc(hidden)]
    fn stage<I, O: Element>(
        self,
        chain: Lazy<'a, I, T>,
        kernel: &Kernel<Self::Args, O>,
    ) -> Lazy<'a, I, O>;
}

macro_rules! zip_arrays {
    ($($A:ident $k:tt),+) => {
        impl<$($A: Element),+> sealed::Sealed for ($(&Array<$A>,)+) {}
        impl<'a, T: Element, $($A: Element),+> ZipArrays<'a, T> for ($(&'a Array<$A>,)+) {
            type Args = (T, $($A,)+);

            fn stage<I, O: Element>(
                self,
                chain: Lazy<'a, I, T>,
                kernel: &Kernel<Self::Args, O>,
            ) -> Lazy<'a, I, O> {
                chain.push(kernel.inner().clone(), vec![$((self.$k.view(), $A::TYPE)),+])
            }
        }
    };
}

zip_arrays!(A 0);
zip_arrays!(A 0, B 1);
zip_arrays!(A 0, B 1, C 2);
zip_arrays!(A 0, B 1, C 2, D 3);
zip_arrays!(A 0, B 1, C 2, D 3, E 4);
zip_arrays!(A 0, B 1, C 2, D 3, E 4, F 5);
zip_arrays!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
zip_arrays!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
zip_arrays!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, J 8);
zip_arrays!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, J 8, K 9);
zip_arrays!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, J 8, K 9, L 10);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{index, Expr};

    #[test]
    fn a_chain_of_several_inputs_fuses_into_one_valid_shader() {
        let x = Array::from_vec(vec![1.0f32; 8]);
        let y = Array::from_vec(vec![2u32; 8]);
        let (a, b) = (
            Array::from_vec(vec![3i32; 8]),
            Array::from_vec(vec![4u32; 8]),
        );
        let k2 = Kernel::new(|(x, y): (Expr<f32>, Expr<u32>)| x * y.cast::<f32>());
        let k3 = Kernel::new(|(x, a, b): (Expr<f32>, Expr<i32>, Expr<u32>)| {
            (x.cast::<i32>() + a) ^ (b + index()).cast::<i32>()
        });
        let chain = x
            .lazy()
            .map(&Kernel::map(|x: Expr<f32>| x + 1.0))
            .zip(&y, &k2)
            .zip_n((&a, &b), &k3);
        assert_eq!(chain.stages(), 3);
        chain.check().unwrap_or_else(|e| panic!("{e}"));
        // the fused kernel's inputs: the source, then each stage's arrays in order
        let lens: Vec<usize> = chain.inputs().iter().map(|a| a.len).collect();
        assert_eq!(lens, [8; 4]);
        let inputs = chain.inputs();
        let same = |i: usize, arr: ArrayRef<'_>| std::ptr::eq(inputs[i].parts, arr.parts);
        assert!(same(0, x.view()) && same(1, y.view()) && same(2, a.view()) && same(3, b.view()));
        let fused = chain
            .fused()
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("three generated stages fuse"));
        let p = fused.program().unwrap_or_else(|e| panic!("{e}"));
        use ScalarType::{F32, I32, U32};
        assert_eq!(p.inputs, [F32, U32, I32, U32]);
        assert_eq!(p.output(), I32);
        let src = fused
            .shader()
            .unwrap_or_else(|e| panic!("{e}"))
            .source
            .clone();
        crate::kernel::wgsl::validate(&src).unwrap_or_else(|e| panic!("{e}\n{src}"));
        // not fused when asked not to
        assert!(chain.fuse(false).fused().ok().flatten().is_none());
    }

    #[test]
    fn a_stage_of_the_wrong_arity_or_length_is_a_typed_error() {
        let x = Array::from_vec(vec![1.0f32; 8]);
        let add = Kernel::map2(|a: Expr<f32>, b: Expr<f32>| a + b);
        assert_eq!(
            x.lazy().map(&add).check().err(),
            Some(Error::WrongArity {
                expected: 2,
                given: 1
            })
        );
        let short = Array::from_vec(vec![1u32; 7]);
        let k = Kernel::new(|(x, y): (Expr<f32>, Expr<u32>)| x + y.cast::<f32>());
        assert_eq!(
            x.lazy().zip(&short, &k).check().err(),
            Some(Error::LengthMismatch { left: 8, right: 7 })
        );
    }
}
