//! Planning: a program's registers mapped to a few reusable scratch slots by
//! liveness (uniform ones to scalars), single-use products fused with the sum that
//! follows into mul-adds, and f32 runs gathered into chains. Loops are planned by
//! `plan_loop`.

use super::chain::{chainable, extend, inline_binary, inline_unary};
use super::fuse::fuse_mul_add;
use super::liveness::{count_uses, liveness};
use super::uniform::{uni_op, uniform};
use super::{step_dst, Link, Plan, Src, Step};
use crate::kernel::expr::BinOp;
use crate::kernel::program::{Instr, Op, Operand, Program};
use crate::kernel::scalar::ScalarType;

pub(super) struct Planner<'p> {
    pub(super) prog: &'p Program,
    /// Which registers are uniform.
    pub(super) uni: Vec<bool>,
    /// How many times each register is read.
    uses: Vec<u32>,
    /// Position of each register's last use (after loop extension).
    pub(super) last_use: Vec<usize>,
    pub(super) def_pos: Vec<usize>,
    pub(super) slot_of: Vec<Option<Src>>,
    free: Vec<u16>,
    pub(super) slots: usize,
    unis: usize,
    pub(super) uni_carries: usize,
    splats: Vec<(u16, u32)>,
    pub(super) pos: usize,
    /// The active-flag slots of the masked loops being planned, innermost last.
    pub(super) masks: Vec<u16>,
    /// How many loops the instruction being planned is in.
    pub(super) depth: usize,
}

fn count_all(prog: &Program) -> Vec<u32> {
    let mut uses = vec![0u32; prog.regs.len()];
    count_uses(&prog.body, &mut uses);
    for &(_, o) in &prog.outputs {
        if let Operand::Reg(r) = o {
            uses[r as usize] += 1;
        }
    }
    uses
}

impl Plan {
    /// The plan for `prog`, a program with its parameters bound ([`Program::bind`]) or
    /// with none.
    pub(crate) fn new(prog: &Program) -> crate::error::Result<Plan> {
        if prog.is_wide() {
            let words = |t: &ScalarType| if t.is_wide() { 2 } else { 1 };
            let out_words = prog.out_words();
            let input_words: Vec<usize> = prog.inputs.iter().map(words).collect();
            return Ok(Plan {
                steps: Vec::new(),
                results: vec![Src::Imm(0); out_words],
                input_words: if input_words.iter().any(|&w| w > 1) {
                    input_words
                } else {
                    Vec::new()
                },
                slots: 0,
                unis: 0,
                uni_carries: 0,
                splats: Vec::new(),
                direct: false,
                tables: prog.tables.len(),
                wide: Some(Box::new(super::wide::Wide::new(prog))),
            });
        }
        let uses = count_all(prog);
        let fused = Program {
            body: fuse_mul_add(&prog.body, &uses, &prog.regs, &uniform(prog)),
            ..prog.clone()
        };
        let prog = &fused;
        let n = prog.regs.len();
        let mut pl = Planner {
            prog,
            uni: uniform(prog),
            uses: count_all(prog),
            last_use: vec![0; n],
            def_pos: vec![0; n],
            slot_of: vec![None; n],
            free: Vec::new(),
            slots: 0,
            unis: 0,
            uni_carries: 0,
            splats: Vec::new(),
            pos: 0,
            masks: Vec::new(),
            depth: 0,
        };
        let mut loops = Vec::new();
        let end = liveness(
            &prog.body,
            &mut pl.def_pos,
            &mut pl.last_use,
            &mut 0,
            &mut loops,
        );
        for &(_, o) in &prog.outputs {
            if let Operand::Reg(r) = o {
                pl.last_use[r as usize] = end + 1;
            }
        }
        let steps = pl.plan_block(&prog.body);
        let results: Vec<Src> = prog.outputs.iter().map(|&(_, o)| pl.src(o)).collect();
        let direct = match (steps.last(), &results[..]) {
            (Some(last), [Src::Slot(r)]) => {
                !matches!(last, Step::Loop(_)) && step_dst(last) == Some(*r)
            }
            _ => false,
        };
        Ok(Plan {
            steps,
            results,
            slots: pl.slots,
            unis: pl.unis,
            uni_carries: pl.uni_carries,
            splats: pl.splats,
            direct,
            tables: prog.tables.len(),
            wide: None,
            input_words: Vec::new(),
        })
    }
}

impl Planner<'_> {
    pub(super) fn alloc(&mut self) -> u16 {
        self.free.pop().unwrap_or_else(|| {
            self.slots += 1;
            (self.slots - 1) as u16
        })
    }

    /// A fresh uniform. Uniforms are not reused: one `u32` each.
    pub(super) fn new_uni(&mut self) -> u16 {
        self.unis += 1;
        (self.unis - 1) as u16
    }

    /// Gives a slot back.
    pub(super) fn give_back(&mut self, s: u16) {
        self.free.push(s);
    }

    pub(super) fn src(&self, o: Operand) -> Src {
        match o {
            Operand::Reg(r) => self.slot_of[r as usize].unwrap_or(Src::Imm(0)),
            // a program with 64-bit values runs on the wide evaluator, never here
            Operand::Const(_, v) => Src::Imm(v as u32),
        }
    }

    fn is_uni(&self, o: Operand) -> bool {
        match o {
            Operand::Reg(r) => self.uni[r as usize],
            Operand::Const(..) => true,
        }
    }

    /// A source that is never an immediate: literals get a pre-filled slot.
    fn src_slice(&mut self, o: Operand) -> Src {
        match o {
            Operand::Const(_, v) => {
                let v = v as u32;
                if let Some(&(s, _)) = self.splats.iter().find(|(_, x)| *x == v) {
                    return Src::Slot(s);
                }
                self.slots += 1;
                let s = (self.slots - 1) as u16;
                self.splats.push((s, v));
                Src::Slot(s)
            }
            Operand::Reg(_) => self.src(o),
        }
    }

    pub(super) fn release(&mut self, o: Operand, at: usize) {
        if let Operand::Reg(r) = o {
            let r = r as usize;
            if self.last_use[r] <= at {
                if let Some(Src::Slot(s)) = self.slot_of[r].take() {
                    self.free.push(s);
                }
            }
        }
    }

    /// Gives back the slot of every register dead at `at` (those read last inside a
    /// loop that just ended).
    pub(super) fn release_dead(&mut self, at: usize) {
        for r in 0..self.slot_of.len() {
            if self.last_use[r] <= at && matches!(self.slot_of[r], Some(Src::Slot(_))) {
                self.release(Operand::Reg(r as u32), at);
            }
        }
    }

    /// The chain link `ins` would add to a chain whose running value is `running`, with
    /// the operands it reads besides the running value.
    fn link(&self, ins: &Instr, running: u32) -> Option<(Link, Vec<Operand>)> {
        let r = Operand::Reg(running);
        if self.prog.regs[ins.dst as usize] != ScalarType::F32 || self.uses[running as usize] != 1 {
            return None;
        }
        match &ins.op {
            Op::Unary(op, a) if *a == r && inline_unary(*op) => Some((Link::Un(*op), vec![])),
            Op::Binary(op, a, b) if inline_binary(*op) && (*a == r) != (*b == r) => {
                let (x, rev) = if *a == r { (*b, false) } else { (*a, true) };
                Some((Link::Bin(*op, self.src(x), rev), vec![x]))
            }
            Op::MulAdd(a, b, c) if *a == r => {
                Some((Link::MadA(self.src(*b), self.src(*c)), vec![*b, *c]))
            }
            Op::MulAdd(a, b, c) if *b == r => {
                Some((Link::MadA(self.src(*a), self.src(*c)), vec![*a, *c]))
            }
            Op::MulAdd(a, b, c) if *c == r => {
                Some((Link::MadC(self.src(*a), self.src(*b)), vec![*a, *b]))
            }
            _ => None,
        }
    }

    /// The operands of the integer sum a gather's index is, when the last step
    /// computes it and nothing else reads it: the gather then adds them itself. Only
    /// without a default (the clamped read).
    fn index_sum(
        &self,
        steps: &[Step],
        index: Operand,
        default: Option<Src>,
    ) -> Option<(Src, Src)> {
        let Operand::Reg(r) = index else { return None };
        if default.is_some() || self.uses[r as usize] != 1 || self.uni[r as usize] {
            return None;
        }
        match steps.last() {
            Some(&Step::Binary {
                op: BinOp::Add,
                ty: ScalarType::I32 | ScalarType::U32,
                dst,
                a,
                b,
            }) if self.slot_of[r as usize] == Some(Src::Slot(dst)) => Some((a, b)),
            _ => None,
        }
    }

    pub(super) fn plan_block(&mut self, body: &[Instr]) -> Vec<Step> {
        let mut steps: Vec<Step> = Vec::with_capacity(body.len());
        // The register the last step produces, when that step can start a chain.
        let mut chain_reg: Option<u32> = None;
        for ins in body {
            self.pos += 1;
            let here = self.pos;
            let d = ins.dst as usize;
            let ty = self.prog.regs[d];
            if self.uni[d] && !matches!(ins.op, Op::Loop(_)) {
                let Some(op) = uni_op(self.prog, ins, |o| self.src(o)) else {
                    debug_assert!(false, "an unbound parameter reached the evaluator");
                    self.slot_of[d] = Some(Src::Imm(0));
                    continue;
                };
                let dst = self.new_uni();
                self.slot_of[d] = Some(Src::Uni(dst));
                // It reads uniforms only, so it may run before the last step: a chain
                // in progress stays the last step and can go on.
                let at = steps.len() - usize::from(chain_reg.is_some());
                steps.insert(at, Step::Uni { dst, op });
                continue;
            }
            if let Some((link, others)) = chain_reg
                .and_then(|r| self.link(ins, r).map(|l| (r, l)))
                .map(|(r, l)| {
                    // The running value's slot becomes this instruction's.
                    self.slot_of[r as usize] = None;
                    l
                })
            {
                if let Some(last) = steps.pop() {
                    let chain = extend(last, link);
                    if let Some(dst) = step_dst(&chain) {
                        self.slot_of[d] = Some(Src::Slot(dst));
                    }
                    steps.push(chain);
                }
                for u in others {
                    self.release(u, here);
                }
                if self.last_use[d] <= here {
                    self.release(Operand::Reg(ins.dst), here);
                }
                chain_reg = Some(ins.dst);
                continue;
            }
            chain_reg = None;
            let mut used: Vec<Operand> = Vec::new();
            let step = match &ins.op {
                Op::Input(k) => {
                    self.slot_of[d] = Some(Src::Input(*k));
                    None
                }
                Op::Param(_) | Op::TableLen(_) => {
                    // uniform: handled above
                    self.slot_of[d] = Some(Src::Imm(0));
                    None
                }
                Op::Index => {
                    let dst = self.alloc();
                    Some(Step::Index { dst })
                }
                Op::Load {
                    table,
                    index,
                    default,
                } => {
                    used.push(*index);
                    used.extend(*default);
                    let signed = self.prog.ty(*index) == ScalarType::I32;
                    let (sum, default) = (*index, default.map(|o| self.src(o)));
                    let mut index = self.src(sum);
                    let mut plus = None;
                    if let Some((a, b)) = self.index_sum(&steps, sum, default) {
                        steps.pop();
                        (index, plus) = (a, Some(b));
                    }
                    // The sum's operands are read by this step now (their slots may
                    // have been freed by the sum): never its output.
                    let mut taken = Vec::new();
                    let mut dst = self.alloc();
                    while plus.is_some() && [index, plus.unwrap_or(index)].contains(&Src::Slot(dst))
                    {
                        taken.push(dst);
                        dst = self.alloc();
                    }
                    for t in taken {
                        self.give_back(t);
                    }
                    Some(Step::Load {
                        table: *table,
                        signed,
                        dst,
                        index,
                        plus,
                        default,
                    })
                }
                Op::Unary(op, a) => {
                    used.push(*a);
                    let a_ty = self.prog.ty(*a);
                    let a = self.src(*a);
                    let dst = self.alloc();
                    Some(Step::Unary {
                        op: *op,
                        ty: a_ty,
                        dst,
                        a,
                    })
                }
                Op::Binary(op, a, b) => {
                    used.extend([*a, *b]);
                    let a_ty = self.prog.ty(*a);
                    let (a, b) = (self.src(*a), self.src(*b));
                    let dst = self.alloc();
                    Some(Step::Binary {
                        op: *op,
                        ty: a_ty,
                        dst,
                        a,
                        b,
                    })
                }
                Op::Cast(a) => {
                    used.push(*a);
                    let from = self.prog.ty(*a);
                    let a = self.src(*a);
                    let dst = self.alloc();
                    Some(Step::Cast {
                        from,
                        to: ty,
                        dst,
                        a,
                    })
                }
                Op::MulAdd(a, b, c) => {
                    used.extend([*a, *b, *c]);
                    // Multiplication commutes (exactly, for floats too): keep the
                    // immediate or uniform, if any, on the right.
                    let (a, b) = if self.is_uni(*a) && !self.is_uni(*b) {
                        (*b, *a)
                    } else {
                        (*a, *b)
                    };
                    let (a2, b2, c2) = (self.src_slice(a), self.src(b), self.src(*c));
                    let dst = self.alloc();
                    Some(Step::MulAdd {
                        ty,
                        dst,
                        a: a2,
                        b: b2,
                        c: c2,
                    })
                }
                Op::Select(c, a, b) | Op::Clamp(c, a, b) => {
                    used.extend([*c, *a, *b]);
                    // A clamp between literals keeps them as immediates (no splat
                    // slots to stream through): blur clamps every row and column.
                    let (c2, a2, b2) = match &ins.op {
                        Op::Clamp(_, Operand::Const(..), Operand::Const(..)) => {
                            (self.src_slice(*c), self.src(*a), self.src(*b))
                        }
                        _ => (self.src_slice(*c), self.src_slice(*a), self.src_slice(*b)),
                    };
                    let dst = self.alloc();
                    Some(match &ins.op {
                        Op::Select(..) => Step::Select {
                            dst,
                            c: c2,
                            a: a2,
                            b: b2,
                        },
                        _ => Step::Clamp {
                            ty,
                            dst,
                            a: c2,
                            b: a2,
                            c: b2,
                        },
                    })
                }
                Op::Loop(l) => {
                    used.extend(l.inits.iter().copied());
                    Some(self.plan_loop(l, here))
                }
            };
            if let Some(step) = step {
                if let Some(s) = step_dst(&step) {
                    self.slot_of[d] = Some(Src::Slot(s));
                }
                if chainable(&step) {
                    chain_reg = Some(ins.dst);
                }
                steps.push(step);
            }
            for u in used {
                self.release(u, here);
            }
            // A value nobody reads frees its slot at once.
            if self.last_use[d] <= here && !matches!(ins.op, Op::Loop(_)) {
                self.release(Operand::Reg(ins.dst), here);
            }
        }
        steps
    }
}

#[cfg(test)]
mod tests {
    use crate::kernel::{Expr, Kernel};

    #[test]
    fn slots_are_reused() {
        let k = Kernel::map(|x: Expr<f32>| {
            let mut e = x;
            for i in 0..100 {
                e = (e * 1.5 + i as f32).sin();
            }
            e
        });
        let plan = k.inner().plan().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            plan.slots <= 3,
            "a chain needs few slots, got {}",
            plan.slots
        );
    }
}
