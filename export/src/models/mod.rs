//! The four Fashion-MNIST classifiers Tern trains, and what they share: the
//! [`ImageClassifier`] trait (forward pass + ONNX writer) and [`ModelKind`].
//!
//! Every model takes `image: [N, 1, 28, 28]` float32 in `[0, 1]` and its ONNX
//! graph ends in `Softmax`, output `probabilities: [N, 10]`.

pub mod cnn;
pub mod gru;
pub mod lstm;
pub mod vit;

use burn::nn::{GateController, Linear};
use burn::prelude::*;
use tract_onnx::pb::ModelProto;

use crate::onnx::builder::{Dim, GraphBuilder, attr_int};
use crate::onnx::layers::{self, transpose, values};

pub use cnn::Cnn;
pub use gru::GruClassifier;
pub use lstm::LstmClassifier;
pub use vit::Vit;

/// Number of output classes.
pub const CLASSES: usize = crate::data::fashion_mnist::CLASSES;
/// Recurrent models read one image row per time step.
pub const SEQ_LEN: usize = 28;
/// Features per time step (pixels per row).
pub const STEP_FEATURES: usize = 28;
/// Name of the ONNX graph input.
pub const INPUT_NAME: &str = "image";
/// Name of the ONNX graph output.
pub const OUTPUT_NAME: &str = "probabilities";

/// A classifier that burn can train and Tern can write as ONNX.
pub trait ImageClassifier: Module + Clone + core::fmt::Debug + Send + 'static {
    /// Logits `[N, 10]` for images `[N, 1, 28, 28]`.
    fn forward(&self, images: Tensor<4>) -> Tensor<2>;
    /// Appends the model's ONNX nodes reading `input` and returns the name of
    /// the logits value.
    fn write_onnx(&self, g: &mut GraphBuilder, input: &str) -> String;
    /// One-line description of the architecture, for metadata and logs.
    fn architecture(&self) -> String;
}

/// The architectures `tern train --model` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelKind {
    /// Two conv-BN-ReLU-pool stages and a two-layer classifier.
    Cnn,
    /// LSTM over the 28 image rows.
    Lstm,
    /// GRU over the 28 image rows.
    Gru,
    /// Small vision transformer on 7x7 patches.
    Transformer,
}

/// Training settings that reach the accuracy goal within the time budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainDefaults {
    /// Passes over the 60,000 training images.
    pub epochs: usize,
    /// Images per optimiser step.
    pub batch_size: usize,
    /// Peak Adam learning rate (cosine-decayed after a short warm-up).
    pub learning_rate: f64,
    /// Gradient-norm clip, if any.
    pub grad_clip: Option<f32>,
    /// The test accuracy the defaults must reach (fraction).
    pub min_accuracy: f64,
}

impl ModelKind {
    /// All kinds, in the order the README lists them.
    pub const ALL: [ModelKind; 4] = [
        ModelKind::Cnn,
        ModelKind::Lstm,
        ModelKind::Gru,
        ModelKind::Transformer,
    ];

    /// The lowercase name used on the command line and in file names.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Cnn => "cnn",
            ModelKind::Lstm => "lstm",
            ModelKind::Gru => "gru",
            ModelKind::Transformer => "transformer",
        }
    }

    /// Looks a kind up by [`ModelKind::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The default training settings.
    pub fn defaults(self) -> TrainDefaults {
        match self {
            ModelKind::Cnn => TrainDefaults {
                epochs: 6,
                batch_size: 128,
                learning_rate: 2e-3,
                grad_clip: None,
                min_accuracy: 0.90,
            },
            ModelKind::Lstm => TrainDefaults {
                epochs: 10,
                batch_size: 128,
                learning_rate: 2e-3,
                grad_clip: Some(1.0),
                min_accuracy: 0.87,
            },
            ModelKind::Gru => TrainDefaults {
                epochs: 10,
                batch_size: 128,
                learning_rate: 2e-3,
                grad_clip: Some(1.0),
                min_accuracy: 0.87,
            },
            ModelKind::Transformer => TrainDefaults {
                epochs: 12,
                batch_size: 128,
                learning_rate: 1e-3,
                grad_clip: Some(1.0),
                min_accuracy: 0.85,
            },
        }
    }
}

/// Builds the whole ONNX model: typed input, the classifier, `Softmax`, output.
pub fn to_onnx<M: ImageClassifier>(
    model: &M,
    graph_name: &str,
    metadata: &[(String, String)],
) -> ModelProto {
    let mut g = GraphBuilder::new(graph_name);
    let image_dims = [
        Dim::Symbol("batch"),
        Dim::Fixed(1),
        Dim::Fixed(28),
        Dim::Fixed(28),
    ];
    let input = g.input(INPUT_NAME, &image_dims);
    let logits = model.write_onnx(&mut g, &input);
    let probs = g.node(
        "Softmax",
        OUTPUT_NAME,
        &[&logits],
        vec![attr_int("axis", 1)],
    );
    g.output(&probs, &[Dim::Symbol("batch"), Dim::Fixed(CLASSES as i64)]);
    g.into_model(&model.architecture(), metadata)
}

/// `[N,1,28,28]` image to the `[28, N, 28]` (time-major) sequence ONNX RNNs read.
fn rows_as_sequence(g: &mut GraphBuilder, input: &str) -> String {
    let rows = layers::reshape(
        g,
        "rows",
        input,
        &[-1, SEQ_LEN as i64, STEP_FEATURES as i64],
    );
    layers::transpose_node(g, "time_major", &rows, &[1, 0, 2])
}

/// Writes the `W`, `R` and `B` initializers of an ONNX `LSTM`/`GRU` node named
/// `name` from burn's per-gate linear pairs, given in ONNX gate order. burn stores
/// each weight as `[in, out]`; ONNX wants `[1, gates * hidden, in]`, and `B` is
/// every gate's input bias followed by every gate's recurrent bias.
fn rnn_weights(
    g: &mut GraphBuilder,
    name: &str,
    gates: &[&GateController],
    hidden: usize,
) -> [String; 3] {
    let (mut w, mut r, mut wb, mut rb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for gate in gates {
        let (input, hidden_in) = (&gate.input_transform, &gate.hidden_transform);
        w.extend(transpose(
            &values(input.weight.val()),
            STEP_FEATURES,
            hidden,
        ));
        r.extend(transpose(&values(hidden_in.weight.val()), hidden, hidden));
        wb.extend(bias_or_zeros(input, hidden));
        rb.extend(bias_or_zeros(hidden_in, hidden));
    }
    wb.extend(rb);
    let (rows, h, i) = (
        (gates.len() * hidden) as i64,
        hidden as i64,
        STEP_FEATURES as i64,
    );
    [
        g.weight(&format!("{name}.W"), &[1, rows, i], w),
        g.weight(&format!("{name}.R"), &[1, rows, h], r),
        g.weight(&format!("{name}.B"), &[1, 2 * rows], wb),
    ]
}

/// A linear layer's bias, or zeros when it has none.
fn bias_or_zeros(linear: &Linear, len: usize) -> Vec<f32> {
    linear
        .bias
        .as_ref()
        .map(|b| values(b.val()))
        .unwrap_or_else(|| vec![0.0; len])
}
