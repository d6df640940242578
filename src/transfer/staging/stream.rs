//! A job streamed through the ring: each chunk's staging filled, its upload copy,
//! dispatch and download copy submitted as one command buffer, and an earlier chunk
//! read back (with its timestamps) while the device works.

use std::sync::mpsc;
use std::time::Instant;

use super::ring::{ts_offset, Pending, Slot};
use super::{grid, Ctx, Job, Streamed, PARAMS_BYTES, QUERIES, QUERY_BYTES};
use crate::error::Result;

impl Ctx<'_> {
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
        let (out_start, out_len) = match &job.compute {
            Some(c) => (c.out_start(start), c.out_len(len)),
            None => (start, len),
        };
        let down_bytes = out_len as u64 * 4;
        let t = Instant::now();
        let mut up_bytes = 0;
        for (k, (buf, x)) in slot.up.iter().zip(job.inputs).enumerate() {
            let w = job.words(k);
            let bytes = (len * w) as u64 * 4;
            up_bytes += bytes;
            let mut view = buf
                .slice(..bytes)
                .get_mapped_range_mut()
                .map_err(|e| self.fail("upload", e))?;
            view.copy_from_slice(bytemuck::cast_slice(&x[start * w..(start + len) * w]));
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
            for ((up, dev), bytes) in slot.up.iter().zip(&slot.dev_in).zip(job.input_bytes(len)) {
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
        st.transfer.bytes_up += up_bytes;
        if downloads {
            st.transfer.bytes_down += down_bytes;
        }
        if let Some(l) = &job.link {
            if !job.inputs.is_empty() {
                st.transfer.predicted_up_s += l.up.time_s(up_bytes);
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
}
