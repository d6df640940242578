//! Loops against plain Rust, bit for bit, over several blocks with an offset: several
//! carried values, counts from a parameter, a table's length and each element, early
//! exits, NaN in a condition, swaps, nested loops, uniform carried values.

use super::tests::{bits, loops, plan_of, run, whole};
use super::{Step, BLOCK};
use crate::kernel::{fold_while, fold_with, Expr, Kernel, Param, Table};

/// A table of `n` floats with sums that round at every step.
fn table(n: usize) -> Vec<f32> {
    (0..n)
        .map(|j| (j as f32 * 0.37).sin() * 3.0 + 0.1)
        .collect()
}

#[test]
fn several_carries_over_a_table_read_once_per_iteration() {
    let k = Kernel::new(|(x, t): (Expr<f32>, Table<f32>)| {
        fold_with(t.len(), (x.clone(), x * 0.0), |(s, s2), j| {
            let v = t.at(j);
            (s + v.clone(), s2 + v.clone() * v)
        })
    });
    let plan = plan_of(&k);
    let l = loops(&plan.steps)[0];
    assert!(l.mask.is_none(), "a table's length is uniform: {plan:#?}");
    assert!(
        !l.body.iter().any(|s| matches!(s, Step::Load { .. })),
        "t.at(j) is one read, not a gather: {plan:#?}"
    );
    let n = 3 * BLOCK + 321;
    let xs: Vec<f32> = (0..n).map(|i| i as f32 * 0.01 - 7.0).collect();
    for size in [0, 1, 37] {
        let t = table(size);
        let got = run(&plan, &[&bits(&xs)], &[whole(&bits(&t))], 5, n);
        for (i, &x) in xs.iter().enumerate() {
            let (mut s, mut s2) = (x, x * 0.0);
            for &v in &t {
                (s, s2) = (s + v, s2 + v * v);
            }
            assert_eq!(got[2 * i], s.to_bits(), "sum, element {i}, table of {size}");
            assert_eq!(got[2 * i + 1], s2.to_bits(), "squares, element {i}");
        }
    }
}

#[test]
fn a_count_from_a_parameter_zero_included() {
    let p = Param::new(7u32);
    let k = Kernel::new(|(x,): (Expr<f32>,)| {
        let (a, b) = fold_with(p.expr(), (x.clone(), x * 0.5 + 1.0), |(a, b), i| {
            (a.clone() + b.clone(), a * b + i.cast::<f32>())
        });
        a - b
    });
    let n = 2 * BLOCK + 77;
    let xs: Vec<f32> = (0..n).map(|i| (i % 101) as f32 * 0.003).collect();
    for count in [7u32, 0, 1, 12] {
        p.set(count);
        let plan = plan_of(&k);
        assert!(loops(&plan.steps).iter().all(|l| l.mask.is_none()));
        let got = run(&plan, &[&bits(&xs)], &[], 0, n);
        for (i, &x) in xs.iter().enumerate() {
            let (mut a, mut b) = (x, x * 0.5 + 1.0);
            for i in 0..count {
                (a, b) = (a + b, a * b + i as f32);
            }
            assert_eq!(got[i], (a - b).to_bits(), "count {count}, element {i}");
        }
    }
}

#[test]
fn a_count_per_element_and_a_swap_under_a_mask() {
    // (a, b, c) -> (c, a + i, b): the first and last read other carried values, one
    // updated before and one after
    let k = Kernel::new(|(x, n): (Expr<f32>, Expr<u32>)| {
        let (a, b, c) = fold_with(n, (x.clone(), x.clone() * 2.0, x * 3.0), |(a, b, c), i| {
            (c, a + i.cast::<f32>(), b)
        });
        (a, b, c)
    });
    let plan = plan_of(&k);
    assert!(loops(&plan.steps)[0].mask.is_some(), "{plan:#?}");
    let len = 3 * BLOCK + 900;
    let xs: Vec<f32> = (0..len).map(|i| i as f32 * 0.25).collect();
    // block 0: counts 0..40 mixed; block 1: all zero; block 2: all 5; block 3: mixed
    let ns: Vec<u32> = (0..len)
        .map(|i| match i / BLOCK {
            1 => 0,
            2 => 5,
            _ => (i as u32 * 7919) % 41,
        })
        .collect();
    let got = run(&plan, &[&bits(&xs), &ns], &[], 100, len);
    for i in 0..len {
        let x = xs[i];
        let (mut a, mut b, mut c) = (x, x * 2.0, x * 3.0);
        for j in 0..ns[i] {
            (a, b, c) = (c, a + j as f32, b);
        }
        let want = [a.to_bits(), b.to_bits(), c.to_bits()];
        assert_eq!(got[3 * i..3 * i + 3], want, "element {i}, count {}", ns[i]);
    }
}

#[test]
fn carries_update_all_at_once() {
    let p = Param::new(5u32);
    let k = Kernel::new(|(x, y): (Expr<f32>, Expr<f32>)| {
        let (a, b) = fold_with(p.expr(), (x, y), |(a, b), _| (b, a));
        let (c, d) = fold_with(p.expr(), (a.clone(), b.clone()), |(c, d), _| {
            (d.clone() * 2.0, c + d)
        });
        (a, b, c, d)
    });
    let n = BLOCK + 3;
    let xs: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let ys: Vec<f32> = (0..n).map(|i| -(i as f32) - 0.5).collect();
    for count in [5u32, 4] {
        p.set(count);
        let plan = plan_of(&k);
        let got = run(&plan, &[&bits(&xs), &bits(&ys)], &[], 0, n);
        for i in 0..n {
            let (mut a, mut b) = (xs[i], ys[i]);
            for _ in 0..count {
                (a, b) = (b, a);
            }
            let (mut c, mut d) = (a, b);
            for _ in 0..count {
                (c, d) = (d * 2.0, c + d);
            }
            let want = [a, b, c, d].map(f32::to_bits);
            assert_eq!(got[4 * i..4 * i + 4], want, "count {count}, element {i}");
        }
    }
}

/// Escape-time iteration from `z = c`, stopping when `|z|^2 > 4`: the final `z` and
/// the trips.
fn escape(cr: f32, ci: f32, max: u32) -> (f32, f32, u32) {
    let (mut x, mut y, mut n) = (cr, ci, 0);
    while n < max && x * x + y * y <= 4.0 {
        (x, y) = (x * x - y * y + cr, x * y * 2.0 + ci);
        n += 1;
    }
    (x, y, n)
}

#[test]
fn an_early_exit_with_trips_per_element() {
    const MAX: u32 = 300;
    let k = Kernel::new(|(cr, ci): (Expr<f32>, Expr<f32>)| {
        let ((x, y), n) = fold_while(
            MAX,
            (cr.clone(), ci.clone()),
            |(x, y), _| (x.clone() * &x + y.clone() * &y).le(4.0),
            |(x, y), _| (x.clone() * &x - y.clone() * &y + &cr, x * y * 2.0 + &ci),
        );
        (x, y, n)
    });
    let plan = plan_of(&k);
    assert!(loops(&plan.steps)[0].mask.is_some(), "{plan:#?}");
    // block 0: all escape at once; block 1: none ever does; blocks 2-3: a line across
    // the set (every trip count from 0 to MAX, neighbours very different)
    let n = 3 * BLOCK + 1000;
    let c: Vec<(f32, f32)> = (0..n)
        .map(|i| match i / BLOCK {
            0 => (3.0 + i as f32 * 1e-3, 0.5),
            1 => ((i % 97) as f32 * 1e-3 - 0.2, (i % 13) as f32 * 1e-2),
            _ => (
                -2.1 + (i % BLOCK) as f32 * (2.7 / BLOCK as f32),
                0.01 * (i % 3) as f32,
            ),
        })
        .collect();
    let (cr, ci): (Vec<f32>, Vec<f32>) = c.into_iter().unzip();
    let got = run(&plan, &[&bits(&cr), &bits(&ci)], &[], 4096, n);
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..n {
        let (x, y, t) = escape(cr[i], ci[i], MAX);
        seen.insert(t);
        let want = [x.to_bits(), y.to_bits(), t];
        assert_eq!(
            got[3 * i..3 * i + 3],
            want,
            "element {i}: c = {} + {}i",
            cr[i],
            ci[i]
        );
        match i / BLOCK {
            0 => assert_eq!(t, 0),
            1 => assert_eq!(t, MAX),
            _ => {}
        }
    }
    assert!(seen.len() > 30, "trip counts seen: {seen:?}");
}

#[test]
fn a_nan_in_the_condition_stops_the_loop() {
    let k = Kernel::new(|(x,): (Expr<f32>,)| {
        let (a, n) = fold_while(
            1000u32,
            x.clone(),
            |a, _| a.lt(100.0),
            |a, i| a * &x + i.cast::<f32>(),
        );
        (a, n)
    });
    let n = BLOCK + 500;
    let special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -0.0, 1.5];
    let xs: Vec<f32> = (0..n)
        .map(|i| match i % 9 {
            k @ 0..=5 => special[k],
            _ => (i % 50) as f32 * 0.1 - 2.0,
        })
        .collect();
    let got = run(&plan_of(&k), &[&bits(&xs)], &[], 0, n);
    for (i, &x) in xs.iter().enumerate() {
        let (mut a, mut t) = (x, 0u32);
        while t < 1000 && a < 100.0 {
            a = a * x + t as f32;
            t += 1;
        }
        assert_eq!(got[2 * i..2 * i + 2], [a.to_bits(), t], "x = {x}");
    }
    // a NaN start: no trip at all
    assert_eq!(got[1], 0);
}

#[test]
fn nested_loops_under_and_inside_masks() {
    // a fold_while inside a fold_with, and one inside another fold_while
    let k = Kernel::new(|(x,): (Expr<f32>,)| {
        let inner = |v: Expr<f32>| {
            fold_while(
                40u32,
                v,
                |v, _| v.lt(10.0),
                |v, k| v * 1.25 + k.cast::<f32>() * 0.5 + 0.125,
            )
        };
        let a = fold_with(4u32, x.clone(), |acc, j| {
            let (v, n) = inner(acc);
            v + n.cast::<f32>() * 0.001 + j.cast::<f32>()
        });
        let (b, m) = fold_while(
            30u32,
            x.clone(),
            |acc, _| acc.lt(50.0),
            |acc, _| {
                let (v, n) = inner(acc.clone() * 0.5);
                acc + v * 0.25 + n.cast::<f32>()
            },
        );
        (a, b, m)
    });
    let plan = plan_of(&k);
    let all = loops(&plan.steps);
    assert_eq!(all.len(), 4, "{plan:#?}");
    assert_eq!(all.iter().filter(|l| l.mask.is_some()).count(), 3);
    assert!(
        all.iter()
            .any(|l| l.mask.is_some_and(|m| m.outer.is_some())),
        "the innermost loop under a mask inherits it: {plan:#?}"
    );
    let inner = |mut v: f32| {
        let mut n = 0u32;
        while n < 40 && v < 10.0 {
            v = v * 1.25 + n as f32 * 0.5 + 0.125;
            n += 1;
        }
        (v, n)
    };
    let len = 2 * BLOCK + 999;
    let xs: Vec<f32> = (0..len)
        .map(|i| ((i * 37) % 200) as f32 * 0.35 - 20.0)
        .collect();
    let got = run(&plan, &[&bits(&xs)], &[], 77, len);
    for (i, &x) in xs.iter().enumerate() {
        let mut a = x;
        for j in 0..4 {
            let (v, n) = inner(a);
            a = v + n as f32 * 0.001 + j as f32;
        }
        let (mut b, mut m) = (x, 0u32);
        while m < 30 && b < 50.0 {
            let (v, n) = inner(b * 0.5);
            b = b + v * 0.25 + n as f32;
            m += 1;
        }
        assert_eq!(
            got[3 * i..3 * i + 3],
            [a.to_bits(), b.to_bits(), m],
            "x = {x}"
        );
    }
}

#[test]
fn uniform_carries_and_a_uniform_condition_need_no_mask() {
    // a table's sum (the same for every element) and a walk that stops at the first
    // negative entry (the same trip for every element)
    let k = Kernel::new(|(x, t): (Expr<f32>, Table<f32>)| {
        let sum = fold_with(t.len(), Expr::constant(0.0f32), |s, j| s + t.at(j));
        let (acc, n) = fold_while(
            t.len(),
            x.clone(),
            |_, j| t.at(j).ge(0.0),
            |acc, j| acc * 0.5 + t.at(j),
        );
        (x / sum, acc, n)
    });
    let plan = plan_of(&k);
    let all = loops(&plan.steps);
    assert!(all.iter().all(|l| l.mask.is_none()), "{plan:#?}");
    assert!(
        matches!(all[0].carries[0].at, super::Src::Uni(_)),
        "the sum is one scalar: {plan:#?}"
    );
    let n = BLOCK + 1234;
    let xs: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 + 1.0).collect();
    let mut t: Vec<f32> = (0..50).map(|j| (j as f32 * 0.7).cos() + 1.5).collect();
    t[33] = -1.0;
    for tab in [&t[..], &t[..20], &[][..]] {
        let got = run(&plan, &[&bits(&xs)], &[whole(&bits(tab))], 0, n);
        let sum = tab.iter().fold(0.0f32, |s, &v| s + v);
        let stop = tab.iter().position(|&v| v < 0.0).unwrap_or(tab.len());
        for (i, &x) in xs.iter().enumerate() {
            let acc = tab[..stop].iter().fold(x, |a, &v| a * 0.5 + v);
            let want = [(x / sum).to_bits(), acc.to_bits(), stop as u32];
            assert_eq!(
                got[3 * i..3 * i + 3],
                want,
                "x = {x}, table of {}",
                tab.len()
            );
        }
    }
}
