//! Static runs: each planned `(device, range)` as one run, all at the same time; and
//! recovery, which redoes the range of a run that failed for its device's fault on
//! another device (the CPU first), for static and balanced runs alike.

use std::ops::Range;
use std::time::Instant;

use super::{device_fault, Ctx, Executed, Failure, Orphan, Outcome};
use crate::device::Timed;
use crate::error::{Error, Result};

/// Runs each `(device, range)` as one run, all at the same time (one after another
/// on a virtual clock, each on its own clock). `out` covers the ranges, in order. A
/// range whose device fails is redone on another device afterwards.
pub(crate) fn run_static<T: Send>(
    ctx: &Ctx<'_, T>,
    parts: Vec<(usize, Range<usize>)>,
    out: &mut [T],
) -> Result<Executed> {
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
        let Timed { stats, secs } = run.unwrap_or_else(|_| Err(ctx.panicked(dev)))?;
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
                all.push(h.join().map_err(|_| ctx.panicked(d))?);
            }
            all.extend(mine);
            Ok::<_, Error>(all)
        })?
    };
    let mut executed = Executed::default();
    let mut orphans = Vec::new();
    for (dev, range, out, res) in done {
        match res {
            Ok(oc) => executed.outcomes.push(oc),
            Err(error) if device_fault(&error) => orphans.push(Orphan {
                dev,
                range,
                out,
                error,
            }),
            Err(e) => return Err(e),
        }
    }
    recover(ctx, orphans, &mut executed, t0)?;
    Ok(executed)
}

/// Redoes each orphan on another device: the CPU first, then any other device that
/// has not failed in this call and is healthy, one after another. Fails with the
/// orphan's error when no device is left.
pub(super) fn recover<T: Send>(
    ctx: &Ctx<'_, T>,
    orphans: Vec<Orphan<'_, T>>,
    executed: &mut Executed,
    t0: Instant,
) -> Result<()> {
    let mut dead: Vec<usize> = orphans.iter().map(|o| o.dev).collect();
    let mut clock = executed
        .outcomes
        .iter()
        .map(|o| o.busy_s)
        .fold(0.0, f64::max);
    for Orphan {
        dev,
        range,
        out,
        error,
    } in orphans
    {
        loop {
            let mut order: Vec<usize> = (0..ctx.devices.len())
                .filter(|d| !dead.contains(d) && ctx.healthy.get(*d).copied().unwrap_or(true))
                .collect();
            order.sort_by_key(|&d| ctx.devices[d].info().kind.is_gpu());
            let Some(&helper) = order.first() else {
                return Err(error);
            };
            match ctx.run(helper, &range, &mut *out) {
                Ok(Timed { stats, secs }) => {
                    clock += secs;
                    let busy_s = if ctx.virtual_clock {
                        clock
                    } else {
                        t0.elapsed().as_secs_f64()
                    };
                    executed.outcomes.push(Outcome {
                        dev: helper,
                        range: range.clone(),
                        stats,
                        busy_s,
                        runs: 1,
                    });
                    executed.failures.push(Failure {
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
