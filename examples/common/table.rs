//! `examples/compare.rs`'s output: the tables on stdout, and the same rows as JSON.

use hybrid::Runtime;
use serde_json::{json, Value};

use super::sweep::{Intensity, Point, Splits};

/// The runtime's devices, and why there is no GPU when there is none.
pub fn devices(rt: &Runtime) {
    for d in rt.devices() {
        println!("device: {d}");
    }
    if let Some(why) = rt.no_gpu_reason() {
        println!("no GPU adapter ({why}): showing the CPU only");
    }
}

pub fn splits_header() {
    println!(
        "\n{:<8} {:>9}  {:<11} {:>10} {:>10} {:>8} {:>9}",
        "kernel", "elements", "placement", "time", "M elem/s", "speedup", "transfer"
    );
}

/// One line per placement, then how Auto did against the best point.
pub fn splits(kernel: &str, s: &Splits) {
    let n = s.elements;
    for p in s.points() {
        println!(
            "{:<8} {:>9}  {:<11} {:>7.2} ms {:>10.1} {:>7.2}x {:>8.0}%",
            kernel,
            n,
            p.placement,
            p.seconds * 1e3,
            n as f64 / p.seconds / 1e6,
            s.cpu_s() / p.seconds,
            p.transfer * 100.0
        );
    }
    println!(
        "{:<8} {:>9}  auto / best sweep point = {:.3} (auto sent {:.0}% to the GPU)\n",
        kernel,
        n,
        s.auto_over_best(),
        s.auto.gpu_fraction * 100.0
    );
}

/// One JSON row per placement.
pub fn splits_json(kernel: &str, kind: &str, s: &Splits) -> Vec<Value> {
    let n = s.elements;
    let row = |p: &Point| {
        json!({
            "kernel": kernel, "kind": kind, "elements": n,
            "placement": p.placement, "seconds": p.seconds,
            "elements_per_s": n as f64 / p.seconds, "speedup_over_cpu": s.cpu_s() / p.seconds,
            "transfer_share": p.transfer, "gpu_fraction": p.gpu_fraction,
        })
    };
    s.points().map(row).collect()
}

pub fn intensity_header(n: usize) {
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

pub fn intensity(r: &Intensity) {
    let ms = |t: Option<f64>| t.map_or("-".to_string(), |t| format!("{:.2} ms", t * 1e3));
    let ratio = |t: Option<f64>| t.map_or("-".to_string(), |t| format!("{:.2}x", r.cpu_s / t));
    println!(
        "{:>5} {:>10} {:>10} {:>12} {:>8} {:>8} {:>16} {:>16} {:>9.3}",
        r.k,
        ms(Some(r.cpu_s)),
        ms(r.gpu_s),
        ms(r.gpu_compute_s),
        ratio(r.gpu_s),
        ratio(r.gpu_compute_s),
        r.best_split
            .map_or("-".into(), |(t, f)| format!("{:.2} ms @{f:.2}", t * 1e3)),
        format!(
            "{:.2} ms ({:.0}%)",
            r.auto_s * 1e3,
            r.auto_gpu_fraction * 100.0
        ),
        r.auto_s / r.best.0
    );
}

/// From which `k` the GPU wins end to end, from which it would win with free
/// transfers, and from which a split beats both single devices.
pub fn intensity_summary(rows: &[Intensity]) {
    let first = |won: &dyn Fn(&Intensity) -> bool| {
        rows.iter()
            .find(|r| won(r))
            .map_or("at no k measured".to_string(), |r| {
                format!("from k = {}", r.k)
            })
    };
    let gpu = first(&|r| r.gpu_s.is_some_and(|g| g < r.cpu_s));
    let free = first(&|r| r.gpu_compute_s.is_some_and(|c| c < r.cpu_s));
    let split = first(&|r| match (r.best_split, r.gpu_s) {
        (Some((t, _)), Some(g)) => t < r.cpu_s.min(g),
        _ => false,
    });
    println!(
        "the GPU beats the CPU end to end {gpu}; counting its compute alone (transfers free) {free}; a split beats both {split}"
    );
}

pub fn intensity_json(r: &Intensity) -> Value {
    json!({
        "k": r.k, "elements": r.elements, "cpu_s": r.cpu_s, "gpu_s": r.gpu_s,
        "gpu_compute_s": r.gpu_compute_s,
        "best_split": r.best_split.map(|(t, f)| json!({"fraction": f, "seconds": t})),
        "best": r.best.1, "best_s": r.best.0,
        "auto_s": r.auto_s, "auto_gpu_fraction": r.auto_gpu_fraction,
        "auto_over_best": r.auto_s / r.best.0,
    })
}
