//! The per-node context every import handler works with ([`NodeCtx`]):
//! inputs and their shapes and constants, typed errors naming the node, and
//! emitting Tern nodes and constant values into the graph.

use tern_runtime::format::MAX_RANK;
use tern_runtime::kernels::BinaryOp;
use tern_runtime::kernels::activation_f32::Activation;

use super::{NodeCtx, Result};
use crate::convert::ConvertError;
use crate::convert::graph::{ConstData, Elem, Node, Op};

impl NodeCtx<'_> {
    pub(super) fn node_name(&self) -> String {
        if self.node.name.is_empty() {
            format!("{}#{}", self.node.op_type, self.index)
        } else {
            self.node.name.clone()
        }
    }

    pub(super) fn unsupported(&self, why: impl Into<String>) -> ConvertError {
        ConvertError::UnsupportedOp {
            op_type: self.node.op_type.clone(),
            node: self.node_name(),
            opset: self.opset,
            why: why.into(),
        }
    }

    pub(super) fn invalid(&self, why: impl Into<String>) -> ConvertError {
        ConvertError::Invalid(format!(
            "node '{}' ({}): {}",
            self.node_name(),
            self.node.op_type,
            why.into()
        ))
    }

    /// Value id of input `k`; None when absent or the empty name.
    pub(super) fn input(&self, k: usize) -> Result<Option<usize>> {
        match self.node.input.get(k) {
            None => Ok(None),
            Some(name) if name.is_empty() => Ok(None),
            Some(name) => self.g.by_name.get(name).copied().map(Some).ok_or_else(|| {
                self.invalid(format!("input '{name}' is not produced before this node"))
            }),
        }
    }

    pub(super) fn required(&self, k: usize) -> Result<usize> {
        self.input(k)?
            .ok_or_else(|| self.invalid(format!("missing input {k}")))
    }

    pub(super) fn shape(&self, v: usize) -> Vec<usize> {
        self.g.values[v].shape.clone()
    }

    pub(super) fn konst(&self, k: usize) -> Result<Option<ConstData>> {
        Ok(self.input(k)?.and_then(|v| self.g.values[v].konst.clone()))
    }

    pub(super) fn const_ints(&self, k: usize, what: &str) -> Result<Vec<i64>> {
        self.konst(k)?
            .map(|c| c.to_i64())
            .ok_or_else(|| self.unsupported(format!("{what} (input {k}) must be a constant")))
    }

    /// Fails unless each present input `k` of `(k, what)` is a constant.
    pub(super) fn const_inputs(&self, inputs: &[(usize, &str)]) -> Result<()> {
        for &(k, what) in inputs {
            if let Some(v) = self.input(k)?
                && !self.g.is_const(v)
            {
                return Err(self.unsupported(format!("{what} (input {k}) must be a constant")));
            }
        }
        Ok(())
    }

    pub(super) fn output_name(&self) -> Result<&str> {
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

    pub(super) fn define_const(&mut self, shape: Vec<usize>, data: ConstData) -> Result<()> {
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
    pub(super) fn alias(&mut self, v: usize) -> Result<()> {
        let name = self.output_name()?.to_string();
        self.g.by_name.insert(name, v);
        Ok(())
    }

    /// Rejects shapes the `.tern` format (and the runtime's kernels) cannot hold.
    pub(super) fn check_rank(&self, shape: &[usize]) -> Result<()> {
        if shape.len() > MAX_RANK {
            return Err(self.unsupported(format!(
                "rank {} (shape {shape:?}); Tern supports at most rank {MAX_RANK}",
                shape.len()
            )));
        }
        Ok(())
    }

    pub(super) fn emit(
        &mut self,
        op: Op,
        inputs: Vec<Option<usize>>,
        shape: Vec<usize>,
    ) -> Result<()> {
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
        self.g.nodes.push(crate::convert::graph::Node {
            name: node_name,
            op,
            inputs,
            output,
        });
        Ok(())
    }

    pub(super) fn all_inputs_const(&self) -> Result<bool> {
        for k in 0..self.node.input.len() {
            if let Some(v) = self.input(k)?
                && !self.g.is_const(v)
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub(super) fn axis(&self, axis: i64, rank: usize) -> Result<usize> {
        if rank == 0 {
            return Err(self.invalid(format!("axis {axis} given for a rank-0 (scalar) input")));
        }
        let a = if axis < 0 { axis + rank as i64 } else { axis };
        if a < 0 || a as usize >= rank {
            return Err(self.invalid(format!("axis {axis} out of range for rank {rank}")));
        }
        Ok(a as usize)
    }

    pub(super) fn broadcast(&self, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
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

    pub(super) fn binary(&mut self, op: BinaryOp, a: usize, b: usize) -> Result<()> {
        let shape = self.broadcast(&self.shape(a), &self.shape(b))?;
        self.emit(
            Op::Binary { op, clamp: None },
            vec![Some(a), Some(b)],
            shape,
        )
    }

    pub(super) fn activation(&mut self, act: Activation) -> Result<()> {
        let x = self.required(0)?;
        let s = self.shape(x);
        self.emit(Op::Activation(act), vec![Some(x)], s)
    }

    /// Adds a node named `name` whose output value is `out_name`; returns the value.
    pub(super) fn push_node(
        &mut self,
        name: &str,
        out_name: &str,
        op: Op,
        inputs: Vec<Option<usize>>,
        shape: Vec<usize>,
        elem: Elem,
    ) -> Result<usize> {
        self.check_rank(&shape)?;
        let output = self.g.add_value(out_name, shape, None);
        self.g.values[output].elem = elem;
        self.g.nodes.push(Node {
            name: name.to_string(),
            op,
            inputs,
            output,
        });
        Ok(output)
    }

    /// A node computing this ONNX node's (single) output, of element type `elem`.
    pub(super) fn emit_elem(
        &mut self,
        op: Op,
        inputs: Vec<Option<usize>>,
        shape: Vec<usize>,
        elem: Elem,
    ) -> Result<()> {
        self.emit(op, inputs, shape)?;
        let out = self.g.nodes.last().map(|n| n.output).unwrap_or_default();
        self.g.values[out].elem = elem;
        Ok(())
    }

    /// A helper constant value.
    pub(super) fn add_const(&mut self, suffix: &str, shape: Vec<usize>, data: ConstData) -> usize {
        let name = format!("{}.{suffix}", self.node_name());
        self.g.add_value(&name, shape, Some(data))
    }

    /// Element type of value `v` (integer constants count as i32).
    pub(super) fn elem(&self, v: usize) -> Elem {
        match &self.g.values[v].konst {
            Some(ConstData::I64(_)) => Elem::I32,
            Some(ConstData::F32(_)) => Elem::F32,
            None => self.g.values[v].elem,
        }
    }

    /// Fails unless every listed input is a float tensor.
    pub(super) fn float_inputs(&self, ks: &[usize]) -> Result<()> {
        // Name a run-time integer input before a constant one (that one may fold).
        let mut order = Vec::with_capacity(ks.len());
        for &k in ks {
            if let Some(v) = self.input(k)? {
                order.push((self.g.is_const(v), k, v));
            }
        }
        order.sort_by_key(|&(konst, k, _)| (konst, k));
        for (_, k, v) in order {
            if self.elem(v) != Elem::F32 {
                return Err(self.unsupported(format!(
                    "integer tensor (input {k}): Tern runs this op on float tensors only"
                )));
            }
        }
        Ok(())
    }
}
