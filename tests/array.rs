//! Arrays that stay where they were computed, and fused lazy chains (`src/array.rs`).
//!
//! Every check compares with the same work done by `map` on slices, with a reference
//! computed on the host. Integer chains (wrapping arithmetic, xor, shifts, the index)
//! must agree bit for bit on every device and every way of running; float chains
//! within a stated tolerance, since a fused shader lets the GPU's compiler reorder
//! operations across what were stage boundaries (see README, "One meaning").

mod common;

use common::gpu_runtime_with;
use hybrid::{index, Array, Backend, Coherence, Expr, Kernel, Placement, Reduce, Runtime, State};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Relative tolerance of the float chain, fused against unfused and against slices:
/// ten stages of a few roundings each, reordered at most across stage boundaries.
const F32_TOL: f32 = 1e-4;

fn fresh_runtime(gpu: bool) -> Option<Runtime> {
    let dir = std::env::temp_dir().join(format!(
        "hybrid-array-test-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    if gpu {
        gpu_runtime_with(|| Runtime::builder().cache_dir(dir).build())
    } else {
        Runtime::builder()
            .backend(Backend::Cpu)
            .cache_dir(dir)
            .build()
            .ok()
    }
}

/// Ten integer stages: each depends on the element's index, so a stage that ran on
/// the wrong elements or out of order changes the result.
fn int_stages() -> Vec<Kernel<u32, u32>> {
    (0..10u32)
        .map(|s| {
            Kernel::map(move |x: Expr<u32>| {
                let y = (x.clone() * (2 * s + 3) + index()) ^ (x >> (s % 7 + 1));
                y + s.wrapping_mul(0x9e37_79b9)
            })
        })
        .collect()
}

/// Ten float stages of mixed cost.
fn float_stages() -> Vec<Kernel<f32, f32>> {
    let mut v: Vec<Kernel<f32, f32>> = Vec::new();
    for s in 0..10 {
        let k = match s % 5 {
            0 => Kernel::map(|x: Expr<f32>| x * 1.01 + 0.5),
            1 => Kernel::map(|x: Expr<f32>| x.abs().sqrt() + 1.0),
            2 => Kernel::map(|x: Expr<f32>| x.clone() * x.clone() * 0.25 - x),
            3 => Kernel::map(|x: Expr<f32>| x.sin() * 3.0 + index().cast::<f32>() * 1e-4),
            _ => Kernel::map(|x: Expr<f32>| x.clamp(-10.0, 10.0)),
        };
        v.push(k);
    }
    v
}

fn placements(gpu: bool) -> Vec<Placement> {
    let mut p = vec![Placement::Cpu, Placement::Auto];
    if gpu {
        p.extend([Placement::Gpu, Placement::Split(0.5), Placement::Split(0.9)]);
    }
    p
}

fn runtimes() -> Vec<(Runtime, bool)> {
    let mut v = Vec::new();
    if let Some(rt) = fresh_runtime(false) {
        v.push((rt, false));
    }
    if let Some(rt) = fresh_runtime(true) {
        v.push((rt, true));
    }
    v
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= F32_TOL * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn a_chain_of_ten_maps_equals_ten_slice_maps_everywhere() {
    let n = 70_001; // more than one CPU task, not a multiple of anything
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let xs: Vec<u32> = (0..n).map(|_| rng.random()).collect();
    let fs: Vec<f32> = (0..n).map(|_| rng.random_range(-4.0..4.0)).collect();
    let ints = int_stages();
    let floats = float_stages();
    // the reference: ten slice maps on the CPU
    let cpu = fresh_runtime(false).expect("a cpu runtime");
    let mut want = xs.clone();
    let mut want_f = fs.clone();
    for (k, f) in ints.iter().zip(&floats) {
        want = cpu.map(&want, k, Placement::Cpu).expect("slice map").output;
        want_f = cpu
            .map(&want_f, f, Placement::Cpu)
            .expect("slice map")
            .output;
    }
    for (rt, gpu) in runtimes() {
        for p in placements(gpu) {
            for fuse in [true, false] {
                let a = Array::from_slice(&xs);
                let mut chain = a.lazy().fuse(fuse);
                for k in &ints {
                    chain = chain.map(k);
                }
                let run = chain.to_vec(&rt, p).expect("int chain");
                assert_eq!(run.output, want, "{p} fuse={fuse} gpu={gpu}");
                let r = &run.report;
                assert_eq!(r.kernels_fused(), if fuse { 10 } else { 1 }, "{r}");
                assert_eq!(r.steps(), if fuse { 1 } else { 10 }, "{r}");

                let a = Array::from_slice(&fs);
                let mut chain = a.lazy().fuse(fuse);
                for k in &floats {
                    chain = chain.map(k);
                }
                let got = chain.to_vec(&rt, p).expect("float chain").output;
                let bad = (0..n).find(|&i| !close(got[i], want_f[i]));
                assert_eq!(bad, None, "{p} fuse={fuse} gpu={gpu}: {bad:?}");
            }
        }
    }
}

#[test]
fn a_gpu_chain_moves_its_data_once_each_way() {
    let Some(rt) = fresh_runtime(true) else {
        return;
    };
    let n = 1 << 20;
    let xs: Vec<u32> = (0..n as u32).collect();
    let ints = int_stages();
    let bytes = 4 * n as u64;
    for fuse in [true, false] {
        let a = Array::from_slice(&xs);
        let mut chain = a.lazy().fuse(fuse);
        for k in &ints {
            chain = chain.map(k);
        }
        let run = chain.eval(&rt, Placement::Gpu).expect("gpu chain");
        // one upload, nothing back: the result stays on the GPU
        assert_eq!(run.report.bytes_to_devices(), bytes, "{}", run.report);
        assert_eq!(run.report.bytes_from_devices(), 0, "{}", run.report);
        let out = run.output;
        assert_eq!(out.bytes_only_on_devices(), bytes);
        for part in out.parts() {
            assert!(part.device.is_some());
            assert_eq!(
                part.state,
                Coherence {
                    host: State::Invalid,
                    device: State::Modified
                }
            );
        }
        // gathering reads it back once; a second gather moves nothing
        let (v, read) = out.to_vec_counted().expect("gather");
        assert_eq!(read, bytes);
        assert_eq!(out.to_vec_counted().expect("gather").1, 0);
        for part in out.parts() {
            assert_eq!(
                part.state,
                Coherence {
                    host: State::Shared,
                    device: State::Shared
                }
            );
        }
        let mut want = xs.clone();
        for k in &ints {
            want = rt.map(&want, k, Placement::Cpu).expect("slice").output;
        }
        assert_eq!(v, want);
    }
    // split: the GPU's part goes up once and comes back once, in the same report
    for f in [0.5, 0.25] {
        let a = Array::from_slice(&xs);
        let mut chain = a.lazy();
        for k in &ints {
            chain = chain.map(k);
        }
        let run = chain.to_vec(&rt, Placement::Split(f)).expect("split chain");
        let gpu_elems = common::gpu_elements(&run.report);
        assert!(gpu_elems > 0 && gpu_elems < n, "{}", run.report);
        let part = 4 * gpu_elems as u64;
        assert_eq!(run.report.bytes_to_devices(), part, "{}", run.report);
        assert_eq!(run.report.bytes_from_devices(), part, "{}", run.report);
    }
    // the same ten maps on slices move the data ten times each way
    let mut ys = xs.clone();
    let (mut up, mut down) = (0, 0);
    for k in &ints {
        let r = rt.map(&ys, k, Placement::Gpu).expect("slice map");
        up += r.report.bytes_to_devices();
        down += r.report.bytes_from_devices();
        ys = r.output;
    }
    assert_eq!((up, down), (10 * bytes, 10 * bytes));
}

#[test]
fn data_on_the_gpu_stays_there_for_the_next_call() {
    let Some(rt) = fresh_runtime(true) else {
        return;
    };
    let n = 300_000;
    let xs: Vec<f32> = (0..n).map(|i| i as f32 * 0.001).collect();
    let k = Kernel::map(|x: Expr<f32>| x * 2.0 + 1.0);
    let a = rt
        .map_array(&Array::from_slice(&xs), &k, Placement::Gpu)
        .expect("first")
        .output;
    // placed on the GPU again: nothing moves
    let b = rt.map_array(&a, &k, Placement::Gpu).expect("second");
    assert_eq!(b.report.bytes_to_devices(), 0, "{}", b.report);
    assert_eq!(b.report.bytes_from_devices(), 0, "{}", b.report);
    // Auto with no model yet keeps it where it is, and says so
    let c = rt.map_array(&b.output, &k, Placement::Auto).expect("auto");
    assert!(
        c.report.decision().contains("kept where the data is"),
        "{}",
        c.report
    );
    assert_eq!(c.report.bytes_to_devices(), 0, "{}", c.report);
    assert_eq!(c.report.bytes_from_devices(), 0, "{}", c.report);
    // the CPU needs it on the host: read back once, counted
    let d = rt.map_array(&c.output, &k, Placement::Cpu).expect("cpu");
    assert_eq!(d.report.bytes_from_devices(), 4 * n as u64, "{}", d.report);
    let got = d.output.to_vec().expect("gather");
    for (i, (&g, &x)) in got.iter().zip(&xs).enumerate() {
        let mut w = x;
        for _ in 0..4 {
            w = w * 2.0 + 1.0;
        }
        assert!(close(g, w), "element {i}: {g} vs {w}");
    }
    // a two-input map of an array on the GPU with one on the host moves only the latter
    let h = Array::from_slice(&xs);
    let add = Kernel::map2(|x: Expr<f32>, y: Expr<f32>| x + y);
    let e = rt.map2_array(&a, &h, &add, Placement::Gpu).expect("map2");
    assert_eq!(e.report.bytes_to_devices(), 4 * n as u64, "{}", e.report);
    // releasing the GPU's copies keeps the elements
    let before = e.output.to_vec().expect("gather");
    e.output.release_devices().expect("release");
    assert_eq!(e.output.bytes_only_on_devices(), 0);
    assert!(e.output.parts().iter().all(|p| p.device.is_none()));
    assert_eq!(e.output.to_vec().expect("gather"), before);
}

#[test]
fn reductions_of_resident_data_send_back_partials_only() {
    let n = 1 << 20;
    let xs: Vec<u32> = (0..n as u32)
        .map(|i| i.wrapping_mul(2_654_435_761))
        .collect();
    let sq = Kernel::map(|x: Expr<u32>| (x.clone() ^ index()) * x);
    let want = xs.iter().enumerate().fold(0u32, |acc, (i, &x)| {
        acc.wrapping_add((x ^ i as u32).wrapping_mul(x))
    });
    for (rt, gpu) in runtimes() {
        for p in placements(gpu) {
            let a = Array::from_slice(&xs);
            let r = rt.reduce_array(&a, &sq, Reduce::Sum, p).expect("reduce");
            assert_eq!(r.output, want, "{p}");
            // a fused chain into a reduction: one pass
            let r = a
                .lazy()
                .map(&Kernel::map(|x: Expr<u32>| x ^ index()))
                .map(&Kernel::map(|x: Expr<u32>| x))
                .reduce(&rt, Reduce::Sum, p)
                .expect("fused reduce");
            let w = xs
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, &x)| acc.wrapping_add(x ^ i as u32));
            assert_eq!(r.output, w, "{p}");
            assert_eq!(r.report.kernels_fused(), 2);
        }
        if gpu {
            let a = rt
                .map_array(
                    &Array::from_slice(&xs),
                    &Kernel::map(|x: Expr<u32>| x),
                    Placement::Gpu,
                )
                .expect("to gpu")
                .output;
            let r = rt
                .reduce_array(&a, &sq, Reduce::Sum, Placement::Gpu)
                .expect("reduce");
            assert_eq!(r.output, want);
            assert_eq!(r.report.bytes_to_devices(), 0, "{}", r.report);
            // one partial per 2,048 elements comes back, not the data
            let partials = 4 * (n as u64).div_ceil(2048);
            assert_eq!(r.report.bytes_from_devices(), partials, "{}", r.report);
        }
    }
}

#[test]
fn empty_arrays_bad_lengths_and_hand_written_stages() {
    for (rt, gpu) in runtimes() {
        for p in placements(gpu) {
            let e = Array::<f32>::from_vec(Vec::new());
            let k = Kernel::map(|x: Expr<f32>| x + 1.0);
            let r = rt.map_array(&e, &k, p).expect("empty map");
            assert!(r.output.is_empty());
            assert_eq!(r.output.to_vec().expect("empty"), Vec::<f32>::new());
            assert_eq!(
                e.lazy()
                    .map(&k)
                    .map(&k)
                    .to_vec(&rt, p)
                    .expect("chain")
                    .output,
                Vec::<f32>::new()
            );
            let s = rt.reduce_array(&e, &k, Reduce::Sum, p).expect("empty sum");
            assert_eq!(s.output, 0.0);
            let a = Array::from_vec(vec![1.0f32; 10]);
            let b = Array::from_vec(vec![1.0f32; 11]);
            let add = Kernel::map2(|x: Expr<f32>, y: Expr<f32>| x + y);
            assert_eq!(
                rt.map2_array(&a, &b, &add, p).err(),
                Some(hybrid::Error::LengthMismatch {
                    left: 10,
                    right: 11
                })
            );
            // a two-input kernel cannot be a stage
            assert!(matches!(
                rt.map_array(&a, &add, p),
                Err(hybrid::Error::WrongArity { .. })
            ));
            // a hand-written stage runs, unfused
            let custom = Kernel::<f32, f32>::custom("return x * 3.0;", |x, _| x * 3.0);
            let r = a
                .lazy()
                .map(&k)
                .map(&custom)
                .to_vec(&rt, p)
                .expect("custom chain");
            assert_eq!(r.output, vec![6.0; 10]);
            assert_eq!(r.report.kernels_fused(), 1);
            assert_eq!(r.report.steps(), 2);
        }
    }
}

#[test]
fn a_gpu_failing_mid_chain_is_recovered_from() {
    let Some(rt) = gpu_runtime_with(|| Runtime::builder().fail_gpu_after_chunks(2).build()) else {
        return;
    };
    let n = 100_000;
    let xs: Vec<u32> = (0..n as u32).collect();
    let ints = int_stages();
    let a = Array::from_slice(&xs);
    let mut chain = a.lazy().fuse(false);
    for k in &ints {
        chain = chain.map(k);
    }
    let run = chain.to_vec(&rt, Placement::Split(0.5)).expect("recovered");
    let mut want = xs.clone();
    for k in &ints {
        want = rt.map(&want, k, Placement::Cpu).expect("slice").output;
    }
    assert_eq!(run.output, want);
    assert!(!run.report.recoveries().is_empty(), "{}", run.report);
}

#[test]
fn dropped_arrays_give_their_gpu_memory_back() {
    let Some(rt) = fresh_runtime(true) else {
        return;
    };
    let xs: Vec<f32> = (0..200_000).map(|i| i as f32).collect();
    let stages = float_stages();
    let chain = |rt: &Runtime| {
        let a = Array::from_slice(&xs);
        let mut l = a.lazy().fuse(false);
        for k in &stages {
            l = l.map(k);
        }
        let out = l.eval(rt, Placement::Gpu).expect("chain").output;
        assert!(out.bytes_only_on_devices() > 0);
        // dropped here: every part's buffer goes back to the pool
    };
    let allocations =
        |rt: &Runtime| -> u64 { rt.__resources().iter().map(|r| r.pool_allocations).sum() };
    for _ in 0..3 {
        chain(&rt);
    }
    let warm = allocations(&rt);
    for _ in 0..30 {
        chain(&rt);
    }
    // 30 more chains of ten GPU-resident stages allocate nothing new: the buffers
    // of dropped arrays are reused
    assert_eq!(allocations(&rt), warm);
}

#[test]
fn the_same_entry_points_take_host_data_or_arrays() {
    for (rt, gpu) in runtimes() {
        let p = if gpu { Placement::Gpu } else { Placement::Cpu };
        let xs: Vec<u32> = (0..5000).collect();
        let k = Kernel::map(|x: Expr<u32>| x * 3u32 + index());
        let add = Kernel::map2(|x: Expr<u32>, y: Expr<u32>| x + y);
        // host data in, a Vec out
        let v: Vec<u32> = rt.map(&xs, &k, p).expect("slice").output;
        // an Array in, an Array out, the same elements
        let a = Array::from_slice(&xs);
        let m: Array<u32> = rt.map(&a, &k, p).expect("array").output;
        assert_eq!(m.to_vec().expect("gather"), v);
        // two arrays, and two host inputs of different forms
        let s: Array<u32> = rt.map2(&m, &a, &add, p).expect("map2 arrays").output;
        let h: Vec<u32> = rt.map2(&v, &xs[..], &add, p).expect("map2 host").output;
        assert_eq!(s.to_vec().expect("gather"), h);
        let fixed: [u32; 3] = [1, 2, 3];
        let three = rt
            .map2(&fixed, &vec![10u32, 20, 30], &add, p)
            .expect("mixed forms");
        assert_eq!(three.output, [11, 22, 33]);
        // reductions of both kinds agree
        let id = Kernel::map(|x: Expr<u32>| x);
        let r1 = rt.reduce(&h, &id, Reduce::Sum, p).expect("host").output;
        let r2 = rt.reduce(&s, &id, Reduce::Sum, p).expect("array").output;
        assert_eq!(r1, r2);
        let d1 = rt
            .reduce2(&v, &xs, &add, Reduce::Max, p)
            .expect("host")
            .output;
        let d2 = rt
            .reduce2(&m, &a, &add, Reduce::Max, p)
            .expect("array")
            .output;
        assert_eq!(d1, d2);
    }
}
