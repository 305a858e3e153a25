//! Distribution calls: family, parameterisation, argument names, constraints and shapes.

use super::shape::broadcast_shapes;
use super::{Checker, Scope};
use crate::diag::{did_you_mean, Diagnostic};
use crate::dist::{Family, Parameterization};
use crate::graph::{Dim, DistApp, NodeId, ShapeDisplay};
use crate::syntax::ast::{self, Arg};

impl Checker<'_> {
    pub(super) fn dist_call(&mut self, call: &ast::DistCall, scope: &Scope) -> Option<DistApp> {
        let Some(family) = Family::from_name(&call.name.name) else {
            let mut d = Diagnostic::new(
                "vi::dist::unknown",
                format!("unknown distribution `{}`", call.name.name),
            )
            .primary(call.name.span, "not a distribution");
            d = match did_you_mean(&call.name.name, Family::names()) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!(
                    "the distributions are {}",
                    Family::ALL
                        .iter()
                        .map(|f| f.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
            self.error(d);
            return None;
        };
        if family == Family::Mixture {
            return self.mixture_call(call, scope);
        }
        let (pz, assigned) = self.assign_args(family, call)?;
        let specs = family.params(pz);
        let mut args = Vec::with_capacity(specs.len());
        for (spec, arg) in specs.iter().zip(&assigned) {
            let id = self.expr(&arg.value, scope);
            args.push((id, spec, arg));
        }
        let mut nodes = Vec::with_capacity(args.len());
        for (id, spec, arg) in &args {
            let id = (*id)?;
            if let Some(v) = self.constant(id) {
                if !spec.domain.admits(v) {
                    self.error(
                        Diagnostic::new(
                            "vi::support::bad_constant",
                            format!(
                                "`{}` of {} must be {}, found {v}",
                                spec.name,
                                family,
                                domain_phrase(spec.domain)
                            ),
                        )
                        .primary(
                            arg.value.span,
                            format!("{v} is not {}", domain_phrase(spec.domain)),
                        )
                        .help(constraint_help(family, spec.name)),
                    );
                    return None;
                }
            }
            if self.constant(id).is_none() && !self.check_argument_support(family, spec, id, arg.value.span) {
                return None;
            }
            let rank = self.ty(id).shape.len();
            if rank < spec.event_rank {
                self.error(
                    Diagnostic::new(
                        "vi::shape::rank",
                        format!(
                            "`{}` of {} must have at least {} ax{}",
                            spec.name,
                            family,
                            spec.event_rank,
                            if spec.event_rank == 1 { "is" } else { "es" }
                        ),
                    )
                    .primary(
                        arg.value.span,
                        format!("shape {}", ShapeDisplay(&self.ty(id).shape)),
                    )
                    .help(match spec.event_rank {
                        1 => format!("`{}` is a vector, e.g. `fill(1.0 / K, K)`", spec.name),
                        _ => format!("`{}` is a matrix", spec.name),
                    }),
                );
                return None;
            }
            nodes.push(id);
        }
        // Batch shape: the parameters' shapes without their event axes, broadcast together.
        let mut batch: Vec<Dim> = Vec::new();
        let mut first: Option<NodeId> = None;
        for (&id, spec) in nodes.iter().zip(specs) {
            let shape = self.ty(id).shape.clone();
            let b = &shape[..shape.len() - spec.event_rank];
            match broadcast_shapes(&batch, b) {
                Some(s) => batch = s,
                None => {
                    let other = first.expect("the first parameter always broadcasts");
                    self.error(
                        Diagnostic::new(
                            "vi::shape::mismatch",
                            format!("the parameters of {family} have shapes that do not broadcast"),
                        )
                        .primary(self.node_span(id), format!("shape {}", ShapeDisplay(b)))
                        .secondary(self.node_span(other), format!("shape {}", ShapeDisplay(&batch)))
                        .help("parameters must have equal shapes, or be scalars"),
                    );
                    return None;
                }
            }
            first.get_or_insert(id);
        }
        let event = self.event_shape(family, &nodes, specs)?;
        let iid = match &call.iid {
            None => Vec::new(),
            Some((dims, _)) => {
                let mut out = Vec::new();
                for d in dims {
                    out.push(self.dim(d));
                }
                out.into_iter().collect::<Option<Vec<_>>>()?
            }
        };
        let trunc = match &call.trunc {
            None => None,
            Some(t) => Some(self.truncation(family, t, scope).ok()?),
        };
        Some(DistApp {
            family,
            pz,
            args: nodes,
            iid,
            batch,
            event,
            trunc,
            span: call.span,
        })
    }

    /// Match positional and named arguments to one of the family's parameterisations.
    fn assign_args<'a>(
        &mut self,
        family: Family,
        call: &'a ast::DistCall,
    ) -> Option<(Parameterization, Vec<&'a Arg>)> {
        let all = family.parameterizations();
        // A named argument that only an alternative parameterisation has selects it.
        let mut pz = all[0].0;
        for a in &call.args {
            if let Some(n) = &a.name {
                if let Some((k, _)) = all.iter().find(|(_, ps)| ps.iter().any(|p| p.name == n.name)) {
                    if *k != all[0].0 && !all[0].1.iter().any(|p| p.name == n.name) {
                        pz = *k;
                    }
                }
            }
        }
        let specs = family.params(pz);
        let signature = format!(
            "{}({})",
            family,
            specs.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
        );
        let alternatives: Vec<String> = all
            .iter()
            .filter(|(k, _)| *k != pz)
            .map(|(_, ps)| {
                format!(
                    "{}({})",
                    family,
                    ps.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
                )
            })
            .collect();
        let help = if alternatives.is_empty() {
            format!("write `{signature}`")
        } else {
            format!("write `{signature}` (or `{}`)", alternatives.join("`, `"))
        };
        let mut slots: Vec<Option<&Arg>> = vec![None; specs.len()];
        let mut positional = 0;
        for a in &call.args {
            match &a.name {
                None => {
                    if positional >= specs.len() {
                        self.error(
                            Diagnostic::new(
                                "vi::dist::arity",
                                format!(
                                    "{family} takes {} argument{}, found {}",
                                    specs.len(),
                                    if specs.len() == 1 { "" } else { "s" },
                                    call.args.len()
                                ),
                            )
                            .primary(a.span, "extra argument")
                            .help(help),
                        );
                        return None;
                    }
                    slots[positional] = Some(a);
                    positional += 1;
                }
                Some(n) => {
                    let Some(k) = specs.iter().position(|p| p.name == n.name) else {
                        let names = all.iter().flat_map(|(_, ps)| ps.iter().map(|p| p.name));
                        let mut d = Diagnostic::new(
                            "vi::dist::unknown_argument",
                            format!("{family} has no parameter `{}`", n.name),
                        )
                        .primary(n.span, "unknown parameter");
                        d = match did_you_mean(&n.name, names) {
                            Some(s) => d.help(format!("did you mean `{s}`? {help}")),
                            None => d.help(help),
                        };
                        self.error(d);
                        return None;
                    };
                    if let Some(prev) = slots[k] {
                        self.error(
                            Diagnostic::new(
                                "vi::dist::duplicate_argument",
                                format!("`{}` is given twice", n.name),
                            )
                            .primary(a.span, "given again")
                            .secondary(prev.span, "first given here")
                            .help(help),
                        );
                        return None;
                    }
                    slots[k] = Some(a);
                }
            }
        }
        let missing: Vec<&str> = specs
            .iter()
            .zip(&slots)
            .filter(|(_, s)| s.is_none())
            .map(|(p, _)| p.name)
            .collect();
        if !missing.is_empty() {
            self.error(
                Diagnostic::new(
                    "vi::dist::missing_argument",
                    format!(
                        "{family} is missing {}",
                        missing
                            .iter()
                            .map(|m| format!("`{m}`"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                )
                .primary(call.span, "incomplete call")
                .help(help),
            );
            return None;
        }
        Some((pz, slots.into_iter().map(|s| s.expect("all filled")).collect()))
    }

    /// The shape of one draw, from the parameters' event axes.
    fn event_shape(
        &mut self,
        family: Family,
        nodes: &[NodeId],
        specs: &[crate::dist::ParamSpec],
    ) -> Option<Vec<Dim>> {
        let event_of = |c: &Self, k: usize| {
            let s = &c.ty(nodes[k]).shape;
            s[s.len() - specs[k].event_rank..].to_vec()
        };
        match family {
            Family::Dirichlet => Some(event_of(self, 0)),
            Family::Multinomial => Some(event_of(self, 1)),
            Family::MvNormal => {
                let loc = event_of(self, 0);
                let cov = event_of(self, 1);
                if !(cov[0].same(&loc[0]) && cov[1].same(&loc[0])) {
                    self.error(
                        Diagnostic::new(
                            "vi::shape::mismatch",
                            format!(
                                "MvNormal's matrix is {}, its mean has length {}",
                                ShapeDisplay(&cov),
                                loc[0]
                            ),
                        )
                        .primary(self.node_span(nodes[1]), format!("shape {}", ShapeDisplay(&cov)))
                        .secondary(self.node_span(nodes[0]), format!("length {}", loc[0]))
                        .help("a mean of length D needs a D×D covariance or scale matrix"),
                    );
                    return None;
                }
                Some(loc)
            }
            _ => Some(Vec::new()),
        }
    }
}

pub(super) fn domain_phrase(d: crate::dist::Domain) -> String {
    use crate::dist::Domain::*;
    match d {
        Positive => "positive".into(),
        Unit => "in [0, 1]".into(),
        Count => "a whole number ≥ 0".into(),
        other => format!("in {other}"),
    }
}

fn constraint_help(family: Family, param: &str) -> String {
    match param {
        "scale" => format!("a scale is a standard deviation: {family}'s `scale` must be > 0"),
        "precision" => "a precision is 1 / variance and must be > 0".into(),
        "rate" | "shape" | "concentration" | "alpha" | "beta" | "df" => {
            format!("{family}'s `{param}` must be > 0")
        }
        "p" => "a probability lies in [0, 1]; use `logits =` for unconstrained values".into(),
        "n" => "a number of trials is a whole number ≥ 0".into(),
        _ => format!("check {family}'s `{param}`"),
    }
}
