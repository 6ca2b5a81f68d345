//! Elementwise arithmetic: Add/Sub/Mul/Div (float, or run-time integers as
//! i32), variadic Sum/Max/Min, Pow, and the unary math ops (Sqrt, Exp, Log,
//! Neg, Abs, Floor, Sin...); with their constant folding (integer shape
//! arithmetic exactly in i64) and numpy broadcasting of constant data.

use tern_runtime::kernels::activation_f32::{Activation, Unary};
use tern_runtime::kernels::binary_f32::binary_f32;
use tern_runtime::kernels::{BinaryOp, ClampF32, Operand};

use super::{Folded, NodeCtx, OpEntry, Result};
use crate::convert::graph::{ConstData, Elem, Op};
use crate::convert::support::Int8Support::Kernel;

/// This family's registry lines: ONNX op type, int8 support, notes, import
/// handler and folding rule.
pub(super) const OPS: &[OpEntry] = &[
    OpEntry::new("Abs", Kernel, "int8 as a lookup table", |c| {
        c.unary(Unary::Abs)
    }),
    OpEntry::new(
        "Add",
        Kernel,
        "numpy broadcasting; float, or int32/int64 as i32",
        |c| c.arith(BinaryOp::Add),
    )
    .folds_with(|c, xs, xd| c.fold_arith(xs, xd)),
    OpEntry::new("Ceil", Kernel, "int8 as a lookup table", |c| {
        c.unary(Unary::Ceil)
    }),
    OpEntry::new("Cos", Kernel, "int8 as a lookup table", |c| {
        c.unary(Unary::Cos)
    }),
    OpEntry::new(
        "Div",
        Kernel,
        "numpy broadcasting; float, or int32/int64 as i32 (truncating)",
        |c| c.arith(BinaryOp::Div),
    )
    .folds_with(|c, xs, xd| c.fold_arith(xs, xd)),
    OpEntry::new("Erf", Kernel, "int8 as a lookup table", |c| {
        c.unary(Unary::Erf)
    }),
    OpEntry::new("Exp", Kernel, "int8 as a lookup table", |c| {
        c.unary(Unary::Exp)
    }),
    OpEntry::new("Floor", Kernel, "int8 as a lookup table", |c| {
        c.unary(Unary::Floor)
    }),
    OpEntry::new("Log", Kernel, "int8 as a lookup table", |c| {
        c.unary(Unary::Log)
    }),
    OpEntry::new(
        "Max",
        Kernel,
        "numpy broadcasting, variadic; float, or int32/int64 as i32",
        |c| c.variadic(BinaryOp::Max),
    )
    .folds_with(|c, xs, xd| c.fold_min_max(xs, xd)),
    OpEntry::new(
        "Min",
        Kernel,
        "numpy broadcasting, variadic; float, or int32/int64 as i32",
        |c| c.variadic(BinaryOp::Min),
    )
    .folds_with(|c, xs, xd| c.fold_min_max(xs, xd)),
    OpEntry::new(
        "Mul",
        Kernel,
        "numpy broadcasting; float, or int32/int64 as i32",
        |c| c.arith(BinaryOp::Mul),
    )
    .folds_with(|c, xs, xd| c.fold_arith(xs, xd)),
    OpEntry::new("Neg", Kernel, "int8 as a lookup table", |c| {
        c.unary(Unary::Neg)
    })
    .folds_with(|c, xs, xd| c.fold_neg(xs, xd)),
    OpEntry::new(
        "Pow",
        Kernel,
        "float base (an integer exponent is cast); int8 as a lookup table for a scalar constant exponent, a float island for a tensor exponent",
        |c| c.pow(),
    ),
    OpEntry::new("Reciprocal", Kernel, "int8 as a lookup table", |c| {
        c.unary(Unary::Reciprocal)
    }),
    OpEntry::new("Round", Kernel, "int8 as a lookup table", |c| {
        c.unary(Unary::Round)
    }),
    OpEntry::new("Sign", Kernel, "int8 as a lookup table", |c| {
        c.unary(Unary::Sign)
    }),
    OpEntry::new("Sin", Kernel, "int8 as a lookup table", |c| {
        c.unary(Unary::Sin)
    }),
    OpEntry::new("Sqrt", Kernel, "int8 as a lookup table", |c| {
        c.unary(Unary::Sqrt)
    })
    .folds_with(|c, xs, xd| c.fold_sqrt(xs, xd)),
    OpEntry::new(
        "Sub",
        Kernel,
        "numpy broadcasting; float, or int32/int64 as i32",
        |c| c.arith(BinaryOp::Sub),
    )
    .folds_with(|c, xs, xd| c.fold_arith(xs, xd)),
    OpEntry::new("Sum", Kernel, "as a chain of Add", |c| c.sum()),
];

impl NodeCtx<'_> {
    /// Add / Sub / Mul / Div: on float tensors, or integer arithmetic when both
    /// operands are integers.
    fn arith(&mut self, bop: BinaryOp) -> Result<()> {
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

    /// Sum: a chain of Adds (the identity for one input).
    fn sum(&mut self) -> Result<()> {
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
            self.g.nodes.push(crate::convert::graph::Node {
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

    pub(super) fn unary(&mut self, u: Unary) -> Result<()> {
        self.float_inputs(&[0])?;
        self.activation(Activation::Unary(u))
    }

    /// `Max`/`Min`/`Pow` and friends: variadic broadcasting binary ops.
    /// Variadic broadcasting Max / Min: a chain of binary ops, on float tensors
    /// or (every input an integer) on i32 tensors.
    pub(super) fn variadic(&mut self, op: BinaryOp) -> Result<()> {
        let n = self.node.input.len();
        let ids = (0..n)
            .map(|k| self.required(k))
            .collect::<Result<Vec<_>>>()?;
        let integer = !ids.is_empty() && ids.iter().all(|&v| self.elem(v) == Elem::I32);
        if !integer {
            self.float_inputs(&(0..n).collect::<Vec<_>>())?;
        }
        let elem = if integer { Elem::I32 } else { Elem::F32 };
        let Some((&first, rest)) = ids.split_first() else {
            return Err(self.invalid("needs at least one input"));
        };
        if rest.is_empty() {
            return self.alias(first);
        }
        let mut acc = first;
        for (k, &b) in rest.iter().enumerate() {
            let shape = self.broadcast(&self.shape(acc), &self.shape(b))?;
            let op = Op::Binary { op, clamp: None };
            if k + 1 == rest.len() {
                return self.emit_elem(op, vec![Some(acc), Some(b)], shape, elem);
            }
            let name = format!("{}.{}", self.node_name(), k + 1);
            acc = self.push_node(&name, &name, op, vec![Some(acc), Some(b)], shape, elem)?;
        }
        Ok(())
    }

    /// Pow of a float base; an integer exponent is cast to float (exact for
    /// the magnitudes where the result is finite in f32).
    pub(super) fn pow(&mut self) -> Result<()> {
        self.float_inputs(&[0])?;
        let (x, mut e) = (self.required(0)?, self.required(1)?);
        if self.elem(e) == Elem::I32 && !self.g.is_const(e) {
            let name = format!("{}.exponent", self.node_name());
            let shape = self.shape(e);
            e = self.push_node(&name, &name, Op::Cast, vec![Some(e)], shape, Elem::F32)?;
        } else if let Some(ConstData::I64(v)) = &self.g.values[e].konst {
            let data = ConstData::F32(v.iter().map(|&i| i as f32).collect());
            e = self.add_const("exponent", self.shape(e), data);
        }
        if let Some(c) = self.g.values[e].konst.as_ref().map(ConstData::to_f32)
            && c.len() == 1
            && self.shape(e).len() <= self.shape(x).len()
        {
            return self.activation(Activation::Powf { exponent: c[0] });
        }
        self.binary(BinaryOp::Pow, x, e)
    }

    /// True when both operands of a two-input node are integer constants
    /// (shape computations).
    fn integer_operands(&self, xd: &ConstData) -> Result<bool> {
        Ok(self.node.input.len() == 2
            && matches!(
                (xd, self.konst(1)?),
                (ConstData::I64(_), Some(ConstData::I64(_)))
            ))
    }

    /// Integer Add/Sub/Mul/Div/Max/Min exactly in i64; None on overflow or
    /// division by zero (not folded).
    fn fold_integer_binary(&self, xs: Vec<usize>, xd: ConstData) -> Result<Option<Folded>> {
        let op = self.node.op_type.as_str();
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
        Ok(Some((shape, ConstData::I64(data))))
    }

    /// Folding rule of Add / Sub / Mul / Div.
    fn fold_arith(&self, xs: Vec<usize>, xd: ConstData) -> Result<Option<Folded>> {
        if self.integer_operands(&xd)? {
            return self.fold_integer_binary(xs, xd);
        }
        let op = self.node.op_type.as_str();
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
            ClampF32::NONE,
            Operand::new(&xd.to_f32(), &xs),
            Operand::new(&bd.to_f32(), &bs),
            &mut out,
            &shape,
        );
        Ok(Some(
            if matches!((&xd, &bd), (ConstData::I64(_), ConstData::I64(_))) {
                (
                    shape,
                    ConstData::I64(out.iter().map(|&v| v as i64).collect()),
                )
            } else {
                (shape, ConstData::F32(out))
            },
        ))
    }

    /// Folding rule of Max / Min: integer pairs, or a single input.
    fn fold_min_max(&self, xs: Vec<usize>, xd: ConstData) -> Result<Option<Folded>> {
        if self.integer_operands(&xd)? {
            return self.fold_integer_binary(xs, xd);
        }
        Ok((self.node.input.len() == 1).then_some((xs, xd)))
    }

    fn fold_sqrt(&self, xs: Vec<usize>, xd: ConstData) -> Result<Option<Folded>> {
        Ok(Some((
            xs,
            ConstData::F32(xd.to_f32().iter().map(|v| v.sqrt()).collect()),
        )))
    }

    fn fold_neg(&self, xs: Vec<usize>, xd: ConstData) -> Result<Option<Folded>> {
        Ok(Some(match xd {
            ConstData::F32(v) => (xs, ConstData::F32(v.iter().map(|x| -x).collect())),
            ConstData::I64(v) => (xs, ConstData::I64(v.iter().map(|x| -x).collect())),
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

/// `data` of `shape` broadcast (numpy rules) to `target`; None when it does not broadcast.
pub(crate) fn broadcast_to(data: &[f32], shape: &[usize], target: &[usize]) -> Option<Vec<f32>> {
    if shape.len() > target.len() {
        // Leading 1s may be dropped.
        let extra = shape.len() - target.len();
        if shape[..extra].iter().any(|&d| d != 1) {
            return None;
        }
        return broadcast_to(data, &shape[extra..], target);
    }
    let offset = target.len() - shape.len();
    for (d, &v) in shape.iter().enumerate() {
        if v != 1 && v != target[d + offset] {
            return None;
        }
    }
    if target.len() > tern_runtime::format::MAX_RANK
        || data.len() != shape.iter().product::<usize>()
    {
        return None;
    }
    let mut out = vec![0f32; target.iter().product()];
    tern_runtime::kernels::expand::expand(data, shape, &mut out, target);
    Some(out)
}
