//! `i64` and `u64` as types kernels compute in (wgpu's `SHADER_INT64` on a GPU;
//! lavapipe has it): wrapping arithmetic, division and remainder by WGSL's rules at 64
//! bits (`a / 0 == a`, `MIN / -1 == MIN`, `a % 0 == 0`), shift amounts masked to
//! `0..=63`, and the conversions: sign-extended from `i32`, zero-extended from `u32`,
//! the low 32 bits back, floats clamped to the ends they hold. Every value is built
//! from two 32-bit inputs and comes back as its two halves, compared bit for bit with
//! the same rule written in Rust, on every placement.

mod common;

use common::targets;
use hybrid::{fold, Expr, Kernel};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Halves = (Expr<u32>, Expr<u32>);

fn halves(v: Expr<u64>) -> Halves {
    (v.cast::<u32>(), (v >> 32u32).cast::<u32>())
}

fn join(hi: &Expr<i32>, lo: &Expr<i32>) -> Expr<i64> {
    (hi.cast::<i64>() << 32u32) | lo.cast::<u32>().cast::<i64>()
}

fn split(v: u64) -> (u32, u32) {
    (v as u32, (v >> 32) as u32)
}

/// Edge values of i64 as (hi, lo) halves, and random ones.
fn pairs(n: usize, seed: u64) -> (Vec<i32>, Vec<i32>, Vec<i32>, Vec<i32>) {
    let edges: [i64; 8] = [i64::MIN, -1, 0, 1, i64::MAX, 7, -7, 1 << 40];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v: Vec<(i64, i64)> = Vec::new();
    for &a in &edges {
        for &b in &edges {
            v.push((a, b));
        }
    }
    while v.len() < n {
        let small = rng.random_bool(0.3);
        let b = if small {
            rng.random_range(-100i64..100)
        } else {
            rng.random()
        };
        v.push((rng.random(), b));
    }
    let hi = |x: i64| (x >> 32) as i32;
    let lo = |x: i64| x as i32;
    (
        v.iter().map(|p| hi(p.0)).collect(),
        v.iter().map(|p| lo(p.0)).collect(),
        v.iter().map(|p| hi(p.1)).collect(),
        v.iter().map(|p| lo(p.1)).collect(),
    )
}

#[test]
fn i64_arithmetic_division_and_shifts_follow_the_rules() {
    type In = (Expr<i32>, Expr<i32>, Expr<i32>, Expr<i32>);
    type Out = (
        Expr<u32>,
        Expr<u32>,
        Expr<u32>,
        Expr<u32>,
        Expr<u32>,
        Expr<u32>,
        Expr<u32>,
        Expr<u32>,
    );
    let k = Kernel::new(|(ah, al, bh, bl): In| -> Out {
        let (a, b) = (join(&ah, &al), join(&bh, &bl));
        let q = halves((a.clone() / b.clone()).cast::<u64>());
        let r = halves((a.clone() % b.clone()).cast::<u64>());
        let s = bl.cast::<u32>();
        let sh = halves(((a.clone() << s.clone()) ^ (a.clone() >> s)).cast::<u64>());
        let m = halves(
            (a.clone() * b.clone() - a.abs() + (-b.clone()) + a.min(b.clone())).cast::<u64>(),
        );
        (q.0, q.1, r.0, r.1, sh.0, sh.1, m.0, m.1)
    });
    let want = |a: i64, b: i64| {
        let (q, r) = if b == 0 || (a == i64::MIN && b == -1) {
            (a, 0)
        } else {
            (a / b, a % b)
        };
        let s = b as u32;
        let sh = a.wrapping_shl(s) ^ a.wrapping_shr(s);
        let m = a
            .wrapping_mul(b)
            .wrapping_sub(a.wrapping_abs())
            .wrapping_add(b.wrapping_neg())
            .wrapping_add(a.min(b));
        [
            split(q as u64),
            split(r as u64),
            split(sh as u64),
            split(m as u64),
        ]
    };
    let (ah, al, bh, bl) = pairs(3_000, 640);
    for t in targets() {
        let o =
            t.rt.call(&k, (&ah[..], &al[..], &bh[..], &bl[..]), t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"))
                .output;
        for i in 0..ah.len() {
            let a = ((ah[i] as i64) << 32) | al[i] as u32 as i64;
            let b = ((bh[i] as i64) << 32) | bl[i] as u32 as i64;
            let got = [
                (o.0[i], o.1[i]),
                (o.2[i], o.3[i]),
                (o.4[i], o.5[i]),
                (o.6[i], o.7[i]),
            ];
            assert_eq!(
                got,
                want(a, b),
                "{t}: a = {a}, b = {b} (quotient, remainder, shifts, mix)"
            );
        }
    }
}

/// A u64 sum of 32-bit products that would overflow 32 bits, exact, on every device.
#[test]
fn a_u64_accumulation_is_exact() {
    let k = Kernel::new(|(x, y): (Expr<u32>, Expr<u32>)| -> Halves {
        let s = fold::<u64>(100, Expr::constant(0u64), |acc, i| {
            acc + x.cast::<u64>() * (y.cast::<u64>() + i.cast::<u64>())
        });
        halves(s)
    });
    let mut rng = ChaCha8Rng::seed_from_u64(641);
    let xs: Vec<u32> = (0..10_000).map(|_| rng.random()).collect();
    let ys: Vec<u32> = (0..10_000).map(|_| rng.random()).collect();
    for t in targets() {
        let (lo, hi): (Vec<u32>, Vec<u32>) =
            t.rt.call(&k, (&xs[..], &ys[..]), t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"))
                .output;
        for i in 0..xs.len() {
            let w = (0..100u64).fold(0u64, |s, j| {
                s.wrapping_add((xs[i] as u64).wrapping_mul(ys[i] as u64 + j))
            });
            assert_eq!((lo[i], hi[i]), split(w), "{t}: element {i}");
        }
    }
}

/// Conversions: i32 sign-extended and u32 zero-extended to 64 bits, the low 32 bits
/// back, floats clamped to the ends they hold (2^63 and 2^64 are past them) and NaN 0,
/// and 64-bit integers to f32 rounding to nearest.
#[test]
fn conversions_at_64_bits() {
    let xs = [
        -1.0f32,
        1.5,
        -2.5e18,
        9.3e18,
        -9.3e18,
        1.9e19,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        16_777_217.0,
    ];
    type Out = (
        Expr<u32>,
        Expr<u32>,
        Expr<u32>,
        Expr<u32>,
        Expr<u32>,
        Expr<u32>,
        Expr<f32>,
    );
    let k = Kernel::new(|(x,): (Expr<f32>,)| -> Out {
        let i = x.cast::<i64>();
        let u = x.cast::<u64>();
        let n = x.cast::<i32>();
        let ext = halves(n.cast::<i64>().cast::<u64>() ^ n.cast::<u32>().cast::<u64>());
        let ih = halves(i.cast::<u64>());
        let uh = halves(u);
        // 2^24 + 1 is no f32: through i64 and back it rounds to even
        let r = (i + 1i64).cast::<f32>();
        (ih.0, ih.1, uh.0, uh.1, ext.0, ext.1, r)
    });
    let top_i = 9_223_371_487_098_961_920.0f64;
    let top_u = 18_446_742_974_197_923_840.0f64;
    let want = |x: f32| {
        let d = x as f64;
        let i: i64 = if d.is_nan() { 0 } else { d.min(top_i) as i64 };
        let u: u64 = if d.is_nan() { 0 } else { d.min(top_u) as u64 };
        let n = if x > 2_147_483_520.0 {
            2_147_483_520
        } else {
            x as i32
        };
        let ext = (n as i64 as u64) ^ (n as u32 as u64);
        let (a, b, c) = (split(i as u64), split(u), split(ext));
        (a.0, a.1, b.0, b.1, c.0, c.1, (i.wrapping_add(1)) as f32)
    };
    for t in targets() {
        let o =
            t.rt.call(&k, (&xs[..],), t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"))
                .output;
        for (i, &x) in xs.iter().enumerate() {
            let g = (o.0[i], o.1[i], o.2[i], o.3[i], o.4[i], o.5[i], o.6[i]);
            assert_eq!(g, want(x), "{t}: x = {x}");
        }
    }
}
