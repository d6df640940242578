//! The CPU device evaluating an `Expr` kernel against a hand-written rayon closure that
//! computes the same thing, timed interleaved (hand, hybrid, hand, hybrid, ...) so that
//! a noisy shared machine slows both alike; prints the median of each and the ratio.
//!
//! `cargo run --release --example expr_vs_hand [-- --n 16777216] [--rounds 15] [--json]`

use std::time::Instant;

use hybrid::{Backend, Expr, Kernel, Placement, Runtime};
use rayon::prelude::*;

#[path = "common/args.rs"]
mod args;

const A: f32 = 2.5;
const C: [f32; 6] = [0.5, -1.25, 0.75, 0.125, -0.0625, 0.03125];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args = args::Args::from_env();
    let json = args.json();
    let n = args.n(1 << 24)?;
    let rounds = args.get("--rounds", 15usize)?.max(1);

    let xs: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 1e-3).collect();
    let ys: Vec<f32> = (0..n).map(|i| (i % 777) as f32 * 2e-3).collect();
    let rt = Runtime::builder().backend(Backend::Cpu).build()?;
    let saxpy = Kernel::map2(|x: Expr<f32>, y: Expr<f32>| x * A + y);
    let poly = Kernel::map(|x: Expr<f32>| {
        ((((x.clone() * C[5] + C[4]) * &x + C[3]) * &x + C[2]) * &x + C[1]) * &x + C[0]
    });

    let mut t = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..rounds {
        let s = Instant::now();
        let hand: Vec<f32> = xs.par_iter().zip(&ys).map(|(x, y)| A * x + y).collect();
        t[0].push(s.elapsed().as_secs_f64());
        let s = Instant::now();
        let ours = rt.map2(&xs, &ys, &saxpy, Placement::Cpu)?.output;
        t[1].push(s.elapsed().as_secs_f64());
        anyhow::ensure!(hand == ours, "saxpy differs from the hand-written loop");
        let s = Instant::now();
        let hand: Vec<f32> = xs
            .par_iter()
            .map(|&x| ((((C[5] * x + C[4]) * x + C[3]) * x + C[2]) * x + C[1]) * x + C[0])
            .collect();
        t[2].push(s.elapsed().as_secs_f64());
        let s = Instant::now();
        let ours = rt.map(&xs, &poly, Placement::Cpu)?.output;
        t[3].push(s.elapsed().as_secs_f64());
        anyhow::ensure!(hand == ours, "poly10 differs from the hand-written loop");
    }
    let [a, b, c, d] = t.map(median);
    let rows = [("saxpy", a, b), ("poly10", c, d)];
    if json {
        let out: Vec<_> = rows
            .iter()
            .map(|(k, h, e)| {
                serde_json::json!({"kernel": k, "elements": n, "hand_s": h, "expr_s": e, "ratio": h / e,
                    "expr_elements_per_s": n as f64 / e})
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"example": "expr_vs_hand", "rounds": rounds, "results": out})
            )?
        );
    } else {
        println!(
            "{n} f32 elements, median of {rounds} interleaved rounds, {} rayon threads",
            rayon::current_num_threads()
        );
        println!(
            "{:<8} {:>12} {:>12} {:>8}",
            "kernel", "hand rayon", "Expr (cpu)", "ratio"
        );
        for (k, h, e) in rows {
            println!(
                "{k:<8} {:>9.2} ms {:>9.2} ms {:>8.2}",
                h * 1e3,
                e * 1e3,
                h / e
            );
        }
    }
    Ok(())
}
