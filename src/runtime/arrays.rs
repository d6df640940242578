//! Calls over arrays: each range runs where its parts are (or where placement sends
//! it), outputs stay where they were computed. Lazy chains are evaluated in
//! `lazy.rs`, through these calls.
//!
//! A kernel of any signature runs here too ([`Runtime::array_call`]): its element-wise
//! inputs are arrays, its tables host data or arrays, and each of its results is an
//! array of its own (a device with its own memory writes a kernel's results together
//! per element, then parts them into one buffer per result on the device). A table
//! that is an array goes to a device with its own memory as the array's parts, each
//! sent once and kept by the array (a part already there moves nothing; several
//! parts are joined into one buffer on the device, by copies within its memory); the
//! CPU reads it on the host (what is only on a device is read back once per call).

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::array_tables::CallTables;
pub(crate) use super::array_tables::TableSrc;
use super::health::HEALTH_PROBE;
use super::host::{sent, Partials};
use super::{Run, Runtime};
use crate::array::{pieces, ArrayRef, HostData, Part};
use crate::device::{Device, Memory, Resident, ShareStats, Task, Timed};
use crate::error::Result;
use crate::kernel::reduce::Reduce;
use crate::kernel::sig::ArgKind;
use crate::kernel::{Bound, KernelDef};
use crate::placement::Placement;
use crate::report::{InputMove, Sent};
use crate::schedule::auto::{Call, Decided};
use crate::schedule::exec::Runner;
use crate::schedule::place::{place, resident, Resident as Residency};
use crate::sync::{into_inner, lock};

/// What one piece of an array call made: on a device (one part per result), or on
/// the host (the results of each element together).
enum Made<D, H> {
    Device(D),
    Host(H),
}

/// What one range of an array call made, piece by piece, and what it cost.
type Pieces<D, H> = (Vec<(Range<usize>, Made<D, H>)>, Timed);

impl Runtime {
    /// A map over arrays: the output's parts, in order, and the report.
    pub(super) fn array_map(
        &self,
        kernel: &Arc<KernelDef>,
        inputs: &[ArrayRef<'_>],
        placement: Placement,
    ) -> Result<Run<Vec<Part>>> {
        let n = inputs.first().map_or(0, |a| a.len);
        let run = self.array_call(kernel, inputs, &[], n, placement, &[])?;
        Ok(Run {
            output: run.output.into_iter().next().unwrap_or_default(),
            report: run.report,
        })
    }

    /// A call of a kernel of any signature over `n` elements of arrays (element-wise
    /// `inputs`, `tables` of host data or arrays): per result, its parts in order,
    /// each left where it was computed. `kinds` is the kernel's signature, for the
    /// report (empty: a map, whose report lists no inputs).
    pub(super) fn array_call(
        &self,
        kernel: &Arc<KernelDef>,
        inputs: &[ArrayRef<'_>],
        tables: &[TableSrc<'_>],
        n: usize,
        placement: Placement,
        kinds: &[ArgKind],
    ) -> Result<Run<Vec<Vec<Part>>>> {
        let start = Instant::now();
        let prog = kernel.program()?;
        let results = prog.outputs.len().max(1);
        // an element's row of results: `row` words, `slot` per result (a 32-bit one
        // in the low word of a pair beside a 64-bit one)
        let (row, slot) = (prog.out_words().max(1), prog.out_slot());
        let wide: Vec<bool> = prog.outputs.iter().map(|o| o.0.is_wide()).collect();
        let kernel = &kernel.bind();
        let tabs = CallTables::new(kernel, tables, n)?;
        let moved = Moved::new(inputs.len());
        let produced: Mutex<Vec<Vec<Part>>> = Mutex::new(vec![Vec::new(); results]);
        let runner = |dev: usize, range: &Range<usize>, _: &mut [()]| -> Result<Timed> {
            let (made, timed) = self.array_range(
                kernel,
                dev,
                range,
                inputs,
                &tabs,
                &moved,
                row,
                |m, task| m.run(task),
                |d, task| {
                    let mut out = vec![0u32; task.len * row];
                    let t = d.run(task, &mut out)?;
                    Ok((out, t))
                },
            )?;
            let mut produced = lock(&produced);
            for (r, x) in made {
                match x {
                    Made::Device(parts) => {
                        for (k, p) in parts.into_iter().enumerate() {
                            produced[k].push(Part::on_device(r.clone(), p));
                        }
                    }
                    Made::Host(rows) => {
                        for (k, col) in columns(rows, row, slot, &wide).into_iter().enumerate() {
                            produced[k].push(Part::on_host(r.clone(), col));
                        }
                    }
                }
            }
            Ok(timed)
        };
        let (decided, notes, read_back) =
            self.place_array(kernel, inputs, &tabs, None, n, placement, &runner)?;
        let mut parts = into_inner(produced);
        for p in &mut parts {
            p.sort_by_key(|p| p.range.start);
        }
        let mut report = self.receipt(n, placement, decided, start, None, notes);
        report.gathered = read_back;
        report.inputs = moved.report(kinds, &tabs, &report);
        Ok(Run {
            output: parts,
            report,
        })
    }

    /// A reduction over arrays: the combined value's bits, and the report.
    pub(super) fn array_reduce(
        &self,
        kernel: &Arc<KernelDef>,
        op: Reduce,
        inputs: &[ArrayRef<'_>],
        placement: Placement,
    ) -> Result<Run<u64>> {
        let n = inputs.first().map_or(0, |a| a.len);
        self.array_call_reduce(kernel, op, inputs, &[], n, placement, &[])
    }

    /// [`array_call`](Self::array_call)'s reduction: the combined value's bits.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn array_call_reduce(
        &self,
        kernel: &Arc<KernelDef>,
        op: Reduce,
        inputs: &[ArrayRef<'_>],
        tables: &[TableSrc<'_>],
        n: usize,
        placement: Placement,
        kinds: &[ArgKind],
    ) -> Result<Run<u64>> {
        let start = Instant::now();
        let ty = kernel.output_type()?;
        let kernel = &kernel.bind();
        let tabs = CallTables::new(kernel, tables, n)?;
        let moved = Moved::new(inputs.len());
        let partials = Partials::default();
        let runner = |dev: usize, range: &Range<usize>, _: &mut [()]| -> Result<Timed> {
            let (made, timed) = self.array_range(
                kernel,
                dev,
                range,
                inputs,
                &tabs,
                &moved,
                1,
                |m, task| m.reduce(task, op),
                |d, task| d.reduce(task, op),
            )?;
            for (r, x) in made {
                let (Made::Device(p) | Made::Host(p)) = x;
                partials.push(r.start, p);
            }
            Ok(timed)
        };
        let (decided, notes, read_back) =
            self.place_array(kernel, inputs, &tabs, Some(op), n, placement, &runner)?;
        let value = partials.combine(op, ty);
        let mut report = self.receipt(n, placement, decided, start, Some(op), notes);
        report.gathered = read_back;
        report.inputs = moved.report(kinds, &tabs, &report);
        Ok(Run {
            output: value.bits(),
            report,
        })
    }

    /// One range of an array call on device `dev`: on a device that keeps data, in
    /// pieces of at most one resident part (of every result), each input brought
    /// there (nothing moves for a part already there), the tables' windows with it,
    /// and `on_device` run on it; elsewhere on the host, `on_host` over the inputs'
    /// host data (read back as needed) and the tables whole. What each piece made,
    /// the bytes moved and the seconds (virtual on a simulated device).
    #[allow(clippy::too_many_arguments)]
    fn array_range<D, H>(
        &self,
        kernel: &Bound,
        dev: usize,
        range: &Range<usize>,
        inputs: &[ArrayRef<'_>],
        tables: &CallTables<'_>,
        moved: &Moved,
        row: usize,
        on_device: impl Fn(&dyn Memory, &Task<'_, &dyn Resident>) -> Result<(D, Timed)>,
        on_host: impl Fn(&dyn Device, &Task<'_, &[u32]>) -> Result<(H, Timed)>,
    ) -> Result<Pieces<D, H>> {
        let t = Instant::now();
        let d = self.devices[dev].as_ref();
        let mut stats = ShareStats::default();
        let mut made = Vec::new();
        let mut virtual_s = 0.0;
        if let Some(m) = d.memory() {
            // a resident part holds at most `max_resident` words
            let widest = inputs.iter().map(|a| a.words).fold(row, usize::max);
            for piece in pieces(range.clone(), m.max_resident() / widest.max(1)) {
                let mut ins: Vec<Arc<dyn Resident>> = Vec::with_capacity(inputs.len());
                for (k, a) in inputs.iter().enumerate() {
                    let before = stats.bytes_to_device + stats.bytes_from_device;
                    ins.push(a.on_device(piece.clone(), m, &mut stats)?);
                    moved.add(k, stats.bytes_to_device + stats.bytes_from_device - before);
                }
                let refs: Vec<&dyn Resident> = ins.iter().map(|r| r.as_ref()).collect();
                let got = tables.for_run(Some(m), &piece, &mut stats)?;
                let tabs = tables.args(&got);
                let task =
                    Task::new(kernel, &refs, piece.start as u64, piece.len()).with_tables(&tabs);
                let (x, timed) = on_device(m, &task)?;
                stats.add(&timed.stats);
                made.push((piece, Made::Device(x)));
            }
        } else {
            let mut data: Vec<HostData> = Vec::with_capacity(inputs.len());
            for (k, a) in inputs.iter().enumerate() {
                let before = stats.bytes_from_device;
                data.push(a.host_range(range.clone(), &mut stats)?);
                moved.add(k, stats.bytes_from_device - before);
            }
            let ins: Vec<&[u32]> = data.iter().map(HostData::as_slice).collect();
            let got = tables.for_run(None, range, &mut stats)?;
            let tabs = tables.args(&got);
            let task = Task::new(kernel, &ins, range.start as u64, range.len()).with_tables(&tabs);
            let (x, timed) = on_host(d, &task)?;
            stats.add(&timed.stats);
            virtual_s = timed.secs;
            made.push((range.clone(), Made::Host(x)));
        }
        let secs = if d.is_virtual() {
            virtual_s
        } else {
            t.elapsed().as_secs_f64()
        };
        Ok((made, Timed { stats, secs }))
    }

    /// Places an array call: hand-written kernels' check, the devices that cannot
    /// take the kernel left out, device health (reading back only the host data
    /// those need), then the placement; for `Auto` over data that is only on
    /// devices, the scheduler's keep-or-move choice. Returns what ran, the notes, and
    /// the bytes read back before planning.
    #[allow(clippy::too_many_arguments)]
    fn place_array(
        &self,
        kernel: &Bound,
        inputs: &[ArrayRef<'_>],
        tables: &CallTables<'_>,
        op: Option<Reduce>,
        n: usize,
        placement: Placement,
        runner: &Runner<'_, ()>,
    ) -> Result<(Decided, Vec<String>, u64)> {
        let mut notes = Vec::new();
        let mut read = ShareStats::default();
        if kernel.custom().is_some() && n > 0 {
            let data: Vec<HostData> = inputs
                .iter()
                .map(|a| a.host_range(0..n, &mut read))
                .collect::<Result<_>>()?;
            let views: Vec<&[u32]> = data.iter().map(HostData::as_slice).collect();
            self.check_custom(kernel, &views, n)?;
        }
        let m = if self.any_sick() {
            n.min(HEALTH_PROBE)
        } else {
            0
        };
        let probe: Vec<HostData> = inputs
            .iter()
            .filter(|_| m > 0)
            .map(|a| a.host_range(0..m, &mut read))
            .collect::<Result<_>>()?;
        let probe: Vec<&[u32]> = probe.iter().map(HostData::as_slice).collect();
        let whole = if m > 0 {
            tables.all_host(&mut read)?
        } else {
            Vec::new()
        };
        let probe_tables = if m > 0 {
            tables.args(&whole)
        } else {
            Vec::new()
        };
        let mut healthy = self.healthy(kernel, &probe, &probe_tables, m, op, &mut notes);
        let biggest = tables.biggest();
        self.refusals(kernel, op, biggest, placement, &mut healthy, &mut notes)?;
        let mut units = vec![(); n];
        if placement != Placement::Auto {
            let call = quiet(self.sched_call(kernel, &[], op, &healthy));
            let decided = place(&call, &mut units, placement, runner, self.no_gpu())?;
            return Ok((decided, notes, read.bytes_from_device));
        }
        let layout = inputs.first().map(ArrayRef::layout).unwrap_or_default();
        if layout.iter().any(|p| p.owner != 0) {
            // the other inputs' parts: the same ranges on the same devices?
            let same = inputs.iter().skip(1).all(|a| {
                let l = a.layout();
                l.len() == layout.len()
                    && l.iter()
                        .zip(&layout)
                        .all(|(p, q)| p.range == q.range && p.owner == q.owner)
            });
            let call = quiet(self.sched_call(kernel, &[], op, &healthy));
            match resident(&call, &layout, same, inputs.len(), &mut units, runner)? {
                Residency::Kept(decided) => return Ok((decided, notes, read.bytes_from_device)),
                Residency::Move(why) => notes.push(why),
            }
        }
        let data: Vec<HostData> = inputs
            .iter()
            .map(|a| a.host_range(0..n, &mut read))
            .collect::<Result<_>>()?;
        let views: Vec<&[u32]> = data.iter().map(HostData::as_slice).collect();
        let whole = tables.all_host(&mut read)?;
        let whole = tables.args(&whole);
        let once = tables.once(&self.devices);
        if read.bytes_from_device > 0 {
            notes.push(format!(
                "read back {} bytes to plan on the host",
                read.bytes_from_device
            ));
        }
        let call = quiet(self.call_with(kernel, &views, &whole, &once, op, &healthy));
        let decided = place(&call, &mut units, placement, runner, self.no_gpu())?;
        Ok((decided, notes, read.bytes_from_device))
    }
}

/// The bytes moved for each element-wise input of an array call, over its runs.
struct Moved(Vec<AtomicU64>);

impl Moved {
    fn new(inputs: usize) -> Moved {
        Moved((0..inputs).map(|_| AtomicU64::new(0)).collect())
    }

    fn add(&self, input: usize, bytes: u64) {
        if let Some(b) = self.0.get(input) {
            b.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// The report's line per argument: element-wise inputs partitioned, with the
    /// bytes moved for them (sent to a device, or read back for the CPU); tables as
    /// their reach says, with the bytes sent of them.
    fn report(
        &self,
        kinds: &[ArgKind],
        tables: &CallTables<'_>,
        report: &crate::report::Report,
    ) -> Vec<InputMove> {
        let (mut each, mut table) = (0, 0);
        kinds
            .iter()
            .enumerate()
            .map(|(argument, kind)| match kind {
                ArgKind::Each(_) => {
                    let bytes = self.0.get(each).map_or(0, |b| b.load(Ordering::Relaxed));
                    each += 1;
                    InputMove {
                        argument,
                        sent: Sent::Partitioned,
                        bytes,
                    }
                }
                ArgKind::Whole(_) => {
                    let bytes = report
                        .shares
                        .iter()
                        .map(|s| s.stats.table_bytes.get(table).copied().unwrap_or(0))
                        .sum();
                    let how = tables.reach.get(table).map_or(Sent::Whole, sent);
                    table += 1;
                    InputMove {
                        argument,
                        sent: how,
                        bytes,
                    }
                }
            })
            .collect()
    }
}

/// Each element's results together in rows of `m` words (result `k` from `rows[i * m +
/// k * slot]`), parted into one vector per result: a 64-bit result's two words, a
/// 32-bit one's low word.
fn columns(rows: Vec<u32>, m: usize, slot: usize, wide: &[bool]) -> Vec<Vec<u32>> {
    if m == 1 {
        return vec![rows];
    }
    wide.iter()
        .enumerate()
        .map(|(k, &w)| {
            let at = k * slot;
            match w {
                true => rows
                    .chunks_exact(m)
                    .flat_map(|r| [r[at], r[at + 1]])
                    .collect(),
                false => rows.iter().skip(at).step_by(m).copied().collect(),
            }
        })
        .collect()
}

/// Runs over arrays do not teach the models: their data may already be on the device
/// and their output stays there, and the models describe host-to-host calls.
fn quiet(c: Call<'_>) -> Call<'_> {
    Call { teach: false, ..c }
}
