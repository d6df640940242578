//! The CPU device: the kernel's block evaluator on a rayon pool.
//!
//! The range is cut into tasks of a few blocks; each rayon worker keeps one scratch
//! area per task it takes, so nothing is allocated per block. Inputs smaller than one
//! task run on the calling thread: no pool round trip for a thousand elements.

use std::time::Instant;

use rayon::prelude::*;

use super::{Device, DeviceInfo, DeviceKind, ShareStats};
use crate::error::{Error, Result};
use crate::kernel::eval::{Plan, Scratch, BLOCK};
use crate::kernel::reduce::{reduce_block, Partial, Reduce};
use crate::kernel::KernelInner;

/// Blocks per rayon task.
const TASK_BLOCKS: usize = 16;

pub(crate) struct CpuDevice {
    info: DeviceInfo,
    pool: Option<rayon::ThreadPool>,
}

impl CpuDevice {
    /// A CPU device on rayon's global pool, or on a pool of its own with `threads`.
    pub(crate) fn new(threads: Option<usize>) -> Result<CpuDevice> {
        let pool = match threads {
            Some(n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("hybrid-cpu-{i}"))
                    .build()
                    .map_err(|e| Error::DeviceFailed {
                        device: "cpu".into(),
                        stage: "allocate",
                        reason: e.to_string(),
                    })?,
            ),
            None => None,
        };
        let n = pool
            .as_ref()
            .map_or_else(rayon::current_num_threads, |p| p.current_num_threads());
        let info = DeviceInfo {
            name: format!("cpu ({n} threads)"),
            backend: "rayon".into(),
            kind: DeviceKind::Cpu,
            driver: String::new(),
        };
        Ok(CpuDevice { info, pool })
    }
}

fn run_task(
    plan: &Plan,
    s: &mut Scratch,
    inputs: &[&[u32]],
    first: u64,
    offset: usize,
    out: &mut [u32],
) {
    for (b, o) in out.chunks_mut(BLOCK).enumerate() {
        let start = offset + b * BLOCK;
        let ins: [&[u32]; 2] = [
            inputs
                .first()
                .map_or(&[][..], |x| &x[start..start + o.len()]),
            inputs
                .get(1)
                .map_or(&[][..], |x| &x[start..start + o.len()]),
        ];
        plan.run_block(s, &ins[..inputs.len()], first + start as u64, o);
    }
}

/// Reduces elements `offset..offset + len` of `inputs` block by block.
#[allow(clippy::too_many_arguments)]
fn reduce_task(
    plan: &Plan,
    s: &mut Scratch,
    tmp: &mut [u32],
    op: Reduce,
    ty: crate::ScalarType,
    inputs: &[&[u32]],
    first: u64,
    offset: usize,
    len: usize,
) -> Partial {
    let mut acc = op.identity(ty);
    let mut at = offset;
    while at < offset + len {
        let m = BLOCK.min(offset + len - at);
        let part = match plan.passthrough() {
            Some(k) => reduce_block(op, ty, &inputs[k][at..at + m]),
            None => {
                let o = &mut tmp[..m];
                run_task(plan, s, inputs, first, at, o);
                reduce_block(op, ty, o)
            }
        };
        acc = acc.combine(part, op, ty);
        at += m;
    }
    acc
}

impl CpuDevice {
    /// Runs `work` on the device's pool (rayon's global pool when it has none).
    fn install<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(p) => p.install(work),
            None => work(),
        }
    }
}

impl Device for CpuDevice {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn run(
        &self,
        kernel: &KernelInner,
        inputs: &[&[u32]],
        first: u64,
        out: &mut [u32],
    ) -> Result<ShareStats> {
        let plan = kernel.plan()?;
        let t = Instant::now();
        let task = BLOCK * TASK_BLOCKS;
        if out.len() <= task {
            run_task(&plan, &mut plan.scratch(), inputs, first, 0, out);
        } else {
            let work = move || {
                out.par_chunks_mut(task).enumerate().for_each_init(
                    || plan.scratch(),
                    |s, (i, o)| run_task(&plan, s, inputs, first, i * task, o),
                )
            };
            self.install(work);
        }
        Ok(ShareStats {
            compute_s: t.elapsed().as_secs_f64(),
            chunks: 1,
            ..ShareStats::default()
        })
    }

    fn reduce(
        &self,
        kernel: &KernelInner,
        op: Reduce,
        inputs: &[&[u32]],
        first: u64,
        len: usize,
    ) -> Result<(Partial, ShareStats)> {
        let plan = kernel.plan()?;
        let ty = kernel.output_type()?;
        let t = Instant::now();
        let task = BLOCK * TASK_BLOCKS;
        let new_tmp = || {
            let tmp = if plan.passthrough().is_some() {
                0
            } else {
                BLOCK
            };
            (plan.scratch(), vec![0u32; tmp])
        };
        let part = if len <= task {
            let (mut s, mut tmp) = new_tmp();
            reduce_task(&plan, &mut s, &mut tmp, op, ty, inputs, first, 0, len)
        } else {
            let tasks = len.div_ceil(task);
            self.install(|| {
                (0..tasks)
                    .into_par_iter()
                    .map_init(new_tmp, |(s, tmp), i| {
                        let at = i * task;
                        let m = task.min(len - at);
                        reduce_task(&plan, s, tmp, op, ty, inputs, first, at, m)
                    })
                    .reduce(|| op.identity(ty), |a, b| a.combine(b, op, ty))
            })
        };
        let stats = ShareStats {
            compute_s: t.elapsed().as_secs_f64(),
            chunks: 1,
            ..ShareStats::default()
        };
        Ok((part, stats))
    }
}
