//! [`Graph`] -> [`FileModel`]: picks a kernel and a precision for every node,
//! packs and quantizes weights, and adds the conversion ops that int8 islands
//! around float-only ops need.
//!
//! Submodules: `quant` (int8 parameters), `policy` (which precision a node runs
//! in), `node` (one node's op), `lut_island` (int8 elementwise chains as one
//! table), `weights` (conv / fully connected weights), `recurrent` (LSTM / GRU / RNN). This module holds the driver and the operand
//! bookkeeping they share.

mod lut_island;
mod node;
mod policy;
mod quant;
mod recurrent;
mod weights;

pub use policy::{PrecisionPlan, has_int8_kernel, recurrent_attrs_int8_ok, recurrent_int8_ok};
use quant::quantize_rows_s8;

pub use quant::{QParams, Ranges};
pub use recurrent::lstm_cell_shift;

use std::collections::HashMap;

use tern_runtime::format::{DType, Opcode};
use tern_runtime::kernels::Shape4;

use crate::convert::file::{FileModel, OpDesc, Storage, TensorDesc, TensorQuant};
use crate::convert::graph::{ConstData, Elem, Graph, Node};
use crate::convert::{ConvertError, Precision};

struct Lowering<'g> {
    g: &'g Graph,
    /// Precision of the node being lowered.
    precision: Precision,
    ranges: &'g Ranges,
    file: FileModel,
    /// Tensor of each value in its produced form.
    tensor_of: HashMap<usize, u32>,
    /// Converted copies: (value, dtype) -> tensor.
    converted: HashMap<(usize, DType), u32>,
    /// int8 parameters of each int8 value.
    qparams: HashMap<usize, QParams>,
}

/// Lowers `g` at `precision`; `ranges` (int8 only) come from calibration.
pub fn lower(g: &Graph, precision: Precision, ranges: &Ranges) -> Result<FileModel, ConvertError> {
    lower_plan(g, &PrecisionPlan::uniform(precision), ranges)
}

/// Lowers `g` with a precision per node; `ranges` cover every value an int8 node touches.
pub fn lower_plan(
    g: &Graph,
    plan: &PrecisionPlan,
    ranges: &Ranges,
) -> Result<FileModel, ConvertError> {
    let precision = plan.default;
    let mut l = Lowering {
        g,
        precision,
        ranges,
        file: FileModel::default(),
        tensor_of: HashMap::new(),
        converted: HashMap::new(),
        qparams: HashMap::new(),
    };
    for &v in &g.inputs {
        let int8 = precision == Precision::Int8;
        let t = if g.values[v].elem == Elem::I32 {
            l.arena_tensor(v, DType::I32, TensorQuant::None)
        } else if int8 {
            let q = l.range_q(v)?;
            l.qparams.insert(v, q);
            l.arena_tensor(v, DType::I8, q.into())
        } else {
            l.arena_tensor(v, DType::F32, TensorQuant::None)
        };
        l.tensor_of.insert(v, t);
        l.file.inputs.push(t);
    }
    let islands = lut_island::find(g, plan);
    for (i, node) in g.nodes.iter().enumerate() {
        l.precision = plan.of(i);
        if let Some(island) = islands.roots.get(&i) {
            l.lut_island(node, island)?;
        } else if !islands.interior.contains(&i) {
            l.node(node)?;
        }
    }
    for &v in &g.outputs {
        let t = *l.tensor_of.get(&v).ok_or_else(|| {
            ConvertError::Invalid(format!("output '{}' not produced", g.values[v].name))
        })?;
        l.file.outputs.push(t);
    }
    Ok(l.file)
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i32_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn shape4(s: &[usize]) -> Shape4 {
    Shape4::new(s[0], s[1], s[2], s[3])
}

impl Lowering<'_> {
    fn range_q(&self, v: usize) -> Result<QParams, ConvertError> {
        let (min, max) = self.ranges.get(&v).copied().ok_or_else(|| {
            ConvertError::Invalid(format!(
                "no calibration range for '{}'",
                self.g.values[v].name
            ))
        })?;
        Ok(QParams::from_range(min, max))
    }

    fn arena_tensor(&mut self, v: usize, dtype: DType, quant: TensorQuant) -> u32 {
        let value = &self.g.values[v];
        self.file.add(TensorDesc {
            name: value.name.clone(),
            dtype,
            shape: value.shape.clone(),
            storage: Storage::Arena,
            quant,
            offset: 0,
        })
    }

    fn constant(
        &mut self,
        name: String,
        dtype: DType,
        shape: Vec<usize>,
        bytes: Vec<u8>,
        quant: TensorQuant,
    ) -> u32 {
        self.file.add(TensorDesc {
            name,
            dtype,
            shape,
            storage: Storage::Constant(bytes),
            quant,
            offset: 0,
        })
    }

    /// Value `v` as a tensor of `dtype` (f32 or i8), converting or quantizing
    /// constants; integer values (token ids, indices, booleans) are always i32.
    fn operand(&mut self, v: usize, dtype: DType) -> Result<u32, ConvertError> {
        let value = &self.g.values[v];
        let integer = match &value.konst {
            Some(ConstData::I64(_)) => true,
            Some(ConstData::F32(_)) => false,
            None => value.elem == Elem::I32,
        };
        let dtype = if integer { DType::I32 } else { dtype };
        if let Some(&t) = self.converted.get(&(v, dtype)) {
            return Ok(t);
        }
        if integer {
            let t = match &value.konst {
                Some(data) => {
                    let ints: Vec<i32> = data
                        .to_i64()
                        .iter()
                        .map(|&x| x.clamp(i32::MIN as i64, i32::MAX as i64) as i32)
                        .collect();
                    self.constant(
                        value.name.clone(),
                        DType::I32,
                        value.shape.clone(),
                        i32_bytes(&ints),
                        TensorQuant::None,
                    )
                }
                None => *self.tensor_of.get(&v).ok_or_else(|| {
                    ConvertError::Invalid(format!("'{}' used before it is produced", value.name))
                })?,
            };
            self.converted.insert((v, dtype), t);
            return Ok(t);
        }
        let t = if let Some(data) = &value.konst {
            let data = data.to_f32();
            match dtype {
                DType::I8 => {
                    let (min, max) = data
                        .iter()
                        .fold((0f32, 0f32), |(a, b), &x| (a.min(x), b.max(x)));
                    let q = QParams::from_range(min, max);
                    self.qparams.insert(v, q);
                    let bytes = data.iter().map(|&x| q.quantize(x) as i8 as u8).collect();
                    self.constant(
                        value.name.clone(),
                        DType::I8,
                        value.shape.clone(),
                        bytes,
                        q.into(),
                    )
                }
                _ => self.constant(
                    value.name.clone(),
                    DType::F32,
                    value.shape.clone(),
                    f32_bytes(&data),
                    TensorQuant::None,
                ),
            }
        } else {
            let have = *self.tensor_of.get(&v).ok_or_else(|| {
                ConvertError::Invalid(format!("'{}' used before it is produced", value.name))
            })?;
            let have_dtype = self.file.tensors[have as usize].dtype;
            if have_dtype == dtype {
                return Ok(have);
            }
            let name = format!("{}.{}", value.name, dtype.name());
            let (opcode, quant) = if dtype == DType::I8 {
                let q = self.range_q(v)?;
                self.qparams.insert(v, q);
                (Opcode::Quantize, q.into())
            } else {
                (Opcode::Dequantize, TensorQuant::None)
            };
            let t = self.file.add(TensorDesc {
                name: name.clone(),
                dtype,
                shape: value.shape.clone(),
                storage: Storage::Arena,
                quant,
                offset: 0,
            });
            self.file.ops.push(OpDesc {
                opcode,
                name,
                inputs: vec![have],
                output: t,
                params: vec![],
                scratch: None,
            });
            t
        };
        self.converted.insert((v, dtype), t);
        Ok(t)
    }

    fn q(&self, v: usize) -> QParams {
        self.qparams.get(&v).copied().unwrap_or(QParams {
            scale: 1.0,
            zero_point: 0,
        })
    }

    fn second(&self, node: &Node) -> Result<usize, ConvertError> {
        node.inputs.get(1).copied().flatten().ok_or_else(|| {
            ConvertError::Invalid(format!("node '{}' lacks its second input", node.name))
        })
    }

    fn third(&self, node: &Node) -> Result<usize, ConvertError> {
        node.inputs.get(2).copied().flatten().ok_or_else(|| {
            ConvertError::Invalid(format!("node '{}' lacks its third input", node.name))
        })
    }

    /// An f32 scratch tensor of `len` elements (None when 0).
    fn scratch_f32(&mut self, node: &str, len: usize) -> Option<u32> {
        (len > 0).then(|| {
            self.file.add(TensorDesc {
                name: format!("{node}.scratch"),
                dtype: DType::F32,
                shape: vec![len],
                storage: Storage::Arena,
                quant: TensorQuant::None,
                offset: 0,
            })
        })
    }
}
