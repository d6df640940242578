//! The wgpu device: one per adapter, with a pipeline cache and a chunked dispatch.
//!
//! A call is cut into chunks that fit one storage binding; each chunk is uploaded,
//! computed and read back in three waited stages, each timed and inside error scopes,
//! so every driver complaint becomes an [`Error`] for this call and nothing panics.
//! (Staging pools and overlapping the stages belong to `src/transfer/`, later.)

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use pollster::block_on;

use super::{Device, DeviceInfo, DeviceKind, ShareStats};
use crate::error::{Error, Result};
use crate::kernel::wgsl::{Shader, ENTRY_POINT, WORKGROUP_SIZE};
use crate::kernel::KernelInner;

/// Compiled kernels kept per device; the least recently used goes beyond this.
const CACHE_CAPACITY: usize = 64;

/// Largest chunk in bytes per buffer, whatever the adapter allows: bounds the memory
/// one call pins (inputs, output and read-back copy of one chunk).
const MAX_CHUNK_BYTES: u64 = 256 << 20;

/// Longest wait for a buffer mapping once the queue is idle.
const MAP_TIMEOUT_S: u64 = 60;

/// Bytes of the uniform parameter block: base, len, row, zero.
const PARAMS_BYTES: u64 = 16;

/// A GPU, as the scheduler sees it.
pub(crate) struct GpuDevice {
    info: DeviceInfo,
    device: wgpu::Device,
    queue: wgpu::Queue,
    /// Elements per chunk: a multiple of the workgroup size.
    chunk_elements: usize,
    max_groups: u32,
    cache: Mutex<PipelineCache>,
    /// Set by the device-lost callback.
    lost: Arc<Mutex<Option<String>>>,
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<GpuDevice>();
};

/// A compiled kernel and the layout its bind groups follow.
pub(crate) struct Pipeline {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    inputs: usize,
}

#[derive(Default)]
struct PipelineCache {
    /// Shader hash -> (pipeline, last use).
    map: HashMap<u64, (Arc<Pipeline>, u64)>,
    tick: u64,
}

impl PipelineCache {
    fn get(&mut self, key: u64) -> Option<Arc<Pipeline>> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(&key).map(|(p, used)| {
            *used = tick;
            p.clone()
        })
    }

    fn insert(&mut self, key: u64, p: Arc<Pipeline>) {
        self.tick += 1;
        self.map.insert(key, (p, self.tick));
        while self.map.len() > CACHE_CAPACITY {
            let oldest = self
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k);
            match oldest {
                Some(k) => self.map.remove(&k),
                None => break,
            };
        }
    }
}

/// Every usable GPU adapter as a device, or why there is none.
///
/// `WGPU_BACKEND` (e.g. `vulkan`, `gl`) chooses the backends; otherwise the primary
/// ones (Vulkan, Metal, DX12), and GL only when they find nothing, so one GPU seen
/// through two APIs is not counted twice.
pub(crate) fn discover() -> std::result::Result<Vec<GpuDevice>, String> {
    let adapters = match wgpu::Backends::from_env() {
        Some(backends) => adapters(backends),
        None => {
            let primary = adapters(wgpu::Backends::PRIMARY);
            if primary.is_empty() {
                adapters(wgpu::Backends::GL)
            } else {
                primary
            }
        }
    };
    if adapters.is_empty() {
        return Err("no adapter found".into());
    }
    let mut devices = Vec::new();
    let mut reasons = Vec::new();
    for adapter in adapters {
        match GpuDevice::new(&adapter) {
            Ok(d) => devices.push(d),
            Err(e) => reasons.push(e),
        }
    }
    if devices.is_empty() {
        return Err(reasons.join("; "));
    }
    Ok(devices)
}

fn adapters(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle_from_env()
    });
    block_on(instance.enumerate_adapters(backends))
}

impl GpuDevice {
    fn new(adapter: &wgpu::Adapter) -> std::result::Result<GpuDevice, String> {
        let a = adapter.get_info();
        let kind = match a.device_type {
            wgpu::DeviceType::DiscreteGpu => DeviceKind::DiscreteGpu,
            wgpu::DeviceType::IntegratedGpu => DeviceKind::IntegratedGpu,
            wgpu::DeviceType::Cpu => DeviceKind::SoftwareGpu,
            _ => DeviceKind::OtherGpu,
        };
        let driver = format!("{} {}", a.driver, a.driver_info).trim().to_string();
        let info = DeviceInfo {
            name: a.name.clone(),
            backend: a.backend.to_str().into(),
            kind,
            driver,
        };
        // The adapter's own limits: storage bindings and buffers as large as it allows.
        let limits = adapter.limits();
        let desc = wgpu::DeviceDescriptor {
            label: Some("hybrid"),
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) =
            block_on(adapter.request_device(&desc)).map_err(|e| format!("{}: {e}", info.name))?;
        // Errors outside a scope are recorded, never a panic; every call uses scopes.
        device.on_uncaptured_error(Arc::new(|_e: wgpu::Error| {}));
        let lost = Arc::new(Mutex::new(None));
        let slot = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            *slot.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(format!("{reason:?}: {message}"));
        });
        let per_buffer = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size)
            .min(MAX_CHUNK_BYTES);
        let max_groups = limits.max_compute_workgroups_per_dimension.max(1);
        let chunk_elements = chunk_elements(per_buffer, max_groups);
        if chunk_elements == 0 {
            let e = Error::BufferTooLarge {
                requested: WORKGROUP_SIZE as u64 * 4,
                max: per_buffer,
            };
            return Err(format!("{}: {e}", info.name));
        }
        Ok(GpuDevice {
            info,
            device,
            queue,
            chunk_elements,
            max_groups,
            cache: Mutex::default(),
            lost,
        })
    }

    fn failed(&self, stage: &'static str, reason: impl ToString) -> Error {
        match self.lost_error() {
            Some(e) => e,
            None => Error::DeviceFailed {
                device: self.info.name.clone(),
                stage,
                reason: reason.to_string(),
            },
        }
    }

    fn lost_error(&self) -> Option<Error> {
        let lost = self.lost.lock().unwrap_or_else(|e| e.into_inner());
        lost.as_ref().map(|reason| Error::DeviceLost {
            device: self.info.name.clone(),
            reason: reason.clone(),
        })
    }

    /// Runs `f` inside validation and out-of-memory error scopes; an error either
    /// raises becomes a `DeviceFailed` for `stage`.
    fn scoped<T>(&self, stage: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = block_on(validation.pop());
        let o = block_on(oom.pop());
        if let Some(e) = v.or(o) {
            return Err(self.failed(stage, e));
        }
        out
    }

    /// Blocks until the queue is idle.
    fn wait(&self, stage: &'static str) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| self.failed(stage, e))?;
        match self.lost_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The compiled pipeline for `shader`, from the cache or compiled now.
    pub(crate) fn pipeline(&self, shader: &Shader) -> Result<Arc<Pipeline>> {
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(shader.hash);
        if let Some(p) = cached {
            return Ok(p);
        }
        let p = Arc::new(self.compile(shader)?);
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(shader.hash, p.clone());
        Ok(p)
    }

    fn rejected(&self, shader: &Shader, message: String, line: u32) -> Error {
        let source_line = match line {
            0 => String::new(),
            l => shader
                .source
                .lines()
                .nth(l as usize - 1)
                .unwrap_or("")
                .trim()
                .to_string(),
        };
        Error::ShaderRejected {
            device: self.info.name.clone(),
            message,
            line,
            source_line,
        }
    }

    fn compile(&self, shader: &Shader) -> Result<Pipeline> {
        if let Some(e) = self.lost_error() {
            return Err(e);
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("hybrid kernel"),
                source: wgpu::ShaderSource::Wgsl(Cow::Borrowed(&shader.source)),
            });
        let info = block_on(module.get_compilation_info());
        let err = block_on(scope.pop());
        let first = info
            .messages
            .iter()
            .find(|m| m.message_type == wgpu::CompilationMessageType::Error);
        if let Some(m) = first {
            let line = m.location.map_or(0, |l| l.line_number);
            return Err(self.rejected(shader, m.message.clone(), line));
        }
        if let Some(e) = err {
            return Err(self.rejected(shader, e.to_string(), 0));
        }

        let inputs = shader.inputs as usize;
        let storage = |read_only| wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        };
        let mut entries: Vec<wgpu::BindGroupLayoutEntry> = (0..=inputs)
            .map(|k| wgpu::BindGroupLayoutEntry {
                binding: k as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: storage(k < inputs),
                count: None,
            })
            .collect();
        entries.push(wgpu::BindGroupLayoutEntry {
            binding: inputs as u32 + 1,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: wgpu::BufferSize::new(PARAMS_BYTES),
            },
            count: None,
        });
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let layout = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("hybrid kernel"),
                entries: &entries,
            });
        let pipeline_layout = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("hybrid kernel"),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("hybrid kernel"),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(ENTRY_POINT),
                compilation_options: Default::default(),
                cache: None,
            });
        if let Some(e) = block_on(scope.pop()) {
            if let Some(lost) = self.lost_error() {
                return Err(lost);
            }
            return Err(self.rejected(shader, e.to_string(), 0));
        }
        Ok(Pipeline {
            pipeline,
            layout,
            inputs,
        })
    }

    /// Computes `out.len()` elements with `p`, chunk by chunk.
    pub(crate) fn dispatch(
        &self,
        p: &Pipeline,
        inputs: &[&[u32]],
        first_index: u64,
        out: &mut [u32],
    ) -> Result<ShareStats> {
        let n = out.len();
        let mut stats = ShareStats::default();
        if n == 0 {
            return Ok(stats);
        }
        if let Some(e) = self.lost_error() {
            return Err(e);
        }
        if inputs.len() != p.inputs || inputs.iter().any(|x| x.len() != n) {
            return Err(Error::WrongArity {
                expected: p.inputs,
                given: inputs.len(),
            });
        }
        let cap = self.chunk_elements.min(n);
        let bytes = cap as u64 * 4;
        let buffers = self.scoped("allocate", || {
            let buffer = |label, usage| {
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size: bytes,
                    usage,
                    mapped_at_creation: false,
                })
            };
            use wgpu::BufferUsages as U;
            let ins: Vec<wgpu::Buffer> = (0..inputs.len())
                .map(|_| buffer("hybrid input", U::STORAGE | U::COPY_DST))
                .collect();
            let output = buffer("hybrid output", U::STORAGE | U::COPY_SRC);
            let readback = buffer("hybrid readback", U::MAP_READ | U::COPY_DST);
            let params = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("hybrid params"),
                size: PARAMS_BYTES,
                usage: U::UNIFORM | U::COPY_DST,
                mapped_at_creation: false,
            });
            let mut entries: Vec<wgpu::BindGroupEntry> = ins
                .iter()
                .enumerate()
                .map(|(k, b)| wgpu::BindGroupEntry {
                    binding: k as u32,
                    resource: b.as_entire_binding(),
                })
                .collect();
            let k = ins.len() as u32;
            entries.push(wgpu::BindGroupEntry {
                binding: k,
                resource: output.as_entire_binding(),
            });
            entries.push(wgpu::BindGroupEntry {
                binding: k + 1,
                resource: params.as_entire_binding(),
            });
            let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("hybrid kernel"),
                layout: &p.layout,
                entries: &entries,
            });
            Ok((ins, output, readback, params, group))
        })?;
        let (ins, output, readback, params, group) = buffers;

        let mut start = 0;
        while start < n {
            let end = (start + cap).min(n);
            let len = end - start;
            let (gx, gy, row) = grid(len, self.max_groups);

            let t = Instant::now();
            self.scoped("upload", || {
                for (buf, x) in ins.iter().zip(inputs) {
                    self.queue
                        .write_buffer(buf, 0, bytemuck::cast_slice(&x[start..end]));
                }
                // The global index wraps at 2^32, as `index()` promises.
                let base = first_index.wrapping_add(start as u64) as u32;
                let block: [u32; 4] = [base, len as u32, row, 0];
                self.queue
                    .write_buffer(&params, 0, bytemuck::cast_slice(&block));
                self.queue.submit([]);
                self.wait("upload")
            })?;
            stats.upload_s += t.elapsed().as_secs_f64();
            stats.bytes_to_device += (inputs.len() * len * 4) as u64;

            let t = Instant::now();
            self.scoped("compute", || {
                let mut enc = self
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("hybrid compute"),
                    });
                {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("hybrid kernel"),
                        timestamp_writes: None,
                    });
                    pass.set_pipeline(&p.pipeline);
                    pass.set_bind_group(0, &group, &[]);
                    pass.dispatch_workgroups(gx, gy, 1);
                }
                self.queue.submit([enc.finish()]);
                self.wait("compute")
            })?;
            stats.compute_s += t.elapsed().as_secs_f64();

            let t = Instant::now();
            self.scoped("download", || {
                self.download(&output, &readback, &mut out[start..end])
            })?;
            stats.download_s += t.elapsed().as_secs_f64();
            stats.bytes_from_device += (len * 4) as u64;
            stats.chunks += 1;
            start = end;
        }
        Ok(stats)
    }

    /// Copies the first `out.len()` elements of `output` to the host, through `readback`.
    fn download(
        &self,
        output: &wgpu::Buffer,
        readback: &wgpu::Buffer,
        out: &mut [u32],
    ) -> Result<()> {
        let size = out.len() as u64 * 4;
        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("hybrid download"),
            });
        enc.copy_buffer_to_buffer(output, 0, readback, 0, size);
        self.queue.submit([enc.finish()]);
        let slice = readback.slice(..size);
        let (tx, rx) = mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait("download")?;
        // Another thread's poll may have taken our callback and not yet run it: wait
        // for it, polling meanwhile. It is dropped unrun (disconnect) if the map fails.
        let started = Instant::now();
        loop {
            match rx.recv_timeout(std::time::Duration::from_millis(5)) {
                Ok(Ok(())) => break,
                Ok(Err(e)) => return Err(self.failed("map", e)),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(self.failed("map", "the map callback was dropped"))
                }
                Err(mpsc::RecvTimeoutError::Timeout)
                    if started.elapsed().as_secs() >= MAP_TIMEOUT_S =>
                {
                    return Err(
                        self.failed("map", format!("no map callback after {MAP_TIMEOUT_S} s"))
                    )
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.device
                        .poll(wgpu::PollType::Poll)
                        .map_err(|e| self.failed("map", e))?;
                }
            }
        }
        {
            let view = slice
                .get_mapped_range()
                .map_err(|e| self.failed("map", e))?;
            out.copy_from_slice(bytemuck::cast_slice(&view));
        }
        readback.unmap();
        Ok(())
    }
}

/// Elements per chunk for buffers of at most `per_buffer` bytes: a multiple of the
/// workgroup size that a 2D grid of `max_groups`² workgroups covers.
fn chunk_elements(per_buffer: u64, max_groups: u32) -> usize {
    let wg = WORKGROUP_SIZE as u64;
    let by_grid = max_groups as u64 * max_groups as u64 * wg;
    let by_index = 1u64 << 31;
    let n = (per_buffer / 4).min(by_grid).min(by_index);
    (n / wg * wg) as usize
}

/// Workgroups in x and y, and threads per row, for `len` elements.
fn grid(len: usize, max_groups: u32) -> (u32, u32, u32) {
    let groups = (len as u64).div_ceil(WORKGROUP_SIZE as u64);
    let gx = groups.min(max_groups as u64);
    let gy = groups.div_ceil(gx.max(1));
    (gx as u32, gy as u32, (gx * WORKGROUP_SIZE as u64) as u32)
}

impl Device for GpuDevice {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn run(
        &self,
        kernel: &KernelInner,
        inputs: &[&[u32]],
        first_index: u64,
        out: &mut [u32],
    ) -> Result<ShareStats> {
        if out.is_empty() {
            return Ok(ShareStats::default());
        }
        let shader = kernel.shader()?;
        let pipeline = self.pipeline(&shader)?;
        self.dispatch(&pipeline, inputs, first_index, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{index, Expr, Kernel};

    /// The first GPU, or `None` (after saying why) when the test must skip.
    fn device() -> Option<GpuDevice> {
        let var = |k: &str| {
            std::env::var(k)
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        };
        if var("HYBRID_BACKEND") == "cpu" {
            eprintln!("skipped: HYBRID_BACKEND=cpu");
            return None;
        }
        match discover() {
            Ok(mut d) if !d.is_empty() => Some(d.swap_remove(0)),
            Ok(_) | Err(_) if var("HYBRID_REQUIRE_GPU") == "1" => {
                panic!("HYBRID_REQUIRE_GPU=1 but no gpu: {:?}", discover().err())
            }
            other => {
                eprintln!("skipped: no gpu: {:?}", other.err());
                None
            }
        }
    }

    #[test]
    fn grid_and_chunks() {
        assert_eq!(grid(1, 65_535), (1, 1, 256));
        assert_eq!(grid(256, 65_535), (1, 1, 256));
        assert_eq!(grid(257, 65_535), (2, 1, 512));
        assert_eq!(grid(65_535 * 256 + 1, 65_535), (65_535, 2, 65_535 * 256));
        assert_eq!(chunk_elements(128 << 20, 65_535), 32 << 20);
        assert_eq!(chunk_elements(1000, 65_535), 0);
        assert_eq!(chunk_elements(u64::MAX, 65_535), 1 << 31);
        assert_eq!(chunk_elements(u64::MAX, 2) % 256, 0);
    }

    #[test]
    fn rejected_shader_names_message_and_line() {
        let Some(d) = device() else { return };
        let src = "@group(0) @binding(0) var<storage, read_write> out: array<u32>;\n\
                   @compute @workgroup_size(256)\n\
                   fn main(@builtin(global_invocation_id) gid: vec3<u32>) {\n\
                   \x20   out[gid.x] = undefined_thing + 1u;\n\
                   }\n";
        let shader = Shader::from_source(src.into(), 0);
        match d.pipeline(&shader) {
            Err(Error::ShaderRejected {
                message,
                line,
                source_line,
                ..
            }) => {
                assert!(message.contains("undefined_thing"), "{message}");
                assert_eq!(line, 4, "{message}");
                assert!(source_line.contains("undefined_thing"), "{source_line}");
            }
            Err(e) => panic!("expected ShaderRejected, got {e}"),
            Ok(_) => panic!("an invalid shader was accepted"),
        }
        // The device still works afterwards.
        let k = Kernel::map(|x: Expr<u32>| x + 1u32);
        let mut out = [0u32; 3];
        let stats = d.run(k.inner(), &[&[1, 2, 3]], 0, &mut out);
        assert!(stats.is_ok(), "{stats:?}");
        assert_eq!(out, [2, 3, 4]);
    }

    #[test]
    fn many_chunks_equal_one() {
        let Some(mut d) = device() else { return };
        d.chunk_elements = 512;
        let k = Kernel::map2(|a: Expr<u32>, b: Expr<u32>| (a * 7u32) ^ b ^ index());
        let n = 512 * 5 + 3;
        let a: Vec<u32> = (0..n as u32).map(|i| i.wrapping_mul(0x9e37_79b9)).collect();
        let b: Vec<u32> = (0..n as u32).rev().collect();
        // Start near the top of the u32 range: the global index wraps.
        let first = u32::MAX as u64 - 1000;
        let mut out = vec![0u32; n];
        let stats = d
            .run(k.inner(), &[&a, &b], first, &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stats.chunks, 6);
        assert_eq!(stats.bytes_to_device, 8 * n as u64);
        assert_eq!(stats.bytes_from_device, 4 * n as u64);
        for i in 0..n {
            let idx = (first + i as u64) as u32;
            assert_eq!(out[i], a[i].wrapping_mul(7) ^ b[i] ^ idx, "element {i}");
        }
    }

    #[test]
    fn pipeline_cache_is_bounded_and_reuses() {
        let Some(d) = device() else { return };
        let k = Kernel::map(|x: Expr<f32>| x * 2.0);
        let s = k.inner().shader().unwrap_or_else(|e| panic!("{e}"));
        let p1 = d.pipeline(&s).unwrap_or_else(|e| panic!("{e}"));
        let p2 = d.pipeline(&s).unwrap_or_else(|e| panic!("{e}"));
        assert!(Arc::ptr_eq(&p1, &p2), "a kernel compiles once per device");
        for c in 0..(CACHE_CAPACITY as u32 + 5) {
            let k = Kernel::map(move |x: Expr<u32>| x + c);
            let s = k.inner().shader().unwrap_or_else(|e| panic!("{e}"));
            assert!(d.pipeline(&s).is_ok());
        }
        let cache = d.cache.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(cache.map.len(), CACHE_CAPACITY);
        assert!(
            !cache.map.contains_key(&s.hash),
            "the least recently used went first"
        );
    }
}
