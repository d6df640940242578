//! The [`Array`] handle: a length and shared parts, cheap to clone; gathering to the
//! host, releasing device memory, and the start of a lazy chain.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use super::coherence::Coherence;
use super::part::{ArrayRef, Part};
use crate::device::ShareStats;
use crate::error::Result;
use crate::kernel::Value;
use crate::sync::lock;

/// A handle to elements that stay where they were computed: see the
/// [module docs](crate::array) for the model.
///
/// Made from host data with [`Array::from_vec`] (or `From<Vec<T>>`); operations on it
/// ([`Runtime::map`](crate::Runtime::map), [`Runtime::map2`](crate::Runtime::map2),
/// [`Runtime::reduce`](crate::Runtime::reduce), [`Runtime::reduce2`](crate::Runtime::reduce2)
/// take arrays as well as host data; [`Array::lazy`] chains) leave their outputs
/// where they ran; [`Array::to_vec`] gathers the elements on the host in order,
/// moving only what the host does not hold. Cloning is cheap (the parts are shared).
pub struct Array<T> {
    pub(crate) len: usize,
    pub(crate) parts: Vec<Arc<Mutex<Part>>>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            len: self.len,
            parts: self.parts.clone(),
            _t: PhantomData,
        }
    }
}

/// Where one part of an array is, for inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    /// The part's elements.
    pub range: Range<usize>,
    /// The device holding a copy, when one does (its name).
    pub device: Option<String>,
    /// Which copies are valid.
    pub state: Coherence,
}

impl<T> Array<T> {
    pub(crate) fn from_parts(len: usize, parts: Vec<Part>) -> Array<T> {
        let parts = parts
            .into_iter()
            .filter(|p| !p.range.is_empty())
            .map(|p| Arc::new(Mutex::new(p)))
            .collect();
        Array {
            len,
            parts,
            _t: PhantomData,
        }
    }

    /// The same parts seen as elements of another type (of the same width: a chain's
    /// stages change the type, not the data's layout; a part knows its words per
    /// element).
    pub(crate) fn retype<U>(self) -> Array<U> {
        Array {
            len: self.len,
            parts: self.parts,
            _t: PhantomData,
        }
    }

    pub(crate) fn view(&self) -> ArrayRef<'_> {
        ArrayRef {
            len: self.len,
            words: self.parts.first().map_or(1, |p| lock(p).words),
            parts: &self.parts,
        }
    }
}

impl<T: Value> Array<T> {
    /// An array of `data`, on the host (a 64-bit element as two words, low first).
    pub fn from_vec(data: Vec<T>) -> Array<T> {
        let len = data.len();
        // a 32-bit type: the same allocation, seen as bit patterns
        let bits: Vec<u32> = bytemuck::allocation::try_cast_vec(data)
            .unwrap_or_else(|(_, v)| bytemuck::cast_slice(&v).to_vec());
        Array::from_parts(len, vec![Part::on_host(0..len, bits)])
    }

    /// An array of a copy of `data`, on the host.
    pub fn from_slice(data: &[T]) -> Array<T> {
        let len = data.len();
        let bits: Vec<u32> = bytemuck::cast_slice(data).to_vec();
        Array::from_parts(len, vec![Part::on_host(0..len, bits)])
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where each part is, in order.
    pub fn parts(&self) -> Vec<PartInfo> {
        self.parts
            .iter()
            .map(|p| {
                let p = lock(p);
                PartInfo {
                    range: p.range.clone(),
                    device: p.copies.device().map(|d| d.owner_name().to_string()),
                    state: p.copies.coherence(),
                }
            })
            .collect()
    }

    /// Bytes held only in device memory (what [`to_vec`](Self::to_vec) would move).
    pub fn bytes_only_on_devices(&self) -> u64 {
        self.parts
            .iter()
            .map(|p| lock(p))
            .filter(|p| p.copies.host().is_none())
            .map(|p| p.bytes())
            .sum()
    }

    /// The elements, in order, on the host: parts held only by a device are read back
    /// (and their host copies kept, so a second call moves nothing).
    pub fn to_vec(&self) -> Result<Vec<T>> {
        Ok(self.to_vec_counted()?.0)
    }

    /// [`to_vec`](Self::to_vec), and the bytes it read back from devices.
    pub fn to_vec_counted(&self) -> Result<(Vec<T>, u64)> {
        let mut out = Vec::with_capacity(self.len);
        let mut stats = ShareStats::default();
        for p in &self.parts {
            let h = lock(p).host(&mut stats)?;
            match T::TYPE.is_wide() {
                true => out.extend(
                    h.chunks_exact(2)
                        .map(|w| T::from_bits64(w[0] as u64 | (w[1] as u64) << 32)),
                ),
                false => out.extend(h.iter().map(|&b| T::from_bits64(b as u64))),
            }
        }
        Ok((out, stats.bytes_from_device))
    }

    /// Frees the device memory this array's parts hold (for parts no other clone
    /// shares), reading back first what only a device holds; returns the bytes read
    /// back. The elements stay available on the host.
    pub fn release_devices(&self) -> Result<u64> {
        let mut stats = ShareStats::default();
        for p in &self.parts {
            lock(p).release_device(&mut stats)?;
        }
        Ok(stats.bytes_from_device)
    }
}

impl<T: Value> From<Vec<T>> for Array<T> {
    fn from(v: Vec<T>) -> Self {
        Array::from_vec(v)
    }
}

impl<T> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array")
            .field("len", &self.len)
            .field("parts", &self.parts.len())
            .finish()
    }
}
