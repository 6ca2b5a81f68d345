//! Register-blocked f32 GEMM micro-kernels for x86-64 AVX2 + FMA and AVX-512,
//! the inner loop of the float convolution's pointwise and im2col paths.
//!
//! It computes `out[m][p] = clamp(bias[m] + sum_k w[m][k] * col[k][p])` with
//! `w` as `[M][k]`, `col` and `out` as `[k][np]` and `[M][np]`: an NCHW output
//! row is a row of `out`, so the sums of a tile are stored as they come out of
//! the registers.
//!
//! A tile is [`MR`] output channels x [`NR`] pixels, twelve `ymm` accumulators:
//! per `k` two loads of `col`, six broadcast weights and twelve `vfmadd`.
//! Per block of [`MR`] channels and chunk of [`KC`] values of `k`, the weights
//! are copied (f16: widened with F16C) once per call into a small buffer that
//! stays in L1 while every pixel block streams its `col` rows past. A block
//! narrower than [`NR`] (the end of a row) is loaded and stored through masks,
//! never past the end. With AVX-512 a tile is [`MR`] x 32 pixels in twelve
//! `zmm` accumulators, tails through `k` masks; it sums in the same order as the
//! AVX2 tile, so the two give the same results.
//!
//! Float sums are not bit-exact across variants (FMA rounds once where the
//! portable loop rounds twice); the float contract is a tolerance, checked
//! against the naive sum in the convolution's tests.

use super::{ClampF32, FloatWeight};

/// Output channels per tile.
#[cfg(target_arch = "x86_64")]
const MR: usize = 6;
/// Output pixels per tile.
#[cfg(target_arch = "x86_64")]
const NR: usize = 16;
/// Output pixels per tile of the AVX-512 kernel (two `zmm` per channel).
#[cfg(target_arch = "x86_64")]
const WIDE_NR: usize = 32;
/// Values of `k` per chunk of copied (widened) weights.
#[cfg(target_arch = "x86_64")]
const KC: usize = 256;

/// The operands of [`gemm_f32_fast`].
#[derive(Clone, Copy)]
pub(crate) struct GemmF32<'a, W> {
    /// Weights `[M][k]`.
    pub w: &'a [W],
    /// Reduction length.
    pub k: usize,
    /// Activations `[k][np]`.
    pub col: &'a [f32],
    /// Columns (output pixels).
    pub np: usize,
    /// Per-row bias (`M` values).
    pub bias: Option<&'a [f32]>,
    /// Clamp of every output.
    pub clamp: ClampF32,
}

/// Writes `out` (`[M][np]`, `M = out.len() / np`) with the AVX-512 or the
/// AVX2 + FMA kernel and returns true, or returns false (writing nothing) where
/// the CPU lacks AVX2, FMA or (for f16 weights) F16C, or on other architectures.
pub(crate) fn gemm_f32_fast<W: FloatWeight>(g: &GemmF32<'_, W>, out: &mut [f32]) -> bool {
    #[cfg(target_arch = "x86_64")]
    let wide = super::cpu::has_avx512();
    #[cfg(not(target_arch = "x86_64"))]
    let wide = false;
    gemm_f32_fast_with(g, out, wide)
}

/// [`gemm_f32_fast`] with the AVX-512 kernel (32-pixel tiles) when `wide` and
/// the CPU has it, else the AVX2 + FMA one (the tests run both).
pub(crate) fn gemm_f32_fast_with<W: FloatWeight>(
    g: &GemmF32<'_, W>,
    out: &mut [f32],
    wide: bool,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if x86::supported::<W>() && g.np > 0 && g.k > 0 {
        let m = out.len() / g.np;
        assert!(g.w.len() >= m * g.k && g.col.len() >= g.k * g.np);
        assert!(g.bias.is_none_or(|b| b.len() >= m));
        let out = &mut out[..m * g.np];
        if wide && super::cpu::has_avx512() {
            // SAFETY: `supported` confirmed AVX2, FMA and F16C where needed,
            // `has_avx512` AVX-512F.
            unsafe { x86::gemm_fma::<W, true>(g, out) };
        } else {
            // SAFETY: `supported` confirmed AVX2, FMA and F16C where needed.
            unsafe { x86::gemm_fma::<W, false>(g, out) };
        }
        return true;
    }
    let _ = (g, out, wide);
    false
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{ClampF32, FloatWeight, GemmF32, KC, MR, NR, WIDE_NR};
    use core::arch::x86_64::{
        __m256, __m256i, _mm256_broadcast_ss, _mm256_cmpgt_epi32, _mm256_fmadd_ps, _mm256_loadu_ps,
        _mm256_maskload_ps, _mm256_maskstore_ps, _mm256_max_ps, _mm256_min_ps, _mm256_set1_epi32,
        _mm256_set1_ps, _mm256_setr_epi32, _mm256_storeu_ps,
    };

    /// True when this CPU runs [`gemm_fma`] for weights of type `W`.
    pub(super) fn supported<W>() -> bool {
        #[cfg(feature = "std")]
        let (avx2, fma) = (
            std::is_x86_feature_detected!("avx2"),
            std::is_x86_feature_detected!("fma"),
        );
        #[cfg(not(feature = "std"))]
        let (avx2, fma) = (cfg!(target_feature = "avx2"), cfg!(target_feature = "fma"));
        avx2 && fma && (size_of::<W>() == 4 || super::super::cpu::has_f16c())
    }

    /// Where a tile's accumulators start and whether they are final.
    #[derive(Clone, Copy)]
    pub(super) struct Phase {
        /// First chunk of `k`: start from the bias, else from `out`.
        first: bool,
        /// Last chunk: clamp before the store.
        last: bool,
    }

    /// One tile's operands, as raw pointers checked by [`gemm_fma`].
    #[derive(Clone, Copy)]
    pub(super) struct Tile {
        /// Row `r` of the weights at `w + r * KC`, `kc` values.
        w: *const f32,
        /// Row `kk` of the activations at `b + kk * ldb`, `n` values.
        b: *const f32,
        ldb: usize,
        kc: usize,
        /// Row `r` of the output at `out + r * ldb`, `n` values.
        out: *mut f32,
        /// Valid pixels (`<= NR`, or [`WIDE_NR`] for the AVX-512 tiles).
        n: usize,
        bias: [f32; MR],
        clamp: ClampF32,
        phase: Phase,
    }

    /// [`super::gemm_f32_fast`]'s loops: tiles of [`NR`] pixels, or of
    /// [`WIDE_NR`] with AVX-512 (`WIDE`).
    ///
    /// # Safety
    /// AVX2, FMA (and F16C for 2-byte weights) available, and AVX-512F when
    /// `WIDE`; `g.w` holds `M * k`, `g.col` `k * np` values and `bias` (if
    /// any) `M`, where `M = out.len() / np`; `np > 0`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn gemm_fma<W: FloatWeight, const WIDE: bool>(
        g: &GemmF32<'_, W>,
        out: &mut [f32],
    ) {
        let step = if WIDE { WIDE_NR } else { NR };
        let (k, np) = (g.k, g.np);
        let m = out.len() / np;
        let out_ptr = out.as_mut_ptr();
        let mut wbuf = [0f32; MR * KC];
        // The tile at channels `m0..m0 + rows`, pixels `p0..`, reading `kc`
        // values of `k` from `kc0`, its weights in `w` (rows `KC` apart).
        let tile = |m0: usize, rows: usize, p0: usize, kc0: usize, kc: usize, w: *const f32| {
            Tile {
                w,
                b: g.col[kc0 * np + p0..].as_ptr(),
                ldb: np,
                kc,
                // In bounds: `m0 < m` and `p0 < np`.
                out: out_ptr.wrapping_add(m0 * np + p0),
                n: step.min(np - p0),
                bias: core::array::from_fn(|r| match g.bias {
                    Some(b) if r < rows => b[m0 + r],
                    _ => 0.0,
                }),
                clamp: g.clamp,
                phase: Phase {
                    first: kc0 == 0,
                    last: kc0 + kc == k,
                },
            }
        };
        // Per channel block and chunk of `k`, every pixel block: the block's
        // weight chunk, copied (f16: widened) into `wbuf` once per call, stays
        // in L1 while the `col` chunk streams past.
        for m0 in (0..m).step_by(MR) {
            let rows = MR.min(m - m0);
            for kc0 in (0..k).step_by(KC) {
                let kc = KC.min(k - kc0);
                for r in 0..rows {
                    widen(&g.w[(m0 + r) * k + kc0..][..kc], &mut wbuf[r * KC..][..kc]);
                }
                let w = wbuf.as_ptr();
                for p0 in (0..np).step_by(step) {
                    let t = tile(m0, rows, p0, kc0, kc, w);
                    // SAFETY: `wbuf` rows `..rows` hold `kc` weights; `col` rows
                    // `kc0..kc0 + kc` and `out` rows `m0..m0 + rows` hold
                    // `n <= np - p0` values from `p0` (the caller's contract);
                    // AVX-512F where `WIDE` (the caller's contract).
                    unsafe {
                        if WIDE {
                            wide::run_tile(t, rows);
                        } else {
                            run_tile(t, rows);
                        }
                    }
                }
            }
        }
    }

    /// `dst = src` as f32, eight at a time (F16C for f16).
    #[inline(always)]
    fn widen<W: FloatWeight>(src: &[W], dst: &mut [f32]) {
        let mut s = src.chunks_exact(8);
        let mut d = dst.chunks_exact_mut(8);
        for (s8, d8) in (&mut s).zip(&mut d) {
            d8.copy_from_slice(&W::widen8(s8.try_into().expect("8 weights")));
        }
        for (x, y) in s.remainder().iter().zip(d.into_remainder()) {
            *y = x.to_f32();
        }
    }

    /// [`tile`] for `rows` (1 to [`MR`]) channels, full or masked pixels.
    ///
    /// # Safety
    /// As [`tile`].
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn run_tile(t: Tile, rows: usize) {
        // SAFETY: forwarded.
        unsafe {
            match (rows, t.n == NR) {
                (6, true) => tile::<6, true>(t),
                (5, true) => tile::<5, true>(t),
                (4, true) => tile::<4, true>(t),
                (3, true) => tile::<3, true>(t),
                (2, true) => tile::<2, true>(t),
                (1, true) => tile::<1, true>(t),
                (6, false) => tile::<6, false>(t),
                (5, false) => tile::<5, false>(t),
                (4, false) => tile::<4, false>(t),
                (3, false) => tile::<3, false>(t),
                (2, false) => tile::<2, false>(t),
                _ => tile::<1, false>(t),
            }
        }
    }

    /// Lane masks of the first `n` of 16 pixels (two halves of eight).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn masks(n: usize) -> [__m256i; 2] {
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let n = n as i32;
        [
            _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lanes),
            _mm256_cmpgt_epi32(_mm256_set1_epi32(n - 8), lanes),
        ]
    }

    /// One `R x NR` tile (`FULL`: all [`NR`] pixels valid, else `t.n` of them
    /// through masks).
    ///
    /// # Safety
    /// AVX2 and FMA available; `t.w + r * KC` readable for `t.kc` values and
    /// `t.b + kk * t.ldb` for `t.n` values (`r < R`, `kk < t.kc`);
    /// `t.out + r * t.ldb` readable and writable for `t.n` values.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile<const R: usize, const FULL: bool>(t: Tile) {
        let mask = masks(t.n);
        // SAFETY: every access is one of those the contract allows: full loads
        // and stores touch `NR` values only when `FULL` (`t.n == NR`), masked
        // ones touch only the first `t.n` lanes.
        unsafe {
            let load = |p: *const f32| -> [__m256; 2] {
                if FULL {
                    [_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))]
                } else {
                    [
                        _mm256_maskload_ps(p, mask[0]),
                        _mm256_maskload_ps(p.add(8), mask[1]),
                    ]
                }
            };
            let mut acc: [[__m256; 2]; R] = core::array::from_fn(|r| {
                if t.phase.first {
                    [_mm256_set1_ps(t.bias[r]); 2]
                } else {
                    load(t.out.add(r * t.ldb))
                }
            });
            let mut b = t.b;
            for kk in 0..t.kc {
                let [b0, b1] = load(b);
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let w = _mm256_broadcast_ss(&*t.w.add(r * KC + kk));
                    acc_r[0] = _mm256_fmadd_ps(w, b0, acc_r[0]);
                    acc_r[1] = _mm256_fmadd_ps(w, b1, acc_r[1]);
                }
                b = b.add(t.ldb);
            }
            let clamp = t.phase.last.then_some(t.clamp);
            for (r, acc_r) in acc.iter().enumerate() {
                let p = t.out.add(r * t.ldb);
                let v = clamp.map_or(*acc_r, |c| acc_r.map(|x| clamp_ps(x, c)));
                if FULL {
                    _mm256_storeu_ps(p, v[0]);
                    _mm256_storeu_ps(p.add(8), v[1]);
                } else {
                    _mm256_maskstore_ps(p, mask[0], v[0]);
                    _mm256_maskstore_ps(p.add(8), mask[1], v[1]);
                }
            }
        }
    }

    /// [`ClampF32::apply`] on eight lanes: NaN passes through (`max`/`min`
    /// return their second operand when either is NaN).
    #[target_feature(enable = "avx")]
    #[inline]
    fn clamp_ps(x: __m256, c: ClampF32) -> __m256 {
        let lo = _mm256_max_ps(_mm256_set1_ps(c.min), x);
        _mm256_min_ps(_mm256_set1_ps(c.max), lo)
    }

    /// The AVX-512 tiles: [`MR`] channels x [`WIDE_NR`] pixels, twelve `zmm`
    /// accumulators, the same FMA order over `k` as the AVX2 tiles (so the same
    /// sums), tails through `k` masks.
    mod wide {
        use super::{ClampF32, KC, Tile, WIDE_NR};
        use core::arch::x86_64::{
            __m512, __mmask16, _mm512_fmadd_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps,
            _mm512_max_ps, _mm512_min_ps, _mm512_set1_ps,
        };

        /// [`tile`] for `rows` (1 to `MR`) channels.
        ///
        /// # Safety
        /// AVX-512F available; otherwise as the AVX2 `run_tile`, with `t.n <= WIDE_NR`.
        #[target_feature(enable = "avx512f")]
        pub(super) unsafe fn run_tile(t: Tile, rows: usize) {
            // SAFETY: forwarded.
            unsafe {
                match rows {
                    6 => tile::<6>(t),
                    5 => tile::<5>(t),
                    4 => tile::<4>(t),
                    3 => tile::<3>(t),
                    2 => tile::<2>(t),
                    _ => tile::<1>(t),
                }
            }
        }

        /// One `R x WIDE_NR` tile, the first `t.n` pixels valid.
        ///
        /// # Safety
        /// As [`run_tile`].
        #[target_feature(enable = "avx512f")]
        unsafe fn tile<const R: usize>(t: Tile) {
            debug_assert!(t.n <= WIDE_NR);
            let valid = if t.n >= WIDE_NR {
                u32::MAX
            } else {
                (1u32 << t.n) - 1
            };
            let mask: [__mmask16; 2] = [valid as u16, (valid >> 16) as u16];
            // SAFETY: masked loads and stores touch only the first `t.n`
            // values of each row, which the contract allows.
            unsafe {
                let load = |p: *const f32| -> [__m512; 2] {
                    [
                        _mm512_maskz_loadu_ps(mask[0], p),
                        _mm512_maskz_loadu_ps(mask[1], p.add(16)),
                    ]
                };
                let mut acc: [[__m512; 2]; R] = core::array::from_fn(|r| {
                    if t.phase.first {
                        [_mm512_set1_ps(t.bias[r]); 2]
                    } else {
                        load(t.out.add(r * t.ldb))
                    }
                });
                let mut b = t.b;
                for kk in 0..t.kc {
                    let [b0, b1] = load(b);
                    for (r, acc_r) in acc.iter_mut().enumerate() {
                        let w = _mm512_set1_ps(*t.w.add(r * KC + kk));
                        acc_r[0] = _mm512_fmadd_ps(w, b0, acc_r[0]);
                        acc_r[1] = _mm512_fmadd_ps(w, b1, acc_r[1]);
                    }
                    b = b.add(t.ldb);
                }
                let clamp = t.phase.last.then_some(t.clamp);
                for (r, acc_r) in acc.iter().enumerate() {
                    let p = t.out.add(r * t.ldb);
                    let v = clamp.map_or(*acc_r, |c| acc_r.map(|x| clamp_ps(x, c)));
                    _mm512_mask_storeu_ps(p, mask[0], v[0]);
                    _mm512_mask_storeu_ps(p.add(16), mask[1], v[1]);
                }
            }
        }

        /// [`ClampF32::apply`] on sixteen lanes, NaN passing through as in the
        /// AVX2 tiles.
        #[target_feature(enable = "avx512f")]
        fn clamp_ps(x: __m512, c: ClampF32) -> __m512 {
            let lo = _mm512_max_ps(_mm512_set1_ps(c.min), x);
            _mm512_min_ps(_mm512_set1_ps(c.max), lo)
        }
    }
}
