//! Kernels of any signature over arrays (`Runtime::call_arrays`, and `call` /
//! `call_reduce` given arrays): element-wise inputs and tables that are arrays, each
//! result an array left where it was computed, and a table that is an array moving
//! nothing when its parts are already on the device — on every placement, against the
//! same kernel over host data (bit for bit: the same devices compute the same
//! operations).

mod common;

use common::{gpu_targets, shared_cpu, targets_with_splits};
use hybrid::{fold_with, index, Array, Error, Expr, Kernel, Placement, Reduce, Sent, Table};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Three inputs of three types, a table, two results of two types.
#[allow(clippy::type_complexity)]
fn mixed() -> Kernel<(f32, u32, i32, Table<f32>), (f32, u32)> {
    Kernel::new(
        |(a, b, c, t): (Expr<f32>, Expr<u32>, Expr<i32>, Table<f32>)| {
            let r0 = (a.clone() + t.at(b.clone())).max(c.cast::<f32>());
            let r1 = (b ^ index()) + c.cast::<u32>();
            (r0, r1)
        },
    )
}

fn data(n: usize, seed: u64) -> (Vec<f32>, Vec<u32>, Vec<i32>, Vec<f32>) {
    let mut r = rng(seed);
    let a = (0..n).map(|_| r.random_range(-10.0f32..10.0)).collect();
    let b = (0..n).map(|_| r.random_range(0..200u32)).collect();
    let c = (0..n).map(|_| r.random_range(-50..50i32)).collect();
    let t = (0..150).map(|_| r.random_range(-10.0f32..10.0)).collect();
    (a, b, c, t)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn array_calls_equal_host_calls_and_leave_results_where_computed() {
    let n = 50_000;
    let (a, b, c, t) = data(n, 1);
    let k = mixed();
    let (xa, xb, xc, xt) = (
        Array::from_slice(&a),
        Array::from_slice(&b),
        Array::from_slice(&c),
        Array::from_slice(&t),
    );
    for target in targets_with_splits(&[0.5]) {
        let (rt, p) = (target.rt, target.placement);
        let host = rt.call(&k, (&a, &b, &c, &t), p).expect("host call");
        let run = rt
            .call_arrays(&k, (&xa, &xb, &xc, &xt), p)
            .expect("array call");
        let (r0, r1) = run.output;
        assert_eq!(r0.len(), n);
        assert_eq!(
            bits(&r0.to_vec().expect("r0")),
            bits(&host.output.0),
            "{target}"
        );
        assert_eq!(r1.to_vec().expect("r1"), host.output.1, "{target}");
        // results stay where computed: on the GPU for its share, nothing on the host
        if target.uses_gpu() {
            let on_gpu: usize = r1
                .parts()
                .iter()
                .filter(|q| q.device.is_some())
                .map(|q| q.range.len())
                .sum();
            assert!(on_gpu > 0, "{target}: no result part stayed on the GPU");
        }
        // host data beside arrays is made an array: same results
        let mixed = rt
            .call_arrays(&k, (&xa, &b, &c, &t), p)
            .expect("mixed call");
        assert_eq!(mixed.output.1.to_vec().expect("r1"), host.output.1);
        // `call` over arrays gathers the results on the host
        let gathered = rt.call(&k, (&xa, &xb, &xc, &xt), p).expect("gathered");
        assert_eq!(gathered.output.1, host.output.1, "{target}");
        if target.uses_gpu() {
            assert!(
                gathered.report.bytes_from_devices() > 0,
                "{target}: read-back not counted"
            );
        }
        // the report names each argument: three partitioned, one table sent whole
        let sent: Vec<Sent> = run.report.inputs().iter().map(|m| m.sent()).collect();
        assert_eq!(
            sent,
            [
                Sent::Partitioned,
                Sent::Partitioned,
                Sent::Partitioned,
                Sent::Whole
            ]
        );
    }
}

#[test]
fn a_chain_of_calls_on_the_gpu_moves_nothing_after_the_first() {
    let n = 40_000;
    let (a, b, c, t) = data(n, 2);
    let k = mixed();
    let next = Kernel::new(|(x, y): (Expr<f32>, Expr<u32>)| x * 0.5f32 + y.cast::<f32>());
    for target in gpu_targets(&[]) {
        let (rt, p) = (target.rt, target.placement);
        let (xa, xb, xc) = (
            Array::from_slice(&a),
            Array::from_slice(&b),
            Array::from_slice(&c),
        );
        let first = rt.call_arrays(&k, (&xa, &xb, &xc, &t), p).expect("first");
        assert!(first.report.bytes_to_devices() > 0);
        let (r0, r1) = first.output;
        let second = rt.call_arrays(&next, (&r0, &r1), p).expect("second");
        assert_eq!(second.report.bytes_to_devices(), 0, "results were moved");
        assert_eq!(second.report.bytes_from_devices(), 0);
        assert!(second.report.inputs().iter().all(|m| m.bytes() == 0));
        let host = rt.call(&k, (&a, &b, &c, &t), p).expect("host").output;
        let want = rt
            .call(&next, (&host.0, &host.1), p)
            .expect("host next")
            .output;
        assert_eq!(bits(&second.output.to_vec().expect("out")), bits(&want));
    }
}

/// One step of a softened all-pairs gravity: each body's new x, y from the tables of
/// every body's x, y and mass (`dt` folded in).
#[allow(clippy::type_complexity)]
fn step() -> Kernel<(f32, f32, Table<f32>, Table<f32>, Table<f32>), (f32, f32)> {
    Kernel::new(
        |(x, y, tx, ty, tm): (Expr<f32>, Expr<f32>, Table<f32>, Table<f32>, Table<f32>)| {
            let zero = Expr::constant(0.0f32);
            let (ax, ay) = fold_with(tx.len(), (zero.clone(), zero), |(ax, ay), j| {
                let dx = tx.at(j.clone()) - x.clone();
                let dy = ty.at(j.clone()) - y.clone();
                let d2 = dx.clone() * dx.clone() + dy.clone() * dy.clone() + 0.01f32;
                let w = tm.at(j) / (d2.clone() * d2.sqrt());
                (ax + dx * w.clone(), ay + dy * w)
            });
            (x + ax * 1e-4f32, y + ay * 1e-4f32)
        },
    )
}

#[test]
fn positions_stepped_on_the_gpu_are_tables_that_move_nothing() {
    let n = 1_000;
    let mut r = rng(3);
    let x: Vec<f32> = (0..n).map(|_| r.random_range(-1.0f32..1.0)).collect();
    let y: Vec<f32> = (0..n).map(|_| r.random_range(-1.0f32..1.0)).collect();
    let m: Vec<f32> = (0..n).map(|_| r.random_range(0.1f32..1.0)).collect();
    let k = step();
    for target in targets_with_splits(&[0.4]) {
        let (rt, p) = (target.rt, target.placement);
        // by host calls
        let (mut hx, mut hy) = (x.clone(), y.clone());
        for _ in 0..3 {
            let o = rt
                .call(&k, (&hx, &hy, &hx, &hy, &m), p)
                .expect("host step")
                .output;
            (hx, hy) = o;
        }
        // by arrays: positions stay where computed, the masses stay where sent
        let (mut ax, mut ay) = (Array::from_slice(&x), Array::from_slice(&y));
        let am = Array::from_slice(&m);
        let (mut table_bytes, mut sent) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let run = rt
                .call_arrays(&k, (&ax, &ay, &ax, &ay, &am), p)
                .expect("step");
            sent.push(run.report.bytes_to_devices());
            table_bytes.push(
                run.report.inputs()[2..]
                    .iter()
                    .map(|i| i.bytes())
                    .collect::<Vec<u64>>(),
            );
            (ax, ay) = run.output;
        }
        assert_eq!(bits(&ax.to_vec().expect("x")), bits(&hx), "{target}");
        assert_eq!(bits(&ay.to_vec().expect("y")), bits(&hy), "{target}");
        match p {
            Placement::Cpu => assert!(table_bytes.iter().flatten().all(|&b| b == 0)),
            Placement::Gpu => {
                // first step: the positions go up once, as element-wise inputs (the
                // tables of positions are the same parts, already there), and the
                // masses once; then the positions are the GPU's own results and the
                // masses are kept by their array: nothing moves
                let b = 4 * n as u64;
                assert_eq!(table_bytes[0], [0, 0, b], "{target}");
                assert_eq!(sent[0], 3 * b, "{target}");
                assert_eq!(table_bytes[1], [0, 0, 0], "{target}");
                assert_eq!(table_bytes[2], [0, 0, 0], "{target}");
                assert_eq!(sent[1..], [0, 0], "{target}");
            }
            _ => {
                // a split: the masses go up once; of the positions, only the CPU's
                // part (computed on the host) is sent at each step
                assert_eq!(table_bytes[1][2], 0, "{target}: masses sent again");
                assert!(
                    table_bytes[1][0] < 4 * n as u64,
                    "{target}: whole table sent"
                );
            }
        }
    }
}

#[test]
fn reductions_over_arrays_and_array_tables() {
    let n = 30_000;
    let (a, b, c, t) = data(n, 4);
    let k = Kernel::new(
        |(a, b, c, t): (Expr<f32>, Expr<u32>, Expr<i32>, Table<f32>)| {
            (a.max(t.at(b.clone())) + c.cast::<f32>()).cast::<i32>() + b.cast::<i32>()
        },
    );
    let (xa, xb, xc, xt) = (
        Array::from_slice(&a),
        Array::from_slice(&b),
        Array::from_slice(&c),
        Array::from_slice(&t),
    );
    for target in targets_with_splits(&[0.3]) {
        let (rt, p) = (target.rt, target.placement);
        let want = rt
            .call_reduce(&k, (&a, &b, &c, &t), Reduce::Sum, p)
            .expect("host");
        let got = rt
            .call_reduce(&k, (&xa, &xb, &xc, &xt), Reduce::Sum, p)
            .expect("arrays");
        assert_eq!(got.output, want.output, "{target}");
        let max = rt
            .call_reduce(&k, (&xa, &xb, &xc, &xt), Reduce::Max, p)
            .expect("max");
        let host_max = rt.call(&k, (&a, &b, &c, &t), p).expect("map").output;
        assert_eq!(Some(max.output), host_max.iter().copied().max(), "{target}");
    }
}

#[test]
fn empty_arrays_and_bad_lengths() {
    let rt = shared_cpu();
    let k = mixed();
    let e: Array<f32> = Array::from_vec(Vec::new());
    let eu: Array<u32> = Array::from_vec(Vec::new());
    let ei: Array<i32> = Array::from_vec(Vec::new());
    let t = Array::from_vec(vec![1.0f32]);
    let (r0, r1) = rt
        .call_arrays(&k, (&e, &eu, &ei, &t), Placement::Auto)
        .expect("empty")
        .output;
    assert!(r0.is_empty() && r1.is_empty());
    let short = Array::from_vec(vec![1u32, 2]);
    let a3 = Array::from_vec(vec![0.0f32; 3]);
    let i3 = Array::from_vec(vec![0i32; 3]);
    let err = rt
        .call_arrays(&k, (&a3, &short, &i3, &t), Placement::Auto)
        .err();
    assert!(
        matches!(err, Some(Error::LengthMismatch { left: 3, right: 2 })),
        "{err:?}"
    );
}

#[test]
fn a_gpu_failing_mid_call_has_its_share_redone_and_the_results_complete() {
    use common::gpu_runtime_with;
    use hybrid::Runtime;
    let Some(rt) = gpu_runtime_with(|| Runtime::builder().fail_gpu_after_chunks(1).build()) else {
        return;
    };
    let n = 1_000;
    let mut r = rng(5);
    let x: Vec<f32> = (0..n).map(|_| r.random_range(-1.0f32..1.0)).collect();
    let y: Vec<f32> = (0..n).map(|_| r.random_range(-1.0f32..1.0)).collect();
    let m: Vec<f32> = (0..n).map(|_| r.random_range(0.1f32..1.0)).collect();
    let k = step();
    let want = shared_cpu()
        .call(&k, (&x, &y, &x, &y, &m), Placement::Cpu)
        .expect("cpu")
        .output;
    let (ax, ay, am) = (
        Array::from_slice(&x),
        Array::from_slice(&y),
        Array::from_slice(&m),
    );
    let run = rt
        .call_arrays(&k, (&ax, &ay, &ax, &ay, &am), Placement::Split(0.5))
        .expect("recovered");
    assert!(!run.report.recoveries().is_empty(), "{}", run.report);
    let (gx, gy) = run.output;
    assert_eq!(bits(&gx.to_vec().expect("x")), bits(&want.0));
    assert_eq!(bits(&gy.to_vec().expect("y")), bits(&want.1));
}
