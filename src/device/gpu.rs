//! The wgpu device (stub while it is written).
use super::{Device, DeviceInfo, ShareStats};
use crate::error::{Error, Result};
use crate::kernel::KernelInner;

pub(crate) struct GpuDevice {
    info: DeviceInfo,
}

/// Every usable GPU adapter as a device, or why there is none.
pub(crate) fn discover() -> std::result::Result<Vec<GpuDevice>, String> {
    Err("gpu backend not written yet".into())
}

impl Device for GpuDevice {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }
    fn run(&self, _k: &KernelInner, _i: &[&[u32]], _f: u64, _o: &mut [u32]) -> Result<ShareStats> {
        Err(Error::NoAdapter {
            reason: "stub".into(),
        })
    }
}
