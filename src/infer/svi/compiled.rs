//! SVI steps as a compiled plan: the first step's pass recorded, checked, then replayed.
//!
//! The first step runs the engine eagerly on a recording session ([`crate::backend::Recording`]);
//! its ops become a [`Plan`], which is run on that step's own params and noise and must give
//! the ELBO, its parts and the gradients the eager pass gave. The second step runs both ways
//! again (new params, new noise: this catches anything the recording took for a constant that
//! is not one) and from the third on the plan runs alone, its noise drawn from the same random
//! stream as the engine's guide, so that a planned fit gives the eager fit's numbers. A model
//! the plan cannot cover runs eagerly, and the fit's notes say why in one line. Whenever the
//! plan ran and agreed, its pass (not the eager one) moves the params, the first two steps
//! included: a fit resumed mid-way records afresh and still takes the unbroken fit's steps.
//!
//! Like the trainer, never imports the after-fit tools, `report/` or the posterior tools.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::guide::{self, Learnables};
use super::objective::Objective;
use crate::backend::{Plan, Precision, Recording};
use crate::graph::{Model, Op};

/// What one step's pass gave: the ELBO estimate, its parts, and the gradients per objective
/// per member.
pub(super) struct Pass {
    pub(super) elbo: f64,
    /// log p(x | z) and the latent part.
    pub(super) parts: (f64, f64),
    pub(super) terms: Vec<f64>,
    pub(super) grads: Vec<Vec<Vec<f64>>>,
}

/// Where a fit stands with its plan.
pub(super) enum Compiled {
    /// The next step records.
    Untried,
    /// The plan runs beside the eager pass once more.
    Checking(Box<Planned>),
    Running(Box<Planned>),
    /// Every step runs eagerly.
    Off,
}

/// Why a model's steps cannot run as a plan, known before any step.
pub(super) fn unsupported(model: &Model, objectives: &[Objective]) -> Option<String> {
    if objectives.len() != 1 || !objectives[0].is_elbo() {
        return Some("the model has its own objectives".to_string());
    }
    if model.plates.iter().any(|p| p.batch.is_some()) {
        return Some("the model draws minibatches, which the compiled plan does not cover yet".to_string());
    }
    for n in &model.nodes {
        match n.op {
            Op::Anneal { .. } => return Some("the model anneals with the step".to_string()),
            Op::Draw(_) => {
                return Some("the model draws values outside its guide".to_string());
            }
            _ => {}
        }
    }
    None
}

/// A plan with the map from its params to the engine's learnables.
pub(super) struct Planned {
    plan: Plan,
    /// The learnable of each of the plan's params.
    slots: Vec<usize>,
    noise_lens: Vec<usize>,
    terms: usize,
}

/// The plan's outputs, in order: the loss, the ELBO, its two parts, then the terms.
pub(super) const OUTPUTS_BEFORE_TERMS: usize = 4;

impl Planned {
    /// The plan of a recorded pass whose outputs are the loss, the ELBO, its parts and the
    /// `terms`' means.
    pub(super) fn new(
        rec: &Recording,
        outputs: &[usize],
        precision: Precision,
        learn: &Learnables,
    ) -> Result<Planned, String> {
        let plan = Plan::new(rec, outputs, precision);
        let slots = plan
            .params()
            .iter()
            .map(|id| {
                learn
                    .entries
                    .iter()
                    .position(|e| e.tensor.id() == *id)
                    .ok_or_else(|| "the pass reads a param that is no learnable".to_string())
            })
            .collect::<Result<Vec<usize>, String>>()?;
        Ok(Planned {
            noise_lens: plan.noise_lens().to_vec(),
            plan,
            slots,
            terms: outputs.len() - OUTPUTS_BEFORE_TERMS,
        })
    }

    /// The noise of the step seeded `noise_seed`, as the engine's guide draws it.
    pub(super) fn noise(&self, noise_seed: u64) -> Vec<Vec<f64>> {
        let mut rng = ChaCha8Rng::seed_from_u64(noise_seed);
        self.noise_lens
            .iter()
            .map(|&n| guide::normals(&mut rng, n))
            .collect()
    }

    /// One pass at `params` (one Vec per learnable) under `noise`; None where the ELBO or a
    /// gradient is not finite (the eager pass then says where).
    pub(super) fn run(&mut self, params: &[Vec<f64>], noise: &[Vec<f64>], members: &[usize]) -> Option<Pass> {
        for (k, &i) in self.slots.iter().enumerate() {
            self.plan.set_param(k, &params[i]);
        }
        for (k, v) in noise.iter().enumerate() {
            self.plan.set_noise(k, v);
        }
        self.plan.forward();
        let first = |plan: &Plan, k: usize| plan.output(k)[0];
        let elbo = first(&self.plan, 1);
        if !elbo.is_finite() {
            return None;
        }
        let parts = (first(&self.plan, 2), first(&self.plan, 3));
        let terms = (0..self.terms)
            .map(|t| first(&self.plan, OUTPUTS_BEFORE_TERMS + t))
            .collect();
        self.plan.backward(0);
        let grads: Vec<Vec<f64>> = members
            .iter()
            .map(|&i| match self.slots.iter().position(|&s| s == i) {
                Some(k) => self.plan.grad(k),
                None => vec![0.0; params[i].len()],
            })
            .collect();
        if grads.iter().flatten().any(|g| !g.is_finite()) {
            return None;
        }
        Some(Pass {
            elbo,
            parts,
            terms,
            grads: vec![grads],
        })
    }
}

/// Whether a planned pass agrees with the eager one to rounding; else what differs.
pub(super) fn agree(planned: &Pass, eager: &Pass, precision: Precision) -> Result<(), String> {
    let tol = match precision {
        Precision::F64 => 1e-8,
        Precision::F32 => 1e-3,
    };
    let close = |a: &[f64], b: &[f64]| {
        let scale = a.iter().chain(b).fold(1e-8f64, |m, v| m.max(v.abs()));
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * scale)
    };
    if !close(&[planned.elbo], &[eager.elbo]) {
        return Err(format!(
            "the plan's ELBO {} differs from the eager pass's {}",
            planned.elbo, eager.elbo
        ));
    }
    if !close(
        &[planned.parts.0, planned.parts.1],
        &[eager.parts.0, eager.parts.1],
    ) || !close(&planned.terms, &eager.terms)
    {
        return Err("the plan's ELBO parts differ from the eager pass's".to_string());
    }
    for (p, e) in planned.grads.iter().flatten().zip(eager.grads.iter().flatten()) {
        if !close(p, e) {
            return Err("the plan's gradients differ from the eager pass's".to_string());
        }
    }
    Ok(())
}
