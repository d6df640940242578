//! [`Cluster`]: the nodes of an MPI job, each with its own runtime, and the entry
//! points that place one call across them.
//!
//! Building one is collective: every rank calls [`Cluster::new`] (or the builder)
//! with the same communicator. Each rank builds its own [`Runtime`] (its CPU and
//! GPUs), sends its [`NodeProfile`] to the root, and answers the root's ping-pong
//! while the root fits each link ([`link`](super::link)). Then every rank runs the same
//! program: each call (`map`, `map2`, `reduce`, `reduce2`) is made on every rank with
//! the same kernel; the root's inputs are the call's (other ranks pass empty slices),
//! and the root's call gives the whole result. How a call moves is in
//! [`call`](super::call).

use std::cell::RefCell;
use std::time::Duration;

use super::link;
use super::plan::Spread;
use super::profile::{NodeProfile, Throughputs};
use super::report::ClusterReport;
use super::shape::Shape;
use super::wire::{Channel, Wire, MAX_MESSAGE_WORDS};
use crate::error::{Error, Result};
use crate::kernel::{Element, Kernel, Reduce};
use crate::placement::Placement;
use crate::runtime::Runtime;
use crate::transfer::Calibration;

/// The environment variable giving the timeout of every wait, in seconds (default
/// [`DEFAULT_TIMEOUT_S`]).
pub const TIMEOUT_VAR: &str = "HYBRID_CLUSTER_TIMEOUT_S";
/// Seconds a rank waits for a message before the call fails with
/// [`Error::ClusterTimeout`].
pub const DEFAULT_TIMEOUT_S: f64 = 600.0;

/// Tags of the cluster's messages (on its own duplicate of the communicator).
pub(crate) const TAG_PROFILE: i32 = 10;
pub(crate) const TAG_READY: i32 = 11;

/// The output of a cluster call on one rank, and its receipt.
#[derive(Debug, Clone)]
pub struct ClusterRun<T> {
    /// The whole result on the root; `None` on the other ranks.
    pub output: Option<T>,
    /// The root's: every node; another rank's: its own node.
    pub report: ClusterReport,
}

/// How a cluster is built: its link shaping, timeouts and local placement.
#[derive(Debug)]
pub struct ClusterBuilder {
    runtime: Option<Runtime>,
    shape: Option<Option<Shape>>,
    timeout: Option<Duration>,
    max_message_words: usize,
    recalibrate: bool,
    local: Placement,
    cache_dir: Option<std::path::PathBuf>,
}

/// The nodes of an MPI job, and the calls placed across them.
pub struct Cluster {
    pub(crate) ch: Channel<Box<dyn Wire>>,
    pub(crate) runtime: Runtime,
    /// The root's: every node's; another rank's: its own.
    pub(crate) profiles: Vec<NodeProfile>,
    /// The root's: each rank's fitted link (`None` for the root itself).
    pub(crate) links: Vec<Option<Calibration>>,
    pub(crate) models: RefCell<Throughputs>,
    /// How each node places its own share over its devices.
    pub(crate) local: Placement,
    /// Set when a wait timed out: the ranks no longer agree where they are.
    pub(crate) broken: RefCell<Option<Error>>,
    /// The root's: the calls (kernel id, operation) every rank has answered once, so
    /// matched on every rank: a rank given no share of a later one is not waited for.
    pub(crate) answered: RefCell<std::collections::HashSet<(u64, u32)>>,
    warnings: Vec<String>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("rank", &self.rank())
            .field("size", &self.size())
            .field("profiles", &self.profiles)
            .finish()
    }
}

impl Default for ClusterBuilder {
    fn default() -> Self {
        ClusterBuilder {
            runtime: None,
            shape: None,
            timeout: None,
            max_message_words: MAX_MESSAGE_WORDS,
            recalibrate: false,
            local: Placement::Auto,
            cache_dir: None,
        }
    }
}

impl ClusterBuilder {
    /// This rank's runtime (default: [`Runtime::new`]).
    pub fn runtime(mut self, rt: Runtime) -> Self {
        self.runtime = Some(rt);
        self
    }

    /// Shapes the links (default: from [`SHAPE_VAR`](super::SHAPE_VAR); `None`: no
    /// shaping whatever the environment says). Every rank must give the same.
    pub fn shape(mut self, shape: Option<Shape>) -> Self {
        self.shape = Some(shape);
        self
    }

    /// How long any rank waits for a message before the call fails (default: from
    /// [`TIMEOUT_VAR`], else [`DEFAULT_TIMEOUT_S`]).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    /// The most 32-bit words one MPI message carries; larger payloads go in several
    /// (default and upper bound: 2³¹−1, MPI's count limit). For tests of chunking.
    pub fn max_message_words(mut self, words: usize) -> Self {
        self.max_message_words = words.clamp(1, MAX_MESSAGE_WORDS);
        self
    }

    /// Measure every link now, even when a stored calibration is fresh.
    pub fn recalibrate(mut self, yes: bool) -> Self {
        self.recalibrate = yes;
        self
    }

    /// Where the root stores link calibrations (default: the runtime's cache
    /// directory, `HYBRID_CACHE_DIR` or the user's cache).
    pub fn cache_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// How each node places its share over its own devices (default `Auto`).
    pub fn local(mut self, p: Placement) -> Self {
        self.local = p;
        self
    }

    /// Builds the cluster on `comm` (collective: every rank calls it). MPI must be
    /// initialised with at least `Threading::Funneled` ([`init`](super::init)), and
    /// this thread is the one that drives the cluster from now on.
    pub fn build(self, comm: &impl mpi::topology::Communicator) -> Result<Cluster> {
        let timeout = self.wait_limit()?;
        let wire = super::mpi_wire::MpiWire::new(comm, timeout);
        super::mpi_wire::install_panic_hook(wire.rank());
        let host = mpi::environment::processor_name().unwrap_or_else(|_| "?".into());
        let lib = mpi::environment::library_version().unwrap_or_default();
        let lib = lib
            .split([',', '\n'])
            .next()
            .unwrap_or("mpi")
            .trim()
            .to_string();
        self.start(Box::new(wire), &host, &lib)
    }

    /// The timeout given, or from the environment, or the default.
    fn wait_limit(&self) -> Result<Duration> {
        Ok(match self.timeout {
            Some(t) => t,
            None => match std::env::var(TIMEOUT_VAR) {
                Ok(v) => v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or(Error::BadEnvironment {
                        var: TIMEOUT_VAR,
                        value: v,
                    })?,
                Err(_) => Duration::from_secs_f64(DEFAULT_TIMEOUT_S),
            },
        })
    }

    /// Builds the cluster on any wire (the unit tests' threads, or MPI).
    pub(crate) fn start(self, wire: Box<dyn Wire>, host: &str, lib: &str) -> Result<Cluster> {
        let timeout = self.wait_limit()?;
        let shape = match self.shape {
            Some(s) => s,
            None => Shape::from_env()?,
        };
        let runtime = match self.runtime {
            Some(rt) => rt,
            None => Runtime::new()?,
        };
        let mut ch = Channel::new(wire, timeout);
        ch.shape = shape;
        ch.max_words = self.max_message_words;
        let (rank, size) = (ch.rank(), ch.size());
        let me = NodeProfile::local(rank, host, &runtime);
        let mut cluster = Cluster {
            ch,
            runtime,
            profiles: vec![me.clone()],
            links: vec![None],
            models: RefCell::default(),
            local: self.local,
            broken: RefCell::new(None),
            answered: RefCell::default(),
            warnings: Vec::new(),
        };
        if rank != 0 {
            let json = serde_json::to_vec(&me).unwrap_or_default();
            cluster.ch.send_bytes(0, TAG_PROFILE, &json);
            link::pong(&cluster.ch)?;
            let ready = cluster.ch.recv_bytes(0, TAG_READY)?;
            if !ready.is_empty() {
                return Err(Error::Cluster {
                    rank: 0,
                    message: String::from_utf8_lossy(&ready).into_owned(),
                });
            }
            return Ok(cluster);
        }
        let how = format!(
            "{lib} {}",
            cluster
                .ch
                .shape
                .as_ref()
                .map_or("unshaped".into(), Shape::describe)
        );
        let dir = self.cache_dir.clone().unwrap_or_else(crate::cache::dir);
        let mut failed = None;
        for r in 1..size {
            let got = cluster.ch.recv_bytes(r, TAG_PROFILE).and_then(|b| {
                serde_json::from_slice::<NodeProfile>(&b).map_err(|e| Error::Cluster {
                    rank: r,
                    message: format!("unreadable profile: {e}"),
                })
            });
            let p = match got {
                Ok(p) => p,
                Err(e) => {
                    failed.get_or_insert(e);
                    NodeProfile::default()
                }
            };
            let who = format!("cluster {host} rank 0 to {} rank {r}", p.host);
            match link::measure(&cluster.ch, r, &dir, &who, &how, self.recalibrate) {
                Ok((c, w)) => {
                    cluster.links.push(Some(c));
                    cluster.warnings.extend(w);
                }
                Err(e) => {
                    cluster.links.push(None);
                    failed.get_or_insert(e);
                }
            }
            cluster.profiles.push(p);
        }
        let verdict = failed.as_ref().map(|e| e.to_string()).unwrap_or_default();
        for r in 1..size {
            cluster.ch.send_bytes(r, TAG_READY, verdict.as_bytes());
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(cluster),
        }
    }
}

impl Cluster {
    /// A cluster on `comm` with the defaults (collective); see [`ClusterBuilder`].
    pub fn new(comm: &impl mpi::topology::Communicator) -> Result<Cluster> {
        Cluster::builder().build(comm)
    }

    /// A builder.
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    /// This rank.
    pub fn rank(&self) -> usize {
        self.ch.rank()
    }

    /// How many ranks (nodes) there are.
    pub fn size(&self) -> usize {
        self.ch.size()
    }

    /// Whether this rank is the root (rank 0), where results are gathered.
    pub fn is_root(&self) -> bool {
        self.rank() == 0
    }

    /// Payload bytes this rank has sent and received over the cluster's messages so
    /// far (data and records; message headers not counted).
    pub fn bytes_moved(&self) -> u64 {
        self.ch.moved.get()
    }

    /// This rank's own runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The nodes' profiles: every node's on the root, this node's elsewhere.
    pub fn profiles(&self) -> &[NodeProfile] {
        &self.profiles
    }

    /// On the root, each rank's fitted link from the root (`None` for the root
    /// itself); empty elsewhere but for the rank's own `None`.
    pub fn links(&self) -> &[Option<Calibration>] {
        &self.links
    }

    /// The shaping this cluster's links have, if any.
    pub fn shape(&self) -> Option<&Shape> {
        self.ch.shape.as_ref()
    }

    /// Warnings from building (a calibration file that could not be read or written).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Applies a one-input kernel to every element of `xs` (the root's; other ranks
    /// pass `&[]`), spread over the nodes; the root gets the whole result.
    pub fn map<I: Element, O: Element>(
        &self,
        xs: &[I],
        kernel: &Kernel<I, O>,
        spread: Spread,
    ) -> Result<ClusterRun<Vec<O>>> {
        let p = self.local;
        self.map_words(kernel, &[xs], spread, |v| {
            self.runtime
                .map(v[0], kernel, p)
                .map(|r| (r.output, r.report))
        })
    }

    /// Applies a two-input kernel to every pair `(a[i], b[i])`, spread over the nodes.
    pub fn map2<I: Element, O: Element>(
        &self,
        a: &[I],
        b: &[I],
        kernel: &Kernel<I, O>,
        spread: Spread,
    ) -> Result<ClusterRun<Vec<O>>> {
        let p = self.local;
        self.map_words(kernel, &[a, b], spread, |v| {
            self.runtime
                .map2(v[0], v[1], kernel, p)
                .map(|r| (r.output, r.report))
        })
    }

    /// Maps and combines with `op`: each node reduces its share, the root combines
    /// the partials (integers exactly; an `f32` sum within the runtime's bound per
    /// node plus one rounding per node).
    pub fn reduce<I: Element, O: Element>(
        &self,
        xs: &[I],
        kernel: &Kernel<I, O>,
        op: Reduce,
        spread: Spread,
    ) -> Result<ClusterRun<O>> {
        let p = self.local;
        self.reduce_words(kernel, op, &[xs], spread, |v| {
            self.runtime
                .reduce(v[0], kernel, op, p)
                .map(|r| (r.output, r.report))
        })
    }

    /// [`reduce`](Self::reduce) of a two-input kernel (a dot product is `a * b` summed).
    pub fn reduce2<I: Element, O: Element>(
        &self,
        a: &[I],
        b: &[I],
        kernel: &Kernel<I, O>,
        op: Reduce,
        spread: Spread,
    ) -> Result<ClusterRun<O>> {
        let p = self.local;
        self.reduce_words(kernel, op, &[a, b], spread, |v| {
            self.runtime
                .reduce2(v[0], v[1], kernel, op, p)
                .map(|r| (r.output, r.report))
        })
    }
}
