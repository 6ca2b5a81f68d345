//! ONNX output: a graph builder over tract-onnx's protobuf types, writers for
//! burn layers, file I/O and tract as the independent f32 reference.

pub mod builder;
#[cfg(feature = "host")]
pub mod layers;
pub mod reference;

use std::path::Path;

use prost::Message;
use tract_onnx::pb::ModelProto;

use crate::error::{Error, Result};

/// Serialises `model` to `path` (through a temporary file, so a failed write
/// never leaves a truncated model behind), creating the parent folder if needed.
pub fn write_model(model: &ModelProto, path: &Path) -> Result<()> {
    ensure_parent_dir(path)?;
    let tmp = path.with_extension("onnx.tmp");
    std::fs::write(&tmp, model.encode_to_vec()).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Creates the folder that will hold `path`, so that a bad output path fails
/// before hours of training rather than after.
pub fn ensure_parent_dir(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
        }
        _ => Ok(()),
    }
}

/// Reads the `metadata_props` of an ONNX file as key/value pairs.
pub fn read_metadata(path: &Path) -> Result<Vec<(String, String)>> {
    use tract_onnx::prelude::Framework;
    let proto = tract_onnx::onnx()
        .proto_model_for_path(path)
        .map_err(|e| Error::Onnx {
            path: path.to_owned(),
            message: format!("{e:#}"),
        })?;
    Ok(proto
        .metadata_props
        .into_iter()
        .map(|p| (p.key, p.value))
        .collect())
}
