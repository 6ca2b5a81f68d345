//! The model and the test set, linked into the image in section `.tern_data` (which
//! each board's `memory.x` places in flash, or QSPI flash on an547) and used in place:
//! nothing here is ever copied to RAM.

use crate::bench::IMAGE_BYTES;
use crate::config::{IMAGE_COUNT, MODEL_LEN};

/// A value aligned to 64 bytes, the alignment of the runtime's model data.
#[repr(C, align(64))]
pub struct Aligned64<T>(pub T);

/// The `.tern` model file (`TERN_FW_MODEL`).
// SAFETY: `.tern_data` is an ordinary read-only data section that every board's
// memory.x places in a loaded, readable region; no other symbol uses this name.
#[unsafe(link_section = ".tern_data")]
pub static MODEL: Aligned64<[u8; MODEL_LEN]> =
    Aligned64(*include_bytes!(concat!(env!("OUT_DIR"), "/model.tern")));

/// The first `IMAGE_COUNT` Fashion-MNIST test images, `IMAGE_BYTES` grey levels each.
// SAFETY: as for `MODEL`.
#[unsafe(link_section = ".tern_data")]
pub static IMAGES: [u8; IMAGE_COUNT * IMAGE_BYTES] =
    *include_bytes!(concat!(env!("OUT_DIR"), "/images.u8"));

/// The class (0..=9) of each image in `IMAGES`.
// SAFETY: as for `MODEL`.
#[unsafe(link_section = ".tern_data")]
pub static LABELS: [u8; IMAGE_COUNT] = *include_bytes!(concat!(env!("OUT_DIR"), "/labels.u8"));
