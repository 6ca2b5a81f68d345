//! The default CNN: two conv-BN-ReLU-pool stages and a two-layer classifier.
//!
//! `[N,1,28,28] -> conv3x3(32) -> BN -> ReLU -> maxpool2 -> conv3x3(64) -> BN -> ReLU
//! -> maxpool2 -> flatten(3136) -> fc(128) -> ReLU -> dropout -> fc(10)`

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d, Relu,
};
use burn::prelude::*;

use super::ImageClassifier;
use crate::onnx::builder::{GraphBuilder, attr_int};
use crate::onnx::layers;

/// Convolutional classifier for 28x28 grey images.
#[derive(Module, Debug)]
pub struct Cnn {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    pool: MaxPool2d,
    fc1: Linear,
    dropout: Dropout,
    fc2: Linear,
    relu: Relu,
}

const C1: usize = 32;
const C2: usize = 64;
const HIDDEN: usize = 128;
const FLAT: usize = C2 * 7 * 7;

impl Cnn {
    /// A freshly initialised CNN on `device`.
    pub fn new(device: &Device) -> Self {
        let conv = |cin, cout| {
            Conv2dConfig::new([cin, cout], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .init(device)
        };
        Cnn {
            conv1: conv(1, C1),
            bn1: BatchNormConfig::new(C1).init(device),
            conv2: conv(C1, C2),
            bn2: BatchNormConfig::new(C2).init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            fc1: LinearConfig::new(FLAT, HIDDEN).init(device),
            dropout: DropoutConfig::new(0.3).init(),
            fc2: LinearConfig::new(HIDDEN, super::CLASSES).init(device),
            relu: Relu::new(),
        }
    }
}

impl ImageClassifier for Cnn {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let [batch, ..] = images.dims();
        let x = self.pool.forward(
            self.relu
                .forward(self.bn1.forward(self.conv1.forward(images))),
        );
        let x = self
            .pool
            .forward(self.relu.forward(self.bn2.forward(self.conv2.forward(x))));
        let x = x.reshape([batch, FLAT]);
        let x = self.dropout.forward(self.relu.forward(self.fc1.forward(x)));
        self.fc2.forward(x)
    }

    fn write_onnx(&self, g: &mut GraphBuilder, input: &str) -> String {
        let x = layers::conv2d(g, "conv1", input, &self.conv1);
        let x = layers::batch_norm(g, "bn1", &x, &self.bn1);
        let x = g.node("Relu", "relu1", &[&x], vec![]);
        let x = layers::max_pool2d(g, "pool1", &x, &self.pool);
        let x = layers::conv2d(g, "conv2", &x, &self.conv2);
        let x = layers::batch_norm(g, "bn2", &x, &self.bn2);
        let x = g.node("Relu", "relu2", &[&x], vec![]);
        let x = layers::max_pool2d(g, "pool2", &x, &self.pool);
        let x = g.node("Flatten", "flatten", &[&x], vec![attr_int("axis", 1)]);
        let x = layers::gemm(g, "fc1", &x, &self.fc1);
        let x = g.node("Relu", "relu3", &[&x], vec![]);
        layers::gemm(g, "fc2", &x, &self.fc2)
    }

    fn architecture(&self) -> String {
        format!(
            "conv3x3({C1})-bn-relu-maxpool2, conv3x3({C2})-bn-relu-maxpool2, fc({HIDDEN})-relu-dropout(0.3), fc(10)"
        )
    }
}
