//! Each network link from the root, measured and fitted as the PCI links are.
//!
//! The root sends a payload of `b` bytes to rank `r`, which sends it straight back
//! (ping-pong), for sizes from 4 KiB to 4 MiB by factors of 4, the fastest of
//! [`REPS`] round trips per size; half a round trip is one transfer each way. The
//! samples are fitted to `t = alpha + bytes / beta` by the transfer layer's own
//! least squares ([`fit_relative`](crate::transfer::calibrate::fit_relative), relative
//! error, so microsecond and millisecond samples count alike) and stored like a GPU's
//! link ([`load_or_measure`]): one file per pair of hosts and ranks, keyed by the MPI
//! library and the link's shape, reloaded for 30 days. Ping-pong cannot tell the two
//! directions apart, so both get the one fit.

use super::wire::{Channel, Wire};
use crate::error::Result;
use crate::transfer::calibrate::{load_or_measure, now_unix_s, Calibration, Key};

/// Payload sizes measured, in bytes.
pub(crate) const SIZES: [u64; 6] = [4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20];
/// Round trips per size; the fastest counts.
pub(crate) const REPS: usize = 5;

/// The calibration channel's tag, and its one control message.
pub(crate) const TAG: i32 = 40;
const DONE: u32 = 0xD0E;

/// The root's side: rank `r`'s link, reloaded or measured (`fresh`: measured even if
/// stored), stored in `dir`. `who` names the pair for the file (hosts and ranks), `how` the MPI
/// library and the shape. Every rank `r` runs [`pong`] at the same time.
pub(crate) fn measure<W: Wire>(
    ch: &Channel<W>,
    r: usize,
    dir: &std::path::Path,
    who: &str,
    how: &str,
    fresh: bool,
) -> Result<(Calibration, Vec<String>)> {
    let key = Key::new(who, "mpi", how);
    if fresh {
        let _ = std::fs::remove_file(key.path(dir));
    }
    let got = load_or_measure(dir, &key, now_unix_s(), || spinning(ch, || ping(ch, r)));
    // whatever happened, rank r stops answering
    ch.send(r, TAG, &[DONE]);
    let (c, _, warnings) = got?;
    Ok((c, warnings))
}

/// Runs `f` with the channel's waits spinning throughout (a nap would round a
/// microsecond round trip up to a hundred).
fn spinning<W: Wire, R>(ch: &Channel<W>, f: impl FnOnce() -> R) -> R {
    let before = ch.spin.replace(std::time::Duration::from_secs(3600));
    let r = f();
    ch.spin.set(before);
    r
}

/// Measures the round trips to `r` and fits them: by relative error, or, when noise
/// on the smallest sizes leaves that with no positive slope, by plain least squares.
fn ping<W: Wire>(ch: &Channel<W>, r: usize) -> Result<Calibration> {
    let mut samples = Vec::with_capacity(SIZES.len());
    for &bytes in &SIZES {
        let payload = vec![0x5a5a_5a5au32; (bytes / 4) as usize];
        let mut best = f64::INFINITY;
        for _ in 0..REPS {
            let t = std::time::Instant::now();
            ch.send(r, TAG, &payload);
            ch.recv(r, TAG)?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        samples.push((bytes, best / 2.0));
    }
    let now = now_unix_s();
    Calibration::from_samples(samples.clone(), samples.clone(), 0.0, now)
        .or_else(|| {
            let d = crate::transfer::calibrate::fit(&samples)?;
            Some(Calibration {
                link: crate::transfer::Link { up: d, down: d },
                dispatch_s: 0.0,
                up_samples: samples.clone(),
                down_samples: samples.clone(),
                measured_unix_s: now,
                reloaded: false,
                path: std::path::PathBuf::new(),
            })
        })
        .ok_or(crate::error::Error::Cluster {
            rank: r,
            message: "link samples could not be fitted (time did not grow with size)".into(),
        })
}

/// Rank `r`'s side: sends back every payload until the root says it is done.
pub(crate) fn pong<W: Wire>(ch: &Channel<W>) -> Result<()> {
    spinning(ch, || loop {
        let m = ch.recv(0, TAG)?;
        if m.words == [DONE] {
            return Ok(());
        }
        ch.send(0, TAG, &m.words);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::shape::Shape;
    use crate::cluster::wire::tests::ThreadWire;
    use std::time::Duration;

    /// Over a shaped link (1 ms, 100 MB/s) the fit finds the injected alpha and beta
    /// within 20%, the bound (`tests/cluster_mpi.rs` checks it over MPI too).
    #[test]
    fn ping_pong_over_a_shaped_link_recovers_alpha_and_beta() {
        let dir = std::env::temp_dir().join(format!("hybrid-cluster-link-{}", std::process::id()));
        let shape = Shape::new(1e-3, 1e8);
        let mut w = ThreadWire::mesh(2).into_iter();
        let (Some(a), Some(b)) = (w.next(), w.next()) else {
            panic!("mesh")
        };
        let mk = |w| {
            let mut c = Channel::new(w, Duration::from_secs(10));
            c.shape = Some(shape.clone());
            c
        };
        let (root, one) = (mk(a), mk(b));
        let t = std::thread::spawn(move || pong(&one));
        let (c, _) = measure(&root, 1, &dir, "test host0 r0 to host1 r1", "shaped", true)
            .unwrap_or_else(|e| panic!("{e}"));
        t.join()
            .unwrap_or_else(|_| panic!("pong"))
            .unwrap_or_else(|e| panic!("{e}"));
        let (a, b) = (c.link.up.alpha_s, c.link.up.beta_bytes_per_s);
        assert!((a - 1e-3).abs() < 0.2e-3, "alpha {a}");
        assert!((b - 1e8).abs() < 0.2e8, "beta {b}");
        assert!(c.path.exists(), "stored like a PCI link");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
