//! Kernels: a data-parallel function written once, as a closure over symbolic values.
//!
//! `Kernel::map(|x: Expr<f32>| ...)` runs the closure once, when the kernel is built,
//! to record an expression tree ([`Expr`]). The tree is lowered to a flat, typed
//! program ([`program`]) from which both backends are generated: WGSL for the GPU
//! ([`wgsl`]) and a block-wise evaluator for the CPU ([`eval`]). Both follow the scalar
//! semantics in [`ops`], which are WGSL's, so the two devices compute the same function
//! by construction.
//!
//! A kernel may read [`Param`]s: values set between calls. The compiled parts (program,
//! shader, CPU plans) are made once and shared; a call works on a *binding* of the
//! kernel ([`KernelDef::bind`]) that adds the parameters' values read at its start.

pub(crate) mod custom;
pub(crate) mod eval;
pub(crate) mod expr;
mod loops;
pub(crate) mod ops;
pub(crate) mod param;
pub(crate) mod program;
pub(crate) mod range;
pub(crate) mod reduce;
mod scalar;
pub(crate) mod sig;
mod table;
pub(crate) mod wgsl;

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::Result;
pub use expr::{fold, index, select, Expr};
pub use loops::{fold_while, fold_with, Carry};
pub use param::Param;
use program::Program;
pub use reduce::Reduce;
pub use scalar::{Element, Float, Integer, Numeric, Scalar, ScalarType, Value};
pub use sig::{Arg, Args, InType, InTypes, OutTypes, Results};
pub use table::{Table, TableIndex};

/// A data-parallel kernel taking elements of type `I` (one or two inputs) and producing
/// elements of type `O`.
///
/// Built once, from a closure over symbolic values; cheap to clone (shared), `Send` and
/// `Sync`. An expression that cannot be compiled (see [`Error::InvalidKernel`](crate::Error::InvalidKernel)) is
/// reported by the first call that uses the kernel.
pub struct Kernel<I, O> {
    inner: Arc<KernelDef>,
    _types: PhantomData<fn(I) -> O>,
}

/// CPU plans a kernel with parameters keeps, for its most recently used values.
const BOUND_PLANS: usize = 8;

/// A kernel as built: its compiled parts, shared by every call, reading its
/// parameters' current values (or, for a fused chain, the values its stages had when
/// it was fused). What a [`Kernel`] holds and a lazy chain's stages are.
pub(crate) struct KernelDef {
    compiled: Arc<Compiled>,
    /// Parameter values fixed for this kernel, as bit patterns in the order of
    /// `Program::params`; `None` for a kernel that reads the current ones.
    values: Option<Vec<u64>>,
}

/// One call's binding of a kernel: the kernel with its parameters' values read once,
/// at the call's start, so that every device of the call sees the same values. What
/// the scheduler and the devices run. Made only by [`KernelDef::bind`].
pub(crate) struct Bound(Arc<KernelDef>);

impl std::ops::Deref for Bound {
    type Target = KernelDef;

    fn deref(&self) -> &KernelDef {
        &self.0
    }
}

/// What is made from a kernel's tree once, whatever its parameters' values.
struct Compiled {
    program: Result<Program>,
    /// The generated WGSL, made on first need and kept.
    wgsl: OnceLock<Result<Arc<wgsl::Shader>>>,
    /// The CPU evaluation plan of a kernel without parameters, made on first need.
    plan: OnceLock<Result<Arc<eval::Plan>>>,
    /// A kernel with parameters: plans for the last [`BOUND_PLANS`] values used, the
    /// most recent last.
    bound: Mutex<Vec<(Vec<u64>, Arc<eval::Plan>)>>,
    /// The reduction shaders (sum, min, max), each generated on first need.
    reduce_wgsl: [OnceLock<Result<Arc<wgsl::Shader>>>; 3],
    /// A hand-written kernel's two halves (its `program` then only gives the types).
    custom: Option<custom::Custom>,
}

impl KernelDef {
    fn new(program: Result<Program>) -> Self {
        Self::with_custom(program, None)
    }

    fn with_custom(program: Result<Program>, custom: Option<custom::Custom>) -> Self {
        KernelDef {
            compiled: Arc::new(Compiled {
                program,
                wgsl: OnceLock::new(),
                plan: OnceLock::new(),
                bound: Mutex::new(Vec::new()),
                reduce_wgsl: Default::default(),
                custom,
            }),
            values: None,
        }
    }

    /// The kernels `first` then `rest`, applied one after another, as one kernel (see
    /// [`Program::then`]): each of `rest` takes the previous one's result as its
    /// input 0, and its other inputs become the fused kernel's, after those before
    /// (the fused kernel's inputs are `first`'s, then each of `rest`'s but its first).
    /// Each stage's parameter values are read now, as a call binds them. Hand-written
    /// stages cannot be fused (their WGSL is opaque).
    pub(crate) fn fused(first: &Arc<KernelDef>, rest: &[Arc<KernelDef>]) -> Result<Arc<KernelDef>> {
        let opaque = || crate::Error::InvalidKernel {
            reason: "a hand-written kernel cannot be fused with others".into(),
        };
        if first.custom().is_some() {
            return Err(opaque());
        }
        let mut program = first.program()?.clone();
        let mut values = first.values().into_owned();
        for k in rest {
            if k.custom().is_some() {
                return Err(opaque());
            }
            program = program.then(k.program()?)?;
            values.extend_from_slice(&k.values());
        }
        let bound = !program.params.is_empty();
        let made = KernelDef::new(Ok(program));
        Ok(Arc::new(KernelDef {
            compiled: made.compiled,
            values: bound.then_some(values),
        }))
    }

    /// The hand-written halves, for a hand-written kernel.
    pub(crate) fn custom(&self) -> Option<&custom::Custom> {
        self.compiled.custom.as_ref()
    }

    fn user(&self) -> Option<&str> {
        self.custom().map(|c| c.body.as_str())
    }

    pub(crate) fn program(&self) -> Result<&Program> {
        self.compiled.program.as_ref().map_err(Clone::clone)
    }

    /// This kernel with its parameters' current values: what one call runs, so that
    /// every device of the call sees the same values. A kernel without parameters (or
    /// one that failed to compile) is its own binding, at the cost of an `Arc` clone.
    pub(crate) fn bind(self: &Arc<Self>) -> Bound {
        Bound(match &self.compiled.program {
            Ok(p) if !p.params.is_empty() => Arc::new(KernelDef {
                compiled: self.compiled.clone(),
                values: Some(p.params.iter().map(|c| c.0.bits()).collect()),
            }),
            _ => self.clone(),
        })
    }

    /// The parameter values this kernel runs with (bit patterns, in the order of
    /// `Program::params`): a binding's, else the current ones. Empty without
    /// parameters.
    pub(crate) fn values(&self) -> Cow<'_, [u64]> {
        match (&self.values, &self.compiled.program) {
            (Some(v), _) => Cow::Borrowed(v),
            (None, Ok(p)) if !p.params.is_empty() => {
                Cow::Owned(p.params.iter().map(|c| c.0.bits()).collect())
            }
            _ => Cow::Borrowed(&[]),
        }
    }

    /// Words per element of each element-wise input: 1, or 2 for a 64-bit type.
    pub(crate) fn input_words(&self) -> Vec<usize> {
        self.compiled.program.as_ref().map_or_else(
            |_| Vec::new(),
            |p| {
                p.inputs
                    .iter()
                    .map(|t| if t.is_wide() { 2 } else { 1 })
                    .collect()
            },
        )
    }

    /// Words of an element's row of results ([`Program::out_words`]), at least 1.
    pub(crate) fn out_words(&self) -> usize {
        self.compiled
            .program
            .as_ref()
            .map_or(1, |p| p.out_words().max(1))
    }

    /// Whether an element-wise input, a table or a result is 64 bits wide (a GPU needs
    /// `u64` for it).
    pub(crate) fn wide_io(&self) -> bool {
        self.compiled.program.as_ref().is_ok_and(|p| {
            p.inputs
                .iter()
                .chain(&p.tables)
                .chain(p.outputs.iter().map(|o| &o.0))
                .any(|t| t.is_wide())
        })
    }

    /// The parameter values as the GPU's uniform block holds them: each value's 32-bit
    /// words (two for a 64-bit type, low first), in order.
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    pub(crate) fn param_words(&self) -> Vec<u32> {
        let values = self.values();
        let wide = self
            .compiled
            .program
            .as_ref()
            .map(|p| p.param_types())
            .unwrap_or_default();
        let mut words = Vec::with_capacity(values.len() * 2);
        for (k, &v) in values.iter().enumerate() {
            words.push(v as u32);
            if wide.get(k).is_some_and(|t| t.is_wide()) {
                words.push((v >> 32) as u32);
            }
        }
        words
    }

    /// The WGSL shader for this kernel, generated once (it does not depend on the
    /// parameters' values).
    pub(crate) fn shader(&self) -> Result<Arc<wgsl::Shader>> {
        self.compiled
            .wgsl
            .get_or_init(|| {
                self.program()
                    .map(|p| Arc::new(wgsl::generate(p, self.user())))
            })
            .clone()
    }

    /// The WGSL shader reducing this kernel's values with `op`, generated once.
    pub(crate) fn reduce_shader(&self, op: Reduce) -> Result<Arc<wgsl::Shader>> {
        let slot = match op {
            Reduce::Sum => 0,
            Reduce::Min => 1,
            Reduce::Max => 2,
        };
        self.compiled.reduce_wgsl[slot]
            .get_or_init(|| {
                self.program()
                    .map(|p| Arc::new(wgsl::generate_reduce(p, op, self.user())))
            })
            .clone()
    }

    /// The program's (first) output type.
    pub(crate) fn output_type(&self) -> Result<ScalarType> {
        Ok(self.program()?.output())
    }

    /// The CPU evaluation plan: for a kernel without parameters, made once; for one
    /// with parameters, the plan of [`values`](Self::values), with the values as
    /// literals. The last [`BOUND_PLANS`] are kept, so a value seen recently costs a
    /// lookup and a new one a plan build. Measured (release, a shared 2-core x86-64 VM,
    /// three runs; `benches/params.rs` times it per call): a new value costs 2.5–5.4 us for saxpy
    /// and 5.8–10.5 us for a 10-term polynomial (10 mul-adds), a repeated one
    /// 0.1–0.3 us; a 1M-element call takes hundreds of microseconds, so binding stays
    /// below 1%.
    ///
    /// A hand-written kernel has no plan: its CPU half is [`custom`](Self::custom)'s
    /// function.
    pub(crate) fn plan(&self) -> Result<Arc<eval::Plan>> {
        if self.custom().is_some() {
            return Err(crate::Error::InvalidKernel {
                reason: "a hand-written kernel has no evaluation plan".into(),
            });
        }
        let c = &self.compiled;
        let p = self.program()?;
        if p.params.is_empty() {
            return c
                .plan
                .get_or_init(|| eval::Plan::new(p).map(Arc::new))
                .clone();
        }
        let values = self.values();
        let lock = || crate::sync::lock(&c.bound);
        {
            let mut bound = lock();
            if let Some(i) = bound.iter().position(|(v, _)| v[..] == values[..]) {
                let hit = bound.remove(i);
                let plan = hit.1.clone();
                bound.push(hit);
                return Ok(plan);
            }
        }
        // Built outside the lock: another thread may build the same plan meanwhile,
        // which costs time, not correctness.
        let plan = Arc::new(eval::Plan::new(&p.bind(&values))?);
        let mut bound = lock();
        if !bound.iter().any(|(v, _)| v[..] == values[..]) {
            bound.push((values.into_owned(), plan.clone()));
            if bound.len() > BOUND_PLANS {
                bound.remove(0);
            }
        }
        Ok(plan)
    }
}

impl<I, O> Clone for Kernel<I, O> {
    fn clone(&self) -> Self {
        Kernel {
            inner: self.inner.clone(),
            _types: PhantomData,
        }
    }
}

impl<I: Element, O: Element> Kernel<I, O> {
    /// A one-input kernel: `f(x)` is applied to every element.
    ///
    /// ```
    /// use hybrid::{Expr, Kernel};
    /// let k = Kernel::map(|x: Expr<f32>| (x * 2.0 + 1.0).sqrt());
    /// # let _ = k;
    /// ```
    pub fn map(f: impl FnOnce(Expr<I>) -> Expr<O>) -> Self {
        let out = f(Expr::input(0));
        Self::from_root(1, out)
    }

    /// A two-input kernel: `f(a, b)` is applied to every pair of elements at the same
    /// index.
    pub fn map2(f: impl FnOnce(Expr<I>, Expr<I>) -> Expr<O>) -> Self {
        let out = f(Expr::input(0), Expr::input(1));
        Self::from_root(2, out)
    }

    fn from_root(arity: usize, out: Expr<O>) -> Self {
        let program = Program::lower(&[I::TYPE; 2][..arity], &[], vec![out.into_node()]);
        Kernel {
            inner: Arc::new(KernelDef::new(program)),
            _types: PhantomData,
        }
    }

    /// A hand-written kernel: `wgsl` is the body of the WGSL function
    /// `fn hy_user(x: I, index: u32) -> O`, `cpu` the same function in Rust (`index`
    /// is the element's global index, wrapping at 2^32). The library checks on a
    /// sample that the two agree (see [`tolerance`](Self::tolerance)) before using
    /// the GPU half.
    ///
    /// ```
    /// use hybrid::Kernel;
    /// let k = Kernel::custom(
    ///     "return select(x * 0.5, 3.0 * x + 1.0, (bitcast<u32>(x) & 1u) == 1u);",
    ///     |x: f32, _i: u32| if x.to_bits() & 1 == 1 { 3.0 * x + 1.0 } else { x * 0.5 },
    /// );
    /// # let _ = k;
    /// ```
    pub fn custom(wgsl: &str, cpu: impl Fn(I, u32) -> O + Send + Sync + 'static) -> Self {
        let f = move |ins: &[&[u32]], first: u64, out: &mut [u32]| {
            let xs: &[I] = bytemuck::cast_slice(ins[0]);
            for (i, (o, &x)) in out.iter_mut().zip(xs).enumerate() {
                *o = cpu(x, first.wrapping_add(i as u64) as u32).to_bits();
            }
        };
        Self::from_halves(1, wgsl, Box::new(f))
    }

    /// A two-input hand-written kernel: `wgsl` is the body of
    /// `fn hy_user(a: I, b: I, index: u32) -> O`, `cpu` the same in Rust.
    pub fn custom2(wgsl: &str, cpu: impl Fn(I, I, u32) -> O + Send + Sync + 'static) -> Self {
        let f = move |ins: &[&[u32]], first: u64, out: &mut [u32]| {
            let (xs, ys): (&[I], &[I]) =
                (bytemuck::cast_slice(ins[0]), bytemuck::cast_slice(ins[1]));
            for (i, (o, (&a, &b))) in out.iter_mut().zip(xs.iter().zip(ys)).enumerate() {
                *o = cpu(a, b, first.wrapping_add(i as u64) as u32).to_bits();
            }
        };
        Self::from_halves(2, wgsl, Box::new(f))
    }

    fn from_halves(arity: usize, wgsl: &str, cpu: Box<custom::CpuFn>) -> Self {
        let types = [I::TYPE; 2];
        let program = Program {
            inputs: types[..arity].to_vec(),
            tables: Vec::new(),
            outputs: vec![(O::TYPE, program::Operand::Reg(0))],
            body: Vec::new(),
            regs: vec![O::TYPE],
            params: Vec::new(),
        };
        let inner = KernelDef::with_custom(
            Ok(program),
            Some(custom::Custom::new(wgsl.to_string(), cpu)),
        );
        Kernel {
            inner: Arc::new(inner),
            _types: PhantomData,
        }
    }

    /// Sets a hand-written kernel's tolerance: the relative error by which its GPU
    /// and CPU halves may differ for `f32` outputs (integer outputs must be equal).
    /// The default is `1e-5` (about 84 ulps). No effect on other kernels.
    pub fn tolerance(self, rel: f32) -> Self {
        if let Some(c) = self.inner.custom() {
            c.set_tolerance(rel);
        }
        self
    }
}

impl<I: InTypes, O: OutTypes> Kernel<I, O> {
    /// A kernel of any signature: `f` takes a tuple of arguments, each an element-wise
    /// input `Expr<T>` or a whole-array input [`Table<T>`] (up to 12, of any mix of
    /// element types), and returns one `Expr` or a tuple of up to 8 (each of its own
    /// type). The kernel's type follows from the closure's:
    /// `Kernel<(f32, f32, Table<u32>), (f32, u32)>`.
    ///
    /// ```
    /// use hybrid::{Expr, Kernel};
    /// // Black-Scholes' inputs in, (call, put) out
    /// let k = Kernel::new(|(s, x, t): (Expr<f32>, Expr<f32>, Expr<f32>)| {
    ///     let forward = x * (t * -0.02).exp();
    ///     let intrinsic = (s.clone() - forward.clone()).max(0.0);
    ///     (intrinsic.clone(), intrinsic - s + forward)
    /// });
    /// assert_eq!(k.arity(), 3);
    /// ```
    pub fn new<A, R>(f: impl FnOnce(A) -> R) -> Self
    where
        A: Args<Types = I>,
        R: Results<Types = O>,
    {
        let roots = f(A::make()).into_nodes();
        let (mut each, mut whole) = (Vec::new(), Vec::new());
        for kind in I::KINDS {
            match *kind {
                sig::ArgKind::Each(t) => each.push(t),
                sig::ArgKind::Whole(t) => whole.push(t),
            }
        }
        let program = Program::lower(&each, &whole, roots);
        Kernel {
            inner: Arc::new(KernelDef::new(program)),
            _types: PhantomData,
        }
    }
}

impl<I, O> Kernel<I, O> {
    /// How many inputs the kernel takes: element-wise inputs and tables.
    pub fn arity(&self) -> usize {
        match self.inner.program() {
            Ok(p) => p.inputs.len() + p.tables.len(),
            Err(_) => 0,
        }
    }

    /// A stable 64-bit identity of the kernel's computation: equal for kernels that
    /// compute the same thing, whatever closure built them.
    pub fn id(&self) -> Result<u64> {
        Ok(self.inner.shader()?.hash)
    }

    /// The WGSL compute shader generated for this kernel.
    pub fn wgsl(&self) -> Result<String> {
        Ok(self.inner.shader()?.source.clone())
    }

    pub(crate) fn inner(&self) -> &Arc<KernelDef> {
        &self.inner
    }
}

impl<I, O> fmt::Debug for Kernel<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner.program() {
            Ok(p) => f
                .debug_struct("Kernel")
                .field("inputs", &p.inputs)
                .field("tables", &p.tables)
                .field("outputs", &p.outputs)
                .field("params", &p.params.len())
                .field("instructions", &p.instruction_count())
                .finish(),
            Err(e) => f.debug_struct("Kernel").field("error", &e).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(k: &KernelDef, xs: &[f32]) -> Vec<f32> {
        let plan = k.plan().unwrap_or_else(|e| panic!("{e}"));
        let bits: Vec<u32> = xs.iter().map(|x| x.to_bits()).collect();
        let mut out = vec![0u32; xs.len()];
        plan.run_block(&mut plan.scratch(), &[&bits], 0, &mut out);
        out.iter().map(|&b| f32::from_bits(b)).collect()
    }

    #[test]
    fn a_binding_keeps_the_values_it_was_made_with() {
        let a = Param::new(2.0f32);
        let k = Kernel::map(|x: Expr<f32>| a.expr() * x + 1.0);
        let first = k.inner().bind();
        a.set(3.0);
        let second = k.inner().bind();
        assert_eq!(eval(&first, &[1.0, 2.0]), [3.0, 5.0]);
        assert_eq!(eval(&second, &[1.0, 2.0]), [4.0, 7.0]);
        // The kernel itself reads the current value.
        a.set(0.5);
        assert_eq!(eval(k.inner(), &[2.0]), [2.0]);
        // Every binding shares the compiled parts.
        assert!(Arc::ptr_eq(&first.compiled, &second.compiled));
        let plain = Kernel::map(|x: Expr<f32>| x + 1.0);
        assert!(Arc::ptr_eq(&plain.inner().bind().0, plain.inner()));
    }

    #[test]
    fn fused_stages_compute_what_the_stages_compute_in_turn() {
        let a = Param::new(3.0f32);
        let stages: Vec<Kernel<f32, f32>> = vec![
            Kernel::map(|x: Expr<f32>| x * 2.0 + 1.0),
            Kernel::map(|x: Expr<f32>| x.abs().sqrt() + index().cast::<f32>()),
            Kernel::map(|x: Expr<f32>| hybrid_fold(x)),
            Kernel::map(|x: Expr<f32>| select(x.clone().gt(4.0), x.clone() * a.expr(), -x)),
        ];
        let xs: Vec<f32> = (0..300).map(|i| (i as f32 - 150.0) * 0.37).collect();
        let mut want = xs.clone();
        for k in &stages {
            want = eval(&k.inner().bind(), &want);
        }
        let inners: Vec<Arc<KernelDef>> = stages.iter().map(|k| k.inner().clone()).collect();
        let fused = KernelDef::fused(&inners[0], &inners[1..]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(eval(&fused, &xs), want);
        // one program: the first stage's input is the only input, params carried
        let p = fused.program().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.inputs.len(), 1);
        assert_eq!(p.params.len(), 1);
        // its WGSL is one valid shader
        validates(&fused);
    }

    /// Runs `k` over `ins` (bit patterns) on the CPU.
    fn eval_bits(k: &KernelDef, ins: &[&[u32]]) -> Vec<u32> {
        let plan = k.plan().unwrap_or_else(|e| panic!("{e}"));
        let mut out = vec![0u32; ins.first().map_or(0, |x| x.len())];
        plan.run_block(&mut plan.scratch(), ins, 0, &mut out);
        out
    }

    /// Panics unless `k`'s shader is valid WGSL (naga, as wgpu checks it).
    fn validates(k: &KernelDef) {
        let src = k.shader().unwrap_or_else(|e| panic!("{e}")).source.clone();
        wgsl::validate(&src).unwrap_or_else(|e| panic!("{e}\n{src}"));
    }

    #[test]
    fn stages_of_several_inputs_fuse_their_inputs_after_the_chains() {
        let a = Param::new(5u32);
        // x: f32; then (x, y: u32); then (x, z: i32, w: u32), each extra input read
        // inside a fold too, so the renumbering reaches loop bodies
        let s0 = Kernel::map(|x: Expr<f32>| x * 1.5 - 2.0);
        let s1 = Kernel::new(|(x, y): (Expr<f32>, Expr<u32>)| {
            let yf = y.clone().cast::<f32>();
            fold(3, x, move |acc, i| acc * 0.5 + yf.clone() + i.cast::<f32>())
                + (y * a.expr()).cast::<f32>()
        });
        let s2 = Kernel::new(|(x, z, w): (Expr<f32>, Expr<i32>, Expr<u32>)| {
            let t = z.clone().cast::<f32>() * x.clone() + (w.clone() ^ index()).cast::<f32>();
            select(z.gt(0i32), t, x - w.cast::<f32>())
        });
        let n = 257u32;
        let xs: Vec<u32> = (0..n).map(|i| (i as f32 * 0.31 - 40.0).to_bits()).collect();
        let ys: Vec<u32> = (0..n)
            .map(|i| i.wrapping_mul(2_654_435_761) >> 20)
            .collect();
        let zs: Vec<u32> = (0..n).map(|i| (i as i32 - 128) as u32).collect();
        let ws: Vec<u32> = (0..n).map(|i| i.wrapping_mul(40_503) & 0xffff).collect();
        let mut want = eval_bits(&s0.inner().bind(), &[&xs]);
        want = eval_bits(&s1.inner().bind(), &[&want, &ys]);
        want = eval_bits(&s2.inner().bind(), &[&want, &zs, &ws]);

        let fused = KernelDef::fused(s0.inner(), &[s1.inner().clone(), s2.inner().clone()])
            .unwrap_or_else(|e| panic!("{e}"));
        let p = fused.program().unwrap_or_else(|e| panic!("{e}"));
        use ScalarType::{F32, I32, U32};
        assert_eq!(
            p.inputs,
            [F32, U32, I32, U32],
            "the chain's, then each stage's"
        );
        assert_eq!(p.params.len(), 1);
        assert_eq!(eval_bits(&fused, &[&xs, &ys, &zs, &ws]), want);
        validates(&fused);

        // a first stage of several inputs keeps its own, the next's follow
        let fused =
            KernelDef::fused(s1.inner(), &[s2.inner().clone()]).unwrap_or_else(|e| panic!("{e}"));
        let p = fused.program().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.inputs, [F32, U32, I32, U32]);
        let mid = eval_bits(&s1.inner().bind(), &[&xs, &ys]);
        let want = eval_bits(&s2.inner().bind(), &[&mid, &zs, &ws]);
        assert_eq!(eval_bits(&fused, &[&xs, &ys, &zs, &ws]), want);
        validates(&fused);

        // argument 0 of the wrong type is an error, not a bad program
        let takes_u32 = Kernel::new(|(x, y): (Expr<u32>, Expr<f32>)| x.cast::<f32>() + y);
        assert!(KernelDef::fused(s0.inner(), &[takes_u32.inner().clone()]).is_err());
    }

    fn hybrid_fold(x: Expr<f32>) -> Expr<f32> {
        fold(4, x, |acc, i| acc * 0.5 + i.cast::<f32>())
    }

    #[test]
    fn a_constant_stage_is_folded_into_the_next() {
        // 0 then 1 / x: the fused program divides constants, which must be folded
        // (WGSL rejects a constant division by zero)
        let zero = Kernel::map(|_x: Expr<i32>| Expr::constant(0i32));
        let inv = Kernel::map(|x: Expr<i32>| Expr::constant(7i32) / x.clone() + x % 0i32);
        let fused = KernelDef::fused(zero.inner(), &[inv.inner().clone()])
            .unwrap_or_else(|e| panic!("{e}"));
        let p = fused.program().unwrap_or_else(|e| panic!("{e}"));
        assert!(p.body.is_empty(), "everything folds: {:?}", p.body);
        // WGSL's x / 0 == x: 7 / 0 == 7, and x % 0 == 0
        assert_eq!(p.result(), program::Operand::Const(ScalarType::I32, 7));
        // stages of the wrong type are an error, not a bad program
        let f2u = Kernel::map(|x: Expr<u32>| x + 1u32);
        assert!(KernelDef::fused(zero.inner(), &[f2u.inner().clone()]).is_err());
    }

    #[test]
    fn bound_plans_are_kept_for_recent_values() {
        let a = Param::new(0i32);
        let k = Kernel::map(|x: Expr<f32>| x + a.expr().cast::<f32>());
        let plan = |v: i32| {
            a.set(v);
            k.inner().bind().plan().unwrap_or_else(|e| panic!("{e}"))
        };
        let p1 = plan(1);
        assert!(
            Arc::ptr_eq(&p1, &plan(1)),
            "a repeated value reuses its plan"
        );
        for v in 2..2 + BOUND_PLANS as i32 {
            plan(v);
        }
        assert!(!Arc::ptr_eq(&p1, &plan(1)), "only the last few are kept");
        let kept = k
            .inner()
            .compiled
            .bound
            .lock()
            .map(|b| b.len())
            .unwrap_or(0);
        assert_eq!(kept, BOUND_PLANS);
    }
}
