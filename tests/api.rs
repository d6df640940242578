//! Edge behaviour of the public API: missing GPUs, the report's bookkeeping (every
//! element in one share, in order; the bytes each device moved), the devices a runtime
//! lists, the global runtime, thread safety, kernel identity. The typed errors for bad
//! input (lengths, arity, split fractions) and empty inputs are in reliability.rs.

mod common;

use common::{assert_lowercase, cpu_runtime, gpu_runtime};
use hybrid::{fold, Error, Expr, Kernel, Placement, Runtime};

fn double() -> Kernel<f32, f32> {
    Kernel::map(|x: Expr<f32>| x * 2.0 + 1.0)
}

fn add() -> Kernel<f32, f32> {
    Kernel::map2(|a: Expr<f32>, b: Expr<f32>| a + b)
}

/// The runtimes to check and the placements each can run.
fn runtimes() -> Vec<(Runtime, Vec<Placement>)> {
    let mut r = vec![(
        cpu_runtime(),
        vec![Placement::Auto, Placement::Cpu, Placement::Split(0.0)],
    )];
    if let Some(g) = gpu_runtime() {
        let all = [0.0, 0.25, 0.5, 1.0].map(Placement::Split);
        r.push((
            g,
            [Placement::Auto, Placement::Cpu, Placement::Gpu]
                .into_iter()
                .chain(all)
                .collect(),
        ));
    }
    r
}

#[test]
fn placement_gpu_without_a_gpu_is_no_adapter() {
    let rt = cpu_runtime();
    assert!(!rt.has_gpu());
    assert!(
        rt.no_gpu_reason().is_some(),
        "a runtime without a gpu says why"
    );
    let xs = vec![1.0f32; 10];
    let e = rt.map(&xs, &double(), Placement::Gpu).unwrap_err();
    assert!(matches!(e, Error::NoAdapter { .. }), "{e:?}");
    assert_lowercase(&e);
    let e = rt.map(&xs, &double(), Placement::Split(0.5)).unwrap_err();
    assert!(matches!(e, Error::NoAdapter { .. }), "{e:?}");
    // Auto and Cpu never need one
    assert_eq!(
        rt.map(&xs, &double(), Placement::Auto).unwrap().output,
        vec![3.0; 10]
    );
}

#[test]
fn report_accounts_for_every_element_in_order() {
    for (rt, placements) in runtimes() {
        for n in [1usize, 255, 256, 257, 1000, 100_003] {
            let xs: Vec<f32> = (0..n).map(|i| i as f32).collect();
            for &p in &placements {
                let run = rt
                    .map2(&xs, &xs, &add(), p)
                    .unwrap_or_else(|e| panic!("{p}, n = {n}: {e}"));
                let r = &run.report;
                assert_eq!(r.elements(), n);
                assert_eq!(r.placement(), p);
                assert!(r.wall_s() > 0.0, "{p}, n = {n}: wall_s = {}", r.wall_s());
                assert!(!r.decision().is_empty());
                let mut next = 0;
                for s in r.shares() {
                    assert_eq!(
                        s.range().start,
                        next,
                        "{p}, n = {n}: shares in input order\n{r}"
                    );
                    assert_eq!(s.elements(), s.range().len());
                    assert!(
                        s.elements() > 0,
                        "{p}, n = {n}: a share with no elements\n{r}"
                    );
                    next = s.range().end;
                    if s.kind().is_gpu() {
                        // both inputs up, the output down, each once, in chunks
                        assert_eq!(s.bytes_to_device(), 8 * s.elements() as u64, "{r}");
                        assert_eq!(s.bytes_from_device(), 4 * s.elements() as u64, "{r}");
                        assert!(s.chunks() >= 1, "{r}");
                    } else {
                        assert_eq!(s.bytes_to_device(), 0, "{r}");
                        assert_eq!(s.bytes_from_device(), 0, "{r}");
                    }
                    assert!(
                        s.busy_s() >= 0.0 && s.busy_s() <= r.wall_s() * 1.01 + 1e-3,
                        "{r}"
                    );
                }
                assert_eq!(next, n, "{p}, n = {n}: shares cover the input\n{r}");
                let gpu = common::gpu_elements(r);
                match p {
                    Placement::Cpu => assert_eq!(gpu, 0),
                    Placement::Gpu => {
                        assert_eq!(gpu, n);
                        assert_eq!(r.shares().len(), 1, "one gpu, one share\n{r}");
                    }
                    Placement::Split(f) => assert_eq!(gpu, (f * n as f64).round() as usize, "{r}"),
                    _ => {}
                }
                assert_eq!(
                    r.bytes_to_devices(),
                    r.shares().iter().map(|s| s.bytes_to_device()).sum::<u64>()
                );
                assert_eq!(
                    r.bytes_from_devices(),
                    r.shares()
                        .iter()
                        .map(|s| s.bytes_from_device())
                        .sum::<u64>()
                );
                let text = r.to_string();
                for s in r.shares() {
                    assert!(
                        text.contains(s.device()),
                        "report display lacks {:?}:\n{text}",
                        s.device()
                    );
                }
                for (i, y) in run.output.iter().enumerate() {
                    assert_eq!(*y, 2.0 * i as f32, "{p}, n = {n}, element {i}");
                }
            }
        }
    }
}

#[test]
fn runtime_lists_its_devices() {
    let rt = cpu_runtime();
    assert_eq!(rt.devices().len(), 1);
    assert!(!rt.devices()[0].kind.is_gpu());
    assert!(!rt.devices()[0].name.is_empty());
    if let Some(g) = gpu_runtime() {
        assert!(g.has_gpu());
        assert!(g.devices().iter().any(|d| d.kind.is_gpu()));
        assert!(
            g.devices().iter().any(|d| !d.kind.is_gpu()),
            "Runtime::new() keeps the cpu"
        );
        for d in g.devices() {
            assert!(!d.name.is_empty());
            assert!(d.to_string().contains(&d.name));
            if d.kind.is_gpu() {
                assert!(
                    ["vulkan", "metal", "dx12", "gl", "webgpu"].contains(&d.backend.as_str()),
                    "a gpu names its wgpu backend: {d}"
                );
            }
        }
    }
}

/// `hybrid::map` on the global runtime works, also with `HYBRID_BACKEND=cpu`: checked in a
/// child process of this test binary with that environment.
#[test]
fn global_map_works_with_backend_cpu() {
    let xs: Vec<f32> = (0..10_000).map(|i| i as f32).collect();
    let ys = hybrid::map(&xs, &double()).expect("hybrid::map");
    assert!(ys
        .iter()
        .enumerate()
        .all(|(i, &y)| y == 2.0 * i as f32 + 1.0));
    if std::env::var_os("HYBRID_API_CHILD").is_some() {
        assert!(
            !Runtime::global().unwrap().has_gpu(),
            "HYBRID_BACKEND=cpu leaves out gpus"
        );
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "global_map_works_with_backend_cpu",
            "--test-threads=1",
        ])
        .env("HYBRID_BACKEND", "cpu")
        .env("HYBRID_API_CHILD", "1")
        .output()
        .expect("run the child");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("1 passed"), "the child ran the test:\n{text}");
}

#[test]
fn kernels_and_errors_have_the_needed_traits() {
    fn send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    fn error<T: std::error::Error + Send + Sync + 'static>() {}
    send_sync_clone::<Kernel<f32, f32>>();
    send_sync_clone::<Kernel<i32, u32>>();
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Runtime>();
    error::<Error>();
    // a kernel can be shared across threads and used from each
    let k = double();
    let rt = cpu_runtime();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (k, rt) = (k.clone(), &rt);
            s.spawn(move || {
                let xs = vec![t as f32; 1000];
                assert_eq!(
                    rt.map(&xs, &k, Placement::Cpu).unwrap().output,
                    vec![2.0 * t as f32 + 1.0; 1000]
                );
            });
        }
    });
}

#[test]
fn kernel_id_is_the_computation() {
    let a = Kernel::map(|x: Expr<f32>| (x * 2.0 + 1.0).sqrt());
    let b = Kernel::map(|x: Expr<f32>| (x * 2.0 + 1.0).sqrt());
    let c = Kernel::map(|x: Expr<f32>| (x * 2.0 + 2.0).sqrt());
    assert_eq!(a.id().unwrap(), b.id().unwrap(), "built the same way");
    assert_eq!(a.id().unwrap(), a.clone().id().unwrap());
    assert_ne!(a.id().unwrap(), c.id().unwrap(), "a different constant");
    // folds draw fresh variable ids each time they are built: the id must not depend on them
    let f = || {
        Kernel::map(|x: Expr<f32>| {
            fold(3, x.clone(), |acc, i| {
                acc * 0.5 + i.cast::<f32>() + x.clone()
            })
        })
    };
    assert_eq!(
        f().id().unwrap(),
        f().id().unwrap(),
        "the same fold built twice"
    );
    // the types are part of the computation
    let i = Kernel::map(|x: Expr<i32>| x * 2 + 1);
    let u = Kernel::map(|x: Expr<u32>| x * 2 + 1);
    assert_ne!(i.id().unwrap(), u.id().unwrap());
    let f2 = Kernel::map2(|a: Expr<f32>, _b: Expr<f32>| (a * 2.0 + 1.0).sqrt());
    assert_ne!(a.id().unwrap(), f2.id().unwrap(), "one input or two");
    assert_eq!(a.wgsl().unwrap(), b.wgsl().unwrap());
}

/// One runtime used from several threads at once: every call succeeds and is right
/// (a GPU's buffer-map callbacks may run on whichever thread polls the device).
#[test]
fn concurrent_calls_on_one_runtime() {
    for (rt, placements) in runtimes() {
        let k = Kernel::map(|x: Expr<u32>| x * 3u32 + hybrid::index());
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let (rt, k, placements) = (&rt, k.clone(), placements.clone());
                s.spawn(move || {
                    for round in 0..10u32 {
                        let p = placements[(t + round) as usize % placements.len()];
                        let xs: Vec<u32> = (0..3_000 + t * 100).map(|i| i ^ round).collect();
                        let out = rt
                            .map(&xs, &k, p)
                            .unwrap_or_else(|e| panic!("thread {t}, {p}: {e}"))
                            .output;
                        for (i, (&y, &x)) in out.iter().zip(&xs).enumerate() {
                            assert_eq!(
                                y,
                                x.wrapping_mul(3).wrapping_add(i as u32),
                                "thread {t}, {p}, element {i}"
                            );
                        }
                    }
                });
            }
        });
    }
}
