//! All-pairs n-body: the gravitational acceleration of each of `n` bodies from all the
//! others (G = 1, softened by eps² = 1e-4), on every placement, beside the same loop
//! written by hand with rayon. The bodies sit uniformly in the unit cube, masses in
//! [0.5, 1.5).
//!
//! ```sh
//! cargo run --release --example nbody -- [--n 4096] [--reps 5] [--quick] [--json] [--f64]
//! ```
//!
//! `--f64` runs the same workload in f64 (`workloads::nbody_in::<f64>`: 64-bit
//! positions and masses in, 64-bit accelerations out, beside an f64 rayon loop), checked
//! against the f64 reference within 1e-12 of the largest acceleration. With
//! `--steps K` it steps the bodies in f64, the state in `Array<f64>`s.
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
//!
//! `--steps K` instead moves the bodies K steps (`workloads::nbody_step`: positions and
//! velocities element-wise, positions and masses as tables, six results), once with
//! the state in host `Vec`s (`call`: every step sends it to the GPU and reads it back)
//! and once in arrays (`call_arrays`: the state stays where it was computed and is its
//! own table), on the CPU, the GPU and Auto: the median seconds per step and the bytes
//! moved per step, and whether the two ways end bit for bit in the same state.

use anyhow::Result;
use hybrid::{Array, Placement, Run, Runtime};

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
    if let Some(steps) = args.value("--steps")? {
        let steps = steps.parse()?;
        if args.has("--f64") {
            return stepping::<f64>(&rt, n, steps, args.json());
        }
        return stepping::<f32>(&rt, n, steps, args.json());
    }
    if args.has("--f64") {
        return crate::measure::run(&NBodyOf::<f64>::new(n), reps, args.json());
    }
    crate::measure::run(&NBody::new(n), reps, args.json())
}

/// (ax, ay, az), one entry per body in each.
type Accelerations<T> = (Vec<T>, Vec<T>, Vec<T>);

/// The precision n-body computes in: its name and its tolerance against the f64
/// reference.
pub trait Precision: suite::Real + hybrid::Float + hybrid::Value {
    const NAME: &'static str;
    const TOLERANCE: f64;
    fn from_f32(x: f32) -> Self;
}

impl Precision for f32 {
    const NAME: &'static str = NAME;
    const TOLERANCE: f64 = TOLERANCE;
    fn from_f32(x: f32) -> f32 {
        x
    }
}

/// In f64 the kernel and the reference differ only in how each term is rounded
/// (`m * inv³` against `m / (d² sqrt(d²))`) and in the order of the sum: about 1e-15
/// of the largest acceleration; the issue asks 1e-12.
impl Precision for f64 {
    const NAME: &'static str = "n-body f64";
    const TOLERANCE: f64 = 1e-12;
    fn from_f32(x: f32) -> f64 {
        x as f64
    }
}

/// `n` bodies (widened to `T`) and the kernel that gives their accelerations in `T`.
pub struct NBodyOf<T: Precision> {
    x: Vec<T>,
    y: Vec<T>,
    z: Vec<T>,
    m: Vec<T>,
    kernel: workloads::NBodyKernelOf<T>,
}

/// The f32 workload (`compare` runs it).
pub type NBody = NBodyOf<f32>;

impl<T: Precision> NBodyOf<T> {
    pub fn new(n: usize) -> NBodyOf<T> {
        let b = suite::bodies(n, 1);
        let to = |v: &[f32]| v.iter().map(|&a| T::from_f32(a)).collect::<Vec<T>>();
        NBodyOf {
            x: to(&b.x),
            y: to(&b.y),
            z: to(&b.z),
            m: to(&b.m),
            kernel: workloads::nbody_in(T::from_f32(suite::NBODY_SOFTENING2)),
        }
    }
}

// `crate::measure`: this file's own when built alone, `compare`'s when it includes it
impl<T: Precision> crate::measure::Workload for NBodyOf<T> {
    type Output = Accelerations<T>;
    const NAME: &'static str = T::NAME;
    const ERROR: &'static str = ERROR;
    const TOLERANCE: f64 = T::TOLERANCE;

    fn size(&self) -> String {
        format!("{} bodies", self.x.len())
    }

    /// The library's call: (ax, ay, az).
    fn run(&self, rt: &Runtime, p: Placement) -> hybrid::Result<Run<Accelerations<T>>> {
        let (x, y, z, m) = (&self.x, &self.y, &self.z, &self.m);
        rt.call(&self.kernel, (x, y, z, x, y, z, m), p)
    }

    /// The same by hand with rayon.
    fn by_hand(&self) -> Accelerations<T> {
        let soft = T::from_f32(suite::NBODY_SOFTENING2);
        suite::nbody_accel_rayon(&self.x, &self.y, &self.z, &self.m, soft)
    }

    /// Each placement's largest error of an acceleration (the length of the difference
    /// vector) against the f64 reference, relative to the largest acceleration.
    fn errors(&self, rt: &Runtime, placements: &[Placement]) -> Result<Vec<(Placement, f64)>> {
        let soft = suite::NBODY_SOFTENING2 as f64;
        let (rx, ry, rz) = suite::nbody_accel_f64(&self.x, &self.y, &self.z, &self.m, soft);
        let norm = |x: f64, y: f64, z: f64| (x * x + y * y + z * z).sqrt();
        let largest = measure::worst((0..rx.len()).map(|i| norm(rx[i], ry[i], rz[i])));
        let mut errors = Vec::new();
        for &p in placements {
            let (ax, ay, az) = self.run(rt, p)?.output;
            let diffs = (0..rx.len()).map(|i| {
                let d = |a: T, r: f64| a.into() - r;
                norm(d(ax[i], rx[i]), d(ay[i], ry[i]), d(az[i], rz[i])) / largest
            });
            errors.push((p, measure::worst(diffs)));
        }
        Ok(errors)
    }
}

/// The bodies' fields in `T`.
struct Fields<T> {
    x: Vec<T>,
    y: Vec<T>,
    z: Vec<T>,
    m: Vec<T>,
}

/// `--steps K`: the bodies moved K steps with their state in host `Vec`s and in arrays,
/// per placement: seconds and bytes moved per step.
fn stepping<T: Precision>(rt: &Runtime, n: usize, steps: usize, json: bool) -> Result<()> {
    let k = workloads::nbody_step_in(T::from_f32(suite::NBODY_SOFTENING2), T::from_f32(1e-3));
    let NBodyOf { x, y, z, m, .. } = NBodyOf::<T>::new(n);
    let b = Fields { x, y, z, m };
    let zeros = vec![T::default(); n];
    let mut rows = Vec::new();
    for p in measure::placements(rt)
        .into_iter()
        .filter(|p| matches!(p, Placement::Cpu | Placement::Gpu | Placement::Auto))
    {
        // host Vecs: each step's state comes back to the host
        let mut s = (
            b.x.clone(),
            b.y.clone(),
            b.z.clone(),
            zeros.clone(),
            zeros.clone(),
            zeros.clone(),
        );
        let (mut host_s, mut host_bytes) = (Vec::new(), 0u64);
        for _ in 0..steps {
            let t = std::time::Instant::now();
            let run = rt.call(
                &k,
                (&s.0, &s.1, &s.2, &s.3, &s.4, &s.5, &s.0, &s.1, &s.2, &b.m),
                p,
            )?;
            host_s.push(t.elapsed().as_secs_f64());
            host_bytes += run.report.bytes_to_devices() + run.report.bytes_from_devices();
            s = run.output;
        }
        // arrays: the state stays where it was computed
        let a = Array::from_slice;
        let mut st = (a(&b.x), a(&b.y), a(&b.z), a(&zeros), a(&zeros), a(&zeros));
        let m = a(&b.m);
        let (mut arr_s, mut arr_bytes) = (Vec::new(), 0u64);
        for _ in 0..steps {
            let t = std::time::Instant::now();
            let (x, y, z, vx, vy, vz) = &st;
            let run = rt.call_arrays(&k, (x, y, z, vx, vy, vz, x, y, z, &m), p)?;
            arr_s.push(t.elapsed().as_secs_f64());
            arr_bytes += run.report.bytes_to_devices() + run.report.bytes_from_devices();
            st = run.output;
        }
        let same = st.0.to_vec()? == s.0 && st.3.to_vec()? == s.3;
        rows.push((
            p,
            median(&mut host_s),
            host_bytes,
            median(&mut arr_s),
            arr_bytes,
            same,
        ));
    }
    let per = |b: u64| b as f64 / steps.max(1) as f64;
    if json {
        let rows: Vec<serde_json::Value> = rows
            .iter()
            .map(|(p, hs, hb, as_, ab, same)| {
                serde_json::json!({
                    "placement": p.to_string(),
                    "host_vecs_s_per_step": hs,
                    "host_vecs_bytes_per_step": per(*hb),
                    "arrays_s_per_step": as_,
                    "arrays_bytes_per_step": per(*ab),
                    "same_state": same,
                })
            })
            .collect();
        let out = serde_json::json!({
            "workload": "n-body steps", "precision": std::any::type_name::<T>(), "bodies": n, "steps": steps, "rows": rows,
        });
        println!("{out}");
        return Ok(());
    }
    println!(
        "n-body in {}: {n} bodies, {steps} steps (median per step; bytes moved per step)",
        std::any::type_name::<T>()
    );
    println!(
        "{:>10} {:>14} {:>14} {:>14} {:>14} {:>6}",
        "placement", "host vecs", "bytes", "arrays", "bytes", "same"
    );
    for (p, hs, hb, as_, ab, same) in &rows {
        println!(
            "{:>10} {:>12.2}ms {:>14.0} {:>12.2}ms {:>14.0} {:>6}",
            p.to_string(),
            hs * 1e3,
            per(*hb),
            as_ * 1e3,
            per(*ab),
            same
        );
    }
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}
