//! Raw `i8 x i8 -> i32` dot-product blocks: the inner loop of the int8
//! convolution and fully connected kernels on AArch64.
//!
//! `out[i][j] = sum_t a[i][t] * b[j][t]` over `k` values (`k` a multiple of
//! [`GEMM_K_STEP`]), with wrapping `i32` sums. Callers use raw int8 operands and
//! correct for the input zero point afterwards
//! (`sum w * (x - zp) = sum w * x - zp * sum w`, exact modulo 2^32), which keeps
//! the operands 8-bit so that one instruction multiplies 16 pairs.
//!
//! Variants, all bit-exact (integer sums modulo 2^32 do not depend on order):
//! - [`GemmS8::Portable`]: plain Rust; the reference the others are tested against.
//! - [`GemmS8::Neon`]: Armv8.0 Advanced SIMD (`SMULL`/`SMULL2` + `SADALP`),
//!   every AArch64 CPU (Cortex-A53).
//! - [`GemmS8::Dot`]: Armv8.2 `SDOT`, four products per 32-bit lane (Neoverse-N1).
//! - [`GemmS8::I8mm`]: Armv8.6 `SMMLA`, a 2x8 by 8x2 matrix product per
//!   instruction (Neoverse-V1, `max`).
//!
//! [`GemmS8::best`] picks one by run-time CPU feature detection (with `std`;
//! without it, by the compile-time target features).

/// The `k` of [`gemm_s8`] must be a multiple of this.
pub(crate) const GEMM_K_STEP: usize = 16;

/// An implementation of [`gemm_s8`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmS8 {
    /// Portable Rust, any CPU.
    Portable,
    /// Armv8.0 NEON widening multiplies.
    Neon,
    /// Armv8.2 dot product (`SDOT`).
    Dot,
    /// Armv8.6 int8 matrix multiply (`SMMLA`).
    I8mm,
}

impl GemmS8 {
    /// Every variant, slowest first.
    pub const ALL: [GemmS8; 4] = [GemmS8::Portable, GemmS8::Neon, GemmS8::Dot, GemmS8::I8mm];

    /// The variant's name as printed by benchmarks and `tern bench`.
    pub fn name(self) -> &'static str {
        match self {
            GemmS8::Portable => "portable",
            GemmS8::Neon => "neon",
            GemmS8::Dot => "neon-sdot",
            GemmS8::I8mm => "neon-i8mm",
        }
    }

    /// True when this CPU can run the variant.
    pub fn available(self) -> bool {
        match self {
            GemmS8::Portable => true,
            #[cfg(target_arch = "aarch64")]
            GemmS8::Neon => true,
            #[cfg(target_arch = "aarch64")]
            GemmS8::Dot => has_dotprod(),
            #[cfg(target_arch = "aarch64")]
            GemmS8::I8mm => has_i8mm() && has_dotprod(),
            #[cfg(not(target_arch = "aarch64"))]
            _ => false,
        }
    }

    /// The fastest variant this CPU runs.
    #[inline]
    pub fn best() -> GemmS8 {
        if GemmS8::I8mm.available() {
            GemmS8::I8mm
        } else if GemmS8::Dot.available() {
            GemmS8::Dot
        } else if GemmS8::Neon.available() {
            GemmS8::Neon
        } else {
            GemmS8::Portable
        }
    }
}

/// True when `SDOT` may run: detected at run time with `std`, else decided at
/// compile time (`-C target-feature=+dotprod`).
#[cfg(target_arch = "aarch64")]
#[inline]
fn has_dotprod() -> bool {
    #[cfg(feature = "std")]
    {
        std::arch::is_aarch64_feature_detected!("dotprod")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(target_feature = "dotprod")
    }
}

/// True when `SMMLA` may run (see [`has_dotprod`]).
#[cfg(target_arch = "aarch64")]
#[inline]
fn has_i8mm() -> bool {
    #[cfg(feature = "std")]
    {
        std::arch::is_aarch64_feature_detected!("i8mm")
    }
    #[cfg(not(feature = "std"))]
    {
        cfg!(target_feature = "i8mm")
    }
}

/// Operand geometry of one [`gemm_s8`] call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GemmDims {
    /// Rows of `a`.
    pub m: usize,
    /// Rows of `b`.
    pub n: usize,
    /// Values summed per dot product (a multiple of [`GEMM_K_STEP`]).
    pub k: usize,
    /// Distance between rows of `a`.
    pub lda: usize,
    /// Distance between rows of `b`.
    pub ldb: usize,
    /// Distance between rows of `out`.
    pub ldo: usize,
}

/// `out[i * ldo + j] = sum_{t < k} a[i * lda + t] * b[j * ldb + t]` (wrapping)
/// for `i < m`, `j < n`, with the variant `kind` (which must be
/// [`available`](GemmS8::available); an unavailable one runs the portable code).
///
/// Panics (slice bounds) when an operand is too short for `dims`.
#[inline]
pub(crate) fn gemm_s8(kind: GemmS8, a: &[i8], b: &[i8], dims: GemmDims, out: &mut [i32]) {
    let GemmDims {
        m,
        n,
        k,
        lda,
        ldb,
        ldo,
    } = dims;
    debug_assert!(k.is_multiple_of(GEMM_K_STEP));
    if m == 0 || n == 0 {
        return;
    }
    // Bounds checked once here, so the SIMD code may read without checks.
    assert!(k <= lda && k <= ldb && n <= ldo, "gemm_s8: bad strides");
    assert!(a.len() >= (m - 1) * lda + k && b.len() >= (n - 1) * ldb + k);
    assert!(out.len() >= (m - 1) * ldo + n);
    #[cfg(target_arch = "aarch64")]
    if kind != GemmS8::Portable && kind.available() {
        // SAFETY: the asserts above keep every row read inside `a`/`b` and
        // every write inside `out`; `available` confirmed the CPU features.
        unsafe { neon::gemm(kind, a, b, dims, out) };
        return;
    }
    let _ = kind;
    for i in 0..m {
        let a_row = &a[i * lda..][..k];
        for j in 0..n {
            out[i * ldo + j] = dot_s8_portable(a_row, &b[j * ldb..][..k]);
        }
    }
}

/// Wrapping `sum a[t] * b[t]` over the common length.
#[inline]
pub(crate) fn dot_s8_portable(a: &[i8], b: &[i8]) -> i32 {
    a.iter()
        .zip(b)
        .fold(0i32, |s, (&x, &y)| s.wrapping_add(x as i32 * y as i32))
}

#[cfg(target_arch = "aarch64")]
mod neon {
    use super::{GemmDims, GemmS8};
    use core::arch::aarch64::*;
    use core::arch::asm;

    /// Dispatches to the variant's micro-kernels. `kind` is not `Portable`.
    ///
    /// # Safety
    /// Rows `i < m` of `a` (`lda` apart), `j < n` of `b` (`ldb` apart) must hold
    /// `k` readable values, rows of `out` `n` writable ones, and the CPU must
    /// support `kind`.
    pub(super) unsafe fn gemm(kind: GemmS8, a: &[i8], b: &[i8], d: GemmDims, out: &mut [i32]) {
        let (a, b, o) = (a.as_ptr(), b.as_ptr(), out.as_mut_ptr());
        // SAFETY: forwarded from the caller.
        unsafe {
            match kind {
                GemmS8::I8mm => gemm_i8mm(a, b, d, o),
                GemmS8::Dot => gemm_dot(a, b, d, o, 0),
                _ => gemm_neon(a, b, d, o, 0),
            }
        }
    }

    /// Armv8.0: one `(i, j)` at a time, 16 products per step via
    /// `SMULL`/`SMULL2` (exact `i16` products) and `SADALP` (pairwise into `i32`).
    ///
    /// # Safety
    /// As [`gemm`]; rows `i0..m` are computed.
    unsafe fn gemm_neon(a: *const i8, b: *const i8, d: GemmDims, out: *mut i32, i0: usize) {
        for i in i0..d.m {
            for j in 0..d.n {
                // SAFETY: rows i and j hold k values; out row i holds n (caller).
                unsafe {
                    let (pa, pb) = (a.add(i * d.lda), b.add(j * d.ldb));
                    let mut acc = vdupq_n_s32(0);
                    let mut t = 0;
                    while t < d.k {
                        let va = vld1q_s8(pa.add(t));
                        let vb = vld1q_s8(pb.add(t));
                        acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(va), vget_low_s8(vb)));
                        acc = vpadalq_s16(acc, vmull_high_s8(va, vb));
                        t += 16;
                    }
                    *out.add(i * d.ldo + j) = vaddvq_s32(acc);
                }
            }
        }
    }

    /// `acc += SDOT(x, y)`: four 4-way `i8` dot products into the `i32` lanes.
    #[target_feature(enable = "dotprod")]
    #[inline]
    fn sdot(acc: int32x4_t, x: int8x16_t, y: int8x16_t) -> int32x4_t {
        let mut acc = acc;
        // SAFETY: register-only instruction; `dotprod` is enabled for this fn.
        unsafe {
            asm!("sdot {acc:v}.4s, {x:v}.16b, {y:v}.16b",
                 acc = inout(vreg) acc, x = in(vreg) x, y = in(vreg) y,
                 options(pure, nomem, nostack));
        }
        acc
    }

    /// Armv8.2: four rows of `a` per pass share each 16-value load of a `b` row.
    ///
    /// # Safety
    /// As [`gemm`]; rows `i0..m` are computed; the CPU has `dotprod`.
    #[target_feature(enable = "dotprod")]
    unsafe fn gemm_dot(a: *const i8, b: *const i8, d: GemmDims, out: *mut i32, i0: usize) {
        let mut i = i0;
        while i + 4 <= d.m {
            for j in 0..d.n {
                // SAFETY: rows i..i+4 of a and j of b exist (caller).
                unsafe { dot_rows::<4>(a, b, d, out, i, j) };
            }
            i += 4;
        }
        for i in i..d.m {
            for j in 0..d.n {
                // SAFETY: row i of a and j of b exist (caller).
                unsafe { dot_rows::<1>(a, b, d, out, i, j) };
            }
        }
    }

    /// `out[i + r][j]` for `r < R` with `SDOT`, one load of `b` row `j` per step.
    ///
    /// # Safety
    /// Rows `i..i + R` of `a` and row `j` of `b` hold `k` readable values; the
    /// `out` rows hold column `j`; the CPU has `dotprod`.
    #[target_feature(enable = "dotprod")]
    #[inline]
    unsafe fn dot_rows<const R: usize>(
        a: *const i8,
        b: *const i8,
        d: GemmDims,
        out: *mut i32,
        i: usize,
        j: usize,
    ) {
        // SAFETY: forwarded from the caller.
        unsafe {
            let pb = b.add(j * d.ldb);
            let pa: [*const i8; R] = core::array::from_fn(|r| a.add((i + r) * d.lda));
            let mut acc = [vdupq_n_s32(0); R];
            let mut t = 0;
            while t < d.k {
                let vb = vld1q_s8(pb.add(t));
                for r in 0..R {
                    acc[r] = sdot(acc[r], vld1q_s8(pa[r].add(t)), vb);
                }
                t += 16;
            }
            for (r, acc) in acc.iter().enumerate() {
                *out.add((i + r) * d.ldo + j) = vaddvq_s32(*acc);
            }
        }
    }

    /// `acc += SMMLA(x, y)`: `x` holds two rows of 8 (`x0 | x1`), `y` two rows of 8
    /// (`y0 | y1`); the lanes get `[x0.y0, x0.y1, x1.y0, x1.y1]`.
    #[target_feature(enable = "i8mm")]
    #[inline]
    fn smmla(acc: int32x4_t, x: int8x16_t, y: int8x16_t) -> int32x4_t {
        let mut acc = acc;
        // SAFETY: register-only instruction; `i8mm` is enabled for this fn.
        unsafe {
            asm!("smmla {acc:v}.4s, {x:v}.16b, {y:v}.16b",
                 acc = inout(vreg) acc, x = in(vreg) x, y = in(vreg) y,
                 options(pure, nomem, nostack));
        }
        acc
    }

    /// The first 8 values of `p` and of `q` as one vector (`zip1` of 64-bit lanes),
    /// and the second 8 of each (`zip2`).
    #[target_feature(enable = "neon")]
    #[inline]
    fn pair_halves(p: int8x16_t, q: int8x16_t) -> (int8x16_t, int8x16_t) {
        let (p, q) = (vreinterpretq_s64_s8(p), vreinterpretq_s64_s8(q));
        (
            vreinterpretq_s8_s64(vzip1q_s64(p, q)),
            vreinterpretq_s8_s64(vzip2q_s64(p, q)),
        )
    }

    /// Armv8.6: 2x2 blocks of `(i, j)`, two `SMMLA` per 16 values of `k`; odd
    /// rows and columns go through [`gemm_dot`].
    ///
    /// # Safety
    /// As [`gemm`]; the CPU has `i8mm` and `dotprod`.
    #[target_feature(enable = "i8mm,dotprod")]
    unsafe fn gemm_i8mm(a: *const i8, b: *const i8, d: GemmDims, out: *mut i32) {
        let (m2, n2) = (d.m / 2 * 2, d.n / 2 * 2);
        for i in (0..m2).step_by(2) {
            for j in (0..n2).step_by(2) {
                // SAFETY: rows i, i+1 of a and j, j+1 of b hold k values; out rows
                // i, i+1 hold n values (caller).
                unsafe {
                    let (a0, a1) = (a.add(i * d.lda), a.add((i + 1) * d.lda));
                    let (b0, b1) = (b.add(j * d.ldb), b.add((j + 1) * d.ldb));
                    let mut acc = vdupq_n_s32(0);
                    let mut t = 0;
                    while t < d.k {
                        let (alo, ahi) = pair_halves(vld1q_s8(a0.add(t)), vld1q_s8(a1.add(t)));
                        let (blo, bhi) = pair_halves(vld1q_s8(b0.add(t)), vld1q_s8(b1.add(t)));
                        acc = smmla(acc, alo, blo);
                        acc = smmla(acc, ahi, bhi);
                        t += 16;
                    }
                    let mut block = [0i32; 4];
                    vst1q_s32(block.as_mut_ptr(), acc);
                    *out.add(i * d.ldo + j) = block[0];
                    *out.add(i * d.ldo + j + 1) = block[1];
                    *out.add((i + 1) * d.ldo + j) = block[2];
                    *out.add((i + 1) * d.ldo + j + 1) = block[3];
                }
            }
            if n2 < d.n {
                // The odd last column of rows i, i+1.
                let col = GemmDims { m: 2, n: 1, ..d };
                // SAFETY: the sub-problem lies inside the caller's operands.
                unsafe {
                    gemm_dot(
                        a.add(i * d.lda),
                        b.add(n2 * d.ldb),
                        col,
                        out.add(i * d.ldo + n2),
                        0,
                    )
                };
            }
        }
        // The odd last row.
        // SAFETY: forwarded from the caller.
        unsafe { gemm_dot(a, b, d, out, m2) };
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::conv2d_s8::testing::XorShift;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn naive(a: &[i8], b: &[i8], d: GemmDims) -> Vec<i32> {
        let mut out = vec![0i32; d.m * d.ldo];
        for i in 0..d.m {
            for j in 0..d.n {
                let mut s = 0i64;
                for t in 0..d.k {
                    s += a[i * d.lda + t] as i64 * b[j * d.ldb + t] as i64;
                }
                out[i * d.ldo + j] = s as i32;
            }
        }
        out
    }

    /// Every variant this CPU runs agrees with the naive sum, across shapes
    /// with odd `m`/`n` (the SMMLA edges), strides wider than `k`, and
    /// extreme values (`-128 * -128` in every lane).
    #[test]
    fn variants_match_naive() {
        let mut rng = XorShift(0x6E33);
        let mut ran = [0usize; 4];
        for case in 0..300 {
            let m = rng.urange(1, 9);
            let n = rng.urange(1, 11);
            let k = GEMM_K_STEP * rng.urange(0, 12);
            let (lda, ldb, ldo) = (
                k + rng.urange(0, 5),
                k + rng.urange(0, 3),
                n + rng.urange(0, 2),
            );
            let d = GemmDims {
                m,
                n,
                k,
                lda,
                ldb,
                ldo,
            };
            let extreme = case % 9 == 0;
            let mut value = || {
                if extreme {
                    -128
                } else {
                    rng.range(-128, 127) as i8
                }
            };
            let a: Vec<i8> = (0..m * lda).map(|_| value()).collect();
            let b: Vec<i8> = (0..n * ldb).map(|_| value()).collect();
            let want = naive(&a, &b, d);
            for (v, kind) in GemmS8::ALL.into_iter().enumerate() {
                if !kind.available() {
                    continue;
                }
                ran[v] += 1;
                let mut got = vec![0i32; m * ldo];
                gemm_s8(kind, &a, &b, d, &mut got);
                for i in 0..m {
                    assert_eq!(
                        got[i * ldo..][..n],
                        want[i * ldo..][..n],
                        "{} case {case}: m {m} n {n} k {k} row {i}",
                        kind.name()
                    );
                }
            }
        }
        std::eprintln!(
            "gemm_s8 variants run: {:?}, best on this CPU: {}",
            GemmS8::ALL
                .iter()
                .zip(ran)
                .map(|(v, r)| (v.name(), r))
                .collect::<Vec<_>>(),
            GemmS8::best().name()
        );
        assert_eq!(ran[0], 300);
        #[cfg(target_arch = "aarch64")]
        assert_eq!(ran[1], 300, "NEON is part of every AArch64 CPU");
    }

    /// On AArch64 the detected features match the CPU model QEMU emulates
    /// (`TERN_EXPECT_GEMM=neon|neon-sdot|neon-i8mm`, set by `cargo xtask targets`).
    #[test]
    fn best_variant_is_the_expected_one() {
        match std::env::var("TERN_EXPECT_GEMM") {
            Ok(want) => assert_eq!(GemmS8::best().name(), want),
            Err(_) => {
                #[cfg(not(target_arch = "aarch64"))]
                assert_eq!(GemmS8::best(), GemmS8::Portable);
            }
        }
    }
}
