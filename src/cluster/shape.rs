//! Shaped links: making loopback look like a network, for tests and experiments.
//!
//! Every rank of a job on one machine shares its memory, so MPI's loopback moves data
//! far faster than a real network would. A [`Shape`] makes each transfer between given
//! ranks take `alpha + bytes / beta` of wall time: the sender stamps the message with
//! the host clock (`CLOCK_REALTIME`, [`SystemTime`]) when it starts sending, and the
//! receiver, once it has the whole message, sleeps until `stamp + alpha + bytes / beta`,
//! or, when the previous message from the same sender is still on the link, until
//! that one's end plus `bytes / beta` (one link per pair: latencies overlap, bandwidth
//! is shared).
//! One host clock is what makes this exact: shaping across machines would need their
//! clocks synchronised, and is not what it is for.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// The environment variable a shape is read from: `alpha_s:beta_bytes_per_s`, for every
/// link, or `alpha_s:beta_bytes_per_s@r1,r2` for the links that touch ranks `r1`, `r2`
/// (e.g. `1e-3:1e8` is 1 ms and 100 MB/s). Empty or `off`: no shaping.
pub const SHAPE_VAR: &str = "HYBRID_CLUSTER_SHAPE";

/// A shaped link: each transfer between the ranks it covers takes `alpha + bytes/beta`.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// Seconds added to every transfer.
    pub alpha_s: f64,
    /// Bytes per second.
    pub beta_bytes_per_s: f64,
    /// The ranks whose transfers are shaped (a transfer is shaped when either end is
    /// listed); `None`: every transfer.
    pub ranks: Option<Vec<usize>>,
}

impl Shape {
    /// Every transfer takes `alpha_s + bytes / beta_bytes_per_s`.
    pub fn new(alpha_s: f64, beta_bytes_per_s: f64) -> Shape {
        Shape {
            alpha_s,
            beta_bytes_per_s,
            ranks: None,
        }
    }

    /// Only transfers to or from these ranks are shaped.
    pub fn ranks(mut self, ranks: &[usize]) -> Shape {
        self.ranks = Some(ranks.to_vec());
        self
    }

    /// Whether a transfer between `a` and `b` is shaped.
    pub(crate) fn covers(&self, a: usize, b: usize) -> bool {
        a != b
            && self
                .ranks
                .as_ref()
                .is_none_or(|r| r.contains(&a) || r.contains(&b))
    }

    /// Seconds a transfer of `bytes` takes on this link.
    pub(crate) fn time_s(&self, bytes: u64) -> f64 {
        self.alpha_s + bytes as f64 / self.beta_bytes_per_s
    }

    /// The shape in [`SHAPE_VAR`], if set: `Ok(None)` when unset, empty or `off`.
    pub fn from_env() -> Result<Option<Shape>> {
        match std::env::var(SHAPE_VAR) {
            Ok(v) => Shape::parse(&v).ok_or(Error::BadEnvironment {
                var: SHAPE_VAR,
                value: v,
            }),
            Err(_) => Ok(None),
        }
    }

    /// Parses `alpha:beta[@r1,r2,...]`; `Some(None)` for empty or `off`, `None` when
    /// malformed (a non-positive beta, a negative alpha, a rank that is not a number).
    pub(crate) fn parse(v: &str) -> Option<Option<Shape>> {
        let v = v.trim();
        if v.is_empty() || v == "off" {
            return Some(None);
        }
        let (link, ranks) = match v.split_once('@') {
            Some((l, r)) => (l, Some(r)),
            None => (v, None),
        };
        let (a, b) = link.split_once(':')?;
        let alpha_s: f64 = a.trim().parse().ok()?;
        let beta: f64 = b.trim().parse().ok()?;
        if !(alpha_s.is_finite() && alpha_s >= 0.0 && beta.is_finite() && beta > 0.0) {
            return None;
        }
        let mut shape = Shape::new(alpha_s, beta);
        if let Some(r) = ranks {
            let list: Option<Vec<usize>> = r.split(',').map(|x| x.trim().parse().ok()).collect();
            shape.ranks = Some(list?);
        }
        Some(Some(shape))
    }

    /// A short description, e.g. `1.00 ms + bytes / 100 MB/s`, for reports and the
    /// key the link calibration is stored under.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} + bytes / {:.0} MB/s",
            crate::report::secs(self.alpha_s),
            self.beta_bytes_per_s / 1e6
        );
        if let Some(r) = &self.ranks {
            s += &format!(" on ranks {r:?}");
        }
        s
    }
}

/// Nanoseconds since the Unix epoch on the host clock (0 before it).
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Sleeps until the host clock reads `deadline_ns`: a coarse sleep to 200 us before
/// it, then yields, so the overshoot is microseconds rather than a timer slack.
pub(crate) fn sleep_until_ns(deadline_ns: u64) {
    loop {
        let now = now_ns();
        if now >= deadline_ns {
            return;
        }
        let left = deadline_ns - now;
        if left > 200_000 {
            std::thread::sleep(Duration::from_nanos(left - 200_000));
        } else {
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_refuses_nonsense() {
        assert_eq!(Shape::parse(""), Some(None));
        assert_eq!(Shape::parse("off"), Some(None));
        assert_eq!(Shape::parse("1e-3:1e8"), Some(Some(Shape::new(1e-3, 1e8))));
        let s = Shape::parse("0.002:1e9@1, 3").flatten();
        assert_eq!(s, Some(Shape::new(2e-3, 1e9).ranks(&[1, 3])));
        for bad in [
            "1e-3",
            "x:1e8",
            "1e-3:0",
            "-1:1e8",
            "1e-3:1e8@a",
            "1e-3:inf",
        ] {
            assert_eq!(Shape::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn covers_the_listed_ranks_only() {
        let all = Shape::new(1e-3, 1e8);
        assert!(all.covers(0, 1) && all.covers(2, 0) && !all.covers(1, 1));
        let one = all.clone().ranks(&[2]);
        assert!(one.covers(0, 2) && one.covers(2, 0) && !one.covers(0, 1));
        assert!((all.time_s(100_000_000) - 1.001).abs() < 1e-12);
    }

    #[test]
    fn sleeps_to_the_deadline_not_far_past_it() {
        let start = now_ns();
        sleep_until_ns(start + 3_000_000);
        let late = now_ns() - start;
        assert!(late >= 3_000_000, "{late}");
        assert!(
            late < 3_000_000 + 2_000_000,
            "{late} ns: far past the deadline"
        );
    }
}
