//! Aggregating node-test results per supported op: the coverage line and the
//! supported-ops table of `docs/ops.md`.

use std::fmt::Write as _;

use tern_export::convert::support::supported_ops;

use super::{ATOL, NodeTest, Outcome, RTOL};
/// Per-op counts over the node tests whose model contains the op.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// ONNX op type.
    pub op: &'static str,
    /// Tests whose model contains the op (any other ops included).
    pub tests: usize,
    /// Tests that ran as they are (only supported ops, not skipped).
    pub run: usize,
    /// Of those, passed.
    pub passed: usize,
    /// Of those, failed.
    pub failed: usize,
    /// Tests that ran with some graph inputs as constants (the second attempt).
    pub const_run: usize,
    /// Of those, passed.
    pub const_passed: usize,
    /// Of those, failed.
    pub const_failed: usize,
    /// Only supported ops, skipped as an unsupported variant.
    pub skipped: usize,
}

/// Results of a node-test run, per test and per supported op.
#[derive(Clone, Debug)]
pub struct Report {
    /// Every test, sorted by name.
    pub tests: Vec<NodeTest>,
    /// One entry per op of [`supported_ops`], in its order. A test counts for
    /// every op type its model contains (`_expanded` tests included).
    pub ops: Vec<OpCounts>,
}

impl Report {
    /// Aggregates `tests`.
    pub fn new(mut tests: Vec<NodeTest>) -> Report {
        tests.sort_by(|a, b| a.name.cmp(&b.name));
        let ops = supported_ops()
            .iter()
            .map(|s| {
                let mut c = OpCounts {
                    op: s.op,
                    ..OpCounts::default()
                };
                for t in tests.iter().filter(|t| t.ops.iter().any(|o| o == s.op)) {
                    c.tests += 1;
                    let constant = t.with_constant_inputs();
                    match (&t.outcome, constant) {
                        (Outcome::Passed { .. }, false) => {
                            c.run += 1;
                            c.passed += 1;
                        }
                        (Outcome::Failed { .. }, false) => {
                            c.run += 1;
                            c.failed += 1;
                        }
                        (Outcome::Passed { .. }, true) => {
                            c.const_run += 1;
                            c.const_passed += 1;
                        }
                        (Outcome::Failed { .. }, true) => {
                            c.const_run += 1;
                            c.const_failed += 1;
                        }
                        (Outcome::Skipped { .. }, _) => c.skipped += 1,
                        (Outcome::Unsupported { .. }, _) => {}
                    }
                }
                c
            })
            .collect();
        Report { tests, ops }
    }

    fn count(&self, constant: bool, f: impl Fn(&Outcome) -> bool) -> usize {
        self.tests
            .iter()
            .filter(|t| t.with_constant_inputs() == constant && f(&t.outcome))
            .count()
    }

    /// Tests that use only supported ops.
    pub fn eligible(&self) -> usize {
        self.tests.iter().filter(|t| t.eligible()).count()
    }

    /// Tests that ran as they are (passed or failed).
    pub fn run(&self) -> usize {
        self.passed() + self.failed()
    }

    /// Tests that passed as they are.
    pub fn passed(&self) -> usize {
        self.count(false, |o| matches!(o, Outcome::Passed { .. }))
    }

    /// Tests that failed as they are.
    pub fn failed(&self) -> usize {
        self.count(false, |o| matches!(o, Outcome::Failed { .. }))
    }

    /// Tests that ran with some graph inputs as constants (passed or failed).
    pub fn const_run(&self) -> usize {
        self.const_passed() + self.const_failed()
    }

    /// Tests that passed with some graph inputs as constants.
    pub fn const_passed(&self) -> usize {
        self.count(true, |o| matches!(o, Outcome::Passed { .. }))
    }

    /// Tests that failed with some graph inputs as constants.
    pub fn const_failed(&self) -> usize {
        self.count(true, |o| matches!(o, Outcome::Failed { .. }))
    }

    /// Tests skipped as unsupported variants of supported ops (in both attempts).
    pub fn skipped(&self) -> usize {
        self.tests
            .iter()
            .filter(|t| matches!(t.outcome, Outcome::Skipped { .. }))
            .count()
    }

    /// The failed tests, in either mode.
    pub fn failures(&self) -> impl Iterator<Item = &NodeTest> {
        self.tests
            .iter()
            .filter(|t| matches!(t.outcome, Outcome::Failed { .. }))
    }

    /// `ONNX node tests: N in the wheel, M use only supported ops: ...`.
    pub fn coverage_line(&self) -> String {
        format!(
            "ONNX node tests: {} in the wheel, {} use only supported ops: {} run, {} passed, \
             {} failed, {} skipped as unsupported variants; {} more run with their \
             weight/shape inputs as constants: {} passed, {} failed",
            self.tests.len(),
            self.eligible(),
            self.run(),
            self.passed(),
            self.failed(),
            self.skipped(),
            self.const_run(),
            self.const_passed(),
            self.const_failed()
        )
    }

    /// A plain-text per-op table for logs.
    pub fn ops_text(&self) -> String {
        let mut s = format!(
            "{:<20} {:>6} {:>6} {:>7} {:>7} {:>8} {:>9} {:>9}\n",
            "op", "tests", "run", "passed", "failed", "skipped", "const run", "const ok"
        );
        for c in &self.ops {
            let _ = writeln!(
                s,
                "{:<20} {:>6} {:>6} {:>7} {:>7} {:>8} {:>9} {:>9}",
                c.op, c.tests, c.run, c.passed, c.failed, c.skipped, c.const_run, c.const_passed
            );
        }
        s
    }
}

/// The supported-ops table of `docs/ops.md`: one row per op of
/// [`supported_ops`] with its node-test results, then the coverage line.
pub fn ops_markdown(report: &Report) -> String {
    let mut s = String::from(
        "| Op | int8 | Notes | Node tests passed/run (skipped) | With constant inputs passed/run |\n\
         |---|---|---|---|---|\n",
    );
    for sup in supported_ops() {
        let counts = report.ops.iter().find(|c| c.op == sup.op);
        let tests = match counts {
            Some(c) if c.run + c.skipped > 0 => {
                let mut t = format!("{}/{}", c.passed, c.run);
                if c.skipped > 0 {
                    let _ = write!(t, " ({})", c.skipped);
                }
                t
            }
            Some(c) if c.const_run > 0 => "0/0".to_string(),
            _ => "none".to_string(),
        };
        let constant = match counts {
            Some(c) if c.const_run > 0 => format!("{}/{}", c.const_passed, c.const_run),
            _ => "-".to_string(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            sup.op,
            sup.int8.label(),
            sup.notes.replace('|', "\\|"),
            tests,
            constant
        );
    }
    let _ = write!(
        s,
        "\n{}. A test counts for every op its model contains; float outputs match within \
         rtol {RTOL:e} + atol {ATOL:e}, integer and bool outputs exactly.\n",
        report.coverage_line()
    );
    s
}
