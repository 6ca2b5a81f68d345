//! The parameter structs kernels take (CMSIS-NN's `*_params` / `*_dims` style).
//!
//! A kernel's read-only operands and attributes travel in one struct, its
//! outputs and scratch as separate `&mut` slices: `conv2d_s8(&ConvS8Args, output)`,
//! `conv2d_s8_fast(&ConvS8Args, output, scratch)`. Geometry structs
//! ([`ConvGeometry`], [`PoolGeometry`], [`FullyConnectedDims`]) are shared by the
//! reference and fast variants and by the `*_scratch_len` helpers, so that the
//! planner and the kernel read the same sizes. This module owns only these
//! plain data types; the arithmetic stays in the kernels.

use super::conv2d_s8::ConvS8Quant;
use super::{ClampF32, Shape4, Window2d};
use crate::quant::Requant;

/// Geometry of a 2-D convolution (plain or transposed) over NCHW activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Input shape `[n][c_in][h][w]`.
    pub in_shape: Shape4,
    /// Output shape `[n][c_out][oh][ow]`.
    pub out_shape: Shape4,
    /// Kernel, stride, dilation and leading padding; the trailing padding is
    /// whatever `out_shape` implies.
    pub window: Window2d,
    /// Channel groups: divides `c_in` and `c_out` (`groups == c_in == c_out` is
    /// depthwise).
    pub groups: usize,
}

impl ConvGeometry {
    /// Input channels per group.
    #[inline(always)]
    pub const fn in_per_group(&self) -> usize {
        self.in_shape.c / self.groups
    }

    /// Output channels per group.
    #[inline(always)]
    pub const fn out_per_group(&self) -> usize {
        self.out_shape.c / self.groups
    }
}

/// Operands of an int8 convolution (plain or transposed), every variant.
#[derive(Clone, Copy, Debug)]
pub struct ConvS8Args<'a> {
    /// Activations, `geometry.in_shape`, quantized with `quant.input_zero_point`.
    pub input: &'a [i8],
    /// Weights, symmetric (zero point 0); layout as the kernel documents.
    pub weights: &'a [i8],
    /// `c_out` values in units of `input_scale * weight_scale[oc]`, or empty for none.
    pub bias: &'a [i32],
    /// Shapes, window and groups.
    pub geometry: ConvGeometry,
    /// Zero points, requantization and output clamp.
    pub quant: ConvS8Quant<'a>,
}

/// Operands of a float convolution (plain or transposed), weights f32 or f16.
#[derive(Clone, Copy, Debug)]
pub struct ConvF32Args<'a, W> {
    /// Activations, `geometry.in_shape`.
    pub input: &'a [f32],
    /// Weights; layout as the kernel documents.
    pub weights: &'a [W],
    /// `c_out` values, or none.
    pub bias: Option<&'a [f32]>,
    /// Shapes, window and groups.
    pub geometry: ConvGeometry,
    /// Fused output clamp.
    pub clamp: ClampF32,
}

/// Sizes of a fully connected layer: `rows` input rows of `in_features` values
/// times `[out_features][in_features]` weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FullyConnectedDims {
    /// Input rows (batch).
    pub rows: usize,
    /// Features of one input row.
    pub in_features: usize,
    /// Features of one output row.
    pub out_features: usize,
}

/// Operands of an int8 fully connected layer, every variant.
#[derive(Clone, Copy, Debug)]
pub struct FullyConnectedS8Args<'a> {
    /// `[rows][in_features]`, quantized with `quant.input_zero_point`.
    pub input: &'a [i8],
    /// `[out_features][in_features]`, symmetric.
    pub weights: &'a [i8],
    /// `out_features` values, or empty for none.
    pub bias: &'a [i32],
    /// Sizes.
    pub dims: FullyConnectedDims,
    /// Zero points, requantization and output clamp.
    pub quant: ConvS8Quant<'a>,
}

/// Operands of a float fully connected layer, weights f32 or f16.
#[derive(Clone, Copy, Debug)]
pub struct FullyConnectedF32Args<'a, W> {
    /// `[rows][in_features]`.
    pub input: &'a [f32],
    /// `[out_features][in_features]`.
    pub weights: &'a [W],
    /// `out_features` values, or none.
    pub bias: Option<&'a [f32]>,
    /// Sizes.
    pub dims: FullyConnectedDims,
    /// Fused output clamp.
    pub clamp: ClampF32,
}

/// Geometry of a 2-D pooling over NCHW activations (`n` and `c` equal in and out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeometry {
    /// Input shape.
    pub in_shape: Shape4,
    /// Output shape.
    pub out_shape: Shape4,
    /// Kernel, stride, dilation and leading padding.
    pub window: Window2d,
}

/// What average pooling divides by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPoolDivisor {
    /// Trailing padding `[h, w]`: taps in it count when `count_include_pad`.
    pub pad_end: [usize; 2],
    /// Divide by the taps inside the padded extent (true) or inside the input.
    pub count_include_pad: bool,
}

/// An operand of the broadcasting kernels (binary, compare, where): a read-only
/// tensor of any rank up to [`super::MAX_RANK`], its elements and row-major shape.
#[derive(Clone, Copy, Debug)]
pub struct Operand<'a, T> {
    /// Elements, `shape.iter().product()` of them.
    pub data: &'a [T],
    /// Dimensions.
    pub shape: &'a [usize],
}

impl<'a, T> Operand<'a, T> {
    /// `Operand { data, shape }`.
    #[inline]
    pub const fn new(data: &'a [T], shape: &'a [usize]) -> Operand<'a, T> {
        Operand { data, shape }
    }
}

/// Where one input of a concatenation goes: for each `o` in `0..outer`,
/// `input[o * input_block..][..input_block]` is copied to
/// `output[o * output_block + offset..][..input_block]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConcatSlot {
    /// Blocks before the concatenation axis.
    pub outer: usize,
    /// Elements of one block of this input.
    pub input_block: usize,
    /// Elements of one block of the output.
    pub output_block: usize,
    /// Offset of this input inside each output block.
    pub offset: usize,
}

/// Requantization of one int8 concat input into the output's quantization:
/// `x` becomes `clamp(requant.apply(x - input_zero_point) + output_zero_point, -128, 127)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConcatS8Quant {
    /// Zero point of the input.
    pub input_zero_point: i32,
    /// `input_scale / output_scale`.
    pub requant: Requant,
    /// Zero point of the output.
    pub output_zero_point: i32,
}
