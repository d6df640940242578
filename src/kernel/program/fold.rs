//! Constant folding of one operation, with the semantics of [`super::super::ops`]:
//! what lowering does as it emits an instruction, and what binding does again once
//! parameters are literals.

use super::{Op, Operand};
use crate::kernel::expr::BinOp;
use crate::kernel::{ops, scalar::ScalarType};

/// What folding an instruction with substituted operands gave.
pub(super) enum Folded {
    Literal(Operand),
    Op(Op),
}

/// Folds `op` (of result type `ty`) when its operands allow, as lowering does: every
/// operand a literal, or a select with a literal condition or equal arms. Constant
/// shift amounts are masked.
pub(super) fn fold(op: Op, ty: ScalarType) -> Folded {
    use Operand::Const;
    match op {
        Op::Unary(u, Const(t, x)) => Folded::Literal(Const(ty, ops::unary(u, t, x))),
        Op::Binary(b, x, y) => {
            let y = match (b, y) {
                (BinOp::Shl | BinOp::Shr, Const(t, v)) => Const(t, v & ty.shift_mask()),
                (_, y) => y,
            };
            match (x, y) {
                (Const(lt, x), Const(_, y)) => Folded::Literal(Const(ty, ops::binary(b, lt, x, y))),
                _ => Folded::Op(Op::Binary(b, x, y)),
            }
        }
        Op::Select(Const(_, c), a, b) => Folded::Literal(if c != 0 { a } else { b }),
        Op::Select(_, a, b) if a == b => Folded::Literal(a),
        Op::Cast(Const(from, x)) => Folded::Literal(Const(ty, ops::cast(from, ty, x))),
        Op::MulAdd(Const(_, x), Const(_, y), Const(_, z)) => {
            Folded::Literal(Const(ty, ops::mul_add(ty, x, y, z)))
        }
        Op::Clamp(Const(_, x), Const(_, y), Const(_, z)) => {
            Folded::Literal(Const(ty, ops::clamp(ty, x, y, z)))
        }
        op => Folded::Op(op),
    }
}
