//! The abort path, over real MPI: rank 1 panics on the thread that drives its
//! cluster while the root waits inside a call. The cluster's panic hook must abort the
//! whole job with a line naming the rank, long before the call's timeout (600 s here):
//! `.ci/run` runs this under `mpirun -np 2` inside a 120 s deadline and expects a
//! nonzero exit and that line. It prints `0 passed, 1 failed` only if the root's call
//! ever returns, which it must not.

use std::time::Duration;

use hybrid::cluster::{self, Cluster, Spread};
use hybrid::{Backend, Expr, Kernel, Runtime};

fn main() -> hybrid::Result<()> {
    let universe = cluster::init()?;
    let rt = Runtime::builder().backend(Backend::Cpu).build()?;
    let c = Cluster::builder()
        .runtime(rt)
        .shape(None)
        .timeout(Duration::from_secs(600))
        .build(&universe.world())?;
    let k = Kernel::map(|x: Expr<f32>| x + 1.0f32);
    if c.rank() == 1 {
        panic!("rank 1 fails before its share");
    }
    let xs = vec![1.0f32; 1000];
    let r = c.map(&xs, &k, Spread::Even);
    println!(
        "the root's call returned ({:?}): the abort path failed",
        r.map(|r| r.output.map(|v| v.len()))
    );
    println!("0 passed, 1 failed");
    std::process::exit(1);
}
