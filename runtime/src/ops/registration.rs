//! What an op module registers, and the resolver that maps opcodes to
//! registrations (TensorFlow Lite Micro's kernel registrations and op resolver).
//!
//! A [`Registration`] is one variant of one op: the operand types it runs
//! (`supports`), its load-time check and its run function. An [`OpResolver`]
//! holds at most one registration per opcode. A firmware builds one with only
//! the registrations its model needs, in a `static`, so the linker drops every
//! other kernel; the host uses [`super::ALL`], which registers every op with
//! every kernel. This module must not know any particular op.

use super::check::{Check, OpCheck};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Opcode};

/// One kernel variant of one op: TFLite Micro's `TFLMRegistration`.
#[derive(Clone, Copy)]
pub struct Registration {
    /// The op it implements.
    pub opcode: Opcode,
    /// What it runs, as printed in errors and resolver listings (`any`, `int8`,
    /// `int8-reference`, `float`).
    pub variant: &'static str,
    /// Whether it has a kernel for this op's operand types. An op it does not
    /// support fails to load with [`crate::Error::OpNotRegistered`].
    pub supports: fn(&OpCheck<'_, '_>) -> bool,
    /// Load-time check of the op's arity, dtypes, shapes and parameters; the
    /// interpreter relies on it (see [`super::check`]).
    pub check: fn(&OpCheck<'_, '_>) -> Check<()>,
    /// Runs the op over memory the check validated.
    pub run: fn(&OpRun<'_>) -> Result<()>,
}

impl core::fmt::Debug for Registration {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}/{}", self.opcode.name(), self.variant)
    }
}

/// `supports` of a registration that runs every operand type of its op.
pub fn any_dtype(_: &OpCheck<'_, '_>) -> bool {
    true
}

/// `supports` of an int8 registration: input 0 is int8.
pub fn int8_input(op: &OpCheck<'_, '_>) -> bool {
    op.input_dtype(0) == Some(DType::I8)
}

/// `supports` of a float registration: input 0 is f32.
pub fn float_input(op: &OpCheck<'_, '_>) -> bool {
    op.input_dtype(0) == Some(DType::F32)
}

/// `supports` of an op whose output type picks the kernel (Binary): int8 output.
pub fn int8_output(op: &OpCheck<'_, '_>) -> bool {
    op.output_dtype() == Some(DType::I8)
}

/// `supports` of an op whose output type picks the kernel: not int8.
pub fn not_int8_output(op: &OpCheck<'_, '_>) -> bool {
    !int8_output(op)
}

/// Maps opcodes to registrations, one per opcode. Build it in a `const` or a
/// `static` with [`OpResolver::new`] and [`OpResolver::with`], so that only the
/// registered kernels are linked:
///
/// ```
/// use tern_runtime::ops::{self, OpResolver};
/// static RESOLVER: OpResolver = OpResolver::new()
///     .with(ops::conv2d::INT8)
///     .with(ops::max_pool2d::INT8)
///     .with(ops::copy::ANY)
///     .with(ops::fully_connected::INT8);
/// assert_eq!(RESOLVER.len(), 4);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct OpResolver {
    table: [Option<Registration>; Opcode::LIMIT],
}

impl OpResolver {
    /// A resolver with no op.
    pub const fn new() -> OpResolver {
        OpResolver {
            table: [None; Opcode::LIMIT],
        }
    }

    /// This resolver with `registration` added (replacing another variant of the
    /// same op, if any).
    pub const fn with(mut self, registration: Registration) -> OpResolver {
        self.table[registration.opcode as usize] = Some(registration);
        self
    }

    /// The registration of `opcode`, if any.
    pub fn get(&self, opcode: Opcode) -> Option<&Registration> {
        self.table.get(opcode as usize)?.as_ref()
    }

    /// Every registration, in opcode order.
    pub fn registrations(&self) -> impl Iterator<Item = &Registration> {
        self.table.iter().flatten()
    }

    /// Number of registered ops.
    pub fn len(&self) -> usize {
        self.registrations().count()
    }

    /// True when no op is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for OpResolver {
    fn default() -> OpResolver {
        OpResolver::new()
    }
}
