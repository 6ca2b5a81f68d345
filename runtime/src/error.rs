//! The runtime's one error type. Every variant names what failed and where.

use crate::format::DType;

/// Anything that can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The buffer ends before a structure it must hold.
    #[error("model is truncated: {what} needs bytes {start}..{end}, the buffer has {len}")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// First byte needed.
        start: u64,
        /// One past the last byte needed.
        end: u64,
        /// Bytes available.
        len: u64,
    },
    /// The first eight bytes are not the `.tern` magic.
    #[error("not a .tern file: magic is {}, expected {}", List::hex(.found), List::hex(.expected))]
    BadMagic {
        /// Bytes found.
        found: [u8; 8],
        /// Bytes expected.
        expected: [u8; 8],
    },
    /// The file's major version differs from the one this runtime reads.
    #[error(
        "unsupported .tern format version {major}.{minor}: this runtime reads major version {supported}"
    )]
    UnsupportedVersion {
        /// Major version in the file.
        major: u16,
        /// Minor version in the file.
        minor: u16,
        /// Major version this runtime reads.
        supported: u16,
    },
    /// The header and tables do not match their checksum (corruption).
    #[error(
        "header checksum mismatch (bytes 16..{end}): stored {stored:#010x}, computed {computed:#010x}"
    )]
    HeaderChecksum {
        /// End of the checksummed range.
        end: u64,
        /// Stored CRC-32.
        stored: u32,
        /// Computed CRC-32.
        computed: u32,
    },
    /// The data section does not match its checksum (from [`crate::Model::verify_data`]).
    #[error("data checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    DataChecksum {
        /// Stored CRC-32.
        stored: u32,
        /// Computed CRC-32.
        computed: u32,
    },
    /// The model buffer is not aligned in memory as the runtime needs.
    #[error(
        "model buffer at address {address:#x} is not {align}-byte aligned (use AlignedBytes, mmap, or an aligned static)"
    )]
    MisalignedBuffer {
        /// Address of the buffer.
        address: usize,
        /// Required alignment.
        align: usize,
    },
    /// A header or meta field holds an impossible value.
    #[error("invalid model header: {field} = {value} ({why})")]
    BadHeader {
        /// Field name.
        field: &'static str,
        /// Value found.
        value: u64,
        /// Why it is wrong.
        why: &'static str,
    },
    /// A tensor record is inconsistent.
    #[error("invalid tensor #{tensor} ('{name}'): {why}")]
    BadTensor {
        /// Tensor index.
        tensor: usize,
        /// Tensor name (empty when unreadable).
        name: ShortName,
        /// What is wrong.
        why: &'static str,
    },
    /// An op record is inconsistent (wrong arity, dtypes, shapes or parameters).
    #[error("invalid op #{op} ({opcode} '{name}'): {why}")]
    BadOp {
        /// Op index.
        op: usize,
        /// The op's node name.
        name: ShortName,
        /// Opcode name, or the raw code.
        opcode: &'static str,
        /// What is wrong.
        why: &'static str,
    },
    /// The file uses an opcode this runtime does not know (a newer minor version).
    #[error(
        "op #{op} has opcode {code}, unknown to this runtime {runtime} (file written by a newer converter?)"
    )]
    UnknownOpcode {
        /// Op index.
        op: usize,
        /// Raw opcode.
        code: u16,
        /// Runtime version.
        runtime: &'static str,
    },
    /// The model's op resolver has no kernel for an op: it does not register
    /// the opcode, or its registration does not run the op's operand types.
    #[error(
        "op #{op} ({opcode} '{name}') has no kernel in the op resolver (registered: {registered}); add its registration, e.g. from `tern inspect --resolver`"
    )]
    OpNotRegistered {
        /// Op index.
        op: usize,
        /// The op's node name.
        name: ShortName,
        /// Opcode name.
        opcode: &'static str,
        /// The variant registered for this opcode (`int8`, `float`, ...), or
        /// `nothing`.
        registered: &'static str,
    },
    /// The arena passed to the interpreter is too small.
    #[error("arena too small: the model needs {needed} bytes (Model::arena_size), got {got}")]
    ArenaTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// An input or output index past the model's count.
    #[error("the model has {count} {kind}s, there is no {kind} {index}")]
    NoSuchTensor {
        /// `input` or `output`.
        kind: &'static str,
        /// Index asked for.
        index: usize,
        /// Number available.
        count: usize,
    },
    /// Data of the wrong size for an input.
    #[error("input {index} ('{name}') holds {expected} elements of shape {}, got {got}", List::decimal(.shape))]
    InputShape {
        /// Input index.
        index: usize,
        /// Input name.
        name: ShortName,
        /// Elements expected.
        expected: usize,
        /// Shape expected (first `rank` entries).
        shape: [u32; crate::format::MAX_RANK],
        /// Elements given.
        got: usize,
    },
    /// An index read at run time (a token id, a sequence length) is out of range.
    #[error(
        "op #{op} ({opcode} '{name}'): {what} {value} at position {position} is outside [{min}, {limit})"
    )]
    IndexOutOfRange {
        /// Op index.
        op: usize,
        /// The op's node name.
        name: ShortName,
        /// Opcode name.
        opcode: &'static str,
        /// What the value is (`index`, `sequence length`).
        what: &'static str,
        /// The offending value (indices are i32 at run time).
        value: i32,
        /// Its position in the index tensor.
        position: u32,
        /// Lowest valid value.
        min: i32,
        /// One past the highest valid value.
        limit: i32,
    },
    /// A caller's buffer does not hold exactly a tensor's elements.
    #[error("tensor '{name}' holds {expected} elements, the buffer given holds {got}")]
    BufferLength {
        /// Tensor name.
        name: ShortName,
        /// Elements of the tensor.
        expected: usize,
        /// Elements of the buffer.
        got: usize,
    },
    /// A typed view of a tensor asked for the wrong element type.
    #[error("tensor '{name}' is {actual:?}, not {wanted:?}")]
    WrongDType {
        /// Tensor name.
        name: ShortName,
        /// Its dtype.
        actual: DType,
        /// The dtype asked for.
        wanted: DType,
    },
    /// An offload backend failed and the configured policy (or the arena plan)
    /// does not allow the CPU to take over.
    #[error(
        "backend '{backend}' failed on partition {partition} (ops {first_op}..{end_op}): {what}: {error}"
    )]
    Backend {
        /// The backend's name.
        backend: ShortName,
        /// Partition index.
        partition: usize,
        /// First op of the partition.
        first_op: usize,
        /// One past its last op.
        end_op: usize,
        /// Which step failed and why the CPU did not take over.
        what: &'static str,
        /// The backend's error.
        error: crate::backend::BackendError,
    },
    /// Reading or mapping a model file failed.
    #[cfg(feature = "std")]
    #[error("cannot map model file {path}: {source}")]
    Io {
        /// The file.
        path: std::string::String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// `Result` with the runtime's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

/// A name copied into an error (errors must not borrow the model), cut at 47 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShortName {
    bytes: [u8; 47],
    len: u8,
}

impl ShortName {
    /// Copies up to 47 bytes of `name`, cutting on a character boundary.
    pub fn new(name: &str) -> ShortName {
        let mut len = name.len().min(47);
        while !name.is_char_boundary(len) {
            len -= 1;
        }
        let mut bytes = [0u8; 47];
        bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
        ShortName {
            bytes,
            len: len as u8,
        }
    }

    /// The (possibly cut) name.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl core::fmt::Display for ShortName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::fmt::Debug for ShortName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// `[a, b, c]` in decimal or two-digit hex: what `{:?}` / `{:02x?}` print for
/// arrays, without linking core's `Debug` builders into firmware.
struct List<'a, T> {
    values: &'a [T],
    hex: bool,
}

impl<'a, T: Copy + Into<u32>> List<'a, T> {
    fn decimal(values: &'a [T]) -> Self {
        List { values, hex: false }
    }

    fn hex(values: &'a [T]) -> Self {
        List { values, hex: true }
    }
}

impl<T: Copy + Into<u32>> core::fmt::Display for List<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("[")?;
        for (i, &v) in self.values.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            let v: u32 = v.into();
            if self.hex {
                write!(f, "{v:02x}")?;
            } else {
                write!(f, "{v}")?;
            }
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;

    #[test]
    fn lists_print_as_debug_does() {
        let magic = *b"TERN\0\x01\x0a\xff";
        assert_eq!(format!("{}", List::hex(&magic)), format!("{magic:02x?}"));
        let shape = [1u32, 3, 224, 224, 0, 0];
        assert_eq!(format!("{}", List::decimal(&shape)), format!("{shape:?}"));
        assert_eq!(format!("{}", List::<u32>::decimal(&[])), "[]");
    }
}
