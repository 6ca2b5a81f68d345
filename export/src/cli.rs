//! The `tern` command line, as a library module so tests can drive it in-process.
//! `train`, `convert`, `report` and `compare` need the `host` feature; `run`, `eval`,
//! `bench` and `inspect` are in every build, including the device one.

use std::ffi::OsString;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[cfg(feature = "host")]
use crate::{
    device::DeviceChoice,
    models::ModelKind,
    pipeline::{self, TrainRequest},
    train::TrainOptions,
};

#[derive(Parser)]
#[command(
    name = "tern",
    version,
    about = "Tern: train, export, quantize and run models for embedded ARM"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
struct CompareArgs {
    /// ONNX model: the reference, lowered to f32 in memory and run by Tern's runtime.
    onnx: PathBuf,
    /// The converted .tern model to check.
    tern: PathBuf,
    /// Inputs: `fashion-mnist:SPLIT:N` or a folder of .npy files (one sample each).
    #[arg(long, default_value = "fashion-mnist:test:200")]
    data: String,
    /// PNG bar chart of per-tensor SQNR in graph order
    /// [default: beside the .tern, `model.tern` -> `model.compare.png`].
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Do not write the plot.
    #[arg(long, conflicts_with = "plot")]
    no_plot: bool,
    /// Also write every compared tensor, in graph order, to this CSV file.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Samples per model input (the --batch the .tern was converted with).
    #[arg(long, default_value_t = 1)]
    batch: usize,
}

#[cfg(feature = "host")]
#[derive(clap::Args)]
struct ReportArgs {
    /// ONNX model (a Fashion-MNIST classifier).
    model: PathBuf,
    /// Folder for the four .tern files (f32, f16, int8, auto).
    #[arg(long, default_value = "target/tern-report")]
    out_dir: PathBuf,
    /// Evaluation set.
    #[arg(long, default_value = "fashion-mnist:test")]
    dataset: String,
    /// int8 calibration inputs.
    #[arg(long, default_value = "fashion-mnist:train:1000")]
    calibration_data: String,
}

#[cfg(feature = "host")]
#[derive(clap::Args)]
struct ConvertArgs {
    /// ONNX model to convert.
    model: PathBuf,
    /// Output .tern file.
    #[arg(short, long)]
    output: PathBuf,
    /// Precision of weights and activations.
    #[arg(long, value_enum, default_value = "f32")]
    precision: crate::convert::Precision,
    /// int8 calibration inputs: `fashion-mnist:train:N` or a folder of .npy files.
    #[arg(long, default_value = "fashion-mnist:train:1000")]
    calibration_data: String,
    /// How activation ranges are chosen from the calibration run.
    #[arg(long, value_enum, default_value = "minmax")]
    calibration: crate::convert::Method,
    /// Size given to a symbolic first (batch) dimension.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Concrete shape of an input, `name=d0,d1,...` (repeatable); needed when an
    /// input has symbolic dimensions other than the batch (e.g. a sequence length).
    #[arg(long = "input-shape", value_parser = parse_input_shape)]
    input_shapes: Vec<(String, Vec<usize>)>,
    /// `--precision auto`: largest allowed drop of top-1 agreement with fp32, in
    /// percentage points, measured on the calibration samples.
    #[arg(long, default_value_t = 0.5)]
    max_accuracy_drop: f64,
    /// `--precision auto` for non-classifiers: instead of agreement, keep the output's
    /// SQNR against fp32 at least this many dB.
    #[arg(long)]
    min_sqnr: Option<f64>,
    /// Hide the progress bar and the summary table.
    #[arg(long)]
    quiet: bool,
}

/// Parses `name=d0,d1,...`.
#[cfg(feature = "host")]
fn parse_input_shape(s: &str) -> Result<(String, Vec<usize>), String> {
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
struct EvalArgs {
    /// The .tern model.
    model: PathBuf,
    /// `fashion-mnist:test[:N]` or `fashion-mnist:train[:N]`.
    #[arg(long, default_value = "fashion-mnist:test")]
    dataset: String,
    /// ONNX model to compare with (run in f32 through tract; needs the `host` feature).
    #[arg(long)]
    reference: Option<PathBuf>,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// The .tern model.
    model: PathBuf,
    /// Timed invocations.
    #[arg(long, default_value = "100")]
    iterations: NonZeroUsize,
    /// Untimed invocations first.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Input values (.npy) [default: the first Fashion-MNIST test image for a model
    /// taking 784 values, else zeros].
    #[arg(long)]
    input: Option<PathBuf>,
    /// int8 conv / fully connected kernels: fast (best for this CPU), reference,
    /// or the fast kernels' 8-bit path with one dot-product variant: portable,
    /// neon, neon-sdot, neon-i8mm (AArch64; portable code elsewhere).
    #[arg(long, default_value = "fast", value_parser = parse_kernels)]
    kernels: tern_runtime::Int8Kernels,
}

/// `--kernels NAME`.
fn parse_kernels(s: &str) -> Result<tern_runtime::Int8Kernels, String> {
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
struct RunArgs {
    /// The .tern model.
    model: PathBuf,
    /// Input values (.npy, f32 or f64, any shape with the right element count).
    #[arg(long)]
    input: PathBuf,
    /// Output file (.npy, f32).
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(clap::Args)]
struct InspectArgs {
    /// The .tern model.
    model: PathBuf,
    /// Also check the data section's checksum (reads every weight byte).
    #[arg(long)]
    verify: bool,
    /// Show how the model splits between this offload backend and the CPU
    /// (`loopback`: claims Conv, Gemm and Relu).
    #[arg(long, value_name = "BACKEND")]
    backend: Option<String>,
    /// Print only the smallest op resolver for the model, as source to compile
    /// into a firmware (`rust`: a `static TERN_OPS`; `c`: `tern_register_ops()`).
    #[arg(long, value_name = "LANGUAGE", value_parser = ["rust", "c"])]
    resolver: Option<String>,
}

#[cfg(feature = "host")]
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
        #[cfg(feature = "host")]
        Command::Train(args) => Ok(train(args)?),
        #[cfg(feature = "host")]
        Command::Convert(args) => Ok(convert(args)?),
        Command::Eval(args) => Ok(eval(args)?),
        Command::Run(args) => {
            let shape = crate::tools::run_npy(&args.model, &args.input, &args.output)?;
            println!("wrote {} (shape {shape:?})", args.output.display());
            Ok(())
        }
        Command::Bench(args) => Ok(bench(args)?),
        #[cfg(feature = "host")]
        Command::Report(args) => Ok(report(args)?),
        #[cfg(feature = "host")]
        Command::Compare(args) => Ok(compare(args)?),
        Command::Inspect(args) => {
            if let Some(language) = &args.resolver {
                print!("{}", crate::tools::resolver_source(&args.model, language)?);
                return Ok(());
            }
            print!("{}", crate::tools::inspect(&args.model, args.verify)?);
            if let Some(backend) = &args.backend {
                print!(
                    "{}",
                    crate::tools::inspect_partitions(&args.model, backend)?
                );
            }
            Ok(())
        }
    }
}

#[cfg(feature = "host")]
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

#[cfg(feature = "host")]
fn convert(args: ConvertArgs) -> crate::Result<()> {
    use crate::convert;
    let options = convert::import::ImportOptions {
        batch: args.batch,
        input_shapes: args.input_shapes.iter().cloned().collect(),
    };
    let graph = convert::load_graph_with(&args.model, &options)?;
    let samples = if args.precision.needs_calibration() {
        crate::tools::calibration_samples(&args.calibration_data)?
    } else {
        Vec::new()
    };
    let bar = if args.quiet || samples.is_empty() {
        indicatif::ProgressBar::hidden()
    } else {
        let total = samples.len() * args.calibration.passes();
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("calibrating [{bar:30}] {pos}/{len} {per_sec}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    };
    let metadata = vec![
        ("source".to_string(), args.model.display().to_string()),
        (
            "source_bytes".to_string(),
            std::fs::metadata(&args.model)
                .map(|m| m.len())
                .unwrap_or(0)
                .to_string(),
        ),
    ];
    let auto = convert::mixed::AutoOptions {
        max_agreement_drop: args.max_accuracy_drop,
        min_sqnr_db: args.min_sqnr,
        ..Default::default()
    };
    let converted = convert::convert_with(
        &graph,
        args.precision,
        &samples,
        args.calibration,
        &auto,
        metadata,
        |k| bar.set_position(k as u64),
    )?;
    bar.finish_and_clear();
    if let Some(dir) = args.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
    }
    std::fs::write(&args.output, &converted.bytes)
        .map_err(|e| crate::Error::io(&args.output, e))?;
    if !args.quiet {
        print!("{}", converted.summary());
    }
    let onnx_len = std::fs::metadata(&args.model).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {} ({}, {:.1} KiB = {:.2}x the ONNX file, arena {:.1} KiB)",
        args.output.display(),
        args.precision.name(),
        converted.bytes.len() as f64 / 1024.0,
        converted.bytes.len() as f64 / onnx_len.max(1) as f64,
        converted.file.arena_size as f64 / 1024.0
    );
    Ok(())
}

fn eval(args: EvalArgs) -> crate::Result<()> {
    let (split, limit) = crate::tools::parse_dataset(&args.dataset)?;
    let r = crate::tools::eval(&args.model, split, limit, args.reference.as_deref())?;
    println!(
        "{}: accuracy {:.2}% on {} images ({:.0} us/image, batch 1), output checksum 0x{:08x}",
        args.model.display(),
        100.0 * r.accuracy,
        r.images,
        r.micros_per_image,
        r.output_crc32
    );
    if let Some(c) = r.reference {
        println!(
            "reference (f32 through tract): accuracy {:.2}%, top-1 agreement {:.2}%, output max |diff| {:.2e}, mean |diff| {:.2e}",
            100.0 * c.accuracy,
            100.0 * c.agreement,
            c.max_abs_diff,
            c.mean_abs_diff
        );
    }
    Ok(())
}

fn bench(args: BenchArgs) -> crate::Result<()> {
    let options = crate::bench::BenchOptions {
        iterations: args.iterations,
        warmup: args.warmup,
        kernels: args.kernels,
    };
    let r = crate::bench::bench(&args.model, args.input.as_deref(), &options)?;
    println!(
        "{}: batch-1 invoke, {} iterations after {} warm-up, input {}: \
         min {:.0} us, median {:.0} us, mean {:.0} us, max {:.0} us, output checksum 0x{:08x}",
        args.model.display(),
        r.iterations,
        r.warmup,
        r.input,
        r.min_us,
        r.median_us,
        r.mean_us,
        r.max_us,
        r.output_crc32
    );
    Ok(())
}

#[cfg(feature = "host")]
fn report(args: ReportArgs) -> crate::Result<()> {
    use crate::convert::{self, Method, Precision};
    let (split, limit) = crate::tools::parse_dataset(&args.dataset)?;
    let graph = convert::load_graph(&args.model, 1)?;
    let samples = crate::tools::calibration_samples(&args.calibration_data)?;
    std::fs::create_dir_all(&args.out_dir).map_err(|e| crate::Error::io(&args.out_dir, e))?;
    let onnx_len = std::fs::metadata(&args.model)
        .map_err(|e| crate::Error::io(&args.model, e))?
        .len() as f64;
    let stem = args
        .model
        .file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().into_owned());
    // Images, labels and tract's outputs once for the four precisions.
    let eval_set = crate::tools::EvalSet::load(split, limit, Some(&args.model))?;
    let mut rows = Vec::new();
    let mut reference = None;
    for precision in [
        Precision::F32,
        Precision::F16,
        Precision::Int8,
        Precision::Auto,
    ] {
        let calibration = if precision.needs_calibration() {
            &samples[..]
        } else {
            &[]
        };
        let converted = convert::convert(
            &graph,
            precision,
            calibration,
            Method::Minmax,
            Vec::new(),
            |_| {},
        )?;
        let path = args
            .out_dir
            .join(format!("{stem}-{}.tern", precision.name()));
        std::fs::write(&path, &converted.bytes).map_err(|e| crate::Error::io(&path, e))?;
        let r = crate::tools::eval_on(&path, &eval_set)?;
        let c = r.reference.clone().expect("reference requested");
        reference.get_or_insert(c.accuracy);
        rows.push((
            precision,
            r,
            c,
            converted.bytes.len(),
            converted.file.arena_size,
            path,
        ));
    }
    println!(
        "{}: {} images of {}",
        args.model.display(),
        rows[0].1.images,
        args.dataset
    );
    println!(
        "| precision | accuracy | vs fp32 | top-1 agreement | max abs diff | file | x ONNX | arena | latency (batch 1) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let fp32 = reference.unwrap_or(0.0);
    println!(
        "| fp32 (tract, ONNX) | {:.2}% | - | - | - | {:.1} KiB | 1.00 | - | - |",
        100.0 * fp32,
        onnx_len / 1024.0
    );
    for (precision, r, c, bytes, arena, _) in &rows {
        println!(
            "| tern {} | {:.2}% | {:+.2} pp | {:.2}% | {:.1e} | {:.1} KiB | {:.2} | {:.1} KiB | {:.0} us |",
            precision.name(),
            100.0 * r.accuracy,
            100.0 * (r.accuracy - fp32),
            100.0 * c.agreement,
            c.max_abs_diff,
            *bytes as f64 / 1024.0,
            *bytes as f64 / onnx_len,
            *arena as f64 / 1024.0,
            r.micros_per_image
        );
    }
    for (_, _, _, _, _, path) in &rows {
        println!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(feature = "host")]
fn compare(args: CompareArgs) -> crate::Result<()> {
    use crate::compare;
    let samples = crate::tools::calibration_samples(&args.data)?;
    let options = compare::CompareOptions {
        batch: Some(args.batch),
    };
    let report = compare::compare_with(&args.onnx, &args.tern, &samples, &options)?;
    let used = report.invocations * report.batch;
    println!(
        "{} against {}: {used} samples of {} ({} inputs, batch {})",
        args.tern.display(),
        args.onnx.display(),
        args.data,
        report.invocations,
        report.batch
    );
    println!(
        "reference: the ONNX model lowered to f32 and run by Tern's runtime (matches \
         tract/onnxruntime to ~1e-6 on the test fixtures); errors summed over all samples, \
         SQNR of an exact tensor shown as {:.0} dB",
        compare::SQNR_CAP_DB
    );
    println!(
        "{} tensors compared ({} of {} reference tensors matched), largest error first:",
        report.rows.len(),
        report.reference_tensors - report.unmatched_reference.len(),
        report.reference_tensors
    );
    print!("{}", report.table());
    if let Some(path) = &args.csv {
        std::fs::write(path, report.csv()).map_err(|e| crate::Error::io(path, e))?;
        println!("wrote {}", path.display());
    }
    if !args.no_plot {
        let path = args
            .plot
            .clone()
            .unwrap_or_else(|| compare::default_plot_path(&args.tern));
        let name = args
            .tern
            .file_name()
            .map_or("model".into(), |n| n.to_string_lossy().into_owned());
        let title =
            format!("per-tensor SQNR (dB) vs f32 reference, graph order: {name}, {used} samples");
        report.write_plot(&path, &title)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
