//! `cargo xtask bench [--seconds S] [NAME...]`: the side-by-side benchmark. For the
//! four fixtures and the real models of `benches/real_models.tsv`, on this machine,
//! one thread, batch 1, in one run: Tern f32 and int8 and tract f32
//! (`benches/side_by_side.rs`), ONNX Runtime fp32 and static QDQ int8
//! (`tools/bench/ort_bench.py`, the pinned PyPI wheel in the project venv), all fed
//! the same inputs (`tools/bench/inputs.py`) and int8 calibrated on the same samples.
//! Prints medians, ratios, GMAC/s and each int8 output's cosine to f32, and writes
//! the table to `target/bench/side_by_side.md`. A benchmark, not a test.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{capture_quiet, cargo, models, root, run};

/// Wheels the benchmark adds to the project venv.
const BENCH_WHEELS: &[&str] = &["onnxruntime==1.32.0", "pillow==12.0.0"];

/// The committed fixtures: all Fashion-MNIST classifiers with one `image` input.
const FIXTURES: &[&str] = &["cnn", "lstm", "gru", "transformer"];

/// One model of the run.
struct Subject {
    name: String,
    onnx: PathBuf,
    input: String,
    data: String,
    real: bool,
}

/// What one model measured (milliseconds unless named otherwise; `None` where that
/// part failed, its reason in `errors`). Cosines: Tern f32 to tract, Tern int8 to
/// Tern f32, ORT int8 to ORT fp32.
struct Row {
    name: String,
    macs: Option<f64>,
    ort_fp32: Option<f64>,
    ort_int8: Option<f64>,
    ort_overhead: Option<f64>,
    ort_int8_cosine: Option<f64>,
    tract: Option<f64>,
    tern_f32: Option<f64>,
    tern_int8: Option<f64>,
    tern_f32_cosine: Option<f64>,
    tern_int8_cosine: Option<f64>,
    errors: Vec<String>,
    real: bool,
}

impl Row {
    fn int8_vs_best_ort(&self) -> Option<f64> {
        let best = match (self.ort_fp32, self.ort_int8) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(self.tern_int8? / best)
    }
}

pub(crate) fn bench(args: &[String]) -> Result<(), String> {
    let mut seconds = "2".to_string();
    let mut names = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => seconds = it.next().ok_or("--seconds needs a value")?.clone(),
            other if other.starts_with("--") => {
                return Err(format!("unknown bench option {other}"));
            }
            name => names.push(name.to_string()),
        }
    }
    let subjects = subjects(&names)?;
    let python = crate::venv_python()?;
    ensure_wheels(&python)?;
    if subjects.iter().any(|s| s.data == "speech-mel") {
        crate::ensure_debian_package("espeak-ng", "/usr/bin/espeak-ng")?;
    }
    let cache = models::cache_dir();
    for data in models::data_files()? {
        models::fetch(&data, &cache)?;
    }
    let out_dir = root().join("target/bench");
    let mut rows = Vec::new();
    for subject in &subjects {
        eprintln!("xtask: bench {} ({})", subject.name, subject.onnx.display());
        rows.push(measure(
            subject,
            &python,
            &cache,
            &out_dir.join(&subject.name),
            &seconds,
        )?);
    }
    let table = render(&rows);
    println!("{table}");
    let path = out_dir.join("side_by_side.md");
    std::fs::write(&path, &table).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("xtask: table written to {}", path.display());
    Ok(())
}

/// The fixtures and the real models, or those named.
fn subjects(names: &[String]) -> Result<Vec<Subject>, String> {
    let cache = models::cache_dir();
    let mut all: Vec<Subject> = FIXTURES
        .iter()
        .map(|name| Subject {
            name: (*name).into(),
            onnx: root().join(format!("tests/fixtures/{name}.onnx")),
            input: "image=1,1,28,28".into(),
            data: "fashion-mnist".into(),
            real: false,
        })
        .collect();
    for model in models::list()? {
        let wanted = names.is_empty() || names.contains(&model.name);
        let onnx = if wanted {
            models::fetch(&model.asset, &cache)?
        } else {
            PathBuf::new()
        };
        all.push(Subject {
            name: model.name,
            onnx,
            input: model.input,
            data: model.data,
            real: true,
        });
    }
    if names.is_empty() {
        return Ok(all);
    }
    for name in names {
        if !all.iter().any(|s| &s.name == name) {
            return Err(format!(
                "no model {name}: fixtures {FIXTURES:?} or benches/real_models.tsv"
            ));
        }
    }
    Ok(all
        .into_iter()
        .filter(|s| names.contains(&s.name))
        .collect())
}

fn ensure_wheels(python: &Path) -> Result<(), String> {
    let check = "import onnxruntime, PIL, sys; \
                 sys.exit(onnxruntime.__version__ != sys.argv[1] or PIL.__version__ != sys.argv[2])";
    let version = |w: &str| w.split_once("==").map_or("", |(_, v)| v).to_string();
    let ok = Command::new(python)
        .args([
            "-c",
            check,
            &version(BENCH_WHEELS[0]),
            &version(BENCH_WHEELS[1]),
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Ok(());
    }
    run(Command::new(python)
        .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
        .args(BENCH_WHEELS))
}

fn measure(
    subject: &Subject,
    python: &Path,
    cache: &Path,
    dir: &Path,
    seconds: &str,
) -> Result<Row, String> {
    let (input_name, shape) = subject.input.split_once('=').ok_or_else(|| {
        format!(
            "{}: input '{}' is not name=dims",
            subject.name, subject.input
        )
    })?;
    if subject.input.contains(';') {
        return Err(format!("{}: the benchmark feeds one input", subject.name));
    }
    let samples = dir.join("samples");
    run(Command::new(python)
        .arg(root().join("tools/bench/inputs.py"))
        .args([subject.data.as_str(), shape])
        .arg(cache)
        .arg(&samples))?;
    let mut errors = Vec::new();
    let tern = capture_quiet(
        cargo()
            .current_dir(root())
            .args([
                "bench",
                "-q",
                "-p",
                "tern-benches",
                "--bench",
                "side_by_side",
                "--",
            ])
            .arg(&subject.onnx)
            .arg(&subject.input)
            .arg(&samples)
            .arg(seconds),
    )?;
    errors.extend(
        tern.lines()
            .filter_map(|l| l.strip_prefix("error: "))
            .map(str::to_owned),
    );
    let ort = capture_quiet(
        Command::new(python)
            .arg(root().join("tools/bench/ort_bench.py"))
            .arg(&subject.onnx)
            .arg(input_name)
            .arg(&samples)
            .arg(dir)
            .args(["--seconds", seconds]),
    )
    .unwrap_or_else(|e| {
        errors.push(format!(
            "onnxruntime: {}",
            e.lines().last().unwrap_or("failed")
        ));
        String::new()
    });
    Ok(Row {
        name: subject.name.clone(),
        macs: number(&tern, "macs"),
        ort_fp32: number(&ort, "fp32_ms"),
        ort_int8: number(&ort, "int8_ms"),
        ort_overhead: number(&ort, "overhead_ms"),
        ort_int8_cosine: number(&ort, "int8_cosine"),
        tract: number(&tern, "tract_ms"),
        tern_f32: number(&tern, "tern_f32_ms"),
        tern_int8: number(&tern, "tern_int8_ms"),
        tern_f32_cosine: number(&tern, "tern_f32_cosine"),
        tern_int8_cosine: number(&tern, "tern_int8_cosine"),
        errors,
        real: subject.real,
    })
}

/// The number after `"key":` in a flat JSON object.
fn number(json: &str, key: &str) -> Option<f64> {
    let at = json.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = json[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

/// `value` with `decimals`, or a dash for a failed part.
fn cell(value: Option<f64>, decimals: usize, suffix: &str) -> String {
    value.map_or("—".into(), |v| format!("{v:.decimals$}{suffix}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? / b?)
}

fn render(rows: &[Row]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "Machine: {}", cpu_description());
    let _ = writeln!(
        s,
        "One thread, batch 1, median ms per inference (Tern: f32 array in to every output read back as f32; ONNX Runtime: `session.run` from Python, its per-call cost on a one-op model in the `ORT call` column). Cosines: Tern f32 to tract, Tern int8 to Tern f32, ORT int8 to ORT fp32.\n"
    );
    let _ = writeln!(
        s,
        "| model | MMAC | ORT fp32 | ORT int8 | tract f32 | Tern f32 | Tern int8 | Tern int8 / best ORT | Tern f32 / tract | Tern f32 / ORT fp32 | Tern int8 GMAC/s | cos Tern f32 | cos Tern int8 | cos ORT int8 | ORT call |"
    );
    let _ = writeln!(
        s,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            cell(r.macs.map(|m| m / 1e6), 1, ""),
            cell(r.ort_fp32, 3, ""),
            cell(r.ort_int8, 3, ""),
            cell(r.tract, 3, ""),
            cell(r.tern_f32, 3, ""),
            cell(r.tern_int8, 3, ""),
            cell(r.int8_vs_best_ort(), 2, "x"),
            cell(ratio(r.tern_f32, r.tract), 2, "x"),
            cell(ratio(r.tern_f32, r.ort_fp32), 2, "x"),
            cell(ratio(r.macs, r.tern_int8.map(|t| t * 1e6)), 2, ""),
            cell(r.tern_f32_cosine, 5, ""),
            cell(r.tern_int8_cosine, 4, ""),
            cell(r.ort_int8_cosine, 4, ""),
            cell(r.ort_overhead, 3, ""),
        );
    }
    let real: Vec<f64> = rows
        .iter()
        .filter(|r| r.real)
        .filter_map(Row::int8_vs_best_ort)
        .collect();
    if !real.is_empty() {
        let geomean = (real.iter().map(|x| x.ln()).sum::<f64>() / real.len() as f64).exp();
        let _ = writeln!(
            s,
            "\nTern int8 / best ONNX Runtime, geometric mean over the {} real models that ran: {geomean:.2}x",
            real.len()
        );
    }
    for r in rows {
        for e in &r.errors {
            let _ = writeln!(s, "\n{}: {e}", r.name);
        }
    }
    s
}

/// CPU model and the SIMD features the kernels choose from, from `/proc/cpuinfo`.
fn cpu_description() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, m)| m.trim())
        })
        .unwrap_or("unknown CPU");
    let flags: Vec<&str> = info
        .lines()
        .find_map(|l| {
            l.strip_prefix("flags")
                .and_then(|r| r.split_once(':'))
                .map(|(_, f)| f)
        })
        .map(|f| {
            f.split_whitespace()
                .filter(|f| {
                    matches!(
                        *f,
                        "avx2"
                            | "fma"
                            | "f16c"
                            | "avx512f"
                            | "avx512bw"
                            | "avx512_vnni"
                            | "avx_vnni"
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    format!("{model} ({})", flags.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_from_a_flat_json_object() {
        let json = r#"{"macs": 4240000, "tract_ms": 0.25, "x": -1e-3}"#;
        assert_eq!(number(json, "macs"), Some(4_240_000.0));
        assert_eq!(number(json, "tract_ms"), Some(0.25));
        assert_eq!(number(json, "x"), Some(-1e-3));
        assert_eq!(number(json, "missing"), None);
        assert_eq!(number(r#"{"tract_ms": null}"#, "tract_ms"), None);
    }
}
