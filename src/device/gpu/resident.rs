//! Resident data: array parts that stay in the GPU's memory between calls, uploaded
//! whole, computed on in place by one dispatch each, and read back on demand; the
//! output of a resident run stays resident too.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::pipelines::Pipeline;
use super::{failure, fold_partials, GpuDevice};
use crate::device::{Resident, ResidentTask, ShareStats, Timed};
use crate::error::{Error, Result};
use crate::kernel::reduce::{Partial, Reduce};
use crate::kernel::wgsl::Shader;
use crate::kernel::wgsl::{REDUCE_PER_GROUP, WORKGROUP_SIZE};
use crate::transfer::staging::{grid, Kind, Pool, PARAMS_BYTES};

/// A part of an array held in a GPU's memory: a storage buffer from the device's pool
/// (given back when dropped), and what it takes to read it back without the device
/// object (wgpu's handles are shared).
pub(crate) struct GpuData {
    buffer: Option<wgpu::Buffer>,
    len: usize,
    owner: u64,
    name: String,
    device: wgpu::Device,
    queue: wgpu::Queue,
    pool: Arc<Pool>,
    lost: Arc<Mutex<Option<String>>>,
}

impl GpuData {
    pub(super) fn buffer(&self) -> Result<&wgpu::Buffer> {
        self.buffer.as_ref().ok_or_else(|| Error::DeviceFailed {
            device: self.name.clone(),
            stage: "resident",
            reason: "the buffer was released".into(),
        })
    }

    /// The buffer bound as `len` elements (it may be larger: pooled size classes).
    fn binding(&self) -> Result<wgpu::BindingResource<'_>> {
        Ok(wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.buffer()?,
            offset: 0,
            size: wgpu::BufferSize::new(self.len as u64 * 4),
        }))
    }

    fn failed(&self, stage: &'static str, reason: impl ToString) -> Error {
        failure(&self.name, &self.lost, stage, reason)
    }
}

impl Drop for GpuData {
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            self.pool.give(Kind::Input, b);
        }
    }
}

impl Resident for GpuData {
    fn len(&self) -> usize {
        self.len
    }

    fn owner(&self) -> u64 {
        self.owner
    }

    fn owner_name(&self) -> &str {
        &self.name
    }

    fn download(&self, out: &mut [u32]) -> Result<ShareStats> {
        let t = Instant::now();
        let bytes = self.len as u64 * 4;
        if out.len() != self.len {
            return Err(Error::LengthMismatch {
                left: self.len,
                right: out.len(),
            });
        }
        if bytes == 0 {
            return Ok(ShareStats::default());
        }
        let down = self.pool.take(&self.device, Kind::Download, bytes);
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("hybrid resident download"),
            });
        enc.copy_buffer_to_buffer(self.buffer()?, 0, &down, 0, bytes);
        let sub = self.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        down.slice(..bytes)
            .map_async(wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(sub),
                timeout: Some(std::time::Duration::from_secs(60)),
            })
            .map_err(|e| self.failed("download", e))?;
        match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(self.failed("download", e)),
            Err(e) => return Err(self.failed("download", e)),
        }
        {
            let view = down
                .slice(..bytes)
                .get_mapped_range()
                .map_err(|e| self.failed("download", e))?;
            out.copy_from_slice(bytemuck::cast_slice(&view));
        }
        down.unmap();
        self.pool.give(Kind::Download, down);
        let secs = t.elapsed().as_secs_f64();
        Ok(ShareStats {
            bytes_from_device: bytes,
            download_s: secs,
            chunks: 1,
            ..ShareStats::default()
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl GpuDevice {
    /// Copies `data` into a new resident part (the scheduler's `upload`).
    pub(super) fn upload_part(&self, data: &[u32]) -> Result<(Arc<dyn Resident>, ShareStats)> {
        let t = Instant::now();
        self.alive()?;
        self.fits(data.len())?;
        let bytes = data.len() as u64 * 4;
        let buffer = self.scoped("upload", || {
            let b = self.pool.take(&self.device, Kind::Input, bytes.max(4));
            // wgpu stages the copy itself; the resident path moves whole parts, where
            // the streaming path's ring would only add copies
            self.queue.write_buffer(&b, 0, bytemuck::cast_slice(data));
            self.queue.submit([]);
            Ok(b)
        })?;
        let d = self.data(buffer, data.len());
        self.wait("upload")?;
        let secs = t.elapsed().as_secs_f64();
        Ok((
            Arc::new(d),
            ShareStats {
                bytes_to_device: bytes,
                upload_s: secs,
                chunks: 1,
                ..ShareStats::default()
            },
        ))
    }

    /// `parts` (all on this device) copied end to end into one new resident part
    /// (`Memory::gather`), buffer to buffer on the device.
    pub(super) fn gather_parts(
        &self,
        parts: &[&dyn Resident],
    ) -> Result<(Arc<dyn Resident>, ShareStats)> {
        let t = Instant::now();
        self.alive()?;
        let own: Vec<&GpuData> = parts.iter().map(|r| self.own(*r)).collect::<Result<_>>()?;
        let len: usize = own.iter().map(|d| d.len).sum();
        self.fits(len)?;
        let buffer = self.scoped("gather", || {
            let b = self
                .pool
                .take(&self.device, Kind::Input, (len as u64 * 4).max(4));
            let mut enc = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("hybrid gather"),
                });
            let mut at = 0u64;
            for d in &own {
                let bytes = d.len as u64 * 4;
                if bytes > 0 {
                    enc.copy_buffer_to_buffer(d.buffer()?, 0, &b, at, bytes);
                }
                at += bytes;
            }
            self.queue.submit([enc.finish()]);
            Ok(b)
        })?;
        let out = self.data(buffer, len);
        self.wait("gather")?;
        let stats = ShareStats {
            compute_s: t.elapsed().as_secs_f64(),
            ..ShareStats::default()
        };
        Ok((Arc::new(out), stats))
    }

    /// Runs the task's kernel on its resident inputs and tables into new resident
    /// parts, one per result (the scheduler's `Memory::run`). A kernel with several
    /// results writes them together per element, then one pass on the device parts
    /// them into one buffer per result, so each result is an array of its own.
    pub(super) fn map_parts(
        &self,
        task: &ResidentTask<'_>,
    ) -> Result<(Vec<Arc<dyn Resident>>, Timed)> {
        let t = Instant::now();
        let len = task.len;
        let shader = task.kernel.shader()?;
        let (out, mut stats, m) = self.dispatch_task(task, &shader, WORKGROUP_SIZE, |m| len * m)?;
        let prog = task.kernel.program()?;
        let outs = match prog.outputs.len() {
            0 | 1 => vec![Arc::new(out) as Arc<dyn Resident>],
            _ => {
                // result k from word k * slot of each row: both words of a 64-bit one
                let slot = prog.out_slot();
                let cols: Vec<(usize, usize)> = prog
                    .outputs
                    .iter()
                    .enumerate()
                    .map(|(k, o)| (k * slot, if o.0.is_wide() { 2 } else { 1 }))
                    .collect();
                self.columns(&out, len, m, &cols, &mut stats)?
            }
        };
        let secs = t.elapsed().as_secs_f64();
        Ok((outs, Timed { stats, secs }))
    }

    /// Reduces the task's resident inputs with `op` (`Memory::reduce`): the data
    /// stays, one partial per workgroup comes back.
    pub(super) fn reduce_parts(
        &self,
        task: &ResidentTask<'_>,
        op: Reduce,
    ) -> Result<(Partial, ShareStats, f64)> {
        let t = Instant::now();
        let ty = task.kernel.output_type()?;
        let len = task.len;
        if len == 0 {
            return Ok((op.identity(ty), ShareStats::default(), 0.0));
        }
        let shader = task.kernel.reduce_shader(op)?;
        let groups = len.div_ceil(REDUCE_PER_GROUP as usize);
        let words = crate::kernel::wgsl::partial_words(op, ty);
        let (partials, mut stats, _) =
            self.dispatch_task(task, &shader, REDUCE_PER_GROUP, |_| groups * words)?;
        // one partial per workgroup comes back: the data itself stays
        let mut bits = vec![0u32; groups * words];
        let down = partials.download(&mut bits)?;
        stats.bytes_from_device = down.bytes_from_device;
        stats.download_s = down.download_s;
        let part = fold_partials(op, ty, &bits, words);
        Ok((part, stats, t.elapsed().as_secs_f64()))
    }

    /// The task's kernel (compiled as `shader`) dispatched over its resident inputs
    /// and tables (sent once per call, or bound where they are), `group_elems`
    /// elements per workgroup, into a new buffer of `out_len(results)` elements;
    /// with the kernel's number of results.
    fn dispatch_task(
        &self,
        task: &ResidentTask<'_>,
        shader: &Shader,
        group_elems: u32,
        out_len: impl FnOnce(usize) -> usize,
    ) -> Result<(GpuData, ShareStats, usize)> {
        self.check_bindings(shader)?;
        let pipeline = self.pipeline(shader)?;
        let m = pipeline.outputs.max(1);
        let mut sent = ShareStats::default();
        let held = self.hold_tables(task.tables, &mut sent)?;
        let mut params = task.kernel.param_words();
        params.extend_from_slice(&held.extents);
        let out_len = out_len(m);
        self.fits(out_len)?;
        let (out, mut stats) = self.run_on(&Dispatch {
            pipeline: &pipeline,
            params: &params,
            inputs: task.inputs,
            in_len: task.len,
            tables: &held.buffers,
            first_index: task.first_index,
            threads: task.len,
            group_elems,
            out_len,
        })?;
        stats.add(&sent);
        Ok((out, stats, m))
    }

    /// The results of `len` elements written together in rows of `m` words, parted
    /// on the device into one resident buffer per result (`cols`: where each starts in
    /// a row, and its words): one dispatch per result of a fixed shader, no byte
    /// crosses the link.
    fn columns(
        &self,
        src: &GpuData,
        len: usize,
        m: usize,
        cols: &[(usize, usize)],
        stats: &mut ShareStats,
    ) -> Result<Vec<Arc<dyn Resident>>> {
        let mut shader = Shader::from_source(COLUMNS.to_string(), 1);
        shader.uniform_bytes = COLUMNS_UNIFORM;
        let pipeline = self.pipeline(&shader)?;
        let mut outs = Vec::with_capacity(cols.len());
        for &(k, w) in cols {
            let (col, st) = self.run_on(&Dispatch {
                pipeline: &pipeline,
                params: &[m as u32, k as u32, w as u32],
                inputs: &[src],
                in_len: len * m,
                tables: &[],
                first_index: 0,
                threads: len * w,
                group_elems: WORKGROUP_SIZE,
                out_len: len * w,
            })?;
            stats.compute_s += st.compute_s;
            outs.push(Arc::new(col) as Arc<dyn Resident>);
        }
        Ok(outs)
    }

    /// The largest resident part: what one storage binding may hold, in whole
    /// workgroups a 2D grid covers.
    pub(super) fn max_part(&self) -> usize {
        (self.max_chunk_bytes / 4) as usize
    }

    /// `Err(BufferTooLarge)` when a part of `len` elements exceeds [`Self::max_part`].
    fn fits(&self, len: usize) -> Result<()> {
        if len > self.max_part() {
            return Err(Error::BufferTooLarge {
                requested: len as u64 * 4,
                max: self.max_chunk_bytes,
            });
        }
        Ok(())
    }

    fn data(&self, buffer: wgpu::Buffer, len: usize) -> GpuData {
        GpuData {
            buffer: Some(buffer),
            len,
            owner: self.id,
            name: self.info.name.clone(),
            device: self.device.clone(),
            queue: self.queue.clone(),
            pool: self.pool.clone(),
            lost: self.lost.clone(),
        }
    }

    /// This device's own buffer behind `r`, or an error naming the device it is on.
    pub(super) fn own<'a>(&self, r: &'a dyn Resident) -> Result<&'a GpuData> {
        match r.as_any().downcast_ref::<GpuData>() {
            Some(d) if d.owner == self.id => Ok(d),
            _ => Err(self.failed(
                "resident",
                format!("the data is on {}, not on this device", r.owner_name()),
            )),
        }
    }

    /// Counts one resident run down the injected fault (as one chunk).
    fn spend_fault(&self) -> Result<()> {
        let left = self
            .fault
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                (v != 0 && v != u64::MAX).then(|| v - 1)
            });
        match left {
            Ok(_) | Err(u64::MAX) => Ok(()),
            Err(_) => Err(self.failed("compute", "injected fault (fail_gpu_after_chunks)")),
        }
    }

    /// Runs a dispatch over resident inputs into a new resident buffer.
    fn run_on(&self, d: &Dispatch<'_>) -> Result<(GpuData, ShareStats)> {
        let t = Instant::now();
        let p = d.pipeline;
        let (params, first_index, out_len) = (d.params, d.first_index, d.out_len);
        let len = d.threads;
        self.alive()?;
        if d.inputs.len() != p.inputs || d.tables.len() != p.tables {
            return Err(Error::WrongArity {
                expected: p.inputs + p.tables,
                given: d.inputs.len() + d.tables.len(),
            });
        }
        let ins: Vec<&GpuData> = d
            .inputs
            .iter()
            .map(|r| self.own(*r))
            .collect::<Result<_>>()?;
        // each input holds `in_len` elements of its own words
        let words = |k: usize| p.input_words.get(k).copied().unwrap_or(1);
        if let Some((k, x)) = ins
            .iter()
            .enumerate()
            .find(|(k, x)| x.len != d.in_len * words(*k))
        {
            return Err(Error::LengthMismatch {
                left: d.in_len * words(k),
                right: x.len,
            });
        }
        self.fits(d.in_len * p.input_words.iter().copied().max().unwrap_or(1))?;
        self.spend_fault()?;
        let out = self
            .pool
            .take(&self.device, Kind::Input, (out_len as u64 * 4).max(4));
        let out = self.data(out, out_len);
        let uniform = self.pool.take(&self.device, Kind::Params, p.uniform_bytes);
        self.scoped("compute", || {
            let (gx, gy, row) = grid(len, self.max_groups, d.group_elems);
            // the global index wraps at 2^32, as `index()` promises
            let block: [u32; 4] = [first_index as u32, len as u32, row, 0];
            self.queue
                .write_buffer(&uniform, 0, bytemuck::cast_slice(&block));
            if !params.is_empty() {
                self.queue
                    .write_buffer(&uniform, PARAMS_BYTES, bytemuck::cast_slice(params));
            }
            let mut entries = Vec::with_capacity(ins.len() + d.tables.len() + 2);
            for (k, x) in ins.iter().enumerate() {
                entries.push(wgpu::BindGroupEntry {
                    binding: k as u32,
                    resource: x.binding()?,
                });
            }
            let read = ins.len() + d.tables.len();
            for (k, b) in d.tables.iter().enumerate() {
                entries.push(wgpu::BindGroupEntry {
                    binding: (ins.len() + k) as u32,
                    resource: b.as_entire_binding(),
                });
            }
            entries.push(wgpu::BindGroupEntry {
                binding: read as u32,
                resource: out.binding()?,
            });
            entries.push(wgpu::BindGroupEntry {
                binding: read as u32 + 1,
                resource: uniform.as_entire_binding(),
            });
            let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("hybrid resident"),
                layout: &p.layout,
                entries: &entries,
            });
            let mut enc = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("hybrid resident"),
                });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("hybrid resident"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(&p.pipeline);
                pass.set_bind_group(0, &group, &[]);
                pass.dispatch_workgroups(gx, gy, 1);
            }
            self.queue.submit([enc.finish()]);
            Ok(())
        })?;
        let waited = self.wait("compute");
        self.pool.give(Kind::Params, uniform);
        waited?;
        let stats = ShareStats {
            compute_s: t.elapsed().as_secs_f64(),
            chunks: 1,
            ..ShareStats::default()
        };
        Ok((out, stats))
    }
}

/// One dispatch over resident data.
struct Dispatch<'a> {
    pipeline: &'a Pipeline,
    /// The uniform block's words after its header.
    params: &'a [u32],
    /// Element-wise inputs, each `in_len` elements (of the pipeline's words each).
    inputs: &'a [&'a dyn Resident],
    in_len: usize,
    /// The tables' buffers, bound after the inputs.
    tables: &'a [wgpu::Buffer],
    first_index: u64,
    /// Elements the dispatch covers, `group_elems` per workgroup.
    threads: usize,
    group_elems: u32,
    /// Elements of the output buffer.
    out_len: usize,
}

/// Parts results written together into one buffer per result, `w` words each: word
/// `t` of the result is `src[(t / w) * m + k + t % w]`, with `m`, `k` and `w` in the
/// uniform block after its header.
const COLUMNS: &str = "struct Params { base: u32, len: u32, row: u32, zero: u32, m: u32, k: u32, \
w: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * params.row;
    if (i >= params.len) {
        return;
    }
    dst[i] = src[(i / params.w) * params.m + params.k + i % params.w];
}
";

/// Bytes of [`COLUMNS`]'s uniform block.
const COLUMNS_UNIFORM: u64 = 32;
