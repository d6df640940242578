//! The scalar types a kernel computes with: the tag [`ScalarType`], the sealed
//! [`Scalar`] trait of every value type, and the element traits ([`Element`],
//! [`Numeric`], [`Integer`]) that say which operations an `Expr` has.

use std::fmt;

/// The scalar types an expression can have. `Bool` only appears inside kernels (the
/// result of a comparison); inputs and outputs are [`Element`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScalarType {
    /// 32-bit IEEE float.
    F32,
    /// 32-bit two's complement integer, wrapping.
    I32,
    /// 32-bit unsigned integer, wrapping.
    U32,
    /// Boolean (stored as 0 or 1 in 32 bits on the CPU).
    Bool,
}

impl ScalarType {
    /// The WGSL and Rust name of the type.
    pub fn name(self) -> &'static str {
        match self {
            ScalarType::F32 => "f32",
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
    impl Sealed for i32 {}
    impl Sealed for u32 {}
    impl Sealed for bool {}
}

/// A type an expression can have: `f32`, `i32`, `u32` or `bool`. Sealed.
pub trait Scalar: sealed::Sealed + Copy + Send + Sync + fmt::Debug + 'static {
    /// The type's tag.
    const TYPE: ScalarType;
    /// The value's 32-bit pattern (bool: 0 or 1).
    fn to_bits(self) -> u32;
}

/// A type that can be a kernel's input or output element: `f32`, `i32` or `u32`.
pub trait Element: Scalar + bytemuck::Pod + PartialEq + Default {
    /// The value with the given 32-bit pattern.
    fn from_bits(bits: u32) -> Self;
}

/// The numeric element types, which support arithmetic.
pub trait Numeric: Element {}
impl Numeric for f32 {}
impl Numeric for i32 {}
impl Numeric for u32 {}

/// The integer element types, which support bitwise operations and shifts.
pub trait Integer: Numeric {}
impl Integer for i32 {}
impl Integer for u32 {}

impl Scalar for f32 {
    const TYPE: ScalarType = ScalarType::F32;
    fn to_bits(self) -> u32 {
        f32::to_bits(self)
    }
}
impl Scalar for i32 {
    const TYPE: ScalarType = ScalarType::I32;
    fn to_bits(self) -> u32 {
        self as u32
    }
}
impl Scalar for u32 {
    const TYPE: ScalarType = ScalarType::U32;
    fn to_bits(self) -> u32 {
        self
    }
}
impl Scalar for bool {
    const TYPE: ScalarType = ScalarType::Bool;
    fn to_bits(self) -> u32 {
        self as u32
    }
}
impl Element for f32 {
    fn from_bits(bits: u32) -> Self {
        f32::from_bits(bits)
    }
}
impl Element for i32 {
    fn from_bits(bits: u32) -> Self {
        bits as i32
    }
}
impl Element for u32 {
    fn from_bits(bits: u32) -> Self {
        bits
    }
}
