//! Pattern fusions for sequence models, each applied whole or not at all:
//! - the ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div (+ Mul + Add) chain that
//!   exporters emit for layer normalization -> one LayerNorm;
//! - `x * 0.5 * (1 + erf(x / sqrt 2))` -> one exact GELU;
//! - MatMul(Q, K^T) [* scale] [+ mask] -> Softmax -> MatMul(., V) -> one fused
//!   scaled-dot-product Attention that never stores the score matrix.

use tern_runtime::kernels::BinaryOp;
use tern_runtime::kernels::activation_f32::{Activation, Unary};
use tern_runtime::kernels::reduce_f32::ReduceOp;
use tern_runtime::ops::AttentionParams;

use super::graph::{Graph, Op};

/// Runs the fusions to a fixed point.
pub fn fuse(g: &mut Graph) {
    while fuse_layer_norm(g) || fuse_gelu(g) || fuse_attention(g) {}
}

/// Node index producing each value.
fn producers(g: &Graph) -> Vec<Option<usize>> {
    let mut p = vec![None; g.values.len()];
    for (i, n) in g.nodes.iter().enumerate() {
        p[n.output] = Some(i);
    }
    p
}

struct View<'g> {
    g: &'g Graph,
    prod: Vec<Option<usize>>,
    uses: Vec<usize>,
}

impl View<'_> {
    fn new(g: &Graph) -> View<'_> {
        View {
            g,
            prod: producers(g),
            uses: g.use_counts(),
        }
    }

    /// The node producing `v`, if it is `pred`'s op and `v` has at most `uses` readers.
    fn node(&self, v: usize, uses: usize) -> Option<(usize, &Op, Vec<Option<usize>>)> {
        let i = self.prod[v]?;
        if self.uses[v] > uses {
            return None;
        }
        let n = &self.g.nodes[i];
        Some((i, &n.op, n.inputs.clone()))
    }

    fn scalar(&self, v: usize) -> Option<f32> {
        let c = self.g.values[v].konst.as_ref()?.to_f32();
        (c.len() == 1).then(|| c[0])
    }

    /// `Binary(op)` producing `v` with exactly two operands and no clamp.
    fn binary(&self, v: usize, op: BinaryOp, uses: usize) -> Option<(usize, usize, usize)> {
        match self.node(v, uses)? {
            (i, Op::Binary { op: o, clamp: None }, ins) if *o == op => Some((i, ins[0]?, ins[1]?)),
            _ => None,
        }
    }

    /// Reduce-mean over exactly the trailing axes from `axis`, keeping dims.
    fn mean_trailing(&self, v: usize, uses: usize) -> Option<(usize, usize)> {
        match self.node(v, uses)? {
            (
                _,
                Op::Reduce {
                    op: ReduceOp::Mean,
                    mask,
                },
                ins,
            ) => {
                let x = ins[0]?;
                let rank = self.g.values[x].shape.len();
                let axis = mask.trailing_zeros() as usize;
                let trailing = *mask == ((1u32 << rank) - 1) & !((1u32 << axis) - 1);
                let kept = self.g.values[v].shape.len() == rank;
                (trailing && kept && axis < rank).then_some((x, axis))
            }
            _ => None,
        }
    }
}

fn fuse_layer_norm(g: &mut Graph) -> bool {
    let found = {
        let view = View::new(g);
        (0..g.nodes.len()).find_map(|i| match_layer_norm(&view, i))
    };
    let Some((end, x, axis, epsilon, scale, bias)) = found else {
        return false;
    };
    let shape = g.values[x].shape.clone();
    let cols: usize = shape[axis..].iter().product();
    let mut expand = |v: Option<usize>, what: &str| -> Option<usize> {
        let v = v?;
        let data = g.const_f32(v)?;
        let full = super::import::broadcast_const(&data, &g.values[v].shape, &shape[axis..])?;
        debug_assert_eq!(full.len(), cols);
        let name = format!("{}.{what}", g.nodes[end].name);
        Some(g.add_value(&name, vec![cols], Some(super::graph::ConstData::F32(full))))
    };
    let (scale, bias) = (expand(scale, "scale"), expand(bias, "bias"));
    let node = &mut g.nodes[end];
    node.op = Op::LayerNorm { axis, epsilon };
    node.inputs = vec![Some(x), scale, bias];
    g.remove_dead_nodes();
    true
}

/// `(end node, x, axis, epsilon, scale const, bias const)` of a layer-norm chain ending at node `i`.
type LayerNormMatch = (usize, usize, usize, f32, Option<usize>, Option<usize>);

fn match_layer_norm(view: &View<'_>, i: usize) -> Option<LayerNormMatch> {
    let g = view.g;
    let node = &g.nodes[i];
    // Start at the Div.
    let Op::Binary {
        op: BinaryOp::Div,
        clamp: None,
    } = node.op
    else {
        return None;
    };
    let (d, std) = (node.inputs[0]?, node.inputs[1]?);
    // std = Sqrt(var + eps)
    let (_, Op::Activation(Activation::Unary(Unary::Sqrt)), ins) = view.node(std, 1)? else {
        return None;
    };
    let (_, var, eps) = view.binary(ins[0]?, BinaryOp::Add, 1)?;
    let epsilon = view.scalar(eps)?;
    // var = ReduceMean(Pow(d, 2))
    let (sq, axis) = view.mean_trailing(var, 1)?;
    let (_, Op::Activation(Activation::Powf { exponent }), ins) = view.node(sq, 1)? else {
        return None;
    };
    if *exponent != 2.0 || ins[0]? != d {
        return None;
    }
    // d = x - ReduceMean(x), read by Pow and Div only
    let (_, x, mean) = view.binary(d, BinaryOp::Sub, 2)?;
    let (mx, axis2) = view.mean_trailing(mean, 1)?;
    if mx != x || axis2 != axis {
        return None;
    }
    // Optional Mul(scale) and Add(bias) by constants.
    let mut end = i;
    let (mut scale, mut bias) = (None, None);
    let next = |v: usize, op: BinaryOp| -> Option<(usize, usize)> {
        if view.uses[v] != 1 {
            return None;
        }
        g.nodes.iter().enumerate().find_map(|(j, n)| match n.op {
            Op::Binary { op: o, clamp: None } if o == op && n.inputs.contains(&Some(v)) => {
                let other = n.inputs.iter().flatten().copied().find(|&u| u != v)?;
                g.is_const(other).then_some((j, other))
            }
            _ => None,
        })
    };
    if let Some((j, c)) = next(g.nodes[end].output, BinaryOp::Mul) {
        end = j;
        scale = Some(c);
    }
    if let Some((j, c)) = next(g.nodes[end].output, BinaryOp::Add) {
        end = j;
        bias = Some(c);
    }
    Some((end, x, axis, epsilon, scale, bias))
}

fn fuse_gelu(g: &mut Graph) -> bool {
    let found = {
        let view = View::new(g);
        (0..g.nodes.len()).find_map(|i| match_gelu(&view, i).map(|x| (i, x)))
    };
    let Some((end, x)) = found else {
        return false;
    };
    g.nodes[end].op = Op::Activation(Activation::Unary(Unary::Gelu));
    g.nodes[end].inputs = vec![Some(x)];
    g.remove_dead_nodes();
    true
}

/// `x` when node `i` ends `x * 0.5 * (1 + erf(x / sqrt 2))` in any operand order.
fn match_gelu(view: &View<'_>, i: usize) -> Option<usize> {
    let g = view.g;
    let node = &g.nodes[i];
    let Op::Binary {
        op: BinaryOp::Mul,
        clamp: None,
    } = node.op
    else {
        return None;
    };
    let (a, b) = (node.inputs[0]?, node.inputs[1]?);
    let is = |v: f32, want: f32| (v - want).abs() <= 1e-4 * want.abs();
    // Either (x * (1 + erf)) * 0.5, or (0.5 * x) * (1 + erf), or x * (0.5 * (1 + erf))...
    let half_of = |v: usize| view.scalar(v).filter(|&c| is(c, 0.5));
    let one_plus_erf = |v: usize| -> Option<usize> {
        let (_, p, q) = view.binary(v, BinaryOp::Add, 1)?;
        let (e, one) = if view.scalar(q).is_some() {
            (p, q)
        } else {
            (q, p)
        };
        if !is(view.scalar(one)?, 1.0) {
            return None;
        }
        let (_, Op::Activation(Activation::Unary(Unary::Erf)), ins) = view.node(e, 1)? else {
            return None;
        };
        let arg = ins[0]?;
        if let Some((_, x, c)) = view.binary(arg, BinaryOp::Div, 1)
            && is(view.scalar(c)?, core::f32::consts::SQRT_2)
        {
            return Some(x);
        }
        let (_, p, q) = view.binary(arg, BinaryOp::Mul, 1)?;
        let (x, c) = if view.scalar(q).is_some() {
            (p, q)
        } else {
            (q, p)
        };
        is(view.scalar(c)?, core::f32::consts::FRAC_1_SQRT_2).then_some(x)
    };
    // (x * (1 + erf(x/√2))) * 0.5
    for (m, h) in [(a, b), (b, a)] {
        if half_of(h).is_some()
            && let Some((_, p, q)) = view.binary(m, BinaryOp::Mul, 1)
        {
            for (x, e) in [(p, q), (q, p)] {
                if one_plus_erf(e) == Some(x) {
                    return Some(x);
                }
            }
        }
    }
    // (x * 0.5) * (1 + erf(x/√2))
    for (m, e) in [(a, b), (b, a)] {
        if let Some((_, p, q)) = view.binary(m, BinaryOp::Mul, 1) {
            for (x, h) in [(p, q), (q, p)] {
                if half_of(h).is_some() && one_plus_erf(e) == Some(x) {
                    return Some(x);
                }
            }
        }
    }
    None
}

fn fuse_attention(g: &mut Graph) -> bool {
    let found = {
        let view = View::new(g);
        (0..g.nodes.len()).find_map(|i| match_attention(&view, i).map(|m| (i, m)))
    };
    let Some((end, (q, k, v, mask, scale))) = found else {
        return false;
    };
    g.nodes[end].op = Op::Attention(AttentionParams {
        scale,
        causal: false,
        k_transposed: true,
    });
    g.nodes[end].inputs = vec![Some(q), Some(k), Some(v), mask];
    if mask.is_none() {
        g.nodes[end].inputs.pop();
    }
    g.remove_dead_nodes();
    true
}

/// `(Q, K^T, V, mask, scale)` when node `i` is the final MatMul of an attention block.
fn match_attention(view: &View<'_>, i: usize) -> Option<(usize, usize, usize, Option<usize>, f32)> {
    let g = view.g;
    let node = &g.nodes[i];
    let Op::MatMul = node.op else { return None };
    let (p, v) = (node.inputs[0]?, node.inputs[1]?);
    let (_, Op::Softmax { axis }, ins) = view.node(p, 1)? else {
        return None;
    };
    let mut s = ins[0]?;
    if *axis + 1 != g.values[s].shape.len() {
        return None;
    }
    let mut mask = None;
    if let Some((_, a, b)) = view.binary(s, BinaryOp::Add, 1) {
        // The mask is the operand that is not the scores' MatMul / scaling.
        let is_scores = |u: usize| {
            matches!(
                view.node(u, 1),
                Some((_, Op::MatMul | Op::Binary { .. }, _))
            )
        };
        let (scores, m) = if is_scores(a) { (a, b) } else { (b, a) };
        if g.values[m].shape.len() > 4 || g.values[m].elem != super::graph::Elem::F32 {
            return None;
        }
        mask = Some(m);
        s = scores;
    }
    let mut scale = 1.0;
    for (op, invert) in [(BinaryOp::Div, true), (BinaryOp::Mul, false)] {
        if let Some((_, a, b)) = view.binary(s, op, 1) {
            let (t, c) = if view.scalar(b).is_some() {
                (a, b)
            } else {
                (b, a)
            };
            let c = view.scalar(c)?;
            if op == BinaryOp::Div && view.scalar(a).is_some() {
                return None; // c / scores is not a scaling
            }
            scale = if invert { 1.0 / c } else { c };
            s = t;
            break;
        }
    }
    let (_, Op::MatMul, ins) = view.node(s, 1)? else {
        return None;
    };
    let (q, k) = (ins[0]?, ins[1]?);
    let shape = |u: usize| &g.values[u].shape;
    let (qs, ks, vs) = (shape(q), shape(k), shape(v));
    if qs.len() != 4 || ks.len() != 4 || vs.len() != 4 {
        return None;
    }
    let ok = ks[0] == qs[0]
        && vs[0] == qs[0]
        && ks[1] == vs[1]
        && ks[1] > 0
        && qs[1] % ks[1] == 0
        && ks[2] == qs[3]
        && vs[2] == ks[3];
    ok.then_some((q, k, v, mask, scale))
}
