//! `Mixture(weights, C(...))`: a finite mixture whose discrete component index is summed out
//! of the density, so that any priors on the components are fitted by gradients (Stan's
//! `log_mix`). The component is one scalar family with its standard parameters, each a vector
//! over the K components or a scalar they share.

use super::shape::broadcast_shapes;
use super::{Checker, Scope};
use crate::diag::Diagnostic;
use crate::dist::{Family, Parameterization};
use crate::graph::{DistApp, Elem, Op, ShapeDisplay, Ty};
use crate::syntax::ast::{self, ExprKind};

const USAGE: &str = "write `Mixture(weights, Normal(mu, sigma))`: a simplex over K components, then one family whose parameters are vectors over the components (or scalars they share)";

impl Checker<'_> {
    pub(super) fn mixture_call(&mut self, call: &ast::DistCall, scope: &Scope) -> Option<DistApp> {
        if let Some(t) = &call.trunc {
            self.error(
                Diagnostic::new("vi::dist::truncation_family", "Mixture cannot be truncated")
                    .primary(t.span, "a truncated mixture")
                    .help(format!(
                        "truncation renormalises by a closed-form CDF, which vinf has for {}",
                        Family::TRUNCATABLE.map(|f| f.name()).join(", ")
                    )),
            );
            return None;
        }
        let (w, comp) = match call.args.as_slice() {
            [w, comp] if w.name.is_none() && comp.name.is_none() => (w, comp),
            _ => {
                self.error(
                    Diagnostic::new("vi::dist::arity", "Mixture takes two arguments, by position")
                        .primary(call.span, format!("{} argument(s)", call.args.len()))
                        .help(USAGE),
                );
                return None;
            }
        };
        let ExprKind::Call { func, args } = &comp.value.kind else {
            self.error(
                Diagnostic::new(
                    "vi::dist::mixture",
                    "the second argument of Mixture is a distribution",
                )
                .primary(comp.value.span, "not a distribution call")
                .help(USAGE),
            );
            return None;
        };
        let Some(family) = Family::from_name(&func.name).filter(|f| Family::MIXABLE.contains(f)) else {
            let names: Vec<&str> = Family::MIXABLE.iter().map(|f| f.name()).collect();
            self.error(
                Diagnostic::new(
                    "vi::dist::mixture",
                    format!("`{}` cannot be a mixture's component", func.name),
                )
                .primary(func.span, "not a mixable family")
                .help(format!("components are one of {}", names.join(", "))),
            );
            return None;
        };
        let component = ast::DistCall {
            trunc: None,
            name: func.clone(),
            args: args.clone(),
            iid: None,
            span: comp.value.span,
        };
        let comp_app = self.dist_call(&component, scope)?;
        if comp_app.pz != Parameterization::Standard {
            self.error(
                Diagnostic::new(
                    "vi::dist::mixture",
                    "a mixture's component takes its standard parameters",
                )
                .primary(comp.value.span, "another parameterisation")
                .help(format!("write `{}` with its first parameter list", family.name())),
            );
            return None;
        }
        let pz = Parameterization::MixtureOf(family);
        let weights = self.expr(&w.value, scope)?;
        let wty = self.ty(weights).clone();
        let Some(k) = wty.shape.last().cloned() else {
            self.error(
                Diagnostic::new(
                    "vi::shape::rank",
                    "Mixture's weights are a vector over the components",
                )
                .primary(w.value.span, "a scalar")
                .help(USAGE),
            );
            return None;
        };
        let spec = Family::Mixture.params(pz)[0];
        if !self.check_argument_support(Family::Mixture, &spec, weights, w.value.span) {
            return None;
        }
        let mut args = vec![weights];
        let mut batch = wty.shape[..wty.shape.len() - 1].to_vec();
        for &a in &comp_app.args {
            let ty = self.ty(a).clone();
            let arg = match ty.shape.last() {
                Some(d) if d.same(&k) => a,
                // A scalar shared by every component.
                None => self.add(
                    Op::Fill {
                        value: a,
                        shape: vec![k.clone()],
                    },
                    Ty {
                        plates: ty.plates.clone(),
                        shape: vec![k.clone()],
                        elem: Elem::Real,
                    },
                    self.node_span(a),
                ),
                Some(d) => {
                    self.error(
                        Diagnostic::new(
                            "vi::shape::mismatch",
                            format!("a component parameter has {d} values, but there are {k} weights"),
                        )
                        .primary(self.node_span(a), format!("shape {}", ShapeDisplay(&ty.shape)))
                        .secondary(w.value.span, format!("shape {}", ShapeDisplay(&wty.shape)))
                        .help("each component parameter is a vector over the components (its last axis), or a scalar they share"),
                    );
                    return None;
                }
            };
            let shape = self.ty(arg).shape.clone();
            match broadcast_shapes(&batch, &shape[..shape.len() - 1]) {
                Some(b) => batch = b,
                None => {
                    self.error(
                        Diagnostic::new(
                            "vi::shape::mismatch",
                            "the mixture's parameters have shapes that do not broadcast",
                        )
                        .primary(self.node_span(arg), format!("shape {}", ShapeDisplay(&shape)))
                        .help("parameters must have equal shapes before their component axis, or be scalars"),
                    );
                    return None;
                }
            }
            args.push(arg);
        }
        let iid = match &call.iid {
            None => Vec::new(),
            Some((dims, _)) => dims.iter().map(|d| self.dim(d)).collect::<Option<Vec<_>>>()?,
        };
        Some(DistApp {
            family: Family::Mixture,
            pz,
            args,
            iid,
            batch,
            event: Vec::new(),
            trunc: None,
            span: call.span,
        })
    }
}
