//! One part of an array: its range and its copies (host memory, a device's memory),
//! and the type-erased view of an array that the runtime reads and sends parts
//! through, counting every byte it moves.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use super::coherence::Coherence;
use crate::device::{Memory, Resident, ShareStats};
use crate::error::Result;
use crate::sync::lock;

/// The copies a part holds. The coherence states follow from it, so a part with no
/// valid copy, or with two `Modified` ones, cannot be written down.
#[derive(Clone)]
pub(crate) enum Copies {
    /// Only in host memory.
    Host(Arc<Vec<u32>>),
    /// Only in a device's memory.
    Device(Arc<dyn Resident>),
    /// In both.
    Both(Arc<Vec<u32>>, Arc<dyn Resident>),
}

impl Copies {
    pub(crate) fn coherence(&self) -> Coherence {
        match self {
            Copies::Host(_) => Coherence::HOST,
            Copies::Device(_) => Coherence::DEVICE,
            Copies::Both(..) => Coherence::SHARED,
        }
    }

    pub(crate) fn host(&self) -> Option<&Arc<Vec<u32>>> {
        match self {
            Copies::Host(h) | Copies::Both(h, _) => Some(h),
            Copies::Device(_) => None,
        }
    }

    pub(crate) fn device(&self) -> Option<&Arc<dyn Resident>> {
        match self {
            Copies::Device(d) | Copies::Both(_, d) => Some(d),
            Copies::Host(_) => None,
        }
    }
}

/// One part of an array: elements `range`, `words` 32-bit words each (2 for a 64-bit
/// type, low first) in every copy.
#[derive(Clone)]
pub(crate) struct Part {
    pub(crate) range: Range<usize>,
    pub(crate) words: usize,
    pub(crate) copies: Copies,
}

/// Words per element of a copy of `words` words holding the elements of `range`.
fn per_element(range: &Range<usize>, words: usize) -> usize {
    match range.len() {
        0 => 1,
        n => (words / n).max(1),
    }
}

impl Part {
    /// Elements `range` in host memory: `data` holds their words (as many per element
    /// as `data.len() / range.len()`).
    pub(crate) fn on_host(range: Range<usize>, data: Vec<u32>) -> Part {
        Part {
            words: per_element(&range, data.len()),
            range,
            copies: Copies::Host(Arc::new(data)),
        }
    }

    /// Elements `range` in a device's memory (`data.len()` words).
    pub(crate) fn on_device(range: Range<usize>, data: Arc<dyn Resident>) -> Part {
        Part {
            words: per_element(&range, data.len()),
            range,
            copies: Copies::Device(data),
        }
    }

    /// Bytes of one copy.
    pub(crate) fn bytes(&self) -> u64 {
        (self.range.len() * self.words) as u64 * 4
    }

    /// The host copy, read back first when only the device has one (the device copy
    /// is kept: both are then valid).
    pub(crate) fn host(&mut self, stats: &mut ShareStats) -> Result<Arc<Vec<u32>>> {
        let dev = match &self.copies {
            Copies::Host(h) | Copies::Both(h, _) => return Ok(h.clone()),
            Copies::Device(d) => d.clone(),
        };
        let mut data = vec![0u32; self.range.len() * self.words];
        stats.add(&dev.download(&mut data)?);
        let h = Arc::new(data);
        self.copies = Copies::Both(h.clone(), dev);
        Ok(h)
    }

    /// Drops the device copy, reading it back first when it is the only one; the
    /// device's memory goes back to its pool once no other array shares the part.
    pub(crate) fn release_device(&mut self, stats: &mut ShareStats) -> Result<()> {
        if self.copies.device().is_some() {
            let h = self.host(stats)?;
            self.copies = Copies::Host(h);
        }
        Ok(())
    }
}

/// Where one part of an array is, as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartAt {
    pub(crate) range: Range<usize>,
    /// The [`Memory::id`] of the device holding the only copy; 0 when the host holds
    /// a valid one.
    pub(crate) owner: u64,
    /// Bytes only that device holds (what reading the part back would move).
    pub(crate) device_bytes: u64,
}

/// Elements of an array on the host for one range (their words): borrowed from one
/// part's host copy when the range lies within it, else gathered.
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

/// The type-erased view of an array that the runtime works on: `len` elements of
/// `words` words each.
#[derive(Clone, Copy)]
pub(crate) struct ArrayRef<'a> {
    pub(crate) len: usize,
    pub(crate) words: usize,
    pub(crate) parts: &'a [Arc<Mutex<Part>>],
}

impl ArrayRef<'_> {
    /// Whether every part is valid on the host.
    #[cfg(test)]
    pub(crate) fn all_on_host(&self) -> bool {
        self.parts.iter().all(|p| lock(p).copies.host().is_some())
    }

    /// The partition: each part's range, who holds its only copy, and its bytes there.
    pub(crate) fn layout(&self) -> Vec<PartAt> {
        self.parts
            .iter()
            .map(|p| {
                let p = lock(p);
                let (owner, device_bytes) = match &p.copies {
                    Copies::Device(d) => (d.owner(), p.bytes()),
                    _ => (0, 0),
                };
                PartAt {
                    range: p.range.clone(),
                    owner,
                    device_bytes,
                }
            })
            .collect()
    }

    /// Bytes of the parts that have no copy in the memory with id `dev`: what making
    /// the whole array resident there would send.
    pub(crate) fn bytes_not_on(&self, dev: u64) -> u64 {
        self.parts
            .iter()
            .map(|p| {
                let p = lock(p);
                match p.copies.device() {
                    Some(d) if d.owner() == dev => 0,
                    _ => p.bytes(),
                }
            })
            .sum()
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
            let w = g.words;
            let lo = (range.start.max(r.start) - r.start) * w;
            let hi = (range.end.min(r.end) - r.start) * w;
            if r.start <= range.start && range.end <= r.end {
                return Ok(HostData::Within(h, lo..hi));
            }
            pieces.push((h, lo..hi));
        }
        let mut out = Vec::with_capacity(range.len() * self.words);
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
        dev: &dyn Memory,
        stats: &mut ShareStats,
    ) -> Result<Arc<dyn Resident>> {
        let whole = self.parts.iter().find(|p| lock(p).range == range);
        if let Some(p) = whole {
            if let Some(d) = lock(p).copies.device() {
                if d.owner() == dev.id() {
                    return Ok(d.clone());
                }
            }
        }
        let data = self.host_range(range, stats)?;
        let (r, st) = dev.upload(data.as_slice())?;
        stats.add(&st);
        if let Some(p) = whole {
            let mut g = lock(p);
            // a copy on another device is replaced: a part keeps one device copy
            if let Some(h) = g.copies.host().cloned() {
                g.copies = Copies::Both(h, r.clone());
            }
        }
        Ok(r)
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
    use crate::array::Array;

    /// A device copy held in a vector, as a GPU's buffer would be.
    struct Fake(Vec<u32>, u64);

    impl Resident for Fake {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn owner(&self) -> u64 {
            self.1
        }
        fn owner_name(&self) -> &str {
            "fake"
        }
        fn download(&self, out: &mut [u32]) -> Result<ShareStats> {
            out.copy_from_slice(&self.0);
            Ok(ShareStats {
                bytes_from_device: 4 * self.0.len() as u64,
                ..ShareStats::default()
            })
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    #[test]
    fn reading_back_and_releasing_move_between_the_msi_states() {
        let mut p = Part::on_device(0..3, Arc::new(Fake(vec![7, 8, 9], 5)));
        assert_eq!(p.copies.coherence(), Coherence::DEVICE);
        let mut st = ShareStats::default();
        // reading a device-made part back shares it, and counts the bytes once
        assert_eq!(
            *p.host(&mut st).unwrap_or_else(|e| panic!("{e}")),
            [7, 8, 9]
        );
        assert_eq!(p.copies.coherence(), Coherence::SHARED);
        assert_eq!(st.bytes_from_device, 12);
        p.host(&mut st).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            st.bytes_from_device, 12,
            "a shared part reads nothing again"
        );
        // releasing the device copy leaves the host's as the only one
        p.release_device(&mut st).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.copies.coherence(), Coherence::HOST);
        // releasing a device-only part reads it back first: nothing is lost
        let mut q = Part::on_device(0..2, Arc::new(Fake(vec![1, 2], 5)));
        q.release_device(&mut st).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(q.copies.host().map(|h| h.to_vec()), Some(vec![1, 2]));
        assert_eq!(st.bytes_from_device, 20);
        for c in [&p.copies, &q.copies] {
            assert!(c.coherence().is_consistent());
        }
    }

    #[test]
    fn layout_names_the_owner_of_device_only_parts() {
        let a = Array::<u32>::from_parts(
            5,
            vec![
                Part::on_host(0..2, vec![0, 1]),
                Part::on_device(2..5, Arc::new(Fake(vec![2, 3, 4], 9))),
            ],
        );
        let l = a.view().layout();
        assert_eq!(
            l,
            [
                PartAt {
                    range: 0..2,
                    owner: 0,
                    device_bytes: 0
                },
                PartAt {
                    range: 2..5,
                    owner: 9,
                    device_bytes: 12
                }
            ]
        );
        let mut st = ShareStats::default();
        let d = a
            .view()
            .host_range(1..4, &mut st)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.as_slice(), [1, 2, 3]);
        assert_eq!(st.bytes_from_device, 12);
        assert_eq!(a.view().layout()[1].owner, 0, "now valid on the host too");
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
