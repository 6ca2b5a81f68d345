//! What the fuzz targets share: the header checksum fix-up, and loading and running
//! a `.tern` file the way an application does (accessors, interpreter, inputs,
//! invoke, outputs). Any panic here is a bug: the runtime promises a typed error for
//! every damaged or hostile model file.

use tern_runtime::format::{self, HEADER_LEN};
use tern_runtime::{AlignedBytes, GemmS8, Int8Kernels, Interpreter, Model};

/// Largest arena a fuzz input may ask for: keeps executions fast and memory flat
/// (the seeds need at most a few KiB).
pub const ARENA_CAP: usize = 1 << 20;

/// A stored header CRC with this value is left as it is, so that the checksum
/// check itself runs too; every other input is resealed.
pub const KEEP_CRC: u32 = u32::MAX;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Rewrites the header CRC-32 (of bytes `16..meta_offset + meta_len`, see
/// runtime/FORMAT.md) after a mutation, so that mutations reach the validation
/// behind the checksum. Leaves files too short to hold the checked range alone.
pub fn reseal(bytes: &mut [u8]) {
    if u32_at(bytes, format::header::HEADER_CRC) == Some(KEEP_CRC) {
        return;
    }
    let (Some(meta_offset), Some(meta_len)) = (
        u32_at(bytes, format::header::META_OFFSET),
        u32_at(bytes, format::header::META_LEN),
    ) else {
        return;
    };
    let meta_end = meta_offset as usize + meta_len as usize;
    if (HEADER_LEN..=bytes.len()).contains(&meta_end) {
        let crc = crc32fast::hash(&bytes[16..meta_end]);
        let at = format::header::HEADER_CRC;
        bytes[at..at + 4].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Splits a fuzz input into the model file and the bytes after its stated length
/// (the loader ignores them), which feed the model inputs and pick the int8 kernels.
pub fn split_tail(data: &[u8]) -> (&[u8], &[u8]) {
    let file_len = u64_at(data, format::header::FILE_LEN).unwrap_or(0);
    let cut = usize::try_from(file_len).map_or(data.len(), |n| n.min(data.len()));
    // The whole input is the file (a stated length past the end is the loader's
    // error to report); the tail is what lies past the stated length.
    (data, &data[cut..])
}

/// The int8 kernel variant chosen by a tail byte.
fn int8_kernels(choice: u8) -> Int8Kernels {
    match choice % 4 {
        0 => Int8Kernels::Fast,
        1 => Int8Kernels::Reference,
        2 => Int8Kernels::Gemm(GemmS8::Portable),
        _ => Int8Kernels::Gemm(GemmS8::ALL[usize::from(choice / 4) % GemmS8::ALL.len()]),
    }
}

/// Loads `file` (any bytes) and, when it validates and its arena is at most
/// [`ARENA_CAP`], runs it once with its inputs filled from `tail` (repeated; zeros
/// when empty) and reads every output. Returns whether it loaded.
pub fn load_and_run(file: &[u8], tail: &[u8]) -> bool {
    let aligned = AlignedBytes::new(file);
    let Ok(model) = Model::from_bytes(&aligned) else {
        return false;
    };
    // Everything a tool reads from a loaded model.
    let _ = model.verify_data();
    let _ = (model.version(), model.producer(), model.name());
    let _ = model.metadata().count();
    for i in 0..model.tensor_count() {
        let _ = model
            .tensor(i)
            .map(|t| model.constant_bytes(&t).map(<[u8]>::len));
    }
    for i in 0..model.op_count() {
        let _ = model.op(i);
    }
    if model.arena_size() > ARENA_CAP {
        return true;
    }
    let mut arena = vec![0u8; model.arena_size()];
    let mut interpreter = match Interpreter::new(&model, &mut arena) {
        Ok(interpreter) => interpreter,
        Err(e) => panic!("a loaded model's interpreter failed over its own arena size: {e}"),
    };
    interpreter.set_int8_kernels(int8_kernels(tail.first().copied().unwrap_or(0)));
    let mut source = tail.iter().copied().cycle();
    for i in 0..model.input_count() {
        let Ok((_, bytes)) = interpreter.input_mut(i) else {
            continue;
        };
        if !tail.is_empty() {
            bytes
                .iter_mut()
                .for_each(|b| *b = source.next().unwrap_or(0));
        }
    }
    if interpreter.invoke().is_ok() {
        for i in 0..model.output_count() {
            if let Ok(output) = interpreter.output(i) {
                let mut values = vec![0f32; output.info.len()];
                let _ = output.read_f32(&mut values);
            }
        }
    }
    true
}
