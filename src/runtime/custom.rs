//! The check of a hand-written kernel: both halves run on a sample of the call's
//! input on each GPU not yet checked (every GPU, every call, in debug builds); the
//! call fails on the first element where they disagree. See [`crate::kernel::custom`].

use super::Runtime;
use crate::device::Task;
use crate::error::{Error, Result};
use crate::kernel::custom;
use crate::kernel::Bound;

impl Runtime {
    pub(super) fn check_custom(&self, kernel: &Bound, inputs: &[&[u32]], n: usize) -> Result<()> {
        let Some(c) = kernel.custom() else {
            return Ok(());
        };
        let ty = kernel.output_type()?;
        let windows = custom::windows(n);
        for (d, info) in self.devices.iter().zip(&self.infos) {
            let always = cfg!(debug_assertions);
            if !info.kind.is_gpu() || d.is_virtual() || (!always && c.is_verified(&info.name)) {
                continue;
            }
            for w in &windows {
                let ins: Vec<&[u32]> = inputs.iter().map(|x| &x[w.clone()]).collect();
                let mut gpu = vec![0u32; w.len()];
                d.run(&Task::new(kernel, &ins, w.start as u64, w.len()), &mut gpu)?;
                let mut cpu = vec![0u32; w.len()];
                (c.cpu)(&ins, w.start as u64, &mut cpu);
                let rel = c.tolerance();
                if let Some(k) = (0..w.len()).find(|&k| !custom::agree(ty, cpu[k], gpu[k], rel)) {
                    return Err(Error::CustomMismatch {
                        device: info.name.clone(),
                        index: w.start + k,
                        cpu: custom::show(ty, cpu[k]),
                        gpu: custom::show(ty, gpu[k]),
                        tolerance: rel,
                    });
                }
            }
            if !windows.is_empty() {
                c.mark_verified(&info.name);
            }
        }
        Ok(())
    }
}
