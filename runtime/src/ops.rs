//! Typed parameters of each opcode, decoded from (and encoded to) the parameter pool.
//!
//! One `u32` word per field; floats are stored as their IEEE bits, signed
//! integers as two's complement. The converter encodes with `encode`, the
//! runtime decodes with `decode`, so the two cannot drift apart. This module
//! checks word counts and enum codes; shape checks belong to [`crate::model`].

use crate::kernels::{
    BinaryOp, CoordinateMode, NearestMode, ResizeGeometry, Window2d, activation_f32::Activation,
};
use crate::quant::Requant;

/// A sink for parameter words (a `Vec<u32>` in the converter).
pub trait Words {
    /// Appends one word.
    fn word(&mut self, w: u32);
}

#[cfg(feature = "alloc")]
impl Words for alloc::vec::Vec<u32> {
    fn word(&mut self, w: u32) {
        self.push(w);
    }
}

fn f(w: u32) -> f32 {
    f32::from_bits(w)
}

fn i(w: u32) -> i32 {
    w as i32
}

fn window_words(w: &Window2d, out: &mut impl Words) {
    for v in [
        w.kernel[0],
        w.kernel[1],
        w.stride[0],
        w.stride[1],
        w.dilation[0],
        w.dilation[1],
        w.pad_begin[0],
        w.pad_begin[1],
    ] {
        out.word(v as u32);
    }
}

fn window_decode(p: &[u32]) -> Option<Window2d> {
    let p: &[u32; 8] = p.get(..8)?.try_into().ok()?;
    let u = |k: usize| p[k] as usize;
    let window = Window2d {
        kernel: [u(0), u(1)],
        stride: [u(2), u(3)],
        dilation: [u(4), u(5)],
        pad_begin: [u(6), u(7)],
    };
    let positive = window
        .kernel
        .iter()
        .chain(&window.stride)
        .chain(&window.dilation);
    positive.clone().all(|&v| v >= 1).then_some(window)
}

/// Bounds of a fused output clamp, as raw words: f32 bits for float ops, i32 for int8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClampWords {
    /// Lower bound bits.
    pub min: u32,
    /// Upper bound bits.
    pub max: u32,
}

impl ClampWords {
    /// A float clamp.
    pub fn f32(min: f32, max: f32) -> ClampWords {
        ClampWords {
            min: min.to_bits(),
            max: max.to_bits(),
        }
    }
    /// An int8 clamp.
    pub fn i8(min: i32, max: i32) -> ClampWords {
        ClampWords {
            min: min as u32,
            max: max as u32,
        }
    }
    /// As a float clamp.
    pub fn as_f32(self) -> crate::kernels::ClampF32 {
        crate::kernels::ClampF32 {
            min: f(self.min),
            max: f(self.max),
        }
    }
    /// As int8 bounds `(min, max)`.
    pub fn as_i8(self) -> (i32, i32) {
        (i(self.min), i(self.max))
    }
}

/// Conv2d / ConvTranspose2d parameters: window, groups, clamp (11 words).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvParams {
    /// Sliding window.
    pub window: Window2d,
    /// Channel groups (>= 1).
    pub groups: usize,
    /// Fused clamp.
    pub clamp: ClampWords,
}

impl ConvParams {
    /// Appends the parameter words.
    pub fn encode(&self, out: &mut impl Words) {
        window_words(&self.window, out);
        out.word(self.groups as u32);
        out.word(self.clamp.min);
        out.word(self.clamp.max);
    }
    /// Decodes; `None` on a wrong word count or zero extents.
    pub fn decode(p: &[u32]) -> Option<ConvParams> {
        if p.len() != 11 || p[8] == 0 {
            return None;
        }
        Some(ConvParams {
            window: window_decode(p)?,
            groups: p[8] as usize,
            clamp: ClampWords {
                min: p[9],
                max: p[10],
            },
        })
    }
}

/// FullyConnected parameters: the fused clamp (2 words).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FullyConnectedParams {
    /// Fused clamp.
    pub clamp: ClampWords,
}

impl FullyConnectedParams {
    /// Appends the parameter words.
    pub fn encode(&self, out: &mut impl Words) {
        out.word(self.clamp.min);
        out.word(self.clamp.max);
    }
    /// Decodes.
    pub fn decode(p: &[u32]) -> Option<FullyConnectedParams> {
        match p {
            [min, max] => Some(FullyConnectedParams {
                clamp: ClampWords {
                    min: *min,
                    max: *max,
                },
            }),
            _ => None,
        }
    }
}

/// MaxPool2d / AvgPool2d parameters (8 words for max, 11 for average).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoolParams {
    /// Sliding window.
    pub window: Window2d,
    /// Padding after the last row / column (average pooling's divisor needs it).
    pub pad_end: [usize; 2],
    /// Average pooling counts padding taps in the divisor.
    pub count_include_pad: bool,
}

impl PoolParams {
    /// Appends the words of a max pool (`average == false`) or an average pool.
    pub fn encode(&self, average: bool, out: &mut impl Words) {
        window_words(&self.window, out);
        if average {
            out.word(self.pad_end[0] as u32);
            out.word(self.pad_end[1] as u32);
            out.word(self.count_include_pad as u32);
        }
    }
    /// Decodes a max pool (8 words) or an average pool (11 words).
    pub fn decode(p: &[u32], average: bool) -> Option<PoolParams> {
        let window = window_decode(p)?;
        match (average, p.len()) {
            (false, 8) => Some(PoolParams {
                window,
                pad_end: [0, 0],
                count_include_pad: false,
            }),
            (true, 11) if p[10] <= 1 => Some(PoolParams {
                window,
                pad_end: [p[8] as usize, p[9] as usize],
                count_include_pad: p[10] == 1,
            }),
            _ => None,
        }
    }
}

/// Activation parameters: kind and up to two floats (3 words).
pub fn encode_activation(act: Activation, out: &mut impl Words) {
    let (kind, a, b) = match act {
        Activation::Relu => (0, 0.0, 0.0),
        Activation::Clip { min, max } => (1, min, max),
        Activation::LeakyRelu { alpha } => (2, alpha, 0.0),
        Activation::Sigmoid => (3, 0.0, 0.0),
        Activation::Tanh => (4, 0.0, 0.0),
        Activation::HardSigmoid { alpha, beta } => (5, alpha, beta),
        Activation::HardSwish => (6, 0.0, 0.0),
        Activation::Unary(u) => (16 + u as u32, 0.0, 0.0),
        Activation::Elu { alpha } => (7, alpha, 0.0),
        Activation::Selu { alpha, gamma } => (8, alpha, gamma),
        Activation::Celu { alpha } => (9, alpha, 0.0),
        Activation::ThresholdedRelu { alpha } => (10, alpha, 0.0),
        Activation::Affine { alpha, beta } => (11, alpha, beta),
        Activation::ScaledTanh { alpha, beta } => (12, alpha, beta),
        Activation::Powf { exponent } => (13, exponent, 0.0),
        Activation::Shrink { lambd, bias } => (14, lambd, bias),
    };
    out.word(kind);
    out.word(f32::to_bits(a));
    out.word(f32::to_bits(b));
}

/// Decodes [`encode_activation`]'s words.
pub fn decode_activation(p: &[u32]) -> Option<Activation> {
    let [kind, a, b] = p else { return None };
    let (a, b) = (f(*a), f(*b));
    Some(match kind {
        0 => Activation::Relu,
        1 => Activation::Clip { min: a, max: b },
        2 => Activation::LeakyRelu { alpha: a },
        3 => Activation::Sigmoid,
        4 => Activation::Tanh,
        5 => Activation::HardSigmoid { alpha: a, beta: b },
        6 => Activation::HardSwish,
        7 => Activation::Elu { alpha: a },
        8 => Activation::Selu { alpha: a, gamma: b },
        9 => Activation::Celu { alpha: a },
        10 => Activation::ThresholdedRelu { alpha: a },
        11 => Activation::Affine { alpha: a, beta: b },
        12 => Activation::ScaledTanh { alpha: a, beta: b },
        13 => Activation::Powf { exponent: a },
        14 => Activation::Shrink { lambd: a, bias: b },
        k => Activation::Unary(crate::kernels::activation_f32::Unary::from_code(
            k.checked_sub(16)?,
        )?),
    })
}

fn binary_op_code(op: BinaryOp) -> u32 {
    match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
        BinaryOp::Pow => 4,
        BinaryOp::Max => 5,
        BinaryOp::Min => 6,
    }
}

fn binary_op(code: u32) -> Option<BinaryOp> {
    Some(match code {
        0 => BinaryOp::Add,
        1 => BinaryOp::Sub,
        2 => BinaryOp::Mul,
        3 => BinaryOp::Div,
        4 => BinaryOp::Pow,
        5 => BinaryOp::Max,
        6 => BinaryOp::Min,
        _ => return None,
    })
}

/// Float Binary parameters: op and clamp (3 words).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BinaryF32Params {
    /// The operation.
    pub op: BinaryOp,
    /// Fused clamp.
    pub clamp: ClampWords,
}

impl BinaryF32Params {
    /// Appends the parameter words.
    pub fn encode(&self, out: &mut impl Words) {
        out.word(binary_op_code(self.op));
        out.word(self.clamp.min);
        out.word(self.clamp.max);
    }
    /// Decodes.
    pub fn decode(p: &[u32]) -> Option<BinaryF32Params> {
        let [op, min, max] = p else { return None };
        Some(BinaryF32Params {
            op: binary_op(*op)?,
            clamp: ClampWords {
                min: *min,
                max: *max,
            },
        })
    }
}

/// Appends int8 Binary parameters (13 words).
pub fn encode_binary_s8(p: &crate::kernels::binary_s8::BinaryS8Params, out: &mut impl Words) {
    out.word(binary_op_code(p.op));
    for v in [
        p.a_zero_point,
        p.b_zero_point,
        p.output_zero_point,
        p.a_requant.multiplier,
        p.a_requant.shift,
        p.b_requant.multiplier,
        p.b_requant.shift,
        p.output_requant.multiplier,
        p.output_requant.shift,
        p.left_shift,
        p.act_min,
        p.act_max,
    ] {
        out.word(v as u32);
    }
}

/// Decodes [`encode_binary_s8`]'s words.
pub fn decode_binary_s8(p: &[u32]) -> Option<crate::kernels::binary_s8::BinaryS8Params> {
    if p.len() != 13 {
        return None;
    }
    let r = |k: usize| Requant {
        multiplier: i(p[k]),
        shift: i(p[k + 1]),
    };
    let op = binary_op(p[0]).filter(|op| op.has_int8_kernel())?;
    let params = crate::kernels::binary_s8::BinaryS8Params {
        op,
        a_zero_point: i(p[1]),
        b_zero_point: i(p[2]),
        output_zero_point: i(p[3]),
        a_requant: r(4),
        b_requant: r(6),
        output_requant: r(8),
        left_shift: i(p[10]),
        act_min: i(p[11]),
        act_max: i(p[12]),
    };
    ((0..=30).contains(&params.left_shift)
        && [params.a_requant, params.b_requant, params.output_requant]
            .iter()
            .all(|r| (-31..=30).contains(&r.shift)))
    .then_some(params)
}

/// Resize parameters (7 words).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResizeParams {
    /// Bilinear (true) or nearest.
    pub linear: bool,
    /// Rounding of nearest mode.
    pub nearest: NearestMode,
    /// Coordinate mapping.
    pub geometry: ResizeGeometry,
}

impl ResizeParams {
    /// Appends the parameter words.
    pub fn encode(&self, out: &mut impl Words) {
        out.word(self.linear as u32);
        out.word(match self.geometry.coord {
            CoordinateMode::HalfPixel => 0,
            CoordinateMode::PytorchHalfPixel => 1,
            CoordinateMode::AlignCorners => 2,
            CoordinateMode::Asymmetric => 3,
        });
        out.word(match self.nearest {
            NearestMode::RoundPreferFloor => 0,
            NearestMode::RoundPreferCeil => 1,
            NearestMode::Floor => 2,
            NearestMode::Ceil => 3,
        });
        for v in self
            .geometry
            .ratio_num
            .into_iter()
            .chain(self.geometry.ratio_den)
        {
            out.word(v);
        }
    }
    /// Decodes; ratios must be positive.
    pub fn decode(p: &[u32]) -> Option<ResizeParams> {
        let [linear, coord, nearest, nh, nw, dh, dw] = p else {
            return None;
        };
        if [*nh, *nw, *dh, *dw].contains(&0) || *linear > 1 {
            return None;
        }
        Some(ResizeParams {
            linear: *linear == 1,
            nearest: match nearest {
                0 => NearestMode::RoundPreferFloor,
                1 => NearestMode::RoundPreferCeil,
                2 => NearestMode::Floor,
                3 => NearestMode::Ceil,
                _ => return None,
            },
            geometry: ResizeGeometry {
                coord: match coord {
                    0 => CoordinateMode::HalfPixel,
                    1 => CoordinateMode::PytorchHalfPixel,
                    2 => CoordinateMode::AlignCorners,
                    3 => CoordinateMode::Asymmetric,
                    _ => return None,
                },
                ratio_num: [*nh, *nw],
                ratio_den: [*dh, *dw],
            },
        })
    }
}

/// Pad modes as stored (word 0 of Pad's parameters).
pub mod pad_mode {
    /// Constant value (word 1 holds its bits: f32, or i8 as i32).
    pub const CONSTANT: u32 = 0;
    /// Reflect at the borders (edge not repeated).
    pub const REFLECT: u32 = 1;
    /// Repeat the edge value.
    pub const EDGE: u32 = 2;
}

/// LRN parameters (4 words).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrnParams {
    /// Channels in the window.
    pub size: usize,
    /// Scale.
    pub alpha: f32,
    /// Exponent.
    pub beta: f32,
    /// Offset.
    pub bias: f32,
}

impl LrnParams {
    /// Appends the parameter words.
    pub fn encode(&self, out: &mut impl Words) {
        out.word(self.size as u32);
        out.word(self.alpha.to_bits());
        out.word(self.beta.to_bits());
        out.word(self.bias.to_bits());
    }
    /// Decodes; size must be >= 1.
    pub fn decode(p: &[u32]) -> Option<LrnParams> {
        let [size, alpha, beta, bias] = p else {
            return None;
        };
        (*size >= 1).then_some(LrnParams {
            size: *size as usize,
            alpha: f(*alpha),
            beta: f(*beta),
            bias: f(*bias),
        })
    }
}

/// Float "no clip" marker of the recurrent ops' clip word.
const NO_CLIP: u32 = f32::NAN.to_bits();

fn direction_code(d: crate::kernels::recurrent::Direction) -> u32 {
    use crate::kernels::recurrent::Direction;
    match d {
        Direction::Forward => 0,
        Direction::Reverse => 1,
        Direction::Bidirectional => 2,
    }
}

fn direction(code: u32) -> Option<crate::kernels::recurrent::Direction> {
    use crate::kernels::recurrent::Direction;
    Some(match code {
        0 => Direction::Forward,
        1 => Direction::Reverse,
        2 => Direction::Bidirectional,
        _ => return None,
    })
}

/// Parameters shared by the recurrent ops (LSTM, GRU, RNN): direction, hidden
/// size, cell clip, a per-op flag (LSTM `input_forget`, GRU `linear_before_reset`)
/// and `G` activations per direction (3 words each), `4 + 6 * G` words; an int8
/// LSTM appends one word, its cell-state shift (8..=15; the cell scale is
/// `2^-cell_shift`).
///
/// Inputs, float: X, W, R, B, sequence_lens, initial_h (, initial_c, P for LSTM).
/// Inputs, int8 (X is i8; see "Quantized recurrent cells" in FORMAT.md): 10
/// slots for every cell: X (i8, per tensor), W and R (i8, per channel), B (i32
/// Q3.12: `[dirs][gates * hidden]`, GRU `[dirs][6 * hidden]`), sequence_lens,
/// initial_h and initial_c (f32; initial_c LSTM only), P (absent), requant
/// (i32 `[dirs][gates * hidden][4]`), tables (i32 `[2][513]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecurrentParams<const G: usize> {
    /// Forward, reverse or both.
    pub direction: crate::kernels::recurrent::Direction,
    /// Hidden size.
    pub hidden: usize,
    /// Cell clip threshold.
    pub clip: Option<f32>,
    /// LSTM `input_forget` / GRU `linear_before_reset` (0 for RNN).
    pub flag: bool,
    /// Activations of direction 0 and 1.
    pub activations: [[Activation; G]; 2],
    /// Int8 LSTM: cell-state shift (scale `2^-cell_shift`, 8..=15); 0 for float
    /// ops, GRU and RNN (then no word is written).
    pub cell_shift: u32,
}

impl<const G: usize> RecurrentParams<G> {
    /// Appends the parameter words.
    pub fn encode(&self, out: &mut impl Words) {
        out.word(direction_code(self.direction));
        out.word(self.hidden as u32);
        out.word(self.clip.map_or(NO_CLIP, f32::to_bits));
        out.word(self.flag as u32);
        for dir in &self.activations {
            for &act in dir {
                encode_activation(act, out);
            }
        }
        if self.cell_shift != 0 {
            out.word(self.cell_shift);
        }
    }
    /// Decodes; `None` on a wrong word count, code, a zero hidden size or a cell
    /// shift outside 8..=15.
    pub fn decode(p: &[u32]) -> Option<Self> {
        let cell_shift = match p.len().checked_sub(4 + 6 * G)? {
            0 => 0,
            1 if crate::kernels::recurrent_s8::CELL_SHIFTS.contains(&p[4 + 6 * G]) => p[4 + 6 * G],
            _ => return None,
        };
        if p[1] == 0 || p[3] > 1 {
            return None;
        }
        let clip = f(p[2]);
        let mut activations = [[Activation::Relu; G]; 2];
        for (d, dir) in activations.iter_mut().enumerate() {
            for (k, act) in dir.iter_mut().enumerate() {
                let at = 4 + 3 * (d * G + k);
                *act = decode_activation(&p[at..at + 3])?;
            }
        }
        Some(RecurrentParams {
            direction: direction(p[0])?,
            hidden: p[1] as usize,
            clip: (!clip.is_nan()).then_some(clip),
            flag: p[3] == 1,
            activations,
            cell_shift,
        })
    }
}

/// Attention parameters (5 words): scale, causal, K given transposed, heads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionParams {
    /// Factor on `Q K^T`.
    pub scale: f32,
    /// Mask keys after the query position.
    pub causal: bool,
    /// K is stored `[B][H][D][L]` (already transposed).
    pub k_transposed: bool,
}

impl AttentionParams {
    /// Appends the parameter words.
    pub fn encode(&self, out: &mut impl Words) {
        out.word(self.scale.to_bits());
        out.word(self.causal as u32);
        out.word(self.k_transposed as u32);
    }
    /// Decodes.
    pub fn decode(p: &[u32]) -> Option<AttentionParams> {
        let [scale, causal, kt] = p else { return None };
        ((*causal | *kt) <= 1 && f(*scale).is_finite()).then_some(AttentionParams {
            scale: f(*scale),
            causal: *causal == 1,
            k_transposed: *kt == 1,
        })
    }
}

/// Reduction codes (word 0 of Reduce's parameters).
pub fn reduce_op_code(op: crate::kernels::reduce_f32::ReduceOp) -> u32 {
    use crate::kernels::reduce_f32::ReduceOp::*;
    match op {
        Sum => 0,
        Mean => 1,
        Max => 2,
        Min => 3,
        Prod => 4,
        SumSquare => 5,
        L1 => 6,
        L2 => 7,
        LogSumExp => 8,
    }
}

/// Decodes [`reduce_op_code`].
pub fn reduce_op(code: u32) -> Option<crate::kernels::reduce_f32::ReduceOp> {
    use crate::kernels::reduce_f32::ReduceOp::*;
    Some(match code {
        0 => Sum,
        1 => Mean,
        2 => Max,
        3 => Min,
        4 => Prod,
        5 => SumSquare,
        6 => L1,
        7 => L2,
        8 => LogSumExp,
        _ => return None,
    })
}

/// Comparison codes (word 0 of Compare's parameters).
pub fn compare_op_code(op: crate::kernels::compare::CompareOp) -> u32 {
    use crate::kernels::compare::CompareOp::*;
    match op {
        Equal => 0,
        Less => 1,
        LessOrEqual => 2,
        Greater => 3,
        GreaterOrEqual => 4,
    }
}

/// Decodes [`compare_op_code`].
pub fn compare_op(code: u32) -> Option<crate::kernels::compare::CompareOp> {
    use crate::kernels::compare::CompareOp::*;
    Some(match code {
        0 => Equal,
        1 => Less,
        2 => LessOrEqual,
        3 => Greater,
        4 => GreaterOrEqual,
        _ => return None,
    })
}
