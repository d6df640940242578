//! One cluster call, as it moves: the root plans, sends each rank a header and its
//! share of the inputs, computes its own share, then gathers each rank's result;
//! every other rank waits for its header, computes its share on its own runtime and
//! sends back a record (its timings, its local receipt, or its error) and its results.
//!
//! Every wait is bounded ([`Channel`](super::wire::Channel)); a rank's error travels to
//! the root in its record, and the root fails the call with it after hearing from
//! every rank, so the ranks stay in step for the next call. A kernel is checked by
//! its id on every rank: a different one is [`Error::ClusterKernelMismatch`] at the
//! first call. A rank with no share of a call every rank has answered before (the
//! kernel and operation matched) is not waited for: it gets the header alone and
//! sends nothing back, so a call kept on the root costs no round trip (a rank that
//! then passes another kernel finds it itself: its own call fails, the root's, which
//! computed everything, does not). A root that fails before sending (inputs of different lengths, a
//! kernel that does not compile) cancels the call on every rank. A timeout leaves the
//! ranks out of step: the cluster is then broken, and every later call fails with
//! that timeout.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::cluster::{Cluster, ClusterRun};
use super::mpi_wire::local;
use super::plan::{self, NodeCost, Spread, Traffic};
use super::report::{ClusterReport, LocalReport, NodeReport};
use crate::error::{Error, Result};
use crate::kernel::reduce::combine_bits;
use crate::kernel::{Element, Kernel, Reduce};
use crate::report::Report;

pub(super) const TAG_CALL: i32 = 20;
pub(super) const TAG_DATA: i32 = 21;
pub(super) const TAG_META: i32 = 22;
pub(super) const TAG_RESULT: i32 = 23;

pub(super) const HEADER_WORDS: usize = 10;

/// A call header's first word when the rank, given no share, sends nothing back (0:
/// it answers; 1: the call is cancelled).
pub(super) const NO_REPLY: u32 = 2;

/// A call's data as words: the element-wise inputs (input `k` has `words[k]` words per
/// element: 2 for a 64-bit type), the tables (sent whole to every node with a share),
/// and the words of one element's results.
pub(super) struct Args<'a> {
    pub(super) each: Vec<&'a [u32]>,
    pub(super) words: Vec<usize>,
    pub(super) tables: Vec<&'a [u32]>,
    pub(super) out_words: usize,
}

impl<'a> Args<'a> {
    /// 32-bit inputs, no tables, one 32-bit result.
    pub(super) fn plain(each: Vec<&'a [u32]>) -> Args<'a> {
        Args {
            words: vec![1; each.len()],
            each,
            tables: Vec::new(),
            out_words: 1,
        }
    }

    fn word(&self, k: usize) -> usize {
        self.words.get(k).copied().unwrap_or(1).max(1)
    }

    /// Elements, from the first input (0 without one).
    fn len(&self) -> usize {
        self.each.first().map_or(0, |x| x.len() / self.word(0))
    }

    /// Input `k`'s words for elements `r`.
    fn slice(&self, k: usize, r: &std::ops::Range<usize>) -> &'a [u32] {
        let w = self.word(k);
        &self.each[k][r.start * w..r.end * w]
    }
}

/// The local run of one node's share: its inputs' words, the tables whole, and its
/// number of elements.
pub(super) type Run<'r> = &'r dyn Fn(&[&[u32]], &[&[u32]], usize) -> Local<Part>;

/// What a call computes: a map or a reduction, of `arity` inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct What {
    pub(super) op: Option<Reduce>,
    pub(super) arity: usize,
}

impl What {
    pub(super) fn code(self) -> u32 {
        match self.op {
            None => 0,
            Some(Reduce::Sum) => 1,
            Some(Reduce::Min) => 2,
            Some(Reduce::Max) => 3,
        }
    }

    pub(super) fn describe(code: u32, arity: usize) -> String {
        let op = ["map", "reduce sum", "reduce min", "reduce max"];
        format!(
            "{} of {arity} input(s)",
            op.get(code as usize).unwrap_or(&"?")
        )
    }
}

/// One node's result on the root: its output words, or its partial's bits.
pub(super) enum Part {
    Words(Vec<u32>),
    Bits(u64),
}

/// What a rank sends back besides its results.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) error: Option<String>,
    /// `(root's kernel id, this rank's)` when they differ.
    pub(crate) mismatch: Option<(u64, u64)>,
    pub(crate) send_s: f64,
    pub(crate) compute_s: f64,
    pub(crate) local: Option<LocalReport>,
}

impl Record {
    /// The root's error for rank `r`'s record, if it has one.
    pub(crate) fn error_of(&self, r: usize) -> Option<Error> {
        match (self.mismatch, &self.error) {
            (Some((root, local)), _) => Some(Error::ClusterKernelMismatch {
                rank: r,
                root,
                local,
            }),
            (None, Some(message)) => Some(Error::Cluster {
                rank: r,
                message: message.clone(),
            }),
            (None, None) => None,
        }
    }
}

fn words<I: Element>(xs: &[I]) -> &[u32] {
    bytemuck::cast_slice(xs)
}

/// 32-bit words back as elements (never fails: both are 4 bytes, 4-aligned).
fn elements<I: Element>(w: &[u32]) -> Result<&[I]> {
    bytemuck::try_cast_slice(w).map_err(|e| Error::Cluster {
        rank: 0,
        message: format!("cannot view words as elements: {e}"),
    })
}

/// A vector of one 32-bit type as another, in place (its buffer reused); copied
/// element by element only if the allocation cannot be reused (never, for
/// `f32`/`i32`/`u32`).
fn recast<A: bytemuck::Pod, B: bytemuck::Pod>(v: Vec<A>) -> Vec<B> {
    bytemuck::allocation::try_cast_vec(v)
        .unwrap_or_else(|(_, v)| bytemuck::allocation::pod_collect_to_vec(&v))
}

pub(super) fn split64(x: u64) -> [u32; 2] {
    [x as u32, (x >> 32) as u32]
}

pub(super) fn join64(lo: u32, hi: u32) -> u64 {
    lo as u64 | (hi as u64) << 32
}

/// A local run's output and receipt (the cluster's local closure's result).
pub(super) type Local<T> = Result<(T, Report)>;

impl Cluster {
    pub(crate) fn map_words<I: Element, O: Element>(
        &self,
        kernel: &Kernel<I, O>,
        inputs: &[&[I]],
        spread: Spread,
        run: impl Fn(&[&[I]]) -> Local<Vec<O>>,
    ) -> Result<ClusterRun<Vec<O>>> {
        let (parts, report) = self.call_typed(kernel, None, inputs, spread, run, |out| {
            Part::Words(recast::<O, u32>(out))
        })?;
        let output = parts.map(|mut ps| {
            // one part (everything on one node): its buffer is the output, no copy
            if let [Part::Words(w)] = &mut ps[..] {
                return recast::<u32, O>(std::mem::take(w));
            }
            let len = ps
                .iter()
                .map(|p| match p {
                    Part::Words(w) => w.len(),
                    Part::Bits(_) => 0,
                })
                .sum();
            let mut out: Vec<O> = Vec::with_capacity(len);
            for p in &ps {
                if let Part::Words(w) = p {
                    out.extend(w.iter().map(|&x| O::from_bits(x)));
                }
            }
            out
        });
        Ok(ClusterRun { output, report })
    }

    pub(crate) fn reduce_words<I: Element, O: Element>(
        &self,
        kernel: &Kernel<I, O>,
        op: Reduce,
        inputs: &[&[I]],
        spread: Spread,
        run: impl Fn(&[&[I]]) -> Local<O>,
    ) -> Result<ClusterRun<O>> {
        let (parts, report) = self.call_typed(kernel, Some(op), inputs, spread, run, |out| {
            Part::Bits(crate::kernel::Scalar::bits(out))
        })?;
        let output = parts.map(|ps| {
            let bits = ps.iter().filter_map(|p| match p {
                Part::Bits(b) => Some(*b),
                Part::Words(_) => None,
            });
            let ty = <O as crate::kernel::Scalar>::TYPE;
            let all = bits.reduce(|a, b| combine_bits(op, ty, a, b));
            O::from_bits64(all.unwrap_or_else(|| op.identity_bits(ty)))
        });
        Ok(ClusterRun { output, report })
    }

    /// A call over typed inputs: as words down, the local run's output made a part.
    fn call_typed<I: Element, O: Element, T>(
        &self,
        kernel: &Kernel<I, O>,
        op: Option<Reduce>,
        inputs: &[&[I]],
        spread: Spread,
        run: impl Fn(&[&[I]]) -> Local<T>,
        part: impl Fn(T) -> Part,
    ) -> Result<(Option<Vec<Part>>, ClusterReport)> {
        let what = What {
            op,
            arity: inputs.len(),
        };
        let w: Vec<&[u32]> = inputs.iter().map(|x| words(x)).collect();
        self.call_words(kernel.id(), what, &Args::plain(w), spread, &|v, _, _| {
            let typed = v
                .iter()
                .map(|x| elements::<I>(x))
                .collect::<Result<Vec<_>>>()?;
            let (out, r) = run(&typed)?;
            Ok((part(out), r))
        })
    }

    /// The call on this rank: on the root, every node's part in rank order.
    pub(super) fn call_words(
        &self,
        id: Result<u64>,
        what: What,
        args: &Args<'_>,
        spread: Spread,
        run: Run<'_>,
    ) -> Result<(Option<Vec<Part>>, ClusterReport)> {
        if let Some(e) = self.broken.borrow().clone() {
            return Err(e);
        }
        let got = if self.is_root() {
            self.root_call(id, what, args, spread, run)
                .map(|(p, r)| (Some(p), r))
        } else {
            self.rank_call(id, what, run).map(|r| (None, r))
        };
        if let Err(e @ Error::ClusterTimeout { .. }) = &got {
            *self.broken.borrow_mut() = Some(e.clone());
        }
        got
    }

    fn root_call(
        &self,
        id: Result<u64>,
        what: What,
        args: &Args<'_>,
        spread: Spread,
        run: Run<'_>,
    ) -> Result<(Vec<Part>, ClusterReport)> {
        let t0 = Instant::now();
        let size = self.size();
        let n = args.len();
        let mismatch = (0..args.each.len()).find(|&k| args.each[k].len() != n * args.word(k));
        let checked = id.and_then(|id| match mismatch {
            _ if args.each.is_empty() => Err(Error::InvalidKernel {
                reason: "a cluster call needs an element-wise input (its length is the \
                         call's)"
                    .into(),
            }),
            Some(k) => Err(Error::LengthMismatch {
                left: n,
                right: args.each[k].len() / args.word(k),
            }),
            None => Ok(id),
        });
        let id = match checked {
            Ok(id) => id,
            Err(e) => {
                let mut cancel = [0u32; HEADER_WORDS];
                cancel[0] = 1;
                for r in 1..size {
                    self.ch.send(r, TAG_CALL, &cancel);
                }
                return Err(e);
            }
        };
        let work = (id, what.code());
        let traffic = Traffic {
            in_per_elem: 4 * (0..args.each.len()).map(|k| args.word(k)).sum::<usize>() as u64,
            out_per_elem: if what.op.is_none() {
                4 * args.out_words as u64
            } else {
                0
            },
            in_fixed: 4 * args.tables.iter().map(|t| t.len()).sum::<usize>() as u64,
            out_fixed: if what.op.is_none() { 0 } else { 8 },
        };
        let nodes: Vec<NodeCost> = (0..size)
            .map(|r| NodeCost {
                link: self.links.get(r).and_then(|c| c.as_ref().map(|c| c.link)),
                model: self.models.borrow().fit(work, r),
            })
            .collect();
        let plan = plan::plan(n, &nodes, traffic, spread);
        let ranges = plan::ranges(&plan.shares);
        // a rank is waited for when it has a share, or on the first call of a kernel
        // (so a kernel that differs on a rank is an error at its first call); a call
        // kept on the root then costs no round trip
        let first = !self.answered.borrow().contains(&work);
        let waits: Vec<bool> = ranges.iter().map(|r| first || !r.is_empty()).collect();
        for (r, range) in ranges.iter().enumerate().skip(1) {
            let (s, c) = (split64(range.start as u64), split64(range.len() as u64));
            let [a, b] = split64(id);
            let header = [
                if waits[r] { 0 } else { NO_REPLY },
                what.code(),
                what.arity as u32,
                a,
                b,
                c[0],
                c[1],
                s[0],
                s[1],
                args.tables.len() as u32,
            ];
            self.ch.send(r, TAG_CALL, &header);
            if !range.is_empty() {
                for k in 0..args.each.len() {
                    self.ch.send(r, TAG_DATA, args.slice(k, range));
                }
                for t in &args.tables {
                    self.ch.send(r, TAG_DATA, t);
                }
            }
        }
        let mut parts = Vec::with_capacity(size);
        let mut failed: Option<Error> = None;
        let mut report = ClusterReport {
            call: What::describe(what.code(), what.arity),
            elements: n,
            spread: spread.name().into(),
            decision: plan.decision.clone(),
            ..ClusterReport::default()
        };
        let host = |r: usize| {
            self.profiles
                .get(r)
                .map(|p| p.host.clone())
                .unwrap_or_default()
        };
        // the root's own share
        let mut me = NodeReport {
            rank: 0,
            host: host(0),
            elements: plan.shares[0],
            predicted_s: plan.predicted_s[0],
            why_none: plan.why_none[0].clone(),
            ..NodeReport::default()
        };
        if plan.shares[0] > 0 || n == 0 {
            let mine: Vec<&[u32]> = (0..args.each.len())
                .map(|k| args.slice(k, &ranges[0]))
                .collect();
            let t = Instant::now();
            match local(|| run(&mine, &args.tables, ranges[0].len())) {
                Ok(Ok((part, r))) => {
                    me.compute_s = t.elapsed().as_secs_f64();
                    me.local = Some(LocalReport::brief(&r));
                    report.root_local = Some(r);
                    parts.push(part);
                    if plan.shares[0] > 0 {
                        self.models
                            .borrow_mut()
                            .record(work, 0, plan.shares[0], me.compute_s);
                    }
                }
                Ok(Err(e)) => failed = Some(e),
                Err(panic) => {
                    failed = Some(Error::Cluster {
                        rank: 0,
                        message: format!("panicked: {panic}"),
                    })
                }
            }
        }
        me.measured_s = t0.elapsed().as_secs_f64();
        report.nodes.push(me);
        // every other rank's record and results, in rank order
        for (r, range) in ranges.iter().enumerate().skip(1) {
            if !waits[r] {
                report.nodes.push(NodeReport {
                    rank: r,
                    host: host(r),
                    predicted_s: plan.predicted_s[r],
                    why_none: plan.why_none[r].clone(),
                    ..NodeReport::default()
                });
                continue;
            }
            let rec: Record =
                serde_json::from_slice(&self.ch.recv_bytes(r, TAG_META)?).map_err(|e| {
                    Error::Cluster {
                        rank: r,
                        message: format!("unreadable record: {e}"),
                    }
                })?;
            let count = range.len();
            let mut node = NodeReport {
                rank: r,
                host: host(r),
                elements: count,
                bytes_in: match count {
                    0 => 0,
                    _ => count as u64 * traffic.in_per_elem + traffic.in_fixed,
                },
                send_s: rec.send_s,
                compute_s: rec.compute_s,
                predicted_s: plan.predicted_s[r],
                why_none: plan.why_none[r].clone(),
                local: rec.local.clone(),
                ..NodeReport::default()
            };
            if let Some(e) = rec.error_of(r) {
                failed.get_or_insert(e);
            } else if count > 0 {
                let got = self.ch.recv(r, TAG_RESULT)?;
                node.receive_s = got.transfer_s;
                node.bytes_out = got.words.len() as u64 * 4;
                parts.push(match what.op {
                    None => Part::Words(got.words),
                    Some(_) => Part::Bits(join64(
                        got.words.first().copied().unwrap_or(0),
                        got.words.get(1).copied().unwrap_or(0),
                    )),
                });
                self.models
                    .borrow_mut()
                    .record(work, r, count, rec.compute_s);
            }
            node.measured_s = t0.elapsed().as_secs_f64();
            report.nodes.push(node);
        }
        if let Some(e) = failed {
            return Err(e);
        }
        self.answered.borrow_mut().insert(work);
        report.wall_s = t0.elapsed().as_secs_f64();
        let with_share = plan
            .predicted_s
            .iter()
            .zip(&plan.shares)
            .filter(|(_, &s)| s > 0);
        report.predicted_s = with_share
            .map(|(p, _)| *p)
            .collect::<Option<Vec<f64>>>()
            .map(|v| v.into_iter().fold(0.0, f64::max));
        Ok((parts, report))
    }
}
