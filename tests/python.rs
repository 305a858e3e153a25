//! The Python module (`python/`, built with maturin) under pytest. `.ci/run` makes the venv:
//! it installs maturin, numpy, pandas, arviz, matplotlib, pytest and zarr, runs
//! `pip install ./python`, and points `VINF_PYTHON` at that interpreter. Without `VINF_PYTHON`
//! (a machine where only Rust was set up) this test says it is skipped. `VINF_BIN` gives pytest
//! the command line built here, for the ArviZ round trips of `vinf sample --format cmdstan|zarr`.

use std::process::Command;

#[test]
fn the_python_module_passes_its_tests() {
    let Ok(python) = std::env::var("VINF_PYTHON") else {
        eprintln!("skipped: VINF_PYTHON is not set (see .ci/run for the venv it names)");
        return;
    };
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(&python)
        .args(["-m", "pytest", "-q", "python/tests"])
        .env("VINF_BIN", env!("CARGO_BIN_EXE_vinf"))
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pytest failed:\n{text}");
    eprintln!("{}", text.lines().last().unwrap_or(""));
}
