//! What a kernel parameter costs per call on the CPU: a 1,000-element saxpy whose `a`
//! is a `Param`, called with a new value every time (a CPU plan is built for each new
//! value) and with the same value (a cached plan), against the same kernel with `a`
//! as a literal, in the same run.

use criterion::{criterion_group, criterion_main, Criterion};
use hybrid::{Backend, Expr, Kernel, Param, Placement, Runtime};

fn bench(c: &mut Criterion) {
    let rt = Runtime::builder()
        .backend(Backend::Cpu)
        .build()
        .expect("cpu runtime");
    let n = 1000;
    let xs: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let ys = xs.clone();
    let a = Param::new(2.0f32);
    let with_param = Kernel::map2(|x: Expr<f32>, y: Expr<f32>| a.expr() * x + y);
    let literal = Kernel::map2(|x: Expr<f32>, y: Expr<f32>| x * 2.0 + y);
    let mut g = c.benchmark_group("param_1000");
    g.bench_function("literal", |b| {
        b.iter(|| rt.map2(&xs, &ys, &literal, Placement::Cpu).expect("map"))
    });
    g.bench_function("param_same_value", |b| {
        b.iter(|| rt.map2(&xs, &ys, &with_param, Placement::Cpu).expect("map"))
    });
    let mut v = 0.0f32;
    g.bench_function("param_new_value", |b| {
        b.iter(|| {
            v += 1.0;
            a.set(v);
            rt.map2(&xs, &ys, &with_param, Placement::Cpu).expect("map")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
