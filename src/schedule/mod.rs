//! Where each element runs: placements and the split of one call across devices.
//!
//! Layout of a split: the GPUs take the first part of the input, in order; the CPU
//! takes the rest. Each device's share is one contiguous range, so the outputs are
//! written in place, in input order, with no stitching copy.
//!
//! `Auto` ([`auto`]) asks each device's model ([`model`]) what a share would cost,
//! solves for the split that finishes all devices together ([`plan`]), and runs it
//! with the tail balanced as it goes ([`exec`]). Inputs too small for any other device
//! to pay run on the CPU at once, with no planning and no threads.

pub(crate) mod auto;
pub(crate) mod exec;
pub(crate) mod model;
pub(crate) mod place;
pub(crate) mod plan;
