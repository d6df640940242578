//! The scheduler on simulated devices: exact, on the virtual clock, no sleeping.
//!
//! For each case, `Auto`'s makespan is compared with the best of the static splits
//! `Split(0.00)`, `Split(0.05)`, ..., `Split(1.00)` measured on the same runtime, and
//! with the best single device.

use hybrid::{fold, Error, Expr, Kernel, Placement, Runtime, SimDevice};

fn saxpy() -> Kernel<f32, f32> {
    Kernel::map2(|x: Expr<f32>, y: Expr<f32>| x * 2.5 + y)
}

fn heavy() -> Kernel<f32, f32> {
    Kernel::map(|x: Expr<f32>| fold(64, x.clone(), |acc, _| acc * 0.999 + 0.001))
}

fn sim(devices: Vec<SimDevice>) -> Runtime {
    devices
        .into_iter()
        .fold(Runtime::builder().no_default_devices(), |b, d| b.device(d))
        .build()
        .expect("a sim runtime builds")
}

fn inputs(n: usize) -> (Vec<f32>, Vec<f32>) {
    let xs = (0..n).map(|i| (i % 1000) as f32 * 1e-3).collect();
    let ys = (0..n).map(|i| (i % 7) as f32).collect();
    (xs, ys)
}

/// The makespan and output of one call.
fn call(
    rt: &Runtime,
    k: &Kernel<f32, f32>,
    xs: &[f32],
    ys: &[f32],
    p: Placement,
) -> (f64, Vec<f32>, hybrid::Report) {
    let run = if k.arity() == 2 {
        rt.map2(xs, ys, k, p)
    } else {
        rt.map(xs, k, p)
    }
    .unwrap_or_else(|e| panic!("{p}: {e}"));
    assert!(run.report.is_virtual());
    (run.report.wall_s(), run.output, run.report)
}

/// Best static split (and its fraction) over the sweep.
fn best_sweep(rt: &Runtime, k: &Kernel<f32, f32>, xs: &[f32], ys: &[f32]) -> (f64, f64) {
    (0..=20)
        .map(|i| i as f64 / 20.0)
        .map(|f| (call(rt, k, xs, ys, Placement::Split(f)).0, f))
        .fold((f64::INFINITY, 0.0), |a, b| if b.0 < a.0 { b } else { a })
}

/// Auto within 5% of the best sweep point and no worse than the best single device;
/// the output equals the CPU's. Returns the Auto report.
fn check(rt: &Runtime, k: &Kernel<f32, f32>, n: usize, tolerance: f64) -> hybrid::Report {
    let (xs, ys) = inputs(n);
    let (auto_s, out, report) = call(rt, k, &xs, &ys, Placement::Auto);
    let (_, want, _) = call(rt, k, &xs, &ys, Placement::Cpu);
    assert_eq!(out, want, "auto's output equals the cpu's");
    let (best, at) = best_sweep(rt, k, &xs, &ys);
    let cpu = call(rt, k, &xs, &ys, Placement::Split(0.0)).0;
    let gpu = call(rt, k, &xs, &ys, Placement::Split(1.0)).0;
    let single = cpu.min(gpu);
    eprintln!(
        "n = {n}: auto {auto_s:.6e} s, best sweep {best:.6e} s at {at:.2}, cpu {cpu:.6e}, gpu {gpu:.6e}\n{report}"
    );
    assert!(
        auto_s <= best * (1.0 + tolerance),
        "auto {auto_s} vs best sweep {best} at {at}\n{report}"
    );
    assert!(
        auto_s <= single * 1.0001,
        "auto {auto_s} vs best single device {single}\n{report}"
    );
    report
}

#[test]
fn fast_gpu_fast_link() {
    let rt = sim(vec![
        SimDevice::cpu("sim-cpu", 2.0e9),
        SimDevice::gpu("sim-gpu", 20.0e9).link(5e-6, 25.0e9, 25.0e9),
    ]);
    let r = check(&rt, &heavy(), 16 << 20, 0.05);
    assert!(r.forecasts().len() == 2, "{r}");
    let gpu = r
        .shares()
        .iter()
        .find(|s| s.kind().is_gpu())
        .map_or(0, |s| s.elements());
    assert!(gpu > (16 << 20) / 2, "the gpu takes most\n{r}");
    check(&rt, &saxpy(), 4 << 20, 0.05);
}

#[test]
fn memory_bound_kernel_over_a_slow_link_stays_mostly_on_the_cpu() {
    let rt = sim(vec![
        SimDevice::cpu("sim-cpu", 2.0e9),
        SimDevice::gpu("sim-gpu", 50.0e9).link(20e-6, 2.0e9, 2.0e9),
    ]);
    let n = 8 << 20;
    let r = check(&rt, &saxpy(), n, 0.05);
    let cpu = r
        .shares()
        .iter()
        .find(|s| !s.kind().is_gpu())
        .map_or(0, |s| s.elements());
    assert!(cpu > n * 3 / 4, "the cpu takes most\n{r}");
    assert!(r.cpu_only_s().is_some() && r.gpu_only_s().is_some(), "{r}");
}

#[test]
fn a_thousand_elements_behind_a_50us_link_stay_on_the_cpu() {
    let rt = sim(vec![
        SimDevice::cpu("sim-cpu", 2.0e9),
        SimDevice::gpu("sim-gpu", 20.0e9).link(50e-6, 12.0e9, 12.0e9),
    ]);
    let (xs, ys) = inputs(1000);
    // after the models exist, too
    check(&rt, &saxpy(), 16 << 20, 0.05);
    for _ in 0..2 {
        let (_, _, r) = call(&rt, &saxpy(), &xs, &ys, Placement::Auto);
        assert_eq!(r.shares().len(), 1, "{r}");
        assert!(!r.shares()[0].kind().is_gpu(), "{r}");
        assert_eq!(r.bytes_to_devices(), 0);
    }
    check(&rt, &saxpy(), 1000, 0.0);
}

#[test]
fn two_gpus_of_different_speed_and_the_cpu() {
    let rt = sim(vec![
        SimDevice::cpu("sim-cpu", 2.0e9),
        SimDevice::gpu("big", 20.0e9).link(10e-6, 12.0e9, 12.0e9),
        SimDevice::gpu("small", 8.0e9).link(10e-6, 6.0e9, 6.0e9),
    ]);
    let r = check(&rt, &heavy(), 16 << 20, 0.05);
    assert_eq!(r.shares().len(), 3, "every device helps\n{r}");
    let big = r
        .shares()
        .iter()
        .find(|s| s.device() == "big")
        .map_or(0, |s| s.elements());
    let small = r
        .shares()
        .iter()
        .find(|s| s.device() == "small")
        .map_or(0, |s| s.elements());
    assert!(big > small, "{r}");
    // the solver's prediction matches the virtual outcome
    let p = r.predicted_s().unwrap_or(0.0);
    assert!(
        (r.wall_s() - p).abs() / p < 0.10,
        "predicted {p}, took {}\n{r}",
        r.wall_s()
    );
}

#[test]
fn a_device_slower_than_its_history_is_caught_up() {
    let dir = std::env::temp_dir().join(format!("hybrid-sched-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let build = |rate: f64| {
        Runtime::builder()
            .no_default_devices()
            .cache_dir(&dir)
            .device(SimDevice::cpu("sim-cpu", 2.0e9))
            .device(SimDevice::gpu("sim-gpu", rate).link(10e-6, 32.0e9, 32.0e9))
            .build()
            .expect("builds")
    };
    let k = heavy();
    let n = 16 << 20;
    let (xs, ys) = inputs(n);
    {
        // history: the gpu at 6 G/s (compute bound), saved to disk
        let fast = build(6.0e9);
        for _ in 0..4 {
            call(&fast, &k, &xs, &ys, Placement::Auto);
        }
    }
    // now it runs at half that: the model loaded from disk is wrong
    let slow = build(3.0e9);
    let (first, _, r) = call(&slow, &k, &xs, &ys, Placement::Auto);
    assert!(
        r.notes().iter().all(|n| !n.contains("probed")),
        "the history was loaded\n{r}"
    );
    let stale = r
        .forecasts()
        .iter()
        .find(|f| f.device() == "sim-gpu")
        .map_or(0, |f| f.planned());
    let got = r
        .shares()
        .iter()
        .find(|s| s.kind().is_gpu())
        .map_or(0, |s| s.elements());
    assert!(got < stale, "balancing moved work off the slow device\n{r}");
    let (best, at) = best_sweep(&slow, &k, &xs, &ys);
    eprintln!("first call {first:.6e} s, best sweep {best:.6e} s at {at}\n{r}");
    assert!(
        first <= best * 1.10,
        "the first call recovers: {first} vs {best}\n{r}"
    );
    // and the model has learned: later calls are as good as the best split
    check(&slow, &k, n, 0.05);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shares_are_contiguous_in_input_order_for_any_size() {
    let rt = sim(vec![
        SimDevice::cpu("sim-cpu", 2.0e9),
        SimDevice::gpu("a", 20.0e9),
        SimDevice::gpu("b", 10.0e9),
    ]);
    let k = saxpy();
    for n in [
        0usize,
        1,
        2,
        1000,
        65_535,
        65_536,
        65_537,
        1 << 20,
        5_000_011,
    ] {
        let (xs, ys) = inputs(n);
        let (_, out, r) = call(&rt, &k, &xs, &ys, Placement::Auto);
        let (_, want, _) = call(&rt, &k, &xs, &ys, Placement::Cpu);
        assert_eq!(out, want, "n = {n}");
        let mut next = 0;
        for s in r.shares() {
            assert_eq!(s.range().start, next, "n = {n}\n{r}");
            assert!(s.elements() > 0, "n = {n}\n{r}");
            next = s.range().end;
        }
        assert_eq!(next, n, "n = {n}\n{r}");
        let names: Vec<&str> = r.shares().iter().map(|s| s.device()).collect();
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(names, unique, "one share per device\n{r}");
    }
}

#[test]
fn empty_and_virtual_reports() {
    let rt = sim(vec![SimDevice::cpu("c", 1e9), SimDevice::gpu("g", 1e10)]);
    let run = rt.map(&[], &heavy(), Placement::Auto).expect("runs");
    assert!(run.output.is_empty());
    assert_eq!(run.report.wall_s(), 0.0);
    assert!(run.report.to_string().contains("virtual"));
}

/// A device failing mid-call no longer fails the call (tests/recovery.rs has the
/// details): the output is whole and correct and the report names the failure.
#[test]
fn a_failing_device_is_recovered_from() {
    let rt = sim(vec![
        SimDevice::cpu("sim-cpu", 2.0e9),
        SimDevice::gpu("flaky", 20.0e9)
            .link(20e-6, 12.0e9, 12.0e9)
            .fail_after(1_000_000),
    ]);
    let (xs, ys) = inputs(8 << 20);
    let run = rt
        .map2(&xs, &ys, &saxpy(), Placement::Gpu)
        .expect("recovered");
    let want: Vec<f32> = xs.iter().zip(&ys).map(|(x, y)| x * 2.5 + y).collect();
    assert_eq!(run.output, want);
    let r = run.report.recoveries();
    assert_eq!(r.len(), 1, "{}", run.report);
    assert_eq!((r[0].device(), r[0].redone_by()), ("flaky", "sim-cpu"));
    assert!(matches!(r[0].error(), Error::DeviceFailed { device, .. } if device == "flaky"));
}

#[test]
fn the_scheduler_learns_sims_by_measuring_them() {
    // two runtimes whose devices differ only in speed decide differently
    let k = heavy();
    let n = 4 << 20;
    let (xs, ys) = inputs(n);
    let share = |gpu_rate: f64| {
        let rt = sim(vec![
            SimDevice::cpu("c", 2e9),
            SimDevice::gpu("g", gpu_rate),
        ]);
        let (_, _, r) = call(&rt, &k, &xs, &ys, Placement::Auto);
        r.shares()
            .iter()
            .find(|s| s.kind().is_gpu())
            .map_or(0, |s| s.elements())
    };
    assert!(share(40e9) > share(4e9));
}
