//! Resident data: array parts that stay in the GPU's memory between calls, uploaded
//! whole, computed on in place by one dispatch each, and read back on demand; the
//! output of a resident run stays resident too.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::pipelines::Pipeline;
use super::{failure, fold_partials, GpuDevice};
use crate::device::{Resident, ShareStats};
use crate::error::{Error, Result};
use crate::kernel::reduce::{Partial, Reduce};
use crate::kernel::wgsl::{REDUCE_PER_GROUP, WORKGROUP_SIZE};
use crate::kernel::KernelDef;
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
    fn buffer(&self) -> Result<&wgpu::Buffer> {
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

    /// Runs `kernel` on resident `inputs` into a new resident part (the scheduler's
    /// `Memory::run`).
    pub(super) fn map_parts(
        &self,
        kernel: &KernelDef,
        inputs: &[&dyn Resident],
        first_index: u64,
    ) -> Result<(Arc<dyn Resident>, ShareStats, f64)> {
        let len = inputs.first().map_or(0, |r| r.len());
        let shader = kernel.shader()?;
        let pipeline = self.pipeline(&shader)?;
        let (out, stats, secs) = self.run_on(
            &pipeline,
            &kernel.values(),
            inputs,
            first_index,
            len,
            WORKGROUP_SIZE,
        )?;
        Ok((Arc::new(out), stats, secs))
    }

    /// Reduces resident `inputs` with `op` (`Memory::reduce`): the
    /// data stays, one partial per workgroup comes back.
    pub(super) fn reduce_parts(
        &self,
        kernel: &KernelDef,
        op: Reduce,
        inputs: &[&dyn Resident],
        first_index: u64,
    ) -> Result<(Partial, ShareStats, f64)> {
        let t = Instant::now();
        let ty = kernel.output_type()?;
        let len = inputs.first().map_or(0, |r| r.len());
        if len == 0 {
            return Ok((op.identity(ty), ShareStats::default(), 0.0));
        }
        let shader = kernel.reduce_shader(op)?;
        let pipeline = self.pipeline(&shader)?;
        let groups = len.div_ceil(REDUCE_PER_GROUP as usize);
        let (partials, mut stats, _) = self.run_on(
            &pipeline,
            &kernel.values(),
            inputs,
            first_index,
            groups,
            REDUCE_PER_GROUP,
        )?;
        // one value per workgroup comes back: the data itself stays
        let mut bits = vec![0u32; groups];
        let down = partials.download(&mut bits)?;
        stats.bytes_from_device = down.bytes_from_device;
        stats.download_s = down.download_s;
        let part = fold_partials(op, ty, &bits);
        Ok((part, stats, t.elapsed().as_secs_f64()))
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
    fn own<'a>(&self, r: &'a dyn Resident) -> Result<&'a GpuData> {
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

    /// Runs `p` over the elements of resident `inputs` (all of one length) into a new
    /// resident buffer of `out_len` elements; one workgroup covers `group_elems`
    /// elements.
    fn run_on(
        &self,
        p: &Pipeline,
        params: &[u32],
        inputs: &[&dyn Resident],
        first_index: u64,
        out_len: usize,
        group_elems: u32,
    ) -> Result<(GpuData, ShareStats, f64)> {
        let t = Instant::now();
        let len = inputs.first().map_or(0, |r| r.len());
        self.alive()?;
        if inputs.len() != p.inputs {
            return Err(Error::WrongArity {
                expected: p.inputs,
                given: inputs.len(),
            });
        }
        let ins: Vec<&GpuData> = inputs.iter().map(|r| self.own(*r)).collect::<Result<_>>()?;
        if let Some(d) = ins.iter().find(|d| d.len != len) {
            return Err(Error::LengthMismatch {
                left: len,
                right: d.len,
            });
        }
        self.fits(len)?;
        self.spend_fault()?;
        let out = self
            .pool
            .take(&self.device, Kind::Input, (out_len as u64 * 4).max(4));
        let out = self.data(out, out_len);
        let uniform = self.pool.take(&self.device, Kind::Params, p.uniform_bytes);
        self.scoped("compute", || {
            let (gx, gy, row) = grid(len, self.max_groups, group_elems);
            // the global index wraps at 2^32, as `index()` promises
            let block: [u32; 4] = [first_index as u32, len as u32, row, 0];
            self.queue
                .write_buffer(&uniform, 0, bytemuck::cast_slice(&block));
            if !params.is_empty() {
                self.queue
                    .write_buffer(&uniform, PARAMS_BYTES, bytemuck::cast_slice(params));
            }
            let mut entries = Vec::with_capacity(ins.len() + 2);
            for (k, d) in ins.iter().enumerate() {
                entries.push(wgpu::BindGroupEntry {
                    binding: k as u32,
                    resource: d.binding()?,
                });
            }
            entries.push(wgpu::BindGroupEntry {
                binding: ins.len() as u32,
                resource: out.binding()?,
            });
            entries.push(wgpu::BindGroupEntry {
                binding: ins.len() as u32 + 1,
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
        let secs = t.elapsed().as_secs_f64();
        let stats = ShareStats {
            compute_s: secs,
            chunks: 1,
            ..ShareStats::default()
        };
        Ok((out, stats, secs))
    }
}
