//! `vinf loo`: Pareto-smoothed importance-sampling leave-one-out cross-validation (Vehtari,
//! Gelman & Gabry 2017) of a fitted model, for comparing models by their expected log
//! predictive density (elpd).
//!
//! Draws come from the fitted q, not the posterior, so each draw carries its importance ratio
//! r = p(x, z) / q(z) to the posterior, and observation i's leave-one-out weights are
//! r / p(x_i | z), Pareto-smoothed (`psis::loo`). The pointwise log-likelihood is every element
//! of every observed statement (`y[n] ~ ...` gives one per n; `target +=` terms are not
//! observations and are left out). The k̂ of each observation says whether its estimate can be
//! trusted; q's own k̂ says whether the draws reach the posterior at all.

use std::collections::HashMap;

use crate::backend::{Precision, Session};
use crate::diag::{Diagnostic, Diagnostics};
use crate::dist::Family;
use crate::graph::Target;
use crate::infer::psis::{self, PointLoo};
use crate::infer::{FitOptions, NamedTensor};
use crate::interpret::{expand, joint_layout, Evaluator, Layout, PlateState, Value};
use crate::Loaded;

/// Draws × observations held at once.
const MAX_VALUES: usize = 50_000_000;

/// The totals over observations.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    /// Σ elpd_i, and its standard error √(N var(elpd_i)).
    pub elpd: f64,
    pub se: f64,
    /// The effective number of parameters: lppd − elpd.
    pub p_loo: f64,
}

impl Summary {
    pub fn of(points: &[PointLoo]) -> Summary {
        let n = points.len() as f64;
        let elpd: f64 = points.iter().map(|p| p.elpd).sum();
        let mean = elpd / n;
        let var = points.iter().map(|p| (p.elpd - mean).powi(2)).sum::<f64>() / n;
        let lppd: f64 = points.iter().map(|p| p.lppd).sum();
        Summary {
            elpd,
            se: (n * var).sqrt(),
            p_loo: lppd - elpd,
        }
    }
}

/// The outcome of `vinf loo`.
#[derive(Clone, Debug)]
pub struct Loo {
    pub summary: Summary,
    pub draws: usize,
    /// Each observation's name (`y[3]`, zero-based) and estimate.
    pub points: Vec<(String, PointLoo)>,
    /// The k̂ of q's own importance ratios.
    pub khat_q: f64,
}

impl Loo {
    /// k̂ above this makes an observation's estimate unreliable.
    pub fn threshold(&self) -> f64 {
        psis::threshold(self.draws)
    }

    pub fn describe(&self) -> String {
        let s = &self.summary;
        let t = self.threshold();
        let bad: Vec<&(String, PointLoo)> = self
            .points
            .iter()
            .filter(|(_, p)| p.khat > t || p.khat.is_nan())
            .collect();
        let mut out = format!(
            "elpd_loo {:.2} ± {:.2} (se), p_loo {:.2}; {} observations, {} draws from q (its own k-hat {:.2})\n",
            s.elpd,
            s.se,
            s.p_loo,
            self.points.len(),
            self.draws,
            self.khat_q
        );
        if bad.is_empty() {
            out += &format!("every observation's k-hat is at most {t:.2}: the estimate is reliable\n");
        } else {
            let mut worst = bad.clone();
            worst.sort_by(|a, b| b.1.khat.total_cmp(&a.1.khat));
            let names: Vec<String> = worst
                .iter()
                .take(5)
                .map(|(n, p)| format!("{n} ({:.2})", p.khat))
                .collect();
            out += &format!(
                "warning: {} observation(s) have k-hat above {t:.2}, so their leave-one-out estimates are unreliable: {}{}\n",
                bad.len(),
                names.join(", "),
                if bad.len() > 5 { ", …" } else { "" }
            );
        }
        if self.khat_q > 0.7 {
            out += &format!(
                "warning: q's own k-hat is {:.2}: its draws are a poor importance proposal for the posterior, so every estimate here may be off (try a richer guide)\n",
                self.khat_q
            );
        }
        out
    }

    pub fn to_json(&self) -> String {
        let points: Vec<serde_json::Value> = self
            .points
            .iter()
            .map(|(n, p)| serde_json::json!({"observation": n, "elpd": p.elpd, "khat": p.khat}))
            .collect();
        serde_json::to_string_pretty(&serde_json::json!({
            "elpd_loo": self.summary.elpd,
            "se": self.summary.se,
            "p_loo": self.summary.p_loo,
            "draws": self.draws,
            "khat_threshold": self.threshold(),
            "khat_q": self.khat_q,
            "pointwise": points,
        }))
        .expect("JSON of plain values")
    }
}

/// The pointwise log-likelihood of every observation at `n` draws of a saved fit's q, with
/// the draws' log importance ratios log p(x, z) / q(z): what PSIS-LOO weighs, and ArviZ's
/// `log_likelihood` group. One column per observation, named `y[i]` (zero-based).
pub struct PointwiseLogLik {
    pub names: Vec<String>,
    pub columns: Vec<Vec<f64>>,
    pub log_ratios: Vec<f64>,
}

/// [`PointwiseLogLik`] of a fit saved as `state` (with its metadata), from `n` draws of its q.
pub fn pointwise_log_lik(
    loaded: &Loaded,
    state: &[NamedTensor],
    meta: &HashMap<String, String>,
    n: usize,
    seed: u64,
) -> Result<PointwiseLogLik, Diagnostics> {
    let model = &loaded.model;
    let refuse = |why: &str| {
        Diagnostics::from(
            Diagnostic::new(
                "vi::loo::unsupported",
                format!("leave-one-out is not computed for {why}"),
            )
            .help("vinf loo needs a model of latents and data alone"),
        )
    };
    if !model.params.is_empty() || !model.nets.is_empty() {
        return Err(refuse("models with params or networks"));
    }
    let observed: Vec<usize> = (0..model.sites.len())
        .filter(|&k| {
            let s = &model.sites[k];
            !matches!(s.target, Target::Latent(_)) && s.dist.family != Family::Factor
        })
        .collect();
    if observed.is_empty() {
        return Err(refuse("a model that observes nothing"));
    }
    let plates = PlateState::whole(model);
    let per_draw: usize = observed
        .iter()
        .map(|k| {
            let s = &model.sites[*k];
            s.plates.iter().map(|p| plates[p.index()].len).product::<usize>()
                * s.dist
                    .batch
                    .iter()
                    .chain(&s.dist.iid)
                    .map(|d| d.value().unwrap_or(1))
                    .product::<usize>()
        })
        .sum();
    if per_draw * n > MAX_VALUES {
        return Err(Diagnostics::from(
            Diagnostic::new(
                "vi::loo::size",
                format!("{n} draws × {per_draw} observations is more than {MAX_VALUES} values"),
            )
            .help("ask for fewer draws with -n"),
        ));
    }
    let mut s = Session::new(Precision::F64);
    s.no_grad();
    let mut opts = FitOptions::from_settings(&model.settings, model);
    opts.guide = crate::infer::Guide::from_saved(meta);
    opts.reparam = crate::infer::Reparam::from_saved(meta);
    opts.precision = Precision::F64;
    opts.seed = seed;
    let (log_r, draws) = match meta.get("method").map(String::as_str) {
        Some("cavi") => {
            super::trust::cavi_log_weights(&mut s, loaded, state, n, n, seed).map_err(|e| refuse(&e))?
        }
        _ => crate::infer::svi::log_weights(&mut s, loaded, &opts, state, n, n).map_err(Diagnostics::from)?,
    };
    // The draws as the evaluator lays latents out: [n, plates..., shape].
    let latents: Vec<Option<Value>> = model
        .latents
        .iter()
        .zip(&draws)
        .map(|(l, d)| {
            let lay = Layout {
                samples: Some(n),
                plates: l.plates.iter().map(|p| (*p, plates[p.index()].len)).collect(),
                shape: l.shape.iter().map(|d| d.value().expect("bound")).collect(),
            };
            (!d.is_empty()).then(|| Value::new(s.array(d, &lay.dims()), lay))
        })
        .collect();
    let (data, data_host) = crate::infer::upload_data(&s, loaded);
    let mut noise = |_: &[usize]| -> Vec<f64> { Vec::new() };
    let mut ev = Evaluator::new(model, &data, &data_host, plates.clone(), Some(n), &mut noise);
    ev.latents = latents;
    let mut columns: Vec<Vec<f64>> = Vec::new();
    let mut names = Vec::new();
    for &k in &observed {
        let site = &model.sites[k];
        let value = match site.target {
            Target::Data { value, .. } | Target::Derived { value } => value,
            Target::Latent(_) => unreachable!("observations only"),
        };
        let x = ev.eval(&mut s, value);
        let args: Vec<Value> = site.dist.args.iter().map(|a| ev.eval(&mut s, *a)).collect();
        let lp = crate::infer::svi::site_log_prob(&mut s, &mut ev, site, &args, &x);
        let mut shape: Vec<usize> = site.dist.iid.iter().map(|d| d.value().expect("bound")).collect();
        shape.extend(site.dist.batch.iter().map(|d| d.value().expect("bound")));
        let full = Layout {
            samples: Some(n),
            plates: site.plates.iter().map(|p| (*p, plates[p.index()].len)).collect(),
            shape,
        };
        let lp = expand(&mut s, &lp, &joint_layout(&full, &lp.lay));
        let values = s.values(&lp.arr);
        let m = values.len() / n;
        let label = match site.target {
            Target::Data { data, .. } => model.data[data.index()].name.clone(),
            // An observed transformation (`log(earn[i]) ~ ...`): named by its statement.
            _ => format!("observation {}", names.len()),
        };
        for i in 0..m {
            columns.push((0..n).map(|d| values[d * m + i]).collect());
            names.push(if m == 1 {
                label.clone()
            } else {
                format!("{label}[{i}]")
            });
        }
    }
    if log_r.iter().chain(columns.iter().flatten()).any(|v| v.is_nan()) {
        return Err(Diagnostics::from(
            Diagnostic::new("vi::loo::not_finite", "the log-likelihoods or importance ratios are not finite")
                .help("the fit's draws reach values where the model's densities are undefined; check the fit's diagnostics"),
        ));
    }
    Ok(PointwiseLogLik {
        names,
        columns,
        log_ratios: log_r,
    })
}

/// PSIS-LOO of a fit saved as `state` (with its metadata), from `n` draws of its q.
pub fn compute(
    loaded: &Loaded,
    state: &[NamedTensor],
    meta: &HashMap<String, String>,
    n: usize,
    seed: u64,
) -> Result<Loo, Diagnostics> {
    let PointwiseLogLik {
        names,
        columns,
        log_ratios: log_r,
    } = pointwise_log_lik(loaded, state, meta, n, seed)?;
    let points = psis::loo(&columns, &log_r);
    Ok(Loo {
        summary: Summary::of(&points),
        draws: n,
        khat_q: psis::smooth(&log_r).khat,
        points: names.into_iter().zip(points).collect(),
    })
}
