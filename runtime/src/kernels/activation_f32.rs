//! Elementwise float activations with ONNX semantics.
//!
//! [`Activation::apply`] maps one value; [`activation_f32`] maps a slice, choosing the
//! variant once so that each variant gets its own tight loop.

use super::ClampF32;

/// A unary float activation (ONNX semantics). NaN inputs give NaN outputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// `max(0, x)`
    Relu,
    /// `min(max(x, min), max)`
    Clip {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
    /// `x` for `x >= 0`, else `alpha * x`.
    LeakyRelu {
        /// Slope for negative inputs.
        alpha: f32,
    },
    /// `1 / (1 + exp(-x))`
    Sigmoid,
    /// `tanh(x)`
    Tanh,
    /// `max(0, min(1, alpha * x + beta))`
    HardSigmoid {
        /// Slope.
        alpha: f32,
        /// Offset.
        beta: f32,
    },
    /// `x * max(0, min(1, x / 6 + 0.5))`
    HardSwish,
}

impl Activation {
    /// Applies the activation to one value.
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Relu => relu(x),
            Activation::Clip { min, max } => ClampF32 { min, max }.apply(x),
            Activation::LeakyRelu { alpha } => leaky_relu(x, alpha),
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => libm::tanhf(x),
            Activation::HardSigmoid { alpha, beta } => unit_clamp(alpha * x + beta),
            Activation::HardSwish => x * unit_clamp(x / 6.0 + 0.5),
        }
    }
}

/// `output[i] = act.apply(input[i])`; both slices have the same length.
pub fn activation_f32(act: Activation, input: &[f32], output: &mut [f32]) {
    debug_assert_eq!(input.len(), output.len());
    match act {
        Activation::Relu => map(input, output, relu),
        Activation::Clip { min, max } => {
            let clamp = ClampF32 { min, max };
            map(input, output, |x| clamp.apply(x))
        }
        Activation::LeakyRelu { alpha } => map(input, output, |x| leaky_relu(x, alpha)),
        Activation::Sigmoid => map(input, output, sigmoid),
        Activation::Tanh => map(input, output, libm::tanhf),
        Activation::HardSigmoid { alpha, beta } => {
            map(input, output, |x| unit_clamp(alpha * x + beta))
        }
        Activation::HardSwish => map(input, output, |x| x * unit_clamp(x / 6.0 + 0.5)),
    }
}

#[inline(always)]
fn map(input: &[f32], output: &mut [f32], f: impl Fn(f32) -> f32) {
    for (o, &x) in output.iter_mut().zip(input) {
        *o = f(x);
    }
}

#[inline(always)]
fn relu(x: f32) -> f32 {
    if x < 0.0 { 0.0 } else { x }
}

#[inline(always)]
fn leaky_relu(x: f32, alpha: f32) -> f32 {
    if x < 0.0 { alpha * x } else { x }
}

/// Clamps to `[0, 1]`; NaN passes through.
#[inline(always)]
fn unit_clamp(x: f32) -> f32 {
    x.clamp(0.0, 1.0)
}

/// Logistic function, written so that `exp` never overflows.
#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + libm::expf(-x))
    } else {
        let e = libm::expf(x);
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f32, want: f64, tol: f64) -> bool {
        (got as f64 - want).abs() <= tol * (1.0 + want.abs())
    }

    #[test]
    fn hand_computed_values() {
        assert_eq!(Activation::Relu.apply(-2.0), 0.0);
        assert_eq!(Activation::Relu.apply(3.5), 3.5);
        let clip = Activation::Clip { min: 0.0, max: 6.0 };
        assert_eq!(clip.apply(-1.0), 0.0);
        assert_eq!(clip.apply(7.0), 6.0);
        assert_eq!(clip.apply(2.5), 2.5);
        let leaky = Activation::LeakyRelu { alpha: 0.1 };
        assert_eq!(leaky.apply(-2.0), -0.2);
        assert_eq!(leaky.apply(2.0), 2.0);
        assert_eq!(Activation::Sigmoid.apply(0.0), 0.5);
        assert_eq!(Activation::Tanh.apply(0.0), 0.0);
        let hs = Activation::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        };
        assert_eq!(hs.apply(-10.0), 0.0);
        assert_eq!(hs.apply(10.0), 1.0);
        assert!((hs.apply(1.0) - 0.7).abs() < 1e-7);
        assert_eq!(Activation::HardSwish.apply(-4.0), -0.0);
        assert_eq!(Activation::HardSwish.apply(4.0), 4.0);
        assert_eq!(Activation::HardSwish.apply(0.0), 0.0);
        assert!((Activation::HardSwish.apply(1.0) - 1.0 * (1.0 / 6.0 + 0.5)).abs() < 1e-7);
        // Sigmoid saturates without overflow / NaN.
        assert_eq!(Activation::Sigmoid.apply(-200.0), 0.0);
        assert_eq!(Activation::Sigmoid.apply(200.0), 1.0);
        assert!(Activation::Relu.apply(f32::NAN).is_nan());
        assert!(Activation::Sigmoid.apply(f32::NAN).is_nan());
    }

    #[test]
    fn slice_matches_f64_formulas() {
        // Inputs spread over [-8, 8]; libm's expf/tanhf are accurate to about 1 ulp, and the
        // formulas add at most a few roundings, so 1e-6 relative (about 8 ulp) is ample.
        let input: [f32; 33] = core::array::from_fn(|i| (i as f32 - 16.0) * 0.5);
        let mut output = [0.0f32; 33];
        type Reference = fn(f64) -> f64;
        let cases: [(Activation, Reference); 7] = [
            (Activation::Relu, |x| x.max(0.0)),
            (
                Activation::Clip {
                    min: -1.0,
                    max: 2.0,
                },
                |x| x.clamp(-1.0, 2.0),
            ),
            (Activation::LeakyRelu { alpha: 0.01 }, |x| {
                if x < 0.0 { 0.01 * x } else { x }
            }),
            (Activation::Sigmoid, |x| 1.0 / (1.0 + libm::exp(-x))),
            (Activation::Tanh, libm::tanh),
            (
                Activation::HardSigmoid {
                    alpha: 0.25,
                    beta: 0.5,
                },
                |x| (0.25 * x + 0.5).clamp(0.0, 1.0),
            ),
            (Activation::HardSwish, |x| {
                x * (x / 6.0 + 0.5).clamp(0.0, 1.0)
            }),
        ];
        for (act, reference) in cases {
            activation_f32(act, &input, &mut output);
            for (&x, &y) in input.iter().zip(&output) {
                assert!(close(y, reference(x as f64), 1e-6), "{act:?}({x}) = {y}");
                assert_eq!(y, act.apply(x));
            }
        }
    }
}
