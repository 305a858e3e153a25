//! Pathfinder on a model: the engine's log joint over the automatic guide's unconstrained
//! vector as a [`LogDensity`], where that is the whole posterior; the single-path start of a
//! gradient fit; and `--method pathfinder` (multi-path), whose result is saved as a full-rank
//! Gaussian so that every after-fit tool reads it like any fit.
//!
//! Below the trainer (which calls [`start`]); never imports the trainer, `report/` or the
//! posterior tools.

use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::engine::Engine;
use super::guide::{softplus_inv, AutoGuide};
use crate::backend::{Precision, Session};
use crate::diag::{Diagnostic, Diagnostics};
use crate::graph::Model;
use crate::infer::pathfinder::{self, Gaussian, LogDensity, PathFit};
use crate::infer::{FitOptions, FitOutput, Guide, Method, Progress, Status};
use crate::linalg;
use crate::transform::Bijection;
use crate::Loaded;

/// The model's log joint density (with the bijections' log-Jacobians) over the unconstrained
/// vector of its latents, in f64, counting the points it scores.
pub(super) struct ModelDensity<'a> {
    s: Session,
    eng: Engine<'a>,
}

impl<'a> ModelDensity<'a> {
    pub(super) fn new(loaded: &'a Loaded, opts: &'a FitOptions) -> ModelDensity<'a> {
        let s = Session::new(Precision::F64);
        let eng = Engine::new(loaded, opts, &s);
        ModelDensity { s, eng }
    }
}

impl LogDensity for ModelDensity<'_> {
    fn dim(&self) -> usize {
        self.eng.joint_dim()
    }

    fn eval(&mut self, points: &[f64], grad: bool) -> (Vec<f64>, Vec<f64>) {
        self.eng.log_joint(&mut self.s, points, grad)
    }
}

/// Why Pathfinder cannot see the model's whole posterior, if it cannot: it needs every
/// unknown to be a continuous latent of the automatic guide, every plate whole.
pub fn unsupported(model: &Model) -> Option<&'static str> {
    if model.latents.is_empty() {
        Some("the model has no latent variables")
    } else if !model.params.is_empty() {
        Some("the model has params (point estimates are optimised with the guide)")
    } else if !model.nets.is_empty() {
        Some("the model has networks")
    } else if model.guide.is_some() {
        Some("the model has a guide block")
    } else if !model.objectives.is_empty() {
        Some("the model has objectives")
    } else if model.plates.iter().any(|p| p.batch.is_some()) {
        Some("a plate is minibatched (Pathfinder needs the whole log density)")
    } else if unconstrained_len(model) > pathfinder::MAX_DIM {
        Some("the model has more unconstrained values than Pathfinder's dense Gaussians hold (1000)")
    } else {
        None
    }
}

/// Where the model says what [`unsupported`] refuses: the first param, network, guide
/// statement, objective or minibatched plate.
fn what_stops_pathfinder(model: &Model) -> Option<crate::span::Span> {
    (model.params.iter().map(|p| p.span))
        .chain(model.nets.iter().map(|n| n.span))
        .chain(model.guide.iter().flatten().map(|g| g.span))
        .chain(model.objectives.iter().map(|o| o.span))
        .chain(model.plates.iter().filter(|p| p.batch.is_some()).map(|p| p.span))
        .next()
}

/// How many unconstrained values the model's latents have (their bijections' shapes: a
/// simplex of K has K − 1).
pub fn unconstrained_len(model: &Model) -> usize {
    model
        .latents
        .iter()
        .map(|l| {
            let shape = model.full_shape(&l.plates, &l.shape);
            Bijection::for_domain(l.support)
                .map_or(shape.clone(), |b| b.unconstrained_shape(&shape))
                .iter()
                .product::<usize>()
        })
        .sum()
}

/// A gradient fit's starting point: the best normal approximation along one L-BFGS path from
/// the origin, and what finding it cost.
pub(super) struct Start {
    pub(super) approx: Gaussian,
    pub(super) fit_elbo: f64,
    pub(super) iterations: usize,
    pub(super) grad_evals: usize,
    pub(super) density_evals: usize,
}

/// Run single-path Pathfinder for a gradient fit's start.
pub(super) fn start(loaded: &Loaded, opts: &FitOptions) -> Result<Start, String> {
    let mut ld = ModelDensity::new(loaded, opts);
    let d = ld.dim();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x009a_7f1d);
    let set = pathfinder::Settings {
        draws: 0,
        ..pathfinder::Settings::default()
    };
    let fit = pathfinder::single_path(&mut ld, &vec![0.0; d], &set, &mut rng)?;
    if !fit.elbo.is_finite() {
        return Err("no normal approximation along the path has a finite ELBO".into());
    }
    Ok(Start {
        fit_elbo: fit.elbo,
        iterations: fit.iterations,
        grad_evals: fit.grad_evals,
        density_evals: fit.density_evals,
        approx: fit.approx,
    })
}

/// The guide's initial values from a start, per learnable of the automatic guide.
pub(super) fn initial_guide(auto: &AutoGuide, start: &Gaussian) -> Vec<(usize, Vec<f64>)> {
    let d = start.dim();
    let mut out = Vec::new();
    match auto {
        AutoGuide::MeanField(latents) => {
            // The mean-field optimum for a Gaussian target has the conditional sds 1/√Λᵢᵢ; a
            // diagonal start (past the dense size) has them on its diagonal, no inverse needed.
            let conditional: Vec<f64> = if d <= crate::infer::pathfinder::DENSE_MAX {
                let prec = linalg::spd_inverse(&start.chol, d);
                (0..d).map(|i| 1.0 / prec[i * d + i].sqrt()).collect()
            } else {
                (0..d).map(|i| start.chol[i * d + i]).collect()
            };
            for a in latents {
                let r = a.offset..a.offset + a.len();
                out.push((a.loc, start.mean[r.clone()].to_vec()));
                out.push((a.scale, conditional[r].iter().map(|s| softplus_inv(*s)).collect()));
            }
        }
        AutoGuide::FullRank { loc, off, diag, .. } => {
            out.push((*loc, start.mean.clone()));
            let offv = (0..d)
                .flat_map(|i| start.chol[i * d..i * d + i].to_vec())
                .collect();
            out.push((*off, offv));
            out.push((
                *diag,
                (0..d).map(|i| softplus_inv(start.chol[i * d + i])).collect(),
            ));
        }
    }
    out
}

/// The scale of each step of the guide's location-like learnables, from the guide as it
/// stands (`values`, one per learnable) and a floor per value of the joint vector (the start's
/// marginal sds; empty for none): the larger of the two, so that a step of `lr` is that
/// fraction of a posterior sd. A location moves in units of its sd (for full rank, the marginal
/// sd, which the off-diagonal entries of its row share); the raw scales move on a log scale
/// already. Following the guide as it learns keeps a start that under-estimated a spread from
/// freezing its location; the floor keeps a mean-field guide's conditional sds (smaller than the
/// marginal ones where latents are correlated) from slowing it down.
pub(super) fn step_scales(auto: &AutoGuide, values: &[Vec<f64>], floor: &[f64]) -> Vec<(usize, Vec<f64>)> {
    let softplus = |x: f64| x.max(0.0) + (-x.abs()).exp().ln_1p();
    let at_least = |i: usize, s: f64| floor.get(i).map_or(s, |f| s.max(*f));
    match auto {
        AutoGuide::MeanField(latents) => latents
            .iter()
            .map(|a| {
                let sc = values[a.scale]
                    .iter()
                    .enumerate()
                    .map(|(j, r)| at_least(a.offset + j, softplus(*r)))
                    .collect();
                (a.loc, sc)
            })
            .collect(),
        AutoGuide::FullRank {
            dim, loc, off, diag, ..
        } => {
            let d = *dim;
            let (o, g) = (&values[*off], &values[*diag]);
            let mut k = 0;
            let mut sd = Vec::with_capacity(d);
            let mut off_sc = Vec::with_capacity(o.len());
            for i in 0..d {
                let row = &o[k..k + i];
                k += i;
                let s = at_least(
                    i,
                    (row.iter().map(|v| v * v).sum::<f64>() + softplus(g[i]).powi(2)).sqrt(),
                );
                off_sc.extend(std::iter::repeat_n(s, i));
                sd.push(s);
            }
            vec![(*loc, sd), (*off, off_sc)]
        }
    }
}

/// The dense preconditioner of a mean-field guide's locations: their learnables in joint
/// order, and the start's Cholesky factor with each row stretched where the guide's sd has
/// outgrown the start's marginal sd (the floor rule of [`step_scales`], for whole rows). None
/// for a full-rank guide (its own factor is fitted) and above [`pathfinder::DENSE_MAX`]
/// values, where the start's factor is diagonal and the step scales already say everything.
pub(super) fn whitening(
    auto: &AutoGuide,
    values: &[Vec<f64>],
    start: &Gaussian,
) -> Option<(Vec<usize>, Vec<f64>)> {
    let AutoGuide::MeanField(latents) = auto else {
        return None;
    };
    if !whitens(auto, start) {
        return None;
    }
    let d = start.dim();
    let softplus = |x: f64| x.max(0.0) + (-x.abs()).exp().ln_1p();
    let marginal = start.sd();
    let mut chol = start.chol.clone();
    for a in latents {
        for (j, raw) in values[a.scale].iter().enumerate() {
            let i = a.offset + j;
            let stretch = (softplus(*raw) / marginal[i]).max(1.0);
            chol[i * d..(i + 1) * d].iter_mut().for_each(|l| *l *= stretch);
        }
    }
    Some((latents.iter().map(|a| a.loc).collect(), chol))
}

/// Whether [`whitening`] applies: a mean-field guide over the start's values, at most
/// [`pathfinder::DENSE_MAX`] of them, where the start has a ridge: some value whose variance
/// the others explain all but [`RIDGE`] of (its row of the correlation's Cholesky factor has
/// a diagonal under √RIDGE). Without one the per-value step scales do as well, and a start
/// that misjudges a funnel's correlations would only mislead the steps.
pub(super) fn whitens(auto: &AutoGuide, start: &Gaussian) -> bool {
    let d = start.dim();
    let fits = matches!(auto, AutoGuide::MeanField(latents)
        if d <= pathfinder::DENSE_MAX && latents.iter().map(|a| a.len()).sum::<usize>() == d);
    let sd = start.sd();
    fits && (0..d).any(|i| start.chol[i * d + i] / sd[i] < RIDGE.sqrt())
}

/// The fraction of a value's variance left unexplained by the others below which the start
/// counts as a ridge (a multiple correlation above 0.77). Measured on the calibration's
/// models: regressions on raw covariates and AR(K) lags sit at 0.02-0.26, from seed to seed
/// (0.1 whitened logmesquite on some seeds only, which then stopped short); the hierarchical
/// models and the well-conditioned regressions at 0.59-0.98.
const RIDGE: f64 = 0.4;

/// A Gaussian with the weighted mean and covariance of draws (row-major, `d` each).
fn moment_match(x: &[f64], log_w: &[f64], d: usize) -> Option<Gaussian> {
    let lse = crate::infer::psis::log_sum_exp(log_w);
    let w: Vec<f64> = log_w.iter().map(|l| (l - lse).exp()).collect();
    let mut mean = vec![0.0; d];
    for (r, wi) in x.chunks(d).zip(&w) {
        mean.iter_mut().zip(r).for_each(|(m, v)| *m += wi * v);
    }
    let mut cov = vec![0.0; d * d];
    for (r, wi) in x.chunks(d).zip(&w) {
        for i in 0..d {
            let a = wi * (r[i] - mean[i]);
            for j in 0..=i {
                cov[i * d + j] += a * (r[j] - mean[j]);
            }
        }
    }
    for i in 0..d {
        for j in 0..i {
            cov[j * d + i] = cov[i * d + j];
        }
    }
    // Fewer effective draws than dimensions leave the covariance singular: a small ridge.
    let ess = 1.0 / w.iter().map(|v| v * v).sum::<f64>();
    let ridge = if ess < 2.0 * d as f64 { 1e-6 } else { 0.0 };
    for i in 0..d {
        cov[i * d + i] += ridge * cov[i * d + i].max(1e-12) + 1e-300;
    }
    linalg::cholesky(&cov, d).map(|chol| Gaussian { mean, chol })
}

/// `--method pathfinder`: multi-path Pathfinder, saved as the full-rank Gaussian with the
/// moments of its importance-weighted pooled draws.
pub fn fit(
    loaded: &Loaded,
    opts: &FitOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<FitOutput, Diagnostics> {
    let model = &loaded.model;
    if let Some(why) = unsupported(model) {
        let mut d = Diagnostic::new(
            "vi::pathfinder::unsupported",
            format!("Pathfinder cannot fit this model: {why}"),
        )
        .help("fit it by gradients with `--method svi`");
        if let Some(span) = what_stops_pathfinder(model) {
            d = d
                .primary(
                    span,
                    "Pathfinder needs every unknown to be a latent of the automatic guide",
                )
                .with_source(&model.source);
        }
        return Err(Diagnostics::from(d));
    }
    let noncentred = super::reparam::noncentred_names(model, opts.reparam);
    let reasons: Vec<String> = model
        .latents
        .iter()
        .map(|l| {
            let value = if noncentred.contains(&l.name) {
                "non-centred"
            } else {
                "unconstrained"
            };
            format!(
                "{}: Pathfinder (a full-rank Gaussian on its {value} value)",
                l.name
            )
        })
        .collect();
    progress(Progress::Plan {
        method: Method::Pathfinder,
        reasons: reasons.clone(),
        rows: None,
    });
    let start = Instant::now();
    let mut full = opts.clone();
    full.guide = Guide::FullRank;
    let mut ld = ModelDensity::new(loaded, &full);
    let d = ld.dim();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x009a_7f1d);
    let starts: Vec<Vec<f64>> = (0..opts.paths.max(1))
        .map(|_| pathfinder::random_start(&mut rng, d))
        .collect();
    let set = pathfinder::Settings::default();
    let multi = pathfinder::multi_path(&mut ld, &starts, &set, set.draws, &mut rng).map_err(|e| {
        Diagnostics::from(
            Diagnostic::new(
                "vi::pathfinder::failed",
                format!("Pathfinder found no approximation: {e}"),
            )
            .help("check the model's supports and priors, or fit it with `--method svi --init origin`"),
        )
    })?;
    let (mut xs, mut lw) = (Vec::new(), Vec::new());
    for p in &multi.paths {
        xs.extend_from_slice(&p.x);
        lw.extend(p.log_p.iter().zip(&p.log_q).map(|(a, b)| {
            let w = a - b;
            if w.is_finite() {
                w
            } else {
                f64::NEG_INFINITY
            }
        }));
    }
    let approx = moment_match(&xs, &lw, d)
        .or_else(|| best_path(&multi.paths).map(|p| p.approx.clone()))
        .ok_or_else(|| {
            Diagnostics::from(
                Diagnostic::new("vi::pathfinder::failed", "Pathfinder's draws have no covariance")
                    .help("fit it with `--method svi`"),
            )
        })?;
    let grad_evals: usize = multi.paths.iter().map(|p| p.grad_evals).sum();
    let density_evals: usize = multi.paths.iter().map(|p| p.density_evals).sum();
    let iterations: usize = multi.paths.iter().map(|p| p.iterations).sum();
    let elbos: Vec<f64> = multi.paths.iter().map(|p| p.elbo).collect();
    for (k, p) in multi.paths.iter().enumerate() {
        progress(Progress::Step {
            step: k + 1,
            total: multi.paths.len(),
            elbo: p.elbo,
            unit: "path",
        });
    }
    // Saved as the full-rank guide, so that sample, eval and the diagnostics read it as one.
    let mut s = Session::new(Precision::F64);
    let mut eng = Engine::new(loaded, &full, &s);
    let mut values: Vec<Vec<f64>> = eng.learn.entries.iter().map(|e| e.host.clone()).collect();
    for (k, v) in initial_guide(eng.auto(), &approx) {
        values[k] = v;
    }
    eng.learn.upload(&s, &values);
    let best = elbos.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut out = super::finish::finish(
        &mut s,
        &mut eng,
        &values,
        &full,
        elbos.clone(),
        Status::Converged,
        iterations,
        start,
    );
    out.method = Method::Pathfinder;
    out.elbo = best;
    out.guide = Some(Guide::FullRank.name());
    out.grad_evals = grad_evals + density_evals;
    out.loop_s = start.elapsed().as_secs_f64();
    let ended: Vec<&str> = multi.paths.iter().map(|p| end_word(p.end)).collect();
    out.notes.push(format!(
        "multi-path Pathfinder: {} paths from random starts ({} L-BFGS iterations, {} gradient and {} density evaluations; paths ended {}); pooled draws' Pareto k̂ {:.2}; saved as the Gaussian with their importance-weighted moments",
        multi.paths.len(),
        iterations,
        grad_evals,
        density_evals,
        ended.join(", "),
        multi.khat,
    ));
    out.reasons = reasons;
    Ok(out)
}

fn best_path(paths: &[PathFit]) -> Option<&PathFit> {
    paths.iter().max_by(|a, b| a.elbo.total_cmp(&b.elbo))
}

fn end_word(e: pathfinder::lbfgs::End) -> &'static str {
    use pathfinder::lbfgs::End;
    match e {
        End::Converged => "converged",
        End::LineSearchFailed => "at a line search without gain",
        End::IterationLimit => "at the iteration limit",
        End::BadStart => "at a start without density",
    }
}
