//! Expressions: names, arithmetic, indexing, built-in functions and network calls.

use super::{Checker, Program, Scope, Symbol};
use crate::diag::{did_you_mean, Diagnostic};
use crate::dist::Family;
use crate::graph::NodeId;
use crate::graph::{Dim, Elem, MapFn, Op, PlateId, Quantity, ReduceFn, ShapeDisplay, Ty, ZipFn};
use crate::syntax::ast::{self, Arg, BinOp, ExprKind, IndexArg};
use crate::syntax::Span;

/// Built-in functions: name, and how many arguments (`None`: one or more).
const FUNCTIONS: &[(&str, Option<usize>)] = &[
    ("exp", Some(1)),
    ("log", Some(1)),
    ("log1p", Some(1)),
    ("expm1", Some(1)),
    ("log1m", Some(1)),
    ("sqrt", Some(1)),
    ("square", Some(1)),
    ("abs", Some(1)),
    ("sigmoid", Some(1)),
    ("logit", Some(1)),
    ("tanh", Some(1)),
    ("relu", Some(1)),
    ("softplus", Some(1)),
    ("lgamma", Some(1)),
    ("digamma", Some(1)),
    ("pow", Some(2)),
    ("min", Some(2)),
    ("max", Some(2)),
    ("sum", Some(1)),
    ("mean", Some(1)),
    ("logsumexp", Some(1)),
    ("softmax", Some(1)),
    ("log_softmax", Some(1)),
    ("dot", Some(2)),
    ("matmul", Some(2)),
    ("transpose", Some(1)),
    ("diag_pre_multiply", Some(2)),
    ("diag_post_multiply", Some(2)),
    ("fill", None),
    ("zeros", None),
    ("ones", None),
    ("anneal", Some(3)),
    ("where", Some(3)),
    ("ifelse", Some(3)),
    ("cumsum", Some(1)),
];

pub(super) fn is_builtin_function(name: &str) -> bool {
    FUNCTIONS.iter().any(|(n, _)| *n == name)
}

pub(super) fn builtin_names() -> impl Iterator<Item = &'static str> {
    FUNCTIONS.iter().map(|(n, _)| *n)
}

fn map_fn(name: &str) -> Option<MapFn> {
    MapFn::ALL
        .into_iter()
        .find(|f| f.name() == name && *f != MapFn::Neg)
}

impl Checker<'_> {
    pub(super) fn expr(&mut self, e: &ast::Expr, scope: &Scope) -> Option<NodeId> {
        crate::limits::deep(|| self.expr_at_depth(e, scope))
    }

    fn expr_at_depth(&mut self, e: &ast::Expr, scope: &Scope) -> Option<NodeId> {
        match &e.kind {
            ExprKind::Num { value, is_int } => {
                let elem = if *is_int { Elem::Int } else { Elem::Real };
                Some(self.add(
                    Op::Const(*value),
                    Ty {
                        plates: vec![],
                        shape: vec![],
                        elem,
                    },
                    e.span,
                ))
            }
            ExprKind::Str(_) => {
                self.error(
                    Diagnostic::new("vi::type::string", "a string is not a value")
                        .primary(e.span, "string")
                        .help("strings only appear in `from \"file\"` and in fit settings"),
                );
                None
            }
            ExprKind::Name(n) => self.name(n, e.span, scope),
            ExprKind::Neg(a) => {
                let a = self.expr(a, scope)?;
                let ty = self.ty(a).clone();
                Some(self.add(Op::Map(MapFn::Neg, a), ty, e.span))
            }
            ExprKind::Binary(op, a, b) => {
                let (a, b) = (self.expr(a, scope), self.expr(b, scope));
                let (a, b) = (a?, b?);
                match op {
                    BinOp::MatMul => self.matmul(a, b, e.span),
                    BinOp::Add => self.zip(ZipFn::Add, a, b, e.span),
                    BinOp::Sub => self.zip(ZipFn::Sub, a, b, e.span),
                    BinOp::Mul => self.zip(ZipFn::Mul, a, b, e.span),
                    BinOp::Div => self.zip(ZipFn::Div, a, b, e.span),
                    BinOp::Pow => self.zip(ZipFn::Pow, a, b, e.span),
                    BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                        self.compare(*op, a, b, e.span)
                    }
                }
            }
            ExprKind::Call { func, args } => self.call(func, args, e.span, scope),
            ExprKind::Index { base, indices } => self.index(base, indices, e.span, scope),
            ExprKind::Vector(items) => self.vector(items, e.span, scope),
            ExprKind::Scan(sc) => {
                self.error(
                    Diagnostic::new("vi::scan::place", "a scan is the whole value of a `let`")
                        .primary(sc.span, "here")
                        .help("write `let v = scan t in 2..T from FIRST { ... }`, then use `v`"),
                );
                None
            }
            ExprKind::Draw(call) => {
                if matches!(scope.program, Program::Objective | Program::Const) {
                    self.error(
                        Diagnostic::new("vi::objective::draw", "objectives cannot draw")
                            .primary(e.span, "a random draw")
                            .help("draw in the model, and name the quantity with `term`"),
                    );
                    return None;
                }
                let app = self.dist_call(call, scope)?;
                if app.trunc.is_some() {
                    self.error(
                        Diagnostic::new("vi::dist::truncation", "`draw` cannot truncate")
                            .primary(app.span, "a truncated draw")
                            .help("truncate a latent's prior or a likelihood with `~ Dist(...) T[lo, hi]`"),
                    );
                    return None;
                }
                if app.family.is_improper() {
                    self.error(
                        Diagnostic::new(
                            "vi::dist::improper_draw",
                            format!("cannot draw from {}", app.family),
                        )
                        .primary(app.span, "an improper density")
                        .help(format!(
                            "{} is a prior for a latent (`beta ~ {}()`); draw from a proper distribution",
                            app.family, app.family
                        )),
                    );
                    return None;
                }
                let ty = Ty::real(scope.plates(), app.value_shape());
                let ty = Ty {
                    elem: super::elem_of(app.support(), None),
                    ..ty
                };
                Some(self.add(Op::Draw(Box::new(app)), ty, e.span))
            }
        }
    }

    fn name(&mut self, n: &str, span: Span, scope: &Scope) -> Option<NodeId> {
        if let Some((id, _)) = scope.local(n) {
            return Some(id);
        }
        if self.poisoned.contains(n) {
            // Its definition already failed and was reported; say nothing more.
            return None;
        }
        if let Some(sf) = scope.scan_frame(n).cloned() {
            let t = &sf.var.0;
            if sf.var.0 == n && self.index_depth > 0 {
                return Some(sf.index);
            }
            let (code, msg, help) = if sf.var.0 == n {
                (
                    "vi::scan::index_value",
                    format!("scan step `{n}` is not a value"),
                    format!("a scan's step only indexes arrays, as in `y[{n}]` or `y[{n} - 1]`"),
                )
            } else {
                (
                    "vi::scan::self",
                    format!("inside its scan, `{n}` can only be read at `{t} - 1`"),
                    format!("the body computes member `{t}` from the member before, `{n}[{t} - 1]`"),
                )
            };
            self.error(Diagnostic::new(code, msg).primary(span, "here").help(help));
            return None;
        }
        if scope.plate_var(n).is_some() {
            self.error(
                Diagnostic::new(
                    "vi::plate::index_value",
                    format!("plate index `{n}` is not a value"),
                )
                .primary(span, "used as a number")
                .help(format!("a plate index only indexes arrays, as in `x[{n}]`")),
            );
            return None;
        }
        if scope.program == Program::Objective {
            return self.objective_name(n, span);
        }
        if scope.program == Program::Const {
            if let Some((Symbol::Const(k), _)) = self.globals.get(n).copied() {
                return Some(self.const_node(k, span));
            }
            let mut d = Diagnostic::new("vi::const::not_constant", format!("`{n}` is not a constant"))
                .primary(span, "not a const");
            d = if self.globals.contains_key(n) || self.dims.contains_key(n) {
                d.help("constants are computed from numbers and other consts only")
            } else {
                match did_you_mean(n, self.consts.iter().map(|c| c.name.as_str())) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help("constants are computed from numbers and other consts declared above"),
                }
            };
            self.error(d);
            return None;
        }
        let Some((sym, _)) = self.globals.get(n).copied() else {
            if self.dims.contains_key(n) {
                let d = self.dim_named(n);
                return Some(self.add(
                    Op::DimValue(d),
                    Ty {
                        plates: vec![],
                        shape: vec![],
                        elem: Elem::Int,
                    },
                    span,
                ));
            }
            if Family::from_name(n).is_some() {
                self.error(
                    Diagnostic::new(
                        "vi::name::distribution_value",
                        format!("`{n}` is a distribution, not a value"),
                    )
                    .primary(span, "a distribution")
                    .help(format!(
                        "draw from it: `x ~ {n}(...)`, or `draw {n}(...)` for a fresh sample"
                    )),
                );
                return None;
            }
            self.undefined(n, span, scope);
            return None;
        };
        match sym {
            Symbol::Data(id) => {
                let d = &self.data[id.index()];
                let ty = Ty {
                    plates: vec![],
                    shape: d.shape.clone(),
                    elem: super::elem_of(d.domain, None),
                };
                Some(self.add(Op::Data(id), ty, span))
            }
            Symbol::Const(k) => Some(self.const_node(k, span)),
            Symbol::Param(id) => {
                let p = &self.params[id.index()];
                let ty = Ty::real(vec![], p.shape.clone());
                Some(self.add(Op::Param(id), ty, span))
            }
            Symbol::Net(_) => {
                self.error(
                    Diagnostic::new("vi::net::not_called", format!("`{n}` is a network; call it"))
                        .primary(span, "a net")
                        .help(format!("apply it to an input: `{n}(x)`")),
                );
                None
            }
            Symbol::Latent(id) => {
                if scope.program == Program::Guide && !self.guide_drawn.contains_key(&id) {
                    self.error(
                        Diagnostic::new(
                            "vi::guide::order",
                            format!("the guide uses `{n}` before drawing it"),
                        )
                        .primary(span, "not drawn in the guide yet")
                        .help(format!("draw `{n}` earlier in the guide, or do not use it there")),
                    );
                    return None;
                }
                let node = self.latent_node(id, span);
                self.unplate(node, span)
            }
            Symbol::Term(_) => {
                self.error(
                    Diagnostic::new("vi::term::value", format!("term `{n}` is not a value"))
                        .primary(span, "a term")
                        .help("terms are summed over their plates and only appear in `objective` lines"),
                );
                None
            }
        }
    }

    /// Names in an objective: the built-in quantities, terms and consts.
    fn objective_name(&mut self, n: &str, span: Span) -> Option<NodeId> {
        let q = match n {
            "elbo" => Some(Quantity::Elbo),
            "loglik" => Some(Quantity::LogLik),
            "kl" => Some(Quantity::Kl),
            _ => match self.globals.get(n) {
                Some((Symbol::Term(t), _)) => Some(Quantity::Term(*t)),
                Some((Symbol::Const(k), _)) => return Some(self.const_node(*k, span)),
                _ => None,
            },
        };
        match q {
            Some(q) => Some(self.add(Op::Quantity(q), Ty::scalar(), span)),
            None if self.globals.contains_key(n) || self.dims.contains_key(n) => {
                self.error(
                    Diagnostic::new("vi::objective::name", format!("`{n}` cannot appear in an objective"))
                        .primary(span, "not an objective quantity")
                        .help("objectives combine `elbo`, `loglik`, `kl`, `term`s and consts; define a `term` for anything else"),
                );
                None
            }
            None => {
                let mut cands: Vec<&str> = vec!["elbo", "loglik", "kl"];
                cands.extend(self.terms.iter().map(|t| t.name.as_str()));
                let mut d = Diagnostic::new("vi::name::undefined", format!("`{n}` is not defined"))
                    .primary(span, "not defined");
                d = match did_you_mean(n, cands) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help("objectives combine `elbo`, `loglik`, `kl`, `term`s and consts"),
                };
                self.error(d);
                None
            }
        }
    }

    pub(super) fn const_node(&mut self, k: usize, span: Span) -> NodeId {
        let c = &self.consts[k];
        let elem = if c.is_int { Elem::Int } else { Elem::Real };
        if c.shape.is_empty() {
            let v = c.values[0];
            self.add(
                Op::Const(v),
                Ty {
                    plates: vec![],
                    shape: vec![],
                    elem,
                },
                span,
            )
        } else {
            let shape = c.shape.iter().map(|&d| Dim::Known(d)).collect();
            let values = c.values.clone();
            self.add(
                Op::Literal(values),
                Ty {
                    plates: vec![],
                    shape,
                    elem,
                },
                span,
            )
        }
    }

    /// A latent's value, varying along the plates it was drawn in.
    pub(super) fn latent_node(&mut self, id: crate::graph::LatentId, span: Span) -> NodeId {
        let l = &self.latents[id.index()];
        let bound = match l.support {
            crate::dist::Domain::Category => self.sites[l.site].dist.args.first().map(|a| {
                let shape = &self.nodes[a.index()].ty.shape;
                shape.last().cloned().unwrap_or(Dim::Known(1))
            }),
            _ => None,
        };
        let ty = Ty {
            plates: l.plates.clone(),
            shape: l.shape.clone(),
            elem: super::elem_of(l.support, bound),
        };
        self.add(Op::Latent(id), ty, span)
    }

    /// A plate-drawn value as a whole array: its plates become leading axes.
    fn unplate(&mut self, node: NodeId, span: Span) -> Option<NodeId> {
        let ty = self.ty(node).clone();
        if ty.plates.is_empty() {
            return Some(node);
        }
        if let Some(p) = ty.plates.iter().find(|p| self.plates[p.index()].batch.is_some()) {
            let plate = &self.plates[p.index()];
            let (var, pspan) = (plate.var.clone(), plate.span);
            self.error(
                Diagnostic::new(
                    "vi::plate::batched_whole",
                    "a variable of a batched plate cannot be used whole",
                )
                .primary(span, "the whole array")
                .secondary(pspan, "this plate is subsampled each step")
                .help(format!(
                    "index it with the plate's variable inside the loop, e.g. `[{var}]`"
                )),
            );
            return None;
        }
        let mut shape: Vec<Dim> = ty
            .plates
            .iter()
            .map(|p| self.plates[p.index()].size.clone())
            .collect();
        shape.extend(ty.shape);
        Some(self.add(
            Op::Unplate { src: node },
            Ty {
                plates: vec![],
                shape,
                elem: ty.elem,
            },
            span,
        ))
    }

    // ------------------------------------------------------------------ arithmetic

    pub(super) fn zip(&mut self, f: ZipFn, a: NodeId, b: NodeId, span: Span) -> Option<NodeId> {
        let (plates, shape) = self.broadcast(a, b, span, f.symbol())?;
        if f == ZipFn::Pow {
            self.check_pow(a, b, span);
        }
        let int = self.ty(a).elem.is_int()
            && self.ty(b).elem.is_int()
            && matches!(f, ZipFn::Add | ZipFn::Sub | ZipFn::Mul | ZipFn::Min | ZipFn::Max);
        let elem = if int { Elem::Int } else { Elem::Real };
        Some(self.add(Op::Zip(f, a, b), Ty { plates, shape, elem }, span))
    }

    fn vector(&mut self, items: &[ast::Expr], span: Span, scope: &Scope) -> Option<NodeId> {
        if items.is_empty() {
            self.error(
                Diagnostic::new("vi::type::empty_vector", "an empty vector")
                    .primary(span, "no elements")
                    .help("write at least one element, or use `zeros(K)`"),
            );
            return None;
        }
        let mut ids = Vec::new();
        for it in items {
            ids.push(self.expr(it, scope));
        }
        let ids: Vec<NodeId> = ids.into_iter().collect::<Option<_>>()?;
        let first = self.ty(ids[0]).shape.clone();
        for &id in &ids[1..] {
            if !same_shape(&self.ty(id).shape, &first) {
                self.error(
                    Diagnostic::new("vi::shape::mismatch", "vector elements have different shapes")
                        .primary(
                            self.node_span(id),
                            format!("shape {}", ShapeDisplay(&self.ty(id).shape)),
                        )
                        .secondary(self.node_span(ids[0]), format!("shape {}", ShapeDisplay(&first)))
                        .help("every element of `[...]` must have the same shape"),
                );
                return None;
            }
        }
        let mut shape = vec![Dim::Known(ids.len())];
        shape.extend(first);
        let plates = ids.iter().fold(Vec::new(), |acc, id| {
            self.union_plates(&acc, &self.ty(*id).plates.clone())
        });
        let int = ids.iter().all(|id| self.ty(*id).elem.is_int());
        let elem = if int { Elem::Int } else { Elem::Real };
        let consts: Option<Vec<f64>> = ids.iter().map(|id| self.constant(*id)).collect();
        let op = match consts {
            Some(values) if shape.len() == 1 => Op::Literal(values),
            _ => Op::Stack(ids),
        };
        Some(self.add(op, Ty { plates, shape, elem }, span))
    }

    // ------------------------------------------------------------------ calls

    fn call(&mut self, func: &ast::Ident, args: &[Arg], span: Span, scope: &Scope) -> Option<NodeId> {
        if let Some((Symbol::Net(id), _)) = self.globals.get(&func.name).copied() {
            return self.net_call(id, args, span, scope);
        }
        let Some((_, arity)) = FUNCTIONS.iter().find(|(n, _)| *n == func.name).copied() else {
            let mut d = Diagnostic::new(
                "vi::name::unknown_function",
                format!("unknown function `{}`", func.name),
            )
            .primary(func.span, "not a function");
            if Family::from_name(&func.name).is_some() {
                d = d.help(format!(
                    "`{}` is a distribution: draw from it with `~`, or `draw {}(...)` inside an expression",
                    func.name, func.name
                ));
            } else if let Some(s) = did_you_mean(
                &func.name,
                FUNCTIONS
                    .iter()
                    .map(|(n, _)| *n)
                    .chain(self.nets.iter().map(|n| n.name.as_str())),
            ) {
                d = d.help(format!("did you mean `{s}`?"));
            } else {
                d = d.help("functions are exp, log, log1p, sqrt, sigmoid, tanh, softplus, sum, dot, fill, … (see the language reference)");
            }
            self.error(d);
            return None;
        };
        if let Some(a) = args.iter().find(|a| a.name.is_some()) {
            self.error(
                Diagnostic::new(
                    "vi::call::named_argument",
                    format!("`{}` takes no named arguments", func.name),
                )
                .primary(a.span, "named argument")
                .help("pass the arguments by position"),
            );
            return None;
        }
        if matches!(func.name.as_str(), "sum" | "mean" | "logsumexp") && args.len() == 2 {
            let src = self.expr(&args[0].value, scope)?;
            return self.reduce_axis(&func.name, src, &args[1], span);
        }
        match arity {
            Some(n) if args.len() != n => {
                self.error(
                    Diagnostic::new(
                        "vi::call::arity",
                        format!(
                            "`{}` takes {n} argument{}, found {}",
                            func.name,
                            if n == 1 { "" } else { "s" },
                            args.len()
                        ),
                    )
                    .primary(
                        span,
                        format!(
                            "{} argument{}",
                            args.len(),
                            if args.len() == 1 { "" } else { "s" }
                        ),
                    )
                    .help(signature(&func.name)),
                );
                return None;
            }
            None if args.is_empty() || (func.name == "fill" && args.len() < 2) => {
                self.error(
                    Diagnostic::new("vi::call::arity", format!("`{}` needs its shape", func.name))
                        .primary(span, "too few arguments")
                        .help(signature(&func.name)),
                );
                return None;
            }
            _ => {}
        }
        let name = func.name.as_str();
        if matches!(name, "fill" | "zeros" | "ones") {
            return self.fill(name, args, span, scope);
        }
        if name == "anneal" {
            return self.anneal(args, span, scope);
        }
        let mut ids = Vec::new();
        for a in args {
            ids.push(self.expr(&a.value, scope));
        }
        let ids: Vec<NodeId> = ids.into_iter().collect::<Option<_>>()?;
        if let Some(f) = map_fn(name) {
            let ty = Ty {
                elem: if matches!(f, MapFn::Square | MapFn::Abs | MapFn::Relu) {
                    self.ty(ids[0]).elem.clone()
                } else {
                    Elem::Real
                },
                ..self.ty(ids[0]).clone()
            };
            let ty = Ty {
                elem: if ty.elem.is_int() { Elem::Int } else { Elem::Real },
                ..ty
            };
            return Some(self.add(Op::Map(f, ids[0]), ty, span));
        }
        match name {
            "pow" => self.zip(ZipFn::Pow, ids[0], ids[1], span),
            "min" => self.zip(ZipFn::Min, ids[0], ids[1], span),
            "max" => self.zip(ZipFn::Max, ids[0], ids[1], span),
            "dot" | "matmul" => self.matmul(ids[0], ids[1], span),
            "sum" | "mean" | "logsumexp" => {
                let f = match name {
                    "sum" => ReduceFn::Sum,
                    "mean" => ReduceFn::Mean,
                    _ => ReduceFn::LogSumExp,
                };
                let plates = self.ty(ids[0]).plates.clone();
                Some(self.add(Op::Reduce(f, ids[0]), Ty::real(plates, vec![]), span))
            }
            "softmax" | "log_softmax" | "transpose" => {
                let ty = self.ty(ids[0]).clone();
                let need = if name == "transpose" { 2 } else { 1 };
                if ty.shape.len() < need {
                    self.error(
                        Diagnostic::new("vi::shape::rank", format!("`{name}` needs at least {need} axes"))
                            .primary(
                                self.node_span(ids[0]),
                                format!("shape {}", ShapeDisplay(&ty.shape)),
                            )
                            .help(signature(name)),
                    );
                    return None;
                }
                if name == "transpose" {
                    let mut shape = ty.shape.clone();
                    let n = shape.len();
                    shape.swap(n - 1, n - 2);
                    Some(self.add(Op::Transpose(ids[0]), Ty::real(ty.plates, shape), span))
                } else {
                    let op = Op::Softmax {
                        src: ids[0],
                        log: name == "log_softmax",
                    };
                    Some(self.add(op, Ty::real(ty.plates, ty.shape), span))
                }
            }
            "where" | "ifelse" => self.where_call(&ids, span),
            "cumsum" => self.cumsum(ids[0], span),
            "diag_pre_multiply" => self.diag_multiply(ids[0], ids[1], true, span),
            "diag_post_multiply" => self.diag_multiply(ids[1], ids[0], false, span),
            _ => unreachable!("every function in FUNCTIONS is handled"),
        }
    }

    /// `fill(value, dims...)`, `zeros(dims...)`, `ones(dims...)`.
    fn fill(&mut self, name: &str, args: &[Arg], span: Span, scope: &Scope) -> Option<NodeId> {
        let (value, dims) = if name == "fill" {
            let v = self.expr(&args[0].value, scope)?;
            if !self.ty(v).shape.is_empty() {
                self.error(
                    Diagnostic::new("vi::shape::rank", "`fill` repeats a scalar")
                        .primary(args[0].span, format!("shape {}", ShapeDisplay(&self.ty(v).shape)))
                        .help(signature("fill")),
                );
                return None;
            }
            (v, &args[1..])
        } else {
            let c = if name == "zeros" { 0.0 } else { 1.0 };
            (self.add(Op::Const(c), Ty::scalar(), span), args)
        };
        let mut shape = Vec::new();
        for a in dims {
            shape.push(self.dim(&a.value));
        }
        let shape: Vec<Dim> = shape.into_iter().collect::<Option<_>>()?;
        let plates = self.ty(value).plates.clone();
        Some(self.add(
            Op::Fill {
                value,
                shape: shape.clone(),
            },
            Ty::real(plates, shape),
            span,
        ))
    }

    /// `anneal(from, to, steps)`: all constants.
    fn anneal(&mut self, args: &[Arg], span: Span, scope: &Scope) -> Option<NodeId> {
        let mut vals = Vec::new();
        for a in args {
            let id = self.expr(&a.value, scope)?;
            match self.constant(id) {
                Some(v) => vals.push(v),
                None => {
                    self.error(
                        Diagnostic::new("vi::type::not_constant", "`anneal` takes constants")
                            .primary(a.span, "not a constant")
                            .help(signature("anneal")),
                    );
                    return None;
                }
            }
        }
        if vals[2] <= 0.0 {
            self.error(
                Diagnostic::new(
                    "vi::call::bad_argument",
                    "`anneal` needs a positive number of steps",
                )
                .primary(args[2].span, "not positive")
                .help(signature("anneal")),
            );
            return None;
        }
        let op = Op::Anneal {
            from: vals[0],
            to: vals[1],
            steps: vals[2],
        };
        Some(self.add(op, Ty::scalar(), span))
    }

    fn net_call(
        &mut self,
        id: crate::graph::NetId,
        args: &[Arg],
        span: Span,
        scope: &Scope,
    ) -> Option<NodeId> {
        let net = self.nets[id.index()].clone();
        let mut input = None;
        let mut layer = None;
        for a in args {
            match &a.name {
                None if input.is_none() => input = Some(a),
                None => {
                    self.error(
                        Diagnostic::new("vi::call::arity", format!("net `{}` takes one input", net.name))
                            .primary(a.span, "extra argument")
                            .help(format!(
                                "call it as `{}(x)`, or `{}(x, layer = k)` for the k-th layer's output",
                                net.name, net.name
                            )),
                    );
                    return None;
                }
                Some(n) if n.name == "layer" => layer = Some(a),
                Some(n) => {
                    self.error(
                        Diagnostic::new(
                            "vi::call::unknown_argument",
                            format!("net `{}` has no argument `{}`", net.name, n.name),
                        )
                        .primary(n.span, "unknown argument")
                        .help("a net call takes its input and, optionally, `layer = k`"),
                    );
                    return None;
                }
            }
        }
        let Some(input) = input else {
            self.error(
                Diagnostic::new("vi::call::arity", format!("net `{}` needs an input", net.name))
                    .primary(span, "no input")
                    .help(format!("call it as `{}(x)`", net.name)),
            );
            return None;
        };
        let x = self.expr(&input.value, scope)?;
        let layers = net.widths.len() - 1;
        let layer = match layer {
            None => None,
            Some(a) => {
                let k = self.const_count(&a.value, "a layer number")?;
                if k == 0 || k > layers {
                    self.error(
                        Diagnostic::new(
                            "vi::call::bad_argument",
                            format!("net `{}` has layers 1 to {layers}", net.name),
                        )
                        .primary(a.value.span, format!("layer {k}"))
                        .secondary(net.span, "declared here")
                        .help("`layer = k` takes the output of the k-th layer, after its activation"),
                    );
                    return None;
                }
                Some(k)
            }
        };
        let ty = self.ty(x).clone();
        let ok = ty.shape.last().is_some_and(|d| d.same(&net.widths[0]));
        if !ok {
            self.error(
                Diagnostic::new(
                    "vi::shape::net_input",
                    format!(
                        "net `{}` takes inputs of width {}, found shape {}",
                        net.name,
                        net.widths[0],
                        ShapeDisplay(&ty.shape)
                    ),
                )
                .primary(input.span, format!("shape {}", ShapeDisplay(&ty.shape)))
                .secondary(net.span, format!("input width {}", net.widths[0]))
                .help(
                    "a net maps the last axis of its input; index the data by its plate first, e.g. `x[n]`",
                ),
            );
            return None;
        }
        let mut shape = ty.shape[..ty.shape.len() - 1].to_vec();
        shape.push(net.widths[layer.unwrap_or(layers)].clone());
        Some(self.add(
            Op::Net {
                net: id,
                input: x,
                layer,
            },
            Ty::real(ty.plates, shape),
            span,
        ))
    }

    // ------------------------------------------------------------------ indexing

    fn index(&mut self, base: &ast::Expr, indices: &[IndexArg], span: Span, scope: &Scope) -> Option<NodeId> {
        // `v[t - 1]` inside v's own scan is the member before.
        if let Some(found) = self.scan_self_index(base, indices, scope) {
            let (prev, used) = found.ok()?;
            return self.index_rest(prev, &indices[used..], span, scope);
        }
        // `z[n]` inside z's own plate is the latent itself, not a view of a whole array.
        if let ExprKind::Name(n) = &base.kind {
            if let Some((Symbol::Latent(id), _)) = self.globals.get(n).copied() {
                let plates = self.latents[id.index()].plates.clone();
                let leading: Vec<Option<PlateId>> = indices
                    .iter()
                    .take(plates.len())
                    .map(|ix| match ix {
                        IndexArg::Expr(ast::Expr {
                            kind: ExprKind::Name(v),
                            ..
                        }) => scope.plate_var(v),
                        _ => None,
                    })
                    .collect();
                if !plates.is_empty()
                    && leading.len() == plates.len()
                    && leading.iter().zip(&plates).all(|(a, b)| *a == Some(*b))
                {
                    if scope.program == Program::Guide && !self.guide_drawn.contains_key(&id) {
                        self.error(
                            Diagnostic::new(
                                "vi::guide::order",
                                format!("the guide uses `{n}` before drawing it"),
                            )
                            .primary(base.span, "not drawn in the guide yet")
                            .help(format!("draw `{n}` earlier in the guide, or do not use it there")),
                        );
                        return None;
                    }
                    let node = self.latent_node(id, span);
                    return self.index_rest(node, &indices[plates.len()..], span, scope);
                }
            }
        }
        let src = self.expr(base, scope)?;
        self.index_rest(src, indices, span, scope)
    }

    /// Apply index arguments left to right: plate indices first, then integer indices and
    /// slices.
    fn index_rest(
        &mut self,
        mut src: NodeId,
        indices: &[IndexArg],
        span: Span,
        scope: &Scope,
    ) -> Option<NodeId> {
        let mut axis = 0;
        let mut k = 0;
        // Leading plate indices become one plate view, or one shift per index where a plate
        // starts later than member 1 or an index is shifted (`y[t - 1]`).
        let mut leading = Vec::new();
        while let Some(IndexArg::Expr(e)) = indices.get(k) {
            let Some(ix) = self.plate_index(e, scope) else {
                break;
            };
            leading.push(ix);
            k += 1;
        }
        if leading.iter().any(|ix| self.is_shifted(ix)) {
            for ix in &leading {
                src = if self.is_shifted(ix) {
                    self.shift(src, ix, span, scope)?
                } else {
                    self.plate_view(src, &[(ix.plate, ix.span)], span)?
                };
            }
        } else if !leading.is_empty() {
            let view: Vec<(PlateId, Span)> = leading.iter().map(|ix| (ix.plate, ix.span)).collect();
            src = self.plate_view(src, &view, span)?;
        }
        for ix in &indices[k..] {
            let shape = self.ty(src).shape.clone();
            if axis >= shape.len() {
                self.error(
                    Diagnostic::new("vi::index::too_many", "too many indices")
                        .primary(ix.span(), "no axis left to index")
                        .secondary(self.node_span(src), format!("shape {}", ShapeDisplay(&shape)))
                        .help("index at most one position per axis"),
                );
                return None;
            }
            match ix {
                IndexArg::Expr(e) => {
                    if let ExprKind::Name(v) = &e.kind {
                        if scope.plate_var(v).is_some() {
                            self.error(
                                Diagnostic::new(
                                    "vi::plate::index_order",
                                    format!("plate index `{v}` must come first"),
                                )
                                .primary(e.span, "after another index")
                                .help("plate indices take the leading axes: write them before other indices"),
                            );
                            return None;
                        }
                    }
                    self.index_depth += 1;
                    let index = self.expr(e, scope);
                    self.index_depth -= 1;
                    src = self.select(src, axis, index?, e.span, span)?;
                }
                IndexArg::Slice {
                    start,
                    end,
                    span: sspan,
                } => {
                    src = self.slice(src, axis, start.as_ref(), end.as_ref(), *sspan, span)?;
                    axis += 1;
                }
            }
        }
        Some(src)
    }

    fn plate_view(&mut self, src: NodeId, view: &[(PlateId, Span)], span: Span) -> Option<NodeId> {
        let ty = self.ty(src).clone();
        for (k, (p, vspan)) in view.iter().enumerate() {
            let plate = self.plates[p.index()].clone();
            if ty.plates.contains(p) {
                self.error(
                    Diagnostic::new(
                        "vi::plate::twice",
                        format!("`{}` is already indexed by `{}`", "this value", plate.var),
                    )
                    .primary(*vspan, "indexed again")
                    .help("a value varies along a plate once; drop this index"),
                );
                return None;
            }
            match ty.shape.get(k) {
                Some(d) if d.same(&plate.size) => {}
                Some(d) => {
                    self.error(
                        Diagnostic::new(
                            "vi::shape::plate_index",
                            format!(
                                "axis {k} has length {d}, but plate `{}` has {} members",
                                plate.var, plate.size
                            ),
                        )
                        .primary(*vspan, format!("plate over {}", plate.size))
                        .secondary(self.node_span(src), format!("shape {}", ShapeDisplay(&ty.shape)))
                        .secondary(plate.span, "the plate")
                        .help("a plate index selects along an axis of the plate's size"),
                    );
                    return None;
                }
                None => {
                    self.error(
                        Diagnostic::new("vi::index::too_many", "too many indices")
                            .primary(*vspan, "no axis left to index")
                            .secondary(self.node_span(src), format!("shape {}", ShapeDisplay(&ty.shape)))
                            .help("index at most one position per axis"),
                    );
                    return None;
                }
            }
        }
        let plates: Vec<PlateId> = view.iter().map(|(p, _)| *p).collect();
        let mut all = ty.plates.clone();
        all.extend(plates.iter().copied());
        all.sort();
        let out = Ty {
            plates: all,
            shape: ty.shape[view.len()..].to_vec(),
            elem: ty.elem,
        };
        Some(self.add(Op::PlateView { src, plates }, out, span))
    }

    fn select(
        &mut self,
        src: crate::graph::NodeId,
        axis: usize,
        index: crate::graph::NodeId,
        ispan: Span,
        span: Span,
    ) -> Option<crate::graph::NodeId> {
        let sty = self.ty(src).clone();
        let ity = self.ty(index).clone();
        let len = sty.shape[axis].clone();
        if !ity.elem.is_int() {
            self.error(
                Diagnostic::new("vi::index::not_integer", "an index must be an integer")
                    .primary(ispan, "a real value")
                    .help("index with whole numbers, integer data, or a Categorical draw"),
            );
            return None;
        }
        if let Some(k) = self.constant(index) {
            if k < 0.0 || len.value().is_some_and(|n| k >= n as f64) {
                self.error(
                    Diagnostic::new(
                        "vi::index::out_of_range",
                        format!("index {k} is out of range for an axis of length {len}"),
                    )
                    .primary(ispan, "out of range")
                    .secondary(self.node_span(src), format!("shape {}", ShapeDisplay(&sty.shape)))
                    .help(format!("indices start at 0: the valid range is 0..{len}")),
                );
                return None;
            }
        }
        if !self.check_scan_index(index, &len, ispan) {
            return None;
        }
        if let Some(d) = self.check_data_index(index, &len, src, ispan) {
            self.error(d);
            return None;
        }
        if let Elem::Index(bound) = &ity.elem {
            if let (Some(b), Some(n)) = (bound.value(), len.value()) {
                if b > n {
                    self.error(
                        Diagnostic::new(
                            "vi::index::category_range",
                            format!("this index ranges over 0..{b}, but the axis has only {n} element{}", if n == 1 { "" } else { "s" }),
                        )
                        .primary(ispan, format!("a category in 0..{bound}"))
                        .secondary(self.node_span(src), format!("shape {}", ShapeDisplay(&sty.shape)))
                        .help("the Categorical's probability vector must not be longer than the axis it indexes"),
                    );
                    return None;
                }
            }
        }
        let mut shape = sty.shape[..axis].to_vec();
        shape.extend(ity.shape.iter().cloned());
        shape.extend(sty.shape[axis + 1..].iter().cloned());
        let plates = self.union_plates(&sty.plates, &ity.plates);
        Some(self.add(
            Op::Select { src, axis, index },
            Ty {
                plates,
                shape,
                elem: sty.elem,
            },
            span,
        ))
    }

    fn slice(
        &mut self,
        src: crate::graph::NodeId,
        axis: usize,
        start: Option<&ast::Expr>,
        end: Option<&ast::Expr>,
        sspan: Span,
        span: Span,
    ) -> Option<crate::graph::NodeId> {
        let sty = self.ty(src).clone();
        let len = sty.shape[axis].clone();
        // Bounds are dimensions: numbers, consts, data dimensions (known once data are bound).
        let a = match start {
            Some(e) => self.dim(e)?,
            None => Dim::Known(0),
        };
        let b = match end {
            Some(e) => self.dim(e)?,
            None => len.clone(),
        };
        let width = match (a.value(), b.value()) {
            (Some(a), Some(b)) => {
                if a >= b || len.value().is_some_and(|n| b > n) {
                    self.error(
                        Diagnostic::new("vi::index::out_of_range", format!("slice {a}:{b} does not fit an axis of length {len}"))
                            .primary(sspan, "out of range")
                            .secondary(self.node_span(src), format!("shape {}", ShapeDisplay(&sty.shape)))
                            .help(format!("slices are zero-based and half-open: `{a}:{b}` takes {} element(s) and needs 0 <= start < end <= {len}", b.saturating_sub(a))),
                    );
                    return None;
                }
                Dim::Known(b - a)
            }
            _ if a.value() == Some(0) => b.clone(),
            _ => Dim::sym(&format!("{b} - {a}"), None),
        };
        let mut shape = sty.shape.clone();
        shape[axis] = width;
        Some(self.add(
            Op::Slice {
                src,
                axis,
                start: a,
                end: b,
            },
            Ty {
                plates: sty.plates,
                shape,
                elem: sty.elem,
            },
            span,
        ))
    }
}

pub(super) fn same_shape(a: &[Dim], b: &[Dim]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
}

/// A one-line signature for help messages.
pub(super) fn signature(name: &str) -> String {
    let s = match name {
        "pow" | "min" | "max" => format!("`{name}(a, b)` works elementwise, broadcasting"),
        "sum" | "mean" | "logsumexp" => {
            format!("`{name}(x)` reduces all of x's axes (not its plates) to a scalar; `{name}(x, axis)` one of them")
        }
        "where" | "ifelse" => {
            format!("`{name}(cond, a, b)` is a where cond is non-zero, else b (elementwise, broadcasting)")
        }
        "cumsum" => "`cumsum(x)` gives the running sums along x's last axis".into(),
        "softmax" | "log_softmax" => format!("`{name}(x)` normalises along x's last axis"),
        "dot" | "matmul" => {
            format!("`{name}(a, b)` is `a @ b`: vector·vector, matrix·vector or matrix·matrix")
        }
        "transpose" => "`transpose(m)` swaps the last two axes".into(),
        "diag_pre_multiply" => "`diag_pre_multiply(v, M)` scales M's rows by v: diag(v) @ M".into(),
        "diag_post_multiply" => "`diag_post_multiply(M, v)` scales M's columns by v: M @ diag(v)".into(),
        "fill" => "`fill(value, dims...)` repeats a scalar, e.g. `fill(1.0 / K, K)`".into(),
        "zeros" | "ones" => format!("`{name}(dims...)`, e.g. `{name}(K)` or `{name}(N, D)`"),
        "anneal" => {
            "`anneal(from, to, steps)` moves linearly from `from` to `to` over the first `steps` steps".into()
        }
        _ => format!("`{name}(x)` works elementwise"),
    };
    s
}
