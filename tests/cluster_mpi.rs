//! The cluster over real MPI: run under `mpirun -np 2` (or more) by `.ci/run`, not by
//! `cargo test` (MPI initialises once per process; this binary has no test harness).
//! Every rank runs every check; the root prints one line per check and a closing
//! `N passed, N failed`, and every rank exits nonzero when any check failed anywhere.
//!
//! ```sh
//! cargo build --features mpi --test cluster_mpi
//! mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 target/debug/deps/cluster_mpi-*
//! ```

use std::time::{Duration, Instant};

use hybrid::cluster::mpi::collective::CommunicatorCollectives;
use hybrid::cluster::mpi::topology::{Communicator, SimpleCommunicator};
use hybrid::cluster::{self, Cluster, ClusterBuilder, Shape, Spread};
use hybrid::{Backend, Error, Expr, Kernel, Placement, Reduce, Runtime, Table};

type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        let holds: bool = $cond;
        if !holds {
            return Err(format!($($fmt)+));
        }
    };
}

/// A check, run collectively on every rank.
type CheckFn = fn(&SimpleCommunicator) -> Check;

fn cpu() -> Runtime {
    Runtime::builder()
        .backend(Backend::Cpu)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn builder() -> ClusterBuilder {
    Cluster::builder()
        .runtime(cpu())
        .shape(None)
        .timeout(Duration::from_secs(60))
}

fn data(n: usize) -> Vec<u32> {
    (0..n as u32)
        .map(|i| i.wrapping_mul(2654435761) >> 5)
        .collect()
}

/// Results equal one node's: integers bit-exact on every spread, with messages cut at
/// 4,096 words (MPI's 2^31 count limit, made small); an f32 map bit-exact (every
/// node runs the same CPU code) and an f32 sum within the runtime's bound plus one
/// rounding per node.
fn results_equal_one_nodes(world: &SimpleCommunicator) -> Check {
    let c = builder()
        .max_message_words(4096)
        .build(world)
        .map_err(|e| e.to_string())?;
    let n = 300_007;
    let (xs, ys) = (
        data(n),
        data(n).iter().map(|x| x ^ 0x3c3c).collect::<Vec<u32>>(),
    );
    let (a, b): (&[u32], &[u32]) = if c.is_root() { (&xs, &ys) } else { (&[], &[]) };
    let k = Kernel::map(|x: Expr<u32>| x.clone() * 7u32 + (x >> 3u32));
    let k2 = Kernel::map2(|x: Expr<u32>, y: Expr<u32>| x * y + 1u32);
    let rt = cpu();
    let want = rt
        .map(&xs, &k, Placement::Cpu)
        .map_err(|e| e.to_string())?
        .output;
    let want2 = rt
        .map2(&xs, &ys, &k2, Placement::Cpu)
        .map_err(|e| e.to_string())?
        .output;
    let sum = rt
        .reduce(&xs, &k, Reduce::Sum, Placement::Cpu)
        .map_err(|e| e.to_string())?
        .output;
    let max = rt
        .reduce2(&xs, &ys, &k2, Reduce::Max, Placement::Cpu)
        .map_err(|e| e.to_string())?
        .output;
    for spread in [Spread::Root, Spread::Even, Spread::Auto, Spread::Auto] {
        let m = c.map(a, &k, spread).map_err(|e| e.to_string())?;
        let m2 = c.map2(a, b, &k2, spread).map_err(|e| e.to_string())?.output;
        let s = c
            .reduce(a, &k, Reduce::Sum, spread)
            .map_err(|e| e.to_string())?
            .output;
        let mx = c
            .reduce2(a, b, &k2, Reduce::Max, spread)
            .map_err(|e| e.to_string())?
            .output;
        if c.is_root() {
            ensure!(m.output.as_ref() == Some(&want), "{spread:?}: map differs");
            ensure!(m2.as_ref() == Some(&want2), "{spread:?}: map2 differs");
            ensure!(
                s == Some(sum) && mx == Some(max),
                "{spread:?}: {s:?} {mx:?} vs {sum} {max}"
            );
            let got: usize = m.report.nodes.iter().map(|x| x.elements).sum();
            ensure!(got == n && m.report.nodes.len() == c.size(), "{}", m.report);
            if spread == Spread::Even {
                ensure!(
                    m.report.nodes[1].bytes_in == m.report.nodes[1].elements as u64 * 4,
                    "{}",
                    m.report
                );
                ensure!(
                    m.report.nodes[1].local.is_some(),
                    "no nested receipt: {}",
                    m.report
                );
            }
        } else {
            ensure!(
                m.output.is_none() && m2.is_none() && s.is_none(),
                "output off the root"
            );
        }
    }
    // a kernel of any signature: f64 input, i64 input, an f64 table, three results
    let k3 = Kernel::new(|(x, i, w): (Expr<f64>, Expr<i64>, Table<f64>)| {
        let j = (i.clone() & 31i64).cast::<u32>();
        (x.clone() * w.at(j), x.cast::<f32>(), i ^ 9i64)
    });
    let x64: Vec<f64> = xs.iter().map(|&x| x as f64 * 0.25 - 1e6).collect();
    let i64s: Vec<i64> = ys.iter().map(|&y| (y as i64) << 24 ^ -3).collect();
    let w64: Vec<f64> = (0..32).map(|j| 1.0 + j as f64 / 16.0).collect();
    let want3 = rt
        .call(&k3, (&x64, &i64s, &w64), Placement::Cpu)
        .map_err(|e| e.to_string())?
        .output;
    let (x3, i3, w3): (&[f64], &[i64], &[f64]) = if c.is_root() {
        (&x64, &i64s, &w64)
    } else {
        (&[], &[], &[])
    };
    for spread in [Spread::Even, Spread::Auto] {
        let got = c
            .call(&k3, (x3, i3, w3), spread)
            .map_err(|e| e.to_string())?;
        if let Some((a, b, d)) = got.output {
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
            ensure!(
                bits(&a) == bits(&want3.0) && b == want3.1 && d == want3.2,
                "{spread:?}: call differs"
            );
        }
    }
    let fx: Vec<f32> = (0..n).map(|i| (i as f32 * 1e-3).sin() * 3.0).collect();
    let fa: &[f32] = if c.is_root() { &fx } else { &[] };
    let fk = Kernel::map(|x: Expr<f32>| (x.clone() * x + 1.0f32).sqrt());
    let fwant = rt
        .map(&fx, &fk, Placement::Cpu)
        .map_err(|e| e.to_string())?
        .output;
    let fm = c
        .map(fa, &fk, Spread::Even)
        .map_err(|e| e.to_string())?
        .output;
    let fs = c
        .reduce(fa, &fk, Reduce::Sum, Spread::Even)
        .map_err(|e| e.to_string())?
        .output;
    if let (Some(fm), Some(fs)) = (fm, fs) {
        ensure!(
            fm.iter()
                .zip(&fwant)
                .all(|(p, q)| p.to_bits() == q.to_bits()),
            "f32 map differs"
        );
        let exact: f64 = fwant.iter().map(|&y| y as f64).sum();
        let abs: f64 = fwant.iter().map(|&y| (y as f64).abs()).sum();
        let u = f32::EPSILON as f64 / 2.0;
        let bound = 16.0 * u * abs + c.size() as f64 * u * exact.abs();
        ensure!(
            (fs as f64 - exact).abs() <= bound,
            "f32 sum {fs} vs {exact}, bound {bound}"
        );
    }
    Ok(())
}

/// Over shaped links, the fitted alpha and beta are within 20% of the injected ones,
/// and the calibration is stored and reloaded by the next cluster.
fn shaped_links_are_fitted_within_20_percent(world: &SimpleCommunicator) -> Check {
    for (alpha, beta) in [(1e-3, 1e8), (1e-3, 1e9)] {
        let c = builder()
            .shape(Some(Shape::new(alpha, beta)))
            .recalibrate(true)
            .build(world)
            .map_err(|e| e.to_string())?;
        for (r, l) in c.links().iter().enumerate().skip(1) {
            let Some(l) = l else {
                return Err(format!("no link to rank {r}"));
            };
            let (a, b) = (l.link.up.alpha_s, l.link.up.beta_bytes_per_s);
            if c.is_root() {
                println!(
                    "  shaped {alpha} s, {beta:e} B/s: rank {r} fitted {a:.3e} s, {b:.3e} B/s"
                );
            }
            ensure!((a - alpha).abs() <= 0.2 * alpha, "alpha {a} for {alpha}");
            ensure!((b - beta).abs() <= 0.2 * beta, "beta {b} for {beta}");
            ensure!(
                !l.reloaded && l.path.exists(),
                "measured and stored: {:?}",
                l.path
            );
        }
        // stored like a GPU's link: the next cluster on these links reloads it
        let again = builder()
            .shape(Some(Shape::new(alpha, beta)))
            .build(world)
            .map_err(|e| e.to_string())?;
        for (r, l) in again.links().iter().enumerate().skip(1) {
            let Some(l) = l else {
                return Err(format!("no link to rank {r}"));
            };
            let first = c.links()[r]
                .as_ref()
                .map_or(0.0, |x| x.link.up.beta_bytes_per_s);
            // JSON keeps a float to within an ulp or so
            let same = (l.link.up.beta_bytes_per_s - first).abs() <= 1e-9 * first;
            ensure!(l.reloaded && same, "not reloaded: {l:?}");
        }
    }
    Ok(())
}

/// Auto's shares shift toward the root as beta drops; a cheap kernel behind a slow
/// link stays on the root, and the report says the link is why.
fn shares_shift_toward_the_root_as_beta_drops(world: &SimpleCommunicator) -> Check {
    let n = 400_000;
    let xs: Vec<f32> = (0..n).map(|i| i as f32 * 1e-4).collect();
    let heavy = Kernel::map(|x: Expr<f32>| {
        hybrid::fold(64u32, x, |acc, _| (acc.clone() * 0.999f32 + 0.001f32).sin())
    });
    let cheap = Kernel::map(|x: Expr<f32>| x * 2.0f32 + 1.0f32);
    let mut root = Vec::new();
    for beta in [1e9, 1e8, 1e7] {
        // one rayon thread per rank: two independent one-core nodes on this two-core
        // machine, so one node's measured rate does not depend on the other's load
        let one_core = Runtime::builder()
            .backend(Backend::Cpu)
            .cpu_threads(1)
            .build()
            .map_err(|e| e.to_string())?;
        let c = builder()
            .runtime(one_core)
            .shape(Some(Shape::new(1e-3, beta)))
            .build(world)
            .map_err(|e| e.to_string())?;
        let a: &[f32] = if c.is_root() { &xs } else { &[] };
        // the first Auto call measures every node, the second refines the models (the
        // first run of a kernel on a node is dropped from its model at its second)
        for _ in 0..2 {
            c.map(a, &heavy, Spread::Auto).map_err(|e| e.to_string())?;
        }
        let r = c
            .map(a, &heavy, Spread::Auto)
            .map_err(|e| e.to_string())?
            .report;
        root.push(r.nodes[0].elements);
        let small = &a[..a.len().min(100_000)];
        c.map(small, &cheap, Spread::Auto)
            .map_err(|e| e.to_string())?;
        let s = c
            .map(small, &cheap, Spread::Auto)
            .map_err(|e| e.to_string())?
            .report;
        if c.is_root() {
            println!(
                "  beta {beta:e}: root {} of {n}; predicted {:?}, took {:.4} s",
                r.nodes[0].elements, r.predicted_s, r.wall_s
            );
            if beta == 1e7 {
                ensure!(s.nodes[0].elements == 100_000, "{s}");
                let why = s.nodes[1].why_none.clone().unwrap_or_default();
                ensure!(why.contains("link costs more than it saves"), "{s}");
            }
        }
    }
    if world.rank() == 0 {
        // measured models still wobble (the machine is shared with other work): each
        // step may by 10% of n, the whole range must move by 10%
        let slack = n / 10;
        ensure!(
            root.windows(2).all(|w| w[0] <= w[1] + slack),
            "root shares {root:?}"
        );
        ensure!(root[2] > root[0] + n / 10, "root shares {root:?}");
        ensure!(root[0] < n, "a fast link takes a share: {root:?}");
    }
    Ok(())
}

/// A different kernel on rank 1 is ClusterKernelMismatch at the first call; a rank
/// whose runtime refuses its share fails the root's call with that rank's error; the
/// cluster goes on.
fn errors_reach_the_root(world: &SimpleCommunicator) -> Check {
    let c = builder().build(world).map_err(|e| e.to_string())?;
    let xs = data(10_000);
    let a: &[u32] = if c.is_root() { &xs } else { &[] };
    let k = if c.rank() == 1 {
        Kernel::map(|x: Expr<u32>| x + 2u32)
    } else {
        Kernel::map(|x: Expr<u32>| x + 1u32)
    };
    let first = c.map(a, &k, Spread::Even);
    if c.is_root() {
        ensure!(
            matches!(first, Err(Error::ClusterKernelMismatch { rank: 1, .. })),
            "{first:?}"
        );
    }
    let good = Kernel::map(|x: Expr<u32>| x + 1u32);
    let local = if c.rank() == 1 {
        Placement::Split(2.0)
    } else {
        Placement::Auto
    };
    let bad = builder()
        .local(local)
        .build(world)
        .map_err(|e| e.to_string())?;
    let r = bad.map(a, &good, Spread::Even);
    if c.is_root() {
        ensure!(
            matches!(&r, Err(Error::Cluster { rank: 1, message }) if message.contains("split fraction")),
            "{r:?}"
        );
    }
    let again = c.map(a, &good, Spread::Even).map_err(|e| e.to_string())?;
    ensure!(
        !c.is_root() || again.output.map(|v| v.len()) == Some(10_000),
        "after errors"
    );
    Ok(())
}

/// A ten-stage chain on a distributed array moves the data once: the scatter and the
/// gather move the other ranks' parts, the ten stages only records; a part read by
/// a rank that does not own it is sent once and cached until written.
fn a_ten_stage_chain_moves_the_data_once(world: &SimpleCommunicator) -> Check {
    let c = builder().build(world).map_err(|e| e.to_string())?;
    let n = 1_000_003;
    let xs = data(n);
    let k = Kernel::map(|x: Expr<u32>| x * 3u32 + 1u32);
    let rt = cpu();
    let mut want = xs.clone();
    for _ in 0..10 {
        want = rt
            .map(&want, &k, Placement::Cpu)
            .map_err(|e| e.to_string())?
            .output;
    }
    let a: &[u32] = if c.is_root() { &xs } else { &[] };
    let mut d = c.scatter(a).map_err(|e| e.to_string())?;
    let scattered = d.bytes_moved();
    let before = c.bytes_moved();
    for _ in 0..10 {
        c.map_dist_in_place(&mut d, &k).map_err(|e| e.to_string())?;
    }
    let chain = c.bytes_moved() - before;
    // rank 1 reads the root's part twice: sent once
    let start = d.bytes_moved();
    let first = d
        .read(&c, 0, 1)
        .map_err(|e| e.to_string())?
        .map(<[u32]>::to_vec);
    let second = d
        .read(&c, 0, 1)
        .map_err(|e| e.to_string())?
        .map(<[u32]>::to_vec);
    let read = d.bytes_moved() - start;
    let held = d.bytes_moved();
    let out = d.gather(&c).map_err(|e| e.to_string())?;
    let gathered = d.bytes_moved() - held;
    let mine = d.ranges()[c.rank()].len() as u64 * 4;
    let others = (n - d.ranges()[0].len()) as u64 * 4;
    ensure!(
        chain < 64 * 1024,
        "the chain moved {chain} bytes (data: {} bytes)",
        n * 4
    );
    if c.is_root() {
        ensure!(out.as_ref() == Some(&want), "the gathered chain differs");
        ensure!(
            scattered == others && gathered == others,
            "{scattered} {gathered} vs {others}"
        );
        println!("  chain of 10 over {n}: scatter {scattered} B, stages {chain} B (records), gather {gathered} B");
    } else {
        ensure!(
            scattered == mine && gathered == mine,
            "{scattered} {gathered} vs {mine}"
        );
    }
    if c.rank() == 1 {
        let root_part = d.ranges()[0].len() as u64 * 4;
        ensure!(first.is_some() && first == second, "the read differs");
        ensure!(
            read == root_part,
            "read twice moved {read} bytes, the part is {root_part}"
        );
    }
    Ok(())
}

/// A rank that stops taking part leaves the root waiting only its timeout.
fn a_silent_rank_is_a_timeout(world: &SimpleCommunicator) -> Check {
    let c = builder()
        .timeout(Duration::from_millis(1500))
        .build(world)
        .map_err(|e| e.to_string())?;
    let k = Kernel::map(|x: Expr<u32>| x + 1u32);
    if c.is_root() {
        let t = Instant::now();
        let r = c.map(&data(100), &k, Spread::Even);
        ensure!(
            matches!(r, Err(Error::ClusterTimeout { rank: 1, .. })),
            "{r:?}"
        );
        ensure!(
            t.elapsed() < Duration::from_secs(10),
            "took {:?}",
            t.elapsed()
        );
        let again = c.map(&data(100), &k, Spread::Even);
        ensure!(
            matches!(again, Err(Error::ClusterTimeout { .. })),
            "broken: {again:?}"
        );
    }
    Ok(())
}

fn main() {
    let universe = match cluster::init() {
        Ok(u) => u,
        Err(e) => {
            eprintln!("cluster_mpi: {e}");
            std::process::exit(2);
        }
    };
    let world = universe.world();
    let checks: [(&str, CheckFn); 6] = [
        ("results_equal_one_nodes", results_equal_one_nodes),
        (
            "shaped_links_are_fitted_within_20_percent",
            shaped_links_are_fitted_within_20_percent,
        ),
        (
            "shares_shift_toward_the_root_as_beta_drops",
            shares_shift_toward_the_root_as_beta_drops,
        ),
        ("errors_reach_the_root", errors_reach_the_root),
        (
            "a_ten_stage_chain_moves_the_data_once",
            a_ten_stage_chain_moves_the_data_once,
        ),
        ("a_silent_rank_is_a_timeout", a_silent_rank_is_a_timeout),
    ];
    let (mut passed, mut failed) = (0, 0);
    if world.size() < 2 {
        eprintln!("cluster_mpi: needs at least 2 ranks (mpirun -np 2), got 1");
        std::process::exit(2);
    }
    for (name, check) in checks {
        let t = Instant::now();
        let mine = check(&world);
        let ok = u8::from(mine.is_ok());
        let mut all = vec![0u8; world.size() as usize];
        world.all_gather_into(&ok, &mut all[..]);
        if let Err(e) = &mine {
            eprintln!("rank {}: {name}: {e}", world.rank());
        }
        if all.iter().all(|&x| x == 1) {
            passed += 1;
        } else {
            failed += 1;
        }
        if world.rank() == 0 {
            let verdict = if all.iter().all(|&x| x == 1) {
                "ok"
            } else {
                "FAILED"
            };
            println!(
                "check {name} ... {verdict} ({:.1} s)",
                t.elapsed().as_secs_f64()
            );
        }
    }
    if world.rank() == 0 {
        println!("{passed} passed, {failed} failed");
    }
    drop(universe);
    std::process::exit(i32::from(failed > 0));
}
