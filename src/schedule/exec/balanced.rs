//! Balanced runs (`Auto`): the [`Line`]'s decisions driven on real devices, one thread
//! per lane, or as a discrete-event simulation on the devices' virtual clocks. The
//! drivers only order events; every choice of what runs where is the line's.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::fixed::recover;
use super::line::{Chunk, Line, Step};
use super::{Ctx, Executed, Orphan, Outcome};
use crate::cost::Cost;
use crate::device::Timed;
use crate::error::Result;

/// Runs a planned split with dynamic balancing. `plan` lists `(device, cost, share)`
/// in line order (input order of the shares), every share > 0, summing to
/// `out.len()`.
pub(crate) fn run_balanced<T: Send>(
    ctx: &Ctx<'_, T>,
    plan: &[(usize, Cost, usize)],
    out: &mut [T],
) -> Result<Executed> {
    if plan.is_empty() {
        return Ok(Executed::default());
    }
    let t0 = Instant::now();
    let line = Line::new(plan, out);
    let (outcomes, orphans) = if ctx.virtual_clock {
        simulate(ctx, line)?
    } else {
        threads(ctx, line)?
    };
    let mut executed = Executed {
        outcomes,
        failures: Vec::new(),
    };
    recover(ctx, orphans, &mut executed, t0)?;
    Ok(executed)
}

/// What the line leaves: the lanes' runs, and the work to redo elsewhere.
type Left<'o, T> = (Vec<Outcome>, Vec<Orphan<'o, T>>);

/// A lane in the simulation.
// One per device per call, short-lived: boxing the large variant would only add an
// allocation per run.
#[allow(clippy::large_enum_variant)]
enum State<'o, T> {
    /// Free to decide from this time on.
    Idle(f64),
    /// Told to wait at this time, until another lane's run ends.
    Waiting(f64),
    /// Running a chunk until `end`; what the run gave and the updated cost.
    Flight(Flight<'o, T>),
    Done,
}

/// A simulated run: it has already run on its device, and ends at `end` on the clock.
struct Flight<'o, T> {
    end: f64,
    chunk: Chunk<'o, T>,
    result: Result<Timed>,
    cost: Option<Cost>,
}

/// The line as a discrete-event simulation on the devices' virtual clocks.
fn simulate<'o, T: Send>(ctx: &Ctx<'_, T>, mut line: Line<'o, T>) -> Result<Left<'o, T>> {
    let mut state: Vec<State<'o, T>> = (0..line.len()).map(|_| State::Idle(0.0)).collect();
    loop {
        // the next event: a run ending (first), else the earliest idle lane
        let mut next: Option<(usize, f64, bool)> = None;
        for (j, s) in state.iter().enumerate() {
            let (t, ends) = match s {
                State::Flight(f) => (f.end, true),
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
            state[w] = match line.decide(w, t, true) {
                Step::Run(chunk) => run_virtual(ctx, &mut line, w, t, chunk),
                _ => State::Done,
            };
            continue;
        };
        if ends {
            if let State::Flight(f) = std::mem::replace(&mut state[j], State::Idle(now)) {
                line.finish(j, now, f.chunk, f.result, f.cost);
            }
            for s in state.iter_mut() {
                if let State::Waiting(t) = *s {
                    *s = State::Idle(t.max(now));
                }
            }
            continue;
        }
        state[j] = match line.decide(j, now, false) {
            Step::Run(chunk) => run_virtual(ctx, &mut line, j, now, chunk),
            Step::Wait => State::Waiting(now),
            Step::Done => State::Done,
        };
    }
    line.outcomes()
}

/// Runs lane `j`'s chunk at `now` on the virtual clock: the device runs it at once,
/// and the run ends (for the line) its seconds later.
fn run_virtual<'o, T: Send>(
    ctx: &Ctx<'_, T>,
    line: &mut Line<'o, T>,
    j: usize,
    now: f64,
    chunk: Chunk<'o, T>,
) -> State<'o, T> {
    let dev = line.dev(j);
    let n = chunk.range.len();
    line.start(j, now, n);
    let result = ctx.run(dev, &chunk.range, &mut *chunk.out);
    let (end, cost) = match &result {
        Ok(Timed { stats, secs }) => (now + secs, (ctx.learn)(dev, n, *secs, stats)),
        Err(_) => (now, None),
    };
    State::Flight(Flight {
        end,
        chunk,
        result,
        cost,
    })
}

/// The line on real devices: one thread per lane (the last on the calling thread).
fn threads<'o, T: Send>(ctx: &Ctx<'_, T>, line: Line<'o, T>) -> Result<Left<'o, T>> {
    let l = line.len();
    let shared = (Mutex::new(line), Condvar::new());
    let t0 = Instant::now();
    let worker = |j: usize| {
        let (m, cv) = &shared;
        let lock = || crate::sync::lock(m);
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
            let Step::Run(chunk) = step else {
                cv.notify_all();
                return;
            };
            let dev = {
                let mut g = lock();
                g.start(j, t0.elapsed().as_secs_f64(), chunk.range.len());
                g.dev(j)
            };
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                ctx.run(dev, &chunk.range, &mut *chunk.out)
            }))
            .unwrap_or_else(|_| Err(ctx.panicked(dev)));
            let cost = match &result {
                Ok(Timed { stats, secs }) => (ctx.learn)(dev, chunk.range.len(), *secs, stats),
                Err(_) => None,
            };
            let mut g = lock();
            g.finish(j, t0.elapsed().as_secs_f64(), chunk, result, cost);
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
                let mut g = crate::sync::lock(&shared.0);
                let dev = g.dev(j);
                g.fail(ctx.panicked(dev));
            }
        }
    });
    crate::sync::into_inner(shared.0).outcomes()
}

#[cfg(test)]
mod tests {
    //! The drivers with synthetic devices: a runner that marks the elements it is
    //! given and reports the seconds a "true" cost says, no device behind it.

    use std::ops::Range;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::device::ShareStats;
    use crate::schedule::plan::{makespan_s, solve};

    const FREE: u32 = u32::MAX;

    /// Runs `plan` (models) over `n` elements on devices whose real costs are `truth`,
    /// with `stall(dev, run)` extra seconds on a run. Checks that every element ran
    /// once, each device's elements one range, and returns the outcomes by device.
    fn run(
        plan: &[(usize, Cost, usize)],
        truth: &[Cost],
        virtual_clock: bool,
        stall: &(dyn Fn(usize, u32) -> f64 + Sync),
    ) -> Vec<Option<Outcome>> {
        let n: usize = plan.iter().map(|p| p.2).sum();
        let runs: Vec<AtomicU32> = truth.iter().map(|_| AtomicU32::new(0)).collect();
        let runner = |dev: usize, range: &Range<usize>, out: &mut [u32]| {
            assert_eq!(range.len(), out.len());
            assert!(out.iter().all(|&v| v == FREE), "{range:?} taken twice");
            out.fill(dev as u32);
            let k = runs[dev].fetch_add(1, Ordering::Relaxed);
            let extra = stall(dev, k);
            if !virtual_clock && extra > 0.0 {
                std::thread::sleep(Duration::from_secs_f64(extra));
            }
            Ok(Timed {
                stats: ShareStats::default(),
                secs: truth[dev].work_s(range.len()) + extra,
            })
        };
        // the models learn nothing: the line scales them to each run it sees
        let learn = |dev: usize, _: usize, _: f64, _: &ShareStats| {
            plan.iter().find(|p| p.0 == dev).map(|p| p.1)
        };
        let ctx = Ctx {
            devices: &[],
            healthy: &[],
            runner: &runner,
            virtual_clock,
            learn: &learn,
        };
        let mut out = vec![FREE; n];
        let executed = run_balanced(&ctx, plan, &mut out).unwrap_or_else(|e| panic!("{e}"));
        assert!(executed.failures.is_empty());
        assert!(out.iter().all(|&v| v != FREE), "an element nobody ran");
        let mut by_dev = vec![None; truth.len()];
        for o in executed.outcomes {
            let mine = out.iter().filter(|&&v| v == o.dev as u32).count();
            assert_eq!(
                mine,
                o.range.len(),
                "device {} ran apart from {:?}",
                o.dev,
                o.range
            );
            assert!(out[o.range.clone()].iter().all(|&v| v == o.dev as u32));
            assert_eq!(o.runs, runs[o.dev].load(Ordering::Relaxed));
            let dev = o.dev;
            by_dev[dev] = Some(o);
        }
        by_dev
    }

    fn no_stall(_: usize, _: u32) -> f64 {
        0.0
    }

    fn elements(o: &Option<Outcome>) -> usize {
        o.as_ref().map_or(0, |o| o.range.len())
    }

    fn makespan(by_dev: &[Option<Outcome>]) -> f64 {
        by_dev
            .iter()
            .flatten()
            .map(|o| o.busy_s)
            .fold(0.0, f64::max)
    }

    /// Lanes in line order for `costs`, with the solver's shares.
    fn planned(n: usize, costs: &[Cost]) -> Vec<(usize, Cost, usize)> {
        let shares = solve(n, costs);
        (0..costs.len())
            .filter(|&d| shares[d] > 0)
            .map(|d| (d, costs[d], shares[d]))
            .collect()
    }

    #[test]
    fn right_models_keep_the_plan_and_its_time() {
        // two GPU-like devices (launch cost, fast) and a CPU-like one
        let costs = [
            Cost::affine(2e-4, 2e-10),
            Cost::affine(1e-4, 5e-10),
            Cost::affine(0.0, 1e-9),
        ];
        for n in [100_000, 1 << 20, 1 << 24] {
            let plan = planned(n, &costs);
            let want = makespan_s(&costs, &solve(n, &costs));
            let got = run(&plan, &costs, true, &no_stall);
            // the first run is never a whole share (a model may be wrong): at most
            // one launch more than the plan counted
            let took = makespan(&got);
            assert!(
                took <= 1.05 * want + 2e-4,
                "n {n}: {took} s, planned {want} s"
            );
            for (k, &(d, _, share)) in plan.iter().enumerate() {
                let o = &got[d];
                let e = elements(o) as f64;
                if n >= 1 << 24 {
                    // where launches are small beside the work, the plan holds
                    let share = share as f64;
                    assert!(
                        (e - share).abs() <= 0.02 * n as f64,
                        "n {n}: lane {k} ran {e}, planned {share}"
                    );
                }
                // half of what is left at a time, chunks at least the smallest:
                // a handful of runs, not one per small piece
                let runs = o.as_ref().map_or(0, |o| o.runs);
                assert!(runs <= 24, "n {n}: device {d} ran {runs} runs");
            }
        }
    }

    #[test]
    fn help_flows_along_the_line_to_a_slow_device() {
        let model = Cost::affine(0.0, 1e-9);
        let n = 3 << 20;
        let plan = planned(n, &[model; 3]);
        // device 0 is 4x slower than its model says
        let truth = [Cost::affine(0.0, 4e-9), model, model];
        let got = run(&plan, &truth, true, &no_stall);
        let best = makespan_s(&truth, &solve(n, &truth));
        let took = makespan(&got);
        // nobody can know before device 0's first run (half its share) ends; after
        // it, the others finish what is left by then, and within 5% of the best
        let first = truth[0].work_s(plan[0].2 / 2);
        assert_eq!(elements(&got[0]), plan[0].2 / 2, "{:?}", got[0]);
        assert!(took <= first.max(1.05 * best), "{took} s, best {best} s");
        let static_s = truth[0].work_s(plan[0].2);
        assert!(took <= 0.55 * static_s, "{took} s, as planned {static_s} s");
        // device 1 took over the far end of device 0's share, and device 2 (two
        // places away) part of device 1's
        let o1 = got[1].as_ref().map(|o| o.range.clone());
        assert!(o1.as_ref().is_some_and(|r| r.start < n / 3), "{o1:?}");
        let o2 = got[2].as_ref().map(|o| o.range.clone());
        assert!(o2.as_ref().is_some_and(|r| r.start < 2 * n / 3), "{o2:?}");
    }

    #[test]
    fn an_overdue_device_is_counted_busy_and_its_share_taken_over() {
        let model = Cost::affine(1e-5, 1e-9);
        let n = 2 << 20;
        let plan = planned(n, &[model; 2]);
        // device 0's first run stalls for a second: it must do nothing more, and
        // device 1 must take the rest in a few runs, not in ever smaller pieces
        let stall = |dev: usize, run: u32| if dev == 0 && run == 0 { 1.0 } else { 0.0 };
        let got = run(&plan, &[model; 2], true, &stall);
        let first = got[0].as_ref().map_or(0, |o| o.runs);
        assert_eq!(first, 1, "{:?}", got[0]);
        assert!(elements(&got[0]) <= n / 4, "{:?}", got[0]);
        let helper = got[1].as_ref().map_or(0, |o| o.runs);
        assert!(helper <= 12, "device 1 took {helper} runs: {:?}", got[1]);
        let o1 = got[1].as_ref().map_or(0.0, |o| o.busy_s);
        assert!(o1 < 0.01, "device 1 finished at {o1} s");
    }

    #[test]
    fn threads_take_every_element_once_and_help_a_slow_device() {
        let model = Cost::affine(0.0, 1e-9);
        let n = 1 << 20;
        let plan = planned(n, &[model; 4]);
        // device 0 sleeps 20 ms on every run; the others finish theirs in microseconds
        let stall = |dev: usize, _: u32| if dev == 0 { 0.02 } else { 0.0 };
        let got = run(&plan, &[model; 4], false, &stall);
        assert!(elements(&got[0]) < plan[0].2, "{:?}", got[0]);
        // and with no device slow, nothing is lost either
        run(&plan, &[model; 4], false, &no_stall);
    }

    #[test]
    fn one_lane_and_no_lanes() {
        let model = Cost::affine(0.0, 1e-9);
        let got = run(&[(0, model, 100_000)], &[model], true, &no_stall);
        assert_eq!(elements(&got[0]), 100_000);
        assert!(
            got[0].as_ref().is_some_and(|o| o.runs > 1),
            "taken in pieces"
        );
        let got = run(&[(0, model, 100_000)], &[model], false, &no_stall);
        assert_eq!(elements(&got[0]), 100_000);
        assert!(run(&[], &[], true, &no_stall).is_empty());
    }
}
