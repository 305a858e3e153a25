//! Every example model checks and lowers, with its embedded data and without any data (its
//! dimensions then stay symbolic); the summary and the graph are snapshot.

use std::path::Path;
use std::process::{Command, Stdio};

use vi::LoadOptions;

fn rel(path: &Path) -> &Path {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(path)
}

/// Whether every `data` declaration names a default file.
fn has_default_data(path: &Path) -> bool {
    let loaded = vi::load(
        rel(path),
        &LoadOptions {
            use_defaults: false,
            ..LoadOptions::default()
        },
    )
    .unwrap_or_else(|d| panic!("{}:\n{}", path.display(), d.render_plain()));
    loaded.model.data.iter().all(|d| d.from.is_some())
}

#[test]
fn every_model_checks_and_lowers_with_its_data() {
    insta::glob!("../models", "*.vi", |path| {
        if !has_default_data(path) {
            // Its data are not bundled (vae_frey.vi): checked without data below.
            return;
        }
        let loaded = vi::load(
            rel(path),
            &LoadOptions {
                require_data: true,
                ..LoadOptions::default()
            },
        )
        .unwrap_or_else(|d| panic!("{}:\n{}", path.display(), d.render_plain()));
        let summary = vi::report::model_summary(&loaded.model, &loaded.data);
        let graph = vi::graph::to_text(&loaded.model);
        insta::assert_snapshot!(format!("{summary}\n{graph}"));
    });
}

#[test]
fn every_model_checks_without_data() {
    insta::glob!("../models", "*.vi", |path| {
        let opts = LoadOptions {
            use_defaults: false,
            ..LoadOptions::default()
        };
        let loaded = vi::load(rel(path), &opts)
            .unwrap_or_else(|d| panic!("{}:\n{}", path.display(), d.render_plain()));
        assert!(loaded.data.arrays.is_empty());
        // Without data, data dimensions are symbolic: no data shape has a value.
        for d in &loaded.model.data {
            assert!(
                d.shape.iter().any(|dim| dim.value().is_none()),
                "{}: {} is bound",
                path.display(),
                d.name
            );
        }
    });
}

#[test]
fn every_model_renders_with_graphviz() {
    let have_dot = Command::new("dot")
        .arg("-V")
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !have_dot {
        eprintln!("graphviz `dot` not installed: DOT output checked for shape only");
    }
    insta::glob!("../models", "*.vi", |path| {
        let loaded = vi::load(rel(path), &LoadOptions::default()).unwrap();
        let dot = vi::graph::to_dot(&loaded.model);
        assert!(dot.starts_with("digraph") && dot.trim_end().ends_with('}'));
        if have_dot {
            let mut child = Command::new("dot")
                .arg("-Tsvg")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child.stdin.take().unwrap().write_all(dot.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}: dot failed: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
        }
    });
}
