//! Whole-array inputs in the plan, on simulated devices (a virtual clock, so the
//! figures are exact): a table every device needs is a fixed cost per device with a
//! link, α + bytes/β, paid once per call however the share is cut; `Auto` gives a GPU
//! whose link makes that broadcast dominate less or nothing, and says why; a kernel's
//! models are kept per table length; a loop over a table counts as work for the
//! small-call floor, where runs are taught as where devices are probed.

mod common;

use common::{gpu_elements, sim_runtime};
use hybrid::{
    fold_with, index, Expr, Kernel, Param, Placement, Report, Runtime, Sent, SimDevice, Table,
};

/// `x` plus table element `3 i`: a read whose distance from the element grows with
/// it, so every device needs the whole table (and each element costs one read, so
/// the simulated devices, which compute for real, stay fast).
fn summing() -> Kernel<(f32, Table<f32>), f32> {
    Kernel::new(|(x, t): (Expr<f32>, Table<f32>)| x + t.at(index() * 3u32))
}

fn check(out: &[f32], xs: &[f32], table: &[f32]) {
    for (i, (o, x)) in out.iter().zip(xs).enumerate() {
        let want = x + table[(3 * i).min(table.len() - 1)];
        assert_eq!(*o, want, "element {i}");
    }
}

/// A GPU 10x faster than the CPU behind a fast link takes most of a call whose table
/// is small; with a table whose broadcast costs more than the whole call on the CPU,
/// it takes nothing, and the forecast names the tables' cost.
#[test]
fn a_broadcast_that_dominates_leaves_the_gpu_out() {
    let k = summing();
    let n = 1 << 20;
    let xs: Vec<f32> = (0..n).map(|i| (i % 17) as f32).collect();
    // 1e8 elements/s on the CPU, 1e9 on the GPU, a 1 GB/s link with 10 us latency
    let rt = sim_runtime(1e8, 1e9, 1e-5, 1e9);
    let small: Vec<f32> = vec![0.5; 16];
    for _ in 0..3 {
        rt.call(&k, (&xs, &small), Placement::Auto)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let run = rt
        .call(&k, (&xs, &small), Placement::Auto)
        .unwrap_or_else(|e| panic!("{e}"));
    check(&run.output, &xs, &small);
    let gpu: usize = run
        .report
        .shares()
        .iter()
        .filter(|s| s.kind().is_gpu())
        .map(|s| s.elements())
        .sum();
    assert!(
        gpu > n / 2,
        "a cheap broadcast: the GPU takes most ({gpu} of {n})\n{}",
        run.report
    );
    let m = run.report.inputs()[1];
    assert_eq!(m.sent(), Sent::Whole);
    assert_eq!(m.bytes(), 4 * 16, "sent once, however the share was cut");

    // 64 MiB of table at 1 GB/s is 67 ms; the CPU does the whole call in ~10 ms
    let big: Vec<f32> = vec![0.0; 16 << 20];
    let rt = sim_runtime(1e8, 1e9, 1e-5, 1e9);
    let ys: Vec<f32> = xs[..1 << 16].to_vec();
    for _ in 0..3 {
        rt.call(&k, (&ys, &big), Placement::Auto)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let run = rt
        .call(&k, (&ys, &big), Placement::Auto)
        .unwrap_or_else(|e| panic!("{e}"));
    let gpu: usize = run
        .report
        .shares()
        .iter()
        .filter(|s| s.kind().is_gpu())
        .map(|s| s.elements())
        .sum();
    assert_eq!(
        gpu, 0,
        "the broadcast costs more than the call\n{}",
        run.report
    );
    // the plan says why: with the table's broadcast in the GPU's cost, the size
    // below which the CPU alone is best is far above this call (with the small table
    // the GPU took most of a 16x smaller call)
    let decision = run.report.decision();
    let below: usize = decision
        .split("elements < ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|r| r.trim().parse().ok())
        .unwrap_or_else(|| panic!("no threshold in: {decision}"));
    assert!(below > 4 << 20, "{decision}");
}

/// Models are per table length: a 4x larger table is a new kernel to the models
/// (measured anew), not a rate that would be 4x wrong.
#[test]
fn models_are_kept_per_table_length() {
    let k = summing();
    let rt = sim_runtime(1e8, 1e9, 1e-5, 1e10);
    let xs: Vec<f32> = vec![1.0; 1 << 18];
    let t1: Vec<f32> = vec![1.0; 1000];
    let t4: Vec<f32> = vec![1.0; 4000];
    let probed = |t: &[f32]| {
        let run = rt
            .call(&k, (&xs, &t.to_vec()), Placement::Auto)
            .unwrap_or_else(|e| panic!("{e}"));
        run.report.notes().iter().any(|n| n.contains("probed"))
    };
    assert!(probed(&t1), "the first call measures the devices");
    assert!(!probed(&t1), "the same table length reuses the models");
    assert!(probed(&t4), "a 4x longer table is measured anew");
}

/// Likewise per trip count: a loop whose count is a parameter runs 8x the work per
/// element when the parameter is 8x larger, and is measured anew.
#[test]
fn models_are_kept_per_trip_count() {
    let count = Param::new(100u32);
    let k = Kernel::map(|x: Expr<f32>| fold_with(count.expr(), x, |acc, _| acc * 0.5f32 + 1.0f32));
    let rt = sim_runtime(1e8, 1e9, 1e-5, 1e10);
    let xs: Vec<f32> = vec![1.0; 1 << 18];
    let probed = || {
        let run = rt
            .map(&xs, &k, Placement::Auto)
            .unwrap_or_else(|e| panic!("{e}"));
        run.report.notes().iter().any(|n| n.contains("probed"))
    };
    assert!(probed(), "the first call measures the devices");
    assert!(!probed(), "the same count reuses the models");
    count.set(800);
    assert!(probed(), "an 8x larger count is measured anew");
    count.set(100);
    assert!(!probed(), "the first count's models are still there");
}

/// A table larger than a device's buffers leaves that device out of the call (the
/// report says so); asking for that device is the call's typed error; the output is
/// complete either way it runs.
#[test]
fn a_table_too_large_for_a_device_leaves_it_out() {
    use hybrid::{Error, Runtime, SimDevice};
    let rt = Runtime::builder()
        .no_default_devices()
        .device(SimDevice::cpu("sim-cpu", 1e8))
        .device(SimDevice::gpu("sim-gpu", 1e9).max_table_bytes(1 << 12))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let k = summing();
    let xs: Vec<f32> = vec![1.0; 1 << 17];
    let table: Vec<f32> = vec![0.25; 2048];
    let run = rt
        .call(&k, (&xs, &table), Placement::Auto)
        .unwrap_or_else(|e| panic!("{e}"));
    check(&run.output, &xs, &table);
    assert!(
        run.report.shares().iter().all(|s| !s.kind().is_gpu()),
        "{}",
        run.report
    );
    assert!(
        run.report
            .notes()
            .iter()
            .any(|n| n.contains("sim-gpu left out") && n.contains("exceeds")),
        "{:?}",
        run.report.notes()
    );
    let r = rt.call(&k, (&xs, &table), Placement::Gpu);
    assert!(matches!(r, Err(Error::DeviceCannot { .. })), "{r:?}");
    // a table that fits is no reason to leave it out
    let small: Vec<f32> = vec![0.25; 512];
    let run = rt
        .call(&k, (&xs, &small), Placement::Gpu)
        .unwrap_or_else(|e| panic!("{e}"));
    check(&run.output, &xs, &small);
}

/// `x` plus the sum of the whole table: each element loops over every table entry, as
/// an n-body body visits every body.
fn looping() -> Kernel<(f32, Table<f32>), f32> {
    Kernel::new(|(x, t): (Expr<f32>, Table<f32>)| fold_with(t.len(), x, |acc, j| acc + t.at(j)))
}

/// 1,024 elements, each looping over a 1,024-long table: 1M steps, 16x the small-call
/// floor in work, though 64x under it in elements (and under `MIN_SPLIT`). The
/// simulated devices compute for real, so the call stays small in steps.
const LOOP_N: usize = 1024;

fn loop_call(rt: &Runtime, p: Placement) -> Report {
    let xs: Vec<f32> = vec![1.0; LOOP_N];
    let table: Vec<f32> = vec![0.5; LOOP_N];
    let run = rt
        .call(&looping(), (&xs, &table), p)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        run.output.iter().all(|&v| v == 513.0),
        "{:?}",
        &run.output[..4]
    );
    run.report
}

/// The decision of a call placed by both devices' models: "n elements < below, below
/// which no other device pays" (or "at any size") exists only once every device has
/// a model (before, the floor's line says "no model says another device pays yet").
fn decided_by_both_models(r: &Report) -> bool {
    r.decision().contains("below which no other device pays")
        || r.decision().contains("no other device pays at any size")
        || (r.forecasts().len() == 2 && r.forecasts().iter().all(|f| !f.model().is_empty()))
}

/// The small-call floor counts work, not elements: 1,024 elements that each loop over
/// a 1,024-long table are measured on both devices and planned for, so a GPU 10x
/// faster than the CPU takes most of them; the same element count of a one-step
/// kernel stays on the CPU at once, unmeasured.
#[test]
fn the_small_call_floor_counts_a_loop_over_a_table() {
    // per element (each a 1,024-trip loop): 1e5 elements/s on the CPU, 1e6 on the GPU
    let rt = sim_runtime(1e5, 1e6, 1e-5, 1e10);
    let first = loop_call(&rt, Placement::Auto);
    assert!(!first.decision().contains("no model says"), "{first}");
    for dev in ["sim-cpu", "sim-gpu"] {
        assert!(
            first
                .notes()
                .iter()
                .any(|n| n.contains(&format!("probed {dev}"))),
            "{dev} is measured\n{first}"
        );
    }
    let mut last = first;
    for _ in 0..3 {
        last = loop_call(&rt, Placement::Auto);
    }
    assert!(decided_by_both_models(&last), "{last}");
    for f in last.forecasts() {
        assert!(!f.model().is_empty(), "{} has a model\n{last}", f.device());
    }
    let gpu = gpu_elements(&last);
    assert!(
        gpu > LOOP_N / 2,
        "the GPU, 10x faster, takes most ({gpu} of {LOOP_N})\n{last}"
    );
    // the same element count of a kernel with no loop stays under the floor
    let xs: Vec<f32> = vec![1.0; LOOP_N];
    let table: Vec<f32> = vec![0.5; LOOP_N];
    let run = rt
        .call(&summing(), (&xs, &table), Placement::Auto)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        run.report
            .decision()
            .contains("1024 elements < 65536 (no model says another device pays yet)"),
        "{}",
        run.report
    );
    assert!(run.report.notes().is_empty(), "{}", run.report);
}

/// The inverse: a GPU slower than the CPU at this size (a 10x lower rate and 20 ms per
/// launch) is measured too, and `Auto` keeps the call on the CPU because both models
/// say so, not because the call is under a floor.
#[test]
fn a_heavy_small_call_stays_on_a_faster_cpu_by_both_models() {
    let rt = Runtime::builder()
        .no_default_devices()
        .device(SimDevice::cpu("sim-cpu", 1e5))
        .device(
            SimDevice::gpu("sim-gpu", 1e4)
                .link(1e-5, 1e10, 1e10)
                .overhead(0.02),
        )
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let first = loop_call(&rt, Placement::Auto);
    assert!(
        first.notes().iter().any(|n| n.contains("probed sim-gpu")),
        "{first}"
    );
    for _ in 0..3 {
        let r = loop_call(&rt, Placement::Auto);
        assert_eq!(gpu_elements(&r), 0, "{r}");
        assert!(decided_by_both_models(&r), "{r}");
    }
}

/// A runtime of the CPU device (real, so never probed off the clock) and a simulated
/// GPU far slower than it at [`LOOP_N`] (a second per launch), models kept in a fresh
/// directory named for `name`.
fn real_cpu_slow_gpu(name: &str) -> Runtime {
    let dir = std::env::temp_dir().join(format!("hybrid-floor-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    Runtime::builder()
        .no_default_devices()
        .cpu()
        .device(SimDevice::gpu("slow-gpu", 1e4).overhead(1.0))
        .cache_dir(dir)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The CPU device's static runs of a call under the element floor but over the work
/// floor teach its model, as the probe teaches the GPU's. Taught nothing (the reverted
/// first try at a work floor, which counted work only where devices are probed),
/// `Auto` had the GPU's model alone and put everything on it: n-body on lavapipe, 2.4x
/// slower than the CPU.
#[test]
fn the_cpus_static_runs_over_the_work_floor_teach_its_model() {
    let rt = real_cpu_slow_gpu("static");
    // a static CPU call first, as the suite examples' warm-up round does
    loop_call(&rt, Placement::Cpu);
    for _ in 0..2 {
        let r = loop_call(&rt, Placement::Auto);
        assert_eq!(gpu_elements(&r), 0, "{r}");
        assert!(decided_by_both_models(&r), "{r}");
        assert!(
            !r.notes().iter().any(|n| n.contains("had no model")),
            "the cpu had a model already: not probed\n{r}"
        );
    }
}

/// `Auto` alone, with no static call before it: the first call measures both devices,
/// the CPU device (real) too, so the plan compares them and keeps the CPU. Probing
/// only the GPU, the plan had the GPU's model alone and put every call on it, and the
/// CPU, never run, never got a model.
#[test]
fn auto_alone_measures_the_cpu_too() {
    let rt = real_cpu_slow_gpu("auto");
    let first = loop_call(&rt, Placement::Auto);
    assert!(
        first.notes().iter().any(|n| n.contains("had no model")),
        "the cpu is probed\n{first}"
    );
    assert!(
        first.notes().iter().any(|n| n.contains("probed slow-gpu")),
        "{first}"
    );
    assert_eq!(gpu_elements(&first), 0, "{first}");
    for _ in 0..2 {
        let r = loop_call(&rt, Placement::Auto);
        assert_eq!(gpu_elements(&r), 0, "{r}");
        assert!(decided_by_both_models(&r), "{r}");
        assert!(r.notes().is_empty(), "measured once\n{r}");
    }
}
