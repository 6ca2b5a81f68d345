//! The training loop: Adam with warm-up and cosine decay, cross-entropy loss,
//! a progress bar (loss, accuracy, throughput) and test-set evaluation.

use std::time::Instant;

use burn::grad_clipping::GradientClippingConfig;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::classify::{argmax_rows, correct_predictions};
use crate::data::Dataset;
use crate::data::fashion_mnist::CLASSES;
use crate::error::{Error, Result};
use crate::models::ImageClassifier;

/// Settings of one training run.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Gradient-norm clip.
    pub grad_clip: Option<f32>,
    /// Seed for initialisation and shuffling.
    pub seed: u64,
    /// Show a progress bar (it hides itself when stderr is not a terminal).
    pub progress: bool,
}

/// What a training run achieved.
#[derive(Debug, Clone)]
pub struct TrainReport {
    /// Test accuracy after each epoch (fraction).
    pub epoch_accuracy: Vec<f64>,
    /// Final test accuracy (fraction).
    pub test_accuracy: f64,
    /// Test images evaluated.
    pub test_images: usize,
    /// Wall-clock training time in seconds, evaluation included.
    pub seconds: f64,
    /// Mean training throughput in images per second.
    pub images_per_second: f64,
}

/// Learning rate at `step` of `total`: linear warm-up over the first 3%, then
/// cosine decay to 5% of the peak.
pub fn learning_rate(peak: f64, step: usize, total: usize) -> f64 {
    let warmup = (total * 3 / 100).max(1);
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let progress = (step - warmup) as f64 / (total - warmup).max(1) as f64;
    let floor = 0.05 * peak;
    floor + (peak - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
}

/// Images `[n,1,28,28]` for `indices` of `data`, on `device`.
pub fn image_batch(data: &Dataset, indices: &[usize], device: &Device) -> Tensor<4> {
    let values = data.images_f32(indices);
    Tensor::from_data(TensorData::new(values, [indices.len(), 1, 28, 28]), device)
}

/// Trains `model` (whose parameters live on an autodiff device) and returns
/// the trained model in inference mode with its report.
pub fn train<M: ImageClassifier>(
    mut model: M,
    device: &Device,
    train_set: &Dataset,
    test_set: &Dataset,
    opts: &TrainOptions,
) -> Result<(M, TrainReport)> {
    if opts.epochs == 0 || opts.batch_size == 0 || train_set.is_empty() {
        return Err(Error::InvalidOption {
            option: "--epochs/--batch-size",
            reason: "need at least one epoch, one image per batch and a non-empty training set"
                .into(),
        });
    }
    let mut optim = AdamConfig::new()
        .with_grad_clipping(opts.grad_clip.map(GradientClippingConfig::Norm))
        .init();
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
    let mut order: Vec<usize> = (0..train_set.len()).collect();
    let steps_per_epoch = train_set.len().div_ceil(opts.batch_size);
    let total_steps = steps_per_epoch * opts.epochs;
    let started = Instant::now();
    let mut epoch_accuracy = Vec::new();
    let mut trained_images = 0usize;

    for epoch in 1..=opts.epochs {
        order.shuffle(&mut rng);
        let bar = progress_bar(opts.progress, steps_per_epoch, epoch, opts.epochs);
        let epoch_start = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        for (step, batch) in order.chunks(opts.batch_size).enumerate() {
            let images = image_batch(train_set, batch, device);
            let labels: Vec<i64> = batch
                .iter()
                .map(|&i| i64::from(train_set.labels[i]))
                .collect();
            let targets =
                Tensor::<1, Int>::from_data(TensorData::new(labels.clone(), [batch.len()]), device);
            let logits = model.forward(images);
            let loss = loss_fn.forward(logits.clone(), targets);
            let loss_value: f32 = loss.clone().into_scalar::<f32>();
            if !loss_value.is_finite() {
                bar.abandon();
                return Err(Error::Diverged {
                    epoch,
                    step,
                    loss: loss_value,
                });
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let lr = learning_rate(
                opts.learning_rate,
                (epoch - 1) * steps_per_epoch + step,
                total_steps,
            );
            model = optim.step(lr, model, grads);

            let predicted = logits
                .argmax(1)
                .into_data()
                .iter::<i64>()
                .collect::<Vec<_>>();
            correct += predicted
                .iter()
                .zip(&labels)
                .filter(|(p, l)| p == l)
                .count();
            loss_sum += f64::from(loss_value) * batch.len() as f64;
            seen += batch.len();
            let rate = seen as f64 / epoch_start.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "loss {:.4}  acc {:.2}%  {:.0} img/s",
                loss_sum / seen as f64,
                100.0 * correct as f64 / seen as f64,
                rate
            ));
            bar.inc(1);
        }
        bar.finish_and_clear();
        trained_images += seen;
        let accuracy = evaluate(&model.valid(), test_set, device, 500)?;
        epoch_accuracy.push(accuracy);
        eprintln!(
            "epoch {epoch:>2}/{}  loss {:.4}  train acc {:.2}%  test acc {:.2}%  {:.0} img/s  ({:.0} s)",
            opts.epochs,
            loss_sum / seen as f64,
            100.0 * correct as f64 / seen as f64,
            100.0 * accuracy,
            seen as f64 / epoch_start.elapsed().as_secs_f64().max(1e-9),
            started.elapsed().as_secs_f64()
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    let test_accuracy = *epoch_accuracy.last().unwrap_or(&0.0);
    let report = TrainReport {
        epoch_accuracy,
        test_accuracy,
        test_images: test_set.len(),
        seconds,
        images_per_second: trained_images as f64 / seconds.max(1e-9),
    };
    Ok((model.valid(), report))
}

fn progress_bar(enabled: bool, steps: usize, epoch: usize, epochs: usize) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(steps as u64);
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} (eta {eta})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("epoch {epoch}/{epochs}"));
    bar
}

/// Class probabilities (softmax of the logits), `indices.len()` rows of 10.
pub fn predict<M: ImageClassifier>(
    model: &M,
    data: &Dataset,
    indices: &[usize],
    device: &Device,
) -> Vec<f32> {
    let logits = model.forward(image_batch(data, indices, device));
    burn::tensor::activation::softmax(logits, 1)
        .into_data()
        .iter::<f32>()
        .collect()
}

/// Top-1 accuracy of an inference-mode `model` on all of `data`.
pub fn evaluate<M: ImageClassifier>(
    model: &M,
    data: &Dataset,
    device: &Device,
    batch: usize,
) -> Result<f64> {
    let mut correct = 0usize;
    let indices: Vec<usize> = (0..data.len()).collect();
    for chunk in indices.chunks(batch.max(1)) {
        let probs = predict(model, data, chunk, device);
        debug_assert_eq!(probs.len(), chunk.len() * CLASSES);
        correct += correct_predictions(&argmax_rows(&probs, CLASSES), &data.labels_at(chunk));
    }
    Ok(correct as f64 / data.len().max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::learning_rate;

    #[test]
    fn schedule_warms_up_then_decays_to_the_floor() {
        let total = 1000;
        assert!(learning_rate(1.0, 0, total) < 0.1);
        assert!((learning_rate(1.0, 29, total) - 1.0).abs() < 1e-9);
        assert!(learning_rate(1.0, 500, total) < 1.0);
        assert!((learning_rate(1.0, 999, total) - 0.05).abs() < 1e-3);
    }
}
