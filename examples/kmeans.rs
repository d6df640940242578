//! k-means assignment: for each of `n` 2-D points, the nearest of `k` centroids and the
//! squared distance to it (one step of Lloyd's algorithm; the points drawn around `k`
//! centres, the centroids `k` of the points), on every placement, beside the same loop
//! written by hand with rayon.
//!
//! ```sh
//! cargo run --release --example kmeans -- [--n 1000000] [--k 64] [--reps 5] [--quick] [--json]
//! ```
//!
//! The kernel is `workloads::kmeans_assign` (`examples/common/workloads.rs`): the point
//! element-wise, the centroids as tables, two results from one loop:
//!
//! ```ignore
//! Kernel::new(|(x, y, cx, cy): (Expr<f32>, Expr<f32>, Table<f32>, Table<f32>)| {
//!     let start = (Expr::constant(0u32), Expr::constant(f32::INFINITY));
//!     fold_with(cx.len(), start, |(best, bd), j| {
//!         let (dx, dy) = (x.clone() - cx.at(j.clone()), y.clone() - cy.at(j.clone()));
//!         let d = dx.clone() * dx + dy.clone() * dy;
//!         let closer = d.lt(bd.clone());
//!         (closer.select(j, best), closer.select(d, bd))
//!     })
//! })
//! // called with the points' coordinates, then the centroids'
//! let (labels, dist2) = rt.call(&kernel, (&xs, &ys, &cx, &cy), placement)?.output;
//! ```
//!
//! Before measuring, every placement's answer is checked in f64: the distance it
//! reports must be the f64 distance to the centroid it chose, and that centroid the
//! nearest one, both within 1e-6 (coordinates in about [-0.1, 1.1]; two centroids
//! that close are a tie f32 cannot break). The output is the check's worst error, then
//! one line per placement with its median time and the share of points the GPU took,
//! the rayon loop's time, how the CPU device compares with it and Auto with the best
//! static placement, and Auto's decision. `--quick` assigns 100,000 points; `--json`
//! prints one JSON object. `compare` runs the same workload at its `--quick` size.

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
pub const NAME: &str = "k-means assignment";

/// Points by default, and with `--quick`; centroids.
pub const N: usize = 1_000_000;
pub const QUICK: usize = 100_000;
pub const K: usize = 64;

/// What the check measures, and the largest value allowed against the f64 reference.
pub const ERROR: &str = "abs error of a squared distance";
pub const TOLERANCE: f64 = 1e-6;

fn main() -> Result<()> {
    let args = args::Args::from_env();
    let n = args.n(if args.has("--quick") { QUICK } else { N })?;
    let k = args.get("--k", K)?;
    let reps = args.get("--reps", 5)?;

    crate::measure::run(&KMeans::new(n, k), reps, args.json())
}

/// Points (`points[0]` the x coordinates, `points[1]` the y), centroids likewise, and
/// the kernel that assigns them.
pub struct KMeans {
    points: Vec<Vec<f32>>,
    centroids: Vec<Vec<f32>>,
    kernel: KMeansKernel,
}

/// A point's coordinates element-wise, the centroids' as tables; (label, distance²).
type KMeansKernel = Kernel<(f32, f32, Table<f32>, Table<f32>), (u32, f32)>;

impl KMeans {
    pub fn new(n: usize, k: usize) -> KMeans {
        let (points, centroids) = suite::kmeans_data(n, 2, k, 1);
        KMeans {
            points,
            centroids,
            kernel: workloads::kmeans_assign(),
        }
    }
}

// `crate::measure`: this file's own when built alone, `compare`'s when it includes it
impl crate::measure::Workload for KMeans {
    type Output = (Vec<u32>, Vec<f32>);
    const NAME: &'static str = NAME;
    const ERROR: &'static str = ERROR;
    const TOLERANCE: f64 = TOLERANCE;

    fn size(&self) -> String {
        let (n, k) = (self.points[0].len(), self.centroids[0].len());
        format!("{n} points, {k} centroids")
    }

    /// The library's call: (labels, squared distances).
    fn run(&self, rt: &Runtime, p: Placement) -> hybrid::Result<Run<(Vec<u32>, Vec<f32>)>> {
        let (xs, ys) = (&self.points[0], &self.points[1]);
        let (cx, cy) = (&self.centroids[0], &self.centroids[1]);
        rt.call(&self.kernel, (xs, ys, cx, cy), p)
    }

    /// The same by hand with rayon.
    fn by_hand(&self) -> (Vec<u32>, Vec<f32>) {
        suite::kmeans_assign_rayon(&self.points, &self.centroids)
    }

    /// Each placement's largest error in f64: of the squared distance it reports
    /// against the f64 distance to the centroid it chose, and of that distance against
    /// the nearest centroid's.
    fn errors(&self, rt: &Runtime, placements: &[Placement]) -> Result<Vec<(Placement, f64)>> {
        let (xs, ys) = (&self.points[0], &self.points[1]);
        let (cx, cy) = (&self.centroids[0], &self.centroids[1]);
        let d2 = |i: usize, c: usize| {
            let (dx, dy) = (xs[i] as f64 - cx[c] as f64, ys[i] as f64 - cy[c] as f64);
            dx * dx + dy * dy
        };
        let nearest: Vec<f64> = (0..xs.len())
            .map(|i| {
                (0..cx.len())
                    .map(|c| d2(i, c))
                    .fold(f64::INFINITY, f64::min)
            })
            .collect();
        let mut errors = Vec::new();
        for &p in placements {
            let (labels, dist2) = self.run(rt, p)?.output;
            anyhow::ensure!(labels.len() == xs.len(), "{p}: {} labels", labels.len());
            let diffs = (0..xs.len()).map(|i| {
                let chosen = match labels[i] as usize {
                    c if c < cx.len() => d2(i, c),
                    _ => f64::NAN, // a label that is no centroid fails the check
                };
                (dist2[i] as f64 - chosen).abs().max(chosen - nearest[i])
            });
            errors.push((p, measure::worst(diffs)));
        }
        Ok(errors)
    }
}
