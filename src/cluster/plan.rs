//! The cluster's plan: which node computes how many elements, and why.
//!
//! A node other than the root costs its link's `alpha + bytes in / beta` to receive its
//! share, its own end-to-end time (its runtime's `Auto` over its own devices, as
//! measured by earlier calls: `overhead + n / rate`), and `alpha + bytes out / beta` to
//! send its results back; the root's share moves nothing. Those costs go to the split
//! solver the runtime uses across one machine's devices ([`plan::solve`]), so the
//! shares are the ones that make every node finish together. A node whose first
//! element would finish after everyone else is done gets nothing, and the plan says
//! whether its link or its compute is why. Pure functions: no communicator here.

use crate::cost::{Cost, Fit};
use crate::schedule::plan;
use crate::transfer::Link;

/// How a cluster call spreads its elements over the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spread {
    /// Everything on the root: no data moves (the baseline a cluster must beat).
    Root,
    /// Equal shares on every node, whatever they cost.
    Even,
    /// By the model: each node's link and measured throughput, shares that make all
    /// nodes finish together. Before every node has been measured for a kernel, an
    /// even split measures them.
    Auto,
}

impl Spread {
    /// A short lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Spread::Root => "root",
            Spread::Even => "even",
            Spread::Auto => "auto",
        }
    }
}

/// What one node costs per call: its link (none for the root) and its model.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeCost {
    pub(crate) link: Option<Link>,
    pub(crate) model: Option<Fit>,
}

/// Bytes a call moves: per element in and out, and once per node out (a partial).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Traffic {
    pub(crate) in_per_elem: u64,
    pub(crate) out_per_elem: u64,
    /// Bytes every node with a share is sent whatever its share (the tables, whole).
    pub(crate) in_fixed: u64,
    pub(crate) out_fixed: u64,
}

/// The shares of one call, with what the model predicted and why a node got none.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub(crate) shares: Vec<usize>,
    /// Per node: predicted finish (s) of its share; `None` without a model.
    pub(crate) predicted_s: Vec<Option<f64>>,
    /// Per node: why it got nothing, when it got nothing and others got some.
    pub(crate) why_none: Vec<Option<String>>,
    /// The decision in one line.
    pub(crate) decision: String,
}

/// A node's cost for `traffic`, or `None` without a model.
pub(crate) fn node_cost(node: &NodeCost, traffic: Traffic) -> Option<Cost> {
    let fit = node.model?;
    let mut c = Cost::affine(fit.fixed_s, fit.per_elem_s);
    if let Some(l) = node.link {
        c.fixed_s += l.up.alpha_s
            + l.down.alpha_s
            + traffic.in_fixed as f64 / l.up.beta_bytes_per_s
            + traffic.out_fixed as f64 / l.down.beta_bytes_per_s;
        c.per_elem_s += traffic.in_per_elem as f64 / l.up.beta_bytes_per_s
            + traffic.out_per_elem as f64 / l.down.beta_bytes_per_s;
    }
    Some(c)
}

/// The least predicted gain for which `Auto` spreads a call: below it the root keeps
/// everything (the models' error on a shared machine, and what a spread costs that
/// the model does not see, such as the waiting ranks' polling, are of this order; the
/// arrays' keep-or-move rule uses the same margin).
pub(crate) const KEEP_MARGIN: f64 = 0.2;

/// Shares of `n` elements over `nodes` (the root first).
pub(crate) fn plan(n: usize, nodes: &[NodeCost], traffic: Traffic, spread: Spread) -> Plan {
    let k = nodes.len().max(1);
    let costs: Vec<Option<Cost>> = nodes.iter().map(|c| node_cost(c, traffic)).collect();
    // Auto kept everything on the root for too small a predicted gain
    let mut kept = false;
    let even = || -> Vec<usize> { (0..k).map(|r| n / k + usize::from(r < n % k)).collect() };
    let (shares, decision) = match spread {
        Spread::Root => {
            let mut s = vec![0; k];
            s[0] = n;
            (s, "root: every element on the root".to_string())
        }
        Spread::Even => (even(), format!("even: {} nodes", k)),
        Spread::Auto => match costs.iter().copied().collect::<Option<Vec<Cost>>>() {
            None => {
                let missing: Vec<String> = (0..k)
                    .filter(|&r| costs[r].is_none())
                    .map(|r| r.to_string())
                    .collect();
                (
                    even(),
                    format!(
                        "auto: no model yet for rank {}: an even split measures every node",
                        missing.join(", ")
                    ),
                )
            }
            Some(cs) => {
                let s = plan::solve(n, &cs);
                let t = plan::makespan_s(&cs, &s);
                let root_only = cs[0].finish_s(n);
                if t > (1.0 - KEEP_MARGIN) * root_only && s[0] < n {
                    let mut s = vec![0; k];
                    s[0] = n;
                    kept = true;
                    (
                        s,
                        format!(
                            "auto: kept on the root: spreading predicted {}, root alone {} \
                             (less than {:.0}% faster)",
                            crate::report::secs(t),
                            crate::report::secs(root_only),
                            KEEP_MARGIN * 100.0
                        ),
                    )
                } else {
                    (
                        s,
                        format!(
                            "auto: by the models, predicted {}; root alone {}",
                            crate::report::secs(t),
                            crate::report::secs(root_only)
                        ),
                    )
                }
            }
        },
    };
    let predicted_s: Vec<Option<f64>> = costs
        .iter()
        .zip(&shares)
        .map(|(c, &s)| c.map(|c| c.finish_s(s)))
        .collect();
    let makespan = predicted_s
        .iter()
        .zip(&shares)
        .filter(|(_, &s)| s > 0)
        .filter_map(|(p, _)| *p)
        .fold(0.0, f64::max);
    let why_none = (0..k)
        .map(|r| {
            if shares[r] > 0 || n == 0 {
                return None;
            }
            if spread == Spread::Root {
                return Some("all on the root, as asked".into());
            }
            if kept {
                return Some(format!(
                    "spreading was predicted less than {:.0}% faster than the root alone",
                    KEEP_MARGIN * 100.0
                ));
            }
            let (Some(c), Some(node)) = (costs[r], nodes.get(r)) else {
                return Some("no model".into());
            };
            let first = c.finish_s(1);
            let compute_only = node.model.map_or(first, |f| f.fixed_s + f.per_elem_s);
            Some(if compute_only < makespan {
                format!(
                    "its link costs more than it saves: its first element would finish at {}, the others at {}",
                    crate::report::secs(first),
                    crate::report::secs(makespan)
                )
            } else {
                format!(
                    "its compute is too slow: its first element would finish at {}, the others at {}",
                    crate::report::secs(first),
                    crate::report::secs(makespan)
                )
            })
        })
        .collect();
    Plan {
        shares,
        predicted_s,
        why_none,
        decision,
    }
}

/// Contiguous ranges of the shares, in rank order.
pub(crate) fn ranges(shares: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut at = 0;
    shares
        .iter()
        .map(|&s| {
            let r = at..at + s;
            at += s;
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::LinkDir;

    fn link(alpha_s: f64, beta: f64) -> Option<Link> {
        let d = LinkDir {
            alpha_s,
            beta_bytes_per_s: beta,
        };
        Some(Link { up: d, down: d })
    }

    fn node(link: Option<Link>, model: Option<Fit>) -> NodeCost {
        NodeCost { link, model }
    }

    fn fit(rate: f64) -> Option<Fit> {
        Some(Fit {
            fixed_s: 1e-4,
            per_elem_s: 1.0 / rate,
        })
    }

    const SAXPY: Traffic = Traffic {
        in_per_elem: 8,
        out_per_elem: 4,
        in_fixed: 0,
        out_fixed: 0,
    };

    /// Two equal nodes at 100 M elements/s: the root's share grows as the link slows.
    #[test]
    fn shares_shift_toward_the_root_as_beta_drops() {
        let n = 10_000_000;
        let mut last = 0;
        for beta in [1e11, 1e10, 1e9, 1e8, 1e7] {
            let nodes = [node(None, fit(1e8)), node(link(1e-3, beta), fit(1e8))];
            let p = plan(n, &nodes, SAXPY, Spread::Auto);
            assert_eq!(p.shares.iter().sum::<usize>(), n);
            assert!(p.shares[0] >= last, "beta {beta}: {:?}", p.shares);
            last = p.shares[0];
            // every node with a share finishes together (within one element's time)
            let t: Vec<f64> = p.predicted_s.iter().flatten().copied().collect();
            if p.shares[1] > 0 {
                assert!((t[0] - t[1]).abs() < 1e-6 + 12.0 / beta, "{t:?}");
            }
        }
        // at 10 MB/s an element costs 1.2 us on the wire, 10 ns on the root: nearly all stay
        assert!(last as f64 > 0.99 * n as f64, "{last}");
    }

    /// Auto spreads only for a predicted gain of at least [`KEEP_MARGIN`]: saxpy behind
    /// a 100 MB/s link (120 ns an element on the wire, 10 ns on the root) would save a
    /// few percent and stays on the root, saying why; a kernel of 1 us an element
    /// saves nearly half and is spread.
    #[test]
    fn auto_keeps_a_call_on_the_root_for_a_small_gain() {
        let n = 1_000_000;
        let cheap = [node(None, fit(1e8)), node(link(1e-4, 1e8), fit(1e8))];
        let solved = plan::solve(
            n,
            &[
                node_cost(&cheap[0], SAXPY).unwrap_or_else(|| panic!("model")),
                node_cost(&cheap[1], SAXPY).unwrap_or_else(|| panic!("model")),
            ],
        );
        assert!(solved[1] > 0, "the solver alone sends some: {solved:?}");
        let p = plan(n, &cheap, SAXPY, Spread::Auto);
        assert_eq!(p.shares, vec![n, 0], "{}", p.decision);
        assert!(p.decision.contains("kept on the root"), "{}", p.decision);
        assert!(
            p.why_none[1].as_deref().is_some_and(|w| w.contains("20%")),
            "{p:?}"
        );
        let heavy = [node(None, fit(1e6)), node(link(1e-4, 1e8), fit(1e6))];
        let p = plan(n, &heavy, SAXPY, Spread::Auto);
        assert!(p.shares[1] > n / 3, "{:?} {}", p.shares, p.decision);
    }

    #[test]
    fn a_node_behind_a_slow_link_gets_nothing_and_the_plan_says_why() {
        let nodes = [
            node(None, fit(1e9)),
            node(link(1e-3, 1e7), fit(1e9)),
            node(link(1e-6, 1e12), fit(1e3)),
        ];
        let p = plan(1000, &nodes, SAXPY, Spread::Auto);
        assert_eq!(p.shares, vec![1000, 0, 0]);
        assert!(
            p.why_none[1].as_deref().is_some_and(|w| w.contains("link")),
            "{p:?}"
        );
        assert!(
            p.why_none[2]
                .as_deref()
                .is_some_and(|w| w.contains("compute")),
            "{p:?}"
        );
        assert!(p.why_none[0].is_none());
    }

    #[test]
    fn static_spreads_and_missing_models() {
        let nodes = [
            node(None, fit(1e9)),
            node(link(1e-3, 1e9), None),
            node(link(1e-3, 1e9), fit(1e9)),
        ];
        assert_eq!(plan(10, &nodes, SAXPY, Spread::Root).shares, vec![10, 0, 0]);
        assert_eq!(plan(10, &nodes, SAXPY, Spread::Even).shares, vec![4, 3, 3]);
        let p = plan(10, &nodes, SAXPY, Spread::Auto);
        assert_eq!(p.shares, vec![4, 3, 3]);
        assert!(
            p.decision.contains("no model yet for rank 1"),
            "{}",
            p.decision
        );
        assert_eq!(plan(0, &nodes, SAXPY, Spread::Even).shares, vec![0, 0, 0]);
        assert_eq!(ranges(&[4, 0, 3]), vec![0..4, 4..4, 4..7]);
    }

    /// The plan's costs are the issue's: alpha + bytes in / beta + compute + bytes out / beta.
    #[test]
    fn node_cost_adds_both_transfers_to_the_compute() {
        let remote = node(link(1e-3, 1e8), fit(1e8));
        let c = node_cost(&remote, SAXPY).unwrap_or_else(|| panic!("model"));
        let n = 1_000_000;
        let want = 1e-3 + 8e6 / 1e8 + (1e-4 + 1e-2) + 1e-3 + 4e6 / 1e8;
        assert!(
            (c.finish_s(n) - want).abs() < 1e-9,
            "{} vs {want}",
            c.finish_s(n)
        );
        let root = node(None, fit(1e8));
        let r = node_cost(&root, SAXPY).unwrap_or_else(|| panic!("model"));
        assert!((r.finish_s(n) - (1e-4 + 1e-2)).abs() < 1e-12);
    }
}
