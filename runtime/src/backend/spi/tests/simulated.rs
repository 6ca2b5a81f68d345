//! A simulated accelerator that runs a real model through the interpreter.

use super::*;

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
