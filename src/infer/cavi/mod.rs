//! Mean-field coordinate-ascent VI with closed-form updates (variational message passing).
//!
//! Each latent's q is in its prior's exponential family. An update collects the prior's
//! natural parameters and one message from every statement that uses the latent (expected
//! sufficient statistics of its neighbours under q), vectorised over the statement's plates
//! and reduced to the latent's own plates. Categorical assignments get responsibilities from
//! each mixture statement's expected log-likelihood per component. After every sweep the exact
//! ELBO (every constant included) is computed from the same expectations; it never decreases.
//!
//! The rooms (private; the module's face is [`fit`] and [`require_conjugate`]):
//! * `mod.rs`: the entry points, the shared context `Ctx` and its small array helpers;
//! * `variational.rs`: the `Variational` trait every family implements (a leaf: it imports
//!   no family);
//! * `family.rs`: `Q` (one latent's q as one of the families' types) and the one dispatch from
//!   a latent's planned family to its code;
//! * one file per family, each with its q, init, update, expectations, entropy and summary:
//!   `normal.rs`, `block.rs` (a multivariate Normal over regression weights), `gamma.rs`,
//!   `inverse_gamma.rs`, `beta.rs`, `dirichlet.rs`, `categorical.rs`;
//! * `messages.rs`: the accumulate-the-messages skeleton the conjugate updates share, the
//!   responsibilities that weight a mixture's messages, and how a message reaches a latent;
//! * `mixture.rs`: the fused Normal-mixture kernel and the responsibilities it keeps;
//! * `expect.rs`: expectations of arguments and values in a statement's frame;
//! * `elbo.rs`: each statement's expected log-likelihood and the exact ELBO;
//! * `summary.rs`: the summaries loop and the draws and summaries the families share;
//! * `sweeps.rs`: restarts, sweeps, the stop rule and progress.
//!
//! Nothing here imports `svi`, the guides or optimisers, the posterior tools (`trust`, `psis`,
//! `sample`, `eval`, `pictures`), the checkpoint files or the command line; the engine answers
//! to `infer::fit` alone.

mod beta;
mod block;
mod categorical;
mod dirichlet;
mod elbo;
mod expect;
mod family;
mod gamma;
mod inverse_gamma;
mod messages;
mod mixture;
mod normal;
mod summary;
mod sweeps;
mod variational;

use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::plan::{Plan, QFamily, SitePlan};
use super::{FitOptions, FitOutput, Method, Progress};
use crate::backend::{Array, Precision, Session};
use crate::diag::Diagnostics;
use crate::graph::{LatentId, MapFn, Model, NodeId, ZipFn};
use crate::interpret::{map, zip, Evaluator, Layout, PlateState, Value};
use crate::Loaded;

use family::Q;
use mixture::FastMixture;

const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// Values in a statement's frame: its plates, then (for a mixture) the component axis, then
/// the member's own axes.
struct Ctx<'a> {
    s: Session,
    model: &'a Model,
    plan: &'a Plan,
    data: Vec<Option<Array>>,
    data_host: Vec<Option<Vec<f64>>>,
    plates: Vec<PlateState>,
    q: Vec<Option<Q>>,
    /// Latent-free nodes, evaluated once.
    consts: std::collections::HashMap<NodeId, Value>,
    /// Per categorical latent: its fused mixture update, when its statement allows one.
    fast: Vec<Option<FastMixture>>,
}

fn v(arr: Array, lay: Layout) -> Value {
    Value::new(arr, lay)
}

impl<'a> Ctx<'a> {
    fn sc(&self, x: f64) -> Value {
        v(self.s.scalar(x), Layout::scalar())
    }
    fn add(&mut self, a: &Value, b: &Value) -> Value {
        zip(&mut self.s, ZipFn::Add, a, b)
    }
    fn sub(&mut self, a: &Value, b: &Value) -> Value {
        zip(&mut self.s, ZipFn::Sub, a, b)
    }
    fn mul(&mut self, a: &Value, b: &Value) -> Value {
        zip(&mut self.s, ZipFn::Mul, a, b)
    }
    fn div(&mut self, a: &Value, b: &Value) -> Value {
        zip(&mut self.s, ZipFn::Div, a, b)
    }
    fn f(&mut self, f: MapFn, a: &Value) -> Value {
        map(&mut self.s, f, a)
    }
    fn scale(&mut self, a: &Value, k: f64) -> Value {
        v(self.s.scale(&a.arr, k), a.lay.clone())
    }
    fn shift(&mut self, a: &Value, k: f64) -> Value {
        v(self.s.shift(&a.arr, k), a.lay.clone())
    }
    fn total(&mut self, a: &Value) -> f64 {
        let t = self.s.sum(&a.arr);
        self.s.value(&t)
    }
    /// A host vector as a value of layout `lay`.
    fn host(&self, vals: &[f64], lay: &Layout) -> Value {
        v(self.s.array(vals, &lay.dims()), lay.clone())
    }

    /// The layout of a latent's q arrays: its plates (whole) and its shape.
    fn latent_layout(&self, l: LatentId) -> Layout {
        let lat = self.model.latent(l);
        Layout {
            samples: None,
            plates: lat
                .plates
                .iter()
                .map(|p| (*p, self.plates[p.index()].len))
                .collect(),
            shape: lat.shape.iter().map(|d| d.value().expect("bound")).collect(),
        }
    }

    /// Evaluate a node deterministically, with `latent` (if any) standing for a latent's value.
    fn evaluate(&mut self, id: NodeId, latent: Option<(LatentId, Value)>) -> Value {
        let mut noise = |_: &[usize]| -> Vec<f64> { unreachable!("CAVI's evaluations draw nothing") };
        let mut ev = Evaluator::new(
            self.model,
            &self.data,
            &self.data_host,
            self.plates.clone(),
            None,
            &mut noise,
        );
        if let Some((l, stat)) = latent {
            ev.latents[l.index()] = Some(stat);
        }
        ev.eval(&mut self.s, id)
    }

    /// Evaluate a latent-free node (cached).
    fn constant(&mut self, id: NodeId) -> Value {
        if let Some(c) = self.consts.get(&id) {
            return c.clone();
        }
        let val = self.evaluate(id, None);
        self.consts.insert(id, val.clone());
        val
    }

    /// Evaluate a node with latent `l` replaced by `stat` (a linear view of a latent).
    fn through(&mut self, id: NodeId, l: LatentId, stat: Value) -> Value {
        self.evaluate(id, Some((l, stat)))
    }

    fn q(&self, l: LatentId) -> &Q {
        self.q[l.index()].as_ref().expect("initialised")
    }

    /// The statement that gives latent `l` its prior.
    fn prior_plan(&self, l: LatentId) -> SitePlan {
        let site = self.model.latent(l).site;
        self.plan
            .sites
            .iter()
            .find(|sp| sp.site == site)
            .cloned()
            .expect("a conjugate latent's prior is planned")
    }

    /// Categories of a mixture index.
    fn categories(&self, c: LatentId) -> usize {
        let site = &self.model.sites[self.model.latent(c).site];
        let p = site.dist.args[0];
        self.model
            .node(p)
            .ty
            .shape
            .last()
            .and_then(|d| d.value())
            .expect("a probability vector")
    }
}

/// Whether `--method cavi` can fit this model; the diagnostics point at what breaks it.
pub fn require_conjugate(model: &Model, plan: &Plan) -> Result<(), Diagnostics> {
    let mut diags = Diagnostics::new();
    for v in &plan.verdicts {
        if v.q.is_none() {
            let span = v.culprit.unwrap_or(model.latent(v.latent).span);
            diags.push(
                crate::diag::Diagnostic::new("vi::cavi::not_conjugate", format!("`{}` has no closed-form update", model.latent(v.latent).name))
                    .primary(span, v.reason.split(" — ").next().unwrap_or(&v.reason).to_string())
                    .help("use `--method svi` (or `auto`) to fit it by gradients; CAVI needs Normal means, Gamma precisions or rates, Beta probabilities, Dirichlet weights and categorical mixture assignments")
                    .with_source(&model.source),
            );
        }
    }
    diags.into_result(())
}

/// Fit by CAVI. Every latent must be conjugate (see [`require_conjugate`]).
pub fn fit(
    loaded: &Loaded,
    plan: &Plan,
    opts: &FitOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<FitOutput, Diagnostics> {
    let model = &loaded.model;
    require_conjugate(model, plan)?;
    let start = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut s = Session::new(Precision::F64);
    // Closed-form updates need no gradients.
    s.no_grad();
    let (data, data_host) = super::upload_data(&s, loaded);
    let plates = PlateState::whole(model);
    let mut ctx = Ctx {
        s,
        model,
        plan,
        data,
        data_host,
        plates,
        q: vec![None; model.latents.len()],
        consts: Default::default(),
        fast: vec![None; model.latents.len()],
    };
    ctx.find_fast_mixtures();
    // Local assignments first (the paper's order: responsibilities, then components).
    let mut order: Vec<LatentId> = (0..model.latents.len()).map(|k| LatentId(k as u32)).collect();
    order.sort_by_key(|l| plan.q(*l) != QFamily::Categorical);

    let (best, loop_s) = sweeps::best_run(&mut ctx, &order, opts, &mut rng, progress);
    ctx.q = best.q;
    let (latents, state) = ctx.summaries(&mut rng);
    Ok(FitOutput {
        method: Method::Cavi,
        reasons: plan.verdicts.iter().map(|v| v.reason.clone()).collect(),
        status: best.status,
        iterations: best.sweeps,
        elbo_trace: best.trace,
        elbo: best.elbo,
        time_s: start.elapsed().as_secs_f64(),
        latents,
        params: Vec::new(),
        state,
        notes: if opts.restarts > 1 {
            vec![format!("best of {} restarts", opts.restarts)]
        } else {
            Vec::new()
        },
        diverged: None,
        guide: None,
        loop_s,
        trust: None,
        epochs: Vec::new(),
        grad_evals: 0,
        escalation: None,
        rows: None,
        marginals: Vec::new(),
        reparam: None,
        noncentred: Vec::new(),
        derived: Vec::new(),
    })
}
