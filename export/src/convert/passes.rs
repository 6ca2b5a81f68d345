//! Graph rewrites done once at conversion: folding per-channel affine ops
//! (BatchNormalization, Mul/Add by per-channel constants) into the convolution
//! or fully connected layer before them, and fusing Relu/Relu6/Clip into the
//! op that produces their input. Each rewrite applies whole or not at all.

use tern_runtime::kernels::BinaryOp;
use tern_runtime::kernels::activation_f32::Activation;

use super::graph::{ConstData, Graph, Op};

/// Runs every pass to a fixed point and drops dead nodes.
pub fn optimize(g: &mut Graph) {
    while fold_affine_into_weights(g) {}
    while fuse_activation(g) {}
    super::fusion::fuse(g);
    g.remove_dead_nodes();
}

/// Per-channel factor of constant `v` for a producer with `channels` outputs:
/// a scalar or a `[C]`, `[C,1,1]`, `[1,C,1,1]`... constant on the channel axis.
fn per_channel(
    g: &Graph,
    v: usize,
    channels: usize,
    out_rank: usize,
    channel_axis: usize,
) -> Option<Vec<f32>> {
    let value = &g.values[v];
    let data = value.konst.as_ref()?.to_f32();
    if data.len() == 1 {
        return Some(vec![data[0]; channels]);
    }
    if data.len() != channels || value.shape.len() > out_rank {
        return None;
    }
    // The one non-1 axis must line up with the channel axis.
    let offset = out_rank - value.shape.len();
    let axis = value.shape.iter().position(|&d| d == channels)? + offset;
    (axis == channel_axis).then_some(data)
}

/// `conv -> Mul/Add/Sub/Div(per-channel const)` becomes one conv with new weights and bias.
fn fold_affine_into_weights(g: &mut Graph) -> bool {
    let uses = g.use_counts();
    for i in 0..g.nodes.len() {
        let Op::Binary { op, clamp: None } = g.nodes[i].op else {
            continue;
        };
        let (Some(a), Some(b)) = (g.nodes[i].inputs[0], g.nodes[i].inputs[1]) else {
            continue;
        };
        if !g.is_const(b) || g.is_const(a) || uses[a] != 1 || g.outputs.contains(&a) {
            continue;
        }
        let Some(p) = g.nodes.iter().position(|n| n.output == a) else {
            continue;
        };
        let (channel_axis, ok) = match &g.nodes[p].op {
            Op::Conv { clamp: None, .. } | Op::ConvTranspose { clamp: None, .. } => (1, true),
            Op::FullyConnected { clamp: None } => (g.values[a].shape.len() - 1, true),
            _ => (0, false),
        };
        if !ok || g.values[g.nodes[i].output].shape != g.values[a].shape {
            continue;
        }
        let Some(w) = g.nodes[p].inputs[1] else {
            continue;
        };
        let channels = g.values[w].shape.first().copied().unwrap_or(0);
        if channels == 0 {
            continue; // no output channel to fold into (and no row length)
        }
        let Some(factor) = per_channel(g, b, channels, g.values[a].shape.len(), channel_axis)
        else {
            continue;
        };
        let (scale, shift): (Vec<f32>, Vec<f32>) = match op {
            BinaryOp::Mul => (factor, vec![0.0; channels]),
            BinaryOp::Div => (
                factor.iter().map(|f| 1.0 / f).collect(),
                vec![0.0; channels],
            ),
            BinaryOp::Add => (vec![1.0; channels], factor),
            BinaryOp::Sub => (vec![1.0; channels], factor.iter().map(|f| -f).collect()),
            BinaryOp::Pow | BinaryOp::Max | BinaryOp::Min => continue,
        };
        if scale.iter().any(|s| !s.is_finite()) {
            continue;
        }
        // New weights: row oc scaled; new bias: bias * scale + shift.
        let mut wdata = g.const_f32(w).unwrap_or_default();
        let row = wdata.len() / channels;
        for (oc, s) in scale.iter().enumerate() {
            wdata[oc * row..(oc + 1) * row]
                .iter_mut()
                .for_each(|x| *x *= s);
        }
        let bias = g.nodes[p]
            .inputs
            .get(2)
            .copied()
            .flatten()
            .and_then(|bv| g.const_f32(bv))
            .unwrap_or(vec![0.0; channels]);
        let bias: Vec<f32> = (0..channels)
            .map(|c| bias[c] * scale[c] + shift[c])
            .collect();
        let wname = format!("{}.folded", g.values[w].name);
        let wshape = g.values[w].shape.clone();
        let new_w = g.add_value(&wname, wshape, Some(ConstData::F32(wdata)));
        let new_b = g.add_value(
            &format!("{}.bias.folded", g.nodes[p].name),
            vec![channels],
            Some(ConstData::F32(bias)),
        );
        let out = g.nodes[i].output;
        let folded_name = g.nodes[i].name.clone();
        let producer = &mut g.nodes[p];
        producer.inputs.resize(3, None);
        producer.inputs[1] = Some(new_w);
        producer.inputs[2] = Some(new_b);
        producer.output = out;
        producer.name = format!("{}+{}", producer.name, folded_name);
        g.nodes.remove(i);
        return true;
    }
    false
}

/// `X -> Relu/Clip` becomes X with a fused clamp, when X's output has no other reader.
fn fuse_activation(g: &mut Graph) -> bool {
    let uses = g.use_counts();
    for i in 0..g.nodes.len() {
        let (min, max) = match g.nodes[i].op {
            Op::Activation(Activation::Relu) => (0.0, f32::INFINITY),
            Op::Activation(Activation::Clip { min, max }) => (min, max),
            _ => continue,
        };
        let Some(x) = g.nodes[i].inputs[0] else {
            continue;
        };
        if uses[x] != 1 || g.outputs.contains(&x) {
            continue;
        }
        let Some(p) = g.nodes.iter().position(|n| n.output == x) else {
            continue;
        };
        let out = g.nodes[i].output;
        let name = g.nodes[i].name.clone();
        let producer = &mut g.nodes[p];
        let Some(slot) = producer.op.clamp_mut() else {
            continue;
        };
        if slot.is_some() {
            continue;
        }
        *slot = Some((min, max));
        producer.output = out;
        producer.name = format!("{}+{}", producer.name, name);
        g.nodes.remove(i);
        return true;
    }
    false
}
