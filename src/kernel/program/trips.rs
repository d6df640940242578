//! How many loop trips one element of a call runs: what a call's work is made of
//! beside its element count (n-body's few thousand elements each visit every body).
//!
//! A loop's trip count is known at the call when it is a literal, a parameter, a
//! table's length, or arithmetic on those (folded with the semantics lowering folds
//! with). A loop that may stop early (`fold_while`) counts its most trips. A count
//! known only per element (read from an input) is not bounded here: such a loop
//! counts one trip, so the call weighs what it did before loops were counted.

use super::fold::{fold, Folded};
use super::{Instr, Op, Operand, Program};
use crate::kernel::scalar::ScalarType;

impl Program {
    /// The loop trips one element runs, at least 1: a loop of `c` trips whose body
    /// runs `b` counts `c · b`, loops one after another add, and a kernel with no loop
    /// counts 1. `values` are the parameters' values (bit patterns, in the order of
    /// [`params`](Self::params)), `tables` the tables' lengths.
    pub(crate) fn trips(&self, values: &[u64], tables: &[usize]) -> u64 {
        let mut known = vec![None; self.regs.len()];
        let env = Env {
            regs: &self.regs,
            values,
            tables,
        };
        env.block(&self.body, &mut known).max(1)
    }
}

/// What is known at the call: the registers' types, the parameters, the tables'
/// lengths.
struct Env<'a> {
    regs: &'a [ScalarType],
    values: &'a [u64],
    tables: &'a [usize],
}

impl Env<'_> {
    /// The trips of the loops in `body` (0 when it has none), recording in `known`
    /// the literal value of each register that is the same for every element.
    fn block(&self, body: &[Instr], known: &mut [Option<Operand>]) -> u64 {
        let mut trips = 0u64;
        for ins in body {
            let ty = self.regs[ins.dst as usize];
            let k = |o: Operand| match o {
                Operand::Reg(r) => known[r as usize],
                c => Some(c),
            };
            let op = match &ins.op {
                Op::Param(p) => {
                    let bits = self.values.get(*p as usize).copied().unwrap_or(0);
                    known[ins.dst as usize] = Some(Operand::Const(ty, bits));
                    continue;
                }
                Op::TableLen(t) => {
                    known[ins.dst as usize] = self.tables.get(*t as usize).map(|&len| {
                        Operand::Const(ScalarType::U32, len.min(u32::MAX as usize) as u64)
                    });
                    continue;
                }
                Op::Loop(l) => {
                    let count = match k(l.count) {
                        Some(Operand::Const(_, c)) => c,
                        _ => 1,
                    };
                    let mut each = 0u64;
                    if let Some(c) = &l.cond {
                        each = each.saturating_add(self.block(&c.body, known));
                    }
                    each = each.saturating_add(self.block(&l.body, known));
                    trips = trips.saturating_add(count.saturating_mul(each.max(1)));
                    continue;
                }
                Op::Input(_) | Op::Index | Op::Load { .. } => continue,
                Op::Unary(u, a) => match k(*a) {
                    Some(a) => Op::Unary(*u, a),
                    None => continue,
                },
                Op::Binary(b, x, y) => match (k(*x), k(*y)) {
                    (Some(x), Some(y)) => Op::Binary(*b, x, y),
                    _ => continue,
                },
                Op::Select(c, a, b) => match (k(*c), k(*a), k(*b)) {
                    (Some(c), Some(a), Some(b)) => Op::Select(c, a, b),
                    _ => continue,
                },
                Op::Cast(a) => match k(*a) {
                    Some(a) => Op::Cast(a),
                    None => continue,
                },
                Op::MulAdd(a, b, c) => match (k(*a), k(*b), k(*c)) {
                    (Some(a), Some(b), Some(c)) => Op::MulAdd(a, b, c),
                    _ => continue,
                },
                Op::Clamp(a, b, c) => match (k(*a), k(*b), k(*c)) {
                    (Some(a), Some(b), Some(c)) => Op::Clamp(a, b, c),
                    _ => continue,
                },
            };
            if let Folded::Literal(c @ Operand::Const(..)) = fold(op, ty) {
                known[ins.dst as usize] = Some(c);
            }
        }
        trips
    }
}

#[cfg(test)]
mod tests {
    use crate::kernel::program::tests::program;
    use crate::kernel::{fold, fold_while, fold_with, Expr, Kernel, Param, Table};

    #[test]
    fn a_kernel_without_loops_runs_one_trip() {
        let p = program(&Kernel::map(|x: Expr<f32>| x * 2.0 + 1.0));
        assert_eq!(p.trips(&[], &[]), 1);
    }

    #[test]
    fn a_literal_count_is_its_trips() {
        let p = program(&Kernel::map(|x: Expr<f32>| {
            fold(16, 1.0, |acc, _| acc * x.clone())
        }));
        assert_eq!(p.trips(&[], &[]), 16);
    }

    #[test]
    fn a_loop_over_a_table_runs_its_length() {
        let k = Kernel::new(|(x, t): (Expr<f32>, Table<f32>)| {
            fold_with(t.len(), x, |acc, j| acc + t.at(j))
        });
        let p = k
            .inner()
            .program()
            .cloned()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.trips(&[], &[4096]), 4096);
        assert_eq!(p.trips(&[], &[3]), 3);
        // an empty table runs no trip; the element still counts as one
        assert_eq!(p.trips(&[], &[0]), 1);
        // arithmetic on the length is folded: half the table
        let k = Kernel::new(|(x, t): (Expr<f32>, Table<f32>)| {
            fold_with(t.len() / 2u32, x, |acc, j| acc + t.at(j))
        });
        let p = k
            .inner()
            .program()
            .cloned()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.trips(&[], &[1000]), 500);
    }

    #[test]
    fn nested_loops_multiply_and_loops_in_sequence_add() {
        let p = program(&Kernel::map(|x: Expr<f32>| {
            let inner = fold(8, x.clone(), |a, _| fold(4, a, |b, _| b * 0.5));
            fold(3, inner, |a, _| a + 1.0)
        }));
        assert_eq!(p.trips(&[], &[]), 8 * 4 + 3);
    }

    #[test]
    fn a_loop_that_stops_early_counts_its_most_trips() {
        let p = program(&Kernel::map(|x: Expr<f32>| {
            let (v, _) = fold_while(256u32, x, |v, _| v.clone().le(4.0), |v, _| v * 2.0);
            v
        }));
        assert_eq!(p.trips(&[], &[]), 256);
    }

    #[test]
    fn a_parameter_count_is_read_at_the_call() {
        let iters = Param::new(10u32);
        let k = Kernel::map(|x: Expr<f32>| fold_with(iters.expr(), x, |a, _| a * 0.5));
        let p = program(&k);
        assert_eq!(p.trips(&[10], &[]), 10);
        assert_eq!(p.trips(&[1000], &[]), 1000);
    }

    #[test]
    fn a_count_known_only_per_element_counts_one_trip() {
        let k = Kernel::map(|x: Expr<u32>| fold_with(x.clone(), x, |a, _| a + 1u32));
        let p = k
            .inner()
            .program()
            .cloned()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.trips(&[], &[]), 1);
    }
}
