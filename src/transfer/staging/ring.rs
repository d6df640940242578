//! The ring's slots: every buffer one chunk needs, taken from the pool for a job
//! (bind group included) and given back after it.

use std::sync::mpsc;

use super::pool::Kind;
use super::{Ctx, Job, QUERIES, QUERY_BYTES};
use crate::error::Result;

/// One slot of the ring: every buffer one chunk needs.
pub(super) struct Slot {
    pub(super) up: Vec<wgpu::Buffer>,
    pub(super) dev_in: Vec<wgpu::Buffer>,
    pub(super) dev_out: Option<wgpu::Buffer>,
    pub(super) down: Option<wgpu::Buffer>,
    pub(super) params: Option<wgpu::Buffer>,
    pub(super) resolve: Option<wgpu::Buffer>,
    pub(super) queries: Option<wgpu::QuerySet>,
    pub(super) group: Option<wgpu::BindGroup>,
    /// Pending maps: uploads mapped for writing again, the read-back mapped for reading.
    pub(super) up_maps: Vec<mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>>,
    pub(super) pending: Option<Pending>,
}

/// A chunk submitted and not yet read back.
pub(super) struct Pending {
    /// Where the chunk's results go in the output, and how many there are.
    pub(super) out_start: usize,
    pub(super) out_len: usize,
    pub(super) submission: wgpu::SubmissionIndex,
    pub(super) down_map: Option<mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>>,
}

impl Ctx<'_> {
    /// Takes the buffers of `ring` slots for `job` from the pool; on running out of
    /// memory, releases the pool's idle buffers and tries once more.
    pub(super) fn slots(&self, job: &Job) -> Result<Vec<Slot>> {
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
                    .input_bytes(job.chunk)
                    .map(|b| self.pool.take(self.device, Kind::Upload, b))
                    .collect();
                let dev_in: Vec<wgpu::Buffer> = job
                    .input_bytes(job.chunk)
                    .map(|b| self.pool.take(self.device, Kind::Input, b))
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
                        for (t, b) in c.tables.iter().enumerate() {
                            entries.push(wgpu::BindGroupEntry {
                                binding: (dev_in.len() + t) as u32,
                                resource: b.as_entire_binding(),
                            });
                        }
                        let k = (dev_in.len() + c.tables.len()) as u32;
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

    pub(super) fn give_back(&self, slot: Slot) {
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
pub(super) fn ts_offset(bytes: u64) -> u64 {
    bytes.div_ceil(wgpu::MAP_ALIGNMENT) * wgpu::MAP_ALIGNMENT
}
