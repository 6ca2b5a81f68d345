//! The C examples, compiled with the system C compiler (`cc`, or `$CC`) against this
//! crate's `libtern.a`, on the CNN fixture converted to int8:
//!
//! - `examples/classify.c` must reproduce the Rust interpreter bit for bit: the same
//!   raw output bytes for every image, the same correct count and the same checksum
//!   (CRC-32 of output 0 of every image, the figure `tern eval` and the ARM targets
//!   print). int8 inference is integer-only, so there is no tolerance.
//! - `examples/bad_input.c` must get the expected status for every misuse.
//!
//! `libtern.a`: building this test makes cargo build the library target with all its
//! crate types, the static library included, as `libtern.a` (no hash in the name)
//! next to the test binary in `target/<profile>/deps/`.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tern_export::convert::Precision;
use tern_export::models::ModelKind;
use tern_runtime::{AlignedBytes, DType, Interpreter, Model};

/// Test images run through both: enough to cover every class, small enough to keep
/// the test at a few seconds.
const IMAGES: usize = 200;

/// The static library cargo built for this test run.
fn libtern() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().expect("the test binary's folder");
    let candidates = [
        deps.join("libtern.a"),
        deps.parent()
            .map_or_else(PathBuf::new, |p| p.join("libtern.a")),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| panic!("no libtern.a at {candidates:?}"))
}

/// Compiles `examples/<source>` (C99, warnings as errors, hosted API on) into `out`.
fn compile(source: &str, out: &Path) {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut cmd = Command::new(&cc);
    cmd.args([
        "-std=c99",
        "-O2",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
    ])
    .arg("-DTERN_STD")
    .arg("-I")
    .arg(crate_dir.join("include"))
    .arg(crate_dir.join("examples").join(source))
    .arg(libtern())
    // What a hosted Rust static library needs from the C library.
    .args(["-lpthread", "-ldl", "-lm"])
    .arg("-o")
    .arg(out);
    let result = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}`: {e}"));
    assert!(
        result.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
}

/// Runs `program` with `args`; returns its standard output, failing on a non-zero exit.
fn run(program: &Path, args: &[&Path]) -> String {
    let result = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&result.stdout).into_owned(),
        String::from_utf8_lossy(&result.stderr).into_owned(),
    );
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(
        result.status.success(),
        "{} exited with {}",
        program.display(),
        result.status
    );
    stdout
}

/// The scratch folder holding `cnn-int8.tern`, converted once per test binary.
fn int8_model() -> &'static (PathBuf, Vec<u8>) {
    static MODEL: OnceLock<(PathBuf, Vec<u8>)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let converted = tern_tests::convert_fixture(ModelKind::Cnn, Precision::Int8);
        let dir = tern_tests::scratch_dir("capi");
        std::fs::write(dir.join("cnn-int8.tern"), &converted.bytes).expect("write the model");
        (dir, converted.bytes)
    })
}

/// What the Rust interpreter gives on the first `IMAGES` test images.
struct Expected {
    /// The quantized inputs, back to back.
    inputs: Vec<u8>,
    /// Every output's raw bytes, image after image.
    outputs: Vec<u8>,
    labels: Vec<u8>,
    correct: usize,
    checksum: u32,
}

fn run_rust(bytes: &[u8]) -> Expected {
    let bytes = AlignedBytes::new(bytes);
    let model = Model::from_bytes(&bytes).expect("valid model");
    assert_eq!(model.input(0).expect("input 0").dtype, DType::I8);
    let mut interpreter = Interpreter::with_allocated_arena(&model).expect("arena");
    let data = tern_tests::test_set();
    let indices: Vec<usize> = (0..IMAGES).collect();
    let images = data.images_f32(&indices);
    let labels = data.labels_at(&indices);
    let pixels = images.len() / IMAGES;
    let mut expected = Expected {
        inputs: Vec::new(),
        outputs: Vec::new(),
        labels: labels.clone(),
        correct: 0,
        checksum: 0,
    };
    let mut crc = crc32fast::Hasher::new();
    for (image, label) in images.chunks_exact(pixels).zip(&labels) {
        interpreter.set_input_f32(0, image).expect("set input");
        let (_, input) = interpreter.input_mut(0).expect("input 0");
        expected.inputs.extend_from_slice(input);
        interpreter.invoke().expect("invoke");
        for k in 0..model.output_count() {
            let output = interpreter.output(k).expect("output");
            expected.outputs.extend_from_slice(output.bytes);
        }
        let scores = interpreter.output(0).expect("output 0");
        crc.update(scores.bytes);
        let scores = scores.as_i8().expect("int8 output");
        // First maximum on ties, as classify.c.
        let best = (0..scores.len()).fold(0, |b, i| if scores[i] > scores[b] { i } else { b });
        expected.correct += usize::from(best == usize::from(*label));
    }
    expected.checksum = crc.finalize();
    expected
}

#[test]
fn classify_c_matches_the_rust_interpreter_bit_for_bit() {
    let (dir, bytes) = int8_model();
    let expected = run_rust(bytes);
    let (inputs, labels, outputs) = (
        dir.join("inputs.bin"),
        dir.join("labels.bin"),
        dir.join("outputs.bin"),
    );
    std::fs::write(&inputs, &expected.inputs).expect("write inputs");
    std::fs::write(&labels, &expected.labels).expect("write labels");
    let program = dir.join("classify");
    compile("classify.c", &program);
    let stdout = run(
        &program,
        &[&dir.join("cnn-int8.tern"), &inputs, &labels, &outputs],
    );

    let line = stdout
        .lines()
        .find(|l| l.starts_with("classify: "))
        .expect("a classify: line");
    let want = format!(
        "classify: images={IMAGES} correct={} checksum=0x{:08x}",
        expected.correct, expected.checksum
    );
    println!(
        "rust:     images={IMAGES} correct={} checksum=0x{:08x}",
        expected.correct, expected.checksum
    );
    assert_eq!(line, want);
    let written = std::fs::read(&outputs).expect("classify wrote its outputs");
    assert_eq!(written.len(), expected.outputs.len(), "output file size");
    assert!(
        written == expected.outputs,
        "classify.c's raw outputs differ from the Rust interpreter's"
    );
    // A sanity floor, far below the fixture's accuracy (93.5% on these 200 images).
    assert!(
        expected.correct * 100 >= 85 * IMAGES,
        "accuracy {}",
        expected.correct
    );
}

#[test]
fn bad_input_c_gets_every_expected_status() {
    let (dir, _) = int8_model();
    let program = dir.join("bad_input");
    compile("bad_input.c", &program);
    let stdout = run(&program, &[&dir.join("cnn-int8.tern")]);
    assert!(stdout.contains("checks passed"), "{stdout}");
}

/// Offload backends registered from C: the loopback reference backend behind a C
/// wrapper (bit-identical outputs, the expected partitions), a failing C backend
/// (CPU fallback, or `TERN_STATUS_BACKEND_FAILED`), and the argument checks.
#[test]
fn offload_c_backends_never_change_the_outputs() {
    let (dir, bytes) = int8_model();
    let expected = run_rust(bytes);
    let images = 20;
    let per_input = expected.inputs.len() / IMAGES;
    let per_output = expected.outputs.len() / IMAGES;
    let (inputs, outputs) = (
        dir.join("offload-inputs.bin"),
        dir.join("offload-expected.bin"),
    );
    std::fs::write(&inputs, &expected.inputs[..images * per_input]).expect("write inputs");
    std::fs::write(&outputs, &expected.outputs[..images * per_output]).expect("write outputs");
    let program = dir.join("offload");
    compile("offload.c", &program);
    let stdout = run(&program, &[&dir.join("cnn-int8.tern"), &inputs, &outputs]);
    assert!(stdout.contains("checks passed"), "{stdout}");
    assert!(
        stdout.contains("partition 2 ops 5..7 on backend"),
        "{stdout}"
    );
}
