//! A dot product: `a * b` mapped and summed in one pass (no product array is ever
//! written), on every placement this machine has, against an f64 reference, with each
//! call's receipt. Only the partial sums come back from a GPU.
//!
//! `cargo run --release --example dot [-- --n 4000000]`

use hybrid::{Expr, Kernel, Placement, Reduce, Runtime};

#[path = "common/args.rs"]
mod args;

fn main() -> anyhow::Result<()> {
    let args = args::Args::from_env();
    let n = args.n(4_000_000)?;
    let a: Vec<f32> = (0..n).map(|i| ((i % 1000) as f32 - 500.0) * 1e-3).collect();
    let b: Vec<f32> = (0..n).map(|i| ((i % 777) as f32) * 1e-2).collect();
    let dot = Kernel::map2(|x: Expr<f32>, y: Expr<f32>| x * y);

    let exact: f64 = a.iter().zip(&b).map(|(x, y)| (x * y) as f64).sum();
    let abs: f64 = a.iter().zip(&b).map(|(x, y)| (x * y).abs() as f64).sum();
    // the bound hybrid::Reduce states for f32 sums
    let bound = 16.0 * abs / (1u64 << 24) as f64 + exact.abs() / (1u64 << 24) as f64;

    let rt = Runtime::new()?;
    let mut placements = vec![Placement::Cpu];
    if rt.has_gpu() {
        placements.extend([Placement::Gpu, Placement::Split(0.5)]);
    }
    placements.push(Placement::Auto);
    println!("dot product of {n} f32 pairs; exact (f64) {exact:.6}, bound {bound:.3e}\n");
    for p in placements {
        let run = rt.reduce2(&a, &b, &dot, Reduce::Sum, p)?;
        let err = (run.output as f64 - exact).abs();
        anyhow::ensure!(err <= bound, "{p}: error {err:e} over the bound {bound:e}");
        println!("== {p}: {} (error {err:.3e})\n{}", run.output, run.report);
    }
    Ok(())
}
