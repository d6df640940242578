//! Executing steps over one block: each step's operands resolved to slices of the
//! block or literals, the result written to its slot (or straight into the output).
//! A loop's steps are run by `looped`, which runs its body through here again.

use super::gather::{load, load_one, load_sum};
use super::looped::run_loop;
use super::tile::run_chain;
use super::typed::{binary, cast, clamp, clamp_imm, mul_add, unary};
use super::{imm, step_dst, view, Cx, Plan, Scratch, Src, Step, TableRef, UniOp, View, BLOCK};

impl Plan {
    /// Evaluates one block of at most [`BLOCK`] elements of a kernel that reads no
    /// tables (see [`run`](Self::run)).
    pub(crate) fn run_block(
        &self,
        s: &mut Scratch,
        inputs: &[&[u32]],
        first: u64,
        out: &mut [u32],
    ) {
        self.run(s, inputs, &[], first, out);
    }

    /// Evaluates one block of at most [`BLOCK`] elements: `inputs` are the block's
    /// slices of the element-wise inputs, `tables` the whole-array inputs, `first` the
    /// global index of the block's first element, and `out` holds
    /// [`outputs`](Self::outputs) results per element, element `i`'s result `k` at
    /// `out[i * M + k]`. A table the call does not pass reads as an empty one.
    pub(crate) fn run(
        &self,
        s: &mut Scratch,
        inputs: &[&[u32]],
        tables: &[TableRef<'_>],
        first: u64,
        out: &mut [u32],
    ) {
        if let Some(w) = &self.wide {
            return w.run(&mut s.wide, inputs, tables, first, out);
        }
        let m = self.outputs();
        if m == 0 {
            return;
        }
        let len = out.len() / m;
        debug_assert!(len <= BLOCK && out.len() == len * m);
        let cx = Cx {
            run: run_steps,
            inputs,
            tables,
            first,
            lo: 0,
            len,
        };
        if m == 1 {
            if let (true, Some((last, rest))) = (self.direct, self.steps.split_last()) {
                run_steps(rest, s, &cx);
                exec(last, s, &cx, Some(out));
                return;
            }
            run_steps(&self.steps, s, &cx);
            match view(s, &cx, self.results[0]) {
                View::Slice(v) => out.copy_from_slice(v),
                View::Imm(v) => out.fill(v),
            }
            return;
        }
        run_steps(&self.steps, s, &cx);
        let out = &mut out[..len * m];
        for (k, &r) in self.results.iter().enumerate() {
            match view(s, &cx, r) {
                View::Slice(v) => {
                    for (row, &x) in out.chunks_exact_mut(m).zip(v) {
                        row[k] = x;
                    }
                }
                View::Imm(x) => {
                    for row in out.chunks_exact_mut(m) {
                        row[k] = x;
                    }
                }
            }
        }
    }
}

/// Table `t` of the call, or an empty one.
pub(super) fn table<'a>(tables: &[TableRef<'a>], t: u8) -> TableRef<'a> {
    tables.get(t as usize).copied().unwrap_or(TableRef::EMPTY)
}

/// A uniform's value, computed with the same typed functions as the block steps (one
/// element), so it is bit for bit what they would give.
fn uniform(op: &UniOp, s: &Scratch, tables: &[TableRef<'_>]) -> u32 {
    let v = |x: Src| imm(s, x);
    let mut o = [0u32];
    match *op {
        UniOp::Len(t) => return table(tables, t).len,
        UniOp::Load {
            table: t,
            signed,
            index,
            default,
        } => return load_one(table(tables, t), signed, v(index), default.map(v)),
        UniOp::Select(c, a, b) => return if v(c) != 0 { v(a) } else { v(b) },
        UniOp::Unary(op, ty, a) => unary(op, ty, View::Imm(v(a)), &mut o),
        UniOp::Binary(op, ty, a, b) => binary(op, ty, View::Imm(v(a)), View::Imm(v(b)), &mut o),
        UniOp::Cast(from, to, a) => cast(from, to, View::Imm(v(a)), &mut o),
        UniOp::MulAdd(ty, a, b, c) => {
            mul_add(ty, &[v(a)], View::Imm(v(b)), View::Imm(v(c)), &mut o)
        }
        UniOp::Clamp(ty, a, b, c) => clamp(ty, &[v(a)], &[v(b)], &[v(c)], &mut o),
    }
    o[0]
}

/// The operand at position `k` of a three-operand step as a slice. Literals were given
/// pre-filled slots at planning; a uniform was broadcast into `broadcast[k]` by
/// [`broadcast_uniforms`] just before.
fn slice<'a>(s: &'a Scratch, cx: &Cx<'a>, src: Src, k: usize) -> &'a [u32] {
    match view(s, cx, src) {
        View::Slice(v) => v,
        View::Imm(_) => &s.broadcast[k][..cx.len],
    }
}

/// Fills `broadcast[k]` for every operand of a three-operand step that is a uniform
/// (or, defensively, a literal without a slot).
fn broadcast_uniforms(s: &mut Scratch, step: &Step, len: usize) {
    let srcs = match *step {
        Step::Select { c, a, b, .. } => [c, a, b],
        Step::Clamp {
            a,
            b: Src::Imm(_),
            c: Src::Imm(_),
            ..
        } => [a, Src::Slot(0), Src::Slot(0)],
        Step::Clamp { a, b, c, .. } => [a, b, c],
        Step::MulAdd { a, .. } => [a, Src::Slot(0), Src::Slot(0)],
        _ => return,
    };
    for (k, src) in srcs.into_iter().enumerate() {
        let v = match src {
            Src::Uni(c) => s.uni[c as usize],
            Src::Imm(v) => v,
            _ => continue,
        };
        if s.broadcast[k].len() < len {
            s.broadcast[k] = vec![0; BLOCK];
        }
        s.broadcast[k][..len].fill(v);
    }
}

pub(super) fn run_steps(steps: &[Step], s: &mut Scratch, cx: &Cx<'_>) {
    for step in steps {
        exec(step, s, cx, None);
    }
}

/// Runs one step; its result goes to `out` when given, else to its slot.
fn exec(step: &Step, s: &mut Scratch, cx: &Cx<'_>, out: Option<&mut [u32]>) {
    match step {
        Step::Loop(l) => return run_loop(l, s, cx),
        Step::Uni { dst, op } => {
            s.uni[*dst as usize] = uniform(op, s, cx.tables);
            return;
        }
        _ => {}
    }
    let Some(dst) = step_dst(step) else { return };
    let len = cx.len;
    broadcast_uniforms(s, step, len);
    let mut slot = Vec::new();
    let d: &mut [u32] = match out {
        Some(o) => o,
        None => {
            slot = std::mem::take(&mut s.slots[dst as usize]);
            &mut slot[cx.lo..cx.lo + len]
        }
    };
    let sc = &*s;
    match step {
        Step::Index { .. } => {
            let base = (cx.first as u32).wrapping_add(cx.lo as u32);
            for (i, o) in d.iter_mut().enumerate() {
                *o = base.wrapping_add(i as u32);
            }
        }
        Step::Unary { op, ty, a, .. } => unary(*op, *ty, view(sc, cx, *a), d),
        Step::Binary { op, ty, a, b, .. } => {
            binary(*op, *ty, view(sc, cx, *a), view(sc, cx, *b), d)
        }
        Step::Cast { from, to, a, .. } => cast(*from, *to, view(sc, cx, *a), d),
        Step::Select { c, a, b, .. } => {
            let (c, a, b) = (
                slice(sc, cx, *c, 0),
                slice(sc, cx, *a, 1),
                slice(sc, cx, *b, 2),
            );
            for (((o, &c), &a), &b) in d.iter_mut().zip(c).zip(a).zip(b) {
                *o = if c != 0 { a } else { b };
            }
        }
        Step::MulAdd { ty, a, b, c, .. } => {
            let a = slice(sc, cx, *a, 0);
            mul_add(*ty, a, view(sc, cx, *b), view(sc, cx, *c), d);
        }
        Step::Clamp {
            ty,
            a,
            b: Src::Imm(lo),
            c: Src::Imm(hi),
            ..
        } => clamp_imm(*ty, slice(sc, cx, *a, 0), *lo, *hi, d),
        Step::Clamp { ty, a, b, c, .. } => {
            let (a, b, c) = (
                slice(sc, cx, *a, 0),
                slice(sc, cx, *b, 1),
                slice(sc, cx, *c, 2),
            );
            clamp(*ty, a, b, c, d);
        }
        Step::Load {
            table: t,
            signed,
            index,
            plus: None,
            default,
            ..
        } => load(
            table(cx.tables, *t),
            *signed,
            view(sc, cx, *index),
            default.map(|x| view(sc, cx, x)),
            d,
        ),
        Step::Load {
            table: t,
            signed,
            index,
            plus: Some(p),
            ..
        } => load_sum(
            table(cx.tables, *t),
            *signed,
            view(sc, cx, *index),
            view(sc, cx, *p),
            d,
        ),
        Step::Chain {
            start,
            links,
            coeffs,
            ..
        } => run_chain(view(sc, cx, *start), links, coeffs, sc, cx, d),
        Step::Loop(_) | Step::Uni { .. } => {}
    }
    if !slot.is_empty() {
        s.slots[dst as usize] = slot;
    }
}
