//! Executing steps over one block: each step's operands resolved to slices of the
//! block or literals, the result written to its slot (or straight into the output).

use super::tile::run_chain;
use super::typed::{binary, cast, clamp, mul_add, unary};
use super::{step_dst, view, Plan, Scratch, Src, Step, View, BLOCK};

impl Plan {
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

pub(super) fn run_steps(
    steps: &[Step],
    s: &mut Scratch,
    inputs: &[&[u32]],
    first: u64,
    len: usize,
) {
    for step in steps {
        exec(step, s, inputs, first, len, None);
    }
}

/// Runs one step; its result goes to `out` when given, else to its slot.
pub(super) fn exec(
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

fn copy_into(v: View<'_>, d: &mut [u32]) {
    match v {
        View::Slice(v) => d.copy_from_slice(v),
        View::Imm(v) => d.fill(v),
    }
}
