//! The ONNX converter (`tern convert` at f32: import, graph passes, lowering, the
//! file writer and the converter's own load check) on arbitrary protobuf bytes,
//! then, when it converts, loading and running the model it wrote. Any panic is a
//! bug, and so is a file the converter wrote that the runtime refuses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use tern_export::convert::{self, ConvertError, Method, Precision, import::ImportOptions};
use tract_onnx::pb::ModelProto;

fuzz_target!(|data: &[u8]| {
    let Ok(proto) = ModelProto::decode(data) else {
        return;
    };
    let options = ImportOptions {
        batch: 1,
        ..Default::default()
    };
    let Ok(graph) = convert::graph_from_proto(&proto, &options) else {
        return;
    };
    match convert::convert(
        &graph,
        Precision::F32,
        &[],
        Method::Minmax,
        Vec::new(),
        |_| {},
    ) {
        Ok(converted) => {
            assert!(
                tern_fuzz::load_and_run(&converted.bytes, &[]),
                "the converted model does not load"
            );
        }
        Err(ConvertError::Runtime(e)) => panic!("the runtime refused the converter's file: {e}"),
        Err(_) => {}
    }
});
