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

// --- f64 ------------------------------------------------------------------------------

/// The largest `f64` a float converted to `i32` keeps: `i32::MAX` itself (an `f64`
/// holds every `i32`), so WGSL's clamp for `f64 -> i32` is the `i32` range exactly.
#[inline(always)]
pub(crate) fn f64_to_i32(a: f64) -> i32 {
    // Rust's `as` clamps to the i32 range and maps NaN to 0: WGSL's rule for f64
    a as i32
}

/// `f64 -> u32`: clamp to `[0, u32::MAX]` (all exact in f64), truncate; NaN to 0.
#[inline(always)]
pub(crate) fn f64_to_u32(a: f64) -> u32 {
    a as u32
}

#[inline(always)]
pub(crate) fn rem_f64(a: f64, b: f64) -> f64 {
    a - b * (a / b).trunc()
}

#[inline(always)]
pub(crate) fn pow_f64(a: f64, b: f64) -> f64 {
    if a < 0.0 {
        f64::NAN
    } else {
        a.powf(b)
    }
}

#[inline(always)]
pub(crate) fn fract_f64(a: f64) -> f64 {
    a - a.floor()
}

// --- i64 and u64 -------------------------------------------------------------------

/// The largest `f32` and `f64` below 2^63 and 2^64: WGSL's clamp ends for a float
/// converted to `i64` and `u64` (the same rule as for 32 bits).
const F32_I64_MAX: f32 = 9_223_371_487_098_961_920.0;
const F32_U64_MAX: f32 = 18_446_742_974_197_923_840.0;
const F64_I64_MAX: f64 = 9_223_372_036_854_774_784.0;
const F64_U64_MAX: f64 = 18_446_744_073_709_549_568.0;

#[inline(always)]
fn div_i64(a: i64, b: i64) -> i64 {
    if b == 0 || (a == i64::MIN && b == -1) {
        a
    } else {
        a / b
    }
}

#[inline(always)]
fn rem_i64(a: i64, b: i64) -> i64 {
    if b == 0 || (a == i64::MIN && b == -1) {
        0
    } else {
        a % b
    }
}

/// A float (already as f64: every f32 is one) to `i64` or `u64` by WGSL's rule: clamp
/// below the top the source type holds, truncate; NaN to 0 (`as` does the rest).
fn float_to_64(v: f64, top: f64, signed: bool) -> u64 {
    let v = if v > top { top } else { v };
    if signed {
        v as i64 as u64
    } else {
        v as u64
    }
}

// --- untyped operations on bit patterns, for constant folding --------------------------
//
// A value is its bit pattern zero-extended to 64 bits: the low 32 bits for the 32-bit
// types, all 64 for `f64`.

fn f(bits: u64) -> f32 {
    f32::from_bits(bits as u32)
}

fn fb(v: f32) -> u64 {
    v.to_bits() as u64
}

fn d(bits: u64) -> f64 {
    f64::from_bits(bits)
}

fn db(v: f64) -> u64 {
    v.to_bits()
}

/// The result of a unary operation on a value of type `ty`, as a bit pattern.
pub(crate) fn unary(op: UnOp, ty: ScalarType, a: u64) -> u64 {
    use ScalarType::*;
    let w = a as u32;
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
        (F64, UnOp::Neg) => db(-d(a)),
        (F64, UnOp::Abs) => db(d(a).abs()),
        (F64, UnOp::Sqrt) => db(d(a).sqrt()),
        (F64, UnOp::Sin) => db(d(a).sin()),
        (F64, UnOp::Cos) => db(d(a).cos()),
        (F64, UnOp::Tan) => db(d(a).tan()),
        (F64, UnOp::Exp) => db(d(a).exp()),
        (F64, UnOp::Exp2) => db(d(a).exp2()),
        (F64, UnOp::Ln) => db(d(a).ln()),
        (F64, UnOp::Log2) => db(d(a).log2()),
        (F64, UnOp::Floor) => db(d(a).floor()),
        (F64, UnOp::Ceil) => db(d(a).ceil()),
        (F64, UnOp::Round) => db(d(a).round_ties_even()),
        (F64, UnOp::Fract) => db(fract_f64(d(a))),
        (I32, UnOp::Neg) => (w as i32).wrapping_neg() as u32 as u64,
        (I32, UnOp::Abs) => (w as i32).wrapping_abs() as u32 as u64,
        (I32 | U32, UnOp::Not) => !w as u64,
        (I64, UnOp::Neg) => (a as i64).wrapping_neg() as u64,
        (I64, UnOp::Abs) => (a as i64).wrapping_abs() as u64,
        (I64 | U64, UnOp::Not) => !a,
        (U64, UnOp::Abs) => a,
        (U32, UnOp::Abs) => a,
        (Bool, UnOp::Not) => (w == 0) as u64,
        // The typed builder never makes these; keep the value.
        _ => a,
    }
}

/// The result of a binary operation on operands of type `ty` (the left operand's type;
/// a shift's right operand is `u32`), as a bit pattern.
pub(crate) fn binary(op: BinOp, ty: ScalarType, a: u64, b: u64) -> u64 {
    use ScalarType::*;
    let cmp = |o: std::cmp::Ordering| -> u64 {
        use std::cmp::Ordering::*;
        (match op {
            BinOp::Lt => o == Less,
            BinOp::Le => o != Greater,
            BinOp::Gt => o == Greater,
            BinOp::Ge => o != Less,
            BinOp::Eq => o == Equal,
            _ => o != Equal,
        }) as u64
    };
    let (wa, wb) = (a as u32, b as u32);
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
                    None => (op == BinOp::Ne) as u64,
                },
                _ => a,
            }
        }
        F64 => {
            let (x, y) = (d(a), d(b));
            match op {
                BinOp::Add => db(x + y),
                BinOp::Sub => db(x - y),
                BinOp::Mul => db(x * y),
                BinOp::Div => db(x / y),
                BinOp::Rem => db(rem_f64(x, y)),
                BinOp::Min => db(x.min(y)),
                BinOp::Max => db(x.max(y)),
                BinOp::Pow => db(pow_f64(x, y)),
                _ if op.is_comparison() => match x.partial_cmp(&y) {
                    Some(o) => cmp(o),
                    None => (op == BinOp::Ne) as u64,
                },
                _ => a,
            }
        }
        I32 => {
            let (x, y) = (wa as i32, wb as i32);
            (match op {
                BinOp::Add => x.wrapping_add(y) as u32,
                BinOp::Sub => x.wrapping_sub(y) as u32,
                BinOp::Mul => x.wrapping_mul(y) as u32,
                BinOp::Div => div_i32(x, y) as u32,
                BinOp::Rem => rem_i32(x, y) as u32,
                BinOp::Min => x.min(y) as u32,
                BinOp::Max => x.max(y) as u32,
                BinOp::And => wa & wb,
                BinOp::Or => wa | wb,
                BinOp::Xor => wa ^ wb,
                BinOp::Shl => x.wrapping_shl(wb) as u32,
                BinOp::Shr => x.wrapping_shr(wb) as u32,
                _ if op.is_comparison() => cmp(x.cmp(&y)) as u32,
                _ => wa,
            }) as u64
        }
        I64 => {
            let (x, y) = (a as i64, b as i64);
            let s = b as u32; // a shift amount is u32
            (match op {
                BinOp::Add => x.wrapping_add(y),
                BinOp::Sub => x.wrapping_sub(y),
                BinOp::Mul => x.wrapping_mul(y),
                BinOp::Div => div_i64(x, y),
                BinOp::Rem => rem_i64(x, y),
                BinOp::Min => x.min(y),
                BinOp::Max => x.max(y),
                BinOp::And => x & y,
                BinOp::Or => x | y,
                BinOp::Xor => x ^ y,
                BinOp::Shl => x.wrapping_shl(s),
                BinOp::Shr => x.wrapping_shr(s),
                _ if op.is_comparison() => cmp(x.cmp(&y)) as i64,
                _ => x,
            }) as u64
        }
        U64 => {
            let s = b as u32;
            match op {
                BinOp::Add => a.wrapping_add(b),
                BinOp::Sub => a.wrapping_sub(b),
                BinOp::Mul => a.wrapping_mul(b),
                BinOp::Div => a.checked_div(b).unwrap_or(a),
                BinOp::Rem => a.checked_rem(b).unwrap_or(0),
                BinOp::Min => a.min(b),
                BinOp::Max => a.max(b),
                BinOp::And => a & b,
                BinOp::Or => a | b,
                BinOp::Xor => a ^ b,
                BinOp::Shl => a.wrapping_shl(s),
                BinOp::Shr => a.wrapping_shr(s),
                _ if op.is_comparison() => cmp(a.cmp(&b)),
                _ => a,
            }
        }
        U32 => {
            (match op {
                BinOp::Add => wa.wrapping_add(wb),
                BinOp::Sub => wa.wrapping_sub(wb),
                BinOp::Mul => wa.wrapping_mul(wb),
                BinOp::Div => div_u32(wa, wb),
                BinOp::Rem => rem_u32(wa, wb),
                BinOp::Min => wa.min(wb),
                BinOp::Max => wa.max(wb),
                BinOp::And => wa & wb,
                BinOp::Or => wa | wb,
                BinOp::Xor => wa ^ wb,
                BinOp::Shl => wa.wrapping_shl(wb),
                BinOp::Shr => wa.wrapping_shr(wb),
                _ if op.is_comparison() => cmp(wa.cmp(&wb)) as u32,
                _ => wa,
            }) as u64
        }
        Bool => match op {
            BinOp::And => a & b,
            BinOp::Or => a | b,
            BinOp::Eq => (a == b) as u64,
            BinOp::Ne => (a != b) as u64,
            _ => a,
        },
    }
}

/// A value of type `from` converted to type `to`, as a bit pattern.
pub(crate) fn cast(from: ScalarType, to: ScalarType, a: u64) -> u64 {
    use ScalarType::*;
    let w = a as u32;
    match (from, to) {
        (F32, I32) => f32_to_i32(f(a)) as u32 as u64,
        (F32, U32) => f32_to_u32(f(a)) as u64,
        (F64, I32) => f64_to_i32(d(a)) as u32 as u64,
        (F64, U32) => f64_to_u32(d(a)) as u64,
        (I32, F32) => fb(w as i32 as f32),
        (U32, F32) => fb(w as f32),
        (Bool, F32) => fb(w as f32),
        (I32, F64) => db(w as i32 as f64),
        (U32 | Bool, F64) => db(w as f64),
        // f32 -> f64 is exact; f64 -> f32 rounds to nearest, ties to even
        (F32, F64) => db(f(a) as f64),
        (F64, F32) => fb(d(a) as f32),
        (F32, Bool) => (f(a) != 0.0) as u64,
        (F64, Bool) => (d(a) != 0.0) as u64,
        (I32 | U32, Bool) => (w != 0) as u64,
        (I64 | U64, Bool) => (a != 0) as u64,
        // 64-bit integers: from a signed 32-bit one sign-extended, from an unsigned or
        // a bool zero-extended, between i64 and u64 the same bits, from a float WGSL's
        // clamp-then-truncate (NaN 0)
        (I32, I64 | U64) => w as i32 as i64 as u64,
        (U32 | Bool, I64 | U64) => w as u64,
        (I64 | U64, I64 | U64) => a,
        (F32, I64) => float_to_64(f(a) as f64, F32_I64_MAX as f64, true),
        (F32, U64) => float_to_64(f(a) as f64, F32_U64_MAX as f64, false),
        (F64, I64) => float_to_64(d(a), F64_I64_MAX, true),
        (F64, U64) => float_to_64(d(a), F64_U64_MAX, false),
        // to 32 bits: the low 32 bits
        (I64 | U64, I32 | U32) => w as u64,
        // to a float: round to nearest, ties to even
        (I64, F32) => fb(a as i64 as f32),
        (U64, F32) => fb(a as f32),
        (I64, F64) => db(a as i64 as f64),
        (U64, F64) => db(a as f64),
        // i32 <-> u32 and bool -> integers keep the pattern.
        _ => a,
    }
}

/// `a * b + c` on type `ty`.
pub(crate) fn mul_add(ty: ScalarType, a: u64, b: u64, c: u64) -> u64 {
    binary(BinOp::Add, ty, binary(BinOp::Mul, ty, a, b), c)
}

/// `min(max(x, lo), hi)` on type `ty`.
pub(crate) fn clamp(ty: ScalarType, x: u64, lo: u64, hi: u64) -> u64 {
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
        assert_eq!(binary(BinOp::Shr, i, (-8i32) as u32 as u64, 33) as i32, -4);
        assert_eq!(binary(BinOp::Shr, ScalarType::U32, 0x8000_0000, 63), 1);
    }

    #[test]
    fn float_to_int_clamps_as_wgsl_and_nan_is_zero() {
        assert_eq!(
            cast(ScalarType::F32, ScalarType::I32, f32::NAN.to_bits() as u64),
            0
        );
        assert_eq!(
            cast(ScalarType::F32, ScalarType::I32, 3e9f32.to_bits() as u64) as i32,
            2_147_483_520
        );
        assert_eq!(
            cast(ScalarType::F32, ScalarType::I32, (-3e9f32).to_bits() as u64) as i32,
            i32::MIN
        );
        assert_eq!(
            cast(ScalarType::F32, ScalarType::U32, (-1.5f32).to_bits() as u64),
            0
        );
        assert_eq!(
            cast(
                ScalarType::F32,
                ScalarType::U32,
                f32::INFINITY.to_bits() as u64
            ),
            4_294_967_040
        );
        assert_eq!(
            cast(ScalarType::F32, ScalarType::I32, (-2.7f32).to_bits() as u64) as i32,
            -2
        );
    }

    #[test]
    fn f64_casts_clamp_to_the_integer_range_and_round_to_f32_evenly() {
        let c = |to, v: f64| cast(ScalarType::F64, to, v.to_bits());
        assert_eq!(c(ScalarType::I32, 2_147_483_647.9) as i32, i32::MAX);
        assert_eq!(c(ScalarType::I32, 3e9) as i32, i32::MAX);
        assert_eq!(c(ScalarType::I32, -2_147_483_648.9) as i32, i32::MIN);
        assert_eq!(c(ScalarType::I32, f64::NEG_INFINITY) as i32, i32::MIN);
        assert_eq!(c(ScalarType::I32, f64::NAN), 0);
        assert_eq!(c(ScalarType::U32, 4_294_967_295.5), u32::MAX as u64);
        assert_eq!(c(ScalarType::U32, -0.5), 0);
        // 1 + 2^-24 is halfway between two f32s: to even, 1.0
        let tie = 1.0 + 2f64.powi(-24);
        assert_eq!(f(c(ScalarType::F32, tie)), 1.0);
        assert_eq!(
            f(c(ScalarType::F32, 1.0 + 3.0 * 2f64.powi(-24))),
            1.0 + 2f32.powi(-22)
        );
        // f32 to f64 is exact, and the 64 bits are all kept
        assert_eq!(
            d(cast(ScalarType::F32, ScalarType::F64, fb(0.1))),
            0.1f32 as f64
        );
        assert_eq!(
            d(cast(
                ScalarType::I32,
                ScalarType::F64,
                (-7i32) as u32 as u64
            )),
            -7.0
        );
        assert_eq!(
            d(binary(BinOp::Add, ScalarType::F64, db(0.1), db(0.2))),
            0.1 + 0.2
        );
    }

    #[test]
    fn float_rules() {
        let r = |op, a: f32, b: f32| f(binary(op, ScalarType::F32, fb(a), fb(b)));
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
