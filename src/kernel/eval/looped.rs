//! Running a loop over one block. Without a mask every element runs the same trips:
//! the body's steps run over the whole block, as any other steps, until the uniform
//! count (or a uniform condition) stops the block. With a mask each element has an
//! active flag (0 or 1) and its own trip count: the count and the condition clear the
//! flags, carried values change only where the flag is set, and the block leaves the
//! loop as soon as no flag is.

use super::{imm, view, Carried, Cx, LoopStep, Mask, Scratch, Src, View};

/// Runs `l` over the span, part by part (see [`LoopStep::chunk`]).
pub(super) fn run_loop(l: &LoopStep, s: &mut Scratch, cx: &Cx<'_>) {
    let end = cx.lo + cx.len;
    // Swapping a slot in swaps all of it: only when no other part's values are in it.
    let swap = cx.len <= l.chunk;
    let mut lo = cx.lo;
    while lo < end {
        let len = l.chunk.min(end - lo);
        run_part(l, s, &Cx { lo, len, ..*cx }, swap);
        lo += len;
    }
}

fn run_part(l: &LoopStep, s: &mut Scratch, cx: &Cx<'_>, swap: bool) {
    for c in &l.carries {
        match c.at {
            Src::Slot(d) => {
                let mut slot = std::mem::take(&mut s.slots[d as usize]);
                put(view(s, cx, c.init), span(&mut slot, cx));
                s.slots[d as usize] = slot;
            }
            Src::Uni(k) => s.uni[k as usize] = imm(s, c.init),
            Src::Input(_) | Src::Imm(_) => {}
        }
    }
    let count = match view(s, cx, l.count) {
        View::Imm(n) => Some(n),
        View::Slice(_) => None,
    };
    match (l.mask, count) {
        (Some(m), _) => masked(l, m, count, s, cx, swap),
        (None, n) => {
            let n = n.unwrap_or(0);
            let mut i = 0;
            while i < n {
                s.uni[l.counter as usize] = i;
                if let Some((steps, test)) = &l.cond {
                    (cx.run)(steps, s, cx);
                    if imm(s, *test) == 0 {
                        break;
                    }
                }
                (cx.run)(&l.body, s, cx);
                update(&l.carries, s, cx, None, swap);
                i += 1;
            }
            if let Src::Uni(t) = l.trips {
                s.uni[t as usize] = i;
            }
        }
    }
}

fn masked(l: &LoopStep, m: Mask, count: Option<u32>, s: &mut Scratch, cx: &Cx<'_>, swap: bool) {
    let Src::Slot(trips) = l.trips else { return };
    let mut act = std::mem::take(&mut s.slots[m.act as usize]);
    match m.outer {
        Some(o) => span(&mut act, cx).copy_from_slice(&s.slots[o as usize][cx.lo..cx.lo + cx.len]),
        None => span(&mut act, cx).fill(1),
    }
    s.slots[m.act as usize] = act;
    span(&mut s.slots[trips as usize], cx).fill(0);
    // per-element counts are checked with the condition
    let per_element = match count {
        Some(_) => None,
        None => Some(l.count),
    };
    // the part of the span that still has active elements
    let mut live = *cx;
    let mut i = 0u32;
    loop {
        if count.is_some_and(|n| i >= n) {
            break;
        }
        s.uni[l.counter as usize] = i;
        let test = match &l.cond {
            Some((steps, test)) => {
                (cx.run)(steps, s, &live);
                Some(*test)
            }
            None => None,
        };
        let active = refine(s, &live, m.act, trips, per_element, test, i);
        if active == 0 {
            break;
        }
        narrow(&mut live, &s.slots[m.act as usize]);
        (cx.run)(&l.body, s, &live);
        let all = active == cx.len;
        update(&l.carries, s, &live, (!all).then_some(m.act), swap);
        i += 1;
    }
}

/// Shrinks `live` to the elements from its first active one to its last.
fn narrow(live: &mut Cx<'_>, act: &[u32]) {
    while live.len > 0 && act[live.lo] == 0 {
        live.lo += 1;
        live.len -= 1;
    }
    while live.len > 0 && act[live.lo + live.len - 1] == 0 {
        live.len -= 1;
    }
}

/// The span's part of a slot.
fn span<'a>(slot: &'a mut [u32], cx: &Cx<'_>) -> &'a mut [u32] {
    &mut slot[cx.lo..cx.lo + cx.len]
}

/// Clears the active flag of every element whose count is reached (`i >= count`) or
/// whose test fails, and counts a trip for every element still active; gives how many
/// are.
fn refine(
    s: &mut Scratch,
    cx: &Cx<'_>,
    act: u16,
    trips: u16,
    count: Option<Src>,
    test: Option<Src>,
    i: u32,
) -> usize {
    let mut a = std::mem::take(&mut s.slots[act as usize]);
    let mut t = std::mem::take(&mut s.slots[trips as usize]);
    let (a2, t2) = (span(&mut a, cx), span(&mut t, cx));
    let cnt = count.map(|c| view(s, cx, c));
    let tst = test.map(|c| view(s, cx, c));
    let n = match (cnt, tst) {
        (_, Some(View::Imm(0))) => pass(a2, t2, std::iter::repeat(0)),
        (Some(View::Slice(c)), Some(View::Slice(x))) => pass(
            a2,
            t2,
            c.iter()
                .zip(x)
                .map(|(&c, &x)| u32::from(i < c) & u32::from(x != 0)),
        ),
        (Some(View::Slice(c)), _) => pass(a2, t2, c.iter().map(|&c| u32::from(i < c))),
        (_, Some(View::Slice(x))) => pass(a2, t2, x.iter().map(|&x| u32::from(x != 0))),
        (Some(View::Imm(c)), _) => pass(a2, t2, std::iter::repeat(u32::from(i < c))),
        (None, _) => pass(a2, t2, std::iter::repeat(1)),
    };
    s.slots[act as usize] = a;
    s.slots[trips as usize] = t;
    n as usize
}

#[inline(always)]
fn pass(act: &mut [u32], trips: &mut [u32], keep: impl Iterator<Item = u32>) -> u32 {
    let mut n = 0u32;
    for ((a, t), k) in act.iter_mut().zip(trips.iter_mut()).zip(keep) {
        let v = *a & k;
        *a = v;
        *t += v;
        n += v;
    }
    n
}

/// Assigns every carried value its next value, all at once; with `act`, only where
/// the element is active. `swap`: the span is all that matters of every slot, so a
/// slot may be swapped in instead of copied.
fn update(carries: &[Carried], s: &mut Scratch, cx: &Cx<'_>, act: Option<u16>, swap: bool) {
    // Next values that are other carried values, copied aside before any changes.
    for c in carries {
        if let Some(tmp) = c.tmp {
            let mut slot = std::mem::take(&mut s.slots[tmp as usize]);
            put(view(s, cx, c.next), span(&mut slot, cx));
            s.slots[tmp as usize] = slot;
        }
    }
    for c in carries {
        let Src::Slot(d) = c.at else { continue };
        let (from, swap) = match c.tmp {
            Some(tmp) => (Src::Slot(tmp), swap),
            None => (c.next, swap && c.swap),
        };
        if from == c.at {
            continue;
        }
        match (act, from) {
            (None, Src::Slot(x)) if swap => s.slots.swap(d as usize, x as usize),
            _ => {
                let mut slot = std::mem::take(&mut s.slots[d as usize]);
                let v = view(s, cx, from);
                match act {
                    None => put(v, span(&mut slot, cx)),
                    Some(a) => blend(
                        v,
                        &s.slots[a as usize][cx.lo..cx.lo + cx.len],
                        span(&mut slot, cx),
                    ),
                }
                s.slots[d as usize] = slot;
            }
        }
    }
    // Uniform carried values last: a carried slot may read one (never the reverse).
    let mut k = 0;
    for c in carries {
        if let Src::Uni(_) = c.at {
            s.uni_next[k] = imm(s, c.next);
            k += 1;
        }
    }
    k = 0;
    for c in carries {
        if let Src::Uni(u) = c.at {
            s.uni[u as usize] = s.uni_next[k];
            k += 1;
        }
    }
}

fn put(v: View<'_>, d: &mut [u32]) {
    match v {
        View::Slice(v) => d.copy_from_slice(v),
        View::Imm(v) => d.fill(v),
    }
}

/// `d = act ? v : d`, element by element. The flags are 0 or 1, so the choice is a
/// mask (`0 - a`: all ones or none) and the loop vectorises, where a branch or a
/// conditional move per element does not.
fn blend(v: View<'_>, act: &[u32], d: &mut [u32]) {
    match v {
        View::Slice(v) => {
            for ((d, &x), &a) in d.iter_mut().zip(v).zip(act) {
                let m = 0u32.wrapping_sub(a);
                *d = (x & m) | (*d & !m);
            }
        }
        View::Imm(x) => {
            for (d, &a) in d.iter_mut().zip(act) {
                let m = 0u32.wrapping_sub(a);
                *d = (x & m) | (*d & !m);
            }
        }
    }
}
