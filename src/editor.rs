//! What an editor asks of a model as it is typed: its diagnostics, where the name under the
//! cursor is defined, what it is (type, shape, support, and how the fit will treat it), and
//! what may be typed next. `vinf lsp` serves these over the Language Server Protocol.
//!
//! Byte offsets in, byte spans and text out: this room knows no protocol and prints nothing.
//! It reads the syntax tree, the checked model and the conjugacy plan; it must never import
//! the command line or an engine.

use std::path::Path;

use crate::diag::Diagnostic;
use crate::dist::Family;
use crate::graph::{Model, ShapeDisplay};
use crate::span::Span;
use crate::syntax::ast::{self, ExprKind, Item, Stmt};

/// What a name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefKind {
    Data,
    Const,
    Param,
    Latent,
    Net,
    Let,
    Term,
    PlateIndex,
    ScanIndex,
}

impl DefKind {
    fn word(self) -> &'static str {
        match self {
            DefKind::Data => "data",
            DefKind::Const => "const",
            DefKind::Param => "param",
            DefKind::Latent => "latent",
            DefKind::Net => "net",
            DefKind::Let => "let",
            DefKind::Term => "term",
            DefKind::PlateIndex => "plate index",
            DefKind::ScanIndex => "scan step",
        }
    }
}

/// Where a name is introduced: its identifier's span, and the span of the whole statement.
#[derive(Clone, Debug)]
pub struct Def {
    pub name: String,
    pub kind: DefKind,
    pub span: Span,
    pub statement: Span,
}

/// One completion candidate.
#[derive(Clone, Debug)]
pub struct Completion {
    pub label: String,
    pub detail: String,
    pub kind: CompletionKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionKind {
    Distribution,
    Function,
    Keyword,
    Name,
}

/// A model's text, checked.
pub struct Analysis {
    pub text: String,
    /// Errors and warnings, in the order the checker found them.
    pub diagnostics: Vec<Diagnostic>,
    defs: Vec<Def>,
    /// The checked model with its conjugacy plan, when it checks.
    model: Option<(Model, crate::infer::plan::Plan)>,
}

const KEYWORDS: &[&str] = &[
    "data",
    "const",
    "param",
    "latent",
    "net",
    "let",
    "for",
    "in",
    "batch",
    "from",
    "column",
    "columns",
    "guide",
    "fit",
    "objective",
    "maximise",
    "minimise",
    "term",
    "draw",
    "scan",
    "target",
];

/// Check `text` as the model file at `path` (its default data are read relative to it, when
/// they exist).
pub fn analyse(path: &Path, text: &str) -> Analysis {
    let name = path
        .file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().into_owned());
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let opts = crate::LoadOptions::default();
    // A bug in the checker must not take the editor's every feature with it: a panic becomes
    // one diagnostic, and the analysis goes on without a model.
    let checked = std::panic::catch_unwind(|| {
        match crate::load_str(&name, &path.display().to_string(), text, &base, &opts) {
            Ok(loaded) => {
                let plan = crate::infer::plan::analyse(&loaded.model);
                (loaded.model.warnings.clone(), Some((loaded.model, plan)))
            }
            Err(d) => (d.0, None),
        }
    });
    let (diagnostics, model) = checked.unwrap_or_else(|panic| {
        let d = Diagnostic::new(
            "vi::internal",
            format!(
                "internal error in vi while checking: {}",
                crate::diag::panic_message(&*panic)
            ),
        )
        .help("this is a bug; please report it with the model that caused it");
        (vec![d], None)
    });
    let defs = crate::syntax::parse_program(text).map_or_else(|_| Vec::new(), |p| definitions(&p));
    Analysis {
        text: text.to_string(),
        diagnostics,
        defs,
        model,
    }
}

fn definitions(p: &ast::Program) -> Vec<Def> {
    let mut defs = Vec::new();
    let add = |defs: &mut Vec<Def>, id: &ast::Ident, kind, statement: Span| {
        defs.push(Def {
            name: id.name.clone(),
            kind,
            span: id.span,
            statement,
        })
    };
    for item in &p.items {
        match item {
            Item::Data(d) => add(&mut defs, &d.name, DefKind::Data, d.span),
            Item::Const(c) => add(&mut defs, &c.name, DefKind::Const, c.span),
            Item::Param(x) => add(&mut defs, &x.name, DefKind::Param, x.span),
            Item::Latent(l) => add(&mut defs, &l.name, DefKind::Latent, l.span),
            Item::Net(n) => add(&mut defs, &n.name, DefKind::Net, n.span),
            Item::Stmt(s) => statement_defs(s, &mut defs),
            Item::Guide(_) | Item::Fit(_) | Item::Objective(_) => {}
        }
    }
    // `x ~ ...` defines a latent only where nothing defined `x` before (data are observed,
    // declared latents get their prior).
    let mut seen = std::collections::HashSet::new();
    defs.retain(|d| {
        let fresh = seen.insert(d.name.clone());
        // A draw's name starts its statement; a declaration's follows its keyword.
        let drawn = d.kind == DefKind::Latent && d.span.start == d.statement.start;
        fresh || !drawn
    });
    defs
}

fn statement_defs(s: &Stmt, defs: &mut Vec<Def>) {
    let mut add = |id: &ast::Ident, kind, statement: Span| {
        defs.push(Def {
            name: id.name.clone(),
            kind,
            span: id.span,
            statement,
        })
    };
    match s {
        Stmt::Sample { target, span, .. } => {
            // `mu ~ ...` or `z[n] ~ ...`: a latent where the name is new (the first one wins).
            let base = match &target.kind {
                ExprKind::Index { base, .. } => base,
                _ => target,
            };
            if let ExprKind::Name(n) = &base.kind {
                let id = ast::Ident {
                    name: n.clone(),
                    span: base.span,
                };
                add(&id, DefKind::Latent, *span);
            }
        }
        Stmt::Let { name, value, span } => {
            add(name, DefKind::Let, *span);
            if let ExprKind::Scan(sc) = &value.kind {
                add(&sc.var, DefKind::ScanIndex, sc.span);
                for l in &sc.lets {
                    statement_defs(l, defs);
                }
            }
        }
        Stmt::Term { name, span, .. } => add(name, DefKind::Term, *span),
        Stmt::For(f) => {
            add(&f.var, DefKind::PlateIndex, f.span);
            for s in &f.body.stmts {
                statement_defs(s, defs);
            }
        }
        Stmt::Target { .. } | Stmt::Error(_) => {}
    }
}

impl Analysis {
    /// The identifier under (or just before) the byte offset, outside comments.
    pub fn word_at(&self, offset: usize) -> Option<(String, Span)> {
        let text = &self.text;
        let mut at = offset.min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let line_start = text[..at].rfind('\n').map_or(0, |k| k + 1);
        if text[line_start..at].contains('#') {
            return None;
        }
        let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let start = text[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_word(*c))
            .last()
            .map_or(at, |(k, _)| k);
        let end = text[at..]
            .char_indices()
            .find(|(_, c)| !is_word(*c))
            .map_or(text.len(), |(k, _)| at + k);
        let word = &text[start..end];
        let first = word.chars().next()?;
        (first.is_ascii_alphabetic() || first == '_').then(|| (word.to_string(), Span::new(start, end)))
    }

    /// The definition a name at `offset` refers to: the nearest one before it (a plate index
    /// or a `let` inside a loop is found from within the loop).
    pub fn definition(&self, offset: usize) -> Option<&Def> {
        let (word, span) = self.word_at(offset)?;
        let candidates = self.defs.iter().filter(|d| d.name == word);
        candidates
            .clone()
            .filter(|d| d.span.start <= span.start)
            .filter(|d| {
                !matches!(d.kind, DefKind::PlateIndex | DefKind::ScanIndex) || d.statement.end >= span.end
            })
            .max_by_key(|d| d.span.start)
            .or_else(|| candidates.min_by_key(|d| d.span.start))
    }

    /// Markdown describing the name at `offset`: what it is, its type and shape, and for a
    /// latent its prior and how it will be fitted; for a distribution or function, its
    /// parameters.
    pub fn hover(&self, offset: usize) -> Option<String> {
        let (word, _) = self.word_at(offset)?;
        if let Some(d) = self.definition(offset) {
            return Some(self.describe(d));
        }
        if let Some(f) = Family::from_name(&word) {
            return Some(family_signature(f));
        }
        crate::check::function_signature(&word).map(|s| format!("```\n{s}\n```"))
    }

    fn describe(&self, d: &Def) -> String {
        let code = self.text[d.statement.start..d.statement.end.min(self.text.len())]
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let mut out = format!("**{}** `{}`\n\n```vi\n{code}\n```", d.kind.word(), d.name);
        if let Some(extra) = self.model.as_ref().and_then(|(m, plan)| facts(m, plan, d)) {
            out.push_str("\n\n");
            out.push_str(&extra);
        }
        out
    }

    /// Everything that may be typed: distributions with their parameters, functions,
    /// keywords, and the names the file defines.
    pub fn completions(&self) -> Vec<Completion> {
        let mut out: Vec<Completion> = Family::names()
            .filter(|n| *n != "target +=")
            .filter_map(|n| Family::from_name(n).map(|f| (n, f)))
            .filter(|(_, f)| *f != Family::Factor)
            .map(|(n, f)| Completion {
                label: n.to_string(),
                detail: family_signature(f).replace("```", "").trim().to_string(),
                kind: CompletionKind::Distribution,
            })
            .collect();
        out.extend(crate::check::function_names().map(|n| Completion {
            label: n.to_string(),
            detail: crate::check::function_signature(n).unwrap_or_default(),
            kind: CompletionKind::Function,
        }));
        out.extend(KEYWORDS.iter().map(|k| Completion {
            label: k.to_string(),
            detail: "keyword".into(),
            kind: CompletionKind::Keyword,
        }));
        let mut seen = std::collections::HashSet::new();
        for d in &self.defs {
            if seen.insert(d.name.clone()) {
                out.push(Completion {
                    label: d.name.clone(),
                    detail: d.kind.word().into(),
                    kind: CompletionKind::Name,
                });
            }
        }
        out
    }
}

/// `Normal(loc, scale) | Normal(loc, precision = ...)`, with the support of its draws.
fn family_signature(f: Family) -> String {
    let forms: Vec<String> = f
        .parameterizations()
        .iter()
        .enumerate()
        .map(|(k, (_, ps))| {
            let names: Vec<String> = ps
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    if k > 0 && i + 1 == ps.len() {
                        format!("{} = …", p.name)
                    } else {
                        p.name.to_string()
                    }
                })
                .collect();
            format!("{}({})", f.name(), names.join(", "))
        })
        .collect();
    format!("```\n{}\n```\ndraws values in {}", forms.join("\n"), f.support())
}

/// What the checked model knows of a definition.
fn facts(m: &Model, plan: &crate::infer::plan::Plan, d: &Def) -> Option<String> {
    let shape = |s: &[crate::graph::Dim]| {
        if s.is_empty() {
            String::new()
        } else {
            ShapeDisplay(s).to_string()
        }
    };
    match d.kind {
        DefKind::Data => {
            let x = m.data.iter().find(|x| x.name == d.name)?;
            let from = x
                .from
                .as_ref()
                .map_or(String::new(), |(f, _)| format!(", from `{f}`"));
            Some(format!(
                "{}{} {}{from}",
                x.domain.keyword(),
                shape(&x.shape),
                observed_or_covariate(m, &d.name)
            ))
        }
        DefKind::Param => {
            let p = m.params.iter().find(|p| p.name == d.name)?;
            Some(format!(
                "{}{}, a point estimate optimised with the ELBO",
                p.domain.keyword(),
                shape(&p.shape)
            ))
        }
        DefKind::Latent => {
            let (k, l) = m.latents.iter().enumerate().find(|(_, l)| l.name == d.name)?;
            let prior = &m.sites[l.site].dist;
            let plates: Vec<String> = l.plates.iter().map(|p| m.plate(*p).var.clone()).collect();
            let per = if plates.is_empty() {
                String::new()
            } else {
                format!(", one per {}", plates.join(", "))
            };
            let verdict = plan.verdicts.get(k);
            // The plan's reason starts with the latent's name.
            let reason = |r: &str| r.strip_prefix(&format!("{}: ", l.name)).unwrap_or(r).to_string();
            let fitted = match verdict {
                Some(v) if v.q.is_some() && plan.all_conjugate() => {
                    format!("fitted by CAVI, in closed form: {}", reason(&v.reason))
                }
                Some(v) if v.q.is_some() => {
                    format!(
                        "{}; but the model has non-conjugate latents, so all are fitted by gradients",
                        reason(&v.reason)
                    )
                }
                Some(v) => reason(&v.reason),
                None => String::new(),
            };
            let what = if l.shape.is_empty() {
                "a scalar".to_string()
            } else {
                shape(&l.shape)
            };
            Some(format!(
                "{what} in {}{per}; {} prior\n\n{fitted}",
                l.support, prior.family
            ))
        }
        DefKind::Net => {
            let n = m.nets.iter().find(|n| n.name == d.name)?;
            Some(match n.kind() {
                crate::graph::NetKind::Mlp => {
                    let widths: Vec<String> = n.widths.iter().map(|w| w.to_string()).collect();
                    format!("an MLP of widths {}", widths.join(" → "))
                }
                crate::graph::NetKind::Cnn => format!("a convolutional net: {}", n.describe()),
            })
        }
        DefKind::Let => m
            .derived
            .iter()
            .any(|x| x.name == d.name)
            .then(|| "a function of latents: reported as a derived quantity, from draws of q".to_string()),
        _ => None,
    }
}

fn observed_or_covariate(m: &Model, name: &str) -> &'static str {
    let observed = m.sites.iter().any(|s| match s.target {
        crate::graph::Target::Data { data, .. } => m.data[data.index()].name == name,
        _ => false,
    });
    if observed {
        "(observed)"
    } else {
        "(a covariate)"
    }
}
