//! `vinf lsp`: a language server over stdio (the Language Server Protocol, through
//! rust-analyzer's `lsp-server`). It checks each open `.vi` file on open and on every change
//! and publishes the checker's diagnostics; it answers hover (a name's type, shape, support and
//! how it will be fitted), go-to-definition and completion from `vi::editor`.
//!
//! Only the protocol lives here: positions (lines and UTF-16 columns) to byte offsets and back.

use std::collections::HashMap;
use std::error::Error;
use std::path::PathBuf;

use lsp_server::{Connection, Message, Notification, Request, RequestId, Response};
use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionOptions, Diagnostic, DiagnosticRelatedInformation,
    DiagnosticSeverity, DidChangeTextDocumentParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams,
    GotoDefinitionParams, Hover, HoverContents, HoverParams, HoverProviderCapability, Location,
    MarkupContent, MarkupKind, NumberOrString, OneOf, Position, PublishDiagnosticsParams, Range,
    ServerCapabilities, TextDocumentSyncCapability, TextDocumentSyncKind, Uri,
};

use vi::editor::{Analysis, CompletionKind};

/// Serve until the client shuts the server down.
pub fn serve() -> Result<(), Box<dyn Error + Sync + Send>> {
    let (conn, io) = Connection::stdio();
    let caps = ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions::default()),
        ..ServerCapabilities::default()
    };
    conn.initialize(serde_json::to_value(caps)?)?;
    let mut docs: HashMap<String, (Uri, Analysis)> = HashMap::new();
    for msg in &conn.receiver {
        match msg {
            Message::Request(req) => {
                if conn.handle_shutdown(&req)? {
                    break;
                }
                // A request whose answer panics gets an error response; the server goes on.
                let id = req.id.clone();
                let resp = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| answer(&docs, req)))
                    .unwrap_or_else(|panic| {
                        Response::new_err(
                            id,
                            lsp_server::ErrorCode::InternalError as i32,
                            format!("internal error in vi: {}", vi::diag::panic_message(&*panic)),
                        )
                    });
                conn.sender.send(Message::Response(resp))?;
            }
            Message::Notification(n) => {
                if let Some(uri) = update(&mut docs, n)? {
                    let diagnostics = docs
                        .get(uri.as_str())
                        .map_or_else(Vec::new, |(_, a)| diagnostics(a, &uri));
                    let params = PublishDiagnosticsParams {
                        uri,
                        diagnostics,
                        version: None,
                    };
                    conn.sender.send(Message::Notification(Notification::new(
                        "textDocument/publishDiagnostics".into(),
                        params,
                    )))?;
                }
            }
            Message::Response(_) => {}
        }
    }
    // The writer thread ends when the last sender goes.
    drop(conn);
    io.join()?;
    Ok(())
}

/// A file path from a `file://` URI (percent-escapes decoded).
fn path_of(uri: &Uri) -> PathBuf {
    let s = uri.as_str();
    let raw = s.strip_prefix("file://").unwrap_or(s);
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |k: usize| bytes.get(k).and_then(|b| (*b as char).to_digit(16));
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(a), Some(b)) => {
                out.push((a * 16 + b) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    PathBuf::from(String::from_utf8_lossy(&out).into_owned())
}

/// Apply an open, change or close; the document whose diagnostics changed.
fn update(
    docs: &mut HashMap<String, (Uri, Analysis)>,
    n: Notification,
) -> Result<Option<Uri>, Box<dyn Error + Sync + Send>> {
    Ok(match n.method.as_str() {
        "textDocument/didOpen" => {
            let p: DidOpenTextDocumentParams = serde_json::from_value(n.params)?;
            let uri = p.text_document.uri;
            let a = vi::editor::analyse(&path_of(&uri), &p.text_document.text);
            docs.insert(uri.as_str().to_string(), (uri.clone(), a));
            Some(uri)
        }
        "textDocument/didChange" => {
            let p: DidChangeTextDocumentParams = serde_json::from_value(n.params)?;
            let uri = p.text_document.uri;
            // Full synchronisation: the last change is the whole text.
            let Some(change) = p.content_changes.into_iter().last() else {
                return Ok(None);
            };
            let a = vi::editor::analyse(&path_of(&uri), &change.text);
            docs.insert(uri.as_str().to_string(), (uri.clone(), a));
            Some(uri)
        }
        "textDocument/didClose" => {
            let p: DidCloseTextDocumentParams = serde_json::from_value(n.params)?;
            docs.remove(p.text_document.uri.as_str());
            Some(p.text_document.uri)
        }
        _ => None,
    })
}

fn answer(docs: &HashMap<String, (Uri, Analysis)>, req: Request) -> Response {
    let id: RequestId = req.id.clone();
    let result = match req.method.as_str() {
        "textDocument/hover" => serde_json::from_value::<HoverParams>(req.params).map(|p| {
            let at = &p.text_document_position_params;
            let hover = docs.get(at.text_document.uri.as_str()).and_then(|(_, a)| {
                let offset = offset(&a.text, at.position);
                let (_, span) = a.word_at(offset)?;
                a.hover(offset).map(|md| Hover {
                    contents: HoverContents::Markup(MarkupContent {
                        kind: MarkupKind::Markdown,
                        value: md,
                    }),
                    range: Some(range(&a.text, span.start, span.end)),
                })
            });
            serde_json::to_value(hover)
        }),
        "textDocument/definition" => serde_json::from_value::<GotoDefinitionParams>(req.params).map(|p| {
            let at = &p.text_document_position_params;
            let loc = docs.get(at.text_document.uri.as_str()).and_then(|(uri, a)| {
                let d = a.definition(offset(&a.text, at.position))?;
                Some(Location {
                    uri: uri.clone(),
                    range: range(&a.text, d.span.start, d.span.end),
                })
            });
            serde_json::to_value(loc)
        }),
        "textDocument/completion" => {
            serde_json::from_value::<lsp_types::CompletionParams>(req.params).map(|p| {
                let uri = &p.text_document_position.text_document.uri;
                let items: Vec<CompletionItem> = docs
                    .get(uri.as_str())
                    .map(|(_, a)| a.completions())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| CompletionItem {
                        label: c.label,
                        detail: Some(c.detail),
                        kind: Some(match c.kind {
                            CompletionKind::Distribution => CompletionItemKind::CLASS,
                            CompletionKind::Function => CompletionItemKind::FUNCTION,
                            CompletionKind::Keyword => CompletionItemKind::KEYWORD,
                            CompletionKind::Name => CompletionItemKind::VARIABLE,
                        }),
                        ..CompletionItem::default()
                    })
                    .collect();
                serde_json::to_value(items)
            })
        }
        _ => {
            return Response::new_err(
                id,
                lsp_server::ErrorCode::MethodNotFound as i32,
                format!("{} is not served", req.method),
            );
        }
    };
    match result.and_then(|v| v) {
        Ok(v) => Response::new_ok(id, v),
        Err(e) => Response::new_err(id, lsp_server::ErrorCode::InvalidParams as i32, e.to_string()),
    }
}

/// The checker's diagnostics as LSP diagnostics: the primary label's range when the fault is
/// in this file (a fault in a data file is shown at the file's start, naming it), the help
/// line under the message, and secondary labels as related information.
fn diagnostics(a: &Analysis, uri: &Uri) -> Vec<Diagnostic> {
    let here = path_of(uri).display().to_string();
    a.diagnostics
        .iter()
        .map(|d| {
            let in_file = d.source.as_ref().is_none_or(|s| s.name() == here);
            let primary = d.primary_span().filter(|_| in_file);
            let r = primary.map_or(range(&a.text, 0, 0), |s| range(&a.text, s.start, s.end));
            let mut message = d.message.clone();
            if !in_file {
                if let Some(s) = &d.source {
                    message = format!("{message} (in {})", s.name());
                }
            }
            if let Some(h) = &d.help {
                message = format!("{message}\nhelp: {h}");
            }
            let related: Vec<DiagnosticRelatedInformation> = d
                .labels
                .iter()
                .filter(|l| in_file && !l.primary)
                .map(|l| DiagnosticRelatedInformation {
                    location: Location {
                        uri: uri.clone(),
                        range: range(&a.text, l.span.start, l.span.end),
                    },
                    message: l.text.clone(),
                })
                .collect();
            Diagnostic {
                range: r,
                severity: Some(if d.warning {
                    DiagnosticSeverity::WARNING
                } else {
                    DiagnosticSeverity::ERROR
                }),
                code: Some(NumberOrString::String(d.code.to_string())),
                source: Some("vinf".into()),
                message,
                related_information: (!related.is_empty()).then_some(related),
                ..Diagnostic::default()
            }
        })
        .collect()
}

/// The LSP position (0-based line, UTF-16 column) of a byte offset.
fn position(text: &str, byte: usize) -> Position {
    let mut at = byte.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count();
    let start = before.rfind('\n').map_or(0, |k| k + 1);
    let character = text[start..at].encode_utf16().count();
    Position::new(line as u32, character as u32)
}

fn range(text: &str, start: usize, end: usize) -> Range {
    Range::new(position(text, start), position(text, end))
}

/// The byte offset of an LSP position (clamped to its line).
fn offset(text: &str, p: Position) -> usize {
    let mut start = 0;
    for _ in 0..p.line {
        match text[start..].find('\n') {
            Some(k) => start += k + 1,
            None => return text.len(),
        }
    }
    let line_end = text[start..].find('\n').map_or(text.len(), |k| start + k);
    let mut units = 0;
    for (k, c) in text[start..line_end].char_indices() {
        if units >= p.character as usize {
            return start + k;
        }
        units += c.len_utf16();
    }
    line_end
}
