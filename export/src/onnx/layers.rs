//! Writers for burn layers as ONNX subgraphs. Each function reads the trained
//! parameters of one burn module and appends the equivalent ONNX nodes.

use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{BatchNorm, LayerNorm, Linear, PaddingConfig2d};
use burn::prelude::*;

use super::builder::{GraphBuilder, attr_float, attr_int, attr_ints};

/// Dimensions and row-major values of a float tensor.
pub fn tensor_values<const D: usize>(tensor: Tensor<D>) -> (Vec<i64>, Vec<f32>) {
    let dims = tensor.dims().iter().map(|&d| d as i64).collect();
    let values = tensor.into_data().iter::<f32>().collect();
    (dims, values)
}

/// Values of a float tensor, row-major.
pub fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor_values(tensor).1
}

/// Transposes a row-major `[rows, cols]` matrix.
pub fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// `Gemm(x, W, b)` for a 2-D input; burn stores `W` as `[in, out]`, which is
/// Gemm's `B` without `transB`.
pub fn gemm(g: &mut GraphBuilder, name: &str, input: &str, linear: &Linear) -> String {
    let (dims, w) = tensor_values(linear.weight.val());
    let w = g.weight(&format!("{name}.weight"), &dims, w);
    let mut inputs = vec![input.to_owned(), w];
    if let Some(bias) = &linear.bias {
        let (dims, b) = tensor_values(bias.val());
        inputs.push(g.weight(&format!("{name}.bias"), &dims, b));
    }
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    g.node("Gemm", name, &inputs, vec![])
}

/// `MatMul(x, W) + b` for inputs of any rank (Gemm only takes 2-D).
pub fn matmul_add(g: &mut GraphBuilder, name: &str, input: &str, linear: &Linear) -> String {
    let (dims, w) = tensor_values(linear.weight.val());
    let w = g.weight(&format!("{name}.weight"), &dims, w);
    let product = g.node("MatMul", &format!("{name}.matmul"), &[input, &w], vec![]);
    match &linear.bias {
        Some(bias) => {
            let (dims, b) = tensor_values(bias.val());
            let b = g.weight(&format!("{name}.bias"), &dims, b);
            g.node("Add", name, &[&product, &b], vec![])
        }
        None => product,
    }
}

/// Padding of a burn 2-D window op as ONNX `pads` (`[top, left, bottom, right]`).
fn pads_2d(padding: &PaddingConfig2d, kernel: [usize; 2]) -> [i64; 4] {
    match padding {
        PaddingConfig2d::Valid => [0; 4],
        PaddingConfig2d::Explicit(t, l, b, r) => [*t as i64, *l as i64, *b as i64, *r as i64],
        PaddingConfig2d::Same => {
            let (h, w) = ((kernel[0] - 1) as i64, (kernel[1] - 1) as i64);
            [h / 2, w / 2, h - h / 2, w - w / 2]
        }
    }
}

/// A 2-D convolution.
pub fn conv2d(g: &mut GraphBuilder, name: &str, input: &str, conv: &Conv2d) -> String {
    let (dims, w) = tensor_values(conv.weight.val());
    let mut inputs = vec![
        input.to_owned(),
        g.weight(&format!("{name}.weight"), &dims, w),
    ];
    if let Some(bias) = &conv.bias {
        let (dims, b) = tensor_values(bias.val());
        inputs.push(g.weight(&format!("{name}.bias"), &dims, b));
    }
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let as_i64 = |a: [usize; 2]| [a[0] as i64, a[1] as i64];
    let attrs = vec![
        attr_ints("kernel_shape", &as_i64(conv.kernel_size)),
        attr_ints("strides", &as_i64(conv.stride)),
        attr_ints("dilations", &as_i64(conv.dilation)),
        attr_ints("pads", &pads_2d(&conv.padding, conv.kernel_size)),
        attr_int("group", conv.groups as i64),
    ];
    g.node("Conv", name, &inputs, attrs)
}

/// Inference-mode batch normalisation over channel axis 1.
pub fn batch_norm(g: &mut GraphBuilder, name: &str, input: &str, bn: &BatchNorm) -> String {
    let mut param = |suffix: &str, tensor: Tensor<1>| {
        let (dims, v) = tensor_values(tensor);
        g.weight(&format!("{name}.{suffix}"), &dims, v)
    };
    let scale = param("weight", bn.gamma.val());
    let bias = param("bias", bn.beta.val());
    let mean = param("running_mean", bn.running_mean.value());
    let var = param("running_var", bn.running_var.value());
    let attrs = vec![attr_float("epsilon", bn.epsilon as f32)];
    g.node(
        "BatchNormalization",
        name,
        &[input, &scale, &bias, &mean, &var],
        attrs,
    )
}

/// Layer normalisation over the last axis.
pub fn layer_norm(
    g: &mut GraphBuilder,
    name: &str,
    input: &str,
    ln: &LayerNorm,
    epsilon: f64,
) -> String {
    let (dims, gamma) = tensor_values(ln.gamma.val());
    let scale = g.weight(&format!("{name}.weight"), &dims, gamma);
    let bias = match &ln.beta {
        Some(beta) => {
            let (dims, b) = tensor_values(beta.val());
            g.weight(&format!("{name}.bias"), &dims, b)
        }
        None => g.weight(&format!("{name}.bias"), &dims, vec![0.0; dims[0] as usize]),
    };
    let attrs = vec![attr_int("axis", -1), attr_float("epsilon", epsilon as f32)];
    g.node("LayerNormalization", name, &[input, &scale, &bias], attrs)
}

/// 2-D max pooling.
pub fn max_pool2d(g: &mut GraphBuilder, name: &str, input: &str, pool: &MaxPool2d) -> String {
    let as_i64 = |a: [usize; 2]| [a[0] as i64, a[1] as i64];
    let attrs = vec![
        attr_ints("kernel_shape", &as_i64(pool.kernel_size)),
        attr_ints("strides", &as_i64(pool.stride)),
        attr_ints("dilations", &as_i64(pool.dilation)),
        attr_ints("pads", &pads_2d(&pool.padding, pool.kernel_size)),
        attr_int("ceil_mode", i64::from(pool.ceil_mode)),
    ];
    g.node("MaxPool", name, &[input], attrs)
}

/// Exact GELU, `0.5 * x * (1 + erf(x / sqrt(2)))` (opset 17 has no `Gelu` op).
pub fn gelu(g: &mut GraphBuilder, name: &str, input: &str) -> String {
    let sqrt2 = g.scalar(&format!("{name}.sqrt2"), std::f32::consts::SQRT_2);
    let one = g.scalar(&format!("{name}.one"), 1.0);
    let half = g.scalar(&format!("{name}.half"), 0.5);
    let scaled = g.node("Div", &format!("{name}.div"), &[input, &sqrt2], vec![]);
    let erf = g.node("Erf", &format!("{name}.erf"), &[&scaled], vec![]);
    let shifted = g.node("Add", &format!("{name}.add"), &[&erf, &one], vec![]);
    let gated = g.node("Mul", &format!("{name}.mul"), &[input, &shifted], vec![]);
    g.node("Mul", name, &[&gated, &half], vec![])
}

/// `Reshape` to a constant shape (`-1` infers one dimension).
pub fn reshape(g: &mut GraphBuilder, name: &str, input: &str, shape: &[i64]) -> String {
    let shape = g.ints(&format!("{name}.shape"), shape);
    g.node("Reshape", name, &[input, &shape], vec![])
}

/// `Transpose` with a permutation.
pub fn transpose_node(g: &mut GraphBuilder, name: &str, input: &str, perm: &[i64]) -> String {
    g.node("Transpose", name, &[input], vec![attr_ints("perm", perm)])
}
