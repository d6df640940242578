//! Statistics without a histogram or any intermediate array: count, mean, variance,
//! min and max of a signal, each a reduction that maps and combines in one pass over
//! the data. The variance sums squared deviations from a shift (the first sample), so
//! a large mean does not cancel the digits that matter.
//!
//! `cargo run --release --example stats [-- --n 4000000] [--placement cpu|gpu|auto]`

use hybrid::{Expr, Kernel, Placement, Reduce, Runtime};

#[path = "common/args.rs"]
mod args;

fn main() -> anyhow::Result<()> {
    let args = args::Args::from_env();
    let n = args.n(4_000_000)?;
    let placement = match args.value("--placement")? {
        Some("cpu") => Placement::Cpu,
        Some("gpu") => Placement::Gpu,
        _ => Placement::Auto,
    };
    // a noisy sine around 1000
    let xs: Vec<f32> = (0..n)
        .map(|i| {
            let t = i as f32 * 1e-3;
            1000.0 + t.sin() * 3.0 + ((i * 7919) % 1000) as f32 * 1e-3
        })
        .collect();
    anyhow::ensure!(n > 0, "--n must be positive");
    let shift = xs[0];
    let rt = Runtime::new()?;

    let sum = rt.sum(&xs, placement)?;
    let dev = Kernel::map(move |x: Expr<f32>| {
        let d = x - shift;
        d.clone() * d
    });
    let shifted = Kernel::map(move |x: Expr<f32>| x - shift);
    let sq = rt.reduce(&xs, &dev, Reduce::Sum, placement)?;
    let lin = rt.reduce(&xs, &shifted, Reduce::Sum, placement)?;
    let lo = rt.reduce(&xs, &Kernel::map(|x: Expr<f32>| x), Reduce::Min, placement)?;
    let hi = rt.reduce(&xs, &Kernel::map(|x: Expr<f32>| x), Reduce::Max, placement)?;

    let nf = n as f64;
    let mean = sum.output as f64 / nf;
    let m1 = lin.output as f64 / nf;
    let variance = (sq.output as f64 / nf - m1 * m1).max(0.0);

    // the same statistics in f64, sequentially, for comparison
    let mean64 = xs.iter().map(|&x| x as f64).sum::<f64>() / nf;
    let var64 = xs.iter().map(|&x| (x as f64 - mean64).powi(2)).sum::<f64>() / nf;
    println!("{n} samples on {placement}");
    println!("  mean     {mean:.6}   (f64 reference {mean64:.6})");
    println!("  variance {variance:.6}   (f64 reference {var64:.6})");
    println!("  min {}  max {}", lo.output, hi.output);
    anyhow::ensure!(((mean - mean64) / mean64).abs() < 1e-5, "mean off");
    anyhow::ensure!(((variance - var64) / var64).abs() < 1e-3, "variance off");
    for (what, report) in [
        ("sum", &sum.report),
        ("sum of squared deviations", &sq.report),
        ("min", &lo.report),
    ] {
        println!("\n== {what}\n{report}");
    }
    Ok(())
}
