//! The cluster call's receipt: per node, what it computed, what crossed its link each
//! way and how long each stage took, predicted beside measured, with that node's own
//! receipt (which of its devices did what) nested, and why a node got nothing.
//!
//! The root's report has every node; another rank's has its own node only. A node's
//! local receipt crosses the network as its text and its per-device shares (a
//! [`LocalReport`]), not as a [`Report`](crate::Report): only the root's own node keeps
//! the whole `Report` too.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::report::secs;

/// A node's own receipt, as it travels to the root.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LocalReport {
    /// The node's local runtime's wall time for its share, seconds.
    pub wall_s: f64,
    /// Per device of the node that took part: its name and how many elements it took.
    pub shares: Vec<(String, usize)>,
    /// The local runtime's decision line (its `Auto`'s choice).
    pub decision: String,
    /// The local [`Report`](crate::Report)'s whole text.
    pub text: String,
}

impl LocalReport {
    /// The receipt as it travels: its numbers and its text.
    pub(crate) fn of(r: &crate::Report) -> LocalReport {
        LocalReport {
            text: r.to_string(),
            ..LocalReport::brief(r)
        }
    }

    /// Its numbers only: the root's own, whose whole [`Report`](crate::Report) stays
    /// beside it (`ClusterReport::root_local`) and is shown from there.
    pub(crate) fn brief(r: &crate::Report) -> LocalReport {
        LocalReport {
            wall_s: r.wall_s(),
            shares: r
                .shares()
                .iter()
                .map(|s| (s.device().to_string(), s.elements()))
                .collect(),
            decision: r.decision().to_string(),
            text: String::new(),
        }
    }
}

/// What one node did in one cluster call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeReport {
    /// The node's rank.
    pub rank: usize,
    /// Its host name.
    pub host: String,
    /// Elements it computed.
    pub elements: usize,
    /// Bytes sent to it (its share of the inputs; 0 for the root).
    pub bytes_in: u64,
    /// Bytes it sent back (its results or its partial; 0 for the root).
    pub bytes_out: u64,
    /// Seconds from the root starting to send its inputs until they were whole there.
    pub send_s: f64,
    /// Seconds its own runtime took for its share.
    pub compute_s: f64,
    /// Seconds from it starting to send its results until they were whole on the root.
    pub receive_s: f64,
    /// When the model said it would finish, seconds from the call's start (`None`:
    /// no model yet).
    pub predicted_s: Option<f64>,
    /// When its results were on the root, seconds from the call's start.
    pub measured_s: f64,
    /// Why it got nothing, when it got nothing.
    pub why_none: Option<String>,
    /// Its own runtime's receipt for its share (`None` when it had no share).
    pub local: Option<LocalReport>,
}

/// The receipt of one cluster call.
#[derive(Debug, Clone, Default)]
pub struct ClusterReport {
    /// `map`, `map2`, `reduce sum`, ...
    pub call: String,
    /// Elements in all.
    pub elements: usize,
    /// How the call was spread (`root`, `even`, `auto`).
    pub spread: String,
    /// The plan's decision in one line.
    pub decision: String,
    /// Per node, in rank order (the root's report: every node; another rank's: its own).
    pub nodes: Vec<NodeReport>,
    /// Seconds the whole call took on this rank.
    pub wall_s: f64,
    /// The plan's predicted makespan, when every node with a share had a model.
    pub predicted_s: Option<f64>,
    /// The root's own local [`Report`](crate::Report), whole (`None` on other ranks or
    /// when the root had no share).
    pub root_local: Option<crate::Report>,
}

impl ClusterReport {
    /// Seconds of the call that went to moving data: the largest send plus receive
    /// over the nodes (the rest is compute and waiting).
    pub fn network_s(&self) -> f64 {
        self.nodes
            .iter()
            .map(|n| n.send_s + n.receive_s)
            .fold(0.0, f64::max)
    }

    /// The node of `rank`, if this report has it.
    pub fn node(&self, rank: usize) -> Option<&NodeReport> {
        self.nodes.iter().find(|n| n.rank == rank)
    }
}

fn bytes(b: u64) -> String {
    if b == 0 {
        "-".into()
    } else {
        crate::report::bytes(b)
    }
}

impl fmt::Display for ClusterReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "cluster {} of {} elements over {} node(s), spread {}: {} (predicted {}, took {})",
            self.call,
            self.elements,
            self.nodes.len(),
            self.spread,
            self.decision,
            self.predicted_s.map_or("-".into(), secs),
            secs(self.wall_s)
        )?;
        writeln!(
            f,
            "{:>4} {:<16} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "rank",
            "host",
            "elements",
            "in",
            "out",
            "send",
            "compute",
            "receive",
            "predicted",
            "measured"
        )?;
        for n in &self.nodes {
            writeln!(
                f,
                "{:>4} {:<16} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                n.rank,
                n.host,
                n.elements,
                bytes(n.bytes_in),
                bytes(n.bytes_out),
                secs(n.send_s),
                secs(n.compute_s),
                secs(n.receive_s),
                n.predicted_s.map_or("-".into(), secs),
                secs(n.measured_s)
            )?;
        }
        for n in &self.nodes {
            if let Some(w) = &n.why_none {
                writeln!(f, "rank {} got nothing: {w}", n.rank)?;
            }
        }
        for n in &self.nodes {
            if let Some(l) = &n.local {
                writeln!(f, "rank {} ({}):", n.rank, n.host)?;
                let whole = self
                    .root_local
                    .as_ref()
                    .filter(|_| n.rank == 0 && l.text.is_empty());
                let text = whole.map_or_else(|| l.text.clone(), |r| r.to_string());
                for line in text.lines() {
                    writeln!(f, "    {line}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_every_node_its_reason_and_its_local_receipt() {
        let r = ClusterReport {
            call: "map".into(),
            elements: 1000,
            spread: "auto".into(),
            decision: "auto: by the models".into(),
            nodes: vec![
                NodeReport {
                    rank: 0,
                    host: "a".into(),
                    elements: 1000,
                    compute_s: 1e-3,
                    measured_s: 1.1e-3,
                    local: Some(LocalReport {
                        text: "cpu did 1000\nsecond line".into(),
                        ..LocalReport::default()
                    }),
                    ..NodeReport::default()
                },
                NodeReport {
                    rank: 1,
                    host: "b".into(),
                    why_none: Some("its link costs more than it saves".into()),
                    ..NodeReport::default()
                },
            ],
            wall_s: 1.2e-3,
            predicted_s: Some(1e-3),
            root_local: None,
        };
        let s = r.to_string();
        assert!(s.contains("rank 1 got nothing: its link costs more"), "{s}");
        assert!(s.contains("    second line"), "{s}");
        assert!(s.contains("1000") && s.contains("1.10 ms"), "{s}");
        assert_eq!(r.node(1).map(|n| n.elements), Some(0));
        assert!(r.network_s() == 0.0);
    }
}
