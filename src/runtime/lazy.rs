//! The evaluation of lazy chains ([`Lazy`]): fused into one kernel, or stage by
//! stage, each stage a call over arrays (`arrays.rs`).

use super::{Run, Runtime};
use crate::array::{Array, Lazy};
use crate::error::Result;
use crate::kernel::reduce::Reduce;
use crate::kernel::{Element, Expr, Kernel};
use crate::placement::Placement;

impl<I: Element, T: Element> Lazy<'_, I, T> {
    /// Runs the chain: the output array stays where it was computed.
    pub fn eval(self, rt: &Runtime, placement: Placement) -> Result<Run<Array<T>>> {
        self.check()?;
        let n = self.source.len();
        let Some((first, rest)) = self.stages.split_first() else {
            return Ok(Run {
                output: self.source.clone().retype(),
                report: rt.empty_receipt(n, placement),
            });
        };
        if let Some(k) = self.fused()? {
            let mut run = rt.array_map(&k, &self.inputs(), placement)?;
            run.report.fused = self.stages.len();
            return Ok(Run {
                output: Array::from_parts(n, run.output),
                report: run.report,
            });
        }
        // stage by stage, each output an array left where it was computed
        let run = rt.array_map(&first.kernel, &first.inputs(self.source.view()), placement)?;
        let mut a = Array::<u32>::from_parts(n, run.output);
        let mut report = run.report;
        for s in rest {
            let run = rt.array_map(&s.kernel, &s.inputs(a.view()), placement)?;
            a = Array::from_parts(n, run.output);
            report = report.then(run.report);
        }
        Ok(Run {
            output: a.retype(),
            report,
        })
    }

    /// Runs the chain and gathers the result on the host; the report counts the
    /// read-back in its notes and in `bytes_from_devices`.
    pub fn to_vec(self, rt: &Runtime, placement: Placement) -> Result<Run<Vec<T>>> {
        let Run { output, mut report } = self.eval(rt, placement)?;
        let (v, bytes) = output.to_vec_counted()?;
        if bytes > 0 {
            report.gathered += bytes;
            report
                .notes
                .push(format!("gathered on the host: {bytes} bytes read back"));
        }
        Ok(Run { output: v, report })
    }

    /// Runs the chain into a reduction: with fusion, the stages and the reduction are
    /// one pass and no mapped array is written anywhere.
    pub fn reduce(self, rt: &Runtime, op: Reduce, placement: Placement) -> Result<Run<T>> {
        self.check()?;
        let n = self.stages.len();
        let bits = |run: Run<u64>| Run {
            output: T::from_bits64(run.output),
            report: run.report,
        };
        if let Some(k) = self.fused()? {
            let mut run = rt.array_reduce(&k, op, &self.inputs(), placement)?;
            run.report.fused = n;
            return Ok(bits(run));
        }
        // unfused: every stage but the last as maps, the last as the reduction's kernel
        let mut head = self.fuse(false).retype::<u32>();
        let Some(last) = head.stages.pop() else {
            let ident = Kernel::map(|x: Expr<I>| x);
            let run = rt.array_reduce(ident.inner(), op, &[head.source.view()], placement)?;
            return Ok(bits(run));
        };
        if head.stages.is_empty() {
            let ins = last.inputs(head.source.view());
            return rt.array_reduce(&last.kernel, op, &ins, placement).map(bits);
        }
        let mapped = head.eval(rt, placement)?;
        let run = rt.array_reduce(
            &last.kernel,
            op,
            &last.inputs(mapped.output.view()),
            placement,
        )?;
        Ok(Run {
            output: T::from_bits64(run.output),
            report: mapped.report.then(run.report),
        })
    }
}
