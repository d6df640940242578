//! Probes of the link, each run once per device on first need: the upload, download
//! and dispatch times the link model is fitted to (stored on disk by
//! `transfer::calibrate`), and what device timestamps cost, which decides when a call
//! is timed with them.

use std::borrow::Cow;
use std::time::Instant;

use super::GpuDevice;
use crate::error::Result;
use crate::kernel::wgsl::{Shader, ENTRY_POINT};
use crate::transfer::calibrate::{self, Calibration};
use crate::transfer::staging::Job;
use crate::transfer::Link;

/// Measured runs per size when calibrating (after one warm-up); the fastest counts.
const CALIBRATION_REPS: usize = 3;

/// Bytes of the round trip that measures what device timestamps cost.
const STAMP_PROBE_BYTES: u64 = 64 << 10;

/// Timed repetitions of each variant (with and without timestamps), after a warm-up.
const STAMP_PROBE_REPS: usize = 8;

/// The most of a chunk's predicted transfer time its device timestamps may cost for a
/// call to be timed with them: timing should not change what it measures.
const STAMP_SHARE: f64 = 1.0 / 64.0;

impl GpuDevice {
    /// The link calibration: loaded from the cache directory, or measured now (once
    /// per device) and stored. `None` when measuring failed (said on stderr).
    pub(crate) fn calibration(&self) -> Option<&Calibration> {
        self.calibration
            .get_or_init(|| {
                let dir = self.config().cache_dir.unwrap_or_else(crate::cache::dir);
                let key =
                    calibrate::Key::new(&self.info.name, &self.info.backend, &self.info.driver);
                let now = calibrate::now_unix_s();
                match calibrate::load_or_measure(&dir, &key, now, || self.measure(now)) {
                    Ok((c, _, warnings)) => {
                        for w in warnings {
                            eprintln!("hybrid: warning: {}: {w}", self.info.name);
                        }
                        Some(c)
                    }
                    Err(e) => {
                        eprintln!(
                            "hybrid: warning: {}: link calibration failed: {e}",
                            self.info.name
                        );
                        None
                    }
                }
            })
            .as_ref()
    }

    /// Measures uploads and downloads from 4 KiB to 64 MiB (as the adapter allows) and
    /// an empty dispatch, and fits the link.
    fn measure(&self, now: u64) -> Result<Calibration> {
        let sizes: Vec<u64> = calibrate::SIZES
            .iter()
            .copied()
            .filter(|&b| b <= self.max_chunk_bytes)
            .collect();
        let largest = sizes.last().copied().unwrap_or(0) as usize / 4;
        let src = vec![0x5a5a_5a5au32; largest];
        let mut dst = vec![0u32; largest];
        let (mut up, mut down) = (Vec::new(), Vec::new());
        self.with_ctx(false, |ctx| {
            for &b in &sizes {
                let n = b as usize / 4;
                let (mut best_up, mut best_down) = (f64::INFINITY, f64::INFINITY);
                for rep in 0..=CALIBRATION_REPS {
                    let t = Instant::now();
                    ctx.stream(one_chunk(&[&src[..n]], None, n))?;
                    let t_up = t.elapsed().as_secs_f64();
                    let t = Instant::now();
                    ctx.stream(one_chunk(&[], Some(&mut dst[..n]), n))?;
                    let t_down = t.elapsed().as_secs_f64();
                    if rep > 0 {
                        best_up = best_up.min(t_up);
                        best_down = best_down.min(t_down);
                    }
                }
                up.push((b, best_up));
                down.push((b, best_down));
            }
            Ok(())
        })?;
        let dispatch_s = self.measure_dispatch()?;
        Calibration::from_samples(up, down, dispatch_s, now).ok_or_else(|| {
            self.failed(
                "calibrate",
                "transfer times do not grow with size; no link fitted",
            )
        })
    }

    /// Seconds to submit one empty workgroup and wait for it: the fastest of a few.
    fn measure_dispatch(&self) -> Result<f64> {
        let shader = Shader::from_source("@compute @workgroup_size(1) fn main() {}\n".into(), 0);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("hybrid empty"),
                source: wgpu::ShaderSource::Wgsl(Cow::Borrowed(&shader.source)),
            });
        let pipeline = self.scoped("calibrate", || {
            Ok(self
                .device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some("hybrid empty"),
                    layout: None,
                    module: &module,
                    entry_point: Some(ENTRY_POINT),
                    compilation_options: Default::default(),
                    cache: None,
                }))
        })?;
        let mut best = f64::INFINITY;
        for rep in 0..=10 {
            let t = Instant::now();
            let mut enc = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("hybrid empty"),
                });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
                pass.set_pipeline(&pipeline);
                pass.dispatch_workgroups(1, 1, 1);
            }
            self.queue.submit([enc.finish()]);
            self.wait("calibrate")?;
            if rep > 0 {
                best = best.min(t.elapsed().as_secs_f64());
            }
        }
        Ok(best)
    }

    /// What one chunk's device timestamps cost a call: the fastest of a few one-chunk
    /// 64 KiB round trips with them, less the fastest without, interleaved. `None`
    /// when the device has no timestamps (or measuring failed).
    fn stamp_cost(&self) -> Option<f64> {
        *self.stamp_cost.get_or_init(|| {
            self.timestamp_period?;
            let n = STAMP_PROBE_BYTES as usize / 4;
            let src = vec![0u32; n];
            let mut dst = vec![0u32; n];
            let mut best = [f64::INFINITY; 2];
            for rep in 0..=STAMP_PROBE_REPS {
                for (k, timed) in [false, true].into_iter().enumerate() {
                    let t = Instant::now();
                    self.with_ctx(timed, |ctx| {
                        ctx.stream(one_chunk(&[&src[..]], Some(&mut dst[..]), n))
                    })
                    .ok()?;
                    if rep > 0 {
                        best[k] = best[k].min(t.elapsed().as_secs_f64());
                    }
                }
            }
            Some((best[1] - best[0]).max(0.0))
        })
    }

    /// Whether a call moving chunks of `chunk` elements should time them with device
    /// timestamps: when the device has them and they cost at most [`STAMP_SHARE`] of
    /// one chunk's predicted transfer time (`HYBRID_DEVICE_TIMESTAMPS=1` or `0`
    /// forces the choice). On drivers where a timestamp costs a flush (lavapipe:
    /// ~100 µs a chunk) small transfers go untimed, and their receipts say so.
    pub(super) fn timed(&self, chunk: usize, link: Option<&Link>) -> bool {
        if self.timestamp_period.is_none() {
            return false;
        }
        match std::env::var("HYBRID_DEVICE_TIMESTAMPS").ok().as_deref() {
            Some("1") => return true,
            Some("0") => return false,
            _ => {}
        }
        let Some(cost) = self.stamp_cost() else {
            return false;
        };
        let bytes = chunk as u64 * 4;
        let chunk_s = link.map_or(0.0, |l| l.up.time_s(bytes).min(l.down.time_s(bytes)));
        cost <= STAMP_SHARE * chunk_s
    }
}

/// A one-chunk, one-slot job with no kernel (for calibration).
fn one_chunk<'a, 'b>(inputs: &'a [&'a [u32]], out: Option<&'b mut [u32]>, n: usize) -> Job<'a, 'b> {
    Job {
        inputs,
        out,
        compute: None,
        len: n,
        chunk: n,
        ring: 1,
        link: None,
    }
}
