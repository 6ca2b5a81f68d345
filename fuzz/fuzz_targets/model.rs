//! `Model::from_bytes` + `Interpreter` + `invoke` on a mutated `.tern` file.
//!
//! The header CRC is recomputed after mutation (unless the input stores
//! `KEEP_CRC`), so that mutations reach the validator behind it and every op's
//! load-time check, then the kernels. The bytes after the file's stated length fill
//! the model inputs and pick the int8 kernels. Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_fuzz::{load_and_run, reseal, split_tail};

fuzz_target!(|data: &[u8]| {
    let mut file = data.to_vec();
    reseal(&mut file);
    let (file, tail) = split_tail(&file);
    load_and_run(file, tail);
});
