//! Hand-written kernels (WGSL body + Rust function): they map, reduce and split like
//! expression kernels; their two halves are checked against each other on a sample;
//! a body the driver rejects is a typed error. Outputs here are integers or exactly
//! rounded floats, so they are compared exactly.

mod common;

use hybrid::{Error, Kernel, Placement, Reduce, Runtime};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn placements(rt: &Runtime) -> Vec<Placement> {
    let mut p = vec![Placement::Cpu, Placement::Auto];
    if rt.has_gpu() {
        p.extend([Placement::Gpu, Placement::Split(0.5)]);
    }
    p
}

fn runtimes() -> Vec<Runtime> {
    let mut v = vec![common::cpu_runtime()];
    v.extend(common::gpu_runtime());
    v
}

/// Bit counting and the element's index: something the expression language has no
/// operation for.
fn popcount() -> Kernel<u32, u32> {
    Kernel::custom(
        "return countOneBits(x) * 1000u + index;",
        |x: u32, i: u32| x.count_ones() * 1000 + i,
    )
}

#[test]
fn an_agreeing_kernel_maps_and_reduces_on_every_placement() {
    let mut rng = ChaCha8Rng::seed_from_u64(61);
    let k = popcount();
    let fma = Kernel::custom2("return a * 2.0 + b;", |a: f32, b: f32, _| a * 2.0 + b);
    for rt in runtimes() {
        for n in [0usize, 1, 255, 257, 5_000, 300_001] {
            let xs: Vec<u32> = (0..n).map(|_| rng.random()).collect();
            let want: Vec<u32> = xs
                .iter()
                .enumerate()
                .map(|(i, x)| x.count_ones() * 1000 + i as u32)
                .collect();
            let a: Vec<f32> = (0..n).map(|_| rng.random_range(-8.0f32..8.0)).collect();
            let b: Vec<f32> = (0..n).map(|_| rng.random_range(-8.0f32..8.0)).collect();
            for p in placements(&rt) {
                let what = format!("n={n} {p}");
                let got = rt.map(&xs, &k, p).unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(got.output, want, "{what}");
                let s = rt
                    .reduce(&xs, &k, Reduce::Sum, p)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(
                    s.output,
                    want.iter().fold(0u32, |x, &y| x.wrapping_add(y)),
                    "{what}"
                );
                let m = rt
                    .reduce(&xs, &k, Reduce::Max, p)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(m.output, want.iter().copied().max().unwrap_or(0), "{what}");
                let got = rt
                    .map2(&a, &b, &fma, p)
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                let w: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x * 2.0 + y).collect();
                assert_eq!(got.output, w, "{what}");
            }
        }
    }
}

#[test]
fn a_disagreeing_kernel_is_an_error_naming_the_element() {
    let Some(rt) = common::gpu_runtime() else {
        return;
    };
    // wrong on one element only, which lies in the middle sample window (372..628 of
    // 1,000): the error must name it, and no output is returned
    let k = Kernel::custom("return x * 2.0;", |x: f32, i: u32| {
        if i == 400 {
            x * 2.0 + 1.0
        } else {
            x * 2.0
        }
    });
    let xs: Vec<f32> = (0..1000).map(|i| i as f32).collect();
    for p in [
        Placement::Auto,
        Placement::Cpu,
        Placement::Gpu,
        Placement::Split(0.5),
    ] {
        match rt.map(&xs, &k, p) {
            Err(Error::CustomMismatch {
                index, cpu, gpu, ..
            }) => {
                assert_eq!(index, 400, "{p}");
                assert_eq!((cpu.as_str(), gpu.as_str()), ("801.0", "800.0"), "{p}");
            }
            other => panic!("{p}: expected a mismatch, got {other:?}"),
        }
        assert!(
            matches!(
                rt.reduce(&xs, &k, Reduce::Sum, p),
                Err(Error::CustomMismatch { index: 400, .. })
            ),
            "{p}"
        );
    }
    // the message names the element too
    let e = rt.map(&xs, &k, Placement::Cpu).err().map(|e| e.to_string());
    assert!(
        e.as_deref().is_some_and(|m| m.contains("element 400")),
        "{e:?}"
    );
}

#[test]
fn the_tolerance_decides() {
    let Some(rt) = common::gpu_runtime() else {
        return;
    };
    let xs: Vec<f32> = (1..=2000).map(|i| i as f32 * 0.5).collect();
    // the halves differ by a relative 1e-5 on every element
    let make = || Kernel::custom("return x * 1.00001;", |x: f32, _| x);
    let loose = make().tolerance(1e-4);
    assert!(rt.map(&xs, &loose, Placement::Gpu).is_ok());
    let strict = make().tolerance(1e-6);
    assert!(matches!(
        rt.map(&xs, &strict, Placement::Gpu),
        Err(Error::CustomMismatch { index: 0, .. })
    ));
}

#[test]
fn a_body_the_driver_rejects_is_a_typed_error() {
    let Some(rt) = common::gpu_runtime() else {
        return;
    };
    let k = Kernel::custom("return x * undefined_name;", |x: f32, _| x);
    let xs = vec![1.0f32; 100];
    match rt.map(&xs, &k, Placement::Auto) {
        Err(Error::ShaderRejected {
            message,
            source_line,
            ..
        }) => {
            assert!(message.contains("undefined_name"), "{message}");
            assert!(source_line.contains("undefined_name"), "{source_line}");
        }
        other => panic!("expected ShaderRejected, got {other:?}"),
    }
    // a CPU-only runtime has nothing to compile: the CPU half runs
    let cpu = common::cpu_runtime();
    assert_eq!(cpu.map(&xs, &k, Placement::Cpu).map(|r| r.output), Ok(xs));
}

/// The scheduler learns a hand-written kernel like any other: on simulated devices
/// Auto splits it, and the output is whole and in order.
#[test]
fn auto_schedules_a_hand_written_kernel() {
    let rt = common::sim_runtime(1.0e9, 10.0e9, 10e-6, 12.0e9);
    let k = popcount();
    let n = 2_000_000;
    let xs: Vec<u32> = (0..n as u32)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .collect();
    let mut report = None;
    for _ in 0..3 {
        let run = rt
            .map(&xs, &k, Placement::Auto)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(run
            .output
            .iter()
            .enumerate()
            .all(|(i, &y)| y == xs[i].count_ones() * 1000 + i as u32));
        report = Some(run.report);
    }
    let report = report.unwrap_or_else(|| panic!("no run"));
    assert_eq!(report.shares().len(), 2, "{report}");
    assert!(!report.forecasts().is_empty(), "{report}");
}
