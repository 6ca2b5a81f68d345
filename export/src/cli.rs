//! The `tern` command line, as a library module so tests can drive it in-process.
//! `train`, `convert`, `report` and `compare` need the `host` feature; `run`, `eval`,
//! `bench` and `inspect` are in every build, including the device one.

use std::ffi::OsString;

use clap::Parser;

#[cfg(feature = "host")]
use crate::{
    pipeline::{self, TrainRequest},
    train::TrainOptions,
};

mod args;

use args::*;

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
    let options = convert::mixed::ConvertOptions {
        auto: convert::mixed::AutoOptions {
            max_agreement_drop: args.max_accuracy_drop,
            min_sqnr_db: args.min_sqnr,
            ..Default::default()
        },
        small_arena: args.small_arena,
    };
    let converted = convert::convert_with(
        &graph,
        args.precision,
        &samples,
        args.calibration,
        &options,
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
    if args.profile {
        let profile = crate::bench::profile(&args.model, args.input.as_deref(), &options)?;
        print!("{}", profile.render(args.top));
    }
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
