//! How far a kernel's table reads reach from the element's own index: a range
//! analysis over a bound [`Program`], so that a device given elements `[s, e)` is sent
//! only the table elements near `[s, e)` (a halo) when every read can be bounded, and
//! the whole table otherwise.
//!
//! **The domain.** Every `i32`/`u32` register gets a value `v` holding two facts, both
//! true of the register's actual value for every element `i` in `0..n`, every
//! iteration of the loops around it and every value of the inputs, loaded elements
//! and loop carries:
//! - a relational one, `v - Σ c·a ∈ [lo, hi]`: a linear form with integer
//!   coefficients over *atoms*, plus an interval. The atoms are the element's index
//!   `i ∈ [0, n-1]`, a loop counter `j ∈ [0, count-1]` (count: its largest possible
//!   value), and a quotient `⌊(L + c) / w⌋` of a linear form by a positive constant,
//!   made by `/`, `%` (`x % w` is `x - w·⌊x / w⌋`), `>>` and power-of-two masks; atoms
//!   are compared structurally, so `(i / w) * w + i % w` cancels to `i` exactly;
//! - an absolute interval.
//!
//! The bound of a linear form is the narrower of two sound ones: each atom over its
//! own range (interval arithmetic), and the form with every quotient written as
//! `(L + c) / w - f`, `f ∈ [0, (w-1)/w]` (exact rationals), which sees that `i - w·⌊i/w⌋`
//! lies in `[0, w-1]`. Values the analysis cannot follow (inputs, loaded elements,
//! loop carries, float casts, parameters not yet bound) are *any value of the type*.
//!
//! **The rules.** Arithmetic is computed on mathematical integers; if the absolute
//! bound of the result does not fit the register's type, the operation may have
//! wrapped and the result is any value of the type. `+ - ×` by a constant and `neg`,
//! `!` act on the form; a product of two non-constants keeps only intervals. `/` and
//! `%` by a positive constant of a non-negative value make a quotient atom; other
//! divisions keep intervals (corners, trunc semantics, `x / 0 == x`, `x % 0 == 0`).
//! `i32 <-> u32` casts keep the value when it lies in `0..=i32::MAX` (or shift it by
//! 2^32 when it is wholly on the other side); anything else is any value.
//! `clamp(x, lo, hi)` with constant bounds: where `x = y + [dl, dh]` and `y + k` lies
//! in `[lo, hi]` for all elements, the result lies in `y + [min(dl, k), max(dh, k)]`
//! (clamping moves `x` toward a point, `y + k`, of the range); `min`/`max` with a
//! constant are clamps with one side open; `min`/`max` whose order is provable pick
//! an operand; otherwise they, and `select`, join both operands (same form: union of
//! the intervals; else each operand relative to the other's form, or absolute,
//! whichever is narrowest).
//!
//! **A read's reach.** A read at `v = Σ c·a + [lo, hi]` is `Near` when `v - i`, with
//! the quotients written out as above, no longer depends on `i` (the coefficient of
//! `i` is exactly 1): then `v - i` is bounded by constants and loop counters. A read
//! whose distance from `i` grows with `i` (`2·i`, a constant index) or cannot be
//! bounded is `Whole`. A call over more than 2^32 elements, whose `index()` wraps,
//! reads every table whole. `Near`'s numbers are sound, not always small: a term
//! bounded only through `i`'s range (a quotient past the nesting cap below) gives a
//! halo of the order of `n`, which the caller weighs against the table's size.
//!
//! Forms are kept small (coefficients, terms, how deep quotients nest: see the caps
//! below); a form over a cap keeps only its absolute interval. That costs precision,
//! never soundness, and keeps every step's cost and i128 arithmetic bounded.
//!
//! Deliberately `Whole`: `u32` `index() - 1` wraps to `u32::MAX` at `i = 0` (its raw
//! index is then far from `i`); the `i32` form `index().cast::<i32>() - 1` is `Near`.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::expr::{BinOp, UnOp};
use super::program::{Instr, Loop, Op, Operand, Program};
use super::scalar::ScalarType;

/// How far a kernel's reads of one table reach from the element's own index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Not read at all.
    None,
    /// Every read's raw index (before the table's clamp) lies in
    /// `[i - before, i + after]` for the element's index `i`.
    Near { before: u64, after: u64 },
    /// Could not be bounded: the device needs the whole table.
    Whole,
}

impl Reach {
    /// The reach of both reads together.
    fn join(self, other: Reach) -> Reach {
        match (self, other) {
            (Reach::None, r) | (r, Reach::None) => r,
            (Reach::Whole, _) | (_, Reach::Whole) => Reach::Whole,
            (
                Reach::Near { before, after },
                Reach::Near {
                    before: b,
                    after: a,
                },
            ) => Reach::Near {
                before: before.max(b),
                after: after.max(a),
            },
        }
    }
}

/// Per table of `p` (a program whose parameters are bound to literals:
/// `Program::bind`), the reach of its reads, for a call over element indices `0..n`.
pub(crate) fn reach(p: &Program, n: u64) -> Vec<Reach> {
    let mut a = Analysis {
        p,
        n,
        vals: vec![None; p.regs.len()],
        reach: vec![Reach::None; p.tables.len()],
    };
    if n > 0 {
        a.block(&p.body);
    }
    a.reach
}

// Stored forms keep coefficients, offsets and term counts under these caps (a form
// over them keeps only its absolute interval), so no i128 arithmetic can overflow:
// atoms range within 2^42, an operation multiplies a coefficient by at most 2^32.
const COEF_CAP: i128 = 1 << 32;
const OFF_CAP: i128 = 1 << 40;
const TERMS_CAP: usize = 8;
/// Quotients nest at most this deep (a quotient of a form holding a quotient...): with
/// at most [`TERMS_CAP`] terms a form's expansion then visits at most 8^4 atoms.
const QUOT_DEPTH: u32 = 3;

/// A closed interval of integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Iv {
    lo: i128,
    hi: i128,
}

const fn iv(lo: i128, hi: i128) -> Iv {
    Iv { lo, hi }
}

impl Iv {
    fn point(c: i128) -> Iv {
        iv(c, c)
    }
    fn add(self, o: Iv) -> Iv {
        iv(self.lo + o.lo, self.hi + o.hi)
    }
    fn sub(self, o: Iv) -> Iv {
        iv(self.lo - o.hi, self.hi - o.lo)
    }
    fn scale(self, c: i128) -> Iv {
        if c >= 0 {
            iv(self.lo * c, self.hi * c)
        } else {
            iv(self.hi * c, self.lo * c)
        }
    }
    /// The hull of `f` at the four corners (for functions monotone in each argument).
    fn corners(self, o: Iv, f: impl Fn(i128, i128) -> i128) -> Iv {
        let c = [
            f(self.lo, o.lo),
            f(self.lo, o.hi),
            f(self.hi, o.lo),
            f(self.hi, o.hi),
        ];
        iv(
            c.iter().copied().min().unwrap_or(0),
            c.iter().copied().max().unwrap_or(0),
        )
    }
    fn hull(self, o: Iv) -> Iv {
        iv(self.lo.min(o.lo), self.hi.max(o.hi))
    }
    fn meet(self, o: Iv) -> Iv {
        iv(self.lo.max(o.lo), self.hi.min(o.hi))
    }
    fn within(self, o: Iv) -> bool {
        o.lo <= self.lo && self.hi <= o.hi
    }
    fn width(self) -> i128 {
        self.hi - self.lo
    }
}

/// The values of an integer type; `None` for `f32` and `bool`.
fn type_range(ty: ScalarType) -> Option<Iv> {
    match ty {
        ScalarType::I32 => Some(iv(i32::MIN as i128, i32::MAX as i128)),
        ScalarType::U32 => Some(iv(0, u32::MAX as i128)),
        _ => None,
    }
}

/// A variable a linear form ranges over.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Atom {
    /// The element's index, in `[0, n-1]`.
    Index,
    /// A loop's counter (its register), in `[0, hi]`.
    Counter { reg: u32, hi: i128 },
    /// `⌊(num + c) / w⌋`.
    Quot(Rc<Quot>),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Quot {
    num: Lin,
    /// In `0..w`.
    c: i128,
    /// Positive.
    w: i128,
    /// The atom's values (made from the absolute bound of the value divided).
    range: Iv,
    /// 1 + the deepest quotient in `num`.
    depth: u32,
}

/// `Σ coefficient · atom`, no zero coefficients.
type Lin = BTreeMap<Atom, i128>;

/// `a + k·b`.
fn lin_axpy(a: &Lin, k: i128, b: &Lin) -> Lin {
    let mut out = a.clone();
    for (atom, &c) in b {
        let e = out.entry(atom.clone()).or_insert(0);
        *e += k * c;
        if *e == 0 {
            out.remove(atom);
        }
    }
    out
}

fn lin_scale(a: &Lin, k: i128) -> Lin {
    lin_axpy(&Lin::new(), k, a)
}

/// What a register holds: both facts are true of its value (see the module doc).
#[derive(Debug, Clone)]
struct Val {
    lin: Lin,
    /// `value - lin ∈ off`.
    off: Iv,
    /// `value ∈ abs`, within the register's type.
    abs: Iv,
}

impl Val {
    fn konst(c: i128) -> Val {
        Val {
            lin: Lin::new(),
            off: Iv::point(c),
            abs: Iv::point(c),
        }
    }
    fn interval(r: Iv) -> Val {
        Val {
            lin: Lin::new(),
            off: r,
            abs: r,
        }
    }
    fn constant(&self) -> Option<i128> {
        (self.abs.lo == self.abs.hi).then_some(self.abs.lo)
    }
}

/// An exact rational, for the quotient-free bound of a form; `None` on overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rat {
    n: i128,
    d: i128,
}

impl Rat {
    const ZERO: Rat = Rat { n: 0, d: 1 };
    fn int(v: i128) -> Rat {
        Rat { n: v, d: 1 }
    }
    fn new(n: i128, d: i128) -> Option<Rat> {
        let (n, d) = if d < 0 {
            (n.checked_neg()?, d.checked_neg()?)
        } else {
            (n, d)
        };
        if d == 0 {
            return None;
        }
        let (mut a, mut b) = (n.unsigned_abs(), d.unsigned_abs());
        while b != 0 {
            (a, b) = (b, a % b);
        }
        let g = a as i128;
        Some(Rat { n: n / g, d: d / g })
    }
    fn add(self, o: Rat) -> Option<Rat> {
        Rat::new(
            self.n
                .checked_mul(o.d)?
                .checked_add(o.n.checked_mul(self.d)?)?,
            self.d.checked_mul(o.d)?,
        )
    }
    fn mul(self, o: Rat) -> Option<Rat> {
        Rat::new(self.n.checked_mul(o.n)?, self.d.checked_mul(o.d)?)
    }
    fn floor(self) -> i128 {
        self.n.div_euclid(self.d)
    }
    fn ceil(self) -> i128 {
        -(-self.n).div_euclid(self.d)
    }
}

/// A linear form with every quotient written as `(num + c) / w - f`: rational
/// coefficients of the index and the counters, of each quotient's `f ∈ [0, (w-1)/w]`,
/// and a constant.
#[derive(Default)]
struct Expansion {
    base: BTreeMap<Atom, Rat>,
    frac: BTreeMap<Atom, Rat>,
    konst: Option<Rat>,
}

fn accumulate(map: &mut BTreeMap<Atom, Rat>, a: &Atom, by: Rat) -> Option<()> {
    let e = map.entry(a.clone()).or_insert(Rat::ZERO);
    *e = e.add(by)?;
    Some(())
}

struct Analysis<'p> {
    p: &'p Program,
    n: u64,
    vals: Vec<Option<Val>>,
    reach: Vec<Reach>,
}

impl Analysis<'_> {
    fn atom_range(&self, a: &Atom) -> Iv {
        match a {
            Atom::Index => iv(0, self.n as i128 - 1),
            Atom::Counter { hi, .. } => iv(0, *hi),
            Atom::Quot(q) => q.range,
        }
    }

    fn expand_into(&self, lin: &Lin, scale: Rat, e: &mut Expansion) -> Option<()> {
        for (atom, &c) in lin {
            let s = scale.mul(Rat::int(c))?;
            match atom {
                Atom::Quot(q) => {
                    let sw = s.mul(Rat::new(1, q.w)?)?;
                    self.expand_into(&q.num, sw, e)?;
                    e.konst = Some(e.konst.unwrap_or(Rat::ZERO).add(sw.mul(Rat::int(q.c))?)?);
                    accumulate(&mut e.frac, atom, Rat::int(-1).mul(s)?)?;
                }
                _ => accumulate(&mut e.base, atom, s)?,
            }
        }
        Some(())
    }

    fn expand(&self, lin: &Lin) -> Option<Expansion> {
        let mut e = Expansion::default();
        self.expand_into(lin, Rat::int(1), &mut e)?;
        Some(e)
    }

    /// The integer bound of an expansion, the index left out where `skip_index`.
    fn expansion_bound(&self, e: &Expansion, skip_index: bool) -> Option<Iv> {
        let k = e.konst.unwrap_or(Rat::ZERO);
        let (mut lo, mut hi) = (k, k);
        let mut add = |c: Rat, r_lo: Rat, r_hi: Rat| -> Option<()> {
            let (a, b) = (c.mul(r_lo)?, c.mul(r_hi)?);
            let (a, b) = if c.n >= 0 { (a, b) } else { (b, a) };
            lo = lo.add(a)?;
            hi = hi.add(b)?;
            Some(())
        };
        for (atom, &c) in &e.base {
            if skip_index && *atom == Atom::Index {
                continue;
            }
            let r = self.atom_range(atom);
            add(c, Rat::int(r.lo), Rat::int(r.hi))?;
        }
        for (atom, &c) in &e.frac {
            if let Atom::Quot(q) = atom {
                add(c, Rat::ZERO, Rat::new(q.w - 1, q.w)?)?;
            }
        }
        Some(iv(lo.ceil(), hi.floor()))
    }

    /// A bound of `lin`'s values: atom by atom, narrowed by the expansion's.
    fn lin_range(&self, lin: &Lin) -> Iv {
        let naive = lin.iter().fold(Iv::point(0), |s, (a, &c)| {
            s.add(self.atom_range(a).scale(c))
        });
        match self
            .expand(lin)
            .and_then(|e| self.expansion_bound(&e, false))
        {
            Some(r) => naive.meet(r),
            None => naive,
        }
    }

    /// Any value of type `ty`; `None` for a type the analysis does not follow.
    fn top(ty: ScalarType) -> Option<Val> {
        type_range(ty).map(Val::interval)
    }

    /// The value of an operation's result: `abs` narrowed by the form's bound; any
    /// value of the type where it may have wrapped.
    fn finish(&self, ty: ScalarType, lin: Lin, off: Iv, abs: Iv) -> Option<Val> {
        let range = type_range(ty)?;
        let abs = abs.meet(self.lin_range(&lin).add(off));
        if abs.lo > abs.hi || !abs.within(range) {
            return Some(Val::interval(range));
        }
        let small = lin.len() <= TERMS_CAP
            && lin.values().all(|c| c.abs() <= COEF_CAP)
            && off.lo.abs() <= OFF_CAP
            && off.hi.abs() <= OFF_CAP;
        if lin.is_empty() || !small {
            return Some(Val::interval(abs));
        }
        Some(Val { lin, off, abs })
    }

    fn val(&self, o: Operand) -> Option<Val> {
        match o {
            Operand::Reg(r) => match self.vals.get(r as usize) {
                Some(Some(v)) => Some(v.clone()),
                _ => Self::top(self.p.regs[r as usize]),
            },
            Operand::Const(ScalarType::I32, b) => Some(Val::konst(b as i32 as i128)),
            Operand::Const(ScalarType::U32, b) => Some(Val::konst(b as i128)),
            Operand::Const(..) => None,
        }
    }

    fn block(&mut self, body: &[Instr]) {
        for ins in body {
            let ty = self.p.regs[ins.dst as usize];
            let v = match &ins.op {
                Op::Loop(l) => {
                    self.lp(l);
                    continue;
                }
                Op::Load { table, index, .. } => {
                    let r = self.read(*index);
                    if let Some(t) = self.reach.get_mut(*table as usize) {
                        *t = t.join(r);
                    }
                    Self::top(ty)
                }
                Op::Index if self.n <= 1 << 32 => {
                    let lin = Lin::from([(Atom::Index, 1)]);
                    Some(Val {
                        lin,
                        off: Iv::point(0),
                        abs: iv(0, self.n as i128 - 1),
                    })
                }
                Op::Index | Op::Input(_) | Op::Param(_) | Op::TableLen(_) => Self::top(ty),
                Op::Unary(op, a) => self.unary(*op, ty, *a),
                Op::Binary(op, a, b) => match (self.val(*a), self.val(*b)) {
                    (Some(a), Some(b)) if type_range(ty).is_some() => self.binary(*op, ty, a, b),
                    _ => Self::top(ty),
                },
                Op::Select(_, a, b) => match (self.val(*a), self.val(*b)) {
                    (Some(a), Some(b)) => self.select(ty, &a, &b),
                    _ => Self::top(ty),
                },
                Op::Cast(a) => self.cast(self.p.ty(*a), ty, *a),
                Op::MulAdd(a, b, c) => match (self.val(*a), self.val(*b), self.val(*c)) {
                    (Some(a), Some(b), Some(c)) => self
                        .binary(BinOp::Mul, ty, a, b)
                        .and_then(|m| self.binary(BinOp::Add, ty, m, c)),
                    _ => Self::top(ty),
                },
                Op::Clamp(x, lo, hi) => match (self.val(*x), self.val(*lo), self.val(*hi)) {
                    (Some(x), Some(lo), Some(hi)) => self.clamp(ty, x, lo, hi),
                    _ => Self::top(ty),
                },
            };
            self.vals[ins.dst as usize] = v;
        }
    }

    /// A loop: its counter is an atom in `[0, count - 1]`, its carries any value.
    fn lp(&mut self, l: &Loop) {
        let count = self
            .val(l.count)
            .map_or(u32::MAX as i128, |c| c.abs.hi.max(0));
        for &c in &l.carries {
            self.vals[c as usize] = Self::top(self.p.regs[c as usize]);
        }
        if count >= 1 {
            self.vals[l.counter as usize] = Some(if count == 1 {
                Val::konst(0)
            } else {
                let atom = Atom::Counter {
                    reg: l.counter,
                    hi: count - 1,
                };
                Val {
                    lin: Lin::from([(atom, 1)]),
                    off: Iv::point(0),
                    abs: iv(0, count - 1),
                }
            });
            if let Some(c) = &l.cond {
                self.block(&c.body);
            }
            self.block(&l.body);
            // the body saw the carries as any value; they still are
            for &c in &l.carries {
                self.vals[c as usize] = Self::top(self.p.regs[c as usize]);
            }
        }
        self.vals[l.trips as usize] = Some(Val::interval(iv(0, count)));
    }

    /// The reach of one read at `index`.
    fn read(&self, index: Operand) -> Reach {
        let Some(v) = self.val(index) else {
            return Reach::Whole;
        };
        let Some(e) = self.expand(&v.lin) else {
            return Reach::Whole;
        };
        if e.base.get(&Atom::Index).copied() != Some(Rat::int(1)) {
            return Reach::Whole;
        }
        let Some(rest) = self.expansion_bound(&e, true) else {
            return Reach::Whole;
        };
        // v - i ∈ rest + off; and v ∈ abs with i ∈ [0, n-1]
        let d = rest.add(v.off);
        let before = (-d.lo).min(self.n as i128 - 1 - v.abs.lo).max(0);
        let after = d.hi.min(v.abs.hi).max(0);
        Reach::Near {
            before: before as u64,
            after: after as u64,
        }
    }

    /// As [`ops::unary`](super::ops::unary) on integers (which keeps the value of the
    /// operations it does not define on them).
    fn unary(&self, op: UnOp, ty: ScalarType, a: Operand) -> Option<Val> {
        type_range(ty)?;
        let Some(a) = self.val(a) else {
            return Self::top(ty);
        };
        let i32 = ty == ScalarType::I32;
        match op {
            UnOp::Neg if i32 => self.binary(BinOp::Sub, ty, Val::konst(0), a),
            UnOp::Not if i32 => self.binary(BinOp::Sub, ty, Val::konst(-1), a),
            UnOp::Not => self.binary(BinOp::Sub, ty, Val::konst(u32::MAX as i128), a),
            UnOp::Abs if i32 && a.abs.hi <= 0 => self.binary(BinOp::Sub, ty, Val::konst(0), a),
            UnOp::Abs if i32 && a.abs.lo < 0 => {
                let r = iv(0, (-a.abs.lo).max(a.abs.hi));
                self.finish(ty, Lin::new(), r, r)
            }
            _ => Some(a),
        }
    }

    fn cast(&self, from: ScalarType, to: ScalarType, a: Operand) -> Option<Val> {
        type_range(to)?;
        if from == ScalarType::Bool {
            return Some(Val::interval(iv(0, 1)));
        }
        let Some(v) = self.val(a) else {
            return Self::top(to);
        };
        // i32 <-> u32 keep the bit pattern: the value where it lies in 0..=i32::MAX,
        // else the value moved by 2^32 where it lies wholly outside
        let shift = match (from, to) {
            (ScalarType::I32, ScalarType::U32) if v.abs.hi < 0 => 1i128 << 32,
            (ScalarType::U32, ScalarType::I32) if v.abs.lo > i32::MAX as i128 => -(1i128 << 32),
            (ScalarType::I32 | ScalarType::U32, _) => 0,
            _ => return Self::top(to),
        };
        let s = Iv::point(shift);
        self.finish(to, v.lin, v.off.add(s), v.abs.add(s))
    }

    fn binary(&self, op: BinOp, ty: ScalarType, a: Val, b: Val) -> Option<Val> {
        let range = type_range(ty)?;
        match op {
            BinOp::Add => self.finish(
                ty,
                lin_axpy(&a.lin, 1, &b.lin),
                a.off.add(b.off),
                a.abs.add(b.abs),
            ),
            BinOp::Sub => self.finish(
                ty,
                lin_axpy(&a.lin, -1, &b.lin),
                a.off.sub(b.off),
                a.abs.sub(b.abs),
            ),
            BinOp::Mul => match (a.constant(), b.constant()) {
                (_, Some(c)) => self.scale(ty, &a, c),
                (Some(c), _) => self.scale(ty, &b, c),
                _ => {
                    let r = a.abs.corners(b.abs, |x, y| x * y);
                    self.finish(ty, Lin::new(), r, r)
                }
            },
            BinOp::Div => self.div(ty, a, b),
            BinOp::Rem => self.rem(ty, a, b),
            BinOp::Min | BinOp::Max => self.min_max(ty, a, b, op == BinOp::Min),
            BinOp::Shl => match b.constant() {
                Some(k) => self.scale(ty, &a, 1 << (k & 31)),
                None => Some(Val::interval(range)),
            },
            BinOp::Shr => match b.constant() {
                Some(k) if a.abs.lo >= 0 => self.div_pos(ty, &a, 1 << (k & 31)),
                Some(k) => {
                    let r = iv(a.abs.lo >> (k & 31), a.abs.hi >> (k & 31));
                    self.finish(ty, Lin::new(), r, r)
                }
                None => {
                    let r = iv(a.abs.lo.min(0), a.abs.hi.max(0));
                    self.finish(ty, Lin::new(), r, r)
                }
            },
            BinOp::And => {
                let mask = |x: &Val, m: &Val| match m.constant() {
                    Some(m) if m >= 0 && (m + 1) & m == 0 && x.abs.lo >= 0 => {
                        Some(self.rem(ty, x.clone(), Val::konst(m + 1)))
                    }
                    _ => None,
                };
                if let Some(v) = mask(&a, &b).or_else(|| mask(&b, &a)) {
                    return v;
                }
                let hi = match (a.abs.lo >= 0, b.abs.lo >= 0) {
                    (true, true) => a.abs.hi.min(b.abs.hi),
                    (true, false) => a.abs.hi,
                    (false, true) => b.abs.hi,
                    (false, false) => return Some(Val::interval(range)),
                };
                self.finish(ty, Lin::new(), iv(0, hi), iv(0, hi))
            }
            BinOp::Or | BinOp::Xor if a.abs.lo >= 0 && b.abs.lo >= 0 => {
                let top = a.abs.hi.max(b.abs.hi);
                let hi = (1i128 << (128 - top.leading_zeros())) - 1;
                let lo = if op == BinOp::Or {
                    a.abs.lo.max(b.abs.lo)
                } else {
                    0
                };
                self.finish(ty, Lin::new(), iv(lo, hi), iv(lo, hi))
            }
            _ => Some(Val::interval(range)),
        }
    }

    fn scale(&self, ty: ScalarType, a: &Val, c: i128) -> Option<Val> {
        self.finish(ty, lin_scale(&a.lin, c), a.off.scale(c), a.abs.scale(c))
    }

    fn div(&self, ty: ScalarType, a: Val, b: Val) -> Option<Val> {
        match b.constant() {
            Some(0) => return Some(a),
            Some(w) if w > 0 && a.abs.lo >= 0 => return self.div_pos(ty, &a, w),
            _ => {}
        }
        if b.abs.lo > 0 || b.abs.hi < 0 {
            // trunc(x / y) is monotone in each argument where y keeps its sign
            let r = a.abs.corners(b.abs, |x, y| x / y);
            return self.finish(ty, Lin::new(), r, r);
        }
        Self::top(ty)
    }

    /// `a / w` for `a >= 0`, `w > 0`: `q + [0, e]` for the quotient atom `q` of the
    /// form's lower end.
    fn div_pos(&self, ty: ScalarType, a: &Val, w: i128) -> Option<Val> {
        let abs = iv(a.abs.lo / w, a.abs.hi / w);
        if a.lin.is_empty() {
            return self.finish(ty, Lin::new(), abs, abs);
        }
        let spread = a.off.width();
        let Some((lin, off)) = self.quot(&a.lin, a.off.lo, w, iv(a.abs.lo - spread, a.abs.hi))
        else {
            return self.finish(ty, Lin::new(), abs, abs);
        };
        let extra = (w - 1 + spread) / w;
        self.finish(ty, lin, off.add(iv(0, extra)), abs)
    }

    /// `⌊(lin + c) / w⌋` as a form, given a bound `r` of `lin + c`; `None` where the
    /// quotient would nest too deep.
    fn quot(&self, lin: &Lin, c: i128, w: i128, r: Iv) -> Option<(Lin, Iv)> {
        let (k, c) = (c.div_euclid(w), c.rem_euclid(w));
        let range = iv(r.lo.div_euclid(w) - k, r.hi.div_euclid(w) - k);
        if range.lo == range.hi {
            return Some((Lin::new(), Iv::point(range.lo + k)));
        }
        let depth = 1 + lin
            .keys()
            .map(|a| match a {
                Atom::Quot(q) => q.depth,
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        if depth > QUOT_DEPTH {
            return None;
        }
        let q = Quot {
            num: lin.clone(),
            c,
            w,
            range,
            depth,
        };
        Some((Lin::from([(Atom::Quot(Rc::new(q)), 1)]), Iv::point(k)))
    }

    fn rem(&self, ty: ScalarType, a: Val, b: Val) -> Option<Val> {
        match b.constant() {
            Some(0) => return Some(Val::konst(0)),
            Some(w) if w > 0 && a.abs.lo >= 0 => {
                if a.abs.hi < w {
                    return Some(a);
                }
                let abs = iv(0, (w - 1).min(a.abs.hi));
                let exact = !a.lin.is_empty() && a.off.lo == a.off.hi;
                if let Some((q, qoff)) = exact
                    .then(|| self.quot(&a.lin, a.off.lo, w, a.abs))
                    .flatten()
                {
                    // a - w·⌊a / w⌋
                    return self.finish(
                        ty,
                        lin_axpy(&a.lin, -w, &q),
                        a.off.sub(qoff.scale(w)),
                        abs,
                    );
                }
                return self.finish(ty, Lin::new(), abs, abs);
            }
            _ => {}
        }
        // |a % b| < |b|, with a's sign, and |a % b| <= |a|
        let m = b.abs.lo.abs().max(b.abs.hi.abs());
        if m == 0 {
            return Some(Val::konst(0));
        }
        let r = iv(
            (-(m - 1)).max(a.abs.lo.min(0)),
            (m - 1).min(a.abs.hi.max(0)),
        );
        self.finish(ty, Lin::new(), r, r)
    }

    /// A bound of `a - b`.
    fn diff(&self, a: &Val, b: &Val) -> Iv {
        let rel = self
            .lin_range(&lin_axpy(&a.lin, -1, &b.lin))
            .add(a.off.sub(b.off));
        rel.meet(a.abs.sub(b.abs))
    }

    fn min_max(&self, ty: ScalarType, a: Val, b: Val, min: bool) -> Option<Val> {
        let d = self.diff(&a, &b);
        if d.hi <= 0 {
            return Some(if min { a } else { b });
        }
        if d.lo >= 0 {
            return Some(if min { b } else { a });
        }
        let range = type_range(ty)?;
        let side = |c: i128| if min { (range.lo, c) } else { (c, range.hi) };
        if let Some(c) = b.constant() {
            let (lo, hi) = side(c);
            return self.clamp_const(ty, &a, lo, hi);
        }
        if let Some(c) = a.constant() {
            let (lo, hi) = side(c);
            return self.clamp_const(ty, &b, lo, hi);
        }
        let abs = if min {
            iv(a.abs.lo.min(b.abs.lo), a.abs.hi.min(b.abs.hi))
        } else {
            iv(a.abs.lo.max(b.abs.lo), a.abs.hi.max(b.abs.hi))
        };
        let (lin, off) = self.join(&a, &b);
        self.finish(ty, lin, off, abs)
    }

    fn clamp(&self, ty: ScalarType, x: Val, lo: Val, hi: Val) -> Option<Val> {
        if let (Some(l), Some(h)) = (lo.constant(), hi.constant()) {
            return self.clamp_const(ty, &x, l, h);
        }
        let m = self.min_max(ty, x, lo, false)?;
        self.min_max(ty, m, hi, true)
    }

    /// `min(max(x, lo), hi)` for constant bounds.
    fn clamp_const(&self, ty: ScalarType, x: &Val, lo: i128, hi: i128) -> Option<Val> {
        if lo > hi {
            return Some(Val::konst(hi));
        }
        if x.abs.within(iv(lo, hi)) {
            return Some(x.clone());
        }
        let abs = iv(x.abs.lo.max(lo).min(hi), x.abs.hi.max(lo).min(hi));
        // the shifts k for which y + k lies in [lo, hi] for every element
        let y = self.lin_range(&x.lin);
        let k = iv(lo - y.lo, hi - y.hi);
        if k.lo > k.hi {
            return self.finish(ty, Lin::new(), abs, abs);
        }
        let off = if k.hi < x.off.lo {
            iv(k.hi, x.off.hi)
        } else if k.lo > x.off.hi {
            iv(x.off.lo, k.lo)
        } else {
            x.off
        };
        self.finish(ty, x.lin.clone(), off, abs)
    }

    fn select(&self, ty: ScalarType, a: &Val, b: &Val) -> Option<Val> {
        let (lin, off) = self.join(a, b);
        self.finish(ty, lin, off, a.abs.hull(b.abs))
    }

    /// A form holding both `a` and `b`: the narrowest of `b` relative to `a`'s form,
    /// `a` relative to `b`'s, and the absolute hull.
    fn join(&self, a: &Val, b: &Val) -> (Lin, Iv) {
        if a.lin == b.lin {
            return (a.lin.clone(), a.off.hull(b.off));
        }
        let rel = |x: &Val, y: &Val| {
            let r = self
                .lin_range(&lin_axpy(&y.lin, -1, &x.lin))
                .add(y.off)
                .hull(x.off);
            (x.lin.clone(), r)
        };
        [rel(a, b), rel(b, a), (Lin::new(), a.abs.hull(b.abs))]
            .into_iter()
            .min_by_key(|(_, off)| off.width())
            .unwrap_or_else(|| (Lin::new(), a.abs.hull(b.abs)))
    }
}

#[cfg(test)]
mod tests;
