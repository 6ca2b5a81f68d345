//! One input of an int8 concatenation, requantized into the output's quantization.
//!
//! The interpreter calls [`concat_part_s8`] once per input; inputs whose
//! quantization equals the output's can use it too (the identity factor takes
//! a plain-copy path).

use super::{ConcatS8Quant, ConcatSlot};
use crate::quant::Requant;

/// The fixed-point form of 1.0 (`2^30 * 2^(1 - 31)`), for which `apply` is the identity.
const IDENTITY: Requant = Requant {
    multiplier: 1 << 30,
    shift: 1,
};

/// Copies one concat input into its slot of the output, requantizing each value.
///
/// For each `o` in `0..outer`, `input[o * input_block..][..input_block]` goes to
/// `output[o * output_block + offset..][..input_block]` (like the untyped concat
/// part), each value `x` becoming
/// `clamp(requant.apply(x - input_zero_point) + output_zero_point, -128, 127)` with
/// `requant = input_scale / output_scale`. Identity factor and equal zero points
/// copy the bytes unchanged (the same result).
pub fn concat_part_s8(input: &[i8], slot: &ConcatSlot, quant: &ConcatS8Quant, output: &mut [i8]) {
    let ConcatSlot {
        outer,
        input_block,
        output_block,
        offset,
    } = *slot;
    let ConcatS8Quant {
        input_zero_point,
        requant,
        output_zero_point,
    } = *quant;
    debug_assert!(input.len() >= outer * input_block);
    debug_assert!(offset + input_block <= output_block || outer == 0);
    debug_assert!(output.len() >= outer.saturating_sub(1) * output_block + offset + input_block);
    let plain_copy = requant == IDENTITY && input_zero_point == output_zero_point;
    let map = |x: i8| {
        let value = requant.apply(x as i32 - input_zero_point);
        value.saturating_add(output_zero_point).clamp(-128, 127) as i8
    };
    // Past a few hundred values, one table of the 256 results is cheaper than
    // the fixed-point multiply per value (and the same function).
    let table: Option<[i8; 256]> = (!plain_copy && outer * input_block >= TABLE_FROM)
        .then(|| core::array::from_fn(|i| map((i as i32 - 128) as i8)));
    for o in 0..outer {
        let src = &input[o * input_block..][..input_block];
        let dst = &mut output[o * output_block + offset..][..input_block];
        if plain_copy {
            dst.copy_from_slice(src);
        } else if let Some(table) = &table {
            for (d, &x) in dst.iter_mut().zip(src) {
                *d = table[(x as u8 ^ 0x80) as usize];
            }
        } else {
            for (d, &x) in dst.iter_mut().zip(src) {
                *d = map(x);
            }
        }
    }
}

/// Values from which [`concat_part_s8`] requantizes through a table.
const TABLE_FROM: usize = 512;

#[cfg(test)]
mod tests {
    use super::super::conv2d_s8::testing::quantize;
    use super::*;

    #[test]
    fn identity_factor_is_exact_and_copies() {
        for x in -128..=127 {
            assert_eq!(IDENTITY.apply(x), x);
        }
        let input = [1i8, 2, 3, 4];
        let mut out = [0i8; 6];
        // Two rows of 2 into rows of 3 at offset 1.
        concat_part_s8(
            &input,
            &ConcatSlot {
                outer: 2,
                input_block: 2,
                output_block: 3,
                offset: 1,
            },
            &ConcatS8Quant {
                input_zero_point: 5,
                requant: IDENTITY,
                output_zero_point: 5,
            },
            &mut out,
        );
        assert_eq!(out, [0, 1, 2, 0, 3, 4]);
    }

    /// The table path equals the per-value path on every value.
    #[test]
    fn table_equals_per_value_requantization() {
        let quant = ConcatS8Quant {
            input_zero_point: -9,
            requant: Requant::from_real(0.37),
            output_zero_point: 4,
        };
        let input: [i8; 4 * TABLE_FROM] = core::array::from_fn(|i| (i * 7 % 256) as u8 as i8);
        let slot = |outer: usize, block: usize| ConcatSlot {
            outer,
            input_block: block,
            output_block: block,
            offset: 0,
        };
        let (mut table, mut direct) = ([0i8; 4 * TABLE_FROM], [0i8; 4 * TABLE_FROM]);
        concat_part_s8(&input, &slot(4, TABLE_FROM), &quant, &mut table);
        // Blocks under the threshold take the per-value path.
        for (i, chunk) in input.chunks(TABLE_FROM / 4).enumerate() {
            let dst = &mut direct[i * TABLE_FROM / 4..][..TABLE_FROM / 4];
            concat_part_s8(chunk, &slot(1, TABLE_FROM / 4), &quant, dst);
        }
        assert_eq!(table, direct);
    }

    /// Every int8 value against dequantize -> quantize in f64 (1 LSB for the
    /// fixed-point factor), including saturation.
    #[test]
    fn requantizes_like_the_float_model() {
        for &(si, zi, so, zo) in &[
            (0.05, 3, 0.1, -7),
            (0.3, -128, 0.1, 0),
            (0.01, 0, 0.0101, 2),
        ] {
            let requant = Requant::from_real(si / so);
            let input: [i8; 256] = core::array::from_fn(|i| (i as i32 - 128) as i8);
            let mut out = [0i8; 256];
            concat_part_s8(
                &input,
                &ConcatSlot {
                    outer: 1,
                    input_block: 256,
                    output_block: 256,
                    offset: 0,
                },
                &ConcatS8Quant {
                    input_zero_point: zi,
                    requant,
                    output_zero_point: zo,
                },
                &mut out,
            );
            for (&x, &y) in input.iter().zip(&out) {
                let want = quantize(si * (x as i32 - zi) as f64, so, zo);
                assert!((y as i32 - want).abs() <= 1, "{x}: {y} vs {want}");
            }
        }
    }
}
