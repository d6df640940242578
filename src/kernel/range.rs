//! Placeholder until the range analysis lands: every table is read whole.

use super::program::Program;

/// How far a kernel's reads of one table reach from the element's own index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Not read at all.
    #[allow(dead_code)]
    None,
    /// Every read's raw index lies in `[i - before, i + after]`.
    #[allow(dead_code)]
    Near { before: u64, after: u64 },
    /// Could not be bounded.
    Whole,
}

/// Per table of `p`, the reach of its reads for a call over `0..n`.
pub(crate) fn reach(p: &Program, _n: u64) -> Vec<Reach> {
    vec![Reach::Whole; p.tables.len()]
}
