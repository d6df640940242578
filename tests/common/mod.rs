//! Shared test support: the devices under test and the rule for a missing GPU
//! ([`targets`]), the random kernel generator and its reference evaluator, and the
//! harness that checks a device's output against the reference.
#![allow(dead_code)]

pub mod gen;
pub mod reference;
mod targets;

pub use targets::*;

use std::fmt::Write as _;

use hybrid::{Kernel, Placement, Report, Run, Runtime};

use gen::{Case, Elem};
use rand_chacha::ChaCha8Rng;
use reference::{Env, Table, Verdict, V};

/// Error messages start in lower case and end without a full stop (as std's do).
pub fn assert_lowercase(e: &hybrid::Error) {
    let msg = e.to_string();
    let first = msg.chars().next().expect("an error message is not empty");
    assert!(
        !first.is_uppercase(),
        "error message starts in upper case: {msg:?}"
    );
    assert!(
        !msg.ends_with('.'),
        "error message ends with a full stop: {msg:?}"
    );
}

/// Elements the report's GPU shares computed.
pub fn gpu_elements(report: &Report) -> usize {
    report
        .shares()
        .iter()
        .filter(|s| s.kind().is_gpu())
        .map(|s| s.elements())
        .sum()
}

/// Elements the report's shares computed, all devices together.
pub fn share_elements(report: &Report) -> usize {
    report.shares().iter().map(|s| s.elements()).sum()
}

/// Whether a GPU computed each of the `n` elements, from the report's shares; panics
/// when two shares overlap or an element is in none.
pub fn computed_on_gpu(report: &Report, n: usize, what: &str) -> Vec<bool> {
    let mut on_gpu = vec![None; n];
    for s in report.shares() {
        for x in &mut on_gpu[s.range()] {
            assert!(x.is_none(), "{what}: shares overlap: {report}");
            *x = Some(s.kind().is_gpu());
        }
    }
    on_gpu
        .into_iter()
        .map(|x| x.unwrap_or_else(|| panic!("{what}: an element is in no share: {report}")))
        .collect()
}

/// Runs a one- or two-input kernel (`b` empty for one input).
pub fn call<I: Elem, O: Elem>(
    rt: &Runtime,
    k: &Kernel<I, O>,
    a: &[I],
    b: &[I],
    arity: usize,
    placement: Placement,
) -> hybrid::Result<Run<Vec<O>>> {
    if arity == 1 {
        rt.map(a, k, placement)
    } else {
        rt.map2(a, b, k, placement)
    }
}

/// Counts of checked elements, per kind of device.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub checked: u64,
    pub unknown: u64,
    pub weak: u64,
}

impl Tally {
    pub fn add(&mut self, v: Verdict) {
        self.checked += 1;
        match v {
            Verdict::Unknown => self.unknown += 1,
            Verdict::Weak => self.weak += 1,
            _ => {}
        }
    }

    /// The fraction of elements the check said little about.
    pub fn vague(&self) -> f64 {
        (self.unknown + self.weak) as f64 / self.checked.max(1) as f64
    }

    /// Fails when the check was (nearly) vacuous: too few elements, or too many whose
    /// reference was unknown or whose bound was wide.
    pub fn assert_meaningful(&self, what: &str, min_checked: u64) {
        eprintln!(
            "{what}: {} elements checked, {} unknown ({:.2}%), {} weak ({:.2}%)",
            self.checked,
            self.unknown,
            100.0 * self.unknown as f64 / self.checked.max(1) as f64,
            self.weak,
            100.0 * self.weak as f64 / self.checked.max(1) as f64,
        );
        assert!(
            self.checked >= min_checked,
            "{what}: only {} elements checked",
            self.checked
        );
        assert!(
            self.vague() <= 0.2,
            "{what}: {:.1}% of the checked elements were unknown or weakly bounded (limit 20%)",
            100.0 * self.vague()
        );
    }
}

/// The reference value of every element, with the given table.
pub fn references<I: Elem>(case: &Case, table: &Table, a: &[I], b: &[I]) -> Vec<V> {
    (0..a.len())
        .map(|i| {
            let y = if b.is_empty() {
                a[i].to_v()
            } else {
                b[i].to_v()
            };
            let mut env = Env::new(table, [a[i].to_v(), y], i as u32);
            reference::eval(&case.ast, &mut env)
        })
        .collect()
}

/// Lazily computed references, one vector per table.
pub struct Refs<'a, I> {
    case: &'a Case,
    a: &'a [I],
    b: &'a [I],
    cpu: Option<Vec<V>>,
    gpu: Option<Vec<V>>,
    gpu_table: &'static Table,
}

impl<'a, I: Elem> Refs<'a, I> {
    pub fn new(case: &'a Case, a: &'a [I], b: &'a [I]) -> Self {
        Refs {
            case,
            a,
            b,
            cpu: None,
            gpu: None,
            gpu_table: &reference::GPU,
        }
    }

    /// The references with `table` for what a GPU computed (in place of
    /// [`reference::GPU`]).
    pub fn with_gpu_table(self, table: &'static Table) -> Self {
        Refs {
            gpu_table: table,
            ..self
        }
    }

    pub fn get(&mut self, gpu: bool) -> &[V] {
        let (slot, table) = if gpu {
            (&mut self.gpu, self.gpu_table)
        } else {
            (&mut self.cpu, &reference::CPU)
        };
        slot.get_or_insert_with(|| references(self.case, table, self.a, self.b))
    }
}

/// Checks every element of `out`: element `i` against `refs(i)` (its reference and
/// whether a GPU computed it). Panics with the case, the kernel's WGSL, the element and
/// its inputs at the first mismatch.
#[allow(clippy::too_many_arguments)]
pub fn check_output<I: Elem, O: Elem>(
    case: &Case,
    k: &Kernel<I, O>,
    what: &str,
    a: &[I],
    b: &[I],
    out: &[O],
    mut refs: impl FnMut(usize) -> (V, bool),
    tally: &mut [Tally; 2],
) {
    assert_eq!(out.len(), a.len(), "{what}: output length, {case}");
    let mut failures = Vec::new();
    for (i, &got) in out.iter().enumerate() {
        let (r, on_gpu) = refs(i);
        let v = got.check(r);
        tally[on_gpu as usize].add(v);
        if v == Verdict::Fail {
            failures.push((i, got, r, on_gpu));
        }
    }
    if let Some(&(i, got, r, on_gpu)) = failures.first() {
        let mut msg = String::new();
        let _ = writeln!(
            msg,
            "{what}: {} of {} elements differ from the reference",
            failures.len(),
            out.len()
        );
        let _ = writeln!(msg, "kernel: {case}");
        let b_i = if b.is_empty() {
            String::new()
        } else {
            format!(", x1 = {:?}", b[i])
        };
        let _ = writeln!(
            msg,
            "first at element {i} (computed by {}): x0 = {:?}{b_i}: got {got:?}, reference {r:?}",
            if on_gpu { "a gpu" } else { "the cpu" },
            a[i]
        );
        for &(j, got, r, _) in failures.iter().skip(1).take(4) {
            let _ = writeln!(
                msg,
                "  element {j}: x0 = {:?}, got {got:?}, reference {r:?}",
                a[j]
            );
        }
        let _ = writeln!(
            msg,
            "reproduce: HYBRID_PARITY_SEED={} cargo test --test {}",
            case.seed,
            env!("CARGO_CRATE_NAME")
        );
        let _ = writeln!(
            msg,
            "wgsl:\n{}",
            k.wgsl().unwrap_or_else(|e| format!("<{e}>"))
        );
        panic!("{msg}");
    }
}

/// Runs the case's kernel on `t` and checks every element against the reference of
/// the device that computed it, as the report's shares say; the shares must cover the
/// input once, and give the GPU what the placement asks for.
#[allow(clippy::too_many_arguments)]
pub fn check_target<I: Elem, O: Elem>(
    case: &Case,
    k: &Kernel<I, O>,
    t: Target,
    a: &[I],
    b: &[I],
    refs: &mut Refs<'_, I>,
    tally: &mut [Tally; 2],
) {
    let n = a.len();
    let what = format!("placement {t}, n = {n}");
    let run = call(t.rt, k, a, b, case.shape.arity, t.placement)
        .unwrap_or_else(|e| panic!("{what}: {e}\n{case}"));
    let on_gpu = computed_on_gpu(&run.report, n, &what);
    let gpu_elems = on_gpu.iter().filter(|&&g| g).count();
    let want_gpu = match t.placement {
        Placement::Cpu => Some(0),
        Placement::Gpu => Some(n),
        Placement::Split(f) => Some((f * n as f64).round() as usize),
        _ => None,
    };
    if let Some(want) = want_gpu {
        assert_eq!(gpu_elems, want, "{what}: gpu share\n{}", run.report);
    }
    let rc = if gpu_elems < n {
        refs.get(false).to_vec()
    } else {
        Vec::new()
    };
    let rg = if gpu_elems > 0 {
        refs.get(true).to_vec()
    } else {
        Vec::new()
    };
    check_output(
        case,
        k,
        &what,
        a,
        b,
        &run.output,
        |i| {
            if on_gpu[i] {
                (rg[i], true)
            } else {
                (rc[i], false)
            }
        },
        tally,
    );
}

/// Random inputs for a case.
pub fn inputs<I: Elem>(rng: &mut ChaCha8Rng, n: usize, arity: usize) -> (Vec<I>, Vec<I>) {
    let a = (0..n).map(|_| I::random(rng)).collect();
    let b = if arity == 2 {
        (0..n).map(|_| I::random(rng)).collect()
    } else {
        Vec::new()
    };
    (a, b)
}

/// Calls `$f::<I, O>(args)` for the case's input and output element types.
#[allow(unused_macros)]
macro_rules! typed {
    ($case:expr, $f:ident ( $($arg:expr),* )) => {{
        use $crate::common::gen::Ty;
        match ($case.shape.input, $case.shape.output) {
            (Ty::F, Ty::F) => $f::<f32, f32>($($arg),*),
            (Ty::F, Ty::I) => $f::<f32, i32>($($arg),*),
            (Ty::F, Ty::U) => $f::<f32, u32>($($arg),*),
            (Ty::I, Ty::F) => $f::<i32, f32>($($arg),*),
            (Ty::I, Ty::I) => $f::<i32, i32>($($arg),*),
            (Ty::I, Ty::U) => $f::<i32, u32>($($arg),*),
            (Ty::U, Ty::F) => $f::<u32, f32>($($arg),*),
            (Ty::U, Ty::I) => $f::<u32, i32>($($arg),*),
            (Ty::U, Ty::U) => $f::<u32, u32>($($arg),*),
            (i, o) => unreachable!("no element types {i:?} -> {o:?}"),
        }
    }};
}
#[allow(unused_imports)]
pub(crate) use typed;

/// `HYBRID_PARITY_CASES=n`: how many random cases a parity test is asked to run.
pub fn parity_cases() -> Option<u64> {
    std::env::var("HYBRID_PARITY_CASES")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
}

/// The seeds of a random-kernel test: `n` from `base`, or the one seed
/// `HYBRID_PARITY_SEED=s` names (a failure prints it).
pub fn parity_seeds(base: u64, n: u64) -> Vec<u64> {
    if let Ok(s) = std::env::var("HYBRID_PARITY_SEED") {
        return vec![s.trim().parse().expect("HYBRID_PARITY_SEED is a number")];
    }
    (0..n).map(|i| base + i).collect()
}

/// Runs a random case's kernel on every target at each of `lengths`, on inputs drawn
/// from `rng`, and checks every element against the reference of the device that
/// computed it (`gpu_table` for a GPU's).
pub fn check_case<I: Elem, O: Elem>(
    case: &Case,
    targets: &[Target],
    lengths: &[usize],
    rng: &mut ChaCha8Rng,
    gpu_table: &'static Table,
    tally: &mut [Tally; 2],
) {
    let k: Kernel<I, O> = gen::kernel(&case.ast, case.shape.arity);
    for &n in lengths {
        let (a, b) = inputs::<I>(rng, n, case.shape.arity);
        let mut refs = Refs::new(case, &a, &b).with_gpu_table(gpu_table);
        for &t in targets {
            check_target(case, &k, t, &a, &b, &mut refs, tally);
        }
    }
}

/// Fails when a random-kernel test's checks said too little ([`Tally::assert_meaningful`]):
/// at least 10,000 elements per kind of device over its `cases` (one, for a single
/// case), the GPU's only when `gpu` (one ran).
pub fn assert_cases_meaningful(tally: &[Tally; 2], cases: usize, gpu: bool) {
    let min = if cases > 1 { 10_000 } else { 1 };
    tally[0].assert_meaningful("cpu", min);
    if gpu {
        tally[1].assert_meaningful("gpu", min);
    }
}
