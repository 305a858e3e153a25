//! Source text to syntax tree: the `logos` lexer, the `lalrpop` parser and the AST.
//!
//! Nothing here knows what a name means; the checker does that.

pub mod ast;
pub mod lexer;
pub mod parser;

pub use crate::span::{Span, Spanned};
pub use parser::{parse_expr, parse_program};

/// Read a model file as text. A file that cannot be read, or is not UTF-8 (located at its first
/// invalid byte), is a diagnostic.
pub fn read_source(path: &std::path::Path) -> Result<String, crate::diag::Diagnostics> {
    use crate::diag::Diagnostic;
    let bytes = std::fs::read(path).map_err(|e| {
        Diagnostic::new(
            "vi::io::model",
            format!("cannot read model file `{}`", path.display()),
        )
        .help(match e.kind() {
            std::io::ErrorKind::NotFound => "no file at that path".to_string(),
            _ => e.to_string(),
        })
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(e) => Err(crate::diag::not_utf8(
            "vi::io::not_utf8",
            &path.display().to_string(),
            e.as_bytes(),
            "a model file",
        )
        .into()),
    }
}
