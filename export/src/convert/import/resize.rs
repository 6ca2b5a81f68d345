//! Resize and Upsample of 4-D (NCHW) inputs: nearest or linear, scales or
//! sizes, every coordinate transformation mode Tern's kernels implement.

use tern_runtime::kernels::{CoordinateMode, NearestMode, ResizeGeometry};
use tern_runtime::ops::ResizeParams;

use super::proto::attr;
use super::{NodeCtx, OpEntry, Result};
use crate::convert::graph::Op;
use crate::convert::support::Int8Support::Kernel;

/// This family's registry lines: ONNX op type, int8 support, notes, import
/// handler and folding rule.
pub(super) const OPS: &[OpEntry] = &[
    OpEntry::new(
        "Resize",
        Kernel,
        "2-D (NCHW) nearest/linear, axes, keep_aspect_ratio_policy; no cubic, antialias or tf_crop_and_resize",
        |c| c.resize(),
    ),
    OpEntry::new("Upsample", Kernel, "as Resize", |c| c.resize()),
];

impl NodeCtx<'_> {
    fn resize(&mut self) -> Result<()> {
        self.float_inputs(&[0])?;
        let x = self.required(0)?;
        let s = self.shape(x);
        if s.len() != 4 {
            return Err(self.unsupported("only 4-D (NCHW) inputs are supported"));
        }
        let upsample = self.node.op_type == "Upsample";
        let (scales_at, sizes_at) = if upsample || self.opset < 11 {
            (1, usize::MAX)
        } else {
            (2, 3)
        };
        if self.int("antialias", 0) != 0 {
            return Err(self.unsupported("antialias = 1"));
        }
        let policy = self.string("keep_aspect_ratio_policy", "stretch");
        if !matches!(policy.as_str(), "stretch" | "not_larger" | "not_smaller") {
            return Err(self.unsupported(format!("keep_aspect_ratio_policy = '{policy}'")));
        }
        // Scales / sizes are given for `axes` (all four by default).
        let axes: Vec<usize> = match self.ints("axes") {
            Some(axes) => axes
                .iter()
                .map(|&a| self.axis(a, 4))
                .collect::<Result<_>>()?,
            None => (0..4).collect(),
        };
        let scales = match self.input(scales_at)? {
            Some(_) => self
                .konst(scales_at)?
                .ok_or_else(|| {
                    self.unsupported(format!("scales (input {scales_at}) must be a constant"))
                })?
                .to_f32(),
            // Upsample-7 and earlier: a float attribute.
            None => attr(self.node, "scales")
                .map(|a| a.floats.clone())
                .unwrap_or_default(),
        };
        let sizes = if sizes_at != usize::MAX {
            self.input(sizes_at)?
                .map(|_| self.const_ints(sizes_at, "sizes"))
                .transpose()?
        } else {
            None
        };
        let per_axis = |what: &str, n: usize| -> Result<()> {
            if n != axes.len() {
                return Err(self.invalid(format!("{n} {what} for {} axes", axes.len())));
            }
            Ok(())
        };
        // ratio = 1 / scale as a rational with denominator 2^16.
        let den = |v: f64| (v * 65536.0).round().max(1.0) as u32;
        let (out, num, den): ([usize; 4], [u32; 2], [u32; 2]) = match (sizes, scales.is_empty()) {
            (Some(sz), _) => {
                per_axis("sizes", sz.len())?;
                let mut full = [s[0], s[1], s[2], s[3]];
                for (&a, &v) in axes.iter().zip(&sz) {
                    full[a] = usize::try_from(v)
                        .map_err(|_| self.invalid(format!("negative size {v}")))?;
                }
                if policy == "stretch" {
                    (
                        full,
                        [s[2] as u32, s[3] as u32],
                        [full[2] as u32, full[3] as u32],
                    )
                } else {
                    // One scale for every listed axis, the output rounded half up.
                    let ratios = axes.iter().map(|&a| full[a] as f64 / s[a].max(1) as f64);
                    let scale = if policy == "not_larger" {
                        ratios.fold(f64::INFINITY, f64::min)
                    } else {
                        ratios.fold(0.0, f64::max)
                    };
                    let mut out = [s[0], s[1], s[2], s[3]];
                    for &a in &axes {
                        out[a] = (scale * s[a] as f64 + 0.5) as usize;
                    }
                    let axis_den = |d: usize| if axes.contains(&d) { den(scale) } else { 65536 };
                    (out, [65536, 65536], [axis_den(2), axis_den(3)])
                }
            }
            (None, false) => {
                per_axis("scales", scales.len())?;
                let mut full = [1f32; 4];
                for (&a, &v) in axes.iter().zip(&scales) {
                    full[a] = v;
                }
                // ONNX maps align_corners coordinates with the unrounded output
                // length `in * scale`; Tern's kernels use the integer output length.
                let mode = self.string("coordinate_transformation_mode", "");
                if mode == "align_corners" && (2..4).any(|d| (s[d] as f32 * full[d]).fract() != 0.0)
                {
                    return Err(self.unsupported(format!(
                        "coordinate_transformation_mode align_corners with scales {scales:?} \
                         giving a fractional output length (give sizes instead)"
                    )));
                }
                let out = [0, 1, 2, 3].map(|d| (s[d] as f32 * full[d]).floor() as usize);
                (
                    out,
                    [65536, 65536],
                    [den(full[2] as f64), den(full[3] as f64)],
                )
            }
            (None, true) => return Err(self.invalid("neither scales nor sizes given")),
        };
        if out[0] != s[0] || out[1] != s[1] {
            return Err(self.unsupported("resizing the batch or channel axis"));
        }
        let mode = self.string("mode", "nearest");
        let linear = match mode.as_str() {
            "nearest" => false,
            "linear" | "bilinear" => true,
            other => return Err(self.unsupported(format!("mode {other}"))),
        };
        let default_coord = if upsample || self.opset < 11 {
            "asymmetric"
        } else {
            "half_pixel"
        };
        let coord = match self
            .string("coordinate_transformation_mode", default_coord)
            .as_str()
        {
            "half_pixel" => CoordinateMode::HalfPixel,
            "pytorch_half_pixel" => CoordinateMode::PytorchHalfPixel,
            "align_corners" => CoordinateMode::AlignCorners,
            "asymmetric" => CoordinateMode::Asymmetric,
            other => {
                return Err(self.unsupported(format!("coordinate_transformation_mode {other}")));
            }
        };
        let default_nearest = if upsample || self.opset < 11 {
            "floor"
        } else {
            "round_prefer_floor"
        };
        let nearest = match self.string("nearest_mode", default_nearest).as_str() {
            "round_prefer_floor" => NearestMode::RoundPreferFloor,
            "round_prefer_ceil" => NearestMode::RoundPreferCeil,
            "floor" => NearestMode::Floor,
            "ceil" => NearestMode::Ceil,
            other => return Err(self.unsupported(format!("nearest_mode {other}"))),
        };
        let params = ResizeParams {
            linear,
            nearest,
            geometry: ResizeGeometry {
                coord,
                ratio_num: num,
                ratio_den: den,
            },
        };
        self.emit(Op::Resize(params), vec![Some(x)], out.to_vec())
    }
}
