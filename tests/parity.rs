//! Random kernels on every device and placement, against an independent reference.
//!
//! Each case is a random expression (see `common::gen`) over f32/i32/u32 with one or two
//! inputs; it runs on the CPU device, on the GPU, and split between them at several
//! fractions, for lengths around the workgroup size and a random one, and every element is
//! checked against `common::reference` with the accuracy table of the device that
//! computed it (the report's shares say which). Integers must match exactly.
//!
//! Fixed kernels run on every device too: one float and one integer kernel against the
//! same rules written in Rust, float operations at their edges against the CPU
//! evaluator, and lengths past the GPU's dispatch limit against closed forms. Each
//! body takes a `common::Target` and runs for every one there is; without a GPU the
//! GPU targets skip with a printed reason, or fail with `HYBRID_REQUIRE_GPU=1`.
//!
//! `HYBRID_PARITY_CASES=n` runs n cases per test instead of the default;
//! `HYBRID_PARITY_SEED=s` runs the one case with seed s (printed by a failure).

mod common;

use common::gen::{self, Case, Elem, Shape, Ty};
use common::{
    assert_cases_meaningful, call, check_case, check_output, cpu_runtime, gpu_targets, inputs,
    parity_cases, parity_seeds, reference, shared_cpu, targets, targets_with_splits, typed, Refs,
    Tally, Target,
};
use hybrid::{fold, index, select, Expr, Kernel, Placement, Runtime};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Cases per test (two tests: one- and two-input kernels, 800 in all) unless overridden;
/// fewer than a few hundred per test missed a CPU evaluator bug the generator does reach.
const DEFAULT_CASES: u64 = 400;
const SPLITS: [f64; 4] = [0.0, 0.3, 0.7, 1.0];

/// The seeds: `HYBRID_PARITY_CASES=n` is n for the two tests together.
fn seeds(base: u64) -> Vec<u64> {
    parity_seeds(
        base,
        parity_cases().map_or(DEFAULT_CASES, |n| n.div_ceil(2)),
    )
}

/// Runs one case on every target; adds to the tallies (cpu, gpu).
fn run_case<I: Elem, O: Elem>(case: &Case, targets: &[Target], tally: &mut [Tally; 2]) {
    let mut rng = ChaCha8Rng::seed_from_u64(case.seed ^ 0x5eed_1234_abcd_0000);
    let lengths = [0, 1, 255, 256, 257, rng.random_range(258..20_000)];
    check_case::<I, O>(case, targets, &lengths, &mut rng, &reference::GPU, tally);
}

fn random_kernels(base: u64, arity: usize) {
    let targets = targets_with_splits(&SPLITS);
    let gpu = targets.iter().any(|t| t.uses_gpu());
    let mut tally = [Tally::default(); 2];
    let mut shapes = [0usize; 9];
    let seeds = seeds(base);
    let at = |ty: Ty| gen::ELEMENT_TYS.iter().position(|&t| t == ty).unwrap();
    for &seed in &seeds {
        let case = gen::case(seed, Some(gen::shape_for(seed, arity)));
        shapes[at(case.shape.input) * 3 + at(case.shape.output)] += 1;
        typed!(case, run_case(&case, &targets, &mut tally));
    }
    eprintln!(
        "{} cases, input x output type counts (f,i,u x f,i,u): {shapes:?}",
        seeds.len()
    );
    assert_cases_meaningful(&tally, seeds.len(), gpu);
}

#[test]
fn random_one_input_kernels_match_the_reference() {
    random_kernels(1_000, 1);
}

#[test]
fn random_two_input_kernels_match_the_reference() {
    random_kernels(2_000_000, 2);
}

/// The global runtime's `hybrid::map` and `map2` give what `Placement::Cpu` gives: the
/// same bits when the global runtime has no GPU, the reference otherwise.
#[test]
fn global_map_equals_cpu_placement() {
    let cpu = cpu_runtime();
    let global_gpu = Runtime::global().expect("global runtime").has_gpu();
    let mut tally = [Tally::default(); 2];
    for seed in 5_000..5_030 {
        let case = gen::case(
            seed,
            Some(Shape {
                input: Ty::F,
                output: Ty::F,
                arity: 1 + (seed % 2) as usize,
            }),
        );
        let k: Kernel<f32, f32> = gen::kernel(&case.ast, case.shape.arity);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (a, b) = inputs::<f32>(&mut rng, 3_000, case.shape.arity);
        let want = call(&cpu, &k, &a, &b, case.shape.arity, Placement::Cpu)
            .expect("cpu placement")
            .output;
        let got = if case.shape.arity == 1 {
            hybrid::map(&a, &k)
        } else {
            hybrid::map2(&a, &b, &k)
        }
        .expect("hybrid::map on the global runtime");
        if !global_gpu {
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                    "{case}: element {i}: {g} != {w}"
                );
            }
        } else {
            let mut refs = Refs::new(&case, &a, &b);
            let (rc, rg) = (refs.get(false).to_vec(), refs.get(true).to_vec());
            // either device may have computed an element: accept the looser verdict
            check_output(
                &case,
                &k,
                "hybrid::map",
                &a,
                &b,
                &got,
                |i| (if rg[i] == rc[i] { rc[i] } else { rg[i] }, true),
                &mut tally,
            );
        }
    }
    // the integer path, on a kernel that mixes types
    let k = Kernel::map2(|a: Expr<u32>, b: Expr<u32>| {
        (a ^ (b.clone() << 3u32)) / b.max(1u32) + hybrid::index()
    });
    let a: Vec<u32> = (0..5_000u32)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .collect();
    let b: Vec<u32> = (0..5_000u32).map(|i| i % 37).collect();
    let want = cpu
        .map2(&a, &b, &k, Placement::Cpu)
        .expect("cpu placement")
        .output;
    assert_eq!(hybrid::map2(&a, &b, &k).expect("hybrid::map2"), want);
    for (i, w) in want.iter().enumerate() {
        let (x, y) = (a[i], b[i]);
        assert_eq!(*w, (x ^ (y << 3)) / y.max(1) + i as u32, "element {i}");
    }
}

/// Past the dispatch limit (65,535 workgroups of 256) and a large binding: a few fixed
/// kernels, checked against closed forms.
#[test]
fn lengths_past_the_dispatch_limit() {
    const N: usize = 65_535 * 256 + 1;
    let targets = targets_with_splits(&[0.5]);

    let xs: Vec<u32> = (0..N as u32)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .collect();
    let k = Kernel::map(|x: Expr<u32>| x * 3u32 + hybrid::index());
    for &Target { rt, placement: p } in &targets {
        let run = rt.map(&xs, &k, p).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_eq!(run.output.len(), N);
        assert_eq!(common::share_elements(&run.report), N);
        for (i, (&y, &x)) in run.output.iter().zip(&xs).enumerate() {
            assert_eq!(
                y,
                x.wrapping_mul(3).wrapping_add(i as u32),
                "{p}: element {i} of {N}\n{}",
                run.report
            );
        }
    }

    let a: Vec<f32> = (0..N)
        .map(|i| ((i * 7_919) % 8_001) as f32 / 1_000.0 - 4.0)
        .collect();
    let b: Vec<f32> = (0..N)
        .map(|i| ((i * 104_729) % 6_007) as f32 / 1_000.0 - 3.0)
        .collect();
    let k = Kernel::map2(|a: Expr<f32>, b: Expr<f32>| {
        a.mul_add(b, 0.5) + hybrid::index().cast::<f32>()
    });
    for &Target { rt, placement: p } in &targets {
        let run = rt
            .map2(&a, &b, &k, p)
            .unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_eq!(run.output.len(), N);
        for (i, &y) in run.output.iter().enumerate() {
            let (x, z) = (a[i] as f64, b[i] as f64);
            let v = x * z + 0.5 + i as f64;
            // i < 2^24 converts exactly; three roundings (mul, add, add), fused or not
            let bound = 3.0 * common::reference::ulp((x * z).abs() + 0.5 + i as f64);
            assert!(
                (y as f64 - v).abs() <= bound,
                "{p}: element {i} of {N}: a = {}, b = {}: got {y}, want {v} ± {bound}\n{}",
                a[i],
                b[i],
                run.report
            );
        }
    }
}

// --- fixed kernels on every device ---------------------------------------------------

/// Relative error allowed between a device's float results and the reference (with an
/// absolute floor of the same size near zero): a few ulps for arithmetic, enough for
/// lavapipe's transcendental functions and fused `a * b + c`, far below any wrong
/// answer.
const FLOAT_TOL: f32 = 4e-6;

fn floats_agree(got: f32, want: f32) -> bool {
    got.to_bits() == want.to_bits()
        || (got.is_nan() && want.is_nan())
        || (got - want).abs() <= FLOAT_TOL * want.abs().max(1.0)
}

fn check_floats(what: &str, got: &[f32], want: &[f32], inputs: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            floats_agree(*g, *w),
            "{what}: element {i} (input {:?}): got {g:e}, want {w:e}",
            inputs.get(i)
        );
    }
}

/// Lengths around the workgroup (256) and the dispatch's tail, and three random ones
/// up to 200,000, drawn from `seed`.
fn lengths(seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v = vec![0, 1, 255, 256, 257, 511, 4097];
    v.extend((0..3).map(|_| rng.random_range(2..200_000)));
    v
}

fn random_f32(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-100.0f32..100.0)).collect()
}

/// A float kernel of correctly rounded operations, against the same operations in
/// Rust, on every device at edge and random lengths.
#[test]
fn a_float_kernel_matches_rust_at_edge_and_random_lengths() {
    let k = Kernel::map(|x: Expr<f32>| (x.abs() * 2.0 + 1.0).sqrt() + x.clone() * 0.25 - x.floor());
    let want = |x: f32| ((x.abs() * 2.0 + 1.0).sqrt() + x * 0.25) - x.floor();
    for t in targets() {
        let seed = 7;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for n in lengths(seed) {
            let what = format!("{t}, seed {seed}, n = {n}");
            let xs = random_f32(&mut rng, n);
            let got =
                t.rt.map(&xs, &k, t.placement)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
            let want: Vec<f32> = xs.iter().map(|&x| want(x)).collect();
            check_floats(&what, &got.output, &want, &xs);
        }
    }
}

/// Division and remainder (by zero and `MIN / -1` too), shifts past 31, wrapping
/// arithmetic, `abs`, `min`, `max`, `clamp` and the index in one kernel: bit for bit
/// what the same rules give in Rust, on every device and split at 0.3 (where the GPU
/// takes exactly 30% of the elements), at edge and random lengths.
#[test]
fn an_integer_kernel_is_exact_at_edge_and_random_lengths() {
    let k = Kernel::map2(|a: Expr<i32>, b: Expr<i32>| {
        let s = b.cast::<u32>();
        let q = (&a / &b) ^ (&a % &b);
        let sh = (a.clone() << s.clone()) + (a.clone() >> s);
        let idx = index().cast::<i32>();
        q + sh * 31 + a.abs() + (-b.clone()) + idx + a.min(&b) - a.max(&b) + a.clamp(-1000, b)
    });
    let want = |i: usize, a: i32, b: i32| {
        let (q, r) = match b {
            0 => (a, 0),
            _ => (a.wrapping_div(b), a.wrapping_rem(b)),
        };
        let s = b as u32;
        let sh = a.wrapping_shl(s).wrapping_add(a.wrapping_shr(s));
        (q ^ r)
            .wrapping_add(sh.wrapping_mul(31))
            .wrapping_add(a.wrapping_abs())
            .wrapping_add(b.wrapping_neg())
            .wrapping_add(i as i32)
            .wrapping_add(a.min(b))
            .wrapping_sub(a.max(b))
            .wrapping_add(a.max(-1000).min(b))
    };
    for t in targets_with_splits(&[0.3]) {
        let seed = 3;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for n in lengths(seed) {
            let what = format!("{t}, seed {seed}, n = {n}");
            let a: Vec<i32> = (0..n).map(|_| rng.random()).collect();
            let b: Vec<i32> = (0..n)
                .map(|_| {
                    if rng.random_bool(0.1) {
                        0
                    } else {
                        rng.random_range(-70..70)
                    }
                })
                .collect();
            let run =
                t.rt.map2(&a, &b, &k, t.placement)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
            if let Placement::Split(f) = t.placement {
                let gpu = common::gpu_elements(&run.report);
                assert_eq!(
                    gpu,
                    (f * n as f64).round() as usize,
                    "{what}\n{}",
                    run.report
                );
            }
            if let Some(i) = (0..n).find(|&i| run.output[i] != want(i, a[i], b[i])) {
                panic!(
                    "{what}: element {i} (a = {}, b = {}): got {}, want {}",
                    a[i],
                    b[i],
                    run.output[i],
                    want(i, a[i], b[i])
                );
            }
        }
    }
}

/// Float operations at their edges (ties, signed zeros, huge values, infinities, NaN)
/// and over random values, on every device that is not the CPU, against the CPU
/// evaluator: it is the reference here (the random kernels above check it against the
/// independent one), and its rules for `%`, `round`, `min` of NaN and the like are
/// WGSL's, which are not Rust's.
#[test]
fn float_operations_at_their_edges_match_the_cpu_evaluator() {
    let mut xs = vec![
        0.0,
        -0.0,
        0.5,
        1.5,
        2.5,
        -2.5,
        -3.5,
        3.5,
        -1.25,
        7.5,
        -7.5,
        1e-3,
        1e30,
        -1e30,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        f32::MAX,
        f32::MIN_POSITIVE,
    ];
    xs.extend(random_f32(&mut ChaCha8Rng::seed_from_u64(11), 1000));
    let kernels: Vec<(&str, Kernel<f32, f32>)> = vec![
        ("rem", Kernel::map(|x: Expr<f32>| x.clone() % 2.0 + 7.5 % x)),
        ("round", Kernel::map(|x: Expr<f32>| x.round())),
        ("fract", Kernel::map(|x: Expr<f32>| x.fract())),
        (
            "floor ceil",
            Kernel::map(|x: Expr<f32>| x.floor() - x.ceil()),
        ),
        ("pow", Kernel::map(|x: Expr<f32>| x.pow(2.0))),
        (
            "min max nan",
            Kernel::map(|x: Expr<f32>| x.min(1.0) + x.max(-1.0) + x.clamp(-2.0, 2.0)),
        ),
        (
            "inf nan constants",
            Kernel::map(|x: Expr<f32>| {
                select(x.gt(0.0), f32::INFINITY, f32::NAN) + x.max(f32::NEG_INFINITY)
            }),
        ),
        (
            "comparisons",
            Kernel::map(|x: Expr<f32>| {
                select(x.ne(&x).or(x.eq(0.5)), 1.0, 0.0) + x.le(0.0).cast::<f32>()
            }),
        ),
        (
            "division",
            Kernel::map(|x: Expr<f32>| 1.0 / x.clone() + x / 0.0),
        ),
        (
            "transcendental",
            Kernel::map(|x: Expr<f32>| {
                let s = x.clone() * 1e-2;
                s.sin()
                    + s.cos()
                    + s.exp()
                    + (s.abs() + 1.0).ln()
                    + s.exp2()
                    + (s.abs() + 1.0).log2()
                    + s.sqrt()
            }),
        ),
        (
            "fold",
            Kernel::map(|x: Expr<f32>| {
                fold(8, x.clone(), |acc, i| {
                    acc * 0.5 + i.cast::<f32>() - x.clone()
                })
            }),
        ),
        ("mul_add", Kernel::map(|x: Expr<f32>| x.mul_add(3.0, 1.0))),
    ];
    for t in gpu_targets(&[0.5]) {
        for (what, k) in &kernels {
            let what = format!("{what} on {t}");
            let got =
                t.rt.map(&xs, k, t.placement)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
            let want = shared_cpu()
                .map(&xs, k, Placement::Cpu)
                .unwrap_or_else(|e| panic!("{what}: cpu: {e}"));
            check_floats(&what, &got.output, &want.output, &xs);
        }
    }
}
