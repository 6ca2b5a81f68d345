//! Integration tests of the `tern-export` crate and the `tern train` command:
//! training round trips, the committed fixtures, ONNX validity and bad input.

mod bad_input;
mod compare;
mod fixtures;
mod onnx_checker;
mod round_trip;
