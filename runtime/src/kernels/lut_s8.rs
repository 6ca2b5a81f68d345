//! Int8 elementwise functions through a 256-entry lookup table.
//!
//! Every int8 unary activation (Relu, Sigmoid, Tanh, HardSwish, LeakyRelu,
//! Gelu...) runs as one table lookup per element: the converter evaluates the
//! real function once per possible input value with [`build_lut_s8`] (on the
//! host, in floating point) and stores the table in the model, so the kernel
//! is exact and identical on every target.

/// `output[i] = table[input[i] as i32 + 128]`.
///
/// `table` holds 256 entries, indexed by the input value offset by 128;
/// `input` and `output` have the same length. With a shorter table (API misuse)
/// the output is left untouched.
pub fn lut_s8(input: &[i8], table: &[i8], output: &mut [i8]) {
    debug_assert_eq!(table.len(), 256);
    debug_assert_eq!(input.len(), output.len());
    let Some(table) = table.first_chunk::<256>() else {
        return;
    };
    let len = input.len().min(output.len());
    #[cfg(target_arch = "x86_64")]
    if super::cpu::has_avx512vbmi() {
        // SAFETY: `has_avx512vbmi` confirmed AVX-512F, BW and VBMI.
        unsafe { x86::lut_vbmi(&input[..len], table, &mut output[..len]) };
        return;
    }
    lut_portable(&input[..len], table, &mut output[..len]);
}

/// The portable [`lut_s8`]: one lookup per element.
fn lut_portable(input: &[i8], table: &[i8; 256], output: &mut [i8]) {
    for (o, &x) in output.iter_mut().zip(input) {
        *o = table[(x as i32 + 128) as usize];
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::{
        __m512i, _mm512_loadu_si512, _mm512_mask_blend_epi8, _mm512_mask_storeu_epi8,
        _mm512_maskz_loadu_epi8, _mm512_movepi8_mask, _mm512_permutex2var_epi8, _mm512_set1_epi8,
        _mm512_storeu_si512, _mm512_xor_si512,
    };

    /// [`super::lut_s8`] with AVX-512 VBMI: the table in four `zmm`, 64 lookups
    /// per two `vpermi2b` (one per half of the table) and a blend on the index's
    /// top bit; the tail through byte masks.
    ///
    /// # Safety
    /// AVX-512F, BW and VBMI available; `input` and `output` have the same length.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub(super) unsafe fn lut_vbmi(input: &[i8], table: &[i8; 256], output: &mut [i8]) {
        // SAFETY: the four 64-byte loads cover `table` exactly; every other
        // access is within `input` / `output` (full blocks of 64, then a masked
        // tail of `len % 64` bytes).
        unsafe {
            let t: [__m512i; 4] =
                core::array::from_fn(|i| _mm512_loadu_si512(table.as_ptr().add(64 * i).cast()));
            let bias = _mm512_set1_epi8(i8::MIN);
            let lookup = |x: __m512i| {
                let index = _mm512_xor_si512(x, bias); // x + 128 as u8
                let low = _mm512_permutex2var_epi8(t[0], index, t[1]);
                let high = _mm512_permutex2var_epi8(t[2], index, t[3]);
                _mm512_mask_blend_epi8(_mm512_movepi8_mask(index), low, high)
            };
            let len = input.len();
            let full = len / 64 * 64;
            for at in (0..full).step_by(64) {
                let x = _mm512_loadu_si512(input.as_ptr().add(at).cast());
                _mm512_storeu_si512(output.as_mut_ptr().add(at).cast(), lookup(x));
            }
            if full < len {
                let mask = u64::MAX >> (64 - (len - full));
                let x = _mm512_maskz_loadu_epi8(mask, input.as_ptr().add(full));
                _mm512_mask_storeu_epi8(output.as_mut_ptr().add(full), mask, lookup(x));
            }
        }
    }
}

/// Host-side, uses float: the table of `f` between two int8 quantizations.
///
/// Entry `q + 128` is `saturate(round(f(input_scale * (q - input_zero_point)) / output_scale) + output_zero_point)`
/// for `q` in `-128..=127`: `f` is evaluated in f32 as the model computes it, the
/// division and rounding (half away from zero) in f64, then the result is
/// saturated to `[-128, 127]` (infinities included). A NaN result maps to
/// `output_zero_point` (real 0).
pub fn build_lut_s8(
    input_scale: f32,
    input_zero_point: i32,
    output_scale: f32,
    output_zero_point: i32,
    f: impl Fn(f32) -> f32,
) -> [i8; 256] {
    let mut table = [0i8; 256];
    for (i, entry) in table.iter_mut().enumerate() {
        let q = i as i32 - 128;
        let y = f(input_scale * (q - input_zero_point) as f32);
        let scaled = libm::round(y as f64 / output_scale as f64);
        let value = if scaled.is_nan() {
            output_zero_point as f64
        } else {
            scaled + output_zero_point as f64
        };
        *entry = value.clamp(-128.0, 127.0) as i8;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dispatched kernel (AVX-512 VBMI where the CPU has it) equals the
    /// portable lookup on every length up to a few blocks, every value.
    #[test]
    fn dispatched_equals_portable() {
        let table: [i8; 256] = core::array::from_fn(|i| (i as u8).wrapping_mul(37) as i8);
        let input: [i8; 300] = core::array::from_fn(|i| (i as u8).wrapping_mul(11) as i8);
        for len in 0..input.len() {
            let (mut got, mut want) = ([0x55i8; 300], [0x55i8; 300]);
            lut_s8(&input[..len], &table, &mut got[..len]);
            lut_portable(&input[..len], &table, &mut want[..len]);
            assert_eq!(got, want, "length {len}");
        }
    }

    #[test]
    fn relu_table_maps_through_quantizations() {
        let table = build_lut_s8(0.1, 0, 0.05, -128, |x| x.max(0.0));
        let input = [-128i8, -1, 0, 1, 10, 63, 127];
        let mut out = [0i8; 7];
        lut_s8(&input, &table, &mut out);
        // q > 0: 0.1 q / 0.05 - 128 = 2q - 128; else -128.
        assert_eq!(out, [-128, -128, -128, -126, -108, -2, 126]);
        // Output zero point 0: 2q saturates at 127 from q = 64.
        let table = build_lut_s8(0.1, 0, 0.05, 0, |x| x.max(0.0));
        lut_s8(&input, &table, &mut out);
        assert_eq!(out, [0, 0, 0, 2, 20, 126, 127]);
    }

    #[test]
    fn rounds_half_away_from_zero_and_maps_nan_to_zero_point() {
        // Identity with output scale 2x the input's: q / 2 exactly, ties away from zero.
        let table = build_lut_s8(1.0, 0, 2.0, 0, |x| x);
        assert_eq!(table[(3 + 128) as usize], 2); // 1.5 -> 2
        assert_eq!(table[(-3 + 128) as usize], -2); // -1.5 -> -2
        assert_eq!(table[(-1 + 128) as usize], -1); // -0.5 -> -1
        let table = build_lut_s8(1.0, 0, 1.0, 7, |_| f32::NAN);
        assert!(table.iter().all(|&v| v == 7));
        let table = build_lut_s8(1.0, 0, 1.0, 0, |x| {
            if x > 0.0 {
                f32::INFINITY
            } else {
                f32::NEG_INFINITY
            }
        });
        assert_eq!((table[0], table[255]), (-128, 127));
    }

    /// Sigmoid through the table against the float model: exact by
    /// construction (same formula), checked here over every input value.
    #[test]
    fn sigmoid_matches_float_model() {
        let (si, zi, so, zo) = (0.06f32, 5, 1.0f32 / 256.0, -128);
        let sigmoid = |x: f32| 1.0 / (1.0 + libm::expf(-x));
        let table = build_lut_s8(si, zi, so, zo, sigmoid);
        let input: [i8; 256] = core::array::from_fn(|i| (i as i32 - 128) as i8);
        let mut out = [0i8; 256];
        lut_s8(&input, &table, &mut out);
        for (&x, &y) in input.iter().zip(&out) {
            let real = sigmoid(si * (x as i32 - zi) as f32) as f64;
            let want = (libm::round(real / so as f64) as i32 + zo).clamp(-128, 127);
            assert_eq!(y as i32, want, "x = {x}");
        }
        // And the curve is monotonic, spanning the output range.
        assert!(out.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!((out[0], out[255]), (-128, 127));
    }
}
