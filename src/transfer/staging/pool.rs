//! The buffer pool: staging and device buffers kept between calls, keyed by usage
//! and size class, bounded in bytes, released when idle too long.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buffers idle longer than this are released at the next use of the pool.
const IDLE_RELEASE: Duration = Duration::from_secs(30);

/// Default bound on the bytes of idle buffers a pool keeps.
pub(crate) const DEFAULT_IDLE_BYTES: u64 = 1 << 30;

/// What a pooled buffer is for; each has its own usage flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Host to device staging, kept mapped for writing while idle.
    Upload,
    /// Device to host staging.
    Download,
    /// Storage a kernel reads (and a copy fills).
    Input,
    /// Storage a kernel writes (and a copy drains).
    Output,
    /// A kernel's uniform parameters.
    Params,
    /// Where timestamp queries are resolved.
    Resolve,
}

impl Kind {
    fn usage(self) -> wgpu::BufferUsages {
        use wgpu::BufferUsages as U;
        match self {
            Kind::Upload => U::MAP_WRITE | U::COPY_SRC,
            Kind::Download => U::MAP_READ | U::COPY_DST,
            Kind::Input => U::STORAGE | U::COPY_DST | U::COPY_SRC,
            Kind::Output => U::STORAGE | U::COPY_SRC,
            Kind::Params => U::UNIFORM | U::COPY_DST,
            Kind::Resolve => U::QUERY_RESOLVE | U::COPY_SRC,
        }
    }
}

/// The size class a request of `bytes` is served from: rounded up to a quarter of
/// its power of two (at most 25% waste), at least 256 bytes.
pub(crate) fn size_class(bytes: u64) -> u64 {
    let b = bytes.max(256);
    let top = 63 - b.leading_zeros();
    let step = 1u64 << top.saturating_sub(2);
    b.div_ceil(step) * step
}

struct Idle {
    kind: Kind,
    buffer: wgpu::Buffer,
    since: Instant,
}

/// Buffers kept between calls, keyed by kind and size class, bounded in bytes; idle
/// ones are released after [`IDLE_RELEASE`], and all of them under memory pressure.
pub(crate) struct Pool {
    idle: Mutex<Vec<Idle>>,
    max_idle_bytes: AtomicU64,
    allocations: AtomicU64,
}

impl Pool {
    pub(crate) fn new(max_idle_bytes: u64) -> Pool {
        Pool {
            idle: Mutex::new(Vec::new()),
            max_idle_bytes: AtomicU64::new(max_idle_bytes),
            allocations: AtomicU64::new(0),
        }
    }

    /// Buffers allocated since the pool was made.
    pub(crate) fn allocations(&self) -> u64 {
        self.allocations.load(Ordering::Relaxed)
    }

    /// Bytes held by idle buffers.
    #[cfg(test)]
    pub(crate) fn idle_bytes(&self) -> u64 {
        let idle = crate::sync::lock(&self.idle);
        idle.iter().map(|b| b.buffer.size()).sum()
    }

    pub(crate) fn set_max_idle_bytes(&self, bytes: u64) {
        self.max_idle_bytes.store(bytes, Ordering::Relaxed);
        self.trim(Instant::now());
    }

    /// Releases every idle buffer (memory pressure).
    pub(crate) fn clear(&self) {
        crate::sync::lock(&self.idle).clear();
    }

    /// A buffer of `kind` with at least `bytes`, reused when one is idle. An
    /// [`Kind::Upload`] buffer comes mapped for writing.
    pub(crate) fn take(&self, device: &wgpu::Device, kind: Kind, bytes: u64) -> wgpu::Buffer {
        let size = size_class(bytes);
        let now = Instant::now();
        {
            let mut idle = crate::sync::lock(&self.idle);
            idle.retain(|b| now.duration_since(b.since) < IDLE_RELEASE);
            if let Some(i) = idle
                .iter()
                .rposition(|b| b.kind == kind && b.buffer.size() == size)
            {
                return idle.swap_remove(i).buffer;
            }
        }
        self.allocations.fetch_add(1, Ordering::Relaxed);
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("hybrid pooled"),
            size,
            usage: kind.usage(),
            mapped_at_creation: kind == Kind::Upload,
        })
    }

    /// Returns a buffer for reuse (an upload buffer must be mapped for writing again).
    pub(crate) fn give(&self, kind: Kind, buffer: wgpu::Buffer) {
        let now = Instant::now();
        crate::sync::lock(&self.idle).push(Idle {
            kind,
            buffer,
            since: now,
        });
        self.trim(now);
    }

    /// Drops buffers idle too long, then the oldest ones until under the byte bound.
    fn trim(&self, now: Instant) {
        let max = self.max_idle_bytes.load(Ordering::Relaxed);
        let mut idle = crate::sync::lock(&self.idle);
        idle.retain(|b| now.duration_since(b.since) < IDLE_RELEASE);
        let mut total: u64 = idle.iter().map(|b| b.buffer.size()).sum();
        while total > max && !idle.is_empty() {
            // Oldest first: the vector is in return order.
            let b = idle.remove(0);
            total -= b.buffer.size();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_waste_at_most_a_quarter() {
        assert_eq!(size_class(0), 256);
        assert_eq!(size_class(256), 256);
        assert_eq!(size_class(257), 320);
        assert_eq!(size_class(4096), 4096);
        assert_eq!(size_class(4097), 5120);
        assert_eq!(size_class(128 << 20), 128 << 20);
        for b in [1u64, 1000, 4095, 65_537, 3 << 20, (128 << 20) + 4] {
            let c = size_class(b);
            assert!(
                c >= b && (c as f64) <= (b.max(256) as f64) * 1.25 + 1.0,
                "{b}->{c}"
            );
            assert_eq!(size_class(c), c, "a class is its own class");
        }
    }
}
