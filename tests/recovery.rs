//! A device that fails mid-call: its unfinished work is redone on the others, the
//! output is complete and correct (checked element by element), the report names the
//! failure and the recovery, and the device sits out later calls until a probe finds
//! it healthy. Faults are injected: `SimDevice::fail_after` on a virtual clock, and
//! `RuntimeBuilder::fail_gpu_after_chunks` on a real GPU (lavapipe in CI).

mod common;

use hybrid::{Error, Expr, Kernel, Placement, Reduce, Runtime, SimDevice, TransferConfig};

fn kernel() -> Kernel<u32, u32> {
    Kernel::map(|x: Expr<u32>| x * 3u32 + hybrid::index())
}

fn want(xs: &[u32]) -> Vec<u32> {
    xs.iter()
        .enumerate()
        .map(|(i, &x)| x.wrapping_mul(3).wrapping_add(i as u32))
        .collect()
}

fn sim(fail_after: u64) -> Runtime {
    Runtime::builder()
        .no_default_devices()
        .device(SimDevice::cpu("sim-cpu", 2.0e9))
        .device(
            SimDevice::gpu("flaky", 20.0e9)
                .link(10e-6, 12.0e9, 12.0e9)
                .fail_after(fail_after),
        )
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn data(n: usize) -> Vec<u32> {
    (0..n as u32)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .collect()
}

#[test]
fn a_static_share_that_fails_is_redone_and_the_device_sits_out() {
    let rt = sim(1_000_000);
    let xs = data(4_000_000);
    let run = rt
        .map(&xs, &kernel(), Placement::Split(0.5))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run.output, want(&xs));
    let r = run.report.recoveries();
    assert_eq!(r.len(), 1, "{}", run.report);
    assert_eq!(r[0].device(), "flaky");
    assert_eq!(r[0].redone_by(), "sim-cpu");
    assert_eq!(r[0].range(), 0..2_000_000);
    assert!(matches!(r[0].error(), Error::DeviceFailed { .. }));
    assert!(run.report.to_string().contains("recovered: flaky failed"));
    // the device is unhealthy now, and later calls leave it out
    let health = rt.health();
    assert!(health[1].1.is_some(), "{health:?}");
    assert!(health[0].1.is_none());
    for p in [Placement::Split(0.5), Placement::Gpu, Placement::Auto] {
        let run = rt.map(&xs, &kernel(), p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(run.output, want(&xs), "{p}");
        assert!(
            run.report.shares().iter().all(|s| s.device() == "sim-cpu"),
            "{p}: {}",
            run.report
        );
        assert!(run.report.recoveries().is_empty(), "{p}");
    }
}

#[test]
fn balanced_auto_recovers_the_failed_chunk_and_the_rest_of_the_share() {
    let rt = sim(3_000_000);
    let xs = data(8_000_000);
    // the first calls teach Auto that the GPU is fast: it plans most of the work there
    let mut failed = None;
    for _ in 0..4 {
        let run = rt
            .map(&xs, &kernel(), Placement::Auto)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(run.output, want(&xs));
        if !run.report.recoveries().is_empty() {
            failed = Some(run.report);
            break;
        }
    }
    let report = failed.unwrap_or_else(|| panic!("the flaky gpu never failed"));
    let r = &report.recoveries()[0];
    assert_eq!(
        (r.device(), r.redone_by()),
        ("flaky", "sim-cpu"),
        "{report}"
    );
    // every element is computed by exactly one share (the failed run is not one)
    let mut covered: Vec<_> = report.shares().iter().map(|s| s.range()).collect();
    covered.sort_by_key(|r| r.start);
    let mut next = 0;
    for c in covered {
        assert_eq!(c.start, next, "{report}");
        next = c.end;
    }
    assert_eq!(next, xs.len(), "{report}");
}

#[test]
fn reductions_recover_too() {
    let rt = sim(500_000);
    let xs = data(3_000_000);
    let k = kernel();
    let run = rt
        .reduce(&xs, &k, Reduce::Sum, Placement::Split(0.6))
        .unwrap_or_else(|e| panic!("{e}"));
    let sum = want(&xs).iter().fold(0u32, |a, &b| a.wrapping_add(b));
    assert_eq!(run.output, sum);
    assert_eq!(run.report.recoveries().len(), 1);
}

#[test]
fn with_no_device_left_the_error_is_typed_and_nothing_is_returned() {
    let rt = Runtime::builder()
        .no_default_devices()
        .device(SimDevice::gpu("flaky", 20.0e9).fail_after(100))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let xs = data(10_000);
    match rt.map(&xs, &kernel(), Placement::Gpu) {
        Err(Error::DeviceFailed { device, .. }) => assert_eq!(device, "flaky"),
        other => panic!("expected DeviceFailed, got {other:?}"),
    }
}

#[test]
fn an_unhealthy_device_is_probed_and_stays_out_while_it_fails() {
    let rt = sim(10);
    let xs = data(100_000);
    let run = rt
        .map(&xs, &kernel(), Placement::Gpu)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run.output, want(&xs));
    assert_eq!(run.report.recoveries().len(), 1);
    let mut probed = false;
    for _ in 0..12 {
        let run = rt
            .map(&xs, &kernel(), Placement::Gpu)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(run.output, want(&xs));
        probed |= run
            .report
            .notes()
            .iter()
            .any(|n| n.contains("still unhealthy"));
    }
    assert!(probed, "after 8 calls the device is probed");
    assert!(rt.health()[1].1.is_some());
}

/// A GPU that fails its first probe is not probed again on every later call (each
/// would pay for the probe and still give the GPU nothing): Auto runs on the CPU and
/// says once why the GPU has no model.
#[test]
fn a_gpu_whose_probe_fails_is_not_probed_on_every_call() {
    let dir = std::env::temp_dir().join(format!("hybrid-probe-fail-{}", std::process::id()));
    let build = || {
        Runtime::builder()
            .cache_dir(&dir)
            .fail_gpu_after_chunks(0)
            .build()
    };
    let Some(rt) = common::gpu_runtime_with(build) else {
        return;
    };
    let k = Kernel::map2(|a: Expr<f32>, b: Expr<f32>| a.mul_add(&b, 0.25));
    let xs: Vec<f32> = (0..1 << 18).map(|i| (i % 97) as f32).collect();
    let mut probes = 0;
    for _ in 0..4 {
        let run = rt
            .map2(&xs, &xs, &k, Placement::Auto)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(run.output[96], 96.0f32.mul_add(96.0, 0.25));
        assert!(
            run.report.shares().iter().all(|s| !s.kind().is_gpu()),
            "{}",
            run.report
        );
        probes += run
            .report
            .notes()
            .iter()
            .filter(|n| n.contains("probe failed"))
            .count();
    }
    assert_eq!(probes, 1, "the failed probe is paid once");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The default devices, with 256 KiB transfer chunks and a GPU whose chunks fail
/// after the first `chunks`.
fn faulty_gpu(chunks: u64) -> hybrid::Result<Runtime> {
    Runtime::builder()
        .transfer(TransferConfig {
            chunk_bytes: Some(256 << 10),
            ..TransferConfig::default()
        })
        .fail_gpu_after_chunks(chunks)
        .build()
}

/// A real GPU whose chunks fail after the third: its share is redone on the CPU.
#[test]
fn a_real_gpu_that_fails_after_k_chunks() {
    let Some(rt) = common::gpu_runtime_with(|| faulty_gpu(3)) else {
        return;
    };
    let xs = data(1_000_000); // 4 MB: 16 chunks of 256 KiB
    let run = rt
        .map(&xs, &kernel(), Placement::Gpu)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run.output, want(&xs));
    let r = run.report.recoveries();
    assert_eq!(r.len(), 1, "{}", run.report);
    assert!(r[0].redone_by().starts_with("cpu"), "{}", run.report);
    match r[0].error() {
        Error::DeviceFailed { reason, .. } => assert!(reason.contains("injected"), "{reason}"),
        e => panic!("{e:?}"),
    }
    // next call: the gpu is left out, on any placement
    let run = rt
        .map(&xs, &kernel(), Placement::Split(0.5))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run.output, want(&xs));
    assert!(
        run.report.shares().iter().all(|s| !s.kind().is_gpu()),
        "{}",
        run.report
    );
    // and a reduction on a fresh faulty runtime recovers as well
    let rt = faulty_gpu(1).unwrap_or_else(|e| panic!("{e}"));
    let run = rt
        .reduce(&xs, &kernel(), Reduce::Max, Placement::Gpu)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(Some(run.output), want(&xs).into_iter().max());
    assert_eq!(run.report.recoveries().len(), 1);
}
