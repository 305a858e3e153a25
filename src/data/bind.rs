//! Binding data to a model: every `--data` argument and every declaration's default `from`
//! file, read once each, and the declared names' arrays taken from them.
//!
//! It reads the syntax tree's `data` declarations (not the checked model: the checker needs the
//! bound shapes), and must never import `check`, `graph` or anything above them.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::{Binding, Columns, Contents, DataSet};
use crate::diag::{did_you_mean, Diagnostic, Diagnostics, Source};
use crate::syntax::ast::{self, Item};

/// Read every `--data` binding and default `from` file and take the declared names' arrays.
pub fn bind(
    program: &ast::Program,
    source: &Source,
    base: &Path,
    bindings: &[Binding],
    use_defaults: bool,
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
        let c = super::read_file(path);
        files.insert(path.to_path_buf(), c.as_ref().ok().cloned());
        c.map(Some)
    };
    let mut set = DataSet::default();
    let mut diags = Diagnostics::new();
    // Names whose `--data` binding failed: their `from` default is not tried on top of the error.
    let mut failed: HashSet<String> = HashSet::new();
    // Which argument bound each name: a second one is a mistake, not an override.
    let mut bound_by: HashMap<String, &Binding> = HashMap::new();
    for b in bindings {
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
                failed.extend(b.name.clone());
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
                    d = match did_you_mean(n, names.iter().copied()) {
                        Some(s) => d.help(format!("did you mean `{s}`? (`--data {s}=PATH`)")),
                        None => d.help(format!("its data names are: {}", list_or_none(&names))),
                    };
                    diags.push(d);
                    continue;
                }
                if let Some(d) = twice(&mut bound_by, n, b) {
                    diags.push(d);
                    continue;
                }
                match super::select(&contents, n, &b.columns, true) {
                    Ok(Some(a)) => set.insert(n.clone(), a),
                    Ok(None) => {}
                    Err(d) => {
                        diags.push(at_path(d));
                        failed.insert(n.clone());
                    }
                }
            }
            None => {
                let mut found = 0;
                for n in &names {
                    match super::select(&contents, n, &b.columns, false) {
                        Ok(Some(a)) => {
                            found += 1;
                            match twice(&mut bound_by, n, b) {
                                Some(d) => diags.push(d),
                                None => set.insert(n.to_string(), a),
                            }
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
    if use_defaults {
        for d in &decls {
            let Some(from) = &d.from else { continue };
            if set.get(&d.name.name).is_some() || failed.contains(&d.name.name) {
                continue;
            }
            let path = base.join(&from.value);
            let result = read(&path).and_then(|c| match c {
                Some(c) => super::select_from(&c, d, source),
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

/// Note that `b` binds `name`; a diagnostic naming both arguments when another already did.
fn twice<'a>(bound_by: &mut HashMap<String, &'a Binding>, name: &str, b: &'a Binding) -> Option<Diagnostic> {
    let Some(first) = bound_by.get(name) else {
        bound_by.insert(name.to_string(), b);
        return None;
    };
    let (arg_src, name_span, _) = b.source();
    Some(
        Diagnostic::new(
            "vi::data::bound_twice",
            format!(
                "`{name}` is bound twice: `--data {}` and `--data {}`",
                first.arg, b.arg
            ),
        )
        .primary(name_span, format!("`{name}` bound again here"))
        .with_source(&arg_src)
        .help(format!(
            "give one `--data` for `{name}` (the first was `--data {}`)",
            first.arg
        )),
    )
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}
