//! The measurements behind `examples/compare.rs`: every placement of one kernel run
//! side by side (a sweep of static splits between CPU only and GPU only, and Auto),
//! the arithmetic-intensity sweep, and Auto's cost on a small input.
//!
//! Placements are measured interleaved, each round in its own shuffled order, so that
//! a noisy shared machine slows them alike; each point is its placement's median run.

// compare.rs uses all of it; a bench or example including it may use less
#![allow(dead_code)]

use std::time::{Duration, Instant};

use anyhow::Result;
use hybrid::{fold, Expr, Kernel, Placement, Report, Runtime};

/// One placement's median run.
pub struct Point {
    pub placement: String,
    /// The GPU's fraction, for a `Split`.
    pub fraction: Option<f64>,
    pub seconds: f64,
    /// The GPU shares' compute stage alone (the longest, when there are several).
    pub gpu_compute: f64,
    /// The fraction of elements the GPUs computed.
    pub gpu_fraction: f64,
    /// The share of the devices' stage time spent moving data.
    pub transfer: f64,
}

/// Runs every placement `reps` times, interleaved: each round runs every placement
/// once, in an order of its own, so no placement always follows the same one (a run
/// right after a software GPU's can find its threads still spinning; a rotation is
/// not enough, each placement would keep its predecessor). Returns each placement's
/// median run, in the order given.
pub fn measure_all(
    rt: &Runtime,
    k: &Kernel<f32, f32>,
    xs: &[f32],
    ys: &[f32],
    placements: &[Placement],
    reps: usize,
) -> Result<Vec<Point>> {
    let mut runs: Vec<Vec<(f64, Report)>> = placements.iter().map(|_| Vec::new()).collect();
    for r in 0..reps.max(1) {
        for i in shuffled(placements.len(), r as u64 + 1) {
            let p = placements[i];
            let t = Instant::now();
            let run = rt.map2(xs, ys, k, p)?;
            runs[i].push((t.elapsed().as_secs_f64(), run.report));
        }
    }
    placements
        .iter()
        .zip(runs)
        .map(|(&p, mut runs)| {
            runs.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mid = runs.len() / 2;
            let (seconds, r) = runs
                .into_iter()
                .nth(mid)
                .ok_or_else(|| anyhow::anyhow!("no runs"))?;
            Ok(point(p, seconds, &r, xs.len()))
        })
        .collect()
}

/// `0..len` shuffled by a xorshift seeded with `seed` (the same order every run).
fn shuffled(len: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ seed;
    for j in (1..order.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(j, (state % (j as u64 + 1)) as usize);
    }
    order
}

fn point(p: Placement, seconds: f64, r: &Report, n: usize) -> Point {
    let gpu = r.shares().iter().filter(|s| s.kind().is_gpu());
    let gpu_elements: usize = gpu.clone().map(|s| s.elements()).sum();
    let (mut moving, mut all) = (0.0, 0.0);
    for s in r.shares() {
        moving += s.upload_s() + s.download_s();
        all += s.upload_s() + s.compute_s() + s.download_s();
    }
    Point {
        placement: p.to_string(),
        fraction: match p {
            Placement::Split(f) => Some(f),
            _ => None,
        },
        seconds,
        gpu_compute: gpu.map(|s| s.compute_s()).fold(0.0, f64::max),
        gpu_fraction: if n == 0 {
            0.0
        } else {
            gpu_elements as f64 / n as f64
        },
        transfer: if all > 0.0 { moving / all } else { 0.0 },
    }
}

/// One kernel at one size, every way.
pub struct Splits {
    pub elements: usize,
    /// CPU only, then GPU only when there is a GPU.
    pub single: Vec<Point>,
    /// `Split(f)` for `f` from 0 to 1 (empty without a GPU).
    pub sweep: Vec<Point>,
    pub auto: Point,
}

impl Splits {
    pub fn cpu_s(&self) -> f64 {
        self.single[0].seconds
    }

    /// Auto's time over the best of CPU only and the sweep's points.
    pub fn auto_over_best(&self) -> f64 {
        let best = self
            .sweep
            .iter()
            .map(|p| p.seconds)
            .fold(self.cpu_s(), f64::min);
        self.auto.seconds / best
    }

    /// Every point: CPU, GPU, the sweep, Auto.
    pub fn points(&self) -> impl Iterator<Item = &Point> {
        self.single.iter().chain(&self.sweep).chain([&self.auto])
    }
}

/// CPU only, GPU only, `Split` at `steps + 1` fractions from 0 to 1, and Auto, for
/// `kernel` over `n` elements, `reps` runs each, after Auto has had a few calls to
/// measure the devices.
pub fn splits(
    rt: &Runtime,
    kernel: &Kernel<f32, f32>,
    n: usize,
    steps: usize,
    reps: usize,
) -> Result<Splits> {
    let xs: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 1e-3).collect();
    let ys: Vec<f32> = (0..n).map(|i| (i % 7) as f32 * 0.1).collect();
    // let Auto measure the devices (the first call probes a GPU with no model)
    for _ in 0..3 {
        rt.map2(&xs, &ys, kernel, Placement::Auto)?;
    }
    let gpu = rt.has_gpu();
    let mut placements = vec![Placement::Cpu];
    if gpu {
        placements.push(Placement::Gpu);
        placements.extend((0..=steps).map(|i| Placement::Split(i as f64 / steps as f64)));
    }
    placements.push(Placement::Auto);
    let mut single = measure_all(rt, kernel, &xs, &ys, &placements, reps)?;
    let auto = single
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no auto point"))?;
    let sweep = if gpu { single.split_off(2) } else { Vec::new() };
    Ok(Splits {
        elements: n,
        single,
        sweep,
        auto,
    })
}

/// The arithmetic-intensity sweep's size and its multiply-adds per element.
pub fn intensity_plan(quick: bool) -> (usize, &'static [u32]) {
    if quick {
        (1 << 18, &[1, 16, 256, 1000])
    } else {
        (1 << 20, &[1, 4, 16, 64, 256, 1000])
    }
}

/// One `k` of the arithmetic-intensity sweep.
pub struct Intensity {
    pub k: u32,
    pub elements: usize,
    pub cpu_s: f64,
    /// GPU only, end to end; and its compute stage alone (as if transfers were free).
    pub gpu_s: Option<f64>,
    pub gpu_compute_s: Option<f64>,
    /// The fastest static split: (seconds, fraction).
    pub best_split: Option<(f64, f64)>,
    /// The fastest of CPU, GPU and the splits: (seconds, which).
    pub best: (f64, String),
    pub auto_s: f64,
    pub auto_gpu_fraction: f64,
}

/// A loop of `k` multiply-adds per element (8 bytes in and 4 out whatever `k` is)
/// over `n` elements: CPU only, GPU only, the best of a few static splits, and Auto.
pub fn intensity(rt: &Runtime, k: u32, n: usize) -> Result<Intensity> {
    let fractions = [0.25, 0.5, 0.75];
    let reps = 3;
    let gpu = rt.has_gpu();
    let xs: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 1e-3).collect();
    let ys: Vec<f32> = (0..n).map(|i| (i % 7) as f32 * 1e-3).collect();
    let kernel =
        Kernel::map2(move |x: Expr<f32>, y: Expr<f32>| fold(k, x, |acc, _| acc * 0.999 + &y));
    for _ in 0..3 {
        rt.map2(&xs, &ys, &kernel, Placement::Auto)?;
        std::thread::sleep(Duration::from_millis(if gpu { 200 } else { 0 }));
    }
    let mut placements = vec![Placement::Cpu];
    if gpu {
        placements.push(Placement::Gpu);
        placements.extend(fractions.iter().map(|&f| Placement::Split(f)));
    }
    placements.push(Placement::Auto);
    let points = measure_all(rt, &kernel, &xs, &ys, &placements, reps)?;
    let (cpu, auto) = (&points[0], &points[points.len() - 1]);
    let mut row = Intensity {
        k,
        elements: n,
        cpu_s: cpu.seconds,
        gpu_s: None,
        gpu_compute_s: None,
        best_split: None,
        best: (cpu.seconds, "cpu".to_string()),
        auto_s: auto.seconds,
        auto_gpu_fraction: auto.gpu_fraction,
    };
    if gpu {
        let g = &points[1];
        row.gpu_compute_s = Some(g.gpu_compute);
        row.gpu_s = Some(g.seconds);
        if g.seconds < row.best.0 {
            row.best = (g.seconds, "gpu".into());
        }
        for p in &points[2..points.len() - 1] {
            let f = p.fraction.unwrap_or(0.0);
            if row.best_split.is_none_or(|(t, _)| p.seconds < t) {
                row.best_split = Some((p.seconds, f));
            }
            if p.seconds < row.best.0 {
                row.best = (p.seconds, format!("split({f:.2})"));
            }
        }
    }
    Ok(row)
}

/// Auto's cost on a small input: the best of 5 batches of per-call times of
/// `kernel` on 1,000 elements, (CPU only, Auto).
pub fn small_overhead(rt: &Runtime, kernel: &Kernel<f32, f32>, quick: bool) -> Result<(f64, f64)> {
    let xs: Vec<f32> = (0..SMALL).map(|i| i as f32).collect();
    let per_call = |p: Placement| -> Result<f64> {
        let iters = if quick { 20_000 } else { 100_000 };
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(rt.map2(&xs, &xs, kernel, p)?);
            }
            best = best.min(t.elapsed().as_secs_f64() / iters as f64);
        }
        Ok(best)
    };
    Ok((per_call(Placement::Cpu)?, per_call(Placement::Auto)?))
}

/// The small input's elements.
pub const SMALL: usize = 1000;
