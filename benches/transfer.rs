//! The transfer layer against a minimal hand-written wgpu upload and read-back of the
//! same bytes, in the same run, size by size (upload, download, round trip); and a
//! map of 64M f32 pipelined through the ring against the same work stage after stage.
//!
//! `cargo bench --bench transfer`; with `CI` set, sizes stop at 16 MiB and the map is
//! 4M elements. Skips (with a message) when there is no GPU.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hybrid::{Expr, Kernel, Placement, Runtime, TransferConfig};

/// The hand-written baseline: `Queue::write_buffer` up, a copy into a `MAP_READ`
/// buffer and a map down, on buffers made once.
struct Hand {
    device: wgpu::Device,
    queue: wgpu::Queue,
    storage: wgpu::Buffer,
    readback: wgpu::Buffer,
}

impl Hand {
    fn new(max_bytes: u64) -> Option<Hand> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: wgpu::Backends::PRIMARY,
            ..wgpu::InstanceDescriptor::new_without_display_handle_from_env()
        });
        let adapter = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY))
            .into_iter()
            .next()?;
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor {
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc)).ok()?;
        let size = max_bytes.min(limits.max_buffer_size);
        use wgpu::BufferUsages as U;
        let buffer = |usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let storage = buffer(U::STORAGE | U::COPY_DST | U::COPY_SRC);
        let readback = buffer(U::MAP_READ | U::COPY_DST);
        Some(Hand {
            device,
            queue,
            storage,
            readback,
        })
    }

    fn piece(&self) -> usize {
        self.storage.size() as usize
    }

    fn upload(&self, src: &[u8]) {
        for part in src.chunks(self.piece()) {
            self.queue.write_buffer(&self.storage, 0, part);
            self.queue.submit([]);
            let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
        }
    }

    fn download(&self, dst: &mut [u8]) {
        let piece = self.piece();
        for part in dst.chunks_mut(piece) {
            let n = part.len() as u64;
            let mut enc = self.device.create_command_encoder(&Default::default());
            enc.copy_buffer_to_buffer(&self.storage, 0, &self.readback, 0, n);
            self.queue.submit([enc.finish()]);
            self.readback.map_async(wgpu::MapMode::Read, ..n, |_| {});
            let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
            if let Ok(view) = self.readback.get_mapped_range(..n) {
                part.copy_from_slice(&view);
            }
            self.readback.unmap();
        }
    }

    fn round_trip(&self, src: &[u8], dst: &mut [u8]) {
        let piece = self.piece();
        for (s, d) in src.chunks(piece).zip(dst.chunks_mut(piece)) {
            self.upload(s);
            self.download(d);
        }
    }
}

fn gpu_runtime(cfg: TransferConfig) -> Option<(Runtime, usize)> {
    let rt = Runtime::builder().transfer(cfg).build().ok()?;
    let i = rt.devices().iter().position(|d| d.kind.is_gpu())?;
    Some((rt, i))
}

fn sizes() -> Vec<usize> {
    let top = if std::env::var_os("CI").is_some() {
        16 << 20
    } else {
        256 << 20
    };
    let mut v = vec![4 << 10];
    while *v.last().unwrap_or(&top) < top {
        let next = v.last().copied().unwrap_or(top) * 4;
        v.push(next.min(top));
    }
    v
}

fn transfers(c: &mut Criterion) {
    let sizes = sizes();
    let largest = sizes.last().copied().unwrap_or(0);
    let (Some((rt, dev)), Some(hand)) = (
        gpu_runtime(TransferConfig::default()),
        Hand::new(largest as u64),
    ) else {
        eprintln!("skipped: no gpu");
        return;
    };
    let src: Vec<u32> = (0..largest as u32 / 4).collect();
    let mut dst = vec![0u32; largest / 4];
    for (name, dir) in [("upload", 0), ("download", 1), ("round_trip", 2)] {
        let mut g = c.benchmark_group(name);
        for &bytes in &sizes {
            let n = bytes / 4;
            g.throughput(Throughput::Bytes(bytes as u64));
            if bytes >= 16 << 20 {
                g.sample_size(10);
            }
            // The two paths, registered back to back for each size.
            g.bench_function(BenchmarkId::new("hybrid", bytes), |b| {
                b.iter(|| {
                    let r = match dir {
                        0 => rt.transfer(dev, Some(&src[..n]), None),
                        1 => rt.transfer::<u32>(dev, None, Some(&mut dst[..n])),
                        _ => rt.transfer(dev, Some(&src[..n]), Some(&mut dst[..n])),
                    };
                    black_box(r.is_ok())
                })
            });
            g.bench_function(BenchmarkId::new("hand", bytes), |b| {
                let s: &[u8] = bytemuck::cast_slice(&src[..n]);
                let d: &mut [u8] = bytemuck::cast_slice_mut(&mut dst[..n]);
                b.iter(|| match dir {
                    0 => hand.upload(s),
                    1 => hand.download(d),
                    _ => hand.round_trip(s, d),
                })
            });
        }
        g.finish();
    }
}

fn pipelined_map(c: &mut Criterion) {
    let n: usize = if std::env::var_os("CI").is_some() {
        4 << 20
    } else {
        64 << 20
    };
    let Some((piped, _)) = gpu_runtime(TransferConfig::default()) else {
        eprintln!("skipped: no gpu");
        return;
    };
    let xs: Vec<f32> = (0..n).map(|i| i as f32 * 1e-3).collect();
    let k = Kernel::map(|x: Expr<f32>| (x * 2.0 + 1.0).sqrt());
    // The same chunks, one slot: each chunk is uploaded, computed and read back before
    // the next one starts.
    let warm = piped.map(&xs, &k, Placement::Gpu);
    let chunk = warm
        .ok()
        .and_then(|r| r.report.shares().first().map(|s| s.transfer().chunk_bytes));
    let Some((staged, _)) = gpu_runtime(TransferConfig {
        chunk_bytes: chunk,
        ring: Some(1),
        ..Default::default()
    }) else {
        return;
    };
    let mut g = c.benchmark_group("map_f32");
    g.throughput(Throughput::Bytes(n as u64 * 8));
    g.sample_size(10);
    for (name, rt) in [("pipelined", &piped), ("staged", &staged)] {
        g.bench_function(BenchmarkId::new(name, n), |b| {
            b.iter(|| black_box(rt.map(&xs, &k, Placement::Gpu).is_ok()))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = transfers, pipelined_map
}
criterion_main!(benches);
