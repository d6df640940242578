//! Calls over host data: bind the kernel's parameters, check a hand-written kernel,
//! ask which devices are healthy (and which can take the kernel at all), place the
//! call, and collect the output (a map's values written in place, each element's
//! results together; a reduction's partials combined in input order).
//!
//! Whole-array inputs (tables) go to each run as the part its reads reach: the range
//! analysis (`kernel::range`) bounds a table's reads to a halo around the element's
//! own index where it can, and a device with its own memory then gets its share plus
//! the halo; otherwise it gets the whole table, once per call (the device keeps it for
//! the call's later runs). The CPU reads every table where it is.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{Run, Runtime};
use crate::device::{slice_inputs, TableArg, Task, Timed};
use crate::error::{Error, Result};
use crate::kernel::range::{reach, Reach};
use crate::kernel::reduce::{Partial, Reduce};
use crate::kernel::sig::ArgKind;
use crate::kernel::{Bound, KernelDef, ScalarType};
use crate::placement::Placement;
use crate::report::{InputMove, Report, Sent};
use crate::schedule::place::place;
use crate::sync::{into_inner, lock};

/// A reduction's partials, one per range, as devices hand them in (in any order).
#[derive(Default)]
pub(super) struct Partials(Mutex<Vec<(usize, Partial)>>);

impl Partials {
    /// Adds the partial of the range starting at element `start`.
    pub(super) fn push(&self, start: usize, p: Partial) {
        lock(&self.0).push((start, p));
    }

    /// Combines the partials in input order, so a call's result does not depend on
    /// timing beyond where the ranges were cut.
    pub(super) fn combine(self, op: Reduce, ty: ScalarType) -> Partial {
        let mut parts = into_inner(self.0);
        parts.sort_by_key(|p| p.0);
        parts
            .into_iter()
            .fold(op.identity(ty), |acc, (_, p)| acc.combine(p, op, ty))
    }
}

/// The next call's identity, for the devices' table caches.
static NEXT_CALL: AtomicU64 = AtomicU64::new(1);

/// A new call's identity (unique in the process), for the devices' table caches.
pub(super) fn next_call() -> u64 {
    NEXT_CALL.fetch_add(1, Ordering::Relaxed)
}

/// How far the reads of each of a call's `tables` reach, for a call of `kernel` over
/// `n` elements; `WrongArity` when the kernel reads another number of tables.
pub(super) fn reaches(kernel: &Bound, tables: usize, n: usize) -> Result<Vec<Reach>> {
    let program = kernel.program()?;
    if tables != program.tables.len() {
        return Err(Error::WrongArity {
            expected: program.tables.len(),
            given: tables,
        });
    }
    Ok(if tables == 0 {
        Vec::new()
    } else {
        reach(&program.bind(&kernel.values()), n as u64)
    })
}

/// The elements of a table of `len` a run over `range` reads, on a device with its
/// own memory: all of them, none, or the range plus its halo.
///
/// A read's index lies in `[i - before, i + after]` and is then clamped into the
/// table; clamping is monotone, so the indices a range reads lie between the clamps
/// of its two extremes.
pub(super) fn window(reach: &Reach, len: usize, range: &Range<usize>) -> Range<usize> {
    match reach {
        Reach::Whole => 0..len,
        _ if len == 0 || range.is_empty() => 0..0,
        Reach::None => 0..0,
        Reach::Near { before, after } => {
            let last = len as u64 - 1;
            let lo = (range.start as u64).saturating_sub(*before).min(last);
            let hi = (range.end as u64 - 1).saturating_add(*after).min(last);
            lo as usize..hi as usize + 1
        }
    }
}

/// A call's whole-array inputs on the host, and how far its reads of each reach.
pub(super) struct Tables<'a> {
    data: &'a [&'a [u32]],
    reach: Vec<Reach>,
    /// Each table whole (what a probe, and the CPU, read).
    pub(super) whole: Vec<TableArg<'a>>,
    /// Per table, the bytes a device with a link is sent once per call; `None` for
    /// a table sent as a halo around each share.
    pub(super) once: Vec<Option<u64>>,
}

impl<'a> Tables<'a> {
    /// The tables of a call of `kernel` over `n` elements.
    pub(super) fn new(kernel: &Bound, data: &'a [&'a [u32]], n: usize) -> Result<Tables<'a>> {
        let call = next_call();
        let reach = reaches(kernel, data.len(), n)?;
        let types = &kernel.program()?.tables;
        let whole: Vec<TableArg<'a>> = data
            .iter()
            .enumerate()
            .map(|(index, d)| {
                let words = match types.get(index) {
                    Some(t) if t.is_wide() => 2,
                    _ => 1,
                };
                TableArg {
                    data: d,
                    held: None,
                    start: 0,
                    len: d.len() / words,
                    call,
                    index,
                    words,
                }
            })
            .collect();
        let once = data
            .iter()
            .zip(&reach)
            .map(|(d, r)| match r {
                Reach::Whole => Some(4 * d.len() as u64),
                Reach::None => Some(0),
                Reach::Near { .. } => None,
            })
            .collect();
        Ok(Tables {
            data,
            reach,
            whole,
            once,
        })
    }

    /// What a run over `range` gets of each table: on a device with its own memory
    /// (`linked`), the part its reads reach ([`window`]); elsewhere the whole table.
    fn windows(&self, range: &Range<usize>, linked: bool) -> Vec<TableArg<'a>> {
        self.whole
            .iter()
            .zip(&self.reach)
            .map(|(t, r)| {
                if !linked {
                    return *t;
                }
                let w = window(r, t.len, range);
                TableArg {
                    data: &self.data[t.index][w.start * t.words..w.end * t.words],
                    start: w.start,
                    ..*t
                }
            })
            .collect()
    }

    /// How each table is sent.
    fn sent(&self) -> impl Iterator<Item = Sent> + '_ {
        self.reach.iter().map(sent)
    }

    /// The largest table's bytes.
    fn biggest(&self) -> u64 {
        self.whole
            .iter()
            .map(|t| 4 * (t.len * t.words) as u64)
            .max()
            .unwrap_or(0)
    }
}

impl Runtime {
    /// A map over `n` elements of host data (each input as 32-bit patterns; each
    /// table whole): element `i`'s results in `output[i]`, a row of `R` (one `u32`
    /// per result). `kinds` is the kernel's signature, for the report (empty: a
    /// `map`/`map2` call, whose report lists no inputs).
    pub(crate) fn map_host<R: bytemuck::Pod + Default + Send>(
        &self,
        kernel: &Arc<KernelDef>,
        inputs: &[&[u32]],
        tables: &[&[u32]],
        n: usize,
        placement: Placement,
        kinds: &[ArgKind],
    ) -> Result<Run<Vec<R>>> {
        let start = Instant::now();
        kernel.program()?;
        // The parameters' values are read once, here: every device sees the same.
        let kernel = &kernel.bind();
        self.check_custom(kernel, inputs, n)?;
        let tables = Tables::new(kernel, tables, n)?;
        let mut notes = Vec::new();
        let mut healthy = self.healthy(kernel, inputs, &tables.whole, n, None, &mut notes);
        let biggest = tables.biggest();
        self.refusals(kernel, None, biggest, placement, &mut healthy, &mut notes)?;
        let call = self.call_with(kernel, inputs, &tables.whole, &tables.once, None, &healthy);
        let mut output: Vec<R> = vec![R::default(); n];
        let words = kernel.input_words();
        let runner = |dev: usize, range: &Range<usize>, out: &mut [R]| -> Result<Timed> {
            let ins = slice_inputs(inputs, &words, range.clone());
            let linked = self.devices[dev].host_link().is_some();
            let tabs = tables.windows(range, linked);
            let task = Task::new(kernel, &ins, range.start as u64, range.len()).with_tables(&tabs);
            self.devices[dev].run(&task, bytemuck::cast_slice_mut(out))
        };
        let decided = place(&call, &mut output, placement, &runner, self.no_gpu())?;
        let mut report = self.receipt(n, placement, decided, start, None, notes);
        report.inputs = input_moves(kinds, &tables, &report);
        Ok(Run { output, report })
    }

    /// A reduction over `n` elements of host data: the combined value's bits.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn reduce_host(
        &self,
        kernel: &Arc<KernelDef>,
        op: Reduce,
        inputs: &[&[u32]],
        tables: &[&[u32]],
        n: usize,
        placement: Placement,
        kinds: &[ArgKind],
    ) -> Result<Run<u64>> {
        let start = Instant::now();
        let ty = kernel.output_type()?;
        let kernel = &kernel.bind();
        self.check_custom(kernel, inputs, n)?;
        let tables = Tables::new(kernel, tables, n)?;
        let mut notes = Vec::new();
        let mut healthy = self.healthy(kernel, inputs, &tables.whole, n, Some(op), &mut notes);
        self.refusals(
            kernel,
            Some(op),
            tables.biggest(),
            placement,
            &mut healthy,
            &mut notes,
        )?;
        let call = self.call_with(
            kernel,
            inputs,
            &tables.whole,
            &tables.once,
            Some(op),
            &healthy,
        );
        // a reduction writes no output: its "elements" are zero-sized
        let mut none = vec![(); n];
        let partials = Partials::default();
        let words = kernel.input_words();
        let runner = |dev: usize, range: &Range<usize>, _: &mut [()]| -> Result<Timed> {
            let ins = slice_inputs(inputs, &words, range.clone());
            let linked = self.devices[dev].host_link().is_some();
            let tabs = tables.windows(range, linked);
            let task = Task::new(kernel, &ins, range.start as u64, range.len()).with_tables(&tabs);
            let (part, timed) = self.devices[dev].reduce(&task, op)?;
            partials.push(range.start, part);
            Ok(timed)
        };
        let decided = place(&call, &mut none, placement, &runner, self.no_gpu())?;
        let value = partials.combine(op, ty);
        let mut report = self.receipt(n, placement, decided, start, Some(op), notes);
        report.inputs = input_moves(kinds, &tables, &report);
        Ok(Run {
            output: value.bits(),
            report,
        })
    }

    /// Leaves out of the call each device that cannot take the kernel (too many
    /// buffers to bind, a table larger than its buffers), with a note; the call's
    /// error when no device is left, or when the placement names the kind of device
    /// that refuses.
    pub(super) fn refusals(
        &self,
        kernel: &Bound,
        op: Option<Reduce>,
        biggest: u64,
        placement: Placement,
        healthy: &mut [bool],
        notes: &mut Vec<String>,
    ) -> Result<()> {
        let mut first = None;
        for (d, ok) in self.devices.iter().zip(healthy.iter_mut()) {
            // a device without a type the kernel computes in is named only by a
            // placement that asks for its kind alone: a split runs on the others
            let typed = d.computes(kernel, op);
            let typed_only = typed.is_err();
            if let Err(e) = typed.and_then(|_| d.accepts(kernel, op, biggest)) {
                let named = match placement {
                    Placement::Split(_) if typed_only => false,
                    Placement::Gpu => d.info().kind.is_gpu(),
                    Placement::Cpu => !d.info().kind.is_gpu(),
                    Placement::Split(f) if d.info().kind.is_gpu() => f > 0.0,
                    Placement::Split(f) => f < 1.0,
                    Placement::Auto => false,
                };
                if named {
                    return Err(e);
                }
                notes.push(format!("{} left out: {e}", d.info().name));
                *ok = false;
                first.get_or_insert(e);
            }
        }
        match first {
            Some(e) if !healthy.iter().any(|&h| h) => Err(e),
            _ => Ok(()),
        }
    }
}

/// How a table whose reads reach as `r` is sent to a device with its own memory.
pub(super) fn sent(r: &Reach) -> Sent {
    match r {
        Reach::Near { before, after } => Sent::Halo {
            before: *before,
            after: *after,
        },
        Reach::None => Sent::Halo {
            before: 0,
            after: 0,
        },
        Reach::Whole => Sent::Whole,
    }
}

/// The report's line per argument: element-wise inputs partitioned (their bytes: what
/// devices with a link were sent of them), tables as their reach says (their bytes:
/// what devices were sent of them).
fn input_moves(kinds: &[ArgKind], tables: &Tables<'_>, report: &Report) -> Vec<InputMove> {
    let linked_elems: u64 = report
        .shares
        .iter()
        .filter(|s| s.kind.is_gpu())
        .map(|s| s.range.len() as u64)
        .sum();
    let mut sent = tables.sent();
    let mut table = 0;
    kinds
        .iter()
        .enumerate()
        .map(|(argument, kind)| match kind {
            ArgKind::Each(_) => InputMove {
                argument,
                sent: Sent::Partitioned,
                bytes: 4 * linked_elems,
            },
            ArgKind::Whole(_) => {
                let bytes = report
                    .shares
                    .iter()
                    .map(|s| s.stats.table_bytes.get(table).copied().unwrap_or(0))
                    .sum();
                table += 1;
                InputMove {
                    argument,
                    sent: sent.next().unwrap_or(Sent::Whole),
                    bytes,
                }
            }
        })
        .collect()
}
