//! Tests of the range analysis: the required neighbour and blur cases, what must be
//! `Whole`, loops, and a randomized soundness check against concrete evaluation.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::kernel::{fold, fold_while, fold_with, index, ops, select, Expr, Kernel, Param, Table};

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
    let k = Kernel::new(|(t,): (Table<f32>,)| fold(4, 0.0f32, |acc, j| acc + t.at(index() + j)));
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
            Operand::Const(_, b) => b as u32,
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
                Op::Unary(op, a) => ops::unary(*op, p.ty(*a), self.get(*a) as u64) as u32,
                Op::Binary(op, a, b) => {
                    ops::binary(*op, p.ty(*a), self.get(*a) as u64, self.get(*b) as u64) as u32
                }
                Op::Select(c, a, b) => {
                    if self.get(*c) != 0 {
                        self.get(*a)
                    } else {
                        self.get(*b)
                    }
                }
                Op::Cast(a) => ops::cast(p.ty(*a), ty, self.get(*a) as u64) as u32,
                Op::MulAdd(a, b, c) => {
                    let (a, b, c) = (self.get(*a), self.get(*b), self.get(*c));
                    ops::mul_add(ty, a as u64, b as u64, c as u64) as u32
                }
                Op::Clamp(x, lo, hi) => {
                    let (x, lo, hi) = (self.get(*x), self.get(*lo), self.get(*hi));
                    ops::clamp(ty, x as u64, lo as u64, hi as u64) as u32
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
            9 | 10 => [u32::MAX, 1 << 31, i32::MAX as u32, u32::MAX - 3][self.r.random_range(0..4)],
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
