//! Kernel parameters (`hybrid::Param`): a value changed between calls is the value the
//! next call uses, on every device and every placement, and changing it never compiles
//! a pipeline.
//!
//! Each case is a kernel of one element type with one or several parameters and a
//! reference written in plain Rust that reads the parameters' current values. Integer
//! kernels must match bit for bit; float kernels within a few ulps of the reference's
//! magnitude (a GPU may fuse `a * x + y`). GPU placements skip with a printed reason
//! when there is no adapter, and fail instead with `HYBRID_REQUIRE_GPU=1`.

mod common;

use hybrid::{Element, Expr, Kernel, Param, Placement, Runtime};

/// The lengths every case runs at: empty, one, a workgroup plus one, and many chunks'
/// worth of odd size.
const LENGTHS: [usize; 4] = [0, 1, 257, 100_003];

/// How many values each parameter takes in turn, one call each.
const STEPS: u64 = 20;

/// Float results may differ from the reference by this many units of `f32::EPSILON`
/// relative to the magnitude of the terms summed.
const FLOAT_ULPS: f64 = 4.0;

/// A deterministic pseudo-random 64-bit value for `(seed, i)` (splitmix64).
fn mix(seed: u64, i: u64) -> u64 {
    let mut z = seed
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(i.wrapping_mul(0xbf58_476d_1ce4_e5b9));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A float between -100 and 100 with a fractional part, or 0 / -0 now and then.
fn float(seed: u64, i: u64) -> f32 {
    match mix(seed, i) % 16 {
        0 => 0.0,
        1 => -0.0,
        r => ((mix(seed ^ 0x55, i) % 20_001) as f32 - 10_000.0) * 0.01 + r as f32 * 0.125,
    }
}

/// One kernel under test with its reference.
struct Case<T> {
    name: &'static str,
    kernel: Kernel<T, T>,
    /// Gives every parameter its value for step `s`.
    set: Box<dyn Fn(u64)>,
    /// `None` when `got` is right for inputs `x`, `y` at global index `i` with the
    /// parameters' current values, else what was expected.
    check: Box<dyn Fn(usize, T, T, T) -> Option<String>>,
}

/// `Some(message)` unless `got` is within [`FLOAT_ULPS`] of `want`, relative to
/// `scale` (the sum of the magnitudes of the terms).
fn close(got: f32, want: f64, scale: f64) -> Option<String> {
    let tol = FLOAT_ULPS * f32::EPSILON as f64 * scale.max(f32::MIN_POSITIVE as f64);
    if (got as f64 - want).abs() <= tol {
        None
    } else {
        Some(format!("{want} (±{tol:e})"))
    }
}

fn exact<T: PartialEq + std::fmt::Debug>(got: T, want: T) -> Option<String> {
    (got != want).then(|| format!("{want:?}"))
}

fn f32_cases() -> Vec<Case<f32>> {
    let a = Param::new(2.0f32);
    let saxpy = Kernel::map2(|x: Expr<f32>, y: Expr<f32>| a.expr() * x + y);
    let (a1, a2) = (a.clone(), a);
    let one = Case {
        name: "f32 saxpy",
        kernel: saxpy,
        set: Box::new(move |s| a1.set(float(1, s))),
        check: Box::new(move |_, x, y, got| {
            let (a, x, y) = (a2.get() as f64, x as f64, y as f64);
            close(got, a * x + y, (a * x).abs() + y.abs())
        }),
    };

    let (a, b, c) = (Param::new(1.5f32), Param::new(-3.0f32), Param::new(0.25f32));
    let k = Kernel::map2(|x: Expr<f32>, y: Expr<f32>| {
        // a used twice: one register; b and c only through arithmetic.
        (a.expr() * x + b.expr()) * c.expr() + y * Expr::from(&a)
    });
    let set = {
        let (a, b, c) = (a.clone(), b.clone(), c.clone());
        move |s| {
            a.set(float(2, s));
            b.set(float(3, s));
            c.set(float(4, s));
        }
    };
    let several = Case {
        name: "f32 (a x + b) c + y a",
        kernel: k,
        set: Box::new(set),
        check: Box::new(move |_, x, y, got| {
            let (a, b, c) = (a.get() as f64, b.get() as f64, c.get() as f64);
            let (x, y) = (x as f64, y as f64);
            let want = (a * x + b) * c + y * a;
            let scale = ((a * x).abs() + b.abs()) * c.abs() + (y * a).abs();
            close(got, want, scale)
        }),
    };
    vec![one, several]
}

fn i32_cases() -> Vec<Case<i32>> {
    let a = Param::new(3i32);
    let k = Kernel::map2(|x: Expr<i32>, y: Expr<i32>| x * a.expr() + y);
    let (a1, a2) = (a.clone(), a);
    let one = Case {
        name: "i32 x a + y",
        kernel: k,
        set: Box::new(move |s| a1.set(mix(5, s) as i32)),
        check: Box::new(move |_, x, y, got| exact(got, x.wrapping_mul(a2.get()).wrapping_add(y))),
    };

    let (a, b, sh) = (Param::new(7i32), Param::new(-1i32), Param::new(3u32));
    let k = Kernel::map2(|x: Expr<i32>, y: Expr<i32>| {
        // a u32 parameter in an i32 kernel, as a shift amount (masked to 0..=31), and
        // an integer division by a parameter that is sometimes 0 (x / 0 == x).
        ((&x * a.expr() + b.expr()) ^ (y >> sh.expr())) + x / b.expr()
    });
    let set = {
        let (a, b, sh) = (a.clone(), b.clone(), sh.clone());
        move |s| {
            a.set(mix(6, s) as i32);
            b.set(if s % 5 == 0 {
                0
            } else {
                (mix(7, s) % 201) as i32 - 100
            });
            sh.set(mix(8, s) as u32 % 40);
        }
    };
    let several = Case {
        name: "i32 ((x a + b) ^ (y >> sh)) + x / b",
        kernel: k,
        set: Box::new(set),
        check: Box::new(move |_, x, y, got| {
            let (a, b, sh) = (a.get(), b.get(), sh.get());
            // WGSL: x / 0 == x, and i32::MIN / -1 == i32::MIN
            let div = if b == 0 || (x == i32::MIN && b == -1) {
                x
            } else {
                x / b
            };
            let want = (x.wrapping_mul(a).wrapping_add(b) ^ (y >> (sh & 31))).wrapping_add(div);
            exact(got, want)
        }),
    };
    vec![one, several]
}

fn u32_cases() -> Vec<Case<u32>> {
    let a = Param::new(0x9e37_79b9u32);
    let k = Kernel::map2(|x: Expr<u32>, y: Expr<u32>| (x ^ a.expr()) + y);
    let (a1, a2) = (a.clone(), a);
    let one = Case {
        name: "u32 (x ^ a) + y",
        kernel: k,
        set: Box::new(move |s| a1.set(mix(9, s) as u32)),
        check: Box::new(move |_, x, y, got| exact(got, (x ^ a2.get()).wrapping_add(y))),
    };

    let (a, m, lo) = (Param::new(5u32), Param::new(1000u32), Param::new(17u32));
    let k = Kernel::map2(|x: Expr<u32>, y: Expr<u32>| {
        // the global index too, so a split's parts must agree on where they are
        (x * a.expr() + hybrid::index()) % m.expr() + y.max(lo.expr()) + lo.expr()
    });
    let set = {
        let (a, m, lo) = (a.clone(), m.clone(), lo.clone());
        move |s| {
            a.set(mix(10, s) as u32);
            m.set(if s % 7 == 3 {
                0
            } else {
                mix(11, s) as u32 % 100_000
            });
            lo.set(mix(12, s) as u32);
        }
    };
    let several = Case {
        name: "u32 (x a + i) % m + max(y, lo) + lo",
        kernel: k,
        set: Box::new(set),
        check: Box::new(move |i, x, y, got| {
            let (a, m, lo) = (a.get(), m.get(), lo.get());
            let t = x.wrapping_mul(a).wrapping_add(i as u32);
            let r = if m == 0 { 0 } else { t % m };
            exact(got, r.wrapping_add(y.max(lo)).wrapping_add(lo))
        }),
    };
    vec![one, several]
}

/// Inputs for the longest length; shorter runs use prefixes.
trait Input: Element + std::fmt::Debug {
    fn input(seed: u64, i: u64) -> Self;
}
impl Input for f32 {
    fn input(seed: u64, i: u64) -> f32 {
        float(seed, i)
    }
}
impl Input for i32 {
    fn input(seed: u64, i: u64) -> i32 {
        mix(seed, i) as i32
    }
}
impl Input for u32 {
    fn input(seed: u64, i: u64) -> u32 {
        mix(seed, i) as u32
    }
}

/// The placements to run: the GPU ones only on a runtime with a GPU.
fn placements(rt: &Runtime) -> Vec<Placement> {
    if rt.has_gpu() {
        vec![
            Placement::Gpu,
            Placement::Cpu,
            Placement::Split(0.3),
            Placement::Auto,
        ]
    } else {
        vec![Placement::Cpu, Placement::Auto]
    }
}

/// Runs `case` at every placement and length, [`STEPS`] values of its parameters in
/// turn, checking every element; on a runtime with a GPU, checks that its first GPU
/// call compiles exactly one pipeline and nothing compiles afterwards.
fn run_case<T: Input>(rt: &Runtime, case: &Case<T>) {
    let n = *LENGTHS.iter().max().unwrap_or(&0);
    let xs: Vec<T> = (0..n as u64).map(|i| T::input(100, i)).collect();
    let ys: Vec<T> = (0..n as u64).map(|i| T::input(200, i)).collect();
    let name = case.name;
    let verify = |out: &[T], len: usize, what: &str| {
        assert_eq!(out.len(), len, "{name}, {what}: output length");
        for (i, &got) in out.iter().enumerate() {
            if let Some(want) = (case.check)(i, xs[i], ys[i], got) {
                panic!(
                    "{name}, {what}: element {i} of {len} (x = {:?}, y = {:?}) is {got:?}, \
                     expected {want}",
                    xs[i], ys[i]
                );
            }
        }
    };
    let before = rt.compilations();
    if rt.has_gpu() {
        (case.set)(0);
        let run = rt.map2(&xs[..257], &ys[..257], &case.kernel, Placement::Gpu);
        let run = run.unwrap_or_else(|e| panic!("{name}: first gpu call: {e}"));
        verify(&run.output, 257, "first gpu call");
        let gpus = rt.devices().iter().filter(|d| d.kind.is_gpu()).count() as u64;
        let grew = rt.compilations() - before;
        assert!(
            grew >= 1 && grew <= gpus,
            "{name}: the first gpu call compiled {grew} pipelines on {gpus} gpu(s)"
        );
        if gpus == 1 {
            assert_eq!(grew, 1, "{name}: one pipeline for a new kernel");
        }
    } else {
        assert_eq!(before, 0, "no gpu, no compilation");
    }
    let compiled = rt.compilations();
    for placement in placements(rt) {
        for len in LENGTHS {
            for step in 0..STEPS {
                (case.set)(step);
                let what = format!("{placement}, {len} elements, step {step}");
                let run = rt.map2(&xs[..len], &ys[..len], &case.kernel, placement);
                let run = run.unwrap_or_else(|e| panic!("{name}, {what}: {e}"));
                verify(&run.output, len, &what);
            }
        }
    }
    assert_eq!(
        rt.compilations(),
        compiled,
        "{name}: changing parameters compiled a pipeline"
    );
}

fn runtimes() -> Vec<(&'static str, Runtime)> {
    let mut rts = vec![("cpu", common::cpu_runtime())];
    if let Some(rt) = common::gpu_runtime() {
        rts.push(("cpu+gpu", rt));
    }
    rts
}

/// Runs every case on the CPU-only runtime and, when there is one, the GPU runtime.
fn on_every_runtime<T: Input>(cases: fn() -> Vec<Case<T>>) {
    for (which, rt) in runtimes() {
        eprintln!("runtime: {which}");
        for case in cases() {
            run_case(&rt, &case);
        }
    }
}

#[test]
fn f32_params_every_placement() {
    on_every_runtime(f32_cases);
}

#[test]
fn i32_params_every_placement() {
    on_every_runtime(i32_cases);
}

#[test]
fn u32_params_every_placement() {
    on_every_runtime(u32_cases);
}

/// Simulated devices compute with the CPU evaluator: they must use the call's values.
#[test]
fn simulated_devices_use_the_values() {
    let rt = common::sim_runtime(2.0e9, 20.0e9, 20e-6, 12.0e9);
    for case in f32_cases() {
        let n = 100_003;
        let xs: Vec<f32> = (0..n).map(|i| float(100, i)).collect();
        let ys: Vec<f32> = (0..n).map(|i| float(200, i)).collect();
        for placement in [Placement::Split(0.3), Placement::Auto, Placement::Gpu] {
            for step in 0..STEPS {
                (case.set)(step);
                let run = rt.map2(&xs, &ys, &case.kernel, placement);
                let run = run.unwrap_or_else(|e| panic!("{}: {e}", case.name));
                for (i, &got) in run.output.iter().enumerate() {
                    if let Some(want) = (case.check)(i, xs[i], ys[i], got) {
                        panic!(
                            "{}, {placement}, step {step}: element {i}: {got} vs {want}",
                            case.name
                        );
                    }
                }
            }
        }
    }
    assert_eq!(rt.compilations(), 0, "simulated devices compile nothing");
}

/// A parameter captured by two kernels is one value: setting it changes both.
#[test]
fn a_param_shared_by_two_kernels() {
    let a = Param::new(2i32);
    let add = Kernel::map(|x: Expr<i32>| x + a.expr());
    let mul = Kernel::map(|x: Expr<i32>| x * &a.expr());
    let xs: Vec<i32> = (0..1000).map(|i| i - 500).collect();
    for (which, rt) in runtimes() {
        let mut placements = vec![Placement::Cpu];
        if rt.has_gpu() {
            placements.extend([Placement::Gpu, Placement::Split(0.5)]);
        }
        for p in placements {
            for v in [2, -7, 0, i32::MAX, 41] {
                a.set(v);
                let s = rt.map(&xs, &add, p).unwrap_or_else(|e| panic!("{e}"));
                let m = rt.map(&xs, &mul, p).unwrap_or_else(|e| panic!("{e}"));
                for (i, &x) in xs.iter().enumerate() {
                    assert_eq!(s.output[i], x.wrapping_add(v), "{which}, {p}, add {v}");
                    assert_eq!(m.output[i], x.wrapping_mul(v), "{which}, {p}, mul {v}");
                }
            }
        }
    }
    // The global entry points read the same cell.
    a.set(10);
    let ys = hybrid::map(&xs, &add).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ys[0], -490);
    // A clone is the same parameter.
    let b = a.clone();
    b.set(-1);
    assert_eq!(a.get(), -1);
    let ys = hybrid::map(&xs, &mul).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ys[1], 499);
}

/// Kernels that differ only in which parameter cells they read share one pipeline.
#[test]
fn kernels_differing_only_in_values_share_a_pipeline() {
    let Some(rt) = common::gpu_runtime() else {
        return;
    };
    let xs: Vec<f32> = (0..300).map(|i| i as f32).collect();
    let before = rt.compilations();
    for v in [1.0f32, 2.0, 3.0] {
        let p = Param::new(v);
        let k = Kernel::map(|x: Expr<f32>| x * p.expr() - 0.5);
        let run = rt
            .map(&xs, &k, Placement::Gpu)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(run.output[10], 10.0 * v - 0.5);
    }
    let gpus = rt.devices().iter().filter(|d| d.kind.is_gpu()).count() as u64;
    assert!(rt.compilations() - before <= gpus, "one pipeline per gpu");
}
