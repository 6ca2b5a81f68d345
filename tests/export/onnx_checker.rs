//! `onnx.checker` (the reference validator, from the `onnx` Python wheel) accepts
//! every model Tern writes. The wheel lives in the project's `.venv`, which this
//! test creates when missing; without `python3` the check is skipped, loudly.

use std::path::Path;
use std::process::Command;

use tern_export::models::ModelKind;

use tern_tests::{fixture, workspace_root};

const WHEEL: &str = "onnx==1.22.0";

fn python_with_onnx() -> Option<std::path::PathBuf> {
    let has_python = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_python {
        return None;
    }
    let venv = workspace_root().join(".venv");
    let python = venv.join("bin/python");
    let ready = |p: &Path| {
        Command::new(p)
            .args(["-c", "import onnx"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ready(&python) {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    WHEEL,
                ])
                .status()
                .is_ok_and(|s| s.success());
        assert!(ok, "could not install {WHEEL} into {}", venv.display());
    }
    Some(python)
}

#[test]
fn onnx_checker_accepts_every_fixture() {
    let Some(python) = python_with_onnx() else {
        eprintln!("SKIPPED: no python3 on this machine, onnx.checker not run");
        return;
    };
    let script = "import sys, onnx\n\
                  for p in sys.argv[1:]:\n    \
                      m = onnx.load(p)\n    \
                      onnx.checker.check_model(m, full_check=True)\n    \
                      print('ok', p, 'opset', m.opset_import[0].version)";
    let mut cmd = Command::new(python);
    cmd.args(["-c", script]);
    for kind in ModelKind::ALL {
        cmd.arg(fixture(kind));
    }
    let out = cmd.output().expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "onnx.checker failed:\n{stdout}\n{stderr}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        ModelKind::ALL.len(),
        "{stdout}"
    );
}
