//! 64-bit inputs and results (`f64`, `i64`, `u64`) on host data: `Kernel::new` with
//! 64-bit arguments or results, called with `Runtime::call`, on every placement: a
//! GPU's shader puts each element together from its two words and takes results apart
//! the same way, through `u64`, so a GPU without `SHADER_INT64` is left out of `Auto`
//! and `Split` (the report says why) and `Placement::Gpu` on it is
//! `Error::DeviceCannot`. A reduction to a 64-bit value runs everywhere, an f64 sum
//! compensated on every device. Arrays hold 32-bit elements, so an array call of such a kernel
//! is `Error::Unsupported`.

mod common;

use common::{cpu_runtime, shared_gpu};
use hybrid::{
    index, Array, Error, Expr, Kernel, Placement, Reduce, Runtime, Sent, SimDevice, Table,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Each runtime under test with its placements: the CPU's `Cpu` and `Auto`; with a
/// GPU, those and `Gpu` and a split as well.
fn targets() -> Vec<(&'static Runtime, Vec<Placement>)> {
    let mut v = vec![(common::shared_cpu(), vec![Placement::Cpu, Placement::Auto])];
    if let Some(g) = shared_gpu() {
        let all = [
            Placement::Cpu,
            Placement::Auto,
            Placement::Gpu,
            Placement::Split(0.5),
        ];
        v.push((g, all.to_vec()));
    }
    v
}

/// The bit patterns of f64 values: compared bit for bit.
fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// `x * x + 0.1`, a mix of an f64, an i64 and a u32, and a tuple of an f64, an f32 and
/// a u64 result, bit for bit as Rust computes them, on every placement; the GPU takes
/// its share where it is asked to.
#[test]
fn f64_and_i64_in_and_out_match_rust_bit_for_bit() {
    let mut rng = ChaCha8Rng::seed_from_u64(6464);
    let n = 100_003;
    let mut xs: Vec<f64> = (0..n).map(|_| rng.random_range(-1e3..1e3)).collect();
    // the edges of the format travel too: subnormals, infinities, a NaN, -0
    xs[..6].copy_from_slice(&[
        5e-324,
        -2.2e-308,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        1e308,
    ]);
    let is: Vec<i64> = (0..n).map(|_| rng.random()).collect();
    let us: Vec<u32> = (0..n).map(|_| rng.random()).collect();
    let square = Kernel::new(|(x,): (Expr<f64>,)| x.clone() * x + 0.1f64);
    let mix = Kernel::new(|(x, i, u): (Expr<f64>, Expr<i64>, Expr<u32>)| {
        (x.cast::<i64>() ^ i) + u.cast::<i64>() * 3i64
    });
    let tuple = Kernel::new(|(x, i): (Expr<f64>, Expr<i64>)| {
        (
            x.clone() * 0.5f64,
            x.cast::<f32>() + 1.0f32,
            i.cast::<u64>() >> 3u32,
        )
    });
    let want_sq: Vec<u64> = xs.iter().map(|x| (x * x + 0.1).to_bits()).collect();
    // f64 -> i64 as WGSL casts: clamped to the largest i64 an f64 holds, 2^63 - 1024
    let to_i64 = |x: f64| x.min(9_223_372_036_854_774_784.0) as i64;
    let want_mix: Vec<i64> = (0..n)
        .map(|k| (to_i64(xs[k]) ^ is[k]).wrapping_add(us[k] as i64 * 3))
        .collect();
    let want_half: Vec<u64> = xs.iter().map(|x| (x * 0.5).to_bits()).collect();
    let want_f32: Vec<u32> = xs.iter().map(|&x| (x as f32 + 1.0).to_bits()).collect();
    let want_shift: Vec<u64> = is.iter().map(|&i| (i as u64) >> 3).collect();
    for (rt, placements) in targets() {
        for p in placements {
            let run = rt
                .call(&square, (&xs,), p)
                .unwrap_or_else(|e| panic!("{p}: {e}"));
            assert!(bits(&run.output) == want_sq, "{p}: f64 square differs");
            if matches!(p, Placement::Gpu | Placement::Split(_)) {
                assert!(common::gpu_elements(&run.report) > 0, "{p}: {}", run.report);
                // two words up and two down per element on the GPU's share
                let gpu = common::gpu_elements(&run.report) as u64;
                assert!(run.report.bytes_to_devices() >= 8 * gpu, "{}", run.report);
                assert!(run.report.bytes_from_devices() >= 8 * gpu, "{}", run.report);
            }
            let run = rt
                .call(&mix, (&xs, &is, &us), p)
                .unwrap_or_else(|e| panic!("{p}: {e}"));
            assert_eq!(run.output, want_mix, "{p}: mix");
            let (half, single, shift) = rt
                .call(&tuple, (&xs, &is), p)
                .unwrap_or_else(|e| panic!("{p}: {e}"))
                .output;
            assert!(bits(&half) == want_half, "{p}: f64 result of a tuple");
            let single: Vec<u32> = single.iter().map(|x| x.to_bits()).collect();
            assert!(single == want_f32, "{p}: f32 result beside 64-bit ones");
            assert!(shift == want_shift, "{p}: u64 result of a tuple");
        }
    }
    // empty input: an empty result
    let none: Vec<f64> = Vec::new();
    let run = common::shared_cpu()
        .call(&square, (&none,), Placement::Auto)
        .expect("empty");
    assert!(run.output.is_empty());
}

/// A GPU without 64-bit integers does not take 64-bit inputs or results (its shader
/// would move them as `u64`): `Placement::Gpu` is a typed error naming the feature, and
/// a split's GPU share goes to the CPU with a note. A GPU with them takes its share.
#[test]
fn a_gpu_without_int64_is_left_out_of_64_bit_io() {
    let sim = |gpu: SimDevice| {
        Runtime::builder()
            .no_default_devices()
            .device(SimDevice::cpu("sim-cpu", 1e8))
            .device(gpu)
            .build()
            .expect("sim")
    };
    let k = Kernel::new(|(x,): (Expr<f64>,)| x * 2.0f64);
    let xs: Vec<f64> = (0..10_000).map(|i| i as f64 / 3.0).collect();
    let twice: Vec<f64> = xs.iter().map(|x| x * 2.0).collect();
    let without = sim(SimDevice::gpu("sim-gpu", 1e10).without_int64());
    match without.call(&k, (&xs,), Placement::Gpu) {
        Err(e @ Error::DeviceCannot { .. }) => {
            assert!(e.to_string().contains("SHADER_INT64"), "{e}");
            common::assert_lowercase(&e);
        }
        other => panic!("want DeviceCannot, got {:?}", other.map(|r| r.report)),
    }
    let run = without
        .call(&k, (&xs,), Placement::Split(0.5))
        .expect("split");
    assert_eq!(run.output, twice);
    assert_eq!(common::gpu_elements(&run.report), 0);
    assert!(
        run.report
            .notes()
            .iter()
            .any(|n| n.contains("SHADER_INT64")),
        "{}",
        run.report
    );
    // the same GPU with 64-bit integers takes half
    let with = sim(SimDevice::gpu("sim-gpu", 1e10));
    let run = with.call(&k, (&xs,), Placement::Split(0.5)).expect("split");
    assert_eq!(run.output, twice);
    assert_eq!(common::gpu_elements(&run.report), 5_000, "{}", run.report);
}

/// An f64 sum on the GPU is compensated as the CPU's (each thread's values with
/// Knuth's two-sum, the workgroup's pairs combined the same way, the partials on the
/// host): over random dyadic values whose exact sum an i128 holds, within 2 ulp of the
/// exact sum plus n·u²·Σ|x| on every placement, the GPU taking its share; and the
/// GPU's partials of an i64 sum, a u64 max and an f64 min come back whole.
#[test]
fn sixty_four_bit_reductions_on_the_gpu_keep_their_bound() {
    let mut rng = ChaCha8Rng::seed_from_u64(6469);
    let n = 300_001;
    // k * 2^e with |k| < 2^52 (exact in f64) and e in -40..0: magnitudes spread over
    // 2^40, so the sum rounds
    let xs: Vec<f64> = (0..n)
        .map(|_| {
            let k: i64 = rng.random_range(-(1i64 << 52)..(1i64 << 52));
            k as f64 * 2f64.powi(rng.random_range(-40..0))
        })
        .collect();
    // exact: every value is a multiple of 2^-40 below 2^52, so their sum in units of
    // 2^-40 fits in an i128; rounded once to f64
    let exact: i128 = xs.iter().map(|&x| (x * 2f64.powi(40)) as i128).sum();
    let exact = exact as f64 * 2f64.powi(-40);
    let mags: f64 = xs.iter().map(|x| x.abs()).sum();
    let u = f64::EPSILON / 2.0;
    let bound = 2.0 * exact.abs() * f64::EPSILON + n as f64 * u * u * mags;
    let plain: f64 = xs.iter().sum();
    assert!(
        (plain - exact).abs() > bound,
        "a plain sum keeps the bound: no test"
    );
    let id = Kernel::new(|(x,): (Expr<f64>,)| x);
    let Some(rt) = shared_gpu() else { return };
    for p in [Placement::Gpu, Placement::Split(0.5), Placement::Cpu] {
        let run = rt.call_reduce(&id, (&xs,), Reduce::Sum, p).expect("sum");
        assert!(
            (run.output - exact).abs() <= bound,
            "{p}: {} off the exact sum, bound {bound}",
            (run.output - exact).abs()
        );
        if p != Placement::Cpu {
            assert!(common::gpu_elements(&run.report) > 0, "{p}: {}", run.report);
        }
    }
    let is: Vec<i64> = (0..n).map(|_| rng.random()).collect();
    let ik = Kernel::new(|(i,): (Expr<i64>,)| i);
    let uk = Kernel::new(|(i,): (Expr<i64>,)| i.cast::<u64>());
    let gpu = |k: &Kernel<(i64,), _>, op| rt.call_reduce(k, (&is,), op, Placement::Gpu);
    let sum = is.iter().fold(0i64, |a, &b| a.wrapping_add(b));
    assert_eq!(gpu(&ik, Reduce::Sum).expect("i64 sum").output, sum);
    assert_eq!(
        gpu(&ik, Reduce::Min).expect("i64 min").output,
        *is.iter().min().expect("n > 0")
    );
    let umax = is.iter().map(|&i| i as u64).max().expect("n > 0");
    let got: u64 = rt
        .call_reduce(&uk, (&is,), Reduce::Max, Placement::Gpu)
        .expect("u64 max")
        .output;
    assert_eq!(got, umax);
    let min = rt
        .call_reduce(&id, (&xs,), Reduce::Min, Placement::Gpu)
        .expect("f64 min");
    assert_eq!(min.output, xs.iter().copied().fold(f64::INFINITY, f64::min));
}

/// Tables of f64 and i64: reads at random indices (clamped with `at`, a default
/// outside with `at_or`, a negative i32 index), and a three-point stencil over an f64
/// table that moves as a halo, bit for bit as Rust computes them on every placement.
#[test]
fn tables_of_64_bit_elements() {
    let mut rng = ChaCha8Rng::seed_from_u64(6467);
    let n = 50_001;
    let t: Vec<f64> = (0..1_000).map(|_| rng.random_range(-1e6..1e6)).collect();
    let ti: Vec<i64> = (0..777).map(|_| rng.random()).collect();
    let idx: Vec<i32> = (0..n).map(|_| rng.random_range(-50..1_100)).collect();
    let gather = Kernel::new(|(i, t, ti): (Expr<i32>, Table<f64>, Table<i64>)| {
        (
            t.at(i.clone()) * 2.0f64,
            t.at_or(i.clone(), -1.5f64),
            ti.at(i.clone()) ^ ti.at_or(i, 7i64),
            t.len(),
        )
    });
    let clamp = |i: i32, len: usize| i.clamp(0, len as i32 - 1) as usize;
    let inside = |i: i32, len: usize| i >= 0 && (i as usize) < len;
    let want0: Vec<u64> = idx
        .iter()
        .map(|&i| (t[clamp(i, t.len())] * 2.0).to_bits())
        .collect();
    let want1: Vec<u64> = idx
        .iter()
        .map(|&i| {
            if inside(i, t.len()) {
                t[i as usize]
            } else {
                -1.5
            }
            .to_bits()
        })
        .collect();
    let want2: Vec<i64> = idx
        .iter()
        .map(|&i| {
            let d = if inside(i, ti.len()) {
                ti[i as usize]
            } else {
                7
            };
            ti[clamp(i, ti.len())] ^ d
        })
        .collect();
    let xs: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let stencil = Kernel::new(|(t,): (Table<f64>,)| {
        let i = index().cast::<i32>();
        t.at(i.clone() - 1i32) + t.at(i.clone()) * 2.0f64 + t.at(i + 1i32)
    });
    let want_st: Vec<u64> = (0..n)
        .map(|i| {
            let at = |j: i64| xs[j.clamp(0, n as i64 - 1) as usize];
            let i = i as i64;
            (at(i - 1) + at(i) * 2.0 + at(i + 1)).to_bits()
        })
        .collect();
    for (rt, placements) in targets() {
        for p in placements {
            let (a, b, c, len) = rt
                .call(&gather, (&idx, &t, &ti), p)
                .unwrap_or_else(|e| panic!("{p}: {e}"))
                .output;
            assert!(bits(&a) == want0, "{p}: at");
            assert!(bits(&b) == want1, "{p}: at_or");
            assert!(c == want2, "{p}: i64 table");
            assert!(len.iter().all(|&l| l == 1_000), "{p}: len counts elements");
            let run = rt
                .call_over(n, &stencil, (&xs,), p)
                .unwrap_or_else(|e| panic!("{p}: {e}"));
            assert!(bits(&run.output) == want_st, "{p}: stencil");
            let halo = run.report.inputs()[0].sent();
            assert_eq!(
                halo,
                Sent::Halo {
                    before: 1,
                    after: 1
                },
                "{p}"
            );
            if let Placement::Split(_) = p {
                // the GPU's half and a halo of two elements, 8 bytes each
                let gpu = common::gpu_elements(&run.report) as u64;
                assert!(gpu > 0, "{}", run.report);
                let bytes = run.report.inputs()[0].bytes();
                assert!(
                    bytes >= 8 * gpu && bytes <= 8 * (gpu + 2),
                    "{bytes} for {gpu}"
                );
            }
        }
    }
}

/// Lengths are counted in elements, not words: an f64 input of 10 elements beside an
/// f32 input of 20 is a length mismatch of 10 and 20.
#[test]
fn lengths_count_elements() {
    let k = Kernel::new(|(x, y): (Expr<f64>, Expr<f32>)| x + y.cast::<f64>());
    let xs = vec![1.0f64; 10];
    let ys = vec![1.0f32; 20];
    match cpu_runtime().call(&k, (&xs, &ys), Placement::Cpu) {
        Err(Error::LengthMismatch { left, right }) => assert_eq!((left, right), (10, 20)),
        other => panic!("want LengthMismatch, got {:?}", other.map(|r| r.report)),
    }
    let ys = vec![0.5f32; 10];
    let run = cpu_runtime()
        .call(&k, (&xs, &ys), Placement::Cpu)
        .expect("equal");
    assert_eq!(run.output, vec![1.5f64; 10]);
}

/// Arrays of f64, i64 and u64: made from host data and gathered bit for bit; a kernel
/// over them leaves its 64-bit results where they were computed (a tuple's f64, f32
/// and u64 results each an array of its own), the next call over them moves nothing
/// on the GPU, an array is a table of its own, and a reduction over one is
/// compensated, on every placement.
#[test]
fn arrays_of_64_bit_elements() {
    let mut rng = ChaCha8Rng::seed_from_u64(6470);
    let n = 60_001;
    let xs: Vec<f64> = (0..n).map(|_| rng.random_range(-1e3..1e3)).collect();
    let is: Vec<i64> = (0..n).map(|_| rng.random()).collect();
    let a = Array::from_vec(xs.clone());
    let ia = Array::from_slice(&is);
    assert_eq!((a.len(), a.to_vec().expect("host")), (n, xs.clone()));
    assert_eq!(ia.to_vec().expect("host"), is);
    let step = Kernel::new(|(x, i): (Expr<f64>, Expr<i64>)| {
        (
            x.clone() * 0.5f64 + 1.0f64,
            x.cast::<f32>(),
            i.cast::<u64>() >> 1u32,
        )
    });
    let again = Kernel::new(|(x,): (Expr<f64>,)| x.clone() * x);
    let lookup = Kernel::new(|(i, t): (Expr<u32>, Table<f64>)| t.at(i) - 1.0f64);
    let id = Kernel::new(|(x,): (Expr<f64>,)| x);
    let half: Vec<u64> = xs.iter().map(|x| (x * 0.5 + 1.0).to_bits()).collect();
    let squared: Vec<u64> = xs
        .iter()
        .map(|x| (x * 0.5 + 1.0) * (x * 0.5 + 1.0))
        .map(f64::to_bits)
        .collect();
    let idx: Vec<u32> = (0..n as u32).map(|i| (i * 7919) % n as u32).collect();
    for (rt, placements) in targets() {
        for p in placements {
            let (h, single, shift) = rt
                .call_arrays(&step, (&a, &ia), p)
                .unwrap_or_else(|e| panic!("{p}: {e}"))
                .output;
            if p == Placement::Gpu {
                assert_eq!(h.bytes_only_on_devices(), 8 * n as u64, "{p}: results stay");
            }
            // the next call over the results: nothing moves on the GPU
            let run = rt
                .call_arrays(&again, (&h,), p)
                .unwrap_or_else(|e| panic!("{p}: {e}"));
            if p == Placement::Gpu {
                assert_eq!(run.report.bytes_to_devices(), 0, "{p}: {}", run.report);
            }
            assert!(
                bits(&run.output.to_vec().expect("gather")) == squared,
                "{p}: chain"
            );
            assert!(
                bits(&h.to_vec().expect("gather")) == half,
                "{p}: f64 result"
            );
            let single = single.to_vec().expect("gather");
            assert!(
                single
                    .iter()
                    .zip(&xs)
                    .all(|(s, &x)| s.to_bits() == (x as f32).to_bits()),
                "{p}: f32 result beside 64-bit ones"
            );
            let shift = shift.to_vec().expect("gather");
            assert!(
                shift.iter().zip(&is).all(|(&s, &i)| s == (i as u64) >> 1),
                "{p}: u64"
            );
            // an array (on the device after the first call) as a table
            let got = rt
                .call(&lookup, (&idx, &h), p)
                .unwrap_or_else(|e| panic!("{p}: {e}"))
                .output;
            let want: Vec<u64> = idx
                .iter()
                .map(|&i| (f64::from_bits(half[i as usize]) - 1.0).to_bits())
                .collect();
            assert!(bits(&got) == want, "{p}: an f64 array as a table");
            // a compensated sum over an array
            let s = rt
                .call_reduce(&id, (&h,), Reduce::Sum, p)
                .unwrap_or_else(|e| panic!("{p}: {e}"))
                .output;
            let exact: f64 = {
                let (mut s, mut c) = (0.0f64, 0.0f64);
                for &b in &half {
                    let x = f64::from_bits(b);
                    let t = s + x;
                    c += if s.abs() >= x.abs() {
                        (s - t) + x
                    } else {
                        (x - t) + s
                    };
                    s = t;
                }
                s + c
            };
            assert!(
                (s - exact).abs() <= 4.0 * f64::EPSILON * exact.abs(),
                "{p}: {s} vs {exact}"
            );
        }
    }
}

/// A reduction over 64-bit inputs: the sum of `i64 % 1000` as u32, exact, and a dot
/// product of two f64 inputs accumulated per element in f64 and summed in f32.
#[test]
fn reductions_over_64_bit_inputs() {
    let mut rng = ChaCha8Rng::seed_from_u64(6465);
    let is: Vec<i64> = (0..50_000).map(|_| rng.random()).collect();
    let k = Kernel::new(|(i,): (Expr<i64>,)| (i % 1000i64).abs().cast::<u32>());
    let want: u32 = is.iter().map(|i| (i % 1000).unsigned_abs() as u32).sum();
    for (rt, placements) in targets() {
        for p in placements {
            let got = rt
                .call_reduce(&k, (&is,), Reduce::Sum, p)
                .expect("sum")
                .output;
            assert_eq!(got, want, "{p}");
        }
    }
}

/// 64-bit reductions on host data: an f64 sum is compensated (Neumaier's, per block and
/// across blocks and threads: error within 2 ulp of the sum plus n·u² of the sum of
/// magnitudes), so `[1e16, 1, -1e16, 1]` repeated sums to exactly 2 per group where a
/// plain f64 loop loses the ones; f64 min and max, an i64 sum that wraps, a u64 max.
#[test]
fn reductions_with_64_bit_results() {
    let groups = 50_000;
    let xs: Vec<f64> = (0..groups).flat_map(|_| [1e16, 1.0, -1e16, 1.0]).collect();
    let plain: f64 = xs.iter().sum();
    assert_ne!(plain, 2.0 * groups as f64, "a plain sum loses the ones");
    let id = Kernel::new(|(x,): (Expr<f64>,)| x);
    let mut rng = ChaCha8Rng::seed_from_u64(6466);
    let is: Vec<i64> = (0..100_000).map(|_| rng.random()).collect();
    let ik = Kernel::new(|(i,): (Expr<i64>,)| i);
    let uk = Kernel::new(|(i,): (Expr<i64>,)| i.cast::<u64>() >> 1u32);
    let isum = is.iter().fold(0i64, |a, &b| a.wrapping_add(b));
    let umax = is.iter().map(|&i| (i as u64) >> 1).max().unwrap_or(0);
    for (rt, placements) in targets() {
        for p in placements {
            let r = |op| rt.call_reduce(&id, (&xs,), op, p).expect("f64").output;
            assert_eq!(r(Reduce::Sum), 2.0 * groups as f64, "{p}: compensated sum");
            assert_eq!(r(Reduce::Min), -1e16, "{p}");
            assert_eq!(r(Reduce::Max), 1e16, "{p}");
            let s = rt
                .call_reduce(&ik, (&is,), Reduce::Sum, p)
                .expect("i64")
                .output;
            assert_eq!(s, isum, "{p}: i64 sum wraps");
            let m = rt
                .call_reduce(&uk, (&is,), Reduce::Max, p)
                .expect("u64")
                .output;
            assert_eq!(m, umax, "{p}: u64 max");
        }
    }
    // an empty input gives the identity
    let none: Vec<f64> = Vec::new();
    let run = common::shared_cpu().call_reduce(&id, (&none,), Reduce::Sum, Placement::Cpu);
    assert_eq!(run.expect("empty").output, 0.0);
}
