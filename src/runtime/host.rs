//! Calls over host data: bind the kernel's parameters, check a hand-written kernel,
//! ask which devices are healthy, place the call, and collect the output (a map's
//! values written in place; a reduction's partials combined in input order).

use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{Run, Runtime};
use crate::device::{Task, Timed};
use crate::error::Result;
use crate::kernel::reduce::{Partial, Reduce};
use crate::kernel::{Element, KernelDef, ScalarType};
use crate::placement::Placement;
use crate::schedule::place::place;
use crate::sync::{into_inner, lock};

/// A reduction's partials, one per range, as devices hand them in (in any order).
#[derive(Default)]
pub(super) struct Partials(Mutex<Vec<(usize, Partial)>>);

impl Partials {
    /// Adds the partial of the range starting at element `start`.
    pub(super) fn push(&self, start: usize, p: Partial) {
        lock(&self.0).push((start, p));
    }

    /// Combines the partials in input order, so a call's result does not depend on
    /// timing beyond where the ranges were cut.
    pub(super) fn combine(self, op: Reduce, ty: ScalarType) -> Partial {
        let mut parts = into_inner(self.0);
        parts.sort_by_key(|p| p.0);
        parts
            .into_iter()
            .fold(op.identity(ty), |acc, (_, p)| acc.combine(p, op, ty))
    }
}

impl Runtime {
    /// A map over `n` elements of host data (each input as 32-bit patterns).
    pub(super) fn map_host<O: Element>(
        &self,
        kernel: &Arc<KernelDef>,
        inputs: &[&[u32]],
        n: usize,
        placement: Placement,
    ) -> Result<Run<Vec<O>>> {
        let start = Instant::now();
        kernel.program()?;
        // The parameters' values are read once, here: every device sees the same.
        let kernel = &kernel.bind();
        self.check_custom(kernel, inputs, n)?;
        let mut notes = Vec::new();
        let healthy = self.healthy(kernel, inputs, n, None, &mut notes);
        let call = self.call(kernel, inputs, None, &healthy);
        let mut output: Vec<O> = vec![O::default(); n];
        let out_bits: &mut [u32] = bytemuck::cast_slice_mut(&mut output);
        let runner = |dev: usize, range: &Range<usize>, out: &mut [u32]| -> Result<Timed> {
            let ins: Vec<&[u32]> = inputs.iter().map(|x| &x[range.clone()]).collect();
            let task = Task::new(kernel, &ins, range.start as u64, range.len());
            self.devices[dev].run(&task, out)
        };
        let decided = place(&call, out_bits, placement, &runner, self.no_gpu())?;
        let report = self.receipt(n, placement, decided, start, None, notes);
        Ok(Run { output, report })
    }

    /// A reduction over `n` elements of host data: the combined value's bits.
    pub(super) fn reduce_host(
        &self,
        kernel: &Arc<KernelDef>,
        op: Reduce,
        inputs: &[&[u32]],
        n: usize,
        placement: Placement,
    ) -> Result<Run<u32>> {
        let start = Instant::now();
        let ty = kernel.output_type()?;
        let kernel = &kernel.bind();
        self.check_custom(kernel, inputs, n)?;
        let mut notes = Vec::new();
        let healthy = self.healthy(kernel, inputs, n, Some(op), &mut notes);
        let call = self.call(kernel, inputs, Some(op), &healthy);
        // a reduction writes no output: its "elements" are zero-sized
        let mut none = vec![(); n];
        let partials = Partials::default();
        let runner = |dev: usize, range: &Range<usize>, _: &mut [()]| -> Result<Timed> {
            let ins: Vec<&[u32]> = inputs.iter().map(|x| &x[range.clone()]).collect();
            let task = Task::new(kernel, &ins, range.start as u64, range.len());
            let (part, timed) = self.devices[dev].reduce(&task, op)?;
            partials.push(range.start, part);
            Ok(timed)
        };
        let decided = place(&call, &mut none, placement, &runner, self.no_gpu())?;
        let value = partials.combine(op, ty);
        let report = self.receipt(n, placement, decided, start, Some(op), notes);
        Ok(Run {
            output: value.bits(),
            report,
        })
    }
}
