//! Offload backends from C: a [`TernBackend`] struct of function pointers with a user
//! context, wrapped as a runtime [`Backend`], plus the accessors a C backend uses on
//! the opaque op, partition and execution handles it is given, and the loopback
//! reference backend exposed through the same struct.
//!
//! This module owns the C side of the hooks only; partitioning, the failure policy
//! and the loopback backend itself are the runtime's (`tern_runtime::backend`).

use core::ffi::{c_char, c_void};

use tern_runtime::backend::loopback::Loopback;
use tern_runtime::backend::{Backend, BackendError, Handle, Partition, PartitionIo};
use tern_runtime::{Model, OnFailure, OpInfo, Storage, TensorInfo};

use crate::{Outcome, TernStatus, TernTensorInfo, fail, guard, put, tensor_info, usable};

/// An offload backend implemented in C: fill it in, keep it alive and unchanged until
/// the interpreter using it is deinitialized, and pass it to
/// `tern_interpreter_init_with_backend`.
///
/// Every callback gets `context` first. `is_available`, `claims` and `prepare` run
/// during `tern_interpreter_init_with_backend`; `execute` during
/// `tern_interpreter_invoke`; `release` during deinit. A NULL `claims` claims
/// nothing; a NULL `is_available` means available; NULL `prepare`/`execute` fail.
/// Callbacks return 0 for success, anything else is the backend's error code.
#[repr(C)]
pub struct TernBackend {
    /// The backend's own state, passed to every callback.
    pub context: *mut c_void,
    /// A NUL-terminated name for messages (may be NULL).
    pub name: *const c_char,
    /// Whether the accelerator can be used now.
    pub is_available: Option<unsafe extern "C" fn(context: *mut c_void) -> bool>,
    /// Whether the backend runs `op` (read it with `tern_op_describe`).
    pub claims: Option<unsafe extern "C" fn(context: *mut c_void, op: *const TernOp) -> bool>,
    /// Takes a partition once (read it with `tern_partition_describe` and
    /// `tern_partition_tensor`; constants point into the model, valid until the
    /// model's deinit) and stores a handle of the backend's choosing in `*handle`.
    pub prepare: Option<
        unsafe extern "C" fn(
            context: *mut c_void,
            partition: *const TernPartition,
            handle: *mut u32,
        ) -> i32,
    >,
    /// Runs a prepared partition: reads its inputs and writes all its outputs
    /// through `tern_execution_tensor` (pointers into the arena, valid during the
    /// call; read every input before writing an output, they may share bytes).
    pub execute: Option<
        unsafe extern "C" fn(
            context: *mut c_void,
            handle: u32,
            execution: *mut TernExecution,
        ) -> i32,
    >,
    /// Frees what `prepare` took for `handle`.
    pub release: Option<unsafe extern "C" fn(context: *mut c_void, handle: u32)>,
}

/// What an interpreter does when its backend fails.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TernOnFailure {
    /// Run the partition on the CPU instead (where the CPU can redo it; otherwise
    /// `TERN_STATUS_BACKEND_FAILED`).
    CpuFallback = 0,
    /// Return `TERN_STATUS_BACKEND_FAILED`.
    Error = 1,
}

/// An op offered to a backend's `claims` (opaque; read it with `tern_op_describe`).
pub struct TernOp {
    model: *const Model<'static>,
    op: OpInfo<'static>,
}

/// A partition offered to a backend's `prepare` (opaque; read it with
/// `tern_partition_describe` and `tern_partition_tensor`).
pub struct TernPartition {
    partition: Partition<'static>,
}

/// A partition being executed (opaque; reach its tensors with
/// `tern_execution_tensor`).
pub struct TernExecution {
    io: *mut PartitionIo<'static>,
}

/// Description of an op (`tern_op_describe`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TernOpInfo {
    /// Position in the model's op list (execution order).
    pub index: usize,
    /// The `.tern` opcode (1 = Conv2d, 3 = FullyConnected, 6 = float Activation, ...;
    /// see docs/FORMAT.md).
    pub opcode: u32,
    /// The opcode's name, NUL-terminated, static.
    pub opcode_name: *const c_char,
    /// The op's name in the model: `name_len` bytes, not NUL-terminated.
    pub name: *const c_char,
    /// Length of `name`.
    pub name_len: usize,
    /// Number of input tensors (weights and biases included).
    pub input_count: usize,
    /// Number of output tensors.
    pub output_count: usize,
}

/// Description of a partition (`tern_partition_describe`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TernPartitionInfo {
    /// Partition number for this backend (0, 1, ...).
    pub index: usize,
    /// First op.
    pub first_op: usize,
    /// One past the last op.
    pub end_op: usize,
    /// Tensors it reads from the rest of the model.
    pub input_count: usize,
    /// Tensors it produces for the rest of the model.
    pub output_count: usize,
    /// Constant tensors (weights, biases, tables) it reads.
    pub constant_count: usize,
    /// Prepared on the backend (`tern_interpreter_partition`; false: the CPU runs it).
    pub on_backend: bool,
    /// Whether the CPU can redo it whatever the backend wrote before failing; where
    /// false (its outputs reuse its inputs' arena bytes), only while the backend has
    /// not taken an output (`tern_execution_tensor` with `TERN_TENSOR_ROLE_OUTPUT`).
    pub fallback_safe: bool,
}

/// Which tensors of a partition `tern_partition_tensor` / `tern_execution_tensor`
/// enumerate.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TernTensorRole {
    /// Read from the rest of the model.
    Input = 0,
    /// Produced for the rest of the model.
    Output = 1,
    /// Weights, biases, tables (read-only, in the model buffer).
    Constant = 2,
}

/// A tensor of a partition with its bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TernBackendTensor {
    /// The model's tensor index (stable: the id to use on the accelerator).
    pub tensor: usize,
    /// Name, type, shape and quantization.
    pub info: TernTensorInfo,
    /// The bytes: in the model for constants; in the arena for inputs and outputs
    /// during `execute` (NULL during `prepare`). Write only outputs.
    pub data: *mut c_void,
}

/// Storage for the loopback reference backend (`tern_backend_loopback_init`).
#[repr(C, align(16))]
pub struct TernLoopback {
    opaque: [u64; 96],
}

const _: () = assert!(size_of::<Loopback>() <= size_of::<TernLoopback>());
const _: () = assert!(align_of::<Loopback>() <= align_of::<TernLoopback>());

/// A [`TernBackend`] seen as a runtime [`Backend`] (same layout).
#[repr(transparent)]
pub(crate) struct CBackend(TernBackend);

impl CBackend {
    /// The backend behind `backend`, borrowed until the interpreter's deinit.
    ///
    /// # Safety
    /// `backend` is non-null, aligned, and stays valid and unused by others until
    /// the borrow ends (the C caller's contract).
    pub(crate) unsafe fn from_raw<'x>(backend: *mut TernBackend) -> &'x mut CBackend {
        // SAFETY: `CBackend` is `repr(transparent)` over `TernBackend`; validity and
        // exclusivity are the caller's contract.
        unsafe { &mut *backend.cast::<CBackend>() }
    }
}

fn code(status: i32) -> Result<(), BackendError> {
    if status == 0 {
        Ok(())
    } else {
        Err(BackendError::Code { code: status })
    }
}

impl Backend for CBackend {
    fn name(&self) -> &str {
        if self.0.name.is_null() {
            return "c-backend";
        }
        // SAFETY: a non-null `name` is a NUL-terminated string that lives as long as
        // the struct (the caller's contract).
        let name = unsafe { core::ffi::CStr::from_ptr(self.0.name) };
        name.to_str().unwrap_or("c-backend")
    }

    fn is_available(&mut self) -> bool {
        match self.0.is_available {
            // SAFETY: a C callback given by the caller, called with its own context.
            Some(f) => unsafe { f(self.0.context) },
            None => true,
        }
    }

    fn claims(&self, model: &Model<'_>, op: &OpInfo<'_>) -> bool {
        let Some(claims) = self.0.claims else {
            return false;
        };
        let op = TernOp {
            model: (model as *const Model<'_>).cast(),
            // SAFETY: only the lifetime changes; the op lives for this call, and
            // `tern_op_describe` is only valid during `claims` (documented).
            op: unsafe { core::mem::transmute::<OpInfo<'_>, OpInfo<'static>>(*op) },
        };
        // SAFETY: a C callback given by the caller, with its context and a pointer
        // to an op that outlives the call.
        unsafe { claims(self.0.context, &op) }
    }

    fn prepare(&mut self, partition: &Partition<'_>) -> Result<Handle, BackendError> {
        let prepare = self.0.prepare.ok_or(BackendError::Unsupported {
            op: partition.first_op,
            why: "the C backend has no prepare callback",
        })?;
        let p = TernPartition {
            // SAFETY: only the lifetime changes; `TernPartition` is valid during the
            // callback only (documented).
            partition: unsafe {
                core::mem::transmute::<Partition<'_>, Partition<'static>>(*partition)
            },
        };
        let mut handle = 0u32;
        // SAFETY: a C callback given by the caller; both pointers outlive the call.
        code(unsafe { prepare(self.0.context, &p, &mut handle) })?;
        Ok(handle)
    }

    fn execute(&mut self, handle: Handle, io: &mut PartitionIo<'_>) -> Result<(), BackendError> {
        let execute = self.0.execute.ok_or(BackendError::Unsupported {
            op: io.partition().first_op,
            why: "the C backend has no execute callback",
        })?;
        let mut execution = TernExecution {
            io: (io as *mut PartitionIo<'_>).cast(),
        };
        // SAFETY: a C callback given by the caller; `execution` points to `io`, which
        // outlives the call, and is only valid during it (documented).
        code(unsafe { execute(self.0.context, handle, &mut execution) })
    }

    fn release(&mut self, handle: Handle) {
        if let Some(release) = self.0.release {
            // SAFETY: a C callback given by the caller, with its context.
            unsafe { release(self.0.context, handle) }
        }
    }
}

/// The `on_failure` argument as the runtime's policy.
pub(crate) fn on_failure(value: i32) -> Outcome<OnFailure> {
    match value {
        0 => Ok(OnFailure::CpuFallback),
        1 => Ok(OnFailure::Error),
        other => Err(fail(
            TernStatus::InvalidArgument,
            format_args!(
                "on_failure = {other}: expected TERN_ON_FAILURE_CPU_FALLBACK (0) or TERN_ON_FAILURE_ERROR (1)"
            ),
        )),
    }
}

/// Describes the op given to a backend's `claims` (valid during that call only).
///
/// # Safety
/// `op` is NULL or the pointer `claims` received; `info` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_op_describe(op: *const TernOp, info: *mut TernOpInfo) -> TernStatus {
    guard(|| {
        usable(op, "op")?;
        // SAFETY: non-null and aligned; a live `TernOp` during `claims` (caller).
        let op = unsafe { &(*op).op };
        let described = TernOpInfo {
            index: op.index,
            opcode: op.opcode as u32,
            opcode_name: opcode_name(op),
            name: op.name.as_ptr().cast(),
            name_len: op.name.len(),
            input_count: op.inputs.len(),
            output_count: op.outputs.len(),
        };
        // SAFETY: NULL or writable (caller); checked inside.
        unsafe { put(info, "info", described) }
    })
}

/// A static NUL-terminated copy of the opcode's name.
fn opcode_name(op: &OpInfo<'_>) -> *const c_char {
    use tern_runtime::Opcode;
    let name: &'static core::ffi::CStr = match op.opcode {
        Opcode::Conv2d => c"Conv2d",
        Opcode::FullyConnected => c"FullyConnected",
        Opcode::Activation => c"Activation",
        Opcode::MaxPool2d => c"MaxPool2d",
        Opcode::AvgPool2d => c"AvgPool2d",
        Opcode::Softmax => c"Softmax",
        Opcode::Copy => c"Copy",
        _ => c"other",
    };
    name.as_ptr()
}

/// Describes the partition given to a backend's `prepare` (valid during that call).
///
/// # Safety
/// `partition` is NULL or the pointer `prepare` received; `info` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_partition_describe(
    partition: *const TernPartition,
    info: *mut TernPartitionInfo,
) -> TernStatus {
    guard(|| {
        usable(partition, "partition")?;
        // SAFETY: non-null and aligned; a live `TernPartition` during `prepare`.
        let p = unsafe { &(*partition).partition };
        // SAFETY: NULL or writable (caller); checked inside.
        unsafe { put(info, "info", partition_info(p)) }
    })
}

fn partition_info(p: &Partition<'_>) -> TernPartitionInfo {
    TernPartitionInfo {
        index: p.index,
        first_op: p.first_op,
        end_op: p.end_op,
        input_count: p.inputs().count(),
        output_count: p.outputs().count(),
        constant_count: p.constants().count(),
        on_backend: false,
        fallback_safe: p.fallback_safe(),
    }
}

/// Tensor `index` of `role` in the partition given to `prepare`: constants carry
/// their bytes (in the model); inputs and outputs have `data` NULL.
/// `TERN_STATUS_INDEX_OUT_OF_RANGE` past the count.
///
/// # Safety
/// `partition` is NULL or the pointer `prepare` received; `tensor` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_partition_tensor(
    partition: *const TernPartition,
    role: i32,
    index: usize,
    tensor: *mut TernBackendTensor,
) -> TernStatus {
    guard(|| {
        usable(partition, "partition")?;
        // SAFETY: non-null and aligned; a live `TernPartition` during `prepare`.
        let p = unsafe { &(*partition).partition };
        let t = nth_tensor(p, role, index)?;
        let data = match t.storage {
            Storage::Constant => p
                .model()
                .constant_bytes(&t)
                .map_or(core::ptr::null_mut(), |b| b.as_ptr().cast_mut().cast()),
            Storage::Arena => core::ptr::null_mut(),
        };
        let described = TernBackendTensor {
            tensor: t.index,
            info: tensor_info(&t),
            data,
        };
        // SAFETY: NULL or writable (caller); checked inside.
        unsafe { put(tensor, "tensor", described) }
    })
}

/// Tensor `index` of `role` (input or output) of the partition being executed, with
/// `data` pointing at its bytes in the arena (valid during `execute` only).
///
/// # Safety
/// `execution` is NULL or the pointer `execute` received; `tensor` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_execution_tensor(
    execution: *mut TernExecution,
    role: i32,
    index: usize,
    tensor: *mut TernBackendTensor,
) -> TernStatus {
    guard(|| {
        usable(execution, "execution")?;
        // SAFETY: non-null and aligned; a live `TernExecution` during `execute`,
        // whose `io` points to the interpreter's `PartitionIo` for this call.
        let io = unsafe { &mut *(*execution).io };
        let partition = *io.partition();
        let t = nth_tensor(&partition, role, index)?;
        let data: *mut c_void = if role == TernTensorRole::Output as i32 {
            let bytes = io.output(t.index).map_err(backend_status)?;
            bytes.as_mut_ptr().cast()
        } else {
            let bytes = io.input(t.index).map_err(backend_status)?;
            bytes.as_ptr().cast_mut().cast()
        };
        let described = TernBackendTensor {
            tensor: t.index,
            info: tensor_info(&t),
            data,
        };
        // SAFETY: NULL or writable (caller); checked inside.
        unsafe { put(tensor, "tensor", described) }
    })
}

fn backend_status(error: BackendError) -> TernStatus {
    fail(TernStatus::InvalidArgument, format_args!("{error}"))
}

/// The `index`-th tensor of `role` in `p`.
fn nth_tensor<'m>(p: &Partition<'m>, role: i32, index: usize) -> Outcome<TensorInfo<'m>> {
    let found = match role {
        0 => p.inputs().nth(index),
        1 => p.outputs().nth(index),
        2 => p.constants().nth(index),
        other => {
            return Err(fail(
                TernStatus::InvalidArgument,
                format_args!(
                    "role = {other}: expected TERN_TENSOR_ROLE_INPUT, _OUTPUT or _CONSTANT"
                ),
            ));
        }
    };
    found.ok_or_else(|| {
        fail(
            TernStatus::IndexOutOfRange,
            format_args!("partition {} has no tensor {index} of role {role}", p.index),
        )
    })
}

/// Fills `backend` with the loopback reference backend, whose state lives in
/// `storage`: it claims Conv2d, FullyConnected (ONNX Gemm) and Relu and runs them with
/// the portable reference kernels, so outputs equal the CPU-only run bit for bit.
/// Keep `storage` alive and in place while `backend` is in use.
///
/// # Safety
/// `storage` is NULL or writable `TernLoopback` storage; `backend` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tern_backend_loopback_init(
    storage: *mut TernLoopback,
    backend: *mut TernBackend,
) -> TernStatus {
    guard(|| {
        usable(storage, "storage")?;
        usable(backend, "backend")?;
        let state = storage.cast::<Loopback>();
        // SAFETY: non-null, aligned and large enough (const asserts); caller storage
        // whose old content is not dropped.
        unsafe { state.write(Loopback::new()) };
        let vtable = TernBackend {
            context: state.cast(),
            name: c"loopback".as_ptr(),
            is_available: Some(loopback_is_available),
            claims: Some(loopback_claims),
            prepare: Some(loopback_prepare),
            execute: Some(loopback_execute),
            release: Some(loopback_release),
        };
        // SAFETY: NULL or writable (caller); checked inside.
        unsafe { put(backend, "backend", vtable) }
    })
}

/// The loopback state behind a context pointer.
///
/// # Safety
/// `context` is the `storage` given to `tern_backend_loopback_init`.
unsafe fn loopback<'x>(context: *mut c_void) -> &'x mut Loopback {
    // SAFETY: the caller's contract; the callbacks never nest.
    unsafe { &mut *context.cast::<Loopback>() }
}

unsafe extern "C" fn loopback_is_available(context: *mut c_void) -> bool {
    // SAFETY: our own vtable's context.
    unsafe { loopback(context) }.is_available()
}

unsafe extern "C" fn loopback_claims(context: *mut c_void, op: *const TernOp) -> bool {
    if op.is_null() {
        return false;
    }
    // SAFETY: our own vtable's context; `op` is the live op of this `claims` call.
    let (backend, op) = unsafe { (loopback(context), &*op) };
    // SAFETY: `op.model` points to the model being partitioned, alive for the call.
    backend.claims(unsafe { &*op.model }, &op.op)
}

unsafe extern "C" fn loopback_prepare(
    context: *mut c_void,
    partition: *const TernPartition,
    handle: *mut u32,
) -> i32 {
    if partition.is_null() || handle.is_null() {
        return -1;
    }
    // SAFETY: our own vtable's context; `partition` is live during `prepare`.
    let (backend, p) = unsafe { (loopback(context), &(*partition).partition) };
    match backend.prepare(p) {
        Ok(h) => {
            // SAFETY: non-null (checked), writable (the runtime's own variable).
            unsafe { handle.write(h) };
            0
        }
        Err(_) => -2,
    }
}

unsafe extern "C" fn loopback_execute(
    context: *mut c_void,
    handle: u32,
    execution: *mut TernExecution,
) -> i32 {
    if execution.is_null() {
        return -1;
    }
    // SAFETY: our own vtable's context; `execution` is live during `execute` and its
    // `io` is the interpreter's `PartitionIo` for this call.
    let (backend, io) = unsafe { (loopback(context), &mut *(*execution).io) };
    match backend.execute(handle, io) {
        Ok(()) => 0,
        Err(_) => -3,
    }
}

unsafe extern "C" fn loopback_release(context: *mut c_void, handle: u32) {
    // SAFETY: our own vtable's context.
    unsafe { loopback(context) }.release(handle)
}
