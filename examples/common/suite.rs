//! The benchmark suite's workloads without the library: seeded input generators, f64
//! references and the rayon code a user would write by hand, for Black-Scholes, n-body,
//! Mandelbrot, a 5x5 Gaussian blur, matrix multiply and k-means assignment.
//!
//! Included as a module by the examples (`#[path = "common/suite.rs"] mod suite;`) and
//! by the tests (`#[path = "../examples/common/suite.rs"] mod suite;`), so it uses only
//! std, rayon, rand and rand_chacha. `tests/suite_refs.rs` checks the references against
//! published values and the baselines against the references.
//!
//! Conventions: data is f32, images and matrices row-major, points and bodies one `Vec`
//! per coordinate (the layout a kernel reads). A reference takes the same f32 inputs (or
//! f64 ones) and computes in f64, so the only difference from an f32 kernel is its
//! arithmetic. The references are plain serial loops, written to be read, not timed.

// each example uses the part it needs
#![allow(dead_code)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

// ---------------------------------------------------------------------------------------
// Seeded data generators
// ---------------------------------------------------------------------------------------

/// The risk-free rate for [`options`], 2% a year, as in the NVIDIA CUDA SDK
/// `BlackScholes` sample (`RISKFREE`).
pub const BS_RATE: f32 = 0.02;

/// The volatility for [`options`], 30% a year, as in the CUDA SDK sample (`VOLATILITY`).
pub const BS_VOLATILITY: f32 = 0.30;

/// A batch of European options, one entry per option in each `Vec`.
pub struct Options {
    /// The underlying's price now, S.
    pub spot: Vec<f32>,
    /// The strike price, K.
    pub strike: Vec<f32>,
    /// The time to expiry in years, T.
    pub years: Vec<f32>,
}

/// `n` options drawn uniformly as in the CUDA SDK `BlackScholes` sample: spot in
/// [5, 30), strike in [1, 100), years in [0.25, 10). Price them with [`BS_RATE`] and
/// [`BS_VOLATILITY`].
pub fn options(n: usize, seed: u64) -> Options {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut o = Options {
        spot: Vec::with_capacity(n),
        strike: Vec::with_capacity(n),
        years: Vec::with_capacity(n),
    };
    for _ in 0..n {
        o.spot.push(rng.random_range(5.0..30.0));
        o.strike.push(rng.random_range(1.0..100.0));
        o.years.push(rng.random_range(0.25..10.0));
    }
    o
}

/// The squared softening length for the n-body workload: eps = 0.01, a quarter of the
/// mean spacing of 16k bodies in the unit cube, so close pairs stay finite without the
/// softening dominating the field. Our choice, not a published constant.
pub const NBODY_SOFTENING2: f32 = 1e-4;

/// Point masses for the n-body workload, one entry per body in each `Vec`.
pub struct Bodies {
    /// Position, x.
    pub x: Vec<f32>,
    /// Position, y.
    pub y: Vec<f32>,
    /// Position, z.
    pub z: Vec<f32>,
    /// Mass (G = 1).
    pub m: Vec<f32>,
}

/// `n` bodies placed uniformly in the unit cube [0, 1)^3 with masses uniform in
/// [0.5, 1.5).
pub fn bodies(n: usize, seed: u64) -> Bodies {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut b = Bodies {
        x: Vec::with_capacity(n),
        y: Vec::with_capacity(n),
        z: Vec::with_capacity(n),
        m: Vec::with_capacity(n),
    };
    for _ in 0..n {
        b.x.push(rng.random::<f32>());
        b.y.push(rng.random::<f32>());
        b.z.push(rng.random::<f32>());
        b.m.push(rng.random_range(0.5..1.5));
    }
    b
}

/// A `width` x `height` grey image, row-major, values in [0, 1]: a smooth pattern
/// (a product of sines with random frequencies and phases, amplitude 0.3 around 0.5)
/// plus uniform noise of amplitude 0.2, so a blur has both edges and noise to smooth.
pub fn image(width: usize, height: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tau = std::f32::consts::TAU;
    let fx = rng.random_range(2.0..8.0) * tau / width.max(1) as f32;
    let fy = rng.random_range(2.0..8.0) * tau / height.max(1) as f32;
    let (px, py) = (rng.random_range(0.0..tau), rng.random_range(0.0..tau));
    let mut img = Vec::with_capacity(width * height);
    for row in 0..height {
        for col in 0..width {
            let smooth = 0.3 * (fx * col as f32 + px).sin() * (fy * row as f32 + py).cos();
            let noise = rng.random_range(-0.2..0.2);
            img.push((0.5 + smooth + noise).clamp(0.0, 1.0));
        }
    }
    img
}

/// Two matrices for C = A B, row-major, entries uniform in [-1, 1): A is `rows` x `k`,
/// B is `k` x `cols`.
pub fn matrices(rows: usize, k: usize, cols: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let a = (0..rows * k).map(|_| rng.random_range(-1.0..1.0)).collect();
    let b = (0..k * cols).map(|_| rng.random_range(-1.0..1.0)).collect();
    (a, b)
}

/// Data for one k-means assignment step: `n` points in `d` dimensions drawn around `k`
/// cluster centres (uniform in [0, 1)^d, each point its centre plus uniform noise of
/// half-width 0.1 per coordinate), and `k` starting centroids chosen as `k` of the
/// points (Forgy's initialisation). Both come as `d` coordinate `Vec`s: `points[dim][i]`
/// is coordinate `dim` of point `i`, `centroids[dim][c]` that of centroid `c`.
pub fn kmeans_data(n: usize, d: usize, k: usize, seed: u64) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    assert!(
        k >= 1 && n >= k,
        "k-means needs 1 <= k <= n (k = {k}, n = {n})"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> = (0..k)
        .map(|_| (0..d).map(|_| rng.random()).collect())
        .collect();
    let mut points = vec![Vec::with_capacity(n); d];
    for _ in 0..n {
        let centre = &centres[rng.random_range(0..k)];
        for (coord, &c) in points.iter_mut().zip(centre) {
            coord.push(c + rng.random_range(-0.1..0.1));
        }
    }
    let picks = rand::seq::index::sample(&mut rng, n, k);
    let centroids = points
        .iter()
        .map(|coord| picks.iter().map(|i| coord[i]).collect())
        .collect();
    (points, centroids)
}

// ---------------------------------------------------------------------------------------
// The normal distribution
// ---------------------------------------------------------------------------------------

/// The complementary error function erfc(x) = 1 - erf(x) in f64, within 1e-15 relative
/// for all x (worst 7.4e-16 against mpmath on a 0.01 grid over [-30, 30]); it returns 0
/// past x = 26.543, where erfc is below 1e-308, and 2 below x = -26.543.
///
/// W. J. Cody's rational Chebyshev approximations ("Rational Chebyshev approximations for
/// the error function", Math. Comp. 23 (1969) 631-637), as in his SPECFUN routine
/// `CALERF` (netlib.org/specfun/erf): erf on |x| <= 0.46875, erfc·exp(x²) on
/// (0.46875, 4] and on (4, 26.543) in 1/x², exp(-x²) split in two factors to keep its
/// relative accuracy, and erfc(-x) = 2 - erfc(x).
#[allow(clippy::excessive_precision)] // Cody's coefficients at their published digits
pub fn erfc_f64(x: f64) -> f64 {
    const A: [f64; 5] = [
        3.16112374387056560e00,
        1.13864154151050156e02,
        3.77485237685302021e02,
        3.20937758913846947e03,
        1.85777706184603153e-1,
    ];
    const B: [f64; 4] = [
        2.36012909523441209e01,
        2.44024637934444173e02,
        1.28261652607737228e03,
        2.84423683343917062e03,
    ];
    const C: [f64; 9] = [
        5.64188496988670089e-1,
        8.88314979438837594e00,
        6.61191906371416295e01,
        2.98635138197400131e02,
        8.81952221241769090e02,
        1.71204761263407058e03,
        2.05107837782607147e03,
        1.23033935479799725e03,
        2.15311535474403846e-8,
    ];
    const D: [f64; 8] = [
        1.57449261107098347e01,
        1.17693950891312499e02,
        5.37181101862009858e02,
        1.62138957456669019e03,
        3.29079923573345963e03,
        4.36261909014324716e03,
        3.43936767414372164e03,
        1.23033935480374942e03,
    ];
    const P: [f64; 6] = [
        3.05326634961232344e-1,
        3.60344899949804439e-1,
        1.25781726111229246e-1,
        1.60837851487422766e-2,
        6.58749161529837803e-4,
        1.63153871373020978e-2,
    ];
    const Q: [f64; 5] = [
        2.56852019228982242e00,
        1.87295284992346047e00,
        5.27905102951428412e-1,
        6.05183413124413191e-2,
        2.33520497626869185e-3,
    ];
    const ONE_OVER_SQRT_PI: f64 = 5.6418958354775628695e-1;
    const THRESH: f64 = 0.46875;
    const XSMALL: f64 = 1.11e-16;
    const XBIG: f64 = 26.543;

    if x.is_nan() {
        return x;
    }
    let y = x.abs();
    if y <= THRESH {
        // erf(x) = x P(x²) / Q(x²); no cancellation in 1 - erf here (erf <= 0.493)
        let ysq = if y > XSMALL { y * y } else { 0.0 };
        let mut num = A[4] * ysq;
        let mut den = ysq;
        for i in 0..3 {
            num = (num + A[i]) * ysq;
            den = (den + B[i]) * ysq;
        }
        return 1.0 - x * (num + A[3]) / (den + B[3]);
    }
    // erfc(y) = exp(-y²) R(y), R rational in y (y <= 4) or in 1/y² (y > 4)
    let r = if y <= 4.0 {
        let mut num = C[8] * y;
        let mut den = y;
        for i in 0..7 {
            num = (num + C[i]) * y;
            den = (den + D[i]) * y;
        }
        (num + C[7]) / (den + D[7])
    } else if y < XBIG {
        let ysq = 1.0 / (y * y);
        let mut num = P[5] * ysq;
        let mut den = ysq;
        for i in 0..4 {
            num = (num + P[i]) * ysq;
            den = (den + Q[i]) * ysq;
        }
        (ONE_OVER_SQRT_PI - ysq * (num + P[4]) / (den + Q[4])) / y
    } else {
        0.0
    };
    // exp(-y²) = exp(-ys²) exp(-(y - ys)(y + ys)) with ys = y rounded down to 1/16, so
    // that ys² is exact and the rounding of y² does not cost relative accuracy
    let ys = (y * 16.0).trunc() / 16.0;
    let del = (y - ys) * (y + ys);
    let erfc_y = (-ys * ys).exp() * (-del).exp() * r;
    if x < 0.0 {
        2.0 - erfc_y
    } else {
        erfc_y
    }
}

/// The standard normal CDF in f64, N(x) = erfc(-x / sqrt 2) / 2, through [`erfc_f64`]
/// so accurate in relative terms also in the far lower tail: within 1e-15 (1 + x²), the
/// x² from rounding the argument -x / sqrt 2 where N is steep relative to its size.
pub fn normal_cdf_f64(x: f64) -> f64 {
    0.5 * erfc_f64(-x * std::f64::consts::FRAC_1_SQRT_2)
}

/// The standard normal CDF in f32 by the polynomial of Abramowitz and Stegun, Handbook
/// of Mathematical Functions, 26.2.17 (absolute error below 7.5e-8 in exact arithmetic):
/// with t = 1 / (1 + 0.2316419 |x|), the tail is
/// phi(x) t (b1 + t (b2 + t (b3 + t (b4 + t b5)))), and N(x) = 1 - tail for x > 0.
/// This is `cndGPU` of the CUDA SDK `BlackScholes` sample and the CDF the library's
/// Black-Scholes kernel uses; evaluated in f32 it stays within 2.5e-7 of the exact CDF
/// (measured on a 1e-3 grid over [-10, 10]).
#[allow(clippy::excessive_precision)] // the published coefficients
pub fn normal_cdf_f32(x: f32) -> f32 {
    const B1: f32 = 0.319381530;
    const B2: f32 = -0.356563782;
    const B3: f32 = 1.781477937;
    const B4: f32 = -1.821255978;
    const B5: f32 = 1.330274429;
    const P: f32 = 0.2316419;
    const ONE_OVER_SQRT_2PI: f32 = 0.398942280401432677940;
    let t = 1.0 / (1.0 + P * x.abs());
    let poly = t * (B1 + t * (B2 + t * (B3 + t * (B4 + t * B5))));
    let tail = ONE_OVER_SQRT_2PI * (-0.5 * x * x).exp() * poly;
    if x > 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

// ---------------------------------------------------------------------------------------
// Black-Scholes
// ---------------------------------------------------------------------------------------

/// The Black-Scholes(-Merton) prices of a European call and put, in f64 with the exact
/// normal CDF: d1 = (ln(S/K) + (r + sigma²/2) T) / (sigma sqrt T), d2 = d1 - sigma sqrt T,
/// call = S N(d1) - K e^{-rT} N(d2), put = K e^{-rT} N(-d2) - S N(-d1) (Hull, Options,
/// Futures and Other Derivatives, the Black-Scholes-Merton pricing formulas). Returns
/// `(call, put)`.
pub fn black_scholes_f64(s: f64, k: f64, t: f64, r: f64, sigma: f64) -> (f64, f64) {
    let vol_sqrt_t = sigma * t.sqrt();
    let d1 = ((s / k).ln() + (r + 0.5 * sigma * sigma) * t) / vol_sqrt_t;
    let d2 = d1 - vol_sqrt_t;
    let discounted_strike = k * (-r * t).exp();
    let call = s * normal_cdf_f64(d1) - discounted_strike * normal_cdf_f64(d2);
    let put = discounted_strike * normal_cdf_f64(-d2) - s * normal_cdf_f64(-d1);
    (call, put)
}

/// One option priced in f32 as the CUDA SDK `BlackScholes` sample does
/// (`BlackScholesBodyGPU`): the same formulas as [`black_scholes_f64`] with the
/// Abramowitz-Stegun CDF [`normal_cdf_f32`], two CDF evaluations per option, and the
/// put's N(-d) taken as 1 - N(d). Returns `(call, put)`.
pub fn black_scholes_f32(s: f32, k: f32, t: f32, r: f32, sigma: f32) -> (f32, f32) {
    let vol_sqrt_t = sigma * t.sqrt();
    let d1 = ((s / k).ln() + (r + 0.5 * sigma * sigma) * t) / vol_sqrt_t;
    let d2 = d1 - vol_sqrt_t;
    let (n1, n2) = (normal_cdf_f32(d1), normal_cdf_f32(d2));
    let discounted_strike = k * (-r * t).exp();
    let call = s * n1 - discounted_strike * n2;
    let put = discounted_strike * (1.0 - n2) - s * (1.0 - n1);
    (call, put)
}

/// Black-Scholes by hand with rayon: [`black_scholes_f32`] over the options in
/// parallel. Returns `(calls, puts)`.
pub fn black_scholes_rayon(
    spot: &[f32],
    strike: &[f32],
    years: &[f32],
    r: f32,
    sigma: f32,
) -> (Vec<f32>, Vec<f32>) {
    assert!(
        spot.len() == strike.len() && spot.len() == years.len(),
        "option fields differ in length"
    );
    spot.par_iter()
        .zip(strike)
        .zip(years)
        .map(|((&s, &k), &t)| black_scholes_f32(s, k, t, r, sigma))
        .unzip()
}

// ---------------------------------------------------------------------------------------
// n-body
// ---------------------------------------------------------------------------------------

pub fn widen<T: Copy + Into<f64>>(v: &[T]) -> Vec<f64> {
    v.iter().map(|&a| a.into()).collect()
}

/// All-pairs softened gravitational accelerations in f64 (G = 1), as in GPU Gems 3,
/// chapter 31 (Nyland, Harris and Prins, "Fast N-Body Simulation with CUDA"):
/// a_i = sum over j != i of m_j (r_j - r_i) / (|r_j - r_i|² + eps²)^{3/2}, with
/// `softening2` = eps². The j = i term is skipped rather than relied on to vanish, so
/// eps² = 0 is allowed (plain Newtonian gravity; two bodies at one point then give
/// infinities). Returns `(ax, ay, az)`.
pub fn nbody_accel_f64<T: Copy + Into<f64>>(
    x: &[T],
    y: &[T],
    z: &[T],
    m: &[T],
    softening2: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let n = x.len();
    assert!(
        y.len() == n && z.len() == n && m.len() == n,
        "body fields differ in length"
    );
    let (x, y, z, m) = (widen(x), widen(y), widen(z), widen(m));
    let (mut ax, mut ay, mut az) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for i in 0..n {
        let mut a = [0.0; 3];
        for j in (0..n).filter(|&j| j != i) {
            let d = [x[j] - x[i], y[j] - y[i], z[j] - z[i]];
            let d2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2] + softening2;
            let s = m[j] / (d2 * d2.sqrt());
            for (a, d) in a.iter_mut().zip(d) {
                *a += s * d;
            }
        }
        (ax[i], ay[i], az[i]) = (a[0], a[1], a[2]);
    }
    (ax, ay, az)
}

/// The state of an n-body system in f64: positions, velocities and masses, one entry
/// per body in each `Vec`.
pub struct NBody64 {
    /// Position, x.
    pub x: Vec<f64>,
    /// Position, y.
    pub y: Vec<f64>,
    /// Position, z.
    pub z: Vec<f64>,
    /// Velocity, x.
    pub vx: Vec<f64>,
    /// Velocity, y.
    pub vy: Vec<f64>,
    /// Velocity, z.
    pub vz: Vec<f64>,
    /// Mass (G = 1).
    pub m: Vec<f64>,
}

impl NBody64 {
    /// The bodies `b`, widened to f64, at rest.
    pub fn at_rest(b: &Bodies) -> NBody64 {
        let n = b.x.len();
        NBody64 {
            x: widen(&b.x),
            y: widen(&b.y),
            z: widen(&b.z),
            vx: vec![0.0; n],
            vy: vec![0.0; n],
            vz: vec![0.0; n],
            m: widen(&b.m),
        }
    }
}

/// One time step `dt` of the n-body system by semi-implicit (symplectic) Euler, the
/// integrator of the CUDA SDK `nbody` sample without its damping: v += a(x) dt, then
/// x += v dt with the new v, a from [`nbody_accel_f64`].
pub fn nbody_step_f64(s: &mut NBody64, softening2: f64, dt: f64) {
    let (ax, ay, az) = nbody_accel_f64(&s.x, &s.y, &s.z, &s.m, softening2);
    for (pos, vel, acc) in [
        (&mut s.x, &mut s.vx, ax),
        (&mut s.y, &mut s.vy, ay),
        (&mut s.z, &mut s.vz, az),
    ] {
        for ((p, v), a) in pos.iter_mut().zip(vel.iter_mut()).zip(acc) {
            *v += a * dt;
            *p += *v * dt;
        }
    }
}

/// A float the hand-written loops compute in: f32 or f64.
pub trait Real:
    Copy
    + Send
    + Sync
    + Default
    + Into<f64>
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::AddAssign
{
    fn sqrt(self) -> Self;
}

impl Real for f32 {
    fn sqrt(self) -> f32 {
        f32::sqrt(self)
    }
}

impl Real for f64 {
    fn sqrt(self) -> f64 {
        f64::sqrt(self)
    }
}

/// n-body accelerations by hand with rayon, in `T` (f32, or f64): one parallel task per
/// body, an
/// inner loop over all bodies including itself (its term is 0 because r_i - r_i = 0,
/// as in GPU kernels, so `softening2` must be positive). Returns `(ax, ay, az)`.
#[allow(clippy::type_complexity)]
pub fn nbody_accel_rayon<T: Real>(
    x: &[T],
    y: &[T],
    z: &[T],
    m: &[T],
    softening2: T,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let n = x.len();
    assert!(
        y.len() == n && z.len() == n && m.len() == n,
        "body fields differ in length"
    );
    let zeros = || vec![T::default(); n];
    let (mut ax, mut ay, mut az) = (zeros(), zeros(), zeros());
    (&mut ax, &mut ay, &mut az)
        .into_par_iter()
        .enumerate()
        .for_each(|(i, (ax, ay, az))| {
            let (xi, yi, zi) = (x[i], y[i], z[i]);
            let (mut sx, mut sy, mut sz) = (T::default(), T::default(), T::default());
            for j in 0..n {
                let (dx, dy, dz) = (x[j] - xi, y[j] - yi, z[j] - zi);
                let d2 = dx * dx + dy * dy + dz * dz + softening2;
                let s = m[j] / (d2 * d2.sqrt());
                sx += s * dx;
                sy += s * dy;
                sz += s * dz;
            }
            (*ax, *ay, *az) = (sx, sy, sz);
        });
    (ax, ay, az)
}

// ---------------------------------------------------------------------------------------
// Mandelbrot
// ---------------------------------------------------------------------------------------

/// The classic view of the whole Mandelbrot set, (x0, x1, y0, y1) = [-2, 0.5] x
/// [-1.25, 1.25], 6.25 square units.
pub const MANDELBROT_VIEW: (f64, f64, f64, f64) = (-2.0, 0.5, -1.25, 1.25);

/// Escape-time counts in f64 for a `width` x `height` grid over [x0, x1] x [y0, y1],
/// row-major: pixel (row, col) samples its centre, c = (x0 + (col + 1/2) dx,
/// y0 + (row + 1/2) dy) with dx = (x1 - x0) / width, dy = (y1 - y0) / height (row 0 at
/// y0: flip the rows for a picture with y up). From z = 0, z <- z² + c while |z|² <= 4
/// and n < `max_iter`; the count is the number n of steps taken, `max_iter` for a point
/// taken to be in the set (the escape-time algorithm, Peitgen and Richter, The Beauty of
/// Fractals).
pub fn mandelbrot_counts_f64(
    width: usize,
    height: usize,
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    max_iter: u32,
) -> Vec<u32> {
    let (dx, dy) = ((x1 - x0) / width as f64, (y1 - y0) / height as f64);
    let mut counts = Vec::with_capacity(width * height);
    for row in 0..height {
        let cy = y0 + (row as f64 + 0.5) * dy;
        for col in 0..width {
            let cx = x0 + (col as f64 + 0.5) * dx;
            let (mut zx, mut zy, mut n) = (0.0f64, 0.0f64, 0);
            while n < max_iter && zx * zx + zy * zy <= 4.0 {
                (zx, zy) = (zx * zx - zy * zy + cx, 2.0 * zx * zy + cy);
                n += 1;
            }
            counts.push(n);
        }
    }
    counts
}

/// The area of the Mandelbrot set estimated from escape-time counts by pixel counting:
/// the number of pixels whose count reached `max_iter`, times `pixel_area`
/// ((x1 - x0)(y1 - y0) / (width height)). It overestimates slightly, by the points that
/// escape only after `max_iter` steps.
pub fn mandelbrot_area_from_counts(counts: &[u32], max_iter: u32, pixel_area: f64) -> f64 {
    counts.iter().filter(|&&n| n == max_iter).count() as f64 * pixel_area
}

/// Mandelbrot counts by hand with rayon, in f32: the same grid and iteration as
/// [`mandelbrot_counts_f64`], one parallel task per row. f32 rounding moves the count of
/// points near the set's boundary, so it matches the reference there only statistically.
pub fn mandelbrot_rayon(
    width: usize,
    height: usize,
    x0: f32,
    x1: f32,
    y0: f32,
    y1: f32,
    max_iter: u32,
) -> Vec<u32> {
    let mut counts = vec![0; width * height];
    if width == 0 {
        return counts;
    }
    let (dx, dy) = ((x1 - x0) / width as f32, (y1 - y0) / height as f32);
    counts
        .par_chunks_mut(width)
        .enumerate()
        .for_each(|(row, line)| {
            let cy = y0 + (row as f32 + 0.5) * dy;
            for (col, count) in line.iter_mut().enumerate() {
                let cx = x0 + (col as f32 + 0.5) * dx;
                let (mut zx, mut zy, mut n) = (0.0f32, 0.0f32, 0);
                while n < max_iter && zx * zx + zy * zy <= 4.0 {
                    (zx, zy) = (zx * zx - zy * zy + cx, 2.0 * zx * zy + cy);
                    n += 1;
                }
                *count = n;
            }
        });
    counts
}

// ---------------------------------------------------------------------------------------
// 5x5 Gaussian blur
// ---------------------------------------------------------------------------------------

/// The binomial taps of the 5x5 Gaussian blur, [1 4 6 4 1] (row 4 of Pascal's triangle,
/// the usual integer approximation of a Gaussian with sigma = 1); the 2-D kernel is their
/// outer product divided by 16² = 256, so its weights sum to exactly 1.
pub const BLUR_TAPS: [f32; 5] = [1.0, 4.0, 6.0, 4.0, 1.0];

/// A 5x5 Gaussian blur in f64: out(r, c) = sum over dr, dc in -2..=2 of
/// taps[dr] taps[dc] / 256 · img(clamp(r + dr), clamp(c + dc)), each index clamped to
/// the image (edge pixels repeated). `img` is `w` x `h`, row-major.
pub fn blur5x5_f64<T: Copy + Into<f64>>(img: &[T], w: usize, h: usize) -> Vec<f64> {
    assert_eq!(img.len(), w * h, "image is not {w} x {h}");
    let mut out = Vec::with_capacity(w * h);
    for row in 0..h {
        for col in 0..w {
            let mut sum = 0.0;
            for (dr, &wr) in BLUR_TAPS.iter().enumerate() {
                let r = (row + dr).saturating_sub(2).min(h - 1);
                for (dc, &wc) in BLUR_TAPS.iter().enumerate() {
                    let c = (col + dc).saturating_sub(2).min(w - 1);
                    sum += f64::from(wr * wc) * img[r * w + c].into();
                }
            }
            out.push(sum / 256.0);
        }
    }
    out
}

/// The 5x5 Gaussian blur by hand with rayon, in f32: one parallel task per output row,
/// an inner loop over the 25 weights with clamped indices, as [`blur5x5_f64`].
pub fn blur5x5_rayon(img: &[f32], w: usize, h: usize) -> Vec<f32> {
    assert_eq!(img.len(), w * h, "image is not {w} x {h}");
    let mut out = vec![0.0; w * h];
    if w == 0 {
        return out;
    }
    out.par_chunks_mut(w).enumerate().for_each(|(row, line)| {
        for (col, px) in line.iter_mut().enumerate() {
            let mut sum = 0.0;
            for (dr, &wr) in BLUR_TAPS.iter().enumerate() {
                let r = (row + dr).saturating_sub(2).min(h - 1);
                for (dc, &wc) in BLUR_TAPS.iter().enumerate() {
                    let c = (col + dc).saturating_sub(2).min(w - 1);
                    sum += wr * wc / 256.0 * img[r * w + c];
                }
            }
            *px = sum;
        }
    });
    out
}

// ---------------------------------------------------------------------------------------
// Matrix multiply
// ---------------------------------------------------------------------------------------

/// C = A B in f64, row-major: A is `rows` x `k`, B is `k` x `cols`, C is `rows` x `cols`,
/// c_ij = sum over p of a_ip b_pj.
pub fn matmul_f64<T: Copy + Into<f64>>(
    a: &[T],
    b: &[T],
    rows: usize,
    k: usize,
    cols: usize,
) -> Vec<f64> {
    assert_eq!(a.len(), rows * k, "A is not {rows} x {k}");
    assert_eq!(b.len(), k * cols, "B is not {k} x {cols}");
    let mut c = Vec::with_capacity(rows * cols);
    for i in 0..rows {
        for j in 0..cols {
            c.push(
                (0..k)
                    .map(|p| a[i * k + p].into() * b[p * cols + j].into())
                    .sum(),
            );
        }
    }
    c
}

/// C = A B by hand with rayon, in f32: one parallel task per row of C, each element a
/// dot product of a row of A with a column of B (the work split of a one-thread-per-
/// output GPU kernel; naive, not blocked or transposed, so far from a BLAS).
pub fn matmul_rayon(a: &[f32], b: &[f32], rows: usize, k: usize, cols: usize) -> Vec<f32> {
    assert_eq!(a.len(), rows * k, "A is not {rows} x {k}");
    assert_eq!(b.len(), k * cols, "B is not {k} x {cols}");
    let mut c = vec![0.0; rows * cols];
    if cols == 0 {
        return c;
    }
    c.par_chunks_mut(cols).enumerate().for_each(|(i, c_row)| {
        let a_row = &a[i * k..(i + 1) * k];
        for (j, cij) in c_row.iter_mut().enumerate() {
            *cij = a_row
                .iter()
                .enumerate()
                .map(|(p, &aip)| aip * b[p * cols + j])
                .sum();
        }
    });
    c
}

// ---------------------------------------------------------------------------------------
// k-means assignment
// ---------------------------------------------------------------------------------------

fn kmeans_shape(points: &[Vec<f32>], centroids: &[Vec<f32>]) -> (usize, usize) {
    assert!(!points.is_empty(), "k-means needs at least one dimension");
    assert_eq!(
        points.len(),
        centroids.len(),
        "points and centroids differ in dimension"
    );
    let (n, k) = (points[0].len(), centroids[0].len());
    assert!(
        points.iter().all(|c| c.len() == n),
        "point coordinates differ in length"
    );
    assert!(
        centroids.iter().all(|c| c.len() == k),
        "centroid coordinates differ in length"
    );
    assert!(k > 0, "k-means needs at least one centroid");
    (n, k)
}

/// The assignment step of Lloyd's k-means, the reference, in f32: each point's nearest
/// centroid by squared Euclidean distance, summed over the dimensions in order, the
/// centroids scanned in order with a strict `<`, so ties go to the lowest index.
/// `points[dim][i]` and `centroids[dim][c]` as from [`kmeans_data`]. Returns
/// `(labels, dist2)`: each point's centroid and its squared distance to it.
pub fn kmeans_assign(points: &[Vec<f32>], centroids: &[Vec<f32>]) -> (Vec<u32>, Vec<f32>) {
    let (n, k) = kmeans_shape(points, centroids);
    let (mut labels, mut dist2) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let (mut best, mut best_d2) = (0, f32::INFINITY);
        for c in 0..k {
            let mut d2 = 0.0f32;
            for (p, q) in points.iter().zip(centroids) {
                let d = p[i] - q[c];
                d2 += d * d;
            }
            if d2 < best_d2 {
                (best, best_d2) = (c as u32, d2);
            }
        }
        labels.push(best);
        dist2.push(best_d2);
    }
    (labels, dist2)
}

/// The k-means assignment by hand with rayon: one parallel task per point, the same
/// f32 arithmetic in the same order as [`kmeans_assign`], so the results are identical.
pub fn kmeans_assign_rayon(points: &[Vec<f32>], centroids: &[Vec<f32>]) -> (Vec<u32>, Vec<f32>) {
    let (n, k) = kmeans_shape(points, centroids);
    (0..n)
        .into_par_iter()
        .map(|i| {
            let (mut best, mut best_d2) = (0u32, f32::INFINITY);
            for c in 0..k {
                let d2: f32 = points
                    .iter()
                    .zip(centroids)
                    .map(|(p, q)| (p[i] - q[c]) * (p[i] - q[c]))
                    .sum();
                if d2 < best_d2 {
                    (best, best_d2) = (c as u32, d2);
                }
            }
            (best, best_d2)
        })
        .unzip()
}
