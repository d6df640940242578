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
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::kernel::{
        fold, fold_while, fold_with, index, ops, select, Expr, Kernel, Param, Table,
    };

    /// `k`'s program with its parameters bound to their current values.
    fn bound<I, O>(k: &Kernel<I, O>) -> Program {
        let def = k.inner();
        let p = def
            .program()
            .unwrap_or_else(|e| panic!("lowering failed: {e}"));
        p.bind(&def.values())
    }

    fn near(before: u64, after: u64) -> Reach {
        Reach::Near { before, after }
    }

    /// One table read at `at(idx)`.
    fn one_read<I: crate::kernel::TableIndex>(idx: impl FnOnce() -> Expr<I>) -> Program {
        bound(&Kernel::new(|(t,): (Table<f32>,)| t.at(idx())))
    }

    #[test]
    fn a_neighbour_at_a_fixed_distance_is_near() {
        let n = 640 * 480;
        let width = Param::new(640u32);
        let k = Kernel::new(|(x, img): (Expr<f32>, Table<f32>)| x + img.at(index() + width.expr()));
        assert_eq!(reach(&bound(&k), n), [near(0, 640)]);
        width.set(3);
        assert_eq!(
            reach(&bound(&k), n),
            [near(0, 3)],
            "the bound values are read"
        );
        assert_eq!(reach(&one_read(|| index() + 640u32), n), [near(0, 640)]);
        let i = || index().cast::<i32>();
        assert_eq!(reach(&one_read(|| i() - 1), n), [near(1, 0)]);
        assert_eq!(reach(&one_read(|| i() + 640 - 1), n), [near(0, 639)]);
        assert_eq!(reach(&one_read(|| i() - 640), n), [near(640, 0)]);
        let wi = Param::new(640i32);
        let k = Kernel::new(|(img,): (Table<f32>,)| {
            img.at(i() - wi.expr()) + img.at_or(i() + wi.expr(), 0.0)
        });
        assert_eq!(reach(&bound(&k), n), [near(640, 640)]);
        // u32 `index() - 1` wraps to u32::MAX at i = 0: far from 0, so not a halo
        assert_eq!(reach(&one_read(|| index() - 1u32), n), [Reach::Whole]);
    }

    /// A 5x5 blur of a row-major `rows x width` image, written the natural way.
    fn blur(rows: impl Fn() -> Expr<i32>, width: impl Fn() -> Expr<u32>) -> Program {
        bound(&Kernel::new(|(img,): (Table<f32>,)| {
            let i = index();
            let w = width().cast::<i32>();
            let row = (i.clone() / width()).cast::<i32>();
            let col = (i % width()).cast::<i32>();
            let mut sum = Expr::constant(0.0f32);
            for dr in -2..=2 {
                for dc in -2..=2 {
                    let r = (row.clone() + dr).clamp(0, rows() - 1);
                    let c = (col.clone() + dc).clamp(0, w.clone() - 1);
                    sum = sum + img.at(r * w.clone() + c) * 0.04;
                }
            }
            sum
        }))
    }

    #[test]
    fn a_blur_reads_two_rows_and_two_pixels_either_side() {
        let (rows, width) = (480i32, 640u32);
        let n = 480 * 640;
        let b = 2 * 640 + 2;
        let constants = blur(|| Expr::constant(rows), || Expr::constant(width));
        assert_eq!(reach(&constants, n), [near(b, b)]);
        let (pr, pw) = (Param::new(rows), Param::new(width));
        let params = blur(|| pr.expr(), || pw.expr());
        assert_eq!(reach(&params, n), [near(b, b)]);
        // the bound is attained: the element at (2, 2) reads (4, 4)
        let mut m = Machine::new(&constants, 2 * 640 + 2, vec![], 0);
        m.run(&constants.body);
        let far = m.reads.iter().map(|&(_, raw)| raw - (2 * 640 + 2)).max();
        assert_eq!(far, Some(b as i128));
        // smaller images, each checked element by element
        for (rows, width) in [(3, 5), (1, 7), (7, 1), (2, 2), (5, 64)] {
            let p = blur(|| Expr::constant(rows), || Expr::constant(width as u32));
            let n = (rows * width) as u64;
            let got = reach(&p, n);
            let b = 2 * width as u64 + 2;
            assert!(
                matches!(got[0], Reach::Near { before, after } if before <= b && after <= b),
                "{rows}x{width}: {got:?}"
            );
            check(&p, n, &mut ChaCha8Rng::seed_from_u64(1), "blur");
        }
        // elements past the last row read the last row, ever further from i
        assert_eq!(reach(&constants, n + 640), [Reach::Whole]);
    }

    #[test]
    fn reads_that_cannot_be_bounded_are_whole() {
        let n = 1000;
        let k = Kernel::new(|(x, img): (Expr<f32>, Table<f32>)| img.at(x.cast::<u32>()));
        assert_eq!(reach(&bound(&k), n), [Reach::Whole], "an input's value");
        let k = Kernel::new(|(x, img): (Expr<u32>, Table<f32>)| img.at(index() + x));
        assert_eq!(reach(&bound(&k), n), [Reach::Whole], "index plus an input");
        let k = Kernel::new(|(x, img): (Expr<u32>, Table<f32>)| img.at(index() + (x & 3u32)));
        assert_eq!(
            reach(&bound(&k), n),
            [near(0, 3)],
            "but a bounded input is fine"
        );
        let k = Kernel::new(|(t, img): (Table<u32>, Table<f32>)| img.at(t.at(index())));
        assert_eq!(
            reach(&bound(&k), n),
            [near(0, 0), Reach::Whole],
            "a loaded value"
        );
        assert_eq!(
            reach(&one_read(|| index() * 2u32), n),
            [Reach::Whole],
            "grows with i"
        );
        assert_eq!(
            reach(&one_read(|| index() / 2u32), n),
            [Reach::Whole],
            "grows with i"
        );
        assert_eq!(reach(&one_read(|| Expr::constant(5u32)), n), [Reach::Whole]);
        assert_eq!(
            reach(&one_read(|| index() + 0xFFFF_FFFFu32), n),
            [Reach::Whole],
            "wraps"
        );
        assert_eq!(
            reach(&one_read(|| index().cast::<i32>() + i32::MAX), n),
            [Reach::Whole],
            "wraps"
        );
        // index() + 4 fits u32 for n up to 2^32 - 4, not beyond
        let p = one_read(|| index() + 4u32);
        assert_eq!(reach(&p, (1 << 32) - 4), [near(0, 4)]);
        assert_eq!(reach(&p, (1 << 32) - 3), [Reach::Whole]);
        // the i32 cast keeps the value only while i fits
        let p = one_read(|| index().cast::<i32>() - 1);
        assert_eq!(reach(&p, 1 << 31), [near(1, 0)]);
        assert_eq!(reach(&p, (1 << 31) + 1), [Reach::Whole]);
        // index() wraps past 2^32 elements
        assert_eq!(reach(&one_read(index), (1 << 32) + 1), [Reach::Whole]);
        let fx = Kernel::new(|(x, img): (Expr<f32>, Table<f32>)| {
            img.at((index().cast::<f32>() + x * 0.0).cast::<u32>())
        });
        assert_eq!(reach(&bound(&fx), n), [Reach::Whole], "a float cast");
    }

    #[test]
    fn tables_not_read_are_none_and_at_or_counts_as_at() {
        let k = Kernel::new(|(a, b, c): (Table<f32>, Table<f32>, Table<f32>)| {
            let _ = b;
            a.at_or(index() + 2u32, 0.0) + c.at(index()) + c.at_or(index().cast::<i32>() - 3, 1.0)
        });
        let p = bound(&k);
        assert_eq!(reach(&p, 100), [near(0, 2), Reach::None, near(3, 0)]);
        assert_eq!(reach(&p, 0), [Reach::None; 3], "no element, no read");
        // a read at i itself, for a single element
        assert_eq!(reach(&one_read(index), 1), [near(0, 0)]);
    }

    #[test]
    fn loop_counters_of_known_count_are_bounded() {
        let n = 1 << 20;
        let k =
            Kernel::new(|(t,): (Table<f32>,)| fold(4, 0.0f32, |acc, j| acc + t.at(index() + j)));
        assert_eq!(reach(&bound(&k), n), [near(0, 3)]);
        let k = Kernel::new(|(t,): (Table<f32>,)| {
            fold(3, 0.0f32, |acc, j| {
                fold(4, acc, |acc, k| {
                    acc + t.at((index() + j.clone() * 4u32 + k).cast::<i32>() - 5)
                })
            })
        });
        assert_eq!(reach(&bound(&k), n), [near(5, 6)]);
        let count = Param::new(7u32);
        let k = Kernel::new(|(t,): (Table<f32>,)| {
            fold_with(count.expr(), Expr::constant(0.0f32), |acc, j| {
                acc + t.at(index() + j)
            })
        });
        assert_eq!(
            reach(&bound(&k), n),
            [near(0, 6)],
            "a bound parameter count"
        );
        count.set(0);
        assert_eq!(reach(&bound(&k), n), [Reach::None], "no iteration");
        let k = Kernel::new(|(t,): (Table<f32>,)| {
            let (s, _) = fold_while(
                8u32,
                Expr::constant(0.0f32),
                |acc, _| acc.lt(10.0),
                |acc, j| acc + t.at(index().cast::<i32>() - j.cast::<i32>()),
            );
            s
        });
        assert_eq!(reach(&bound(&k), n), [near(7, 0)], "an early exit");
        let k = Kernel::new(|(t, len): (Table<f32>, Table<u32>)| {
            fold_with(len.len(), Expr::constant(0.0f32), |acc, j| {
                acc + t.at(index() + j)
            })
        });
        assert_eq!(
            reach(&bound(&k), n),
            [Reach::Whole, Reach::None],
            "a count known at the call"
        );
        let k = Kernel::new(|(t,): (Table<f32>,)| {
            let (s, _) = fold_with(4u32, (Expr::constant(0.0f32), index()), |(s, at), _| {
                (s + t.at(at.clone()), at + 1u32)
            });
            s
        });
        assert_eq!(reach(&bound(&k), n), [Reach::Whole], "a carried index");
    }

    #[test]
    fn clamps_min_max_and_select_keep_the_relation() {
        let n = 1000;
        let i = || index().cast::<i32>();
        assert_eq!(reach(&one_read(|| (i() - 1).max(0)), n), [near(1, 0)]);
        assert_eq!(reach(&one_read(|| (i() + 1).min(999)), n), [near(0, 1)]);
        assert_eq!(
            reach(&one_read(|| (i() + 3).clamp(0, 999)), n),
            [near(0, 3)]
        );
        // clamped to a smaller range than i covers: far from i near the end
        assert_eq!(
            reach(&one_read(|| (i() + 3).clamp(0, 500)), n),
            [Reach::Whole]
        );
        assert_eq!(
            reach(&one_read(|| select(i().lt(7), i() - 2, i() + 5)), n),
            [near(2, 5)]
        );
        assert_eq!(
            reach(&one_read(|| (index() >> 3u32 << 3u32) + 2u32), n),
            [near(5, 2)]
        );
        assert_eq!(
            reach(&one_read(|| (index() & !7u32) + (index() & 7u32)), n),
            [Reach::Whole]
        );
        assert_eq!(
            reach(&one_read(|| index() / 8u32 * 8u32 + (index() & 7u32)), n),
            [near(0, 0)],
            "a mask is a remainder"
        );
    }

    #[test]
    fn chains_of_quotients_stay_cheap() {
        // each step's quotient holds the last: nesting is capped, so the analysis of
        // a long chain stays linear (uncapped, expanding it would take 2^300 steps)
        let p = one_read(|| {
            let mut e = index();
            for _ in 0..300 {
                e = e.clone() / 2u32 + e / 3u32 + index();
            }
            e
        });
        let start = std::time::Instant::now();
        let got = reach(&p, 1 << 20);
        assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
        // the capped quotients keep only their bounds: i plus a large offset
        assert!(
            matches!(got[..], [Reach::Near { before: 0, .. }]),
            "{got:?}"
        );
        check(&p, 300, &mut ChaCha8Rng::seed_from_u64(2), "chain");
        let p = one_read(|| {
            let mut e = index().cast::<i32>();
            for k in 0..5000 {
                e = e + (k % 3 - 1);
            }
            e
        });
        // -1, 0, +1, ... over 5000 steps ends at -1
        assert_eq!(reach(&p, 1 << 20), [near(1, 0)]);
    }

    // --- soundness against concrete evaluation --------------------------------------

    fn mix(mut z: u64) -> u32 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as u32
    }

    /// A program run for one element with the scalar meaning of [`ops`], recording
    /// each read's table and raw index; loaded elements are arbitrary values.
    struct Machine<'a> {
        p: &'a Program,
        regs: Vec<u32>,
        index: u32,
        inputs: Vec<u32>,
        salt: u64,
        reads: Vec<(u8, i128)>,
    }

    impl<'a> Machine<'a> {
        fn new(p: &'a Program, index: u32, inputs: Vec<u32>, salt: u64) -> Self {
            Machine {
                p,
                regs: vec![0; p.regs.len()],
                index,
                inputs,
                salt,
                reads: Vec::new(),
            }
        }

        fn get(&self, o: Operand) -> u32 {
            match o {
                Operand::Reg(r) => self.regs[r as usize],
                Operand::Const(_, b) => b,
            }
        }

        fn run(&mut self, body: &[Instr]) {
            let p = self.p;
            for ins in body {
                let ty = p.regs[ins.dst as usize];
                let v = match &ins.op {
                    Op::Input(k) => self.inputs[*k as usize],
                    Op::Index => self.index,
                    Op::Param(_) => panic!("a parameter left unbound"),
                    Op::TableLen(t) => 1000 + *t as u32,
                    Op::Load { table, index, .. } => {
                        let bits = self.get(*index);
                        let raw = match p.ty(*index) {
                            ScalarType::I32 => bits as i32 as i128,
                            _ => bits as i128,
                        };
                        self.reads.push((*table, raw));
                        self.salt = self.salt.wrapping_add(1);
                        mix(self.salt ^ ((*table as u64) << 40) ^ bits as u64)
                    }
                    Op::Unary(op, a) => ops::unary(*op, p.ty(*a), self.get(*a)),
                    Op::Binary(op, a, b) => ops::binary(*op, p.ty(*a), self.get(*a), self.get(*b)),
                    Op::Select(c, a, b) => {
                        if self.get(*c) != 0 {
                            self.get(*a)
                        } else {
                            self.get(*b)
                        }
                    }
                    Op::Cast(a) => ops::cast(p.ty(*a), ty, self.get(*a)),
                    Op::MulAdd(a, b, c) => {
                        ops::mul_add(ty, self.get(*a), self.get(*b), self.get(*c))
                    }
                    Op::Clamp(x, lo, hi) => {
                        ops::clamp(ty, self.get(*x), self.get(*lo), self.get(*hi))
                    }
                    Op::Loop(l) => {
                        self.run_loop(l);
                        continue;
                    }
                };
                self.regs[ins.dst as usize] = v;
            }
        }

        fn run_loop(&mut self, l: &Loop) {
            let count = self.get(l.count);
            let mut carries: Vec<u32> = l.inits.iter().map(|&o| self.get(o)).collect();
            let mut counter = 0u32;
            while counter < count {
                for (&r, &v) in l.carries.iter().zip(&carries) {
                    self.regs[r as usize] = v;
                }
                self.regs[l.counter as usize] = counter;
                if let Some(c) = &l.cond {
                    self.run(&c.body);
                    if self.get(c.test) == 0 {
                        break;
                    }
                }
                self.run(&l.body);
                carries = l.nexts.iter().map(|&o| self.get(o)).collect();
                counter += 1;
            }
            for (&r, &v) in l.carries.iter().zip(&carries) {
                self.regs[r as usize] = v;
            }
            self.regs[l.trips as usize] = counter;
        }
    }

    /// Runs `p` for every element of `0..n` (a sample of both ends and the middle for
    /// large `n`) with arbitrary inputs and asserts each read lies within the claimed
    /// reach. Gives the claim.
    fn check(p: &Program, n: u64, r: &mut ChaCha8Rng, what: &str) -> Vec<Reach> {
        let claimed = reach(p, n);
        let elements: Vec<u64> = if n <= 400 {
            (0..n).collect()
        } else {
            let mut e: Vec<u64> = (0..60).chain(n - 60..n).collect();
            e.extend((0..80).map(|_| r.random_range(0..n)));
            e
        };
        for i in elements {
            let inputs = p
                .inputs
                .iter()
                .map(|_| match r.random_range(0..4) {
                    0 => 0,
                    1 => u32::MAX,
                    _ => r.random(),
                })
                .collect();
            let mut m = Machine::new(p, i as u32, inputs, r.random());
            m.run(&p.body);
            for &(t, raw) in &m.reads {
                let ok = match claimed[t as usize] {
                    Reach::None => false,
                    Reach::Near { before, after } => {
                        i as i128 - before as i128 <= raw && raw <= i as i128 + after as i128
                    }
                    Reach::Whole => true,
                };
                assert!(
                    ok,
                    "{what}: n = {n}, element {i} reads table {t} at {raw}, outside {:?}\n{p:#?}",
                    claimed[t as usize]
                );
            }
        }
        claimed
    }

    /// Random index expressions of the shapes the analysis follows, and some it does not.
    struct Gen {
        r: ChaCha8Rng,
        pu: Vec<Param<u32>>,
        pi: Vec<Param<i32>>,
    }

    #[derive(Clone)]
    struct Ctx {
        x: Expr<u32>,
        t: Table<u32>,
        j: Option<Expr<u32>>,
    }

    impl Gen {
        fn cu(&mut self) -> u32 {
            match self.r.random_range(0..12) {
                0..=5 => self.r.random_range(0..=8),
                6..=8 => self.r.random_range(1..=700),
                9 | 10 => {
                    [u32::MAX, 1 << 31, i32::MAX as u32, u32::MAX - 3][self.r.random_range(0..4)]
                }
                _ => self.r.random(),
            }
        }

        fn ci(&mut self) -> i32 {
            match self.r.random_range(0..12) {
                0..=5 => self.r.random_range(-8..=8),
                6..=8 => self.r.random_range(-700..=700),
                9 | 10 => [i32::MAX, i32::MIN, -1, i32::MAX - 3][self.r.random_range(0..4)],
                _ => self.r.random(),
            }
        }

        fn mask(&mut self) -> u32 {
            match self.r.random_range(0..3) {
                0 => (1u32 << self.r.random_range(0..12)) - 1,
                1 => !((1u32 << self.r.random_range(0..12)) - 1),
                _ => self.r.random(),
            }
        }

        fn pu(&mut self) -> Expr<u32> {
            let p = Param::new(self.cu());
            let e = p.expr();
            self.pu.push(p);
            e
        }

        fn pi(&mut self) -> Expr<i32> {
            let p = Param::new(self.ci());
            let e = p.expr();
            self.pi.push(p);
            e
        }

        fn u(&mut self, d: u32, c: &Ctx) -> Expr<u32> {
            if d == 0 || self.r.random_bool(0.15) {
                return match self.r.random_range(0..14) {
                    0..=5 => index(),
                    6 | 7 => Expr::constant(self.cu()),
                    8 => self.pu(),
                    9 => c.x.clone(),
                    10 => c.t.at(index()),
                    _ => c.j.clone().unwrap_or_else(index),
                };
            }
            let d = d - 1;
            match self.r.random_range(0..24) {
                0..=2 => self.u(d, c) + self.u(d, c),
                3 | 4 => self.u(d, c) + self.cu(),
                5 => self.u(d, c) - self.u(d, c),
                6 => self.u(d, c) - self.cu(),
                7 => self.u(d, c) * self.cu(),
                8 => self.u(d, c) * self.u(d, c),
                9 | 10 => self.u(d, c) / self.divisor_u(d, c),
                11 => self.u(d, c) % self.divisor_u(d, c),
                12 => {
                    let (a, b) = (self.cu(), self.cu());
                    self.u(d, c).clamp(a.min(b), a.max(b))
                }
                13 => self.u(d, c).min(self.u(d, c)),
                14 => self.u(d, c).max(self.cu()),
                15 => self.u(d, c).min(self.cu()),
                16 => select(self.u(d, c).lt(self.u(d, c)), self.u(d, c), self.u(d, c)),
                17 | 18 => self.i(d, c).cast::<u32>(),
                19 => self.u(d, c) >> self.r.random_range(0..40u32),
                20 => self.u(d, c) << self.r.random_range(0..40u32),
                21 => self.u(d, c) & self.mask(),
                22 => !self.u(d, c),
                _ => match self.r.random_range(0..3) {
                    0 => self.u(d, c) | self.u(d, c),
                    1 => self.u(d, c) ^ self.mask(),
                    _ => self.u(d, c).mul_add(self.cu(), self.u(d, c)),
                },
            }
        }

        fn divisor_u(&mut self, d: u32, c: &Ctx) -> Expr<u32> {
            match self.r.random_range(0..10) {
                0..=5 => Expr::constant(self.r.random_range(1..=40)),
                6 => Expr::constant(self.cu()),
                7 => self.pu(),
                _ => self.u(d, c),
            }
        }

        fn i(&mut self, d: u32, c: &Ctx) -> Expr<i32> {
            if d == 0 || self.r.random_bool(0.15) {
                return match self.r.random_range(0..14) {
                    0..=5 => index().cast::<i32>(),
                    6 | 7 => Expr::constant(self.ci()),
                    8 => self.pi(),
                    9 => c.x.cast::<i32>(),
                    10 => c.t.at(index()).cast::<i32>(),
                    _ => c.j.clone().unwrap_or_else(index).cast::<i32>(),
                };
            }
            let d = d - 1;
            match self.r.random_range(0..26) {
                0..=2 => self.i(d, c) + self.i(d, c),
                3 | 4 => self.i(d, c) + self.ci(),
                5 => self.i(d, c) - self.i(d, c),
                6 => self.i(d, c) * self.ci(),
                7 => self.i(d, c) * self.i(d, c),
                8 | 9 => {
                    let w = match self.r.random_range(0..4) {
                        0 => Expr::constant(self.ci()),
                        1 => self.pi(),
                        2 => self.i(d, c),
                        _ => Expr::constant(self.r.random_range(1..=40)),
                    };
                    self.i(d, c) / w
                }
                10 => self.i(d, c) % Expr::constant(self.r.random_range(-40..=40)),
                11 | 12 => {
                    let (a, b) = (self.ci(), self.ci());
                    let (lo, hi) = if self.r.random_bool(0.9) {
                        (a.min(b), a.max(b))
                    } else {
                        (a, b)
                    };
                    self.i(d, c).clamp(lo, hi)
                }
                13 => self.i(d, c).clamp(self.i(d, c), self.ci()),
                14 => self.i(d, c).max(self.i(d, c)),
                15 => self.i(d, c).min(self.ci()),
                16 => self.i(d, c).max(self.ci()),
                17 => select(self.i(d, c).ge(self.i(d, c)), self.i(d, c), self.i(d, c)),
                18 | 19 => self.u(d, c).cast::<i32>(),
                20 => -self.i(d, c),
                21 => self.i(d, c).abs(),
                22 => self.i(d, c) >> self.r.random_range(0..40u32),
                23 => self.i(d, c) << self.r.random_range(0..40u32),
                24 => self.i(d, c) & self.mask() as i32,
                _ => !self.i(d, c),
            }
        }
    }

    /// Index expressions built to stay near `i`: `i` plus bounded terms, rows and
    /// columns put back together, neighbours clamped to a grid.
    impl Gen {
        fn small_u(&mut self, d: u32, c: &Ctx) -> Expr<u32> {
            let d = d.saturating_sub(1);
            match self.r.random_range(0..9) {
                0 => Expr::constant(self.r.random_range(0..=9u32)),
                1 => self.u(d, c) % self.r.random_range(1..=16u32),
                2 => self.u(d, c) & ((1u32 << self.r.random_range(0..5)) - 1),
                3 => {
                    let a = self.r.random_range(0..=6u32);
                    self.u(d, c).clamp(a, a + self.r.random_range(0..=6u32))
                }
                4 => c.j.clone().unwrap_or_else(|| Expr::constant(1u32)),
                5 => select(
                    self.u(d, c).lt(self.u(d, c)),
                    self.small_u(d, c),
                    self.small_u(d, c),
                ),
                6 => self.small_u(d, c) + self.small_u(d, c),
                7 => self.small_u(d, c) * self.r.random_range(0..=3u32),
                _ => self.small_u(d, c).max(self.small_u(d, c)) / self.r.random_range(1..=3u32),
            }
        }

        fn small_i(&mut self, d: u32, c: &Ctx) -> Expr<i32> {
            let d = d.saturating_sub(1);
            match self.r.random_range(0..7) {
                0 => Expr::constant(self.r.random_range(-9..=9)),
                1 => self.i(d, c) % self.r.random_range(-16..=16),
                2 => (self.rel_i(d, c) - self.r.random_range(0..=20)) % self.r.random_range(1..=8),
                3 => self.small_u(d, c).cast::<i32>() - self.small_u(d, c).cast::<i32>(),
                4 => -self.small_i(d, c),
                5 => self.small_i(d, c).min(self.small_i(d, c)),
                _ => (self.rel_i(d, c) - self.rel_i(d, c)).clamp(-5, 5),
            }
        }

        fn rel_u(&mut self, d: u32, c: &Ctx) -> Expr<u32> {
            if d == 0 {
                return index();
            }
            let d = d - 1;
            match self.r.random_range(0..9) {
                0 => index(),
                1 | 2 => self.rel_u(d, c) + self.small_u(d, c),
                3 => self.rel_u(d, c) - self.small_u(d, c),
                4 => {
                    let w = self.r.random_range(1..=20u32);
                    self.rel_u(d, c) / w * w + self.rel_u(d, c) % w
                }
                5 => {
                    let k = self.r.random_range(0..6u32);
                    (self.rel_u(d, c) >> k << k) + (self.rel_u(d, c) & ((1u32 << k) - 1))
                }
                6 => select(
                    self.u(d, c).gt(self.u(d, c)),
                    self.rel_u(d, c),
                    self.rel_u(d, c),
                ),
                7 => self.rel_u(d, c).max(self.rel_u(d, c)),
                _ => self.rel_i(d, c).cast::<u32>(),
            }
        }

        fn rel_i(&mut self, d: u32, c: &Ctx) -> Expr<i32> {
            if d == 0 {
                return index().cast::<i32>();
            }
            let d = d - 1;
            match self.r.random_range(0..8) {
                0 => index().cast::<i32>(),
                1 | 2 => self.rel_i(d, c) + self.small_i(d, c),
                3 => (self.rel_i(d, c) - self.r.random_range(0..=9)).max(0),
                4 => {
                    let hi = self.r.random_range(0..=2000);
                    (self.rel_i(d, c) + self.small_i(d, c)).clamp(self.r.random_range(-3..=3), hi)
                }
                5 => {
                    // a neighbour on a grid of `w` columns and `rows` rows
                    let w = self.r.random_range(1..=24);
                    let rows = self.r.random_range(1..=40);
                    let i = self.rel_u(d, c);
                    let row = (i.clone() / w as u32).cast::<i32>();
                    let col = (i % w as u32).cast::<i32>();
                    let (dr, dc) = (self.r.random_range(-3..=3), self.r.random_range(-3..=3));
                    let r = (row + dr).clamp(0, rows - 1);
                    let cl = (col + dc).clamp(0, w - 1);
                    r * w + cl
                }
                6 => self.rel_u(d, c).cast::<i32>(),
                _ => select(self.i(d, c).lt(0), self.rel_i(d, c), self.rel_i(d, c) - 1),
            }
        }

        fn index_u(&mut self, d: u32, c: &Ctx) -> Expr<u32> {
            if self.r.random_bool(0.5) {
                self.rel_u(d, c)
            } else {
                self.u(d, c)
            }
        }

        fn index_i(&mut self, d: u32, c: &Ctx) -> Expr<i32> {
            if self.r.random_bool(0.5) {
                self.rel_i(d, c)
            } else {
                self.i(d, c)
            }
        }
    }

    type Random = Kernel<(u32, Table<f32>, Table<u32>, Table<i32>), f32>;

    fn random_kernel(g: &mut Gen) -> Random {
        let depth = g.r.random_range(1..=4);
        Kernel::new(
            |(x, t0, t1, t2): (Expr<u32>, Table<f32>, Table<u32>, Table<i32>)| {
                let c = Ctx { x, t: t1, j: None };
                let mut out = Expr::constant(0.0f32);
                if g.r.random_bool(0.8) {
                    out = out + t0.at(g.index_u(depth, &c));
                }
                if g.r.random_bool(0.6) {
                    out = out + t0.at_or(g.index_i(depth, &c), 1.0);
                }
                if g.r.random_bool(0.4) {
                    out = out + t1.at(g.index_u(depth, &c)).cast::<f32>();
                }
                if g.r.random_bool(0.5) {
                    let count = match g.r.random_range(0..3) {
                        0 => Expr::constant(g.r.random_range(1..=5u32)),
                        1 => {
                            let p = Param::new(g.r.random_range(0..=5u32));
                            let e = p.expr();
                            g.pu.push(p);
                            e
                        }
                        _ => c.x.clone() % 4u32,
                    };
                    let l = fold_with(count, Expr::constant(0.0f32), |acc, j| {
                        let c = Ctx {
                            j: Some(j),
                            ..c.clone()
                        };
                        let inner = if g.r.random_bool(0.5) {
                            t2.at(g.index_i(depth, &c))
                        } else {
                            t2.at_or(g.index_u(depth, &c), 3)
                        };
                        acc + inner.cast::<f32>()
                    });
                    out = out + l;
                }
                out
            },
        )
    }

    #[test]
    fn random_kernels_read_within_the_claimed_reach() {
        let (mut near_reads, mut whole_reads) = (0, 0);
        for seed in 0..400u64 {
            let mut g = Gen {
                r: ChaCha8Rng::seed_from_u64(seed),
                pu: Vec::new(),
                pi: Vec::new(),
            };
            let k = random_kernel(&mut g);
            let p = bound(&k);
            let mut r = ChaCha8Rng::seed_from_u64(seed ^ 0xABCD);
            for round in 0..5 {
                let n = match round {
                    0 => r.random_range(1..=64),
                    1 => r.random_range(65..=400),
                    2 => r.random_range(401..=1 << 20),
                    3 => r.random_range(1 << 20..=1 << 32),
                    _ => [1 << 31, (1 << 31) + 1, 1 << 32, (1 << 32) - 1][r.random_range(0..4)],
                };
                for claim in check(&p, n, &mut r, &format!("seed {seed}")) {
                    match claim {
                        Reach::Near { .. } => near_reads += 1,
                        Reach::Whole => whole_reads += 1,
                        Reach::None => {}
                    }
                }
            }
        }
        // the kernels exercise both outcomes, not only the easy one
        assert!(
            near_reads * 4 > whole_reads,
            "near {near_reads}, whole {whole_reads}"
        );
        println!("near {near_reads}, whole {whole_reads}");
    }
}
