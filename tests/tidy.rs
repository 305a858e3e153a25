//! ARCHITECTURE.md's "Invariants a reviewer can check", as tests that fail when one is broken
//! (issue 35). The rooms and what each must never import are read from ARCHITECTURE.md's room
//! table itself, so the table and this test are one fact.
//!
//! The checks read `src/` as text: comments and literals are blanked first (so doc comments
//! and strings never count), then `#[cfg(test)]` items. Every `use` path and every inline path
//! (`crate::…`, `super::…`, `self::…`, `vi::…` in the binary, a child module's or an imported
//! name's `…::…`) is resolved through the module tree, following re-exports (`pub use`, plain
//! `use` that children read through `super::`, and globs) to the file that defines the item:
//! that is an arrow from file to file. A room's rule holds for everything its files reach by
//! arrows, not only their first step: `check` reaching `backend` through `dist::cdf` breaks
//! `check`'s row.
//!
//! `VI_TIDY_ROOT` points the checks at another copy of the repository (to see one fail on a
//! copy broken on purpose without touching the checkout).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 1200;
const MAX_CLI_LINES: usize = 400;

/// Command-line files over [`MAX_CLI_LINES`] today, each with the most lines it may have
/// (issue 35): an entry may only shrink, and goes once the file is within the limit.
const CLI_OVER_LIMIT: &[(&str, usize)] = &[("src/cli/mod.rs", 410)];

fn root() -> PathBuf {
    std::env::var_os("VI_TIDY_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

// ---------------------------------------------------------------------------------------------
// Sources

/// One file of `src/`.
struct Source {
    /// `src/check/truncate.rs`.
    path: String,
    text: String,
    /// The text with comments and literals blanked (lines and columns kept).
    code: String,
    /// `code` with `#[cfg(test)]` items blanked as well.
    live: String,
}

fn sources() -> Vec<Source> {
    let root = root();
    let mut files = Vec::new();
    walk(&root.join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = fs::read_to_string(&p).unwrap();
            let code = blank_comments_and_literals(&text);
            let live = blank_test_items(&code);
            let path = p
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            Source {
                path,
                text,
                code,
                live,
            }
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Comments, strings and character literals replaced by spaces (newlines kept).
fn blank_comments_and_literals(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = c.clone();
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for ch in &mut out[from..to.min(c.len())] {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
    };
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            let end = (i..c.len()).find(|&j| c[j] == '\n').unwrap_or(c.len());
            blank(&mut out, i, end);
            i = end;
        } else if c[i] == '/' && next == Some('*') {
            let (mut depth, mut j) = (1, i + 2);
            while j < c.len() && depth > 0 {
                if c[j] == '/' && c.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if c[j] == '*' && c.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if c[i] == 'r' && (next == Some('"') || next == Some('#')) && (i == 0 || !is_ident(c[i - 1])) {
            // A raw string r"…" or r#"…"# (or the raw identifier r#name, left alone).
            let mut j = i + 1;
            while c.get(j) == Some(&'#') {
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                i += 1;
                continue;
            }
            let hashes = j - i - 1;
            let mut k = j + 1;
            while k < c.len() && !(c[k] == '"' && (1..=hashes).all(|h| c.get(k + h) == Some(&'#'))) {
                k += 1;
            }
            blank(&mut out, i, k + 1 + hashes);
            i = k + 1 + hashes;
        } else if c[i] == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                j += if c[j] == '\\' { 2 } else { 1 };
            }
            blank(&mut out, i, j + 1);
            i = j + 1;
        } else if c[i] == '\'' {
            // A character literal ('x', '\n', '\u{..}'); otherwise a lifetime.
            if next == Some('\\') {
                let end = (i + 2..c.len()).find(|&j| c[j] == '\'').unwrap_or(c.len());
                blank(&mut out, i, end + 1);
                i = end + 1;
            } else if c.get(i + 2) == Some(&'\'') {
                blank(&mut out, i, i + 3);
                i += 3;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out.into_iter().collect()
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Each `#[cfg(test)]` item (a `mod tests { … }`, a function, a `use …;`) blanked.
fn blank_test_items(code: &str) -> String {
    let mut c: Vec<char> = code.chars().collect();
    let pat: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut i = 0;
    while i + pat.len() <= c.len() {
        if c[i..i + pat.len()] != pat[..] {
            i += 1;
            continue;
        }
        let mut j = i + pat.len();
        while j < c.len() && c[j] != '{' && c[j] != ';' {
            j += 1;
        }
        if j < c.len() && c[j] == '{' {
            let mut depth = 0;
            while j < c.len() {
                match c[j] {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        for ch in &mut c[i..(j + 1).min(code.chars().count())] {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
        i = j + 1;
    }
    c.into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// Tokens, `use` trees and paths

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Path,
    Punct(char),
}

/// Identifiers, `::` and single punctuation, each with its line (from 1).
fn tokens(code: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = code.chars().collect();
    let (mut out, mut line, mut i) = (Vec::new(), 1, 0);
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if is_ident(ch) {
            let start = i;
            while i < c.len() && is_ident(c[i]) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            // A raw identifier r#name is the name.
            if word == "r" && c.get(i) == Some(&'#') && c.get(i + 1).is_some_and(|&x| is_ident(x)) {
                continue;
            }
            out.push((Tok::Ident(word), line));
        } else if ch == ':' && c.get(i + 1) == Some(&':') {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

/// One name a `use` brings in: `use a::b::{c as d, e::*}` gives `d` → a::b::c and the glob
/// a::b::e.
#[derive(Clone, Debug)]
struct Import {
    /// The name bound, `None` for a glob.
    name: Option<String>,
    path: Vec<String>,
    line: usize,
}

/// Where each `use` statement is (token ranges) and the names they bring in.
fn imports(toks: &[(Tok, usize)]) -> (Vec<Import>, Vec<(usize, usize)>) {
    let (mut out, mut spans) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < toks.len() {
        let is_use = toks[i].0 == Tok::Ident("use".into())
            && (i == 0 || !matches!(toks[i - 1].0, Tok::Path | Tok::Punct('.')));
        if !is_use {
            i += 1;
            continue;
        }
        let end = (i..toks.len())
            .find(|&j| toks[j].0 == Tok::Punct(';'))
            .unwrap_or(toks.len());
        let mut k = i + 1;
        use_tree(&toks[..end], &mut k, &mut Vec::new(), &mut out);
        spans.push((i, end));
        i = end;
    }
    (out, spans)
}

fn use_tree(toks: &[(Tok, usize)], k: &mut usize, prefix: &mut Vec<String>, out: &mut Vec<Import>) {
    let depth = prefix.len();
    if toks.get(*k).map(|t| &t.0) == Some(&Tok::Path) {
        *k += 1; // `use ::std::…`
    }
    loop {
        match toks.get(*k) {
            Some((Tok::Ident(w), line)) => {
                let line = *line;
                *k += 1;
                if toks.get(*k).map(|t| &t.0) == Some(&Tok::Path) {
                    prefix.push(w.clone());
                    *k += 1;
                    continue;
                }
                let (path, mut name) = if w == "self" {
                    (prefix.clone(), prefix.last().cloned())
                } else {
                    let mut p = prefix.clone();
                    p.push(w.clone());
                    (p, Some(w.clone()))
                };
                if toks.get(*k).map(|t| &t.0) == Some(&Tok::Ident("as".into())) {
                    if let Some((Tok::Ident(alias), _)) = toks.get(*k + 1) {
                        name = Some(alias.clone());
                    }
                    *k += 2;
                }
                out.push(Import { name, path, line });
            }
            Some((Tok::Punct('*'), line)) => {
                out.push(Import {
                    name: None,
                    path: prefix.clone(),
                    line: *line,
                });
                *k += 1;
            }
            Some((Tok::Punct('{'), _)) => {
                *k += 1;
                loop {
                    use_tree(toks, k, prefix, out);
                    match toks.get(*k).map(|t| &t.0) {
                        Some(Tok::Punct(',')) => *k += 1,
                        _ => break,
                    }
                    if toks.get(*k).map(|t| &t.0) == Some(&Tok::Punct('}')) {
                        break;
                    }
                }
                *k += 1; // the `}`
            }
            _ => {}
        }
        break;
    }
    prefix.truncate(depth);
}

/// Every path `a::b::…` outside `use` statements, with its line.
fn inline_paths(toks: &[(Tok, usize)], uses: &[(usize, usize)]) -> Vec<(Vec<String>, usize)> {
    let in_use = |i: usize| uses.iter().any(|&(a, b)| a <= i && i <= b);
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let starts = matches!(toks[i].0, Tok::Ident(_))
            && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Path)
            && (i == 0 || toks[i - 1].0 != Tok::Path)
            && !in_use(i);
        if !starts {
            i += 1;
            continue;
        }
        let mut path = Vec::new();
        let line = toks[i].1;
        while let Some((Tok::Ident(w), _)) = toks.get(i) {
            path.push(w.clone());
            if toks.get(i + 1).map(|t| &t.0) != Some(&Tok::Path) {
                break;
            }
            i += 2;
        }
        out.push((path, line));
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The module tree and the arrows between files

/// What one file declares and imports.
struct Module {
    /// `["vi", "check", "truncate"]`; the binary's root is `["vinf"]`.
    name: Vec<String>,
    imports: Vec<Import>,
    inline: Vec<(Vec<String>, usize)>,
    /// Names of the items the file defines (fn, struct, enum, …).
    defines: BTreeSet<String>,
}

struct Crate {
    files: Vec<Source>,
    modules: Vec<Module>,
    by_name: BTreeMap<Vec<String>, usize>,
}

const ITEM_WORDS: &[&str] = &[
    "fn",
    "struct",
    "enum",
    "trait",
    "type",
    "const",
    "static",
    "union",
    "macro_rules",
];

impl Crate {
    fn load() -> Crate {
        let files = sources();
        let main = files
            .iter()
            .find(|f| f.path == "src/main.rs")
            .expect("src/main.rs");
        let toks = tokens(&main.live);
        let binary: BTreeSet<String> = toks
            .windows(3)
            .filter(|w| w[0].0 == Tok::Ident("mod".into()) && w[2].0 == Tok::Punct(';'))
            .filter_map(|w| match &w[1].0 {
                Tok::Ident(n) => Some(n.clone()),
                _ => None,
            })
            .collect();
        let mut modules = Vec::new();
        let mut by_name = BTreeMap::new();
        for (i, f) in files.iter().enumerate() {
            let rel = f.path.strip_prefix("src/").unwrap().strip_suffix(".rs").unwrap();
            let mut parts: Vec<String> = rel.split('/').map(String::from).collect();
            if parts.last().map(String::as_str) == Some("mod") {
                parts.pop();
            }
            let krate = if binary.contains(&parts[0]) || parts == ["main"] {
                "vinf"
            } else {
                "vi"
            };
            if parts == ["lib"] || parts == ["main"] {
                parts.clear();
            }
            let mut name = vec![krate.to_string()];
            name.extend(parts);
            let toks = tokens(&f.live);
            let (imports, spans) = imports(&toks);
            let inline = inline_paths(&toks, &spans);
            // `fn name`, `struct name`, …, `macro_rules! name`.
            let defines = toks
                .windows(3)
                .filter(|w| matches!(&w[0].0, Tok::Ident(k) if ITEM_WORDS.contains(&k.as_str())))
                .filter_map(|w| match (&w[1].0, &w[2].0) {
                    (Tok::Ident(n), _) | (Tok::Punct('!'), Tok::Ident(n)) => Some(n.clone()),
                    _ => None,
                })
                .collect();
            by_name.insert(name.clone(), i);
            modules.push(Module {
                name,
                imports,
                inline,
                defines,
            });
        }
        Crate {
            files,
            modules,
            by_name,
        }
    }

    /// The file that defines what `path`, written in file `from`, names; `None` outside the
    /// crate (std, other crates) or for the file's own items.
    fn resolve(&self, from: usize, path: &[String], depth: usize) -> Option<usize> {
        if depth > 24 || path.is_empty() {
            return None;
        }
        let here = &self.modules[from].name;
        let (mut at, mut rest) = (here.clone(), path);
        match path[0].as_str() {
            "crate" => {
                at = vec![here[0].clone()];
                rest = &path[1..];
            }
            "vi" if here[0] == "vinf" => {
                at = vec!["vi".into()];
                rest = &path[1..];
            }
            "self" => rest = &path[1..],
            "super" => {
                while rest.first().map(String::as_str) == Some("super") {
                    at.pop();
                    rest = &rest[1..];
                }
            }
            first => {
                let mut child = here.clone();
                child.push(first.to_string());
                if !self.by_name.contains_key(&child) {
                    // A name this file imports: follow it.
                    let m = &self.modules[from];
                    let imp = m.imports.iter().find(|i| i.name.as_deref() == Some(first))?;
                    if imp.path.len() == 1 && imp.path[0] == first {
                        return None;
                    }
                    let mut p = imp.path.clone();
                    p.extend_from_slice(&path[1..]);
                    return self.resolve(from, &p, depth + 1);
                }
            }
        }
        self.walk(at, rest, depth)
    }

    fn walk(&self, module: Vec<String>, rest: &[String], depth: usize) -> Option<usize> {
        let file = *self.by_name.get(&module)?;
        let Some(seg) = rest.first() else {
            return Some(file);
        };
        let mut child = module.clone();
        child.push(seg.clone());
        if self.by_name.contains_key(&child) {
            return self.walk(child, &rest[1..], depth);
        }
        let m = &self.modules[file];
        if let Some(imp) = m.imports.iter().find(|i| i.name.as_deref() == Some(seg)) {
            let mut p = imp.path.clone();
            p.extend_from_slice(&rest[1..]);
            return self.resolve(file, &p, depth + 1).or(Some(file));
        }
        if m.defines.contains(seg) {
            return Some(file);
        }
        for glob in m.imports.iter().filter(|i| i.name.is_none()) {
            if let Some(g) = self.resolve(file, &glob.path, depth + 1) {
                let gm = &self.modules[g];
                let bound = gm.imports.iter().any(|i| i.name.as_deref() == Some(seg));
                if g != file && (gm.defines.contains(seg) || bound) {
                    return self.walk(gm.name.clone(), rest, depth + 1).or(Some(g));
                }
            }
        }
        Some(file)
    }

    /// Arrows between files: `arrows[a][b]` is the first line of `a` that reaches `b`.
    fn arrows(&self) -> Vec<BTreeMap<usize, usize>> {
        (0..self.files.len())
            .map(|f| {
                let m = &self.modules[f];
                let mut to = BTreeMap::new();
                let paths = m.imports.iter().map(|i| (&i.path, i.line));
                let inline = m.inline.iter().map(|(p, l)| (p, *l));
                for (p, line) in paths.chain(inline) {
                    if let Some(g) = self.resolve(f, p, 0) {
                        if g != f {
                            let e = to.entry(g).or_insert(line);
                            *e = (*e).min(line);
                        }
                    }
                }
                to
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The room table

/// A row of ARCHITECTURE.md's room table: its rooms and what they must never import.
struct Row {
    rooms: Vec<String>,
    never: BTreeSet<String>,
}

/// `span.rs` → `span`, `check/` → `check`.
fn room_name(cell: &str) -> String {
    cell.trim_end_matches('/').trim_end_matches(".rs").to_string()
}

fn backticked(s: &str) -> Vec<String> {
    s.split('`').skip(1).step_by(2).map(String::from).collect()
}

fn room_table() -> Vec<Row> {
    let arch = fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let table: Vec<&str> = arch
        .lines()
        .skip_while(|l| !l.starts_with("## Rooms"))
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .collect();
    assert!(
        !table.is_empty(),
        "ARCHITECTURE.md has no room table under `## Rooms`"
    );
    let cells: Vec<(Vec<String>, String)> = table
        .iter()
        .map(|l| {
            let cols: Vec<&str> = l.trim_matches('|').split(" | ").collect();
            assert!(cols.len() >= 3, "a room row without three columns: {l}");
            let rooms = backticked(cols[0]).iter().map(|r| room_name(r)).collect();
            (rooms, cols[cols.len() - 1].trim().to_string())
        })
        .collect();
    let order: Vec<String> = cells.iter().flat_map(|(r, _)| r.clone()).collect();
    let clause = |text: &str, own: &[String]| -> BTreeSet<String> {
        let everything = || order.iter().filter(|r| !own.contains(r)).cloned();
        let named: Vec<String> = backticked(text).iter().map(|r| room_name(r)).collect();
        for n in &named {
            assert!(
                order.contains(n),
                "ARCHITECTURE.md's room table forbids `{n}`, which is no room"
            );
        }
        if text.contains("anything of the crate") {
            everything().collect()
        } else if text.contains("anything but") {
            everything().filter(|r| !named.contains(r)).collect()
        } else if text.contains("and everything above") {
            let from = order.iter().position(|r| *r == named[0]).unwrap();
            order[from..]
                .iter()
                .filter(|r| !own.contains(r))
                .cloned()
                .collect()
        } else {
            named.into_iter().collect()
        }
    };
    cells
        .iter()
        .map(|(rooms, never)| {
            // Words after `;` or in parentheses say more about the room, not what it imports.
            let general = never.split(';').next().unwrap().split('(').next().unwrap();
            Row {
                rooms: rooms.clone(),
                never: clause(general, rooms),
            }
        })
        .collect()
}

/// The room a file belongs to: the file itself where the table gives it a row of its own
/// (`dist/mod.rs`), else its first path component under `src/` (`check/`, `store.rs`).
fn room_of(rows: &[Row], path: &str) -> String {
    let rel = path.strip_prefix("src/").unwrap();
    let own = room_name(rel);
    if rows.iter().any(|r| r.rooms.contains(&own)) {
        return own;
    }
    room_name(rel.split('/').next().unwrap())
}

// ---------------------------------------------------------------------------------------------
// The invariants

#[test]
fn every_file_belongs_to_a_room_of_the_table() {
    let rows = room_table();
    let rooms: BTreeSet<String> = rows.iter().flat_map(|r| r.rooms.clone()).collect();
    let lost: Vec<String> = sources()
        .iter()
        .filter(|f| !rooms.contains(&room_of(&rows, &f.path)))
        .map(|f| format!("{} (room `{}`)", f.path, room_of(&rows, &f.path)))
        .collect();
    assert!(
        lost.is_empty(),
        "files in no room of ARCHITECTURE.md's table (add a row saying its job and what it must never import):\n  {}",
        lost.join("\n  ")
    );
}

/// (a) No file imports, directly or through the files it imports, a room its row forbids.
#[test]
fn no_room_imports_what_its_row_forbids() {
    let rows = room_table();
    let krate = Crate::load();
    let arrows = krate.arrows();
    let path = |i: usize| krate.files[i].path.as_str();
    // (file, forbidden room, the chain of files from it to that room).
    let mut found: Vec<(usize, String, Vec<usize>)> = Vec::new();
    for (f, src) in krate.files.iter().enumerate() {
        let room = room_of(&rows, &src.path);
        let Some(row) = rows.iter().find(|r| r.rooms.contains(&room)) else {
            continue;
        };
        // Breadth first, so each forbidden room is reported by its shortest chain.
        let mut came_from: BTreeMap<usize, usize> = BTreeMap::new();
        let mut queue = VecDeque::from([f]);
        let mut named = BTreeSet::new();
        while let Some(a) = queue.pop_front() {
            for &b in arrows[a].keys() {
                if b == f || came_from.contains_key(&b) {
                    continue;
                }
                came_from.insert(b, a);
                queue.push_back(b);
                let to = room_of(&rows, path(b));
                if to != room && row.never.contains(&to) && named.insert(to.clone()) {
                    let mut chain = vec![b];
                    while *chain.last().unwrap() != f {
                        chain.push(came_from[chain.last().unwrap()]);
                    }
                    chain.reverse();
                    found.push((f, to, chain));
                }
            }
        }
    }
    // A file that reaches the forbidden room only through another file of its room that is
    // reported already adds nothing: report the files nearest the offending import.
    let reported: BTreeSet<(usize, &str)> = found.iter().map(|(f, to, _)| (*f, to.as_str())).collect();
    let broken: Vec<String> = found
        .iter()
        .filter(|(f, to, chain)| {
            !chain[1..].iter().any(|&g| {
                g != *f
                    && room_of(&rows, path(g)) == room_of(&rows, path(*f))
                    && reported.contains(&(g, to.as_str()))
            })
        })
        .map(|(f, to, chain)| {
            let steps: Vec<String> = chain
                .windows(2)
                .map(|w| format!("{}:{}", path(w[0]), arrows[w[0]][&w[1]]))
                .collect();
            format!(
                "{}: `{}` must never import `{to}`, but {} → {}",
                steps[0],
                room_of(&rows, path(*f)),
                steps.join(" → "),
                path(*chain.last().unwrap())
            )
        })
        .collect();
    assert!(
        broken.is_empty(),
        "imports ARCHITECTURE.md's room table forbids (file:line imports the next; re-exports resolved):\n  {}",
        broken.join("\n  ")
    );
}

/// (b) No file in `src/` over 1,200 lines; no command-line file over 400.
#[test]
fn no_file_is_too_long() {
    let mut long = Vec::new();
    for f in sources() {
        let lines = f.text.lines().count();
        if lines > MAX_LINES {
            long.push(format!(
                "{} has {lines} lines, over {MAX_LINES}: split it",
                f.path
            ));
        }
        if !f.path.starts_with("src/cli/") {
            continue;
        }
        match CLI_OVER_LIMIT.iter().find(|(p, _)| *p == f.path) {
            Some(&(_, most)) if lines > most => long.push(format!(
                "{} has {lines} lines: it is over {MAX_CLI_LINES} already (issue 35) and may only shrink, from {most}",
                f.path
            )),
            Some(_) if lines <= MAX_CLI_LINES => long.push(format!(
                "{} has {lines} lines, within {MAX_CLI_LINES}: take it off CLI_OVER_LIMIT in tests/tidy.rs",
                f.path
            )),
            None if lines > MAX_CLI_LINES => long.push(format!(
                "{} has {lines} lines, over {MAX_CLI_LINES} for a command-line file: move what is not the command line into the library",
                f.path
            )),
            _ => {}
        }
    }
    assert!(long.is_empty(), "{}", long.join("\n"));
}

fn lines_matching(f: &Source, code: &str, hit: impl Fn(&str) -> bool) -> Vec<String> {
    code.lines()
        .zip(f.text.lines())
        .enumerate()
        .filter(|(_, (c, _))| hit(c))
        .map(|(i, (_, t))| format!("{}:{}: {}", f.path, i + 1, t.trim()))
        .collect()
}

fn has_word(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// (c) `backend` is the only room that names dfdx.
#[test]
fn only_the_backend_names_dfdx() {
    let found: Vec<String> = sources()
        .iter()
        .filter(|f| !f.path.starts_with("src/backend/"))
        .flat_map(|f| lines_matching(f, &f.code, |c| has_word(c, "dfdx")))
        .collect();
    assert!(
        found.is_empty(),
        "dfdx named outside src/backend/:\n  {}",
        found.join("\n  ")
    );
}

/// (c) Nothing below the command line prints: warnings travel as data.
#[test]
fn nothing_below_the_command_line_prints() {
    const PRINTING: &[&str] = &["print", "println", "eprint", "eprintln", "dbg"];
    let mut found = Vec::new();
    for f in sources() {
        if f.path.starts_with("src/cli/") || f.path == "src/main.rs" {
            continue;
        }
        let toks = tokens(&f.live);
        for w in toks.windows(2) {
            if let (Tok::Ident(m), Tok::Punct('!')) = (&w[0].0, &w[1].0) {
                if PRINTING.contains(&m.as_str()) {
                    let text = f.text.lines().nth(w[0].1 - 1).unwrap_or("").trim();
                    found.push(format!("{}:{}: {text}", f.path, w[0].1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "printing below the command line (return the text, or a warning as data):\n  {}",
        found.join("\n  ")
    );
}

/// (d) Every file starts with a `//!` doc saying its job.
#[test]
fn every_file_starts_with_its_doc() {
    let bare: Vec<String> = sources()
        .into_iter()
        .filter(|f| !f.text.starts_with("//!"))
        .map(|f| f.path)
        .collect();
    assert!(
        bare.is_empty(),
        "files that do not start with a `//!` doc:\n  {}",
        bare.join("\n  ")
    );
}

/// (e) No import circle between files.
#[test]
fn no_import_circle() {
    let krate = Crate::load();
    let mut arrows = krate.arrows();
    let path = |i: usize| krate.files[i].path.as_str();
    // A folder's `mod.rs` declares, re-exports and runs the files of its folder: its arrows
    // down into them are the module's structure, not imports, and children read the shared
    // items it defines. Circles through re-exports or between other files all count.
    for (a, to) in arrows.iter_mut().enumerate() {
        if let Some(folder) = path(a).strip_suffix("mod.rs") {
            to.retain(|&b, _| !path(b).starts_with(folder));
        }
    }
    let circles: Vec<String> = circles(&arrows)
        .into_iter()
        .map(|c| {
            let mut steps: Vec<String> = c
                .windows(2)
                .map(|w| format!("{}:{}", path(w[0]), arrows[w[0]][&w[1]]))
                .collect();
            steps.push(path(c[0]).to_string());
            steps.join(" → ")
        })
        .collect();
    assert!(
        circles.is_empty(),
        "import circles between files (file:line imports the next; re-exports resolved):\n  {}",
        circles.join("\n  ")
    );
}

/// One circle per strongly connected set of files (Tarjan), as the files in order with the
/// first repeated at the end.
fn circles(arrows: &[BTreeMap<usize, usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        arrows: &'a [BTreeMap<usize, usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        stack: Vec<usize>,
        on: Vec<bool>,
        next: usize,
        sets: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on[v] = true;
        for &w in s.arrows[v].keys() {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(i) if s.on[w] => s.low[v] = s.low[v].min(i),
                _ => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut set = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on[w] = false;
                set.push(w);
                if w == v {
                    break;
                }
            }
            if set.len() > 1 {
                s.sets.push(set);
            }
        }
    }
    let n = arrows.len();
    let mut s = State {
        arrows,
        index: vec![None; n],
        low: vec![0; n],
        stack: Vec::new(),
        on: vec![false; n],
        next: 0,
        sets: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    // A shortest circle through the set's first file, found breadth first inside the set.
    s.sets
        .iter()
        .map(|set| {
            let start = *set.iter().min().unwrap();
            let mut came_from = BTreeMap::new();
            let mut queue = VecDeque::from([start]);
            'search: while let Some(a) = queue.pop_front() {
                for &b in arrows[a].keys().filter(|b| set.contains(b)) {
                    if b == start {
                        came_from.insert(usize::MAX, a);
                        break 'search;
                    }
                    if let std::collections::btree_map::Entry::Vacant(e) = came_from.entry(b) {
                        e.insert(a);
                        queue.push_back(b);
                    }
                }
            }
            let mut circle = vec![start];
            let mut at = came_from[&usize::MAX];
            while at != start {
                circle.push(at);
                at = came_from[&at];
            }
            circle.push(start);
            circle.reverse();
            circle
        })
        .collect()
}

/// (a) The table runs from the ground up: no file imports a room in a later row than its own.
#[test]
fn no_room_imports_a_room_above_it() {
    let rows = room_table();
    let rank = |room: &str| {
        rows.iter()
            .position(|r| r.rooms.iter().any(|x| x == room))
            .unwrap_or(usize::MAX)
    };
    let krate = Crate::load();
    let arrows = krate.arrows();
    let path = |i: usize| krate.files[i].path.as_str();
    let mut up = Vec::new();
    for (a, to) in arrows.iter().enumerate() {
        let from = room_of(&rows, path(a));
        for (&b, line) in to {
            let room = room_of(&rows, path(b));
            if room != from && rank(&room) > rank(&from) {
                up.push(format!(
                    "{}:{line}: `{from}` imports `{room}` ({}), a room above it",
                    path(a),
                    path(b)
                ));
            }
        }
    }
    assert!(up.is_empty(), "{}", up.join("\n"));
}
