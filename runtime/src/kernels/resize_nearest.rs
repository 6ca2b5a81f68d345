//! Nearest-neighbour Resize over H and W of NCHW (ONNX Resize, `mode = nearest`) for
//! any element type.
//!
//! Source indices are computed with integer arithmetic only, exactly, from the rational
//! ratio, so f32 and int8 models (and every target) pick the same pixels.

use super::{CoordinateMode, NearestMode, ResizeGeometry, Shape4};

/// Source index of output index `x_out` along one axis, clamped to `[0, in_len - 1]`.
///
/// The source coordinate is the exact fraction `p / q` of the coordinate mode (see
/// [`CoordinateMode`]; `ratio_num / ratio_den` is input length per output length):
/// - `HalfPixel`: `p = (2 * x_out + 1) * num - den`, `q = 2 * den`;
/// - `PytorchHalfPixel`: the same, but 0 when `out_len == 1`;
/// - `AlignCorners`: `p = x_out * (in_len - 1)`, `q = out_len - 1` (0 when `out_len == 1`);
/// - `Asymmetric`: `p = x_out * num`, `q = den`;
///
/// then rounded per `nearest` (ties decided exactly on `p` and `q`). Returns 0 when
/// `in_len == 0`.
#[inline]
pub fn nearest_source_index(
    coord: CoordinateMode,
    nearest: NearestMode,
    x_out: usize,
    in_len: usize,
    out_len: usize,
    ratio_num: u32,
    ratio_den: u32,
) -> usize {
    let (p, q) = coord.source_fraction(x_out, in_len, out_len, ratio_num, ratio_den);
    let floor = p.div_euclid(q);
    let rem = p.rem_euclid(q); // p = floor * q + rem, 0 <= rem < q
    let index = match nearest {
        NearestMode::Floor => floor,
        NearestMode::Ceil => floor + (rem > 0) as i128,
        NearestMode::RoundPreferFloor => floor + (2 * rem > q) as i128,
        NearestMode::RoundPreferCeil => floor + (2 * rem >= q) as i128,
    };
    index.clamp(0, in_len.saturating_sub(1) as i128) as usize
}

/// Output columns whose source columns are computed together and reused for
/// every row and plane.
const COLUMN_CHUNK: usize = 256;

/// Nearest-neighbour resize of each `[H][W]` plane: `out[oy][ox] = in[sy(oy)][sx(ox)]`
/// with [`nearest_source_index`] per axis. The source columns are computed once per
/// chunk of [`COLUMN_CHUNK`] output columns for all rows and planes; an output row
/// with the same source row as the previous one is copied.
///
/// Preconditions (debug-asserted): same `n` and `c`, slice lengths match the shapes,
/// input planes non-empty when the output is.
pub fn resize_nearest<T: Copy>(
    input: &[T],
    in_shape: Shape4,
    geometry: &ResizeGeometry,
    nearest: NearestMode,
    output: &mut [T],
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
    let source_row = |oy: usize| {
        nearest_source_index(g.coord, nearest, oy, ih, oh, g.ratio_num[0], g.ratio_den[0])
    };
    let mut columns = [0usize; COLUMN_CHUNK];
    for x0 in (0..ow).step_by(COLUMN_CHUNK) {
        let count = (ow - x0).min(COLUMN_CHUNK);
        let columns = &mut columns[..count];
        for (i, sx) in columns.iter_mut().enumerate() {
            *sx = nearest_source_index(
                g.coord,
                nearest,
                x0 + i,
                iw,
                ow,
                g.ratio_num[1],
                g.ratio_den[1],
            );
        }
        let columns = &*columns;
        for (p, out) in output.chunks_exact_mut(out_plane).enumerate() {
            let src = &input[p * in_plane..][..in_plane];
            let mut previous: Option<usize> = None;
            for oy in 0..oh {
                let sy = source_row(oy);
                let at = oy * ow + x0;
                if previous == Some(sy) {
                    out.copy_within(at - ow..at - ow + count, at);
                    continue;
                }
                previous = Some(sy);
                let src_row = &src[sy * iw..][..iw];
                for (o, &sx) in out[at..][..count].iter_mut().zip(columns) {
                    *o = src_row[sx];
                }
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

    use CoordinateMode::*;
    use NearestMode::*;

    fn geometry(coord: CoordinateMode, num: u32, den: u32) -> ResizeGeometry {
        ResizeGeometry {
            coord,
            ratio_num: [num, num],
            ratio_den: [den, den],
        }
    }

    #[test]
    fn onnx_upsample_nearest() {
        // ONNX test resize_upsample_scales_nearest: 2x2 -> 4x6 (scales 2, 3), default
        // half_pixel coordinates and round_prefer_floor.
        let input = [1i8, 2, 3, 4];
        let g = ResizeGeometry {
            coord: HalfPixel,
            ratio_num: [1, 1],
            ratio_den: [2, 3],
        };
        let mut out = [0i8; 24];
        resize_nearest(
            &input,
            Shape4::new(1, 1, 2, 2),
            &g,
            RoundPreferFloor,
            &mut out,
            Shape4::new(1, 1, 4, 6),
        );
        let want = [
            1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4,
        ];
        assert_eq!(out, want);
    }

    #[test]
    fn onnx_downsample_nearest() {
        // ONNX test resize_downsample_scales_nearest: 2x4 -> 1x2, scale 0.6 (ratio 5/3),
        // half_pixel, round_prefer_floor: [[1, 3]].
        let input: [f32; 8] = core::array::from_fn(|i| (i + 1) as f32);
        let mut out = [0.0f32; 2];
        let g = geometry(HalfPixel, 5, 3);
        resize_nearest(
            &input,
            Shape4::new(1, 1, 2, 4),
            &g,
            RoundPreferFloor,
            &mut out,
            Shape4::new(1, 1, 1, 2),
        );
        assert_eq!(out, [1.0, 3.0]);
    }

    #[test]
    fn exact_ties_and_modes() {
        // Half-pixel, ratio 1/2: coordinates -0.25, 0.25, 0.75, 1.25.
        let idx = |mode, x| nearest_source_index(HalfPixel, mode, x, 2, 4, 1, 2);
        assert_eq!([0, 1, 2, 3].map(|x| idx(RoundPreferFloor, x)), [0, 0, 1, 1]);
        assert_eq!([0, 1, 2, 3].map(|x| idx(Floor, x)), [0, 0, 0, 1]);
        assert_eq!([0, 1, 2, 3].map(|x| idx(Ceil, x)), [0, 1, 1, 1]); // 2 clamped to 1
        // Asymmetric ratio 3/2: coordinates 0, 1.5, 3, 4.5 -> exact ties at .5.
        let idx = |mode, x| nearest_source_index(Asymmetric, mode, x, 6, 4, 3, 2);
        assert_eq!([0, 1, 2, 3].map(|x| idx(RoundPreferFloor, x)), [0, 1, 3, 4]);
        assert_eq!([0, 1, 2, 3].map(|x| idx(RoundPreferCeil, x)), [0, 2, 3, 5]);
        // Ratio 1/3 is not exact in binary floating point; integers get it exact:
        // half-pixel x_out = 4 -> (9 * 1 - 3) / 6 = 1 exactly, so floor and ceil agree.
        let idx = |mode, x| nearest_source_index(HalfPixel, mode, x, 3, 9, 1, 3);
        assert_eq!(idx(Floor, 4), 1);
        assert_eq!(idx(Ceil, 4), 1);
        assert_eq!(idx(Ceil, 1), 0);
        // Asymmetric ratio 7/10: x_out = 5 -> 3.5, an exact tie.
        let idx = |mode, x| nearest_source_index(Asymmetric, mode, x, 10, 14, 7, 10);
        assert_eq!(idx(RoundPreferFloor, 5), 3);
        assert_eq!(idx(RoundPreferCeil, 5), 4);
        // Align corners and the length-1 cases.
        assert_eq!(
            nearest_source_index(AlignCorners, RoundPreferFloor, 1, 3, 5, 3, 5),
            0
        ); // 0.5
        assert_eq!(
            nearest_source_index(AlignCorners, RoundPreferCeil, 1, 3, 5, 3, 5),
            1
        );
        assert_eq!(nearest_source_index(AlignCorners, Ceil, 0, 3, 1, 3, 1), 0);
        assert_eq!(
            nearest_source_index(PytorchHalfPixel, Ceil, 0, 3, 1, 3, 1),
            0
        );
        assert_eq!(nearest_source_index(HalfPixel, Ceil, 0, 3, 1, 3, 1), 1);
    }

    #[test]
    fn random_matches_f64_reference() {
        // Denominators are powers of two, so the f64 reference coordinates are exact and
        // the rounding decisions must agree exactly.
        let mut rng = XorShift(0x8888_4444_2222_1111);
        let modes = [HalfPixel, PytorchHalfPixel, Asymmetric];
        let rounding = [RoundPreferFloor, RoundPreferCeil, Floor, Ceil];
        for iter in 0..200 {
            let coord = modes[iter % 3];
            let nearest = rounding[(iter / 3) % 4];
            let (ih, iw) = (1 + rng.below(6), 1 + rng.below(6));
            // Some rows wider than one chunk of source columns.
            let wide = 250 + rng.below(300);
            let (oh, ow) = (
                1 + rng.below(10),
                if iter % 10 == 0 {
                    wide
                } else {
                    1 + rng.below(10)
                },
            );
            let num = [1 + rng.below(8) as u32, 1 + rng.below(8) as u32];
            let den = [1u32 << rng.below(4), 1u32 << rng.below(4)];
            let g = ResizeGeometry {
                coord,
                ratio_num: num,
                ratio_den: den,
            };
            let s = Shape4::new(1 + rng.below(2), 1 + rng.below(2), ih, iw);
            let o = Shape4::new(s.n, s.c, oh, ow);
            let input: Vec<u16> = (0..s.len() as u16).collect();
            let mut out = vec![u16::MAX; o.len()];
            resize_nearest(&input, s, &g, nearest, &mut out, o);
            let src = |x: usize, in_len: usize, out_len: usize, axis: usize| -> usize {
                let r = num[axis] as f64 / den[axis] as f64;
                let v = match coord {
                    PytorchHalfPixel if out_len == 1 => 0.0,
                    HalfPixel | PytorchHalfPixel => (x as f64 + 0.5) * r - 0.5,
                    _ => x as f64 * r,
                };
                let f = libm::floor(v);
                let r = match nearest {
                    Floor => f,
                    Ceil => libm::ceil(v),
                    RoundPreferFloor => {
                        if v - f > 0.5 {
                            f + 1.0
                        } else {
                            f
                        }
                    }
                    RoundPreferCeil => {
                        if v - f >= 0.5 {
                            f + 1.0
                        } else {
                            f
                        }
                    }
                };
                r.clamp(0.0, (in_len - 1) as f64) as usize
            };
            for p in 0..s.n * s.c {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let want = input[(p * ih + src(oy, ih, oh, 0)) * iw + src(ox, iw, ow, 1)];
                        assert_eq!(
                            out[(p * oh + oy) * ow + ox],
                            want,
                            "{g:?} {nearest:?} {s:?} {o:?}"
                        );
                    }
                }
            }
        }
    }
}
