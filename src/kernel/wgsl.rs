//! WGSL generation: the kernel's flat program as one compute shader.
//!
//! Each register becomes one `let` (a fold's accumulator a `var` updated by a `for`
//! loop), so the shader reads like the program and no expression nests deeply. The
//! fixed parts are templates in `shaders/`; where WGSL (or a driver) leaves a case open
//! — division by zero, shifts past 31, NaN to integer, NaN in `min` — a helper from
//! `shaders/helpers.wgsl` pins it to the meaning in [`super::ops`].
//!
//! A kernel's parameters ([`super::Param`]) are read from the uniform block, after its
//! 4-word header (`params.user[k / 4][k % 4]`, literal indices); their values are
//! written per call and never appear in the source, so the source, its hash and the
//! pipeline cache key are the same whatever the values.

// The entry point and binding layout are read by the GPU device only; without the
// `gpu` feature the source is still generated (Kernel::wgsl, Kernel::id).
#![cfg_attr(not(feature = "gpu"), allow(dead_code))]

use std::collections::BTreeSet;
use std::fmt::Write;

use super::expr::{BinOp, UnOp};
use super::program::{Instr, Op, Operand, Program};
use super::reduce::{Reduce, GPU_PER_THREAD};
use super::ScalarType::{self, Bool, F32, I32, U32};

/// Threads per workgroup of every generated kernel.
pub(crate) const WORKGROUP_SIZE: u32 = 256;

/// Bytes of the uniform block's header: base, len, row, zero.
pub(crate) const HEADER_BYTES: u64 = 16;

/// Bytes of the uniform block of a kernel with `params` parameters: the header, then
/// the values four to a `vec4<u32>`.
pub(crate) fn uniform_bytes(params: usize) -> u64 {
    HEADER_BYTES + 16 * params.div_ceil(4) as u64
}

/// Name of the entry point.
pub(crate) const ENTRY_POINT: &str = "main";

const TEMPLATE: &str = include_str!("../../shaders/map.wgsl");
const HELPERS: &str = include_str!("../../shaders/helpers.wgsl");
const REDUCE_TEMPLATE: &str = include_str!("../../shaders/reduce.wgsl");

/// Elements each workgroup of a reduction maps and combines into one partial.
pub(crate) const REDUCE_PER_GROUP: u32 = WORKGROUP_SIZE * GPU_PER_THREAD;

/// A generated compute shader.
#[derive(Debug)]
pub(crate) struct Shader {
    pub(crate) source: String,
    /// FNV-1a of `source`: the kernel's stable id and the pipeline cache key.
    pub(crate) hash: u64,
    /// Number of input bindings (0..inputs); the output is binding `inputs`, the
    /// parameters `inputs + 1`.
    pub(crate) inputs: u32,
    /// Bytes of the uniform block: [`HEADER_BYTES`], then the kernel's parameter
    /// values ([`uniform_bytes`]).
    pub(crate) uniform_bytes: u64,
}

impl Shader {
    /// A shader from WGSL that follows the generated binding layout.
    pub(crate) fn from_source(source: String, inputs: u32) -> Shader {
        let hash = fnv1a(source.as_bytes());
        Shader {
            source,
            hash,
            inputs,
            uniform_bytes: HEADER_BYTES,
        }
    }
}

/// The compute shader computing `p` for one element per thread.
/// A hand-written kernel's `user` body is called in place of the program's body.
pub(crate) fn generate(p: &Program, user: Option<&str>) -> Shader {
    let (g, bindings, signature, extra) = prepare(p, "elements", user);
    let result = match p.result {
        // The output is stored as its bit pattern: a constant needs no conversion.
        Operand::Const(_, bits) => format!("{bits:#010x}u"),
        o => format!("bitcast<u32>({})", g.operand(o)),
    };
    let arity = p.inputs.len();
    let source = TEMPLATE
        .replace("{{signature}}", &signature)
        .replace("{{bindings}}", &bindings)
        .replace("{{params_binding}}", &(arity + 1).to_string())
        .replace("{{helpers}}", &(helpers(&g.helpers) + &extra))
        .replace("{{workgroup_size}}", &WORKGROUP_SIZE.to_string())
        .replace("{{body}}", g.out.trim_end_matches('\n'))
        .replace("{{result}}", &result)
        .replace("{{user}}", &params_field(p));
    let mut shader = Shader::from_source(source, arity as u32);
    shader.uniform_bytes = uniform_bytes(p.params.len());
    shader
}

/// The compute shader mapping `p` over [`REDUCE_PER_GROUP`] elements per workgroup
/// and combining them with `op` into one partial per workgroup (see
/// [`super::reduce`] for the order of combination and the error bound).
pub(crate) fn generate_reduce(p: &Program, op: Reduce, user: Option<&str>) -> Shader {
    let (mut g, bindings, signature, extra) = prepare(p, "partials, one per workgroup", user);
    let ty = p.output;
    let result = g.operand(p.result);
    let combine = match (op, ty) {
        (Reduce::Sum, _) => "a + b".to_string(),
        (Reduce::Min, F32) => g.helper("min_f32", &["a".into(), "b".into()]),
        (Reduce::Max, F32) => g.helper("max_f32", &["a".into(), "b".into()]),
        (Reduce::Min, _) => "min(a, b)".to_string(),
        (Reduce::Max, _) => "max(a, b)".to_string(),
    };
    let identity = literal(ty, op.identity_bits(ty));
    let arity = p.inputs.len();
    let body = g.out.trim_end_matches('\n').to_string();
    let source = REDUCE_TEMPLATE
        .replace("{{signature}}", &signature)
        .replace("{{op}}", op.name())
        .replace("{{bindings}}", &bindings)
        .replace("{{params_binding}}", &(arity + 1).to_string())
        .replace("{{helpers}}", &(helpers(&g.helpers) + &extra))
        .replace("{{ty}}", ty.name())
        .replace("{{identity}}", &identity)
        .replace("{{combine}}", &combine)
        .replace("{{workgroup_size}}", &WORKGROUP_SIZE.to_string())
        .replace("{{per_thread}}", &GPU_PER_THREAD.to_string())
        .replace("{{per_group}}", &REDUCE_PER_GROUP.to_string())
        .replace("{{body}}", &body)
        .replace("{{result}}", &result)
        .replace("{{user}}", &params_field(p));
    let mut shader = Shader::from_source(source, arity as u32);
    shader.uniform_bytes = uniform_bytes(p.params.len());
    shader
}

/// The uniform block's field holding the kernel's parameters (none without).
fn params_field(p: &Program) -> String {
    match p.params.len() {
        0 => String::new(),
        n => format!(
            "\n    // The kernel's {n} parameter(s), as bit patterns: parameter k is\n    \
             // user[k / 4][k % 4].\n    user: array<vec4<u32>, {}>,",
            n.div_ceil(4)
        ),
    }
}

/// The generator with `p`'s body emitted (or, for a hand-written kernel, a call of
/// its `user` body into register 0), the binding declarations (the output described
/// as `out_what`), the kernel's signature, and the hand-written function, if any.
fn prepare<'p>(
    p: &'p Program,
    out_what: &str,
    user: Option<&str>,
) -> (Gen<'p>, String, String, String) {
    let mut g = Gen {
        p,
        out: String::new(),
        helpers: BTreeSet::new(),
    };
    let mut extra = String::new();
    match user {
        None => g.block(&p.body, 1),
        Some(body) => {
            let names: &[&str] = if p.inputs.len() == 1 {
                &["x"]
            } else {
                &["a", "b"]
            };
            let params: Vec<String> = names
                .iter()
                .zip(&p.inputs)
                .map(|(n, t)| format!("{n}: {t}"))
                .collect();
            let _ = write!(
                extra,
                "\n// hand-written\nfn hy_user({}, index: u32) -> {} {{\n{}\n}}\n",
                params.join(", "),
                p.output,
                body.trim_end()
            );
            let args: Vec<String> = p
                .inputs
                .iter()
                .enumerate()
                .map(|(k, t)| format!("bitcast<{t}>(in{k}[li])"))
                .collect();
            g.line(
                1,
                &format!(
                    "let r0: {} = hy_user({}, index);",
                    p.output,
                    args.join(", ")
                ),
            );
        }
    }
    let mut bindings = String::new();
    for (k, t) in p.inputs.iter().enumerate() {
        let _ = writeln!(
            bindings,
            "// input {k}: {t} elements, as bit patterns\n\
             @group(0) @binding({k}) var<storage, read> in{k}: array<u32>;"
        );
    }
    let arity = p.inputs.len();
    let _ = write!(
        bindings,
        "// output: {} {out_what}, as bit patterns\n\
         @group(0) @binding({arity}) var<storage, read_write> out: array<u32>;",
        p.output
    );
    let ins: Vec<&str> = p.inputs.iter().map(|t| t.name()).collect();
    let signature = format!("({}) -> {}", ins.join(", "), p.output);
    (g, bindings, signature, extra)
}

/// The helper sections named in `used`, with the sections they need, in file order.
fn helpers(used: &BTreeSet<&'static str>) -> String {
    let sections: Vec<(&str, &str)> = HELPERS
        .split("// @helper ")
        .skip(1)
        .filter_map(|s| s.split_once('\n'))
        .map(|(name, text)| (name.trim(), text))
        .collect();
    let mut want: BTreeSet<&str> = used.iter().copied().collect();
    for (name, text) in &sections {
        if want.contains(name) {
            for line in text.lines() {
                if let Some(dep) = line.strip_prefix("// @needs ") {
                    want.insert(dep.trim());
                }
            }
        }
    }
    let mut out = String::new();
    for (name, text) in sections {
        if want.contains(name) {
            out.push('\n');
            for line in text
                .trim_end()
                .lines()
                .filter(|l| !l.starts_with("// @needs"))
            {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

struct Gen<'a> {
    p: &'a Program,
    out: String,
    helpers: BTreeSet<&'static str>,
}

impl Gen<'_> {
    fn block(&mut self, body: &[Instr], depth: usize) {
        for i in body {
            self.instr(i, depth);
        }
    }

    fn line(&mut self, depth: usize, text: &str) {
        for _ in 0..depth {
            self.out.push_str("    ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn instr(&mut self, i: &Instr, depth: usize) {
        let ty = self.p.regs[i.dst as usize];
        let dst = i.dst;
        if let Op::Loop(l) = &i.op {
            let init = self.operand(l.init);
            self.line(depth, &format!("var r{dst}: {ty} = {init};"));
            let c = l.counter;
            let n = l.count;
            self.line(
                depth,
                &format!("for (var r{c}: u32 = 0u; r{c} < {n}u; r{c} += 1u) {{"),
            );
            self.block(&l.body, depth + 1);
            let next = self.operand(l.next);
            self.line(depth + 1, &format!("r{dst} = {next};"));
            self.line(depth, "}");
            return;
        }
        let e = self.expr(ty, &i.op);
        self.line(depth, &format!("let r{dst}: {ty} = {e};"));
    }

    fn helper(&mut self, name: &'static str, args: &[String]) -> String {
        self.helpers.insert(name);
        format!("hy_{name}({})", args.join(", "))
    }

    fn expr(&mut self, ty: ScalarType, op: &Op) -> String {
        match op {
            Op::Input(k) => match ty {
                U32 => format!("in{k}[li]"),
                _ => format!("bitcast<{ty}>(in{k}[li])"),
            },
            Op::Index => "index".into(),
            Op::Param(k) => {
                let v = format!("params.user[{}][{}]", k / 4, k % 4);
                match ty {
                    U32 => v,
                    _ => format!("bitcast<{ty}>({v})"),
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
            // Loops are emitted as statements by `instr`.
            Op::Loop(_) => String::new(),
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
            (UnOp::Abs, U32 | Bool) => a,
            (UnOp::Abs, F32) => f("abs"),
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
            (BinOp::Div, F32) => infix("/"),
            (BinOp::Div, I32) => self.helper("div_i32", &[a, b]),
            (BinOp::Div, _) => self.helper("div_u32", &[a, b]),
            (BinOp::Rem, F32) => self.helper("rem_f32", &[a, b]),
            (BinOp::Rem, I32) => self.helper("rem_i32", &[a, b]),
            (BinOp::Rem, _) => self.helper("rem_u32", &[a, b]),
            (BinOp::Min, F32) => self.helper("min_f32", &[a, b]),
            (BinOp::Max, F32) => self.helper("max_f32", &[a, b]),
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
            (BinOp::Shl, _) => format!("({a} << ({b} & 31u))"),
            (BinOp::Shr, _) => format!("({a} >> ({b} & 31u))"),
            (BinOp::Lt, _) => infix("<"),
            (BinOp::Le, _) => infix("<="),
            (BinOp::Gt, _) => infix(">"),
            (BinOp::Ge, _) => infix(">="),
            (BinOp::Eq, _) => infix("=="),
            // naga emits an ordered `!=` (false for NaN); IEEE's is unordered.
            (BinOp::Ne, F32) => format!("(!({a} == {b}))"),
            (BinOp::Ne, _) => infix("!="),
        }
    }

    fn cast(&mut self, from: ScalarType, to: ScalarType, a: String) -> String {
        match (from, to) {
            (F32, I32) => self.helper("f32_to_i32", &[a]),
            (F32, U32) => self.helper("f32_to_u32", &[a]),
            (F32, Bool) => format!("(!({a} == 0.0f))"),
            (I32, Bool) => format!("({a} != 0i)"),
            (U32, Bool) => format!("({a} != 0u)"),
            (I32, U32) | (U32, I32) => format!("bitcast<{to}>({a})"),
            (_, to) if from == to => a,
            // Integer to float rounds to nearest; bool gives 0 or 1.
            (_, to) => format!("{to}({a})"),
        }
    }

    fn operand(&self, o: Operand) -> String {
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
fn literal(t: ScalarType, bits: u32) -> String {
    match t {
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
        Bool => (if bits != 0 { "true" } else { "false" }).into(),
    }
}

/// 64-bit FNV-1a: a stable hash (the same in every process and release).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{fold, index, select, Element, Expr, Kernel, Param};
    use crate::Reduce;

    /// Parses and validates `src` with naga, as wgpu does before any driver sees it.
    fn validate(src: &str) -> Result<(), String> {
        let module = naga::front::wgsl::parse_str(src).map_err(|e| e.emit_to_string(src))?;
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::default(),
        )
        .validate(&module)
        .map_err(|e| e.emit_to_string(src))?;
        Ok(())
    }

    fn shader<I: Element, O: Element>(k: &Kernel<I, O>) -> String {
        let s = k
            .wgsl()
            .unwrap_or_else(|e| panic!("generation failed: {e}"));
        if let Err(e) = validate(&s) {
            panic!("naga rejected the generated shader:\n{e}\n--- source ---\n{s}");
        }
        s
    }

    #[test]
    fn every_float_operation_validates() {
        let s = shader(&Kernel::map(|x: Expr<f32>| {
            let u = [
                -x.clone(),
                x.abs(),
                x.sqrt(),
                x.sin(),
                x.cos(),
                x.tan(),
                x.exp(),
                x.exp2(),
                x.ln(),
                x.log2(),
                x.floor(),
                x.ceil(),
                x.round(),
                x.fract(),
            ];
            let mut acc = x.clone();
            for e in u {
                acc = acc + e;
            }
            let y = acc.clone() * 3.0;
            let b =
                (&acc + &y) - (&acc / &y) + (&acc % &y) + acc.min(&y) + acc.max(&y) + acc.pow(&y);
            let c = acc
                .lt(&y)
                .and(acc.le(&y))
                .or(acc.gt(&y))
                .and(!acc.ge(&y))
                .or(acc.eq(&y).and(acc.ne(&y)));
            select(c, b.mul_add(&y, &acc), b.clamp(&acc, &y)) + 2.0 % acc.clone() + 1.0 / acc
        }));
        assert!(s.contains("hy_rem_f32"), "float % uses the formula:\n{s}");
        assert!(!s.contains(" % "), "no WGSL float %:\n{s}");
        assert!(s.contains("@compute @workgroup_size(256)"));
    }

    fn integer_ops<T: crate::Integer>(x: Expr<T>, y: Expr<T>) -> Expr<T> {
        let s = x.clone().cast::<u32>();
        let a = (&x + &y) - (&x * &y) + (&x / &y) + (&x % &y) + x.min(&y) + x.max(&y);
        let b = (&x & &y) | (&x ^ &y) | !x.clone();
        let c = (x.clone() << s.clone())
            + (y.clone() >> s)
            + (x.clone() << 40u32)
            + (y.clone() >> 3u32);
        let d = x.abs() + x.mul_add(&y, &x) + x.clamp(&y, &x);
        let cond = x
            .lt(&y)
            .or(x.le(&y))
            .and(x.gt(&y).or(x.ge(&y)))
            .or(x.eq(&y).and(!x.ne(&y)));
        select(cond, a + b, c + d)
    }

    #[test]
    fn every_integer_operation_validates() {
        let s = shader(&Kernel::map2(|x: Expr<i32>, y: Expr<i32>| {
            integer_ops(-x, y)
        }));
        assert!(s.contains("hy_div_i32") && s.contains("hy_rem_i32"), "{s}");
        assert!(
            s.contains("& 31u)"),
            "variable shift amounts are masked:\n{s}"
        );
        assert!(
            s.contains("<< 8u"),
            "constant shift amounts come masked:\n{s}"
        );
        let s = shader(&Kernel::map2(integer_ops::<u32>));
        assert!(s.contains("hy_div_u32") && s.contains("hy_rem_u32"), "{s}");
    }

    #[test]
    fn every_cast_validates() {
        let s = shader(&Kernel::map(|x: Expr<f32>| {
            let i = x.cast::<i32>();
            let u = x.cast::<u32>();
            let b = x.gt(0.5);
            let f = i.cast::<f32>() + u.cast::<f32>() + b.cast::<f32>();
            let i2 = u.cast::<i32>() + b.cast::<i32>() + f.cast::<i32>();
            let u2 = i.cast::<u32>() + b.cast::<u32>();
            i2.cast::<f32>() + u2.cast::<f32>()
        }));
        assert!(
            s.contains("hy_f32_to_i32") && s.contains("hy_f32_to_u32"),
            "{s}"
        );
        assert!(s.contains("hy_isnan"), "NaN is tested explicitly:\n{s}");
        let s = shader(&Kernel::map(|x: Expr<u32>| {
            (x.cast::<i32>() / -3).cast::<u32>()
        }));
        assert!(
            s.contains("bitcast<i32>(") && s.contains("bitcast<u32>("),
            "{s}"
        );
    }

    #[test]
    fn special_constants_validate() {
        for c in [
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -0.0,
            f32::MAX,
            f32::MIN_POSITIVE,
            1e-45,
            -1.5e-40,
        ] {
            shader(&Kernel::map(move |x: Expr<f32>| {
                x.max(c) + c * x.clone() - c
            }));
        }
        let s = shader(&Kernel::map(|x: Expr<i32>| {
            (x.clone() / i32::MIN)
                + (x.clone() % Expr::constant(-1))
                + (x.clone() * i32::MAX)
                + (x.clone() / 0)
                + (x % 0)
        }));
        assert!(s.contains("(-2147483647i - 1i)"), "{s}");
        shader(&Kernel::map(|x: Expr<u32>| {
            (x.clone() / 0u32) + (x * u32::MAX)
        }));
        // Kernels that fold to a constant, special or not.
        let s = shader(&Kernel::map(|_x: Expr<f32>| Expr::constant(f32::NAN)));
        assert!(s.contains("out[li] = 0x7fc00000u;"), "{s}");
        shader(&Kernel::map(|_x: Expr<i32>| Expr::constant(i32::MIN)));
    }

    #[test]
    fn bools_select_and_index_validate() {
        shader(&Kernel::map(|x: Expr<u32>| {
            let odd = (index() & 1u32).eq(1u32);
            let big = x.gt(1000u32);
            let both = odd.and(&big).or(!odd.clone());
            let pick = select(both.clone(), odd, big);
            select(pick, index(), x)
        }));
    }

    #[test]
    fn folds_and_nested_folds_validate() {
        let s = shader(&Kernel::map(|x: Expr<f32>| {
            fold(3, x.clone(), |acc, i| {
                fold(2, acc.clone(), |inner, j| {
                    inner + (i.clone() + j + index()).cast::<f32>() * x.sin()
                })
            })
        }));
        assert_eq!(s.matches("for (var").count(), 2, "{s}");
        // A fold over integers with the counter as the next value.
        shader(&Kernel::map(|x: Expr<u32>| fold(4, x, |_acc, i| i)));
        // Sequential folds, the second using the first.
        shader(&Kernel::map(|x: Expr<i32>| {
            let a = fold(5, x.clone(), |acc, i| acc * 3 + i.cast::<i32>());
            fold(5, a.clone(), |acc, _| acc ^ a.clone())
        }));
    }

    #[test]
    fn unused_inputs_and_deep_kernels_validate() {
        let s = shader(&Kernel::map2(|a: Expr<f32>, _b: Expr<f32>| a * 2.0));
        assert!(
            s.contains("@binding(1) var<storage, read> in1")
                && s.contains("@binding(3) var<uniform>"),
            "{s}"
        );
        shader(&Kernel::map(|x: Expr<f32>| {
            let mut e = x;
            for _ in 0..2_000 {
                e = e * 1.0001 + 0.5;
            }
            e
        }));
    }

    /// Found by the fuzz test: a mul_add of two constants whose product overflows
    /// reached WGSL as a constant expression, which is a shader-creation error.
    #[test]
    fn a_constant_product_that_overflows_validates() {
        let k =
            Kernel::map(|x: Expr<f32>| Expr::constant(2.946_547_3e36f32).mul_add(115.486_33f32, x));
        let src = shader(&k);
        validate(&src).unwrap_or_else(|e| panic!("{e}\n{src}"));
        assert!(!src.contains("2.9465473e36f *"), "{src}");
    }

    #[test]
    fn reductions_of_every_type_and_op_validate() {
        let ops = [Reduce::Sum, Reduce::Min, Reduce::Max];
        let kf = Kernel::map(|x: Expr<f32>| (x.clone() * x).sqrt());
        let ki = Kernel::map2(|a: Expr<i32>, b: Expr<i32>| a * b + index().cast::<i32>());
        let ku = Kernel::map(|x: Expr<u32>| x ^ 7u32);
        let kc = Kernel::map(|_x: Expr<f32>| Expr::constant(f32::NAN));
        for op in ops {
            for p in [kf.inner().program(), kc.inner().program()] {
                let p = p.unwrap_or_else(|e| panic!("{e}"));
                let src = generate_reduce(p, op, None).source;
                validate(&src).unwrap_or_else(|e| panic!("{op}: {e}\n{src}"));
            }
            for p in [ki.inner().program(), ku.inner().program()] {
                let p = p.unwrap_or_else(|e| panic!("{e}"));
                let src = generate_reduce(p, op, None).source;
                validate(&src).unwrap_or_else(|e| panic!("{op}: {e}\n{src}"));
            }
        }
    }

    #[test]
    fn hand_written_kernels_validate_as_maps_and_reductions() {
        let k = Kernel::custom("return countOneBits(x) + index;", |x: u32, i: u32| {
            x.count_ones() + i
        });
        let k2 = Kernel::custom2("return a * b;", |a: f32, b: f32, _| a * b);
        for src in [
            k.inner().shader().map(|s| s.source.clone()),
            k.inner()
                .reduce_shader(Reduce::Max)
                .map(|s| s.source.clone()),
            k2.inner().shader().map(|s| s.source.clone()),
            k2.inner()
                .reduce_shader(Reduce::Sum)
                .map(|s| s.source.clone()),
        ] {
            let src = src.unwrap_or_else(|e| panic!("{e}"));
            assert!(src.contains("fn hy_user("), "{src}");
            validate(&src).unwrap_or_else(|e| panic!("{e}\n{src}"));
        }
        // a different body is a different kernel
        let other = Kernel::custom("return x;", |x: u32, _| x);
        assert_ne!(k.id().ok(), other.id().ok());
    }

    #[test]
    fn the_hash_is_the_computation() {
        let a = Kernel::map(|x: Expr<f32>| x * 2.0 + 1.0);
        let b = Kernel::map(|y: Expr<f32>| {
            let two = Expr::constant(2.0f32);
            y * two + 1.0
        });
        let c = Kernel::map(|x: Expr<f32>| x * 2.0 + 1.5);
        assert_eq!(a.id().ok(), b.id().ok());
        assert_ne!(a.id().ok(), c.id().ok());
        let s = a.inner().shader().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.hash, fnv1a(s.source.as_bytes()));
    }

    #[test]
    fn params_validate_and_stay_out_of_the_source() {
        let a = Param::new(1.25f32);
        let n = Param::new(-3i32);
        let m = Param::new(7u32);
        let extra: Vec<Param<f32>> = (0..4).map(|i| Param::new(i as f32 + 0.75)).collect();
        let build = || {
            Kernel::map2(|x: Expr<f32>, y: Expr<f32>| {
                let mut e = a.expr() * x + y + n.expr().cast::<f32>();
                e = e + (index() << m.expr()).cast::<f32>();
                for p in &extra {
                    e = e * p.expr();
                }
                fold(3, e, |acc, _| acc - a.expr())
            })
        };
        let k = build();
        let s = shader(&k);
        assert!(
            s.contains("user: array<vec4<u32>, 2>"),
            "7 params, 2 vec4:
{s}"
        );
        assert!(s.contains("bitcast<f32>(params.user[0][0])"), "{s}");
        assert!(s.contains("bitcast<i32>(params.user[0][1])"), "{s}");
        assert!(s.contains("params.user[0][2]"), "{s}");
        assert!(s.contains("params.user[1][2]"), "{s}");
        assert!(
            !s.contains("1.25") && !s.contains("0.75"),
            "no value in the source:
{s}"
        );
        let compiled = k.inner().shader().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(compiled.uniform_bytes, 16 + 32);
        // Other values, the same shader; another kernel with other cells, the same too.
        let id = k.id().ok();
        a.set(-8.0);
        m.set(40);
        assert_eq!(build().id().ok(), id);
        assert_eq!(build().wgsl().ok(), Some(s));
        let b = Param::new(99.0f32);
        let again = Kernel::map(|x: Expr<f32>| b.expr() * x);
        let c = Param::new(-1.0f32);
        assert_eq!(
            again.id().ok(),
            Kernel::map(|x: Expr<f32>| c.expr() * x).id().ok()
        );
        // A kernel without params has the plain header.
        let plain = Kernel::map(|x: Expr<f32>| x * 2.0);
        let s = shader(&plain);
        assert!(!s.contains("user"), "{s}");
        // Integer parameters, as the whole result.
        shader(&Kernel::map(|_x: Expr<u32>| m.expr()));
        shader(&Kernel::map(|x: Expr<i32>| x / n.expr()));
    }

    #[test]
    fn only_used_helpers_are_emitted() {
        let s = shader(&Kernel::map(|x: Expr<f32>| x * 2.0));
        assert!(!s.contains("fn hy_"), "{s}");
        let s = shader(&Kernel::map(|x: Expr<f32>| x.min(1.0)));
        assert!(
            s.contains("fn hy_min_f32") && s.contains("fn hy_isnan") && !s.contains("fn hy_pow"),
            "{s}"
        );
        assert!(!s.contains("@needs"), "{s}");
    }
}
