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
}
