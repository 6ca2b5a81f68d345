//! The exact frames of each request and each failure kind.

use super::*;

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
