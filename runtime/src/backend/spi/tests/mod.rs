//! Tests of the SPI backend: the exact frames against embedded-hal-mock
//! expectations (built by an encoder written here from the protocol table, not
//! by [`super::frame`], and pinned by hand-written bytes), each failure kind, and
//! a simulated accelerator that runs a real model through the interpreter.

extern crate std;

use std::collections::BTreeMap;
use std::vec;
use std::vec::Vec;

use embedded_hal::digital::{ErrorType as PinErrorType, InputPin};
use embedded_hal::spi::{ErrorKind, ErrorType, Operation, SpiDevice};
use embedded_hal_mock::eh1::MockError;
use embedded_hal_mock::eh1::delay::NoopDelay;
use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as PinTransaction};
use embedded_hal_mock::eh1::spi::{Mock as SpiMock, Transaction as SpiTransaction};

use super::frame::{self, Command, Header};
use super::{SpiBackend, SpiConfig};
use crate::backend::{Backend, BackendError, OnFailure, Partition, PartitionIo};
use crate::format::{self, DATA_ALIGN, DType, HEADER_LEN, MAGIC, META_HEADER_LEN, Opcode};
use crate::{Error, Interpreter, Model};

// ---------------------------------------------------------------------------
// A small model: FullyConnected -> Softmax -> FullyConnected (f32).
// ---------------------------------------------------------------------------

/// One tensor of the test model: `Ok(arena offset)` or `Err(constant bytes)`.
struct TestTensor {
    dtype: DType,
    shape: Vec<u32>,
    storage: Result<usize, Vec<u8>>,
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// `.tern` bytes in a buffer with the 64-byte alignment the model needs.
struct AlignedFile {
    buffer: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedFile {
    fn bytes(&self) -> &[u8] {
        &self.buffer[self.start..self.start + self.len]
    }
}

/// The test model's tensors: 0 x `[1,4]` (input), 1 w0 `[3,4]`, 2 b0 `[3]`,
/// 3 h `[1,3]`, 4 s `[1,3]`, 5 w1 `[2,3]`, 6 b1 `[2]`, 7 y `[1,2]` (output).
/// Ops: 0 FullyConnected(x, w0, b0) -> h; 1 Softmax(h) -> s (on the CPU with the
/// default claims); 2 FullyConnected(s, w1, b1) -> y. Arena tensors do not share
/// bytes, so every partition is fallback-safe.
fn test_model_file() -> AlignedFile {
    let w0 = [
        0.5, -1.25, 0.75, 2.0, -0.5, 0.25, 1.5, -0.75, 1.0, 0.125, -2.0, 0.625,
    ];
    let w1 = [1.5, -0.5, 0.25, -1.0, 2.0, 0.75];
    let arena = |offset| Ok(offset);
    let tensors = [
        (DType::F32, vec![1, 4], arena(0)),
        (DType::F32, vec![3, 4], Err(f32_bytes(&w0))),
        (DType::F32, vec![3], Err(f32_bytes(&[0.1, -0.2, 0.3]))),
        (DType::F32, vec![1, 3], arena(64)),
        (DType::F32, vec![1, 3], arena(128)),
        (DType::F32, vec![2, 3], Err(f32_bytes(&w1))),
        (DType::F32, vec![2], Err(f32_bytes(&[-0.05, 0.4]))),
        (DType::F32, vec![1, 2], arena(192)),
    ]
    .map(|(dtype, shape, storage)| TestTensor {
        dtype,
        shape,
        storage,
    });
    let no_clamp = [f32::NEG_INFINITY.to_bits(), f32::INFINITY.to_bits()];
    let ops: [(Opcode, Vec<u32>, u32, Vec<u32>); 3] = [
        (Opcode::FullyConnected, vec![0, 1, 2], 3, no_clamp.to_vec()),
        (Opcode::Softmax, vec![3], 4, vec![1]),
        (Opcode::FullyConnected, vec![4, 5, 6], 7, no_clamp.to_vec()),
    ];
    write_tern(&tensors, &ops, &[0], &[7], 256)
}

/// A minimal `.tern` writer (the layout of `runtime/FORMAT.md`, as the
/// converter's `FileModel::to_bytes` writes it; no metadata, no quantization).
fn write_tern(
    tensors: &[TestTensor],
    ops: &[(Opcode, Vec<u32>, u32, Vec<u32>)],
    inputs: &[u32],
    outputs: &[u32],
    arena_size: u32,
) -> AlignedFile {
    let align = |v: usize, a: usize| v.div_ceil(a) * a;
    let put =
        |r: &mut [u8], at: usize, bytes: &[u8]| r[at..at + bytes.len()].copy_from_slice(bytes);
    let mut data: Vec<u8> = Vec::new();
    let mut records = Vec::new();
    for t in tensors {
        let mut r = [0u8; format::TENSOR_RECORD_LEN];
        r[format::tensor::DTYPE] = t.dtype as u8;
        r[format::tensor::RANK] = t.shape.len() as u8;
        for (k, d) in t.shape.iter().enumerate() {
            put(&mut r, format::tensor::DIMS + 4 * k, &d.to_le_bytes());
        }
        let byte_len = t.shape.iter().product::<u32>() as usize * t.dtype.size();
        let (storage, offset) = match &t.storage {
            Ok(offset) => (format::Storage::Arena, *offset),
            Err(bytes) => {
                data.resize(align(data.len(), DATA_ALIGN), 0);
                let offset = data.len();
                data.extend_from_slice(bytes);
                (format::Storage::Constant, offset)
            }
        };
        r[format::tensor::STORAGE] = storage as u8;
        put(
            &mut r,
            format::tensor::OFFSET,
            &(offset as u64).to_le_bytes(),
        );
        put(
            &mut r,
            format::tensor::BYTE_LEN,
            &(byte_len as u64).to_le_bytes(),
        );
        records.extend_from_slice(&r);
    }
    let (mut index, mut params, mut op_records) =
        (Vec::<u32>::new(), Vec::<u32>::new(), Vec::new());
    for (opcode, op_inputs, output, op_params) in ops {
        let mut r = [0u8; format::OP_RECORD_LEN];
        let word = |r: &mut [u8], at: usize, v: usize| put(r, at, &(v as u32).to_le_bytes());
        put(&mut r, format::op::OPCODE, &(*opcode as u16).to_le_bytes());
        word(&mut r, format::op::INPUTS_START, index.len());
        put(
            &mut r,
            format::op::INPUTS_LEN,
            &(op_inputs.len() as u16).to_le_bytes(),
        );
        index.extend_from_slice(op_inputs);
        word(&mut r, format::op::OUTPUTS_START, index.len());
        put(&mut r, format::op::OUTPUTS_LEN, &1u16.to_le_bytes());
        index.push(*output);
        word(&mut r, format::op::PARAMS_START, params.len());
        word(&mut r, format::op::PARAMS_LEN, op_params.len());
        params.extend_from_slice(op_params);
        put(
            &mut r,
            format::op::SCRATCH,
            &format::NONE_INDEX.to_le_bytes(),
        );
        op_records.extend_from_slice(&r);
    }
    let mut meta = vec![0u8; META_HEADER_LEN];
    let counts = [
        tensors.len(),
        ops.len(),
        inputs.len(),
        outputs.len(),
        index.len(),
        params.len(),
    ];
    for (k, n) in counts.iter().enumerate() {
        put(&mut meta, 4 * k, &(*n as u32).to_le_bytes());
    }
    meta.extend_from_slice(&records);
    meta.extend_from_slice(&op_records);
    for list in [inputs, outputs, &index, &params] {
        meta.extend(list.iter().flat_map(|w| w.to_le_bytes()));
    }
    let meta_end = HEADER_LEN + meta.len();
    let data_offset = align(meta_end, DATA_ALIGN);
    let mut file = vec![0u8; HEADER_LEN];
    file.extend_from_slice(&meta);
    file.resize(data_offset, 0);
    file.extend_from_slice(&data);
    let file_len = file.len();
    let h = &mut file[..HEADER_LEN];
    put(h, format::header::MAGIC, &MAGIC);
    put(
        h,
        format::header::MAJOR,
        &format::FORMAT_MAJOR.to_le_bytes(),
    );
    put(
        h,
        format::header::FILE_LEN,
        &(file_len as u64).to_le_bytes(),
    );
    put(
        h,
        format::header::META_OFFSET,
        &(HEADER_LEN as u32).to_le_bytes(),
    );
    put(
        h,
        format::header::META_LEN,
        &(meta.len() as u32).to_le_bytes(),
    );
    put(
        h,
        format::header::DATA_OFFSET,
        &(data_offset as u64).to_le_bytes(),
    );
    put(
        h,
        format::header::DATA_LEN,
        &(data.len() as u64).to_le_bytes(),
    );
    put(
        h,
        format::header::DATA_CRC,
        &crc32fast::hash(&data).to_le_bytes(),
    );
    put(h, format::header::ARENA_SIZE, &arena_size.to_le_bytes());
    put(
        h,
        format::header::OP_COUNT,
        &(ops.len() as u32).to_le_bytes(),
    );
    let crc = crc32fast::hash(&file[16..meta_end]);
    put(&mut file, format::header::HEADER_CRC, &crc.to_le_bytes());
    let mut buffer = vec![0u8; file_len + DATA_ALIGN];
    let start = buffer.as_ptr().align_offset(DATA_ALIGN);
    buffer[start..start + file_len].copy_from_slice(&file);
    AlignedFile {
        buffer,
        start,
        len: file_len,
    }
}

const X: [f32; 4] = [0.3, -1.1, 2.5, 0.7];

// ---------------------------------------------------------------------------
// The protocol, encoded independently of `frame` for the mock expectations.
// ---------------------------------------------------------------------------

const HELLO: u8 = 0x01;
const PREPARE: u8 = 0x02;
const DEFINE_TENSOR: u8 = 0x03;
const DEFINE_OP: u8 = 0x04;
const LOAD_WEIGHTS: u8 = 0x05;
const COMMIT: u8 = 0x06;
const WRITE_TENSOR: u8 = 0x07;
const EXECUTE: u8 = 0x08;
const READ_TENSOR: u8 = 0x09;
const RELEASE: u8 = 0x0A;

/// Header bytes: magic, command, status, handle, id, offset, length.
fn header(
    magic: u8,
    command: u8,
    status: u8,
    handle: u8,
    id: u32,
    offset: u32,
    length: usize,
) -> Vec<u8> {
    let mut h = vec![magic, command, status, handle];
    for w in [id, offset, length as u32] {
        h.extend_from_slice(&w.to_le_bytes());
    }
    h
}

fn crc_of(parts: &[&[u8]]) -> Vec<u8> {
    let all: Vec<u8> = parts.concat();
    crc32fast::hash(&all).to_le_bytes().to_vec()
}

/// The transactions of one request frame written as `parts`.
fn request(
    command: u8,
    handle: u8,
    id: u32,
    offset: u32,
    parts: &[&[u8]],
) -> Vec<SpiTransaction<u8>> {
    let length = parts.iter().map(|p| p.len()).sum();
    let head = header(0xA5, command, 0, handle, id, offset, length);
    let mut all: Vec<&[u8]> = vec![&head];
    all.extend(parts.iter().filter(|p| !p.is_empty()));
    let crc = crc_of(&all);
    let mut t = vec![SpiTransaction::transaction_start()];
    t.extend(all.iter().map(|p| SpiTransaction::write_vec(p.to_vec())));
    t.push(SpiTransaction::write_vec(crc));
    t.push(SpiTransaction::transaction_end());
    t
}

/// The transactions of one reply frame read by the host.
fn reply(
    command: u8,
    status: u8,
    handle: u8,
    id: u32,
    offset: u32,
    payload: &[u8],
) -> Vec<SpiTransaction<u8>> {
    let head = header(0x5A, command, status, handle, id, offset, payload.len());
    let crc = crc_of(&[&head, payload]);
    read_frame(head, payload.to_vec(), crc)
}

fn read_frame(head: Vec<u8>, payload: Vec<u8>, crc: Vec<u8>) -> Vec<SpiTransaction<u8>> {
    let mut t = vec![
        SpiTransaction::transaction_start(),
        SpiTransaction::read_vec(head),
    ];
    if !payload.is_empty() {
        t.push(SpiTransaction::read_vec(payload));
    }
    t.push(SpiTransaction::read_vec(crc));
    t.push(SpiTransaction::transaction_end());
    t
}

/// A request and its OK reply (echoing handle, id and offset).
fn ok(
    command: u8,
    handle: u8,
    id: u32,
    offset: u32,
    parts: &[&[u8]],
    answer: &[u8],
) -> Vec<SpiTransaction<u8>> {
    let mut t = request(command, handle, id, offset, parts);
    t.extend(reply(command, 0, handle, id, offset, answer));
    t
}

/// A DEFINE_TENSOR payload for an unquantized f32 tensor.
fn descriptor(role: u8, dims: &[u32]) -> Vec<u8> {
    let mut d = vec![1, dims.len() as u8, role, 0];
    for k in 0..6 {
        d.extend_from_slice(&dims.get(k).copied().unwrap_or(0).to_le_bytes());
    }
    let byte_len = 4 * dims.iter().product::<u32>();
    d.extend_from_slice(&byte_len.to_le_bytes());
    d.extend_from_slice(&[0; 8]);
    d.extend_from_slice(&u32::MAX.to_le_bytes());
    d
}

fn words(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Device handle the mocked device gives partition 0.
const HANDLE: u8 = 7;
/// Chunk size in the mock tests: w0 (48 bytes) goes in two chunks.
const CHUNK: u32 = 32;

/// The frames that prepare partition 0 (op 0: FullyConnected(x, w0, b0) -> h).
fn prepare_partition0(model: &Model<'_>) -> Vec<SpiTransaction<u8>> {
    let constant = |t: usize| {
        model
            .constant_bytes(&model.tensor(t).unwrap())
            .unwrap()
            .to_vec()
    };
    let (w0, b0) = (constant(1), constant(2));
    let no_clamp = [f32::NEG_INFINITY.to_bits(), f32::INFINITY.to_bits()];
    let mut op_head = Vec::new();
    for v in [3u16, 3, 1, 2] {
        op_head.extend_from_slice(&v.to_le_bytes());
    }
    let mut t = request(PREPARE, 0, 0, 0, &[&words(&[1, 4])]);
    t.extend(reply(PREPARE, 0, HANDLE, 0, 0, &[]));
    t.extend(ok(
        DEFINE_TENSOR,
        HANDLE,
        0,
        0,
        &[&descriptor(0, &[1, 4])],
        &[],
    ));
    t.extend(ok(
        DEFINE_TENSOR,
        HANDLE,
        1,
        0,
        &[&descriptor(1, &[3, 4])],
        &[],
    ));
    t.extend(ok(
        DEFINE_TENSOR,
        HANDLE,
        2,
        0,
        &[&descriptor(1, &[3])],
        &[],
    ));
    t.extend(ok(
        DEFINE_TENSOR,
        HANDLE,
        3,
        0,
        &[&descriptor(2, &[1, 3])],
        &[],
    ));
    let op = [
        &op_head[..],
        &words(&[0, 1, 2]),
        &words(&[3]),
        &words(&no_clamp),
    ];
    t.extend(ok(DEFINE_OP, HANDLE, 0, 0, &op, &[]));
    t.extend(ok(LOAD_WEIGHTS, HANDLE, 1, 0, &[&w0[..32]], &[]));
    t.extend(ok(LOAD_WEIGHTS, HANDLE, 1, 32, &[&w0[32..]], &[]));
    t.extend(ok(LOAD_WEIGHTS, HANDLE, 2, 0, &[&b0], &[]));
    t.extend(ok(COMMIT, HANDLE, 0, 0, &[], &[]));
    t
}

/// Exchanges in [`prepare_partition0`].
const PREPARE_EXCHANGES: usize = 10;

/// The bytes of x and of the h the mocked device answers.
fn x_bytes() -> Vec<u8> {
    f32_bytes(&X)
}
fn h_bytes() -> Vec<u8> {
    f32_bytes(&[1.5, -0.25, 3.0])
}

/// WRITE_TENSOR x and EXECUTE, both OK.
fn write_and_execute() -> Vec<SpiTransaction<u8>> {
    let mut t = ok(WRITE_TENSOR, HANDLE, 0, 0, &[&x_bytes()], &[]);
    t.extend(ok(EXECUTE, HANDLE, 0, 0, &[], &[]));
    t
}

fn read_h_request() -> Vec<SpiTransaction<u8>> {
    request(READ_TENSOR, HANDLE, 3, 0, &[&words(&[12])])
}

fn ready(n: usize) -> Vec<PinTransaction> {
    vec![PinTransaction::get(State::Low); n]
}

fn mock_config() -> SpiConfig {
    SpiConfig {
        busy_timeout_us: 30,
        busy_poll_us: 10,
        max_chunk: CHUNK,
        ..SpiConfig::default()
    }
}

type MockBackend = SpiBackend<SpiMock<u8>, PinMock, NoopDelay>;

/// A backend on mocks expecting `spi` and `pin`, with handles to check them.
fn mocked(
    spi: &[SpiTransaction<u8>],
    pin: &[PinTransaction],
) -> (MockBackend, SpiMock<u8>, PinMock) {
    let (spi, pin) = (SpiMock::new(spi), PinMock::new(pin));
    let backend = SpiBackend::new(spi.clone(), pin.clone(), NoopDelay::new(), mock_config());
    (backend, spi, pin)
}

/// The planned arena with x filled in.
fn arena_with_input(model: &Model<'_>) -> Vec<u8> {
    let mut arena = vec![0u8; model.planned_arena_size()];
    let x = model.tensor(0).unwrap();
    arena[x.offset..x.offset + x.byte_len].copy_from_slice(&x_bytes());
    arena
}

mod frames;
mod simulated;
