//! Chains: a run of f32 steps that each consume the previous one's single-use result,
//! and which compile to inline SSE, becomes one step run over register tiles
//! (executed by `tile`). Consecutive mul-adds by the same operand merge into one
//! Horner run.

use super::{Link, Src, Step};
use crate::kernel::expr::{BinOp, UnOp};
use crate::kernel::scalar::ScalarType;

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

/// Operations a chain takes: those that compile to inline SSE2 instructions. A call
/// into libm (sin, exp, and on baseline x86-64 even floor and round) clobbers every
/// vector register, and one such arm in the link loop makes the compiler keep the
/// running tile in memory for every link.
pub(super) fn inline_unary(op: UnOp) -> bool {
    matches!(op, UnOp::Neg | UnOp::Abs | UnOp::Sqrt)
}

pub(super) fn inline_binary(op: BinOp) -> bool {
    matches!(
        op,
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Min | BinOp::Max
    )
}

/// Whether a step can be the first link of a chain.
pub(super) fn chainable(s: &Step) -> bool {
    match s {
        Step::Unary { ty, op, .. } => *ty == ScalarType::F32 && inline_unary(*op),
        Step::MulAdd { ty, .. } => *ty == ScalarType::F32,
        Step::Binary { ty, op, .. } => *ty == ScalarType::F32 && inline_binary(*op),
        _ => false,
    }
}

/// `s` followed by `next`: a chain one link longer, or a single-operation f32 step
/// made the first link of a new chain. Any other step is returned unchanged.
pub(super) fn extend(s: Step, next: Link) -> Step {
    let (dst, mut start, mut links, mut coeffs) = match s {
        Step::Chain {
            dst,
            start,
            links,
            coeffs,
        } => (dst, start, links, coeffs),
        Step::Unary { op, dst, a, .. } => (dst, a, vec![Link::Un(op)], Vec::new()),
        Step::Binary { op, dst, a, b, .. } => (dst, a, vec![Link::Bin(op, b, false)], Vec::new()),
        Step::MulAdd { dst, a, b, c, .. } => (dst, a, vec![Link::MadA(b, c)], Vec::new()),
        other => return other,
    };
    push_link(&mut links, &mut coeffs, next);
    lead_into_horner(&mut start, &mut links, &mut coeffs);
    Step::Chain {
        dst,
        start,
        links,
        coeffs,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::eval;
    use crate::kernel::{Expr, Kernel};

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
}
