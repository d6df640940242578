//! GPU parity: the wgpu device computes what the CPU evaluator computes.
//!
//! Integer kernels must agree bit for bit; float kernels within a relative error of
//! `FLOAT_TOL` (the GPU's `sin`, `exp`, ... are less exact and it may fuse `a * b + c`),
//! NaN matching NaN. Every test skips with a printed reason when there is no GPU, and
//! fails instead when `HYBRID_REQUIRE_GPU=1` (unless `HYBRID_BACKEND=cpu`).

use std::sync::OnceLock;

use hybrid::{fold, Expr, Kernel, Placement, Runtime};

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
