//! The small-call shortcut: inputs too small for any other device to pay run on the
//! CPU at once, with no probe, no plan and no threads. The size comes from the models
//! once they exist, and is [`SMALL_FLOOR`] before.

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
    if n >= below {
        return None;
    }
    let why = if below == usize::MAX {
        "auto: cpu, the models say no other device pays at any size".to_string()
    } else if below == SMALL_FLOOR {
        format!("auto: cpu, {n} elements < {SMALL_FLOOR} (no model says another device pays yet)")
    } else {
        format!("auto: cpu, {n} elements < {below}, below which no other device pays")
    };
    Some((cpu, why))
}

impl Call<'_> {
    /// The size below which the CPU alone is best for this kernel, from the models.
    pub(super) fn cpu_only_below(&self, hash: u64) -> usize {
        if let Some(b) = self.models.cpu_only_below(hash) {
            return b;
        }
        let Some(cpu) = self.cpu() else { return 0 };
        if self.devices.len() == 1 {
            return usize::MAX;
        }
        let Some(c) = self.predict(hash, cpu) else {
            return SMALL_FLOOR;
        };
        let mut others = Vec::new();
        // a software GPU never joins the CPU; it pays once it beats the CPU alone
        let mut instead = usize::MAX;
        for d in (0..self.devices.len()).filter(|&d| d != cpu) {
            let Some(p) = self.predict(hash, d) else {
                return SMALL_FLOOR;
            };
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
        // below this the scheduler's own work (threads, bookkeeping) would not pay
        let below = plan::cpu_only_below(&c.cost, &others)
            .min(instead)
            .max(MIN_SPLIT);
        self.models.set_cpu_only_below(hash, below);
        below
    }
}
