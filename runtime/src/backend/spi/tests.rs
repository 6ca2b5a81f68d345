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

// ---------------------------------------------------------------------------
// Frame layout.
// ---------------------------------------------------------------------------

#[test]
fn frame_layout_matches_hand_written_bytes() {
    // READ_TENSOR, handle 2, tensor 0x0304, offset 16, payload: 12 bytes wanted.
    let expected: [u8; 24] = [
        0xA5, 0x09, 0x00, 0x02, // magic, command, status, handle
        0x04, 0x03, 0x00, 0x00, // id
        0x10, 0x00, 0x00, 0x00, // offset
        0x04, 0x00, 0x00, 0x00, // length
        0x0C, 0x00, 0x00, 0x00, // payload
        0xEF, 0x2C, 0xE5, 0x58, // CRC-32 0x58E52CEF (zlib.crc32 of the 20 bytes before)
    ];
    let head = Header::request(Command::ReadTensor, 2, 0x0304, 0x10, 4).to_bytes();
    let payload = 12u32.to_le_bytes();
    let crc = frame::crc(&[&head, &payload]).to_le_bytes();
    assert_eq!([&head[..], &payload, &crc].concat(), expected);
    // The test encoder agrees.
    let mut encoded = header(0xA5, READ_TENSOR, 0, 2, 0x0304, 0x10, 4);
    encoded.extend_from_slice(&payload);
    encoded.extend(crc_of(&[&encoded]));
    assert_eq!(encoded, expected);
    // EXECUTE for handle 7: an empty payload; CRC 0x6FDACA15.
    let head = Header::request(Command::Execute, 7, 0, 0, 0).to_bytes();
    assert_eq!(head, [0xA5, 0x08, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(frame::crc(&[&head]), 0x6FDA_CA15);
    assert_eq!(
        Header::from_bytes(&head),
        Header::request(Command::Execute, 7, 0, 0, 0)
    );
    for code in 0..=255u8 {
        assert!(Command::from_code(code).is_none_or(|c| c as u8 == code));
    }
}

// ---------------------------------------------------------------------------
// Mocked device: exact frames and each failure kind.
// ---------------------------------------------------------------------------

#[test]
fn prepare_execute_release_send_the_documented_frames() {
    let file = test_model_file();
    let model = Model::from_bytes(file.bytes()).unwrap();
    let mut spi = prepare_partition0(&model);
    spi.extend(write_and_execute());
    spi.extend(read_h_request());
    spi.extend(reply(READ_TENSOR, 0, HANDLE, 3, 0, &h_bytes()));
    spi.extend(ok(RELEASE, HANDLE, 0, 0, &[], &[]));
    let (mut backend, mut spi_mock, mut pin) = mocked(&spi, &ready(PREPARE_EXCHANGES + 4));

    let partition = Partition::new(&model, 0, 0..1);
    let handle = backend.prepare(&partition).unwrap();
    let mut arena = arena_with_input(&model);
    backend
        .execute(handle, &mut PartitionIo::new(partition, &mut arena))
        .unwrap();
    let h = model.tensor(3).unwrap();
    assert_eq!(arena[h.offset..h.offset + h.byte_len], h_bytes());
    backend.release(handle);
    // A released handle is gone.
    let result = backend.execute(handle, &mut PartitionIo::new(partition, &mut arena));
    assert_eq!(result, Err(BackendError::InvalidHandle { handle }));
    spi_mock.done();
    pin.done();
}

#[test]
fn hello_checks_version_and_ready_bit() {
    let hello = |version: u16, flags: u16| {
        let mut t = request(HELLO, 0, 0, 0, &[]);
        let payload = [version.to_le_bytes(), flags.to_le_bytes()].concat();
        t.extend(reply(HELLO, 0, 0, 0, 0, &payload));
        t
    };
    let spi = [hello(1, 1), hello(1, 0), hello(2, 1)].concat();
    let (mut backend, mut spi_mock, mut pin) = mocked(&spi, &ready(3));
    assert!(backend.is_available());
    assert!(!backend.is_available(), "not ready");
    assert!(!backend.is_available(), "another protocol version");
    spi_mock.done();
    pin.done();
}

#[test]
fn busy_stuck_high_is_a_timeout_and_the_next_request_waits_first() {
    let file = test_model_file();
    let model = Model::from_bytes(file.bytes()).unwrap();
    let mut spi = prepare_partition0(&model);
    spi.extend(ok(WRITE_TENSOR, HANDLE, 0, 0, &[&x_bytes()], &[]));
    spi.extend(request(EXECUTE, HANDLE, 0, 0, &[]));
    spi.extend(ok(RELEASE, HANDLE, 0, 0, &[], &[]));
    let mut pin = ready(PREPARE_EXCHANGES + 1);
    // 30 µs timeout polled every 10 µs: reads at 0, 10, 20 and 30 µs.
    pin.extend(vec![PinTransaction::get(State::High); 4]);
    // RELEASE after the failure: BUSY low before the request, then before the reply.
    pin.extend(ready(2));
    let (mut backend, mut spi_mock, mut pin_mock) = mocked(&spi, &pin);

    let partition = Partition::new(&model, 0, 0..1);
    let handle = backend.prepare(&partition).unwrap();
    let mut arena = arena_with_input(&model);
    let result = backend.execute(handle, &mut PartitionIo::new(partition, &mut arena));
    assert_eq!(result, Err(BackendError::Timeout));
    backend.release(handle);
    spi_mock.done();
    pin_mock.done();
}

#[test]
fn corrupt_read_tensor_reply_is_a_crc_error() {
    let file = test_model_file();
    let model = Model::from_bytes(file.bytes()).unwrap();
    let mut spi = prepare_partition0(&model);
    spi.extend(write_and_execute());
    spi.extend(read_h_request());
    let head = header(0x5A, READ_TENSOR, 0, HANDLE, 3, 0, 12);
    let crc = crc_of(&[&head, &h_bytes()]);
    let mut corrupted = h_bytes();
    corrupted[5] ^= 0x10;
    spi.extend(read_frame(head.clone(), corrupted.clone(), crc.clone()));
    let (mut backend, mut spi_mock, mut pin) = mocked(&spi, &ready(PREPARE_EXCHANGES + 3));

    let partition = Partition::new(&model, 0, 0..1);
    let handle = backend.prepare(&partition).unwrap();
    let mut arena = arena_with_input(&model);
    let result = backend.execute(handle, &mut PartitionIo::new(partition, &mut arena));
    let expected = u32::from_le_bytes(crc.try_into().unwrap());
    let computed = crc32fast::hash(&[head, corrupted].concat());
    assert_eq!(
        result,
        Err(BackendError::Crc {
            tensor: 3,
            expected,
            computed
        })
    );
    spi_mock.done();
    pin.done();
}

#[test]
fn reply_for_another_tensor_is_a_protocol_error() {
    let file = test_model_file();
    let model = Model::from_bytes(file.bytes()).unwrap();
    let mut spi = prepare_partition0(&model);
    spi.extend(write_and_execute());
    spi.extend(read_h_request());
    spi.extend(reply(READ_TENSOR, 0, HANDLE, 4, 0, &h_bytes()));
    let (mut backend, mut spi_mock, mut pin) = mocked(&spi, &ready(PREPARE_EXCHANGES + 3));

    let partition = Partition::new(&model, 0, 0..1);
    let handle = backend.prepare(&partition).unwrap();
    let mut arena = arena_with_input(&model);
    let result = backend.execute(handle, &mut PartitionIo::new(partition, &mut arena));
    assert!(
        matches!(result, Err(BackendError::Protocol { .. })),
        "{result:?}"
    );
    spi_mock.done();
    pin.done();
}

#[test]
fn device_error_status_is_a_code() {
    let file = test_model_file();
    let model = Model::from_bytes(file.bytes()).unwrap();
    let mut spi = prepare_partition0(&model);
    spi.extend(ok(WRITE_TENSOR, HANDLE, 0, 0, &[&x_bytes()], &[]));
    spi.extend(request(EXECUTE, HANDLE, 0, 0, &[]));
    spi.extend(reply(EXECUTE, frame::status::FAILED, HANDLE, 0, 0, &[]));
    let (mut backend, mut spi_mock, mut pin) = mocked(&spi, &ready(PREPARE_EXCHANGES + 2));

    let partition = Partition::new(&model, 0, 0..1);
    let handle = backend.prepare(&partition).unwrap();
    let mut arena = arena_with_input(&model);
    let result = backend.execute(handle, &mut PartitionIo::new(partition, &mut arena));
    assert_eq!(result, Err(BackendError::Code { code: 5 }));
    spi_mock.done();
    pin.done();
}

#[test]
fn failed_prepare_releases_the_device_handle() {
    let file = test_model_file();
    let model = Model::from_bytes(file.bytes()).unwrap();
    let mut spi = request(PREPARE, 0, 0, 0, &[&words(&[1, 4])]);
    spi.extend(reply(PREPARE, 0, HANDLE, 0, 0, &[]));
    spi.extend(request(
        DEFINE_TENSOR,
        HANDLE,
        0,
        0,
        &[&descriptor(0, &[1, 4])],
    ));
    spi.extend(reply(
        DEFINE_TENSOR,
        frame::status::UNSUPPORTED,
        HANDLE,
        0,
        0,
        &[],
    ));
    spi.extend(ok(RELEASE, HANDLE, 0, 0, &[], &[]));
    // Three exchanges, plus the wait before RELEASE that follows a failure.
    let (mut backend, mut spi_mock, mut pin) = mocked(&spi, &ready(4));

    let result = backend.prepare(&Partition::new(&model, 0, 0..1));
    assert_eq!(result, Err(BackendError::Code { code: 2 }));
    spi_mock.done();
    pin.done();
}

#[test]
fn unclaimed_op_is_refused_before_any_traffic() {
    let file = test_model_file();
    let model = Model::from_bytes(file.bytes()).unwrap();
    let (mut backend, mut spi_mock, mut pin) = mocked(&[], &[]);
    let result = backend.prepare(&Partition::new(&model, 0, 0..2));
    assert!(
        matches!(result, Err(BackendError::Unsupported { op: 1, .. })),
        "{result:?}"
    );
    spi_mock.done();
    pin.done();
}

/// A bus whose every transaction fails.
struct BrokenBus;

impl ErrorType for BrokenBus {
    type Error = ErrorKind;
}

impl SpiDevice for BrokenBus {
    fn transaction(&mut self, _: &mut [Operation<'_, u8>]) -> Result<(), ErrorKind> {
        Err(ErrorKind::ModeFault)
    }
}

#[test]
fn bus_and_pin_errors_are_transport_errors() {
    let file = test_model_file();
    let model = Model::from_bytes(file.bytes()).unwrap();
    let partition = Partition::new(&model, 0, 0..1);
    // The failed HELLO makes the next request wait for BUSY low first.
    let mut pin = PinMock::new(&ready(1));
    let mut backend = SpiBackend::new(BrokenBus, pin.clone(), NoopDelay::new(), mock_config());
    assert!(!backend.is_available());
    let result = backend.prepare(&partition);
    assert_eq!(
        result,
        Err(BackendError::Transport {
            what: "SPI mode fault"
        })
    );
    pin.done();

    let pin_error =
        PinTransaction::get(State::Low).with_error(MockError::Io(std::io::ErrorKind::Other));
    let (mut backend, mut spi_mock, mut pin) =
        mocked(&request(PREPARE, 0, 0, 0, &[&words(&[1, 4])]), &[pin_error]);
    let result = backend.prepare(&partition);
    assert!(
        matches!(result, Err(BackendError::Transport { .. })),
        "{result:?}"
    );
    spi_mock.done();
    pin.done();
}

// ---------------------------------------------------------------------------
// A simulated accelerator behind the real interpreter.
// ---------------------------------------------------------------------------

/// One tensor on the simulated device (stored as words, for f32 alignment).
struct DeviceTensor {
    dims: Vec<usize>,
    byte_len: usize,
    words: Vec<u32>,
}

impl DeviceTensor {
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.words)[..self.byte_len]
    }
    fn floats(&self) -> &[f32] {
        &bytemuck::cast_slice(&self.words)[..self.byte_len / 4]
    }
}

struct DeviceOp {
    opcode: u16,
    inputs: Vec<u32>,
    outputs: Vec<u32>,
    params: Vec<u32>,
}

#[derive(Default)]
struct DevicePartition {
    tensors: BTreeMap<u32, DeviceTensor>,
    ops: Vec<DeviceOp>,
    committed: bool,
}

/// An accelerator on the far side of the bus: decodes requests with the
/// protocol's checks, keeps partitions in its own memory (built only from what
/// the frames carry), runs f32 FullyConnected with the runtime's kernel, and
/// answers. Can corrupt its READ_TENSOR replies for one tensor.
#[derive(Default)]
struct FakeAccelerator {
    partitions: Vec<Option<DevicePartition>>,
    reply: Vec<u8>,
    corrupt_reads_of: Option<u32>,
    executions: usize,
}

impl ErrorType for FakeAccelerator {
    type Error = ErrorKind;
}

impl SpiDevice for FakeAccelerator {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), ErrorKind> {
        if operations
            .iter()
            .all(|op| matches!(op, Operation::Write(_)))
        {
            let mut request = Vec::new();
            for op in operations.iter() {
                if let Operation::Write(bytes) = op {
                    request.extend_from_slice(bytes);
                }
            }
            self.reply = self.answer(&request);
            return Ok(());
        }
        let mut at = 0;
        for op in operations.iter_mut() {
            let Operation::Read(buffer) = op else {
                return Err(ErrorKind::Other);
            };
            buffer.copy_from_slice(&self.reply[at..at + buffer.len()]);
            at += buffer.len();
        }
        assert_eq!(at, self.reply.len(), "the host read a different length");
        Ok(())
    }
}

impl FakeAccelerator {
    /// The reply frame to `request`.
    fn answer(&mut self, request: &[u8]) -> Vec<u8> {
        let head = Header::from_bytes(request[..16].try_into().unwrap());
        let payload = &request[16..request.len() - 4];
        let reply_len = match Command::from_code(head.command) {
            Some(Command::Hello) => 4,
            Some(Command::ReadTensor) => u32::from_le_bytes(payload[..4].try_into().unwrap()),
            _ => 0,
        };
        let crc = u32::from_le_bytes(request[request.len() - 4..].try_into().unwrap());
        let well_formed = head.magic == frame::MAGIC_REQUEST
            && head.length as usize == payload.len()
            && crc32fast::hash(&request[..request.len() - 4]) == crc;
        let mut out = vec![0u8; reply_len as usize];
        let (status, handle) = if well_formed {
            self.run(&head, payload, &mut out)
        } else {
            (frame::status::BAD_FRAME, head.handle)
        };
        let head = Header {
            handle,
            ..head.reply(status, reply_len)
        }
        .to_bytes();
        let crc = crc32fast::hash(&[&head[..], &out].concat());
        if self.corrupt_reads_of == Some(Header::from_bytes(&head).id)
            && head[1] == Command::ReadTensor as u8
        {
            out[0] ^= 0x01;
        }
        [&head[..], &out, &crc.to_le_bytes()].concat()
    }

    /// Carries out a well-formed request: (status, handle of the reply).
    fn run(&mut self, head: &Header, payload: &[u8], out: &mut [u8]) -> (u8, u8) {
        use frame::status::{BAD_FRAME, BAD_HANDLE, FAILED, OK, UNSUPPORTED};
        let word = |at: usize| u32::from_le_bytes(payload[at..at + 4].try_into().unwrap());
        let command = Command::from_code(head.command);
        if command == Some(Command::Hello) {
            out.copy_from_slice(&[1, 0, 1, 0]);
            return (OK, 0);
        }
        if command == Some(Command::Prepare) {
            self.partitions.push(Some(DevicePartition::default()));
            // Handles count from 1 here, so a mix-up with slot indices shows.
            return (OK, self.partitions.len() as u8);
        }
        let slot = usize::from(head.handle).wrapping_sub(1);
        let Some(Some(p)) = self.partitions.get_mut(slot) else {
            return (BAD_HANDLE, head.handle);
        };
        let status = match command {
            Some(Command::DefineTensor) => {
                let rank = usize::from(payload[1]);
                let dims = (0..rank).map(|k| word(4 + 4 * k) as usize).collect();
                let byte_len = word(28) as usize;
                let words = vec![0u32; byte_len.div_ceil(4)];
                let tensor = DeviceTensor {
                    dims,
                    byte_len,
                    words,
                };
                if payload[0] == DType::F32 as u8 {
                    p.tensors.insert(head.id, tensor);
                    OK
                } else {
                    UNSUPPORTED
                }
            }
            Some(Command::DefineOp) => {
                let count =
                    |at: usize| usize::from(u16::from_le_bytes([payload[at], payload[at + 1]]));
                let list = |from: usize, n: usize| {
                    (from..from + n)
                        .map(|k| word(8 + 4 * k))
                        .collect::<Vec<_>>()
                };
                let (n_in, n_out, n_params) = (count(2), count(4), count(6));
                let op = DeviceOp {
                    opcode: u16::from_le_bytes([payload[0], payload[1]]),
                    inputs: list(0, n_in),
                    outputs: list(n_in, n_out),
                    params: list(n_in + n_out, n_params),
                };
                if op.opcode == Opcode::FullyConnected as u16 {
                    p.ops.push(op);
                    OK
                } else {
                    UNSUPPORTED
                }
            }
            Some(Command::LoadWeights | Command::WriteTensor) => {
                let at = head.offset as usize;
                match p.tensors.get_mut(&head.id) {
                    Some(t) if at + payload.len() <= t.byte_len => {
                        t.bytes_mut()[at..at + payload.len()].copy_from_slice(payload);
                        OK
                    }
                    _ => BAD_FRAME,
                }
            }
            Some(Command::Commit) => {
                p.committed = true;
                OK
            }
            Some(Command::Execute) if p.committed => {
                self.executions += 1;
                if p.ops.iter().all(|op| fully_connected(&mut p.tensors, op)) {
                    OK
                } else {
                    FAILED
                }
            }
            Some(Command::ReadTensor) => {
                let at = head.offset as usize;
                match p.tensors.get_mut(&head.id) {
                    Some(t) if at + out.len() <= t.byte_len => {
                        out.copy_from_slice(&t.bytes_mut()[at..at + out.len()]);
                        OK
                    }
                    _ => BAD_FRAME,
                }
            }
            Some(Command::Release) => {
                self.partitions[slot] = None;
                OK
            }
            _ => BAD_FRAME,
        };
        (status, head.handle)
    }
}

/// f32 FullyConnected on the device's own tensors, with the runtime's kernel.
fn fully_connected(tensors: &mut BTreeMap<u32, DeviceTensor>, op: &DeviceOp) -> bool {
    let get = |t: u32| tensors.get(&t);
    let (Some(x), Some(w)) = (get(op.inputs[0]), get(op.inputs[1])) else {
        return false;
    };
    let (n, k) = (w.dims[0], w.dims[1]);
    let x = x.floats().to_vec();
    let w = w.floats().to_vec();
    let bias = op
        .inputs
        .get(2)
        .and_then(|&b| get(b))
        .map(|b| b.floats().to_vec());
    let clamp = crate::ops::ClampWords {
        min: op.params[0],
        max: op.params[1],
    }
    .as_f32();
    let Some(y) = tensors.get_mut(&op.outputs[0]) else {
        return false;
    };
    let y: &mut [f32] = bytemuck::cast_slice_mut(&mut y.words);
    let rows = x.len() / k;
    crate::kernels::fully_connected_f32::fully_connected_f32(
        &crate::kernels::FullyConnectedF32Args {
            input: &x,
            weights: &w,
            bias: bias.as_deref(),
            dims: crate::kernels::FullyConnectedDims {
                rows,
                in_features: k,
                out_features: n,
            },
            clamp,
        },
        &mut y[..rows * n],
    );
    true
}

/// BUSY of a device that is always done by the time the host looks.
struct NeverBusy;

impl PinErrorType for NeverBusy {
    type Error = core::convert::Infallible;
}

impl InputPin for NeverBusy {
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        Ok(false)
    }
    fn is_low(&mut self) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

type FakeBackend = SpiBackend<FakeAccelerator, NeverBusy, NoopDelay>;

fn fake_backend(device: FakeAccelerator) -> FakeBackend {
    // 8-byte chunks: every tensor of the test model spans several frames.
    let config = SpiConfig {
        max_chunk: 8,
        ..SpiConfig::default()
    };
    SpiBackend::new(device, NeverBusy, NoopDelay::new(), config)
}

/// The model's output bits for `x` on the CPU alone.
fn cpu_output(model: &Model<'_>, x: &[f32]) -> Vec<u32> {
    let mut arena = vec![0u8; model.arena_size()];
    let mut interp = Interpreter::new(model, &mut arena).unwrap();
    interp.set_input_f32(0, x).unwrap();
    interp.invoke().unwrap();
    interp
        .output(0)
        .unwrap()
        .as_f32()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

fn output_bits(interp: &Interpreter<'_, '_>) -> Vec<u32> {
    interp
        .output(0)
        .unwrap()
        .as_f32()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

/// Both FullyConnected ops run on the simulated accelerator; the outputs are
/// bit-identical to the CPU's (tolerance 0: the device runs the same f32 kernel
/// on the same bytes, so any difference is a transfer bug).
#[test]
fn simulated_accelerator_matches_the_cpu_bit_for_bit() {
    let file = test_model_file();
    let model = Model::from_bytes(file.bytes()).unwrap();
    let mut backend = fake_backend(FakeAccelerator::default());
    let mut arena = vec![0u8; model.arena_size()];
    {
        let mut interp =
            Interpreter::with_backend(&model, &mut arena, &mut backend, OnFailure::Error).unwrap();
        let placed: Vec<_> = interp
            .partitions()
            .map(|p| (p.first_op, p.end_op, p.on_backend))
            .collect();
        assert_eq!(placed, [(0, 1, true), (2, 3, true)]);
        for x in [X, [-2.0, 0.0, 1.0, 0.25]] {
            interp.set_input_f32(0, &x).unwrap();
            interp.invoke().unwrap();
            assert_eq!(output_bits(&interp), cpu_output(&model, &x));
        }
        let stats = interp.offload_stats();
        assert_eq!((stats.backend_runs, stats.cpu_fallbacks), (4, 0));
    }
    let (device, _, _) = backend.into_parts();
    assert_eq!(device.executions, 4);
    assert!(
        device.partitions.iter().all(Option::is_none),
        "dropping the interpreter releases"
    );
}

/// A corrupted READ_TENSOR reply for the model output: the CPU redoes that
/// partition and the output is still bit-identical.
#[test]
fn corrupted_reply_falls_back_to_the_cpu_with_identical_output() {
    let file = test_model_file();
    let model = Model::from_bytes(file.bytes()).unwrap();
    let device = FakeAccelerator {
        corrupt_reads_of: Some(7),
        ..FakeAccelerator::default()
    };
    let mut backend = fake_backend(device);
    let mut arena = vec![0u8; model.arena_size()];
    let mut interp =
        Interpreter::with_backend(&model, &mut arena, &mut backend, OnFailure::CpuFallback)
            .unwrap();
    interp.set_input_f32(0, &X).unwrap();
    interp.invoke().unwrap();
    assert_eq!(output_bits(&interp), cpu_output(&model, &X));
    let stats = interp.offload_stats();
    assert_eq!((stats.backend_runs, stats.cpu_fallbacks), (1, 1));
}

/// The same corruption with `OnFailure::Error`: a typed error naming the partition.
#[test]
fn corrupted_reply_with_on_failure_error_is_a_backend_error() {
    let file = test_model_file();
    let model = Model::from_bytes(file.bytes()).unwrap();
    let device = FakeAccelerator {
        corrupt_reads_of: Some(7),
        ..FakeAccelerator::default()
    };
    let mut backend = fake_backend(device);
    let mut arena = vec![0u8; model.arena_size()];
    let mut interp =
        Interpreter::with_backend(&model, &mut arena, &mut backend, OnFailure::Error).unwrap();
    interp.set_input_f32(0, &X).unwrap();
    let result = interp.invoke();
    assert!(
        matches!(
            result,
            Err(Error::Backend {
                partition: 1,
                first_op: 2,
                end_op: 3,
                error: BackendError::Crc { tensor: 7, .. },
                ..
            })
        ),
        "{result:?}"
    );
}
