//! Instructions per inference on aarch64 under QEMU (no ARM hardware here).
//!
//! Debian's QEMU has no TCG plugins, so the count comes from QEMU's logs:
//! `-d in_asm` lists the instructions of each translated block, `-d exec,nochain`
//! logs every block executed; the sum over executed blocks of their lengths is
//! the instruction count (within 0.2% of a `-one-insn-per-tb` count here). Two runs
//! of `tern bench` that differ by one inference give the count for one.
//!
//! `cargo xtask targets --icount` prints the CNN's count per int8 kernel choice
//! on `max`; `cargo xtask icount [--cpu CPU]... [--tern AARCH64_TERN] MODEL.tern
//! INPUT.npy` counts any model with the default kernels on each CPU (default
//! `max` and `cortex-a53`), with this tree's device `tern` or the one given.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{device_tern, step};
use crate::run;

/// The CNN (or any model) on `max`, per int8 kernel choice.
pub(super) fn kernel_table(tern: &Path, model: &Path, input: &Path) -> Result<(), String> {
    step("aarch64 instruction counts (cpu max)");
    let mut table = String::from(
        "| int8 kernels | instructions per inference (aarch64, QEMU log) |\n|---|---|\n",
    );
    for kernels in [
        "reference",
        "portable",
        "neon",
        "neon-sdot",
        "neon-i8mm",
        "fast",
    ] {
        let count = per_inference(tern, "max", model, input, kernels)?;
        table.push_str(&format!("| {kernels} | {count} |\n"));
    }
    print!("{table}");
    Ok(())
}

/// `cargo xtask icount [--cpu CPU]... MODEL INPUT`.
pub(crate) fn icount(args: &[String]) -> Result<(), String> {
    let mut cpus = Vec::new();
    let mut files = Vec::new();
    let mut tern = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--cpu" => cpus.push(it.next().ok_or("--cpu takes a QEMU CPU name")?.clone()),
            "--tern" => tern = Some(PathBuf::from(it.next().ok_or("--tern takes a path")?)),
            other if other.starts_with("--") => {
                return Err(format!("unknown icount option {other}"));
            }
            file => files.push(PathBuf::from(file)),
        }
    }
    let [model, input] = &files[..] else {
        return Err(
            "usage: cargo xtask icount [--cpu CPU]... [--tern AARCH64_TERN] MODEL.tern INPUT.npy"
                .into(),
        );
    };
    if cpus.is_empty() {
        cpus = vec!["max".into(), "cortex-a53".into()];
    }
    run(Command::new("bash").arg(crate::root().join("targets/toolchain/install-arm.sh")))?;
    // Another build (an older commit's, for a before/after) or this tree's.
    let tern = match tern {
        Some(path) => path,
        None => device_tern()?,
    };
    println!("| CPU (qemu-aarch64) | instructions per inference |\n|---|---:|");
    for cpu in &cpus {
        let count = per_inference(&tern, cpu, model, input, "fast")?;
        println!("| {cpu} | {count} |");
    }
    Ok(())
}

/// Instructions of one inference of `model` on `cpu` with int8 `kernels`.
fn per_inference(
    tern: &Path,
    cpu: &str,
    model: &Path,
    input: &Path,
    kernels: &str,
) -> Result<u64, String> {
    let count = |iterations: &str| -> Result<u64, String> {
        let mut child = Command::new("qemu-aarch64")
            .args([
                "-cpu",
                cpu,
                "-d",
                "in_asm,exec,nochain",
                "-D",
                "/dev/stdout",
            ])
            .arg(tern)
            .arg("bench")
            .arg(model)
            .arg("--input")
            .arg(input)
            .args([
                "--warmup",
                "0",
                "--iterations",
                iterations,
                "--kernels",
                kernels,
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("qemu-aarch64: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let total = count_logged_instructions(std::io::BufReader::new(stdout));
        let status = child.wait().map_err(|e| format!("qemu-aarch64: {e}"))?;
        if !status.success() {
            return Err(format!(
                "qemu-aarch64 -cpu {cpu} tern bench failed with {status}"
            ));
        }
        Ok(total)
    };
    let (one, two) = (count("1")?, count("2")?);
    Ok(two.saturating_sub(one))
}

/// Sums, over the `Trace` lines of a QEMU `-d in_asm,exec,nochain` log, the
/// number of instructions of the block each executes (from its latest `IN:` listing).
fn count_logged_instructions(log: impl std::io::BufRead) -> u64 {
    let mut sizes = std::collections::HashMap::<u64, u64>::new();
    let (mut block, mut len) = (None::<u64>, 0u64);
    let mut total = 0;
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    for line in log.split(b'\n').map_while(Result::ok) {
        let line = String::from_utf8_lossy(&line);
        if let Some(rest) = line.strip_prefix("Trace ") {
            if let Some(pc) = block.take() {
                sizes.insert(pc, len);
            }
            let pc = rest
                .split('[')
                .nth(1)
                .and_then(|f| f.split('/').nth(1))
                .and_then(hex);
            total += pc.and_then(|pc| sizes.get(&pc)).copied().unwrap_or(0);
        } else if line.starts_with("IN:") {
            if let Some(pc) = block.take() {
                sizes.insert(pc, len);
            }
            len = 0;
        } else if line.starts_with("0x") && line.contains(":  ") {
            if block.is_none() && len == 0 {
                block = line.split(':').next().and_then(hex);
            }
            len += 1;
        }
    }
    total
}
