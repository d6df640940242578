//! Chains run over tiles of [`TILE`] elements kept in registers from the first link to
//! the last, and the special case of one short Horner run as a plain element loop.
//! A tile's loads bound it, so an operand a chain reads twice in a row (the start as
//! its own first factor, both factors of `a * a`, a run of products by one operand)
//! is loaded once: the same operations in the same order, one load fewer.

use super::{view, Cx, Link, Scratch, View};
use crate::kernel::expr::{BinOp, UnOp};
use crate::kernel::ops;

/// Elements per chain tile: four SSE registers' worth, kept in registers across links.
const TILE: usize = 16;

/// A chain operand: a slice of the block, or a literal broadcast into a tile-sized
/// buffer and read at offset `t & 0`, so loading either is the same branch-free copy.
#[derive(Clone, Copy)]
struct Arg<'a> {
    data: &'a [f32],
    mask: usize,
}

#[derive(Clone, Copy)]
enum LinkView<'a> {
    Un(UnOp),
    Bin(BinOp, Arg<'a>, bool),
    MadA(Arg<'a>, Arg<'a>),
    MadC(Arg<'a>, Arg<'a>),
    Horner(Arg<'a>, &'a [f32]),
    /// `v * v`: a first link `start * start` (an operand that is the running value
    /// itself), without loading it again.
    Square,
    /// `v * v + c`: a first link `start * start + c`.
    SquareAdd(Arg<'a>),
    /// `v + a * a`: one load of `a` for both factors.
    AddSquare(Arg<'a>),
    /// `v * x` (or `x * v` when reversed) `count` times over: one load of `x` for a
    /// run of products by the same operand (`m * inv * inv * inv`).
    MulRun(Arg<'a>, bool, u16),
}

#[inline(always)]
fn tile_arg(a: Arg<'_>, t: usize, n: usize) -> [f32; TILE] {
    let off = t & a.mask;
    let mut v = [0.0f32; TILE];
    v[..n].copy_from_slice(&a.data[off..off + n]);
    v
}

#[inline(always)]
fn tile_un(v: &mut [f32; TILE], op: UnOp) {
    match op {
        UnOp::Neg => v.iter_mut().for_each(|x| *x = -*x),
        UnOp::Abs => v.iter_mut().for_each(|x| *x = x.abs()),
        UnOp::Sqrt => v.iter_mut().for_each(|x| *x = x.sqrt()),
        _ => {}
    }
}

#[inline(always)]
fn tile_bin(v: &mut [f32; TILE], op: BinOp, a: &[f32; TILE], rev: bool) {
    macro_rules! each {
        ($f:expr) => {
            if rev {
                for (x, &y) in v.iter_mut().zip(a) {
                    *x = $f(y, *x);
                }
            } else {
                for (x, &y) in v.iter_mut().zip(a) {
                    *x = $f(*x, y);
                }
            }
        };
    }
    match op {
        BinOp::Add => each!(|x: f32, y: f32| x + y),
        BinOp::Sub => each!(|x: f32, y: f32| x - y),
        BinOp::Mul => each!(|x: f32, y: f32| x * y),
        BinOp::Div => each!(|x: f32, y: f32| x / y),
        BinOp::Min => each!(ops::min_f32),
        BinOp::Max => each!(ops::max_f32),
        _ => {}
    }
}

#[inline(always)]
fn tile(start: Arg<'_>, links: &[LinkView<'_>], t: usize, n: usize) -> [f32; TILE] {
    let mut v = tile_arg(start, t, n);
    for l in links {
        match *l {
            LinkView::Un(op) => tile_un(&mut v, op),
            LinkView::Bin(op, x, rev) => tile_bin(&mut v, op, &tile_arg(x, t, n), rev),
            LinkView::MadA(b, c) => {
                let (b, c) = (tile_arg(b, t, n), tile_arg(c, t, n));
                for ((x, &y), &z) in v.iter_mut().zip(&b).zip(&c) {
                    *x = *x * y + z;
                }
            }
            LinkView::MadC(a, b) => {
                let (a, b) = (tile_arg(a, t, n), tile_arg(b, t, n));
                for ((x, &y), &z) in v.iter_mut().zip(&a).zip(&b) {
                    *x += y * z;
                }
            }
            LinkView::Horner(x, coeffs) => {
                let x = tile_arg(x, t, n);
                for &c in coeffs {
                    for (v, &x) in v.iter_mut().zip(&x) {
                        *v = *v * x + c;
                    }
                }
            }
            LinkView::Square => v.iter_mut().for_each(|x| *x *= *x),
            LinkView::SquareAdd(c) => {
                let c = tile_arg(c, t, n);
                for (x, &z) in v.iter_mut().zip(&c) {
                    *x = *x * *x + z;
                }
            }
            LinkView::AddSquare(a) => {
                let a = tile_arg(a, t, n);
                for (x, &y) in v.iter_mut().zip(&a) {
                    *x += y * y;
                }
            }
            LinkView::MulRun(x, rev, count) => {
                let x = tile_arg(x, t, n);
                for _ in 0..count {
                    tile_bin(&mut v, BinOp::Mul, &x, rev);
                }
            }
        }
    }
    v
}

/// Runs a chain tile by tile: the running value of [`TILE`] elements stays in
/// registers from the first link to the last and is stored once, where one step per
/// operation would store and reload it from L1 at every operation. Each operation
/// rounds exactly as its own step would.
pub(super) fn run_chain(
    start: View<'_>,
    links: &[Link],
    coeffs: &[u32],
    sc: &Scratch,
    cx: &Cx<'_>,
    d: &mut [u32],
) {
    let len = cx.len;
    if let [Link::Horner(x, first, count)] = *links {
        if let View::Slice(x) = view(sc, cx, x) {
            let c: &[f32] =
                bytemuck::cast_slice(&coeffs[first as usize..first as usize + count as usize]);
            let out: &mut [f32] = bytemuck::cast_slice_mut(&mut d[..len]);
            if horner(start, bytemuck::cast_slice(x), c, out) {
                return;
            }
        }
    }
    // Short chains (all the suite's) keep their literals and links on the stack: a
    // masked loop runs each chain once per part and iteration, where two allocations
    // cost as much as the arithmetic.
    if links.len() <= STACK_LINKS {
        let mut consts = [[0.0f32; TILE]; 2 * STACK_LINKS + 1];
        let mut lv = [LinkView::Un(UnOp::Neg); STACK_LINKS];
        tiles(start, links, coeffs, sc, cx, d, &mut consts, &mut lv);
    } else {
        let mut consts = vec![[0.0f32; TILE]; 2 * links.len() + 1];
        let mut lv = vec![LinkView::Un(UnOp::Neg); links.len()];
        tiles(start, links, coeffs, sc, cx, d, &mut consts, &mut lv);
    }
}

/// Links a chain keeps on the stack.
const STACK_LINKS: usize = 8;

/// [`run_chain`]'s tiled path, its literals broadcast into `consts` (at least one per
/// operand) and its links resolved into `lv` (at least one per link).
#[allow(clippy::too_many_arguments)]
fn tiles<'a>(
    start: View<'a>,
    links: &[Link],
    coeffs: &'a [u32],
    sc: &'a Scratch,
    cx: &Cx<'a>,
    d: &mut [u32],
    consts: &'a mut [[f32; TILE]],
    lv: &mut [LinkView<'a>],
) {
    let len = cx.len;
    // Literals (and loop counters) of this block, each broadcast over one tile.
    let mut n = 0;
    let mut lit = |v: View<'_>| {
        if let View::Imm(x) = v {
            consts[n] = [f32::from_bits(x); TILE];
            n += 1;
        }
    };
    lit(start);
    for l in links {
        match *l {
            Link::Un(_) => {}
            Link::Bin(_, x, _) => lit(view(sc, cx, x)),
            Link::MadA(x, y) | Link::MadC(x, y) => {
                lit(view(sc, cx, x));
                lit(view(sc, cx, y));
            }
            Link::Horner(x, _, _) => lit(view(sc, cx, x)),
        }
    }
    let consts: &'a [[f32; TILE]] = consts;
    let mut next = 0;
    fn as_arg<'a>(v: View<'a>, consts: &'a [[f32; TILE]], next: &mut usize) -> Arg<'a> {
        match v {
            View::Slice(s) => Arg {
                data: bytemuck::cast_slice(s),
                mask: usize::MAX,
            },
            View::Imm(_) => {
                *next += 1;
                Arg {
                    data: &consts[*next - 1][..],
                    mask: 0,
                }
            }
        }
    }
    let mut arg = |v| as_arg(v, consts, &mut next);
    let first = start;
    let start = arg(start);
    // Operands that repeat load once: the start again as the first link's factor, the
    // same slice as both factors, a run of products by one operand. The operations
    // and their order are unchanged, so the bits are too.
    let mut k = 0usize;
    for (i, l) in links.iter().enumerate() {
        let link = match *l {
            Link::Un(op) => LinkView::Un(op),
            Link::Bin(BinOp::Mul, x, _) if i == 0 && same(first, view(sc, cx, x)) => {
                LinkView::Square
            }
            Link::Bin(BinOp::Mul, x, rev) => {
                let x = view(sc, cx, x);
                let a = arg(x);
                match k.checked_sub(1).map(|p| (p, lv[p])) {
                    Some((p, LinkView::MulRun(y, r, count)))
                        if r == rev && same_arg(y, a) && count < u16::MAX =>
                    {
                        lv[p] = LinkView::MulRun(y, r, count + 1);
                        continue;
                    }
                    _ => LinkView::MulRun(a, rev, 1),
                }
            }
            Link::Bin(op, x, rev) => LinkView::Bin(op, arg(view(sc, cx, x)), rev),
            Link::MadA(b, c) if i == 0 && same(first, view(sc, cx, b)) => {
                // the factor's own argument goes unused: keep the literals in step
                let _ = arg(view(sc, cx, b));
                LinkView::SquareAdd(arg(view(sc, cx, c)))
            }
            Link::MadA(b, c) => LinkView::MadA(arg(view(sc, cx, b)), arg(view(sc, cx, c))),
            Link::MadC(a, b) if a == b && matches!(view(sc, cx, a), View::Slice(_)) => {
                let x = arg(view(sc, cx, a));
                let _ = arg(view(sc, cx, b));
                LinkView::AddSquare(x)
            }
            Link::MadC(a, b) => LinkView::MadC(arg(view(sc, cx, a)), arg(view(sc, cx, b))),
            Link::Horner(x, first, count) => {
                let c: &[f32] =
                    bytemuck::cast_slice(&coeffs[first as usize..first as usize + count as usize]);
                LinkView::Horner(arg(view(sc, cx, x)), c)
            }
        };
        lv[k] = link;
        k += 1;
    }
    let lv = &lv[..k];
    let d: &mut [f32] = bytemuck::cast_slice_mut(d);
    let full = len / TILE * TILE;
    for (i, out) in d[..full].chunks_exact_mut(TILE).enumerate() {
        out.copy_from_slice(&tile(start, lv, i * TILE, TILE));
    }
    if full < len {
        let n = len - full;
        d[full..len].copy_from_slice(&tile(start, lv, full, n)[..n]);
    }
}

/// Whether two operands are the same slice of the block (a literal never is: it has
/// no load to save).
fn same(a: View<'_>, b: View<'_>) -> bool {
    match (a, b) {
        (View::Slice(a), View::Slice(b)) => std::ptr::eq(a, b),
        _ => false,
    }
}

/// Whether two chain operands read the same elements.
fn same_arg(a: Arg<'_>, b: Arg<'_>) -> bool {
    a.mask == b.mask && std::ptr::eq(a.data, b.data)
}

/// A chain that is one Horner run, `v = v * x + c` for each coefficient `c` from a
/// start `v` (a polynomial in `x`), for up to 8 coefficients: a plain
/// element loop with the coefficient count known at compile time, so the compiler
/// keeps every coefficient in a register across the whole block and vectorises the
/// loop as it would a hand-written one. Same operations in the same order as the
/// tiled path, so the same bits. False (nothing written) for longer runs.
fn horner(start: View<'_>, x: &[f32], c: &[f32], out: &mut [f32]) -> bool {
    macro_rules! fixed {
        ($($n:literal)*) => {
            match c.len() {
                $($n => {
                    let c: &[f32; $n] = match c.try_into() {
                        Ok(c) => c,
                        Err(_) => return false,
                    };
                    match start {
                        View::Imm(s) => horner_fixed(|_| f32::from_bits(s), x, c, out),
                        View::Slice(s) => {
                            let s: &[f32] = bytemuck::cast_slice(s);
                            horner_fixed(|i| s[i], x, c, out)
                        }
                    }
                    true
                })*
                _ => false,
            }
        };
    }
    fixed!(1 2 3 4 5 6 7 8)
}

#[inline(always)]
fn horner_fixed<const N: usize>(
    start: impl Fn(usize) -> f32,
    x: &[f32],
    c: &[f32; N],
    out: &mut [f32],
) {
    let x = &x[..out.len()];
    for (i, (o, &x)) in out.iter_mut().zip(x).enumerate() {
        let mut v = start(i);
        for &c in c {
            v = v * x + c;
        }
        *o = v;
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::eval;
    use super::super::BLOCK;
    use crate::kernel::{Expr, Kernel};

    /// A chain longer than [`STACK_LINKS`](super::STACK_LINKS) (its links on the heap)
    /// and shorter ones (on the stack), with literals and slices in every operand
    /// position, bit for bit against plain Rust, across a tile boundary and a block
    /// boundary.
    #[test]
    fn long_and_short_chains_match_plain_arithmetic() {
        let xs: Vec<f32> = (0..BLOCK + 37)
            .map(|i| (i as f32 * 0.37).sin() * 9.0)
            .chain([f32::NAN, f32::INFINITY, -0.0, 1e-39])
            .collect();
        let ys: Vec<f32> = xs.iter().map(|x| x * 0.61 + 0.3).collect();
        let (xb, yb): (Vec<u32>, Vec<u32>) = (
            xs.iter().map(|x| x.to_bits()).collect(),
            ys.iter().map(|y| y.to_bits()).collect(),
        );
        for links in [3usize, 8, 9, 14] {
            let k = Kernel::map2(move |x: Expr<f32>, y: Expr<f32>| {
                let mut v = x.clone() + 1.5;
                for l in 1..links {
                    v = match l % 7 {
                        0 => v * &y - 0.25,
                        1 => v / &y,
                        2 => v.abs().sqrt(),
                        3 => v.min(&y),
                        4 => v * 2.0 + &y,
                        5 => -v,
                        _ => 3.0f32 - v.max(&x),
                    };
                }
                v
            });
            let plan = k.inner().plan().unwrap_or_else(|e| panic!("{e}"));
            let mut sc = plan.scratch();
            let mut out = vec![0u32; xs.len()];
            for (i, o) in out.chunks_mut(BLOCK).enumerate() {
                let r = i * BLOCK..i * BLOCK + o.len();
                plan.run_block(
                    &mut sc,
                    &[&xb[r.clone()], &yb[r.clone()]],
                    r.start as u64,
                    o,
                );
            }
            for (i, (&x, &y)) in xs.iter().zip(&ys).enumerate() {
                let mut v = x + 1.5;
                for l in 1..links {
                    v = match l % 7 {
                        0 => v * y - 0.25,
                        1 => v / y,
                        2 => v.abs().sqrt(),
                        3 => v.min(y),
                        4 => v * 2.0 + y,
                        5 => -v,
                        _ => 3.0 - v.max(x),
                    };
                }
                // which NaN comes out is the hardware's choice, as in the test above
                let g = f32::from_bits(out[i]);
                assert!(
                    out[i] == v.to_bits() || (g.is_nan() && v.is_nan()),
                    "{links} links, x = {x}, y = {y}: {g} against {v}"
                );
            }
        }
    }

    /// The links that load a repeated operand once (a first `start * start`, with or
    /// without an addend; `v + a * a`; a run of products by one operand, either way
    /// round) against plain Rust, bit for bit, beside the same shapes where the
    /// operand is not the running value or the run is broken. The plans are checked
    /// to hold those shapes, so the paths are the ones run.
    #[test]
    fn repeated_operands_load_once_and_match_plain_arithmetic() {
        type F = fn(f32, f32) -> f32;
        type E = fn(Expr<f32>, Expr<f32>) -> Expr<f32>;
        let cases: [(F, E); 6] = [
            // n-body's squared distance: y*y first, then + x*x, then + a literal
            (
                |x, y| {
                    let (dx, dy) = (x - 0.5, y + 0.25);
                    let d2 = dx * dx + dy * dy + 0.01;
                    d2 + dx * dy
                },
                |x, y| {
                    let (dx, dy) = (x - 0.5f32, y + 0.25f32);
                    let d2 = dx.clone() * &dx + dy.clone() * &dy + 0.01f32;
                    d2 + dx * dy
                },
            ),
            // a first mul-add by the start itself: dz * dz + s
            (
                |x, y| {
                    let dz = x * 3.0;
                    (dz * dz + y).sqrt() - dz
                },
                |x, y| {
                    let dz = x * 3.0f32;
                    (dz.clone() * &dz + y).sqrt() - dz
                },
            ),
            // m * inv * inv * inv, and the same the other way round
            (
                |x, y| {
                    let inv = 1.0 / (x * x + 1.0).sqrt();
                    (y * inv * inv * inv) + (inv * (inv * (inv * y)))
                },
                |x, y| {
                    let inv = 1.0f32 / (x.clone() * &x + 1.0f32).sqrt();
                    (y.clone() * &inv * &inv * &inv) + (inv.clone() * (inv.clone() * (inv * y)))
                },
            ),
            // a run broken by a change of side
            (|x, y| x * ((y * x) * x), |x, y| x.clone() * ((y * &x) * &x)),
            // the start again, but not as the first link's factor
            (|x, _| (x + 1.0) * x, |x, _| (x.clone() + 1.0f32) * x),
            // products by literals: no run merges two literal buffers
            (
                |x, y| y * x * 2.0 * 2.0 * 0.5,
                |x, y| y * x * 2.0f32 * 2.0f32 * 0.5f32,
            ),
        ];
        let mut xs: Vec<f32> = (0..BLOCK + 45)
            .map(|i| (i as f32 * 0.173).cos() * 7.0)
            .collect();
        xs.extend([f32::NAN, f32::INFINITY, -0.0, 1e-39, 3.0e38, -2.0]);
        let ys: Vec<f32> = xs.iter().map(|x| x * -0.83 + 0.6).collect();
        let (xb, yb): (Vec<u32>, Vec<u32>) = (
            xs.iter().map(|x| x.to_bits()).collect(),
            ys.iter().map(|y| y.to_bits()).collect(),
        );
        for (c, (plain, expr)) in cases.into_iter().enumerate() {
            let k = Kernel::map2(expr);
            let plan = k.inner().plan().unwrap_or_else(|e| panic!("{e}"));
            assert!(
                plan.steps
                    .iter()
                    .any(|s| matches!(s, super::super::Step::Chain { .. })),
                "case {c}: {plan:#?}"
            );
            let mut sc = plan.scratch();
            let mut out = vec![0u32; xs.len()];
            for (i, o) in out.chunks_mut(BLOCK).enumerate() {
                let r = i * BLOCK..i * BLOCK + o.len();
                plan.run_block(
                    &mut sc,
                    &[&xb[r.clone()], &yb[r.clone()]],
                    r.start as u64,
                    o,
                );
            }
            for (i, (&x, &y)) in xs.iter().zip(&ys).enumerate() {
                let v = plain(x, y);
                let g = f32::from_bits(out[i]);
                assert!(
                    out[i] == v.to_bits() || (g.is_nan() && v.is_nan()),
                    "case {c}, x = {x}, y = {y}: {g} against {v}"
                );
            }
        }
    }

    /// Every Horner run length, from a literal and from another input, through the
    /// specialised loop (up to 8 coefficients) and the tiled one (beyond), bit for bit
    /// against the same arithmetic in plain Rust.
    #[test]
    fn horner_of_every_length_matches_plain_arithmetic() {
        let mut xs: Vec<f32> = (0..4133).map(|i| i as f32 * 0.0071 - 13.0).collect();
        xs.extend([f32::INFINITY, -0.0, 1e-39, 3.0e38]);
        let ys: Vec<f32> = xs.iter().map(|x| x * 0.37 - 1.0).collect();
        let (xb, yb): (Vec<u32>, Vec<u32>) = (
            xs.iter().map(|x| x.to_bits()).collect(),
            ys.iter().map(|y| y.to_bits()).collect(),
        );
        for count in 1..=11usize {
            let c: Vec<f32> = (0..count).map(|k| 0.75 - k as f32 * 0.3125).collect();
            // from the other input: y * x + c0, then * x + c1, ...
            let cc = c.clone();
            let k = Kernel::map2(move |x: Expr<f32>, y: Expr<f32>| {
                cc.iter().fold(y, |v, &ck| v * &x + ck)
            });
            let plan = k.inner().plan().unwrap_or_else(|e| panic!("{e}"));
            let mut sc = plan.scratch();
            let mut out = vec![0u32; xs.len()];
            for (i, o) in out.chunks_mut(BLOCK).enumerate() {
                let r = i * BLOCK..i * BLOCK + o.len();
                plan.run_block(
                    &mut sc,
                    &[&xb[r.clone()], &yb[r.clone()]],
                    r.start as u64,
                    o,
                );
            }
            for (i, (&x, &y)) in xs.iter().zip(&ys).enumerate() {
                let want = c.iter().fold(y, |v, &ck| v * x + ck);
                assert_eq!(out[i], want.to_bits(), "count {count}, from y, x = {x}");
            }
            // from a literal: a polynomial in x whose leading coefficient is 1.5
            let cc = c.clone();
            let k = Kernel::map(move |x: Expr<f32>| {
                cc.iter().fold(x.clone() * 1.5 + 0.5, |v, &ck| v * &x + ck)
            });
            for (&x, g) in xs.iter().zip(eval(&k, &xs, 0)) {
                let want = c.iter().fold(x * 1.5 + 0.5, |v, &ck| v * x + ck);
                assert_eq!(
                    g.to_bits(),
                    want.to_bits(),
                    "count {count}, from 1.5, x = {x}"
                );
            }
        }
    }
}
