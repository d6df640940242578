//! `f64` as a type kernels compute in: inputs and results are 32-bit, the work between
//! them may be double precision, on the CPU (always) and on a GPU with wgpu's
//! `SHADER_F64` (Mesa's lavapipe has it, so CI runs these for real).
//!
//! Tolerances, per operation: `+ - *`, mul-add (two roundings), the conversions and
//! comparisons are IEEE-exact on every device (Vulkan requires correctly rounded f64
//! add, sub and mul), so those kernels are compared bit for bit with the same
//! operations in Rust's f64. `/` and `sqrt` are exact on the CPU; Vulkan allows a GPU
//! 2.5 ulp for `/` and does not pin `sqrt`, so on a GPU they are checked to 4 ulp of
//! f64 (far below the f32 result's own rounding, so the f32 results match exactly in
//! all but rare ties).

mod common;

use common::{shared_cpu, targets, Target};
use hybrid::{
    fold, fold_while, fold_with, Error, Expr, Kernel, Placement, Runtime, SimDevice, Table,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn run<O: hybrid::Element>(t: &Target, xs: &[f32], k: &Kernel<f32, O>) -> Vec<O> {
    t.rt.map(xs, k, t.placement)
        .unwrap_or_else(|e| panic!("{t}: {e}"))
        .output
}

/// A sum of 200 terms that f32 could not keep: each `x * 1e-3 + i` accumulated in f64
/// and rounded to f32 once, equal bit for bit to the same loop in Rust on every device.
#[test]
fn an_f64_accumulation_matches_rust_bit_for_bit_on_every_placement() {
    let k = Kernel::map(|x: Expr<f32>| {
        let d = x.cast::<f64>();
        let s = fold::<f64>(200, Expr::constant(0.0f64), |acc, i| {
            d.mul_add(1e-3f64, acc) + i.cast::<f64>()
        });
        s.cast::<f32>()
    });
    let mut rng = ChaCha8Rng::seed_from_u64(64);
    let xs: Vec<f32> = (0..20_000)
        .map(|_| rng.random_range(-1e6f32..1e6))
        .collect();
    let want: Vec<f32> = xs
        .iter()
        .map(|&x| {
            let mut s = 0.0f64;
            for i in 0..200u32 {
                s = (x as f64 * 1e-3 + s) + i as f64;
            }
            s as f32
        })
        .collect();
    // the same loop in f32 differs: the test can tell f64 from f32
    let f32_sum = |x: f32| (0..200u32).fold(0.0f32, |s, i| (x * 1e-3 + s) + i as f32);
    assert!(xs.iter().zip(&want).any(|(&x, &w)| f32_sum(x) != w));
    for t in targets() {
        let got = run(&t, &xs, &k);
        for i in 0..xs.len() {
            assert_eq!(
                got[i].to_bits(),
                want[i].to_bits(),
                "{t}: x = {}: got {}, want {}",
                xs[i],
                got[i],
                want[i]
            );
        }
    }
}

/// A loop whose carried values swap (`(a, b) -> (b, a + b)`, a Fibonacci recurrence in
/// f64) and read a table at the trip number: every element's carries are updated from
/// the previous trip's values, bit for bit as Rust computes them, on every placement.
#[test]
fn carried_f64_values_swap_and_read_a_table_per_trip() {
    let k = Kernel::new(|(x, t): (Expr<f32>, Table<f64>)| {
        let x = x.cast::<f64>();
        let (a, b) = fold_with(t.len(), (x.clone(), Expr::constant(1.0f64)), |(a, b), j| {
            (b.clone(), a + b * t.at(j))
        });
        (a, b.cast::<f32>())
    });
    let mut rng = ChaCha8Rng::seed_from_u64(6468);
    let xs: Vec<f32> = (0..5_000).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let ts: Vec<f64> = (0..40).map(|_| rng.random_range(0.5..1.5)).collect();
    let want: Vec<(u64, u32)> = xs
        .iter()
        .map(|&x| {
            let (mut a, mut b) = (x as f64, 1.0f64);
            for &w in &ts {
                (a, b) = (b, a + b * w);
            }
            (a.to_bits(), (b as f32).to_bits())
        })
        .collect();
    for t in targets() {
        let (a, b) =
            t.rt.call(&k, (&xs, &ts), t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"))
                .output;
        for i in 0..xs.len() {
            assert_eq!(
                (a[i].to_bits(), b[i].to_bits()),
                want[i],
                "{t}: element {i}"
            );
        }
    }
}

/// Division and square root in f64, with two carried values: the f64 result against
/// Rust's, the error measured on the device in ulps of f64 (the reference comes in as
/// three f32 pieces that sum to it exactly), 0 on the CPU and within 4 on a GPU.
#[test]
fn division_and_sqrt_within_their_bounds() {
    type Four = (Expr<f32>, Expr<f32>, Expr<f32>, Expr<f32>);
    let k = Kernel::new(|(x, h, m, l): Four| {
        let d = x.cast::<f64>().abs() + 1.0f64;
        let (a, b) = fold_with(
            16u32,
            (Expr::constant(1.0f64), Expr::constant(0.0f64)),
            |(a, b), _| (a.clone() / d.clone() + d.sqrt(), b + 1.0f64),
        );
        let want = h.cast::<f64>() + m.cast::<f64>() + l.cast::<f64>();
        let ulps = ((a - want.clone()) / (want * f64::EPSILON)).cast::<f32>();
        (ulps, b.cast::<u32>())
    });
    let mut rng = ChaCha8Rng::seed_from_u64(65);
    let xs: Vec<f32> = (0..5_000).map(|_| rng.random_range(0f32..1e6)).collect();
    let want: Vec<f64> = xs
        .iter()
        .map(|&x| {
            let d = (x as f64).abs() + 1.0;
            (0..16).fold(1.0f64, |a, _| a / d + d.sqrt())
        })
        .collect();
    let (mut h, mut m, mut l) = (Vec::new(), Vec::new(), Vec::new());
    for &w in &want {
        let hi = w as f32;
        let mid = (w - hi as f64) as f32;
        let lo = (w - hi as f64 - mid as f64) as f32;
        assert_eq!(
            hi as f64 + mid as f64 + lo as f64,
            w,
            "three pieces hold it"
        );
        h.push(hi);
        m.push(mid);
        l.push(lo);
    }
    for t in targets() {
        let (ulps, n): (Vec<f32>, Vec<u32>) =
            t.rt.call(&k, (&xs[..], &h[..], &m[..], &l[..]), t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"))
                .output;
        let bound = if t.uses_gpu() { 4.0 } else { 0.0 };
        for i in 0..xs.len() {
            assert_eq!(n[i], 16, "{t}: trips");
            assert!(
                ulps[i].abs() <= bound,
                "{t}: x = {}: {} ulp from {}",
                xs[i],
                ulps[i],
                want[i]
            );
        }
    }
}

/// f64 to `i32` and `u32` as WGSL's rule gives with f64's range ends (every 32-bit
/// integer is an f64, so the clamp is the integer range itself), and NaN to 0; f64 to
/// f32 rounds to nearest, ties to even. Values past f32's precision come from `x as
/// f64 + c`, so no f32 could hold them and the compiler cannot fold them.
#[test]
fn conversions_at_the_boundaries() {
    let xs = [
        0.5f32,
        1.0,
        1.5,
        2.0,
        3.0,
        -4_294_967_296.0,
        -4_294_967_040.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
    ];
    let to_i32 = Kernel::map(|x: Expr<f32>| (x.cast::<f64>() + 2_147_483_646.0f64).cast::<i32>());
    let want_i32 = [
        2_147_483_646,
        i32::MAX,
        i32::MAX,
        i32::MAX,
        i32::MAX,
        i32::MIN,
        -2_147_483_394,
        i32::MAX,
        i32::MIN,
        0,
    ];
    let to_u32 = Kernel::map(|x: Expr<f32>| (x.cast::<f64>() + 4_294_967_293.0f64).cast::<u32>());
    let want_u32 = [
        4_294_967_293,
        4_294_967_294,
        4_294_967_294,
        u32::MAX,
        u32::MAX,
        0,
        253,
        u32::MAX,
        0,
        0,
    ];
    // 1 + 2^-24 is a tie between two f32s: ties to even gives 1.0; 1 + 3 * 2^-24 rounds up
    let to_f32 =
        Kernel::map(|x: Expr<f32>| (x.cast::<f64>() * 2f64.powi(-24) + 1.0f64).cast::<f32>());
    let ties = [1.0f32, 3.0, 5.0, -1.0, 0.75];
    let want_f32: Vec<f32> = ties
        .iter()
        .map(|&x| (x as f64 * 2f64.powi(-24) + 1.0) as f32)
        .collect();
    assert_eq!(want_f32[0], 1.0, "the tie goes to even");
    for t in targets() {
        assert_eq!(run(&t, &xs, &to_i32), want_i32, "{t}: f64 as i32");
        assert_eq!(run(&t, &xs, &to_u32), want_u32, "{t}: f64 as u32");
        assert_eq!(run(&t, &ties, &to_f32), want_f32, "{t}: f64 as f32");
    }
}

fn f64_kernel() -> Kernel<f32, f32> {
    Kernel::map(|x: Expr<f32>| (x.cast::<f64>() * 3.0f64 + 0.25f64).cast::<f32>())
}

/// A device without f64 (a simulated GPU declaring none, as one without `SHADER_F64`)
/// is left out of an f64 kernel's call under `Auto` and `Split`, the report saying
/// why, and `Placement::Gpu` is a typed error naming the feature; an f32 kernel still
/// runs there.
#[test]
fn a_device_without_f64_is_left_out() {
    let rt = Runtime::builder()
        .no_default_devices()
        .device(SimDevice::cpu("sim-cpu", 1e8))
        .device(SimDevice::gpu("sim-gpu", 1e10).without_f64())
        .build()
        .expect("simulated devices");
    let infos = rt.devices();
    assert!(infos[0].types.contains(&hybrid::ScalarType::F64));
    assert!(!infos[1].types.contains(&hybrid::ScalarType::F64));
    let xs: Vec<f32> = (0..100_000).map(|i| i as f32 * 0.5).collect();
    let want: Vec<f32> = xs.iter().map(|&x| (x as f64 * 3.0 + 0.25) as f32).collect();
    for p in [Placement::Auto, Placement::Split(0.5)] {
        let run = rt.map(&xs, &f64_kernel(), p).expect("runs on the CPU");
        assert_eq!(run.output, want, "{p}");
        assert_eq!(common::gpu_elements(&run.report), 0, "{p}: {}", run.report);
        assert!(
            run.report
                .notes()
                .iter()
                .any(|n| n.contains("sim-gpu") && n.contains("SHADER_F64")),
            "{p}: the report says why: {}",
            run.report
        );
    }
    match rt.map(&xs, &f64_kernel(), Placement::Gpu) {
        Err(e @ Error::DeviceCannot { .. }) => {
            assert!(e.to_string().contains("SHADER_F64"), "{e}");
            common::assert_lowercase(&e);
        }
        other => panic!("want DeviceCannot, got {:?}", other.map(|r| r.report)),
    }
    // the same device takes an f32 kernel
    let f32_kernel = Kernel::map(|x: Expr<f32>| x * 3.0 + 0.25);
    let run = rt
        .map(&xs, &f32_kernel, Placement::Split(0.5))
        .expect("split");
    assert_eq!(common::gpu_elements(&run.report), 50_000);
}

/// f64 math a GPU has no instruction for (`sin`, `exp`, `pow`...) runs on the CPU:
/// `Placement::Gpu` is a typed error naming the function, `Auto` and a split compute
/// it on the CPU, exactly as Rust's f64 does, the report saying why.
#[test]
fn f64_math_without_a_gpu_instruction_runs_on_the_cpu() {
    let k = Kernel::map(|x: Expr<f32>| x.cast::<f64>().sin().cast::<f32>());
    let xs: Vec<f32> = (0..10_000).map(|i| i as f32 * 0.01).collect();
    let want: Vec<f32> = xs.iter().map(|&x| (x as f64).sin() as f32).collect();
    assert_eq!(
        shared_cpu()
            .map(&xs, &k, Placement::Cpu)
            .expect("cpu")
            .output,
        want
    );
    let Some(rt) = common::shared_gpu() else {
        return;
    };
    match rt.map(&xs, &k, Placement::Gpu) {
        Err(e @ Error::DeviceCannot { .. }) => assert!(e.to_string().contains("sin"), "{e}"),
        other => panic!("want DeviceCannot, got {:?}", other.map(|r| r.report)),
    }
    for p in [Placement::Auto, Placement::Split(0.5)] {
        let run = rt.map(&xs, &k, p).expect("on the cpu");
        assert_eq!(run.output, want, "{p}");
        assert_eq!(common::gpu_elements(&run.report), 0, "{p}: {}", run.report);
        assert!(
            run.report.notes().iter().any(|n| n.contains("f64 sin")),
            "{p}: the report says why: {}",
            run.report
        );
    }
}

/// A loop of a fixed count inside one that stops early, per element: the inner loop
/// runs unmasked (every element the same trips, what the outer loop left dropped) with
/// a carry the same for every element (`u`, a sum of the counter) beside one that is
/// not (`v`), bit for bit as Rust computes them, on every placement.
#[test]
fn a_fixed_loop_inside_an_early_exit_loop() {
    let k = Kernel::map(|x: Expr<f32>| {
        let (acc, trips) = fold_while(
            40u32,
            (x.cast::<f64>(),),
            |(a,), _| a.lt(100.0f64),
            |(a,), _| {
                let (u, v) = fold_with(5u32, (Expr::constant(0.0f64), a), |(u, v), j| {
                    (u + j.cast::<f64>(), v * 1.25f64 + j.cast::<f64>())
                });
                (v * 0.5f64 + u,)
            },
        );
        (acc.0 + trips.cast::<f64>()).cast::<f32>()
    });
    let mut rng = ChaCha8Rng::seed_from_u64(6471);
    let xs: Vec<f32> = (0..3_000)
        .map(|_| rng.random_range(-50.0f32..60.0))
        .collect();
    let want: Vec<u32> = xs
        .iter()
        .map(|&x| {
            let (mut a, mut trips) = (x as f64, 0u32);
            while trips < 40 && a < 100.0 {
                let (mut u, mut v) = (0.0f64, a);
                for j in 0..5u32 {
                    (u, v) = (u + j as f64, v * 1.25 + j as f64);
                }
                a = v * 0.5 + u;
                trips += 1;
            }
            ((a + trips as f64) as f32).to_bits()
        })
        .collect();
    // elements leave the outer loop after different numbers of trips
    assert!(xs.iter().zip(&want).any(|(_, w)| *w != want[0]));
    for t in targets() {
        let got = run(&t, &xs, &k);
        let got: Vec<u32> = got.iter().map(|g| g.to_bits()).collect();
        assert_eq!(got, want, "{t}");
    }
}

/// Mandelbrot in f64 (a loop that stops early, so the wide evaluator's masked loop):
/// the escape counts of a 256 x 192 grid around the set's boundary equal the same loop
/// in Rust's f64 on the CPU; on a GPU, which may contract `a * b + c`, all but 1% of
/// pixels (those on an iteration band's edge).
#[test]
fn an_f64_mandelbrot_counts_as_the_host_loop() {
    let (w, h, max) = (256u32, 192u32, 500u32);
    let (x0, y0, dx, dy) = (-0.75f64, 0.05f64, 0.5 / w as f64, 0.375 / h as f64);
    let k = Kernel::map(move |p: Expr<u32>| {
        let cr = (p.clone() % w).cast::<f64>() * dx + x0;
        let ci = (p / w).cast::<f64>() * dy + y0;
        let zero = Expr::constant(0.0f64);
        let (_, n) = fold_while(
            max,
            (zero.clone(), zero),
            |(x, y), _| (x.clone() * x + y.clone() * y).le(4.0f64),
            |(x, y), _| {
                (
                    x.clone() * x.clone() - y.clone() * y.clone() + cr.clone(),
                    x * y * 2.0f64 + ci.clone(),
                )
            },
        );
        n
    });
    let ps: Vec<u32> = (0..w * h).collect();
    let want: Vec<u32> = ps
        .iter()
        .map(|&p| {
            let cr = (p % w) as f64 * dx + x0;
            let ci = (p / w) as f64 * dy + y0;
            let (mut x, mut y, mut n) = (0.0f64, 0.0f64, 0);
            while n < max && x * x + y * y <= 4.0 {
                (x, y) = (x * x - y * y + cr, x * y * 2.0 + ci);
                n += 1;
            }
            n
        })
        .collect();
    // the view has both escaping and captured pixels
    assert!(want.contains(&max) && want.iter().any(|&n| n < 10));
    for t in targets() {
        let got =
            t.rt.map(&ps, &k, t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"));
        let on_gpu = common::computed_on_gpu(&got.report, ps.len(), &t.to_string());
        let differ: Vec<usize> = (0..ps.len())
            .filter(|&i| got.output[i] != want[i])
            .collect();
        assert!(
            differ.iter().all(|&i| on_gpu[i]),
            "{t}: a CPU count differs at pixel {:?}",
            differ.first()
        );
        assert!(
            differ.len() * 100 <= ps.len(),
            "{t}: {} differ",
            differ.len()
        );
    }
}

/// A table read at a loop counter in an f64 kernel: the dot product of each element's
/// weight with a table, accumulated in f64 and rounded once, equal to Rust's.
#[test]
fn a_table_read_into_an_f64_sum() {
    let k = Kernel::new(|(x, t): (Expr<f32>, hybrid::Table<f32>)| {
        let (s,) = fold_with(t.len(), (Expr::constant(0.0f64),), |(s,), j| {
            (s + t.at(j).cast::<f64>() * x.cast::<f64>(),)
        });
        s.cast::<f32>()
    });
    let mut rng = ChaCha8Rng::seed_from_u64(66);
    let xs: Vec<f32> = (0..3_000).map(|_| rng.random_range(-2f32..2.0)).collect();
    let table: Vec<f32> = (0..500).map(|_| rng.random_range(-1e3f32..1e3)).collect();
    let want: Vec<f32> = xs
        .iter()
        .map(|&x| table.iter().fold(0.0f64, |s, &v| s + v as f64 * x as f64) as f32)
        .collect();
    for t in targets() {
        let got: Vec<f32> =
            t.rt.call(&k, (&xs[..], &table[..]), t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"))
                .output;
        assert_eq!(got, want, "{t}");
    }
}

/// The exact f64 operations at their edges, on every device, each written from the
/// rule: `floor`, `ceil`, `round` (ties to even), `fract` (`x - floor(x)`), `min` and
/// `max` (a NaN operand, from the data, yields the other), `%` (`a - b * trunc(a /
/// b)`), and comparisons with NaN (false, but `!=` true). Inputs are f32 (exact in
/// f64) plus 2^-31, so every value needs f64; each result is cast to f32 exactly or is
/// a flag.
#[test]
fn exact_f64_operations_at_their_edges() {
    let h = 2f64.powi(-31);
    let xs = [
        2.5f32,
        -2.5,
        3.5,
        -0.5,
        7.0,
        -7.0,
        f32::NAN,
        f32::INFINITY,
        0.0,
    ];
    type Eight = (
        Expr<f32>,
        Expr<f32>,
        Expr<f32>,
        Expr<f32>,
        Expr<f32>,
        Expr<f32>,
        Expr<u32>,
        Expr<f32>,
    );
    let k = Kernel::new(move |(x,): (Expr<f32>,)| -> Eight {
        let d = x.cast::<f64>();
        let e = d.clone() + h; // off the f32 grid: a wrong f32 path rounds it away
        let back = |v: Expr<f64>| v.cast::<f32>();
        (
            back(e.floor()),
            back(e.ceil()),
            back(d.round()),
            back((e.fract() - h) * 2f64.powi(20)),
            back(d.max(Expr::constant(1.0f64))),
            back(d.clone() % 2.0f64),
            d.clone().ne(d.clone()).cast::<u32>() | (d.clone().lt(e).cast::<u32>() << 1u32),
            back(Expr::constant(1.0f64).min(d.clone() * 0.5f64)),
        )
    });
    let want = |x: f32| {
        let d = x as f64;
        let e = d + h;
        let min = |a: f64, b: f64| {
            if a.is_nan() {
                b
            } else if b.is_nan() {
                a
            } else {
                a.min(b)
            }
        };
        let max = |a: f64, b: f64| {
            if a.is_nan() {
                b
            } else if b.is_nan() {
                a
            } else {
                a.max(b)
            }
        };
        (
            e.floor() as f32,
            e.ceil() as f32,
            d.round_ties_even() as f32,
            (((e - e.floor()) - h) * 2f64.powi(20)) as f32,
            max(d, 1.0) as f32,
            (d - 2.0 * (d / 2.0).trunc()) as f32,
            (d.is_nan() as u32) | (((d < e) as u32) << 1),
            min(1.0, d * 0.5) as f32,
        )
    };
    let same = |a: f32, b: f32| a == b || (a.is_nan() && b.is_nan());
    for t in targets() {
        let got =
            t.rt.call(&k, (&xs[..],), t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"));
        let o = &got.output;
        for (i, &x) in xs.iter().enumerate() {
            let w = want(x);
            let g = (
                o.0[i], o.1[i], o.2[i], o.3[i], o.4[i], o.5[i], o.6[i], o.7[i],
            );
            let ok = same(g.0, w.0)
                && same(g.1, w.1)
                && same(g.2, w.2)
                && same(g.3, w.3)
                && same(g.4, w.4)
                && same(g.5, w.5)
                && g.6 == w.6
                && same(g.7, w.7);
            assert!(ok, "{t}: x = {x}: got {g:?}, want {w:?}");
        }
    }
}

/// `Param<f64>` and `Param<i64>`: 64-bit values set between calls, every bit of them
/// reaching every device (the GPU puts an f64 together from its two words), with the
/// same compiled kernel for every value.
#[test]
fn sixty_four_bit_parameters() {
    let a = hybrid::Param::new(0.1f64);
    let p = a.clone();
    // what f32 loses of the value, relative to it, and the value scaled into f32 range
    let k = Kernel::new(move |(x,): (Expr<f32>,)| {
        let v = p.expr();
        let rest = ((v.clone() - v.cast::<f32>().cast::<f64>()) / v.clone()).cast::<f32>();
        (rest, (v * x.cast::<f64>()).cast::<f32>())
    });
    let scales = [1.0f32];
    let cases: [f64; 5] = [0.1, -1.0 / 3.0, 1e300, -f64::from_bits(1), f64::INFINITY];
    for t in targets() {
        for &v in &cases {
            a.set(v);
            assert_eq!(a.get().to_bits(), v.to_bits());
            let (rest, scaled): (Vec<f32>, Vec<f32>) =
                t.rt.call(&k, (&scales[..],), t.placement)
                    .unwrap_or_else(|e| panic!("{t}: {e}"))
                    .output;
            let want_rest = ((v - v as f32 as f64) / v) as f32;
            let want_scaled = v as f32;
            let same = |g: f32, w: f32| g == w || (g.is_nan() && w.is_nan());
            // a GPU may flush an f64 subnormal (Vulkan makes keeping them optional)
            let flushed = t.uses_gpu() && v.is_subnormal() && rest[0].is_nan();
            assert!(
                flushed || (same(rest[0], want_rest) && same(scaled[0], want_scaled)),
                "{t}: {v:e}: got ({}, {}), want ({want_rest}, {want_scaled})",
                rest[0],
                scaled[0]
            );
        }
    }
    // an i64 parameter past 32 bits, and i64::MIN
    let b = hybrid::Param::new(-5_000_000_000i64);
    let q = b.clone();
    let k = Kernel::new(move |(x,): (Expr<i32>,)| {
        let v = x.cast::<i64>() + q.expr();
        let u = v.cast::<u64>();
        (u.cast::<u32>(), (u >> 32u32).cast::<u32>())
    });
    let xs = [3i32, -3];
    for t in targets() {
        for v in [-5_000_000_000i64, i64::MIN, i64::MAX - 3] {
            b.set(v);
            let (lo, hi): (Vec<u32>, Vec<u32>) =
                t.rt.call(&k, (&xs[..],), t.placement)
                    .unwrap_or_else(|e| panic!("{t}: {e}"))
                    .output;
            for (i, &x) in xs.iter().enumerate() {
                let w = (x as i64).wrapping_add(v) as u64;
                assert_eq!(
                    (lo[i], hi[i]),
                    (w as u32, (w >> 32) as u32),
                    "{t}: {v} + {x}"
                );
            }
        }
    }
}

/// A random f64 expression over integer values, each kept within ±1e6 (products are
/// clamped), so every operation is exact on every device and contraction cannot
/// matter: what differs is the code generated for random shapes, not rounding.
#[derive(Debug, Clone)]
enum Ast {
    In(usize),
    Lit(f64),
    Add(Box<Ast>, Box<Ast>),
    Sub(Box<Ast>, Box<Ast>),
    /// `clamp(a * b, -1e6, 1e6)`
    Mul(Box<Ast>, Box<Ast>),
    /// `clamp(a.mul_add(b, c), -1e6, 1e6)`
    Mad(Box<Ast>, Box<Ast>, Box<Ast>),
    Min(Box<Ast>, Box<Ast>),
    Max(Box<Ast>, Box<Ast>),
    Abs(Box<Ast>),
    Neg(Box<Ast>),
    /// `floor`, `ceil` or `round` (0, 1, 2) of half the value: halves are exact
    Half(u8, Box<Ast>),
    /// `a % max(|b|, 1)`
    Rem(Box<Ast>, Box<Ast>),
    /// `a < b ? c : d`
    Sel(Box<Ast>, Box<Ast>, Box<Ast>, Box<Ast>),
    /// through `i64` and back, or through `i32` and back
    Int(bool, Box<Ast>),
}

const BOUND: f64 = 1e6;

fn gen(rng: &mut ChaCha8Rng, depth: u32) -> Ast {
    let b = |rng: &mut ChaCha8Rng| Box::new(gen(rng, depth - 1));
    if depth == 0 || rng.random_bool(0.2) {
        return if rng.random_bool(0.7) {
            Ast::In(rng.random_range(0..3))
        } else {
            Ast::Lit(rng.random_range(-50i32..50) as f64)
        };
    }
    match rng.random_range(0..13) {
        0 => Ast::Add(b(rng), b(rng)),
        1 => Ast::Sub(b(rng), b(rng)),
        2 => Ast::Mul(b(rng), b(rng)),
        3 => Ast::Mad(b(rng), b(rng), b(rng)),
        4 => Ast::Min(b(rng), b(rng)),
        5 => Ast::Max(b(rng), b(rng)),
        6 => Ast::Abs(b(rng)),
        7 => Ast::Neg(b(rng)),
        8 => Ast::Half(rng.random_range(0..3), b(rng)),
        9 => Ast::Rem(b(rng), b(rng)),
        10 => Ast::Sel(b(rng), b(rng), b(rng), b(rng)),
        _ => Ast::Int(rng.random_bool(0.5), b(rng)),
    }
}

fn build(a: &Ast, ins: &[Expr<f64>]) -> Expr<f64> {
    let c = |v: Expr<f64>| v.clamp(-BOUND, BOUND);
    match a {
        Ast::In(k) => ins[*k].clone(),
        Ast::Lit(v) => Expr::constant(*v),
        Ast::Add(x, y) => build(x, ins) + build(y, ins),
        Ast::Sub(x, y) => build(x, ins) - build(y, ins),
        Ast::Mul(x, y) => c(build(x, ins) * build(y, ins)),
        Ast::Mad(x, y, z) => c(build(x, ins).mul_add(build(y, ins), build(z, ins))),
        Ast::Min(x, y) => build(x, ins).min(build(y, ins)),
        Ast::Max(x, y) => build(x, ins).max(build(y, ins)),
        Ast::Abs(x) => build(x, ins).abs(),
        Ast::Neg(x) => -build(x, ins),
        Ast::Half(f, x) => {
            let h = build(x, ins) * 0.5f64;
            match f {
                0 => h.floor(),
                1 => h.ceil(),
                _ => h.round(),
            }
        }
        Ast::Rem(x, y) => build(x, ins) % build(y, ins).abs().max(Expr::constant(1.0f64)),
        Ast::Sel(p, q, x, y) => hybrid::select(
            build(p, ins).lt(build(q, ins)),
            build(x, ins),
            build(y, ins),
        ),
        Ast::Int(true, x) => build(x, ins).cast::<i64>().cast::<f64>(),
        Ast::Int(false, x) => build(x, ins).cast::<i32>().cast::<f64>(),
    }
}

fn eval(a: &Ast, ins: &[f64]) -> f64 {
    let c = |v: f64| v.clamp(-BOUND, BOUND);
    match a {
        Ast::In(k) => ins[*k],
        Ast::Lit(v) => *v,
        Ast::Add(x, y) => eval(x, ins) + eval(y, ins),
        Ast::Sub(x, y) => eval(x, ins) - eval(y, ins),
        Ast::Mul(x, y) => c(eval(x, ins) * eval(y, ins)),
        Ast::Mad(x, y, z) => c(eval(x, ins) * eval(y, ins) + eval(z, ins)),
        Ast::Min(x, y) => eval(x, ins).min(eval(y, ins)),
        Ast::Max(x, y) => eval(x, ins).max(eval(y, ins)),
        Ast::Abs(x) => eval(x, ins).abs(),
        Ast::Neg(x) => -eval(x, ins),
        Ast::Half(f, x) => {
            let h = eval(x, ins) * 0.5;
            match f {
                0 => h.floor(),
                1 => h.ceil(),
                _ => h.round_ties_even(),
            }
        }
        Ast::Rem(x, y) => {
            let (a, b) = (eval(x, ins), eval(y, ins).abs().max(1.0));
            a - b * (a / b).trunc()
        }
        Ast::Sel(p, q, x, y) => {
            if eval(p, ins) < eval(q, ins) {
                eval(x, ins)
            } else {
                eval(y, ins)
            }
        }
        Ast::Int(true, x) => eval(x, ins) as i64 as f64,
        Ast::Int(false, x) => eval(x, ins) as i32 as f64,
    }
}

/// 40 random f64 kernels of three i32 inputs (seeded), each bit for bit equal to the
/// same expression in Rust's f64 on every placement: the values stay integers or
/// halves within ±1e6 (2^20), so every operation is exact and any difference is a
/// code generation or evaluator error. Sums of values near 1e6 stay far below 2^53.
#[test]
fn random_integer_valued_f64_kernels_are_exact_everywhere() {
    let mut rng = ChaCha8Rng::seed_from_u64(0xf64);
    let n = 2_000;
    let cols: Vec<Vec<i32>> = (0..3)
        .map(|_| (0..n).map(|_| rng.random_range(-1000..1000)).collect())
        .collect();
    for case in 0..40 {
        let ast = gen(&mut rng, 5);
        let a = ast.clone();
        let k = Kernel::new(move |(x, y, z): (Expr<i32>, Expr<i32>, Expr<i32>)| {
            let ins = [x.cast::<f64>(), y.cast::<f64>(), z.cast::<f64>()];
            // the value doubled is an integer within 2^21: exact as i32
            (build(&a, &ins) * 2.0f64).cast::<i32>()
        });
        let want: Vec<i32> = (0..n)
            .map(|i| {
                let ins = [cols[0][i] as f64, cols[1][i] as f64, cols[2][i] as f64];
                (eval(&ast, &ins) * 2.0) as i32
            })
            .collect();
        for t in targets() {
            let got: Vec<i32> =
                t.rt.call(&k, (&cols[0][..], &cols[1][..], &cols[2][..]), t.placement)
                    .unwrap_or_else(|e| panic!("{t}: case {case}: {e}\n{ast:?}"))
                    .output;
            if let Some(i) = (0..n).find(|&i| got[i] != want[i]) {
                panic!(
                    "{t}: case {case}, element {i} ({}, {}, {}): got {}, want {}\n{ast:?}",
                    cols[0][i], cols[1][i], cols[2][i], got[i], want[i]
                );
            }
        }
    }
}

/// A reduction over a kernel that computes in f64: the per-element values, each an
/// integer below 2^24 after the f64 work, summed exactly on every placement (the sum
/// stays below 2^24, so f32 holds every partial), and the minimum and maximum.
#[test]
fn reductions_over_an_f64_kernel() {
    let k = Kernel::map(|x: Expr<i32>| {
        let d = x.cast::<f64>();
        ((d.clone() * d * 1e-6f64).floor() + 1.0f64).cast::<f32>()
    });
    let xs: Vec<i32> = (0..20_000).map(|i| (i * 37) % 4001 - 2000).collect();
    let vals: Vec<f32> = xs
        .iter()
        .map(|&x| ((x as f64 * x as f64 * 1e-6).floor() + 1.0) as f32)
        .collect();
    let sum: f32 = vals.iter().sum();
    assert!(sum < (1 << 24) as f32);
    let (lo, hi) = vals
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    for t in targets() {
        let r = |op| {
            t.rt.reduce(&xs[..], &k, op, t.placement)
                .unwrap_or_else(|e| panic!("{t}: {op}: {e}"))
                .output
        };
        assert_eq!(r(hybrid::Reduce::Sum), sum, "{t}: sum");
        assert_eq!(r(hybrid::Reduce::Min), lo, "{t}: min");
        assert_eq!(r(hybrid::Reduce::Max), hi, "{t}: max");
    }
}

/// Throughput models are per kernel, and an f64 kernel is not its f32 twin: after the
/// f32 kernel's models are measured, the f64 one is measured anew under `Auto` (its
/// rate is not assumed to be the f32 one's), then reuses its own.
#[test]
fn an_f64_kernel_has_models_of_its_own() {
    let rt = common::sim_runtime(1e8, 1e9, 1e-5, 1e10);
    let k32 = Kernel::map(|x: Expr<f32>| x * 3.0f32 + 0.25f32);
    let k64 = f64_kernel();
    let xs: Vec<f32> = vec![1.5; 1 << 18];
    let probed = |k: &Kernel<f32, f32>| {
        let run = rt
            .map(&xs, k, Placement::Auto)
            .unwrap_or_else(|e| panic!("{e}"));
        run.report.notes().iter().any(|n| n.contains("probed"))
    };
    assert!(probed(&k32), "the first call measures the devices");
    assert!(!probed(&k32), "the f32 kernel reuses its models");
    assert!(probed(&k64), "the f64 twin is measured anew");
    assert!(!probed(&k64), "and then reuses its own");
}
