//! Kernels of any signature (`Kernel::new`): many inputs of their own types, several
//! results, whole-array inputs read at computed indices, loops with several carried
//! values, a count known at the call and an early exit — on every placement, against
//! values computed here in plain Rust from the rule each operation follows.
//!
//! Floats are compared bit for bit only through operations no driver may contract
//! (`min`, `max`, `+` of two inputs, a product alone); integer results are exact.

mod common;

use common::{shared_cpu, targets_with_splits};
use hybrid::{fold_while, fold_with, index, Error, Expr, Kernel, Placement, Reduce, Sent, Table};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Eight inputs of three types, four results of three types.
#[test]
#[allow(clippy::type_complexity)]
fn eight_inputs_of_their_own_types_give_four_results() {
    let k = Kernel::new(
        |(a, b, c, d, e, f, g, h): (
            Expr<f32>,
            Expr<u32>,
            Expr<i32>,
            Expr<f32>,
            Expr<u32>,
            Expr<i32>,
            Expr<f32>,
            Expr<f32>,
        )| {
            let r0 = (a.clone() + d.clone()).max(g.clone()).min(h.clone());
            let r1 = (b.clone() ^ e.clone()) + index();
            let r2 = c.clone() * f.clone() - c.clone();
            let r3 = (e.cast::<f32>() * a) + b.cast::<f32>();
            (r0, r1, r2, r3.max(0.0f32))
        },
    );
    assert_eq!(k.arity(), 8);
    let n = 70_000;
    let mut r = rng(1);
    let a: Vec<f32> = (0..n).map(|_| r.random_range(-10.0..10.0)).collect();
    let b: Vec<u32> = (0..n).map(|_| r.random()).collect();
    let c: Vec<i32> = (0..n).map(|_| r.random()).collect();
    let d: Vec<f32> = (0..n).map(|_| r.random_range(-10.0..10.0)).collect();
    let e: Vec<u32> = (0..n).map(|_| r.random_range(0..1000)).collect();
    let f: Vec<i32> = (0..n).map(|_| r.random()).collect();
    let g: Vec<f32> = (0..n).map(|_| r.random_range(-10.0..10.0)).collect();
    let h: Vec<f32> = (0..n).map(|_| r.random_range(-10.0..10.0)).collect();
    for t in targets_with_splits(&[0.5]) {
        let run =
            t.rt.call(&k, (&a, &b, &c, &d, &e, &f, &g, &h), t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"));
        let (r0, r1, r2, r3) = run.output;
        for i in 0..n {
            assert_eq!(r0[i], (a[i] + d[i]).max(g[i]).min(h[i]), "{t} r0[{i}]");
            assert_eq!(r1[i], (b[i] ^ e[i]).wrapping_add(i as u32), "{t} r1[{i}]");
            assert_eq!(
                r2[i],
                c[i].wrapping_mul(f[i]).wrapping_sub(c[i]),
                "{t} r2[{i}]"
            );
            // a product then a sum: a GPU may contract it, so within two roundings
            let want = (e[i] as f32 * a[i] + b[i] as f32).max(0.0);
            assert!(
                (r3[i] - want).abs() <= want.abs() * 2.0 * f32::EPSILON,
                "{t} r3[{i}]: {} vs {want}",
                r3[i]
            );
        }
        // every element-wise input is partitioned; the report says so per argument
        assert_eq!(run.report.inputs().len(), 8, "{t}");
        assert!(run
            .report
            .inputs()
            .iter()
            .all(|m| m.sent() == Sent::Partitioned));
    }
}

/// Reads out of range clamp to the nearest element, or give the default; an empty
/// table reads the default, or zero; `len` is the table's length.
#[test]
fn table_reads_clamp_or_default_on_every_device() {
    let k = Kernel::new(|(j, t, e): (Expr<i32>, Table<u32>, Table<u32>)| {
        (
            t.at(j.clone()),
            t.at_or(j.clone(), 7u32),
            t.at(j.cast::<u32>()),
            e.at(j.clone()) + e.at_or(j, 5u32) + e.len() * 100u32 + t.len(),
        )
    });
    let table: Vec<u32> = (0..1000).map(|i| i * 3 + 1).collect();
    let empty: Vec<u32> = Vec::new();
    let mut r = rng(2);
    let mut js: Vec<i32> = (0..50_000).map(|_| r.random_range(-1500..2500)).collect();
    js.extend([i32::MIN, -1, 0, 999, 1000, i32::MAX]);
    for t in targets_with_splits(&[0.3]) {
        let (clamped, defaulted, unsigned, empties) =
            t.rt.call(&k, (&js, &table, &empty), t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"))
                .output;
        for (i, &j) in js.iter().enumerate() {
            let near = table[j.clamp(0, 999) as usize];
            assert_eq!(clamped[i], near, "{t} at({j})");
            let want = if (0..1000).contains(&j) { near } else { 7 };
            assert_eq!(defaulted[i], want, "{t} at_or({j})");
            // the same bits as u32: negatives are huge, so they clamp to the last
            assert_eq!(
                unsigned[i],
                table[(j as u32).min(999) as usize],
                "{t} at({j} as u32)"
            );
            assert_eq!(empties[i], 5 + 1000, "{t} empty table");
        }
    }
}

/// A loop carrying three values over a table whose length is known only at the call,
/// and an escape loop whose elements stop at very different trips.
#[test]
fn loops_with_carries_counts_at_the_call_and_early_exits() {
    let moments = Kernel::new(|(x, t): (Expr<u32>, Table<u32>)| {
        let zero = Expr::constant(0u32);
        let (s, s2, m) = fold_with(
            t.len(),
            (zero.clone(), zero.clone(), zero),
            |(s, s2, m), j| {
                let v = t.at(j) ^ x.clone();
                (s + v.clone(), s2 + v.clone() * v.clone(), m.max(v))
            },
        );
        (s, s2, m)
    });
    // collatz steps until 1, at most 500: trips differ wildly inside one block
    let collatz = Kernel::new(|(x,): (Expr<u32>,)| {
        let (_, n) = fold_while(
            500u32,
            x,
            |v, _| v.gt(1u32),
            |v, _| {
                let odd = (v.clone() & 1u32).eq(1u32);
                odd.select(v.clone() * 3u32 + 1u32, v >> 1u32)
            },
        );
        n
    });
    let mut r = rng(3);
    let table: Vec<u32> = (0..300).map(|_| r.random()).collect();
    let xs: Vec<u32> = (0..20_000).map(|_| r.random_range(0..100_000)).collect();
    for t in targets_with_splits(&[0.5]) {
        let (s, s2, m) =
            t.rt.call(&moments, (&xs, &table), t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"))
                .output;
        let steps =
            t.rt.call(&collatz, (&xs,), t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"))
                .output;
        for (i, &x) in xs.iter().enumerate() {
            let (mut ws, mut ws2, mut wm) = (0u32, 0u32, 0u32);
            for &v in &table {
                let v = v ^ x;
                ws = ws.wrapping_add(v);
                ws2 = ws2.wrapping_add(v.wrapping_mul(v));
                wm = wm.max(v);
            }
            assert_eq!((s[i], s2[i], m[i]), (ws, ws2, wm), "{t} moments of {x}");
            let (mut v, mut n) = (x, 0u32);
            while n < 500 && v > 1 {
                v = if v & 1 == 1 {
                    v.wrapping_mul(3).wrapping_add(1)
                } else {
                    v >> 1
                };
                n += 1;
            }
            assert_eq!(steps[i], n, "{t} collatz({x})");
        }
    }
}

/// A NaN reaching a loop's condition stops the loop (IEEE: a comparison with NaN is
/// false), with the same trip count on every device; a zero count runs nothing.
#[test]
fn nan_in_a_condition_stops_the_loop_and_zero_trips_run_nothing() {
    let k = Kernel::new(|(x, max): (Expr<f32>, Expr<u32>)| {
        let (v, n) = fold_while(max, x, |v, _| v.lt(100.0f32), |v, _| v * 2.0f32);
        (v, n)
    });
    let xs = [f32::NAN, 1.0, 0.0, -1.0, 3.0, f32::INFINITY, 1.0];
    let maxes = [10u32, 10, 10, 3, 0, 10, 1_000_000];
    for t in targets_with_splits(&[]) {
        let (v, n) =
            t.rt.call(&k, (&xs, &maxes), t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"))
                .output;
        assert!(v[0].is_nan() && n[0] == 0, "{t}: NaN stops at once");
        assert_eq!((v[1], n[1]), (128.0, 7), "{t}");
        assert_eq!(
            (v[2], n[2]),
            (0.0, 10),
            "{t}: 0 * 2 stays below 100 until the count"
        );
        assert_eq!((v[3], n[3]), (-8.0, 3), "{t}");
        assert_eq!((v[4], n[4]), (3.0, 0), "{t}: a zero count runs nothing");
        assert_eq!((v[5], n[5]), (f32::INFINITY, 0), "{t}");
        assert_eq!(
            (v[6], n[6]),
            (128.0, 7),
            "{t}: a huge maximum stops at the condition"
        );
    }
}

/// Reductions take the same kernels: a dot product of inputs of two types, and a sum
/// over a kernel of three inputs and a table.
#[test]
fn reductions_of_many_input_kernels() {
    let dot = Kernel::new(|(a, b): (Expr<u32>, Expr<i32>)| a * b.cast::<u32>());
    let three = Kernel::new(
        |(a, b, c, t): (Expr<u32>, Expr<u32>, Expr<u32>, Table<u32>)| {
            (a ^ b) + c + t.at(index() % 7u32)
        },
    );
    let n = 100_003;
    let mut r = rng(4);
    let a: Vec<u32> = (0..n).map(|_| r.random()).collect();
    let b: Vec<i32> = (0..n).map(|_| r.random()).collect();
    let c: Vec<u32> = (0..n).map(|_| r.random()).collect();
    let t7: Vec<u32> = (0..7).map(|_| r.random()).collect();
    let want_dot = a
        .iter()
        .zip(&b)
        .fold(0u32, |s, (x, y)| s.wrapping_add(x.wrapping_mul(*y as u32)));
    let want3 = (0..n).fold(0u32, |s, i| {
        s.wrapping_add(
            (a[i] ^ (b[i] as u32))
                .wrapping_add(c[i])
                .wrapping_add(t7[i % 7]),
        )
    });
    let bu: Vec<u32> = b.iter().map(|&x| x as u32).collect();
    for t in targets_with_splits(&[0.5]) {
        let got = t.rt.call_reduce(&dot, (&a, &b), Reduce::Sum, t.placement);
        assert_eq!(
            got.unwrap_or_else(|e| panic!("{t}: {e}")).output,
            want_dot,
            "{t}"
        );
        let got =
            t.rt.call_reduce(&three, (&a, &bu, &c, &t7), Reduce::Sum, t.placement);
        assert_eq!(
            got.unwrap_or_else(|e| panic!("{t}: {e}")).output,
            want3,
            "{t}"
        );
    }
}

/// Bad input is a typed error, never a panic; empty input is an empty result.
#[test]
fn bad_calls_are_typed_errors_and_empty_is_empty() {
    let rt = shared_cpu();
    let k = Kernel::new(|(a, b): (Expr<f32>, Expr<f32>)| a + b);
    let r = rt.call(&k, (&[1.0f32, 2.0], &[1.0f32]), Placement::Auto);
    assert!(
        matches!(r, Err(Error::LengthMismatch { left: 2, right: 1 })),
        "{r:?}"
    );
    let e: [f32; 0] = [];
    let r = rt.call(&k, (&e, &e), Placement::Auto);
    assert_eq!(r.map(|r| r.output).ok(), Some(vec![]));
    // a kernel of tables only needs its length said
    let blur = Kernel::new(|(img,): (Table<f32>,)| img.at(index()) + img.at(index() + 1u32));
    let img = [1.0f32, 2.0, 4.0];
    let r = rt.call(&blur, (&img,), Placement::Auto);
    assert!(matches!(r, Err(Error::InvalidKernel { .. })), "{r:?}");
    let ok = rt.call_over(3, &blur, (&img,), Placement::Auto);
    assert_eq!(ok.map(|r| r.output).ok(), Some(vec![3.0, 6.0, 8.0]));
    let r = rt.call_over(2, &k, (&[1.0f32; 3], &[1.0f32; 3]), Placement::Auto);
    assert!(matches!(r, Err(Error::LengthMismatch { .. })), "{r:?}");
}
