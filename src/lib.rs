//! `vi`: a probabilistic programming language for variational inference.
//!
//! The pipeline, one module a phase: [`syntax`] (lex, parse) → [`check`] (names, types,
//! supports, shapes; elaborates into the [`graph`] IR) → inference engines → [`report`].
//! Every problem a user can cause is a [`diag::Diagnostic`] pointing at its source.
//!
//! [`load`] runs the front end on a model file and binds its data:
//!
//! ```no_run
//! let opts = vi::LoadOptions::default();
//! let loaded = vi::load(std::path::Path::new("models/gmm.vi"), &opts).unwrap();
//! println!("{}", vi::report::model_summary(&loaded.model, &loaded.data));
//! ```

pub mod backend;
pub mod check;
pub mod data;
pub mod diag;
pub mod dist;
pub mod editor;
#[doc(hidden)]
pub mod fuzzing;
pub mod graph;
pub mod infer;
pub mod interpret;
pub mod limits;
pub mod linalg;
pub mod report;
pub mod settings;
pub mod span;
pub mod special;
pub mod store;
pub mod syntax;
pub mod transform;

use std::path::Path;

use data::{Binding, DataSet};
use diag::{Diagnostic, Diagnostics};
use graph::Model;

/// How to load a model.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// `--data` arguments, in order; later ones win.
    pub bindings: Vec<Binding>,
    /// Read each `data ... from "file"` that no binding covers.
    pub use_defaults: bool,
    /// Every declared data name must end up bound (fitting needs it; checking does not).
    pub require_data: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            bindings: Vec::new(),
            use_defaults: true,
            require_data: false,
        }
    }
}

/// A checked model and the data bound to it.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub model: Model,
    pub data: DataSet,
}

/// Read, parse and check a model file, binding its data.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Loaded, Diagnostics> {
    let text = syntax::read_source(path)?;
    let name = path
        .file_stem()
        .map_or_else(|| "model".to_string(), |s| s.to_string_lossy().to_string());
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    load_str(&name, &path.display().to_string(), &text, &base, opts)
}

/// Parse and check model text; `base` is the folder `from` paths are relative to.
pub fn load_str(
    name: &str,
    display: &str,
    text: &str,
    base: &Path,
    opts: &LoadOptions,
) -> Result<Loaded, Diagnostics> {
    // A deliberate bug, for the tests that prove no panic reaches a user or kills the language
    // server.
    if std::env::var_os("VINF_FAILPOINT").is_some_and(|v| v == "check") {
        panic!("failpoint `check` (VINF_FAILPOINT is set)");
    }
    let source = diag::source(display, text.to_string());
    let program = syntax::parse_program(text).map_err(|d| d.with_source(&source))?;
    let data = data::bind::bind(&program, &source, base, &opts.bindings, opts.use_defaults)?;
    let model = check::check(&program, &source, name, &data)?;
    if opts.require_data {
        let mut diags = Diagnostics::new();
        for d in &model.data {
            if data.get(&d.name).is_none() {
                diags.push(
                    Diagnostic::new("vi::data::missing", format!("no data for `{}`", d.name))
                        .primary(d.span, "declared here, never given")
                        .help(format!(
                            "pass `--data {}=PATH`, or add `from \"file.csv\"` to the declaration",
                            d.name
                        ))
                        .with_source(&source),
                );
            }
        }
        diags.into_result(())?;
    }
    Ok(Loaded { model, data })
}
