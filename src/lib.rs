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

pub mod check;
pub mod data;
pub mod diag;
pub mod dist;
#[doc(hidden)]
pub mod fuzzing;
pub mod graph;
pub mod limits;
pub mod linalg;
pub mod report;
pub mod settings;
pub mod span;
pub mod special;
pub mod store;
pub mod syntax;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use data::{Binding, Columns, Contents, DataSet};
use diag::{Diagnostic, Diagnostics, Source};
use graph::Model;
use syntax::ast::{self, Item};

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
    let source = diag::source(display, text.to_string());
    let program = syntax::parse_program(text).map_err(|d| d.with_source(&source))?;
    let data = bind_data(&program, &source, base, opts)?;
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

/// Read every `--data` binding and default `from` file and take the declared names' arrays.
fn bind_data(
    program: &ast::Program,
    source: &Source,
    base: &Path,
    opts: &LoadOptions,
) -> Result<DataSet, Diagnostics> {
    let decls: Vec<&ast::DataDecl> = program
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Data(d) => Some(d),
            _ => None,
        })
        .collect();
    let names: Vec<&str> = decls.iter().map(|d| d.name.name.as_str()).collect();
    // Each file is read once; a file that fails is reported once, however many names use it.
    let mut files: HashMap<PathBuf, Option<Contents>> = HashMap::new();
    let mut read = |path: &Path| -> Result<Option<Contents>, Diagnostic> {
        if let Some(c) = files.get(path) {
            return Ok(c.clone());
        }
        let c = data::read_file(path);
        files.insert(path.to_path_buf(), c.as_ref().ok().cloned());
        c.map(Some)
    };
    let mut set = DataSet::default();
    let mut diags = Diagnostics::new();
    for b in &opts.bindings {
        let (arg_src, name_span, path_span) = b.source();
        // Faults of the file as a whole point at its path in the argument.
        let at_path = |d: Diagnostic| {
            if d.source.is_some() {
                d
            } else {
                d.primary(path_span, "this file").with_source(&arg_src)
            }
        };
        let contents = match read(&b.path) {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(d) => {
                diags.push(at_path(d));
                continue;
            }
        };
        match &b.name {
            Some(n) => {
                if !names.contains(&n.as_str()) {
                    let mut d = Diagnostic::new(
                        "vi::data::undeclared",
                        format!("the model declares no data `{n}`"),
                    )
                    .primary(name_span, "not a data name of the model")
                    .with_source(&arg_src);
                    d = match diag::did_you_mean(n, names.iter().copied()) {
                        Some(s) => d.help(format!("did you mean `{s}`? (`--data {s}=PATH`)")),
                        None => d.help(format!("its data names are: {}", list_or_none(&names))),
                    };
                    diags.push(d);
                    continue;
                }
                match data::select(&contents, n, &b.columns, true) {
                    Ok(Some(a)) => set.insert(n.clone(), a),
                    Ok(None) => {}
                    Err(d) => diags.push(at_path(d)),
                }
            }
            None => {
                let mut found = 0;
                for n in &names {
                    match data::select(&contents, n, &b.columns, false) {
                        Ok(Some(a)) => {
                            set.insert(n.to_string(), a);
                            found += 1;
                        }
                        Ok(None) => {}
                        Err(d) => diags.push(at_path(d)),
                    }
                }
                if found == 0 && b.columns == Columns::Auto {
                    diags.push(at_path(
                        Diagnostic::new(
                            "vi::data::no_match",
                            format!("`{}` has nothing for the model's data ({})", b.path.display(), list_or_none(&names)),
                        )
                        .help("name the columns after the data (`x`, or `x0, x1, ...` for a matrix), or bind explicitly: `--data NAME=PATH`"),
                    ));
                }
            }
        }
    }
    if opts.use_defaults {
        for d in &decls {
            let Some(from) = &d.from else { continue };
            if set.get(&d.name.name).is_some() {
                continue;
            }
            let path = base.join(&from.value);
            let result = read(&path).and_then(|c| match c {
                Some(c) => data::select_from(&c, d, source),
                None => Ok(None),
            });
            match result {
                Ok(Some(a)) => set.insert(d.name.name.clone(), a),
                Ok(None) => {}
                // A fault inside the file points into the file; one with the file as a whole
                // points at the `from` that named it.
                Err(e) if e.source.is_some() => diags.push(e),
                Err(e) => diags.push(
                    e.primary(from.span, format!("reading {}", path.display()))
                        .with_source(source),
                ),
            }
        }
    }
    diags.into_result(set)
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}
pub mod backend;
pub mod infer;
pub mod transform;
