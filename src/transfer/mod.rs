//! The transfer layer: the PCI bus as a network link.
//!
//! A link is modelled per direction like a network link (Hockney): moving `b` bytes
//! takes `alpha + b / beta` seconds. The GPU device measures and fits its link
//! ([`calibrate`]), stages data through pooled mapped buffers and pipelines chunks
//! through a ring ([`staging`]); the scheduler reads the link to predict what moving a
//! share's data will cost, and every call's receipt carries a [`TransferStats`].

// Calibration and chunk planning serve the GPU device; a build without the `gpu`
// feature keeps the types (simulated devices use them) but not their callers.
#![cfg_attr(not(feature = "gpu"), allow(dead_code))]

pub(crate) mod calibrate;
#[cfg(feature = "gpu")]
pub(crate) mod staging;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use calibrate::Calibration;

/// One direction of a link: latency and bandwidth.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinkDir {
    /// Seconds per transfer, whatever its size.
    pub alpha_s: f64,
    /// Bytes per second once a transfer is under way.
    pub beta_bytes_per_s: f64,
}

impl LinkDir {
    /// Predicted seconds to move `bytes` (0 for no bytes).
    pub fn time_s(&self, bytes: u64) -> f64 {
        if bytes == 0 {
            0.0
        } else {
            self.alpha_s + bytes as f64 / self.beta_bytes_per_s
        }
    }
}

/// A device's link to the host, both directions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// Host to device.
    pub up: LinkDir,
    /// Device to host.
    pub down: LinkDir,
}

/// How transfers are cut and pipelined, and where calibration lives. Every field left
/// `None` is chosen by the library (from the link model, the adapter's limits and the
/// environment: `HYBRID_CHUNK_BYTES`, `HYBRID_RING`, `HYBRID_CACHE_DIR`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransferConfig {
    /// Bytes per chunk and per input buffer (rounded down to whole workgroups, capped
    /// by the adapter's storage binding limit).
    pub chunk_bytes: Option<u64>,
    /// Chunks in flight at once (staging slots in the ring), at least 1.
    pub ring: Option<usize>,
    /// Directory the link calibration is stored in.
    pub cache_dir: Option<PathBuf>,
    /// Most bytes of idle buffers the pool keeps between calls (default 1 GiB).
    pub pool_idle_bytes: Option<u64>,
}

impl TransferConfig {
    /// The configuration the environment asks for: `HYBRID_CHUNK_BYTES`,
    /// `HYBRID_RING`, `HYBRID_CACHE_DIR`. Unparsable values are ignored.
    pub fn from_env() -> TransferConfig {
        let num = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|&v| v > 0)
        };
        TransferConfig {
            chunk_bytes: num("HYBRID_CHUNK_BYTES"),
            ring: num("HYBRID_RING").map(|r| r as usize),
            cache_dir: std::env::var_os("HYBRID_CACHE_DIR")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from),
            pool_idle_bytes: None,
        }
    }

    /// `self`, with every unset field taken from `other`.
    pub(crate) fn or(&self, other: &TransferConfig) -> TransferConfig {
        TransferConfig {
            chunk_bytes: self.chunk_bytes.or(other.chunk_bytes),
            ring: self.ring.or(other.ring),
            cache_dir: self.cache_dir.clone().or_else(|| other.cache_dir.clone()),
            pool_idle_bytes: self.pool_idle_bytes.or(other.pool_idle_bytes),
        }
    }
}

/// What the transfer layer did for one device's share of one call: stage by stage,
/// and what the link model predicted for the same bytes.
///
/// The stages of different chunks overlap (that is the point of the ring), so their
/// sum may exceed the call's wall time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct TransferStats {
    /// Bytes moved host to device.
    pub bytes_up: u64,
    /// Bytes moved device to host.
    pub bytes_down: u64,
    /// Chunks the transfer was cut into.
    pub chunks: u32,
    /// Bytes per chunk and input (the last chunk may be shorter).
    pub chunk_bytes: u64,
    /// Staging slots in the ring.
    pub ring: u32,
    /// Seconds copying inputs from host memory into mapped staging buffers.
    pub fill_s: f64,
    /// Seconds the device spent copying staging to device storage (device timestamps).
    pub copy_up_s: f64,
    /// Seconds the device spent copying results into staging (device timestamps).
    pub copy_down_s: f64,
    /// Seconds the host waited for mapped read-back buffers.
    pub map_wait_s: f64,
    /// Seconds copying results from mapped staging into host memory.
    pub readback_s: f64,
    /// Whether copy and compute times come from device timestamps. When false they
    /// were not measured for this call (not zero-cost): compute holds the whole
    /// device-side wait and the copy times are 0, so the GB/s figures cover the host
    /// side only. A GPU times a call only when its timestamps cost at most 1/64 of a
    /// chunk's predicted transfer time (measured once per device; on lavapipe a chunk's
    /// timestamps cost ~100 µs, so chunks under ~64 MiB go untimed);
    /// `HYBRID_DEVICE_TIMESTAMPS=1` or `0` forces the choice.
    pub device_timed: bool,
    /// The link model's prediction for the bytes moved up, chunk by chunk.
    pub predicted_up_s: f64,
    /// The link model's prediction for the bytes moved down, chunk by chunk.
    pub predicted_down_s: f64,
    /// Buffers newly allocated for this call (0 once the pool is warm).
    pub allocations: u32,
}

impl TransferStats {
    /// Adds another run's figures into these (a device that took several pieces of
    /// one call): sums of bytes, chunks, seconds, predictions and allocations; the
    /// largest chunk and ring; device-timed only if both were.
    pub(crate) fn absorb(&mut self, o: &TransferStats) {
        if self.chunks == 0 {
            self.device_timed = o.device_timed;
        } else if o.chunks > 0 {
            self.device_timed &= o.device_timed;
        }
        self.bytes_up += o.bytes_up;
        self.bytes_down += o.bytes_down;
        self.chunks += o.chunks;
        self.chunk_bytes = self.chunk_bytes.max(o.chunk_bytes);
        self.ring = self.ring.max(o.ring);
        self.fill_s += o.fill_s;
        self.copy_up_s += o.copy_up_s;
        self.copy_down_s += o.copy_down_s;
        self.map_wait_s += o.map_wait_s;
        self.readback_s += o.readback_s;
        self.predicted_up_s += o.predicted_up_s;
        self.predicted_down_s += o.predicted_down_s;
        self.allocations += o.allocations;
    }

    /// Seconds measured for the upload path: filling staging plus the device copy.
    pub fn measured_up_s(&self) -> f64 {
        self.fill_s + self.copy_up_s
    }

    /// Seconds measured for the download path: device copy plus the host read-back
    /// (the wait for the map is not counted: in a pipeline it is mostly compute).
    pub fn measured_down_s(&self) -> f64 {
        self.copy_down_s + self.readback_s
    }

    /// Achieved upload rate in GB/s (10^9 bytes/s) over the measured upload path.
    pub fn up_gbps(&self) -> f64 {
        gbps(self.bytes_up, self.measured_up_s())
    }

    /// Achieved download rate in GB/s over the measured download path.
    pub fn down_gbps(&self) -> f64 {
        gbps(self.bytes_down, self.measured_down_s())
    }
}

/// Achieved gigabytes (10^9 bytes) per second, 0 when nothing was timed.
pub(crate) fn gbps(bytes: u64, s: f64) -> f64 {
    if s > 0.0 {
        bytes as f64 / s / 1e9
    } else {
        0.0
    }
}

/// Default upper bound on one chunk's bytes per buffer: large enough to amortise any
/// link's latency, small enough that a ring of three for a two-input kernel stays
/// under half a GiB of staging.
pub(crate) const DEFAULT_MAX_CHUNK_BYTES: u64 = 64 << 20;

/// Smallest chunk worth cutting to, whatever the model says.
const MIN_CHUNK_BYTES: u64 = 1 << 20;

/// The latency share of a chunk's transfer the chunk size is chosen to stay under.
const ALPHA_SHARE: f64 = 1.0 / 32.0;

/// Default ring depth: one slot being filled, one computing, one read back.
pub(crate) const DEFAULT_RING: usize = 3;

/// Chunk length in elements and ring depth for `n` elements of `inputs` inputs.
///
/// Rule: a chunk is large enough that the per-transfer latency α (and the dispatch
/// overhead) is at most 1/32 of its transfer time, `c >= 32 α β`, at least 1 MiB; it
/// is cut smaller than that only when the whole share is smaller; it aims at 8 chunks
/// so that the ring has something to overlap, and never exceeds `max_chunk_bytes` (the
/// adapter's binding limit, or 64 MiB). Ring depth 3 (fill, compute, read back), fewer
/// when there are fewer chunks. `cfg` overrides either. `align` is the element count a
/// chunk is a multiple of (the workgroup size).
pub(crate) fn plan_chunks(
    n: usize,
    link: Option<&Link>,
    dispatch_s: f64,
    cfg: &TransferConfig,
    max_chunk_bytes: u64,
    align: usize,
) -> (usize, usize) {
    let align = align.max(1) as u64;
    let max_chunk_bytes = match cfg.chunk_bytes {
        Some(_) => max_chunk_bytes,
        None => max_chunk_bytes.min(DEFAULT_MAX_CHUNK_BYTES),
    };
    let max_elems = (max_chunk_bytes / 4 / align * align).max(align);
    let total = n as u64 * 4;
    let bytes = match cfg.chunk_bytes {
        Some(c) => c,
        None => {
            let amortise = |d: &LinkDir| (d.alpha_s + dispatch_s) * d.beta_bytes_per_s;
            let floor = link
                .map(|l| amortise(&l.up).max(amortise(&l.down)) / ALPHA_SHARE)
                .filter(|b| b.is_finite())
                .unwrap_or(0.0) as u64;
            let floor = floor.max(MIN_CHUNK_BYTES);
            (total / 8).max(floor)
        }
    };
    let elems = (bytes / 4 / align * align).clamp(align, max_elems);
    let chunk = (elems as usize).min(n.max(1));
    let chunks = n.div_ceil(chunk).max(1);
    let ring = cfg.ring.unwrap_or(DEFAULT_RING).clamp(1, chunks);
    (chunk, ring)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(alpha: f64, beta: f64) -> Link {
        let d = LinkDir {
            alpha_s: alpha,
            beta_bytes_per_s: beta,
        };
        Link { up: d, down: d }
    }

    #[test]
    fn chunks_amortise_alpha_and_respect_limits() {
        let cfg = TransferConfig::default();
        let l = link(20e-6, 12e9);
        // 32 * 20 us * 12 GB/s = 7.68 MB: the floor for a large share.
        let (c, r) = plan_chunks(1 << 30, Some(&l), 0.0, &cfg, 128 << 20, 256);
        assert_eq!(c as u64 * 4, DEFAULT_MAX_CHUNK_BYTES);
        assert_eq!(r, 3);
        let (c, _) = plan_chunks(4 << 20, Some(&l), 0.0, &cfg, 128 << 20, 256);
        assert!(c as u64 * 4 >= 7_680_000 - 1024, "{c}");
        // A small share is one chunk, ring 1.
        assert_eq!(
            plan_chunks(1000, Some(&l), 0.0, &cfg, 128 << 20, 256),
            (1000, 1)
        );
        assert_eq!(plan_chunks(0, None, 0.0, &cfg, 128 << 20, 256).1, 1);
        // The binding limit wins over everything.
        let (c, _) = plan_chunks(1 << 30, Some(&l), 0.0, &cfg, 4 << 20, 256);
        assert_eq!(c, 1 << 20);
    }

    #[test]
    fn overrides_win() {
        let cfg = TransferConfig {
            chunk_bytes: Some(4096),
            ring: Some(5),
            ..Default::default()
        };
        assert_eq!(
            plan_chunks(10_000, None, 0.0, &cfg, 128 << 20, 256),
            (1024, 5)
        );
        assert_eq!(
            plan_chunks(2000, None, 0.0, &cfg, 128 << 20, 256),
            (1024, 2)
        );
        // Rounded to whole workgroups, at least one.
        let cfg = TransferConfig {
            chunk_bytes: Some(100),
            ..cfg
        };
        assert_eq!(plan_chunks(10_000, None, 0.0, &cfg, 128 << 20, 256).0, 256);
    }
}
