//! [`DistArray`]: data that stays on the nodes (owner computes, as StarPU-MPI places
//! work). Each rank owns one contiguous part and keeps it between calls; a map over a
//! distributed array runs on every owner over its own part and moves no element, so a
//! chain of calls moves the data once: when it is scattered and when it is gathered.
//! A part read by a rank that does not own it is sent once and cached there until it
//! is written (an in-place map); which rank holds a copy of which part is known to
//! every rank (every call is collective), so an owner never sends a part twice and
//! a gather takes no part the root already holds.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::time::Instant;

use super::call::Record;
use super::cluster::{Cluster, ClusterRun};
use super::mpi_wire::local;
use super::plan::ranges;
use super::report::{ClusterReport, LocalReport, NodeReport};
use crate::error::{Error, Result};
use crate::kernel::{Element, Kernel};

const TAG_SCATTER: i32 = 30;
const TAG_MAP: i32 = 31;
const TAG_MAP_META: i32 = 32;
const TAG_FETCH: i32 = 33;
const TAG_GATHER: i32 = 34;

/// An array whose parts are owned by the ranks of a cluster and stay there.
#[derive(Debug, Clone)]
pub struct DistArray<T> {
    len: usize,
    /// Per rank, the elements it owns (the same on every rank).
    ranges: Vec<Range<usize>>,
    /// This rank's own part.
    part: Vec<T>,
    /// Other ranks' parts this rank has read, until they are written.
    cached: HashMap<usize, Vec<T>>,
    /// Per part, the ranks that hold a cached copy (the same on every rank).
    copies: Vec<BTreeSet<usize>>,
    /// Element bytes this rank has sent or received for this array.
    moved: u64,
}

impl<T: Element> DistArray<T> {
    /// Elements in all.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Per rank, the elements it owns.
    pub fn ranges(&self) -> &[Range<usize>] {
        &self.ranges
    }

    /// This rank's own part.
    pub fn part(&self) -> &[T] {
        &self.part
    }

    /// Element bytes this rank has sent or received for this array (scatter, reads,
    /// gather): what a chain of maps adds to it is nothing.
    pub fn bytes_moved(&self) -> u64 {
        self.moved
    }

    /// Rank `reader` reads part `owner` (collective: every rank calls it). Sent once;
    /// later reads use the reader's copy until the part is written. `Some` on the
    /// reader, `None` elsewhere.
    pub fn read(&mut self, c: &Cluster, owner: usize, reader: usize) -> Result<Option<&[T]>> {
        let me = c.rank();
        if owner >= self.ranges.len() || reader >= self.ranges.len() {
            return Err(Error::NoSuchDevice {
                index: owner.max(reader),
                devices: self.ranges.len(),
            });
        }
        let held = owner == reader || self.copies[owner].contains(&reader);
        if !held {
            if me == owner {
                c.ch.send(reader, TAG_FETCH, bytemuck::cast_slice(&self.part));
                self.moved += self.part.len() as u64 * 4;
            } else if me == reader {
                let got = c.ch.recv(owner, TAG_FETCH)?.words;
                self.moved += got.len() as u64 * 4;
                self.cached
                    .insert(owner, got.into_iter().map(T::from_bits).collect());
            }
            self.copies[owner].insert(reader);
        }
        Ok(match me {
            m if m != reader => None,
            m if m == owner => Some(&self.part),
            _ => self.cached.get(&owner).map(Vec::as_slice),
        })
    }

    /// The whole array on the root (collective); parts the root already holds a copy
    /// of are not sent again. `None` off the root.
    pub fn gather(&mut self, c: &Cluster) -> Result<Option<Vec<T>>> {
        let me = c.rank();
        if me != 0 {
            if !self.copies[me].contains(&0) {
                c.ch.send(0, TAG_GATHER, bytemuck::cast_slice(&self.part));
                self.moved += self.part.len() as u64 * 4;
                self.copies[me].insert(0);
            }
            return Ok(None);
        }
        let mut out = Vec::with_capacity(self.len);
        out.extend_from_slice(&self.part);
        for r in 1..self.ranges.len() {
            if !self.copies[r].contains(&0) {
                let got = c.ch.recv(r, TAG_GATHER)?.words;
                self.moved += got.len() as u64 * 4;
                self.cached
                    .insert(r, got.into_iter().map(T::from_bits).collect());
                self.copies[r].insert(0);
            }
            out.extend_from_slice(self.cached.get(&r).map_or(&[][..], Vec::as_slice));
        }
        Ok(Some(out))
    }
}

impl Cluster {
    /// Spreads the root's `xs` over the ranks in equal parts, each kept by its owner
    /// (collective; other ranks pass `&[]`).
    pub fn scatter<T: Element>(&self, xs: &[T]) -> Result<DistArray<T>> {
        let size = self.size();
        let me = self.rank();
        let n = if me == 0 {
            for r in 1..size {
                self.ch.send(
                    r,
                    TAG_SCATTER,
                    &[xs.len() as u32, (xs.len() as u64 >> 32) as u32],
                );
            }
            xs.len()
        } else {
            let h = self.ch.recv(0, TAG_SCATTER)?.words;
            h.first().copied().unwrap_or(0) as usize
                | (h.get(1).copied().unwrap_or(0) as usize) << 32
        };
        let shares: Vec<usize> = (0..size)
            .map(|r| n / size + usize::from(r < n % size))
            .collect();
        let ranges = ranges(&shares);
        let mut moved = 0;
        let part = if me == 0 {
            for (r, range) in ranges.iter().enumerate().skip(1) {
                self.ch
                    .send(r, TAG_SCATTER, bytemuck::cast_slice(&xs[range.clone()]));
                moved += range.len() as u64 * 4;
            }
            xs[ranges[0].clone()].to_vec()
        } else {
            let got = self.ch.recv(0, TAG_SCATTER)?.words;
            moved += got.len() as u64 * 4;
            got.into_iter().map(T::from_bits).collect()
        };
        Ok(DistArray {
            len: n,
            copies: vec![BTreeSet::new(); size],
            ranges,
            part,
            cached: HashMap::new(),
            moved,
        })
    }

    /// Applies `kernel` to a distributed array where its parts are: each owner maps
    /// its own part on its own runtime, and no element moves (collective). The result
    /// is a new distributed array with the same owners, on every rank (`output` is
    /// always `Some`).
    pub fn map_dist<I: Element, O: Element>(
        &self,
        a: &DistArray<I>,
        kernel: &Kernel<I, O>,
    ) -> Result<ClusterRun<DistArray<O>>> {
        let (part, report) = self.owners_compute(&a.part, &a.ranges, kernel)?;
        let out = DistArray {
            len: a.len,
            ranges: a.ranges.clone(),
            part,
            cached: HashMap::new(),
            copies: vec![BTreeSet::new(); a.ranges.len()],
            moved: 0,
        };
        Ok(ClusterRun {
            output: Some(out),
            report,
        })
    }

    /// [`map_dist`](Self::map_dist) written over `a`: every cached copy of its parts
    /// is dropped (the next read fetches the new values).
    pub fn map_dist_in_place<T: Element>(
        &self,
        a: &mut DistArray<T>,
        kernel: &Kernel<T, T>,
    ) -> Result<ClusterReport> {
        let (part, report) = self.owners_compute(&a.part, &a.ranges, kernel)?;
        a.part = part;
        a.cached.clear();
        a.copies.iter_mut().for_each(BTreeSet::clear);
        Ok(report)
    }

    /// Every rank maps its own part; the root checks every rank's kernel id and
    /// gathers their records (no element moves).
    fn owners_compute<I: Element, O: Element>(
        &self,
        part: &[I],
        ranges: &[Range<usize>],
        kernel: &Kernel<I, O>,
    ) -> Result<(Vec<O>, ClusterReport)> {
        if let Some(e) = self.broken.borrow().clone() {
            return Err(e);
        }
        let t0 = Instant::now();
        let (me, size) = (self.rank(), self.size());
        let id = kernel.id();
        let mut rec = Record::default();
        let mut failed = None;
        if me == 0 {
            let words = match &id {
                Ok(id) => [0, *id as u32, (*id >> 32) as u32],
                Err(_) => [1, 0, 0],
            };
            for r in 1..size {
                self.ch.send(r, TAG_MAP, &words);
            }
            if let Err(e) = &id {
                return Err(e.clone());
            }
        } else {
            let h = self.ch.recv(0, TAG_MAP)?.words;
            let root = h.get(1).copied().unwrap_or(0) as u64
                | (h.get(2).copied().unwrap_or(0) as u64) << 32;
            if h.first() != Some(&0) {
                return Err(Error::Cluster {
                    rank: 0,
                    message: "the root cancelled the call".into(),
                });
            }
            match &id {
                Ok(mine) if *mine != root => {
                    rec.mismatch = Some((root, *mine));
                    failed = Some(Error::ClusterKernelMismatch {
                        rank: me,
                        root,
                        local: *mine,
                    });
                }
                Err(e) => failed = Some(e.clone()),
                Ok(_) => {}
            }
        }
        let mut out = Vec::new();
        if failed.is_none() {
            let t = Instant::now();
            match local(|| self.runtime.map(part, kernel, self.local)) {
                Ok(Ok(run)) => {
                    rec.compute_s = t.elapsed().as_secs_f64();
                    rec.local = Some(LocalReport::of(&run.report));
                    out = run.output;
                }
                Ok(Err(e)) => failed = Some(e),
                Err(p) => {
                    failed = Some(Error::Cluster {
                        rank: me,
                        message: format!("panicked: {p}"),
                    })
                }
            }
        }
        let node = |rank: usize, rec: &Record| NodeReport {
            rank,
            host: self
                .profiles
                .get(rank)
                .map(|p| p.host.clone())
                .unwrap_or_default(),
            elements: ranges.get(rank).map_or(0, Range::len),
            compute_s: rec.compute_s,
            measured_s: t0.elapsed().as_secs_f64(),
            local: rec.local.clone(),
            ..NodeReport::default()
        };
        let mut report = ClusterReport {
            call: "map over a distributed array (owners compute)".into(),
            elements: ranges.iter().map(Range::len).sum(),
            spread: "owners".into(),
            decision: "owner computes: no element moves".into(),
            nodes: vec![node(me, &rec)],
            ..ClusterReport::default()
        };
        if me != 0 {
            if rec.mismatch.is_none() {
                rec.error = failed.as_ref().map(|e| e.to_string());
            }
            self.ch.send_bytes(
                0,
                TAG_MAP_META,
                &serde_json::to_vec(&rec).unwrap_or_default(),
            );
        } else {
            for r in 1..size {
                let got: Record = serde_json::from_slice(&self.ch.recv_bytes(r, TAG_MAP_META)?)
                    .map_err(|e| Error::Cluster {
                        rank: r,
                        message: format!("unreadable record: {e}"),
                    })?;
                if let Some(e) = got.error_of(r) {
                    failed.get_or_insert(e);
                }
                report.nodes.push(node(r, &got));
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        report.wall_s = t0.elapsed().as_secs_f64();
        Ok((out, report))
    }
}
