//! A 5x5 Gaussian blur ([1 4 6 4 1]ᵀ[1 4 6 4 1] / 256, edges clamped) of a `size` x
//! `size` grey image (a smooth pattern plus noise), on every placement, beside the same
//! loop written by hand with rayon.
//!
//! ```sh
//! cargo run --release --example blur -- [--size 2048] [--reps 5] [--quick] [--json]
//! ```
//!
//! The kernel is `workloads::blur` (`examples/common/workloads.rs`): the image is a
//! table, each pixel reads its 25 neighbours at indices computed from its own:
//!
//! ```ignore
//! Kernel::new(move |(img,): (Table<f32>,)| {
//!     let i = index();
//!     let (row, col) = ((i.clone() / width).cast::<i32>(), (i % width).cast::<i32>());
//!     let mut sum = Expr::constant(0.0f32);
//!     for (dr, wr) in (-2..=2).zip(GAUSS5) {
//!         let r = (row.clone() + dr).clamp(0, h - 1);
//!         for (dc, wc) in (-2..=2).zip(GAUSS5) {
//!             let c = (col.clone() + dc).clamp(0, w - 1);
//!             sum = sum + img.at(r.clone() * w + c) * (wr * wc / 256.0);
//!         }
//!     }
//!     sum
//! })
//! // called over the pixels, the image as the one table
//! let blurred = rt.call_over(width * height, &kernel, (&img,), placement)?.output;
//! ```
//!
//! Before measuring, every placement's image is checked against an f64 loop: the
//! largest absolute error of a pixel (values in [0, 1]) must be within 1e-5. The output
//! is the check's worst error, then one line per placement with its median time and
//! the share of pixels the GPU took, the rayon loop's time, how the CPU device compares
//! with it and Auto with the best static placement, Auto's decision, and how the image
//! was sent. `--quick` blurs 512 x 512; `--json` prints one JSON object. `compare`
//! runs the same workload at its `--quick` size.

use anyhow::Result;
use hybrid::{Kernel, Placement, Run, Runtime, Table};

#[path = "common/args.rs"]
mod args;
#[path = "common/measure.rs"]
mod measure;
#[path = "common/suite.rs"]
mod suite;
#[path = "common/workloads.rs"]
mod workloads;

/// The workload's name in the output.
pub const NAME: &str = "blur 5x5";

/// The image's side by default, and with `--quick`.
pub const SIZE: u32 = 2048;
pub const QUICK: u32 = 512;

/// What the check measures, and the largest value allowed against the f64 reference:
/// 25 products of exact weights summed in f32, below 1, are within 25 · 2⁻²⁴ (1.5e-6).
pub const ERROR: &str = "abs error of a pixel";
pub const TOLERANCE: f64 = 1e-5;

fn main() -> Result<()> {
    let args = args::Args::from_env();
    let size = args.get("--size", if args.has("--quick") { QUICK } else { SIZE })?;
    let reps = args.get("--reps", 5)?;

    crate::measure::run(&Blur::new(size), reps, args.json())
}

/// A square image and the kernel that blurs it.
pub struct Blur {
    side: u32,
    image: Vec<f32>,
    kernel: Kernel<(Table<f32>,), f32>,
}

impl Blur {
    pub fn new(side: u32) -> Blur {
        let s = side as usize;
        Blur {
            side,
            image: suite::image(s, s, 1),
            kernel: workloads::blur(side, side),
        }
    }
}

// `crate::measure`: this file's own when built alone, `compare`'s when it includes it
impl crate::measure::Workload for Blur {
    type Output = Vec<f32>;
    const NAME: &'static str = NAME;
    const ERROR: &'static str = ERROR;
    const TOLERANCE: f64 = TOLERANCE;

    fn size(&self) -> String {
        format!("{0} x {0} pixels", self.side)
    }

    /// The library's call: the blurred image, row-major.
    fn run(&self, rt: &Runtime, p: Placement) -> hybrid::Result<Run<Vec<f32>>> {
        rt.call_over(self.image.len(), &self.kernel, (&self.image,), p)
    }

    /// The same by hand with rayon.
    fn by_hand(&self) -> Vec<f32> {
        let s = self.side as usize;
        suite::blur5x5_rayon(&self.image, s, s)
    }

    /// Each placement's largest absolute error of a pixel against the f64 reference.
    fn errors(&self, rt: &Runtime, placements: &[Placement]) -> Result<Vec<(Placement, f64)>> {
        let s = self.side as usize;
        let reference = suite::blur5x5_f64(&self.image, s, s);
        let mut errors = Vec::new();
        for &p in placements {
            let out = self.run(rt, p)?.output;
            anyhow::ensure!(out.len() == reference.len(), "{p}: {} pixels", out.len());
            let diffs = out
                .iter()
                .zip(&reference)
                .map(|(&a, &r)| (a as f64 - r).abs());
            errors.push((p, measure::worst(diffs)));
        }
        Ok(errors)
    }
}
