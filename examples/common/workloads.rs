//! The heterogeneous benchmark suite's kernels, each written once for every device:
//! Black-Scholes, all-pairs n-body, Mandelbrot, a 5x5 Gaussian blur, matrix multiply
//! and k-means assignment (the workloads Qilin, SKMD, EngineCL, FluidiCL and StarPU are
//! judged on). This is the part of each example to copy: a function that builds the
//! kernel; the examples, the tests (`tests/suite.rs`) and the benches run these.

#![allow(dead_code)]

use hybrid::{fold_while, fold_with, index, Expr, Float, Kernel, Table, Value};

/// The standard normal CDF, Abramowitz & Stegun 26.2.17 (as NVIDIA's CUDA SDK
/// Black-Scholes sample computes it): absolute error below 7.5e-8 in exact
/// arithmetic, about 1e-7 in f32.
pub fn cnd(d: Expr<f32>) -> Expr<f32> {
    const A1: f32 = 0.319_381_53;
    const A2: f32 = -0.356_563_78;
    const A3: f32 = 1.781_477_9;
    const A4: f32 = -1.821_256;
    const A5: f32 = 1.330_274_4;
    const RSQRT2PI: f32 = 0.398_942_3;
    let k = 1.0f32 / (d.abs() * 0.231_641_9f32 + 1.0f32);
    let poly = k.clone() * (((((k.clone() * A5 + A4) * k.clone()) + A3) * k.clone() + A2) * k + A1);
    let c = (d.clone() * d.clone() * -0.5f32).exp() * RSQRT2PI * poly;
    d.gt(0.0f32).select(1.0f32 - c.clone(), c)
}

/// Black-Scholes: European call and put prices for spot `s`, strike `x` and years to
/// expiry `t`, at riskless rate `r` and volatility `v`.
pub fn black_scholes(r: f32, v: f32) -> Kernel<(f32, f32, f32), (f32, f32)> {
    Kernel::new(move |(s, x, t): (Expr<f32>, Expr<f32>, Expr<f32>)| {
        let sqrt_t = t.sqrt();
        let d1 =
            ((s.clone() / x.clone()).ln() + t.clone() * (r + 0.5 * v * v)) / (sqrt_t.clone() * v);
        let d2 = d1.clone() - sqrt_t * v;
        let (n1, n2) = (cnd(d1), cnd(d2));
        let discounted = x * (t * -r).exp();
        let call = s.clone() * n1.clone() - discounted.clone() * n2.clone();
        let put = discounted * (1.0f32 - n2) - s * (1.0f32 - n1);
        (call, put)
    })
}

/// n-body's kernel in `T` (f32, or f64 with `--f64`): three positions element-wise,
/// three positions and the masses as tables; three results.
pub type NBodyKernelOf<T> = Kernel<(T, T, T, Table<T>, Table<T>, Table<T>, Table<T>), (T, T, T)>;

/// n-body's kernel in f32.
pub type NBodyKernel = NBodyKernelOf<f32>;

/// The n-body step's kernel in `T`: position and velocity element-wise, positions and
/// masses as tables; the new position and velocity.
pub type NBodyStepOf<T> =
    Kernel<(T, T, T, T, T, T, Table<T>, Table<T>, Table<T>, Table<T>), (T, T, T, T, T, T)>;

/// All-pairs n-body, softened: each body's acceleration from every body of the
/// tables (`G = 1`): `a_i = Σ_j m_j (r_j - r_i) / (|r_j - r_i|² + ε²)^{3/2}`. The body's
/// own position comes element-wise; all positions and masses as tables.
pub fn nbody(softening2: f32) -> NBodyKernel {
    nbody_in(softening2)
}

/// [`nbody`] computing in `T`: f32, or f64 (the same kernel, every value 64-bit).
#[allow(clippy::type_complexity)]
pub fn nbody_in<T: Float + Value>(softening2: T) -> NBodyKernelOf<T> {
    Kernel::new(
        move |(x, y, z, px, py, pz, m): (
            Expr<T>,
            Expr<T>,
            Expr<T>,
            Table<T>,
            Table<T>,
            Table<T>,
            Table<T>,
        )| { accel([x, y, z], [px, py, pz, m], softening2) },
    )
}

/// The acceleration of the body at `r` from every body of the tables (x, y, z, mass).
fn accel<T: Float + Value>(
    r: [Expr<T>; 3],
    t: [Table<T>; 4],
    softening2: T,
) -> (Expr<T>, Expr<T>, Expr<T>) {
    let [x, y, z] = r;
    let [px, py, pz, m] = t;
    let zero = Expr::constant(T::default());
    // folded to a literal of T
    let one = Expr::constant(1.0f32).cast::<T>();
    fold_with(
        px.len(),
        (zero.clone(), zero.clone(), zero),
        |(ax, ay, az), j| {
            let dx = px.at(j.clone()) - x.clone();
            let dy = py.at(j.clone()) - y.clone();
            let dz = pz.at(j.clone()) - z.clone();
            let d2 = dx.clone() * dx.clone()
                + dy.clone() * dy.clone()
                + dz.clone() * dz.clone()
                + Expr::constant(softening2);
            let inv = one / d2.sqrt();
            let s = m.at(j) * inv.clone() * inv.clone() * inv;
            (ax + dx * s.clone(), ay + dy * s.clone(), az + dz * s)
        },
    )
}

/// One step of n-body motion (semi-implicit Euler, `v += a dt; r += v dt`): each body's
/// position and velocity element-wise, every body's position and mass as tables; the
/// new position and velocity. Stepped over arrays (`Runtime::call_arrays`), the state
/// stays on the device that computed it and the position tables are its own parts.
pub fn nbody_step(softening2: f32, dt: f32) -> NBodyStepOf<f32> {
    nbody_step_in(softening2, dt)
}

/// [`nbody_step`] computing in `T`.
#[allow(clippy::type_complexity)]
pub fn nbody_step_in<T: Float + Value>(softening2: T, dt: T) -> NBodyStepOf<T> {
    Kernel::new(
        move |(x, y, z, vx, vy, vz, px, py, pz, m): (
            Expr<T>,
            Expr<T>,
            Expr<T>,
            Expr<T>,
            Expr<T>,
            Expr<T>,
            Table<T>,
            Table<T>,
            Table<T>,
            Table<T>,
        )| {
            let (ax, ay, az) = accel(
                [x.clone(), y.clone(), z.clone()],
                [px, py, pz, m],
                softening2,
            );
            let dt = Expr::constant(dt);
            let (vx, vy, vz) = (
                vx + ax * dt.clone(),
                vy + ay * dt.clone(),
                vz + az * dt.clone(),
            );
            (
                x + vx.clone() * dt.clone(),
                y + vy.clone() * dt.clone(),
                z + vz.clone() * dt,
                vx,
                vy,
                vz,
            )
        },
    )
}

/// The region and resolution of a Mandelbrot image.
#[derive(Debug, Clone, Copy)]
pub struct View {
    pub width: u32,
    pub height: u32,
    pub x0: f32,
    pub x1: f32,
    pub y0: f32,
    pub y1: f32,
}

impl View {
    /// The whole set: [-2, 0.5] x [-1.25, 1.25].
    pub fn whole(width: u32, height: u32) -> View {
        View {
            width,
            height,
            x0: -2.0,
            x1: 0.5,
            y0: -1.25,
            y1: 1.25,
        }
    }

    /// Pixel `(px, py)`'s point: the centre of the pixel.
    pub fn point(&self, px: u32, py: u32) -> (f32, f32) {
        let dx = (self.x1 - self.x0) / self.width as f32;
        let dy = (self.y1 - self.y0) / self.height as f32;
        (
            self.x0 + (px as f32 + 0.5) * dx,
            self.y0 + (py as f32 + 0.5) * dy,
        )
    }
}

/// Mandelbrot: for each pixel (row-major, from the element's index alone) the
/// iterations of `z = z² + c` from 0 until `|z|² > 4`, at most `max_iter`. The cost
/// per pixel varies by orders of magnitude across the image.
pub fn mandelbrot(view: View, max_iter: u32) -> Kernel<(), u32> {
    Kernel::new(move |()| {
        let i = index();
        let px = (i.clone() % view.width).cast::<f32>() + 0.5f32;
        let py = (i / view.width).cast::<f32>() + 0.5f32;
        let cr = px * ((view.x1 - view.x0) / view.width as f32) + view.x0;
        let ci = py * ((view.y1 - view.y0) / view.height as f32) + view.y0;
        let zero = Expr::constant(0.0f32);
        let (_, n) = fold_while(
            max_iter,
            (zero.clone(), zero),
            |(zr, zi), _| (zr.clone() * zr + zi.clone() * zi).le(4.0f32),
            |(zr, zi), _| {
                let re = zr.clone() * zr.clone() - zi.clone() * zi.clone() + cr.clone();
                let im = zr * zi * 2.0f32 + ci.clone();
                (re, im)
            },
        );
        n
    })
}

/// The 5x5 binomial Gaussian, `[1 4 6 4 1]ᵀ[1 4 6 4 1] / 256`.
pub const GAUSS5: [f32; 5] = [1.0, 4.0, 6.0, 4.0, 1.0];

/// A 5x5 Gaussian blur of a row-major `height x width` image, edges clamped, written
/// the natural way: row and column from the index, each neighbour's row and column
/// clamped into the image. The library bounds these reads to about two rows around
/// each pixel, so a device gets its share of the image plus that halo.
pub fn blur(width: u32, height: u32) -> Kernel<(Table<f32>,), f32> {
    Kernel::new(move |(img,): (Table<f32>,)| {
        let i = index();
        let row = (i.clone() / width).cast::<i32>();
        let col = (i % width).cast::<i32>();
        let (w, h) = (width as i32, height as i32);
        let mut sum = Expr::constant(0.0f32);
        for (dr, wr) in (-2..=2).zip(GAUSS5) {
            let r = (row.clone() + dr).clamp(0, h - 1);
            for (dc, wc) in (-2..=2).zip(GAUSS5) {
                let c = (col.clone() + dc).clamp(0, w - 1);
                sum = sum + img.at(r.clone() * w + c) * (wr * wc / 256.0);
            }
        }
        sum
    })
}

/// Matrix multiply `C = A B`, A `rows x k`, B `k x cols`, all row-major: element
/// `i` of C (row `i / cols`, column `i % cols`) is the dot product of A's row and B's
/// column, read from the two tables.
pub fn matmul(k: u32, cols: u32) -> Kernel<(Table<f32>, Table<f32>), f32> {
    Kernel::new(move |(a, b): (Table<f32>, Table<f32>)| {
        let i = index();
        let row = i.clone() / cols;
        let col = i % cols;
        fold_with(k, Expr::constant(0.0f32), |acc, j| {
            acc + a.at(row.clone() * k + j.clone()) * b.at(j * cols + col.clone())
        })
    })
}

/// k-means assignment in 2D: each point's nearest centroid (the lowest index among
/// equals) and the squared distance to it.
#[allow(clippy::type_complexity)]
pub fn kmeans_assign() -> Kernel<(f32, f32, Table<f32>, Table<f32>), (u32, f32)> {
    Kernel::new(
        |(x, y, cx, cy): (Expr<f32>, Expr<f32>, Table<f32>, Table<f32>)| {
            let start = (Expr::constant(0u32), Expr::constant(f32::INFINITY));
            fold_with(cx.len(), start, |(best, bd), j| {
                let dx = x.clone() - cx.at(j.clone());
                let dy = y.clone() - cy.at(j.clone());
                let d = dx.clone() * dx + dy.clone() * dy;
                let closer = d.lt(bd.clone());
                (closer.select(j, best), closer.select(d, bd))
            })
        },
    )
}
