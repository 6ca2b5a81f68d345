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
