//! Reliability: bad input, concurrency, persistence that survives a crash, and bounded
//! resources. Each test names the row of RELIABILITY.md it shows.
//!
//! Bad input is a typed error or a defined result, never a panic and never a partial
//! output; `hybrid::map` is correct from many threads at once; the link calibration is
//! measured once per device even when many threads ask at once; a calibration file cut
//! short by a crash is measured again, and a crashed writer's temp file never replaces
//! a good one; 10,000 calls leave the GPU's pool and pipeline cache bounded.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{assert_lowercase, cpu_runtime, gpu_runtime, gpu_runtime_with};
use hybrid::{select, Error, Expr, Kernel, Placement, Runtime, SimDevice, TransferConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A fresh, empty directory under the system temp dir.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hybrid-rel-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Every placement a runtime can be asked for: a split giving the GPU nothing needs
/// no GPU.
fn placements(gpu: bool) -> Vec<Placement> {
    let mut p = vec![Placement::Cpu, Placement::Auto, Placement::Split(0.0)];
    if gpu {
        p.extend([Placement::Gpu, Placement::Split(0.5), Placement::Split(1.0)]);
    }
    p
}

/// The runtimes under test: CPU-only, a simulated CPU+GPU pair, and the real GPU
/// runtime when there is one. The flag says whether GPU placements apply.
fn runtimes() -> Vec<(&'static str, Runtime, bool)> {
    let mut rts = vec![("cpu", cpu_runtime(), false)];
    rts.push(("sim", common::sim_runtime(1e9, 10e9, 20e-6, 12e9), true));
    if let Some(rt) = gpu_runtime() {
        rts.push(("gpu", rt, true));
    }
    rts
}

// --- bad input ---------------------------------------------------------------------

/// RELIABILITY.md "map2 with inputs of different lengths".
#[test]
fn map2_length_mismatch_is_a_typed_error_on_every_placement() {
    let k = Kernel::map2(|a: Expr<f32>, b: Expr<f32>| a + b);
    let a = vec![1.0f32; 1000];
    let b = vec![2.0f32; 999];
    for (name, rt, gpu) in runtimes() {
        for p in placements(gpu) {
            let pairs = [
                (&a[..], &b[..]),
                (&b[..], &a[..]),
                (&a[..], &[][..]),
                (&[][..], &a[..]),
            ];
            for (x, y) in pairs {
                match rt.map2(x, y, &k, p) {
                    Err(e @ Error::LengthMismatch { left, right }) => {
                        assert_eq!((left, right), (x.len(), y.len()), "{name} {p}");
                        assert_lowercase(&e);
                    }
                    Err(e) => panic!("{name} {p}: expected LengthMismatch, got {e}"),
                    Ok(run) => panic!(
                        "{name} {p}: mismatched lengths accepted, {} outputs",
                        run.output.len()
                    ),
                }
            }
        }
    }
    match hybrid::map2(&a, &b, &k) {
        Err(Error::LengthMismatch {
            left: 1000,
            right: 999,
        }) => {}
        other => panic!("global map2: expected LengthMismatch, got {other:?}"),
    }
}

/// RELIABILITY.md "a kernel called with the wrong number of inputs", "split fraction
/// outside 0..=1".
#[test]
fn wrong_arity_and_bad_split_are_typed_errors() {
    let k1 = Kernel::map(|x: Expr<u32>| x + 1u32);
    let k2 = Kernel::map2(|a: Expr<u32>, b: Expr<u32>| a ^ b);
    let xs = vec![7u32; 100];
    for (name, rt, gpu) in runtimes() {
        for p in placements(gpu) {
            let e = rt.map(&xs, &k2, p).err();
            assert_eq!(
                e,
                Some(Error::WrongArity {
                    expected: 2,
                    given: 1
                }),
                "{name} {p}"
            );
            let e = rt.map2(&xs, &xs, &k1, p).err();
            assert_eq!(
                e,
                Some(Error::WrongArity {
                    expected: 1,
                    given: 2
                }),
                "{name} {p}"
            );
            // with no data too: the kernel is wrong whatever the data
            let e = rt.map(&[], &k2, p).err();
            assert!(
                matches!(e, Some(Error::WrongArity { .. })),
                "{name} {p}: {e:?}"
            );
            assert_lowercase(&e.expect("an error"));
        }
        // a bad fraction is an error on any runtime, a GPU or not
        for f in [-0.1, 1.5, f64::NAN, f64::INFINITY, 1.0 + 1e-9] {
            match rt.map(&xs, &k1, Placement::Split(f)) {
                Err(e @ Error::BadSplit { fraction }) => {
                    assert!(fraction.is_nan() == f.is_nan(), "{name}: {fraction}");
                    assert_lowercase(&e);
                }
                other => panic!("{name} Split({f}): expected BadSplit, got {other:?}"),
            }
        }
    }
    assert_eq!(
        hybrid::map(&xs, &k2),
        Err(Error::WrongArity {
            expected: 2,
            given: 1
        }),
        "global map"
    );
}

/// RELIABILITY.md "empty inputs".
#[test]
fn empty_inputs_give_empty_output_on_every_placement() {
    let k1 = Kernel::map(|x: Expr<f32>| (x * 2.0 + 1.0).sqrt());
    let k2 = Kernel::map2(|a: Expr<i32>, b: Expr<i32>| (a - b).cast::<u32>() + hybrid::index());
    let kc = Kernel::map(|x: Expr<u32>| x.cast::<f32>() * 0.5);
    for (name, rt, gpu) in runtimes() {
        for p in placements(gpu) {
            let run = rt
                .map(&[], &k1, p)
                .unwrap_or_else(|e| panic!("{name} {p}: {e}"));
            assert!(run.output.is_empty(), "{name} {p}");
            assert_eq!(run.report.elements(), 0, "{name} {p}");
            let moved: u64 = run
                .report
                .shares()
                .iter()
                .map(|s| s.elements() as u64 + s.bytes_to_device() + s.bytes_from_device())
                .sum();
            assert_eq!(
                moved, 0,
                "{name} {p}: nothing to compute or move\n{}",
                run.report
            );
            assert_eq!(run.report.placement(), p, "{name}");
            let _ = run.report.to_string();
            let run = rt
                .map2(&[], &[], &k2, p)
                .unwrap_or_else(|e| panic!("{name} {p}: {e}"));
            assert!(run.output.is_empty(), "{name} {p}");
            assert_eq!(run.report.elements(), 0, "{name} {p}");
            let moved = run.report.bytes_to_devices() + run.report.bytes_from_devices();
            assert_eq!(moved, 0, "{name} {p}: two empty inputs move nothing");
            let run = rt
                .map(&[], &kc, p)
                .unwrap_or_else(|e| panic!("{name} {p}: {e}"));
            assert!(run.output.is_empty(), "{name} {p}");
        }
    }
    assert_eq!(hybrid::map(&[], &k1), Ok(vec![]));
    assert_eq!(hybrid::map2(&[], &[], &k2), Ok(vec![]));
}

/// The same value, NaN equal to NaN (WGSL does not pin the sign of a zero, nor a NaN's
/// payload), and a finite result within `rel` of a finite reference.
fn ieee_same(got: f32, want: f32, rel: f32) -> bool {
    if want.is_nan() || got.is_nan() {
        return want.is_nan() && got.is_nan();
    }
    if want.is_infinite() || got.is_infinite() {
        return got == want;
    }
    got == want || (got - want).abs() <= rel * want.abs().max(f32::MIN_POSITIVE)
}

/// Inputs that make NaN and infinities, or carry them in.
const SPECIAL: [f32; 12] = [
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    0.0,
    -0.0,
    1.0,
    -1.0,
    3.0,
    f32::MAX,
    -f32::MAX,
    f32::MIN_POSITIVE,
    1e30,
];

/// RELIABILITY.md "kernels that produce NaN or infinities". The CPU (and a simulated
/// device, which computes on it) gives the IEEE result, element for element, on every
/// placement. A GPU: WGSL lets an implementation assume NaN and infinities never occur
/// (lavapipe folds `x - x` to 0 for a NaN `x`, and `x * 1e30 * 1e30` to `x * inf`,
/// NaN for `x = 0`), so there the elements whose input, intermediates and IEEE result
/// are finite are checked and the others are listed on stderr; every call returns a
/// whole output.
#[test]
fn nan_and_inf_kernels_give_ieee_results() {
    // (what, kernel, IEEE reference, relative tolerance of a finite result)
    type Case = (&'static str, Kernel<f32, f32>, fn(f32) -> f32, f32);
    let cases: Vec<Case> = vec![
        (
            "x / 0",
            Kernel::map(|x: Expr<f32>| x / 0.0),
            |x| x / 0.0,
            0.0,
        ),
        (
            "x - x",
            Kernel::map(|x: Expr<f32>| x.clone() - x),
            |x| x - x,
            0.0,
        ),
        (
            "x * 1e30 * 1e30",
            Kernel::map(|x: Expr<f32>| x * 1e30 * 1e30),
            |x| x * 1e30 * 1e30,
            0.0,
        ),
        (
            "x + 1",
            Kernel::map(|x: Expr<f32>| x + 1.0),
            |x| x + 1.0,
            0.0,
        ),
        (
            "x * 0",
            Kernel::map(|x: Expr<f32>| x * 0.0),
            |x| x * 0.0,
            0.0,
        ),
        ("-x", Kernel::map(|x: Expr<f32>| -x), |x| -x, 0.0),
        ("abs", Kernel::map(|x: Expr<f32>| x.abs()), f32::abs, 0.0),
        (
            "sqrt",
            Kernel::map(|x: Expr<f32>| x.sqrt()),
            f32::sqrt,
            1e-6,
        ),
        ("ln", Kernel::map(|x: Expr<f32>| x.ln()), f32::ln, 1e-5),
        ("exp", Kernel::map(|x: Expr<f32>| x.exp()), f32::exp, 1e-5),
        (
            "select(x < 1, x, 2)",
            Kernel::map(|x: Expr<f32>| select(x.lt(1.0), x.clone(), Expr::constant(2.0))),
            |x| if x < 1.0 { x } else { 2.0 },
            0.0,
        ),
        (
            "select(x == x, 1, 0)",
            Kernel::map(|x: Expr<f32>| {
                select(x.eq(x.clone()), Expr::constant(1.0), Expr::constant(0.0))
            }),
            |x| if x == x { 1.0 } else { 0.0 },
            0.0,
        ),
    ];
    // every input at several positions, so a split puts each on each device
    let xs: Vec<f32> = (0..4).flat_map(|_| SPECIAL).collect();
    let mut checked = [0usize; 2];
    let mut unspecified = std::collections::BTreeSet::new();
    for (name, rt, gpu) in runtimes() {
        for p in placements(gpu) {
            for (what, k, f, rel) in &cases {
                let run = rt
                    .map(&xs, k, p)
                    .unwrap_or_else(|e| panic!("{name} {p} {what}: {e}"));
                assert_eq!(run.output.len(), xs.len(), "{name} {p} {what}");
                for s in run.report.shares() {
                    let strict = !s.kind().is_gpu() || name == "sim";
                    for i in s.range() {
                        let (x, got, want) = (xs[i], run.output[i], f(xs[i]));
                        let overflows = *what == "x * 1e30 * 1e30";
                        if !strict && (!want.is_finite() || !x.is_finite() || overflows) {
                            if !ieee_same(got, want, *rel) {
                                unspecified
                                    .insert(format!("{what}: x = {x:?}: {got:?}, IEEE {want:?}"));
                            }
                            continue;
                        }
                        checked[s.kind().is_gpu() as usize] += 1;
                        assert!(
                            ieee_same(got, want, *rel),
                            "{name} {p} {what} on {}: x = {x:?}: got {got:?}, IEEE {want:?}",
                            s.device()
                        );
                    }
                }
            }
        }
    }
    eprintln!("elements checked: cpu {}, gpu {}", checked[0], checked[1]);
    eprintln!("gpu results where WGSL leaves NaN/inf unspecified: {unspecified:#?}");
    assert!(checked[0] >= xs.len() * cases.len() * 2);
}

// --- concurrency -------------------------------------------------------------------

/// Kernels of several arities and types, each with an exact plain-Rust reference on
/// inputs drawn so that every device rounds the same (small integers as floats).
struct Kernels {
    hash: Kernel<u32, u32>,
    mix: Kernel<i32, i32>,
    affine: Kernel<f32, f32>,
    prod: Kernel<f32, f32>,
    floor: Kernel<f32, i32>,
    quarter: Kernel<u32, f32>,
}

const GOLD: u32 = 2_654_435_761;

impl Kernels {
    fn new() -> Kernels {
        Kernels {
            hash: Kernel::map(|x: Expr<u32>| ((x.clone() * GOLD) ^ (x >> 7u32)) + hybrid::index()),
            mix: Kernel::map2(|a: Expr<i32>, b: Expr<i32>| {
                select(a.lt(b.clone()), a.clone() - b, (a & 0xff) * 3)
            }),
            affine: Kernel::map(|x: Expr<f32>| x * 2.0 + 1.0),
            prod: Kernel::map2(|a: Expr<f32>, b: Expr<f32>| a.clone() * b - a),
            floor: Kernel::map(|x: Expr<f32>| (x * 0.5).floor().cast::<i32>()),
            quarter: Kernel::map(|x: Expr<u32>| (x % 1000u32).cast::<f32>() * 0.25),
        }
    }
}

/// Which entry point a call goes through.
#[derive(Clone, Copy)]
enum Via<'a> {
    Global,
    Explicit(&'a Runtime, Placement),
}

impl Via<'_> {
    fn map<I: hybrid::Element, O: hybrid::Element>(
        self,
        xs: &[I],
        k: &Kernel<I, O>,
    ) -> hybrid::Result<Vec<O>> {
        match self {
            Via::Global => hybrid::map(xs, k),
            Via::Explicit(rt, p) => rt.map(xs, k, p).map(|r| r.output),
        }
    }
    fn map2<I: hybrid::Element, O: hybrid::Element>(
        self,
        a: &[I],
        b: &[I],
        k: &Kernel<I, O>,
    ) -> hybrid::Result<Vec<O>> {
        match self {
            Via::Global => hybrid::map2(a, b, k),
            Via::Explicit(rt, p) => rt.map2(a, b, k, p).map(|r| r.output),
        }
    }
}

/// Element-by-element equality, naming the first difference.
fn same<T: PartialEq + std::fmt::Debug>(what: &str, got: &[T], want: &[T]) {
    assert_eq!(got.len(), want.len(), "{what}: output length");
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        panic!(
            "{what}: element {i} of {}: got {:?}, want {:?}",
            got.len(),
            got[i],
            want[i]
        );
    }
}

/// One random call of a random kernel on `n` elements, checked against its reference.
/// Returns the elements checked.
fn one_call(ks: &Kernels, via: Via<'_>, rng: &mut ChaCha8Rng, n: usize, tag: &str) -> usize {
    let which = rng.random_range(0..7);
    let what = format!("{tag} kernel {which} n = {n}");
    let ints = |rng: &mut ChaCha8Rng, lo: i32, hi: i32| -> Vec<f32> {
        (0..n).map(|_| rng.random_range(lo..=hi) as f32).collect()
    };
    match which {
        0 => {
            let xs: Vec<u32> = (0..n).map(|_| rng.random()).collect();
            let want: Vec<u32> = xs
                .iter()
                .enumerate()
                .map(|(i, &x)| (x.wrapping_mul(GOLD) ^ (x >> 7)).wrapping_add(i as u32))
                .collect();
            same(&what, &via.map(&xs, &ks.hash).expect(&what), &want);
        }
        1 => {
            let a: Vec<i32> = (0..n).map(|_| rng.random()).collect();
            let b: Vec<i32> = (0..n).map(|_| rng.random()).collect();
            let want: Vec<i32> = a
                .iter()
                .zip(&b)
                .map(|(&a, &b)| {
                    if a < b {
                        a.wrapping_sub(b)
                    } else {
                        (a & 0xff).wrapping_mul(3)
                    }
                })
                .collect();
            same(&what, &via.map2(&a, &b, &ks.mix).expect(&what), &want);
        }
        2 => {
            let xs = ints(rng, -(1 << 20), 1 << 20);
            let want: Vec<f32> = xs.iter().map(|x| x * 2.0 + 1.0).collect();
            same(&what, &via.map(&xs, &ks.affine).expect(&what), &want);
        }
        3 => {
            let a = ints(rng, -1000, 1000);
            let b = ints(rng, -1000, 1000);
            let want: Vec<f32> = a.iter().zip(&b).map(|(a, b)| a * b - a).collect();
            same(&what, &via.map2(&a, &b, &ks.prod).expect(&what), &want);
        }
        4 => {
            let xs = ints(rng, -(1 << 20), 1 << 20);
            let want: Vec<i32> = xs.iter().map(|x| (x * 0.5).floor() as i32).collect();
            same(&what, &via.map(&xs, &ks.floor).expect(&what), &want);
        }
        5 => {
            let xs: Vec<u32> = (0..n).map(|_| rng.random()).collect();
            let want: Vec<f32> = xs.iter().map(|x| (x % 1000) as f32 * 0.25).collect();
            same(&what, &via.map(&xs, &ks.quarter).expect(&what), &want);
        }
        _ => {
            // a kernel made for this call: kernel construction, its model and its
            // compiled pipeline are new to the runtime while other threads run
            let c: u32 = rng.random_range(1..64);
            let k = Kernel::map(move |x: Expr<u32>| x * c + hybrid::index());
            let xs: Vec<u32> = (0..n).map(|_| rng.random()).collect();
            let want: Vec<u32> = xs
                .iter()
                .enumerate()
                .map(|(i, x)| x.wrapping_mul(c).wrapping_add(i as u32))
                .collect();
            same(&what, &via.map(&xs, &k).expect(&what), &want);
        }
    }
    n
}

/// Mostly small sizes, one call in ten up to `max`; the edges (0, 1, a workgroup ± 1)
/// often.
fn size(rng: &mut ChaCha8Rng, max: usize) -> usize {
    match rng.random_range(0..20) {
        0 => 0,
        1 => 1,
        2 => 255,
        3 => 257,
        4 | 5 => rng.random_range(0..=max),
        _ => rng.random_range(0..4_000),
    }
}

/// Runs `threads` x `calls` random calls at once, all starting together.
fn hammer(threads: usize, calls: usize, max: usize, via: Via<'_>, seed: u64) -> usize {
    let ks = Kernels::new();
    let barrier = std::sync::Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (ks, barrier) = (&ks, &barrier);
                s.spawn(move || {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed + t as u64);
                    barrier.wait();
                    (0..calls)
                        .map(|c| {
                            let n = size(&mut rng, max);
                            let tag = format!("seed {seed} thread {t} call {c}");
                            one_call(ks, via, &mut rng, n, &tag)
                        })
                        .sum::<usize>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .sum()
    })
}

/// RELIABILITY.md "many threads call hybrid::map at once": 16 threads x 200 calls of
/// six shared kernels and one new per call, sizes 0 to 300,000, on the global runtime
/// (its shared devices, pools, caches and models); every element checked.
#[test]
fn global_map_from_16_threads_is_correct() {
    let t = std::time::Instant::now();
    let elements = hammer(16, 200, 300_000, Via::Global, 0x5eed_0001);
    eprintln!(
        "16 x 200 calls, {elements} elements checked in {:.1} s (global runtime: {:?})",
        t.elapsed().as_secs_f64(),
        Runtime::global().map(|r| r.devices().to_vec())
    );
    assert!(elements > 1_000_000);
}

/// The same on an explicit GPU runtime, with the GPU taking part in every call
/// (`Gpu`, `Split`, `Auto`), from 8 threads at once.
#[test]
fn gpu_placements_from_8_threads_are_correct() {
    let Some(rt) = gpu_runtime() else { return };
    let t = std::time::Instant::now();
    let mut elements = 0;
    for (i, p) in [Placement::Gpu, Placement::Split(0.5), Placement::Auto]
        .into_iter()
        .enumerate()
    {
        elements += hammer(
            8,
            12,
            50_000,
            Via::Explicit(&rt, p),
            0x5eed_0100 + i as u64 * 64,
        );
    }
    eprintln!(
        "8 x 36 gpu calls, {elements} elements checked in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert!(elements > 50_000);
}

// --- calibration: once, and crash-safe -----------------------------------------------

fn runtime_with_link_dir(dir: &Path) -> hybrid::Result<Runtime> {
    Runtime::builder()
        .transfer(TransferConfig {
            cache_dir: Some(dir.to_path_buf()),
            ..TransferConfig::default()
        })
        .build()
}

/// Files in `dir`, by name.
fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The same stored measurement: its time stamp and, up to the last bit JSON may lose
/// (serde_json parses floats to within an ULP), its numbers.
fn same_calibration(a: &hybrid::Calibration, b: &hybrid::Calibration) {
    assert_eq!(a.measured_unix_s, b.measured_unix_s, "another measurement");
    assert_eq!(a.up_samples.len(), b.up_samples.len());
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-12 * x.abs().max(y.abs());
    assert!(
        close(a.dispatch_s, b.dispatch_s),
        "{} vs {}",
        a.dispatch_s,
        b.dispatch_s
    );
    for (x, y) in a.up_samples.iter().zip(&b.up_samples) {
        assert!(x.0 == y.0 && close(x.1, y.1), "{x:?} vs {y:?}");
    }
}

/// RELIABILITY.md "calibration asked for by many threads at once", "calibration file
/// cut short by a crash", "a crashed writer's temp file".
#[test]
fn calibration_runs_once_and_survives_a_crash_mid_write() {
    let dir = temp_dir("calibration");
    let Some(rt) = gpu_runtime_with(|| runtime_with_link_dir(&dir)) else {
        return;
    };
    let rt = Arc::new(rt);
    let gpus = rt.devices().iter().filter(|d| d.kind.is_gpu()).count();

    // 16 threads ask for the calibration of a fresh runtime at once
    let barrier = Arc::new(std::sync::Barrier::new(16));
    let seen: Vec<Vec<(hybrid::DeviceInfo, hybrid::Calibration)>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..16)
            .map(|_| {
                let (rt, barrier) = (rt.clone(), barrier.clone());
                s.spawn(move || {
                    barrier.wait();
                    rt.calibrations()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    assert_eq!(seen[0].len(), gpus, "every gpu calibrated");
    for c in &seen[0] {
        assert!(!c.1.reloaded, "a fresh directory: measured, not reloaded");
    }
    // timing samples differ between two measurements: identical ones are one
    for (t, s) in seen.iter().enumerate() {
        assert_eq!(s, &seen[0], "thread {t} saw another measurement");
    }
    let stored = files(&dir);
    assert_eq!(
        stored.len(),
        gpus,
        "one file per gpu, no temp left: {stored:?}"
    );
    let path = seen[0][0].1.path.clone();
    assert!(path.starts_with(&dir), "{}", path.display());
    let good = std::fs::read(&path).expect("calibration file");
    drop(rt);

    // a writer killed after writing half its temp file, before the rename: the temp
    // file is left beside the good file, which is reloaded as it was
    let name = path.file_name().and_then(|n| n.to_str()).expect("name");
    let tmp = dir.join(format!(".{name}.4242.ThreadId(7).tmp"));
    std::fs::write(&tmp, &good[..good.len() / 2]).expect("temp");
    let rt = runtime_with_link_dir(&dir).expect("runtime");
    let c = rt.calibrations();
    assert!(c[0].1.reloaded, "the good file is reloaded");
    same_calibration(&c[0].1, &seen[0][0].1);
    assert_eq!(
        std::fs::read(&path).expect("file"),
        good,
        "the good file is intact"
    );
    drop(rt);
    std::fs::remove_file(&tmp).expect("remove temp");

    // a target cut short (a writer that wrote in place and was killed): measured
    // again with a warning, never an error, and stored whole
    std::fs::write(&path, &good[..good.len() / 3]).expect("truncate");
    let rt = runtime_with_link_dir(&dir).expect("runtime");
    let c = rt.calibrations();
    assert_eq!(
        c.len(),
        gpus,
        "a corrupt file is measured again, not a failure"
    );
    assert!(!c[0].1.reloaded, "the corrupt file is not used");
    let again = c[0].1.clone();
    drop(rt);
    let rt = runtime_with_link_dir(&dir).expect("runtime");
    let c = rt.calibrations();
    assert!(c[0].1.reloaded, "the re-measured file is stored whole");
    same_calibration(&c[0].1, &again);
    // and the calls work all along
    let xs: Vec<u32> = (0..1000).collect();
    let out = rt
        .map(&xs, &Kernel::map(|x: Expr<u32>| x + 1u32), Placement::Gpu)
        .expect("gpu call");
    same(
        "after recalibration",
        &out.output,
        &(1..1001).collect::<Vec<u32>>(),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// RELIABILITY.md "device-model file corrupt or cut short": a runtime whose stored
/// models are garbage builds, runs, and stores them whole again (simulated devices,
/// so this runs without a GPU).
#[test]
fn corrupt_model_files_are_ignored_and_rewritten() {
    let dir = temp_dir("models");
    let build = || {
        Runtime::builder()
            .no_default_devices()
            .device(SimDevice::cpu("sim-cpu", 1e9))
            .device(SimDevice::gpu("sim-gpu", 10e9).link(20e-6, 12e9, 12e9))
            .cache_dir(&dir)
            .build()
            .expect("a runtime builds whatever its cache holds")
    };
    let k = Kernel::map(|x: Expr<u32>| x * 3u32);
    let xs: Vec<u32> = (0..200_000).collect();
    let want: Vec<u32> = xs.iter().map(|x| x * 3).collect();
    same(
        "first",
        &build().map(&xs, &k, Placement::Auto).expect("auto").output,
        &want,
    );
    let stored = files(&dir);
    assert!(!stored.is_empty(), "models stored");
    for f in &stored {
        let p = dir.join(f);
        let bytes = std::fs::read(&p).expect("model file");
        assert!(
            serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(),
            "{f}"
        );
        // cut short, as by a crash of a writer that wrote in place
        std::fs::write(&p, &bytes[..bytes.len() / 2]).expect("truncate");
        // and a crashed atomic writer's half temp file beside it
        std::fs::write(dir.join(format!(".{f}.4242.ThreadId(9).tmp")), b"{\"vers").expect("tmp");
    }
    let rt = build();
    for _ in 0..3 {
        same(
            "after crash",
            &rt.map(&xs, &k, Placement::Auto).expect("auto").output,
            &want,
        );
    }
    drop(rt);
    for f in &stored {
        let bytes = std::fs::read(dir.join(f)).expect("model file");
        assert!(
            serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(),
            "{f} is whole again"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// --- resource bounds -------------------------------------------------------------------

/// RELIABILITY.md "repeated calls": 10,000 calls of varying sizes (0..3000) and
/// kernels (50 shared, one new every 25 calls: 400 in all, beyond the cache's 64) on
/// every placement. The pipeline cache stays at or under its capacity throughout, and
/// the transfer pool stops allocating once warm: the second half of the calls
/// allocates no more buffers than the first 1,000 did.
#[test]
fn ten_thousand_calls_keep_pools_and_caches_bounded() {
    let Some(rt) = gpu_runtime() else { return };
    let gpus: Vec<usize> = (0..rt.devices().len())
        .filter(|&i| rt.devices()[i].kind.is_gpu())
        .collect();
    let kernel = |c: u32| Kernel::map(move |x: Expr<u32>| (x ^ c) * 3u32 + hybrid::index());
    let shared: Vec<Kernel<u32, u32>> = (0..50).map(kernel).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_0200);
    let placements = [
        Placement::Gpu,
        Placement::Split(0.5),
        Placement::Auto,
        Placement::Cpu,
    ];
    let allocations = |rt: &Runtime| -> u64 {
        let r = rt.__resources();
        gpus.iter().map(|&g| r[g].pool_allocations).sum()
    };
    let t = std::time::Instant::now();
    let (mut at_1000, mut at_5000) = (0, 0);
    let mut fresh = 50u32;
    for call in 0..10_000 {
        let (c, k) = if call % 25 == 0 {
            fresh += 1;
            (fresh, kernel(fresh))
        } else {
            let i = rng.random_range(0..50);
            (i as u32, shared[i].clone())
        };
        let n = rng.random_range(0..3000);
        let xs: Vec<u32> = (0..n).map(|_| rng.random()).collect();
        let p = placements[call % placements.len()];
        let out = rt
            .map(&xs, &k, p)
            .unwrap_or_else(|e| panic!("call {call}: {e}"))
            .output;
        for (i, (&x, &y)) in xs.iter().zip(&out).enumerate() {
            let want = (x ^ c).wrapping_mul(3).wrapping_add(i as u32);
            assert_eq!(y, want, "call {call} {p} element {i}");
        }
        for &g in &gpus {
            let r = rt.__resources()[g];
            assert!(
                r.pipelines <= r.pipeline_capacity,
                "call {call}: {} pipelines cached, capacity {}",
                r.pipelines,
                r.pipeline_capacity
            );
        }
        match call {
            999 => at_1000 = allocations(&rt),
            4999 => at_5000 = allocations(&rt),
            _ => {}
        }
    }
    let end = allocations(&rt);
    let r = rt.__resources();
    eprintln!(
        "10,000 calls in {:.1} s: pool allocations {at_1000} after 1,000 calls, {at_5000} \
         after 5,000, {end} after 10,000; resources {r:?}",
        t.elapsed().as_secs_f64()
    );
    for &g in &gpus {
        assert_eq!(
            r[g].pipelines, r[g].pipeline_capacity,
            "400 kernels fill the cache"
        );
        assert!(r[g].pipeline_capacity > 0);
    }
    assert!(at_1000 > 0, "the gpu took part");
    assert!(
        end - at_5000 <= at_1000,
        "the pool keeps allocating: {at_1000} in the first 1,000 calls, {} in the last 5,000",
        end - at_5000
    );
}
