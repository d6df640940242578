//! Liveness: how often each register is read, and where it is defined and last used
//! (a use inside a loop of a value from before it counts at the loop's end), so the
//! planner can give a slot back as soon as its value is dead.

use crate::kernel::program::{Instr, Op, Operand};

pub(super) fn count_uses(body: &[Instr], uses: &mut [u32]) {
    fn add(uses: &mut [u32], o: &Operand) {
        if let Operand::Reg(r) = o {
            uses[*r as usize] += 1;
        }
    }
    for ins in body {
        match &ins.op {
            Op::Input(_) | Op::Index | Op::Param(_) | Op::TableLen(_) => {}
            Op::Load { index, default, .. } => {
                add(uses, index);
                if let Some(d) = default {
                    add(uses, d);
                }
            }
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
                add(uses, &l.count);
                for o in l.inits.iter().chain(&l.nexts) {
                    add(uses, o);
                }
                if let Some(c) = &l.cond {
                    add(uses, &c.test);
                    count_uses(&c.body, uses);
                }
                count_uses(&l.body, uses);
            }
        }
    }
}

/// Numbers instruction positions depth-first and records, for each register, where it
/// is defined and where it is last used; a use inside a loop of a register defined
/// before that loop counts as a use at the loop's end. Returns the last position.
pub(super) fn liveness(
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
            Op::Input(_) | Op::Index | Op::Param(_) | Op::TableLen(_) => {}
            Op::Load { index, default, .. } => {
                uses.push(*index);
                uses.extend(*default);
            }
            Op::Unary(_, a) | Op::Cast(a) => uses.push(*a),
            Op::Binary(_, a, b) => uses.extend([*a, *b]),
            Op::Select(a, b, c) | Op::MulAdd(a, b, c) | Op::Clamp(a, b, c) => {
                uses.extend([*a, *b, *c])
            }
            Op::Loop(l) => {
                uses.extend(l.inits.iter().copied());
                let cond: &[Instr] = l.cond.as_ref().map_or(&[], |c| &c.body);
                let end = here + size(cond) + size(&l.body) + 1;
                // the count is read at every iteration
                record(last, def, l.count, end, loops);
                loops.push((here, end));
                def[l.counter as usize] = here;
                for &c in &l.carries {
                    def[c as usize] = here;
                }
                liveness(cond, def, last, pos, loops);
                liveness(&l.body, def, last, pos, loops);
                *pos = end;
                if let Some(c) = &l.cond {
                    record(last, def, c.test, end, loops);
                }
                for &n in &l.nexts {
                    record(last, def, n, end, loops);
                }
                loops.pop();
                for &c in l.carries.iter().chain([&l.counter]) {
                    last[c as usize] = last[c as usize].max(end);
                }
                def[l.trips as usize] = end;
                last[l.trips as usize] = last[l.trips as usize].max(end);
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
            Op::Loop(l) => size(&l.body) + l.cond.as_ref().map_or(0, |c| size(&c.body)) + 2,
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
