//! Float bilinear Resize over H and W of NCHW (ONNX Resize, `mode = linear`).

use super::{CoordinateMode, ResizeGeometry, Shape4};

/// Input coordinate of output index `x_out` along one axis, clamped to `[0, in_len - 1]`:
/// [`CoordinateMode::source_fraction`] divided once in f32. Returns 0 when `in_len == 0`.
#[inline]
pub fn source_coordinate(
    coord: CoordinateMode,
    x_out: usize,
    in_len: usize,
    out_len: usize,
    ratio_num: u32,
    ratio_den: u32,
) -> f32 {
    let (p, q) = coord.source_fraction(x_out, in_len, out_len, ratio_num, ratio_den);
    let hi = in_len.saturating_sub(1) as f32;
    let v = p as f32 / q as f32;
    if v < 0.0 {
        0.0
    } else if v > hi {
        hi
    } else {
        v
    }
}

/// Neighbours and weight of a clamped source coordinate: `(i0, i1, frac)` with
/// `value = (1 - frac) * v[i0] + frac * v[i1]`.
#[inline]
fn taps(coord: f32, in_len: usize) -> (usize, usize, f32) {
    let i0 = coord as usize; // coord >= 0: truncation is floor
    let i1 = (i0 + 1).min(in_len.saturating_sub(1));
    (i0, i1, coord - i0 as f32)
}

/// Bilinear resize of each `[H][W]` plane from `in_shape` to `out_shape`:
/// `y = (1-ly)*((1-lx)*v00 + lx*v01) + ly*((1-lx)*v10 + lx*v11)` around the
/// [`source_coordinate`] of each output row and column.
///
/// Preconditions (debug-asserted): same `n` and `c`, slice lengths match the shapes,
/// input planes non-empty when the output is.
pub fn resize_linear_f32(
    input: &[f32],
    in_shape: Shape4,
    geometry: &ResizeGeometry,
    output: &mut [f32],
    out_shape: Shape4,
) {
    debug_assert_eq!(input.len(), in_shape.len());
    debug_assert_eq!(output.len(), out_shape.len());
    debug_assert_eq!((in_shape.n, in_shape.c), (out_shape.n, out_shape.c));
    let (ih, iw) = (in_shape.h, in_shape.w);
    let (oh, ow) = (out_shape.h, out_shape.w);
    let out_plane = oh * ow;
    let in_plane = ih * iw;
    if out_plane == 0 || in_plane == 0 {
        return;
    }
    let g = geometry;
    for (p, out) in output.chunks_exact_mut(out_plane).enumerate() {
        let src = &input[p * in_plane..][..in_plane];
        for (oy, out_row) in out.chunks_exact_mut(ow).enumerate() {
            let y = source_coordinate(g.coord, oy, ih, oh, g.ratio_num[0], g.ratio_den[0]);
            let (y0, y1, ly) = taps(y, ih);
            let row0 = &src[y0 * iw..][..iw];
            let row1 = &src[y1 * iw..][..iw];
            for (ox, o) in out_row.iter_mut().enumerate() {
                let x = source_coordinate(g.coord, ox, iw, ow, g.ratio_num[1], g.ratio_den[1]);
                let (x0, x1, lx) = taps(x, iw);
                let top = (1.0 - lx) * row0[x0] + lx * row0[x1];
                let bottom = (1.0 - lx) * row1[x0] + lx * row1[x1];
                *o = (1.0 - ly) * top + ly * bottom;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    use super::super::test_rng::XorShift;

    fn geometry(coord: CoordinateMode, num: u32, den: u32) -> ResizeGeometry {
        ResizeGeometry {
            coord,
            ratio_num: [num, num],
            ratio_den: [den, den],
        }
    }

    fn resize(
        input: &[f32],
        ih: usize,
        iw: usize,
        g: &ResizeGeometry,
        oh: usize,
        ow: usize,
    ) -> Vec<f32> {
        let mut out = vec![f32::NAN; oh * ow];
        resize_linear_f32(
            input,
            Shape4::new(1, 1, ih, iw),
            g,
            &mut out,
            Shape4::new(1, 1, oh, ow),
        );
        out
    }

    #[test]
    fn onnx_upsample_half_pixel() {
        // ONNX test resize_upsample_scales_linear: 2x2 -> 4x4, scale 2 (ratio 1/2).
        let out = resize(
            &[1.0, 2.0, 3.0, 4.0],
            2,
            2,
            &geometry(CoordinateMode::HalfPixel, 1, 2),
            4,
            4,
        );
        let want = [
            1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0,
        ];
        assert_eq!(out, want);
    }

    #[test]
    fn onnx_upsample_align_corners() {
        // ONNX test resize_upsample_scales_linear_align_corners.
        let out = resize(
            &[1.0, 2.0, 3.0, 4.0],
            2,
            2,
            &geometry(CoordinateMode::AlignCorners, 1, 2),
            4,
            4,
        );
        let t = 1.0 / 3.0;
        let row = |base: f32| [base, base + t, base + 2.0 * t, base + 1.0];
        let want: Vec<f32> = [1.0, 1.0 + 2.0 * t, 1.0 + 4.0 * t, 3.0]
            .iter()
            .flat_map(|&b| row(b))
            .collect();
        for (g, w) in out.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6, "{out:?}");
        }
    }

    #[test]
    fn onnx_downsample_half_pixel() {
        // ONNX test resize_downsample_scales_linear: 2x4 -> 1x2, scale 0.6 (ratio 5/3).
        let input = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let g = geometry(CoordinateMode::HalfPixel, 5, 3);
        let out = resize(&input, 2, 4, &g, 1, 2);
        let want = [2.666_666_7f32, 4.333_333];
        for (g, w) in out.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{out:?}");
        }
    }

    #[test]
    fn source_coordinates() {
        use CoordinateMode::*;
        assert_eq!(source_coordinate(HalfPixel, 0, 2, 4, 1, 2), 0.0); // -0.25 clamped
        assert_eq!(source_coordinate(HalfPixel, 2, 2, 4, 1, 2), 0.75);
        assert_eq!(source_coordinate(HalfPixel, 3, 2, 4, 1, 2), 1.0); // 1.25 clamped
        assert_eq!(source_coordinate(PytorchHalfPixel, 0, 5, 1, 5, 1), 0.0);
        assert_eq!(source_coordinate(HalfPixel, 0, 5, 1, 5, 1), 2.0);
        assert_eq!(source_coordinate(AlignCorners, 2, 5, 3, 5, 3), 4.0);
        assert_eq!(source_coordinate(AlignCorners, 0, 5, 1, 5, 1), 0.0);
        assert_eq!(source_coordinate(Asymmetric, 3, 4, 8, 1, 2), 1.5);
    }

    #[test]
    fn random_shapes_match_f64_reference() {
        // Reference in f64 from the ONNX formulas; the kernel rounds the coordinate and a
        // few products in f32 (inputs in [-1, 1)), so 1e-5 absolute is ample.
        let mut rng = XorShift(0x5151_5151_aaaa_0001);
        let modes = [
            CoordinateMode::HalfPixel,
            CoordinateMode::PytorchHalfPixel,
            CoordinateMode::AlignCorners,
            CoordinateMode::Asymmetric,
        ];
        for iter in 0..100 {
            let coord = modes[iter % 4];
            let (ih, iw) = (1 + rng.below(6), 1 + rng.below(6));
            let (oh, ow) = (1 + rng.below(9), 1 + rng.below(9));
            // Ratios as ONNX would derive them from the sizes.
            let g = ResizeGeometry {
                coord,
                ratio_num: [ih as u32, iw as u32],
                ratio_den: [oh as u32, ow as u32],
            };
            let s = Shape4::new(1 + rng.below(2), 1 + rng.below(2), ih, iw);
            let o = Shape4::new(s.n, s.c, oh, ow);
            let input: Vec<f32> = (0..s.len()).map(|_| rng.f32()).collect();
            let mut out = vec![f32::NAN; o.len()];
            resize_linear_f32(&input, s, &g, &mut out, o);
            let src = |x: usize, in_len: usize, out_len: usize| -> f64 {
                let r = in_len as f64 / out_len as f64;
                let v = match coord {
                    CoordinateMode::HalfPixel => (x as f64 + 0.5) * r - 0.5,
                    CoordinateMode::PytorchHalfPixel if out_len > 1 => (x as f64 + 0.5) * r - 0.5,
                    CoordinateMode::PytorchHalfPixel => 0.0,
                    CoordinateMode::AlignCorners if out_len > 1 => {
                        x as f64 * (in_len - 1) as f64 / (out_len - 1) as f64
                    }
                    CoordinateMode::AlignCorners => 0.0,
                    CoordinateMode::Asymmetric => x as f64 * r,
                };
                v.clamp(0.0, (in_len - 1) as f64)
            };
            for p in 0..s.n * s.c {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let (y, x) = (src(oy, ih, oh), src(ox, iw, ow));
                        let (y0, x0) = (y as usize, x as usize);
                        let (y1, x1) = ((y0 + 1).min(ih - 1), (x0 + 1).min(iw - 1));
                        let (ly, lx) = (y - y0 as f64, x - x0 as f64);
                        let v = |yy: usize, xx: usize| input[(p * ih + yy) * iw + xx] as f64;
                        let want = (1.0 - ly) * ((1.0 - lx) * v(y0, x0) + lx * v(y0, x1))
                            + ly * ((1.0 - lx) * v(y1, x0) + lx * v(y1, x1));
                        let got = out[(p * oh + oy) * ow + ox] as f64;
                        assert!(
                            (got - want).abs() <= 1e-5,
                            "{coord:?} {s:?} {o:?}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
