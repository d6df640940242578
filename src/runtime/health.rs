//! Device health: a device that failed during a call sits out later calls until a
//! probe (a small run on a later call's input) finds it healthy again; each failed
//! probe doubles the wait before the next.

use super::Runtime;
use crate::device::{DeviceInfo, TableArg, Task};
use crate::kernel::reduce::Reduce;
use crate::kernel::Bound;
use crate::report::Recovery;
use crate::schedule::exec::Failure;
use crate::sync::lock;

/// A device that failed: left out of calls until a probe finds it healthy.
#[derive(Debug, Clone)]
pub(super) struct Sick {
    reason: String,
    /// Calls that left it out since it failed (or since its last failed probe).
    skipped: u32,
    /// Calls to leave it out before probing it again (doubles per failed probe).
    wait: u32,
}

/// Calls an unhealthy device sits out before its first probe.
pub(super) const SICK_WAIT: u32 = 8;
/// The most calls between probes.
const SICK_WAIT_MAX: u32 = 1024;
/// Elements of a call a probe of an unhealthy device runs.
pub(super) const HEALTH_PROBE: usize = 4096;

impl Runtime {
    /// Each device, with the reason it is unhealthy when it is: a device that failed
    /// during a call is left out of later calls until a probe (a small run on a later
    /// call's input, after 8 calls, then after twice as many per failed probe, at most
    /// 1,024) finds it healthy again.
    pub fn health(&self) -> Vec<(DeviceInfo, Option<String>)> {
        self.infos
            .iter()
            .zip(&self.health)
            .map(|(i, h)| (i.clone(), lock(h).as_ref().map(|s| s.reason.clone())))
            .collect()
    }

    /// Whether any device is unhealthy now.
    pub(super) fn any_sick(&self) -> bool {
        self.health.iter().any(|h| lock(h).is_some())
    }

    /// Which devices may take part in this call: the healthy ones, and the unhealthy
    /// ones whose probe is due and passes on this call's first elements.
    pub(super) fn healthy(
        &self,
        kernel: &Bound,
        inputs: &[&[u32]],
        tables: &[TableArg<'_>],
        n: usize,
        op: Option<Reduce>,
        notes: &mut Vec<String>,
    ) -> Vec<bool> {
        let outputs = kernel.out_words();
        let words = kernel.input_words();
        let mut ok = Vec::with_capacity(self.devices.len());
        for (d, h) in self.devices.iter().zip(&self.health) {
            let mut sick = lock(h);
            let Some(s) = sick.as_mut() else {
                ok.push(true);
                continue;
            };
            s.skipped += 1;
            if s.skipped <= s.wait || n == 0 {
                notes.push(format!(
                    "{} left out: unhealthy ({})",
                    d.info().name,
                    s.reason
                ));
                ok.push(false);
                continue;
            }
            let m = n.min(HEALTH_PROBE);
            let ins = crate::device::slice_inputs(inputs, &words, 0..m);
            let task = Task::new(kernel, &ins, 0, m).with_tables(tables);
            let probe = match op {
                None => d.run(&task, &mut vec![0u32; m * outputs]).map(|_| ()),
                Some(op) => d.reduce(&task, op).map(|_| ()),
            };
            match probe {
                Ok(()) => {
                    notes.push(format!("{} probed healthy again", d.info().name));
                    *sick = None;
                    ok.push(true);
                }
                Err(e) => {
                    notes.push(format!("{} probed, still unhealthy: {e}", d.info().name));
                    s.reason = e.to_string();
                    s.skipped = 0;
                    s.wait = (s.wait * 2).min(SICK_WAIT_MAX);
                    ok.push(false);
                }
            }
        }
        ok
    }

    /// Marks the devices that failed in a call unhealthy, and says who redid what.
    pub(super) fn recoveries(&self, failures: &[Failure]) -> Vec<Recovery> {
        failures
            .iter()
            .map(|f| {
                *lock(&self.health[f.dev]) = Some(Sick {
                    reason: f.error.to_string(),
                    skipped: 0,
                    wait: SICK_WAIT,
                });
                Recovery {
                    device: self.infos[f.dev].name.clone(),
                    range: f.range.clone(),
                    error: f.error.clone(),
                    redone_by: self.infos[f.redone_by].name.clone(),
                }
            })
            .collect()
    }
}
