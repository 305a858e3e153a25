//! Diagnostics: every problem `vi` reports about a model or its data.
//!
//! One type, [`Diagnostic`], carries a stable code, a message, labelled spans into a source
//! (the model file, or a data file when the fault is in the data), and a help line. It implements
//! `miette::Diagnostic`, so the command line renders it with the source excerpt underlined.
//! Phases collect diagnostics into a [`Diagnostics`] list and report them together.

use std::fmt;
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceCode};

use crate::span::Span;

/// The source a diagnostic points into: a model file or a data file, with its name.
pub type Source = Arc<NamedSource<String>>;

/// Make a [`Source`] from a display name and its text.
pub fn source(name: impl AsRef<str>, text: impl Into<String>) -> Source {
    Arc::new(NamedSource::new(name, text.into()).with_language("vi"))
}

#[derive(Clone, Debug)]
pub struct Label {
    pub span: Span,
    pub text: String,
    pub primary: bool,
}

/// One problem, located in a source where it has a location.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    /// A stable identifier such as `vi::name::undefined`; tests and users can search for it.
    pub code: &'static str,
    pub message: String,
    pub labels: Vec<Label>,
    pub help: Option<String>,
    pub source: Option<Source>,
    /// A warning: reported, but the model is still checked, fitted and used.
    pub warning: bool,
}

impl Diagnostic {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: message.into(),
            labels: Vec::new(),
            help: None,
            source: None,
            warning: false,
        }
    }

    /// The main label: where the problem is.
    pub fn primary(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            text: text.into(),
            primary: true,
        });
        self
    }

    /// A secondary label: something that explains the problem (a declaration, the other side).
    pub fn secondary(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            text: text.into(),
            primary: false,
        });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_source(mut self, source: &Source) -> Self {
        if self.source.is_none() {
            self.source = Some(source.clone());
        }
        self
    }

    /// Mark as a warning.
    pub fn warning(mut self) -> Self {
        self.warning = true;
        self
    }

    /// The span of the primary label, if any.
    pub fn primary_span(&self) -> Option<Span> {
        self.labels.iter().find(|l| l.primary).map(|l| l.span)
    }

    /// Render without colour, as the snapshot tests and non-terminal output see it.
    pub fn render_plain(&self) -> String {
        render(self, GraphicalTheme::unicode_nocolor())
    }

    /// The diagnostic as one JSON object (`--message-format json`): its code, severity,
    /// message and help, the file it points into, and each label with its byte range and its
    /// 1-based line and column (columns count characters) at both ends.
    pub fn to_json(&self) -> serde_json::Value {
        let text = self.source.as_ref().map(|s| s.inner().as_str());
        let labels: Vec<serde_json::Value> = self
            .labels
            .iter()
            .map(|l| {
                let mut o = serde_json::json!({
                    "message": l.text,
                    "primary": l.primary,
                    "byte_start": l.span.start,
                    "byte_end": l.span.end,
                });
                if let Some(t) = text {
                    let (line, column) = line_column(t, l.span.start);
                    let (end_line, end_column) = line_column(t, l.span.end);
                    o["line"] = line.into();
                    o["column"] = column.into();
                    o["end_line"] = end_line.into();
                    o["end_column"] = end_column.into();
                }
                o
            })
            .collect();
        serde_json::json!({
            "code": self.code,
            "severity": if self.warning { "warning" } else { "error" },
            "message": self.message,
            "help": self.help,
            "file": self.source.as_ref().map(|s| s.name().to_string()),
            "labels": labels,
        })
    }
}

/// The 1-based line and character column of a byte offset into `text` (clamped to it).
pub fn line_column(text: &str, byte: usize) -> (usize, usize) {
    let mut at = byte.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |k| k + 1);
    (line, text[start..at].chars().count() + 1)
}

fn render(diag: &Diagnostic, theme: GraphicalTheme) -> String {
    let shortened = shorten_long_lines(diag);
    let diag = shortened.as_ref().unwrap_or(diag);
    let mut out = String::new();
    GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false)
        .render_report(&mut out, diag)
        .expect("writing to a String cannot fail");
    out
}

/// Lines longer than this are shown as excerpts around the labels.
const LONG_LINE: usize = 400;
/// How much of a long line is kept on each side of a label's ends.
const CONTEXT: usize = 60;

/// A copy of `d` whose source has every long line that a label touches cut down to the text
/// around the labels' ends (`…` marks what is left out), with the labels moved to match; `None`
/// when no label is on a long line. A generated model can put 100,000 terms on one line: shown
/// whole it would bury the message, and the renderer cannot pad to a column that far out.
fn shorten_long_lines(d: &Diagnostic) -> Option<Diagnostic> {
    let src = d.source.as_ref()?;
    let text = src.inner().as_str();
    let line_of = |at: usize| {
        let at = at.min(text.len());
        let start = text[..at].rfind('\n').map_or(0, |k| k + 1);
        let end = text[at..].find('\n').map_or(text.len(), |k| at + k);
        (start, end)
    };
    // The kept windows of each long line, by line start.
    let mut keep: std::collections::BTreeMap<usize, (usize, Vec<(usize, usize)>)> = Default::default();
    for l in &d.labels {
        for at in [l.span.start, l.span.end] {
            let (start, end) = line_of(at);
            if end - start <= LONG_LINE {
                continue;
            }
            let w = (at.saturating_sub(CONTEXT).max(start), (at + CONTEXT).min(end));
            keep.entry(start).or_insert((end, Vec::new())).1.push(w);
        }
    }
    if keep.is_empty() {
        return None;
    }
    let boundary = |mut k: usize, up: bool| {
        while !text.is_char_boundary(k) {
            if up {
                k += 1;
            } else {
                k -= 1;
            }
        }
        k
    };
    // Pieces of the original text that are kept, in order; `None` is a `…` for what is not.
    let mut pieces: Vec<Option<(usize, usize)>> = Vec::new();
    let mut at = 0;
    for (&start, (end, windows)) in &mut keep {
        windows.sort();
        pieces.push(Some((at, start)));
        let mut merged: Vec<(usize, usize)> = Vec::new();
        for &(a, b) in windows.iter() {
            let (a, b) = (boundary(a, false), boundary(b, true));
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        let mut cursor = start;
        for (a, b) in merged {
            if a > cursor {
                pieces.push(None);
            }
            pieces.push(Some((a, b)));
            cursor = b;
        }
        if cursor < *end {
            pieces.push(None);
        }
        at = *end;
    }
    pieces.push(Some((at, text.len())));
    let mut out = String::new();
    let mut map: Vec<(usize, usize, usize)> = Vec::new(); // (orig start, orig end, new start)
    for piece in pieces {
        let Some((a, b)) = piece else {
            out.push('…');
            continue;
        };
        map.push((a, b, out.len()));
        out.push_str(&text[a..b]);
    }
    let moved = |k: usize| {
        map.iter()
            .find(|(a, b, _)| k >= *a && k <= *b)
            .map_or(out.len(), |(a, _, n)| n + (k - a))
    };
    let mut short = d.clone();
    for l in &mut short.labels {
        l.span = Span::new(moved(l.span.start), moved(l.span.end).max(moved(l.span.start)));
    }
    short.source = Some(source(src.name(), out.clone()));
    Some(short)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(if self.warning {
            miette::Severity::Warning
        } else {
            miette::Severity::Error
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_deref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() || self.source.is_none() {
            return None;
        }
        Some(Box::new(self.labels.iter().map(|l| {
            let text = (!l.text.is_empty()).then(|| l.text.clone());
            if l.primary {
                LabeledSpan::new_primary_with_span(text, l.span)
            } else {
                LabeledSpan::new_with_span(text, l.span)
            }
        })))
    }
}

/// Several diagnostics from one phase, in the order they were found.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn new() -> Self {
        Diagnostics(Vec::new())
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    /// Attach `source` to every diagnostic that has none yet.
    pub fn with_source(self, source: &Source) -> Self {
        Diagnostics(self.0.into_iter().map(|d| d.with_source(source)).collect())
    }

    /// `Ok(value)` if nothing was reported.
    pub fn into_result<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    /// Render all, without colour, separated by blank lines.
    pub fn render_plain(&self) -> String {
        self.0
            .iter()
            .map(Diagnostic::render_plain)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Render all for a terminal (colour when `color` is set).
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        self.0
            .iter()
            .map(|d| render(d, theme.clone()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// What a caught panic said.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".into())
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "error[{}]: {}", d.code, d.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// A file that is not UTF-8: located at its first invalid byte (line and column, counted from
/// 1), shown in the file's text with the bad bytes replaced.
pub fn not_utf8(code: &'static str, name: &str, bytes: &[u8], what: &str) -> Diagnostic {
    let at = match std::str::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        Err(e) => e.valid_up_to(),
    };
    let before = String::from_utf8_lossy(&bytes[..at]);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let byte = bytes.get(at).copied().unwrap_or(0);
    let text = String::from_utf8_lossy(bytes).into_owned();
    // The first bad byte (or bytes) is one U+FFFD, 3 bytes long, right after the valid prefix.
    let span = Span::new(at, (at + 3).min(text.len()));
    Diagnostic::new(
        code,
        format!("`{name}` is not UTF-8 text: byte 0x{byte:02X} at line {line}, column {column}"),
    )
    .primary(span, format!("byte 0x{byte:02X} is not UTF-8"))
    .help(format!(
        "{what} must be UTF-8 text; re-save the file as UTF-8 (it may be Latin-1 or UTF-16), or remove the character"
    ))
    .with_source(&source(name, text))
}

/// Suggest the closest of `candidates` to `name` (edit distance at most a third of its length).
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (edit_distance(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edits between two names, a swap of neighbouring letters counting as one (`sigam` is one
/// from `sigma`: the commonest slip of the keyboard).
fn edit_distance(a: &str, b: &str) -> usize {
    strsim::osa_distance(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_names_only() {
        assert_eq!(did_you_mean("Normla", ["Normal", "Gamma"]), Some("Normal"));
        assert_eq!(did_you_mean("Foo", ["Normal", "Gamma"]), None);
        assert_eq!(did_you_mean("sigm", ["sigma", "mu"]), Some("sigma"));
        assert_eq!(did_you_mean("sigam", ["sigma", "mu"]), Some("sigma"));
        assert_eq!(did_you_mean("tua", ["tau", "mu"]), Some("tau"));
    }
}
