//! The ONNX ops Tern claims to support: one list, read by the importer's
//! documentation, by the ONNX conformance test runner (which runs every backend
//! node test whose ops are all in this list) and by the generated table in
//! `docs/ops.md`, so that the three cannot disagree.

/// One supported ONNX op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpSupport {
    /// ONNX op type (default domain).
    pub op: &'static str,
    /// Precisions the lowered op runs in: `f32` always (f16 models run f32 compute
    /// with f16 weights); `int8` when an integer kernel exists, otherwise an int8
    /// model runs the op as a float island between Dequantize/Quantize.
    pub int8: Int8Support,
    /// Limits worth knowing (empty when none).
    pub notes: &'static str,
}

/// How an int8 model runs an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Int8Support {
    /// An integer-only kernel.
    Kernel,
    /// Folded away or a pure data move on int8 bytes (no arithmetic).
    DataMove,
    /// A float island: Dequantize, f32 kernel, Quantize.
    FloatIsland,
    /// Only ever folded into constants at conversion.
    FoldedOnly,
}

impl Int8Support {
    /// Short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Int8Support::Kernel => "int8 kernel",
            Int8Support::DataMove => "int8 (data move)",
            Int8Support::FloatIsland => "float island",
            Int8Support::FoldedOnly => "constant-folded",
        }
    }
}

const fn op(op: &'static str, int8: Int8Support, notes: &'static str) -> OpSupport {
    OpSupport { op, int8, notes }
}

use Int8Support::{DataMove, FloatIsland, FoldedOnly, Kernel};

/// Every ONNX op the converter maps, sorted by name.
pub const SUPPORTED_OPS: &[OpSupport] = &[
    op("Abs", Kernel, "int8 as a lookup table"),
    op(
        "Add",
        Kernel,
        "numpy broadcasting; float, or int32/int64 as i32",
    ),
    op(
        "Attention",
        FloatIsland,
        "opset 23: 4-D Q/K/V, or 3-D with q_num_heads/kv_num_heads; float or bool mask, is_causal; no KV cache, softcap or extra outputs",
    ),
    op("AveragePool", Kernel, "2-D (NCHW)"),
    op(
        "BatchNormalization",
        Kernel,
        "inference mode (no training_mode); folded into the previous Conv/Gemm or lowered to Mul+Add",
    ),
    op(
        "Cast",
        FloatIsland,
        "float, int32/int64 (as i32) and bool; f16/f64/bf16 targets as f32; no narrow or unsigned integer targets",
    ),
    op("Ceil", Kernel, "int8 as a lookup table"),
    op("Celu", Kernel, "int8 as a lookup table"),
    op("Clip", Kernel, "constant bounds; float tensors"),
    op("Concat", Kernel, ""),
    op("Constant", FoldedOnly, ""),
    op("ConstantOfShape", FoldedOnly, ""),
    op("Conv", Kernel, "2-D (NCHW), groups, dilation, auto_pad"),
    op("ConvTranspose", Kernel, "2-D (NCHW)"),
    op("Cos", Kernel, "int8 as a lookup table"),
    op(
        "Div",
        Kernel,
        "numpy broadcasting; float, or int32/int64 as i32 (truncating)",
    ),
    op(
        "Dropout",
        DataMove,
        "inference: identity, mask output all true; training_mode only with ratio 0",
    ),
    op("Elu", Kernel, "int8 as a lookup table"),
    op(
        "Equal",
        FloatIsland,
        "numpy broadcasting; bool output as i32",
    ),
    op("Erf", Kernel, "int8 as a lookup table"),
    op("Exp", Kernel, "int8 as a lookup table"),
    op("Expand", DataMove, "constant shape"),
    op("Flatten", DataMove, ""),
    op("Floor", Kernel, "int8 as a lookup table"),
    op("Gather", DataMove, "negative indices"),
    op("Gelu", Kernel, "int8 as a lookup table"),
    op(
        "Gemm",
        Kernel,
        "constant B and C; transA as a Transpose, a matrix C as an Add",
    ),
    op(
        "GlobalAveragePool",
        Kernel,
        "2-D (NCHW); other ranks as a mean over the spatial axes",
    ),
    op(
        "Greater",
        FloatIsland,
        "numpy broadcasting; bool output as i32",
    ),
    op(
        "GreaterOrEqual",
        FloatIsland,
        "numpy broadcasting; bool output as i32",
    ),
    op(
        "GRU",
        Kernel,
        "constant W/R/B; all directions, linear_before_reset, layout; int8 (int16 state) for the default activations without clip, hidden <= 512, constant or absent initial_h, else a float island",
    ),
    op("HardSigmoid", Kernel, "int8 as a lookup table"),
    op("HardSwish", Kernel, "int8 as a lookup table"),
    op("Identity", DataMove, ""),
    op(
        "LayerNormalization",
        FloatIsland,
        "constant scale and bias; Mean / InvStdDev outputs by a separate reduction chain",
    ),
    op("LeakyRelu", Kernel, "int8 as a lookup table"),
    op(
        "Less",
        FloatIsland,
        "numpy broadcasting; bool output as i32",
    ),
    op(
        "LessOrEqual",
        FloatIsland,
        "numpy broadcasting; bool output as i32",
    ),
    op("Log", Kernel, "int8 as a lookup table"),
    op("LRN", FloatIsland, ""),
    op(
        "LSTM",
        Kernel,
        "constant W/R/B/P; all directions, peepholes, clip, input_forget, layout; int8 (int16 states) for the default activations without clip, peepholes or input_forget, hidden <= 512, constant or absent initial states, else a float island",
    ),
    op(
        "MatMul",
        Kernel,
        "int8 kernel for a constant 2-D right operand; a product of two activations is a float island",
    ),
    op(
        "Max",
        Kernel,
        "numpy broadcasting, variadic; float, or int32/int64 as i32",
    ),
    op("MaxPool", Kernel, "2-D (NCHW); no Indices output"),
    op(
        "Min",
        Kernel,
        "numpy broadcasting, variadic; float, or int32/int64 as i32",
    ),
    op("Mish", Kernel, "int8 as a lookup table"),
    op(
        "Mul",
        Kernel,
        "numpy broadcasting; float, or int32/int64 as i32",
    ),
    op("Neg", Kernel, "int8 as a lookup table"),
    op("Not", FloatIsland, "as Equal(x, 0)"),
    op(
        "Pad",
        DataMove,
        "constant, reflect, edge; constant pads, value and axes",
    ),
    op(
        "Pow",
        Kernel,
        "float base (an integer exponent is cast); int8 as a lookup table for a scalar constant exponent, a float island for a tensor exponent",
    ),
    op("Reciprocal", Kernel, "int8 as a lookup table"),
    op("ReduceL1", FloatIsland, "constant axes"),
    op("ReduceL2", FloatIsland, "constant axes"),
    op("ReduceLogSumExp", FloatIsland, "constant axes"),
    op("ReduceMax", FloatIsland, "constant axes"),
    op("ReduceMean", FloatIsland, "constant axes"),
    op("ReduceMin", FloatIsland, "constant axes"),
    op("ReduceProd", FloatIsland, "constant axes"),
    op("ReduceSum", FloatIsland, "constant axes"),
    op("ReduceSumSquare", FloatIsland, "constant axes"),
    op("Relu", Kernel, ""),
    op("Reshape", DataMove, "static shapes"),
    op(
        "Resize",
        Kernel,
        "2-D (NCHW) nearest/linear, axes, keep_aspect_ratio_policy; no cubic, antialias or tf_crop_and_resize",
    ),
    op(
        "RNN",
        Kernel,
        "constant W/R/B; all directions, layout; int8 (int16 state) for Tanh without clip, hidden <= 512, constant or absent initial_h, else a float island",
    ),
    op("Round", Kernel, "int8 as a lookup table"),
    op("Selu", Kernel, "int8 as a lookup table"),
    op("Shape", FoldedOnly, "static shapes"),
    op("Shrink", Kernel, "int8 as a lookup table"),
    op("Sigmoid", Kernel, "int8 as a lookup table"),
    op("Sign", Kernel, "int8 as a lookup table"),
    op("Sin", Kernel, "int8 as a lookup table"),
    op(
        "Slice",
        DataMove,
        "constant starts/ends/axes/steps, negative steps",
    ),
    op("Softmax", Kernel, ""),
    op("Softplus", Kernel, "int8 as a lookup table"),
    op("Softsign", Kernel, "int8 as a lookup table"),
    op("Split", DataMove, "constant split sizes"),
    op("Sqrt", Kernel, "int8 as a lookup table"),
    op("Squeeze", DataMove, ""),
    op(
        "Sub",
        Kernel,
        "numpy broadcasting; float, or int32/int64 as i32",
    ),
    op("Sum", Kernel, "as a chain of Add"),
    op("Tanh", Kernel, "int8 as a lookup table"),
    op("ThresholdedRelu", Kernel, "int8 as a lookup table"),
    op("Transpose", DataMove, ""),
    op("Unsqueeze", DataMove, ""),
    op("Upsample", Kernel, "as Resize"),
    op("Where", FloatIsland, "numpy broadcasting"),
];

/// The entry for `op_type`, if Tern supports it.
pub fn lookup(op_type: &str) -> Option<&'static OpSupport> {
    SUPPORTED_OPS.iter().find(|s| s.op == op_type)
}

/// True when every op type in `ops` is supported.
pub fn all_supported<'a>(mut ops: impl Iterator<Item = &'a str>) -> bool {
    ops.all(|o| lookup(o).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_sorted_and_unique() {
        for pair in SUPPORTED_OPS.windows(2) {
            assert!(
                pair[0].op.to_lowercase() < pair[1].op.to_lowercase(),
                "{} before {}",
                pair[0].op,
                pair[1].op
            );
        }
    }
}
