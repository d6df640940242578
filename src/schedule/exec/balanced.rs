//! Balanced runs (`Auto`): the [`Line`]'s decisions driven on real devices, one thread
//! per lane, or as a discrete-event simulation on the devices' virtual clocks. The
//! drivers only order events; every choice of what runs where is the line's.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::fixed::recover;
use super::line::{Chunk, Line, Step};
use super::{Ctx, Executed, Orphan, Outcome};
use crate::device::ShareStats;
use crate::error::Result;
use crate::schedule::plan::Cost;

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
    result: Result<(ShareStats, f64)>,
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
        Ok((stats, secs)) => (now + secs, (ctx.learn)(dev, n, *secs, stats)),
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
                Ok((stats, secs)) => (ctx.learn)(dev, chunk.range.len(), *secs, stats),
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
                let mut g = shared.0.lock().unwrap_or_else(|e| e.into_inner());
                let dev = g.dev(j);
                g.fail(ctx.panicked(dev));
            }
        }
    });
    shared
        .0
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .outcomes()
}
