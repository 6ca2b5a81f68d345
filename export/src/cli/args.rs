//! The `tern` command line's arguments (clap definitions and value parsers);
//! [`super::run`] dispatches them.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[cfg(feature = "host")]
use crate::{device::DeviceChoice, models::ModelKind};

#[derive(Parser)]
#[command(
    name = "tern",
    version,
    about = "Tern: train, export, quantize and run models for embedded ARM"
)]
pub(super) struct Cli {
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Subcommand)]
pub(super) enum Command {
    /// Train a Fashion-MNIST classifier and write it as ONNX (opset 17).
    #[cfg(feature = "host")]
    Train(TrainArgs),
    /// Convert an ONNX model to a .tern file (f32, f16 weights, or int8).
    #[cfg(feature = "host")]
    Convert(ConvertArgs),
    /// Accuracy of a .tern model on Fashion-MNIST, optionally against the ONNX model.
    Eval(EvalArgs),
    /// Run a .tern model on one input (.npy) and write its output (.npy).
    Run(RunArgs),
    /// Batch-1 latency of a .tern model (min/median/mean/max) and its output checksum.
    Bench(BenchArgs),
    /// Print a .tern file's header, metadata, ops, tensors and arena plan.
    Inspect(InspectArgs),
    /// Convert an ONNX classifier to f32, f16, int8 and auto and print one comparison table.
    #[cfg(feature = "host")]
    Report(ReportArgs),
    /// Per-tensor error of a .tern model against its ONNX source (SQNR, cosine), largest
    /// first, with a PNG bar chart of SQNR per layer.
    #[cfg(feature = "host")]
    Compare(CompareArgs),
}

#[cfg(feature = "host")]
#[derive(clap::Args)]
pub(super) struct CompareArgs {
    /// ONNX model: the reference, lowered to f32 in memory and run by Tern's runtime.
    pub(super) onnx: PathBuf,
    /// The converted .tern model to check.
    pub(super) tern: PathBuf,
    /// Inputs: `fashion-mnist:SPLIT:N` or a folder of .npy files (one sample each).
    #[arg(long, default_value = "fashion-mnist:test:200")]
    pub(super) data: String,
    /// PNG bar chart of per-tensor SQNR in graph order
    /// [default: beside the .tern, `model.tern` -> `model.compare.png`].
    #[arg(long)]
    pub(super) plot: Option<PathBuf>,
    /// Do not write the plot.
    #[arg(long, conflicts_with = "plot")]
    pub(super) no_plot: bool,
    /// Also write every compared tensor, in graph order, to this CSV file.
    #[arg(long)]
    pub(super) csv: Option<PathBuf>,
    /// Samples per model input (the --batch the .tern was converted with).
    #[arg(long, default_value_t = 1)]
    pub(super) batch: usize,
}

#[cfg(feature = "host")]
#[derive(clap::Args)]
pub(super) struct ReportArgs {
    /// ONNX model (a Fashion-MNIST classifier).
    pub(super) model: PathBuf,
    /// Folder for the four .tern files (f32, f16, int8, auto).
    #[arg(long, default_value = "target/tern-report")]
    pub(super) out_dir: PathBuf,
    /// Evaluation set.
    #[arg(long, default_value = "fashion-mnist:test")]
    pub(super) dataset: String,
    /// int8 calibration inputs.
    #[arg(long, default_value = "fashion-mnist:train:1000")]
    pub(super) calibration_data: String,
}

#[cfg(feature = "host")]
#[derive(clap::Args)]
pub(super) struct ConvertArgs {
    /// ONNX model to convert.
    pub(super) model: PathBuf,
    /// Output .tern file.
    #[arg(short, long)]
    pub(super) output: PathBuf,
    /// Precision of weights and activations.
    #[arg(long, value_enum, default_value = "f32")]
    pub(super) precision: crate::convert::Precision,
    /// int8 calibration inputs: `fashion-mnist:train:N` or a folder of .npy files.
    #[arg(long, default_value = "fashion-mnist:train:1000")]
    pub(super) calibration_data: String,
    /// How activation ranges are chosen from the calibration run.
    #[arg(long, value_enum, default_value = "minmax")]
    pub(super) calibration: crate::convert::Method,
    /// Size given to a symbolic first (batch) dimension.
    #[arg(long, default_value_t = 1)]
    pub(super) batch: usize,
    /// Concrete shape of an input, `name=d0,d1,...` (repeatable); needed when an
    /// input has symbolic dimensions other than the batch (e.g. a sequence length).
    #[arg(long = "input-shape", value_parser = parse_input_shape)]
    pub(super) input_shapes: Vec<(String, Vec<usize>)>,
    /// `--precision auto`: largest allowed drop of top-1 agreement with fp32, in
    /// percentage points, measured on the calibration samples.
    #[arg(long, default_value_t = 0.5)]
    pub(super) max_accuracy_drop: f64,
    /// `--precision auto` for non-classifiers: instead of agreement, keep the output's
    /// SQNR against fp32 at least this many dB.
    #[arg(long)]
    pub(super) min_sqnr: Option<f64>,
    /// Plan every kernel scratch at its smallest accepted size, for
    /// microcontrollers: a smaller arena, smaller convolution tiles (the same bits).
    #[arg(long)]
    pub(super) small_arena: bool,
    /// Hide the progress bar and the summary table.
    #[arg(long)]
    pub(super) quiet: bool,
}

/// Parses `name=d0,d1,...`.
#[cfg(feature = "host")]
pub(super) fn parse_input_shape(s: &str) -> Result<(String, Vec<usize>), String> {
    let (name, dims) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}': expected name=d0,d1,..."))?;
    let dims = dims
        .split(',')
        .map(|d| {
            d.trim()
                .parse::<usize>()
                .ok()
                .filter(|&d| d > 0)
                .ok_or_else(|| format!("'{d}' in '{s}' is not a positive dimension"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((name.to_string(), dims))
}

#[derive(clap::Args)]
pub(super) struct EvalArgs {
    /// The .tern model.
    pub(super) model: PathBuf,
    /// `fashion-mnist:test[:N]` or `fashion-mnist:train[:N]`.
    #[arg(long, default_value = "fashion-mnist:test")]
    pub(super) dataset: String,
    /// ONNX model to compare with (run in f32 through tract; needs the `host` feature).
    #[arg(long)]
    pub(super) reference: Option<PathBuf>,
}

#[derive(clap::Args)]
pub(super) struct BenchArgs {
    /// The .tern model.
    pub(super) model: PathBuf,
    /// Timed invocations.
    #[arg(long, default_value = "100")]
    pub(super) iterations: NonZeroUsize,
    /// Untimed invocations first.
    #[arg(long, default_value_t = 10)]
    pub(super) warmup: usize,
    /// Input values (.npy) [default: the first Fashion-MNIST test image for a model
    /// taking 784 values, else zeros].
    #[arg(long)]
    pub(super) input: Option<PathBuf>,
    /// int8 conv / fully connected kernels: fast (best for this CPU), reference,
    /// or the fast kernels' 8-bit path with one dot-product variant: portable,
    /// neon, neon-sdot, neon-i8mm (AArch64; portable code elsewhere).
    #[arg(long, default_value = "fast", value_parser = parse_kernels)]
    pub(super) kernels: tern_runtime::Int8Kernels,
    /// Also print the time per op type and the slowest ops (medians over the
    /// iterations; per-op times add up to the invoke).
    #[arg(long)]
    pub(super) profile: bool,
    /// With --profile: how many of the slowest ops to list.
    #[arg(long, default_value_t = 20, requires = "profile")]
    pub(super) top: usize,
}

/// `--kernels NAME`.
pub(super) fn parse_kernels(s: &str) -> Result<tern_runtime::Int8Kernels, String> {
    use tern_runtime::{GemmS8, Int8Kernels};
    match s {
        "fast" => Ok(Int8Kernels::Fast),
        "reference" => Ok(Int8Kernels::Reference),
        _ => GemmS8::ALL
            .into_iter()
            .find(|g| g.name() == s)
            .map(Int8Kernels::Gemm)
            .ok_or_else(|| {
                "expected fast, reference, portable, neon, neon-sdot or neon-i8mm".to_string()
            }),
    }
}

#[derive(clap::Args)]
pub(super) struct RunArgs {
    /// The .tern model.
    pub(super) model: PathBuf,
    /// Input values (.npy, f32 or f64, any shape with the right element count).
    #[arg(long)]
    pub(super) input: PathBuf,
    /// Output file (.npy, f32).
    #[arg(short, long)]
    pub(super) output: PathBuf,
}

#[derive(clap::Args)]
pub(super) struct InspectArgs {
    /// The .tern model.
    pub(super) model: PathBuf,
    /// Also check the data section's checksum (reads every weight byte).
    #[arg(long)]
    pub(super) verify: bool,
    /// Show how the model splits between this offload backend and the CPU
    /// (`loopback`: claims Conv, Gemm and Relu).
    #[arg(long, value_name = "BACKEND")]
    pub(super) backend: Option<String>,
    /// Print only the smallest op resolver for the model, as source to compile
    /// into a firmware (`rust`: a `static TERN_OPS`; `c`: `tern_register_ops()`).
    #[arg(long, value_name = "LANGUAGE", value_parser = ["rust", "c"])]
    pub(super) resolver: Option<String>,
}

#[cfg(feature = "host")]
#[derive(clap::Args)]
pub(super) struct TrainArgs {
    /// Architecture to train.
    #[arg(long, value_enum, default_value = "cnn")]
    pub(super) model: ModelKind,
    /// Passes over the 60,000 training images [default: per model].
    #[arg(long)]
    pub(super) epochs: Option<usize>,
    /// Images per step [default: per model].
    #[arg(long)]
    pub(super) batch_size: Option<usize>,
    /// Peak learning rate [default: per model].
    #[arg(long)]
    pub(super) lr: Option<f64>,
    /// Where to train: a GPU if one is found (auto), the CPU, or a GPU or fail.
    #[arg(long, value_enum, default_value = "auto")]
    pub(super) device: DeviceChoice,
    /// Seed for initialisation and data order.
    #[arg(long, default_value_t = 42)]
    pub(super) seed: u64,
    /// Train on the first N training images only (quick checks).
    #[arg(long)]
    pub(super) train_limit: Option<usize>,
    /// Evaluate on the first N test images only (quick checks).
    #[arg(long)]
    pub(super) test_limit: Option<usize>,
    /// Folder holding the Fashion-MNIST `*-ubyte.gz` files.
    #[arg(long, env = "TERN_FASHION_MNIST_DIR", default_value = crate::data::fashion_mnist::DEFAULT_DIR)]
    pub(super) data_dir: PathBuf,
    /// Hide the progress bar.
    #[arg(long)]
    pub(super) quiet: bool,
    /// Output ONNX file.
    #[arg(short, long, default_value = "model.onnx")]
    pub(super) output: PathBuf,
}
