//! The cluster's protocol with ranks as threads (no `mpirun`): results equal to one
//! node's, errors that reach the root, mismatched kernels, cancelled calls, chunked
//! messages and a silent rank, each ending in bounded time; distributed arrays. The
//! plan against shaped links is `tests/cluster_mpi.rs`'s (over real MPI, where the
//! ranks' compute is measured apart; threads here share one rayon pool).

use std::time::Duration;

use super::wire::tests::ThreadWire;
use super::*;
use crate::{Backend, Expr, Kernel, Reduce, Runtime};

fn cpu() -> Runtime {
    Runtime::builder()
        .backend(Backend::Cpu)
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `f` on `size` thread-ranks, each with its own cluster; results in rank order.
fn spmd<R: Send>(
    size: usize,
    setup: impl Fn(ClusterBuilder) -> ClusterBuilder + Sync,
    f: impl Fn(&Cluster) -> R + Sync,
) -> Vec<R> {
    let dir = std::env::temp_dir().join(format!(
        "hybrid-cluster-tests-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let wires = ThreadWire::mesh(size);
    std::thread::scope(|s| {
        let handles: Vec<_> = wires
            .into_iter()
            .map(|w| {
                let (setup, f, dir) = (&setup, &f, dir.clone());
                s.spawn(move || {
                    let b = Cluster::builder()
                        .runtime(cpu())
                        .shape(None)
                        .cache_dir(dir)
                        .timeout(Duration::from_secs(20));
                    let c = setup(b)
                        .start(Box::new(w), "localhost", "test")
                        .unwrap_or_else(|e| panic!("{e}"));
                    f(&c)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| panic!("a rank panicked")))
            .collect()
    })
}

fn data(n: usize) -> Vec<u32> {
    (0..n as u32)
        .map(|i| i.wrapping_mul(2654435761) >> 7)
        .collect()
}

/// Integer results are bit-exact against one node's, for every spread, on 3 ranks,
/// with messages cut into chunks of 1,000 words.
#[test]
fn integer_results_equal_one_nodes_on_every_spread() {
    let n = 100_003;
    let xs = data(n);
    let ys: Vec<u32> = data(n).iter().map(|x| x ^ 0x55).collect();
    let k = Kernel::map(|x: Expr<u32>| x.clone() * 3u32 + (x >> 2u32));
    let k2 = Kernel::map2(|a: Expr<u32>, b: Expr<u32>| a * b + 7u32);
    let rt = cpu();
    let want = rt.map(&xs, &k, crate::Placement::Cpu).map(|r| r.output);
    let want2 = rt
        .map2(&xs, &ys, &k2, crate::Placement::Cpu)
        .map(|r| r.output);
    let want_sum = rt
        .reduce(&xs, &k, Reduce::Sum, crate::Placement::Cpu)
        .map(|r| r.output);
    let want_max = rt
        .reduce2(&xs, &ys, &k2, Reduce::Max, crate::Placement::Cpu)
        .map(|r| r.output);
    let got = spmd(
        3,
        |b| b.max_message_words(1000),
        |c| {
            let (a, b): (&[u32], &[u32]) = if c.is_root() { (&xs, &ys) } else { (&[], &[]) };
            let mut out = Vec::new();
            for spread in [Spread::Root, Spread::Even, Spread::Auto, Spread::Auto] {
                let m = c.map(a, &k, spread).map(|r| (r.output, r.report));
                let m2 = c.map2(a, b, &k2, spread).map(|r| r.output);
                let s = c.reduce(a, &k, Reduce::Sum, spread).map(|r| r.output);
                let mx = c.reduce2(a, b, &k2, Reduce::Max, spread).map(|r| r.output);
                out.push((m, m2, s, mx));
            }
            out
        },
    );
    for (rank, calls) in got.into_iter().enumerate() {
        for (m, m2, s, mx) in calls {
            let (m, report) = m.unwrap_or_else(|e| panic!("{e}"));
            if rank == 0 {
                assert_eq!(m.as_ref(), want.as_ref().ok());
                assert_eq!(
                    m2.unwrap_or_else(|e| panic!("{e}")).as_ref(),
                    want2.as_ref().ok()
                );
                assert_eq!(
                    s.unwrap_or_else(|e| panic!("{e}")).as_ref(),
                    want_sum.as_ref().ok()
                );
                assert_eq!(
                    mx.unwrap_or_else(|e| panic!("{e}")).as_ref(),
                    want_max.as_ref().ok()
                );
                assert_eq!(report.nodes.len(), 3);
                let total: usize = report.nodes.iter().map(|n| n.elements).sum();
                assert_eq!(total, n);
                if report.spread == "even" {
                    assert!(report.nodes.iter().all(|node| node.elements >= n / 3));
                    assert_eq!(
                        report.nodes[1].bytes_in,
                        report.nodes[1].elements as u64 * 4
                    );
                    assert!(
                        report.nodes[1].local.is_some(),
                        "a node's own receipt nested"
                    );
                }
            } else {
                assert!(m.is_none() && m2.is_ok() && s.is_ok() && mx.is_ok());
                assert_eq!(report.nodes.len(), 1);
            }
        }
    }
}

/// A kernel of any signature over the cluster (`Cluster::call`): f64 and i64
/// element-wise inputs cut by their words, an f64 table sent whole to every node with
/// a share, a tuple of an f64, an f32 and a u64 result gathered on the root, bit for
/// bit as one node computes them, on every spread over 3 ranks with messages cut into
/// chunks; and its reduction (an i64 sum, exact). Host data only: an array is a
/// typed error.
#[test]
fn kernels_of_any_signature_equal_one_nodes() {
    use crate::Array;
    let n = 30_011;
    let xs: Vec<f64> = (0..n).map(|i| (i as f64).sqrt() * 1.5 - 40.0).collect();
    let is: Vec<i64> = data(n).iter().map(|&x| (x as i64) << 20 ^ -7).collect();
    let ws: Vec<f64> = (0..97).map(|i| 1.0 + i as f64 / 64.0).collect();
    let k = Kernel::new(|(x, i, w): (Expr<f64>, Expr<i64>, crate::Table<f64>)| {
        let j = (i.clone() & 63i64).cast::<u32>();
        (
            x.clone() * w.at(j),
            x.cast::<f32>(),
            i.cast::<u64>() >> 3u32,
        )
    });
    let r = Kernel::new(|(i,): (Expr<i64>,)| i ^ 5i64);
    let rt = cpu();
    let want = rt
        .call(&k, (&xs, &is, &ws), crate::Placement::Cpu)
        .map(|r| r.output)
        .unwrap_or_else(|e| panic!("{e}"));
    let want_sum = is.iter().fold(0i64, |a, &b| a.wrapping_add(b ^ 5));
    let got = spmd(
        3,
        |b| b.max_message_words(4096),
        |c| {
            let (x, i, w): (&[f64], &[i64], &[f64]) = if c.is_root() {
                (&xs, &is, &ws)
            } else {
                (&[], &[], &[])
            };
            let mut out = Vec::new();
            for spread in [Spread::Root, Spread::Even, Spread::Auto, Spread::Auto] {
                let m = c.call(&k, (x, i, w), spread).map(|r| (r.output, r.report));
                let s = c
                    .call_reduce(&r, (i,), Reduce::Sum, spread)
                    .map(|r| r.output);
                out.push((m, s));
            }
            // arrays on the root alone: the root cancels, every rank stays in step
            let arrays = match c.is_root() {
                true => c.call(&r, (&Array::from_slice(i),), Spread::Even).err(),
                false => c.call(&r, (i,), Spread::Even).err(),
            };
            let after = c
                .call_reduce(&r, (i,), Reduce::Sum, Spread::Even)
                .map(|r| r.output);
            (out, (arrays, after))
        },
    );
    for (rank, (calls, (arrays, after))) in got.into_iter().enumerate() {
        for (m, s) in calls {
            let (m, report) = m.unwrap_or_else(|e| panic!("{e}"));
            let s = s.unwrap_or_else(|e| panic!("{e}"));
            if rank > 0 {
                assert!(m.is_none() && s.is_none());
                continue;
            }
            let (a, b, c) = m.unwrap_or_else(|| panic!("the root's result"));
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&want.0), "{}", report.spread);
            assert_eq!(b, want.1, "{}", report.spread);
            assert_eq!(c, want.2, "{}", report.spread);
            assert_eq!(s, Some(want_sum), "{}", report.spread);
            if report.spread == "even" {
                // two words per f64 and i64 element, and the table whole
                let node = &report.nodes[1];
                let want_in = node.elements as u64 * 16 + 8 * ws.len() as u64;
                assert_eq!(node.bytes_in, want_in);
                // three results, two words each (the f32 in a pair beside the others)
                assert_eq!(node.bytes_out, node.elements as u64 * 24);
            }
        }
        match rank {
            0 => assert!(
                matches!(arrays, Some(crate::Error::InvalidKernel { .. })),
                "{arrays:?}"
            ),
            _ => assert!(arrays.is_some(), "rank {rank}: the root cancelled"),
        }
        let after = after.unwrap_or_else(|e| panic!("rank {rank}: the next call: {e}"));
        assert_eq!(after, (rank == 0).then_some(want_sum));
    }
}

/// f32 results: a map is element for element the single node's (the same CPU code
/// runs every element); a sum is within the runtime's bound plus one rounding per node.
#[test]
fn float_map_is_exact_and_sum_within_its_bound() {
    let n = 50_001;
    let xs: Vec<f32> = (0..n).map(|i| (i as f32 * 1e-3).sin()).collect();
    let k = Kernel::map(|x: Expr<f32>| (x.clone() * 2.0 + 1.0).abs().sqrt());
    let rt = cpu();
    let want = rt
        .map(&xs, &k, crate::Placement::Cpu)
        .map(|r| r.output)
        .unwrap_or_default();
    let exact: f64 = want.iter().map(|&y| y as f64).sum();
    let abs: f64 = want.iter().map(|&y| (y as f64).abs()).sum();
    let got = spmd(
        2,
        |b| b,
        |c| {
            let a: &[f32] = if c.is_root() { &xs } else { &[] };
            (
                c.map(a, &k, Spread::Even).map(|r| r.output),
                c.reduce(a, &k, Reduce::Sum, Spread::Even).map(|r| r.output),
            )
        },
    );
    let (m, s) = &got[0];
    let m = m
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_default();
    assert!(m.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()));
    let s = s
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_default() as f64;
    let u = f32::EPSILON as f64 / 2.0;
    let bound = 16.0 * u * abs + 2.0 * u * exact.abs() * 2.0;
    assert!((s - exact).abs() <= bound, "{s} vs {exact}, bound {bound}");
}

/// A rank whose kernel fails reports it; the root fails the call with that rank's
/// error, and the next call works on every rank.
#[test]
fn a_ranks_error_fails_the_call_on_the_root_and_the_cluster_goes_on() {
    let xs = data(10_000);
    let ok = Kernel::map(|x: Expr<u32>| x + 1u32);
    let got = spmd(
        2,
        |b| b,
        |c| {
            let a: &[u32] = if c.is_root() { &xs } else { &[] };
            // rank 1 calls with two inputs where the root gives one: its runtime refuses
            let first = if c.is_root() {
                c.map(a, &ok, Spread::Even).map(|r| r.output)
            } else {
                let k2 = Kernel::map2(|x: Expr<u32>, y: Expr<u32>| x + y);
                c.map2(a, a, &k2, Spread::Even).map(|r| r.output)
            };
            let second = c
                .map(a, &ok, Spread::Even)
                .map(|r| r.output.map(|v| v.len()));
            (first, second)
        },
    );
    match &got[0].0 {
        Err(crate::Error::ClusterKernelMismatch { rank: 1, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        got[1].0,
        Err(crate::Error::ClusterKernelMismatch { rank: 1, .. })
    ));
    assert_eq!(got[0].1, Ok(Some(10_000)));
    assert_eq!(got[1].1, Ok(None));
}

/// A call kept on the root costs no round trip once every rank has answered a call of
/// its kernel: the first `Spread::Root` call of a kernel hears from every rank (a
/// kernel that differs on a rank is an error at its first call, whatever the spread),
/// later ones send each rank the header alone and wait for nothing. A rank that then
/// passes another kernel checks the id itself: its call fails, the root's (which
/// computed everything with its own kernel) is complete; a new kernel on the root is
/// heard from every rank again.
#[test]
fn a_call_kept_on_the_root_waits_for_no_rank_after_the_first() {
    let xs = data(10_000);
    let ok = Kernel::map(|x: Expr<u32>| x + 1u32);
    let other = Kernel::map(|x: Expr<u32>| x + 2u32);
    let got = spmd(
        2,
        |b| b,
        |c| {
            let a: &[u32] = if c.is_root() { &xs } else { &[] };
            let mut moved = Vec::new();
            for _ in 0..3 {
                let before = c.bytes_moved();
                let r = c
                    .map(a, &ok, Spread::Root)
                    .map(|r| r.output.map(|v| v.len()));
                moved.push((r, c.bytes_moved() - before));
            }
            // rank 1 passes another kernel for a call kept on the root
            let k = if c.is_root() { &ok } else { &other };
            let late = c.map(a, k, Spread::Root).map(|r| r.output.map(|v| v.len()));
            // rank 1 passes another kernel for the root's new one: caught at once
            let k = if c.is_root() { &other } else { &ok };
            let first = c.map(a, k, Spread::Root).err();
            (moved, (late, first))
        },
    );
    let header = 4 * super::call::HEADER_WORDS as u64;
    let (root, rank) = (&got[0].0, &got[1].0);
    assert_eq!(root[0].0, Ok(Some(10_000)));
    assert!(rank[0].1 > header, "the first call's record: {:?}", rank[0]);
    for (k, ((r, root_b), (q, rank_b))) in root.iter().zip(rank).enumerate().skip(1) {
        assert_eq!((r, q), (&Ok(Some(10_000)), &Ok(None)), "call {k}");
        assert_eq!(
            (*root_b, *rank_b),
            (header, header),
            "call {k}: the header alone"
        );
    }
    let ((root_late, root_first), (rank_late, rank_first)) = (&got[0].1, &got[1].1);
    assert_eq!(root_late, &Ok(Some(10_000)));
    assert!(
        matches!(
            rank_late,
            Err(crate::Error::ClusterKernelMismatch { rank: 1, .. })
        ),
        "{rank_late:?}"
    );
    for e in [root_first, rank_first] {
        assert!(
            matches!(e, Some(crate::Error::ClusterKernelMismatch { rank: 1, .. })),
            "{e:?}"
        );
    }
}

/// A rank whose local run fails (a panic in its share, caught) fails the root's call
/// with its message.
#[test]
fn a_panicking_share_is_the_ranks_error_on_the_root() {
    let xs = data(1000);
    let k = Kernel::map(|x: Expr<u32>| x + 1u32);
    let got = spmd(
        2,
        |b| b,
        |c| {
            let a: &[u32] = if c.is_root() { &xs } else { &[] };
            let p = c.rank();
            let run = c.map_words(&k, &[a], Spread::Even, |v| {
                if p == 1 {
                    panic!("device on fire");
                }
                c.runtime()
                    .map(v[0], &k, crate::Placement::Cpu)
                    .map(|r| (r.output, r.report))
            });
            run.map(|r| r.output.map(|v| v.len()))
        },
    );
    match &got[0] {
        Err(crate::Error::Cluster { rank: 1, message }) => {
            assert!(message.contains("device on fire"))
        }
        other => panic!("{other:?}"),
    }
    assert!(got[1].is_err());
}

/// A root that fails before sending (inputs of different lengths) cancels the call on
/// every rank, in bounded time.
#[test]
fn a_bad_call_on_the_root_is_cancelled_everywhere() {
    let k = Kernel::map2(|a: Expr<u32>, b: Expr<u32>| a + b);
    let got = spmd(
        3,
        |b| b,
        |c| {
            let (a, b) = if c.is_root() {
                (data(10), data(11))
            } else {
                (vec![], vec![])
            };
            c.map2(&a, &b, &k, Spread::Even).map(|r| r.output)
        },
    );
    assert_eq!(
        got[0],
        Err(crate::Error::LengthMismatch {
            left: 10,
            right: 11
        })
    );
    for r in &got[1..] {
        assert!(
            matches!(r, Err(crate::Error::Cluster { rank: 0, .. })),
            "{r:?}"
        );
    }
}

/// A rank that never calls leaves the root waiting only until its timeout; the
/// cluster is then broken and says so at once.
#[test]
fn a_rank_that_never_answers_is_a_timeout_and_breaks_the_cluster() {
    let xs = data(100);
    let k = Kernel::map(|x: Expr<u32>| x + 1u32);
    let t = std::time::Instant::now();
    let got = spmd(
        2,
        |b| b.timeout(Duration::from_millis(300)),
        |c| {
            if !c.is_root() {
                return (Ok(None), Ok(None));
            }
            let first = c
                .map(&xs, &k, Spread::Even)
                .map(|r| r.output.map(|v| v.len()));
            let second = c
                .map(&xs, &k, Spread::Even)
                .map(|r| r.output.map(|v| v.len()));
            (first, second)
        },
    );
    assert!(
        matches!(got[0].0, Err(crate::Error::ClusterTimeout { rank: 1, .. })),
        "{:?}",
        got[0]
    );
    assert_eq!(got[0].0, got[0].1, "broken: the same error at once");
    assert!(t.elapsed() < Duration::from_secs(10));
}

/// A ten-stage chain on a distributed array moves the data once (scatter, gather):
/// the stages move no element and only records; the result equals one node's chain.
#[test]
fn a_ten_stage_chain_on_a_distributed_array_moves_the_data_once() {
    let n = 200_001;
    let xs = data(n);
    let k = Kernel::map(|x: Expr<u32>| x * 3u32 + 1u32);
    let rt = cpu();
    let mut want = xs.clone();
    for _ in 0..10 {
        want = rt
            .map(&want, &k, crate::Placement::Cpu)
            .map(|r| r.output)
            .unwrap_or_default();
    }
    let got = spmd(
        3,
        |b| b,
        |c| {
            let a: &[u32] = if c.is_root() { &xs } else { &[] };
            let mut d = c.scatter(a).unwrap_or_else(|e| panic!("{e}"));
            let scattered = d.bytes_moved();
            let before = c.bytes_moved();
            for stage in 0..10 {
                if stage % 2 == 0 {
                    c.map_dist_in_place(&mut d, &k)
                        .unwrap_or_else(|e| panic!("{e}"));
                } else {
                    d = c
                        .map_dist(&d, &k)
                        .unwrap_or_else(|e| panic!("{e}"))
                        .output
                        .unwrap_or_else(|| panic!("none"));
                }
            }
            let chain_bytes = c.bytes_moved() - before;
            let held = d.bytes_moved();
            let out = d.gather(c).unwrap_or_else(|e| panic!("{e}"));
            (scattered, chain_bytes, d.bytes_moved() - held, out)
        },
    );
    let (scattered, chain, gathered, out) = &got[0];
    assert_eq!(out.as_ref(), Some(&want));
    let others = (n - n.div_ceil(3)) as u64 * 4;
    assert_eq!(*scattered, others, "scatter sends the other ranks' parts");
    assert_eq!(*gathered, others, "and gathered once");
    // the chain's messages are records only: far below one element per element
    assert!(*chain < 40_000, "{chain} bytes moved by the chain");
}

/// A part read by a rank that does not own it is sent once, cached until written.
#[test]
fn a_non_owned_read_is_fetched_once_and_cached_until_written() {
    let xs = data(3000);
    let k = Kernel::map(|x: Expr<u32>| x + 1u32);
    let got = spmd(
        2,
        |b| b,
        |c| {
            let a: &[u32] = if c.is_root() { &xs } else { &[] };
            let mut d = c.scatter(a).unwrap_or_else(|e| panic!("{e}"));
            let start = d.bytes_moved();
            let first = d
                .read(c, 0, 1)
                .unwrap_or_else(|e| panic!("{e}"))
                .map(<[u32]>::to_vec);
            let after_first = d.bytes_moved() - start;
            let second = d
                .read(c, 0, 1)
                .unwrap_or_else(|e| panic!("{e}"))
                .map(<[u32]>::to_vec);
            let after_second = d.bytes_moved() - start;
            c.map_dist_in_place(&mut d, &k)
                .unwrap_or_else(|e| panic!("{e}"));
            let third = d
                .read(c, 0, 1)
                .unwrap_or_else(|e| panic!("{e}"))
                .map(<[u32]>::to_vec);
            let after_third = d.bytes_moved() - start;
            (first, second, third, after_first, after_second, after_third)
        },
    );
    let (f, s, t, a1, a2, a3) = &got[1];
    assert_eq!(f.as_deref(), Some(&xs[..1500]));
    assert_eq!(f, s);
    let plus: Vec<u32> = xs[..1500].iter().map(|x| x + 1).collect();
    assert_eq!(t.as_deref(), Some(&plus[..]), "written: read anew");
    assert_eq!((*a1, *a2, *a3), (6000, 6000, 12_000));
    assert_eq!(got[0].3, 6000, "the owner sent it once");
    assert!(got[0].0.is_none());
}
