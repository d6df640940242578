//! The programs the devices run, made from lowered ones: [`Program::bind`] (the
//! parameters as literals, for the CPU) and [`Program::then`] (two stages fused into
//! one pass).

use super::fold::{fold, Folded};
use super::{Cond, Instr, Loop, Op, Operand, Program};
use crate::error::{Error, Result};
use crate::kernel::scalar::ScalarType;

impl Program {
    /// This program with its parameters bound to `values` (bit patterns, in the order
    /// of [`params`](Self::params)): every `Op::Param` register replaced by a literal,
    /// and what then has only literal operands folded as lowering folds constants. The
    /// copy the CPU evaluates; the parameter list stays, for the record.
    pub(crate) fn bind(&self, values: &[u64]) -> Program {
        let mut subst: Vec<Option<Operand>> = vec![None; self.regs.len()];
        let body = bind_block(&self.body, &self.regs, Some(values), &mut subst);
        Program {
            inputs: self.inputs.clone(),
            tables: self.tables.clone(),
            outputs: self
                .outputs
                .iter()
                .map(|&(t, o)| (t, substitute(o, &subst)))
                .collect(),
            body,
            regs: self.regs.clone(),
            params: self.params.clone(),
        }
    }

    /// The program that applies `self`, then `next` to its result: one pass, the
    /// intermediate never written anywhere (fusion of element-wise stages). `next`'s
    /// input 0 is `self`'s result (of `self`'s output type); its other inputs, when it
    /// has any, become new inputs of the fused program, after `self`'s (`next`'s
    /// input `k` is the fused program's input `self.inputs.len() + k - 1`). All read
    /// the same global index; parameters keep their registers (`next`'s follow
    /// `self`'s), and what becomes constant (a `self` whose result is a literal) is
    /// folded again, so no constant expression reaches the WGSL compiler.
    pub(crate) fn then(&self, next: &Program) -> Result<Program> {
        if next.inputs.first() != Some(&self.output()) || self.outputs.len() != 1 {
            return Err(Error::InvalidKernel {
                reason: format!(
                    "cannot fuse: the next stage takes {:?}, this one gives {:?}",
                    next.inputs, self.outputs
                ),
            });
        }
        if !self.tables.is_empty() || !next.tables.is_empty() || next.outputs.len() != 1 {
            return Err(Error::InvalidKernel {
                reason: "cannot fuse stages that read tables or give several results".into(),
            });
        }
        let mut inputs = self.inputs.clone();
        inputs.extend_from_slice(&next.inputs[1..]);
        if inputs.len() > usize::from(u8::MAX) + 1 {
            return Err(Error::InvalidKernel {
                reason: format!(
                    "cannot fuse: {} inputs, more than a kernel takes ({})",
                    inputs.len(),
                    usize::from(u8::MAX) + 1
                ),
            });
        }
        let reg_off = self.regs.len() as u32;
        let param_off = self.params.len() as u32;
        let mut regs = self.regs.clone();
        regs.extend_from_slice(&next.regs);
        let moved = shift_block(&next.body, reg_off, param_off, self.inputs.len());
        let mut subst: Vec<Option<Operand>> = vec![None; regs.len()];
        mark_input0(&next.body, reg_off, self.result(), &mut subst);
        let mut body = self.body.clone();
        body.extend(bind_block(&moved, &regs, None, &mut subst));
        let mut params = self.params.clone();
        params.extend_from_slice(&next.params);
        Ok(Program {
            inputs,
            tables: Vec::new(),
            outputs: vec![(
                next.output(),
                substitute(shift(next.result(), reg_off), &subst),
            )],
            body,
            regs,
            params,
        })
    }
}

fn substitute(o: Operand, subst: &[Option<Operand>]) -> Operand {
    match o {
        Operand::Reg(r) => subst[r as usize].unwrap_or(o),
        c => c,
    }
}

/// [`Program::bind`] (and [`Program::then`]) for one block: `subst` maps registers
/// that became literals or other registers; with `values`, parameters become literals
/// (without, they stay). A register already substituted (a fused stage's input) is
/// dropped.
fn bind_block(
    body: &[Instr],
    regs: &[ScalarType],
    values: Option<&[u64]>,
    subst: &mut [Option<Operand>],
) -> Vec<Instr> {
    let mut out = Vec::with_capacity(body.len());
    for ins in body {
        let s = |o: Operand, subst: &[Option<Operand>]| substitute(o, subst);
        let ty = regs[ins.dst as usize];
        if subst[ins.dst as usize].is_some() {
            continue;
        }
        let op = match &ins.op {
            Op::Param(k) => match values {
                Some(values) => {
                    let bits = values.get(*k as usize).copied().unwrap_or(0);
                    subst[ins.dst as usize] = Some(Operand::Const(ty, bits));
                    continue;
                }
                None => ins.op.clone(),
            },
            Op::Input(_) | Op::Index | Op::TableLen(_) => ins.op.clone(),
            Op::Load {
                table,
                index,
                default,
            } => Op::Load {
                table: *table,
                index: s(*index, subst),
                default: default.map(|d| s(d, subst)),
            },
            Op::Unary(u, a) => Op::Unary(*u, s(*a, subst)),
            Op::Binary(b, x, y) => Op::Binary(*b, s(*x, subst), s(*y, subst)),
            Op::Select(c, a, b) => Op::Select(s(*c, subst), s(*a, subst), s(*b, subst)),
            Op::Cast(a) => Op::Cast(s(*a, subst)),
            Op::MulAdd(a, b, c) => Op::MulAdd(s(*a, subst), s(*b, subst), s(*c, subst)),
            Op::Clamp(a, b, c) => Op::Clamp(s(*a, subst), s(*b, subst), s(*c, subst)),
            Op::Loop(l) => {
                let count = s(l.count, subst);
                let inits: Vec<Operand> = l.inits.iter().map(|&i| s(i, subst)).collect();
                if count == Operand::Const(ScalarType::U32, 0) {
                    // no iteration: the carries keep their initial values
                    for (&c, &i) in l.carries.iter().zip(&inits) {
                        subst[c as usize] = Some(i);
                    }
                    subst[l.trips as usize] = Some(Operand::Const(ScalarType::U32, 0));
                    continue;
                }
                let cond = l.cond.as_ref().map(|c| {
                    let body = bind_block(&c.body, regs, values, subst);
                    Cond {
                        body,
                        test: s(c.test, subst),
                    }
                });
                let body = bind_block(&l.body, regs, values, subst);
                let nexts = l.nexts.iter().map(|&n| s(n, subst)).collect();
                Op::Loop(Box::new(Loop {
                    count,
                    carries: l.carries.clone(),
                    inits,
                    counter: l.counter,
                    cond,
                    body,
                    nexts,
                    trips: l.trips,
                }))
            }
        };
        match fold(op, ty) {
            Folded::Literal(c) => subst[ins.dst as usize] = Some(c),
            Folded::Op(op) => out.push(Instr { dst: ins.dst, op }),
        }
    }
    out
}

fn shift(o: Operand, by: u32) -> Operand {
    match o {
        Operand::Reg(r) => Operand::Reg(r + by),
        c => c,
    }
}

/// `body` with every register moved up by `regs` and every parameter by `params`;
/// its input `k > 0` becomes input `first + k - 1` (input 0 stays: [`Program::then`]
/// replaces it, and checks that every input's index fits in a `u8`).
fn shift_block(body: &[Instr], regs: u32, params: u32, first: usize) -> Vec<Instr> {
    let s = |o: &Operand| shift(*o, regs);
    body.iter()
        .map(|ins| Instr {
            dst: ins.dst + regs,
            op: match &ins.op {
                Op::Input(0) => Op::Input(0),
                Op::Input(k) => Op::Input((first + usize::from(*k) - 1) as u8),
                Op::Index => Op::Index,
                Op::Param(k) => Op::Param(k + params),
                Op::Unary(u, a) => Op::Unary(*u, s(a)),
                Op::Binary(b, x, y) => Op::Binary(*b, s(x), s(y)),
                Op::Select(c, a, b) => Op::Select(s(c), s(a), s(b)),
                Op::Cast(a) => Op::Cast(s(a)),
                Op::MulAdd(a, b, c) => Op::MulAdd(s(a), s(b), s(c)),
                Op::Clamp(a, b, c) => Op::Clamp(s(a), s(b), s(c)),
                Op::TableLen(t) => Op::TableLen(*t),
                Op::Load {
                    table,
                    index,
                    default,
                } => Op::Load {
                    table: *table,
                    index: s(index),
                    default: default.as_ref().map(s),
                },
                Op::Loop(l) => Op::Loop(Box::new(Loop {
                    count: s(&l.count),
                    carries: l.carries.iter().map(|c| c + regs).collect(),
                    inits: l.inits.iter().map(s).collect(),
                    counter: l.counter + regs,
                    cond: l.cond.as_ref().map(|c| Cond {
                        body: shift_block(&c.body, regs, params, first),
                        test: s(&c.test),
                    }),
                    body: shift_block(&l.body, regs, params, first),
                    nexts: l.nexts.iter().map(s).collect(),
                    trips: l.trips + regs,
                })),
            },
        })
        .collect()
}

/// Maps every register `body` reads its input 0 into (at any depth), moved up by
/// `regs`, to `value`.
fn mark_input0(body: &[Instr], regs: u32, value: Operand, subst: &mut [Option<Operand>]) {
    for ins in body {
        match &ins.op {
            Op::Input(0) => subst[(ins.dst + regs) as usize] = Some(value),
            Op::Loop(l) => {
                if let Some(c) = &l.cond {
                    mark_input0(&c.body, regs, value, subst);
                }
                mark_input0(&l.body, regs, value, subst)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{first_loop, program};
    use super::*;
    use crate::kernel::expr::BinOp;
    use crate::kernel::{fold, Expr, Kernel, Param};

    #[test]
    fn params_are_registers_never_folded() {
        let a = Param::new(3.0f32);
        let b = Param::new(-1i32);
        let k = Kernel::map(|x: Expr<f32>| {
            // a * 2 + 1 would fold if `a` were a constant; `a` is used three times.
            let t = a.expr() * 2.0 + 1.0;
            let u = fold(4, x.clone(), |acc, _| {
                acc * a.expr() + b.expr().cast::<f32>()
            });
            t + u + Expr::from(&a)
        });
        let p = program(&k);
        assert_eq!(p.params.len(), 2, "{p:#?}");
        let reads: Vec<&Instr> = p
            .body
            .iter()
            .filter(|i| matches!(i.op, Op::Param(_)))
            .collect();
        assert_eq!(reads.len(), 2, "one register per parameter: {p:#?}");
        assert!(reads.iter().any(|i| i.op == Op::Param(0)));
        assert!(
            p.body.iter().any(|i| matches!(
                i.op,
                Op::Binary(BinOp::Mul, Operand::Reg(_), Operand::Const(..))
            )),
            "a * 2 is computed, not folded: {p:#?}"
        );
        // The loop body keeps only what depends on the accumulator.
        let l = first_loop(&p);
        assert!(
            l.body
                .iter()
                .all(|i| !matches!(i.op, Op::Param(_) | Op::Cast(_))),
            "{p:#?}"
        );

        // Bound to values, the parameters are literals and fold as constants do.
        let bound = p.bind(&[3.0f32.to_bits() as u64, (-1i32) as u32 as u64]);
        fn has_param(body: &[Instr]) -> bool {
            body.iter().any(|i| match &i.op {
                Op::Param(_) => true,
                Op::Loop(l) => has_param(&l.body),
                _ => false,
            })
        }
        assert!(!has_param(&bound.body), "{bound:#?}");
        assert!(
            !bound.body.iter().any(|i| matches!(i.op, Op::Cast(_))),
            "b's cast folds: {bound:#?}"
        );
        assert!(
            bound.body.iter().any(|i| i.op
                == Op::Binary(
                    BinOp::Add,
                    Operand::Const(ScalarType::F32, 7.0f32.to_bits() as u64),
                    Operand::Reg(match i.op {
                        Op::Binary(_, _, Operand::Reg(r)) => r,
                        _ => u32::MAX,
                    })
                )),
            "a * 2 + 1 folds to 7: {bound:#?}"
        );
        // The same kernel with other values binds to other literals.
        let other = p.bind(&[0.5f32.to_bits() as u64, 4]);
        assert_ne!(other, bound);
    }
}
