//! Table reads, with the meaning `wgsl::gen` gives them. The index (`i32` or `u32`) is
//! clamped into `0..len` (an empty table reads zero), or, with a default, checked
//! against it (the default outside); the global index is then made local to the part
//! of the table the call holds (`data`, from `start`) and clamped into that too, so no
//! index whatever its value reads outside `data` (an empty `data` reads zero).
//!
//! A read at a sum no other step reads (`load_sum`: a stencil's `row * width + col`)
//! forms the sum itself, and over a whole table reads a run of consecutive indices
//! as one copy and a run of equal ones as one fill.

use super::{TableRef, View};

/// The element at local position `g - start`, clamped into `data` (not empty).
#[inline(always)]
fn local(data: &[u32], start: usize, g: u32) -> u32 {
    data[(g as usize).wrapping_sub(start).min(data.len() - 1)]
}

/// Whether index `i` is inside a table of `len` elements.
#[inline(always)]
fn inside<const SIGNED: bool>(i: u32, len: u32) -> bool {
    (!SIGNED || (i as i32) >= 0) && i < len
}

/// The global index `i` reads, clamped into `0..len` (`len > 0`).
#[inline(always)]
fn clamped<const SIGNED: bool>(i: u32, len: u32) -> u32 {
    let i = if SIGNED { (i as i32).max(0) as u32 } else { i };
    i.min(len - 1)
}

/// One read: element `i` of `t` (`signed`: an `i32` index), or `default` outside.
pub(super) fn load_one(t: TableRef<'_>, signed: bool, i: u32, default: Option<u32>) -> u32 {
    if signed {
        one::<true>(t, i, default)
    } else {
        one::<false>(t, i, default)
    }
}

fn one<const SIGNED: bool>(t: TableRef<'_>, i: u32, default: Option<u32>) -> u32 {
    match default {
        Some(d) if !inside::<SIGNED>(i, t.len) => d,
        Some(_) if t.data.is_empty() => 0,
        Some(_) => local(t.data, t.start, i),
        None if t.len == 0 || t.data.is_empty() => 0,
        None => local(t.data, t.start, clamped::<SIGNED>(i, t.len)),
    }
}

/// One read of a table of 64-bit elements (two words each in `data`, low first), with
/// the meaning of [`load_one`].
pub(super) fn load_wide(t: TableRef<'_>, signed: bool, i: u32, default: Option<u64>) -> u64 {
    let held = t.data.len() / 2;
    let at = |g: u32| {
        let l = (g as usize).wrapping_sub(t.start).min(held - 1);
        t.data[2 * l] as u64 | (t.data[2 * l + 1] as u64) << 32
    };
    let (inside, clamped): (bool, fn(u32, u32) -> u32) = match signed {
        true => (inside::<true>(i, t.len), clamped::<true>),
        false => (inside::<false>(i, t.len), clamped::<false>),
    };
    match default {
        Some(d) if !inside => d,
        Some(_) if held == 0 => 0,
        Some(_) => at(i),
        None if t.len == 0 || held == 0 => 0,
        None => at(clamped(i, t.len)),
    }
}

/// A gather: element `index` of `t` for every element of the block.
pub(super) fn load(
    t: TableRef<'_>,
    signed: bool,
    index: View<'_>,
    default: Option<View<'_>>,
    out: &mut [u32],
) {
    if signed {
        gather::<true>(t, index, default, out)
    } else {
        gather::<false>(t, index, default, out)
    }
}

fn gather<const SIGNED: bool>(
    t: TableRef<'_>,
    index: View<'_>,
    default: Option<View<'_>>,
    out: &mut [u32],
) {
    let ix = match index {
        View::Slice(ix) => ix,
        // one index for the whole block: one read (or the default's elements)
        View::Imm(i) => {
            return match default {
                Some(View::Slice(d)) if !inside::<SIGNED>(i, t.len) => out.copy_from_slice(d),
                Some(View::Slice(_)) => out.fill(one::<SIGNED>(t, i, Some(0))),
                Some(View::Imm(d)) => out.fill(one::<SIGNED>(t, i, Some(d))),
                None => out.fill(one::<SIGNED>(t, i, None)),
            };
        }
    };
    let (len, data, start) = (t.len, t.data, t.start);
    match default {
        None if len == 0 || data.is_empty() => out.fill(0),
        None if start == 0 && data.len() >= len as usize => {
            // the whole table: one clamp
            let data = &data[..len as usize];
            let hi = data.len() - 1;
            for (o, &i) in out.iter_mut().zip(ix) {
                let i = if SIGNED { (i as i32).max(0) as u32 } else { i };
                *o = data[(i as usize).min(hi)];
            }
        }
        None => {
            for (o, &i) in out.iter_mut().zip(ix) {
                *o = local(data, start, clamped::<SIGNED>(i, len));
            }
        }
        Some(d) if data.is_empty() => {
            each(
                ix,
                d,
                out,
                |i, d| {
                    if inside::<SIGNED>(i, len) {
                        0
                    } else {
                        d
                    }
                },
            )
        }
        Some(d) => each(ix, d, out, |i, d| {
            let v = local(data, start, i);
            if inside::<SIGNED>(i, len) {
                v
            } else {
                d
            }
        }),
    }
}

/// `out[k] = f(ix[k], default[k])`.
#[inline(always)]
fn each(ix: &[u32], default: View<'_>, out: &mut [u32], f: impl Fn(u32, u32) -> u32) {
    match default {
        View::Slice(d) => {
            for ((o, &i), &d) in out.iter_mut().zip(ix).zip(d) {
                *o = f(i, d);
            }
        }
        View::Imm(d) => {
            for (o, &i) in out.iter_mut().zip(ix) {
                *o = f(i, d);
            }
        }
    }
}

/// A gather at the index `a + b` (wrapping), without a default: the sum is formed as
/// it is read, not stored in a step of its own. Reads exactly what [`load`] reads at
/// the stored sum.
pub(super) fn load_sum(t: TableRef<'_>, signed: bool, a: View<'_>, b: View<'_>, out: &mut [u32]) {
    if signed {
        gather_sum::<true>(t, a, b, out)
    } else {
        gather_sum::<false>(t, a, b, out)
    }
}

fn gather_sum<const SIGNED: bool>(t: TableRef<'_>, a: View<'_>, b: View<'_>, out: &mut [u32]) {
    let (len, data, start) = (t.len, t.data, t.start);
    if len == 0 || data.is_empty() {
        return out.fill(0);
    }
    let whole = start == 0 && data.len() >= len as usize;
    match (a, b) {
        (View::Slice(a), b) | (b @ View::Imm(_), View::Slice(a)) if whole => {
            whole_sum::<SIGNED>(&data[..len as usize], a, b, out)
        }
        _ => sum_each(a, b, out, |i| local(data, start, clamped::<SIGNED>(i, len))),
    }
}

/// Elements a gather forms its indices for at a time.
const INDICES: usize = 64;

/// [`gather_sum`] over a whole table (not empty), the usual case, [`INDICES`]
/// elements at a time: their indices are summed and clamped below in one vectorised
/// loop, then read, clamped above, in a scalar one (half the instructions per
/// element of one loop doing both). Indices that run consecutively inside the table
/// (a stencil's row, a matrix's row) are a copy, and indices all equal (a matrix
/// element shared by a row of results) a fill: the same elements, without a scalar
/// read each.
fn whole_sum<const SIGNED: bool>(data: &[u32], a: &[u32], b: View<'_>, out: &mut [u32]) {
    let hi = data.len() - 1;
    let low = |s: u32| if SIGNED { (s as i32).max(0) as u32 } else { s };
    let mut ix = [0u32; INDICES];
    for (c, o) in out.chunks_mut(INDICES).enumerate() {
        let (at, n) = (c * INDICES, o.len());
        let (a, ix) = (&a[at..at + n], &mut ix[..n]);
        // the first index, then all of them, checked against it as they are formed
        let y0 = match b {
            View::Slice(b) => b[at],
            View::Imm(y) => y,
        };
        let first = low(a[0].wrapping_add(y0));
        let (mut run, mut same) = (0u32, 0u32);
        let mut check = |k: usize, i: &mut u32, s: u32| {
            let v = low(s);
            *i = v;
            run |= v ^ first.wrapping_add(k as u32);
            same |= v ^ first;
        };
        match b {
            View::Slice(b) => {
                for (k, ((i, &x), &y)) in ix.iter_mut().zip(a).zip(&b[at..at + n]).enumerate() {
                    check(k, i, x.wrapping_add(y));
                }
            }
            View::Imm(y) => {
                for (k, (i, &x)) in ix.iter_mut().zip(a).enumerate() {
                    check(k, i, x.wrapping_add(y));
                }
            }
        }
        let first = first as usize;
        if same == 0 && first <= hi {
            o.fill(data[first]);
        } else if run == 0 && first + n - 1 <= hi {
            o.copy_from_slice(&data[first..first + n]);
        } else {
            for (o, &i) in o.iter_mut().zip(ix.iter()) {
                *o = data[(i as usize).min(hi)];
            }
        }
    }
}

/// `out[k] = f(a[k] + b[k])`, the sum wrapping.
#[inline(always)]
fn sum_each(a: View<'_>, b: View<'_>, out: &mut [u32], f: impl Fn(u32) -> u32) {
    match (a, b) {
        (View::Slice(a), View::Slice(b)) => {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = f(x.wrapping_add(y));
            }
        }
        (View::Slice(a), View::Imm(y)) | (View::Imm(y), View::Slice(a)) => {
            for (o, &x) in out.iter_mut().zip(a) {
                *o = f(x.wrapping_add(y));
            }
        }
        (View::Imm(x), View::Imm(y)) => out.fill(f(x.wrapping_add(y))),
    }
}
