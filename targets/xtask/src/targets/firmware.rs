//! The Rust Cortex-M firmware (`targets/cortex-m`): its boards, its build
//! (Tern's, or the stubbed baseline `size` subtracts) and its run under QEMU.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Eval, IMAGES, M55_IMAGES, Running, build_std, cross_cargo, expect_same, field};
use crate::root;

/// A Cortex-M board of QEMU's: target triple, CPU, and firmware features.
pub(super) struct Board {
    pub(super) name: &'static str,
    pub(super) machine: &'static str,
    pub(super) cpu: &'static str,
    pub(super) target: &'static str,
    /// `SMLAD` kernels (the DSP extension).
    pub(super) dsp: bool,
    /// Test images embedded and evaluated.
    pub(super) images: usize,
}

pub(super) const BOARDS: &[Board] = &[
    Board {
        name: "an386",
        machine: "mps2-an386",
        cpu: "cortex-m4",
        target: "thumbv7em-none-eabihf",
        dsp: true,
        images: IMAGES,
    },
    Board {
        name: "an505",
        machine: "mps2-an505",
        cpu: "cortex-m33",
        target: "thumbv8m.main-none-eabihf",
        dsp: true,
        images: IMAGES,
    },
    Board {
        name: "an547",
        machine: "mps3-an547",
        cpu: "cortex-m55",
        target: "thumbv8m.main-none-eabihf",
        dsp: false,
        images: M55_IMAGES,
    },
];

/// Which firmware to build: Tern's, or the same with Tern stubbed out.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Build {
    /// The benchmark over Tern.
    Tern,
    /// `--features tern-stub`: the size baseline (see `size`).
    Stub,
}

/// Builds the firmware for `board` with the host's expected results baked in;
/// returns the ELF's path.
pub(super) fn build_firmware(
    board: &Board,
    model: &Path,
    host: &Eval,
    build: Build,
) -> Result<PathBuf, String> {
    let fw = root().join("targets/cortex-m");
    let mut cmd = cross_cargo(&target_dir(board));
    cmd.current_dir(&fw)
        .args(["build", "--release", "--target", board.target])
        .args(build_std(board.target))
        .env("TERN_FW_MODEL", model)
        .env("TERN_FW_IMAGES", board.images.to_string())
        .env("TERN_FW_BOARD", board.name)
        .env("TERN_FW_EXPECT_CHECKSUM", &host.checksum)
        .env("TERN_FW_EXPECT_CORRECT", host.correct()?.to_string())
        .env(
            format!(
                "CARGO_TARGET_{}_RUSTFLAGS",
                board.target.to_uppercase().replace(['-', '.'], "_")
            ),
            format!("-C target-cpu={}", board.cpu),
        );
    // The stub build keeps the board's features, so that the runtime and every
    // other dependency compiled for the Tern build are reused as they are: only the
    // firmware crate itself is rebuilt (the stub does not link the runtime).
    let mut features = Vec::new();
    if board.dsp {
        features.push("dsp");
    }
    if build == Build::Stub {
        features.push("tern-stub");
    }
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start cargo: {e}"))?;
    if !status.success() {
        return Err(format!("firmware build for {} failed", board.name));
    }
    // Both builds of a board share its target folder (and so cargo's output path):
    // each keeps a copy of its own ELF.
    let built = root()
        .join(target_dir(board))
        .join(board.target)
        .join("release/tern-firmware");
    let kept = elf(board, build);
    std::fs::copy(&built, &kept)
        .map_err(|e| format!("copying {} to {}: {e}", built.display(), kept.display()))?;
    Ok(kept)
}

/// One target folder per board (the boards' RUSTFLAGS differ), shared by its Tern
/// and stub builds.
fn target_dir(board: &Board) -> String {
    format!("target/fw-{}", board.name)
}

/// Where [`build_firmware`] leaves the ELF of `build`.
pub(super) fn elf(board: &Board, build: Build) -> PathBuf {
    let name = match build {
        Build::Tern => "tern-firmware.elf",
        Build::Stub => "tern-firmware-stub.elf",
    };
    root().join(target_dir(board)).join(name)
}

/// Builds the firmware for `board` with the host's expected results baked in
/// and starts it under QEMU in the background (its instruction counts do not
/// depend on the machine's load: `-icount shift=0`).
pub(super) fn start_firmware(board: &Board, model: &Path, host: &Eval) -> Result<Running, String> {
    let elf = build_firmware(board, model, host, Build::Tern)?;
    Running::start(
        format!("firmware {}", board.name),
        Command::new("qemu-system-arm")
            .args(["-machine", board.machine, "-cpu", board.cpu, "-nographic"])
            .args([
                "-semihosting-config",
                "enable=on,target=native",
                "-icount",
                "shift=0",
                "-kernel",
            ])
            .arg(&elf),
    )
}

/// Waits for a firmware run and checks its result line against the host's.
pub(super) fn finish_firmware(board: &Board, run: Running, host: &Eval) -> Result<String, String> {
    let text = run.finish()?;
    let line = text
        .lines()
        .find(|l| l.starts_with("tern-firmware:"))
        .ok_or("no result line from the firmware")?
        .to_string();
    let got = Eval {
        accuracy: field(&line, "accuracy")?,
        checksum: field(&line, "checksum")?,
        images: board.images,
    };
    expect_same(&format!("firmware {}", board.name), &got, host)?;
    Ok(line)
}
