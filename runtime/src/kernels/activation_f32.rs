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
    /// A parameterless elementwise function.
    Unary(Unary),
    /// `x` for `x > 0`, else `alpha * (exp(x) - 1)`.
    Elu {
        /// Scale of the negative part.
        alpha: f32,
    },
    /// `gamma * (x > 0 ? x : alpha * (exp(x) - 1))`.
    Selu {
        /// Scale of the negative part.
        alpha: f32,
        /// Output scale.
        gamma: f32,
    },
    /// `max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`.
    Celu {
        /// Shape parameter.
        alpha: f32,
    },
    /// `x` for `x > alpha`, else 0.
    ThresholdedRelu {
        /// Threshold.
        alpha: f32,
    },
    /// `alpha * x + beta` (RNN activation).
    Affine {
        /// Slope.
        alpha: f32,
        /// Offset.
        beta: f32,
    },
    /// `alpha * tanh(beta * x)` (RNN activation).
    ScaledTanh {
        /// Output scale.
        alpha: f32,
        /// Input scale.
        beta: f32,
    },
    /// `x ^ exponent` (Pow with a constant scalar exponent).
    Powf {
        /// Exponent.
        exponent: f32,
    },
    /// `x - bias` if `x > lambd`, `x + bias` if `x < -lambd`, else 0.
    Shrink {
        /// Threshold.
        lambd: f32,
        /// Shift.
        bias: f32,
    },
}

macro_rules! unary_ops {
    ($($(#[$doc:meta])* $name:ident = $code:expr => $f:expr),* $(,)?) => {
        /// Parameterless elementwise functions (ONNX semantics).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u32)]
        pub enum Unary { $($(#[$doc])* $name = $code),* }

        impl Unary {
            /// The function with stored code `code`.
            pub fn from_code(code: u32) -> Option<Unary> {
                match code { $($code => Some(Unary::$name),)* _ => None }
            }
            /// Applies the function.
            #[inline]
            pub fn apply(self, x: f32) -> f32 {
                match self { $(Unary::$name => ($f)(x)),* }
            }
        }
    };
}

unary_ops! {
    /// Gauss error function.
    Erf = 0 => libm::erff,
    /// `x * (1 + erf(x / sqrt 2)) / 2` (exact GELU).
    Gelu = 1 => |x: f32| 0.5 * x * (1.0 + libm::erff(x * core::f32::consts::FRAC_1_SQRT_2)),
    /// `x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3))) / 2` (tanh GELU).
    GeluTanh = 2 => |x: f32| {
        0.5 * x * (1.0 + libm::tanhf(0.797_884_6 * (x + 0.044_715 * x * x * x)))
    },
    /// Square root.
    Sqrt = 3 => libm::sqrtf,
    /// `e^x`
    Exp = 4 => libm::expf,
    /// Natural logarithm.
    Log = 5 => libm::logf,
    /// `-x`
    Neg = 6 => |x: f32| -x,
    /// `|x|`
    Abs = 7 => libm::fabsf,
    /// `1 / x`
    Reciprocal = 8 => |x: f32| 1.0 / x,
    /// Round down.
    Floor = 9 => libm::floorf,
    /// Round up.
    Ceil = 10 => libm::ceilf,
    /// Round half to even.
    Round = 11 => libm::rintf,
    /// -1, 0 or 1 (NaN stays NaN).
    Sign = 12 => |x: f32| if x > 0.0 { 1.0 } else if x < 0.0 { -1.0 } else { x },
    /// Sine.
    Sin = 13 => libm::sinf,
    /// Cosine.
    Cos = 14 => libm::cosf,
    /// `ln(1 + e^x)`
    Softplus = 15 => |x: f32| if x > 20.0 { x } else { libm::log1pf(libm::expf(x)) },
    /// `x / (1 + |x|)`
    Softsign = 16 => |x: f32| x / (1.0 + libm::fabsf(x)),
    /// `x * tanh(softplus(x))`
    Mish = 17 => |x: f32| {
        let sp = if x > 20.0 { x } else { libm::log1pf(libm::expf(x)) };
        x * libm::tanhf(sp)
    },
    /// `x * sigmoid(x)` (SiLU / Swish).
    Swish = 18 => |x: f32| x * sigmoid(x),
    /// `x` (a float-island identity).
    Identity = 19 => |x: f32| x,
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
            Activation::Unary(u) => u.apply(x),
            Activation::Elu { alpha } => elu(x, alpha),
            Activation::Selu { alpha, gamma } => gamma * elu(x, alpha),
            Activation::Celu { alpha } => {
                relu(x) + (alpha * (libm::expf(x / alpha) - 1.0)).min(0.0)
            }
            Activation::ThresholdedRelu { alpha } => {
                if x > alpha {
                    x
                } else {
                    0.0
                }
            }
            Activation::Affine { alpha, beta } => alpha * x + beta,
            Activation::ScaledTanh { alpha, beta } => alpha * libm::tanhf(beta * x),
            Activation::Powf { exponent } => {
                if exponent == 2.0 {
                    x * x
                } else {
                    libm::powf(x, exponent)
                }
            }
            Activation::Shrink { lambd, bias } => {
                if x > lambd {
                    x - bias
                } else if x < -lambd {
                    x + bias
                } else {
                    0.0
                }
            }
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
        Activation::Unary(u) => map(input, output, |x| u.apply(x)),
        other => map(input, output, |x| other.apply(x)),
    }
}

#[inline(always)]
fn elu(x: f32, alpha: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        alpha * (libm::expf(x) - 1.0)
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
