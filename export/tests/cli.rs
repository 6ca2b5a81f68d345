//! The `tern` binary itself, as a user runs it. Building this test also makes
//! cargo build `target/debug/tern` with the test build's features, which
//! `cargo xtask targets` then runs for the host reference (no second build).

use std::process::Command;

fn tern(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(args)
        .output()
        .expect("the tern binary starts")
}

#[test]
fn help_lists_every_command() {
    let out = tern(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for command in [
        "train", "convert", "eval", "run", "bench", "inspect", "report", "compare",
    ] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(command)),
            "`tern --help` does not list `{command}`:\n{text}"
        );
    }
}

#[test]
fn missing_model_file_is_an_error_naming_it_not_a_panic() {
    let path = "/nonexistent/tern-cli-test/model.tern";
    let out = tern(&["inspect", path, "--backend", "loopback"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit status {:?}", out.status);
    assert!(
        stderr.contains(path),
        "stderr does not name the file: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
