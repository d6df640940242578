//! Throughput models per (kernel, device), fitted from measurements and persisted.
//!
//! A model keeps the most recent runs as `(elements, seconds)` samples, end to end and
//! compute only, and fits `t(n) = overhead + n / rate` by least squares weighted by
//! recency (each older sample counts [`FORGET`] times the next newer one), so it
//! follows a device whose speed changes within a few runs and still averages noise.
//! A GPU whose link is known is predicted through the transfer pipeline
//! ([`pipeline_cost`]): the bounding stage times `n`, plus the fill and drain of one
//! chunk; one whose link is unknown is predicted from its end-to-end runs. The
//! pipeline prediction is then checked against the device's whole runs: it is scaled
//! by the recency-weighted (geometric) mean of measured / predicted over them
//! ([`Samples::ratio_to`]), because the pipeline's assumptions (stages overlap fully;
//! the host sees the whole compute stage) fail on some devices: a software GPU's
//! stages share the CPU's cores, and a driver may run the dispatch inside the submit.
//! The report's model text says when such a factor applies (`x1.80 to match whole runs`).
//!
//! Models live in `<cache dir>/model-<device>.json`, one file per device (keyed by its
//! name, kind, backend and driver), holding each kernel's samples under the kernel's
//! stable hash; they are loaded when a runtime is built and saved, at most every
//! [`SAVE_EVERY_S`], after calls that taught them something.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::cost::{pipeline_cost, Bound, Cost, Samples};
use crate::device::DeviceInfo;
use crate::transfer::Link;

/// Minimum seconds between two saves of one device's models.
pub(crate) const SAVE_EVERY_S: f64 = 2.0;

/// What one (kernel, device) pair has been measured to do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Model {
    /// Whole runs: from the call until the output is on the host.
    pub(crate) end_to_end: Samples,
    /// The compute stage alone (GPUs: the dispatches, without transfers).
    pub(crate) compute: Samples,
    /// Runs measured, in all.
    pub(crate) runs: u64,
}

/// A model's prediction for one call: the cost function and how it was made.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Prediction {
    pub(crate) cost: Cost,
    pub(crate) bound: Bound,
    /// The model in words, e.g. `12.0 us + n / 1.93 G/s (end to end, 8 runs)`.
    pub(crate) text: String,
}

/// Elements per second in a short form.
pub(crate) fn rate_text(per_elem_s: f64) -> String {
    let r = 1.0 / per_elem_s.max(1e-30);
    if r >= 1e9 {
        format!("{:.2} G/s", r / 1e9)
    } else if r >= 1e6 {
        format!("{:.1} M/s", r / 1e6)
    } else {
        format!("{:.0} /s", r)
    }
}

impl Model {
    /// The cost of a run on this device, or `None` before any measurement.
    /// `link` is the device's fitted link (`None`: measure end to end).
    pub(crate) fn predict(
        &self,
        link: Option<&Link>,
        in_bytes: u64,
        out_bytes: u64,
    ) -> Option<Prediction> {
        if let (Some(link), Some(c)) = (link, self.compute.fit()) {
            let (mut cost, bound) = pipeline_cost(link, c, in_bytes, out_bytes);
            let r = self.end_to_end.ratio_to(&cost);
            cost.fixed_s *= r;
            cost.per_elem_s *= r;
            cost.fill_extra_s *= r;
            let mut text = format!(
                "pipeline: {} + n / {}, {} bound (compute {} + n / {}, {} runs)",
                crate::report::secs(cost.fixed_s),
                rate_text(cost.per_elem_s),
                bound.name(),
                crate::report::secs(c.fixed_s),
                rate_text(c.per_elem_s),
                self.runs
            );
            if (r - 1.0).abs() > 0.005 {
                text += &format!(", x{r:.2} to match whole runs");
            }
            return Some(Prediction { cost, bound, text });
        }
        let f = self.end_to_end.fit()?;
        let text = format!(
            "{} + n / {} (end to end, {} runs)",
            crate::report::secs(f.fixed_s),
            rate_text(f.per_elem_s),
            self.runs
        );
        Some(Prediction {
            cost: Cost::affine(f.fixed_s, f.per_elem_s),
            bound: Bound::Whole,
            text,
        })
    }
}

/// The persisted form of one device's models.
#[derive(Debug, Default, Serialize, Deserialize)]
struct DeviceFile {
    version: u32,
    device: String,
    /// Kernel hash (16 hex digits) to its model.
    kernels: HashMap<String, Model>,
}

const FILE_VERSION: u32 = 1;

/// The models of one runtime's devices, shared by its calls.
pub(crate) struct Models {
    /// Per device: its identity and the file its models persist in (`None`: memory only).
    devices: Vec<(String, Option<PathBuf>)>,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    models: HashMap<(u64, usize), Model>,
    /// Per kernel, the input size below which the CPU alone is best, once known.
    cpu_only_below: HashMap<u64, usize>,
    probing: HashSet<(u64, usize)>,
    warmed: HashSet<(u64, usize)>,
    dirty: HashSet<usize>,
    last_save: HashMap<usize, Instant>,
}

/// A device's identity for persistence: what makes its measurements valid.
pub(crate) fn device_key(info: &DeviceInfo) -> String {
    format!(
        "{} {} {} {}",
        info.name,
        info.kind.name(),
        info.backend,
        info.driver
    )
}

impl Models {
    /// Models for these devices; `persist[i]` says whether device `i`'s models are
    /// loaded from and saved to `dir`.
    pub(crate) fn new(infos: &[DeviceInfo], persist: &[bool], dir: PathBuf) -> Models {
        let mut table = Table::default();
        let mut devices = Vec::with_capacity(infos.len());
        for (i, info) in infos.iter().enumerate() {
            let key = device_key(info);
            let path = persist
                .get(i)
                .copied()
                .unwrap_or(false)
                .then(|| dir.join(crate::cache::file_name(&format!("model-{key}"), "json")));
            if let Some(file) = path.as_ref().and_then(|p| std::fs::read(p).ok()) {
                if let Ok(f) = serde_json::from_slice::<DeviceFile>(&file) {
                    if f.version == FILE_VERSION && f.device == key {
                        for (k, m) in f.kernels {
                            if let Ok(h) = u64::from_str_radix(&k, 16) {
                                table.models.insert((h, i), m);
                            }
                        }
                    }
                }
            }
            devices.push((key, path));
        }
        Models {
            devices,
            table: Mutex::new(table),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // a panic elsewhere while holding the lock leaves plain data: keep using it
        crate::sync::lock(&self.table)
    }

    /// A copy of the model of `kernel` on `device`, if it has been measured.
    pub(crate) fn get(&self, kernel: u64, device: usize) -> Option<Model> {
        self.lock().models.get(&(kernel, device)).cloned()
    }

    /// Records a run of `n` elements that took `total_s` end to end and `compute_s`
    /// computing (0: not told apart).
    pub(crate) fn record(
        &self,
        kernel: u64,
        device: usize,
        n: usize,
        total_s: f64,
        compute_s: f64,
    ) -> Model {
        let mut t = self.lock();
        let m = t.models.entry((kernel, device)).or_default();
        m.end_to_end.push(n, total_s);
        if compute_s > 0.0 {
            m.compute.push(n, compute_s);
        }
        m.runs += 1;
        let out = m.clone();
        t.dirty.insert(device);
        t.cpu_only_below.remove(&kernel);
        out
    }

    /// Whether this is the first run of `kernel` on `device` with no model: a warm-up
    /// (pipeline compilation) whose time says nothing about the next runs.
    pub(crate) fn first_contact(&self, kernel: u64, device: usize) -> bool {
        let mut t = self.lock();
        !t.models.contains_key(&(kernel, device)) && t.warmed.insert((kernel, device))
    }

    /// The cached CPU-only threshold for `kernel`, if computed since the last change.
    pub(crate) fn cpu_only_below(&self, kernel: u64) -> Option<usize> {
        self.lock().cpu_only_below.get(&kernel).copied()
    }

    pub(crate) fn set_cpu_only_below(&self, kernel: u64, n: usize) {
        self.lock().cpu_only_below.insert(kernel, n);
    }

    /// Marks `kernel` on `device` as being probed; false if a probe is already running.
    pub(crate) fn start_probe(&self, kernel: u64, device: usize) -> bool {
        self.lock().probing.insert((kernel, device))
    }

    pub(crate) fn end_probe(&self, kernel: u64, device: usize) {
        self.lock().probing.remove(&(kernel, device));
    }

    /// Saves the models of devices changed since their last save, unless that save was
    /// less than [`SAVE_EVERY_S`] ago (or `force`). Failures to write are ignored: the
    /// models are a cache.
    pub(crate) fn save(&self, force: bool) {
        let mut writes = Vec::new();
        {
            let mut t = self.lock();
            let dirty: Vec<usize> = t.dirty.iter().copied().collect();
            for d in dirty {
                let Some((key, Some(path))) = self.devices.get(d) else {
                    t.dirty.remove(&d);
                    continue;
                };
                let due = t
                    .last_save
                    .get(&d)
                    .is_none_or(|s| s.elapsed().as_secs_f64() >= SAVE_EVERY_S);
                if !(due || force) {
                    continue;
                }
                let kernels = t
                    .models
                    .iter()
                    .filter(|((_, dev), _)| *dev == d)
                    .map(|((k, _), m)| (format!("{k:016x}"), m.clone()))
                    .collect();
                let file = DeviceFile {
                    version: FILE_VERSION,
                    device: key.clone(),
                    kernels,
                };
                if let Ok(bytes) = serde_json::to_vec_pretty(&file) {
                    writes.push((path.clone(), bytes));
                }
                t.dirty.remove(&d);
                t.last_save.insert(d, Instant::now());
            }
        }
        for (path, bytes) in writes {
            let _ = crate::cache::write_atomic(&path, &bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::DeviceKind;
    use crate::transfer::LinkDir;

    #[test]
    fn whole_runs_correct_a_pipeline_that_hides_compute() {
        let l = LinkDir {
            alpha_s: 10e-6,
            beta_bytes_per_s: 10e9,
        };
        let link = Link { up: l, down: l };
        let mut m = Model::default();
        // the compute stage as the host saw it: 1 ns per element; whole runs took
        // three times what the pipeline over that compute would take
        for n in [1usize << 20, 1 << 22, 1 << 24] {
            m.compute.push(n, n as f64 * 1e-9);
        }
        let plain = m.predict(Some(&link), 8, 4).map(|p| p.cost);
        let plain = plain.unwrap_or_else(|| panic!("no prediction"));
        for n in [1usize << 20, 1 << 22, 1 << 24] {
            m.end_to_end.push(n, 3.0 * plain.work_s(n));
        }
        let p = m
            .predict(Some(&link), 8, 4)
            .unwrap_or_else(|| panic!("no prediction"));
        for n in [1usize << 21, 1 << 24] {
            let want = 3.0 * plain.work_s(n);
            assert!(
                (p.cost.work_s(n) / want - 1.0).abs() < 1e-9,
                "n={n}: {} vs {want}",
                p.cost.work_s(n)
            );
        }
        assert!(p.text.contains("x3.00"), "{}", p.text);
        // whole runs that agree leave the pipeline as it is
        let mut agree = Model {
            compute: m.compute.clone(),
            ..Model::default()
        };
        for n in [1usize << 20, 1 << 24] {
            agree.end_to_end.push(n, plain.work_s(n));
        }
        let q = agree.predict(Some(&link), 8, 4).map(|p| p.cost);
        assert_eq!(q, Some(plain));
    }

    #[test]
    fn models_persist_and_reload() {
        let dir = std::env::temp_dir().join(format!("hybrid-model-test-{}", std::process::id()));
        let info = DeviceInfo {
            name: "sim gpu/1".into(),
            backend: "sim".into(),
            kind: DeviceKind::DiscreteGpu,
            driver: "virtual".into(),
            types: DeviceInfo::all_types(),
        };
        let infos = [info];
        let m = Models::new(&infos, &[true], dir.clone());
        assert!(m.get(42, 0).is_none());
        m.record(42, 0, 1000, 1e-5, 5e-6);
        m.record(42, 0, 4000, 3e-5, 2e-5);
        m.save(true);
        let again = Models::new(&infos, &[true], dir.clone());
        assert_eq!(again.get(42, 0), m.get(42, 0));
        let memory = Models::new(&infos, &[false], dir.clone());
        assert!(memory.get(42, 0).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
