//! Black-Scholes: the prices of a European call and put for each of `n` options (spot,
//! strike, years to expiry; rate 2%, volatility 30%, drawn as in NVIDIA's CUDA SDK
//! sample), on every placement, beside the same loop written by hand with rayon.
//!
//! ```sh
//! cargo run --release --example blackscholes -- [--n 4000000] [--reps 5] [--quick] [--json]
//! ```
//!
//! The kernel is `workloads::black_scholes` (`examples/common/workloads.rs`): three
//! inputs, two results, one call per batch:
//!
//! ```ignore
//! Kernel::new(move |(s, x, t): (Expr<f32>, Expr<f32>, Expr<f32>)| {
//!     let sqrt_t = t.sqrt();
//!     let d1 = ((s.clone() / x.clone()).ln() + t.clone() * (r + 0.5 * v * v)) / (sqrt_t.clone() * v);
//!     let d2 = d1.clone() - sqrt_t * v;
//!     let (n1, n2) = (cnd(d1), cnd(d2)); // the normal CDF, Abramowitz & Stegun 26.2.17
//!     let discounted = x * (t * -r).exp();
//!     (s.clone() * n1.clone() - discounted.clone() * n2.clone(),  // call
//!      discounted * (1.0f32 - n2) - s * (1.0f32 - n1))            // put
//! })
//! // called as
//! let (calls, puts) = rt.call(&kernel, (&spot, &strike, &years), placement)?.output;
//! ```
//!
//! Before measuring, every placement's prices are checked against the f64 formula with
//! the exact normal CDF: the largest absolute error of a price (prices run up to about
//! 100) must be within 1e-3. The output is the check's worst error, then one line per
//! placement with its median time and the share of options the GPU priced, the rayon
//! loop's time, how the CPU device compares with it and Auto with the best static
//! placement, and Auto's decision. `--quick` prices 500,000 options; `--json` prints one
//! JSON object. `compare` runs the same workload at its `--quick` size.

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
pub const NAME: &str = "black-scholes";

/// Options priced by default, and with `--quick`.
pub const N: usize = 4_000_000;
pub const QUICK: usize = 500_000;

/// What the check measures, and the largest value allowed against the f64 reference: the
/// A&S CDF is within 7.5e-8 of the exact one and f32 rounds at 6e-8 relative, so on
/// prices up to about 100 (a put's strike is up to 100) a few 1e-5 is expected; a GPU's
/// `exp` and `ln` may lose a few more bits.
pub const ERROR: &str = "abs error of a price";
pub const TOLERANCE: f64 = 1e-3;

fn main() -> Result<()> {
    let args = args::Args::from_env();
    let n = args.n(if args.has("--quick") { QUICK } else { N })?;
    let reps = args.get("--reps", 5)?;

    crate::measure::run(&BlackScholes::new(n), reps, args.json())
}

/// `n` options and the kernel that prices them.
pub struct BlackScholes {
    options: suite::Options,
    kernel: Kernel<(f32, f32, f32), (f32, f32)>,
}

impl BlackScholes {
    pub fn new(n: usize) -> BlackScholes {
        BlackScholes {
            options: suite::options(n, 1),
            kernel: workloads::black_scholes(suite::BS_RATE, suite::BS_VOLATILITY),
        }
    }
}

// `crate::measure`: this file's own when built alone, `compare`'s when it includes it
impl crate::measure::Workload for BlackScholes {
    type Output = (Vec<f32>, Vec<f32>);
    const NAME: &'static str = NAME;
    const ERROR: &'static str = ERROR;
    const TOLERANCE: f64 = TOLERANCE;

    fn size(&self) -> String {
        format!("{} options", self.options.spot.len())
    }

    /// The library's call: (calls, puts).
    fn run(&self, rt: &Runtime, p: Placement) -> hybrid::Result<Run<(Vec<f32>, Vec<f32>)>> {
        let o = &self.options;
        rt.call(&self.kernel, (&o.spot, &o.strike, &o.years), p)
    }

    /// The same by hand with rayon.
    fn by_hand(&self) -> (Vec<f32>, Vec<f32>) {
        let o = &self.options;
        let (r, v) = (suite::BS_RATE, suite::BS_VOLATILITY);
        suite::black_scholes_rayon(&o.spot, &o.strike, &o.years, r, v)
    }

    /// Each placement's largest absolute error in a price against the f64 reference.
    fn errors(&self, rt: &Runtime, placements: &[Placement]) -> Result<Vec<(Placement, f64)>> {
        let o = &self.options;
        let (r, v) = (suite::BS_RATE as f64, suite::BS_VOLATILITY as f64);
        let reference: Vec<(f64, f64)> = (0..o.spot.len())
            .map(|i| {
                let (s, k, t) = (o.spot[i] as f64, o.strike[i] as f64, o.years[i] as f64);
                suite::black_scholes_f64(s, k, t, r, v)
            })
            .collect();
        let mut errors = Vec::new();
        for &p in placements {
            let (calls, puts) = self.run(rt, p)?.output;
            let diffs = reference.iter().zip(calls.iter().zip(&puts)).flat_map(
                |(&(c, q), (&call, &put))| [(call as f64 - c).abs(), (put as f64 - q).abs()],
            );
            errors.push((p, measure::worst(diffs)));
        }
        Ok(errors)
    }
}
