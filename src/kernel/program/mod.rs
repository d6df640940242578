//! The flat program both backends are generated from.
//!
//! Lowering turns the expression tree into a list of typed SSA instructions:
//! - shared subtrees (the same `Expr` used twice) and structurally equal operations are
//!   computed once (common subexpression elimination);
//! - operations on constants are folded here, with the semantics of [`super::ops`], so
//!   no constant expression reaches the WGSL compiler (where `1 / 0` or `x << 40` would
//!   be a shader-creation error); constant shift amounts are masked to `0..=31`;
//! - a fold's body is a nested instruction list; whatever in it does not depend on the
//!   accumulator or counter is hoisted before the loop;
//! - a kernel parameter ([`super::Param`]) becomes one `Op::Param` register, however
//!   often it is used, in the top-level block (it is loop-invariant); it is never
//!   folded, so the program (and the WGSL made from it) does not depend on its value.
//!   [`Program::bind`] makes the copy the CPU evaluates for given values, with the
//!   parameters as literals and the folding done again.
//!
//! Lowering runs on a helper thread with a large stack, so a deep tree built by a Rust
//! loop neither overflows the caller's stack while compiling nor while being dropped.
//!
//! The cut: this file holds the program's types; `lower` makes a program from a tree,
//! `bind` makes the copies the devices run (parameters bound; stages fused), and
//! `fold` is the constant folding both of them apply. `lower` and `bind` use `fold`,
//! never each other. `trips` counts the loop trips an element runs, for the
//! scheduler's idea of a call's work; it uses `fold` too.

mod bind;
mod fold;
mod lower;
mod trips;

use super::expr::{BinOp, UnOp};
use super::param::ParamRef;
use super::scalar::ScalarType;

/// An instruction operand: a register or a literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Operand {
    Reg(u32),
    Const(ScalarType, u64),
}

/// An operation; the destination register's type is the result type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    /// The current element of input `k`.
    Input(u8),
    /// The global element index (u32).
    Index,
    /// The value of parameter `k` of [`Program::params`].
    Param(u32),
    /// Element `index` (an `i32` or `u32` operand) of table `table`: an index outside
    /// the table reads its nearest element, or `default` where given; an empty table
    /// reads `default`, else zero.
    Load {
        table: u8,
        index: Operand,
        default: Option<Operand>,
    },
    /// The number of elements of table `table` (`u32`).
    TableLen(u8),
    Unary(UnOp, Operand),
    Binary(BinOp, Operand, Operand),
    /// `cond ? a : b`.
    Select(Operand, Operand, Operand),
    /// Conversion from the operand's type to the destination's.
    Cast(Operand),
    MulAdd(Operand, Operand, Operand),
    Clamp(Operand, Operand, Operand),
    /// A loop; the instruction's destination is its first carried register, and it
    /// defines every register of [`Loop::carries`] and [`Loop::trips`].
    Loop(Box<Loop>),
}

/// ```text
/// carries = inits; counter = 0
/// loop {
///     if counter >= count { break }
///     cond.body; if !cond.test { break }
///     body; carries = nexts (all at once); counter += 1
/// }
/// trips = counter
/// ```
/// `cond.body` and `body` are one scope: the body may read what the condition
/// computed. Lowering gives every loop at least one carried value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Loop {
    /// Most iterations (`u32`): a literal, a register that is the same for every
    /// element (a parameter, a table's length), or a per-element value.
    pub(crate) count: Operand,
    /// The carried values' registers, read inside the loop and holding the final
    /// values after it.
    pub(crate) carries: Vec<u32>,
    pub(crate) inits: Vec<Operand>,
    /// The counter's register (`u32`), read inside the loop.
    pub(crate) counter: u32,
    /// The early-exit condition, when the loop has one.
    pub(crate) cond: Option<Cond>,
    pub(crate) body: Vec<Instr>,
    /// Each carried value after one more iteration, computed by `cond.body` and `body`.
    pub(crate) nexts: Vec<Operand>,
    /// The register that holds the number of iterations run, after the loop (`u32`).
    pub(crate) trips: u32,
}

/// A loop's condition: `body` computes `test` (`bool`) from the carried values and
/// the counter, before each iteration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Cond {
    pub(crate) body: Vec<Instr>,
    pub(crate) test: Operand,
}

/// `dst = op`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Instr {
    pub(crate) dst: u32,
    pub(crate) op: Op,
}

/// A lowered kernel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Program {
    /// The element type of each element-wise input.
    pub(crate) inputs: Vec<ScalarType>,
    /// The element type of each whole-array input (table).
    pub(crate) tables: Vec<ScalarType>,
    /// Each result's type and value (at least one).
    pub(crate) outputs: Vec<(ScalarType, Operand)>,
    pub(crate) body: Vec<Instr>,
    /// The type of each register.
    pub(crate) regs: Vec<ScalarType>,
    /// The kernel's parameters, in order of first appearance; `Op::Param(k)` reads
    /// `params[k]`.
    pub(crate) params: Vec<ParamRef>,
}

impl Program {
    /// The type of an operand.
    pub(crate) fn ty(&self, o: Operand) -> ScalarType {
        match o {
            Operand::Reg(r) => self.regs[r as usize],
            Operand::Const(t, _) => t,
        }
    }

    /// The first result's type (a reduction's, a fused stage's: kernels with one
    /// result).
    pub(crate) fn output(&self) -> ScalarType {
        self.outputs.first().map_or(ScalarType::U32, |o| o.0)
    }

    /// The first result's value.
    pub(crate) fn result(&self) -> Operand {
        self.outputs
            .first()
            .map_or(Operand::Const(ScalarType::U32, 0), |o| o.1)
    }

    /// Each parameter's type, in the order of `params` (read from the `Op::Param`
    /// instructions, which lowering puts in the top-level block).
    pub(crate) fn param_types(&self) -> Vec<ScalarType> {
        let mut t = vec![ScalarType::U32; self.params.len()];
        for i in &self.body {
            if let Op::Param(k) = i.op {
                if let Some(slot) = t.get_mut(k as usize) {
                    *slot = self.regs[i.dst as usize];
                }
            }
        }
        t
    }

    /// Where each parameter's words start in the uniform block's user words, and the
    /// words all parameters take (two for a 64-bit type).
    pub(crate) fn param_layout(&self) -> (Vec<usize>, usize) {
        let mut at = Vec::with_capacity(self.params.len());
        let mut next = 0;
        for t in self.param_types() {
            at.push(next);
            next += if t.is_wide() { 2 } else { 1 };
        }
        (at, next)
    }

    /// Words each result takes in an element's row: 2 when any result is 64 bits
    /// wide (a 32-bit result then sits in the low word of its two), else 1. Rows of one
    /// width keep a row a Rust array (`[u32; M]` or `[u64; M]`) on the host.
    pub(crate) fn out_slot(&self) -> usize {
        if self.outputs.iter().any(|o| o.0.is_wide()) {
            2
        } else {
            1
        }
    }

    /// Words of an element's row of results: [`out_slot`](Self::out_slot) per result.
    pub(crate) fn out_words(&self) -> usize {
        self.outputs.len() * self.out_slot()
    }

    /// Whether any value of the program is 64 bits wide (`f64`), a constant result
    /// included.
    pub(crate) fn is_wide(&self) -> bool {
        self.regs.iter().any(|t| t.is_wide()) || self.out_slot() == 2
    }

    /// The first `f64` operation a GPU has no instruction for, by name: SPIR-V's
    /// extended instructions (GLSL.std.450) give `sin`, `exp`, `log`, `pow` and the
    /// rest for 16- and 32-bit floats only, and Metal and DX12 have none either.
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    pub(crate) fn wide_math(&self) -> Option<&'static str> {
        fn find(p: &Program, body: &[Instr]) -> Option<&'static str> {
            body.iter().find_map(|i| match &i.op {
                Op::Unary(u, a) if p.ty(*a) == ScalarType::F64 => match u {
                    UnOp::Sin => Some("sin"),
                    UnOp::Cos => Some("cos"),
                    UnOp::Tan => Some("tan"),
                    UnOp::Exp => Some("exp"),
                    UnOp::Exp2 => Some("exp2"),
                    UnOp::Ln => Some("ln"),
                    UnOp::Log2 => Some("log2"),
                    _ => None,
                },
                Op::Binary(BinOp::Pow, a, _) if p.ty(*a) == ScalarType::F64 => Some("pow"),
                Op::Loop(l) => {
                    find(p, &l.body).or_else(|| l.cond.as_ref().and_then(|c| find(p, &c.body)))
                }
                _ => None,
            })
        }
        find(self, &self.body)
    }

    /// Number of instructions, loop bodies and conditions included.
    pub(crate) fn instruction_count(&self) -> usize {
        fn count(body: &[Instr]) -> usize {
            body.iter()
                .map(|i| match &i.op {
                    Op::Loop(l) => {
                        1 + count(&l.body) + l.cond.as_ref().map_or(0, |c| count(&c.body))
                    }
                    _ => 1,
                })
                .sum()
        }
        count(&self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::{Loop, Op, Program};
    use crate::kernel::Kernel;

    /// The program `k` lowers to.
    pub(super) fn program<O: crate::Element>(k: &Kernel<f32, O>) -> Program {
        k.inner()
            .program()
            .cloned()
            .unwrap_or_else(|e| panic!("lowering failed: {e}"))
    }

    /// The first loop of `p`'s top-level block.
    pub(super) fn first_loop(p: &Program) -> &Loop {
        match p.body.iter().find_map(|i| match &i.op {
            Op::Loop(l) => Some(l),
            _ => None,
        }) {
            Some(l) => l,
            None => panic!("no loop: {p:#?}"),
        }
    }
}
