//! Shared test support: runtimes, the random kernel generator and its reference
//! evaluator, and the harness that checks a device's output against the reference.
#![allow(dead_code)]

pub mod gen;
pub mod reference;

use std::fmt::Write as _;

use hybrid::{Backend, Kernel, Placement, Run, Runtime};

use gen::{Case, Elem};
use reference::{Env, Table, Verdict, V};

fn env_is(var: &str, value: &str) -> bool {
    std::env::var(var)
        .map(|v| v.trim().eq_ignore_ascii_case(value))
        .unwrap_or(false)
}

/// Whether `HYBRID_BACKEND=cpu` excludes GPUs from this run.
pub fn backend_is_cpu() -> bool {
    env_is("HYBRID_BACKEND", "cpu")
}

/// Whether `HYBRID_REQUIRE_GPU=1` makes a missing GPU a failure.
pub fn gpu_required() -> bool {
    env_is("HYBRID_REQUIRE_GPU", "1") && !backend_is_cpu()
}

/// A runtime with a GPU, or `None` (and a printed reason) when there is none to test:
/// `HYBRID_BACKEND=cpu`, or no adapter. With `HYBRID_REQUIRE_GPU=1` a missing adapter
/// is a failure instead (but `HYBRID_BACKEND=cpu` still excludes GPUs).
pub fn gpu_runtime() -> Option<Runtime> {
    if backend_is_cpu() {
        eprintln!("skipping: HYBRID_BACKEND=cpu excludes GPUs");
        return None;
    }
    let why = match Runtime::new() {
        Ok(rt) if rt.has_gpu() => return Some(rt),
        Ok(rt) => rt
            .no_gpu_reason()
            .unwrap_or("the runtime has no gpu")
            .to_string(),
        Err(e) => format!("Runtime::new() failed: {e}"),
    };
    if gpu_required() {
        panic!("HYBRID_REQUIRE_GPU=1 but no GPU adapter is usable: {why}");
    }
    eprintln!("skipping: no GPU ({why})");
    None
}

/// A runtime with the CPU device only, whatever the environment says.
pub fn cpu_runtime() -> Runtime {
    Runtime::builder()
        .backend(Backend::Cpu)
        .build()
        .expect("a CPU-only runtime builds")
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
}

impl<'a, I: Elem> Refs<'a, I> {
    pub fn new(case: &'a Case, a: &'a [I], b: &'a [I]) -> Self {
        Refs {
            case,
            a,
            b,
            cpu: None,
            gpu: None,
        }
    }

    pub fn get(&mut self, gpu: bool) -> &[V] {
        let (slot, table) = if gpu {
            (&mut self.gpu, &reference::GPU)
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
            "reproduce: HYBRID_PARITY_SEED={} cargo test --test parity",
            case.seed
        );
        let _ = writeln!(
            msg,
            "wgsl:\n{}",
            k.wgsl().unwrap_or_else(|e| format!("<{e}>"))
        );
        panic!("{msg}");
    }
}

/// Random inputs for a case.
pub fn inputs<I: Elem>(
    rng: &mut rand_chacha::ChaCha8Rng,
    n: usize,
    arity: usize,
) -> (Vec<I>, Vec<I>) {
    let a = (0..n).map(|_| I::random(rng)).collect();
    let b = if arity == 2 {
        (0..n).map(|_| I::random(rng)).collect()
    } else {
        Vec::new()
    };
    (a, b)
}
