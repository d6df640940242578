//! The README's first example: one kernel, run on every placement this machine has,
//! with each call's receipt.
//!
//! `cargo run --release --example quickstart [-- --n 1000000] [--json]`

use hybrid::{Expr, Kernel, Placement, Runtime};

#[path = "common/args.rs"]
mod args;

fn main() -> anyhow::Result<()> {
    let args = args::Args::from_env();
    let json = args.json();
    let n = args.n(4_000_000)?;

    // One kernel, written once: runs on the CPU and on the GPU.
    let xs: Vec<f32> = (0..n).map(|i| i as f32 * 1e-3).collect();
    let k = Kernel::map(|x: Expr<f32>| (x * 2.0 + 1.0).sqrt());
    let ys = hybrid::map(&xs, &k)?; // global runtime, Placement::Auto

    let rt = Runtime::new()?;
    let mut placements = vec![Placement::Cpu];
    if rt.has_gpu() {
        placements.extend([Placement::Gpu, Placement::Split(0.5)]);
    }
    placements.push(Placement::Auto);

    let mut rows = Vec::new();
    for p in placements {
        let run = rt.map(&xs, &k, p)?;
        // Devices differ by rounding only: sqrt is within 3 ULP on a GPU.
        let worst = run
            .output
            .iter()
            .zip(&ys)
            .map(|(a, b)| ((a - b) / b.abs().max(1e-30)).abs())
            .fold(0.0f32, f32::max);
        anyhow::ensure!(
            worst <= 1e-6,
            "{p}: relative difference {worst} from hybrid::map"
        );
        if !json {
            println!("== {p}\n{}", run.report);
        }
        let shares: Vec<_> = run
            .report
            .shares()
            .iter()
            .map(|s| {
                serde_json::json!({
                    "device": s.device(), "kind": s.kind().name(), "elements": s.elements(),
                    "bytes_to_device": s.bytes_to_device(), "bytes_from_device": s.bytes_from_device(),
                    "upload_s": s.upload_s(), "compute_s": s.compute_s(), "download_s": s.download_s(),
                })
            })
            .collect();
        rows.push(serde_json::json!({
            "placement": p.to_string(), "elements": n, "wall_s": run.report.wall_s(),
            "elements_per_s": n as f64 / run.report.wall_s().max(1e-12),
            "max_rel_diff_vs_map": worst, "decision": run.report.decision(), "shares": shares,
        }));
    }
    if json {
        let devices: Vec<String> = rt.devices().iter().map(|d| d.to_string()).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "example": "quickstart", "devices": devices, "no_gpu": rt.no_gpu_reason(), "runs": rows,
            }))?
        );
    } else {
        println!("ys[..4] = {:?}", &ys[..ys.len().min(4)]);
    }
    Ok(())
}
