//! Streamed launches: host data cut into chunks that go up, through a kernel and back
//! down via the transfer layer's staging ring; maps, reductions' workgroup partials,
//! and plain transfers with no kernel.

use super::pipelines::Pipeline;
use super::{fold_partials, GpuDevice};
use crate::device::{ShareStats, TableArg};
use crate::error::{Error, Result};
use crate::kernel::reduce::{Partial, Reduce};
use crate::kernel::wgsl::{REDUCE_PER_GROUP, WORKGROUP_SIZE};
use crate::kernel::KernelDef;
use crate::transfer::staging::{Compute, Job, Streamed};
use crate::transfer::{plan_chunks, Link, TransferStats};

impl GpuDevice {
    /// Computes `kernel` for `out.len()` elements of host `inputs` (the scheduler's
    /// `run`): compiled or from the cache, then streamed.
    pub(super) fn map_streamed(
        &self,
        kernel: &KernelDef,
        inputs: &[&[u32]],
        tables: &[TableArg<'_>],
        first_index: u64,
        out: &mut [u32],
    ) -> Result<ShareStats> {
        if out.is_empty() {
            return Ok(ShareStats::default());
        }
        let shader = kernel.shader()?;
        self.check_bindings(&shader)?;
        let pipeline = self.pipeline(&shader)?;
        let mut sent = ShareStats::default();
        let held = self.hold_tables(tables, &mut sent)?;
        let mut params = kernel.param_words();
        params.extend_from_slice(&held.extents);
        let n = out.len() / pipeline.outputs.max(1);
        let mut st = self.launch(
            &pipeline,
            &params,
            inputs,
            &held.buffers,
            first_index,
            n,
            out,
            1,
            WORKGROUP_SIZE,
        )?;
        st.add(&sent);
        Ok(st)
    }

    /// `Err` when `shader` binds more storage buffers than the device allows.
    pub(crate) fn check_bindings(&self, shader: &crate::kernel::wgsl::Shader) -> Result<()> {
        let need = shader.inputs + shader.tables + 1;
        if need > self.max_storage_bindings {
            return Err(Error::DeviceCannot {
                device: self.info.name.clone(),
                reason: format!(
                    "the kernel binds {need} storage buffers ({} inputs, {} tables, the \
                     output); the device allows {}",
                    shader.inputs, shader.tables, self.max_storage_bindings
                ),
            });
        }
        Ok(())
    }

    /// Reduces `len` elements of host `inputs` with `op` (the scheduler's `reduce`):
    /// one partial per workgroup comes back, and the host combines them.
    pub(super) fn reduce_streamed(
        &self,
        kernel: &KernelDef,
        op: Reduce,
        inputs: &[&[u32]],
        tables: &[TableArg<'_>],
        first_index: u64,
        len: usize,
    ) -> Result<(Partial, ShareStats)> {
        let ty = kernel.output_type()?;
        if len == 0 {
            return Ok((op.identity(ty), ShareStats::default()));
        }
        let shader = kernel.reduce_shader(op)?;
        self.check_bindings(&shader)?;
        let pipeline = self.pipeline(&shader)?;
        let mut sent = ShareStats::default();
        let held = self.hold_tables(tables, &mut sent)?;
        let mut params = kernel.param_words();
        params.extend_from_slice(&held.extents);
        let ratio = REDUCE_PER_GROUP as usize;
        let words = crate::kernel::wgsl::partial_words(op, ty);
        let mut partials = vec![0u32; len.div_ceil(ratio) * words];
        let mut stats = self.launch(
            &pipeline,
            &params,
            inputs,
            &held.buffers,
            first_index,
            len,
            &mut partials,
            ratio,
            REDUCE_PER_GROUP,
        )?;
        stats.add(&sent);
        let part = fold_partials(op, ty, &partials, words);
        Ok((part, stats))
    }

    /// Chunk length and ring depth for `n` elements, from the link model and the
    /// configuration.
    fn plan(&self, n: usize) -> (usize, usize, Option<Link>) {
        let cfg = self.config();
        let cal = self.calibration();
        let link = cal.map(|c| c.link);
        let dispatch_s = cal.map_or(0.0, |c| c.dispatch_s);
        let (chunk, ring) = plan_chunks(
            n,
            link.as_ref(),
            dispatch_s,
            &cfg,
            self.max_chunk_bytes,
            WORKGROUP_SIZE as usize,
        );
        (chunk, ring, link)
    }

    /// Moves `src` to the device and/or `dst` back from it through the transfer layer,
    /// with no kernel: `src` alone uploads, `dst` alone downloads (whatever the device
    /// buffer holds), both make a round trip of `src` into `dst`.
    pub(crate) fn move_data(
        &self,
        src: Option<&[u32]>,
        dst: Option<&mut [u32]>,
    ) -> Result<TransferStats> {
        let n = match (&src, &dst) {
            (Some(s), Some(d)) if s.len() != d.len() => {
                return Err(Error::LengthMismatch {
                    left: s.len(),
                    right: d.len(),
                })
            }
            (Some(s), _) => s.len(),
            (None, Some(d)) => d.len(),
            (None, None) => 0,
        };
        let inputs: Vec<&[u32]> = src.into_iter().collect();
        let (chunk, ring, link) = self.plan(n);
        let timed = self.timed(chunk, link.as_ref());
        let st = self.with_ctx(timed, |ctx| {
            ctx.stream(Job {
                inputs: &inputs,
                out: dst,
                compute: None,
                len: n,
                chunk,
                ring,
                link,
            })
        })?;
        Ok(st.transfer)
    }

    /// Runs `p` over `n` elements through the transfer layer's ring; each workgroup
    /// covers `group_elems` elements and the kernel writes one output per `out_ratio`
    /// inputs (1 for a map, [`REDUCE_PER_GROUP`] for a reduction's partials).
    #[allow(clippy::too_many_arguments)]
    fn launch(
        &self,
        p: &Pipeline,
        params: &[u32],
        inputs: &[&[u32]],
        tables: &[wgpu::Buffer],
        first_index: u64,
        n: usize,
        out: &mut [u32],
        out_ratio: usize,
        group_elems: u32,
    ) -> Result<ShareStats> {
        if n == 0 {
            return Ok(ShareStats::default());
        }
        let words = |k: usize| p.input_words.get(k).copied().unwrap_or(1);
        if inputs.len() != p.inputs
            || inputs
                .iter()
                .enumerate()
                .any(|(k, x)| x.len() != n * words(k))
            || tables.len() != p.tables
        {
            return Err(Error::WrongArity {
                expected: p.inputs,
                given: inputs.len(),
            });
        }
        let (chunk, ring, link) = self.plan(n);
        // a chunk of 64-bit inputs takes as many bytes as one of 32-bit ones
        let widest = p.input_words.iter().copied().max().unwrap_or(1).max(1);
        // a chunk's outputs start where its inputs do, divided by the ratio
        let chunk = (chunk / widest / out_ratio).max(1) * out_ratio;
        let timed = self.timed(chunk, link.as_ref());
        let tables: Vec<&wgpu::Buffer> = tables.iter().collect();
        // words per output element: a map's row of results, a reduction's partial
        let outputs = p.outputs;
        let st: Streamed = self.with_ctx(timed, |ctx| {
            ctx.stream(Job {
                inputs,
                out: Some(out),
                compute: Some(Compute {
                    pipeline: &p.pipeline,
                    layout: &p.layout,
                    max_groups: self.max_groups,
                    first_index,
                    group_elems,
                    out_ratio,
                    uniform_bytes: p.uniform_bytes,
                    params,
                    outputs,
                    tables: &tables,
                    words: &p.input_words,
                }),
                len: n,
                chunk,
                ring,
                link,
            })
        })?;
        let t = st.transfer;
        Ok(ShareStats {
            bytes_to_device: t.bytes_up,
            bytes_from_device: t.bytes_down,
            upload_s: t.measured_up_s(),
            compute_s: st.compute_s,
            download_s: t.measured_down_s(),
            chunks: t.chunks,
            transfer: t,
            ..ShareStats::default()
        })
    }
}
