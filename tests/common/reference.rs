//! The reference evaluator: what a kernel's AST must compute, element by element.
//!
//! Integers are computed exactly, with WGSL's rules (the crate's `src/kernel/ops.rs`).
//! Floats are computed in f64 together with a bound `e` on how far any conforming
//! device's f32 result may be from the value: the bound is propagated through every
//! operation (interval style: exact images for monotone functions, Lipschitz constants
//! otherwise) and each operation adds its own rounding allowance from one [`Table`] per
//! kind of device. Where an operation is discontinuous (comparisons, floor/ceil/round,
//! float-to-int casts, fract, trunc in %) and an operand's interval touches the
//! discontinuity, or where a device's result is unspecified (WGSL: NaN and infinities,
//! min/max of NaN, sin/cos outside [-pi, pi], division by a tiny divisor), the result
//! is `Unknown`: the element is skipped, and counted.
//!
//! f64, i64 and u64 values (kernels that compute in 64 bits between 32-bit inputs and
//! results) follow the same rules: 64-bit integers exactly, f64 with a second table
//! per device ([`Table::wide`]). An f64 operation is computed in f64 too, but the
//! reference also finds its own rounding error exactly (two-sum for `+ -`, an fma for
//! `*`, the remainder of `/` and `sqrt`), so an exact result is known to be exact and
//! an inexact one is bounded by the device's allowance plus the reference's own.

use super::gen::{Ast, Bin, Lit, Node, Un};

/// The rounding allowance of one operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Allow {
    /// Correctly rounded: exact when the result is representable, else 1 ULP (the
    /// half ULP of correct rounding, with slack for our ULP estimate).
    Rounded,
    /// This many ULPs of the result.
    Ulp(f64),
    /// `a + b * |x|` ULPs of the result, `x` the argument (WGSL's exp and exp2).
    UlpPlusArg(f64, f64),
    /// An absolute error on the argument range `[lo, hi]`; unspecified outside (WGSL's
    /// sin and cos).
    AbsOn { abs: f64, lo: f64, hi: f64 },
    /// An absolute error on `[lo, hi]`, `ulp` ULPs outside (WGSL's log and log2).
    AbsOnElseUlp {
        abs: f64,
        lo: f64,
        hi: f64,
        ulp: f64,
    },
    /// Computed by composing other operations, as WGSL defines it.
    Inherited,
}

/// Per-operation rounding allowances for one kind of device. Operations not listed are
/// exact on every device: neg, abs, floor, ceil, round, trunc (inside casts and %),
/// min, max, clamp, select, and the comparisons; `%` (x - y*trunc(x/y)), `fract`
/// (x - floor(x)), `mul_add` (x*y + z, fused or not) are always inherited from their
/// definitions.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    pub add: Allow,
    pub sub: Allow,
    pub mul: Allow,
    pub div: Allow,
    /// `|divisor|` range outside which division is unspecified (WGSL: 2^-126..2^126).
    pub div_range: (f64, f64),
    pub sqrt: Allow,
    pub sin: Allow,
    pub cos: Allow,
    pub tan: Allow,
    pub exp: Allow,
    pub exp2: Allow,
    pub ln: Allow,
    pub log2: Allow,
    pub pow: Allow,
    pub int_to_float: Allow,
    /// Absolute error every operation may add: a subnormal ULP, or the smallest normal
    /// on a device that flushes subnormals to zero.
    pub subnormal: f64,
    /// Whether NaN and infinities are defined (IEEE) on this device. WGSL lets an
    /// implementation assume they never occur, so on a GPU they make a result unknown.
    pub nonfinite: bool,
    /// Whether float `clamp` is always `min(max(x, lo), hi)`, even for `lo > hi` (the
    /// crate's CPU evaluator); WGSL also allows the median of the three.
    pub clamp_is_min_max: bool,
    /// Whether the device's shader compiler may reassociate a chain of float additions
    /// and subtractions. The SPIR-V, MSL and HLSL that wgpu emits carry no "exact" or
    /// NoContraction marks (WGSL has no way to ask for them), and drivers use that:
    /// Mesa's lavapipe computed `0.1 + (x + y)` as `(0.1 + x) + y`, 0.5999999 instead of
    /// 0.6 for x = 2, y = -1.5 (found by the proptest run with seed
    /// 1796217717135101526), and `(x % 18) + 0.5` as `(x + 0.5) - 18 * trunc(x / 18)`
    /// through `%`'s formula and a one-trip fold (seed 1796217751749217296). A chain of
    /// k terms summed in any order is within (k - 1) * 2^-24 * sum |term| of the exact
    /// sum; every float carries its chain's terms and magnitude (`FV::Num`'s `k` and
    /// `m`), and a sum on such a device allows (k - 1) ULPs of `m` once, in place of
    /// its operands' allowances.
    pub reassociates: bool,
    /// 32 for an f32 table, 64 for an f64 one: the precision of [`Table::ulp`], and how
    /// a result's exactness is known (f32: the f64 value is representable in f32; f64:
    /// the reference's own rounding error, found exactly, is zero).
    pub bits: u32,
    /// The table for this device's f64 operations (`None` on an f64 table).
    pub wide: Option<&'static Table>,
}

impl Table {
    /// An upper bound on one ULP at magnitude `m` in this table's precision (at most
    /// twice the true ULP).
    pub fn ulp(&self, m: f64) -> f64 {
        if self.bits == 64 {
            (m.abs() * F64_EPS).max(F64_MIN_SUB)
        } else {
            ulp(m)
        }
    }

    fn big(&self) -> f64 {
        if self.bits == 64 {
            1e300
        } else {
            BIG
        }
    }
}

/// The table for f64 operations on the device of `t`.
fn wide(t: &Table) -> &Table {
    t.wide.unwrap_or(t)
}

/// 2^-52: f64's ULP at 1.
const F64_EPS: f64 = f64::EPSILON;
/// 2^-1074, the least f64 subnormal.
const F64_MIN_SUB: f64 = f64::from_bits(1);
const F64_MIN_NORMAL: f64 = f64::MIN_POSITIVE;
/// Relative slack on every inexact f64 result for the reference's own arithmetic on
/// bounds (the images `f(v ± e)` of monotone functions, `e` itself): 4 ULPs.
const F64_FUDGE: f64 = 4.0 * F64_EPS;

const TWO_M11: f64 = 1.0 / 2048.0;
const TWO_M21: f64 = 1.0 / 2_097_152.0;

/// The CPU device: Rust's f32 arithmetic (IEEE, correctly rounded) and the platform libm
/// (glibc: under 1 ULP; we allow 4).
pub const CPU: Table = Table {
    wide: Some(&CPU64),
    ..CPU32
};

/// [`CPU`] without its f64 table.
const CPU32: Table = Table {
    name: "cpu",
    add: Allow::Rounded,
    sub: Allow::Rounded,
    mul: Allow::Rounded,
    div: Allow::Rounded,
    div_range: (0.0, f64::INFINITY),
    sqrt: Allow::Rounded,
    sin: Allow::Ulp(4.0),
    cos: Allow::Ulp(4.0),
    tan: Allow::Ulp(4.0),
    exp: Allow::Ulp(4.0),
    exp2: Allow::Ulp(4.0),
    ln: Allow::Ulp(4.0),
    log2: Allow::Ulp(4.0),
    // powf is within 1 ULP; the composition exp2(y * log2(x)) bounds it.
    pow: Allow::Inherited,
    int_to_float: Allow::Rounded,
    subnormal: 1.401_298_464_324_817e-45, // 2^-149
    nonfinite: true,
    clamp_is_min_max: true,
    reassociates: false,
    bits: 32,
    wide: None,
};

/// A GPU: WGSL's accuracy table (https://www.w3.org/TR/WGSL/#floating-point-accuracy).
pub const GPU: Table = Table {
    wide: Some(&GPU64),
    ..GPU32
};

/// [`GPU`] without its f64 table.
const GPU32: Table = Table {
    name: "gpu",
    add: Allow::Rounded,
    sub: Allow::Rounded,
    mul: Allow::Rounded,
    div: Allow::Ulp(2.5),
    div_range: (1.175_494_350_822_287_5e-38, 8.507_059_173_023_462e37), // 2^-126, 2^126
    // inherited from 1.0 / inverseSqrt(x): 2 ULP, then a 2.5 ULP division
    sqrt: Allow::Ulp(4.5),
    sin: Allow::AbsOn {
        abs: TWO_M11,
        lo: -std::f64::consts::PI,
        hi: std::f64::consts::PI,
    },
    cos: Allow::AbsOn {
        abs: TWO_M11,
        lo: -std::f64::consts::PI,
        hi: std::f64::consts::PI,
    },
    // inherited from sin(x) / cos(x)
    tan: Allow::Inherited,
    exp: Allow::UlpPlusArg(3.0, 2.0),
    exp2: Allow::UlpPlusArg(3.0, 2.0),
    ln: Allow::AbsOnElseUlp {
        abs: TWO_M21,
        lo: 0.5,
        hi: 2.0,
        ulp: 3.0,
    },
    log2: Allow::AbsOnElseUlp {
        abs: TWO_M21,
        lo: 0.5,
        hi: 2.0,
        ulp: 3.0,
    },
    // inherited from exp2(y * log2(x))
    pow: Allow::Inherited,
    int_to_float: Allow::Rounded,
    subnormal: 1.175_494_350_822_287_5e-38, // 2^-126: subnormals may be flushed
    nonfinite: false,
    clamp_is_min_max: false,
    reassociates: true,
    bits: 32,
    wide: None,
};

/// The CPU's f64: Rust's f64 arithmetic (IEEE, correctly rounded, so `+ - * /` and
/// `sqrt` are exact whenever the result is representable) and the platform libm for
/// the rest (glibc: under 1 ULP; we allow 4, as for f32). The reference computes each
/// operation in f64 too, but knows its own rounding error exactly (two-sum, an fma
/// for products, the remainder of a quotient or root), so it is more exact than f64
/// where that matters: an exact result is exact, an inexact one is bounded by the
/// device's rounding plus the reference's.
pub const CPU64: Table = Table {
    name: "cpu f64",
    div_range: (0.0, f64::INFINITY),
    subnormal: F64_MIN_SUB,
    bits: 64,
    wide: None,
    ..CPU32
};

/// A GPU's f64 (Vulkan's `Float64`, which wgpu's `SHADER_F64` asks for). Vulkan
/// requires correctly rounded `+ - *` and conversions; it allows `/` 2.5 ULP (for
/// divisors in 2^-1022..2^1022, by analogy with f32's range) and gives `sqrt` as
/// `1 / inverseSqrt` (4.5 ULP), as for f32; it may flush subnormals, and WGSL's rules
/// for NaN, infinities, `clamp` and reassociation are those of f32. The transcendental
/// functions never run on a GPU in f64 (`Device::computes` refuses a kernel with
/// one): one that reaches it was folded into a constant on the host, by Rust's libm,
/// so they have the CPU's allowances. Lavapipe measures better: see [`GPU64_EXACT`].
pub const GPU64: Table = Table {
    name: "gpu f64",
    div: Allow::Ulp(2.5),
    div_range: (F64_MIN_NORMAL, f64::from_bits(2045 << 52)), // 2^-1022, 2^1022
    sqrt: Allow::Ulp(4.5),
    subnormal: F64_MIN_NORMAL,
    nonfinite: GPU32.nonfinite,
    clamp_is_min_max: GPU32.clamp_is_min_max,
    reassociates: GPU32.reassociates,
    ..CPU64
};

/// [`GPU64`] with `/` and `sqrt` correctly rounded, as measured on Mesa's lavapipe
/// (llvmpipe: LLVM's `fdiv` and `llvm.sqrt` on x86-64, bit for bit what Rust gives;
/// `tests/parity_f64.rs` checks it on every run).
pub const GPU64_EXACT: Table = Table {
    name: "gpu f64 (correctly rounded / and sqrt)",
    div: Allow::Rounded,
    sqrt: Allow::Rounded,
    ..GPU64
};

/// [`GPU`] whose f64 operations follow [`GPU64_EXACT`].
pub const GPU_F64_EXACT: Table = Table {
    wide: Some(&GPU64_EXACT),
    ..GPU
};

/// A float's reference: a value and a bound, or a non-finite value, or unknown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FV {
    /// Any conforming device gives a finite result within `e` of `v`. The value is a
    /// sum of `k` terms (1 when it is no sum) whose magnitudes add up to `m`, for the
    /// allowance of a device that may reassociate the sum ([`Table::reassociates`]).
    Num {
        v: f64,
        e: f64,
        m: f64,
        k: u32,
    },
    Nan,
    /// Infinity, negative when `true`.
    Inf(bool),
    Unknown,
}

/// A reference value of any type; `None` is unknown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum V {
    F(FV),
    I(Option<i32>),
    U(Option<u32>),
    B(Option<bool>),
    /// An f64, bounded in the device's f64 table ([`Table::wide`]).
    D(FV),
    L(Option<i64>),
    Q(Option<u64>),
}

/// Magnitudes above this are too close to f32 overflow to predict.
const BIG: f64 = 1e37;
const MIN_NORMAL: f64 = 1.175_494_350_822_287_5e-38;

/// An upper bound on one f32 ULP at magnitude `m` (at most twice the true ULP).
pub fn ulp(m: f64) -> f64 {
    (m.abs() * (1.0 / 8_388_608.0)).max(1.401_298_464_324_817e-45)
}

fn representable(v: f64) -> bool {
    v == 0.0 || ((v as f32) as f64 == v && v.abs() >= MIN_NORMAL && v.abs() <= f32::MAX as f64)
}

/// A value within `e` of `v` that is no sum.
fn fnum(v: f64, e: f64) -> FV {
    FV::Num {
        v,
        e,
        m: v.abs() + e,
        k: 1,
    }
}

fn exact(v: f64) -> FV {
    fnum(v, 0.0)
}

fn is_exact_zero(x: FV) -> bool {
    matches!(x, FV::Num { v, e, .. } if v == 0.0 && e == 0.0)
}

impl FV {
    fn interval(self) -> Option<(f64, f64)> {
        match self {
            FV::Num { v, e, .. } => Some((v - e, v + e)),
            _ => None,
        }
    }
}

/// The evaluation context of one element.
pub struct Env<'a> {
    pub table: &'a Table,
    pub inputs: [V; 2],
    pub index: u32,
    folds: Vec<(V, u32)>,
}

impl<'a> Env<'a> {
    pub fn new(table: &'a Table, inputs: [V; 2], index: u32) -> Self {
        Env {
            table,
            inputs,
            index,
            folds: Vec::new(),
        }
    }
}

/// The reference value of `ast` for one element.
pub fn eval(ast: &Ast, env: &mut Env<'_>) -> V {
    let t = env.table;
    match &ast.node {
        Node::Input(k) => env.inputs[*k as usize],
        Node::Index => V::U(Some(env.index)),
        Node::Lit(l) => match *l {
            Lit::F(x) => V::F(if x.is_finite() {
                exact(x as f64)
            } else {
                FV::Unknown
            }),
            Lit::I(x) => V::I(Some(x)),
            Lit::U(x) => V::U(Some(x)),
            Lit::B(x) => V::B(Some(x)),
            Lit::D(x) => V::D(if x.is_finite() { exact(x) } else { FV::Unknown }),
            Lit::L(x) => V::L(Some(x)),
            Lit::Q(x) => V::Q(Some(x)),
        },
        Node::Acc(l) => env.folds[*l].0,
        Node::Counter(l) => V::U(Some(env.folds[*l].1)),
        Node::Un(op, a) => {
            let a = eval(a, env);
            unary(t, *op, a)
        }
        Node::Bin(op, _, a, b) => {
            let (a, b) = (eval(a, env), eval(b, env));
            binary(t, *op, a, b)
        }
        Node::Select(c, a, b) => {
            let (c, a, b) = (eval(c, env), eval(a, env), eval(b, env));
            match c {
                V::B(Some(true)) => a,
                V::B(Some(false)) => b,
                _ => merge(a, b),
            }
        }
        Node::Cast(a) => {
            let a = eval(a, env);
            cast(t, a, ast.ty)
        }
        Node::MulAdd(a, b, c) => {
            let (a, b, c) = (eval(a, env), eval(b, env), eval(c, env));
            match (a, b, c) {
                (V::F(a), V::F(b), V::F(c)) => V::F(add(t, t.add, mul(t, a, b), c)),
                (V::D(a), V::D(b), V::D(c)) => {
                    let w = wide(t);
                    V::D(add(w, w.add, mul(w, a, b), c))
                }
                (V::I(a), V::I(b), V::I(c)) => V::I(int_mul_add(a, b, c)),
                (V::U(a), V::U(b), V::U(c)) => V::U(int_mul_add(a, b, c)),
                (V::L(a), V::L(b), V::L(c)) => V::L(int_mul_add(a, b, c)),
                (V::Q(a), V::Q(b), V::Q(c)) => V::Q(int_mul_add(a, b, c)),
                _ => panic!("reference: mul_add types"),
            }
        }
        Node::Clamp(x, lo, hi) => {
            let (x, lo, hi) = (eval(x, env), eval(lo, env), eval(hi, env));
            match (x, lo, hi) {
                (V::F(x), V::F(lo), V::F(hi)) => V::F(clamp_f(t, x, lo, hi)),
                (V::D(x), V::D(lo), V::D(hi)) => V::D(clamp_f(wide(t), x, lo, hi)),
                (V::I(x), V::I(l), V::I(h)) => V::I(int_clamp(x, l, h)),
                (V::U(x), V::U(l), V::U(h)) => V::U(int_clamp(x, l, h)),
                (V::L(x), V::L(l), V::L(h)) => V::L(int_clamp(x, l, h)),
                (V::Q(x), V::Q(l), V::Q(h)) => V::Q(int_clamp(x, l, h)),
                _ => panic!("reference: clamp types"),
            }
        }
        Node::Fold { count, init, body } => {
            let mut acc = eval(init, env);
            for i in 0..*count {
                env.folds.push((acc, i));
                acc = eval(body, env);
                env.folds.pop();
            }
            acc
        }
    }
}

/// The value either branch of a select on an unknown condition may give.
fn merge(a: V, b: V) -> V {
    match (a, b) {
        (V::D(x), V::D(y)) => match merge(V::F(x), V::F(y)) {
            V::F(r) => V::D(r),
            _ => unreachable!(),
        },
        (V::L(x), V::L(y)) => V::L(same(x, y)),
        (V::Q(x), V::Q(y)) => V::Q(same(x, y)),
        (V::F(FV::Num { v: va, e: ea, .. }), V::F(FV::Num { v: vb, e: eb, .. })) => {
            let lo = (va - ea).min(vb - eb);
            let hi = (va + ea).max(vb + eb);
            if a == b {
                a
            } else {
                // the midpoint, and a radius that reaches both ends after rounding
                // (found: a result equal to `lo` just outside `v - e` by one f64 ULP)
                let v = 0.5 * (lo + hi);
                let e = (v - lo).max(hi - v) * (1.0 + 4.0 * f64::EPSILON);
                V::F(fnum(v, e))
            }
        }
        (V::F(x), V::F(y)) => V::F(if x == y && x != FV::Unknown {
            x
        } else {
            FV::Unknown
        }),
        (V::I(x), V::I(y)) => V::I(same(x, y)),
        (V::U(x), V::U(y)) => V::U(same(x, y)),
        (V::B(x), V::B(y)) => V::B(same(x, y)),
        _ => panic!("reference: select branch types"),
    }
}

/// The value both branches give, or unknown.
fn same<T: PartialEq>(x: Option<T>, y: Option<T>) -> Option<T> {
    if x == y {
        x
    } else {
        None
    }
}

/// The result of an operation whose exact value is `v`, whose operands' errors
/// propagate to `e_prop`, and which adds `allow` of its own.
///
/// `rerr` bounds the reference's own rounding of `v` (0 when `v` is exact), in an f64
/// table; an f32 table computes in f64 far below its own precision and ignores it.
fn finish(t: &Table, v: f64, e_prop: f64, allow: Allow, arg: (f64, f64), rerr: f64) -> FV {
    if !v.is_finite() {
        return FV::Unknown;
    }
    let m = v.abs() + e_prop;
    if m > t.big() {
        return FV::Unknown;
    }
    let argmax = arg.0.abs().max(arg.1.abs());
    let wide = t.bits == 64;
    let own = match allow {
        Allow::Rounded => {
            let exact_here = if wide {
                rerr == 0.0 && (v == 0.0 || v.abs() >= F64_MIN_NORMAL)
            } else {
                representable(v)
            };
            if e_prop == 0.0 && exact_here {
                return exact(v);
            }
            t.ulp(m)
        }
        Allow::Ulp(k) => k * t.ulp(m),
        Allow::UlpPlusArg(a, b) => (a + b * argmax) * t.ulp(m),
        Allow::AbsOn { abs, lo, hi } => {
            if arg.0 < lo || arg.1 > hi {
                return FV::Unknown;
            }
            abs
        }
        Allow::AbsOnElseUlp {
            abs,
            lo,
            hi,
            ulp: k,
        } => {
            let inside = arg.0 >= lo && arg.1 <= hi;
            let outside = arg.1 < lo || arg.0 > hi;
            match (inside, outside) {
                (true, _) => abs,
                (_, true) => k * t.ulp(m),
                _ => abs + k * t.ulp(m),
            }
        }
        Allow::Inherited => panic!("reference: table entry is inherited; compose instead"),
    };
    if wide {
        let e = e_prop + own + rerr + t.subnormal + v.abs() * F64_FUDGE;
        return fnum(v, e * (1.0 + F64_FUDGE));
    }
    fnum(v, e_prop + own + t.subnormal + v.abs() * 1e-15)
}

/// The exact rounding error of `a + b` in f64 (Knuth's two-sum).
fn two_sum_err(a: f64, b: f64) -> f64 {
    let s = a + b;
    let bb = s - a;
    ((a - (s - bb)) + (b - bb)).abs()
}

/// The rounding error of `a * b` in f64, exact unless it underflows (the table's
/// subnormal allowance covers that).
fn two_prod_err(a: f64, b: f64) -> f64 {
    a.mul_add(b, -(a * b)).abs()
}

/// A bound on the rounding error of `q = a / b` in f64: 0 when the remainder
/// `a - q * b` (exact, by an fma) is 0, else half an ULP of `q` (with slack).
fn div_err(a: f64, b: f64, q: f64) -> f64 {
    if (-q).mul_add(b, a) == 0.0 {
        0.0
    } else {
        q.abs() * F64_EPS
    }
}

/// Two ULPs of a libm result (glibc's f64 functions are within 1).
fn libm_err(v: f64) -> f64 {
    2.0 * (v.abs() * F64_EPS).max(F64_MIN_SUB)
}

/// NaN in, NaN out (IEEE); an infinity or unknown operand gives unknown.
fn nonfinite_operand(t: &Table, xs: &[FV]) -> Option<FV> {
    if xs.contains(&FV::Nan) {
        return Some(if t.nonfinite { FV::Nan } else { FV::Unknown });
    }
    if xs.iter().any(|x| !matches!(x, FV::Num { .. })) {
        return Some(FV::Unknown);
    }
    None
}

/// A non-finite result: defined on the CPU, unknown on a GPU.
fn nonfinite_result(t: &Table, x: FV) -> FV {
    if t.nonfinite {
        x
    } else {
        FV::Unknown
    }
}

fn num(x: FV) -> (f64, f64) {
    match x {
        FV::Num { v, e, .. } => (v, e),
        _ => unreachable!(),
    }
}

fn add(t: &Table, allow: Allow, a: FV, b: FV) -> FV {
    if let Some(r) = nonfinite_operand(t, &[a, b]) {
        return r;
    }
    let ((va, ea), (vb, eb)) = (num(a), num(b));
    let rerr = two_sum_err(va, vb);
    if !t.reassociates {
        return finish(t, va + vb, ea + eb, allow, (0.0, 0.0), rerr);
    }
    // The bound of the order written, without the operands' own reassociation
    // allowances: the chain's one allowance replaces them.
    let (ea, eb) = ((ea - slack(t, a)).max(0.0), (eb - slack(t, b)).max(0.0));
    let r = finish(t, va + vb, ea + eb, allow, (0.0, 0.0), rerr);
    match (r, a, b) {
        (FV::Num { v, e, .. }, FV::Num { m: ma, k: ka, .. }, FV::Num { m: mb, k: kb, .. }) => {
            let (m, k) = (ma + mb, ka + kb);
            let e = e + slack(t, FV::Num { v, e, m, k });
            FV::Num { v, e, m, k }
        }
        _ => r,
    }
}

/// The allowance for summing a chain of `k` terms of total magnitude `m` in any order.
fn slack(t: &Table, x: FV) -> f64 {
    match x {
        FV::Num { m, k, .. } => f64::from(k - 1) * t.ulp(m),
        _ => 0.0,
    }
}

fn sub(t: &Table, a: FV, b: FV) -> FV {
    match b {
        FV::Num { v, e, m, k } => add(t, t.sub, a, FV::Num { v: -v, e, m, k }),
        _ => add(t, t.sub, a, b),
    }
}

fn mul(t: &Table, a: FV, b: FV) -> FV {
    if let Some(r) = nonfinite_operand(t, &[a, b]) {
        return r;
    }
    let ((va, ea), (vb, eb)) = (num(a), num(b));
    finish(
        t,
        va * vb,
        va.abs() * eb + vb.abs() * ea + ea * eb,
        t.mul,
        (0.0, 0.0),
        two_prod_err(va, vb),
    )
}

fn div(t: &Table, a: FV, b: FV) -> FV {
    if let Some(r) = nonfinite_operand(t, &[a, b]) {
        return r;
    }
    let ((va, ea), (vb, eb)) = (num(a), num(b));
    let (blo, bhi) = (vb.abs() - eb, vb.abs() + eb);
    if blo <= 0.0 || blo < t.div_range.0 || bhi > t.div_range.1 {
        return FV::Unknown;
    }
    let e = (ea * vb.abs() + va.abs() * eb) / (vb.abs() * blo);
    let q = va / vb;
    finish(t, q, e, t.div, (0.0, 0.0), div_err(va, vb, q))
}

/// A monotone step function of a float (floor, ceil, round, trunc): known when the
/// whole interval maps to one value.
fn step(x: FV, f: impl Fn(f64) -> f64) -> Option<f64> {
    let (v, e) = num(x);
    if e == 0.0 {
        return Some(f(v));
    }
    let (a, b) = (f(v - e), f(v + e));
    (a == b).then_some(a)
}

fn rem(t: &Table, a: FV, b: FV) -> FV {
    if let Some(r) = nonfinite_operand(t, &[a, b]) {
        return r;
    }
    if is_exact_zero(b) && t.nonfinite {
        // a - 0 * trunc(a / 0) = a - 0 * ±inf (or a - 0 * NaN) = NaN
        return FV::Nan;
    }
    let q = div(t, a, b);
    if !matches!(q, FV::Num { .. }) {
        return FV::Unknown;
    }
    match step(q, f64::trunc) {
        Some(tq) => sub(t, a, mul(t, b, exact(tq))),
        None => FV::Unknown,
    }
}

/// A monotone function on `[lo, hi]` inside its domain: the image's distance from f(v).
fn monotone(x: FV, f: impl Fn(f64) -> f64) -> (f64, f64, (f64, f64)) {
    let (v, e) = num(x);
    let fv = f(v);
    let (a, b) = (f(v - e), f(v + e));
    (fv, (fv - a).abs().max((b - fv).abs()), (v - e, v + e))
}

fn exp_like(t: &Table, allow: Allow, x: FV, f: fn(f64) -> f64) -> FV {
    if let Some(r) = nonfinite_operand(t, &[x]) {
        return r;
    }
    let (v, e, arg) = monotone(x, f);
    finish(t, v, e, allow, arg, libm_err(v))
}

fn log_like(t: &Table, allow: Allow, x: FV, f: fn(f64) -> f64) -> FV {
    if let Some(r) = nonfinite_operand(t, &[x]) {
        return r;
    }
    let (v, e) = num(x);
    if v + e < 0.0 {
        return nonfinite_result(t, FV::Nan);
    }
    if e == 0.0 && v == 0.0 {
        return nonfinite_result(t, FV::Inf(true));
    }
    if v - e <= 0.0 {
        return FV::Unknown;
    }
    let (fv, fe, arg) = monotone(x, f);
    finish(t, fv, fe, allow, arg, libm_err(fv))
}

fn sin_cos(t: &Table, allow: Allow, x: FV, f: fn(f64) -> f64) -> FV {
    if let Some(r) = nonfinite_operand(t, &[x]) {
        return r;
    }
    let (v, e) = num(x);
    finish(t, f(v), e.min(2.0), allow, (v - e, v + e), libm_err(f(v)))
}

fn tan(t: &Table, x: FV) -> FV {
    if t.tan == Allow::Inherited {
        return div(
            t,
            sin_cos(t, t.sin, x, f64::sin),
            sin_cos(t, t.cos, x, f64::cos),
        );
    }
    if let Some(r) = nonfinite_operand(t, &[x]) {
        return r;
    }
    let (v, e) = num(x);
    // monotone between poles: cos keeps its sign and the interval is narrower than pi
    let (c0, c1) = ((v - e).cos(), (v + e).cos());
    if c0 * c1 <= 0.0 || 2.0 * e >= std::f64::consts::PI || c0.abs().min(c1.abs()) < 1e-6 {
        return FV::Unknown;
    }
    let (fv, fe, arg) = monotone(x, f64::tan);
    finish(t, fv, fe, t.tan, arg, libm_err(fv))
}

fn sqrt(t: &Table, x: FV) -> FV {
    if let Some(r) = nonfinite_operand(t, &[x]) {
        return r;
    }
    let (v, e) = num(x);
    if v + e < 0.0 {
        return nonfinite_result(t, FV::Nan);
    }
    if e == 0.0 && v == 0.0 {
        // sqrt(±0) = ±0 on the CPU; a GPU computes 1 / inverseSqrt(0)
        return if t.nonfinite { exact(v) } else { FV::Unknown };
    }
    if v - e <= 0.0 {
        return FV::Unknown;
    }
    let (fv, fe, arg) = monotone(x, f64::sqrt);
    // the root's own rounding: 0 when its square is exactly the argument
    let rerr = if (-fv).mul_add(fv, v) == 0.0 {
        0.0
    } else {
        fv * F64_EPS
    };
    finish(t, fv, fe, t.sqrt, arg, rerr)
}

fn pow(t: &Table, x: FV, y: FV) -> FV {
    // pow(NaN, 0) and pow(1, NaN) are 1 in libm; keep out of it
    if !matches!((x, y), (FV::Num { .. }, FV::Num { .. })) {
        return FV::Unknown;
    }
    let (v, e) = num(x);
    if v + e < 0.0 {
        return nonfinite_result(t, FV::Nan);
    }
    if v - e <= 0.0 {
        return FV::Unknown;
    }
    assert_eq!(
        t.pow,
        Allow::Inherited,
        "pow is computed as exp2(y * log2(x))"
    );
    let l = log_like(t, t.log2, x, f64::log2);
    exp_like(t, t.exp2, mul(t, y, l), f64::exp2)
}

fn min_max(a: FV, b: FV, max: bool) -> FV {
    match (a, b) {
        (FV::Num { v: va, e: ea, .. }, FV::Num { v: vb, e: eb, .. }) => {
            // decided: the one operand, with its own bound
            let (lo, hi) = if va - ea > vb + eb {
                (b, a)
            } else if vb - eb > va + ea {
                (a, b)
            } else {
                // min and max are 1-Lipschitz in each operand
                return fnum(if max { va.max(vb) } else { va.min(vb) }, ea.max(eb));
            };
            if max {
                hi
            } else {
                lo
            }
        }
        // min/max with a NaN may return either operand
        _ => FV::Unknown,
    }
}

fn clamp_f(t: &Table, x: FV, lo: FV, hi: FV) -> FV {
    match (lo.interval(), hi.interval()) {
        // WGSL: min(max(x, lo), hi) or the median; the same when lo <= hi
        (Some((_, lo_hi)), Some((hi_lo, _))) if lo_hi <= hi_lo || t.clamp_is_min_max => {
            min_max(min_max(x, lo, true), hi, false)
        }
        _ => FV::Unknown,
    }
}

/// The comparison `op` of two operands ordered `o`.
fn decide(op: Bin, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        Bin::Lt => o == Less,
        Bin::Le => o != Greater,
        Bin::Gt => o == Greater,
        Bin::Ge => o != Less,
        Bin::Eq => o == Equal,
        _ => o != Equal,
    }
}

fn cmp(t: &Table, op: Bin, a: FV, b: FV) -> Option<bool> {
    use std::cmp::Ordering::*;
    let decide = |o| decide(op, o);
    match (a, b) {
        (FV::Nan, _) | (_, FV::Nan) => t.nonfinite.then_some(op == Bin::Ne),
        (FV::Unknown, _) | (_, FV::Unknown) => None,
        (FV::Inf(na), FV::Inf(nb)) => Some(decide(nb.cmp(&na))),
        (FV::Inf(n), _) => Some(decide(if n { Less } else { Greater })),
        (_, FV::Inf(n)) => Some(decide(if n { Greater } else { Less })),
        (FV::Num { v: va, e: ea, .. }, FV::Num { v: vb, e: eb, .. }) => {
            if ea == 0.0 && eb == 0.0 {
                return Some(decide(va.partial_cmp(&vb)?));
            }
            if va + ea < vb - eb {
                Some(decide(Less))
            } else if va - ea > vb + eb {
                Some(decide(Greater))
            } else {
                None
            }
        }
    }
}

fn unary(t: &Table, op: Un, a: V) -> V {
    match a {
        V::F(x) => V::F(unary_f(t, op, x)),
        V::D(x) => V::D(unary_f(wide(t), op, x)),
        V::I(x) => V::I(x.map(|x| x.un(op))),
        V::U(x) => V::U(x.map(|x| x.un(op))),
        V::L(x) => V::L(x.map(|x| x.un(op))),
        V::Q(x) => V::Q(x.map(|x| x.un(op))),
        V::B(x) => V::B(x.map(|x| match op {
            Un::Not => !x,
            _ => panic!("reference: {op:?} on bool"),
        })),
    }
}

/// A float operation, in the precision of `t`.
fn unary_f(t: &Table, op: Un, x: FV) -> FV {
    match op {
        // a negated sum is still a sum (of the negated terms) to a compiler
        Un::Neg => match x {
            FV::Num { v, e, m, k } => FV::Num { v: -v, e, m, k },
            FV::Inf(n) => FV::Inf(!n),
            other => other,
        },
        Un::Abs => match x {
            FV::Num { v, e, .. } => fnum(v.abs(), e),
            FV::Inf(_) => FV::Inf(false),
            other => other,
        },
        Un::Sqrt => sqrt(t, x),
        Un::Sin => sin_cos(t, t.sin, x, f64::sin),
        Un::Cos => sin_cos(t, t.cos, x, f64::cos),
        Un::Tan => tan(t, x),
        Un::Exp => exp_like(t, t.exp, x, f64::exp),
        Un::Exp2 => exp_like(t, t.exp2, x, f64::exp2),
        Un::Ln => log_like(t, t.ln, x, f64::ln),
        Un::Log2 => log_like(t, t.log2, x, f64::log2),
        Un::Floor | Un::Ceil | Un::Round | Un::Fract => {
            if let Some(r) = nonfinite_operand(t, &[x]) {
                return r;
            }
            let f: fn(f64) -> f64 = match op {
                Un::Ceil => f64::ceil,
                Un::Round => f64::round_ties_even,
                _ => f64::floor,
            };
            match step(x, f) {
                None => FV::Unknown,
                Some(r) if op == Un::Fract => sub(t, x, exact(r)),
                Some(r) => exact(r),
            }
        }
        Un::Not => panic!("reference: ! on a float"),
    }
}

/// The integer types, with WGSL's rules: wrapping arithmetic, `x / 0 == x`,
/// `MIN / -1 == MIN`, `x % 0 == 0`, `MIN % -1 == 0`, shift amounts masked to the width
/// (`>>` arithmetic on a signed type).
trait Int: Copy + Ord {
    /// `self op y`: arithmetic, `min`, `max` or bitwise.
    fn bin(self, op: Bin, y: Self) -> Self;
    /// `self << s` or `self >> s`.
    fn shift(self, op: Bin, s: u32) -> Self;
    fn un(self, op: Un) -> Self;
}

macro_rules! int {
    (signed $t:ty) => {
        int!($t, |x: $t| x.wrapping_neg(), |x: $t| x.wrapping_abs());
    };
    (unsigned $t:ty) => {
        int!(
            $t,
            |_: $t| -> $t { panic!("reference: Neg on {}", stringify!($t)) },
            |x: $t| x
        );
    };
    ($t:ty, $neg:expr, $abs:expr) => {
        impl Int for $t {
            fn bin(self, op: Bin, y: $t) -> $t {
                let x = self;
                match op {
                    Bin::Add => x.wrapping_add(y),
                    Bin::Sub => x.wrapping_sub(y),
                    Bin::Mul => x.wrapping_mul(y),
                    Bin::Div if y == 0 => x,
                    Bin::Div => x.wrapping_div(y),
                    Bin::Rem if y == 0 => 0,
                    Bin::Rem => x.wrapping_rem(y),
                    Bin::Min => x.min(y),
                    Bin::Max => x.max(y),
                    Bin::And => x & y,
                    Bin::Or => x | y,
                    Bin::Xor => x ^ y,
                    _ => panic!("reference: {op:?} on {}", stringify!($t)),
                }
            }
            fn shift(self, op: Bin, s: u32) -> $t {
                let s = s & (<$t>::BITS - 1);
                match op {
                    Bin::Shl => self.wrapping_shl(s),
                    Bin::Shr => self.wrapping_shr(s),
                    _ => panic!("reference: {op:?} on {}, u32", stringify!($t)),
                }
            }
            fn un(self, op: Un) -> $t {
                match op {
                    Un::Neg => $neg(self),
                    Un::Abs => $abs(self),
                    Un::Not => !self,
                    _ => panic!("reference: {op:?} on {}", stringify!($t)),
                }
            }
        }
    };
}

int!(signed i32);
int!(unsigned u32);
int!(signed i64);
int!(unsigned u64);

fn int_bin<T: Int>(op: Bin, x: Option<T>, y: Option<T>) -> Option<T> {
    x.zip(y).map(|(x, y)| x.bin(op, y))
}

fn int_shift<T: Int>(op: Bin, x: Option<T>, s: Option<u32>) -> Option<T> {
    x.zip(s).map(|(x, s)| x.shift(op, s))
}

fn int_cmp<T: Int>(op: Bin, x: Option<T>, y: Option<T>) -> Option<bool> {
    x.zip(y).map(|(x, y)| decide(op, x.cmp(&y)))
}

fn int_mul_add<T: Int>(a: Option<T>, b: Option<T>, c: Option<T>) -> Option<T> {
    let ab = int_bin(Bin::Mul, a, b);
    int_bin(Bin::Add, ab, c)
}

fn int_clamp<T: Int>(x: Option<T>, lo: Option<T>, hi: Option<T>) -> Option<T> {
    x.zip(lo).zip(hi).map(|((x, l), h)| x.max(l).min(h))
}

fn binary(t: &Table, op: Bin, a: V, b: V) -> V {
    let is_cmp = matches!(
        op,
        Bin::Lt | Bin::Le | Bin::Gt | Bin::Ge | Bin::Eq | Bin::Ne
    );
    let float = |t: &Table, x: FV, y: FV| match op {
        Bin::Add => add(t, t.add, x, y),
        Bin::Sub => sub(t, x, y),
        Bin::Mul => mul(t, x, y),
        Bin::Div => div(t, x, y),
        Bin::Rem => rem(t, x, y),
        Bin::Min => min_max(x, y, false),
        Bin::Max => min_max(x, y, true),
        Bin::Pow => pow(t, x, y),
        _ => panic!("reference: {op:?} on a float"),
    };
    match (a, b) {
        (V::F(x), V::F(y)) if is_cmp => V::B(cmp(t, op, x, y)),
        (V::F(x), V::F(y)) => V::F(float(t, x, y)),
        (V::D(x), V::D(y)) if is_cmp => V::B(cmp(wide(t), op, x, y)),
        (V::D(x), V::D(y)) => V::D(float(wide(t), x, y)),
        (V::I(x), V::I(y)) if is_cmp => V::B(int_cmp(op, x, y)),
        (V::U(x), V::U(y)) if is_cmp => V::B(int_cmp(op, x, y)),
        (V::L(x), V::L(y)) if is_cmp => V::B(int_cmp(op, x, y)),
        (V::Q(x), V::Q(y)) if is_cmp => V::B(int_cmp(op, x, y)),
        (V::I(x), V::U(s)) => V::I(int_shift(op, x, s)),
        (V::U(x), V::U(s)) if matches!(op, Bin::Shl | Bin::Shr) => V::U(int_shift(op, x, s)),
        (V::L(x), V::U(s)) => V::L(int_shift(op, x, s)),
        (V::Q(x), V::U(s)) => V::Q(int_shift(op, x, s)),
        (V::I(x), V::I(y)) => V::I(int_bin(op, x, y)),
        (V::U(x), V::U(y)) => V::U(int_bin(op, x, y)),
        (V::L(x), V::L(y)) => V::L(int_bin(op, x, y)),
        (V::Q(x), V::Q(y)) => V::Q(int_bin(op, x, y)),
        (V::B(x), V::B(y)) => V::B(match (op, x, y) {
            (Bin::And, Some(false), _) | (Bin::And, _, Some(false)) => Some(false),
            (Bin::Or, Some(true), _) | (Bin::Or, _, Some(true)) => Some(true),
            (Bin::And, Some(x), Some(y)) => Some(x && y),
            (Bin::Or, Some(x), Some(y)) => Some(x || y),
            (Bin::And | Bin::Or, _, _) => None,
            _ => panic!("reference: {op:?} on bool"),
        }),
        _ => panic!("reference: {op:?} on mismatched types"),
    }
}

fn cast(t: &Table, a: V, to: super::gen::Ty) -> V {
    use super::gen::Ty;
    let tw = wide(t);
    // an integer as a float of type `to`: rounded to nearest (`x as f64` is exact below
    // 2^53; above, its error is found exactly and carried)
    let int_to_float = |x: i128| {
        let v = x as f64;
        let rerr = (x - v as i128).unsigned_abs() as f64;
        if to == Ty::D {
            V::D(finish(tw, v, 0.0, tw.int_to_float, (0.0, 0.0), rerr))
        } else {
            V::F(finish(t, v, rerr, t.int_to_float, (0.0, 0.0), 0.0))
        }
    };
    let int = |x: Option<i128>| match to {
        Ty::I => V::I(x.map(|x| x as i32)),
        Ty::U => V::U(x.map(|x| x as u32)),
        Ty::L => V::L(x.map(|x| x as i64)),
        Ty::Q => V::Q(x.map(|x| x as u64)),
        Ty::F | Ty::D => x.map_or(V::F(FV::Unknown), int_to_float),
        Ty::B => panic!("reference: cast to bool"),
    };
    // integers keep their two's-complement bits: i32 sign-extends, u32 and bool
    // zero-extend, 64 bits to 32 keep the low half (what `as` gives through i128)
    let fix = |v: V| match (v, to) {
        (V::F(FV::Unknown), Ty::D) => V::D(FV::Unknown),
        (v, _) => v,
    };
    match a {
        V::I(x) => fix(int(x.map(i128::from))),
        V::U(x) => fix(int(x.map(i128::from))),
        V::L(x) => fix(int(x.map(i128::from))),
        V::Q(x) => fix(int(x.map(i128::from))),
        V::B(x) => match to {
            Ty::F => V::F(x.map_or(FV::Unknown, |b| exact(b as u8 as f64))),
            Ty::D => V::D(x.map_or(FV::Unknown, |b| exact(b as u8 as f64))),
            _ => int(x.map(|b| b as i128)),
        },
        V::F(x) if to == Ty::F => V::F(x),
        V::D(x) if to == Ty::D => V::D(x),
        // every f32 is an f64; the value's reassociable chain ends at the cast
        V::F(x) if to == Ty::D => V::D(match x {
            FV::Num { v, e, .. } => fnum(v, e),
            other => other,
        }),
        // f64 to f32: rounded to nearest
        V::D(x) if to == Ty::F => V::F(match x {
            FV::Num { v, e, .. } => finish(t, v, e, Allow::Rounded, (0.0, 0.0), 0.0),
            other => other,
        }),
        V::F(x) | V::D(x) => {
            let (src, from_f64) = match a {
                V::D(_) => (tw, true),
                _ => (t, false),
            };
            // WGSL's conversion: clamped to the largest value of the source type below
            // the destination's top (2^31, 2^32, 2^63, 2^64), and below at its bottom
            // (-2^31, 0, -2^63, 0, all exact), then truncated; NaN gives 0
            let (lo, hi): (f64, f64) = match (to, from_f64) {
                (Ty::I, false) => (-2_147_483_648.0, 2_147_483_520.0),
                (Ty::U, false) => (0.0, 4_294_967_040.0),
                (Ty::L, false) => (-9.223_372_036_854_776e18, 9_223_371_487_098_961_920.0),
                (Ty::Q, false) => (0.0, 18_446_742_974_197_923_840.0),
                (Ty::I, true) => (-2_147_483_648.0, 2_147_483_647.0),
                (Ty::U, true) => (0.0, 4_294_967_295.0),
                (Ty::L, true) => (-9.223_372_036_854_776e18, 9_223_372_036_854_774_784.0),
                (Ty::Q, true) => (0.0, 18_446_744_073_709_549_568.0),
                _ => panic!("reference: cast to {to:?}"),
            };
            let f = |v: f64| v.clamp(lo, hi).trunc();
            let r = match x {
                FV::Num { .. } => step(x, f),
                // NaN gives 0, infinities clamp: defined by the library on every
                // device, but a GPU need not keep NaN and infinities at all
                FV::Nan if src.nonfinite => Some(0.0),
                FV::Inf(n) if src.nonfinite => {
                    Some(f(if n { f64::NEG_INFINITY } else { f64::INFINITY }))
                }
                _ => None,
            };
            // r is an integer within the destination's range: `as` is exact
            int(r.map(|r| r as i128))
        }
    }
}

/// The outcome of comparing one device result with its reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Passed, but the bound is wide (over 1% of max(|v|, 1)): counted with the unknowns.
    Weak,
    Unknown,
    Fail,
}

/// Relative width above which a passing float check counts as weak.
pub const WEAK: f64 = 1e-2;

pub fn check_f32(got: f32, r: V) -> Verdict {
    let V::F(r) = r else {
        panic!("reference: f32 output expected")
    };
    let g = got as f64;
    match r {
        FV::Unknown => Verdict::Unknown,
        FV::Nan if got.is_nan() => Verdict::Pass,
        FV::Inf(n) if got.is_infinite() && (got < 0.0) == n => Verdict::Pass,
        FV::Num { v, e, .. } if got.is_finite() && (g - v).abs() <= e => {
            if e > WEAK * v.abs().max(1.0) {
                Verdict::Weak
            } else {
                Verdict::Pass
            }
        }
        _ => Verdict::Fail,
    }
}

pub fn check_i32(got: i32, r: V) -> Verdict {
    match r {
        V::I(None) => Verdict::Unknown,
        V::I(Some(x)) if x == got => Verdict::Pass,
        V::I(_) => Verdict::Fail,
        _ => panic!("reference: i32 output expected"),
    }
}

pub fn check_u32(got: u32, r: V) -> Verdict {
    match r {
        V::U(None) => Verdict::Unknown,
        V::U(Some(x)) if x == got => Verdict::Pass,
        V::U(_) => Verdict::Fail,
        _ => panic!("reference: u32 output expected"),
    }
}

/// An input element as a reference value.
pub fn input_f32(x: f32) -> V {
    V::F(if x.is_nan() {
        FV::Nan
    } else if x.is_infinite() {
        FV::Inf(x < 0.0)
    } else {
        exact(x as f64)
    })
}
