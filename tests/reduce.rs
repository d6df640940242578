//! Reductions on every device and placement, against references computed here.
//!
//! Tolerances, per operation (see `hybrid::Reduce`):
//! - integer sums (wrapping), min and max of every type: exact;
//! - `f32` sums: `|got - S| <= 16 * 2^-24 * sum |y_i| + 2^-24 * |S|`, with `S` the
//!   exact (f64) sum of the mapped values `y_i`, which the tests compute with kernels
//!   whose per-element results are correctly rounded on every device (+, -, *).
//!
//! Seeds are fixed; a failure names the case.

mod common;

use hybrid::{index, select, Element, Expr, Kernel, Placement, Reduce, Runtime};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const U: f64 = 1.0 / (1u64 << 24) as f64;

/// Lengths around the workgroup (256), the GPU's per-workgroup span (2,048), the CPU
/// block (4,096) and the transfer chunk, and a few random ones.
fn lengths(rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut v = vec![0, 1, 255, 256, 257, 2047, 2048, 2049, 4097, 300_001];
    v.extend((0..3).map(|_| rng.random_range(2..200_000)));
    v
}

fn placements(rt: &Runtime) -> Vec<Placement> {
    let mut p = vec![Placement::Cpu, Placement::Auto];
    if rt.has_gpu() {
        p.extend([Placement::Gpu, Placement::Split(0.3), Placement::Split(0.8)]);
    }
    p
}

fn runtimes() -> Vec<Runtime> {
    let mut v = vec![common::cpu_runtime()];
    v.extend(common::gpu_runtime());
    v
}

fn f32s(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-100.0f32..100.0)).collect()
}

fn check_f32_sum(got: f32, ys: impl Iterator<Item = f32>, what: &str) {
    let (mut s, mut abs) = (0f64, 0f64);
    for y in ys {
        s += y as f64;
        abs += (y as f64).abs();
    }
    let bound = 16.0 * U * abs + U * s.abs();
    let err = (got as f64 - s).abs();
    assert!(
        err <= bound,
        "{what}: sum {got} vs exact {s}: error {err:e} > bound {bound:e}"
    );
}

fn run1<I: Element, O: Element>(
    rt: &Runtime,
    xs: &[I],
    k: &Kernel<I, O>,
    op: Reduce,
    p: Placement,
    what: &str,
) -> O {
    let run = rt
        .reduce(xs, k, op, p)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let covered = common::share_elements(&run.report);
    assert_eq!(covered, xs.len(), "{what}: shares cover the input");
    run.output
}

#[test]
fn f32_sums_min_max_on_every_placement() {
    let mut rng = ChaCha8Rng::seed_from_u64(51);
    let sq = Kernel::map(|x: Expr<f32>| x.clone() * x - 3.0);
    let id = Kernel::map(|x: Expr<f32>| x);
    for rt in runtimes() {
        for n in lengths(&mut rng) {
            let xs = f32s(&mut rng, n);
            for p in placements(&rt) {
                let what = format!("n={n} {p} on {:?}", rt.devices().len());
                let got = run1(&rt, &xs, &sq, Reduce::Sum, p, &what);
                check_f32_sum(got, xs.iter().map(|&x| x * x - 3.0), &what);
                let got = rt.sum(&xs, p).unwrap_or_else(|e| panic!("{what}: {e}"));
                check_f32_sum(got.output, xs.iter().copied(), &what);
                let lo = run1(&rt, &xs, &id, Reduce::Min, p, &what);
                let hi = run1(&rt, &xs, &sq, Reduce::Max, p, &what);
                let want_lo = xs.iter().copied().fold(f32::NAN, f32::min);
                let want_hi = xs.iter().map(|&x| x * x - 3.0).fold(f32::NAN, f32::max);
                if n == 0 {
                    assert!(lo.is_nan() && hi.is_nan(), "{what}: empty min/max is NaN");
                    assert_eq!(got.output, 0.0, "{what}: empty sum");
                } else {
                    assert_eq!(lo, want_lo, "{what}: min");
                    assert_eq!(hi, want_hi, "{what}: max");
                }
            }
        }
    }
}

#[test]
fn integer_reductions_are_exact_and_wrap() {
    let mut rng = ChaCha8Rng::seed_from_u64(52);
    // the element's index is in the kernel, so a range given to the wrong place or a
    // workgroup reading the wrong element changes the result
    let ki = Kernel::map(|x: Expr<i32>| x * 1_000_003 + index().cast::<i32>());
    let ku = Kernel::map(|x: Expr<u32>| (x ^ index()) * 2_654_435_761u32);
    for rt in runtimes() {
        for n in lengths(&mut rng) {
            let xi: Vec<i32> = (0..n).map(|_| rng.random()).collect();
            let xu: Vec<u32> = (0..n).map(|_| rng.random()).collect();
            let yi: Vec<i32> = xi
                .iter()
                .enumerate()
                .map(|(i, &x)| x.wrapping_mul(1_000_003).wrapping_add(i as i32))
                .collect();
            let yu: Vec<u32> = xu
                .iter()
                .enumerate()
                .map(|(i, &x)| (x ^ i as u32).wrapping_mul(2_654_435_761))
                .collect();
            for p in placements(&rt) {
                let what = format!("n={n} {p}");
                let s = yi.iter().fold(0i32, |a, &b| a.wrapping_add(b));
                assert_eq!(run1(&rt, &xi, &ki, Reduce::Sum, p, &what), s, "{what}");
                let lo = yi.iter().copied().min().unwrap_or(i32::MAX);
                assert_eq!(run1(&rt, &xi, &ki, Reduce::Min, p, &what), lo, "{what}");
                let hi = yi.iter().copied().max().unwrap_or(i32::MIN);
                assert_eq!(run1(&rt, &xi, &ki, Reduce::Max, p, &what), hi, "{what}");
                let s = yu.iter().fold(0u32, |a, &b| a.wrapping_add(b));
                assert_eq!(run1(&rt, &xu, &ku, Reduce::Sum, p, &what), s, "{what}");
                let lo = yu.iter().copied().min().unwrap_or(u32::MAX);
                assert_eq!(run1(&rt, &xu, &ku, Reduce::Min, p, &what), lo, "{what}");
                let hi = yu.iter().copied().max().unwrap_or(0);
                assert_eq!(run1(&rt, &xu, &ku, Reduce::Max, p, &what), hi, "{what}");
            }
        }
    }
}

#[test]
fn dot_products_and_counts() {
    let mut rng = ChaCha8Rng::seed_from_u64(53);
    let dot = Kernel::map2(|a: Expr<f32>, b: Expr<f32>| a * b);
    let count = Kernel::map(|x: Expr<f32>| select(x.gt(50.0), 1u32, 0u32).cast::<u32>());
    for rt in runtimes() {
        for n in [0, 1, 1000, 65_537, 250_000] {
            let a = f32s(&mut rng, n);
            let b = f32s(&mut rng, n);
            for p in placements(&rt) {
                let what = format!("n={n} {p}");
                let got = rt
                    .reduce2(&a, &b, &dot, Reduce::Sum, p)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                check_f32_sum(got.output, a.iter().zip(&b).map(|(x, y)| x * y), &what);
                let want = a.iter().filter(|&&x| x > 50.0).count() as u32;
                assert_eq!(run1(&rt, &a, &count, Reduce::Sum, p, &what), want, "{what}");
            }
        }
        let e = rt.reduce2(&[1.0f32; 3], &[1.0; 4], &dot, Reduce::Sum, Placement::Cpu);
        assert!(
            matches!(e, Err(hybrid::Error::LengthMismatch { left: 3, right: 4 })),
            "{e:?}"
        );
    }
}

#[test]
fn nan_is_ignored_by_min_max_and_propagates_through_sums() {
    let id = Kernel::map(|x: Expr<f32>| x);
    for rt in runtimes() {
        let mut xs: Vec<f32> = (0..100_000).map(|i| (i as f32 * 0.01).sin()).collect();
        for i in (0..xs.len()).step_by(997) {
            xs[i] = f32::NAN;
        }
        xs[5_000] = -7.0;
        xs[70_000] = 9.0;
        let all_nan = vec![f32::NAN; 5_000];
        for p in placements(&rt) {
            let what = format!("{p}");
            assert_eq!(run1(&rt, &xs, &id, Reduce::Min, p, &what), -7.0, "{what}");
            assert_eq!(run1(&rt, &xs, &id, Reduce::Max, p, &what), 9.0, "{what}");
            assert!(
                run1(&rt, &xs, &id, Reduce::Sum, p, &what).is_nan(),
                "{what}"
            );
            assert!(
                run1(&rt, &all_nan, &id, Reduce::Min, p, &what).is_nan(),
                "{what}"
            );
            assert!(
                run1(&rt, &all_nan, &id, Reduce::Max, p, &what).is_nan(),
                "{what}"
            );
        }
    }
}

/// Many small values and a few large ones: a sequential f32 sum loses far more than
/// the stated bound allows (checked here, so the bound is not vacuous), hybrid's sum
/// stays inside it on every device.
#[test]
fn float_sums_keep_the_stated_bound_where_a_naive_sum_does_not() {
    let n = 2_000_000;
    let xs: Vec<f32> = (0..n)
        .map(|i| if i % 100_000 == 0 { 1.0e6 } else { 0.1 })
        .collect();
    let naive = xs.iter().fold(0f32, |a, &b| a + b);
    let exact: f64 = xs.iter().map(|&x| x as f64).sum();
    let abs = exact;
    let bound = 16.0 * U * abs + U * exact;
    assert!(
        (naive as f64 - exact).abs() > bound,
        "the data must defeat a naive sum: naive {naive}, exact {exact}"
    );
    for rt in runtimes() {
        for p in placements(&rt) {
            let got = rt.sum(&xs, p).unwrap_or_else(|e| panic!("{p}: {e}"));
            check_f32_sum(got.output, xs.iter().copied(), &format!("{p}"));
        }
    }
}

/// One length past the 65,535-workgroups-per-dimension limit for a map
/// (65,535 x 256 + 1), summed on the GPU.
#[test]
fn gpu_sum_past_the_dispatch_limit() {
    let Some(rt) = common::gpu_runtime() else {
        return;
    };
    let n = 65_535 * 256 + 1;
    let xs: Vec<u32> = (0..n as u32).collect();
    let got = rt
        .sum(&xs, Placement::Gpu)
        .unwrap_or_else(|e| panic!("{e}"));
    let want = xs.iter().fold(0u32, |a, &b| a.wrapping_add(b));
    assert_eq!(got.output, want);
    let s = &got.report.shares()[0];
    assert_eq!(s.bytes_to_device(), 4 * n as u64);
    // one partial per 2,048 elements comes back, not the mapped array
    assert_eq!(s.bytes_from_device(), 4 * (n as u64).div_ceil(2048));
}

#[test]
fn empty_inputs_give_the_identity() {
    for rt in runtimes() {
        for p in placements(&rt) {
            let none: [i32; 0] = [];
            let k = Kernel::map(|x: Expr<i32>| x);
            assert_eq!(
                rt.reduce(&none, &k, Reduce::Sum, p).map(|r| r.output),
                Ok(0)
            );
            assert_eq!(
                rt.reduce(&none, &k, Reduce::Min, p).map(|r| r.output),
                Ok(i32::MAX)
            );
            assert_eq!(
                rt.reduce(&none, &k, Reduce::Max, p).map(|r| r.output),
                Ok(i32::MIN)
            );
            let none: [u32; 0] = [];
            assert_eq!(rt.sum(&none, p).map(|r| r.output), Ok(0));
        }
    }
    assert_eq!(hybrid::sum::<f32>(&[]), Ok(0.0));
}

#[test]
fn global_entry_points() {
    let xs: Vec<f32> = (1..=1000).map(|i| i as f32).collect();
    assert_eq!(hybrid::sum(&xs), Ok(500_500.0));
    let sq = Kernel::map(|x: Expr<f32>| x.clone() * x);
    let got = hybrid::reduce(&xs, &sq, Reduce::Sum).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, 333_833_500.0);
    let dot = Kernel::map2(|a: Expr<f32>, b: Expr<f32>| a * b);
    assert_eq!(
        hybrid::reduce2(&xs, &xs, &dot, Reduce::Sum),
        Ok(333_833_500.0)
    );
}

/// On simulated devices Auto learns the reduction's own model (no download but the
/// partials) and splits it: a fast GPU over a fast link takes most of the sum.
#[test]
fn auto_splits_a_reduction_on_simulated_devices() {
    let rt = common::sim_runtime(2.0e9, 40.0e9, 10e-6, 24.0e9);
    let n = 4_000_000;
    let xs: Vec<u32> = (0..n as u32).map(|i| i % 7).collect();
    let want = xs.iter().fold(0u32, |a, &b| a.wrapping_add(b));
    let mut last = None;
    for _ in 0..4 {
        let run = rt
            .sum(&xs, Placement::Auto)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(run.output, want);
        last = Some(run.report);
    }
    let report = last.unwrap_or_else(|| panic!("no run"));
    let gpu = common::gpu_elements(&report);
    // the GPU's link moves 4 bytes in 1/6 ns (6e9 elements/s) and it computes 40e9/s,
    // the CPU 2e9/s: balanced, the GPU takes 6 / 8 of the work
    assert!(gpu > n / 2 && gpu < n, "gpu share {gpu} of {n}: {report}");
    // and no more bytes come back than the partials
    for s in report.shares().iter().filter(|s| s.kind().is_gpu()) {
        assert!(s.bytes_from_device() <= 4 * (s.elements() as u64).div_ceil(2048) + 4);
    }
}

/// A parameter read by a reduction: set between calls, used by every device, with no
/// new pipeline.
#[test]
fn reductions_read_parameters() {
    let a = hybrid::Param::new(3u32);
    let k = Kernel::map(|x: Expr<u32>| x * a.expr() + 1u32);
    let xs: Vec<u32> = (0..100_000).collect();
    for rt in runtimes() {
        for p in placements(&rt) {
            let mut compiled = None;
            for v in [3u32, 7, 1_000_003] {
                a.set(v);
                let want = xs.iter().fold(0u32, |s, &x| {
                    s.wrapping_add(x.wrapping_mul(v).wrapping_add(1))
                });
                assert_eq!(
                    run1(&rt, &xs, &k, Reduce::Sum, p, &format!("{p} a={v}")),
                    want
                );
                let c = rt.compilations();
                assert!(
                    compiled.is_none_or(|c0| c0 == c),
                    "{p}: recompiled for a={v}"
                );
                compiled = Some(c);
            }
        }
    }
}
