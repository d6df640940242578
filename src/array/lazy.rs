//! A lazy chain of one-input kernels over an array: recorded here, fused into one
//! kernel (one shader, one CPU pass) or run stage by stage when the runtime
//! evaluates it ([`Lazy::eval`], [`Lazy::to_vec`], [`Lazy::reduce`]).

use std::marker::PhantomData;
use std::sync::Arc;

use super::handle::Array;
use crate::error::{Error, Result};
use crate::kernel::{Element, Kernel, KernelDef};

/// A chain of one-input kernels over an array, not yet run: see [`Array::lazy`].
#[must_use = "a lazy chain does nothing until it is evaluated"]
pub struct Lazy<'a, I, T> {
    pub(crate) source: &'a Array<I>,
    pub(crate) stages: Vec<Arc<KernelDef>>,
    pub(crate) fuse: bool,
    _t: PhantomData<fn() -> T>,
}

impl<T: Element> Array<T> {
    /// A lazy chain of one-input kernels starting from this array, run as one fused
    /// kernel when evaluated.
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
    /// Adds a stage.
    pub fn map<O: Element>(mut self, kernel: &Kernel<T, O>) -> Lazy<'a, I, O> {
        self.stages.push(kernel.inner().clone());
        self.retype()
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

    /// The same chain, its output seen as another element type.
    pub(crate) fn retype<O>(self) -> Lazy<'a, I, O> {
        Lazy {
            source: self.source,
            stages: self.stages,
            fuse: self.fuse,
            _t: PhantomData,
        }
    }

    /// Every stage must be a one-input kernel.
    pub(crate) fn check(&self) -> Result<()> {
        for k in &self.stages {
            let want = k.program()?.inputs.len();
            if want != 1 {
                return Err(Error::WrongArity {
                    expected: want,
                    given: 1,
                });
            }
        }
        Ok(())
    }

    /// The kernel fusing every stage, when fusion is on and possible (hand-written
    /// kernels are opaque to it).
    pub(crate) fn fused(&self) -> Result<Option<Arc<KernelDef>>> {
        if !self.fuse || self.stages.iter().any(|k| k.custom().is_some()) {
            return Ok(None);
        }
        match self.stages.split_first() {
            Some((first, rest)) if !rest.is_empty() => KernelDef::fused(first, rest).map(Some),
            _ => Ok(None),
        }
    }
}
