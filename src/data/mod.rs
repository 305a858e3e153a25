//! Data: reading arrays from files and binding them to a model's `data` declarations.
//!
//! Readers ([`csv`], [`npy`], [`idx`], [`mat`]) turn a file into a [`Table`] or an [`Array`], reporting
//! faults as diagnostics that name the file and, for text, point at the row and column.
//! [`DataSet`] holds the arrays bound to data names; the checker validates them against the
//! declarations (shapes, supports).

pub mod bind;
pub mod csv;
pub mod idx;
pub mod mat;
pub mod npy;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::diag::Diagnostic;

/// A numeric array in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
    /// Where it came from, for messages: `data/gmm.csv, column x`.
    pub origin: String,
    /// The file held bytes 0..=255 (IDX images, uint8 .npy); bound to `unit` data they are
    /// divided by 255.
    pub bytes: bool,
    /// For text files: the line of the file each row (first axis) came from.
    pub lines: Vec<usize>,
}

impl Array {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// What a value of this array is multiplied by when bound to data over `domain`: bytes
    /// (0..=255, IDX images, uint8 .npy) bound to `unit` data are grey levels, v / 255.
    pub fn unit_factor(&self, domain: crate::dist::Domain) -> f64 {
        if self.bytes && domain == crate::dist::Domain::Unit {
            1.0 / 255.0
        } else {
            1.0
        }
    }
}

/// Where element `k` of a row-major array of `shape` lies, in words: `row 4, column 6`
/// (counting from 1, as the other data messages do), with the zero-based index for programs.
pub fn position_words(shape: &[usize], k: usize) -> String {
    let mut index = vec![0; shape.len()];
    let mut rest = k;
    for (a, &n) in shape.iter().enumerate().rev() {
        index[a] = rest % n.max(1);
        rest /= n.max(1);
    }
    let zero_based: Vec<String> = index.iter().map(usize::to_string).collect();
    match index.as_slice() {
        [] => "the only value".to_string(),
        [r] => format!("row {} (index {r})", r + 1),
        [r, c] => format!("row {}, column {} (index [{r}, {c}])", r + 1, c + 1),
        _ => format!("index [{}]", zero_based.join(", ")),
    }
}

/// NaN and infinities are not data: the first one, by its place in the array, is an error.
pub(crate) fn all_finite(values: &[f64], shape: &[usize], what: &str) -> Result<(), Diagnostic> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(k) => Err(Diagnostic::new(
            "vi::data::not_finite",
            format!("{} of {what} is {}", position_words(shape, k), values[k]),
        )
        .help("NaN and infinite values are not data")),
        None => Ok(()),
    }
}

/// The arrays bound to a model's data names.
#[derive(Clone, Debug, Default)]
pub struct DataSet {
    pub arrays: BTreeMap<String, Array>,
}

impl DataSet {
    pub fn get(&self, name: &str) -> Option<&Array> {
        self.arrays.get(name)
    }

    pub fn insert(&mut self, name: impl Into<String>, array: Array) {
        self.arrays.insert(name.into(), array);
    }
}

/// A file's contents: a table with named columns (CSV) or an unnamed array (IDX, .npy).
#[derive(Clone, Debug)]
pub enum Contents {
    Table(csv::Table),
    Array(Array),
}

/// Read any supported file, choosing the reader by its name (`.csv`, `.npy`, IDX by its magic
/// number; `.gz` for gzip either way).
pub fn read_file(path: &Path) -> Result<Contents, Diagnostic> {
    read_file_as(path, &path.to_string_lossy())
}

/// [`read_file`], with messages (and the arrays' `origin`) naming the file `name` rather than
/// its path: a temporary file holding an array the user gave another way is named as they gave it.
pub fn read_file_as(path: &Path, name: &str) -> Result<Contents, Diagnostic> {
    let bytes = read_bytes_as(path, name)?;
    let lower = path.to_string_lossy().to_lowercase();
    let stem = lower.strip_suffix(".gz").unwrap_or(&lower);
    if stem.ends_with(".npy") {
        return npy::parse(&bytes, name).map(Contents::Array);
    }
    if idx::looks_like_idx(&bytes) || stem.contains("-ubyte") || stem.ends_with(".idx") {
        return idx::parse(&bytes, name).map(Contents::Array);
    }
    if mat::looks_like_mat(&bytes) || stem.ends_with(".mat") {
        return mat::parse(&bytes, name).map(Contents::Array);
    }
    if stem.ends_with(".amat") {
        return csv::parse_whitespace_matrix(&bytes, name).map(Contents::Array);
    }
    csv::parse(&bytes, name).map(Contents::Table)
}

/// The bytes of a file, gunzipped when it is gzip (by its magic number).
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    read_bytes_as(path, &path.display().to_string())
}

/// [`read_bytes`], with messages naming the file `name`.
fn read_bytes_as(path: &Path, name: &str) -> Result<Vec<u8>, Diagnostic> {
    let unreadable = |e: std::io::Error| {
        Diagnostic::new("vi::data::unreadable", format!("cannot read data file `{name}`")).help(
            match e.kind() {
                std::io::ErrorKind::NotFound => "no file at that path; paths in `--data` are relative to the current directory, paths in `from` to the model file".to_string(),
                _ => e.to_string(),
            },
        )
    };
    let room = crate::limits::available_bytes();
    let size = std::fs::metadata(path).map_err(unreadable)?.len();
    fits_in_memory(name, size, room)?;
    let raw = std::fs::read(path).map_err(unreadable)?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    if raw.len() >= 18 {
        // gzip's trailer holds the unpacked size (mod 2^32).
        let n = u32::from_le_bytes(raw[raw.len() - 4..].try_into().expect("4 bytes"));
        fits_in_memory(name, u64::from(n), room)?;
    }
    // A gzip bomb must not take the machine: stop where the room ends.
    let cap = room.map_or(u64::MAX / 2, |r| r / TEXT_FACTOR);
    let mut out = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(GzDecoder::new(&raw[..]), cap + 1),
        &mut out,
    )
    .map_err(|e| {
        Diagnostic::new("vi::data::bad_gzip", format!("`{name}` is not valid gzip"))
            .help(format!("the file starts like gzip but does not decompress: {e}"))
    })?;
    if out.len() as u64 > cap {
        fits_in_memory(name, u64::MAX / TEXT_FACTOR, room)?;
    }
    Ok(out)
}

/// Reading turns each byte of text into up to 8 bytes of f64 (4 on average with separators),
/// held beside the text.
const TEXT_FACTOR: u64 = 5;

/// Refuse a file of `bytes` (unpacked) that could not be read into the memory there is.
fn fits_in_memory(name: &str, bytes: u64, room: Option<u64>) -> Result<(), Diagnostic> {
    let need = bytes.saturating_mul(TEXT_FACTOR);
    match room {
        Some(room) if need > room => Err(Diagnostic::new(
            "vi::data::too_large",
            format!(
                "reading `{name}` would need {} of memory; {} is available",
                if bytes >= u64::MAX / TEXT_FACTOR {
                    "more".to_string()
                } else {
                    format!("about {}", crate::limits::human(need as f64))
                },
                crate::limits::human(room as f64)
            ),
        )
        .help(format!(
            "fit a sample of its rows, or on a machine with more memory; if the estimate is wrong, set {}=none",
            crate::limits::ENV
        ))),
        _ => Ok(()),
    }
}

/// Which columns of a table to take.
#[derive(Clone, Debug, PartialEq)]
pub enum Columns {
    /// A column named like the data, or columns `name0, name1, ...`, or else the whole table.
    Auto,
    /// These columns, in this order.
    Named(Vec<String>),
}

/// One `--data` argument: `NAME=PATH[:COLUMNS]` binds one name; a bare `PATH` binds every
/// declared name the file has a column (or numbered columns) for.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    /// The argument as written, for diagnostics that point into it.
    pub arg: String,
    pub name: Option<String>,
    pub path: PathBuf,
    pub columns: Columns,
    /// What diagnostics call a binding that no `--data` argument made (the Python module's
    /// `data=` keyword makes `data['y']`); `None` for an argument, shown as typed.
    pub label: Option<String>,
    /// The file only carries an array given another way (a temporary .npy of a numpy array):
    /// messages about its contents name it by the label, never by its path.
    pub stand_in: bool,
}

impl Binding {
    /// Parse the text of a `--data` argument.
    pub fn parse(arg: &str) -> Result<Binding, String> {
        let (name, rest) = match arg.split_once('=') {
            Some((n, r)) if is_name(n) => (Some(n.to_string()), r),
            Some((n, _)) => return Err(format!("`{n}` is not a data name (letters, digits and `_`)")),
            None => (None, arg),
        };
        if rest.is_empty() {
            return Err("missing the file path after `=`".into());
        }
        // `path:cols` — but not a Windows drive letter or a path that merely contains `:`.
        let (path, columns) = match rest.rsplit_once(':') {
            Some((p, cols)) if !p.is_empty() && !cols.contains('/') && !cols.is_empty() => (
                p,
                Columns::Named(cols.split(',').map(|c| c.trim().to_string()).collect()),
            ),
            _ => (rest, Columns::Auto),
        };
        Ok(Binding {
            arg: arg.to_string(),
            name,
            path: PathBuf::from(path),
            columns,
            label: None,
            stand_in: false,
        })
    }

    /// A binding of `name` to the file at `path` made by a program rather than typed: its
    /// diagnostics name it `label` and show no command line; a `stand_in` file's contents are
    /// named by the label too.
    pub fn labelled(name: &str, path: impl Into<PathBuf>, label: &str, stand_in: bool) -> Binding {
        let path = path.into();
        Binding {
            arg: format!("{name}={}", path.display()),
            name: Some(name.to_string()),
            path,
            columns: Columns::Auto,
            label: Some(label.to_string()),
            stand_in,
        }
    }

    /// How messages name this binding: its label, or `` `--data ARG` ``.
    pub fn describe(&self) -> String {
        match &self.label {
            Some(l) => l.clone(),
            None => format!("`--data {}`", self.arg),
        }
    }

    /// What messages call the file's contents: the label of a stand-in, else the path.
    pub fn file_name(&self) -> String {
        match &self.label {
            Some(l) if self.stand_in => l.clone(),
            _ => self.path.to_string_lossy().into_owned(),
        }
    }

    /// The argument as a diagnostic source (`--data NAME=PATH`), and the spans of its name
    /// and path within it; `None` for a labelled binding, which no command line gave.
    pub fn source(&self) -> Option<(crate::diag::Source, crate::syntax::Span, crate::syntax::Span)> {
        if self.label.is_some() {
            return None;
        }
        let text = format!("--data {}", self.arg);
        let start = "--data ".len();
        let (name, path) = match self.arg.split_once('=') {
            Some((n, _)) if self.name.is_some() => (
                crate::syntax::Span::new(start, start + n.len()),
                crate::syntax::Span::new(start + n.len() + 1, text.len()),
            ),
            _ => (
                crate::syntax::Span::new(start, text.len()),
                crate::syntax::Span::new(start, text.len()),
            ),
        };
        Some((crate::diag::source("command line", text), name, path))
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Take the array for `name` out of a file's contents.
///
/// `explicit` is true when the user named this file for this name: then a table with no
/// matching column is taken whole. Returns `Ok(None)` when the file has nothing for the name.
pub fn select(
    contents: &Contents,
    name: &str,
    columns: &Columns,
    explicit: bool,
) -> Result<Option<Array>, Diagnostic> {
    match contents {
        Contents::Array(a) => Ok(Some(a.clone())),
        Contents::Table(t) => match columns {
            Columns::Named(cols) => t.columns_named(cols).map(Some),
            Columns::Auto => {
                if let Some(a) = t.column_named(name) {
                    return Ok(Some(a));
                }
                if let Some(a) = t.numbered_columns(name) {
                    return Ok(Some(a));
                }
                if explicit {
                    return t.whole().map(Some);
                }
                Ok(None)
            }
        },
    }
}

/// Take the array for a declaration from its default file (`from "file"`, with an optional
/// `column "y"` / `columns "a,b"` clause).
///
/// Unlike an explicit `--data NAME=PATH`, a table with a header must have what the declaration
/// names: a column called like the data, numbered columns `name0, name1, ...`, or the columns
/// the clause picks. Anything else is an error that lists the file's columns, for taking the
/// whole table (or the wrong column) would give a wrong answer without a word. Diagnostics
/// point into the model (`source`).
pub fn select_from(
    contents: &Contents,
    decl: &crate::syntax::ast::DataDecl,
    source: &crate::diag::Source,
) -> Result<Option<Array>, Diagnostic> {
    let name = &decl.name.name;
    let from = decl.from.as_ref().map_or(decl.span, |f| f.span);
    let table = match contents {
        Contents::Table(t) => t,
        Contents::Array(a) => {
            if let Some(c) = &decl.columns {
                return Err(Diagnostic::new(
                    "vi::data::no_column",
                    format!("{} is an array, not a table with columns", a.origin),
                )
                .primary(c.value.span, "columns of a table")
                .secondary(from, "not a CSV table")
                .help("only CSV tables have columns to pick; drop the `column` clause")
                .with_source(source));
            }
            return Ok(Some(a.clone()));
        }
    };
    if let Some(c) = &decl.columns {
        let spec: Vec<String> = c.value.value.split(',').map(|x| x.trim().to_string()).collect();
        return match table.columns_named(&spec) {
            Ok(a) => Ok(Some(a)),
            Err(d) => Err(d
                .primary(c.value.span, "no such column")
                .secondary(from, "in this file")
                .with_source(source)),
        };
    }
    if let Some(a) = table.column_named(name) {
        return Ok(Some(a));
    }
    if let Some(a) = table.numbered_columns(name) {
        return Ok(Some(a));
    }
    if table.headerless {
        return table.whole().map(Some);
    }
    let file = decl.from.as_ref().map_or("the file", |f| f.value.as_str());
    let mut d = Diagnostic::new(
        "vi::data::no_column",
        format!("`{}` has no column `{name}`", table.path),
    )
    .primary(from, format!("no column `{name}` here"))
    .secondary(decl.name.span, "named after a column");
    let cols = csv::preview(&table.columns);
    d = match crate::diag::did_you_mean(name, table.columns.iter().map(String::as_str)) {
        Some(s) => d.help(format!(
            "its columns are {cols}; did you mean `{s}`? Pick it with `from \"{file}\" column \"{s}\"`, or rename the data `{s}`"
        )),
        None => d.help(format!(
            "its columns are {cols}; pick one with `from \"{file}\" column \"NAME\"`, several with `columns \"a,b\"` (or a range of positions, `columns \"0..3\"`)"
        )),
    };
    Err(d.with_source(source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_arguments_parse() {
        let b = Binding::parse("x=data/gmm.csv").unwrap();
        assert_eq!(b.name.as_deref(), Some("x"));
        assert_eq!(b.path, PathBuf::from("data/gmm.csv"));
        assert_eq!(b.columns, Columns::Auto);
        let b = Binding::parse("X=w.csv:x0,x1").unwrap();
        assert_eq!(b.columns, Columns::Named(vec!["x0".into(), "x1".into()]));
        let b = Binding::parse("../shared/w.csv").unwrap();
        assert_eq!(b.name, None);
        assert!(Binding::parse("1x=a.csv").is_err());
        assert!(Binding::parse("x=").is_err());
    }
}
