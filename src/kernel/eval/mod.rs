//! The block-wise CPU evaluator.
//!
//! Like numexpr, it evaluates a program over blocks of [`BLOCK`] elements, so no
//! per-element interpretation happens and every loop is one the compiler vectorizes.
//! Three things keep it near a hand-written loop:
//! - registers map to a few reusable scratch slots by liveness, so a block's working
//!   set stays in L1/L2 however long the program; inputs are read in place, literals
//!   stay immediates, and the last step writes straight into the output;
//! - a single-use `a * b` followed by `± c` becomes one mul-add step (two roundings,
//!   exactly as before: Rust never contracts `a * b + c`);
//! - a run of f32 steps that each consume the previous one's single-use result (and
//!   compile to inline SSE, no libm call) is a *chain*, run over 16-element tiles kept
//!   in registers from the first operation to the last; consecutive mul-adds by the
//!   same operand (Horner's rule) load that operand once per tile.
//!
//! Every operation rounds exactly as its own step would, so fusion never changes a
//! result (the tests compare bit patterns).
//!
//! The cut: this file holds the plan's vocabulary (sources, steps, chain links), the
//! [`Plan`] and its per-thread [`Scratch`]. `plan` turns a program into steps (slots
//! by liveness, mul-add fusion), with `liveness` numbering positions and last uses
//! and `chain` forming the f32 chains; `block` runs a plan over one block
//! (`Plan::run_block`), `tile` runs chains over register tiles, and `typed` holds the
//! typed element loops every step ends in. Imports go one way: the files here use
//! this one's types, never the reverse; `plan` uses `chain` and `liveness`, `block`
//! uses `tile` and `typed`, and the two halves do not use each other.

mod block;
mod chain;
mod liveness;
mod plan;
mod tile;
mod typed;

use super::expr::{BinOp, UnOp};
use super::scalar::ScalarType;

/// Elements per block: 4,096 x 4 bytes = 16 KiB per slot.
pub(crate) const BLOCK: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Src {
    Slot(u16),
    Input(u8),
    Imm(u32),
    /// The current iteration of the loop with this counter index.
    Counter(u16),
}

#[derive(Debug, Clone)]
enum Step {
    Index {
        dst: u16,
    },
    Unary {
        op: UnOp,
        ty: ScalarType,
        dst: u16,
        a: Src,
    },
    Binary {
        op: BinOp,
        ty: ScalarType,
        dst: u16,
        a: Src,
        b: Src,
    },
    Select {
        dst: u16,
        c: Src,
        a: Src,
        b: Src,
    },
    Cast {
        from: ScalarType,
        to: ScalarType,
        dst: u16,
        a: Src,
    },
    MulAdd {
        ty: ScalarType,
        dst: u16,
        a: Src,
        b: Src,
        c: Src,
    },
    Clamp {
        ty: ScalarType,
        dst: u16,
        a: Src,
        b: Src,
        c: Src,
    },
    Loop {
        count: u32,
        acc: u16,
        counter: u16,
        init: Src,
        body: Vec<Step>,
        next: Src,
    },
    /// A chain of f32 operations, each consuming the previous one's single-use
    /// result, run over register-sized tiles (see [`run_chain`]).
    Chain {
        dst: u16,
        start: Src,
        links: Vec<Link>,
        /// Literal coefficients of the chain's `Horner` links, as bit patterns.
        coeffs: Vec<u32>,
    },
}

/// One operation of a chain, applied to the running value `v`.
#[derive(Debug, Clone, Copy)]
enum Link {
    /// `op(v)`.
    Un(UnOp),
    /// `v op x`, or `x op v` when reversed.
    Bin(BinOp, Src, bool),
    /// `v * b + c`.
    MadA(Src, Src),
    /// `a * b + v`.
    MadC(Src, Src),
    /// `v = v * x + c` for each literal `c` of `coeffs[first..first + count]`: a run of
    /// mul-adds by the same operand (Horner's rule, linear recurrences), which loads
    /// `x` once per tile instead of once per coefficient.
    Horner(Src, u16, u16),
}

/// A program compiled for the CPU: steps over scratch slots.
#[derive(Debug)]
pub(crate) struct Plan {
    steps: Vec<Step>,
    result: Src,
    slots: usize,
    counters: usize,
    /// Slots pre-filled with a literal (operands of three-operand steps).
    splats: Vec<(u16, u32)>,
    /// The last step computes the result and writes it straight into the output.
    direct: bool,
}

/// A whole-array input as the evaluator reads it: the table's elements
/// `start..start + data.len()` (all of it, or the part a device was given), and the
/// whole table's length.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TableRef<'a> {
    pub(crate) data: &'a [u32],
    pub(crate) start: usize,
    pub(crate) len: u32,
}

impl Plan {
    /// Results per element.
    pub(crate) fn outputs(&self) -> usize {
        1
    }

    /// [`run_block`](Self::run_block) with whole-array inputs: element `i`'s result
    /// `k` goes to `out[i * outputs + k]`.
    pub(crate) fn run(
        &self,
        s: &mut Scratch,
        inputs: &[&[u32]],
        _tables: &[TableRef<'_>],
        first: u64,
        out: &mut [u32],
    ) {
        self.run_block(s, inputs, first, out)
    }
}

/// Per-thread working memory for a plan.
pub(crate) struct Scratch {
    slots: Vec<Vec<u32>>,
    counters: Vec<u32>,
    /// Broadcasts of a loop counter read where a step needs a slice (three-operand
    /// steps), one per operand position.
    broadcast: [Vec<u32>; 3],
}

impl Plan {
    /// Fresh scratch memory for one worker.
    pub(crate) fn scratch(&self) -> Scratch {
        let mut slots = vec![vec![0u32; BLOCK]; self.slots];
        for &(s, v) in &self.splats {
            slots[s as usize].fill(v);
        }
        Scratch {
            slots,
            counters: vec![0; self.counters],
            broadcast: std::array::from_fn(|_| {
                if self.counters > 0 {
                    vec![0; BLOCK]
                } else {
                    Vec::new()
                }
            }),
        }
    }

    /// The input the kernel returns unchanged, when it computes nothing (`|x| x`): a
    /// reduction then reads that input in place.
    pub(crate) fn passthrough(&self) -> Option<usize> {
        match (self.steps.is_empty(), self.result) {
            (true, Src::Input(k)) => Some(k as usize),
            _ => None,
        }
    }
}

/// A step's operand over one block: a slice of it, or one value for every element.
#[derive(Clone, Copy)]
enum View<'a> {
    Slice(&'a [u32]),
    Imm(u32),
}

#[inline]
fn view<'a>(s: &'a Scratch, inputs: &[&'a [u32]], src: Src, len: usize) -> View<'a> {
    match src {
        Src::Slot(i) => View::Slice(&s.slots[i as usize][..len]),
        Src::Input(k) => View::Slice(&inputs[k as usize][..len]),
        Src::Imm(v) => View::Imm(v),
        Src::Counter(c) => View::Imm(s.counters[c as usize]),
    }
}

/// The slot a step writes (a loop: its accumulator).
fn step_dst(s: &Step) -> Option<u16> {
    match *s {
        Step::Index { dst }
        | Step::Unary { dst, .. }
        | Step::Binary { dst, .. }
        | Step::Select { dst, .. }
        | Step::Cast { dst, .. }
        | Step::MulAdd { dst, .. }
        | Step::Clamp { dst, .. }
        | Step::Chain { dst, .. } => Some(dst),
        Step::Loop { acc, .. } => Some(acc),
    }
}

#[cfg(test)]
mod tests {
    use crate::kernel::{fold, index, select, Expr, Kernel};

    /// Evaluates `k` over `xs` block by block, the first element at global index
    /// `first`.
    pub(super) fn eval<O: crate::Element>(k: &Kernel<f32, O>, xs: &[f32], first: u64) -> Vec<O> {
        let plan = k.inner().plan().unwrap_or_else(|e| panic!("{e}"));
        let mut s = plan.scratch();
        let bits: Vec<u32> = xs.iter().map(|x| x.to_bits()).collect();
        let mut out = vec![0u32; xs.len()];
        for (i, o) in out.chunks_mut(super::BLOCK).enumerate() {
            let off = i * super::BLOCK;
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
}
