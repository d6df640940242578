//! A chain of ten element-wise maps over 16M f32 (1M when `CI` is set), run four ways
//! in the same process: ten `map` calls on slices, an unfused chain on arrays (each
//! stage's output stays where it was computed), a fused chain on arrays (one kernel),
//! and by hand with rayon (one pass, the baseline). Each way ends with the result on
//! the host. On every device the runtime has (CPU; the GPU where one exists).

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use hybrid::{Array, Backend, Placement, Runtime};
use rayon::prelude::*;

#[path = "../examples/common/chain.rs"]
mod chain;

fn len() -> usize {
    if std::env::var_os("CI").is_some() {
        1 << 20
    } else {
        1 << 24
    }
}

fn bench(c: &mut Criterion) {
    let n = len();
    let xs = chain::signal(n);
    let stages = chain::stages();
    let cpu = Runtime::builder()
        .backend(Backend::Cpu)
        .build()
        .expect("cpu runtime");
    let gpu = Runtime::new().ok().filter(Runtime::has_gpu);
    let mut runtimes = vec![("cpu", &cpu, Placement::Cpu)];
    if let Some(g) = &gpu {
        runtimes.push(("gpu", g, Placement::Gpu));
    }

    let mut g = c.benchmark_group("chain10");
    g.throughput(Throughput::Elements(n as u64)).sample_size(10);
    g.bench_function("rayon-hand-fused", |b| {
        b.iter(|| {
            xs.par_iter()
                .map(|&x| chain::by_hand(x))
                .collect::<Vec<f32>>()
        })
    });
    for (name, rt, p) in &runtimes {
        g.bench_function(BenchmarkId::new("slices", name), |b| {
            b.iter(|| {
                let mut v = rt.map(&xs, &stages[0], *p).expect("map").output;
                for k in &stages[1..] {
                    v = rt.map(&v, k, *p).expect("map").output;
                }
                v
            })
        });
        for (way, fuse) in [("arrays", false), ("arrays-fused", true)] {
            g.bench_function(BenchmarkId::new(way, name), |b| {
                b.iter_batched(
                    || Array::from_slice(&xs),
                    |a| {
                        let mut l = a.lazy().fuse(fuse);
                        for k in &stages {
                            l = l.map(k);
                        }
                        l.to_vec(rt, *p).expect("chain").output
                    },
                    BatchSize::LargeInput,
                )
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
