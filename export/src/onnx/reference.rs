//! tract-onnx as the f32 reference: loads an ONNX classifier and runs it on
//! Fashion-MNIST images. Used to check every ONNX file Tern writes.

use std::path::{Path, PathBuf};

use tract_onnx::prelude::*;

// Scoring moved to `classify` (it is not ONNX-specific); re-exported for existing callers.
pub use crate::classify::{argmax_rows, correct_predictions};
use crate::data::Dataset;
use crate::data::fashion_mnist::{CLASSES, PIXELS};
use crate::error::{Error, Result};

/// An ONNX image classifier loaded and optimised by tract for a fixed batch size.
pub struct OnnxReference {
    path: PathBuf,
    batch: usize,
    plan: Arc<TypedRunnableModel>,
}

impl OnnxReference {
    /// Loads `path` for inputs of shape `[batch, 1, 28, 28]`.
    pub fn load(path: &Path, batch: usize) -> Result<Self> {
        let err = |e: TractError| Error::Onnx {
            path: path.to_owned(),
            message: format!("{e:#}"),
        };
        let plan = tract_onnx::onnx()
            .model_for_path(path)
            .and_then(|m| m.with_input_fact(0, f32::fact([batch, 1, 28, 28]).into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(err)?;
        Ok(OnnxReference {
            path: path.to_owned(),
            batch,
            plan,
        })
    }

    /// Class probabilities (`images.len() / PIXELS` rows of 10) for images in `[0, 1]`.
    /// A last partial batch is zero-padded.
    pub fn predict(&self, images: &[f32]) -> Result<Vec<f32>> {
        let err = |e: TractError| Error::Onnx {
            path: self.path.clone(),
            message: format!("{e:#}"),
        };
        let n = images.len() / PIXELS;
        let mut out = Vec::with_capacity(n * CLASSES);
        for chunk in images.chunks(self.batch * PIXELS) {
            let rows = chunk.len() / PIXELS;
            let mut padded = chunk.to_vec();
            padded.resize(self.batch * PIXELS, 0.0);
            let input = Tensor::from_shape(&[self.batch, 1, 28, 28], &padded).map_err(err)?;
            let result = self.plan.run(tvec!(input.into())).map_err(err)?;
            let probs = result[0].to_plain_array_view::<f32>().map_err(err)?;
            if probs.shape() != [self.batch, CLASSES] {
                return Err(Error::Onnx {
                    path: self.path.clone(),
                    message: format!(
                        "output shape {:?}, expected [{}, {CLASSES}]",
                        probs.shape(),
                        self.batch
                    ),
                });
            }
            out.extend(probs.iter().take(rows * CLASSES).copied());
        }
        Ok(out)
    }

    /// Top-1 accuracy on the first `limit` images of `data` (all if `None`).
    pub fn accuracy(&self, data: &Dataset, limit: Option<usize>) -> Result<f64> {
        let n = limit.unwrap_or(data.len()).min(data.len());
        let mut correct = 0usize;
        let indices: Vec<usize> = (0..n).collect();
        for chunk in indices.chunks(self.batch * 8) {
            let probs = self.predict(&data.images_f32(chunk))?;
            correct += correct_predictions(&argmax_rows(&probs, CLASSES), &data.labels_at(chunk));
        }
        Ok(correct as f64 / n.max(1) as f64)
    }
}
