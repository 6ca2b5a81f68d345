//! A backend's view of the arena while it executes a partition: its inputs and
//! weights to read, its outputs to write, all in place.

use super::{BackendError, Partition};
use crate::format::Storage;
use crate::kernels::Int8Kernels;
use crate::model::TensorInfo;

/// The tensors of one partition during [`super::Backend::execute`].
///
/// Only the partition's boundary inputs and constants can be read, and only its
/// boundary outputs written; anything else is [`BackendError::NotInPartition`].
///
/// The view records whether it has handed out write access to arena bytes that
/// hold one of the partition's inputs ([`PartitionIo::inputs_overwritten`]): until
/// then, the CPU can redo the partition after a failed execute.
pub struct PartitionIo<'x> {
    partition: Partition<'x>,
    arena: *mut u8,
    arena_len: usize,
    inputs_overwritten: bool,
    _borrow: core::marker::PhantomData<&'x mut [u8]>,
}

impl<'x> PartitionIo<'x> {
    /// A view of `arena` (the planned region) for `partition`.
    pub(crate) fn new(partition: Partition<'x>, arena: &'x mut [u8]) -> PartitionIo<'x> {
        PartitionIo {
            partition,
            arena: arena.as_mut_ptr(),
            arena_len: arena.len(),
            inputs_overwritten: false,
            _borrow: core::marker::PhantomData,
        }
    }

    /// The partition being executed.
    pub fn partition(&self) -> &Partition<'x> {
        &self.partition
    }

    /// The bytes of input or constant tensor `tensor`.
    pub fn input(&self, tensor: usize) -> Result<&[u8], BackendError> {
        let t = self.readable(tensor)?;
        if t.storage == Storage::Constant {
            return Ok(self.partition.model().constant_bytes(&t).unwrap_or(&[]));
        }
        let (ptr, len) = self.span(&t)?;
        // SAFETY: `span` checked the range lies in the arena; the only mutable
        // access, `output`, needs `&mut self`, so no `&mut` overlaps this borrow.
        Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
    }

    /// The bytes of output tensor `tensor`, to be written in full.
    pub fn output(&mut self, tensor: usize) -> Result<&mut [u8], BackendError> {
        let t = self.writable(tensor)?;
        let (ptr, len) = self.span(&t)?;
        self.inputs_overwritten |= self.partition.overlaps_inputs(&t);
        // SAFETY: in bounds (checked by `span`); `&mut self` excludes any other
        // borrow handed out by this view.
        Ok(unsafe { core::slice::from_raw_parts_mut(ptr, len) })
    }

    /// Runs op `op` of the partition with the CPU kernels, in place (the loopback
    /// backend's executor).
    pub(crate) fn run_op_on_cpu(
        &mut self,
        op: usize,
        kernels: Int8Kernels,
    ) -> Result<(), crate::Error> {
        let model = self.partition.model();
        let info = model
            .op(op)
            .filter(|_| self.partition.op_range().contains(&op));
        let info = info.ok_or(crate::Error::BadOp {
            op,
            name: crate::error::ShortName::new(""),
            opcode: "?",
            why: "op is not in the partition",
        })?;
        // The kernels write the op's outputs and scratch wherever the plan put them.
        self.inputs_overwritten |= !self.partition.fallback_safe();
        // SAFETY: the view was made from `&'x mut [u8]` of `arena_len` bytes and
        // `&mut self` excludes every other borrow handed out by it.
        let arena = unsafe { core::slice::from_raw_parts_mut(self.arena, self.arena_len) };
        crate::interpreter::run_op(model, arena, kernels, &info)
    }

    /// Whether write access to bytes of a partition input has been handed out
    /// (through [`PartitionIo::output`] or the loopback executor): if so, the CPU
    /// can no longer redo the partition after a failure.
    pub fn inputs_overwritten(&self) -> bool {
        self.inputs_overwritten
    }

    fn readable(&self, tensor: usize) -> Result<TensorInfo<'x>, BackendError> {
        let p = &self.partition;
        p.inputs()
            .chain(p.constants())
            .find(|t| t.index == tensor)
            .ok_or(BackendError::NotInPartition {
                tensor,
                role: "input",
            })
    }

    fn writable(&self, tensor: usize) -> Result<TensorInfo<'x>, BackendError> {
        self.partition
            .outputs()
            .find(|t| t.index == tensor)
            .ok_or(BackendError::NotInPartition {
                tensor,
                role: "output",
            })
    }

    fn span(&self, t: &TensorInfo<'_>) -> Result<(*mut u8, usize), BackendError> {
        let end = t.offset.checked_add(t.byte_len);
        if t.storage != Storage::Arena || end.is_none_or(|e| e > self.arena_len) {
            return Err(BackendError::NotInPartition {
                tensor: t.index,
                role: "arena tensor",
            });
        }
        // SAFETY: offset + byte_len <= arena_len (checked above), so the pointer
        // stays inside the arena allocation.
        Ok((unsafe { self.arena.add(t.offset) }, t.byte_len))
    }
}
