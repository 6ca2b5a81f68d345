//! Int8 weights times `i16` columns in the shape of the Cortex-M DSP extension:
//! `SXTB16` widens the weights in registers and `SMLAD` multiplies two pairs.
//!
//! Weight rows are read in place, four `i8` values per 32-bit load (any
//! alignment; Cortex-M4/M33 load unaligned words). `SXTB16` splits the word
//! `[w0, w1, w2, w3]` into the halfword pairs `(w0, w2)` and, rotated by 8 bits,
//! `(w1, w3)`. The columns (activations minus their zero point, see
//! [`widen_columns`]) are therefore stored with each group of four taps
//! permuted the same way, `[x0, x2, x1, x3]` (tap `k` at [`slot`]`(k)`), so
//! that two `SMLAD`s give `w0 x0 + w2 x2 + w1 x1 + w3 x3` with no shuffle.
//! Columns are zero-padded to a multiple of four taps; a row whose length is not
//! a multiple of four has its last word assembled from the bytes it has.
//!
//! The micro-kernel computes blocks of two weight rows by two columns: per four
//! taps, two weight loads, four `SXTB16`, four column loads and eight `SMLAD`
//! for sixteen multiply-adds. Sums wrap in `i32` like the reference kernels, so
//! every order and every target gives the same bits. Off Cortex-M the same code
//! runs with portable stand-ins for the two instructions, which is how the
//! host's unit tests check the Cortex-M arithmetic.

/// Taps per group: one 32-bit weight load.
pub(crate) const GROUP: usize = 4;

/// Position of tap `k` in a column: taps 1 and 2 of each group swap places.
#[inline(always)]
pub(crate) fn slot(k: usize) -> usize {
    const SWAP: [usize; GROUP] = [0, 2, 1, 3];
    (k & !(GROUP - 1)) | SWAP[k % GROUP]
}

/// `dst[slot(k)] = src[k] - zp` for each tap `k`, then zeros up to the next
/// multiple of [`GROUP`] (`dst` must hold `round_up(src.len(), 4)` values).
#[inline(always)]
pub(crate) fn widen_columns(src: &[i8], zp: i32, dst: &mut [i16]) {
    let len = src.len().next_multiple_of(GROUP);
    let dst = &mut dst[..len];
    let (whole, rest) = src.as_chunks::<GROUP>();
    let (groups, tail) = dst.as_chunks_mut::<GROUP>();
    for (d, s) in groups.iter_mut().zip(whole) {
        let x = |i: usize| (s[i] as i32 - zp) as i16;
        *d = [x(0), x(2), x(1), x(3)];
    }
    debug_assert!(tail.is_empty());
    if !rest.is_empty() {
        let last = groups.len() - 1;
        groups[last] = [0; GROUP];
        for (k, &s) in rest.iter().enumerate() {
            groups[last][slot(k)] = (s as i32 - zp) as i16;
        }
    }
}

/// Columns per panel of the conv layout (see [`SmladGemm`]).
pub(crate) const PANEL: usize = 4;

/// Index of column `j`'s group 0 in a layout of panels of `panel` columns of
/// `ldc` values: each group of four taps of the panel's columns side by side.
#[inline(always)]
pub(crate) fn column_start(j: usize, panel: usize, ldc: usize) -> usize {
    (j / panel) * panel * ldc + (j % panel) * GROUP
}

/// Index of tap `k` relative to its column's [`column_start`].
#[inline(always)]
pub(crate) fn tap_offset(k: usize, panel: usize) -> usize {
    (k / GROUP) * GROUP * panel + slot(k) % GROUP
}

/// One call's operands: `rows` weight rows of `k` taps, `lda` bytes apart, and
/// `count` columns of [`widen_columns`] values (`ldc >= round_up(k, 4)` each),
/// stored in panels of `panel` columns ([`PANEL`], or 1 for plain columns):
/// group `g` of column `j` starts at [`column_start`]`(j) + 4 * panel * g`. A
/// last panel with fewer than `panel` columns still spans a whole panel (its
/// missing columns are computed from whatever the memory holds).
#[derive(Clone, Copy)]
pub(crate) struct SmladGemm<'a> {
    pub weights: &'a [i8],
    pub lda: usize,
    pub rows: usize,
    pub k: usize,
    pub cols: &'a [i16],
    pub ldc: usize,
    pub count: usize,
    pub panel: usize,
}

impl SmladGemm<'_> {
    /// `out[i * ldo + j] = init[i] + sum_k w_i[k] * x_j[k]` (wrapping) for every
    /// row `i` and column `j`. With panels of [`PANEL`] columns, each row of
    /// `out` is written in whole panels: up to `round_up(count, 4)` values
    /// (junk past `count`), which must fit.
    pub(crate) fn run(&self, init: &[i32], out: &mut [i32], ldo: usize) {
        let groups = self.k.div_ceil(GROUP);
        if self.panel == PANEL {
            let panels = self.count.div_ceil(PANEL);
            let cols = &self.cols[..panels * PANEL * self.ldc];
            for i in 0..self.rows {
                let w = &self.weights[i * self.lda..];
                // Whole words up to the last group where the row's slice
                // extends that far (its bytes past `k` meet the columns'
                // zeros), else up to the last whole group and the rest below.
                let whole = if w.len() >= groups * GROUP {
                    groups
                } else {
                    self.k / GROUP
                };
                let out = &mut out[i * ldo..][..panels * PANEL];
                row_panels(&w[..whole * GROUP], cols, self.ldc, init[i], out);
                // The last partial group, value by value.
                for (t, &wt) in w.iter().enumerate().take(self.k).skip(whole * GROUP) {
                    let (wt, at) = (wt as i32, tap_offset(t, PANEL));
                    for (j, o) in out.iter_mut().enumerate() {
                        let x = cols[column_start(j, PANEL, self.ldc) + at];
                        *o = o.wrapping_add(wt * x as i32);
                    }
                }
            }
            return;
        }
        debug_assert_eq!(self.panel, 1);
        let row = |i: usize| &self.weights[i * self.lda..][..self.k];
        for j in 0..self.count {
            let x = &self.cols[j * self.ldc..][..groups * GROUP];
            let mut i = 0;
            while i + 2 <= self.rows {
                let acc = block::<2, 1>([row(i), row(i + 1)], x, [[init[i]], [init[i + 1]]]);
                out[i * ldo + j] = acc[0][0];
                out[(i + 1) * ldo + j] = acc[1][0];
                i += 2;
            }
            if i < self.rows {
                out[i * ldo + j] = block::<1, 1>([row(i)], x, [[init[i]]])[0][0];
            }
        }
    }
}

/// One weight row `w` (whole groups) by `out.len() / 4` panels of `x` (each
/// `4 * ldc` values, of which the first `w.len()` groups are read), from
/// `start`: four sums per panel.
#[inline(always)]
fn row_panels(w: &[i8], x: &[i16], ldc: usize, start: i32, out: &mut [i32]) {
    if w.is_empty() {
        out.fill(start);
        return;
    }
    #[cfg(all(feature = "arm-dsp", target_arch = "arm"))]
    asm_row_panels(w, x, ldc, start, out);
    #[cfg(not(all(feature = "arm-dsp", target_arch = "arm")))]
    for (o, p) in out.chunks_exact_mut(PANEL).zip(x.chunks_exact(PANEL * ldc)) {
        o.copy_from_slice(&block::<1, PANEL>([w], p, [[start; PANEL]])[0]);
    }
}

/// [`row_panels`] written out for Cortex-M: per group of four taps one weight
/// load, two `SXTB16`, four `LDRD` and eight `SMLAD` (17 instructions with the
/// loop for 16 multiply-adds; the compiled generic loop
/// spills), and 17 instructions per panel around them. Twelve register
/// operands: every general register Thumb-2 code may hand to `asm!` (a target
/// that reserves r9 cannot build it).
#[cfg(all(feature = "arm-dsp", target_arch = "arm"))]
#[inline(always)]
fn asm_row_panels(w: &[i8], x: &[i16], ldc: usize, start: i32, out: &mut [i32]) {
    /// The loop's state in memory (it has no register left).
    #[repr(C)]
    struct Walk {
        w: *const i8,
        groups: usize,
        panels: usize,
        out: *mut i32,
        start: i32,
        /// Bytes from the end of a panel's groups to the next panel.
        skip: usize,
    }
    // The asm reads the fields at these byte offsets.
    const _: () = assert!(
        core::mem::offset_of!(Walk, groups) == 4
            && core::mem::offset_of!(Walk, panels) == 8
            && core::mem::offset_of!(Walk, out) == 12
            && core::mem::offset_of!(Walk, start) == 16
            && core::mem::offset_of!(Walk, skip) == 20
    );
    let groups = w.len() / GROUP;
    let panels = out.len() / PANEL;
    assert!(
        groups > 0
            && panels > 0
            && ldc >= groups * GROUP
            && x.len() >= panels * PANEL * ldc
            && x.as_ptr().align_offset(4) == 0
            && ldc.is_multiple_of(2)
    );
    let mut walk = Walk {
        w: w.as_ptr(),
        groups,
        panels,
        out: out.as_mut_ptr(),
        start,
        skip: (ldc - groups * GROUP) * PANEL * 2,
    };
    // SAFETY: for each of `panels >= 1` panels the inner loop runs `groups >= 1`
    // times, reading `4 * groups` bytes from `w` (single-word loads, which
    // Cortex-M4/M33 allow unaligned) and `32 * groups` bytes of the panel's
    // `8 * ldc` in `x` (in bounds, and word-aligned for `LDRD`: `x` is and each
    // panel starts a multiple of 16 bytes on, checked above); then it stores
    // four words to `out` (`out.len() == 4 * panels` words; `STRD` needs only
    // word alignment, which `i32` has) and moves `x` to the next panel. It
    // writes `walk` (through its pointer), its register operands and the
    // flags, nothing else.
    unsafe {
        core::arch::asm!(
            "1:",
            "ldr {w}, [{s}, #0]",
            "ldr {n}, [{s}, #4]",
            "ldr {a0}, [{s}, #16]",
            "mov {a1}, {a0}",
            "mov {a2}, {a0}",
            "mov {a3}, {a0}",
            "2:",
            "ldr {t}, [{w}], #4",
            "ldrd {xa}, {xb}, [{x}], #8",
            "sxtb16 {lo}, {t}",
            "sxtb16 {t}, {t}, ror #8",
            "smlad {a0}, {lo}, {xa}, {a0}",
            "smlad {a0}, {t}, {xb}, {a0}",
            "ldrd {xa}, {xb}, [{x}], #8",
            "smlad {a1}, {lo}, {xa}, {a1}",
            "smlad {a1}, {t}, {xb}, {a1}",
            "ldrd {xa}, {xb}, [{x}], #8",
            "smlad {a2}, {lo}, {xa}, {a2}",
            "smlad {a2}, {t}, {xb}, {a2}",
            "ldrd {xa}, {xb}, [{x}], #8",
            "smlad {a3}, {lo}, {xa}, {a3}",
            "smlad {a3}, {t}, {xb}, {a3}",
            "subs {n}, {n}, #1",
            "bne 2b",
            "ldr {t}, [{s}, #12]",
            "strd {a0}, {a1}, [{t}], #8",
            "strd {a2}, {a3}, [{t}], #8",
            "str {t}, [{s}, #12]",
            "ldr {t}, [{s}, #20]",
            "add {x}, {x}, {t}",
            "ldr {t}, [{s}, #8]",
            "subs {t}, {t}, #1",
            "str {t}, [{s}, #8]",
            "bne 1b",
            s = in(reg) &mut walk as *mut Walk,
            x = inout(reg) x.as_ptr() => _,
            w = out(reg) _,
            n = out(reg) _,
            a0 = out(reg) _,
            a1 = out(reg) _,
            a2 = out(reg) _,
            a3 = out(reg) _,
            t = out(reg) _,
            lo = out(reg) _,
            xa = out(reg) _,
            xb = out(reg) _,
            options(nostack),
        );
    }
}

/// The `M x N` micro-kernel: `start[i][j] + sum_k w[i][k] * x_j[k]` for the `N`
/// columns of one panel `x` (`ceil(k / 4)` groups of `4 N` values); every
/// `w[i]` holds exactly `k` taps.
#[inline(always)]
fn block<const M: usize, const N: usize>(
    w: [&[i8]; M],
    x: &[i16],
    start: [[i32; N]; M],
) -> [[i32; N]; M] {
    let k = w[0].len();
    let groups = k / GROUP;
    let wc: [&[[i8; GROUP]]; M] = w.map(|w| &w.as_chunks::<GROUP>().0[..groups]);
    let (xc, _) = x.as_chunks::<GROUP>();
    let xc = &xc[..k.div_ceil(GROUP) * N];
    let mut acc = start;
    let mut step = |words: [u32; M], g: usize| {
        let pairs: [[u32; 2]; N] = core::array::from_fn(|j| column_pairs(&xc[g * N + j]));
        for i in 0..M {
            let (lo, hi) = (sxtb16(words[i]), sxtb16_ror8(words[i]));
            for j in 0..N {
                acc[i][j] = smlad(lo, pairs[j][0], acc[i][j]);
                acc[i][j] = smlad(hi, pairs[j][1], acc[i][j]);
            }
        }
    };
    #[allow(clippy::needless_range_loop)] // `g` indexes every row of `wc`
    for g in 0..groups {
        step(
            core::array::from_fn(|i| u32::from_le_bytes(wc[i][g].map(|b| b as u8))),
            g,
        );
    }
    if !k.is_multiple_of(GROUP) {
        let words = core::array::from_fn(|i| {
            let mut bytes = [0u8; GROUP];
            for (b, &v) in bytes.iter_mut().zip(&w[i][groups * GROUP..]) {
                *b = v as u8;
            }
            u32::from_le_bytes(bytes)
        });
        step(words, groups);
    }
    acc
}

/// A column group `[x0, x2, x1, x3]` as the words `(x0, x2)` and `(x1, x3)`.
#[inline(always)]
fn column_pairs(g: &[i16; GROUP]) -> [u32; 2] {
    let word = |a: i16, b: i16| (a as u16 as u32) | ((b as u16 as u32) << 16);
    [word(g[0], g[1]), word(g[2], g[3])]
}

/// `SXTB16`: bytes 0 and 2 of `x`, sign-extended into the two halfwords.
#[inline(always)]
fn sxtb16(x: u32) -> u32 {
    #[cfg(all(feature = "arm-dsp", target_arch = "arm"))]
    {
        let out: u32;
        // SAFETY: register-only DSP instruction; the `arm-dsp` feature promises
        // a CPU with the DSP extension.
        unsafe {
            core::arch::asm!("sxtb16 {o}, {x}", o = lateout(reg) out, x = in(reg) x,
                options(pure, nomem, nostack, preserves_flags));
        }
        out
    }
    #[cfg(not(all(feature = "arm-dsp", target_arch = "arm")))]
    {
        let half = |b: u32| (b as u8 as i8 as i16 as u16) as u32;
        half(x) | (half(x >> 16) << 16)
    }
}

/// `SXTB16` of `x` rotated right by 8: bytes 1 and 3, sign-extended.
#[inline(always)]
fn sxtb16_ror8(x: u32) -> u32 {
    #[cfg(all(feature = "arm-dsp", target_arch = "arm"))]
    {
        let out: u32;
        // SAFETY: register-only DSP instruction; the `arm-dsp` feature promises
        // a CPU with the DSP extension.
        unsafe {
            core::arch::asm!("sxtb16 {o}, {x}, ror #8", o = lateout(reg) out, x = in(reg) x,
                options(pure, nomem, nostack, preserves_flags));
        }
        out
    }
    #[cfg(not(all(feature = "arm-dsp", target_arch = "arm")))]
    {
        sxtb16(x.rotate_right(8))
    }
}

/// `SMLAD`: `acc + lo(x) * lo(y) + hi(x) * hi(y)` (signed halves, wrapping;
/// an overflow sets the Q flag, so the asm does not preserve the flags).
#[inline(always)]
fn smlad(x: u32, y: u32, acc: i32) -> i32 {
    #[cfg(all(feature = "arm-dsp", target_arch = "arm"))]
    {
        let out: i32;
        // SAFETY: register-only DSP instruction; the `arm-dsp` feature promises
        // a CPU with the DSP extension.
        unsafe {
            core::arch::asm!("smlad {o}, {x}, {y}, {a}", o = lateout(reg) out, x = in(reg) x,
                y = in(reg) y, a = in(reg) acc, options(pure, nomem, nostack));
        }
        out
    }
    #[cfg(not(all(feature = "arm-dsp", target_arch = "arm")))]
    {
        let lo = (x as i16 as i32) * (y as i16 as i32);
        let hi = ((x >> 16) as i16 as i32) * ((y >> 16) as i16 as i32);
        acc.wrapping_add(lo).wrapping_add(hi)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::conv2d_s8::testing::XorShift;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// Every block shape, panel width and tail length equals the plain wrapping
    /// sum; the extremes (-128 weights, -255 and 255 columns) included.
    #[test]
    fn equals_naive_sums() {
        let mut rng = XorShift(0x5AD);
        for case in 0..600 {
            let k = if case < 20 { case } else { rng.urange(1, 300) };
            let panel = if case % 2 == 0 { PANEL } else { 1 };
            let rows = rng.urange(0, 7);
            let count = rng.urange(0, 9);
            let lda = k + rng.urange(0, 3);
            let ldc = k.next_multiple_of(GROUP) + GROUP * rng.urange(0, 2);
            let zp = if case % 5 == 0 {
                127
            } else {
                rng.range(-128, 127)
            };
            let weights = if case % 7 == 0 {
                vec![-128i8; rows * lda + 3]
            } else {
                rng.i8s(rows * lda + 3, -128, 127)
            };
            let inputs = rng.i8s(count * k, -128, 127);
            // Unused lanes of a last partial panel hold junk on purpose.
            let mut cols = vec![-999i16; count.next_multiple_of(panel) * ldc];
            for j in 0..count {
                let x = &inputs[j * k..][..k];
                if panel == 1 {
                    widen_columns(x, zp, &mut cols[j * ldc..]);
                    continue;
                }
                for t in 0..ldc {
                    let value = x.get(t).map_or(0, |&v| (v as i32 - zp) as i16);
                    cols[column_start(j, panel, ldc) + tap_offset(t, panel)] = value;
                }
            }
            let init: Vec<i32> = (0..rows).map(|_| rng.range(-100_000, 100_000)).collect();
            // Rows are written in whole panels; one sentinel after them.
            let ldo = count.next_multiple_of(panel) + 1;
            let mut out = vec![7i32; rows * ldo];
            let gemm = SmladGemm {
                weights: &weights,
                lda,
                rows,
                k,
                cols: &cols,
                ldc,
                count,
                panel,
            };
            gemm.run(&init, &mut out, ldo);
            for i in 0..rows {
                for j in 0..count {
                    let want = (0..k).fold(init[i], |s, t| {
                        s.wrapping_add(
                            weights[i * lda + t] as i32 * (inputs[j * k + t] as i32 - zp),
                        )
                    });
                    let got = out[i * ldo + j];
                    assert_eq!(
                        got, want,
                        "case {case}: row {i} column {j}, k {k}, panel {panel}"
                    );
                }
                let sentinel = out[i * ldo + ldo - 1];
                assert_eq!(sentinel, 7, "case {case}: wrote past the panels");
            }
        }
    }

    #[test]
    fn instructions_stand_ins() {
        assert_eq!(sxtb16(0x80_7f_ff_01), 0x007f_0001);
        assert_eq!(sxtb16_ror8(0x80_7f_ff_01), 0xff80_ffff);
        assert_eq!(smlad(0x8000_8000, 0x8000_8000, 0), i32::MIN);
        assert_eq!(smlad(0x0002_0003, 0xffff_0005, 10), 10 + 15 - 2);
    }
}
