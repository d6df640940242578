//! Mul-add fusion: a single-use `t = a * b` followed by `t ± c` becomes one `MulAdd`
//! instruction, run as one step (two roundings on the CPU, exactly as the pair).

use std::collections::HashMap;

use crate::kernel::expr::BinOp;
use crate::kernel::program::{Cond, Instr, Op, Operand};
use crate::kernel::scalar::ScalarType;

/// Fuses `t = a * b; r = t + c` (and `t - k` for a literal `k`) into one `MulAdd` step
/// when `t` has no other use and both are in the same instruction list. On the CPU
/// `MulAdd` rounds twice, exactly as the pair did, so results are unchanged; one pass
/// over the block instead of two (Horner's rule, saxpy). A product of two uniforms
/// (`uni`) is left alone: it is one scalar operation, and the sum reads it as an
/// immediate.
pub(super) fn fuse_mul_add(
    body: &[Instr],
    uses: &[u32],
    regs: &[ScalarType],
    uni: &[bool],
) -> Vec<Instr> {
    let mut out: Vec<Instr> = Vec::with_capacity(body.len());
    // Register -> position in `out` of the single-use Mul that defines it.
    let mut muls: HashMap<u32, usize> = HashMap::new();
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
                        Operand::Const(t, k) => (
                            Some(i),
                            Some(Operand::Const(*t, negate(*t, *k as u32) as u64)),
                        ),
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
                l.body = fuse_mul_add(&l.body, uses, regs, uni);
                l.cond = l.cond.map(|c| Cond {
                    body: fuse_mul_add(&c.body, uses, regs, uni),
                    test: c.test,
                });
                Op::Loop(Box::new(l))
            }
            (None, op) => op.clone(),
        };
        if let Op::Binary(BinOp::Mul, ..) = op {
            if uses[ins.dst as usize] == 1 && !uni[ins.dst as usize] {
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

#[cfg(test)]
mod tests {
    use super::super::tests::eval;
    use super::super::{Link, Step};
    use crate::kernel::{Expr, Kernel};

    #[test]
    fn mul_add_fusion_is_bit_identical_and_fuses() {
        let k = Kernel::map(|x: Expr<f32>| ((x.clone() * 1.1 + 0.3) * &x - 0.7) * &x + x.sin());
        let plan = k.inner().plan().unwrap_or_else(|e| panic!("{e}"));
        let links: Vec<&Link> = plan
            .steps
            .iter()
            .flat_map(|s| match s {
                Step::Chain { links, .. } => links.iter().collect(),
                _ => Vec::new(),
            })
            .collect();
        let fused = links
            .iter()
            .filter(|l| matches!(l, Link::MadA(..) | Link::MadC(..)))
            .count();
        let alone = plan
            .steps
            .iter()
            .filter(|s| matches!(s, Step::MulAdd { .. }))
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
}
