//! `cargo xtask fuzz [--seconds N | --runs N] [--coverage] [--build-only] [TARGET...]`:
//! the fuzz targets of `fuzz/` (cargo-fuzz, libFuzzer, AddressSanitizer), each run
//! for N seconds (default 60) or N executions, one process per target, all side by
//! side (the run takes N seconds, not N per target; on fewer cores than targets each
//! gets its share), from its corpus and the committed seeds.
//!
//! 1. Installs `cargo-fuzz` from crates.io when `cargo fuzz` is missing.
//! 2. Builds every target in one cargo run (release, debug assertions and overflow
//!    checks on, AddressSanitizer) with the project's stable toolchain:
//!    `RUSTC_BOOTSTRAP=1` admits the `-Z sanitizer` flag cargo-fuzz passes.
//!    `TERN_FUZZ_SANITIZER=none` builds without ASan where its runtime is missing.
//! 3. Runs the targets: `fuzz/corpus/<target>` (kept between runs, not committed)
//!    grows from `fuzz/seeds/` (committed: `model` and `capi` share the `.tern`
//!    seeds, `onnx` has ONNX models). A crash, panic, sanitizer report, timeout or
//!    memory blow-up fails the run and leaves the input in `fuzz/artifacts/<target>/`.
//! 4. Prints per target: executions, executions per second and corpus size.
//!
//! `--coverage` instead replays each target's corpus and seeds through a
//! coverage build (`cargo fuzz coverage`, with Debian's `llvm-N` tools of the same
//! LLVM major as rustc, installed through apt when missing) and prints the line
//! coverage of the validator (`runtime/src/validate.rs`, `model.rs`) and of each
//! op's load-time check (the `fn check*` functions of `runtime/src/ops/*.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::{capture_quiet, cargo, have, is_root, root, run};

/// The targets, with the seed folder each starts from.
const TARGETS: &[(&str, &str)] = &[("model", "model"), ("onnx", "onnx"), ("capi", "model")];
/// Seconds per target when `--seconds` is not given.
const DEFAULT_SECONDS: u64 = 60;
/// libFuzzer options of every run (one process on one core, logging to the
/// xtask's `fuzz/<target>.log`): inputs up to 20 KB (seeds are at most 16 KB; the
/// rest is room for the C API target's script), 30 s per input at most, 4 GB of
/// memory at most.
const LIBFUZZER_OPTIONS: &[&str] = &[
    "-max_len=20480",
    "-timeout=30",
    "-rss_limit_mb=4096",
    "-print_final_stats=1",
];

/// `cargo xtask fuzz ...`.
pub(crate) fn fuzz(args: &[String]) -> Result<(), String> {
    let mut limit = Limit::Seconds(DEFAULT_SECONDS);
    let (mut coverage, mut build_only) = (false, false);
    let mut chosen = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                limit = Limit::Seconds(
                    args.next()
                        .and_then(|s| s.parse().ok())
                        .ok_or("--seconds takes a number")?,
                )
            }
            "--runs" => {
                limit = Limit::Runs(
                    args.next()
                        .and_then(|s| s.parse().ok())
                        .ok_or("--runs takes a number")?,
                )
            }
            "--coverage" => coverage = true,
            "--build-only" => build_only = true,
            name if TARGETS.iter().any(|(t, _)| *t == name) => chosen.push(name.to_string()),
            other => {
                return Err(format!(
                    "unknown fuzz argument {other}; usage: cargo xtask fuzz [--seconds N | --runs N] [--coverage] [--build-only] [{}]",
                    TARGETS
                        .iter()
                        .map(|(t, _)| *t)
                        .collect::<Vec<_>>()
                        .join(" | ")
                ));
            }
        }
    }
    if chosen.is_empty() {
        chosen = TARGETS.iter().map(|(t, _)| t.to_string()).collect();
    }
    ensure_cargo_fuzz()?;
    if coverage {
        return report_coverage(&chosen);
    }
    let start = Instant::now();
    let sanitizer = sanitizer();
    let mut build = cargo_fuzz("build", &sanitizer);
    build.args(chosen_if_one(&chosen));
    run(&mut build)?;
    eprintln!(
        "xtask: fuzz targets built in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    if build_only {
        return Ok(());
    }
    // Side by side: each target's libFuzzer is one process, its log its own file.
    let results: Vec<Result<Row, String>> = std::thread::scope(|scope| {
        let runs: Vec<_> = chosen
            .iter()
            .map(|target| scope.spawn(|| fuzz_one(target, limit, &sanitizer)))
            .collect();
        runs.into_iter()
            .map(|run| {
                run.join()
                    .unwrap_or_else(|_| Err("fuzz runner panicked".into()))
            })
            .collect()
    });
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(row) => rows.push(row),
            Err(e) => failures.push(e),
        }
    }
    if !failures.is_empty() {
        return Err(failures.join("\n"));
    }
    println!("\n| target | seconds | executions | exec/s | corpus files | corpus KiB |");
    println!("|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.0} |",
            r.target,
            r.seconds,
            r.executions,
            r.executions / r.seconds.max(1),
            r.corpus_files,
            r.corpus_bytes as f64 / 1024.0
        );
    }
    eprintln!(
        "xtask: fuzzing done in {:.0} s (build included)",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `cargo fuzz build` builds all targets in one cargo run; name the target only
/// when there is one.
fn chosen_if_one(chosen: &[String]) -> Vec<String> {
    if chosen.len() == 1 {
        chosen.to_vec()
    } else {
        Vec::new()
    }
}

/// How long each target runs.
#[derive(Clone, Copy)]
enum Limit {
    Seconds(u64),
    Runs(u64),
}

impl Limit {
    fn libfuzzer_option(self) -> String {
        match self {
            Limit::Seconds(s) => format!("-max_total_time={s}"),
            Limit::Runs(n) => format!("-runs={n}"),
        }
    }
}

/// One target's run.
struct Row {
    target: String,
    seconds: u64,
    executions: u64,
    corpus_files: usize,
    corpus_bytes: u64,
}

fn fuzz_one(target: &str, limit: Limit, sanitizer: &str) -> Result<Row, String> {
    let corpus = root().join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
    let seeds = root().join("fuzz/seeds").join(seed_dir(target));
    let start = Instant::now();
    let mut cmd = cargo_fuzz("run", sanitizer);
    cmd.arg(target)
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .args(LIBFUZZER_OPTIONS)
        .arg(limit.libfuzzer_option());
    // libFuzzer's log goes straight to the file, so a long run can be watched.
    let log_path = root().join(format!("fuzz/{target}.log"));
    let log_file =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    eprintln!("xtask: running {cmd:?} (log: {})", log_path.display());
    let status = cmd
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(log_file)
        .status()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let log = String::from_utf8_lossy(&std::fs::read(&log_path).unwrap_or_default()).into_owned();
    if !status.success() {
        // The crash report: the last lines of libFuzzer's log.
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        for line in tail.iter().rev() {
            eprintln!("{line}");
        }
        return Err(format!(
            "fuzz target {target} failed after {:.0} s (full log: {}; the input is in fuzz/artifacts/{target}/; reproduce with `cargo fuzz run {target} <file>`)",
            start.elapsed().as_secs_f64(),
            log_path.display()
        ));
    }
    let executions = stat(&log, "stat::number_of_executed_units:").unwrap_or(0);
    let (corpus_files, corpus_bytes) = folder_size(&corpus);
    Ok(Row {
        target: target.to_string(),
        seconds: start.elapsed().as_secs(),
        executions,
        corpus_files,
        corpus_bytes,
    })
}

/// AddressSanitizer unless `TERN_FUZZ_SANITIZER` names another (`none`).
fn sanitizer() -> String {
    std::env::var("TERN_FUZZ_SANITIZER").unwrap_or_else(|_| "address".into())
}

fn seed_dir(target: &str) -> &'static str {
    TARGETS
        .iter()
        .find(|(t, _)| *t == target)
        .map_or("model", |(_, s)| s)
}

/// `cargo fuzz <subcommand>` with the build settings of every run: release with
/// debug assertions and overflow checks, `sanitizer`, the `-Z sanitizer` flag
/// admitted on the stable toolchain.
fn cargo_fuzz(subcommand: &str, sanitizer: &str) -> Command {
    let mut cmd = cargo();
    cmd.args([
        "fuzz",
        subcommand,
        "--fuzz-dir",
        "fuzz",
        "-O",
        "-a",
        "-s",
        sanitizer,
    ])
    .env("RUSTC_BOOTSTRAP", "1");
    cmd
}

/// Installs cargo-fuzz from crates.io when `cargo fuzz` is missing.
fn ensure_cargo_fuzz() -> Result<(), String> {
    let works = || {
        cargo()
            .args(["fuzz", "--version"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works() {
        return Ok(());
    }
    run(cargo().args(["install", "--locked", "cargo-fuzz"])).map_err(|e| {
        format!("{e}; cargo-fuzz is missing and could not be installed: run `cargo install cargo-fuzz` by hand")
    })?;
    if works() {
        Ok(())
    } else {
        Err(
            "cargo-fuzz was installed but `cargo fuzz` does not run: is ~/.cargo/bin on PATH?"
                .into(),
        )
    }
}

/// The number after `key` in a libFuzzer log (its final stats).
fn stat(log: &str, key: &str) -> Option<u64> {
    log.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
}

/// Files and bytes in `dir` (not recursive).
fn folder_size(dir: &Path) -> (usize, u64) {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .fold((0, 0), |(n, b), m| (n + 1, b + m.len()))
        })
        .unwrap_or((0, 0))
}

// ---- coverage ----

/// `--coverage`: replays corpus and seeds of each chosen target through a coverage
/// build and prints line coverage of the validator and of each op's check.
fn report_coverage(chosen: &[String]) -> Result<(), String> {
    let llvm = llvm_tools()?;
    for target in chosen {
        let corpus = root().join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
        let seeds = root().join("fuzz/seeds").join(seed_dir(target));
        // Coverage builds take no sanitizer.
        let mut cmd = cargo_fuzz("coverage", "none");
        cmd.arg("--llvm-path")
            .arg(&llvm)
            .arg(target)
            .arg(&corpus)
            .arg(&seeds);
        run(&mut cmd)?;
        let profile = root().join(format!("fuzz/coverage/{target}/coverage.profdata"));
        // `cargo fuzz coverage` builds under `target/<host>/coverage` of the
        // directory it runs in (the repository root here).
        let triple = host_triple()?;
        let binary = [
            format!("target/{triple}/coverage/{triple}/release/{target}"),
            format!("fuzz/target/{triple}/coverage/{triple}/release/{target}"),
        ]
        .into_iter()
        .map(|p| root().join(p))
        .find(|p| p.exists())
        .ok_or_else(|| {
            format!("the coverage build of {target} is not under target/{triple}/coverage")
        })?;
        let lcov = capture_lcov(&llvm, &binary, &profile)?;
        let lcov_path = root().join(format!("fuzz/coverage/{target}/lcov.info"));
        let _ = std::fs::write(&lcov_path, &lcov);
        print_coverage(target, &lcov)?;
        println!("(per-line data: {})", lcov_path.display());
    }
    Ok(())
}

/// `rustc -vV`'s host triple.
fn host_triple() -> Result<String, String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|e| format!("rustc -vV: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .ok_or_else(|| "rustc -vV printed no host".into())
}

/// The folder with `llvm-profdata` and `llvm-cov` of rustc's LLVM major version:
/// rustup's `llvm-tools` when installed, else Debian's `llvm-N` (installed through
/// apt when missing, as root or with password-less sudo).
fn llvm_tools() -> Result<PathBuf, String> {
    let out = Command::new("rustc")
        .args(["-vV"])
        .output()
        .map_err(|e| format!("rustc -vV: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let major = text
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .ok_or("rustc -vV printed no LLVM version")?
        .to_string();
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("rustc --print sysroot: {e}"))?;
    let rustup_bin = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim())
        .join("lib/rustlib")
        .join(host_triple()?)
        .join("bin");
    if rustup_bin.join("llvm-profdata").exists() && rustup_bin.join("llvm-cov").exists() {
        return Ok(rustup_bin);
    }
    let debian = PathBuf::from(format!("/usr/lib/llvm-{major}/bin"));
    if !debian.join("llvm-cov").exists() {
        let package = format!("llvm-{major}");
        let mut argv: Vec<&str> = if is_root() {
            vec![]
        } else if have("sudo") {
            vec!["sudo", "-n"]
        } else {
            return Err(format!(
                "coverage needs llvm-profdata and llvm-cov of LLVM {major}: install them as root (apt-get install {package}) or with rustup (rustup component add llvm-tools)"
            ));
        };
        argv.extend([
            "apt-get",
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            &package,
        ]);
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..])
            .env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut cmd).map_err(|e| format!("{e}; install {package} by hand"))?;
    }
    Ok(debian)
}

fn capture_lcov(llvm: &Path, binary: &Path, profile: &Path) -> Result<String, String> {
    let mut cmd = Command::new(llvm.join("llvm-cov"));
    cmd.arg("export")
        .arg("-format=lcov")
        .arg(format!("-instr-profile={}", profile.display()))
        .arg(binary);
    capture_quiet(cmd.current_dir(root()))
}

/// Line hits per source file from LCOV text (`SF:` then `DA:line,count`).
fn parse_lcov(lcov: &str) -> BTreeMap<String, BTreeMap<usize, u64>> {
    let mut files: BTreeMap<String, BTreeMap<usize, u64>> = BTreeMap::new();
    let mut current = None;
    for line in lcov.lines() {
        if let Some(file) = line.strip_prefix("SF:") {
            current = Some(file.to_string());
        } else if let (Some(da), Some(file)) = (line.strip_prefix("DA:"), &current) {
            let mut parts = da.split(',');
            let (Some(Ok(n)), Some(Ok(hits))) = (
                parts.next().map(str::parse::<usize>),
                parts.next().map(str::parse::<u64>),
            ) else {
                continue;
            };
            // A line in several instantiations counts once, hit if any is.
            let entry = files.entry(file.clone()).or_default().entry(n).or_insert(0);
            *entry = (*entry).max(hits);
        }
    }
    files
}

/// The line ranges (1-based, inclusive) of the functions named `check` or
/// `check_*` in `source`: from the `fn` line to its closing brace at the same
/// indentation.
fn check_functions(source: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = source.lines().collect();
    let mut found = Vec::new();
    for (k, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let Some(at) = trimmed.find("fn check") else {
            continue;
        };
        if !(trimmed[..at].is_empty()
            || trimmed[..at].ends_with(") ")
            || trimmed[..at].ends_with("pub "))
        {
            continue;
        }
        let name: String = trimmed[at + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let indent = line.len() - trimmed.len();
        let close = format!("{}}}", " ".repeat(indent));
        if let Some(end) = (k + 1..lines.len()).find(|&j| lines[j].trim_end() == close) {
            found.push((name, k + 1, end + 1));
        }
    }
    found
}

/// `(hit, total)` instrumented lines of `hits` within `first..=last`.
fn covered(hits: &BTreeMap<usize, u64>, first: usize, last: usize) -> (usize, usize) {
    hits.range(first..=last)
        .fold((0, 0), |(h, t), (_, &n)| (h + usize::from(n > 0), t + 1))
}

fn percent((hit, total): (usize, usize)) -> String {
    if total == 0 {
        "-".into()
    } else {
        format!("{:.1}% ({hit}/{total})", 100.0 * hit as f64 / total as f64)
    }
}

fn print_coverage(target: &str, lcov: &str) -> Result<(), String> {
    let files = parse_lcov(lcov);
    let runtime_src = root().join("runtime/src");
    let hits_of = |relative: &str| {
        let path = runtime_src.join(relative);
        files
            .iter()
            .find(|(f, _)| Path::new(f) == path || f.ends_with(&format!("runtime/src/{relative}")))
            .map(|(_, h)| h.clone())
            .unwrap_or_default()
    };
    println!("\nline coverage of target {target} over its corpus and seeds:");
    println!("| code | lines covered |");
    println!("|---|---:|");
    for file in ["validate.rs", "model.rs"] {
        let hits = hits_of(file);
        println!(
            "| runtime/src/{file} | {} |",
            percent(covered(&hits, 1, usize::MAX))
        );
    }
    let mut ops: Vec<PathBuf> = std::fs::read_dir(runtime_src.join("ops"))
        .map_err(|e| format!("runtime/src/ops: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    ops.sort();
    let (mut all_hit, mut all_total) = (0, 0);
    for path in ops {
        let source =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let hits = hits_of(&format!("ops/{name}"));
        for (function, first, last) in check_functions(&source) {
            let (hit, total) = covered(&hits, first, last);
            all_hit += hit;
            all_total += total;
            println!("| ops/{name} `fn {function}` | {} |", percent((hit, total)));
        }
    }
    println!("| every op's check | {} |", percent((all_hit, all_total)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check_functions, covered, parse_lcov, stat};

    #[test]
    fn libfuzzer_stats_are_read() {
        let log = "#1000 DONE cov: 5\nstat::number_of_executed_units: 123456\nstat::average_exec_per_sec:   2057\n";
        assert_eq!(stat(log, "stat::number_of_executed_units:"), Some(123456));
        assert_eq!(stat(log, "stat::average_exec_per_sec:"), Some(2057));
        assert_eq!(stat(log, "stat::missing:"), None);
    }

    #[test]
    fn check_functions_and_their_coverage_are_found() {
        let source = "use x;\n\nfn check(op: &Op) -> Check<()> {\n    if a {\n        b\n    }\n}\n\npub(crate) fn check_conv(op: &Op) {\n    c\n}\nfn run() {}\n";
        let found = check_functions(source);
        assert_eq!(
            found,
            vec![
                ("check".to_string(), 3, 7),
                ("check_conv".to_string(), 9, 11)
            ]
        );
        let lcov = "SF:/a/ops/conv.rs\nDA:3,1\nDA:4,1\nDA:5,0\nDA:10,2\nDA:12,9\nend_of_record\n";
        let files = parse_lcov(lcov);
        let hits = &files["/a/ops/conv.rs"];
        assert_eq!(covered(hits, 3, 7), (2, 3));
        assert_eq!(covered(hits, 9, 11), (1, 1));
    }
}
