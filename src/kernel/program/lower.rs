//! Lowering: the expression tree to a program, on a compiler thread with a large
//! stack (common subexpressions once, constants folded, loop invariants hoisted).

use std::collections::HashMap;
use std::sync::Arc;

use super::fold::{fold, Folded};
use super::{Cond, Instr, Loop, Op, Operand, Program};
use crate::error::{Error, Result};
use crate::kernel::expr::{BinOp, LoopNode, Node, NodeData, NodeRef};
use crate::kernel::param::ParamRef;
use crate::kernel::{ops, scalar::ScalarType};

/// Deepest expression tree the compiler accepts.
pub(crate) const MAX_DEPTH: usize = 20_000;
/// Most parameters one kernel may read: their values and the 16-byte header must fit
/// in a 64 KiB uniform block (WebGPU's guaranteed `maxUniformBufferBindingSize`).
pub(crate) const MAX_PARAMS: usize = 16_000;
const COMPILER_STACK: usize = 256 << 20;

impl Program {
    /// Lowers the trees rooted at `roots`, one per result (consumed: they are dropped
    /// on the compiler thread), for a kernel with element-wise `inputs` and whole-array
    /// `tables` of the given types.
    pub(crate) fn lower(
        inputs: &[ScalarType],
        tables: &[ScalarType],
        roots: Vec<NodeRef>,
    ) -> Result<Program> {
        let inputs = inputs.to_vec();
        let tables = tables.to_vec();
        std::thread::scope(|s| {
            let worker = std::thread::Builder::new()
                .name("hybrid-compile".into())
                .stack_size(COMPILER_STACK)
                .spawn_scoped(s, move || {
                    let out = Lowering::new(inputs, tables).run(&roots);
                    for root in roots {
                        drop_deep(root);
                    }
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
                Node::Load { index, default, .. } => {
                    stack.push(index);
                    stack.extend(default);
                }
                Node::LoopOut(lp, _) => {
                    if let Ok(lp) = Arc::try_unwrap(lp) {
                        stack.push(lp.count);
                        stack.extend(lp.inits);
                        stack.extend(lp.cond);
                        stack.extend(lp.nexts);
                    }
                }
                Node::Input(_)
                | Node::Index
                | Node::Const(..)
                | Node::Var(_)
                | Node::Param(_)
                | Node::TableLen(_) => {}
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
    tables: Vec<ScalarType>,
    /// Loop -> (its outputs: carried registers then trips, frame level, generation).
    loops: HashMap<usize, (Vec<Operand>, usize, u64)>,
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
    fn new(inputs: Vec<ScalarType>, tables: Vec<ScalarType>) -> Self {
        Lowering {
            inputs,
            tables,
            loops: HashMap::new(),
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

    fn run(mut self, roots: &[NodeRef]) -> Result<Program> {
        if roots.is_empty() {
            return Err(Error::InvalidKernel {
                reason: "a kernel must give at least one result".into(),
            });
        }
        let mut seen = HashMap::new();
        for root in roots {
            self.free_vars(root, 0, &mut seen)?;
        }
        let mut outputs = Vec::with_capacity(roots.len());
        for root in roots {
            outputs.push((root.ty, self.lower(root)?));
        }
        let frame = self.frames.pop().map(|f| f.instrs).unwrap_or_default();
        Ok(Program {
            inputs: self.inputs,
            tables: self.tables,
            outputs,
            body: frame,
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
            Node::Input(_) | Node::Index | Node::Const(..) | Node::Param(_) | Node::TableLen(_) => {
            }
            Node::Var(v) => vars.push(*v),
            Node::Load { index, default, .. } => {
                for x in std::iter::once(index).chain(default) {
                    self.free_vars(x, depth + 1, seen)?;
                    add(self, x);
                }
            }
            Node::LoopOut(lp, _) => {
                let children = std::iter::once(&lp.count)
                    .chain(&lp.inits)
                    .chain(&lp.cond)
                    .chain(&lp.nexts);
                for x in children {
                    self.free_vars(x, depth + 1, seen)?;
                    add(self, x);
                }
                vars.retain(|v| !lp.vars.contains(v) && *v != lp.counter);
            }
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

    /// `op`'s value when [`fold`] can compute it now, else a register holding it.
    fn fold_or_emit(&mut self, level: usize, ty: ScalarType, op: Op) -> Operand {
        match fold(op, ty) {
            Folded::Literal(c) => c,
            Folded::Op(op) => self.emit(level, ty, op),
        }
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
            Node::TableLen(t) => {
                self.table(*t, None)?;
                self.emit(0, ty, Op::TableLen(*t))
            }
            Node::Load {
                table,
                index,
                default,
            } => {
                self.table(*table, Some(ty))?;
                let index = self.lower(index)?;
                let default = match default {
                    Some(d) => Some(self.lower(d)?),
                    None => None,
                };
                self.emit(
                    level,
                    ty,
                    Op::Load {
                        table: *table,
                        index,
                        default,
                    },
                )
            }
            Node::LoopOut(lp, k) => {
                let outs = self.lower_loop(level, lp)?;
                match outs.get(*k) {
                    Some(o) => *o,
                    None => {
                        return Err(Error::InvalidKernel {
                            reason: format!("loop output {k} of {}", outs.len()),
                        })
                    }
                }
            }
            Node::Var(v) => Operand::Reg(self.var(*v)?.2),
            Node::Unary(op, a) => {
                let a = self.lower(a)?;
                self.fold_or_emit(level, ty, Op::Unary(*op, a))
            }
            Node::Binary(op, a, b) => {
                let (a, b) = (self.lower(a)?, self.lower(b)?);
                self.fold_or_emit(level, ty, Op::Binary(*op, a, b))
            }
            Node::Select(c, a, b) => {
                let (c, a, b) = (self.lower(c)?, self.lower(a)?, self.lower(b)?);
                self.fold_or_emit(level, ty, Op::Select(c, a, b))
            }
            Node::Cast(a) => {
                let from = a.ty;
                let a = self.lower(a)?;
                match a {
                    Operand::Reg(_) if from == ty => a,
                    _ => self.fold_or_emit(level, ty, Op::Cast(a)),
                }
            }
            Node::MulAdd(a, b, c) => {
                let (a, b, c) = (self.lower(a)?, self.lower(b)?, self.lower(c)?);
                match (a, b, c) {
                    // a constant product is folded here: left to WGSL it would be a
                    // constant expression, and one that overflows is a shader error
                    (Operand::Const(_, x), Operand::Const(_, y), Operand::Reg(_)) => {
                        let p = Operand::Const(ty, ops::binary(BinOp::Mul, ty, x, y));
                        self.emit(level, ty, Op::Binary(BinOp::Add, p, c))
                    }
                    _ => self.fold_or_emit(level, ty, Op::MulAdd(a, b, c)),
                }
            }
            Node::Clamp(a, b, c) => {
                let (a, b, c) = (self.lower(a)?, self.lower(b)?, self.lower(c)?);
                self.fold_or_emit(level, ty, Op::Clamp(a, b, c))
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

    /// Checks that table `t` exists (and, for a read, that its elements are `ty`).
    fn table(&self, t: u8, ty: Option<ScalarType>) -> Result<()> {
        match self.tables.get(t as usize) {
            Some(&have) if ty.is_none_or(|ty| ty == have) => Ok(()),
            Some(have) => Err(Error::InvalidKernel {
                reason: format!("table {t} holds {have}, read as {ty:?}"),
            }),
            None => Err(Error::InvalidKernel {
                reason: format!(
                    "table {t} used by a kernel with {} table(s)",
                    self.tables.len()
                ),
            }),
        }
    }

    /// The outputs of loop `lp` (its carried values, then its trip count), lowered
    /// once into frame `level` however many of its outputs are used.
    fn lower_loop(&mut self, level: usize, lp: &Arc<LoopNode>) -> Result<Vec<Operand>> {
        let id = Arc::as_ptr(lp) as usize;
        if let Some((outs, l, g)) = self.loops.get(&id) {
            if self.frames.get(*l).map(|f| f.gen) == Some(*g) {
                return Ok(outs.clone());
            }
        }
        let outs = self.emit_loop(level, lp)?;
        let g = self.frames[level].gen;
        self.loops.insert(id, (outs.clone(), level, g));
        Ok(outs)
    }

    fn emit_loop(&mut self, level: usize, lp: &LoopNode) -> Result<Vec<Operand>> {
        let u32_const = |v: u32| Operand::Const(ScalarType::U32, v as u64);
        let count = self.lower(&lp.count)?;
        let mut inits = Vec::with_capacity(lp.inits.len());
        for i in &lp.inits {
            inits.push(self.lower(i)?);
        }
        let none = |inits: Vec<Operand>| {
            let mut outs = inits;
            outs.push(u32_const(0));
            outs
        };
        if count == u32_const(0) || inits.is_empty() {
            return Ok(none(inits));
        }
        // The loop lives in frame `level`; frames above it (deeper loops this loop does
        // not depend on) are set aside while its condition and body are lowered.
        let detached = self.frames.split_off(level + 1);
        let gen = self.next_gen;
        self.next_gen += 1;
        self.frames.push(Frame {
            gen,
            instrs: Vec::new(),
            cse: HashMap::new(),
        });
        let mut carries = Vec::with_capacity(lp.vars.len());
        for (v, init) in lp.vars.iter().zip(&lp.inits) {
            let r = self.regs.len() as u32;
            self.regs.push(init.ty);
            self.vars.insert(*v, (level + 1, gen, r));
            carries.push(r);
        }
        let counter = self.regs.len() as u32;
        self.regs.push(ScalarType::U32);
        self.vars.insert(lp.counter, (level + 1, gen, counter));
        let inner = (|| -> Result<_> {
            let test = match &lp.cond {
                Some(c) => Some(self.lower(c)?),
                None => None,
            };
            let split = self.frames.last().map_or(0, |f| f.instrs.len());
            let mut nexts = Vec::with_capacity(lp.nexts.len());
            for n in &lp.nexts {
                nexts.push(self.lower(n)?);
            }
            Ok((test, split, nexts))
        })();
        let frame = self.frames.pop();
        self.frames.extend(detached);
        let (test, split, nexts) = inner?;
        let mut body = frame.map(|f| f.instrs).unwrap_or_default();
        let cond = match test {
            // a condition that always holds is no condition
            Some(Operand::Const(_, c)) if c != 0 => None,
            // one that never holds runs nothing
            Some(Operand::Const(..)) => return Ok(none(inits)),
            Some(test) => {
                let rest = body.split_off(split.min(body.len()));
                let cond_body = std::mem::replace(&mut body, rest);
                Some(Cond {
                    body: cond_body,
                    test,
                })
            }
            None => None,
        };
        let trips = self.regs.len() as u32;
        self.regs.push(ScalarType::U32);
        let lp = Loop {
            count,
            carries: carries.clone(),
            inits,
            counter,
            cond,
            body,
            nexts,
            trips,
        };
        self.frames[level].instrs.push(Instr {
            dst: carries[0],
            op: Op::Loop(Box::new(lp)),
        });
        let mut outs: Vec<Operand> = carries.into_iter().map(Operand::Reg).collect();
        outs.push(Operand::Reg(trips));
        Ok(outs)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{first_loop, program};
    use super::*;
    use crate::kernel::expr::UnOp;
    use crate::kernel::{fold, index, Expr, Kernel};

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
                Operand::Const(ScalarType::F32, 7.0f32.to_bits() as u64)
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
        let l = first_loop(&p);
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
        let outer = first_loop(&p);
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
