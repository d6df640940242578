//! Planning a loop: where its carried values, counter and trip count live (slots, or
//! uniforms), whether it needs a mask, and how its carried values are updated at the
//! end of an iteration (all at once: a value another one reads is first copied aside;
//! a next value computed in the body and read by nothing else is swapped in, not
//! copied).

use super::plan::Planner;
use super::{Carried, LoopStep, Mask, Src, Step, BLOCK};
use crate::kernel::program::{Loop, Operand};

impl Planner<'_> {
    /// The step for loop `l`, the instruction at position `here`; the position is
    /// left at the loop's end.
    pub(super) fn plan_loop(&mut self, l: &Loop, here: usize) -> Step {
        let masked = !self.uni[l.trips as usize];
        let count = self.src(l.count);
        let inits: Vec<Src> = l.inits.iter().map(|&i| self.src(i)).collect();
        let mut uniform = 0;
        for &c in &l.carries {
            let at = if self.uni[c as usize] {
                uniform += 1;
                Src::Uni(self.new_uni())
            } else {
                Src::Slot(self.alloc())
            };
            self.slot_of[c as usize] = Some(at);
        }
        self.uni_carries = self.uni_carries.max(uniform);
        let counter = self.new_uni();
        self.slot_of[l.counter as usize] = Some(Src::Uni(counter));
        // A carried slot whose next value is another carried slot reads it through a
        // copy, taken before any carried value changes.
        let is_slot = |p: &Self, r: u32| matches!(p.slot_of[r as usize], Some(Src::Slot(_)));
        let tmps: Vec<Option<u16>> = (0..l.carries.len())
            .map(|k| match l.nexts[k] {
                Operand::Reg(r)
                    if r != l.carries[k]
                        && l.carries.contains(&r)
                        && is_slot(self, l.carries[k])
                        && is_slot(self, r) =>
                {
                    Some(self.alloc())
                }
                _ => None,
            })
            .collect();
        let (trips, mask) = if masked {
            let act = self.alloc();
            let outer = self.masks.last().copied();
            (Src::Slot(self.alloc()), Some(Mask { act, outer }))
        } else {
            (Src::Uni(self.new_uni()), None)
        };
        if let Some(m) = mask {
            self.masks.push(m.act);
        }
        self.depth += 1;
        let cond = l.cond.as_ref().map(|c| {
            let steps = self.plan_block(&c.body);
            (steps, self.src(c.test))
        });
        let body = self.plan_block(&l.body);
        self.depth -= 1;
        if mask.is_some() {
            self.masks.pop();
        }
        self.pos += 1;
        let end = self.pos;
        let carries = (0..l.carries.len())
            .map(|k| {
                let next = self.src(l.nexts[k]);
                // computed in the loop (after its start) and the next value of no
                // other carried value
                let swap = match (l.nexts[k], next) {
                    (Operand::Reg(r), Src::Slot(_)) => {
                        self.def_pos[r as usize] > here
                            && l.nexts.iter().filter(|&&n| n == l.nexts[k]).count() == 1
                    }
                    _ => false,
                };
                Carried {
                    at: self.slot_of[l.carries[k] as usize].unwrap_or(Src::Imm(0)),
                    init: inits[k],
                    next,
                    tmp: tmps[k],
                    swap,
                }
            })
            .collect();
        self.slot_of[l.trips as usize] = Some(trips);
        for s in tmps.into_iter().flatten().chain(mask.map(|m| m.act)) {
            self.give_back(s);
        }
        // Everything read last inside the loop (the count, the condition's test, the
        // next values, values from before the loop), and the loop's own outputs no
        // one reads, die here.
        self.release_dead(end);
        Step::Loop(Box::new(LoopStep {
            count,
            counter,
            carries,
            cond,
            body,
            trips,
            mask,
            chunk: self.chunk(masked),
        }))
    }

    /// How many elements a loop runs together. Only an outermost masked loop runs
    /// its block in parts: each part leaves the loop when its own elements are done,
    /// so a part of early finishers does not wait for a slow element elsewhere in the
    /// block, and its slots stay in L1 while it iterates. Parts are at least
    /// [`MIN_CHUNK`] elements, so running a step (its dispatch, its broadcasts) stays
    /// cheap beside its work. An unmasked loop runs the whole block: measured, parts
    /// made n-body slower, and a uniform loop (a table's sum) would be run once per
    /// part.
    fn chunk(&self, masked: bool) -> usize {
        if self.depth > 0 || !masked {
            return BLOCK;
        }
        let fit = (L1_BUDGET / (4 * self.slots.max(1))).clamp(MIN_CHUNK, BLOCK);
        1 << fit.ilog2()
    }
}

/// Bytes of scratch a loop's part should take at most (a typical L1 data cache is
/// 32-48 KiB).
const L1_BUDGET: usize = 24 << 10;
/// The fewest elements a loop runs together.
const MIN_CHUNK: usize = 512;
