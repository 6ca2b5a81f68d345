//! Load-time validation of every tensor and op record.
//!
//! After [`validate`] succeeds, every op's tensors have the arity, dtypes and
//! shapes its kernel requires, every region lies inside the data section or the
//! planned arena with the alignment its element type needs, and no op writes a
//! region that it also reads. The interpreter relies on these facts.

use crate::error::{Error, Result, ShortName};
use crate::format::{ARENA_TENSOR_ALIGN, DATA_ALIGN, DType, MAX_RANK, NONE_INDEX, Opcode, Storage};
use crate::kernels::{self, Shape4};
use crate::model::{Model, OpInfo, Quant, TensorInfo};
use crate::ops;

/// Validates all records of `model` (whose header and tables are already in bounds).
pub(crate) fn validate(model: &Model<'_>) -> Result<()> {
    for t in 0..model.tensor_count() {
        check_tensor(model, t)?;
    }
    for i in 0..model.input_count() + model.output_count() {
        let (kind, t) = if i < model.input_count() {
            ("input", model.input_tensor(i))
        } else {
            ("output", model.output_tensor(i - model.input_count()))
        };
        let info = t.and_then(|t| model.tensor(t)).ok_or(Error::BadHeader {
            field: kind,
            value: i as u64,
            why: "model input/output names a tensor that does not exist",
        })?;
        if info.storage != Storage::Arena {
            return Err(
                model.bad_tensor(info.index, "a model input or output must live in the arena")
            );
        }
    }
    for op in 0..model.op_count() {
        let info = model.raw_op(op).map_err(|(code, why)| match why {
            "unknown opcode" => Error::UnknownOpcode {
                op,
                code,
                runtime: crate::VERSION,
            },
            _ => Error::BadOp {
                op,
                name: ShortName::new(""),
                opcode: "?",
                why,
            },
        })?;
        OpCheck { model, op: info }.check()?;
    }
    Ok(())
}

fn check_tensor(model: &Model<'_>, index: usize) -> Result<()> {
    let bad = |why| model.bad_tensor(index, why);
    let t = model.raw_tensor(index).map_err(bad)?;
    let elements = t
        .shape()
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad("element count overflows"))?;
    if elements.checked_mul(t.dtype.size()) != Some(t.byte_len) {
        return Err(bad("byte length does not match shape x element size"));
    }
    let end = t
        .offset
        .checked_add(t.byte_len)
        .ok_or_else(|| bad("offset overflows"))?;
    match t.storage {
        Storage::Constant => {
            if t.offset % DATA_ALIGN != 0 {
                return Err(bad("constant data is not 64-byte aligned"));
            }
            if end > model.data().len() {
                return Err(bad("constant data lies outside the data section"));
            }
        }
        Storage::Arena => {
            if t.offset % ARENA_TENSOR_ALIGN != 0 {
                return Err(bad("arena offset is not 16-byte aligned"));
            }
            if end > model.planned_arena_size() {
                return Err(bad("arena region lies outside the planned arena"));
            }
        }
    }
    match t.quant {
        Quant::None => {}
        Quant::PerTensor { scale, zero_point } => {
            if !(scale.is_finite() && scale > 0.0 && (-128..=127).contains(&zero_point)) {
                return Err(bad(
                    "quantization scale must be finite and positive, zero point in [-128, 127]",
                ));
            }
        }
        Quant::PerChannel { scales } => {
            let s = model
                .raw_tensor(scales)
                .map_err(|_| bad("per-channel scales tensor does not exist"))?;
            if s.dtype != DType::F32
                || s.storage != Storage::Constant
                || t.rank == 0
                || s.len() != t.dims[0]
            {
                return Err(bad(
                    "per-channel scales must be an f32 constant with one value per channel",
                ));
            }
        }
    }
    Ok(())
}

struct OpCheck<'m, 'a> {
    model: &'m Model<'a>,
    op: OpInfo<'m>,
}

type Check<T> = core::result::Result<T, &'static str>;

impl<'m> OpCheck<'m, '_> {
    fn check(&self) -> Result<()> {
        self.check_inner().map_err(|why| Error::BadOp {
            op: self.op.index,
            name: ShortName::new(self.op.name),
            opcode: self.op.opcode.name(),
            why,
        })
    }

    fn tensor(&self, index: u32) -> Check<TensorInfo<'m>> {
        self.model
            .tensor(index as usize)
            .ok_or("refers to a tensor that does not exist")
    }

    fn input(&self, k: usize) -> Check<TensorInfo<'m>> {
        match self.op.inputs.get(k) {
            Some(&NONE_INDEX) | None => Err("a required input is missing"),
            Some(&t) => self.tensor(t),
        }
    }

    fn optional_input(&self, k: usize) -> Check<Option<TensorInfo<'m>>> {
        match self.op.inputs.get(k) {
            Some(&NONE_INDEX) | None => Ok(None),
            Some(&t) => self.tensor(t).map(Some),
        }
    }

    fn output(&self) -> Check<TensorInfo<'m>> {
        if self.op.outputs.len() != 1 {
            return Err("must have exactly one output");
        }
        self.tensor(self.op.outputs[0])
    }

    fn arity(&self, min: usize, max: usize) -> Check<()> {
        let n = self.op.inputs.len();
        if n < min || n > max {
            Err("wrong number of inputs")
        } else {
            Ok(())
        }
    }

    fn check_inner(&self) -> Check<()> {
        let y = self.output()?;
        if y.storage != Storage::Arena {
            return Err("output must be an arena tensor");
        }
        self.check_no_overlap(&y)?;
        let p = self.op.params;
        match self.op.opcode {
            Opcode::Conv2d | Opcode::ConvTranspose2d => {
                self.arity(2, 4)?;
                let params = ops::ConvParams::decode(p).ok_or("bad convolution parameters")?;
                let (x, w) = (self.input(0)?, self.input(1)?);
                let (xs, ys) = (shape4(&x)?, shape4(&y)?);
                let ws = shape4(&w)?;
                let g = params.groups;
                if ws.n != ys.c || ys.c % g != 0 || xs.c != ws.c * g || xs.n != ys.n {
                    return Err("channel counts of input, weights, groups and output disagree");
                }
                if [ws.h, ws.w] != params.window.kernel {
                    return Err("weight extent differs from kernel_shape");
                }
                self.check_weighted(&x, &w, &y, ys.c, 2)?;
                if self.op.opcode == Opcode::Conv2d {
                    let need = if x.dtype == DType::I8 {
                        kernels::conv2d_s8_fast::conv2d_s8_fast_scratch_len(
                            xs,
                            &params.window,
                            g,
                            ys,
                        )
                    } else {
                        4 * kernels::conv2d_f32::conv2d_f32_scratch_len(xs, &params.window, g, ys)
                    };
                    self.check_scratch(need, x.dtype)?;
                }
            }
            Opcode::FullyConnected => {
                self.arity(2, 4)?;
                ops::FullyConnectedParams::decode(p).ok_or("bad parameters")?;
                let (x, w) = (self.input(0)?, self.input(1)?);
                if w.rank != 2 || w.dims[1] == 0 || x.len() % w.dims[1] != 0 {
                    return Err("weights must be [out, in] and the input a whole number of rows");
                }
                if y.len() != x.len() / w.dims[1] * w.dims[0] {
                    return Err("output length is not rows x out_features");
                }
                self.check_weighted(&x, &w, &y, w.dims[0], 2)?;
            }
            Opcode::MaxPool2d | Opcode::AvgPool2d => {
                self.arity(1, 1)?;
                ops::PoolParams::decode(p, self.op.opcode == Opcode::AvgPool2d)
                    .ok_or("bad pooling parameters")?;
                let x = self.input(0)?;
                let (xs, ys) = (shape4(&x)?, shape4(&y)?);
                if xs.n != ys.n || xs.c != ys.c {
                    return Err("pooling changes batch or channels");
                }
                self.same_dtype_activation(&x, &y)?;
                if x.dtype == DType::I8 && x.quant != y.quant {
                    return Err("int8 pooling needs the same quantization on input and output");
                }
            }
            Opcode::Activation => {
                self.arity(1, 1)?;
                ops::decode_activation(p).ok_or("bad activation parameters")?;
                let x = self.input(0)?;
                expect_dtype(&x, DType::F32)?;
                expect_dtype(&y, DType::F32)?;
                same_len(&x, &y)?;
            }
            Opcode::Lut => {
                self.arity(2, 2)?;
                let (x, table) = (self.input(0)?, self.input(1)?);
                expect_dtype(&x, DType::I8)?;
                expect_dtype(&y, DType::I8)?;
                expect_dtype(&table, DType::I8)?;
                if table.len() != 256 {
                    return Err("lookup table must hold 256 entries");
                }
                same_len(&x, &y)?;
            }
            Opcode::Binary => {
                self.arity(2, 2)?;
                let (a, b) = (self.input(0)?, self.input(1)?);
                match y.dtype {
                    DType::F32 => {
                        ops::BinaryF32Params::decode(p).ok_or("bad float binary parameters")?;
                    }
                    DType::I8 => {
                        let q = ops::decode_binary_s8(p).ok_or("bad int8 binary parameters")?;
                        // The parameter block repeats the tensors' zero points.
                        if (q.a_zero_point, q.b_zero_point, q.output_zero_point)
                            != (a.zero_point(), b.zero_point(), y.zero_point())
                        {
                            return Err("binary zero points differ from the tensors'");
                        }
                    }
                    DType::I32 => {
                        let q = ops::BinaryF32Params::decode(p).ok_or("bad binary parameters")?;
                        if q.op == kernels::BinaryOp::Pow {
                            return Err("Pow takes float operands");
                        }
                    }
                    _ => return Err("binary ops take f32, i8 or i32"),
                }
                expect_dtype(&a, y.dtype)?;
                expect_dtype(&b, y.dtype)?;
                broadcasts(&a, &y)?;
                broadcasts(&b, &y)?;
            }
            Opcode::Concat => {
                if self.op.inputs.is_empty() || self.op.inputs.len() > 1024 {
                    return Err("concat needs 1 to 1024 inputs");
                }
                let axis = *p.first().ok_or("missing axis")? as usize;
                if axis >= y.rank {
                    return Err("axis out of range");
                }
                let requant = p.len() == 2 + 3 * self.op.inputs.len();
                if !(p.len() == 1 || (requant && y.dtype == DType::I8)) {
                    return Err("bad concat parameters");
                }
                let mut total = 0usize;
                for k in 0..self.op.inputs.len() {
                    let x = self.input(k)?;
                    expect_dtype(&x, y.dtype)?;
                    // The parameter block repeats the tensors' zero points.
                    if requant
                        && (p[1] as i32, p[2 + 3 * k] as i32) != (y.zero_point(), x.zero_point())
                    {
                        return Err("concat zero points differ from the tensors'");
                    }
                    if x.rank != y.rank || (0..y.rank).any(|d| d != axis && x.dims[d] != y.dims[d])
                    {
                        return Err("inputs differ from the output outside the concat axis");
                    }
                    total += x.dims[axis];
                }
                if total != y.dims[axis] {
                    return Err("input lengths along the axis do not add up to the output's");
                }
            }
            Opcode::Copy => {
                self.arity(1, 1)?;
                let x = self.input(0)?;
                expect_dtype(&x, y.dtype)?;
                same_len(&x, &y)?;
            }
            Opcode::Transpose => {
                self.arity(1, 1)?;
                let x = self.input(0)?;
                expect_dtype(&x, y.dtype)?;
                if p.len() != x.rank || y.rank != x.rank {
                    return Err("permutation length differs from the rank");
                }
                let mut seen = [false; MAX_RANK];
                for (d, &axis) in p.iter().enumerate() {
                    let axis = axis as usize;
                    if axis >= x.rank || seen[axis] || y.dims[d] != x.dims[axis] {
                        return Err("not a permutation, or output shape is not the permuted input");
                    }
                    seen[axis] = true;
                }
            }
            Opcode::Pad => {
                self.arity(1, 1)?;
                let x = self.input(0)?;
                expect_dtype(&x, y.dtype)?;
                if p.len() != 2 + 2 * x.rank || y.rank != x.rank || p[0] > 2 {
                    return Err("bad pad parameters");
                }
                for d in 0..x.rank {
                    let (begin, end) = (p[2 + d] as usize, p[2 + x.rank + d] as usize);
                    if x.dims[d]
                        .checked_add(begin)
                        .and_then(|v| v.checked_add(end))
                        != Some(y.dims[d])
                    {
                        return Err("output shape is not input + pads");
                    }
                    let fits = match p[0] {
                        ops::pad_mode::REFLECT => begin < x.dims[d] && end < x.dims[d],
                        ops::pad_mode::EDGE => x.dims[d] > 0 || begin + end == 0,
                        _ => true,
                    };
                    if !fits {
                        return Err("reflect/edge padding wider than the input");
                    }
                }
            }
            Opcode::Resize => {
                self.arity(1, 1)?;
                let params = ops::ResizeParams::decode(p).ok_or("bad resize parameters")?;
                let x = self.input(0)?;
                let (xs, ys) = (shape4(&x)?, shape4(&y)?);
                if xs.n != ys.n || xs.c != ys.c || xs.h == 0 || xs.w == 0 {
                    return Err("resize changes batch/channels or reads an empty input");
                }
                self.same_dtype_activation(&x, &y)?;
                if x.dtype == DType::I8 && params.linear && x.quant != y.quant {
                    return Err(
                        "int8 linear resize needs the same quantization on input and output",
                    );
                }
            }
            Opcode::Softmax => {
                let x = self.input(0)?;
                if p.len() != 1
                    || p[0] as usize >= x.rank.max(1)
                    || x.dims != y.dims
                    || x.rank != y.rank
                {
                    return Err("bad axis, or output shape differs from input");
                }
                match x.dtype {
                    DType::F32 => {
                        self.arity(1, 1)?;
                        expect_dtype(&y, DType::F32)?;
                    }
                    DType::I8 => {
                        self.arity(2, 2)?;
                        expect_dtype(&y, DType::I8)?;
                        // The kernel writes probabilities in steps of 1/256 from -128.
                        if y.per_tensor() != Some((1.0 / 256.0, -128)) {
                            return Err(
                                "int8 softmax output must have scale 1/256, zero point -128",
                            );
                        }
                        let table = self.input(1)?;
                        expect_dtype(&table, DType::I32)?;
                        if table.len() != 256 {
                            return Err("softmax exp table must hold 256 entries");
                        }
                    }
                    _ => return Err("softmax takes f32 or i8"),
                }
            }
            Opcode::Lrn => {
                self.arity(1, 1)?;
                ops::LrnParams::decode(p).ok_or("bad LRN parameters")?;
                let x = self.input(0)?;
                expect_dtype(&x, DType::F32)?;
                expect_dtype(&y, DType::F32)?;
                shape4(&x)?;
                if x.dims != y.dims || x.rank != y.rank {
                    return Err("output shape differs from input");
                }
            }
            Opcode::MatMul => {
                self.arity(2, 2)?;
                let (a, b) = (self.input(0)?, self.input(1)?);
                expect_dtype(&a, DType::F32)?;
                expect_dtype(&b, DType::F32)?;
                expect_dtype(&y, DType::F32)?;
                if a.rank < 2 || b.rank < 2 || y.rank != a.rank.max(b.rank) {
                    return Err(
                        "MatMul operands must have rank >= 2 and the output the larger rank",
                    );
                }
                let (m, k, n) = (a.dims[a.rank - 2], a.dims[a.rank - 1], b.dims[b.rank - 1]);
                if b.dims[b.rank - 2] != k || y.dims[y.rank - 2] != m || y.dims[y.rank - 1] != n {
                    return Err("MatMul inner dimensions or output rows/columns disagree");
                }
                let out_batch = &y.dims[..y.rank - 2];
                for t in [&a, &b] {
                    let tb = &t.dims[..t.rank - 2];
                    let offset = out_batch.len() - tb.len();
                    if tb
                        .iter()
                        .enumerate()
                        .any(|(d, &v)| v != 1 && v != out_batch[d + offset])
                    {
                        return Err("MatMul batch dimensions do not broadcast to the output");
                    }
                }
            }
            Opcode::LayerNorm => {
                self.arity(1, 3)?;
                let x = self.input(0)?;
                expect_dtype(&x, DType::F32)?;
                expect_dtype(&y, DType::F32)?;
                let [axis, _eps] = p else {
                    return Err("bad layer norm parameters");
                };
                let axis = *axis as usize;
                if axis >= x.rank || x.dims != y.dims || x.rank != y.rank {
                    return Err("bad axis, or output shape differs from input");
                }
                let cols: usize = x.shape()[axis..].iter().product();
                for k in 1..3 {
                    if let Some(t) = self.optional_input(k)? {
                        expect_dtype(&t, DType::F32)?;
                        if t.len() != cols {
                            return Err("scale/bias length differs from the normalized size");
                        }
                    }
                }
            }
            Opcode::Reduce => {
                self.arity(1, 1)?;
                let x = self.input(0)?;
                expect_dtype(&x, DType::F32)?;
                expect_dtype(&y, DType::F32)?;
                let [op, mask] = p else {
                    return Err("bad reduce parameters");
                };
                ops::reduce_op(*op).ok_or("unknown reduction")?;
                if *mask >> x.rank != 0 {
                    return Err("reduction axis out of range");
                }
                let kept: usize = (0..x.rank)
                    .filter(|d| mask & (1 << d) == 0)
                    .map(|d| x.dims[d])
                    .product();
                if kept != y.len() {
                    return Err("output length is not the product of the kept axes");
                }
            }
            Opcode::Slice => {
                self.arity(1, 1)?;
                let x = self.input(0)?;
                expect_dtype(&x, y.dtype)?;
                if p.len() != 2 * x.rank || y.rank != x.rank {
                    return Err("bad slice parameters");
                }
                for d in 0..x.rank {
                    let (start, step) = (p[d] as i64, p[x.rank + d] as i32 as i64);
                    let n = y.dims[d] as i64;
                    if step == 0 && n > 1 {
                        return Err("zero slice step");
                    }
                    let last = start + (n - 1).max(0) * step;
                    let inside = |v: i64| (0..x.dims[d] as i64).contains(&v);
                    if n > 0 && !(inside(start) && inside(last)) {
                        return Err("slice reads outside the input");
                    }
                }
            }
            Opcode::Gather => {
                self.arity(2, 2)?;
                let (data, idx) = (self.input(0)?, self.input(1)?);
                expect_dtype(&data, y.dtype)?;
                expect_dtype(&idx, DType::I32)?;
                let axis = *p.first().ok_or("missing axis")? as usize;
                if p.len() != 1 || axis >= data.rank || data.rank + idx.rank - 1 != y.rank {
                    return Err("bad gather axis or output rank");
                }
                let expected = data.shape()[..axis]
                    .iter()
                    .chain(idx.shape())
                    .chain(&data.shape()[axis + 1..]);
                if !expected.eq(y.shape().iter()) {
                    return Err(
                        "gather output shape is not data[..axis] + indices + data[axis+1..]",
                    );
                }
            }
            Opcode::Where => {
                self.arity(3, 3)?;
                let (c, a, b) = (self.input(0)?, self.input(1)?, self.input(2)?);
                expect_dtype(&c, DType::I32)?;
                expect_dtype(&a, y.dtype)?;
                expect_dtype(&b, y.dtype)?;
                for t in [&c, &a, &b] {
                    broadcasts(t, &y)?;
                }
            }
            Opcode::Compare => {
                self.arity(2, 2)?;
                let (a, b) = (self.input(0)?, self.input(1)?);
                ops::compare_op(*p.first().ok_or("missing comparison")?)
                    .filter(|_| p.len() == 1)
                    .ok_or("bad comparison parameters")?;
                if !matches!(a.dtype, DType::F32 | DType::I32) {
                    return Err("comparisons take f32 or i32");
                }
                expect_dtype(&b, a.dtype)?;
                expect_dtype(&y, DType::I32)?;
                broadcasts(&a, &y)?;
                broadcasts(&b, &y)?;
            }
            Opcode::Cast => {
                self.arity(1, 1)?;
                let x = self.input(0)?;
                if !matches!(
                    (x.dtype, y.dtype),
                    (DType::F32, DType::I32) | (DType::I32, DType::F32)
                ) {
                    return Err("cast converts f32 <-> i32");
                }
                same_len(&x, &y)?;
            }
            Opcode::Expand => {
                self.arity(1, 1)?;
                let x = self.input(0)?;
                expect_dtype(&x, y.dtype)?;
                broadcasts(&x, &y)?;
            }
            Opcode::Lstm => self.check_recurrent::<3>(&y, 4, 2)?,
            Opcode::Gru => self.check_recurrent::<2>(&y, 3, 1)?,
            Opcode::Rnn => self.check_recurrent::<1>(&y, 1, 1)?,
            Opcode::Attention => {
                self.arity(3, 4)?;
                let (q, k, v) = (self.input(0)?, self.input(1)?, self.input(2)?);
                for t in [&q, &k, &v, &y] {
                    expect_dtype(t, DType::F32)?;
                    if t.rank != 4 {
                        return Err("attention tensors are [batch, heads, length, dim]");
                    }
                }
                let params = ops::AttentionParams::decode(p).ok_or("bad attention parameters")?;
                let shape = attention_shape(&q, &k, &v, params.k_transposed)?;
                if y.shape() != [shape.batch, shape.q_heads, shape.q_len, shape.v_head_dim] {
                    return Err("attention output shape is not [batch, q_heads, q_len, v_dim]");
                }
                if let Some(mask) = self.optional_input(3)? {
                    expect_dtype(&mask, DType::F32)?;
                    let full = [shape.batch, shape.q_heads, shape.q_len, shape.kv_len];
                    if mask.rank > 4
                        || mask
                            .shape()
                            .iter()
                            .rev()
                            .zip(full.iter().rev())
                            .any(|(&m, &f)| m != 1 && m != f)
                    {
                        return Err("attention mask does not broadcast to the score matrix");
                    }
                }
                let need = 4 * kernels::attention_f32::attention_f32_scratch_len(&shape);
                self.check_scratch(need, DType::F32)?;
            }
            Opcode::Quantize | Opcode::Dequantize => {
                self.arity(1, 1)?;
                let x = self.input(0)?;
                let (from, to, q) = if self.op.opcode == Opcode::Quantize {
                    (DType::F32, DType::I8, &y)
                } else {
                    (DType::I8, DType::F32, &x)
                };
                expect_dtype(&x, from)?;
                expect_dtype(&y, to)?;
                q.per_tensor()
                    .ok_or("the int8 side needs per-tensor quantization")?;
                same_len(&x, &y)?;
            }
        }
        let uses_scratch = matches!(
            self.op.opcode,
            Opcode::Conv2d | Opcode::Lstm | Opcode::Gru | Opcode::Rnn | Opcode::Attention
        );
        if !uses_scratch && self.op.scratch.is_some() {
            return Err("this op uses no scratch memory");
        }
        Ok(())
    }

    /// Dtypes, bias and requantization tables of a conv or fully connected op.
    fn check_weighted(
        &self,
        x: &TensorInfo<'_>,
        w: &TensorInfo<'_>,
        y: &TensorInfo<'_>,
        out_ch: usize,
        bias_at: usize,
    ) -> Check<()> {
        if w.storage != Storage::Constant {
            return Err("weights must be constant");
        }
        let bias = self.optional_input(bias_at)?;
        let requant = self.optional_input(bias_at + 1)?;
        match x.dtype {
            DType::F32 => {
                expect_dtype(y, DType::F32)?;
                if !matches!(w.dtype, DType::F32 | DType::F16) {
                    return Err("float ops take f32 or f16 weights");
                }
                if let Some(b) = bias {
                    expect_dtype(&b, DType::F32)?;
                    if b.len() != out_ch {
                        return Err("bias length differs from the output channels");
                    }
                }
                if requant.is_some() {
                    return Err("float ops take no requantization table");
                }
            }
            DType::I8 => {
                expect_dtype(y, DType::I8)?;
                expect_dtype(w, DType::I8)?;
                x.per_tensor()
                    .ok_or("int8 input needs per-tensor quantization")?;
                y.per_tensor()
                    .ok_or("int8 output needs per-tensor quantization")?;
                let b = bias.ok_or("int8 ops need an i32 bias")?;
                let r = requant.ok_or("int8 ops need a requantization table")?;
                expect_dtype(&b, DType::I32)?;
                expect_dtype(&r, DType::I32)?;
                if b.len() != out_ch || r.len() != 2 * out_ch {
                    return Err(
                        "bias or requantization table length differs from the output channels",
                    );
                }
                for k in 0..out_ch {
                    let shift = read_i32(self.model, &r, 2 * k + 1)
                        .ok_or("unreadable requantization table")?;
                    if !(-31..=30).contains(&shift) {
                        return Err("requantization shift outside [-31, 30]");
                    }
                }
            }
            _ => return Err("input must be f32 or i8"),
        }
        Ok(())
    }

    /// LSTM (`gates` 4, 2 state rows), GRU (3, 1) or RNN (1, 1): inputs X, W, R,
    /// B, sequence_lens, initial_h (, initial_c, P); packed output
    /// `[seq + states][dirs][batch][hidden]`.
    fn check_recurrent<const G: usize>(
        &self,
        y: &TensorInfo<'_>,
        gates: usize,
        states: usize,
    ) -> Check<()> {
        let lstm = self.op.opcode == Opcode::Lstm;
        let params =
            ops::RecurrentParams::<G>::decode(self.op.params).ok_or("bad recurrent parameters")?;
        if self.input(0)?.dtype == DType::I8 {
            return self.check_recurrent_s8(&params, y, gates, states);
        }
        self.arity(3, if lstm { 8 } else { 6 })?;
        if params.cell_shift != 0 {
            return Err("a float recurrent op has no cell shift");
        }
        let (x, w, r) = (self.input(0)?, self.input(1)?, self.input(2)?);
        expect_dtype(&x, DType::F32)?;
        expect_dtype(y, DType::F32)?;
        let dirs = params.direction.count();
        let h = params.hidden;
        if x.rank != 3 {
            return Err("recurrent input must be [seq, batch, input]");
        }
        let (seq, batch, input) = (x.dims[0], x.dims[1], x.dims[2]);
        for (t, cols) in [(&w, input), (&r, h)] {
            if t.storage != Storage::Constant || !matches!(t.dtype, DType::F32 | DType::F16) {
                return Err("recurrent weights must be f32 or f16 constants");
            }
            if t.shape() != [dirs, gates * h, cols] {
                return Err("recurrent weights are not [dirs, gates * hidden, input or hidden]");
            }
        }
        if w.dtype != r.dtype {
            return Err("W and R differ in dtype");
        }
        let bias_len = if self.op.opcode == Opcode::Gru {
            6 * h
        } else {
            gates * h
        };
        let optional = [
            (3, DType::F32, dirs * bias_len),
            (4, DType::I32, batch),
            (5, DType::F32, dirs * batch * h),
            (6, DType::F32, dirs * batch * h),
            (7, DType::F32, dirs * 3 * h),
        ];
        for (k, dtype, len) in optional {
            if let Some(t) = self.optional_input(k)? {
                expect_dtype(&t, dtype)?;
                if t.len() != len {
                    return Err("a recurrent bias, length or state input has the wrong length");
                }
            }
        }
        if y.shape() != [seq + states, dirs, batch, h] {
            return Err("packed recurrent output is not [seq + states, dirs, batch, hidden]");
        }
        let dims = kernels::recurrent::RecurrentDims {
            seq_len: seq,
            batch,
            input_size: input,
            hidden: h,
        };
        let need = 4 * match self.op.opcode {
            Opcode::Lstm => kernels::lstm_f32::lstm_f32_scratch_len(&dims),
            Opcode::Gru => kernels::gru_f32::gru_f32_scratch_len(&dims),
            _ => kernels::rnn_f32::rnn_f32_scratch_len(&dims),
        };
        self.check_scratch(need, DType::F32)
    }

    /// Int8 LSTM / GRU / RNN (see "Quantized recurrent cells" in FORMAT.md):
    /// 10 inputs X (i8), W, R (i8 per channel, `[dirs * gates * hidden, cols]`),
    /// B (i32), sequence_lens, initial_h, initial_c (f32), P (absent), requant
    /// (i32 `[dirs * gates * hidden * 4]`), tables (i32 `[2 * 513]`); default
    /// activations, no clip, no `input_forget`; packed f32 output.
    fn check_recurrent_s8<const G: usize>(
        &self,
        params: &ops::RecurrentParams<G>,
        y: &TensorInfo<'_>,
        gates: usize,
        states: usize,
    ) -> Check<()> {
        use kernels::recurrent_s8::{LUT_ENTRIES, MAX_HIDDEN_S8, MAX_INPUT_S8};
        self.arity(10, 10)?;
        let opcode = self.op.opcode;
        let dirs = params.direction.count();
        let h = params.hidden;
        let defaults: &[kernels::activation_f32::Activation] = match opcode {
            Opcode::Lstm => &kernels::lstm_f32::LstmConfig::DEFAULT_ACTIVATIONS,
            Opcode::Gru => &kernels::gru_f32::GruConfig::DEFAULT_ACTIVATIONS,
            _ => &kernels::rnn_f32::RnnConfig::DEFAULT_ACTIVATIONS,
        };
        if params.activations[..dirs]
            .iter()
            .any(|a| a[..] != *defaults)
        {
            return Err("int8 recurrent cells take the default activations only");
        }
        if params.clip.is_some() || (opcode == Opcode::Lstm && params.flag) {
            return Err("int8 recurrent cells take no clip and no input_forget");
        }
        if (opcode == Opcode::Lstm) != (params.cell_shift != 0) {
            return Err("an int8 LSTM needs a cell shift in 8..=15, GRU and RNN none");
        }
        let (x, w, r) = (self.input(0)?, self.input(1)?, self.input(2)?);
        x.per_tensor()
            .ok_or("int8 recurrent input needs per-tensor quantization")?;
        expect_dtype(y, DType::F32)?;
        if x.rank != 3 {
            return Err("recurrent input must be [seq, batch, input]");
        }
        let (seq, batch, input) = (x.dims[0], x.dims[1], x.dims[2]);
        if h > MAX_HIDDEN_S8 || input > MAX_INPUT_S8 {
            return Err("int8 recurrent cells take hidden <= 512 and input <= 65535");
        }
        let rows = dirs * gates * h;
        for (t, cols) in [(&w, input), (&r, h)] {
            if t.storage != Storage::Constant
                || t.dtype != DType::I8
                || !matches!(t.quant, Quant::PerChannel { .. })
            {
                return Err("int8 recurrent weights must be i8 per-channel constants");
            }
            if t.shape() != [rows, cols] {
                return Err(
                    "int8 recurrent weights are not [dirs * gates * hidden, input or hidden]",
                );
            }
        }
        let bias_len = if opcode == Opcode::Gru {
            6 * h
        } else {
            gates * h
        };
        let slots = [
            (3, DType::I32, dirs * bias_len),
            (4, DType::I32, batch),
            (5, DType::F32, dirs * batch * h),
            (6, DType::F32, dirs * batch * h),
        ];
        for (k, dtype, len) in slots {
            if let Some(t) = self.optional_input(k)? {
                expect_dtype(&t, dtype)?;
                if t.len() != len {
                    return Err("a recurrent bias, length or state input has the wrong length");
                }
            }
        }
        if opcode != Opcode::Lstm && self.optional_input(6)?.is_some() {
            return Err("only LSTM takes initial_c");
        }
        if self.optional_input(7)?.is_some() {
            return Err("int8 recurrent cells take no peepholes");
        }
        let (requant, tables) = (self.input(8)?, self.input(9)?);
        for t in [&requant, &tables] {
            expect_dtype(t, DType::I32)?;
            if t.storage != Storage::Constant {
                return Err("recurrent requantization and tables must be constants");
            }
        }
        if requant.len() != 4 * rows || tables.len() != 2 * LUT_ENTRIES {
            return Err("recurrent requantization or table length is wrong");
        }
        for k in 0..2 * rows {
            let shift = read_i32(self.model, &requant, 2 * k + 1)
                .ok_or("unreadable requantization table")?;
            if !(-31..=30).contains(&shift) {
                return Err("requantization shift outside [-31, 30]");
            }
        }
        let table = self
            .model
            .constant_bytes(&tables)
            .ok_or("unreadable recurrent tables")?;
        let table: &[i32] =
            bytemuck::try_cast_slice(table).map_err(|_| "unreadable recurrent tables")?;
        if !kernels::recurrent_s8::luts_in_range(table) {
            return Err("recurrent tables hold values outside the Q0.15 range");
        }
        if y.shape() != [seq + states, dirs, batch, h] {
            return Err("packed recurrent output is not [seq + states, dirs, batch, hidden]");
        }
        let dims = kernels::recurrent::RecurrentDims {
            seq_len: seq,
            batch,
            input_size: input,
            hidden: h,
        };
        let need = 4 * match opcode {
            Opcode::Lstm => kernels::lstm_s8::lstm_s8_scratch_len(&dims),
            Opcode::Gru => kernels::gru_s8::gru_s8_scratch_len(&dims),
            _ => kernels::rnn_s8::rnn_s8_scratch_len(&dims),
        };
        self.check_scratch(need, DType::F32)
    }

    fn same_dtype_activation(&self, x: &TensorInfo<'_>, y: &TensorInfo<'_>) -> Check<()> {
        if !matches!(x.dtype, DType::F32 | DType::I8) {
            return Err("takes f32 or i8");
        }
        expect_dtype(y, x.dtype)
    }

    /// The op's scratch tensor: present when `need` bytes are needed, in the arena,
    /// of `dtype`, and overlapping none of the op's inputs and outputs.
    fn check_scratch(&self, need: usize, dtype: DType) -> Check<()> {
        match self.op.scratch {
            None if need == 0 => Ok(()),
            None => Err("needs a scratch tensor"),
            Some(s) => {
                let s = self.tensor(s as u32)?;
                if s.storage != Storage::Arena || s.byte_len < need || s.dtype != dtype {
                    return Err("scratch tensor too small or of the wrong type");
                }
                for &i in self.op.inputs.iter().chain(self.op.outputs) {
                    if i != NONE_INDEX && overlaps(&s, &self.tensor(i)?) {
                        return Err("scratch overlaps the op's input or output");
                    }
                }
                Ok(())
            }
        }
    }

    /// No input of the op shares arena bytes with its output.
    fn check_no_overlap(&self, y: &TensorInfo<'_>) -> Check<()> {
        for &i in self.op.inputs {
            if i == NONE_INDEX {
                continue;
            }
            let x = self.tensor(i)?;
            if x.index == y.index || (x.storage == Storage::Arena && overlaps(&x, y)) {
                return Err("output overlaps an input in the arena");
            }
        }
        Ok(())
    }
}

fn read_i32(model: &Model<'_>, t: &TensorInfo<'_>, k: usize) -> Option<i32> {
    let b = model.constant_bytes(t)?.get(4 * k..4 * k + 4)?;
    Some(i32::from_le_bytes(b.try_into().ok()?))
}

fn overlaps(a: &TensorInfo<'_>, b: &TensorInfo<'_>) -> bool {
    a.storage == Storage::Arena
        && b.storage == Storage::Arena
        && a.byte_len > 0
        && b.byte_len > 0
        && a.offset < b.offset + b.byte_len
        && b.offset < a.offset + a.byte_len
}

fn expect_dtype(t: &TensorInfo<'_>, dtype: DType) -> Check<()> {
    if t.dtype == dtype {
        Ok(())
    } else {
        Err("a tensor has the wrong dtype for this op")
    }
}

fn same_len(a: &TensorInfo<'_>, b: &TensorInfo<'_>) -> Check<()> {
    if a.len() == b.len() {
        Ok(())
    } else {
        Err("input and output element counts differ")
    }
}

/// `x` broadcasts to `y` under numpy rules.
fn broadcasts(x: &TensorInfo<'_>, y: &TensorInfo<'_>) -> Check<()> {
    if x.rank > y.rank {
        return Err("operand has a higher rank than the output");
    }
    let offset = y.rank - x.rank;
    for d in 0..x.rank {
        if x.dims[d] != 1 && x.dims[d] != y.dims[d + offset] {
            return Err("operand shape does not broadcast to the output shape");
        }
    }
    Ok(())
}

/// The attention geometry of rank-4 Q, K, V (K `[B][H][D][L]` when transposed).
pub(crate) fn attention_shape(
    q: &TensorInfo<'_>,
    k: &TensorInfo<'_>,
    v: &TensorInfo<'_>,
    k_transposed: bool,
) -> Check<kernels::attention_f32::AttentionShape> {
    let (kv_len, k_dim) = if k_transposed {
        (k.dims[3], k.dims[2])
    } else {
        (k.dims[2], k.dims[3])
    };
    let shape = kernels::attention_f32::AttentionShape {
        batch: q.dims[0],
        q_heads: q.dims[1],
        kv_heads: k.dims[1],
        q_len: q.dims[2],
        kv_len,
        head_dim: q.dims[3],
        v_head_dim: v.dims[3],
    };
    if k.dims[0] != shape.batch
        || v.dims[0] != shape.batch
        || v.dims[1] != shape.kv_heads
        || v.dims[2] != kv_len
        || k_dim != shape.head_dim
        || shape.kv_heads == 0
        || !shape.q_heads.is_multiple_of(shape.kv_heads)
    {
        return Err("attention Q, K, V shapes disagree");
    }
    Ok(shape)
}

/// The NCHW shape of a rank-4 tensor.
pub(crate) fn shape4(t: &TensorInfo<'_>) -> Check<Shape4> {
    if t.rank != 4 {
        return Err("expects a rank-4 (NCHW) tensor");
    }
    Ok(Shape4::new(t.dims[0], t.dims[1], t.dims[2], t.dims[3]))
}
