//! The im2col unfold and the register-tiled GEMM of [`super::conv2d_f32`]'s
//! pointwise and im2col paths.

pub(crate) use super::super::gemm_f32::GemmF32;
use super::super::gemm_f32::gemm_f32_fast;
use super::super::{ClampF32, FloatWeight, Shape4, Window2d, valid_range};
use super::{TILE_OC, TILE_P};

/// Unfolds the patches of one group (`cin_g` planes) into `col` as `[K][oh*ow]`, row
/// `k = (ic * kh + ky) * kw + kx` (the weight order), zeros where the tap is padding.
pub(super) fn im2col(
    input_g: &[f32],
    in_shape: Shape4,
    window: &Window2d,
    out_shape: Shape4,
    col: &mut [f32],
) {
    let [kh, kw] = window.kernel;
    let [sh, sw] = window.stride;
    let [dh, dw] = window.dilation;
    let [ph, pw] = window.pad_begin;
    let (ih, iw) = (in_shape.h, in_shape.w);
    let (oh, ow) = (out_shape.h, out_shape.w);
    let in_plane = ih * iw;
    for (kk, col_row) in col.chunks_exact_mut(oh * ow).enumerate() {
        let kx = kk % kw;
        let ky = (kk / kw) % kh;
        let ic = kk / (kw * kh);
        let src = &input_g[ic * in_plane..][..in_plane];
        let x_off = (kx * dw) as isize - pw as isize;
        let (ox0, ox1) = valid_range(x_off, sw, iw, ow);
        let y_off = (ky * dh) as isize - ph as isize;
        let (oy0, oy1) = valid_range(y_off, sh, ih, oh);
        for (oy, dst) in col_row.chunks_exact_mut(ow).enumerate() {
            if oy < oy0 || oy >= oy1 || ox0 == ox1 {
                dst.fill(0.0);
                continue;
            }
            let iy = ((oy * sh) as isize + y_off) as usize;
            let src_row = &src[iy * iw..][..iw];
            let ix0 = ((ox0 * sw) as isize + x_off) as usize;
            dst[..ox0].fill(0.0);
            dst[ox1..].fill(0.0);
            let dst = &mut dst[ox0..ox1];
            if sw == 1 {
                dst.copy_from_slice(&src_row[ix0..][..dst.len()]);
            } else {
                for (d, &s) in dst.iter_mut().zip(src_row[ix0..].iter().step_by(sw)) {
                    *d = s;
                }
            }
        }
    }
}

/// `out[m][p] = clamp(bias[m] + sum_k w[m][k] * col[k][p])` for `m < out.len() / np`.
///
/// `w` is `[M][k]`, `col` is `[k][np]`, `out` is `[M][np]`. The AVX-512 or
/// AVX2 + FMA micro-kernel ([`gemm_f32_fast`]) where the CPU has it, else the portable tiles
/// below.
/// `fast: false` runs the portable tiles whatever the CPU.
pub(crate) fn gemm<W: FloatWeight>(g: &GemmF32<'_, W>, out: &mut [f32], fast: bool) {
    if !(fast && gemm_f32_fast(g, out)) {
        gemm_portable(g, out);
    }
}

/// The portable [`gemm`]: register tiles of [`TILE_OC`] x [`TILE_P`] in axpy form.
pub(super) fn gemm_portable<W: FloatWeight>(g: &GemmF32<'_, W>, out: &mut [f32]) {
    let GemmF32 {
        w,
        k,
        col,
        np,
        bias,
        clamp,
    } = *g;
    let m = out.len() / np;
    let m_main = m / TILE_OC * TILE_OC;
    let (out_main, out_tail) = out.split_at_mut(m_main * np);
    let col = &col[..k * np];
    for (blk, out_blk) in out_main.chunks_exact_mut(TILE_OC * np).enumerate() {
        let m0 = blk * TILE_OC;
        let b: [f32; TILE_OC] = core::array::from_fn(|r| bias.map_or(0.0, |b| b[m0 + r]));
        gemm_rows::<W, TILE_OC>(&w[m0 * k..][..TILE_OC * k], k, col, np, b, clamp, out_blk);
    }
    for (i, out_row) in out_tail.chunks_exact_mut(np).enumerate() {
        let m0 = m_main + i;
        let b = [bias.map_or(0.0, |b| b[m0])];
        gemm_rows::<W, 1>(&w[m0 * k..][..k], k, col, np, b, clamp, out_row);
    }
}

/// [`gemm`] for exactly `R` output rows: full tiles of [`TILE_P`] columns, then the rest
/// in tiles of 4 and 1.
#[inline(always)]
fn gemm_rows<W: FloatWeight, const R: usize>(
    w: &[W],
    k: usize,
    col: &[f32],
    np: usize,
    bias: [f32; R],
    clamp: ClampF32,
    out: &mut [f32],
) {
    let w_rows: [&[W]; R] = core::array::from_fn(|r| &w[r * k..][..k]);
    let mut p0 = 0;
    while p0 + TILE_P <= np {
        tile::<W, R, TILE_P>(&w_rows, col, np, p0, bias, clamp, out);
        p0 += TILE_P;
    }
    while p0 + 4 <= np {
        tile::<W, R, 4>(&w_rows, col, np, p0, bias, clamp, out);
        p0 += 4;
    }
    while p0 < np {
        tile::<W, R, 1>(&w_rows, col, np, p0, bias, clamp, out);
        p0 += 1;
    }
}

/// One `R x T` register tile of the GEMM at columns `p0..p0 + T`.
#[inline(always)]
fn tile<W: FloatWeight, const R: usize, const T: usize>(
    w_rows: &[&[W]; R],
    col: &[f32],
    np: usize,
    p0: usize,
    bias: [f32; R],
    clamp: ClampF32,
    out: &mut [f32],
) {
    let mut acc: [[f32; T]; R] = core::array::from_fn(|r| [bias[r]; T]);
    for (kk, col_row) in col.chunks_exact(np).enumerate() {
        let c = &col_row[p0..p0 + T];
        for (acc_r, w_r) in acc.iter_mut().zip(w_rows) {
            let wv = w_r[kk].to_f32();
            for (a, &x) in acc_r.iter_mut().zip(c) {
                *a += wv * x;
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        let dst = &mut out[r * np + p0..][..T];
        for (d, &a) in dst.iter_mut().zip(acc_r) {
            *d = clamp.apply(a);
        }
    }
}
