//! The fast int8 transposed convolution against the reference, bit for bit.
extern crate std;
use super::super::conv_transpose2d_s8::conv_transpose2d_s8;
use super::super::conv2d_s8::ConvS8Quant;
use super::super::conv2d_s8::testing::XorShift;
use super::super::{Shape4, Window2d};
use super::*;
use crate::quant::Requant;
use std::vec;
use std::vec::Vec;

/// A random transposed-convolution geometry: strides up to 3, kernels up to
/// 4 (so phases with zero, one or several taps), dilation, padding and
/// `output_padding`, grouped or dense.
fn random_geometry(rng: &mut XorShift) -> Option<ConvGeometry> {
    let groups = rng.urange(1, 3);
    let (cin, cout) = (groups * rng.urange(1, 9), groups * rng.urange(1, 6));
    let window = Window2d {
        kernel: [rng.urange(1, 4), rng.urange(1, 4)],
        stride: [rng.urange(1, 3), rng.urange(1, 3)],
        dilation: [rng.urange(1, 2), rng.urange(1, 2)],
        pad_begin: [rng.urange(0, 2), rng.urange(0, 2)],
    };
    let s = Shape4::new(rng.urange(1, 2), cin, rng.urange(1, 9), rng.urange(1, 9));
    let mut size = |i: usize, len: usize| {
        let full = (len - 1) * window.stride[i] + (window.kernel[i] - 1) * window.dilation[i] + 1;
        (full + rng.urange(0, window.stride[i] - 1)).saturating_sub(2 * window.pad_begin[i])
    };
    let o = Shape4::new(s.n, cout, size(0, s.h), size(1, s.w));
    (!o.is_empty()).then_some(ConvGeometry {
        in_shape: s,
        out_shape: o,
        window,
        groups,
    })
}

/// Runs the reference, the dispatched fast kernel and its portable body on
/// one case (dirty, misaligned scratch) and asserts all three agree.
fn check_case(rng: &mut XorShift, geometry: ConvGeometry, case: usize) {
    let (s, o) = (geometry.in_shape, geometry.out_shape);
    let [kh, kw] = geometry.window.kernel;
    let input = rng.i8s(s.len(), -128, 127);
    let weights = rng.i8s(o.c * geometry.in_per_group() * kh * kw, -128, 127);
    let bias: Vec<i32> = if case.is_multiple_of(3) {
        Vec::new()
    } else {
        (0..o.c).map(|_| rng.range(-5000, 5000)).collect()
    };
    let requant: Vec<Requant> = (0..o.c)
        .map(|_| Requant::from_real(rng.float(0.0005, 0.01)))
        .collect();
    let quant = ConvS8Quant {
        input_zero_point: rng.range(-128, 127),
        output_zero_point: rng.range(-20, 20),
        requant: &requant,
        act_min: if case % 4 == 1 { 0 } else { -128 },
        act_max: 127,
    };
    let args = ConvS8Args {
        input: &input,
        weights: &weights,
        bias: &bias,
        geometry,
        quant,
    };
    let mut want = vec![0i8; o.len()];
    conv_transpose2d_s8(&args, &mut want);
    let mut scratch = vec![0x55i8; conv_transpose2d_s8_fast_scratch_len(&geometry) + 1];
    let mut got = vec![0i8; o.len()];
    conv_transpose2d_s8_fast(&args, &mut got, &mut scratch[1..]);
    assert_eq!(got, want, "case {case}: {geometry:?}");
    let mut portable = vec![0i8; o.len()];
    conv_transpose2d_s8_fast_body(&args, &mut portable, &mut scratch[1..]);
    assert_eq!(portable, want, "case {case} (portable): {geometry:?}");
}

#[test]
fn bit_exact_with_reference_on_random_geometries() {
    let mut rng = XorShift(0xC7F5);
    let mut cases = 0;
    while cases < 300 {
        if let Some(g) = random_geometry(&mut rng) {
            check_case(&mut rng, g, cases);
            cases += 1;
        }
    }
}

/// A decoder-style upsampling layer (2x2 stride 2 and 4x4 stride 2 with
/// padding), large enough for several pixel tiles and channel blocks.
#[test]
fn bit_exact_on_upsampling_layers_with_many_tiles() {
    let mut rng = XorShift(0x0D5);
    for (k, pad) in [(2, 0), (4, 1), (3, 1)] {
        let window = Window2d {
            kernel: [k, k],
            stride: [2, 2],
            dilation: [1, 1],
            pad_begin: [pad, pad],
        };
        let s = Shape4::new(1, 24, 13, 17);
        let size = |len: usize| (len - 1) * 2 + k - 2 * pad;
        let o = Shape4::new(1, 10, size(s.h), size(s.w));
        let geometry = ConvGeometry {
            in_shape: s,
            out_shape: o,
            window,
            groups: 1,
        };
        check_case(&mut rng, geometry, 7);
    }
}

/// More taps per phase than the fast path takes: the reference runs, no scratch.
#[test]
fn wide_kernels_fall_back_to_the_reference() {
    let window = Window2d {
        kernel: [17, 1],
        stride: [1, 1],
        dilation: [1, 1],
        pad_begin: [0, 0],
    };
    let geometry = ConvGeometry {
        in_shape: Shape4::new(1, 2, 3, 3),
        out_shape: Shape4::new(1, 2, 19, 3),
        window,
        groups: 1,
    };
    assert_eq!(conv_transpose2d_s8_fast_scratch_len(&geometry), 0);
    check_case(&mut XorShift(5), geometry, 1);
}
