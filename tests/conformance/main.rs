//! ONNX backend node-test conformance: every node test of the `onnx` wheel whose
//! ops are all in `supported_ops()` runs in f32 and must pass; the coverage line
//! and the per-op table are printed, and `docs/ops.md` must hold the table
//! generated from the same run (`TERN_BLESS=1` rewrites it).
//!
//! Tests that feed weights/shapes/axes as graph inputs, where Tern needs
//! constants, get a second attempt with those inputs as constants from their own
//! data, counted apart ("with constant inputs"); a failure there fails too.
//!
//! `TERN_NODE_TESTS=conv` runs only the tests whose name contains `conv` (and
//! skips the `docs/ops.md` check) when working on one op.

use std::path::Path;
use std::time::Instant;

mod fuzz_seeds;
mod harness;

use harness::{Outcome, Report};

const BEGIN: &str = "<!-- ops-table:begin -->";
const END: &str = "<!-- ops-table:end -->";

/// Worker threads: the tests are small and independent.
const THREADS: usize = 2;

#[test]
fn onnx_node_tests() {
    let root = tern_tests::workspace_root();
    let node_dir = harness::node_tests_dir(&root).unwrap_or_else(|| {
        panic!(
            "the onnx wheel's node tests are not under {}: run `cargo xtask setup`",
            root.join(".venv/lib/python3*/site-packages/onnx/backend/test/data/node")
                .display()
        )
    });
    let mut dirs = harness::list_node_tests(&node_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", node_dir.display()));
    assert!(
        !dirs.is_empty(),
        "no test_* folder in {}",
        node_dir.display()
    );
    let filter = std::env::var("TERN_NODE_TESTS")
        .ok()
        .filter(|f| !f.is_empty());
    if let Some(f) = &filter {
        dirs.retain(|d| {
            d.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(f.as_str()))
        });
    }

    let start = Instant::now();
    let report = Report::new(harness::run_node_tests(&dirs, THREADS));
    let elapsed = start.elapsed();

    println!("{}", report.ops_text());
    // `name (with constant inputs a, b)` for tests run in the second attempt.
    let label = |t: &harness::NodeTest| {
        if t.with_constant_inputs() {
            format!(
                "{} (with constant inputs {})",
                t.name,
                t.constant_inputs.join(", ")
            )
        } else {
            t.name.clone()
        }
    };
    for t in &report.tests {
        match &t.outcome {
            Outcome::Skipped { why } => println!("skipped {}: {why}", label(t)),
            // With a filter, show what passed too.
            Outcome::Passed { max_abs_err } if filter.is_some() => {
                println!("passed {} (max abs err {max_abs_err:.1e})", label(t))
            }
            _ => {}
        }
    }
    let failures: Vec<String> = report
        .failures()
        .filter_map(|t| match &t.outcome {
            Outcome::Failed { why } => Some(format!("{} [{}]: {why}", label(t), t.ops.join(", "))),
            _ => None,
        })
        .collect();
    for f in &failures {
        println!("FAILED {f}");
    }
    println!(
        "{} ({:.1} s)",
        report.coverage_line(),
        elapsed.as_secs_f64()
    );

    let mut problems = Vec::new();
    if !failures.is_empty() {
        problems.push(format!(
            "{} node tests of supported ops failed:\n  {}",
            failures.len(),
            failures.join("\n  ")
        ));
    }
    match filter {
        Some(f) => println!("TERN_NODE_TESTS={f}: docs/ops.md not checked"),
        None => {
            if let Err(e) = check_doc(&root.join("docs/ops.md"), &harness::ops_markdown(&report)) {
                problems.push(e);
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// Checks (or with `TERN_BLESS=1` rewrites) the generated table between the markers of `path`.
fn check_doc(path: &Path, table: &str) -> Result<(), String> {
    let doc = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) else {
        return Err(format!(
            "{}: markers {BEGIN} / {END} not found",
            path.display()
        ));
    };
    let start = b + BEGIN.len();
    if e < start {
        return Err(format!("{}: {END} before {BEGIN}", path.display()));
    }
    let wanted = format!("\n{table}");
    if doc[start..e] == wanted {
        return Ok(());
    }
    if std::env::var("TERN_BLESS").is_ok_and(|v| v == "1") {
        let updated = format!("{}{wanted}{}", &doc[..start], &doc[e..]);
        std::fs::write(path, updated).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("TERN_BLESS=1: rewrote the table in {}", path.display());
        return Ok(());
    }
    Err(format!(
        "{} does not hold the table generated from this run; rerun with TERN_BLESS=1 to \
         update it. Generated:\n{table}",
        path.display()
    ))
}
