//! The small-call shortcut: calls too small for any other device to pay run on the
//! CPU at once, with no probe, no plan and no threads. The size comes from the models
//! once every device has one; before, it is [`SMALL_FLOOR`] of work (elements times
//! the loop trips each runs: [`Call::work`]), the floor below which runs teach no
//! model either.

use super::{Call, MIN_SPLIT, SMALL_FLOOR};
use crate::device::DeviceKind;
use crate::schedule::plan;

/// Where a call of `n` elements of the kernel `hash` runs at once, and why, if it is
/// too small to plan for (or there is one device only).
pub(super) fn run_at_once(call: &Call<'_>, hash: u64, n: usize) -> Option<(usize, String)> {
    if call.devices.len() == 1 {
        return Some((0, "auto: the only device".into()));
    }
    let below = call.cpu_only_below(hash);
    let cpu = call.cpu()?;
    let why = match below {
        // no model yet: the floor decides, in work
        None if call.above_floor(n) => return None,
        None => match call.trips() {
            1 => format!(
                "auto: cpu, {n} elements < {SMALL_FLOOR} (no model says another device pays yet)"
            ),
            trips => format!(
                "auto: cpu, {n} elements x {trips} loop trips < {SMALL_FLOOR} (no model says another device pays yet)"
            ),
        },
        Some(usize::MAX) => "auto: cpu, the models say no other device pays at any size".into(),
        Some(b) => {
            // below MIN_SPLIT of work the scheduler's own work (threads, bookkeeping)
            // would not pay, whatever the models say
            let trips = call.trips();
            let min = usize::try_from((MIN_SPLIT as u64).div_ceil(trips)).unwrap_or(usize::MAX);
            let below = b.max(min);
            if n >= below {
                return None;
            }
            format!("auto: cpu, {n} elements < {below}, below which no other device pays")
        }
    };
    Some((cpu, why))
}

impl Call<'_> {
    /// The size in elements below which the CPU alone is best for this kernel, from
    /// the models (`usize::MAX`: at any size); `None` while a device has no model.
    pub(super) fn cpu_only_below(&self, hash: u64) -> Option<usize> {
        if let Some(b) = self.models.cpu_only_below(hash) {
            return Some(b);
        }
        let Some(cpu) = self.cpu() else {
            return Some(0);
        };
        if self.devices.len() == 1 {
            return Some(usize::MAX);
        }
        let c = self.predict(hash, cpu)?;
        let mut others = Vec::new();
        // a software GPU never joins the CPU; it pays once it beats the CPU alone
        let mut instead = usize::MAX;
        for d in (0..self.devices.len()).filter(|&d| d != cpu) {
            let p = self.predict(hash, d)?;
            if self.infos[d].kind == DeviceKind::SoftwareGpu {
                let (a, b) = (&p.cost, &c.cost);
                if a.per_elem_s < b.per_elem_s {
                    let n = (a.fixed_s - b.fixed_s) / (b.per_elem_s - a.per_elem_s);
                    instead = instead.min(if n <= 0.0 {
                        0
                    } else {
                        n.min(usize::MAX as f64 / 2.0) as usize
                    });
                }
            } else {
                others.push(p.cost);
            }
        }
        // kept per kernel; MIN_SPLIT is applied at each call, in work (the trips may
        // come from a parameter, which the kernel's hash does not see)
        let below = plan::cpu_only_below(&c.cost, &others).min(instead);
        self.models.set_cpu_only_below(hash, below);
        Some(below)
    }
}
