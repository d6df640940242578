//! WGSL generation: the kernel's flat program as one compute shader.
//!
//! Each register becomes one `let` (a fold's accumulator a `var` updated by a `for`
//! loop), so the shader reads like the program and no expression nests deeply. The
//! fixed parts are templates in `shaders/` (the uniform block's `Params` struct is
//! one piece, `shaders/params.wgsl`, spliced into each); where WGSL (or a driver)
//! leaves a case open — division by zero, shifts past 31, NaN to integer, NaN in
//! `min` — a helper from `shaders/helpers.wgsl` pins it to the meaning in
//! [`super::ops`].
//!
//! A kernel's parameters ([`super::Param`]) are read from the uniform block, after its
//! 4-word header (`params.user[k / 4][k % 4]`, literal indices); their values are
//! written per call and never appear in the source, so the source, its hash and the
//! pipeline cache key are the same whatever the values.
//!
//! The cut: this file fills the templates and names the binding layout; `gen` writes
//! a program's body as WGSL statements and expressions.

// The entry point and binding layout are read by the GPU device only; without the
// `gpu` feature the source is still generated (Kernel::wgsl, Kernel::id).
#![cfg_attr(not(feature = "gpu"), allow(dead_code))]

mod gen;

use std::collections::BTreeSet;
use std::fmt::Write;

use super::program::{Operand, Program};
use super::reduce::{Reduce, GPU_PER_THREAD};
use super::scalar::ScalarType::{self, F32, F64};
use gen::{literal, Gen};

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

const TEMPLATE: &str = include_str!("../../../shaders/map.wgsl");
const REDUCE_TEMPLATE: &str = include_str!("../../../shaders/reduce.wgsl");
const HELPERS: &str = include_str!("../../../shaders/helpers.wgsl");
/// The uniform block's `Params` struct, spliced where a template says `{{params}}`.
const PARAMS: &str = include_str!("../../../shaders/params.wgsl");

/// Elements each workgroup of a reduction maps and combines into one partial.
pub(crate) const REDUCE_PER_GROUP: u32 = WORKGROUP_SIZE * GPU_PER_THREAD;

/// A generated compute shader.
#[derive(Debug)]
pub(crate) struct Shader {
    pub(crate) source: String,
    /// FNV-1a of `source`: the kernel's stable id and the pipeline cache key.
    pub(crate) hash: u64,
    /// Number of element-wise input bindings (`0..inputs`); the tables follow
    /// (`inputs..inputs + tables`), then the output, then the uniform block.
    pub(crate) inputs: u32,
    /// Number of table bindings.
    pub(crate) tables: u32,
    /// Words of an element's row of results ([`Program::out_words`]): element `i`'s
    /// result `k` starts at `out[i * outputs + k * slot]`, two words (low first) in a
    /// row with a 64-bit result.
    pub(crate) outputs: u32,
    /// Words per element of each element-wise input: 1, or 2 for a 64-bit type.
    pub(crate) input_words: Vec<usize>,
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
            tables: 0,
            outputs: 1,
            input_words: vec![1; inputs as usize],
            uniform_bytes: HEADER_BYTES,
        }
    }
}

/// The compute shader computing `p` for one element per thread.
/// A hand-written kernel's `user` body is called in place of the program's body.
/// Element `i`'s results go to `out[i * M + k]` for `M` results.
pub(crate) fn generate(p: &Program, user: Option<&str>) -> Shader {
    let parts = prepare(p, "elements", user);
    let (m, slot) = (p.out_words(), p.out_slot());
    let mut store = String::new();
    for (k, &(t, o)) in p.outputs.iter().enumerate() {
        let at = |w: usize| match (m, k * slot + w) {
            (1, _) => "li".to_string(),
            (_, 0) => format!("li * {m}u"),
            (_, j) => format!("li * {m}u + {j}u"),
        };
        // Results are stored as their bit patterns, low word first: a constant needs
        // no conversion; a 64-bit value is taken apart through u64 (naga has no
        // bitcast between it and vec2<u32>); a 32-bit one in a row of 64-bit slots
        // has a zero high word.
        let (lo, hi) = match (o, t) {
            (Operand::Const(_, bits), _) => (
                format!("{:#010x}u", bits as u32),
                format!("{:#010x}u", (bits >> 32) as u32),
            ),
            (o, ScalarType::U64 | ScalarType::I64 | ScalarType::F64) => {
                let v = parts.gen.operand(o);
                let b = match t {
                    ScalarType::U64 => v,
                    _ => format!("bitcast<u64>({v})"),
                };
                let _ = writeln!(store, "    let w{k} = {b};");
                (
                    format!("u32(w{k} & 0xfffffffflu)"),
                    format!("u32(w{k} >> 32u)"),
                )
            }
            (o, _) => (
                format!("bitcast<u32>({})", parts.gen.operand(o)),
                "0u".into(),
            ),
        };
        let _ = writeln!(store, "    out[{}] = {lo};", at(0));
        if slot == 2 {
            let _ = writeln!(store, "    out[{}] = {hi};", at(1));
        }
    }
    let store = store.trim_end().to_string();
    instantiate(TEMPLATE, p, parts, &[("store", store)])
}

/// The compute shader mapping `p` over [`REDUCE_PER_GROUP`] elements per workgroup
/// and combining them with `op` into one partial per workgroup (see
/// [`super::reduce`] for the order of combination and the error bound).
pub(crate) fn generate_reduce(p: &Program, op: Reduce, user: Option<&str>) -> Shader {
    let mut parts = prepare(p, "partials, one per workgroup", user);
    let ty = p.output();
    let g = &mut parts.gen;
    let result = g.operand(p.result());
    let ab = ["a".to_string(), "b".to_string()];
    let combine = match (op, ty) {
        (Reduce::Sum, F64) => g.helper("sum2_f64", &ab),
        (Reduce::Sum, _) => "a + b".to_string(),
        (Reduce::Min, F32) => g.helper("min_f32", &ab),
        (Reduce::Max, F32) => g.helper("max_f32", &ab),
        (Reduce::Min, F64) => g.helper("min_f64", &ab),
        (Reduce::Max, F64) => g.helper("max_f64", &ab),
        (Reduce::Min, _) => "min(a, b)".to_string(),
        (Reduce::Max, _) => "max(a, b)".to_string(),
    };
    let words = partial_words(op, ty);
    let identity = literal(ty, op.identity_bits(ty));
    // what a partial is, how a value becomes one, and how it is stored: its words at
    // `out[g * words]`, low first (a 64-bit value taken apart through u64)
    let (acc, lift, identity, store) = match (words, ty) {
        (4, _) => (
            "vec2<f64>".to_string(),
            "vec2<f64>(x, 0.0lf)".to_string(),
            "vec2<f64>(0.0lf, 0.0lf)".to_string(),
            "        let s = bitcast<u64>(v.x);\n        let c = bitcast<u64>(v.y);\n        \
             out[4u * g] = u32(s & 0xfffffffflu);\n        out[4u * g + 1u] = u32(s >> 32u);\n        \
             out[4u * g + 2u] = u32(c & 0xfffffffflu);\n        out[4u * g + 3u] = u32(c >> 32u);"
                .to_string(),
        ),
        (2, _) => {
            let w = match ty {
                ScalarType::U64 => "v".to_string(),
                _ => "bitcast<u64>(v)".to_string(),
            };
            (
                ty.name().to_string(),
                "x".to_string(),
                identity,
                format!(
                    "        let w = {w};\n        out[2u * g] = u32(w & 0xfffffffflu);\n        \
                     out[2u * g + 1u] = u32(w >> 32u);"
                ),
            )
        }
        _ => (
            ty.name().to_string(),
            "x".to_string(),
            identity,
            "        out[g] = bitcast<u32>(v);".to_string(),
        ),
    };
    let own = [
        ("result", result),
        ("op", op.name().to_string()),
        ("ty", ty.name().to_string()),
        ("acc", acc),
        ("lift", lift),
        ("identity", identity),
        ("combine", combine),
        ("store", store),
        ("partial_words", words.to_string()),
        ("per_thread", GPU_PER_THREAD.to_string()),
        ("per_group", REDUCE_PER_GROUP.to_string()),
    ];
    let mut shader = instantiate(REDUCE_TEMPLATE, p, parts, &own);
    shader.outputs = words as u32;
    shader
}

/// Words of one workgroup's partial of a reduction with `op` over values of `ty`: 1,
/// 2 for a 64-bit value, 4 for an f64 sum (the sum and its rounding error).
pub(crate) fn partial_words(op: Reduce, ty: ScalarType) -> usize {
    match (op, ty) {
        (Reduce::Sum, F64) => 4,
        (_, t) if t.is_wide() => 2,
        _ => 1,
    }
}

/// What every kernel's template is filled with, besides what its kind adds.
struct Parts<'p> {
    /// The body's statements, emitted (and the helpers they call, recorded).
    gen: Gen<'p>,
    bindings: String,
    signature: String,
    /// The hand-written function, if any.
    extra: String,
}

/// `template` with `{{params}}` spliced in, then every `{{name}}` filled: from
/// `parts`, the program, and `own` (what the kernel's kind adds).
fn instantiate(template: &str, p: &Program, parts: Parts<'_>, own: &[(&str, String)]) -> Shader {
    let arity = p.inputs.len() + p.tables.len();
    let common = [
        ("signature", parts.signature),
        ("bindings", parts.bindings),
        ("params_binding", (arity + 1).to_string()),
        ("helpers", helpers(&parts.gen.helpers) + &parts.extra),
        ("workgroup_size", WORKGROUP_SIZE.to_string()),
        ("body", parts.gen.out.trim_end_matches('\n').to_string()),
        ("user", params_field(p)),
    ];
    let values: Vec<(&str, &str)> = common
        .iter()
        .chain(own)
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    let source = fill(&template.replace("{{params}}", params_struct()), &values);
    let mut shader = Shader::from_source(source, p.inputs.len() as u32);
    shader.tables = p.tables.len() as u32;
    shader.outputs = p.out_words() as u32;
    shader.input_words = p
        .inputs
        .iter()
        .map(|t| if t.is_wide() { 2 } else { 1 })
        .collect();
    shader.uniform_bytes = uniform_bytes(user_words(p));
    shader
}

/// `template` with each `{{name}}` in `values` replaced by its value, in one pass:
/// what is put in is never searched for names again. Unknown names stay as they are.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() * 2);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else {
            break;
        };
        let end = start + 2 + len + 2;
        let name = &rest[start + 2..start + 2 + len];
        out.push_str(&rest[..start]);
        match values.iter().find(|(n, _)| *n == name) {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&rest[start..end]),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The `Params` struct of `shaders/params.wgsl`: the file after its first paragraph
/// (a note for readers of `shaders/`).
fn params_struct() -> &'static str {
    PARAMS
        .split_once("\n\n")
        .map_or(PARAMS, |(_, s)| s)
        .trim_end()
}

/// Words of the uniform block after its header: the kernel's parameter values, then
/// three per table (its length, the global index of the first element this device
/// holds, and how many it holds).
pub(crate) fn user_words(p: &Program) -> usize {
    p.param_layout().1 + 3 * p.tables.len()
}

/// The uniform block's field holding the kernel's parameters and table extents (none
/// without).
fn params_field(p: &Program) -> String {
    let (n, t) = (p.params.len(), p.tables.len());
    match user_words(p) {
        0 => String::new(),
        words => format!(
            "\n    // The kernel's {n} parameter(s), as bit patterns (a 64-bit one in two words,\n    \
             // low first), then for each of its\n    \
             // {t} table(s): length, first element held, elements held. Word k is\n    \
             // user[k / 4][k % 4].\n    user: array<vec4<u32>, {}>,",
            words.div_ceil(4)
        ),
    }
}

/// The parts of `p`'s shader every kind has: its body emitted (or, for a hand-written
/// kernel, a call of its `user` body into register 0), the binding declarations (the
/// output described as `out_what`), the kernel's signature, and the hand-written
/// function, if any.
fn prepare<'p>(p: &'p Program, out_what: &str, user: Option<&str>) -> Parts<'p> {
    let mut g = Gen::new(p);
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
                p.output(),
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
                    p.output(),
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
    let n = p.inputs.len();
    for (t, ty) in p.tables.iter().enumerate() {
        let _ = writeln!(
            bindings,
            "// table {t}: the {ty} elements of a whole-array input this device holds\n\
             @group(0) @binding({}) var<storage, read> tbl{t}: array<u32>;",
            n + t
        );
    }
    let arity = n + p.tables.len();
    let outs: Vec<&str> = p.outputs.iter().map(|o| o.0.name()).collect();
    let _ = write!(
        bindings,
        "// output: ({}) {out_what}, as bit patterns, the results of one element together\n\
         @group(0) @binding({arity}) var<storage, read_write> out: array<u32>;",
        outs.join(", ")
    );
    let mut ins: Vec<String> = p.inputs.iter().map(|t| t.name().to_string()).collect();
    ins.extend(p.tables.iter().map(|t| format!("table<{t}>")));
    let signature = format!("({}) -> ({})", ins.join(", "), outs.join(", "));
    Parts {
        gen: g,
        bindings,
        signature,
        extra,
    }
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
    // what the wanted sections need, and what those need, until nothing is added (a
    // section may need one written before it in the file)
    loop {
        let before = want.len();
        for (name, text) in &sections {
            if want.contains(name) {
                for line in text.lines() {
                    if let Some(dep) = line.strip_prefix("// @needs ") {
                        want.insert(dep.trim());
                    }
                }
            }
        }
        if want.len() == before {
            break;
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

/// 64-bit FNV-1a: a stable hash (the same in every process and release).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Parses and validates `src` with naga, as wgpu does before any driver sees it.
#[cfg(test)]
pub(crate) fn validate(src: &str) -> std::result::Result<(), String> {
    let module = naga::front::wgsl::parse_str(src).map_err(|e| e.emit_to_string(src))?;
    // f64 is valid where a shader uses it: a device without it never gets one
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default()
            | naga::valid::Capabilities::FLOAT64
            | naga::valid::Capabilities::SHADER_INT64,
    )
    .validate(&module)
    .map_err(|e| e.emit_to_string(src))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{fold, index, select, Element, Expr, Kernel, Param};
    use crate::Reduce;

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
        assert_eq!(s.matches("loop {").count(), 2, "{s}");
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

    /// 64-bit inputs come as two words put together through u64, and a row with a
    /// 64-bit result gives every result two words: an f32 beside an f64 has a zero high
    /// word, the f64 is taken apart through u64.
    #[test]
    fn wide_inputs_and_results_move_as_word_pairs() {
        let k = Kernel::new(|(x, i): (Expr<f64>, Expr<i64>)| {
            (x.clone() * 2.0f64, x.cast::<f32>(), i.cast::<u64>())
        });
        let s = k.inner().shader().expect("shader");
        validate(&s.source).unwrap_or_else(|e| panic!("{e}\n{}", s.source));
        assert_eq!((s.outputs, s.input_words.clone()), (6, vec![2, 2]));
        for want in [
            "bitcast<f64>(u64(in0[2u * li]) | (u64(in0[2u * li + 1u]) << 32u))",
            "out[li * 6u] = u32(w0 & 0xfffffffflu);",
            "out[li * 6u + 1u] = u32(w0 >> 32u);",
            "out[li * 6u + 3u] = 0u;",
            "out[li * 6u + 5u] = u32(w2 >> 32u);",
        ] {
            assert!(s.source.contains(want), "{want}\n{}", s.source);
        }
    }

    /// A reduction to a 64-bit value writes its partial in words: four for an f64 sum
    /// (the sum and its error, combined by two-sum), two for the rest.
    #[test]
    fn wide_reductions_write_partials_in_words() {
        let f = Kernel::new(|(x,): (Expr<f64>,)| x * 2.0f64);
        let i = Kernel::new(|(x,): (Expr<i64>,)| x);
        for (k, op, words) in [
            (f.inner().reduce_shader(Reduce::Sum), Reduce::Sum, 4),
            (f.inner().reduce_shader(Reduce::Min), Reduce::Min, 2),
            (i.inner().reduce_shader(Reduce::Max), Reduce::Max, 2),
        ] {
            let s = k.expect("shader");
            validate(&s.source).unwrap_or_else(|e| panic!("{op:?}: {e}\n{}", s.source));
            assert_eq!(s.outputs, words, "{op:?}");
            assert!(
                s.source
                    .contains(&format!("out[{words}u * g + {}u]", words - 1)),
                "{}",
                s.source
            );
        }
        let s = f.inner().reduce_shader(Reduce::Sum).expect("sum");
        assert!(s.source.contains("hy_sum2_f64(a, b)"), "{}", s.source);
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

    /// An f64 kernel is valid WGSL with naga's f64 (a device without it is never given
    /// one): its literals carry `lf`, non-normal ones come from f32 patterns, and its
    /// conversions and comparisons use the f64 helpers.
    #[test]
    fn an_f64_kernel_validates() {
        let k = Kernel::map(|x: Expr<f32>| {
            let d = x.cast::<f64>();
            let m = (d.clone() * 0.5f64 + 0.0f64).min(1e300f64) % 3.0f64;
            let q = select(m.clone().ne(d.clone()), m, d.sqrt());
            q.cast::<i32>().cast::<f32>() + q.cast::<u32>().cast::<f32>() + q.cast::<f32>()
        });
        let s = shader(&k);
        for want in [
            "f64",
            "5e-1lf",
            "fn hy_f64_to_i32",
            "fn hy_f64_to_u32",
            "fn hy_min_f64",
            "fn hy_rem_f64",
            "fn hy_isnan(",
        ] {
            assert!(s.contains(want), "{want}:\n{s}");
        }
    }
}
