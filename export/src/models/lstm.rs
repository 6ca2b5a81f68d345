//! LSTM classifier: the image is read as a sequence of 28 rows of 28 pixels; the
//! last hidden state goes through a linear layer.

use burn::nn::{Linear, LinearConfig, Lstm, LstmConfig};
use burn::prelude::*;

use super::{ImageClassifier, SEQ_LEN, STEP_FEATURES};
use crate::onnx::builder::{GraphBuilder, attr_int};
use crate::onnx::layers;

const HIDDEN: usize = 128;

/// One-layer LSTM over image rows, then a linear head.
#[derive(Module, Debug)]
pub struct LstmClassifier {
    lstm: Lstm,
    head: Linear,
}

impl LstmClassifier {
    /// A freshly initialised model on `device`.
    pub fn new(device: &Device) -> Self {
        LstmClassifier {
            lstm: LstmConfig::new(STEP_FEATURES, HIDDEN, true)
                .with_batch_first(true)
                .init(device),
            head: LinearConfig::new(HIDDEN, super::CLASSES).init(device),
        }
    }
}

impl ImageClassifier for LstmClassifier {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let [batch, ..] = images.dims();
        let rows = images.reshape([batch, SEQ_LEN, STEP_FEATURES]);
        let (_, state) = self.lstm.forward(rows, None);
        self.head.forward(state.hidden)
    }

    fn write_onnx(&self, g: &mut GraphBuilder, input: &str) -> String {
        // ONNX LSTM gate order is i, o, f, c; each gate's W is [hidden, input].
        let forget = self
            .lstm
            .forget_gate
            .as_ref()
            .expect("LstmClassifier always has a forget gate");
        let gates = [
            &self.lstm.input_gate,
            &self.lstm.output_gate,
            forget,
            &self.lstm.cell_gate,
        ];
        let [w, r, b] = super::rnn_weights(g, "lstm", &gates, HIDDEN);
        let h = HIDDEN as i64;
        let seq = super::rows_as_sequence(g, input);
        let attrs = vec![attr_int("hidden_size", h)];
        g.node_multi(
            "LSTM",
            "lstm",
            &[&seq, &w, &r, &b],
            &["lstm.Y", "lstm.Y_h"],
            attrs,
        );
        let last = layers::reshape(g, "last_hidden", "lstm.Y_h", &[-1, h]);
        layers::gemm(g, "head", &last, &self.head)
    }

    fn architecture(&self) -> String {
        format!("LSTM(28 rows x 28, hidden {HIDDEN}), fc(10) on the last hidden state")
    }
}
