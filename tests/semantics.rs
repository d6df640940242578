//! The edge cases of the semantics, one by one, on the CPU device and (when present) the
//! GPU device. Every expected value is written from the rule (WGSL's, as the crate
//! documents it), not copied from an output:
//! - integer `+ - *` and unary `-` wrap; `abs(i32::MIN) == i32::MIN`;
//! - `a / 0 == a`, `i32::MIN / -1 == i32::MIN`, `a % 0 == 0`, `i32::MIN % -1 == 0`;
//! - shift amounts are masked to `0..=31`; `>>` on i32 is arithmetic;
//! - float to int is WGSL's conversion: clamped to the destination's range as an f32
//!   holds it (`[-2^31, 2147483520]`, `[0, 4294967040]`), then truncated; NaN gives 0;
//!   round ties to even;
//!   `fract(x) == x - floor(x)`.
//!
//! Values are passed as input data (computed by the device) and, where the rule allows a
//! literal operand, as literals (folded by the compiler), so both paths are covered.

mod common;

use common::{shared_cpu, targets};
use hybrid::{fold, select, Element, Expr, Kernel, Placement};
use std::fmt::Debug;

/// Same value: equal (so -0.0 == 0.0: WGSL does not pin the sign of a zero), or both NaN.
trait Same: Copy + Debug {
    fn same(self, other: Self) -> bool;
}
impl Same for i32 {
    fn same(self, other: i32) -> bool {
        self == other
    }
}
impl Same for u32 {
    fn same(self, other: u32) -> bool {
        self == other
    }
}
impl Same for f32 {
    fn same(self, other: f32) -> bool {
        self == other || (self.is_nan() && other.is_nan())
    }
}

fn assert_rows<I: Debug, O: Same>(what: &str, dev: &str, inputs: &[I], got: &[O], want: &[O]) {
    assert_eq!(got.len(), want.len(), "{what} on {dev}: output length");
    let bad: Vec<String> = (0..want.len())
        .filter(|&i| !got[i].same(want[i]))
        .map(|i| format!("  {:?}: got {:?}, want {:?}", inputs[i], got[i], want[i]))
        .collect();
    assert!(bad.is_empty(), "{what} on {dev}:\n{}", bad.join("\n"));
}

/// `k` applied to `xs` gives `want` on every device.
fn check_map<I: Element + Debug, O: Element + Same>(
    what: &str,
    k: &Kernel<I, O>,
    xs: &[I],
    want: &[O],
) {
    for t in targets() {
        let out =
            t.rt.map(xs, k, t.placement)
                .unwrap_or_else(|e| panic!("{what} on {t}: {e}"))
                .output;
        assert_rows(what, &t.to_string(), xs, &out, want);
    }
}

/// `k` applied to the pairs `(a, b)` gives `want` on every device.
fn check_map2<I: Element + Debug, O: Element + Same>(
    what: &str,
    k: &Kernel<I, O>,
    ab: &[(I, I)],
    want: &[O],
) {
    let a: Vec<I> = ab.iter().map(|p| p.0).collect();
    let b: Vec<I> = ab.iter().map(|p| p.1).collect();
    for t in targets() {
        let out =
            t.rt.map2(&a, &b, k, t.placement)
                .unwrap_or_else(|e| panic!("{what} on {t}: {e}"))
                .output;
        assert_rows(what, &t.to_string(), ab, &out, want);
    }
}

#[test]
fn integer_division_and_remainder() {
    // (a, b, a / b, a % b)
    let rows: [(i32, i32, i32, i32); 10] = [
        (i32::MIN, -1, i32::MIN, 0), // overflow: the quotient is a, the remainder 0
        (7, 0, 7, 0),                // by zero: the quotient is a, the remainder 0
        (-7, 0, -7, 0),
        (i32::MIN, 0, i32::MIN, 0),
        (0, 0, 0, 0),
        (-7, 2, -3, -1), // truncating division, remainder has the sign of a
        (7, -2, -3, 1),
        (i32::MAX, -1, -2_147_483_647, 0),
        (i32::MIN, 1, i32::MIN, 0),
        (i32::MIN, 2, -1_073_741_824, 0),
    ];
    let ab: Vec<(i32, i32)> = rows.iter().map(|r| (r.0, r.1)).collect();
    let div: Vec<i32> = rows.iter().map(|r| r.2).collect();
    let rem: Vec<i32> = rows.iter().map(|r| r.3).collect();
    check_map2(
        "i32 a / b",
        &Kernel::map2(|a: Expr<i32>, b: Expr<i32>| a / b),
        &ab,
        &div,
    );
    check_map2(
        "i32 a % b",
        &Kernel::map2(|a: Expr<i32>, b: Expr<i32>| a % b),
        &ab,
        &rem,
    );

    let rows: [(u32, u32, u32, u32); 8] = [
        (9, 0, 9, 0),
        (5, 2, 2, 1),
        (u32::MAX, 0, u32::MAX, 0),
        (0, 0, 0, 0),
        (7, 2, 3, 1),
        (u32::MAX, u32::MAX, 1, 0),
        (0x8000_0000, 3, 715_827_882, 2),
        (5, 9, 0, 5),
    ];
    let ab: Vec<(u32, u32)> = rows.iter().map(|r| (r.0, r.1)).collect();
    let div: Vec<u32> = rows.iter().map(|r| r.2).collect();
    let rem: Vec<u32> = rows.iter().map(|r| r.3).collect();
    check_map2(
        "u32 a / b",
        &Kernel::map2(|a: Expr<u32>, b: Expr<u32>| a / b),
        &ab,
        &div,
    );
    check_map2(
        "u32 a % b",
        &Kernel::map2(|a: Expr<u32>, b: Expr<u32>| a % b),
        &ab,
        &rem,
    );

    // literal divisors
    let xs = [7, -7, i32::MIN, i32::MAX, 0];
    check_map("i32 x / 0", &Kernel::map(|x: Expr<i32>| x / 0), &xs, &xs);
    check_map(
        "i32 x % 0",
        &Kernel::map(|x: Expr<i32>| x % 0),
        &xs,
        &[0; 5],
    );
    check_map(
        "i32 x / -1",
        &Kernel::map(|x: Expr<i32>| x / -1),
        &xs,
        &[-7, 7, i32::MIN, -i32::MAX, 0],
    );
    check_map(
        "i32 x % -1",
        &Kernel::map(|x: Expr<i32>| x % Expr::constant(-1)),
        &xs,
        &[0; 5],
    );
    check_map(
        "i32 MIN / x",
        &Kernel::map(|x: Expr<i32>| i32::MIN / x),
        &[-1, 0, 1],
        &[i32::MIN, i32::MIN, i32::MIN],
    );
    check_map(
        "i32 MIN % x",
        &Kernel::map(|x: Expr<i32>| i32::MIN % x),
        &[-1, 0, 3],
        &[0, 0, -2],
    );
    let xs = [9u32, 0, u32::MAX];
    check_map("u32 x / 0", &Kernel::map(|x: Expr<u32>| x / 0), &xs, &xs);
    check_map(
        "u32 x % 0",
        &Kernel::map(|x: Expr<u32>| x % 0),
        &xs,
        &[0; 3],
    );
    check_map(
        "u32 7 / x",
        &Kernel::map(|x: Expr<u32>| 7 / x),
        &[0, 2, 8],
        &[7, 3, 0],
    );
    check_map(
        "u32 7 % x",
        &Kernel::map(|x: Expr<u32>| 7 % x),
        &[0, 2, 8],
        &[0, 1, 7],
    );
}

const AMOUNTS: [u32; 5] = [0, 31, 32, 33, 255]; // masked: 0, 31, 0, 1, 31

#[test]
fn shifts_mask_the_amount() {
    // value, then x << s and x >> s for each s in AMOUNTS
    let i32_rows: [(i32, [i32; 5], [i32; 5]); 4] = [
        (1, [1, i32::MIN, 1, 2, i32::MIN], [1, 0, 1, 0, 0]),
        (-8, [-8, 0, -8, -16, 0], [-8, -1, -8, -4, -1]),
        (
            i32::MIN,
            [i32::MIN, 0, i32::MIN, 0, 0],
            [i32::MIN, -1, i32::MIN, -1_073_741_824, -1],
        ),
        (
            0x4000_0001,
            [0x4000_0001, i32::MIN, 0x4000_0001, -0x7fff_fffe, i32::MIN],
            [0x4000_0001, 0, 0x4000_0001, 0x2000_0000, 0],
        ),
    ];
    let u32_rows: [(u32, [u32; 5], [u32; 5]); 3] = [
        (1, [1, 0x8000_0000, 1, 2, 0x8000_0000], [1, 0, 1, 0, 0]),
        (
            0x8000_0000,
            [0x8000_0000, 0, 0x8000_0000, 0, 0],
            [0x8000_0000, 1, 0x8000_0000, 0x4000_0000, 1],
        ),
        (
            u32::MAX,
            [u32::MAX, 0x8000_0000, u32::MAX, 0xffff_fffe, 0x8000_0000],
            [u32::MAX, 1, u32::MAX, 0x7fff_ffff, 1],
        ),
    ];

    // amounts as data
    let mut ab = Vec::new();
    let (mut shl, mut shr) = (Vec::new(), Vec::new());
    for (x, l, r) in i32_rows {
        for (j, s) in AMOUNTS.into_iter().enumerate() {
            ab.push((x, s as i32));
            shl.push(l[j]);
            shr.push(r[j]);
        }
    }
    check_map2(
        "i32 a << b",
        &Kernel::map2(|a: Expr<i32>, b: Expr<i32>| a << b.cast::<u32>()),
        &ab,
        &shl,
    );
    check_map2(
        "i32 a >> b",
        &Kernel::map2(|a: Expr<i32>, b: Expr<i32>| a >> b.cast::<u32>()),
        &ab,
        &shr,
    );
    let mut ab = Vec::new();
    let (mut shl, mut shr) = (Vec::new(), Vec::new());
    for (x, l, r) in u32_rows {
        for (j, s) in AMOUNTS.into_iter().enumerate() {
            ab.push((x, s));
            shl.push(l[j]);
            shr.push(r[j]);
        }
    }
    check_map2(
        "u32 a << b",
        &Kernel::map2(|a: Expr<u32>, b: Expr<u32>| a << b),
        &ab,
        &shl,
    );
    check_map2(
        "u32 a >> b",
        &Kernel::map2(|a: Expr<u32>, b: Expr<u32>| a >> b),
        &ab,
        &shr,
    );

    // every amount from 0 to 99, as data, in one kernel of both shifts of both types
    let ab: Vec<(i32, i32)> = (0..100)
        .map(|s| (if s % 2 == 0 { -12_345 } else { 0x4000_0001 }, s))
        .collect();
    let want: Vec<i32> = ab
        .iter()
        .map(|&(x, s)| {
            let s = s as u32 & 31;
            (x << s) ^ (x >> s) ^ ((x as u32) >> s) as i32
        })
        .collect();
    check_map2(
        "i32 (a << b) ^ (a >> b) ^ (a as u32 >> b) for b in 0..100",
        &Kernel::map2(|x: Expr<i32>, s: Expr<i32>| {
            let s = s.cast::<u32>();
            (x.clone() << s.clone())
                ^ (x.clone() >> s.clone())
                ^ (x.cast::<u32>() >> s).cast::<i32>()
        }),
        &ab,
        &want,
    );

    // literal amounts
    for (j, s) in AMOUNTS.into_iter().enumerate() {
        let xs: Vec<i32> = i32_rows.iter().map(|r| r.0).collect();
        let l: Vec<i32> = i32_rows.iter().map(|r| r.1[j]).collect();
        let r: Vec<i32> = i32_rows.iter().map(|r| r.2[j]).collect();
        check_map(
            &format!("i32 x << {s}"),
            &Kernel::map(|x: Expr<i32>| x << s),
            &xs,
            &l,
        );
        check_map(
            &format!("i32 x >> {s}"),
            &Kernel::map(|x: Expr<i32>| x >> s),
            &xs,
            &r,
        );
        let xs: Vec<u32> = u32_rows.iter().map(|r| r.0).collect();
        let l: Vec<u32> = u32_rows.iter().map(|r| r.1[j]).collect();
        let r: Vec<u32> = u32_rows.iter().map(|r| r.2[j]).collect();
        check_map(
            &format!("u32 x << {s}"),
            &Kernel::map(|x: Expr<u32>| x << s),
            &xs,
            &l,
        );
        check_map(
            &format!("u32 x >> {s}"),
            &Kernel::map(|x: Expr<u32>| x >> s),
            &xs,
            &r,
        );
    }
}

#[test]
fn integer_arithmetic_wraps() {
    let ab = [
        (i32::MAX, 1),
        (i32::MIN, 1),
        (i32::MAX, 2),
        (i32::MIN, -1),
        (0x1_0000, 0x1_0000),
        (-3, 5),
    ];
    check_map2(
        "i32 a + b",
        &Kernel::map2(|a: Expr<i32>, b: Expr<i32>| a + b),
        &ab,
        &[i32::MIN, i32::MIN + 1, i32::MIN + 1, i32::MAX, 0x2_0000, 2],
    );
    check_map2(
        "i32 a - b",
        &Kernel::map2(|a: Expr<i32>, b: Expr<i32>| a - b),
        &ab,
        &[i32::MAX - 1, i32::MAX, i32::MAX - 2, -i32::MAX, 0, -8],
    );
    check_map2(
        "i32 a * b",
        &Kernel::map2(|a: Expr<i32>, b: Expr<i32>| a * b),
        &ab,
        &[i32::MAX, i32::MIN, -2, i32::MIN, 0, -15],
    );
    check_map2(
        "i32 a.mul_add(b, 3)",
        &Kernel::map2(|a: Expr<i32>, b: Expr<i32>| a.mul_add(b, 3)),
        &ab,
        &[i32::MIN + 2, i32::MIN + 3, 1, i32::MIN + 3, 3, -12],
    );
    let xs = [i32::MIN, -5, 0, i32::MAX];
    check_map(
        "i32 abs",
        &Kernel::map(|x: Expr<i32>| x.abs()),
        &xs,
        &[i32::MIN, 5, 0, i32::MAX],
    );
    check_map(
        "i32 -x",
        &Kernel::map(|x: Expr<i32>| -x),
        &xs,
        &[i32::MIN, 5, 0, -i32::MAX],
    );
    check_map(
        "i32 !x",
        &Kernel::map(|x: Expr<i32>| !x),
        &xs,
        &[i32::MAX, 4, -1, i32::MIN],
    );
    check_map(
        "i32 x + MAX",
        &Kernel::map(|x: Expr<i32>| x + i32::MAX),
        &xs,
        &[-1, i32::MAX - 5, i32::MAX, -2],
    );

    // the same in one kernel, with the bits of each as u32 and a comparison as 0 or 1
    check_map(
        "abs(x) as u32 ^ (-x) as u32 ^ (x < 0) as u32 ^ (x as u32 >> 1)",
        &Kernel::map(|x: Expr<i32>| {
            x.abs().cast::<u32>()
                ^ (-x.clone()).cast::<u32>()
                ^ x.lt(0).cast::<u32>()
                ^ (x.cast::<u32>() >> 1u32)
        }),
        &[i32::MIN, -1, 0, 1, i32::MAX],
        // MIN: 0x8000_0000 ^ 0x8000_0000 ^ 1 ^ 0x4000_0000; -1: 1 ^ 1 ^ 1 ^ 0x7fff_ffff;
        // 1: 1 ^ 0xffff_ffff ^ 0 ^ 0; MAX: 0x7fff_ffff ^ 0x8000_0001 ^ 0 ^ 0x3fff_ffff
        &[0x4000_0001, 0x7fff_fffe, 0, 0xffff_fffe, 0xc000_0001],
    );

    let ab = [
        (u32::MAX, 1),
        (0, 1),
        (0x8000_0000, 2),
        (0x1_0000, 0x1_0000),
        (u32::MAX, u32::MAX),
    ];
    check_map2(
        "u32 a + b",
        &Kernel::map2(|a: Expr<u32>, b: Expr<u32>| a + b),
        &ab,
        &[0, 1, 0x8000_0002, 0x2_0000, u32::MAX - 1],
    );
    check_map2(
        "u32 a - b",
        &Kernel::map2(|a: Expr<u32>, b: Expr<u32>| a - b),
        &ab,
        &[u32::MAX - 1, u32::MAX, 0x7fff_fffe, 0, 0],
    );
    check_map2(
        "u32 a * b",
        &Kernel::map2(|a: Expr<u32>, b: Expr<u32>| a * b),
        &ab,
        &[u32::MAX, 0, 0, 0, 1],
    );
    check_map(
        "u32 abs",
        &Kernel::map(|x: Expr<u32>| x.abs()),
        &[u32::MAX, 0x8000_0000],
        &[u32::MAX, 0x8000_0000],
    );
    check_map(
        "u32 0 - x",
        &Kernel::map(|x: Expr<u32>| 0 - x),
        &[1, 0],
        &[u32::MAX, 0],
    );
}

const SPECIAL: [f32; 22] = [
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    3e9,
    -3e9,
    -1.5,
    2.5,
    -0.7,
    5e9,
    2_147_483_520.0, // the largest f32 below 2^31
    -2_147_483_648.0,
    4_294_967_040.0, // the largest f32 below 2^32
    -0.0,
    1.5,
    -0.99,
    2_147_483_648.0,   // 2^31: one past i32::MAX
    4_294_967_296.0,   // 2^32: one past u32::MAX
    f32::from_bits(1), // the smallest subnormal
    2_147_483_904.0,   // the f32 after 2^31
    -2_147_483_520.0,  // the f32 after -2^31, toward zero
    -2_147_483_904.0,  // the f32 before -2^31
    4_294_967_808.0,   // the f32 after 2^32
];

/// WGSL's clamp ends for `f32 -> i32` and `f32 -> u32`: the largest f32 below 2^31 and
/// 2^32.
const I_TOP: i32 = 2_147_483_520;
const U_TOP: u32 = 4_294_967_040;

/// `SPECIAL` as `i32` and as `u32`, each written from the rule: clamp, truncate, NaN 0.
const TO_I32: [i32; 22] = [
    0,
    I_TOP,
    i32::MIN,
    I_TOP,
    i32::MIN,
    -1,
    2,
    0,
    I_TOP,
    I_TOP,
    i32::MIN,
    I_TOP,
    0,
    1,
    0,
    I_TOP,
    I_TOP,
    0,
    I_TOP,
    -2_147_483_520,
    i32::MIN,
    I_TOP,
];
const TO_U32: [u32; 22] = [
    0,
    U_TOP,
    0,
    3_000_000_000,
    0,
    0,
    2,
    0,
    U_TOP,
    2_147_483_520,
    0,
    U_TOP,
    0,
    1,
    0,
    2_147_483_648,
    U_TOP,
    0,
    2_147_483_904,
    0,
    0,
    U_TOP,
];

#[test]
fn float_to_integer_casts_clamp_as_wgsl_does() {
    let (to_i32, to_u32) = (TO_I32, TO_U32);
    check_map(
        "f32 as i32",
        &Kernel::map(|x: Expr<f32>| x.cast::<i32>()),
        &SPECIAL,
        &to_i32,
    );
    check_map(
        "f32 as u32",
        &Kernel::map(|x: Expr<f32>| x.cast::<u32>()),
        &SPECIAL,
        &to_u32,
    );
    // NaN and infinities made inside the kernel, from finite inputs: on the CPU only, as
    // WGSL lets a GPU assume a float division never makes them
    let xs = [0.0f32, 1.0, -1.0];
    for (k, want) in [
        (
            Kernel::map(|x: Expr<f32>| (x / Expr::constant(0.0)).cast::<i32>()),
            [0, I_TOP, i32::MIN],
        ),
        (
            Kernel::map(|x: Expr<f32>| (x.sqrt() - x.clone() / 0.0).cast::<i32>()),
            [0, i32::MIN, 0],
        ),
    ] {
        let out = shared_cpu()
            .map(&xs, &k, Placement::Cpu)
            .expect("cpu")
            .output;
        assert_rows(
            "NaN and inf made in the kernel, as i32",
            "cpu",
            &xs,
            &out,
            &want,
        );
    }
    // literal operands, folded by the compiler
    for (i, &x) in SPECIAL.iter().enumerate() {
        let k = Kernel::map(move |y: Expr<i32>| y + Expr::constant(x).cast::<i32>());
        check_map(&format!("0 + ({x:?} as i32)"), &k, &[0], &[to_i32[i]]);
        let k = Kernel::map(move |y: Expr<u32>| y + Expr::constant(x).cast::<u32>());
        check_map(&format!("0 + ({x:?} as u32)"), &k, &[0], &[to_u32[i]]);
    }
}

/// A hand-written kernel's `i32(x)` and `u32(x)` (naga's conversion, run by the driver)
/// give what an `Expr` cast gives, on every device, at every boundary value but NaN
/// (which WGSL leaves indeterminate: only the `Expr` cast defines it). Before the casts
/// followed WGSL, `3e9` gave `i32::MAX` through an `Expr` and 2147483520 here.
#[test]
fn a_hand_written_conversion_agrees_with_the_expr_cast() {
    let finite: Vec<usize> = (0..SPECIAL.len())
        .filter(|&i| !SPECIAL[i].is_nan())
        .collect();
    let xs: Vec<f32> = finite.iter().map(|&i| SPECIAL[i]).collect();
    let (to_i32, to_u32): (Vec<i32>, Vec<u32>) =
        finite.iter().map(|&i| (TO_I32[i], TO_U32[i])).unzip();
    // the CPU halves are the rule written out, independently of the crate's own
    let cpu_i32 = |x: f32, _: u32| {
        if x >= 2_147_483_520.0 {
            I_TOP
        } else {
            x as i32
        }
    };
    let cpu_u32 = |x: f32, _: u32| {
        if x >= 4_294_967_040.0 {
            U_TOP
        } else {
            x as u32
        }
    };
    check_map(
        "hand-written i32(x)",
        &Kernel::custom("return i32(x);", cpu_i32),
        &xs,
        &to_i32,
    );
    check_map(
        "hand-written u32(x)",
        &Kernel::custom("return u32(x);", cpu_u32),
        &xs,
        &to_u32,
    );
    check_map(
        "Expr cast as i32",
        &Kernel::map(|x: Expr<f32>| x.cast::<i32>()),
        &xs,
        &to_i32,
    );
}

#[test]
fn integer_to_float_and_bit_casts() {
    // exactly representable: the value itself
    let xs = [i32::MIN, -1, 0, 16_777_216, -16_777_216];
    check_map(
        "i32 as f32",
        &Kernel::map(|x: Expr<i32>| x.cast::<f32>()),
        &xs,
        &[-2_147_483_648.0, -1.0, 0.0, 16_777_216.0, -16_777_216.0],
    );
    check_map(
        "u32 as f32",
        &Kernel::map(|x: Expr<u32>| x.cast::<f32>()),
        &[0u32, 0x8000_0000],
        &[0.0, 2_147_483_648.0],
    );
    // not representable: one of the two neighbours (round to nearest on the CPU)
    let cases: [(u32, f32, f32); 3] = [
        (u32::MAX, 4_294_967_296.0, 4_294_967_040.0),
        (16_777_217, 16_777_216.0, 16_777_218.0),
        (0x7fff_ffff, 2_147_483_648.0, 2_147_483_520.0),
    ];
    let k = Kernel::map(|x: Expr<u32>| x.cast::<f32>());
    for t in targets() {
        let xs: Vec<u32> = cases.iter().map(|c| c.0).collect();
        let out = t.rt.map(&xs, &k, t.placement).expect("u32 as f32").output;
        for (c, y) in cases.iter().zip(out) {
            let ok = if !t.uses_gpu() {
                y == c.1
            } else {
                y == c.1 || y == c.2
            };
            assert!(
                ok,
                "u32 {} as f32 on {t}: got {y}, want {} (or on a gpu {})",
                c.0, c.1, c.2
            );
        }
    }
    check_map(
        "i32 as u32",
        &Kernel::map(|x: Expr<i32>| x.cast::<u32>()),
        &[-1, i32::MIN, 5],
        &[u32::MAX, 0x8000_0000, 5],
    );
    check_map(
        "u32 as i32",
        &Kernel::map(|x: Expr<u32>| x.cast::<i32>()),
        &[u32::MAX, 0x8000_0000, 5],
        &[-1, i32::MIN, 5],
    );
    // bool: 1 or 0
    let xs = [-2.0f32, 0.0, 3.0];
    check_map(
        "(x > 0) as f32",
        &Kernel::map(|x: Expr<f32>| x.gt(0.0).cast::<f32>()),
        &xs,
        &[0.0, 0.0, 1.0],
    );
    check_map(
        "(x > 0) as i32",
        &Kernel::map(|x: Expr<f32>| x.gt(0.0).cast::<i32>()),
        &xs,
        &[0, 0, 1],
    );
    check_map(
        "(x > 0) as u32",
        &Kernel::map(|x: Expr<f32>| x.gt(0.0).cast::<u32>()),
        &xs,
        &[0, 0, 1],
    );
}

/// One value cast to two types in one kernel: two different values (the compiler must
/// not merge them as one common subexpression).
#[test]
fn casts_of_one_value_to_different_types_stay_apart() {
    let k = Kernel::map(|x: Expr<i32>| x.cast::<u32>() + x.cast::<f32>().cast::<u32>());
    check_map(
        "x as u32 + (x as f32) as u32",
        &k,
        &[-5, 7],
        &[0xffff_fffb, 14],
    );
    let k =
        Kernel::map(|x: Expr<f32>| x.cast::<i32>().cast::<f32>() + x.cast::<u32>().cast::<f32>());
    check_map(
        "(x as i32) as f32 + (x as u32) as f32",
        &k,
        &[-2.5, 2.5],
        &[-2.0, 4.0],
    );
}

#[test]
fn rounding_functions() {
    let xs = [2.5f32, -3.5, 0.5, 1.5, -0.5, -1.25, 2.75, 3.0];
    check_map(
        "round",
        &Kernel::map(|x: Expr<f32>| x.round()),
        &xs,
        &[2.0, -4.0, 0.0, 2.0, -0.0, -1.0, 3.0, 3.0],
    );
    check_map(
        "floor",
        &Kernel::map(|x: Expr<f32>| x.floor()),
        &xs,
        &[2.0, -4.0, 0.0, 1.0, -1.0, -2.0, 2.0, 3.0],
    );
    check_map(
        "ceil",
        &Kernel::map(|x: Expr<f32>| x.ceil()),
        &xs,
        &[3.0, -3.0, 1.0, 2.0, -0.0, -1.0, 3.0, 3.0],
    );
    check_map(
        "fract",
        &Kernel::map(|x: Expr<f32>| x.fract()),
        &xs,
        &[0.5, 0.5, 0.5, 0.5, 0.5, 0.75, 0.75, 0.0],
    );
    // literal operands, folded by the compiler
    let k = Kernel::map(|x: Expr<f32>| {
        x + Expr::constant(2.5f32).round() * 10.0 + Expr::constant(-1.25f32).fract()
    });
    check_map("x + round(2.5) * 10 + fract(-1.25)", &k, &[0.0], &[20.75]);
}

/// A fold's counter as an operand of the three-operand operations (select, mul_add,
/// clamp), as well as of the two-operand ones.
#[test]
fn fold_counter_in_every_kind_of_operation() {
    let xs = [0u32, 10, u32::MAX];
    // i = 0, 1, 2: select(i > 0, i, 100) = 100, 1, 2
    let k = Kernel::map(|x: Expr<u32>| {
        fold(3, x, |acc, i| acc + select(i.gt(0u32), i.clone(), 100u32))
    });
    check_map("fold with select(i > 0, i, 100)", &k, &xs, &[103, 113, 102]);
    // i * 2 + 1 = 1, 3, 5
    let k = Kernel::map(|x: Expr<u32>| fold(3, x, |acc, i| acc + i.mul_add(2u32, 1u32)));
    check_map("fold with i.mul_add(2, 1)", &k, &xs, &[9, 19, 8]);
    // clamp(i, 1, 5) = 1, 1, 2
    let k = Kernel::map(|x: Expr<u32>| fold(3, x, |acc, i| acc + i.clamp(1u32, 5u32)));
    check_map("fold with i.clamp(1, 5)", &k, &xs, &[4, 14, 3]);
    // the same through two-operand operations: i * 2 + 1
    let k = Kernel::map(|x: Expr<u32>| fold(3, x, |acc, i| acc + (i * 2u32 + 1u32)));
    check_map("fold with i * 2 + 1", &k, &xs, &[9, 19, 8]);
    // and a float accumulator: acc * 0.5 + i
    let k = Kernel::map(|x: Expr<f32>| fold(3, x, |acc, i| acc.mul_add(0.5, i.cast::<f32>())));
    // x -> x/2 -> x/4 + 1 -> x/8 + 0.5 + 2
    check_map(
        "fold with acc.mul_add(0.5, i as f32)",
        &k,
        &[8.0f32, 0.0],
        &[3.5, 2.5],
    );
}
