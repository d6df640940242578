//! The suite examples' measurements: one workload run on every placement (CPU only,
//! GPU only, static splits, Auto) beside a hand-written rayon loop, interleaved in
//! shuffled rounds so a noisy shared machine slows them alike; each figure is its
//! placement's median run. Printed as a table, or as JSON with `--json`.

#![allow(dead_code)]

use std::time::Instant;

use anyhow::Result;
use hybrid::{Placement, Report, Runtime};
use serde_json::{json, Value};

/// One placement's median run.
pub struct Timing {
    pub name: String,
    pub placement: Option<Placement>,
    pub seconds: f64,
    /// The fraction of elements GPUs computed (Auto's choice, or the split's).
    pub gpu_fraction: f64,
    /// The report of the median run (none for the rayon baseline).
    pub report: Option<Report>,
}

/// The placements measured: CPU, and with a GPU, GPU and splits of a quarter, a half
/// and three quarters; Auto always.
pub fn placements(rt: &Runtime) -> Vec<Placement> {
    let mut p = vec![Placement::Cpu];
    if rt.has_gpu() {
        p.push(Placement::Gpu);
        p.extend([0.25, 0.5, 0.75].map(Placement::Split));
    }
    p.push(Placement::Auto);
    p
}

/// A small deterministic shuffle of `0..n` for round `seed`.
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for i in (1..n).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v.swap(i, (s % (i as u64 + 1)) as usize);
    }
    v
}

/// Runs `run` on every placement and `baseline` (the rayon loop) `reps` times,
/// interleaved, after one warm-up round (which also lets Auto measure its models).
pub fn measure(
    placements: &[Placement],
    reps: usize,
    run: &dyn Fn(Placement) -> Result<Report>,
    baseline: &dyn Fn(),
) -> Result<Vec<Timing>> {
    let k = placements.len() + 1;
    let mut runs: Vec<Vec<(f64, Option<Report>)>> = (0..k).map(|_| Vec::new()).collect();
    for &p in placements {
        run(p)?;
    }
    baseline();
    for r in 0..reps.max(1) {
        for i in shuffled(k, r as u64 + 1) {
            let t = Instant::now();
            let report = match placements.get(i) {
                Some(&p) => Some(run(p)?),
                None => {
                    baseline();
                    None
                }
            };
            runs[i].push((t.elapsed().as_secs_f64(), report));
        }
    }
    Ok(runs
        .into_iter()
        .enumerate()
        .map(|(i, mut rs)| {
            rs.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (seconds, report) = rs.swap_remove(rs.len() / 2);
            let gpu_fraction = report.as_ref().map_or(0.0, |r| {
                let gpu: usize = r
                    .shares()
                    .iter()
                    .filter(|s| s.kind().is_gpu())
                    .map(|s| s.elements())
                    .sum();
                gpu as f64 / r.elements().max(1) as f64
            });
            let placement = placements.get(i).copied();
            Timing {
                name: placement.map_or_else(|| "rayon".into(), |p| p.to_string()),
                placement,
                seconds,
                gpu_fraction,
                report,
            }
        })
        .collect())
}

/// The ratios the suite is judged by: the CPU device against the hand-written rayon
/// loop (>= 0.8 is the floor, 1.0 the goal), and Auto against the best static point.
pub fn ratios(t: &[Timing]) -> (f64, f64) {
    let find = |p: Placement| t.iter().find(|x| x.placement == Some(p));
    let rayon = t.iter().find(|x| x.placement.is_none()).map_or(f64::NAN, |x| x.seconds);
    let cpu = find(Placement::Cpu).map_or(f64::NAN, |x| x.seconds);
    let best = t
        .iter()
        .filter(|x| matches!(x.placement, Some(p) if p != Placement::Auto))
        .map(|x| x.seconds)
        .fold(f64::INFINITY, f64::min);
    let auto = find(Placement::Auto).map_or(f64::NAN, |x| x.seconds);
    (rayon / cpu, auto / best)
}

/// Prints the measurements as a table, or as one JSON object with `--json`.
pub fn print(workload: &str, size: &str, rt: &Runtime, t: &[Timing], json: bool) {
    let (cpu_vs_rayon, auto_vs_best) = ratios(t);
    if json {
        let rows: Vec<Value> = t
            .iter()
            .map(|x| {
                json!({
                    "placement": x.name,
                    "seconds": x.seconds,
                    "gpu_fraction": x.gpu_fraction,
                })
            })
            .collect();
        let auto = t
            .iter()
            .find(|x| x.placement == Some(Placement::Auto))
            .and_then(|x| x.report.as_ref());
        let out = json!({
            "workload": workload,
            "size": size,
            "devices": rt.devices().iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            "runs": rows,
            "cpu_over_rayon_speed": cpu_vs_rayon,
            "auto_over_best_time": auto_vs_best,
            "auto_decision": auto.map(|r| r.decision().to_string()),
            "auto_inputs": auto.map(|r| r.inputs().iter().map(|m| m.to_string()).collect::<Vec<_>>()),
        });
        println!("{out}");
        return;
    }
    println!("{workload} ({size})");
    for d in rt.devices() {
        println!("  device: {d}");
    }
    println!("  {:<12} {:>12} {:>10}", "placement", "median", "gpu share");
    for x in t {
        println!(
            "  {:<12} {:>9.3} ms {:>9.0}%",
            x.name,
            x.seconds * 1e3,
            x.gpu_fraction * 100.0
        );
    }
    println!("  cpu device vs hand-written rayon: {cpu_vs_rayon:.2}x the speed (>= 0.8 wanted)");
    println!("  auto / best static placement: {auto_vs_best:.2} (<= 1.10 wanted)");
    if let Some(r) = t
        .iter()
        .find(|x| x.placement == Some(Placement::Auto))
        .and_then(|x| x.report.as_ref())
    {
        println!("  auto: {}", r.decision());
        for m in r.inputs() {
            println!("  input {m}");
        }
    }
}
