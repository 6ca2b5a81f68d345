//! A reference backend that claims Conv, Gemm (fully connected) and Relu ops and
//! runs them with the portable reference kernels, in place in the arena. It
//! exercises the offload hooks end to end without hardware, and can be told to fail
//! to test the fallback paths.

use super::{Backend, BackendError, Handle, MAX_PARTITIONS, Partition, PartitionIo};
use crate::format::Opcode;
use crate::kernels::Int8Kernels;
use crate::kernels::activation_f32::Activation;
use crate::model::{Model, OpInfo};
use crate::ops;

/// Where the loopback backend fails on purpose (for tests of the fallback paths).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectedFailure {
    /// Reports itself unavailable.
    Unavailable,
    /// Fails to prepare partition `n`.
    Prepare(usize),
    /// Fails to execute partition `n`, after writing garbage into its outputs.
    Execute(usize),
    /// Fails to execute partition `n` before touching the arena (as a bus timeout
    /// before the first reply would).
    ExecuteUntouched(usize),
}

/// The loopback backend.
#[derive(Default)]
pub struct Loopback {
    prepared: [Option<(usize, usize, usize)>; MAX_PARTITIONS],
    fail: Option<InjectedFailure>,
    executions: usize,
}

impl Loopback {
    /// A loopback backend that never fails.
    pub fn new() -> Loopback {
        Loopback::default()
    }

    /// A loopback backend that fails as `failure` says.
    pub fn failing(failure: InjectedFailure) -> Loopback {
        Loopback {
            fail: Some(failure),
            ..Loopback::default()
        }
    }

    /// Partitions executed successfully so far.
    pub fn executions(&self) -> usize {
        self.executions
    }

    /// Partitions currently prepared (not yet released).
    pub fn prepared_count(&self) -> usize {
        self.prepared.iter().flatten().count()
    }
}

/// Whether the loopback backend runs `op`: Conv2d, FullyConnected (ONNX Gemm and
/// MatMul with a constant weight) and a standalone Relu.
pub fn loopback_claims(op: &OpInfo<'_>) -> bool {
    match op.opcode {
        Opcode::Conv2d | Opcode::FullyConnected => true,
        Opcode::Activation => ops::decode_activation(op.params) == Some(Activation::Relu),
        _ => false,
    }
}

impl Backend for Loopback {
    fn name(&self) -> &str {
        "loopback"
    }

    fn is_available(&mut self) -> bool {
        self.fail != Some(InjectedFailure::Unavailable)
    }

    fn claims(&self, _model: &Model<'_>, op: &OpInfo<'_>) -> bool {
        loopback_claims(op)
    }

    fn prepare(&mut self, partition: &Partition<'_>) -> Result<Handle, BackendError> {
        if self.fail == Some(InjectedFailure::Prepare(partition.index)) {
            return Err(BackendError::OutOfResources {
                what: "injected prepare failure",
            });
        }
        if let Some(op) = partition.ops().find(|op| !loopback_claims(op)) {
            return Err(BackendError::Unsupported {
                op: op.index,
                why: "the loopback backend runs Conv2d, FullyConnected and Relu only",
            });
        }
        let slot = self.prepared.iter().position(Option::is_none);
        let slot = slot.ok_or(BackendError::OutOfResources {
            what: "partition slots",
        })?;
        self.prepared[slot] = Some((partition.index, partition.first_op, partition.end_op));
        Ok(slot as Handle)
    }

    fn execute(&mut self, handle: Handle, io: &mut PartitionIo<'_>) -> Result<(), BackendError> {
        let slot = self.prepared.get(handle as usize).copied().flatten();
        let (index, first, end) = slot.ok_or(BackendError::InvalidHandle { handle })?;
        if (first, end) != (io.partition().first_op, io.partition().end_op) {
            return Err(BackendError::InvalidHandle { handle });
        }
        if self.fail == Some(InjectedFailure::ExecuteUntouched(index)) {
            return Err(BackendError::Timeout);
        }
        for op in first..end {
            io.run_op_on_cpu(op, Int8Kernels::Reference)
                .map_err(|_| BackendError::Code { code: op as i32 })?;
        }
        if self.fail == Some(InjectedFailure::Execute(index)) {
            let partition = *io.partition();
            for t in partition.outputs() {
                if let Ok(bytes) = io.output(t.index) {
                    bytes.fill(0x5a);
                }
            }
            return Err(BackendError::Timeout);
        }
        self.executions += 1;
        Ok(())
    }

    fn release(&mut self, handle: Handle) {
        if let Some(slot) = self.prepared.get_mut(handle as usize) {
            *slot = None;
        }
    }
}
