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
    pub(crate) runner: &'a Runner<'a, T>,
    pub(crate) virtual_clock: bool,
    pub(crate) learn: &'a Learn<'a>,
}

impl<T> Ctx<'_, T> {
    fn run(&self, dev: usize, range: &Range<usize>, out: &mut [T]) -> Result<(ShareStats, f64)> {
        (self.runner)(dev, range, out)
    }
}

fn add(a: &mut ShareStats, b: &ShareStats) {
    a.bytes_to_device += b.bytes_to_device;
    a.bytes_from_device += b.bytes_from_device;
    a.upload_s += b.upload_s;
    a.compute_s += b.compute_s;
    a.download_s += b.download_s;
    a.chunks += b.chunks;
    a.transfer.absorb(&b.transfer);
}

fn panicked<T>(ctx: &Ctx<'_, T>, dev: usize) -> Error {
    Error::DeviceFailed {
        device: ctx.devices[dev].info().name.clone(),
        stage: "compute",
        reason: "worker thread panicked".into(),
    }
}

/// Runs each `(device, range)` as one run, all at the same time (one after another
/// on a virtual clock, each on its own clock). `out` covers the ranges, in order.
pub(crate) fn run_static<T: Send>(
    ctx: &Ctx<'_, T>,
    parts: Vec<(usize, Range<usize>)>,
    out: &mut [T],
) -> Result<Vec<Outcome>> {
    let mut pieces = Vec::with_capacity(parts.len());
    let mut rest = out;
    for (dev, range) in parts.into_iter().filter(|p| !p.1.is_empty()) {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(range.len());
        pieces.push((dev, range, head));
        rest = tail;
    }
    let one = |dev: usize, range: Range<usize>, out: &mut [T], t0: Instant| -> Result<Outcome> {
        let (stats, secs) = ctx.run(dev, &range, out)?;
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
    if ctx.virtual_clock || pieces.len() <= 1 {
        return pieces
            .into_iter()
            .map(|(d, r, o)| one(d, r, o, t0))
            .collect();
    }
    let Some((ld, lr, lo)) = pieces.pop() else {
        return Ok(Vec::new());
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = pieces
            .into_iter()
            .map(|(d, r, o)| (d, s.spawn(move || one(d, r, o, t0))))
            .collect();
        let mine = one(ld, lr, lo, t0);
        let mut all = Vec::with_capacity(handles.len() + 1);
        for (d, h) in handles {
            all.push(h.join().unwrap_or_else(|_| Err(panicked(ctx, d)))?);
        }
        all.push(mine?);
        Ok(all)
    })
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
    fn finish(
        &mut self,
        j: usize,
        end: f64,
        result: Result<ShareStats>,
        cost: Option<Cost>,
        n: usize,
        secs: f64,
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
            Err(e) => {
                if self.error.is_none() {
                    self.error = Some(e);
                }
            }
        }
    }

    fn outcomes(self) -> Result<Vec<Outcome>> {
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok(self
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
            .collect())
    }
}

/// Runs a planned split with dynamic balancing. `plan` lists `(device, cost, share)`
/// in line order (input order of the shares), every share > 0, summing to
/// `out.len()`.
pub(crate) fn run_balanced<T: Send>(
    ctx: &Ctx<'_, T>,
    plan: &[(usize, Cost, usize)],
    out: &mut [T],
) -> Result<Vec<Outcome>> {
    if plan.is_empty() {
        return Ok(Vec::new());
    }
    let line = Line::new(plan, out);
    if ctx.virtual_clock {
        simulate(ctx, line)
    } else {
        threads(ctx, line)
    }
}

// One per device per call, short-lived: boxing the large variant would only add an
// allocation per run.
#[allow(clippy::large_enum_variant)]
enum State {
    Idle(f64),
    Waiting(f64),
    /// End time, result, the updated cost, elements and seconds.
    Flight(f64, Result<ShareStats>, Option<Cost>, usize, f64),
    Done,
}

/// The line as a discrete-event simulation on the devices' virtual clocks.
fn simulate<T: Send>(ctx: &Ctx<'_, T>, mut line: Line<'_, T>) -> Result<Vec<Outcome>> {
    let l = line.lanes.len();
    let mut state: Vec<State> = (0..l).map(|_| State::Idle(0.0)).collect();
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
            if let State::Flight(_, result, cost, n, secs) =
                std::mem::replace(&mut state[j], State::Idle(now))
            {
                line.finish(j, now, result, cost, n, secs);
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

fn run_virtual<T: Send>(
    ctx: &Ctx<'_, T>,
    line: &mut Line<'_, T>,
    j: usize,
    now: f64,
    range: Range<usize>,
    chunk: &mut [T],
) -> State {
    let dev = line.lanes[j].dev;
    line.start(j, now, range.len());
    match ctx.run(dev, &range, chunk) {
        Ok((stats, secs)) => {
            let cost = (ctx.learn)(dev, range.len(), secs, &stats);
            State::Flight(now + secs, Ok(stats), cost, range.len(), secs)
        }
        Err(e) => State::Flight(now, Err(e), None, 0, 0.0),
    }
}

/// The line on real devices: one thread per lane (the last on the calling thread).
fn threads<T: Send>(ctx: &Ctx<'_, T>, line: Line<'_, T>) -> Result<Vec<Outcome>> {
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
                ctx.run(dev, &range, chunk)
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
