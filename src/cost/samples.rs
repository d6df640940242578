//! Measurements and their fits: recent `(elements, seconds)` samples, fitted to
//! `t(n) = overhead + n / rate` by least squares weighted by recency.

use serde::{Deserialize, Serialize};

use super::{Cost, Fit};

/// Samples kept per model.
pub(crate) const WINDOW: usize = 24;
/// Weight of a sample relative to the next newer one.
pub(crate) const FORGET: f64 = 0.75;

/// Recent `(elements, seconds)` samples, newest last.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Samples(Vec<(f64, f64)>);

impl Samples {
    pub(crate) fn push(&mut self, n: usize, t: f64) {
        if n == 0 || t.is_nan() || t <= 0.0 || !t.is_finite() {
            return;
        }
        if self.0.len() == WINDOW {
            self.0.remove(0);
        }
        self.0.push((n as f64, t));
    }

    /// Recency-weighted least squares. With one size only (or a fit that would need a
    /// negative overhead or rate) the line goes through the origin instead.
    pub(crate) fn fit(&self) -> Option<Fit> {
        if self.0.is_empty() {
            return None;
        }
        let k = self.0.len();
        let w = |i: usize| FORGET.powi((k - 1 - i) as i32);
        let (mut sw, mut sx, mut sy) = (0.0, 0.0, 0.0);
        for (i, &(x, y)) in self.0.iter().enumerate() {
            sw += w(i);
            sx += w(i) * x;
            sy += w(i) * y;
        }
        let (mx, my) = (sx / sw, sy / sw);
        let (mut sxx, mut sxy) = (0.0, 0.0);
        for (i, &(x, y)) in self.0.iter().enumerate() {
            sxx += w(i) * (x - mx) * (x - mx);
            sxy += w(i) * (x - mx) * (y - my);
        }
        if sxx > 1e-9 * mx * mx * sw {
            let slope = sxy / sxx;
            let fixed = my - slope * mx;
            if slope > 0.0 && fixed >= 0.0 {
                return Some(Fit {
                    fixed_s: fixed,
                    per_elem_s: slope,
                });
            }
        }
        // through the origin: slope = sum(w x y) / sum(w x x)
        let (mut num, mut den) = (0.0, 0.0);
        for (i, &(x, y)) in self.0.iter().enumerate() {
            num += w(i) * x * y;
            den += w(i) * x * x;
        }
        (den > 0.0 && num > 0.0).then(|| Fit {
            fixed_s: 0.0,
            per_elem_s: num / den,
        })
    }
}

impl Samples {
    /// How much longer the measured runs took than `cost` predicts for them: the
    /// recency-weighted mean of measured / predicted, clamped to `1/8..=8`; 1 with no
    /// samples. The pipeline model assumes its stages overlap perfectly and that the
    /// compute stage is seen in full; where either is false (a software GPU's stages
    /// share the CPU's cores; a driver that hides compute from the host) the whole
    /// runs say by how much, and the prediction is scaled to match them.
    pub(crate) fn ratio_to(&self, cost: &Cost) -> f64 {
        let k = self.0.len();
        let (mut sw, mut sr) = (0.0, 0.0);
        for (i, &(n, t)) in self.0.iter().enumerate() {
            let p = cost.work_s(n as usize);
            if p > 0.0 && t > 0.0 {
                let w = FORGET.powi((k - 1 - i) as i32);
                sw += w;
                sr += w * (t / p).ln();
            }
        }
        if sw == 0.0 {
            return 1.0;
        }
        (sr / sw).exp().clamp(0.125, 8.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_recovers_overhead_and_rate() {
        let mut s = Samples::default();
        for n in [1000usize, 4000, 16_000, 64_000, 256_000] {
            s.push(n, 20e-6 + n as f64 / 2e9);
        }
        let f = s.fit().unwrap_or_else(|| panic!("no fit"));
        assert!((f.fixed_s - 20e-6).abs() < 1e-9, "{f:?}");
        assert!((f.per_elem_s - 0.5e-9).abs() < 1e-14, "{f:?}");
    }

    #[test]
    fn fit_follows_a_device_that_slows_down() {
        let mut s = Samples::default();
        for _ in 0..WINDOW {
            for n in [100_000usize, 1_000_000] {
                s.push(n, n as f64 / 2e9);
            }
        }
        for n in [1_000_000usize, 500_000, 1_000_000, 250_000] {
            s.push(n, n as f64 / 1e9);
        }
        let f = s.fit().unwrap_or_else(|| panic!("no fit"));
        let rate = 1.0 / f.per_elem_s;
        assert!(rate < 1.3e9, "after four slow runs the rate is {rate}");
    }

    #[test]
    fn one_size_goes_through_the_origin() {
        let mut s = Samples::default();
        s.push(1000, 1e-6);
        assert_eq!(
            s.fit(),
            Some(Fit {
                fixed_s: 0.0,
                per_elem_s: 1e-9
            })
        );
        assert_eq!(Samples::default().fit(), None);
    }
}
