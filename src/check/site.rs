//! `~` statements (latent draws, guide draws, observations) and objectives.

use super::{Checker, Program, Scope, Symbol};
use crate::diag::Diagnostic;
use crate::dist::{Domain, Family};
use crate::graph::{
    DataId, DistApp, Group, Latent, LatentId, NodeId, Objective, Op, PlateId, ShapeDisplay, Site, Target,
};
use crate::syntax::ast::{self, ExprKind, IndexArg};
use crate::syntax::Span;

/// What the left of a `~` names.
enum Lhs<'a> {
    /// A name nobody declared yet, with its index arguments: a new latent (or an error).
    Fresh(ast::Ident, &'a [IndexArg]),
    Latent(LatentId, &'a [IndexArg]),
    Data(DataId),
    Other,
}

impl Checker<'_> {
    pub(super) fn sample(&mut self, target: &ast::Expr, dist: &ast::DistCall, span: Span, scope: &mut Scope) {
        let lhs = self.classify(target, scope);
        let Some(app) = self.dist_call(dist, scope) else {
            if let Lhs::Fresh(name, _) = lhs {
                self.poisoned.insert(name.name);
            }
            return;
        };
        if let (Lhs::Latent(id, indices), Program::Model) = (&lhs, scope.program) {
            if self.awaits_prior(*id) {
                return self.declared_prior(*id, target, indices, app, span, scope);
            }
        }
        if app.family.is_improper() && !self.improper_allowed(&lhs, scope.program, &app) {
            return;
        }
        if app.trunc.is_some() && scope.program == Program::Guide {
            self.error(
                Diagnostic::new("vi::dist::truncation", "a guide cannot be truncated")
                    .primary(app.span, "truncated in the guide")
                    .help("the guide draws from untruncated families; a bounded latent gets a guide on its support (LogNormal for positive, Beta for (0, 1)), or leave it to the automatic guide"),
            );
            return;
        }
        if app.family == Family::LkjCholesky {
            let name = match &lhs {
                Lhs::Fresh(name, _) if self.poisoned.contains(&name.name) => return,
                Lhs::Fresh(name, _) => name.name.clone(),
                _ => "L".into(),
            };
            self.error(
                Diagnostic::new(
                    "vi::dist::lkj_declared",
                    "LKJCholesky is the prior of a declared `cholesky_factor_corr` latent",
                )
                .primary(app.span, "not the prior of a declared correlation factor")
                .help(format!(
                    "declare the factor first, as Stan does: `latent {name}: cholesky_factor_corr[K]`, then `{name} ~ LKJCholesky(eta)` at the top level"
                )),
            );
            return;
        }
        match (lhs, scope.program) {
            (Lhs::Fresh(name, indices), Program::Model) => {
                self.declare_latent(&name, indices, app, span, scope)
            }
            (Lhs::Fresh(name, _), _) => {
                self.error(
                    Diagnostic::new(
                        "vi::guide::unknown_latent",
                        format!("the model has no latent `{}`", name.name),
                    )
                    .primary(name.span, "not drawn in the model")
                    .help("a guide draws the model's latent variables, under the same names"),
                );
            }
            (Lhs::Latent(id, indices), Program::Guide) => {
                self.guide_draw(id, target, indices, app, span, scope)
            }
            (Lhs::Latent(id, _), _) => {
                let prev = self.latents[id.index()].span;
                self.error(
                    Diagnostic::new(
                        "vi::name::duplicate",
                        format!("`{}` is drawn twice", self.latents[id.index()].name),
                    )
                    .primary(target.span, "drawn again here")
                    .secondary(prev, "first drawn here")
                    .help("each latent variable has one prior; rename one of them"),
                );
            }
            (Lhs::Data(id), Program::Model) => self.observe(Some(id), target, app, span, scope),
            (Lhs::Other, Program::Model) => self.observe(None, target, app, span, scope),
            (_, _) => {
                self.error(
                    Diagnostic::new("vi::guide::observe", "a guide cannot observe data")
                        .primary(target.span, "observed in the guide")
                        .help("the guide only draws latent variables; observations belong in the model"),
                );
            }
        }
    }

    /// An improper density (Flat, HalfFlat) is a prior only: a latent drawn from it is a
    /// warning (the posterior must be proper, which no diagnostic of a fit detects); a guide
    /// or an observation of it is an error.
    fn improper_allowed(&mut self, lhs: &Lhs, program: Program, app: &DistApp) -> bool {
        let family = app.family;
        match (lhs, program) {
            (Lhs::Fresh(name, _), Program::Model) => {
                self.improper.push((name.name.clone(), app.span));
                true
            }
            // A latent drawn again: the duplicate's own error says so.
            (Lhs::Latent(..), Program::Model) => true,
            (Lhs::Fresh(..) | Lhs::Latent(..), Program::Guide) => {
                self.error(
                    Diagnostic::new("vi::dist::improper_guide", format!("a guide cannot be {family}"))
                        .primary(app.span, "not a distribution to draw from")
                        .help("a guide draws from a proper distribution: use Normal (or LogNormal for a positive latent), or leave the latent to the automatic guide"),
                );
                false
            }
            _ => {
                self.error(
                    Diagnostic::new("vi::dist::improper_likelihood", format!("{family} is not a likelihood"))
                        .primary(app.span, "an improper density")
                        .help(format!("{family} is a prior for a latent (`beta ~ {family}()`); observe data with a proper distribution")),
                );
                false
            }
        }
    }

    /// One warning for every latent with an improper prior, pointing at each.
    pub(super) fn warn_improper(&mut self) {
        let Some((first, span)) = self.improper.first().cloned() else {
            return;
        };
        let names: Vec<String> = self.improper.iter().map(|(n, _)| format!("`{n}`")).collect();
        let mut d = Diagnostic::new(
            "vi::prior::improper",
            if names.len() == 1 {
                format!("`{first}` has an improper prior")
            } else {
                format!("{} have improper priors", names.join(", "))
            },
        )
        .primary(span, "integrates to infinity");
        for (_, s) in self.improper.iter().skip(1) {
            d = d.secondary(*s, "improper too");
        }
        self.warn(d.help(
            "the posterior is proper only if the data identify these latents, and a fit cannot tell (its ELBO and k-hat look fine either way): give them proper priors, wide on the data's scale, unless you know the posterior is proper",
        ));
    }

    fn classify<'a>(&self, target: &'a ast::Expr, scope: &Scope) -> Lhs<'a> {
        let (ident_name, ident_span, indices): (&str, Span, &'a [IndexArg]) = match &target.kind {
            ExprKind::Name(n) => (n, target.span, &[]),
            ExprKind::Index { base, indices } => match &base.kind {
                ExprKind::Name(n) => (n, base.span, indices),
                _ => return Lhs::Other,
            },
            _ => return Lhs::Other,
        };
        if scope.local(ident_name).is_some() || scope.plate_var(ident_name).is_some() {
            return Lhs::Other;
        }
        match self.globals.get(ident_name) {
            Some((Symbol::Data(id), _)) => Lhs::Data(*id),
            Some((Symbol::Latent(id), _)) => Lhs::Latent(*id, indices),
            Some(_) => Lhs::Other,
            None if self.dims.contains_key(ident_name) => Lhs::Other,
            None => Lhs::Fresh(
                ast::Ident {
                    name: ident_name.to_string(),
                    span: ident_span,
                },
                indices,
            ),
        }
    }

    /// The indices on the left of a draw must be the enclosing plates' variables, in order.
    fn check_draw_indices(
        &mut self,
        name: &str,
        indices: &[IndexArg],
        plates: &[PlateId],
        target: Span,
        scope: &Scope,
    ) -> bool {
        let vars: Vec<String> = plates
            .iter()
            .map(|p| self.plates[p.index()].var.clone())
            .collect();
        let ok = indices.len() == plates.len()
            && indices.iter().zip(plates).all(|(ix, p)| match ix {
                IndexArg::Expr(ast::Expr {
                    kind: ExprKind::Name(v),
                    ..
                }) => scope.plate_var(v) == Some(*p),
                _ => false,
            });
        if ok {
            return true;
        }
        let want = if vars.is_empty() {
            name.to_string()
        } else {
            format!("{name}[{}]", vars.join(", "))
        };
        let d = if plates.is_empty() {
            Diagnostic::new(
                "vi::plate::draw_index",
                format!("`{name}` is drawn outside any plate, so it takes no index"),
            )
            .primary(target, "indexed")
            .help(format!(
                "give its shape after the distribution instead: `{name} ~ Dist(...) [K]`"
            ))
        } else if indices.is_empty() {
            Diagnostic::new(
                "vi::plate::unindexed",
                format!(
                    "`{name}` is drawn inside `for {}`, so it must be indexed by it",
                    vars.join(", ")
                ),
            )
            .primary(target, "missing the plate index")
            .help(format!("write `{want} ~ ...`: one draw per plate member"))
        } else {
            Diagnostic::new(
                "vi::plate::draw_index",
                format!("index `{name}` with the enclosing plates: `{want}`"),
            )
            .primary(target, "wrong indices")
            .help("the left of a draw is indexed by the plate variables of its loops, outermost first")
        };
        self.error(d);
        false
    }

    fn declare_latent(
        &mut self,
        name: &ast::Ident,
        indices: &[IndexArg],
        app: DistApp,
        span: Span,
        scope: &mut Scope,
    ) {
        let plates = scope.plates();
        let target_span = indices.last().map_or(name.span, |ix| name.span.to(ix.span()));
        let target_span = Span::new(
            target_span.start,
            target_span.end + usize::from(!indices.is_empty()),
        );
        if !self.check_draw_indices(&name.name, indices, &plates, target_span, scope)
            || !self.claim(name, Some(scope))
        {
            self.poisoned.insert(name.name.clone());
            return;
        }
        let Some(support) = self.latent_support(&app) else {
            self.poisoned.insert(name.name.clone());
            return;
        };
        let id = LatentId(self.latents.len() as u32);
        self.latents.push(Latent {
            name: name.name.clone(),
            plates: plates.clone(),
            shape: app.value_shape(),
            support,
            site: self.sites.len(),
            span: name.span,
        });
        self.globals
            .insert(name.name.clone(), (Symbol::Latent(id), name.span));
        self.sites.push(Site {
            target: Target::Latent(id),
            dist: app,
            plates,
            span,
        });
    }

    /// A Uniform latent with moving bounds is drawn by the automatic guide after the latents
    /// its bounds read: a guide block may draw none of them.
    pub(super) fn check_moving_bounds_guide(&mut self) {
        for l in 0..self.latents.len() {
            let site = &self.sites[self.latents[l].site];
            if site.dist.family != Family::Uniform
                || self.constant(site.dist.args[0]).is_some() && self.constant(site.dist.args[1]).is_some()
            {
                continue;
            }
            let (span, args) = (site.dist.span, site.dist.args.clone());
            // Each shared node once: bounds can be deep expressions.
            let mut read: Vec<LatentId> = vec![LatentId(l as u32)];
            read.extend(
                self.ancestors(&args)
                    .iter()
                    .filter_map(|n| match self.nodes[n.index()].op {
                        Op::Latent(x) => Some(x),
                        _ => None,
                    }),
            );
            if let Some((x, at)) = read
                .iter()
                .find_map(|x| self.guide_drawn.get(x).map(|s| (*x, *s)))
            {
                let name = self.latents[x.index()].name.clone();
                self.error(
                    Diagnostic::new(
                        "vi::guide::moving_bounds",
                        format!("the guide draws `{name}`, which a Uniform's moving bounds need"),
                    )
                    .primary(at, "drawn by the guide")
                    .secondary(span, "bounds that move with other latents")
                    .help("leave this latent, and the latents its bounds read, to the automatic guide"),
                );
            }
        }
    }

    /// `target += value`: a log-density term of the model, summed over its shape and plates
    /// (with the minibatch scaling of its plates), as Stan's `target +=`.
    pub(super) fn target_term(&mut self, value: &ast::Expr, span: Span, scope: &Scope) {
        if scope.program != Program::Model {
            self.error(
                Diagnostic::new("vi::target::place", "`target +=` belongs in the model")
                    .primary(span, "here")
                    .help("the guide's density is what it draws; objectives combine `elbo`, `loglik`, `kl` and terms"),
            );
            return;
        }
        let Some(id) = self.expr(value, scope) else { return };
        // Values that vary over a plate exist only inside its loop: the term's plates are
        // the loops it is written in.
        let ty = self.ty(id).clone();
        let plates = scope.plates();
        if self.reads_draw(id) {
            self.error(
                Diagnostic::new(
                    "vi::target::draw",
                    "a `target +=` term cannot read a random `draw`",
                )
                .primary(value.span, "reads a draw")
                .help("a log-density term is a function of the latents, data and params"),
            );
            return;
        }
        self.sites.push(Site {
            target: Target::Derived { value: id },
            dist: DistApp {
                family: Family::Factor,
                pz: crate::dist::Parameterization::Standard,
                args: Vec::new(),
                iid: Vec::new(),
                batch: ty.shape.clone(),
                event: Vec::new(),
                trunc: None,
                span,
            },
            plates,
            span,
        });
    }

    /// Whether a node reads a random `draw` (which a latent's bounds may not).
    fn reads_draw(&self, id: NodeId) -> bool {
        self.ancestors(&[id])
            .iter()
            .any(|n| matches!(self.nodes[n.index()].op, Op::Draw(_)))
    }

    /// The support of a latent drawn from `app`; a Uniform's bounds are constants or move with
    /// other latents.
    fn latent_support(&mut self, app: &DistApp) -> Option<Domain> {
        if app.trunc.is_some() {
            return self.latent_truncation(app).ok().flatten();
        }
        if app.family != Family::Uniform {
            return Some(app.support());
        }
        match (self.constant(app.args[0]), self.constant(app.args[1])) {
            (Some(lo), Some(hi)) if lo < hi => Some(Domain::Interval(lo, hi)),
            (Some(lo), Some(hi)) => {
                self.error(
                    Diagnostic::new(
                        "vi::support::bad_constant",
                        format!("Uniform({lo}, {hi}) is empty"),
                    )
                    .primary(app.span, "low is not below high")
                    .help("write `Uniform(low, high)` with low < high"),
                );
                None
            }
            _ => {
                if self.reads_draw(app.args[0]) || self.reads_draw(app.args[1]) {
                    self.error(
                        Diagnostic::new("vi::support::uniform_bounds", "a Uniform latent's bounds cannot be random draws")
                            .primary(app.span, "bounds read a `draw`")
                            .help("bounds are constants or functions of data, params and other latents (`Uniform(0, 1 - alpha1)`)"),
                    );
                    return None;
                }
                self.moving_uniform_support(app.args[0], app.args[1], app.span)
            }
        }
    }

    fn guide_draw(
        &mut self,
        id: LatentId,
        target: &ast::Expr,
        indices: &[IndexArg],
        app: DistApp,
        span: Span,
        scope: &mut Scope,
    ) {
        let latent = self.latents[id.index()].clone();
        let plates = scope.plates();
        if plates != latent.plates {
            let vars: Vec<String> = latent
                .plates
                .iter()
                .map(|p| self.plates[p.index()].var.clone())
                .collect();
            self.error(
                Diagnostic::new(
                    "vi::guide::plate",
                    format!(
                        "the guide must draw `{}` inside the same plates as the model",
                        latent.name
                    ),
                )
                .primary(target.span, "drawn in other plates")
                .secondary(latent.span, "drawn here in the model")
                .help(if vars.is_empty() {
                    "draw it outside any loop, as the model does".to_string()
                } else {
                    format!("draw it inside `for {} ...`, as the model does", vars.join(", "))
                }),
            );
            return;
        }
        if !self.check_draw_indices(&latent.name, indices, &plates, target.span, scope) {
            return;
        }
        if let Some(prev) = self.guide_drawn.get(&id).copied() {
            self.error(
                Diagnostic::new(
                    "vi::guide::duplicate_draw",
                    format!("the guide draws `{}` twice", latent.name),
                )
                .primary(target.span, "drawn again")
                .secondary(prev, "first drawn here")
                .help("draw each latent once in the guide"),
            );
            return;
        }
        let Some(support) = self.latent_support(&app) else {
            return;
        };
        if support != latent.support {
            self.error(
                Diagnostic::new(
                    "vi::guide::support",
                    format!(
                        "the guide draws `{}` from {}, over {support}, but its prior is over {}",
                        latent.name, app.family, latent.support
                    ),
                )
                .primary(app.span, format!("values in {support}"))
                .secondary(
                    self.sites[latent.site].dist.span,
                    format!("prior over {}", latent.support),
                )
                .help(guide_family_hint(latent.support)),
            );
            return;
        }
        let shape = app.value_shape();
        if !same_shape(&shape, &latent.shape) {
            self.error(
                Diagnostic::new(
                    "vi::shape::guide",
                    format!(
                        "the guide's `{}` has shape {}, the model's has {}",
                        latent.name,
                        ShapeDisplay(&shape),
                        ShapeDisplay(&latent.shape)
                    ),
                )
                .primary(app.span, format!("shape {}", ShapeDisplay(&shape)))
                .secondary(self.sites[latent.site].dist.span, format!("shape {}", ShapeDisplay(&latent.shape)))
                .help("give the guide's distribution the latent's shape (parameters of that shape, or `[dims]` after the call)"),
            );
            return;
        }
        self.guide_drawn.insert(id, target.span);
        self.guide.get_or_insert_with(Vec::new).push(Site {
            target: Target::Latent(id),
            dist: app,
            plates,
            span,
        });
    }

    fn observe(
        &mut self,
        data: Option<DataId>,
        target: &ast::Expr,
        mut app: DistApp,
        span: Span,
        scope: &mut Scope,
    ) {
        let Some(value) = self.expr(target, scope) else {
            return;
        };
        let plates = scope.plates();
        let vty = self.ty(value).clone();
        if vty.plates != plates {
            let missing: Vec<String> = plates
                .iter()
                .filter(|p| !vty.plates.contains(p))
                .map(|p| self.plates[p.index()].var.clone())
                .collect();
            self.error(
                Diagnostic::new(
                    "vi::plate::observe_index",
                    format!("this observation does not vary with `{}`", missing.join(", ")),
                )
                .primary(target.span, "the same value for every plate member")
                .help(format!(
                    "index the data by the plate: e.g. `{}[{}] ~ ...`; as written it would be observed once per member",
                    name_text(target),
                    missing.join(", ")
                )),
            );
            return;
        }
        // Scalar parameters observe every element (Stan's vectorised `y ~ normal(mu, sigma)`).
        if app.value_shape().is_empty() && !vty.shape.is_empty() {
            app.iid = vty.shape.clone();
        }
        let shape = app.value_shape();
        if !same_shape(&vty.shape, &shape) {
            self.error(
                Diagnostic::new(
                    "vi::shape::observe",
                    format!(
                        "the observed value has shape {}, the distribution draws {}",
                        ShapeDisplay(&vty.shape),
                        ShapeDisplay(&shape)
                    ),
                )
                .primary(target.span, format!("shape {}", ShapeDisplay(&vty.shape)))
                .secondary(app.span, format!("draws {}", ShapeDisplay(&shape)))
                .help("the left and right of `~` must have the same shape: index the data by its plate, or give the distribution parameters of the data's shape"),
            );
            return;
        }
        let latents = self.latent_ancestors(value);
        if let Some(l) = latents.first() {
            self.error(
                Diagnostic::new("vi::observe::latent", "the left of `~` depends on a latent variable")
                    .primary(target.span, format!("depends on `{l}`"))
                    .help("observe data (or a function of data and params); draw latent variables with `name ~ ...`"),
            );
            return;
        }
        if !self.observed_within_truncation(value, &app, target.span) {
            return;
        }
        if !self.observed_in_support(value, &app, target.span) {
            return;
        }
        match data {
            Some(id) => {
                let d = self.data[id.index()].clone();
                if !app.value_family().observes(d.domain) {
                    self.error(
                        Diagnostic::new(
                            "vi::support::observation",
                            format!(
                                "{} draws values in {}, but `{}` is declared {}",
                                app.family,
                                app.support(),
                                d.name,
                                d.domain.keyword()
                            ),
                        )
                        .primary(app.span, format!("values in {}", app.support()))
                        .secondary(d.span, format!("declared {}", d.domain.keyword()))
                        .help(observation_hint(app.value_family(), d.domain)),
                    );
                    return;
                }
                let whole = matches!(self.nodes[value.index()].op, Op::Data(_))
                    || matches!(self.nodes[value.index()].op, Op::PlateView { src, .. } if matches!(self.nodes[src.index()].op, Op::Data(_)));
                if whole {
                    if let Some(prev) = self.observed.get(&id).copied() {
                        self.error(
                            Diagnostic::new("vi::observe::twice", format!("`{}` is observed twice", d.name))
                                .primary(target.span, "observed again")
                                .secondary(prev, "first observed here")
                                .help("each data point has one likelihood; remove one of the statements"),
                        );
                        return;
                    }
                    self.observed.insert(id, target.span);
                }
                self.sites.push(Site {
                    target: Target::Data { data: id, value },
                    dist: app,
                    plates,
                    span,
                });
            }
            None => {
                self.sites.push(Site {
                    target: Target::Derived { value },
                    dist: app,
                    plates,
                    span,
                });
            }
        }
    }

    /// Names of the latents (and random draws) a node depends on.
    fn latent_ancestors(&self, id: NodeId) -> Vec<String> {
        self.ancestors(&[id])
            .iter()
            .filter_map(|n| match &self.nodes[n.index()].op {
                Op::Latent(l) => Some(self.latents[l.index()].name.clone()),
                Op::Draw(_) => Some("a random draw".into()),
                _ => None,
            })
            .collect()
    }

    pub(super) fn objective(&mut self, o: &ast::ObjectiveDecl) {
        let mut groups = Vec::new();
        for g in &o.groups {
            let group = match self.globals.get(&g.name) {
                Some((Symbol::Net(id), _)) => Group::Net(*id),
                Some((Symbol::Param(id), _)) => Group::Param(*id),
                _ if g.name == "guide" => Group::Guide,
                _ => {
                    self.error(
                        Diagnostic::new("vi::objective::group", format!("`{}` is not a net or a param", g.name))
                            .primary(g.span, "not learnable")
                            .help("an objective updates nets, params, or `guide` (the automatic guide's parameters)"),
                    );
                    continue;
                }
            };
            groups.push((group, g.span));
        }
        let scope = Scope::new(Program::Objective);
        let Some(expr) = self.expr(&o.expr, &scope) else {
            return;
        };
        let ty = self.ty(expr).clone();
        if !ty.shape.is_empty() || !ty.plates.is_empty() {
            self.error(
                Diagnostic::new("vi::objective::shape", "an objective must be a scalar")
                    .primary(o.expr.span, format!("shape {}", ShapeDisplay(&ty.shape)))
                    .help("combine scalar quantities"),
            );
            return;
        }
        self.objective_spans
            .push(groups.iter().map(|(_, s)| *s).collect());
        self.objectives.push(Objective {
            groups: groups.into_iter().map(|(g, _)| g).collect(),
            maximise: o.sense == ast::Sense::Maximise,
            expr,
            span: o.span,
        });
    }

    /// Each learnable group is updated by at most one objective, and at most one objective
    /// takes "everything else".
    pub(super) fn check_objective_groups(&mut self) {
        let mut claimed: Vec<(Group, Span)> = Vec::new();
        let mut catch_all: Option<Span> = None;
        for (o, spans) in self.objectives.clone().iter().zip(self.objective_spans.clone()) {
            if o.groups.is_empty() {
                if let Some(prev) = catch_all {
                    self.error(
                        Diagnostic::new("vi::objective::overlap", "two objectives update everything")
                            .primary(o.span, "no groups named")
                            .secondary(prev, "this one already updates every unclaimed parameter")
                            .help("name the groups each objective updates: `objective disc: maximise ...`"),
                    );
                }
                catch_all = Some(o.span);
            }
            for (g, s) in o.groups.iter().zip(spans) {
                if let Some((_, prev)) = claimed.iter().find(|(h, _)| h == g) {
                    self.error(
                        Diagnostic::new("vi::objective::overlap", "a group is updated by two objectives")
                            .primary(s, "claimed again")
                            .secondary(*prev, "first claimed here")
                            .help("each net or param follows one objective"),
                    );
                } else {
                    claimed.push((*g, s));
                }
            }
        }
    }
}

fn name_text(e: &ast::Expr) -> String {
    match &e.kind {
        ExprKind::Name(n) => n.clone(),
        ExprKind::Index { base, .. } => name_text(base),
        _ => "data".into(),
    }
}

fn same_shape(a: &[crate::graph::Dim], b: &[crate::graph::Dim]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
}

fn observation_hint(family: Family, data: Domain) -> String {
    match (family, data) {
        (Family::Bernoulli, _) => "a Bernoulli observes 0/1 values: declare the data `binary` (or `unit` for grey levels), or use a Normal likelihood for real values".into(),
        (Family::Poisson | Family::Binomial, _) => format!("{family} observes counts: declare the data `count`"),
        (Family::Categorical, _) => "a Categorical observes category numbers 0..K-1: declare the data `int` or `count`".into(),
        (Family::Gamma | Family::Exponential | Family::LogNormal | Family::InverseGamma | Family::HalfNormal | Family::HalfCauchy, _) => {
            format!("{family} is over positive values: declare the data `positive` if it is, or choose a likelihood over the reals")
        }
        (Family::Beta, _) => "a Beta observes values in (0, 1): declare the data `unit`".into(),
        (Family::Dirichlet, _) => "a Dirichlet observes probability vectors: declare the data `simplex[N, K]`".into(),
        _ => format!("choose a likelihood whose support contains {}", data),
    }
}

fn guide_family_hint(support: Domain) -> String {
    match support {
        Domain::Positive => "use a positive guide family such as LogNormal or Gamma — or leave the latent out of the guide block and the automatic guide handles the constraint".into(),
        Domain::Unit => "use a Beta guide, or leave the latent to the automatic guide".into(),
        Domain::Simplex => "use a Dirichlet guide, or leave the latent to the automatic guide".into(),
        Domain::Real => "use a guide over the reals, such as Normal".into(),
        d if d.is_discrete() => "a discrete latent needs a discrete guide (Categorical for Categorical)".into(),
        _ => "use a guide with the prior's support, or leave the latent to the automatic guide".into(),
    }
}
