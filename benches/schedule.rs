//! The scheduler's cost: one Auto decision on a simulated runtime (models learned,
//! virtual devices, so the time is the scheduler's own: planning, balancing, report),
//! and Auto against the CPU-only call for small inputs on the real CPU.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hybrid::{Backend, Expr, Kernel, Placement, Runtime, SimDevice};

fn saxpy() -> Kernel<f32, f32> {
    Kernel::map2(|x: Expr<f32>, y: Expr<f32>| x * 2.5 + y)
}

/// Auto on simulated devices at a size where the output computation is negligible:
/// the time is the decision (models, solver, balanced execution on the virtual clock).
fn decision(c: &mut Criterion) {
    let mut g = c.benchmark_group("auto_decision");
    for gpus in [1usize, 3] {
        let mut b = Runtime::builder()
            .no_default_devices()
            .device(SimDevice::cpu("cpu", 2e6));
        for i in 0..gpus {
            b = b.device(
                SimDevice::gpu(format!("gpu{i}"), 2e7 / (i + 1) as f64).link(5e-6, 1.2e7, 1.2e7),
            );
        }
        let rt = b.build().expect("sim runtime");
        let k = saxpy();
        let n = 1 << 14;
        let xs = vec![1.0f32; n];
        for _ in 0..3 {
            rt.map2(&xs, &xs, &k, Placement::Auto).expect("runs");
        }
        g.bench_with_input(BenchmarkId::new("devices", gpus + 1), &n, |b, _| {
            b.iter(|| rt.map2(&xs, &xs, &k, Placement::Auto).expect("runs"))
        });
    }
    g.finish();
}

/// The split solver alone: one decision for 16M elements over a CPU and 1 or 3 GPUs.
fn solver(c: &mut Criterion) {
    let mut g = c.benchmark_group("solver");
    for gpus in [1usize, 3] {
        let mut devs = vec![(0.0, 2e-6, 1e-9, 0.0, 0.0)];
        for i in 0..gpus {
            devs.push((
                0.0,
                1e-5 * (i + 1) as f64,
                2e-10 * (i + 1) as f64,
                65536.0,
                2e-5,
            ));
        }
        g.bench_with_input(BenchmarkId::new("devices", gpus + 1), &devs, |b, d| {
            b.iter(|| hybrid::__bench::solve(std::hint::black_box(16_000_000), d))
        });
    }
    g.finish();
}

/// Auto against Placement::Cpu for small inputs on the real CPU (plus any GPU found).
fn small(c: &mut Criterion) {
    let mut g = c.benchmark_group("small_auto_vs_cpu");
    let rt = Runtime::builder().build().unwrap_or_else(|_| {
        Runtime::builder()
            .backend(Backend::Cpu)
            .build()
            .expect("cpu runtime")
    });
    let k = saxpy();
    for n in [1_000usize, 10_000, 60_000] {
        let xs = vec![1.0f32; n];
        g.throughput(Throughput::Elements(n as u64));
        for (name, p) in [("cpu", Placement::Cpu), ("auto", Placement::Auto)] {
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| rt.map2(&xs, &xs, &k, p).expect("runs"))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, solver, decision, small);
criterion_main!(benches);
