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
