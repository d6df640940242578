//! Where each element runs: placements and the split of one call across devices.
//!
//! Layout of a split: the GPUs take the first part of the input, in order; the CPU
//! takes the rest. Each device's share is one contiguous range, so the outputs are
//! written in place, in input order, with no stitching copy.
//!
//! `Auto` ([`auto`]) asks each device's model ([`model`]) what a share would cost,
//! solves for the split that finishes all devices together ([`plan`]), and runs it
//! with the tail balanced as it goes ([`exec`]). Inputs too small for any other device
//! to pay run on the CPU at once, with no planning and no threads.

pub(crate) mod auto;
pub(crate) mod exec;
pub(crate) mod model;
pub(crate) mod plan;

use std::fmt;
use std::ops::Range;

use crate::device::DeviceKind;
use crate::error::{Error, Result};

/// Where a call's elements run.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Placement {
    /// Let the library choose (the default).
    #[default]
    Auto,
    /// Every element on the CPU.
    Cpu,
    /// Every element on the GPU(s), shared equally when there are several.
    Gpu,
    /// This fraction of the elements (0.0 to 1.0) on the GPU(s), the rest on the CPU,
    /// all running at the same time.
    Split(f64),
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placement::Auto => f.write_str("auto"),
            Placement::Cpu => f.write_str("cpu"),
            Placement::Gpu => f.write_str("gpu"),
            Placement::Split(x) => write!(f, "split({x:.2})"),
        }
    }
}

/// The ranges each device computes for a call of `n` elements, as (device index,
/// range); devices with nothing to do are left out. `kinds` lists the runtime's
/// devices; `placement` must not be `Auto` (resolve it first).
pub(crate) fn shares(
    n: usize,
    placement: Placement,
    kinds: &[DeviceKind],
    no_gpu_reason: &str,
) -> Result<Vec<(usize, Range<usize>)>> {
    let cpu = kinds.iter().position(|k| *k == DeviceKind::Cpu);
    let gpus: Vec<usize> = (0..kinds.len()).filter(|&i| kinds[i].is_gpu()).collect();
    let gpu_part = match placement {
        Placement::Cpu | Placement::Auto => 0,
        Placement::Gpu => n,
        Placement::Split(f) => {
            if !(0.0..=1.0).contains(&f) {
                return Err(Error::BadSplit { fraction: f });
            }
            (f * n as f64).round() as usize
        }
    };
    if gpu_part > 0 && gpus.is_empty() {
        return Err(Error::NoAdapter {
            reason: no_gpu_reason.to_string(),
        });
    }
    if gpu_part < n && cpu.is_none() {
        return Err(Error::NoDevice { kind: "cpu" });
    }
    let mut out = Vec::new();
    let per = gpu_part.checked_div(gpus.len()).unwrap_or(0);
    let mut start = 0;
    for (j, &g) in gpus.iter().enumerate() {
        let len = if j + 1 == gpus.len() {
            gpu_part - start
        } else {
            per
        };
        if len > 0 {
            out.push((g, start..start + len));
        }
        start += len;
    }
    if let Some(c) = cpu {
        if gpu_part < n {
            out.push((c, gpu_part..n));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeviceKind::*;

    #[test]
    fn split_covers_every_element_once_in_order() {
        let kinds = [Cpu, DiscreteGpu, DiscreteGpu];
        for n in [0, 1, 2, 3, 255, 256, 257, 1000] {
            for f in [0.0, 0.05, 0.25, 0.5, 0.999, 1.0] {
                let s = shares(n, Placement::Split(f), &kinds, "").unwrap_or_default();
                let mut next = 0;
                for (_, r) in &s {
                    assert_eq!(r.start, next, "n={n} f={f}");
                    assert!(!r.is_empty());
                    next = r.end;
                }
                assert_eq!(next, n, "n={n} f={f}");
                let gpu: usize = s
                    .iter()
                    .filter(|(d, _)| *d != 0)
                    .map(|(_, r)| r.len())
                    .sum();
                assert_eq!(gpu, (f * n as f64).round() as usize);
            }
        }
    }

    #[test]
    fn bad_fraction_and_missing_devices_are_errors() {
        assert!(matches!(
            shares(10, Placement::Split(1.5), &[Cpu], ""),
            Err(Error::BadSplit { .. })
        ));
        assert!(matches!(
            shares(10, Placement::Split(f64::NAN), &[Cpu], ""),
            Err(Error::BadSplit { .. })
        ));
        assert!(matches!(
            shares(10, Placement::Gpu, &[Cpu], "none"),
            Err(Error::NoAdapter { .. })
        ));
        assert!(matches!(
            shares(10, Placement::Cpu, &[DiscreteGpu], ""),
            Err(Error::NoDevice { .. })
        ));
        assert_eq!(
            shares(10, Placement::Split(0.0), &[Cpu], "").map(|s| s.len()),
            Ok(1)
        );
    }
}
