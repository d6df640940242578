//! Running a call's shares on its devices: as planned (static placements, [`run_static`]),
//! or balanced as they go (`Auto`, [`run_balanced`]); a run that fails for its device's
//! fault is redone on another device. `src/schedule/README.md` walks through the rules.
//!
//! Cut by concern: [`fixed`] runs static parts and recovers failed work, [`line`] holds
//! the balanced executor's decisions as a pure state machine over plain numbers (so it
//! is unit-tested without devices), and [`balanced`] drives that line on real threads or
//! on a virtual clock.

mod balanced;
mod fixed;
mod line;

use std::ops::Range;
use std::sync::Arc;

use crate::cost::Cost;
use crate::device::{Device, ShareStats, Timed};
use crate::error::{Error, Result};

pub(crate) use balanced::run_balanced;
pub(crate) use fixed::run_static;

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

/// A device's run that failed and was redone by another device.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) dev: usize,
    pub(crate) range: Range<usize>,
    pub(crate) error: Error,
    pub(crate) redone_by: usize,
}

/// What a call's execution did: the runs that counted, one per device that computed
/// something, and the failed runs that other devices redid.
#[derive(Debug, Default)]
pub(crate) struct Executed {
    pub(crate) outcomes: Vec<Outcome>,
    pub(crate) failures: Vec<Failure>,
}

/// Learns from a run: (device, elements, seconds, stats) to the device's updated cost.
pub(crate) type Learn<'a> = dyn Fn(usize, usize, f64, &ShareStats) -> Option<Cost> + Sync + 'a;

/// Runs one range on one device: (device, range, the range's part of the output) to
/// the run's stats and seconds. A map writes its output there; a reduction's output
/// is `()` per element (it takes no memory) and its runner keeps the partials.
pub(crate) type Runner<'a, T> = dyn Fn(usize, &Range<usize>, &mut [T]) -> Result<Timed> + Sync + 'a;

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
    fn run(&self, dev: usize, range: &Range<usize>, out: &mut [T]) -> Result<Timed> {
        (self.runner)(dev, range, out)
    }

    /// The error for a run on `dev` whose thread panicked.
    fn panicked(&self, dev: usize) -> Error {
        Error::DeviceFailed {
            device: self
                .devices
                .get(dev)
                .map_or_else(|| "?".into(), |d| d.info().name.clone()),
            stage: "compute",
            reason: "worker thread panicked".into(),
        }
    }
}

/// Whether an error is the device's fault (so another device may redo its work)
/// rather than the kernel's or the caller's (which every device would meet too).
pub(crate) fn device_fault(e: &Error) -> bool {
    matches!(
        e,
        Error::DeviceFailed { .. } | Error::DeviceLost { .. } | Error::BufferTooLarge { .. }
    )
}

/// Work whose device failed, with its part of the output, to be redone elsewhere.
struct Orphan<'o, T> {
    dev: usize,
    range: Range<usize>,
    out: &'o mut [T],
    error: Error,
}
