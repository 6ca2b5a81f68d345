//! ArgMax: the index of the largest (or, with `min`, smallest) element along
//! one axis, as i32, of f32 or int8 values (quantization keeps the order, so
//! int8 needs no requantization). Parameters, check and kernel.

use super::check::{Check, OpCheck, expect_dtype};
use super::params::Words;
use super::registration::{Registration, any_dtype};
use super::run::OpRun;
use crate::error::Result;
use crate::format::{DType, Opcode};

/// f32 and int8 inputs.
pub const ANY: Registration = Registration {
    opcode: Opcode::ArgMax,
    variant: "any",
    supports: any_dtype,
    check,
    run,
};

/// ArgMax / ArgMin parameters (3 words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgMaxParams {
    /// The reduced axis.
    pub axis: usize,
    /// The smallest element instead of the largest (ONNX ArgMin).
    pub min: bool,
    /// On ties, the last index instead of the first (`select_last_index`).
    pub last: bool,
}

impl ArgMaxParams {
    /// Appends the parameter words.
    pub fn encode(&self, out: &mut impl Words) {
        out.word(self.axis as u32);
        out.word(self.min as u32);
        out.word(self.last as u32);
    }
    /// Decodes; flags must be 0 or 1.
    pub fn decode(p: &[u32]) -> Option<ArgMaxParams> {
        let [axis, min, last] = p else { return None };
        ((*min | *last) <= 1).then_some(ArgMaxParams {
            axis: *axis as usize,
            min: *min == 1,
            last: *last == 1,
        })
    }
}

fn check(op: &OpCheck<'_, '_>) -> Check<()> {
    op.arity(1, 1)?;
    let params = ArgMaxParams::decode(op.params()).ok_or("bad ArgMax parameters")?;
    let (x, y) = (op.input(0)?, op.output()?);
    if !matches!(x.dtype, DType::F32 | DType::I8) {
        return Err("ArgMax takes f32 or i8");
    }
    expect_dtype(&y, DType::I32)?;
    if params.axis >= x.rank || x.dims[params.axis] == 0 {
        return Err("ArgMax axis out of range or empty");
    }
    if y.len() * x.dims[params.axis] != x.len() {
        return Err("ArgMax output is not the input without its axis");
    }
    Ok(())
}

fn run(op: &OpRun<'_>) -> Result<()> {
    let params = op.decode(ArgMaxParams::decode)?;
    let x = op.input(0)?;
    let shape = x.shape();
    let geometry = Reduction {
        outer: shape[..params.axis].iter().product(),
        len: shape[params.axis],
        inner: shape[params.axis + 1..].iter().product(),
        min: params.min,
        last: params.last,
    };
    if x.dtype == DType::I8 {
        arg_max::<i8>(&geometry, op.read(x), op.output());
    } else {
        arg_max::<f32>(&geometry, op.read(x), op.output());
    }
    Ok(())
}

/// A reduction of `[outer][len][inner]` over its middle axis.
pub struct Reduction {
    /// Product of the axes before.
    pub outer: usize,
    /// Length of the reduced axis (>= 1).
    pub len: usize,
    /// Product of the axes after.
    pub inner: usize,
    /// Smallest instead of largest.
    pub min: bool,
    /// Last index on ties instead of first.
    pub last: bool,
}

/// For each `(o, i)`, the index `a` of the largest (smallest) `x[o][a][i]`;
/// NaN is never selected over a number (comparisons with NaN are false).
pub fn arg_max<T: Copy + PartialOrd>(r: &Reduction, x: &[T], out: &mut [i32]) {
    for o in 0..r.outer {
        for i in 0..r.inner {
            let at = |a: usize| x.get((o * r.len + a) * r.inner + i).copied();
            let Some(mut best_value) = at(0) else { return };
            let mut best = 0;
            for a in 1..r.len {
                let Some(v) = at(a) else { return };
                let better = if r.min {
                    v < best_value
                } else {
                    v > best_value
                };
                let tie = r.last && v == best_value;
                if better || tie {
                    (best, best_value) = (a, v);
                }
            }
            if let Some(slot) = out.get_mut(o * r.inner + i) {
                *slot = best as i32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_or_last_index_of_the_extreme_along_the_middle_axis() {
        // [outer 1][len 3][inner 2]
        let x = [1.0f32, 5.0, 7.0, 5.0, 7.0, -1.0];
        let mut out = [0; 2];
        let mut r = Reduction {
            outer: 1,
            len: 3,
            inner: 2,
            min: false,
            last: false,
        };
        arg_max(&r, &x, &mut out);
        assert_eq!(out, [1, 0]);
        r.last = true;
        arg_max(&r, &x, &mut out);
        assert_eq!(out, [2, 1]);
        r.min = true;
        arg_max(&r, &x, &mut out);
        assert_eq!(out, [0, 2]);
    }

    #[test]
    fn int8_orders_like_the_values() {
        let x = [-128i8, 127, 0];
        let mut out = [9];
        let r = Reduction {
            outer: 1,
            len: 3,
            inner: 1,
            min: false,
            last: false,
        };
        arg_max(&r, &x, &mut out);
        assert_eq!(out, [1]);
    }

    #[test]
    fn parameters_round_trip_and_reject_bad_flags() {
        let p = ArgMaxParams {
            axis: 2,
            min: true,
            last: false,
        };
        let mut words = alloc_free_words();
        p.encode(&mut words);
        assert_eq!(ArgMaxParams::decode(&words.0[..words.1]), Some(p));
        assert_eq!(ArgMaxParams::decode(&[0, 2, 0]), None);
        assert_eq!(ArgMaxParams::decode(&[0, 0]), None);
    }

    struct Fixed([u32; 4], usize);
    impl Words for Fixed {
        fn word(&mut self, w: u32) {
            self.0[self.1] = w;
            self.1 += 1;
        }
    }
    fn alloc_free_words() -> Fixed {
        Fixed([0; 4], 0)
    }
}
