//! ONNX -> [`Graph`]: reads the protobuf through `tract_onnx::pb`, folds
//! constant subgraphs (Shape/Gather/Concat/ConstantOfShape chains, Unsqueeze of
//! initializers...), infers every static shape, and maps each remaining node to
//! a Tern op. Anything it cannot map is an [`ConvertError::UnsupportedOp`]
//! naming the op type, node and opset: never a silent approximation.

use tern_runtime::format::MAX_RANK;
use tern_runtime::kernels::activation_f32::Activation;
use tern_runtime::kernels::binary_f32::binary_f32;
use tern_runtime::kernels::{
    BinaryOp, ClampF32, CoordinateMode, NearestMode, ResizeGeometry, Window2d,
};
use tern_runtime::ops::{LrnParams, ResizeParams, pad_mode};
use tract_onnx::pb::{AttributeProto, ModelProto, NodeProto, TensorProto, type_proto};

mod recurrent;
mod tensor_ops;

pub(crate) use tensor_ops::broadcast_to as broadcast_const;

use tern_runtime::kernels::activation_f32::Unary;
use tern_runtime::kernels::compare::CompareOp;
use tern_runtime::kernels::reduce_f32::ReduceOp;

use super::ConvertError;
use super::graph::RecurrentKind;
use super::graph::{ConstData, Elem, Graph, Node, Op};

type Result<T> = std::result::Result<T, ConvertError>;

/// Options of the import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Value for a symbolic (dynamic) first dimension of a graph input: the batch.
    pub batch: usize,
    /// Concrete shapes of graph inputs by name (`--input-shape name=1,28,28`); they
    /// override the model's dimensions, symbolic or not.
    pub input_shapes: std::collections::HashMap<String, Vec<usize>>,
}

/// Builds the graph of `model`.
pub fn import(model: &ModelProto, options: &ImportOptions) -> Result<Graph> {
    let graph_proto = model
        .graph
        .as_ref()
        .ok_or_else(|| ConvertError::Invalid("model has no graph".into()))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(1, |o| o.version);
    let mut g = Graph::default();
    for init in &graph_proto.initializer {
        let (shape, data) = tensor_data(init)?;
        g.add_value(&init.name, shape, Some(data));
    }
    for input in &graph_proto.input {
        if g.by_name.contains_key(&input.name) {
            continue; // an initializer listed as an input (old IR versions)
        }
        let Some(type_proto::Value::TensorType(t)) =
            input.r#type.as_ref().and_then(|t| t.value.as_ref())
        else {
            return Err(ConvertError::Invalid(format!(
                "graph input '{}' is not a tensor",
                input.name
            )));
        };
        let elem = match t.elem_type {
            1 => Elem::F32,
            // int32/int64 inputs (token ids, indices) and booleans run as i32; the
            // narrower and unsigned types would wrap differently, so they are refused.
            6 | 7 | 9 => Elem::I32,
            other => {
                return Err(ConvertError::UnsupportedInput {
                    input: input.name.clone(),
                    elem_type: other,
                });
            }
        };
        use tract_onnx::pb::tensor_shape_proto::dimension::Value as DimValue;
        let dims: Vec<Option<DimValue>> = t
            .shape
            .as_ref()
            .map(|s| s.dim.iter().map(|d| d.value.clone()).collect())
            .unwrap_or_default();
        let shape: Vec<usize> = if let Some(given) = options.input_shapes.get(&input.name) {
            if !dims.is_empty() && given.len() != dims.len() {
                return Err(ConvertError::Invalid(format!(
                    "--input-shape {}={}: the model's input has rank {}",
                    input.name,
                    given
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                    dims.len()
                )));
            }
            given.clone()
        } else {
            let mut shape = Vec::with_capacity(dims.len());
            for (axis, d) in dims.iter().enumerate() {
                shape.push(match d {
                    Some(DimValue::DimValue(v)) if *v > 0 => *v as usize,
                    // A symbolic first axis named like a batch (or unnamed) is the batch.
                    Some(DimValue::DimParam(p)) if axis == 0 && is_batch_name(p) => {
                        options.batch.max(1)
                    }
                    None | Some(DimValue::DimValue(_)) if axis == 0 => options.batch.max(1),
                    other => {
                        let name = match other {
                            Some(DimValue::DimParam(p)) => format!("'{p}'"),
                            _ => "unnamed".to_string(),
                        };
                        return Err(ConvertError::SymbolicDim {
                            input: input.name.clone(),
                            axis,
                            dim: name,
                        });
                    }
                });
            }
            shape
        };
        if shape.len() > MAX_RANK {
            return Err(ConvertError::Invalid(format!(
                "graph input '{}' has rank {}; Tern supports at most rank {MAX_RANK}",
                input.name,
                shape.len()
            )));
        }
        let id = g.add_value(&input.name, shape, None);
        g.values[id].elem = elem;
        g.inputs.push(id);
    }
    for (index, node) in graph_proto.node.iter().enumerate() {
        let mut ctx = NodeCtx {
            g: &mut g,
            node,
            index,
            opset,
        };
        ctx.import()?;
    }
    for output in &graph_proto.output {
        let id = *g.by_name.get(&output.name).ok_or_else(|| {
            ConvertError::Invalid(format!("graph output '{}' is never produced", output.name))
        })?;
        let id = if g.is_const(id) {
            materialize_constant(&mut g, id, &output.name)
        } else {
            id
        };
        g.outputs.push(id);
    }
    if g.inputs.is_empty() {
        // The `.tern` format needs at least one input: a graph of constants only
        // has nothing to run on.
        let (op_type, node) = graph_proto
            .node
            .iter()
            .enumerate()
            .find(|(_, n)| {
                graph_proto
                    .output
                    .iter()
                    .any(|o| n.output.contains(&o.name))
            })
            .map_or(("(graph)".to_string(), String::new()), |(i, n)| {
                let name = if n.name.is_empty() {
                    format!("{}#{i}", n.op_type)
                } else {
                    n.name.clone()
                };
                (n.op_type.clone(), name)
            });
        return Err(ConvertError::UnsupportedOp {
            op_type,
            node,
            opset,
            why: "the graph has no input (all its outputs are constants); a .tern model \
                  needs at least one input"
                .into(),
        });
    }
    Ok(g)
}

/// A graph output that folded to a constant (`Shape`, `Constant`...): a Copy
/// node reads the constant (which lowering writes into the file) into an arena
/// tensor named after the output. Integer data makes an i32 output.
fn materialize_constant(g: &mut Graph, id: usize, name: &str) -> usize {
    let shape = g.values[id].shape.clone();
    let elem = match g.values[id].konst {
        Some(ConstData::I64(_)) => Elem::I32,
        _ => Elem::F32,
    };
    // The constant (or the alias naming it) gives up the output's name.
    if g.by_name.get(name) == Some(&id) {
        g.by_name.remove(name);
    }
    if g.values[id].name == name {
        let renamed = fresh_name(g, &format!("{name}.const"));
        g.by_name.insert(renamed.clone(), id);
        g.values[id].name = renamed;
    }
    let out = g.add_value(name, shape, None);
    g.values[out].elem = elem;
    g.nodes.push(Node {
        name: format!("{name}.materialize"),
        op: Op::Copy,
        inputs: vec![Some(id)],
        output: out,
    });
    out
}

/// True for the names exporters give a batch dimension (`batch`, `batch_size`, `N`...).
fn is_batch_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.contains("batch") || matches!(name, "N" | "B" | "n" | "b")
}

/// `base`, or `base.1`, `base.2`... : a value name not in use yet.
fn fresh_name(g: &Graph, base: &str) -> String {
    let mut name = base.to_string();
    let mut k = 1;
    while g.by_name.contains_key(&name) {
        name = format!("{base}.{k}");
        k += 1;
    }
    name
}

/// Shape and data of an initializer or constant attribute.
pub fn tensor_data(t: &TensorProto) -> Result<(Vec<usize>, ConstData)> {
    let shape: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
    let n: usize = shape.iter().product();
    let bad = |why: &str| ConvertError::Invalid(format!("tensor '{}': {why}", t.name));
    if t.data_location == Some(1) {
        return Err(bad(
            "external data is not supported; save the model with weights inside",
        ));
    }
    let raw = &t.raw_data;
    let data = match t.data_type {
        1 => ConstData::F32(if raw.is_empty() {
            t.float_data.clone()
        } else {
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])))
                .collect()
        }),
        10 => ConstData::F32(if raw.is_empty() {
            t.int32_data
                .iter()
                .map(|&b| half::f16::from_bits(b as u16).to_f32())
                .collect()
        } else {
            raw.chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect()
        }),
        11 => ConstData::F32(if raw.is_empty() {
            t.double_data.iter().map(|&v| v as f32).collect()
        } else {
            raw.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect()
        }),
        7 => ConstData::I64(if raw.is_empty() {
            t.int64_data.clone()
        } else {
            raw.chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect()
        }),
        6 | 2 | 3 | 4 | 5 | 9 => ConstData::I64(if raw.is_empty() {
            t.int32_data.iter().map(|&v| v as i64).collect()
        } else {
            let size = match t.data_type {
                6 => 4,
                4 | 5 => 2,
                _ => 1,
            };
            raw.chunks_exact(size)
                .map(|c| match t.data_type {
                    6 => i32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as i64,
                    5 => i16::from_le_bytes([c[0], c[1]]) as i64,
                    4 => u16::from_le_bytes([c[0], c[1]]) as i64,
                    3 => c[0] as i8 as i64,
                    _ => c[0] as i64,
                })
                .collect()
        }),
        // uint32 (in uint64_data when not raw) and uint64, as i64.
        12 => ConstData::I64(if raw.is_empty() {
            t.uint64_data.iter().map(|&v| v as i64).collect()
        } else {
            raw.chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as i64)
                .collect()
        }),
        13 => {
            let values: Vec<u64> = if raw.is_empty() {
                t.uint64_data.clone()
            } else {
                raw.chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect()
            };
            ConstData::I64(
                values
                    .iter()
                    .map(|&v| {
                        i64::try_from(v)
                            .map_err(|_| bad(&format!("uint64 value {v} is above i64::MAX")))
                    })
                    .collect::<Result<_>>()?,
            )
        }
        other => return Err(bad(&format!("element type {other} is not supported"))),
    };
    if data.len() != n {
        return Err(bad(&format!(
            "holds {} values for shape {shape:?}",
            data.len()
        )));
    }
    Ok((shape, data))
}

struct NodeCtx<'a> {
    g: &'a mut Graph,
    node: &'a NodeProto,
    index: usize,
    opset: i64,
}

fn attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

impl NodeCtx<'_> {
    fn node_name(&self) -> String {
        if self.node.name.is_empty() {
            format!("{}#{}", self.node.op_type, self.index)
        } else {
            self.node.name.clone()
        }
    }

    fn unsupported(&self, why: impl Into<String>) -> ConvertError {
        ConvertError::UnsupportedOp {
            op_type: self.node.op_type.clone(),
            node: self.node_name(),
            opset: self.opset,
            why: why.into(),
        }
    }

    fn invalid(&self, why: impl Into<String>) -> ConvertError {
        ConvertError::Invalid(format!(
            "node '{}' ({}): {}",
            self.node_name(),
            self.node.op_type,
            why.into()
        ))
    }

    fn int(&self, name: &str, default: i64) -> i64 {
        attr(self.node, name).map_or(default, |a| a.i)
    }

    fn float(&self, name: &str, default: f32) -> f32 {
        attr(self.node, name).map_or(default, |a| a.f)
    }

    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        attr(self.node, name).map(|a| a.ints.clone())
    }

    fn string(&self, name: &str, default: &str) -> String {
        attr(self.node, name).map_or(default.to_string(), |a| {
            String::from_utf8_lossy(&a.s).into_owned()
        })
    }

    /// Value id of input `k`; None when absent or the empty name.
    fn input(&self, k: usize) -> Result<Option<usize>> {
        match self.node.input.get(k) {
            None => Ok(None),
            Some(name) if name.is_empty() => Ok(None),
            Some(name) => self.g.by_name.get(name).copied().map(Some).ok_or_else(|| {
                self.invalid(format!("input '{name}' is not produced before this node"))
            }),
        }
    }

    fn required(&self, k: usize) -> Result<usize> {
        self.input(k)?
            .ok_or_else(|| self.invalid(format!("missing input {k}")))
    }

    fn shape(&self, v: usize) -> Vec<usize> {
        self.g.values[v].shape.clone()
    }

    fn konst(&self, k: usize) -> Result<Option<ConstData>> {
        Ok(self.input(k)?.and_then(|v| self.g.values[v].konst.clone()))
    }

    fn const_ints(&self, k: usize, what: &str) -> Result<Vec<i64>> {
        self.konst(k)?
            .map(|c| c.to_i64())
            .ok_or_else(|| self.unsupported(format!("{what} (input {k}) must be a constant")))
    }

    /// Fails unless each present input `k` of `(k, what)` is a constant.
    fn const_inputs(&self, inputs: &[(usize, &str)]) -> Result<()> {
        for &(k, what) in inputs {
            if let Some(v) = self.input(k)?
                && !self.g.is_const(v)
            {
                return Err(self.unsupported(format!("{what} (input {k}) must be a constant")));
            }
        }
        Ok(())
    }

    fn output_name(&self) -> Result<&str> {
        let extra = self.node.output.iter().skip(1).any(|o| !o.is_empty());
        if extra {
            return Err(self.unsupported(format!(
                "{} outputs; only single-output nodes are supported",
                self.node.output.len()
            )));
        }
        self.node
            .output
            .first()
            .map(String::as_str)
            .ok_or_else(|| self.invalid("node has no output"))
    }

    fn define_const(&mut self, shape: Vec<usize>, data: ConstData) -> Result<()> {
        let name = self.output_name()?.to_string();
        if data.len() != shape.iter().product::<usize>() {
            return Err(self.invalid(format!(
                "constant of shape {shape:?} holds {} values",
                data.len()
            )));
        }
        self.g.add_value(&name, shape, Some(data));
        Ok(())
    }

    /// The output names an existing value (Identity, Dropout).
    fn alias(&mut self, v: usize) -> Result<()> {
        let name = self.output_name()?.to_string();
        self.g.by_name.insert(name, v);
        Ok(())
    }

    /// Rejects shapes the `.tern` format (and the runtime's kernels) cannot hold.
    fn check_rank(&self, shape: &[usize]) -> Result<()> {
        if shape.len() > MAX_RANK {
            return Err(self.unsupported(format!(
                "rank {} (shape {shape:?}); Tern supports at most rank {MAX_RANK}",
                shape.len()
            )));
        }
        Ok(())
    }

    fn emit(&mut self, op: Op, inputs: Vec<Option<usize>>, shape: Vec<usize>) -> Result<()> {
        // Every tensor the file will hold is an emitted node's input or output, or a graph input.
        self.check_rank(&shape)?;
        for &v in inputs.iter().flatten() {
            self.check_rank(&self.g.values[v].shape)?;
        }
        let name = self.output_name()?.to_string();
        // Data moves keep their input's element type.
        let elem = match (&op, inputs.first().copied().flatten()) {
            (Op::Copy | Op::Transpose { .. } | Op::Concat { .. } | Op::Pad { .. }, Some(x)) => {
                self.elem(x)
            }
            _ => Elem::F32,
        };
        let output = self.g.add_value(&name, shape, None);
        self.g.values[output].elem = elem;
        let node_name = self.node_name();
        self.g.nodes.push(super::graph::Node {
            name: node_name,
            op,
            inputs,
            output,
        });
        Ok(())
    }

    fn all_inputs_const(&self) -> Result<bool> {
        for k in 0..self.node.input.len() {
            if let Some(v) = self.input(k)?
                && !self.g.is_const(v)
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn axis(&self, axis: i64, rank: usize) -> Result<usize> {
        if rank == 0 {
            return Err(self.invalid(format!("axis {axis} given for a rank-0 (scalar) input")));
        }
        let a = if axis < 0 { axis + rank as i64 } else { axis };
        if a < 0 || a as usize >= rank {
            return Err(self.invalid(format!("axis {axis} out of range for rank {rank}")));
        }
        Ok(a as usize)
    }

    fn import(&mut self) -> Result<()> {
        if !(self.node.domain.is_empty() || self.node.domain == "ai.onnx") {
            return Err(self.unsupported(format!("domain '{}' is not supported", self.node.domain)));
        }
        let op = self.node.op_type.as_str();
        match op {
            "Constant" => {
                let a = self
                    .node
                    .attribute
                    .first()
                    .ok_or_else(|| self.invalid("no value attribute"))?;
                let (shape, data) = match a.name.as_str() {
                    "value" => {
                        tensor_data(a.t.as_ref().ok_or_else(|| self.invalid("empty value"))?)?
                    }
                    "value_float" => (vec![], ConstData::F32(vec![a.f])),
                    "value_floats" => (vec![a.floats.len()], ConstData::F32(a.floats.clone())),
                    "value_int" => (vec![], ConstData::I64(vec![a.i])),
                    "value_ints" => (vec![a.ints.len()], ConstData::I64(a.ints.clone())),
                    other => return Err(self.unsupported(format!("Constant attribute '{other}'"))),
                };
                return self.define_const(shape, data);
            }
            "Identity" => return self.alias(self.required(0)?),
            "Dropout" => return self.dropout(),
            "Shape" => {
                let shape = self.shape(self.required(0)?);
                let (start, end) = (self.int("start", 0), self.int("end", shape.len() as i64));
                let clip = |v: i64| {
                    (if v < 0 { v + shape.len() as i64 } else { v }).clamp(0, shape.len() as i64)
                        as usize
                };
                let dims: Vec<i64> = shape[clip(start)..clip(end).max(clip(start))]
                    .iter()
                    .map(|&d| d as i64)
                    .collect();
                return self.define_const(vec![dims.len()], ConstData::I64(dims));
            }
            _ => {}
        }
        if self.all_inputs_const()?
            && let Some((shape, data)) = self.fold()?
        {
            return self.define_const(shape, data);
        }
        match op {
            "ConstantOfShape" => {
                let shape: Vec<usize> = self
                    .const_ints(0, "shape")?
                    .iter()
                    .map(|&d| d.max(0) as usize)
                    .collect();
                let n = shape.iter().product();
                let data = match attr(self.node, "value").and_then(|a| a.t.as_ref()) {
                    Some(t) => match tensor_data(t)?.1 {
                        ConstData::F32(v) => {
                            ConstData::F32(vec![v.first().copied().unwrap_or(0.0); n])
                        }
                        ConstData::I64(v) => {
                            ConstData::I64(vec![v.first().copied().unwrap_or(0); n])
                        }
                    },
                    None => ConstData::F32(vec![0.0; n]),
                };
                self.define_const(shape, data)
            }
            "Conv" => self.conv(),
            "ConvTranspose" => self.conv_transpose(),
            "Gemm" => self.gemm(),
            "MatMul" => self.matmul(),
            "BatchNormalization" => self.batch_norm(),
            "Relu" => self.activation_op(Activation::Relu),
            "Sigmoid" => self.activation_op(Activation::Sigmoid),
            "Tanh" => self.activation_op(Activation::Tanh),
            "HardSwish" => self.activation_op(Activation::HardSwish),
            "LeakyRelu" => self.activation_op(Activation::LeakyRelu {
                alpha: self.float("alpha", 0.01),
            }),
            "HardSigmoid" => self.activation_op(Activation::HardSigmoid {
                alpha: self.float("alpha", 0.2),
                beta: self.float("beta", 0.5),
            }),
            "Clip" => {
                let (min, max) = if self.opset < 11 {
                    (
                        self.float("min", f32::NEG_INFINITY),
                        self.float("max", f32::INFINITY),
                    )
                } else {
                    let get = |k, d| -> Result<f32> {
                        Ok(match self.input(k)? {
                            None => d,
                            Some(_) => *self
                                .konst(k)?
                                .ok_or_else(|| {
                                    let what = if k == 1 { "min" } else { "max" };
                                    self.unsupported(format!(
                                        "{what} (input {k}) must be a constant"
                                    ))
                                })?
                                .to_f32()
                                .first()
                                .unwrap_or(&d),
                        })
                    };
                    (get(1, f32::NEG_INFINITY)?, get(2, f32::INFINITY)?)
                };
                // min > max sets every value to max (numpy's clip).
                self.activation_op(Activation::Clip {
                    min: min.min(max),
                    max,
                })
            }
            "Add" | "Sub" | "Mul" | "Div" => {
                let bop = match op {
                    "Add" => BinaryOp::Add,
                    "Sub" => BinaryOp::Sub,
                    "Mul" => BinaryOp::Mul,
                    _ => BinaryOp::Div,
                };
                let (a, b) = (self.required(0)?, self.required(1)?);
                if self.elem(a) == Elem::I32 && self.elem(b) == Elem::I32 {
                    // Integer arithmetic on run-time integers (e.g. token-id wrapping).
                    let shape = self.broadcast(&self.shape(a), &self.shape(b))?;
                    return self.emit_elem(
                        Op::Binary {
                            op: bop,
                            clamp: None,
                        },
                        vec![Some(a), Some(b)],
                        shape,
                        Elem::I32,
                    );
                }
                self.float_inputs(&[0, 1])?;
                self.binary(bop, a, b)
            }
            "Sum" => {
                let n = self.node.input.len();
                self.float_inputs(&(0..n).collect::<Vec<_>>())?;
                if n == 1 {
                    return self.alias(self.required(0)?);
                }
                let mut acc = self.required(0)?;
                for k in 1..n {
                    let b = self.required(k)?;
                    if k + 1 == n {
                        return self.binary(BinaryOp::Add, acc, b);
                    }
                    let shape = self.broadcast(&self.shape(acc), &self.shape(b))?;
                    let name = format!("{}.sum{k}", self.node_name());
                    let out = self.g.add_value(&name, shape, None);
                    self.g.nodes.push(super::graph::Node {
                        name: name.clone(),
                        op: Op::Binary {
                            op: BinaryOp::Add,
                            clamp: None,
                        },
                        inputs: vec![Some(acc), Some(b)],
                        output: out,
                    });
                    acc = out;
                }
                Ok(())
            }
            "MaxPool" | "AveragePool" => self.pool(op == "MaxPool"),
            "GlobalAveragePool" => {
                self.float_inputs(&[0])?;
                let x = self.required(0)?;
                let s = self.shape(x);
                if s.len() != 4 {
                    if s.len() < 3 {
                        return Err(self.invalid("GlobalAveragePool needs rank >= 3"));
                    }
                    // [N, C, d...] of any other rank: a mean over the spatial axes.
                    let mask = ((1u32 << s.len()) - 1) & !3;
                    let mut shape = s.clone();
                    shape[2..].iter_mut().for_each(|d| *d = 1);
                    return self.emit(
                        Op::Reduce {
                            op: tern_runtime::kernels::reduce_f32::ReduceOp::Mean,
                            mask,
                        },
                        vec![Some(x)],
                        shape,
                    );
                }
                let window = Window2d {
                    kernel: [s[2], s[3]],
                    stride: [1, 1],
                    dilation: [1, 1],
                    pad_begin: [0, 0],
                };
                self.emit(
                    Op::AvgPool {
                        window,
                        pad_end: [0, 0],
                        count_include_pad: false,
                    },
                    vec![Some(x)],
                    vec![s[0], s[1], 1, 1],
                )
            }
            "Concat" => {
                let inputs = self.concat_inputs()?;
                let shapes: Vec<Vec<usize>> = inputs.iter().map(|&v| self.shape(v)).collect();
                let (axis, shape) = self.concat_shape(&shapes)?;
                // A constant input becomes a constant tensor in the file: fine.
                self.emit(
                    Op::Concat { axis },
                    inputs.into_iter().map(Some).collect(),
                    shape,
                )
            }
            "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" => {
                let x = self.required(0)?;
                let shape = self.reshaped(&self.shape(x))?;
                self.emit(Op::Copy, vec![Some(x)], shape)
            }
            "Transpose" => {
                let x = self.required(0)?;
                let s = self.shape(x);
                let perm = self.perm(s.len())?;
                let shape = perm.iter().map(|&p| s[p]).collect();
                self.emit(Op::Transpose { perm }, vec![Some(x)], shape)
            }
            "Pad" => self.pad(),
            "Resize" | "Upsample" => self.resize(),
            "Softmax" => self.softmax(),
            "LRN" => {
                self.float_inputs(&[0])?;
                let x = self.required(0)?;
                let s = self.shape(x);
                if s.len() != 4 {
                    return Err(self.unsupported("only 4-D (NCHW) inputs are supported"));
                }
                let size = self.int("size", 0);
                if size < 1 {
                    return Err(self.invalid("size must be >= 1"));
                }
                let p = LrnParams {
                    size: size as usize,
                    alpha: self.float("alpha", 1e-4),
                    beta: self.float("beta", 0.75),
                    bias: self.float("bias", 1.0),
                };
                self.emit(Op::Lrn(p), vec![Some(x)], s)
            }
            "LayerNormalization" => self.layer_norm(),
            "ReduceMean" => self.reduce(ReduceOp::Mean),
            "ReduceSum" => self.reduce(ReduceOp::Sum),
            "ReduceMax" => self.reduce(ReduceOp::Max),
            "ReduceMin" => self.reduce(ReduceOp::Min),
            "ReduceProd" => self.reduce(ReduceOp::Prod),
            "ReduceSumSquare" => self.reduce(ReduceOp::SumSquare),
            "ReduceL1" => self.reduce(ReduceOp::L1),
            "ReduceL2" => self.reduce(ReduceOp::L2),
            "ReduceLogSumExp" => self.reduce(ReduceOp::LogSumExp),
            "Slice" => self.slice(),
            "Split" => self.split(),
            "Gather" => self.gather(),
            "Where" => self.where_op(),
            "Equal" => self.compare(CompareOp::Equal),
            "Less" => self.compare(CompareOp::Less),
            "LessOrEqual" => self.compare(CompareOp::LessOrEqual),
            "Greater" => self.compare(CompareOp::Greater),
            "GreaterOrEqual" => self.compare(CompareOp::GreaterOrEqual),
            "Not" => self.not(),
            "Cast" => self.cast(),
            "Expand" => self.expand(),
            "Pow" => self.pow(),
            "Max" => self.variadic(BinaryOp::Max),
            "Min" => self.variadic(BinaryOp::Min),
            "Erf" => self.unary(Unary::Erf),
            "Gelu" => self.gelu(),
            "Sqrt" => self.unary(Unary::Sqrt),
            "Exp" => self.unary(Unary::Exp),
            "Log" => self.unary(Unary::Log),
            "Neg" => self.unary(Unary::Neg),
            "Abs" => self.unary(Unary::Abs),
            "Reciprocal" => self.unary(Unary::Reciprocal),
            "Floor" => self.unary(Unary::Floor),
            "Ceil" => self.unary(Unary::Ceil),
            "Round" => self.unary(Unary::Round),
            "Sign" => self.unary(Unary::Sign),
            "Sin" => self.unary(Unary::Sin),
            "Cos" => self.unary(Unary::Cos),
            "Softplus" => self.unary(Unary::Softplus),
            "Softsign" => self.unary(Unary::Softsign),
            "Mish" => self.unary(Unary::Mish),
            "Elu" => self.activation_op(Activation::Elu {
                alpha: self.float("alpha", 1.0),
            }),
            "Selu" => self.activation_op(Activation::Selu {
                alpha: self.float("alpha", 1.673_263_2),
                gamma: self.float("gamma", 1.050_701),
            }),
            "Celu" => self.activation_op(Activation::Celu {
                alpha: self.float("alpha", 1.0),
            }),
            "ThresholdedRelu" => self.activation_op(Activation::ThresholdedRelu {
                alpha: self.float("alpha", 1.0),
            }),
            "Shrink" => self.activation_op(Activation::Shrink {
                lambd: self.float("lambd", 0.5),
                bias: self.float("bias", 0.0),
            }),
            "LSTM" => self.recurrent(RecurrentKind::Lstm),
            "GRU" => self.recurrent(RecurrentKind::Gru),
            "RNN" => self.recurrent(RecurrentKind::Rnn),
            "Attention" => self.attention(),
            _ => Err(self.unsupported("no Tern kernel for this op")),
        }
    }

    /// Dropout at inference: the identity, and a mask output of all true. Training
    /// mode is rejected (Tern has no random numbers).
    fn dropout(&mut self) -> Result<()> {
        let x = self.required(0)?;
        let training = if self.opset >= 12 {
            match self.input(2)? {
                None => false,
                Some(_) => self.const_ints(2, "training_mode")?.iter().any(|&t| t != 0),
            }
        } else {
            false
        };
        // Training with ratio 0 drops nothing: the same as inference.
        let ratio_zero = || -> Result<bool> {
            Ok(match self.input(1)? {
                None => false, // default 0.5
                Some(_) => {
                    let r = self.konst(1)?.ok_or_else(|| {
                        self.unsupported("ratio (input 1) must be a constant in training mode")
                    })?;
                    r.to_f32().iter().all(|&v| v == 0.0)
                }
            })
        };
        if training && !ratio_zero()? {
            return Err(
                self.unsupported("training_mode = true with a non-zero ratio (random dropout)")
            );
        }
        if let Some(mask) = self.node.output.get(1).filter(|o| !o.is_empty()) {
            let shape = self.shape(x);
            let n = shape.iter().product();
            self.g
                .add_value(mask, shape, Some(ConstData::I64(vec![1; n])));
        }
        let y = self
            .node
            .output
            .first()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| self.invalid("node has no output"))?;
        self.g.by_name.insert(y.clone(), x);
        Ok(())
    }

    fn activation(&mut self, act: Activation) -> Result<()> {
        let x = self.required(0)?;
        let s = self.shape(x);
        self.emit(Op::Activation(act), vec![Some(x)], s)
    }

    fn broadcast(&self, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
        let rank = a.len().max(b.len());
        let mut out = vec![0; rank];
        for d in 0..rank {
            let da = if d + a.len() >= rank {
                a[d + a.len() - rank]
            } else {
                1
            };
            let db = if d + b.len() >= rank {
                b[d + b.len() - rank]
            } else {
                1
            };
            out[d] = match (da, db) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => return Err(self.invalid(format!("shapes {a:?} and {b:?} do not broadcast"))),
            };
        }
        Ok(out)
    }

    fn binary(&mut self, op: BinaryOp, a: usize, b: usize) -> Result<()> {
        let shape = self.broadcast(&self.shape(a), &self.shape(b))?;
        self.emit(
            Op::Binary { op, clamp: None },
            vec![Some(a), Some(b)],
            shape,
        )
    }

    /// Output shape of Reshape/Flatten/Squeeze/Unsqueeze applied to `s`.
    fn reshaped(&self, s: &[usize]) -> Result<Vec<usize>> {
        let n: usize = s.iter().product();
        let shape = match self.node.op_type.as_str() {
            "Reshape" => {
                let target = self.const_ints(1, "shape")?;
                let allow_zero = self.int("allowzero", 0) == 1;
                let mut out: Vec<usize> = Vec::new();
                let mut infer = None;
                for (d, &t) in target.iter().enumerate() {
                    match t {
                        -1 => {
                            infer = Some(d);
                            out.push(1);
                        }
                        0 if !allow_zero => out.push(
                            *s.get(d)
                                .ok_or_else(|| self.invalid("0 in shape past the input rank"))?,
                        ),
                        t if t >= 0 => out.push(t as usize),
                        _ => return Err(self.invalid(format!("bad target shape {target:?}"))),
                    }
                }
                if let Some(d) = infer {
                    let known: usize = out.iter().product();
                    if known == 0 || !n.is_multiple_of(known) {
                        return Err(
                            self.invalid(format!("cannot infer -1 reshaping {s:?} to {target:?}"))
                        );
                    }
                    out[d] = n / known;
                }
                out
            }
            "Flatten" => {
                let axis = self.int("axis", 1);
                let axis = if axis < 0 {
                    axis + s.len() as i64
                } else {
                    axis
                } as usize;
                let outer: usize = s[..axis.min(s.len())].iter().product();
                vec![outer, n / outer.max(1)]
            }
            "Squeeze" => {
                let axes = if self.opset >= 13 {
                    self.input(1)?
                        .map(|_| self.const_ints(1, "axes"))
                        .transpose()?
                } else {
                    self.ints("axes")
                };
                match axes {
                    None => s.iter().copied().filter(|&d| d != 1).collect(),
                    Some(axes) => {
                        let axes: Vec<usize> = axes
                            .iter()
                            .map(|&a| self.axis(a, s.len()))
                            .collect::<Result<_>>()?;
                        s.iter()
                            .enumerate()
                            .filter(|(d, _)| !axes.contains(d))
                            .map(|(_, &v)| v)
                            .collect()
                    }
                }
            }
            _ => {
                let axes = if self.opset >= 13 {
                    self.const_ints(1, "axes")?
                } else {
                    self.ints("axes").unwrap_or_default()
                };
                let rank = s.len() + axes.len();
                let axes: Vec<usize> = axes
                    .iter()
                    .map(|&a| self.axis(a, rank))
                    .collect::<Result<_>>()?;
                let mut it = s.iter();
                (0..rank)
                    .map(|d| {
                        if axes.contains(&d) {
                            1
                        } else {
                            *it.next().unwrap_or(&1)
                        }
                    })
                    .collect()
            }
        };
        if shape.iter().product::<usize>() != n {
            return Err(self.invalid(format!(
                "reshaping {s:?} to {shape:?} changes the element count"
            )));
        }
        Ok(shape)
    }

    /// Value ids of Concat's inputs (at least one).
    fn concat_inputs(&self) -> Result<Vec<usize>> {
        if self.node.input.is_empty() {
            return Err(self.invalid("Concat needs at least one input"));
        }
        (0..self.node.input.len())
            .map(|k| self.required(k))
            .collect()
    }

    /// Concat's axis and output shape from its input shapes, which must agree outside the axis.
    fn concat_shape(&self, shapes: &[Vec<usize>]) -> Result<(usize, Vec<usize>)> {
        let first = shapes
            .first()
            .ok_or_else(|| self.invalid("Concat needs at least one input"))?;
        // `axis` is required from opset 4; opsets 1-3 default it to 1.
        let axis = self.axis(self.int("axis", 1), first.len())?;
        let mut shape = first.clone();
        shape[axis] = 0;
        for s in shapes {
            if s.len() != first.len() || (0..s.len()).any(|d| d != axis && s[d] != first[d]) {
                return Err(self.invalid(format!(
                    "input shapes {first:?} and {s:?} differ outside axis {axis}"
                )));
            }
            shape[axis] += s[axis];
        }
        Ok((axis, shape))
    }

    /// A pair attribute of a 2-D window (`strides`, `dilations`, `output_padding`):
    /// `[default; 2]` when absent, else exactly 2 values, each at least `min`.
    fn pair(&self, name: &str, default: usize, min: i64) -> Result<[usize; 2]> {
        match self.ints(name) {
            None => Ok([default; 2]),
            Some(v) if v.len() == 2 && v.iter().all(|&x| x >= min) => {
                Ok([v[0] as usize, v[1] as usize])
            }
            Some(v) => Err(self.unsupported(format!(
                "{name} = {v:?}: only 2-D windows with values >= {min} are supported"
            ))),
        }
    }

    fn perm(&self, rank: usize) -> Result<Vec<usize>> {
        let perm: Vec<usize> = match self.ints("perm") {
            Some(p) => p
                .iter()
                .map(|&a| self.axis(a, rank))
                .collect::<Result<_>>()?,
            None => (0..rank).rev().collect(),
        };
        let mut sorted = perm.clone();
        sorted.sort_unstable();
        if sorted != (0..rank).collect::<Vec<_>>() {
            return Err(self.invalid(format!("perm {perm:?} is not a permutation")));
        }
        Ok(perm)
    }

    /// Spatial geometry shared by Conv and pooling: `(window, pad_end, out_hw)`.
    fn window(
        &self,
        in_hw: [usize; 2],
        kernel: [usize; 2],
        ceil_mode: bool,
    ) -> Result<(Window2d, [usize; 2], [usize; 2])> {
        if kernel.contains(&0) {
            return Err(self.invalid(format!("zero-size kernel {kernel:?}")));
        }
        let stride = self.pair("strides", 1, 1)?;
        let dilation = self.pair("dilations", 1, 1)?;
        let auto_pad = self.string("auto_pad", "NOTSET");
        let mut begin = [0usize; 2];
        let mut end = [0usize; 2];
        let mut out = [0usize; 2];
        for d in 0..2 {
            let extent = dilation[d] * (kernel[d] - 1) + 1;
            match auto_pad.as_str() {
                "SAME_UPPER" | "SAME_LOWER" => {
                    out[d] = in_hw[d].div_ceil(stride[d]);
                    let total =
                        (out[d].saturating_sub(1) * stride[d] + extent).saturating_sub(in_hw[d]);
                    let small = total / 2;
                    (begin[d], end[d]) = if auto_pad == "SAME_UPPER" {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    };
                }
                "VALID" | "NOTSET" => {
                    if auto_pad == "NOTSET"
                        && let Some(p) = self.ints("pads")
                    {
                        if p.len() != 4 || p.iter().any(|&v| v < 0) {
                            return Err(self.unsupported(format!(
                                "pads {p:?}: only non-negative 2-D pads are supported"
                            )));
                        }
                        begin[d] = p[d] as usize;
                        end[d] = p[d + 2] as usize;
                    }
                    let padded = in_hw[d] + begin[d] + end[d];
                    if padded < extent {
                        return Err(self.invalid(format!(
                            "window {extent} larger than padded input {padded}"
                        )));
                    }
                    let span = padded - extent;
                    out[d] = if ceil_mode {
                        span.div_ceil(stride[d]) + 1
                    } else {
                        span / stride[d] + 1
                    };
                    if ceil_mode && (out[d] - 1) * stride[d] >= in_hw[d] + begin[d] {
                        out[d] -= 1;
                    }
                }
                other => return Err(self.unsupported(format!("auto_pad {other}"))),
            }
        }
        Ok((
            Window2d {
                kernel,
                stride,
                dilation,
                pad_begin: begin,
            },
            end,
            out,
        ))
    }

    fn conv(&mut self) -> Result<()> {
        self.float_inputs(&[0])?;
        let (x, w) = (self.required(0)?, self.required(1)?);
        let bias = self.input(2)?;
        let (xs, ws) = (self.shape(x), self.shape(w));
        if xs.len() != 4 || ws.len() != 4 {
            return Err(self.unsupported("only 2-D convolutions (4-D NCHW input) are supported"));
        }
        self.const_inputs(&[(1, "weights"), (2, "bias")])?;
        let groups = self.int("group", 1).max(1) as usize;
        if xs[1] != ws[1] * groups || ws[0] % groups != 0 {
            return Err(self.invalid(format!(
                "input {xs:?}, weights {ws:?} and group {groups} disagree"
            )));
        }
        let (window, pad_end, out) = self.window([xs[2], xs[3]], [ws[2], ws[3]], false)?;
        self.emit(
            Op::Conv {
                window,
                pad_end,
                groups,
                clamp: None,
            },
            vec![Some(x), Some(w), bias],
            vec![xs[0], ws[0], out[0], out[1]],
        )
    }

    fn conv_transpose(&mut self) -> Result<()> {
        self.float_inputs(&[0])?;
        let (x, w) = (self.required(0)?, self.required(1)?);
        let bias = self.input(2)?;
        let (xs, ws) = (self.shape(x), self.shape(w));
        if xs.len() != 4 || ws.len() != 4 {
            return Err(
                self.unsupported("only 2-D transposed convolutions (4-D NCHW input) are supported")
            );
        }
        self.const_inputs(&[(1, "weights"), (2, "bias")])?;
        let groups = self.int("group", 1).max(1) as usize;
        let (cin, cout_g, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
        if xs[1] != cin || cin % groups != 0 {
            return Err(self.invalid("input channels differ from weights"));
        }
        if kh == 0 || kw == 0 || xs[2] == 0 || xs[3] == 0 {
            return Err(self.invalid(format!(
                "zero-size kernel {:?} or input {:?}",
                [kh, kw],
                [xs[2], xs[3]]
            )));
        }
        let stride = self.pair("strides", 1, 1)?;
        let dilation = self.pair("dilations", 1, 1)?;
        let out_pad = self.pair("output_padding", 0, 0)?;
        let mut begin = [0usize; 2];
        let mut out = [0usize; 2];
        let auto_pad = self.string("auto_pad", "NOTSET");
        let explicit_out = match self.ints("output_shape") {
            Some(os) if os.len() < 2 || os[os.len() - 2..].iter().any(|&v| v < 0) => {
                return Err(self.invalid(format!(
                    "output_shape {os:?} (need at least 2 non-negative values)"
                )));
            }
            Some(os) => Some([os[os.len() - 2] as usize, os[os.len() - 1] as usize]),
            None => None,
        };
        // Explicit pads only count without output_shape and auto_pad SAME_*.
        let uses_pads = explicit_out.is_none() && !auto_pad.starts_with("SAME");
        let pads = match self.ints("pads").filter(|_| uses_pads) {
            None => [0; 4],
            Some(p) if p.len() == 4 && p.iter().all(|&v| v >= 0) => {
                [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize]
            }
            Some(p) => {
                return Err(self.unsupported(format!(
                    "pads {p:?}: only non-negative 2-D pads are supported"
                )));
            }
        };
        for d in 0..2 {
            let k = [kh, kw][d];
            let full = stride[d] * (xs[2 + d] - 1) + out_pad[d] + (k - 1) * dilation[d] + 1;
            if let Some(os) = explicit_out {
                let target = os[d];
                let total = full.saturating_sub(target);
                begin[d] = if auto_pad == "SAME_UPPER" {
                    total / 2
                } else {
                    total - total / 2
                };
                out[d] = target;
            } else if auto_pad.starts_with("SAME") {
                out[d] = xs[2 + d] * stride[d];
                let total = full.saturating_sub(out[d]);
                begin[d] = if auto_pad == "SAME_UPPER" {
                    total / 2
                } else {
                    total - total / 2
                };
            } else {
                begin[d] = pads[d];
                out[d] = full
                    .checked_sub(pads[d] + pads[d + 2])
                    .ok_or_else(|| self.invalid("pads larger than the output"))?;
            }
        }
        // Repack [Cin][Cout/g][kh][kw] -> [Cout][Cin/g][kh][kw].
        let data = self.g.const_f32(w).unwrap_or_default();
        let cin_g = cin / groups;
        let cout = cout_g * groups;
        let khw = kh * kw;
        let mut packed = vec![0f32; data.len()];
        for ic in 0..cin {
            let group = ic / cin_g;
            for ocl in 0..cout_g {
                let oc = group * cout_g + ocl;
                let src = (ic * cout_g + ocl) * khw;
                let dst = (oc * cin_g + ic % cin_g) * khw;
                packed[dst..dst + khw].copy_from_slice(&data[src..src + khw]);
            }
        }
        let name = format!("{}.packed", self.g.values[w].name);
        let wp = self.g.add_value(
            &name,
            vec![cout, cin_g, kh, kw],
            Some(ConstData::F32(packed)),
        );
        let window = Window2d {
            kernel: [kh, kw],
            stride,
            dilation,
            pad_begin: begin,
        };
        self.emit(
            Op::ConvTranspose {
                window,
                groups,
                clamp: None,
            },
            vec![Some(x), Some(wp), bias],
            vec![xs[0], cout, out[0], out[1]],
        )
    }

    /// A fully connected node from `x [.., K]` and weights given as `[K][N]` (`transposed == false`) or `[N][K]`.
    fn fully_connected(
        &mut self,
        x: usize,
        w: Vec<f32>,
        k: usize,
        n: usize,
        transposed: bool,
        bias: Option<Vec<f32>>,
    ) -> Result<()> {
        let packed = if transposed {
            w
        } else {
            let mut p = vec![0f32; w.len()];
            for r in 0..k {
                for c in 0..n {
                    p[c * k + r] = w[r * n + c];
                }
            }
            p
        };
        let base = self.node_name();
        let wv = self.g.add_value(
            &format!("{base}.weight"),
            vec![n, k],
            Some(ConstData::F32(packed)),
        );
        let bv = bias.map(|b| {
            self.g
                .add_value(&format!("{base}.bias"), vec![n], Some(ConstData::F32(b)))
        });
        let mut shape = self.shape(x);
        *shape
            .last_mut()
            .ok_or_else(|| self.invalid("scalar input"))? = n;
        self.emit(
            Op::FullyConnected { clamp: None },
            vec![Some(x), Some(wv), bv],
            shape,
        )
    }

    /// Gemm with a constant B: a fully connected layer (A transposed first for
    /// `transA`); a C that is not a per-column bias becomes an Add after it.
    fn gemm(&mut self) -> Result<()> {
        self.float_inputs(&[0])?;
        let (a, b) = (self.required(0)?, self.required(1)?);
        let (as_, bs) = (self.shape(a), self.shape(b));
        if as_.len() != 2 || bs.len() != 2 {
            return Err(self.invalid(format!("A {as_:?} and B {bs:?} must be 2-D")));
        }
        let bdata = self.g.const_f32(b).ok_or_else(|| {
            self.unsupported(
                "B (input 1) must be a constant (use MatMul for activation x activation products)",
            )
        })?;
        let (a, as_) = if self.int("transA", 0) != 0 {
            let name = format!("{}.a_t", self.node_name());
            let shape = vec![as_[1], as_[0]];
            let t = self.push_node(
                &name,
                &name,
                Op::Transpose { perm: vec![1, 0] },
                vec![Some(a)],
                shape.clone(),
                Elem::F32,
            )?;
            (t, shape)
        } else {
            (a, as_)
        };
        let trans_b = self.int("transB", 0) != 0;
        let (k, n) = if trans_b {
            (bs[1], bs[0])
        } else {
            (bs[0], bs[1])
        };
        if as_[1] != k {
            return Err(self.invalid(format!("A {as_:?} and B {bs:?} disagree")));
        }
        let m = as_[0];
        let alpha = self.float("alpha", 1.0);
        let beta = self.float("beta", 1.0);
        let bdata: Vec<f32> = bdata.iter().map(|v| v * alpha).collect();
        let mut matrix_c = None;
        let bias = match self.input(2)? {
            None => None,
            Some(c) => {
                let cdata = self
                    .g
                    .const_f32(c)
                    .ok_or_else(|| self.unsupported("C (input 2) must be a constant"))?;
                let cs = self.shape(c);
                let per_row = cs.iter().product::<usize>();
                let scaled: Vec<f32> = cdata.iter().map(|v| v * beta).collect();
                if per_row == 1 {
                    Some(vec![scaled[0]; n])
                } else if per_row == n && cs.last() == Some(&n) {
                    Some(scaled)
                } else if broadcast_const(&scaled, &cs, &[m, n]).is_some() {
                    matrix_c = Some((cs, scaled));
                    None
                } else {
                    return Err(self.invalid(format!(
                        "C of shape {cs:?} does not broadcast to [{m}, {n}]"
                    )));
                }
            }
        };
        self.fully_connected(a, bdata, k, n, trans_b, bias)?;
        let Some((cs, c)) = matrix_c else {
            return Ok(());
        };
        // The product gives up the output's name to the Add.
        let product = self
            .g
            .nodes
            .last()
            .map(|node| node.output)
            .unwrap_or_default();
        let y = self.output_name()?.to_string();
        self.g.by_name.remove(&y);
        let renamed = fresh_name(self.g, &format!("{}.product", self.node_name()));
        self.g.values[product].name = renamed.clone();
        self.g.by_name.insert(renamed, product);
        let cv = self.g.add_value(
            &format!("{}.C", self.node_name()),
            cs,
            Some(ConstData::F32(c)),
        );
        self.binary(BinaryOp::Add, product, cv)
    }

    fn batch_norm(&mut self) -> Result<()> {
        self.float_inputs(&[0])?;
        if self.int("training_mode", 0) != 0 {
            return Err(self.unsupported("training_mode = 1 (batch statistics)"));
        }
        if self.node.output.iter().skip(1).any(|o| !o.is_empty()) {
            return Err(
                self.unsupported("running mean/var (or saved statistics) outputs (training mode)")
            );
        }
        let x = self.required(0)?;
        let consts: Vec<Vec<f32>> = (1..5)
            .map(|k| {
                self.konst(k)?.map(|c| c.to_f32()).ok_or_else(|| {
                    let what = ["scale", "B", "input_mean", "input_var"][k - 1];
                    self.unsupported(format!(
                        "{what} (input {k}) must be a constant (inference mode)"
                    ))
                })
            })
            .collect::<Result<_>>()?;
        let eps = self.float("epsilon", 1e-5);
        let s = self.shape(x);
        let c = *s
            .get(1)
            .ok_or_else(|| self.invalid("input needs a channel axis"))?;
        if consts.iter().any(|v| v.len() != c) {
            return Err(self.invalid("parameter lengths differ from the channel count"));
        }
        let scale: Vec<f32> = (0..c)
            .map(|i| consts[0][i] / (consts[3][i] + eps).sqrt())
            .collect();
        let shift: Vec<f32> = (0..c)
            .map(|i| consts[1][i] - consts[2][i] * scale[i])
            .collect();
        let mut cshape = vec![c];
        cshape.extend(std::iter::repeat_n(1, s.len().saturating_sub(2)));
        let base = self.node_name();
        let sv = self.g.add_value(
            &format!("{base}.scale"),
            cshape.clone(),
            Some(ConstData::F32(scale)),
        );
        let bv = self.g.add_value(
            &format!("{base}.shift"),
            cshape,
            Some(ConstData::F32(shift)),
        );
        let mid = self.g.add_value(&format!("{base}.scaled"), s.clone(), None);
        self.g.nodes.push(super::graph::Node {
            name: format!("{base}.mul"),
            op: Op::Binary {
                op: BinaryOp::Mul,
                clamp: None,
            },
            inputs: vec![Some(x), Some(sv)],
            output: mid,
        });
        self.emit(
            Op::Binary {
                op: BinaryOp::Add,
                clamp: None,
            },
            vec![Some(mid), Some(bv)],
            s,
        )
    }

    fn pool(&mut self, max: bool) -> Result<()> {
        self.float_inputs(&[0])?;
        let x = self.required(0)?;
        let s = self.shape(x);
        if s.len() != 4 {
            return Err(self.unsupported("only 2-D pooling (4-D NCHW input) is supported"));
        }
        if self.node.output.len() > 1 {
            return Err(self.unsupported("MaxPool with an Indices output"));
        }
        let kernel = self
            .ints("kernel_shape")
            .filter(|k| k.len() == 2 && k.iter().all(|&v| v >= 1))
            .ok_or_else(|| self.unsupported("kernel_shape must be 2-D"))?;
        let ceil = self.int("ceil_mode", 0) == 1;
        let (window, pad_end, out) =
            self.window([s[2], s[3]], [kernel[0] as usize, kernel[1] as usize], ceil)?;
        let op = if max {
            if self.int("storage_order", 0) != 0 {
                return Err(self.unsupported("storage_order = 1"));
            }
            Op::MaxPool { window }
        } else {
            Op::AvgPool {
                window,
                pad_end,
                count_include_pad: self.int("count_include_pad", 0) == 1,
            }
        };
        self.emit(op, vec![Some(x)], vec![s[0], s[1], out[0], out[1]])
    }

    fn pad(&mut self) -> Result<()> {
        let x = self.required(0)?;
        let s = self.shape(x);
        let rank = s.len();
        let (pads, value) = if self.opset < 11 {
            (
                self.ints("pads").unwrap_or_default(),
                self.float("value", 0.0),
            )
        } else {
            let pads = self.const_ints(1, "pads")?;
            let value = match self.input(2)? {
                None => 0.0,
                Some(_) => self
                    .konst(2)?
                    .ok_or_else(|| self.unsupported("constant_value (input 2) must be a constant"))?
                    .to_f32()
                    .first()
                    .copied()
                    .unwrap_or(0.0),
            };
            // With `axes`, pads name only those axes (begins, then ends).
            let pads = match self.input(3)? {
                None => pads,
                Some(_) => {
                    let axes = self.const_ints(3, "axes")?;
                    if pads.len() != 2 * axes.len() {
                        return Err(self.invalid(format!(
                            "{} pads for {} axes",
                            pads.len(),
                            axes.len()
                        )));
                    }
                    let mut full = vec![0; 2 * rank];
                    for (i, &a) in axes.iter().enumerate() {
                        let d = self.axis(a, rank)?;
                        full[d] = pads[i];
                        full[rank + d] = pads[axes.len() + i];
                    }
                    full
                }
            };
            (pads, value)
        };
        if pads.len() != 2 * rank || pads.iter().any(|&p| p < 0) {
            return Err(
                self.unsupported(format!("pads {pads:?} (need 2 x rank non-negative values)"))
            );
        }
        if self.elem(x) == Elem::I32 && value != 0.0 {
            return Err(self.unsupported(format!(
                "constant_value {value} on an integer tensor (only 0 is supported)"
            )));
        }
        let mode = match self.string("mode", "constant").as_str() {
            "constant" => pad_mode::CONSTANT,
            "reflect" => pad_mode::REFLECT,
            "edge" => pad_mode::EDGE,
            other => return Err(self.unsupported(format!("mode {other}"))),
        };
        let begins: Vec<usize> = pads[..rank].iter().map(|&p| p as usize).collect();
        let ends: Vec<usize> = pads[rank..].iter().map(|&p| p as usize).collect();
        let shape = (0..rank).map(|d| s[d] + begins[d] + ends[d]).collect();
        self.emit(
            Op::Pad {
                mode,
                value,
                begins,
                ends,
            },
            vec![Some(x)],
            shape,
        )
    }

    fn resize(&mut self) -> Result<()> {
        self.float_inputs(&[0])?;
        let x = self.required(0)?;
        let s = self.shape(x);
        if s.len() != 4 {
            return Err(self.unsupported("only 4-D (NCHW) inputs are supported"));
        }
        let upsample = self.node.op_type == "Upsample";
        let (scales_at, sizes_at) = if upsample || self.opset < 11 {
            (1, usize::MAX)
        } else {
            (2, 3)
        };
        if self.int("antialias", 0) != 0 {
            return Err(self.unsupported("antialias = 1"));
        }
        let policy = self.string("keep_aspect_ratio_policy", "stretch");
        if !matches!(policy.as_str(), "stretch" | "not_larger" | "not_smaller") {
            return Err(self.unsupported(format!("keep_aspect_ratio_policy = '{policy}'")));
        }
        // Scales / sizes are given for `axes` (all four by default).
        let axes: Vec<usize> = match self.ints("axes") {
            Some(axes) => axes
                .iter()
                .map(|&a| self.axis(a, 4))
                .collect::<Result<_>>()?,
            None => (0..4).collect(),
        };
        let scales = match self.input(scales_at)? {
            Some(_) => self
                .konst(scales_at)?
                .ok_or_else(|| {
                    self.unsupported(format!("scales (input {scales_at}) must be a constant"))
                })?
                .to_f32(),
            // Upsample-7 and earlier: a float attribute.
            None => attr(self.node, "scales")
                .map(|a| a.floats.clone())
                .unwrap_or_default(),
        };
        let sizes = if sizes_at != usize::MAX {
            self.input(sizes_at)?
                .map(|_| self.const_ints(sizes_at, "sizes"))
                .transpose()?
        } else {
            None
        };
        let per_axis = |what: &str, n: usize| -> Result<()> {
            if n != axes.len() {
                return Err(self.invalid(format!("{n} {what} for {} axes", axes.len())));
            }
            Ok(())
        };
        // ratio = 1 / scale as a rational with denominator 2^16.
        let den = |v: f64| (v * 65536.0).round().max(1.0) as u32;
        let (out, num, den): ([usize; 4], [u32; 2], [u32; 2]) = match (sizes, scales.is_empty()) {
            (Some(sz), _) => {
                per_axis("sizes", sz.len())?;
                let mut full = [s[0], s[1], s[2], s[3]];
                for (&a, &v) in axes.iter().zip(&sz) {
                    full[a] = usize::try_from(v)
                        .map_err(|_| self.invalid(format!("negative size {v}")))?;
                }
                if policy == "stretch" {
                    (
                        full,
                        [s[2] as u32, s[3] as u32],
                        [full[2] as u32, full[3] as u32],
                    )
                } else {
                    // One scale for every listed axis, the output rounded half up.
                    let ratios = axes.iter().map(|&a| full[a] as f64 / s[a].max(1) as f64);
                    let scale = if policy == "not_larger" {
                        ratios.fold(f64::INFINITY, f64::min)
                    } else {
                        ratios.fold(0.0, f64::max)
                    };
                    let mut out = [s[0], s[1], s[2], s[3]];
                    for &a in &axes {
                        out[a] = (scale * s[a] as f64 + 0.5) as usize;
                    }
                    let axis_den = |d: usize| if axes.contains(&d) { den(scale) } else { 65536 };
                    (out, [65536, 65536], [axis_den(2), axis_den(3)])
                }
            }
            (None, false) => {
                per_axis("scales", scales.len())?;
                let mut full = [1f32; 4];
                for (&a, &v) in axes.iter().zip(&scales) {
                    full[a] = v;
                }
                // ONNX maps align_corners coordinates with the unrounded output
                // length `in * scale`; Tern's kernels use the integer output length.
                let mode = self.string("coordinate_transformation_mode", "");
                if mode == "align_corners" && (2..4).any(|d| (s[d] as f32 * full[d]).fract() != 0.0)
                {
                    return Err(self.unsupported(format!(
                        "coordinate_transformation_mode align_corners with scales {scales:?} \
                         giving a fractional output length (give sizes instead)"
                    )));
                }
                let out = [0, 1, 2, 3].map(|d| (s[d] as f32 * full[d]).floor() as usize);
                (
                    out,
                    [65536, 65536],
                    [den(full[2] as f64), den(full[3] as f64)],
                )
            }
            (None, true) => return Err(self.invalid("neither scales nor sizes given")),
        };
        if out[0] != s[0] || out[1] != s[1] {
            return Err(self.unsupported("resizing the batch or channel axis"));
        }
        let mode = self.string("mode", "nearest");
        let linear = match mode.as_str() {
            "nearest" => false,
            "linear" | "bilinear" => true,
            other => return Err(self.unsupported(format!("mode {other}"))),
        };
        let default_coord = if upsample || self.opset < 11 {
            "asymmetric"
        } else {
            "half_pixel"
        };
        let coord = match self
            .string("coordinate_transformation_mode", default_coord)
            .as_str()
        {
            "half_pixel" => CoordinateMode::HalfPixel,
            "pytorch_half_pixel" => CoordinateMode::PytorchHalfPixel,
            "align_corners" => CoordinateMode::AlignCorners,
            "asymmetric" => CoordinateMode::Asymmetric,
            other => {
                return Err(self.unsupported(format!("coordinate_transformation_mode {other}")));
            }
        };
        let default_nearest = if upsample || self.opset < 11 {
            "floor"
        } else {
            "round_prefer_floor"
        };
        let nearest = match self.string("nearest_mode", default_nearest).as_str() {
            "round_prefer_floor" => NearestMode::RoundPreferFloor,
            "round_prefer_ceil" => NearestMode::RoundPreferCeil,
            "floor" => NearestMode::Floor,
            "ceil" => NearestMode::Ceil,
            other => return Err(self.unsupported(format!("nearest_mode {other}"))),
        };
        let params = ResizeParams {
            linear,
            nearest,
            geometry: ResizeGeometry {
                coord,
                ratio_num: num,
                ratio_den: den,
            },
        };
        self.emit(Op::Resize(params), vec![Some(x)], out.to_vec())
    }

    fn softmax(&mut self) -> Result<()> {
        self.float_inputs(&[0])?;
        let x = self.required(0)?;
        let s = self.shape(x);
        let default = if self.opset >= 13 { -1 } else { 1 };
        let axis = self.axis(self.int("axis", default), s.len())?;
        if self.opset >= 13 || axis + 1 == s.len() {
            return self.emit(Op::Softmax { axis }, vec![Some(x)], s);
        }
        // Opset < 13 flattens [axis..] into one axis: reshape, softmax, reshape back.
        let outer: usize = s[..axis].iter().product();
        let inner: usize = s[axis..].iter().product();
        let base = self.node_name();
        let flat = self
            .g
            .add_value(&format!("{base}.flat"), vec![outer, inner], None);
        self.g.nodes.push(super::graph::Node {
            name: format!("{base}.flatten"),
            op: Op::Copy,
            inputs: vec![Some(x)],
            output: flat,
        });
        let soft = self
            .g
            .add_value(&format!("{base}.softmax"), vec![outer, inner], None);
        self.g.nodes.push(super::graph::Node {
            name: base.clone(),
            op: Op::Softmax { axis: 1 },
            inputs: vec![Some(flat)],
            output: soft,
        });
        self.emit(Op::Copy, vec![Some(soft)], s)
    }

    /// Evaluates a node whose inputs are all constants; None when it has no folding rule.
    fn fold(&self) -> Result<Option<(Vec<usize>, ConstData)>> {
        let op = self.node.op_type.as_str();
        let Some(x) = self.input(0)? else {
            return Ok(None);
        };
        let xs = self.shape(x);
        let xd = self.g.values[x]
            .konst
            .clone()
            .unwrap_or(ConstData::F32(vec![]));
        Ok(Some(match op {
            "Cast" => {
                let to = self.int("to", 1);
                let ints =
                    |f: fn(i64) -> i64| ConstData::I64(xd.to_i64().into_iter().map(f).collect());
                let data = match to {
                    1 | 10 | 11 | 16 => ConstData::F32(xd.to_f32()),
                    9 => ConstData::I64(match &xd {
                        ConstData::F32(v) => v.iter().map(|&x| i64::from(x != 0.0)).collect(),
                        ConstData::I64(v) => v.iter().map(|&x| i64::from(x != 0)).collect(),
                    }),
                    // Narrower integer types wrap (as numpy's astype).
                    2 => ints(|v| v as u8 as i64),
                    3 => ints(|v| v as i8 as i64),
                    4 => ints(|v| v as u16 as i64),
                    5 => ints(|v| v as i16 as i64),
                    6 => ints(|v| v as i32 as i64),
                    12 => ints(|v| v as u32 as i64),
                    7 | 13 => ints(|v| v),
                    _ => return Ok(None),
                };
                (xs, data)
            }
            "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" => (self.reshaped(&xs)?, xd),
            "Gather" => {
                let idx = self.const_ints(1, "indices")?;
                let is = self.shape(self.required(1)?);
                let axis = self.axis(self.int("axis", 0), xs.len())?;
                let outer: usize = xs[..axis].iter().product();
                let inner: usize = xs[axis + 1..].iter().product();
                let mut shape = xs[..axis].to_vec();
                shape.extend(&is);
                shape.extend(&xs[axis + 1..]);
                let pick = |o: usize, i: i64, j: usize| -> Result<usize> {
                    let i = if i < 0 { i + xs[axis] as i64 } else { i };
                    if i < 0 || i as usize >= xs[axis] {
                        return Err(self.invalid("gather index out of range"));
                    }
                    Ok((o * xs[axis] + i as usize) * inner + j)
                };
                let mut order = Vec::new();
                for o in 0..outer {
                    for &i in &idx {
                        for j in 0..inner {
                            order.push(pick(o, i, j)?);
                        }
                    }
                }
                let data = match &xd {
                    ConstData::F32(v) => ConstData::F32(order.iter().map(|&k| v[k]).collect()),
                    ConstData::I64(v) => ConstData::I64(order.iter().map(|&k| v[k]).collect()),
                };
                (shape, data)
            }
            "Concat" => {
                let inputs = self.concat_inputs()?;
                let shapes: Vec<Vec<usize>> = inputs.iter().map(|&v| self.shape(v)).collect();
                let (axis, shape) = self.concat_shape(&shapes)?;
                let parts: Vec<&ConstData> = inputs
                    .iter()
                    .map(|&v| {
                        self.g.values[v]
                            .konst
                            .as_ref()
                            .ok_or_else(|| self.invalid("Concat input is not a constant"))
                    })
                    .collect::<Result<_>>()?;
                // Each input block is `shape[axis] * inner` values per outer index.
                let outer: usize = shape[..axis].iter().product();
                let inner: usize = shape[axis + 1..].iter().product();
                let blocks: Vec<usize> = shapes.iter().map(|s| s[axis] * inner).collect();
                let data = if parts.iter().all(|d| matches!(d, ConstData::I64(_))) {
                    let values: Vec<Vec<i64>> = parts.iter().map(|d| d.to_i64()).collect();
                    ConstData::I64(interleave(&values, &blocks, outer))
                } else {
                    let values: Vec<Vec<f32>> = parts.iter().map(|d| d.to_f32()).collect();
                    ConstData::F32(interleave(&values, &blocks, outer))
                };
                (shape, data)
            }
            "Add" | "Sub" | "Mul" | "Div" | "Max" | "Min"
                if self.node.input.len() == 2
                    && matches!(
                        (&xd, self.konst(1)?),
                        (ConstData::I64(_), Some(ConstData::I64(_)))
                    ) =>
            {
                // Integer arithmetic (shape computations) exactly, in i64.
                let b = self.required(1)?;
                let bs = self.shape(b);
                let bd = self.konst(1)?.map(|c| c.to_i64()).unwrap_or_default();
                let shape = self.broadcast(&xs, &bs)?;
                self.check_rank(&shape)?;
                let f = |x: i64, y: i64| -> Option<i64> {
                    match op {
                        "Add" => x.checked_add(y),
                        "Sub" => x.checked_sub(y),
                        "Mul" => x.checked_mul(y),
                        // ONNX integer division truncates (as C and Rust).
                        "Div" => x.checked_div(y),
                        "Max" => Some(x.max(y)),
                        _ => Some(x.min(y)),
                    }
                };
                let Some(data) = broadcast_zip(&xd.to_i64(), &xs, &bd, &bs, &shape, f) else {
                    return Ok(None); // overflow or division by zero: not folded
                };
                (shape, ConstData::I64(data))
            }
            "Max" | "Min" if self.node.input.len() == 1 => (xs, xd),
            "Add" | "Sub" | "Mul" | "Div" => {
                let b = self.required(1)?;
                let bs = self.shape(b);
                let bd = self.g.values[b]
                    .konst
                    .clone()
                    .unwrap_or(ConstData::F32(vec![]));
                let shape = self.broadcast(&xs, &bs)?;
                self.check_rank(&shape)?; // binary_f32's limit
                let bop = match op {
                    "Add" => BinaryOp::Add,
                    "Sub" => BinaryOp::Sub,
                    "Mul" => BinaryOp::Mul,
                    _ => BinaryOp::Div,
                };
                let n: usize = shape.iter().product();
                let mut out = vec![0f32; n];
                binary_f32(
                    bop,
                    &xd.to_f32(),
                    &xs,
                    &bd.to_f32(),
                    &bs,
                    &mut out,
                    &shape,
                    ClampF32::NONE,
                );
                if matches!((&xd, &bd), (ConstData::I64(_), ConstData::I64(_))) {
                    (
                        shape,
                        ConstData::I64(out.iter().map(|&v| v as i64).collect()),
                    )
                } else {
                    (shape, ConstData::F32(out))
                }
            }
            "Sqrt" => (
                xs,
                ConstData::F32(xd.to_f32().iter().map(|v| v.sqrt()).collect()),
            ),
            "Neg" => match xd {
                ConstData::F32(v) => (xs, ConstData::F32(v.iter().map(|x| -x).collect())),
                ConstData::I64(v) => (xs, ConstData::I64(v.iter().map(|x| -x).collect())),
            },
            "Transpose" => {
                self.check_rank(&xs)?; // transpose's limit
                let perm = self.perm(xs.len())?;
                let shape: Vec<usize> = perm.iter().map(|&p| xs[p]).collect();
                let v = xd.to_f32();
                let mut out = vec![0f32; v.len()];
                tern_runtime::kernels::transpose::transpose(&v, &xs, &perm, &mut out);
                (shape, ConstData::F32(out))
            }
            "Slice" if xs.len() == 1 && self.opset >= 10 => {
                let first = |k: usize, what: &str| -> Result<i64> {
                    self.const_ints(k, what)?
                        .first()
                        .copied()
                        .ok_or_else(|| self.invalid(format!("empty {what}")))
                };
                let (start, end) = (first(1, "starts")?, first(2, "ends")?);
                let step = match self.input(4)? {
                    Some(_) => first(4, "steps")?,
                    None => 1,
                };
                let n = xs[0] as i64;
                let norm = |v: i64| if v < 0 { (v + n).max(0) } else { v.min(n) };
                if step != 1 {
                    return Ok(None);
                }
                let (a, b) = (norm(start) as usize, norm(end) as usize);
                let b = b.max(a);
                let data = match xd {
                    ConstData::F32(v) => ConstData::F32(v[a..b].to_vec()),
                    ConstData::I64(v) => ConstData::I64(v[a..b].to_vec()),
                };
                (vec![b - a], data)
            }
            _ => return Ok(None),
        }))
    }
}

/// `f(a, b)` over the numpy broadcast of `a` (shape `sa`) and `b` (shape `sb`)
/// to `shape`; None when `f` fails for some pair.
fn broadcast_zip(
    a: &[i64],
    sa: &[usize],
    b: &[i64],
    sb: &[usize],
    shape: &[usize],
    f: impl Fn(i64, i64) -> Option<i64>,
) -> Option<Vec<i64>> {
    let (stride_a, stride_b) = (
        tern_runtime::kernels::broadcast_strides(sa, shape),
        tern_runtime::kernels::broadcast_strides(sb, shape),
    );
    let n: usize = shape.iter().product();
    let mut index = vec![0usize; shape.len()];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let at =
            |strides: &[usize]| -> usize { index.iter().zip(strides).map(|(i, s)| i * s).sum() };
        out.push(f(a[at(&stride_a)], b[at(&stride_b)])?);
        for d in (0..shape.len()).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Some(out)
}

/// Concatenation of `outer` rounds of one block from each part: `blocks[k]` values of
/// `parts[k]` per round.
fn interleave<T: Copy>(parts: &[Vec<T>], blocks: &[usize], outer: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(blocks.iter().sum::<usize>() * outer);
    for o in 0..outer {
        for (part, &block) in parts.iter().zip(blocks) {
            out.extend_from_slice(&part[o * block..(o + 1) * block]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::passes;
    use crate::onnx::builder::{Dim, GraphBuilder, attr_int, attr_ints};

    fn import_graph(b: GraphBuilder) -> Result<Graph> {
        import(
            &b.into_model("", &[]),
            &ImportOptions {
                batch: 1,
                ..Default::default()
            },
        )
    }

    /// The import fails with a typed error (and does not panic).
    fn rejected(b: GraphBuilder) {
        match import_graph(b) {
            Err(ConvertError::Invalid(_) | ConvertError::UnsupportedOp { .. }) => {}
            Err(e) => panic!("unexpected error kind: {e}"),
            Ok(_) => panic!("malformed model accepted"),
        }
    }

    fn fixed(dims: &[i64]) -> Vec<Dim> {
        dims.iter().map(|&d| Dim::Fixed(d)).collect()
    }

    /// `x [1, 2, x_hw]` (a constant when empty: graph inputs have no 0 dims) through a
    /// ConvTranspose with `attrs` and `[2, 2, kernel]` weights.
    fn conv_transpose(
        kernel: [i64; 2],
        x_hw: [i64; 2],
        attrs: Vec<AttributeProto>,
    ) -> GraphBuilder {
        let mut b = GraphBuilder::new("t");
        let x = if x_hw.contains(&0) {
            b.weight("x", &[1, 2, x_hw[0], x_hw[1]], vec![])
        } else {
            b.input("x", &fixed(&[1, 2, x_hw[0], x_hw[1]]))
        };
        let n = (2 * 2 * kernel[0] * kernel[1]) as usize;
        let w = b.weight("w", &[2, 2, kernel[0], kernel[1]], vec![0.5; n]);
        let y = b.node("ConvTranspose", "y", &[&x, &w], attrs);
        b.output(&y, &[]);
        b
    }

    #[test]
    fn conv_transpose_geometry() {
        let g = import_graph(conv_transpose(
            [3, 3],
            [3, 3],
            vec![
                attr_ints("strides", &[2, 2]),
                attr_ints("pads", &[1, 1, 1, 1]),
            ],
        ))
        .expect("valid ConvTranspose");
        assert_eq!(g.values[g.outputs[0]].shape, vec![1, 2, 5, 5]);
        let g = import_graph(conv_transpose(
            [3, 3],
            [3, 3],
            vec![
                attr_ints("strides", &[2, 2]),
                attr_ints("output_shape", &[6, 6]),
            ],
        ))
        .expect("valid ConvTranspose");
        assert_eq!(g.values[g.outputs[0]].shape, vec![1, 2, 6, 6]);
    }

    #[test]
    fn malformed_conv_transpose_is_an_error() {
        for attrs in [
            vec![attr_ints("strides", &[])],
            vec![attr_ints("dilations", &[])],
            vec![attr_ints("output_padding", &[])],
            vec![attr_ints("strides", &[0, 1])],
            vec![attr_ints("output_shape", &[5])],
            vec![attr_ints("output_shape", &[])],
            vec![attr_ints("output_shape", &[-1, 4])],
            vec![attr_ints("pads", &[1, 1])],
            vec![attr_ints("pads", &[-1, 0, 0, 0])],
        ] {
            rejected(conv_transpose([3, 3], [3, 3], attrs));
        }
        rejected(conv_transpose([0, 3], [3, 3], vec![]));
        rejected(conv_transpose([3, 3], [0, 3], vec![]));
    }

    #[test]
    fn zero_size_conv_kernel_is_an_error() {
        let mut b = GraphBuilder::new("t");
        let x = b.input("x", &fixed(&[1, 1, 4, 4]));
        let w = b.weight("w", &[1, 1, 0, 3], vec![]);
        b.node("Conv", "y", &[&x, &w], vec![]);
        rejected(b);
    }

    #[test]
    fn malformed_concat_is_an_error() {
        // No inputs.
        let mut b = GraphBuilder::new("t");
        b.node("Concat", "y", &[], vec![attr_int("axis", 0)]);
        rejected(b);
        // Scalars have no axis, constant or not.
        let mut b = GraphBuilder::new("t");
        let s = b.scalar("s", 1.0);
        b.node("Concat", "y", &[&s, &s], vec![attr_int("axis", 0)]);
        rejected(b);
        let mut b = GraphBuilder::new("t");
        let x = b.input("x", &[]);
        b.node("Concat", "y", &[&x, &x], vec![attr_int("axis", 0)]);
        rejected(b);
        // Constants whose shapes differ outside the axis.
        let mut b = GraphBuilder::new("t");
        let p = b.weight("p", &[2, 3], vec![0.0; 6]);
        let q = b.weight("q", &[1, 2], vec![0.0; 2]);
        b.node("Concat", "y", &[&p, &q], vec![attr_int("axis", 0)]);
        rejected(b);
    }

    #[test]
    fn constant_concat_folds_like_the_runtime_concat() {
        let mut b = GraphBuilder::new("t");
        let x = b.input("x", &fixed(&[2, 5]));
        let p = b.weight("p", &[2, 2], vec![1.0, 2.0, 3.0, 4.0]);
        let q = b.weight("q", &[2, 1], vec![5.0, 6.0]);
        let pq = b.node("Concat", "pq", &[&p, &q], vec![attr_int("axis", 1)]);
        let t = b.ints("t", &[2, 1]);
        let u = b.ints("u", &[2, 2]);
        b.node("Concat", "tu", &[&t, &u], vec![attr_int("axis", 0)]);
        let y = b.node("Concat", "y", &[&x, &pq], vec![attr_int("axis", 1)]);
        b.output(&y, &[]);
        let g = import_graph(b).expect("imports");
        let pq = &g.values[g.by_name["pq"]];
        assert_eq!(pq.shape, vec![2, 3]);
        assert_eq!(
            pq.konst,
            Some(ConstData::F32(vec![1.0, 2.0, 5.0, 3.0, 4.0, 6.0]))
        );
        let tu = &g.values[g.by_name["tu"]];
        assert_eq!(tu.konst, Some(ConstData::I64(vec![2, 1, 2, 2])));
        assert_eq!(g.values[g.outputs[0]].shape, vec![2, 8]);
    }

    #[test]
    fn gather_of_a_scalar_is_an_error() {
        let mut b = GraphBuilder::new("t");
        let s = b.scalar("s", 1.0);
        let i = b.ints("i", &[0]);
        b.node("Gather", "y", &[&s, &i], vec![]);
        rejected(b);
    }

    #[test]
    fn slice_fold_with_empty_starts_is_an_error() {
        let mut b = GraphBuilder::new("t");
        let x = b.ints("x", &[1, 2, 3]);
        let starts = b.ints("starts", &[]);
        let ends = b.ints("ends", &[2]);
        b.node("Slice", "y", &[&x, &starts, &ends], vec![]);
        rejected(b);
        let mut b = GraphBuilder::new("t");
        let x = b.ints("x", &[1, 2, 3]);
        let starts = b.ints("starts", &[0]);
        let ends = b.ints("ends", &[2]);
        let axes = b.ints("axes", &[0]);
        let steps = b.ints("steps", &[]);
        b.node("Slice", "y", &[&x, &starts, &ends, &axes, &steps], vec![]);
        rejected(b);
    }

    #[test]
    fn node_without_output_is_an_error() {
        let mut b = GraphBuilder::new("t");
        let x = b.input("x", &fixed(&[2]));
        b.node_multi("Dropout", "d", &[&x], &[], vec![]);
        rejected(b);
    }

    #[test]
    fn rank_above_the_format_limit_is_an_error() {
        let mut b = GraphBuilder::new("t");
        b.input("x", &fixed(&[1; MAX_RANK + 1]));
        rejected(b);
        // Transpose of a rank-7 activation (reshaped from a rank-2 input).
        let mut b = GraphBuilder::new("t");
        let x = b.input("x", &fixed(&[2, 3]));
        let s = b.ints("s", &[1, 1, 1, 1, 1, 2, 3]);
        let r = b.node("Reshape", "r", &[&x, &s], vec![]);
        b.node("Transpose", "y", &[&r], vec![]);
        rejected(b);
        // A rank-7 constant that only feeds folding is fine.
        let mut b = GraphBuilder::new("t");
        let x = b.input("x", &fixed(&[2, 3]));
        let c = b.weight("c", &[2, 3], vec![1.0; 6]);
        let s7 = b.ints("s7", &[1, 1, 1, 1, 1, 2, 3]);
        let c7 = b.node("Reshape", "c7", &[&c, &s7], vec![]);
        let s2 = b.ints("s2", &[2, 3]);
        let c2 = b.node("Reshape", "c2", &[&c7, &s2], vec![]);
        let y = b.node("Add", "y", &[&x, &c2], vec![]);
        b.output(&y, &[]);
        import_graph(b).expect("rank-7 constants may be folded away");
    }

    #[test]
    fn constant_graph_outputs_are_materialized() {
        // Shape(x) folds to an int64 constant: a Copy makes it an i32 output named `y`.
        let mut b = GraphBuilder::new("t");
        let x = b.input("x", &fixed(&[2, 3]));
        let y = b.node("Shape", "y", &[&x], vec![]);
        b.output(&y, &[]);
        let g = import_graph(b).expect("imports");
        let out = g.outputs[0];
        assert_eq!(g.values[out].name, "y");
        assert_eq!(g.values[out].elem, Elem::I32);
        assert!(!g.is_const(out));
        let node = g
            .nodes
            .iter()
            .find(|n| n.output == out)
            .expect("a producer");
        assert_eq!(node.op, Op::Copy);
        let src = node.inputs[0].expect("reads the constant");
        assert_eq!(g.values[src].konst, Some(ConstData::I64(vec![2, 3])));
        assert_ne!(g.values[src].name, "y");
        // A graph of constants only has no input to run on: a typed rejection.
        let mut b = GraphBuilder::new("t");
        let c = b.ints("c", &[1, 2]);
        let y = b.node("Identity", "y", &[&c], vec![]);
        b.output(&y, &[]);
        assert!(matches!(
            import_graph(b),
            Err(ConvertError::UnsupportedOp { .. })
        ));
    }

    #[test]
    fn dropout_mask_is_all_true_and_training_is_refused() {
        let mut b = GraphBuilder::new("t");
        let x = b.input("x", &fixed(&[2, 2]));
        b.node_multi("Dropout", "d", &[&x], &["y", "mask"], vec![]);
        b.output("y", &[]);
        b.output("mask", &[]);
        let g = import_graph(b).expect("imports");
        let mask = g.outputs[1];
        let src = g
            .nodes
            .iter()
            .find(|n| n.output == mask)
            .and_then(|n| n.inputs[0]);
        assert_eq!(
            src.and_then(|v| g.values[v].konst.clone()),
            Some(ConstData::I64(vec![1; 4]))
        );
        for ratio in [0.5f32, 0.0] {
            let mut b = GraphBuilder::new("t");
            let x = b.input("x", &fixed(&[2]));
            let r = b.scalar("r", ratio);
            let t = b.ints("t", &[1]); // training_mode = true
            let y = b.node("Dropout", "y", &[&x, &r, &t], vec![]);
            b.output(&y, &[]);
            let result = import_graph(b);
            if ratio == 0.0 {
                result.expect("ratio 0 drops nothing");
            } else {
                assert!(matches!(result, Err(ConvertError::UnsupportedOp { .. })));
            }
        }
    }

    #[test]
    fn integer_folds_are_exact_and_casts_wrap() {
        let mut b = GraphBuilder::new("t");
        let x = b.input("x", &fixed(&[1]));
        let big = b.ints("big", &[(1 << 40) + 1, -7]);
        let two = b.ints("two", &[2]);
        b.node("Div", "q", &[&big, &two], vec![]);
        b.node("Max", "m", &[&big, &two], vec![]);
        let f = b.weight("f", &[3], vec![300.0, -0.5, 0.0]);
        b.node("Cast", "u8", &[&f], vec![attr_int("to", 2)]);
        b.node("Cast", "bool", &[&f], vec![attr_int("to", 9)]);
        b.output(&x, &[]);
        let g = import_graph(b).expect("imports");
        let k = |name: &str| g.values[g.by_name[name]].konst.clone();
        assert_eq!(k("q"), Some(ConstData::I64(vec![1 << 39, -3])));
        assert_eq!(k("m"), Some(ConstData::I64(vec![(1 << 40) + 1, 2])));
        assert_eq!(k("u8"), Some(ConstData::I64(vec![44, 0, 0])));
        assert_eq!(k("bool"), Some(ConstData::I64(vec![1, 1, 0])));
    }

    #[test]
    fn pad_axes_name_the_padded_axes() {
        let mut b = GraphBuilder::new("t");
        let x = b.input("x", &fixed(&[1, 2, 3]));
        let pads = b.ints("pads", &[1, 2, 3, 4]);
        let value = b.scalar("value", 0.0);
        let axes = b.ints("axes", &[-1, 0]);
        let y = b.node("Pad", "y", &[&x, &pads, &value, &axes], vec![]);
        b.output(&y, &[]);
        let g = import_graph(b).expect("imports");
        let out = g.outputs[0];
        assert_eq!(g.values[out].shape, vec![1 + 2 + 4, 2, 3 + 1 + 3]);
    }

    #[test]
    fn folding_into_zero_output_channels_does_not_panic() {
        let mut b = GraphBuilder::new("t");
        let x = b.input("x", &fixed(&[1, 1, 2, 2]));
        let w = b.weight("w", &[0, 1, 1, 1], vec![]);
        let c = b.node("Conv", "c", &[&x, &w], vec![]);
        let k = b.scalar("k", 2.0);
        let y = b.node("Mul", "y", &[&c, &k], vec![]);
        b.output(&y, &[]);
        let mut g = import_graph(b).expect("imports");
        passes::optimize(&mut g);
    }
}
