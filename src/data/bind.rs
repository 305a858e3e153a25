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
    let mut read = |path: &Path, name: &str| -> Result<Option<Contents>, Diagnostic> {
        if let Some(c) = files.get(path) {
            return Ok(c.clone());
        }
        let c = super::read_file_as(path, name);
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
        let arg = b.source();
        // Faults of the file as a whole point at its path in the argument (a labelled binding
        // has no argument to point into: its messages name the file as the user gave it).
        let at_path = |d: Diagnostic| match &arg {
            Some((arg_src, _, path_span)) if d.source.is_none() => {
                d.primary(*path_span, "this file").with_source(arg_src)
            }
            _ => d,
        };
        let contents = match read(&b.path, &b.file_name()) {
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
                    );
                    d = match &arg {
                        Some((arg_src, name_span, _)) => d
                            .primary(*name_span, "not a data name of the model")
                            .with_source(arg_src),
                        None => d,
                    };
                    d = match did_you_mean(n, names.iter().copied()) {
                        Some(s) if arg.is_some() => {
                            d.help(format!("did you mean `{s}`? (`--data {s}=PATH`)"))
                        }
                        Some(s) => d.help(format!("did you mean `{s}`?")),
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
            let result = read(&path, &path.to_string_lossy()).and_then(|c| match c {
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
    let d = Diagnostic::new(
        "vi::data::bound_twice",
        format!(
            "`{name}` is bound twice: {} and {}",
            first.describe(),
            b.describe()
        ),
    );
    Some(match b.source() {
        Some((arg_src, name_span, _)) => d
            .primary(name_span, format!("`{name}` bound again here"))
            .with_source(&arg_src)
            .help(format!(
                "give one `--data` for `{name}` (the first was {})",
                first.describe()
            )),
        None => d.help(format!("bind `{name}` once (the first was {})", first.describe())),
    })
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian f64 .npy file of `shape`.
    fn npy(shape: &[usize], values: &[f64]) -> Vec<u8> {
        let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
        let tuple = if dims.len() == 1 {
            format!("({},)", dims[0])
        } else {
            format!("({})", dims.join(", "))
        };
        let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {tuple}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.bytes());
        for v in values {
            out.extend(v.to_le_bytes());
        }
        out
    }

    /// Load `model` with `y` bound, as the Python module binds an array, to a temporary .npy
    /// labelled `data['y']`: the rendered diagnostics, which must not name the temporary file.
    fn labelled_error(model: &str, shape: &[usize], values: &[f64]) -> String {
        let dir = std::env::temp_dir().join(format!("vi-labelled-{}-{}", std::process::id(), values.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("0.npy");
        std::fs::write(&file, npy(shape, values)).unwrap();
        let opts = crate::LoadOptions {
            bindings: vec![Binding::labelled("y", &file, "data['y']", true)],
            use_defaults: true,
            require_data: true,
        };
        let result = crate::load_str("model", "<model text>", model, Path::new(""), &opts);
        std::fs::remove_dir_all(&dir).unwrap();
        let Err(diags) = result else {
            panic!("the model loaded");
        };
        let text = diags.render(false);
        assert!(
            !text.contains(&*dir.to_string_lossy()),
            "names the temporary file:\n{text}"
        );
        assert!(!text.contains("0.npy"), "{text}");
        assert!(!text.contains("command line"), "{text}");
        text
    }

    #[test]
    fn a_labelled_array_is_named_by_its_label() {
        let model =
            "data y: positive[N]\nmu ~ Normal(0, 1)\nfor i in 1..N {\n    y[i] ~ LogNormal(mu, 1)\n}\n";
        let text = labelled_error(model, &[3], &[1.0, f64::NAN, 2.0]);
        assert!(text.contains("row 2 (index 1) of `data['y']` is NaN"), "{text}");
        assert!(!text.contains("--data"), "{text}");
        let text = labelled_error(model, &[3, 2], &[1.0; 6]);
        assert!(text.contains("data['y']") && text.contains("[3, 2]"), "{text}");
        let text = labelled_error(model, &[2], &[1.0, -1.0]);
        assert!(text.contains("comes from data['y']"), "{text}");
        let undeclared = "data x: real[N]\nmu ~ Normal(0, 1)\nfor i in 1..N {\n    x[i] ~ Normal(mu, 1)\n}\n";
        let text = labelled_error(undeclared, &[2], &[1.0, 2.0]);
        assert!(text.contains("the model declares no data `y`"), "{text}");
        assert!(!text.contains("--data"), "{text}");
        // A file given by path keeps its path in messages about its contents.
        let b = Binding::labelled("y", "data/y.csv", "data['y']", false);
        assert_eq!(b.file_name(), "data/y.csv");
        assert!(b.source().is_none());
        assert_eq!(b.describe(), "data['y']");
    }
}
