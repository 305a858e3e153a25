//! What each step climbs, and what stops a step: the objectives (the ELBO, or the model's
//! `objective` lines, each over its own learnables) and the faults a step can end in.
//!
//! Never imports the trainer, the checkpoint, `report/` or the posterior tools.

use super::engine::{sample_mean, StepTotals};
use super::guide::{Learnable, Learnables, Owner};
use crate::backend::{Array, Session};
use crate::diag::Diagnostic;
use crate::graph::{Group, Model, NodeId, Op, Quantity};
use crate::syntax::Span;

/// One objective with the learnables it moves (indices into the engine's learnables).
pub(super) struct Objective {
    /// The model's `objective` line, or none for the ELBO.
    objective: Option<usize>,
    pub(super) members: Vec<usize>,
    maximise: bool,
}

impl Objective {
    /// Whether this objective maximises the ELBO itself (no `objective` line).
    pub(super) fn is_elbo(&self) -> bool {
        self.objective.is_none() && self.maximise
    }
}

/// The objectives of a model. Without objective lines, everything maximises the ELBO.
pub(super) fn objectives(model: &Model, learn: &Learnables) -> Vec<Objective> {
    if model.objectives.is_empty() {
        return vec![Objective {
            objective: None,
            members: (0..learn.entries.len()).collect(),
            maximise: true,
        }];
    }
    let claimed: Vec<Group> = model.objectives.iter().flat_map(|o| o.groups.clone()).collect();
    model
        .objectives
        .iter()
        .enumerate()
        .map(|(k, o)| {
            let members: Vec<usize> = learn
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| {
                    if o.groups.is_empty() {
                        !claimed.iter().any(|g| e.owner.in_group(*g))
                    } else {
                        o.groups.iter().any(|g| e.owner.in_group(*g))
                    }
                })
                .map(|(i, _)| i)
                .collect();
            Objective {
                objective: Some(k),
                members,
                maximise: o.maximise,
            }
        })
        .collect()
}

impl Objective {
    /// The loss to descend at step `step` (the objective, negated when it is maximised), from
    /// a pass's totals, their sample means `ll` and `lat`, and the ELBO `elbo` = `ll` + `lat`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn loss(
        &self,
        s: &mut Session,
        model: &Model,
        totals: &StepTotals,
        ll: &Array,
        lat: &Array,
        elbo: Array,
        step: usize,
    ) -> Array {
        let loss = match self.objective {
            None => elbo,
            Some(k) => {
                let o = &model.objectives[k];
                let terms: Vec<Array> = totals.terms.iter().map(|t| sample_mean(s, t)).collect();
                let kl = s.scale(lat, -1.0);
                let q = |q: Quantity| match q {
                    Quantity::Elbo => elbo.clone(),
                    Quantity::LogLik => ll.clone(),
                    Quantity::Kl => kl.clone(),
                    Quantity::Term(t) => terms[t.index()].clone(),
                };
                objective_value(s, model, o.expr, &q, step)
            }
        };
        if self.maximise {
            loss
        } else {
            s.scale(&loss, -1.0)
        }
    }
}

/// The scalar value of an objective expression over the step's quantities.
fn objective_value(
    s: &mut Session,
    model: &Model,
    id: NodeId,
    q: &dyn Fn(Quantity) -> Array,
    step: usize,
) -> Array {
    let node = model.node(id);
    match &node.op {
        Op::Quantity(k) => q(*k),
        Op::Const(c) => s.scalar(*c),
        Op::Anneal { from, to, steps } => s.scalar(from + (to - from) * (step as f64 / steps).min(1.0)),
        Op::Map(f, a) => {
            let a = objective_value(s, model, *a, q, step);
            s.map(*f, &a)
        }
        Op::Zip(f, a, b) => {
            let a = objective_value(s, model, *a, q, step);
            let b = objective_value(s, model, *b, q, step);
            s.zip(*f, &a, &b)
        }
        other => unreachable!("objectives combine quantities and constants, not {other:?}"),
    }
}

/// Why a step made no update. `step` counts the steps done before it.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Fault {
    /// The ELBO estimate was not finite; `site` is the model statement whose log density was
    /// not, when one was (otherwise the guide's density was).
    Elbo { step: usize, site: Option<usize> },
    /// The gradient of the learnable `learnable` (an index into the engine's learnables) was
    /// not finite; `elbo` is the step's ELBO estimate.
    Gradient {
        step: usize,
        learnable: usize,
        elbo: f64,
    },
}

impl Fault {
    /// The fault as a diagnostic pointing at its statement or learnable.
    pub(super) fn diagnostic(&self, model: &Model, learn: &Learnables) -> Diagnostic {
        match *self {
            Fault::Elbo { step, site } => {
                let d = Diagnostic::new(
                    "vi::fit::non_finite",
                    format!("the ELBO became non-finite at step {}", step + 1),
                )
                .with_source(&model.source);
                match site {
                    Some(k) => d.primary(
                        model.sites[k].span,
                        "this statement's log density went non-finite",
                    ),
                    None => d.primary(
                        Span::new(0, 0),
                        "no single statement was non-finite; the guide's density was",
                    ),
                }
            }
            Fault::Gradient {
                step,
                learnable,
                elbo,
            } => {
                let entry = &learn.entries[learnable];
                Diagnostic::new(
                    "vi::fit::non_finite",
                    format!(
                        "the gradient of `{}` became non-finite at step {} (the ELBO was {elbo})",
                        entry.name,
                        step + 1
                    ),
                )
                .primary(learnable_span(model, entry), "its gradient went non-finite")
                .with_source(&model.source)
            }
        }
    }
}

/// Where a learnable was declared: its latent, network or parameter.
fn learnable_span(model: &Model, entry: &Learnable) -> Span {
    match entry.owner {
        Owner::Net(n) => model.nets[n.index()].span,
        Owner::Param(p) => model.params[p.index()].span,
        Owner::Guide => model
            .latents
            .iter()
            .find(|l| entry.name.split('.').nth(1) == Some(l.name.as_str()))
            .map_or(Span::new(0, 0), |l| l.span),
    }
}
