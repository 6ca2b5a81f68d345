//! Bad input to `tern train`: each case is a clear error and a non-zero exit
//! status, never a panic.

use tern_export::Error;
use tern_export::cli::{self, CliError};
use tern_export::data::idx::read_idx;

use tern_tests::scratch_dir;

fn tern(args: &[&str]) -> CliError {
    let argv = std::iter::once("tern").chain(args.iter().copied());
    cli::run(argv).expect_err("the command must fail")
}

#[test]
fn unknown_model_is_a_usage_error_listing_the_choices() {
    let err = tern(&["train", "--model", "resnet"]);
    assert_eq!(err.exit_code(), 2);
    let msg = err.to_string();
    assert!(msg.contains("resnet"), "{msg}");
    for known in ["cnn", "lstm", "gru", "transformer"] {
        assert!(msg.contains(known), "{msg}");
    }
}

#[test]
fn unreadable_dataset_names_the_file_and_the_debian_package() {
    let dir = scratch_dir("no-dataset");
    let out = dir.join("m.onnx");
    let err = tern(&[
        "train",
        "--quiet",
        "--device",
        "cpu",
        "--data-dir",
        dir.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(err.exit_code(), 1);
    assert!(
        matches!(err, CliError::Failed(Error::DatasetMissing { .. })),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("train-images-idx3-ubyte.gz") && msg.contains("dataset-fashion-mnist"),
        "{msg}"
    );
    assert!(
        !out.exists(),
        "no model is written when training cannot start"
    );
}

#[test]
fn truncated_dataset_file_is_a_typed_error() {
    let dir = scratch_dir("truncated-dataset");
    let real = tern_tests::data_dir();
    for name in [
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        std::fs::copy(real.join(name), dir.join(name))
            .expect("dataset installed (cargo xtask setup)");
    }
    let images = std::fs::read(real.join("train-images-idx3-ubyte.gz")).unwrap();
    std::fs::write(
        dir.join("train-images-idx3-ubyte.gz"),
        &images[..images.len() / 3],
    )
    .unwrap();
    let err = tern(&[
        "train",
        "--quiet",
        "--device",
        "cpu",
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(
        matches!(err, CliError::Failed(Error::InvalidIdx { .. })),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("train-images-idx3-ubyte.gz"),
        "{err}"
    );

    // A file that decompresses but has the wrong shape is caught as well.
    let mut bad = vec![0u8, 0, 8, 1];
    bad.extend_from_slice(&5u32.to_be_bytes());
    bad.extend_from_slice(&[1, 2, 3]);
    let path = dir.join("short.idx");
    std::fs::write(&path, bad).unwrap();
    let err = read_idx(&path).unwrap_err();
    assert!(
        err.to_string().contains("need 5 data bytes, file has 3"),
        "{err}"
    );
}

#[test]
fn gpu_requested_without_a_gpu_is_a_clear_error() {
    // CI machines have no GPU, and the default build has no GPU backend: either
    // way `--device gpu` must refuse rather than silently fall back.
    if std::env::var_os("TERN_EXPECT_GPU").is_some() {
        eprintln!("TERN_EXPECT_GPU is set: this machine has a GPU, nothing to check");
        return;
    }
    let err = tern(&["train", "--quiet", "--device", "gpu", "--epochs", "1"]);
    assert_eq!(err.exit_code(), 1);
    assert!(
        matches!(err, CliError::Failed(Error::GpuUnavailable { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("GPU"), "{err}");
}

#[test]
fn zero_epochs_is_refused() {
    let dir = scratch_dir("zero-epochs");
    let out = dir.join("m.onnx");
    let err = tern(&[
        "train",
        "--quiet",
        "--device",
        "cpu",
        "--epochs",
        "0",
        "--train-limit",
        "10",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        matches!(err, CliError::Failed(Error::InvalidOption { .. })),
        "{err:?}"
    );
}
