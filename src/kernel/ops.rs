//! Scalar semantics: what every operation means, element by element, as WGSL defines it.
//!
//! The CPU evaluator and the compiler's constant folding both call these functions, and
//! the WGSL generator emits code with the same meaning, so the devices agree:
//! - integer `+ - *` and unary `-` wrap; `abs(i32::MIN)` is `i32::MIN`;
//! - `a / 0 == a`, `i32::MIN / -1 == i32::MIN`, `a % 0 == 0`, `i32::MIN % -1 == 0`;
//! - shift amounts are masked to `0..=31`; `>>` on `i32` is arithmetic;
//! - float to integer casts are WGSL's: the value is clamped to the destination's range
//!   as the source type holds it (for `f32 -> i32` that is `[-2^31, 2147483520]`, for
//!   `f32 -> u32` `[0, 4294967040]`: the largest values below 2^31 and 2^32 an `f32`
//!   holds exactly), then truncated toward zero, so `+inf` and `3e9` as `i32` are
//!   2147483520, not `i32::MAX`, exactly as a hand-written kernel's `i32(x)` gives; NaN
//!   gives 0 (WGSL leaves it indeterminate; we define it, and the generated WGSL does
//!   the same: a hand-written `i32(x)` of a NaN is whatever the driver gives);
//! - float `%` is `a - b * trunc(a / b)`; `round` is ties-to-even; `fract(x)` is
//!   `x - floor(x)`; `pow(x, y)` is NaN for `x < 0`, as `exp2(y * log2(x))` is.

use super::expr::{BinOp, UnOp};
use super::scalar::ScalarType;

// --- typed operations, shared by the evaluator's inner loops ---------------------------

#[inline(always)]
pub(crate) fn div_i32(a: i32, b: i32) -> i32 {
    if b == 0 || (a == i32::MIN && b == -1) {
        a
    } else {
        a / b
    }
}

#[inline(always)]
pub(crate) fn rem_i32(a: i32, b: i32) -> i32 {
    if b == 0 || (a == i32::MIN && b == -1) {
        0
    } else {
        a % b
    }
}

#[inline(always)]
pub(crate) fn div_u32(a: u32, b: u32) -> u32 {
    a.checked_div(b).unwrap_or(a)
}

#[inline(always)]
pub(crate) fn rem_u32(a: u32, b: u32) -> u32 {
    a.checked_rem(b).unwrap_or(0)
}

#[inline(always)]
pub(crate) fn rem_f32(a: f32, b: f32) -> f32 {
    a - b * (a / b).trunc()
}

#[inline(always)]
pub(crate) fn pow_f32(a: f32, b: f32) -> f32 {
    if a < 0.0 {
        f32::NAN
    } else {
        a.powf(b)
    }
}

#[inline(always)]
pub(crate) fn fract_f32(a: f32) -> f32 {
    a - a.floor()
}

/// The largest `f32` below 2^31: where WGSL clamps a float converted to `i32`.
pub(crate) const F32_I32_MAX: f32 = 2_147_483_520.0;
/// The largest `f32` below 2^32: where WGSL clamps a float converted to `u32`.
pub(crate) const F32_U32_MAX: f32 = 4_294_967_040.0;

/// Float to `i32` as WGSL converts: clamp to `[-2^31, 2147483520]`, truncate; NaN to 0.
/// Rust's `as` saturates below and maps NaN to 0; above, it would give `i32::MAX`, so
/// the upper clamp comes first (as a comparison NaN fails, so NaN stays NaN).
#[inline(always)]
pub(crate) fn f32_to_i32(a: f32) -> i32 {
    (if a > F32_I32_MAX { F32_I32_MAX } else { a }) as i32
}

/// Float to `u32` as WGSL converts: clamp to `[0, 4294967040]`, truncate; NaN to 0.
#[inline(always)]
pub(crate) fn f32_to_u32(a: f32) -> u32 {
    (if a > F32_U32_MAX { F32_U32_MAX } else { a }) as u32
}

/// WGSL's `min` on floats: IEEE minNum, so a NaN operand yields the other.
#[inline(always)]
pub(crate) fn min_f32(a: f32, b: f32) -> f32 {
    a.min(b)
}

/// WGSL's `max` on floats: IEEE maxNum, so a NaN operand yields the other.
#[inline(always)]
pub(crate) fn max_f32(a: f32, b: f32) -> f32 {
    a.max(b)
}

// --- untyped operations on 32-bit patterns, for constant folding -----------------------

fn f(bits: u32) -> f32 {
    f32::from_bits(bits)
}

fn fb(v: f32) -> u32 {
    v.to_bits()
}

/// The result of a unary operation on a value of type `ty`, as a bit pattern.
pub(crate) fn unary(op: UnOp, ty: ScalarType, a: u32) -> u32 {
    use ScalarType::*;
    match (ty, op) {
        (F32, UnOp::Neg) => fb(-f(a)),
        (F32, UnOp::Abs) => fb(f(a).abs()),
        (F32, UnOp::Sqrt) => fb(f(a).sqrt()),
        (F32, UnOp::Sin) => fb(f(a).sin()),
        (F32, UnOp::Cos) => fb(f(a).cos()),
        (F32, UnOp::Tan) => fb(f(a).tan()),
        (F32, UnOp::Exp) => fb(f(a).exp()),
        (F32, UnOp::Exp2) => fb(f(a).exp2()),
        (F32, UnOp::Ln) => fb(f(a).ln()),
        (F32, UnOp::Log2) => fb(f(a).log2()),
        (F32, UnOp::Floor) => fb(f(a).floor()),
        (F32, UnOp::Ceil) => fb(f(a).ceil()),
        (F32, UnOp::Round) => fb(f(a).round_ties_even()),
        (F32, UnOp::Fract) => fb(fract_f32(f(a))),
        (I32, UnOp::Neg) => (a as i32).wrapping_neg() as u32,
        (I32, UnOp::Abs) => (a as i32).wrapping_abs() as u32,
        (I32 | U32, UnOp::Not) => !a,
        (U32, UnOp::Abs) => a,
        (Bool, UnOp::Not) => (a == 0) as u32,
        // The typed builder never makes these; keep the value.
        _ => a,
    }
}

/// The result of a binary operation on operands of type `ty` (the left operand's type;
/// a shift's right operand is `u32`), as a bit pattern.
pub(crate) fn binary(op: BinOp, ty: ScalarType, a: u32, b: u32) -> u32 {
    use ScalarType::*;
    let cmp = |o: std::cmp::Ordering| -> u32 {
        use std::cmp::Ordering::*;
        (match op {
            BinOp::Lt => o == Less,
            BinOp::Le => o != Greater,
            BinOp::Gt => o == Greater,
            BinOp::Ge => o != Less,
            BinOp::Eq => o == Equal,
            _ => o != Equal,
        }) as u32
    };
    match ty {
        F32 => {
            let (x, y) = (f(a), f(b));
            match op {
                BinOp::Add => fb(x + y),
                BinOp::Sub => fb(x - y),
                BinOp::Mul => fb(x * y),
                BinOp::Div => fb(x / y),
                BinOp::Rem => fb(rem_f32(x, y)),
                BinOp::Min => fb(min_f32(x, y)),
                BinOp::Max => fb(max_f32(x, y)),
                BinOp::Pow => fb(pow_f32(x, y)),
                _ if op.is_comparison() => match x.partial_cmp(&y) {
                    Some(o) => cmp(o),
                    None => (op == BinOp::Ne) as u32,
                },
                _ => a,
            }
        }
        I32 => {
            let (x, y) = (a as i32, b as i32);
            match op {
                BinOp::Add => x.wrapping_add(y) as u32,
                BinOp::Sub => x.wrapping_sub(y) as u32,
                BinOp::Mul => x.wrapping_mul(y) as u32,
                BinOp::Div => div_i32(x, y) as u32,
                BinOp::Rem => rem_i32(x, y) as u32,
                BinOp::Min => x.min(y) as u32,
                BinOp::Max => x.max(y) as u32,
                BinOp::And => a & b,
                BinOp::Or => a | b,
                BinOp::Xor => a ^ b,
                BinOp::Shl => x.wrapping_shl(b) as u32,
                BinOp::Shr => x.wrapping_shr(b) as u32,
                _ if op.is_comparison() => cmp(x.cmp(&y)),
                _ => a,
            }
        }
        U32 => match op {
            BinOp::Add => a.wrapping_add(b),
            BinOp::Sub => a.wrapping_sub(b),
            BinOp::Mul => a.wrapping_mul(b),
            BinOp::Div => div_u32(a, b),
            BinOp::Rem => rem_u32(a, b),
            BinOp::Min => a.min(b),
            BinOp::Max => a.max(b),
            BinOp::And => a & b,
            BinOp::Or => a | b,
            BinOp::Xor => a ^ b,
            BinOp::Shl => a.wrapping_shl(b),
            BinOp::Shr => a.wrapping_shr(b),
            _ if op.is_comparison() => cmp(a.cmp(&b)),
            _ => a,
        },
        Bool => match op {
            BinOp::And => a & b,
            BinOp::Or => a | b,
            BinOp::Eq => (a == b) as u32,
            BinOp::Ne => (a != b) as u32,
            _ => a,
        },
    }
}

/// A value of type `from` converted to type `to`, as a bit pattern.
pub(crate) fn cast(from: ScalarType, to: ScalarType, a: u32) -> u32 {
    use ScalarType::*;
    match (from, to) {
        (F32, I32) => f32_to_i32(f(a)) as u32,
        (F32, U32) => f32_to_u32(f(a)),
        (I32, F32) => fb(a as i32 as f32),
        (U32, F32) => fb(a as f32),
        (Bool, F32) => fb(a as f32),
        (F32, Bool) => (f(a) != 0.0) as u32,
        (I32 | U32, Bool) => (a != 0) as u32,
        // i32 <-> u32 and bool -> integers keep the pattern.
        _ => a,
    }
}

/// `a * b + c` on type `ty`.
pub(crate) fn mul_add(ty: ScalarType, a: u32, b: u32, c: u32) -> u32 {
    binary(BinOp::Add, ty, binary(BinOp::Mul, ty, a, b), c)
}

/// `min(max(x, lo), hi)` on type `ty`.
pub(crate) fn clamp(ty: ScalarType, x: u32, lo: u32, hi: u32) -> u32 {
    binary(BinOp::Min, ty, binary(BinOp::Max, ty, x, lo), hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_division_follows_wgsl() {
        assert_eq!(div_i32(7, 0), 7);
        assert_eq!(div_i32(i32::MIN, -1), i32::MIN);
        assert_eq!(rem_i32(7, 0), 0);
        assert_eq!(rem_i32(i32::MIN, -1), 0);
        assert_eq!(div_i32(-7, 2), -3);
        assert_eq!(rem_i32(-7, 2), -1);
        assert_eq!(div_u32(9, 0), 9);
        assert_eq!(rem_u32(9, 0), 0);
    }

    #[test]
    fn shifts_are_masked() {
        let i = ScalarType::I32;
        assert_eq!(binary(BinOp::Shl, i, 1, 33), 2);
        assert_eq!(binary(BinOp::Shr, i, (-8i32) as u32, 33) as i32, -4);
        assert_eq!(binary(BinOp::Shr, ScalarType::U32, 0x8000_0000, 63), 1);
    }

    #[test]
    fn float_to_int_clamps_as_wgsl_and_nan_is_zero() {
        assert_eq!(
            cast(ScalarType::F32, ScalarType::I32, f32::NAN.to_bits()),
            0
        );
        assert_eq!(
            cast(ScalarType::F32, ScalarType::I32, 3e9f32.to_bits()) as i32,
            2_147_483_520
        );
        assert_eq!(
            cast(ScalarType::F32, ScalarType::I32, (-3e9f32).to_bits()) as i32,
            i32::MIN
        );
        assert_eq!(
            cast(ScalarType::F32, ScalarType::U32, (-1.5f32).to_bits()),
            0
        );
        assert_eq!(
            cast(ScalarType::F32, ScalarType::U32, f32::INFINITY.to_bits()),
            4_294_967_040
        );
        assert_eq!(
            cast(ScalarType::F32, ScalarType::I32, (-2.7f32).to_bits()) as i32,
            -2
        );
    }

    #[test]
    fn float_rules() {
        let r = |op, a: f32, b: f32| f32::from_bits(binary(op, ScalarType::F32, fb(a), fb(b)));
        assert_eq!(r(BinOp::Rem, -7.5, 2.0), -1.5);
        assert!(r(BinOp::Pow, -2.0, 2.0).is_nan());
        assert_eq!(f(unary(UnOp::Round, ScalarType::F32, fb(2.5))), 2.0);
        assert_eq!(f(unary(UnOp::Round, ScalarType::F32, fb(-3.5))), -4.0);
        assert_eq!(f(unary(UnOp::Fract, ScalarType::F32, fb(-1.25))), 0.75);
        assert_eq!(
            binary(BinOp::Ne, ScalarType::F32, fb(f32::NAN), fb(f32::NAN)),
            1
        );
        assert_eq!(
            binary(BinOp::Eq, ScalarType::F32, fb(f32::NAN), fb(f32::NAN)),
            0
        );
    }
}
