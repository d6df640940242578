//! What the root knows of each node: its profile (host, devices, threads), gathered
//! once when the cluster is built, and per kernel its measured throughput.
//!
//! A node's throughput for a kernel is its own runtime's end to end: the wall time of
//! the local `Auto` call that computed its share, over whatever of its devices that
//! call chose. The root keeps these as the runtime keeps a device's runs
//! ([`Samples`]: the last runs, recency-weighted least squares to `overhead + n /
//! rate`), one set per (kernel id, operation, rank), refined by every call. A kernel
//! is known by its id ([`Kernel::id`](crate::Kernel::id)), the same on every rank that
//! built the same computation: closures never cross the network.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::cost::{Fit, Samples};

/// One node as the root sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeProfile {
    /// The node's rank.
    pub rank: usize,
    /// Its host name (MPI's processor name).
    pub host: String,
    /// Its runtime's devices, by name and kind (`cpu (2 threads): cpu`).
    pub devices: Vec<String>,
    /// Threads in its rayon pool.
    pub threads: usize,
}

impl NodeProfile {
    /// This process's profile.
    pub(crate) fn local(rank: usize, host: &str, rt: &crate::Runtime) -> NodeProfile {
        NodeProfile {
            rank,
            host: host.to_string(),
            devices: rt
                .devices()
                .iter()
                .map(|d| format!("{}: {}", d.name, d.kind.name()))
                .collect(),
            threads: rayon::current_num_threads(),
        }
    }
}

/// What a model is kept under: the kernel's id and the operation (map, or a reduce).
pub(crate) type Work = (u64, u32);

/// Measured end-to-end runs per (work, rank), on the root.
#[derive(Debug, Default)]
pub(crate) struct Throughputs {
    /// Runs recorded so far, and the samples kept.
    runs: HashMap<(Work, usize), (u64, Samples)>,
}

impl Throughputs {
    /// Records that `rank` took `seconds` for `n` elements of `work`. A node's first
    /// run of a kernel pays for its runtime's probing and compiling: it is the model
    /// until the second run comes, then dropped.
    pub(crate) fn record(&mut self, work: Work, rank: usize, n: usize, seconds: f64) {
        let (count, samples) = self.runs.entry((work, rank)).or_default();
        if *count == 1 {
            *samples = Samples::default();
        }
        *count += 1;
        samples.push(n, seconds);
    }

    /// `rank`'s fitted model for `work`, once measured.
    pub(crate) fn fit(&self, work: Work, rank: usize) -> Option<Fit> {
        self.runs.get(&(work, rank))?.1.fit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_per_kernel_operation_and_rank_without_its_first_run() {
        let mut t = Throughputs::default();
        let map = (0xabc, 0);
        assert!(t.fit(map, 1).is_none());
        t.record(map, 1, 1000, 5e-2); // the first run: probing and compiling
        assert!(t.fit(map, 1).is_some(), "a model after one run");
        t.record(map, 1, 1000, 1e-3);
        t.record(map, 1, 4000, 3e-3);
        let f = t.fit(map, 1).unwrap_or_else(|| panic!("fit"));
        assert!((f.per_elem_s - 2e-3 / 3000.0).abs() < 1e-12, "{f:?}");
        assert!(t.fit(map, 0).is_none() && t.fit((0xabc, 1), 1).is_none());
    }
}
