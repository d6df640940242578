//! The scalar types a kernel computes with: the tag [`ScalarType`], the sealed
//! [`Scalar`] trait of every value type, and the traits ([`Element`], [`Numeric`],
//! [`Float`], [`Integer`]) that say which operations an `Expr` has.
//!
//! `f64`, `i64` and `u64` are types a kernel computes in (cast an input to it,
//! accumulate in it, cast the result back) on every device that has them, and
//! [`Value`]s: a kernel's element-wise inputs, tables and results may have them, as
//! host data or [`Array`](crate::Array)s (`Array<f64>`). They are not [`Element`]s:
//! the `map`/`map2` entry points and lazy chains take 32-bit elements. Their values are
//! 64-bit patterns in the program's literals ([`Scalar::bits`]) and two 32-bit words
//! each in a call's buffers, low first; a row of results with a 64-bit one gives each
//! result two words ([`Word::Max`]).

use std::fmt;

/// The scalar types an expression can have. `Bool` only appears inside kernels (the
/// result of a comparison); inputs and outputs are [`Element`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScalarType {
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float: a type kernels compute in (inputs and results stay 32-bit in
    /// this version). A GPU runs it only with wgpu's `SHADER_F64`.
    F64,
    /// 64-bit two's complement integer, wrapping: a type kernels compute in, as `f64`.
    /// A GPU runs it only with wgpu's `SHADER_INT64`.
    I64,
    /// 64-bit unsigned integer, wrapping (as `I64`).
    U64,
    /// 32-bit two's complement integer, wrapping.
    I32,
    /// 32-bit unsigned integer, wrapping.
    U32,
    /// Boolean (stored as 0 or 1 in 32 bits on the CPU).
    Bool,
}

impl ScalarType {
    /// Whether the type is 64 bits wide.
    pub fn is_wide(self) -> bool {
        matches!(self, ScalarType::F64 | ScalarType::I64 | ScalarType::U64)
    }

    /// The mask of a shift amount on this type: `0..=31`, or `0..=63` for 64 bits.
    pub(crate) fn shift_mask(self) -> u64 {
        if self.is_wide() {
            63
        } else {
            31
        }
    }

    /// Whether the type is a float.
    pub fn is_float(self) -> bool {
        matches!(self, ScalarType::F32 | ScalarType::F64)
    }

    /// The WGSL and Rust name of the type.
    pub fn name(self) -> &'static str {
        match self {
            ScalarType::F32 => "f32",
            ScalarType::F64 => "f64",
            ScalarType::I64 => "i64",
            ScalarType::U64 => "u64",
            ScalarType::I32 => "i32",
            ScalarType::U32 => "u32",
            ScalarType::Bool => "bool",
        }
    }
}

impl fmt::Display for ScalarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for i64 {}
    impl Sealed for u64 {}
    impl Sealed for i32 {}
    impl Sealed for u32 {}
    impl Sealed for bool {}
}

/// A type an expression can have: `f32`, `f64`, `i32`, `u32` or `bool`. Sealed.
pub trait Scalar: sealed::Sealed + Copy + Send + Sync + fmt::Debug + 'static {
    /// The type's tag.
    const TYPE: ScalarType;
    /// The value's bit pattern, zero-extended to 64 bits (bool: 0 or 1).
    fn bits(self) -> u64;
    /// The value with the given bit pattern (the low bits for a 32-bit type).
    fn from_bits64(bits: u64) -> Self;
}

/// A type that can be a kernel's input or output element: `f32`, `i32` or `u32`.
pub trait Element: Numeric + bytemuck::Pod + PartialEq + Default {
    /// The value's 32-bit pattern.
    fn to_bits(self) -> u32;
    /// The value with the given 32-bit pattern.
    fn from_bits(bits: u32) -> Self;
}

/// A type a kernel's element-wise inputs and lone result may have on host data: the
/// [`Element`]s (32-bit, which arrays and tables also hold) and `f64`, `i64`, `u64`.
/// A 64-bit input or result travels as two 32-bit words, low first (a GPU's shader
/// puts it together and takes it apart through `u64`, so it needs `SHADER_INT64`); a
/// row of results with a 64-bit one gives each result two words. Sealed.
pub trait Value: Numeric + bytemuck::Pod + PartialEq + Default {
    /// One element as the runtime holds it: `u32`, or `u64` for a 64-bit type.
    #[doc(hidden)]
    type Word: Word;
    /// The value of one element.
    #[doc(hidden)]
    fn from_word(w: Self::Word) -> Self;
}

/// How the runtime holds one value on the host: `u32`, or `u64` for a 64-bit type.
/// Sealed.
#[doc(hidden)]
pub trait Word: sealed::Sealed + bytemuck::Pod + Default + Send + Sync {
    /// The wider of this word and `W`: a row of results holds each in the widest
    /// word among them.
    type Max<W: Word>: Word;
    /// The bits, zero-extended to 64.
    fn to_u64(self) -> u64;
}

impl Word for u32 {
    type Max<W: Word> = W;
    fn to_u64(self) -> u64 {
        self as u64
    }
}

impl Word for u64 {
    type Max<W: Word> = u64;
    fn to_u64(self) -> u64 {
        self
    }
}

impl<T: Element> Value for T {
    type Word = u32;
    fn from_word(w: u32) -> T {
        T::from_bits(w)
    }
}

macro_rules! wide_value {
    ($($t:ty),*) => {$(
        impl Value for $t {
            type Word = u64;
            fn from_word(w: u64) -> $t {
                <$t as Scalar>::from_bits64(w)
            }
        }
    )*};
}
wide_value!(f64, i64, u64);

/// The numeric types, which support arithmetic: `f32`, `f64`, `i32`, `u32`.
pub trait Numeric: Scalar {}
impl Numeric for f32 {}
impl Numeric for f64 {}
impl Numeric for i64 {}
impl Numeric for u64 {}
impl Numeric for i32 {}
impl Numeric for u32 {}

/// The float types, which have `sqrt`, `exp`, `floor` and the rest: `f32` and `f64`.
pub trait Float: Numeric {}
impl Float for f32 {}
impl Float for f64 {}

/// The integer types, which support bitwise operations and shifts: `i32`, `u32`,
/// `i64`, `u64`.
pub trait Integer: Numeric {}
impl Integer for i32 {}
impl Integer for u32 {}
impl Integer for i64 {}
impl Integer for u64 {}

impl Scalar for f32 {
    const TYPE: ScalarType = ScalarType::F32;
    fn bits(self) -> u64 {
        f32::to_bits(self) as u64
    }
    fn from_bits64(bits: u64) -> Self {
        f32::from_bits(bits as u32)
    }
}
impl Scalar for f64 {
    const TYPE: ScalarType = ScalarType::F64;
    fn bits(self) -> u64 {
        f64::to_bits(self)
    }
    fn from_bits64(bits: u64) -> Self {
        f64::from_bits(bits)
    }
}
impl Scalar for i64 {
    const TYPE: ScalarType = ScalarType::I64;
    fn bits(self) -> u64 {
        self as u64
    }
    fn from_bits64(bits: u64) -> Self {
        bits as i64
    }
}
impl Scalar for u64 {
    const TYPE: ScalarType = ScalarType::U64;
    fn bits(self) -> u64 {
        self
    }
    fn from_bits64(bits: u64) -> Self {
        bits
    }
}
impl Scalar for i32 {
    const TYPE: ScalarType = ScalarType::I32;
    fn bits(self) -> u64 {
        self as u32 as u64
    }
    fn from_bits64(bits: u64) -> Self {
        bits as u32 as i32
    }
}
impl Scalar for u32 {
    const TYPE: ScalarType = ScalarType::U32;
    fn bits(self) -> u64 {
        self as u64
    }
    fn from_bits64(bits: u64) -> Self {
        bits as u32
    }
}
impl Scalar for bool {
    const TYPE: ScalarType = ScalarType::Bool;
    fn bits(self) -> u64 {
        self as u64
    }
    fn from_bits64(bits: u64) -> Self {
        bits != 0
    }
}
impl Element for f32 {
    fn to_bits(self) -> u32 {
        f32::to_bits(self)
    }
    fn from_bits(bits: u32) -> Self {
        f32::from_bits(bits)
    }
}
impl Element for i32 {
    fn to_bits(self) -> u32 {
        self as u32
    }
    fn from_bits(bits: u32) -> Self {
        bits as i32
    }
}
impl Element for u32 {
    fn to_bits(self) -> u32 {
        self
    }
    fn from_bits(bits: u32) -> Self {
        bits
    }
}
