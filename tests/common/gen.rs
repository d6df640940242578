//! A seeded generator of random kernels.
//!
//! The generator keeps its own typed AST ([`Ast`]), prints it as the Rust that builds the
//! kernel, builds the `Expr` from it through the public API only ([`build`]), and is
//! evaluated independently by [`super::reference`].
//!
//! Inputs and results are f32, i32 or u32. With [`Opts::wide`] (see [`case_with`]) a
//! kernel also computes in f64, i64 and u64 in between: casts up, operations there,
//! casts back down; [`case`] gives the 32-bit kernels it always gave, seed for seed.

use std::fmt;

use hybrid::{fold, index, select, Element, Expr, Float, Kernel};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::reference::{self, Verdict, V};

/// The type of an AST node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    F,
    I,
    U,
    B,
    /// `f64`, `i64`, `u64`: types a kernel computes in between its 32-bit inputs and
    /// result (generated only with [`Opts::wide`]).
    D,
    L,
    Q,
}

impl Ty {
    pub fn name(self) -> &'static str {
        match self {
            Ty::F => "f32",
            Ty::I => "i32",
            Ty::U => "u32",
            Ty::B => "bool",
            Ty::D => "f64",
            Ty::L => "i64",
            Ty::Q => "u64",
        }
    }

    /// Whether the type is 64 bits wide.
    pub fn is_wide(self) -> bool {
        matches!(self, Ty::D | Ty::L | Ty::Q)
    }
}

/// A literal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lit {
    F(f32),
    I(i32),
    U(u32),
    B(bool),
    D(f64),
    L(i64),
    Q(u64),
}

impl Lit {
    /// `x` as a literal of the float type `ty` (f32: rounded to nearest).
    pub fn float(ty: Ty, x: f64) -> Lit {
        match ty {
            Ty::F => Lit::F(x as f32),
            Ty::D => Lit::D(x),
            _ => panic!("generator bug: {ty:?} is no float type"),
        }
    }
}

impl fmt::Display for Lit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lit::F(x) if x.is_finite() => write!(f, "{x:?}f32"),
            Lit::F(x) => write!(f, "f32::from_bits({:#x})", x.to_bits()),
            Lit::I(x) => write!(f, "({x}i32)"),
            Lit::U(x) => write!(f, "{x}u32"),
            Lit::B(x) => write!(f, "{x}"),
            Lit::D(x) if x.is_finite() => write!(f, "{x:?}f64"),
            Lit::D(x) => write!(f, "f64::from_bits({:#x})", x.to_bits()),
            Lit::L(x) => write!(f, "({x}i64)"),
            Lit::Q(x) => write!(f, "{x}u64"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Un {
    Neg,
    Not,
    Abs,
    Sqrt,
    Sin,
    Cos,
    Tan,
    Exp,
    Exp2,
    Ln,
    Log2,
    Floor,
    Ceil,
    Round,
    Fract,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bin {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Min,
    Max,
    Pow,
    And,
    Or,
    Xor,
    Shl,
    Shr,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Bin {
    fn symbol(self, ty: Ty) -> Option<&'static str> {
        Some(match self {
            Bin::And if ty != Ty::B => "&",
            Bin::Or if ty != Ty::B => "|",
            Bin::Add => "+",
            Bin::Sub => "-",
            Bin::Mul => "*",
            Bin::Div => "/",
            Bin::Rem => "%",
            Bin::Xor => "^",
            Bin::Shl => "<<",
            Bin::Shr => ">>",
            _ => return None,
        })
    }
    fn method(self) -> &'static str {
        match self {
            Bin::Min => "min",
            Bin::Max => "max",
            Bin::Pow => "pow",
            Bin::And => "and",
            Bin::Or => "or",
            Bin::Lt => "lt",
            Bin::Le => "le",
            Bin::Gt => "gt",
            Bin::Ge => "ge",
            Bin::Eq => "eq",
            Bin::Ne => "ne",
            _ => "?",
        }
    }
}

/// How a binary operation's operands are given: both `Expr`, `Expr op number`, or
/// `number op Expr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    EE,
    EN,
    NE,
}

#[derive(Debug, Clone)]
pub enum Node {
    Input(u8),
    Index,
    Lit(Lit),
    /// The accumulator of the fold at this nesting level (0 = outermost).
    Acc(usize),
    /// The counter of the fold at this nesting level.
    Counter(usize),
    Un(Un, Box<Ast>),
    /// With `Form::EN` the right operand is a `Lit`, with `Form::NE` the left one.
    Bin(Bin, Form, Box<Ast>, Box<Ast>),
    Select(Box<Ast>, Box<Ast>, Box<Ast>),
    /// Conversion to this node's type.
    Cast(Box<Ast>),
    MulAdd(Box<Ast>, Box<Ast>, Box<Ast>),
    /// Bounds that are `Lit`s are passed as plain numbers.
    Clamp(Box<Ast>, Box<Ast>, Box<Ast>),
    Fold {
        count: u32,
        init: Box<Ast>,
        body: Box<Ast>,
    },
}

/// A typed AST node.
#[derive(Debug, Clone)]
pub struct Ast {
    pub ty: Ty,
    pub node: Node,
}

impl Ast {
    fn new(ty: Ty, node: Node) -> Ast {
        Ast { ty, node }
    }
    pub fn lit(l: Lit) -> Ast {
        let ty = match l {
            Lit::F(_) => Ty::F,
            Lit::I(_) => Ty::I,
            Lit::U(_) => Ty::U,
            Lit::B(_) => Ty::B,
            Lit::D(_) => Ty::D,
            Lit::L(_) => Ty::L,
            Lit::Q(_) => Ty::Q,
        };
        Ast::new(ty, Node::Lit(l))
    }
    fn as_lit(&self) -> Option<Lit> {
        match self.node {
            Node::Lit(l) => Some(l),
            _ => None,
        }
    }
    /// Number of nodes.
    pub fn size(&self) -> usize {
        1 + match &self.node {
            Node::Input(_) | Node::Index | Node::Lit(_) | Node::Acc(_) | Node::Counter(_) => 0,
            Node::Un(_, a) | Node::Cast(a) => a.size(),
            Node::Bin(_, _, a, b) => a.size() + b.size(),
            Node::Select(a, b, c) | Node::MulAdd(a, b, c) | Node::Clamp(a, b, c) => {
                a.size() + b.size() + c.size()
            }
            Node::Fold { init, body, .. } => init.size() + body.size(),
        }
    }

    fn fmt_at(&self, f: &mut fmt::Formatter<'_>, level: usize) -> fmt::Result {
        let p = |f: &mut fmt::Formatter<'_>, a: &Ast| a.fmt_at(f, level);
        match &self.node {
            Node::Input(k) => write!(f, "x{k}.clone()"),
            Node::Index => write!(f, "index()"),
            Node::Lit(l) => write!(f, "Expr::constant({l})"),
            Node::Acc(l) => write!(f, "acc{l}.clone()"),
            Node::Counter(l) => write!(f, "i{l}.clone()"),
            Node::Un(op, a) => {
                let name = match op {
                    Un::Neg => return write!(f, "(-{})", Wrap(a, level)),
                    Un::Not => return write!(f, "(!{})", Wrap(a, level)),
                    Un::Abs => "abs",
                    Un::Sqrt => "sqrt",
                    Un::Sin => "sin",
                    Un::Cos => "cos",
                    Un::Tan => "tan",
                    Un::Exp => "exp",
                    Un::Exp2 => "exp2",
                    Un::Ln => "ln",
                    Un::Log2 => "log2",
                    Un::Floor => "floor",
                    Un::Ceil => "ceil",
                    Un::Round => "round",
                    Un::Fract => "fract",
                };
                p(f, a)?;
                write!(f, ".{name}()")
            }
            Node::Bin(op, form, a, b) => {
                let side = |f: &mut fmt::Formatter<'_>, x: &Ast, num: bool| -> fmt::Result {
                    match (num, x.as_lit()) {
                        (true, Some(l)) => write!(f, "{l}"),
                        _ => p(f, x),
                    }
                };
                match op.symbol(a.ty) {
                    Some(s) => {
                        write!(f, "(")?;
                        side(f, a, *form == Form::NE)?;
                        write!(f, " {s} ")?;
                        side(f, b, *form == Form::EN)?;
                        write!(f, ")")
                    }
                    None => {
                        p(f, a)?;
                        write!(f, ".{}(", op.method())?;
                        side(f, b, *form == Form::EN)?;
                        write!(f, ")")
                    }
                }
            }
            Node::Select(c, a, b) => {
                write!(f, "select(")?;
                p(f, c)?;
                write!(f, ", ")?;
                p(f, a)?;
                write!(f, ", ")?;
                p(f, b)?;
                write!(f, ")")
            }
            Node::Cast(a) => {
                p(f, a)?;
                write!(f, ".cast::<{}>()", self.ty.name())
            }
            Node::MulAdd(a, b, c) | Node::Clamp(a, b, c) => {
                let m = if matches!(self.node, Node::MulAdd(..)) {
                    "mul_add"
                } else {
                    "clamp"
                };
                p(f, a)?;
                write!(f, ".{m}(")?;
                match b.as_lit() {
                    Some(l) if m == "clamp" => write!(f, "{l}")?,
                    _ => p(f, b)?,
                }
                write!(f, ", ")?;
                match c.as_lit() {
                    Some(l) if m == "clamp" => write!(f, "{l}")?,
                    _ => p(f, c)?,
                }
                write!(f, ")")
            }
            Node::Fold { count, init, body } => {
                write!(f, "fold::<{}>({count}, ", self.ty.name())?;
                p(f, init)?;
                write!(f, ", |acc{level}, i{level}| ")?;
                body.fmt_at(f, level + 1)?;
                write!(f, ")")
            }
        }
    }
}

struct Wrap<'a>(&'a Ast, usize);
impl fmt::Display for Wrap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_at(f, self.1)
    }
}

impl fmt::Display for Ast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_at(f, 0)
    }
}

/// The types of a random kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub input: Ty,
    pub output: Ty,
    pub arity: usize,
}

/// One random kernel: its seed, shape and AST.
#[derive(Debug, Clone)]
pub struct Case {
    pub seed: u64,
    pub shape: Shape,
    pub ast: Ast,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shape;
        let args = if s.arity == 1 {
            format!("x0: Expr<{}>", s.input.name())
        } else {
            format!("x0: Expr<{0}>, x1: Expr<{0}>", s.input.name())
        };
        let ctor = if s.arity == 1 { "map" } else { "map2" };
        write!(
            f,
            "seed {}: Kernel::<{}, {}>::{ctor}(|{args}| {})",
            self.seed,
            s.input.name(),
            s.output.name(),
            self.ast
        )
    }
}

/// The types of inputs and results, in the order a shape is drawn from.
pub const ELEMENT_TYS: [Ty; 3] = [Ty::F, Ty::I, Ty::U];

/// A shape with `arity` inputs whose input and output types are drawn from `seed` (by
/// a generator of their own: the types [`case`] draws for the seed when not given a
/// shape).
pub fn shape_for(seed: u64, arity: usize) -> Shape {
    let mut pick = ChaCha8Rng::seed_from_u64(seed);
    Shape {
        input: ELEMENT_TYS[pick.random_range(0..3)],
        output: ELEMENT_TYS[pick.random_range(0..3)],
        arity,
    }
}

/// What a generated kernel may contain beyond the 32-bit types.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Opts {
    /// 64-bit work between the 32-bit inputs and result: casts up to `f64`, `i64` and
    /// `u64`, operations in them (and comparisons of them), casts back down. Most such
    /// kernels compute their result through a 64-bit value.
    pub wide: bool,
    /// With `wide`, also `f64` `sin`, `cos`, `tan`, `exp`, `exp2`, `ln`, `log2` and
    /// `pow`, which a GPU has no instruction for (`Device::computes` leaves it out).
    pub wide_math: bool,
}

/// The kernel for `seed`: shape chosen at random unless given.
pub fn case(seed: u64, shape: Option<Shape>) -> Case {
    case_with(seed, shape, Opts::default())
}

/// [`case`] with options; `Opts::default()` gives exactly the kernels [`case`] gives.
pub fn case_with(seed: u64, shape: Option<Shape>, opts: Opts) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let shape = shape.unwrap_or_else(|| Shape {
        input: ELEMENT_TYS[rng.random_range(0..3)],
        output: ELEMENT_TYS[rng.random_range(0..3)],
        arity: rng.random_range(1..=2),
    });
    let max_depth = rng.random_range(2..=6);
    let mut g = Gen {
        rng: &mut rng,
        shape,
        folds: Vec::new(),
        budget: 40,
        opts,
    };
    let ast = if opts.wide && g.p(0.8) {
        g.down(shape.output, max_depth)
    } else {
        g.expr(shape.output, max_depth)
    };
    Case { seed, shape, ast }
}

struct Gen<'r> {
    rng: &'r mut ChaCha8Rng,
    shape: Shape,
    /// Accumulator types of the enclosing folds.
    folds: Vec<Ty>,
    budget: i32,
    opts: Opts,
}

const F_CONSTS: [f32; 14] = [
    0.5, 2.0, -1.5, 3.0, 0.25, 1.0, -2.0, 0.1, 10.0, 1.5, -0.75, 4.0, 0.0, 7.25,
];
const I_CONSTS: [i32; 16] = [
    0,
    1,
    -1,
    2,
    3,
    -7,
    7,
    31,
    32,
    33,
    255,
    1000,
    -1000,
    i32::MIN,
    i32::MAX,
    0x5555,
];
const U_CONSTS: [u32; 15] = [
    0,
    1,
    2,
    3,
    7,
    31,
    32,
    33,
    255,
    1000,
    0x8000_0000,
    u32::MAX,
    0xdead_beef,
    16,
    0xffff,
];
const SHIFTS: [u32; 8] = [0, 1, 3, 8, 31, 32, 33, 255];
/// f64 constants: exact small ones, ones no f32 holds (0.1, 1/3, 2^24 + 1) and large
/// and small magnitudes that make f64 and f32 arithmetic differ (`(x + 1e8) - 1e8`).
const D_CONSTS: [f64; 16] = [
    0.5,
    2.0,
    -1.5,
    3.0,
    0.1,
    1.0 / 3.0,
    1e8,
    -1e8,
    4_294_967_296.0,
    16_777_217.0,
    1e15,
    9.313_225_746_154_785e-10, // 2^-30
    0.0,
    7.25,
    -1e-5,
    1.0,
];
const L_CONSTS: [i64; 14] = [
    0,
    1,
    -1,
    3,
    -7,
    63,
    64,
    65,
    1000,
    1 << 32,
    -(1 << 40),
    i64::MIN,
    i64::MAX,
    0x5555_5555_5555,
];
const Q_CONSTS: [u64; 12] = [
    0,
    1,
    3,
    63,
    64,
    1000,
    1 << 32,
    0xffff_ffff,
    1 << 63,
    u64::MAX,
    0xdead_beef_0000_0001,
    255,
];
const SHIFTS64: [u32; 8] = [0, 1, 8, 31, 32, 33, 63, 64];

/// An operation of a float expression ([`Gen::float`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FloatOp {
    Arith(Bin),
    Neg,
    Sqrt,
    SinCos,
    /// f32 only.
    Tan,
    /// f32 only.
    Exp,
    /// f64 only (with `Opts::wide_math`).
    ExpOrTan,
    Log,
    Pow,
    Abs,
    Rounding,
    Min,
    Max,
    Clamp,
    MulAdd,
    Select,
    Cast,
    Fold,
    /// `+`, `*` or `-` (also a fold too deep).
    Other,
}

/// The constants of one float type's expressions.
struct FloatConsts {
    /// `clamp`'s literal bounds.
    clamp_lo: [f64; 4],
    clamp_hi: [f64; 3],
    /// What `ln(|x| + c)` adds.
    log_offset: [f64; 3],
    /// The types a value is converted from.
    cast_from: &'static [Ty],
}

const F32: FloatConsts = FloatConsts {
    clamp_lo: [-2.0, -1.0, 0.0, -0.5],
    clamp_hi: [0.5, 1.0, 2.5],
    log_offset: [0.5, 0.01, 1.0],
    cast_from: &[Ty::I, Ty::U, Ty::B],
};

/// Bounds beyond f32's exact integers, converted from the 64-bit integers and f32 too.
const F64: FloatConsts = FloatConsts {
    clamp_lo: [-2.0, -1e8, 0.0, -0.5],
    clamp_hi: [0.5, 1e8, 2.5],
    log_offset: [0.5, 1e-3, 1.0],
    cast_from: &[Ty::F, Ty::F, Ty::I, Ty::U, Ty::L, Ty::Q, Ty::B],
};

impl Gen<'_> {
    fn p(&mut self, prob: f64) -> bool {
        self.rng.random_bool(prob)
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.rng.random_range(0..xs.len())]
    }

    fn lit(&mut self, ty: Ty) -> Lit {
        match ty {
            Ty::F => Lit::F(self.pick(&F_CONSTS)),
            Ty::I => Lit::I(self.pick(&I_CONSTS)),
            Ty::U => Lit::U(self.pick(&U_CONSTS)),
            Ty::B => Lit::B(self.p(0.5)),
            Ty::D => Lit::D(self.pick(&D_CONSTS)),
            Ty::L => Lit::L(self.pick(&L_CONSTS)),
            Ty::Q => Lit::Q(self.pick(&Q_CONSTS)),
        }
    }

    /// A 32-bit value computed through a 64-bit one: `expr64.cast::<ty>()`.
    fn down(&mut self, ty: Ty, depth: u32) -> Ast {
        let from = if self.opts.wide_math && self.p(0.5) {
            Ty::D
        } else if ty == Ty::F {
            self.pick(&[Ty::D, Ty::D, Ty::D, Ty::L, Ty::Q])
        } else {
            self.pick(&[Ty::D, Ty::D, Ty::L, Ty::Q])
        };
        let a = Box::new(self.expr(from, depth));
        Ast::new(ty, Node::Cast(a))
    }

    fn input(&mut self) -> Ast {
        let k = self.rng.random_range(0..self.shape.arity) as u8;
        Ast::new(self.shape.input, Node::Input(k))
    }

    fn leaf(&mut self, ty: Ty) -> Ast {
        // Inside a fold, use its accumulator or counter often.
        if let Some(level) = (0..self.folds.len()).rev().find(|&l| self.folds[l] == ty) {
            if self.p(0.4) {
                return Ast::new(ty, Node::Acc(level));
            }
        }
        if ty == Ty::U && !self.folds.is_empty() && self.p(0.3) {
            let level = self.rng.random_range(0..self.folds.len());
            return Ast::new(ty, Node::Counter(level));
        }
        match ty {
            Ty::B => {
                if self.p(0.15) {
                    return Ast::lit(self.lit(Ty::B));
                }
                let x = self.input();
                let l = Ast::lit(self.lit(x.ty));
                let op = self.pick(&[Bin::Lt, Bin::Le, Bin::Gt, Bin::Ge, Bin::Eq, Bin::Ne]);
                Ast::new(Ty::B, Node::Bin(op, Form::EN, Box::new(x), Box::new(l)))
            }
            _ => {
                let r = self.rng.random_range(0..100);
                if r < 15 {
                    Ast::lit(self.lit(ty))
                } else if r < 25 {
                    let i = Ast::new(Ty::U, Node::Index);
                    if ty == Ty::U {
                        i
                    } else {
                        Ast::new(ty, Node::Cast(Box::new(i)))
                    }
                } else {
                    let x = self.input();
                    if x.ty == ty {
                        x
                    } else {
                        let x = self.small(Box::new(x), ty);
                        Ast::new(ty, Node::Cast(x))
                    }
                }
            }
        }
    }

    fn expr(&mut self, ty: Ty, depth: u32) -> Ast {
        self.budget -= 1;
        if depth == 0 || self.budget <= 0 || self.p(0.12) {
            return self.leaf(ty);
        }
        if self.opts.wide && matches!(ty, Ty::F | Ty::I | Ty::U) && self.p(0.15) {
            return self.down(ty, depth - 1);
        }
        match ty {
            Ty::F | Ty::D => self.float(ty, depth),
            Ty::I | Ty::U | Ty::L | Ty::Q => self.int(ty, depth),
            Ty::B => self.boolean(depth),
        }
    }

    fn sub(&mut self, ty: Ty, depth: u32) -> Box<Ast> {
        Box::new(self.expr(ty, depth - 1))
    }

    fn binary(&mut self, op: Bin, ty: Ty, depth: u32, allow_ne: bool) -> Ast {
        let r = self.rng.random_range(0..100);
        let (form, a, b) = if r < 60 {
            (Form::EE, self.sub(ty, depth), self.sub(ty, depth))
        } else if r < 85 || !allow_ne {
            let mut l = self.lit(ty);
            if matches!(op, Bin::Div | Bin::Rem) && self.p(0.8) {
                // a literal zero divisor makes a float result unknown: keep it rare
                while matches!(l, Lit::F(x) if x == 0.0) || matches!(l, Lit::D(x) if x == 0.0) {
                    l = self.lit(ty);
                }
            }
            (Form::EN, self.sub(ty, depth), Box::new(Ast::lit(l)))
        } else {
            (
                Form::NE,
                Box::new(Ast::lit(self.lit(ty))),
                self.sub(ty, depth),
            )
        };
        let out = if matches!(
            op,
            Bin::Lt | Bin::Le | Bin::Gt | Bin::Ge | Bin::Eq | Bin::Ne
        ) {
            Ty::B
        } else {
            ty
        };
        Ast::new(out, Node::Bin(op, form, a, b))
    }

    fn un(&mut self, op: Un, a: Box<Ast>) -> Ast {
        Ast::new(a.ty, Node::Un(op, a))
    }

    /// `op` on a new operand of type `ty`.
    fn un_of(&mut self, op: Un, ty: Ty, depth: u32) -> Ast {
        let a = self.sub(ty, depth);
        self.un(op, a)
    }

    /// `a.clamp(lo, hi)` with literal bounds, in `a`'s float type.
    fn clamp_lits(&mut self, a: Box<Ast>, lo: f64, hi: f64) -> Box<Ast> {
        let ty = a.ty;
        Box::new(Ast::new(
            ty,
            Node::Clamp(
                a,
                Box::new(Ast::lit(Lit::float(ty, lo))),
                Box::new(Ast::lit(Lit::float(ty, hi))),
            ),
        ))
    }

    /// Whether to keep a function's float argument in range: always in f64 (drawing
    /// nothing), with probability `prob` in f32, whose other arguments reach a device's
    /// unspecified results and wide bounds.
    fn tame(&mut self, ty: Ty, prob: f64) -> bool {
        ty == Ty::D || self.p(prob)
    }

    /// `a` clamped to `[lo, hi]` when [`Gen::tame`] says so.
    fn tamed(&mut self, a: Box<Ast>, prob: f64, lo: f64, hi: f64) -> Box<Ast> {
        if self.tame(a.ty, prob) {
            self.clamp_lits(a, lo, hi)
        } else {
            a
        }
    }

    /// `op` on a new operand, clamped to `range` when [`Gen::tame`] says so.
    fn tamed_un(&mut self, op: Un, ty: Ty, depth: u32, prob: f64, range: (f64, f64)) -> Ast {
        let a = self.sub(ty, depth);
        let a = self.tamed(a, prob, range.0, range.1);
        self.un(op, a)
    }

    /// One of two functions: an f32 one by a coin, an f64 one by a pick.
    fn either(&mut self, ty: Ty, a: Un, b: Un) -> Un {
        if ty == Ty::D {
            self.pick(&[a, b])
        } else if self.p(0.5) {
            a
        } else {
            b
        }
    }

    /// Most integers converted to f32 are first brought into -999..=999 (`% 1000`), so
    /// that float arithmetic on them stays in a range where results are comparable.
    fn small(&mut self, x: Box<Ast>, to: Ty) -> Box<Ast> {
        let lit = match x.ty {
            Ty::I => Lit::I(1000),
            Ty::U => Lit::U(1000),
            _ => return x,
        };
        if to != Ty::F || self.p(0.3) {
            return x;
        }
        Box::new(Ast::new(
            x.ty,
            Node::Bin(Bin::Rem, Form::EN, x, Box::new(Ast::lit(lit))),
        ))
    }

    /// A value of type `ty` converted from one of type `from` (picked), made
    /// [`Gen::small`] on its way to f32.
    fn cast(&mut self, ty: Ty, from: &[Ty], depth: u32) -> Ast {
        let from = self.pick(from);
        let a = self.sub(from, depth);
        let a = self.small(a, ty);
        Ast::new(ty, Node::Cast(a))
    }

    fn mul_add(&mut self, ty: Ty, depth: u32) -> Ast {
        let (a, b, c) = (
            self.sub(ty, depth),
            self.sub(ty, depth),
            self.sub(ty, depth),
        );
        Ast::new(ty, Node::MulAdd(a, b, c))
    }

    fn select(&mut self, ty: Ty, depth: u32) -> Ast {
        let (c, a, b) = (
            self.sub(Ty::B, depth),
            self.sub(ty, depth),
            self.sub(ty, depth),
        );
        Ast::new(ty, Node::Select(c, a, b))
    }

    fn fold(&mut self, ty: Ty, depth: u32) -> Ast {
        let count = self.pick(&[0, 1, 2, 3, 4]);
        let init = self.sub(ty, depth);
        self.folds.push(ty);
        let level = self.folds.len() - 1;
        let body = if self.p(0.75) {
            let acc = Box::new(Ast::new(ty, Node::Acc(level)));
            let rest = self.sub(ty, depth);
            let float = matches!(ty, Ty::F | Ty::D);
            let op = if float {
                self.pick(&[Bin::Add, Bin::Sub, Bin::Mul, Bin::Min, Bin::Max])
            } else {
                self.pick(&[Bin::Add, Bin::Sub, Bin::Mul, Bin::Xor, Bin::Max])
            };
            // Keep a float accumulator from growing without bound under `*`.
            let rest = if float && op == Bin::Mul {
                self.clamp_lits(rest, -1.5, 1.5)
            } else {
                rest
            };
            Box::new(Ast::new(ty, Node::Bin(op, Form::EE, acc, rest)))
        } else {
            self.sub(ty, depth)
        };
        self.folds.pop();
        Ast::new(ty, Node::Fold { count, init, body })
    }

    /// The operation of an f32 expression: a roll of 0..30.
    fn f32_op(&mut self) -> FloatOp {
        use FloatOp::*;
        match self.rng.random_range(0..30) {
            0 => Arith(Bin::Add),
            1 => Arith(Bin::Sub),
            2 => Arith(Bin::Mul),
            3 => Arith(Bin::Div),
            4 => Arith(Bin::Rem),
            5 => Neg,
            6 => Sqrt,
            7 | 8 => SinCos,
            9 => Tan,
            10 | 11 => Exp,
            12 | 13 => Log,
            14 => Pow,
            15 => Abs,
            16 | 17 => Rounding,
            18 => Min,
            19 => Max,
            20 => Clamp,
            21 | 22 => MulAdd,
            23 | 24 => Select,
            25 | 26 => Cast,
            27 => Fold,
            _ => Other,
        }
    }

    /// The operation of an f64 expression: a roll of 0..30, the functions (9..=12)
    /// only under `Opts::wide_math`, which also rolls 9..13 a quarter of the time.
    fn f64_op(&mut self) -> FloatOp {
        use FloatOp::*;
        let math = self.opts.wide_math;
        // with math, a third of f64 operations are functions a GPU has no f64 for
        let r = if math && self.p(0.25) {
            self.rng.random_range(9..13)
        } else {
            self.rng.random_range(0..30)
        };
        match r {
            0 | 1 => Arith(Bin::Add),
            2 => Arith(Bin::Sub),
            3 | 4 => Arith(Bin::Mul),
            5 => Arith(Bin::Div),
            6 => Arith(Bin::Rem),
            7 => Neg,
            8 => Sqrt,
            9 if math => SinCos,
            10 if math => ExpOrTan,
            11 if math => Log,
            12 if math => Pow,
            13 => Abs,
            14 | 15 => Rounding,
            16 => Min,
            17 => Max,
            18 => Clamp,
            19 | 20 => MulAdd,
            21 | 22 => Select,
            23..=25 => Cast,
            26 => Fold,
            _ => Other,
        }
    }

    /// An f32 or f64 expression. The two draw their operations from their own tables
    /// ([`Gen::f32_op`], [`Gen::f64_op`]) and constants ([`FloatConsts`]); an f32
    /// function's argument is kept in range most of the time, an f64 one's always
    /// ([`Gen::tame`]).
    fn float(&mut self, ty: Ty, depth: u32) -> Ast {
        use Un::*;
        let k = if ty == Ty::F { &F32 } else { &F64 };
        let op = if ty == Ty::F {
            self.f32_op()
        } else {
            self.f64_op()
        };
        match op {
            FloatOp::Arith(op) => self.binary(op, ty, depth, true),
            FloatOp::Neg => self.un_of(Neg, ty, depth),
            FloatOp::Sqrt => {
                let a = self.sub(ty, depth);
                let a = if self.p(0.8) {
                    Box::new(self.un(Abs, a))
                } else {
                    a
                };
                self.un(Sqrt, a)
            }
            FloatOp::SinCos => {
                let op = self.either(ty, Sin, Cos);
                self.tamed_un(op, ty, depth, 0.9, (-3.0, 3.0))
            }
            FloatOp::Tan => self.tamed_un(Tan, ty, depth, 0.85, (-1.4, 1.4)),
            FloatOp::Exp => {
                let op = self.either(ty, Exp, Exp2);
                self.tamed_un(op, ty, depth, 0.9, (-10.0, 10.0))
            }
            FloatOp::ExpOrTan => {
                let op = self.pick(&[Exp, Exp2, Tan]);
                // (an f64 argument is always tamed)
                self.tamed_un(op, ty, depth, 1.0, (-1.4, 1.4))
            }
            FloatOp::Log => {
                let op = self.either(ty, Ln, Log2);
                let a = self.sub(ty, depth);
                // ln(|a| + c), ln(|a|) or ln(a): f64 always the first
                let r = if ty == Ty::D {
                    0
                } else {
                    self.rng.random_range(0..4)
                };
                let a = match r {
                    0 | 1 => {
                        let abs = Box::new(self.un(Abs, a));
                        let c = Box::new(Ast::lit(Lit::float(ty, self.pick(&k.log_offset))));
                        Box::new(Ast::new(ty, Node::Bin(Bin::Add, Form::EN, abs, c)))
                    }
                    2 => Box::new(self.un(Abs, a)),
                    _ => a,
                };
                self.un(op, a)
            }
            FloatOp::Pow => {
                let base = self.sub(ty, depth);
                let base = if self.tame(ty, 0.8) {
                    Box::new(self.un(Abs, base))
                } else {
                    base
                };
                if self.p(0.4) {
                    let e = self.pick(&[2.0, 0.5, -1.0, 3.0, 1.5, 0.0]);
                    let l = Box::new(Ast::lit(Lit::float(ty, e)));
                    Ast::new(ty, Node::Bin(Bin::Pow, Form::EN, base, l))
                } else {
                    let e = self.sub(ty, depth);
                    let e = self.clamp_lits(e, -3.0, 3.0);
                    Ast::new(ty, Node::Bin(Bin::Pow, Form::EE, base, e))
                }
            }
            FloatOp::Abs => self.un_of(Abs, ty, depth),
            FloatOp::Rounding => {
                let op = self.pick(&[Floor, Ceil, Round, Fract]);
                self.un_of(op, ty, depth)
            }
            FloatOp::Min => self.binary(Bin::Min, ty, depth, false),
            FloatOp::Max => self.binary(Bin::Max, ty, depth, false),
            FloatOp::Clamp => {
                let x = self.sub(ty, depth);
                if self.p(0.7) {
                    let lo = self.pick(&k.clamp_lo);
                    let hi = self.pick(&k.clamp_hi);
                    *self.clamp_lits(x, lo, hi)
                } else {
                    let (lo, hi) = (self.sub(ty, depth), self.sub(ty, depth));
                    Ast::new(ty, Node::Clamp(x, lo, hi))
                }
            }
            FloatOp::MulAdd => self.mul_add(ty, depth),
            FloatOp::Select => self.select(ty, depth),
            FloatOp::Cast => self.cast(ty, k.cast_from, depth),
            FloatOp::Fold if self.folds.len() < 2 => self.fold(ty, depth),
            FloatOp::Fold | FloatOp::Other => {
                let op = self.pick(&[Bin::Add, Bin::Mul, Bin::Sub]);
                self.binary(op, ty, depth, true)
            }
        }
    }

    fn int(&mut self, ty: Ty, depth: u32) -> Ast {
        match self.rng.random_range(0..26) {
            0 => self.binary(Bin::Add, ty, depth, true),
            1 => self.binary(Bin::Sub, ty, depth, true),
            2 => self.binary(Bin::Mul, ty, depth, true),
            3 => self.binary(Bin::Div, ty, depth, true),
            4 => self.binary(Bin::Rem, ty, depth, true),
            5 if matches!(ty, Ty::I | Ty::L) => self.un_of(Un::Neg, ty, depth),
            6 => self.un_of(Un::Abs, ty, depth),
            7 => self.binary(Bin::Min, ty, depth, false),
            8 => self.binary(Bin::Max, ty, depth, false),
            9 => {
                let x = self.sub(ty, depth);
                let (lo, hi) = if self.p(0.5) {
                    let (lo, hi) = match ty {
                        Ty::I => (Lit::I(-100), Lit::I(self.pick(&[0, 100, 1 << 20]))),
                        Ty::L => (Lit::L(-100), Lit::L(self.pick(&[0, 100, 1 << 40]))),
                        Ty::Q => (
                            Lit::Q(self.pick(&[0, 10])),
                            Lit::Q(self.pick(&[100, 1 << 40])),
                        ),
                        _ => (
                            Lit::U(self.pick(&[0, 10])),
                            Lit::U(self.pick(&[100, 1 << 20])),
                        ),
                    };
                    (Box::new(Ast::lit(lo)), Box::new(Ast::lit(hi)))
                } else {
                    (self.sub(ty, depth), self.sub(ty, depth))
                };
                Ast::new(ty, Node::Clamp(x, lo, hi))
            }
            10 => self.mul_add(ty, depth),
            11 => self.binary(Bin::And, ty, depth, true),
            12 => self.binary(Bin::Or, ty, depth, true),
            13 => self.binary(Bin::Xor, ty, depth, true),
            14 => self.un_of(Un::Not, ty, depth),
            15 | 16 => {
                let op = if self.p(0.5) { Bin::Shl } else { Bin::Shr };
                let a = self.sub(ty, depth);
                if self.p(0.5) {
                    let shifts = if ty.is_wide() { &SHIFTS64 } else { &SHIFTS };
                    let s = Ast::lit(Lit::U(self.pick(shifts)));
                    Ast::new(ty, Node::Bin(op, Form::EN, a, Box::new(s)))
                } else {
                    let s = self.sub(Ty::U, depth);
                    Ast::new(ty, Node::Bin(op, Form::EE, a, s))
                }
            }
            17 | 18 => self.select(ty, depth),
            19..=21 if ty.is_wide() => {
                let other = if ty == Ty::L { Ty::Q } else { Ty::L };
                self.cast(
                    ty,
                    &[Ty::D, Ty::D, other, Ty::I, Ty::U, Ty::F, Ty::B],
                    depth,
                )
            }
            19..=21 => {
                let other = if ty == Ty::I { Ty::U } else { Ty::I };
                self.cast(ty, &[Ty::F, Ty::F, other, Ty::B], depth)
            }
            22 if self.folds.len() < 2 => self.fold(ty, depth),
            23 if ty == Ty::U => Ast::new(Ty::U, Node::Index),
            _ => {
                let op = self.pick(&[Bin::Add, Bin::Mul, Bin::Xor]);
                self.binary(op, ty, depth, true)
            }
        }
    }

    fn boolean(&mut self, depth: u32) -> Ast {
        match self.rng.random_range(0..10) {
            0..=5 => {
                let ty = if self.opts.wide && self.p(0.4) {
                    self.pick(&[Ty::D, Ty::D, Ty::L, Ty::Q])
                } else {
                    self.pick(&[Ty::F, Ty::F, Ty::I, Ty::U])
                };
                let op = self.pick(&[Bin::Lt, Bin::Le, Bin::Gt, Bin::Ge, Bin::Eq, Bin::Ne]);
                self.binary(op, ty, depth, false)
            }
            6 => self.binary(Bin::And, Ty::B, depth, false),
            7 => self.binary(Bin::Or, Ty::B, depth, false),
            8 => self.un_of(Un::Not, Ty::B, depth),
            _ => self.select(Ty::B, depth),
        }
    }
}

// --- building the Expr through the public API -------------------------------------------

/// An `Expr` of any type.
pub enum Dyn {
    F(Expr<f32>),
    I(Expr<i32>),
    U(Expr<u32>),
    B(Expr<bool>),
    D(Expr<f64>),
    L(Expr<i64>),
    Q(Expr<u64>),
}

/// The element types, with their `Dyn` wrapping and test-input generation.
pub trait Elem: Element {
    const TY: Ty;
    fn wrap(e: Expr<Self>) -> Dyn;
    fn unwrap(d: Dyn) -> Expr<Self>;
    /// A random input value.
    fn random(rng: &mut ChaCha8Rng) -> Self;
    /// The value as a reference input.
    fn to_v(self) -> V;
    /// A device result checked against its reference.
    fn check(self, r: V) -> Verdict;
}

impl Elem for f32 {
    const TY: Ty = Ty::F;
    fn wrap(e: Expr<f32>) -> Dyn {
        Dyn::F(e)
    }
    fn unwrap(d: Dyn) -> Expr<f32> {
        match d {
            Dyn::F(e) => e,
            _ => panic!("generator bug: expected f32"),
        }
    }
    fn random(rng: &mut ChaCha8Rng) -> f32 {
        match rng.random_range(0..20) {
            // exact integers and halves: ties for round, integers for floor and casts
            0 => rng.random_range(-8..=8) as f32 * 0.5,
            1 => [0.0, -0.0, 1.0, -1.0][rng.random_range(0..4)],
            _ => rng.random_range(-4.0f32..=4.0),
        }
    }
    fn to_v(self) -> V {
        reference::input_f32(self)
    }
    fn check(self, r: V) -> Verdict {
        reference::check_f32(self, r)
    }
}

impl Elem for i32 {
    const TY: Ty = Ty::I;
    fn wrap(e: Expr<i32>) -> Dyn {
        Dyn::I(e)
    }
    fn unwrap(d: Dyn) -> Expr<i32> {
        match d {
            Dyn::I(e) => e,
            _ => panic!("generator bug: expected i32"),
        }
    }
    fn random(rng: &mut ChaCha8Rng) -> i32 {
        match rng.random_range(0..10) {
            0..=4 => rng.random_range(-100..=100),
            5 => [0, 1, -1, i32::MIN, i32::MAX, 31, 32, 33][rng.random_range(0..8)],
            _ => rng.random(),
        }
    }
    fn to_v(self) -> V {
        V::I(Some(self))
    }
    fn check(self, r: V) -> Verdict {
        reference::check_i32(self, r)
    }
}

impl Elem for u32 {
    const TY: Ty = Ty::U;
    fn wrap(e: Expr<u32>) -> Dyn {
        Dyn::U(e)
    }
    fn unwrap(d: Dyn) -> Expr<u32> {
        match d {
            Dyn::U(e) => e,
            _ => panic!("generator bug: expected u32"),
        }
    }
    fn random(rng: &mut ChaCha8Rng) -> u32 {
        match rng.random_range(0..10) {
            0..=4 => rng.random_range(0..=200),
            5 => [0, 1, u32::MAX, 0x8000_0000, 31, 32, 33][rng.random_range(0..7)],
            _ => rng.random(),
        }
    }
    fn to_v(self) -> V {
        V::U(Some(self))
    }
    fn check(self, r: V) -> Verdict {
        reference::check_u32(self, r)
    }
}

struct Cx {
    inputs: Vec<Dyn>,
    folds: Vec<(Dyn, Expr<u32>)>,
}

fn dup(d: &Dyn) -> Dyn {
    match d {
        Dyn::F(e) => Dyn::F(e.clone()),
        Dyn::I(e) => Dyn::I(e.clone()),
        Dyn::U(e) => Dyn::U(e.clone()),
        Dyn::B(e) => Dyn::B(e.clone()),
        Dyn::D(e) => Dyn::D(e.clone()),
        Dyn::L(e) => Dyn::L(e.clone()),
        Dyn::Q(e) => Dyn::Q(e.clone()),
    }
}

/// The kernel for an AST, built through the public API.
pub fn kernel<I: Elem, O: Elem>(ast: &Ast, arity: usize) -> Kernel<I, O> {
    if arity == 1 {
        Kernel::map(|x: Expr<I>| {
            O::unwrap(build(
                ast,
                &mut Cx {
                    inputs: vec![I::wrap(x)],
                    folds: vec![],
                },
            ))
        })
    } else {
        Kernel::map2(|a: Expr<I>, b: Expr<I>| {
            O::unwrap(build(
                ast,
                &mut Cx {
                    inputs: vec![I::wrap(a), I::wrap(b)],
                    folds: vec![],
                },
            ))
        })
    }
}

macro_rules! arith {
    ($op:expr, $a:expr, $b:expr) => {
        match $op {
            Bin::Add => $a + $b,
            Bin::Sub => $a - $b,
            Bin::Mul => $a * $b,
            Bin::Div => $a / $b,
            Bin::Rem => $a % $b,
            op => panic!("generator bug: {op:?} is not arithmetic"),
        }
    };
}

macro_rules! bits {
    ($op:expr, $a:expr, $b:expr) => {
        match $op {
            Bin::And => $a & $b,
            Bin::Or => $a | $b,
            Bin::Xor => $a ^ $b,
            op => panic!("generator bug: {op:?} is not bitwise"),
        }
    };
}

macro_rules! method {
    ($op:expr, $a:expr, $b:expr, $wrap:path) => {
        match $op {
            Bin::Min => $wrap($a.min($b)),
            Bin::Max => $wrap($a.max($b)),
            Bin::Lt => Dyn::B($a.lt($b)),
            Bin::Le => Dyn::B($a.le($b)),
            Bin::Gt => Dyn::B($a.gt($b)),
            Bin::Ge => Dyn::B($a.ge($b)),
            Bin::Eq => Dyn::B($a.eq($b)),
            Bin::Ne => Dyn::B($a.ne($b)),
            op => panic!("generator bug: {op:?} is not a method"),
        }
    };
}

fn lit_of(a: &Ast) -> Lit {
    a.as_lit()
        .expect("generator bug: number operand is not a literal")
}

fn constant(l: Lit) -> Dyn {
    match l {
        Lit::F(x) => Dyn::F(Expr::constant(x)),
        Lit::I(x) => Dyn::I(Expr::constant(x)),
        Lit::U(x) => Dyn::U(Expr::constant(x)),
        Lit::B(x) => Dyn::B(Expr::constant(x)),
        Lit::D(x) => Dyn::D(Expr::constant(x)),
        Lit::L(x) => Dyn::L(Expr::constant(x)),
        Lit::Q(x) => Dyn::Q(Expr::constant(x)),
    }
}

fn build(a: &Ast, cx: &mut Cx) -> Dyn {
    match &a.node {
        Node::Input(k) => dup(&cx.inputs[*k as usize]),
        Node::Index => Dyn::U(index()),
        Node::Lit(l) => constant(*l),
        Node::Acc(l) => dup(&cx.folds[*l].0),
        Node::Counter(l) => Dyn::U(cx.folds[*l].1.clone()),
        Node::Un(op, x) => {
            let x = build(x, cx);
            match (op, x) {
                (Un::Neg, Dyn::F(x)) => Dyn::F(-x),
                (Un::Neg, Dyn::I(x)) => Dyn::I(-&x),
                (Un::Not, Dyn::I(x)) => Dyn::I(!x),
                (Un::Not, Dyn::U(x)) => Dyn::U(!&x),
                (Un::Not, Dyn::B(x)) => Dyn::B(!x),
                (Un::Abs, Dyn::F(x)) => Dyn::F(x.abs()),
                (Un::Abs, Dyn::I(x)) => Dyn::I(x.abs()),
                (Un::Abs, Dyn::U(x)) => Dyn::U(x.abs()),
                (Un::Neg, Dyn::D(x)) => Dyn::D(-x),
                (Un::Neg, Dyn::L(x)) => Dyn::L(-x),
                (Un::Not, Dyn::L(x)) => Dyn::L(!x),
                (Un::Not, Dyn::Q(x)) => Dyn::Q(!&x),
                (Un::Abs, Dyn::D(x)) => Dyn::D(x.abs()),
                (Un::Abs, Dyn::L(x)) => Dyn::L(x.abs()),
                (Un::Abs, Dyn::Q(x)) => Dyn::Q(x.abs()),
                (op, Dyn::D(x)) => Dyn::D(float_fn(*op, x)),
                (op, Dyn::F(x)) => Dyn::F(float_fn(*op, x)),
                (op, _) => panic!("generator bug: {op:?} on this type"),
            }
        }
        Node::Bin(op, form, x, y) => build_bin(*op, *form, x, y, cx),
        Node::Select(c, x, y) => {
            let c = match build(c, cx) {
                Dyn::B(c) => c,
                _ => panic!("generator bug: select condition"),
            };
            // Alternate the free function and the method form.
            let method = matches!(x.node, Node::Lit(_));
            match (build(x, cx), build(y, cx)) {
                (Dyn::F(x), Dyn::F(y)) if method => Dyn::F(c.select(x, y)),
                (Dyn::F(x), Dyn::F(y)) => Dyn::F(select(c, x, y)),
                (Dyn::I(x), Dyn::I(y)) => Dyn::I(select(c, x, y)),
                (Dyn::U(x), Dyn::U(y)) => Dyn::U(select(c, &x, &y)),
                (Dyn::B(x), Dyn::B(y)) => Dyn::B(select(c, x, y)),
                (Dyn::D(x), Dyn::D(y)) if method => Dyn::D(c.select(x, y)),
                (Dyn::D(x), Dyn::D(y)) => Dyn::D(select(c, x, y)),
                (Dyn::L(x), Dyn::L(y)) => Dyn::L(select(c, &x, &y)),
                (Dyn::Q(x), Dyn::Q(y)) => Dyn::Q(select(c, x, y)),
                _ => panic!("generator bug: select branch types"),
            }
        }
        Node::Cast(x) => {
            let x = build(x, cx);
            macro_rules! to {
                ($t:ty) => {
                    match x {
                        Dyn::F(x) => x.cast::<$t>(),
                        Dyn::I(x) => x.cast::<$t>(),
                        Dyn::U(x) => x.cast::<$t>(),
                        Dyn::B(x) => x.cast::<$t>(),
                        Dyn::D(x) => x.cast::<$t>(),
                        Dyn::L(x) => x.cast::<$t>(),
                        Dyn::Q(x) => x.cast::<$t>(),
                    }
                };
            }
            match a.ty {
                Ty::F => Dyn::F(to!(f32)),
                Ty::I => Dyn::I(to!(i32)),
                Ty::U => Dyn::U(to!(u32)),
                Ty::D => Dyn::D(to!(f64)),
                Ty::L => Dyn::L(to!(i64)),
                Ty::Q => Dyn::Q(to!(u64)),
                Ty::B => panic!("generator bug: cast to bool"),
            }
        }
        Node::MulAdd(x, y, z) => match (build(x, cx), build(y, cx), build(z, cx)) {
            (Dyn::F(x), Dyn::F(y), Dyn::F(z)) => Dyn::F(x.mul_add(y, z)),
            (Dyn::I(x), Dyn::I(y), Dyn::I(z)) => Dyn::I(x.mul_add(y, z)),
            (Dyn::U(x), Dyn::U(y), Dyn::U(z)) => Dyn::U(x.mul_add(y, z)),
            (Dyn::D(x), Dyn::D(y), Dyn::D(z)) => Dyn::D(x.mul_add(y, z)),
            (Dyn::L(x), Dyn::L(y), Dyn::L(z)) => Dyn::L(x.mul_add(y, z)),
            (Dyn::Q(x), Dyn::Q(y), Dyn::Q(z)) => Dyn::Q(x.mul_add(y, z)),
            _ => panic!("generator bug: mul_add types"),
        },
        Node::Clamp(x, lo, hi) => {
            let x = build(x, cx);
            match (x, lo.as_lit(), hi.as_lit()) {
                (Dyn::F(x), Some(Lit::F(l)), Some(Lit::F(h))) => Dyn::F(x.clamp(l, h)),
                (Dyn::I(x), Some(Lit::I(l)), Some(Lit::I(h))) => Dyn::I(x.clamp(l, h)),
                (Dyn::U(x), Some(Lit::U(l)), Some(Lit::U(h))) => Dyn::U(x.clamp(l, h)),
                (Dyn::D(x), Some(Lit::D(l)), Some(Lit::D(h))) => Dyn::D(x.clamp(l, h)),
                (Dyn::L(x), Some(Lit::L(l)), Some(Lit::L(h))) => Dyn::L(x.clamp(l, h)),
                (Dyn::Q(x), Some(Lit::Q(l)), Some(Lit::Q(h))) => Dyn::Q(x.clamp(l, h)),
                (x, _, _) => match (x, build(lo, cx), build(hi, cx)) {
                    (Dyn::F(x), Dyn::F(l), Dyn::F(h)) => Dyn::F(x.clamp(l, h)),
                    (Dyn::I(x), Dyn::I(l), Dyn::I(h)) => Dyn::I(x.clamp(l, h)),
                    (Dyn::U(x), Dyn::U(l), Dyn::U(h)) => Dyn::U(x.clamp(&l, &h)),
                    (Dyn::D(x), Dyn::D(l), Dyn::D(h)) => Dyn::D(x.clamp(l, h)),
                    (Dyn::L(x), Dyn::L(l), Dyn::L(h)) => Dyn::L(x.clamp(&l, &h)),
                    (Dyn::Q(x), Dyn::Q(l), Dyn::Q(h)) => Dyn::Q(x.clamp(l, h)),
                    _ => panic!("generator bug: clamp types"),
                },
            }
        }
        Node::Fold { count, init, body } => {
            let init = build(init, cx);
            macro_rules! fold_as {
                ($v:ident, $init:expr) => {{
                    Dyn::$v(fold(*count, $init, |acc, i| {
                        cx.folds.push((Dyn::$v(acc), i));
                        let out = build(body, cx);
                        cx.folds.pop();
                        match out {
                            Dyn::$v(e) => e,
                            _ => panic!("generator bug: fold body type"),
                        }
                    }))
                }};
            }
            match init {
                Dyn::F(e) => fold_as!(F, e),
                Dyn::I(e) => fold_as!(I, e),
                Dyn::U(e) => fold_as!(U, e),
                Dyn::B(e) => fold_as!(B, e),
                Dyn::D(e) => fold_as!(D, e),
                Dyn::L(e) => fold_as!(L, e),
                Dyn::Q(e) => fold_as!(Q, e),
            }
        }
    }
}

/// A float function of `x`, f32 or f64.
fn float_fn<T: Float>(op: Un, x: Expr<T>) -> Expr<T> {
    match op {
        Un::Sqrt => x.sqrt(),
        Un::Sin => x.sin(),
        Un::Cos => x.cos(),
        Un::Tan => x.tan(),
        Un::Exp => x.exp(),
        Un::Exp2 => x.exp2(),
        Un::Ln => x.ln(),
        Un::Log2 => x.log2(),
        Un::Floor => x.floor(),
        Un::Ceil => x.ceil(),
        Un::Round => x.round(),
        Un::Fract => x.fract(),
        op => panic!("generator bug: {op:?} on {}", std::any::type_name::<T>()),
    }
}

fn build_bin(op: Bin, form: Form, x: &Ast, y: &Ast, cx: &mut Cx) -> Dyn {
    use Dyn as D;
    use Lit as L;
    match op {
        Bin::Add | Bin::Sub | Bin::Mul | Bin::Div | Bin::Rem => match form {
            Form::EE => match (build(x, cx), build(y, cx)) {
                (D::F(a), D::F(b)) => D::F(arith!(op, a, b)),
                (D::I(a), D::I(b)) => D::I(arith!(op, &a, &b)),
                (D::U(a), D::U(b)) => D::U(arith!(op, a, &b)),
                (D::D(a), D::D(b)) => D::D(arith!(op, a, &b)),
                (D::L(a), D::L(b)) => D::L(arith!(op, &a, b)),
                (D::Q(a), D::Q(b)) => D::Q(arith!(op, a, b)),
                _ => panic!("generator bug: arithmetic types"),
            },
            Form::EN => match (build(x, cx), lit_of(y)) {
                (D::F(a), L::F(b)) => D::F(arith!(op, a, b)),
                (D::I(a), L::I(b)) => D::I(arith!(op, &a, b)),
                (D::U(a), L::U(b)) => D::U(arith!(op, a, b)),
                (D::D(a), L::D(b)) => D::D(arith!(op, &a, b)),
                (D::L(a), L::L(b)) => D::L(arith!(op, a, b)),
                (D::Q(a), L::Q(b)) => D::Q(arith!(op, a, b)),
                _ => panic!("generator bug: arithmetic types"),
            },
            Form::NE => match (lit_of(x), build(y, cx)) {
                (L::F(a), D::F(b)) => D::F(arith!(op, a, b)),
                (L::I(a), D::I(b)) => D::I(arith!(op, a, &b)),
                (L::U(a), D::U(b)) => D::U(arith!(op, a, b)),
                (L::D(a), D::D(b)) => D::D(arith!(op, a, b)),
                (L::L(a), D::L(b)) => D::L(arith!(op, a, &b)),
                (L::Q(a), D::Q(b)) => D::Q(arith!(op, a, b)),
                _ => panic!("generator bug: arithmetic types"),
            },
        },
        Bin::And | Bin::Or if x.ty == Ty::B => match (build(x, cx), build(y, cx)) {
            (D::B(a), D::B(b)) if op == Bin::And => D::B(a.and(b)),
            (D::B(a), D::B(b)) => D::B(a.or(b)),
            _ => panic!("generator bug: logic types"),
        },
        Bin::And | Bin::Or | Bin::Xor => match form {
            Form::EE => match (build(x, cx), build(y, cx)) {
                (D::I(a), D::I(b)) => D::I(bits!(op, a, b)),
                (D::U(a), D::U(b)) => D::U(bits!(op, &a, &b)),
                (D::L(a), D::L(b)) => D::L(bits!(op, a, &b)),
                (D::Q(a), D::Q(b)) => D::Q(bits!(op, &a, b)),
                _ => panic!("generator bug: bitwise types"),
            },
            Form::EN => match (build(x, cx), lit_of(y)) {
                (D::I(a), L::I(b)) => D::I(bits!(op, a, b)),
                (D::U(a), L::U(b)) => D::U(bits!(op, &a, b)),
                (D::L(a), L::L(b)) => D::L(bits!(op, &a, b)),
                (D::Q(a), L::Q(b)) => D::Q(bits!(op, a, b)),
                _ => panic!("generator bug: bitwise types"),
            },
            Form::NE => match (lit_of(x), build(y, cx)) {
                (L::I(a), D::I(b)) => D::I(bits!(op, a, b)),
                (L::U(a), D::U(b)) => D::U(bits!(op, a, &b)),
                (L::L(a), D::L(b)) => D::L(bits!(op, a, &b)),
                (L::Q(a), D::Q(b)) => D::Q(bits!(op, a, b)),
                _ => panic!("generator bug: bitwise types"),
            },
        },
        Bin::Shl | Bin::Shr => {
            macro_rules! shift {
                ($a:expr, $s:expr) => {
                    if op == Bin::Shl {
                        $a << $s
                    } else {
                        $a >> $s
                    }
                };
            }
            match form {
                Form::EN => match (build(x, cx), lit_of(y)) {
                    (D::I(a), L::U(s)) => D::I(shift!(a, s)),
                    (D::U(a), L::U(s)) => D::U(shift!(&a, s)),
                    (D::L(a), L::U(s)) => D::L(shift!(a, s)),
                    (D::Q(a), L::U(s)) => D::Q(shift!(&a, s)),
                    _ => panic!("generator bug: shift types"),
                },
                _ => match (build(x, cx), build(y, cx)) {
                    (D::I(a), D::U(s)) => D::I(shift!(a, s)),
                    (D::U(a), D::U(s)) => D::U(shift!(a, &s)),
                    (D::L(a), D::U(s)) => D::L(shift!(&a, &s)),
                    (D::Q(a), D::U(s)) => D::Q(shift!(a, s)),
                    _ => panic!("generator bug: shift types"),
                },
            }
        }
        Bin::Pow => match form {
            Form::EN => match (build(x, cx), lit_of(y)) {
                (D::F(a), L::F(b)) => D::F(a.pow(b)),
                (D::D(a), L::D(b)) => D::D(a.pow(b)),
                _ => panic!("generator bug: pow types"),
            },
            _ => match (build(x, cx), build(y, cx)) {
                (D::F(a), D::F(b)) => D::F(a.pow(b)),
                (D::D(a), D::D(b)) => D::D(a.pow(b)),
                _ => panic!("generator bug: pow types"),
            },
        },
        _ => {
            // min, max and comparisons: methods taking an Expr or a number
            let a = build(x, cx);
            match form {
                Form::EN => match (a, lit_of(y)) {
                    (D::F(a), L::F(b)) => method!(op, a, b, D::F),
                    (D::I(a), L::I(b)) => method!(op, a, b, D::I),
                    (D::U(a), L::U(b)) => method!(op, a, b, D::U),
                    (D::D(a), L::D(b)) => method!(op, a, b, D::D),
                    (D::L(a), L::L(b)) => method!(op, a, b, D::L),
                    (D::Q(a), L::Q(b)) => method!(op, a, b, D::Q),
                    _ => panic!("generator bug: method types"),
                },
                _ => match (a, build(y, cx)) {
                    (D::F(a), D::F(b)) => method!(op, a, b, D::F),
                    (D::I(a), D::I(b)) => method!(op, a, &b, D::I),
                    (D::U(a), D::U(b)) => method!(op, a, b, D::U),
                    (D::D(a), D::D(b)) => method!(op, a, &b, D::D),
                    (D::L(a), D::L(b)) => method!(op, a, b, D::L),
                    (D::Q(a), D::Q(b)) => method!(op, a, &b, D::Q),
                    _ => panic!("generator bug: method types"),
                },
            }
        }
    }
}
