//! A kernel's signature, typed in Rust: the closure's arguments (a tuple of `Expr<T>`
//! element-wise inputs and `Table<T>` whole-array inputs, each of its own type) and its
//! results (one `Expr<T>` or a tuple of them).
//!
//! Two sides of one thing: [`Args`] and [`Results`] are what the closure takes and
//! gives (symbolic values); [`InTypes`] and [`OutTypes`] are the kernel's type
//! parameters (`Kernel<(f32, u32, Table<f32>), (f32, u32)>`) that the call's data must
//! match. A wrong number or type of arguments is therefore a compile error at the
//! call, not a runtime one.
//!
//! Up to 12 arguments and 8 results.

use super::expr::{Expr, NodeRef};
use super::scalar::{ScalarType, Value, Word};
use super::table::Table;

mod sealed {
    pub trait In {}
    pub trait Ins {}
    pub trait Arg {}
    pub trait Args {}
    pub trait Outs {}
    pub trait Results {}
}

/// What one argument of a kernel is, as the runtime sees it.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// An element-wise input of this element type.
    Each(ScalarType),
    /// A whole-array input of this element type.
    Whole(ScalarType),
}

/// One argument in a kernel's type: an element type `T` (an element-wise input) or
/// `Table<T>` (a whole-array input).
pub trait InType: sealed::In {
    #[doc(hidden)]
    const KIND: ArgKind;
}

impl<T: Value> sealed::In for T {}
impl<T: Value> sealed::Outs for T {}
impl<T: Value> InType for T {
    const KIND: ArgKind = ArgKind::Each(T::TYPE);
}
impl<T: Value> sealed::In for Table<T> {}
impl<T: Value> sealed::Arg for Table<T> {}
impl<T: Value> InType for Table<T> {
    const KIND: ArgKind = ArgKind::Whole(T::TYPE);
}

/// A kernel's argument types: a tuple of 1 to 12 [`InType`]s.
pub trait InTypes: sealed::Ins {
    #[doc(hidden)]
    const KINDS: &'static [ArgKind];
}

/// One argument of a kernel's closure: `Expr<T>` or `Table<T>`.
pub trait Arg: sealed::Arg {
    /// The argument in the kernel's type: `T`, or `Table<T>`.
    type Type: InType;
    /// The argument, numbered among the element-wise inputs or among the tables.
    #[doc(hidden)]
    fn make(each: &mut u8, whole: &mut u8) -> Self;
}

impl<T: Value> sealed::Arg for Expr<T> {}
impl<T: Value> sealed::Results for Expr<T> {}
impl<T: Value> Arg for Expr<T> {
    type Type = T;
    fn make(each: &mut u8, _: &mut u8) -> Self {
        *each += 1;
        Expr::input(*each - 1)
    }
}

impl<T: Value> Arg for Table<T> {
    type Type = Table<T>;
    fn make(_: &mut u8, whole: &mut u8) -> Self {
        *whole += 1;
        Table::new(*whole - 1)
    }
}

/// A kernel closure's arguments: a tuple of 1 to 12 [`Arg`]s.
pub trait Args: sealed::Args {
    /// The kernel's argument types.
    type Types: InTypes;
    #[doc(hidden)]
    fn make() -> Self;
}

/// A kernel's result types: an element type, or a tuple of 1 to 8.
pub trait OutTypes: sealed::Outs {
    /// The results of one element, as bit patterns: `u32`, or `[u32; M]`.
    #[doc(hidden)]
    type Row: bytemuck::Pod + Default + Send + Sync;
    /// The results of a call over host data: `Vec<T>`, or a tuple of `Vec`s.
    type Host;
    #[doc(hidden)]
    const TYPES: &'static [ScalarType];
    /// The host results from rows (element `i`'s results in `rows[i]`).
    #[doc(hidden)]
    fn from_rows(rows: Vec<Self::Row>) -> Self::Host;
}

impl<T: Value> OutTypes for T {
    type Row = T::Word;
    type Host = Vec<T>;
    const TYPES: &'static [ScalarType] = &[T::TYPE];
    fn from_rows(rows: Vec<T::Word>) -> Vec<T> {
        rows.into_iter().map(T::from_word).collect()
    }
}

/// What a kernel's closure returns: one `Expr<T>`, or a tuple of 1 to 8.
pub trait Results: sealed::Results {
    /// The kernel's result types.
    type Types: OutTypes;
    #[doc(hidden)]
    fn into_nodes(self) -> Vec<NodeRef>;
}

impl<T: Value> Results for Expr<T> {
    type Types = T;
    fn into_nodes(self) -> Vec<NodeRef> {
        vec![self.into_node()]
    }
}

macro_rules! arg_tuple {
    ($($A:ident),+) => {
        impl<$($A: InType),+> sealed::Ins for ($($A,)+) {}
        impl<$($A: Arg),+> sealed::Args for ($($A,)+) {}
        impl<$($A: InType),+> InTypes for ($($A,)+) {
            const KINDS: &'static [ArgKind] = &[$($A::KIND),+];
        }
        impl<$($A: Arg),+> Args for ($($A,)+)
        where
            ($($A::Type,)+): InTypes,
        {
            type Types = ($($A::Type,)+);
            fn make() -> Self {
                let (mut each, mut whole) = (0u8, 0u8);
                ($($A::make(&mut each, &mut whole),)+)
            }
        }
    };
}

impl sealed::Ins for () {}
impl sealed::Args for () {}
/// No arguments: a kernel of the element's index alone (run with `call_over`).
impl InTypes for () {
    const KINDS: &'static [ArgKind] = &[];
}
impl Args for () {
    type Types = ();
    fn make() -> Self {}
}

arg_tuple!(A);
arg_tuple!(A, B);
arg_tuple!(A, B, C);
arg_tuple!(A, B, C, D);
arg_tuple!(A, B, C, D, E);
arg_tuple!(A, B, C, D, E, F);
arg_tuple!(A, B, C, D, E, F, G);
arg_tuple!(A, B, C, D, E, F, G, H);
arg_tuple!(A, B, C, D, E, F, G, H, I);
arg_tuple!(A, B, C, D, E, F, G, H, I, J);
arg_tuple!(A, B, C, D, E, F, G, H, I, J, K);
arg_tuple!(A, B, C, D, E, F, G, H, I, J, K, L);

/// The widest word among the given types' words: a row's element type.
macro_rules! widest {
    ($T:ident) => { $T::Word };
    ($T:ident, $($R:ident),+) => { <$T::Word as Word>::Max<widest!($($R),+)> };
}

macro_rules! out_tuple {
    ($m:expr; $($T:ident $k:tt),+) => {
        impl<$($T: Value),+> sealed::Results for ($(Expr<$T>,)+) {}
        impl<$($T: Value),+> sealed::Outs for ($($T,)+) {}
        impl<$($T: Value),+> Results for ($(Expr<$T>,)+) {
            type Types = ($($T,)+);
            fn into_nodes(self) -> Vec<NodeRef> {
                vec![$(self.$k.into_node()),+]
            }
        }
        /// A row holds each result in the widest word among them (`[u32; M]`, or
        /// `[u64; M]` when one is 64-bit: a 32-bit result in its low half).
        impl<$($T: Value),+> OutTypes for ($($T,)+) {
            type Row = [widest!($($T),+); $m];
            type Host = ($(Vec<$T>,)+);
            const TYPES: &'static [ScalarType] = &[$($T::TYPE),+];
            fn from_rows(rows: Vec<Self::Row>) -> Self::Host {
                ($(rows.iter().map(|r| $T::from_bits64(r[$k].to_u64())).collect::<Vec<$T>>(),)+)
            }
        }
    };
}

out_tuple!(1; A 0);
out_tuple!(2; A 0, B 1);
out_tuple!(3; A 0, B 1, C 2);
out_tuple!(4; A 0, B 1, C 2, D 3);
out_tuple!(5; A 0, B 1, C 2, D 3, E 4);
out_tuple!(6; A 0, B 1, C 2, D 3, E 4, F 5);
out_tuple!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
out_tuple!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
