//! ONNX backend node-test conformance: runs the node tests shipped in the
//! `onnx` wheel (`onnx/backend/test/data/node/test_*/`, installed into
//! `<workspace>/.venv` by `cargo xtask setup`) through the converter (f32) and
//! the runtime, and compares with their expected outputs.
//!
//! A test runs when every op of its model is in
//! [`supported_ops`](tern_export::convert::support::supported_ops); it is skipped as
//! an unsupported variant when the converter rejects an attribute or form of a
//! supported op with [`ConvertError::UnsupportedOp`], or when its tensors have an
//! element type Tern does not hold (f64, f16, strings...; narrow or unsigned
//! integer graph inputs, [`ConvertError::UnsupportedInput`]). Anything else that
//! goes wrong (an invalid-model error, a runtime error, a panic, a wrong value)
//! is a failure. The same [`Report`] prints the coverage line and generates the
//! supported-ops table of `docs/ops.md` ([`ops_markdown`]).
//!
//! Node tests often feed weights, shapes, axes or scales as graph inputs, where
//! Tern (which converts static graphs) needs constants. When the strict attempt
//! is skipped because the converter needs an input "as a constant", the runner
//! makes a second, separately counted attempt: the graph inputs behind that
//! input become initializers holding the test's own `input_N.pb` data, and the
//! test runs on the remaining inputs ([`NodeTest::constant_inputs`]). A failure
//! in that mode fails the test as any other.
//!
//! Tolerance: `|got - expected| <= ATOL + RTOL * |expected|` with [`RTOL`] = 1e-3
//! (as onnx's backend tests) and [`ATOL`] = 1e-5 (onnx uses 1e-7; Tern's f32
//! kernels reorder sums). Integer and bool outputs (i32 in Tern, 0/1 for bool)
//! must match exactly; NaN matches NaN.
//!
//! Files: this module (one test, many tests on worker threads, panics as
//! failures), `tensors` (reading `.pb` tensors, comparing values), `attempt`
//! (the strict and the constant-input attempts), `report` (per-op counts and
//! the `docs/ops.md` table).

mod attempt;
mod report;
mod tensors;
#[cfg(test)]
mod tests;

pub use report::{Report, ops_markdown};

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use tern_export::convert;
use tern_export::convert::support::lookup;

use attempt::run_supported;
/// Relative tolerance on float outputs.
pub const RTOL: f64 = 1e-3;
/// Absolute tolerance on float outputs.
pub const ATOL: f64 = 1e-5;

/// The wheel's node-test folder under `workspace_root`
/// (`.venv/lib/python3*/site-packages/onnx/backend/test/data/node`), if installed.
pub fn node_tests_dir(workspace_root: &Path) -> Option<PathBuf> {
    let lib = workspace_root.join(".venv/lib");
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(lib)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .map(|e| e.path().join("site-packages/onnx/backend/test/data/node"))
        .filter(|p| p.is_dir())
        .collect();
    candidates.sort();
    candidates.pop()
}

/// The `test_*` folders under `node_dir`, sorted by name.
pub fn list_node_tests(node_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(node_dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("test_"))
        .map(|e| e.path())
        .filter(|p| p.join("model.onnx").is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// How one node test went.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Every output matched; the largest absolute error over float outputs.
    Passed {
        /// Largest `|got - expected|` (0 for exact outputs).
        max_abs_err: f64,
    },
    /// A supported test that errored, panicked or produced wrong values.
    Failed {
        /// What went wrong.
        why: String,
    },
    /// Only supported ops, but a variant Tern rejects with a typed error (an
    /// attribute, a non-constant shape input, an element type it does not hold).
    Skipped {
        /// The converter's message, or the element type.
        why: String,
    },
    /// The model uses an op outside
    /// [`supported_ops`](tern_export::convert::support::supported_ops): not Tern's claim.
    Unsupported {
        /// The first such op (`domain::Op` outside the default domain).
        op: String,
    },
}

/// One node test's result.
#[derive(Clone, Debug)]
pub struct NodeTest {
    /// Folder name (`test_conv_with_strides_padding`).
    pub name: String,
    /// Distinct op types of the model's nodes, sorted.
    pub ops: Vec<String>,
    /// What happened.
    pub outcome: Outcome,
    /// Graph inputs fed as constants (initializers from the test's own data) in
    /// the second attempt; empty when the test ran (or was skipped) as is.
    pub constant_inputs: Vec<String>,
}

impl NodeTest {
    /// True when every op is supported (the test counts towards coverage).
    pub fn eligible(&self) -> bool {
        !matches!(self.outcome, Outcome::Unsupported { .. })
    }

    /// True when the test ran with some graph inputs as constants.
    pub fn with_constant_inputs(&self) -> bool {
        !self.constant_inputs.is_empty()
    }
}

/// Runs the node test in `dir` (`model.onnx`, `test_data_set_*/{input,output}_N.pb`).
/// Panics inside the converter or runtime are caught and reported as failures.
pub fn run_node_test(dir: &Path) -> NodeTest {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let proto = match convert::read_onnx(&dir.join("model.onnx")) {
        Ok(p) => p,
        Err(e) => {
            return NodeTest {
                name,
                ops: Vec::new(),
                outcome: Outcome::Failed { why: e.to_string() },
                constant_inputs: Vec::new(),
            };
        }
    };
    let nodes = proto.graph.as_ref().map_or(&[][..], |g| &g.node[..]);
    let ops: Vec<String> = nodes
        .iter()
        .map(|n| op_name(&n.domain, &n.op_type))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let unsupported = nodes
        .iter()
        .find(|n| !(n.domain.is_empty() || n.domain == "ai.onnx") || lookup(&n.op_type).is_none());
    let constants = RefCell::new(Vec::new());
    let outcome = match unsupported {
        Some(n) => Outcome::Unsupported {
            op: op_name(&n.domain, &n.op_type),
        },
        None => guarded(|| run_supported(dir, &proto, &constants)),
    };
    NodeTest {
        name,
        ops,
        outcome,
        constant_inputs: constants.into_inner(),
    }
}

fn op_name(domain: &str, op_type: &str) -> String {
    if domain.is_empty() || domain == "ai.onnx" {
        op_type.to_string()
    } else {
        format!("{domain}::{op_type}")
    }
}

thread_local! {
    /// Set while [`guarded`] runs on this thread: the panic hook stays quiet.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    /// Where the last guarded panic happened.
    static PANIC_AT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f`, turning a panic into a failure that names its message and location.
///
/// Installs (once, process-wide) a panic hook that records the location of
/// panics inside `guarded` instead of printing them, and defers to the previous
/// hook for every other panic.
fn guarded(f: impl FnOnce() -> Outcome) -> Outcome {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()));
                PANIC_AT.with(|p| *p.borrow_mut() = at);
            } else {
                previous(info);
            }
        }));
    });
    GUARDED.with(|g| g.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(false));
    result.unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into());
        let at = PANIC_AT.with(|p| p.borrow_mut().take()).unwrap_or_default();
        Outcome::Failed {
            why: format!("panicked at {at}: {msg}"),
        }
    })
}

/// Runs `dirs` on `threads` worker threads; results in the order of `dirs`.
pub fn run_node_tests(dirs: &[PathBuf], threads: usize) -> Vec<NodeTest> {
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, NodeTest)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                std::thread::Builder::new()
                    .stack_size(16 << 20)
                    .spawn_scoped(s, || {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(dir) = dirs.get(i) else { break };
                            done.push((i, run_node_test(dir)));
                        }
                        done
                    })
            })
            .collect();
        workers
            .into_iter()
            .filter_map(|w| w.ok())
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    let mut out: Vec<NodeTest> = Vec::with_capacity(dirs.len());
    let mut it = results.into_iter().peekable();
    for (i, dir) in dirs.iter().enumerate() {
        match it.next_if(|(k, _)| *k == i) {
            Some((_, t)) => out.push(t),
            // A worker thread could not be spawned or died: run it here.
            None => out.push(run_node_test(dir)),
        }
    }
    out
}
