//! Calls over arrays: each range runs where its parts are (or where placement sends
//! it), outputs stay where they were computed. Lazy chains are evaluated in
//! `lazy.rs`, through these calls.

use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::health::HEALTH_PROBE;
use super::host::Partials;
use super::{Run, Runtime};
use crate::array::{pieces, ArrayRef, HostData, Part};
use crate::device::{Device, Memory, Resident, ShareStats, Task, Timed};
use crate::error::Result;
use crate::kernel::reduce::Reduce;
use crate::kernel::{Bound, KernelDef};
use crate::placement::Placement;
use crate::schedule::auto::{Call, Decided};
use crate::schedule::exec::Runner;
use crate::schedule::place::{place, resident, Resident as Residency};
use crate::sync::{into_inner, lock};

/// What one piece of an array call made: on a device, or on the host.
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
        let start = Instant::now();
        kernel.program()?;
        let kernel = &kernel.bind();
        let n = inputs.first().map_or(0, |a| a.len);
        let produced: Mutex<Vec<Part>> = Mutex::new(Vec::new());
        let runner = |dev: usize, range: &Range<usize>, _: &mut [()]| -> Result<Timed> {
            let (made, timed) = self.array_range(
                kernel,
                dev,
                range,
                inputs,
                |m, task| m.run(task),
                |d, task| {
                    let mut out = vec![0u32; task.len];
                    let t = d.run(task, &mut out)?;
                    Ok((out, t))
                },
            )?;
            lock(&produced).extend(made.into_iter().map(|(r, x)| match x {
                Made::Device(d) => Part::on_device(r, d),
                Made::Host(h) => Part::on_host(r, h),
            }));
            Ok(timed)
        };
        let (decided, notes, read_back) =
            self.place_array(kernel, inputs, None, n, placement, &runner)?;
        let mut parts = into_inner(produced);
        parts.sort_by_key(|p| p.range.start);
        let mut report = self.receipt(n, placement, decided, start, None, notes);
        report.gathered = read_back;
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
    ) -> Result<Run<u32>> {
        let start = Instant::now();
        let ty = kernel.output_type()?;
        let kernel = &kernel.bind();
        let n = inputs.first().map_or(0, |a| a.len);
        let partials = Partials::default();
        let runner = |dev: usize, range: &Range<usize>, _: &mut [()]| -> Result<Timed> {
            let (made, timed) = self.array_range(
                kernel,
                dev,
                range,
                inputs,
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
            self.place_array(kernel, inputs, Some(op), n, placement, &runner)?;
        let value = partials.combine(op, ty);
        let mut report = self.receipt(n, placement, decided, start, Some(op), notes);
        report.gathered = read_back;
        Ok(Run {
            output: value.bits(),
            report,
        })
    }

    /// One range of an array call on device `dev`: on a device that keeps data, in
    /// pieces of at most one resident part, each input brought there (nothing moves
    /// for a part already there) and `on_device` run on it; elsewhere on the host,
    /// `on_host` over the inputs' host data (read back as needed). What each piece
    /// made, the bytes moved and the seconds (virtual on a simulated device).
    fn array_range<D, H>(
        &self,
        kernel: &Bound,
        dev: usize,
        range: &Range<usize>,
        inputs: &[ArrayRef<'_>],
        on_device: impl Fn(&dyn Memory, &Task<'_, &dyn Resident>) -> Result<(D, Timed)>,
        on_host: impl Fn(&dyn Device, &Task<'_, &[u32]>) -> Result<(H, Timed)>,
    ) -> Result<Pieces<D, H>> {
        let t = Instant::now();
        let d = self.devices[dev].as_ref();
        let mut stats = ShareStats::default();
        let mut made = Vec::new();
        let mut virtual_s = 0.0;
        if let Some(m) = d.memory() {
            for piece in pieces(range.clone(), m.max_resident()) {
                let ins: Vec<Arc<dyn Resident>> = inputs
                    .iter()
                    .map(|a| a.on_device(piece.clone(), m, &mut stats))
                    .collect::<Result<_>>()?;
                let refs: Vec<&dyn Resident> = ins.iter().map(|r| r.as_ref()).collect();
                let task = Task::new(kernel, &refs, piece.start as u64, piece.len());
                let (x, timed) = on_device(m, &task)?;
                stats.add(&timed.stats);
                made.push((piece, Made::Device(x)));
            }
        } else {
            let data: Vec<HostData> = inputs
                .iter()
                .map(|a| a.host_range(range.clone(), &mut stats))
                .collect::<Result<_>>()?;
            let ins: Vec<&[u32]> = data.iter().map(HostData::as_slice).collect();
            let task = Task::new(kernel, &ins, range.start as u64, range.len());
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

    /// Places an array call: hand-written kernels' check and device health (reading
    /// back only the host data those need), then the placement; for `Auto` over data
    /// that is only on devices, the scheduler's keep-or-move choice. Returns what ran,
    /// the notes, and the bytes read back before planning.
    fn place_array(
        &self,
        kernel: &Bound,
        inputs: &[ArrayRef<'_>],
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
        let healthy = self.healthy(kernel, &probe, &[], m, op, &mut notes);
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
        if read.bytes_from_device > 0 {
            notes.push(format!(
                "read back {} bytes to plan on the host",
                read.bytes_from_device
            ));
        }
        let call = quiet(self.sched_call(kernel, &views, op, &healthy));
        let decided = place(&call, &mut units, placement, runner, self.no_gpu())?;
        Ok((decided, notes, read.bytes_from_device))
    }
}

/// Runs over arrays do not teach the models: their data may already be on the device
/// and their output stays there, and the models describe host-to-host calls.
fn quiet(c: Call<'_>) -> Call<'_> {
    Call { teach: false, ..c }
}
