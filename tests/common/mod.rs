//! What the integration tests share: loading models (with their data required) and reading a
//! fit's tensors. Each test binary uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use vi::infer::FitOutput;
use vi::{LoadOptions, Loaded};

/// The repository's `models/` folder, against which model texts' `from` paths are read.
pub fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

/// A model file with its default data and these `--data` bindings.
pub fn load_with(path: &str, data: &[&str]) -> Loaded {
    let opts = LoadOptions {
        bindings: data
            .iter()
            .map(|d| vi::data::Binding::parse(d).unwrap())
            .collect(),
        require_data: true,
        ..LoadOptions::default()
    };
    vi::load(Path::new(path), &opts).unwrap_or_else(|d| panic!("{path}:\n{}", d.render_plain()))
}

/// A model file with its default data.
pub fn load(path: &str) -> Loaded {
    load_with(path, &[])
}

/// Model text, its `from` paths read against `models/`.
pub fn load_text(text: &str) -> Loaded {
    let opts = LoadOptions {
        require_data: true,
        ..LoadOptions::default()
    };
    vi::load_str("test", "test.vi", text, &models(), &opts).unwrap_or_else(|d| panic!("{}", d.render_plain()))
}

/// A fitted tensor's values by name.
pub fn tensor<'a>(out: &'a FitOutput, name: &str) -> &'a [f64] {
    &out.state
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tensor {name}"))
        .values
}

/// Fit at the model's own settings; a failure panics with the rendered diagnostic.
pub fn fit(loaded: &Loaded) -> FitOutput {
    let opts = vi::infer::FitOptions::from_settings(&loaded.model.settings, &loaded.model);
    vi::infer::fit(loaded, &opts, &mut |_| {}).unwrap_or_else(|d| panic!("{}", d.render_plain()))
}

/// A latent's or derived quantity's summary by name.
pub fn summary<'a>(out: &'a FitOutput, name: &str) -> &'a vi::infer::LatentSummary {
    out.latents
        .iter()
        .chain(&out.derived)
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no `{name}` in the fit"))
}
