//! Where calibration is stored: `HYBRID_CACHE_DIR`, else the user's cache directory
//! (`$XDG_CACHE_HOME/hybrid`, else `$HOME/.cache/hybrid`), else the system temp dir.
//! Files are written atomically (temp file, then rename), so a crash mid-write leaves
//! the previous file whole.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The directory calibration files live in (not created here).
pub(crate) fn dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HYBRID_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("hybrid");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(h).join(".cache").join("hybrid");
    }
    std::env::temp_dir().join("hybrid")
}

/// Writes `bytes` to `path` atomically: a uniquely named temp file in the same
/// directory, flushed, then renamed over `path`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let parent = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(parent)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("cache");
    let tmp = parent.join(format!(
        ".{name}.{}.{:?}.tmp",
        std::process::id(),
        std::thread::current().id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A file name made safe from an arbitrary key (adapter names contain spaces, slashes).
pub(crate) fn file_name(key: &str, ext: &str) -> String {
    let safe: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file() {
        let d = std::env::temp_dir().join(format!("hybrid-cache-test-{}", std::process::id()));
        let p = d.join("x.json");
        write_atomic(&p, b"first").unwrap_or_else(|e| panic!("{e}"));
        write_atomic(&p, b"second").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read(&p).unwrap_or_default(), b"second");
        let leftovers = std::fs::read_dir(&d).map(|r| r.count()).unwrap_or(0);
        assert_eq!(leftovers, 1, "no temp file left behind");
        let _ = std::fs::remove_dir_all(&d);
        assert_eq!(
            file_name("NVIDIA H200 / vulkan 1.3", "json"),
            "NVIDIA_H200___vulkan_1.3.json"
        );
    }

    /// A writer killed mid-write leaves its half-written temp file; the target keeps
    /// the previous whole file, and the next write (same temp name: same process and
    /// thread) replaces the half file and then the target, leaving no temp behind.
    #[test]
    fn a_writer_killed_mid_write_leaves_the_old_file_whole() {
        let d = std::env::temp_dir().join(format!("hybrid-cache-kill-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let p = d.join("link.json");
        let old = br#"{"format":1,"whole":true}"#;
        write_atomic(&p, old).unwrap_or_else(|e| panic!("{e}"));
        // what write_atomic leaves when killed between write_all and rename
        let tmp = d.join(format!(
            ".link.json.{}.{:?}.tmp",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&tmp, &br#"{"format":1,"who"#[..]).unwrap_or_else(|e| panic!("{e}"));
        // and a dead process's
        let other = d.join(".link.json.4242.ThreadId(3).tmp");
        std::fs::write(&other, b"{").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read(&p).unwrap_or_default(), old, "old file whole");
        let new = br#"{"format":1,"whole":"again"}"#;
        write_atomic(&p, new).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read(&p).unwrap_or_default(), new);
        assert!(
            !tmp.exists(),
            "this writer's temp file was renamed over the target"
        );
        assert_eq!(std::fs::read(&other).unwrap_or_default(), b"{", "untouched");
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A write that fails at the rename (the target is a directory) is an error, and
    /// leaves neither a temp file nor anything at the target.
    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let d = std::env::temp_dir().join(format!("hybrid-cache-fail-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let p = d.join("model.json");
        std::fs::create_dir_all(p.join("occupied")).unwrap_or_else(|e| panic!("{e}"));
        assert!(write_atomic(&p, b"{}").is_err());
        assert!(p.is_dir(), "the target was not replaced");
        let names: Vec<_> = std::fs::read_dir(&d)
            .map(|r| r.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("model.json")],
            "no temp left"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
