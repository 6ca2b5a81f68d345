//! The bytes of the SPI offload protocol: command and status codes, the frame
//! header, the CRC, tensor descriptors and op records (the tables are in the
//! [`super`] module's documentation). Pure encoding and decoding, no I/O, so a
//! device's firmware can share it.

use crate::format::{NONE_INDEX, QuantKind};
use crate::model::{OpInfo, Quant, TensorInfo};

/// First byte of every frame the host sends.
pub const MAGIC_REQUEST: u8 = 0xA5;
/// First byte of every frame the device sends.
pub const MAGIC_REPLY: u8 = 0x5A;
/// The protocol version this host speaks (in the HELLO reply).
pub const PROTOCOL_VERSION: u16 = 1;
/// Bytes in a frame header.
pub const HEADER_LEN: usize = 16;
/// Bytes of CRC-32 after the payload.
pub const CRC_LEN: usize = 4;
/// Bytes in a HELLO reply payload (version, flags).
pub const HELLO_REPLY_LEN: usize = 4;
/// Bit of the HELLO flags word: the device is ready to take partitions.
pub const HELLO_READY: u16 = 1;
/// Bytes in a PREPARE request payload (op count, tensor count).
pub const PREPARE_LEN: usize = 8;
/// Bytes in a DEFINE_TENSOR payload.
pub const TENSOR_DESCRIPTOR_LEN: usize = 44;
/// Bytes before the index and parameter words of a DEFINE_OP payload.
pub const OP_HEAD_LEN: usize = 8;
/// Bytes in a READ_TENSOR request payload (bytes wanted).
pub const READ_REQUEST_LEN: usize = 4;

/// What a frame asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Command {
    /// Protocol version and readiness.
    Hello = 0x01,
    /// Opens a partition; the reply's handle names it from then on.
    Prepare = 0x02,
    /// Describes one tensor of the partition.
    DefineTensor = 0x03,
    /// Describes one op of the partition, in execution order.
    DefineOp = 0x04,
    /// A chunk of a constant tensor (weights, biases, tables).
    LoadWeights = 0x05,
    /// Closes the partition description; the device compiles it.
    Commit = 0x06,
    /// A chunk of an input tensor, before EXECUTE.
    WriteTensor = 0x07,
    /// Runs the partition.
    Execute = 0x08,
    /// Asks for a chunk of an output tensor; the reply carries it.
    ReadTensor = 0x09,
    /// Frees the partition.
    Release = 0x0A,
}

impl Command {
    /// Decodes a command byte.
    pub fn from_code(code: u8) -> Option<Command> {
        Some(match code {
            0x01 => Command::Hello,
            0x02 => Command::Prepare,
            0x03 => Command::DefineTensor,
            0x04 => Command::DefineOp,
            0x05 => Command::LoadWeights,
            0x06 => Command::Commit,
            0x07 => Command::WriteTensor,
            0x08 => Command::Execute,
            0x09 => Command::ReadTensor,
            0x0A => Command::Release,
            _ => return None,
        })
    }
}

/// Status bytes of a reply. Any non-zero status becomes
/// [`crate::BackendError::Code`] with that value; devices may define more.
pub mod status {
    /// Done.
    pub const OK: u8 = 0x00;
    /// The request was malformed (bad magic, CRC, length or order).
    pub const BAD_FRAME: u8 = 0x01;
    /// The device cannot run an op or tensor type.
    pub const UNSUPPORTED: u8 = 0x02;
    /// The device ran out of memory or partition slots.
    pub const NO_RESOURCES: u8 = 0x03;
    /// The handle names no open or prepared partition.
    pub const BAD_HANDLE: u8 = 0x04;
    /// Execution failed on the device.
    pub const FAILED: u8 = 0x05;
}

/// A frame header (16 bytes, little-endian fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// [`MAGIC_REQUEST`] or [`MAGIC_REPLY`].
    pub magic: u8,
    /// A [`Command`] code (replies echo the request's).
    pub command: u8,
    /// 0 in requests; a [`status`] code in replies.
    pub status: u8,
    /// Partition handle (0 before PREPARE assigns one).
    pub handle: u8,
    /// Tensor id (the model's tensor index), op position, or partition index.
    pub id: u32,
    /// Byte offset of this chunk in its tensor (0 for unchunked frames).
    pub offset: u32,
    /// Payload bytes after the header.
    pub length: u32,
}

impl Header {
    /// A request header.
    pub fn request(command: Command, handle: u8, id: u32, offset: u32, length: u32) -> Header {
        Header {
            magic: MAGIC_REQUEST,
            command: command as u8,
            status: status::OK,
            handle,
            id,
            offset,
            length,
        }
    }

    /// The reply to `self` with `status` and `length` payload bytes.
    pub fn reply(&self, status: u8, length: u32) -> Header {
        Header {
            magic: MAGIC_REPLY,
            status,
            length,
            ..*self
        }
    }

    /// The header's bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = self.magic;
        b[1] = self.command;
        b[2] = self.status;
        b[3] = self.handle;
        b[4..8].copy_from_slice(&self.id.to_le_bytes());
        b[8..12].copy_from_slice(&self.offset.to_le_bytes());
        b[12..16].copy_from_slice(&self.length.to_le_bytes());
        b
    }

    /// Decodes header bytes (any bytes decode; checking is the caller's).
    pub fn from_bytes(b: &[u8; HEADER_LEN]) -> Header {
        let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        Header {
            magic: b[0],
            command: b[1],
            status: b[2],
            handle: b[3],
            id: word(4),
            offset: word(8),
            length: word(12),
        }
    }
}

/// CRC-32 (IEEE 802.3, as zlib's `crc32`) of `parts` concatenated: a frame's CRC
/// covers its header and payload.
pub fn crc(parts: &[&[u8]]) -> u32 {
    let mut hasher = crate::crc32::Crc32::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize()
}

/// What a tensor is to a partition (byte 2 of its descriptor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// Written by the host (WRITE_TENSOR) before every EXECUTE.
    Input = 0,
    /// Uploaded once (LOAD_WEIGHTS) at prepare.
    Constant = 1,
    /// Read back by the host (READ_TENSOR) after every EXECUTE.
    Output = 2,
    /// Produced and consumed inside the partition; never transferred.
    Internal = 3,
}

/// The 44-byte DEFINE_TENSOR payload for `t`.
pub fn tensor_descriptor(
    t: &TensorInfo<'_>,
    role: Role,
    byte_len: u32,
) -> [u8; TENSOR_DESCRIPTOR_LEN] {
    let mut d = [0u8; TENSOR_DESCRIPTOR_LEN];
    d[0] = t.dtype as u8;
    d[1] = t.rank as u8;
    d[2] = role as u8;
    let (kind, scale, zero_point, scales) = match t.quant {
        Quant::None => (QuantKind::None, 0.0, 0, NONE_INDEX),
        Quant::PerTensor { scale, zero_point } => {
            (QuantKind::PerTensor, scale, zero_point, NONE_INDEX)
        }
        Quant::PerChannel { scales } => {
            let scales = u32::try_from(scales).unwrap_or(NONE_INDEX);
            (QuantKind::PerChannel, 0.0, 0, scales)
        }
    };
    d[3] = kind as u8;
    for (k, &dim) in t.shape().iter().enumerate() {
        // Dims are u32 in the model file, so this never saturates.
        let dim = u32::try_from(dim).unwrap_or(u32::MAX);
        d[4 + 4 * k..8 + 4 * k].copy_from_slice(&dim.to_le_bytes());
    }
    d[28..32].copy_from_slice(&byte_len.to_le_bytes());
    d[32..36].copy_from_slice(&scale.to_le_bytes());
    d[36..40].copy_from_slice(&zero_point.to_le_bytes());
    d[40..44].copy_from_slice(&scales.to_le_bytes());
    d
}

/// The first 8 bytes of the DEFINE_OP payload for `op`: opcode and the
/// lengths of the input, output and parameter word lists that follow.
pub fn op_head(op: &OpInfo<'_>) -> [u8; OP_HEAD_LEN] {
    // Lists are at most u16 long in the model file (inputs, outputs); parameter
    // counts past u16::MAX are refused by the caller before this is sent.
    let len = |n: usize| u16::try_from(n).unwrap_or(u16::MAX).to_le_bytes();
    let mut h = [0u8; OP_HEAD_LEN];
    h[0..2].copy_from_slice(&(op.opcode as u16).to_le_bytes());
    h[2..4].copy_from_slice(&len(op.inputs.len()));
    h[4..6].copy_from_slice(&len(op.outputs.len()));
    h[6..8].copy_from_slice(&len(op.params.len()));
    h
}
