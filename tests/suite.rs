//! The benchmark suite's workloads (`examples/common/workloads.rs`), each checked on
//! every placement against references no one here derived from the library: Hull's
//! textbook Black-Scholes case and f64 closed forms, an f64 direct n-body sum and
//! Newton's third law, an f64 Mandelbrot loop and the set's known area, f64 direct
//! sums for the blur and matrix multiply, a hand-written k-means assignment.
//!
//! Tolerances are stated per check, from the float error of the operation: `u` is
//! 2^-24, f32's unit roundoff; a GPU may contract `a * b + c` into one rounding,
//! which stays within these bounds.

mod common;

#[path = "../examples/common/suite.rs"]
mod suite;
#[path = "../examples/common/workloads.rs"]
mod workloads;

use common::targets_with_splits;
use hybrid::{Array, Placement, Sent};

const U: f64 = 1.0 / (1u64 << 24) as f64;

#[test]
fn black_scholes_matches_hull_and_the_closed_form() {
    // Hull, Options, Futures and Other Derivatives, example 15.6: S=42, K=40,
    // r=10%, sigma=20%, T=0.5: call 4.76, put 0.81 (4.7594 and 0.8086 to 4 places).
    let hull = workloads::black_scholes(0.1, 0.2);
    let opts = suite::options(20_000, 7);
    let (r, v) = (suite::BS_RATE, suite::BS_VOLATILITY);
    let k = workloads::black_scholes(r, v);
    for t in targets_with_splits(&[0.5]) {
        let (call, put) =
            t.rt.call(&hull, (&[42.0f32], &[40.0f32], &[0.5f32]), t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"))
                .output;
        // 4 places rounded, plus f32: 1e-4
        assert!((call[0] - 4.7594).abs() < 1e-4, "{t}: call {}", call[0]);
        assert!((put[0] - 0.8086).abs() < 1e-4, "{t}: put {}", put[0]);

        let (call, put) =
            t.rt.call(&k, (&opts.spot, &opts.strike, &opts.years), t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"))
                .output;
        let mut worst = 0.0f64;
        for i in 0..opts.spot.len() {
            let (s, x, y) = (opts.spot[i], opts.strike[i], opts.years[i]);
            let (c64, p64) =
                suite::black_scholes_f64(s as f64, x as f64, y as f64, r as f64, v as f64);
            worst = worst
                .max((call[i] as f64 - c64).abs())
                .max((put[i] as f64 - p64).abs());
            // put-call parity holds in the kernel's own arithmetic: C - P = S - K e^{-rT},
            // to the f32 rounding of prices up to ~130
            let parity =
                (call[i] - put[i]) as f64 - (s as f64 - x as f64 * (-(r as f64) * y as f64).exp());
            assert!(parity.abs() < 1e-4, "{t}: parity off by {parity} at {i}");
        }
        // the CDF's error (< 1e-6 in f32) times prices up to ~130, and f32 rounding
        assert!(worst < 2e-4, "{t}: worst price error {worst}");
    }
}

#[test]
fn nbody_matches_the_f64_direct_sum_and_conserves_momentum() {
    let soft = suite::NBODY_SOFTENING2;
    let k = workloads::nbody(soft);
    let b = suite::bodies(700, 11);
    let (rx, ry, rz) = suite::nbody_accel_f64(&b.x, &b.y, &b.z, &b.m, soft as f64);
    let n = b.x.len();
    for t in targets_with_splits(&[0.5]) {
        let args = (&b.x, &b.y, &b.z, &b.x, &b.y, &b.z, &b.m);
        let run =
            t.rt.call(&k, args, t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"));
        let (ax, ay, az) = run.output;
        for i in 0..n {
            // the sum of |terms|: f32 accumulates n of them, each a few roundings
            let mut mag = 0.0f64;
            for j in 0..n {
                let d = [b.x[j] - b.x[i], b.y[j] - b.y[i], b.z[j] - b.z[i]].map(|v| v as f64);
                let r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2] + soft as f64;
                mag += b.m[j] as f64 * r2.sqrt() / (r2 * r2);
            }
            let tol = (n as f64 + 16.0) * U * mag * 2.0;
            for (got, want) in [(ax[i], rx[i]), (ay[i], ry[i]), (az[i], rz[i])] {
                assert!(
                    (got as f64 - want).abs() <= tol,
                    "{t}: body {i}: {got} vs {want} (tol {tol})"
                );
            }
        }
        // Newton's third law: the total force is zero (to the rounding of its terms)
        let total: f64 = (0..n).map(|i| b.m[i] as f64 * ax[i] as f64).sum();
        let scale: f64 = (0..n).map(|i| (b.m[i] * ax[i]).abs() as f64).sum();
        assert!(
            total.abs() <= 1e-4 * scale,
            "{t}: total force {total} of {scale}"
        );
        if t.placement != Placement::Cpu {
            // the tables went to the GPU whole; the bodies' own positions partitioned
            let sent: Vec<Sent> = run.report.inputs().iter().map(|m| m.sent()).collect();
            assert_eq!(&sent[..3], &[Sent::Partitioned; 3], "{t}");
            assert_eq!(&sent[3..], &[Sent::Whole; 4], "{t}");
            let table_bytes: u64 = run.report.inputs()[3..].iter().map(|m| m.bytes()).sum();
            assert_eq!(table_bytes, 4 * 4 * n as u64, "{t}: each table sent once");
        }
    }
}

/// Issue 15: n-body in f64, one step (`workloads::nbody_step_in::<f64>`: positions and
/// velocities element-wise and 64-bit, positions and masses as f64 tables, six f64
/// results) against the f64 step by hand (`suite::nbody_step_f64`) on every placement:
/// velocities and positions within 1e-12 of the largest, relative. (The two differ
/// in how each term is rounded and in the order of the sum: about 1e-15.) The f32
/// step is far outside that bound: the test tells f64 from f32.
#[test]
fn nbody_in_f64_matches_the_f64_step_within_1e_12() {
    let soft = suite::NBODY_SOFTENING2 as f64;
    let dt = 1e-3f64;
    let k = workloads::nbody_step_in::<f64>(soft, dt);
    let b = suite::bodies(500, 13);
    let mut want = suite::NBody64::at_rest(&b);
    let s = suite::NBody64::at_rest(&b);
    suite::nbody_step_f64(&mut want, soft, dt);
    let largest = |v: [&Vec<f64>; 3]| {
        (0..v[0].len())
            .map(|i| (v[0][i].powi(2) + v[1][i].powi(2) + v[2][i].powi(2)).sqrt())
            .fold(0.0f64, f64::max)
    };
    let error = |got: [&Vec<f64>; 3], want: [&Vec<f64>; 3]| {
        let d: Vec<Vec<f64>> = (0..3)
            .map(|c| got[c].iter().zip(want[c]).map(|(g, w)| g - w).collect())
            .collect();
        largest([&d[0], &d[1], &d[2]]) / largest(want)
    };
    // the same step in f32
    let k32 = workloads::nbody_step(suite::NBODY_SOFTENING2, dt as f32);
    let z32 = vec![0.0f32; b.x.len()];
    let f32_run = common::shared_cpu()
        .call(
            &k32,
            (&b.x, &b.y, &b.z, &z32, &z32, &z32, &b.x, &b.y, &b.z, &b.m),
            Placement::Cpu,
        )
        .expect("f32 step")
        .output;
    let widen = |v: &Vec<f32>| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let (v32x, v32y, v32z) = (widen(&f32_run.3), widen(&f32_run.4), widen(&f32_run.5));
    let f32_error = error([&v32x, &v32y, &v32z], [&want.vx, &want.vy, &want.vz]);
    assert!(f32_error > 1e-9, "the f32 step is {f32_error} off");
    for t in targets_with_splits(&[0.5]) {
        let args = (
            &s.x, &s.y, &s.z, &s.vx, &s.vy, &s.vz, &s.x, &s.y, &s.z, &s.m,
        );
        let run =
            t.rt.call(&k, args, t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"));
        if t.uses_gpu() {
            assert!(common::gpu_elements(&run.report) > 0, "{t}: {}", run.report);
        }
        let (x, y, z, vx, vy, vz) = run.output;
        let ev = error([&vx, &vy, &vz], [&want.vx, &want.vy, &want.vz]);
        let ex = error([&x, &y, &z], [&want.x, &want.y, &want.z]);
        assert!(
            ev <= 1e-12 && ex <= 1e-12,
            "{t}: velocities {ev}, positions {ex}"
        );
    }
}

#[test]
fn nbody_momentum_is_conserved_over_steps() {
    let soft = suite::NBODY_SOFTENING2;
    let k = workloads::nbody(soft);
    let b = suite::bodies(300, 12);
    let n = b.x.len();
    for t in targets_with_splits(&[0.5]) {
        let (mut x, mut y, mut z) = (b.x.clone(), b.y.clone(), b.z.clone());
        let (mut vx, mut vy, mut vz) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
        let dt = 1e-3f32;
        for _ in 0..5 {
            let (ax, ay, az) =
                t.rt.call(&k, (&x, &y, &z, &x, &y, &z, &b.m), t.placement)
                    .unwrap_or_else(|e| panic!("{t}: {e}"))
                    .output;
            for i in 0..n {
                vx[i] += ax[i] * dt;
                vy[i] += ay[i] * dt;
                vz[i] += az[i] * dt;
                x[i] += vx[i] * dt;
                y[i] += vy[i] * dt;
                z[i] += vz[i] * dt;
            }
        }
        // at rest to begin with: the total momentum stays zero to rounding
        for v in [&vx, &vy, &vz] {
            let p: f64 = (0..n).map(|i| (b.m[i] * v[i]) as f64).sum();
            let scale: f64 = (0..n).map(|i| (b.m[i] * v[i]).abs() as f64).sum();
            assert!(p.abs() <= 1e-4 * scale, "{t}: momentum {p} of {scale}");
        }
    }
}

#[test]
fn nbody_stepped_over_arrays_conserves_momentum_and_keeps_its_state_on_the_gpu() {
    let soft = suite::NBODY_SOFTENING2;
    let k = workloads::nbody_step(soft, 1e-3);
    let b = suite::bodies(300, 13);
    let n = b.x.len();
    let zeros = vec![0.0f32; n];
    for t in targets_with_splits(&[0.5]) {
        let arr = Array::from_slice;
        let (mut x, mut y, mut z) = (arr(&b.x), arr(&b.y), arr(&b.z));
        let (mut vx, mut vy, mut vz) = (arr(&zeros), arr(&zeros), arr(&zeros));
        let m = arr(&b.m);
        let mut sent = Vec::new();
        for _ in 0..5 {
            let run =
                t.rt.call_arrays(&k, (&x, &y, &z, &vx, &vy, &vz, &x, &y, &z, &m), t.placement)
                    .unwrap_or_else(|e| panic!("{t}: {e}"));
            sent.push(run.report.bytes_to_devices() + run.report.bytes_from_devices());
            (x, y, z, vx, vy, vz) = run.output;
        }
        // at rest to begin with: the total momentum stays zero to rounding
        for v in [&vx, &vy, &vz] {
            let v = v.to_vec().unwrap_or_else(|e| panic!("{t}: {e}"));
            let p: f64 = (0..n).map(|i| (b.m[i] * v[i]) as f64).sum();
            let scale: f64 = (0..n).map(|i| (b.m[i] * v[i]).abs() as f64).sum();
            assert!(
                p.abs() <= 1e-4 * scale && scale > 0.0,
                "{t}: momentum {p} of {scale}"
            );
        }
        if t.placement == Placement::Gpu {
            // the state goes up once, then stays: the steps after the first move nothing
            assert_eq!(sent[0], 7 * 4 * n as u64, "{t}");
            assert_eq!(sent[1..], [0; 4], "{t}");
        }
    }
}

#[test]
fn mandelbrot_counts_match_f64_off_the_boundary_and_give_the_known_area() {
    let (w, h, max) = (240u32, 200u32, 200u32);
    let view = workloads::View::whole(w, h);
    let k = workloads::mandelbrot(view, max);
    let want = suite::mandelbrot_counts_f64(
        w as usize,
        h as usize,
        view.x0 as f64,
        view.x1 as f64,
        view.y0 as f64,
        view.y1 as f64,
        max,
    );
    for t in targets_with_splits(&[0.5]) {
        let got =
            t.rt.call_over((w * h) as usize, &k, (), t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"))
                .output;
        // f32 and f64 may leave a band at different iterations where |z| crosses 2 in
        // the last bits: a pixel may differ only on such a band's edge, where a
        // neighbour's f64 count differs from its own.
        let mut differ = 0;
        for py in 0..h as usize {
            for px in 0..w as usize {
                let i = py * w as usize + px;
                if got[i] == want[i] {
                    continue;
                }
                differ += 1;
                let edge = (py.saturating_sub(1)..(py + 2).min(h as usize)).any(|qy| {
                    (px.saturating_sub(1)..(px + 2).min(w as usize))
                        .any(|qx| want[qy * w as usize + qx] != want[i])
                });
                assert!(
                    edge,
                    "{t}: pixel ({px}, {py}) off a band edge: {} vs {}",
                    got[i], want[i]
                );
            }
        }
        assert!(differ * 100 <= got.len(), "{t}: {differ} pixels differ");
    }
    // the set's area (1.5066, Förstemann's estimate) from a finer grid and cap
    let (w, h, max) = (800u32, 800u32, 1000u32);
    let view = workloads::View::whole(w, h);
    let k = workloads::mandelbrot(view, max);
    let counts = common::shared_cpu()
        .call_over((w * h) as usize, &k, (), Placement::Auto)
        .unwrap_or_else(|e| panic!("{e}"))
        .output;
    let pixel = (2.5 / w as f64) * (2.5 / h as f64);
    let area = suite::mandelbrot_area_from_counts(&counts, max, pixel);
    assert!((area - 1.5066).abs() < 0.01, "area {area}");
}

#[test]
fn blur_matches_the_f64_sum_and_moves_only_a_halo() {
    let (w, h) = (97usize, 61usize);
    let img = suite::image(w, h, 5);
    let want = suite::blur5x5_f64(&img, w, h);
    let k = workloads::blur(w as u32, h as u32);
    for t in targets_with_splits(&[0.5]) {
        let run =
            t.rt.call_over(w * h, &k, (&img,), t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"));
        for (i, (&g, &r)) in run.output.iter().zip(&want).enumerate() {
            // 25 terms of pixels in [0, 1], weights summing to 1
            assert!((g as f64 - r).abs() <= 2e-6, "{t}: pixel {i}: {g} vs {r}");
        }
        if let Placement::Split(_) = t.placement {
            let m = run.report.inputs()[0];
            assert!(matches!(m.sent(), Sent::Halo { .. }), "{t}: {m}");
            // a share and a few rows, not the whole image
            assert!(m.bytes() < 4 * (w * h) as u64, "{t}: {m}");
        }
    }
}

#[test]
fn matmul_matches_the_f64_product() {
    let (rows, kk, cols) = (37usize, 53usize, 41usize);
    let (a, b) = suite::matrices(rows, kk, cols, 9);
    let want = suite::matmul_f64(&a, &b, rows, kk, cols);
    let k = workloads::matmul(kk as u32, cols as u32);
    for t in targets_with_splits(&[0.5]) {
        let got =
            t.rt.call_over(rows * cols, &k, (&a, &b), t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"))
                .output;
        for r in 0..rows {
            for c in 0..cols {
                let mag: f64 = (0..kk)
                    .map(|j| (a[r * kk + j] * b[j * cols + c]).abs() as f64)
                    .sum();
                // Higham's bound for a dot product of length k, doubled for contraction
                let tol = 2.0 * kk as f64 * U * mag;
                let (g, w) = (got[r * cols + c] as f64, want[r * cols + c]);
                assert!((g - w).abs() <= tol, "{t}: C[{r}][{c}] {g} vs {w}");
            }
        }
    }
}

#[test]
fn kmeans_labels_match_the_hand_written_assignment() {
    let (points, centroids) = suite::kmeans_data(6000, 2, 24, 13);
    let (want, want_d) = suite::kmeans_assign(&points, &centroids);
    let k = workloads::kmeans_assign();
    for t in targets_with_splits(&[0.5]) {
        let args = (&points[0], &points[1], &centroids[0], &centroids[1]);
        let (labels, dist) =
            t.rt.call(&k, args, t.placement)
                .unwrap_or_else(|e| panic!("{t}: {e}"))
                .output;
        for i in 0..labels.len() {
            if labels[i] == want[i] {
                assert!(
                    (dist[i] - want_d[i]).abs() <= 4.0 * f32::EPSILON * want_d[i],
                    "{t}: {i}"
                );
                continue;
            }
            // a GPU may contract dx*dx + dy*dy: a different label only at a near-tie
            let d = |c: usize| {
                let (dx, dy) = (
                    points[0][i] - centroids[0][c],
                    points[1][i] - centroids[1][c],
                );
                (dx * dx + dy * dy) as f64
            };
            let (a, b) = (d(labels[i] as usize), d(want[i] as usize));
            assert!(
                t.placement != Placement::Cpu,
                "the CPU follows the same order exactly"
            );
            assert!(
                (a - b).abs() <= 4.0 * U * a.max(b),
                "{t}: point {i}: {a} vs {b}"
            );
        }
    }
}
