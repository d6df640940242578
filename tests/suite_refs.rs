//! The benchmark suite's references (`examples/common/suite.rs`) checked against values
//! they do not compute themselves: published prices, tabulated function values, the
//! published area of the Mandelbrot set, conservation laws and hand-worked cases; then
//! each hand-written rayon baseline against its f64 reference at a stated tolerance.
//!
//! Tabulated values marked "mpmath" were computed with mpmath 1.3 at 30 significant
//! digits, an arbitrary-precision implementation independent of this code.

#[path = "../examples/common/suite.rs"]
mod suite;

use suite::*;

/// f32's unit roundoff, 2^-24: the largest relative error of one rounded f32 operation.
const U32: f64 = f32::EPSILON as f64 / 2.0;

fn rel(got: f64, want: f64) -> f64 {
    if want == 0.0 {
        got.abs()
    } else {
        ((got - want) / want).abs()
    }
}

// ---------------------------------------------------------------------------------------
// The normal distribution
// ---------------------------------------------------------------------------------------

#[test]
#[allow(clippy::excessive_precision)] // mpmath's digits, as printed
fn erfc_matches_tabulated_values() {
    // erfc(1) and erfc(2) as given in the brief to 15-16 digits agree with these; the
    // points cover all three of Cody's intervals and negative arguments (mpmath)
    let table = [
        (0.0, 1.0),
        (0.25, 0.723_673_609_831_763_067_01),
        (0.5, 0.479_500_122_186_953_462_32),
        (1.0, 0.157_299_207_050_285_130_66),
        (2.0, 0.004_677_734_981_047_265_837_9),
        (3.5, 7.430_983_723_414_127_455_2e-7),
        (-1.0, 1.842_700_792_949_714_869_3),
        (-2.5, 1.999_593_047_982_555_041_1),
        (4.5, 1.966_160_441_542_887_476_3e-10),
        (6.0, 2.151_973_671_249_891_311_7e-17),
        (10.0, 2.088_487_583_762_544_757e-45),
        (20.0, 5.395_865_611_607_900_928_9e-176),
    ];
    for (x, want) in table {
        let got = erfc_f64(x);
        assert!(
            rel(got, want) <= 1e-15,
            "erfc({x}) = {got:e}, want {want:e} (rel {:e})",
            rel(got, want)
        );
    }
}

/// N's relative condition number, |x phi(x) / N(x)|, grows like x² in the lower tail
/// (about 10 at x = -3), and the argument -x / sqrt 2 is rounded once (1.1e-16), so the
/// tolerance is 1e-15 (1 + x²).
#[test]
#[allow(clippy::excessive_precision)] // mpmath's digits, as printed
fn normal_cdf_matches_tabulated_values() {
    // N(1.96) = 0.975 is the familiar two-sided 95% point; digits from mpmath
    let table = [
        (0.0, 0.5),
        (1.96, 0.975_002_104_851_779_565_86),
        (-3.0, 0.001_349_898_031_630_094_526_7),
        (-8.0, 6.220_960_574_271_784_123_5e-16),
    ];
    for (x, want) in table {
        let got = normal_cdf_f64(x);
        let tol = 1e-15 * (1.0 + x * x);
        assert!(
            rel(got, want) <= tol,
            "N({x}) = {got:e}, want {want:e} (rel {:e})",
            rel(got, want)
        );
    }
}

/// The Abramowitz-Stegun 26.2.17 polynomial is within 7.5e-8 of the CDF in exact
/// arithmetic; evaluating it in f32 adds a few roundings of values up to 1 (6e-8 each),
/// so 1e-6 leaves room without hiding a wrong coefficient (which costs 1e-4 or more).
#[test]
fn abramowitz_stegun_cdf_is_within_1e6_of_the_exact_cdf() {
    let mut worst = (0.0f64, 0.0f32);
    for i in -10_000..=10_000 {
        let x = i as f32 * 1e-3;
        let err = (f64::from(normal_cdf_f32(x)) - normal_cdf_f64(f64::from(x))).abs();
        if err > worst.0 {
            worst = (err, x);
        }
    }
    eprintln!("A&S f32 CDF: worst error {:e} at x = {}", worst.0, worst.1);
    assert!(
        worst.0 <= 1e-6,
        "A&S CDF off by {:e} at x = {}",
        worst.0,
        worst.1
    );
}

// ---------------------------------------------------------------------------------------
// Black-Scholes
// ---------------------------------------------------------------------------------------

/// Hull, Options, Futures and Other Derivatives, the Black-Scholes-Merton example:
/// S = 42, K = 40, r = 10%, sigma = 20%, T = 6 months gives c = 4.76, p = 0.81
/// (4.7594 and 0.8086 to four places).
#[test]
fn black_scholes_matches_hulls_example() {
    let (call, put) = black_scholes_f64(42.0, 40.0, 0.5, 0.1, 0.2);
    assert!((call - 4.7594).abs() <= 1e-4, "call {call}");
    assert!((put - 0.8086).abs() <= 1e-4, "put {put}");
}

/// C - P = S - K e^{-rT} holds exactly in the model; in f64 the two prices each carry a
/// few roundings of terms up to S + K, so 1e-9 of S + K is a loose bound that still
/// catches any wrong sign or term.
#[test]
fn black_scholes_satisfies_put_call_parity() {
    let seed = 101;
    let o = options(10_000, seed);
    let (r, sigma) = (f64::from(BS_RATE), f64::from(BS_VOLATILITY));
    for i in 0..o.spot.len() {
        let (s, k, t) = (
            f64::from(o.spot[i]),
            f64::from(o.strike[i]),
            f64::from(o.years[i]),
        );
        let (call, put) = black_scholes_f64(s, k, t, r, sigma);
        let parity = s - k * (-r * t).exp();
        let err = ((call - put) - parity).abs() / (s + k);
        assert!(
            err <= 1e-9,
            "seed {seed}, option {i} (S {s}, K {k}, T {t}): C - P off by {err:e} of S + K"
        );
    }
}

/// The f32 baseline against the f64 reference on the same inputs. The A&S CDF's 7.5e-8
/// (plus f32 rounding, 2.5e-7 in all) times S + K e^{-rT} (up to 130), and the rounding of
/// the final S N(d1) - K e^{-rT} N(d2) (a half ulp of 100 is 4e-6) bound the error near
/// 3e-5 for these ranges; 1e-4 absolute on prices of up to 30 leaves room for the
/// errors of ln, exp and sqrt in d1 and d2.
#[test]
fn black_scholes_rayon_is_within_1e4_of_f64() {
    let seed = 102;
    let o = options(200_000, seed);
    let (calls, puts) = black_scholes_rayon(&o.spot, &o.strike, &o.years, BS_RATE, BS_VOLATILITY);
    let mut worst = 0.0f64;
    for i in 0..o.spot.len() {
        let (call, put) = black_scholes_f64(
            o.spot[i].into(),
            o.strike[i].into(),
            o.years[i].into(),
            BS_RATE.into(),
            BS_VOLATILITY.into(),
        );
        let err = (f64::from(calls[i]) - call)
            .abs()
            .max((f64::from(puts[i]) - put).abs());
        worst = worst.max(err);
        assert!(
            err <= 1e-4,
            "seed {seed}, option {i}: f32 ({}, {}) vs f64 ({call}, {put})",
            calls[i],
            puts[i]
        );
    }
    eprintln!("black-scholes f32 vs f64: worst absolute error {worst:e}");
}

// ---------------------------------------------------------------------------------------
// Mandelbrot
// ---------------------------------------------------------------------------------------

/// The area of the Mandelbrot set is 1.50659 (1.5065918849 +- 2.8e-9 by Förstemann's
/// pixel counting, 2012). Pixel counting at 1000 x 1000 errs by about a fraction of the
/// boundary pixels' area, and max_iter = 2000 keeps some slowly escaping points in, both
/// well under 0.01: measured 1.50846, 0.0019 above, in about 1 s at opt-level 1.
#[test]
fn mandelbrot_area_matches_the_published_value() {
    let (x0, x1, y0, y1) = MANDELBROT_VIEW;
    let (w, h, max_iter) = (1000, 1000, 2000);
    let counts = mandelbrot_counts_f64(w, h, x0, x1, y0, y1, max_iter);
    let area =
        mandelbrot_area_from_counts(&counts, max_iter, (x1 - x0) * (y1 - y0) / (w * h) as f64);
    eprintln!("mandelbrot area at {w} x {h}, max_iter {max_iter}: {area}");
    assert!((area - 1.5066).abs() <= 0.01, "area {area}");
}

#[test]
fn mandelbrot_counts_known_points() {
    // a 1 x 1 grid samples the centre of its square: c = 0 never escapes, c = 1 escapes
    // after 0, 1, 2, 5 (|5|² > 4): 3 steps, c = -2 stays at 2 (|2|² = 4 is not > 4)
    assert_eq!(
        mandelbrot_counts_f64(1, 1, -0.5, 0.5, -0.5, 0.5, 100),
        [100]
    );
    assert_eq!(mandelbrot_counts_f64(1, 1, 0.5, 1.5, -0.5, 0.5, 100), [3]);
    assert_eq!(
        mandelbrot_counts_f64(1, 1, -2.5, -1.5, -0.5, 0.5, 100),
        [100]
    );
    // row-major, row 0 at y0: pixel centres c = 0 then 3 along x, then 0 then 3i along
    // y; 0 never escapes, 3 and 3i escape after one step (|3|² = 9 > 4)
    assert_eq!(mandelbrot_counts_f64(2, 1, -1.5, 4.5, -1.0, 1.0, 9), [9, 1]);
    assert_eq!(mandelbrot_counts_f64(1, 2, -1.0, 1.0, -1.5, 4.5, 9), [9, 1]);
    assert_eq!(mandelbrot_rayon(2, 1, -1.5, 4.5, -1.0, 1.0, 9), [9, 1]);
    assert_eq!(mandelbrot_rayon(1, 2, -1.0, 1.0, -1.5, 4.5, 9), [9, 1]);
}

/// f32 rounding changes the count of points near the boundary (chaotic there), so the
/// f32 baseline agrees with the reference only statistically: at most 1% of pixels may
/// differ, and the areas they give within 0.1% (measured at 400 x 400 and max_iter 500:
/// 0.39% of pixels differ, the areas by 0.008%).
#[test]
fn mandelbrot_rayon_agrees_with_f64_statistically() {
    let (x0, x1, y0, y1) = MANDELBROT_VIEW;
    let (w, h, max_iter) = (400, 400, 500);
    let want = mandelbrot_counts_f64(w, h, x0, x1, y0, y1, max_iter);
    let got = mandelbrot_rayon(w, h, x0 as f32, x1 as f32, y0 as f32, y1 as f32, max_iter);
    let differ = want.iter().zip(&got).filter(|(a, b)| a != b).count() as f64 / want.len() as f64;
    let pixel = (x1 - x0) * (y1 - y0) / (w * h) as f64;
    let (a64, a32) = (
        mandelbrot_area_from_counts(&want, max_iter, pixel),
        mandelbrot_area_from_counts(&got, max_iter, pixel),
    );
    eprintln!(
        "mandelbrot f32 vs f64: {:.4}% of pixels differ, areas {a32} vs {a64}",
        differ * 100.0
    );
    assert!(differ <= 0.01, "{differ} of pixels differ");
    assert!(rel(a32, a64) <= 1e-3, "areas {a32} vs {a64}");
}

// ---------------------------------------------------------------------------------------
// n-body
// ---------------------------------------------------------------------------------------

/// Newton's third law: the pairwise forces cancel, so sum m_i a_i = 0. In f64 each pair's
/// two terms round differently, a few units of 1e-16 of the terms' sizes each, summed
/// over 200 x 199 terms; 1e-12 of sum |m_i a_i| allows for that.
#[test]
fn nbody_total_force_vanishes() {
    let seed = 201;
    let b = bodies(200, seed);
    let (ax, ay, az) = nbody_accel_f64(&b.x, &b.y, &b.z, &b.m, NBODY_SOFTENING2.into());
    for (axis, a) in [("x", &ax), ("y", &ay), ("z", &az)] {
        let total: f64 = a.iter().zip(&b.m).map(|(a, &m)| a * f64::from(m)).sum();
        let scale: f64 = a
            .iter()
            .zip(&b.m)
            .map(|(a, &m)| (a * f64::from(m)).abs())
            .sum();
        assert!(
            total.abs() <= 1e-12 * scale,
            "seed {seed}: sum m a_{axis} = {total:e} of {scale:e}"
        );
    }
}

#[test]
fn nbody_two_bodies_match_the_closed_form() {
    // r = (3, 4, 0), |r|² = 25; with eps² = 11, (25 + 11)^{3/2} = 216;
    // a_0 = m_1 r / 216 = 2 (3, 4, 0) / 216, a_1 = -m_0 r / 216
    let (x, y, z, m) = ([0.0f64, 3.0], [0.0, 4.0], [0.0, 0.0], [1.0, 2.0]);
    let (ax, ay, az) = nbody_accel_f64(&x, &y, &z, &m, 11.0);
    let want = [
        [6.0 / 216.0, 8.0 / 216.0, 0.0],
        [-3.0 / 216.0, -4.0 / 216.0, 0.0],
    ];
    for i in 0..2 {
        let got = [ax[i], ay[i], az[i]];
        for d in 0..3 {
            assert!(
                (got[d] - want[i][d]).abs() <= 1e-16,
                "body {i}: {got:?}, want {:?}",
                want[i]
            );
        }
    }
    // unsoftened: |r|³ = 125
    let (ax, ay, _) = nbody_accel_f64(&x, &y, &z, &m, 0.0);
    assert!(
        (ax[0] - 0.048).abs() <= 1e-16 && (ay[0] - 0.064).abs() <= 1e-16,
        "{ax:?} {ay:?}"
    );
    assert!(
        (ax[1] + 0.024).abs() <= 1e-16 && (ay[1] + 0.032).abs() <= 1e-16,
        "{ax:?} {ay:?}"
    );
}

#[test]
fn nbody_step_is_semi_implicit_euler() {
    // from rest, one step of dt: v = a dt, x = x0 + v dt = x0 + a dt²
    let b = Bodies {
        x: vec![0.0, 3.0],
        y: vec![0.0, 4.0],
        z: vec![0.0, 0.0],
        m: vec![1.0, 2.0],
    };
    let mut s = NBody64::at_rest(&b);
    nbody_step_f64(&mut s, 11.0, 0.5);
    let a0 = [6.0 / 216.0, 8.0 / 216.0];
    let close = |got: f64, want: f64| (got - want).abs() <= 1e-15;
    assert!(
        close(s.vx[0], a0[0] * 0.5) && close(s.vy[0], a0[1] * 0.5),
        "{:?} {:?}",
        s.vx,
        s.vy
    );
    assert!(
        close(s.x[0], a0[0] * 0.25) && close(s.y[0], a0[1] * 0.25),
        "{:?} {:?}",
        s.x,
        s.y
    );
    assert!(close(s.x[1], 3.0 - 3.0 / 216.0 * 0.25) && close(s.y[1], 4.0 - 4.0 / 216.0 * 0.25));
    // total momentum stays 0 step after step (third law, and the update is linear in a)
    let seed = 202;
    let mut s = NBody64::at_rest(&bodies(64, seed));
    for _ in 0..20 {
        nbody_step_f64(&mut s, NBODY_SOFTENING2.into(), 1e-3);
    }
    for (axis, v) in [("x", &s.vx), ("y", &s.vy), ("z", &s.vz)] {
        let p: f64 = v.iter().zip(&s.m).map(|(v, m)| v * m).sum();
        let scale: f64 = v.iter().zip(&s.m).map(|(v, m)| (v * m).abs()).sum();
        assert!(
            p.abs() <= 1e-12 * scale,
            "seed {seed}: momentum_{axis} = {p:e} of {scale:e}"
        );
    }
}

/// Each f32 term m_j d / (d² + eps²)^{3/2} carries about a dozen roundings (the
/// differences, squares, sum, sqrt, product, quotient), and summing n of them adds up to
/// n more, so |error| <= (n + 16) u sum_j |term_j| per component (u = 2^-24), a bound
/// that holds whatever the cancellation between terms.
#[test]
fn nbody_rayon_is_within_the_rounding_bound_of_f64() {
    let seed = 203;
    let n = 512;
    let b = bodies(n, seed);
    let eps2 = NBODY_SOFTENING2;
    let (gx, gy, gz) = nbody_accel_rayon(&b.x, &b.y, &b.z, &b.m, eps2);
    let (wx, wy, wz) = nbody_accel_f64(&b.x, &b.y, &b.z, &b.m, eps2.into());
    let mut worst = 0.0f64;
    for i in 0..n {
        // sum_j |term_j| per component, in f64
        let mut scale = [0.0f64; 3];
        for j in 0..n {
            let d = [b.x[j] - b.x[i], b.y[j] - b.y[i], b.z[j] - b.z[i]].map(f64::from);
            let d2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2] + f64::from(eps2);
            let s = f64::from(b.m[j]) / (d2 * d2.sqrt());
            for (sc, d) in scale.iter_mut().zip(d) {
                *sc += (s * d).abs();
            }
        }
        let got = [gx[i], gy[i], gz[i]].map(f64::from);
        let want = [wx[i], wy[i], wz[i]];
        for d in 0..3 {
            let err = (got[d] - want[d]).abs() / scale[d];
            worst = worst.max(err / U32);
            assert!(
                err <= (n + 16) as f64 * U32,
                "seed {seed}, body {i}, axis {d}: f32 {} vs f64 {} (sum of |terms| {})",
                got[d],
                want[d],
                scale[d]
            );
        }
    }
    eprintln!(
        "n-body f32 vs f64: worst error {worst:.1} u of the sum of |terms| (bound {})",
        n + 16
    );
}

// ---------------------------------------------------------------------------------------
// Matrix multiply
// ---------------------------------------------------------------------------------------

#[test]
fn matmul_by_identity_is_unchanged() {
    let (a, _) = matrices(5, 7, 1, 301);
    let id: Vec<f32> = (0..49)
        .map(|i| if i % 8 == 0 { 1.0 } else { 0.0 })
        .collect();
    let want: Vec<f64> = a.iter().map(|&v| f64::from(v)).collect();
    assert_eq!(matmul_f64(&a, &id, 5, 7, 7), want);
    let id5: Vec<f32> = (0..25)
        .map(|i| if i % 6 == 0 { 1.0 } else { 0.0 })
        .collect();
    assert_eq!(matmul_f64(&id5, &a, 5, 5, 7), want);
    assert_eq!(matmul_rayon(&a, &id, 5, 7, 7), a);
}

#[test]
fn matmul_small_products_by_hand() {
    // [1 2 3; 4 5 6] [7 8; 9 10; 11 12] = [58 64; 139 154]
    let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    let b = [7.0f32, 8.0, 9.0, 10.0, 11.0, 12.0];
    assert_eq!(matmul_f64(&a, &b, 2, 3, 2), [58.0, 64.0, 139.0, 154.0]);
    assert_eq!(matmul_rayon(&a, &b, 2, 3, 2), [58.0, 64.0, 139.0, 154.0]);
    // the other way round, 3 x 2 times 2 x 3: [7 8; 9 10; 11 12] [1 2 3; 4 5 6]
    let want = [39.0, 54.0, 69.0, 49.0, 68.0, 87.0, 59.0, 82.0, 105.0];
    assert_eq!(matmul_f64(&b, &a, 3, 2, 3), want);
    assert_eq!(matmul_rayon(&b, &a, 3, 2, 3), want.map(|v| v as f32));
}

/// A dot product of length k in floating point is within gamma_k = k u / (1 - k u) of
/// sum_p |a_ip b_pj| (Higham, Accuracy and Stability of Numerical Algorithms, 3.1), for
/// any summation order; the f64 reference's own error is 2^29 times smaller.
#[test]
fn matmul_rayon_is_within_the_dot_product_bound_of_f64() {
    let seed = 302;
    let (rows, k, cols) = (64, 300, 48);
    let (a, b) = matrices(rows, k, cols, seed);
    let got = matmul_rayon(&a, &b, rows, k, cols);
    let want = matmul_f64(&a, &b, rows, k, cols);
    let gamma = k as f64 * U32 / (1.0 - k as f64 * U32);
    let mut worst = 0.0f64;
    for i in 0..rows {
        for j in 0..cols {
            let abs_sum: f64 = (0..k)
                .map(|p| f64::from(a[i * k + p] * b[p * cols + j]).abs())
                .sum();
            let err = (f64::from(got[i * cols + j]) - want[i * cols + j]).abs();
            worst = worst.max(err / abs_sum / gamma);
            assert!(
                err <= gamma * abs_sum * 1.0001,
                "seed {seed}, c[{i}][{j}]: {} vs {}",
                got[i * cols + j],
                want[i * cols + j]
            );
        }
    }
    eprintln!("matmul f32 vs f64: worst error {worst:.3} of the gamma_k bound");
}

// ---------------------------------------------------------------------------------------
// 5x5 Gaussian blur
// ---------------------------------------------------------------------------------------

#[test]
fn blur_keeps_a_constant_image_constant() {
    let (w, h) = (9, 6);
    let img = vec![0.75f32; w * h];
    // the weights are multiples of 1/256 and sum to 1, so even edge pixels stay exact
    assert!(blur5x5_f64(&img, w, h).iter().all(|&v| v == 0.75));
    assert!(blur5x5_rayon(&img, w, h).iter().all(|&v| v == 0.75));
}

#[test]
fn blur_of_a_delta_is_the_kernel() {
    let (w, h) = (9, 8);
    let (r0, c0) = (4, 3);
    let mut img = vec![0.0f32; w * h];
    img[r0 * w + c0] = 1.0;
    let taps = [1.0, 4.0, 6.0, 4.0, 1.0];
    let want: Vec<f64> = (0..h)
        .flat_map(|r| (0..w).map(move |c| (r, c)))
        .map(|(r, c)| {
            let (dr, dc) = (r as isize - r0 as isize, c as isize - c0 as isize);
            if dr.abs() <= 2 && dc.abs() <= 2 {
                taps[(dr + 2) as usize] * taps[(dc + 2) as usize] / 256.0
            } else {
                0.0
            }
        })
        .collect();
    assert_eq!(blur5x5_f64(&img, w, h), want);
    assert_eq!(
        blur5x5_rayon(&img, w, h),
        want.iter().map(|&v| v as f32).collect::<Vec<_>>()
    );
}

#[test]
fn blur_clamps_at_the_edges() {
    // a delta in the corner: at the corner the taps at offsets -2, -1 and 0 all read it,
    // (1 + 4 + 6) / 16 along each axis, so (11/16)² = 121/256; one pixel in, the taps
    // at -2 and -1 read it: (1 + 4) / 16 along that axis
    let (w, h) = (6, 5);
    let mut img = vec![0.0f32; w * h];
    img[0] = 1.0;
    let out = blur5x5_f64(&img, w, h);
    assert_eq!(out[0], 121.0 / 256.0);
    assert_eq!(out[1], 11.0 * 5.0 / 256.0);
    assert_eq!(out[w + 1], 25.0 / 256.0);
    assert_eq!(out[2], 11.0 * 1.0 / 256.0);
    assert_eq!(out[3], 0.0);
    assert_eq!(blur5x5_rayon(&img, w, h)[0], 121.0 / 256.0);
}

/// For pixels in [0, 1] the 25 products and 24 additions in f32 are within
/// gamma_25 ~ 25 u = 1.5e-6 of the exact weighted sum (the weights sum to 1), so 2e-6.
#[test]
fn blur_rayon_is_within_2e6_of_f64() {
    let seed = 401;
    let (w, h) = (257, 130);
    let img = image(w, h, seed);
    assert!(img.iter().all(|&v| (0.0..=1.0).contains(&v)));
    let got = blur5x5_rayon(&img, w, h);
    let want = blur5x5_f64(&img, w, h);
    let worst = got
        .iter()
        .zip(&want)
        .map(|(&g, &w)| (f64::from(g) - w).abs())
        .fold(0.0, f64::max);
    eprintln!("blur f32 vs f64: worst error {worst:e}");
    assert!(worst <= 2e-6, "seed {seed}: blur off by {worst:e}");
}

// ---------------------------------------------------------------------------------------
// k-means assignment
// ---------------------------------------------------------------------------------------

#[test]
fn kmeans_ties_go_to_the_lowest_index() {
    // points (1, 0), (1, 1), (3, 0); centroids (0, 0), (2, 0), (1, 1), (1, 1)
    let points = vec![vec![1.0, 1.0, 3.0], vec![0.0, 1.0, 0.0]];
    let centroids = vec![vec![0.0, 2.0, 1.0, 1.0], vec![0.0, 0.0, 1.0, 1.0]];
    // (1, 0) is 1 from (0, 0), (2, 0), (1, 1) and (1, 1): centroid 0;
    // (1, 1) sits on centroids 2 and 3: 2; (3, 0) is nearest (2, 0): 1
    let want = (vec![0, 2, 1], vec![1.0, 0.0, 1.0]);
    assert_eq!(kmeans_assign(&points, &centroids), want);
    assert_eq!(kmeans_assign_rayon(&points, &centroids), want);
    // listed the other way round, (1, 1), (1, 1), (2, 0), (0, 0): (1, 0) is again 1 from
    // all four and (1, 1) sits on two, so both go to 0; (3, 0) to 2
    let reversed: Vec<Vec<f32>> = centroids
        .iter()
        .map(|c| c.iter().rev().copied().collect())
        .collect();
    let want = (vec![0, 0, 2], vec![1.0, 0.0, 1.0]);
    assert_eq!(kmeans_assign(&points, &reversed), want);
    assert_eq!(kmeans_assign_rayon(&points, &reversed), want);
}

/// The baseline does the reference's f32 operations in the same order (Rust does not
/// contract a * b + c into a fused multiply-add), so the results are identical.
#[test]
fn kmeans_rayon_equals_the_reference() {
    for (seed, d) in [(501, 2), (502, 5)] {
        let (points, centroids) = kmeans_data(20_000, d, 16, seed);
        let want = kmeans_assign(&points, &centroids);
        assert_eq!(
            kmeans_assign_rayon(&points, &centroids),
            want,
            "seed {seed}"
        );
        // sanity: each label's distance is the least, recomputed in f64
        for i in (0..20_000).step_by(97) {
            let dist = |c: usize| -> f64 {
                points
                    .iter()
                    .zip(&centroids)
                    .map(|(p, q)| (f64::from(p[i]) - f64::from(q[c])).powi(2))
                    .sum()
            };
            let best = (0..16).map(dist).fold(f64::INFINITY, f64::min);
            assert!(
                dist(want.0[i] as usize) <= best * (1.0 + 1e-5) + 1e-12,
                "seed {seed}, point {i}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------

#[test]
fn generators_are_seeded_and_in_range() {
    let (a, b) = (options(1000, 7), options(1000, 7));
    assert_eq!(
        (&a.spot, &a.strike, &a.years),
        (&b.spot, &b.strike, &b.years)
    );
    assert_ne!(a.spot, options(1000, 8).spot);
    assert!(a.spot.iter().all(|s| (5.0..30.0).contains(s)));
    assert!(a.strike.iter().all(|k| (1.0..100.0).contains(k)));
    assert!(a.years.iter().all(|t| (0.25..10.0).contains(t)));
    let b = bodies(1000, 7);
    assert!([&b.x, &b.y, &b.z]
        .iter()
        .all(|v| v.iter().all(|p| (0.0..1.0).contains(p))));
    assert!(b.m.iter().all(|m| (0.5..1.5).contains(m)));
    assert_eq!(image(33, 17, 7), image(33, 17, 7));
    assert_eq!(image(33, 17, 7).len(), 33 * 17);
    let (ma, mb) = matrices(3, 4, 5, 7);
    assert_eq!((ma.len(), mb.len()), (12, 20));
    let (p, c) = kmeans_data(100, 3, 4, 7);
    assert_eq!((p.len(), p[0].len(), c.len(), c[0].len()), (3, 100, 3, 4));
    // Forgy: every centroid is one of the points
    let point = |coords: &[Vec<f32>], i: usize| coords.iter().map(|v| v[i]).collect::<Vec<_>>();
    let points: Vec<_> = (0..100).map(|i| point(&p, i)).collect();
    assert!((0..4).all(|j| points.contains(&point(&c, j))));
}
