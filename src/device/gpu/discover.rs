//! Finding the GPUs: which adapters wgpu offers, and opening one as a logical device
//! with the limits, features and device-lost callback the rest of `gpu/` relies on.

use std::sync::{Arc, Mutex};

use pollster::block_on;

use super::{lock, GpuDevice};
use crate::device::{DeviceInfo, DeviceKind};
use crate::error::Error;
use crate::kernel::wgsl::WORKGROUP_SIZE;

/// Every usable GPU adapter as a device, or why there is none.
///
/// `WGPU_BACKEND` (e.g. `vulkan`, `gl`) chooses the backends; otherwise only the
/// primary ones (Vulkan, Metal, DX12). GL is never chosen by itself: naga's GLSL
/// leaves what WGSL defines to GLSL ES, where `%` of a negative operand and several
/// conversions are undefined, and on Mesa's llvmpipe GL the random-kernel parity tests
/// get wrong integer answers (measured 2026-12-03: 3 of 7 parity tests). A machine
/// whose only GPU API is GL runs on its CPU unless the user asks for GL by name.
pub(crate) fn discover() -> std::result::Result<Vec<GpuDevice>, String> {
    let asked = wgpu::Backends::from_env();
    let adapters = adapters(asked.unwrap_or(wgpu::Backends::PRIMARY));
    if adapters.is_empty() {
        return Err(match asked {
            Some(_) => "no adapter found for WGPU_BACKEND".into(),
            None => "no Vulkan, Metal or DX12 adapter found (GL is used only when \
                     WGPU_BACKEND=gl asks for it)"
                .into(),
        });
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

/// Who the adapter is, as reports name it.
pub(super) fn describe(a: &wgpu::AdapterInfo, features: wgpu::Features) -> DeviceInfo {
    let kind = match a.device_type {
        wgpu::DeviceType::DiscreteGpu => DeviceKind::DiscreteGpu,
        wgpu::DeviceType::IntegratedGpu => DeviceKind::IntegratedGpu,
        wgpu::DeviceType::Cpu => DeviceKind::SoftwareGpu,
        _ => DeviceKind::OtherGpu,
    };
    let driver = format!("{} {}", a.driver, a.driver_info).trim().to_string();
    DeviceInfo {
        name: a.name.clone(),
        backend: a.backend.to_str().into(),
        kind,
        driver,
        types: {
            let mut t = DeviceInfo::BASE_TYPES.to_vec();
            if features.contains(wgpu::Features::SHADER_F64) {
                t.push(crate::ScalarType::F64);
            }
            if features.contains(wgpu::Features::SHADER_INT64) {
                t.extend([crate::ScalarType::I64, crate::ScalarType::U64]);
            }
            t
        },
    }
}

/// An adapter opened as a logical device, and what its limits allow.
pub(super) struct Opened {
    pub(super) device: wgpu::Device,
    pub(super) queue: wgpu::Queue,
    /// Largest chunk in bytes per buffer (binding and buffer limits, whole workgroups).
    pub(super) max_chunk_bytes: u64,
    /// Storage buffers one shader stage may bind.
    pub(super) max_storage_bindings: u32,
    pub(super) max_groups: u32,
    /// Nanoseconds per timestamp tick, when copies and passes can be timed.
    pub(super) timestamp_period: Option<f32>,
    /// Set by the device-lost callback.
    pub(super) lost: Arc<Mutex<Option<String>>>,
}

/// Opens `adapter` with its own limits (storage bindings and buffers as large as it
/// allows) and timestamps where it has them; errors outside a scope are swallowed
/// (every call uses scopes) and a lost device is recorded, never a panic.
pub(super) fn open(
    adapter: &wgpu::Adapter,
    info: &DeviceInfo,
) -> std::result::Result<Opened, String> {
    let limits = adapter.limits();
    // Timestamps inside command encoders time each chunk's copies and compute.
    let stamps = wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS;
    // f64 where the adapter has it: kernels that compute in it run here too
    let wide = wgpu::Features::SHADER_F64 | wgpu::Features::SHADER_INT64;
    let features = adapter.features() & (stamps | wide);
    let desc = wgpu::DeviceDescriptor {
        label: Some("hybrid"),
        required_limits: limits.clone(),
        required_features: features,
        ..Default::default()
    };
    let (device, queue) =
        block_on(adapter.request_device(&desc)).map_err(|e| format!("{}: {e}", info.name))?;
    // Errors outside a scope are recorded, never a panic; every call uses scopes.
    device.on_uncaptured_error(Arc::new(|_e: wgpu::Error| {}));
    let lost = Arc::new(Mutex::new(None));
    let slot = lost.clone();
    device.set_device_lost_callback(move |reason, message| {
        *lock(&slot) = Some(format!("{reason:?}: {message}"));
    });
    let per_buffer = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size);
    let max_groups = limits.max_compute_workgroups_per_dimension.max(1);
    let chunk_elements = chunk_elements(per_buffer, max_groups);
    if chunk_elements == 0 {
        let e = Error::BufferTooLarge {
            requested: WORKGROUP_SIZE as u64 * 4,
            max: per_buffer,
        };
        return Err(format!("{}: {e}", info.name));
    }
    let timestamp_period = features
        .contains(stamps)
        .then(|| queue.get_timestamp_period());
    Ok(Opened {
        device,
        queue,
        max_chunk_bytes: chunk_elements as u64 * 4,
        max_storage_bindings: limits.max_storage_buffers_per_shader_stage,
        max_groups,
        timestamp_period,
        lost,
    })
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

#[cfg(test)]
mod tests {
    use super::chunk_elements;

    #[test]
    fn grid_and_chunks() {
        assert_eq!(chunk_elements(128 << 20, 65_535), 32 << 20);
        assert_eq!(chunk_elements(1000, 65_535), 0);
        assert_eq!(chunk_elements(u64::MAX, 65_535), 1 << 31);
        assert_eq!(chunk_elements(u64::MAX, 2) % 256, 0);
    }
}
