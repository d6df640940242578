//! Fusion of stages of several inputs in lazy chains (`Lazy::zip`, `Lazy::zip_n`).
//!
//! Each chain mixes element types (f32, u32, i32) and its float stages are exact
//! (small multiples of a quarter, scaled by small integers), so the fused kernel, the
//! stages run one by one and a reference computed here in Rust must agree bit for bit
//! on every device and split, whatever a shader compiler reorders or contracts.

mod common;

use common::{targets_with_splits, Target};
use hybrid::{index, select, Array, Error, Expr, Kernel, Placement, Reduce};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SEED: u64 = 0x5eed_f00d;

/// The chain's data: `x` (the source), `y` (the two-input stage's), `a` and `b` (the
/// three-input stage's).
struct Data {
    x: Vec<f32>,
    y: Vec<u32>,
    a: Vec<i32>,
    b: Vec<u32>,
}

fn data(seed: u64, n: usize) -> Data {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Data {
        x: (0..n)
            .map(|_| rng.random_range(-1000i32..1000) as f32 * 0.25)
            .collect(),
        y: (0..n).map(|_| rng.random()).collect(),
        a: (0..n).map(|_| rng.random_range(-1000i32..1000)).collect(),
        b: (0..n).map(|_| rng.random::<u32>() & 0xffff).collect(),
    }
}

/// The stages: one input, two (f32, u32), three (f32, i32, u32), then f32 to i32.
struct Stages {
    k1: Kernel<f32, f32>,
    k2: Kernel<(f32, u32), f32>,
    k3: Kernel<(f32, i32, u32), f32>,
    k4: Kernel<f32, i32>,
}

fn stages() -> Stages {
    Stages {
        k1: Kernel::map(|x: Expr<f32>| x * 2.0 + 1.0),
        k2: Kernel::new(|(x, y): (Expr<f32>, Expr<u32>)| {
            x * (y.clone() & 7u32).cast::<f32>() - ((y >> 3u32) & 15u32).cast::<f32>()
        }),
        k3: Kernel::new(|(x, a, b): (Expr<f32>, Expr<i32>, Expr<u32>)| {
            select(a.gt(0i32), x.clone() + a.cast::<f32>(), x - b.cast::<f32>())
        }),
        k4: Kernel::map(|x: Expr<f32>| x.cast::<i32>() * 3i32 + index().cast::<i32>()),
    }
}

/// The chain computed here, element by element: after the three-input stage (f32),
/// and after the last one (i32).
fn reference(d: &Data) -> (Vec<f32>, Vec<i32>) {
    let f: Vec<f32> = (0..d.x.len())
        .map(|i| {
            let x = d.x[i] * 2.0 + 1.0;
            let x = x * (d.y[i] & 7) as f32 - ((d.y[i] >> 3) & 15) as f32;
            if d.a[i] > 0 {
                x + d.a[i] as f32
            } else {
                x - d.b[i] as f32
            }
        })
        .collect();
    let i: Vec<i32> = f
        .iter()
        .enumerate()
        .map(|(i, &x)| (x as i32).wrapping_mul(3).wrapping_add(i as i32))
        .collect();
    (f, i)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Every device kind, and the GPU splitting with the CPU.
fn every_target() -> Vec<Target> {
    targets_with_splits(&[0.5])
}

#[test]
fn a_fused_chain_of_multi_input_stages_equals_the_stages_run_in_turn() {
    let n = 70_001; // more than one CPU task, not a multiple of anything
    let d = data(SEED, n);
    let (want_f, want_i) = reference(&d);
    let k = stages();
    let (x, y) = (Array::from_slice(&d.x), Array::from_slice(&d.y));
    let (a, b) = (Array::from_slice(&d.a), Array::from_slice(&d.b));
    for t in every_target() {
        let p = t.placement;
        for fuse in [true, false] {
            let why = format!("seed {SEED:#x}, {p}, fuse={fuse}");
            let run = x
                .lazy()
                .fuse(fuse)
                .map(&k.k1)
                .zip(&y, &k.k2)
                .zip_n((&a, &b), &k.k3)
                .to_vec(t.rt, p)
                .unwrap_or_else(|e| panic!("{why}: {e}"));
            assert_eq!(bits(&run.output), bits(&want_f), "{why}");
            let r = &run.report;
            assert_eq!(r.kernels_fused(), if fuse { 3 } else { 1 }, "{why}\n{r}");
            assert_eq!(r.steps(), if fuse { 1 } else { 3 }, "{why}\n{r}");

            // a chain that starts with a two-input stage and changes type at its end
            let run = x
                .lazy()
                .fuse(fuse)
                .map(&k.k1)
                .zip(&y, &k.k2)
                .zip_n((&a, &b), &k.k3)
                .map(&k.k4)
                .eval(t.rt, p)
                .unwrap_or_else(|e| panic!("{why}: {e}"));
            assert_eq!(run.report.kernels_fused(), if fuse { 4 } else { 1 });
            let got = run.output.to_vec().unwrap_or_else(|e| panic!("{why}: {e}"));
            assert_eq!(got, want_i, "{why}");
        }
    }
}

#[test]
fn a_chain_may_start_with_a_stage_of_several_inputs() {
    let n = 4099;
    let d = data(SEED + 1, n);
    let k = stages();
    let (x, y) = (Array::from_slice(&d.x), Array::from_slice(&d.y));
    let (a, b) = (Array::from_slice(&d.a), Array::from_slice(&d.b));
    // x then (x, y) then (x, a, b): the reference without its first stage
    let want: Vec<u32> = (0..n)
        .map(|i| {
            let x = d.x[i] * (d.y[i] & 7) as f32 - ((d.y[i] >> 3) & 15) as f32;
            let x = if d.a[i] > 0 {
                x + d.a[i] as f32
            } else {
                x - d.b[i] as f32
            };
            x.to_bits()
        })
        .collect();
    for t in every_target() {
        let p = t.placement;
        let why = format!("seed {:#x}, {p}", SEED + 1);
        let run = x
            .lazy()
            .zip(&y, &k.k2)
            .zip_n((&a, &b), &k.k3)
            .to_vec(t.rt, p)
            .unwrap_or_else(|e| panic!("{why}: {e}"));
        assert_eq!(bits(&run.output), want, "{why}");
        assert_eq!(run.report.kernels_fused(), 2, "{why}");
    }
}

#[test]
fn a_reduction_over_a_fused_multi_input_chain_is_one_pass() {
    let n = 50_003;
    let d = data(SEED + 2, n);
    let (want_f, want_i) = reference(&d);
    let sum = want_i.iter().fold(0i32, |s, &v| s.wrapping_add(v));
    let max = want_f.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let k = stages();
    let (x, y) = (Array::from_slice(&d.x), Array::from_slice(&d.y));
    let (a, b) = (Array::from_slice(&d.a), Array::from_slice(&d.b));
    for t in every_target() {
        let p = t.placement;
        for fuse in [true, false] {
            let why = format!("seed {:#x}, {p}, fuse={fuse}", SEED + 2);
            let chain = || {
                x.lazy()
                    .fuse(fuse)
                    .map(&k.k1)
                    .zip(&y, &k.k2)
                    .zip_n((&a, &b), &k.k3)
            };
            let r = chain()
                .map(&k.k4)
                .reduce(t.rt, Reduce::Sum, p)
                .unwrap_or_else(|e| panic!("{why}: {e}"));
            assert_eq!(r.output, sum, "{why}");
            assert_eq!(r.report.kernels_fused(), if fuse { 4 } else { 1 }, "{why}");
            assert_eq!(r.report.steps(), if fuse { 1 } else { 4 }, "{why}");
            let r = chain()
                .reduce(t.rt, Reduce::Max, p)
                .unwrap_or_else(|e| panic!("{why}: {e}"));
            assert_eq!(r.output.to_bits(), max.to_bits(), "{why}");
            // one stage of three inputs, reduced
            let r = x
                .lazy()
                .fuse(fuse)
                .zip_n((&a, &b), &k.k3)
                .reduce(t.rt, Reduce::Min, p)
                .unwrap_or_else(|e| panic!("{why}: {e}"));
            let min = (0..n)
                .map(|i| {
                    if d.a[i] > 0 {
                        d.x[i] + d.a[i] as f32
                    } else {
                        d.x[i] - d.b[i] as f32
                    }
                })
                .fold(f32::INFINITY, f32::min);
            assert_eq!(r.output.to_bits(), min.to_bits(), "{why}");
        }
    }
}

#[test]
fn arrays_of_another_length_are_a_typed_error() {
    let k = stages();
    let d = data(SEED + 3, 100);
    let x = Array::from_slice(&d.x);
    let y = Array::from_slice(&d.y);
    let short = Array::from_slice(&d.a[..99]);
    let b = Array::from_slice(&d.b);
    let want = Some(Error::LengthMismatch {
        left: 100,
        right: 99,
    });
    for t in every_target() {
        let p = t.placement;
        for fuse in [true, false] {
            let chain = || {
                x.lazy()
                    .fuse(fuse)
                    .map(&k.k1)
                    .zip(&y, &k.k2)
                    .zip_n((&short, &b), &k.k3)
            };
            assert_eq!(chain().eval(t.rt, p).err(), want, "{p} fuse={fuse}");
            assert_eq!(chain().to_vec(t.rt, p).err(), want, "{p} fuse={fuse}");
            let r = chain().reduce(t.rt, Reduce::Sum, p);
            assert_eq!(r.err(), want, "{p} fuse={fuse}");
            let longer = Array::from_vec(vec![1u32; 101]);
            let r = x.lazy().fuse(fuse).zip(&longer, &k.k2).to_vec(t.rt, p);
            assert_eq!(
                r.err(),
                Some(Error::LengthMismatch {
                    left: 100,
                    right: 101
                }),
                "{p} fuse={fuse}"
            );
        }
    }
    if let Some(e) = x
        .lazy()
        .zip(&short, &Kernel::new(|(x, _a): (Expr<f32>, Expr<i32>)| x))
        .eval(common::shared_cpu(), Placement::Cpu)
        .err()
    {
        common::assert_lowercase(&e);
    } else {
        panic!("a short array must be an error");
    }
}

#[test]
fn empty_arrays_give_empty_results() {
    let k = stages();
    let x = Array::<f32>::from_vec(Vec::new());
    let y = Array::<u32>::from_vec(Vec::new());
    let a = Array::<i32>::from_vec(Vec::new());
    let b = Array::<u32>::from_vec(Vec::new());
    for t in every_target() {
        let p = t.placement;
        for fuse in [true, false] {
            let chain = || {
                x.lazy()
                    .fuse(fuse)
                    .map(&k.k1)
                    .zip(&y, &k.k2)
                    .zip_n((&a, &b), &k.k3)
                    .map(&k.k4)
            };
            let v = chain().to_vec(t.rt, p).expect("an empty chain runs");
            assert!(v.output.is_empty(), "{p} fuse={fuse}");
            let e = chain().eval(t.rt, p).expect("an empty chain runs");
            assert!(e.output.is_empty(), "{p} fuse={fuse}");
            let s = chain().reduce(t.rt, Reduce::Sum, p).expect("an empty sum");
            assert_eq!(s.output, 0, "{p} fuse={fuse}");
        }
    }
}
