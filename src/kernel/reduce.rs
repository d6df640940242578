//! Reductions: what a map-reduce combines, and how partial results combine.
//!
//! A reduction applies its kernel to every element and combines the results with one
//! [`Reduce`] operation, in one pass: no mapped array is ever written. Each device
//! reduces the ranges it is given to a [`Partial`]; the host combines the partials.
//!
//! Semantics, the same on every device:
//! - `Sum` of `i32`/`u32` wraps, as WGSL's `+` does, so it is exact and independent of
//!   the order of combination.
//! - `Sum` of `f32` is accurate, not sequential: the CPU sums each block of
//!   [`BLOCK`](super::eval::BLOCK) elements in `f64` with eight independent
//!   accumulators and combines blocks in `f64`; the GPU sums [`GPU_PER_THREAD`]
//!   elements per thread in `f32`, then a tree over the workgroup's 256 threads in
//!   workgroup memory (depth 8), and the host adds the workgroups' partials in `f64`.
//!   Error bound, with `S` the exact sum of the mapped values `y_i` and `u = 2^-24`:
//!   `|sum - S| <= 16 u * sum |y_i| + ulp(S) / 2` on any device or split (the GPU's
//!   `f32` part has at most 7 + 8 = 15 roundings on any path; the `f64` parts add
//!   less than `n * 2^-53 * sum |y_i|`; the last term is the final rounding to `f32`).
//!   NaN and infinities propagate as IEEE addition says.
//! - `Min`/`Max` are exact. For `f32` they ignore NaN (IEEE `minNum`/`maxNum`, the
//!   kernel language's `min`/`max`, numpy's `nanmin`); the result is NaN only when
//!   every element is NaN. `-0.0` and `+0.0` compare equal, so either may be returned.
//! - An empty input reduces to the operation's identity: `0` for `Sum`; for `Min`,
//!   `f32` NaN (no value), `i32::MAX`, `u32::MAX`; for `Max`, NaN, `i32::MIN`, `0`.
//! - 64-bit values: `i64`/`u64` sums wrap; `Min`/`Max` as for 32 bits. An `f64` sum is
//!   compensated on every device: each running sum carries the rounding errors it
//!   made, found exactly by Knuth's two-sum (the CPU's blocks, a GPU's threads and
//!   workgroup tree, the host's combination of partials, four words each from a GPU);
//!   error `|sum - S| <= 2 ulp(S) + n u^2 sum |y_i|` with `u = 2^-53` (tested on random
//!   data against an exact sum, where a plain sum misses the bound).

use std::fmt;

use super::scalar::ScalarType;

/// Elements each GPU thread combines sequentially before the workgroup's tree.
pub(crate) const GPU_PER_THREAD: u32 = 8;

/// How a reduction combines the mapped values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reduce {
    /// The sum (wrapping for integers; accurate, with a stated bound, for floats).
    Sum,
    /// The smallest value (NaN ignored for floats).
    Min,
    /// The largest value (NaN ignored for floats).
    Max,
}

impl Reduce {
    /// A short lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Reduce::Sum => "sum",
            Reduce::Min => "min",
            Reduce::Max => "max",
        }
    }

    /// The identity's bit pattern for values of type `ty`.
    pub(crate) fn identity_bits(self, ty: ScalarType) -> u64 {
        use ScalarType::*;
        match (self, ty) {
            (Reduce::Sum, _) => 0,
            (_, F32) => f32::NAN.to_bits() as u64,
            (_, F64) => f64::NAN.to_bits(),
            (Reduce::Min, I32) => i32::MAX as u32 as u64,
            (Reduce::Max, I32) => i32::MIN as u32 as u64,
            (Reduce::Min, I64) => i64::MAX as u64,
            (Reduce::Max, I64) => i64::MIN as u64,
            (Reduce::Min, U64) => u64::MAX,
            (Reduce::Min, _) => u32::MAX as u64,
            (Reduce::Max, _) => 0,
        }
    }

    /// The partial of no elements.
    pub(crate) fn identity(self, ty: ScalarType) -> Partial {
        match (self, ty) {
            (Reduce::Sum, ScalarType::F32) => Partial::F64(0.0),
            (Reduce::Sum, ScalarType::F64) => Partial::Comp(0.0, 0.0),
            _ => Partial::Bits(self.identity_bits(ty)),
        }
    }
}

impl fmt::Display for Reduce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A device's result for a range: an `f64` running sum for `f32` sums, a compensated
/// `f64` sum (the sum and the rounding errors two-sum found) for `f64` sums,
/// else the value's bit pattern (64 bits wide for a 64-bit type).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Partial {
    F64(f64),
    Comp(f64, f64),
    Bits(u64),
}

/// `a + b` and the rounding error it made (Knuth's two-sum: exact).
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

impl Partial {
    /// Combines two partials of the same reduction over values of type `ty`.
    pub(crate) fn combine(self, other: Partial, op: Reduce, ty: ScalarType) -> Partial {
        match (self, other) {
            (Partial::F64(a), Partial::F64(b)) => Partial::F64(a + b),
            (Partial::Comp(a, ca), Partial::Comp(b, cb)) => {
                let (s, e) = two_sum(a, b);
                Partial::Comp(s, ca + cb + e)
            }
            (Partial::Bits(a), Partial::Bits(b)) => Partial::Bits(combine_bits(op, ty, a, b)),
            // mixed forms never meet (one reduction, one type); keep the sum's form
            (Partial::F64(a), Partial::Bits(b)) | (Partial::Bits(b), Partial::F64(a)) => {
                Partial::F64(a + f32::from_bits(b as u32) as f64)
            }
            // likewise: a value in another form joins the compensated sum as an f64
            (Partial::Comp(a, c), Partial::F64(b)) | (Partial::F64(b), Partial::Comp(a, c)) => {
                let (s, e) = two_sum(a, b);
                Partial::Comp(s, c + e)
            }
            (Partial::Comp(a, c), Partial::Bits(b)) | (Partial::Bits(b), Partial::Comp(a, c)) => {
                let (s, e) = two_sum(a, f64::from_bits(b));
                Partial::Comp(s, c + e)
            }
        }
    }

    /// The partial of one value (bit pattern of type `ty`): how a GPU's per-workgroup
    /// results come back.
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    pub(crate) fn of_value(op: Reduce, ty: ScalarType, bits: u64) -> Partial {
        match (op, ty) {
            (Reduce::Sum, ScalarType::F32) => Partial::F64(f32::from_bits(bits as u32) as f64),
            (Reduce::Sum, ScalarType::F64) => Partial::Comp(f64::from_bits(bits), 0.0),
            _ => Partial::Bits(bits),
        }
    }

    /// The final value's bit pattern.
    pub(crate) fn bits(self) -> u64 {
        match self {
            Partial::F64(v) => (v as f32).to_bits() as u64,
            Partial::Comp(s, c) => (s + c).to_bits(),
            Partial::Bits(b) => b,
        }
    }
}

/// `op(a, b)` on bit patterns of type `ty`, with WGSL's meaning.
pub(crate) fn combine_bits(op: Reduce, ty: ScalarType, a: u64, b: u64) -> u64 {
    use ScalarType::*;
    let (f, g) = (f32::from_bits(a as u32), f32::from_bits(b as u32));
    let (x, y) = (f64::from_bits(a), f64::from_bits(b));
    match (op, ty) {
        (Reduce::Sum, F32) => (f + g).to_bits() as u64,
        (Reduce::Sum, F64) => (x + y).to_bits(),
        (Reduce::Sum, I64 | U64) => a.wrapping_add(b),
        (Reduce::Sum, _) => (a as u32).wrapping_add(b as u32) as u64,
        (Reduce::Min, F32) => f.min(g).to_bits() as u64,
        (Reduce::Max, F32) => f.max(g).to_bits() as u64,
        (Reduce::Min, F64) => x.min(y).to_bits(),
        (Reduce::Max, F64) => x.max(y).to_bits(),
        (Reduce::Min, I32) => (a as i32).min(b as i32) as u32 as u64,
        (Reduce::Max, I32) => (a as i32).max(b as i32) as u32 as u64,
        (Reduce::Min, I64) => (a as i64).min(b as i64) as u64,
        (Reduce::Max, I64) => (a as i64).max(b as i64) as u64,
        (Reduce::Min, _) => a.min(b),
        (Reduce::Max, _) => a.max(b),
    }
}

/// Reduces a block of values (bit patterns of type `ty`; two words each, low first,
/// for a 64-bit type) on the CPU. Eight independent lanes, so the loop vectorises;
/// `f32` sums accumulate in `f64`, `f64` sums are compensated.
pub(crate) fn reduce_block(op: Reduce, ty: ScalarType, xs: &[u32]) -> Partial {
    if ty.is_wide() {
        let vals = xs
            .chunks_exact(2)
            .map(|w| w[0] as u64 | (w[1] as u64) << 32);
        return match (op, ty) {
            (Reduce::Sum, ScalarType::F64) => {
                let (mut s, mut c) = (0.0f64, 0.0f64);
                for v in vals {
                    let (t, e) = two_sum(s, f64::from_bits(v));
                    s = t;
                    c += e;
                }
                Partial::Comp(s, c)
            }
            _ => Partial::Bits(vals.fold(op.identity_bits(ty), |a, b| combine_bits(op, ty, a, b))),
        };
    }
    match (op, ty) {
        (Reduce::Sum, ScalarType::F32) => Partial::F64(sum_f32(xs)),
        (Reduce::Sum, _) => Partial::Bits(lanes(xs, 0, u32::wrapping_add) as u64),
        (Reduce::Min, ScalarType::F32) => {
            Partial::Bits(lanes_f32(xs, f32::NAN, f32::min).to_bits() as u64)
        }
        (Reduce::Max, ScalarType::F32) => {
            Partial::Bits(lanes_f32(xs, f32::NAN, f32::max).to_bits() as u64)
        }
        (Reduce::Min, ScalarType::I32) => {
            Partial::Bits(lanes(xs, i32::MAX as u32, |a, b| (a as i32).min(b as i32) as u32) as u64)
        }
        (Reduce::Max, ScalarType::I32) => {
            Partial::Bits(lanes(xs, i32::MIN as u32, |a, b| (a as i32).max(b as i32) as u32) as u64)
        }
        (Reduce::Min, _) => Partial::Bits(lanes(xs, u32::MAX, u32::min) as u64),
        (Reduce::Max, _) => Partial::Bits(lanes(xs, 0, u32::max) as u64),
    }
}

const LANES: usize = 8;

fn sum_f32(xs: &[u32]) -> f64 {
    let mut acc = [0f64; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for c in &mut chunks {
        for k in 0..LANES {
            acc[k] += f32::from_bits(c[k]) as f64;
        }
    }
    let mut s: f64 = chunks
        .remainder()
        .iter()
        .map(|&b| f32::from_bits(b) as f64)
        .sum();
    // pairwise over the lanes
    for w in [4, 2, 1] {
        for k in 0..w {
            acc[k] += acc[k + w];
        }
    }
    s += acc[0];
    s
}

fn lanes(xs: &[u32], id: u32, f: impl Fn(u32, u32) -> u32) -> u32 {
    let mut acc = [id; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for c in &mut chunks {
        for k in 0..LANES {
            acc[k] = f(acc[k], c[k]);
        }
    }
    let mut r = chunks.remainder().iter().fold(id, |a, &b| f(a, b));
    for a in acc {
        r = f(r, a);
    }
    r
}

fn lanes_f32(xs: &[u32], id: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [id; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for c in &mut chunks {
        for k in 0..LANES {
            acc[k] = f(acc[k], f32::from_bits(c[k]));
        }
    }
    let mut r = chunks
        .remainder()
        .iter()
        .fold(id, |a, &b| f(a, f32::from_bits(b)));
    for a in acc {
        r = f(r, a);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use ScalarType::*;

    fn bits<T: bytemuck::Pod>(xs: &[T]) -> Vec<u32> {
        bytemuck::cast_slice(xs).to_vec()
    }

    #[test]
    fn blocks_reduce_every_length_and_type() {
        for n in [0usize, 1, 7, 8, 9, 63, 1000] {
            let f: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 100.0).collect();
            let want: f64 = f.iter().map(|&x| x as f64).sum();
            let got = match reduce_block(Reduce::Sum, F32, &bits(&f)) {
                Partial::F64(v) => v,
                p => panic!("{p:?}"),
            };
            assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "n={n}");
            let lo = f.iter().copied().fold(f32::NAN, f32::min);
            let hi = f.iter().copied().fold(f32::NAN, f32::max);
            assert_eq!(
                reduce_block(Reduce::Min, F32, &bits(&f)).bits() as u32,
                lo.to_bits()
            );
            assert_eq!(
                reduce_block(Reduce::Max, F32, &bits(&f)).bits() as u32,
                hi.to_bits()
            );

            let i: Vec<i32> = (0..n as i32).map(|k| k.wrapping_mul(0x3b9a_ca07)).collect();
            let s = i.iter().fold(0i32, |a, &b| a.wrapping_add(b));
            assert_eq!(
                reduce_block(Reduce::Sum, I32, &bits(&i)).bits() as u32,
                s as u32
            );
            let lo = i.iter().copied().min().unwrap_or(i32::MAX);
            let hi = i.iter().copied().max().unwrap_or(i32::MIN);
            assert_eq!(
                reduce_block(Reduce::Min, I32, &bits(&i)).bits() as u32,
                lo as u32
            );
            assert_eq!(
                reduce_block(Reduce::Max, I32, &bits(&i)).bits() as u32,
                hi as u32
            );

            let u: Vec<u32> = (0..n as u32).map(|k| k.wrapping_mul(0x9e37_79b9)).collect();
            let s = u.iter().fold(0u32, |a, &b| a.wrapping_add(b));
            assert_eq!(reduce_block(Reduce::Sum, U32, &u).bits() as u32, s);
            assert_eq!(
                reduce_block(Reduce::Min, U32, &u).bits() as u32,
                u.iter().copied().min().unwrap_or(u32::MAX)
            );
            assert_eq!(
                reduce_block(Reduce::Max, U32, &u).bits() as u32,
                u.iter().copied().max().unwrap_or(0)
            );
        }
    }

    #[test]
    fn min_max_ignore_nan_and_all_nan_is_nan() {
        let xs = [
            f32::NAN,
            3.0,
            f32::NAN,
            -2.0,
            9.0,
            f32::NAN,
            1.0,
            0.5,
            4.0,
            f32::NAN,
        ];
        assert_eq!(
            f32::from_bits(reduce_block(Reduce::Min, F32, &bits(&xs)).bits() as u32),
            -2.0
        );
        assert_eq!(
            f32::from_bits(reduce_block(Reduce::Max, F32, &bits(&xs)).bits() as u32),
            9.0
        );
        let nans = [f32::NAN; 11];
        assert!(
            f32::from_bits(reduce_block(Reduce::Min, F32, &bits(&nans)).bits() as u32).is_nan()
        );
        // the identity is neutral
        let id = Reduce::Min.identity(F32);
        let p = reduce_block(Reduce::Min, F32, &bits(&xs));
        assert_eq!(id.combine(p, Reduce::Min, F32).bits(), p.bits());
    }

    #[test]
    fn combining_is_the_operation() {
        let a = Partial::Bits(u32::MAX as u64);
        assert_eq!(
            a.combine(Partial::Bits(2), Reduce::Sum, U32).bits() as u32,
            1
        );
        let a = Partial::Bits((-5i32) as u32 as u64);
        assert_eq!(
            a.combine(Partial::Bits(3), Reduce::Min, I32).bits() as u32,
            (-5i32) as u32
        );
        assert_eq!(
            a.combine(Partial::Bits(3), Reduce::Min, U32).bits() as u32,
            3
        );
        let s = Partial::F64(1.5).combine(Partial::F64(2.25), Reduce::Sum, F32);
        assert_eq!(f32::from_bits(s.bits() as u32), 3.75);
        // f64 sums are compensated: 1e16 + 1 + 1 - 1e16 is 2, across partials too
        let blocks = [[1e16f64, 1.0], [1.0, -1e16]].map(|b| {
            let words: Vec<u32> = bytemuck::cast_slice(&b).to_vec();
            reduce_block(Reduce::Sum, F64, &words)
        });
        let s = blocks[0].combine(blocks[1], Reduce::Sum, F64);
        assert_eq!(f64::from_bits(s.bits()), 2.0);
        assert_eq!(1e16f64 + 1.0 + 1.0 - 1e16, 0.0, "where a plain sum gives 0");
    }
}
