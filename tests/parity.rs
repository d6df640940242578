//! Random kernels on every device and placement, against an independent reference.
//!
//! Each case is a random expression (see `common::gen`) over f32/i32/u32 with one or two
//! inputs; it runs on the CPU device, on the GPU, and split between them at several
//! fractions, for lengths around the workgroup size and a random one, and every element is
//! checked against `common::reference` with the accuracy table of the device that
//! computed it (the report's shares say which). Integers must match exactly.
//!
//! `HYBRID_PARITY_CASES=n` runs n cases per test instead of the default;
//! `HYBRID_PARITY_SEED=s` runs the one case with seed s (printed by a failure).

mod common;

use common::gen::{self, Case, Elem, Shape, Ty};
use common::{call, check_output, cpu_runtime, gpu_runtime, inputs, Refs, Tally};
use hybrid::{Expr, Kernel, Placement, Runtime};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Cases per test (two tests: one- and two-input kernels, 800 in all) unless overridden;
/// fewer than a few hundred per test missed a CPU evaluator bug the generator does reach.
const DEFAULT_CASES: u64 = 400;
const SPLITS: [f64; 4] = [0.0, 0.3, 0.7, 1.0];

fn seeds(base: u64) -> Vec<u64> {
    if let Ok(s) = std::env::var("HYBRID_PARITY_SEED") {
        return vec![s.trim().parse().expect("HYBRID_PARITY_SEED is a number")];
    }
    let n = std::env::var("HYBRID_PARITY_CASES")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or(DEFAULT_CASES, |n| n.div_ceil(2));
    (0..n).map(|i| base + i).collect()
}

/// Runs one case on every device and placement; adds to the tallies (cpu, gpu).
fn run_case<I: Elem, O: Elem>(
    case: &Case,
    cpu: &Runtime,
    gpu: Option<&Runtime>,
    tally: &mut [Tally; 2],
) {
    let arity = case.shape.arity;
    let k: Kernel<I, O> = gen::kernel(&case.ast, arity);
    let mut rng = ChaCha8Rng::seed_from_u64(case.seed ^ 0x5eed_1234_abcd_0000);
    let lengths = [0, 1, 255, 256, 257, rng.random_range(258..20_000)];
    for n in lengths {
        let (a, b) = inputs::<I>(&mut rng, n, arity);
        let mut refs = Refs::new(case, &a, &b);
        let what = format!("placement cpu, n = {n}");
        let run = call(cpu, &k, &a, &b, arity, Placement::Cpu)
            .unwrap_or_else(|e| panic!("{what}: {e}\n{case}"));
        let r = refs.get(false);
        check_output(
            case,
            &k,
            &what,
            &a,
            &b,
            &run.output,
            |i| (r[i], false),
            tally,
        );

        let Some(gpu) = gpu else { continue };
        let what = format!("placement gpu, n = {n}");
        let run = call(gpu, &k, &a, &b, arity, Placement::Gpu)
            .unwrap_or_else(|e| panic!("{what}: {e}\n{case}"));
        let r = refs.get(true);
        check_output(
            case,
            &k,
            &what,
            &a,
            &b,
            &run.output,
            |i| (r[i], true),
            tally,
        );

        for f in SPLITS {
            let what = format!("placement split({f}), n = {n}");
            let run = call(gpu, &k, &a, &b, arity, Placement::Split(f))
                .unwrap_or_else(|e| panic!("{what}: {e}\n{case}"));
            // who computed each element, from the report
            let mut on_gpu = vec![None; n];
            for s in run.report.shares() {
                for x in &mut on_gpu[s.range()] {
                    assert!(x.is_none(), "{what}: shares overlap: {}", run.report);
                    *x = Some(s.kind().is_gpu());
                }
            }
            let on_gpu: Vec<bool> = on_gpu
                .into_iter()
                .map(|x| {
                    x.unwrap_or_else(|| panic!("{what}: an element is in no share: {}", run.report))
                })
                .collect();
            let gpu_elems = on_gpu.iter().filter(|&&g| g).count();
            assert_eq!(
                gpu_elems,
                (f * n as f64).round() as usize,
                "{what}: gpu share\n{}",
                run.report
            );
            let (rc, rg) = (refs.get(false).to_vec(), refs.get(true).to_vec());
            check_output(
                case,
                &k,
                &what,
                &a,
                &b,
                &run.output,
                |i| {
                    if on_gpu[i] {
                        (rg[i], true)
                    } else {
                        (rc[i], false)
                    }
                },
                tally,
            );
        }
    }
}

fn dispatch(case: &Case, cpu: &Runtime, gpu: Option<&Runtime>, tally: &mut [Tally; 2]) {
    macro_rules! go {
        ($($i:ident $it:ty, $o:ident $ot:ty;)*) => {
            match (case.shape.input, case.shape.output) {
                $((Ty::$i, Ty::$o) => run_case::<$it, $ot>(case, cpu, gpu, tally),)*
                _ => unreachable!(),
            }
        };
    }
    go! {
        F f32, F f32; F f32, I i32; F f32, U u32;
        I i32, F f32; I i32, I i32; I i32, U u32;
        U u32, F f32; U u32, I i32; U u32, U u32;
    }
}

fn random_kernels(base: u64, arity: usize) {
    let cpu = cpu_runtime();
    let gpu = gpu_runtime();
    let mut tally = [Tally::default(); 2];
    let mut shapes = [0usize; 9];
    let seeds = seeds(base);
    for &seed in &seeds {
        let mut pick = ChaCha8Rng::seed_from_u64(seed);
        let tys = [Ty::F, Ty::I, Ty::U];
        let (i, o) = (pick.random_range(0..3), pick.random_range(0..3));
        shapes[i * 3 + o] += 1;
        let case = gen::case(
            seed,
            Some(Shape {
                input: tys[i],
                output: tys[o],
                arity,
            }),
        );
        dispatch(&case, &cpu, gpu.as_ref(), &mut tally);
    }
    eprintln!(
        "{} cases, input x output type counts (f,i,u x f,i,u): {shapes:?}",
        seeds.len()
    );
    let min = if seeds.len() > 1 { 10_000 } else { 1 };
    tally[0].assert_meaningful("cpu", min);
    if gpu.is_some() {
        tally[1].assert_meaningful("gpu", min);
    }
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
    let cpu = cpu_runtime();
    let gpu = gpu_runtime();
    let mut runtimes: Vec<(&Runtime, Placement)> = vec![(&cpu, Placement::Cpu)];
    if let Some(g) = &gpu {
        runtimes.extend([(g, Placement::Gpu), (g, Placement::Split(0.5))]);
    }

    let xs: Vec<u32> = (0..N as u32)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .collect();
    let k = Kernel::map(|x: Expr<u32>| x * 3u32 + hybrid::index());
    for &(rt, p) in &runtimes {
        let run = rt.map(&xs, &k, p).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_eq!(run.output.len(), N);
        assert_eq!(
            run.report
                .shares()
                .iter()
                .map(|s| s.elements())
                .sum::<usize>(),
            N
        );
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
    for &(rt, p) in &runtimes {
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
