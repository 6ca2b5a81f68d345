//! `tern bench --profile`: time per op and per op type, so that "what limits it" is
//! read off a table. Each op's time is the median, over the timed invocations, of
//! the time between the end of the op before it and its own end (the interpreter's
//! observer runs after every op), so the per-op times add up to the invoke.

use std::fmt::Write as _;
use std::time::Instant;

use tern_runtime::format::DType;
use tern_runtime::{Interpreter, Model};

use crate::bench::BenchOptions;

/// One op's line of the profile.
#[derive(Clone, Debug, PartialEq)]
pub struct OpTime {
    /// Op index in the model.
    pub index: usize,
    /// The op's name (its ONNX node, as converted).
    pub name: String,
    /// The op type (opcode name).
    pub opcode: &'static str,
    /// The output's element type.
    pub dtype: DType,
    /// The output's shape.
    pub shape: Vec<usize>,
    /// Median microseconds of the op.
    pub micros: f64,
}

/// What [`profile`] measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// Every op, in model order.
    pub ops: Vec<OpTime>,
    /// Median microseconds of the whole invoke, timed separately.
    pub total_micros: f64,
}

/// Profiles `model` on `input` (input 0's values) with `options`' iterations,
/// warm-up and int8 kernels.
pub fn profile(
    model: &Model<'_>,
    input: &[f32],
    options: &BenchOptions,
) -> Result<Profile, tern_runtime::Error> {
    let mut interp = Interpreter::with_allocated_arena(model)?;
    interp.set_int8_kernels(options.kernels);
    interp.set_input_f32(0, input)?;
    for _ in 0..options.warmup.max(1) {
        interp.invoke()?;
    }
    let ops = model.op_count();
    let iterations = options.iterations.get();
    // samples[op][iteration]
    let mut samples = vec![Vec::with_capacity(iterations); ops];
    let mut totals = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        let mut last = start;
        interp.invoke_observed(|op, _| {
            let now = Instant::now();
            samples[op.index].push(1e6 * (now - last).as_secs_f64());
            last = now;
        })?;
        totals.push(1e6 * start.elapsed().as_secs_f64());
    }
    // A loaded model was validated: every op record and its output tensor exist.
    let lines = samples
        .iter_mut()
        .enumerate()
        .filter_map(|(index, times)| {
            let op = model.op(index)?;
            let output = model.tensor(*op.outputs.first()? as usize)?;
            Some(OpTime {
                index,
                name: op.name.to_string(),
                opcode: op.opcode.name(),
                dtype: output.dtype,
                shape: output.shape().to_vec(),
                micros: median(times),
            })
        })
        .collect();
    Ok(Profile {
        ops: lines,
        total_micros: median(&mut totals),
    })
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

impl Profile {
    /// Time per op type (opcode and output type), largest first: (label, ops, micros).
    pub fn by_type(&self) -> Vec<(String, usize, f64)> {
        let mut groups: Vec<(String, usize, f64)> = Vec::new();
        for op in &self.ops {
            let label = format!("{} {}", op.opcode, dtype_name(op.dtype));
            match groups.iter_mut().find(|g| g.0 == label) {
                Some(group) => {
                    group.1 += 1;
                    group.2 += op.micros;
                }
                None => groups.push((label, 1, op.micros)),
            }
        }
        groups.sort_by(|a, b| b.2.total_cmp(&a.2));
        groups
    }

    /// The two tables: per op type, then the `top` slowest ops.
    pub fn render(&self, top: usize) -> String {
        let sum: f64 = self.ops.iter().map(|o| o.micros).sum();
        let share = |us: f64| 100.0 * us / sum.max(f64::MIN_POSITIVE);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "invoke median {:.1} us; per-op medians add up to {:.1} us",
            self.total_micros, sum
        );
        let _ = writeln!(
            s,
            "int8 GEMM micro-kernel: {}",
            tern_runtime::kernels::int8_gemm_variant()
        );
        let _ = writeln!(
            s,
            "{:<28} {:>5} {:>11} {:>7}",
            "op type", "ops", "us", "share"
        );
        for (label, count, us) in self.by_type() {
            let _ = writeln!(s, "{label:<28} {count:>5} {us:>11.1} {:>6.1}%", share(us));
        }
        let mut slowest: Vec<&OpTime> = self.ops.iter().collect();
        slowest.sort_by(|a, b| b.micros.total_cmp(&a.micros));
        let _ = writeln!(
            s,
            "\n{:<5} {:<30} {:<16} {:<5} {:<20} {:>10} {:>7}",
            "#", "node", "op", "type", "output shape", "us", "share"
        );
        for op in slowest.into_iter().take(top) {
            let mut name = op.name.clone();
            if name.len() > 30 {
                name = format!("{}..", &name[..name.floor_char_boundary(28)]);
            }
            let _ = writeln!(
                s,
                "{:<5} {:<30} {:<16} {:<5} {:<20} {:>10.1} {:>6.1}%",
                op.index,
                name,
                op.opcode,
                dtype_name(op.dtype),
                format!("{:?}", op.shape),
                op.micros,
                share(op.micros)
            );
        }
        s
    }
}

fn dtype_name(dtype: DType) -> &'static str {
    match dtype {
        DType::F32 => "f32",
        DType::I8 => "i8",
        DType::I32 => "i32",
        DType::F16 => "f16",
    }
}
