//! GPU parity: the wgpu device computes what the CPU evaluator computes.
//!
//! Integer kernels must agree bit for bit; float kernels within a relative error of
//! `FLOAT_TOL` (the GPU's `sin`, `exp`, ... are less exact and it may fuse `a * b + c`),
//! NaN matching NaN. Every test skips with a printed reason when there is no GPU, and
//! fails instead when `HYBRID_REQUIRE_GPU=1` (unless `HYBRID_BACKEND=cpu`).

use std::sync::OnceLock;

use hybrid::{fold, index, select, Element, Expr, Kernel, Placement, Runtime};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Relative error allowed between the GPU's and the CPU's float results (with an
/// absolute floor of the same size near zero): a few ulps for arithmetic, enough for
/// lavapipe's transcendental functions, far below any wrong answer.
const FLOAT_TOL: f32 = 4e-6;

fn env_is(var: &str, value: &str) -> bool {
    std::env::var(var)
        .map(|v| v.trim().eq_ignore_ascii_case(value))
        .unwrap_or(false)
}

/// The shared runtime with a GPU, or `None` (after saying why) when the test must skip.
fn gpu() -> Option<&'static Runtime> {
    static RT: OnceLock<Result<Runtime, String>> = OnceLock::new();
    let cpu_only = env_is("HYBRID_BACKEND", "cpu");
    let require = env_is("HYBRID_REQUIRE_GPU", "1") && !cpu_only;
    if cpu_only {
        eprintln!("skipped: HYBRID_BACKEND=cpu");
        return None;
    }
    let rt = RT.get_or_init(|| {
        let rt = Runtime::new().map_err(|e| format!("runtime failed: {e}"))?;
        if !rt.has_gpu() {
            return Err(format!(
                "no gpu: {}",
                rt.no_gpu_reason().unwrap_or("unknown")
            ));
        }
        Ok(rt)
    });
    match rt {
        Ok(rt) => Some(rt),
        Err(reason) if require => panic!("HYBRID_REQUIRE_GPU=1 but {reason}"),
        Err(reason) => {
            eprintln!("skipped: {reason}");
            None
        }
    }
}

fn floats_agree(g: f32, c: f32) -> bool {
    g.to_bits() == c.to_bits()
        || (g.is_nan() && c.is_nan())
        || (g - c).abs() <= FLOAT_TOL * c.abs().max(1.0)
}

fn check_floats(what: &str, gpu: &[f32], cpu: &[f32], inputs: &[f32]) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    for (i, (g, c)) in gpu.iter().zip(cpu).enumerate() {
        assert!(
            floats_agree(*g, *c),
            "{what}: element {i} (input {:?}): gpu {g:e}, cpu {c:e}",
            inputs.get(i)
        );
    }
}

fn check_exact<T: Element>(what: &str, gpu: &[T], cpu: &[T]) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    if let Some(i) = (0..gpu.len()).find(|&i| gpu[i].to_bits() != cpu[i].to_bits()) {
        panic!("{what}: element {i}: gpu {:?}, cpu {:?}", gpu[i], cpu[i]);
    }
}

fn random_f32(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-100.0f32..100.0)).collect()
}

fn lengths(seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v = vec![0, 1, 255, 256, 257, 511, 4097];
    v.extend((0..3).map(|_| rng.random_range(2..200_000)));
    v
}

#[test]
fn float_kernel_matches_cpu_at_edge_and_random_lengths() {
    let Some(rt) = gpu() else { return };
    let k = Kernel::map(|x: Expr<f32>| (x.abs() * 2.0 + 1.0).sqrt() + x.clone() * 0.25 - x.floor());
    let seed = 7;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for n in lengths(seed) {
        let xs = random_f32(&mut rng, n);
        let g = rt
            .map(&xs, &k, Placement::Gpu)
            .unwrap_or_else(|e| panic!("n={n}: {e}"));
        let c = rt
            .map(&xs, &k, Placement::Cpu)
            .unwrap_or_else(|e| panic!("n={n}: {e}"));
        check_floats(&format!("seed {seed}, n={n}"), &g.output, &c.output, &xs);
    }
}

#[test]
fn float_semantics_match_cpu() {
    let Some(rt) = gpu() else { return };
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
    for (what, k) in &kernels {
        let g = rt
            .map(&xs, k, Placement::Gpu)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let c = rt
            .map(&xs, k, Placement::Cpu)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        check_floats(what, &g.output, &c.output, &xs);
    }
}

fn integer_kernel() -> Kernel<i32, i32> {
    Kernel::map2(|a: Expr<i32>, b: Expr<i32>| {
        let s = b.cast::<u32>();
        let q = (&a / &b) ^ (&a % &b);
        let sh = (a.clone() << s.clone()) + (a.clone() >> s);
        let idx = index().cast::<i32>();
        q + sh * 31 + a.abs() + (-b.clone()) + idx + a.min(&b) - a.max(&b) + a.clamp(-1000, b)
    })
}

#[test]
fn integer_kernel_matches_cpu_exactly() {
    let Some(rt) = gpu() else { return };
    let k = integer_kernel();
    let seed = 3;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for n in lengths(seed) {
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
        let g = rt
            .map2(&a, &b, &k, Placement::Gpu)
            .unwrap_or_else(|e| panic!("n={n}: {e}"));
        let c = rt
            .map2(&a, &b, &k, Placement::Cpu)
            .unwrap_or_else(|e| panic!("n={n}: {e}"));
        check_exact(&format!("seed {seed}, n={n}"), &g.output, &c.output);
    }
}

#[test]
fn integer_edge_cases_match_cpu_and_wgsl() {
    let Some(rt) = gpu() else { return };
    let pairs = [
        (i32::MIN, -1),
        (i32::MIN, 1),
        (7, 0),
        (-7, 0),
        (0, 0),
        (i32::MIN, 0),
        (-7, 2),
        (7, -2),
        (i32::MAX, -1),
    ];
    let (a, b): (Vec<i32>, Vec<i32>) = pairs.iter().copied().unzip();
    let div = Kernel::map2(|a: Expr<i32>, b: Expr<i32>| a / b);
    let rem = Kernel::map2(|a: Expr<i32>, b: Expr<i32>| a % b);
    let g_div = rt
        .map2(&a, &b, &div, Placement::Gpu)
        .map(|r| r.output)
        .unwrap_or_else(|e| panic!("{e}"));
    let g_rem = rt
        .map2(&a, &b, &rem, Placement::Gpu)
        .map(|r| r.output)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        g_div,
        vec![i32::MIN, i32::MIN, 7, -7, 0, i32::MIN, -3, -3, -i32::MAX]
    );
    assert_eq!(g_rem, vec![0, 0, 0, 0, 0, 0, -1, 1, 0]);
    check_exact(
        "div",
        &g_div,
        &rt.map2(&a, &b, &div, Placement::Cpu)
            .map(|r| r.output)
            .unwrap_or_default(),
    );
    check_exact(
        "rem",
        &g_rem,
        &rt.map2(&a, &b, &rem, Placement::Cpu)
            .map(|r| r.output)
            .unwrap_or_default(),
    );

    let ua: Vec<u32> = vec![9, 0, u32::MAX, 5];
    let ub: Vec<u32> = vec![0, 0, 0, 2];
    let udiv = Kernel::map2(|a: Expr<u32>, b: Expr<u32>| (a.clone() / b.clone()) * 1000 + a % b);
    let g = rt
        .map2(&ua, &ub, &udiv, Placement::Gpu)
        .map(|r| r.output)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(g, vec![9000, 0, u32::MAX.wrapping_mul(1000), 2001]);

    // Shifts by 0..100: the amount is masked to 0..=31.
    let xs: Vec<i32> = (0..100)
        .map(|i| if i % 2 == 0 { -12345 } else { 0x4000_0001 })
        .collect();
    let amounts: Vec<i32> = (0..100).collect();
    let shifts = Kernel::map2(|x: Expr<i32>, s: Expr<i32>| {
        let s = s.cast::<u32>();
        (x.clone() << s.clone()) ^ (x.clone() >> s.clone()) ^ (x.cast::<u32>() >> s).cast::<i32>()
    });
    let g = rt
        .map2(&xs, &amounts, &shifts, Placement::Gpu)
        .map(|r| r.output)
        .unwrap_or_else(|e| panic!("{e}"));
    let want: Vec<i32> = xs
        .iter()
        .zip(&amounts)
        .map(|(&x, &s)| {
            let s = (s as u32) & 31;
            (x << s) ^ (x >> s) ^ ((x as u32) >> s) as i32
        })
        .collect();
    assert_eq!(g, want);

    // Float to integer casts: truncate, saturate to the full range, NaN to 0.
    let fs = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        3e9,
        -3e9,
        -1.5,
        1.5,
        -0.0,
        2147483520.0,
        2147483648.0,
        4294967040.0,
        4294967296.0,
        -2147483648.0,
        1e-45,
        -0.99,
    ];
    let to_i = Kernel::map(|x: Expr<f32>| x.cast::<i32>());
    let to_u = Kernel::map(|x: Expr<f32>| x.cast::<u32>());
    let gi = rt
        .map(&fs, &to_i, Placement::Gpu)
        .map(|r| r.output)
        .unwrap_or_else(|e| panic!("{e}"));
    let gu = rt
        .map(&fs, &to_u, Placement::Gpu)
        .map(|r| r.output)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        gi,
        fs.iter().map(|&f| f as i32).collect::<Vec<_>>(),
        "f32 -> i32 of {fs:?}"
    );
    assert_eq!(
        gu,
        fs.iter().map(|&f| f as u32).collect::<Vec<_>>(),
        "f32 -> u32 of {fs:?}"
    );
    check_exact(
        "f32 -> i32",
        &gi,
        &rt.map(&fs, &to_i, Placement::Cpu)
            .map(|r| r.output)
            .unwrap_or_default(),
    );

    // abs and negation wrap; i32 <-> u32 keep bits; bool gives 0 or 1.
    let is = [i32::MIN, -1, 0, 1, i32::MAX];
    let k = Kernel::map(|x: Expr<i32>| {
        x.abs().cast::<u32>()
            ^ (-x.clone()).cast::<u32>()
            ^ x.lt(0).cast::<u32>()
            ^ (x.cast::<u32>() >> 1u32)
    });
    let g = rt
        .map(&is, &k, Placement::Gpu)
        .map(|r| r.output)
        .unwrap_or_else(|e| panic!("{e}"));
    check_exact(
        "abs neg bits",
        &g,
        &rt.map(&is, &k, Placement::Cpu)
            .map(|r| r.output)
            .unwrap_or_default(),
    );
}

#[test]
fn two_dimensional_dispatch_covers_every_element() {
    let Some(rt) = gpu() else { return };
    // One workgroup more than a 1D dispatch can hold.
    let n = 65_535 * 256 + 1;
    let xs: Vec<u32> = (0..n as u32)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .collect();
    let k = Kernel::map(|x: Expr<u32>| (x * 3u32) ^ index());
    let g = rt
        .map(&xs, &k, Placement::Gpu)
        .unwrap_or_else(|e| panic!("{e}"));
    let c = rt
        .map(&xs, &k, Placement::Cpu)
        .unwrap_or_else(|e| panic!("{e}"));
    check_exact("2d dispatch", &g.output, &c.output);
    // On adapters whose storage binding holds 64 MiB (lavapipe: one chunk here) the
    // grid is 2D; `grid` in src/device/gpu.rs is unit-tested for the shape.
}

#[test]
fn split_run_equals_cpu_run() {
    let Some(rt) = gpu() else { return };
    let k = integer_kernel();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let n = 100_003;
    let a: Vec<i32> = (0..n).map(|_| rng.random()).collect();
    let b: Vec<i32> = (0..n).map(|_| rng.random_range(-40..40)).collect();
    let s = rt
        .map2(&a, &b, &k, Placement::Split(0.3))
        .unwrap_or_else(|e| panic!("{e}"));
    let c = rt
        .map2(&a, &b, &k, Placement::Cpu)
        .unwrap_or_else(|e| panic!("{e}"));
    check_exact("split(0.3)", &s.output, &c.output);
    assert!(
        s.report
            .shares()
            .iter()
            .any(|sh| sh.kind().is_gpu() && sh.elements() == 30_001),
        "{}",
        s.report
    );
}

#[test]
fn report_counts_bytes_moved() {
    let Some(rt) = gpu() else { return };
    let n = 10_000;
    let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let k = Kernel::map2(|a: Expr<f32>, b: Expr<f32>| a * b + 1.0);
    let run = rt
        .map2(&a, &a, &k, Placement::Gpu)
        .unwrap_or_else(|e| panic!("{e}"));
    let shares = run.report.shares();
    assert_eq!(shares.len(), 1, "{}", run.report);
    let s = &shares[0];
    assert!(s.kind().is_gpu());
    assert_eq!(s.bytes_to_device(), 4 * n as u64 * 2);
    assert_eq!(s.bytes_from_device(), 4 * n as u64);
    assert!(s.chunks() >= 1);
    assert_eq!(run.report.bytes_to_devices(), 4 * n as u64 * 2);

    let empty: Vec<f32> = Vec::new();
    let run = rt
        .map2(&empty, &empty, &k, Placement::Gpu)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(run.output.is_empty());
    assert_eq!(
        run.report.bytes_to_devices() + run.report.bytes_from_devices(),
        0
    );
}

#[test]
fn gpu_devices_describe_themselves() {
    let Some(rt) = gpu() else { return };
    for d in rt.devices().iter().filter(|d| d.kind.is_gpu()) {
        assert!(!d.name.is_empty());
        assert!(
            ["vulkan", "metal", "dx12", "gl", "webgpu"].contains(&d.backend.as_str()),
            "{d}"
        );
    }
}

/// The compute stage of a compute-heavy GPU share is seen by the host: on a driver
/// without device timestamps (lavapipe runs the dispatch inside the submit) the time
/// spent there counts as compute, so the stages account for most of the share's time
/// and the scheduler's pipeline model is not fed a near-zero compute time.
#[test]
fn compute_heavy_share_reports_its_compute_time() {
    let Some(rt) = gpu() else { return };
    let k =
        Kernel::map(|x: Expr<f32>| fold(64, x, |acc, _| (acc.clone() * acc * 0.5 + 0.25).min(4.0)));
    let xs: Vec<f32> = (0..12 << 20).map(|i| (i % 97) as f32 * 0.01).collect();
    // the first call compiles the pipeline
    let _ = rt
        .map(&xs, &k, Placement::Gpu)
        .unwrap_or_else(|e| panic!("{e}"));
    let run = rt
        .map(&xs, &k, Placement::Gpu)
        .unwrap_or_else(|e| panic!("{e}"));
    let s = &run.report.shares()[0];
    let staged = s.upload_s() + s.compute_s() + s.download_s();
    assert!(
        s.compute_s() > 0.2 * s.busy_s() && staged > 0.5 * s.busy_s(),
        "compute {:.3} ms, stages {:.3} ms of {:.3} ms busy\n{}",
        s.compute_s() * 1e3,
        staged * 1e3,
        s.busy_s() * 1e3,
        run.report
    );
}
