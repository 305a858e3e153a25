//! Parser glue: runs the `lalrpop` grammar over the token stream and turns its errors into
//! diagnostics with friendly names for what was expected.

use lalrpop_util::{ErrorRecovery, ParseError};

use crate::diag::{Diagnostic, Diagnostics};
use crate::syntax::ast::{BinOp, Expr, ExprKind, Program};
use crate::syntax::lexer::{tokenize, Token};
use crate::syntax::Span;

lalrpop_util::lalrpop_mod!(
    #[allow(clippy::all, clippy::pedantic, unused_parens, dead_code)]
    grammar,
    "/vi.rs"
);

/// Parse a whole model file. Reports every lexing problem, or else every syntax error.
pub fn parse_program(src: &str) -> Result<Program, Diagnostics> {
    let tokens = tokenize(src).map_err(Diagnostics)?;
    let mut recovered: Vec<ErrorRecovery<usize, Token, ()>> = Vec::new();
    let result = grammar::ProgramParser::new().parse(&mut recovered, tokens.into_iter().map(Ok::<_, ()>));
    let mut diags = Diagnostics::new();
    for e in recovered {
        diags.push(parse_error(src, e.error));
    }
    match result {
        Ok(program) => diags.into_result(program),
        Err(e) => {
            diags.push(parse_error(src, e));
            Err(diags)
        }
    }
}

/// Parse one expression (used by tests and by `--const NAME=EXPR` overrides).
pub fn parse_expr(src: &str) -> Result<Expr, Diagnostics> {
    let tokens = tokenize(src).map_err(Diagnostics)?;
    let mut recovered = Vec::new();
    grammar::ExprParser::new()
        .parse(&mut recovered, tokens.into_iter().map(Ok::<_, ()>))
        .map_err(|e| Diagnostics::from(parse_error(src, e)))
}

fn parse_error(src: &str, e: ParseError<usize, Token, ()>) -> Diagnostic {
    match e {
        ParseError::UnrecognizedToken {
            token: (l, tok, r),
            expected,
        } => {
            let span = if tok == Token::Sep && &src[l..r] == "\n" {
                // Point at the end of the line rather than at an invisible character.
                Span::new(l, l)
            } else {
                Span::new(l, r)
            };
            let message = format!("unexpected {tok}");
            // After a name the parser only lists `(` (the rest are reductions), which misleads.
            let label = match tok {
                Token::Eq if !expected.iter().any(|e| e == "\"=\"") => "`=` cannot appear here".to_string(),
                _ => expected_label(&expected),
            };
            let help = hint(&tok, &expected).unwrap_or_else(|| {
                if label.starts_with("expected an expression") {
                    "a value is missing here: a number, a name, a call or a parenthesised expression".into()
                } else {
                    format!("{label} here")
                }
            });
            Diagnostic::new("vi::parse::unexpected_token", message)
                .primary(span, label)
                .help(help)
        }
        ParseError::UnrecognizedEof { location, expected } => {
            let at = location.min(src.len());
            Diagnostic::new("vi::parse::unexpected_end", "unexpected end of file")
                .primary(Span::new(at, at), expected_label(&expected))
                .help("the last statement is incomplete")
        }
        ParseError::ExtraToken { token: (l, tok, r) } => {
            Diagnostic::new("vi::parse::unexpected_token", format!("unexpected {tok}"))
                .primary(Span::new(l, r), "nothing can follow here")
                .help("remove it, or start a new statement on a new line")
        }
        ParseError::InvalidToken { location } => Diagnostic::new("vi::parse::invalid_token", "invalid token")
            .primary(Span::new(location, location + 1), "here")
            .help("remove the character"),
        // Unreachable today: every token reaches the parser as `Ok` (the lexer reports its own
        // errors, with spans, first) and no grammar action fails. No location to give.
        ParseError::User { error: () } => Diagnostic::new("vi::parse::invalid_token", "invalid input")
            .help("check the file for stray characters"),
    }
}

/// A readable name for a terminal as `lalrpop` lists it (`"\"(\""`, `"\"ident\""`).
fn friendly(terminal: &str) -> String {
    let t = terminal.trim_matches('"');
    match t {
        "ident" => "a name".into(),
        "int" | "float" => "a number".into(),
        "string" => "a string".into(),
        "sep" => "end of line".into(),
        _ => format!("`{t}`"),
    }
}

fn expected_label(expected: &[String]) -> String {
    let mut names: Vec<String> = Vec::new();
    for e in expected {
        let f = friendly(e);
        if !names.contains(&f) {
            names.push(f);
        }
    }
    let starts_expr = ["a name", "a number", "`(`", "`-`", "`[`"]
        .iter()
        .all(|n| names.iter().any(|x| x == n));
    if starts_expr {
        names.retain(|n| {
            !["a name", "a number", "`(`", "`-`", "`[`", "`draw`", "a string"].contains(&n.as_str())
        });
        names.insert(0, "an expression".into());
    }
    match names.len() {
        0 => "not expected here".into(),
        1 => format!("expected {}", names[0]),
        n if n <= 6 => format!("expected {} or {}", names[..n - 1].join(", "), names[n - 1]),
        _ => format!("expected one of {}, …", names[..5].join(", ")),
    }
}

/// Advice for the mistakes people actually make.
fn hint(tok: &Token, expected: &[String]) -> Option<String> {
    let expects = |t: &str| expected.iter().any(|e| e.trim_matches('"') == t);
    match tok {
        Token::Eq if expects("~") => Some(
            "draw a random variable with `name ~ Dist(...)`; bind a value with `let name = ...`".into(),
        ),
        Token::Eq => Some(
            "draw a random variable with `name ~ Dist(...)`; bind a value with `let name = ...` or `const name = ...`".into(),
        ),
        Token::Sep if expects("~") => Some(
            "a statement is `name ~ Dist(...)`, `let name = ...`, `for i in 1..N { ... }` or a declaration".into(),
        ),
        Token::Sep => Some("the statement ends before it is complete".into()),
        Token::Ident(_) if expects("sep") => {
            Some("put each statement on its own line, or separate them with `;`".into())
        }
        Token::Int(_) | Token::Float(_) | Token::Ident(_) | Token::LParen if expects(",") => {
            Some("separate arguments and elements with `,`".into())
        }
        Token::DotDot => Some(
            "ranges only appear in `for i in 1..N` and `scan t in 2..N`; slices are written `x[a:b]`".into(),
        ),
        Token::EqEq | Token::NotEq | Token::Lt | Token::Le | Token::Gt | Token::Ge => Some(
            "comparisons do not chain: `0 < x < 1` is `(0 < x) * (x < 1)`, an indicator of both".into(),
        ),
        Token::Scan => Some(
            "a scan is the whole value of a model `let`: `let v = scan t in 2..T from FIRST { ... }`, then use `v`"
                .into(),
        ),
        Token::In if !expects("in") => Some("a loop is written `for i in 1..N { ... }`".into()),
        _ => None,
    }
}

// Helpers called from the grammar's actions.

pub(crate) fn bin(op: BinOp, a: Expr, b: Expr, l: usize, r: usize) -> Expr {
    Expr {
        kind: ExprKind::Binary(op, Box::new(a), Box::new(b)),
        span: Span::new(l, r),
    }
}

pub(crate) fn num(text: &str, is_int: bool, l: usize, r: usize) -> Expr {
    // The lexer only produces digit strings here, so parsing cannot fail; an integer too large
    // for i64 still parses as a float and the checker reports it where it matters.
    let value = text.parse::<f64>().unwrap_or(f64::INFINITY);
    Expr {
        kind: ExprKind::Num { value, is_int },
        span: Span::new(l, r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::ast::{Item, Stmt};

    #[test]
    fn parses_the_design_sketch() {
        let src = r#"
# mixture of K unit-variance Gaussians
data x: real[N]
const K = 3
const sigma = 3.16

mu ~ Normal(0, sigma) [K]
for i in 1..N {
    c[i] ~ Categorical(fill(1.0 / K, K))
    x[i] ~ Normal(mu[c[i]], 1)
}
"#;
        let p = parse_program(src).unwrap();
        assert_eq!(p.items.len(), 5);
        match &p.items[4] {
            Item::Stmt(Stmt::For(f)) => assert_eq!(f.body.stmts.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn precedence_is_conventional() {
        let e = parse_expr("-a^2 + b * c @ d").unwrap();
        let ExprKind::Binary(BinOp::Add, l, r) = &e.kind else {
            panic!()
        };
        assert!(matches!(l.kind, ExprKind::Neg(_)));
        assert!(matches!(r.kind, ExprKind::Binary(BinOp::MatMul, _, _)));
    }

    #[test]
    fn several_syntax_errors_are_reported_together() {
        let errs = parse_program("x ~ Normal(0 1)\ny = 3\nz ~ Normal(0, 1,, 2)\n").unwrap_err();
        assert!(errs.len() >= 2, "{}", errs.render_plain());
    }
}
