//! f64 against f32: saxpy and a degree-5 polynomial computed in f32 (`f32`), the same
//! computed in f64 inside the kernel (`f64`: f32 inputs cast up, the result cast down),
//! and the same over f64 data (`f64-data`: f64 inputs and result, twice the bytes), on
//! the CPU device and on the GPU when there is one (`Placement::Gpu`, transfers
//! included), in the same run. The f64 kernels run on the CPU's wide evaluator and, on
//! a GPU, with `SHADER_F64` (and `SHADER_INT64` for the f64 data).
//!
//! 4M elements, or 1M when `CI` is set.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hybrid::{Backend, Expr, Float, Kernel, Placement, Runtime, ScalarType};

const A: f64 = 2.5;
const C: [f64; 6] = [0.5, -1.25, 0.75, 0.125, -0.0625, 0.03125];

fn len() -> usize {
    if std::env::var_os("CI").is_some() {
        1 << 20
    } else {
        1 << 22
    }
}

/// Horner's rule in `T`, from literals given in f64.
fn poly<T: Float>(x: Expr<T>, lit: impl Fn(f64) -> T) -> Expr<T> {
    let mut acc = Expr::constant(lit(C[5]));
    for &c in C[..5].iter().rev() {
        acc = acc * &x + lit(c);
    }
    acc
}

/// A kernel's name, its f32 form and its f64 form.
type Pair = (&'static str, Kernel<f32, f32>, Kernel<f32, f32>);

/// The kernels over f64 data, in the order of [`kernels`].
type Wide = Kernel<(f64, f64), f64>;

fn wide_kernels() -> [Wide; 2] {
    [
        Kernel::new(|(x, y): (Expr<f64>, Expr<f64>)| x * A + y),
        Kernel::new(|(x, y): (Expr<f64>, Expr<f64>)| poly(x, |c| c) + y),
    ]
}

fn kernels() -> [Pair; 2] {
    let saxpy32 = Kernel::map2(|x: Expr<f32>, y: Expr<f32>| x * A as f32 + y);
    let saxpy64 = Kernel::map2(|x: Expr<f32>, y: Expr<f32>| {
        (x.cast::<f64>() * A + y.cast::<f64>()).cast::<f32>()
    });
    let poly32 = Kernel::map2(|x: Expr<f32>, y: Expr<f32>| poly(x, |c| c as f32) + y);
    let poly64 = Kernel::map2(|x: Expr<f32>, y: Expr<f32>| {
        (poly(x.cast::<f64>(), |c| c) + y.cast::<f64>()).cast::<f32>()
    });
    [("saxpy", saxpy32, saxpy64), ("poly5", poly32, poly64)]
}

fn bench(c: &mut Criterion) {
    let n = len();
    let xs: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 1e-3).collect();
    let ys: Vec<f32> = (0..n).map(|i| (i % 777) as f32 * 2e-3).collect();
    let xs64: Vec<f64> = xs.iter().map(|&x| x as f64).collect();
    let ys64: Vec<f64> = ys.iter().map(|&y| y as f64).collect();
    let cpu = Runtime::builder()
        .backend(Backend::Cpu)
        .build()
        .expect("cpu runtime");
    let gpu = Runtime::new().ok().filter(|rt| {
        rt.devices()
            .iter()
            .any(|d| d.kind.is_gpu() && d.types.contains(&ScalarType::F64))
    });
    if gpu.is_none() {
        eprintln!("f64 bench: no GPU with SHADER_F64, CPU only");
    }
    for ((name, k32, k64), kd) in kernels().into_iter().zip(wide_kernels()) {
        let mut g = c.benchmark_group(format!("f64-{name}"));
        g.throughput(Throughput::Elements(n as u64)).sample_size(10);
        let mut targets = vec![("cpu", &cpu, Placement::Cpu)];
        if let Some(rt) = &gpu {
            targets.push(("gpu", rt, Placement::Gpu));
        }
        for (dev, rt, p) in targets {
            g.bench_function(format!("{dev}/f32"), |b| {
                b.iter(|| rt.map2(&xs, &ys, &k32, p).expect("f32"))
            });
            g.bench_function(format!("{dev}/f64"), |b| {
                b.iter(|| rt.map2(&xs, &ys, &k64, p).expect("f64"))
            });
            g.bench_function(format!("{dev}/f64-data"), |b| {
                b.iter(|| rt.call(&kd, (&xs64, &ys64), p).expect("f64 data"))
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
