//! Int8 elementwise binaries, fast variant; bit-exact with
//! [`super::binary_s8::binary_s8`] (whose per-element [`BinaryS8Params::apply`] is
//! the definition).
//!
//! What it does differently:
//! - **One loop per op**: the element function is chosen once per call and
//!   inlined into the loops, instead of a `match` on the op per element.
//! - **Rescale tables** (Add, Sub, Max, Min): each input's rescaled value
//!   `requant.apply((x - zero_point) << left_shift)` depends on one int8 value, so
//!   it is read from a 256-entry `i32` table built per call (2 KiB of stack); only
//!   the output requantization stays per element.
//! - **Row tables**: a run of at least [`TABLE_ROW`] elements with one operand
//!   fixed (a per-channel or scalar operand) is a function of one int8 value, so it
//!   is evaluated 256 times into a table and then looked up.
//! - **Coalesced axes** ([`for_each_run`]): neighbouring axes over which both
//!   operands are laid out alike (both contiguous, or one broadcast) merge, so a per-channel operand
//!   (`[1, C, H, W] * [1, C, 1, 1]`, SE blocks) runs `C` rows of `H * W` elements
//!   with a fixed second operand, and a residual Add runs one contiguous row.
//!
//! The body is compiled twice on x86-64 (see [`super::cpu`]).

use super::binary_s8::BinaryS8Params;
use super::broadcast::for_each_run;
use super::conv2d_s8::ConvS8Quant;
use super::{BinaryOp, Operand};
use crate::quant::Requant;

super::cpu::multiversion! {
    /// `output = a op b` with numpy broadcasting; same contract as
    /// [`super::binary_s8::binary_s8`] and bit-exact with it.
    pub fn binary_s8_fast(
        params: &BinaryS8Params,
        a: Operand<i8>,
        b: Operand<i8>,
        output: &mut [i8],
        out_shape: &[usize],
    ) => binary_s8_fast_body;
}

/// The body of [`binary_s8_fast`], compiled once per instruction set.
#[inline(always)]
fn binary_s8_fast_body(
    params: &BinaryS8Params,
    a: Operand<i8>,
    b: Operand<i8>,
    output: &mut [i8],
    out_shape: &[usize],
) {
    let p = *params;
    // The output stage of every op but Div: `requant.apply(raw) + zero point`,
    // clamped; the same arithmetic as a convolution's, so its vectorized row form
    // serves too.
    let fin = Finish {
        quant: ConvS8Quant {
            input_zero_point: 0,
            output_zero_point: p.output_zero_point,
            requant: &[],
            act_min: p.act_min,
            act_max: p.act_max,
        },
        requant: p.output_requant,
    };
    match p.op {
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Max | BinaryOp::Min => {
            let ta = rescale_table(&p, p.a_requant, p.a_zero_point);
            let tb = rescale_table(&p, p.b_requant, p.b_zero_point);
            let (ta, tb) = (&ta, &tb);
            let get = |t: &[i32; 256], x: i8| t[x as u8 as usize];
            match p.op {
                BinaryOp::Add => drive(a, b, output, out_shape, &fin, |x, y| {
                    get(ta, x).saturating_add(get(tb, y))
                }),
                BinaryOp::Sub => drive(a, b, output, out_shape, &fin, |x, y| {
                    get(ta, x).saturating_sub(get(tb, y))
                }),
                BinaryOp::Max => drive(a, b, output, out_shape, &fin, |x, y| {
                    get(ta, x).max(get(tb, y))
                }),
                _ => drive(a, b, output, out_shape, &fin, |x, y| {
                    get(ta, x).min(get(tb, y))
                }),
            }
        }
        BinaryOp::Mul | BinaryOp::Pow => {
            let (za, zb) = (p.a_zero_point, p.b_zero_point);
            drive(a, b, output, out_shape, &fin, |x, y| {
                (x as i32 - za).wrapping_mul(y as i32 - zb)
            })
        }
        BinaryOp::Div => drive_per_element(a, b, output, out_shape, |x, y| p.apply(x, y)),
    }
}

/// The output stage shared by the ops: `quant.finish(requant, raw)`.
struct Finish<'a> {
    quant: ConvS8Quant<'a>,
    requant: Requant,
}

impl Finish<'_> {
    /// `out[i] = finish(raw(i))` in chunks: the raw values into a stack buffer,
    /// then the vectorized [`ConvS8Quant::finish_row`] ([`finish_chunk`]).
    #[inline(always)]
    fn rows(&self, out: &mut [i8], mut fill: impl FnMut(usize, &mut [i32])) {
        let mut buf = [0i32; CHUNK];
        for (c, o) in out.chunks_mut(CHUNK).enumerate() {
            let raw = &mut buf[..o.len()];
            fill(c * CHUNK, raw);
            finish_chunk(&self.quant, self.requant, raw, o);
        }
    }

    /// One element.
    #[inline(always)]
    fn one(&self, raw: i32) -> i8 {
        self.quant.finish(self.requant, raw)
    }
}

super::cpu::multiversion! {
    /// `out[i] = quant.finish(requant, raw[i])`: one out-of-line copy per
    /// instruction set, shared by every op and broadcast case.
    fn finish_chunk(quant: &ConvS8Quant<'_>, requant: Requant, raw: &[i32], out: &mut [i8]) => finish_chunk_body;
}

/// The body of [`finish_chunk`].
#[inline(always)]
fn finish_chunk_body(quant: &ConvS8Quant<'_>, requant: Requant, raw: &[i32], out: &mut [i8]) {
    quant.finish_row(requant, raw, out);
}

/// Raw values per chunk of [`Finish::rows`].
const CHUNK: usize = 128;

/// `requant.apply(saturate((x - zero_point) << left_shift))` for every int8 `x`,
/// indexed by `x as u8` (the Add/Sub/Max/Min input rescaling of `apply`).
fn rescale_table(
    p: &BinaryS8Params,
    requant: crate::quant::Requant,
    zero_point: i32,
) -> [i32; 256] {
    let shift = p.left_shift.clamp(0, 31);
    let mut table = [0i32; 256];
    for (i, entry) in table.iter_mut().enumerate() {
        let d = (i as u8 as i8) as i32 - zero_point;
        let widened = ((d as i64) << shift).clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        *entry = requant.apply(widened);
    }
    table
}

/// `output = finish(raw(a, b))` over every output element with numpy
/// broadcasting, on the runs of [`for_each_run`] (coalesced axes), each
/// specialized for contiguous and fixed operands.
#[inline(always)]
fn drive(
    a: Operand<i8>,
    b: Operand<i8>,
    output: &mut [i8],
    out_shape: &[usize],
    fin: &Finish<'_>,
    raw: impl Fn(i8, i8) -> i32,
) {
    let (a, a_shape, b, b_shape) = (a.data, a.shape, b.data, b.shape);
    let len: usize = out_shape.iter().product();
    debug_assert!(output.len() >= len);
    let output = &mut output[..len];
    let both = |row: &mut [i8], xs: &[i8], ys: &[i8]| {
        fin.rows(row, |at, buf| {
            let n = buf.len();
            for ((r, &x), &y) in buf.iter_mut().zip(&xs[at..at + n]).zip(&ys[at..at + n]) {
                *r = raw(x, y);
            }
        })
    };
    if a.len() == len && b.len() == len {
        both(output, a, b);
        return;
    }
    for_each_run(
        [a_shape, b_shape],
        out_shape,
        |start, n, [oa, ob], contiguous| {
            let row = &mut output[start..start + n];
            match contiguous {
                [true, true] => both(row, &a[oa..oa + n], &b[ob..ob + n]),
                [true, false] => {
                    let y = b[ob];
                    map_row(row, &a[oa..oa + n], fin, |x| raw(x, y));
                }
                [false, true] => {
                    let x = a[oa];
                    map_row(row, &b[ob..ob + n], fin, |y| raw(x, y));
                }
                [false, false] => row.fill(fin.one(raw(a[oa], b[ob]))),
            }
        },
    );
}

/// `output = f(a, b)` element by element with numpy broadcasting (Div, whose
/// output stage is its own).
#[inline(always)]
fn drive_per_element(
    a: Operand<i8>,
    b: Operand<i8>,
    output: &mut [i8],
    out_shape: &[usize],
    f: impl Fn(i8, i8) -> i8,
) {
    let (a, a_shape, b, b_shape) = (a.data, a.shape, b.data, b.shape);
    let len: usize = out_shape.iter().product();
    debug_assert!(output.len() >= len);
    for_each_run(
        [a_shape, b_shape],
        out_shape,
        |start, n, [oa, ob], contiguous| {
            for (i, o) in output[start..start + n].iter_mut().enumerate() {
                let x = a[oa + if contiguous[0] { i } else { 0 }];
                let y = b[ob + if contiguous[1] { i } else { 0 }];
                *o = f(x, y);
            }
        },
    );
}

/// Rows at least this long with one operand fixed go through a 256-entry table.
const TABLE_ROW: usize = 512;

/// `row[i] = finish(g(xs[i]))`. With one operand fixed the result is a function
/// of one int8 value: a long row evaluates it once per possible value into a
/// table and then only looks up (SE blocks' per-channel scales, scalars); a
/// shorter one runs the vectorized output stage.
#[inline(always)]
fn map_row(row: &mut [i8], xs: &[i8], fin: &Finish<'_>, g: impl Fn(i8) -> i32) {
    if row.len() >= TABLE_ROW {
        let table: [i8; 256] = core::array::from_fn(|i| fin.one(g(i as u8 as i8)));
        for (o, &x) in row.iter_mut().zip(xs) {
            *o = table[x as u8 as usize];
        }
    } else {
        fin.rows(row, |at, buf| {
            let n = buf.len();
            for (r, &x) in buf.iter_mut().zip(&xs[at..at + n]) {
                *r = g(x);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::binary_s8::binary_s8;
    use super::super::conv2d_s8::testing::XorShift;
    use super::*;
    use std::vec;
    use std::vec::Vec;

    const OPS: [BinaryOp; 6] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
    ];

    fn random_params(rng: &mut XorShift, op: BinaryOp) -> BinaryS8Params {
        let scale = |rng: &mut XorShift| 0.001 + rng.urange(1, 400) as f32 / 1000.0;
        let zp = |rng: &mut XorShift| rng.urange(0, 255) as i32 - 128;
        let (a, b, o) = (
            (scale(rng), zp(rng)),
            (scale(rng), zp(rng)),
            (scale(rng), zp(rng)),
        );
        let lo = rng.urange(0, 100) as i32 - 128;
        let hi = 127 - rng.urange(0, 100) as i32;
        BinaryS8Params::new(op, a, b, o, lo, hi)
    }

    /// Random shapes (up to rank 5, axes up to 9, operands broadcast on random
    /// axes), every op, random quantization and clamps: bit for bit against the
    /// reference kernel.
    #[test]
    fn bit_exact_with_the_reference_on_random_broadcasts() {
        let mut rng = XorShift(0xFA57);
        for case in 0..600 {
            let op = OPS[case % OPS.len()];
            let p = random_params(&mut rng, op);
            let rank = rng.urange(1, 5);
            let out_shape: Vec<usize> = (0..rank).map(|_| rng.urange(1, 9)).collect();
            let shape_of = |rng: &mut XorShift| -> Vec<usize> {
                let r = rng.urange(0, rank);
                out_shape[rank - r..]
                    .iter()
                    .map(|&d| if rng.urange(0, 2) == 0 { 1 } else { d })
                    .collect()
            };
            let (a_shape, b_shape) = if case % 5 == 0 {
                (out_shape.clone(), out_shape.clone())
            } else {
                (shape_of(&mut rng), shape_of(&mut rng))
            };
            let (a_len, b_len) = (a_shape.iter().product(), b_shape.iter().product());
            let (a, b) = (rng.i8s(a_len, -128, 127), rng.i8s(b_len, -128, 127));
            let len: usize = out_shape.iter().product();
            let (mut want, mut got) = (vec![0i8; len], vec![0i8; len]);
            let (ao, bo) = (Operand::new(&a, &a_shape), Operand::new(&b, &b_shape));
            binary_s8(&p, ao, bo, &mut want, &out_shape);
            binary_s8_fast(&p, ao, bo, &mut got, &out_shape);
            assert_eq!(
                got, want,
                "case {case} {op:?}: {a_shape:?} {b_shape:?} -> {out_shape:?}"
            );
            // The portable copy too, whatever the CPU (AVX2 machines run the other).
            got.fill(0);
            binary_s8_fast_body(&p, ao, bo, &mut got, &out_shape);
            assert_eq!(got, want, "portable, case {case}");
        }
    }

    /// The per-channel (SE block) and residual shapes the coalescing targets,
    /// with every int8 value present: planes of 240 (direct rows) and 576 (row
    /// tables) elements.
    #[test]
    fn bit_exact_on_per_channel_and_residual_shapes() {
        let mut rng = XorShift(0x5E);
        for (h, w) in [(12usize, 20usize), (24, 24)] {
            let out_shape = [1usize, 16, h, w];
            let len: usize = out_shape.iter().product();
            for op in OPS {
                let p = random_params(&mut rng, op);
                let a: Vec<i8> = (0..len).map(|i| (i % 256) as u8 as i8).collect();
                for b_shape in [
                    vec![1usize, 16, 1, 1],
                    vec![16, 1, 1],
                    out_shape.to_vec(),
                    vec![1],
                ] {
                    let b = rng.i8s(b_shape.iter().product(), -128, 127);
                    let (mut want, mut got) = (vec![0i8; len], vec![0i8; len]);
                    for (x, y) in [
                        (Operand::new(&a, &out_shape), Operand::new(&b, &b_shape)),
                        (Operand::new(&b, &b_shape), Operand::new(&a, &out_shape)),
                    ] {
                        binary_s8(&p, x, y, &mut want, &out_shape);
                        binary_s8_fast(&p, x, y, &mut got, &out_shape);
                        assert_eq!(got, want, "{op:?} with {b_shape:?} on {out_shape:?}");
                        got.fill(0);
                        binary_s8_fast_body(&p, x, y, &mut got, &out_shape);
                        assert_eq!(got, want, "portable, {op:?} with {b_shape:?}");
                    }
                }
            }
        }
    }
}
