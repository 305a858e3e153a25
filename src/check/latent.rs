//! `latent NAME: TYPE[DIMS]`: a latent declared with its support, as Stan declares parameters
//! (`ordered[K] mu;`). A later `NAME ~ Dist(...)` gives its prior, restricted to the declared
//! support (a Normal prior on a `positive` latent is a half-normal); without one the latent is
//! flat on its support, Stan's default: proper (uniform) on `unit`, `bounded` and `simplex`,
//! improper on the others, which the one improper-prior warning names.

use super::{Checker, Scope, Symbol};
use crate::diag::Diagnostic;
use crate::dist::{Domain, Family, Parameterization};
use crate::graph::{
    Dim, DistApp, Latent, LatentId, MapFn, NodeId, Op, ShapeDisplay, Site, Target, Ty, ZipFn,
};
use crate::syntax::ast::{self, IndexArg};
use crate::syntax::Span;

const LATENT_TYPES: &[&str] = &[
    "real",
    "positive",
    "unit",
    "bounded",
    "simplex",
    "ordered",
    "positive_ordered",
    "cholesky_factor_corr",
];

/// A latent declared but not yet given its prior site.
pub(super) const AWAITING_PRIOR: usize = usize::MAX;

impl Checker<'_> {
    pub(super) fn latent_decl(&mut self, d: &ast::LatentDecl, scope: &Scope) {
        if !self.claim(&d.name, None) {
            return;
        }
        // Until the declaration succeeds, later statements about the name say nothing more.
        self.poisoned.insert(d.name.name.clone());
        // `bounded(lo, hi)` is read in the model's scope: bounds that read other latents (Stan's
        // `real<lower=0, upper=1 - alpha1>`) move; constant ones go to `domain_type`.
        let bounds = match (d.ty.name.name.as_str(), d.ty.args.as_slice()) {
            ("bounded", [lo, hi]) => match (self.expr(lo, scope), self.expr(hi, scope)) {
                (Some(lo), Some(hi)) => Some((lo, hi)),
                _ => return,
            },
            _ => None,
        };
        let moving_bounds =
            bounds.filter(|(lo, hi)| self.constant(*lo).is_none() || self.constant(*hi).is_none());
        let mut moving = None;
        let domain = match d.ty.name.name.as_str() {
            "bounded" if moving_bounds.is_some() => {
                let (lo, hi) = moving_bounds.expect("matched");
                for b in [lo, hi] {
                    let ty = self.ty(b).clone();
                    if !ty.shape.is_empty() || !ty.plates.is_empty() {
                        self.error(
                            Diagnostic::new(
                                "vi::type::bounded",
                                "a declared latent's moving bounds are scalars",
                            )
                            .primary(self.node_span(b), format!("shape {}", ShapeDisplay(&ty.shape)))
                            .help("give `bounded(lo, hi)` scalar bounds; they apply to every element"),
                        );
                        return;
                    }
                }
                let Some(dom) = self.moving_uniform_support(lo, hi, d.ty.span) else {
                    return;
                };
                moving = Some((lo, hi));
                dom
            }
            "cholesky_factor_corr" if d.ty.args.is_empty() => Domain::CorrCholesky,
            "ordered" | "positive_ordered" if d.ty.args.is_empty() => {
                if d.ty.name.name == "ordered" {
                    Domain::Ordered
                } else {
                    Domain::PositiveOrdered
                }
            }
            _ => match self.domain_type(&d.ty, LATENT_TYPES, "latent") {
                Some(dom) => dom,
                None => return,
            },
        };
        let mut shape = Vec::new();
        for e in &d.ty.dims {
            shape.push(self.dim(e));
        }
        let Some(mut shape) = shape.into_iter().collect::<Option<Vec<Dim>>>() else {
            return;
        };
        if domain == Domain::CorrCholesky {
            // Stan's `cholesky_factor_corr[K]` is a K×K matrix.
            if shape.len() != 1 {
                self.error(
                    Diagnostic::new(
                        "vi::type::needs_length",
                        "a `cholesky_factor_corr` latent takes one dimension, its size K",
                    )
                    .primary(d.ty.span, format!("{} dimensions", shape.len()))
                    .help("write `cholesky_factor_corr[K]` for the factor of a K×K correlation matrix"),
                );
                return;
            }
            shape.push(shape[0].clone());
        }
        if matches!(
            domain,
            Domain::Simplex | Domain::Ordered | Domain::PositiveOrdered
        ) && shape.is_empty()
        {
            self.error(
                Diagnostic::new(
                    "vi::type::needs_length",
                    format!("`{}` latents are vectors", domain.keyword()),
                )
                .primary(d.ty.span, "no length")
                .help(format!("write `{}[K]`", domain.keyword())),
            );
            return;
        }
        let id = LatentId(self.latents.len() as u32);
        if let Some(bounds) = moving {
            self.moving_declared.insert(id, bounds);
        }
        self.latents.push(Latent {
            name: d.name.name.clone(),
            plates: Vec::new(),
            shape,
            support: domain,
            site: AWAITING_PRIOR,
            span: d.name.span,
        });
        self.globals
            .insert(d.name.name.clone(), (Symbol::Latent(id), d.name.span));
        self.poisoned.remove(&d.name.name);
    }

    /// Whether `id` was declared with `latent` and still awaits its prior.
    pub(super) fn awaits_prior(&self, id: LatentId) -> bool {
        self.latents[id.index()].site == AWAITING_PRIOR
    }

    /// `NAME ~ Dist(...)` for a declared latent: its prior, on the declared support.
    pub(super) fn declared_prior(
        &mut self,
        id: LatentId,
        target: &ast::Expr,
        indices: &[IndexArg],
        mut app: DistApp,
        span: Span,
        scope: &Scope,
    ) {
        let latent = self.latents[id.index()].clone();
        // A prior statement that fails was reported once: later uses of the name say nothing
        // more (they would only repeat it, or complain of a support the prior never gave).
        self.poisoned.insert(latent.name.clone());
        if self.moving_declared.contains_key(&id) {
            self.error(
                Diagnostic::new(
                    "vi::latent::moving_prior",
                    format!("`{}` has bounds that move, so it takes no prior statement", latent.name),
                )
                .primary(app.span, "a prior")
                .secondary(latent.span, "declared with moving bounds")
                .help("it is flat between its bounds, as Stan's is; for another density write `NAME ~ Uniform(lo, hi)` and add the density with `target +=`"),
            );
            return;
        }
        if !indices.is_empty() || !scope.plates().is_empty() {
            self.error(
                Diagnostic::new(
                    "vi::latent::plate",
                    format!(
                        "`{}` is declared whole: give its prior outside loops, unindexed",
                        latent.name
                    ),
                )
                .primary(target.span, "indexed or inside a loop")
                .secondary(latent.span, "declared here")
                .help(format!(
                    "write `{} ~ Dist(...)` at the top level; its declaration gives its shape",
                    latent.name
                )),
            );
            return;
        }
        let truncated = match self.latent_truncation(&app) {
            Ok(t) => t,
            Err(()) => return,
        };
        if let Some(dom) = truncated.filter(|d| !d.contains(latent.support)) {
            self.error(
                Diagnostic::new(
                    "vi::latent::prior_support",
                    format!("`{}` is declared {}, but its truncated prior draws values in {dom}", latent.name, latent.support.keyword()),
                )
                .primary(app.span, format!("values in {dom}"))
                .secondary(latent.span, format!("declared {}", latent.support.keyword()))
                .help("declare the latent on the truncation's interval (`latent x: positive` for `T[0, ]`), or drop the declaration"),
            );
            return;
        }
        if !app.support().contains(latent.support) {
            self.error(
                Diagnostic::new(
                    "vi::latent::prior_support",
                    format!("`{}` is declared {}, but {} draws values in {}", latent.name, latent.support.keyword(), app.family, app.support()),
                )
                .primary(app.span, format!("values in {}", app.support()))
                .secondary(latent.span, format!("declared {}", latent.support.keyword()))
                .help(if latent.support == Domain::CorrCholesky {
                    format!("a correlation factor's prior is `{} ~ LKJCholesky(eta)` (eta = 1: uniform over correlation matrices)", latent.name)
                } else if let Some(ty) = LATENT_TYPES.iter().find(|t| **t == app.support().keyword()) {
                    format!("declare it on the prior's support, `latent {}: {ty}`, or drop the declaration; otherwise pick a family whose support contains {}", latent.name, latent.support.keyword())
                } else {
                    "the prior must have a density everywhere on the declared support: pick a family whose support contains it".into()
                }),
            );
            return;
        }
        // A scalar-shaped prior applies to every element (Stan's vectorised `mu ~ normal(0, 5)`);
        // an LKJ density is over the whole declared matrix.
        let shape = app.value_shape();
        if app.family == Family::LkjCholesky && shape.is_empty() {
            app.event = latent.shape.clone();
        } else if shape.is_empty() && !latent.shape.is_empty() {
            app.iid = latent.shape.clone();
        } else if !super::expr::same_shape(&shape, &latent.shape) {
            self.error(
                Diagnostic::new(
                    "vi::shape::observe",
                    format!(
                        "`{}` is declared {}, but its prior draws {}",
                        latent.name,
                        ShapeDisplay(&latent.shape),
                        ShapeDisplay(&shape)
                    ),
                )
                .primary(app.span, format!("draws {}", ShapeDisplay(&shape)))
                .secondary(latent.span, format!("declared {}", ShapeDisplay(&latent.shape)))
                .help("give the prior the declared shape, or scalar parameters (applied to every element)"),
            );
            return;
        }
        if app.family.is_improper() {
            self.improper.push((latent.name.clone(), app.span));
        }
        self.latents[id.index()].site = self.sites.len();
        self.sites.push(Site {
            target: Target::Latent(id),
            dist: app,
            plates: Vec::new(),
            span,
        });
        self.poisoned.remove(&latent.name);
    }

    /// Flat between bounds that move: a Uniform(lo, hi) prior (fitted as lo + (hi − lo) u, see
    /// `infer::svi::reparam`) with its normaliser added back, `target += log(hi − lo)` per
    /// element, so that the joint density is flat as Stan's is.
    fn flat_between_moving_bounds(&mut self, id: LatentId, lo: NodeId, hi: NodeId) {
        let latent = self.latents[id.index()].clone();
        let span = latent.span;
        let Some(width) = self.zip(ZipFn::Sub, hi, lo, span) else {
            return;
        };
        let log_width = self.add(Op::Map(MapFn::Log, width), Ty::scalar(), span);
        let term = if latent.shape.is_empty() {
            log_width
        } else {
            self.add(
                Op::Fill {
                    value: log_width,
                    shape: latent.shape.clone(),
                },
                Ty::real(Vec::new(), latent.shape.clone()),
                span,
            )
        };
        self.latents[id.index()].site = self.sites.len();
        self.sites.push(Site {
            target: Target::Latent(id),
            dist: DistApp {
                family: Family::Uniform,
                pz: Parameterization::Standard,
                args: vec![lo, hi],
                iid: latent.shape.clone(),
                batch: Vec::new(),
                event: Vec::new(),
                trunc: None,
                span,
            },
            plates: Vec::new(),
            span,
        });
        self.sites.push(Site {
            target: Target::Derived { value: term },
            dist: DistApp {
                family: Family::Factor,
                pz: Parameterization::Standard,
                args: Vec::new(),
                iid: Vec::new(),
                batch: latent.shape.clone(),
                event: Vec::new(),
                trunc: None,
                span,
            },
            plates: Vec::new(),
            span,
        });
    }

    /// Declared latents that no statement gave a prior: flat on their supports.
    pub(super) fn flat_priors_for_declared(&mut self) {
        for k in 0..self.latents.len() {
            if self.latents[k].site != AWAITING_PRIOR {
                continue;
            }
            let latent = self.latents[k].clone();
            if let Some(&(lo, hi)) = self.moving_declared.get(&LatentId(k as u32)) {
                self.flat_between_moving_bounds(LatentId(k as u32), lo, hi);
                continue;
            }
            let bounded = matches!(
                latent.support,
                Domain::Unit | Domain::Interval(..) | Domain::Simplex | Domain::CorrCholesky
            );
            if !bounded {
                self.improper.push((latent.name.clone(), latent.span));
            }
            self.latents[k].site = self.sites.len();
            self.sites.push(Site {
                target: Target::Latent(LatentId(k as u32)),
                dist: DistApp {
                    // Log density 0 on the support, whatever it is: the support is the latent's.
                    family: Family::Flat,
                    pz: Parameterization::Standard,
                    args: Vec::new(),
                    iid: latent.shape.clone(),
                    batch: Vec::new(),
                    event: Vec::new(),
                    trunc: None,
                    span: latent.span,
                },
                plates: Vec::new(),
                span: latent.span,
            });
        }
    }
}
