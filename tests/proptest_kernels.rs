//! Property-based and fuzz-style tests of random kernels (proptest).
//!
//! Both decode proptest-chosen bytes into a typed kernel AST (`common::gen::Ast`), build
//! the kernel through the public API (`common::gen::kernel`), and check it:
//!
//! - `random_kernels_agree_with_the_reference`: tame constants; the CPU and the GPU
//!   against `common::reference`, element by element, with each device's tolerance
//!   table. A failure shrinks its bytes toward zeros, and a zero byte decodes to the
//!   simplest leaf, so the reported kernel is a minimal one.
//! - `any_kernel_compiles_or_is_a_typed_error`: wild constants (any bit pattern: NaN,
//!   infinities, subnormals, extremes), fold counts up to 1,000, chains deeper than the
//!   compiler allows, a fold's variables smuggled out of it. `Kernel::wgsl()` either
//!   fails with a typed error (then every call fails with the same error), or its WGSL
//!   validates with naga and the kernel runs on the CPU and on the GPU, with no panic.
//!
//! Cases: `HYBRID_PROPTEST_CASES=n` (default 200 each: about 25 s on lavapipe with two
//! cores); `HYBRID_PROPTEST_CASES=20000` is the nightly-style run.
//!
//! Seed: fixed by default, so that the gate CI runs is the same set of cases every
//! time; `HYBRID_PROPTEST_SEED=n` picks another set and `HYBRID_PROPTEST_SEED=random`
//! a fresh one (the seed in use is printed; a failure prints its minimal case).
//!
//! Work per case is bounded: nested folds multiply their trip counts, and a case whose
//! product passes `MAX_TRIPS` gets smaller counts. Without that bound three nested
//! folds of 1,000 iterations each ran 10^9 iterations per element on three evaluators
//! (the reference interpreter, the CPU device and lavapipe) and one CI run never
//! finished.

mod common;

use std::cell::RefCell;

use common::gen::{self, Ast, Bin, Case, Elem, Form, Lit, Node, Shape, Ty, Un};
use common::{call, check_case, targets, typed, Tally, Target};
use hybrid::{Error, Expr, Kernel};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const DEFAULT_CASES: u32 = 200;

fn cases() -> u32 {
    std::env::var("HYBRID_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

const DEFAULT_SEED: u64 = 0x6879_6272_6964; // "hybrid"

/// The seed: `HYBRID_PROPTEST_SEED` (a number, or `random` for one from the clock, so
/// that a failing run can be repeated with the seed it printed), or the default.
fn seed() -> RngSeed {
    match std::env::var("HYBRID_PROPTEST_SEED") {
        Ok(s) if s.trim() == "random" => RngSeed::Fixed(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(DEFAULT_SEED, |d| d.as_nanos() as u64),
        ),
        Ok(s) => RngSeed::Fixed(s.trim().parse().unwrap_or(DEFAULT_SEED)),
        Err(_) => RngSeed::Fixed(DEFAULT_SEED),
    }
}

fn runner() -> TestRunner {
    let rng_seed = seed();
    eprintln!("proptest seed: {rng_seed} ({} cases)", cases());
    TestRunner::new(Config {
        cases: cases(),
        rng_seed,
        failure_persistence: None,
        max_shrink_iters: 2_000,
        // say at once when a case fails, before the (slow) shrinking
        verbose: 1,
        ..Config::default()
    })
}

// --- bytes to a typed AST ------------------------------------------------------------

const TYS: [Ty; 3] = [Ty::F, Ty::I, Ty::U];
const F_TAME: [f32; 12] = [
    0.5, 2.0, -1.5, 3.0, 0.25, 1.0, -2.0, 0.1, 10.0, -0.75, 0.0, 7.25,
];
const I_TAME: [i32; 12] = [0, 1, -1, 2, 3, -7, 31, 32, 33, 1000, i32::MIN, i32::MAX];
const U_TAME: [u32; 12] = [0, 1, 2, 3, 7, 31, 32, 33, 1000, 0x8000_0000, u32::MAX, 16];
const COUNTS: [u32; 8] = [0, 1, 2, 3, 7, 64, 255, 1000];
/// The most iterations one element may run through nested folds (the product of their
/// counts); at most 60 operations each, so at most 60,000 evaluations per element.
const MAX_TRIPS: u64 = 1_000;

/// Reads bytes as decisions; past the end every byte is 0 (the simplest choice).
struct Dec<'a> {
    bytes: &'a [u8],
    pos: usize,
    shape: Shape,
    /// Accumulator types of the enclosing folds.
    folds: Vec<Ty>,
    /// Product of the enclosing folds' counts.
    trips: u64,
    /// Constants from any bit pattern, instead of a small table.
    wild: bool,
    budget: u32,
}

impl Dec<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn word(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn lit(&mut self, ty: Ty) -> Lit {
        let b = self.byte() as usize;
        if self.wild && b >= 128 {
            let w = self.word();
            return match ty {
                Ty::F => Lit::F(f32::from_bits(w)),
                Ty::I => Lit::I(w as i32),
                Ty::U => Lit::U(w),
                Ty::B => Lit::B(w & 1 == 1),
                _ => unreachable!("proptest kernels are 32-bit"),
            };
        }
        match ty {
            Ty::F => Lit::F(F_TAME[b % 12]),
            Ty::I => Lit::I(I_TAME[b % 12]),
            Ty::U => Lit::U(U_TAME[b % 12]),
            Ty::B => Lit::B(b & 1 == 1),
            _ => unreachable!("proptest kernels are 32-bit"),
        }
    }

    fn input(&mut self) -> Ast {
        let k = (self.byte() as usize % self.shape.arity) as u8;
        Ast {
            ty: self.shape.input,
            node: Node::Input(k),
        }
    }

    fn leaf(&mut self, ty: Ty) -> Ast {
        let b = self.byte();
        let node = |ty, node| Ast { ty, node };
        if let Some(l) = (0..self.folds.len()).rev().find(|&l| self.folds[l] == ty) {
            if b % 8 == 1 {
                return node(ty, Node::Acc(l));
            }
        }
        if ty == Ty::U && !self.folds.is_empty() && b % 8 == 2 {
            return node(ty, Node::Counter(self.folds.len() - 1));
        }
        match (b / 8) % 4 {
            _ if ty == Ty::B => {
                let x = self.input();
                let l = Ast::lit(self.lit(x.ty));
                node(
                    Ty::B,
                    Node::Bin(Bin::Lt, Form::EN, Box::new(x), Box::new(l)),
                )
            }
            1 => Ast::lit(self.lit(ty)),
            2 if ty == Ty::U => node(Ty::U, Node::Index),
            2 => node(ty, Node::Cast(Box::new(node(Ty::U, Node::Index)))),
            _ => {
                let x = self.input();
                if x.ty == ty {
                    x
                } else {
                    node(ty, Node::Cast(Box::new(x)))
                }
            }
        }
    }

    fn sub(&mut self, ty: Ty, depth: u32) -> Box<Ast> {
        Box::new(self.expr(ty, depth.saturating_sub(1)))
    }

    /// A binary operation `op` over operands of type `ty`: both expressions, or one a
    /// literal (number) on either side.
    fn bin(&mut self, op: Bin, ty: Ty, depth: u32, literal_sides: bool) -> Ast {
        let out = if matches!(
            op,
            Bin::Lt | Bin::Le | Bin::Gt | Bin::Ge | Bin::Eq | Bin::Ne
        ) {
            Ty::B
        } else {
            ty
        };
        let form = match self.byte() % 3 {
            1 => Form::EN,
            2 if literal_sides => Form::NE,
            _ => Form::EE,
        };
        let (a, b) = match form {
            Form::EE => (self.sub(ty, depth), self.sub(ty, depth)),
            Form::EN => (self.sub(ty, depth), Box::new(Ast::lit(self.lit(ty)))),
            Form::NE => (Box::new(Ast::lit(self.lit(ty))), self.sub(ty, depth)),
        };
        Ast {
            ty: out,
            node: Node::Bin(op, form, a, b),
        }
    }

    fn expr(&mut self, ty: Ty, depth: u32) -> Ast {
        let b = self.byte();
        if depth == 0 || b < 48 || self.budget == 0 {
            return self.leaf(ty);
        }
        self.budget -= 1;
        let node = |ty, node| Ast { ty, node };
        let op = b % 16;
        match ty {
            Ty::B => match op % 5 {
                0 => {
                    let t = TYS[self.byte() as usize % 3];
                    let c = [Bin::Lt, Bin::Le, Bin::Gt, Bin::Ge, Bin::Eq, Bin::Ne];
                    let c = c[self.byte() as usize % 6];
                    self.bin(c, t, depth, false)
                }
                1 => self.bin(Bin::And, Ty::B, depth, false),
                2 => self.bin(Bin::Or, Ty::B, depth, false),
                3 => node(Ty::B, Node::Un(Un::Not, self.sub(Ty::B, depth))),
                _ => {
                    let c = self.sub(Ty::B, depth);
                    node(
                        Ty::B,
                        Node::Select(c, self.sub(Ty::B, depth), self.sub(Ty::B, depth)),
                    )
                }
            },
            _ => match op {
                0..=3 => {
                    let ops = [Bin::Add, Bin::Sub, Bin::Mul, Bin::Div, Bin::Rem];
                    let o = ops[self.byte() as usize % 5];
                    self.bin(o, ty, depth, true)
                }
                4 => {
                    let o = if self.byte() % 2 == 0 {
                        Bin::Min
                    } else {
                        Bin::Max
                    };
                    self.bin(o, ty, depth, false)
                }
                5 if ty == Ty::F => {
                    let ops = [
                        Un::Neg,
                        Un::Abs,
                        Un::Sqrt,
                        Un::Sin,
                        Un::Cos,
                        Un::Tan,
                        Un::Exp,
                        Un::Exp2,
                        Un::Ln,
                        Un::Log2,
                        Un::Floor,
                        Un::Ceil,
                        Un::Round,
                        Un::Fract,
                    ];
                    let o = ops[self.byte() as usize % ops.len()];
                    node(ty, Node::Un(o, self.sub(ty, depth)))
                }
                5 => {
                    let ops: &[Un] = if ty == Ty::I {
                        &[Un::Neg, Un::Abs, Un::Not]
                    } else {
                        &[Un::Abs, Un::Not]
                    };
                    let o = ops[self.byte() as usize % ops.len()];
                    node(ty, Node::Un(o, self.sub(ty, depth)))
                }
                6 if ty == Ty::F => {
                    let form = if self.byte() % 2 == 0 {
                        Form::EE
                    } else {
                        Form::EN
                    };
                    let base = self.sub(ty, depth);
                    let e = match form {
                        Form::EN => Box::new(Ast::lit(self.lit(ty))),
                        _ => self.sub(ty, depth),
                    };
                    node(ty, Node::Bin(Bin::Pow, form, base, e))
                }
                6 => {
                    let ops = [Bin::And, Bin::Or, Bin::Xor];
                    let o = ops[self.byte() as usize % 3];
                    self.bin(o, ty, depth, true)
                }
                7 if ty != Ty::F => {
                    let o = if self.byte() % 2 == 0 {
                        Bin::Shl
                    } else {
                        Bin::Shr
                    };
                    let a = self.sub(ty, depth);
                    if self.byte() % 2 == 0 {
                        let s = Box::new(Ast::lit(self.lit(Ty::U)));
                        node(ty, Node::Bin(o, Form::EN, a, s))
                    } else {
                        node(ty, Node::Bin(o, Form::EE, a, self.sub(Ty::U, depth)))
                    }
                }
                8 => {
                    let c = self.sub(Ty::B, depth);
                    node(
                        ty,
                        Node::Select(c, self.sub(ty, depth), self.sub(ty, depth)),
                    )
                }
                9 | 7 => {
                    let from = [Ty::F, Ty::I, Ty::U, Ty::B][self.byte() as usize % 4];
                    node(ty, Node::Cast(self.sub(from, depth)))
                }
                10 => {
                    let x = self.sub(ty, depth);
                    let (lo, hi) = if self.byte() % 2 == 0 {
                        (
                            Box::new(Ast::lit(self.lit(ty))),
                            Box::new(Ast::lit(self.lit(ty))),
                        )
                    } else {
                        (self.sub(ty, depth), self.sub(ty, depth))
                    };
                    node(ty, Node::Clamp(x, lo, hi))
                }
                11 => {
                    let (a, b) = (self.sub(ty, depth), self.sub(ty, depth));
                    node(ty, Node::MulAdd(a, b, self.sub(ty, depth)))
                }
                12 | 13 if self.folds.len() < 3 => {
                    let wanted = COUNTS[self.byte() as usize % COUNTS.len()];
                    // the largest count up to the wanted one that keeps the work bounded
                    let count = COUNTS
                        .into_iter()
                        .filter(|&c| c <= wanted && self.trips * u64::from(c) <= MAX_TRIPS)
                        .max()
                        .unwrap_or(0);
                    let init = self.sub(ty, depth);
                    self.folds.push(ty);
                    let outer = self.trips;
                    self.trips *= u64::from(count.max(1));
                    let body = self.sub(ty, depth);
                    self.trips = outer;
                    self.folds.pop();
                    node(ty, Node::Fold { count, init, body })
                }
                _ => self.bin(Bin::Add, ty, depth, true),
            },
        }
    }
}

/// The case the bytes describe: shape from the first two bytes, then the tree.
fn decode(bytes: &[u8], wild: bool, depth: u32) -> Case {
    let mut d = Dec {
        bytes,
        pos: 0,
        shape: Shape {
            input: Ty::F,
            output: Ty::F,
            arity: 1,
        },
        folds: Vec::new(),
        trips: 1,
        wild,
        budget: 60,
    };
    let b = d.byte();
    d.shape = Shape {
        input: TYS[(b % 3) as usize],
        output: TYS[((b / 3) % 3) as usize],
        arity: 1 + ((b / 9) % 2) as usize,
    };
    let ast = d.expr(d.shape.output, depth);
    Case {
        seed: 0,
        shape: d.shape,
        ast,
    }
}

// --- property: CPU vs GPU vs reference ----------------------------------------------------

fn agree<I: Elem, O: Elem>(
    case: &Case,
    seed: u64,
    n: usize,
    targets: &[Target],
    tally: &RefCell<[Tally; 2]>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let gpu_table = &common::reference::GPU;
    check_case::<I, O>(
        case,
        targets,
        &[n],
        &mut rng,
        gpu_table,
        &mut tally.borrow_mut(),
    );
}

/// Random trees of up to 60 operations, depth 6, with tame constants; random inputs
/// of 0 to 600 elements; every element of the CPU's and the GPU's output checked
/// against the reference.
#[test]
fn random_kernels_agree_with_the_reference() {
    let targets = targets();
    let gpu = targets.iter().any(|t| t.uses_gpu());
    let tally = RefCell::new([Tally::default(); 2]);
    let strategy = (
        proptest::collection::vec(any::<u8>(), 1..160),
        any::<u64>(),
        0usize..600,
    );
    let result = runner().run(&strategy, |(bytes, seed, n)| {
        let case = decode(&bytes, false, 6);
        typed!(case, agree(&case, seed, n, &targets, &tally));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let t = tally.borrow();
    let min = cases() as u64 * 50;
    t[0].assert_meaningful("cpu", min);
    if gpu {
        t[1].assert_meaningful("gpu", min);
    }
}

// --- fuzz: every kernel compiles or is a typed error ----------------------------------------

/// A kernel that is no tree `decode` makes: a chain `extra` levels deep, or a fold's
/// accumulator used outside its fold.
fn special<I: Elem, O: Elem>(kind: u8, extra: usize) -> Kernel<I, O> {
    match kind {
        0 => Kernel::map(move |x: Expr<I>| {
            let mut e = x.cast::<u32>();
            for k in 0..extra {
                e = e + (k as u32);
            }
            e.cast::<O>()
        }),
        _ => {
            let smuggled: RefCell<Option<Expr<u32>>> = RefCell::new(None);
            Kernel::map(|x: Expr<I>| {
                let f = hybrid::fold(3, x.cast::<u32>(), |acc, i| {
                    *smuggled.borrow_mut() = Some(acc.clone());
                    acc + i
                });
                let out = f + smuggled
                    .borrow()
                    .clone()
                    .unwrap_or_else(|| Expr::constant(0));
                out.cast::<O>()
            })
        }
    }
}

/// What one fuzz case found, for the summary.
#[derive(Default, Debug)]
struct Found {
    compiled: u64,
    rejected: Vec<String>,
}

fn compile_or_reject<I: Elem, O: Elem>(
    k: &Kernel<I, O>,
    what: &str,
    targets: &[Target],
    found: &RefCell<Found>,
) -> Result<(), TestCaseError> {
    let xs: Vec<I> = {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        (0..5).map(|_| I::random(&mut rng)).collect()
    };
    let arity = k.arity().max(1);
    let go = |t: &Target| call(t.rt, k, &xs, &xs, arity, t.placement).map(|r| r.output.len());
    match k.wgsl() {
        Err(e) => {
            prop_assert!(
                matches!(e, Error::InvalidKernel { .. }),
                "{what}: unexpected error {e}"
            );
            // every call reports the same error, before any device sees the kernel
            for t in targets {
                prop_assert_eq!(go(t), Err(e.clone()), "{} on {}", what, t);
            }
            found.borrow_mut().rejected.push(format!("{e}"));
        }
        Ok(src) => {
            let module = naga::front::wgsl::parse_str(&src).map_err(|e| {
                TestCaseError::fail(format!("{what}: {}\n{src}", e.emit_to_string(&src)))
            })?;
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::default(),
            )
            .validate(&module)
            .map_err(|e| TestCaseError::fail(format!("{what}: naga: {e:?}\n{src}")))?;
            for t in targets {
                prop_assert_eq!(go(t), Ok(5), "{} on {}\n{}", what, t, src);
            }
            found.borrow_mut().compiled += 1;
        }
    }
    Ok(())
}

fn fuzz_one<I: Elem, O: Elem>(
    case: &Case,
    special_kind: Option<(u8, usize)>,
    targets: &[Target],
    found: &RefCell<Found>,
) -> Result<(), TestCaseError> {
    match special_kind {
        None => {
            let k: Kernel<I, O> = gen::kernel(&case.ast, case.shape.arity);
            compile_or_reject(&k, &case.to_string(), targets, found)
        }
        Some((kind, extra)) => {
            let k: Kernel<I, O> = special(kind, extra);
            let what = format!("special kernel {kind}, {extra} levels");
            compile_or_reject(&k, &what, targets, found)
        }
    }
}

/// Arbitrary bytes as builder calls: wild constants, odd fold counts, deep trees;
/// one case in 16 a chain up to 25,000 levels deep (the compiler's limit is 20,000)
/// or a fold variable used outside its fold.
#[test]
fn any_kernel_compiles_or_is_a_typed_error() {
    let targets = targets();
    let found = RefCell::new(Found::default());
    let start = std::time::Instant::now();
    let strategy = proptest::collection::vec(any::<u8>(), 1..400);
    let done = std::cell::Cell::new(0u64);
    let result = runner().run(&strategy, |bytes| {
        done.set(done.get() + 1);
        if done.get() % 500 == 0 {
            // progress for long runs: a run killed by a timeout still says how far it got
            eprintln!(
                "{} cases, {:.0} s",
                done.get(),
                start.elapsed().as_secs_f64()
            );
        }
        let case = decode(&bytes, true, 12);
        let special_kind = match bytes[0] % 16 {
            0 => Some((0, bytes.get(1).copied().unwrap_or(0) as usize * 100)),
            1 => Some((1, 0)),
            _ => None,
        };
        typed!(case, fuzz_one(&case, special_kind, &targets, &found))
    });
    let f = found.borrow();
    let mut kinds: Vec<&String> = f.rejected.iter().collect();
    kinds.sort();
    kinds.dedup();
    eprintln!(
        "{} cases in {:.1} s: {} compiled and ran, {} rejected with a typed error: {kinds:?}",
        cases(),
        start.elapsed().as_secs_f64(),
        f.compiled,
        f.rejected.len()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(f.compiled > 0);
}
