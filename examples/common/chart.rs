//! `examples/compare.rs`'s pictures, as SVG text: time against split fraction per
//! kernel, and time per element against arithmetic intensity.

use super::sweep::{Intensity, Point};

/// One kernel's chart: the sweep's points and Auto.
pub struct Panel {
    pub title: String,
    pub sweep: Vec<Point>,
    pub auto: Point,
}

/// One panel per kernel: time against split fraction, Auto marked.
pub fn splits(panels: &[Panel]) -> String {
    let (w, h, pad) = (360.0, 260.0, 48.0);
    let mut s = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' font-family='sans-serif' font-size='11'>\n",
        w * panels.len() as f64,
        h
    );
    for (i, Panel { title, sweep, auto }) in panels.iter().enumerate() {
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

/// A series of the intensity chart: its label, its colour, and its seconds in a row.
type Series = (&'static str, &'static str, fn(&Intensity) -> Option<f64>);

/// Time per element against `k` (both axes logarithmic): CPU, GPU end to end, the
/// GPU's compute stage alone, the best split and Auto.
pub fn intensity(rows: &[Intensity]) -> String {
    let (w, h, pad) = (560.0, 340.0, 56.0);
    let series: [Series; 5] = [
        ("cpu", "black", |r| Some(r.cpu_s)),
        ("gpu, end to end", "steelblue", |r| r.gpu_s),
        ("gpu compute alone", "lightsteelblue", |r| r.gpu_compute_s),
        ("best of cpu, gpu, splits", "seagreen", |r| Some(r.best.0)),
        ("auto", "crimson", |r| Some(r.auto_s)),
    ];
    // (k, seconds per element) per series
    let pts = |secs: fn(&Intensity) -> Option<f64>| -> Vec<(f64, f64)> {
        rows.iter()
            .filter_map(|r| Some((r.k as f64, secs(r)? / r.elements as f64)))
            .collect()
    };
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| pts(s.2)).collect();
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
        s += &format!(
            "<text x='{:.1}' y='{}' text-anchor='middle'>{}</text>\n",
            px(r.k as f64),
            h - pad + 14.0,
            r.k
        );
    }
    for t in [tmin, tmax] {
        s += &format!(
            "<text x='{}' y='{:.1}' text-anchor='end'>{:.2} ns</text>\n",
            pad - 4.0,
            py(t) + 4.0,
            t * 1e9
        );
    }
    for (i, (label, colour, secs)) in series.iter().enumerate() {
        let p = pts(*secs);
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
