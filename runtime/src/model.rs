//! A loaded `.tern` model: the file's bytes, borrowed (or mapped), validated once.
//!
//! [`Model::from_bytes`] checks the header, the checksum of header and tables,
//! and every tensor and op record (bounds, dtypes, shapes, parameters), so that
//! the interpreter can run kernels on the file's bytes in place without further
//! checks. Validation costs O(tensors + ops), never O(weight bytes).

use crate::error::{Error, Result, ShortName};
use crate::format::{
    self, DType, MAX_RANK, METADATA_RECORD_LEN, NONE_INDEX, OP_RECORD_LEN, Opcode, QuantKind,
    Storage, TENSOR_RECORD_LEN,
};
use crate::ops::OpResolver;

mod layout;

use layout::{Layout, parse, u16_at, u32_at, u64_at};

enum Bytes<'a> {
    Borrowed(&'a [u8]),
    #[cfg(feature = "std")]
    Mapped(memmap2::Mmap),
}

/// A validated `.tern` model whose weights are used in place.
pub struct Model<'a> {
    bytes: Bytes<'a>,
    layout: Layout,
    /// The ops this model was checked with, and runs with.
    resolver: &'a OpResolver,
}

/// Quantization parameters of a tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Quant {
    /// Not quantized.
    None,
    /// `real = scale * (q - zero_point)`.
    PerTensor {
        /// Scale.
        scale: f32,
        /// Zero point.
        zero_point: i32,
    },
    /// Symmetric per output channel (axis 0); scales in tensor `scales`.
    PerChannel {
        /// Index of the f32 constant tensor with one scale per channel.
        scales: usize,
    },
}

/// A tensor's description, decoded from its record.
#[derive(Clone, Copy, Debug)]
pub struct TensorInfo<'a> {
    /// Index in the tensor table.
    pub index: usize,
    /// Name (the ONNX tensor name).
    pub name: &'a str,
    /// Element type.
    pub dtype: DType,
    /// Dimensions; only the first `rank` are meaningful.
    pub dims: [usize; MAX_RANK],
    /// Number of dimensions.
    pub rank: usize,
    /// Arena or file data.
    pub storage: Storage,
    /// Byte offset in the arena or data section.
    pub offset: usize,
    /// Byte length.
    pub byte_len: usize,
    /// Quantization.
    pub quant: Quant,
}

impl TensorInfo<'_> {
    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        &self.dims[..self.rank]
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// True for a tensor with no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(scale, zero_point)` of a per-tensor quantized tensor.
    pub fn per_tensor(&self) -> Option<(f32, i32)> {
        match self.quant {
            Quant::PerTensor { scale, zero_point } => Some((scale, zero_point)),
            _ => None,
        }
    }

    /// The zero point (0 when not per-tensor quantized).
    pub fn zero_point(&self) -> i32 {
        self.per_tensor().map_or(0, |(_, zp)| zp)
    }
}

/// An op's description, decoded from its record.
#[derive(Clone, Copy, Debug)]
pub struct OpInfo<'a> {
    /// Index in the op table (execution order).
    pub index: usize,
    /// Operation.
    pub opcode: Opcode,
    /// Source node name.
    pub name: &'a str,
    /// Input tensor indices (`NONE_INDEX` for an absent optional input).
    pub inputs: &'a [u32],
    /// Output tensor indices.
    pub outputs: &'a [u32],
    /// Parameter words.
    pub params: &'a [u32],
    /// Scratch tensor index.
    pub scratch: Option<usize>,
}

impl<'a> Model<'a> {
    /// Validates `bytes` as a `.tern` model and borrows it (no copy).
    ///
    /// `bytes` must start at a 16-byte aligned address (an mmap, a `static` with
    /// `#[repr(align(16))]`, or [`crate::AlignedBytes`]).
    ///
    /// Every op is checked and later run by [`crate::ops::ALL`], which links
    /// every kernel; a firmware loads with [`Model::from_bytes_with`] instead.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Model<'a>> {
        Model::from_bytes_with(bytes, &crate::ops::ALL)
    }

    /// Validates `bytes` as a `.tern` model whose ops `resolver` checks and
    /// runs, and borrows it (no copy). An op the resolver lacks, or whose
    /// operand types its registration does not run, is
    /// [`Error::OpNotRegistered`].
    pub fn from_bytes_with(bytes: &'a [u8], resolver: &'a OpResolver) -> Result<Model<'a>> {
        let layout = parse(bytes)?;
        let model = Model {
            bytes: Bytes::Borrowed(bytes),
            layout,
            resolver,
        };
        crate::validate::validate(&model)?;
        Ok(model)
    }

    /// The resolver this model was checked with and runs with.
    pub fn resolver(&self) -> &'a OpResolver {
        self.resolver
    }

    /// Maps the file at `path` and validates it. Load time does not depend on the
    /// size of the weights: only the header and tables are read.
    #[cfg(feature = "std")]
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Model<'static>> {
        use std::string::ToString;
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: the map is read-only and private to this process; a concurrent
        // truncation of the file by another process could fault, as with every
        // mmapped reader. Contents are validated before use.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        let layout = parse(&map)?;
        let model = Model {
            bytes: Bytes::Mapped(map),
            layout,
            resolver: &crate::ops::ALL,
        };
        crate::validate::validate(&model)?;
        Ok(model)
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Borrowed(b) => b,
            #[cfg(feature = "std")]
            Bytes::Mapped(m) => m,
        }
    }

    /// Format version `(major, minor)` of the file.
    pub fn version(&self) -> (u16, u16) {
        (self.layout.major, self.layout.minor)
    }

    /// Bytes of arena the interpreter needs in a buffer of any alignment
    /// (the planned size plus alignment slack).
    pub fn arena_size(&self) -> usize {
        self.layout.arena_size + format::DATA_ALIGN
    }

    /// The planned arena size, for a buffer already 64-byte aligned.
    pub fn planned_arena_size(&self) -> usize {
        self.layout.arena_size
    }

    /// The data section (constant tensors).
    pub fn data(&self) -> &[u8] {
        &self.bytes()[self.layout.data..self.layout.data + self.layout.data_len]
    }

    fn string(&self, (offset, len): (u32, u32)) -> &str {
        let pool = &self.bytes()[self.layout.strings..self.layout.strings + self.layout.string_len];
        pool.get(offset as usize..offset as usize + len as usize)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    /// The converter that wrote the file.
    pub fn producer(&self) -> &str {
        self.string(self.layout.producer)
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        self.string(self.layout.name)
    }

    /// Metadata (key, value) pairs: source model, dataset, accuracy, precision...
    pub fn metadata(&self) -> impl Iterator<Item = (&str, &str)> {
        (0..self.layout.metadata_count).map(move |i| {
            let at = self.layout.metadata + i * METADATA_RECORD_LEN;
            let b = self.bytes();
            (
                self.string((u32_at(b, at), u32_at(b, at + 4))),
                self.string((u32_at(b, at + 8), u32_at(b, at + 12))),
            )
        })
    }

    /// The value of metadata `key`.
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Number of tensors.
    pub fn tensor_count(&self) -> usize {
        self.layout.tensor_count
    }

    /// Number of ops.
    pub fn op_count(&self) -> usize {
        self.layout.op_count
    }

    /// Number of model inputs.
    pub fn input_count(&self) -> usize {
        self.layout.input_count
    }

    /// Number of model outputs.
    pub fn output_count(&self) -> usize {
        self.layout.output_count
    }

    pub(crate) fn raw_tensor(
        &self,
        index: usize,
    ) -> core::result::Result<TensorInfo<'_>, &'static str> {
        if index >= self.layout.tensor_count {
            return Err("tensor index out of range");
        }
        let b = self.bytes();
        let at = self.layout.tensors + index * TENSOR_RECORD_LEN;
        let r = &b[at..at + TENSOR_RECORD_LEN];
        let name = self.string((u32_at(r, 0), u32_at(r, 4)));
        let dtype = DType::from_code(r[format::tensor::DTYPE]).ok_or("unknown dtype code")?;
        let rank = r[format::tensor::RANK] as usize;
        if rank > MAX_RANK {
            return Err("rank above 6");
        }
        let storage =
            Storage::from_code(r[format::tensor::STORAGE]).ok_or("unknown storage code")?;
        let mut dims = [0usize; MAX_RANK];
        for (k, d) in dims.iter_mut().enumerate().take(rank) {
            *d = u32_at(r, format::tensor::DIMS + 4 * k) as usize;
        }
        let quant = match QuantKind::from_code(r[format::tensor::QUANT_KIND]) {
            Some(QuantKind::None) => Quant::None,
            Some(QuantKind::PerTensor) => Quant::PerTensor {
                scale: f32::from_bits(u32_at(r, format::tensor::SCALE)),
                zero_point: u32_at(r, format::tensor::ZERO_POINT) as i32,
            },
            Some(QuantKind::PerChannel) => Quant::PerChannel {
                scales: u32_at(r, format::tensor::QUANT_SCALES) as usize,
            },
            None => return Err("unknown quantization kind"),
        };
        let offset = u64_at(r, format::tensor::OFFSET);
        let byte_len = u64_at(r, format::tensor::BYTE_LEN);
        if offset > usize::MAX as u64 / 2 || byte_len > usize::MAX as u64 / 2 {
            return Err("offset or length too large");
        }
        Ok(TensorInfo {
            index,
            name,
            dtype,
            dims,
            rank,
            storage,
            offset: offset as usize,
            byte_len: byte_len as usize,
            quant,
        })
    }

    /// Tensor `index` (validated at load, so any index below `tensor_count` works).
    pub fn tensor(&self, index: usize) -> Option<TensorInfo<'_>> {
        self.raw_tensor(index).ok()
    }

    pub(crate) fn raw_op(
        &self,
        index: usize,
    ) -> core::result::Result<OpInfo<'_>, (u16, &'static str)> {
        let b = self.bytes();
        let at = self.layout.ops + index * OP_RECORD_LEN;
        let r = &b[at..at + OP_RECORD_LEN];
        let code = u16_at(r, format::op::OPCODE);
        let opcode = Opcode::from_code(code).ok_or((code, "unknown opcode"))?;
        let pool = self.index_pool();
        let list = |start: usize, len: usize| pool.get(start..start.checked_add(len)?);
        let inputs = list(
            u32_at(r, format::op::INPUTS_START) as usize,
            u16_at(r, format::op::INPUTS_LEN) as usize,
        )
        .ok_or((code, "input list outside the index pool"))?;
        let outputs = list(
            u32_at(r, format::op::OUTPUTS_START) as usize,
            u16_at(r, format::op::OUTPUTS_LEN) as usize,
        )
        .ok_or((code, "output list outside the index pool"))?;
        let params_start = u32_at(r, format::op::PARAMS_START) as usize;
        let params = self
            .param_pool()
            .get(
                params_start
                    ..params_start.saturating_add(u32_at(r, format::op::PARAMS_LEN) as usize),
            )
            .ok_or((code, "parameters outside the parameter pool"))?;
        let scratch = match u32_at(r, format::op::SCRATCH) {
            NONE_INDEX => None,
            s => Some(s as usize),
        };
        let name = self.string((u32_at(r, format::op::NAME), u32_at(r, format::op::NAME + 4)));
        Ok(OpInfo {
            index,
            opcode,
            name,
            inputs,
            outputs,
            params,
            scratch,
        })
    }

    /// Op `index` in execution order.
    pub fn op(&self, index: usize) -> Option<OpInfo<'_>> {
        if index >= self.layout.op_count {
            return None;
        }
        self.raw_op(index).ok()
    }

    fn words(&self, start: usize, count: usize) -> &[u32] {
        // Validated at parse: in bounds and 4-byte aligned (the buffer is 16-aligned
        // and every table before the pools is a multiple of 4 bytes long).
        bytemuck::try_cast_slice(&self.bytes()[start..start + 4 * count]).unwrap_or(&[])
    }

    fn index_pool(&self) -> &[u32] {
        self.words(self.layout.index, self.layout.index_count)
    }

    fn param_pool(&self) -> &[u32] {
        self.words(self.layout.params, self.layout.param_count)
    }

    /// Tensor index of model input `i`.
    pub fn input_tensor(&self, i: usize) -> Option<usize> {
        (i < self.layout.input_count)
            .then(|| self.words(self.layout.inputs, self.layout.input_count)[i] as usize)
    }

    /// Tensor index of model output `i`.
    pub fn output_tensor(&self, i: usize) -> Option<usize> {
        (i < self.layout.output_count)
            .then(|| self.words(self.layout.outputs, self.layout.output_count)[i] as usize)
    }

    /// Description of model input `i`.
    pub fn input(&self, i: usize) -> Result<TensorInfo<'_>> {
        self.input_tensor(i)
            .and_then(|t| self.tensor(t))
            .ok_or(Error::NoSuchTensor {
                kind: "input",
                index: i,
                count: self.input_count(),
            })
    }

    /// Description of model output `i`.
    pub fn output(&self, i: usize) -> Result<TensorInfo<'_>> {
        self.output_tensor(i)
            .and_then(|t| self.tensor(t))
            .ok_or(Error::NoSuchTensor {
                kind: "output",
                index: i,
                count: self.output_count(),
            })
    }

    /// The bytes of a constant tensor.
    pub fn constant_bytes(&self, t: &TensorInfo<'_>) -> Option<&[u8]> {
        (t.storage == Storage::Constant)
            .then(|| self.data().get(t.offset..t.offset + t.byte_len))
            .flatten()
    }

    /// Checks the data section's CRC-32 (O(model size); not done at load).
    pub fn verify_data(&self) -> Result<()> {
        let stored = u32_at(self.bytes(), format::header::DATA_CRC);
        let computed = crate::crc32::crc32(self.data());
        if stored == computed {
            Ok(())
        } else {
            Err(Error::DataChecksum { stored, computed })
        }
    }

    pub(crate) fn bad_tensor(&self, tensor: usize, why: &'static str) -> Error {
        let name = self.raw_tensor(tensor).map(|t| t.name).unwrap_or("");
        Error::BadTensor {
            tensor,
            name: ShortName::new(name),
            why,
        }
    }
}
