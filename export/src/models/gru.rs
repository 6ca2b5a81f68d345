//! GRU classifier: the image is read as a sequence of 28 rows of 28 pixels; the
//! last hidden state goes through a linear layer.

use burn::nn::{Gru, GruConfig, Linear, LinearConfig};
use burn::prelude::*;

use super::{ImageClassifier, SEQ_LEN, STEP_FEATURES};
use crate::onnx::builder::{GraphBuilder, attr_int};
use crate::onnx::layers;

const HIDDEN: usize = 128;

/// One-layer GRU over image rows, then a linear head.
#[derive(Module, Debug)]
pub struct GruClassifier {
    gru: Gru,
    head: Linear,
}

impl GruClassifier {
    /// A freshly initialised model on `device`. burn's default GRU applies the
    /// reset gate after the hidden matmul: ONNX `linear_before_reset = 1`.
    pub fn new(device: &Device) -> Self {
        GruClassifier {
            gru: GruConfig::new(STEP_FEATURES, HIDDEN, true)
                .with_reset_after(true)
                .init(device),
            head: LinearConfig::new(HIDDEN, super::CLASSES).init(device),
        }
    }
}

impl ImageClassifier for GruClassifier {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let [batch, ..] = images.dims();
        let rows = images.reshape([batch, SEQ_LEN, STEP_FEATURES]);
        let all = self.gru.forward(rows, None);
        let last = all
            .slice([0..batch, SEQ_LEN - 1..SEQ_LEN, 0..HIDDEN])
            .reshape([batch, HIDDEN]);
        self.head.forward(last)
    }

    fn write_onnx(&self, g: &mut GraphBuilder, input: &str) -> String {
        // ONNX GRU gate order is z (update), r (reset), h (new); W is [hidden, input].
        let gates = [
            &self.gru.update_gate,
            &self.gru.reset_gate,
            &self.gru.new_gate,
        ];
        let [w, r, b] = super::rnn_weights(g, "gru", &gates, HIDDEN);
        let h = HIDDEN as i64;
        let seq = super::rows_as_sequence(g, input);
        let attrs = vec![
            attr_int("hidden_size", h),
            attr_int("linear_before_reset", i64::from(self.gru.reset_after)),
        ];
        g.node_multi(
            "GRU",
            "gru",
            &[&seq, &w, &r, &b],
            &["gru.Y", "gru.Y_h"],
            attrs,
        );
        let last = layers::reshape(g, "last_hidden", "gru.Y_h", &[-1, h]);
        layers::gemm(g, "head", &last, &self.head)
    }

    fn architecture(&self) -> String {
        format!(
            "GRU(28 rows x 28, hidden {HIDDEN}, linear_before_reset=1), fc(10) on the last hidden state"
        )
    }
}
