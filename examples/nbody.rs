//! All-pairs n-body: the gravitational acceleration of each of `n` bodies from all the
//! others (G = 1, softened by eps² = 1e-4), on every placement, beside the same loop
//! written by hand with rayon. The bodies sit uniformly in the unit cube, masses in
//! [0.5, 1.5).
//!
//! ```sh
//! cargo run --release --example nbody -- [--n 4096] [--reps 5] [--quick] [--json]
//! ```
//!
//! The kernel is `workloads::nbody` (`examples/common/workloads.rs`): each body's own
//! position comes element-wise, every body's position and mass as tables, and one loop
//! carries the three sums:
//!
//! ```ignore
//! Kernel::new(move |(x, y, z, px, py, pz, m): (Expr<f32>, Expr<f32>, Expr<f32>,
//!                                              Table<f32>, Table<f32>, Table<f32>, Table<f32>)| {
//!     let zero = Expr::constant(0.0f32);
//!     fold_with(px.len(), (zero.clone(), zero.clone(), zero), |(ax, ay, az), j| {
//!         let (dx, dy, dz) = (px.at(j.clone()) - x.clone(), py.at(j.clone()) - y.clone(), pz.at(j.clone()) - z.clone());
//!         let inv = 1.0f32 / (dx.clone() * dx.clone() + dy.clone() * dy.clone() + dz.clone() * dz.clone() + softening2).sqrt();
//!         let s = m.at(j) * inv.clone() * inv.clone() * inv;
//!         (ax + dx * s.clone(), ay + dy * s.clone(), az + dz * s)
//!     })
//! })
//! // called with the positions twice: element-wise (each body's own) and as tables (all)
//! let (ax, ay, az) = rt.call(&kernel, (&x, &y, &z, &x, &y, &z, &m), placement)?.output;
//! ```
//!
//! Before measuring, every placement's accelerations are checked against an f64 loop:
//! the error of a body's acceleration relative to the largest acceleration of all must
//! be within 1e-5. The output is the check's worst error, then one line per placement
//! with its median time and the share of bodies the GPU took, the rayon loop's time,
//! how the CPU device compares with it and Auto with the best static placement, and
//! Auto's decision (the tables go whole to every device, once per call).
//! `--quick` takes 1,024 bodies; `--json` prints one JSON object. `compare` runs the
//! same workload at its `--quick` size.

use std::hint::black_box;

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
pub const NAME: &str = "n-body";

/// Bodies by default, and with `--quick`.
pub const N: usize = 4096;
pub const QUICK: usize = 1024;

/// What the check measures, and the largest value allowed against the f64 reference.
/// Each acceleration is a sum of `n` terms rounded in f32, and close pairs make a few
/// terms large: about 1e-6 of the largest acceleration is expected.
pub const ERROR: &str = "error of an acceleration / the largest";
pub const TOLERANCE: f64 = 1e-5;

fn main() -> Result<()> {
    let args = args::Args::from_env();
    let n = args.n(if args.has("--quick") { QUICK } else { N })?;
    let reps = args.get("--reps", 5)?;

    let rt = Runtime::new()?;
    let w = NBody::new(n);
    let placements = measure::placements(&rt);
    let check = measure::check(ERROR, TOLERANCE, &w.errors(&rt, &placements)?)?;
    let timings = measure::measure(&placements, reps, &|p| Ok(w.run(&rt, p)?.report), &|| {
        black_box(w.by_hand());
    })?;
    measure::print(NAME, &w.size(), &rt, &timings, &check, args.json());
    Ok(())
}

/// Three positions element-wise, three positions and the masses as tables; three
/// results.
type NBodyKernel = Kernel<
    (
        f32,
        f32,
        f32,
        Table<f32>,
        Table<f32>,
        Table<f32>,
        Table<f32>,
    ),
    (f32, f32, f32),
>;

/// (ax, ay, az), one entry per body in each.
type Accelerations = (Vec<f32>, Vec<f32>, Vec<f32>);

/// `n` bodies and the kernel that gives their accelerations.
pub struct NBody {
    bodies: suite::Bodies,
    kernel: NBodyKernel,
}

impl NBody {
    pub fn new(n: usize) -> NBody {
        NBody {
            bodies: suite::bodies(n, 1),
            kernel: workloads::nbody(suite::NBODY_SOFTENING2),
        }
    }

    pub fn size(&self) -> String {
        format!("{} bodies", self.bodies.x.len())
    }

    /// The library's call: (ax, ay, az).
    pub fn run(&self, rt: &Runtime, p: Placement) -> hybrid::Result<Run<Accelerations>> {
        let b = &self.bodies;
        rt.call(&self.kernel, (&b.x, &b.y, &b.z, &b.x, &b.y, &b.z, &b.m), p)
    }

    /// The same by hand with rayon.
    pub fn by_hand(&self) -> Accelerations {
        let b = &self.bodies;
        suite::nbody_accel_rayon(&b.x, &b.y, &b.z, &b.m, suite::NBODY_SOFTENING2)
    }

    /// Each placement's largest error of an acceleration (the length of the difference
    /// vector) against the f64 reference, relative to the largest acceleration.
    pub fn errors(&self, rt: &Runtime, placements: &[Placement]) -> Result<Vec<(Placement, f64)>> {
        let b = &self.bodies;
        let (rx, ry, rz) =
            suite::nbody_accel_f64(&b.x, &b.y, &b.z, &b.m, suite::NBODY_SOFTENING2 as f64);
        let norm = |x: f64, y: f64, z: f64| (x * x + y * y + z * z).sqrt();
        let largest = measure::worst((0..rx.len()).map(|i| norm(rx[i], ry[i], rz[i])));
        let mut errors = Vec::new();
        for &p in placements {
            let (ax, ay, az) = self.run(rt, p)?.output;
            let diffs = (0..rx.len()).map(|i| {
                let d = |a: f32, r: f64| a as f64 - r;
                norm(d(ax[i], rx[i]), d(ay[i], ry[i]), d(az[i], rz[i])) / largest
            });
            errors.push((p, measure::worst(diffs)));
        }
        Ok(errors)
    }
}
