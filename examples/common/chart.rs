//! `examples/compare.rs`'s pictures, drawn by `plotters` as SVG: time against the GPU's
//! share of the elements, one panel per workload in a grid; and time per element
//! against arithmetic intensity, one line per placement.
//!
//! Each figure's legend sits in a strip below its plots, so it never covers data; the
//! text is SVG text, so no font files are needed (plotters only estimates its width).

// compare.rs uses all of it; a test including it may use less
#![allow(dead_code)]

use plotters::coord::combinators::{LogCoord, WithKeyPoints};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::sweep::{Intensity, Point};

/// One workload's panel: time against the fraction of elements on the GPU.
pub struct Panel {
    pub title: String,
    /// (fraction of elements on the GPU, seconds), one per static split: 0 is CPU
    /// only, 1 GPU only.
    pub sweep: Vec<(f64, f64)>,
    /// Auto's (fraction of elements it put on the GPUs, seconds).
    pub auto: (f64, f64),
}

impl Panel {
    /// A panel from a sweep's points (those without a split fraction are left out).
    pub fn new(title: impl Into<String>, sweep: &[Point], auto: &Point) -> Panel {
        Panel {
            title: title.into(),
            sweep: sweep
                .iter()
                .filter_map(|p| Some((p.fraction?, p.seconds)))
                .collect(),
            auto: (auto.gpu_fraction, auto.seconds),
        }
    }
}

const STEELBLUE: RGBColor = RGBColor(70, 130, 180);
const LIGHTSTEELBLUE: RGBColor = RGBColor(140, 170, 215);
const SEAGREEN: RGBColor = RGBColor(46, 139, 87);
const CRIMSON: RGBColor = RGBColor(220, 20, 60);
const GREY: RGBColor = RGBColor(90, 90, 90);

/// How a series is drawn, in the plot and in the legend alike.
#[derive(Clone, Copy)]
struct Style {
    label: &'static str,
    colour: RGBColor,
    line: Line,
    mark: Mark,
}

#[derive(Clone, Copy)]
enum Line {
    None,
    Solid,
    Dashed,
    /// Wide and pale, to show which of the other lines it follows.
    Band,
}

#[derive(Clone, Copy)]
enum Mark {
    None,
    Dot,
    Square,
    /// Auto's: larger than the others, so it stands out where it lands on a line.
    Triangle,
}

/// A row's seconds for one line of the intensity chart, if it was measured.
type Seconds = fn(&Intensity) -> Option<f64>;

/// A panel's size in pixels, and the most panels in a row.
const PANEL: (u32, u32) = (420, 320);
const MAX_COLUMNS: usize = 3;
const FONT: (&str, u32) = ("sans-serif", 14);

/// One panel per workload, in a grid of up to three columns: time against the
/// fraction of elements on the GPU, the static splits as a line, Auto as a marker
/// and a dashed line at its time. An empty string when there are no panels.
pub fn splits(panels: &[Panel]) -> anyhow::Result<String> {
    if panels.is_empty() {
        return Ok(String::new());
    }
    let (columns, rows) = grid(panels.len());
    let sweep = Style {
        label: "static split (0: cpu only, 1: gpu only)",
        colour: STEELBLUE,
        line: Line::Solid,
        mark: Mark::Dot,
    };
    let auto = Style {
        label: "auto",
        colour: CRIMSON,
        line: Line::None,
        mark: Mark::Triangle,
    };
    let auto_time = Style {
        label: "auto's time",
        colour: CRIMSON,
        line: Line::Dashed,
        mark: Mark::None,
    };
    let width = PANEL.0 * columns as u32;
    let legend_rows = legend_layout(width, &[sweep, auto, auto_time]).len() as u32;
    let size = (width, PANEL.1 * rows as u32 + legend_height(legend_rows));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let (plots, strip) = root.split_vertically(PANEL.1 * rows as u32);
        for (panel, area) in panels.iter().zip(plots.split_evenly((rows, columns))) {
            let all = panel.sweep.iter().chain([&panel.auto]).map(|p| p.1);
            let (scale, unit) = time_unit(all.clone().fold(0.0, f64::max));
            let top = all.fold(0.0, f64::max) * scale * 1.15;
            let mut chart = ChartBuilder::on(&area)
                .caption(&panel.title, (FONT.0, FONT.1 + 2))
                .margin(12)
                .x_label_area_size(44)
                .y_label_area_size(60)
                .build_cartesian_2d(-0.03f64..1.03, 0f64..top.max(1e-9))?;
            chart
                .configure_mesh()
                .x_desc("fraction of elements on the GPU")
                .y_desc(format!("time ({unit})"))
                .x_labels(6)
                .y_labels(6)
                .x_label_formatter(&|v| tick(*v))
                .y_label_formatter(&|v| tick(*v))
                .label_style(FONT)
                .axis_desc_style(FONT)
                .light_line_style(WHITE.mix(0.0))
                .bold_line_style(BLACK.mix(0.08))
                .draw()?;
            let at = |(f, s): (f64, f64)| (f, s * scale);
            let sweep_points: Vec<_> = panel.sweep.iter().copied().map(at).collect();
            let auto_point = at(panel.auto);
            series(
                &mut chart,
                &auto_time,
                &[(-0.03, auto_point.1), (1.03, auto_point.1)],
            )?;
            series(&mut chart, &sweep, &sweep_points)?;
            series(&mut chart, &auto, &[auto_point])?;
        }
        legend(&strip, &[sweep, auto, auto_time])?;
        root.present()?;
    }
    Ok(svg)
}

/// Time per element against multiply-adds per element, both axes logarithmic: one
/// line per placement (CPU only, GPU only, Auto), the GPU's compute stage alone as if
/// transfers were free, and under them a band along the best of CPU, GPU and the
/// static splits. Lines with no points (the GPU's, without a GPU) are left out. An
/// empty string when there are no rows.
pub fn intensity(rows: &[Intensity]) -> anyhow::Result<String> {
    let styles: [(Style, Seconds); 5] = [
        // first, so the placement it equals is drawn over it
        (
            Style {
                label: "best of cpu, gpu and static splits",
                colour: SEAGREEN,
                line: Line::Band,
                mark: Mark::None,
            },
            |r| Some(r.best.0),
        ),
        (
            Style {
                label: "cpu only",
                colour: GREY,
                line: Line::Solid,
                mark: Mark::Square,
            },
            |r| Some(r.cpu_s),
        ),
        (
            Style {
                label: "gpu only, end to end",
                colour: STEELBLUE,
                line: Line::Solid,
                mark: Mark::Dot,
            },
            |r| r.gpu_s,
        ),
        (
            Style {
                label: "gpu compute alone (no transfers)",
                colour: LIGHTSTEELBLUE,
                line: Line::Dashed,
                mark: Mark::Dot,
            },
            |r| r.gpu_compute_s,
        ),
        (
            Style {
                label: "auto",
                colour: CRIMSON,
                line: Line::Solid,
                mark: Mark::Triangle,
            },
            |r| Some(r.auto_s),
        ),
    ];
    // (k, seconds per element) per series; series with no point are left out
    let lines: Vec<(Style, Vec<(f64, f64)>)> = styles
        .iter()
        .map(|(style, secs)| {
            let points = rows
                .iter()
                .filter(|r| r.k > 0 && r.elements > 0)
                .filter_map(|r| Some((r.k as f64, secs(r)? / r.elements as f64)))
                .filter(|p| p.1 > 0.0)
                .collect();
            (*style, points)
        })
        .filter(|(_, p): &(Style, Vec<_>)| !p.is_empty())
        .collect();
    let all = || lines.iter().flat_map(|l| &l.1);
    let Some(&first) = all().next() else {
        return Ok(String::new());
    };
    let (kmin, kmax, tmin, tmax) = all().fold(
        (first.0, first.0, first.1, first.1),
        |(k0, k1, t0, t1), &(k, t)| (k0.min(k), k1.max(k), t0.min(t), t1.max(t)),
    );
    // by the smallest time, so that every label on the log axis reads 1 or more
    let (scale, unit) = time_unit(tmin);
    let styles: Vec<Style> = lines.iter().map(|l| l.0).collect();
    let width = 720;
    let legend_rows = legend_layout(width, &styles).len() as u32;
    let size = (width, 460 + legend_height(legend_rows));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot, strip) = root.split_vertically(460);
        let elements = rows.first().map_or(0, |r| r.elements);
        let mut chart = ChartBuilder::on(&plot)
            .caption(
                format!("time per element against arithmetic intensity, {elements} elements"),
                (FONT.0, FONT.1 + 2),
            )
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(
                log_axis(kmin / 1.5, kmax * 1.5),
                log_axis(tmin * scale / 1.5, tmax * scale * 1.5),
            )?;
        chart
            .configure_mesh()
            .x_desc("arithmetic intensity (multiply-adds per element)")
            .y_desc(format!("time per element ({unit})"))
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .label_style(FONT)
            .axis_desc_style(FONT)
            .light_line_style(BLACK.mix(0.03))
            .bold_line_style(BLACK.mix(0.08))
            .draw()?;
        for (style, points) in &lines {
            let points: Vec<_> = points.iter().map(|&(k, t)| (k, t * scale)).collect();
            series(&mut chart, style, &points)?;
        }
        legend(&strip, &styles)?;
        root.present()?;
    }
    Ok(svg)
}

/// (columns, rows) for `n` panels: one row up to three, then as square as three
/// columns allow (4 is 2 by 2, 5 to 9 are 3 wide).
fn grid(n: usize) -> (usize, usize) {
    let columns = if n <= MAX_COLUMNS {
        n.max(1)
    } else {
        ((n as f64).sqrt().ceil() as usize).min(MAX_COLUMNS)
    };
    (columns, n.div_ceil(columns).max(1))
}

/// A scale from seconds and its unit's name, so that `t` reads between 1 and 1000.
fn time_unit(t: f64) -> (f64, &'static str) {
    match t {
        m if m >= 1.0 => (1.0, "s"),
        m if m >= 1e-3 => (1e3, "ms"),
        m if m >= 1e-6 => (1e6, "µs"),
        _ => (1e9, "ns"),
    }
}

/// A tick label: three significant digits at most, without trailing zeros.
fn tick(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let decimals = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').into()
    } else {
        s
    }
}

/// A logarithmic axis over `lo..hi`: ticks and labels at 1, 2 and 5 times each power
/// of ten, light grid lines at the other whole multiples (plotters' own log axis gives
/// powers of ten only, too few over the two or three decades these charts span).
fn log_axis(lo: f64, hi: f64) -> WithKeyPoints<LogCoord<f64>> {
    let at = |mantissas: &[f64]| -> Vec<f64> {
        let decades = lo.log10().floor() as i32..=hi.log10().ceil() as i32;
        decades
            .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
            .filter(|v| (lo..=hi).contains(v))
            .collect()
    };
    (lo..hi)
        .log_scale()
        .with_key_points(at(&[1.0, 2.0, 5.0]))
        .with_light_points(at(&[3.0, 4.0, 6.0, 7.0, 8.0, 9.0]))
}

/// A series' line: two pixels wide, or a wide pale band.
fn stroke(style: &Style) -> ShapeStyle {
    match style.line {
        Line::Band => style.colour.mix(0.35).stroke_width(8),
        _ => style.colour.stroke_width(2),
    }
}

/// Draws one series on a chart: its line, then its markers.
fn series<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    style: &Style,
    points: &[(f64, f64)],
) -> anyhow::Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let stroke = stroke(style);
    match style.line {
        Line::None => {}
        Line::Solid | Line::Band => {
            chart.draw_series(LineSeries::new(points.iter().copied(), stroke))?;
        }
        Line::Dashed => {
            chart.draw_series(DashedLineSeries::new(points.iter().copied(), 6, 4, stroke))?;
        }
    }
    marks(chart.plotting_area(), points.iter().copied(), style)?;
    Ok(())
}

/// Draws a series' markers at `points` on `area`, in its coordinates (a chart's data
/// or the legend's pixels): the shape is drawn in pixels around each point, so it has
/// one size everywhere.
fn marks<DB, CT>(
    area: &DrawingArea<DB, CT>,
    points: impl IntoIterator<Item = CT::From>,
    style: &Style,
) -> anyhow::Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
    CT::From: Clone,
{
    let fill = style.colour.filled();
    for p in points {
        let at = EmptyElement::at(p);
        match style.mark {
            Mark::None => {}
            Mark::Dot => area.draw(&(at + Circle::new((0, 0), 3, fill)))?,
            Mark::Square => area.draw(&(at + Rectangle::new([(-4, -4), (4, 4)], fill)))?,
            Mark::Triangle => area.draw(&(at + TriangleMarker::new((0, 0), 7, fill)))?,
        }
    }
    Ok(())
}

/// The legend strip's height for `rows` rows of entries.
fn legend_height(rows: u32) -> u32 {
    12 + 22 * rows
}

/// Width of an entry's sample (line and marker) and the gaps around it, in pixels.
const SAMPLE: i32 = 28;
const GAP: i32 = 8;
const ENTRY_GAP: i32 = 24;

/// The legend's entries flowed into rows that fit `width`: each row the entries'
/// indices and their text widths.
fn legend_layout(width: u32, styles: &[Style]) -> Vec<Vec<(usize, i32)>> {
    // SVG text's width cannot be known before a viewer picks the font: half the font
    // size a character, a little wider than plotters' own estimate, errs on more space
    let text_width = |s: &str| (s.chars().count() as f64 * FONT.1 as f64 * 0.5).ceil() as i32;
    let limit = width as i32 - 2 * ENTRY_GAP;
    let (mut rows, mut used): (Vec<Vec<(usize, i32)>>, i32) = (Vec::new(), 0);
    for (i, style) in styles.iter().enumerate() {
        let text = text_width(style.label);
        let w = SAMPLE + GAP + text;
        match rows.last_mut() {
            Some(row) if used + ENTRY_GAP + w <= limit => {
                row.push((i, text));
                used += ENTRY_GAP + w;
            }
            _ => {
                rows.push(vec![(i, text)]);
                used = w;
            }
        }
    }
    rows
}

/// Draws the legend in `area`, each row centred.
fn legend<DB>(area: &DrawingArea<DB, Shift>, styles: &[Style]) -> anyhow::Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let (width, _) = area.dim_in_pixel();
    for (r, row) in legend_layout(width, styles).iter().enumerate() {
        let total: i32 = row.iter().map(|&(_, w)| SAMPLE + GAP + w).sum::<i32>()
            + ENTRY_GAP * (row.len() as i32 - 1);
        let mut x = (width as i32 - total) / 2;
        let y = 6 + 22 * r as i32 + 11;
        for &(i, w) in row {
            let style = &styles[i];
            let stroke = stroke(style);
            match style.line {
                Line::None => {}
                Line::Solid | Line::Band => {
                    area.draw(&PathElement::new([(x, y), (x + SAMPLE, y)], stroke))?;
                }
                Line::Dashed => {
                    for d in (0..SAMPLE).step_by(10) {
                        let end = (d + 6).min(SAMPLE);
                        area.draw(&PathElement::new([(x + d, y), (x + end, y)], stroke))?;
                    }
                }
            }
            marks(area, [(x + SAMPLE / 2, y)], style)?;
            let text = TextStyle::from(FONT).pos(Pos::new(HPos::Left, VPos::Center));
            area.draw(&Text::new(style.label, (x + SAMPLE + GAP, y), text))?;
            x += SAMPLE + GAP + w + ENTRY_GAP;
        }
    }
    Ok(())
}
