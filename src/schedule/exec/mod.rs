//! Running a call's shares: as planned (static placements), or balanced as they go
//! (`Auto`).
//!
//! Balancing keeps every device's elements one contiguous range, so outputs are
//! written in place and the report has one share per device. The devices stand on a
//! line over the input, in plan order; between two neighbours lies a gap of elements
//! nobody has taken yet. Each device eats its planned share from its own end of its
//! gap (the last device from the right, the others from the left), half of what is
//! left at a time and never less than a run whose fixed cost is a few percent of it.
//! A device whose plan is done helps a neighbour: it splits what is left of the
//! neighbour's gap by the models (the neighbour counted as busy until its run is
//! predicted to end, or, when it is overdue, for as long again as it has run) and
//! takes its part from the other end. Help flows along the line, so a slow device is
//! caught up by all the others. On a virtual clock the same rules run as a
//! discrete-event simulation.

use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::plan::{solve, Cost};
use crate::device::{Device, ShareStats};
use crate::error::{Error, Result};

/// A run's fixed cost is kept under this fraction of the run (sets the smallest chunk).
const OVERHEAD_SHARE: f64 = 0.03;
/// The smallest chunk handed out, whatever the model says.
const MIN_CHUNK: usize = 1 << 14;

/// What one device did in a call.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) dev: usize,
    pub(crate) range: Range<usize>,
    pub(crate) stats: ShareStats,
    /// Seconds from the start of the call until the device finished (wall or virtual).
    pub(crate) busy_s: f64,
    /// Runs (chunks handed to the device).
    pub(crate) runs: u32,
}

/// Learns from a run: (device, elements, seconds, stats) to the device's updated cost.
pub(crate) type Learn<'a> = dyn Fn(usize, usize, f64, &ShareStats) -> Option<Cost> + Sync + 'a;

/// Runs one range on one device: (device, range, the range's part of the output) to
/// the run's stats and seconds. A map writes its output there; a reduction's output
/// is `()` per element (it takes no memory) and its runner keeps the partials.
pub(crate) type Runner<'a, T> =
    dyn Fn(usize, &Range<usize>, &mut [T]) -> Result<(ShareStats, f64)> + Sync + 'a;

/// What a call runs on. `T` is the output's element: `u32` bit patterns for a map,
/// `()` for a reduction.
pub(crate) struct Ctx<'a, T> {
    pub(crate) devices: &'a [Arc<dyn Device>],
    /// Per device: may it take over a failed device's work?
    pub(crate) healthy: &'a [bool],
    pub(crate) runner: &'a Runner<'a, T>,
    pub(crate) virtual_clock: bool,
    pub(crate) learn: &'a Learn<'a>,
}

impl<T> Ctx<'_, T> {
    fn run(&self, dev: usize, range: &Range<usize>, out: &mut [T]) -> Result<(ShareStats, f64)> {
        (self.runner)(dev, range, out)
    }
}

pub(crate) fn add(a: &mut ShareStats, b: &ShareStats) {
    a.bytes_to_device += b.bytes_to_device;
    a.bytes_from_device += b.bytes_from_device;
    a.upload_s += b.upload_s;
    a.compute_s += b.compute_s;
    a.download_s += b.download_s;
    a.chunks += b.chunks;
    a.transfer.absorb(&b.transfer);
}

/// A device's run that failed and was redone by another device.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) dev: usize,
    pub(crate) range: Range<usize>,
    pub(crate) error: Error,
    pub(crate) redone_by: usize,
}

/// What a call's execution did: the runs that counted, and the failures recovered.
pub(crate) type Ran = (Vec<Outcome>, Vec<Failure>);

/// Whether an error is the device's fault (so another device may redo its work)
/// rather than the kernel's or the caller's (which every device would meet too).
pub(crate) fn device_fault(e: &Error) -> bool {
    matches!(
        e,
        Error::DeviceFailed { .. } | Error::DeviceLost { .. } | Error::BufferTooLarge { .. }
    )
}

/// Work whose device failed: (device, range, its output, the error).
type Orphan<'o, T> = (usize, Range<usize>, &'o mut [T], Error);

/// Redoes each orphan on another device: the CPU first, then any other device that
/// has not failed in this call and is healthy, one after another. Fails with the
/// orphan's error when no device is left.
fn recover<T: Send>(
    ctx: &Ctx<'_, T>,
    orphans: Vec<Orphan<'_, T>>,
    outcomes: &mut Vec<Outcome>,
    failures: &mut Vec<Failure>,
    t0: Instant,
) -> Result<()> {
    let mut dead: Vec<usize> = orphans.iter().map(|o| o.0).collect();
    let mut clock = outcomes.iter().map(|o| o.busy_s).fold(0.0, f64::max);
    for (dev, range, out, error) in orphans {
        loop {
            let mut order: Vec<usize> = (0..ctx.devices.len())
                .filter(|d| !dead.contains(d) && ctx.healthy.get(*d).copied().unwrap_or(true))
                .collect();
            order.sort_by_key(|&d| ctx.devices[d].info().kind.is_gpu());
            let Some(&helper) = order.first() else {
                return Err(error);
            };
            match ctx.run(helper, &range, &mut *out) {
                Ok((stats, secs)) => {
                    clock += secs;
                    let busy_s = if ctx.virtual_clock {
                        clock
                    } else {
                        t0.elapsed().as_secs_f64()
                    };
                    outcomes.push(Outcome {
                        dev: helper,
                        range: range.clone(),
                        stats,
                        busy_s,
                        runs: 1,
                    });
                    failures.push(Failure {
                        dev,
                        range,
                        error,
                        redone_by: helper,
                    });
                    break;
                }
                Err(e) if device_fault(&e) => dead.push(helper),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

fn panicked<T>(ctx: &Ctx<'_, T>, dev: usize) -> Error {
    Error::DeviceFailed {
        device: ctx.devices[dev].info().name.clone(),
        stage: "compute",
        reason: "worker thread panicked".into(),
    }
}

/// Runs each `(device, range)` as one run, all at the same time (one after another
/// on a virtual clock, each on its own clock). `out` covers the ranges, in order. A
/// range whose device fails is redone on another device afterwards.
pub(crate) fn run_static<T: Send>(
    ctx: &Ctx<'_, T>,
    parts: Vec<(usize, Range<usize>)>,
    out: &mut [T],
) -> Result<Ran> {
    let mut pieces = Vec::with_capacity(parts.len());
    let mut rest = out;
    for (dev, range) in parts.into_iter().filter(|p| !p.1.is_empty()) {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(range.len());
        pieces.push((dev, range, head));
        rest = tail;
    }
    let one = |dev: usize, range: Range<usize>, out: &mut [T], t0: Instant| -> Result<Outcome> {
        let run =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ctx.run(dev, &range, out)));
        let (stats, secs) = run.unwrap_or_else(|_| Err(panicked(ctx, dev)))?;
        (ctx.learn)(dev, range.len(), secs, &stats);
        let busy_s = if ctx.virtual_clock {
            secs
        } else {
            t0.elapsed().as_secs_f64()
        };
        Ok(Outcome {
            dev,
            range,
            stats,
            busy_s,
            runs: 1,
        })
    };
    let t0 = Instant::now();
    type Done<'o, T> = (usize, Range<usize>, &'o mut [T], Result<Outcome>);
    let done: Vec<Done<'_, T>> = if ctx.virtual_clock || pieces.len() <= 1 {
        pieces
            .into_iter()
            .map(|(d, r, o)| {
                let res = one(d, r.clone(), &mut *o, t0);
                (d, r, o, res)
            })
            .collect()
    } else {
        let last = pieces.pop();
        std::thread::scope(|s| {
            let handles: Vec<_> = pieces
                .into_iter()
                .map(|(d, r, o)| {
                    let h = s.spawn(move || {
                        let res = one(d, r.clone(), &mut *o, t0);
                        (d, r, o, res)
                    });
                    (d, h)
                })
                .collect();
            let mine = last.map(|(d, r, o)| {
                let res = one(d, r.clone(), &mut *o, t0);
                (d, r, o, res)
            });
            let mut all = Vec::with_capacity(handles.len() + 1);
            for (d, h) in handles {
                // `one` catches panics, so a join fails only if unwinding itself did
                all.push(h.join().map_err(|_| panicked(ctx, d))?);
            }
            all.extend(mine);
            Ok::<_, Error>(all)
        })?
    };
    let mut outcomes = Vec::with_capacity(done.len());
    let mut orphans = Vec::new();
    for (d, r, o, res) in done {
        match res {
            Ok(oc) => outcomes.push(oc),
            Err(e) if device_fault(&e) => orphans.push((d, r, o, e)),
            Err(e) => return Err(e),
        }
    }
    let mut failures = Vec::new();
    recover(ctx, orphans, &mut outcomes, &mut failures, t0)?;
    Ok((outcomes, failures))
}

/// One device on the line.
struct Lane {
    dev: usize,
    cost: Cost,
    min_chunk: usize,
    /// Elements it still means to take, from which gap, from that gap's left end?
    intent: usize,
    gap: usize,
    from_left: bool,
    /// Elements taken so far: `lo..hi`.
    lo: usize,
    hi: usize,
    stats: ShareStats,
    runs: u32,
    busy_s: f64,
    /// The run in flight: when it started, when it is predicted to end.
    flight: Option<(f64, f64)>,
    done: bool,
}

fn min_chunk(c: &Cost) -> usize {
    let fixed = c.fixed_s + c.fill_elems * c.fill_extra_s;
    let n = fixed / (OVERHEAD_SHARE * c.per_elem_s.max(1e-18));
    if n >= 1e15 {
        usize::MAX / 4
    } else {
        (n.ceil() as usize).max(MIN_CHUNK)
    }
}

/// Elements nobody has taken yet, `start..start + out.len()`.
struct Gap<'o, T> {
    start: usize,
    out: &'o mut [T],
}

enum Step<'o, T> {
    Run(Range<usize>, &'o mut [T]),
    Wait,
    Done,
}

struct Line<'o, T> {
    lanes: Vec<Lane>,
    gaps: Vec<Gap<'o, T>>,
    error: Option<Error>,
    /// Runs whose device failed, to be redone elsewhere.
    orphans: Vec<Orphan<'o, T>>,
}

impl<'o, T> Line<'o, T> {
    /// Lanes in line order with their planned shares (all > 0), over `out`.
    fn new(plan: &[(usize, Cost, usize)], out: &'o mut [T]) -> Line<'o, T> {
        let n = out.len();
        let l = plan.len();
        let mut lanes = Vec::with_capacity(l);
        let mut gaps = Vec::with_capacity(l.max(1));
        let mut rest = out;
        let mut at = 0;
        for (j, &(dev, cost, share)) in plan.iter().enumerate() {
            let last = j + 1 == l && l > 1;
            let (start, gap, from_left) = if last {
                (n, j - 1, false)
            } else {
                (at, j, true)
            };
            if !last {
                // the gap right of lane j: its share, and the last lane's too
                let len = if j + 2 >= l { n - at } else { share };
                let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
                gaps.push(Gap {
                    start: at,
                    out: head,
                });
                rest = tail;
            }
            lanes.push(Lane {
                dev,
                cost,
                min_chunk: min_chunk(&cost),
                intent: share,
                gap,
                from_left,
                lo: start,
                hi: start,
                stats: ShareStats::default(),
                runs: 0,
                busy_s: 0.0,
                flight: None,
                done: false,
            });
            at += share;
        }
        Line {
            lanes,
            gaps,
            error: None,
            orphans: Vec::new(),
        }
    }

    fn in_flight(&self) -> bool {
        self.lanes.iter().any(|l| l.flight.is_some())
    }

    /// Takes `c` elements for lane `j` from one end of gap `g`.
    fn take(&mut self, j: usize, g: usize, from_left: bool, c: usize) -> Step<'o, T> {
        let gap = &mut self.gaps[g];
        let s = std::mem::take(&mut gap.out);
        let len = s.len();
        let c = c.min(len);
        let (range, chunk) = if from_left {
            let (a, b) = s.split_at_mut(c);
            gap.out = b;
            let r = gap.start..gap.start + c;
            gap.start += c;
            (r, a)
        } else {
            let (a, b) = s.split_at_mut(len - c);
            gap.out = a;
            (gap.start + len - c..gap.start + len, b)
        };
        let lane = &mut self.lanes[j];
        if from_left {
            lane.hi = range.end;
        } else {
            lane.lo = range.start;
        }
        lane.intent = lane.intent.saturating_sub(c);
        Step::Run(range, chunk)
    }

    /// Lane `e` as seen when splitting gap `g` with it: when it can start there, and
    /// its cost scaled by how overdue its run in flight is.
    fn busy(&self, e: usize, g: usize, now: f64) -> Cost {
        let lane = &self.lanes[e];
        let mut c = lane.cost;
        c.ready_s = now;
        if let Some((start, predicted)) = lane.flight {
            if now <= predicted {
                c.ready_s = predicted;
            } else {
                let ran = now - start;
                let slow = (ran / (predicted - start).max(1e-12)).max(1.0);
                c.ready_s = now + ran;
                c.fixed_s *= slow;
                c.per_elem_s *= slow;
                c.fill_extra_s *= slow;
            }
        }
        // work it means to do in its other gap first
        if lane.intent > 0 && lane.gap != g {
            let elsewhere = self.gaps[lane.gap].out.len().min(lane.intent);
            c.ready_s += c.work_s(elsewhere);
        }
        c
    }

    /// What lane `j`, idle at `now`, does next: it splits each adjacent gap with the
    /// lane across it by their costs (that lane counted busy as [`busy`](Self::busy)
    /// says) and takes a chunk of its part of the gap where its part is largest.
    /// `force`: nobody else will move, take whatever is left beside it.
    fn decide(&mut self, j: usize, now: f64, force: bool) -> Step<'o, T> {
        if self.error.is_some() || self.lanes[j].done {
            return Step::Done;
        }
        let mut sides = Vec::with_capacity(2);
        if j < self.gaps.len() {
            sides.push((j, true, j + 1));
        }
        if j >= 1 {
            sides.push((j - 1, false, j - 1));
        }
        let mut best: Option<(usize, bool, usize, usize)> = None;
        let mut waiting = false;
        for (g, from_left, e) in sides {
            let r = self.gaps[g].out.len();
            if r == 0 {
                continue;
            }
            let gone = e >= self.lanes.len() || self.lanes[e].done;
            let x = if gone || force {
                r
            } else {
                let mut mine = self.lanes[j].cost;
                mine.ready_s = now;
                solve(r, &[mine, self.busy(e, g, now)])[0]
            };
            if x == 0 {
                waiting = true;
            } else if best.is_none_or(|b| x > b.3) {
                best = Some((g, from_left, e, x));
            }
        }
        let Some((g, from_left, e, x)) = best else {
            if waiting {
                return Step::Wait;
            }
            self.lanes[j].done = true;
            return Step::Done;
        };
        let r = self.gaps[g].out.len();
        if e < self.lanes.len() && self.lanes[e].gap == g {
            self.lanes[e].intent = r - x;
        }
        let lane = &mut self.lanes[j];
        lane.intent = x;
        lane.gap = g;
        lane.from_left = from_left;
        let mut c = if x <= 2 * lane.min_chunk {
            x
        } else {
            (x / 2).max(lane.min_chunk)
        };
        if lane.runs == 0 && x >= 2 * MIN_CHUNK {
            // never a whole share at once: a model may be wrong
            c = c.min(x / 2);
        }
        self.take(j, g, from_left, c)
    }

    fn start(&mut self, j: usize, now: f64, n: usize) {
        let lane = &mut self.lanes[j];
        lane.flight = Some((now, now + lane.cost.work_s(n)));
    }

    /// Lane `j`'s run of `n` elements ended at `end` after `secs`. Its cost for the
    /// rest of the call is the updated model scaled to match this run exactly, so a
    /// device slower than its model is seen as such at once.
    /// A run that failed for the device's own fault retires the lane (its
    /// neighbours take its gaps) and leaves its range to be redone.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        j: usize,
        end: f64,
        result: Result<ShareStats>,
        cost: Option<Cost>,
        n: usize,
        secs: f64,
        ran: (Range<usize>, &'o mut [T]),
    ) {
        let lane = &mut self.lanes[j];
        lane.flight = None;
        lane.busy_s = lane.busy_s.max(end);
        match result {
            Ok(s) => {
                add(&mut lane.stats, &s);
                lane.runs += 1;
                if let Some(mut c) = cost {
                    let predicted = c.work_s(n);
                    if predicted > 0.0 && secs > 0.0 {
                        let k = secs / predicted;
                        c.fixed_s *= k;
                        c.per_elem_s *= k;
                        c.fill_extra_s *= k;
                    }
                    lane.cost = Cost { ready_s: 0.0, ..c };
                    lane.min_chunk = min_chunk(&lane.cost);
                }
            }
            Err(e) if device_fault(&e) => {
                let (range, chunk) = ran;
                if range.end == lane.hi {
                    lane.hi = range.start;
                } else if range.start == lane.lo {
                    lane.lo = range.end;
                }
                lane.hi = lane.hi.max(lane.lo);
                lane.done = true;
                lane.intent = 0;
                self.orphans.push((lane.dev, range, chunk, e));
            }
            Err(e) => {
                if self.error.is_none() {
                    self.error = Some(e);
                }
            }
        }
    }

    /// The lanes' runs, and what is left to redo: failed runs, and any gap no
    /// surviving lane reached.
    fn outcomes(self) -> Result<(Vec<Outcome>, Vec<Orphan<'o, T>>)> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut orphans = self.orphans;
        for g in self.gaps.into_iter().filter(|g| !g.out.is_empty()) {
            let why = orphans
                .first()
                .map(|o| o.3.clone())
                .unwrap_or(Error::DeviceFailed {
                    device: "?".into(),
                    stage: "compute",
                    reason: "no device reached these elements".into(),
                });
            let dev = orphans.first().map_or(0, |o| o.0);
            let range = g.start..g.start + g.out.len();
            orphans.push((dev, range, g.out, why));
        }
        let outcomes = self
            .lanes
            .into_iter()
            .filter(|l| l.hi > l.lo)
            .map(|l| Outcome {
                dev: l.dev,
                range: l.lo..l.hi,
                stats: l.stats,
                busy_s: l.busy_s,
                runs: l.runs,
            })
            .collect();
        Ok((outcomes, orphans))
    }
}

/// Runs a planned split with dynamic balancing. `plan` lists `(device, cost, share)`
/// in line order (input order of the shares), every share > 0, summing to
/// `out.len()`.
pub(crate) fn run_balanced<T: Send>(
    ctx: &Ctx<'_, T>,
    plan: &[(usize, Cost, usize)],
    out: &mut [T],
) -> Result<Ran> {
    if plan.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let t0 = Instant::now();
    let line = Line::new(plan, out);
    let (mut outcomes, orphans) = if ctx.virtual_clock {
        simulate(ctx, line)?
    } else {
        threads(ctx, line)?
    };
    let mut failures = Vec::new();
    recover(ctx, orphans, &mut outcomes, &mut failures, t0)?;
    Ok((outcomes, failures))
}

// One per device per call, short-lived: boxing the large variant would only add an
// allocation per run.
#[allow(clippy::large_enum_variant)]
enum State<'o, T> {
    Idle(f64),
    Waiting(f64),
    /// End time, result, the updated cost, elements and seconds, and what ran.
    Flight(
        f64,
        Result<ShareStats>,
        Option<Cost>,
        usize,
        f64,
        (Range<usize>, &'o mut [T]),
    ),
    Done,
}

/// The line as a discrete-event simulation on the devices' virtual clocks.
fn simulate<'o, T: Send>(
    ctx: &Ctx<'_, T>,
    mut line: Line<'o, T>,
) -> Result<(Vec<Outcome>, Vec<Orphan<'o, T>>)> {
    let l = line.lanes.len();
    let mut state: Vec<State<'o, T>> = (0..l).map(|_| State::Idle(0.0)).collect();
    loop {
        // the next event: a run ending (first), else the earliest idle lane
        let mut next: Option<(usize, f64, bool)> = None;
        for (j, s) in state.iter().enumerate() {
            let (t, ends) = match s {
                State::Flight(t, ..) => (*t, true),
                State::Idle(t) => (*t, false),
                _ => continue,
            };
            let better = match next {
                None => true,
                Some((_, bt, bends)) => t < bt || (t == bt && ends && !bends),
            };
            if better {
                next = Some((j, t, ends));
            }
        }
        let Some((j, now, ends)) = next else {
            // everyone left is waiting on nobody: the first one takes what is left
            let Some(w) = state.iter().position(|s| matches!(s, State::Waiting(_))) else {
                break;
            };
            let t = match state[w] {
                State::Waiting(t) => t,
                _ => 0.0,
            };
            match line.decide(w, t, true) {
                Step::Run(range, chunk) => {
                    state[w] = run_virtual(ctx, &mut line, w, t, range, chunk);
                }
                _ => state[w] = State::Done,
            }
            continue;
        };
        if ends {
            if let State::Flight(_, result, cost, n, secs, ran) =
                std::mem::replace(&mut state[j], State::Idle(now))
            {
                line.finish(j, now, result, cost, n, secs, ran);
            }
            for s in state.iter_mut() {
                if let State::Waiting(t) = *s {
                    *s = State::Idle(t.max(now));
                }
            }
            continue;
        }
        state[j] = match line.decide(j, now, false) {
            Step::Run(range, chunk) => run_virtual(ctx, &mut line, j, now, range, chunk),
            Step::Wait => State::Waiting(now),
            Step::Done => State::Done,
        };
    }
    line.outcomes()
}

fn run_virtual<'o, T: Send>(
    ctx: &Ctx<'_, T>,
    line: &mut Line<'o, T>,
    j: usize,
    now: f64,
    range: Range<usize>,
    chunk: &'o mut [T],
) -> State<'o, T> {
    let dev = line.lanes[j].dev;
    line.start(j, now, range.len());
    let n = range.len();
    match ctx.run(dev, &range, &mut *chunk) {
        Ok((stats, secs)) => {
            let cost = (ctx.learn)(dev, n, secs, &stats);
            State::Flight(now + secs, Ok(stats), cost, n, secs, (range, chunk))
        }
        Err(e) => State::Flight(now, Err(e), None, 0, 0.0, (range, chunk)),
    }
}

/// The line on real devices: one thread per lane (the last on the calling thread).
fn threads<'o, T: Send>(
    ctx: &Ctx<'_, T>,
    line: Line<'o, T>,
) -> Result<(Vec<Outcome>, Vec<Orphan<'o, T>>)> {
    let l = line.lanes.len();
    let shared = (Mutex::new(line), Condvar::new());
    let t0 = Instant::now();
    let worker = |j: usize| {
        let (m, cv) = &shared;
        let lock = || m.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let step = {
                let mut g = lock();
                loop {
                    let now = t0.elapsed().as_secs_f64();
                    match g.decide(j, now, false) {
                        Step::Wait if !g.in_flight() => break g.decide(j, now, true),
                        Step::Wait => {
                            g = cv
                                .wait_timeout(g, Duration::from_millis(1))
                                .map(|r| r.0)
                                .unwrap_or_else(|e| e.into_inner().0);
                        }
                        s => break s,
                    }
                }
            };
            let Step::Run(range, chunk) = step else {
                cv.notify_all();
                return;
            };
            let dev = {
                let mut g = lock();
                g.start(j, t0.elapsed().as_secs_f64(), range.len());
                g.lanes[j].dev
            };
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                ctx.run(dev, &range, &mut *chunk)
            }))
            .unwrap_or_else(|_| Err(panicked(ctx, dev)));
            let (cost, secs) = match &result {
                Ok((stats, secs)) => ((ctx.learn)(dev, range.len(), *secs, stats), *secs),
                Err(_) => (None, 0.0),
            };
            let mut g = lock();
            g.finish(
                j,
                t0.elapsed().as_secs_f64(),
                result.map(|r| r.0),
                cost,
                range.len(),
                secs,
                (range, chunk),
            );
            drop(g);
            cv.notify_all();
        }
    };
    let worker = &worker;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..l - 1)
            .map(|j| (j, s.spawn(move || worker(j))))
            .collect();
        worker(l - 1);
        for (j, h) in handles {
            if h.join().is_err() {
                let mut g = shared.0.lock().unwrap_or_else(|e| e.into_inner());
                let dev = g.lanes[j].dev;
                g.error.get_or_insert_with(|| panicked(ctx, dev));
            }
        }
    });
    shared
        .0
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .outcomes()
}
