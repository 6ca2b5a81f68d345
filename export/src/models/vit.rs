//! A small vision transformer (ViT): 7x7 patches, learned position embeddings,
//! pre-norm encoder blocks (multi-head self-attention, LayerNorm, GELU MLP),
//! mean pooling over patches and a linear head.

use burn::module::Param;
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::{Gelu, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;

use super::ImageClassifier;
use crate::onnx::builder::{GraphBuilder, attr_int, attr_ints};
use crate::onnx::layers::{self, tensor_values};

const PATCH: usize = 7;
const GRID: usize = 28 / PATCH;
const PATCHES: usize = GRID * GRID;
const PATCH_DIM: usize = PATCH * PATCH;
const D_MODEL: usize = 64;
const HEADS: usize = 4;
const D_HEAD: usize = D_MODEL / HEADS;
const MLP: usize = 128;
const LAYERS: usize = 2;
const LN_EPS: f64 = 1e-5;

/// One pre-norm transformer encoder block.
#[derive(Module, Debug)]
pub struct EncoderBlock {
    norm1: LayerNorm,
    attention: MultiHeadAttention,
    norm2: LayerNorm,
    mlp_in: Linear,
    mlp_out: Linear,
    gelu: Gelu,
}

impl EncoderBlock {
    fn new(device: &Device) -> Self {
        EncoderBlock {
            norm1: LayerNormConfig::new(D_MODEL)
                .with_epsilon(LN_EPS)
                .init(device),
            attention: MultiHeadAttentionConfig::new(D_MODEL, HEADS)
                .with_dropout(0.0)
                .init(device),
            norm2: LayerNormConfig::new(D_MODEL)
                .with_epsilon(LN_EPS)
                .init(device),
            mlp_in: LinearConfig::new(D_MODEL, MLP).init(device),
            mlp_out: LinearConfig::new(MLP, D_MODEL).init(device),
            gelu: Gelu::new(),
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let normed = self.norm1.forward(x.clone());
        let attended = self.attention.forward(MhaInput::self_attn(normed)).context;
        let x = x + attended;
        let hidden = self
            .gelu
            .forward(self.mlp_in.forward(self.norm2.forward(x.clone())));
        x + self.mlp_out.forward(hidden)
    }

    fn write_onnx(&self, g: &mut GraphBuilder, name: &str, input: &str) -> String {
        let normed = layers::layer_norm(g, &format!("{name}.norm1"), input, &self.norm1, LN_EPS);
        let attended = write_self_attention(g, &format!("{name}.attn"), &normed, &self.attention);
        let x = g.node(
            "Add",
            &format!("{name}.residual1"),
            &[input, &attended],
            vec![],
        );
        let normed = layers::layer_norm(g, &format!("{name}.norm2"), &x, &self.norm2, LN_EPS);
        let hidden = layers::matmul_add(g, &format!("{name}.mlp_in"), &normed, &self.mlp_in);
        let hidden = layers::gelu(g, &format!("{name}.gelu"), &hidden);
        let out = layers::matmul_add(g, &format!("{name}.mlp_out"), &hidden, &self.mlp_out);
        g.node("Add", &format!("{name}.residual2"), &[&x, &out], vec![])
    }
}

/// Multi-head self-attention written out as MatMul / Softmax / MatMul.
fn write_self_attention(
    g: &mut GraphBuilder,
    name: &str,
    input: &str,
    mha: &MultiHeadAttention,
) -> String {
    let (p, h, d) = (PATCHES as i64, HEADS as i64, D_HEAD as i64);
    let mut heads = |part: &str, linear: &Linear, perm: &[i64]| {
        let projected = layers::matmul_add(g, &format!("{name}.{part}"), input, linear);
        let split = layers::reshape(
            g,
            &format!("{name}.{part}.split"),
            &projected,
            &[-1, p, h, d],
        );
        layers::transpose_node(g, &format!("{name}.{part}.heads"), &split, perm)
    };
    let q = heads("query", &mha.query, &[0, 2, 1, 3]); // [N, H, P, D]
    let k = heads("key", &mha.key, &[0, 2, 3, 1]); // [N, H, D, P]
    let v = heads("value", &mha.value, &[0, 2, 1, 3]); // [N, H, P, D]
    let scores = g.node("MatMul", &format!("{name}.scores"), &[&q, &k], vec![]);
    let scale = g.scalar(&format!("{name}.scale"), (D_HEAD as f32).sqrt());
    let scores = g.node("Div", &format!("{name}.scaled"), &[&scores, &scale], vec![]);
    let weights = g.node(
        "Softmax",
        &format!("{name}.softmax"),
        &[&scores],
        vec![attr_int("axis", -1)],
    );
    let context = g.node(
        "MatMul",
        &format!("{name}.context"),
        &[&weights, &v],
        vec![],
    );
    let context = layers::transpose_node(g, &format!("{name}.merge"), &context, &[0, 2, 1, 3]);
    let context = layers::reshape(
        g,
        &format!("{name}.concat"),
        &context,
        &[-1, p, D_MODEL as i64],
    );
    layers::matmul_add(g, &format!("{name}.output"), &context, &mha.output)
}

/// Vision transformer for 28x28 grey images.
#[derive(Module, Debug)]
pub struct Vit {
    patch_embed: Linear,
    position: Param<Tensor<3>>,
    blocks: Vec<EncoderBlock>,
    norm: LayerNorm,
    head: Linear,
}

impl Vit {
    /// A freshly initialised ViT on `device`.
    pub fn new(device: &Device) -> Self {
        let position = Tensor::random(
            [1, PATCHES, D_MODEL],
            burn::tensor::Distribution::Normal(0.0, 0.02),
            device,
        );
        Vit {
            patch_embed: LinearConfig::new(PATCH_DIM, D_MODEL).init(device),
            position: Param::from_tensor(position),
            blocks: (0..LAYERS).map(|_| EncoderBlock::new(device)).collect(),
            norm: LayerNormConfig::new(D_MODEL)
                .with_epsilon(LN_EPS)
                .init(device),
            head: LinearConfig::new(D_MODEL, super::CLASSES).init(device),
        }
    }
}

impl ImageClassifier for Vit {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let [batch, ..] = images.dims();
        // [N,1,28,28] -> [N,4,7,4,7] -> [N,4,4,7,7] -> [N,16,49]: row-major patches.
        let patches = images
            .reshape([batch, GRID, PATCH, GRID, PATCH])
            .swap_dims(2, 3)
            .reshape([batch, PATCHES, PATCH_DIM]);
        let mut x = self.patch_embed.forward(patches) + self.position.val();
        for block in &self.blocks {
            x = block.forward(x);
        }
        let pooled = self.norm.forward(x).mean_dim(1).reshape([batch, D_MODEL]);
        self.head.forward(pooled)
    }

    fn write_onnx(&self, g: &mut GraphBuilder, input: &str) -> String {
        let (grid, patch) = (GRID as i64, PATCH as i64);
        let x = layers::reshape(g, "patchify.split", input, &[-1, grid, patch, grid, patch]);
        let x = layers::transpose_node(g, "patchify.order", &x, &[0, 1, 3, 2, 4]);
        let x = layers::reshape(g, "patchify", &x, &[-1, PATCHES as i64, PATCH_DIM as i64]);
        let x = layers::matmul_add(g, "patch_embed", &x, &self.patch_embed);
        let (dims, pos) = tensor_values(self.position.val());
        let pos = g.weight("position", &dims, pos);
        let mut x = g.node("Add", "add_position", &[&x, &pos], vec![]);
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.write_onnx(g, &format!("block{i}"), &x);
        }
        let x = layers::layer_norm(g, "norm", &x, &self.norm, LN_EPS);
        let pooled = g.node(
            "ReduceMean",
            "pool",
            &[&x],
            vec![attr_ints("axes", &[1]), attr_int("keepdims", 0)],
        );
        layers::gemm(g, "head", &pooled, &self.head)
    }

    fn architecture(&self) -> String {
        format!(
            "ViT: {PATCH}x{PATCH} patches ({PATCHES}), dim {D_MODEL}, {LAYERS} pre-LN blocks, \
             {HEADS} heads, MLP {MLP} (GELU), mean pool, fc(10)"
        )
    }
}
