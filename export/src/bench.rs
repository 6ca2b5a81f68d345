//! `tern bench`: the batch-1 latency of `Interpreter::invoke` on one input, repeated,
//! and the checksum of the output, on the host or on a Cortex-A board.
//!
//! Under QEMU user mode (`qemu-aarch64`) the times are those of the emulation on the
//! host machine, not of the board's hardware: they compare builds with each other at
//! best, and only a run on the board gives its latency. The checksum holds either way.

use std::num::NonZeroUsize;
use std::path::Path;
use std::time::Instant;

use tern_runtime::{Int8Kernels, Interpreter, Model};

use crate::data::Dataset;
use crate::data::fashion_mnist::{PIXELS, Split};
use crate::error::{Error, Result};
use crate::tools::{open_model, read_npy};

/// How many times to invoke the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchOptions {
    /// Timed invocations.
    pub iterations: NonZeroUsize,
    /// Untimed invocations before them (caches, page faults of the mapped weights),
    /// the first of which gives the checksum; that one runs even when this is 0.
    pub warmup: usize,
    /// Which int8 conv / fully connected kernels run (all give the same bits).
    pub kernels: Int8Kernels,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            iterations: NonZeroUsize::new(100).expect("non-zero"),
            warmup: 10,
            kernels: Int8Kernels::Fast,
        }
    }
}

/// What `tern bench` measured, in microseconds per batch-1 `invoke`.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchReport {
    /// What the model was fed: the `.npy` file, a Fashion-MNIST image, or zeros.
    pub input: String,
    /// Timed invocations.
    pub iterations: NonZeroUsize,
    /// Untimed invocations before them.
    pub warmup: usize,
    /// Fastest invocation.
    pub min_us: f64,
    /// Median invocation (mean of the two middle ones for an even count).
    pub median_us: f64,
    /// Mean invocation.
    pub mean_us: f64,
    /// Slowest invocation.
    pub max_us: f64,
    /// CRC-32 (IEEE) of output 0's raw bytes after the first invocation, as in
    /// [`crate::tools::EvalReport::output_crc32`] for a single image.
    pub output_crc32: u32,
}

/// Benchmarks the `.tern` file at `path`. The input is `input` (.npy) when given, else
/// the first Fashion-MNIST test image when the model takes 784 values, else zeros.
pub fn bench(path: &Path, input: Option<&Path>, options: &BenchOptions) -> Result<BenchReport> {
    let (model, values, described) = model_and_input(path, input)?;
    let mut report = bench_model(&model, &values, options).map_err(|e| runtime_error(path, e))?;
    report.input = described;
    Ok(report)
}

/// [`crate::profile::profile`] of the `.tern` file at `path`, fed as [`bench`] feeds it.
pub fn profile(
    path: &Path,
    input: Option<&Path>,
    options: &BenchOptions,
) -> Result<crate::profile::Profile> {
    let (model, values, _) = model_and_input(path, input)?;
    crate::profile::profile(&model, &values, options).map_err(|e| runtime_error(path, e))
}

fn runtime_error(path: &Path, source: tern_runtime::Error) -> Error {
    Error::Runtime {
        path: path.to_owned(),
        source: Box::new(source),
    }
}

/// The model at `path` and input 0's values (see [`bench`]) with their description.
fn model_and_input(
    path: &Path,
    input: Option<&Path>,
) -> Result<(Model<'static>, Vec<f32>, String)> {
    let model = open_model(path)?;
    let input_len = model.input(0).map_err(|e| runtime_error(path, e))?.len();
    let (values, described) = match input {
        Some(npy) => (read_npy(npy)?.1, npy.display().to_string()),
        None if input_len == PIXELS => {
            let mut data = Dataset::load(Split::Test)?;
            data.truncate(1);
            (data.images_f32(&[0]), "Fashion-MNIST test image 0".into())
        }
        None => (vec![0.0; input_len], "zeros".into()),
    };
    Ok((model, values, described))
}

/// Benchmarks an already loaded `model` on `input` (input 0's values, as for
/// `Interpreter::set_input_f32`). The report's `input` is empty.
pub fn bench_model(
    model: &Model<'_>,
    input: &[f32],
    options: &BenchOptions,
) -> std::result::Result<BenchReport, tern_runtime::Error> {
    let mut interp = Interpreter::with_allocated_arena(model)?;
    interp.set_int8_kernels(options.kernels);
    interp.set_input_f32(0, input)?;
    interp.invoke()?;
    let output_crc32 = crc32fast::hash(interp.output(0)?.bytes);
    for _ in 1..options.warmup {
        interp.invoke()?;
    }
    let mut micros = Vec::with_capacity(options.iterations.get());
    for _ in 0..options.iterations.get() {
        let start = Instant::now();
        interp.invoke()?;
        micros.push(1e6 * start.elapsed().as_secs_f64());
    }
    let stats = LatencyStats::of(&mut micros);
    Ok(BenchReport {
        input: String::new(),
        iterations: options.iterations,
        warmup: options.warmup,
        min_us: stats.min,
        median_us: stats.median,
        mean_us: stats.mean,
        max_us: stats.max,
        output_crc32,
    })
}

/// Summary of a non-empty set of timings.
#[derive(Clone, Copy, Debug, PartialEq)]
struct LatencyStats {
    min: f64,
    median: f64,
    mean: f64,
    max: f64,
}

impl LatencyStats {
    /// Sorts `samples` and summarises them; panics if there are none.
    fn of(samples: &mut [f64]) -> LatencyStats {
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let median = if n % 2 == 1 {
            samples[n / 2]
        } else {
            (samples[n / 2 - 1] + samples[n / 2]) / 2.0
        };
        LatencyStats {
            min: samples[0],
            median,
            mean: samples.iter().sum::<f64>() / n as f64,
            max: samples[n - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_stats_of_odd_and_even_counts() {
        let odd = LatencyStats::of(&mut [5.0, 1.0, 3.0]);
        assert_eq!(
            odd,
            LatencyStats {
                min: 1.0,
                median: 3.0,
                mean: 3.0,
                max: 5.0
            }
        );
        let even = LatencyStats::of(&mut [4.0, 1.0, 2.0, 9.0]);
        assert_eq!(even.median, 3.0);
        assert_eq!(even.mean, 4.0);
        assert_eq!((even.min, even.max), (1.0, 9.0));
    }

    /// Bench and the eval checksum (`tools::run_images_checksummed`) on a `.tern` model
    /// converted in memory from a small ONNX graph: needs the converter.
    #[cfg(feature = "host")]
    mod with_converter {
        use super::super::*;
        use crate::convert::{self, Method, Precision};
        use crate::onnx::builder::{Dim, GraphBuilder};

        /// `y = x W + b` for `x [1, 4]`, `W [4, 3]`: small exact binary fractions, so
        /// that every output is exact in f32 whatever the summation order.
        const W: [f32; 12] = [
            0.5, -1.0, 2.0, //
            0.25, 0.0, -0.5, //
            1.0, 1.5, 0.75, //
            -2.0, 0.125, 1.0,
        ];
        const B: [f32; 3] = [0.5, -0.25, 1.0];

        fn gemm_model() -> Vec<u8> {
            let mut b = GraphBuilder::new("gemm");
            let x = b.input("x", &[Dim::Fixed(1), Dim::Fixed(4)]);
            let w = b.weight("w", &[4, 3], W.to_vec());
            let bias = b.weight("b", &[3], B.to_vec());
            let y = b.node("Gemm", "y", &[&x, &w, &bias], vec![]);
            b.output(&y, &[Dim::Fixed(1), Dim::Fixed(3)]);
            let options = convert::import::ImportOptions {
                batch: 1,
                ..Default::default()
            };
            let graph = convert::graph_from_proto(&b.into_model("", &[]), &options)
                .expect("valid Gemm model");
            convert::convert(&graph, Precision::F32, &[], Method::Minmax, vec![], |_| {})
                .expect("converts")
                .bytes
        }

        fn expected(x: &[f32; 4]) -> [f32; 3] {
            std::array::from_fn(|j| B[j] + (0..4).map(|i| x[i] * W[i * 3 + j]).sum::<f32>())
        }

        fn le_bytes(values: &[f32]) -> Vec<u8> {
            values.iter().flat_map(|v| v.to_le_bytes()).collect()
        }

        #[test]
        fn bench_times_every_iteration_and_hashes_the_raw_output() {
            let bytes = tern_runtime::AlignedBytes::new(&gemm_model());
            let model = Model::from_bytes(&bytes).expect("valid .tern");
            let x = [1.0, -2.0, 0.5, 3.0];
            let options = BenchOptions {
                kernels: Int8Kernels::Fast,
                iterations: NonZeroUsize::new(7).expect("non-zero"),
                warmup: 2,
            };
            let r = bench_model(&model, &x, &options).expect("runs");
            assert_eq!((r.iterations.get(), r.warmup), (7, 2));
            assert!(r.min_us <= r.median_us && r.median_us <= r.max_us, "{r:?}");
            assert!(r.min_us <= r.mean_us && r.mean_us <= r.max_us, "{r:?}");
            // The output is exact (see `W`), so its f32 bytes are known bit for bit.
            assert_eq!(r.output_crc32, crc32fast::hash(&le_bytes(&expected(&x))));
            let zero = bench_model(&model, &[0.0; 4], &options).expect("runs");
            assert_eq!(zero.output_crc32, crc32fast::hash(&le_bytes(&B)));
            // A wrong input length is the runtime's typed error, not a panic.
            assert!(bench_model(&model, &[0.0; 5], &options).is_err());
        }

        #[test]
        fn profile_lists_every_op_once_and_groups_them_by_type() {
            let bytes = tern_runtime::AlignedBytes::new(&gemm_model());
            let model = Model::from_bytes(&bytes).expect("valid .tern");
            let options = BenchOptions {
                kernels: Int8Kernels::Fast,
                iterations: NonZeroUsize::new(5).expect("non-zero"),
                warmup: 1,
            };
            let p =
                crate::profile::profile(&model, &[1.0, -2.0, 0.5, 3.0], &options).expect("runs");
            let indices: Vec<usize> = p.ops.iter().map(|o| o.index).collect();
            assert_eq!(indices, (0..model.op_count()).collect::<Vec<_>>());
            assert!(p.ops.iter().all(|o| o.micros >= 0.0) && p.total_micros > 0.0);
            let grouped: usize = p.by_type().iter().map(|g| g.1).sum();
            assert_eq!(grouped, model.op_count());
            let table = p.render(3);
            assert!(table.contains("FullyConnected f32"), "{table}");
            assert!(table.contains("[1, 3]"), "{table}");
            // A wrong input length is the runtime's typed error, not a panic.
            assert!(crate::profile::profile(&model, &[0.0; 5], &options).is_err());
        }

        #[test]
        fn eval_checksum_covers_every_output_in_order() {
            let bytes = tern_runtime::AlignedBytes::new(&gemm_model());
            let model = Model::from_bytes(&bytes).expect("valid .tern");
            let (a, b) = ([1.0, -2.0, 0.5, 3.0], [0.0, 4.0, -1.0, 0.25]);
            let images: Vec<f32> = a.iter().chain(&b).copied().collect();
            let run = crate::tools::run_images_checksummed(&model, &images).expect("runs");
            let outputs: Vec<f32> = expected(&a).into_iter().chain(expected(&b)).collect();
            assert_eq!(run.outputs, outputs);
            assert_eq!(run.output_crc32, crc32fast::hash(&le_bytes(&outputs)));
        }
    }
}
