//! Fitting a link model from measured transfers, and keeping it on disk.
//!
//! A calibration is measured on first need, stored as JSON (one file per adapter,
//! backend and driver) and reloaded by later processes. A file is re-measured when it
//! is missing, unreadable or corrupt (a warning, never an error), written by another
//! crate version or format, for another adapter, or older than [`MAX_AGE_S`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Link, LinkDir};
use crate::error::Result;

/// Fits `t = alpha + bytes / beta` to `(bytes, seconds)` samples by ordinary least
/// squares on `t = alpha + slope * bytes`. Returns `None` with fewer than two distinct
/// sizes or a non-positive slope (no bandwidth can be inferred). A negative intercept
/// (noise on tiny transfers) is clamped to 0.
pub(crate) fn fit(samples: &[(u64, f64)]) -> Option<LinkDir> {
    fit_weighted(samples, |_| 1.0)
}

/// Like [`fit`], but minimising the *relative* error of each sample (weights `1/t²`),
/// so that transfers from 4 KiB to 64 MiB count alike: plain least squares lets the
/// milliseconds of the largest transfers swamp the microseconds that fix alpha.
pub(crate) fn fit_relative(samples: &[(u64, f64)]) -> Option<LinkDir> {
    if samples.iter().any(|s| !s.1.is_finite() || s.1 <= 0.0) {
        return None;
    }
    fit_weighted(samples, |t| 1.0 / (t * t))
}

fn fit_weighted(samples: &[(u64, f64)], weight: impl Fn(f64) -> f64) -> Option<LinkDir> {
    if samples.len() < 2 {
        return None;
    }
    let w: Vec<f64> = samples.iter().map(|s| weight(s.1)).collect();
    let sw: f64 = w.iter().sum();
    if !sw.is_finite() || sw <= 0.0 {
        return None;
    }
    let mx = samples
        .iter()
        .zip(&w)
        .map(|(s, w)| w * s.0 as f64)
        .sum::<f64>()
        / sw;
    let my = samples.iter().zip(&w).map(|(s, w)| w * s.1).sum::<f64>() / sw;
    let sxx: f64 = samples
        .iter()
        .zip(&w)
        .map(|(s, w)| w * (s.0 as f64 - mx).powi(2))
        .sum();
    let sxy: f64 = samples
        .iter()
        .zip(&w)
        .map(|(s, w)| w * (s.0 as f64 - mx) * (s.1 - my))
        .sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    if !slope.is_finite() || slope <= 0.0 {
        return None;
    }
    let alpha = (my - slope * mx).max(0.0);
    Some(LinkDir {
        alpha_s: alpha,
        beta_bytes_per_s: 1.0 / slope,
    })
}

/// Transfer sizes a calibration measures: 4 KiB to 64 MiB, by factors of 4.
pub(crate) const SIZES: [u64; 8] = [
    4 << 10,
    16 << 10,
    64 << 10,
    256 << 10,
    1 << 20,
    4 << 20,
    16 << 20,
    64 << 20,
];

/// A calibration older than this (30 days) is measured again.
pub(crate) const MAX_AGE_S: u64 = 30 * 24 * 3600;

/// Bumped when the file's layout or the measuring method changes.
const FORMAT: u32 = 1;

/// A GPU's fitted link and dispatch overhead, with the samples they were fitted to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Calibration {
    /// The fitted link, both directions.
    pub link: Link,
    /// Seconds to submit and wait for an empty dispatch.
    pub dispatch_s: f64,
    /// Measured uploads: (bytes, seconds), the fastest of a few runs per size.
    pub up_samples: Vec<(u64, f64)>,
    /// Measured downloads: (bytes, seconds).
    pub down_samples: Vec<(u64, f64)>,
    /// When it was measured, seconds since the Unix epoch.
    pub measured_unix_s: u64,
    /// Whether this process loaded it from disk rather than measuring it.
    #[serde(skip)]
    pub reloaded: bool,
    /// Where it is stored (empty when it could not be written).
    #[serde(skip)]
    pub path: PathBuf,
}

impl Calibration {
    /// Fits a calibration from measured samples; `None` when either direction cannot
    /// be fitted (fewer than two sizes, time not growing with size).
    pub(crate) fn from_samples(
        up: Vec<(u64, f64)>,
        down: Vec<(u64, f64)>,
        dispatch_s: f64,
        now: u64,
    ) -> Option<Calibration> {
        let link = Link {
            up: fit_relative(&up)?,
            down: fit_relative(&down)?,
        };
        Some(Calibration {
            link,
            dispatch_s,
            up_samples: up,
            down_samples: down,
            measured_unix_s: now,
            reloaded: false,
            path: PathBuf::new(),
        })
    }

    fn is_sane(&self) -> bool {
        let dir_ok = |d: &LinkDir| {
            d.alpha_s.is_finite()
                && d.alpha_s >= 0.0
                && d.beta_bytes_per_s.is_finite()
                && d.beta_bytes_per_s > 0.0
        };
        dir_ok(&self.link.up)
            && dir_ok(&self.link.down)
            && self.dispatch_s.is_finite()
            && self.dispatch_s >= 0.0
    }
}

/// Who a calibration belongs to: the file is named after it, and a file for another
/// key (or crate version) is not used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Key {
    pub(crate) adapter: String,
    pub(crate) backend: String,
    pub(crate) driver: String,
    pub(crate) crate_version: String,
}

impl Key {
    /// The key for this adapter and this build of the crate.
    pub(crate) fn new(adapter: &str, backend: &str, driver: &str) -> Key {
        Key {
            adapter: adapter.into(),
            backend: backend.into(),
            driver: driver.into(),
            crate_version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    pub(crate) fn path(&self, dir: &Path) -> PathBuf {
        let stem = format!("link-{}-{}-{}", self.adapter, self.backend, self.driver);
        dir.join(crate::cache::file_name(&stem, "json"))
    }
}

#[derive(Serialize, Deserialize)]
struct File {
    format: u32,
    key: Key,
    calibration: Calibration,
}

/// What happened to the stored calibration.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// Reloaded; nothing measured.
    Reloaded,
    /// No file: measured and stored.
    Missing,
    /// A file that could not be read or parsed: measured again (a warning).
    Corrupt(String),
    /// A well-formed file that no longer applies: measured again.
    Stale(String),
}

/// The calibration for `key` from `dir`, or `measure()`d and stored there when the
/// file is missing, corrupt or stale (see the module docs). Failing to write the file
/// is a warning too. Only `measure` failing is an error.
pub(crate) fn load_or_measure(
    dir: &Path,
    key: &Key,
    now: u64,
    measure: impl FnOnce() -> Result<Calibration>,
) -> Result<(Calibration, Outcome, Vec<String>)> {
    let path = key.path(dir);
    let mut warnings = Vec::new();
    let outcome = match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Outcome::Missing,
        Err(e) => Outcome::Corrupt(format!("cannot read {}: {e}", path.display())),
        Ok(bytes) => match serde_json::from_slice::<File>(&bytes) {
            Err(e) => Outcome::Corrupt(format!("cannot parse {}: {e}", path.display())),
            Ok(f) => match staleness(&f, key, now) {
                Some(why) => Outcome::Stale(why),
                None => {
                    let mut c = f.calibration;
                    c.reloaded = true;
                    c.path = path;
                    return Ok((c, Outcome::Reloaded, warnings));
                }
            },
        },
    };
    if let Outcome::Corrupt(why) = &outcome {
        warnings.push(format!("link calibration {why}; measuring again"));
    }
    let mut c = measure()?;
    let file = File {
        format: FORMAT,
        key: key.clone(),
        calibration: c.clone(),
    };
    let written = serde_json::to_vec_pretty(&file)
        .map_err(|e| e.to_string())
        .and_then(|b| crate::cache::write_atomic(&path, &b).map_err(|e| e.to_string()));
    match written {
        Ok(()) => c.path = path,
        Err(e) => warnings.push(format!(
            "cannot store link calibration in {}: {e}",
            path.display()
        )),
    }
    Ok((c, outcome, warnings))
}

fn staleness(f: &File, key: &Key, now: u64) -> Option<String> {
    if f.format != FORMAT {
        return Some(format!("file format {} (now {FORMAT})", f.format));
    }
    if f.key.crate_version != key.crate_version {
        return Some(format!(
            "measured by hybrid {} (now {})",
            f.key.crate_version, key.crate_version
        ));
    }
    if f.key != *key {
        return Some("measured for another adapter or driver".into());
    }
    let at = f.calibration.measured_unix_s;
    if at > now.saturating_add(3600) || now.saturating_sub(at) > MAX_AGE_S {
        return Some(format!("measured at {at}, now {now}"));
    }
    if !f.calibration.is_sane() {
        return Some("link parameters out of range".into());
    }
    None
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_unix_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn synthetic(alpha: f64, beta: f64) -> Vec<(u64, f64)> {
        SIZES
            .iter()
            .map(|&b| (b, alpha + b as f64 / beta))
            .collect()
    }

    fn close(got: f64, want: f64) -> bool {
        (got - want).abs() / want < 0.01
    }

    #[test]
    fn recovers_alpha_and_beta_from_exact_samples() {
        let (alpha, beta) = (20e-6, 12.0e9);
        let s: Vec<(u64, f64)> = (12..=26)
            .map(|k| 1u64 << k)
            .map(|b| (b, alpha + b as f64 / beta))
            .collect();
        for f in [fit(&s), fit_relative(&s)] {
            let f = f.unwrap_or_else(|| panic!("no fit"));
            assert!(close(f.alpha_s, alpha), "{f:?}");
            assert!(close(f.beta_bytes_per_s, beta), "{f:?}");
        }
    }

    #[test]
    fn relative_fit_recovers_alpha_under_proportional_noise() {
        // Deterministic +-2% noise, alternating: plain least squares loses alpha to
        // the noise of the 64 MiB sample; the relative fit keeps it within a few %.
        let (alpha, beta) = (30e-6, 6.0e9);
        let s: Vec<(u64, f64)> = synthetic(alpha, beta)
            .into_iter()
            .enumerate()
            .map(|(i, (b, t))| (b, t * if i % 2 == 0 { 1.02 } else { 0.98 }))
            .collect();
        let f = fit_relative(&s).unwrap_or_else(|| panic!("no fit"));
        assert!((f.alpha_s - alpha).abs() / alpha < 0.05, "{f:?}");
        assert!((f.beta_bytes_per_s - beta).abs() / beta < 0.03, "{f:?}");
    }

    #[test]
    fn degenerate_samples_give_none() {
        assert!(fit(&[]).is_none());
        assert!(fit(&[(4096, 1e-5)]).is_none());
        assert!(fit(&[(4096, 1e-5), (4096, 2e-5)]).is_none());
        assert!(fit(&[(4096, 2e-5), (8192, 1e-5)]).is_none());
        assert!(fit_relative(&[(4096, 0.0), (8192, 1e-5)]).is_none());
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "hybrid-calibrate-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn key() -> Key {
        Key::new("Test GPU / 1", "vulkan", "mesa 25.0")
    }

    const NOW: u64 = 1_700_000_000;

    /// A measurement that counts how often it runs.
    fn measure(count: &Cell<u32>) -> Result<Calibration> {
        count.set(count.get() + 1);
        Calibration::from_samples(synthetic(20e-6, 5e9), synthetic(40e-6, 4e9), 1e-5, NOW)
            .ok_or_else(|| crate::Error::InvalidKernel {
                reason: "unfittable".into(),
            })
    }

    #[test]
    fn missing_then_reloaded_without_measuring() {
        let dir = temp_dir("reload");
        let n = Cell::new(0);
        let (c, o, w) =
            load_or_measure(&dir, &key(), NOW, || measure(&n)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((o, n.get(), w.len()), (Outcome::Missing, 1, 0));
        assert!(!c.reloaded && c.path.exists());
        assert!(close(c.link.up.alpha_s, 20e-6) && close(c.link.down.beta_bytes_per_s, 4e9));
        let (c2, o, w) = load_or_measure(&dir, &key(), NOW + 60, || measure(&n))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((o, n.get(), w.len()), (Outcome::Reloaded, 1, 0));
        assert!(c2.reloaded);
        // JSON keeps floats to within an ulp or so.
        assert!(close(c2.link.down.alpha_s, c.link.down.alpha_s));
        assert!(close(
            c2.link.up.beta_bytes_per_s,
            c.link.up.beta_bytes_per_s
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn corrupt_file_is_a_warning_and_measured_again() {
        let dir = temp_dir("corrupt");
        let n = Cell::new(0);
        let path = key().path(&dir);
        for junk in [&b"{ not json"[..], b"", b"\xff\xfe\x00", b"{\"format\": 1}"] {
            crate::cache::write_atomic(&path, junk).unwrap_or_else(|e| panic!("{e}"));
            let before = n.get();
            let (_, o, w) = load_or_measure(&dir, &key(), NOW, || measure(&n))
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(matches!(o, Outcome::Corrupt(_)), "{o:?}");
            assert_eq!(n.get(), before + 1);
            assert_eq!(w.len(), 1, "{w:?}");
            // Repaired: the next load reloads.
            let (_, o, _) = load_or_measure(&dir, &key(), NOW, || measure(&n))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(o, Outcome::Reloaded);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn stale_files_are_measured_again() {
        let dir = temp_dir("stale");
        let n = Cell::new(0);
        let path = key().path(&dir);
        let good = measure(&n).unwrap_or_else(|e| panic!("{e}"));
        let write = |k: Key, format: u32, c: Calibration| {
            let f = File {
                format,
                key: k,
                calibration: c,
            };
            let b = serde_json::to_vec(&f).unwrap_or_default();
            crate::cache::write_atomic(&path, &b).unwrap_or_else(|e| panic!("{e}"));
        };
        let old_version = Key {
            crate_version: "0.0.1".into(),
            ..key()
        };
        let other_driver = Key {
            driver: "mesa 24".into(),
            ..key()
        };
        let mut old = good.clone();
        old.measured_unix_s = NOW - MAX_AGE_S - 1;
        let mut insane = good.clone();
        insane.link.up.beta_bytes_per_s = -1.0;
        let cases = [
            (old_version, FORMAT, good.clone(), "hybrid 0.0.1"),
            (other_driver, FORMAT, good.clone(), "another adapter"),
            (key(), FORMAT + 1, good.clone(), "format"),
            (key(), FORMAT, old, "measured at"),
            (key(), FORMAT, insane, "out of range"),
        ];
        for (k, format, c, why) in cases {
            write(k, format, c);
            let before = n.get();
            let (c, o, w) = load_or_measure(&dir, &key(), NOW, || measure(&n))
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(matches!(&o, Outcome::Stale(s) if s.contains(why)), "{o:?}");
            assert!(w.is_empty(), "stale is not a warning: {w:?}");
            assert_eq!(n.get(), before + 1);
            assert!(!c.reloaded);
            // The new file carries this crate's version.
            let f: File = serde_json::from_slice(&std::fs::read(&path).unwrap_or_default())
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(f.key, key());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unwritable_dir_is_a_warning() {
        let dir = temp_dir("unwritable");
        // A file where the directory should be.
        let _ = std::fs::create_dir_all(dir.parent().unwrap_or(Path::new(".")));
        let _ = std::fs::write(&dir, b"x");
        let n = Cell::new(0);
        let (c, o, w) =
            load_or_measure(&dir, &key(), NOW, || measure(&n)).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(o, Outcome::Corrupt(_)), "{o:?}");
        assert_eq!(n.get(), 1);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(c.path.as_os_str().is_empty());
        let _ = std::fs::remove_file(&dir);
    }
}
