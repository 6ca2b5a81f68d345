//! Int8 kernels, portable reference against the fast variant, on the layer
//! geometries that dominate small CNNs (the CNN fixture's two convolutions,
//! first fully connected layer and first pooling, a depthwise and a pointwise
//! layer). Each pair is
//! checked bit for bit before it is timed. The convolutions and the fully
//! connected layer are also timed through the 8-bit GEMM path with every
//! dot-product variant this CPU runs (`gemm-portable`; on AArch64 also
//! `gemm-neon`, `gemm-neon-sdot`, `gemm-neon-i8mm`). The int8 binaries are timed on
//! an SE block's per-channel Mul and a residual Add. `peak` times the AVX2
//! dot-product instruction alone (and AVX-512 VNNI's where the CPU has it), the
//! ceiling for the convolutions' GMAC/s.
//!
//! `cargo bench -p tern-benches --bench kernels_s8`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group};
use tern_runtime::GemmS8;
use tern_runtime::kernels::binary_s8::{BinaryS8Params, binary_s8};
use tern_runtime::kernels::binary_s8_fast::binary_s8_fast;
use tern_runtime::kernels::conv2d_s8::{ConvS8Quant, conv2d_s8};
use tern_runtime::kernels::conv2d_s8_fast::{
    conv2d_s8_fast, conv2d_s8_fast_scratch_len_fast, conv2d_s8_gemm,
};
use tern_runtime::kernels::fully_connected_s8::fully_connected_s8;
use tern_runtime::kernels::fully_connected_s8_fast::{
    fully_connected_s8_fast, fully_connected_s8_gemm,
};
use tern_runtime::kernels::max_pool2d_s8::max_pool2d_s8;
use tern_runtime::kernels::max_pool2d_s8_fast::max_pool2d_s8_fast;
use tern_runtime::kernels::{
    BinaryOp, ConvGeometry, ConvS8Args, FullyConnectedDims, FullyConnectedS8Args, Operand,
    PoolGeometry, Shape4, Window2d,
};
use tern_runtime::quant::Requant;

/// Deterministic pseudo-random int8 values.
fn values(len: usize, seed: u64) -> Vec<i8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 56) as i8
        })
        .collect()
}

struct ConvCase {
    name: &'static str,
    input: Shape4,
    out_c: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    groups: usize,
}

impl ConvCase {
    fn window(&self) -> Window2d {
        Window2d {
            kernel: [self.kernel; 2],
            stride: [self.stride; 2],
            dilation: [1, 1],
            pad_begin: [self.pad; 2],
        }
    }

    fn output(&self) -> Shape4 {
        let o = |i: usize| (i + 2 * self.pad - self.kernel) / self.stride + 1;
        Shape4::new(self.input.n, self.out_c, o(self.input.h), o(self.input.w))
    }

    fn macs(&self) -> u64 {
        let out = self.output();
        (out.len() * self.input.c / self.groups * self.kernel * self.kernel) as u64
    }
}

const CONV_CASES: &[ConvCase] = &[
    ConvCase {
        name: "cnn_conv1_1x28x28_to_32_3x3",
        input: Shape4 {
            n: 1,
            c: 1,
            h: 28,
            w: 28,
        },
        out_c: 32,
        kernel: 3,
        stride: 1,
        pad: 1,
        groups: 1,
    },
    ConvCase {
        name: "cnn_conv2_32x14x14_to_64_3x3",
        input: Shape4 {
            n: 1,
            c: 32,
            h: 14,
            w: 14,
        },
        out_c: 64,
        kernel: 3,
        stride: 1,
        pad: 1,
        groups: 1,
    },
    ConvCase {
        name: "depthwise_64x28x28_3x3",
        input: Shape4 {
            n: 1,
            c: 64,
            h: 28,
            w: 28,
        },
        out_c: 64,
        kernel: 3,
        stride: 1,
        pad: 1,
        groups: 64,
    },
    ConvCase {
        name: "pointwise_64x28x28_to_128",
        input: Shape4 {
            n: 1,
            c: 64,
            h: 28,
            w: 28,
        },
        out_c: 128,
        kernel: 1,
        stride: 1,
        pad: 0,
        groups: 1,
    },
    // The 1x1 convolution with the most MACs in the PP-LCNet image classifier
    // (doc-orientation in real_models.tsv): 12.8 MMAC, K = 512 on a 7x7 map.
    ConvCase {
        name: "classifier_1x1_512x7x7_to_512",
        input: Shape4 {
            n: 1,
            c: 512,
            h: 7,
            w: 7,
        },
        out_c: 512,
        kernel: 1,
        stride: 1,
        pad: 0,
        groups: 1,
    },
    // The dense convolution with the most MACs in the PP-OCRv4 text detector
    // (ocr-det in real_models.tsv): 132 MMAC, K = 864.
    ConvCase {
        name: "detector_3x3_96x40x160_to_24",
        input: Shape4 {
            n: 1,
            c: 96,
            h: 40,
            w: 160,
        },
        out_c: 24,
        kernel: 3,
        stride: 1,
        pad: 1,
        groups: 1,
    },
];

fn conv(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv2d_s8");
    for case in CONV_CASES {
        let (window, out_shape) = (case.window(), case.output());
        let taps = case.input.c / case.groups * case.kernel * case.kernel;
        let input = values(case.input.len(), 1);
        let weights: Vec<i8> = values(case.out_c * taps, 2)
            .into_iter()
            .map(|w| w.max(-127))
            .collect();
        let bias: Vec<i32> = (0..case.out_c as i32).map(|i| i * 37 - 500).collect();
        let requant: Vec<Requant> = (0..case.out_c)
            .map(|i| Requant::from_real(0.0008 + 0.00001 * i as f64))
            .collect();
        let quant = ConvS8Quant {
            input_zero_point: -3,
            output_zero_point: 5,
            requant: &requant,
            act_min: -128,
            act_max: 127,
        };
        let args = ConvS8Args {
            input: &input,
            weights: &weights,
            bias: &bias,
            geometry: ConvGeometry {
                in_shape: case.input,
                out_shape,
                window,
                groups: case.groups,
            },
            quant,
        };
        let mut scratch = vec![0i8; conv2d_s8_fast_scratch_len_fast(&args.geometry)];
        let mut reference = vec![0i8; out_shape.len()];
        let mut fast = vec![0i8; out_shape.len()];
        let run_reference = |out: &mut [i8]| conv2d_s8(&args, out);
        let mut run_fast = |out: &mut [i8]| conv2d_s8_fast(&args, out, &mut scratch);
        run_reference(&mut reference);
        run_fast(&mut fast);
        assert_eq!(
            reference, fast,
            "{}: fast differs from reference",
            case.name
        );
        group.throughput(Throughput::Elements(case.macs()));
        group.bench_function(format!("{}/reference", case.name), |b| {
            b.iter(|| run_reference(black_box(&mut reference)))
        });
        group.bench_function(format!("{}/fast", case.name), |b| {
            b.iter(|| run_fast(black_box(&mut fast)))
        });
        for kind in GemmS8::ALL.into_iter().filter(|k| k.available()) {
            let mut run_gemm = |out: &mut [i8]| conv2d_s8_gemm(kind, &args, out, &mut scratch);
            let mut got = vec![0i8; out_shape.len()];
            run_gemm(&mut got);
            assert_eq!(
                reference,
                got,
                "{}: gemm-{} differs",
                case.name,
                kind.name()
            );
            group.bench_function(format!("{}/gemm-{}", case.name, kind.name()), |b| {
                b.iter(|| run_gemm(black_box(&mut got)))
            });
        }
    }
    group.finish();
}

fn fully_connected(c: &mut Criterion) {
    let mut group = c.benchmark_group("fully_connected_s8");
    let (k, n) = (3136, 128);
    let input = values(k, 3);
    let weights: Vec<i8> = values(n * k, 4).into_iter().map(|w| w.max(-127)).collect();
    let bias: Vec<i32> = (0..n as i32).map(|i| 100 - i * 3).collect();
    let requant: Vec<Requant> = (0..n)
        .map(|i| Requant::from_real(0.0005 + 0.00001 * i as f64))
        .collect();
    let quant = ConvS8Quant {
        input_zero_point: 7,
        output_zero_point: -2,
        requant: &requant,
        act_min: -2,
        act_max: 127,
    };
    let fc_args = FullyConnectedS8Args {
        input: &input,
        weights: &weights,
        bias: &bias,
        dims: FullyConnectedDims {
            rows: 1,
            in_features: k,
            out_features: n,
        },
        quant,
    };
    let mut reference = vec![0i8; n];
    let mut fast = vec![0i8; n];
    fully_connected_s8(&fc_args, &mut reference);
    fully_connected_s8_fast(&fc_args, &mut fast);
    assert_eq!(
        reference, fast,
        "fully connected: fast differs from reference"
    );
    group.throughput(Throughput::Elements((k * n) as u64));
    group.bench_function("cnn_fc1_3136_to_128/reference", |b| {
        b.iter(|| fully_connected_s8(&fc_args, black_box(&mut reference)))
    });
    group.bench_function("cnn_fc1_3136_to_128/fast", |b| {
        b.iter(|| fully_connected_s8_fast(&fc_args, black_box(&mut fast)))
    });
    for kind in GemmS8::ALL.into_iter().filter(|k| k.available()) {
        let mut got = vec![0i8; n];
        fully_connected_s8_gemm(kind, &fc_args, &mut got);
        assert_eq!(
            reference,
            got,
            "fully connected: gemm-{} differs",
            kind.name()
        );
        group.bench_function(format!("cnn_fc1_3136_to_128/gemm-{}", kind.name()), |b| {
            b.iter(|| fully_connected_s8_gemm(kind, &fc_args, black_box(&mut got)))
        });
    }
    group.finish();
}

fn max_pool(c: &mut Criterion) {
    let mut group = c.benchmark_group("max_pool2d_s8");
    let (in_shape, out_shape) = (Shape4::new(1, 32, 28, 28), Shape4::new(1, 32, 14, 14));
    let window = Window2d {
        kernel: [2, 2],
        stride: [2, 2],
        dilation: [1, 1],
        pad_begin: [0, 0],
    };
    let input = values(in_shape.len(), 5);
    let mut reference = vec![0i8; out_shape.len()];
    let mut fast = vec![0i8; out_shape.len()];
    max_pool2d_s8(
        &input,
        &PoolGeometry {
            in_shape,
            out_shape,
            window,
        },
        &mut reference,
    );
    max_pool2d_s8_fast(
        &input,
        &PoolGeometry {
            in_shape,
            out_shape,
            window,
        },
        &mut fast,
    );
    assert_eq!(reference, fast, "max pool: fast differs from reference");
    group.throughput(Throughput::Elements(in_shape.len() as u64));
    group.bench_function("cnn_pool1_32x28x28_2x2/reference", |b| {
        b.iter(|| {
            max_pool2d_s8(
                &input,
                &PoolGeometry {
                    in_shape,
                    out_shape,
                    window,
                },
                black_box(&mut reference),
            )
        })
    });
    group.bench_function("cnn_pool1_32x28x28_2x2/fast", |b| {
        b.iter(|| {
            max_pool2d_s8_fast(
                &input,
                &PoolGeometry {
                    in_shape,
                    out_shape,
                    window,
                },
                black_box(&mut fast),
            )
        })
    });
    group.finish();
}

/// Int8 binaries on the shapes mobile CNNs spend them on: an SE block's per-channel
/// Mul (`[1, 96, 24, 24] * [1, 96, 1, 1]`) and a residual Add of two such tensors.
fn binary(c: &mut Criterion) {
    let mut group = c.benchmark_group("binary_s8");
    // The last case is ocr-cls's costliest binary: a per-channel Mul on planes
    // of 192 elements, too short for the row tables.
    let cases: [(&str, BinaryOp, [usize; 4], Vec<usize>); 3] = [
        (
            "se_mul_96x24x24_by_96",
            BinaryOp::Mul,
            [1, 96, 24, 24],
            vec![1, 96, 1, 1],
        ),
        (
            "residual_add_96x24x24",
            BinaryOp::Add,
            [1, 96, 24, 24],
            vec![1, 96, 24, 24],
        ),
        (
            "se_mul_200x2x96_by_200",
            BinaryOp::Mul,
            [1, 200, 2, 96],
            vec![1, 200, 1, 1],
        ),
    ];
    for (name, op, out_shape, b_shape) in cases {
        let len: usize = out_shape.iter().product();
        let a = values(len, 11);
        let b = values(b_shape.iter().product(), 12);
        let p = BinaryS8Params::new(op, (0.05, 3), (0.02, -7), (0.04, 1), -128, 127);
        let (x, y) = (Operand::new(&a, &out_shape), Operand::new(&b, &b_shape));
        let (mut reference, mut fast) = (vec![0i8; len], vec![0i8; len]);
        binary_s8(&p, x, y, &mut reference, &out_shape);
        binary_s8_fast(&p, x, y, &mut fast, &out_shape);
        assert_eq!(reference, fast, "{name}: fast differs from reference");
        group.throughput(Throughput::Elements(len as u64));
        group.bench_function(format!("{name}/reference"), |bench| {
            bench.iter(|| binary_s8(&p, x, y, black_box(&mut reference), &out_shape))
        });
        group.bench_function(format!("{name}/fast"), |bench| {
            bench.iter(|| binary_s8_fast(&p, x, y, black_box(&mut fast), &out_shape))
        });
    }
    group.finish();
}

/// The peak the int8 convolution is measured against: a loop of the x86-64
/// AVX2 dot-product instruction alone (`vpmaddwd`, 16 multiply-adds of `i16`
/// pairs per instruction, what the panel micro-kernel issues), eight
/// independent accumulators, no loads. GMAC/s = the `Gelem/s` it prints;
/// a convolution's efficiency is its own `Gelem/s` over this one.
fn peak(c: &mut Criterion) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        const STEPS: u64 = 100_000;
        let mut group = c.benchmark_group("peak");
        group.throughput(Throughput::Elements(STEPS * 8 * 16));
        group.bench_function("avx2_vpmaddwd_loop", |b| {
            // SAFETY: AVX2 was detected just above.
            b.iter(|| unsafe { vpmaddwd_loop(black_box(STEPS)) })
        });
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vnni") {
            // 64 multiply-adds per `vpdpbusd` on a `zmm`.
            group.throughput(Throughput::Elements(STEPS * 8 * 64));
            group.bench_function("avx512_vpdpbusd_loop", |b| {
                // SAFETY: AVX-512F and AVX-512 VNNI were detected just above.
                b.iter(|| unsafe { vpdpbusd_loop(black_box(STEPS)) })
            });
        }
        group.finish();
    }
    let _ = c;
}

/// `steps` rounds of eight independent `vpdpbusd` (AVX-512 VNNI, `u8 x i8`
/// quads into `i32`, what the VNNI panel micro-kernel issues).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
fn vpdpbusd_loop(steps: u64) -> i32 {
    use std::arch::x86_64::{
        _mm512_dpbusd_epi32, _mm512_reduce_add_epi32, _mm512_set1_epi8, _mm512_setzero_si512,
    };
    let (mut x, y) = (_mm512_set1_epi8(3), _mm512_set1_epi8(-5));
    let mut acc = [_mm512_setzero_si512(); 8];
    for _ in 0..steps {
        // SAFETY: an empty asm block; it only makes `x` opaque to the
        // optimizer (no instruction, no memory), so the products are not hoisted.
        unsafe { std::arch::asm!("/* {0} */", inout(zmm_reg) x, options(pure, nomem, nostack)) };
        for a in acc.iter_mut() {
            *a = _mm512_dpbusd_epi32(*a, x, y);
        }
    }
    acc.iter()
        .fold(0, |s, &a| s.wrapping_add(_mm512_reduce_add_epi32(a)))
}

/// `steps` rounds of eight independent `vpmaddwd` + `vpaddd` pairs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn vpmaddwd_loop(steps: u64) -> i32 {
    use std::arch::x86_64::{
        _mm256_add_epi32, _mm256_extract_epi32, _mm256_madd_epi16, _mm256_set1_epi16,
        _mm256_setzero_si256,
    };
    let (mut x, y) = (_mm256_set1_epi16(3), _mm256_set1_epi16(-5));
    let mut acc = [_mm256_setzero_si256(); 8];
    for _ in 0..steps {
        // SAFETY: an empty asm block; it only makes `x` opaque to the
        // optimizer (no instruction, no memory), so the products are not hoisted.
        unsafe { std::arch::asm!("/* {0} */", inout(ymm_reg) x, options(pure, nomem, nostack)) };
        for a in acc.iter_mut() {
            *a = _mm256_add_epi32(*a, _mm256_madd_epi16(x, y));
        }
    }
    acc.iter()
        .fold(0, |s, &a| s.wrapping_add(_mm256_extract_epi32::<0>(a)))
}

criterion_group!(benches, conv, fully_connected, max_pool, binary, peak);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
