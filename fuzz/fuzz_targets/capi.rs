//! The C ABI of `libtern` (targets/capi, include/tern.h) as a C program drives it:
//! model from a buffer, arena size, interpreter over a caller arena (optionally with
//! the loopback offload backend), input/output info, inputs in and outputs out,
//! invoke. The input is a `.tern` file (header CRC fixed up after mutation) followed
//! by a script: the bytes after the file's stated length, read as calls with their
//! indices and sizes, valid and not. `TERN_STATUS_PANIC` (a panic caught at the
//! boundary) or any panic is a bug; so is a call that succeeds with a wrong size.
#![no_main]

use core::ffi::c_void;
use core::ptr;

use libfuzzer_sys::fuzz_target;
use tern::*;

// Exported by the library (backend.rs) for C callers; not re-exported for Rust ones.
unsafe extern "C" {
    fn tern_backend_loopback_init(
        storage: *mut TernLoopback,
        backend: *mut TernBackend,
    ) -> TernStatus;
}
use tern_fuzz::{ARENA_CAP, reseal, split_tail};
use tern_runtime::AlignedBytes;

/// Fails the run on a caught panic; returns the status otherwise.
fn checked(status: TernStatus, call: &str) -> TernStatus {
    assert!(
        status != TernStatus::Panic,
        "{call} caught a panic: {}",
        last_error()
    );
    status
}

fn last_error() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: `buffer` has 256 writable bytes.
    let len = unsafe { tern_last_error_message_copy(buffer.as_mut_ptr().cast(), buffer.len()) };
    String::from_utf8_lossy(&buffer[..len.min(255)]).into_owned()
}

/// Reads the script one byte at a time (0 past its end).
struct Script<'a>(core::slice::Iter<'a, u8>);

impl Script<'_> {
    fn byte(&mut self) -> u8 {
        self.0.next().copied().unwrap_or(0)
    }

    /// An index: mostly small (valid ones), sometimes far out of range.
    fn index(&mut self) -> usize {
        match self.byte() {
            b @ 0..=250 => usize::from(b % 4),
            251 => usize::MAX,
            b => usize::from(b) << 20,
        }
    }

    /// `exact` or a size near it, zero, or absurd.
    fn size(&mut self, exact: usize) -> usize {
        match self.byte() % 8 {
            0..=3 => exact,
            4 => exact.wrapping_add(1),
            5 => exact.wrapping_sub(1),
            6 => 0,
            _ => usize::MAX / 2,
        }
    }
}

fn info(model: &TernModel, input: bool, index: usize) -> Option<TernTensorInfo> {
    let mut info = core::mem::MaybeUninit::<TernTensorInfo>::uninit();
    // SAFETY: `model` is initialized storage, `info` writable.
    let status = unsafe {
        if input {
            tern_model_input_info(model, index, info.as_mut_ptr())
        } else {
            tern_model_output_info(model, index, info.as_mut_ptr())
        }
    };
    // SAFETY: OK means the function wrote `info`.
    (checked(status, "tensor info") == TernStatus::Ok).then(|| unsafe { info.assume_init() })
}

/// Requires a size check: a copy of `len` bytes succeeds only when `len` is the
/// tensor's byte size.
fn sized(status: TernStatus, call: &str, len: usize, exact: Option<usize>) {
    if checked(status, call) == TernStatus::Ok {
        assert_eq!(Some(len), exact, "{call} accepted a wrong size");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut file = data.to_vec();
    reseal(&mut file);
    let (_, tail) = split_tail(&file);
    let mut script = Script(tail.iter());
    let buffer = AlignedBytes::new(&file);
    let mut model: Box<TernModel> = Box::new(unsafe_zeroed());

    // A NULL buffer and an empty length are argument errors, not crashes.
    // SAFETY: `model` is writable storage; NULL data is allowed.
    let status = unsafe { tern_model_init(&mut *model, ptr::null(), file.len()) };
    assert_eq!(checked(status, "init(NULL)"), TernStatus::NullPointer);
    // SAFETY: `buffer` holds `file.len()` bytes and outlives the model.
    let status = unsafe { tern_model_init(&mut *model, buffer.as_ptr(), buffer.len()) };
    if checked(status, "tern_model_init") != TernStatus::Ok {
        return;
    }
    let (mut arena_size, mut planned, mut inputs, mut outputs) = (0, 0, 0, 0);
    let (mut major, mut minor) = (0u16, 0u16);
    // SAFETY: `model` is initialized; every out pointer is writable.
    unsafe {
        checked(
            tern_model_arena_size(&*model, &mut arena_size),
            "arena_size",
        );
        checked(
            tern_model_planned_arena_size(&*model, &mut planned),
            "planned",
        );
        checked(tern_model_input_count(&*model, &mut inputs), "input_count");
        checked(
            tern_model_output_count(&*model, &mut outputs),
            "output_count",
        );
        checked(
            tern_model_format_version(&*model, &mut major, &mut minor),
            "version",
        );
        checked(tern_model_verify_data(&*model), "verify_data");
        checked(
            tern_model_arena_size(&*model, ptr::null_mut()),
            "arena_size(NULL)",
        );
    }
    if arena_size > ARENA_CAP {
        // SAFETY: initialized.
        checked(unsafe { tern_model_deinit(&mut *model) }, "model_deinit");
        return;
    }

    // The arena: exactly the size asked for, or one byte short, from an offset that
    // breaks its alignment (any alignment must work at `arena_size`).
    let shift = usize::from(script.byte() % 64);
    let short = script.byte() % 8 == 0;
    let arena_len = if short {
        arena_size.saturating_sub(1)
    } else {
        arena_size
    };
    let mut arena = vec![0u8; arena_len + shift];
    let mut interpreter: Box<TernInterpreter> = Box::new(unsafe_zeroed());
    let mut loopback: Box<TernLoopback> = Box::new(unsafe_zeroed());
    let mut backend: Box<TernBackend> = Box::new(unsafe_zeroed());
    let with_backend = script.byte() % 4 == 0;
    // SAFETY: all storage is boxed (stays in place) and outlives the interpreter;
    // the arena slice is `arena_len` writable bytes used by nothing else.
    let status = unsafe {
        let arena = arena.as_mut_ptr().add(shift);
        if with_backend {
            checked(
                tern_backend_loopback_init(&mut *loopback, &mut *backend),
                "loopback_init",
            );
            tern_interpreter_init_with_backend(
                &mut *interpreter,
                &*model,
                arena,
                arena_len,
                &mut *backend,
                i32::from(script.byte() % 2),
            )
        } else {
            tern_interpreter_init(&mut *interpreter, &*model, arena, arena_len)
        }
    };
    if checked(status, "interpreter_init") == TernStatus::Ok {
        let mut count = 0;
        // SAFETY: initialized interpreter; writable out pointers.
        unsafe {
            checked(
                tern_interpreter_partition_count(&mut *interpreter, &mut count),
                "partitions",
            );
            let mut partition = core::mem::MaybeUninit::<TernPartitionInfo>::uninit();
            let index = script.index();
            checked(
                tern_interpreter_partition(&mut *interpreter, index, partition.as_mut_ptr()),
                "partition",
            );
            let (mut runs, mut fallbacks) = (0u64, 0u64);
            checked(
                tern_interpreter_offload_stats(&mut *interpreter, &mut runs, &mut fallbacks),
                "offload_stats",
            );
        }
        run_script(&model, &mut interpreter, &mut script);
        // SAFETY: initialized.
        checked(
            unsafe { tern_interpreter_deinit(&mut *interpreter) },
            "deinit",
        );
    } else {
        assert!(
            short || status != TernStatus::ArenaTooSmall,
            "an arena of tern_model_arena_size bytes was refused: {}",
            last_error()
        );
    }
    // SAFETY: initialized (a second deinit is a NOT_INITIALIZED error, not a crash).
    unsafe {
        checked(tern_model_deinit(&mut *model), "model_deinit");
        let again = tern_model_deinit(&mut *model);
        assert_eq!(
            checked(again, "model_deinit twice"),
            TernStatus::NotInitialized
        );
    }
});

/// Zeroed opaque storage: the documented "not initialized" state of every handle.
fn unsafe_zeroed<T>() -> T {
    // SAFETY: used only for the C API's opaque handle structs (arrays of u64) and
    // `TernBackend` (pointers and optional function pointers), for which all zero
    // bytes is a valid value.
    unsafe { core::mem::zeroed() }
}

fn run_script(model: &TernModel, interpreter: &mut TernInterpreter, script: &mut Script<'_>) {
    let mut scratch: Vec<u8> = Vec::new();
    for _ in 0..32 {
        let Some(&op) = script.0.clone().next() else {
            break;
        };
        script.byte();
        let index = script.index();
        let input = info(model, true, index);
        let output = info(model, false, index);
        // SAFETY (every call below): `interpreter` and `model` are initialized boxed
        // storage; data pointers point to `len` bytes of `scratch` (or are NULL only
        // with the NULL check as the expected outcome).
        unsafe {
            match op % 10 {
                0 => {
                    let exact = input.map(|i| i.byte_size);
                    let len = script.size(exact.unwrap_or(4));
                    if len > ARENA_CAP {
                        let status =
                            tern_interpreter_set_input(interpreter, index, ptr::null(), len);
                        sized(status, "set_input(NULL)", len, None);
                        continue;
                    }
                    scratch.clear();
                    scratch.extend((0..len).map(|_| script.byte()));
                    let status = tern_interpreter_set_input(
                        interpreter,
                        index,
                        scratch.as_ptr().cast(),
                        len,
                    );
                    sized(status, "set_input", len, exact);
                }
                1 => {
                    let exact = input.map(|i| i.element_count);
                    let count = script.size(exact.unwrap_or(1));
                    if count > ARENA_CAP {
                        let status =
                            tern_interpreter_set_input_f32(interpreter, index, ptr::null(), count);
                        checked(status, "set_input_f32(NULL)");
                        continue;
                    }
                    let values: Vec<f32> = (0..count)
                        .map(|k| f32::from(script.byte()) - 128.0 + k as f32 * 0.25)
                        .collect();
                    let status =
                        tern_interpreter_set_input_f32(interpreter, index, values.as_ptr(), count);
                    checked(status, "set_input_f32");
                }
                2 => {
                    let (mut data, mut len) = (ptr::null_mut::<c_void>(), 0usize);
                    let status =
                        tern_interpreter_input_buffer(interpreter, index, &mut data, &mut len);
                    if checked(status, "input_buffer") == TernStatus::Ok {
                        assert_eq!(Some(len), input.map(|i| i.byte_size), "input_buffer length");
                        let bytes = core::slice::from_raw_parts_mut(data.cast::<u8>(), len);
                        let fill = script.byte();
                        bytes.iter_mut().for_each(|b| *b = fill);
                    }
                }
                3 | 4 => {
                    checked(tern_interpreter_invoke(interpreter), "invoke");
                }
                5 => {
                    let exact = output.map(|o| o.byte_size);
                    let len = script.size(exact.unwrap_or(4));
                    if len > ARENA_CAP {
                        let status =
                            tern_interpreter_get_output(interpreter, index, ptr::null_mut(), len);
                        sized(status, "get_output(NULL)", len, None);
                        continue;
                    }
                    scratch.resize(len, 0);
                    let status = tern_interpreter_get_output(
                        interpreter,
                        index,
                        scratch.as_mut_ptr().cast(),
                        len,
                    );
                    sized(status, "get_output", len, exact);
                }
                6 => {
                    let exact = output.map(|o| o.element_count);
                    let count = script.size(exact.unwrap_or(1));
                    if count > ARENA_CAP {
                        let status = tern_interpreter_get_output_f32(
                            interpreter,
                            index,
                            ptr::null_mut(),
                            count,
                        );
                        checked(status, "get_output_f32(NULL)");
                        continue;
                    }
                    let mut values = vec![0f32; count];
                    let status = tern_interpreter_get_output_f32(
                        interpreter,
                        index,
                        values.as_mut_ptr(),
                        count,
                    );
                    if checked(status, "get_output_f32") == TernStatus::Ok {
                        assert_eq!(Some(count), exact, "get_output_f32 accepted a wrong count");
                    }
                }
                7 => {
                    let (mut data, mut len) = (ptr::null::<c_void>(), 0usize);
                    let status =
                        tern_interpreter_output_buffer(interpreter, index, &mut data, &mut len);
                    if checked(status, "output_buffer") == TernStatus::Ok {
                        assert_eq!(
                            Some(len),
                            output.map(|o| o.byte_size),
                            "output_buffer length"
                        );
                        let bytes = core::slice::from_raw_parts(data.cast::<u8>(), len);
                        std::hint::black_box(bytes.iter().fold(0u8, |a, &b| a ^ b));
                    }
                }
                8 => {
                    // NULL out pointers and a NULL handle: argument errors.
                    let status = tern_model_input_info(model, index, ptr::null_mut());
                    assert_ne!(checked(status, "input_info(NULL)"), TernStatus::Ok);
                    let status = tern_interpreter_invoke(ptr::null_mut());
                    assert_eq!(checked(status, "invoke(NULL)"), TernStatus::NullPointer);
                }
                _ => {
                    let status = tern_interpreter_set_input(interpreter, index, ptr::null(), 0);
                    assert_ne!(checked(status, "set_input(NULL, 0)"), TernStatus::Ok);
                }
            }
        }
    }
}
