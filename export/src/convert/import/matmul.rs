//! Matrix products: Gemm (a constant B: a FullyConnected node, transA as a
//! Transpose, a matrix C as an Add) and MatMul (constant 2-D right operands as
//! FullyConnected, the rest a batched MatMul).

use tern_runtime::kernels::BinaryOp;

use super::math::broadcast_to;
use super::{NodeCtx, OpEntry, Result, fresh_name};
use crate::convert::graph::{ConstData, Elem, Op};
use crate::convert::support::Int8Support::Kernel;

/// This family's registry lines: ONNX op type, int8 support, notes, import
/// handler and folding rule.
pub(super) const OPS: &[OpEntry] = &[
    OpEntry::new(
        "Gemm",
        Kernel,
        "constant B and C; transA as a Transpose, a matrix C as an Add",
        |c| c.gemm(),
    ),
    OpEntry::new(
        "MatMul",
        Kernel,
        "int8 kernel for a constant 2-D right operand; a product of two activations is a float island",
        |c| c.matmul(),
    ),
];

impl NodeCtx<'_> {
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
                } else if broadcast_to(&scaled, &cs, &[m, n]).is_some() {
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

    /// ONNX MatMul: constant 2-D right operands become FullyConnected, the rest a
    /// batched MatMul (1-D operands promoted to 2-D and the extra axis dropped).
    pub(super) fn matmul(&mut self) -> Result<()> {
        self.float_inputs(&[0, 1])?;
        let (a, b) = (self.required(0)?, self.required(1)?);
        let (sa, sb) = (self.shape(a), self.shape(b));
        if sa.is_empty() || sb.is_empty() {
            return Err(self.invalid("MatMul of a scalar"));
        }
        if let Some(bdata) = self.g.const_f32(b)
            && sb.len() == 2
            && sa.last() == Some(&sb[0])
        {
            return self.fully_connected(a, bdata, sb[0], sb[1], false, None);
        }
        let base = self.node_name();
        let mut a2 = a;
        let mut pa = sa.clone();
        if sa.len() == 1 {
            pa = vec![1, sa[0]];
            a2 = self.push_node(
                &format!("{base}.a2d"),
                &format!("{base}.a2d"),
                Op::Copy,
                vec![Some(a)],
                pa.clone(),
                Elem::F32,
            )?;
        }
        let mut b2 = b;
        let mut pb = sb.clone();
        if sb.len() == 1 {
            pb = vec![sb[0], 1];
            b2 = if let Some(c) = self.g.values[b].konst.clone() {
                self.add_const("b2d", pb.clone(), c)
            } else {
                self.push_node(
                    &format!("{base}.b2d"),
                    &format!("{base}.b2d"),
                    Op::Copy,
                    vec![Some(b)],
                    pb.clone(),
                    Elem::F32,
                )?
            };
        }
        let (m, k) = (pa[pa.len() - 2], pa[pa.len() - 1]);
        let (k2, n) = (pb[pb.len() - 2], pb[pb.len() - 1]);
        if k != k2 {
            return Err(self.invalid(format!("MatMul of {sa:?} and {sb:?}: inner sizes differ")));
        }
        let mut shape = self.broadcast(&pa[..pa.len() - 2], &pb[..pb.len() - 2])?;
        shape.extend([m, n]);
        let mut final_shape: Vec<usize> = shape[..shape.len() - 2].to_vec();
        if sa.len() > 1 {
            final_shape.push(m);
        }
        if sb.len() > 1 {
            final_shape.push(n);
        }
        if final_shape == shape {
            return self.emit(Op::MatMul, vec![Some(a2), Some(b2)], shape);
        }
        let full = self.push_node(
            &base,
            &format!("{base}.full"),
            Op::MatMul,
            vec![Some(a2), Some(b2)],
            shape,
            Elem::F32,
        )?;
        self.emit(Op::Copy, vec![Some(full)], final_shape)
    }
}
