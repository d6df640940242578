//! A signal chain (ten element-wise stages, then the mean) run three ways on each
//! placement this machine has, printing what each way moved over the bus and how
//! long it took:
//!
//! - `slices`: ten `map` calls and a `reduce`, each call's data to the device and
//!   back;
//! - `arrays`: the same stages on an [`hybrid::Array`], each stage's output left
//!   where it was computed (on a GPU: one upload, then nothing until the partials of
//!   the mean come back);
//! - `fused`: the stages and the mean as one kernel (`Array::lazy`), no intermediate
//!   written anywhere.
//!
//! Every way's mean is checked against an f64 reference computed by hand.
//!
//! `cargo run --release --example pipeline [-- --n 4000000] [--json]`

use std::time::Instant;

use hybrid::{Array, Expr, Kernel, Placement, Reduce, Report, Runtime};

#[path = "common/args.rs"]
mod args;
#[path = "common/chain.rs"]
mod chain;

struct Row {
    placement: String,
    way: &'static str,
    seconds: f64,
    bytes_to_devices: u64,
    bytes_from_devices: u64,
    kernels_fused: usize,
    mean: f64,
}

fn main() -> anyhow::Result<()> {
    let args = args::Args::from_env();
    let n = args.n(4_000_000)?;
    let json = args.json();
    let xs = chain::signal(n);
    let stages = chain::stages();
    let id = Kernel::map(|x: Expr<f32>| x);
    let exact: f64 = xs.iter().map(|&x| chain::by_hand(x) as f64).sum::<f64>() / n as f64;
    let rt = Runtime::new()?;
    let mut placements = vec![Placement::Cpu];
    if rt.has_gpu() {
        placements.extend([Placement::Gpu, Placement::Split(0.5)]);
    }
    placements.push(Placement::Auto);

    let mut rows = Vec::new();
    for p in placements {
        // each way twice: the first compiles and measures, the second is reported
        for rep in 0..2 {
            let keep = rep == 1;
            let t = Instant::now();
            let mut v = rt.map(&xs, &stages[0], p)?;
            let mut reports = vec![v.report.clone()];
            for k in &stages[1..] {
                v = rt.map(&v.output, k, p)?;
                reports.push(v.report.clone());
            }
            let s = rt.reduce(&v.output, &id, Reduce::Sum, p)?;
            reports.push(s.report);
            let r = row(p, "slices", t, &reports, 1, s.output);

            let t = Instant::now();
            let a = Array::from_slice(&xs);
            let mut l = a.lazy().fuse(false);
            for k in &stages {
                l = l.map(k);
            }
            let run = l.eval(&rt, p)?;
            let s = rt.reduce_array(&run.output, &id, Reduce::Sum, p)?;
            let r2 = row(p, "arrays", t, &[run.report, s.report], 1, s.output);

            let t = Instant::now();
            let a = Array::from_slice(&xs);
            let mut l = a.lazy();
            for k in &stages {
                l = l.map(k);
            }
            let s = l.reduce(&rt, Reduce::Sum, p)?;
            let fused = s.report.kernels_fused();
            let r3 = row(p, "fused", t, &[s.report], fused, s.output);
            if keep {
                rows.extend([r, r2, r3]);
            }
        }
    }
    for r in &rows {
        let mean = r.mean / n as f64;
        // ten stages of f32 rounding, then an f32 sum (hybrid::Reduce's bound)
        anyhow::ensure!(
            (mean - exact).abs() <= 1e-3 * exact.abs().max(1.0),
            "{} {}: mean {mean} vs {exact}",
            r.placement,
            r.way
        );
    }
    if json {
        let items: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{{\"placement\":\"{}\",\"way\":\"{}\",\"n\":{n},\"seconds\":{:.6},\"bytes_to_devices\":{},\"bytes_from_devices\":{},\"kernels_fused\":{},\"mean\":{}}}",
                    r.placement, r.way, r.seconds, r.bytes_to_devices, r.bytes_from_devices, r.kernels_fused, r.mean / n as f64
                )
            })
            .collect();
        println!("[{}]", items.join(",\n "));
        return Ok(());
    }
    println!("ten stages and a mean over {n} f32; exact mean (f64) {exact:.6}\n");
    println!(
        "{:<10} {:<8} {:>10} {:>14} {:>14} {:>6}  vs slices",
        "placement", "way", "time", "to devices", "from devices", "fused"
    );
    for r in &rows {
        let base = rows
            .iter()
            .find(|b| b.placement == r.placement && b.way == "slices")
            .map_or(r.seconds, |b| b.seconds);
        println!(
            "{:<10} {:<8} {:>8.1} ms {:>12} B {:>12} B {:>6}  {:.2}x",
            r.placement,
            r.way,
            r.seconds * 1e3,
            r.bytes_to_devices,
            r.bytes_from_devices,
            r.kernels_fused,
            base / r.seconds
        );
    }
    Ok(())
}

/// One way's figures from its reports.
fn row(
    p: Placement,
    way: &'static str,
    t: Instant,
    reports: &[Report],
    fused: usize,
    sum: f32,
) -> Row {
    Row {
        placement: p.to_string(),
        way,
        seconds: t.elapsed().as_secs_f64(),
        bytes_to_devices: reports.iter().map(Report::bytes_to_devices).sum(),
        bytes_from_devices: reports.iter().map(Report::bytes_from_devices).sum(),
        kernels_fused: fused,
        mean: sum as f64,
    }
}
