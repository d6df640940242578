//! Matrix multiply: C = A B for square `n` x `n` matrices (entries uniform in [-1, 1)),
//! one element of C per kernel element, on every placement, beside the same loop
//! written by hand with rayon. Both are naive (a row of A against a column of B, no
//! blocking): the point is the split between devices, not a BLAS.
//!
//! ```sh
//! cargo run --release --example matmul -- [--n 512] [--reps 5] [--quick] [--json]
//! ```
//!
//! The kernel is `workloads::matmul` (`examples/common/workloads.rs`): both matrices are
//! tables, each element of C a loop over a row of A and a column of B:
//!
//! ```ignore
//! Kernel::new(move |(a, b): (Table<f32>, Table<f32>)| {
//!     let i = index();
//!     let (row, col) = (i.clone() / cols, i % cols);
//!     fold_with(k, Expr::constant(0.0f32), |acc, j| {
//!         acc + a.at(row.clone() * k + j.clone()) * b.at(j * cols + col.clone())
//!     })
//! })
//! // called over the elements of C
//! let c = rt.call_over(rows * cols, &kernel, (&a, &b), placement)?.output;
//! ```
//!
//! Before measuring, every placement's C is checked against an f64 product: an
//! element's error relative to the sum it rounds, Σₚ |a_ip b_pj|, must be within 1e-4
//! (a sum of `n` products in any order is within n · 2⁻²⁴ of it, 3e-5 at n = 512;
//! rounding errors that cancel keep it far below). The output is the check's worst
//! error, then one line per placement with its median time and the share of elements
//! the GPU took, the rayon loop's time, how the CPU device compares with it and Auto
//! with the best static placement, and Auto's decision. `--quick` multiplies 128 x 128;
//! `--json` prints one JSON object. `compare` runs the same workload at its `--quick`
//! size.

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
pub const NAME: &str = "matmul";

/// The matrices' side by default, and with `--quick`.
pub const N: usize = 512;
pub const QUICK: usize = 128;

/// What the check measures, and the largest value allowed against the f64 reference.
pub const ERROR: &str = "error of an element / Σ|a b|";
pub const TOLERANCE: f64 = 1e-4;

fn main() -> Result<()> {
    let args = args::Args::from_env();
    let n = args.n(if args.has("--quick") { QUICK } else { N })?;
    let reps = args.get("--reps", 5)?;

    crate::measure::run(&Matmul::new(n), reps, args.json())
}

/// Two square matrices and the kernel that multiplies them.
pub struct Matmul {
    n: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    kernel: Kernel<(Table<f32>, Table<f32>), f32>,
}

impl Matmul {
    pub fn new(n: usize) -> Matmul {
        let (a, b) = suite::matrices(n, n, n, 1);
        Matmul {
            n,
            a,
            b,
            kernel: workloads::matmul(n as u32, n as u32),
        }
    }
}

// `crate::measure`: this file's own when built alone, `compare`'s when it includes it
impl crate::measure::Workload for Matmul {
    type Output = Vec<f32>;
    const NAME: &'static str = NAME;
    const ERROR: &'static str = ERROR;
    const TOLERANCE: f64 = TOLERANCE;

    fn size(&self) -> String {
        format!("{0} x {0} x {0}", self.n)
    }

    /// The library's call: C, row-major.
    fn run(&self, rt: &Runtime, p: Placement) -> hybrid::Result<Run<Vec<f32>>> {
        rt.call_over(self.n * self.n, &self.kernel, (&self.a, &self.b), p)
    }

    /// The same by hand with rayon.
    fn by_hand(&self) -> Vec<f32> {
        suite::matmul_rayon(&self.a, &self.b, self.n, self.n, self.n)
    }

    /// Each placement's largest error of an element of C against the f64 reference,
    /// relative to Σₚ |a_ip b_pj|.
    fn errors(&self, rt: &Runtime, placements: &[Placement]) -> Result<Vec<(Placement, f64)>> {
        let n = self.n;
        let reference = suite::matmul_f64(&self.a, &self.b, n, n, n);
        let abs = |m: &[f32]| m.iter().map(|v| v.abs()).collect::<Vec<f32>>();
        let scale = suite::matmul_f64(&abs(&self.a), &abs(&self.b), n, n, n);
        let mut errors = Vec::new();
        for &p in placements {
            let c = self.run(rt, p)?.output;
            anyhow::ensure!(c.len() == reference.len(), "{p}: {} elements", c.len());
            let diffs = (0..c.len()).map(|i| (c[i] as f64 - reference[i]).abs() / scale[i]);
            errors.push((p, measure::worst(diffs)));
        }
        Ok(errors)
    }
}
