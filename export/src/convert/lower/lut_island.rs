//! Int8 elementwise islands become one lookup table.
//!
//! A chain of elementwise ops whose only variable input is one int8 tensor `x`
//! (activations, and binaries whose other operand is a scalar constant or another
//! value of the same chain) computes a function of `x` alone: with 256 possible
//! inputs it is one 256-entry table. This catches every exporter spelling of
//! HardSwish (`x * relu6(x + 3) / 6`, `x * HardSigmoid(x)`), SiLU (`x * Sigmoid(x)`),
//! Mul/Add/Div by a constant, and Pow by a constant, and runs each as one `Lut` op
//! with one rounding instead of a chain of requantized int8 binaries.
//!
//! The table evaluates the original float ops on each dequantized input and
//! quantizes the result with the chain's output range, as [`build_lut_s8`] does
//! for a single activation.

use std::collections::{HashMap, HashSet};

use tern_runtime::format::{DType, Opcode};
use tern_runtime::kernels::lut_s8::build_lut_s8;

use super::{Lowering, PrecisionPlan};
use crate::convert::file::{OpDesc, TensorQuant};
use crate::convert::graph::{Elem, Graph, Node, Op};
use crate::convert::{ConvertError, Precision};

/// One table: the chain's input and its nodes in graph order (the last is the root).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Island {
    /// The int8 value the table reads.
    pub(super) x: usize,
    /// Node indices, in graph (topological) order, ending with the root.
    pub(super) nodes: Vec<usize>,
}

/// Every island of a graph: tables at their root nodes, interior nodes dropped.
#[derive(Debug, Default)]
pub(super) struct Islands {
    /// Root node -> its island.
    pub(super) roots: HashMap<usize, Island>,
    /// Nodes whose value only feeds islands: not lowered at all.
    pub(super) interior: HashSet<usize>,
}

/// The scalar of constant `v`, when it holds exactly one element.
fn scalar(g: &Graph, v: usize) -> Option<f32> {
    let data = g.const_f32(v)?;
    (data.len() == 1).then(|| data[0])
}

/// Finds the islands of the nodes `plan` runs in int8.
pub(super) fn find(g: &Graph, plan: &PrecisionPlan) -> Islands {
    // source[v]: for a value made by an island node, the one variable it derives from.
    let mut source: Vec<Option<usize>> = vec![None; g.values.len()];
    let mut member = vec![false; g.nodes.len()];
    for (i, node) in g.nodes.iter().enumerate() {
        if plan.of(i) != Precision::Int8 || g.values[node.output].elem != Elem::F32 {
            continue;
        }
        let arity = match node.op {
            Op::Activation(_) => 1,
            Op::Binary { .. } => 2,
            _ => continue,
        };
        let mut from = None;
        let mut ok = node.inputs.len() == arity;
        for input in node.inputs.iter().take(arity) {
            let Some(v) = *input else {
                ok = false;
                break;
            };
            if g.is_const(v) {
                ok &= scalar(g, v).is_some();
                continue;
            }
            let s = source[v].unwrap_or(v);
            ok &= g.values[s].elem == Elem::F32 && from.is_none_or(|f| f == s);
            from = Some(s);
        }
        if let (true, Some(x)) = (ok, from)
            && g.values[node.output].shape == g.values[x].shape
        {
            source[node.output] = Some(x);
            member[i] = true;
        }
    }
    let producer: HashMap<usize, usize> = g
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.output, i))
        .collect();
    let in_island =
        |v: usize, x: usize| producer.get(&v).is_some_and(|&p| member[p]) && source[v] == Some(x);
    // Roots: island values read outside their island, or graph outputs.
    let mut roots: Vec<usize> = g
        .outputs
        .iter()
        .filter_map(|v| producer.get(v).copied().filter(|&p| member[p]))
        .collect();
    for (j, node) in g.nodes.iter().enumerate() {
        for &v in node.inputs.iter().flatten() {
            let Some(&p) = producer.get(&v).filter(|&&p| member[p]) else {
                continue;
            };
            let x = source[v].expect("members have a source");
            if !(member[j] && source[node.output] == Some(x)) {
                roots.push(p);
            }
        }
    }
    roots.sort_unstable();
    roots.dedup();
    let mut islands = Islands::default();
    for &root in &roots {
        let x = source[g.nodes[root].output].expect("members have a source");
        let mut nodes = vec![root];
        let mut stack = vec![root];
        while let Some(n) = stack.pop() {
            for &v in g.nodes[n].inputs.iter().flatten() {
                if in_island(v, x) {
                    let p = producer[&v];
                    if !nodes.contains(&p) {
                        nodes.push(p);
                        stack.push(p);
                    }
                }
            }
        }
        nodes.sort_unstable();
        islands.roots.insert(root, Island { x, nodes });
    }
    islands.interior = (0..g.nodes.len())
        .filter(|&i| member[i] && !islands.roots.contains_key(&i))
        .collect();
    islands
}

/// The island's float result for input `x`, evaluating its ops in order.
fn evaluate(g: &Graph, island: &Island, x: f32) -> f32 {
    let mut values: HashMap<usize, f32> = HashMap::from([(island.x, x)]);
    let mut last = x;
    for &i in &island.nodes {
        let node = &g.nodes[i];
        let get = |v: Option<usize>| {
            v.and_then(|v| values.get(&v).copied().or_else(|| scalar(g, v)))
                .unwrap_or(f32::NAN)
        };
        last = match node.op {
            Op::Activation(act) => act.apply(get(node.inputs[0])),
            Op::Binary { op, clamp } => {
                let y = op.apply_f32(get(node.inputs[0]), get(node.inputs[1]));
                clamp.map_or(y, |(lo, hi)| y.max(lo).min(hi))
            }
            _ => unreachable!("islands hold activations and binaries only"),
        };
        values.insert(node.output, last);
    }
    last
}

impl Lowering<'_> {
    /// The constant `<name>.lut` holding a 256-entry int8 table.
    pub(super) fn lut_constant(&mut self, name: &str, table: &[i8; 256]) -> u32 {
        self.constant(
            format!("{name}.lut"),
            DType::I8,
            vec![256],
            table.iter().map(|&v| v as u8).collect(),
            TensorQuant::None,
        )
    }

    /// Lowers an island's root `node` to one `Lut` op over the island's input.
    pub(super) fn lut_island(&mut self, node: &Node, island: &Island) -> Result<(), ConvertError> {
        let xt = self.operand(island.x, DType::I8)?;
        let (qx, qy) = (self.q(island.x), self.range_q(node.output)?);
        let y = self.arena_tensor(node.output, DType::I8, qy.into());
        self.qparams.insert(node.output, qy);
        self.tensor_of.insert(node.output, y);
        let g = self.g;
        let table = build_lut_s8(qx.scale, qx.zero_point, qy.scale, qy.zero_point, |v| {
            evaluate(g, island, v)
        });
        let t = self.lut_constant(&node.name, &table);
        self.file.ops.push(OpDesc {
            opcode: Opcode::Lut,
            name: node.name.clone(),
            inputs: vec![xt, t],
            output: y,
            params: vec![],
            scratch: None,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tern_runtime::format::Opcode;
    use tern_runtime::{AlignedBytes, Interpreter, Model};

    use crate::convert::{self, Method, Precision, import::ImportOptions};
    use crate::onnx::builder::{Dim, GraphBuilder};

    const N: usize = 64;

    /// `x [1, N]` through `body`, converted at `precision` (calibrated on a ramp
    /// over [-8, 8]); returns the file's opcodes and its outputs for that ramp.
    fn run(
        precision: Precision,
        body: impl FnOnce(&mut GraphBuilder, &str) -> String,
    ) -> (Vec<Opcode>, Vec<f32>) {
        let mut b = GraphBuilder::new("island");
        let x = b.input("x", &[Dim::Fixed(1), Dim::Fixed(N as i64)]);
        let y = body(&mut b, &x);
        b.output(&y, &[Dim::Fixed(1), Dim::Fixed(N as i64)]);
        let options = ImportOptions {
            batch: 1,
            ..Default::default()
        };
        let graph = convert::graph_from_proto(&b.into_model("", &[]), &options).expect("imports");
        let ramp: Vec<f32> = (0..N)
            .map(|i| -8.0 + 16.0 * i as f32 / (N - 1) as f32)
            .collect();
        let converted = convert::convert(
            &graph,
            precision,
            std::slice::from_ref(&ramp),
            Method::Minmax,
            vec![],
            |_| {},
        )
        .expect("converts");
        let opcodes = converted.file.ops.iter().map(|op| op.opcode).collect();
        let bytes = AlignedBytes::new(&converted.bytes);
        let model = Model::from_bytes(&bytes).expect("valid .tern");
        let mut interp = Interpreter::with_allocated_arena(&model).expect("arena");
        interp.set_input_f32(0, &ramp).expect("input");
        interp.invoke().expect("runs");
        let mut out = vec![0.0; N];
        interp
            .output(0)
            .expect("output")
            .read_f32(&mut out)
            .expect("f32");
        (opcodes, out)
    }

    /// HardSwish as PyTorch exports it: `x * clip(x + 3, 0, 6) / 6`.
    fn hardswish(b: &mut GraphBuilder, x: &str) -> String {
        let three = b.scalar("three", 3.0);
        let (zero, six) = (b.scalar("zero", 0.0), b.scalar("six", 6.0));
        let shifted = b.node("Add", "shifted", &[x, &three], vec![]);
        let clipped = b.node("Clip", "clipped", &[&shifted, &zero, &six], vec![]);
        let product = b.node("Mul", "product", &[x, &clipped], vec![]);
        b.node("Div", "y", &[&product, &six], vec![])
    }

    #[test]
    fn a_hardswish_chain_runs_as_one_table_within_one_output_step() {
        let (f32_ops, reference) = run(Precision::F32, hardswish);
        assert!(f32_ops.len() >= 3, "{f32_ops:?}");
        let (ops, out) = run(Precision::Int8, hardswish);
        let luts = ops.iter().filter(|&&o| o == Opcode::Lut).count();
        assert_eq!(luts, 1, "{ops:?}");
        assert!(!ops.contains(&Opcode::Binary), "{ops:?}");
        // One rounding: every output within one step (range [-0.375, 8] / 255) plus
        // the input's own step times the slope (at most 5/3).
        let step = (8.0 + 0.375) / 255.0 + 16.0 / 255.0 * 5.0 / 3.0;
        for (i, (y, r)) in out.iter().zip(&reference).enumerate() {
            assert!((y - r).abs() <= step, "x[{i}]: int8 {y}, f32 {r}");
        }
    }

    #[test]
    fn silu_a_scalar_mul_and_an_add_of_x_itself_fuse_into_one_table() {
        // s = sigmoid(x); y = (x * s) * 0.5 + s: every value derives from x alone,
        // and `s` is read twice inside the island, so one table results.
        let (ops, _) = run(Precision::Int8, |b, x| {
            let s = b.node("Sigmoid", "s", &[x], vec![]);
            let silu = b.node("Mul", "silu", &[x, &s], vec![]);
            let half = b.scalar("half", 0.5);
            let scaled = b.node("Mul", "scaled", &[&silu, &half], vec![]);
            b.node("Add", "y", &[&scaled, &s], vec![])
        });
        assert_eq!(ops, vec![Opcode::Lut], "{ops:?}");
        // x * sigmoid(x) + x: the Add reads x itself, still one variable.
        let (ops, _) = run(Precision::Int8, |b, x| {
            let s = b.node("Sigmoid", "s", &[x], vec![]);
            let silu = b.node("Mul", "silu", &[x, &s], vec![]);
            b.node("Add", "y", &[&silu, x], vec![])
        });
        assert_eq!(ops, vec![Opcode::Lut], "{ops:?}");
    }

    #[test]
    fn two_variables_are_not_an_island() {
        // y = x * sigmoid(x W): the Mul's operands derive from x and from the MatMul's
        // output, two variables, so only the Sigmoid becomes a table.
        let (ops, _) = run(Precision::Int8, |b, x| {
            let w = b.weight(
                "w",
                &[N as i64, N as i64],
                (0..N * N).map(|i| ((i % 7) as f32 - 3.0) / 16.0).collect(),
            );
            let m = b.node("MatMul", "m", &[x, &w], vec![]);
            let s = b.node("Sigmoid", "s", &[&m], vec![]);
            b.node("Mul", "y", &[x, &s], vec![])
        });
        assert!(ops.contains(&Opcode::Binary), "{ops:?}");
        assert_eq!(
            ops.iter().filter(|&&o| o == Opcode::Lut).count(),
            1,
            "{ops:?}"
        );
    }

    #[test]
    fn a_value_read_outside_its_island_keeps_its_own_table() {
        // s = sigmoid(x) feeds the island (x * s) and a MatMul: both s and x * s are
        // roots, each one table of x; the final Add joins two variables.
        let (ops, _) = run(Precision::Int8, |b, x| {
            let s = b.node("Sigmoid", "s", &[x], vec![]);
            let silu = b.node("Mul", "silu", &[x, &s], vec![]);
            let w = b.weight(
                "w",
                &[N as i64, N as i64],
                (0..N * N).map(|i| ((i % 5) as f32 - 2.0) / 32.0).collect(),
            );
            let m = b.node("MatMul", "m", &[&s, &w], vec![]);
            b.node("Add", "y", &[&silu, &m], vec![])
        });
        let count = |code| ops.iter().filter(|&&o| o == code).count();
        assert_eq!(count(Opcode::Lut), 2, "{ops:?}");
        assert_eq!(count(Opcode::Binary), 1, "{ops:?}");
    }
}
