//! Staging-buffer pools, and the chunked, pipelined upload → compute → download.
//!
//! Host data never goes through `Queue::write_buffer`: it is copied into a mapped
//! staging buffer (`MAP_WRITE | COPY_SRC`), which the device copies into storage;
//! results come back through `MAP_READ | COPY_DST` staging. Chunks flow through a ring
//! of slots (staging and device buffers per slot), so that while the device copies and
//! computes chunk `i`, the host fills the staging of the next chunk and reads back an
//! earlier one. All buffers come from a [`Pool`] keyed by usage and size class.
//!
//! The cut: `pool` keeps buffers between calls; `ring` takes a job's slots from the
//! pool and gives them back; `stream` runs a job through the ring (fill, submit,
//! read back). This file holds what they share: the context a transfer runs in (its
//! waits, error scopes and fault injection), the job and its result. Imports go one
//! way: `stream` uses `ring`, both use this file, this file uses `pool` only.

mod pool;
mod ring;
mod stream;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{Link, TransferStats};
use crate::error::{Error, Result};
pub(crate) use pool::{Kind, Pool, DEFAULT_IDLE_BYTES};

/// Longest wait for a buffer mapping once its submission is done.
const MAP_TIMEOUT: Duration = Duration::from_secs(60);

/// Bytes of the uniform parameter block: base, len, row, zero.
pub(crate) const PARAMS_BYTES: u64 = 16;

/// Timestamps written per chunk: before the upload copy, before and after compute,
/// after the download copy.
const QUERIES: u32 = 4;

/// Bytes of the resolved timestamps, appended to a chunk's read-back staging.
const QUERY_BYTES: u64 = QUERIES as u64 * 8;

/// The device-side context a transfer runs in.
pub(crate) struct Ctx<'a> {
    pub(crate) device: &'a wgpu::Device,
    pub(crate) queue: &'a wgpu::Queue,
    pub(crate) pool: &'a Pool,
    /// Nanoseconds per timestamp tick, when the device can time copies and passes.
    pub(crate) timestamp_period: Option<f32>,
    /// Turns a driver complaint into this device's error (device lost wins).
    pub(crate) fail: &'a (dyn Fn(&'static str, String) -> Error + Sync),
    /// Fault injection: chunks left before each further chunk fails.
    pub(crate) fault: Option<&'a std::sync::atomic::AtomicU64>,
}

/// A kernel to run on each chunk between upload and download.
pub(crate) struct Compute<'a> {
    pub(crate) pipeline: &'a wgpu::ComputePipeline,
    pub(crate) layout: &'a wgpu::BindGroupLayout,
    pub(crate) max_groups: u32,
    pub(crate) first_index: u64,
    /// Elements each workgroup covers (the workgroup size for a map, more for a
    /// reduction, whose threads each take several).
    pub(crate) group_elems: u32,
    /// Input elements per output element: 1 for a map; a reduction writes one
    /// partial per workgroup. Chunks are a multiple of it.
    pub(crate) out_ratio: usize,
    /// Bytes of the kernel's uniform block: [`PARAMS_BYTES`] of header, then its
    /// parameter values.
    pub(crate) uniform_bytes: u64,
    /// The kernel's parameter values (bit patterns), written after the header (with
    /// its tables' extents after them).
    pub(crate) params: &'a [u32],
    /// Words each output element has: a kernel's results per element (1 for a
    /// reduction's partials).
    pub(crate) outputs: usize,
    /// The kernel's whole-array inputs, already on the device, bound after the inputs.
    pub(crate) tables: &'a [&'a wgpu::Buffer],
    /// Words per element of each input: 1, or 2 for a 64-bit type (empty: all 1).
    pub(crate) words: &'a [usize],
}

impl Compute<'_> {
    /// Output words for a chunk of `len` input elements.
    fn out_len(&self, len: usize) -> usize {
        len.div_ceil(self.out_ratio.max(1)) * self.outputs.max(1)
    }

    /// Where in the output a chunk starting at input element `start` writes.
    fn out_start(&self, start: usize) -> usize {
        start / self.out_ratio.max(1) * self.outputs.max(1)
    }
}

/// What a stream moves and computes.
pub(crate) struct Job<'a, 'b> {
    /// Inputs uploaded chunk by chunk (none for a download-only transfer).
    pub(crate) inputs: &'a [&'a [u32]],
    /// Where results go, when anything comes back: the kernel's output, or (with no
    /// kernel) the first input's device copy, or (with no input) the device buffer.
    pub(crate) out: Option<&'b mut [u32]>,
    /// The kernel, if any.
    pub(crate) compute: Option<Compute<'a>>,
    /// Elements in the whole job.
    pub(crate) len: usize,
    /// Elements per chunk.
    pub(crate) chunk: usize,
    /// Slots in the ring.
    pub(crate) ring: usize,
    /// The link model, for the predictions in the receipt.
    pub(crate) link: Option<Link>,
}

impl Job<'_, '_> {
    /// Words per element of input `k`: 1 but for a kernel's 64-bit input.
    fn words(&self, k: usize) -> usize {
        self.compute
            .as_ref()
            .and_then(|c| c.words.get(k).copied())
            .unwrap_or(1)
    }

    /// Bytes of a chunk of `len` elements of each input, in order.
    fn input_bytes(&self, len: usize) -> impl Iterator<Item = u64> + '_ {
        (0..self.inputs.len()).map(move |k| (len * self.words(k)) as u64 * 4)
    }
}

/// What a stream did: the share's stage times and the transfer details.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Streamed {
    pub(crate) transfer: TransferStats,
    pub(crate) compute_s: f64,
}

/// Workgroups in x and y, and threads per row, for `len` elements.
pub(crate) fn grid(len: usize, max_groups: u32, wg: u32) -> (u32, u32, u32) {
    let groups = (len as u64).div_ceil(wg as u64);
    let gx = groups.min(max_groups as u64);
    let gy = groups.div_ceil(gx.max(1));
    (gx as u32, gy as u32, (gx * wg as u64) as u32)
}

impl Ctx<'_> {
    fn fail(&self, stage: &'static str, reason: impl ToString) -> Error {
        (self.fail)(stage, reason.to_string())
    }

    /// Runs `f` inside validation and out-of-memory error scopes.
    pub(crate) fn scoped<T>(
        &self,
        stage: &'static str,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = pollster::block_on(validation.pop());
        let o = pollster::block_on(oom.pop());
        if let Some(e) = v.or(o) {
            return Err(self.fail(stage, e));
        }
        out
    }

    /// Waits for a map callback: polls the device until `submission` is done, then
    /// until the callback has run (another thread's poll may have taken it).
    fn wait_map(
        &self,
        submission: &wgpu::SubmissionIndex,
        rx: &mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
    ) -> Result<()> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(submission.clone()),
                timeout: Some(MAP_TIMEOUT),
            })
            .map_err(|e| self.fail("map", e))?;
        let started = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_millis(2)) {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => return Err(self.fail("map", e)),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(self.fail("map", "the map callback was dropped"))
                }
                Err(mpsc::RecvTimeoutError::Timeout) if started.elapsed() >= MAP_TIMEOUT => {
                    return Err(self.fail("map", "no map callback in time"))
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.device
                        .poll(wgpu::PollType::Poll)
                        .map_err(|e| self.fail("map", e))?;
                }
            }
        }
    }

    /// Counts a chunk down the injected fault, failing once it is spent.
    fn injected_fault(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        let Some(f) = self.fault else { return Ok(()) };
        let left = f.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            (v != 0 && v != u64::MAX).then(|| v - 1)
        });
        match left {
            Ok(_) | Err(u64::MAX) => Ok(()),
            Err(_) => Err(self.fail("compute", "injected fault (fail_gpu_after_chunks)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_covers_len() {
        assert_eq!(grid(1, 65_535, 256), (1, 1, 256));
        assert_eq!(grid(256, 65_535, 256), (1, 1, 256));
        assert_eq!(grid(257, 65_535, 256), (2, 1, 512));
        assert_eq!(
            grid(65_535 * 256 + 1, 65_535, 256),
            (65_535, 2, 65_535 * 256)
        );
    }
}
