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

use std::collections::HashMap;
use std::sync::Arc;

use super::expr::{BinOp, Node, NodeData, NodeRef, UnOp};
use super::param::ParamRef;
use super::{ops, ScalarType};
use crate::error::{Error, Result};

/// Deepest expression tree the compiler accepts.
pub(crate) const MAX_DEPTH: usize = 20_000;
/// Most parameters one kernel may read: their values and the 16-byte header must fit
/// in a 64 KiB uniform block (WebGPU's guaranteed `maxUniformBufferBindingSize`).
pub(crate) const MAX_PARAMS: usize = 16_000;
const COMPILER_STACK: usize = 256 << 20;

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
    /// Lowers the tree rooted at `root` (consumed: it is dropped on the compiler thread).
    pub(crate) fn lower(inputs: &[ScalarType], root: NodeRef) -> Result<Program> {
        let inputs = inputs.to_vec();
        std::thread::scope(|s| {
            let worker = std::thread::Builder::new()
                .name("hybrid-compile".into())
                .stack_size(COMPILER_STACK)
                .spawn_scoped(s, move || {
                    let out = Lowering::new(inputs).run(&root);
                    drop_deep(root);
                    out
                });
            match worker {
                Ok(handle) => handle.join().unwrap_or_else(|_| {
                    Err(Error::InvalidKernel {
                        reason: "the compiler thread panicked".into(),
                    })
                }),
                Err(e) => Err(Error::InvalidKernel {
                    reason: format!("could not start the compiler thread: {e}"),
                }),
            }
        })
    }

    /// The type of an operand.
    pub(crate) fn ty(&self, o: Operand) -> ScalarType {
        match o {
            Operand::Reg(r) => self.regs[r as usize],
            Operand::Const(t, _) => t,
        }
    }

    /// This program with its parameters bound to `values` (bit patterns, in the order
    /// of [`params`](Self::params)): every `Op::Param` register replaced by a literal,
    /// and what then has only literal operands folded as lowering folds constants. The
    /// copy the CPU evaluates; the parameter list stays, for the record.
    pub(crate) fn bind(&self, values: &[u32]) -> Program {
        let mut subst: Vec<Option<Operand>> = vec![None; self.regs.len()];
        let body = bind_block(&self.body, &self.regs, Some(values), &mut subst);
        Program {
            inputs: self.inputs.clone(),
            output: self.output,
            body,
            result: substitute(self.result, &subst),
            regs: self.regs.clone(),
            params: self.params.clone(),
        }
    }

    /// The program that applies `self`, then `next` to its result: one pass, the
    /// intermediate never written anywhere (fusion of element-wise stages). `next`
    /// must take one input, of `self`'s output type. Both read the same global
    /// index; parameters keep their registers (`next`'s follow `self`'s), and what
    /// becomes constant (a `self` whose result is a literal) is folded again, so no
    /// constant expression reaches the WGSL compiler.
    pub(crate) fn then(&self, next: &Program) -> Result<Program> {
        if next.inputs.len() != 1 || next.inputs[0] != self.output {
            return Err(Error::InvalidKernel {
                reason: format!(
                    "cannot fuse: the next stage takes {:?}, this one gives {}",
                    next.inputs, self.output
                ),
            });
        }
        let reg_off = self.regs.len() as u32;
        let param_off = self.params.len() as u32;
        let mut regs = self.regs.clone();
        regs.extend_from_slice(&next.regs);
        let moved = shift_block(&next.body, reg_off, param_off);
        let mut subst: Vec<Option<Operand>> = vec![None; regs.len()];
        mark_inputs(&moved, self.result, &mut subst);
        let mut body = self.body.clone();
        body.extend(bind_block(&moved, &regs, None, &mut subst));
        let mut params = self.params.clone();
        params.extend_from_slice(&next.params);
        Ok(Program {
            inputs: self.inputs.clone(),
            output: next.output,
            body,
            result: substitute(shift(next.result, reg_off), &subst),
            regs,
            params,
        })
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
    values: Option<&[u32]>,
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
            Op::Input(_) | Op::Index => ins.op.clone(),
            Op::Unary(u, a) => Op::Unary(*u, s(*a, subst)),
            Op::Binary(b, x, y) => Op::Binary(*b, s(*x, subst), s(*y, subst)),
            Op::Select(c, a, b) => Op::Select(s(*c, subst), s(*a, subst), s(*b, subst)),
            Op::Cast(a) => Op::Cast(s(*a, subst)),
            Op::MulAdd(a, b, c) => Op::MulAdd(s(*a, subst), s(*b, subst), s(*c, subst)),
            Op::Clamp(a, b, c) => Op::Clamp(s(*a, subst), s(*b, subst), s(*c, subst)),
            Op::Loop(l) => {
                let init = s(l.init, subst);
                let body = bind_block(&l.body, regs, values, subst);
                let next = s(l.next, subst);
                Op::Loop(Box::new(Loop {
                    count: l.count,
                    init,
                    counter: l.counter,
                    body,
                    next,
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

/// `body` with every register moved up by `regs` and every parameter by `params`.
fn shift_block(body: &[Instr], regs: u32, params: u32) -> Vec<Instr> {
    let s = |o: &Operand| shift(*o, regs);
    body.iter()
        .map(|ins| Instr {
            dst: ins.dst + regs,
            op: match &ins.op {
                Op::Input(k) => Op::Input(*k),
                Op::Index => Op::Index,
                Op::Param(k) => Op::Param(k + params),
                Op::Unary(u, a) => Op::Unary(*u, s(a)),
                Op::Binary(b, x, y) => Op::Binary(*b, s(x), s(y)),
                Op::Select(c, a, b) => Op::Select(s(c), s(a), s(b)),
                Op::Cast(a) => Op::Cast(s(a)),
                Op::MulAdd(a, b, c) => Op::MulAdd(s(a), s(b), s(c)),
                Op::Clamp(a, b, c) => Op::Clamp(s(a), s(b), s(c)),
                Op::Loop(l) => Op::Loop(Box::new(Loop {
                    count: l.count,
                    init: s(&l.init),
                    counter: l.counter + regs,
                    body: shift_block(&l.body, regs, params),
                    next: s(&l.next),
                })),
            },
        })
        .collect()
}

/// Maps every register `body` reads its input into (at any depth) to `value`.
fn mark_inputs(body: &[Instr], value: Operand, subst: &mut [Option<Operand>]) {
    for ins in body {
        match &ins.op {
            Op::Input(_) => subst[ins.dst as usize] = Some(value),
            Op::Loop(l) => mark_inputs(&l.body, value, subst),
            _ => {}
        }
    }
}

/// What folding an instruction with substituted operands gave.
enum Folded {
    Literal(Operand),
    Op(Op),
}

/// Folds `op` (of result type `ty`) when its operands allow, as lowering does: every
/// operand a literal, or a select with a literal condition or equal arms. Constant
/// shift amounts are masked.
fn fold(op: Op, ty: ScalarType) -> Folded {
    use Operand::Const;
    match op {
        Op::Unary(u, Const(t, x)) => Folded::Literal(Const(ty, ops::unary(u, t, x))),
        Op::Binary(b, x, y) => {
            let y = match (b, y) {
                (BinOp::Shl | BinOp::Shr, Const(t, v)) => Const(t, v & 31),
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

/// Drops a tree without recursing once per level on the current stack.
fn drop_deep(root: NodeRef) {
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        if let Ok(data) = Arc::try_unwrap(n) {
            match data.node {
                Node::Unary(_, a) | Node::Cast(a) => stack.push(a),
                Node::Binary(_, a, b) => stack.extend([a, b]),
                Node::Select(a, b, c) | Node::MulAdd(a, b, c) | Node::Clamp(a, b, c) => {
                    stack.extend([a, b, c])
                }
                Node::Fold { init, body, .. } => stack.extend([init, body]),
                Node::Input(_) | Node::Index | Node::Const(..) | Node::Var(_) | Node::Param(_) => {}
            }
        }
    }
}

fn key(n: &NodeData) -> usize {
    n as *const NodeData as usize
}

struct Frame {
    gen: u64,
    instrs: Vec<Instr>,
    /// Keyed by result type too: `Cast(r)` to i32 and to u32 are different values.
    cse: HashMap<(ScalarType, Op), u32>,
}

struct Lowering {
    inputs: Vec<ScalarType>,
    regs: Vec<ScalarType>,
    frames: Vec<Frame>,
    next_gen: u64,
    /// Loop variable -> (frame level, frame generation, register).
    vars: HashMap<u32, (usize, u64, u32)>,
    /// Node -> (operand, frame level, frame generation).
    memo: HashMap<usize, (Operand, usize, u64)>,
    /// Node -> the loop variables it depends on (absent: none).
    free: HashMap<usize, Vec<u32>>,
    params: Vec<ParamRef>,
    /// Parameter id -> its index in `params`.
    param_index: HashMap<u64, u32>,
}

impl Lowering {
    fn new(inputs: Vec<ScalarType>) -> Self {
        Lowering {
            inputs,
            regs: Vec::new(),
            frames: vec![Frame {
                gen: 0,
                instrs: Vec::new(),
                cse: HashMap::new(),
            }],
            next_gen: 1,
            vars: HashMap::new(),
            memo: HashMap::new(),
            free: HashMap::new(),
            params: Vec::new(),
            param_index: HashMap::new(),
        }
    }

    fn run(mut self, root: &NodeRef) -> Result<Program> {
        let mut seen = HashMap::new();
        self.free_vars(root, 0, &mut seen)?;
        let result = self.lower(root)?;
        let frame = self.frames.pop().map(|f| f.instrs).unwrap_or_default();
        Ok(Program {
            inputs: self.inputs,
            output: root.ty,
            body: frame,
            result,
            regs: self.regs,
            params: self.params,
        })
    }

    /// Fills `self.free` with each node's free loop variables; checks the depth.
    fn free_vars(
        &mut self,
        n: &NodeRef,
        depth: usize,
        seen: &mut HashMap<usize, ()>,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Error::InvalidKernel {
                reason: format!("expression deeper than {MAX_DEPTH} levels"),
            });
        }
        if seen.insert(key(n), ()).is_some() {
            return Ok(());
        }
        let mut vars: Vec<u32> = Vec::new();
        let mut add = |this: &Self, c: &NodeRef| {
            if let Some(v) = this.free.get(&key(c)) {
                vars.extend_from_slice(v);
            }
        };
        match &n.node {
            Node::Input(_) | Node::Index | Node::Const(..) | Node::Param(_) => {}
            Node::Var(v) => vars.push(*v),
            Node::Unary(_, a) | Node::Cast(a) => {
                self.free_vars(a, depth + 1, seen)?;
                add(self, a);
            }
            Node::Binary(_, a, b) => {
                self.free_vars(a, depth + 1, seen)?;
                self.free_vars(b, depth + 1, seen)?;
                add(self, a);
                add(self, b);
            }
            Node::Select(a, b, c) | Node::MulAdd(a, b, c) | Node::Clamp(a, b, c) => {
                for x in [a, b, c] {
                    self.free_vars(x, depth + 1, seen)?;
                    add(self, x);
                }
            }
            Node::Fold {
                init,
                body,
                acc,
                counter,
                ..
            } => {
                self.free_vars(init, depth + 1, seen)?;
                self.free_vars(body, depth + 1, seen)?;
                add(self, init);
                add(self, body);
                vars.retain(|v| v != acc && v != counter);
            }
        }
        vars.sort_unstable();
        vars.dedup();
        if !vars.is_empty() {
            self.free.insert(key(n), vars);
        }
        Ok(())
    }

    /// The frame level a node belongs to: the deepest loop whose variables it uses.
    fn level(&self, n: &NodeData) -> Result<usize> {
        let mut level = 0;
        if let Some(vs) = self.free.get(&key(n)) {
            for v in vs {
                let (l, _, _) = self.var(*v)?;
                level = level.max(l);
            }
        }
        Ok(level)
    }

    fn var(&self, v: u32) -> Result<(usize, u64, u32)> {
        match self.vars.get(&v) {
            Some(&(l, g, r)) if self.frames.get(l).map(|f| f.gen) == Some(g) => Ok((l, g, r)),
            _ => Err(Error::InvalidKernel {
                reason: "a fold's accumulator or counter is used outside its fold".into(),
            }),
        }
    }

    fn emit(&mut self, level: usize, ty: ScalarType, op: Op) -> Operand {
        let cse = !matches!(op, Op::Loop(_));
        if cse {
            if let Some(&r) = self.frames[level].cse.get(&(ty, op.clone())) {
                return Operand::Reg(r);
            }
        }
        let dst = self.regs.len() as u32;
        self.regs.push(ty);
        if cse {
            self.frames[level].cse.insert((ty, op.clone()), dst);
        }
        self.frames[level].instrs.push(Instr { dst, op });
        Operand::Reg(dst)
    }

    fn lower(&mut self, n: &NodeRef) -> Result<Operand> {
        if let Some(&(o, l, g)) = self.memo.get(&key(n)) {
            if self.frames.get(l).map(|f| f.gen) == Some(g) {
                return Ok(o);
            }
        }
        let level = self.level(n)?;
        let ty = n.ty;
        let out = match &n.node {
            Node::Input(k) => {
                if *k as usize >= self.inputs.len() {
                    return Err(Error::InvalidKernel {
                        reason: format!(
                            "input {k} used by a kernel with {} input(s)",
                            self.inputs.len()
                        ),
                    });
                }
                self.emit(0, ty, Op::Input(*k))
            }
            Node::Index => self.emit(0, ty, Op::Index),
            Node::Param(cell) => {
                let k = match self.param_index.get(&cell.id) {
                    Some(&k) => k,
                    None if self.params.len() >= MAX_PARAMS => {
                        return Err(Error::InvalidKernel {
                            reason: format!("more than {MAX_PARAMS} parameters"),
                        })
                    }
                    None => {
                        let k = self.params.len() as u32;
                        self.params.push(ParamRef(cell.clone()));
                        self.param_index.insert(cell.id, k);
                        k
                    }
                };
                self.emit(0, ty, Op::Param(k))
            }
            Node::Const(t, bits) => Operand::Const(*t, *bits),
            Node::Var(v) => Operand::Reg(self.var(*v)?.2),
            Node::Unary(op, a) => {
                let a = self.lower(a)?;
                match a {
                    Operand::Const(t, x) => Operand::Const(ty, ops::unary(*op, t, x)),
                    _ => self.emit(level, ty, Op::Unary(*op, a)),
                }
            }
            Node::Binary(op, a, b) => {
                let lt = a.ty;
                let a = self.lower(a)?;
                let mut b = self.lower(b)?;
                if matches!(op, BinOp::Shl | BinOp::Shr) {
                    if let Operand::Const(t, x) = b {
                        b = Operand::Const(t, x & 31);
                    }
                }
                match (a, b) {
                    (Operand::Const(_, x), Operand::Const(_, y)) => {
                        Operand::Const(ty, ops::binary(*op, lt, x, y))
                    }
                    _ => self.emit(level, ty, Op::Binary(*op, a, b)),
                }
            }
            Node::Select(c, a, b) => {
                let c = self.lower(c)?;
                let a = self.lower(a)?;
                let b = self.lower(b)?;
                match c {
                    Operand::Const(_, x) => {
                        if x != 0 {
                            a
                        } else {
                            b
                        }
                    }
                    _ if a == b => a,
                    _ => self.emit(level, ty, Op::Select(c, a, b)),
                }
            }
            Node::Cast(a) => {
                let from = a.ty;
                let a = self.lower(a)?;
                match a {
                    Operand::Const(_, x) => Operand::Const(ty, ops::cast(from, ty, x)),
                    _ if from == ty => a,
                    _ => self.emit(level, ty, Op::Cast(a)),
                }
            }
            Node::MulAdd(a, b, c) | Node::Clamp(a, b, c) => {
                let fma = matches!(n.node, Node::MulAdd(..));
                let (a, b, c) = (self.lower(a)?, self.lower(b)?, self.lower(c)?);
                match (a, b, c) {
                    (Operand::Const(_, x), Operand::Const(_, y), Operand::Const(_, z)) => {
                        let v = if fma {
                            ops::mul_add(ty, x, y, z)
                        } else {
                            ops::clamp(ty, x, y, z)
                        };
                        Operand::Const(ty, v)
                    }
                    // a constant product is folded here: left to WGSL it would be a
                    // constant expression, and one that overflows is a shader error
                    (Operand::Const(_, x), Operand::Const(_, y), c) if fma => {
                        let p = Operand::Const(ty, ops::binary(BinOp::Mul, ty, x, y));
                        self.emit(level, ty, Op::Binary(BinOp::Add, p, c))
                    }
                    _ if fma => self.emit(level, ty, Op::MulAdd(a, b, c)),
                    _ => self.emit(level, ty, Op::Clamp(a, b, c)),
                }
            }
            Node::Fold {
                count,
                init,
                acc,
                counter,
                body,
            } => {
                let init = self.lower(init)?;
                if *count == 0 {
                    init
                } else {
                    self.lower_fold(level, ty, *count, init, (*acc, *counter), body)?
                }
            }
        };
        let l = match out {
            Operand::Reg(_) => level,
            Operand::Const(..) => 0,
        };
        let g = self.frames[l].gen;
        self.memo.insert(key(n), (out, l, g));
        Ok(out)
    }

    fn lower_fold(
        &mut self,
        level: usize,
        ty: ScalarType,
        count: u32,
        init: Operand,
        (acc, counter): (u32, u32),
        body: &NodeRef,
    ) -> Result<Operand> {
        // The loop lives in frame `level`; frames above it (deeper loops this fold does
        // not depend on) are set aside while its body is lowered.
        let detached = self.frames.split_off(level + 1);
        let gen = self.next_gen;
        self.next_gen += 1;
        self.frames.push(Frame {
            gen,
            instrs: Vec::new(),
            cse: HashMap::new(),
        });
        let acc_reg = self.regs.len() as u32;
        self.regs.push(ty);
        let counter_reg = acc_reg + 1;
        self.regs.push(ScalarType::U32);
        self.vars.insert(acc, (level + 1, gen, acc_reg));
        self.vars.insert(counter, (level + 1, gen, counter_reg));
        let next = self.lower(body);
        let frame = self.frames.pop();
        self.frames.extend(detached);
        let next = next?;
        let body = frame.map(|f| f.instrs).unwrap_or_default();
        let lp = Loop {
            count,
            init,
            counter: counter_reg,
            body,
            next,
        };
        self.frames[level].instrs.push(Instr {
            dst: acc_reg,
            op: Op::Loop(Box::new(lp)),
        });
        Ok(Operand::Reg(acc_reg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{fold, index, Expr, Kernel, Param};

    fn program<O: crate::Element>(k: &Kernel<f32, O>) -> Program {
        k.inner()
            .program()
            .cloned()
            .unwrap_or_else(|e| panic!("lowering failed: {e}"))
    }

    #[test]
    fn shared_subtrees_are_computed_once() {
        let k = Kernel::map(|x: Expr<f32>| {
            let s = x.sin();
            s.clone() * s + x.sin()
        });
        let p = program(&k);
        let sins = p
            .body
            .iter()
            .filter(|i| matches!(i.op, Op::Unary(UnOp::Sin, _)))
            .count();
        assert_eq!(sins, 1, "{p:#?}");
    }

    #[test]
    fn constants_are_folded_and_shifts_masked() {
        let k = Kernel::map(|x: Expr<f32>| {
            let c = Expr::constant(1i32) / 0 + (Expr::constant(3i32) << 33);
            x + c.cast::<f32>()
        });
        let p = program(&k);
        // 1 / 0 == 1 and 3 << (33 & 31) == 6, so the kernel is x + 7.
        assert_eq!(p.instruction_count(), 2, "{p:#?}");
        assert!(p.body.iter().any(|i| i.op
            == Op::Binary(
                BinOp::Add,
                Operand::Reg(0),
                Operand::Const(ScalarType::F32, 7.0f32.to_bits())
            )));
        let k = Kernel::map(|x: Expr<f32>| (x.cast::<u32>() << 40).cast::<f32>());
        let p = program(&k);
        let masked = p.body.iter().any(|i| {
            matches!(
                i.op,
                Op::Binary(BinOp::Shl, _, Operand::Const(ScalarType::U32, 8))
            )
        });
        assert!(masked, "{p:#?}");
    }

    #[test]
    fn casts_to_different_types_stay_apart() {
        let k = Kernel::map(|x: Expr<f32>| {
            x.cast::<i32>().cast::<f32>() + x.cast::<u32>().cast::<f32>()
        });
        let p = program(&k);
        let casts = p
            .body
            .iter()
            .filter(|i| matches!(i.op, Op::Cast(Operand::Reg(0))))
            .count();
        assert_eq!(casts, 2, "{p:#?}");
    }

    #[test]
    fn loop_invariants_are_hoisted() {
        let k = Kernel::map(|x: Expr<f32>| fold(10, 0.0, |acc, _| acc + x.sin() * 2.0));
        let p = program(&k);
        let Some(Op::Loop(l)) = p
            .body
            .iter()
            .map(|i| &i.op)
            .find(|o| matches!(o, Op::Loop(_)))
        else {
            panic!("no loop: {p:#?}");
        };
        assert_eq!(l.body.len(), 1, "only the add stays in the loop: {p:#?}");
    }

    #[test]
    fn nested_folds_and_index() {
        let k = Kernel::map(|x: Expr<f32>| {
            fold(3, x.clone(), |acc, i| {
                fold(2, acc.clone(), |inner, j| {
                    inner + (i.clone() + j + index()).cast::<f32>()
                })
            })
        });
        let p = program(&k);
        let Some(Op::Loop(outer)) = p
            .body
            .iter()
            .map(|i| &i.op)
            .find(|o| matches!(o, Op::Loop(_)))
        else {
            panic!("no loop: {p:#?}");
        };
        assert!(
            outer.body.iter().any(|i| matches!(i.op, Op::Loop(_))),
            "{p:#?}"
        );
    }

    #[test]
    fn leaked_loop_variable_is_an_error() {
        let leaked = std::cell::RefCell::new(None);
        let k = Kernel::map(|x: Expr<f32>| {
            let f = fold(2, x.clone(), |acc, _| {
                *leaked.borrow_mut() = Some(acc.clone());
                acc + 1.0
            });
            f + leaked.borrow().clone().unwrap_or(x)
        });
        assert!(matches!(
            k.inner().program(),
            Err(Error::InvalidKernel { .. })
        ));
    }

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
        let Some(Op::Loop(l)) = p
            .body
            .iter()
            .map(|i| &i.op)
            .find(|o| matches!(o, Op::Loop(_)))
        else {
            panic!("no loop: {p:#?}");
        };
        assert!(
            l.body
                .iter()
                .all(|i| !matches!(i.op, Op::Param(_) | Op::Cast(_))),
            "{p:#?}"
        );

        // Bound to values, the parameters are literals and fold as constants do.
        let bound = p.bind(&[3.0f32.to_bits(), (-1i32) as u32]);
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
                    Operand::Const(ScalarType::F32, 7.0f32.to_bits()),
                    Operand::Reg(match i.op {
                        Op::Binary(_, _, Operand::Reg(r)) => r,
                        _ => u32::MAX,
                    })
                )),
            "a * 2 + 1 folds to 7: {bound:#?}"
        );
        // The same kernel with other values binds to other literals.
        let other = p.bind(&[0.5f32.to_bits(), 4]);
        assert_ne!(other, bound);
    }

    #[test]
    fn deep_trees_compile_and_too_deep_is_an_error() {
        let k = Kernel::map(|x: Expr<f32>| {
            let mut e = x;
            for _ in 0..5_000 {
                e = e * 1.0001 + 0.5;
            }
            e
        });
        assert!(k.inner().program().is_ok());
        let k = Kernel::map(|x: Expr<f32>| {
            let mut e = x;
            for _ in 0..=MAX_DEPTH {
                e = e + 1.0;
            }
            e
        });
        assert!(matches!(
            k.inner().program(),
            Err(Error::InvalidKernel { .. })
        ));
    }
}
