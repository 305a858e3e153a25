//! `vinf lsp` driven by a client, as an editor would: initialize, open a broken model and
//! receive the diagnostic on the right line, fix it and see the diagnostics clear, then hover
//! (type, support and how the latent will be fitted), go to a definition, and complete.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use serde_json::{json, Value};

struct Client {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<Value>,
    next_id: i64,
}

impl Client {
    fn start() -> Client {
        Client::start_with(&[])
    }

    fn start_with(env: &[(&str, &str)]) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vinf"))
            .arg("lsp")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        len = v.parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                if tx.send(serde_json::from_slice(&body).unwrap()).is_err() {
                    return;
                }
            }
        });
        Client {
            child,
            stdin,
            rx,
            next_id: 1,
        }
    }

    fn send(&mut self, msg: Value) {
        let body = msg.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Send a request and wait for its response (skipping notifications).
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let m = self.rx.recv_timeout(Duration::from_secs(30)).expect("a response");
            if m["id"] == id {
                return m;
            }
        }
    }

    /// The next notification of `method`.
    fn notification(&mut self, method: &str) -> Value {
        loop {
            let m = self
                .rx
                .recv_timeout(Duration::from_secs(30))
                .expect("a notification");
            if m["method"] == method {
                return m["params"].clone();
            }
        }
    }
}

const URI: &str = "file:///tmp/vinf-lsp-test/model.vi";

fn position(text: &str, needle: &str) -> Value {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} in the text"));
    let line = text[..at].matches('\n').count();
    let col = at - text[..at].rfind('\n').map_or(0, |k| k + 1);
    json!({"line": line, "character": col + 1})
}

#[test]
fn an_editor_sees_diagnostics_hovers_definitions_and_completions() {
    let mut c = Client::start();
    let init = c.request(
        "initialize",
        json!({"processId": null, "rootUri": null, "capabilities": {}}),
    );
    assert!(init["result"]["capabilities"]["hoverProvider"] == true, "{init}");
    c.notify("initialized", json!({}));

    // A scale that can be negative: the error is on line 3 (0-based), at `mu`.
    let broken = "data y: real[N]\nmu ~ Normal(0, 1)\nfor i in 1..N {\n    y[i] ~ Normal(0, mu)\n}\n";
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": URI, "languageId": "vi", "version": 1, "text": broken}}),
    );
    let d = c.notification("textDocument/publishDiagnostics");
    let diags = d["diagnostics"].as_array().unwrap();
    let err = diags
        .iter()
        .find(|x| x["severity"] == 1)
        .unwrap_or_else(|| panic!("an error in {d}"));
    assert_eq!(err["range"]["start"]["line"], 3, "{err}");
    assert_eq!(err["range"]["start"]["character"], 21, "{err}");
    assert!(err["code"].as_str().unwrap().starts_with("vi::"), "{err}");
    assert!(err["message"].as_str().unwrap().contains("help:"), "{err}");

    let fixed = "data y: real[N]\nmu ~ Normal(0, 1)\nsigma ~ HalfNormal(1)\nfor i in 1..N {\n    y[i] ~ Normal(mu, sigma)\n}\n";
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 2}, "contentChanges": [{"text": fixed}]}),
    );
    let d = c.notification("textDocument/publishDiagnostics");
    assert!(
        d["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["severity"] != 1),
        "no errors once fixed: {d}"
    );

    let at = |needle: &str| json!({"textDocument": {"uri": URI}, "position": position(fixed, needle)});
    let hover = c.request("textDocument/hover", at("sigma)"));
    let text = hover["result"]["contents"]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("{hover}"));
    assert!(
        text.contains("latent") && text.contains("positive") && text.contains("HalfNormal"),
        "{text}"
    );
    assert!(text.contains("fitted by"), "{text}");
    let hover = c.request("textDocument/hover", at("Normal(mu"));
    let text = hover["result"]["contents"]["value"].as_str().unwrap();
    assert!(text.contains("Normal(loc, scale)"), "{text}");

    let def = c.request("textDocument/definition", at("mu, sigma"));
    assert_eq!(def["result"]["range"]["start"]["line"], 1, "{def}");
    let def = c.request("textDocument/definition", at("i] ~"));
    assert_eq!(def["result"]["range"]["start"]["line"], 3, "{def}");

    let comp = c.request("textDocument/completion", at("Normal(mu"));
    let labels: Vec<&str> = comp["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap())
        .collect();
    for want in ["Normal", "LKJCholesky", "softplus", "latent", "sigma"] {
        assert!(labels.contains(&want), "{want} missing from {labels:?}");
    }

    let bye = c.request("shutdown", Value::Null);
    assert!(bye["error"].is_null(), "{bye}");
    c.notify("exit", Value::Null);
    let status = c.child.wait().unwrap();
    assert!(status.success(), "{status}");
}

/// A bug in the checker (here a deliberate panic) is one diagnostic in the editor, and the
/// server goes on answering: it never exits under the editor.
#[test]
fn a_panic_in_the_checker_is_a_diagnostic_and_the_server_keeps_serving() {
    let mut c = Client::start_with(&[("VINF_FAILPOINT", "check")]);
    c.request(
        "initialize",
        json!({"processId": null, "rootUri": null, "capabilities": {}}),
    );
    c.notify("initialized", json!({}));
    let text = "mu ~ Normal(0, 1)\n";
    for version in 1..=2 {
        let method = if version == 1 {
            "textDocument/didOpen"
        } else {
            "textDocument/didChange"
        };
        c.notify(
            method,
            json!({"textDocument": {"uri": URI, "languageId": "vi", "version": version, "text": text},
                   "contentChanges": [{"text": text}]}),
        );
        let d = c.notification("textDocument/publishDiagnostics");
        let diags = d["diagnostics"].as_array().unwrap();
        assert!(
            diags
                .iter()
                .any(|x| x["code"] == "vi::internal" && x["severity"] == 1),
            "{d}"
        );
        let at = json!({"textDocument": {"uri": URI}, "position": {"line": 0, "character": 1}});
        let hover = c.request("textDocument/hover", at);
        assert!(hover["error"].is_null(), "{hover}");
    }
    let bye = c.request("shutdown", Value::Null);
    assert!(bye["error"].is_null(), "{bye}");
    c.notify("exit", Value::Null);
    assert!(c.child.wait().unwrap().success());
}

/// The editors' TextMate grammar names every distribution and function the checker knows, so
/// highlighting cannot fall behind the language.
#[test]
fn the_textmate_grammar_knows_the_language() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("editors/vscode/syntaxes/vi.tmLanguage.json");
    let g: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let words = |key: &str| -> Vec<String> {
        let m = g["repository"][key]["match"].as_str().unwrap();
        let inner = &m[m.find('(').unwrap() + 1..m.find(")\\b").unwrap()];
        inner.split('|').map(str::to_string).collect()
    };
    let (dists, funcs) = (words("distribution"), words("function"));
    for name in vi::dist::Family::names().filter(|n| *n != "target +=") {
        assert!(dists.iter().any(|d| d == name), "{name} is not highlighted");
    }
    for name in vi::check::function_names() {
        assert!(funcs.iter().any(|f| f == name), "{name}() is not highlighted");
    }
    let types = words("type");
    for t in [
        "real",
        "positive",
        "simplex",
        "ordered",
        "cholesky_factor_corr",
        "count",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} is not highlighted");
    }
}
