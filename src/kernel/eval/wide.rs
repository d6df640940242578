//! The evaluator for programs with 64-bit values (`f64`).
//!
//! The block evaluator's slots are 32-bit, and its chains, gathers and uniforms are
//! tuned for that; a program that computes in `f64` runs here instead. The design is
//! the same idea, kept simple: every register is a block of 64-bit lanes (a 32-bit
//! value zero-extended), each instruction one typed loop over the block, with the
//! common `f64` operations (`+ - * /`, mul-add, `sqrt`, comparisons) as plain loops the
//! compiler vectorises and the rest through [`ops`] lane by lane, so the meaning is
//! the constant folder's to the bit. A register the same for every element
//! (`eval/uniform.rs`) is computed in lane 0 alone and read as a constant. A loop whose
//! count is the same for every element and that has no condition runs unmasked (its
//! carried values copied whole each trip, under an outer mask too: what the outer
//! loop left is computed and dropped); the others are masked: each element has an
//! active flag, its own count and trips, carried values change only where active, and
//! an inner masked loop starts only where its outer loop is active.
//!
//! A 64-bit input or result is two 32-bit words per element in the call's buffers,
//! low first; a 32-bit input read only as an operand is read in place (no lanes).

use super::gather::{load_one, load_wide};
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
    /// For each register, the input it holds when the instructions read it straight
    /// from the input's words (no lanes written for it): an input read only as an
    /// operand, not as a loop's count, initial, next value or test, nor as a result.
    direct: Vec<Option<u8>>,
    /// For each register, whether it holds one value for every element of a block
    /// (`eval/uniform.rs`: a loop's counter, a parameter, a table's length, a read at
    /// such an index, a carry of an unmasked loop from uniform values, and what is
    /// computed from those alone): it is computed in lane 0 and read as a constant.
    /// n-body's `px.at(j)` is one read per trip, not one per element.
    uniform: Vec<bool>,
}

/// What the instructions read besides the registers.
struct Cx<'a> {
    inputs: &'a [&'a [u32]],
    /// Each 64-bit input's block as 64-bit lanes, read in place (`None`: 32-bit).
    wide: &'a [Option<&'a [u64]>],
    tables: &'a [TableRef<'a>],
    first: u64,
    len: usize,
}

impl Wide {
    pub(super) fn new(prog: &Program) -> Wide {
        // the operands read lane by lane from the registers (`value`)
        fn by_value(body: &[Instr], out: &mut Vec<Operand>) {
            for i in body {
                if let Op::Loop(l) = &i.op {
                    out.push(l.count);
                    out.extend(&l.inits);
                    out.extend(&l.nexts);
                    if let Some(c) = &l.cond {
                        out.push(c.test);
                        by_value(&c.body, out);
                    }
                    by_value(&l.body, out);
                }
            }
        }
        let mut read = prog.outputs.iter().map(|o| o.1).collect();
        by_value(&prog.body, &mut read);
        let mut direct = vec![None; prog.regs.len()];
        for i in &prog.body {
            if let Op::Input(k) = i.op {
                if !read.contains(&Operand::Reg(i.dst)) {
                    direct[i.dst as usize] = Some(k);
                }
            }
        }
        let uniform = super::uniform::uniform(prog);
        Wide {
            prog: prog.clone(),
            direct,
            uniform,
        }
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
        // words per element: two per result when one is 64-bit (low word first; a
        // 32-bit result's high word is 0), else one
        let wide = |t: ScalarType| if t.is_wide() { 2 } else { 1 };
        let (m, slot) = (self.prog.out_words(), self.prog.out_slot());
        if m == 0 {
            return;
        }
        if regs.len() < self.prog.regs.len() * LANES {
            *regs = self.scratch();
        }
        // a 64-bit input as 64-bit lanes: its words in place when they are 8-aligned (a
        // Vec<f64>'s are), else copied once
        let copies: Vec<Option<Vec<u64>>> = inputs
            .iter()
            .enumerate()
            .map(|(k, x)| {
                let is_wide = self.prog.inputs.get(k).is_some_and(|t| t.is_wide());
                (is_wide && bytemuck::try_cast_slice::<u32, u64>(x).is_err()).then(|| {
                    x.chunks_exact(2)
                        .map(|w| w[0] as u64 | (w[1] as u64) << 32)
                        .collect()
                })
            })
            .collect();
        let whole: Vec<Option<&[u64]>> = inputs
            .iter()
            .zip(&copies)
            .enumerate()
            .map(|(k, (x, c))| match (c, self.prog.inputs.get(k)) {
                (Some(c), _) => Some(c.as_slice()),
                (None, Some(t)) if t.is_wide() => bytemuck::try_cast_slice(x).ok(),
                _ => None,
            })
            .collect();
        let mut ins: Vec<&[u32]> = Vec::with_capacity(inputs.len());
        let mut wides: Vec<Option<&[u64]>> = Vec::with_capacity(inputs.len());
        for (part, out) in out.chunks_mut(LANES * m).enumerate() {
            let (lo, len) = (part * LANES, out.len() / m);
            ins.clear();
            ins.extend(inputs.iter().enumerate().map(|(k, x)| {
                let w = self.prog.inputs.get(k).map_or(1, |&t| wide(t));
                &x[(lo * w).min(x.len())..((lo + len) * w).min(x.len())]
            }));
            wides.clear();
            wides.extend(
                whole
                    .iter()
                    .map(|w| w.map(|w| &w[lo.min(w.len())..(lo + len).min(w.len())])),
            );
            let cx = Cx {
                inputs: &ins,
                wide: &wides,
                tables,
                first: first.wrapping_add(lo as u64),
                len,
            };
            self.exec(&self.prog.body, regs, &cx, None);
            for (k, &(t, o)) in self.prog.outputs.iter().enumerate() {
                let at = k * slot;
                let v = match o {
                    Operand::Reg(r) if self.uniform[r as usize] => L::C(regs[r as usize * LANES]),
                    Operand::Reg(r) => L::S(&regs[r as usize * LANES..r as usize * LANES + len]),
                    Operand::Const(_, c) => L::C(c),
                };
                store(v, out, m, at, slot == 2, t.is_wide());
            }
        }
    }

    fn exec(&self, body: &[Instr], r: &mut [u64], cx: &Cx<'_>, active: Option<&[bool]>) {
        for ins in body {
            match &ins.op {
                Op::Loop(l) => self.run_loop(ins.dst, l, r, cx, active),
                Op::Input(_) if self.direct[ins.dst as usize].is_some() => {}
                op => self.instr(ins.dst, op, r, cx),
            }
        }
    }

    fn instr(&self, dst: u32, op: &Op, r: &mut [u64], cx: &Cx<'_>) {
        let p = &self.prog;
        let ty = p.regs[dst as usize];
        // a uniform register is computed in lane 0 alone, from uniform operands
        let len = if self.uniform[dst as usize] {
            1
        } else {
            cx.len
        };
        // the destination's lanes, apart from the operands' (SSA: never one of them)
        let (below, rest) = r.split_at_mut(dst as usize * LANES);
        let (d, above) = rest.split_at_mut(LANES);
        let d = &mut d[..len];
        let src = Regs {
            below,
            above,
            base: dst as usize + 1,
            len,
            direct: &self.direct,
            uniform: &self.uniform,
            inputs: cx.inputs,
            wide: cx.wide,
        };
        let l = |o: Operand| src.lanes(o);
        match *op {
            Op::Input(k) => {
                let x = cx.inputs.get(k as usize).copied().unwrap_or(&[]);
                if ty.is_wide() {
                    for (o, w) in d.iter_mut().zip(x.chunks_exact(2)) {
                        *o = w[0] as u64 | (w[1] as u64) << 32;
                    }
                } else {
                    for (o, &x) in d.iter_mut().zip(x) {
                        *o = x as u64;
                    }
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
                let (index, default) = (l(index), default.map(l));
                if ty.is_wide() {
                    for (i, o) in d.iter_mut().enumerate() {
                        let def = default.map(|x| x.at(i));
                        *o = load_wide(t, signed, index.at(i) as u32, def);
                    }
                } else {
                    for (i, o) in d.iter_mut().enumerate() {
                        let def = default.map(|x| x.at(i) as u32);
                        *o = load_one(t, signed, index.at(i) as u32, def) as u64;
                    }
                }
            }
            Op::Unary(u, a) => unary(u, p.ty(a), d, l(a)),
            Op::Binary(b, x, y) => binary(b, p.ty(x), d, l(x), l(y)),
            Op::Select(c, a, b) => map3(l(c), l(a), l(b), d, |c, a, b| if c != 0 { a } else { b }),
            Op::Cast(a) => {
                let from = p.ty(a);
                match (from, ty) {
                    (ScalarType::F32, ScalarType::F64) => {
                        map1(l(a), d, |x| (f32::from_bits(x as u32) as f64).to_bits())
                    }
                    (ScalarType::F64, ScalarType::F32) => {
                        map1(l(a), d, |x| (f(x) as f32).to_bits() as u64)
                    }
                    (ScalarType::I32, ScalarType::F64) => {
                        map1(l(a), d, |x| (x as u32 as i32 as f64).to_bits())
                    }
                    (ScalarType::U32, ScalarType::F64) => {
                        map1(l(a), d, |x| (x as u32 as f64).to_bits())
                    }
                    _ => map1(l(a), d, |x| ops::cast(from, ty, x)),
                }
            }
            // two roundings, as the other devices' mul-add
            Op::MulAdd(a, b, c) if ty == ScalarType::F64 => map3(l(a), l(b), l(c), d, |x, y, z| {
                (f(x) * f(y) + f(z)).to_bits()
            }),
            Op::MulAdd(a, b, c) => map3(l(a), l(b), l(c), d, |x, y, z| ops::mul_add(ty, x, y, z)),
            Op::Clamp(x, lo, hi) => {
                map3(l(x), l(lo), l(hi), d, |x, lo, hi| ops::clamp(ty, x, lo, hi))
            }
            Op::Loop(_) => {}
        }
    }

    /// Runs a loop over the block, masked (see the module docs).
    fn run_loop(&self, dst: u32, l: &Loop, r: &mut [u64], cx: &Cx<'_>, outer: Option<&[bool]>) {
        let _ = dst;
        let len = cx.len;
        let uniform_count = match l.count {
            Operand::Const(..) => true,
            Operand::Reg(c) => self.uniform[c as usize],
        };
        // every element runs it the same number of times: under an outer loop's mask
        // too (the elements the outer loop left compute what is then dropped), so a
        // uniform carry is right in lane 0 whichever elements are active
        if uniform_count && l.cond.is_none() {
            return self.run_loop_unmasked(l, r, cx);
        }
        let mut active: Vec<bool> = match outer {
            Some(o) => o[..len].to_vec(),
            None => vec![true; len],
        };
        let count: Vec<u64> = (0..len)
            .map(|i| value(r, &self.uniform, l.count, i))
            .collect();
        let inits: Vec<Vec<u64>> = l
            .inits
            .iter()
            .map(|&o| (0..len).map(|i| value(r, &self.uniform, o, i)).collect())
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
                    *a = *a && value(r, &self.uniform, c.test, i) != 0;
                }
                if !active.iter().any(|&a| a) {
                    break;
                }
            }
            self.exec(&l.body, r, cx, Some(&active));
            // all carried values at once: read every next value before writing any
            for (n, &o) in next.iter_mut().zip(&l.nexts) {
                for (i, v) in n.iter_mut().enumerate() {
                    *v = value(r, &self.uniform, o, i);
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

impl Wide {
    /// A loop every element runs the same number of times (a count uniform over the
    /// block, no condition, no outer mask): no flags, the carried values copied whole.
    fn run_loop_unmasked(&self, l: &Loop, r: &mut [u64], cx: &Cx<'_>) {
        let len = cx.len;
        let count = value(r, &self.uniform, l.count, 0);
        for (&c, &init) in l.carries.iter().zip(&l.inits) {
            self.copy_into(r, c, init, len);
        }
        let mut next: Vec<Vec<u64>> = vec![vec![0; len]; l.carries.len()];
        let counter = l.counter as usize * LANES;
        for it in 0..count {
            r[counter] = it;
            self.exec(&l.body, r, cx, None);
            // all carried values at once: read every next value before writing any
            for (n, &o) in next.iter_mut().zip(&l.nexts) {
                match o {
                    Operand::Reg(k) if !self.uniform[k as usize] => {
                        let at = k as usize * LANES;
                        n.copy_from_slice(&r[at..at + len]);
                    }
                    o => n.fill(value(r, &self.uniform, o, 0)),
                }
            }
            for (&c, n) in l.carries.iter().zip(&next) {
                lanes(r, c, len).copy_from_slice(n);
            }
        }
        lanes(r, l.trips, len).fill(count);
    }

    /// Register `dst`'s lanes set to operand `o`'s.
    fn copy_into(&self, r: &mut [u64], dst: u32, o: Operand, len: usize) {
        match o {
            Operand::Reg(k) if !self.uniform[k as usize] => {
                let (from, to) = (k as usize * LANES, dst as usize * LANES);
                r.copy_within(from..from + len, to);
            }
            o => {
                let v = value(r, &self.uniform, o, 0);
                lanes(r, dst, len).fill(v);
            }
        }
    }
}

/// The registers other than the one being written.
struct Regs<'a> {
    below: &'a [u64],
    above: &'a [u64],
    /// The register `above` starts with.
    base: usize,
    len: usize,
    direct: &'a [Option<u8>],
    uniform: &'a [bool],
    inputs: &'a [&'a [u32]],
    wide: &'a [Option<&'a [u64]>],
}

impl<'a> Regs<'a> {
    /// An operand's lanes, or its one value.
    fn lanes(&self, o: Operand) -> L<'a> {
        match o {
            Operand::Const(_, v) => L::C(v),
            Operand::Reg(r) => {
                let r = r as usize;
                if let Some(k) = self.direct[r] {
                    if let Some(Some(w)) = self.wide.get(k as usize) {
                        return L::S(&w[..self.len.min(w.len())]);
                    }
                    let x = self.inputs.get(k as usize).copied().unwrap_or(&[]);
                    return L::W(&x[..self.len.min(x.len())]);
                }
                let (regs, k) = if r < self.base - 1 {
                    (self.below, r)
                } else {
                    (self.above, r - self.base)
                };
                if self.uniform[r] {
                    return L::C(regs[k * LANES]);
                }
                L::S(&regs[k * LANES..k * LANES + self.len])
            }
        }
    }
}

/// Writes `v` as result column `at` of rows of `m` words: the low word, and with
/// `pair` the high word too (zero for a 32-bit value: `wide` false). One loop per kind
/// of operand, so the common ones (a lone 32-bit or 64-bit result) vectorise.
fn store(v: L<'_>, out: &mut [u32], m: usize, at: usize, pair: bool, wide: bool) {
    match (v, m, pair) {
        (L::S(s), 1, false) => {
            for (o, &x) in out.iter_mut().zip(s) {
                *o = x as u32;
            }
        }
        (L::S(s), 2, true) if wide => {
            for (o, &x) in out.chunks_exact_mut(2).zip(s) {
                o[0] = x as u32;
                o[1] = (x >> 32) as u32;
            }
        }
        (L::S(s), _, _) => {
            for (row, &x) in out.chunks_exact_mut(m).zip(s) {
                row[at] = x as u32;
                if pair {
                    row[at + 1] = if wide { (x >> 32) as u32 } else { 0 };
                }
            }
        }
        (v, _, _) => {
            for (i, row) in out.chunks_exact_mut(m).enumerate() {
                let x = v.at(i);
                row[at] = x as u32;
                if pair {
                    row[at + 1] = if wide { (x >> 32) as u32 } else { 0 };
                }
            }
        }
    }
}

/// An operand over the lanes: a slice, or one value for all.
#[derive(Clone, Copy)]
enum L<'a> {
    S(&'a [u64]),
    C(u64),
    /// An input's words, read in place (zero-extended).
    W(&'a [u32]),
}

impl L<'_> {
    #[inline(always)]
    fn at(self, i: usize) -> u64 {
        match self {
            L::S(s) => s[i],
            L::C(c) => c,
            L::W(w) => w[i] as u64,
        }
    }
}

#[inline(always)]
fn map1(a: L<'_>, d: &mut [u64], f: impl Fn(u64) -> u64) {
    match a {
        L::S(a) => {
            for (o, &x) in d.iter_mut().zip(a) {
                *o = f(x);
            }
        }
        L::C(x) => d.fill(f(x)),
        L::W(a) => {
            for (o, &x) in d.iter_mut().zip(a) {
                *o = f(x as u64);
            }
        }
    }
}

#[inline(always)]
fn map2(a: L<'_>, b: L<'_>, d: &mut [u64], f: impl Fn(u64, u64) -> u64) {
    match (a, b) {
        (L::S(a), L::S(b)) => {
            for ((o, &x), &y) in d.iter_mut().zip(a).zip(b) {
                *o = f(x, y);
            }
        }
        (L::S(a), L::C(y)) => {
            for (o, &x) in d.iter_mut().zip(a) {
                *o = f(x, y);
            }
        }
        (L::C(x), L::S(b)) => {
            for (o, &y) in d.iter_mut().zip(b) {
                *o = f(x, y);
            }
        }
        (L::C(x), L::C(y)) => d.fill(f(x, y)),
        _ => {
            for (i, o) in d.iter_mut().enumerate() {
                *o = f(a.at(i), b.at(i));
            }
        }
    }
}

#[inline(always)]
fn map3(a: L<'_>, b: L<'_>, c: L<'_>, d: &mut [u64], f: impl Fn(u64, u64, u64) -> u64) {
    match (a, b, c) {
        (L::S(a), L::S(b), L::S(c)) => {
            for (((o, &x), &y), &z) in d.iter_mut().zip(a).zip(b).zip(c) {
                *o = f(x, y, z);
            }
        }
        (L::S(a), L::C(y), L::S(c)) => {
            for ((o, &x), &z) in d.iter_mut().zip(a).zip(c) {
                *o = f(x, y, z);
            }
        }
        (L::S(a), L::S(b), L::C(z)) => {
            for ((o, &x), &y) in d.iter_mut().zip(a).zip(b) {
                *o = f(x, y, z);
            }
        }
        (L::S(a), L::C(y), L::C(z)) => {
            for (o, &x) in d.iter_mut().zip(a) {
                *o = f(x, y, z);
            }
        }
        _ => {
            for (i, o) in d.iter_mut().enumerate() {
                *o = f(a.at(i), b.at(i), c.at(i));
            }
        }
    }
}

/// Lane `i` of operand `o` (lane 0 of a uniform register).
fn value(r: &[u64], uniform: &[bool], o: Operand, i: usize) -> u64 {
    match o {
        Operand::Const(_, v) => v,
        Operand::Reg(k) if uniform[k as usize] => r[k as usize * LANES],
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

fn unary(op: UnOp, ty: ScalarType, d: &mut [u64], a: L<'_>) {
    match (ty, op) {
        (ScalarType::F64, UnOp::Sqrt) => map1(a, d, |x| f(x).sqrt().to_bits()),
        (ScalarType::F64, UnOp::Neg) => map1(a, d, |x| (-f(x)).to_bits()),
        (ScalarType::F64, UnOp::Abs) => map1(a, d, |x| f(x).abs().to_bits()),
        _ => map1(a, d, |x| ops::unary(op, ty, x)),
    }
}

fn binary(op: BinOp, ty: ScalarType, d: &mut [u64], a: L<'_>, b: L<'_>) {
    if ty == ScalarType::F64 {
        macro_rules! g {
            ($e:expr) => {
                map2(a, b, d, |x, y| $e(f(x), f(y)))
            };
        }
        return match op {
            BinOp::Add => g!(|x: f64, y: f64| (x + y).to_bits()),
            BinOp::Sub => g!(|x: f64, y: f64| (x - y).to_bits()),
            BinOp::Mul => g!(|x: f64, y: f64| (x * y).to_bits()),
            BinOp::Div => g!(|x: f64, y: f64| (x / y).to_bits()),
            BinOp::Lt => g!(|x: f64, y: f64| (x < y) as u64),
            BinOp::Le => g!(|x: f64, y: f64| (x <= y) as u64),
            BinOp::Gt => g!(|x: f64, y: f64| (x > y) as u64),
            BinOp::Ge => g!(|x: f64, y: f64| (x >= y) as u64),
            _ => map2(a, b, d, |x, y| ops::binary(op, ty, x, y)),
        };
    }
    map2(a, b, d, |x, y| ops::binary(op, ty, x, y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{Expr, Kernel};

    /// A 64-bit input read in place when its words are 8-aligned, copied once when they
    /// are not: the same results either way, across several blocks.
    #[test]
    fn wide_inputs_in_place_or_copied_give_the_same_results() {
        let k = Kernel::new(|(x, y): (Expr<f64>, Expr<f32>)| x * 0.5f64 + y.cast::<f64>());
        let prog = k.inner().program().unwrap_or_else(|e| panic!("{e}"));
        let w = Wide::new(prog);
        let n = 3 * LANES + 7;
        let xs: Vec<f64> = (0..n).map(|i| i as f64 * 1.25 - 300.0).collect();
        let ys: Vec<f32> = (0..n).map(|i| (i % 13) as f32).collect();
        let want: Vec<u64> = (0..n)
            .map(|i| (xs[i] * 0.5 + ys[i] as f64).to_bits())
            .collect();
        let words: &[u32] = bytemuck::cast_slice(&xs);
        // the same words one word into a buffer: 4 bytes off an 8-byte boundary
        let mut shifted = vec![0u32; words.len() + 1];
        shifted[1..].copy_from_slice(words);
        let odd = &shifted[1..];
        assert_ne!(odd.as_ptr() as usize % 8, words.as_ptr() as usize % 8);
        for x in [words, odd] {
            let mut regs = w.scratch();
            let mut out = vec![0u32; 2 * n];
            w.run(&mut regs, &[x, bytemuck::cast_slice(&ys)], &[], 0, &mut out);
            let got: Vec<u64> = out
                .chunks_exact(2)
                .map(|p| p[0] as u64 | (p[1] as u64) << 32)
                .collect();
            assert_eq!(got, want);
        }
    }
}
