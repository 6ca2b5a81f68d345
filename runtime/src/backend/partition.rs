//! Splitting a model's op list into maximal runs of ops a backend claims, and the
//! boundary tensors of each run. Allocation-free: everything is computed by scanning
//! the op table.

use core::ops::Range;

use super::Backend;
use crate::format::{NONE_INDEX, Storage};
use crate::model::{Model, OpInfo, TensorInfo};

/// A run of consecutive ops (in execution order) given to one backend.
#[derive(Clone, Copy)]
pub struct Partition<'m> {
    /// Position among the model's partitions for this backend (0, 1, ...).
    pub index: usize,
    /// First op and one past the last op.
    pub first_op: usize,
    /// One past the last op.
    pub end_op: usize,
    model: &'m Model<'m>,
}

impl core::fmt::Debug for Partition<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Partition #{} ops {}..{}",
            self.index, self.first_op, self.end_op
        )
    }
}

impl<'m> Partition<'m> {
    /// The partition of `model` covering `ops`.
    pub fn new(model: &'m Model<'m>, index: usize, ops: Range<usize>) -> Partition<'m> {
        Partition {
            index,
            first_op: ops.start,
            end_op: ops.end.min(model.op_count()),
            model,
        }
    }

    /// The model.
    pub fn model(&self) -> &'m Model<'m> {
        self.model
    }

    /// The op indices.
    pub fn op_range(&self) -> Range<usize> {
        self.first_op..self.end_op
    }

    /// The ops, in execution order.
    pub fn ops(&self) -> impl Iterator<Item = OpInfo<'m>> + 'm {
        let model = self.model;
        self.op_range().filter_map(move |i| model.op(i))
    }

    /// Whether tensor `t` is produced by an op of this partition before op `before`.
    fn produced_before(&self, t: u32, before: usize) -> bool {
        self.ops()
            .take_while(|op| op.index < before)
            .any(|op| op.outputs.contains(&t))
    }

    /// Arena tensors the partition reads but does not produce (model inputs or
    /// outputs of earlier CPU ops), each once, in first-use order.
    pub fn inputs(&self) -> impl Iterator<Item = TensorInfo<'m>> + '_ {
        self.reads()
            .filter(move |&(op, slot, t)| {
                let first_read = !self.reads().any(|(o, s, u)| u == t && (o, s) < (op, slot));
                first_read && !self.produced_before(t, op + 1)
            })
            .filter_map(|(_, _, t)| self.tensor(t))
            .filter(|t| t.storage == Storage::Arena)
    }

    /// Constant tensors (weights, biases, tables) the partition reads, each once.
    pub fn constants(&self) -> impl Iterator<Item = TensorInfo<'m>> + '_ {
        self.reads()
            .filter(move |&(op, slot, t)| {
                !self.reads().any(|(o, s, u)| u == t && (o, s) < (op, slot))
            })
            .filter_map(|(_, _, t)| self.tensor(t))
            .filter(|t| t.storage == Storage::Constant)
    }

    /// Tensors the partition produces that the rest of the model needs (read by a
    /// later op, or a model output), in production order.
    pub fn outputs(&self) -> impl Iterator<Item = TensorInfo<'m>> + '_ {
        let model = self.model;
        self.ops()
            .flat_map(|op| op.outputs.iter().copied())
            .filter(move |&t| {
                let model_output =
                    (0..model.output_count()).any(|i| model.output_tensor(i) == Some(t as usize));
                let read_later = (self.end_op..model.op_count())
                    .filter_map(|i| model.op(i))
                    .any(|op| op.inputs.contains(&t));
                model_output || read_later
            })
            .filter_map(|t| self.tensor(t))
    }

    /// Whether the CPU can always redo this partition after the backend failed,
    /// whatever the backend wrote: true when no byte the partition writes (op
    /// outputs and scratch) overlaps an input's bytes in the arena plan. Where it is
    /// false, the CPU can still redo it as long as the backend did not write into
    /// those bytes ([`super::PartitionIo::inputs_overwritten`]).
    pub fn fallback_safe(&self) -> bool {
        let model = self.model;
        let mut written = self.ops().flat_map(move |op| {
            let scratch = op.scratch.and_then(|s| u32::try_from(s).ok());
            op.outputs.iter().copied().chain(scratch)
        });
        !written.any(|t| {
            model
                .tensor(t as usize)
                .is_some_and(|w| self.overlaps_inputs(&w))
        })
    }

    /// Whether arena tensor `w` shares bytes with one of the partition's inputs.
    pub(crate) fn overlaps_inputs(&self, w: &TensorInfo<'_>) -> bool {
        if w.storage != Storage::Arena {
            return false;
        }
        let b = w.offset..w.offset + w.byte_len;
        self.inputs().any(|i| {
            let a = i.offset..i.offset + i.byte_len;
            a.start < b.end && b.start < a.end
        })
    }

    /// (op index, input slot, tensor) for every tensor read by the partition's ops.
    fn reads(&self) -> impl Iterator<Item = (usize, usize, u32)> + 'm {
        self.ops().flat_map(|op| {
            let index = op.index;
            op.inputs
                .iter()
                .enumerate()
                .filter(|&(_, &t)| t != NONE_INDEX)
                .map(move |(slot, &t)| (index, slot, t))
        })
    }

    fn tensor(&self, t: u32) -> Option<TensorInfo<'m>> {
        self.model.tensor(t as usize)
    }
}

/// The partitions of a model for a backend: maximal runs of consecutive claimed ops.
pub struct Partitions<'m, 'b> {
    model: &'m Model<'m>,
    backend: &'b dyn Backend,
    next_op: usize,
    count: usize,
}

/// Splits `model` into the partitions `backend` claims (at most
/// [`super::MAX_PARTITIONS`] are offloaded by an interpreter; this lists them all).
pub fn partitions<'m, 'b>(model: &'m Model<'m>, backend: &'b dyn Backend) -> Partitions<'m, 'b> {
    Partitions {
        model,
        backend,
        next_op: 0,
        count: 0,
    }
}

impl<'m> Iterator for Partitions<'m, '_> {
    type Item = Partition<'m>;

    fn next(&mut self) -> Option<Partition<'m>> {
        let (model, backend) = (self.model, self.backend);
        let claimed = |i: usize| model.op(i).is_some_and(|op| backend.claims(model, &op));
        let ops = model.op_count();
        // `claims` is asked once per op: the op that ends a run is not claimed, so
        // the next search starts after it.
        let start = (self.next_op..ops).find(|&i| claimed(i))?;
        let end = (start + 1..ops).find(|&i| !claimed(i)).unwrap_or(ops);
        self.next_op = end + 1;
        self.count += 1;
        Some(Partition::new(model, self.count - 1, start..end))
    }
}
