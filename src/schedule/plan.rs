//! The split solver: pure functions from devices' predicted costs to shares.
//!
//! Each device's finish time for `n` elements is a [`Cost`]: a ready time (when it can
//! start), then a fixed cost, a per-element cost and a pipeline fill (elements that pay
//! every stage, not only the bounding one). [`solve`] gives the integer shares that
//! minimise the largest finish time; it is exact: the optimum makespan is the `N`-th
//! smallest of all devices' per-element finish times, found by bisection on the time,
//! then completed element by element.

pub(crate) use crate::cost::Cost;

/// Shares of `n` elements, one per cost, that minimise the largest finish time.
/// Devices that would not finish sooner with work than without get none. Ties go to
/// the device listed first. No costs and `n > 0` gives an empty vector.
pub(crate) fn solve(n: usize, costs: &[Cost]) -> Vec<usize> {
    let mut shares = vec![0; costs.len()];
    if n == 0 || costs.is_empty() {
        return shares;
    }
    // an upper bound: the best single device does everything
    let mut hi = costs
        .iter()
        .map(|c| c.finish_s(n))
        .fold(f64::INFINITY, f64::min);
    let mut lo = 0.0f64;
    if !hi.is_finite() {
        shares[0] = n;
        return shares;
    }
    let total = |t: f64| -> usize {
        costs
            .iter()
            .map(|c| c.count_by(t, n))
            .fold(0usize, |a, b| a.saturating_add(b))
    };
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if total(mid) >= n {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    // everything that finishes by `lo` is taken; fewer than `n` elements in all
    for (s, c) in shares.iter_mut().zip(costs) {
        *s = c.count_by(lo, n);
    }
    let mut given: usize = shares.iter().sum();
    while given > n {
        // only with float ties: give back from the latest finisher
        let d = argmax(costs, &shares);
        shares[d] -= 1;
        given -= 1;
    }
    while given < n {
        // the element that would finish earliest, on whichever device
        let mut best = 0;
        let mut best_t = f64::INFINITY;
        for (d, c) in costs.iter().enumerate() {
            let t = c.finish_s(shares[d] + 1);
            if t < best_t {
                best = d;
                best_t = t;
            }
        }
        shares[best] += 1;
        given += 1;
    }
    shares
}

fn argmax(costs: &[Cost], shares: &[usize]) -> usize {
    let mut best = 0;
    let mut best_t = f64::NEG_INFINITY;
    for (d, c) in costs.iter().enumerate() {
        if shares[d] > 0 && c.finish_s(shares[d]) >= best_t {
            best = d;
            best_t = c.finish_s(shares[d]);
        }
    }
    best
}

/// The largest predicted finish time of a split (the ready times of idle devices
/// count too).
pub(crate) fn makespan_s(costs: &[Cost], shares: &[usize]) -> f64 {
    costs
        .iter()
        .zip(shares)
        .map(|(c, &n)| c.finish_s(n))
        .fold(0.0, f64::max)
}

/// The input size below which `cpu` alone beats giving any element to one of
/// `others`: the first element elsewhere costs `other.finish_s(1)`, so another device
/// is only worth it once the CPU alone would take longer than that.
pub(crate) fn cpu_only_below(cpu: &Cost, others: &[Cost]) -> usize {
    let first = others
        .iter()
        .map(|c| c.finish_s(1))
        .fold(f64::INFINITY, f64::min);
    if !first.is_finite() {
        return usize::MAX;
    }
    let n = (first - cpu.ready_s - cpu.fixed_s) / cpu.per();
    if n <= 1.0 {
        1
    } else if n >= usize::MAX as f64 {
        usize::MAX
    } else {
        n as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(ready: f64, fixed: f64, per: f64, fill: f64, extra: f64) -> Cost {
        Cost {
            ready_s: ready,
            fixed_s: fixed,
            per_elem_s: per,
            fill_elems: fill,
            fill_extra_s: extra,
        }
    }

    /// Every split of `n` over the costs, the best makespan.
    fn brute(n: usize, costs: &[Cost]) -> f64 {
        fn rec(n: usize, costs: &[Cost], acc: f64) -> f64 {
            match costs {
                [] => f64::INFINITY,
                [last] => acc.max(last.finish_s(n)),
                [c, rest @ ..] => (0..=n)
                    .map(|k| rec(n - k, rest, acc.max(c.finish_s(k))))
                    .fold(f64::INFINITY, f64::min),
            }
        }
        rec(n, costs, 0.0)
    }

    /// A small deterministic generator (no dependency for a unit test).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn random_cost(r: &mut Lcg) -> Cost {
        let ready = if r.next() < 0.3 { r.next() * 5.0 } else { 0.0 };
        let fixed = if r.next() < 0.5 { r.next() * 10.0 } else { 0.0 };
        let per = 0.1 + r.next() * 3.0;
        let (fill, extra) = if r.next() < 0.4 {
            ((r.next() * 6.0).floor(), r.next() * 2.0)
        } else {
            (0.0, 0.0)
        };
        gpu(ready, fixed, per, fill, extra)
    }

    #[test]
    fn matches_brute_force_on_every_small_case() {
        let mut r = Lcg(7);
        for case in 0..600 {
            let devices = 1 + case % 3;
            let costs: Vec<Cost> = (0..devices).map(|_| random_cost(&mut r)).collect();
            for n in 0..=24 {
                let s = solve(n, &costs);
                assert_eq!(s.iter().sum::<usize>(), n, "case {case}, n {n}: {costs:?}");
                let got = makespan_s(&costs, &s);
                let want = if n == 0 {
                    makespan_s(&costs, &vec![0; devices])
                } else {
                    brute(n, &costs)
                };
                assert!(
                    (got - want).abs() <= 1e-9 * want.max(1.0),
                    "case {case}, n {n}: solver {got} ({s:?}), best {want}; {costs:?}"
                );
            }
        }
    }

    #[test]
    fn nothing_to_do_and_no_devices() {
        assert_eq!(solve(0, &[Cost::affine(1.0, 1.0)]), vec![0]);
        assert_eq!(solve(5, &[]), Vec::<usize>::new());
        assert_eq!(solve(0, &[]), Vec::<usize>::new());
    }

    #[test]
    fn one_element_goes_to_the_earliest_finisher() {
        let cpu = Cost::affine(1e-6, 1e-9);
        let gpu = Cost::affine(50e-6, 1e-11);
        assert_eq!(solve(1, &[cpu, gpu]), vec![1, 0]);
        assert_eq!(solve(1, &[gpu, cpu]), vec![0, 1]);
    }

    #[test]
    fn a_device_never_worth_using_gets_nothing() {
        let cpu = Cost::affine(0.0, 1e-9);
        // finishing even one element takes longer than the cpu doing all of them
        let slow = Cost::affine(1.0, 1e-12);
        for n in [1, 1000, 1_000_000, 100_000_000] {
            assert_eq!(solve(n, &[cpu, slow]), vec![n, 0], "n = {n}");
        }
        // a slower device still helps in parallel, once the input is large enough
        let worse = Cost::affine(1e-3, 2e-9);
        assert_eq!(solve(500_000, &[cpu, worse])[1], 0);
        assert!(solve(10_000_000, &[cpu, worse])[1] > 0);
    }

    #[test]
    fn equal_devices_share_equally() {
        for d in 1..=5 {
            let costs = vec![Cost::affine(1e-5, 1e-9); d];
            for n in [1, 2, 7, 1000, 1_000_003, 16 << 20] {
                let s = solve(n, &costs);
                let (lo, hi) = (
                    s.iter().copied().min().unwrap_or(0),
                    s.iter().copied().max().unwrap_or(0),
                );
                assert_eq!(s.iter().sum::<usize>(), n);
                if n >= d {
                    assert!(hi - lo <= 1, "n = {n}, d = {d}: {s:?}");
                }
            }
        }
    }

    #[test]
    fn shares_equalise_finish_times_at_scale() {
        // cpu 1 G/s, gpu 10 G/s with 100 us of latency, second gpu 5 G/s
        let costs = [
            Cost::affine(5e-6, 1e-9),
            Cost::affine(100e-6, 1e-10),
            Cost::affine(100e-6, 2e-10),
        ];
        let n = 100_000_000;
        let s = solve(n, &costs);
        let t: Vec<f64> = costs.iter().zip(&s).map(|(c, &k)| c.finish_s(k)).collect();
        let max = t.iter().copied().fold(0.0, f64::max);
        for x in &t {
            assert!((max - x) / max < 1e-6, "{t:?} {s:?}");
        }
        // and the makespan is the analytic one
        let rate: f64 = costs.iter().map(|c| 1.0 / c.per_elem_s).sum();
        let offset: f64 = costs.iter().map(|c| c.fixed_s / c.per_elem_s).sum();
        let want = (n as f64 + offset) / rate;
        assert!((max - want).abs() / want < 1e-6);
    }

    #[test]
    fn busy_devices_get_less() {
        let idle = Cost::affine(0.0, 1e-9);
        let busy = Cost {
            ready_s: 1e-3,
            ..idle
        };
        let s = solve(2_000_000, &[idle, busy]);
        assert_eq!(s, vec![1_500_000, 500_000]);
    }

    #[test]
    fn pipeline_fill_is_paid_once() {
        // 1 ns bounding stage, 2 ns more per element in the first 1000
        let c = gpu(0.0, 1e-6, 1e-9, 1000.0, 2e-9);
        assert!((c.work_s(500) - (1e-6 + 500.0 * 3e-9)).abs() < 1e-15);
        assert!((c.work_s(10_000) - (1e-6 + 10_000e-9 + 2e-6)).abs() < 1e-15);
        for t in [0.0, 1e-6, 1.5e-6, 4e-6, 1e-5, 1.0] {
            let k = c.count_by(t, usize::MAX);
            assert!(k == 0 || c.finish_s(k) <= t);
            assert!(c.finish_s(k + 1) > t);
        }
    }

    #[test]
    fn cpu_only_threshold() {
        let cpu = Cost::affine(1e-6, 1e-9);
        let gpu = Cost::affine(101e-6, 1e-11);
        let below = cpu_only_below(&cpu, &[gpu]);
        assert!((99_000..=100_001).contains(&below), "{below}");
        for n in [1, below / 2, below.saturating_sub(10)] {
            assert_eq!(solve(n, &[cpu, gpu])[1], 0, "n = {n}");
        }
        assert!(solve(below * 2, &[cpu, gpu])[1] > 0);
        assert_eq!(cpu_only_below(&cpu, &[]), usize::MAX);
    }
}
