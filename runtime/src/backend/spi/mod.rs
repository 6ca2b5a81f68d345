//! A transport [`Backend`] for an external accelerator on an SPI bus: an
//! embedded-hal 1.0 [`SpiDevice`] (the bus with its chip select) plus a BUSY
//! [`InputPin`] the device drives high while it works, polled with a [`DelayNs`].
//!
//! This module owns the host side of the framing protocol below and nothing else:
//! no memory (it streams weights from the model and tensors from the arena in
//! place, chunk by chunk, with no staging buffer), no kernels, no fallback policy
//! (that is the interpreter's, [`crate::OnFailure`]). Byte-level encoding lives in
//! [`frame`], which a device's firmware can reuse.
//!
//! # Protocol (version 1)
//!
//! Every exchange is one request frame from the host, then one reply frame from
//! the device, each in its own SPI transaction (chip select held for the whole
//! frame). All multi-byte fields are little-endian.
//!
//! ## Frame
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | magic: `0xA5` host → device, `0x5A` device → host |
//! | 1 | 1 | command (table below); a reply echoes its request's |
//! | 2 | 1 | status: 0 in requests; in replies 0 = OK, else an error code |
//! | 3 | 1 | partition handle (0 before PREPARE assigns one) |
//! | 4 | 4 | id: tensor id (the model's tensor index), op position, or partition index |
//! | 8 | 4 | offset: byte offset of this chunk in its tensor (else 0) |
//! | 12 | 4 | length: payload bytes |
//! | 16 | length | payload |
//! | 16 + length | 4 | CRC-32 (IEEE 802.3, zlib's `crc32`) of bytes `0 .. 16 + length` |
//!
//! ## Commands
//!
//! | code | command | handle | id | offset | request payload | reply payload |
//! |---|---|---|---|---|---|---|
//! | `0x01` | HELLO | 0 | 0 | 0 | none | version u16, flags u16 (bit 0: ready) |
//! | `0x02` | PREPARE | 0 | partition index | 0 | op count u32, tensor count u32 | none; the reply's handle byte is the new handle |
//! | `0x03` | DEFINE_TENSOR | h | tensor id | 0 | tensor descriptor (44 bytes) | none |
//! | `0x04` | DEFINE_OP | h | op position (0, 1, ...) | 0 | op record | none |
//! | `0x05` | LOAD_WEIGHTS | h | tensor id | chunk offset | chunk of a constant | none |
//! | `0x06` | COMMIT | h | 0 | 0 | none | none |
//! | `0x07` | WRITE_TENSOR | h | tensor id | chunk offset | chunk of an input | none |
//! | `0x08` | EXECUTE | h | 0 | 0 | none | none |
//! | `0x09` | READ_TENSOR | h | tensor id | chunk offset | bytes wanted u32 | those bytes of the output |
//! | `0x0A` | RELEASE | h | 0 | 0 | none | none |
//!
//! A reply's payload length is fixed by its request (4 for HELLO, the bytes
//! wanted for READ_TENSOR, else 0). The device sends that length even when it
//! reports an error (zero-filled), so the host always reads a known length.
//!
//! **Tensor descriptor** (DEFINE_TENSOR payload, 44 bytes). The device gets one
//! for every tensor the partition's ops name (inputs, constants, outputs and
//! intermediates), in first-use order; scratch tensors are the device's own
//! business.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | dtype: the `.tern` code (1 f32, 2 f16, 3 i8, 4 i32) |
//! | 1 | 1 | rank (0..=6) |
//! | 2 | 1 | role: 0 input (written every run), 1 constant (loaded once), 2 output (read every run), 3 internal |
//! | 3 | 1 | quantization: 0 none, 1 per tensor, 2 per channel |
//! | 4 | 24 | dims, 6 × u32 (unused dims 0) |
//! | 28 | 4 | byte length u32 |
//! | 32 | 4 | scale f32 (per tensor) |
//! | 36 | 4 | zero point i32 (per tensor) |
//! | 40 | 4 | per-channel scales tensor id u32 (`0xFFFF_FFFF` if none; sent only if an op reads it) |
//!
//! **Op record** (DEFINE_OP payload, in execution order): opcode u16 (the `.tern`
//! opcode), input count u16, output count u16, parameter count u16, then the input
//! tensor ids (u32 each, `0xFFFF_FFFF` = absent optional input), the output tensor
//! ids (u32 each) and the parameter words (u32 each), exactly as in the model file
//! (`runtime/FORMAT.md` gives each op's inputs and parameters).
//!
//! **Status codes** ([`frame::status`]): `0x00` OK, `0x01` bad frame (magic, CRC,
//! length, order), `0x02` unsupported op or tensor, `0x03` out of resources,
//! `0x04` bad handle, `0x05` execution failed; other values are device-defined.
//! Every non-zero status becomes [`BackendError::Code`].
//!
//! ## Sequences
//!
//! - Availability: HELLO; available when the reply is OK, the version is
//!   [`frame::PROTOCOL_VERSION`] and the ready bit is set.
//! - Prepare (once per partition, at interpreter creation): PREPARE, one
//!   DEFINE_TENSOR per tensor, one DEFINE_OP per op, LOAD_WEIGHTS for every
//!   constant (chunked), COMMIT. If any step fails the host sends RELEASE (its
//!   reply ignored) and reports the error.
//! - Execute (every invoke): WRITE_TENSOR for every input (chunked), EXECUTE,
//!   READ_TENSOR for every output (chunked).
//! - Release: RELEASE (its reply ignored).
//!
//! LOAD_WEIGHTS, WRITE_TENSOR and READ_TENSOR move a tensor in chunks of at most
//! [`SpiConfig::max_chunk`] bytes, in increasing offset order; empty tensors are
//! not transferred. Other frames are never split (a DEFINE_OP payload is
//! 8 + 4 × (inputs + outputs + parameters) bytes).
//!
//! ## BUSY and timing
//!
//! The device drives BUSY high from the end of each request (it must be high by
//! the time chip select is released) until its reply is ready, and low otherwise.
//! After each request the host reads BUSY, and while it is high waits
//! [`SpiConfig::busy_poll_us`] and reads again, up to [`SpiConfig::busy_timeout_us`]
//! in total, then gives up with [`BackendError::Timeout`]. After any failed
//! exchange the host also waits for BUSY low before its next request, so a late
//! device is not talked over.
//!
//! ## Checks and failures
//!
//! The host checks every reply in this order: magic ([`BackendError::Protocol`]),
//! CRC ([`BackendError::Crc`]), command echo (`Protocol`), status
//! ([`BackendError::Code`]), then handle, id, offset and length echoes
//! (`Protocol`). Bus and pin errors are [`BackendError::Transport`].
//!
//! READ_TENSOR replies are read straight into the output tensor in the arena and
//! checked there: [`Backend::execute`] returns `Ok` only once every output chunk
//! has passed its CRC. On any error the outputs may hold garbage, and the
//! interpreter either reruns the partition on the CPU (which rewrites every
//! output; [`crate::OnFailure::CpuFallback`]) or returns [`crate::Error::Backend`]
//! ([`crate::OnFailure::Error`]) — never a wrong output.

pub mod frame;
#[cfg(test)]
mod tests;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::InputPin;
use embedded_hal::spi::{ErrorKind, Operation, SpiDevice};

use self::frame::{Command, Header, Role};
use super::{Backend, BackendError, Handle, MAX_PARTITIONS, Partition, PartitionIo};
use crate::format::{NONE_INDEX, Opcode, Storage};
use crate::model::{Model, OpInfo, TensorInfo};

/// How the SPI backend talks to its device.
#[derive(Clone, Copy, Debug)]
pub struct SpiConfig {
    /// Whether the device runs an op (default [`claims_conv_and_fully_connected`]).
    /// A non-capturing closure works: `|_, op| op.opcode == Opcode::Conv2d`.
    pub claims: fn(&Model<'_>, &OpInfo<'_>) -> bool,
    /// Most microseconds to wait for BUSY to fall after one request.
    pub busy_timeout_us: u32,
    /// Microseconds between two reads of BUSY (at least 1).
    pub busy_poll_us: u32,
    /// Most payload bytes in one LOAD_WEIGHTS, WRITE_TENSOR or READ_TENSOR frame
    /// (at least 1).
    pub max_chunk: u32,
}

impl Default for SpiConfig {
    /// Conv2d and FullyConnected, a 1 s timeout polled every 10 µs, 1 KiB chunks.
    fn default() -> SpiConfig {
        SpiConfig {
            claims: claims_conv_and_fully_connected,
            busy_timeout_us: 1_000_000,
            busy_poll_us: 10,
            max_chunk: 1024,
        }
    }
}

/// The default claim: Conv2d and FullyConnected ops.
pub fn claims_conv_and_fully_connected(_model: &Model<'_>, op: &OpInfo<'_>) -> bool {
    matches!(op.opcode, Opcode::Conv2d | Opcode::FullyConnected)
}

/// A partition prepared on the device.
#[derive(Clone, Copy, Debug)]
struct Prepared {
    /// The device's handle.
    device: u8,
    first_op: usize,
    end_op: usize,
}

/// The SPI transport backend (see the [module documentation](self) for the
/// protocol). Generic over the bus, the BUSY pin and the delay used to poll it.
pub struct SpiBackend<SPI, BUSY, D> {
    spi: SPI,
    busy: BUSY,
    delay: D,
    config: SpiConfig,
    prepared: [Option<Prepared>; MAX_PARTITIONS],
    /// The last exchange failed: wait for BUSY low before the next request.
    resync: bool,
}

impl<SPI, BUSY, D> SpiBackend<SPI, BUSY, D>
where
    SPI: SpiDevice,
    BUSY: InputPin,
    D: DelayNs,
{
    /// A backend on `spi` with BUSY on `busy`, polled with `delay`.
    pub fn new(spi: SPI, busy: BUSY, delay: D, config: SpiConfig) -> Self {
        SpiBackend {
            spi,
            busy,
            delay,
            config,
            prepared: [None; MAX_PARTITIONS],
            resync: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SpiConfig {
        &self.config
    }

    /// Gives the bus, the pin and the delay back (prepared partitions are not
    /// released; drop the interpreter first, which releases them).
    pub fn into_parts(self) -> (SPI, BUSY, D) {
        (self.spi, self.busy, self.delay)
    }

    /// Sends HELLO: the device's protocol version and whether it is ready.
    pub fn hello(&mut self) -> Result<(u16, bool), BackendError> {
        let mut reply = [0u8; frame::HELLO_REPLY_LEN];
        self.exchange(Header::request(Command::Hello, 0, 0, 0, 0), &[], &mut reply)?;
        let version = u16::from_le_bytes([reply[0], reply[1]]);
        let flags = u16::from_le_bytes([reply[2], reply[3]]);
        Ok((version, flags & frame::HELLO_READY != 0))
    }

    /// One request and its reply, with every check in the protocol's order.
    fn exchange(
        &mut self,
        request: Header,
        payload: &[&[u8]],
        reply: &mut [u8],
    ) -> Result<Header, BackendError> {
        let result = self.try_exchange(request, payload, reply);
        self.resync = result.is_err();
        result
    }

    fn try_exchange(
        &mut self,
        request: Header,
        payload: &[&[u8]],
        reply: &mut [u8],
    ) -> Result<Header, BackendError> {
        if self.resync {
            self.wait_ready()?;
        }
        self.write_frame(&request, payload)?;
        self.wait_ready()?;
        let (head, crc) = self.read_reply(reply)?;
        let got = Header::from_bytes(&head);
        let protocol = |what| Err(BackendError::Protocol { what });
        if got.magic != frame::MAGIC_REPLY {
            return protocol("reply does not start with the reply magic byte");
        }
        let computed = frame::crc(&[&head, reply]);
        if computed != crc {
            return Err(BackendError::Crc {
                tensor: request.id,
                expected: crc,
                computed,
            });
        }
        if got.command != request.command {
            return protocol("reply is for another command");
        }
        if got.status != frame::status::OK {
            return Err(BackendError::Code {
                code: i32::from(got.status),
            });
        }
        if got.handle != request.handle && request.command != Command::Prepare as u8 {
            return protocol("reply is for another partition handle");
        }
        if got.id != request.id || got.offset != request.offset {
            return protocol("reply is for another tensor or chunk");
        }
        if got.length as usize != reply.len() {
            return protocol("reply payload has the wrong length");
        }
        Ok(got)
    }

    /// Writes one frame in one SPI transaction: header, `payload` parts, CRC.
    fn write_frame(&mut self, header: &Header, payload: &[&[u8]]) -> Result<(), BackendError> {
        const MOST_PARTS: usize = 4;
        debug_assert!(payload.len() <= MOST_PARTS);
        let head = header.to_bytes();
        let mut parts: [&[u8]; MOST_PARTS + 1] = [&[]; MOST_PARTS + 1];
        parts[0] = &head;
        let mut n = 1;
        for part in payload.iter().filter(|p| !p.is_empty()).take(MOST_PARTS) {
            parts[n] = part;
            n += 1;
        }
        let crc = frame::crc(&parts[..n]).to_le_bytes();
        let mut ops: [Operation<'_, u8>; MOST_PARTS + 2] =
            core::array::from_fn(|_| Operation::Write(&[]));
        for (op, part) in ops.iter_mut().zip(&parts[..n]) {
            *op = Operation::Write(part);
        }
        ops[n] = Operation::Write(&crc);
        self.spi.transaction(&mut ops[..=n]).map_err(spi_error)
    }

    /// Reads one reply frame of `reply.len()` payload bytes in one SPI
    /// transaction: the payload goes straight into `reply`.
    fn read_reply(
        &mut self,
        reply: &mut [u8],
    ) -> Result<([u8; frame::HEADER_LEN], u32), BackendError> {
        let mut head = [0u8; frame::HEADER_LEN];
        let mut crc = [0u8; frame::CRC_LEN];
        let result = if reply.is_empty() {
            let mut ops = [Operation::Read(&mut head), Operation::Read(&mut crc)];
            self.spi.transaction(&mut ops)
        } else {
            let mut ops = [
                Operation::Read(&mut head),
                Operation::Read(reply),
                Operation::Read(&mut crc),
            ];
            self.spi.transaction(&mut ops)
        };
        result.map_err(spi_error)?;
        Ok((head, u32::from_le_bytes(crc)))
    }

    /// Polls BUSY until it is low, or the timeout passes.
    fn wait_ready(&mut self) -> Result<(), BackendError> {
        let step = self.config.busy_poll_us.max(1);
        let mut waited: u32 = 0;
        loop {
            let busy = self.busy.is_high().map_err(|_| BackendError::Transport {
                what: "reading the BUSY pin failed",
            })?;
            if !busy {
                return Ok(());
            }
            if waited >= self.config.busy_timeout_us {
                return Err(BackendError::Timeout);
            }
            self.delay.delay_us(step);
            waited = waited.saturating_add(step);
        }
    }

    /// Sends `bytes` of tensor `id` as `command` frames of at most `max_chunk`
    /// payload bytes each.
    fn send_chunked(
        &mut self,
        command: Command,
        handle: u8,
        id: u32,
        bytes: &[u8],
    ) -> Result<(), BackendError> {
        let chunk = self.config.max_chunk.max(1) as usize;
        for (k, part) in bytes.chunks(chunk).enumerate() {
            let offset = wire_len(k * chunk)?;
            let request = Header::request(command, handle, id, offset, wire_len(part.len())?);
            self.exchange(request, &[part], &mut [])?;
        }
        Ok(())
    }

    /// Reads output tensor `id` into `out`, chunk by chunk, each CRC-checked.
    fn read_chunked(&mut self, handle: u8, id: u32, out: &mut [u8]) -> Result<(), BackendError> {
        let chunk = self.config.max_chunk.max(1) as usize;
        for (k, part) in out.chunks_mut(chunk).enumerate() {
            let (offset, wanted) = (wire_len(k * chunk)?, wire_len(part.len())?);
            let request = Header::request(
                Command::ReadTensor,
                handle,
                id,
                offset,
                frame::READ_REQUEST_LEN as u32,
            );
            self.exchange(request, &[&wanted.to_le_bytes()], part)?;
        }
        Ok(())
    }

    /// Describes, uploads and commits `partition` under device handle `handle`.
    fn send_partition(
        &mut self,
        handle: u8,
        partition: &Partition<'_>,
    ) -> Result<(), BackendError> {
        let model = partition.model();
        for t in partition_tensors(partition) {
            let role = role_of(partition, &t);
            let descriptor = frame::tensor_descriptor(&t, role, wire_len(t.byte_len)?);
            let request = Header::request(
                Command::DefineTensor,
                handle,
                wire_id(t.index)?,
                0,
                frame::TENSOR_DESCRIPTOR_LEN as u32,
            );
            self.exchange(request, &[&descriptor], &mut [])?;
        }
        for (position, op) in partition.ops().enumerate() {
            if op.params.len() > usize::from(u16::MAX) {
                return Err(BackendError::Unsupported {
                    op: op.index,
                    why: "more parameter words than an op record holds",
                });
            }
            let words = op.inputs.len() + op.outputs.len() + op.params.len();
            let length = wire_len(frame::OP_HEAD_LEN + 4 * words)?;
            let request = Header::request(Command::DefineOp, handle, wire_id(position)?, 0, length);
            let head = frame::op_head(&op);
            let parts: [&[u8]; 4] = [
                &head,
                bytemuck::cast_slice(op.inputs),
                bytemuck::cast_slice(op.outputs),
                bytemuck::cast_slice(op.params),
            ];
            self.exchange(request, &parts, &mut [])?;
        }
        for t in partition.constants() {
            let bytes = model.constant_bytes(&t).ok_or(BackendError::Protocol {
                what: "a constant tensor has no data in the model",
            })?;
            self.send_chunked(Command::LoadWeights, handle, wire_id(t.index)?, bytes)?;
        }
        self.exchange(
            Header::request(Command::Commit, handle, 0, 0, 0),
            &[],
            &mut [],
        )?;
        Ok(())
    }

    /// Runs prepared partition `p` over `io`.
    fn run(&mut self, p: Prepared, io: &mut PartitionIo<'_>) -> Result<(), BackendError> {
        let partition = *io.partition();
        for t in partition.inputs() {
            let bytes = io.input(t.index)?;
            self.send_chunked(Command::WriteTensor, p.device, wire_id(t.index)?, bytes)?;
        }
        let execute = Header::request(Command::Execute, p.device, 0, 0, 0);
        self.exchange(execute, &[], &mut [])?;
        for t in partition.outputs() {
            let out = io.output(t.index)?;
            self.read_chunked(p.device, wire_id(t.index)?, out)?;
        }
        Ok(())
    }

    /// RELEASE, its outcome ignored (nothing is left to do if it fails).
    fn release_device(&mut self, device: u8) {
        let request = Header::request(Command::Release, device, 0, 0, 0);
        let _ = self.exchange(request, &[], &mut []);
    }
}

impl<SPI, BUSY, D> Backend for SpiBackend<SPI, BUSY, D>
where
    SPI: SpiDevice,
    BUSY: InputPin,
    D: DelayNs,
{
    fn name(&self) -> &str {
        "spi"
    }

    fn is_available(&mut self) -> bool {
        matches!(self.hello(), Ok((frame::PROTOCOL_VERSION, true)))
    }

    fn claims(&self, model: &Model<'_>, op: &OpInfo<'_>) -> bool {
        (self.config.claims)(model, op)
    }

    fn prepare(&mut self, partition: &Partition<'_>) -> Result<Handle, BackendError> {
        let model = partition.model();
        if let Some(op) = partition.ops().find(|op| !(self.config.claims)(model, op)) {
            return Err(BackendError::Unsupported {
                op: op.index,
                why: "the SPI backend's configuration does not claim this op",
            });
        }
        let slot = self.prepared.iter().position(Option::is_none);
        let slot = slot.ok_or(BackendError::OutOfResources {
            what: "partition slots",
        })?;
        let op_count = wire_len(partition.op_range().len())?;
        let tensor_count = wire_len(partition_tensors(partition).count())?;
        let mut counts = [0u8; frame::PREPARE_LEN];
        counts[..4].copy_from_slice(&op_count.to_le_bytes());
        counts[4..].copy_from_slice(&tensor_count.to_le_bytes());
        let request = Header::request(
            Command::Prepare,
            0,
            wire_id(partition.index)?,
            0,
            frame::PREPARE_LEN as u32,
        );
        let device = self.exchange(request, &[&counts], &mut [])?.handle;
        if let Err(e) = self.send_partition(device, partition) {
            self.release_device(device);
            return Err(e);
        }
        self.prepared[slot] = Some(Prepared {
            device,
            first_op: partition.first_op,
            end_op: partition.end_op,
        });
        Ok(slot as Handle)
    }

    fn execute(&mut self, handle: Handle, io: &mut PartitionIo<'_>) -> Result<(), BackendError> {
        let p = self.prepared.get(handle as usize).copied().flatten();
        let p = p.ok_or(BackendError::InvalidHandle { handle })?;
        if (p.first_op, p.end_op) != (io.partition().first_op, io.partition().end_op) {
            return Err(BackendError::InvalidHandle { handle });
        }
        self.run(p, io)
    }

    fn release(&mut self, handle: Handle) {
        if let Some(p) = self
            .prepared
            .get_mut(handle as usize)
            .and_then(Option::take)
        {
            self.release_device(p.device);
        }
    }
}

/// Every tensor the partition's ops name (inputs, then outputs, op by op), each
/// once, in first-use order.
fn partition_tensors<'p, 'm>(
    partition: &'p Partition<'m>,
) -> impl Iterator<Item = TensorInfo<'m>> + 'p {
    let named = move || {
        partition
            .ops()
            .flat_map(|op| op.inputs.iter().chain(op.outputs).copied())
            .filter(|&t| t != NONE_INDEX)
    };
    named()
        .enumerate()
        .filter(move |&(k, t)| !named().take(k).any(|u| u == t))
        .filter_map(move |(_, t)| partition.model().tensor(t as usize))
}

/// What tensor `t` is to `partition`.
fn role_of(partition: &Partition<'_>, t: &TensorInfo<'_>) -> Role {
    if t.storage == Storage::Constant {
        Role::Constant
    } else if partition.outputs().any(|o| o.index == t.index) {
        Role::Output
    } else if partition.inputs().any(|i| i.index == t.index) {
        Role::Input
    } else {
        Role::Internal
    }
}

/// A length or offset as the protocol's u32.
fn wire_len(n: usize) -> Result<u32, BackendError> {
    u32::try_from(n).map_err(|_| BackendError::OutOfResources {
        what: "a tensor larger than the protocol's 4 GiB",
    })
}

/// A tensor, op or partition index as the protocol's u32 id.
fn wire_id(n: usize) -> Result<u32, BackendError> {
    u32::try_from(n).map_err(|_| BackendError::Protocol {
        what: "an index past the protocol's u32 ids",
    })
}

/// An SPI error as [`BackendError::Transport`].
fn spi_error(e: impl embedded_hal::spi::Error) -> BackendError {
    let what = match e.kind() {
        ErrorKind::Overrun => "SPI overrun",
        ErrorKind::ModeFault => "SPI mode fault",
        ErrorKind::FrameFormat => "SPI frame format error",
        ErrorKind::ChipSelectFault => "SPI chip select fault",
        _ => "SPI transfer failed",
    };
    BackendError::Transport { what }
}
