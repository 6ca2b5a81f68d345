//! The fast int8 convolution against the reference, bit for bit.
extern crate std;
use super::super::conv2d_s8::testing::XorShift;
use super::super::conv2d_s8::{ConvS8Quant, conv2d_s8};
use super::super::{Shape4, Window2d};
use super::*;
use crate::quant::Requant;
use std::vec;
use std::vec::Vec;

fn random_case(rng: &mut XorShift, kind: u32) -> Option<ConvGeometry> {
    let (cin, cout, groups) = match kind % 4 {
        // depthwise, possibly with a channel multiplier
        0 => {
            let c = rng.urange(1, 6);
            (c, c * rng.urange(1, 3), c)
        }
        // grouped
        1 => {
            let g = rng.urange(2, 3);
            (g * rng.urange(2, 5), g * rng.urange(1, 5), g)
        }
        // dense, any sizes (K not a multiple of 8, odd channel counts)
        _ => (rng.urange(2, 19), rng.urange(1, 11), 1),
    };
    let pointwise = kind % 7 == 3;
    let window = if pointwise {
        Window2d {
            kernel: [1, 1],
            stride: [1, 1],
            dilation: [1, 1],
            pad_begin: [0, 0],
        }
    } else {
        Window2d {
            kernel: [rng.urange(1, 4), rng.urange(1, 4)],
            stride: [rng.urange(1, 3), rng.urange(1, 3)],
            dilation: [rng.urange(1, 2), rng.urange(1, 2)],
            pad_begin: [rng.urange(0, 2), rng.urange(0, 2)],
        }
    };
    let in_shape = Shape4::new(rng.urange(1, 2), cin, rng.urange(1, 12), rng.urange(1, 12));
    let pad_end = if pointwise {
        [0, 0]
    } else {
        [rng.urange(0, 2), rng.urange(0, 2)]
    };
    let mut out = [0usize; 2];
    for (i, len) in [in_shape.h, in_shape.w].into_iter().enumerate() {
        let eff = (window.kernel[i] - 1) * window.dilation[i] + 1;
        let padded = len + window.pad_begin[i] + pad_end[i];
        if padded < eff {
            return None;
        }
        out[i] = (padded - eff) / window.stride[i] + 1;
    }
    Some(ConvGeometry {
        in_shape,
        out_shape: Shape4::new(in_shape.n, cout, out[0], out[1]),
        window,
        groups,
    })
}

/// The fast kernel must equal the reference bit for bit on every geometry,
/// zero point and clamp; scratch is handed over misaligned and dirty on purpose.
/// Runs [`conv2d_s8_fast`] (the copy this CPU dispatches to) and its
/// portable body, asserts that they agree, and returns the output.
fn run_both(args: &ConvS8Args, scratch: &mut [i8]) -> Vec<i8> {
    let len = args.geometry.out_shape.len();
    let mut dispatched = vec![0i8; len];
    conv2d_s8_fast(args, &mut dispatched, scratch);
    let mut portable = vec![0i8; len];
    conv2d_s8_fast_body(args, &mut portable, scratch);
    assert_eq!(
        dispatched, portable,
        "dispatched and portable copies differ"
    );
    for kind in GemmS8::ALL.into_iter().filter(|k| k.available()) {
        let mut got = vec![0i8; len];
        conv2d_s8_gemm(kind, args, &mut got, scratch);
        assert_eq!(got, dispatched, "8-bit im2col with {} differs", kind.name());
    }
    if !uses_direct_path(&args.geometry) {
        // The Cortex-M DSP path, with stand-ins for SXTB16/SMLAD off Cortex-M.
        let mut got = vec![0i8; len];
        smlad::conv_smlad(args, &mut got, scratch);
        assert_eq!(got, dispatched, "SMLAD path differs");
    }
    let pixels = args.geometry.out_shape.h * args.geometry.out_shape.w;
    if !uses_direct_path(&args.geometry)
        && pixels > 0
        && let Some(tile) = panel::panel_tile(&args.geometry, scratch.len())
    {
        let mut got = vec![0i8; len];
        panel::conv_panel(args, &mut got, scratch, tile);
        assert_eq!(got, dispatched, "i16 panel path differs");
        // The VNNI panel path, with the portable quad kernel where the CPU lacks VNNI.
        #[cfg(target_arch = "x86_64")]
        if (-128..=127).contains(&args.quant.input_zero_point) {
            let mut got = vec![0i8; len];
            panel_u8::conv_panel_u8(args, &mut got, scratch, tile);
            assert_eq!(got, dispatched, "u8 quad panel path differs");
        }
    }
    // The banded VNNI path, with the portable band kernel where the CPU lacks VNNI.
    #[cfg(target_arch = "x86_64")]
    if !uses_direct_path(&args.geometry)
        && (-128..=127).contains(&args.quant.input_zero_point)
        && let Some(plan) = band_u8::plan(&args.geometry, scratch.len())
    {
        let mut got = vec![0i8; len];
        band_u8::conv_band_u8(args, &mut got, scratch, &plan);
        assert_eq!(got, dispatched, "banded u8 path differs ({plan:?})");
    }
    dispatched
}

#[test]
fn bit_exact_with_reference_on_random_geometries() {
    let mut rng = XorShift(0xC0FF_EE01);
    let mut checked = 0;
    for case in 0..600 {
        let Some(c) = random_case(&mut rng, case) else {
            continue;
        };
        let taps = c.in_shape.c / c.groups * c.window.kernel[0] * c.window.kernel[1];
        let input = rng.i8s(c.in_shape.len(), -128, 127);
        // Full int8 range including -128: exactness must not rely on the spec's [-127, 127].
        let weights = rng.i8s(c.out_shape.c * taps, -128, 127);
        let bias: Vec<i32> = if case % 9 == 0 {
            Vec::new()
        } else {
            (0..c.out_shape.c)
                .map(|_| rng.range(-20000, 20000))
                .collect()
        };
        let requant: Vec<Requant> = (0..if case % 5 == 0 { 1 } else { c.out_shape.c })
            .map(|_| Requant::from_real(rng.float(0.0005, 0.05)))
            .collect();
        let act_min = if case % 3 == 0 {
            rng.range(-128, 0)
        } else {
            -128
        };
        let quant = ConvS8Quant {
            input_zero_point: rng.range(-128, 127),
            output_zero_point: rng.range(-128, 127),
            requant: &requant,
            act_min,
            act_max: if case % 4 == 0 {
                rng.range(act_min, 127)
            } else {
                127
            },
        };
        let args = ConvS8Args {
            input: &input,
            weights: &weights,
            bias: &bias,
            geometry: c,
            quant,
        };
        let mut want = vec![0i8; c.out_shape.len()];
        conv2d_s8(&args, &mut want);
        // The minimum, the fast tiling's, or something in between: the kernel
        // tiles to fit what it gets.
        let (min, fast) = (
            conv2d_s8_fast_scratch_len(&c),
            conv2d_s8_fast_scratch_len_fast(&c),
        );
        let len = match case % 3 {
            0 => min,
            1 => fast,
            _ => rng.urange(min, fast),
        };
        let mut scratch_store = vec![0x55i8; len + 1];
        let scratch = &mut scratch_store[1..]; // odd address when the Vec is aligned
        let got = run_both(&args, scratch);
        assert_eq!(
            got, want,
            "case {case}: {:?} -> {:?} {:?} groups {}",
            c.in_shape, c.out_shape, c.window, c.groups
        );
        checked += 1;
    }
    assert!(checked > 400, "only {checked} geometries checked");
}

#[test]
fn bit_exact_on_a_large_layer_with_many_tiles() {
    // 41 channels x 3x3: K = 369 (padded to 384), 143 pixels = 9 tiles.
    let mut rng = XorShift(7);
    let in_shape = Shape4::new(1, 41, 13, 11);
    let out_shape = Shape4::new(1, 19, 13, 11);
    let window = Window2d {
        kernel: [3, 3],
        stride: [1, 1],
        dilation: [1, 1],
        pad_begin: [1, 1],
    };
    let input = rng.i8s(in_shape.len(), -128, 127);
    let weights = rng.i8s(19 * 41 * 9, -127, 127);
    let bias: Vec<i32> = (0..19).map(|_| rng.range(-100_000, 100_000)).collect();
    let requant: Vec<Requant> = (0..19)
        .map(|_| Requant::from_real(rng.float(0.0001, 0.002)))
        .collect();
    let quant = ConvS8Quant {
        input_zero_point: -3,
        output_zero_point: 5,
        requant: &requant,
        act_min: -128,
        act_max: 127,
    };
    let geometry = ConvGeometry {
        in_shape,
        out_shape,
        window,
        groups: 1,
    };
    let args = ConvS8Args {
        input: &input,
        weights: &weights,
        bias: &bias,
        geometry,
        quant,
    };
    let mut want = vec![0i8; out_shape.len()];
    conv2d_s8(&args, &mut want);
    let mut scratch = vec![0i8; conv2d_s8_fast_scratch_len(&geometry)];
    let got = run_both(&args, &mut scratch);
    assert_eq!(got, want);
    // The outputs are not all saturated: the test exercises real values.
    assert!(want.iter().filter(|&&v| v != 127 && v != -128).count() > want.len() / 2);
}

#[test]
fn scratch_len_is_zero_for_depthwise() {
    let window = Window2d {
        kernel: [3, 3],
        stride: [1, 1],
        dilation: [1, 1],
        pad_begin: [1, 1],
    };
    let s = Shape4::new(1, 8, 10, 10);
    let geometry = |in_shape, groups| ConvGeometry {
        in_shape,
        out_shape: s,
        window,
        groups,
    };
    assert_eq!(conv2d_s8_fast_scratch_len(&geometry(s, 8)), 0);
    // Dense 8 -> 8: K = 72 -> 80 padded, tile = 2048 / 80 = 25 -> 2 * (25 + 1) * 80 + 1.
    assert_eq!(conv2d_s8_fast_scratch_len(&geometry(s, 1)), 4161);
    // Dense 1 -> 8 (a first layer) takes the im2col path: K = 9 -> 16, tile 100 (all pixels).
    let one = Shape4::new(1, 1, 10, 10);
    assert_eq!(
        conv2d_s8_fast_scratch_len(&geometry(one, 1)),
        2 * 101 * 16 + 1
    );
    // The fast tiling: the depthwise band, and panels of 112 pixels (+ 4 weight rows).
    assert!(conv2d_s8_fast_scratch_len_fast(&geometry(s, 8)) > 0);
    assert_eq!(
        conv2d_s8_fast_scratch_len_fast(&geometry(one, 1)),
        2 * (112 + 4) * 16 + 1
    );
}

/// A depthwise kernel spanning more columns than the direct path's row buffer
/// (9 taps, dilation 40: 321 columns) takes the im2col path, with scratch, and
/// still equals the reference.
#[test]
fn wide_depthwise_kernel_takes_im2col_and_is_bit_exact() {
    let mut rng = XorShift(11);
    let window = Window2d {
        kernel: [2, 9],
        stride: [1, 2],
        dilation: [1, 40],
        pad_begin: [1, 3],
    };
    let in_shape = Shape4::new(1, 3, 4, 340);
    // Rows: 4 + 1 - 2 + 1 = 4; columns: (340 + 3 - 321) / 2 + 1 = 12.
    let out_shape = Shape4::new(1, 6, 4, 12);
    let geometry = ConvGeometry {
        in_shape,
        out_shape,
        window,
        groups: 3,
    };
    assert!(
        conv2d_s8_fast_scratch_len(&geometry) > 0,
        "im2col needs scratch"
    );
    let input = rng.i8s(in_shape.len(), -128, 127);
    let weights = rng.i8s(6 * 18, -128, 127);
    let bias: Vec<i32> = (0..6).map(|_| rng.range(-5000, 5000)).collect();
    let requant: Vec<Requant> = (0..6)
        .map(|_| Requant::from_real(rng.float(0.001, 0.01)))
        .collect();
    let quant = ConvS8Quant {
        input_zero_point: 7,
        output_zero_point: -2,
        requant: &requant,
        act_min: -128,
        act_max: 127,
    };
    let args = ConvS8Args {
        input: &input,
        weights: &weights,
        bias: &bias,
        geometry,
        quant,
    };
    let mut want = vec![0i8; out_shape.len()];
    conv2d_s8(&args, &mut want);
    let mut scratch = vec![0i8; conv2d_s8_fast_scratch_len(&geometry)];
    assert_eq!(run_both(&args, &mut scratch), want);
    assert!(want.iter().filter(|&&v| v != 127 && v != -128).count() > want.len() / 2);
}

/// Found by the `model` fuzz target: an input plane with no rows or columns whose
/// padding still makes an output sent im2col into `chunks_exact(0)`. Dense and
/// wide depthwise (im2col) geometries over empty planes equal the reference.
#[test]
fn empty_input_planes_with_padded_outputs_are_bit_exact() {
    let mut rng = XorShift(21);
    let cases = [
        // Dense 2 -> 3, no rows, 1 row of padding on each side: 2 output rows.
        (
            Shape4::new(1, 2, 0, 3),
            Shape4::new(1, 3, 2, 3),
            Window2d {
                kernel: [1, 1],
                stride: [1, 1],
                dilation: [1, 1],
                pad_begin: [1, 0],
            },
            1,
        ),
        // Wide depthwise over no columns: span 321 inside 340 columns of padding.
        (
            Shape4::new(1, 2, 2, 0),
            Shape4::new(1, 2, 2, 20),
            Window2d {
                kernel: [1, 9],
                stride: [1, 1],
                dilation: [1, 40],
                pad_begin: [0, 170],
            },
            2,
        ),
    ];
    for (in_shape, out_shape, window, groups) in cases {
        let geometry = ConvGeometry {
            in_shape,
            out_shape,
            window,
            groups,
        };
        let taps = in_shape.c / groups * window.kernel[0] * window.kernel[1];
        let weights = rng.i8s(out_shape.c * taps, -128, 127);
        let bias: Vec<i32> = (0..out_shape.c).map(|_| rng.range(-500, 500)).collect();
        let requant: Vec<Requant> = (0..out_shape.c)
            .map(|_| Requant::from_real(rng.float(0.01, 0.1)))
            .collect();
        let quant = ConvS8Quant {
            input_zero_point: 3,
            output_zero_point: -1,
            requant: &requant,
            act_min: -128,
            act_max: 127,
        };
        let args = ConvS8Args {
            input: &[],
            weights: &weights,
            bias: &bias,
            geometry,
            quant,
        };
        let mut want = vec![0i8; out_shape.len()];
        conv2d_s8(&args, &mut want);
        let mut scratch = vec![0i8; conv2d_s8_fast_scratch_len(&geometry)];
        assert_eq!(run_both(&args, &mut scratch), want, "{in_shape:?}");
    }
}

/// "Same" convolutions (stride 1, output rows as wide as the input's), whose
/// gather on Cortex-M copies each tap flat across rows and then zeros the
/// padding: kernels 1 to 5, dilation 1 and 2, uneven padding, tiles that start
/// and end mid-row (every scratch length from the minimum up).
#[test]
fn same_convolutions_are_bit_exact() {
    let mut rng = XorShift(0x5A3E);
    for case in 0..160 {
        let (kh, kw) = (rng.urange(1, 5), rng.urange(1, 5));
        let dilation = [rng.urange(1, 2), rng.urange(1, 2)];
        let span = |k: usize, d: usize| (k - 1) * d;
        let pad_w = rng.urange(0, span(kw, dilation[1]));
        let pad_h = rng.urange(0, span(kh, dilation[0]));
        let (ih, iw) = (rng.urange(1, 9), rng.urange(1, 9));
        let oh = (ih + span(kh, dilation[0])).saturating_sub(span(kh, dilation[0]));
        let window = Window2d {
            kernel: [kh, kw],
            stride: [1, 1],
            dilation,
            pad_begin: [pad_h, pad_w],
        };
        let (cin, cout) = (rng.urange(1, 5), rng.urange(1, 6));
        let geometry = ConvGeometry {
            in_shape: Shape4::new(1, cin, ih, iw),
            out_shape: Shape4::new(1, cout, oh, iw),
            window,
            groups: 1,
        };
        let taps = cin * kh * kw;
        let input = rng.i8s(geometry.in_shape.len(), -128, 127);
        let weights = rng.i8s(cout * taps, -128, 127);
        let bias: Vec<i32> = (0..cout).map(|_| rng.range(-3000, 3000)).collect();
        let requant = [Requant::from_real(rng.float(0.001, 0.05))];
        let quant = ConvS8Quant {
            input_zero_point: rng.range(-128, 127),
            output_zero_point: rng.range(-128, 127),
            requant: &requant,
            act_min: -128,
            act_max: 127,
        };
        let args = ConvS8Args {
            input: &input,
            weights: &weights,
            bias: &bias,
            geometry,
            quant,
        };
        let mut want = vec![0i8; geometry.out_shape.len()];
        conv2d_s8(&args, &mut want);
        let min = conv2d_s8_fast_scratch_len(&geometry);
        for extra in [0, 7, 64, 300] {
            let mut scratch = vec![0x33i8; min + extra];
            let got = run_both(&args, &mut scratch);
            assert_eq!(
                got,
                want,
                "case {case}: {geometry:?}, scratch {}",
                min + extra
            );
        }
    }
}
