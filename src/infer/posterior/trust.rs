//! After every fit: how far to trust it. Draws from the fitted q, their log importance weights
//! log p(x, z) − log q(z), the PSIS k̂ of those weights with its reading, the importance-weighted
//! bound beside the ELBO, and the PSIS-corrected posterior means.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::infer::memory::{values_per_draw, work_per_draw, WORK_PER_CHUNK};
use crate::infer::psis;

/// Beyond this many evaluations in all, the diagnostics take fewer draws (never fewer than
/// [`MIN_DRAWS`]): a fit on a million rows still gets its trust label, on fewer draws.
const WORK_LIMIT: f64 = 4e8;
/// Fewest draws the diagnostics take: PSIS needs a tail of some 20 weights to fit (k̂'s
/// threshold at 100 draws is 0.5, still readable).
const MIN_DRAWS: usize = 100;
use crate::backend::{Precision, Session};
use crate::dist::density::log_prob;
use crate::dist::{Family, Parameterization};
use crate::graph::{Model, PlateId, Target, ZipFn};
use crate::infer::{FitOptions, FitOutput, Method, NamedTensor, Trust};
use crate::interpret::{expand, sum_shape, zip, Evaluator, Layout, PlateState, Value};
use crate::Loaded;

/// Run the diagnostics on a finished fit; `Err` says why they were not run.
pub fn diagnose(loaded: &Loaded, out: &FitOutput, opts: &FitOptions) -> Result<Trust, String> {
    let model = &loaded.model;
    let asked = opts.diagnostic_draws;
    if asked == 0 {
        return Err("diagnostics off (--diagnostic-draws 0)".into());
    }
    if !model.nets.is_empty() {
        return Err("not computed for models with networks (their codes are per data point)".into());
    }
    if model.latents.is_empty() {
        return Err("no latent variables".into());
    }
    let values = values_per_draw(model);
    let draws = draws_within_limit(asked, values);
    let work = work_per_draw(model);
    let chunk = ((WORK_PER_CHUNK / work) as usize).clamp(1, draws);
    let mut s = Session::new(Precision::F64);
    let (log_w, latent_draws) = match out.method {
        Method::Svi | Method::Pathfinder => {
            let mut o = opts.clone();
            o.precision = Precision::F64;
            crate::infer::svi::log_weights(&mut s, loaded, &o, &out.state, draws, chunk)
                .map_err(|d| d.message)?
        }
        Method::Cavi => cavi_log_weights(&mut s, loaded, &out.state, draws, chunk, opts.seed)?,
    };
    if log_w.iter().any(|w| w.is_nan()) {
        return Err("the log weights are not finite".into());
    }
    let smoothed = psis::smooth(&log_w);
    let weights: Vec<f64> = smoothed.log_weights.iter().map(|l| l.exp()).collect();
    let mut psis_means = Vec::new();
    for (l, d) in model.latents.iter().zip(&latent_draws) {
        if d.is_empty() || out.latents.iter().all(|x| x.name != l.name) {
            continue;
        }
        let per = d.len() / draws;
        let means = (0..per)
            .map(|j| (0..draws).map(|r| weights[r] * d[r * per + j]).sum())
            .collect();
        psis_means.push((l.name.clone(), means));
    }
    let mean = log_w.iter().sum::<f64>() / draws as f64;
    let var = log_w.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / (draws.max(2) - 1) as f64;
    Ok(Trust {
        asked,
        elbo: mean,
        elbo_se: (var / draws as f64).sqrt(),
        draws,
        khat: smoothed.khat,
        reading: psis::reading(smoothed.khat, draws),
        iw_bound: psis::iw_bound(&log_w),
        iw_bound_se: psis::iw_bound_se(&log_w),
        psis_means,
    })
}

/// The draws to take of the `asked`, each evaluating `values` values: all of them within
/// [`WORK_LIMIT`], else as many as it allows but at least [`MIN_DRAWS`] (the work is chunked,
/// so memory stays bounded either way).
fn draws_within_limit(asked: usize, values: f64) -> usize {
    if values * asked as f64 <= WORK_LIMIT {
        return asked;
    }
    ((WORK_LIMIT / values) as usize).clamp(MIN_DRAWS.min(asked), asked)
}

/// Log weights of draws from CAVI's q factors.
pub(super) fn cavi_log_weights(
    s: &mut Session,
    loaded: &Loaded,
    state: &[NamedTensor],
    n: usize,
    chunk: usize,
    seed: u64,
) -> Result<(Vec<f64>, Vec<Vec<f64>>), String> {
    let model = &loaded.model;
    s.no_grad();
    let (data, data_host) = crate::infer::upload_data(s, loaded);
    let plates = PlateState::whole(model);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7e57);
    let mut log_w = Vec::with_capacity(n);
    let mut draws = vec![Vec::new(); model.latents.len()];
    let mut done = 0;
    while done < n {
        let m = chunk.min(n - done);
        let latents =
            super::sample::cavi_draws(s, loaded, state, m, &mut rng).map_err(|d| d.render_plain())?;
        let mut lq = Value::new(s.full(0.0, &[m]), per_draw(m));
        for (l, v) in model.latents.iter().zip(&latents) {
            let v = v.as_ref().expect("every latent is drawn");
            let q = log_q(s, model, state, &l.name, &l.plates, v)?;
            lq = zip(s, ZipFn::Add, &lq, &q);
        }
        let mut noise = |_: &[usize]| -> Vec<f64> { unreachable!("conjugate models draw nothing") };
        let mut ev = Evaluator::new(model, &data, &data_host, plates.clone(), Some(m), &mut noise);
        ev.latents = latents.clone();
        let lp = log_joint(s, model, &mut ev, m);
        let lw = zip(s, ZipFn::Sub, &lp, &lq);
        log_w.extend(s.values(&lw.arr));
        for (d, v) in draws.iter_mut().zip(&latents) {
            if let Some(v) = v {
                d.extend(s.values(&v.arr));
            }
        }
        done += m;
    }
    Ok((log_w, draws))
}

fn per_draw(m: usize) -> Layout {
    Layout {
        samples: Some(m),
        plates: vec![],
        shape: vec![],
    }
}

/// Sum a per-member value over its shape and plates, one number per draw.
fn per_draw_total(s: &mut Session, v: &Value, m: usize) -> Value {
    let v = sum_shape(s, v);
    let v = expand(
        s,
        &v,
        &Layout {
            samples: Some(m),
            ..v.lay.clone()
        },
    );
    let n = v.lay.dims().len();
    let arr = if n > 1 {
        s.sum_axes(&v.arr, 1, n)
    } else {
        v.arr.clone()
    };
    Value::new(arr, per_draw(m))
}

/// log p(x, z) at the evaluator's latents: every statement of the model.
fn log_joint(s: &mut Session, model: &Model, ev: &mut Evaluator, m: usize) -> Value {
    let mut total = Value::new(s.full(0.0, &[m]), per_draw(m));
    for site in &model.sites {
        let x = match &site.target {
            Target::Latent(l) => ev.latents[l.index()].clone().expect("drawn"),
            Target::Data { value, .. } | Target::Derived { value } => ev.eval(s, *value),
        };
        let args: Vec<Value> = site.dist.args.iter().map(|a| ev.eval(s, *a)).collect();
        let lp = crate::infer::svi::site_log_prob(s, ev, site, &args, &x);
        let t = per_draw_total(s, &lp, m);
        total = zip(s, ZipFn::Add, &total, &t);
    }
    total
}

/// log q of one latent's draws, from its saved q factor.
fn log_q(
    s: &mut Session,
    model: &Model,
    state: &[NamedTensor],
    name: &str,
    plates: &[PlateId],
    x: &Value,
) -> Result<Value, String> {
    let m = x.lay.samples.expect("draws");
    let get = |what: &str| state.iter().find(|t| t.name == format!("q.{name}.{what}"));
    let lay = Layout {
        samples: None,
        plates: plates
            .iter()
            .map(|p| (*p, model.plate(*p).size.value().expect("bound")))
            .collect(),
        shape: x.lay.shape.clone(),
    };
    let arr =
        |s: &Session, t: &NamedTensor, lay: &Layout| Value::new(s.array(&t.values, &lay.dims()), lay.clone());
    let st = Parameterization::Standard;
    let lp = if let (Some(mean), Some(var)) = (get("mean"), get("var")) {
        let sd: Vec<f64> = var.values.iter().map(|v| v.sqrt()).collect();
        let sd = NamedTensor {
            values: sd,
            ..var.clone()
        };
        let (mu, sd) = (arr(s, mean, &lay), arr(s, &sd, &lay));
        log_prob(s, Family::Normal, st, &[mu, sd], x)
    } else if let (Some(mean), Some(cov)) = (get("mean"), get("cov")) {
        let d = mean.values.len();
        let mu = arr(s, mean, &lay);
        let c = arr(s, cov, &Layout::of_shape(vec![d, d]));
        crate::infer::svi::mv_normal(s, st, &[mu, c], x)
    } else if let (Some(a), Some(b)) = (get("shape"), get("rate")) {
        let (a, b) = (arr(s, a, &lay), arr(s, b, &lay));
        log_prob(s, Family::Gamma, st, &[a, b], x)
    } else if let (Some(a), Some(b)) = (get("shape"), get("scale")) {
        let (a, b) = (arr(s, a, &lay), arr(s, b, &lay));
        log_prob(s, Family::InverseGamma, st, &[a, b], x)
    } else if let (Some(a), Some(b)) = (get("a"), get("b")) {
        let (a, b) = (arr(s, a, &lay), arr(s, b, &lay));
        log_prob(s, Family::Beta, st, &[a, b], x)
    } else if let Some(alpha) = get("alpha") {
        let al = arr(s, alpha, &lay);
        log_prob(s, Family::Dirichlet, st, &[al], x)
    } else if let Some(p) = get("probs") {
        let mut pl = lay.clone();
        pl.shape.push(*p.shape.last().expect("categories"));
        let pv = arr(s, p, &pl);
        log_prob(s, Family::Categorical, st, &[pv], x)
    } else {
        return Err(format!("no saved q factor for `{name}`"));
    };
    Ok(per_draw_total(s, &lp, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_draws_are_fewer_but_never_skipped() {
        assert_eq!(draws_within_limit(1000, 20.0), 1000);
        // Logistic regression on a million rows: 400 draws, not none.
        assert_eq!(draws_within_limit(1000, 1_000_020.0), 399);
        assert_eq!(draws_within_limit(1000, 1e9), MIN_DRAWS);
        assert_eq!(draws_within_limit(50, 1e9), 50);
    }
}
