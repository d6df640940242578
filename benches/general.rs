//! The cost of generality: saxpy and a degree-5 polynomial through `Kernel::new` and
//! `Runtime::call` (the n-input path: a tuple of arguments, rows of results) against
//! the same kernels through `Kernel::map2`/`map` and `Runtime::map2`/`map`, on the CPU
//! device, in the same run. The goal is >= 0.95x the speed of the old path.
//!
//! 16M elements, or 1M when `CI` is set.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hybrid::{Backend, Expr, Kernel, Placement, Runtime};

const A: f32 = 2.5;
const C: [f32; 6] = [0.5, -1.25, 0.75, 0.125, -0.0625, 0.03125];

fn len() -> usize {
    if std::env::var_os("CI").is_some() {
        1 << 20
    } else {
        1 << 24
    }
}

fn poly(x: Expr<f32>) -> Expr<f32> {
    ((((x.clone() * C[5] + C[4]) * &x + C[3]) * &x + C[2]) * &x + C[1]) * &x + C[0]
}

fn bench(c: &mut Criterion) {
    let n = len();
    let xs: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 1e-3).collect();
    let ys: Vec<f32> = (0..n).map(|i| (i % 777) as f32 * 2e-3).collect();
    let rt = Runtime::builder()
        .backend(Backend::Cpu)
        .build()
        .expect("cpu runtime");
    let old_saxpy = Kernel::map2(|x: Expr<f32>, y: Expr<f32>| x * A + y);
    let new_saxpy = Kernel::new(|(x, y): (Expr<f32>, Expr<f32>)| x * A + y);
    let old_poly = Kernel::map(poly);
    let new_poly = Kernel::new(|(x,): (Expr<f32>,)| poly(x));

    let mut g = c.benchmark_group("general-saxpy");
    g.throughput(Throughput::Elements(n as u64)).sample_size(20);
    g.bench_function("map2", |b| {
        b.iter(|| rt.map2(&xs, &ys, &old_saxpy, Placement::Cpu).expect("map2"))
    });
    g.bench_function("call", |b| {
        b.iter(|| {
            rt.call(&new_saxpy, (&xs, &ys), Placement::Cpu)
                .expect("call")
        })
    });
    g.finish();

    let mut g = c.benchmark_group("general-poly");
    g.throughput(Throughput::Elements(n as u64)).sample_size(20);
    g.bench_function("map", |b| {
        b.iter(|| rt.map(&xs, &old_poly, Placement::Cpu).expect("map"))
    });
    g.bench_function("call", |b| {
        b.iter(|| rt.call(&new_poly, (&xs,), Placement::Cpu).expect("call"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
