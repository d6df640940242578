//! Staging-buffer pools, and the chunked, pipelined upload → compute → download.
//!
//! Host data never goes through `Queue::write_buffer`: it is copied into a mapped
//! staging buffer (`MAP_WRITE | COPY_SRC`), which the device copies into storage;
//! results come back through `MAP_READ | COPY_DST` staging. Chunks flow through a ring
//! of slots (staging and device buffers per slot), so that while the device copies and
//! computes chunk `i`, the host fills the staging of the next chunk and reads back an
//! earlier one. All buffers come from a [`Pool`] keyed by usage and size class.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use super::{Link, TransferStats};
use crate::error::{Error, Result};

/// Buffers idle longer than this are released at the next use of the pool.
const IDLE_RELEASE: Duration = Duration::from_secs(30);

/// Default bound on the bytes of idle buffers a pool keeps.
pub(crate) const DEFAULT_IDLE_BYTES: u64 = 1 << 30;

/// Longest wait for a buffer mapping once its submission is done.
const MAP_TIMEOUT: Duration = Duration::from_secs(60);

/// Bytes of the uniform parameter block: base, len, row, zero.
pub(crate) const PARAMS_BYTES: u64 = 16;

/// Timestamps written per chunk: before the upload copy, before and after compute,
/// after the download copy.
const QUERIES: u32 = 4;

/// Bytes of the resolved timestamps, appended to a chunk's read-back staging.
const QUERY_BYTES: u64 = QUERIES as u64 * 8;

/// What a pooled buffer is for; each has its own usage flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Host to device staging, kept mapped for writing while idle.
    Upload,
    /// Device to host staging.
    Download,
    /// Storage a kernel reads (and a copy fills).
    Input,
    /// Storage a kernel writes (and a copy drains).
    Output,
    /// A kernel's uniform parameters.
    Params,
    /// Where timestamp queries are resolved.
    Resolve,
}

impl Kind {
    fn usage(self) -> wgpu::BufferUsages {
        use wgpu::BufferUsages as U;
        match self {
            Kind::Upload => U::MAP_WRITE | U::COPY_SRC,
            Kind::Download => U::MAP_READ | U::COPY_DST,
            Kind::Input => U::STORAGE | U::COPY_DST | U::COPY_SRC,
            Kind::Output => U::STORAGE | U::COPY_SRC,
            Kind::Params => U::UNIFORM | U::COPY_DST,
            Kind::Resolve => U::QUERY_RESOLVE | U::COPY_SRC,
        }
    }
}

/// The size class a request of `bytes` is served from: rounded up to a quarter of
/// its power of two (at most 25% waste), at least 256 bytes.
pub(crate) fn size_class(bytes: u64) -> u64 {
    let b = bytes.max(256);
    let top = 63 - b.leading_zeros();
    let step = 1u64 << top.saturating_sub(2);
    b.div_ceil(step) * step
}

struct Idle {
    kind: Kind,
    buffer: wgpu::Buffer,
    since: Instant,
}

/// Buffers kept between calls, keyed by kind and size class, bounded in bytes; idle
/// ones are released after [`IDLE_RELEASE`], and all of them under memory pressure.
pub(crate) struct Pool {
    idle: Mutex<Vec<Idle>>,
    max_idle_bytes: AtomicU64,
    allocations: AtomicU64,
}

impl Pool {
    pub(crate) fn new(max_idle_bytes: u64) -> Pool {
        Pool {
            idle: Mutex::new(Vec::new()),
            max_idle_bytes: AtomicU64::new(max_idle_bytes),
            allocations: AtomicU64::new(0),
        }
    }

    /// Buffers allocated since the pool was made.
    pub(crate) fn allocations(&self) -> u64 {
        self.allocations.load(Ordering::Relaxed)
    }

    /// Bytes held by idle buffers.
    #[cfg(test)]
    pub(crate) fn idle_bytes(&self) -> u64 {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.iter().map(|b| b.buffer.size()).sum()
    }

    pub(crate) fn set_max_idle_bytes(&self, bytes: u64) {
        self.max_idle_bytes.store(bytes, Ordering::Relaxed);
        self.trim(Instant::now());
    }

    /// Releases every idle buffer (memory pressure).
    pub(crate) fn clear(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// A buffer of `kind` with at least `bytes`, reused when one is idle. An
    /// [`Kind::Upload`] buffer comes mapped for writing.
    pub(crate) fn take(&self, device: &wgpu::Device, kind: Kind, bytes: u64) -> wgpu::Buffer {
        let size = size_class(bytes);
        let now = Instant::now();
        {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.retain(|b| now.duration_since(b.since) < IDLE_RELEASE);
            if let Some(i) = idle
                .iter()
                .rposition(|b| b.kind == kind && b.buffer.size() == size)
            {
                return idle.swap_remove(i).buffer;
            }
        }
        self.allocations.fetch_add(1, Ordering::Relaxed);
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("hybrid pooled"),
            size,
            usage: kind.usage(),
            mapped_at_creation: kind == Kind::Upload,
        })
    }

    /// Returns a buffer for reuse (an upload buffer must be mapped for writing again).
    pub(crate) fn give(&self, kind: Kind, buffer: wgpu::Buffer) {
        let now = Instant::now();
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Idle {
                kind,
                buffer,
                since: now,
            });
        self.trim(now);
    }

    /// Drops buffers idle too long, then the oldest ones until under the byte bound.
    fn trim(&self, now: Instant) {
        let max = self.max_idle_bytes.load(Ordering::Relaxed);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|b| now.duration_since(b.since) < IDLE_RELEASE);
        let mut total: u64 = idle.iter().map(|b| b.buffer.size()).sum();
        while total > max && !idle.is_empty() {
            // Oldest first: the vector is in return order.
            let b = idle.remove(0);
            total -= b.buffer.size();
        }
    }
}

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
    /// The kernel's parameter values (bit patterns), written after the header.
    pub(crate) params: &'a [u32],
}

impl Compute<'_> {
    /// Output elements for a chunk of `len` input elements.
    fn out_len(&self, len: usize) -> usize {
        len.div_ceil(self.out_ratio.max(1))
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

/// One slot of the ring: every buffer one chunk needs.
struct Slot {
    up: Vec<wgpu::Buffer>,
    dev_in: Vec<wgpu::Buffer>,
    dev_out: Option<wgpu::Buffer>,
    down: Option<wgpu::Buffer>,
    params: Option<wgpu::Buffer>,
    resolve: Option<wgpu::Buffer>,
    queries: Option<wgpu::QuerySet>,
    group: Option<wgpu::BindGroup>,
    /// Pending maps: uploads mapped for writing again, the read-back mapped for reading.
    up_maps: Vec<mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>>,
    pending: Option<Pending>,
}

/// A chunk submitted and not yet read back.
struct Pending {
    /// Where the chunk's results go in the output, and how many there are.
    out_start: usize,
    out_len: usize,
    submission: wgpu::SubmissionIndex,
    down_map: Option<mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>>,
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

    /// Takes the buffers of `ring` slots for `job` from the pool; on running out of
    /// memory, releases the pool's idle buffers and tries once more.
    fn slots(&self, job: &Job) -> Result<Vec<Slot>> {
        match self.scoped("allocate", || Ok(self.try_slots(job))) {
            Ok(s) => Ok(s),
            Err(_) => {
                self.pool.clear();
                self.scoped("allocate", || Ok(self.try_slots(job)))
            }
        }
    }

    fn try_slots(&self, job: &Job) -> Vec<Slot> {
        let bytes = job.chunk as u64 * 4;
        let out_bytes = job
            .compute
            .as_ref()
            .map_or(bytes, |c| c.out_len(job.chunk) as u64 * 4);
        let downloads = job.out.is_some();
        let timed = self.timestamp_period.is_some();
        (0..job.ring)
            .map(|_| {
                let up = job
                    .inputs
                    .iter()
                    .map(|_| self.pool.take(self.device, Kind::Upload, bytes))
                    .collect();
                let dev_in: Vec<wgpu::Buffer> = job
                    .inputs
                    .iter()
                    .map(|_| self.pool.take(self.device, Kind::Input, bytes))
                    .collect();
                let dev_out = (job.compute.is_some() || job.inputs.is_empty())
                    .then(|| self.pool.take(self.device, Kind::Output, out_bytes));
                let down = (downloads || timed).then(|| {
                    self.pool.take(
                        self.device,
                        Kind::Download,
                        ts_offset(out_bytes) + QUERY_BYTES,
                    )
                });
                let params = job
                    .compute
                    .as_ref()
                    .map(|c| self.pool.take(self.device, Kind::Params, c.uniform_bytes));
                let resolve = timed.then(|| self.pool.take(self.device, Kind::Resolve, 256));
                let queries = timed.then(|| {
                    self.device.create_query_set(&wgpu::QuerySetDescriptor {
                        label: Some("hybrid stage timestamps"),
                        ty: wgpu::QueryType::Timestamp,
                        count: QUERIES,
                    })
                });
                let group = match (&job.compute, &dev_out, &params) {
                    (Some(c), Some(out), Some(params)) => {
                        let mut entries: Vec<wgpu::BindGroupEntry> = dev_in
                            .iter()
                            .enumerate()
                            .map(|(k, b)| wgpu::BindGroupEntry {
                                binding: k as u32,
                                resource: b.as_entire_binding(),
                            })
                            .collect();
                        let k = dev_in.len() as u32;
                        entries.push(wgpu::BindGroupEntry {
                            binding: k,
                            resource: out.as_entire_binding(),
                        });
                        entries.push(wgpu::BindGroupEntry {
                            binding: k + 1,
                            resource: params.as_entire_binding(),
                        });
                        Some(self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                            label: Some("hybrid kernel"),
                            layout: c.layout,
                            entries: &entries,
                        }))
                    }
                    _ => None,
                };
                Slot {
                    up,
                    dev_in,
                    dev_out,
                    down,
                    params,
                    resolve,
                    queries,
                    group,
                    up_maps: Vec::new(),
                    pending: None,
                }
            })
            .collect()
    }

    /// Runs `job`: uploads, computes and downloads chunk by chunk through the ring.
    /// On success every buffer goes back to the pool; on error they are dropped.
    pub(crate) fn stream(&self, mut job: Job) -> Result<Streamed> {
        let mut st = Streamed::default();
        if job.len == 0 {
            return Ok(st);
        }
        let chunk = job.chunk.clamp(1, job.len);
        job.chunk = chunk;
        let chunks = job.len.div_ceil(chunk);
        job.ring = job.ring.clamp(1, chunks);
        let before = self.pool.allocations();
        let mut slots = self.slots(&job)?;
        st.transfer.allocations = (self.pool.allocations() - before) as u32;
        st.transfer.chunk_bytes = chunk as u64 * 4;
        st.transfer.ring = job.ring as u32;
        st.transfer.device_timed = self.timestamp_period.is_some();
        let mut out = job.out.take();

        for i in 0..chunks {
            let s = i % job.ring;
            self.finish(&mut slots[s], &mut out, &mut st)?;
            let start = i * chunk;
            let len = chunk.min(job.len - start);
            if job.compute.is_some() {
                self.injected_fault()?;
            }
            self.submit(&job, &mut slots[s], start, len, out.is_some(), &mut st)?;
        }
        for k in 0..job.ring {
            let s = (chunks + k) % job.ring;
            self.finish(&mut slots[s], &mut out, &mut st)?;
        }
        st.transfer.chunks = chunks as u32;
        for slot in slots {
            self.give_back(slot);
        }
        Ok(st)
    }

    /// Fills a slot's staging with chunk `start..start + len`, and submits its upload
    /// copy, its dispatch and its download copy as one command buffer.
    fn submit(
        &self,
        job: &Job,
        slot: &mut Slot,
        start: usize,
        len: usize,
        downloads: bool,
        st: &mut Streamed,
    ) -> Result<()> {
        let bytes = len as u64 * 4;
        let (out_start, out_len) = match &job.compute {
            Some(c) => (start / c.out_ratio.max(1), c.out_len(len)),
            None => (start, len),
        };
        let down_bytes = out_len as u64 * 4;
        let t = Instant::now();
        for (buf, x) in slot.up.iter().zip(job.inputs) {
            let mut view = buf
                .slice(..bytes)
                .get_mapped_range_mut()
                .map_err(|e| self.fail("upload", e))?;
            view.copy_from_slice(bytemuck::cast_slice(&x[start..start + len]));
            drop(view);
            buf.unmap();
        }
        st.transfer.fill_s += t.elapsed().as_secs_f64();

        let t = Instant::now();
        let submission = self.scoped("compute", || {
            let mut enc = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("hybrid chunk"),
                });
            let stamp = |enc: &mut wgpu::CommandEncoder, q: u32| {
                if let Some(qs) = &slot.queries {
                    enc.write_timestamp(qs, q);
                }
            };
            stamp(&mut enc, 0);
            for (up, dev) in slot.up.iter().zip(&slot.dev_in) {
                enc.copy_buffer_to_buffer(up, 0, dev, 0, bytes);
            }
            stamp(&mut enc, 1);
            if let (Some(c), Some(group), Some(params)) = (&job.compute, &slot.group, &slot.params)
            {
                let (gx, gy, row) = grid(len, c.max_groups, c.group_elems);
                // The global index wraps at 2^32, as `index()` promises.
                let base = c.first_index.wrapping_add(start as u64) as u32;
                let block: [u32; 4] = [base, len as u32, row, 0];
                self.queue
                    .write_buffer(params, 0, bytemuck::cast_slice(&block));
                if !c.params.is_empty() {
                    let values: &[u8] = bytemuck::cast_slice(c.params);
                    self.queue.write_buffer(params, PARAMS_BYTES, values);
                }
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("hybrid kernel"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(c.pipeline);
                pass.set_bind_group(0, group, &[]);
                pass.dispatch_workgroups(gx, gy, 1);
            }
            stamp(&mut enc, 2);
            if let (true, Some(down)) = (downloads, &slot.down) {
                let src = match (&slot.dev_out, slot.dev_in.first()) {
                    (Some(o), _) if job.compute.is_some() || job.inputs.is_empty() => o,
                    (_, Some(i)) => i,
                    (Some(o), None) => o,
                    (None, None) => return Err(self.fail("download", "no buffer to read")),
                };
                enc.copy_buffer_to_buffer(src, 0, down, 0, down_bytes);
            }
            stamp(&mut enc, 3);
            if let (Some(qs), Some(resolve), Some(down)) =
                (&slot.queries, &slot.resolve, &slot.down)
            {
                enc.resolve_query_set(qs, 0..QUERIES, resolve, 0);
                enc.copy_buffer_to_buffer(resolve, 0, down, ts_offset(down_bytes), QUERY_BYTES);
            }
            Ok(self.queue.submit([enc.finish()]))
        })?;
        // A driver that runs the work inside the submit (lavapipe does, on the
        // caller's thread) spends the compute stage here. Without device timestamps
        // that is the only place the host can see it, so it counts as compute;
        // with them the timestamps say what the device did and this is not added.
        if slot.queries.is_none() {
            st.compute_s += t.elapsed().as_secs_f64();
        }
        st.transfer.bytes_up += bytes * job.inputs.len() as u64;
        if downloads {
            st.transfer.bytes_down += down_bytes;
        }
        if let Some(l) = &job.link {
            if !job.inputs.is_empty() {
                st.transfer.predicted_up_s += l.up.time_s(bytes * job.inputs.len() as u64);
            }
            if downloads {
                st.transfer.predicted_down_s += l.down.time_s(down_bytes);
            }
        }

        slot.up_maps = slot
            .up
            .iter()
            .map(|b| {
                let (tx, rx) = mpsc::channel();
                b.map_async(wgpu::MapMode::Write, .., move |r| {
                    let _ = tx.send(r);
                });
                rx
            })
            .collect();
        let down_map = match &slot.down {
            Some(d) if downloads || slot.queries.is_some() => {
                let (tx, rx) = mpsc::channel();
                let end = if slot.queries.is_some() {
                    ts_offset(down_bytes) + QUERY_BYTES
                } else {
                    down_bytes
                };
                d.map_async(wgpu::MapMode::Read, ..end, move |r| {
                    let _ = tx.send(r);
                });
                Some(rx)
            }
            _ => None,
        };
        slot.pending = Some(Pending {
            out_start,
            out_len,
            submission,
            down_map,
        });
        Ok(())
    }

    /// Waits for a slot's chunk, copies its results out and reads its timestamps;
    /// leaves the slot ready to be filled again.
    fn finish(
        &self,
        slot: &mut Slot,
        out: &mut Option<&mut [u32]>,
        st: &mut Streamed,
    ) -> Result<()> {
        let Some(p) = slot.pending.take() else {
            return Ok(());
        };
        let bytes = p.out_len as u64 * 4;
        let t = Instant::now();
        let waited = match &p.down_map {
            Some(rx) => {
                self.wait_map(&p.submission, rx)?;
                true
            }
            None => false,
        };
        let wait_s = t.elapsed().as_secs_f64();
        if let (true, Some(down)) = (waited, &slot.down) {
            let t = Instant::now();
            if let Some(out) = out.as_deref_mut() {
                let view = down
                    .slice(..bytes)
                    .get_mapped_range()
                    .map_err(|e| self.fail("download", e))?;
                out[p.out_start..p.out_start + p.out_len]
                    .copy_from_slice(bytemuck::cast_slice(&view));
            }
            st.transfer.readback_s += t.elapsed().as_secs_f64();
            let stamps = match (self.timestamp_period, &slot.queries) {
                (Some(period), Some(_)) => {
                    let off = ts_offset(bytes);
                    let view = down
                        .slice(off..off + QUERY_BYTES)
                        .get_mapped_range()
                        .map_err(|e| self.fail("download", e))?;
                    let ts: &[u64] = bytemuck::cast_slice(&view);
                    let secs = |a: usize, b: usize| {
                        ts[b].saturating_sub(ts[a]) as f64 * period as f64 * 1e-9
                    };
                    Some((secs(0, 1), secs(1, 2), secs(2, 3)))
                }
                _ => None,
            };
            down.unmap();
            match stamps {
                Some((up, compute, down)) => {
                    st.transfer.copy_up_s += up;
                    st.compute_s += compute;
                    st.transfer.copy_down_s += down;
                    st.transfer.map_wait_s += wait_s;
                }
                None => {
                    st.compute_s += wait_s;
                    st.transfer.map_wait_s += wait_s;
                }
            }
        }
        for rx in std::mem::take(&mut slot.up_maps) {
            let t = Instant::now();
            self.wait_map(&p.submission, &rx)?;
            if !waited {
                st.compute_s += t.elapsed().as_secs_f64();
            }
        }
        Ok(())
    }

    fn give_back(&self, slot: Slot) {
        for b in slot.up {
            self.pool.give(Kind::Upload, b);
        }
        for b in slot.dev_in {
            self.pool.give(Kind::Input, b);
        }
        let rest = [
            (Kind::Output, slot.dev_out),
            (Kind::Download, slot.down),
            (Kind::Params, slot.params),
            (Kind::Resolve, slot.resolve),
        ];
        for (kind, b) in rest {
            if let Some(b) = b {
                self.pool.give(kind, b);
            }
        }
    }
}

/// Where a chunk's timestamps go in its read-back staging: after the data, aligned
/// for mapping.
fn ts_offset(bytes: u64) -> u64 {
    bytes.div_ceil(wgpu::MAP_ALIGNMENT) * wgpu::MAP_ALIGNMENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_waste_at_most_a_quarter() {
        assert_eq!(size_class(0), 256);
        assert_eq!(size_class(256), 256);
        assert_eq!(size_class(257), 320);
        assert_eq!(size_class(4096), 4096);
        assert_eq!(size_class(4097), 5120);
        assert_eq!(size_class(128 << 20), 128 << 20);
        for b in [1u64, 1000, 4095, 65_537, 3 << 20, (128 << 20) + 4] {
            let c = size_class(b);
            assert!(
                c >= b && (c as f64) <= (b.max(256) as f64) * 1.25 + 1.0,
                "{b}->{c}"
            );
            assert_eq!(size_class(c), c, "a class is its own class");
        }
    }

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
