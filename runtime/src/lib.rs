//! Tern on-device runtime.
//!
//! This crate runs `.tern` models on ARM CPUs with no heap allocation while running.
//! It is `#![no_std]`; the `alloc` and `std` features only add conveniences.
//! Nothing here knows about ONNX or training: that is the `tern-export` crate's job.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[cfg(target_endian = "big")]
compile_error!(
    "tern-runtime reads its file format in place and supports little-endian targets only"
);

pub mod backend;
pub mod crc32;
pub mod error;
pub mod format;
mod interpreter;
pub mod kernels;
pub mod model;
mod offload;
pub mod ops;
pub mod quant;
mod validate;

pub use backend::{Backend, BackendError, OnFailure};
pub use error::{Error, Result};
pub use format::{DType, Opcode, Storage};
pub use interpreter::{Interpreter, TensorRef};
pub use kernels::Int8Kernels;
pub use kernels::gemm_s8::GemmS8;
pub use model::{Model, OpInfo, Quant, TensorInfo};
pub use offload::{OffloadStats, PartitionStatus};

/// A heap copy of a model file with the alignment [`Model::from_bytes`] needs
/// (for files read into memory rather than mapped).
#[cfg(feature = "alloc")]
pub struct AlignedBytes {
    words: alloc::vec::Vec<Block16>,
    len: usize,
}

#[cfg(feature = "alloc")]
impl AlignedBytes {
    /// Copies `bytes` into 16-byte aligned storage.
    pub fn new(bytes: &[u8]) -> AlignedBytes {
        let mut words = alloc::vec![Block16([0; 16]); bytes.len().div_ceil(16)];
        bytemuck::cast_slice_mut::<Block16, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        AlignedBytes {
            words,
            len: bytes.len(),
        }
    }
}

#[cfg(feature = "alloc")]
impl core::ops::Deref for AlignedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &bytemuck::cast_slice::<Block16, u8>(&self.words)[..self.len]
    }
}

/// Version of the runtime crate, as `major.minor.patch`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod tests {
    #[test]
    fn version_is_semver() {
        assert_eq!(super::VERSION.split('.').count(), 3);
    }
}

/// Sixteen bytes aligned to 16 (`u128` is only 8-aligned on some targets).
#[cfg(feature = "alloc")]
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Block16([u8; 16]);

// SAFETY: `Block16` is 16 bytes of `u8` with alignment 16 and size 16: no padding,
// and every bit pattern is valid.
#[cfg(feature = "alloc")]
unsafe impl bytemuck::Zeroable for Block16 {}
// SAFETY: as above.
#[cfg(feature = "alloc")]
unsafe impl bytemuck::Pod for Block16 {}
