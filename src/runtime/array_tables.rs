//! The tables of a call over arrays: each whole-array input as the call has it (host
//! data or an array) and how far its reads reach; what a run over one range gets of
//! each (a host slice, a host copy of an array read back once per call, or a window
//! of the array's parts joined on a device and kept for the call); and what the plan
//! counts for them. Used by `arrays.rs`.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use super::host::{next_call, reaches, window};
use crate::array::{ArrayRef, HostData};
use crate::device::{Device, Memory, Resident, ShareStats, TableArg};
use crate::error::Result;
use crate::kernel::range::Reach;
use crate::kernel::Bound;
use crate::sync::lock;

/// A whole-array input of an array call: host data (its words, and the words per
/// element), or an array.
pub(crate) enum TableSrc<'a> {
    Host(&'a [u32], usize),
    Array(ArrayRef<'a>),
}

impl TableSrc<'_> {
    /// Elements.
    fn len(&self) -> usize {
        self.words_all() / self.words()
    }

    /// Words per element: 1, or 2 for a 64-bit type.
    fn words(&self) -> usize {
        match self {
            TableSrc::Host(_, w) => (*w).max(1),
            TableSrc::Array(a) => a.words.max(1),
        }
    }

    /// Words of the whole table.
    fn words_all(&self) -> usize {
        match self {
            TableSrc::Host(d, _) => d.len(),
            TableSrc::Array(a) => a.len * a.words.max(1),
        }
    }
}

/// A table as one run reads it: a host slice (from `start`), a host copy of an
/// array, or a window held on the device.
pub(super) enum Got<'a> {
    Slice(&'a [u32], usize),
    Host(Arc<HostData>),
    Held(Arc<dyn Resident>, usize),
}

/// An array call's tables: how far each one's reads reach, and what the call has
/// already brought of each (host copies of arrays, windows on devices), so that a
/// share cut into several runs moves a table once.
pub(super) struct CallTables<'a> {
    srcs: &'a [TableSrc<'a>],
    pub(super) reach: Vec<Reach>,
    call: u64,
    host: Mutex<Vec<Option<Arc<HostData>>>>,
    held: Mutex<Vec<Held>>,
}

/// A window of an array table a device holds for the rest of a call.
struct Held {
    table: usize,
    /// The [`Memory::id`] of the device.
    memory: u64,
    /// The table's elements it holds.
    range: Range<usize>,
    part: Arc<dyn Resident>,
}

impl<'a> CallTables<'a> {
    pub(super) fn new(
        kernel: &Bound,
        srcs: &'a [TableSrc<'a>],
        n: usize,
    ) -> Result<CallTables<'a>> {
        let reach = reaches(kernel, srcs.len(), n)?;
        Ok(CallTables {
            srcs,
            reach,
            call: next_call(),
            host: Mutex::new(vec![None; srcs.len()]),
            held: Mutex::new(Vec::new()),
        })
    }

    /// Table `t` whole on the host: an array's parts read back once per call (the
    /// bytes go into `stats`).
    fn host(&self, t: usize, stats: &mut ShareStats) -> Result<Got<'a>> {
        let a = match &self.srcs[t] {
            TableSrc::Host(d, _) => return Ok(Got::Slice(d, 0)),
            TableSrc::Array(a) => a,
        };
        if let Some(h) = &lock(&self.host)[t] {
            return Ok(Got::Host(h.clone()));
        }
        let h = Arc::new(a.host_range(0..a.len, stats)?);
        lock(&self.host)[t] = Some(h.clone());
        Ok(Got::Host(h))
    }

    /// Every table whole on the host.
    pub(super) fn all_host(&self, stats: &mut ShareStats) -> Result<Vec<Got<'a>>> {
        (0..self.srcs.len()).map(|t| self.host(t, stats)).collect()
    }

    /// What a run over `range` reads of each table: on a device with memory `mem`,
    /// the window its reads reach (a host table's slice, sent by the device and kept
    /// for the call; an array's parts brought there); on the host, each whole.
    pub(super) fn for_run(
        &self,
        mem: Option<&dyn Memory>,
        range: &Range<usize>,
        stats: &mut ShareStats,
    ) -> Result<Vec<Got<'a>>> {
        let Some(m) = mem else {
            return self.all_host(stats);
        };
        let mut got = Vec::with_capacity(self.srcs.len());
        for (t, (src, r)) in self.srcs.iter().zip(&self.reach).enumerate() {
            let w = window(r, src.len(), range);
            got.push(match src {
                TableSrc::Host(d, k) => Got::Slice(&d[w.start * k..w.end * k], w.start),
                TableSrc::Array(_) if w.is_empty() => Got::Slice(&[], 0),
                TableSrc::Array(a) => self.held_on(t, a, w, m, stats)?,
            });
        }
        Ok(got)
    }

    /// Elements `want` of array table `t` in `m`'s memory: the whole parts they lie
    /// in, each brought there and kept by the array (nothing moves for a part
    /// already there), joined on the device when there are several.
    fn held_on(
        &self,
        t: usize,
        a: &ArrayRef<'_>,
        want: Range<usize>,
        m: &dyn Memory,
        stats: &mut ShareStats,
    ) -> Result<Got<'a>> {
        let id = m.id();
        let cached = lock(&self.held)
            .iter()
            .find(|h| {
                h.table == t
                    && h.memory == id
                    && h.range.start <= want.start
                    && want.end <= h.range.end
            })
            .map(|h| (h.part.clone(), h.range.start));
        if let Some((r, start)) = cached {
            return Ok(Got::Held(r, start));
        }
        let ranges: Vec<Range<usize>> = a
            .layout()
            .into_iter()
            .map(|p| p.range)
            .filter(|r| r.start < want.end && want.start < r.end)
            .collect();
        let span = match (ranges.first(), ranges.last()) {
            (Some(f), Some(l)) => f.start..l.end,
            _ => return Ok(Got::Slice(&[], 0)),
        };
        let before = stats.bytes_to_device;
        let parts: Vec<Arc<dyn Resident>> = ranges
            .iter()
            .map(|r| a.on_device(r.clone(), m, stats))
            .collect::<Result<_>>()?;
        let one = match parts.as_slice() {
            [p] => p.clone(),
            _ => {
                let refs: Vec<&dyn Resident> = parts.iter().map(|p| p.as_ref()).collect();
                let (r, st) = m.gather(&refs)?;
                stats.compute_s += st.compute_s;
                r
            }
        };
        if let Some(b) = stats.table_bytes.get_mut(t) {
            *b += stats.bytes_to_device - before;
        }
        lock(&self.held).push(Held {
            table: t,
            memory: id,
            range: span.clone(),
            part: one.clone(),
        });
        Ok(Got::Held(one, span.start))
    }

    /// The task's view of what `got` holds.
    pub(super) fn args<'g>(&self, got: &'g [Got<'_>]) -> Vec<TableArg<'g>> {
        got.iter()
            .enumerate()
            .map(|(index, g)| {
                let len = self.srcs[index].len();
                let (data, start, held): (&[u32], usize, Option<&dyn Resident>) = match g {
                    Got::Slice(d, s) => (d, *s, None),
                    Got::Host(h) => (h.as_slice(), 0, None),
                    Got::Held(r, s) => (&[], *s, Some(r.as_ref())),
                };
                TableArg {
                    data,
                    held,
                    start,
                    len,
                    call: self.call,
                    index,
                    words: self.srcs[index].words(),
                }
            })
            .collect()
    }

    /// Per table, the bytes planned as sent once to a device with its own memory: a
    /// host table whole (`None`: a halo, sent with each share); an array's parts not
    /// yet on the device (the most any such device lacks).
    pub(super) fn once(&self, devices: &[Arc<dyn Device>]) -> Vec<Option<u64>> {
        self.srcs
            .iter()
            .zip(&self.reach)
            .map(|(src, r)| match (src, r) {
                (_, Reach::Near { .. }) => None,
                (_, Reach::None) => Some(0),
                (TableSrc::Host(d, _), Reach::Whole) => Some(4 * d.len() as u64),
                (TableSrc::Array(a), Reach::Whole) => Some(
                    devices
                        .iter()
                        .filter_map(|d| d.memory())
                        .map(|m| a.bytes_not_on(m.id()))
                        .max()
                        .unwrap_or(0),
                ),
            })
            .collect()
    }

    pub(super) fn biggest(&self) -> u64 {
        self.srcs
            .iter()
            .map(|s| 4 * s.words_all() as u64)
            .max()
            .unwrap_or(0)
    }
}
