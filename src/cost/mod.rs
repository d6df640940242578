//! The cost model, in one place: what a run of `n` elements costs on a device.
//!
//! A device's finish time is a [`Cost`] (ready time, fixed cost, per-element cost and
//! a pipeline fill); a GPU's is built from its link and its compute stage by
//! [`pipeline_cost`] (the bounding stage times `n`, plus one chunk of the others).
//! Measurements become fits in [`samples`]. The scheduler predicts with these and the
//! simulated device keeps its virtual clock with the same functions, so the two can
//! never disagree about what a run costs. Pure functions, no device handle.

pub(crate) mod samples;

use crate::transfer::Link;

pub(crate) use samples::Samples;

/// Bytes of input per chunk of the transfer pipeline (its fill and drain cost one
/// chunk's worth of the non-bounding stages).
pub(crate) const PIPELINE_CHUNK_BYTES: u64 = 256 << 10;

/// `t(n) = fixed_s + n * per_elem_s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Fit {
    pub(crate) fixed_s: f64,
    pub(crate) per_elem_s: f64,
}

/// A device's predicted finish time as a function of the elements it gets:
/// `ready_s` for none, else
/// `ready_s + fixed_s + n * per_elem_s + min(n, fill_elems) * fill_extra_s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cost {
    /// When the device can start (0 for an idle device).
    pub(crate) ready_s: f64,
    /// Seconds paid once per run, whatever its size (launch, link latency).
    pub(crate) fixed_s: f64,
    /// Seconds per element in steady state (the bounding pipeline stage).
    pub(crate) per_elem_s: f64,
    /// Elements of the pipeline's first chunk, which pay every stage.
    pub(crate) fill_elems: f64,
    /// Extra seconds per element inside the first chunk (the non-bounding stages).
    pub(crate) fill_extra_s: f64,
}

/// The smallest per-element cost the solver accepts (keeps divisions finite).
const MIN_PER_ELEM_S: f64 = 1e-18;

impl Cost {
    /// An affine cost: `fixed_s + n * per_elem_s`, ready now.
    pub(crate) fn affine(fixed_s: f64, per_elem_s: f64) -> Cost {
        Cost {
            ready_s: 0.0,
            fixed_s,
            per_elem_s,
            fill_elems: 0.0,
            fill_extra_s: 0.0,
        }
    }

    pub(crate) fn per(&self) -> f64 {
        self.per_elem_s.max(MIN_PER_ELEM_S)
    }

    /// Seconds of work for `n` elements, not counting the ready time (0 for none).
    pub(crate) fn work_s(&self, n: usize) -> f64 {
        if n == 0 {
            return 0.0;
        }
        let n = n as f64;
        self.fixed_s + n * self.per() + n.min(self.fill_elems) * self.fill_extra_s
    }

    /// Predicted finish time with `n` elements.
    pub(crate) fn finish_s(&self, n: usize) -> f64 {
        self.ready_s + self.work_s(n)
    }

    /// The most elements (at most `cap`) the device can finish by `t`.
    pub(crate) fn count_by(&self, t: f64, cap: usize) -> usize {
        let u = t - self.ready_s - self.fixed_s;
        if u.is_nan() || u <= 0.0 || self.finish_s(1) > t {
            return 0;
        }
        let steep = self.per() + self.fill_extra_s;
        let mut n = u / steep;
        if n > self.fill_elems {
            n = (u - self.fill_elems * self.fill_extra_s) / self.per();
        }
        let mut k = if n >= cap as f64 { cap } else { n as usize };
        // the float inverse can be one off either way
        while k > 0 && self.finish_s(k) > t {
            k -= 1;
        }
        while k < cap && self.finish_s(k + 1) <= t {
            k += 1;
        }
        k
    }
}

/// Which stage bounds a prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    Upload,
    Compute,
    Download,
    /// Measured end to end: stages not told apart.
    Whole,
}

impl Bound {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Bound::Upload => "upload",
            Bound::Compute => "compute",
            Bound::Download => "download",
            Bound::Whole => "end to end",
        }
    }
}

/// The cost of `n` elements moved up, computed and moved down in pipelined chunks of
/// [`PIPELINE_CHUNK_BYTES`] of input: the slowest stage (per element, each chunk's
/// link latency spread over it) times `n`, plus the other stages over the first chunk
/// (fill and drain), plus the latencies of one transfer each way and the compute
/// overhead. Shared by the scheduler's predictions and the simulated GPU's clock.
pub(crate) fn pipeline_cost(
    link: &Link,
    compute: Fit,
    in_bytes: u64,
    out_bytes: u64,
) -> (Cost, Bound) {
    let chunk = (PIPELINE_CHUNK_BYTES / in_bytes.max(1)).max(1) as f64;
    let up = if in_bytes == 0 {
        0.0
    } else {
        in_bytes as f64 / link.up.beta_bytes_per_s + link.up.alpha_s / chunk
    };
    let down = if out_bytes == 0 {
        0.0
    } else {
        out_bytes as f64 / link.down.beta_bytes_per_s + link.down.alpha_s / chunk
    };
    let comp = compute.per_elem_s;
    let (max, bound) = if up >= comp && up >= down {
        (up, Bound::Upload)
    } else if down >= comp {
        (down, Bound::Download)
    } else {
        (comp, Bound::Compute)
    };
    let cost = Cost {
        ready_s: 0.0,
        fixed_s: link.up.alpha_s + link.down.alpha_s + compute.fixed_s,
        per_elem_s: max,
        fill_elems: chunk,
        fill_extra_s: up + comp + down - max,
    };
    (cost, bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::LinkDir;

    #[test]
    fn pipeline_is_bounded_by_the_slowest_stage() {
        let l = LinkDir {
            alpha_s: 0.0,
            beta_bytes_per_s: 8e9,
        };
        let link = Link { up: l, down: l };
        let compute = Fit {
            fixed_s: 0.0,
            per_elem_s: 0.1e-9,
        };
        // 8 bytes up (1 ns), 0.1 ns compute, 4 bytes down (0.5 ns)
        let (c, b) = pipeline_cost(&link, compute, 8, 4);
        assert_eq!(b, Bound::Upload);
        assert!((c.per_elem_s - 1e-9).abs() < 1e-18);
        let n = 100_000_000;
        let plain_sum = n as f64 * 1.6e-9;
        assert!(c.work_s(n) < plain_sum * 0.7, "pipelined, not summed");
        assert!(c.work_s(n) > n as f64 * 1e-9);
    }
}
