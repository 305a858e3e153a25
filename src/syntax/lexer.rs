//! The lexer: source text to tokens, by `logos`.
//!
//! Newlines end statements, but only where a statement could end: inside parentheses and
//! brackets, after an operator or a comma, and in runs of blank lines they are dropped, so a long
//! expression can span lines. [`Lexer`] does that filtering and feeds `lalrpop` spanned tokens.
//! Characters that start no token are reported together as diagnostics before parsing begins.

use std::fmt;

use logos::Logos;

use crate::diag::Diagnostic;
use crate::syntax::Span;

#[derive(Logos, Clone, Debug, PartialEq)]
#[logos(skip r"[ \t\r\f]+")]
#[logos(skip(r"#[^\n]*", allow_greedy = true))]
pub enum Token {
    #[token("data")]
    Data,
    #[token("const")]
    Const,
    #[token("param")]
    Param,
    #[token("latent")]
    Latent,
    #[token("net")]
    Net,
    #[token("let")]
    Let,
    #[token("for")]
    For,
    #[token("in")]
    In,
    #[token("batch")]
    Batch,
    #[token("guide")]
    Guide,
    #[token("fit")]
    Fit,
    #[token("term")]
    Term,
    #[token("objective")]
    Objective,
    #[regex("maximi[sz]e")]
    Maximise,
    #[regex("minimi[sz]e")]
    Minimise,
    #[token("from")]
    From,
    #[token("draw")]
    Draw,
    #[token("scan")]
    Scan,
    #[token("target")]
    Target,

    #[regex(r"[A-Za-z_][A-Za-z0-9_]*", |lex| lex.slice().to_string())]
    Ident(String),
    #[regex(r"[0-9]+", |lex| lex.slice().to_string(), priority = 3)]
    Int(String),
    #[regex(r"[0-9]+\.[0-9]+([eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+", |lex| lex.slice().to_string())]
    Float(String),
    #[regex(r#""[^"\n]*""#, |lex| { let s = lex.slice(); s[1..s.len() - 1].to_string() })]
    Str(String),

    #[token("~")]
    Tilde,
    #[token("=")]
    Eq,
    #[token("+")]
    Plus,
    #[token("+=")]
    PlusEq,
    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("^")]
    Caret,
    #[token("@")]
    At,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token("..")]
    DotDot,
    #[token("->")]
    Arrow,
    /// A statement separator: `;` or a significant newline.
    #[token(";")]
    #[token("\n")]
    Sep,
}

impl Token {
    /// After these a newline cannot end a statement, so it is dropped.
    fn continues_line(&self) -> bool {
        use Token::*;
        matches!(
            self,
            Tilde
                | Eq
                | Plus
                | PlusEq
                | EqEq
                | NotEq
                | Lt
                | Le
                | Gt
                | Ge
                | Minus
                | Star
                | Slash
                | Caret
                | At
                | LParen
                | LBracket
                | LBrace
                | Comma
                | Colon
                | DotDot
                | Arrow
                | Sep
        )
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Token::*;
        let s = match self {
            Data => "`data`",
            Const => "`const`",
            Param => "`param`",
            Latent => "`latent`",
            Net => "`net`",
            Let => "`let`",
            For => "`for`",
            In => "`in`",
            Batch => "`batch`",
            Guide => "`guide`",
            Fit => "`fit`",
            Term => "`term`",
            Objective => "`objective`",
            Maximise => "`maximise`",
            Minimise => "`minimise`",
            From => "`from`",
            Draw => "`draw`",
            Scan => "`scan`",
            Target => "`target`",
            PlusEq => "`+=`",
            EqEq => "`==`",
            NotEq => "`!=`",
            Lt => "`<`",
            Le => "`<=`",
            Gt => "`>`",
            Ge => "`>=`",
            Ident(s) => return write!(f, "name `{s}`"),
            Int(s) | Float(s) => return write!(f, "number `{s}`"),
            Str(s) => return write!(f, "string \"{s}\""),
            Tilde => "`~`",
            Eq => "`=`",
            Plus => "`+`",
            Minus => "`-`",
            Star => "`*`",
            Slash => "`/`",
            Caret => "`^`",
            At => "`@`",
            LParen => "`(`",
            RParen => "`)`",
            LBracket => "`[`",
            RBracket => "`]`",
            LBrace => "`{`",
            RBrace => "`}`",
            Comma => "`,`",
            Colon => "`:`",
            DotDot => "`..`",
            Arrow => "`->`",
            Sep => "end of line",
        };
        f.write_str(s)
    }
}

/// A spanned token as `lalrpop` consumes it.
pub type SpannedToken = (usize, Token, usize);

/// Tokenise `src`, dropping the newlines that cannot end a statement.
///
/// Returns every lexing problem at once; the parser only runs on a clean token stream.
pub fn tokenize(src: &str) -> Result<Vec<SpannedToken>, Vec<Diagnostic>> {
    let mut raw: Vec<SpannedToken> = Vec::new();
    let mut errors = Vec::new();
    let mut lex = Token::lexer(src);
    while let Some(tok) = lex.next() {
        let range = lex.span();
        match tok {
            Ok(t) => raw.push((range.start, t, range.end)),
            Err(()) => errors.push(lex_error(src, range.into())),
        }
    }
    let mut errors = merge_adjacent(errors);
    check_delimiters(&raw, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut out: Vec<SpannedToken> = Vec::with_capacity(raw.len());
    let mut depth: usize = 0;
    for (i, (l, tok, r)) in raw.iter().enumerate() {
        match tok {
            Token::LParen | Token::LBracket => depth += 1,
            Token::RParen | Token::RBracket => depth = depth.saturating_sub(1),
            _ => {}
        }
        if *tok == Token::Sep {
            let newline = &src[*l..*r] == "\n";
            let after_open = out
                .last()
                .is_none_or(|(_, p, _)| matches!(p, Token::Sep | Token::LBrace));
            let before_close = matches!(
                raw[i + 1..].iter().find(|(_, t, _)| *t != Token::Sep),
                None | Some((_, Token::RBrace, _))
            );
            let continued = out.last().is_some_and(|(_, p, _)| p.continues_line());
            if after_open || before_close || (newline && (depth > 0 || continued)) {
                continue;
            }
        }
        out.push((*l, tok.clone(), *r));
    }
    Ok(out)
}

fn lex_error(src: &str, span: Span) -> Diagnostic {
    let text = &src[span.start..span.end];
    let (message, help) = match text.chars().next() {
        Some('"') => (
            "unterminated string".to_string(),
            "close the string with `\"` on the same line".to_string(),
        ),
        Some('.') => (
            "unexpected `.`".to_string(),
            "write numbers with a digit before the point (`0.5`), and ranges as `1..N`".to_string(),
        ),
        Some(c) => (
            format!("unexpected character `{}`", c.escape_debug()),
            "names are letters, digits and `_`; comments start with `#`".to_string(),
        ),
        None => ("unexpected end of input".to_string(), String::new()),
    };
    let d = Diagnostic::new("vi::lex::unexpected_character", message).primary(span, "not part of any token");
    if help.is_empty() {
        d
    } else {
        d.help(help)
    }
}

/// Every `(`, `[` and `{` must be closed by its partner, so that an unclosed one is reported
/// where it opens rather than as a confusing error at the end of the file.
fn check_delimiters(tokens: &[SpannedToken], errors: &mut Vec<Diagnostic>) {
    let mut open: Vec<(Token, Span)> = Vec::new();
    for (l, tok, r) in tokens {
        let span = Span::new(*l, *r);
        let partner = match tok {
            Token::LParen | Token::LBracket | Token::LBrace => {
                open.push((tok.clone(), span));
                continue;
            }
            Token::RParen => Token::LParen,
            Token::RBracket => Token::LBracket,
            Token::RBrace => Token::LBrace,
            _ => continue,
        };
        match open.last() {
            Some((o, _)) if *o == partner => {
                open.pop();
            }
            Some((o, ospan)) => {
                errors.push(
                    Diagnostic::new("vi::lex::mismatched_delimiter", format!("mismatched {tok}"))
                        .primary(span, format!("this closes {o}"))
                        .secondary(*ospan, "opened here")
                        .help(format!("close {o} with its partner before {tok}")),
                );
                return;
            }
            None => {
                errors.push(
                    Diagnostic::new("vi::lex::unmatched_delimiter", format!("unmatched {tok}"))
                        .primary(span, "nothing here is open")
                        .help("remove it, or add the opening partner before it"),
                );
                return;
            }
        }
    }
    for (o, span) in open {
        errors.push(
            Diagnostic::new("vi::lex::unclosed_delimiter", format!("unclosed {o}"))
                .primary(span, "never closed")
                .help("add the closing partner where the group ends"),
        );
    }
}

/// Neighbouring bad characters (a run of them) become one diagnostic.
fn merge_adjacent(errors: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = Vec::new();
    for e in errors {
        if let (Some(last), Some(span)) = (out.last_mut(), e.primary_span()) {
            if let Some(prev) = last.labels.first_mut() {
                if prev.span.end == span.start && last.message == e.message {
                    prev.span = prev.span.to(span);
                    continue;
                }
            }
        }
        out.push(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Token> {
        tokenize(src).unwrap().into_iter().map(|(_, t, _)| t).collect()
    }

    #[test]
    fn ranges_do_not_lex_as_floats() {
        use Token::*;
        assert_eq!(
            kinds("for i in 1..N"),
            vec![
                For,
                Ident("i".into()),
                In,
                Int("1".into()),
                DotDot,
                Ident("N".into())
            ]
        );
        assert_eq!(kinds("1.5e-3"), vec![Float("1.5e-3".into())]);
    }

    #[test]
    fn newlines_separate_statements_only_where_they_can() {
        use Token::*;
        let toks = kinds("\n\nx ~ Normal(0,\n 1)\n\n# comment\ny ~ Normal(0, 1 +\n 2)\n");
        let seps = toks.iter().filter(|t| **t == Sep).count();
        assert_eq!(seps, 1, "{toks:?}");
    }

    #[test]
    fn bad_characters_are_reported_with_spans() {
        let errs = tokenize("x ~ Normal(0, 1) $$ y").unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].primary_span(), Some(Span::new(17, 19)));
    }
}
