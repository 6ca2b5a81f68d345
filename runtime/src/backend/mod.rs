//! Offload hooks: the interface an accelerator (NPU, DSP, an external chip) implements
//! to run parts of a model, and the partitioning that decides which parts.
//!
//! The interface is as small as ExecuTorch's: [`Backend::is_available`],
//! [`Backend::prepare`] (once per partition, at interpreter creation),
//! [`Backend::execute`] (every invoke) and [`Backend::release`], plus
//! [`Backend::claims`], which says per op whether the backend can run it.
//!
//! A [`Partition`] is a maximal run of consecutive ops (in execution order) that the
//! backend claims; the CPU runs everything else. All tensors stay in the one arena
//! planned at conversion, so tensors crossing a partition boundary are handed over
//! in place: a backend reads its inputs and writes its outputs through
//! [`PartitionIo`], which points into the arena (no copies unless the accelerator has
//! memory of its own).
//!
//! When a backend fails (an error, a timeout, a CRC mismatch), [`OnFailure`] decides:
//! run that partition on the CPU instead, or return [`crate::Error::Backend`]. The CPU
//! can only redo a partition whose inputs are still intact: where the arena plan lets
//! a partition's outputs reuse its inputs' bytes ([`Partition::fallback_safe`] is
//! false) and the backend had already been handed those bytes to write
//! ([`PartitionIo::inputs_overwritten`]), the failure is reported instead of risking a
//! wrong output.
//!
//! This module owns no memory: partition tables are fixed-size arrays.

pub mod loopback;
mod partition;
mod partition_io;
#[cfg(feature = "spi")]
pub mod spi;

pub use partition::{Partition, Partitions, partitions};
pub use partition_io::PartitionIo;

use crate::model::{Model, OpInfo};

/// Most partitions an interpreter offloads; further claimed runs stay on the CPU.
pub const MAX_PARTITIONS: usize = 16;

/// A backend's name for one prepared partition (its own index or pointer).
pub type Handle = u32;

/// Why a backend could not prepare or execute a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The accelerator is absent, powered down or not responding.
    #[error("backend is not available")]
    Unavailable,
    /// The backend cannot run op `op` after all.
    #[error("op {op} is not supported: {why}")]
    Unsupported {
        /// Op index.
        op: usize,
        /// Reason.
        why: &'static str,
    },
    /// No room for another partition (or for its weights) on the accelerator.
    #[error("out of accelerator resources: {what}")]
    OutOfResources {
        /// What ran out.
        what: &'static str,
    },
    /// The accelerator did not finish in time.
    #[error("timed out waiting for the accelerator")]
    Timeout,
    /// A frame's CRC did not match its contents.
    #[error(
        "CRC mismatch on a frame for tensor {tensor}: sent {expected:#010x}, computed {computed:#010x}"
    )]
    Crc {
        /// Tensor id in the frame.
        tensor: u32,
        /// CRC in the frame.
        expected: u32,
        /// CRC of the bytes received.
        computed: u32,
    },
    /// The transport (bus, pin) failed.
    #[error("transport error: {what}")]
    Transport {
        /// What failed.
        what: &'static str,
    },
    /// The accelerator answered something the protocol does not allow.
    #[error("protocol error: {what}")]
    Protocol {
        /// What was wrong.
        what: &'static str,
    },
    /// A tensor the backend asked for is not an input/output of the partition.
    #[error("tensor {tensor} is not a {role} of this partition")]
    NotInPartition {
        /// Tensor index.
        tensor: usize,
        /// "input" or "output".
        role: &'static str,
    },
    /// The handle names no prepared partition.
    #[error("invalid handle {handle}")]
    InvalidHandle {
        /// The handle.
        handle: Handle,
    },
    /// A backend-specific error code (for example from a C backend).
    #[error("backend error code {code}")]
    Code {
        /// The code.
        code: i32,
    },
}

/// What the interpreter does when a backend fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// Run the partition on the CPU (an unavailable backend or a failed prepare
    /// leaves the partition on the CPU for good; a failed execute retries the
    /// backend on the next invoke).
    #[default]
    CpuFallback,
    /// Return [`crate::Error::Backend`].
    Error,
}

/// An accelerator that runs partitions of a model.
///
/// Implementations must be deterministic about what they claim: [`Backend::claims`]
/// is called for every op when an interpreter is created (and by `tern inspect`).
pub trait Backend {
    /// A short name for messages.
    fn name(&self) -> &str;

    /// Whether the accelerator can be used now.
    fn is_available(&mut self) -> bool;

    /// Whether the backend runs `op` of `model`.
    fn claims(&self, model: &Model<'_>, op: &OpInfo<'_>) -> bool;

    /// Takes a partition once, at interpreter creation: its ops, tensors and weights
    /// (weights are read in place from the model; a backend with its own memory
    /// copies or uploads them here).
    fn prepare(&mut self, partition: &Partition<'_>) -> Result<Handle, BackendError>;

    /// Runs a prepared partition: reads its inputs from `io` and writes every one
    /// of its outputs. Must read all inputs before writing outputs (they may share
    /// arena bytes).
    fn execute(&mut self, handle: Handle, io: &mut PartitionIo<'_>) -> Result<(), BackendError>;

    /// Frees what [`Backend::prepare`] took.
    fn release(&mut self, handle: Handle);
}
