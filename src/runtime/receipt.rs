//! Turning what the scheduler decided into a call's [`Report`]: shares in input
//! order, recoveries (which also marks failed devices unhealthy), notes, and the
//! wall time (or the virtual one, on a simulated runtime).

use std::time::Instant;

use super::Runtime;
use crate::kernel::reduce::Reduce;
use crate::placement::Placement;
use crate::report::{Report, Share};
use crate::schedule::auto::Decided;

impl Runtime {
    pub(super) fn receipt(
        &self,
        n: usize,
        placement: Placement,
        decided: Decided,
        start: Instant,
        op: Option<Reduce>,
        mut notes: Vec<String>,
    ) -> Report {
        if let Some(r) = &self.no_gpu {
            notes.push(format!("no gpu: {r}"));
        }
        if let Some(op) = op {
            notes.push(format!(
                "reduction: {op}, one partial per range, combined on the host"
            ));
        }
        notes.extend(decided.notes);
        let recoveries = self.recoveries(&decided.failures);
        let mut outcomes = decided.outcomes;
        outcomes.sort_by_key(|o| o.range.start);
        let shares: Vec<Share> = outcomes
            .into_iter()
            .map(|o| {
                let info = &self.infos[o.dev];
                Share {
                    device: info.name.clone(),
                    kind: info.kind,
                    range: o.range,
                    stats: o.stats,
                    busy_s: o.busy_s,
                }
            })
            .collect();
        let wall_s = if self.virtual_clock {
            shares.iter().map(|s| s.busy_s).fold(0.0, f64::max)
        } else {
            start.elapsed().as_secs_f64()
        };
        Report {
            elements: n,
            placement,
            decision: decided.decision,
            notes,
            shares,
            wall_s,
            virtual_clock: self.virtual_clock,
            forecasts: decided.forecasts,
            predicted_s: decided.predicted_s,
            cpu_only_s: decided.cpu_only_s,
            gpu_only_s: decided.gpu_only_s,
            recoveries,
            fused: 1,
            steps: 1,
            gathered: 0,
            inputs: Vec::new(),
        }
    }

    /// A report of a call that ran nothing.
    pub(super) fn empty_receipt(&self, n: usize, placement: Placement) -> Report {
        let decided = Decided {
            outcomes: Vec::new(),
            decision: "nothing to run".into(),
            forecasts: Vec::new(),
            predicted_s: None,
            cpu_only_s: None,
            gpu_only_s: None,
            notes: Vec::new(),
            failures: Vec::new(),
        };
        let mut r = self.receipt(n, placement, decided, Instant::now(), None, Vec::new());
        r.steps = 0;
        r
    }
}
