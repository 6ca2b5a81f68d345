//! The export crate's one error type. Every variant names the file, model or
//! device involved so that a user can act on the message without a backtrace.

use std::path::PathBuf;

/// Errors from training, dataset loading, ONNX writing and the `.tern` tools.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A dataset file is not where it should be.
    #[error(
        "dataset file {path} not found: install the Debian package `{package}` \
         (`cargo xtask setup` does it) or set {env_var} to a folder holding the files"
    )]
    DatasetMissing {
        /// The file that was looked for.
        path: PathBuf,
        /// The Debian package that provides it.
        package: &'static str,
        /// The environment variable that overrides the folder.
        env_var: &'static str,
    },
    /// A dataset file exists but is not a valid IDX file of the expected shape.
    #[error("{path}: invalid IDX data: {reason}")]
    InvalidIdx {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `--device gpu` was asked for but no usable GPU adapter was found.
    #[error("GPU requested but none is usable: {reason}")]
    GpuUnavailable {
        /// Why no GPU could be used.
        reason: String,
    },
    /// A training option is out of range.
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// The option's name, as on the command line.
        option: &'static str,
        /// Why the value was refused.
        reason: String,
    },
    /// Training diverged (loss became NaN or infinite).
    #[error("training diverged at epoch {epoch}, step {step}: loss is {loss}")]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// Step within the epoch.
        step: usize,
        /// The non-finite loss value.
        loss: f32,
    },
    /// Conversion to `.tern` failed.
    #[cfg(feature = "convert")]
    #[error(transparent)]
    Convert(Box<crate::convert::ConvertError>),
    /// The Tern runtime refused a model or an input.
    #[error("{path}: {source}")]
    Runtime {
        /// The `.tern` file.
        path: PathBuf,
        /// The runtime's error.
        #[source]
        source: Box<tern_runtime::Error>,
    },
    /// An ONNX file could not be read or run by tract.
    #[error("ONNX model {path}: {message}")]
    Onnx {
        /// The model file.
        path: PathBuf,
        /// tract's description of the failure.
        message: String,
    },
    /// An option needs the `host` feature, which this build of `tern` leaves out.
    #[error(
        "{option} needs the `host` feature, which this `tern` was built without \
         (a device build, `--no-default-features`); use a host build of `tern`"
    )]
    HostOnly {
        /// The option, as on the command line.
        option: &'static str,
    },
}

#[cfg(feature = "convert")]
impl From<crate::convert::ConvertError> for Error {
    fn from(e: crate::convert::ConvertError) -> Self {
        Error::Convert(Box::new(e))
    }
}

/// Result alias for the export crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
