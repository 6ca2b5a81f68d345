//! One ONNX model side by side: Tern f32, Tern int8 and tract f32 (optimized), one
//! thread, the input shape given. Prints one JSON object; `cargo xtask bench` adds
//! ONNX Runtime (`tools/bench/ort_bench.py`) and prints the table.
//!
//! ```text
//! cargo bench -p tern-benches --bench side_by_side -- MODEL.onnx NAME=d0,d1,.. SAMPLES [SECONDS]
//! ```
//!
//! `SAMPLES` holds `calib/*.npy` (int8 calibration) and `test/*.npy` (timed inputs,
//! and the inputs of the cosines: Tern f32 to tract, Tern int8 to Tern f32). Tern is timed from
//! the caller's f32 array to every output read back as f32; tract from its input
//! tensor to its outputs. Each figure is the median of at least 20 runs, more until
//! `SECONDS` (default 2) have passed. Tern's per-op profiles go beside `SAMPLES` as
//! `profile-f32.txt` and `profile-int8.txt`.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tern_export::bench::BenchOptions;
use tern_export::convert::{self, Method, Precision, import::ImportOptions};
use tern_export::profile;
use tern_runtime::{AlignedBytes, Int8Kernels, Interpreter, Model};
use tract_onnx::prelude::*;

struct Args {
    onnx: PathBuf,
    input_name: String,
    shape: Vec<usize>,
    samples: PathBuf,
    seconds: f64,
}

fn parse_args() -> Result<Args, String> {
    // `cargo bench` appends `--bench`; ignore flags.
    let positional: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [onnx, input, samples, rest @ ..] = &positional[..] else {
        return Err("usage: side_by_side MODEL.onnx NAME=d0,d1,.. SAMPLES [SECONDS]".into());
    };
    let (name, dims) = input
        .split_once('=')
        .ok_or_else(|| format!("'{input}': expected NAME=d0,d1,..."))?;
    let shape = dims
        .split(',')
        .map(|d| d.parse::<usize>().map_err(|e| format!("'{d}': {e}")))
        .collect::<Result<_, _>>()?;
    let seconds = match rest.first() {
        Some(s) => s.parse().map_err(|e| format!("'{s}': {e}"))?,
        None => 2.0,
    };
    Ok(Args {
        onnx: onnx.into(),
        input_name: name.into(),
        shape,
        samples: samples.into(),
        seconds,
    })
}

fn samples(dir: &Path) -> Result<Vec<Vec<f32>>, String> {
    tern_export::tools::calibration_samples(&dir.display().to_string()).map_err(|e| e.to_string())
}

/// Median milliseconds of `f`, after warm-up, over at least 20 runs and `seconds`.
fn median_ms(seconds: f64, mut f: impl FnMut(usize)) -> f64 {
    for i in 0..3 {
        f(i);
    }
    let start = Instant::now();
    let mut times = Vec::new();
    while times.len() < 20 || (start.elapsed().as_secs_f64() < seconds && times.len() < 1000) {
        let t = Instant::now();
        f(times.len());
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b) + 1e-30)
}

/// One converted model and what it measured.
struct TernRun {
    ms: f64,
    outputs: Vec<f32>,
    macs: u64,
}

fn tern(
    args: &Args,
    (precision, label): (Precision, &str),
    calib: &[Vec<f32>],
    test: &[Vec<f32>],
) -> Result<TernRun, String> {
    let options = ImportOptions {
        batch: args.shape[0],
        input_shapes: [(args.input_name.clone(), args.shape.clone())]
            .into_iter()
            .collect(),
    };
    let graph = convert::load_graph_with(&args.onnx, &options).map_err(|e| e.to_string())?;
    let converted = convert::convert(&graph, precision, calib, Method::Minmax, Vec::new(), |_| ())
        .map_err(|e| e.to_string())?;
    let bytes = AlignedBytes::new(&converted.bytes);
    let model = Model::from_bytes(&bytes).map_err(|e| e.to_string())?;
    let mut interp = Interpreter::with_allocated_arena(&model).map_err(|e| e.to_string())?;
    let lens: Vec<usize> = (0..model.output_count())
        .map(|i| model.output(i).map(|t| t.len()))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let mut out = vec![0f32; lens.iter().sum()];
    let mut run = |input: &[f32], out: &mut [f32]| -> Result<(), tern_runtime::Error> {
        interp.set_input_f32(0, input)?;
        interp.invoke()?;
        let mut at = 0;
        for (i, &len) in lens.iter().enumerate() {
            interp.output(i)?.read_f32(&mut out[at..at + len])?;
            at += len;
        }
        Ok(())
    };
    let mut outputs = Vec::new();
    for input in test {
        run(input, &mut out).map_err(|e| e.to_string())?;
        outputs.extend_from_slice(&out);
    }
    let ms = median_ms(args.seconds, |i| {
        run(&test[i % test.len()], &mut out).expect("ran before");
    });
    write_profile(args, &model, &test[0], label)?;
    Ok(TernRun {
        ms,
        outputs,
        macs: converted.total_macs(),
    })
}

/// The per-op profile (`tern bench --profile`) beside the samples, as
/// `profile-<label>.txt`.
fn write_profile(args: &Args, model: &Model<'_>, input: &[f32], label: &str) -> Result<(), String> {
    let options = BenchOptions {
        iterations: NonZeroUsize::new(20).expect("non-zero"),
        warmup: 2,
        kernels: Int8Kernels::Fast,
    };
    let profile = profile::profile(model, input, &options).map_err(|e| e.to_string())?;
    let dir = args.samples.parent().unwrap_or(Path::new("."));
    let path = dir.join(format!("profile-{label}.txt"));
    std::fs::write(&path, profile.render(25)).map_err(|e| format!("{}: {e}", path.display()))
}

fn tract(args: &Args, test: &[Vec<f32>]) -> TractResult<(f64, Vec<f32>)> {
    // Output shapes and value infos may name symbols (a `batch`) that the concrete
    // input fixes: let tract infer every shape from the input instead.
    let model = tract_onnx::onnx()
        .with_ignore_output_shapes(true)
        .with_ignore_value_info(true)
        .model_for_path(&args.onnx)?
        .with_input_fact(0, f32::fact(&args.shape).into())?;
    let plan = model.into_optimized()?.into_runnable()?;
    let inputs: Vec<Tensor> = test
        .iter()
        .map(|t| Tensor::from_shape(&args.shape, t))
        .collect::<TractResult<_>>()?;
    let mut outputs = Vec::new();
    for input in &inputs {
        for o in plan.run(tvec!(input.clone().into()))? {
            outputs.extend(
                o.cast_to::<f32>()?
                    .to_plain_array_view::<f32>()?
                    .iter()
                    .copied(),
            );
        }
    }
    let ms = median_ms(args.seconds, |i| {
        plan.run(tvec!(inputs[i % inputs.len()].clone().into()))
            .expect("ran before");
    });
    Ok((ms, outputs))
}

fn main() {
    if let Err(e) = run() {
        eprintln!("side_by_side: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let calib = samples(&args.samples.join("calib"))?;
    let test = samples(&args.samples.join("test"))?;
    // A part that fails is reported (`null`, and an `error:` line) and the rest runs.
    let mut errors = Vec::new();
    let tract = tract(&args, &test)
        .map_err(|e| errors.push(format!("tract: {e:#}")))
        .ok();
    let mut tern_run = |precision| {
        tern(&args, precision, &calib, &test)
            .map_err(|e| errors.push(format!("tern {}: {e}", precision.1)))
            .ok()
    };
    let f32_run = tern_run((Precision::F32, "f32"));
    let int8_run = tern_run((Precision::Int8, "int8"));
    let number = |v: Option<f64>| v.map_or("null".to_string(), |v| v.to_string());
    let f32_cosine = f32_run
        .as_ref()
        .zip(tract.as_ref())
        .map(|(f, (_, reference))| cosine(&f.outputs, reference));
    let int8_cosine = int8_run
        .as_ref()
        .zip(f32_run.as_ref())
        .map(|(q, f)| cosine(&q.outputs, &f.outputs));
    let macs = f32_run
        .as_ref()
        .or(int8_run.as_ref())
        .map(|r| r.macs as f64);
    println!(
        "{{\"macs\": {}, \"tract_ms\": {}, \"tern_f32_ms\": {}, \"tern_int8_ms\": {}, \"tern_f32_cosine\": {}, \"tern_int8_cosine\": {}}}",
        number(macs),
        number(tract.as_ref().map(|t| t.0)),
        number(f32_run.as_ref().map(|r| r.ms)),
        number(int8_run.as_ref().map(|r| r.ms)),
        number(f32_cosine),
        number(int8_cosine),
    );
    for e in errors {
        println!("error: {}", e.replace('\n', " "));
    }
    Ok(())
}
