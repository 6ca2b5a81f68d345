//! The parameter-word pieces several ops share: the word sink, the sliding
//! window and the fused clamp.
//!
//! One `u32` word per field; floats are stored as their IEEE bits, signed
//! integers as two's complement. Each op module encodes and decodes its own
//! parameters with these (the converter encodes with `encode`, the runtime
//! decodes with `decode`, so the two cannot drift apart). Decoding checks word
//! counts and enum codes; shape checks belong to each op's check.

use crate::kernels::Window2d;

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

pub(crate) fn f(w: u32) -> f32 {
    f32::from_bits(w)
}

pub(crate) fn i(w: u32) -> i32 {
    w as i32
}

pub(crate) fn window_words(w: &Window2d, out: &mut impl Words) {
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

pub(crate) fn window_decode(p: &[u32]) -> Option<Window2d> {
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
