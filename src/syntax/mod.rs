//! Source text to syntax tree: the `logos` lexer, the `lalrpop` parser and the AST.
//!
//! Nothing here knows what a name means; the checker does that.

pub mod ast;
pub mod lexer;
pub mod parser;

pub use crate::span::{Span, Spanned};
pub use parser::{parse_expr, parse_program};
