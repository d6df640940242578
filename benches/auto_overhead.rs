//! What `Placement::Auto` costs over the placement it chose: a two-input kernel (a
//! 16-step fold of `mul_add`) at 256K, 1M, 4M and 16M f32 (64K and 256K when `CI` is
//! set), `Auto` and `Cpu` called in turn on one runtime, 41 calls each per size.
//!
//! ```sh
//! cargo bench --bench auto_overhead              # a table
//! cargo bench --bench auto_overhead -- --json    # the same as JSON
//! cargo bench --bench auto_overhead -- --reps 81
//! ```
//!
//! Not criterion: criterion measures one function at a time, and on a noisy shared
//! machine the two placements must be measured side by side, alternately, for the
//! ratio to mean anything. Each size prints the median seconds of each placement, the
//! quartiles (how noisy the machine was), the ratio of medians Auto / Cpu, and the
//! devices Auto gave elements to (in how many of its calls). When Auto gives a GPU
//! nothing, the ratio should be 1.

use std::collections::BTreeMap;
use std::time::Instant;

use hybrid::{fold, Expr, Kernel, Placement, Runtime};
use serde_json::json;

// `cargo bench` adds `--bench` (and any filter) to the line: the parser ignores them
#[path = "../examples/common/args.rs"]
mod args;

/// Sizes, elements: `--n` alone when given.
fn sizes(args: &args::Args) -> anyhow::Result<Vec<usize>> {
    if args.value("--n")?.is_some() {
        return Ok(vec![args.n(0)?]);
    }
    Ok(if std::env::var_os("CI").is_some() {
        vec![1 << 16, 1 << 18]
    } else {
        vec![1 << 18, 1 << 20, 1 << 22, 1 << 24]
    })
}

/// The `q` quantile of sorted `v` (nearest rank).
fn quantile(v: &[f64], q: f64) -> f64 {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let args = args::Args::from_env();
    let json = args.json();
    let reps = args.get("--reps", 41usize)?.max(1);
    let warmup = args.get("--warmup", 5usize)?;

    let rt = Runtime::new()?;
    let kernel =
        Kernel::map2(|x: Expr<f32>, y: Expr<f32>| fold(16, x, |acc, _| acc.mul_add(&y, 0.5)));
    if !json {
        for d in rt.devices() {
            println!("device: {d}");
        }
        println!("{reps} calls of each placement per size, alternating, after {warmup} of each");
        println!(
            "\n{:>9} {:>10} {:>21} {:>10} {:>21} {:>9}  auto gave elements to",
            "elements", "cpu", "(p25..p75)", "auto", "(p25..p75)", "auto/cpu"
        );
    }
    let mut rows = Vec::new();
    for n in sizes(&args)? {
        let xs: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 1e-3).collect();
        let ys: Vec<f32> = (0..n).map(|i| (i % 7) as f32 * 0.1).collect();
        // Auto's first calls at a size probe and teach the models
        for _ in 0..warmup {
            rt.map2(&xs, &ys, &kernel, Placement::Auto)?;
            rt.map2(&xs, &ys, &kernel, Placement::Cpu)?;
        }
        let (mut cpu, mut auto) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
        // per call, seconds outside the devices' runs (placing, allocating, reporting)
        let (mut cpu_out, mut auto_out) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
        // device name: (calls that gave it elements, elements over all calls)
        let mut given: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        // Auto's decisions (the numbers in them cut off), how many calls each
        let mut decisions: BTreeMap<String, usize> = BTreeMap::new();
        for r in 0..reps {
            // alternate which goes first, so neither always follows the other
            let order = if r % 2 == 0 {
                [Placement::Auto, Placement::Cpu]
            } else {
                [Placement::Cpu, Placement::Auto]
            };
            for p in order {
                let t = Instant::now();
                let run = rt.map2(&xs, &ys, &kernel, p)?;
                let s = t.elapsed().as_secs_f64();
                std::hint::black_box(&run.output);
                let busy = run
                    .report
                    .shares()
                    .iter()
                    .map(|s| s.busy_s())
                    .fold(0.0, f64::max);
                if p == Placement::Auto {
                    auto.push(s);
                    auto_out.push(s - busy);
                    let d = run.report.decision();
                    let d = d.split(|c: char| c.is_ascii_digit()).next().unwrap_or(d);
                    *decisions.entry(d.trim_end().to_string()).or_default() += 1;
                    for sh in run.report.shares() {
                        let e = given.entry(sh.device().to_string()).or_default();
                        if sh.elements() > 0 {
                            e.0 += 1;
                        }
                        e.1 += sh.elements();
                    }
                } else {
                    cpu.push(s);
                    cpu_out.push(s - busy);
                }
            }
        }
        for v in [&mut cpu, &mut auto, &mut cpu_out, &mut auto_out] {
            v.sort_by(f64::total_cmp);
        }
        let (c_out, a_out) = (quantile(&cpu_out, 0.5), quantile(&auto_out, 0.5));
        let (c, a) = (quantile(&cpu, 0.5), quantile(&auto, 0.5));
        let to: Vec<String> = given
            .iter()
            .filter(|(_, g)| g.0 > 0)
            .map(|(d, g)| format!("{d} ({}/{reps} calls)", g.0))
            .collect();
        if !json {
            let q = |v: &[f64]| {
                format!(
                    "({:.2}..{:.2} ms)",
                    quantile(v, 0.25) * 1e3,
                    quantile(v, 0.75) * 1e3
                )
            };
            println!(
                "{n:>9} {:>7.2} ms {:>21} {:>7.2} ms {:>21} {:>9.3}  {}",
                c * 1e3,
                q(&cpu),
                a * 1e3,
                q(&auto),
                a / c,
                to.join(", ")
            );
            println!(
                "{:>9} outside the devices' runs: cpu {:.3} ms, auto {:.3} ms (medians)",
                "",
                c_out * 1e3,
                a_out * 1e3
            );
            for (d, k) in &decisions {
                println!("{:>9} {k:>2} x {d}", "");
            }
        }
        rows.push(json!({
            "elements": n,
            "cpu_s": c, "cpu_p25_s": quantile(&cpu, 0.25), "cpu_p75_s": quantile(&cpu, 0.75),
            "auto_s": a, "auto_p25_s": quantile(&auto, 0.25), "auto_p75_s": quantile(&auto, 0.75),
            "auto_over_cpu": a / c, "cpu_outside_runs_s": c_out, "auto_outside_runs_s": a_out, "auto_decisions": decisions,
            "auto_devices": given.iter().map(|(d, g)| json!({
                "device": d, "calls_with_elements": g.0, "elements": g.1,
            })).collect::<Vec<_>>(),
        }));
    }
    if json {
        let out = json!({
            "devices": rt.devices().iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            "reps": reps, "rows": rows,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}
