//! Random kernels that compute in 64 bits, on every device and placement, against a
//! reference more exact than f64.
//!
//! Each case is a random kernel from `common::gen` with `Opts::wide`: its inputs and
//! result are f32/i32/u32 (a GPU takes no 64-bit inputs or results in this version),
//! and between them it casts up to `f64`, `i64` and `u64`, computes there (arithmetic,
//! `%`, `sqrt`, `floor` and the like, `min`/`max`/`clamp`, `mul_add`, `select`, folds,
//! comparisons, shifts, bit operations) and casts back down. Every element is checked
//! against `common::reference`, with the tables of the device that computed it:
//!
//! - 64-bit integers are exact: wrapping, shifts masked to 0..=63, `x / 0 == x`,
//!   `MIN / -1 == MIN`, `x % 0 == 0`, and the casts (WGSL's clamp-then-truncate from a
//!   float, to the largest value of the source type below the destination's top).
//! - f64 `+ - *` are correctly rounded on every device (Vulkan requires it), `/` and
//!   `sqrt` on the CPU and, measured, on lavapipe (`f64_division_and_sqrt_are_
//!   correctly_rounded` below checks it on every run); another GPU gets Vulkan's
//!   allowance (`/` 2.5 ULP, `sqrt` 4.5). The reference computes each operation in
//!   f64 and finds its own rounding error exactly (two-sum, an fma for products, the
//!   remainder of a quotient or root), so an exact result is known to be exact (and
//!   `floor`, comparisons and casts of it are decided) and an inexact one is bounded
//!   by the device's ULPs plus the reference's own; a GPU's reassociation and
//!   contraction are allowed for, as for f32 (`reference::Table::reassociates`).
//! - `sin`, `cos`, `tan`, `exp`, `exp2`, `ln`, `log2` and `pow` in f64 run on the CPU
//!   only (a GPU has no f64 instruction for them: `Device::computes` refuses the
//!   kernel). The arithmetic tests leave them out so that every placement computes;
//!   `random_f64_math_kernels_run_on_the_cpu` puts them in, checks them on the CPU
//!   against libm's bound (4 ULP), and checks that a GPU placement is refused with a
//!   typed error naming the function and a split leaves the GPU out, unless the
//!   function was folded into a constant on the host.
//!
//! `HYBRID_PARITY_CASES=n` runs n cases per test instead of the default;
//! `HYBRID_PARITY_SEED=s` runs the one case with seed s (printed by a failure).

mod common;

use common::gen::{self, Ast, Case, Elem, Node, Opts, Ty, Un};
use common::reference::{self, Table, Verdict, V};
use common::{
    assert_cases_meaningful, call, check_case, check_output, check_target, computed_on_gpu,
    gpu_elements, inputs, parity_cases, parity_seeds, shared_cpu, shared_gpu, typed, Refs, Tally,
    Target,
};
use hybrid::{Error, Expr, Kernel, Placement};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Cases per test unless overridden.
const DEFAULT_CASES: u64 = 800;
const SPLITS: [f64; 3] = [0.0, 0.3, 1.0];

fn seeds(base: u64, default: u64) -> Vec<u64> {
    parity_seeds(base, parity_cases().unwrap_or(default))
}

/// Whether the GPU under test is Mesa's lavapipe (llvmpipe), whose f64 `/` and
/// `sqrt` are correctly rounded (measured below).
fn gpu_is_lavapipe() -> bool {
    static LAVAPIPE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LAVAPIPE.get_or_init(|| {
        shared_gpu().is_some_and(|rt| {
            rt.devices()
                .iter()
                .any(|d| d.kind.is_gpu() && d.name.to_lowercase().contains("llvmpipe"))
        })
    })
}

/// The GPU under test when it computes in f64, i64 and u64 (lavapipe does); a GPU
/// without them is left out of these tests (`tests/f64.rs` checks how such a device
/// is left out of a call), with a printed note.
fn wide_gpu() -> Option<&'static hybrid::Runtime> {
    use hybrid::ScalarType::{F64, I64, U64};
    let rt = shared_gpu()?;
    let has = rt
        .devices()
        .iter()
        .any(|d| d.kind.is_gpu() && [F64, I64, U64].iter().all(|t| d.types.contains(t)));
    if !has {
        eprintln!("skipping the gpu: it computes in no f64, i64 or u64");
    }
    has.then_some(rt)
}

/// The CPU, and the GPU ([`wide_gpu`]) alone and splitting with the CPU at `splits`.
fn wide_targets(splits: &[f64]) -> Vec<Target> {
    let mut t = vec![Target {
        rt: shared_cpu(),
        placement: Placement::Cpu,
    }];
    if let Some(rt) = wide_gpu() {
        t.extend(
            std::iter::once(Placement::Gpu)
                .chain(splits.iter().map(|&f| Placement::Split(f)))
                .map(|placement| Target { rt, placement }),
        );
    }
    t
}

/// The reference table for what a GPU computed.
fn gpu_table() -> &'static Table {
    if gpu_is_lavapipe() {
        &reference::GPU_F64_EXACT
    } else {
        &reference::GPU
    }
}

/// Whether an AST computes in a 64-bit type anywhere.
fn is_wide(a: &Ast) -> bool {
    a.ty.is_wide()
        || match &a.node {
            Node::Un(_, x) | Node::Cast(x) => is_wide(x),
            Node::Bin(_, _, x, y) => is_wide(x) || is_wide(y),
            Node::Select(x, y, z) | Node::MulAdd(x, y, z) | Node::Clamp(x, y, z) => {
                is_wide(x) || is_wide(y) || is_wide(z)
            }
            Node::Fold { init, body, .. } => is_wide(init) || is_wide(body),
            _ => false,
        }
}

/// The f64 functions in an AST that a GPU has no instruction for.
fn wide_math(a: &Ast, out: &mut Vec<&'static str>) {
    let kids: Vec<&Ast> = match &a.node {
        Node::Un(op, x) => {
            if x.ty == Ty::D {
                let name = match op {
                    Un::Sin => Some("sin"),
                    Un::Cos => Some("cos"),
                    Un::Tan => Some("tan"),
                    Un::Exp => Some("exp"),
                    Un::Exp2 => Some("exp2"),
                    Un::Ln => Some("ln"),
                    Un::Log2 => Some("log2"),
                    _ => None,
                };
                out.extend(name);
            }
            vec![x]
        }
        Node::Bin(op, _, x, y) => {
            if *op == gen::Bin::Pow && x.ty == Ty::D {
                out.push("pow");
            }
            vec![x, y]
        }
        Node::Cast(x) => vec![x],
        Node::Select(x, y, z) | Node::MulAdd(x, y, z) | Node::Clamp(x, y, z) => vec![x, y, z],
        Node::Fold { init, body, .. } => vec![init, body],
        _ => vec![],
    };
    for k in kids {
        wide_math(k, out);
    }
}

/// The case for `seed`: input and output types drawn from the seed.
fn wide_case(seed: u64, arity: usize, math: bool) -> Case {
    let opts = Opts {
        wide: true,
        wide_math: math,
    };
    gen::case_with(seed, Some(gen::shape_for(seed, arity)), opts)
}

/// Lengths: one element, a workgroup and one, and a random one.
fn lengths(rng: &mut ChaCha8Rng) -> [usize; 3] {
    [1, 257, rng.random_range(258..6_000)]
}

/// Runs one case on every target; adds to the tallies (cpu, gpu).
fn run_case<I: Elem, O: Elem>(case: &Case, targets: &[Target], tally: &mut [Tally; 2]) {
    let mut rng = ChaCha8Rng::seed_from_u64(case.seed ^ 0x5eed_f64f_64ab_cd00);
    let lengths = lengths(&mut rng);
    check_case::<I, O>(case, targets, &lengths, &mut rng, gpu_table(), tally);
}

fn random_wide_kernels(base: u64, arity: usize) {
    let targets = wide_targets(&SPLITS);
    let gpu = targets.iter().any(|t| t.uses_gpu());
    let mut tally = [Tally::default(); 2];
    let seeds = seeds(base, DEFAULT_CASES / 2);
    let mut wide = 0;
    for &seed in &seeds {
        let case = wide_case(seed, arity, false);
        wide += is_wide(&case.ast) as usize;
        typed!(case, run_case(&case, &targets, &mut tally));
    }
    eprintln!(
        "{} cases, {wide} computing in 64 bits; gpu table: {}",
        seeds.len(),
        gpu_table().wide.map_or("-", |t| t.name)
    );
    if seeds.len() > 1 {
        assert!(
            wide * 10 >= seeds.len() * 8,
            "only {wide} of {} cases compute in 64 bits",
            seeds.len()
        );
    }
    assert_cases_meaningful(&tally, seeds.len(), gpu);
}

#[test]
fn random_one_input_f64_kernels_match_the_reference() {
    random_wide_kernels(64_000, 1);
}

#[test]
fn random_two_input_f64_kernels_match_the_reference() {
    random_wide_kernels(64_000_000, 2);
}

/// Counts of the math cases' outcomes on a GPU.
#[derive(Default, Debug)]
struct MathCount {
    /// Cases with an f64 function a GPU has no instruction for.
    with_math: usize,
    /// Of those, tried on a GPU.
    tried: usize,
    /// Of those, refused by `Placement::Gpu` with a typed error naming one.
    refused: usize,
    /// Of those, taken by the GPU: the functions were folded into constants.
    folded: usize,
}

/// One math case: on the CPU against the CPU's tables; on the GPU, refused (and left
/// out of a split) when the kernel has an f64 function, else checked as any case.
fn run_math_case<I: Elem, O: Elem>(case: &Case, tally: &mut [Tally; 2], count: &mut MathCount) {
    let k: Kernel<I, O> = gen::kernel(&case.ast, case.shape.arity);
    let mut fns = Vec::new();
    wide_math(&case.ast, &mut fns);
    let mut rng = ChaCha8Rng::seed_from_u64(case.seed ^ 0x5eed_f64f_64ab_cd01);
    let n = rng.random_range(258..4_000);
    let (a, b) = inputs::<I>(&mut rng, n, case.shape.arity);
    let mut refs = Refs::new(case, &a, &b).with_gpu_table(gpu_table());
    let cpu = Target {
        rt: shared_cpu(),
        placement: Placement::Cpu,
    };
    check_target(case, &k, cpu, &a, &b, &mut refs, tally);
    count.with_math += !fns.is_empty() as usize;
    let Some(rt) = wide_gpu() else {
        return;
    };
    count.tried += !fns.is_empty() as usize;
    let arity = case.shape.arity;
    match call(rt, &k, &a, &b, arity, Placement::Gpu) {
        Err(e @ Error::DeviceCannot { .. }) => {
            let msg = e.to_string();
            assert!(
                fns.iter().any(|f| msg.contains(&format!("f64 {f}"))),
                "{case}: refused for a reason that names none of {fns:?}: {msg}"
            );
            count.refused += 1;
            // a split computes it all on the CPU, and says why
            let run = call(rt, &k, &a, &b, arity, Placement::Split(0.5))
                .unwrap_or_else(|e| panic!("{case}: split: {e}"));
            assert_eq!(gpu_elements(&run.report), 0, "{case}\n{}", run.report);
            assert!(
                run.report.notes().iter().any(|n| n.contains("f64")),
                "{case}: the report says why the GPU is left out: {}",
                run.report
            );
            let rc = refs.get(false).to_vec();
            check_output(
                case,
                &k,
                "split 0.5 on the cpu",
                &a,
                &b,
                &run.output,
                |i| (rc[i], false),
                tally,
            );
        }
        Err(e) => panic!("{case}: gpu: {e}"),
        Ok(run) => {
            // no f64 function reached the GPU's program: folded on the host, by libm
            count.folded += !fns.is_empty() as usize;
            let on_gpu = computed_on_gpu(&run.report, a.len(), "gpu");
            assert!(on_gpu.iter().all(|&g| g), "{case}: {}", run.report);
            let rg = refs.get(true).to_vec();
            check_output(
                case,
                &k,
                "placement gpu",
                &a,
                &b,
                &run.output,
                |i| (rg[i], true),
                tally,
            );
        }
    }
}

/// f64 `sin`, `cos`, `tan`, `exp`, `exp2`, `ln`, `log2` and `pow` in random kernels:
/// within libm's bound on the CPU; refused by a GPU (a typed error naming the function)
/// and left out of a split, which the CPU then computes.
#[test]
fn random_f64_math_kernels_run_on_the_cpu() {
    let mut tally = [Tally::default(); 2];
    let mut count = MathCount::default();
    let seeds = seeds(640_000, DEFAULT_CASES / 2);
    for &seed in &seeds {
        let case = wide_case(seed, 1 + (seed % 2) as usize, true);
        typed!(case, run_math_case(&case, &mut tally, &mut count));
    }
    eprintln!("{} cases: {count:?}", seeds.len());
    // the GPU's results are checked as they come (a refusal computes nothing)
    assert_cases_meaningful(&tally, seeds.len(), false);
    if seeds.len() > 1 {
        assert!(
            count.with_math * 5 >= seeds.len() * 2,
            "only {} of {} cases have an f64 function",
            count.with_math,
            seeds.len()
        );
    }
    if wide_gpu().is_some() && seeds.len() > 1 {
        assert!(
            count.refused * 4 >= count.tried * 3,
            "the GPU refused only {} of {} kernels with f64 functions",
            count.refused,
            count.tried
        );
    }
}

/// Found by the random kernels above: lavapipe (Mesa 22.3.6, LLVM 15) orders an i32
/// sign-extended to i64 against a constant wrongly (`i64(x) < 0li` false for every
/// negative `x`, also inside `abs`), so the generated WGSL orders i64 values as u64
/// with the sign bit flipped. On every placement: an i32 widened to i64, ordered
/// against constants that fit in 32 bits and put through `abs`, against Rust.
#[test]
fn i64_order_against_constants_on_every_placement() {
    let k = Kernel::map(|x: Expr<i32>| {
        let v = x.cast::<i64>();
        v.lt(0i64).cast::<u32>()
            | v.le(5i64).cast::<u32>() << 1u32
            | v.gt(-5i64).cast::<u32>() << 2u32
            | v.ge(-2i64).cast::<u32>() << 3u32
            | (v.abs().cast::<u32>() & 0xffu32) << 8u32
    });
    let xs = [-78i32, -5, -2, 0, 5, 6, i32::MIN, i32::MAX];
    let want: Vec<u32> = xs
        .iter()
        .map(|&x| {
            let v = x as i64;
            (v < 0) as u32
                | ((v <= 5) as u32) << 1
                | ((v > -5) as u32) << 2
                | ((v >= -2) as u32) << 3
                | ((v.unsigned_abs() as u32) & 0xff) << 8
        })
        .collect();
    for t in wide_targets(&[0.5]) {
        let got =
            t.rt.map(&xs, &k, t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"))
                .output;
        assert_eq!(got, want, "{t}: inputs {xs:?}");
    }
}

// --- the tolerances the tables state ------------------------------------------------

/// `1 + hi * 2^-32 + (lo >> 12) * 2^-52`: an f64 in [1, 2) with all 52 fraction bits
/// from the data, every step exact (in any order).
fn mantissa(hi: Expr<u32>, lo: Expr<u32>) -> Expr<f64> {
    hi.cast::<f64>() * 2f64.powi(-32) + 1.0f64 + (lo >> 12u32).cast::<f64>() * 2f64.powi(-52)
}

fn mantissa_host(hi: u32, lo: u32) -> f64 {
    1.0 + hi as f64 * 2f64.powi(-32) + (lo >> 12) as f64 * 2f64.powi(-52)
}

/// f64 `/` and `sqrt` on full 53-bit operands, bit for bit: quotients in (0.5, 2) as
/// `q * 2^53` and roots in [1, 2) as `s * 2^52` (integers below 2^54: exact through
/// `u64`), against Rust's f64. Exact on the CPU; measured exact on lavapipe (which
/// the parity tests' table relies on); within Vulkan's 2.5 and 4.5 ULP on another GPU.
#[test]
fn f64_division_and_sqrt_are_correctly_rounded() {
    type Four = (Expr<u32>, Expr<u32>, Expr<u32>, Expr<u32>);
    let k = Kernel::new(|(ah, al, bh, bl): Four| -> Four {
        let a = mantissa(ah, al);
        let b = mantissa(bh, bl.clone());
        let q = (a.clone() / b * 2f64.powi(53)).cast::<u64>();
        // the root of a in [1, 2), or of 2a in [2, 4)
        let x = a * ((bl & 1u32) + 1u32).cast::<f64>();
        let s = (x.sqrt() * 2f64.powi(52)).cast::<u64>();
        (
            q.cast::<u32>(),
            (q >> 32u32).cast::<u32>(),
            s.cast::<u32>(),
            (s >> 32u32).cast::<u32>(),
        )
    });
    let mut rng = ChaCha8Rng::seed_from_u64(0xd1f);
    let n = 100_000;
    let mut cols: [Vec<u32>; 4] = Default::default();
    // the ends of the mantissa range, then random
    for (ah, al, bh, bl) in [
        (0, 0, 0, 0),
        (u32::MAX, u32::MAX, 0, 0),
        (0, 0, u32::MAX, u32::MAX),
        (u32::MAX, u32::MAX, u32::MAX, u32::MAX),
        (1, 0, 0, 1),
    ] {
        for (c, v) in cols.iter_mut().zip([ah, al, bh, bl]) {
            c.push(v);
        }
    }
    while cols[0].len() < n {
        for c in cols.iter_mut() {
            c.push(rng.random());
        }
    }
    let want: Vec<(u64, u64)> = (0..n)
        .map(|i| {
            let a = mantissa_host(cols[0][i], cols[1][i]);
            let b = mantissa_host(cols[2][i], cols[3][i]);
            let x = a * ((cols[3][i] & 1) + 1) as f64;
            (
                (a / b * 2f64.powi(53)) as u64,
                (x.sqrt() * 2f64.powi(52)) as u64,
            )
        })
        .collect();
    let lavapipe = gpu_is_lavapipe();
    for t in wide_targets(&[]) {
        let (ql, qh, sl, sh) =
            t.rt.call(
                &k,
                (&cols[0][..], &cols[1][..], &cols[2][..], &cols[3][..]),
                t.placement,
            )
            .unwrap_or_else(|e| panic!("{t}: {e}"))
            .output;
        // ULPs: a quotient's in (0.5, 1) is 1 unit of q * 2^53, in [1, 2) it is 2
        let (mut worst_q, mut worst_s, mut off) = (0.0f64, 0.0f64, 0usize);
        for i in 0..n {
            let q = ql[i] as u64 | (qh[i] as u64) << 32;
            let s = sl[i] as u64 | (sh[i] as u64) << 32;
            let unit = if want[i].0 >= 1 << 53 { 2.0 } else { 1.0 };
            let dq = (q as f64 - want[i].0 as f64).abs() / unit;
            let ds = (s as f64 - want[i].1 as f64).abs();
            off += (dq > 0.0 || ds > 0.0) as usize;
            worst_q = worst_q.max(dq);
            worst_s = worst_s.max(ds);
        }
        eprintln!("{t}: {off} of {n} differ; worst: / {worst_q} ULP, sqrt {worst_s} ULP");
        let (bound_q, bound_s) = if t.uses_gpu() && !lavapipe {
            (2.5, 4.5)
        } else {
            (0.0, 0.0)
        };
        assert!(
            worst_q <= bound_q && worst_s <= bound_s,
            "{t}: / within {worst_q} ULP (allowed {bound_q}), sqrt within {worst_s} \
             (allowed {bound_s})"
        );
    }
}

// --- the reference itself ------------------------------------------------------------

/// The f64 reference tells f64 work from f32 work: for a kernel whose f64 result
/// differs from the same arithmetic in f32, the f64 answer passes and the f32 one
/// fails; an inexact f64 result is bounded within a few f64 ULPs (far below an f32
/// result's rounding); and an exact one (1e8 + x - 1e8 == x) is known to be exact.
#[test]
fn the_reference_tells_f64_from_f32() {
    let lit = |x: f64| Ast::lit(gen::Lit::D(x));
    let node = |ty: Ty, node: Node| Ast { ty, node };
    let x = || node(Ty::D, Node::Cast(Box::new(node(Ty::F, Node::Input(0)))));
    let bin = |op: gen::Bin, a: Ast, b: Ast| {
        node(a.ty, Node::Bin(op, gen::Form::EE, Box::new(a), Box::new(b)))
    };
    // ((x + 1e8) - 1e8) as f32: x exactly in f64, a multiple of 8 in f32
    let cancel = node(
        Ty::F,
        Node::Cast(Box::new(bin(
            gen::Bin::Sub,
            bin(gen::Bin::Add, x(), lit(1e8)),
            lit(1e8),
        ))),
    );
    // x / 3 * 3 in f64: two inexact roundings, bounded within a few f64 ULPs
    let thirds = bin(gen::Bin::Mul, bin(gen::Bin::Div, x(), lit(3.0)), lit(3.0));
    for table in [&reference::CPU, &reference::GPU, &reference::GPU_F64_EXACT] {
        for xv in [1.25f32, 0.3, -2.7, 3.1] {
            let mut env = reference::Env::new(table, [reference::input_f32(xv), V::I(None)], 0);
            let r = reference::eval(&cancel, &mut env);
            let f64_way = ((xv as f64 + 1e8) - 1e8) as f32;
            let f32_way = (xv + 1e8f32) - 1e8f32;
            assert_ne!(f64_way, f32_way);
            assert_eq!(f64_way, xv);
            assert_eq!(
                f64_way.check(r),
                Verdict::Pass,
                "{}: {xv}: {r:?}",
                table.name
            );
            assert_eq!(
                f32_way.check(r),
                Verdict::Fail,
                "{}: {xv}: {r:?}",
                table.name
            );
            let mut env = reference::Env::new(table, [reference::input_f32(xv), V::I(None)], 0);
            match reference::eval(&thirds, &mut env) {
                V::D(reference::FV::Num { v, e, .. }) => {
                    let host = (xv as f64 / 3.0) * 3.0;
                    assert!((host - v).abs() <= e, "{}: {xv}: {v} ± {e}", table.name);
                    assert!(
                        e <= 16.0 * f64::EPSILON * v.abs(),
                        "{}: {xv}: the bound {e} is not a few f64 ULPs of {v}",
                        table.name
                    );
                }
                r => panic!("{}: {xv}: {r:?}", table.name),
            }
        }
    }
    // exactness: on a device that does not reassociate, 1e8 + x - 1e8 is exactly x
    let mut env = reference::Env::new(&reference::CPU, [reference::input_f32(1.25), V::I(None)], 0);
    match reference::eval(&cancel, &mut env) {
        V::F(reference::FV::Num { v, e, .. }) => assert_eq!((v, e), (1.25, 0.0)),
        r => panic!("{r:?}"),
    }
}
