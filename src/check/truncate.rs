//! Truncated densities, Stan's `y ~ Normal(mu, sigma) T[lo, hi]`: the density renormalised to
//! the bounds (`dist::cdf`). Here: which families may be truncated (a closed-form CDF), bounds
//! that are scalars in order, observed data inside constant bounds, and a truncated latent's
//! support, which is its family's cut to the bounds (constant bounds only: the bijection onto
//! it is fixed).

use super::{Checker, Scope};
use crate::diag::Diagnostic;
use crate::dist::{Domain, Family};
use crate::graph::{DistApp, NodeId, Op, ShapeDisplay, Truncation};
use crate::syntax::ast;

/// The open interval (lo, hi) as the simplest domain that names it.
pub(super) fn between(lo: f64, hi: f64) -> Domain {
    match (lo, hi) {
        (f64::NEG_INFINITY, f64::INFINITY) => Domain::Real,
        (0.0, f64::INFINITY) => Domain::Positive,
        _ => Domain::Interval(lo, hi),
    }
}

fn family_list() -> String {
    Family::TRUNCATABLE
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Checker<'_> {
    /// The bounds of `T[lo, hi]` after a call of `family`; `Err(())` after reporting a mistake.
    pub(super) fn truncation(
        &mut self,
        family: Family,
        t: &ast::Truncation,
        scope: &Scope,
    ) -> Result<Truncation, ()> {
        if t.marker.name != "T" {
            self.error(
                Diagnostic::new(
                    "vi::dist::truncation",
                    format!("`{}[...]` after a distribution", t.marker.name),
                )
                .primary(t.marker.span, "not `T`")
                .help("truncate a density with `T[lo, hi]` (either bound may be left out: `T[0, ]`)"),
            );
            return Err(());
        }
        if t.lo.is_none() && t.hi.is_none() {
            self.error(
                Diagnostic::new("vi::dist::truncation", "`T[, ]` truncates nothing")
                    .primary(t.span, "no bounds")
                    .help("give a bound, `T[lo, ]`, `T[, hi]` or `T[lo, hi]`, or remove it"),
            );
            return Err(());
        }
        if !family.truncatable() {
            self.error(
                Diagnostic::new("vi::dist::truncation_family", format!("{family} cannot be truncated"))
                    .primary(t.span, "needs a closed-form CDF")
                    .help(format!(
                        "truncation renormalises by the CDF, which vinf has for {}; for another family add the log normaliser with `target +=`",
                        family_list()
                    )),
            );
            return Err(());
        }
        let bound = |c: &mut Self, e: &Option<ast::Expr>| -> Result<Option<NodeId>, ()> {
            let Some(e) = e else { return Ok(None) };
            let id = c.expr(e, scope).ok_or(())?;
            if !c.ty(id).shape.is_empty() {
                c.error(
                    Diagnostic::new("vi::shape::rank", "truncation bounds are scalars")
                        .primary(e.span, format!("shape {}", ShapeDisplay(&c.ty(id).shape)))
                        .help("give one bound for every draw; inside a loop it may be indexed, `T[, U[i]]`"),
                );
                return Err(());
            }
            Ok(Some(id))
        };
        let lo = bound(self, &t.lo)?;
        let hi = bound(self, &t.hi)?;
        if let (Some(a), Some(b)) = (
            lo.and_then(|l| self.constant(l)),
            hi.and_then(|h| self.constant(h)),
        ) {
            if a >= b {
                self.error(
                    Diagnostic::new("vi::dist::truncation_bounds", format!("`T[{a}, {b}]` is empty"))
                        .primary(t.span, "the lower bound is not below the upper")
                        .help("write the lower bound first: `T[lo, hi]` with lo < hi"),
                );
                return Err(());
            }
        }
        let support = family.support();
        let s_lo = if support == Domain::Positive {
            0.0
        } else {
            f64::NEG_INFINITY
        };
        if let Some(b) = hi.and_then(|h| self.constant(h)) {
            if b <= s_lo {
                self.error(
                    Diagnostic::new(
                        "vi::dist::truncation_bounds",
                        format!("{family} has no mass below {b}"),
                    )
                    .primary(t.span, format!("{family} draws values in {support}"))
                    .help("the upper bound must lie above the family's lowest value"),
                );
                return Err(());
            }
        }
        Ok(Truncation { lo, hi })
    }

    /// A truncated draw's support: the family's, cut to constant bounds; `None` when a bound is
    /// not constant.
    pub(super) fn truncated_support(&self, app: &DistApp) -> Option<Domain> {
        let t = app.trunc?;
        let lo = match t.lo {
            Some(l) => self.constant(l)?,
            None => f64::NEG_INFINITY,
        };
        let hi = match t.hi {
            Some(h) => self.constant(h)?,
            None => f64::INFINITY,
        };
        let lo = if app.support() == Domain::Positive {
            lo.max(0.0)
        } else {
            lo
        };
        Some(between(lo, hi))
    }

    /// A truncated latent needs constant bounds: reports it otherwise. `Some(support)` when it is
    /// truncated, `None` when it is not.
    pub(super) fn latent_truncation(&mut self, app: &DistApp) -> Result<Option<Domain>, ()> {
        let Some(t) = app.trunc else { return Ok(None) };
        match self.truncated_support(app) {
            Some(d) => Ok(Some(d)),
            None => {
                let moving = [t.lo, t.hi]
                    .into_iter()
                    .flatten()
                    .find(|b| self.constant(*b).is_none());
                let span = moving.map_or(app.span, |b| self.node_span(b));
                self.error(
                    Diagnostic::new("vi::dist::truncation_moving", "a truncated latent's bounds must be constants")
                        .primary(span, "not a constant")
                        .help("the fit maps onto a fixed interval; for bounds that move, declare `latent x: bounded(lo, hi)` (flat between them) and add its density with `target +=`"),
                );
                Err(())
            }
        }
    }

    /// Observed data outside constant truncation bounds have zero density: an error, pointing at
    /// the first value outside.
    pub(super) fn observed_within_truncation(
        &mut self,
        value: NodeId,
        app: &DistApp,
        target_span: crate::syntax::Span,
    ) -> bool {
        let Some(t) = app.trunc else { return true };
        let plain_data = match self.nodes[value.index()].op {
            Op::Data(_) => true,
            Op::PlateView { src, .. } => matches!(self.nodes[src.index()].op, Op::Data(_)),
            _ => false,
        };
        if !plain_data {
            return true;
        }
        let (min, max) = self.value_range(value);
        for (b, below) in [(t.lo, true), (t.hi, false)] {
            let Some(v) = b.and_then(|b| self.constant(b)) else {
                continue;
            };
            // Unbound data have an infinite range: nothing to check until they are bound.
            let (outside, seen) = if below { (min < v, min) } else { (max > v, max) };
            let outside = outside && seen.is_finite();
            if outside {
                self.error(
                    Diagnostic::new(
                        "vi::support::truncation",
                        format!(
                            "the data go {} the truncation bound {v}",
                            if below { "below" } else { "above" }
                        ),
                    )
                    .primary(target_span, format!("has a value {seen}"))
                    .secondary(
                        app.span,
                        format!(
                            "truncated to {}",
                            if below {
                                format!("≥ {v}")
                            } else {
                                format!("≤ {v}")
                            }
                        ),
                    )
                    .help("a truncated density is zero outside its bounds: fix the bounds or the data"),
                );
                return false;
            }
        }
        true
    }
}
