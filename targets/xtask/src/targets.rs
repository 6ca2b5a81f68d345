//! `cargo xtask targets`: builds Tern for ARM and runs it under QEMU.
//!
//! 1. Installs the cross toolchain (`targets/toolchain/install-arm.sh`).
//! 2. Host (x86-64): converts the CNN fixture to int8 and evaluates it on the
//!    first N Fashion-MNIST test images: the reference accuracy and output checksum.
//! 3. Builds `libtern.a` for `thumbv7em-none-eabihf` (step 6): the runtime with no
//!    std and no alloc, outside the workspace, so that feature unification cannot
//!    hide a std dependency.
//! 4. aarch64 Linux: the runtime's unit tests and the device `tern` (`eval`, `run`,
//!    `bench`) under `qemu-aarch64` on `cortex-a53` (NEON), `neoverse-n1` (SDOT)
//!    and `max` (SMMLA): same accuracy and checksums as the host.
//! 5. Cortex-M firmware (`targets/cortex-m`) on QEMU's mps2-an386 (M4),
//!    mps2-an505 (M33) and mps3-an547 (M55): same accuracy and checksum.
//! 6. The C library (`targets/capi`, see [`c`]): the C firmware
//!    `targets/cortex-m-c` on the M4 (200 images, its flash/RAM by origin from the
//!    linker map) and the C examples on aarch64: same correct count and checksum.
//!
//! `--icount` adds instruction counts per inference of the CNN on aarch64 (QEMU
//! `-one-insn-per-tb -d exec` trace lines) for each int8 kernel choice.
//!
//! The cross toolchain is `cargo +$TERN_RUST_TOOLCHAIN` (default `deb-1.96`, the
//! Debian rustc the install script registers with rustup); with a rustup toolchain
//! that has the targets, set `TERN_RUST_TOOLCHAIN` to it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::{root, run};

mod c;
mod firmware;
pub(crate) mod icount;
mod size;

use firmware::{BOARDS, Build, finish_firmware, start_firmware};

/// Fashion-MNIST test images the host, aarch64 and the M4/M33 firmware evaluate.
const IMAGES: usize = 1000;
/// Images on the Cortex-M55: QEMU emulates MVE slowly (about 0.3 s per image).
const M55_IMAGES: usize = 200;
/// aarch64 CPU models QEMU emulates, with the int8 dot-product variant each must pick.
const AARCH64_CPUS: &[(&str, &str)] = &[
    ("cortex-a53", "neon"),
    ("neoverse-n1", "neon-sdot"),
    ("max", "neon-i8mm"),
];
const AARCH64: &str = "aarch64-unknown-linux-gnu";

/// One line of the final table.
struct Row {
    target: String,
    kernels: String,
    accuracy: String,
    checksum: String,
    extra: String,
}

/// `cargo xtask targets [--icount]`.
pub(crate) fn targets(args: &[String]) -> Result<(), String> {
    let icount = args.iter().any(|a| a == "--icount");
    let start = Instant::now();
    run(Command::new("bash").arg("targets/toolchain/install-arm.sh"))?;
    let out = root().join("target/targets");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let model = out.join("cnn-int8.tern");
    let input = out.join("image0.npy");
    let mut rows = Vec::new();

    // ---- host reference ----
    step("host: convert the CNN to int8, evaluate it");
    let tern = build_host_tern()?;
    let host_tern = || Command::new(&tern);
    convert_cnn(&tern, &model)?;
    write_test_npy(&input)?;
    let host = host_eval(&tern, &model, IMAGES)?;
    let host_m55 = host_eval(&tern, &model, M55_IMAGES)?;
    let host_bench = checksum_of(&capture(
        host_tern()
            .arg("bench")
            .arg(&model)
            .args(["--iterations", "3", "--warmup", "1", "--input"])
            .arg(&input),
    )?)?;
    let host_run = out.join("host-run.npy");
    run(host_tern()
        .arg("run")
        .arg(&model)
        .arg("--input")
        .arg(&input)
        .arg("-o")
        .arg(&host_run))?;
    rows.push(Row {
        target: format!("x86-64 (host), {M55_IMAGES} images"),
        kernels: "fast (AVX2 when present)".into(),
        accuracy: host_m55.accuracy.clone(),
        checksum: host_m55.checksum.clone(),
        extra: String::new(),
    });
    let raw_inputs = c::write_raw_inputs(&model, &out, c::IMAGES)?;
    rows.push(Row {
        target: "x86-64 (host)".into(),
        kernels: "fast (AVX2 when present)".into(),
        accuracy: host.accuracy.clone(),
        checksum: host.checksum.clone(),
        extra: String::new(),
    });

    // ---- Cortex-M firmware: built here, run in the background ----
    let mut firmware_runs = Vec::new();
    for board in BOARDS {
        step(&format!("firmware {} ({})", board.name, board.cpu));
        let expected = if board.images == IMAGES {
            &host
        } else {
            &host_m55
        };
        firmware_runs.push((board, start_firmware(board, &model, expected)?, expected));
    }
    let c_firmware = c::start_firmware(&tern, &model, &raw_inputs, &host_m55)?;

    // ---- aarch64 Linux ----
    step("aarch64: runtime unit tests and the device tern");
    run(cross_cargo("target/arm").args([
        "test",
        "-p",
        "tern-runtime",
        "--features",
        "std,spi",
        "--lib",
        "--no-run",
        "--target",
        AARCH64,
    ]))?;
    // The release build, as a product would ship it, runs under QEMU too: one
    // build instead of two (a debug build costs CI minutes and checks nothing
    // more: the runtime's unit tests above keep debug assertions on).
    let arm_tern = device_tern()?;
    for &(cpu, gemm) in AARCH64_CPUS {
        step(&format!(
            "aarch64 {cpu}: runtime tests, tern eval/run/bench"
        ));
        run(cross_cargo("target/arm")
            .args([
                "test",
                "-p",
                "tern-runtime",
                "--features",
                "std,spi",
                "--lib",
                "--target",
                AARCH64,
            ])
            .env("QEMU_CPU", cpu)
            .env("TERN_EXPECT_GEMM", gemm))?;
        let qemu = || {
            let mut cmd = Command::new("qemu-aarch64");
            cmd.args(["-cpu", cpu]).arg(&arm_tern);
            cmd
        };
        let text = capture(
            qemu()
                .arg("eval")
                .arg(&model)
                .args(["--dataset", &dataset(IMAGES)]),
        )?;
        let eval = Eval::parse(&text, IMAGES)?;
        expect_same(&format!("aarch64 {cpu} eval"), &eval, &host)?;
        let bench = checksum_of(&capture(
            qemu()
                .arg("bench")
                .arg(&model)
                .args(["--iterations", "3", "--warmup", "1", "--input"])
                .arg(&input),
        )?)?;
        if bench != host_bench {
            return Err(format!(
                "aarch64 {cpu} bench checksum {bench} != host {host_bench}"
            ));
        }
        let arm_run = out.join(format!("{cpu}-run.npy"));
        run(qemu()
            .arg("run")
            .arg(&model)
            .arg("--input")
            .arg(&input)
            .arg("-o")
            .arg(&arm_run))?;
        if read(&arm_run)? != read(&host_run)? {
            return Err(format!(
                "aarch64 {cpu}: tern run output differs from the host's"
            ));
        }
        rows.push(Row {
            target: format!("aarch64 {cpu} (qemu-aarch64)"),
            kernels: format!("int8 GEMM: {gemm}"),
            accuracy: eval.accuracy,
            checksum: eval.checksum,
            extra: "run/bench outputs = host".to_string(),
        });
    }
    rows.extend(c::aarch64(&model, &raw_inputs, &host_m55)?);
    // Its size budget, and with --icount its instruction counts.
    size::check_device_tern(&arm_tern)?;
    if icount {
        icount::kernel_table(&arm_tern, &model, &input)?;
    }

    // ---- Cortex-M firmware results ----
    for (board, running, expected) in firmware_runs {
        let line = finish_firmware(board, running, expected)?;
        if std::ptr::eq(board, &BOARDS[0]) {
            size::check_m4(&model, expected, &firmware::elf(board, Build::Tern), &line)?;
        }
        rows.push(Row {
            target: format!(
                "{} {} (qemu-system-arm), {} images",
                board.cpu, board.machine, board.images
            ),
            kernels: if board.dsp {
                "int8: SMLAD (DSP)".into()
            } else {
                "int8: portable (MVE auto-vectorized)".into()
            },
            accuracy: field(&line, "accuracy")?,
            checksum: field(&line, "checksum")?,
            extra: format!(
                "{} instructions/inference",
                field(&line, "instructions_per_inference")?
            ),
        });
    }

    rows.push(c::finish_firmware(c_firmware, &host_m55)?);

    println!("\nint8 CNN fixture on the first {IMAGES} Fashion-MNIST test images (unless stated):");
    println!("| target | kernels | accuracy | output checksum | |");
    println!("|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            r.target, r.kernels, r.accuracy, r.checksum, r.extra
        );
    }
    println!(
        "targets: all outputs bit-identical to the host ({:.0} s)",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `cargo xtask size`: the host reference, then the Cortex-M4 firmware (Rust,
/// then C with `libtern.a`) built, run and measured against the size budgets (the part of `targets` that
/// checks sizes, on its own).
pub(crate) fn size() -> Result<(), String> {
    run(Command::new("bash").arg("targets/toolchain/install-arm.sh"))?;
    let out = root().join("target/targets");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let model = out.join("cnn-int8.tern");
    step("host: convert the CNN to int8, evaluate it");
    let tern = build_host_tern()?;
    convert_cnn(&tern, &model)?;
    let host = host_eval(&tern, &model, IMAGES)?;
    let board = &BOARDS[0];
    step(&format!("firmware {} ({})", board.name, board.cpu));
    let line = finish_firmware(board, start_firmware(board, &model, &host)?, &host)?;
    size::check_m4(&model, &host, &firmware::elf(board, Build::Tern), &line)?;
    let c_host = host_eval(&tern, &model, c::IMAGES)?;
    let raw_inputs = c::write_raw_inputs(&model, &out, c::IMAGES)?;
    let row = c::finish_firmware(
        c::start_firmware(&tern, &model, &raw_inputs, &c_host)?,
        &c_host,
    )?;
    println!(
        "{}: accuracy {}, checksum {}, {}",
        row.target, row.accuracy, row.checksum, row.extra
    );
    step("aarch64: the device tern, release build");
    size::check_device_tern(&device_tern()?)
}

/// Converts the CNN fixture to int8 with the host `tern`.
fn convert_cnn(tern: &Path, model: &Path) -> Result<(), String> {
    run(Command::new(tern)
        .args([
            "convert",
            "tests/fixtures/cnn.onnx",
            "--precision",
            "int8",
            "--small-arena",
            "--quiet",
            "-o",
        ])
        .arg(model))
}

/// The host's accuracy and output checksum on the first `images` test images.
fn host_eval(tern: &Path, model: &Path, images: usize) -> Result<Eval, String> {
    let text = capture(
        Command::new(tern)
            .arg("eval")
            .arg(model)
            .args(["--dataset", &dataset(images)]),
    )?;
    Eval::parse(&text, images)
}

/// Builds the device `tern` (no `host` feature, release) for aarch64; returns its path.
pub(super) fn device_tern() -> Result<PathBuf, String> {
    run(cross_cargo("target/arm").args([
        "build",
        "-p",
        "tern-export",
        "--no-default-features",
        "--bin",
        "tern",
        "--release",
        "--target",
        AARCH64,
    ]))?;
    Ok(root().join("target/arm").join(AARCH64).join("release/tern"))
}

pub(super) fn step(what: &str) {
    eprintln!("xtask targets [{}]: == {what}", crate::elapsed());
}

fn dataset(images: usize) -> String {
    format!("fashion-mnist:test:{images}")
}

/// Builds the host `tern` (dev profile) exactly as `cargo xtask test` does: as the
/// binary of `tern-export`'s integration test `cli`, over the same packages
/// ([`crate::TEST_PACKAGES`]) and so with the same features, so that after the test
/// suite nothing is rebuilt. `cargo run -p tern-export`, `cargo build --bin tern`
/// or another package selection resolve other features (the runtime without
/// `spi`, burn's without criterion's, ...) and rebuild burn, the runtime and the
/// converter: about 5 minutes on 2 cores.
fn build_host_tern() -> Result<PathBuf, String> {
    run(crate::cargo()
        .arg("test")
        .args(crate::TEST_PACKAGES)
        .args(["--no-run", "--test", "cli"]))?;
    Ok(root().join("target/debug/tern"))
}

/// The cross toolchain: `$TERN_RUST_TOOLCHAIN`, default `deb-1.96`.
fn toolchain() -> String {
    std::env::var("TERN_RUST_TOOLCHAIN").unwrap_or_else(|_| "deb-1.96".into())
}

/// `["-Zbuild-std=core"]` when the toolchain has no prebuilt `core` for
/// `target` (Debian's rustc for Cortex-M), else nothing (`rustup target add`).
fn build_std(target: &str) -> Vec<&'static str> {
    let libdir = Command::new("rustc")
        .arg(format!("+{}", toolchain()))
        .args(["--print", "target-libdir", "--target", target])
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let prebuilt = std::fs::read_dir(&libdir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("libcore-"))
    });
    if prebuilt {
        vec![]
    } else {
        vec!["-Zbuild-std=core"]
    }
}

/// `cargo +TOOLCHAIN` for the ARM targets, with its own target dir. A stable
/// rustc needs `RUSTC_BOOTSTRAP=1` for `-Zbuild-std` (Cortex-M core from source).
fn cross_cargo(target_dir: &str) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg(format!("+{}", toolchain()))
        .env("CARGO_TARGET_DIR", root().join(target_dir))
        .env("RUSTC_BOOTSTRAP", "1")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO");
    cmd
}

/// Runs `cmd`, echoing and returning its standard output.
fn capture(cmd: &mut Command) -> Result<String, String> {
    eprintln!("xtask: running {cmd:?}");
    let out = cmd
        .current_dir(root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    print!("{text}");
    if !out.status.success() {
        return Err(format!("{cmd:?} failed with {}", out.status));
    }
    Ok(text)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Accuracy and output checksum from a `tern eval` line.
struct Eval {
    accuracy: String,
    checksum: String,
    images: usize,
}

impl Eval {
    fn parse(text: &str, images: usize) -> Result<Eval, String> {
        let accuracy = text
            .split("accuracy ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .ok_or_else(|| format!("no accuracy in {text:?}"))?
            .to_string();
        Ok(Eval {
            accuracy,
            checksum: checksum_of(text)?,
            images,
        })
    }

    /// Correct answers (`92.30%` of 1000 -> 923).
    fn correct(&self) -> Result<usize, String> {
        let percent: f64 = self
            .accuracy
            .trim_end_matches('%')
            .parse()
            .map_err(|_| format!("bad accuracy {}", self.accuracy))?;
        Ok((percent * self.images as f64 / 100.0).round() as usize)
    }
}

fn expect_same(what: &str, got: &Eval, want: &Eval) -> Result<(), String> {
    if got.accuracy != want.accuracy || got.checksum != want.checksum {
        return Err(format!(
            "{what}: accuracy {} checksum {}, host: accuracy {} checksum {}",
            got.accuracy, got.checksum, want.accuracy, want.checksum
        ));
    }
    Ok(())
}

/// The `0x........` after "checksum" in `text`.
fn checksum_of(text: &str) -> Result<String, String> {
    text.split("checksum ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_alphanumeric()).next())
        .map(str::to_string)
        .ok_or_else(|| format!("no checksum in {text:?}"))
}

/// `key=value` from the firmware's result line.
fn field(line: &str, key: &str) -> Result<String, String> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_string)
        .ok_or_else(|| format!("no {key}= in {line:?}"))
}

/// A `.npy` of shape [1, 1, 28, 28] (f32): a fixed pattern, for `tern run`/`bench`.
fn write_test_npy(path: &Path) -> Result<(), String> {
    let mut header =
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 28, 28), }".to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    for i in 0..784u32 {
        let v = ((i * 37 + 11) % 256) as f32 / 255.0;
        bytes.extend(v.to_le_bytes());
    }
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// A command running in the background, its standard output captured.
struct Running {
    what: String,
    child: std::process::Child,
    started: Instant,
}

impl Running {
    /// Starts `cmd` (in the repository root).
    fn start(what: String, cmd: &mut Command) -> Result<Running, String> {
        eprintln!("xtask: starting in the background {cmd:?}");
        let child = cmd
            .current_dir(root())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
        Ok(Running {
            what,
            child,
            started: Instant::now(),
        })
    }

    /// Waits for it; its standard output, echoed, or an error if it failed.
    fn finish(self) -> Result<String, String> {
        let out = self
            .child
            .wait_with_output()
            .map_err(|e| format!("{}: {e}", self.what))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        print!("{text}");
        eprintln!(
            "xtask: {} finished after {:.1} s",
            self.what,
            self.started.elapsed().as_secs_f64()
        );
        if !out.status.success() {
            return Err(format!("{} failed with {}", self.what, out.status));
        }
        Ok(text)
    }
}
