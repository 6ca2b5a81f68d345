//! Shared helpers for Tern's integration tests.

use std::path::{Path, PathBuf};

use tern_export::data::fashion_mnist::{self, Dataset, Split};
use tern_export::models::ModelKind;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// Path of the committed ONNX fixture for `kind`.
pub fn fixture(kind: ModelKind) -> PathBuf {
    workspace_root()
        .join("tests/fixtures")
        .join(format!("{}.onnx", kind.name()))
}

/// A fresh scratch folder under the target directory.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = workspace_root().join("target/test-scratch").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// The Fashion-MNIST test split; panics with set-up instructions when absent.
pub fn test_set() -> Dataset {
    Dataset::load(Split::Test).unwrap_or_else(|e| panic!("{e}\n(run `cargo xtask setup` first)"))
}

/// The dataset folder in use.
pub fn data_dir() -> PathBuf {
    fashion_mnist::data_dir()
}

/// Converts the committed fixture `kind` to `.tern` bytes at `precision`
/// (int8 calibrated with min/max on 1,000 training images), checked by the runtime.
pub fn convert_fixture(
    kind: ModelKind,
    precision: tern_export::convert::Precision,
) -> tern_export::convert::Converted {
    convert_fixture_with(kind, precision, false)
}

/// [`convert_fixture`], with every kernel scratch at its smallest accepted
/// size when `small_arena` (`tern convert --small-arena`, the firmware's plan).
pub fn convert_fixture_with(
    kind: ModelKind,
    precision: tern_export::convert::Precision,
    small_arena: bool,
) -> tern_export::convert::Converted {
    use tern_export::convert;
    let graph = convert::load_graph(&fixture(kind), 1).expect("fixture imports");
    let samples = if precision == convert::Precision::Int8 {
        tern_export::tools::calibration_samples("fashion-mnist:train:1000")
            .expect("calibration data")
    } else {
        Vec::new()
    };
    let options = convert::mixed::ConvertOptions {
        small_arena,
        ..Default::default()
    };
    convert::convert_with(
        &graph,
        precision,
        &samples,
        convert::Method::Minmax,
        &options,
        Vec::new(),
        |_| {},
    )
    .unwrap_or_else(|e| panic!("converting {} to {precision:?}: {e}", kind.name()))
}

/// Writes `bytes` to a scratch file and returns its path.
pub fn write_scratch(dir: &str, name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch_dir(dir).join(name);
    std::fs::write(&path, bytes).expect("write scratch file");
    path
}
