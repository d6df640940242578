//! `Placement::Auto`: choose each device's share of a call from its measured model.
//!
//! A call goes through named steps: the small-call shortcut ([`small`]: the CPU at once
//! below the size where another device pays), probing devices with no model yet
//! ([`probe`]), then planning, running and describing the split ([`split`]). Arrays
//! already on devices are kept or moved by [`keep`]; static placements run through
//! [`fixed`], which teaches the models too.

mod keep;
mod probe;
mod small;
mod split;

use std::sync::Arc;

use super::exec::{self, Ctx, Executed, Failure, Outcome, Runner};
use super::model::{Models, Prediction};
use super::plan::Cost;
use crate::device::{Device, DeviceInfo, DeviceKind, ShareStats, TableArg};
use crate::error::Result;
use crate::kernel::reduce::Reduce;
use crate::kernel::Bound;
use crate::report::Forecast;

pub(crate) use keep::keep_or_move;
use split::Split;

/// The small-call floor, in work ([`Call::work`]: elements times the loop trips each
/// runs). A call below it is too small to measure: fixed costs dominate its runs, so
/// they teach no model, and before the models say otherwise `Auto` runs it on the CPU
/// without probing anything. One floor for all three, so that no device learns from
/// runs that another device's are kept from.
pub(crate) const SMALL_FLOOR: usize = 1 << 16;
/// Even with models, `Auto` runs calls of less work than this on the CPU at once.
pub(crate) const MIN_SPLIT: usize = 1 << 14;

/// One call as the scheduler sees it.
pub(crate) struct Call<'a> {
    pub(crate) devices: &'a [Arc<dyn Device>],
    pub(crate) infos: &'a [DeviceInfo],
    pub(crate) models: &'a Arc<Models>,
    pub(crate) kernel: &'a Bound,
    pub(crate) inputs: &'a [&'a [u32]],
    /// The kernel's whole-array inputs, each whole (what a probe reads).
    pub(crate) tables: &'a [TableArg<'a>],
    /// Per table: the bytes a device with a link is sent once per call (the whole
    /// table), or `None` for a table sent as a halo around each share (its bytes grow
    /// with the share, as an element-wise input's).
    pub(crate) table_bytes: &'a [Option<u64>],
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
    /// Bytes in and out per element (a reduction's few partials count as none): the
    /// element-wise inputs and the tables sent as a halo in, every result out.
    fn bytes(&self) -> (u64, u64) {
        let out = if self.op.is_some() {
            0
        } else {
            4 * self.outputs() as u64
        };
        let halo = self.table_bytes.iter().filter(|b| b.is_none()).count();
        (4 * (self.arity() + halo) as u64, out)
    }

    /// The loop trips each element runs (at least 1), with this call's parameter
    /// values and table lengths: see `Program::trips`. 1 for a hand-written kernel.
    pub(crate) fn trips(&self) -> u64 {
        self.kernel.program().map_or(1, |p| {
            let lens: Vec<usize> = self.tables.iter().map(|t| t.len).collect();
            p.trips(&self.kernel.values(), &lens)
        })
    }

    /// The work of `n` elements of this call: `n` times the trips each runs. What the
    /// small-call floor counts, everywhere it is consulted.
    pub(crate) fn work(&self, n: usize) -> u64 {
        (n as u64).saturating_mul(self.trips())
    }

    /// Whether `n` elements of this call reach the small-call floor ([`SMALL_FLOOR`]):
    /// enough work that `Auto` probes and plans for them, and that their runs teach
    /// the models.
    pub(crate) fn above_floor(&self, n: usize) -> bool {
        self.work(n) >= SMALL_FLOOR as u64
    }

    /// Input words per element (a 64-bit input takes two).
    fn arity(&self) -> usize {
        match self.kernel.program() {
            Ok(_) => self.kernel.input_words().iter().sum(),
            Err(_) => self.inputs.len(),
        }
    }

    /// Result words per element (a 64-bit result takes two).
    pub(crate) fn outputs(&self) -> usize {
        self.kernel.out_words()
    }

    /// The id the models know this call's work by: its shader's hash, and the length
    /// of each table it reads. A kernel that loops over a table (n-body) costs per
    /// element in proportion to the table's length, so each table length has a model
    /// of its own: a 4x larger table is a new kernel to the models, probed once,
    /// never a 4x misprediction. Likewise each trip count of its loops, when a
    /// parameter sets it.
    fn hash(&self) -> Result<u64> {
        let shader = match self.op {
            None => self.kernel.shader()?.hash,
            Some(op) => self.kernel.reduce_shader(op)?.hash,
        };
        let mix = |h: u64, v: u64| (h ^ v).wrapping_mul(0x0000_0100_0000_01b3);
        let h = self.tables.iter().fold(shader, |h, t| mix(h, t.len as u64));
        // a loop's trips set by a parameter change the work per element as a longer
        // table does: another count is another kernel to the models
        Ok(match self.trips() {
            1 => h,
            trips => mix(h, trips),
        })
    }

    /// Seconds device `dev` spends receiving the call's whole tables: once per call,
    /// on its link (α + bytes / β); none for a device without a link.
    fn table_s(&self, dev: usize) -> f64 {
        let bytes: u64 = self.table_bytes.iter().flatten().sum();
        match self.devices[dev].link() {
            Some(l) if bytes > 0 => l.up.time_s(bytes),
            _ => 0.0,
        }
    }

    fn predict(&self, hash: u64, dev: usize) -> Option<Prediction> {
        let m = self.models.get(hash, dev)?;
        let (i, o) = self.bytes();
        let mut p = m.predict(self.devices[dev].link().as_ref(), i, o)?;
        let table_s = self.table_s(dev);
        if table_s > 0.0 {
            p.cost.fixed_s += table_s;
            p.text += &format!(", + {} to send its tables", crate::report::secs(table_s));
        }
        Some(p)
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
        // the tables' transfer is planned for apart (once per call), not per element
        let secs = (secs - stats.table_s).max(0.0);
        self.models.record(hash, dev, n, secs, compute);
        self.predict(hash, dev).map(|p| p.cost)
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
    fn is_healthy(&self, d: usize) -> bool {
        self.healthy.get(d).copied().unwrap_or(true)
    }

    fn cpu(&self) -> Option<usize> {
        self.infos.iter().position(|i| !i.kind.is_gpu())
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
    // calls under the floor are not measured: fixed costs dominate them, and
    // measuring would cost more than the call
    let quiet = |_: usize, _: usize, _: f64, _: &ShareStats| None;
    let small_ctx = call.ctx(&quiet, runner);
    let alone_ctx = if call.above_floor(n) {
        &ctx
    } else {
        &small_ctx
    };
    if let Some((dev, why)) = small::run_at_once(call, hash, n) {
        return alone(alone_ctx, dev, why, Vec::new(), out);
    }
    let mut notes = probe::unmodelled(call, hash, n)?;
    let preds = split::predictions(call, hash);
    if preds.iter().all(Option::is_none) {
        let dev = call.cpu().unwrap_or(0);
        let why = "auto: no device has a model yet, so the cpu measures this call";
        return alone(alone_ctx, dev, why.into(), notes, out);
    }
    let split = Split::plan(call, &preds, n, &mut notes);
    let Executed { outcomes, failures } = split.run(&ctx, out)?;
    let forecasts = split.forecasts(call, &preds, &outcomes);
    let decision = split.decision(call);
    call.models.save(false);
    Ok(Decided {
        outcomes,
        decision,
        forecasts,
        predicted_s: Some(split.predicted_s),
        cpu_only_s: split.cpu_only_s,
        gpu_only_s: split.gpu_only_s,
        notes,
        failures,
    })
}

/// Runs the whole call on `dev` as one run, for `why`.
fn alone<T: Send>(
    ctx: &Ctx<'_, T>,
    dev: usize,
    why: String,
    notes: Vec<String>,
    out: &mut [T],
) -> Result<Decided> {
    let n = out.len();
    let Executed { outcomes, failures } = exec::run_static(ctx, vec![(dev, 0..n)], out)?;
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
    let hash = if call.above_floor(n) && !contended {
        Some(call.hash()?)
    } else {
        None
    };
    // runs of a call under the floor are not measured: fixed costs dominate them
    let learn = |dev: usize, k: usize, s: f64, st: &ShareStats| {
        hash.and_then(|h| call.learn(h, dev, k, s, st))
    };
    let Executed { outcomes, failures } = exec::run_static(&call.ctx(&learn, runner), parts, out)?;
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
