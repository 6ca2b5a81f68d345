//! `tern train` end to end: pick a device, load Fashion-MNIST, train, write
//! ONNX with metadata, then reload the file with tract and check it reproduces
//! the trained model.

use std::path::{Path, PathBuf};

use burn::prelude::*;

use crate::data::fashion_mnist::CLASS_NAMES;
use crate::data::{Dataset, Split};
use crate::device::{self, DeviceChoice};
use crate::error::{Error, Result};
use crate::models::{self, Cnn, GruClassifier, ImageClassifier, LstmClassifier, ModelKind, Vit};
use crate::onnx::{self, reference::OnnxReference};
use crate::train::{self, TrainOptions, TrainReport};

/// Images used for the ONNX round-trip check.
pub const ROUND_TRIP_IMAGES: usize = 100;
/// Largest allowed |burn - tract| on any output probability.
pub const ROUND_TRIP_TOLERANCE: f32 = 1e-4;

/// Everything `tern train` needs.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    /// Which architecture.
    pub kind: ModelKind,
    /// Where training runs.
    pub device: DeviceChoice,
    /// Training settings.
    pub options: TrainOptions,
    /// Use only the first N training images (smoke tests).
    pub train_limit: Option<usize>,
    /// Use only the first N test images (smoke tests).
    pub test_limit: Option<usize>,
    /// Folder holding the Fashion-MNIST files.
    pub data_dir: PathBuf,
    /// Where to write the ONNX model.
    pub output: PathBuf,
}

/// What `tern train` produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// Training figures.
    pub report: TrainReport,
    /// The device actually used.
    pub device: String,
    /// Size of the written file in bytes.
    pub onnx_bytes: u64,
    /// Largest |burn - tract| over the round-trip images.
    pub round_trip_max_diff: f32,
    /// Number of trainable parameters.
    pub parameters: usize,
}

/// Trains the requested model and writes it as ONNX.
pub fn train_to_onnx(req: &TrainRequest) -> Result<TrainOutcome> {
    onnx::ensure_parent_dir(&req.output)?;
    let selected = device::select(req.device)?;
    eprintln!("device: {}", selected.description);
    let mut train_set = Dataset::load_from(&req.data_dir, Split::Train)?;
    let mut test_set = Dataset::load_from(&req.data_dir, Split::Test)?;
    if let Some(n) = req.train_limit {
        train_set.truncate(n);
    }
    if let Some(n) = req.test_limit {
        test_set.truncate(n);
    }
    eprintln!(
        "data: Fashion-MNIST, {} training and {} test images",
        train_set.len(),
        test_set.len()
    );
    let device = selected.device.clone();
    device.seed(req.options.seed);
    let autodiff = device.clone().autodiff();
    let run = Run {
        req,
        device: &device,
        autodiff: &autodiff,
        train_set: &train_set,
        test_set: &test_set,
        description: &selected.description,
    };
    match req.kind {
        ModelKind::Cnn => run.go(Cnn::new(&autodiff)),
        ModelKind::Lstm => run.go(LstmClassifier::new(&autodiff)),
        ModelKind::Gru => run.go(GruClassifier::new(&autodiff)),
        ModelKind::Transformer => run.go(Vit::new(&autodiff)),
    }
}

struct Run<'a> {
    req: &'a TrainRequest,
    device: &'a Device,
    autodiff: &'a Device,
    train_set: &'a Dataset,
    test_set: &'a Dataset,
    description: &'a str,
}

impl Run<'_> {
    fn go<M: ImageClassifier>(&self, model: M) -> Result<TrainOutcome> {
        let req = self.req;
        let parameters = model.num_params();
        eprintln!(
            "model: {} ({parameters} parameters): {}",
            req.kind.name(),
            model.architecture()
        );
        let (model, report) = train::train(
            model,
            self.autodiff,
            self.train_set,
            self.test_set,
            &req.options,
        )?;
        let model = model.to_device(self.device);
        let metadata = metadata(req, &report, self.description, self.train_set.len());
        let proto = models::to_onnx(&model, &format!("tern_{}", req.kind.name()), &metadata);
        onnx::write_model(&proto, &req.output)?;
        let onnx_bytes = std::fs::metadata(&req.output)
            .map_err(|e| Error::io(&req.output, e))?
            .len();
        let round_trip_max_diff = round_trip_diff(&model, self.device, self.test_set, &req.output)?;
        if round_trip_max_diff > ROUND_TRIP_TOLERANCE {
            return Err(Error::Onnx {
                path: req.output.clone(),
                message: format!(
                    "round trip through tract differs from the trained model by {round_trip_max_diff:e} \
                     (tolerance {ROUND_TRIP_TOLERANCE:e})"
                ),
            });
        }
        Ok(TrainOutcome {
            report,
            device: self.description.to_owned(),
            onnx_bytes,
            round_trip_max_diff,
            parameters,
        })
    }
}

/// Largest |burn - tract| over the first [`ROUND_TRIP_IMAGES`] test images.
pub fn round_trip_diff<M: ImageClassifier>(
    model: &M,
    device: &Device,
    data: &Dataset,
    path: &Path,
) -> Result<f32> {
    let n = ROUND_TRIP_IMAGES.min(data.len());
    let indices: Vec<usize> = (0..n).collect();
    let ours = train::predict(model, data, &indices, device);
    let reference = OnnxReference::load(path, n)?.predict(&data.images_f32(&indices))?;
    if reference.len() != ours.len() {
        return Err(Error::Onnx {
            path: path.to_owned(),
            message: format!(
                "{} output values from tract, expected {}",
                reference.len(),
                ours.len()
            ),
        });
    }
    Ok(ours
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max))
}

fn metadata(
    req: &TrainRequest,
    report: &TrainReport,
    device: &str,
    train_images: usize,
) -> Vec<(String, String)> {
    let o = &req.options;
    [
        ("model", req.kind.name().to_string()),
        (
            "dataset",
            "Fashion-MNIST (Debian package dataset-fashion-mnist)".into(),
        ),
        ("train_images", train_images.to_string()),
        ("test_images", report.test_images.to_string()),
        ("test_accuracy", format!("{:.4}", report.test_accuracy)),
        ("epochs", o.epochs.to_string()),
        ("batch_size", o.batch_size.to_string()),
        ("learning_rate", o.learning_rate.to_string()),
        ("seed", o.seed.to_string()),
        ("training_seconds", format!("{:.0}", report.seconds)),
        ("device", device.to_string()),
        ("framework", "burn 0.22.1".into()),
        ("date", utc_now()),
        (
            "input",
            "image: float32 [batch, 1, 28, 28], grey level / 255".into(),
        ),
        (
            "output",
            "probabilities: float32 [batch, 10], softmax over the classes".into(),
        ),
        ("classes", CLASS_NAMES.join(",")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm), proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
