//! The transfer layer: round trips of every length class are bit-exact, the pool
//! reuses its buffers, the receipt carries measured and predicted transfer times and
//! every device's stage times, and link calibration files are reloaded, or re-measured
//! when missing, corrupt or old.
//!
//! GPU tests skip with a printed reason when there is no GPU, and fail instead when
//! `HYBRID_REQUIRE_GPU=1` (`common::gpu_runtime_with`). The 3 GiB streamed map takes
//! about 30 s on lavapipe and 7 GiB of memory (input and output are 6 GiB); it skips
//! when less than 10 GiB is available, or with `HYBRID_SKIP_BIG_TESTS=1`.

mod common;

use std::path::PathBuf;

use hybrid::{fold, Expr, Kernel, Placement, Runtime, TransferConfig};

/// A fresh directory under the system temp dir, unique to this test.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hybrid-transfer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A runtime with a GPU and this transfer configuration (its calibration cached in a
/// temp dir unless the configuration names one), with the index of its first GPU;
/// `None` when the test must skip (see `common::gpu_runtime_with`).
fn gpu(cfg: TransferConfig) -> Option<(Runtime, usize)> {
    let cfg = TransferConfig {
        cache_dir: cfg.cache_dir.or_else(|| Some(temp_dir("shared-cache"))),
        ..cfg
    };
    let rt = common::gpu_runtime_with(|| Runtime::builder().transfer(cfg).build())?;
    let dev = rt.devices().iter().position(|d| d.kind.is_gpu())?;
    Some((rt, dev))
}

fn small_chunks() -> TransferConfig {
    TransferConfig {
        chunk_bytes: Some(64 << 10),
        ring: Some(3),
        ..Default::default()
    }
}

/// A pattern where every element differs and every bit position toggles.
fn pattern(n: usize, seed: u32) -> Vec<u32> {
    (0..n as u32)
        .map(|i| (i ^ seed).wrapping_mul(0x9e37_79b9).rotate_left(i % 32))
        .collect()
}

fn first_difference(a: &[u32], b: &[u32]) -> Option<usize> {
    if a.len() != b.len() {
        return Some(a.len().min(b.len()));
    }
    a.iter().zip(b).position(|(x, y)| x != y)
}

/// Lavapipe's largest storage binding, in 4-byte elements (128 MiB).
const BINDING_ELEMS: usize = 32 << 20;

/// Every length class: empty, one, 4 KiB +- 1, a binding +- 1 element, several chunks,
/// and a streamed size of many more chunks than ring slots.
fn round_trip_lengths(rt: &Runtime, dev: usize, lengths: &[usize], what: &str) {
    for &n in lengths {
        let src = pattern(n, n as u32);
        let mut dst = vec![0u32; n];
        let t = rt
            .transfer(dev, Some(&src), Some(&mut dst))
            .unwrap_or_else(|e| panic!("{what}: round trip of {n}: {e}"));
        if let Some(i) = first_difference(&src, &dst) {
            panic!("{what}: round trip of {n}: element {i} differs");
        }
        assert_eq!(t.bytes_up, 4 * n as u64, "{what}: {n}");
        assert_eq!(t.bytes_down, 4 * n as u64, "{what}: {n}");
        // A kernel's data takes the same path.
        let k = Kernel::map(|x: Expr<u32>| x ^ 0x5555_5555u32);
        let run = rt
            .map(&src, &k, Placement::Gpu)
            .unwrap_or_else(|e| panic!("{what}: map of {n}: {e}"));
        let want: Vec<u32> = src.iter().map(|x| x ^ 0x5555_5555).collect();
        if let Some(i) = first_difference(&run.output, &want) {
            panic!("{what}: map of {n}: element {i} differs");
        }
    }
}

#[test]
fn round_trips_of_small_and_chunked_lengths_are_exact() {
    let Some((rt, dev)) = gpu(small_chunks()) else {
        return;
    };
    let chunk = 16 << 10; // elements per 64 KiB chunk
    round_trip_lengths(
        &rt,
        dev,
        &[
            0,
            1,
            1023,
            1024,
            1025,
            chunk - 1,
            chunk,
            chunk + 1,
            3 * chunk + 7,
            // Streamed: 40 chunks through a ring of 3.
            40 * chunk - 3,
        ],
        "64 KiB chunks",
    );
}

#[test]
fn round_trips_at_the_binding_limit_are_exact() {
    let Some((rt, dev)) = gpu(TransferConfig {
        chunk_bytes: Some(u64::MAX),
        ..Default::default()
    }) else {
        return;
    };
    // Chunks as large as the adapter allows: the limit itself, one over (two chunks)
    // and one under.
    round_trip_lengths(
        &rt,
        dev,
        &[BINDING_ELEMS - 1, BINDING_ELEMS, BINDING_ELEMS + 1],
        "largest chunks",
    );
}

#[test]
fn uploads_and_downloads_alone() {
    let Some((rt, dev)) = gpu(small_chunks()) else {
        return;
    };
    let src = pattern(100_000, 7);
    let up = rt
        .transfer(dev, Some(&src), None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((up.bytes_up, up.bytes_down), (400_000, 0));
    assert!(up.chunks >= 6, "{up:?}");
    let mut dst = vec![1u32; 100_000];
    let down = rt
        .transfer(dev, None, Some(&mut dst))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((down.bytes_up, down.bytes_down), (0, 400_000));
    let mut short = vec![0u32; 3];
    assert!(rt.transfer(dev, Some(&src), Some(&mut short)).is_err());
    // The CPU has no link.
    if let Some(cpu) = rt.devices().iter().position(|d| !d.kind.is_gpu()) {
        assert!(rt.transfer(cpu, Some(&src), None).is_err());
    }
}

#[test]
fn pool_reuses_buffers_and_the_receipt_shows_the_transfer() {
    let Some((rt, _)) = gpu(small_chunks()) else {
        return;
    };
    let xs: Vec<f32> = (0..300_000).map(|i| i as f32).collect();
    let k = Kernel::map(|x: Expr<f32>| x * 2.0);
    let k2 = Kernel::map(|x: Expr<f32>| x + 1.0);
    let first = rt
        .map(&xs, &k, Placement::Gpu)
        .unwrap_or_else(|e| panic!("{e}"));
    let s = &first.report.shares()[0];
    assert!(s.transfer().allocations > 0);
    for kernel in [&k, &k2, &k] {
        let run = rt
            .map(&xs, kernel, Placement::Gpu)
            .unwrap_or_else(|e| panic!("{e}"));
        let s = &run.report.shares()[0];
        let t = s.transfer();
        assert_eq!(t.allocations, 0, "buffers reused once warm: {t:?}");
        assert_eq!(t.chunks, s.chunks());
        assert_eq!(t.chunks, 19, "300,000 elements in 64 KiB chunks");
        assert_eq!((t.ring, t.chunk_bytes), (3, 64 << 10));
        assert_eq!(t.bytes_up, 1_200_000);
        assert_eq!(t.bytes_down, 1_200_000);
        assert!(t.fill_s > 0.0 && t.readback_s > 0.0, "{t:?}");
        assert!(t.predicted_up_s > 0.0 && t.predicted_down_s > 0.0, "{t:?}");
        assert!(t.up_gbps() > 0.0 && t.down_gbps() > 0.0, "{t:?}");
        let shown = run.report.to_string();
        assert!(
            shown.contains("19 chunk(s)") && shown.contains("predicted"),
            "{shown}"
        );
    }
}

fn calibrated(dir: &std::path::Path) -> Option<hybrid::Calibration> {
    let (rt, _) = gpu(TransferConfig {
        cache_dir: Some(dir.to_path_buf()),
        ..Default::default()
    })?;
    let cals = rt.calibrations();
    assert_eq!(cals.len(), 1, "one gpu, one calibration");
    let links = rt.links();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].1, cals[0].1.link);
    Some(cals[0].1.clone())
}

#[test]
fn calibration_is_stored_reloaded_and_remeasured_when_bad() {
    let dir = temp_dir("calibration");
    // Missing: measured and stored.
    let Some(first) = calibrated(&dir) else {
        return;
    };
    assert!(!first.reloaded);
    assert!(first.path.starts_with(&dir) && first.path.exists());
    for d in [first.link.up, first.link.down] {
        assert!(d.alpha_s >= 0.0 && d.beta_bytes_per_s > 1e6, "{d:?}");
    }
    assert_eq!(first.up_samples.len(), 8, "4 KiB to 64 MiB");
    // Reloaded by the next runtime: nothing measured.
    let again = calibrated(&dir).unwrap_or_else(|| panic!("gpu vanished"));
    assert!(again.reloaded);
    assert_eq!(again.measured_unix_s, first.measured_unix_s);
    assert_eq!(again.up_samples, first.up_samples);

    // Corrupt: a warning, measured again, and the file is whole again.
    std::fs::write(&first.path, b"{ this is not json").unwrap_or_else(|e| panic!("{e}"));
    let repaired = calibrated(&dir).unwrap_or_else(|| panic!("gpu vanished"));
    assert!(!repaired.reloaded);
    let text = std::fs::read_to_string(&first.path).unwrap_or_default();
    assert!(text.contains("crate_version"), "{text}");

    // Written by another crate version: measured again, and stamped with this one.
    let old = text.replace(
        &format!("\"crate_version\": \"{}\"", env!("CARGO_PKG_VERSION")),
        "\"crate_version\": \"0.0.0-old\"",
    );
    assert_ne!(old, text);
    std::fs::write(&first.path, old).unwrap_or_else(|e| panic!("{e}"));
    let remeasured = calibrated(&dir).unwrap_or_else(|| panic!("gpu vanished"));
    assert!(!remeasured.reloaded);
    let text = std::fs::read_to_string(&first.path).unwrap_or_default();
    assert!(!text.contains("0.0.0-old"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bytes of memory available, from /proc/meminfo (None where there is none).
fn available_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A map over 3 GiB of f32 (768M elements), streamed through a bounded ring. Memory
/// held besides input and output: ring x (upload + read-back staging + input and
/// output storage) x chunk = 3 x 4 x 64 MiB = 768 MiB, of which host-mapped staging is
/// 384 MiB (on lavapipe the "device" memory is host memory too).
#[test]
fn map_over_3_gib_streams_through_a_bounded_ring() {
    if std::env::var("HYBRID_SKIP_BIG_TESTS").is_ok_and(|v| v.trim() == "1") {
        eprintln!("skipped: HYBRID_SKIP_BIG_TESTS=1");
        return;
    }
    if available_bytes().is_some_and(|b| b < 10 << 30) {
        eprintln!("skipped: less than 10 GiB of memory available for a 3 GiB map");
        return;
    }
    let Some((rt, _)) = gpu(TransferConfig::default()) else {
        return;
    };
    let n: usize = 3 << 28; // 768M f32 = 3 GiB
    let xs: Vec<f32> = (0..n).map(|i| (i % 1_000_003) as f32).collect();
    let k = Kernel::map(|x: Expr<f32>| x * 2.0 + 1.0);
    let run = rt
        .map(&xs, &k, Placement::Gpu)
        .unwrap_or_else(|e| panic!("{e}"));
    let bad = run
        .output
        .iter()
        .zip(&xs)
        .position(|(y, x)| y.to_bits() != (x * 2.0 + 1.0).to_bits());
    assert_eq!(bad, None, "first wrong element");
    let t = *run.report.shares()[0].transfer();
    println!("{}", run.report);
    assert!(t.chunk_bytes <= 64 << 20 && t.ring <= 3, "{t:?}");
    assert_eq!(t.chunks as usize, n.div_ceil(t.chunk_bytes as usize / 4));
}

/// The compute stage of a compute-heavy share is seen by the host, on every device. On a
/// GPU driver without device timestamps (lavapipe runs the dispatch inside the submit)
/// the time spent there counts as compute, so the stages account for most of the
/// share's time and the scheduler's pipeline model is not fed a near-zero compute time;
/// on the CPU the share is all compute.
#[test]
fn a_compute_heavy_share_reports_its_compute_time() {
    let k =
        Kernel::map(|x: Expr<f32>| fold(64, x, |acc, _| (acc.clone() * acc * 0.5 + 0.25).min(4.0)));
    let xs: Vec<f32> = (0..12 << 20).map(|i| (i % 97) as f32 * 0.01).collect();
    for t in common::targets() {
        // the first call compiles the pipeline
        let _ =
            t.rt.map(&xs, &k, t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"));
        let run =
            t.rt.map(&xs, &k, t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"));
        let s = &run.report.shares()[0];
        assert_eq!(s.kind().is_gpu(), t.uses_gpu(), "{t}\n{}", run.report);
        let staged = s.upload_s() + s.compute_s() + s.download_s();
        assert!(
            s.compute_s() > 0.2 * s.busy_s() && staged > 0.5 * s.busy_s(),
            "{t}: compute {:.3} ms, stages {:.3} ms of {:.3} ms busy\n{}",
            s.compute_s() * 1e3,
            staged * 1e3,
            s.busy_s() * 1e3,
            run.report
        );
    }
}
