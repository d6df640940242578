//! Whole-array inputs on the GPU: each task's table window uploaded once per call and
//! kept for the call's later runs on this device.
//!
//! A call's share may reach the device as several runs (`Auto` balances in pieces);
//! the table each run reads is the same, so the device keeps what it was sent, keyed
//! by (call, table) (`device::HeldTables`, which the simulated GPU counts by too), and
//! sends again only what a run needs beyond it. The buffers of
//! one call are kept until a run of another call with tables replaces them: at most
//! one call's tables stay on the device.
//!
//! A table that is an array's part already in this device's memory (`TableArg::held`)
//! is bound where it is: nothing is sent, nothing is kept here.
//!
//! The upload is a `queue.write_buffer` (wgpu stages it and copies it before the next
//! submission): its seconds are the host's copy into the staging area, and the copy
//! over the link happens with the first chunk's submission, where the stream's
//! timing sees it.

use std::time::Instant;

use super::{lock, GpuDevice};
use crate::device::{ShareStats, TableArg, MAX_TABLES};
use crate::error::{Error, Result};

/// The buffers a run binds, in table order, and the extents its uniform block carries
/// (per table: length, first element held, elements held).
pub(super) struct Bound {
    pub(super) buffers: Vec<wgpu::Buffer>,
    pub(super) extents: Vec<u32>,
}

impl GpuDevice {
    /// The device buffers holding `tables` (each run's window), sending what the
    /// device does not hold yet for this call; the bytes and seconds sent go into
    /// `stats`.
    pub(super) fn hold_tables(
        &self,
        tables: &[TableArg<'_>],
        stats: &mut ShareStats,
    ) -> Result<Bound> {
        let mut bound = Bound {
            buffers: Vec::with_capacity(tables.len()),
            extents: Vec::with_capacity(3 * tables.len()),
        };
        if tables.is_empty() {
            return Ok(bound);
        }
        if tables.len() > MAX_TABLES {
            return Err(Error::InvalidKernel {
                reason: format!("more than {MAX_TABLES} tables"),
            });
        }
        let mut held = lock(&self.tables);
        held.begin(tables[0].call);
        let word = |v: usize| v.min(u32::MAX as usize) as u32;
        for t in tables {
            if let Some(r) = t.held {
                // an array's part already here: bound where it is, nothing sent
                bound.buffers.push(self.own(r)?.buffer()?.clone());
                bound
                    .extents
                    .extend([word(t.len), word(t.start), word(r.len() / t.words.max(1))]);
                continue;
            }
            let clock = Instant::now();
            let (buffer, start, end, sent) = held.hold(t, || self.send_table(t))?;
            if sent {
                let secs = clock.elapsed().as_secs_f64();
                stats.table_s += secs;
                stats.upload_s += secs;
                stats.bytes_to_device += t.data.len() as u64 * 4;
                if let Some(b) = stats.table_bytes.get_mut(t.index) {
                    *b += t.data.len() as u64 * 4;
                }
            }
            bound.buffers.push(buffer.clone());
            bound
                .extents
                .extend([word(t.len), word(start), word(end - start)]);
        }
        Ok(bound)
    }

    /// A new buffer holding `t`'s elements, written by the queue (sent with the next
    /// submission).
    fn send_table(&self, t: &TableArg<'_>) -> Result<wgpu::Buffer> {
        let bytes = (t.data.len() as u64 * 4).max(4);
        if bytes > self.max_chunk_bytes.max(4) {
            return Err(Error::BufferTooLarge {
                requested: bytes,
                max: self.max_chunk_bytes,
            });
        }
        self.scoped("upload", || {
            let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("hybrid table"),
                size: bytes,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            if !t.data.is_empty() {
                self.queue
                    .write_buffer(&buffer, 0, bytemuck::cast_slice(t.data));
            }
            Ok(buffer)
        })
    }
}
