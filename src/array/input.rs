//! What the entry points accept: host data or arrays ([`Input`]), seen through one
//! [`Source`] the runtime matches on, and what a map over each gives back.

use super::handle::Array;
use crate::error::Result;
use crate::kernel::Element;

mod sealed {
    pub trait Sealed {}
    impl<T> Sealed for [T] {}
    impl<T> Sealed for Vec<T> {}
    impl<T, const N: usize> Sealed for [T; N] {}
    impl<T> Sealed for super::Array<T> {}
}

/// An input as the runtime sees it: host data, or an array.
#[doc(hidden)]
pub enum Source<'a, T> {
    /// Elements in host memory.
    Host(&'a [T]),
    /// An array, whose parts may be on devices.
    Array(&'a Array<T>),
}

/// What a map gives back: a `Vec` for host data, an [`Array`] for an array.
#[doc(hidden)]
pub trait Mapped<O: Element>: Sized {
    /// From a map that ran over host data.
    fn from_vec(v: Vec<O>) -> Self;
    /// From a map that ran over arrays; the bytes it read back to give it.
    fn from_array(a: Array<O>) -> Result<(Self, u64)>;
}

impl<O: Element> Mapped<O> for Vec<O> {
    fn from_vec(v: Vec<O>) -> Self {
        v
    }
    fn from_array(a: Array<O>) -> Result<(Self, u64)> {
        a.to_vec_counted()
    }
}

impl<O: Element> Mapped<O> for Array<O> {
    fn from_vec(v: Vec<O>) -> Self {
        Array::from_vec(v)
    }
    fn from_array(a: Array<O>) -> Result<(Self, u64)> {
        Ok((a, 0))
    }
}

/// What [`Runtime::map`](crate::Runtime::map), [`Runtime::map2`](crate::Runtime::map2),
/// [`Runtime::reduce`](crate::Runtime::reduce) and
/// [`Runtime::reduce2`](crate::Runtime::reduce2) accept: host data (`[T]`, `Vec<T>`,
/// `[T; N]`), whose map is a `Vec`, or an [`Array`], whose map is an `Array` with its
/// parts left where they were computed. The two inputs of `map2`/`reduce2` are both
/// host data (of any of those forms) or both arrays. Sealed.
pub trait Input<T: Element>: sealed::Sealed {
    /// What a map over this input gives.
    type Mapped<O: Element>: Mapped<O>;
    #[doc(hidden)]
    fn source(&self) -> Source<'_, T>;
}

macro_rules! host_input {
    ($($ty:ty => [$($g:tt)*]),*) => {$(
        impl<T: Element, $($g)*> Input<T> for $ty {
            type Mapped<O: Element> = Vec<O>;
            fn source(&self) -> Source<'_, T> {
                Source::Host(&self[..])
            }
        }
    )*};
}

host_input!([T] => [], Vec<T> => [], [T; N] => [const N: usize]);

impl<T: Element> Input<T> for Array<T> {
    type Mapped<O: Element> = Array<O>;
    fn source(&self) -> Source<'_, T> {
        Source::Array(self)
    }
}
