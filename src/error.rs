//! The library's one error type and its `Result` alias.
//!
//! Variants carry numbers and names, not prose; messages are lowercase with no full
//! stop. Every variant is something a caller cannot rule out in advance (no adapter, a
//! shader the driver rejects, a lost device) or a contract violation that comes from
//! data (two inputs of different lengths). None of them is ever a panic.

/// The error type of every fallible call in `hybrid`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A GPU was required (`Placement::Gpu`, `HYBRID_BACKEND=gpu`) but none was found.
    #[error("no gpu adapter available: {reason}")]
    NoAdapter {
        /// Why none could be used (none found, backend disabled, request failed).
        reason: String,
    },
    /// The placement names a kind of device this runtime does not have.
    #[error("placement needs a {kind} device, and this runtime has none")]
    NoDevice {
        /// "cpu" or "gpu".
        kind: &'static str,
    },
    /// A device index past the runtime's devices.
    #[error("no device {index}: this runtime has {devices}")]
    NoSuchDevice {
        /// The index asked for.
        index: usize,
        /// How many devices the runtime has.
        devices: usize,
    },
    /// Data was asked to cross the link of a device that has none to move it over
    /// (the CPU works on host memory; a simulated device's link is only a model).
    #[error("device {device} has no link to move data over")]
    NoTransfer {
        /// The device's name.
        device: String,
    },
    /// The driver rejected the generated (or hand-written) shader.
    #[error("shader rejected by {device}: {message} (line {line}: `{source_line}`)")]
    ShaderRejected {
        /// The device whose driver rejected it.
        device: String,
        /// The driver's (or naga's) message.
        message: String,
        /// 1-based line of the WGSL source the message points at, 0 when unknown.
        line: u32,
        /// The text of that line, empty when unknown.
        source_line: String,
    },
    /// The device was lost (driver reset, out of memory, removed) during a call.
    #[error("device {device} lost: {reason}")]
    DeviceLost {
        /// The device's name.
        device: String,
        /// What the driver said.
        reason: String,
    },
    /// A GPU operation failed at run time (allocation, mapping a buffer, a validation
    /// error the driver raised while running a call).
    #[error("device {device} failed during {stage}: {reason}")]
    DeviceFailed {
        /// The device's name.
        device: String,
        /// Which stage failed: "upload", "compute", "download", "map", "allocate".
        stage: &'static str,
        /// What the driver said.
        reason: String,
    },
    /// A device cannot take this kernel: it binds more buffers than the device
    /// allows, or a table larger than one of its buffers. The device is left out of
    /// the call; this is the call's error only when no device can take it.
    #[error("device {device} cannot run this kernel: {reason}")]
    DeviceCannot {
        /// The device.
        device: String,
        /// What it lacks.
        reason: String,
    },
    /// The element-wise inputs of a kernel have different lengths.
    #[error("input lengths differ: {left} and {right}")]
    LengthMismatch {
        /// Length of the first input.
        left: usize,
        /// Length of the second input.
        right: usize,
    },
    /// An operation was applied to a type that does not support it.
    #[error("operation {op} is not supported for {ty}")]
    UnsupportedOperation {
        /// The operation's name.
        op: &'static str,
        /// The element type's name.
        ty: &'static str,
    },
    /// The kernel's expression cannot be compiled (a loop variable used outside its
    /// fold, an expression nested deeper than the compiler allows).
    #[error("invalid kernel: {reason}")]
    InvalidKernel {
        /// What is wrong with it.
        reason: String,
    },
    /// A kernel called with a different number of inputs than it was built for
    /// (`map` with a `map2` kernel or the reverse).
    #[error("kernel takes {expected} input(s), called with {given}")]
    WrongArity {
        /// Inputs the kernel was built for.
        expected: usize,
        /// Inputs given.
        given: usize,
    },
    /// An environment variable has a value the library does not understand.
    #[error("environment variable {var} has unknown value {value:?}")]
    BadEnvironment {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// A split fraction outside `0.0..=1.0` (or NaN).
    #[error("split fraction {fraction} is outside 0..=1")]
    BadSplit {
        /// The fraction given.
        fraction: f64,
    },
    /// A hand-written kernel's GPU and CPU halves disagree on an element of the
    /// sample they were checked on.
    #[error("hand-written kernel disagrees on {device} at element {index}: cpu {cpu}, gpu {gpu} (relative tolerance {tolerance})")]
    CustomMismatch {
        /// The GPU whose result differs.
        device: String,
        /// The element's index in the call's input.
        index: usize,
        /// The CPU half's result.
        cpu: String,
        /// The GPU half's result.
        gpu: String,
        /// The kernel's relative tolerance (integers must be equal).
        tolerance: f32,
    },
    /// One chunk is larger than the device can hold in one buffer.
    #[error("buffer of {requested} bytes exceeds the device's limit of {max} bytes")]
    BufferTooLarge {
        /// Bytes asked for.
        requested: u64,
        /// The device's limit.
        max: u64,
    },
    /// A rank of a cluster failed its part of a call (its kernel, its device, its
    /// memory), or sent what the cluster could not read; the root fails the call with
    /// it. `rank` 0 on another rank: the root cancelled the call.
    #[error("cluster rank {rank} failed: {message}")]
    Cluster {
        /// The rank that failed.
        rank: usize,
        /// Its error, as it said it.
        message: String,
    },
    /// A rank waited for a message from another past the cluster's timeout.
    #[error("no message from cluster rank {rank} within {waited_ms} ms")]
    ClusterTimeout {
        /// The rank that did not answer.
        rank: usize,
        /// Milliseconds waited.
        waited_ms: u64,
    },
    /// The ranks of a cluster called different kernels (different ids) in one call.
    #[error("cluster rank {rank} runs kernel {local:016x} where the root runs {root:016x}")]
    ClusterKernelMismatch {
        /// The rank whose kernel differs.
        rank: usize,
        /// The root's kernel id.
        root: u64,
        /// That rank's kernel id.
        local: u64,
    },
}

/// `Result` with [`Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

const _: () = {
    const fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Error>();
};
