//! What LSTM, GRU and RNN share: their parameter words, their load-time check
//! (float and int8 cells) and the sequence operands their run functions start
//! from. Each cell's own module ([`super::lstm`], [`super::gru`],
//! [`super::rnn`]) describes itself with a [`CellSpec`] and calls its kernels.

use super::activation::{decode_activation, encode_activation};
use super::check::{Check, OpCheck, expect_dtype};
use super::params::{Words, f};
use super::run::OpRun;
use crate::error::{Error, Result, ShortName};
use crate::format::{DType, Storage};
use crate::kernels::activation_f32::Activation;
use crate::kernels::recurrent::{Direction, RecurrentDims, SequenceInputs};
use crate::kernels::recurrent_s8::{self, RecurrentS8Weights};
use crate::model::{Quant, TensorInfo};

/// Float "no clip" marker of the recurrent ops' clip word.
const NO_CLIP: u32 = f32::NAN.to_bits();

fn direction_code(d: Direction) -> u32 {
    match d {
        Direction::Forward => 0,
        Direction::Reverse => 1,
        Direction::Bidirectional => 2,
    }
}

fn direction(code: u32) -> Option<Direction> {
    Some(match code {
        0 => Direction::Forward,
        1 => Direction::Reverse,
        2 => Direction::Bidirectional,
        _ => return None,
    })
}

/// Parameters shared by the recurrent ops (LSTM, GRU, RNN): direction, hidden
/// size, cell clip, a per-op flag (LSTM `input_forget`, GRU `linear_before_reset`)
/// and `G` activations per direction (3 words each), `4 + 6 * G` words; an int8
/// LSTM appends one word, its cell-state shift (8..=15; the cell scale is
/// `2^-cell_shift`).
///
/// Inputs, float: X, W, R, B, sequence_lens, initial_h (, initial_c, P for LSTM).
/// Inputs, int8 (X is i8; see "Quantized recurrent cells" in FORMAT.md): 10
/// slots for every cell: X (i8, per tensor), W and R (i8, per channel), B (i32
/// Q3.12: `[dirs][gates * hidden]`, GRU `[dirs][6 * hidden]`), sequence_lens,
/// initial_h and initial_c (f32; initial_c LSTM only), P (absent), requant
/// (i32 `[dirs][gates * hidden][4]`), tables (i32 `[2][513]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecurrentParams<const G: usize> {
    /// Forward, reverse or both.
    pub direction: Direction,
    /// Hidden size.
    pub hidden: usize,
    /// Cell clip threshold.
    pub clip: Option<f32>,
    /// LSTM `input_forget` / GRU `linear_before_reset` (0 for RNN).
    pub flag: bool,
    /// Activations of direction 0 and 1.
    pub activations: [[Activation; G]; 2],
    /// Int8 LSTM: cell-state shift (scale `2^-cell_shift`, 8..=15); 0 for float
    /// ops, GRU and RNN (then no word is written).
    pub cell_shift: u32,
}

impl<const G: usize> RecurrentParams<G> {
    /// Appends the parameter words.
    pub fn encode(&self, out: &mut impl Words) {
        out.word(direction_code(self.direction));
        out.word(self.hidden as u32);
        out.word(self.clip.map_or(NO_CLIP, f32::to_bits));
        out.word(self.flag as u32);
        for dir in &self.activations {
            for &act in dir {
                encode_activation(act, out);
            }
        }
        if self.cell_shift != 0 {
            out.word(self.cell_shift);
        }
    }
    /// Decodes; `None` on a wrong word count, code, a zero hidden size or a cell
    /// shift outside 8..=15.
    pub fn decode(p: &[u32]) -> Option<Self> {
        let cell_shift = match p.len().checked_sub(4 + 6 * G)? {
            0 => 0,
            1 if recurrent_s8::CELL_SHIFTS.contains(&p[4 + 6 * G]) => p[4 + 6 * G],
            _ => return None,
        };
        if p[1] == 0 || p[3] > 1 {
            return None;
        }
        let clip = f(p[2]);
        let mut activations = [[Activation::Relu; G]; 2];
        for (d, dir) in activations.iter_mut().enumerate() {
            for (k, act) in dir.iter_mut().enumerate() {
                let at = 4 + 3 * (d * G + k);
                *act = decode_activation(&p[at..at + 3])?;
            }
        }
        Some(RecurrentParams {
            direction: direction(p[0])?,
            hidden: p[1] as usize,
            clip: (!clip.is_nan()).then_some(clip),
            flag: p[3] == 1,
            activations,
            cell_shift,
        })
    }
}

/// How one recurrent cell differs from the others, for the shared check.
pub(crate) struct CellSpec {
    /// Gate rows per hidden unit in W and R (LSTM 4, GRU 3, RNN 1).
    pub gates: usize,
    /// State rows after the sequence in the packed output (LSTM 2: Y_h, Y_c).
    pub states: usize,
    /// Bias values per hidden unit and direction (GRU 6: Wb and Rb of 3 gates).
    pub bias_per_hidden: usize,
    /// LSTM: takes initial_c and peepholes (8 float inputs, not 6), and an
    /// int8 cell-state shift.
    pub lstm: bool,
    /// The ONNX default activations, the only ones the int8 cell takes.
    pub default_activations: &'static [Activation],
    /// f32 scratch elements of the float kernel.
    pub f32_scratch_len: fn(&RecurrentDims) -> usize,
    /// i32 scratch elements of the int8 kernel.
    pub s8_scratch_len: fn(&RecurrentDims) -> usize,
}

/// The check of a recurrent op with `G` activations per direction:
/// inputs X, W, R, B, sequence_lens, initial_h (, initial_c, P); packed output
/// `[seq + states][dirs][batch][hidden]`.
pub(crate) fn check_recurrent<const G: usize>(op: &OpCheck<'_, '_>, cell: &CellSpec) -> Check<()> {
    let params = RecurrentParams::<G>::decode(op.params()).ok_or("bad recurrent parameters")?;
    if op.input(0)?.dtype == DType::I8 {
        return check_recurrent_s8(op, cell, &params);
    }
    op.arity(3, if cell.lstm { 8 } else { 6 })?;
    if params.cell_shift != 0 {
        return Err("a float recurrent op has no cell shift");
    }
    let (x, w, r, y) = (op.input(0)?, op.input(1)?, op.input(2)?, op.output()?);
    expect_dtype(&x, DType::F32)?;
    expect_dtype(&y, DType::F32)?;
    let (dirs, h) = (params.direction.count(), params.hidden);
    let dims = sequence_dims(&x, h)?;
    for (t, cols) in [(&w, dims.input_size), (&r, h)] {
        if t.storage != Storage::Constant || !matches!(t.dtype, DType::F32 | DType::F16) {
            return Err("recurrent weights must be f32 or f16 constants");
        }
        if t.shape() != [dirs, cell.gates * h, cols] {
            return Err("recurrent weights are not [dirs, gates * hidden, input or hidden]");
        }
    }
    if w.dtype != r.dtype {
        return Err("W and R differ in dtype");
    }
    let batch = dims.batch;
    let optional = [
        (3, DType::F32, dirs * cell.bias_per_hidden * h),
        (4, DType::I32, batch),
        (5, DType::F32, dirs * batch * h),
        (6, DType::F32, dirs * batch * h),
        (7, DType::F32, dirs * 3 * h),
    ];
    check_optional_inputs(op, &optional)?;
    check_packed_output(&y, cell, dirs, &dims)?;
    op.check_scratch(4 * (cell.f32_scratch_len)(&dims), DType::F32)
}

/// Int8 LSTM / GRU / RNN (see "Quantized recurrent cells" in FORMAT.md):
/// 10 inputs X (i8), W, R (i8 per channel, `[dirs * gates * hidden, cols]`),
/// B (i32), sequence_lens, initial_h, initial_c (f32), P (absent), requant
/// (i32 `[dirs * gates * hidden * 4]`), tables (i32 `[2 * 513]`); default
/// activations, no clip, no `input_forget`; packed f32 output.
fn check_recurrent_s8<const G: usize>(
    op: &OpCheck<'_, '_>,
    cell: &CellSpec,
    params: &RecurrentParams<G>,
) -> Check<()> {
    use recurrent_s8::{LUT_ENTRIES, MAX_HIDDEN_S8, MAX_INPUT_S8};
    op.arity(10, 10)?;
    let (dirs, h) = (params.direction.count(), params.hidden);
    if params.activations[..dirs]
        .iter()
        .any(|a| a[..] != *cell.default_activations)
    {
        return Err("int8 recurrent cells take the default activations only");
    }
    if params.clip.is_some() || (cell.lstm && params.flag) {
        return Err("int8 recurrent cells take no clip and no input_forget");
    }
    if cell.lstm != (params.cell_shift != 0) {
        return Err("an int8 LSTM needs a cell shift in 8..=15, GRU and RNN none");
    }
    let (x, w, r, y) = (op.input(0)?, op.input(1)?, op.input(2)?, op.output()?);
    x.per_tensor()
        .ok_or("int8 recurrent input needs per-tensor quantization")?;
    expect_dtype(&y, DType::F32)?;
    let dims = sequence_dims(&x, h)?;
    if h > MAX_HIDDEN_S8 || dims.input_size > MAX_INPUT_S8 {
        return Err("int8 recurrent cells take hidden <= 512 and input <= 65535");
    }
    let rows = dirs * cell.gates * h;
    for (t, cols) in [(&w, dims.input_size), (&r, h)] {
        if t.storage != Storage::Constant
            || t.dtype != DType::I8
            || !matches!(t.quant, Quant::PerChannel { .. })
        {
            return Err("int8 recurrent weights must be i8 per-channel constants");
        }
        if t.shape() != [rows, cols] {
            return Err("int8 recurrent weights are not [dirs * gates * hidden, input or hidden]");
        }
    }
    let batch = dims.batch;
    let slots = [
        (3, DType::I32, dirs * cell.bias_per_hidden * h),
        (4, DType::I32, batch),
        (5, DType::F32, dirs * batch * h),
        (6, DType::F32, dirs * batch * h),
    ];
    check_optional_inputs(op, &slots)?;
    if !cell.lstm && op.optional_input(6)?.is_some() {
        return Err("only LSTM takes initial_c");
    }
    if op.optional_input(7)?.is_some() {
        return Err("int8 recurrent cells take no peepholes");
    }
    let (requant, tables) = (op.input(8)?, op.input(9)?);
    for t in [&requant, &tables] {
        expect_dtype(t, DType::I32)?;
        if t.storage != Storage::Constant {
            return Err("recurrent requantization and tables must be constants");
        }
    }
    if requant.len() != 4 * rows || tables.len() != 2 * LUT_ENTRIES {
        return Err("recurrent requantization or table length is wrong");
    }
    op.check_requant_shifts(&requant, 2 * rows)?;
    let table = op
        .model
        .constant_bytes(&tables)
        .ok_or("unreadable recurrent tables")?;
    let table: &[i32] =
        bytemuck::try_cast_slice(table).map_err(|_| "unreadable recurrent tables")?;
    if !recurrent_s8::luts_in_range(table) {
        return Err("recurrent tables hold values outside the Q0.15 range");
    }
    check_packed_output(&y, cell, dirs, &dims)?;
    op.check_scratch(4 * (cell.s8_scratch_len)(&dims), DType::F32)
}

/// `[seq, batch, input]` of a recurrent input with `hidden` units.
fn sequence_dims(x: &TensorInfo<'_>, hidden: usize) -> Check<RecurrentDims> {
    if x.rank != 3 {
        return Err("recurrent input must be [seq, batch, input]");
    }
    Ok(RecurrentDims {
        seq_len: x.dims[0],
        batch: x.dims[1],
        input_size: x.dims[2],
        hidden,
    })
}

/// Optional inputs `(slot, dtype, length)`, when present.
fn check_optional_inputs(op: &OpCheck<'_, '_>, slots: &[(usize, DType, usize)]) -> Check<()> {
    for &(k, dtype, len) in slots {
        if let Some(t) = op.optional_input(k)? {
            expect_dtype(&t, dtype)?;
            if t.len() != len {
                return Err("a recurrent bias, length or state input has the wrong length");
            }
        }
    }
    Ok(())
}

fn check_packed_output(
    y: &TensorInfo<'_>,
    cell: &CellSpec,
    dirs: usize,
    dims: &RecurrentDims,
) -> Check<()> {
    if y.shape() != [dims.seq_len + cell.states, dirs, dims.batch, dims.hidden] {
        return Err("packed recurrent output is not [seq + states, dirs, batch, hidden]");
    }
    Ok(())
}

/// The operands every recurrent run starts from.
pub(crate) struct Sequence<'x> {
    /// X, W and R.
    pub x: TensorInfo<'x>,
    pub w: TensorInfo<'x>,
    pub r: TensorInfo<'x>,
    /// Sizes.
    pub dims: RecurrentDims,
    /// Per-batch sequence lengths (input 4), checked against `dims.seq_len`.
    pub seq_lens: Option<&'x [i32]>,
    /// Initial hidden state (input 5).
    pub initial_h: Option<&'x [f32]>,
}

impl<'x> Sequence<'x> {
    /// The kernel inputs: `x` (X's elements), the sequence lengths, initial_h
    /// (input 5) and `initial_c`.
    pub(crate) fn inputs<X>(
        &self,
        x: &'x [X],
        initial_c: Option<&'x [f32]>,
    ) -> SequenceInputs<'x, X> {
        SequenceInputs {
            x,
            seq_lens: self.seq_lens,
            initial_h: self.initial_h,
            initial_c,
        }
    }
}

impl<'x> OpRun<'x> {
    /// The sequence operands; errors with `IndexOutOfRange` on a sequence
    /// length outside `0..=seq_len` (read at run time, as it may be an input).
    pub(crate) fn sequence(&self) -> Result<Sequence<'x>> {
        let (x, w, r, y) = (self.input(0)?, self.input(1)?, self.input(2)?, self.y());
        let dims = RecurrentDims {
            seq_len: x.dims[0],
            batch: x.dims[1],
            input_size: x.dims[2],
            hidden: y.dims[3],
        };
        let seq_lens = self.read_optional::<i32>(4);
        if let Some(lens) = seq_lens
            && let Some((position, &len)) = lens
                .iter()
                .enumerate()
                .find(|&(_, &l)| l < 0 || l as usize > dims.seq_len)
        {
            let op = self.op();
            return Err(Error::IndexOutOfRange {
                op: op.index,
                name: ShortName::new(op.name),
                opcode: op.opcode.name(),
                what: "sequence length",
                value: len,
                position: u32::try_from(position).unwrap_or(u32::MAX),
                min: 0,
                limit: i32::try_from(dims.seq_len + 1).unwrap_or(i32::MAX),
            });
        }
        Ok(Sequence {
            x: *x,
            w: *w,
            r: *r,
            dims,
            seq_lens,
            initial_h: self.read_optional(5),
        })
    }

    /// The int8 cell weights (inputs 1, 2, 3, 8, 9) of a sequence.
    pub(crate) fn s8_weights(&self, s: &Sequence<'x>) -> Result<RecurrentS8Weights<'x>> {
        Ok(RecurrentS8Weights {
            w: self.read(&s.w),
            r: self.read(&s.r),
            bias: self.read_optional(3),
            requant: self.read(self.input(8)?),
            luts: self.read(self.input(9)?),
            x_zero_point: s.x.zero_point(),
        })
    }
}
