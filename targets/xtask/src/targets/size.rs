//! What Tern adds to the Cortex-M4 firmware's flash, measured as TensorFlow Lite
//! Micro measures its framework: the firmware's code and constants (model and
//! test data excluded) minus the same firmware with Tern stubbed out
//! (`--features tern-stub`), on the build whose instruction count the targets
//! job reports. Checked against `targets/size-budget.txt`: CI fails when Tern's
//! flash grows past its budget or the arena differs from the recorded plan.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::firmware::{BOARDS, Board, Build, build_firmware};
use super::{Eval, field, step};
use crate::{capture_quiet, root};

/// The recorded budgets, one `key = bytes` per line (`#` comments).
const BUDGET_FILE: &str = "targets/size-budget.txt";

/// Flash and RAM of one firmware ELF, from its section and symbol tables.
struct Image {
    /// Code and constants: `.vector_table`, `.text`, `.rodata`, `.data`'s image.
    code: u64,
    /// The embedded model, images and labels (`.tern_data`).
    data: u64,
    /// The model alone.
    model: u64,
    /// Static RAM: `.data`, `.bss`, `.uninit`.
    statics: u64,
    /// Function and object bytes by crate (from the demangled symbol names).
    crates: BTreeMap<String, u64>,
}

impl Image {
    fn read(elf: &Path) -> Result<Image, String> {
        let sections = capture_quiet(Command::new("readelf").args(["-S", "-W"]).arg(elf))?;
        let size = |name: &str| -> u64 {
            sections
                .lines()
                .filter_map(|l| l.split_once(']').map(|(_, rest)| rest))
                .map(str::split_whitespace)
                .filter_map(|mut cols| Some((cols.next()?, cols.nth(3)?)))
                .find(|(n, _)| *n == name)
                .and_then(|(_, hex)| u64::from_str_radix(hex, 16).ok())
                .unwrap_or(0)
        };
        let symbols = capture_quiet(
            Command::new("arm-none-eabi-nm")
                .args(["--print-size", "--size-sort", "--demangle"])
                .arg(elf),
        )?;
        let mut crates = BTreeMap::new();
        let mut model = 0;
        for line in symbols.lines() {
            let mut cols = line.splitn(4, ' ');
            let (Some(_), Some(bytes), Some(kind), Some(name)) =
                (cols.next(), cols.next(), cols.next(), cols.next())
            else {
                continue;
            };
            let bytes = u64::from_str_radix(bytes, 16).unwrap_or(0);
            if name.ends_with("data::MODEL") {
                model = bytes;
            }
            let in_flash = matches!(kind, "t" | "T" | "r" | "R");
            let test_data = ["data::MODEL", "data::IMAGES", "data::LABELS"]
                .iter()
                .any(|d| name.ends_with(d));
            if in_flash && !test_data {
                *crates.entry(crate_of(name)).or_insert(0) += bytes;
            }
        }
        let data = size(".data");
        Ok(Image {
            code: size(".vector_table")
                + size(".text")
                + size(".rodata")
                + data
                + size(".gnu.sgstubs"),
            data: size(".tern_data"),
            model,
            statics: data + size(".bss") + size(".uninit"),
            crates,
        })
    }
}

/// The crate a demangled symbol belongs to: the first path segment, through
/// `<...>` and references (`<&tern_runtime::Error as core::fmt::Display>::fmt`
/// is `tern_runtime`'s); C and assembly symbols are `(no crate)`.
fn crate_of(name: &str) -> String {
    let name = name.trim_start_matches(['<', '&', '*', '[']);
    let name = name.strip_prefix("mut ").unwrap_or(name);
    let name = name.strip_prefix("dyn ").unwrap_or(name);
    match name.split_once("::") {
        Some((first, _)) if first.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            first.to_string()
        }
        _ if name.starts_with(['u', 'i', 'f']) && name.contains(" as core::") => "core".to_string(),
        _ if name.starts_with(".L") => "(string and constant literals)".to_string(),
        _ => "(no crate: C, assembly, linker)".to_string(),
    }
}

/// The recorded budgets.
pub(super) fn budgets() -> Result<BTreeMap<String, u64>, String> {
    let path = root().join(BUDGET_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (key, value) = l
                .split_once('=')
                .ok_or_else(|| format!("{BUDGET_FILE}: no `=` in {l:?}"))?;
            let value = value.trim().replace('_', "");
            let value = value
                .parse()
                .map_err(|_| format!("{BUDGET_FILE}: {l:?} is not `key = bytes`"))?;
            Ok((key.trim().to_string(), value))
        })
        .collect()
}

/// Compares `figure` with budget `key` (`exact`: the figure must equal it).
pub(super) fn check(
    budgets: &BTreeMap<String, u64>,
    key: &str,
    figure: u64,
    exact: bool,
) -> Result<String, String> {
    let budget = *budgets
        .get(key)
        .ok_or_else(|| format!("{BUDGET_FILE} has no `{key}`: record {figure}"))?;
    let fails = if exact {
        figure != budget
    } else {
        figure > budget
    };
    if fails {
        return Err(format!(
            "{key} = {figure} bytes {} the recorded {budget} in {BUDGET_FILE}; a deliberate \
             change updates the file (budget = measured + 2%) and says why",
            if exact { "differs from" } else { "is over" }
        ));
    }
    Ok(format!("{key}: {figure} bytes (budget {budget})"))
}

/// Builds the M4 firmware with Tern stubbed out beside the one `tern_elf` the
/// targets job built and ran (`result_line` is its output), prints the size
/// table and checks the budgets.
pub(super) fn check_m4(
    model: &Path,
    host: &Eval,
    tern_elf: &Path,
    result_line: &str,
) -> Result<(), String> {
    let board: &Board = &BOARDS[0];
    step("size: Cortex-M4 firmware with Tern stubbed out");
    let stub_elf = build_firmware(board, model, host, Build::Stub)?;
    let (tern, stub) = (Image::read(tern_elf)?, Image::read(&stub_elf)?);
    let added = tern.code.saturating_sub(stub.code);
    let arena: u64 = field(result_line, "arena")?
        .parse()
        .map_err(|_| "bad arena= in the result line".to_string())?;

    let mut table = format!(
        "Cortex-M4 firmware ({}, SMLAD kernels, full load-time validation), flash by crate \
         (symbol sizes; code and constants, model and test data excluded):\n\
         | crate | firmware | Tern stubbed out | Tern adds |\n|---|---:|---:|---:|\n",
        board.machine
    );
    let mut names: Vec<&String> = tern.crates.keys().chain(stub.crates.keys()).collect();
    names.sort_by_key(|n| std::cmp::Reverse(tern.crates.get(*n).copied().unwrap_or(0)));
    names.dedup();
    for name in names {
        let (a, b) = (
            tern.crates.get(name).copied().unwrap_or(0),
            stub.crates.get(name).copied().unwrap_or(0),
        );
        table += &format!("| {name} | {a} | {b} | {} |\n", a as i64 - b as i64);
    }
    table += &format!(
        "| **code + constants (sections)** | **{}** | **{}** | **{added}** |\n\
         \nTern's code and constants: {added} bytes ({:.1} KiB); the firmware's flash with the \
         model: {} bytes (code {} + model {}; + {} bytes of test images and labels); RAM: \
         statics {} bytes (arena {arena}), stack peak {} bytes; {} instructions/inference, \
         accuracy {}, checksum {}.\n",
        tern.code,
        stub.code,
        added as f64 / 1024.0,
        tern.code + tern.model,
        tern.code,
        tern.model,
        tern.data.saturating_sub(tern.model),
        tern.statics,
        field(result_line, "stack_peak")?,
        field(result_line, "instructions_per_inference")?,
        field(result_line, "accuracy")?,
        field(result_line, "checksum")?,
    );
    print!("\n{table}");
    let out = root().join("target/targets/size.md");
    std::fs::write(&out, &table).map_err(|e| format!("{}: {e}", out.display()))?;

    let budgets = budgets()?;
    println!("{}", check(&budgets, "m4-rust-tern-flash", added, false)?);
    println!("{}", check(&budgets, "m4-rust-arena", arena, true)?);
    Ok(())
}

/// The aarch64 device `tern` (release; `eval`, `run`, `bench`, `inspect`
/// with clap, flate2 and ndarray-npy beside the runtime): its code and
/// constants against budget `aarch64-device-tern`.
pub(super) fn check_device_tern(elf: &Path) -> Result<(), String> {
    let sections = capture_quiet(Command::new("readelf").args(["-S", "-W"]).arg(elf))?;
    // Allocated sections that are not written at run time (AX or A, not W).
    let code: u64 = sections
        .lines()
        .filter_map(|l| l.split_once(']').map(|(_, rest)| rest))
        .filter_map(|rest| {
            let cols: Vec<&str> = rest.split_whitespace().collect();
            let (size, flags) = (cols.get(4)?, cols.get(6)?);
            (flags.contains('A') && !flags.contains('W'))
                .then(|| u64::from_str_radix(size, 16).ok())
                .flatten()
        })
        .sum();
    println!(
        "aarch64 device tern ({}): {code} bytes of code and constants (read-only allocated sections)",
        elf.display()
    );
    println!(
        "{}",
        check(&budgets()?, "aarch64-device-tern", code, false)?
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::crate_of;

    #[test]
    fn symbols_are_attributed_to_their_crate() {
        assert_eq!(
            crate_of("tern_runtime::ops::conv2d::run_int8_fast"),
            "tern_runtime"
        );
        assert_eq!(
            crate_of("<&tern_runtime::error::Error as core::fmt::Display>::fmt"),
            "tern_runtime"
        );
        assert_eq!(crate_of("<u64 as core::fmt::Display>::fmt"), "core");
        assert_eq!(
            crate_of("__aeabi_memcpy4"),
            "(no crate: C, assembly, linker)"
        );
    }
}
