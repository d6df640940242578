//! What a caller asks for: where a call's elements run.
//!
//! A plain value at the bottom of the crate: the scheduler resolves it, the report
//! records it, and neither has to import the other to name it.

use std::fmt;

/// Where a call's elements run.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Placement {
    /// Let the library choose (the default).
    #[default]
    Auto,
    /// Every element on the CPU.
    Cpu,
    /// Every element on the GPU(s), shared equally when there are several.
    Gpu,
    /// This fraction of the elements (0.0 to 1.0) on the GPU(s), the rest on the CPU,
    /// all running at the same time.
    Split(f64),
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placement::Auto => f.write_str("auto"),
            Placement::Cpu => f.write_str("cpu"),
            Placement::Gpu => f.write_str("gpu"),
            Placement::Split(x) => write!(f, "split({x:.2})"),
        }
    }
}
