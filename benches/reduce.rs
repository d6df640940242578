//! Reductions: the CPU device summing 16M f32 against a hand-written rayon sum in the
//! same run, a sum of squares (map and reduce in one pass) against its hand-written
//! rayon form, and the GPU where one exists. 1M elements when `CI` is set.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hybrid::{Backend, Expr, Kernel, Placement, Reduce, Runtime};
use rayon::prelude::*;

fn len() -> usize {
    if std::env::var_os("CI").is_some() {
        1 << 20
    } else {
        1 << 24
    }
}

fn bench(c: &mut Criterion) {
    let n = len();
    let xs: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 1e-3 - 0.4).collect();
    let cpu = Runtime::builder()
        .backend(Backend::Cpu)
        .build()
        .expect("cpu runtime");
    let gpu = Runtime::new().ok().filter(Runtime::has_gpu);
    let mut runtimes = vec![("cpu", &cpu, Placement::Cpu)];
    if let Some(g) = &gpu {
        runtimes.push(("gpu", g, Placement::Gpu));
    }
    let sq = Kernel::map(|x: Expr<f32>| x.clone() * x);

    let mut g = c.benchmark_group("sum");
    g.throughput(Throughput::Elements(n as u64)).sample_size(30);
    g.bench_function("rayon-hand", |b| b.iter(|| xs.par_iter().sum::<f32>()));
    for (name, rt, p) in &runtimes {
        g.bench_function(BenchmarkId::new("hybrid", name), |b| {
            b.iter(|| rt.sum(&xs, *p).expect("sum").output)
        });
    }
    g.finish();

    let mut g = c.benchmark_group("sumsq");
    g.throughput(Throughput::Elements(n as u64)).sample_size(30);
    g.bench_function("rayon-hand", |b| {
        b.iter(|| xs.par_iter().map(|x| x * x).sum::<f32>())
    });
    for (name, rt, p) in &runtimes {
        g.bench_function(BenchmarkId::new("hybrid", name), |b| {
            b.iter(|| rt.reduce(&xs, &sq, Reduce::Sum, *p).expect("sumsq").output)
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
