//! CPU only, GPU only, a sweep of static splits, and Auto, for three kernels: saxpy
//! (memory-bound), a degree-8 polynomial (medium) and a 32-step loop (compute-heavy).
//!
//! ```sh
//! cargo run --release --example compare            # table on stdout, chart in target/compare.svg
//! cargo run --release --example compare -- --quick # smaller sizes, coarser sweep
//! cargo run --release --example compare -- --json  # the same data as JSON
//! ```
//!
//! Each time is the median of a few runs, after Auto has had a few calls to measure
//! the devices. "transfer" is the share of the devices' stage time spent moving data.
//!
//! Then an arithmetic-intensity sweep: a loop of `k` multiply-adds per element, `k`
//! from 1 to 1,000, run CPU only, GPU only, split and Auto, to show where the GPU
//! starts to win once its transfers are counted and where a split beats both.
//!
//! The measuring, the tables and the charts are in `examples/common/` (`sweep.rs`,
//! `table.rs`, `chart.rs`): this file says what is compared.

use anyhow::Result;
use hybrid::{fold, Expr, Kernel, Runtime};
use serde_json::json;

#[path = "common/args.rs"]
mod args;
#[path = "common/chart.rs"]
mod chart;
#[path = "common/sweep.rs"]
mod sweep;
#[path = "common/table.rs"]
mod table;

struct Case {
    name: &'static str,
    kind: &'static str,
    kernel: Kernel<f32, f32>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "saxpy",
            kind: "memory-bound",
            kernel: Kernel::map2(|x: Expr<f32>, y: Expr<f32>| x * 2.5 + y),
        },
        Case {
            name: "poly8",
            kind: "medium",
            kernel: Kernel::map2(|x: Expr<f32>, _y: Expr<f32>| {
                let c = [
                    0.5f32, -1.25, 0.75, 0.125, -0.0625, 0.03125, -0.015, 0.007, -0.003,
                ];
                c[1..]
                    .iter()
                    .fold(Expr::constant(c[0]), |acc, &k| acc * &x + k)
            }),
        },
        Case {
            name: "loop32",
            kind: "compute-heavy",
            kernel: Kernel::map2(|x: Expr<f32>, y: Expr<f32>| {
                fold(32, x, |acc, _| (acc.clone() * acc * 0.5 + &y).min(4.0))
            }),
        },
    ]
}

fn main() -> Result<()> {
    let args = args::Args::from_env();
    let quick = args.has("--quick");
    let json = args.json();
    let svg_path = args
        .value("--svg")?
        .unwrap_or("target/compare.svg")
        .to_string();
    let sizes: Vec<usize> = if quick {
        vec![1 << 20, 4 << 20]
    } else {
        vec![1 << 20, 16 << 20]
    };
    let (steps, reps) = if quick { (4, 3) } else { (10, 5) };

    let rt = Runtime::new()?;
    if !json {
        table::devices(&rt);
        table::splits_header();
    }
    // every kernel at every size: CPU, GPU, a sweep of splits, Auto
    let (mut rows, mut summary, mut panels) = (Vec::new(), Vec::new(), Vec::new());
    for case in cases() {
        for &n in &sizes {
            let s = sweep::splits(&rt, &case.kernel, n, steps, reps)?;
            if !json {
                table::splits(case.name, &s);
            }
            rows.extend(table::splits_json(case.name, case.kind, &s));
            let ratio = s.auto_over_best();
            summary
                .push(json!({"kernel": case.name, "elements": n, "auto_over_best_sweep": ratio}));
            if Some(&n) == sizes.last() {
                let title = format!("{} ({}), {n} elements", case.name, case.kind);
                panels.push(chart::Panel::new(title, &s.sweep, &s.auto));
            }
        }
    }
    // Auto's overhead on a small input, against the CPU-only call
    let (cpu_small, auto_small) = sweep::small_overhead(&rt, &cases()[0].kernel, quick)?;
    // arithmetic intensity: k multiply-adds per element
    let (n, ks) = sweep::intensity_plan(quick);
    if !json {
        table::intensity_header(n);
    }
    let mut intensity = Vec::new();
    for &k in ks {
        let row = sweep::intensity(&rt, k, n)?;
        if !json {
            table::intensity(&row);
        }
        intensity.push(row);
    }
    let gpu = rt.has_gpu();
    if json {
        let out = json!({
            "devices": rt.devices().iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            "gpu": gpu, "rows": rows, "summary": summary,
            "intensity": intensity.iter().map(table::intensity_json).collect::<Vec<_>>(),
            "small": {"elements": sweep::SMALL, "cpu_s": cpu_small, "auto_s": auto_small, "auto_over_cpu": auto_small / cpu_small},
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        if gpu {
            table::intensity_summary(&intensity);
        }
        println!(
            "{} elements: cpu {:.2} us, auto {:.2} us per call: auto / cpu = {:.2}",
            sweep::SMALL,
            cpu_small * 1e6,
            auto_small * 1e6,
            auto_small / cpu_small
        );
    }
    if gpu && !panels.is_empty() {
        let path = std::path::Path::new(&svg_path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, chart::splits(&panels)?)?;
        let path = path.with_extension("intensity.svg");
        std::fs::write(&path, chart::intensity(&intensity)?)?;
        if !json {
            println!("charts: {svg_path}, {}", path.display());
        }
    }
    Ok(())
}
