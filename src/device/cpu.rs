//! The CPU device: the kernel's block evaluator on a rayon pool.
//!
//! The range is cut into tasks of a few blocks; each rayon worker keeps one scratch
//! area per task it takes, so nothing is allocated per block. Inputs smaller than one
//! task run on the calling thread: no pool round trip for a thousand elements. A plan
//! with a loop does far more per element, so its range is cut into a few tasks per
//! thread however short it is (n-body's 4,096 bodies used one core of two).

use std::time::Instant;

use rayon::prelude::*;

use super::{Device, DeviceInfo, DeviceKind, HostTask, ShareStats, TableArg, Timed};
use crate::error::{Error, Result};
use crate::kernel::custom::Custom;
use crate::kernel::eval::{Plan, Scratch, TableRef, BLOCK};
use crate::kernel::reduce::{reduce_block, Partial, Reduce};
use crate::kernel::KernelDef;

/// Blocks per rayon task.
const TASK_BLOCKS: usize = 16;

/// Tasks per thread a looping plan's range is cut into, so a thread that falls
/// behind (a shared machine, a slow part of a Mandelbrot grid) can be helped.
const LOOP_TASKS_PER_THREAD: usize = 2;

/// The fewest elements of a looping plan's task: below this a loop's steps cost more
/// to dispatch, per iteration, than they compute.
const LOOP_TASK_MIN: usize = 512;

/// Elements per rayon task for `len` elements of `plan` on `threads` threads. A plan
/// without a loop does a few operations per element: a task is [`TASK_BLOCKS`]
/// blocks, and a range of one task runs on the calling thread. A loop does its body
/// once per trip for every element (n-body's 4,096 bodies each visit 4,096), so its
/// range is cut into a few tasks per thread however short it is: one task of 4,096
/// n-body elements left the second core idle.
fn task_len(plan: &Plan, len: usize, threads: usize) -> usize {
    let most = BLOCK * TASK_BLOCKS;
    if !plan.loops() || threads <= 1 {
        return most;
    }
    let want = len.div_ceil(threads * LOOP_TASKS_PER_THREAD);
    let step = if want >= BLOCK { BLOCK } else { LOOP_TASK_MIN };
    want.next_multiple_of(step).clamp(LOOP_TASK_MIN, most)
}

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
            types: DeviceInfo::all_types(),
        };
        Ok(CpuDevice { info, pool })
    }
}

/// The most element-wise inputs a kernel may take (its arguments, tables included).
const MAX_INPUTS: usize = 12;

/// Runs `plan` over elements `offset..offset + out.len() / m` block by block; `out`
/// holds their `m` results each.
fn run_task(
    plan: &Plan,
    s: &mut Scratch,
    inputs: &[&[u32]],
    tables: &[TableRef<'_>],
    first: u64,
    offset: usize,
    out: &mut [u32],
) {
    let m = plan.outputs().max(1);
    for (b, o) in out.chunks_mut(BLOCK * m).enumerate() {
        let start = offset + b * BLOCK;
        let len = o.len() / m;
        let mut ins: [&[u32]; MAX_INPUTS] = [&[]; MAX_INPUTS];
        for (k, (slot, x)) in ins.iter_mut().zip(inputs).enumerate() {
            let w = plan.input_words(k);
            *slot = &x[start * w..(start + len) * w];
        }
        let ins = &ins[..inputs.len().min(MAX_INPUTS)];
        if tables.is_empty() && m == 1 {
            plan.run_block(s, ins, first + start as u64, o);
        } else {
            plan.run(s, ins, tables, first + start as u64, o);
        }
    }
}

/// The evaluator's view of a task's tables.
fn table_refs<'a>(tables: &[TableArg<'a>]) -> Vec<TableRef<'a>> {
    tables
        .iter()
        .map(|t| TableRef {
            data: t.data,
            start: t.start,
            len: t.len.min(u32::MAX as usize) as u32,
        })
        .collect()
}

/// Reduces elements `offset..offset + len` block by block: `direct` names an input
/// to reduce in place (the kernel is `|x| x`), else `eval(at, out)` maps the block
/// starting at `at` into `out`.
#[allow(clippy::too_many_arguments)]
fn reduce_task(
    op: Reduce,
    ty: crate::ScalarType,
    inputs: &[&[u32]],
    direct: Option<usize>,
    eval: &mut dyn FnMut(usize, &mut [u32]),
    tmp: &mut [u32],
    offset: usize,
    len: usize,
) -> Partial {
    let mut acc = op.identity(ty);
    let mut at = offset;
    while at < offset + len {
        let m = BLOCK.min(offset + len - at);
        let part = match direct {
            Some(k) => reduce_block(op, ty, &inputs[k][at..at + m]),
            None => {
                // a 64-bit value takes two words
                let o = &mut tmp[..m * if ty.is_wide() { 2 } else { 1 }];
                eval(at, o);
                reduce_block(op, ty, o)
            }
        };
        acc = acc.combine(part, op, ty);
        at += m;
    }
    acc
}

/// Runs a hand-written kernel's CPU half over `out`, from element `offset`.
fn run_custom(c: &Custom, inputs: &[&[u32]], first: u64, offset: usize, out: &mut [u32]) {
    let ins: Vec<&[u32]> = inputs
        .iter()
        .map(|x| &x[offset..offset + out.len()])
        .collect();
    (c.cpu)(&ins, first.wrapping_add(offset as u64), out);
}

impl CpuDevice {
    /// The threads [`install`](Self::install) runs on.
    fn threads(&self) -> usize {
        self.pool
            .as_ref()
            .map_or_else(rayon::current_num_threads, |p| p.current_num_threads())
    }

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

    fn run(&self, task: &HostTask<'_>, out: &mut [u32]) -> Result<Timed> {
        let t = Instant::now();
        let stats =
            self.map_tables(task.kernel, task.inputs, task.tables, task.first_index, out)?;
        Ok(Timed {
            stats,
            secs: t.elapsed().as_secs_f64(),
        })
    }

    fn reduce(&self, task: &HostTask<'_>, op: Reduce) -> Result<(Partial, Timed)> {
        let t = Instant::now();
        let (part, stats) = self.fold_tables(
            task.kernel,
            op,
            task.inputs,
            task.tables,
            task.first_index,
            task.len,
        )?;
        let secs = t.elapsed().as_secs_f64();
        Ok((part, Timed { stats, secs }))
    }
}

impl CpuDevice {
    /// Computes `kernel` into `out` (see [`Device::run`]).
    #[cfg(test)]
    pub(crate) fn map(
        &self,
        kernel: &KernelDef,
        inputs: &[&[u32]],
        first: u64,
        out: &mut [u32],
    ) -> Result<ShareStats> {
        self.map_tables(kernel, inputs, &[], first, out)
    }

    /// [`map`](Self::map) with whole-array inputs, `out` holding each element's
    /// results together.
    pub(crate) fn map_tables(
        &self,
        kernel: &KernelDef,
        inputs: &[&[u32]],
        tables: &[TableArg<'_>],
        first: u64,
        out: &mut [u32],
    ) -> Result<ShareStats> {
        let t = Instant::now();
        let task = BLOCK * TASK_BLOCKS;
        if let Some(c) = kernel.custom() {
            self.install(|| {
                out.par_chunks_mut(task)
                    .enumerate()
                    .for_each(|(i, o)| run_custom(c, inputs, first, i * task, o))
            });
            return Ok(ShareStats {
                compute_s: t.elapsed().as_secs_f64(),
                chunks: 1,
                ..ShareStats::default()
            });
        }
        let plan = kernel.plan()?;
        let tables = &table_refs(tables)[..];
        let m = plan.outputs().max(1);
        let task = task_len(&plan, out.len() / m, self.threads());
        if out.len() <= task * m {
            run_task(&plan, &mut plan.scratch(), inputs, tables, first, 0, out);
        } else {
            let work = move || {
                out.par_chunks_mut(task * m).enumerate().for_each_init(
                    || plan.scratch(),
                    |s, (i, o)| run_task(&plan, s, inputs, tables, first, i * task, o),
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

    /// Reduces `len` elements of `kernel` (see [`Device::reduce`]), reading `tables`.
    pub(crate) fn fold_tables(
        &self,
        kernel: &KernelDef,
        op: Reduce,
        inputs: &[&[u32]],
        tables: &[TableArg<'_>],
        first: u64,
        len: usize,
    ) -> Result<(Partial, ShareStats)> {
        let tables = &table_refs(tables)[..];
        let ty = kernel.output_type()?;
        let t = Instant::now();
        let task = BLOCK * TASK_BLOCKS;
        let custom = kernel.custom();
        let plan = match custom {
            Some(_) => None,
            None => Some(kernel.plan()?),
        };
        let direct = plan.as_ref().and_then(|p| p.passthrough());
        let task = match &plan {
            Some(p) => task_len(p, len, self.threads()),
            None => task,
        };
        // one task: a worker's scratch and mapped block, reused across its tasks
        let task_part = |state: &mut (Option<Scratch>, Vec<u32>), at: usize, m: usize| {
            let (scratch, tmp) = state;
            let mut eval = |b: usize, o: &mut [u32]| match (custom, &plan, scratch.as_mut()) {
                (Some(c), _, _) => run_custom(c, inputs, first, b, o),
                (None, Some(p), Some(s)) => run_task(p, s, inputs, tables, first, b, o),
                _ => {}
            };
            reduce_task(op, ty, inputs, direct, &mut eval, tmp, at, m)
        };
        let new_state = || {
            let tmp = match direct {
                Some(_) => 0,
                None if ty.is_wide() => 2 * BLOCK,
                None => BLOCK,
            };
            (plan.as_ref().map(|p| p.scratch()), vec![0u32; tmp])
        };
        let part = if len <= task {
            task_part(&mut new_state(), 0, len)
        } else {
            let tasks = len.div_ceil(task);
            self.install(|| {
                (0..tasks)
                    .into_par_iter()
                    .map_init(new_state, |state, i| {
                        let at = i * task;
                        task_part(state, at, task.min(len - at))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{fold, index, Expr, Kernel};

    /// A looping plan's range is cut into a few tasks per thread, in whole blocks or
    /// [`LOOP_TASK_MIN`] multiples; a plan without a loop keeps its long tasks.
    #[test]
    fn a_loop_is_spread_over_the_threads() {
        let looped = Kernel::map(|x: Expr<f32>| fold(8, 0.0f32, |a, _| a * 0.5 + &x));
        let plain = Kernel::map(|x: Expr<f32>| x * 2.0 + 1.0);
        let (lp, pp) = (looped.inner().plan(), plain.inner().plan());
        let (lp, pp) = (
            lp.unwrap_or_else(|e| panic!("{e}")),
            pp.unwrap_or_else(|e| panic!("{e}")),
        );
        let most = BLOCK * TASK_BLOCKS;
        assert_eq!(task_len(&pp, 4096, 2), most);
        assert_eq!(task_len(&lp, 4096, 1), most);
        assert_eq!(task_len(&lp, 4096, 2), 1024);
        assert_eq!(task_len(&lp, 4133, 2), 1536);
        assert_eq!(task_len(&lp, 100, 2), LOOP_TASK_MIN);
        assert_eq!(task_len(&lp, 40_000, 2), 3 * BLOCK);
        assert_eq!(task_len(&lp, 10_000_000, 2), most);
    }

    /// Tasks that start inside a block (1,536 elements each) give what one thread
    /// gives: every element once, at its own index.
    #[test]
    fn a_loop_split_into_short_tasks_matches_one_thread() {
        let k = Kernel::map(|x: Expr<f32>| {
            let i = index().cast::<f32>();
            fold(5, x, |a, j| a * 0.75 + &i - j.cast::<f32>())
        });
        let n = 4133;
        let xs: Vec<u32> = (0..n).map(|i| (i as f32 * 0.37).to_bits()).collect();
        let mut outs = Vec::new();
        for threads in [1, 2] {
            let d = CpuDevice::new(Some(threads)).unwrap_or_else(|e| panic!("{e}"));
            let mut out = vec![0u32; n];
            d.map(k.inner(), &[&xs], 7, &mut out)
                .unwrap_or_else(|e| panic!("{e}"));
            outs.push(out);
        }
        assert_eq!(outs[0], outs[1]);
        for (i, (&o, &x)) in outs[0].iter().zip(&xs).enumerate() {
            let gi = (i + 7) as f32;
            let want = (0..5).fold(f32::from_bits(x), |a, j| a * 0.75 + gi - j as f32);
            assert_eq!(o, want.to_bits(), "element {i}");
        }
    }

    /// A reduction of a looping kernel, cut into short tasks on two threads, reduces
    /// every element once: a wrapping u32 sum (the same in any order), checked against
    /// plain Rust for several lengths around the task size.
    #[test]
    fn a_loop_reduced_in_short_tasks_counts_every_element_once() {
        let k = Kernel::map(|x: Expr<u32>| {
            let i = index();
            fold(3, x, |a, j| (a * 3u32 + &i) ^ j)
        });
        let d = CpuDevice::new(Some(2)).unwrap_or_else(|e| panic!("{e}"));
        for n in [100usize, 1536, 4133, 3 * BLOCK + 11] {
            let xs: Vec<u32> = (0..n as u32).map(|i| i.wrapping_mul(0x9e37_79b9)).collect();
            let (part, _) = d
                .fold_tables(k.inner(), Reduce::Sum, &[&xs], &[], 5, n)
                .unwrap_or_else(|e| panic!("{e}"));
            let want = xs.iter().enumerate().fold(0u32, |s, (e, &x)| {
                let i = (e + 5) as u32;
                let v = (0..3u32).fold(x, |a, j| (a.wrapping_mul(3).wrapping_add(i)) ^ j);
                s.wrapping_add(v)
            });
            assert_eq!(part.bits(), want as u64, "{n} elements");
        }
    }

    /// `index()` wraps at 2^32 on the CPU as on the GPU: a share that starts two
    /// elements before 2^32 sees MAX - 1, MAX, 0, 1, and so on. Long enough to cross a
    /// block and a task, so every block's base is checked, and on a pool of two threads
    /// so the tasks run apart.
    #[test]
    fn index_wraps_at_two_to_the_32() {
        let d = CpuDevice::new(Some(2)).unwrap_or_else(|e| panic!("{e}"));
        let k = Kernel::map(|x: Expr<u32>| x ^ index());
        let n = BLOCK * TASK_BLOCKS * 2 + 5;
        let xs: Vec<u32> = (0..n as u32).map(|i| i.wrapping_mul(0x9e37_79b9)).collect();
        let first = (1u64 << 32) - 2;
        let mut out = vec![0u32; n];
        d.map(k.inner(), &[&xs], first, &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            out[..4]
                .iter()
                .zip(&xs)
                .map(|(o, x)| o ^ x)
                .collect::<Vec<_>>(),
            [u32::MAX - 1, u32::MAX, 0, 1]
        );
        for (i, (o, x)) in out.iter().zip(&xs).enumerate() {
            assert_eq!(o ^ x, (first + i as u64) as u32, "element {i}");
        }
    }
}
