//! The evaluator's basic steps against plain Rust, and the helpers every test of
//! `eval/` uses (run a plan block by block, look into its steps).

use std::sync::Arc;

use super::{LoopStep, Plan, Step, TableRef, BLOCK};
use crate::kernel::{fold, index, select, Expr, InTypes, Kernel, OutTypes};

/// Evaluates `k` over `xs` block by block, the first element at global index
/// `first`.
pub(super) fn eval<O: crate::Element>(k: &Kernel<f32, O>, xs: &[f32], first: u64) -> Vec<O> {
    let plan = k.inner().plan().unwrap_or_else(|e| panic!("{e}"));
    let mut s = plan.scratch();
    let bits: Vec<u32> = xs.iter().map(|x| x.to_bits()).collect();
    let mut out = vec![0u32; xs.len()];
    for (i, o) in out.chunks_mut(BLOCK).enumerate() {
        let off = i * BLOCK;
        plan.run_block(&mut s, &[&bits[off..off + o.len()]], first + off as u64, o);
    }
    out.into_iter().map(O::from_bits).collect()
}

#[test]
fn evaluates_arithmetic_select_and_index_across_blocks() {
    let k = Kernel::map(|x: Expr<f32>| {
        let i = index().cast::<f32>();
        select(x.gt(0.5), x.clone() * 2.0 + i, (x - 1.0).mul_add(3.0, 0.25))
    });
    let xs: Vec<f32> = (0..5000).map(|i| (i % 7) as f32 * 0.2).collect();
    let got = eval(&k, &xs, 10);
    for (i, (&x, &g)) in xs.iter().zip(&got).enumerate() {
        let want = if x > 0.5 {
            x * 2.0 + (i + 10) as f32
        } else {
            (x - 1.0) * 3.0 + 0.25
        };
        assert_eq!(g, want, "element {i}");
    }
}

#[test]
fn fold_with_counter_and_invariants() {
    let k = Kernel::map(|x: Expr<f32>| {
        fold(5, x.clone(), |acc, i| acc * 0.5 + i.cast::<f32>() + x.sin())
    });
    let xs: Vec<f32> = (0..3000).map(|i| i as f32 * 0.001).collect();
    let got = eval(&k, &xs, 0);
    for (&x, &g) in xs.iter().zip(&got) {
        let mut acc = x;
        for i in 0..5 {
            acc = acc * 0.5 + i as f32 + x.sin();
        }
        assert_eq!(g, acc);
    }
}

#[test]
fn loop_counter_in_three_operand_steps() {
    let k = Kernel::map(|x: Expr<f32>| {
        fold(3, x.clone(), |acc, i| {
            let f = i.cast::<f32>();
            acc + select(i.gt(0u32), 1.0, 0.5)
                + i.clamp(1u32, 1u32).cast::<f32>()
                + i.mul_add(2u32, 1u32).cast::<f32>()
                + f
        })
    });
    let xs: Vec<f32> = (0..3000).map(|i| i as f32).collect();
    for (&x, g) in xs.iter().zip(eval(&k, &xs, 0)) {
        let mut acc = x;
        for i in 0..3u32 {
            acc = acc + if i > 0 { 1.0 } else { 0.5 } + 1.0 + (i * 2 + 1) as f32 + i as f32;
        }
        assert_eq!(g, acc, "x = {x}");
    }
}

#[test]
fn constant_and_identity_kernels() {
    let k = Kernel::map(|_x: Expr<f32>| Expr::constant(4.5f32));
    assert_eq!(eval(&k, &[1.0, 2.0], 0), vec![4.5, 4.5]);
    let k = Kernel::map(|x: Expr<f32>| x);
    assert_eq!(eval(&k, &[1.0, -2.0], 0), vec![1.0, -2.0]);
}

/// The plan `k` runs with its parameters' current values.
pub(super) fn plan_of<I: InTypes, O: OutTypes>(k: &Kernel<I, O>) -> Arc<Plan> {
    k.inner().bind().plan().unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `plan` over `n` elements block by block, the first at global index `first`:
/// `M` results per element.
pub(super) fn run(
    plan: &Plan,
    inputs: &[&[u32]],
    tables: &[TableRef<'_>],
    first: u64,
    n: usize,
) -> Vec<u32> {
    let m = plan.outputs();
    let mut s = plan.scratch();
    let mut out = vec![0xdead_beef; n * m];
    for (b, o) in out.chunks_mut(BLOCK * m).enumerate() {
        let r = b * BLOCK..b * BLOCK + o.len() / m;
        let ins: Vec<&[u32]> = inputs.iter().map(|x| &x[r.clone()]).collect();
        plan.run(&mut s, &ins, tables, first + r.start as u64, o);
    }
    out
}

pub(super) fn bits(xs: &[f32]) -> Vec<u32> {
    xs.iter().map(|x| x.to_bits()).collect()
}

/// A whole table.
pub(super) fn whole(data: &[u32]) -> TableRef<'_> {
    TableRef {
        data,
        start: 0,
        len: data.len() as u32,
    }
}

/// Every loop of `steps`, nested ones included (outer first).
pub(super) fn loops(steps: &[Step]) -> Vec<&LoopStep> {
    let mut out = Vec::new();
    for s in steps {
        if let Step::Loop(l) = s {
            out.push(&**l);
            if let Some((c, _)) = &l.cond {
                out.extend(loops(c));
            }
            out.extend(loops(&l.body));
        }
    }
    out
}
