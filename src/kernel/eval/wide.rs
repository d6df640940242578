//! The evaluator for programs with 64-bit values (`f64`).
//!
//! The block evaluator's slots are 32-bit, and its chains, gathers and uniforms are
//! tuned for that; a program that computes in `f64` runs here instead. The design is
//! the same idea, kept simple: every register is a block of 64-bit lanes (a 32-bit
//! value zero-extended), each instruction one typed loop over the block, with the
//! common `f64` operations (`+ - * /`, mul-add, `sqrt`, comparisons) as plain loops the
//! compiler vectorises and the rest through [`ops`] lane by lane, so the meaning is
//! the constant folder's to the bit. Loops are always masked: each element has an
//! active flag, its own count and trips; carried values change only where active, and
//! an inner loop starts only where its outer loop is active.

use super::gather::load_one;
use super::TableRef;

/// Elements evaluated together: 4 KiB per register, so a long program's registers stay
/// in L2.
const LANES: usize = 512;
use crate::kernel::expr::{BinOp, UnOp};
use crate::kernel::ops;
use crate::kernel::program::{Instr, Loop, Op, Operand, Program};
use crate::kernel::scalar::ScalarType;

/// A program with 64-bit values, ready to run block by block.
#[derive(Debug)]
pub(crate) struct Wide {
    prog: Program,
}

/// What the instructions read besides the registers.
struct Cx<'a> {
    inputs: &'a [&'a [u32]],
    tables: &'a [TableRef<'a>],
    first: u64,
    len: usize,
}

impl Wide {
    pub(super) fn new(prog: &Program) -> Wide {
        Wide { prog: prog.clone() }
    }

    /// Registers' memory for one worker: one block of lanes per register.
    pub(super) fn scratch(&self) -> Vec<u64> {
        vec![0; self.prog.regs.len() * LANES]
    }

    /// Evaluates one block (as [`super::Plan::run`]) in parts of [`LANES`]: `out` holds
    /// the results of each element together, each a 32-bit pattern.
    pub(super) fn run(
        &self,
        regs: &mut Vec<u64>,
        inputs: &[&[u32]],
        tables: &[TableRef<'_>],
        first: u64,
        out: &mut [u32],
    ) {
        let m = self.prog.outputs.len();
        if m == 0 {
            return;
        }
        if regs.len() < self.prog.regs.len() * LANES {
            *regs = self.scratch();
        }
        let mut ins: Vec<&[u32]> = Vec::with_capacity(inputs.len());
        for (part, out) in out.chunks_mut(LANES * m).enumerate() {
            let (lo, len) = (part * LANES, out.len() / m);
            ins.clear();
            ins.extend(
                inputs
                    .iter()
                    .map(|x| &x[lo.min(x.len())..(lo + len).min(x.len())]),
            );
            let cx = Cx {
                inputs: &ins,
                tables,
                first: first.wrapping_add(lo as u64),
                len,
            };
            self.exec(&self.prog.body, regs, &cx, None);
            for (k, &(_, o)) in self.prog.outputs.iter().enumerate() {
                for i in 0..len {
                    out[i * m + k] = value(regs, o, i) as u32;
                }
            }
        }
    }

    fn exec(&self, body: &[Instr], r: &mut [u64], cx: &Cx<'_>, active: Option<&[bool]>) {
        for ins in body {
            match &ins.op {
                Op::Loop(l) => self.run_loop(ins.dst, l, r, cx, active),
                op => self.instr(ins.dst, op, r, cx),
            }
        }
    }

    fn instr(&self, dst: u32, op: &Op, r: &mut [u64], cx: &Cx<'_>) {
        let p = &self.prog;
        let ty = p.regs[dst as usize];
        let len = cx.len;
        // the destination's lanes, apart from the operands' (SSA: never one of them)
        let (below, rest) = r.split_at_mut(dst as usize * LANES);
        let (d, above) = rest.split_at_mut(LANES);
        let d = &mut d[..len];
        let src = Regs {
            below,
            above,
            base: dst as usize + 1,
        };
        let get = |o: Operand, i: usize| src.get(o, i);
        match *op {
            Op::Input(k) => {
                let x = cx.inputs.get(k as usize).copied().unwrap_or(&[]);
                for (i, o) in d.iter_mut().enumerate() {
                    *o = x.get(i).copied().unwrap_or(0) as u64;
                }
            }
            Op::Index => {
                for (i, o) in d.iter_mut().enumerate() {
                    *o = cx.first.wrapping_add(i as u64) as u32 as u64;
                }
            }
            // a bound program has no parameters left
            Op::Param(_) => d.fill(0),
            Op::TableLen(t) => d.fill(cx.tables.get(t as usize).map_or(0, |t| t.len) as u64),
            Op::Load {
                table,
                index,
                default,
            } => {
                let signed = p.ty(index) == ScalarType::I32;
                let empty = TableRef {
                    data: &[],
                    start: 0,
                    len: 0,
                };
                let t = cx.tables.get(table as usize).copied().unwrap_or(empty);
                for (i, o) in d.iter_mut().enumerate() {
                    let def = default.map(|x| get(x, i) as u32);
                    *o = load_one(t, signed, get(index, i) as u32, def) as u64;
                }
            }
            Op::Unary(u, a) => unary(u, p.ty(a), d, |i| get(a, i)),
            Op::Binary(b, x, y) => binary(b, p.ty(x), d, |i| get(x, i), |i| get(y, i)),
            Op::Select(c, a, b) => {
                for (i, o) in d.iter_mut().enumerate() {
                    *o = if get(c, i) != 0 { get(a, i) } else { get(b, i) };
                }
            }
            Op::Cast(a) => {
                let from = p.ty(a);
                for (i, o) in d.iter_mut().enumerate() {
                    *o = ops::cast(from, ty, get(a, i));
                }
            }
            Op::MulAdd(a, b, c) if ty == ScalarType::F64 => {
                for (i, o) in d.iter_mut().enumerate() {
                    let (x, y, z) = (f(get(a, i)), f(get(b, i)), f(get(c, i)));
                    // two roundings, as the other devices' mul-add
                    *o = (x * y + z).to_bits();
                }
            }
            Op::MulAdd(a, b, c) => {
                for (i, o) in d.iter_mut().enumerate() {
                    *o = ops::mul_add(ty, get(a, i), get(b, i), get(c, i));
                }
            }
            Op::Clamp(x, lo, hi) => {
                for (i, o) in d.iter_mut().enumerate() {
                    *o = ops::clamp(ty, get(x, i), get(lo, i), get(hi, i));
                }
            }
            Op::Loop(_) => {}
        }
    }

    /// Runs a loop over the block, masked (see the module docs).
    fn run_loop(&self, dst: u32, l: &Loop, r: &mut [u64], cx: &Cx<'_>, outer: Option<&[bool]>) {
        let _ = dst;
        let len = cx.len;
        let mut active: Vec<bool> = match outer {
            Some(o) => o[..len].to_vec(),
            None => vec![true; len],
        };
        let count: Vec<u64> = (0..len).map(|i| value(r, l.count, i)).collect();
        let inits: Vec<Vec<u64>> = l
            .inits
            .iter()
            .map(|&o| (0..len).map(|i| value(r, o, i)).collect())
            .collect();
        for (c, init) in l.carries.iter().zip(&inits) {
            lanes(r, *c, len).copy_from_slice(init);
        }
        let mut trips = vec![0u64; len];
        let mut next: Vec<Vec<u64>> = vec![vec![0; len]; l.carries.len()];
        let mut it: u64 = 0;
        loop {
            for (a, &n) in active.iter_mut().zip(&count) {
                *a = *a && it < n;
            }
            if !active.iter().any(|&a| a) {
                break;
            }
            lanes(r, l.counter, len).fill(it);
            if let Some(c) = &l.cond {
                self.exec(&c.body, r, cx, Some(&active));
                for (i, a) in active.iter_mut().enumerate() {
                    *a = *a && value(r, c.test, i) != 0;
                }
                if !active.iter().any(|&a| a) {
                    break;
                }
            }
            self.exec(&l.body, r, cx, Some(&active));
            // all carried values at once: read every next value before writing any
            for (n, &o) in next.iter_mut().zip(&l.nexts) {
                for (i, v) in n.iter_mut().enumerate() {
                    *v = value(r, o, i);
                }
            }
            for (c, n) in l.carries.iter().zip(&next) {
                let c = lanes(r, *c, len);
                for i in 0..len {
                    if active[i] {
                        c[i] = n[i];
                    }
                }
            }
            for (t, &a) in trips.iter_mut().zip(&active) {
                *t += a as u64;
            }
            it += 1;
        }
        lanes(r, l.trips, len).copy_from_slice(&trips);
    }
}

/// The registers other than the one being written.
struct Regs<'a> {
    below: &'a [u64],
    above: &'a [u64],
    /// The register `above` starts with.
    base: usize,
}

impl Regs<'_> {
    #[inline(always)]
    fn get(&self, o: Operand, i: usize) -> u64 {
        match o {
            Operand::Const(_, v) => v,
            Operand::Reg(r) => {
                let r = r as usize;
                if r < self.base - 1 {
                    self.below[r * LANES + i]
                } else {
                    self.above[(r - self.base) * LANES + i]
                }
            }
        }
    }
}

fn value(r: &[u64], o: Operand, i: usize) -> u64 {
    match o {
        Operand::Const(_, v) => v,
        Operand::Reg(k) => r[k as usize * LANES + i],
    }
}

fn lanes(r: &mut [u64], reg: u32, len: usize) -> &mut [u64] {
    let at = reg as usize * LANES;
    &mut r[at..at + len]
}

#[inline(always)]
fn f(bits: u64) -> f64 {
    f64::from_bits(bits)
}

fn unary(op: UnOp, ty: ScalarType, d: &mut [u64], a: impl Fn(usize) -> u64) {
    match (ty, op) {
        (ScalarType::F64, UnOp::Sqrt) => {
            for (i, o) in d.iter_mut().enumerate() {
                *o = f(a(i)).sqrt().to_bits();
            }
        }
        (ScalarType::F64, UnOp::Neg) => {
            for (i, o) in d.iter_mut().enumerate() {
                *o = (-f(a(i))).to_bits();
            }
        }
        _ => {
            for (i, o) in d.iter_mut().enumerate() {
                *o = ops::unary(op, ty, a(i));
            }
        }
    }
}

fn binary(
    op: BinOp,
    ty: ScalarType,
    d: &mut [u64],
    a: impl Fn(usize) -> u64,
    b: impl Fn(usize) -> u64,
) {
    macro_rules! each {
        ($e:expr) => {
            for (i, o) in d.iter_mut().enumerate() {
                let (x, y) = (f(a(i)), f(b(i)));
                *o = $e(x, y);
            }
        };
    }
    if ty == ScalarType::F64 {
        match op {
            BinOp::Add => return each!(|x: f64, y: f64| (x + y).to_bits()),
            BinOp::Sub => return each!(|x: f64, y: f64| (x - y).to_bits()),
            BinOp::Mul => return each!(|x: f64, y: f64| (x * y).to_bits()),
            BinOp::Div => return each!(|x: f64, y: f64| (x / y).to_bits()),
            BinOp::Lt => return each!(|x: f64, y: f64| (x < y) as u64),
            BinOp::Le => return each!(|x: f64, y: f64| (x <= y) as u64),
            BinOp::Gt => return each!(|x: f64, y: f64| (x > y) as u64),
            BinOp::Ge => return each!(|x: f64, y: f64| (x >= y) as u64),
            _ => {}
        }
    }
    for (i, o) in d.iter_mut().enumerate() {
        *o = ops::binary(op, ty, a(i), b(i));
    }
}
