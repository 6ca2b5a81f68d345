//! `cargo xtask`: Tern's project tasks, with no dependencies so it builds in seconds.
//!
//! - `setup`    installs what the tests and the demo need (idempotent).
//! - `demo`     the main job on the embedded default: the CNN fixture (or, with
//!   `--train`, a freshly trained CNN) converted to f32/f16/int8 and evaluated.
//! - `test`     the whole test suite (what `.ci/run` runs): a formatting check,
//!   `cargo test --workspace` (ends with a `tests: N passed, M failed` line), then
//!   `targets`.
//! - `lint`     `cargo fmt --check` and `cargo clippy -D warnings` over the workspace
//!   (plus the bare `no_std` runtime and C library, the device `tern` and the `gpu` feature, which
//!   must keep compiling although no test runs it).
//! - `fixtures` retrains the four committed models under `tests/fixtures/`.
//! - `targets`  ARM: aarch64 Linux and Cortex-M firmware under QEMU (see [`targets`]),
//!   with the size budgets checked.
//! - `size`     the Cortex-M4 firmware's flash by crate, what Tern adds, and the
//!   size budgets (`targets/size-budget.txt`), on their own.
//! - `fuzz`     the fuzz targets of `fuzz/` (loader + interpreter, ONNX converter,
//!   C API) for N seconds each, or their coverage (see [`fuzz`]).
//! - `models`   fetches the third-party ONNX models of `benches/real_models.tsv`
//!   into a cache (see [`models`]).
//! - `bench`    Tern f32/int8 against tract and ONNX Runtime on the fixtures and the
//!   real models, side by side (see [`bench`]).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

mod bench;
mod fuzz;
mod models;
mod targets;

/// Debian packages the project needs, with the file that proves each is installed.
const DEBIAN_PACKAGES: &[(&str, &str)] = &[(
    "dataset-fashion-mnist",
    "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
)];
/// The Python wheel the ONNX checker test uses, installed in `.venv`.
const ONNX_WHEEL: &str = "onnx==1.22.0";
/// Models committed as fixtures, in training order.
const FIXTURE_MODELS: &[&str] = &["cnn", "lstm", "gru", "transformer"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    elapsed();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup(),
        Some("demo") => setup().and_then(|()| demo(&args[1..])),
        Some("test") => setup().and_then(|()| test(&args[1..])),
        Some("lint") => fmt_check().and_then(|()| clippy()),
        Some("fixtures") => setup().and_then(|()| fixtures(&args[1..])),
        Some("targets") => setup().and_then(|()| targets::targets(&args[1..])),
        Some("size") => setup().and_then(|()| targets::size()),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("models") => models::models(&args[1..]),
        Some("bench") => bench::bench(&args[1..]),
        Some("icount") => targets::icount::icount(&args[1..]),
        _ => Err(
            "usage: cargo xtask <setup | demo | test | lint | fixtures [MODEL...] | targets [--icount] | icount [--cpu CPU]... [--tern PATH] MODEL.tern INPUT.npy | size | fuzz [--seconds N | --runs N] [--coverage] [TARGET...] | models [NAME...] | bench [--seconds S] [NAME...]>"
                .to_string(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("xtask lives in targets/xtask")
        .to_owned()
}

/// Runs `cmd` without echoing it and returns its standard output; its standard
/// error goes into the error message when it fails.
fn capture_quiet(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("xtask [{}]: running {cmd:?}", elapsed());
    let status = cmd
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs the Debian packages and the Python venv the project needs.
fn setup() -> Result<(), String> {
    ensure_debian_packages(DEBIAN_PACKAGES)?;
    setup_python_venv()
}

/// Installs those of `packages` (name, a file that proves it installed) that are
/// missing, through apt-get as root or `sudo -n`.
fn ensure_debian_packages(packages: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(_, file)| !Path::new(file).exists())
        .map(|(pkg, _)| *pkg)
        .collect();
    if !missing.is_empty() {
        let sudo = if is_root() {
            vec![]
        } else if have("sudo") {
            vec!["sudo", "-n"]
        } else {
            return Err(format!(
                "missing Debian packages {missing:?}; install them as root: apt-get install -y {}",
                missing.join(" ")
            ));
        };
        let apt = |args: &[&str]| {
            let mut argv: Vec<&str> = sudo.clone();
            argv.push("apt-get");
            argv.extend_from_slice(args);
            let mut cmd = Command::new(argv[0]);
            cmd.args(&argv[1..])
                .env("DEBIAN_FRONTEND", "noninteractive");
            run(&mut cmd)
        };
        apt(&["update", "-q"]).map_err(|e| format!("{e}; cannot refresh the package lists"))?;
        let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
        install.extend(&missing);
        apt(&install).map_err(|e| {
            format!(
                "{e}; install these Debian packages by hand: {}",
                missing.join(" ")
            )
        })?;
    }
    Ok(())
}

/// [`ensure_debian_packages`] for one package.
fn ensure_debian_package(package: &str, proof: &str) -> Result<(), String> {
    ensure_debian_packages(&[(package, proof)])
}

/// `.venv` with the `onnx` wheel, for the `onnx.checker` test; skipped (with a
/// note) where there is no `python3`, as the test then skips too.
fn setup_python_venv() -> Result<(), String> {
    if !have("python3") {
        eprintln!("xtask: no python3: the onnx.checker test will be skipped");
        return Ok(());
    }
    let venv = root().join(".venv");
    let python = venv.join("bin/python");
    let check = format!(
        "import onnx, sys; sys.exit(onnx.__version__ != '{}')",
        &ONNX_WHEEL[6..]
    );
    if Command::new(&python)
        .args(["-c", &check])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Ok(());
    }
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        ONNX_WHEEL,
    ]))
}

/// The project venv's `python`, the venv made first when missing.
fn venv_python() -> Result<PathBuf, String> {
    if !have("python3") {
        return Err("python3 is needed here (Debian: apt-get install python3-venv)".into());
    }
    setup_python_venv()?;
    Ok(root().join(".venv/bin/python"))
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// `cargo run --release -p tern-export --bin tern -- ...`: the release build of the CLI.
fn tern() -> Command {
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--release",
        "--package",
        "tern-export",
        "--bin",
        "tern",
        "--",
    ]);
    cmd
}

/// The main job: the CNN (the committed fixture, or `--train` to train it anew
/// into `model.onnx`, with any further `tern train` options), converted to
/// f32, f16 and int8 and evaluated on the 10,000 test images in one table.
fn demo(extra: &[String]) -> Result<(), String> {
    let model = if extra.first().map(String::as_str) == Some("--train") {
        run(tern()
            .args(["train", "--model", "cnn", "--output", "model.onnx"])
            .args(&extra[1..]))?;
        "model.onnx"
    } else {
        "tests/fixtures/cnn.onnx"
    };
    run(tern().args(["report", model]))
}

/// Formatting, `cargo test --workspace`, a 45-second fuzz smoke run per fuzz
/// target (skipped with `--no-fuzz`), then the ARM target jobs (`targets`, skipped
/// with `--no-targets`). The `gpu` feature's type check lives in `lint` (its clippy
/// run): 6 minutes of the 30-minute CI budget were not there for it.
/// Seconds per fuzz target in `cargo xtask test`: a smoke run from the seeds
/// that keeps CI under its time budget (`cargo xtask fuzz` runs longer).
const TEST_FUZZ_SECONDS: u64 = 45;

/// The packages `cargo xtask test` builds and tests: the whole workspace but the
/// benches crate, which has no tests (leaving it out spares CI its criterion build).
/// Every later cargo command that reuses the suite's host build (the host `tern` of
/// `cargo xtask targets`) must select the same packages: features are resolved over
/// the selection, and another selection rebuilds burn and the converter (about 5
/// minutes on 2 cores).
pub(crate) const TEST_PACKAGES: &[&str] = &["--workspace", "--exclude", "tern-benches"];

fn test(extra: &[String]) -> Result<(), String> {
    let no_targets = extra.iter().any(|a| a == "--no-targets");
    let no_fuzz = extra.iter().any(|a| a == "--no-fuzz");
    let extra: Vec<&String> = extra
        .iter()
        .filter(|a| *a != "--no-targets" && *a != "--no-fuzz")
        .collect();
    fmt_check()?;
    run_counting_tests(cargo().arg("test").args(TEST_PACKAGES).args(extra))?;
    eprintln!("xtask [{}]: workspace tests done", elapsed());
    if !no_fuzz {
        fuzz::fuzz(&["--seconds".into(), TEST_FUZZ_SECONDS.to_string()])?;
        eprintln!("xtask [{}]: fuzz smoke done", elapsed());
    }
    if no_targets {
        return Ok(());
    }
    targets::targets(&[])?;
    eprintln!("xtask [{}]: targets done", elapsed());
    Ok(())
}

/// Time since this xtask started, `m:ss`, stamped on its log lines so that a CI
/// log shows where the minutes go.
pub(crate) fn elapsed() -> String {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let s = START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

/// Runs `cmd` (a `cargo test`), echoing its standard output, and ends with one
/// plain total, `tests: N passed, M failed`, so that a reader of the log need not
/// add up the per-binary `test result:` lines (the last of which is a doc-test run).
/// Fails when the command fails or when no test ran.
fn run_counting_tests(cmd: &mut Command) -> Result<(), String> {
    eprintln!("xtask [{}]: running {cmd:?}", elapsed());
    let mut child = cmd
        .current_dir(root())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (mut passed, mut failed) = (0, 0);
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading {cmd:?}: {e}"))?;
        println!("{line}");
        if let Some(summary) = line.strip_prefix("test result: ") {
            passed += count_before(summary, " passed");
            failed += count_before(summary, " failed");
        }
    }
    let status = child.wait().map_err(|e| format!("{cmd:?}: {e}"))?;
    println!("tests: {passed} passed, {failed} failed");
    if !status.success() {
        return Err(format!("{cmd:?} failed with {status}"));
    }
    if passed == 0 {
        return Err("no test ran".into());
    }
    Ok(())
}

/// The number just before `label` in `text` (`"ok. 14 passed; 0 failed"`), or 0.
fn count_before(text: &str, label: &str) -> usize {
    text.find(label)
        .and_then(|end| text[..end].rsplit([' ', '.']).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn fmt_check() -> Result<(), String> {
    run(cargo().args(["fmt", "--all", "--", "--check"]))
        .map_err(|e| format!("{e}; run `cargo fmt --all`"))
}

fn clippy() -> Result<(), String> {
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The runtime without `alloc`/`std`, as firmware builds it (with the SPI
    // offload transport, which must stay no_std too).
    run(cargo().args([
        "clippy",
        "-p",
        "tern-runtime",
        "--no-default-features",
        "--features",
        "spi",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The C library as firmware links it (no std: its own panic handler).
    run(cargo().args([
        "clippy",
        "-p",
        "tern-capi",
        "--no-default-features",
        "--lib",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The device build of `tern` (run/eval/bench/inspect only).
    run(cargo().args([
        "clippy",
        "-p",
        "tern-export",
        "--no-default-features",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The converter alone, as the fuzz targets build it.
    run(cargo().args([
        "clippy",
        "-p",
        "tern-export",
        "--no-default-features",
        "--features",
        "convert",
        "--lib",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args([
        "clippy",
        "-p",
        "tern-export",
        "--features",
        "gpu",
        "--",
        "-D",
        "warnings",
    ]))
}

fn fixtures(models: &[String]) -> Result<(), String> {
    let models: Vec<&str> = if models.is_empty() {
        FIXTURE_MODELS.to_vec()
    } else {
        models.iter().map(String::as_str).collect()
    };
    for model in models {
        let out = format!("tests/fixtures/{model}.onnx");
        run(tern().args([
            "train", "--quiet", "--device", "cpu", "--model", model, "--output", &out,
        ]))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::count_before;

    #[test]
    fn counts_are_read_from_cargo_summaries() {
        let line = "ok. 14 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(count_before(line, " passed"), 14);
        assert_eq!(count_before(line, " failed"), 2);
        assert_eq!(count_before("FAILED. 3 passed; 1 failed;", " failed"), 1);
        assert_eq!(count_before("nothing here", " passed"), 0);
    }
}
