//! Integration tests of the converter and the runtime: accuracy of converted
//! models against tract, the ONNX model zoo, bad input, and the no-allocation
//! guarantee of `invoke`.

mod bad_input;
mod cnn_accuracy;
mod fuzz_regressions;
mod model_zoo;
mod no_alloc;
mod offload;
mod recurrent_s8;
mod sequence_accuracy;
mod third_party;
