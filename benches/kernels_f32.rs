//! Float convolution, portable GEMM against the GEMM the CPU picks (AVX2 + FMA
//! micro-kernel on x86-64), with f32 and f16 weights, on the CNN fixture's
//! second convolution, a pointwise layer and a real detector's largest dense
//! 3x3 convolution; and the float transposed convolution, gather form against
//! the phase GEMM, on the same detector's 2x2 / stride-2 upsampling. Each pair
//! is checked within float tolerance before it is timed. `peak` times `vfmadd` alone (twelve independent accumulators, no
//! loads), a reference figure only: on a Zen 1 core the pointwise case has
//! measured above it, so it is not a true ceiling.
//!
//! `cargo bench -p tern-benches --bench kernels_f32`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group};
use half::f16;
use tern_runtime::kernels::conv_transpose2d_f32::{
    conv_transpose2d_f32, conv_transpose2d_f32_phases, conv_transpose2d_f32_scratch_len,
};
use tern_runtime::kernels::conv2d_f32::{conv2d_f32, conv2d_f32_portable, conv2d_f32_scratch_len};
use tern_runtime::kernels::{ClampF32, ConvF32Args, ConvGeometry, FloatWeight, Shape4, Window2d};

/// Deterministic pseudo-random values in `[-1, 1)`.
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

struct ConvCase {
    name: &'static str,
    input: [usize; 3],
    out_c: usize,
    kernel: usize,
    pad: usize,
}

const CONV_CASES: &[ConvCase] = &[
    ConvCase {
        name: "cnn_conv2_32x14x14_to_64_3x3",
        input: [32, 14, 14],
        out_c: 64,
        kernel: 3,
        pad: 1,
    },
    ConvCase {
        name: "pointwise_64x28x28_to_128",
        input: [64, 28, 28],
        out_c: 128,
        kernel: 1,
        pad: 0,
    },
    // The dense convolution with the most MACs in the PP-OCRv4 text detector
    // (ocr-det in real_models.tsv): 132 MMAC, K = 864.
    ConvCase {
        name: "detector_3x3_96x40x160_to_24",
        input: [96, 40, 160],
        out_c: 24,
        kernel: 3,
        pad: 1,
    },
];

fn conv_case<W: FloatWeight>(c: &mut Criterion, case: &ConvCase, weights: &[W], tag: &str) {
    let [ci, h, w] = case.input;
    let in_shape = Shape4::new(1, ci, h, w);
    let out_hw = |i: usize| i + 2 * case.pad - case.kernel + 1;
    let out_shape = Shape4::new(1, case.out_c, out_hw(h), out_hw(w));
    let input = values(in_shape.len(), 1);
    let bias = values(case.out_c, 3);
    let args = ConvF32Args {
        input: &input,
        weights,
        bias: Some(&bias),
        geometry: ConvGeometry {
            in_shape,
            out_shape,
            window: Window2d {
                kernel: [case.kernel; 2],
                stride: [1, 1],
                dilation: [1, 1],
                pad_begin: [case.pad; 2],
            },
            groups: 1,
        },
        clamp: ClampF32::NONE,
    };
    let mut scratch = vec![0f32; conv2d_f32_scratch_len(&args.geometry)];
    let (mut portable, mut fast) = (vec![0f32; out_shape.len()], vec![0f32; out_shape.len()]);
    conv2d_f32_portable(&args, &mut portable, &mut scratch);
    conv2d_f32(&args, &mut fast, &mut scratch);
    let k = (ci * case.kernel * case.kernel) as f32;
    for (i, (a, b)) in portable.iter().zip(&fast).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 * k,
            "{} {tag} at {i}: {a} vs {b}",
            case.name
        );
    }
    let macs = (out_shape.len() as f32 * k) as u64;
    let mut group = c.benchmark_group("conv2d_f32");
    group.throughput(Throughput::Elements(macs));
    group.bench_function(format!("{}/{tag}/portable", case.name), |b| {
        b.iter(|| conv2d_f32_portable(&args, black_box(&mut portable), &mut scratch))
    });
    group.bench_function(format!("{}/{tag}/fast", case.name), |b| {
        b.iter(|| conv2d_f32(&args, black_box(&mut fast), &mut scratch))
    });
    group.finish();
}

fn conv(c: &mut Criterion) {
    for case in CONV_CASES {
        let k = case.input[0] * case.kernel * case.kernel;
        let weights = values(case.out_c * k, 2);
        conv_case(c, case, &weights, "f32");
        let weights: Vec<f16> = weights.iter().map(|&x| f16::from_f32(x)).collect();
        conv_case(c, case, &weights, "f16");
    }
}

/// The ocr-det head's first ConvTranspose (24 -> 24, 2x2, stride 2, from 40x160
/// to 80x320): the gather form against the phase GEMM.
fn conv_transpose(c: &mut Criterion) {
    let (ci, co, h, w) = (24, 24, 40, 160);
    let in_shape = Shape4::new(1, ci, h, w);
    let out_shape = Shape4::new(1, co, 2 * h, 2 * w);
    let input = values(in_shape.len(), 4);
    let weights = values(co * ci * 4, 5);
    let bias = values(co, 6);
    let args = ConvF32Args {
        input: &input,
        weights: &weights[..],
        bias: Some(&bias),
        geometry: ConvGeometry {
            in_shape,
            out_shape,
            window: Window2d {
                kernel: [2, 2],
                stride: [2, 2],
                dilation: [1, 1],
                pad_begin: [0, 0],
            },
            groups: 1,
        },
        clamp: ClampF32::NONE,
    };
    let mut scratch = vec![0f32; conv_transpose2d_f32_scratch_len(&args.geometry)];
    let (mut gather, mut phases) = (vec![0f32; out_shape.len()], vec![0f32; out_shape.len()]);
    conv_transpose2d_f32(&args, &mut gather);
    conv_transpose2d_f32_phases(&args, &mut phases, &mut scratch, true);
    for (i, (a, b)) in gather.iter().zip(&phases).enumerate() {
        assert!((a - b).abs() <= 1e-5 * ci as f32, "at {i}: {a} vs {b}");
    }
    let mut group = c.benchmark_group("conv_transpose2d_f32");
    group.throughput(Throughput::Elements((in_shape.len() * co * 4) as u64));
    let name = "detector_head_24x40x160_to_24_2x2_s2";
    group.bench_function(format!("{name}/gather"), |b| {
        b.iter(|| conv_transpose2d_f32(&args, black_box(&mut gather)))
    });
    group.bench_function(format!("{name}/phases"), |b| {
        b.iter(|| conv_transpose2d_f32_phases(&args, black_box(&mut phases), &mut scratch, true))
    });
    group.finish();
}

/// `vfmadd231ps` alone: twelve independent accumulators of eight lanes, no
/// loads. GMAC/s = the `Gelem/s` it prints.
fn peak(c: &mut Criterion) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        const STEPS: u64 = 100_000;
        let mut group = c.benchmark_group("peak");
        group.throughput(Throughput::Elements(STEPS * 12 * 8));
        group.bench_function("fma_vfmadd_loop", |b| {
            // SAFETY: AVX2 and FMA were detected just above.
            b.iter(|| unsafe { fma_loop(black_box(STEPS)) })
        });
        group.finish();
    }
    let _ = c;
}

/// `steps` rounds of twelve independent `vfmadd231ps`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_loop(steps: u64) -> f32 {
    use std::arch::x86_64::{_mm256_cvtss_f32, _mm256_fmadd_ps, _mm256_set1_ps, _mm256_setzero_ps};
    let (mut x, y) = (_mm256_set1_ps(0.999), _mm256_set1_ps(1e-7));
    let mut acc = [_mm256_setzero_ps(); 12];
    for _ in 0..steps {
        // SAFETY: an empty asm block; it only makes `x` opaque to the
        // optimizer (no instruction, no memory), so the products are not hoisted.
        unsafe { std::arch::asm!("/* {0} */", inout(ymm_reg) x, options(pure, nomem, nostack)) };
        for a in acc.iter_mut() {
            *a = _mm256_fmadd_ps(x, y, *a);
        }
    }
    acc.iter().map(|&a| _mm256_cvtss_f32(a)).sum()
}

criterion_group!(benches, conv, conv_transpose, peak);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
