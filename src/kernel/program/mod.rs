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
//! never each other.

mod bind;
mod fold;
mod lower;

use super::expr::{BinOp, UnOp};
use super::param::ParamRef;
use super::scalar::ScalarType;

/// An instruction operand: a register or a literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Operand {
    Reg(u32),
    Const(ScalarType, u32),
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
    Unary(UnOp, Operand),
    Binary(BinOp, Operand, Operand),
    /// `cond ? a : b`.
    Select(Operand, Operand, Operand),
    /// Conversion from the operand's type to the destination's.
    Cast(Operand),
    MulAdd(Operand, Operand, Operand),
    Clamp(Operand, Operand, Operand),
    /// A counted loop; the instruction's destination is the accumulator register.
    Loop(Box<Loop>),
}

/// `acc = init; for counter in 0..count { body; acc = next }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Loop {
    pub(crate) count: u32,
    pub(crate) init: Operand,
    /// The counter's register (u32).
    pub(crate) counter: u32,
    pub(crate) body: Vec<Instr>,
    pub(crate) next: Operand,
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
    /// The element type of each input (one or two).
    pub(crate) inputs: Vec<ScalarType>,
    pub(crate) output: ScalarType,
    pub(crate) body: Vec<Instr>,
    pub(crate) result: Operand,
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

    /// Number of instructions, loop bodies included.
    pub(crate) fn instruction_count(&self) -> usize {
        fn count(body: &[Instr]) -> usize {
            body.iter()
                .map(|i| match &i.op {
                    Op::Loop(l) => 1 + count(&l.body),
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
