//! The per-call receipt: who did what, bytes moved each way, time per stage.

use std::fmt;
use std::ops::Range;

use crate::device::{DeviceKind, ShareStats};
use crate::placement::Placement;

/// What one device did in one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    pub(crate) device: String,
    pub(crate) kind: DeviceKind,
    pub(crate) range: Range<usize>,
    pub(crate) stats: ShareStats,
    pub(crate) busy_s: f64,
}

impl Share {
    /// The device's name.
    pub fn device(&self) -> &str {
        &self.device
    }
    /// The device's kind.
    pub fn kind(&self) -> DeviceKind {
        self.kind
    }
    /// How many elements it computed.
    pub fn elements(&self) -> usize {
        self.range.len()
    }
    /// Which elements (indices into the input) it computed.
    pub fn range(&self) -> Range<usize> {
        self.range.clone()
    }
    /// Bytes copied from the host to the device.
    pub fn bytes_to_device(&self) -> u64 {
        self.stats.bytes_to_device
    }
    /// Bytes copied from the device back to the host.
    pub fn bytes_from_device(&self) -> u64 {
        self.stats.bytes_from_device
    }
    /// Seconds spent moving inputs to the device.
    pub fn upload_s(&self) -> f64 {
        self.stats.upload_s
    }
    /// Seconds spent computing.
    pub fn compute_s(&self) -> f64 {
        self.stats.compute_s
    }
    /// Seconds spent moving results back.
    pub fn download_s(&self) -> f64 {
        self.stats.download_s
    }
    /// How many chunks the share was cut into.
    pub fn chunks(&self) -> u32 {
        self.stats.chunks
    }
    /// The transfer layer's detail: chunking, time per stage (host copy into staging,
    /// device copies, map and read-back), achieved GB/s each way, and the link model's
    /// prediction for the same bytes. All zero for a device with no link.
    pub fn transfer(&self) -> &crate::transfer::TransferStats {
        &self.stats.transfer
    }
    /// Seconds from the start of the call until this device finished its share.
    pub fn busy_s(&self) -> f64 {
        self.busy_s
    }
}

/// What `Auto` predicted for one device, beside what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    pub(crate) device: String,
    pub(crate) model: String,
    pub(crate) planned: usize,
    pub(crate) elements: usize,
    pub(crate) runs: u32,
    pub(crate) predicted_s: f64,
    pub(crate) measured_s: f64,
}

impl Forecast {
    /// The device's name.
    pub fn device(&self) -> &str {
        &self.device
    }
    /// The model the prediction came from, in words (overhead, rate, bounding stage).
    pub fn model(&self) -> &str {
        &self.model
    }
    /// Elements the plan gave the device (0: not worth using for this call).
    pub fn planned(&self) -> usize {
        self.planned
    }
    /// Elements it computed in the end, after balancing.
    pub fn elements(&self) -> usize {
        self.elements
    }
    /// Runs (chunks) it was handed.
    pub fn runs(&self) -> u32 {
        self.runs
    }
    /// Predicted seconds from the start of the call until it finishes its planned share.
    pub fn predicted_s(&self) -> f64 {
        self.predicted_s
    }
    /// Measured seconds from the start of the call until it finished (0 if unused).
    pub fn measured_s(&self) -> f64 {
        self.measured_s
    }
}

/// A device that failed during a call, and who redid its work.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovery {
    pub(crate) device: String,
    pub(crate) range: Range<usize>,
    pub(crate) error: crate::Error,
    pub(crate) redone_by: String,
}

impl Recovery {
    /// The device that failed.
    pub fn device(&self) -> &str {
        &self.device
    }
    /// The elements of the failed run, redone elsewhere.
    pub fn range(&self) -> Range<usize> {
        self.range.clone()
    }
    /// What went wrong.
    pub fn error(&self) -> &crate::Error {
        &self.error
    }
    /// The device that redid the elements.
    pub fn redone_by(&self) -> &str {
        &self.redone_by
    }
}

/// The receipt of one call: what ran where, what moved, how long it took, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub(crate) elements: usize,
    pub(crate) placement: Placement,
    pub(crate) decision: String,
    pub(crate) notes: Vec<String>,
    pub(crate) shares: Vec<Share>,
    pub(crate) wall_s: f64,
    /// Whether the times are virtual (a runtime of simulated devices).
    pub(crate) virtual_clock: bool,
    pub(crate) forecasts: Vec<Forecast>,
    pub(crate) predicted_s: Option<f64>,
    pub(crate) cpu_only_s: Option<f64>,
    pub(crate) gpu_only_s: Option<f64>,
    pub(crate) recoveries: Vec<Recovery>,
    /// Kernels that ran as one (a fused chain of [`crate::Lazy`] stages); 1 otherwise.
    pub(crate) fused: usize,
    /// Kernels that ran one after another in this report (an unfused chain).
    pub(crate) steps: usize,
    /// Bytes read back to the host outside the shares: to plan an array call on the
    /// host, or to gather its result ([`crate::Lazy::to_vec`]); counted in
    /// [`Report::bytes_from_devices`].
    pub(crate) gathered: u64,
    /// How each input reached the devices (filled for calls of [`Kernel::new`]
    /// kernels; empty otherwise).
    ///
    /// [`Kernel::new`]: crate::Kernel::new
    pub(crate) inputs: Vec<InputMove>,
}

/// How one input of a call was sent to the devices that computed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// An element-wise input: each device got its own share's elements.
    Partitioned,
    /// A whole-array input whose reads reach at most `before` elements below and
    /// `after` above each element's own index: each device got its share's part of
    /// it plus that halo.
    Halo {
        /// Elements below a share's first element.
        before: u64,
        /// Elements above a share's last element.
        after: u64,
    },
    /// A whole-array input read anywhere: each device with its own memory got all of
    /// it, once per call (the CPU reads it where it is).
    Whole,
}

/// One input of a call: which argument, how it was sent, and the bytes that crossed
/// a link for it (the CPU's reads cross none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputMove {
    pub(crate) argument: usize,
    pub(crate) sent: Sent,
    pub(crate) bytes: u64,
}

impl InputMove {
    /// The argument's position in the kernel's signature.
    pub fn argument(&self) -> usize {
        self.argument
    }
    /// How it was sent.
    pub fn sent(&self) -> Sent {
        self.sent
    }
    /// Bytes sent over devices' links for it.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl fmt::Display for InputMove {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.sent {
            Sent::Partitioned => "partitioned".to_string(),
            Sent::Halo { before, after } => format!("halo of {before} below, {after} above"),
            Sent::Whole => "whole, once per device".to_string(),
        };
        write!(
            f,
            "argument {}: {how}, {} bytes sent",
            self.argument, self.bytes
        )
    }
}

impl Report {
    /// How each input of the call was sent (partitioned, with a halo, or whole) and
    /// the bytes it moved; empty for `map`/`map2`/`reduce` calls, whose inputs are
    /// always partitioned.
    pub fn inputs(&self) -> &[InputMove] {
        &self.inputs
    }

    /// Kernels fused into the one that ran: a [`Lazy`](crate::Lazy) chain of `k`
    /// element-wise stages evaluated with fusion gives `k` (one pass, no intermediate
    /// written anywhere); a single kernel, or a chain evaluated with
    /// [`fuse(false)`](crate::Lazy::fuse), gives 1.
    pub fn kernels_fused(&self) -> usize {
        self.fused
    }

    /// Kernels run one after another in this report: 1 for a call, `k` for an
    /// unfused chain of `k` stages (whose shares are listed stage after stage).
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// This report followed by `next` (a later stage of the same chain): shares,
    /// notes and recoveries in order, times added.
    pub(crate) fn then(mut self, next: Report) -> Report {
        self.decision = format!("{}; then {}", self.decision, next.decision);
        self.notes.extend(next.notes);
        self.shares.extend(next.shares);
        self.wall_s += next.wall_s;
        self.forecasts.extend(next.forecasts);
        self.predicted_s = None;
        self.cpu_only_s = None;
        self.gpu_only_s = None;
        self.recoveries.extend(next.recoveries);
        self.steps += next.steps;
        self.gathered += next.gathered;
        self
    }

    /// Devices that failed during the call and who redid their elements (the output
    /// is complete and correct all the same). A device that failed is unhealthy:
    /// later calls leave it out until it is probed healthy again
    /// ([`Runtime::health`](crate::Runtime::health)).
    pub fn recoveries(&self) -> &[Recovery] {
        &self.recoveries
    }

    /// Seconds the whole call took.
    pub fn wall_s(&self) -> f64 {
        self.wall_s
    }
    /// One entry per device that took part, in input order.
    pub fn shares(&self) -> &[Share] {
        &self.shares
    }
    /// Elements in the call.
    pub fn elements(&self) -> usize {
        self.elements
    }
    /// The placement asked for.
    pub fn placement(&self) -> Placement {
        self.placement
    }
    /// What was decided, and why, in one line.
    pub fn decision(&self) -> &str {
        &self.decision
    }
    /// Anything else worth knowing (e.g. why no GPU took part).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
    /// Whether the times are virtual: the runtime is made of simulated devices.
    pub fn is_virtual(&self) -> bool {
        self.virtual_clock
    }
    /// `Auto`'s per-device predictions, when it planned a split (empty when it ran
    /// small inputs on the CPU at once, or for other placements).
    pub fn forecasts(&self) -> &[Forecast] {
        &self.forecasts
    }
    /// The makespan `Auto` predicted for its plan.
    pub fn predicted_s(&self) -> Option<f64> {
        self.predicted_s
    }
    /// What the CPU alone would have taken, by the model (when `Auto` planned).
    pub fn cpu_only_s(&self) -> Option<f64> {
        self.cpu_only_s
    }
    /// What the GPUs alone would have taken, by the models (when `Auto` planned and
    /// the runtime has a GPU with a model).
    pub fn gpu_only_s(&self) -> Option<f64> {
        self.gpu_only_s
    }
    /// Total bytes moved host to device, all devices.
    pub fn bytes_to_devices(&self) -> u64 {
        self.shares.iter().map(Share::bytes_to_device).sum()
    }
    /// Total bytes moved device to host, all devices.
    pub fn bytes_from_devices(&self) -> u64 {
        self.shares
            .iter()
            .map(Share::bytes_from_device)
            .sum::<u64>()
            + self.gathered
    }
}

/// Formats seconds with a unit that keeps three significant figures readable.
pub(crate) fn secs(s: f64) -> String {
    if s == 0.0 {
        "-".into()
    } else if s < 1e-3 {
        format!("{:.1} us", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.3} s")
    }
}

/// Formats a byte count with a binary unit.
pub(crate) fn bytes(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < U.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = if self.wall_s > 0.0 {
            self.elements as f64 / self.wall_s / 1e6
        } else {
            0.0
        };
        writeln!(
            f,
            "{} elements in {}{} ({rate:.1} M elements/s), placement {}",
            self.elements,
            secs(self.wall_s),
            if self.virtual_clock { " (virtual)" } else { "" },
            self.placement
        )?;
        writeln!(f, "decision: {}", self.decision)?;
        for i in &self.inputs {
            writeln!(f, "input {i}")?;
        }
        if self.fused > 1 {
            writeln!(f, "fused: {} kernels in one pass", self.fused)?;
        }
        if self.steps > 1 {
            writeln!(f, "steps: {} kernels, one after another", self.steps)?;
        }
        if !self.forecasts.is_empty() {
            let w = self
                .forecasts
                .iter()
                .map(|x| x.device.len())
                .max()
                .unwrap_or(6)
                .max(6);
            writeln!(
                f,
                "{:<w$}  {:>12} {:>12} {:>5} {:>10} {:>10}  model",
                "plan", "planned", "elements", "runs", "predicted", "measured"
            )?;
            for x in &self.forecasts {
                writeln!(
                    f,
                    "{:<w$}  {:>12} {:>12} {:>5} {:>10} {:>10}  {}",
                    x.device,
                    x.planned,
                    x.elements,
                    x.runs,
                    secs(x.predicted_s),
                    secs(x.measured_s),
                    x.model
                )?;
            }
        }
        let w = self
            .shares
            .iter()
            .map(|s| s.device.len())
            .max()
            .unwrap_or(6)
            .max(6);
        writeln!(
            f,
            "{:<w$}  {:<14} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "device",
            "kind",
            "elements",
            "to device",
            "from dev",
            "upload",
            "compute",
            "download",
            "busy"
        )?;
        for s in &self.shares {
            writeln!(
                f,
                "{:<w$}  {:<14} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                s.device,
                s.kind.name(),
                s.elements(),
                bytes(s.bytes_to_device()),
                bytes(s.bytes_from_device()),
                secs(s.upload_s()),
                secs(s.compute_s()),
                secs(s.download_s()),
                secs(s.busy_s),
            )?;
        }
        for s in self.shares.iter().filter(|s| s.stats.transfer.chunks > 0) {
            let t = &s.stats.transfer;
            writeln!(
                f,
                "{}: {} chunk(s) of {}, ring {}; fill {}, copy up {}, copy down {}, \
                 map wait {}, read back {}; up {:.2} GB/s ({} measured, {} predicted), \
                 down {:.2} GB/s ({} measured, {} predicted)",
                s.device,
                t.chunks,
                bytes(t.chunk_bytes),
                t.ring,
                secs(t.fill_s),
                secs(t.copy_up_s),
                secs(t.copy_down_s),
                secs(t.map_wait_s),
                secs(t.readback_s),
                t.up_gbps(),
                secs(t.measured_up_s()),
                secs(t.predicted_up_s),
                t.down_gbps(),
                secs(t.measured_down_s()),
                secs(t.predicted_down_s),
            )?;
        }
        for r in &self.recoveries {
            writeln!(
                f,
                "recovered: {} failed on elements {}..{} ({}); redone by {}",
                r.device, r.range.start, r.range.end, r.error, r.redone_by
            )?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}
