//! A bandwidth table in the manner of CUDA's `bandwidthTest`: for each size, host to
//! device and device to host GB/s and the latency of the smallest transfer, measured
//! through hybrid's transfer layer; then each GPU's fitted link (alpha, beta per
//! direction) and dispatch overhead.
//!
//! `cargo run --release --example transfer [-- --reps 5] [--json]`

use std::time::Instant;

use hybrid::Runtime;

#[path = "common/args.rs"]
mod args;

fn main() -> anyhow::Result<()> {
    let args = args::Args::from_env();
    let json = args.json();
    let reps: usize = args.get("--reps", 5)?;

    let rt = Runtime::new()?;
    let mut gpus = Vec::new();
    for (i, info) in rt.devices().iter().enumerate() {
        if info.kind.is_gpu() {
            gpus.push((i, info.clone()));
        }
    }
    if gpus.is_empty() {
        let why = rt.no_gpu_reason().unwrap_or("no gpu");
        anyhow::bail!("no gpu to measure: {why}");
    }
    let sizes: Vec<usize> = (12..=28).step_by(2).map(|k| 1usize << k).collect();
    let largest = sizes.last().copied().unwrap_or(0) / 4;
    let src: Vec<u32> = (0..largest as u32).collect();
    let mut dst = vec![0u32; largest];

    let mut out = Vec::new();
    for (dev, info) in &gpus {
        // The fastest of `reps` wall-clock runs of each direction, after a warm-up.
        let mut rows = Vec::new();
        for &bytes in &sizes {
            let n = bytes / 4;
            let mut time = |up: bool| -> anyhow::Result<f64> {
                let mut best = f64::INFINITY;
                for rep in 0..=reps {
                    let t = Instant::now();
                    if up {
                        rt.transfer(*dev, Some(&src[..n]), None)?;
                    } else {
                        rt.transfer::<u32>(*dev, None, Some(&mut dst[..n]))?;
                    }
                    if rep > 0 {
                        best = best.min(t.elapsed().as_secs_f64());
                    }
                }
                Ok(best)
            };
            let up = time(true)?;
            let down = time(false)?;
            rows.push((bytes, up, down));
        }
        let cal = rt
            .calibrations()
            .into_iter()
            .find(|(i, _)| i == info)
            .map(|(_, c)| c);
        if json {
            out.push(serde_json::json!({
                "device": info.to_string(),
                "rows": rows.iter().map(|(b, u, d)| serde_json::json!({
                    "bytes": b, "h2d_s": u, "d2h_s": d,
                    "h2d_gbps": *b as f64 / u / 1e9, "d2h_gbps": *b as f64 / d / 1e9,
                })).collect::<Vec<_>>(),
                "link": cal.as_ref().map(|c| serde_json::json!({
                    "up": { "alpha_s": c.link.up.alpha_s, "beta_bytes_per_s": c.link.up.beta_bytes_per_s },
                    "down": { "alpha_s": c.link.down.alpha_s, "beta_bytes_per_s": c.link.down.beta_bytes_per_s },
                    "dispatch_s": c.dispatch_s,
                    "reloaded": c.reloaded,
                    "path": c.path,
                })),
            }));
            continue;
        }
        println!("{info}");
        println!(
            "{:>12} {:>12} {:>12} {:>12} {:>12}",
            "size", "H2D GB/s", "D2H GB/s", "H2D latency", "D2H latency"
        );
        for (b, u, d) in &rows {
            println!(
                "{:>12} {:>12.2} {:>12.2} {:>9.1} us {:>9.1} us",
                size(*b),
                *b as f64 / u / 1e9,
                *b as f64 / d / 1e9,
                u * 1e6,
                d * 1e6
            );
        }
        match cal {
            Some(c) => {
                for (name, l) in [("H2D", c.link.up), ("D2H", c.link.down)] {
                    println!(
                        "fitted {name}: alpha {:.1} us, beta {:.2} GB/s",
                        l.alpha_s * 1e6,
                        l.beta_bytes_per_s / 1e9
                    );
                }
                println!(
                    "dispatch overhead {:.1} us; calibration {} {}",
                    c.dispatch_s * 1e6,
                    if c.reloaded {
                        "reloaded from"
                    } else {
                        "measured, stored in"
                    },
                    c.path.display()
                );
            }
            None => println!("no link calibration (it failed; see the warning above)"),
        }
        println!();
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

fn size(b: usize) -> String {
    if b >= 1 << 20 {
        format!("{} MiB", b >> 20)
    } else {
        format!("{} KiB", b >> 10)
    }
}
