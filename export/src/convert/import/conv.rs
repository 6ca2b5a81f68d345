//! 2-D windows over NCHW tensors: Conv, ConvTranspose (weights repacked to
//! `[Cout][Cin/g][kh][kw]`), MaxPool, AveragePool and GlobalAveragePool, with
//! the window geometry they share (strides, dilations, pads, auto_pad).

use tern_runtime::kernels::Window2d;

use super::{NodeCtx, OpEntry, Result};
use crate::convert::graph::{ConstData, Op};
use crate::convert::support::Int8Support::Kernel;

/// This family's registry lines: ONNX op type, int8 support, notes, import
/// handler and folding rule.
pub(super) const OPS: &[OpEntry] = &[
    OpEntry::new("AveragePool", Kernel, "2-D (NCHW)", |c| c.pool(false)),
    OpEntry::new(
        "Conv",
        Kernel,
        "2-D (NCHW), groups, dilation, auto_pad",
        |c| c.conv(),
    ),
    OpEntry::new("ConvTranspose", Kernel, "2-D (NCHW)", |c| {
        c.conv_transpose()
    }),
    OpEntry::new(
        "GlobalAveragePool",
        Kernel,
        "2-D (NCHW); other ranks as a mean over the spatial axes",
        |c| c.global_average_pool(),
    ),
    OpEntry::new("MaxPool", Kernel, "2-D (NCHW); no Indices output", |c| {
        c.pool(true)
    }),
];

impl NodeCtx<'_> {
    /// A pair attribute of a 2-D window (`strides`, `dilations`, `output_padding`):
    /// `[default; 2]` when absent, else exactly 2 values, each at least `min`.
    fn pair(&self, name: &str, default: usize, min: i64) -> Result<[usize; 2]> {
        match self.ints(name) {
            None => Ok([default; 2]),
            Some(v) if v.len() == 2 && v.iter().all(|&x| x >= min) => {
                Ok([v[0] as usize, v[1] as usize])
            }
            Some(v) => Err(self.unsupported(format!(
                "{name} = {v:?}: only 2-D windows with values >= {min} are supported"
            ))),
        }
    }

    /// Spatial geometry shared by Conv and pooling: `(window, pad_end, out_hw)`.
    fn window(
        &self,
        in_hw: [usize; 2],
        kernel: [usize; 2],
        ceil_mode: bool,
    ) -> Result<(Window2d, [usize; 2], [usize; 2])> {
        if kernel.contains(&0) {
            return Err(self.invalid(format!("zero-size kernel {kernel:?}")));
        }
        let stride = self.pair("strides", 1, 1)?;
        let dilation = self.pair("dilations", 1, 1)?;
        let auto_pad = self.string("auto_pad", "NOTSET");
        let mut begin = [0usize; 2];
        let mut end = [0usize; 2];
        let mut out = [0usize; 2];
        for d in 0..2 {
            let extent = dilation[d] * (kernel[d] - 1) + 1;
            match auto_pad.as_str() {
                "SAME_UPPER" | "SAME_LOWER" => {
                    out[d] = in_hw[d].div_ceil(stride[d]);
                    let total =
                        (out[d].saturating_sub(1) * stride[d] + extent).saturating_sub(in_hw[d]);
                    let small = total / 2;
                    (begin[d], end[d]) = if auto_pad == "SAME_UPPER" {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    };
                }
                "VALID" | "NOTSET" => {
                    if auto_pad == "NOTSET"
                        && let Some(p) = self.ints("pads")
                    {
                        if p.len() != 4 || p.iter().any(|&v| v < 0) {
                            return Err(self.unsupported(format!(
                                "pads {p:?}: only non-negative 2-D pads are supported"
                            )));
                        }
                        begin[d] = p[d] as usize;
                        end[d] = p[d + 2] as usize;
                    }
                    let padded = in_hw[d] + begin[d] + end[d];
                    if padded < extent {
                        return Err(self.invalid(format!(
                            "window {extent} larger than padded input {padded}"
                        )));
                    }
                    let span = padded - extent;
                    out[d] = if ceil_mode {
                        span.div_ceil(stride[d]) + 1
                    } else {
                        span / stride[d] + 1
                    };
                    if ceil_mode && (out[d] - 1) * stride[d] >= in_hw[d] + begin[d] {
                        out[d] -= 1;
                    }
                }
                other => return Err(self.unsupported(format!("auto_pad {other}"))),
            }
        }
        Ok((
            Window2d {
                kernel,
                stride,
                dilation,
                pad_begin: begin,
            },
            end,
            out,
        ))
    }

    fn conv(&mut self) -> Result<()> {
        self.float_inputs(&[0])?;
        let (x, w) = (self.required(0)?, self.required(1)?);
        let bias = self.input(2)?;
        let (xs, ws) = (self.shape(x), self.shape(w));
        if xs.len() != 4 || ws.len() != 4 {
            return Err(self.unsupported("only 2-D convolutions (4-D NCHW input) are supported"));
        }
        self.const_inputs(&[(1, "weights"), (2, "bias")])?;
        let groups = self.int("group", 1).max(1) as usize;
        if xs[1] != ws[1] * groups || ws[0] % groups != 0 {
            return Err(self.invalid(format!(
                "input {xs:?}, weights {ws:?} and group {groups} disagree"
            )));
        }
        let (window, pad_end, out) = self.window([xs[2], xs[3]], [ws[2], ws[3]], false)?;
        self.emit(
            Op::Conv {
                window,
                pad_end,
                groups,
                clamp: None,
            },
            vec![Some(x), Some(w), bias],
            vec![xs[0], ws[0], out[0], out[1]],
        )
    }

    fn conv_transpose(&mut self) -> Result<()> {
        self.float_inputs(&[0])?;
        let (x, w) = (self.required(0)?, self.required(1)?);
        let bias = self.input(2)?;
        let (xs, ws) = (self.shape(x), self.shape(w));
        if xs.len() != 4 || ws.len() != 4 {
            return Err(
                self.unsupported("only 2-D transposed convolutions (4-D NCHW input) are supported")
            );
        }
        self.const_inputs(&[(1, "weights"), (2, "bias")])?;
        let groups = self.int("group", 1).max(1) as usize;
        let (cin, cout_g, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
        if xs[1] != cin || cin % groups != 0 {
            return Err(self.invalid("input channels differ from weights"));
        }
        if kh == 0 || kw == 0 || xs[2] == 0 || xs[3] == 0 {
            return Err(self.invalid(format!(
                "zero-size kernel {:?} or input {:?}",
                [kh, kw],
                [xs[2], xs[3]]
            )));
        }
        let stride = self.pair("strides", 1, 1)?;
        let dilation = self.pair("dilations", 1, 1)?;
        let out_pad = self.pair("output_padding", 0, 0)?;
        let mut begin = [0usize; 2];
        let mut out = [0usize; 2];
        let auto_pad = self.string("auto_pad", "NOTSET");
        let explicit_out = match self.ints("output_shape") {
            Some(os) if os.len() < 2 || os[os.len() - 2..].iter().any(|&v| v < 0) => {
                return Err(self.invalid(format!(
                    "output_shape {os:?} (need at least 2 non-negative values)"
                )));
            }
            Some(os) => Some([os[os.len() - 2] as usize, os[os.len() - 1] as usize]),
            None => None,
        };
        // Explicit pads only count without output_shape and auto_pad SAME_*.
        let uses_pads = explicit_out.is_none() && !auto_pad.starts_with("SAME");
        let pads = match self.ints("pads").filter(|_| uses_pads) {
            None => [0; 4],
            Some(p) if p.len() == 4 && p.iter().all(|&v| v >= 0) => {
                [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize]
            }
            Some(p) => {
                return Err(self.unsupported(format!(
                    "pads {p:?}: only non-negative 2-D pads are supported"
                )));
            }
        };
        for d in 0..2 {
            let k = [kh, kw][d];
            let full = stride[d] * (xs[2 + d] - 1) + out_pad[d] + (k - 1) * dilation[d] + 1;
            if let Some(os) = explicit_out {
                let target = os[d];
                let total = full.saturating_sub(target);
                begin[d] = if auto_pad == "SAME_UPPER" {
                    total / 2
                } else {
                    total - total / 2
                };
                out[d] = target;
            } else if auto_pad.starts_with("SAME") {
                out[d] = xs[2 + d] * stride[d];
                let total = full.saturating_sub(out[d]);
                begin[d] = if auto_pad == "SAME_UPPER" {
                    total / 2
                } else {
                    total - total / 2
                };
            } else {
                begin[d] = pads[d];
                out[d] = full
                    .checked_sub(pads[d] + pads[d + 2])
                    .ok_or_else(|| self.invalid("pads larger than the output"))?;
            }
        }
        // Repack [Cin][Cout/g][kh][kw] -> [Cout][Cin/g][kh][kw].
        let data = self.g.const_f32(w).unwrap_or_default();
        let cin_g = cin / groups;
        let cout = cout_g * groups;
        let khw = kh * kw;
        let mut packed = vec![0f32; data.len()];
        for ic in 0..cin {
            let group = ic / cin_g;
            for ocl in 0..cout_g {
                let oc = group * cout_g + ocl;
                let src = (ic * cout_g + ocl) * khw;
                let dst = (oc * cin_g + ic % cin_g) * khw;
                packed[dst..dst + khw].copy_from_slice(&data[src..src + khw]);
            }
        }
        let name = format!("{}.packed", self.g.values[w].name);
        let wp = self.g.add_value(
            &name,
            vec![cout, cin_g, kh, kw],
            Some(ConstData::F32(packed)),
        );
        let window = Window2d {
            kernel: [kh, kw],
            stride,
            dilation,
            pad_begin: begin,
        };
        self.emit(
            Op::ConvTranspose {
                window,
                groups,
                clamp: None,
            },
            vec![Some(x), Some(wp), bias],
            vec![xs[0], cout, out[0], out[1]],
        )
    }

    fn pool(&mut self, max: bool) -> Result<()> {
        self.float_inputs(&[0])?;
        let x = self.required(0)?;
        let s = self.shape(x);
        if s.len() != 4 {
            return Err(self.unsupported("only 2-D pooling (4-D NCHW input) is supported"));
        }
        if self.node.output.len() > 1 {
            return Err(self.unsupported("MaxPool with an Indices output"));
        }
        let kernel = self
            .ints("kernel_shape")
            .filter(|k| k.len() == 2 && k.iter().all(|&v| v >= 1))
            .ok_or_else(|| self.unsupported("kernel_shape must be 2-D"))?;
        let ceil = self.int("ceil_mode", 0) == 1;
        let (window, pad_end, out) =
            self.window([s[2], s[3]], [kernel[0] as usize, kernel[1] as usize], ceil)?;
        let op = if max {
            if self.int("storage_order", 0) != 0 {
                return Err(self.unsupported("storage_order = 1"));
            }
            Op::MaxPool { window }
        } else {
            Op::AvgPool {
                window,
                pad_end,
                count_include_pad: self.int("count_include_pad", 0) == 1,
            }
        };
        self.emit(op, vec![Some(x)], vec![s[0], s[1], out[0], out[1]])
    }

    /// GlobalAveragePool: a full-window average pool on 4-D inputs, a mean over
    /// the spatial axes for other ranks.
    fn global_average_pool(&mut self) -> Result<()> {
        self.float_inputs(&[0])?;
        let x = self.required(0)?;
        let s = self.shape(x);
        if s.len() != 4 {
            if s.len() < 3 {
                return Err(self.invalid("GlobalAveragePool needs rank >= 3"));
            }
            // [N, C, d...] of any other rank: a mean over the spatial axes.
            let mask = ((1u32 << s.len()) - 1) & !3;
            let mut shape = s.clone();
            shape[2..].iter_mut().for_each(|d| *d = 1);
            return self.emit(
                Op::Reduce {
                    op: tern_runtime::kernels::reduce_f32::ReduceOp::Mean,
                    mask,
                },
                vec![Some(x)],
                shape,
            );
        }
        let window = Window2d {
            kernel: [s[2], s[3]],
            stride: [1, 1],
            dilation: [1, 1],
            pad_begin: [0, 0],
        };
        self.emit(
            Op::AvgPool {
                window,
                pad_end: [0, 0],
                count_include_pad: false,
            },
            vec![Some(x)],
            vec![s[0], s[1], 1, 1],
        )
    }
}
