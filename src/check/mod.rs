//! The checker: resolves names, types, supports and shapes, and elaborates the AST into the
//! graph IR ([`crate::graph::Model`]) in the same walk.
//!
//! Checking and lowering are one pass because every check needs the type of the expression it
//! is looking at, and the typed expression *is* the graph node; a second walk would recompute
//! the first. The checker never stops at the first problem: each failing expression yields
//! `None`, its diagnostic is recorded, and checking goes on with the next statement.
//!
//! Dimensions are symbolic (`N`, `D`) until data binds them; with data, the data's shapes and
//! values are validated against their declarations here too.

mod decl;
mod dist;
mod expr;
mod index;
mod latent;
mod matrix;
mod mixture;
mod net;
mod observed;
mod scan;
mod select;
mod shape;
mod shift;
mod site;
mod support;
mod truncate;

use std::collections::HashMap;

use crate::data::DataSet;
use crate::diag::{did_you_mean, Diagnostic, Diagnostics, Source};
use crate::dist::Domain;
use crate::graph::{
    ConstDecl, DataDecl, DataId, Dim, Elem, LatentId, Model, NetDecl, NetId, Node, NodeId, Objective, Op,
    ParamDecl, ParamId, Plate, PlateId, Site, Term, TermId, Ty,
};
use crate::settings::Settings;
use crate::syntax::ast::{self, Item, Stmt};
use crate::syntax::Span;

/// The built-in functions a model may call, for editors' completions.
pub fn function_names() -> impl Iterator<Item = &'static str> {
    expr::builtin_names()
}

/// A built-in function's one-line signature, for editors' hovers.
pub fn function_signature(name: &str) -> Option<String> {
    expr::is_builtin_function(name).then(|| expr::signature(name))
}

/// Check a parsed model against the data bound so far (possibly none) and lower it.
pub fn check(
    program: &ast::Program,
    source: &Source,
    name: &str,
    data: &DataSet,
) -> Result<Model, Diagnostics> {
    let mut c = Checker::new(data);
    c.program(program);
    c.warn_improper();
    let diags = c.diags.with_source(source);
    if !diags.is_empty() {
        return Err(diags);
    }
    let lets = std::mem::take(&mut c.lets);
    let mut model = Model {
        name: name.to_string(),
        source: source.clone(),
        data: c.data,
        consts: c.consts,
        params: c.params,
        nets: c.nets,
        plates: c.plates,
        latents: c.latents,
        nodes: c.nodes,
        sites: c.sites,
        guide: c.guide,
        terms: c.terms,
        derived: Vec::new(),
        objectives: c.objectives,
        settings: c.settings,
        warnings: c.warnings.with_source(source).0,
    };
    model.derived = derived_quantities(&model, lets);
    Ok(model)
}

/// The `let`s that are derived quantities: they read some latent and no data, and are not a
/// latent under another name.
fn derived_quantities(model: &Model, lets: Vec<(String, NodeId, Span)>) -> Vec<crate::graph::Derived> {
    lets.into_iter()
        .filter(|(_, id, _)| {
            !matches!(model.node(*id).op, crate::graph::Op::Latent(_))
                && !model.latents_of(*id).is_empty()
                && !model.reads_data(*id)
        })
        .map(|(name, value, span)| crate::graph::Derived { name, value, span })
        .collect()
}

/// What a global name stands for.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Symbol {
    Data(DataId),
    Const(usize),
    Param(ParamId),
    Net(NetId),
    Latent(LatentId),
    Term(TermId),
}

/// Which program a statement belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Program {
    Model,
    Guide,
    /// An objective expression: only consts and quantities are visible.
    Objective,
    /// A const, a bound or an initial value: only numbers and consts.
    Const,
}

/// A lexical frame: a block's `let`s and, for a loop body, its plate.
#[derive(Default)]
struct Frame {
    lets: Vec<(String, NodeId, Span)>,
    plate: Option<(String, PlateId, Span)>,
    scan: Option<ScanFrame>,
}

/// A scan body's frame: its step variable and the value it defines.
#[derive(Clone)]
struct ScanFrame {
    /// The step variable (`t`) and its span.
    var: (String, Span),
    /// The name the scan's `let` defines, readable in the body only as `name[t - 1]`.
    own: (String, Span),
    index: NodeId,
    prev: NodeId,
}

/// Names in scope while checking one statement.
struct Scope {
    program: Program,
    frames: Vec<Frame>,
}

impl Scope {
    fn new(program: Program) -> Scope {
        Scope {
            program,
            frames: vec![Frame::default()],
        }
    }

    /// The active plates, outermost first.
    fn plates(&self) -> Vec<PlateId> {
        self.frames
            .iter()
            .filter_map(|f| f.plate.as_ref().map(|p| p.1))
            .collect()
    }

    fn plate_var(&self, name: &str) -> Option<PlateId> {
        self.frames
            .iter()
            .rev()
            .find_map(|f| f.plate.as_ref().filter(|p| p.0 == name).map(|p| p.1))
    }

    /// The scan whose step variable or own name is `name`.
    fn scan_frame(&self, name: &str) -> Option<&ScanFrame> {
        self.frames
            .iter()
            .rev()
            .find_map(|f| f.scan.as_ref().filter(|s| s.var.0 == name || s.own.0 == name))
    }

    fn local(&self, name: &str) -> Option<(NodeId, Span)> {
        self.frames
            .iter()
            .rev()
            .find_map(|f| f.lets.iter().rev().find(|l| l.0 == name).map(|l| (l.1, l.2)))
    }

    fn local_names(&self) -> impl Iterator<Item = &str> {
        self.frames.iter().flat_map(|f| {
            f.lets
                .iter()
                .map(|l| l.0.as_str())
                .chain(f.plate.iter().map(|p| p.0.as_str()))
                .chain(f.scan.iter().flat_map(|s| [s.var.0.as_str(), s.own.0.as_str()]))
        })
    }
}

struct Checker<'d> {
    dataset: &'d DataSet,
    diags: Diagnostics,
    /// Problems that do not stop the model: reported, and the model is still used.
    warnings: Diagnostics,
    /// The (code, place) of every warning recorded, so that each is given once.
    warned: std::collections::HashSet<(&'static str, Option<Span>)>,
    /// The bounds of nodes' values, once computed (see `support`).
    bounds: HashMap<NodeId, support::Bound>,
    nodes: Vec<Node>,
    /// Names whose definition failed: uses of them are not reported again.
    poisoned: std::collections::HashSet<String>,
    /// Nodes by their operation and type, for sharing identical computations.
    interned: HashMap<String, NodeId>,
    globals: HashMap<String, (Symbol, Span)>,
    /// Dimension names and their values once data binds them, with who bound them.
    dims: HashMap<String, DimBinding>,
    data: Vec<DataDecl>,
    consts: Vec<ConstDecl>,
    params: Vec<ParamDecl>,
    nets: Vec<NetDecl>,
    plates: Vec<Plate>,
    latents: Vec<crate::graph::Latent>,
    sites: Vec<Site>,
    guide: Option<Vec<Site>>,
    /// Latents the guide has drawn so far, with the span of the draw.
    guide_drawn: HashMap<LatentId, Span>,
    /// Data already observed, with the span of the observation.
    observed: HashMap<DataId, Span>,
    terms: Vec<Term>,
    /// The model program's `let`s, in order: the derived quantities are those of them that
    /// read latents and no data.
    lets: Vec<(String, NodeId, Span)>,
    /// Latents with improper priors, for one warning at the end.
    improper: Vec<(String, Span)>,
    objectives: Vec<Objective>,
    /// The spans of each objective's group names, for overlap messages.
    objective_spans: Vec<Vec<Span>>,
    settings: Settings,
    /// Each scan's first member and length, by scan id (for index range checks).
    scans: Vec<(usize, Dim)>,
    /// How many index brackets the expression being checked is inside.
    index_depth: usize,
    /// Declared latents whose `bounded(lo, hi)` reads other values: their bounds' nodes.
    moving_declared: HashMap<LatentId, (NodeId, NodeId)>,
}

#[derive(Clone, Debug)]
struct DimBinding {
    value: Option<usize>,
    /// Where the name first appears in a declaration.
    span: Span,
    /// The data whose shape bound it, for messages.
    bound_by: Option<String>,
}

impl<'d> Checker<'d> {
    fn new(dataset: &'d DataSet) -> Self {
        Checker {
            dataset,
            diags: Diagnostics::new(),
            warnings: Diagnostics::new(),
            warned: Default::default(),
            bounds: HashMap::new(),
            nodes: Vec::new(),
            interned: HashMap::new(),
            poisoned: Default::default(),
            globals: HashMap::new(),
            dims: HashMap::new(),
            data: Vec::new(),
            consts: Vec::new(),
            params: Vec::new(),
            nets: Vec::new(),
            plates: Vec::new(),
            latents: Vec::new(),
            sites: Vec::new(),
            guide: None,
            guide_drawn: HashMap::new(),
            observed: HashMap::new(),
            terms: Vec::new(),
            lets: Vec::new(),
            improper: Vec::new(),
            objectives: Vec::new(),
            objective_spans: Vec::new(),
            settings: Settings::default(),
            scans: Vec::new(),
            index_depth: 0,
            moving_declared: HashMap::new(),
        }
    }

    fn error(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Record a warning, once per place and code.
    fn warn(&mut self, d: Diagnostic) {
        let d = d.warning();
        if self.warned.insert((d.code, d.primary_span())) {
            self.warnings.push(d);
        }
    }

    /// Add a node, or return the identical one already built: the same computation written
    /// twice is evaluated once. Random draws are never shared.
    fn add(&mut self, op: Op, ty: Ty, span: Span) -> NodeId {
        let key = (!matches!(op, Op::Draw(_))).then(|| format!("{op:?}{ty:?}"));
        if let Some(id) = key.as_ref().and_then(|k| self.interned.get(k)) {
            return *id;
        }
        self.nodes.push(Node { op, ty, span });
        let id = NodeId((self.nodes.len() - 1) as u32);
        if let Some(k) = key {
            self.interned.insert(k, id);
        }
        id
    }

    /// Every node the roots depend on, themselves included, each visited once.
    fn ancestors(&self, roots: &[NodeId]) -> Vec<NodeId> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack = roots.to_vec();
        let mut out = Vec::new();
        while let Some(n) = stack.pop() {
            if std::mem::replace(&mut seen[n.index()], true) {
                continue;
            }
            out.push(n);
            stack.extend(crate::graph::op_inputs(&self.nodes[n.index()].op));
        }
        out
    }

    fn ty(&self, id: NodeId) -> &Ty {
        &self.nodes[id.index()].ty
    }

    fn node_span(&self, id: NodeId) -> Span {
        self.nodes[id.index()].span
    }

    /// The model's items: declarations and model statements in order, then the guide, the
    /// objectives and the fit settings (which may refer to anything declared).
    fn program(&mut self, program: &ast::Program) {
        let mut model_scope = Scope::new(Program::Model);
        let mut guides: Vec<&ast::Block> = Vec::new();
        let mut objectives = Vec::new();
        let mut fits = Vec::new();
        // Data and consts first, so that every dimension is bound before any statement uses it.
        for item in &program.items {
            match item {
                Item::Data(d) => self.data_decl(d),
                Item::Const(c) => self.const_decl(c),
                _ => {}
            }
        }
        for item in &program.items {
            match item {
                Item::Data(_) | Item::Const(_) => {}
                Item::Param(p) => self.param_decl(p),
                Item::Latent(d) => self.latent_decl(d, &model_scope),
                Item::Net(n) => self.net_decl(n),
                Item::Stmt(s) => self.stmt(s, &mut model_scope),
                Item::Guide(b) => guides.push(b),
                Item::Objective(o) => objectives.push(o),
                Item::Fit(f) => fits.push(f),
            }
        }
        self.flat_priors_for_declared();
        if let Some((first, rest)) = guides.split_first() {
            for extra in rest {
                self.error(
                    Diagnostic::new("vi::guide::duplicate", "a model has at most one guide")
                        .primary(Span::new(extra.span.start, extra.span.start + 5), "second guide")
                        .secondary(Span::new(first.span.start, first.span.start + 5), "first guide")
                        .help("put every guide statement in one `guide { ... }` block"),
                );
            }
            self.guide = Some(Vec::new());
            let mut scope = Scope::new(Program::Guide);
            for s in &first.stmts {
                self.stmt(s, &mut scope);
            }
        }
        for o in objectives {
            self.objective(o);
        }
        if let Some((first, rest)) = fits.split_first() {
            for extra in rest {
                self.error(
                    Diagnostic::new("vi::fit::duplicate", "a model has at most one fit block")
                        .primary(
                            Span::new(extra.span.start, extra.span.start + 3),
                            "second fit block",
                        )
                        .secondary(
                            Span::new(first.span.start, first.span.start + 3),
                            "first fit block",
                        )
                        .help("merge the settings into one `fit { ... }` block"),
                );
            }
            self.fit_block(first);
        }
        self.check_objective_groups();
        self.check_moving_bounds_guide();
    }

    // ------------------------------------------------------------------ names

    /// Report a name that is already taken; returns true if it was free.
    fn claim(&mut self, name: &ast::Ident, scope: Option<&Scope>) -> bool {
        let taken = self
            .globals
            .get(&name.name)
            .map(|(sym, span)| (describe(*sym), *span))
            .or_else(|| {
                let scope = scope?;
                if let Some((_, span)) = scope.local(&name.name) {
                    return Some(("a `let` value", span));
                }
                if let Some(sf) = scope.scan_frame(&name.name) {
                    return Some(if sf.var.0 == name.name {
                        ("a scan's step", sf.var.1)
                    } else {
                        ("the scan's value", sf.own.1)
                    });
                }
                scope.frames.iter().find_map(|f| {
                    f.plate
                        .as_ref()
                        .filter(|p| p.0 == name.name)
                        .map(|p| ("a plate index", p.2))
                })
            });
        match taken {
            Some((what, prev)) => {
                self.error(
                    Diagnostic::new("vi::name::duplicate", format!("`{}` is defined twice", name.name))
                        .primary(name.span, "defined again here")
                        .secondary(prev, format!("first defined here, as {what}"))
                        .help("every name in a model is defined once; rename one of them"),
                );
                false
            }
            None if is_reserved(&name.name) => {
                self.error(
                    Diagnostic::new("vi::name::reserved", format!("`{}` is a built-in name", name.name))
                        .primary(name.span, "reserved")
                        .help("choose another name; built-in functions and objective quantities cannot be redefined"),
                );
                false
            }
            None => true,
        }
    }

    fn undefined(&mut self, name: &str, span: Span, scope: &Scope) {
        if let Some(p) = self.plates.iter().find(|p| p.var == name) {
            let pspan = p.span;
            self.error(
                Diagnostic::new(
                    "vi::plate::outside",
                    format!("plate index `{name}` is used outside its loop"),
                )
                .primary(span, "outside the plate")
                .secondary(pspan, format!("`{name}` is only defined inside this loop"))
                .help("move the statement into the loop, or index the whole array without the plate"),
            );
            return;
        }
        let mut candidates: Vec<&str> = self.globals.keys().map(String::as_str).collect();
        candidates.extend(scope.local_names());
        candidates.extend(self.dims.keys().map(String::as_str));
        let mut d = Diagnostic::new("vi::name::undefined", format!("`{name}` is not defined"))
            .primary(span, "not defined");
        if let Some(s) = did_you_mean(name, candidates) {
            d = d.help(format!("did you mean `{s}`?"));
        } else if scope.program == Program::Guide {
            d = d.help("the guide sees data, consts, params, nets and the latents it has already drawn");
        } else {
            d = d.help("declare it before this line (`data`, `const`, `param`, `let`, or draw it with `~`)");
        }
        self.error(d);
    }

    // ------------------------------------------------------------------ statements

    fn stmt(&mut self, stmt: &Stmt, scope: &mut Scope) {
        match stmt {
            Stmt::Error(_) => {}
            Stmt::Let { name, value, .. } => {
                let free = self.claim(name, Some(scope));
                let id = match &value.kind {
                    ast::ExprKind::Scan(sc) if free => self.scan(name, sc, scope),
                    _ => self.expr(value, scope),
                };
                match id {
                    Some(id) if free => {
                        if scope.program == Program::Model {
                            self.lets.push((name.name.clone(), id, name.span));
                        }
                        let frame = scope.frames.last_mut().expect("a scope has a frame");
                        frame.lets.push((name.name.clone(), id, name.span));
                    }
                    _ => {
                        self.poisoned.insert(name.name.clone());
                    }
                }
            }
            Stmt::For(f) => self.for_loop(f, scope),
            Stmt::Sample { target, dist, span } => self.sample(target, dist, *span, scope),
            Stmt::Term { name, value, span } => self.term(name, value, *span, scope),
            Stmt::Target { value, span } => self.target_term(value, *span, scope),
        }
    }

    fn for_loop(&mut self, f: &ast::ForLoop, scope: &mut Scope) {
        let Some((start, size)) = self.plate_range(f) else {
            return;
        };
        let batch = match &f.batch {
            None => None,
            Some(ast::BatchSpec { size: None, span }) => {
                self.error(
                    Diagnostic::new("vi::plate::batch_size", "a batched plate needs a batch size")
                        .primary(*span, "no size given")
                        .help(format!(
                            "write `batch M` with a whole number, e.g. `for {} in 1..{} batch 100`",
                            f.var.name, size
                        )),
                );
                return;
            }
            Some(ast::BatchSpec { size: Some(e), .. }) => {
                let Some(m) = self.const_count(e, "a batch size") else {
                    return;
                };
                if m == 0 {
                    self.error(
                        Diagnostic::new("vi::plate::batch_size", "a batch size must be at least 1")
                            .primary(e.span, "zero")
                            .help("use a batch size between 1 and the plate's size"),
                    );
                    return;
                }
                if let Some(n) = size.value() {
                    if m > n {
                        self.error(
                            Diagnostic::new(
                                "vi::plate::batch_size",
                                format!("batch {m} is larger than the plate ({size})"),
                            )
                            .primary(e.span, "too large")
                            .secondary(f.to.span, format!("the plate has {n} members"))
                            .help(
                                "a minibatch is a subset of the plate: use at most its size, or drop `batch`",
                            ),
                        );
                        return;
                    }
                }
                Some(m)
            }
        };
        let parent = scope.plates().last().copied();
        let plate = match scope.program {
            Program::Guide => match self.guide_plate(f, &size, &start, batch, parent) {
                Some(p) => p,
                None => return,
            },
            _ => {
                if !self.claim(&f.var, Some(scope)) {
                    return;
                }
                self.model_plate(f, size, start, batch, parent)
            }
        };
        scope.frames.push(Frame {
            lets: Vec::new(),
            plate: Some((f.var.name.clone(), plate, f.var.span)),
            scan: None,
        });
        for s in &f.body.stmts {
            self.stmt(s, scope);
        }
        scope.frames.pop();
    }

    /// A model plate; loops with the same variable, size and parent are the same plate.
    fn model_plate(
        &mut self,
        f: &ast::ForLoop,
        size: Dim,
        start: Dim,
        batch: Option<usize>,
        parent: Option<PlateId>,
    ) -> PlateId {
        if let Some(k) = self.plates.iter().position(|p| {
            p.var == f.var.name && p.size.same(&size) && p.start.same(&start) && p.parent == parent
        }) {
            if self.plates[k].batch != batch {
                let prev = self.plates[k].span;
                self.error(
                    Diagnostic::new(
                        "vi::plate::batch_mismatch",
                        format!("plate `{}` is batched differently", f.var.name),
                    )
                    .primary(f.span.to(f.body.span), "this loop")
                    .secondary(prev, "an earlier loop over the same plate")
                    .help("every loop over one plate must say the same `batch M` (or none)"),
                );
            }
            return PlateId(k as u32);
        }
        self.plates.push(Plate {
            var: f.var.name.clone(),
            size,
            start,
            batch,
            parent,
            span: Span::new(f.span.start, f.body.span.start),
        });
        PlateId((self.plates.len() - 1) as u32)
    }

    /// The guide's loops are the model's plates, found by variable and size.
    fn guide_plate(
        &mut self,
        f: &ast::ForLoop,
        size: &Dim,
        start: &Dim,
        batch: Option<usize>,
        parent: Option<PlateId>,
    ) -> Option<PlateId> {
        let found = self.plates.iter().position(|p| {
            p.var == f.var.name && p.size.same(size) && p.start.same(start) && p.parent == parent
        });
        let Some(k) = found else {
            self.error(
                Diagnostic::new(
                    "vi::guide::plate",
                    format!("the model has no plate `for {} in 1..{size}` here", f.var.name),
                )
                .primary(
                    Span::new(f.span.start, f.body.span.start),
                    "no matching model plate",
                )
                .help("the guide's loops must repeat the model's: same variable, same size, same nesting"),
            );
            return None;
        };
        if batch.is_some() && batch != self.plates[k].batch {
            self.error(
                Diagnostic::new(
                    "vi::plate::batch_mismatch",
                    "the guide batches this plate differently",
                )
                .primary(Span::new(f.span.start, f.body.span.start), "here")
                .secondary(self.plates[k].span, "the model's plate")
                .help("leave `batch` out of the guide: it follows the model's"),
            );
        }
        Some(PlateId(k as u32))
    }

    fn term(&mut self, name: &ast::Ident, value: &ast::Expr, span: Span, scope: &mut Scope) {
        if scope.program != Program::Model {
            self.error(
                Diagnostic::new("vi::term::place", "`term` belongs in the model")
                    .primary(span, "inside the guide")
                    .help("define terms in the model; the guide only draws latents"),
            );
            return;
        }
        let free = self.claim(name, Some(scope));
        let Some(v) = self.expr(value, scope) else { return };
        if free {
            self.terms.push(Term {
                name: name.name.clone(),
                value: v,
                plates: scope.plates(),
                span,
            });
            let id = TermId((self.terms.len() - 1) as u32);
            self.globals
                .insert(name.name.clone(), (Symbol::Term(id), name.span));
        }
    }

    /// Evaluate `e` as a constant whole number (batch sizes, layer indices).
    fn const_count(&mut self, e: &ast::Expr, what: &str) -> Option<usize> {
        let scope = Scope::new(Program::Const);
        let id = self.expr(e, &scope)?;
        match self.constant(id) {
            Some(v) if v >= 0.0 && v.fract() == 0.0 && v < 1e12 => Some(v as usize),
            _ => {
                self.error(
                    Diagnostic::new(
                        "vi::type::not_constant",
                        format!("{what} must be a constant whole number"),
                    )
                    .primary(e.span, "not a constant whole number")
                    .help("use a number or a `const`"),
                );
                None
            }
        }
    }

    /// The value of a node if it is a scalar constant.
    fn constant(&self, id: NodeId) -> Option<f64> {
        crate::limits::deep(|| self.constant_at_depth(id))
    }

    fn constant_at_depth(&self, id: NodeId) -> Option<f64> {
        let node = &self.nodes[id.index()];
        if !node.ty.shape.is_empty() || !node.ty.plates.is_empty() {
            return None;
        }
        match &node.op {
            Op::Const(v) => Some(*v),
            Op::Map(f, a) => Some(f.apply(self.constant(*a)?)),
            Op::Zip(f, a, b) => Some(f.apply(self.constant(*a)?, self.constant(*b)?)),
            Op::DimValue(d) => d.value().map(|v| v as f64),
            _ => None,
        }
    }
}

fn describe(sym: Symbol) -> &'static str {
    match sym {
        Symbol::Data(_) => "data",
        Symbol::Const(_) => "a const",
        Symbol::Param(_) => "a param",
        Symbol::Net(_) => "a net",
        Symbol::Latent(_) => "a latent variable",
        Symbol::Term(_) => "a term",
    }
}

/// Names that mean something built in: functions, and the objective's quantities.
fn is_reserved(name: &str) -> bool {
    expr::is_builtin_function(name) || matches!(name, "elbo" | "loglik" | "kl" | "guide")
}

/// The element type of values in a domain.
fn elem_of(domain: Domain, bound: Option<Dim>) -> Elem {
    match (domain, bound) {
        (Domain::Category, Some(k)) => Elem::Index(k),
        (d, _) if d.is_discrete() => Elem::Int,
        _ => Elem::Real,
    }
}
