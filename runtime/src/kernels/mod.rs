//! Compute kernels: one op per file, plain functions over slices, no allocation.
//!
//! Kernels know nothing about the `.tern` format or the arena: the interpreter
//! decodes an op, slices its tensors and calls one function here. Every kernel
//! has a portable reference implementation; a faster variant lives beside it
//! under a `_fast` suffix and must agree with it (bit for bit for int8).
//! Kernels that need scratch memory expose a `*_scratch_len` helper so the
//! converter can reserve it in the arena ahead of time (CMSIS-NN style).
//!
//! Layout conventions: activations are NCHW (ONNX order), weights of
//! convolutions are `[out_channels][in_channels / groups][kh][kw]`, weights of
//! fully connected layers `[out_features][in_features]` (each output's row is
//! contiguous). Shapes of any rank are at most [`MAX_RANK`] dimensions.

mod args;
#[cfg(target_arch = "x86_64")]
pub(crate) mod band_u8s8;
pub(crate) mod broadcast;
pub(crate) mod conv_transpose_phases;
pub(crate) mod cpu;
pub(crate) mod dot;
pub(crate) mod gemm_f32;
pub(crate) mod gemm_i16;
pub mod gemm_s8;
pub(crate) mod gemm_smlad;
#[cfg(target_arch = "x86_64")]
pub(crate) mod gemm_u8s8;
#[cfg(test)]
mod test_rng;

// ---- f32 activations (weights f32 or f16 through `FloatWeight`) ----
pub mod activation_f32;
pub mod attention_f32;
pub mod avg_pool2d_f32;
pub mod batch_matmul_f32;
pub mod binary_f32;
pub mod conv2d_f32;
pub mod conv_transpose2d_f32;
pub mod fully_connected_f32;
pub mod gru_f32;
pub mod layer_norm_f32;
pub mod lrn_f32;
pub mod lstm_f32;
pub mod max_pool2d_f32;
pub mod recurrent;
pub mod reduce_f32;
pub mod resize_f32;
pub mod rnn_f32;
pub mod softmax_f32;

// ---- int8 activations (TFLite int8 spec, integer-only) ----
pub mod avg_pool2d_s8;
pub mod binary_s8;
pub mod binary_s8_fast;
pub mod concat_s8;
pub mod conv2d_s8;
pub mod conv2d_s8_fast;
pub mod conv_transpose2d_s8;
pub mod conv_transpose2d_s8_fast;
pub mod fully_connected_s8;
pub mod fully_connected_s8_fast;
pub mod gru_s8;
pub mod lstm_s8;
pub mod lut_s8;
pub mod max_pool2d_s8;
pub mod max_pool2d_s8_fast;
pub mod recurrent_s8;
pub mod resize_s8;
pub mod rnn_s8;
pub mod softmax_s8;

// ---- any element type ----
pub mod binary_i32;
pub mod cast;
pub mod compare;
pub mod concat;
pub mod expand;
pub mod gather;
pub mod pad;
pub mod quantize;
pub mod resize_nearest;
pub mod slice;
pub mod transpose;
pub mod where_select;

pub use args::{
    AvgPoolDivisor, ConcatS8Quant, ConcatSlot, ConvF32Args, ConvGeometry, ConvS8Args,
    FullyConnectedDims, FullyConnectedF32Args, FullyConnectedS8Args, Operand, PoolGeometry,
};

/// Highest tensor rank a kernel handles.
pub const MAX_RANK: usize = 6;

/// A 4-D NCHW shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape4 {
    /// Batch.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
}

impl Shape4 {
    /// `Shape4 { n, c, h, w }`.
    pub const fn new(n: usize, c: usize, h: usize, w: usize) -> Shape4 {
        Shape4 { n, c, h, w }
    }

    /// Number of elements.
    pub const fn len(&self) -> usize {
        self.n * self.c * self.h * self.w
    }

    /// True when the shape holds no element.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Geometry of a 2-D sliding window (convolution or pooling) over H and W.
///
/// Index 0 is the height axis, 1 the width axis. Padding at the end of each axis
/// is implied by the output shape, so SAME/VALID/explicit padding and
/// `ceil_mode` are all resolved by the converter into `pad_begin` and the shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window2d {
    /// Kernel extent `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`, each >= 1.
    pub stride: [usize; 2],
    /// Dilation `[dh, dw]`, each >= 1.
    pub dilation: [usize; 2],
    /// Padding before the first row / column.
    pub pad_begin: [usize; 2],
}

/// Output clamp of a float op (fused Relu / Relu6 / Clip); `(-inf, inf)` when none.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClampF32 {
    /// Lower bound.
    pub min: f32,
    /// Upper bound.
    pub max: f32,
}

impl ClampF32 {
    /// No clamping.
    pub const NONE: ClampF32 = ClampF32 {
        min: f32::NEG_INFINITY,
        max: f32::INFINITY,
    };

    /// Clamps `x` (NaN passes through unchanged).
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        if x < self.min {
            self.min
        } else if x > self.max {
            self.max
        } else {
            x
        }
    }
}

/// Which int8 convolution and fully connected kernels an
/// [`Interpreter`](crate::Interpreter) runs. All give the same bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Int8Kernels {
    /// The fast kernels with the best code for this CPU (the default).
    #[default]
    Fast,
    /// The portable reference kernels, which define the results.
    Reference,
    /// The fast kernels' 8-bit path with this dot-product variant (portable
    /// code when the CPU lacks it).
    Gemm(gemm_s8::GemmS8),
}

/// A stored float weight: `f32`, or `half::f16` widened to f32 on use.
///
/// On AArch64 `f16` widens with the base-ISA `FCVT`/`FCVTL` instructions
/// (Armv8.0, so every Cortex-A, not only those with FP16 arithmetic), which
/// `half` uses only when the `fp16` feature is known at compile time; on x86-64
/// with F16C's `VCVTPH2PS` (detected at run time); elsewhere in software.
/// Widening is exact either way, so the results are the same.
pub trait FloatWeight: Copy + bytemuck::Pod {
    /// The weight as f32.
    fn to_f32(self) -> f32;

    /// Eight weights as f32 (one NEON `FCVTL`/`FCVTL2` pair for `f16` on AArch64).
    #[inline(always)]
    fn widen8(w: &[Self; 8]) -> [f32; 8] {
        w.map(Self::to_f32)
    }
}

impl FloatWeight for f32 {
    #[inline]
    fn to_f32(self) -> f32 {
        self
    }

    #[inline(always)]
    fn widen8(w: &[f32; 8]) -> [f32; 8] {
        *w
    }
}

impl FloatWeight for half::f16 {
    #[inline]
    fn to_f32(self) -> f32 {
        #[cfg(target_arch = "aarch64")]
        {
            let out: f32;
            // SAFETY: `FCVT Sd, Hn` is in the Armv8.0 base FP instruction set,
            // register-only.
            unsafe {
                core::arch::asm!("fcvt {out:s}, {bits:h}",
                    out = out(vreg) out, bits = in(vreg) self.to_bits(),
                    options(pure, nomem, nostack, preserves_flags));
            }
            out
        }
        #[cfg(not(target_arch = "aarch64"))]
        {
            half::f16::to_f32(self)
        }
    }

    #[cfg(target_arch = "aarch64")]
    #[inline(always)]
    fn widen8(w: &[half::f16; 8]) -> [f32; 8] {
        use core::arch::aarch64::{float32x4_t, uint16x8_t, vld1q_u16, vst1q_f32};
        let (lo, hi): (float32x4_t, float32x4_t);
        let mut out = [0f32; 8];
        // SAFETY: `w` is 16 readable bytes and `out` 32 writable ones; `FCVTL`
        // and `FCVTL2` are Armv8.0 Advanced SIMD, register-only.
        unsafe {
            let v: uint16x8_t = vld1q_u16(w.as_ptr().cast());
            core::arch::asm!("fcvtl {lo:v}.4s, {v:v}.4h", "fcvtl2 {hi:v}.4s, {v:v}.8h",
                v = in(vreg) v, lo = out(vreg) lo, hi = out(vreg) hi,
                options(pure, nomem, nostack, preserves_flags));
            vst1q_f32(out.as_mut_ptr(), lo);
            vst1q_f32(out.as_mut_ptr().add(4), hi);
        }
        out
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn widen8(w: &[half::f16; 8]) -> [f32; 8] {
        if cpu::has_f16c() {
            // SAFETY: the CPU has F16C (checked just above).
            unsafe { widen8_f16c(w) }
        } else {
            w.map(half::f16::to_f32)
        }
    }
}

/// Eight f16 as f32 with F16C's `VCVTPH2PS` (exact, like the software path).
///
/// # Safety
/// The CPU must support F16C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "f16c")]
unsafe fn widen8_f16c(w: &[half::f16; 8]) -> [f32; 8] {
    use core::arch::x86_64::{_mm_loadu_si128, _mm256_cvtph_ps, _mm256_storeu_ps};
    let mut out = [0f32; 8];
    // SAFETY: `w` is 16 readable bytes and `out` 32 writable ones (unaligned
    // load/store); F16C (and the AVX registers it uses) is enabled by the caller's
    // check.
    unsafe {
        let halves = _mm_loadu_si128(w.as_ptr().cast());
        _mm256_storeu_ps(out.as_mut_ptr(), _mm256_cvtph_ps(halves));
    }
    out
}

/// Strides (in elements) of a row-major shape, with 0 for broadcast axes.
///
/// `shape` is right-aligned into `out_rank` axes; axes of size 1 that the output
/// The int8 GEMM micro-kernel the fast dense convolutions run on this CPU, as
/// `tern bench --profile` reports it.
pub fn int8_gemm_variant() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if cpu::has_avx512vnni() {
            "avx512-vnni u8 x i8 (vpdpbusd)"
        } else if cpu::has_avxvnni() {
            "avx-vnni u8 x i8 (vpdpbusd)"
        } else {
            gemm_i16::gemm_i16_variant()
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        gemm_s8::GemmS8::best().name()
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        if cfg!(feature = "arm-dsp") {
            "smlad"
        } else {
            "portable"
        }
    }
}

/// broadcasts get stride 0. Used by the broadcasting elementwise kernels.
pub fn broadcast_strides(shape: &[usize], out_shape: &[usize]) -> [usize; MAX_RANK] {
    let mut strides = [0usize; MAX_RANK];
    let offset = out_shape.len() - shape.len();
    let mut stride = 1;
    for axis in (0..shape.len()).rev() {
        let out_axis = axis + offset;
        strides[out_axis] = if shape[axis] == 1 && out_shape[out_axis] != 1 {
            0
        } else {
            stride
        };
        stride *= shape[axis];
    }
    strides
}

/// Elementwise binary operation of the broadcasting kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `a ^ b` (float only).
    Pow,
    /// `max(a, b)`
    Max,
    /// `min(a, b)`
    Min,
}

impl BinaryOp {
    /// True when the int8 binary kernel implements the op.
    pub fn has_int8_kernel(self) -> bool {
        !matches!(self, BinaryOp::Pow)
    }
}

/// How Resize maps an output coordinate to an input coordinate (ONNX
/// `coordinate_transformation_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordinateMode {
    /// `x_in = (x_out + 0.5) * ratio - 0.5`
    HalfPixel,
    /// As `HalfPixel`, but 0 when the output axis has length 1.
    PytorchHalfPixel,
    /// `x_in = x_out * (in_len - 1) / (out_len - 1)` (0 when `out_len == 1`)
    AlignCorners,
    /// `x_in = x_out * ratio`
    Asymmetric,
}

impl CoordinateMode {
    /// The unclamped input coordinate of output index `x_out` along one axis as
    /// an exact fraction `p / q` (`q > 0`), the one rule every Resize kernel uses:
    /// - `HalfPixel`: `((2 * x_out + 1) * num - den) / (2 * den)`;
    /// - `PytorchHalfPixel`: the same, but 0 when `out_len == 1`;
    /// - `AlignCorners`: `x_out * (in_len - 1) / (out_len - 1)`, 0 when `out_len == 1`;
    /// - `Asymmetric`: `x_out * num / den`.
    ///
    /// `ratio_num / ratio_den` is input length per output length (a zero
    /// denominator counts as 1). `i128` keeps every `u32` input exact.
    #[inline]
    pub fn source_fraction(
        self,
        x_out: usize,
        in_len: usize,
        out_len: usize,
        ratio_num: u32,
        ratio_den: u32,
    ) -> (i128, i128) {
        let (x, num, den) = (x_out as i128, ratio_num as i128, ratio_den.max(1) as i128);
        match self {
            CoordinateMode::HalfPixel => ((2 * x + 1) * num - den, 2 * den),
            CoordinateMode::PytorchHalfPixel if out_len > 1 => ((2 * x + 1) * num - den, 2 * den),
            CoordinateMode::PytorchHalfPixel => (0, 1),
            CoordinateMode::AlignCorners if out_len > 1 => {
                (x * (in_len as i128 - 1), out_len as i128 - 1)
            }
            CoordinateMode::AlignCorners => (0, 1),
            CoordinateMode::Asymmetric => (x * num, den),
        }
    }
}

/// How nearest-neighbour Resize rounds a fractional input coordinate (ONNX `nearest_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NearestMode {
    /// Round half down.
    RoundPreferFloor,
    /// Round half up.
    RoundPreferCeil,
    /// Floor.
    Floor,
    /// Ceil.
    Ceil,
}

/// Geometry of a 2-D Resize over H and W of an NCHW tensor.
///
/// `ratio[i] = ratio_num[i] / ratio_den[i]` is input length per output length
/// (1 / ONNX scale), kept rational so that int8 kernels compute coordinates with
/// integers only and every target agrees bit for bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResizeGeometry {
    /// Coordinate transformation.
    pub coord: CoordinateMode,
    /// Numerators of the input/output ratios `[h, w]`, each >= 1.
    pub ratio_num: [u32; 2],
    /// Denominators of the input/output ratios `[h, w]`, each >= 1.
    pub ratio_den: [u32; 2],
}

/// Positions `i` in `0..count` with `0 <= i * stride + offset < limit`, as `(first, end)`.
///
/// The set is always one contiguous run (possibly empty, then `first == end`).
#[inline]
pub(crate) fn valid_range(
    offset: isize,
    stride: usize,
    limit: usize,
    count: usize,
) -> (usize, usize) {
    let s = stride as isize;
    let first = if offset >= 0 {
        0
    } else {
        ((-offset + s - 1) / s) as usize
    };
    let room = limit as isize - offset;
    let end = if room <= 0 {
        0
    } else {
        (((room + s - 1) / s) as usize).min(count)
    };
    (first.min(end), end)
}

/// Kernel offsets `k` in `0..kernel` whose tap `o * stride + k * dilation - pad`
/// falls inside `0..len`, as a half-open range ([`valid_range`] for output `o`).
#[inline]
pub(crate) fn valid_taps(
    o: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad: usize,
    len: usize,
) -> (usize, usize) {
    valid_range((o * stride) as isize - pad as isize, dilation, len, kernel)
}

#[cfg(test)]
mod tests {
    use super::FloatWeight;
    use half::f16;

    /// The f16 widening (`FCVT`/`FCVTL` on AArch64, `VCVTPH2PS` on x86-64) equals `half`'s software
    /// conversion for all 65,536 bit patterns (NaNs stay NaN).
    #[test]
    fn f16_widening_is_exact_for_every_value() {
        for base in (0..=u16::MAX).step_by(8) {
            let w: [f16; 8] = core::array::from_fn(|i| f16::from_bits(base + i as u16));
            let wide = f16::widen8(&w);
            for (v, x) in w.iter().zip(wide) {
                let want = f16::to_f32(*v);
                let one = FloatWeight::to_f32(*v);
                if want.is_nan() {
                    assert!(x.is_nan() && one.is_nan(), "{:#06x}", v.to_bits());
                } else {
                    assert_eq!(x.to_bits(), want.to_bits(), "widen8 {:#06x}", v.to_bits());
                    assert_eq!(one.to_bits(), want.to_bits(), "to_f32 {:#06x}", v.to_bits());
                }
            }
        }
    }
}
