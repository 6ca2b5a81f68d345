//! Runs a validated [`Model`] over a caller-supplied arena, with no heap allocation.
//!
//! The interpreter owns no memory of its own: activations, model inputs and
//! outputs and kernel scratch all live in the arena, at the offsets the
//! converter planned; weights are read in place from the model's bytes.

use crate::backend::{Backend, OnFailure};
use crate::error::{Error, Result, ShortName};
use crate::format::{DATA_ALIGN, DType, MAX_RANK, NONE_INDEX, Opcode, Storage};
use crate::kernels::{self, Int8Kernels, Shape4};
use crate::model::{Model, OpInfo, TensorInfo};
use crate::offload::{Offload, OffloadStats, PartitionStatus};
use crate::ops;
use crate::quant::Requant;

enum Arena<'a> {
    Borrowed(&'a mut [u8]),
    #[cfg(feature = "alloc")]
    Owned(alloc::vec::Vec<u8>),
}

impl Arena<'_> {
    // Without `alloc` the match has one arm.
    #[allow(clippy::infallible_destructuring_match)]
    fn bytes(&self) -> &[u8] {
        match self {
            Arena::Borrowed(a) => a,
            #[cfg(feature = "alloc")]
            Arena::Owned(a) => a,
        }
    }

    #[allow(clippy::infallible_destructuring_match)]
    fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Arena::Borrowed(a) => a,
            #[cfg(feature = "alloc")]
            Arena::Owned(a) => a,
        }
    }
}

/// Executes a model's ops in order over one arena.
pub struct Interpreter<'m, 'a> {
    model: &'m Model<'m>,
    arena: Arena<'a>,
    /// Offset of the 64-byte aligned start inside the arena buffer.
    base: usize,
    /// Which int8 conv / fully connected kernels run.
    int8_kernels: Int8Kernels,
    /// The offload backend and its prepared partitions, if any.
    offload: Option<Offload<'a>>,
}

/// A read-only view of a tensor's bytes with its description.
#[derive(Clone, Copy, Debug)]
pub struct TensorRef<'t> {
    /// Description.
    pub info: TensorInfo<'t>,
    /// Raw little-endian bytes.
    pub bytes: &'t [u8],
}

impl<'t> TensorRef<'t> {
    /// The elements as f32 (errors for another dtype).
    pub fn as_f32(&self) -> Result<&'t [f32]> {
        self.typed(DType::F32)
    }

    /// The elements as i8 (errors for another dtype).
    pub fn as_i8(&self) -> Result<&'t [i8]> {
        self.typed(DType::I8)
    }

    fn typed<T: bytemuck::Pod>(&self, dtype: DType) -> Result<&'t [T]> {
        if self.info.dtype != dtype {
            return Err(wrong_dtype(&self.info, dtype));
        }
        Ok(bytemuck::cast_slice(self.bytes))
    }

    /// Writes the tensor's values as f32 into `out` (exactly its element count),
    /// dequantizing int8.
    pub fn read_f32(&self, out: &mut [f32]) -> Result<()> {
        if out.len() != self.info.len() {
            return Err(Error::BufferLength {
                name: ShortName::new(self.info.name),
                expected: self.info.len(),
                got: out.len(),
            });
        }
        match self.info.dtype {
            DType::F32 => out.copy_from_slice(self.as_f32()?),
            DType::I8 => {
                let (scale, zero_point) = self.info.per_tensor().unwrap_or((1.0, 0));
                kernels::quantize::dequantize_s8_f32(self.as_i8()?, scale, zero_point, out);
            }
            DType::I32 => {
                let values: &[i32] = self.typed(DType::I32)?;
                kernels::cast::cast_i32_to_f32(values, out);
            }
            _ => return Err(wrong_dtype(&self.info, DType::F32)),
        }
        Ok(())
    }
}

/// `WrongDType` for a request of `wanted` values from `info`.
fn wrong_dtype(info: &TensorInfo<'_>, wanted: DType) -> Error {
    Error::WrongDType {
        name: ShortName::new(info.name),
        actual: info.dtype,
        wanted,
    }
}

impl<'m, 'a> Interpreter<'m, 'a> {
    /// An interpreter over `arena`, which needs at least [`Model::arena_size`] bytes
    /// (any alignment; a 64-byte aligned buffer needs only `planned_arena_size`).
    pub fn new(model: &'m Model<'m>, arena: &'a mut [u8]) -> Result<Self> {
        let base = arena.as_ptr().align_offset(DATA_ALIGN);
        let needed = model.planned_arena_size();
        if base == usize::MAX || arena.len() < base.saturating_add(needed) {
            return Err(Error::ArenaTooSmall {
                needed: model.arena_size(),
                got: arena.len(),
            });
        }
        Ok(Interpreter {
            model,
            arena: Arena::Borrowed(arena),
            base,
            int8_kernels: Int8Kernels::Fast,
            offload: None,
        })
    }

    /// An interpreter with an arena allocated on the heap (once, here).
    #[cfg(feature = "alloc")]
    pub fn with_allocated_arena(model: &'m Model<'m>) -> Result<Interpreter<'m, 'static>> {
        let buf = alloc::vec![0u8; model.arena_size()];
        let base = buf.as_ptr().align_offset(DATA_ALIGN);
        if base == usize::MAX || buf.len() < base + model.planned_arena_size() {
            return Err(Error::ArenaTooSmall {
                needed: model.arena_size(),
                got: buf.len(),
            });
        }
        Ok(Interpreter {
            model,
            arena: Arena::Owned(buf),
            base,
            int8_kernels: Int8Kernels::Fast,
            offload: None,
        })
    }

    /// An interpreter over `arena` that offloads the partitions `backend` claims
    /// (maximal runs of consecutive claimed ops, prepared here, once) and runs the
    /// rest on the CPU. `on_failure` says what a backend failure does.
    ///
    /// Errors with [`Error::Backend`] when the backend is unavailable or fails to
    /// prepare a partition and `on_failure` is [`OnFailure::Error`].
    pub fn with_backend(
        model: &'m Model<'m>,
        arena: &'a mut [u8],
        backend: &'a mut dyn Backend,
        on_failure: OnFailure,
    ) -> Result<Self> {
        let mut interpreter = Interpreter::new(model, arena)?;
        interpreter.offload = Some(Offload::prepare(model, backend, on_failure)?);
        Ok(interpreter)
    }

    /// The partitions found for the backend and whether each runs on it (empty
    /// without a backend).
    pub fn partitions(&self) -> impl Iterator<Item = PartitionStatus> + '_ {
        self.offload.iter().flat_map(|o| o.statuses())
    }

    /// Backend executions and CPU fallbacks so far.
    pub fn offload_stats(&self) -> OffloadStats {
        self.offload.as_ref().map(|o| o.stats).unwrap_or_default()
    }

    /// Chooses the int8 convolution / fully connected kernels (default
    /// [`Int8Kernels::Fast`]); for benchmarks and instruction counts, as every
    /// choice gives the same bits.
    pub fn set_int8_kernels(&mut self, kernels: Int8Kernels) {
        self.int8_kernels = kernels;
    }

    /// The model being run.
    pub fn model(&self) -> &'m Model<'m> {
        self.model
    }

    fn arena(&self) -> &[u8] {
        let a = self.arena.bytes();
        &a[self.base..self.base + self.model.planned_arena_size()]
    }

    fn arena_mut(&mut self) -> &mut [u8] {
        let (base, len) = (self.base, self.model.planned_arena_size());
        &mut self.arena.bytes_mut()[base..base + len]
    }

    fn bytes_of(&self, t: &TensorInfo<'_>) -> &[u8] {
        match t.storage {
            Storage::Arena => &self.arena()[t.offset..t.offset + t.byte_len],
            Storage::Constant => self.model.constant_bytes(t).unwrap_or(&[]),
        }
    }

    /// Model input `i`, to fill before [`Interpreter::invoke`].
    pub fn input_mut(&mut self, i: usize) -> Result<(TensorInfo<'m>, &mut [u8])> {
        let info = self.model.input(i)?;
        let bytes = &mut self.arena_mut()[info.offset..info.offset + info.byte_len];
        Ok((info, bytes))
    }

    /// Copies `values` into model input `i`, quantizing them if the input is int8.
    ///
    /// Errors with [`Error::InputShape`] when `values` has the wrong element count.
    pub fn set_input_f32(&mut self, i: usize, values: &[f32]) -> Result<()> {
        let (info, bytes) = self.input_mut(i)?;
        if values.len() != info.len() {
            let mut shape = [0u32; MAX_RANK];
            for (s, &d) in shape.iter_mut().zip(info.shape()) {
                // Dims are u32 in the file, so this never saturates.
                *s = u32::try_from(d).unwrap_or(u32::MAX);
            }
            return Err(Error::InputShape {
                index: i,
                name: ShortName::new(info.name),
                expected: info.len(),
                shape,
                got: values.len(),
            });
        }
        match info.dtype {
            DType::F32 => bytes.copy_from_slice(bytemuck::cast_slice(values)),
            DType::I8 => {
                let (scale, zero_point) = info.per_tensor().unwrap_or((1.0, 0));
                kernels::quantize::quantize_f32_s8(
                    values,
                    scale,
                    zero_point,
                    bytemuck::cast_slice_mut(bytes),
                );
            }
            // Integer inputs (token ids) given as floats holding whole numbers.
            DType::I32 => kernels::cast::cast_f32_to_i32(values, bytemuck::cast_slice_mut(bytes)),
            _ => return Err(wrong_dtype(&info, DType::F32)),
        }
        Ok(())
    }

    /// Model output `i` after [`Interpreter::invoke`].
    pub fn output(&self, i: usize) -> Result<TensorRef<'_>> {
        let info = self.model.output(i)?;
        Ok(TensorRef {
            info,
            bytes: self.bytes_of(&info),
        })
    }

    /// Runs every op once. Performs no heap allocation.
    pub fn invoke(&mut self) -> Result<()> {
        self.invoke_observed(|_, _| {})
    }

    /// Runs every op, calling `observe(op, output)` after each op for its output
    /// (used by calibration and debugging tools).
    pub fn invoke_observed(
        &mut self,
        mut observe: impl FnMut(&OpInfo<'_>, TensorRef<'_>),
    ) -> Result<()> {
        let mut on_backend_until = 0;
        for index in 0..self.model.op_count() {
            let op = self.model.op(index).ok_or(Error::BadOp {
                op: index,
                name: ShortName::new(""),
                opcode: "?",
                why: "unreadable op record",
            })?;
            let (model, kernels) = (self.model, self.int8_kernels);
            if index >= on_backend_until
                && let Some(status) = self.offload.as_ref().and_then(|o| o.starting_at(index))
            {
                let (base, len) = (self.base, model.planned_arena_size());
                let arena = &mut self.arena.bytes_mut()[base..base + len];
                if let Some(offload) = self.offload.as_mut()
                    && offload.execute(model, arena, status)?
                {
                    on_backend_until = status.end_op;
                }
            }
            if index >= on_backend_until {
                run_op(model, self.arena_mut(), kernels, &op)?;
            }
            let y = self.tensor(op.outputs[0])?;
            observe(
                &op,
                TensorRef {
                    info: y,
                    bytes: self.bytes_of(&y),
                },
            );
        }
        Ok(())
    }

    fn tensor(&self, index: u32) -> Result<TensorInfo<'m>> {
        tensor_of(self.model, index)
    }
}

/// Tensor `index` of `model`, or `BadTensor`.
pub(crate) fn tensor_of<'m>(model: &'m Model<'m>, index: u32) -> Result<TensorInfo<'m>> {
    model.tensor(index as usize).ok_or(Error::BadTensor {
        tensor: index as usize,
        name: ShortName::new(""),
        why: "missing tensor record",
    })
}

/// Runs one op over `arena` (the planned region: offset 0 is the plan's 0) with the
/// chosen int8 kernels. Shared by the interpreter and the loopback backend.
pub(crate) fn run_op<'m>(
    model: &'m Model<'m>,
    arena: &mut [u8],
    int8_kernels: Int8Kernels,
    op: &OpInfo<'m>,
) -> Result<()> {
    let bad = |why| Error::BadOp {
        op: op.index,
        name: ShortName::new(op.name),
        opcode: op.opcode.name(),
        why,
    };
    let mut inputs: [Option<TensorInfo<'m>>; OP_INPUT_SLOTS] = [None; OP_INPUT_SLOTS];
    for (slot, &t) in inputs.iter_mut().zip(op.inputs) {
        if t != NONE_INDEX {
            *slot = Some(tensor_of(model, t)?);
        }
    }
    let y = tensor_of(model, op.outputs[0])?;
    let scratch = match op.scratch {
        Some(s) => Some(tensor_of(model, s as u32)?),
        None => None,
    };
    let mem = OpMemory::new(model, arena);
    let x = inputs[0].ok_or_else(|| bad("missing input"))?;
    let p = op.params;
    match op.opcode {
        Opcode::Conv2d | Opcode::ConvTranspose2d => {
            let params = ops::ConvParams::decode(p).ok_or_else(|| bad("bad parameters"))?;
            let w = inputs[1].ok_or_else(|| bad("missing weights"))?;
            let (xs, ys) = (shape4(&x), shape4(&y));
            let out = mem.output(&y);
            match x.dtype {
                DType::I8 => {
                    let (bias, quant) = s8_quant(&mem, &inputs, &x, &y, params.clamp)
                        .ok_or_else(|| bad("missing bias or requant"))?;
                    let (xv, wv, yv) = (mem.typed(&x), mem.typed(&w), cast_mut(out));
                    if op.opcode == Opcode::Conv2d {
                        let scratch: &mut [i8] =
                            scratch.map(|s| cast_mut(mem.output(&s))).unwrap_or(&mut []);
                        let (window, groups) = (&params.window, params.groups);
                        match int8_kernels {
                            Int8Kernels::Fast => kernels::conv2d_s8_fast::conv2d_s8_fast(
                                xv, xs, wv, bias, window, groups, &quant, yv, ys, scratch,
                            ),
                            Int8Kernels::Reference => kernels::conv2d_s8::conv2d_s8(
                                xv, xs, wv, bias, window, groups, &quant, yv, ys,
                            ),
                            Int8Kernels::Gemm(kind) => kernels::conv2d_s8_fast::conv2d_s8_gemm(
                                kind, xv, xs, wv, bias, window, groups, &quant, yv, ys, scratch,
                            ),
                        }
                    } else {
                        kernels::conv_transpose2d_s8::conv_transpose2d_s8(
                            xv,
                            xs,
                            wv,
                            bias,
                            &params.window,
                            params.groups,
                            &quant,
                            yv,
                            ys,
                        );
                    }
                }
                _ => {
                    let bias: Option<&[f32]> = inputs[2].map(|b| mem.typed(&b));
                    let clamp = params.clamp.as_f32();
                    let (xv, yv): (&[f32], &mut [f32]) = (mem.typed(&x), cast_mut(out));
                    macro_rules! float_conv {
                        ($w:ty) => {{
                            let wv: &[$w] = mem.typed(&w);
                            if op.opcode == Opcode::Conv2d {
                                let scratch: &mut [f32] =
                                    scratch.map(|s| cast_mut(mem.output(&s))).unwrap_or(&mut []);
                                kernels::conv2d_f32::conv2d_f32(
                                    xv,
                                    xs,
                                    wv,
                                    bias,
                                    &params.window,
                                    params.groups,
                                    clamp,
                                    yv,
                                    ys,
                                    scratch,
                                );
                            } else {
                                kernels::conv_transpose2d_f32::conv_transpose2d_f32(
                                    xv,
                                    xs,
                                    wv,
                                    bias,
                                    &params.window,
                                    params.groups,
                                    clamp,
                                    yv,
                                    ys,
                                );
                            }
                        }};
                    }
                    if w.dtype == DType::F16 {
                        float_conv!(half::f16)
                    } else {
                        float_conv!(f32)
                    }
                }
            }
        }
        Opcode::FullyConnected => {
            let params =
                ops::FullyConnectedParams::decode(p).ok_or_else(|| bad("bad parameters"))?;
            let w = inputs[1].ok_or_else(|| bad("missing weights"))?;
            let (n, k) = (w.dims[0], w.dims[1]);
            let rows = x.len() / k.max(1);
            let out = mem.output(&y);
            match x.dtype {
                DType::I8 => {
                    let (bias, quant) = s8_quant(&mem, &inputs, &x, &y, params.clamp)
                        .ok_or_else(|| bad("missing bias or requant"))?;
                    let (xv, wv, yv) = (mem.typed(&x), mem.typed(&w), cast_mut(out));
                    match int8_kernels {
                        Int8Kernels::Fast => {
                            kernels::fully_connected_s8_fast::fully_connected_s8_fast(
                                xv, rows, k, wv, n, bias, &quant, yv,
                            )
                        }
                        Int8Kernels::Reference => kernels::fully_connected_s8::fully_connected_s8(
                            xv, rows, k, wv, n, bias, &quant, yv,
                        ),
                        Int8Kernels::Gemm(kind) => {
                            kernels::fully_connected_s8_fast::fully_connected_s8_gemm(
                                kind, xv, rows, k, wv, n, bias, &quant, yv,
                            )
                        }
                    }
                }
                _ => {
                    let bias: Option<&[f32]> = inputs[2].map(|b| mem.typed(&b));
                    let clamp = params.clamp.as_f32();
                    if w.dtype == DType::F16 {
                        let wv: &[half::f16] = mem.typed(&w);
                        kernels::fully_connected_f32::fully_connected_f32(
                            mem.typed(&x),
                            rows,
                            k,
                            wv,
                            n,
                            bias,
                            clamp,
                            cast_mut(out),
                        );
                    } else {
                        let wv: &[f32] = mem.typed(&w);
                        kernels::fully_connected_f32::fully_connected_f32(
                            mem.typed(&x),
                            rows,
                            k,
                            wv,
                            n,
                            bias,
                            clamp,
                            cast_mut(out),
                        );
                    }
                }
            }
        }
        Opcode::MaxPool2d | Opcode::AvgPool2d => {
            let average = op.opcode == Opcode::AvgPool2d;
            let params =
                ops::PoolParams::decode(p, average).ok_or_else(|| bad("bad parameters"))?;
            let (xs, ys, out) = (shape4(&x), shape4(&y), mem.output(&y));
            let w = &params.window;
            match (x.dtype, average) {
                (DType::I8, false) => kernels::max_pool2d_s8_fast::max_pool2d_s8_fast(
                    mem.typed(&x),
                    xs,
                    w,
                    cast_mut(out),
                    ys,
                ),
                (DType::I8, true) => kernels::avg_pool2d_s8::avg_pool2d_s8(
                    mem.typed(&x),
                    xs,
                    w,
                    params.pad_end,
                    params.count_include_pad,
                    x.zero_point(),
                    cast_mut(out),
                    ys,
                ),
                (_, false) => {
                    kernels::max_pool2d_f32::max_pool2d_f32(mem.typed(&x), xs, w, cast_mut(out), ys)
                }
                (_, true) => kernels::avg_pool2d_f32::avg_pool2d_f32(
                    mem.typed(&x),
                    xs,
                    w,
                    params.pad_end,
                    params.count_include_pad,
                    cast_mut(out),
                    ys,
                ),
            }
        }
        Opcode::Activation => {
            let act = ops::decode_activation(p).ok_or_else(|| bad("bad parameters"))?;
            kernels::activation_f32::activation_f32(act, mem.typed(&x), cast_mut(mem.output(&y)));
        }
        Opcode::Lut => {
            let table = inputs[1].ok_or_else(|| bad("missing table"))?;
            kernels::lut_s8::lut_s8(mem.typed(&x), mem.typed(&table), cast_mut(mem.output(&y)));
        }
        Opcode::Binary => {
            let b = inputs[1].ok_or_else(|| bad("missing operand"))?;
            let out = mem.output(&y);
            if y.dtype == DType::I8 {
                let params = ops::decode_binary_s8(p).ok_or_else(|| bad("bad parameters"))?;
                kernels::binary_s8::binary_s8(
                    &params,
                    mem.typed(&x),
                    x.shape(),
                    mem.typed(&b),
                    b.shape(),
                    cast_mut(out),
                    y.shape(),
                );
            } else if y.dtype == DType::I32 {
                let params =
                    ops::BinaryF32Params::decode(p).ok_or_else(|| bad("bad parameters"))?;
                kernels::binary_i32::binary_i32(
                    params.op,
                    mem.typed(&x),
                    x.shape(),
                    mem.typed(&b),
                    b.shape(),
                    cast_mut(out),
                    y.shape(),
                );
            } else {
                let params =
                    ops::BinaryF32Params::decode(p).ok_or_else(|| bad("bad parameters"))?;
                kernels::binary_f32::binary_f32(
                    params.op,
                    mem.typed(&x),
                    x.shape(),
                    mem.typed(&b),
                    b.shape(),
                    cast_mut(out),
                    y.shape(),
                    params.clamp.as_f32(),
                );
            }
        }
        Opcode::Concat => {
            let axis = p[0] as usize;
            let inner: usize = y.shape()[axis + 1..].iter().product();
            let outer: usize = y.shape()[..axis].iter().product();
            let output_block = y.dims[axis] * inner;
            let out = mem.output(&y);
            let mut offset = 0;
            for (k, &t) in op.inputs.iter().enumerate() {
                let xi = self_tensor(model, t).ok_or_else(|| bad("missing input"))?;
                let input_block = xi.dims[axis] * inner;
                if p.len() > 1 {
                    let zero_point = p[2 + 3 * k] as i32;
                    let requant = Requant {
                        multiplier: p[3 + 3 * k] as i32,
                        shift: p[4 + 3 * k] as i32,
                    };
                    kernels::concat_s8::concat_part_s8(
                        mem.typed(&xi),
                        outer,
                        input_block,
                        output_block,
                        offset,
                        zero_point,
                        requant,
                        p[1] as i32,
                        cast_mut(&mut out[..]),
                    );
                } else {
                    let size = y.dtype.size();
                    kernels::concat::concat_part(
                        mem.input(&xi),
                        outer,
                        input_block * size,
                        output_block * size,
                        offset * size,
                        &mut out[..],
                    );
                }
                offset += input_block;
            }
        }
        Opcode::Copy => mem.output(&y).copy_from_slice(mem.input(&x)),
        Opcode::Transpose => {
            let mut perm = [0usize; MAX_RANK];
            for (d, &v) in perm.iter_mut().zip(p) {
                *d = v as usize;
            }
            let perm = &perm[..x.rank];
            let out = mem.output(&y);
            match x.dtype.size() {
                1 => kernels::transpose::transpose::<u8>(mem.input(&x), x.shape(), perm, out),
                2 => kernels::transpose::transpose::<u16>(
                    mem.typed_any(&x),
                    x.shape(),
                    perm,
                    cast_mut(out),
                ),
                _ => kernels::transpose::transpose::<u32>(
                    mem.typed_any(&x),
                    x.shape(),
                    perm,
                    cast_mut(out),
                ),
            }
        }
        Opcode::Pad => {
            let rank = x.rank;
            let mut begin = [0usize; MAX_RANK];
            let mut end = [0usize; MAX_RANK];
            for d in 0..rank {
                begin[d] = p[2 + d] as usize;
                end[d] = p[2 + rank + d] as usize;
            }
            let (begin, end) = (&begin[..rank], &end[..rank]);
            let out = mem.output(&y);
            match x.dtype {
                DType::I8 => kernels::pad::pad::<i8>(
                    mem.typed(&x),
                    x.shape(),
                    begin,
                    end,
                    pad_mode(p[0], p[1] as i32 as i8),
                    cast_mut(out),
                    y.shape(),
                ),
                _ => kernels::pad::pad::<u32>(
                    mem.typed_any(&x),
                    x.shape(),
                    begin,
                    end,
                    pad_mode(p[0], p[1]),
                    cast_mut(out),
                    y.shape(),
                ),
            }
        }
        Opcode::Resize => {
            let params = ops::ResizeParams::decode(p).ok_or_else(|| bad("bad parameters"))?;
            let (xs, ys, out) = (shape4(&x), shape4(&y), mem.output(&y));
            let g = &params.geometry;
            match (x.dtype, params.linear) {
                (DType::I8, true) => {
                    kernels::resize_s8::resize_linear_s8(mem.typed(&x), xs, g, cast_mut(out), ys)
                }
                (_, true) => {
                    kernels::resize_f32::resize_linear_f32(mem.typed(&x), xs, g, cast_mut(out), ys)
                }
                (DType::I8, false) => kernels::resize_nearest::resize_nearest::<i8>(
                    mem.typed(&x),
                    xs,
                    g,
                    params.nearest,
                    cast_mut(out),
                    ys,
                ),
                (_, false) => kernels::resize_nearest::resize_nearest::<f32>(
                    mem.typed(&x),
                    xs,
                    g,
                    params.nearest,
                    cast_mut(out),
                    ys,
                ),
            }
        }
        Opcode::Softmax => {
            let axis = p[0] as usize;
            let shape = x.shape();
            let outer: usize = shape[..axis].iter().product();
            let inner: usize = shape[axis + 1..].iter().product();
            let out = mem.output(&y);
            if x.dtype == DType::I8 {
                let table = inputs[1].ok_or_else(|| bad("missing table"))?;
                kernels::softmax_s8::softmax_s8(
                    mem.typed(&x),
                    outer,
                    shape[axis],
                    inner,
                    mem.typed(&table),
                    cast_mut(out),
                );
            } else {
                kernels::softmax_f32::softmax_f32(
                    mem.typed(&x),
                    outer,
                    shape[axis],
                    inner,
                    cast_mut(out),
                );
            }
        }
        Opcode::Lrn => {
            let params = ops::LrnParams::decode(p).ok_or_else(|| bad("bad parameters"))?;
            kernels::lrn_f32::lrn_f32(
                mem.typed(&x),
                shape4(&x),
                params.size,
                params.alpha,
                params.beta,
                params.bias,
                cast_mut(mem.output(&y)),
            );
        }
        Opcode::MatMul => {
            let b = inputs[1].ok_or_else(|| bad("missing operand"))?;
            kernels::batch_matmul_f32::batch_matmul_f32(
                mem.typed(&x),
                x.shape(),
                mem.typed(&b),
                b.shape(),
                cast_mut(mem.output(&y)),
                y.shape(),
            );
        }
        Opcode::LayerNorm => {
            let axis = p[0] as usize;
            let cols: usize = x.shape()[axis..].iter().product();
            let rows = x.len().checked_div(cols).unwrap_or(0);
            let scale = inputs[1].map(|t| mem.typed::<f32>(&t));
            let bias = inputs[2].map(|t| mem.typed::<f32>(&t));
            kernels::layer_norm_f32::layer_norm_f32(
                mem.typed(&x),
                rows,
                cols,
                scale,
                bias,
                f32::from_bits(p[1]),
                cast_mut(mem.output(&y)),
            );
        }
        Opcode::Reduce => {
            let op = ops::reduce_op(p[0]).ok_or_else(|| bad("bad parameters"))?;
            kernels::reduce_f32::reduce_f32(
                op,
                mem.typed(&x),
                x.shape(),
                p[1],
                cast_mut(mem.output(&y)),
            );
        }
        Opcode::Slice => {
            let rank = x.rank;
            let mut starts = [0usize; MAX_RANK];
            let mut steps = [0isize; MAX_RANK];
            for d in 0..rank {
                starts[d] = p[d] as usize;
                steps[d] = p[rank + d] as i32 as isize;
            }
            let (starts, steps) = (&starts[..rank], &steps[..rank]);
            let out = mem.output(&y);
            match x.dtype.size() {
                1 => kernels::slice::slice::<u8>(
                    mem.input(&x),
                    x.shape(),
                    starts,
                    steps,
                    out,
                    y.shape(),
                ),
                2 => kernels::slice::slice::<u16>(
                    mem.typed_any(&x),
                    x.shape(),
                    starts,
                    steps,
                    cast_mut(out),
                    y.shape(),
                ),
                _ => kernels::slice::slice::<u32>(
                    mem.typed_any(&x),
                    x.shape(),
                    starts,
                    steps,
                    cast_mut(out),
                    y.shape(),
                ),
            }
        }
        Opcode::Gather => {
            let idx = inputs[1].ok_or_else(|| bad("missing indices"))?;
            let axis = p[0] as usize;
            let shape = x.shape();
            let outer: usize = shape[..axis].iter().product();
            let inner: usize = shape[axis + 1..].iter().product();
            let indices: &[i32] = mem.typed(&idx);
            let out = mem.output(&y);
            let result = match x.dtype.size() {
                1 => kernels::gather::gather::<u8>(
                    mem.input(&x),
                    outer,
                    shape[axis],
                    inner,
                    indices,
                    out,
                ),
                2 => kernels::gather::gather::<u16>(
                    mem.typed_any(&x),
                    outer,
                    shape[axis],
                    inner,
                    indices,
                    cast_mut(out),
                ),
                _ => kernels::gather::gather::<u32>(
                    mem.typed_any(&x),
                    outer,
                    shape[axis],
                    inner,
                    indices,
                    cast_mut(out),
                ),
            };
            result.map_err(|e| Error::IndexOutOfRange {
                op: op.index,
                name: ShortName::new(op.name),
                opcode: op.opcode.name(),
                what: "index",
                value: i32::try_from(e.index).unwrap_or(i32::MAX),
                position: u32::try_from(e.position).unwrap_or(u32::MAX),
                min: i32::try_from(shape[axis]).map_or(i32::MIN, |n| -n),
                limit: i32::try_from(shape[axis]).unwrap_or(i32::MAX),
            })?;
        }
        Opcode::Where => {
            let (a, b) = (
                inputs[1].ok_or_else(|| bad("missing operand"))?,
                inputs[2].ok_or_else(|| bad("missing operand"))?,
            );
            let cond: &[i32] = mem.typed(&x);
            let out = mem.output(&y);
            match y.dtype.size() {
                1 => kernels::where_select::where_select::<u8>(
                    cond,
                    x.shape(),
                    mem.input(&a),
                    a.shape(),
                    mem.input(&b),
                    b.shape(),
                    out,
                    y.shape(),
                ),
                2 => kernels::where_select::where_select::<u16>(
                    cond,
                    x.shape(),
                    mem.typed_any(&a),
                    a.shape(),
                    mem.typed_any(&b),
                    b.shape(),
                    cast_mut(out),
                    y.shape(),
                ),
                _ => kernels::where_select::where_select::<u32>(
                    cond,
                    x.shape(),
                    mem.typed_any(&a),
                    a.shape(),
                    mem.typed_any(&b),
                    b.shape(),
                    cast_mut(out),
                    y.shape(),
                ),
            }
        }
        Opcode::Compare => {
            let b = inputs[1].ok_or_else(|| bad("missing operand"))?;
            let cmp = ops::compare_op(p[0]).ok_or_else(|| bad("bad parameters"))?;
            let out = cast_mut(mem.output(&y));
            if x.dtype == DType::F32 {
                kernels::compare::compare::<f32>(
                    cmp,
                    mem.typed(&x),
                    x.shape(),
                    mem.typed(&b),
                    b.shape(),
                    out,
                    y.shape(),
                );
            } else {
                kernels::compare::compare::<i32>(
                    cmp,
                    mem.typed(&x),
                    x.shape(),
                    mem.typed(&b),
                    b.shape(),
                    out,
                    y.shape(),
                );
            }
        }
        Opcode::Cast => {
            let out = mem.output(&y);
            if x.dtype == DType::F32 {
                kernels::cast::cast_f32_to_i32(mem.typed(&x), cast_mut(out));
            } else {
                kernels::cast::cast_i32_to_f32(mem.typed(&x), cast_mut(out));
            }
        }
        Opcode::Expand => {
            let out = mem.output(&y);
            match x.dtype.size() {
                1 => kernels::expand::expand::<u8>(mem.input(&x), x.shape(), out, y.shape()),
                2 => kernels::expand::expand::<u16>(
                    mem.typed_any(&x),
                    x.shape(),
                    cast_mut(out),
                    y.shape(),
                ),
                _ => kernels::expand::expand::<u32>(
                    mem.typed_any(&x),
                    x.shape(),
                    cast_mut(out),
                    y.shape(),
                ),
            }
        }
        Opcode::Lstm | Opcode::Gru | Opcode::Rnn => {
            run_recurrent(op, &mem, &inputs, &y, scratch.as_ref())?;
        }
        Opcode::Attention => {
            let params = ops::AttentionParams::decode(p).ok_or_else(|| bad("bad parameters"))?;
            let (k, v) = (
                inputs[1].ok_or_else(|| bad("missing K"))?,
                inputs[2].ok_or_else(|| bad("missing V"))?,
            );
            let shape =
                crate::validate::attention_shape(&x, &k, &v, params.k_transposed).map_err(bad)?;
            let mask_info = inputs[3];
            let mask = mask_info.as_ref().map(|m| (mem.typed::<f32>(m), m.shape()));
            let scratch: &mut [f32] = scratch.map(|s| cast_mut(mem.output(&s))).unwrap_or(&mut []);
            kernels::attention_f32::attention_f32(
                &kernels::attention_f32::AttentionConfig {
                    scale: params.scale,
                    causal: params.causal,
                    k_transposed: params.k_transposed,
                },
                &shape,
                mem.typed(&x),
                mem.typed(&k),
                mem.typed(&v),
                mask,
                cast_mut(mem.output(&y)),
                scratch,
            );
        }
        Opcode::Quantize => {
            let (scale, zero_point) = y.per_tensor().ok_or_else(|| bad("output not quantized"))?;
            kernels::quantize::quantize_f32_s8(
                mem.typed(&x),
                scale,
                zero_point,
                cast_mut(mem.output(&y)),
            );
        }
        Opcode::Dequantize => {
            let (scale, zero_point) = x.per_tensor().ok_or_else(|| bad("input not quantized"))?;
            kernels::quantize::dequantize_s8_f32(
                mem.typed(&x),
                scale,
                zero_point,
                cast_mut(mem.output(&y)),
            );
        }
    }
    Ok(())
}

/// Input slots the interpreter decodes per op (int8 recurrent ops use 10; ops
/// with more inputs, Concat, read their list directly).
const OP_INPUT_SLOTS: usize = 10;

/// LSTM / GRU / RNN: checks run-time sequence lengths, then dispatches on the
/// input type (int8: the integer cells) and the weight type (f32 or f16).
fn run_recurrent<'m>(
    op: &OpInfo<'m>,
    mem: &OpMemory<'_>,
    inputs: &[Option<TensorInfo<'m>>; OP_INPUT_SLOTS],
    y: &TensorInfo<'m>,
    scratch: Option<&TensorInfo<'m>>,
) -> Result<()> {
    use kernels::recurrent::RecurrentDims;
    let bad = |why| Error::BadOp {
        op: op.index,
        name: ShortName::new(op.name),
        opcode: op.opcode.name(),
        why,
    };
    let [x, w, r, ..] = [inputs[0], inputs[1], inputs[2]];
    let (x, w, r) = (
        x.ok_or_else(|| bad("missing X"))?,
        w.ok_or_else(|| bad("missing W"))?,
        r.ok_or_else(|| bad("missing R"))?,
    );
    let f32s = |k: usize| inputs[k].map(|t| mem.typed::<f32>(&t));
    let seq_lens = inputs[4].map(|t| mem.typed::<i32>(&t));
    let dims = RecurrentDims {
        seq_len: x.dims[0],
        batch: x.dims[1],
        input_size: x.dims[2],
        hidden: y.dims[3],
    };
    if let Some(lens) = seq_lens
        && let Some((position, &len)) = lens
            .iter()
            .enumerate()
            .find(|&(_, &l)| l < 0 || l as usize > dims.seq_len)
    {
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
    let out: &mut [f32] = cast_mut(mem.output(y));
    let scratch: &mut [f32] = scratch.map(|s| cast_mut(mem.output(s))).unwrap_or(&mut []);
    let p = op.params;
    if x.dtype == DType::I8 {
        use kernels::{gru_s8, lstm_s8, rnn_s8};
        let slot = |k: usize| inputs[k].ok_or_else(|| bad("missing int8 recurrent input"));
        let weights = kernels::recurrent_s8::RecurrentS8Weights {
            w: mem.typed(&w),
            r: mem.typed(&r),
            bias: inputs[3].map(|t| mem.typed::<i32>(&t)),
            requant: mem.typed(&slot(8)?),
            luts: mem.typed(&slot(9)?),
            x_zero_point: x.zero_point(),
        };
        let (xs, scratch): (&[i8], &mut [i32]) = (mem.typed(&x), bytemuck::cast_slice_mut(scratch));
        let f32s = |k: usize| inputs[k].map(|t| mem.typed::<f32>(&t));
        match op.opcode {
            Opcode::Lstm => {
                let q =
                    ops::RecurrentParams::<3>::decode(p).ok_or_else(|| bad("bad parameters"))?;
                let cfg = lstm_s8::LstmS8Config {
                    dims,
                    direction: q.direction,
                    cell_shift: q.cell_shift,
                };
                lstm_s8::lstm_s8(&cfg, xs, &weights, seq_lens, f32s(5), f32s(6), out, scratch);
            }
            Opcode::Gru => {
                let q =
                    ops::RecurrentParams::<2>::decode(p).ok_or_else(|| bad("bad parameters"))?;
                let cfg = gru_s8::GruS8Config {
                    dims,
                    direction: q.direction,
                    linear_before_reset: q.flag,
                };
                gru_s8::gru_s8(&cfg, xs, &weights, seq_lens, f32s(5), out, scratch);
            }
            _ => {
                let q =
                    ops::RecurrentParams::<1>::decode(p).ok_or_else(|| bad("bad parameters"))?;
                let cfg = rnn_s8::RnnS8Config {
                    dims,
                    direction: q.direction,
                };
                rnn_s8::rnn_s8(&cfg, xs, &weights, seq_lens, f32s(5), out, scratch);
            }
        }
        return Ok(());
    }
    let x_data: &[f32] = mem.typed(&x);
    macro_rules! run {
        ($wt:ty) => {{
            let (wv, rv): (&[$wt], &[$wt]) = (mem.typed(&w), mem.typed(&r));
            match op.opcode {
                Opcode::Lstm => {
                    let q = ops::RecurrentParams::<3>::decode(p)
                        .ok_or_else(|| bad("bad parameters"))?;
                    kernels::lstm_f32::lstm_f32(
                        &kernels::lstm_f32::LstmConfig {
                            dims,
                            direction: q.direction,
                            activations: q.activations,
                            clip: q.clip,
                            input_forget: q.flag,
                        },
                        x_data,
                        &kernels::lstm_f32::LstmWeights {
                            w: wv,
                            r: rv,
                            bias: f32s(3),
                            peephole: f32s(7),
                        },
                        seq_lens,
                        f32s(5),
                        f32s(6),
                        out,
                        scratch,
                    );
                }
                Opcode::Gru => {
                    let q = ops::RecurrentParams::<2>::decode(p)
                        .ok_or_else(|| bad("bad parameters"))?;
                    kernels::gru_f32::gru_f32(
                        &kernels::gru_f32::GruConfig {
                            dims,
                            direction: q.direction,
                            activations: q.activations,
                            clip: q.clip,
                            linear_before_reset: q.flag,
                        },
                        x_data,
                        &kernels::gru_f32::GruWeights {
                            w: wv,
                            r: rv,
                            bias: f32s(3),
                        },
                        seq_lens,
                        f32s(5),
                        out,
                        scratch,
                    );
                }
                _ => {
                    let q = ops::RecurrentParams::<1>::decode(p)
                        .ok_or_else(|| bad("bad parameters"))?;
                    kernels::rnn_f32::rnn_f32(
                        &kernels::rnn_f32::RnnConfig {
                            dims,
                            direction: q.direction,
                            activations: q.activations,
                            clip: q.clip,
                        },
                        x_data,
                        &kernels::rnn_f32::RnnWeights {
                            w: wv,
                            r: rv,
                            bias: f32s(3),
                        },
                        seq_lens,
                        f32s(5),
                        out,
                        scratch,
                    );
                }
            }
        }};
    }
    if w.dtype == DType::F16 {
        run!(half::f16)
    } else {
        run!(f32)
    }
    Ok(())
}

fn pad_mode<T>(code: u32, value: T) -> kernels::pad::PadMode<T> {
    match code {
        ops::pad_mode::REFLECT => kernels::pad::PadMode::Reflect,
        ops::pad_mode::EDGE => kernels::pad::PadMode::Edge,
        _ => kernels::pad::PadMode::Constant(value),
    }
}

fn self_tensor<'m>(model: &'m Model<'m>, t: u32) -> Option<TensorInfo<'m>> {
    model.tensor(t as usize)
}

fn shape4(t: &TensorInfo<'_>) -> Shape4 {
    Shape4::new(t.dims[0], t.dims[1], t.dims[2], t.dims[3])
}

fn cast_mut<T: bytemuck::Pod>(bytes: &mut [u8]) -> &mut [T] {
    // Arena offsets are 16-aligned from a 64-aligned base and lengths are whole
    // elements (validated), so this cast cannot fail on a valid model.
    bytemuck::try_cast_slice_mut(bytes).unwrap_or(&mut [])
}

/// The int8 requantization inputs shared by Conv, ConvTranspose and
/// FullyConnected: bias (input 2), requantization factors (input 3), the zero
/// points and the fused clamp. `None` when input 2 or 3 is missing.
fn s8_quant<'x>(
    mem: &OpMemory<'x>,
    inputs: &[Option<TensorInfo<'_>>; OP_INPUT_SLOTS],
    x: &TensorInfo<'_>,
    y: &TensorInfo<'_>,
    clamp: ops::ClampWords,
) -> Option<(&'x [i32], kernels::conv2d_s8::ConvS8Quant<'x>)> {
    let bias: &[i32] = mem.typed(inputs[2].as_ref()?);
    let requant: &[Requant] = mem.typed(inputs[3].as_ref()?);
    let (act_min, act_max) = clamp.as_i8();
    let quant = kernels::conv2d_s8::ConvS8Quant {
        input_zero_point: x.zero_point(),
        output_zero_point: y.zero_point(),
        requant,
        act_min,
        act_max,
    };
    Some((bias, quant))
}

/// The memory one op sees: the model's constants and the arena.
///
/// Hands out a shared slice for each input and a mutable slice for the output
/// and scratch. Validation guaranteed that, within one op, the output and the
/// scratch do not overlap each other or any input, and that every region lies
/// inside the arena, so these slices never alias mutably.
struct OpMemory<'x> {
    model: &'x Model<'x>,
    arena: *mut u8,
    arena_len: usize,
    _borrow: core::marker::PhantomData<&'x mut [u8]>,
}

impl<'x> OpMemory<'x> {
    fn new(model: &'x Model<'x>, arena: &'x mut [u8]) -> Self {
        OpMemory {
            model,
            arena: arena.as_mut_ptr(),
            arena_len: arena.len(),
            _borrow: core::marker::PhantomData,
        }
    }

    fn input(&self, t: &TensorInfo<'_>) -> &'x [u8] {
        match t.storage {
            Storage::Constant => self.model.constant_bytes(t).unwrap_or(&[]),
            Storage::Arena => {
                if t.offset + t.byte_len > self.arena_len {
                    return &[];
                }
                // SAFETY: the region is inside the arena (checked above and at load);
                // the op's output and scratch, the only mutable slices alive during the
                // op, do not overlap any input (validated at load).
                unsafe { core::slice::from_raw_parts(self.arena.add(t.offset), t.byte_len) }
            }
        }
    }

    fn output(&self, t: &TensorInfo<'_>) -> &'x mut [u8] {
        if t.storage != Storage::Arena || t.offset + t.byte_len > self.arena_len {
            return &mut [];
        }
        // SAFETY: in bounds (checked above); each op asks for its output and its
        // scratch once each, and validation proved they overlap neither each other
        // nor any input, so no other live reference covers these bytes.
        unsafe { core::slice::from_raw_parts_mut(self.arena.add(t.offset), t.byte_len) }
    }

    fn typed<T: bytemuck::Pod>(&self, t: &TensorInfo<'_>) -> &'x [T] {
        bytemuck::try_cast_slice(self.input(t)).unwrap_or(&[])
    }

    fn typed_any<T: bytemuck::Pod>(&self, t: &TensorInfo<'_>) -> &'x [T] {
        self.typed(t)
    }
}
