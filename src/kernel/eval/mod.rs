//! The block-wise CPU evaluator.
//!
//! Like numexpr, it evaluates a program over blocks of [`BLOCK`] elements, so no
//! per-element interpretation happens and every loop is one the compiler vectorizes.
//! Four things keep it near a hand-written loop:
//! - registers map to a few reusable scratch slots by liveness, so a block's working
//!   set stays in L1/L2 however long the program; inputs are read in place, literals
//!   stay immediates, and the last step writes straight into the output;
//! - a value that is the same for every element of the block (a loop counter, a
//!   table's length, a bound parameter, a table read at the counter, anything computed
//!   from those alone) is a *uniform*: one scalar, computed once and read by the block
//!   steps as an immediate (n-body's `t.at(j)` is one read per iteration, not a gather);
//! - a single-use `a * b` followed by `± c` becomes one mul-add step (two roundings,
//!   exactly as before: Rust never contracts `a * b + c`);
//! - a run of f32 steps that each consume the previous one's single-use result (and
//!   compile to inline SSE, no libm call) is a *chain*, run over 16-element tiles kept
//!   in registers from the first operation to the last; consecutive mul-adds by the
//!   same operand (Horner's rule) load that operand once per tile, and so do a chain's
//!   other repeated operands (n-body's `dy * dy + dx * dx` and `m * inv * inv * inv`):
//!   the loads, not the arithmetic, bound a chain.
//!
//! A loop whose count is uniform and whose condition (if any) is uniform runs
//! block-wise with no per-element bookkeeping; otherwise it is *masked*: each element
//! has an active flag and its own trip count, carried values change only where active,
//! and the loop ends when no element is active. An outermost masked loop runs its
//! block in parts of a few hundred elements, each ending on its own, and each
//! iteration runs only from the first active element of the part to the last, so an
//! element that escapes at once does not pay for a slow one far away.
//!
//! A gather at an integer sum nothing else reads adds the sum as it reads (and copies
//! runs of consecutive indices); an unsigned division by a literal power of two is a
//! shift.
//!
//! Every operation rounds exactly as its own step would, so fusion never changes a
//! result (the tests compare bit patterns).
//!
//! A program with a 64-bit value (`f64`) is not planned into steps over 32-bit slots:
//! `wide` runs it, over 64-bit lanes (see its docs). Kernels that compute in f64 are
//! rarer and their cost is the arithmetic, so a plain, general evaluator was chosen
//! over doubling every specialised path above.
//!
//! The cut: this file holds the plan's vocabulary (sources, steps, chain links), the
//! [`Plan`], its per-thread [`Scratch`] and the [`TableRef`]s a call passes. Planning:
//! `plan` turns a program into steps (slots by liveness), `plan_loop` plans a loop,
//! with `uniform` finding the uniform registers, `fuse` the mul-adds, `liveness`
//! numbering positions and last uses and `chain` forming the f32 chains. Running:
//! `block` runs a plan over one block (`Plan::run`), `looped` runs a loop (its body
//! through `block` again), `tile` runs chains over register tiles, `gather` reads
//! tables, and `typed` holds the typed element loops every step ends in. Imports go
//! one way: the files here use this one's types, never the reverse, and the two
//! halves do not use each other. `tests` (with the helpers the other tests use),
//! `tests_loops` and `tests_tables` check plans against plain Rust, bit for bit.

mod block;
mod chain;
mod fuse;
mod gather;
mod liveness;
mod looped;
mod plan;
mod plan_loop;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_loops;
#[cfg(test)]
mod tests_tables;
mod tile;
mod typed;
mod uniform;
mod wide;

use super::expr::{BinOp, UnOp};
use super::scalar::ScalarType;

/// Elements per block: 4,096 x 4 bytes = 16 KiB per slot.
pub(crate) const BLOCK: usize = 4096;

/// A table (whole-array input) as one call gives it to the evaluator: `data` holds
/// elements `start..start + data.len()` of a table of `len` elements (a device may
/// hold only a window: its share plus a halo). Reads clamp or check against `len`;
/// an index that falls outside `data` nevertheless is clamped into it, so no read is
/// ever out of bounds (and an empty `data` reads zero).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TableRef<'a> {
    pub(crate) data: &'a [u32],
    pub(crate) start: usize,
    pub(crate) len: u32,
}

impl TableRef<'_> {
    /// A table of no elements: what a read of a table the call did not pass sees.
    pub(crate) const EMPTY: TableRef<'static> = TableRef {
        data: &[],
        start: 0,
        len: 0,
    };
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Src {
    Slot(u16),
    Input(u8),
    Imm(u32),
    /// A uniform: one value for the whole block, in `Scratch::uni` (a loop counter, a
    /// table length, a value computed from uniforms only).
    Uni(u16),
}

#[derive(Debug, Clone)]
enum Step {
    Index {
        dst: u16,
    },
    Unary {
        op: UnOp,
        ty: ScalarType,
        dst: u16,
        a: Src,
    },
    Binary {
        op: BinOp,
        ty: ScalarType,
        dst: u16,
        a: Src,
        b: Src,
    },
    Select {
        dst: u16,
        c: Src,
        a: Src,
        b: Src,
    },
    Cast {
        from: ScalarType,
        to: ScalarType,
        dst: u16,
        a: Src,
    },
    MulAdd {
        ty: ScalarType,
        dst: u16,
        a: Src,
        b: Src,
        c: Src,
    },
    Clamp {
        ty: ScalarType,
        dst: u16,
        a: Src,
        b: Src,
        c: Src,
    },
    /// A gather: element `index` of table `table` for every element of the block
    /// (`signed`: the index is `i32`). With `plus`, the index is `index + plus`
    /// (wrapping), a sum read by nothing else, added as the gather reads it instead
    /// of in a step of its own (a stencil's `row * width + col`).
    Load {
        table: u8,
        signed: bool,
        dst: u16,
        index: Src,
        plus: Option<Src>,
        default: Option<Src>,
    },
    /// One uniform value, computed once per block (per iteration, inside a loop).
    Uni {
        dst: u16,
        op: UniOp,
    },
    Loop(Box<LoopStep>),
    /// A chain of f32 operations, each consuming the previous one's single-use
    /// result, run over register-sized tiles (see [`run_chain`]).
    Chain {
        dst: u16,
        start: Src,
        links: Vec<Link>,
        /// Literal coefficients of the chain's `Horner` links, as bit patterns.
        coeffs: Vec<u32>,
    },
}

/// A uniform computation; every operand is an immediate or a uniform.
#[derive(Debug, Clone)]
enum UniOp {
    Len(u8),
    Unary(UnOp, ScalarType, Src),
    Binary(BinOp, ScalarType, Src, Src),
    Select(Src, Src, Src),
    Cast(ScalarType, ScalarType, Src),
    MulAdd(ScalarType, Src, Src, Src),
    Clamp(ScalarType, Src, Src, Src),
    Load {
        table: u8,
        signed: bool,
        index: Src,
        default: Option<Src>,
    },
}

/// A loop (see [`crate::kernel::program::Loop`] for its meaning).
#[derive(Debug, Clone)]
struct LoopStep {
    /// A uniform count (`Imm`, `Uni`), or one per element (masked loops only).
    count: Src,
    /// The counter's uniform.
    counter: u16,
    carries: Vec<Carried>,
    /// The condition's steps and its test.
    cond: Option<(Vec<Step>, Src)>,
    body: Vec<Step>,
    /// Where the trip count goes: a uniform, or (masked) a slot, one per element.
    trips: Src,
    /// `None`: every element runs the same trips (uniform count and condition).
    mask: Option<Mask>,
    /// Elements run together: a longer span runs the loop part by part, so the
    /// loop's slots stay in L1 and a masked loop stops as soon as the elements of its
    /// part are done.
    chunk: usize,
}

/// A masked loop's per-element bookkeeping.
#[derive(Debug, Clone, Copy)]
struct Mask {
    /// The slot of active flags (0 or 1).
    act: u16,
    /// The active flags of the innermost masked loop around this one: elements
    /// inactive there need not run this loop (their results are discarded).
    outer: Option<u16>,
}

/// One carried value of a loop.
#[derive(Debug, Clone, Copy)]
struct Carried {
    /// Its slot, or its uniform (a value the same for every element at every trip).
    at: Src,
    init: Src,
    next: Src,
    /// A slot the next value is first copied to, when it is another carried value's
    /// (a swap must read the old values).
    tmp: Option<u16>,
    /// The next value is a slot of the body no one else reads: without a mask, the
    /// update swaps the two slots instead of copying.
    swap: bool,
}

/// One operation of a chain, applied to the running value `v`.
#[derive(Debug, Clone, Copy)]
enum Link {
    /// `op(v)`.
    Un(UnOp),
    /// `v op x`, or `x op v` when reversed.
    Bin(BinOp, Src, bool),
    /// `v * b + c`.
    MadA(Src, Src),
    /// `a * b + v`.
    MadC(Src, Src),
    /// `v = v * x + c` for each literal `c` of `coeffs[first..first + count]`: a run of
    /// mul-adds by the same operand (Horner's rule, linear recurrences), which loads
    /// `x` once per tile instead of once per coefficient.
    Horner(Src, u16, u16),
}

/// A program compiled for the CPU: steps over scratch slots.
#[derive(Debug)]
pub(crate) struct Plan {
    steps: Vec<Step>,
    /// Each result's source, in order.
    results: Vec<Src>,
    slots: usize,
    unis: usize,
    /// Most uniform carried values of one loop.
    uni_carries: usize,
    /// Slots pre-filled with a literal (operands of three-operand steps).
    splats: Vec<(u16, u32)>,
    /// The last step computes the (only) result and writes it straight into the
    /// output.
    direct: bool,
    /// How many tables the program reads.
    tables: usize,
    /// A program with 64-bit values: run by `wide`, not by the steps.
    wide: Option<Box<wide::Wide>>,
    /// Words per element of each element-wise input, where one is 64-bit (else empty:
    /// one word each).
    input_words: Vec<usize>,
}

/// Per-thread working memory for a plan.
pub(crate) struct Scratch {
    slots: Vec<Vec<u32>>,
    uni: Vec<u32>,
    /// The next values of a loop's uniform carried values, before they are assigned.
    uni_next: Vec<u32>,
    /// Broadcasts of a uniform read where a step needs a slice (three-operand
    /// steps), one per operand position.
    broadcast: [Vec<u32>; 3],
    /// The registers of a wide plan.
    wide: Vec<u64>,
}

impl Plan {
    /// Fresh scratch memory for one worker.
    pub(crate) fn scratch(&self) -> Scratch {
        let mut slots = vec![vec![0u32; BLOCK]; self.slots];
        for &(s, v) in &self.splats {
            slots[s as usize].fill(v);
        }
        Scratch {
            slots,
            uni: vec![0; self.unis],
            uni_next: vec![0; self.uni_carries],
            broadcast: std::array::from_fn(|_| {
                if self.unis > 0 {
                    vec![0; BLOCK]
                } else {
                    Vec::new()
                }
            }),
            wide: self.wide.as_ref().map_or_else(Vec::new, |w| w.scratch()),
        }
    }

    /// The number of result words per element (`M`: one per result, two for a 64-bit
    /// one): [`run`](Self::run) writes element `i`'s results from `out[i * M]` on.
    pub(crate) fn outputs(&self) -> usize {
        self.results.len()
    }

    /// Words per element of element-wise input `k`: 1, or 2 for a 64-bit type.
    pub(crate) fn input_words(&self, k: usize) -> usize {
        self.input_words.get(k).copied().unwrap_or(1)
    }

    /// Whether the plan runs a loop: its work per element is then the loop's trip
    /// count times its body, so a few thousand elements are already worth spreading
    /// over threads.
    pub(crate) fn loops(&self) -> bool {
        self.steps.iter().any(|s| matches!(s, Step::Loop(_)))
    }

    /// The input the kernel returns unchanged, when it computes nothing (`|x| x`): a
    /// reduction then reads that input in place. Only for one result and no tables.
    pub(crate) fn passthrough(&self) -> Option<usize> {
        match (self.steps.is_empty(), self.tables, &self.results[..]) {
            (true, 0, [Src::Input(k)]) => Some(*k as usize),
            _ => None,
        }
    }
}

/// What the steps read besides the scratch memory: the block's inputs, the call's
/// tables, and the span of the block they run over, `lo..lo + len` (the whole block,
/// or the part a loop is running).
#[derive(Clone, Copy)]
struct Cx<'a> {
    /// Runs a list of steps (`block::run_steps`): handed to the loop runner, which
    /// runs loop bodies, so that `looped` need not import `block`, which calls it.
    run: StepRunner,
    inputs: &'a [&'a [u32]],
    tables: &'a [TableRef<'a>],
    /// The global index of the block's first element.
    first: u64,
    lo: usize,
    len: usize,
}

/// Runs steps over a context's span.
type StepRunner = fn(&[Step], &mut Scratch, &Cx<'_>);

/// The value of a uniform or immediate source.
fn imm(s: &Scratch, src: Src) -> u32 {
    match src {
        Src::Imm(v) => v,
        Src::Uni(k) => s.uni[k as usize],
        // not a uniform: the planner never asks
        Src::Slot(_) | Src::Input(_) => 0,
    }
}

/// A step's operand over the span: a slice of it, or one value for every element.
#[derive(Clone, Copy)]
enum View<'a> {
    Slice(&'a [u32]),
    Imm(u32),
}

#[inline]
fn view<'a>(s: &'a Scratch, cx: &Cx<'a>, src: Src) -> View<'a> {
    let span = cx.lo..cx.lo + cx.len;
    match src {
        Src::Slot(i) => View::Slice(&s.slots[i as usize][span]),
        Src::Input(k) => View::Slice(&cx.inputs[k as usize][span]),
        Src::Imm(v) => View::Imm(v),
        Src::Uni(c) => View::Imm(s.uni[c as usize]),
    }
}

/// The slot a block step writes (none for uniforms and loops).
fn step_dst(s: &Step) -> Option<u16> {
    match *s {
        Step::Index { dst }
        | Step::Unary { dst, .. }
        | Step::Binary { dst, .. }
        | Step::Select { dst, .. }
        | Step::Cast { dst, .. }
        | Step::MulAdd { dst, .. }
        | Step::Clamp { dst, .. }
        | Step::Load { dst, .. }
        | Step::Chain { dst, .. } => Some(dst),
        Step::Uni { .. } | Step::Loop(_) => None,
    }
}
