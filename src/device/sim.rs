//! Simulated devices on a virtual clock, for exact scheduler tests without a GPU.
//!
//! A [`SimDevice`] computes the real output on the host (with the CPU evaluator) but
//! its time is virtual: a simulated CPU takes `overhead + n / rate`; a simulated GPU
//! moves its data over a link (`alpha + bytes / beta` each way) through the same
//! pipeline model the scheduler predicts with. The scheduler learns a simulated device
//! by measuring it, as it does a real one: the link by timing (virtual) transfers of
//! several sizes, the rates by running the kernel. It never reads the parameters.

use std::sync::atomic::{AtomicU64, Ordering};

use super::cpu::CpuDevice;
use super::{Device, DeviceInfo, DeviceKind, HeldTables, HostLink, HostTask, ShareStats, Timed};
use crate::cost::{pipeline_cost, Fit, PIPELINE_CHUNK_BYTES};
use crate::error::{Error, Result};
use crate::kernel::reduce::{Partial, Reduce};
use crate::kernel::wgsl::REDUCE_PER_GROUP;
use crate::transfer::calibrate::fit;
use crate::transfer::{Link, LinkDir};

/// A simulated device with a set throughput and, for a GPU, a link to the host.
///
/// ```
/// use hybrid::{Runtime, SimDevice};
/// # fn main() -> hybrid::Result<()> {
/// let sim = Runtime::builder()
///     .no_default_devices()
///     .device(SimDevice::cpu("sim-cpu", 2.0e9))
///     .device(SimDevice::gpu("sim-gpu", 20.0e9).link(20e-6, 12.0e9, 12.0e9))
///     .build()?;
/// assert_eq!(sim.devices().len(), 2);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SimDevice {
    name: String,
    kind: DeviceKind,
    rate: f64,
    link: Link,
    overhead_s: f64,
    fail_after: Option<u64>,
    max_table_bytes: Option<u64>,
    no_f64: bool,
    no_int64: bool,
}

/// Default link of a simulated GPU: PCIe 3.0 x16-like, 10 us and 12 GB/s each way.
const DEFAULT_DIR: LinkDir = LinkDir {
    alpha_s: 10e-6,
    beta_bytes_per_s: 12e9,
};

impl SimDevice {
    /// A simulated CPU computing `rate` elements per second, with 2 us of overhead
    /// per run.
    pub fn cpu(name: impl Into<String>, rate: f64) -> SimDevice {
        SimDevice {
            name: name.into(),
            kind: DeviceKind::Cpu,
            rate,
            link: Link {
                up: DEFAULT_DIR,
                down: DEFAULT_DIR,
            },
            overhead_s: 2e-6,
            fail_after: None,
            max_table_bytes: None,
            no_f64: false,
            no_int64: false,
        }
    }

    /// A simulated discrete GPU computing `rate` elements per second, with 10 us of
    /// launch overhead per run, behind a 10 us, 12 GB/s link unless
    /// [`link`](Self::link) says otherwise.
    pub fn gpu(name: impl Into<String>, rate: f64) -> SimDevice {
        SimDevice {
            kind: DeviceKind::DiscreteGpu,
            overhead_s: 10e-6,
            ..SimDevice::cpu(name, rate)
        }
    }

    /// The link to the host: latency `alpha_s` seconds per transfer, bandwidths in
    /// bytes per second up (host to device) and down. Ignored for a CPU.
    pub fn link(mut self, alpha_s: f64, up_bytes_per_s: f64, down_bytes_per_s: f64) -> SimDevice {
        self.link = Link {
            up: LinkDir {
                alpha_s,
                beta_bytes_per_s: up_bytes_per_s,
            },
            down: LinkDir {
                alpha_s,
                beta_bytes_per_s: down_bytes_per_s,
            },
        };
        self
    }

    /// Seconds every run costs whatever its size (launch, synchronisation).
    pub fn overhead(mut self, seconds: f64) -> SimDevice {
        self.overhead_s = seconds;
        self
    }

    /// Fault injection: once the device has computed `elements` elements in all, its
    /// runs fail with [`Error::DeviceFailed`] (a run that crosses the limit computes
    /// up to it, then fails).
    pub fn fail_after(mut self, elements: u64) -> SimDevice {
        self.fail_after = Some(elements);
        self
    }

    /// The largest table (whole-array input) the device's buffers hold, in bytes: a
    /// kernel with a larger one is refused, as a GPU refuses a binding past its limit.
    pub fn max_table_bytes(mut self, bytes: u64) -> SimDevice {
        self.max_table_bytes = Some(bytes);
        self
    }

    /// The device computes in no `f64`, as a GPU without wgpu's `SHADER_F64`: kernels
    /// that do are not run on it.
    pub fn without_f64(mut self) -> SimDevice {
        self.no_f64 = true;
        self
    }

    /// The device computes in no `i64` or `u64`, as a GPU without wgpu's
    /// `SHADER_INT64`: kernels that do, or that take or give 64-bit elements on a GPU
    /// (a shader moves them as `u64`), are not run on it.
    pub fn without_int64(mut self) -> SimDevice {
        self.no_int64 = true;
        self
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn into_device(self) -> Result<SimBackend> {
        let info = DeviceInfo {
            name: self.name.clone(),
            backend: "sim".into(),
            kind: self.kind,
            driver: "virtual clock".into(),
            types: DeviceInfo::all_types()
                .into_iter()
                .filter(|&t| !(self.no_f64 && t == crate::ScalarType::F64))
                .filter(|&t| !(self.no_int64 && t.is_wide() && t != crate::ScalarType::F64))
                .collect(),
        };
        let measured = self.kind.is_gpu().then(|| calibrate(&self.link)).flatten();
        Ok(SimBackend {
            info,
            host: CpuDevice::new(None)?,
            done: AtomicU64::new(0),
            measured,
            spec: self,
            held: std::sync::Mutex::default(),
        })
    }
}

/// The link as a GPU would measure it: timed transfers from 4 KiB to 64 MiB, fitted.
fn calibrate(link: &Link) -> Option<Link> {
    let sizes: Vec<u64> = (12..=26).step_by(2).map(|k| 1u64 << k).collect();
    let time =
        |d: &LinkDir| -> Vec<(u64, f64)> { sizes.iter().map(|&b| (b, d.time_s(b))).collect() };
    Some(Link {
        up: fit(&time(&link.up))?,
        down: fit(&time(&link.down))?,
    })
}

/// A [`SimDevice`] in a runtime.
pub(crate) struct SimBackend {
    info: DeviceInfo,
    spec: SimDevice,
    host: CpuDevice,
    done: AtomicU64,
    measured: Option<Link>,
    /// Table windows held for the current call (counted, not stored).
    held: std::sync::Mutex<HeldTables<()>>,
}

impl SimBackend {
    /// Virtual stage times and total for `n` elements of `arity` inputs, mapped (one
    /// value back per element) or reduced (one per GPU workgroup).
    fn stats(&self, n: usize, arity: usize, outputs: usize, reduced: bool) -> Timed {
        let s = &self.spec;
        let compute_s = s.overhead_s + n as f64 / s.rate;
        if !s.kind.is_gpu() {
            let stats = ShareStats {
                compute_s,
                chunks: 1,
                ..ShareStats::default()
            };
            return Timed {
                stats,
                secs: compute_s,
            };
        }
        let (up_b, down_b) = (
            4 * arity as u64,
            if reduced { 0 } else { 4 * outputs as u64 },
        );
        let compute = Fit {
            fixed_s: s.overhead_s,
            per_elem_s: 1.0 / s.rate,
        };
        let (cost, _) = pipeline_cost(&s.link, compute, up_b, down_b);
        let per_chunk = (PIPELINE_CHUNK_BYTES / up_b.max(1)).max(1);
        let chunks = (n as u64).div_ceil(per_chunk);
        let bytes_in = up_b * n as u64;
        let bytes_out = if reduced {
            4 * (n as u64).div_ceil(REDUCE_PER_GROUP as u64)
        } else {
            down_b * n as u64
        };
        let stats = ShareStats {
            bytes_to_device: bytes_in,
            bytes_from_device: bytes_out,
            upload_s: chunks as f64 * s.link.up.alpha_s
                + bytes_in as f64 / s.link.up.beta_bytes_per_s,
            compute_s,
            download_s: chunks as f64 * s.link.down.alpha_s
                + bytes_out as f64 / s.link.down.beta_bytes_per_s,
            chunks: chunks as u32,
            ..ShareStats::default()
        };
        Timed {
            stats,
            secs: cost.work_s(n),
        }
    }
}

impl SimBackend {
    /// `timed` plus sending the task's tables over the link (α + bytes / β each),
    /// those the device does not hold yet for this call, as a GPU keeps them.
    fn send_tables(&self, task: &HostTask<'_>, mut timed: Timed) -> Timed {
        if !self.spec.kind.is_gpu() || task.tables.is_empty() {
            return timed;
        }
        let mut held = crate::sync::lock(&self.held);
        held.begin(task.tables[0].call);
        for t in task.tables {
            let Ok((_, _, _, true)) = held.hold(t, || Ok(())) else {
                continue;
            };
            let bytes = 4 * t.data.len() as u64;
            let secs = self.spec.link.up.time_s(bytes);
            timed.secs += secs;
            timed.stats.upload_s += secs;
            timed.stats.table_s += secs;
            timed.stats.bytes_to_device += bytes;
            if let Some(b) = timed.stats.table_bytes.get_mut(t.index) {
                *b += bytes;
            }
        }
        timed
    }
}

impl Device for SimBackend {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn is_virtual(&self) -> bool {
        true
    }

    fn host_link(&self) -> Option<&dyn HostLink> {
        self.spec.kind.is_gpu().then_some(self as &dyn HostLink)
    }

    fn accepts(
        &self,
        _kernel: &crate::kernel::Bound,
        _op: Option<Reduce>,
        table_bytes: u64,
    ) -> Result<()> {
        match self.spec.max_table_bytes {
            Some(max) if table_bytes > max => Err(crate::error::Error::DeviceCannot {
                device: self.info.name.clone(),
                reason: format!(
                    "a table of {table_bytes} bytes exceeds its largest buffer ({max} bytes)"
                ),
            }),
            _ => Ok(()),
        }
    }

    fn run(&self, task: &HostTask<'_>, out: &mut [u32]) -> Result<Timed> {
        let n = task.len;
        if n == 0 {
            return Ok(Timed::default());
        }
        let m = out.len() / n;
        let (kernel, inputs, first) = (task.kernel, task.inputs, task.first_index);
        if let Some(ok) = self.fails_within(n) {
            let ins = super::slice_inputs(inputs, &kernel.input_words(), 0..ok);
            self.host
                .map_tables(kernel, &ins, task.tables, first, &mut out[..ok * m])?;
            return Err(self.failure());
        }
        self.host
            .map_tables(kernel, inputs, task.tables, first, out)?;
        let timed = self.stats(n, inputs.len(), m, false);
        Ok(self.send_tables(task, timed))
    }

    fn reduce(&self, task: &HostTask<'_>, op: Reduce) -> Result<(Partial, Timed)> {
        let len = task.len;
        if len == 0 {
            return Ok((op.identity(task.kernel.output_type()?), Timed::default()));
        }
        if self.fails_within(len).is_some() {
            return Err(self.failure());
        }
        let (part, _) = self.host.fold_tables(
            task.kernel,
            op,
            task.inputs,
            task.tables,
            task.first_index,
            len,
        )?;
        let timed = self.stats(len, task.inputs.len(), 1, true);
        Ok((part, self.send_tables(task, timed)))
    }
}

impl HostLink for SimBackend {
    /// The link as the scheduler measured it (by timing virtual transfers).
    fn fitted(&self) -> Option<Link> {
        self.measured
    }
}

impl SimBackend {
    /// Counts `n` more elements; when the device is set to fail within them, how many
    /// it completes first.
    fn fails_within(&self, n: usize) -> Option<usize> {
        let before = self.done.fetch_add(n as u64, Ordering::Relaxed);
        let limit = self.spec.fail_after?;
        (before.saturating_add(n as u64) > limit).then(|| limit.saturating_sub(before) as usize)
    }

    fn failure(&self) -> Error {
        Error::DeviceFailed {
            device: self.info.name.clone(),
            stage: "compute",
            reason: format!(
                "simulated failure after {} elements",
                self.spec.fail_after.unwrap_or(0)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Task;
    use crate::kernel::{Expr, Kernel};

    #[test]
    fn computes_the_real_output_on_a_virtual_clock() {
        let k = Kernel::map(|x: Expr<f32>| x * 2.0);
        let dev = SimDevice::gpu("g", 1e9)
            .link(1e-5, 1e9, 2e9)
            .into_device()
            .unwrap_or_else(|e| panic!("{e}"));
        let xs: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let mut out = vec![0u32; 1000];
        let ins = [bytemuck::cast_slice(&xs)];
        let Timed { stats, secs: t } = dev
            .run(&Task::new(&k.inner().bind(), &ins, 0, 1000), &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        let ys: &[f32] = bytemuck::cast_slice(&out);
        assert_eq!(ys[10], 20.0);
        assert_eq!(stats.bytes_to_device, 4000);
        // one chunk: every stage in full, plus both latencies
        let want =
            2e-5 + 10e-6 + 4000.0 / 1e9 + 1000.0 / 1e9 + 4000.0 / 2e9 + 2e-5 / 65_536.0 * 1000.0;
        assert!((t - want).abs() < 1e-9, "{t} vs {want}");
        let l = (&dev as &dyn Device)
            .link()
            .unwrap_or_else(|| panic!("no link"));
        assert!((l.up.alpha_s - 1e-5).abs() < 1e-9);
        assert!((l.down.beta_bytes_per_s - 2e9).abs() / 2e9 < 1e-6);
    }

    #[test]
    fn fails_after_the_set_number_of_elements() {
        let k = Kernel::map(|x: Expr<f32>| x + 1.0);
        let dev = SimDevice::gpu("flaky", 1e9)
            .fail_after(1500)
            .into_device()
            .unwrap_or_else(|e| panic!("{e}"));
        let xs = vec![1.0f32; 1000];
        let mut out = vec![0u32; 1000];
        let ins = [bytemuck::cast_slice(&xs)];
        let bound = k.inner().bind();
        let task = Task::new(&bound, &ins, 0, 1000);
        assert!(dev.run(&task, &mut out).is_ok());
        let e = dev.run(&task, &mut out);
        assert!(matches!(e, Err(Error::DeviceFailed { .. })), "{e:?}");
        let ys: &[f32] = bytemuck::cast_slice(&out);
        assert_eq!(ys[499], 2.0);
    }
}
