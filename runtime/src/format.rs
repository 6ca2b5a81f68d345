//! Constants and record layouts of the `.tern` file format (see `runtime/FORMAT.md`).
//!
//! This module owns the byte layout only: the reader is [`crate::model`], the
//! writer lives in `tern-export`. Everything is little-endian.

/// First eight bytes of every `.tern` file.
pub const MAGIC: [u8; 8] = *b"TERN\r\n\x1a\n";
/// Major format version this runtime reads. A file with another major is refused.
pub const FORMAT_MAJOR: u16 = 1;
/// Minor format version this runtime writes; newer minors are read (see FORMAT.md).
pub const FORMAT_MINOR: u16 = 4;

/// Size of the fixed file header.
pub const HEADER_LEN: usize = 64;
/// Size of the fixed meta header at the start of the meta section.
pub const META_HEADER_LEN: usize = 64;
/// Size of one tensor record.
pub const TENSOR_RECORD_LEN: usize = 64;
/// Size of one op record.
pub const OP_RECORD_LEN: usize = 40;
/// Size of one metadata (key, value) record.
pub const METADATA_RECORD_LEN: usize = 16;
/// Alignment of the data section and of every constant tensor in it.
pub const DATA_ALIGN: usize = 64;
/// Alignment of every tensor's offset in the arena.
pub const ARENA_TENSOR_ALIGN: usize = 16;
/// Alignment the model buffer must have in memory (mmap and flash give more).
pub const BUFFER_ALIGN: usize = 16;
/// Highest tensor rank.
pub const MAX_RANK: usize = 6;
/// Marks an absent optional op input (e.g. no bias) and "no scratch".
pub const NONE_INDEX: u32 = u32::MAX;

/// Byte offsets of the fixed header fields.
pub mod header {
    /// `[u8; 8]` magic.
    pub const MAGIC: usize = 0;
    /// `u16` major version.
    pub const MAJOR: usize = 8;
    /// `u16` minor version.
    pub const MINOR: usize = 10;
    /// `u32` CRC-32 (IEEE) of bytes `16..meta_offset + meta_len`.
    pub const HEADER_CRC: usize = 12;
    /// `u64` total file length.
    pub const FILE_LEN: usize = 16;
    /// `u32` meta section offset (64 in v1).
    pub const META_OFFSET: usize = 24;
    /// `u32` meta section length.
    pub const META_LEN: usize = 28;
    /// `u64` data section offset (multiple of 64).
    pub const DATA_OFFSET: usize = 32;
    /// `u64` data section length.
    pub const DATA_LEN: usize = 40;
    /// `u32` CRC-32 of the data section (checked on demand, not at load).
    pub const DATA_CRC: usize = 48;
    /// `u32` arena bytes the planner reserved.
    pub const ARENA_SIZE: usize = 52;
    /// `u32` number of ops.
    pub const OP_COUNT: usize = 56;
    /// `u32` flags, 0 in v1.
    pub const FLAGS: usize = 60;
}

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DType {
    /// IEEE binary32.
    F32 = 1,
    /// IEEE binary16 (weights of f16 models).
    F16 = 2,
    /// Signed 8-bit integer (quantized).
    I8 = 3,
    /// Signed 32-bit integer (biases, requantization tables).
    I32 = 4,
}

impl DType {
    /// Decodes a stored dtype code.
    pub fn from_code(code: u8) -> Option<DType> {
        Some(match code {
            1 => DType::F32,
            2 => DType::F16,
            3 => DType::I8,
            4 => DType::I32,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F16 => 2,
            DType::I8 => 1,
        }
    }

    /// Lower-case name (`f32`, `f16`, `i8`, `i32`).
    pub const fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::I8 => "i8",
            DType::I32 => "i32",
        }
    }
}

/// Where a tensor's bytes live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Storage {
    /// In the arena, at a planned offset (activations, inputs, outputs, scratch).
    Arena = 0,
    /// In the file's data section (weights, biases, tables), used in place.
    Constant = 1,
}

impl Storage {
    /// The storage with record code `code`.
    pub fn from_code(code: u8) -> Option<Storage> {
        match code {
            0 => Some(Storage::Arena),
            1 => Some(Storage::Constant),
            _ => None,
        }
    }
}

/// Quantization kind of a tensor record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum QuantKind {
    /// Not quantized.
    None = 0,
    /// One scale and zero point for the whole tensor.
    PerTensor = 1,
    /// One scale per index of axis 0 (zero point 0); scales in another tensor.
    PerChannel = 2,
}

impl QuantKind {
    /// The kind with record code `code`.
    pub fn from_code(code: u8) -> Option<QuantKind> {
        match code {
            0 => Some(QuantKind::None),
            1 => Some(QuantKind::PerTensor),
            2 => Some(QuantKind::PerChannel),
            _ => None,
        }
    }
}

/// Byte offsets inside a tensor record.
pub mod tensor {
    /// `u32` string offset, `u32` length: the tensor's name.
    pub const NAME: usize = 0;
    /// `u8` [`super::DType`] code.
    pub const DTYPE: usize = 8;
    /// `u8` rank (0..=6).
    pub const RANK: usize = 9;
    /// `u8` [`super::Storage`].
    pub const STORAGE: usize = 10;
    /// `u8` [`super::QuantKind`].
    pub const QUANT_KIND: usize = 11;
    /// `u32` per-channel: index of the f32 constant tensor of scales.
    pub const QUANT_SCALES: usize = 12;
    /// `[u32; 6]` dimensions (unused ones 0).
    pub const DIMS: usize = 16;
    /// `u64` byte offset (in the data section or in the arena).
    pub const OFFSET: usize = 40;
    /// `u64` byte length.
    pub const BYTE_LEN: usize = 48;
    /// `f32` per-tensor scale.
    pub const SCALE: usize = 56;
    /// `i32` per-tensor zero point.
    pub const ZERO_POINT: usize = 60;
}

/// Byte offsets inside an op record.
pub mod op {
    /// `u16` [`super::Opcode`].
    pub const OPCODE: usize = 0;
    /// `u16` flags, 0 in v1.
    pub const FLAGS: usize = 2;
    /// `u32` first input's position in the index pool.
    pub const INPUTS_START: usize = 4;
    /// `u16` number of inputs.
    pub const INPUTS_LEN: usize = 8;
    /// `u16` number of outputs.
    pub const OUTPUTS_LEN: usize = 10;
    /// `u32` first output's position in the index pool.
    pub const OUTPUTS_START: usize = 12;
    /// `u32` first parameter word in the parameter pool.
    pub const PARAMS_START: usize = 16;
    /// `u32` number of parameter words.
    pub const PARAMS_LEN: usize = 20;
    /// `u32` index of the op's scratch tensor, or `NONE_INDEX`.
    pub const SCRATCH: usize = 24;
    /// `u32` reserved, 0.
    pub const RESERVED: usize = 28;
    /// `u32` string offset, `u32` length: the source node's name.
    pub const NAME: usize = 32;
}

/// Byte offsets inside the meta header.
pub mod meta {
    /// `u32` number of tensor records.
    pub const TENSOR_COUNT: usize = 0;
    /// `u32` number of op records.
    pub const OP_COUNT: usize = 4;
    /// `u32` number of model inputs.
    pub const INPUT_COUNT: usize = 8;
    /// `u32` number of model outputs.
    pub const OUTPUT_COUNT: usize = 12;
    /// `u32` words in the index pool.
    pub const INDEX_COUNT: usize = 16;
    /// `u32` words in the parameter pool.
    pub const PARAM_COUNT: usize = 20;
    /// `u32` bytes of the string pool.
    pub const STRING_LEN: usize = 24;
    /// `u32` number of metadata records.
    pub const METADATA_COUNT: usize = 28;
    /// String ref: the producer (`tern-export x.y.z`).
    pub const PRODUCER: usize = 32;
    /// String ref: the model's name.
    pub const NAME: usize = 40;
}

impl Opcode {
    /// The format minor version that added this opcode: a file that uses it
    /// has at least this minor version, so older runtimes refuse it by its
    /// version rather than by an unknown opcode.
    pub const fn minor(self) -> u16 {
        match self as u16 {
            0..=17 => 0,
            18..=30 => 1,
            _ => 2,
        }
    }
}

macro_rules! opcodes {
    ($($(#[$doc:meta])* $name:ident = $code:expr),* $(,)?) => {
        /// Operation codes. New codes may appear in newer minor versions.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum Opcode { $($(#[$doc])* $name = $code),* }

        impl Opcode {
            /// Decodes a stored opcode.
            pub fn from_code(code: u16) -> Option<Opcode> {
                match code { $($code => Some(Opcode::$name),)* _ => None }
            }
            /// The op's name, as printed by `tern inspect`.
            pub const fn name(self) -> &'static str {
                match self { $(Opcode::$name => stringify!($name)),* }
            }
            /// Every opcode, in code order.
            pub const ALL: &'static [Opcode] = &[$(Opcode::$name),*];
            /// One past the highest code (the size of a table indexed by opcode).
            pub const LIMIT: usize = {
                let mut limit = 0;
                $(if $code + 1 > limit { limit = $code + 1; })*
                limit
            };
        }
    };
}

opcodes! {
    /// 2-D convolution (groups, stride, dilation, padding); fused clamp.
    Conv2d = 1,
    /// 2-D transposed convolution.
    ConvTranspose2d = 2,
    /// `y = x W^T + b` over the last axis; fused clamp.
    FullyConnected = 3,
    /// 2-D max pooling.
    MaxPool2d = 4,
    /// 2-D average pooling (also global average pooling).
    AvgPool2d = 5,
    /// Float elementwise activation.
    Activation = 6,
    /// int8 elementwise function through a 256-entry table.
    Lut = 7,
    /// Broadcasting Add/Sub/Mul/Div; fused clamp.
    Binary = 8,
    /// Concatenation along an axis.
    Concat = 9,
    /// Byte copy: Reshape, Flatten, Squeeze, Unsqueeze, Identity.
    Copy = 10,
    /// Axis permutation.
    Transpose = 11,
    /// Constant/reflect/edge padding.
    Pad = 12,
    /// Nearest or bilinear resize over H and W.
    Resize = 13,
    /// Softmax over one axis.
    Softmax = 14,
    /// Local response normalization across channels (float).
    Lrn = 15,
    /// f32 -> int8 with the output tensor's quantization.
    Quantize = 16,
    /// int8 -> f32 with the input tensor's quantization.
    Dequantize = 17,
    /// Batched matrix product of two activations (numpy MatMul broadcasting).
    MatMul = 18,
    /// Layer normalization over the trailing axes from `axis`.
    LayerNorm = 19,
    /// Reduction (sum, mean, max, ...) over a set of axes.
    Reduce = 20,
    /// Strided slice (Slice, Split); any element type.
    Slice = 21,
    /// Gather along an axis by i32 indices (embeddings); any element type.
    Gather = 22,
    /// Elementwise select by an i32 condition, broadcasting.
    Where = 23,
    /// Elementwise comparison to i32 0/1, broadcasting.
    Compare = 24,
    /// f32 <-> i32 conversion.
    Cast = 25,
    /// Broadcast copy to a larger shape; any element type.
    Expand = 26,
    /// LSTM over a sequence (packed output: Y, Y_h, Y_c).
    Lstm = 27,
    /// GRU over a sequence (packed output: Y, Y_h).
    Gru = 28,
    /// Simple RNN over a sequence (packed output: Y, Y_h).
    Rnn = 29,
    /// Fused scaled-dot-product attention.
    Attention = 30,
    /// Index of the largest or smallest element along an axis (i32 output).
    ArgMax = 31,
}
