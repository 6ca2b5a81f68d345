//! Tern's tools. On the host (the default `host` feature): training Fashion-MNIST
//! classifiers with burn, writing them as ONNX, converting ONNX to `.tern` files and
//! comparing the result with its source. Everywhere, the host and a Cortex-A board
//! alike: running, evaluating, benchmarking and inspecting `.tern` files.
//!
//! This crate may use `std` and threads; nothing in it is linked into firmware. The
//! on-device runtime is the `tern-runtime` crate. A build without `host` depends on
//! no training or ONNX crate, so that `tern` cross-compiles for aarch64 Linux. The
//! `convert` feature alone (which `host` includes) keeps the converter and the ONNX
//! builder without training or the CLI's host commands.

pub mod bench;
pub mod classify;
pub mod cli;
#[cfg(feature = "host")]
pub mod compare;
#[cfg(feature = "convert")]
pub mod convert;
pub mod data;
#[cfg(feature = "host")]
pub mod device;
pub mod error;
pub mod metrics;
#[cfg(feature = "host")]
pub mod models;
#[cfg(feature = "convert")]
pub mod onnx;
#[cfg(feature = "host")]
pub mod pipeline;
#[cfg(feature = "host")]
pub mod plot;
pub mod profile;
pub mod tools;
#[cfg(feature = "host")]
pub mod train;

pub use error::{Error, Result};
