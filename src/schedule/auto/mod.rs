//! `Placement::Auto`: choose each device's share of a call from its measured model.
//!
//! Small inputs (below the size at which the cheapest first element on another device
//! beats the CPU doing everything, or [`SMALL_FLOOR`] before models exist) run on the
//! CPU at once. Otherwise a device with no model is probed first: a simulated one off
//! the call's clock; a real one on the call's thread, from a copy of the call's first
//! elements (never on a thread of its own: one still running when the program exits
//! can crash it inside the driver). Then the models' costs are solved for the shares
//! that finish together, and the shares run balanced.

use std::fmt::Write as _;
use std::sync::Arc;

use super::exec::{self, Ctx, Failure, Outcome, Runner};
use super::model::{Models, Prediction};
use super::plan::{self, Cost};
use crate::device::{Device, DeviceInfo, DeviceKind, ShareStats};
use crate::error::Result;
use crate::kernel::reduce::Reduce;
use crate::kernel::KernelInner;
use crate::report::{secs, Forecast};

/// Below this many elements, and before the models say otherwise, `Auto` runs on the
/// CPU without probing anything.
pub(crate) const SMALL_FLOOR: usize = 1 << 16;
/// Even with models, `Auto` runs inputs below this on the CPU at once.
pub(crate) const MIN_SPLIT: usize = 1 << 14;
/// The largest probe run.
const PROBE_MAX: usize = 1 << 20;

/// One call as the scheduler sees it.
pub(crate) struct Call<'a> {
    pub(crate) devices: &'a [Arc<dyn Device>],
    pub(crate) infos: &'a [DeviceInfo],
    pub(crate) models: &'a Arc<Models>,
    pub(crate) kernel: &'a Arc<KernelInner>,
    pub(crate) inputs: &'a [&'a [u32]],
    pub(crate) virtual_clock: bool,
    /// `None` for a map; a reduction's operation (its models are its own).
    pub(crate) op: Option<Reduce>,
    /// Per device: healthy (unhealthy ones are left out of `Auto`'s plans and never
    /// take over failed work).
    pub(crate) healthy: &'a [bool],
    /// Whether runs on a device with a link teach the models. An array's do not: its
    /// data may already be on the device and its output stays there, and the models
    /// describe host-to-host calls. (A CPU's runs teach either way: they cost the
    /// same.)
    pub(crate) teach: bool,
}

/// What `Auto` did and why.
pub(crate) struct Decided {
    pub(crate) outcomes: Vec<Outcome>,
    pub(crate) decision: String,
    pub(crate) forecasts: Vec<Forecast>,
    pub(crate) predicted_s: Option<f64>,
    pub(crate) cpu_only_s: Option<f64>,
    pub(crate) gpu_only_s: Option<f64>,
    pub(crate) notes: Vec<String>,
    /// Runs whose device failed, redone elsewhere.
    pub(crate) failures: Vec<Failure>,
}

impl Call<'_> {
    /// Bytes in and out per element (a reduction's few partials count as none).
    fn bytes(&self) -> (u64, u64) {
        let out = if self.op.is_some() { 0 } else { 4 };
        (4 * self.arity() as u64, out)
    }

    fn arity(&self) -> usize {
        self.kernel
            .program()
            .map_or(self.inputs.len(), |p| p.inputs.len())
    }

    /// The id the models know this call's work by: its shader's hash.
    fn hash(&self) -> Result<u64> {
        Ok(match self.op {
            None => self.kernel.shader()?.hash,
            Some(op) => self.kernel.reduce_shader(op)?.hash,
        })
    }

    fn predict(&self, hash: u64, dev: usize) -> Option<Prediction> {
        let m = self.models.get(hash, dev)?;
        let (i, o) = self.bytes();
        m.predict(self.devices[dev].link().as_ref(), i, o)
    }

    /// Records a run and returns the device's updated cost. A GPU's first run of a
    /// kernel is a warm-up (pipeline compilation) and teaches nothing.
    pub(crate) fn learn(
        &self,
        hash: u64,
        dev: usize,
        n: usize,
        secs: f64,
        stats: &ShareStats,
    ) -> Option<Cost> {
        let d = &self.devices[dev];
        if !self.teach && d.link().is_some() {
            return self.predict(hash, dev).map(|p| p.cost);
        }
        if !d.is_virtual() && d.info().kind.is_gpu() && self.models.first_contact(hash, dev) {
            return None;
        }
        let link = d.link();
        let compute = if link.is_some() { stats.compute_s } else { 0.0 };
        let m = self.models.record(hash, dev, n, secs, compute);
        let (i, o) = self.bytes();
        m.predict(link.as_ref(), i, o).map(|p| p.cost)
    }

    fn ctx<'b, T>(&'b self, learn: &'b exec::Learn<'b>, runner: &'b Runner<'b, T>) -> Ctx<'b, T> {
        Ctx {
            devices: self.devices,
            healthy: self.healthy,
            runner,
            virtual_clock: self.virtual_clock,
            learn,
        }
    }

    /// Whether device `d` is healthy.
    fn ok(&self, d: usize) -> bool {
        self.healthy.get(d).copied().unwrap_or(true)
    }

    fn cpu(&self) -> Option<usize> {
        self.infos.iter().position(|i| !i.kind.is_gpu())
    }

    /// The size below which the CPU alone is best for this kernel, from the models.
    fn cpu_only_below(&self, hash: u64) -> usize {
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

/// Runs a call of `out.len()` elements where the models say, each run through
/// `runner`.
pub(crate) fn auto<T: Send>(
    call: &Call<'_>,
    out: &mut [T],
    runner: &Runner<'_, T>,
) -> Result<Decided> {
    let n = out.len();
    let hash = call.hash()?;
    let learn = |dev: usize, k: usize, s: f64, st: &ShareStats| call.learn(hash, dev, k, s, st);
    let ctx = call.ctx(&learn, runner);
    let mut notes = Vec::new();
    // small calls are not measured: fixed costs dominate them, and measuring would
    // cost more than the call
    let quiet = |_: usize, _: usize, _: f64, _: &ShareStats| None;
    let small_ctx = call.ctx(&quiet, runner);
    let alone = |dev: usize, why: String, notes: Vec<String>, out: &mut [T]| -> Result<Decided> {
        let c = if n >= SMALL_FLOOR { &ctx } else { &small_ctx };
        let exec::Executed { outcomes, failures } = exec::run_static(c, vec![(dev, 0..n)], out)?;
        Ok(Decided {
            outcomes,
            failures,
            decision: why,
            forecasts: Vec::new(),
            predicted_s: None,
            cpu_only_s: None,
            gpu_only_s: None,
            notes,
        })
    };
    if call.devices.len() == 1 {
        return alone(0, "auto: the only device".into(), notes, out);
    }
    let below = call.cpu_only_below(hash);
    if let Some(cpu) = call.cpu() {
        if n < below {
            let why = if below == usize::MAX {
                "auto: cpu, the models say no other device pays at any size".to_string()
            } else if below == SMALL_FLOOR {
                format!("auto: cpu, {n} elements < {SMALL_FLOOR} (no model says another device pays yet)")
            } else {
                format!("auto: cpu, {n} elements < {below}, below which no other device pays")
            };
            return alone(cpu, why, notes, out);
        }
    }
    // probe the devices with no model yet
    for dev in 0..call.devices.len() {
        if call.models.get(hash, dev).is_some() || !call.ok(dev) {
            continue;
        }
        if call.devices[dev].is_virtual() {
            probe(call, hash, dev, &sample(call.inputs, n))?;
            notes.push(format!("probed {} (off the clock)", call.infos[dev].name));
        } else if call.infos[dev].kind.is_gpu() && call.models.start_probe(hash, dev) {
            // On this thread, before the call goes on. A probe on a thread of its own
            // (as this was) can still be submitting to the GPU when the program
            // exits, and a driver torn down under a running submission crashes the
            // process: seen as SIGSEGV at exit on lavapipe, in a doctest that exited
            // right after its first Auto call. The cost is paid once per kernel and
            // device, by the first call large enough to plan for.
            let t = std::time::Instant::now();
            let data = sample(call.inputs, n);
            let r = probe(call, hash, dev, &data);
            call.models.end_probe(hash, dev);
            call.models.save(true);
            let name = &call.infos[dev].name;
            notes.push(match r {
                Ok(()) => format!(
                    "{name} had no model for this kernel: measured it first ({} elements, {})",
                    data.first().map_or(0, Vec::len),
                    secs(t.elapsed().as_secs_f64())
                ),
                // a device that fails its probe gets no model and is not used
                Err(e) => format!("{name} had no model for this kernel and its probe failed: {e}"),
            });
        }
    }
    // an unhealthy device is planned for by nobody
    let preds: Vec<Option<Prediction>> = (0..call.devices.len())
        .map(|d| call.ok(d).then(|| call.predict(hash, d)).flatten())
        .collect();
    if preds.iter().all(Option::is_none) {
        let dev = call.cpu().unwrap_or(0);
        return alone(
            dev,
            "auto: no device has a model yet, so the cpu measures this call".into(),
            notes,
            out,
        );
    }
    let mut usable: Vec<usize> = (0..preds.len()).filter(|&d| preds[d].is_some()).collect();
    // a software GPU runs on the CPU's own cores: beside the CPU it adds no capacity,
    // only contention, so it may replace the CPU but never join it
    if let Some(cpu) = call.cpu().filter(|c| usable.contains(c)) {
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
            notes.push("a software gpu shares the cpu's cores: auto uses it instead of the cpu or not at all".into());
        }
    }
    let costs: Vec<Cost> = usable
        .iter()
        .filter_map(|&d| preds[d].as_ref().map(|p| p.cost))
        .collect();
    let shares = plan::solve(n, &costs);
    let predicted = plan::makespan_s(&costs, &shares);
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
    let exec::Executed { outcomes, failures } = if lanes.len() == 1 {
        exec::run_static(&ctx, vec![(lanes[0].0, 0..n)], out)?
    } else {
        exec::run_balanced(&ctx, &lanes, out)?
    };
    let mut forecasts = Vec::new();
    for (k, &d) in usable.iter().enumerate() {
        let got = outcomes.iter().find(|o| o.dev == d);
        forecasts.push(Forecast {
            device: call.infos[d].name.clone(),
            model: preds[d]
                .as_ref()
                .map(|p| p.text.clone())
                .unwrap_or_default(),
            planned: shares[k],
            elements: got.map_or(0, |o| o.range.len()),
            runs: got.map_or(0, |o| o.runs),
            predicted_s: costs[k].finish_s(shares[k]),
            measured_s: got.map_or(0.0, |o| o.busy_s),
        });
    }
    let mut decision = String::from("auto: ");
    let used: Vec<&str> = lanes
        .iter()
        .map(|(d, _, _)| call.infos[*d].name.as_str())
        .collect();
    let _ = write!(
        decision,
        "{} by the models, predicted {}",
        used.join(" + "),
        secs(predicted)
    );
    if let Some(c) = cpu_only_s {
        let _ = write!(decision, "; cpu only {}", secs(c));
    }
    if let Some(g) = gpu_only_s {
        let _ = write!(decision, "; gpu only {}", secs(g));
    }
    call.models.save(false);
    Ok(Decided {
        outcomes,
        decision,
        forecasts,
        predicted_s: Some(predicted),
        cpu_only_s,
        gpu_only_s,
        notes,
        failures,
    })
}

/// `Auto` for an array whose parts are (some of them only) in GPU memory: keep the
/// partition, each part computed where it is (`plan`: its device and range), or read
/// back what only the GPUs hold (`device_bytes` per device) and plan as for host data.
/// Moves only when the models predict it at least 20% faster; with no model, keeps.
/// Returns whether to keep, and why.
pub(crate) fn keep_or_move(
    call: &Call<'_>,
    plan: &[(usize, std::ops::Range<usize>)],
    device_bytes: &[(usize, u64)],
) -> Result<(bool, String)> {
    let hash = call.hash()?;
    let n: usize = plan.iter().map(|(_, r)| r.len()).sum();
    let keep = |why: &str| Ok((true, format!("auto: kept where the data is ({why})")));
    let mut busy = vec![0.0f64; call.devices.len()];
    for (d, r) in plan {
        let Some(m) = call.models.get(hash, *d) else {
            return keep("no model yet says moving pays");
        };
        // resident: nothing crosses the link and the output stays, so the compute
        // stage's own fit (a device with a link), or the whole runs' (the CPU)
        let fit = match call.devices[*d].link() {
            Some(_) => m.compute.fit(),
            None => m.end_to_end.fit(),
        };
        let Some(f) = fit else {
            return keep("no model yet says moving pays");
        };
        busy[*d] += f.fixed_s + f.per_elem_s * r.len() as f64;
    }
    let keep_s = busy.iter().copied().fold(0.0, f64::max);
    let read_s: f64 = device_bytes
        .iter()
        .filter_map(|&(d, b)| call.devices[d].link().map(|l| l.down.time_s(b)))
        .sum();
    let costs: Vec<Cost> = (0..call.devices.len())
        .filter(|&d| call.ok(d))
        .filter_map(|d| call.predict(hash, d).map(|p| p.cost))
        .collect();
    if costs.is_empty() {
        return keep("no model yet says moving pays");
    }
    let move_s = read_s + plan::makespan_s(&costs, &plan::solve(n, &costs));
    if move_s < 0.8 * keep_s {
        Ok((
            false,
            format!(
                "auto: moved the data (predicted {} to read back and replan, {} to keep it where it is)",
                secs(move_s),
                secs(keep_s)
            ),
        ))
    } else {
        keep(&format!(
            "predicted {} where it is, {} to read back and replan",
            secs(keep_s),
            secs(move_s)
        ))
    }
}

/// Runs the planned `(device, range)` parts of a static placement, one run each.
pub(crate) fn fixed<T: Send>(
    call: &Call<'_>,
    parts: Vec<(usize, std::ops::Range<usize>)>,
    out: &mut [T],
    runner: &Runner<'_, T>,
    decision: String,
) -> Result<Decided> {
    let n = out.len();
    // a software GPU beside the CPU slows both (shared cores): such runs teach nothing
    let contended = parts.len() > 1
        && parts
            .iter()
            .any(|(d, _)| call.infos[*d].kind == DeviceKind::SoftwareGpu);
    let hash = if n >= SMALL_FLOOR && !contended {
        Some(call.hash()?)
    } else {
        None
    };
    // runs under the floor are not measured: fixed costs dominate them
    let learn = |dev: usize, k: usize, s: f64, st: &ShareStats| {
        hash.and_then(|h| call.learn(h, dev, k, s, st))
    };
    let exec::Executed { outcomes, failures } =
        exec::run_static(&call.ctx(&learn, runner), parts, out)?;
    if hash.is_some() {
        call.models.save(false);
    }
    Ok(Decided {
        outcomes,
        decision,
        forecasts: Vec::new(),
        predicted_s: None,
        cpu_only_s: None,
        gpu_only_s: None,
        notes: Vec::new(),
        failures,
    })
}

/// A copy of the call's first elements, at most [`PROBE_MAX`], for probing.
fn sample(inputs: &[&[u32]], n: usize) -> Vec<Vec<u32>> {
    let m = n.min(PROBE_MAX);
    inputs.iter().map(|x| x[..m].to_vec()).collect()
}

fn probe(call: &Call<'_>, hash: u64, dev: usize, data: &[Vec<u32>]) -> Result<()> {
    probe_as(call, hash, dev, dev, data)
}

/// Runs `data` on device `local` of `call` (known to the models as `global`) at a few
/// sizes, after a warm-up run on a real device, and records what each took.
fn probe_as(
    call: &Call<'_>,
    hash: u64,
    local: usize,
    global: usize,
    data: &[Vec<u32>],
) -> Result<()> {
    let m = data.first().map_or(0, Vec::len);
    if m == 0 {
        return Ok(());
    }
    let d = &call.devices[local];
    let kernel: &KernelInner = call.kernel;
    let mut out = vec![0u32; if call.op.is_some() { 0 } else { m }];
    let mut sizes = vec![(m / 16).max(1), (m / 4).max(1), m];
    if !d.is_virtual() {
        sizes.insert(0, m.min(1024));
    }
    let link = d.link();
    let (i, o) = call.bytes();
    for (k, &s) in sizes.iter().enumerate() {
        let ins: Vec<&[u32]> = data.iter().map(|x| &x[..s]).collect();
        let (stats, secs) = match call.op {
            None => d.run_timed(kernel, &ins, 0, &mut out[..s])?,
            Some(op) => {
                let (_, stats, secs) = d.reduce_timed(kernel, op, &ins, 0, s)?;
                (stats, secs)
            }
        };
        if k == 0 && !d.is_virtual() {
            continue;
        }
        let compute = if link.is_some() { stats.compute_s } else { 0.0 };
        let mdl = call.models.record(hash, global, s, secs, compute);
        let _ = mdl.predict(link.as_ref(), i, o);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::sim::SimDevice;
    use crate::kernel::{Expr, Kernel};

    /// A CPU and a GPU whose models say what `cpu_per`, `gpu_per` (compute, seconds
    /// per element) give, the GPU behind a link of `link_bps` each way.
    fn decide(cpu_per: f64, gpu_per: f64, link_bps: f64) -> (bool, String) {
        let devices: Vec<Arc<dyn Device>> = vec![
            Arc::new(
                SimDevice::cpu("cpu", 1.0 / cpu_per)
                    .into_device()
                    .unwrap_or_else(|e| panic!("{e}")),
            ),
            Arc::new(
                SimDevice::gpu("gpu", 1.0 / gpu_per)
                    .link(1e-5, link_bps, link_bps)
                    .into_device()
                    .unwrap_or_else(|e| panic!("{e}")),
            ),
        ];
        let infos: Vec<DeviceInfo> = devices.iter().map(|d| d.info().clone()).collect();
        let dir = std::env::temp_dir().join(format!("hybrid-keep-{}", std::process::id()));
        let models = Arc::new(Models::new(&infos, &[false, false], dir));
        let k = Kernel::map(|x: Expr<f32>| x * 2.0);
        let kernel = k.inner().clone();
        let call = Call {
            devices: &devices,
            infos: &infos,
            models: &models,
            kernel: &kernel,
            inputs: &[],
            virtual_clock: true,
            op: None,
            healthy: &[true, true],
            teach: false,
        };
        let hash = call.hash().unwrap_or_else(|e| panic!("{e}"));
        for n in [1usize << 16, 1 << 18, 1 << 20] {
            models.record(hash, 0, n, n as f64 * cpu_per, 0.0);
            // the GPU's whole runs include the transfers of a slice call
            let moved = 8.0 * n as f64 / link_bps + 2e-5;
            models.record(hash, 1, n, n as f64 * gpu_per + moved, n as f64 * gpu_per);
        }
        // 16M elements, all on the GPU
        let n = 1usize << 24;
        keep_or_move(&call, &[(1, 0..n)], &[(1, 4 * n as u64)]).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn data_on_a_fast_gpu_stays_there() {
        // the GPU computes 10x faster than the CPU: keeping wins whatever the link
        let (keep, why) = decide(1e-8, 1e-9, 1e9);
        assert!(keep, "{why}");
        assert!(why.contains("kept where the data is"), "{why}");
    }

    #[test]
    fn data_on_a_slow_gpu_moves_only_when_that_pays() {
        // the GPU computes 20x slower than the CPU and the link is fast: reading the
        // data back and computing on the CPU wins by far
        let (keep, why) = decide(1e-9, 2e-8, 1e11);
        assert!(!keep, "{why}");
        assert!(why.contains("moved the data"), "{why}");
        // the same devices behind a slow link: reading back costs more than it saves
        let (keep, why) = decide(1e-9, 2e-8, 1e8);
        assert!(keep, "{why}");
        // a GPU 10% slower than the CPU behind a 10 GB/s link: reading back (6.7 ms)
        // and splitting with the CPU (8.8 ms) would save about 15% of keeping
        // (18.5 ms), under the 20% margin: it stays
        let (keep, why) = decide(1e-9, 1.1e-9, 1e10);
        assert!(keep, "{why}");
    }
}
