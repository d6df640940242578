//! The [`Wire`] on MPI (rsmpi), and the panic hook that aborts the job.
//!
//! Every call into MPI is made from the thread that built the cluster, so MPI is asked
//! for `Threading::Funneled` and no more ([`init`](super::init)); rayon's and wgpu's
//! threads never touch it. Receives are `MPI_Improbe` then `MPI_Mrecv`, so a wait
//! can give up ([`Channel`](super::wire::Channel) polls with a deadline) where a
//! blocking receive could not. Sends are `MPI_Isend`, tested until done: a send that
//! no rank takes within the timeout (a rank that stopped taking part) cannot be
//! taken back, so it aborts the job with a line saying so rather than hang.
//!
//! A panic on the thread that drives the cluster would leave the other ranks waiting
//! for a message that never comes; the hook installed here prints the panic as usual,
//! then `MPI_Abort`s the whole job with a line naming the rank. Panics inside a node's
//! local run are not the hook's: the runtime recovers a device's failure itself, and
//! what escapes it is caught by the cluster and reported to the root as an error.

use std::cell::Cell;
use std::sync::Once;
use std::thread::ThreadId;

use std::time::{Duration, Instant};

use mpi::point_to_point::{Destination, MatchedReceiveVec, Source};
use mpi::topology::{Communicator, SimpleCommunicator};

use super::wire::Wire;

/// A communicator as a [`Wire`].
pub(crate) struct MpiWire {
    comm: SimpleCommunicator,
    timeout: Duration,
}

impl MpiWire {
    /// A wire on a duplicate of `comm` (collective), so the cluster's messages never
    /// meet the program's own.
    pub(crate) fn new(comm: &impl Communicator, timeout: Duration) -> MpiWire {
        MpiWire {
            comm: comm.duplicate(),
            timeout,
        }
    }
}

impl Wire for MpiWire {
    fn rank(&self) -> usize {
        self.comm.rank() as usize
    }

    fn size(&self) -> usize {
        self.comm.size() as usize
    }

    fn send(&self, to: usize, tag: i32, words: &[u32]) {
        let start = Instant::now();
        mpi::request::scope(|scope| {
            let dest = self.comm.process_at_rank(to as i32);
            let mut req = dest.immediate_send_with_tag(scope, words, tag);
            loop {
                match req.test() {
                    Ok(_) => return,
                    Err(r) => req = r,
                }
                if start.elapsed() > self.timeout {
                    eprintln!(
                        "hybrid::cluster: rank {} could not send to rank {to} within {:?}; aborting the job",
                        self.rank(),
                        self.timeout
                    );
                    self.comm.abort(75);
                }
                if start.elapsed() > Duration::from_micros(20) {
                    std::thread::sleep(Duration::from_micros(50));
                } else {
                    std::thread::yield_now();
                }
            }
        });
    }

    fn try_recv(&self, from: usize, tag: i32) -> Option<Vec<u32>> {
        let m = self
            .comm
            .process_at_rank(from as i32)
            .immediate_matched_probe_with_tag(tag)?;
        Some(m.matched_receive_vec::<u32>().0)
    }
}

thread_local! {
    /// Set while this thread runs a node's local share: a panic there is the runtime's
    /// or the cluster's to turn into an error, not the hook's to abort on.
    static IN_LOCAL: Cell<bool> = const { Cell::new(false) };
}

static HOOK: Once = Once::new();
static DRIVER: std::sync::OnceLock<ThreadId> = std::sync::OnceLock::new();

/// Installs (once per process) the hook that aborts the job when the thread that
/// drives the cluster panics outside a local run.
pub(crate) fn install_panic_hook(rank: usize) {
    let _ = DRIVER.set(std::thread::current().id());
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            let driver = DRIVER.get() == Some(&std::thread::current().id());
            if driver && !IN_LOCAL.with(Cell::get) && mpi::environment::is_initialized()
                && !mpi::environment::is_finalized()
            {
                eprintln!("hybrid::cluster: rank {rank} panicked; aborting the job so no rank waits for it");
                SimpleCommunicator::world().abort(70);
            }
        }));
    });
}

/// Runs `f` as a local run: a panic in it is caught (not the hook's, see the module
/// docs) and given back as its message.
pub(crate) fn local<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    let was = IN_LOCAL.with(|c| c.replace(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    IN_LOCAL.with(|c| c.set(was));
    r.map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into())
    })
}
