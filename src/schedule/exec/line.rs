//! The balanced executor's decisions, as a state machine over plain numbers: which
//! elements a device takes next, from which end of which gap. No threads, no devices,
//! no clock of its own: the drivers in `balanced.rs` call it under a lock or in an
//! event loop, and the tests below drive it directly.
//!
//! The devices stand on a line over the input, in plan order; between two neighbours
//! lies a gap of elements nobody has taken yet. Each device eats its planned share from
//! its own end of its gap (the last device from the right, the others from the left),
//! half of what is left at a time and never less than a run whose fixed cost is a few
//! percent of it. A device whose plan is done helps a neighbour: it splits what is left
//! of the neighbour's gap by the models (the neighbour counted as busy until its run is
//! predicted to end, or, when it is overdue, for as long again as it has run) and takes
//! its part from the other end. Help flows along the line, so a slow device is caught
//! up by all the others, and every device's elements stay one contiguous range.

use std::ops::Range;

use super::{device_fault, Orphan, Outcome};
use crate::cost::Cost;
use crate::device::{ShareStats, Timed};
use crate::error::{Error, Result};
use crate::schedule::plan::solve;

/// A run's fixed cost is kept under this fraction of the run (sets the smallest chunk).
const OVERHEAD_SHARE: f64 = 0.03;
/// The smallest chunk handed out, whatever the model says.
const MIN_CHUNK: usize = 1 << 14;

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

/// The smallest chunk worth a run on a device of cost `c`: its fixed cost (launch and
/// pipeline fill) at most [`OVERHEAD_SHARE`] of the run, and never under [`MIN_CHUNK`].
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

/// Elements handed to a lane for one run, with their part of the output.
pub(super) struct Chunk<'o, T> {
    pub(super) range: Range<usize>,
    pub(super) out: &'o mut [T],
}

/// What a lane does next.
pub(super) enum Step<'o, T> {
    /// Run this chunk.
    Run(Chunk<'o, T>),
    /// Wait: a neighbour is predicted to finish what is left sooner.
    Wait,
    /// Nothing is left beside it (or the call failed): the lane is finished.
    Done,
}

/// The lanes and the gaps between them.
pub(super) struct Line<'o, T> {
    lanes: Vec<Lane>,
    gaps: Vec<Gap<'o, T>>,
    error: Option<Error>,
    /// Runs whose device failed, to be redone elsewhere.
    orphans: Vec<Orphan<'o, T>>,
}

impl<'o, T> Line<'o, T> {
    /// Lanes in line order with their planned `(device, cost, share)` (shares all > 0,
    /// summing to `out.len()`), over `out`.
    pub(super) fn new(plan: &[(usize, Cost, usize)], out: &'o mut [T]) -> Line<'o, T> {
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

    /// Number of lanes.
    pub(super) fn len(&self) -> usize {
        self.lanes.len()
    }

    /// The device of lane `j`.
    pub(super) fn dev(&self, j: usize) -> usize {
        self.lanes[j].dev
    }

    /// Whether any lane has a run in flight.
    pub(super) fn in_flight(&self) -> bool {
        self.lanes.iter().any(|l| l.flight.is_some())
    }

    /// Fails the call with `e`, unless it has failed already; every lane is then done.
    pub(super) fn fail(&mut self, e: Error) {
        self.error.get_or_insert(e);
    }

    /// Takes `c` elements for lane `j` from one end of gap `g`.
    fn take(&mut self, j: usize, g: usize, from_left: bool, c: usize) -> Step<'o, T> {
        let gap = &mut self.gaps[g];
        let s = std::mem::take(&mut gap.out);
        let len = s.len();
        let c = c.min(len);
        let (range, out) = if from_left {
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
        Step::Run(Chunk { range, out })
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
    pub(super) fn decide(&mut self, j: usize, now: f64, force: bool) -> Step<'o, T> {
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

    /// Lane `j` starts a run of `n` elements at `now`.
    pub(super) fn start(&mut self, j: usize, now: f64, n: usize) {
        let lane = &mut self.lanes[j];
        lane.flight = Some((now, now + lane.cost.work_s(n)));
    }

    /// Lane `j`'s run of `chunk` ended at `end`, with its stats and seconds or an error.
    /// Its cost for the rest of the call is the updated model (`cost`) scaled to match
    /// this run exactly, so a device slower than its model is seen as such at once.
    /// A run that failed for the device's own fault retires the lane (its neighbours
    /// take its gaps) and leaves its chunk to be redone.
    pub(super) fn finish(
        &mut self,
        j: usize,
        end: f64,
        chunk: Chunk<'o, T>,
        result: Result<Timed>,
        cost: Option<Cost>,
    ) {
        let lane = &mut self.lanes[j];
        lane.flight = None;
        lane.busy_s = lane.busy_s.max(end);
        match result {
            Ok(Timed { stats: s, secs }) => {
                lane.stats.add(&s);
                lane.runs += 1;
                if let Some(mut c) = cost {
                    let predicted = c.work_s(chunk.range.len());
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
            Err(error) if device_fault(&error) => {
                let Chunk { range, out } = chunk;
                if range.end == lane.hi {
                    lane.hi = range.start;
                } else if range.start == lane.lo {
                    lane.lo = range.end;
                }
                lane.hi = lane.hi.max(lane.lo);
                lane.done = true;
                lane.intent = 0;
                self.orphans.push(Orphan {
                    dev: lane.dev,
                    range,
                    out,
                    error,
                });
            }
            Err(e) => self.fail(e),
        }
    }

    /// The lanes' runs, and what is left to redo: failed runs, and any gap no
    /// surviving lane reached.
    pub(super) fn outcomes(self) -> Result<(Vec<Outcome>, Vec<Orphan<'o, T>>)> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut orphans = self.orphans;
        for g in self.gaps.into_iter().filter(|g| !g.out.is_empty()) {
            let error = orphans
                .first()
                .map(|o| o.error.clone())
                .unwrap_or(Error::DeviceFailed {
                    device: "?".into(),
                    stage: "compute",
                    reason: "no device reached these elements".into(),
                });
            let dev = orphans.first().map_or(0, |o| o.dev);
            let range = g.start..g.start + g.out.len();
            orphans.push(Orphan {
                dev,
                range,
                out: g.out,
                error,
            });
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

#[cfg(test)]
mod tests {
    //! The line driven by hand, with no devices and no clock but the test's: every
    //! interleaving of decisions and run ends a driver could produce is fair game, so
    //! the driver here picks them at random (seeded) and checks the invariants after
    //! every step.

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// An element nobody has written.
    const FREE: u32 = u32::MAX;
    /// An element redone after its device failed.
    const REDONE: u32 = u32::MAX - 1;

    fn fault() -> Error {
        Error::DeviceFailed {
            device: "test".into(),
            stage: "compute",
            reason: "injected".into(),
        }
    }

    /// A random plan over `n >= lanes` elements: `(device, cost, share)` per lane,
    /// devices numbered from 10 so that a lane index used as a device shows.
    fn random_plan(r: &mut ChaCha8Rng, n: usize) -> Vec<(usize, Cost, usize)> {
        let lanes = r.random_range(1..=4usize).min(n);
        let mut cuts: Vec<usize> = (0..lanes - 1).map(|_| r.random_range(1..n)).collect();
        cuts.push(0);
        cuts.push(n);
        cuts.sort_unstable();
        cuts.dedup();
        cuts.windows(2)
            .enumerate()
            .map(|(j, w)| {
                let fixed = if r.random_bool(0.5) {
                    r.random::<f64>() * 1e-4
                } else {
                    0.0
                };
                let per = 1e-10 + r.random::<f64>() * 1e-8;
                (10 + j, Cost::affine(fixed, per), w[1] - w[0])
            })
            .collect()
    }

    /// What a lane is doing in the hand driver.
    enum Doing<'o> {
        Idle,
        Waiting,
        Running(Chunk<'o, u32>, bool),
        Done,
    }

    /// Checks one decision of lane `j` that ran `c` elements: the chunk rules, and
    /// that the two lanes on the gap it took from mean to take exactly what is left.
    fn check_run(line: &Line<'_, u32>, j: usize, c: usize, first: bool, why: &str) {
        let lane = &line.lanes[j];
        let g = lane.gap;
        let left = line.gaps[g].out.len();
        // its part of the gap before this run (what it still means to take, plus it)
        let x = lane.intent + c;
        let m = lane.min_chunk;
        assert!(c >= 1, "{why}: an empty run");
        if first && x >= 2 * MIN_CHUNK {
            // a model may be wrong: never a whole part at once, even under the
            // model's smallest chunk, but never under the floor either
            assert!(
                c <= x / 2,
                "{why}: first run {c} more than half of part {x}"
            );
            assert!(c >= MIN_CHUNK, "{why}: first run {c} under {MIN_CHUNK}");
        } else {
            assert!(
                c >= x.min(m),
                "{why}: run {c} < smallest chunk {m} of part {x}"
            );
        }
        if x > 2 * m {
            assert!(c <= x / 2, "{why}: run {c} more than half of part {x}");
        }
        // the neighbour across the gap, if it still counts on that gap
        let e = if lane.from_left { j + 1 } else { j - 1 };
        if e < line.lanes.len() && !line.lanes[e].done && line.lanes[e].gap == g {
            assert_eq!(
                lane.intent + line.lanes[e].intent,
                left,
                "{why}: lanes {j} and {e} do not mean to take what is left of gap {g}"
            );
        } else {
            assert!(
                lane.intent <= left,
                "{why}: intends more than the gap holds"
            );
        }
    }

    /// Drives `plan` over `n` elements through random interleavings; each run fails
    /// for its device's fault with probability `fail`. Checks every step, and at the
    /// end that each element was taken exactly once, by a lane whose elements are one
    /// range, or is left to be redone.
    fn drive(plan: &[(usize, Cost, usize)], n: usize, seed: u64, fail: f64) -> Vec<Outcome> {
        let why = |s: &str| format!("seed {seed}, plan {plan:?}: {s}");
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        let mut out = vec![FREE; n];
        let mut line = Line::new(plan, &mut out);
        let l = line.len();
        let mut doing: Vec<Doing<'_>> = (0..l).map(|_| Doing::Idle).collect();
        let mut failed = vec![false; l];
        let mut now = 0.0;
        for _step in 0..1_000_000 {
            let idle: Vec<usize> = (0..l)
                .filter(|&j| matches!(doing[j], Doing::Idle))
                .collect();
            let flying: Vec<usize> = (0..l)
                .filter(|&j| matches!(doing[j], Doing::Running(..)))
                .collect();
            now += r.random::<f64>() * 1e-4;
            if !flying.is_empty() && (idle.is_empty() || r.random_bool(0.5)) {
                // a run ends
                let j = flying[r.random_range(0..flying.len())];
                let Doing::Running(chunk, fails) = std::mem::replace(&mut doing[j], Doing::Idle)
                else {
                    unreachable!()
                };
                let result = if fails {
                    failed[j] = true;
                    chunk.out.fill(FREE);
                    Err(fault())
                } else {
                    Ok(Timed {
                        stats: ShareStats::default(),
                        secs: r.random::<f64>() * 1e-3,
                    })
                };
                let cost = (!fails && r.random_bool(0.5)).then(|| {
                    let c = line.lanes[j].cost;
                    Cost::affine(c.fixed_s * 2.0, c.per_elem_s * (0.2 + r.random::<f64>()))
                });
                line.finish(j, now, chunk, result, cost);
                for d in doing.iter_mut().filter(|d| matches!(d, Doing::Waiting)) {
                    *d = Doing::Idle;
                }
                continue;
            }
            let (j, force) = if let Some(&j) = idle.get(r.random_range(0..idle.len().max(1))) {
                (j, false)
            } else if let Some(j) = (0..l).find(|&j| matches!(doing[j], Doing::Waiting)) {
                // everyone left waits on nobody
                (j, true)
            } else {
                break;
            };
            let first = line.lanes[j].runs == 0 && line.lanes[j].hi == line.lanes[j].lo;
            doing[j] = match line.decide(j, now, force) {
                Step::Run(chunk) => {
                    let c = chunk.range.len();
                    assert_eq!(c, chunk.out.len(), "{}", why("range and output differ"));
                    if !force {
                        check_run(&line, j, c, first, &why(&format!("lane {j}")));
                    }
                    let dev = line.lanes[j].dev as u32;
                    for (k, v) in chunk.out.iter_mut().enumerate() {
                        let at = chunk.range.start + k;
                        assert_eq!(*v, FREE, "{}", why(&format!("element {at} taken twice")));
                        *v = dev;
                    }
                    line.start(j, now, c);
                    Doing::Running(chunk, r.random_bool(fail))
                }
                Step::Wait => {
                    assert!(!force, "{}", why("a forced lane waits"));
                    Doing::Waiting
                }
                Step::Done => {
                    let beside = [Some(j), j.checked_sub(1)];
                    let empty = beside
                        .iter()
                        .flatten()
                        .filter(|&&g| g < line.gaps.len())
                        .all(|&g| line.gaps[g].out.is_empty());
                    assert!(
                        empty || failed[j],
                        "{}",
                        why(&format!("lane {j} retires beside elements left"))
                    );
                    Doing::Done
                }
            };
        }
        assert!(
            doing.iter().all(|d| matches!(d, Doing::Done)),
            "{}",
            why("the line did not finish")
        );
        let (outcomes, orphans) = match line.outcomes() {
            Ok(o) => o,
            Err(e) => panic!("{}", why(&format!("{e}"))),
        };
        for o in orphans {
            assert_eq!(o.range.len(), o.out.len(), "{}", why("orphan"));
            assert!(
                o.out.iter().all(|&v| v == FREE),
                "{}",
                why("orphan written")
            );
            o.out.fill(REDONE);
        }
        assert!(
            out.iter().all(|&v| v != FREE),
            "{}",
            why("an element nobody took")
        );
        let mut covered = 0;
        for o in &outcomes {
            let dev = o.dev as u32;
            assert!(
                out[o.range.clone()].iter().all(|&v| v == dev),
                "{}",
                why(&format!("device {} range {:?} not its own", o.dev, o.range))
            );
            let all = out.iter().filter(|&&v| v == dev).count();
            assert_eq!(all, o.range.len(), "{}", why("a device's elements apart"));
            covered += all;
        }
        let redone = out.iter().filter(|&&v| v == REDONE).count();
        assert_eq!(covered + redone, n, "{}", why("elements lost"));
        if fail == 0.0 {
            assert_eq!(redone, 0, "{}", why("work left with no failure"));
        }
        outcomes
    }

    #[test]
    fn every_element_is_taken_once_in_every_interleaving() {
        let mut r = ChaCha8Rng::seed_from_u64(1);
        for seed in 0..400u64 {
            let n = match seed % 4 {
                0 => r.random_range(1..64),
                1 => r.random_range(1..100_000),
                _ => r.random_range(100_000..2_000_000),
            };
            let plan = random_plan(&mut r, n);
            let outcomes = drive(&plan, n, seed, 0.0);
            let lanes = plan.len();
            assert!(
                outcomes.len() <= lanes,
                "seed {seed}: more outcomes than lanes"
            );
        }
    }

    #[test]
    fn failed_runs_are_left_whole_to_be_redone() {
        let mut r = ChaCha8Rng::seed_from_u64(2);
        for seed in 0..300u64 {
            let n = r.random_range(1..1_500_000);
            let plan = random_plan(&mut r, n);
            drive(&plan, n, 10_000 + seed, 0.05 + 0.3 * (seed % 3) as f64);
        }
    }

    #[test]
    fn lanes_start_at_their_own_end_of_their_gap() {
        let c = Cost::affine(0.0, 1e-9);
        let plan = [(0, c, 100_000), (1, c, 100_000), (2, c, 100_000)];
        let mut out = vec![0u8; 300_000];
        let mut line = Line::new(&plan, &mut out);
        let mut ranges = Vec::new();
        for j in 0..3 {
            let Step::Run(chunk) = line.decide(j, 0.0, false) else {
                panic!("lane {j} does not start");
            };
            line.start(j, 0.0, chunk.range.len());
            ranges.push(chunk.range);
        }
        // half of each share at first, the last lane from the right
        assert_eq!(ranges, [0..50_000, 100_000..150_000, 250_000..300_000]);
    }

    #[test]
    fn a_lane_splits_what_is_left_with_a_busy_neighbour_and_takes_the_far_end() {
        let c = Cost::affine(0.0, 1e-8);
        let plan = [(0, c, 100_000), (1, c, 100_001)];
        let mut out = vec![0u8; 200_001];
        let mut line = Line::new(&plan, &mut out);
        let Step::Run(a) = line.decide(0, 0.0, false) else {
            panic!("lane 0 does not start");
        };
        // its part is half the gap (lane 1 is idle too), and it runs half of that
        assert_eq!(a.range, 0..50_000);
        line.start(0, 0.0, a.range.len());
        // lane 0 is busy until 0.5 ms (50k x 10 ns): of the 150,001 left, lane 1
        // (idle now) should take 50k more than lane 0, from the far end
        let Step::Run(b) = line.decide(1, 0.0, false) else {
            panic!("lane 1 does not start");
        };
        assert_eq!(b.range.end, 200_001, "from the far end");
        let part = line.lanes[1].intent + b.range.len();
        assert!((100_000..=100_001).contains(&part), "part {part}");
        assert_eq!(b.range.len(), part / 2);
        assert_eq!(line.lanes[0].intent, 150_001 - part);
    }

    #[test]
    fn a_busy_neighbour_counts_as_busy_until_its_run_ends_or_twice_as_long_when_overdue() {
        let c = Cost::affine(1e-3, 1e-8);
        let plan = [(0, c, 1_000_000), (1, c, 1_000_000)];
        let mut out = vec![0u8; 2_000_000];
        let mut line = Line::new(&plan, &mut out);
        let Step::Run(a) = line.decide(0, 0.0, false) else {
            panic!("lane 0 does not start");
        };
        // a run of 500k elements: predicted 1 ms + 5 ms, from 1 s
        assert_eq!(a.range.len(), 500_000);
        line.start(0, 1.0, a.range.len());
        line.lanes[0].intent = 0;
        let on_time = line.busy(0, 0, 1.004);
        assert!((on_time.ready_s - 1.006).abs() < 1e-12, "{on_time:?}");
        assert_eq!(on_time.per_elem_s, 1e-8);
        // 12 ms into a 6 ms run: busy for 12 ms more, and twice as slow as modelled
        let overdue = line.busy(0, 0, 1.012);
        assert!((overdue.ready_s - 1.024).abs() < 1e-9, "{overdue:?}");
        assert!((overdue.per_elem_s - 2e-8).abs() < 1e-20, "{overdue:?}");
        assert!((overdue.fixed_s - 2e-3).abs() < 1e-15, "{overdue:?}");
        // a lane first does what it means to do in its own gap: lane 1 of three means
        // to take its 10k share of gap 1 before it could take anything of gap 0
        let plan = [(0, c, 10_000), (1, c, 10_000), (2, c, 10_000)];
        let mut out = vec![0u8; 30_000];
        let line = Line::new(&plan, &mut out);
        let there = line.busy(1, 0, 2.0);
        assert!((there.ready_s - 2.0011).abs() < 1e-12, "{there:?}");
        assert_eq!(line.busy(1, 1, 2.0).ready_s, 2.0);
    }

    #[test]
    fn the_smallest_chunk_pays_its_fixed_cost_a_few_percent() {
        assert_eq!(min_chunk(&Cost::affine(0.0, 1e-9)), MIN_CHUNK);
        // 1 ms fixed at 1 ns per element: 3% of a run of 33.3M elements
        assert_eq!(min_chunk(&Cost::affine(1e-3, 1e-9)), 33_333_334);
        let mut filled = Cost::affine(0.0, 1e-9);
        filled.fill_elems = 1000.0;
        filled.fill_extra_s = 1e-6;
        assert_eq!(min_chunk(&filled), 33_333_334);
        assert_eq!(min_chunk(&Cost::affine(1.0, 0.0)), usize::MAX / 4);
    }

    #[test]
    fn an_error_that_is_not_the_devices_ends_every_lane() {
        let c = Cost::affine(0.0, 1e-9);
        let plan = [(0, c, 100_000), (1, c, 100_000)];
        let mut out = vec![0u8; 200_000];
        let mut line = Line::new(&plan, &mut out);
        let Step::Run(a) = line.decide(0, 0.0, false) else {
            panic!("lane 0 does not start");
        };
        line.start(0, 0.0, a.range.len());
        let e = Error::LengthMismatch { left: 1, right: 2 };
        line.finish(0, 0.1, a, Err(e), None);
        assert!(matches!(line.decide(1, 0.1, false), Step::Done));
        assert!(matches!(
            line.outcomes(),
            Err(Error::LengthMismatch { left: 1, right: 2 })
        ));
    }
}
