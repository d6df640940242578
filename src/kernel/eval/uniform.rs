//! Uniform registers: values that are the same for every element of a block, so the
//! evaluator computes each once (per block, or per iteration inside a loop) instead of
//! once per element. Literals are uniform; so are a loop's counter, a table's length,
//! a parameter, and any operation (a table read included) whose operands all are.
//! Element-wise inputs and the index are not.
//!
//! A loop's trip count is uniform exactly when the loop needs no mask: its count and
//! its condition are uniform, so every element runs the same iterations. A carried
//! value is uniform when the loop needs no mask and its initial and next values are
//! uniform (a table's sum, a running maximum), found by iterating to a fixed point:
//! assume every carry with a uniform start is uniform, and drop those whose next
//! value then is not, until nothing changes.

use super::{Src, UniOp};
use crate::kernel::program::{Instr, Loop, Op, Operand, Program};
use crate::kernel::scalar::ScalarType;

/// Which registers of `prog` are uniform.
pub(super) fn uniform(prog: &Program) -> Vec<bool> {
    let mut u = vec![false; prog.regs.len()];
    block(&prog.body, &mut u);
    u
}

fn is(u: &[bool], o: Operand) -> bool {
    match o {
        Operand::Reg(r) => u[r as usize],
        Operand::Const(..) => true,
    }
}

fn block(body: &[Instr], u: &mut [bool]) {
    for ins in body {
        let v = match &ins.op {
            Op::Input(_) | Op::Index => false,
            Op::Param(_) | Op::TableLen(_) => true,
            Op::Load { index, default, .. } => is(u, *index) && default.is_none_or(|d| is(u, d)),
            Op::Unary(_, a) | Op::Cast(a) => is(u, *a),
            Op::Binary(_, a, b) => is(u, *a) && is(u, *b),
            Op::Select(a, b, c) | Op::MulAdd(a, b, c) | Op::Clamp(a, b, c) => {
                is(u, *a) && is(u, *b) && is(u, *c)
            }
            Op::Loop(l) => {
                looped(l, u);
                continue;
            }
        };
        u[ins.dst as usize] = v;
    }
}

fn looped(l: &Loop, u: &mut [bool]) {
    u[l.counter as usize] = true;
    let count = is(u, l.count);
    let mut carry: Vec<bool> = l.inits.iter().map(|&i| count && is(u, i)).collect();
    loop {
        for (&c, &k) in l.carries.iter().zip(&carry) {
            u[c as usize] = k;
        }
        if let Some(c) = &l.cond {
            block(&c.body, u);
        }
        block(&l.body, u);
        let masked = !count || l.cond.as_ref().is_some_and(|c| !is(u, c.test));
        let next: Vec<bool> = carry
            .iter()
            .zip(&l.nexts)
            .map(|(&k, &n)| k && !masked && is(u, n))
            .collect();
        if next == carry {
            u[l.trips as usize] = !masked;
            return;
        }
        carry = next;
    }
}

/// The scalar operation computing the uniform instruction `ins`, its operands
/// resolved by `src`. `None` for what is never a uniform instruction (and for a
/// parameter: they are bound to literals before planning).
pub(super) fn uni_op(prog: &Program, ins: &Instr, src: impl Fn(Operand) -> Src) -> Option<UniOp> {
    let ty = |o: Operand| prog.ty(o);
    let dst = prog.regs[ins.dst as usize];
    Some(match &ins.op {
        Op::TableLen(t) => UniOp::Len(*t),
        Op::Load {
            table,
            index,
            default,
        } => UniOp::Load {
            table: *table,
            signed: ty(*index) == ScalarType::I32,
            index: src(*index),
            default: default.map(&src),
        },
        Op::Unary(op, a) => UniOp::Unary(*op, ty(*a), src(*a)),
        Op::Binary(op, a, b) => UniOp::Binary(*op, ty(*a), src(*a), src(*b)),
        Op::Select(c, a, b) => UniOp::Select(src(*c), src(*a), src(*b)),
        Op::Cast(a) => UniOp::Cast(ty(*a), dst, src(*a)),
        Op::MulAdd(a, b, c) => UniOp::MulAdd(dst, src(*a), src(*b), src(*c)),
        Op::Clamp(a, b, c) => UniOp::Clamp(dst, src(*a), src(*b), src(*c)),
        Op::Param(_) | Op::Input(_) | Op::Index | Op::Loop(_) => return None,
    })
}
