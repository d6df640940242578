//! Arrays that stay where they were computed, and lazy chains that fuse.
//!
//! An [`Array`] is a handle to `len` elements cut into parts; each part has up to two
//! copies, one in host memory and one in a GPU's memory, and a coherence record per
//! copy in the style of StarPU's per-handle MSI states ([`State`]):
//!
//! - `Modified`: the only valid copy (the other location has none, or a stale one);
//! - `Shared`: valid, and the other location holds a valid copy too;
//! - `Invalid`: no valid copy here.
//!
//! Design choices:
//!
//! - **Arrays are values.** Every operation returns a new array and never writes its
//!   inputs, so a part's copies are only ever added (a download makes the host copy
//!   valid, an upload the device copy): `Modified → Shared` and `Invalid → Shared`.
//!   That is what makes moving nothing safe: a part on a GPU is never stale.
//! - **Parts follow the work.** A map's output has one part per range a device
//!   computed, held where it was computed (a GPU's part stays in GPU memory; a GPU
//!   range larger than one storage binding is cut into binding-sized parts). The next
//!   operation over the same partition on the same devices moves nothing.
//! - **Moving is explicit in the report.** When a range must run where its data is
//!   not, the part is downloaded (the host copy is kept: later use on the host is
//!   free) and uploaded; every byte is counted in that share's `bytes_to_device` /
//!   `bytes_from_device`.
//! - **Auto and residency.** With every input valid on the host, `Auto` plans as for
//!   slices. With data only on a GPU, it compares keeping the partition (each part
//!   computed where it lives: compute only) with moving it (downloading what is only
//!   on a GPU, then the plan it would make for host data), from the throughput
//!   models, and moves only when the prediction is at least 20% better; with no model
//!   it keeps. The report's decision says which and why.
//! - **Fusion.** [`Array::lazy`] starts a chain of one-input kernels that runs as one
//!   kernel (one shader, one CPU pass; intermediates are never written) when it is
//!   evaluated: [`Lazy::eval`], [`Lazy::to_vec`] or [`Lazy::reduce`].
//!   [`Lazy::fuse`]`(false)` runs the stages one after another instead, for
//!   comparison. Hand-written kernels are opaque to fusion: a chain with one runs
//!   stage by stage.
//! - **Failure.** A device that fails mid-run has its range redone elsewhere (as for
//!   slices), from the input's host copy or, when the only copy is on the failed
//!   device, by reading it back; a device that is lost with the only copy of a part
//!   loses it, and the call returns the device's error.
//! - **Memory.** Dropping an array (the last clone of a part) gives its GPU buffers
//!   back to the device's pool.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use crate::device::{Device, Resident, ShareStats};
use crate::error::{Error, Result};
use crate::kernel::{Element, Kernel, KernelInner, Reduce, Scalar};
use crate::runtime::{Run, Runtime};
use crate::schedule::Placement;

/// The state of one copy of an array's part (MSI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// The only valid copy.
    Modified,
    /// A valid copy, and the other location holds one too.
    Shared,
    /// No valid copy here.
    Invalid,
}

/// Where a part's valid copies are: the host's and the device's states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Coherence {
    /// The host copy.
    pub host: State,
    /// The device copy (a GPU's memory).
    pub device: State,
}

impl Coherence {
    /// Made on the host.
    pub(crate) const HOST: Coherence = Coherence {
        host: State::Modified,
        device: State::Invalid,
    };
    /// Made on a device.
    pub(crate) const DEVICE: Coherence = Coherence {
        host: State::Invalid,
        device: State::Modified,
    };

    /// Whether the host holds a valid copy.
    pub fn on_host(self) -> bool {
        self.host != State::Invalid
    }

    /// Whether the device holds a valid copy.
    pub fn on_device(self) -> bool {
        self.device != State::Invalid
    }

    fn checked(self) -> Result<Coherence> {
        debug_assert!(self.is_consistent(), "{self:?}");
        Ok(self)
    }

    /// After the device's copy was read back to the host.
    pub(crate) fn read_back(self) -> Result<Coherence> {
        match self {
            Coherence {
                device: State::Invalid,
                ..
            } => Err(Error::InvalidKernel {
                reason: "array: no device copy to read back".into(),
            }),
            _ => Coherence {
                host: State::Shared,
                device: State::Shared,
            }
            .checked(),
        }
    }

    /// After the host's copy was sent to the device.
    pub(crate) fn sent(self) -> Result<Coherence> {
        match self {
            Coherence {
                host: State::Invalid,
                ..
            } => Err(Error::InvalidKernel {
                reason: "array: no host copy to send".into(),
            }),
            _ => Coherence {
                host: State::Shared,
                device: State::Shared,
            }
            .checked(),
        }
    }

    /// After the device copy was dropped (its memory released).
    pub(crate) fn device_dropped(self) -> Result<Coherence> {
        match self.host {
            State::Invalid => Err(Error::InvalidKernel {
                reason: "array: dropping the device copy would lose the part".into(),
            }),
            _ => Coherence::HOST.checked(),
        }
    }

    /// The MSI invariant: at least one valid copy; a `Modified` copy is the only
    /// valid one; `Shared` comes in pairs.
    pub(crate) fn is_consistent(self) -> bool {
        use State::*;
        matches!(
            (self.host, self.device),
            (Modified, Invalid) | (Invalid, Modified) | (Shared, Shared)
        )
    }
}

/// One part of an array.
#[derive(Clone)]
pub(crate) struct Part {
    pub(crate) range: Range<usize>,
    /// The host copy (valid when `state.host` is not `Invalid`).
    host: Option<Arc<Vec<u32>>>,
    /// The device copy.
    dev: Option<Arc<dyn Resident>>,
    state: Coherence,
}

impl Part {
    pub(crate) fn on_host(range: Range<usize>, data: Vec<u32>) -> Part {
        Part {
            range,
            host: Some(Arc::new(data)),
            dev: None,
            state: Coherence::HOST,
        }
    }

    pub(crate) fn on_device(range: Range<usize>, data: Arc<dyn Resident>) -> Part {
        Part {
            range,
            host: None,
            dev: Some(data),
            state: Coherence::DEVICE,
        }
    }

    /// The host copy, read back first when only the device has one.
    fn host(&mut self, stats: &mut ShareStats) -> Result<Arc<Vec<u32>>> {
        if let (true, Some(h)) = (self.state.on_host(), &self.host) {
            return Ok(h.clone());
        }
        let dev = self.dev.as_ref().ok_or_else(|| Error::InvalidKernel {
            reason: "array: a part with no valid copy".into(),
        })?;
        let mut data = vec![0u32; self.range.len()];
        let st = dev.download(&mut data)?;
        crate::schedule::exec::add(stats, &st);
        self.state = self.state.read_back()?;
        let h = Arc::new(data);
        self.host = Some(h.clone());
        Ok(h)
    }
}

/// A handle to elements that stay where they were computed: see the
/// [module docs](crate::array) for the model.
///
/// Made from host data with [`Array::from_vec`] (or `From<Vec<T>>`); operations on it
/// ([`Runtime::map`], [`Runtime::map2`], [`Runtime::reduce`], [`Runtime::reduce2`]
/// take arrays as well as host data; [`Array::lazy`] chains) leave their outputs
/// where they ran; [`Array::to_vec`] gathers the
/// elements on the host in order, moving only what the host does not hold.
/// Cloning is cheap (the parts are shared).
pub struct Array<T> {
    len: usize,
    parts: Vec<Arc<Mutex<Part>>>,
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

impl<T: Element> Array<T> {
    /// An array of `data`, on the host.
    pub fn from_vec(data: Vec<T>) -> Array<T> {
        let len = data.len();
        // the same allocation, seen as bit patterns (every element type is 32 bits)
        let bits: Vec<u32> = bytemuck::allocation::try_cast_vec(data)
            .unwrap_or_else(|(_, v)| v.into_iter().map(Scalar::to_bits).collect());
        Array::from_parts(len, vec![Part::on_host(0..len, bits)])
    }

    /// An array of a copy of `data`, on the host.
    pub fn from_slice(data: &[T]) -> Array<T> {
        let len = data.len();
        let bits: Vec<u32> = bytemuck::cast_slice(data).to_vec();
        Array::from_parts(len, vec![Part::on_host(0..len, bits)])
    }

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
                    device: p.dev.as_ref().map(|d| d.owner_name().to_string()),
                    state: p.state,
                }
            })
            .collect()
    }

    /// Bytes held only in device memory (what [`to_vec`](Self::to_vec) would move).
    pub fn bytes_only_on_devices(&self) -> u64 {
        self.parts
            .iter()
            .map(|p| lock(p))
            .filter(|p| !p.state.on_host())
            .map(|p| p.range.len() as u64 * 4)
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
            out.extend(h.iter().map(|&b| T::from_bits(b)));
        }
        Ok((out, stats.bytes_from_device))
    }

    /// Frees the device memory this array's parts hold (for parts no other clone
    /// shares), reading back first what only a device holds; returns the bytes read
    /// back. The elements stay available on the host.
    pub fn release_devices(&self) -> Result<u64> {
        let mut stats = ShareStats::default();
        for p in &self.parts {
            let mut g = lock(p);
            if g.dev.is_none() {
                continue;
            }
            g.host(&mut stats)?;
            g.state = g.state.device_dropped()?;
            g.dev = None;
        }
        Ok(stats.bytes_from_device)
    }

    /// A lazy chain of one-input kernels starting from this array, run as one fused
    /// kernel when evaluated.
    pub fn lazy(&self) -> Lazy<'_, T, T> {
        Lazy {
            source: self,
            stages: Vec::new(),
            fuse: true,
            _t: PhantomData,
        }
    }
}

impl<T: Element> From<Vec<T>> for Array<T> {
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

fn lock(p: &Mutex<Part>) -> std::sync::MutexGuard<'_, Part> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// Elements of an array on the host for one range: borrowed from one part's host
/// copy when the range lies within it, else gathered.
pub(crate) enum HostData {
    Within(Arc<Vec<u32>>, Range<usize>),
    Gathered(Vec<u32>),
}

impl HostData {
    pub(crate) fn as_slice(&self) -> &[u32] {
        match self {
            HostData::Within(v, r) => &v[r.clone()],
            HostData::Gathered(v) => v,
        }
    }
}

/// The type-erased view of an array that the runtime works on.
pub(crate) struct ArrayRef<'a> {
    pub(crate) len: usize,
    parts: &'a [Arc<Mutex<Part>>],
}

impl<T> Array<T> {
    /// The same parts seen as elements of another type (every element type is 32
    /// bits; a chain's stages change the type, not the data's layout).
    fn retype<U>(self) -> Array<U> {
        Array {
            len: self.len,
            parts: self.parts,
            _t: PhantomData,
        }
    }

    pub(crate) fn view(&self) -> ArrayRef<'_> {
        ArrayRef {
            len: self.len,
            parts: &self.parts,
        }
    }
}

impl ArrayRef<'_> {
    /// Whether every part is valid on the host.
    #[cfg(test)]
    pub(crate) fn all_on_host(&self) -> bool {
        self.parts.iter().all(|p| lock(p).state.on_host())
    }

    /// The partition: each part's range and the id of the device holding its only
    /// copy (0: valid on the host).
    pub(crate) fn layout(&self) -> Vec<(Range<usize>, u64, u64)> {
        self.parts
            .iter()
            .map(|p| {
                let p = lock(p);
                let owner = match (&p.dev, p.state.on_host()) {
                    (Some(d), false) => d.owner(),
                    _ => 0,
                };
                let device_bytes = if p.state.on_host() {
                    0
                } else {
                    p.range.len() as u64 * 4
                };
                (p.range.clone(), owner, device_bytes)
            })
            .collect()
    }

    /// The elements of `range` on the host (read back from devices as needed; the
    /// read-back is added to `stats`).
    pub(crate) fn host_range(
        &self,
        range: Range<usize>,
        stats: &mut ShareStats,
    ) -> Result<HostData> {
        let mut pieces = Vec::new();
        for p in self.parts {
            let mut g = lock(p);
            let r = g.range.clone();
            if r.end <= range.start || r.start >= range.end {
                continue;
            }
            let h = g.host(stats)?;
            let lo = range.start.max(r.start) - r.start;
            let hi = range.end.min(r.end) - r.start;
            if r.start <= range.start && range.end <= r.end {
                return Ok(HostData::Within(h, lo..hi));
            }
            pieces.push((h, lo..hi));
        }
        let mut out = Vec::with_capacity(range.len());
        for (h, r) in pieces {
            out.extend_from_slice(&h[r]);
        }
        Ok(HostData::Gathered(out))
    }

    /// `range` of the array in `dev`'s memory: the part itself when it is exactly that
    /// range and `dev` holds it (nothing moves), else sent there (and kept by the part
    /// when the range is a whole part, so the next use moves nothing).
    pub(crate) fn on_device(
        &self,
        range: Range<usize>,
        dev: &dyn Device,
        stats: &mut ShareStats,
    ) -> Result<Arc<dyn Resident>> {
        let whole = self.parts.iter().find(|p| lock(p).range == range);
        if let Some(p) = whole {
            let g = lock(p);
            if let (true, Some(d)) = (g.state.on_device(), &g.dev) {
                if d.owner() == dev.id() {
                    return Ok(d.clone());
                }
            }
        }
        let data = self.host_range(range, stats)?;
        let (r, st) = dev.upload(data.as_slice())?;
        crate::schedule::exec::add(stats, &st);
        if let Some(p) = whole {
            let mut g = lock(p);
            // a copy on another device is replaced: a part keeps one device copy
            if g.state.on_host() {
                g.state = g.state.sent()?;
                g.dev = Some(r.clone());
            }
        }
        Ok(r)
    }
}

/// A chain of one-input kernels over an array, not yet run: see [`Array::lazy`].
#[must_use = "a lazy chain does nothing until it is evaluated"]
pub struct Lazy<'a, I, T> {
    source: &'a Array<I>,
    stages: Vec<Arc<KernelInner>>,
    fuse: bool,
    _t: PhantomData<fn() -> T>,
}

impl<'a, I: Element, T: Element> Lazy<'a, I, T> {
    /// Adds a stage.
    pub fn map<O: Element>(mut self, kernel: &Kernel<T, O>) -> Lazy<'a, I, O> {
        self.stages.push(kernel.inner().clone());
        Lazy {
            source: self.source,
            stages: self.stages,
            fuse: self.fuse,
            _t: PhantomData,
        }
    }

    /// Whether to fuse the stages into one kernel (the default) or run them one after
    /// another (each output an array that stays where it was computed).
    pub fn fuse(mut self, on: bool) -> Self {
        self.fuse = on;
        self
    }

    /// Number of stages.
    pub fn stages(&self) -> usize {
        self.stages.len()
    }

    fn check(&self) -> Result<()> {
        for k in &self.stages {
            let want = k.program()?.inputs.len();
            if want != 1 {
                return Err(Error::WrongArity {
                    expected: want,
                    given: 1,
                });
            }
        }
        Ok(())
    }

    /// The kernel fusing every stage, when fusion is on and possible.
    fn fused(&self) -> Result<Option<Arc<KernelInner>>> {
        if !self.fuse || self.stages.len() < 2 || self.stages.iter().any(|k| k.custom().is_some()) {
            return Ok(None);
        }
        KernelInner::fused(&self.stages).map(Some)
    }

    /// Runs the chain: the output array stays where it was computed.
    pub fn eval(self, rt: &Runtime, placement: Placement) -> Result<Run<Array<T>>> {
        self.check()?;
        let n = self.source.len;
        let Some((first, rest)) = self.stages.split_first() else {
            return Ok(Run {
                output: self.source.clone().retype(),
                report: rt.empty_report(n, placement),
            });
        };
        if let Some(k) = self.fused()? {
            let mut run = rt.array_map(&k, &[self.source.view()], placement)?;
            run.report.fused = self.stages.len();
            return Ok(Run {
                output: Array::from_parts(n, run.output),
                report: run.report,
            });
        }
        // stage by stage, each output an array left where it was computed
        let run = rt.array_map(first, &[self.source.view()], placement)?;
        let mut a = Array::<u32>::from_parts(n, run.output);
        let mut report = run.report;
        for k in rest {
            let run = rt.array_map(k, &[a.view()], placement)?;
            a = Array::from_parts(n, run.output);
            report = report.then(run.report);
        }
        Ok(Run {
            output: a.retype(),
            report,
        })
    }

    /// Runs the chain and gathers the result on the host; the report counts the
    /// read-back in its notes and in `bytes_from_devices`.
    pub fn to_vec(self, rt: &Runtime, placement: Placement) -> Result<Run<Vec<T>>> {
        let Run { output, mut report } = self.eval(rt, placement)?;
        let (v, bytes) = output.to_vec_counted()?;
        if bytes > 0 {
            report.gathered += bytes;
            report
                .notes
                .push(format!("gathered on the host: {bytes} bytes read back"));
        }
        Ok(Run { output: v, report })
    }

    /// Runs the chain into a reduction: with fusion, the stages and the reduction are
    /// one pass and no mapped array is written anywhere.
    pub fn reduce(self, rt: &Runtime, op: Reduce, placement: Placement) -> Result<Run<T>> {
        self.check()?;
        let n = self.stages.len();
        if let Some(k) = self.fused()? {
            let mut run = rt.array_reduce(&k, op, &[self.source.view()], placement)?;
            run.report.fused = n;
            return Ok(Run {
                output: T::from_bits(run.output),
                report: run.report,
            });
        }
        if n == 0 {
            let ident = Kernel::map(|x: crate::Expr<I>| x);
            let run = rt.array_reduce(ident.inner(), op, &[self.source.view()], placement)?;
            return Ok(Run {
                output: T::from_bits(run.output),
                report: run.report,
            });
        }
        // every stage but the last as maps, the last as the reduction's kernel
        let last = self.stages[n - 1].clone();
        let head = Lazy::<I, u32> {
            source: self.source,
            stages: self.stages[..n - 1].to_vec(),
            fuse: false,
            _t: PhantomData,
        };
        let (input, report) = if n > 1 {
            let r = head.eval(rt, placement)?;
            (Some(r.output), Some(r.report))
        } else {
            (None, None)
        };
        let run = match &input {
            Some(a) => rt.array_reduce(&last, op, &[a.view()], placement)?,
            None => rt.array_reduce(&last, op, &[self.source.view()], placement)?,
        };
        let report = match report {
            Some(r) => r.then(run.report),
            None => run.report,
        };
        Ok(Run {
            output: T::from_bits(run.output),
            report,
        })
    }
}

mod sealed {
    pub trait Sealed {}
    impl<T> Sealed for [T] {}
    impl<T> Sealed for Vec<T> {}
    impl<T, const N: usize> Sealed for [T; N] {}
    impl<T> Sealed for super::Array<T> {}
}

/// What [`Runtime::map`], [`Runtime::map2`], [`Runtime::reduce`] and
/// [`Runtime::reduce2`] accept: host data (`[T]`, `Vec<T>`, `[T; N]`), whose map is a
/// `Vec`, or an [`Array`], whose map is an `Array` with its parts left where they were
/// computed. The two inputs of `map2`/`reduce2` are both host data (of any of those
/// forms) or both arrays. Sealed.
pub trait Input<T: Element>: sealed::Sealed {
    /// What a map over this input gives.
    type Mapped<O: Element>;
    #[doc(hidden)]
    fn as_host(&self) -> Option<&[T]>;
    #[doc(hidden)]
    fn as_array(&self) -> Option<&Array<T>>;
    #[doc(hidden)]
    fn map_on<O: Element>(
        rt: &Runtime,
        a: &Self,
        b: Option<Second<'_, T>>,
        k: &Kernel<T, O>,
        p: Placement,
    ) -> Result<Run<Self::Mapped<O>>>;
}

/// A two-input call's second input: as host data, or as an array (one is `Some`).
#[doc(hidden)]
pub type Second<'a, T> = (Option<&'a [T]>, Option<&'a Array<T>>);

/// The second input of a two-input call, in the first one's kind.
fn second<X>(b: Option<X>) -> Result<X> {
    b.ok_or_else(|| Error::InvalidKernel {
        reason: "map2/reduce2: both inputs must be host data, or both arrays".into(),
    })
}

macro_rules! host_input {
    ($($ty:ty => [$($g:tt)*]),*) => {$(
        impl<T: Element, $($g)*> Input<T> for $ty {
            type Mapped<O: Element> = Vec<O>;
            fn as_host(&self) -> Option<&[T]> {
                Some(&self[..])
            }
            fn as_array(&self) -> Option<&Array<T>> {
                None
            }
            fn map_on<O: Element>(
                rt: &Runtime,
                a: &Self,
                b: Option<Second<'_, T>>,
                k: &Kernel<T, O>,
                p: Placement,
            ) -> Result<Run<Vec<O>>> {
                match b {
                    None => rt.map_host(&a[..], k, p),
                    Some((b, _)) => rt.map2_host(&a[..], second(b)?, k, p),
                }
            }
        }
    )*};
}

host_input!([T] => [], Vec<T> => [], [T; N] => [const N: usize]);

impl<T: Element> Input<T> for Array<T> {
    type Mapped<O: Element> = Array<O>;
    fn as_host(&self) -> Option<&[T]> {
        None
    }
    fn as_array(&self) -> Option<&Array<T>> {
        Some(self)
    }
    fn map_on<O: Element>(
        rt: &Runtime,
        a: &Self,
        b: Option<Second<'_, T>>,
        k: &Kernel<T, O>,
        p: Placement,
    ) -> Result<Run<Array<O>>> {
        match b {
            None => rt.map_array(a, k, p),
            Some((_, b)) => rt.map2_array(a, second(b)?, k, p),
        }
    }
}

/// The ranges of `range`, in order, each at most `max` long.
pub(crate) fn pieces(range: Range<usize>, max: usize) -> impl Iterator<Item = Range<usize>> {
    let max = max.max(1);
    (range.start..range.end)
        .step_by(max)
        .map(move |s| s..(s + max).min(range.end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::*;

    #[test]
    fn coherence_transitions_keep_the_invariant() {
        let h = Coherence::HOST;
        let d = Coherence::DEVICE;
        assert!(h.is_consistent() && d.is_consistent());
        assert!(h.on_host() && !h.on_device());
        assert!(!d.on_host() && d.on_device());
        // reading a device-made part back shares it
        let s = d.read_back().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s,
            Coherence {
                host: Shared,
                device: Shared
            }
        );
        assert!(s.is_consistent() && s.on_host() && s.on_device());
        // sending a host-made part shares it
        assert_eq!(h.sent().unwrap_or_else(|e| panic!("{e}")), s);
        // a shared part stays shared either way
        assert_eq!(s.read_back().unwrap_or_else(|e| panic!("{e}")), s);
        assert_eq!(s.sent().unwrap_or_else(|e| panic!("{e}")), s);
        // dropping the device copy leaves the host's as the only one
        assert_eq!(s.device_dropped().unwrap_or_else(|e| panic!("{e}")), h);
        // impossible moves are errors, not silent loss
        assert!(h.read_back().is_err(), "nothing on the device to read");
        assert!(d.sent().is_err(), "nothing on the host to send");
        assert!(d.device_dropped().is_err(), "would lose the only copy");
        // inconsistent states are recognised
        for (host, device) in [
            (Modified, Modified),
            (Shared, Invalid),
            (Invalid, Invalid),
            (Modified, Shared),
        ] {
            assert!(!Coherence { host, device }.is_consistent());
        }
    }

    #[test]
    fn pieces_cover_a_range_in_order() {
        let p: Vec<_> = pieces(3..13, 4).collect();
        assert_eq!(p, [3..7, 7..11, 11..13]);
        assert_eq!(pieces(5..5, 4).count(), 0);
        assert_eq!(
            pieces(0..3, 0).count(),
            3,
            "a zero bound still makes progress"
        );
    }

    #[test]
    fn host_arrays_gather_borrow_and_count_nothing() {
        let a = Array::<u32>::from_parts(
            10,
            vec![
                Part::on_host(0..4, vec![0, 1, 2, 3]),
                Part::on_host(4..10, vec![4, 5, 6, 7, 8, 9]),
            ],
        );
        let mut st = ShareStats::default();
        let v = a.view();
        assert!(v.all_on_host());
        // within one part: borrowed
        let d = v
            .host_range(5..8, &mut st)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(d, HostData::Within(..)));
        assert_eq!(d.as_slice(), [5, 6, 7]);
        // across parts: gathered
        let d = v
            .host_range(2..7, &mut st)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(d, HostData::Gathered(..)));
        assert_eq!(d.as_slice(), [2, 3, 4, 5, 6]);
        assert_eq!(st, ShareStats::default());
        assert_eq!(
            a.to_vec_counted().unwrap_or_else(|e| panic!("{e}")),
            ((0..10).collect(), 0)
        );
        assert_eq!(a.bytes_only_on_devices(), 0);
        assert_eq!(
            a.parts()
                .iter()
                .map(|p| p.range.clone())
                .collect::<Vec<_>>(),
            [0..4, 4..10]
        );
    }
}
