//! Fitting a link model from measured transfers: least squares on `t = alpha + b / beta`.

use super::LinkDir;

/// Fits `t = alpha + bytes / beta` to `(bytes, seconds)` samples by ordinary least
/// squares on `t = alpha + slope * bytes`. Returns `None` with fewer than two distinct
/// sizes or a non-positive slope (no bandwidth can be inferred). A negative intercept
/// (noise on tiny transfers) is clamped to 0.
pub(crate) fn fit(samples: &[(u64, f64)]) -> Option<LinkDir> {
    let n = samples.len() as f64;
    if samples.len() < 2 {
        return None;
    }
    let mx = samples.iter().map(|s| s.0 as f64).sum::<f64>() / n;
    let my = samples.iter().map(|s| s.1).sum::<f64>() / n;
    let sxx: f64 = samples.iter().map(|s| (s.0 as f64 - mx).powi(2)).sum();
    let sxy: f64 = samples.iter().map(|s| (s.0 as f64 - mx) * (s.1 - my)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    if !(slope > 0.0) || !slope.is_finite() {
        return None;
    }
    let alpha = (my - slope * mx).max(0.0);
    Some(LinkDir {
        alpha_s: alpha,
        beta_bytes_per_s: 1.0 / slope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_alpha_and_beta_from_exact_samples() {
        let (alpha, beta) = (20e-6, 12.0e9);
        let s: Vec<(u64, f64)> = (12..=26)
            .map(|k| 1u64 << k)
            .map(|b| (b, alpha + b as f64 / beta))
            .collect();
        let f = fit(&s).unwrap_or_else(|| panic!("no fit"));
        assert!((f.alpha_s - alpha).abs() / alpha < 0.01, "{f:?}");
        assert!((f.beta_bytes_per_s - beta).abs() / beta < 0.01, "{f:?}");
    }

    #[test]
    fn degenerate_samples_give_none() {
        assert!(fit(&[]).is_none());
        assert!(fit(&[(4096, 1e-5)]).is_none());
        assert!(fit(&[(4096, 1e-5), (4096, 2e-5)]).is_none());
        assert!(fit(&[(4096, 2e-5), (8192, 1e-5)]).is_none());
    }
}
