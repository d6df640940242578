//! CPU only, GPU only, a sweep of static splits, and Auto, for three kernels: saxpy
//! (memory-bound), a degree-8 polynomial (medium) and a 32-step loop (compute-heavy);
//! then for the benchmark suite's six workloads.
//!
//! ```sh
//! cargo run --release --example compare            # table on stdout, charts in target/compare*.svg
//! cargo run --release --example compare -- --quick # smaller sizes, coarser sweep
//! cargo run --release --example compare -- --suite # the six workloads only
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
//! Last, the suite: Black-Scholes, n-body, Mandelbrot, a 5x5 blur, matrix multiply and
//! k-means assignment, each at its example's `--quick` size (the examples
//! `blackscholes.rs` ... `kmeans.rs` are included here as modules, so each workload is
//! written once), checked against its f64 reference, then measured CPU only, GPU only,
//! split a quarter, a half and three quarters, Auto, and by hand with rayon
//! (`common/measure.rs`): a table per workload, a panel per workload in
//! `target/compare.suite.svg`, and `"suite"` in the JSON. It comes after the sections
//! above, which are unchanged, so the one command answers for real workloads too;
//! `--suite` runs it alone.
//!
//! The measuring, the tables and the charts are in `examples/common/` (`sweep.rs`,
//! `table.rs`, `chart.rs`, `measure.rs`): this file says what is compared.

#![allow(clippy::duplicate_mod)]

use std::path::Path;

use anyhow::Result;
use hybrid::{fold, Expr, Kernel, Runtime};
use serde_json::{json, Value};

#[path = "common/args.rs"]
mod args;
#[path = "common/chart.rs"]
mod chart;
#[path = "common/measure.rs"]
mod measure;
#[path = "common/sweep.rs"]
mod sweep;
#[path = "common/table.rs"]
mod table;

// The suite's workloads, each written once, in its example (their `main`s unused here).
// Each brings its own copy of the common modules (clippy's duplicate_mod): nothing of
// theirs crosses into this file but std and hybrid types, so the copies never meet.
#[allow(dead_code)]
#[path = "blackscholes.rs"]
mod blackscholes;
#[allow(dead_code)]
#[path = "blur.rs"]
mod blur;
#[allow(dead_code)]
#[path = "kmeans.rs"]
mod kmeans;
#[allow(dead_code)]
#[path = "mandelbrot.rs"]
mod mandelbrot;
#[allow(dead_code)]
#[path = "matmul.rs"]
mod matmul;
#[allow(dead_code)]
#[path = "nbody.rs"]
mod nbody;

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
    let svg_path = Path::new(&svg_path);
    let reps = if quick { 3 } else { 5 };

    let rt = Runtime::new()?;
    if !json {
        table::devices(&rt);
    }
    let mut out = json!({
        "devices": rt.devices().iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "gpu": rt.has_gpu(),
    });
    if !args.has("--suite") {
        for (key, value) in kernels(&rt, quick, json, reps, svg_path)? {
            out[key] = value;
        }
    }
    out["suite"] = suite(&rt, json, reps, &svg_path.with_extension("suite.svg"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

/// The three kernels at two sizes, every way; Auto on a small input; the arithmetic
/// intensity sweep. Prints the tables (without `--json`), writes the charts, and gives
/// the JSON's entries.
fn kernels(
    rt: &Runtime,
    quick: bool,
    json: bool,
    reps: usize,
    svg_path: &Path,
) -> Result<Vec<(&'static str, Value)>> {
    let sizes: Vec<usize> = if quick {
        vec![1 << 20, 4 << 20]
    } else {
        vec![1 << 20, 16 << 20]
    };
    let steps = if quick { 4 } else { 10 };
    if !json {
        table::splits_header();
    }
    // every kernel at every size: CPU, GPU, a sweep of splits, Auto
    let (mut rows, mut summary, mut panels) = (Vec::new(), Vec::new(), Vec::new());
    for case in cases() {
        for &n in &sizes {
            let s = sweep::splits(rt, &case.kernel, n, steps, reps)?;
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
    let (cpu_small, auto_small) = sweep::small_overhead(rt, &cases()[0].kernel, quick)?;
    // arithmetic intensity: k multiply-adds per element
    let (n, ks) = sweep::intensity_plan(quick);
    if !json {
        table::intensity_header(n);
    }
    let mut intensity = Vec::new();
    for &k in ks {
        let row = sweep::intensity(rt, k, n)?;
        if !json {
            table::intensity(&row);
        }
        intensity.push(row);
    }
    let gpu = rt.has_gpu();
    if !json {
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
        write(svg_path, &chart::splits(&panels)?)?;
        let path = svg_path.with_extension("intensity.svg");
        write(&path, &chart::intensity(&intensity)?)?;
        if !json {
            println!("charts: {}, {}", svg_path.display(), path.display());
        }
    }
    Ok(vec![
        ("rows", json!(rows)),
        ("summary", json!(summary)),
        (
            "intensity",
            json!(intensity
                .iter()
                .map(table::intensity_json)
                .collect::<Vec<_>>()),
        ),
        (
            "small",
            json!({"elements": sweep::SMALL, "cpu_s": cpu_small, "auto_s": auto_small, "auto_over_cpu": auto_small / cpu_small}),
        ),
    ])
}

/// The suite's six workloads, each at its `--quick` size: a table each (without
/// `--json`), a chart panel each (with a GPU), and one JSON object each.
fn suite(rt: &Runtime, json: bool, reps: usize, svg_path: &Path) -> Result<Value> {
    if !json {
        println!("\nthe benchmark suite, each workload at its example's --quick size");
    }
    let p = &measure::placements(rt);
    let mut rows = Vec::new();
    let mut panels = Vec::new();
    let mut show = |(name, size, check, timings): (&str, String, measure::Check, Vec<_>)| {
        if !json {
            println!("\n{name} ({size})");
            measure::table(&timings, &check);
        }
        let (sweep, auto) = measure::split_points(&timings);
        if let Some(auto) = auto {
            let title = format!("{name} ({size})");
            panels.push(chart::Panel { title, sweep, auto });
        }
        rows.push(measure::json(name, &size, rt, &timings, &check));
    };
    use {blackscholes as bs, kmeans as km, mandelbrot as mb};
    show(measure::workload(
        rt,
        p,
        reps,
        &bs::BlackScholes::new(bs::QUICK),
    )?);
    show(measure::workload(
        rt,
        p,
        reps,
        &nbody::NBody::new(nbody::QUICK),
    )?);
    let m = mb::Mandelbrot::new(mb::QUICK, mb::MAX_ITER);
    show(measure::workload(rt, p, reps, &m)?);
    show(measure::workload(
        rt,
        p,
        reps,
        &blur::Blur::new(blur::QUICK),
    )?);
    show(measure::workload(
        rt,
        p,
        reps,
        &matmul::Matmul::new(matmul::QUICK),
    )?);
    show(measure::workload(
        rt,
        p,
        reps,
        &km::KMeans::new(km::QUICK, km::K),
    )?);
    if rt.has_gpu() {
        write(svg_path, &chart::splits(&panels)?)?;
        if !json {
            println!("chart: {}", svg_path.display());
        }
    }
    Ok(Value::Array(rows))
}

/// Writes `text` to `path`, making its folder.
fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)?;
    Ok(())
}
