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

pub mod kernels;
pub mod quant;

/// Version of the runtime crate, as `major.minor.patch`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod tests {
    #[test]
    fn version_is_semver() {
        assert_eq!(super::VERSION.split('.').count(), 3);
    }
}
