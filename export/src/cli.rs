//! The `tern` command line, as a library module so tests can drive it in-process.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::device::DeviceChoice;
use crate::models::ModelKind;
use crate::pipeline::{self, TrainRequest};
use crate::train::TrainOptions;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tern",
    version,
    about = "Tern: train, export and (soon) quantize models for embedded ARM"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a Fashion-MNIST classifier and write it as ONNX (opset 17).
    Train(TrainArgs),
}

#[derive(clap::Args)]
struct TrainArgs {
    /// Architecture to train.
    #[arg(long, value_enum, default_value = "cnn")]
    model: ModelKind,
    /// Passes over the 60,000 training images [default: per model].
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per step [default: per model].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Peak learning rate [default: per model].
    #[arg(long)]
    lr: Option<f64>,
    /// Where to train: a GPU if one is found (auto), the CPU, or a GPU or fail.
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceChoice,
    /// Seed for initialisation and data order.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Train on the first N training images only (quick checks).
    #[arg(long)]
    train_limit: Option<usize>,
    /// Evaluate on the first N test images only (quick checks).
    #[arg(long)]
    test_limit: Option<usize>,
    /// Folder holding the Fashion-MNIST `*-ubyte.gz` files.
    #[arg(long, env = "TERN_FASHION_MNIST_DIR", default_value = crate::data::fashion_mnist::DEFAULT_DIR)]
    data_dir: PathBuf,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    /// Output ONNX file.
    #[arg(short, long, default_value = "model.onnx")]
    output: PathBuf,
}

/// Why a `tern` invocation did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments, or `--help`/`--version` (which clap reports this way).
    #[error("{0}")]
    Usage(#[from] clap::Error),
    /// The command ran and failed.
    #[error("error: {0}")]
    Failed(#[from] crate::Error),
}

impl CliError {
    /// The process exit status for this outcome (clap's for usage errors, 1 otherwise).
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(e) => e.exit_code(),
            CliError::Failed(_) => 1,
        }
    }
}

/// Parses `args` (including the program name) and runs the command.
pub fn run<I, T>(args: I) -> Result<(), CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(args)?;
    match cli.command {
        Command::Train(args) => Ok(train(args)?),
    }
}

fn train(args: TrainArgs) -> crate::Result<()> {
    let defaults = args.model.defaults();
    let request = TrainRequest {
        kind: args.model,
        device: args.device,
        options: TrainOptions {
            epochs: args.epochs.unwrap_or(defaults.epochs),
            batch_size: args.batch_size.unwrap_or(defaults.batch_size),
            learning_rate: args.lr.unwrap_or(defaults.learning_rate),
            grad_clip: defaults.grad_clip,
            seed: args.seed,
            progress: !args.quiet,
        },
        train_limit: args.train_limit,
        test_limit: args.test_limit,
        data_dir: args.data_dir,
        output: args.output,
    };
    let outcome = pipeline::train_to_onnx(&request)?;
    let r = &outcome.report;
    println!(
        "wrote {} ({:.1} KiB, {} parameters); ONNX round trip through tract: max |diff| {:.1e} on {} images",
        request.output.display(),
        outcome.onnx_bytes as f64 / 1024.0,
        outcome.parameters,
        outcome.round_trip_max_diff,
        pipeline::ROUND_TRIP_IMAGES.min(r.test_images),
    );
    println!(
        "test accuracy: {:.2}% on {} Fashion-MNIST test images ({}, {} epochs, {:.0} s, {:.0} img/s, {})",
        100.0 * r.test_accuracy,
        r.test_images,
        request.kind.name(),
        request.options.epochs,
        r.seconds,
        r.images_per_second,
        outcome.device
    );
    Ok(())
}
