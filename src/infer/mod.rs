//! Inference: choosing a method for a model and running it.
//!
//! [`fit`] takes a loaded model and its settings and returns a [`FitOutput`]: the posterior
//! summaries, the ELBO trace, the state to save. The engines are [`svi`] (reparameterised
//! gradients) and, where the model is conjugate, closed-form [`cavi`]; [`posterior`] holds what
//! runs on a fit afterwards. ARCHITECTURE.md maps the parts.
//!
//! Never imports `report` or the command line, and prints nothing: progress goes out through
//! the callback, results through [`FitOutput`].

pub mod cavi;
pub mod epoch;
pub mod memory;
mod options;
mod output;
pub mod pathfinder;
pub mod plan;
pub mod posterior;
pub mod psis;
pub mod stop;
pub mod svi;

pub use crate::store::NamedTensor;
pub use options::*;
pub use output::*;
pub use posterior::{arviz, eval, pictures, sample, trust};
pub use stop::StopRule;
pub use svi::reparam::Reparam;
pub use svi::{checkpoint, guide, optim};

use crate::backend::{Array, Session};
use crate::diag::{Diagnostic, Diagnostics};
use crate::Loaded;

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
                let scale = a.unit_factor(d.domain);
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

/// Fit a loaded model (data bound) with the given options, then diagnose the fit (PSIS k̂ and
/// the importance-weighted bound). `auto` uses CAVI when every latent is conjugate and the model
/// has no params, nets or objectives; SVI otherwise.
pub fn fit(
    loaded: &Loaded,
    opts: &FitOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<FitOutput, Diagnostics> {
    let mut out = run(loaded, opts, progress)?;
    diagnose(loaded, opts, &mut out);
    if let Some(richer) = escalation(loaded, opts, &out) {
        let mut o = opts.clone();
        o.guide = Guide::FullRank;
        if let Some(p) = &mut o.checkpoint {
            (p.resume, p.extend, p.keep_final, p.every) = (None, false, false, usize::MAX);
        }
        if let Some(t) = &out.trust {
            progress(Progress::Escalating {
                from: out.guide.unwrap_or("mean_field"),
                to: richer.name(),
                khat: t.khat,
                reading: t.reading,
            });
        }
        let second = match richer {
            Richer::FullRank => run(loaded, &o, progress),
            Richer::Pathfinder => svi::pathfinder::fit(loaded, &o, progress),
        };
        if let Ok(mut second) = second {
            diagnose(loaded, opts, &mut second);
            let keep_second = second.status != Status::Diverged && closer(&out, &second);
            let bound = |f: &FitOutput| {
                f.trust.as_ref().map_or((f64::NEG_INFINITY, f64::INFINITY), |t| {
                    (t.iw_bound, t.iw_bound_se)
                })
            };
            let ((a, se_a), (b, se_b)) = (bound(&out), bound(&second));
            let from = out.guide.unwrap_or("mean_field");
            let e = Escalation {
                from,
                to: richer.name(),
                from_iw_bound: a,
                to_iw_bound: b,
                from_iw_bound_se: se_a,
                to_iw_bound_se: se_b,
                kept: if keep_second { richer.name() } else { from },
                from_iterations: out.iterations,
                to_iterations: second.iterations,
            };
            if keep_second {
                // The final state on disk is the first fit's, which no longer is the answer.
                if let Some(p) = &opts.checkpoint {
                    if std::fs::remove_file(p.path()).is_ok() {
                        second.notes.push(format!(
                            "the kept fit is the {} one `auto` escalated to: `--resume --steps` cannot extend it (fit again with `--guide full-rank` for that)",
                            richer.name().replace('_', "-")
                        ));
                    }
                }
                second.time_s += out.time_s;
                second.grad_evals += out.grad_evals;
                out = second;
            } else {
                out.time_s += second.time_s;
                out.grad_evals += second.grad_evals;
            }
            out.escalation = Some(e);
        }
    }
    summarise_draws(loaded, opts, &mut out);
    Ok(out)
}

/// Derived quantities with more values than this are left to `vinf sample` (as latents are).
const DERIVED_SUMMARY_ELEMENTS: usize = 10_000;

/// Scalars drawn for density plots.
pub const MARGINALS: usize = 20;

/// Latent values above which a model without derived quantities is not drawn for its density
/// plots (1000 draws of each).
const MARGINAL_DRAW_VALUES: usize = 20_000;

/// Summaries of the model's derived quantities, and draws of its first [`MARGINALS`] scalars
/// for their density plots, from 1000 draws of the fitted q (none for models with networks,
/// whose codes are not summarised either).
fn summarise_draws(loaded: &Loaded, opts: &FitOptions, out: &mut FitOutput) {
    let model = &loaded.model;
    if !model.nets.is_empty() || out.state.is_empty() {
        return;
    }
    let latent_values: usize = model
        .latents
        .iter()
        .map(|l| {
            let plates: usize = l
                .plates
                .iter()
                .map(|p| model.plate(*p).size.value().unwrap_or(1))
                .product();
            plates * l.shape.iter().map(|d| d.value().unwrap_or(1)).product::<usize>()
        })
        .sum();
    if model.derived.is_empty() && latent_values > MARGINAL_DRAW_VALUES {
        return;
    }
    const DRAWS: usize = 1000;
    let draws = match sample::fitted_draws(loaded, out, DRAWS, opts.seed ^ 0xde71) {
        Ok(d) => d,
        Err(e) => {
            if !model.derived.is_empty() {
                out.notes.push(format!(
                    "derived quantities: not summarised ({})",
                    e.0.first().map_or(String::new(), |d| d.message.clone())
                ));
            }
            return;
        }
    };
    out.derived = draws
        .iter()
        .filter(|d| d.kind == "derived" && d.shape.iter().product::<usize>() <= DERIVED_SUMMARY_ELEMENTS)
        .map(|d| {
            let per = d.shape.iter().product::<usize>().max(1);
            LatentSummary::from_draws(&d.name, d.shape.clone(), &d.values, DRAWS, per)
        })
        .collect();
    // Categorical latents are shown by their probabilities, not as densities of labels.
    let categorical = |name: &str| {
        out.latents
            .iter()
            .any(|l| l.name == name && l.categories.is_some())
    };
    let mut marginals = Vec::new();
    for d in draws.iter().filter(|d| !categorical(&d.name)) {
        let per = d.shape.iter().product::<usize>().max(1);
        for k in 0..per.min(MARGINALS - marginals.len()) {
            marginals.push(Marginal {
                label: format!("{}{}", d.name, index_label(&d.shape, k)),
                draws: (0..DRAWS).map(|i| d.values[i * per + k]).collect(),
            });
        }
    }
    out.marginals = marginals;
}

/// Whether the richer fit `b` is closer to the posterior than `a`, beyond the estimates'
/// noise: better by twice the combined standard error on the ELBO (KL(q ‖ p) up to log Z, the
/// objective both climbed) or on the importance-weighted bound, and not worse by as much on
/// the other. With k̂ poor, two bounds a few tenths of a nat apart do not say which is closer.
fn closer(a: &FitOutput, b: &FitOutput) -> bool {
    let (Some(ta), Some(tb)) = (&a.trust, &b.trust) else {
        return b.trust.is_some();
    };
    // +1 when b is higher beyond the noise, −1 when lower, 0 within it.
    let verdict = |x: f64, se_x: f64, y: f64, se_y: f64| -> i32 {
        if !x.is_finite() || !y.is_finite() {
            return i32::from(y.is_finite()) - i32::from(x.is_finite());
        }
        let noise = 2.0 * se_x.hypot(se_y);
        if y - x > noise {
            1
        } else if x - y > noise {
            -1
        } else {
            0
        }
    };
    let elbo = verdict(ta.elbo, ta.elbo_se, tb.elbo, tb.elbo_se);
    let iw = verdict(ta.iw_bound, ta.iw_bound_se, tb.iw_bound, tb.iw_bound_se);
    elbo.max(iw) == 1 && elbo.min(iw) >= 0
}

/// Run the diagnostics on a fit, reading the guide it saved (Pathfinder's is full-rank).
fn diagnose(loaded: &Loaded, opts: &FitOptions, out: &mut FitOutput) {
    if out.status == Status::Diverged {
        return;
    }
    let mut o = opts.clone();
    if out.guide == Some(Guide::FullRank.name()) {
        o.guide = Guide::FullRank;
    }
    match trust::diagnose(loaded, out, &o) {
        Ok(t) => out.trust = Some(t),
        Err(why) => out.notes.push(format!("fit diagnostics: {why}")),
    }
}

/// The richer family `auto` escalates to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Richer {
    FullRank,
    Pathfinder,
}

impl Richer {
    /// As `summary.json`'s `escalation` names it.
    fn name(self) -> &'static str {
        match self {
            Richer::FullRank => Guide::FullRank.name(),
            Richer::Pathfinder => Method::Pathfinder.name(),
        }
    }
}

/// Unconstrained values up to which `auto` escalates to a full-rank Gaussian (its factor has
/// d(d+1)/2 values); above, to multi-path Pathfinder.
pub const FULL_RANK_MAX: usize = 200;

/// The richer family `auto` tries after a mean-field gradient fit whose k̂ does not read good, if any: only
/// when the method and the guide were left to it and Pathfinder can see the whole posterior.
fn escalation(loaded: &Loaded, opts: &FitOptions, out: &FitOutput) -> Option<Richer> {
    let model = &loaded.model;
    let asked = opts.method != MethodChoice::Auto
        || model.settings.word("guide").is_some()
        || opts.guide != Guide::MeanField
        || opts.init != Init::Pathfinder;
    if asked || out.method != Method::Svi || out.trust_level() == Some("good") || out.trust.is_none() {
        return None;
    }
    if out.status == Status::Interrupted || svi::pathfinder::unsupported(model).is_some() {
        return None;
    }
    let dim = svi::pathfinder::unconstrained_len(model);
    Some(if dim <= FULL_RANK_MAX && full_rank_covers(model).is_ok() {
        Richer::FullRank
    } else {
        Richer::Pathfinder
    })
}

/// The full-rank guide is one joint Gaussian over every value of every latent: a latent drawn
/// per member of a minibatched plate (a local one, seen a batch at a time) it cannot cover.
fn full_rank_covers(model: &crate::graph::Model) -> Result<(), Diagnostic> {
    for lat in &model.latents {
        let Some(p) = lat
            .plates
            .iter()
            .map(|p| &model.plates[p.index()])
            .find(|p| p.batch.is_some())
        else {
            continue;
        };
        let mut d = Diagnostic::new(
            "vi::guide::full_rank_local",
            format!(
                "the full-rank guide cannot cover `{}`, drawn for each member of the minibatched plate `{}`",
                lat.name, p.var
            ),
        )
        .primary(lat.span, "a latent per plate member")
        .secondary(p.span, "seen a batch at a time");
        if let Some(span) = model.settings.span("guide") {
            d = d.secondary(span, "full-rank asked for here");
        }
        return Err(d
            .help("fit it with the mean-field guide (the default), or fit the whole plate at once by dropping `batch`")
            .with_source(&model.source));
    }
    Ok(())
}

fn run(
    loaded: &Loaded,
    opts: &FitOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<FitOutput, Diagnostics> {
    let model = &loaded.model;
    let plan = plan::analyse(model);
    let learnable = !model.params.is_empty() || !model.nets.is_empty() || !model.objectives.is_empty();
    let use_cavi = match opts.method {
        MethodChoice::Cavi => {
            cavi::require_conjugate(model, &plan)?;
            if learnable {
                let mut d = Diagnostic::new(
                    "vi::cavi::learnable",
                    "CAVI cannot fit params, nets or objectives",
                )
                .help("use `--method svi`");
                let first = (model.params.iter().map(|p| p.span))
                    .chain(model.nets.iter().map(|n| n.span))
                    .chain(model.objectives.iter().map(|o| o.span))
                    .min();
                if let Some(span) = first {
                    d = d
                        .primary(span, "a learnable parameter")
                        .with_source(&model.source);
                }
                return Err(Diagnostics::from(d));
            }
            true
        }
        MethodChoice::Svi => false,
        MethodChoice::Pathfinder => {
            let mut o = opts.clone();
            o.diagnostic_draws = 0;
            memory::check(loaded, &o, false).map_err(Diagnostics::from)?;
            return svi::pathfinder::fit(loaded, opts, progress);
        }
        // Asking for a guide's covariance is asking for gradients.
        _ if model.settings.word("guide").is_some() => false,
        _ => plan.all_conjugate() && !learnable && !model.latents.is_empty(),
    };
    if use_cavi {
        if opts.holdout > 0.0 {
            let mut d = Diagnostic::new("vi::fit::holdout", "CAVI fits every row: it holds none out")
                .help("drop `holdout`, or fit by gradients with `--method svi` to measure held-out rows");
            if let Some(span) = model.settings.span("holdout") {
                d = d.primary(span, "asked for here").with_source(&model.source);
            }
            return Err(Diagnostics::from(d));
        }
        let mut o = opts.clone();
        o.steps.get_or_insert(CAVI_SWEEPS);
        o.tol.get_or_insert(CAVI_TOL);
        memory::check(loaded, &o, true).map_err(Diagnostics::from)?;
        progress(Progress::Plan {
            method: Method::Cavi,
            reasons: plan.verdicts.iter().map(|v| v.reason.clone()).collect(),
            rows: None,
        });
        return cavi::fit(loaded, &plan, &o, progress);
    }
    let mut o = opts.clone();
    o.steps.get_or_insert(SVI_STEPS);
    o.tol.get_or_insert(SVI_TOL);
    if o.guide == Guide::FullRank {
        full_rank_covers(model).map_err(Diagnostics::from)?;
    }
    memory::check(loaded, &o, false).map_err(Diagnostics::from)?;
    let reasons = gradient_reasons(model, &plan, opts, learnable);
    let rows = epoch::training_rows(model, opts.holdout);
    progress(Progress::Plan {
        method: Method::Svi,
        reasons: reasons.clone(),
        rows,
    });
    let classifier = match &opts.classifier {
        Some(path) => {
            let c = posterior::classify::Classifier::load(path).map_err(Diagnostics::from)?;
            match posterior::pictures::image_pixels(model) {
                Some(pixels) if pixels == c.inputs() => Some(c),
                found => {
                    let what = found.map_or("no images".to_string(), |p| format!("images of {p} pixels"));
                    return Err(Diagnostics::from(
                        Diagnostic::new(
                            "vi::io::classifier",
                            format!("the classifier `{}` reads {} pixels; the model has {what}", path.display(), c.inputs()),
                        )
                        .help("give a classifier trained on images like the model's, or leave out `--classifier`"),
                    ));
                }
            }
        }
        None => None,
    };
    let probe = |state: &[NamedTensor], draws: usize| {
        posterior::pictures::sample_check(loaded, &o, state, draws, classifier.as_ref())
    };
    let mut out = svi::fit(loaded, &o, progress, &probe)?;
    out.guide = Some(opts.guide.name());
    out.reasons = reasons;
    out.rows = rows;
    // One figure everywhere: a fit in epochs reports its last epoch's mean, in total.
    if let (Some(n), Some(e)) = (rows, out.epochs.last()) {
        out.elbo = e.train.elbo * n as f64;
    }
    Ok(out)
}

/// Why each latent of a gradient fit is fitted as it is, said before the fit starts.
fn gradient_reasons(
    model: &crate::graph::Model,
    plan: &plan::Plan,
    opts: &FitOptions,
    learnable: bool,
) -> Vec<String> {
    let noncentred = svi::reparam::noncentred_names(model, opts.reparam);
    plan.verdicts
        .iter()
        .map(|v| {
            let guided = model.guide_site(v.latent).map(|g| g.dist.family);
            let name = &model.latent(v.latent).name;
            let how = match guided {
                Some(f) => format!("the guide's {f}"),
                None if noncentred.contains(name) && model.sites[model.latent(v.latent).site].dist.family == crate::dist::Family::Uniform => format!(
                    "a {} Gaussian on the logit of ({name} - low) / (high - low), its bounds moving with the values they read",
                    opts.guide.label()
                ),
                None if noncentred.contains(name) => format!(
                    "a {} Gaussian on its non-centred value, ({name} - loc) / scale of its prior",
                    opts.guide.label()
                ),
                None => format!("a {} Gaussian on its unconstrained value", opts.guide.label()),
            };
            if v.q.is_some() {
                let why = if opts.method == MethodChoice::Svi {
                    "as `--method svi` asks"
                } else if model.settings.word("guide").is_some() {
                    "a guide covariance was asked for"
                } else if learnable {
                    "the model has params or networks"
                } else {
                    "other latents are not conjugate"
                };
                format!("{name}: conjugate, but fitted by gradients with {how} ({why})")
            } else {
                format!("{} (with {how})", v.reason)
            }
        })
        .collect()
}
