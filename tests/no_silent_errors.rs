//! Mistakes that once gave a wrong answer with exit code 0, or crashed: each is refused by
//! `vinf check` and by both engines (CAVI and SVI) with a located diagnostic, never a panic.

use std::process::{Command, Output};

fn vinf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vinf"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the vinf binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// `vinf check` and a fit by each engine exit 1 with the diagnostic `code`, located and with a
/// help line, and never panic.
fn refused_everywhere(model: &str, code: &str) {
    let runs: [&[&str]; 3] = [
        &["check", model],
        &[
            "fit",
            model,
            "--method",
            "cavi",
            "--steps",
            "5",
            "--out",
            "target/no_silent_errors",
        ],
        &[
            "fit",
            model,
            "--method",
            "svi",
            "--steps",
            "5",
            "--out",
            "target/no_silent_errors",
        ],
    ];
    for args in runs {
        let out = vinf(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(code), "{args:?}: expected {code} in {err}");
        assert!(err.contains("╭─["), "{args:?}: no location in {err}");
        assert!(err.contains("help:"), "{args:?}: no help in {err}");
        assert!(!err.contains("internal error"), "{args:?}: {err}");
    }
}

#[test]
fn integer_data_out_of_an_axis_is_refused_by_check_and_both_engines() {
    for model in [
        "tests/errors/index_data_above.vi",
        "tests/errors/index_data_negative.vi",
        "tests/errors/index_data_one_based.vi",
        "tests/errors/index_data_gather.vi",
    ] {
        refused_everywhere(model, "vi::index::data_out_of_range");
    }
}
