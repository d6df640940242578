//! Mandelbrot: the escape-time count of each pixel of a `size` x `size` image of the
//! whole set ([-2, 0.5] x [-1.25, 1.25]), at most `max_iter` iterations, on every
//! placement, beside the same loop written by hand with rayon. A pixel inside the set
//! costs `max_iter` iterations, one far outside a few: the work per element varies by
//! two orders of magnitude across the image, so an even split of the elements is not an
//! even split of the work.
//!
//! ```sh
//! cargo run --release --example mandelbrot -- [--size 1024] [--max-iter 256] [--reps 5] [--quick] [--json]
//! ```
//!
//! The kernel is `workloads::mandelbrot` (`examples/common/workloads.rs`): no input at
//! all, the pixel from the element's index, and a loop that stops early:
//!
//! ```ignore
//! Kernel::new(move |()| {
//!     let i = index();
//!     let cr = ((i.clone() % view.width).cast::<f32>() + 0.5f32) * ((view.x1 - view.x0) / view.width as f32) + view.x0;
//!     let ci = ((i / view.width).cast::<f32>() + 0.5f32) * ((view.y1 - view.y0) / view.height as f32) + view.y0;
//!     let zero = Expr::constant(0.0f32);
//!     let (_, n) = fold_while(max_iter, (zero.clone(), zero),
//!         |(zr, zi), _| (zr.clone() * zr + zi.clone() * zi).le(4.0f32),
//!         |(zr, zi), _| (zr.clone() * zr.clone() - zi.clone() * zi.clone() + cr.clone(), zr * zi * 2.0f32 + ci.clone()));
//!     n
//! })
//! // called over the pixels, with no data
//! let counts = rt.call_over(width * height, &kernel, (), placement)?.output;
//! ```
//!
//! Before measuring, every placement's counts are checked against an f64 loop. Near the
//! set's boundary f32 and f64 orbits part ways, so counts there differ: the share of
//! pixels whose count differs must be within 1% (about
//! 0.2% differ). The output is the check's worst share,
//! then one line per placement with its median time and the share of pixels the GPU
//! took, the rayon loop's time, how the CPU device compares with it and Auto with the
//! best static placement, and Auto's decision. `--quick` draws 512 x 512; `--json`
//! prints one JSON object. `compare` runs the same workload at its `--quick` size.

use anyhow::Result;
use hybrid::{Kernel, Placement, Run, Runtime};

#[path = "common/args.rs"]
mod args;
#[path = "common/measure.rs"]
mod measure;
#[path = "common/suite.rs"]
mod suite;
#[path = "common/workloads.rs"]
mod workloads;

/// The workload's name in the output.
pub const NAME: &str = "mandelbrot";

/// The image's side by default, and with `--quick`; the iterations at most.
pub const SIZE: u32 = 1024;
pub const QUICK: u32 = 512;
pub const MAX_ITER: u32 = 256;

/// What the check measures, and the largest value allowed against the f64 reference.
pub const ERROR: &str = "share of pixels whose count differs";
pub const TOLERANCE: f64 = 0.01;

fn main() -> Result<()> {
    let args = args::Args::from_env();
    let size = args.get("--size", if args.has("--quick") { QUICK } else { SIZE })?;
    let max_iter = args.get("--max-iter", MAX_ITER)?;
    let reps = args.get("--reps", 5)?;

    crate::measure::run(&Mandelbrot::new(size, max_iter), reps, args.json())
}

/// An image of the whole set and the kernel that draws it.
pub struct Mandelbrot {
    view: workloads::View,
    max_iter: u32,
    kernel: Kernel<(), u32>,
}

impl Mandelbrot {
    pub fn new(size: u32, max_iter: u32) -> Mandelbrot {
        let view = workloads::View::whole(size, size);
        Mandelbrot {
            view,
            max_iter,
            kernel: workloads::mandelbrot(view, max_iter),
        }
    }

    fn pixels(&self) -> usize {
        self.view.width as usize * self.view.height as usize
    }
}

// `crate::measure`: this file's own when built alone, `compare`'s when it includes it
impl crate::measure::Workload for Mandelbrot {
    type Output = Vec<u32>;
    const NAME: &'static str = NAME;
    const ERROR: &'static str = ERROR;
    const TOLERANCE: f64 = TOLERANCE;

    fn size(&self) -> String {
        let v = &self.view;
        format!("{} x {}, max_iter {}", v.width, v.height, self.max_iter)
    }

    /// The library's call: the counts, row-major.
    fn run(&self, rt: &Runtime, p: Placement) -> hybrid::Result<Run<Vec<u32>>> {
        rt.call_over(self.pixels(), &self.kernel, (), p)
    }

    /// The same by hand with rayon.
    fn by_hand(&self) -> Vec<u32> {
        let v = &self.view;
        let (w, h) = (v.width as usize, v.height as usize);
        suite::mandelbrot_rayon(w, h, v.x0, v.x1, v.y0, v.y1, self.max_iter)
    }

    /// Each placement's share of pixels whose count differs from the f64 reference.
    fn errors(&self, rt: &Runtime, placements: &[Placement]) -> Result<Vec<(Placement, f64)>> {
        let v = &self.view;
        let (w, h) = (v.width as usize, v.height as usize);
        let (x0, x1, y0, y1) = suite::MANDELBROT_VIEW;
        let reference = suite::mandelbrot_counts_f64(w, h, x0, x1, y0, y1, self.max_iter);
        let mut errors = Vec::new();
        for &p in placements {
            let counts = self.run(rt, p)?.output;
            anyhow::ensure!(
                counts.len() == reference.len(),
                "{p}: {} counts",
                counts.len()
            );
            let differ = counts
                .iter()
                .zip(&reference)
                .filter(|(a, b)| a != b)
                .count();
            errors.push((p, differ as f64 / reference.len().max(1) as f64));
        }
        Ok(errors)
    }
}
