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

use bytemuck::Pod;

use super::expr::{BinOp, UnOp};
use super::ops;
use super::program::{Instr, Op, Operand, Program};
use super::ScalarType;

/// Elements per block: 2,048 x 4 bytes = 8 KiB per slot.
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

/// Appends `link` to a chain, merging a mul-add by the same operand with a literal
/// addend into the `Horner` run before it.
fn push_link(links: &mut Vec<Link>, coeffs: &mut Vec<u32>, link: Link) {
    if let Link::MadA(x, Src::Imm(c)) = link {
        if matches!(x, Src::Slot(_) | Src::Input(_)) {
            match links.last_mut() {
                Some(Link::Horner(y, first, count))
                    if *y == x && *first as usize + *count as usize == coeffs.len() =>
                {
                    coeffs.push(c);
                    *count += 1;
                    return;
                }
                Some(last @ Link::MadA(_, Src::Imm(_))) => {
                    if let Link::MadA(y, Src::Imm(c0)) = *last {
                        if y == x {
                            let first = coeffs.len() as u16;
                            coeffs.extend([c0, c]);
                            *last = Link::Horner(x, first, 2);
                            return;
                        }
                    }
                }
                _ => {}
            }
        }
    }
    links.push(link);
}

/// Folds a chain's leading `start * b + c` (literals `b`, `c`) into the `Horner` run
/// by `start` that follows it: the chain then starts from the literal `b` and runs
/// `v * start + c` first, one link and three tile loads fewer for a polynomial in
/// `start`. Bit-identical: IEEE multiplication commutes (a NaN `b` is left alone, as
/// which NaN propagates could differ).
fn lead_into_horner(start: &mut Src, links: &mut Vec<Link>, coeffs: &mut Vec<u32>) {
    let (Some(&Link::MadA(Src::Imm(b), Src::Imm(c))), Some(&Link::Horner(x, 0, count))) =
        (links.first(), links.get(1))
    else {
        return;
    };
    if x != *start || f32::from_bits(b).is_nan() || count == u16::MAX {
        return;
    }
    coeffs.insert(0, c);
    for l in links.iter_mut().skip(2) {
        if let Link::Horner(_, first, _) = l {
            *first += 1;
        }
    }
    links.remove(0);
    links[0] = Link::Horner(x, 0, count + 1);
    *start = Src::Imm(b);
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

/// Per-thread working memory for a plan.
pub(crate) struct Scratch {
    slots: Vec<Vec<u32>>,
    counters: Vec<u32>,
    /// Broadcasts of a loop counter read where a step needs a slice (three-operand
    /// steps), one per operand position.
    broadcast: [Vec<u32>; 3],
}

// --- planning: registers to slots ------------------------------------------------------

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

fn count_uses(body: &[Instr], uses: &mut [u32]) {
    fn add(uses: &mut [u32], o: &Operand) {
        if let Operand::Reg(r) = o {
            uses[*r as usize] += 1;
        }
    }
    for ins in body {
        match &ins.op {
            Op::Input(_) | Op::Index | Op::Param(_) => {}
            Op::Unary(_, a) | Op::Cast(a) => add(uses, a),
            Op::Binary(_, a, b) => {
                add(uses, a);
                add(uses, b);
            }
            Op::Select(a, b, c) | Op::MulAdd(a, b, c) | Op::Clamp(a, b, c) => {
                add(uses, a);
                add(uses, b);
                add(uses, c);
            }
            Op::Loop(l) => {
                add(uses, &l.init);
                add(uses, &l.next);
                count_uses(&l.body, uses);
            }
        }
    }
}

impl Plan {
    pub(crate) fn new(prog: &Program) -> Plan {
        let mut uses = vec![0u32; prog.regs.len()];
        count_uses(&prog.body, &mut uses);
        if let Operand::Reg(r) = prog.result {
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
        if let Operand::Reg(r) = prog.result {
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
        if let Operand::Reg(r) = prog.result {
            pl.last_use[r as usize] = end + 1;
        }
        let steps = pl.plan_block(&prog.body);
        let result = pl.src(prog.result);
        let direct = match (steps.last(), result) {
            (Some(last), Src::Slot(r)) => {
                !matches!(last, Step::Loop { .. }) && step_dst(last) == Some(r)
            }
            _ => false,
        };
        Plan {
            steps,
            result,
            slots: pl.slots,
            counters: pl.counters,
            splats: pl.splats,
            direct,
        }
    }

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

    /// Evaluates one block of at most [`BLOCK`] elements.
    pub(crate) fn run_block(
        &self,
        s: &mut Scratch,
        inputs: &[&[u32]],
        first: u64,
        out: &mut [u32],
    ) {
        let len = out.len();
        debug_assert!(len <= BLOCK);
        if let (true, Some((last, rest))) = (self.direct, self.steps.split_last()) {
            run_steps(rest, s, inputs, first, len);
            exec(last, s, inputs, first, len, Some(out));
            return;
        }
        run_steps(&self.steps, s, inputs, first, len);
        let sc = &*s;
        match view(sc, inputs, self.result, len) {
            View::Slice(v) => out.copy_from_slice(v),
            View::Imm(v) => out.fill(v),
        }
    }
}

/// Numbers instruction positions depth-first and records, for each register, where it
/// is defined and where it is last used; a use inside a loop of a register defined
/// before that loop counts as a use at the loop's end. Returns the last position.
fn liveness(
    body: &[Instr],
    def: &mut [usize],
    last: &mut [usize],
    pos: &mut usize,
    loops: &mut Vec<(usize, usize)>,
) -> usize {
    for ins in body {
        *pos += 1;
        let here = *pos;
        def[ins.dst as usize] = here;
        last[ins.dst as usize] = last[ins.dst as usize].max(here);
        let mut uses: Vec<Operand> = Vec::new();
        match &ins.op {
            Op::Input(_) | Op::Index | Op::Param(_) => {}
            Op::Unary(_, a) | Op::Cast(a) => uses.push(*a),
            Op::Binary(_, a, b) => uses.extend([*a, *b]),
            Op::Select(a, b, c) | Op::MulAdd(a, b, c) | Op::Clamp(a, b, c) => {
                uses.extend([*a, *b, *c])
            }
            Op::Loop(l) => {
                uses.push(l.init);
                let end = here + size(&l.body) + 1;
                loops.push((here, end));
                def[l.counter as usize] = here;
                liveness(&l.body, def, last, pos, loops);
                *pos = end;
                record(last, def, l.next, end, loops);
                loops.pop();
                last[ins.dst as usize] = last[ins.dst as usize].max(end);
                last[l.counter as usize] = last[l.counter as usize].max(end);
            }
        }
        for u in uses {
            record(last, def, u, here, loops);
        }
    }
    *pos
}

/// Positions an instruction list occupies: one per instruction, plus a loop's body and
/// its end.
fn size(body: &[Instr]) -> usize {
    body.iter()
        .map(|i| match &i.op {
            Op::Loop(l) => size(&l.body) + 2,
            _ => 1,
        })
        .sum()
}

fn record(last: &mut [usize], def: &[usize], o: Operand, at: usize, loops: &[(usize, usize)]) {
    if let Operand::Reg(r) = o {
        let r = r as usize;
        let mut eff = at;
        for &(start, end) in loops {
            if def[r] < start {
                eff = eff.max(end);
            }
        }
        last[r] = last[r].max(eff);
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
                    let chain = match last {
                        Step::Chain {
                            dst,
                            mut start,
                            mut links,
                            mut coeffs,
                        } => {
                            push_link(&mut links, &mut coeffs, link);
                            lead_into_horner(&mut start, &mut links, &mut coeffs);
                            Step::Chain {
                                dst,
                                start,
                                links,
                                coeffs,
                            }
                        }
                        other => into_chain(other, link),
                    };
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
                    let init = self.src(l.init);
                    used.push(l.init);
                    let acc = self.alloc();
                    self.slot_of[d] = Some(Src::Slot(acc));
                    let counter = self.counters as u16;
                    self.counters += 1;
                    self.slot_of[l.counter as usize] = Some(Src::Counter(counter));
                    let body = self.plan_block(&l.body);
                    self.pos += 1;
                    let next = self.src(l.next);
                    self.release(l.next, self.pos);
                    Some(Step::Loop {
                        count: l.count,
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

/// Operations a chain takes: those that compile to inline SSE2 instructions. A call
/// into libm (sin, exp, and on baseline x86-64 even floor and round) clobbers every
/// vector register, and one such arm in the link loop makes the compiler keep the
/// running tile in memory for every link.
fn inline_unary(op: UnOp) -> bool {
    matches!(op, UnOp::Neg | UnOp::Abs | UnOp::Sqrt)
}

fn inline_binary(op: BinOp) -> bool {
    matches!(
        op,
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Min | BinOp::Max
    )
}

/// Whether a step can be the first link of a chain.
fn chainable(s: &Step) -> bool {
    match s {
        Step::Unary { ty, op, .. } => *ty == ScalarType::F32 && inline_unary(*op),
        Step::MulAdd { ty, .. } => *ty == ScalarType::F32,
        Step::Binary { ty, op, .. } => *ty == ScalarType::F32 && inline_binary(*op),
        _ => false,
    }
}

/// A single-operation f32 step as the first link of a chain, followed by `next`.
fn into_chain(s: Step, next: Link) -> Step {
    let (dst, start, first) = match s {
        Step::Unary { op, dst, a, .. } => (dst, a, Link::Un(op)),
        Step::Binary { op, dst, a, b, .. } => (dst, a, Link::Bin(op, b, false)),
        Step::MulAdd { dst, a, b, c, .. } => (dst, a, Link::MadA(b, c)),
        other => return other,
    };
    let (mut links, mut coeffs) = (vec![first], Vec::new());
    push_link(&mut links, &mut coeffs, next);
    let mut start = start;
    lead_into_horner(&mut start, &mut links, &mut coeffs);
    Step::Chain {
        dst,
        start,
        links,
        coeffs,
    }
}

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

// --- execution -------------------------------------------------------------------------

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

/// The operand at position `k` of a three-operand step as a slice. Literals were given
/// pre-filled slots at planning; a loop counter was broadcast into `broadcast[k]` by
/// [`broadcast_counters`] just before.
fn slice<'a>(s: &'a Scratch, inputs: &[&'a [u32]], src: Src, len: usize, k: usize) -> &'a [u32] {
    match src {
        Src::Slot(i) => &s.slots[i as usize][..len],
        Src::Input(i) => &inputs[i as usize][..len],
        Src::Imm(_) | Src::Counter(_) => &s.broadcast[k][..len],
    }
}

/// Fills `broadcast[k]` for every operand of a three-operand step that is a loop
/// counter (or, defensively, a literal without a slot).
fn broadcast_counters(s: &mut Scratch, step: &Step, len: usize) {
    let srcs = match *step {
        Step::Select { c, a, b, .. } => [c, a, b],
        Step::Clamp { a, b, c, .. } => [a, b, c],
        Step::MulAdd { a, .. } => [a, Src::Slot(0), Src::Slot(0)],
        _ => return,
    };
    for (k, src) in srcs.into_iter().enumerate() {
        let v = match src {
            Src::Counter(c) => s.counters[c as usize],
            Src::Imm(v) => v,
            _ => continue,
        };
        if s.broadcast[k].len() < len {
            s.broadcast[k] = vec![0; BLOCK];
        }
        s.broadcast[k][..len].fill(v);
    }
}

fn run_steps(steps: &[Step], s: &mut Scratch, inputs: &[&[u32]], first: u64, len: usize) {
    for step in steps {
        exec(step, s, inputs, first, len, None);
    }
}

/// Runs one step; its result goes to `out` when given, else to its slot.
fn exec(
    step: &Step,
    s: &mut Scratch,
    inputs: &[&[u32]],
    first: u64,
    len: usize,
    out: Option<&mut [u32]>,
) {
    if let Step::Loop {
        count,
        acc,
        counter,
        init,
        body,
        next,
    } = step
    {
        let mut d = std::mem::take(&mut s.slots[*acc as usize]);
        copy_into(view(s, inputs, *init, len), &mut d[..len]);
        s.slots[*acc as usize] = d;
        for i in 0..*count {
            s.counters[*counter as usize] = i;
            run_steps(body, s, inputs, first, len);
            if *next != Src::Slot(*acc) {
                let mut d = std::mem::take(&mut s.slots[*acc as usize]);
                copy_into(view(s, inputs, *next, len), &mut d[..len]);
                s.slots[*acc as usize] = d;
            }
        }
        return;
    }
    let Some(dst) = step_dst(step) else { return };
    broadcast_counters(s, step, len);
    let mut slot = Vec::new();
    let d: &mut [u32] = match out {
        Some(o) => o,
        None => {
            slot = std::mem::take(&mut s.slots[dst as usize]);
            &mut slot[..len]
        }
    };
    let sc = &*s;
    match step {
        Step::Index { .. } => {
            let base = first as u32;
            for (i, o) in d.iter_mut().enumerate() {
                *o = base.wrapping_add(i as u32);
            }
        }
        Step::Unary { op, ty, a, .. } => unary(*op, *ty, view(sc, inputs, *a, len), d),
        Step::Binary { op, ty, a, b, .. } => binary(
            *op,
            *ty,
            view(sc, inputs, *a, len),
            view(sc, inputs, *b, len),
            d,
        ),
        Step::Cast { from, to, a, .. } => cast(*from, *to, view(sc, inputs, *a, len), d),
        Step::Select { c, a, b, .. } => {
            let (c, a, b) = (
                slice(sc, inputs, *c, len, 0),
                slice(sc, inputs, *a, len, 1),
                slice(sc, inputs, *b, len, 2),
            );
            for (((o, &c), &a), &b) in d.iter_mut().zip(c).zip(a).zip(b) {
                *o = if c != 0 { a } else { b };
            }
        }
        Step::MulAdd { ty, a, b, c, .. } => {
            let a = slice(sc, inputs, *a, len, 0);
            mul_add(
                *ty,
                a,
                view(sc, inputs, *b, len),
                view(sc, inputs, *c, len),
                d,
            );
        }
        Step::Clamp { ty, a, b, c, .. } => {
            let (a, b, c) = (
                slice(sc, inputs, *a, len, 0),
                slice(sc, inputs, *b, len, 1),
                slice(sc, inputs, *c, len, 2),
            );
            clamp(*ty, a, b, c, d);
        }
        Step::Chain {
            start,
            links,
            coeffs,
            ..
        } => run_chain(
            view(sc, inputs, *start, len),
            links,
            coeffs,
            sc,
            inputs,
            len,
            d,
        ),
        Step::Loop { .. } => {}
    }
    if !slot.is_empty() {
        s.slots[dst as usize] = slot;
    }
}

/// Elements per chain tile: four SSE registers' worth, kept in registers across links.
const TILE: usize = 16;

/// A chain operand: a slice of the block, or a literal broadcast into a tile-sized
/// buffer and read at offset `t & 0`, so loading either is the same branch-free copy.
#[derive(Clone, Copy)]
struct Arg<'a> {
    data: &'a [f32],
    mask: usize,
}

#[derive(Clone, Copy)]
enum LinkView<'a> {
    Un(UnOp),
    Bin(BinOp, Arg<'a>, bool),
    MadA(Arg<'a>, Arg<'a>),
    MadC(Arg<'a>, Arg<'a>),
    Horner(Arg<'a>, &'a [f32]),
}

#[inline(always)]
fn tile_arg(a: Arg<'_>, t: usize, n: usize) -> [f32; TILE] {
    let off = t & a.mask;
    let mut v = [0.0f32; TILE];
    v[..n].copy_from_slice(&a.data[off..off + n]);
    v
}

#[inline(always)]
fn tile_un(v: &mut [f32; TILE], op: UnOp) {
    match op {
        UnOp::Neg => v.iter_mut().for_each(|x| *x = -*x),
        UnOp::Abs => v.iter_mut().for_each(|x| *x = x.abs()),
        UnOp::Sqrt => v.iter_mut().for_each(|x| *x = x.sqrt()),
        _ => {}
    }
}

#[inline(always)]
fn tile_bin(v: &mut [f32; TILE], op: BinOp, a: &[f32; TILE], rev: bool) {
    macro_rules! each {
        ($f:expr) => {
            if rev {
                for (x, &y) in v.iter_mut().zip(a) {
                    *x = $f(y, *x);
                }
            } else {
                for (x, &y) in v.iter_mut().zip(a) {
                    *x = $f(*x, y);
                }
            }
        };
    }
    match op {
        BinOp::Add => each!(|x: f32, y: f32| x + y),
        BinOp::Sub => each!(|x: f32, y: f32| x - y),
        BinOp::Mul => each!(|x: f32, y: f32| x * y),
        BinOp::Div => each!(|x: f32, y: f32| x / y),
        BinOp::Min => each!(ops::min_f32),
        BinOp::Max => each!(ops::max_f32),
        _ => {}
    }
}

#[inline(always)]
fn tile(start: Arg<'_>, links: &[LinkView<'_>], t: usize, n: usize) -> [f32; TILE] {
    let mut v = tile_arg(start, t, n);
    for l in links {
        match *l {
            LinkView::Un(op) => tile_un(&mut v, op),
            LinkView::Bin(op, x, rev) => tile_bin(&mut v, op, &tile_arg(x, t, n), rev),
            LinkView::MadA(b, c) => {
                let (b, c) = (tile_arg(b, t, n), tile_arg(c, t, n));
                for ((x, &y), &z) in v.iter_mut().zip(&b).zip(&c) {
                    *x = *x * y + z;
                }
            }
            LinkView::MadC(a, b) => {
                let (a, b) = (tile_arg(a, t, n), tile_arg(b, t, n));
                for ((x, &y), &z) in v.iter_mut().zip(&a).zip(&b) {
                    *x += y * z;
                }
            }
            LinkView::Horner(x, coeffs) => {
                let x = tile_arg(x, t, n);
                for &c in coeffs {
                    for (v, &x) in v.iter_mut().zip(&x) {
                        *v = *v * x + c;
                    }
                }
            }
        }
    }
    v
}

/// Runs a chain tile by tile: the running value of [`TILE`] elements stays in
/// registers from the first link to the last and is stored once, where one step per
/// operation would store and reload it from L1 at every operation. Each operation
/// rounds exactly as its own step would.
#[allow(clippy::too_many_arguments)]
fn run_chain(
    start: View<'_>,
    links: &[Link],
    coeffs: &[u32],
    sc: &Scratch,
    inputs: &[&[u32]],
    len: usize,
    d: &mut [u32],
) {
    if let [Link::Horner(x, first, count)] = *links {
        if let View::Slice(x) = view(sc, inputs, x, len) {
            let c: &[f32] =
                bytemuck::cast_slice(&coeffs[first as usize..first as usize + count as usize]);
            let out: &mut [f32] = bytemuck::cast_slice_mut(&mut d[..len]);
            if horner(start, bytemuck::cast_slice(x), c, out) {
                return;
            }
        }
    }
    // Literals (and loop counters) of this block, each broadcast over one tile.
    let mut consts: Vec<[f32; TILE]> = Vec::new();
    let mut lit = |v: View<'_>| {
        if let View::Imm(x) = v {
            consts.push([f32::from_bits(x); TILE]);
        }
    };
    lit(start);
    for l in links {
        match *l {
            Link::Un(_) => {}
            Link::Bin(_, x, _) => lit(view(sc, inputs, x, len)),
            Link::MadA(x, y) | Link::MadC(x, y) => {
                lit(view(sc, inputs, x, len));
                lit(view(sc, inputs, y, len));
            }
            Link::Horner(x, _, _) => lit(view(sc, inputs, x, len)),
        }
    }
    let mut next = 0;
    fn as_arg<'a>(v: View<'a>, consts: &'a [[f32; TILE]], next: &mut usize) -> Arg<'a> {
        match v {
            View::Slice(s) => Arg {
                data: bytemuck::cast_slice(s),
                mask: usize::MAX,
            },
            View::Imm(_) => {
                *next += 1;
                Arg {
                    data: &consts[*next - 1][..],
                    mask: 0,
                }
            }
        }
    }
    let mut arg = |v| as_arg(v, &consts, &mut next);
    let start = arg(start);
    let lv: Vec<LinkView<'_>> = links
        .iter()
        .map(|l| match *l {
            Link::Un(op) => LinkView::Un(op),
            Link::Bin(op, x, rev) => LinkView::Bin(op, arg(view(sc, inputs, x, len)), rev),
            Link::MadA(b, c) => {
                LinkView::MadA(arg(view(sc, inputs, b, len)), arg(view(sc, inputs, c, len)))
            }
            Link::MadC(a, b) => {
                LinkView::MadC(arg(view(sc, inputs, a, len)), arg(view(sc, inputs, b, len)))
            }
            Link::Horner(x, first, count) => {
                let c: &[f32] =
                    bytemuck::cast_slice(&coeffs[first as usize..first as usize + count as usize]);
                LinkView::Horner(arg(view(sc, inputs, x, len)), c)
            }
        })
        .collect();
    let d: &mut [f32] = bytemuck::cast_slice_mut(d);
    let full = len / TILE * TILE;
    for (i, out) in d[..full].chunks_exact_mut(TILE).enumerate() {
        out.copy_from_slice(&tile(start, &lv, i * TILE, TILE));
    }
    if full < len {
        let n = len - full;
        d[full..len].copy_from_slice(&tile(start, &lv, full, n)[..n]);
    }
}

/// A chain that is one Horner run, `v = v * x + c` for each coefficient `c` from a
/// start `v` (a polynomial in `x`), for up to 8 coefficients: a plain
/// element loop with the coefficient count known at compile time, so the compiler
/// keeps every coefficient in a register across the whole block and vectorises the
/// loop as it would a hand-written one. Same operations in the same order as the
/// tiled path, so the same bits. False (nothing written) for longer runs.
fn horner(start: View<'_>, x: &[f32], c: &[f32], out: &mut [f32]) -> bool {
    macro_rules! fixed {
        ($($n:literal)*) => {
            match c.len() {
                $($n => {
                    let c: &[f32; $n] = match c.try_into() {
                        Ok(c) => c,
                        Err(_) => return false,
                    };
                    match start {
                        View::Imm(s) => horner_fixed(|_| f32::from_bits(s), x, c, out),
                        View::Slice(s) => {
                            let s: &[f32] = bytemuck::cast_slice(s);
                            horner_fixed(|i| s[i], x, c, out)
                        }
                    }
                    true
                })*
                _ => false,
            }
        };
    }
    fixed!(1 2 3 4 5 6 7 8)
}

#[inline(always)]
fn horner_fixed<const N: usize>(
    start: impl Fn(usize) -> f32,
    x: &[f32],
    c: &[f32; N],
    out: &mut [f32],
) {
    let x = &x[..out.len()];
    for (i, (o, &x)) in out.iter_mut().zip(x).enumerate() {
        let mut v = start(i);
        for &c in c {
            v = v * x + c;
        }
        *o = v;
    }
}

fn copy_into(v: View<'_>, d: &mut [u32]) {
    match v {
        View::Slice(v) => d.copy_from_slice(v),
        View::Imm(v) => d.fill(v),
    }
}

#[inline(always)]
fn map1<A: Pod, R: Pod>(a: View<'_>, out: &mut [u32], f: impl Fn(A) -> R) {
    let out: &mut [R] = bytemuck::cast_slice_mut(out);
    match a {
        View::Slice(a) => {
            let a: &[A] = bytemuck::cast_slice(a);
            for (o, &x) in out.iter_mut().zip(a) {
                *o = f(x);
            }
        }
        View::Imm(a) => out.fill(f(bytemuck::cast(a))),
    }
}

#[inline(always)]
fn map2<A: Pod, B: Pod, R: Pod>(a: View<'_>, b: View<'_>, out: &mut [u32], f: impl Fn(A, B) -> R) {
    let out: &mut [R] = bytemuck::cast_slice_mut(out);
    match (a, b) {
        (View::Slice(a), View::Slice(b)) => {
            let (a, b): (&[A], &[B]) = (bytemuck::cast_slice(a), bytemuck::cast_slice(b));
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = f(x, y);
            }
        }
        (View::Slice(a), View::Imm(y)) => {
            let a: &[A] = bytemuck::cast_slice(a);
            let y: B = bytemuck::cast(y);
            for (o, &x) in out.iter_mut().zip(a) {
                *o = f(x, y);
            }
        }
        (View::Imm(x), View::Slice(b)) => {
            let b: &[B] = bytemuck::cast_slice(b);
            let x: A = bytemuck::cast(x);
            for (o, &y) in out.iter_mut().zip(b) {
                *o = f(x, y);
            }
        }
        (View::Imm(x), View::Imm(y)) => out.fill(f(bytemuck::cast(x), bytemuck::cast(y))),
    }
}

#[inline(always)]
fn map3<T: Pod>(a: &[u32], b: &[u32], c: &[u32], out: &mut [u32], f: impl Fn(T, T, T) -> T) {
    let out: &mut [T] = bytemuck::cast_slice_mut(out);
    let (a, b, c): (&[T], &[T], &[T]) = (
        bytemuck::cast_slice(a),
        bytemuck::cast_slice(b),
        bytemuck::cast_slice(c),
    );
    for (((o, &x), &y), &z) in out.iter_mut().zip(a).zip(b).zip(c) {
        *o = f(x, y, z);
    }
}

fn unary(op: UnOp, ty: ScalarType, a: View<'_>, out: &mut [u32]) {
    use ScalarType::*;
    match (ty, op) {
        (F32, UnOp::Neg) => map1(a, out, |x: f32| -x),
        (F32, UnOp::Abs) => map1(a, out, |x: f32| x.abs()),
        (F32, UnOp::Sqrt) => map1(a, out, |x: f32| x.sqrt()),
        (F32, UnOp::Sin) => map1(a, out, |x: f32| x.sin()),
        (F32, UnOp::Cos) => map1(a, out, |x: f32| x.cos()),
        (F32, UnOp::Tan) => map1(a, out, |x: f32| x.tan()),
        (F32, UnOp::Exp) => map1(a, out, |x: f32| x.exp()),
        (F32, UnOp::Exp2) => map1(a, out, |x: f32| x.exp2()),
        (F32, UnOp::Ln) => map1(a, out, |x: f32| x.ln()),
        (F32, UnOp::Log2) => map1(a, out, |x: f32| x.log2()),
        (F32, UnOp::Floor) => map1(a, out, |x: f32| x.floor()),
        (F32, UnOp::Ceil) => map1(a, out, |x: f32| x.ceil()),
        (F32, UnOp::Round) => map1(a, out, |x: f32| x.round_ties_even()),
        (F32, UnOp::Fract) => map1(a, out, ops::fract_f32),
        (I32, UnOp::Neg) => map1(a, out, |x: i32| x.wrapping_neg()),
        (I32, UnOp::Abs) => map1(a, out, |x: i32| x.wrapping_abs()),
        (Bool, UnOp::Not) => map1(a, out, |x: u32| (x == 0) as u32),
        (I32 | U32, UnOp::Not) => map1(a, out, |x: u32| !x),
        // Identity (abs on u32) and anything the typed builder cannot make.
        _ => map1(a, out, |x: u32| ops::unary(op, ty, x)),
    }
}

fn binary(op: BinOp, ty: ScalarType, a: View<'_>, b: View<'_>, out: &mut [u32]) {
    use ScalarType::*;
    macro_rules! cmp {
        ($t:ty) => {
            match op {
                BinOp::Lt => map2(a, b, out, |x: $t, y: $t| (x < y) as u32),
                BinOp::Le => map2(a, b, out, |x: $t, y: $t| (x <= y) as u32),
                BinOp::Gt => map2(a, b, out, |x: $t, y: $t| (x > y) as u32),
                BinOp::Ge => map2(a, b, out, |x: $t, y: $t| (x >= y) as u32),
                BinOp::Eq => map2(a, b, out, |x: $t, y: $t| (x == y) as u32),
                _ => map2(a, b, out, |x: $t, y: $t| (x != y) as u32),
            }
        };
    }
    match ty {
        F32 => match op {
            BinOp::Add => map2(a, b, out, |x: f32, y: f32| x + y),
            BinOp::Sub => map2(a, b, out, |x: f32, y: f32| x - y),
            BinOp::Mul => map2(a, b, out, |x: f32, y: f32| x * y),
            BinOp::Div => map2(a, b, out, |x: f32, y: f32| x / y),
            BinOp::Rem => map2(a, b, out, ops::rem_f32),
            BinOp::Min => map2(a, b, out, ops::min_f32),
            BinOp::Max => map2(a, b, out, ops::max_f32),
            BinOp::Pow => map2(a, b, out, ops::pow_f32),
            _ if op.is_comparison() => cmp!(f32),
            _ => map2(a, b, out, |x: u32, y: u32| ops::binary(op, ty, x, y)),
        },
        I32 => match op {
            BinOp::Add => map2(a, b, out, |x: i32, y: i32| x.wrapping_add(y)),
            BinOp::Sub => map2(a, b, out, |x: i32, y: i32| x.wrapping_sub(y)),
            BinOp::Mul => map2(a, b, out, |x: i32, y: i32| x.wrapping_mul(y)),
            BinOp::Div => map2(a, b, out, ops::div_i32),
            BinOp::Rem => map2(a, b, out, ops::rem_i32),
            BinOp::Min => map2(a, b, out, |x: i32, y: i32| x.min(y)),
            BinOp::Max => map2(a, b, out, |x: i32, y: i32| x.max(y)),
            BinOp::Shl => map2(a, b, out, |x: i32, y: u32| x.wrapping_shl(y)),
            BinOp::Shr => map2(a, b, out, |x: i32, y: u32| x.wrapping_shr(y)),
            _ if op.is_comparison() => cmp!(i32),
            _ => int_bits(op, a, b, out),
        },
        U32 => match op {
            BinOp::Add => map2(a, b, out, |x: u32, y: u32| x.wrapping_add(y)),
            BinOp::Sub => map2(a, b, out, |x: u32, y: u32| x.wrapping_sub(y)),
            BinOp::Mul => map2(a, b, out, |x: u32, y: u32| x.wrapping_mul(y)),
            BinOp::Div => map2(a, b, out, ops::div_u32),
            BinOp::Rem => map2(a, b, out, ops::rem_u32),
            BinOp::Min => map2(a, b, out, |x: u32, y: u32| x.min(y)),
            BinOp::Max => map2(a, b, out, |x: u32, y: u32| x.max(y)),
            BinOp::Shl => map2(a, b, out, |x: u32, y: u32| x.wrapping_shl(y)),
            BinOp::Shr => map2(a, b, out, |x: u32, y: u32| x.wrapping_shr(y)),
            _ if op.is_comparison() => cmp!(u32),
            _ => int_bits(op, a, b, out),
        },
        Bool => match op {
            BinOp::Eq => map2(a, b, out, |x: u32, y: u32| (x == y) as u32),
            BinOp::Ne => map2(a, b, out, |x: u32, y: u32| (x != y) as u32),
            _ => int_bits(op, a, b, out),
        },
    }
}

fn int_bits(op: BinOp, a: View<'_>, b: View<'_>, out: &mut [u32]) {
    match op {
        BinOp::And => map2(a, b, out, |x: u32, y: u32| x & y),
        BinOp::Or => map2(a, b, out, |x: u32, y: u32| x | y),
        _ => map2(a, b, out, |x: u32, y: u32| x ^ y),
    }
}

fn cast(from: ScalarType, to: ScalarType, a: View<'_>, out: &mut [u32]) {
    use ScalarType::*;
    match (from, to) {
        (F32, I32) => map1(a, out, ops::f32_to_i32),
        (F32, U32) => map1(a, out, ops::f32_to_u32),
        (I32, F32) => map1(a, out, |x: i32| x as f32),
        (U32, F32) => map1(a, out, |x: u32| x as f32),
        _ => map1(a, out, |x: u32| ops::cast(from, to, x)),
    }
}

#[inline(always)]
fn mad<T: Pod>(a: &[u32], b: View<'_>, c: View<'_>, out: &mut [u32], f: impl Fn(T, T, T) -> T) {
    let out: &mut [T] = bytemuck::cast_slice_mut(out);
    let a: &[T] = bytemuck::cast_slice(a);
    match (b, c) {
        (View::Slice(b), View::Slice(c)) => {
            let (b, c): (&[T], &[T]) = (bytemuck::cast_slice(b), bytemuck::cast_slice(c));
            for (((o, &x), &y), &z) in out.iter_mut().zip(a).zip(b).zip(c) {
                *o = f(x, y, z);
            }
        }
        (View::Slice(b), View::Imm(z)) => {
            let b: &[T] = bytemuck::cast_slice(b);
            let z: T = bytemuck::cast(z);
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = f(x, y, z);
            }
        }
        (View::Imm(y), View::Slice(c)) => {
            let c: &[T] = bytemuck::cast_slice(c);
            let y: T = bytemuck::cast(y);
            for ((o, &x), &z) in out.iter_mut().zip(a).zip(c) {
                *o = f(x, y, z);
            }
        }
        (View::Imm(y), View::Imm(z)) => {
            let (y, z): (T, T) = (bytemuck::cast(y), bytemuck::cast(z));
            for (o, &x) in out.iter_mut().zip(a) {
                *o = f(x, y, z);
            }
        }
    }
}

/// `a * b + c` with two roundings (Rust never contracts it into an FMA).
fn mul_add(ty: ScalarType, a: &[u32], b: View<'_>, c: View<'_>, out: &mut [u32]) {
    match ty {
        ScalarType::F32 => mad(a, b, c, out, |x: f32, y: f32, z: f32| x * y + z),
        ScalarType::I32 => mad(a, b, c, out, |x: i32, y: i32, z: i32| {
            x.wrapping_mul(y).wrapping_add(z)
        }),
        _ => mad(a, b, c, out, |x: u32, y: u32, z: u32| {
            x.wrapping_mul(y).wrapping_add(z)
        }),
    }
}

fn clamp(ty: ScalarType, a: &[u32], b: &[u32], c: &[u32], out: &mut [u32]) {
    match ty {
        ScalarType::F32 => map3(a, b, c, out, |x: f32, lo: f32, hi: f32| {
            ops::min_f32(ops::max_f32(x, lo), hi)
        }),
        ScalarType::I32 => map3(a, b, c, out, |x: i32, lo: i32, hi: i32| x.max(lo).min(hi)),
        _ => map3(a, b, c, out, |x: u32, lo: u32, hi: u32| x.max(lo).min(hi)),
    }
}

#[cfg(test)]
mod tests {
    use crate::kernel::{fold, index, select, Expr, Kernel};

    fn eval<O: crate::Element>(k: &Kernel<f32, O>, xs: &[f32], first: u64) -> Vec<O> {
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
    fn horner_runs_merge_and_stay_bit_identical() {
        const C: [f32; 6] = [0.5, -1.25, 0.75, 0.125, -0.0625, 0.03125];
        let k = Kernel::map(|x: Expr<f32>| {
            ((((x.clone() * C[5] + C[4]) * &x + C[3]) * &x + C[2]) * &x + C[1]) * &x + C[0]
        });
        let plan = k.inner().plan().unwrap_or_else(|e| panic!("{e}"));
        // the leading `x * c5 + c4` folds into the run: one link, starting from c5
        let horner = plan.steps.iter().any(|s| {
            matches!(s, super::Step::Chain { start: super::Src::Imm(b), links, .. }
                if *b == C[5].to_bits() && matches!(links[..], [super::Link::Horner(_, 0, 5)]))
        });
        assert!(horner, "{plan:#?}");
        let mut xs: Vec<f32> = (0..5000).map(|i| i as f32 * 0.013 - 30.0).collect();
        xs.extend([
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            f32::MAX,
            1e-40,
        ]);
        for (&x, g) in xs.iter().zip(eval(&k, &xs, 0)) {
            let want = ((((x * C[5] + C[4]) * x + C[3]) * x + C[2]) * x + C[1]) * x + C[0];
            assert!(
                g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()),
                "x = {x}"
            );
        }
        // a polynomial in something other than the chain's start is not folded
        let k = Kernel::map2(|x: Expr<f32>, y: Expr<f32>| ((x * 3.0 + 1.0) * &y + 2.0) * &y + 0.5);
        let plan = k.inner().plan().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            plan.steps.iter().all(|s| !matches!(
                s,
                super::Step::Chain {
                    start: super::Src::Imm(_),
                    ..
                }
            )),
            "{plan:#?}"
        );
    }

    /// Every Horner run length, from a literal and from another input, through the
    /// specialised loop (up to 8 coefficients) and the tiled one (beyond), bit for bit
    /// against the same arithmetic in plain Rust.
    #[test]
    fn horner_of_every_length_matches_plain_arithmetic() {
        let mut xs: Vec<f32> = (0..4133).map(|i| i as f32 * 0.0071 - 13.0).collect();
        xs.extend([f32::INFINITY, -0.0, 1e-39, 3.0e38]);
        let ys: Vec<f32> = xs.iter().map(|x| x * 0.37 - 1.0).collect();
        let (xb, yb): (Vec<u32>, Vec<u32>) = (
            xs.iter().map(|x| x.to_bits()).collect(),
            ys.iter().map(|y| y.to_bits()).collect(),
        );
        for count in 1..=11usize {
            let c: Vec<f32> = (0..count).map(|k| 0.75 - k as f32 * 0.3125).collect();
            // from the other input: y * x + c0, then * x + c1, ...
            let cc = c.clone();
            let k = Kernel::map2(move |x: Expr<f32>, y: Expr<f32>| {
                cc.iter().fold(y, |v, &ck| v * &x + ck)
            });
            let plan = k.inner().plan().unwrap_or_else(|e| panic!("{e}"));
            let mut sc = plan.scratch();
            let mut out = vec![0u32; xs.len()];
            for (i, o) in out.chunks_mut(super::BLOCK).enumerate() {
                let r = i * super::BLOCK..i * super::BLOCK + o.len();
                plan.run_block(
                    &mut sc,
                    &[&xb[r.clone()], &yb[r.clone()]],
                    r.start as u64,
                    o,
                );
            }
            for (i, (&x, &y)) in xs.iter().zip(&ys).enumerate() {
                let want = c.iter().fold(y, |v, &ck| v * x + ck);
                assert_eq!(out[i], want.to_bits(), "count {count}, from y, x = {x}");
            }
            // from a literal: a polynomial in x whose leading coefficient is 1.5
            let cc = c.clone();
            let k = Kernel::map(move |x: Expr<f32>| {
                cc.iter().fold(x.clone() * 1.5 + 0.5, |v, &ck| v * &x + ck)
            });
            for (&x, g) in xs.iter().zip(eval(&k, &xs, 0)) {
                let want = c.iter().fold(x * 1.5 + 0.5, |v, &ck| v * x + ck);
                assert_eq!(
                    g.to_bits(),
                    want.to_bits(),
                    "count {count}, from 1.5, x = {x}"
                );
            }
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

    #[test]
    fn constant_and_identity_kernels() {
        let k = Kernel::map(|_x: Expr<f32>| Expr::constant(4.5f32));
        assert_eq!(eval(&k, &[1.0, 2.0], 0), vec![4.5, 4.5]);
        let k = Kernel::map(|x: Expr<f32>| x);
        assert_eq!(eval(&k, &[1.0, -2.0], 0), vec![1.0, -2.0]);
    }
}
