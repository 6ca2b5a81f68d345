//! The direct path of [`super::conv2d_s8_fast`]: one input channel per group
//! (depthwise convolution, with or without a channel multiplier).

use super::super::conv2d_s8::bias_of;
use super::super::{ConvGeometry, ConvS8Args, Window2d};
use super::{DIRECT_CHUNK, DIRECT_LANES, DIRECT_ROW};

/// Output columns per accumulator row of the direct path that fit its padded
/// input row buffer (a multiple of [`DIRECT_LANES`]), or 0 when the kernel
/// span is too wide for the buffer.
pub(super) fn direct_chunk(window: &Window2d) -> usize {
    let span = (window.kernel[1].max(1) - 1) * window.dilation[1] + 1;
    if span > DIRECT_ROW {
        return 0;
    }
    let fit = (DIRECT_ROW - span) / window.stride[1] + 1;
    DIRECT_CHUNK.min(fit / DIRECT_LANES * DIRECT_LANES)
}

/// Direct path for one input channel per group (depthwise convolution).
///
/// For each output row and chunk of up to [`DIRECT_CHUNK`] columns, every
/// contributing input row is copied into a stack buffer padded with the zero
/// point (so padding taps add `w * 0`), then each tap adds
/// `w * (x - zp)` (exact in `i16`: an int8 weight times `|x - zp| <= 255`) to the
/// `i32` accumulators over a whole number of 16-lane groups. Kernels too wide
/// for the buffer take the im2col path ([`super::uses_direct_path`]).
#[inline(always)]
pub(super) fn conv_direct(args: &ConvS8Args, output: &mut [i8]) {
    let ConvS8Args {
        input,
        weights,
        bias,
        geometry:
            ConvGeometry {
                in_shape,
                out_shape,
                ref window,
                groups,
            },
        ref quant,
    } = *args;
    let chunk = direct_chunk(window);
    let cin_g = in_shape.c / groups;
    let [kh, kw] = window.kernel;
    let out_plane = out_shape.h * out_shape.w;
    if cin_g == 0 || kh * kw == 0 {
        // Nothing to sum: every output is its channel's requantized bias.
        for (k, out) in output[..out_shape.len()].chunks_mut(out_plane).enumerate() {
            let oc = k % out_shape.c;
            let acc = [bias_of(bias, oc); DIRECT_CHUNK];
            for part in out.chunks_mut(DIRECT_CHUNK) {
                quant.finish_row(quant.requant_of(oc), &acc[..part.len()], part);
            }
        }
        return;
    }
    debug_assert!(
        cin_g == 1 && chunk > 0,
        "uses_direct_path admits this geometry"
    );
    let [sh, sw] = window.stride;
    let [dh, dw] = window.dilation;
    let [ph, pw] = window.pad_begin;
    let (iw, ow) = (in_shape.w, out_shape.w);
    let cout_g = out_shape.c / groups;
    let taps = kh * kw;
    let span = (kw - 1) * dw + 1;
    let in_plane = in_shape.h * iw;
    // An int8 zero point keeps every w * (x - zp) within i16 (TFLite spec).
    debug_assert!((-128..=127).contains(&quant.input_zero_point));
    let zp16 = quant.input_zero_point as i16;
    let zp8 = quant.input_zero_point.clamp(-128, 127) as i8;
    let mut acc_row = [0i32; DIRECT_CHUNK];
    let mut products_row = [0i16; DIRECT_CHUNK];
    let mut padded_row = [0i8; DIRECT_ROW];

    for n in 0..out_shape.n {
        for oc in 0..out_shape.c {
            let channel = n * in_shape.c + oc / cout_g;
            let plane = &input[channel * in_plane..][..in_plane];
            let filter = &weights[oc * taps..][..taps];
            let requant = quant.requant_of(oc);
            let bias = bias_of(bias, oc);
            let out = &mut output[(n * out_shape.c + oc) * out_plane..][..out_plane];
            for oy in 0..out_shape.h {
                let mut ox0 = 0;
                while ox0 < ow {
                    let width = (ow - ox0).min(chunk);
                    let lanes = width.next_multiple_of(DIRECT_LANES);
                    let acc = &mut acc_row[..lanes];
                    acc.fill(bias);
                    // Input columns ix0 .. ix0 + len feed this chunk (ix0 may be negative).
                    let len = (lanes - 1) * sw + span;
                    let ix0 = (ox0 * sw) as isize - pw as isize;
                    // max/min rather than clamp (whose min > max panic path costs flash).
                    let inside_lo = (-ix0).max(0).min(len as isize) as usize;
                    let inside_hi = (iw as isize - ix0)
                        .max(inside_lo as isize)
                        .min(len as isize) as usize;
                    for ky in 0..kh {
                        let iy = (oy * sh + ky * dh).wrapping_sub(ph);
                        if iy >= in_shape.h {
                            continue;
                        }
                        let row = &plane[iy * iw..][..iw];
                        let padded = &mut padded_row[..len];
                        padded[..inside_lo].fill(zp8);
                        if inside_lo < inside_hi {
                            // (A chunk may lie wholly in the end padding.)
                            let start = (ix0 + inside_lo as isize) as usize;
                            padded[inside_lo..inside_hi]
                                .copy_from_slice(&row[start..start + inside_hi - inside_lo]);
                        }
                        padded[inside_hi..].fill(zp8);
                        for kx in 0..kw {
                            let w = filter[ky * kw + kx] as i16;
                            let products = &mut products_row[..lanes];
                            let src = &padded[kx * dw..];
                            // A pure 16-bit loop (8-lane multiplies), then a widening add.
                            if sw == 1 {
                                for (p, &x) in products.iter_mut().zip(&src[..lanes]) {
                                    *p = w.wrapping_mul((x as i16).wrapping_sub(zp16));
                                }
                            } else {
                                for (p, &x) in products.iter_mut().zip(src.iter().step_by(sw)) {
                                    *p = w.wrapping_mul((x as i16).wrapping_sub(zp16));
                                }
                            }
                            for (a, &p) in acc.iter_mut().zip(products.iter()) {
                                *a = a.wrapping_add(p as i32);
                            }
                        }
                    }
                    quant.finish_row(requant, &acc[..width], &mut out[oy * ow + ox0..][..width]);
                    ox0 += width;
                }
            }
        }
    }
}
