//! The C API's status codes and the one mapping from the runtime's [`Error`] to them.
//!
//! This module owns [`TernStatus`], its static descriptions and [`status_of`]; the
//! message of the last error is [`crate::last_error`]'s.

use tern_runtime::Error;

/// The result of every fallible `tern_` function. `TERN_STATUS_OK` (0) is success;
/// on any other value `tern_last_error_message()` says what failed and where.
///
/// The values are stable: new codes are only ever added at the end.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TernStatus {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullPointer = 1,
    /// An argument has an impossible value (a path that is not valid UTF-8, ...).
    InvalidArgument = 2,
    /// An input or output index is not below the model's input or output count.
    IndexOutOfRange = 3,
    /// A caller buffer does not hold exactly the tensor's bytes (or elements).
    BufferSize = 4,
    /// A buffer or handle is not aligned as required (model buffers: 16 bytes).
    MisalignedBuffer = 5,
    /// The arena is smaller than `tern_model_arena_size()`.
    ArenaTooSmall = 6,
    /// The model buffer is not a valid `.tern` file: truncated, wrong magic, header
    /// checksum mismatch, or inconsistent header, tensor or op records.
    BadModel = 7,
    /// The file needs a newer runtime: another major format version, or an opcode
    /// this runtime does not know (a newer minor version).
    UnsupportedVersion = 8,
    /// The data section does not match its CRC-32 (from `tern_model_verify_data`).
    DataChecksum = 9,
    /// A typed access asked for the wrong element type.
    WrongDtype = 10,
    /// Opening or mapping a model file failed (hosted builds only).
    Io = 11,
    /// Running the model failed (for example a token id outside an embedding table).
    InvokeFailed = 12,
    /// A Rust panic was caught at the boundary (a bug in Tern: please report it).
    Panic = 13,
    /// The `TernModel` or `TernInterpreter` is not initialized (never initialized,
    /// deinitialized, copied to another address, or its model was deinitialized).
    NotInitialized = 14,
    /// An offload backend failed and the CPU did not take over: the interpreter was
    /// made with `TERN_ON_FAILURE_ERROR`, or the partition's outputs reuse its inputs'
    /// arena bytes so the CPU cannot redo it.
    BackendFailed = 15,
    /// The op resolver the model was loaded with has no kernel for one of its
    /// ops (`tern_model_init_with_resolver`): add its `tern_op_*` registration.
    OpNotRegistered = 16,
}

impl TernStatus {
    /// Every status, in code order.
    pub(crate) const ALL: [TernStatus; 17] = [
        TernStatus::Ok,
        TernStatus::NullPointer,
        TernStatus::InvalidArgument,
        TernStatus::IndexOutOfRange,
        TernStatus::BufferSize,
        TernStatus::MisalignedBuffer,
        TernStatus::ArenaTooSmall,
        TernStatus::BadModel,
        TernStatus::UnsupportedVersion,
        TernStatus::DataChecksum,
        TernStatus::WrongDtype,
        TernStatus::Io,
        TernStatus::InvokeFailed,
        TernStatus::Panic,
        TernStatus::NotInitialized,
        TernStatus::BackendFailed,
        TernStatus::OpNotRegistered,
    ];

    /// The status with code `code`, if any.
    pub(crate) fn from_code(code: i32) -> Option<TernStatus> {
        usize::try_from(code)
            .ok()
            .and_then(|i| TernStatus::ALL.get(i).copied())
    }

    /// A static, NUL-terminated description of the status.
    pub(crate) const fn description(self) -> &'static core::ffi::CStr {
        match self {
            TernStatus::Ok => c"ok",
            TernStatus::NullPointer => c"null pointer argument",
            TernStatus::InvalidArgument => c"invalid argument",
            TernStatus::IndexOutOfRange => c"input or output index out of range",
            TernStatus::BufferSize => c"buffer size does not match the tensor",
            TernStatus::MisalignedBuffer => c"misaligned buffer",
            TernStatus::ArenaTooSmall => c"arena too small",
            TernStatus::BadModel => c"invalid or corrupted model",
            TernStatus::UnsupportedVersion => c"model needs a newer runtime",
            TernStatus::DataChecksum => c"model data checksum mismatch",
            TernStatus::WrongDtype => c"wrong tensor element type",
            TernStatus::Io => c"cannot open or map the model file",
            TernStatus::InvokeFailed => c"model run failed",
            TernStatus::Panic => c"internal error (panic caught)",
            TernStatus::NotInitialized => c"not initialized",
            TernStatus::BackendFailed => c"offload backend failed",
            TernStatus::OpNotRegistered => c"op not registered in the op resolver",
        }
    }
}

/// The status for a runtime error: the one place where [`Error`] variants map to
/// C status codes.
pub fn status_of(error: &Error) -> TernStatus {
    match error {
        Error::Truncated { .. }
        | Error::BadMagic { .. }
        | Error::HeaderChecksum { .. }
        | Error::BadHeader { .. }
        | Error::BadTensor { .. }
        | Error::BadOp { .. } => TernStatus::BadModel,
        Error::UnsupportedVersion { .. } | Error::UnknownOpcode { .. } => {
            TernStatus::UnsupportedVersion
        }
        Error::DataChecksum { .. } => TernStatus::DataChecksum,
        Error::MisalignedBuffer { .. } => TernStatus::MisalignedBuffer,
        Error::ArenaTooSmall { .. } => TernStatus::ArenaTooSmall,
        Error::NoSuchTensor { .. } => TernStatus::IndexOutOfRange,
        Error::InputShape { .. } | Error::BufferLength { .. } => TernStatus::BufferSize,
        Error::WrongDType { .. } => TernStatus::WrongDtype,
        #[cfg(feature = "std")]
        Error::Io { .. } => TernStatus::Io,
        Error::IndexOutOfRange { .. } => TernStatus::InvokeFailed,
        Error::Backend { .. } => TernStatus::BackendFailed,
        Error::OpNotRegistered { .. } => TernStatus::OpNotRegistered,
        // `Error` is non-exhaustive: a variant added later (a backend's error, ...)
        // is a failure to run until it gets a code of its own here.
        _ => TernStatus::InvokeFailed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_runtime::DType;
    use tern_runtime::error::ShortName;

    #[test]
    fn codes_are_dense_and_round_trip() {
        for (i, s) in TernStatus::ALL.iter().enumerate() {
            assert_eq!(*s as i32, i as i32);
            assert_eq!(TernStatus::from_code(i as i32), Some(*s));
            assert!(!s.description().is_empty());
        }
        assert_eq!(TernStatus::from_code(-1), None);
        assert_eq!(TernStatus::from_code(TernStatus::ALL.len() as i32), None);
    }

    #[test]
    fn every_runtime_error_maps_to_its_status() {
        let name = ShortName::new("x");
        let cases: Vec<(Error, TernStatus)> = vec![
            (
                Error::Truncated {
                    what: "file",
                    start: 0,
                    end: 64,
                    len: 10,
                },
                TernStatus::BadModel,
            ),
            (
                Error::BadMagic {
                    found: [0; 8],
                    expected: [1; 8],
                },
                TernStatus::BadModel,
            ),
            (
                Error::HeaderChecksum {
                    end: 64,
                    stored: 1,
                    computed: 2,
                },
                TernStatus::BadModel,
            ),
            (
                Error::BadHeader {
                    field: "flags",
                    value: 1,
                    why: "unknown",
                },
                TernStatus::BadModel,
            ),
            (
                Error::BadTensor {
                    tensor: 0,
                    name,
                    why: "bad",
                },
                TernStatus::BadModel,
            ),
            (
                Error::BadOp {
                    op: 0,
                    name,
                    opcode: "Conv",
                    why: "bad",
                },
                TernStatus::BadModel,
            ),
            (
                Error::UnsupportedVersion {
                    major: 2,
                    minor: 0,
                    supported: 1,
                },
                TernStatus::UnsupportedVersion,
            ),
            (
                Error::UnknownOpcode {
                    op: 0,
                    code: 999,
                    runtime: "0.1.0",
                },
                TernStatus::UnsupportedVersion,
            ),
            (
                Error::DataChecksum {
                    stored: 1,
                    computed: 2,
                },
                TernStatus::DataChecksum,
            ),
            (
                Error::MisalignedBuffer {
                    address: 1,
                    align: 16,
                },
                TernStatus::MisalignedBuffer,
            ),
            (
                Error::ArenaTooSmall { needed: 2, got: 1 },
                TernStatus::ArenaTooSmall,
            ),
            (
                Error::NoSuchTensor {
                    kind: "input",
                    index: 3,
                    count: 1,
                },
                TernStatus::IndexOutOfRange,
            ),
            (
                Error::InputShape {
                    index: 0,
                    name,
                    expected: 4,
                    shape: [4, 0, 0, 0, 0, 0],
                    got: 3,
                },
                TernStatus::BufferSize,
            ),
            (
                Error::BufferLength {
                    name,
                    expected: 4,
                    got: 3,
                },
                TernStatus::BufferSize,
            ),
            (
                Error::WrongDType {
                    name,
                    actual: DType::I8,
                    wanted: DType::F32,
                },
                TernStatus::WrongDtype,
            ),
            (
                Error::IndexOutOfRange {
                    op: 0,
                    name,
                    opcode: "Gather",
                    what: "index",
                    value: 12,
                    position: 2,
                    min: -10,
                    limit: 10,
                },
                TernStatus::InvokeFailed,
            ),
            (
                Error::OpNotRegistered {
                    op: 0,
                    name,
                    opcode: "Conv2d",
                    registered: "int8",
                },
                TernStatus::OpNotRegistered,
            ),
            (
                Error::Io {
                    path: "missing.tern".into(),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                },
                TernStatus::Io,
            ),
        ];
        for (error, status) in &cases {
            assert_eq!(status_of(error), *status, "{error}");
        }
    }
}
