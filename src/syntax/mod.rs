//! Source text to syntax tree: the `logos` lexer, the `lalrpop` parser and the AST.
//!
//! Nothing here knows what a name means; the checker does that.

pub mod ast;
pub mod lexer;
pub mod parser;
mod span;

pub use parser::{parse_expr, parse_program};
pub use span::{Span, Spanned};

/// Run `f` with room for deep recursion: the recursive phases (checking, lowering, constant
/// folding, printing, evaluation) call this at each level, and when less than a red zone of
/// stack is left it continues on a fresh segment allocated on the heap. So an expression nested
/// 100,000 deep is as good as a shallow one, bounded by memory rather than by the thread's stack.
#[inline]
pub fn deep<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(128 * 1024, 4 * 1024 * 1024, f)
}

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
