//! Elementwise activations with attributes (Relu, LeakyRelu, Clip, Gelu,
//! Elu/Selu/Celu, HardSigmoid, Shrink...): each one runtime Activation node
//! (an int8 lookup table in int8 models).

use tern_runtime::kernels::activation_f32::{Activation, Unary};

use super::{NodeCtx, OpEntry, Result};
use crate::convert::support::Int8Support::Kernel;

/// This family's registry lines: ONNX op type, int8 support, notes, import
/// handler and folding rule.
pub(super) const OPS: &[OpEntry] = &[
    OpEntry::new("Celu", Kernel, "int8 as a lookup table", |c| {
        c.activation_op(Activation::Celu {
            alpha: c.float("alpha", 1.0),
        })
    }),
    OpEntry::new("Clip", Kernel, "constant bounds; float tensors", |c| {
        c.clip()
    }),
    OpEntry::new("Elu", Kernel, "int8 as a lookup table", |c| {
        c.activation_op(Activation::Elu {
            alpha: c.float("alpha", 1.0),
        })
    }),
    OpEntry::new("Gelu", Kernel, "int8 as a lookup table", |c| c.gelu()),
    OpEntry::new("HardSigmoid", Kernel, "int8 as a lookup table", |c| {
        c.activation_op(Activation::HardSigmoid {
            alpha: c.float("alpha", 0.2),
            beta: c.float("beta", 0.5),
        })
    }),
    OpEntry::new("HardSwish", Kernel, "int8 as a lookup table", |c| {
        c.activation_op(Activation::HardSwish)
    }),
    OpEntry::new("LeakyRelu", Kernel, "int8 as a lookup table", |c| {
        c.activation_op(Activation::LeakyRelu {
            alpha: c.float("alpha", 0.01),
        })
    }),
    OpEntry::new("Mish", Kernel, "int8 as a lookup table", |c| {
        c.unary(Unary::Mish)
    }),
    OpEntry::new("Relu", Kernel, "", |c| c.activation_op(Activation::Relu)),
    OpEntry::new("Selu", Kernel, "int8 as a lookup table", |c| {
        c.activation_op(Activation::Selu {
            alpha: c.float("alpha", 1.673_263_2),
            gamma: c.float("gamma", 1.050_701),
        })
    }),
    OpEntry::new("Shrink", Kernel, "int8 as a lookup table", |c| {
        c.activation_op(Activation::Shrink {
            lambd: c.float("lambd", 0.5),
            bias: c.float("bias", 0.0),
        })
    }),
    OpEntry::new("Sigmoid", Kernel, "int8 as a lookup table", |c| {
        c.activation_op(Activation::Sigmoid)
    }),
    OpEntry::new("Softplus", Kernel, "int8 as a lookup table", |c| {
        c.unary(Unary::Softplus)
    }),
    OpEntry::new("Softsign", Kernel, "int8 as a lookup table", |c| {
        c.unary(Unary::Softsign)
    }),
    OpEntry::new("Tanh", Kernel, "int8 as a lookup table", |c| {
        c.activation_op(Activation::Tanh)
    }),
    OpEntry::new("ThresholdedRelu", Kernel, "int8 as a lookup table", |c| {
        c.activation_op(Activation::ThresholdedRelu {
            alpha: c.float("alpha", 1.0),
        })
    }),
];

impl NodeCtx<'_> {
    pub(super) fn activation_op(&mut self, act: Activation) -> Result<()> {
        self.float_inputs(&[0])?;
        self.activation(act)
    }

    /// Clip: bounds from attributes (opset < 11) or constant inputs.
    fn clip(&mut self) -> Result<()> {
        let (min, max) = if self.opset < 11 {
            (
                self.float("min", f32::NEG_INFINITY),
                self.float("max", f32::INFINITY),
            )
        } else {
            let get = |k, d| -> Result<f32> {
                Ok(match self.input(k)? {
                    None => d,
                    Some(_) => *self
                        .konst(k)?
                        .ok_or_else(|| {
                            let what = if k == 1 { "min" } else { "max" };
                            self.unsupported(format!("{what} (input {k}) must be a constant"))
                        })?
                        .to_f32()
                        .first()
                        .unwrap_or(&d),
                })
            };
            (get(1, f32::NEG_INFINITY)?, get(2, f32::INFINITY)?)
        };
        // min > max sets every value to max (numpy's clip).
        self.activation_op(Activation::Clip {
            min: min.min(max),
            max,
        })
    }

    pub(super) fn gelu(&mut self) -> Result<()> {
        let u = match self.string("approximate", "none").as_str() {
            "none" => Unary::Gelu,
            "tanh" => Unary::GeluTanh,
            other => return Err(self.unsupported(format!("approximate = '{other}'"))),
        };
        self.unary(u)
    }
}
