//! WGSL for a program's body: one `let` per register, a `for` loop per fold, and each
//! operation written with the meaning [`super::super::ops`] gives it (helpers from
//! `shaders/helpers.wgsl` where WGSL leaves a case open).

use std::collections::BTreeSet;

use crate::kernel::expr::{BinOp, UnOp};
use crate::kernel::program::{Instr, Loop, Op, Operand, Program};
use crate::kernel::scalar::ScalarType::{self, Bool, F32, F64, I32, I64, U32, U64};

/// Writes WGSL statements for a program, noting the helpers they call.
pub(super) struct Gen<'a> {
    p: &'a Program,
    /// The statements written so far.
    pub(super) out: String,
    /// The helpers (by section name) the statements call.
    pub(super) helpers: BTreeSet<&'static str>,
}

impl<'a> Gen<'a> {
    pub(super) fn new(p: &'a Program) -> Gen<'a> {
        Gen {
            p,
            out: String::new(),
            helpers: BTreeSet::new(),
        }
    }

    pub(super) fn block(&mut self, body: &[Instr], depth: usize) {
        for i in body {
            self.instr(i, depth);
        }
    }

    pub(super) fn line(&mut self, depth: usize, text: &str) {
        for _ in 0..depth {
            self.out.push_str("    ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn instr(&mut self, i: &Instr, depth: usize) {
        let ty = self.p.regs[i.dst as usize];
        let dst = i.dst;
        match &i.op {
            Op::Loop(l) => return self.looped(l, depth),
            Op::Load {
                table,
                index,
                default,
            } => return self.load(dst, ty, *table, *index, *default, depth),
            _ => {}
        }
        let e = self.expr(ty, &i.op);
        self.line(depth, &format!("let r{dst}: {ty} = {e};"));
    }

    /// A loop as WGSL statements: the carried values are `var`s, the counter a `var`
    /// checked against the count, the condition a `break`; the next values are taken
    /// into `let`s first, so every carry is updated from the previous iteration's
    /// values (a swap stays a swap).
    fn looped(&mut self, l: &Loop, depth: usize) {
        for (&c, &init) in l.carries.iter().zip(&l.inits) {
            let t = self.p.regs[c as usize];
            let init = self.operand(init);
            self.line(depth, &format!("var r{c}: {t} = {init};"));
        }
        let n = l.counter;
        let count = self.operand(l.count);
        self.line(depth, &format!("var r{n}: u32 = 0u;"));
        self.line(depth, "loop {");
        self.line(depth + 1, &format!("if (r{n} >= {count}) {{ break; }}"));
        if let Some(c) = &l.cond {
            self.block(&c.body, depth + 1);
            let test = self.operand(c.test);
            self.line(depth + 1, &format!("if (!({test})) {{ break; }}"));
        }
        self.block(&l.body, depth + 1);
        for (&c, &next) in l.carries.iter().zip(&l.nexts) {
            let t = self.p.regs[c as usize];
            let next = self.operand(next);
            self.line(depth + 1, &format!("let n{c}: {t} = {next};"));
        }
        for &c in &l.carries {
            self.line(depth + 1, &format!("r{c} = n{c};"));
        }
        self.line(depth + 1, &format!("r{n} += 1u;"));
        self.line(depth, "}");
        self.line(depth, &format!("let r{}: u32 = r{n};", l.trips));
    }

    /// A table read. The global index is clamped into the table (or, with a default,
    /// checked against it), then made local to the part of the table this device
    /// holds (`start`, `held` elements) and clamped into that too, so no index
    /// whatever its value reads outside the buffer; an empty table reads the default,
    /// or zero.
    fn load(
        &mut self,
        dst: u32,
        ty: ScalarType,
        table: u8,
        index: Operand,
        default: Option<Operand>,
        depth: usize,
    ) {
        let info = |k: usize| {
            let at = self.p.param_layout().1 + 3 * table as usize + k;
            format!("params.user[{}][{}]", at / 4, at % 4)
        };
        let (len, start, held) = (info(0), info(1), info(2));
        let i = self.operand(index);
        let (global, inside) = match self.p.ty(index) {
            I32 => (
                format!("u32(max({i}, 0i))"),
                format!("({i} >= 0i && u32({i}) < {len})"),
            ),
            _ => (i.clone(), format!("({i} < {len})")),
        };
        let g = format!("min({global}, max({len}, 1u) - 1u)");
        let local = format!("min({g} - {start}, max({held}, 1u) - 1u)");
        let word = format!("tbl{table}[{local}]");
        let value = match ty {
            U32 => word,
            U64 | I64 | F64 => {
                // a 64-bit element in two words, low first, put together through u64
                self.line(depth, &format!("let l{dst}: u32 = 2u * {local};"));
                let v =
                    format!("(u64(tbl{table}[l{dst}]) | (u64(tbl{table}[l{dst} + 1u]) << 32u))");
                match ty {
                    U64 => v,
                    _ => format!("bitcast<{ty}>{v}"),
                }
            }
            _ => format!("bitcast<{ty}>({word})"),
        };
        let (fallback, ok) = match default {
            Some(d) => (self.operand(d), inside),
            None => (literal(ty, 0), format!("({len} > 0u)")),
        };
        self.line(
            depth,
            &format!("let r{dst}: {ty} = select({fallback}, {value}, {ok});"),
        );
    }

    pub(super) fn helper(&mut self, name: &'static str, args: &[String]) -> String {
        self.helpers.insert(name);
        format!("hy_{name}({})", args.join(", "))
    }

    fn expr(&mut self, ty: ScalarType, op: &Op) -> String {
        match op {
            Op::Input(k) => {
                // a 64-bit element in two words, low first, put together through u64
                let wide = format!("(u64(in{k}[2u * li]) | (u64(in{k}[2u * li + 1u]) << 32u))");
                match ty {
                    U32 => format!("in{k}[li]"),
                    U64 => wide,
                    I64 | F64 => format!("bitcast<{ty}>{wide}"),
                    _ => format!("bitcast<{ty}>(in{k}[li])"),
                }
            }
            Op::Index => "index".into(),
            Op::Param(k) => {
                let at = self.p.param_layout().0[*k as usize];
                let word = |at: usize| format!("params.user[{}][{}]", at / 4, at % 4);
                let (lo, hi) = (word(at), word(at + 1));
                match ty {
                    U32 => lo,
                    // a 64-bit value in two words, low first: naga has no bitcast
                    // between vec2<u32> and a 64-bit type, so it is put together
                    U64 => format!("(u64({lo}) | (u64({hi}) << 32u))"),
                    I64 => format!("bitcast<i64>(u64({lo}) | (u64({hi}) << 32u))"),
                    F64 => self.helper("f64_from_bits", &[lo, hi]),
                    _ => format!("bitcast<{ty}>({lo})"),
                }
            }
            Op::Unary(u, a) => self.unary(*u, self.p.ty(*a), self.operand(*a)),
            Op::Binary(b, x, y) => {
                let t = self.p.ty(*x);
                let y_masked = matches!(y, Operand::Const(..));
                let (xs, ys) = (self.operand(*x), self.operand(*y));
                self.binary(*b, t, xs, ys, y_masked)
            }
            Op::Select(c, a, b) => {
                format!(
                    "select({}, {}, {})",
                    self.operand(*b),
                    self.operand(*a),
                    self.operand(*c)
                )
            }
            Op::Cast(a) => self.cast(self.p.ty(*a), ty, self.operand(*a)),
            Op::MulAdd(a, b, c) => {
                format!(
                    "({} * {} + {})",
                    self.operand(*a),
                    self.operand(*b),
                    self.operand(*c)
                )
            }
            Op::Clamp(x, lo, hi) => {
                let (x, lo, hi) = (self.operand(*x), self.operand(*lo), self.operand(*hi));
                if ty == F32 {
                    let inner = self.helper("max_f32", &[x, lo]);
                    self.helper("min_f32", &[inner, hi])
                } else {
                    format!("min(max({x}, {lo}), {hi})")
                }
            }
            Op::TableLen(t) => {
                let at = self.p.param_layout().1 + 3 * *t as usize;
                format!("params.user[{}][{}]", at / 4, at % 4)
            }
            // Loops and table reads are emitted as statements by `instr`.
            Op::Loop(_) | Op::Load { .. } => String::new(),
        }
    }

    fn unary(&mut self, op: UnOp, t: ScalarType, a: String) -> String {
        let f = |name: &str| format!("{name}({a})");
        match (op, t) {
            (UnOp::Neg, _) => format!("(-{a})"),
            (UnOp::Not, Bool) => format!("(!{a})"),
            (UnOp::Not, _) => format!("(~{a})"),
            // Two's complement negation wraps, so abs(i32::MIN) == i32::MIN.
            (UnOp::Abs, I32) => format!("select({a}, -{a}, {a} < 0i)"),
            // ordered as the i64 order in `binary` does (lavapipe)
            (UnOp::Abs, I64) => format!(
                "select({a}, -{a}, (bitcast<u64>({a}) ^ 0x8000000000000000lu) < \
                 0x8000000000000000lu)"
            ),
            (UnOp::Abs, U32 | U64 | Bool) => a,
            (UnOp::Abs, F32 | F64) => f("abs"),
            (UnOp::Sqrt, _) => f("sqrt"),
            (UnOp::Sin, _) => f("sin"),
            (UnOp::Cos, _) => f("cos"),
            (UnOp::Tan, _) => f("tan"),
            (UnOp::Exp, _) => f("exp"),
            (UnOp::Exp2, _) => f("exp2"),
            (UnOp::Ln, _) => f("log"),
            (UnOp::Log2, _) => f("log2"),
            (UnOp::Floor, _) => f("floor"),
            (UnOp::Ceil, _) => f("ceil"),
            // WGSL's round is ties-to-even, as ops::unary is.
            (UnOp::Round, _) => f("round"),
            (UnOp::Fract, _) => format!("({a} - floor({a}))"),
        }
    }

    fn binary(&mut self, op: BinOp, t: ScalarType, a: String, b: String, b_const: bool) -> String {
        let infix = |sym: &str| format!("({a} {sym} {b})");
        match (op, t) {
            (BinOp::Add, _) => infix("+"),
            (BinOp::Sub, _) => infix("-"),
            (BinOp::Mul, _) => infix("*"),
            (BinOp::Div, F32 | F64) => infix("/"),
            (BinOp::Div, I32) => self.helper("div_i32", &[a, b]),
            (BinOp::Div, I64) => self.helper("div_i64", &[a, b]),
            (BinOp::Div, U64) => self.helper("div_u64", &[a, b]),
            (BinOp::Rem, I64) => self.helper("rem_i64", &[a, b]),
            (BinOp::Rem, U64) => self.helper("rem_u64", &[a, b]),
            (BinOp::Div, _) => self.helper("div_u32", &[a, b]),
            (BinOp::Rem, F32) => self.helper("rem_f32", &[a, b]),
            (BinOp::Rem, F64) => self.helper("rem_f64", &[a, b]),
            (BinOp::Rem, I32) => self.helper("rem_i32", &[a, b]),
            (BinOp::Rem, _) => self.helper("rem_u32", &[a, b]),
            (BinOp::Min, F32) => self.helper("min_f32", &[a, b]),
            (BinOp::Max, F32) => self.helper("max_f32", &[a, b]),
            (BinOp::Min, F64) => self.helper("min_f64", &[a, b]),
            (BinOp::Max, F64) => self.helper("max_f64", &[a, b]),
            (BinOp::Min, _) => format!("min({a}, {b})"),
            (BinOp::Max, _) => format!("max({a}, {b})"),
            (BinOp::Pow, _) => self.helper("pow", &[a, b]),
            (BinOp::And, _) => infix("&"),
            (BinOp::Or, _) => infix("|"),
            (BinOp::Xor, Bool) => infix("!="),
            (BinOp::Xor, _) => infix("^"),
            // Constant amounts are masked by the compiler; others here, as WGSL
            // promises and SPIR-V does not.
            (BinOp::Shl, _) if b_const => infix("<<"),
            (BinOp::Shr, _) if b_const => infix(">>"),
            (BinOp::Shl, I64 | U64) => format!("({a} << ({b} & 63u))"),
            (BinOp::Shr, I64 | U64) => format!("({a} >> ({b} & 63u))"),
            (BinOp::Shl, _) => format!("({a} << ({b} & 31u))"),
            (BinOp::Shr, _) => format!("({a} >> ({b} & 31u))"),
            // An i64 is ordered as a u64 with its sign bit flipped: lavapipe (Mesa
            // 22.3, LLVM 15) orders an i32 sign-extended to i64 against a constant
            // wrongly (`i64(x) < 0li` false for every x; found by tests/parity_f64.rs),
            // and the unsigned order of flipped values is the signed order.
            (BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge, I64) => {
                let sym = match op {
                    BinOp::Lt => "<",
                    BinOp::Le => "<=",
                    BinOp::Gt => ">",
                    _ => ">=",
                };
                let flip = |v: &str| format!("(bitcast<u64>({v}) ^ 0x8000000000000000lu)");
                format!("({} {sym} {})", flip(&a), flip(&b))
            }
            (BinOp::Lt, _) => infix("<"),
            (BinOp::Le, _) => infix("<="),
            (BinOp::Gt, _) => infix(">"),
            (BinOp::Ge, _) => infix(">="),
            (BinOp::Eq, _) => infix("=="),
            // naga emits an ordered `!=` (false for NaN); IEEE's is unordered.
            (BinOp::Ne, F32 | F64) => format!("(!({a} == {b}))"),
            (BinOp::Ne, _) => infix("!="),
        }
    }

    fn cast(&mut self, from: ScalarType, to: ScalarType, a: String) -> String {
        match (from, to) {
            (F32, I32) => self.helper("f32_to_i32", &[a]),
            (F32, U32) => self.helper("f32_to_u32", &[a]),
            (F64, I32) => self.helper("f64_to_i32", &[a]),
            (F64, U32) => self.helper("f64_to_u32", &[a]),
            (F32, Bool) => format!("(!({a} == 0.0f))"),
            (F64, Bool) => format!("(!({a} == 0.0lf))"),
            (I32, Bool) => format!("({a} != 0i)"),
            (U32, Bool) => format!("({a} != 0u)"),
            (I32, U32) | (U32, I32) => format!("bitcast<{to}>({a})"),
            (F32, I64) => self.helper("f32_to_i64", &[a]),
            (F32, U64) => self.helper("f32_to_u64", &[a]),
            (F64, I64) => self.helper("f64_to_i64", &[a]),
            (F64, U64) => self.helper("f64_to_u64", &[a]),
            (I64, Bool) => format!("({a} != 0li)"),
            (U64, Bool) => format!("({a} != 0lu)"),
            (I64, U64) | (U64, I64) => format!("bitcast<{to}>({a})"),
            // sign-extended from i32, zero-extended from u32 and bool
            (I32, I64) => format!("i64({a})"),
            (I32, U64) => format!("bitcast<u64>(i64({a}))"),
            // naga converts a u32 to i64 by sign extension (measured on lavapipe):
            // through u64, which extends with zeros
            (U32, U64) => format!("u64({a})"),
            (U32, I64) => format!("bitcast<i64>(u64({a}))"),
            (Bool, U64) => format!("u64(u32({a}))"),
            (Bool, I64) => format!("bitcast<i64>(u64(u32({a})))"),
            // the low 32 bits, converted in range
            (I64, U32) => format!("u32(bitcast<u64>({a}) & 0xfffffffflu)"),
            (U64, U32) => format!("u32({a} & 0xfffffffflu)"),
            (I64, I32) => format!("bitcast<i32>(u32(bitcast<u64>({a}) & 0xfffffffflu))"),
            (U64, I32) => format!("bitcast<i32>(u32({a} & 0xfffffffflu))"),
            (_, to) if from == to => a,
            // Integer to float rounds to nearest; bool gives 0 or 1.
            (_, to) => format!("{to}({a})"),
        }
    }

    pub(super) fn operand(&self, o: Operand) -> String {
        match o {
            Operand::Reg(r) => format!("r{r}"),
            Operand::Const(t, bits) => literal(t, bits),
        }
    }
}

/// A WGSL expression for a constant. Normal floats print in Rust's shortest
/// round-tripping form. Infinities and NaN (which WGSL cannot write as literals, and
/// which are a creation error as constant expressions), zeros and subnormals (which a
/// driver's optimiser may fold wrongly, e.g. `x / 0.0` to 0) are bit patterns mixed
/// with the always-zero `params.zero`, so they are run-time values.
///
/// An `f64` is written with WGSL's `lf` suffix; its zeros, infinities and NaN come from
/// the same `f32` patterns converted (exactly), a subnormal as its shortest decimal.
pub(super) fn literal(t: ScalarType, bits64: u64) -> String {
    let bits = bits64 as u32;
    match t {
        F64 => {
            let v = f64::from_bits(bits64);
            if v.is_nan() || v.is_infinite() || v == 0.0 {
                format!("f64({})", literal(F32, (v as f32).to_bits() as u64))
            } else if v.is_sign_negative() {
                format!("({v:e}lf)")
            } else {
                format!("{v:e}lf")
            }
        }
        F32 => {
            let v = f32::from_bits(bits);
            // Lavapipe (LLVM) folds `x / 0.0` to 0: zeros, like every non-normal value,
            // must reach the device as run-time values.
            if !v.is_normal() {
                format!("bitcast<f32>({bits:#010x}u | params.zero)")
            } else if v.is_sign_negative() {
                format!("({v:?}f)")
            } else {
                format!("{v:?}f")
            }
        }
        I32 => match bits as i32 {
            i32::MIN => "(-2147483647i - 1i)".into(),
            v if v < 0 => format!("({v}i)"),
            v => format!("{v}i"),
        },
        U32 => format!("{bits}u"),
        I64 => match bits64 as i64 {
            i64::MIN => "(-9223372036854775807li - 1li)".into(),
            v if v < 0 => format!("({v}li)"),
            v => format!("{v}li"),
        },
        U64 => format!("{bits64}lu"),
        Bool => (if bits != 0 { "true" } else { "false" }).into(),
    }
}
