//! `examples/compare.rs`'s charts, drawn from made-up numbers: every panel and label is
//! there, many panels make a grid, a CPU-only run still draws, and the SVG nests.

#[path = "../examples/common/chart.rs"]
mod chart;
#[path = "../examples/common/sweep.rs"]
mod sweep;

use chart::Panel;
use sweep::Intensity;

/// Every tag closes, in order (plotters escapes `<` and `&` in text).
fn assert_nested(svg: &str) {
    let (mut open, mut rest) = (Vec::new(), svg);
    while let Some(i) = rest.find('<') {
        let j = i + rest[i..].find('>').expect("every tag ends");
        let tag = &rest[i + 1..j];
        rest = &rest[j + 1..];
        if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
            continue;
        }
        match tag.strip_prefix('/') {
            Some(name) => assert_eq!(open.pop(), Some(name.trim()), "in {svg}"),
            None => open.push(tag.split_whitespace().next().expect("a tag has a name")),
        }
    }
    assert!(open.is_empty(), "unclosed {open:?}");
}

fn panel(i: usize, with_gpu: bool) -> Panel {
    let sweep = if with_gpu {
        (0..=4)
            .map(|s| (s as f64 / 4.0, 0.01 * (1.0 + i as f64 + s as f64)))
            .collect()
    } else {
        Vec::new()
    };
    Panel {
        title: format!("kernel {i} <&>"),
        sweep,
        auto: (0.25, 0.012),
    }
}

#[test]
fn many_panels_make_a_grid_with_every_label() {
    // the last panel as a run without a GPU gives it: no sweep, Auto on the CPU
    let panels: Vec<Panel> = (0..7).map(|i| panel(i, i < 6)).collect();
    let svg = chart::splits(&panels).unwrap();
    assert_nested(&svg);
    // 3 columns of 420 pixels, not 7 in a row
    assert!(svg.contains("width=\"1260\""), "{}", &svg[..200]);
    for i in 0..7 {
        assert!(svg.contains(&format!("kernel {i} &lt;&amp;&gt;")));
    }
    for label in [
        "fraction of elements on the GPU",
        "time (ms)",
        "auto&apos;s time",
    ] {
        assert!(svg.contains(label), "no {label}");
    }
    // one legend for the figure, not one per panel
    assert_eq!(svg.matches("static split").count(), 1);
    assert_eq!(chart::splits(&[]).unwrap(), "");
}

#[test]
fn intensity_draws_the_placements_measured() {
    let row = |k: u32, gpu: bool| Intensity {
        k,
        elements: 1 << 18,
        cpu_s: 2e-5 * k as f64,
        gpu_s: gpu.then_some(2e-3 + 2e-6 * k as f64),
        gpu_compute_s: gpu.then_some(2e-6 * k as f64),
        best_split: gpu.then_some((1e-3, 0.5)),
        best: (2e-5 * k as f64, "cpu".into()),
        auto_s: 2.2e-5 * k as f64,
        auto_gpu_fraction: 0.0,
    };
    let svg = chart::intensity(&[1, 16, 256, 1000].map(|k| row(k, true))).unwrap();
    assert_nested(&svg);
    for label in [
        "arithmetic intensity (multiply-adds per element)",
        "time per element (ns)",
        "cpu only",
        "gpu only, end to end",
        "auto",
    ] {
        assert!(svg.contains(label), "no {label}");
    }
    // without a GPU: the CPU and Auto only
    let svg = chart::intensity(&[1, 16].map(|k| row(k, false))).unwrap();
    assert_nested(&svg);
    assert!(svg.contains("cpu only") && !svg.contains("gpu only"));
    assert_eq!(chart::intensity(&[]).unwrap(), "");
}
