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

use std::time::Instant;

use anyhow::Result;
use hybrid::{fold, Expr, Kernel, Placement, Runtime};
use serde_json::json;

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

struct Point {
    placement: String,
    fraction: Option<f64>,
    seconds: f64,
    /// The GPU shares' compute stage alone (the longest, when there are several).
    gpu_compute: f64,
    gpu_fraction: f64,
    transfer: f64,
}

/// Runs every placement `reps` times, interleaved (each round runs every placement
/// once, in a rotated order), so that a noisy shared machine slows them alike; each point is the
/// median run of its placement.
fn measure_all(
    rt: &Runtime,
    k: &Kernel<f32, f32>,
    xs: &[f32],
    ys: &[f32],
    placements: &[Placement],
    reps: usize,
) -> Result<Vec<Point>> {
    let mut runs: Vec<Vec<(f64, hybrid::Report)>> = placements.iter().map(|_| Vec::new()).collect();
    for r in 0..reps.max(1) {
        // each round in its own order, so no placement always follows the same one: a
        // run right after a software GPU's can find its threads still spinning. (A
        // rotation is not enough: each placement would keep its predecessor, and Auto,
        // listed last, always ran right after Split(1.00).)
        let mut order: Vec<usize> = (0..placements.len()).collect();
        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ (r as u64 + 1);
        for j in (1..order.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            order.swap(j, (state % (j as u64 + 1)) as usize);
        }
        for i in order {
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

fn point(p: Placement, seconds: f64, r: &hybrid::Report, n: usize) -> Point {
    let gpu: usize = r
        .shares()
        .iter()
        .filter(|s| s.kind().is_gpu())
        .map(|s| s.elements())
        .sum();
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
        gpu_compute: r
            .shares()
            .iter()
            .filter(|s| s.kind().is_gpu())
            .map(|s| s.compute_s())
            .fold(0.0, f64::max),
        gpu_fraction: if n == 0 { 0.0 } else { gpu as f64 / n as f64 },
        transfer: if all > 0.0 { moving / all } else { 0.0 },
    }
}

/// The arithmetic-intensity sweep: `k` multiply-adds per element (a loop of `k`
/// steps, 8 bytes in and 4 out whatever `k` is), for `k` from 1 to 1,000. For each `k`:
/// CPU only, GPU only (end to end, and its compute stage alone, as if transfers were
/// free), the best of a few static splits, and Auto. Shows from which `k` the GPU wins
/// once its transfers are counted, from which it would win without them, and where a
/// split beats both single devices.
fn intensity_sweep(rt: &Runtime, quick: bool, as_json: bool) -> Result<Vec<serde_json::Value>> {
    let n: usize = if quick { 1 << 18 } else { 1 << 20 };
    let ks: &[u32] = if quick {
        &[1, 16, 256, 1000]
    } else {
        &[1, 4, 16, 64, 256, 1000]
    };
    let fractions = [0.25, 0.5, 0.75];
    let reps = 3;
    let gpu = rt.has_gpu();
    let xs: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 1e-3).collect();
    let ys: Vec<f32> = (0..n).map(|i| (i % 7) as f32 * 1e-3).collect();
    if !as_json {
        println!("\narithmetic intensity: k multiply-adds per element, {n} elements (8 bytes in, 4 out each)");
        println!(
            "{:>5} {:>10} {:>10} {:>12} {:>8} {:>8} {:>16} {:>16} {:>9}",
            "k",
            "cpu",
            "gpu",
            "gpu compute",
            "gpu/cpu",
            "no-xfer",
            "best split",
            "auto (gpu %)",
            "auto/best"
        );
    }
    let mut rows = Vec::new();
    let (mut gpu_wins, mut gpu_wins_free, mut split_wins) = (None, None, None);
    for &k in ks {
        let kernel =
            Kernel::map2(move |x: Expr<f32>, y: Expr<f32>| fold(k, x, |acc, _| acc * 0.999 + &y));
        for _ in 0..3 {
            rt.map2(&xs, &ys, &kernel, Placement::Auto)?;
            std::thread::sleep(std::time::Duration::from_millis(if gpu { 200 } else { 0 }));
        }
        let mut placements = vec![Placement::Cpu];
        if gpu {
            placements.push(Placement::Gpu);
            placements.extend(fractions.iter().map(|&f| Placement::Split(f)));
        }
        placements.push(Placement::Auto);
        let points = measure_all(rt, &kernel, &xs, &ys, &placements, reps)?;
        let (cpu, auto) = (&points[0], &points[points.len() - 1]);
        let mut best = (cpu.seconds, "cpu".to_string());
        let (mut gpu_s, mut gpu_compute_s, mut split_best) = (None, None, None::<(f64, f64)>);
        if gpu {
            let g = &points[1];
            gpu_compute_s = Some(g.gpu_compute);
            if g.seconds < best.0 {
                best = (g.seconds, "gpu".into());
            }
            gpu_s = Some(g.seconds);
            for p in &points[2..points.len() - 1] {
                let f = p.fraction.unwrap_or(0.0);
                if split_best.is_none_or(|(t, _)| p.seconds < t) {
                    split_best = Some((p.seconds, f));
                }
                if p.seconds < best.0 {
                    best = (p.seconds, format!("split({f:.2})"));
                }
            }
        }
        if let Some(g) = gpu_s {
            if g < cpu.seconds {
                gpu_wins.get_or_insert(k);
            }
        }
        if let Some(c) = gpu_compute_s {
            if c < cpu.seconds {
                gpu_wins_free.get_or_insert(k);
            }
        }
        if let (Some((t, _)), Some(g)) = (split_best, gpu_s) {
            if t < cpu.seconds.min(g) {
                split_wins.get_or_insert(k);
            }
        }
        let ms = |t: Option<f64>| t.map_or("-".to_string(), |t| format!("{:.2} ms", t * 1e3));
        let ratio =
            |t: Option<f64>| t.map_or("-".to_string(), |t| format!("{:.2}x", cpu.seconds / t));
        if !as_json {
            println!(
                "{:>5} {:>10} {:>10} {:>12} {:>8} {:>8} {:>16} {:>16} {:>9.3}",
                k,
                ms(Some(cpu.seconds)),
                ms(gpu_s),
                ms(gpu_compute_s),
                ratio(gpu_s),
                ratio(gpu_compute_s),
                split_best.map_or("-".into(), |(t, f)| format!("{:.2} ms @{f:.2}", t * 1e3)),
                format!(
                    "{:.2} ms ({:.0}%)",
                    auto.seconds * 1e3,
                    auto.gpu_fraction * 100.0
                ),
                auto.seconds / best.0
            );
        }
        rows.push(json!({
            "k": k, "elements": n, "cpu_s": cpu.seconds, "gpu_s": gpu_s,
            "gpu_compute_s": gpu_compute_s,
            "best_split": split_best.map(|(t, f)| json!({"fraction": f, "seconds": t})),
            "best": best.1, "best_s": best.0,
            "auto_s": auto.seconds, "auto_gpu_fraction": auto.gpu_fraction,
            "auto_over_best": auto.seconds / best.0,
        }));
    }
    if !as_json && gpu {
        let say =
            |w: Option<u32>| w.map_or("at no k measured".to_string(), |k| format!("from k = {k}"));
        println!(
            "the GPU beats the CPU end to end {}; counting its compute alone (transfers free) {}; a split beats both {}",
            say(gpu_wins),
            say(gpu_wins_free),
            say(split_wins)
        );
    }
    Ok(rows)
}

/// One panel per kernel: time against split fraction, Auto marked.
fn svg(panels: &[(String, Vec<Point>, Point)]) -> String {
    let (w, h, pad) = (360.0, 260.0, 48.0);
    let mut s = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' font-family='sans-serif' font-size='11'>\n",
        w * panels.len() as f64,
        h
    );
    for (i, (title, sweep, auto)) in panels.iter().enumerate() {
        let x0 = i as f64 * w;
        let tmax = sweep
            .iter()
            .chain([auto])
            .map(|p| p.seconds)
            .fold(0.0, f64::max)
            * 1.1;
        let px = |f: f64| x0 + pad + f * (w - 1.5 * pad);
        let py = |t: f64| h - pad - t / tmax.max(1e-12) * (h - 1.8 * pad);
        s += &format!(
            "<text x='{}' y='18' text-anchor='middle' font-weight='bold'>{title}</text>\n",
            x0 + w / 2.0
        );
        s += &format!(
            "<line x1='{}' y1='{}' x2='{}' y2='{}' stroke='black'/><line x1='{}' y1='{}' x2='{}' y2='{}' stroke='black'/>\n",
            px(0.0), py(0.0), px(1.0), py(0.0), px(0.0), py(0.0), px(0.0), py(tmax)
        );
        s += &format!(
            "<text x='{}' y='{}' text-anchor='middle'>fraction of elements on the GPU</text>\n",
            x0 + w / 2.0,
            h - 12.0
        );
        for f in [0.0, 0.5, 1.0] {
            s += &format!(
                "<text x='{}' y='{}' text-anchor='middle'>{f}</text>\n",
                px(f),
                py(0.0) + 14.0
            );
        }
        s += &format!(
            "<text x='{}' y='{}' text-anchor='end'>{:.1} ms</text>\n",
            px(0.0) - 4.0,
            py(tmax) + 10.0,
            tmax * 1e3
        );
        let pts: Vec<String> = sweep
            .iter()
            .filter_map(|p| {
                p.fraction
                    .map(|f| format!("{:.1},{:.1}", px(f), py(p.seconds)))
            })
            .collect();
        s += &format!(
            "<polyline points='{}' fill='none' stroke='steelblue' stroke-width='2'/>\n",
            pts.join(" ")
        );
        s += &format!(
            "<line x1='{}' y1='{}' x2='{}' y2='{}' stroke='crimson' stroke-dasharray='4 3'/>\n",
            px(0.0),
            py(auto.seconds),
            px(1.0),
            py(auto.seconds)
        );
        s += &format!(
            "<circle cx='{:.1}' cy='{:.1}' r='5' fill='crimson'/><text x='{:.1}' y='{:.1}' fill='crimson'>auto</text>\n",
            px(auto.gpu_fraction),
            py(auto.seconds),
            px(auto.gpu_fraction) + 7.0,
            py(auto.seconds) - 7.0
        );
    }
    s + "</svg>\n"
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let as_json = args.iter().any(|a| a == "--json");
    let svg_path = args
        .iter()
        .position(|a| a == "--svg")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| "target/compare.svg".into());
    let sizes: Vec<usize> = if quick {
        vec![1 << 20, 4 << 20]
    } else {
        vec![1 << 20, 16 << 20]
    };
    let steps = if quick { 4 } else { 10 };
    let reps = if quick { 3 } else { 5 };

    let rt = Runtime::new()?;
    if !as_json {
        for d in rt.devices() {
            println!("device: {d}");
        }
        if let Some(why) = rt.no_gpu_reason() {
            println!("no GPU adapter ({why}): showing the CPU only");
        }
    }
    let gpu = rt.has_gpu();
    let mut rows = Vec::new();
    let mut panels = Vec::new();
    let mut summary = Vec::new();
    if !as_json {
        println!(
            "\n{:<8} {:>9}  {:<11} {:>10} {:>10} {:>8} {:>9}",
            "kernel", "elements", "placement", "time", "M elem/s", "speedup", "transfer"
        );
    }
    for case in cases() {
        for &n in &sizes {
            let xs: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 1e-3).collect();
            let ys: Vec<f32> = (0..n).map(|i| (i % 7) as f32 * 0.1).collect();
            // let Auto measure the devices (the first call probes a GPU with no model)
            for _ in 0..3 {
                rt.map2(&xs, &ys, &case.kernel, Placement::Auto)?;
            }
            let mut placements = vec![Placement::Cpu];
            if gpu {
                placements.push(Placement::Gpu);
                placements.extend((0..=steps).map(|i| Placement::Split(i as f64 / steps as f64)));
            }
            placements.push(Placement::Auto);
            let mut points = measure_all(&rt, &case.kernel, &xs, &ys, &placements, reps)?;
            let auto = points
                .pop()
                .ok_or_else(|| anyhow::anyhow!("no auto point"))?;
            let sweep = if gpu { points.split_off(2) } else { Vec::new() };
            let cpu_s = points[0].seconds;
            let best = sweep.iter().map(|p| p.seconds).fold(cpu_s, f64::min);
            let ratio = auto.seconds / best;
            let show = |p: &Point| {
                if !as_json {
                    println!(
                        "{:<8} {:>9}  {:<11} {:>7.2} ms {:>10.1} {:>7.2}x {:>8.0}%",
                        case.name,
                        n,
                        p.placement,
                        p.seconds * 1e3,
                        n as f64 / p.seconds / 1e6,
                        cpu_s / p.seconds,
                        p.transfer * 100.0
                    );
                }
            };
            points.iter().chain(&sweep).chain([&auto]).for_each(show);
            if !as_json {
                println!(
                    "{:<8} {:>9}  auto / best sweep point = {ratio:.3} (auto sent {:.0}% to the GPU)\n",
                    case.name,
                    n,
                    auto.gpu_fraction * 100.0
                );
            }
            for p in points.iter().chain(&sweep).chain([&auto]) {
                rows.push(json!({
                    "kernel": case.name, "kind": case.kind, "elements": n,
                    "placement": p.placement, "seconds": p.seconds,
                    "elements_per_s": n as f64 / p.seconds, "speedup_over_cpu": cpu_s / p.seconds,
                    "transfer_share": p.transfer, "gpu_fraction": p.gpu_fraction,
                }));
            }
            summary
                .push(json!({"kernel": case.name, "elements": n, "auto_over_best_sweep": ratio}));
            if n == *sizes.last().unwrap_or(&n) {
                panels.push((
                    format!("{} ({}), {n} elements", case.name, case.kind),
                    sweep,
                    auto,
                ));
            }
        }
    }
    // Auto's overhead on a small input, against the CPU-only call
    let small = 1000;
    let xs: Vec<f32> = (0..small).map(|i| i as f32).collect();
    let k = &cases()[0].kernel;
    let per_call = |p: Placement| -> Result<f64> {
        let iters = if quick { 20_000 } else { 100_000 };
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(rt.map2(&xs, &xs, k, p)?);
            }
            best = best.min(t.elapsed().as_secs_f64() / iters as f64);
        }
        Ok(best)
    };
    let (cpu_small, auto_small) = (per_call(Placement::Cpu)?, per_call(Placement::Auto)?);
    let intensity = intensity_sweep(&rt, quick, as_json)?;
    if as_json {
        let out = json!({
            "devices": rt.devices().iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            "gpu": gpu, "rows": rows, "summary": summary, "intensity": intensity,
            "small": {"elements": small, "cpu_s": cpu_small, "auto_s": auto_small, "auto_over_cpu": auto_small / cpu_small},
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{small} elements: cpu {:.2} us, auto {:.2} us per call: auto / cpu = {:.2}",
            cpu_small * 1e6,
            auto_small * 1e6,
            auto_small / cpu_small
        );
    }
    if gpu && !panels.is_empty() {
        if let Some(dir) = std::path::Path::new(&svg_path).parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&svg_path, svg(&panels))?;
        let path = std::path::Path::new(&svg_path).with_extension("intensity.svg");
        std::fs::write(&path, intensity_svg(&intensity))?;
        if !as_json {
            println!("charts: {svg_path}, {}", path.display());
        }
    }
    Ok(())
}

/// Time per element against `k` (both axes logarithmic): CPU, GPU end to end, the
/// GPU's compute stage alone, the best split and Auto.
fn intensity_svg(rows: &[serde_json::Value]) -> String {
    let (w, h, pad) = (560.0, 340.0, 56.0);
    let series: [(&str, &str, &str); 5] = [
        ("cpu_s", "cpu", "black"),
        ("gpu_s", "gpu, end to end", "steelblue"),
        ("gpu_compute_s", "gpu compute alone", "lightsteelblue"),
        ("best_s", "best of cpu, gpu, splits", "seagreen"),
        ("auto_s", "auto", "crimson"),
    ];
    // (k, seconds per element) per series
    let pts = |key: &str| -> Vec<(f64, f64)> {
        rows.iter()
            .filter_map(|r| {
                let k = r["k"].as_f64()?;
                let n = r["elements"].as_f64()?;
                Some((k, r[key].as_f64()? / n))
            })
            .collect()
    };
    let all: Vec<(f64, f64)> = series.iter().flat_map(|(key, _, _)| pts(key)).collect();
    if all.is_empty() {
        return String::new();
    }
    let (kmin, kmax) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (tmin, tmax) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (lk0, lk1) = (kmin.log10(), kmax.log10().max(kmin.log10() + 1e-9));
    let (lt0, lt1) = ((tmin * 0.8).log10(), (tmax * 1.25).log10());
    let px = |k: f64| pad + (k.log10() - lk0) / (lk1 - lk0) * (w - 1.6 * pad);
    let py = |t: f64| h - pad - (t.log10() - lt0) / (lt1 - lt0) * (h - 1.8 * pad);
    let mut s = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='11'>\n\
         <text x='{}' y='18' text-anchor='middle' font-weight='bold'>time per element against multiply-adds per element (log-log)</text>\n\
         <line x1='{pad}' y1='{}' x2='{}' y2='{}' stroke='black'/><line x1='{pad}' y1='{}' x2='{pad}' y2='{}' stroke='black'/>\n",
        w / 2.0,
        h - pad,
        w - 0.6 * pad,
        h - pad,
        h - pad,
        0.8 * pad
    );
    for r in rows {
        if let Some(k) = r["k"].as_f64() {
            s += &format!(
                "<text x='{:.1}' y='{}' text-anchor='middle'>{k}</text>\n",
                px(k),
                h - pad + 14.0
            );
        }
    }
    for t in [tmin, tmax] {
        s += &format!(
            "<text x='{}' y='{:.1}' text-anchor='end'>{:.2} ns</text>\n",
            pad - 4.0,
            py(t) + 4.0,
            t * 1e9
        );
    }
    for (i, (key, label, colour)) in series.iter().enumerate() {
        let p = pts(key);
        if p.is_empty() {
            continue;
        }
        let line: Vec<String> = p
            .iter()
            .map(|&(k, t)| format!("{:.1},{:.1}", px(k), py(t)))
            .collect();
        s += &format!(
            "<polyline points='{}' fill='none' stroke='{colour}' stroke-width='2'/>\n\
             <text x='{}' y='{}' fill='{colour}'>{label}</text>\n",
            line.join(" "),
            pad + 8.0,
            0.8 * pad + 14.0 * i as f64
        );
    }
    s + "</svg>\n"
}
