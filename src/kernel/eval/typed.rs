//! The typed element loops every step ends in: one monomorphic loop per operation and
//! type, over slices or a broadcast literal, so the compiler vectorises each.

use bytemuck::Pod;

use super::View;
use crate::kernel::expr::{BinOp, UnOp};
use crate::kernel::ops;
use crate::kernel::scalar::ScalarType;

#[inline(always)]
fn map1<A: Pod, R: Pod>(a: View<'_>, out: &mut [u32], f: impl Fn(A) -> R) {
    let out: &mut [R] = bytemuck::cast_slice_mut(out);
    match a {
        View::Slice(a) => {
            let a: &[A] = bytemuck::cast_slice(a);
            for (o, &x) in out.iter_mut().zip(a) {
                *o = f(x);
            }
        }
        View::Imm(a) => out.fill(f(bytemuck::cast(a))),
    }
}

#[inline(always)]
fn map2<A: Pod, B: Pod, R: Pod>(a: View<'_>, b: View<'_>, out: &mut [u32], f: impl Fn(A, B) -> R) {
    let out: &mut [R] = bytemuck::cast_slice_mut(out);
    match (a, b) {
        (View::Slice(a), View::Slice(b)) => {
            let (a, b): (&[A], &[B]) = (bytemuck::cast_slice(a), bytemuck::cast_slice(b));
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = f(x, y);
            }
        }
        (View::Slice(a), View::Imm(y)) => {
            let a: &[A] = bytemuck::cast_slice(a);
            let y: B = bytemuck::cast(y);
            for (o, &x) in out.iter_mut().zip(a) {
                *o = f(x, y);
            }
        }
        (View::Imm(x), View::Slice(b)) => {
            let b: &[B] = bytemuck::cast_slice(b);
            let x: A = bytemuck::cast(x);
            for (o, &y) in out.iter_mut().zip(b) {
                *o = f(x, y);
            }
        }
        (View::Imm(x), View::Imm(y)) => out.fill(f(bytemuck::cast(x), bytemuck::cast(y))),
    }
}

#[inline(always)]
fn map3<T: Pod>(a: &[u32], b: &[u32], c: &[u32], out: &mut [u32], f: impl Fn(T, T, T) -> T) {
    let out: &mut [T] = bytemuck::cast_slice_mut(out);
    let (a, b, c): (&[T], &[T], &[T]) = (
        bytemuck::cast_slice(a),
        bytemuck::cast_slice(b),
        bytemuck::cast_slice(c),
    );
    for (((o, &x), &y), &z) in out.iter_mut().zip(a).zip(b).zip(c) {
        *o = f(x, y, z);
    }
}

pub(super) fn unary(op: UnOp, ty: ScalarType, a: View<'_>, out: &mut [u32]) {
    use ScalarType::*;
    match (ty, op) {
        (F32, UnOp::Neg) => map1(a, out, |x: f32| -x),
        (F32, UnOp::Abs) => map1(a, out, |x: f32| x.abs()),
        (F32, UnOp::Sqrt) => map1(a, out, |x: f32| x.sqrt()),
        (F32, UnOp::Sin) => map1(a, out, |x: f32| x.sin()),
        (F32, UnOp::Cos) => map1(a, out, |x: f32| x.cos()),
        (F32, UnOp::Tan) => map1(a, out, |x: f32| x.tan()),
        (F32, UnOp::Exp) => map1(a, out, |x: f32| x.exp()),
        (F32, UnOp::Exp2) => map1(a, out, |x: f32| x.exp2()),
        (F32, UnOp::Ln) => map1(a, out, |x: f32| x.ln()),
        (F32, UnOp::Log2) => map1(a, out, |x: f32| x.log2()),
        (F32, UnOp::Floor) => map1(a, out, |x: f32| x.floor()),
        (F32, UnOp::Ceil) => map1(a, out, |x: f32| x.ceil()),
        (F32, UnOp::Round) => map1(a, out, |x: f32| x.round_ties_even()),
        (F32, UnOp::Fract) => map1(a, out, ops::fract_f32),
        (I32, UnOp::Neg) => map1(a, out, |x: i32| x.wrapping_neg()),
        (I32, UnOp::Abs) => map1(a, out, |x: i32| x.wrapping_abs()),
        (Bool, UnOp::Not) => map1(a, out, |x: u32| (x == 0) as u32),
        (I32 | U32, UnOp::Not) => map1(a, out, |x: u32| !x),
        // Identity (abs on u32) and anything the typed builder cannot make.
        _ => map1(a, out, |x: u32| ops::unary(op, ty, x as u64) as u32),
    }
}

pub(super) fn binary(op: BinOp, ty: ScalarType, a: View<'_>, b: View<'_>, out: &mut [u32]) {
    use ScalarType::*;
    // An unsigned division or remainder by a literal power of two (a row of an image
    // from the index) is a shift or a mask: the same result without a divide per
    // element.
    if let (U32, BinOp::Div | BinOp::Rem, View::Imm(y)) = (ty, op, b) {
        if y.is_power_of_two() {
            let (k, m) = (y.trailing_zeros(), y - 1);
            return match op {
                BinOp::Div => map1(a, out, |x: u32| x >> k),
                _ => map1(a, out, |x: u32| x & m),
            };
        }
    }
    macro_rules! cmp {
        ($t:ty) => {
            match op {
                BinOp::Lt => map2(a, b, out, |x: $t, y: $t| (x < y) as u32),
                BinOp::Le => map2(a, b, out, |x: $t, y: $t| (x <= y) as u32),
                BinOp::Gt => map2(a, b, out, |x: $t, y: $t| (x > y) as u32),
                BinOp::Ge => map2(a, b, out, |x: $t, y: $t| (x >= y) as u32),
                BinOp::Eq => map2(a, b, out, |x: $t, y: $t| (x == y) as u32),
                _ => map2(a, b, out, |x: $t, y: $t| (x != y) as u32),
            }
        };
    }
    // The integer types differ only in their type and their division helpers; a
    // shift's amount is u32 for both.
    macro_rules! int {
        ($t:ty, $div:path, $rem:path) => {
            match op {
                BinOp::Add => map2(a, b, out, |x: $t, y: $t| x.wrapping_add(y)),
                BinOp::Sub => map2(a, b, out, |x: $t, y: $t| x.wrapping_sub(y)),
                BinOp::Mul => map2(a, b, out, |x: $t, y: $t| x.wrapping_mul(y)),
                BinOp::Div => map2(a, b, out, $div),
                BinOp::Rem => map2(a, b, out, $rem),
                BinOp::Min => map2(a, b, out, |x: $t, y: $t| x.min(y)),
                BinOp::Max => map2(a, b, out, |x: $t, y: $t| x.max(y)),
                BinOp::Shl => map2(a, b, out, |x: $t, y: u32| x.wrapping_shl(y)),
                BinOp::Shr => map2(a, b, out, |x: $t, y: u32| x.wrapping_shr(y)),
                _ if op.is_comparison() => cmp!($t),
                _ => int_bits(op, a, b, out),
            }
        };
    }
    match ty {
        F32 => match op {
            BinOp::Add => map2(a, b, out, |x: f32, y: f32| x + y),
            BinOp::Sub => map2(a, b, out, |x: f32, y: f32| x - y),
            BinOp::Mul => map2(a, b, out, |x: f32, y: f32| x * y),
            BinOp::Div => map2(a, b, out, |x: f32, y: f32| x / y),
            BinOp::Rem => map2(a, b, out, ops::rem_f32),
            BinOp::Min => map2(a, b, out, ops::min_f32),
            BinOp::Max => map2(a, b, out, ops::max_f32),
            BinOp::Pow => map2(a, b, out, ops::pow_f32),
            _ if op.is_comparison() => cmp!(f32),
            _ => map2(a, b, out, |x: u32, y: u32| {
                ops::binary(op, ty, x as u64, y as u64) as u32
            }),
        },
        I32 => int!(i32, ops::div_i32, ops::rem_i32),
        U32 => int!(u32, ops::div_u32, ops::rem_u32),
        Bool => match op {
            BinOp::Eq => map2(a, b, out, |x: u32, y: u32| (x == y) as u32),
            BinOp::Ne => map2(a, b, out, |x: u32, y: u32| (x != y) as u32),
            _ => int_bits(op, a, b, out),
        },
        // a program with 64-bit values runs on the wide evaluator (eval/wide.rs)
        F64 | I64 | U64 => {}
    }
}

fn int_bits(op: BinOp, a: View<'_>, b: View<'_>, out: &mut [u32]) {
    match op {
        BinOp::And => map2(a, b, out, |x: u32, y: u32| x & y),
        BinOp::Or => map2(a, b, out, |x: u32, y: u32| x | y),
        _ => map2(a, b, out, |x: u32, y: u32| x ^ y),
    }
}

pub(super) fn cast(from: ScalarType, to: ScalarType, a: View<'_>, out: &mut [u32]) {
    use ScalarType::*;
    match (from, to) {
        (F32, I32) => map1(a, out, ops::f32_to_i32),
        (F32, U32) => map1(a, out, ops::f32_to_u32),
        (I32, F32) => map1(a, out, |x: i32| x as f32),
        (U32, F32) => map1(a, out, |x: u32| x as f32),
        // the same bits
        (I32, U32) | (U32, I32) => map1(a, out, |x: u32| x),
        _ => map1(a, out, |x: u32| ops::cast(from, to, x as u64) as u32),
    }
}

#[inline(always)]
fn mad<T: Pod>(a: &[u32], b: View<'_>, c: View<'_>, out: &mut [u32], f: impl Fn(T, T, T) -> T) {
    let out: &mut [T] = bytemuck::cast_slice_mut(out);
    let a: &[T] = bytemuck::cast_slice(a);
    match (b, c) {
        (View::Slice(b), View::Slice(c)) => {
            let (b, c): (&[T], &[T]) = (bytemuck::cast_slice(b), bytemuck::cast_slice(c));
            for (((o, &x), &y), &z) in out.iter_mut().zip(a).zip(b).zip(c) {
                *o = f(x, y, z);
            }
        }
        (View::Slice(b), View::Imm(z)) => {
            let b: &[T] = bytemuck::cast_slice(b);
            let z: T = bytemuck::cast(z);
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = f(x, y, z);
            }
        }
        (View::Imm(y), View::Slice(c)) => {
            let c: &[T] = bytemuck::cast_slice(c);
            let y: T = bytemuck::cast(y);
            for ((o, &x), &z) in out.iter_mut().zip(a).zip(c) {
                *o = f(x, y, z);
            }
        }
        (View::Imm(y), View::Imm(z)) => {
            let (y, z): (T, T) = (bytemuck::cast(y), bytemuck::cast(z));
            for (o, &x) in out.iter_mut().zip(a) {
                *o = f(x, y, z);
            }
        }
    }
}

/// `a * b + c` with two roundings (Rust never contracts it into an FMA).
pub(super) fn mul_add(ty: ScalarType, a: &[u32], b: View<'_>, c: View<'_>, out: &mut [u32]) {
    match ty {
        ScalarType::F32 => mad(a, b, c, out, |x: f32, y: f32, z: f32| x * y + z),
        ScalarType::I32 => mad(a, b, c, out, |x: i32, y: i32, z: i32| {
            x.wrapping_mul(y).wrapping_add(z)
        }),
        _ => mad(a, b, c, out, |x: u32, y: u32, z: u32| {
            x.wrapping_mul(y).wrapping_add(z)
        }),
    }
}

pub(super) fn clamp(ty: ScalarType, a: &[u32], b: &[u32], c: &[u32], out: &mut [u32]) {
    match ty {
        ScalarType::F32 => map3(a, b, c, out, |x: f32, lo: f32, hi: f32| {
            ops::min_f32(ops::max_f32(x, lo), hi)
        }),
        ScalarType::I32 => map3(a, b, c, out, |x: i32, lo: i32, hi: i32| x.max(lo).min(hi)),
        _ => map3(a, b, c, out, |x: u32, lo: u32, hi: u32| x.max(lo).min(hi)),
    }
}

/// [`clamp`] between two literal bounds: the same operations, one stream instead of
/// three.
pub(super) fn clamp_imm(ty: ScalarType, a: &[u32], lo: u32, hi: u32, out: &mut [u32]) {
    let a = View::Slice(a);
    match ty {
        ScalarType::F32 => {
            let (lo, hi) = (f32::from_bits(lo), f32::from_bits(hi));
            map1(a, out, |x: f32| ops::min_f32(ops::max_f32(x, lo), hi))
        }
        ScalarType::I32 => {
            let (lo, hi) = (lo as i32, hi as i32);
            map1(a, out, |x: i32| x.max(lo).min(hi))
        }
        _ => map1(a, out, |x: u32| x.max(lo).min(hi)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small seeded generator (xorshift), so a failure names its inputs.
    fn words(seed: u64, n: usize) -> Vec<u32> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u32
            })
            .collect()
    }

    /// The shift and mask for a power-of-two divisor give what the scalar meaning
    /// (`ops::binary`) gives, for every power of two and for divisors that are not
    /// one (the general loop), on random and edge dividends.
    #[test]
    fn unsigned_division_by_a_literal_matches_the_scalar_meaning() {
        let mut xs = words(0x5eed_0001, 4099);
        xs.extend([0, 1, u32::MAX, u32::MAX - 1, 1 << 31, (1 << 31) - 1]);
        let divisors =
            (0..32)
                .map(|k| 1u32 << k)
                .chain([0, 3, 7, 1000, 2049, u32::MAX, (1 << 31) + 1]);
        let mut out = vec![0u32; xs.len()];
        for d in divisors {
            for op in [BinOp::Div, BinOp::Rem] {
                binary(
                    op,
                    ScalarType::U32,
                    View::Slice(&xs),
                    View::Imm(d),
                    &mut out,
                );
                for (&x, &o) in xs.iter().zip(&out) {
                    let want = ops::binary(op, ScalarType::U32, x as u64, d as u64) as u32;
                    assert_eq!(o, want, "{op:?}: {x} by {d} (seed 0x5eed_0001)");
                }
            }
        }
    }

    /// Casts between the integer types keep the bit pattern, as `ops::cast` says.
    #[test]
    fn integer_casts_keep_the_bits() {
        let xs = words(0x5eed_0002, 1000);
        let mut out = vec![0u32; xs.len()];
        for (from, to) in [
            (ScalarType::U32, ScalarType::I32),
            (ScalarType::I32, ScalarType::U32),
        ] {
            cast(from, to, View::Slice(&xs), &mut out);
            for (&x, &o) in xs.iter().zip(&out) {
                assert_eq!(
                    o as u64,
                    ops::cast(from, to, x as u64),
                    "{from:?} -> {to:?}: {x}"
                );
            }
        }
    }

    /// A clamp between literals gives what the three-slice clamp gives, for every
    /// type, bounds crossed or not, NaNs included.
    #[test]
    fn clamp_between_literals_matches_the_general_clamp() {
        let xs = words(0x5eed_0003, 2000);
        let mut fs: Vec<u32> = xs.iter().map(|&x| (x as f32 * 1e-7).to_bits()).collect();
        fs.extend([f32::NAN, f32::INFINITY, -0.0, 0.0].map(f32::to_bits));
        let bounds = [
            (0u32, 2047u32),
            (5, 3),
            (u32::MAX - 3, 7),
            (1 << 31, u32::MAX),
        ];
        for ty in [ScalarType::F32, ScalarType::I32, ScalarType::U32] {
            let a = if ty == ScalarType::F32 { &fs } else { &xs };
            for (lo, hi) in bounds {
                let (lo, hi) = match ty {
                    ScalarType::F32 => ((lo as f32 * 1e-7).to_bits(), (hi as f32 * 1e-7).to_bits()),
                    _ => (lo, hi),
                };
                let (mut got, mut want) = (vec![0u32; a.len()], vec![0u32; a.len()]);
                clamp_imm(ty, a, lo, hi, &mut got);
                clamp(ty, a, &vec![lo; a.len()], &vec![hi; a.len()], &mut want);
                assert_eq!(got, want, "{ty:?} in {lo}..={hi}");
            }
        }
    }
}
