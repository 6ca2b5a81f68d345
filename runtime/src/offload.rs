//! The interpreter's side of the offload hooks: the fixed-size table of prepared
//! partitions, running one through its backend, and the failure policy.
//!
//! Running and releasing partitions are reached through the function pointers
//! of [`HOOKS`], which only [`Offload::prepare`] stores: a firmware that never
//! makes an interpreter with a backend links none of that code.

use crate::backend::{
    Backend, BackendError, Handle, MAX_PARTITIONS, OnFailure, Partition, PartitionIo, partitions,
};
use crate::error::{Error, ShortName};
use crate::model::Model;

/// One claimed run of ops and what became of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionStatus {
    /// Partition index.
    pub index: usize,
    /// First op.
    pub first_op: usize,
    /// One past the last op.
    pub end_op: usize,
    /// Prepared on the backend (false: the CPU runs it, after a failed prepare,
    /// an unavailable backend, or more than [`MAX_PARTITIONS`] partitions).
    pub on_backend: bool,
    /// The CPU can redo it whatever the backend wrote before failing (see
    /// [`Partition::fallback_safe`]); where false, only if the backend failed before
    /// writing over the partition's inputs.
    pub fallback_safe: bool,
}

/// Counters of offloaded work since the interpreter was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OffloadStats {
    /// Partition executions the backend completed.
    pub backend_runs: u64,
    /// Partition executions the backend failed and the CPU redid.
    pub cpu_fallbacks: u64,
}

#[derive(Clone, Copy)]
struct Slot {
    status: PartitionStatus,
    handle: Handle,
}

/// The code an [`Offload`] runs after it is prepared.
struct Hooks {
    execute: for<'a, 'm> fn(
        &mut Offload<'a>,
        &'m Model<'m>,
        &mut [u8],
        PartitionStatus,
    ) -> Result<bool, Error>,
    release_all: for<'a> fn(&mut Offload<'a>),
}

/// The one set of hooks; referenced only from [`Offload::prepare`].
static HOOKS: Hooks = Hooks {
    execute: |offload, model, arena, status| offload.execute_on_backend(model, arena, status),
    release_all: |offload| offload.release_on_backend(),
};

/// A backend with the partitions prepared on it.
pub(crate) struct Offload<'a> {
    backend: &'a mut dyn Backend,
    on_failure: OnFailure,
    slots: [Option<Slot>; MAX_PARTITIONS],
    hooks: &'static Hooks,
    pub(crate) stats: OffloadStats,
}

impl<'a> Offload<'a> {
    /// Partitions `model` for `backend` and prepares each partition on it.
    pub(crate) fn prepare<'m>(
        model: &'m Model<'m>,
        backend: &'a mut dyn Backend,
        on_failure: OnFailure,
    ) -> Result<Offload<'a>, Error> {
        let mut offload = Offload {
            backend,
            on_failure,
            slots: [None; MAX_PARTITIONS],
            hooks: &HOOKS,
            stats: OffloadStats::default(),
        };
        let available = offload.backend.is_available();
        if !available && on_failure == OnFailure::Error {
            let p = partitions(model, &*offload.backend).next();
            let ops = p.map_or((0, 0), |p| (p.first_op, p.end_op));
            return Err(offload.error(0, ops, "unavailable", BackendError::Unavailable));
        }
        let found = partitions(model, &*offload.backend).take(MAX_PARTITIONS);
        let mut statuses = [None; MAX_PARTITIONS];
        for (slot, p) in statuses.iter_mut().zip(found) {
            *slot = Some((p.index, p.first_op, p.end_op, p.fallback_safe()));
        }
        for (slot, status) in offload.slots.iter_mut().zip(statuses) {
            let Some((index, first_op, end_op, fallback_safe)) = status else {
                break;
            };
            *slot = Some(Slot {
                status: PartitionStatus {
                    index,
                    first_op,
                    end_op,
                    on_backend: false,
                    fallback_safe,
                },
                handle: 0,
            });
        }
        if !available {
            return Ok(offload);
        }
        for i in 0..MAX_PARTITIONS {
            let Some(mut slot) = offload.slots[i] else {
                break;
            };
            let s = slot.status;
            let partition = Partition::new(model, s.index, s.first_op..s.end_op);
            match offload.backend.prepare(&partition) {
                Ok(handle) => {
                    slot.handle = handle;
                    slot.status.on_backend = true;
                    offload.slots[i] = Some(slot);
                }
                Err(e) if on_failure == OnFailure::Error => {
                    let err = offload.error(s.index, (s.first_op, s.end_op), "prepare failed", e);
                    offload.release_all();
                    return Err(err);
                }
                Err(_) => {}
            }
        }
        Ok(offload)
    }

    /// The prepared partition starting at op `op`, if any.
    pub(crate) fn starting_at(&self, op: usize) -> Option<PartitionStatus> {
        self.slots
            .iter()
            .flatten()
            .map(|s| s.status)
            .find(|s| s.first_op == op && s.on_backend)
    }

    /// Every partition found, prepared or not.
    pub(crate) fn statuses(&self) -> impl Iterator<Item = PartitionStatus> + '_ {
        self.slots.iter().flatten().map(|s| s.status)
    }

    /// Runs partition `status` on the backend over `arena`. `Ok(true)`: done;
    /// `Ok(false)`: the CPU must run its ops; `Err`: fail the invoke.
    pub(crate) fn execute<'m>(
        &mut self,
        model: &'m Model<'m>,
        arena: &mut [u8],
        status: PartitionStatus,
    ) -> Result<bool, Error> {
        (self.hooks.execute)(self, model, arena, status)
    }

    /// [`Offload::execute`]'s body (through [`HOOKS`]).
    fn execute_on_backend<'m>(
        &mut self,
        model: &'m Model<'m>,
        arena: &mut [u8],
        status: PartitionStatus,
    ) -> Result<bool, Error> {
        let Some(slot) = self.slots.iter().flatten().find(|s| s.status == status) else {
            return Ok(false);
        };
        let handle = slot.handle;
        let partition = Partition::new(model, status.index, status.first_op..status.end_op);
        let mut io = PartitionIo::new(partition, arena);
        match self.backend.execute(handle, &mut io) {
            Ok(()) => {
                self.stats.backend_runs += 1;
                Ok(true)
            }
            Err(e) => {
                let ops = (status.first_op, status.end_op);
                if self.on_failure == OnFailure::Error {
                    return Err(self.error(status.index, ops, "execute failed", e));
                }
                if io.inputs_overwritten() {
                    let what = "execute failed after writing over the partition's inputs \
                                (its outputs reuse their arena bytes): the CPU cannot redo it";
                    return Err(self.error(status.index, ops, what, e));
                }
                self.stats.cpu_fallbacks += 1;
                Ok(false)
            }
        }
    }

    fn error(
        &self,
        partition: usize,
        (first_op, end_op): (usize, usize),
        what: &'static str,
        error: BackendError,
    ) -> Error {
        Error::Backend {
            backend: ShortName::new(self.backend.name()),
            partition,
            first_op,
            end_op,
            what,
            error,
        }
    }

    /// Releases every partition prepared on the backend.
    fn release_all(&mut self) {
        (self.hooks.release_all)(self)
    }

    /// [`Offload::release_all`]'s body (through [`HOOKS`]).
    fn release_on_backend(&mut self) {
        for slot in self.slots.iter_mut() {
            if let Some(s) = slot.take()
                && s.status.on_backend
            {
                self.backend.release(s.handle);
            }
        }
    }
}

impl Drop for Offload<'_> {
    fn drop(&mut self) {
        self.release_all();
    }
}
