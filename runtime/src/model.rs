//! A loaded `.tern` model: the file's bytes, borrowed (or mapped), validated once.
//!
//! [`Model::from_bytes`] checks the header, the checksum of header and tables,
//! and every tensor and op record (bounds, dtypes, shapes, parameters), so that
//! the interpreter can run kernels on the file's bytes in place without further
//! checks. Validation costs O(tensors + ops), never O(weight bytes).

use crate::error::{Error, Result, ShortName};
use crate::format::{
    self, BUFFER_ALIGN, DATA_ALIGN, DType, HEADER_LEN, MAGIC, MAX_RANK, META_HEADER_LEN,
    METADATA_RECORD_LEN, NONE_INDEX, OP_RECORD_LEN, Opcode, QuantKind, Storage, TENSOR_RECORD_LEN,
};
use crate::ops::OpResolver;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}

/// Where each table of the meta section starts (byte offsets into the file).
#[derive(Clone, Copy, Debug, Default)]
struct Layout {
    tensors: usize,
    tensor_count: usize,
    ops: usize,
    op_count: usize,
    inputs: usize,
    input_count: usize,
    outputs: usize,
    output_count: usize,
    index: usize,
    index_count: usize,
    params: usize,
    param_count: usize,
    metadata: usize,
    metadata_count: usize,
    strings: usize,
    string_len: usize,
    data: usize,
    data_len: usize,
    arena_size: usize,
    major: u16,
    minor: u16,
    producer: (u32, u32),
    name: (u32, u32),
}

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

fn truncated(what: &'static str, start: usize, end: usize, len: usize) -> Error {
    Error::Truncated {
        what,
        start: start as u64,
        end: end as u64,
        len: len as u64,
    }
}

fn bad_header(field: &'static str, value: u64, why: &'static str) -> Error {
    Error::BadHeader { field, value, why }
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
        let computed = crc32fast::hash(self.data());
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

/// Reads the header and meta header and checks that every table lies inside the file.
fn parse(b: &[u8]) -> Result<Layout> {
    if !(b.as_ptr() as usize).is_multiple_of(BUFFER_ALIGN) {
        return Err(Error::MisalignedBuffer {
            address: b.as_ptr() as usize,
            align: BUFFER_ALIGN,
        });
    }
    if b.len() < HEADER_LEN {
        return Err(truncated("file header", 0, HEADER_LEN, b.len()));
    }
    let magic: [u8; 8] = b[..8].try_into().unwrap_or([0; 8]);
    if magic != MAGIC {
        return Err(Error::BadMagic {
            found: magic,
            expected: MAGIC,
        });
    }
    let major = u16_at(b, format::header::MAJOR);
    let minor = u16_at(b, format::header::MINOR);
    if major != format::FORMAT_MAJOR {
        return Err(Error::UnsupportedVersion {
            major,
            minor,
            supported: format::FORMAT_MAJOR,
        });
    }
    let file_len = u64_at(b, format::header::FILE_LEN);
    if file_len > b.len() as u64 {
        return Err(Error::Truncated {
            what: "file",
            start: 0,
            end: file_len,
            len: b.len() as u64,
        });
    }
    let meta_offset = u32_at(b, format::header::META_OFFSET) as usize;
    let meta_len = u32_at(b, format::header::META_LEN) as usize;
    if meta_offset != HEADER_LEN {
        return Err(bad_header(
            "meta_offset",
            meta_offset as u64,
            "must be 64 in format 1",
        ));
    }
    let meta_end = meta_offset + meta_len;
    if meta_end as u64 > file_len {
        return Err(truncated(
            "meta section",
            meta_offset,
            meta_end,
            file_len as usize,
        ));
    }
    let stored = u32_at(b, format::header::HEADER_CRC);
    let computed = crc32fast::hash(&b[16..meta_end]);
    if stored != computed {
        return Err(Error::HeaderChecksum {
            end: meta_end as u64,
            stored,
            computed,
        });
    }
    if meta_len < META_HEADER_LEN {
        return Err(truncated(
            "meta header",
            meta_offset,
            meta_offset + META_HEADER_LEN,
            meta_end,
        ));
    }
    let m = &b[meta_offset..meta_end];
    let count = |at: usize| u32_at(m, at) as usize;
    let mut l = Layout {
        major,
        minor,
        tensor_count: count(format::meta::TENSOR_COUNT),
        op_count: count(format::meta::OP_COUNT),
        input_count: count(format::meta::INPUT_COUNT),
        output_count: count(format::meta::OUTPUT_COUNT),
        index_count: count(format::meta::INDEX_COUNT),
        param_count: count(format::meta::PARAM_COUNT),
        string_len: count(format::meta::STRING_LEN),
        metadata_count: count(format::meta::METADATA_COUNT),
        producer: (
            u32_at(m, format::meta::PRODUCER),
            u32_at(m, format::meta::PRODUCER + 4),
        ),
        name: (
            u32_at(m, format::meta::NAME),
            u32_at(m, format::meta::NAME + 4),
        ),
        ..Layout::default()
    };
    let header_ops = u32_at(b, format::header::OP_COUNT) as usize;
    if header_ops != l.op_count {
        return Err(bad_header(
            "op_count",
            header_ops as u64,
            "differs from the meta section's",
        ));
    }
    // Lay the tables out back to back, with overflow-checked arithmetic.
    let mut at = meta_offset as u64 + META_HEADER_LEN as u64;
    let mut take = |count: usize, size: usize| {
        let start = at;
        at += count as u64 * size as u64;
        start as usize
    };
    l.tensors = take(l.tensor_count, TENSOR_RECORD_LEN);
    l.ops = take(l.op_count, OP_RECORD_LEN);
    l.inputs = take(l.input_count, 4);
    l.outputs = take(l.output_count, 4);
    l.index = take(l.index_count, 4);
    l.params = take(l.param_count, 4);
    l.metadata = take(l.metadata_count, METADATA_RECORD_LEN);
    l.strings = take(l.string_len, 1);
    if at != meta_end as u64 {
        return Err(bad_header(
            "meta_len",
            meta_len as u64,
            "does not match the table counts",
        ));
    }
    if core::str::from_utf8(&b[l.strings..l.strings + l.string_len]).is_err() {
        return Err(bad_header("string pool", l.string_len as u64, "not UTF-8"));
    }
    let data = u64_at(b, format::header::DATA_OFFSET);
    let data_len = u64_at(b, format::header::DATA_LEN);
    if !data.is_multiple_of(DATA_ALIGN as u64) || data < meta_end as u64 {
        return Err(bad_header(
            "data_offset",
            data,
            "must be 64-aligned and after the meta section",
        ));
    }
    if data.checked_add(data_len).is_none_or(|end| end > file_len) {
        return Err(Error::Truncated {
            what: "data section",
            start: data,
            end: data.saturating_add(data_len),
            len: file_len,
        });
    }
    l.data = data as usize;
    l.data_len = data_len as usize;
    l.arena_size = u32_at(b, format::header::ARENA_SIZE) as usize;
    let flags = u32_at(b, format::header::FLAGS);
    if flags != 0 {
        return Err(bad_header(
            "flags",
            flags as u64,
            "unknown flags (format 1 defines none)",
        ));
    }
    if l.input_count == 0 || l.output_count == 0 {
        return Err(bad_header(
            "input/output count",
            0,
            "a model needs at least one input and one output",
        ));
    }
    Ok(l)
}
