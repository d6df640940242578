//! One call across the nodes of an MPI job (cargo feature `mpi`).
//!
//! A machine's GPU is a device behind a link; so is another machine. Every rank of an
//! MPI job runs the same program and its own [`Runtime`](crate::Runtime) (its CPU and
//! GPUs); a [`Cluster`] decides which node computes which part of a call and moves the
//! data, and nothing else. Each link from the root is fitted as the PCI bus is, `t =
//! alpha + bytes / beta`, from ping-pong transfers; each node's throughput per kernel
//! is its own runtime's measured end to end; the runtime's own split solver gives the
//! shares that make every node finish together ([`Spread::Auto`]).
//!
//! ```no_run
//! use hybrid::cluster::{self, Cluster, Spread};
//! use hybrid::{Expr, Kernel};
//!
//! # fn main() -> hybrid::Result<()> {
//! let universe = cluster::init()?; // MPI, with Threading::Funneled
//! let c = Cluster::new(&universe.world())?; // every rank, collectively
//! let k = Kernel::map(|x: Expr<f32>| (x * 2.0 + 1.0).sqrt());
//! let xs: Vec<f32> = if c.is_root() { (0..1_000_000).map(|i| i as f32).collect() } else { vec![] };
//! let run = c.map(&xs, &k, Spread::Auto)?; // every rank calls it; the root gets it all
//! if let Some(ys) = run.output {
//!     assert_eq!(ys.len(), xs.len());
//!     println!("{}", run.report);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Design choices, and why:
//! - **A star around the root.** The root holds the call's data and gathers its
//!   result, as the root's caller asked; every transfer is root ↔ rank, so each link
//!   is one fitted (α, β) and the plan's cost per node is the issue's: `alpha + bytes
//!   in / beta + compute + alpha + bytes out / beta`, the root's share moving nothing.
//! - **Point-to-point, polled, with a deadline**, not MPI collectives: a collective
//!   cannot give up, and a rank that errors or dies must not leave others waiting
//!   (see [`Error::ClusterTimeout`]). Messages go in
//!   chunks of at most 2³¹−1 words (MPI's count).
//! - **Kernels by id.** Closures never cross the network; every rank builds the same
//!   kernel, and the root checks ids at every call
//!   ([`Error::ClusterKernelMismatch`]).
//! - **Throughput learnt from calls**, per kernel: the first `Auto` call of a kernel
//!   splits evenly and so measures every node; every call refines the model.
//! - **Shaped links** ([`Shape`]) for tests and experiments: loopback made to behave
//!   like a network of a known α and β.
//! - **Data that stays on the nodes** ([`DistArray`]): parts owned by ranks and kept
//!   there, maps run by the owners, so a chain of calls moves nothing until it is
//!   gathered; a part read elsewhere is sent once and cached until written.
//! - **The engine is MPI** (rsmpi), initialised `Funneled`: only the thread that
//!   built the cluster calls it.

mod call;
#[allow(clippy::module_inception)]
mod cluster;
mod dist;
mod general;
mod link;
mod mpi_wire;
mod plan;
mod profile;
mod rank;
mod report;
mod shape;
#[cfg(test)]
mod tests;
mod wire;

pub use cluster::{Cluster, ClusterBuilder, ClusterRun, DEFAULT_TIMEOUT_S, TIMEOUT_VAR};
pub use dist::DistArray;
pub use plan::Spread;
pub use profile::NodeProfile;
pub use report::{ClusterReport, LocalReport, NodeReport};
pub use shape::{Shape, SHAPE_VAR};

/// The MPI crate the cluster is built on, for the communicator types.
pub use mpi;

use crate::error::{Error, Result};

/// Initialises MPI for a cluster: `Threading::Funneled` (only the thread that builds
/// the cluster calls MPI; rayon's and wgpu's threads never do). An error when MPI was
/// already initialised, or grants less than `Funneled`.
pub fn init() -> Result<mpi::environment::Universe> {
    use mpi::Threading;
    let (universe, got) =
        mpi::initialize_with_threading(Threading::Funneled).ok_or(Error::Cluster {
            rank: 0,
            message: "mpi was already initialised".into(),
        })?;
    if got < Threading::Funneled {
        return Err(Error::Cluster {
            rank: mpi::topology::Communicator::rank(&universe.world()) as usize,
            message: format!("mpi grants threading {got:?}, the cluster needs Funneled"),
        });
    }
    Ok(universe)
}
