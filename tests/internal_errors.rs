//! A bug in vi (here a deliberate panic, `VINF_FAILPOINT=check`) reaches the user as one
//! diagnostic, in the format asked for, with exit code 101: never a backtrace, and never
//! silence where a tool reads JSON.

use std::process::Command;

fn check(format: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vinf"))
        .args(["check", "models/gmm.vi", "--message-format", format])
        .env("VINF_FAILPOINT", "check")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

#[test]
fn an_internal_error_is_json_when_json_is_asked_for() {
    let r = check("json");
    assert_eq!(r.status.code(), Some(101));
    let err = String::from_utf8_lossy(&r.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one JSON object and nothing else: {err}");
    let d: serde_json::Value = serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {err}"));
    assert_eq!(d["code"], "vi::internal", "{d}");
    assert!(d["message"].as_str().unwrap().contains("failpoint"), "{d}");
}

#[test]
fn an_internal_error_is_a_diagnostic_for_people() {
    let r = check("human");
    assert_eq!(r.status.code(), Some(101));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("vi::internal") && err.contains("internal error in vi"),
        "{err}"
    );
    assert!(err.contains("please report it"), "{err}");
    assert!(
        !err.contains("stack backtrace") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}
