//! Inference: choosing a method for a model and running it.
//!
//! [`fit`] takes a loaded model and its settings and returns a [`FitOutput`]: the posterior
//! summaries, the ELBO trace, the state to save. The engines are [`svi`] (reparameterised
//! gradients) and, where the model is conjugate, closed-form CAVI.

pub mod cavi;
pub mod checkpoint;
pub mod epoch;
pub mod eval;
pub mod guide;
mod linalg;
pub mod memory;
pub mod optim;
pub mod pictures;
pub mod plan;
pub mod psis;
pub mod sample;
pub mod stop;
pub mod svi;
pub mod trust;

pub use linalg::cholesky;
pub use stop::StopRule;

use crate::backend::{Array, Precision, Session};
use crate::diag::{Diagnostic, Diagnostics};
use crate::settings::Settings;
use crate::Loaded;

/// Which engine fitted the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Cavi,
    Svi,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Cavi => "cavi",
            Method::Svi => "svi",
        }
    }
}

/// How a fit ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The stop rule was met.
    Converged,
    /// The step cap was reached while the ELBO was still moving.
    Stalled,
    /// Every requested step ran, as asked: a tolerance of zero turns the stop rule off.
    Completed,
    /// The ELBO went non-finite; the last finite parameters were kept.
    Diverged,
    /// Stopped by Ctrl-C; a checkpoint to resume from was written.
    Interrupted,
}

impl Status {
    /// Where a fit that used all its steps ends: stalled, unless the stop rule was off.
    pub fn at_step_limit(tol: f64) -> Status {
        if tol <= 0.0 {
            Status::Completed
        } else {
            Status::Stalled
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Status::Converged => "converged",
            Status::Stalled => "stalled",
            Status::Completed => "completed",
            Status::Interrupted => "interrupted",
            Status::Diverged => "diverged",
        }
    }
}

/// Everything a fit can be told, with defaults; the CLI and the `fit` block fill it.
#[derive(Clone, Debug)]
pub struct FitOptions {
    pub method: String,
    /// The most steps (SVI) or sweeps (CAVI); each engine has its default.
    pub steps: Option<usize>,
    pub samples: usize,
    pub lr: f64,
    pub optimizer: optim::Kind,
    /// L^B (closed-form KL) rather than L^A.
    pub analytic: bool,
    pub full_rank: bool,
    /// Relative ELBO change that counts as converged; each engine has its default.
    pub tol: Option<f64>,
    pub seed: u64,
    pub restarts: usize,
    pub clip: Option<f64>,
    pub decay: f64,
    pub momentum: f64,
    pub precision: Precision,
    /// Checkpoints (SVI): where, how often, and whether to resume from one.
    pub checkpoint: Option<checkpoint::Plan>,
    /// How many times a non-finite ELBO or gradient may halve the learning rate before the fit
    /// stops as diverged (0: stop at the first).
    pub backoff: usize,
    /// The fraction of the batched plate's rows held out of training (see [`epoch`]).
    pub holdout: f64,
    /// Draws from the fitted q for the PSIS k̂ and the importance-weighted bound (0: none).
    pub diagnostic_draws: usize,
}

impl FitOptions {
    /// Defaults, overridden by the model's `fit` block (already merged with flags).
    pub fn from_settings(settings: &Settings, model: &crate::graph::Model) -> FitOptions {
        let holdout = settings
            .number("holdout")
            .unwrap_or_else(|| epoch::default_holdout(model));
        let split = epoch::split(model, holdout);
        let steps = match (settings.count("steps"), settings.count("epochs")) {
            (Some(s), _) => Some(s),
            (None, Some(e)) => Some(e * epoch::steps_per_epoch(model, split)),
            (None, None) => None,
        };
        // Networks train for the epochs asked: a convergence test on minibatch estimates
        // would stop them on a plateau that more epochs get past.
        let tol = settings.number("tol").or((!model.nets.is_empty()).then_some(0.0));
        FitOptions {
            method: settings.word("method").unwrap_or("auto").to_string(),
            steps,
            samples: settings.count("samples").unwrap_or(1),
            lr: settings.number("lr").unwrap_or(0.01),
            optimizer: settings
                .word("optimizer")
                .and_then(optim::Kind::parse)
                .unwrap_or(optim::Kind::Adam),
            analytic: settings.word("estimator") == Some("analytic"),
            full_rank: settings.word("guide") == Some("full_rank"),
            tol,
            holdout,
            checkpoint: None,
            backoff: settings.count("backoff").unwrap_or(0),
            seed: settings.count("seed").unwrap_or(0) as u64,
            restarts: settings.count("restarts").unwrap_or(1),
            clip: settings.number("clip"),
            decay: settings.number("decay").unwrap_or(0.0),
            momentum: settings.number("momentum").unwrap_or(0.9),
            // Gradient estimates are noisy far above f32's rounding; CAVI always uses f64.
            precision: Precision::F32,
            diagnostic_draws: 1000,
        }
    }
}

/// Posterior summary of one latent, elementwise, flattened row-major.
#[derive(Clone, Debug)]
pub struct LatentSummary {
    pub name: String,
    pub shape: Vec<usize>,
    pub mean: Vec<f64>,
    pub sd: Vec<f64>,
    pub q05: Vec<f64>,
    pub q95: Vec<f64>,
}

impl LatentSummary {
    /// From `draws` samples laid out sample-major, `per` values each.
    pub fn from_draws(
        name: &str,
        shape: Vec<usize>,
        values: &[f64],
        draws: usize,
        per: usize,
    ) -> LatentSummary {
        let mut mean = vec![0.0; per];
        let mut sd = vec![0.0; per];
        let mut q05 = vec![0.0; per];
        let mut q95 = vec![0.0; per];
        let mut col = vec![0.0; draws];
        for j in 0..per {
            for (i, c) in col.iter_mut().enumerate() {
                *c = values[i * per + j];
            }
            let m = col.iter().sum::<f64>() / draws as f64;
            let v = col.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (draws.max(2) - 1) as f64;
            col.sort_by(f64::total_cmp);
            mean[j] = m;
            sd[j] = v.sqrt();
            q05[j] = quantile(&col, 0.05);
            q95[j] = quantile(&col, 0.95);
        }
        LatentSummary {
            name: name.to_string(),
            shape,
            mean,
            sd,
            q05,
            q95,
        }
    }
}

/// Linear-interpolated quantile of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// A named tensor to report or save.
#[derive(Clone, Debug)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

/// The result of a fit.
#[derive(Clone, Debug)]
pub struct FitOutput {
    pub method: Method,
    /// One line per latent: how it was fitted and why.
    pub reasons: Vec<String>,
    pub status: Status,
    pub iterations: usize,
    pub elbo_trace: Vec<f64>,
    /// The final ELBO (CAVI: exact; SVI: the mean of the last window of estimates).
    pub elbo: f64,
    pub time_s: f64,
    pub latents: Vec<LatentSummary>,
    /// The model's `param`s, constrained.
    pub params: Vec<NamedTensor>,
    /// Every learned tensor (variational parameters, params unconstrained, network weights).
    pub state: Vec<NamedTensor>,
    pub notes: Vec<String>,
    /// Set when the fit stopped on a non-finite ELBO.
    pub diverged: Option<Diagnostic>,
    /// The automatic guide's kind (`mean_field`, `full_rank`), for SVI fits.
    pub guide: Option<&'static str>,
    /// Seconds in the iterations themselves (no setup, no summaries).
    pub loop_s: f64,
    /// How far to trust the fit (k̂, the IW bound), when the diagnostics ran.
    pub trust: Option<trust::Trust>,
    /// Per-epoch reports, for models with a batched plate.
    pub epochs: Vec<epoch::EpochReport>,
}

/// What an engine reports while it runs.
#[derive(Clone, Debug)]
pub enum Progress {
    /// One step (SVI) or sweep (CAVI) done.
    Step {
        step: usize,
        total: usize,
        elbo: f64,
        unit: &'static str,
    },
    Diverged(Diagnostic),
    /// One pass over the training rows done.
    Epoch(epoch::EpochReport),
    /// A checkpoint was written after this step.
    Checkpoint {
        step: usize,
    },
    /// A non-finite value at this step: back to the last finite parameters, at this learning rate.
    Backoff {
        step: usize,
        lr: f64,
        reason: String,
    },
}

/// Upload the bound data (bytes scaled for `unit` data) as arrays, with host copies.
pub fn upload_data(s: &Session, loaded: &Loaded) -> (Vec<Option<Array>>, Vec<Option<Vec<f64>>>) {
    let mut arrays = Vec::new();
    let mut hosts = Vec::new();
    for d in &loaded.model.data {
        match loaded.data.get(&d.name) {
            Some(a) => {
                let shape: Vec<usize> = d
                    .shape
                    .iter()
                    .map(|x| x.value().expect("bound by the data"))
                    .collect();
                let scale = if a.bytes && d.domain == crate::dist::Domain::Unit {
                    1.0 / 255.0
                } else {
                    1.0
                };
                let vals: Vec<f64> = a.values.iter().map(|v| v * scale).collect();
                arrays.push(Some(s.array(&vals, &shape)));
                hosts.push(Some(vals));
            }
            None => {
                arrays.push(None);
                hosts.push(None);
            }
        }
    }
    (arrays, hosts)
}

/// Defaults of the two engines.
pub const SVI_STEPS: usize = 10_000;
pub const SVI_TOL: f64 = 1e-4;
pub const CAVI_SWEEPS: usize = 1_000;
pub const CAVI_TOL: f64 = 1e-8;

/// Fit a loaded model (data bound) with the given options, then diagnose the fit (PSIS k̂ and
/// the importance-weighted bound). `auto` uses CAVI when every latent is conjugate and the model
/// has no params, nets or objectives; SVI otherwise.
pub fn fit(
    loaded: &Loaded,
    opts: &FitOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<FitOutput, Diagnostics> {
    let mut out = run(loaded, opts, progress)?;
    if out.status != Status::Diverged {
        match trust::diagnose(loaded, &out, opts) {
            Ok(t) => out.trust = Some(t),
            Err(why) => out.notes.push(format!("fit diagnostics: {why}")),
        }
    }
    Ok(out)
}

fn run(
    loaded: &Loaded,
    opts: &FitOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<FitOutput, Diagnostics> {
    let model = &loaded.model;
    let plan = plan::analyse(model);
    let learnable = !model.params.is_empty() || !model.nets.is_empty() || !model.objectives.is_empty();
    let use_cavi = match opts.method.as_str() {
        "cavi" => {
            cavi::require_conjugate(model, &plan)?;
            if learnable {
                return Err(Diagnostics::from(
                    Diagnostic::new(
                        "vi::cavi::learnable",
                        "CAVI cannot fit params, nets or objectives",
                    )
                    .primary(
                        crate::syntax::Span::new(0, 0),
                        "this model has learnable parameters",
                    )
                    .help("use `--method svi`")
                    .with_source(&model.source),
                ));
            }
            true
        }
        "svi" => false,
        // Asking for a guide's covariance is asking for gradients.
        _ if model.settings.word("guide").is_some() => false,
        _ => plan.all_conjugate() && !learnable && !model.latents.is_empty(),
    };
    if use_cavi {
        if opts.holdout > 0.0 {
            return Err(Diagnostics::from(
                Diagnostic::new("vi::fit::holdout", "CAVI fits every row: it holds none out")
                    .primary(crate::syntax::Span::new(0, 0), "this model is fitted by CAVI")
                    .help("drop `holdout`, or fit by gradients with `--method svi` to measure held-out rows")
                    .with_source(&model.source),
            ));
        }
        let mut o = opts.clone();
        o.steps.get_or_insert(CAVI_SWEEPS);
        o.tol.get_or_insert(CAVI_TOL);
        memory::check(loaded, &o, true).map_err(Diagnostics::from)?;
        return cavi::fit(loaded, &plan, &o, progress);
    }
    let mut o = opts.clone();
    o.steps.get_or_insert(SVI_STEPS);
    o.tol.get_or_insert(SVI_TOL);
    memory::check(loaded, &o, false).map_err(Diagnostics::from)?;
    let mut out = svi::fit(loaded, &o, progress)?;
    out.guide = Some(if opts.full_rank { "full_rank" } else { "mean_field" });
    out.reasons = plan
        .verdicts
        .iter()
        .map(|v| {
            let guided = model.guide_site(v.latent).map(|g| g.dist.family);
            let how = match guided {
                Some(f) => format!("the guide's {f}"),
                None => format!(
                    "a {} Gaussian on its unconstrained value",
                    if opts.full_rank { "full-rank" } else { "mean-field" }
                ),
            };
            if v.q.is_some() {
                let name = &model.latent(v.latent).name;
                format!("{name}: conjugate, but fitted by gradients with {how} (--method svi)")
            } else {
                format!("{} (with {how})", v.reason)
            }
        })
        .collect();
    Ok(out)
}
