//! The suite examples' measurements: one workload run on every placement (CPU only,
//! GPU only, static splits, Auto) beside a hand-written rayon loop, interleaved in
//! shuffled rounds so a noisy shared machine slows them alike; each figure is its
//! placement's median run. Before that, the check of each placement's output against
//! the f64 reference. Printed as a table, or as JSON with `--json`.

#![allow(dead_code)]

use std::hint::black_box;
use std::time::Instant;

use anyhow::Result;
use hybrid::{Placement, Report, Run, Runtime};
use serde_json::{json, Value};

/// A workload of the suite, as its example and `compare` check and time it.
pub trait Workload {
    /// What one call gives.
    type Output;
    /// The workload's name in the output.
    const NAME: &'static str;
    /// What the check measures, and the largest value allowed against the reference.
    const ERROR: &'static str;
    const TOLERANCE: f64;
    /// The size, in words.
    fn size(&self) -> String;
    /// The library's call on `p`.
    fn run(&self, rt: &Runtime, p: Placement) -> hybrid::Result<Run<Self::Output>>;
    /// The same computed by hand with rayon.
    fn by_hand(&self) -> Self::Output;
    /// Each placement's error against the f64 reference.
    fn errors(&self, rt: &Runtime, placements: &[Placement]) -> Result<Vec<(Placement, f64)>>;
}

/// `w` checked on every placement against its reference, then timed on each and by
/// hand: (name, size, check, timings).
pub fn workload<W: Workload>(
    rt: &Runtime,
    placements: &[Placement],
    reps: usize,
    w: &W,
) -> Result<(&'static str, String, Check, Vec<Timing>)> {
    let check = check(W::ERROR, W::TOLERANCE, &w.errors(rt, placements)?)?;
    let timings = measure(placements, reps, &|p| Ok(w.run(rt, p)?.report), &|| {
        black_box(w.by_hand());
    })?;
    Ok((W::NAME, w.size(), check, timings))
}

/// An example's main once its arguments are read: `w` checked and timed on every
/// placement of the default runtime, printed as a table or JSON.
pub fn run<W: Workload>(w: &W, reps: usize, json: bool) -> Result<()> {
    let rt = Runtime::new()?;
    let (name, size, check, timings) = workload(&rt, &placements(&rt), reps, w)?;
    print(name, &size, &rt, &timings, &check, json);
    Ok(())
}

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

/// The placements measured: CPU and GPU where the runtime has them (`HYBRID_BACKEND`
/// may leave either out), splits of a quarter, a half and three quarters where it has
/// both; Auto always.
pub fn placements(rt: &Runtime) -> Vec<Placement> {
    let cpu = rt.devices().iter().any(|d| !d.kind.is_gpu());
    let gpu = rt.has_gpu();
    let mut p = Vec::new();
    if cpu {
        p.push(Placement::Cpu);
    }
    if gpu {
        p.push(Placement::Gpu);
    }
    if cpu && gpu {
        p.extend([0.25, 0.5, 0.75].map(Placement::Split));
    }
    p.push(Placement::Auto);
    p
}

/// The check of a workload's output against its f64 reference, on every placement.
pub struct Check {
    /// What the error measures, e.g. "abs error of a price".
    pub measure: &'static str,
    /// The largest error over the placements, and where it was.
    pub worst: f64,
    pub worst_at: String,
    /// The largest error allowed.
    pub tolerance: f64,
}

/// The largest of `errors`, NaN if any is NaN (`f64::max` would drop it), 0 if none.
pub fn worst(errors: impl IntoIterator<Item = f64>) -> f64 {
    errors
        .into_iter()
        .fold(0.0, |m, e| if e.is_nan() || e > m { e } else { m })
}

/// The check from each placement's error (`errors`, one per placement): an error
/// naming the placement when one is beyond `tolerance` (or NaN).
pub fn check(measure: &'static str, tolerance: f64, errors: &[(Placement, f64)]) -> Result<Check> {
    let mut c = Check {
        measure,
        worst: 0.0,
        worst_at: "-".into(),
        tolerance,
    };
    for &(p, e) in errors {
        anyhow::ensure!(
            e <= tolerance,
            "{p}: {measure} {e:.3e} against the f64 reference, beyond the tolerance {tolerance:.1e}"
        );
        if e >= c.worst {
            (c.worst, c.worst_at) = (e, p.to_string());
        }
    }
    Ok(c)
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
    let rayon = t
        .iter()
        .find(|x| x.placement.is_none())
        .map_or(f64::NAN, |x| x.seconds);
    let cpu = find(Placement::Cpu).map_or(f64::NAN, |x| x.seconds);
    let best = t
        .iter()
        .filter(|x| matches!(x.placement, Some(p) if p != Placement::Auto))
        .map(|x| x.seconds)
        .fold(f64::INFINITY, f64::min);
    let auto = find(Placement::Auto).map_or(f64::NAN, |x| x.seconds);
    (rayon / cpu, auto / best)
}

/// A point of a chart panel (`chart.rs`): (fraction of elements on the GPU, seconds).
pub type Point = (f64, f64);

/// Each static placement's point, CPU only at 0 and GPU only at 1, in order of the
/// fraction; and Auto's.
pub fn split_points(t: &[Timing]) -> (Vec<Point>, Option<Point>) {
    let mut sweep: Vec<Point> = t
        .iter()
        .filter_map(|x| match x.placement? {
            Placement::Cpu => Some((0.0, x.seconds)),
            Placement::Gpu => Some((1.0, x.seconds)),
            Placement::Split(f) => Some((f, x.seconds)),
            _ => None,
        })
        .collect();
    sweep.sort_by(|a, b| a.0.total_cmp(&b.0));
    let auto = t
        .iter()
        .find(|x| x.placement == Some(Placement::Auto))
        .map(|x| (x.gpu_fraction, x.seconds));
    (sweep, auto)
}

/// The measurements and the check as one JSON object.
pub fn json(workload: &str, size: &str, rt: &Runtime, t: &[Timing], check: &Check) -> Value {
    let (cpu_vs_rayon, auto_vs_best) = ratios(t);
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
    json!({
        "workload": workload,
        "size": size,
        "devices": rt.devices().iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "check": {
            "measure": check.measure,
            "max_error": check.worst,
            "at": check.worst_at,
            "tolerance": check.tolerance,
        },
        "runs": rows,
        "cpu_over_rayon_speed": cpu_vs_rayon,
        "auto_over_best_time": auto_vs_best,
        "auto_decision": auto.map(|r| r.decision().to_string()),
        "auto_inputs": auto.map(|r| r.inputs().iter().map(|m| m.to_string()).collect::<Vec<_>>()),
    })
}

/// Prints the measurements and the check as a table, or as one JSON object with
/// `--json`.
pub fn print(workload: &str, size: &str, rt: &Runtime, t: &[Timing], check: &Check, json: bool) {
    if json {
        println!("{}", self::json(workload, size, rt, t, check));
        return;
    }
    println!("{workload} ({size})");
    for d in rt.devices() {
        println!("  device: {d}");
    }
    table(t, check);
}

/// The check and the measurements as a table: one line per placement, the ratios, and
/// what Auto decided.
pub fn table(t: &[Timing], check: &Check) {
    let (cpu_vs_rayon, auto_vs_best) = ratios(t);
    println!(
        "  check against the f64 reference: max {} {:.2e} ({}), tolerance {:.1e}",
        check.measure, check.worst, check.worst_at, check.tolerance
    );
    let rayon = t
        .iter()
        .find(|x| x.placement.is_none())
        .map_or(f64::NAN, |x| x.seconds);
    println!(
        "  {:<12} {:>12} {:>10} {:>9}",
        "placement", "median", "gpu share", "vs rayon"
    );
    for x in t {
        println!(
            "  {:<12} {:>9.3} ms {:>9.0}% {:>8.2}x",
            x.name,
            x.seconds * 1e3,
            x.gpu_fraction * 100.0,
            rayon / x.seconds
        );
    }
    if cpu_vs_rayon.is_finite() {
        println!(
            "  cpu device vs hand-written rayon: {cpu_vs_rayon:.2}x the speed (>= 0.8 wanted)"
        );
    }
    println!("  auto / best static placement: {auto_vs_best:.2} (<= 1.10 wanted)");
    if let Some(r) = t
        .iter()
        .find(|x| x.placement == Some(Placement::Auto))
        .and_then(|x| x.report.as_ref())
    {
        println!("  {}", r.decision());
        for m in r.inputs() {
            println!("  input {m}");
        }
    }
}
