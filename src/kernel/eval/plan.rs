//! Planning: a program's registers mapped to a few reusable scratch slots by
//! liveness, single-use products fused with the sum that follows into mul-adds, and
//! f32 runs gathered into chains.

use super::chain::{chainable, extend, inline_binary, inline_unary};
use super::liveness::{count_uses, liveness};
use super::{step_dst, Link, Plan, Src, Step};
use crate::kernel::expr::BinOp;
use crate::kernel::program::{Instr, Op, Operand, Program};
use crate::kernel::scalar::ScalarType;

struct Planner<'p> {
    prog: &'p Program,
    /// How many times each register is read.
    uses: Vec<u32>,
    /// Position of each register's last use (after loop extension).
    last_use: Vec<usize>,
    def_pos: Vec<usize>,
    slot_of: Vec<Option<Src>>,
    free: Vec<u16>,
    slots: usize,
    counters: usize,
    splats: Vec<(u16, u32)>,
    pos: usize,
}

/// Fuses `t = a * b; r = t + c` (and `t - k` for a literal `k`) into one `MulAdd` step
/// when `t` has no other use and both are in the same instruction list. On the CPU
/// `MulAdd` rounds twice, exactly as the pair did, so results are unchanged; one pass
/// over the block instead of two (Horner's rule, saxpy).
fn fuse_mul_add(body: &[Instr], uses: &[u32], regs: &[ScalarType]) -> Vec<Instr> {
    let mut out: Vec<Instr> = Vec::with_capacity(body.len());
    // Register -> position in `out` of the single-use Mul that defines it.
    let mut muls: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    let mut dead = vec![false; body.len()];
    for ins in body {
        let fused = match &ins.op {
            Op::Binary(op @ (BinOp::Add | BinOp::Sub), x, y)
                if regs[ins.dst as usize] != ScalarType::Bool =>
            {
                let pick = |o: &Operand| match o {
                    Operand::Reg(r) => muls.get(r).copied(),
                    _ => None,
                };
                let (mi, c) = match (op, pick(x), pick(y)) {
                    (BinOp::Add, Some(i), _) => (Some(i), Some(*y)),
                    (BinOp::Add, None, Some(i)) => (Some(i), Some(*x)),
                    (BinOp::Sub, Some(i), _) => match y {
                        Operand::Const(t, k) => (Some(i), Some(Operand::Const(*t, negate(*t, *k)))),
                        _ => (None, None),
                    },
                    _ => (None, None),
                };
                match (mi, c) {
                    (Some(i), Some(c)) => match &out[i].op {
                        Op::Binary(BinOp::Mul, a, b) => {
                            dead[i] = true;
                            Some(Op::MulAdd(*a, *b, c))
                        }
                        _ => None,
                    },
                    _ => None,
                }
            }
            _ => None,
        };
        let op = match (fused, &ins.op) {
            (Some(f), _) => f,
            (None, Op::Loop(l)) => {
                let mut l = (**l).clone();
                l.body = fuse_mul_add(&l.body, uses, regs);
                Op::Loop(Box::new(l))
            }
            (None, op) => op.clone(),
        };
        if let Op::Binary(BinOp::Mul, ..) = op {
            if uses[ins.dst as usize] == 1 {
                muls.insert(ins.dst, out.len());
            }
        }
        out.push(Instr { dst: ins.dst, op });
    }
    out.into_iter()
        .enumerate()
        .filter(|(i, _)| !dead.get(*i).copied().unwrap_or(false))
        .map(|(_, x)| x)
        .collect()
}

/// `-k` such that `t - k == t + (-k)` exactly: the sign flipped for floats (IEEE
/// subtraction is addition of the negation), two's complement for integers.
fn negate(ty: ScalarType, k: u32) -> u32 {
    match ty {
        ScalarType::F32 => k ^ 0x8000_0000,
        _ => k.wrapping_neg(),
    }
}

/// What the evaluator cannot run yet, if `body` holds any.
fn unsupported(body: &[Instr]) -> Option<&'static str> {
    body.iter().find_map(|i| match &i.op {
        Op::Load { .. } | Op::TableLen(_) => Some("table reads"),
        Op::Loop(l) => {
            if l.cond.is_some() || l.carries.len() != 1 || !matches!(l.count, Operand::Const(..)) {
                Some("loops with conditions, several carries or a count known at the call")
            } else {
                unsupported(&l.body)
            }
        }
        _ => None,
    })
}

impl Plan {
    /// The plan for `prog`, a program with its parameters bound ([`Program::bind`]) or
    /// with none.
    pub(crate) fn new(prog: &Program) -> crate::error::Result<Plan> {
        if let Some(why) = unsupported(&prog.body).or_else(|| {
            (prog.outputs.len() != 1 || !prog.tables.is_empty())
                .then_some("several results or tables")
        }) {
            return Err(crate::error::Error::InvalidKernel {
                reason: format!("the CPU evaluator cannot run {why} yet"),
            });
        }
        let mut uses = vec![0u32; prog.regs.len()];
        count_uses(&prog.body, &mut uses);
        if let Operand::Reg(r) = prog.result() {
            uses[r as usize] += 1;
        }
        let fused = Program {
            body: fuse_mul_add(&prog.body, &uses, &prog.regs),
            ..prog.clone()
        };
        let prog = &fused;
        let n = prog.regs.len();
        let mut uses = vec![0u32; n];
        count_uses(&prog.body, &mut uses);
        if let Operand::Reg(r) = prog.result() {
            uses[r as usize] += 1;
        }
        let mut pl = Planner {
            prog,
            uses,
            last_use: vec![0; n],
            def_pos: vec![0; n],
            slot_of: vec![None; n],
            free: Vec::new(),
            slots: 0,
            counters: 0,
            splats: Vec::new(),
            pos: 0,
        };
        let mut loops = Vec::new();
        let end = liveness(
            &prog.body,
            &mut pl.def_pos,
            &mut pl.last_use,
            &mut 0,
            &mut loops,
        );
        if let Operand::Reg(r) = prog.result() {
            pl.last_use[r as usize] = end + 1;
        }
        let steps = pl.plan_block(&prog.body);
        let result = pl.src(prog.result());
        let direct = match (steps.last(), result) {
            (Some(last), Src::Slot(r)) => {
                !matches!(last, Step::Loop { .. }) && step_dst(last) == Some(r)
            }
            _ => false,
        };
        Ok(Plan {
            steps,
            result,
            slots: pl.slots,
            counters: pl.counters,
            splats: pl.splats,
            direct,
        })
    }
}

impl Planner<'_> {
    fn alloc(&mut self) -> u16 {
        self.free.pop().unwrap_or_else(|| {
            self.slots += 1;
            (self.slots - 1) as u16
        })
    }

    fn src(&self, o: Operand) -> Src {
        match o {
            Operand::Reg(r) => self.slot_of[r as usize].unwrap_or(Src::Imm(0)),
            Operand::Const(_, v) => Src::Imm(v),
        }
    }

    /// A source that is never an immediate: literals get a pre-filled slot.
    fn src_slice(&mut self, o: Operand) -> Src {
        match o {
            Operand::Const(_, v) => {
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

    fn release(&mut self, o: Operand, at: usize) {
        if let Operand::Reg(r) = o {
            let r = r as usize;
            if self.last_use[r] <= at {
                if let Some(Src::Slot(s)) = self.slot_of[r].take() {
                    self.free.push(s);
                }
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

    fn plan_block(&mut self, body: &[Instr]) -> Vec<Step> {
        let mut steps: Vec<Step> = Vec::with_capacity(body.len());
        // The register the last step produces, when that step can start a chain.
        let mut chain_reg: Option<u32> = None;
        for ins in body {
            self.pos += 1;
            let here = self.pos;
            let d = ins.dst as usize;
            let ty = self.prog.regs[d];
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
                Op::Load { .. } | Op::TableLen(_) => {
                    // refused by `unsupported` before planning
                    self.slot_of[d] = Some(Src::Imm(0));
                    None
                }
                Op::Param(_) => {
                    // Parameters are bound to literals (Program::bind) before planning.
                    debug_assert!(false, "an unbound parameter reached the evaluator");
                    self.slot_of[d] = Some(Src::Imm(0));
                    None
                }
                Op::Index => {
                    let dst = self.alloc();
                    Some(Step::Index { dst })
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
                    // immediate, if any, on the right.
                    let (a, b) = if matches!(a, Operand::Const(..)) {
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
                    let (c2, a2, b2) = (self.src_slice(*c), self.src_slice(*a), self.src_slice(*b));
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
                    let count = match l.count {
                        Operand::Const(_, c) => c,
                        Operand::Reg(_) => 0,
                    };
                    let init = self.src(l.inits[0]);
                    used.push(l.inits[0]);
                    let acc = self.alloc();
                    self.slot_of[d] = Some(Src::Slot(acc));
                    let counter = self.counters as u16;
                    self.counters += 1;
                    self.slot_of[l.counter as usize] = Some(Src::Counter(counter));
                    let body = self.plan_block(&l.body);
                    self.pos += 1;
                    let next = self.src(l.nexts[0]);
                    self.release(l.nexts[0], self.pos);
                    Some(Step::Loop {
                        count,
                        acc,
                        counter,
                        init,
                        body,
                        next,
                    })
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
    use super::super::tests::eval;
    use crate::kernel::{Expr, Kernel};

    #[test]
    fn mul_add_fusion_is_bit_identical_and_fuses() {
        let k = Kernel::map(|x: Expr<f32>| ((x.clone() * 1.1 + 0.3) * &x - 0.7) * &x + x.sin());
        let plan = k.inner().plan().unwrap_or_else(|e| panic!("{e}"));
        let links: Vec<&super::Link> = plan
            .steps
            .iter()
            .flat_map(|s| match s {
                super::Step::Chain { links, .. } => links.iter().collect(),
                _ => Vec::new(),
            })
            .collect();
        let fused = links
            .iter()
            .filter(|l| matches!(l, super::Link::MadA(..) | super::Link::MadC(..)))
            .count();
        let alone = plan
            .steps
            .iter()
            .filter(|s| matches!(s, super::Step::MulAdd { .. }))
            .count();
        assert_eq!(fused + alone, 3, "three fused mul-adds: {plan:#?}");
        assert_eq!(
            fused, 2,
            "two of them chained (sin calls libm, so it ends the chain): {plan:#?}"
        );
        let xs: Vec<f32> = (0..4000).map(|i| i as f32 * 0.37 - 700.0).collect();
        for (&x, g) in xs.iter().zip(eval(&k, &xs, 0)) {
            let want = ((x * 1.1 + 0.3) * x - 0.7) * x + x.sin();
            assert_eq!(g.to_bits(), want.to_bits(), "x = {x}");
        }
        // A product used twice is not fused away.
        let k = Kernel::map(|x: Expr<f32>| {
            let t = x.clone() * 3.0;
            (t.clone() + 1.0) / t
        });
        for (&x, g) in xs.iter().zip(eval(&k, &xs, 0)) {
            assert_eq!(g, (x * 3.0 + 1.0) / (x * 3.0));
        }
    }

    #[test]
    fn fused_subtraction_of_a_literal_for_every_type() {
        let k = Kernel::map(|x: Expr<f32>| {
            let u = x.cast::<u32>();
            let i = x.cast::<i32>();
            ((u.clone() * u - 3_735_928_559u32).cast::<f32>() + (i.clone() * i - 7).cast::<f32>())
                + (x.clone() * &x - 0.0)
        });
        let xs: Vec<f32> = (-3000..3000).map(|i| i as f32 * 0.5).collect();
        for (&x, g) in xs.iter().zip(eval(&k, &xs, 0)) {
            let (u, i) = (x as u32, x as i32);
            let want = (u.wrapping_mul(u).wrapping_sub(3_735_928_559) as f32
                + i.wrapping_mul(i).wrapping_sub(7) as f32)
                + (x * x - 0.0);
            assert_eq!(g.to_bits(), want.to_bits(), "x = {x}");
        }
    }

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
