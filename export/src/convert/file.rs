//! The `.tern` file as the converter builds it (tensors, ops, metadata), its
//! arena planner and its byte writer. The layout is `runtime/FORMAT.md`'s;
//! the constants come from `tern_runtime::format` so reader and writer agree.

use super::ConvertError;
use tern_runtime::format::{
    self, ARENA_TENSOR_ALIGN, DATA_ALIGN, DType, HEADER_LEN, MAGIC, META_HEADER_LEN, NONE_INDEX,
    Opcode, TENSOR_RECORD_LEN,
};

/// Where a tensor lives, with constant data.
#[derive(Clone, Debug)]
pub enum Storage {
    /// Planned into the arena.
    Arena,
    /// Stored in the data section.
    Constant(Vec<u8>),
}

/// Quantization of a tensor as written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TensorQuant {
    /// Float or raw integers.
    None,
    /// Per-tensor affine.
    PerTensor {
        /// Scale.
        scale: f32,
        /// Zero point.
        zero_point: i32,
    },
    /// Per output channel, scales in tensor `scales`.
    PerChannel {
        /// Index of the scales tensor.
        scales: u32,
    },
}

/// One tensor record.
#[derive(Clone, Debug)]
pub struct TensorDesc {
    /// Name.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<usize>,
    /// Arena or constant.
    pub storage: Storage,
    /// Quantization.
    pub quant: TensorQuant,
    /// Arena offset (set by the planner).
    pub offset: usize,
}

impl TensorDesc {
    /// Bytes of data (`usize::MAX` when that overflows).
    pub fn byte_len(&self) -> usize {
        self.shape
            .iter()
            .try_fold(self.dtype.size(), |bytes, &d| bytes.checked_mul(d))
            .unwrap_or(usize::MAX)
    }
}

/// One op record.
#[derive(Clone, Debug)]
pub struct OpDesc {
    /// Operation.
    pub opcode: Opcode,
    /// Source node name.
    pub name: String,
    /// Input tensors (`NONE_INDEX` = absent).
    pub inputs: Vec<u32>,
    /// Output tensor.
    pub output: u32,
    /// Parameter words.
    pub params: Vec<u32>,
    /// Scratch tensor.
    pub scratch: Option<u32>,
}

/// A whole model ready to plan and write.
#[derive(Clone, Debug, Default)]
pub struct FileModel {
    /// Tensors.
    pub tensors: Vec<TensorDesc>,
    /// Ops in execution order.
    pub ops: Vec<OpDesc>,
    /// Model inputs.
    pub inputs: Vec<u32>,
    /// Model outputs.
    pub outputs: Vec<u32>,
    /// Key/value metadata.
    pub metadata: Vec<(String, String)>,
    /// Model name.
    pub name: String,
    /// Planned arena bytes.
    pub arena_size: usize,
    /// Scratch tensors planned for the fastest tiling, with the smallest byte
    /// length their kernel accepts (see [`FileModel::shrink_scratch`]).
    pub scratch_min: Vec<(u32, usize)>,
}

/// One arena buffer's placement, for the plan report.
#[derive(Clone, Debug)]
pub struct Placement {
    /// Tensor index.
    pub tensor: u32,
    /// First op that needs it (-1: before the first op).
    pub first: i64,
    /// Last op that needs it.
    pub last: i64,
    /// Offset.
    pub offset: usize,
    /// Bytes.
    pub size: usize,
}

fn align(v: usize, a: usize) -> usize {
    v.div_ceil(a) * a
}

impl FileModel {
    /// Adds a tensor and returns its index.
    pub fn add(&mut self, t: TensorDesc) -> u32 {
        self.tensors.push(t);
        (self.tensors.len() - 1) as u32
    }

    /// Gives every scratch tensor in [`FileModel::scratch_min`] its smallest
    /// accepted size: a smaller arena (microcontrollers) for smaller kernel
    /// tiles. Call before [`FileModel::plan_arena`].
    pub fn shrink_scratch(&mut self) {
        for &(t, bytes) in &self.scratch_min {
            if bytes == 0 {
                // The kernel's smallest form needs none: the op loses its
                // scratch and the tensor, used by nothing, takes no space.
                for op in self.ops.iter_mut().filter(|op| op.scratch == Some(t)) {
                    op.scratch = None;
                }
            }
            let t = &mut self.tensors[t as usize];
            t.shape = vec![bytes.div_ceil(t.dtype.size())];
        }
    }

    /// The lowest minor version that expresses the model: the highest minor
    /// among its ops' opcodes ([`Opcode::minor`]) and the features they use,
    /// so older runtimes keep reading the models they can run.
    pub fn minor_version(&self) -> u16 {
        self.ops
            .iter()
            .map(|op| match op.opcode {
                // A scratch tensor on ConvTranspose2d: the fast int8 kernel's is
                // 1.3, the float phase kernel's 1.4.
                Opcode::ConvTranspose2d if op.scratch.is_some() => {
                    let float = op
                        .inputs
                        .first()
                        .and_then(|&i| self.tensors.get(i as usize))
                        .is_some_and(|t| t.dtype != DType::I8);
                    if float { 4 } else { 3 }
                }
                code => code.minor(),
            })
            .max()
            .unwrap_or(0)
    }

    /// Greedy-by-size arena planning over tensor lifetimes (as TFLM and
    /// ExecuTorch do): the largest buffer is placed first, each at the lowest
    /// offset that does not collide with an already placed buffer whose
    /// lifetime intersects its own. Sets offsets and `arena_size`.
    ///
    /// A model over the format's 32-bit limits is [`ConvertError::TooLarge`]
    /// naming the limit (see [`FileModel::check_limits`]); one without an input
    /// or an output is [`ConvertError::Invalid`].
    pub fn plan_arena(&mut self) -> Result<Vec<Placement>, ConvertError> {
        if self.inputs.is_empty() || self.outputs.is_empty() {
            return Err(ConvertError::Invalid(format!(
                "the model has {} inputs and {} outputs after constant folding; a .tern model \
                 needs at least one of each (a graph whose outputs are all constants has nothing to run)",
                self.inputs.len(),
                self.outputs.len()
            )));
        }
        self.check_limits().map_err(ConvertError::TooLarge)?;
        let n_ops = self.ops.len() as i64;
        let mut life: Vec<Option<(i64, i64)>> = vec![None; self.tensors.len()];
        let mut touch = |t: u32, at: i64| {
            if t == NONE_INDEX {
                return;
            }
            let l = &mut life[t as usize];
            *l = Some(match *l {
                None => (at, at),
                Some((a, b)) => (a.min(at), b.max(at)),
            });
        };
        for &t in &self.inputs {
            touch(t, -1);
        }
        for (i, op) in self.ops.iter().enumerate() {
            for &t in &op.inputs {
                touch(t, i as i64);
            }
            touch(op.output, i as i64);
            if let Some(s) = op.scratch {
                touch(s, i as i64);
            }
        }
        for &t in &self.outputs {
            touch(t, n_ops);
        }
        let mut order: Vec<usize> = (0..self.tensors.len())
            .filter(|&t| matches!(self.tensors[t].storage, Storage::Arena) && life[t].is_some())
            .collect();
        order.sort_by_key(|&t| (std::cmp::Reverse(self.tensors[t].byte_len()), t));
        let mut placed: Vec<Placement> = Vec::new();
        for t in order {
            let (first, last) = life[t].unwrap_or((0, 0));
            let size = align(self.tensors[t].byte_len().max(1), ARENA_TENSOR_ALIGN);
            let mut clashes: Vec<(usize, usize)> = placed
                .iter()
                .filter(|p| p.first <= last && first <= p.last)
                .map(|p| (p.offset, p.offset + p.size))
                .collect();
            clashes.sort_unstable();
            let mut offset = 0;
            for (start, end) in clashes {
                if offset + size <= start {
                    break;
                }
                offset = offset.max(align(end, DATA_ALIGN));
            }
            self.tensors[t].offset = offset;
            placed.push(Placement {
                tensor: t as u32,
                first,
                last,
                offset,
                size,
            });
        }
        self.arena_size = placed.iter().map(|p| p.offset + p.size).max().unwrap_or(0);
        if self.arena_size > u32::MAX as usize {
            return Err(ConvertError::TooLarge(format!(
                "the planned arena needs {} bytes, more than 4 GiB (2^32 - 1)",
                self.arena_size
            )));
        }
        placed.sort_by_key(|p| (p.offset, p.first));
        Ok(placed)
    }

    /// Checks the fields of the format before planning: every rank (at most
    /// [`format::MAX_RANK`]) and dimension,
    /// every tensor's bytes (each must fit the 32-bit arena, which also keeps the
    /// planner's sums from overflowing), and the tensor and op counts. A model over
    /// them cannot be written (its fields would wrap), so the converter says which
    /// limit it passes instead.
    pub fn check_limits(&self) -> Result<(), String> {
        let limit = u32::MAX as usize;
        if let Some(t) = self
            .tensors
            .iter()
            .find(|t| t.shape.len() > format::MAX_RANK)
        {
            return Err(format!(
                "tensor '{}' of shape {:?} has rank {}; the format holds at most {} dimensions",
                t.name,
                t.shape,
                t.shape.len(),
                format::MAX_RANK
            ));
        }
        if let Some(t) = self
            .tensors
            .iter()
            .find(|t| t.shape.iter().any(|&d| d > limit) || t.byte_len() > limit)
        {
            return Err(format!(
                "tensor '{}' of shape {:?} needs more than 4 GiB (2^32 - 1 bytes, or a dimension above 2^32 - 1)",
                t.name, t.shape
            ));
        }
        if self.tensors.len() > limit || self.ops.len() > limit {
            return Err(format!(
                "{} tensors and {} ops: at most 2^32 - 1 of each",
                self.tensors.len(),
                self.ops.len()
            ));
        }
        Ok(())
    }

    /// Serializes the model (call [`FileModel::plan_arena`] first).
    pub fn to_bytes(&self, producer: &str) -> Vec<u8> {
        let mut strings: Vec<u8> = Vec::new();
        let mut string = |s: &str| {
            let r = (strings.len() as u32, s.len() as u32);
            strings.extend_from_slice(s.as_bytes());
            r
        };
        // Data section: constants at 64-byte aligned offsets.
        let mut data: Vec<u8> = Vec::new();
        let mut const_offset = vec![0usize; self.tensors.len()];
        for (i, t) in self.tensors.iter().enumerate() {
            if let Storage::Constant(bytes) = &t.storage {
                data.resize(align(data.len(), DATA_ALIGN), 0);
                const_offset[i] = data.len();
                data.extend_from_slice(bytes);
            }
        }
        let mut tensors = Vec::with_capacity(self.tensors.len() * TENSOR_RECORD_LEN);
        for (i, t) in self.tensors.iter().enumerate() {
            let mut r = [0u8; TENSOR_RECORD_LEN];
            let (so, sl) = string(&t.name);
            r[0..4].copy_from_slice(&so.to_le_bytes());
            r[4..8].copy_from_slice(&sl.to_le_bytes());
            r[format::tensor::DTYPE] = t.dtype as u8;
            r[format::tensor::RANK] = t.shape.len() as u8;
            let (storage, offset) = match t.storage {
                Storage::Arena => (format::Storage::Arena as u8, t.offset),
                Storage::Constant(_) => (format::Storage::Constant as u8, const_offset[i]),
            };
            r[format::tensor::STORAGE] = storage;
            for (k, &d) in t.shape.iter().enumerate() {
                let at = format::tensor::DIMS + 4 * k;
                r[at..at + 4].copy_from_slice(&(d as u32).to_le_bytes());
            }
            r[format::tensor::OFFSET..format::tensor::OFFSET + 8]
                .copy_from_slice(&(offset as u64).to_le_bytes());
            r[format::tensor::BYTE_LEN..format::tensor::BYTE_LEN + 8]
                .copy_from_slice(&(t.byte_len() as u64).to_le_bytes());
            match t.quant {
                TensorQuant::None => {}
                TensorQuant::PerTensor { scale, zero_point } => {
                    r[format::tensor::QUANT_KIND] = format::QuantKind::PerTensor as u8;
                    r[format::tensor::SCALE..format::tensor::SCALE + 4]
                        .copy_from_slice(&scale.to_le_bytes());
                    r[format::tensor::ZERO_POINT..format::tensor::ZERO_POINT + 4]
                        .copy_from_slice(&zero_point.to_le_bytes());
                }
                TensorQuant::PerChannel { scales } => {
                    r[format::tensor::QUANT_KIND] = format::QuantKind::PerChannel as u8;
                    r[format::tensor::QUANT_SCALES..format::tensor::QUANT_SCALES + 4]
                        .copy_from_slice(&scales.to_le_bytes());
                }
            }
            tensors.extend_from_slice(&r);
        }
        let mut index: Vec<u32> = Vec::new();
        let mut params: Vec<u32> = Vec::new();
        let mut ops = Vec::new();
        for op in &self.ops {
            let mut r = [0u8; format::OP_RECORD_LEN];
            let put =
                |r: &mut [u8], at: usize, v: u32| r[at..at + 4].copy_from_slice(&v.to_le_bytes());
            r[0..2].copy_from_slice(&(op.opcode as u16).to_le_bytes());
            put(&mut r, format::op::INPUTS_START, index.len() as u32);
            r[format::op::INPUTS_LEN..format::op::INPUTS_LEN + 2]
                .copy_from_slice(&(op.inputs.len() as u16).to_le_bytes());
            index.extend_from_slice(&op.inputs);
            put(&mut r, format::op::OUTPUTS_START, index.len() as u32);
            r[format::op::OUTPUTS_LEN..format::op::OUTPUTS_LEN + 2]
                .copy_from_slice(&1u16.to_le_bytes());
            index.push(op.output);
            put(&mut r, format::op::PARAMS_START, params.len() as u32);
            put(&mut r, format::op::PARAMS_LEN, op.params.len() as u32);
            params.extend_from_slice(&op.params);
            put(
                &mut r,
                format::op::SCRATCH,
                op.scratch.unwrap_or(NONE_INDEX),
            );
            let (no, nl) = string(&op.name);
            put(&mut r, format::op::NAME, no);
            put(&mut r, format::op::NAME + 4, nl);
            ops.extend_from_slice(&r);
        }
        let mut metadata = Vec::new();
        for (k, v) in &self.metadata {
            let (ko, kl) = string(k);
            let (vo, vl) = string(v);
            for w in [ko, kl, vo, vl] {
                metadata.extend_from_slice(&w.to_le_bytes());
            }
        }
        let producer_ref = string(producer);
        let name_ref = string(&self.name);
        let mut meta = vec![0u8; META_HEADER_LEN];
        let words = [
            self.tensors.len() as u32,
            self.ops.len() as u32,
            self.inputs.len() as u32,
            self.outputs.len() as u32,
            index.len() as u32,
            params.len() as u32,
            strings.len() as u32,
            self.metadata.len() as u32,
            producer_ref.0,
            producer_ref.1,
            name_ref.0,
            name_ref.1,
        ];
        for (k, w) in words.iter().enumerate() {
            meta[4 * k..4 * k + 4].copy_from_slice(&w.to_le_bytes());
        }
        meta.extend_from_slice(&tensors);
        meta.extend_from_slice(&ops);
        for list in [&self.inputs, &self.outputs, &index, &params] {
            for w in list.iter() {
                meta.extend_from_slice(&w.to_le_bytes());
            }
        }
        meta.extend_from_slice(&metadata);
        meta.extend_from_slice(&strings);
        let meta_end = HEADER_LEN + meta.len();
        let data_offset = align(meta_end, DATA_ALIGN);
        let file_len = data_offset + data.len();
        let mut out = vec![0u8; HEADER_LEN];
        out.extend_from_slice(&meta);
        out.resize(data_offset, 0);
        out.extend_from_slice(&data);
        let h = &mut out[..HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..10].copy_from_slice(&format::FORMAT_MAJOR.to_le_bytes());
        h[10..12].copy_from_slice(&self.minor_version().to_le_bytes());
        h[16..24].copy_from_slice(&(file_len as u64).to_le_bytes());
        h[24..28].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        h[28..32].copy_from_slice(&(meta.len() as u32).to_le_bytes());
        h[32..40].copy_from_slice(&(data_offset as u64).to_le_bytes());
        h[40..48].copy_from_slice(&(data.len() as u64).to_le_bytes());
        h[48..52].copy_from_slice(&crc32fast::hash(&data).to_le_bytes());
        h[52..56].copy_from_slice(&(self.arena_size as u32).to_le_bytes());
        h[56..60].copy_from_slice(&(self.ops.len() as u32).to_le_bytes());
        let crc = crc32fast::hash(&out[16..meta_end]);
        out[12..16].copy_from_slice(&crc.to_le_bytes());
        out
    }
}
