//! Tern's host side: training Fashion-MNIST classifiers with burn, writing
//! them as ONNX, and (in later stages) converting ONNX to `.tern` files.
//!
//! This crate may use `std`, threads and large dependencies; nothing in it is
//! linked into firmware. The on-device runtime is the `tern-runtime` crate.

pub mod cli;
pub mod compare;
pub mod conformance;
pub mod convert;
pub mod data;
pub mod device;
pub mod error;
pub mod models;
pub mod onnx;
pub mod pipeline;
pub mod plot;
pub mod tools;
pub mod train;

pub use error::{Error, Result};
