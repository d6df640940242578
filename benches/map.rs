//! The CPU device evaluating an `Expr` kernel against a hand-written rayon closure that
//! computes the same thing, in the same run; and the GPU where one exists.
//!
//! Kernels: saxpy (`a * x + y`, memory-bound) and a degree-5 polynomial by Horner's
//! rule (10 floating-point operations per element). 16M elements, or 1M when `CI` is
//! set. Each body is written once and registered per placement.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hybrid::{Backend, Expr, Kernel, Placement, Runtime};
use rayon::prelude::*;

const A: f32 = 2.5;
const C: [f32; 6] = [0.5, -1.25, 0.75, 0.125, -0.0625, 0.03125];

fn len() -> usize {
    if std::env::var_os("CI").is_some() {
        1 << 20
    } else {
        1 << 24
    }
}

fn poly_hand(x: f32) -> f32 {
    ((((C[5] * x + C[4]) * x + C[3]) * x + C[2]) * x + C[1]) * x + C[0]
}

fn poly_kernel() -> Kernel<f32, f32> {
    Kernel::map(|x: Expr<f32>| {
        ((((x.clone() * C[5] + C[4]) * &x + C[3]) * &x + C[2]) * &x + C[1]) * &x + C[0]
    })
}

fn bench(c: &mut Criterion) {
    let n = len();
    let xs: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 1e-3).collect();
    let ys: Vec<f32> = (0..n).map(|i| (i % 777) as f32 * 2e-3).collect();
    let cpu = Runtime::builder()
        .backend(Backend::Cpu)
        .build()
        .expect("cpu runtime");
    let gpu = Runtime::new().ok().filter(Runtime::has_gpu);
    let saxpy = Kernel::map2(|x: Expr<f32>, y: Expr<f32>| x * A + y);
    let poly = poly_kernel();

    let mut g = c.benchmark_group("saxpy");
    g.throughput(Throughput::Elements(n as u64)).sample_size(20);
    g.bench_function("rayon-hand", |b| {
        b.iter(|| {
            xs.par_iter()
                .zip(&ys)
                .map(|(x, y)| A * x + y)
                .collect::<Vec<f32>>()
        })
    });
    for (name, rt, p) in placements(&cpu, gpu.as_ref()) {
        g.bench_function(BenchmarkId::new("hybrid", name), |b| {
            b.iter(|| rt.map2(&xs, &ys, &saxpy, p).expect("saxpy").output)
        });
    }
    g.finish();

    let mut g = c.benchmark_group("poly10");
    g.throughput(Throughput::Elements(n as u64)).sample_size(20);
    g.bench_function("rayon-hand", |b| {
        b.iter(|| xs.par_iter().map(|&x| poly_hand(x)).collect::<Vec<f32>>())
    });
    for (name, rt, p) in placements(&cpu, gpu.as_ref()) {
        g.bench_function(BenchmarkId::new("hybrid", name), |b| {
            b.iter(|| rt.map(&xs, &poly, p).expect("poly").output)
        });
    }
    g.finish();
}

/// The placements to measure: the CPU device always, the GPU when there is one.
fn placements<'a>(
    cpu: &'a Runtime,
    gpu: Option<&'a Runtime>,
) -> Vec<(&'static str, &'a Runtime, Placement)> {
    let mut v = vec![("cpu", cpu, Placement::Cpu)];
    if let Some(g) = gpu {
        v.push(("gpu", g, Placement::Gpu));
    }
    v
}

criterion_group!(benches, bench);
criterion_main!(benches);
