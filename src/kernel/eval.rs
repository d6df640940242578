//! The block-wise CPU evaluator.
//!
//! Like numexpr, it evaluates a program one instruction at a time over a block of
//! [`BLOCK`] elements, so every instruction is a tight loop over cache-resident slices
//! that the compiler vectorizes, and no per-element interpretation happens. Registers
//! are mapped to a few reusable scratch slots by liveness, so the working set of a
//! block stays in L1/L2 however long the program is. Inputs are read in place, and
//! literals stay immediates in two-operand instructions.

use bytemuck::Pod;

use super::expr::{BinOp, UnOp};
use super::ops;
use super::program::{Instr, Op, Operand, Program};
use super::ScalarType;

/// Elements per block: 2,048 x 4 bytes = 8 KiB per slot.
pub(crate) const BLOCK: usize = 2048;

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
}

/// Per-thread working memory for a plan.
pub(crate) struct Scratch {
    slots: Vec<Vec<u32>>,
    counters: Vec<u32>,
}

// --- planning: registers to slots ------------------------------------------------------

struct Planner<'p> {
    prog: &'p Program,
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

impl Plan {
    pub(crate) fn new(prog: &Program) -> Plan {
        let n = prog.regs.len();
        let mut pl = Planner {
            prog,
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
        Plan {
            steps,
            result,
            slots: pl.slots,
            counters: pl.counters,
            splats: pl.splats,
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
            Op::Input(_) | Op::Index => {}
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

    fn plan_block(&mut self, body: &[Instr]) -> Vec<Step> {
        let mut steps = Vec::with_capacity(body.len());
        for ins in body {
            self.pos += 1;
            let here = self.pos;
            let d = ins.dst as usize;
            let ty = self.prog.regs[d];
            let mut used: Vec<Operand> = Vec::new();
            let step = match &ins.op {
                Op::Input(k) => {
                    self.slot_of[d] = Some(Src::Input(*k));
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
                Op::Select(c, a, b) | Op::MulAdd(c, a, b) | Op::Clamp(c, a, b) => {
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
                        Op::MulAdd(..) => Step::MulAdd {
                            ty,
                            dst,
                            a: c2,
                            b: a2,
                            c: b2,
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

fn step_dst(s: &Step) -> Option<u16> {
    match *s {
        Step::Index { dst }
        | Step::Unary { dst, .. }
        | Step::Binary { dst, .. }
        | Step::Select { dst, .. }
        | Step::Cast { dst, .. }
        | Step::MulAdd { dst, .. }
        | Step::Clamp { dst, .. } => Some(dst),
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

fn slice<'a>(s: &'a Scratch, inputs: &[&'a [u32]], src: Src, len: usize) -> &'a [u32] {
    match src {
        Src::Slot(i) => &s.slots[i as usize][..len],
        Src::Input(k) => &inputs[k as usize][..len],
        // Three-operand steps get slots for literals at planning; counters are the one
        // immediate that can reach here, and only through `init`/`next` (handled there).
        Src::Imm(_) | Src::Counter(_) => &[],
    }
}

fn run_steps(steps: &[Step], s: &mut Scratch, inputs: &[&[u32]], first: u64, len: usize) {
    for step in steps {
        match step {
            Step::Index { dst } => {
                let d = &mut s.slots[*dst as usize][..len];
                let base = first as u32;
                for (i, o) in d.iter_mut().enumerate() {
                    *o = base.wrapping_add(i as u32);
                }
            }
            Step::Unary { op, ty, dst, a } => {
                let mut d = std::mem::take(&mut s.slots[*dst as usize]);
                unary(*op, *ty, view(s, inputs, *a, len), &mut d[..len]);
                s.slots[*dst as usize] = d;
            }
            Step::Binary { op, ty, dst, a, b } => {
                let mut d = std::mem::take(&mut s.slots[*dst as usize]);
                binary(
                    *op,
                    *ty,
                    view(s, inputs, *a, len),
                    view(s, inputs, *b, len),
                    &mut d[..len],
                );
                s.slots[*dst as usize] = d;
            }
            Step::Cast { from, to, dst, a } => {
                let mut d = std::mem::take(&mut s.slots[*dst as usize]);
                cast(*from, *to, view(s, inputs, *a, len), &mut d[..len]);
                s.slots[*dst as usize] = d;
            }
            Step::Select { dst, c, a, b } => {
                let mut d = std::mem::take(&mut s.slots[*dst as usize]);
                let (c, a, b) = (
                    slice(s, inputs, *c, len),
                    slice(s, inputs, *a, len),
                    slice(s, inputs, *b, len),
                );
                for (((o, &c), &a), &b) in d[..len].iter_mut().zip(c).zip(a).zip(b) {
                    *o = if c != 0 { a } else { b };
                }
                s.slots[*dst as usize] = d;
            }
            Step::MulAdd { ty, dst, a, b, c } | Step::Clamp { ty, dst, a, b, c } => {
                let fma = matches!(step, Step::MulAdd { .. });
                let mut d = std::mem::take(&mut s.slots[*dst as usize]);
                let (a, b, c) = (
                    slice(s, inputs, *a, len),
                    slice(s, inputs, *b, len),
                    slice(s, inputs, *c, len),
                );
                ternary(fma, *ty, a, b, c, &mut d[..len]);
                s.slots[*dst as usize] = d;
            }
            Step::Loop {
                count,
                acc,
                counter,
                init,
                body,
                next,
            } => {
                let mut d = std::mem::take(&mut s.slots[*acc as usize]);
                match view(s, inputs, *init, len) {
                    View::Slice(v) => d[..len].copy_from_slice(v),
                    View::Imm(v) => d[..len].fill(v),
                }
                s.slots[*acc as usize] = d;
                for i in 0..*count {
                    s.counters[*counter as usize] = i;
                    run_steps(body, s, inputs, first, len);
                    if *next != Src::Slot(*acc) {
                        let mut d = std::mem::take(&mut s.slots[*acc as usize]);
                        match view(s, inputs, *next, len) {
                            View::Slice(v) => d[..len].copy_from_slice(v),
                            View::Imm(v) => d[..len].fill(v),
                        }
                        s.slots[*acc as usize] = d;
                    }
                }
            }
        }
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

fn ternary(fma: bool, ty: ScalarType, a: &[u32], b: &[u32], c: &[u32], out: &mut [u32]) {
    use ScalarType::*;
    match (fma, ty) {
        (true, F32) => map3(a, b, c, out, |x: f32, y: f32, z: f32| x * y + z),
        (false, F32) => map3(a, b, c, out, |x: f32, lo: f32, hi: f32| {
            ops::min_f32(ops::max_f32(x, lo), hi)
        }),
        (true, I32) => map3(a, b, c, out, |x: i32, y: i32, z: i32| {
            x.wrapping_mul(y).wrapping_add(z)
        }),
        (false, I32) => map3(a, b, c, out, |x: i32, lo: i32, hi: i32| x.max(lo).min(hi)),
        (true, _) => map3(a, b, c, out, |x: u32, y: u32, z: u32| {
            x.wrapping_mul(y).wrapping_add(z)
        }),
        (false, _) => map3(a, b, c, out, |x: u32, lo: u32, hi: u32| x.max(lo).min(hi)),
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
