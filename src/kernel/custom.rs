//! Hand-written kernels: a WGSL function body for the GPU and a Rust function for the
//! CPU, for what the expression language cannot say.
//!
//! The WGSL body becomes `fn hy_user(x: I, index: u32) -> O { <body> }` (for two
//! inputs `a: I, b: I`); `index` is the element's global index, as in
//! [`index`](super::index). The generated map and reduction shaders call it per
//! element, so a hand-written kernel maps, reduces, splits and is scheduled like any
//! other (its id is the hash of its shader).
//!
//! The two halves are two programs that must agree, so the library checks that they
//! do: on a kernel's first call on each GPU (and on every call in debug builds) it runs
//! both on a sample of the call's input (up to [`SAMPLE`] elements at the start, the
//! middle and the end, with their real indices) and returns
//! [`Error::CustomMismatch`](crate::Error::CustomMismatch), naming the first element
//! where they differ beyond the kernel's tolerance, before any share runs. A body the
//! driver rejects is [`Error::ShaderRejected`](crate::Error::ShaderRejected) with its
//! message and line, found by the same check.
//!
//! Tolerance: integer outputs must be equal; `f32` outputs may differ by a relative
//! error of [`DEFAULT_TOLERANCE`] (about 84 ulps, room for a GPU's less exact `exp`,
//! `sin`, ...) unless [`Kernel::tolerance`](super::Kernel::tolerance) says otherwise;
//! NaN matches NaN, an infinity only itself.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use super::scalar::ScalarType;

/// Elements per sample window of the agreement check.
pub(crate) const SAMPLE: usize = 256;
/// Relative tolerance of an `f32` hand-written kernel unless set.
pub const DEFAULT_TOLERANCE: f32 = 1e-5;

/// The CPU half, over bit patterns: `(inputs, global index of element 0, out)`.
pub(crate) type CpuFn = dyn Fn(&[&[u32]], u64, &mut [u32]) + Send + Sync;

/// A hand-written kernel's two halves.
pub(crate) struct Custom {
    /// The WGSL function body.
    pub(crate) body: String,
    pub(crate) cpu: Box<CpuFn>,
    tolerance: AtomicU32,
    /// Devices on which the two halves were found to agree.
    verified: Mutex<HashSet<String>>,
}

impl Custom {
    pub(crate) fn new(body: String, cpu: Box<CpuFn>) -> Custom {
        Custom {
            body,
            cpu,
            tolerance: AtomicU32::new(DEFAULT_TOLERANCE.to_bits()),
            verified: Mutex::new(HashSet::new()),
        }
    }

    pub(crate) fn tolerance(&self) -> f32 {
        f32::from_bits(self.tolerance.load(Ordering::Relaxed))
    }

    pub(crate) fn set_tolerance(&self, rel: f32) {
        self.tolerance.store(rel.to_bits(), Ordering::Relaxed);
    }

    pub(crate) fn is_verified(&self, device: &str) -> bool {
        self.lock().contains(device)
    }

    pub(crate) fn mark_verified(&self, device: &str) {
        self.lock().insert(device.to_string());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        crate::sync::lock(&self.verified)
    }
}

/// The sample windows of a call of `n` elements: the start, the middle and the end,
/// each at most [`SAMPLE`] long, not overlapping.
pub(crate) fn windows(n: usize) -> Vec<std::ops::Range<usize>> {
    if n == 0 {
        return Vec::new();
    }
    if n <= 3 * SAMPLE {
        return std::iter::once(0..n).collect();
    }
    let mid = n / 2 - SAMPLE / 2;
    vec![0..SAMPLE, mid..mid + SAMPLE, n - SAMPLE..n]
}

/// Whether two results of type `ty` agree within the relative tolerance `rel`.
pub(crate) fn agree(ty: ScalarType, a: u32, b: u32, rel: f32) -> bool {
    if a == b {
        return true;
    }
    if ty != ScalarType::F32 {
        return false;
    }
    let (x, y) = (f32::from_bits(a) as f64, f32::from_bits(b) as f64);
    if x.is_nan() || y.is_nan() {
        return x.is_nan() && y.is_nan();
    }
    if x.is_infinite() || y.is_infinite() {
        return x == y;
    }
    (x - y).abs() <= rel as f64 * x.abs().max(y.abs())
}

/// A value of type `ty` for an error message.
pub(crate) fn show(ty: ScalarType, bits: u32) -> String {
    match ty {
        ScalarType::F32 => format!("{:?}", f32::from_bits(bits)),
        // results are 32-bit: an f64 value never reaches a check
        ScalarType::F64 | ScalarType::I64 | ScalarType::U64 => format!("{bits:#x}"),
        ScalarType::I32 => (bits as i32).to_string(),
        ScalarType::U32 => bits.to_string(),
        ScalarType::Bool => (bits != 0).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_start_middle_end() {
        assert!(windows(0).is_empty());
        assert_eq!(windows(10), vec![0..10]);
        assert_eq!(windows(768), vec![0..768]);
        let w = windows(10_000);
        assert_eq!(w, vec![0..256, 4872..5128, 9744..10_000]);
    }

    #[test]
    fn agreement_is_relative_for_floats_exact_for_integers() {
        let f = |x: f32| x.to_bits();
        assert!(agree(ScalarType::F32, f(1.0), f(1.0 + 5e-6), 1e-5));
        assert!(!agree(ScalarType::F32, f(1.0), f(1.0 + 5e-5), 1e-5));
        assert!(agree(ScalarType::F32, f(f32::NAN), f(-f32::NAN), 1e-5));
        assert!(!agree(ScalarType::F32, f(f32::NAN), f(1.0), 1e-5));
        assert!(!agree(ScalarType::F32, f(f32::INFINITY), f(f32::MAX), 1.0));
        assert!(agree(ScalarType::F32, f(0.0), f(-0.0), 0.0));
        assert!(!agree(ScalarType::I32, 5, 6, 1.0));
        assert_eq!(show(ScalarType::I32, (-3i32) as u32), "-3");
    }
}
