//! The split `Auto` plans once every device that can has a model: which devices join
//! (a software GPU replaces the CPU or stays out), the solver's shares, how it runs,
//! and what the report says of it (forecasts per device, the decision line).

use std::fmt::Write as _;

use super::Call;
use crate::device::DeviceKind;
use crate::error::Result;
use crate::report::{secs, Forecast};
use crate::schedule::exec::{self, Ctx, Executed, Outcome};
use crate::schedule::model::Prediction;
use crate::schedule::plan::{self, Cost};

/// Each device's prediction for a call of the kernel `hash`; none for a device with no
/// model, and none for an unhealthy device (it is planned for by nobody).
pub(super) fn predictions(call: &Call<'_>, hash: u64) -> Vec<Option<Prediction>> {
    (0..call.devices.len())
        .map(|d| call.is_healthy(d).then(|| call.predict(hash, d)).flatten())
        .collect()
}

/// The split of one call, as planned.
pub(super) struct Split {
    /// The devices planned for, in device order.
    usable: Vec<usize>,
    /// Their costs and shares, in the same order.
    costs: Vec<Cost>,
    shares: Vec<usize>,
    /// The plan's makespan, and the best the CPUs or the GPUs alone would do.
    pub(super) predicted_s: f64,
    pub(super) cpu_only_s: Option<f64>,
    pub(super) gpu_only_s: Option<f64>,
    /// `(device, cost, share)` of the devices with a share, in line order.
    lanes: Vec<(usize, Cost, usize)>,
}

/// The devices with a prediction that `Auto` may use for `n` elements. A software GPU
/// runs on the CPU's own cores: beside the CPU it adds no capacity, only contention, so
/// it may replace the CPU (when it alone is faster) but never join it.
fn usable(
    call: &Call<'_>,
    preds: &[Option<Prediction>],
    n: usize,
    notes: &mut Vec<String>,
) -> Vec<usize> {
    let mut usable: Vec<usize> = (0..preds.len()).filter(|&d| preds[d].is_some()).collect();
    let Some(cpu) = call.cpu().filter(|c| usable.contains(c)) else {
        return usable;
    };
    let alone_s = |d: usize| {
        preds[d]
            .as_ref()
            .map_or(f64::INFINITY, |p| p.cost.finish_s(n))
    };
    let soft: Vec<usize> = usable
        .iter()
        .copied()
        .filter(|&d| call.infos[d].kind == DeviceKind::SoftwareGpu)
        .collect();
    if !soft.is_empty() {
        let best_soft = soft
            .iter()
            .copied()
            .min_by(|&a, &b| alone_s(a).total_cmp(&alone_s(b)));
        let keep = best_soft.filter(|&b| alone_s(b) < alone_s(cpu));
        usable.retain(|d| !soft.contains(d) || Some(*d) == keep);
        if keep.is_some() {
            usable.retain(|&d| d != cpu);
        }
        notes.push(
            "a software gpu shares the cpu's cores: auto uses it instead of the cpu or not at all"
                .into(),
        );
    }
    usable
}

impl Split {
    /// Plans `n` elements over the usable devices (`preds`: see [`predictions`], at
    /// least one `Some`), noting the software-GPU rule when it applies.
    pub(super) fn plan(
        call: &Call<'_>,
        preds: &[Option<Prediction>],
        n: usize,
        notes: &mut Vec<String>,
    ) -> Split {
        let usable = usable(call, preds, n, notes);
        let costs: Vec<Cost> = usable
            .iter()
            .filter_map(|&d| preds[d].as_ref().map(|p| p.cost))
            .collect();
        let shares = plan::solve(n, &costs);
        let predicted_s = plan::makespan_s(&costs, &shares);
        let only = |gpu: bool| -> Option<f64> {
            let sub: Vec<Cost> = usable
                .iter()
                .zip(&costs)
                .filter(|(&d, _)| call.infos[d].kind.is_gpu() == gpu)
                .map(|(_, c)| *c)
                .collect();
            (!sub.is_empty()).then(|| plan::makespan_s(&sub, &plan::solve(n, &sub)))
        };
        let (cpu_only_s, gpu_only_s) = (only(false), only(true));
        // line order: GPUs first, the CPU last (it helps everyone, from the far end)
        let mut lanes: Vec<(usize, Cost, usize)> = usable
            .iter()
            .zip(&costs)
            .zip(&shares)
            .filter(|(_, &s)| s > 0)
            .map(|((&d, &c), &s)| (d, c, s))
            .collect();
        lanes.sort_by_key(|(d, _, _)| (!call.infos[*d].kind.is_gpu(), *d));
        Split {
            usable,
            costs,
            shares,
            predicted_s,
            cpu_only_s,
            gpu_only_s,
            lanes,
        }
    }

    /// Runs the split over `out`: one device as one static run, several balanced.
    pub(super) fn run<T: Send>(&self, ctx: &Ctx<'_, T>, out: &mut [T]) -> Result<Executed> {
        if self.lanes.len() == 1 {
            exec::run_static(ctx, vec![(self.lanes[0].0, 0..out.len())], out)
        } else {
            exec::run_balanced(ctx, &self.lanes, out)
        }
    }

    /// Per usable device: its model, its planned share and predicted time, and what it
    /// did (`outcomes`).
    pub(super) fn forecasts(
        &self,
        call: &Call<'_>,
        preds: &[Option<Prediction>],
        outcomes: &[Outcome],
    ) -> Vec<Forecast> {
        let mut forecasts = Vec::new();
        for (k, &d) in self.usable.iter().enumerate() {
            let got = outcomes.iter().find(|o| o.dev == d);
            forecasts.push(Forecast {
                device: call.infos[d].name.clone(),
                model: preds[d]
                    .as_ref()
                    .map(|p| p.text.clone())
                    .unwrap_or_default(),
                planned: self.shares[k],
                elements: got.map_or(0, |o| o.range.len()),
                runs: got.map_or(0, |o| o.runs),
                predicted_s: self.costs[k].finish_s(self.shares[k]),
                measured_s: got.map_or(0.0, |o| o.busy_s),
            });
        }
        forecasts
    }

    /// The report's decision line: the devices used, the predicted time, and what the
    /// CPUs or the GPUs alone were predicted to take.
    pub(super) fn decision(&self, call: &Call<'_>) -> String {
        let mut decision = String::from("auto: ");
        let used: Vec<&str> = self
            .lanes
            .iter()
            .map(|(d, _, _)| call.infos[*d].name.as_str())
            .collect();
        let _ = write!(
            decision,
            "{} by the models, predicted {}",
            used.join(" + "),
            secs(self.predicted_s)
        );
        if let Some(c) = self.cpu_only_s {
            let _ = write!(decision, "; cpu only {}", secs(c));
        }
        if let Some(g) = self.gpu_only_s {
            let _ = write!(decision, "; gpu only {}", secs(g));
        }
        decision
    }
}
