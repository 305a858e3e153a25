// Starts `vinf lsp` for .vi files. Install: `npm install` here, then link or package this
// folder (`npx @vscode/vsce package`); `vinf` must be on PATH or set in `vinf.path`.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("vinf").get("path") || "vinf";
  const server = { command, args: ["lsp"] };
  client = new LanguageClient(
    "vinf",
    "vinf language server",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "vi" }] }
  );
  context.subscriptions.push({ dispose: () => client && client.stop() });
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
