//! The C library (`targets/capi`, `libtern.a`) on ARM, for `cargo xtask targets`:
//!
//! - the test images quantized to int8 once, bit-identically to the runtime's
//!   `set_input_f32` (`images.i8`, `labels.u8`), shared by both jobs below;
//! - Cortex-M4: `libtern.a` for `thumbv7em-none-eabihf` (no_std, `arm-dsp`) linked
//!   into the freestanding C firmware `targets/cortex-m-c` with `arm-none-eabi-gcc`,
//!   its flash/RAM by origin from the linker map, and its run under
//!   `qemu-system-arm` (mps2-an386) in the background;
//! - aarch64 Linux: `libtern.a` cross-built beside the other aarch64 builds and
//!   `targets/capi/examples/{classify,bad_input}.c` run under `qemu-aarch64`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{AARCH64, Eval, Row, Running, build_std, capture, cross_cargo, field, step};
use crate::{root, run};

/// Test images of the C programs (Cortex-M4 firmware and aarch64): the count the
/// host also evaluates for the M55.
pub(super) const IMAGES: usize = super::M55_IMAGES;
/// Bytes of one Fashion-MNIST image (28 x 28).
const IMAGE_BYTES: usize = 28 * 28;
const THUMB: &str = "thumbv7em-none-eabihf";
/// The Cortex-M4 with its single-precision FPU, hard-float ABI (as `libtern.a` for
/// `thumbv7em-none-eabihf`).
const M4_FLAGS: &[&str] = &[
    "-mcpu=cortex-m4",
    "-mthumb",
    "-mfloat-abi=hard",
    "-mfpu=fpv4-sp-d16",
];
/// C flags of both targets.
const CFLAGS: &[&str] = &["-std=gnu11", "-O2", "-g", "-Wall", "-Wextra", "-Werror"];
/// aarch64 CPUs that run the C examples: baseline NEON, and everything (SMMLA).
const AARCH64_C_CPUS: &[&str] = &["cortex-a53", "max"];
/// Native libraries a hosted Rust static library needs (`--print native-static-libs`).
const HOSTED_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// The raw int8 test images and their labels.
pub(super) struct RawInputs {
    images: PathBuf,
    labels: PathBuf,
    count: usize,
}

/// Writes the first `count` Fashion-MNIST test images into `dir`, quantized with
/// the scale and zero point of `model`'s input 0 exactly as the runtime does
/// (`x = grey / 255` in f32, `rintf(x / scale) + zero_point`, saturated), and
/// their labels.
pub(super) fn write_raw_inputs(
    model: &Path,
    dir: &Path,
    count: usize,
) -> Result<RawInputs, String> {
    let (scale, zero_point) = input_quantization(&read(model)?)?;
    let data = std::env::var_os("TERN_FASHION_MNIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/datasets/fashion-mnist"));
    let pixels = read_idx(&data.join("t10k-images-idx3-ubyte.gz"), count * IMAGE_BYTES)?;
    let labels = read_idx(&data.join("t10k-labels-idx1-ubyte.gz"), count)?;
    let quantized: Vec<u8> = pixels
        .iter()
        .map(|&grey| {
            let v = (f32::from(grey) / 255.0 / scale).round_ties_even() + zero_point as f32;
            v.clamp(-128.0, 127.0) as i8 as u8
        })
        .collect();
    let inputs = RawInputs {
        images: dir.join("images.i8"),
        labels: dir.join("labels.u8"),
        count,
    };
    write(&inputs.images, &quantized)?;
    write(&inputs.labels, &labels)?;
    Ok(inputs)
}

/// Scale and zero point of input 0 of a `.tern` file (runtime/FORMAT.md): the
/// model-inputs table follows the tensor and op records.
fn input_quantization(file: &[u8]) -> Result<(f32, i32), String> {
    let word = |at: usize| -> Result<u32, String> {
        file.get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
            .ok_or_else(|| "model file truncated".to_string())
    };
    let meta = word(24)? as usize;
    let (tensors, ops) = (word(meta)? as usize, word(meta + 4)? as usize);
    let input = word(meta + 64 + 64 * tensors + 40 * ops)? as usize;
    let record = meta + 64 + 64 * input;
    let (dtype, quantization) = (file[record + 8], file[record + 11]);
    if dtype != 3 || quantization != 1 {
        return Err(format!(
            "model input 0 is not per-tensor int8 (dtype {dtype}, quantization {quantization})"
        ));
    }
    Ok((
        f32::from_bits(word(record + 56)?),
        word(record + 60)? as i32,
    ))
}

/// The first `len` data bytes of a gzip'd IDX file (decompressed by `gzip -dc`).
fn read_idx(path: &Path, len: usize) -> Result<Vec<u8>, String> {
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .output()
        .map_err(|e| format!("gzip: {e}"))?;
    if !out.status.success() {
        return Err(format!("gzip -dc {} failed", path.display()));
    }
    let rank = usize::from(*out.stdout.get(3).ok_or("empty IDX file")?);
    let header = 4 + 4 * rank;
    out.stdout
        .get(header..header + len)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| format!("{} has fewer than {len} data bytes", path.display()))
}

/// rustc flags of the firmware `libtern.a`: panic locations without file, line
/// and column (`-Zlocation-detail=none`, admitted by `RUSTC_BOOTSTRAP=1` like
/// `-Zbuild-std`). GNU ld keeps a merged string section whole, so the file paths
/// of every kernel's panic locations would stay in flash although `--gc-sections`
/// drops the kernels themselves (about 4.8 KB here). A panic still records its
/// message (see `targets/capi`); the faulting PC in the ELF gives the place.
const FIRMWARE_RUSTFLAGS: &str = "-Zlocation-detail=none";

/// Builds `libtern.a` for the Cortex-M4 and the C firmware around it (200 images,
/// the host's results as expected values), prints its size by origin, and starts
/// it under `qemu-system-arm` in the background.
pub(super) fn start_firmware(
    tern: &Path,
    model: &Path,
    inputs: &RawInputs,
    host: &Eval,
) -> Result<Running, String> {
    step("C firmware an386 (cortex-m4): libtern.a (no_std, arm-dsp) + arm-none-eabi-gcc");
    run(static_lib("target/thumb")
        .args([
            "--profile",
            "firmware",
            "--no-default-features",
            "--features",
            "arm-dsp,small-crc",
        ])
        .args(["--target", THUMB])
        .args(build_std(THUMB))
        .env(
            format!(
                "CARGO_TARGET_{}_RUSTFLAGS",
                THUMB.to_uppercase().replace('-', "_")
            ),
            FIRMWARE_RUSTFLAGS,
        ))?;
    let lib = root()
        .join("target/thumb")
        .join(THUMB)
        .join("firmware/libtern.a");
    let src = root().join("targets/cortex-m-c");
    let out = root().join("target/targets/cortex-m-c");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;

    // The model's ops only: the linker drops every other kernel of libtern.a.
    let ops = capture(
        Command::new(tern)
            .args(["inspect", "--resolver", "c"])
            .arg(model),
    )?;
    write(&out.join("tern_ops.h"), ops.as_bytes())?;
    let count = inputs.count;
    let images = read(&inputs.images)?;
    let labels = read(&inputs.labels)?;
    let mut dataset = crc32_update(!0, &images[..count * IMAGE_BYTES]);
    dataset = !crc32_update(dataset, &labels[..count]);
    let defines = [
        format!("-DTERN_FW_MODEL_FILE=\"{}\"", model.display()),
        format!("-DTERN_FW_IMAGES_FILE=\"{}\"", inputs.images.display()),
        format!("-DTERN_FW_LABELS_FILE=\"{}\"", inputs.labels.display()),
        format!("-DTERN_FW_IMAGES={count}"),
        format!("-DTERN_FW_ARENA_SIZE={}", planned_arena(&read(model)?)?),
        format!("-DTERN_FW_DATASET_CRC32={dataset:#010x}u"),
        format!("-DTERN_FW_EXPECT_CHECKSUM={}u", host.checksum),
        format!("-DTERN_FW_EXPECT_CORRECT={}", host.correct()?),
    ];
    let mut objects = Vec::new();
    for file in ["main.c", "startup.c", "semihost.c", "data.S"] {
        let object = out.join(file.replace(['.'], "_") + ".o");
        run(Command::new("arm-none-eabi-gcc")
            .args(M4_FLAGS)
            .args(CFLAGS)
            .args(["-ffreestanding", "-ffunction-sections", "-fdata-sections"])
            .arg("-I")
            .arg(root().join("targets/capi/include"))
            .arg("-I")
            .arg(&out)
            .args(&defines)
            .arg("-c")
            .arg(src.join(file))
            .arg("-o")
            .arg(&object))?;
        objects.push(object);
    }
    let elf = out.join("fw.elf");
    let map = out.join("fw.map");
    run(Command::new("arm-none-eabi-gcc")
        .args(M4_FLAGS)
        .args(["-nostdlib", "-Wl,--gc-sections", "-Wl,-z,noexecstack"])
        .arg(format!("-Wl,-Map={}", map.display()))
        .arg("-T")
        .arg(src.join("link.ld"))
        .args(&objects)
        .arg(&lib)
        .arg("-lgcc")
        .arg("-o")
        .arg(&elf))?;
    let sizes = SizeReport::from_map(&String::from_utf8_lossy(&read(&map)?));
    print!("{sizes}");
    let flash = [".vectors", ".text", ".rodata", ".ARM.exidx", ".data"];
    let budgets = super::size::budgets()?;
    let lib = sizes.get("libtern.a", &flash);
    println!(
        "{}",
        super::size::check(&budgets, "m4-c-tern-flash", lib, false)?
    );
    println!(
        "model + images = model {} + {count} images {} + labels {count} (+ alignment)",
        read(model)?.len(),
        count * IMAGE_BYTES
    );
    Running::start(
        "C firmware an386".into(),
        Command::new("timeout")
            .args(["300", "qemu-system-arm", "-machine", "mps2-an386"])
            .args(["-cpu", "cortex-m4", "-nographic"])
            .args(["-semihosting-config", "enable=on,target=native"])
            .args(["-icount", "shift=0", "-kernel"])
            .arg(&elf),
    )
}

/// Waits for the C firmware and checks its result line against the host's.
pub(super) fn finish_firmware(running: Running, host: &Eval) -> Result<Row, String> {
    let text = running.finish()?;
    let got = parse_result(&text, "tern-c-firmware:", host)?;
    let instructions = text
        .lines()
        .find(|l| l.starts_with("tern-c-firmware: info:"))
        .map(|l| field(l, "instructions_per_inference"))
        .transpose()?
        .unwrap_or_else(|| "?".into());
    Ok(Row {
        target: format!(
            "C firmware, cortex-m4 mps2-an386 (qemu-system-arm), {} images",
            host.images
        ),
        kernels: "libtern.a, int8: SMLAD (DSP)".into(),
        accuracy: got.accuracy,
        checksum: got.checksum,
        extra: format!("{instructions} instructions/inference"),
    })
}

/// `libtern.a` for aarch64 Linux (the same target dir as the other aarch64
/// builds), the C examples linked against it and run under `qemu-aarch64`.
pub(super) fn aarch64(model: &Path, inputs: &RawInputs, host: &Eval) -> Result<Vec<Row>, String> {
    step("aarch64: libtern.a and the C examples (classify.c, bad_input.c, offload.c)");
    run(static_lib("target/arm").args(["--target", AARCH64]))?;
    let lib = root()
        .join("target/arm")
        .join(AARCH64)
        .join("debug/libtern.a");
    let out = root().join("target/targets/capi-aarch64");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let examples = root().join("targets/capi/examples");
    for example in ["classify", "bad_input", "offload"] {
        // TERN_STD: the hosted build's functions (tern_model_open) in tern.h.
        run(Command::new("aarch64-linux-gnu-gcc")
            .args(CFLAGS)
            .arg("-DTERN_STD")
            .arg("-I")
            .arg(root().join("targets/capi/include"))
            .arg("-I")
            .arg(&out)
            .arg(examples.join(format!("{example}.c")))
            .arg(&lib)
            .args(HOSTED_LIBS)
            .arg("-o")
            .arg(out.join(example)))?;
    }
    let mut rows = Vec::new();
    for &cpu in AARCH64_C_CPUS {
        let outputs = out.join(format!("outputs-{cpu}.i8"));
        let text = capture(
            Command::new("qemu-aarch64")
                .args(["-cpu", cpu])
                .arg(out.join("classify"))
                .arg(model)
                .arg(&inputs.images)
                .arg(&inputs.labels)
                .arg(&outputs),
        )?;
        let got = parse_result(&text, "classify:", host)?;
        let file_crc = format!("{:#010x}", !crc32_update(!0, &read(&outputs)?));
        if file_crc != host.checksum {
            return Err(format!(
                "C classify, aarch64 {cpu}: outputs file CRC-32 {file_crc} != host {}",
                host.checksum
            ));
        }
        rows.push(Row {
            target: format!(
                "C classify, aarch64 {cpu} (qemu-aarch64), {} images",
                host.images
            ),
            kernels: "libtern.a (debug, runtime opt-level 3)".into(),
            accuracy: got.accuracy,
            checksum: got.checksum,
            extra: "outputs file = host; bad_input.c, offload.c ok".into(),
        });
    }
    run(Command::new("qemu-aarch64")
        .args(["-cpu", "cortex-a53"])
        .arg(out.join("bad_input"))
        .arg(model))?;
    // Offload backends registered from C (loopback behind a C wrapper, a failing
    // backend), checked against the outputs classify.c just wrote (= host).
    let cpu = AARCH64_C_CPUS[0];
    run(Command::new("qemu-aarch64")
        .args(["-cpu", cpu])
        .arg(out.join("offload"))
        .arg(model)
        .arg(&inputs.images)
        .arg(out.join(format!("outputs-{cpu}.i8")))
        .arg("20"))?;
    Ok(rows)
}

/// `cargo rustc` for `libtern.a` alone: the crate's other types (cdylib, rlib)
/// are not needed here, and a bare-metal cdylib would need a linker.
fn static_lib(target_dir: &str) -> Command {
    let mut cmd = cross_cargo(target_dir);
    cmd.args([
        "rustc",
        "-p",
        "tern-capi",
        "--lib",
        "--crate-type",
        "staticlib",
    ]);
    cmd
}

/// The result line `PREFIX ... images=N correct=C checksum=0x...` in `text`,
/// checked against the host's figures for the same images.
fn parse_result(text: &str, prefix: &str, host: &Eval) -> Result<Eval, String> {
    let line = text
        .lines()
        .find(|l| l.starts_with(prefix) && l.contains("checksum="))
        .ok_or_else(|| format!("no `{prefix}` result line in {text:?}"))?;
    let number = |key: &str| -> Result<usize, String> {
        field(line, key)?
            .parse()
            .map_err(|_| format!("bad {key}= in {line:?}"))
    };
    let (images, correct) = (number("images")?, number("correct")?);
    let checksum = field(line, "checksum")?;
    if images != host.images || correct != host.correct()? || checksum != host.checksum {
        return Err(format!(
            "{line:?} differs from the host: images={} correct={} checksum={}",
            host.images,
            host.correct()?,
            host.checksum
        ));
    }
    Ok(Eval {
        accuracy: format!("{:.2}%", correct as f64 * 100.0 / images as f64),
        checksum,
        images,
    })
}

/// The arena size the converter planned (header offset 52).
fn planned_arena(file: &[u8]) -> Result<u32, String> {
    file.get(52..56)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .ok_or_else(|| "model file truncated".to_string())
}

/// CRC-32 (IEEE, reflected) of `bytes` continuing from `crc` (start with `!0`,
/// finish with `!`).
fn crc32_update(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    crc
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Bytes of the firmware per origin and output section, from a GNU ld map file.
#[derive(Default)]
struct SizeReport {
    /// (origin, output section) -> bytes.
    bytes: BTreeMap<(String, &'static str), u64>,
    /// Bytes from `libtern.a` per crate (archive member prefix).
    crates: BTreeMap<String, u64>,
}

/// Output sections counted, in table order.
const SECTIONS: &[&str] = &[
    ".vectors",
    ".text",
    ".rodata",
    ".ARM.exidx",
    ".tern_data",
    ".data",
    ".bss",
];
/// Table rows, in order.
const ORIGINS: &[&str] = &[
    "libtern.a",
    "C code",
    "libgcc",
    "model + images",
    "alignment",
];

impl SizeReport {
    /// Sums the input sections of the map's output sections by origin. Sizes are
    /// taken from addresses: merged string sections (`.rodata.str1.1`) are listed
    /// with overlapping ranges, so each byte counts once, for its first listing.
    fn from_map(map: &str) -> SizeReport {
        let body = map
            .split("Linker script and memory map")
            .nth(1)
            .unwrap_or("");
        // (output section, address, size, file or None for `*fill*`)
        let mut entries = Vec::new();
        let mut section: Option<&'static str> = None;
        let mut pending_name = false;
        for line in body.lines() {
            if !line.starts_with(' ') {
                let name = line.split_whitespace().next().unwrap_or("");
                section = SECTIONS.iter().copied().find(|s| *s == name);
                continue;
            }
            let Some(out) = section else { continue };
            let tokens: Vec<&str> = line.split_whitespace().collect();
            // An input section: ` .name addr size file`, or ` .name` with the rest
            // on the next line; ` *fill* addr size`: alignment padding.
            let fields = match tokens.as_slice() {
                [name] if name.starts_with('.') => {
                    pending_name = true;
                    continue;
                }
                [name, addr, size, file] if name.starts_with('.') => {
                    Some((addr, size, Some(*file)))
                }
                [addr, size, file] if pending_name => Some((addr, size, Some(*file))),
                ["*fill*", addr, size, ..] => Some((addr, size, None)),
                _ => None,
            };
            pending_name = false;
            if let Some((addr, size, file)) = fields
                && let (Some(addr), Some(size)) = (hex(addr), hex(size))
            {
                entries.push((out, addr, size, file));
            }
        }
        entries.sort_by_key(|&(out, addr, _, _)| (out, addr));
        let mut report = SizeReport::default();
        let mut covered = (None, 0u64);
        for (out, addr, size, file) in entries {
            let start = if covered.0 == Some(out) {
                addr.max(covered.1)
            } else {
                addr
            };
            let end = addr + size;
            if end <= start {
                continue;
            }
            covered = (Some(out), end);
            let size = end - start;
            let origin = match file {
                None => "alignment",
                Some(f) if f.contains("libtern.a(") => {
                    let member = f.split("libtern.a(").nth(1).unwrap_or("");
                    let krate = member.split(['-', '.']).next().unwrap_or("?");
                    *report.crates.entry(krate.to_string()).or_default() += size;
                    "libtern.a"
                }
                Some(f) if f.ends_with("data_S.o") => "model + images",
                Some(f) if f.contains("libgcc.a") => "libgcc",
                Some(_) => "C code",
            };
            *report.bytes.entry((origin.to_string(), out)).or_default() += size;
        }
        report
    }

    fn get(&self, origin: &str, sections: &[&str]) -> u64 {
        sections
            .iter()
            .map(|s| {
                self.bytes
                    .get(&(origin.to_string(), *s))
                    .copied()
                    .unwrap_or(0)
            })
            .sum()
    }
}

impl std::fmt::Display for SizeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "C firmware an386, bytes by origin (linker map, after --gc-sections):"
        )?;
        writeln!(
            f,
            "| origin | code (.text, .vectors) | constants (.rodata, .ARM.exidx) | .tern_data | .data | .bss | flash | RAM (statics) |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
        let mut total = [0u64; 7];
        for origin in ORIGINS {
            let cols = [
                self.get(origin, &[".vectors", ".text"]),
                self.get(origin, &[".rodata", ".ARM.exidx"]),
                self.get(origin, &[".tern_data"]),
                self.get(origin, &[".data"]),
                self.get(origin, &[".bss"]),
                self.get(
                    origin,
                    &[
                        ".vectors",
                        ".text",
                        ".rodata",
                        ".ARM.exidx",
                        ".tern_data",
                        ".data",
                    ],
                ),
                self.get(origin, &[".data", ".bss"]),
            ];
            for (t, c) in total.iter_mut().zip(cols) {
                *t += c;
            }
            let cells: Vec<String> = cols.iter().map(u64::to_string).collect();
            writeln!(f, "| {origin} | {} |", cells.join(" | "))?;
        }
        let cells: Vec<String> = total.iter().map(u64::to_string).collect();
        writeln!(f, "| total | {} |", cells.join(" | "))?;
        let crates: Vec<String> = self
            .crates
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        writeln!(
            f,
            "libtern.a by crate (bytes in the image): {}",
            crates.join(", ")
        )
    }
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GNU ld map in the shape `arm-none-eabi-gcc -Wl,-Map` writes.
    const MAP: &str = "\
Discarded input sections

 .text.unused   0x00000000       0x10 main_c.o

Linker script and memory map

LOAD main_c.o
.vectors        0x00000000       0xc0
 *(.vectors)
 .vectors       0x00000000       0xc0 startup_c.o

.text           0x000000c0      0x200
 .text.crc32_update
                0x000000c0       0x34 main_c.o
 .text._RNvCs_4tern10model_slot
                0x000000f4      0x198 /t/libtern.a(tern-2bbf.tern.24f7-cgu.0.rcgu.o)
 *fill*         0x0000028c        0x2 
 .text.memcpy   0x0000028e       0x30 /t/libtern.a(compiler_builtins-1a2b.compiler_builtins.9c-cgu.000.rcgu.o)
 .text          0x000002be        0x2 /usr/lib/gcc/arm-none-eabi/12.2.1/thumb/v7e-m+fp/hard/libgcc.a(_udivsi3.o)
                0x000002be                __aeabi_uidiv

.tern_data      0x00063600    0x8f388
 .tern_data     0x00063600    0x8f388 data_S.o
                0x00063600                tern_fw_model

.bss            0x20000000     0x8584 load address 0x000f2988
 .bss.arena     0x20000000     0x7a80 main_c.o

.debug_info     0x00000000     0x1000
 .debug_info    0x00000000     0x1000 main_c.o
";

    #[test]
    fn size_report_sums_the_map_by_origin() {
        let report = SizeReport::from_map(MAP);
        assert_eq!(report.get("C code", &[".vectors", ".text"]), 0xc0 + 0x34);
        assert_eq!(report.get("libtern.a", &[".text"]), 0x198 + 0x30);
        assert_eq!(report.get("alignment", &[".text"]), 2);
        assert_eq!(report.get("libgcc", &[".text"]), 2);
        assert_eq!(report.get("model + images", &[".tern_data"]), 0x8f388);
        assert_eq!(report.get("C code", &[".bss"]), 0x7a80);
        assert_eq!(report.crates.get("tern"), Some(&0x198));
        assert_eq!(report.crates.get("compiler_builtins"), Some(&0x30));
    }

    #[test]
    fn crc32_is_ieee() {
        assert_eq!(!crc32_update(!0, b"123456789"), 0xcbf4_3926);
    }
}
