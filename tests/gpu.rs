//! GPU parity: the wgpu device computes what the CPU evaluator computes.
//!
//! Integer kernels must agree bit for bit; float kernels within a relative error of
//! `FLOAT_TOL` (the GPU's `sin`, `exp`, ... are less exact and it may fuse `a * b + c`),
//! NaN matching NaN. Every test skips with a printed reason when there is no GPU, and
//! fails instead when `HYBRID_REQUIRE_GPU=1` (unless `HYBRID_BACKEND=cpu`).

use std::sync::OnceLock;

use hybrid::{fold, Element, Expr, Kernel, Placement, Runtime};

fn env_is(var: &str, value: &str) -> bool {
    std::env::var(var)
        .map(|v| v.trim().eq_ignore_ascii_case(value))
        .unwrap_or(false)
}

/// The shared runtime with a GPU, or `None` (after saying why) when the test must skip.
fn gpu() -> Option<&'static Runtime> {
    static RT: OnceLock<Result<Runtime, String>> = OnceLock::new();
    let cpu_only = env_is("HYBRID_BACKEND", "cpu");
    let require = env_is("HYBRID_REQUIRE_GPU", "1") && !cpu_only;
    if cpu_only {
        eprintln!("skipped: HYBRID_BACKEND=cpu");
        return None;
    }
    let rt = RT.get_or_init(|| {
        let rt = Runtime::new().map_err(|e| format!("runtime failed: {e}"))?;
        if !rt.has_gpu() {
            return Err(format!(
                "no gpu: {}",
                rt.no_gpu_reason().unwrap_or("unknown")
            ));
        }
        Ok(rt)
    });
    match rt {
        Ok(rt) => Some(rt),
        Err(reason) if require => panic!("HYBRID_REQUIRE_GPU=1 but {reason}"),
        Err(reason) => {
            eprintln!("skipped: {reason}");
            None
        }
    }
}

fn check_exact<T: Element>(what: &str, gpu: &[T], cpu: &[T]) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    if let Some(i) = (0..gpu.len()).find(|&i| gpu[i].to_bits() != cpu[i].to_bits()) {
        panic!("{what}: element {i}: gpu {:?}, cpu {:?}", gpu[i], cpu[i]);
    }
}

#[test]
fn integer_edge_cases_match_cpu_and_wgsl() {
    let Some(rt) = gpu() else { return };
    let pairs = [
        (i32::MIN, -1),
        (i32::MIN, 1),
        (7, 0),
        (-7, 0),
        (0, 0),
        (i32::MIN, 0),
        (-7, 2),
        (7, -2),
        (i32::MAX, -1),
    ];
    let (a, b): (Vec<i32>, Vec<i32>) = pairs.iter().copied().unzip();
    let div = Kernel::map2(|a: Expr<i32>, b: Expr<i32>| a / b);
    let rem = Kernel::map2(|a: Expr<i32>, b: Expr<i32>| a % b);
    let g_div = rt
        .map2(&a, &b, &div, Placement::Gpu)
        .map(|r| r.output)
        .unwrap_or_else(|e| panic!("{e}"));
    let g_rem = rt
        .map2(&a, &b, &rem, Placement::Gpu)
        .map(|r| r.output)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        g_div,
        vec![i32::MIN, i32::MIN, 7, -7, 0, i32::MIN, -3, -3, -i32::MAX]
    );
    assert_eq!(g_rem, vec![0, 0, 0, 0, 0, 0, -1, 1, 0]);
    check_exact(
        "div",
        &g_div,
        &rt.map2(&a, &b, &div, Placement::Cpu)
            .map(|r| r.output)
            .unwrap_or_default(),
    );
    check_exact(
        "rem",
        &g_rem,
        &rt.map2(&a, &b, &rem, Placement::Cpu)
            .map(|r| r.output)
            .unwrap_or_default(),
    );

    let ua: Vec<u32> = vec![9, 0, u32::MAX, 5];
    let ub: Vec<u32> = vec![0, 0, 0, 2];
    let udiv = Kernel::map2(|a: Expr<u32>, b: Expr<u32>| (a.clone() / b.clone()) * 1000 + a % b);
    let g = rt
        .map2(&ua, &ub, &udiv, Placement::Gpu)
        .map(|r| r.output)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(g, vec![9000, 0, u32::MAX.wrapping_mul(1000), 2001]);

    // Shifts by 0..100: the amount is masked to 0..=31.
    let xs: Vec<i32> = (0..100)
        .map(|i| if i % 2 == 0 { -12345 } else { 0x4000_0001 })
        .collect();
    let amounts: Vec<i32> = (0..100).collect();
    let shifts = Kernel::map2(|x: Expr<i32>, s: Expr<i32>| {
        let s = s.cast::<u32>();
        (x.clone() << s.clone()) ^ (x.clone() >> s.clone()) ^ (x.cast::<u32>() >> s).cast::<i32>()
    });
    let g = rt
        .map2(&xs, &amounts, &shifts, Placement::Gpu)
        .map(|r| r.output)
        .unwrap_or_else(|e| panic!("{e}"));
    let want: Vec<i32> = xs
        .iter()
        .zip(&amounts)
        .map(|(&x, &s)| {
            let s = (s as u32) & 31;
            (x << s) ^ (x >> s) ^ ((x as u32) >> s) as i32
        })
        .collect();
    assert_eq!(g, want);

    // Float to integer casts: truncate, saturate to the full range, NaN to 0.
    let fs = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        3e9,
        -3e9,
        -1.5,
        1.5,
        -0.0,
        2147483520.0,
        2147483648.0,
        4294967040.0,
        4294967296.0,
        -2147483648.0,
        1e-45,
        -0.99,
    ];
    let to_i = Kernel::map(|x: Expr<f32>| x.cast::<i32>());
    let to_u = Kernel::map(|x: Expr<f32>| x.cast::<u32>());
    let gi = rt
        .map(&fs, &to_i, Placement::Gpu)
        .map(|r| r.output)
        .unwrap_or_else(|e| panic!("{e}"));
    let gu = rt
        .map(&fs, &to_u, Placement::Gpu)
        .map(|r| r.output)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        gi,
        fs.iter().map(|&f| f as i32).collect::<Vec<_>>(),
        "f32 -> i32 of {fs:?}"
    );
    assert_eq!(
        gu,
        fs.iter().map(|&f| f as u32).collect::<Vec<_>>(),
        "f32 -> u32 of {fs:?}"
    );
    check_exact(
        "f32 -> i32",
        &gi,
        &rt.map(&fs, &to_i, Placement::Cpu)
            .map(|r| r.output)
            .unwrap_or_default(),
    );

    // abs and negation wrap; i32 <-> u32 keep bits; bool gives 0 or 1.
    let is = [i32::MIN, -1, 0, 1, i32::MAX];
    let k = Kernel::map(|x: Expr<i32>| {
        x.abs().cast::<u32>()
            ^ (-x.clone()).cast::<u32>()
            ^ x.lt(0).cast::<u32>()
            ^ (x.cast::<u32>() >> 1u32)
    });
    let g = rt
        .map(&is, &k, Placement::Gpu)
        .map(|r| r.output)
        .unwrap_or_else(|e| panic!("{e}"));
    check_exact(
        "abs neg bits",
        &g,
        &rt.map(&is, &k, Placement::Cpu)
            .map(|r| r.output)
            .unwrap_or_default(),
    );
}

#[test]
fn report_counts_bytes_moved() {
    let Some(rt) = gpu() else { return };
    let n = 10_000;
    let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let k = Kernel::map2(|a: Expr<f32>, b: Expr<f32>| a * b + 1.0);
    let run = rt
        .map2(&a, &a, &k, Placement::Gpu)
        .unwrap_or_else(|e| panic!("{e}"));
    let shares = run.report.shares();
    assert_eq!(shares.len(), 1, "{}", run.report);
    let s = &shares[0];
    assert!(s.kind().is_gpu());
    assert_eq!(s.bytes_to_device(), 4 * n as u64 * 2);
    assert_eq!(s.bytes_from_device(), 4 * n as u64);
    assert!(s.chunks() >= 1);
    assert_eq!(run.report.bytes_to_devices(), 4 * n as u64 * 2);

    let empty: Vec<f32> = Vec::new();
    let run = rt
        .map2(&empty, &empty, &k, Placement::Gpu)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(run.output.is_empty());
    assert_eq!(
        run.report.bytes_to_devices() + run.report.bytes_from_devices(),
        0
    );
}

#[test]
fn gpu_devices_describe_themselves() {
    let Some(rt) = gpu() else { return };
    for d in rt.devices().iter().filter(|d| d.kind.is_gpu()) {
        assert!(!d.name.is_empty());
        assert!(
            ["vulkan", "metal", "dx12", "gl", "webgpu"].contains(&d.backend.as_str()),
            "{d}"
        );
    }
}

/// The compute stage of a compute-heavy GPU share is seen by the host: on a driver
/// without device timestamps (lavapipe runs the dispatch inside the submit) the time
/// spent there counts as compute, so the stages account for most of the share's time
/// and the scheduler's pipeline model is not fed a near-zero compute time.
#[test]
fn compute_heavy_share_reports_its_compute_time() {
    let Some(rt) = gpu() else { return };
    let k =
        Kernel::map(|x: Expr<f32>| fold(64, x, |acc, _| (acc.clone() * acc * 0.5 + 0.25).min(4.0)));
    let xs: Vec<f32> = (0..12 << 20).map(|i| (i % 97) as f32 * 0.01).collect();
    // the first call compiles the pipeline
    let _ = rt
        .map(&xs, &k, Placement::Gpu)
        .unwrap_or_else(|e| panic!("{e}"));
    let run = rt
        .map(&xs, &k, Placement::Gpu)
        .unwrap_or_else(|e| panic!("{e}"));
    let s = &run.report.shares()[0];
    let staged = s.upload_s() + s.compute_s() + s.download_s();
    assert!(
        s.compute_s() > 0.2 * s.busy_s() && staged > 0.5 * s.busy_s(),
        "compute {:.3} ms, stages {:.3} ms of {:.3} ms busy\n{}",
        s.compute_s() * 1e3,
        staged * 1e3,
        s.busy_s() * 1e3,
        run.report
    );
}
