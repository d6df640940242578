//! Table reads and several results against plain Rust, bit for bit: clamped and
//! defaulted reads at every kind of index, empty and missing tables, a window of a
//! table, reads at the loop counter done once per iteration (n-body), `M` results.

use super::tests::{bits, loops, plan_of, run, whole};
use super::{Src, Step, TableRef, UniOp, BLOCK};
use crate::kernel::{fold_with, index, select, Expr, Kernel, Table};

/// `t[i]` with `i` clamped into the table, zero for an empty one.
fn at(t: &[u32], i: i64) -> u32 {
    match t.len() {
        0 => 0,
        n => t[i.clamp(0, n as i64 - 1) as usize],
    }
}

/// `t[i]`, or `d` outside the table.
fn at_or(t: &[u32], i: i64, d: u32) -> u32 {
    if i >= 0 && i < t.len() as i64 {
        t[i as usize]
    } else {
        d
    }
}

#[test]
fn clamped_and_defaulted_reads_at_every_kind_of_index() {
    let k = Kernel::new(
        |(i, u, d, t): (Expr<i32>, Expr<u32>, Expr<f32>, Table<f32>)| {
            (
                t.at(i.clone()),
                t.at(u.clone()),
                t.at_or(i, d),
                t.at_or(u, -1.0f32),
            )
        },
    );
    let plan = plan_of(&k);
    assert_eq!(plan.outputs(), 4);
    let n = 2 * BLOCK + 555;
    for size in [37usize, 1, 0] {
        let s = size as i64;
        let edge = |k: usize| -> i64 {
            match k % 12 {
                0 => -5,
                1 => -1,
                2 => 0,
                3 => s - 1,
                4 => s,
                5 => s + 3,
                6 => i32::MAX as i64,
                7 => i32::MIN as i64,
                8 => 1 << 31,
                9 => u32::MAX as i64,
                _ => (k as i64 * 7) % (s + 1),
            }
        };
        let is: Vec<u32> = (0..n).map(|k| edge(k) as i32 as u32).collect();
        let us: Vec<u32> = (0..n).map(|k| edge(k + 5) as u32).collect();
        let ds: Vec<f32> = (0..n).map(|k| k as f32 * -0.5).collect();
        let t = bits(&(0..size).map(|j| j as f32 + 0.25).collect::<Vec<_>>());
        let got = run(&plan, &[&is, &us, &bits(&ds)], &[whole(&t)], 9, n);
        for k in 0..n {
            let (i, u) = (is[k] as i32 as i64, us[k] as i64);
            let want = [
                at(&t, i),
                at(&t, u),
                at_or(&t, i, ds[k].to_bits()),
                at_or(&t, u, (-1.0f32).to_bits()),
            ];
            assert_eq!(got[4 * k..4 * k + 4], want, "size {size}, i = {i}, u = {u}");
        }
    }
}

#[test]
fn a_window_reads_as_the_whole_table_and_never_outside_its_data() {
    let k = Kernel::new(|(x, t): (Expr<f32>, Table<f32>)| {
        let i = index();
        (
            t.at(i.cast::<i32>() - 2) + t.at(i.clone() + 3u32) + x,
            t.at_or(i + 7u32, 0.5f32),
            t.len(),
        )
    });
    let plan = plan_of(&k);
    let full: Vec<u32> = bits(&(0..10_000).map(|j| (j as f32).sqrt()).collect::<Vec<_>>());
    // this device's share is 3002..7402, with a halo of 2 before and 7 after
    let (start, end) = (3000usize, 7409usize);
    let window = TableRef {
        data: &full[start..end],
        start,
        len: full.len() as u32,
    };
    let n = 4400;
    let xs: Vec<f32> = (0..n).map(|i| i as f32 * 0.125).collect();
    let a = run(&plan, &[&bits(&xs)], &[window], 3002, n);
    let b = run(&plan, &[&bits(&xs)], &[whole(&full)], 3002, n);
    assert_eq!(a, b);
    assert!(
        a.chunks(3).all(|r| r[2] == 10_000),
        "the length is the table's"
    );
    // Reads outside the window (a wrong window) clamp into the data, as on the GPU.
    let c = run(&plan, &[&bits(&xs)], &[window], 0, n);
    // the local index wraps below the window (u32 arithmetic), so it clamps to the end
    let held = (end - start) as i64;
    let local = |g: i64| {
        let l = g - start as i64;
        full[start + if l < 0 { held - 1 } else { l.min(held - 1) } as usize]
    };
    for (i, r) in c.chunks(3).enumerate() {
        let g = i as i64;
        let want = f32::from_bits(local((g - 2).max(0))) + f32::from_bits(local(g + 3)) + xs[i];
        assert_eq!(r[..2], [want.to_bits(), local(g + 7)], "element {i}");
    }
    // An empty `data` reads zero (and the default outside the table).
    let none = TableRef {
        data: &[],
        start: 0,
        len: 100,
    };
    let d = run(&plan, &[&bits(&xs)], &[none], 90, 20);
    for (i, r) in d.chunks(3).enumerate() {
        let outside = 90 + i + 7 >= 100;
        let want = if outside { 0.5f32.to_bits() } else { 0 };
        assert_eq!(r, [xs[i].to_bits(), want, 100], "element {i}");
    }
}

#[test]
fn negative_indices_of_a_table_longer_than_i32_max() {
    // i32::MIN as u32 is below the length: only the sign says it is outside
    let k = Kernel::new(|(i, t): (Expr<i32>, Table<u32>)| (t.at(i.clone()), t.at_or(i, 9u32)));
    let plan = plan_of(&k);
    let data = [10, 11, 12, 13];
    let huge = TableRef {
        data: &data,
        start: 0,
        len: 3_000_000_000,
    };
    let is = [i32::MIN, -1, 0, 3, 2_000_000_000].map(|i| i as u32);
    let got = run(&plan, &[&is], &[huge], 0, is.len());
    // in the table but past `data`: the last element held
    assert_eq!(got, [10, 9, 10, 9, 10, 10, 13, 13, 13, 13]);
}

#[test]
fn an_empty_or_missing_table() {
    let k = Kernel::new(|(x, t): (Expr<f32>, Table<i32>)| {
        (
            t.at(x.cast::<i32>()),
            t.at_or(x.cast::<u32>(), 7i32),
            t.len(),
        )
    });
    let plan = plan_of(&k);
    let n = BLOCK + 10;
    let xs: Vec<f32> = (0..n).map(|i| i as f32 - 5.0).collect();
    let want: Vec<u32> = (0..n).flat_map(|_| [0, 7, 0]).collect();
    assert_eq!(run(&plan, &[&bits(&xs)], &[whole(&[])], 0, n), want);
    assert_eq!(
        run(&plan, &[&bits(&xs)], &[], 0, n),
        want,
        "no table passed"
    );
    // a plan with tables is no passthrough
    let k = Kernel::new(|(x, _t): (Expr<f32>, Table<f32>)| x);
    assert_eq!(plan_of(&k).passthrough(), None);
    let k = Kernel::new(|(x,): (Expr<f32>,)| x);
    assert_eq!(plan_of(&k).passthrough(), Some(0));
}

#[test]
fn results_of_different_types_interleave() {
    let k = Kernel::new(|(x, y): (Expr<f32>, Expr<i32>)| {
        (x.clone() * 2.0 + 1.0, index() * 3u32, x.cast::<i32>() - y)
    });
    let plan = plan_of(&k);
    let n = 3 * BLOCK + 17;
    let xs: Vec<f32> = (0..n).map(|i| i as f32 * 0.75 - 100.0).collect();
    let ys: Vec<u32> = (0..n).map(|i| (i as i32 * -3) as u32).collect();
    let got = run(&plan, &[&bits(&xs), &ys], &[], 1 << 20, n);
    for i in 0..n {
        let want = [
            (xs[i] * 2.0 + 1.0).to_bits(),
            ((1u32 << 20) + i as u32).wrapping_mul(3),
            (xs[i] as i32).wrapping_sub(ys[i] as i32) as u32,
        ];
        assert_eq!(got[3 * i..3 * i + 3], want, "element {i}");
    }
}

#[test]
fn reads_at_the_counter_are_one_read_per_iteration() {
    // n-body: each body's position and mass, read at j * 4 + c
    let k = Kernel::new(
        |(x, y, z, p): (Expr<f32>, Expr<f32>, Expr<f32>, Table<f32>)| {
            fold_with(
                p.len() / 4u32,
                (x.clone() * 0.0, y.clone() * 0.0, z.clone() * 0.0),
                |(ax, ay, az), j| {
                    let b = j * 4u32;
                    let dx = p.at(b.clone()) - &x;
                    let dy = p.at(b.clone() + 1u32) - &y;
                    let dz = p.at(b.clone() + 2u32) - &z;
                    let r2 = dx.clone() * &dx + dy.clone() * &dy + dz.clone() * &dz + 0.01;
                    let s = p.at(b + 3u32) / (r2.sqrt() * r2);
                    (ax + dx * &s, ay + dy * &s, az + dz * s)
                },
            )
        },
    );
    let plan = plan_of(&k);
    let l = loops(&plan.steps)[0];
    assert!(l.mask.is_none());
    let uniform_loads = l
        .body
        .iter()
        .filter(|s| {
            matches!(
                s,
                Step::Uni {
                    op: UniOp::Load { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(uniform_loads, 4, "{plan:#?}");
    assert!(!l.body.iter().any(|s| matches!(s, Step::Load { .. })));
    let bodies = 61;
    let p: Vec<f32> = (0..bodies * 4)
        .map(|k| ((k * 31 % 97) as f32 * 0.13).sin() * 5.0 + if k % 4 == 3 { 6.0 } else { 0.0 })
        .collect();
    let n = BLOCK + 700;
    let coord = |s: f32| {
        (0..n)
            .map(|i| ((i as f32) * s).cos() * 4.0)
            .collect::<Vec<f32>>()
    };
    let (xs, ys, zs) = (coord(0.011), coord(0.017), coord(0.023));
    let got = run(
        &plan,
        &[&bits(&xs), &bits(&ys), &bits(&zs)],
        &[whole(&bits(&p))],
        0,
        n,
    );
    for i in 0..n {
        let (x, y, z) = (xs[i], ys[i], zs[i]);
        let (mut ax, mut ay, mut az) = (x * 0.0, y * 0.0, z * 0.0);
        for b in p.chunks(4) {
            let (dx, dy, dz) = (b[0] - x, b[1] - y, b[2] - z);
            let r2 = dx * dx + dy * dy + dz * dz + 0.01;
            let s = b[3] / (r2.sqrt() * r2);
            (ax, ay, az) = (ax + dx * s, ay + dy * s, az + dz * s);
        }
        assert_eq!(
            got[3 * i..3 * i + 3],
            [ax, ay, az].map(f32::to_bits),
            "element {i}"
        );
    }
}

#[test]
fn uniform_index_forms_and_a_gather_in_a_loop() {
    let k = Kernel::new(|(x, t): (Expr<f32>, Table<f32>)| {
        fold_with(t.len() + 2u32, x.clone() * 0.0, |acc, j| {
            let lo = t.at((j.cast::<i32>() - 2).clamp(0i32, 5i32)); // uniform
            let def = t.at_or(j.clone(), x.clone()); // uniform index, per-element default
            let g = t.at(index() % 7u32 + &j); // a gather
            let jf = j.cast::<f32>();
            let u = select(j.gt(3u32), jf.sqrt(), jf.mul_add(0.5f32, 1.0f32)); // uniform
            acc + lo + def * 0.5 + g + u
        })
    });
    let plan = plan_of(&k);
    let body = &loops(&plan.steps)[0].body;
    let gathers: Vec<&Src> = body
        .iter()
        .filter_map(|s| match s {
            Step::Load { index, .. } => Some(index),
            _ => None,
        })
        .collect();
    assert_eq!(gathers.len(), 2, "{plan:#?}");
    assert!(
        gathers.iter().any(|i| matches!(i, Src::Uni(_))),
        "{plan:#?}"
    );
    let t: Vec<f32> = (0..9).map(|j| j as f32 * 1.5 - 2.0).collect();
    let tb = bits(&t);
    let n = BLOCK + 100;
    let xs: Vec<f32> = (0..n).map(|i| i as f32 * 0.01).collect();
    let got = run(&plan, &[&bits(&xs)], &[whole(&tb)], 3, n);
    let f = |b: u32| f32::from_bits(b);
    for (i, &x) in xs.iter().enumerate() {
        let mut acc = x * 0.0;
        for j in 0..t.len() as i64 + 2 {
            let lo = f(at(&tb, (j - 2).clamp(0, 5)));
            let def = f(at_or(&tb, j, x.to_bits()));
            let g = f(at(&tb, ((i as i64 + 3) % 7) + j));
            let jf = j as f32;
            let u = if j > 3 { jf.sqrt() } else { jf * 0.5 + 1.0 };
            acc = acc + lo + def * 0.5 + g + u;
        }
        assert_eq!(got[i], acc.to_bits(), "element {i}");
    }
}

/// The arguments of the kernels reading at sums.
type SumArgs = (Expr<i32>, Expr<i32>, Expr<u32>, Expr<u32>, Table<u32>);

/// A gather at a sum read by nothing else adds the sum itself (`plus`): against the
/// same reads at a sum that is also a result (so stored by its own step), on seeded
/// random indices far outside the table both ways, sums that wrap, a literal
/// addend, and whole, windowed, empty and missing tables; and against plain Rust on
/// the whole table.
#[test]
fn a_gather_at_a_sum_reads_what_the_stored_sum_reads() {
    let fused = Kernel::new(|(a, b, u, v, t): SumArgs| {
        (
            t.at(a.clone() + b),
            t.at(u.clone() + v),
            t.at(a + 5),
            t.at(u + 7u32),
        )
    });
    let general = Kernel::new(|(a, b, u, v, t): SumArgs| {
        let s = [a.clone() + b, a + 5];
        let w = [u.clone() + v, u + 7u32];
        (
            t.at(s[0].clone()),
            t.at(w[0].clone()),
            t.at(s[1].clone()),
            t.at(w[1].clone()),
            s[0].clone(),
            w[0].clone(),
            s[1].clone(),
            w[1].clone(),
        )
    });
    let plan = plan_of(&fused);
    let sums = plan
        .steps
        .iter()
        .filter(|s| matches!(s, Step::Load { plus: Some(_), .. }))
        .count();
    assert_eq!(sums, 4, "{plan:#?}");
    let slow = plan_of(&general);
    assert!(
        !slow
            .steps
            .iter()
            .any(|s| matches!(s, Step::Load { plus: Some(_), .. })),
        "{slow:#?}"
    );
    let mut seed = 0x5eed_0004u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as u32
    };
    let n = BLOCK + 333;
    let len = 1000i64;
    let small = |r: u32| (r % 3000) as i32 - 1000;
    let mut cols: [Vec<u32>; 4] = Default::default();
    for i in 0..n {
        let (r, s) = (next(), next());
        // every tenth pair wraps
        let (a, b) = if i % 10 == 0 {
            (r as i32, s as i32)
        } else {
            (small(r), small(s))
        };
        let (u, v) = if i % 10 == 1 {
            (r, s)
        } else {
            (r % 1500, s % 600)
        };
        // every other run of 64 elements: indices that run on, or stay, across
        // the table's ends or inside it, from a whole chunk or part of one
        let k = (i % 64) as i32;
        let (a, b, u, v) = match (i / 64) % 12 {
            1 => (960 + k, 0, 3, 960 + k as u32),
            3 => (-30 + k, 0, (k - 30) as u32, 0),
            5 => (17, 0, 0, 17),
            7 => (2000, -1, 999, 0),
            9 => (k / 2 + 100, k / 2, 40 + (k as u32 % 3), 7),
            11 => (i as i32 * 3, -(i as i32) * 2, i as u32, 0),
            _ => (a, b, u, v),
        };
        for (c, x) in cols.iter_mut().zip([a as u32, b as u32, u, v]) {
            c.push(x);
        }
    }
    let full: Vec<u32> = (0..len as u32).map(|j| j * 7 + 1).collect();
    let window = TableRef {
        data: &full[100..900],
        start: 100,
        len: len as u32,
    };
    let empty = TableRef {
        data: &[],
        start: 0,
        len: 0,
    };
    let ins: Vec<&[u32]> = cols.iter().map(|c| &c[..]).collect();
    for (name, tables) in [
        ("whole", vec![whole(&full)]),
        ("window", vec![window]),
        ("empty", vec![empty]),
        ("missing", vec![]),
    ] {
        let got = run(&plan, &ins, &tables, 0, n);
        let want = run(&slow, &ins, &tables, 0, n);
        for i in 0..n {
            assert_eq!(
                got[4 * i..4 * i + 4],
                want[8 * i..8 * i + 4],
                "{name}, element {i} (seed 0x5eed_0004)"
            );
        }
        if name == "whole" {
            for i in 0..n {
                let (a, b, u, v) = (cols[0][i] as i32, cols[1][i] as i32, cols[2][i], cols[3][i]);
                let plain = [
                    at(&full, a.wrapping_add(b) as i64),
                    at(&full, u.wrapping_add(v) as i64),
                    at(&full, a.wrapping_add(5) as i64),
                    at(&full, u.wrapping_add(7) as i64),
                ];
                assert_eq!(got[4 * i..4 * i + 4], plain, "element {i}");
            }
        }
    }
}
