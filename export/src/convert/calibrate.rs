//! Calibration: runs the float model over sample inputs through the Tern
//! runtime itself, observing every activation, and turns what it saw into an
//! int8 range per value (min/max, percentile, or entropy/KL as TensorRT does).

use std::collections::HashMap;

use tern_runtime::{AlignedBytes, Interpreter, Model};

use super::graph::Graph;
use super::lower::Ranges;
use super::{ConvertError, Precision};

/// How activation ranges are chosen from the observed values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// The observed minimum and maximum.
    Minmax,
    /// The 0.01 and 99.99 percentiles (clips rare outliers).
    Percentile,
    /// The clipping threshold that minimizes the KL divergence of the int8 histogram.
    Entropy,
}

impl Method {
    /// Passes over the samples: min/max needs one, the histogram methods a second.
    pub fn passes(self) -> usize {
        if self == Method::Minmax { 1 } else { 2 }
    }
}

const BINS: usize = 2048;

struct Stats {
    min: f32,
    max: f32,
    hist: Vec<u64>,
}

/// Ranges of every activation of `g` over `samples` (each one input tensor's values).
/// `progress` gets the number of samples run so far, up to `samples.len() * method.passes()`.
pub fn calibrate(
    g: &Graph,
    samples: &[Vec<f32>],
    method: Method,
    mut progress: impl FnMut(usize),
) -> Result<Ranges, ConvertError> {
    let mut file = super::lower::lower(g, Precision::F32, &Ranges::new())?;
    file.plan_arena()?;
    let bytes = AlignedBytes::new(&file.to_bytes("tern-export calibration"));
    let model = Model::from_bytes(&bytes)?;
    let mut interp = Interpreter::with_allocated_arena(&model)?;
    let mut stats: HashMap<String, Stats> = HashMap::new();
    let input_name = g.values[g.inputs[0]].name.clone();
    let passes = method.passes();
    for pass in 0..passes {
        for (k, sample) in samples.iter().enumerate() {
            interp.set_input_f32(0, sample)?;
            let mut observe = |name: &str, values: &[f32]| {
                let s = stats.entry(name.to_string()).or_insert(Stats {
                    min: f32::INFINITY,
                    max: f32::NEG_INFINITY,
                    hist: vec![0; BINS],
                });
                if pass == 0 {
                    for &v in values {
                        if v.is_finite() {
                            s.min = s.min.min(v);
                            s.max = s.max.max(v);
                        }
                    }
                } else {
                    let m = s.min.abs().max(s.max.abs()).max(1e-12);
                    for &v in values {
                        let bin = ((v.abs() / m) * BINS as f32) as usize;
                        s.hist[bin.min(BINS - 1)] += 1;
                    }
                }
            };
            observe(&input_name, sample);
            interp.invoke_observed(|_, t| {
                if let Ok(values) = t.as_f32() {
                    observe(t.info.name, values);
                }
            })?;
            progress(pass * samples.len() + k + 1);
        }
    }
    let mut ranges = Ranges::new();
    for (id, value) in g.values.iter().enumerate() {
        let Some(s) = stats.get(&value.name) else {
            continue;
        };
        if !s.min.is_finite() {
            continue;
        }
        let (min, max) = match method {
            Method::Minmax => (s.min, s.max),
            _ => {
                let m = s.min.abs().max(s.max.abs()).max(1e-12);
                let t = match method {
                    Method::Percentile => percentile_threshold(&s.hist, 0.9999),
                    _ => entropy_threshold(&s.hist),
                } * m;
                (s.min.max(-t), s.max.min(t))
            }
        };
        ranges.insert(id, (min, max));
    }
    Ok(ranges)
}

/// Fraction of the |x| range holding `q` of the mass.
fn percentile_threshold(hist: &[u64], q: f64) -> f32 {
    let total: u64 = hist.iter().sum();
    let mut acc = 0u64;
    for (i, &h) in hist.iter().enumerate() {
        acc += h;
        if acc as f64 >= q * total as f64 {
            return (i + 1) as f32 / hist.len() as f32;
        }
    }
    1.0
}

/// TensorRT-style entropy calibration on the |x| histogram: the threshold
/// whose 128-level quantized distribution is closest (KL) to the clipped original.
fn entropy_threshold(hist: &[u64]) -> f32 {
    const LEVELS: usize = 128;
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return 1.0;
    }
    let mut best = (f64::INFINITY, hist.len());
    for i in (LEVELS..=hist.len()).step_by(16) {
        let mut p: Vec<f64> = hist[..i].iter().map(|&h| h as f64).collect();
        p[i - 1] += hist[i..].iter().sum::<u64>() as f64;
        // Quantize p into LEVELS bins, then expand back over the non-zero bins.
        let chunk = i as f64 / LEVELS as f64;
        let mut q = vec![0f64; i];
        for l in 0..LEVELS {
            let (a, b) = (
                (l as f64 * chunk) as usize,
                (((l + 1) as f64 * chunk) as usize).min(i),
            );
            let sum: f64 = hist[a..b].iter().map(|&h| h as f64).sum();
            let nonzero = hist[a..b].iter().filter(|&&h| h > 0).count();
            if nonzero > 0 {
                for j in a..b {
                    if hist[j] > 0 {
                        q[j] = sum / nonzero as f64;
                    }
                }
            }
        }
        let (ps, qs): (f64, f64) = (p.iter().sum(), q.iter().sum());
        let mut kl = 0.0;
        for j in 0..i {
            if p[j] > 0.0 {
                let pj = p[j] / ps;
                let qj = (q[j] / qs.max(1e-30)).max(1e-12);
                kl += pj * (pj / qj).ln();
            }
        }
        if kl < best.0 {
            best = (kl, i);
        }
    }
    best.1 as f32 / hist.len() as f32
}
