//! ONNX -> [`Graph`]: reads the protobuf through `tract_onnx::pb`, folds
//! constant subgraphs (Shape/Gather/Concat/ConstantOfShape chains, Unsqueeze of
//! initializers...), infers every static shape, and maps each remaining node to
//! a Tern op. Anything it cannot map is an [`ConvertError::UnsupportedOp`]
//! naming the op type, node and opset: never a silent approximation.
//!
//! The driver lives here: graph inputs, the node loop, constant outputs, and
//! the op registry. Each ONNX op family has its own file holding its import
//! handlers and a registry table `OPS` of `OpEntry` lines (op type, int8
//! support, notes, handler, folding rule); `FAMILIES` concatenates them. That
//! table is also the supported-op list ([`crate::convert::support`]), so adding
//! an op is one handler and one `OPS` line in its family file.
//!
//! Files: `node` (the per-node context), `proto` (tensors and attributes),
//! `constant` (Constant, Shape, Identity, Dropout...), `activation`, `math`,
//! `logic`, `reduce`, `conv` (convolutions and pooling), `matmul`, `nn`
//! (normalizations, Softmax), `array` (reshapes, Transpose, Concat, Pad, Cast),
//! `slice` (Slice, Split, Gather), `resize`, `recurrent`, `attention`.

mod activation;
mod array;
mod attention;
mod constant;
mod conv;
mod logic;
mod math;
mod matmul;
mod nn;
mod node;
mod proto;
mod recurrent;
mod reduce;
mod resize;
mod slice;
#[cfg(test)]
mod tests;

use tern_runtime::format::MAX_RANK;
use tract_onnx::pb::{ModelProto, NodeProto, type_proto};

pub(crate) use math::broadcast_to as broadcast_const;
pub use proto::tensor_data;

use super::ConvertError;
use super::graph::{ConstData, Elem, Graph, Node, Op};
use super::support::{Int8Support, OpSupport};

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

/// The node being imported, and the graph it is imported into.
struct NodeCtx<'a> {
    g: &'a mut Graph,
    node: &'a NodeProto,
    index: usize,
    opset: i64,
}

/// An import handler: adds the node's Tern nodes (or constants) to the graph.
type Import = fn(&mut NodeCtx<'_>) -> Result<()>;

/// A folded node: the output's shape and data.
type Folded = (Vec<usize>, ConstData);

/// A folding rule: the node's output as a constant, given the shape and data
/// of its constant input 0 (the other inputs through the context); None when
/// the rule does not apply (the handler then runs).
type FoldRule = fn(&NodeCtx<'_>, Vec<usize>, ConstData) -> Result<Option<Folded>>;

/// How an op treats constant inputs.
#[derive(Clone, Copy)]
enum Fold {
    /// No folding rule: the handler runs whatever its inputs.
    Never,
    /// With every input constant, the rule is tried before the handler.
    With(FoldRule),
    /// The handler runs first, before any folding: it makes constants or
    /// aliases itself (Constant, Shape, Identity, Dropout).
    BeforeFolding,
}

/// One ONNX op the importer maps: a line of a family's `OPS` table.
struct OpEntry {
    /// Its row of the supported-op list.
    support: OpSupport,
    /// Its import handler.
    import: Import,
    /// Its constant folding.
    fold: Fold,
}

impl OpEntry {
    /// An op without a folding rule.
    const fn new(op: &'static str, int8: Int8Support, notes: &'static str, import: Import) -> Self {
        OpEntry {
            support: OpSupport { op, int8, notes },
            import,
            fold: Fold::Never,
        }
    }

    /// The same op, folded by `rule` when its inputs are all constant.
    const fn folds_with(self, rule: FoldRule) -> Self {
        OpEntry {
            fold: Fold::With(rule),
            ..self
        }
    }

    /// The same op, whose handler runs before any folding.
    const fn before_folding(self) -> Self {
        OpEntry {
            fold: Fold::BeforeFolding,
            ..self
        }
    }
}

/// Every family's `OPS` table.
const FAMILIES: &[&[OpEntry]] = &[
    constant::OPS,
    activation::OPS,
    math::OPS,
    logic::OPS,
    reduce::OPS,
    conv::OPS,
    matmul::OPS,
    nn::OPS,
    array::OPS,
    slice::OPS,
    resize::OPS,
    recurrent::OPS,
    attention::OPS,
];

/// Every registered op, family by family.
fn registry() -> impl Iterator<Item = &'static OpEntry> {
    FAMILIES.iter().flat_map(|family| family.iter())
}

/// The supported-op rows of every registered op, in registry order (see
/// [`crate::convert::support`] for the sorted list).
pub(crate) fn registered_ops() -> impl Iterator<Item = &'static OpSupport> {
    registry().map(|entry| &entry.support)
}

/// The registry entry of ONNX op type `op_type` (default domain).
fn entry(op_type: &str) -> Option<&'static OpEntry> {
    registry().find(|entry| entry.support.op == op_type)
}

impl NodeCtx<'_> {
    /// Imports the node through its registry entry: handlers that fold by
    /// themselves first, then the folding rule when every input is constant,
    /// then the handler. An op without an entry is [`ConvertError::UnsupportedOp`].
    fn import(&mut self) -> Result<()> {
        if !(self.node.domain.is_empty() || self.node.domain == "ai.onnx") {
            return Err(self.unsupported(format!("domain '{}' is not supported", self.node.domain)));
        }
        let entry = entry(&self.node.op_type);
        if let Some(e) = entry
            && matches!(e.fold, Fold::BeforeFolding)
        {
            return (e.import)(self);
        }
        if self.all_inputs_const()?
            && let Some((shape, data)) = self.fold(entry)?
        {
            return self.define_const(shape, data);
        }
        match entry {
            Some(e) => (e.import)(self),
            None => Err(self.unsupported("no Tern kernel for this op")),
        }
    }

    /// Evaluates a node whose inputs are all constants by its op's folding
    /// rule; None when it has none or the rule does not apply.
    fn fold(&self, entry: Option<&OpEntry>) -> Result<Option<Folded>> {
        let Some(x) = self.input(0)? else {
            return Ok(None);
        };
        let Some(Fold::With(rule)) = entry.map(|e| e.fold) else {
            return Ok(None);
        };
        let xs = self.shape(x);
        let xd = self.g.values[x]
            .konst
            .clone()
            .unwrap_or(ConstData::F32(vec![]));
        rule(self, xs, xd)
    }
}
