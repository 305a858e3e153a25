//! Posterior and posterior-predictive draws from a saved fit (`vinf sample`).
//!
//! The latents are drawn from the fitted variational distribution — CAVI's q factors, or the
//! SVI guide restored from its tensors — and every observed statement is then drawn from its
//! likelihood at those latents: replicated data to compare with the real ones.

use std::collections::HashMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::backend::{Precision, Session};
use crate::diag::{Diagnostic, Diagnostics};
use crate::dist::sample::{categorical, draw_scalar, draw_truncated, draw_vector};
use crate::dist::Family;
use crate::graph::{Dim, Target};
use crate::infer::{FitOptions, NamedTensor};
use crate::interpret::{expand, joint_layout, Evaluator, Layout, PlateState, Value};
use crate::Loaded;

/// One drawn variable: `n` draws, each of `shape`, draw-major.
#[derive(Clone, Debug)]
pub struct Drawn {
    pub name: String,
    /// `latent` (a posterior draw) or `predictive` (replicated data).
    pub kind: &'static str,
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

fn dims(d: &[Dim]) -> Vec<usize> {
    d.iter().map(|x| x.value().expect("bound")).collect()
}

/// Draws of the latents (laid out `[n, plates..., shape]`), the params and the networks' layers.
type Posterior = (
    Vec<Option<Value>>,
    Vec<Option<Value>>,
    Vec<Vec<(crate::backend::Array, crate::backend::Array)>>,
);

/// Derived quantities with more values per draw than this are not drawn (a network's output
/// over every row would be): a fit summarises and `vinf sample` writes the rest.
pub const DERIVED_ELEMENTS: usize = 100_000;

/// Draw `n` times from the fit saved as `state` (with its metadata `meta`): the latents, the
/// derived quantities, and every observed statement's replicated data.
pub fn draw(
    loaded: &Loaded,
    state: &[NamedTensor],
    meta: &HashMap<String, String>,
    n: usize,
    seed: u64,
) -> Result<Vec<Drawn>, Diagnostics> {
    draws(loaded, state, meta, n, seed, true)
}

/// Draws of the latents and derived quantities (no replicates) from a fit's output (its
/// tensors and what it saves): what the fit's summary and plots report of them.
pub fn fitted_draws(
    loaded: &Loaded,
    out: &crate::infer::FitOutput,
    n: usize,
    seed: u64,
) -> Result<Vec<Drawn>, Diagnostics> {
    let meta = out.saved_metadata(&loaded.model.name);
    draws(loaded, &out.state, &meta, n, seed, false)
}

/// The latents' draws, then the derived quantities', then (when `all`) the replicates'.
fn draws(
    loaded: &Loaded,
    state: &[NamedTensor],
    meta: &HashMap<String, String>,
    n: usize,
    seed: u64,
    all: bool,
) -> Result<Vec<Drawn>, Diagnostics> {
    let model = &loaded.model;
    let mut s = Session::new(Precision::F64);
    s.no_grad();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let plates = PlateState::whole(model);
    let (latents, params, nets) = posterior(&mut s, loaded, state, meta, n, seed, &mut rng)?;
    let mut out = Vec::new();
    for (k, l) in model.latents.iter().enumerate() {
        if let Some(v) = &latents[k] {
            let mut shape: Vec<usize> = l.plates.iter().map(|p| plates[p.index()].len).collect();
            shape.extend(dims(&l.shape));
            out.push(Drawn {
                name: l.name.clone(),
                kind: "latent",
                shape,
                values: s.values(&v.arr),
            });
        }
    }
    let (data, data_host) = crate::infer::upload_data(&s, loaded);
    let mut noise = |shape: &[usize]| -> Vec<f64> {
        let mut r = ChaCha8Rng::seed_from_u64(seed ^ 0xd1ce);
        (0..shape.iter().product())
            .map(|_| StandardNormal.sample(&mut r))
            .collect()
    };
    let mut ev = Evaluator::new(model, &data, &data_host, plates, Some(n), &mut noise);
    ev.latents = latents;
    ev.params = params;
    ev.nets = nets;
    out.extend(derived(&mut s, &mut ev, n));
    if all {
        out.extend(replicates(&mut s, &mut ev, n, &mut rng));
    }
    Ok(out)
}

/// Each derived quantity at the draws in `ev`, laid out `[n, plates..., shape]`.
fn derived(s: &mut Session, ev: &mut Evaluator, n: usize) -> Vec<Drawn> {
    let model = ev.model;
    let mut out = Vec::new();
    for d in &model.derived {
        let ty = &model.node(d.value).ty;
        let lay = ev.layout_of(&ty.plates, &ty.shape, Some(n));
        let shape: Vec<usize> = lay.dims()[1..].to_vec();
        if shape.iter().product::<usize>() > DERIVED_ELEMENTS {
            continue;
        }
        let v = ev.eval(s, d.value);
        let v = expand(s, &v, &lay);
        out.push(Drawn {
            name: d.name.clone(),
            kind: "derived",
            shape,
            values: s.values(&v.arr),
        });
    }
    out
}

/// Draws of the latents, params and networks from a saved fit.
fn posterior(
    s: &mut Session,
    loaded: &Loaded,
    state: &[NamedTensor],
    meta: &HashMap<String, String>,
    n: usize,
    seed: u64,
    rng: &mut ChaCha8Rng,
) -> Result<Posterior, Diagnostics> {
    let model = &loaded.model;
    let method = meta.get("method").map(String::as_str).unwrap_or("svi");
    if method == "cavi" {
        let lat = cavi_draws(s, loaded, state, n, rng)?;
        return Ok((
            lat,
            vec![None; model.params.len()],
            vec![Vec::new(); model.nets.len()],
        ));
    }
    let mut opts = FitOptions::from_settings(&model.settings, model);
    opts.guide = crate::infer::Guide::from_saved(meta);
    opts.reparam = crate::infer::Reparam::from_saved(meta);
    opts.precision = Precision::F64;
    opts.seed = seed;
    let r = crate::infer::svi::draw_guide(s, loaded, &opts, state, n).map_err(Diagnostics::from)?;
    Ok((r.latents, r.params, r.nets))
}

/// Replicated data: every observed statement drawn at the draws in `ev`.
fn replicates(s: &mut Session, ev: &mut Evaluator, n: usize, rng: &mut ChaCha8Rng) -> Vec<Drawn> {
    let model = ev.model;
    let plates = PlateState::whole(model);
    let mut out = Vec::new();
    for site in &model.sites {
        let Target::Data { data, .. } = site.target else {
            continue;
        };
        let name = model.data[data.index()].name.clone();
        let d = &site.dist;
        let value_shape = dims(&d.value_shape());
        let site_lay = Layout {
            samples: Some(n),
            plates: site.plates.iter().map(|p| (*p, plates[p.index()].len)).collect(),
            shape: value_shape.clone(),
        };
        let specs = d.family.params(d.pz);
        // Each parameter laid out over the draws, the plates and the value's batch axes, keeping
        // its own event axes.
        let mut rows: Vec<Vec<f64>> = Vec::new();
        let mut widths = Vec::new();
        let batch_shape: Vec<usize> = value_shape[..value_shape.len() - d.family.event_rank()].to_vec();
        for (arg, spec) in d.args.iter().zip(specs) {
            let v = ev.eval(s, *arg);
            let ev_shape = v.lay.shape[v.lay.shape.len() - spec.event_rank..].to_vec();
            let mut target = Layout {
                shape: batch_shape.clone(),
                ..site_lay.clone()
            };
            target.shape.extend(ev_shape.iter().copied());
            let target = joint_layout(&target, &v.lay);
            let e = expand(s, &v, &target);
            widths.push(ev_shape.iter().product::<usize>());
            rows.push(s.values(&e.arr));
        }
        // Truncation bounds, one per value, laid out like the scalar parameters.
        let bound_rows = |s: &mut Session, ev: &mut Evaluator, b: Option<crate::graph::NodeId>| {
            b.map(|b| {
                let v = ev.eval(s, b);
                let target = Layout {
                    shape: batch_shape.clone(),
                    ..site_lay.clone()
                };
                let e = expand(s, &v, &joint_layout(&target, &v.lay));
                s.values(&e.arr)
            })
        };
        let (lo, hi) = match d.trunc {
            Some(t) => (bound_rows(s, ev, t.lo), bound_rows(s, ev, t.hi)),
            None => (None, None),
        };
        let count: usize = n
            * site_lay.plates.iter().map(|p| p.1).product::<usize>()
            * batch_shape.iter().product::<usize>();
        let event: usize = d
            .event
            .iter()
            .map(|x| x.value().expect("bound"))
            .product::<usize>()
            .max(1);
        let mut values = Vec::with_capacity(count * event);
        for i in 0..count {
            let params: Vec<&[f64]> = rows
                .iter()
                .zip(&widths)
                .map(|(r, w)| &r[i * w..(i + 1) * w])
                .collect();
            if d.family.event_rank() == 0 && !matches!(d.family, Family::Categorical | Family::Mixture) {
                let p: Vec<f64> = params.iter().map(|x| x[0]).collect();
                values.push(if d.trunc.is_some() {
                    let (l, h) = (lo.as_ref().map(|b| b[i]), hi.as_ref().map(|b| b[i]));
                    draw_truncated(d.family, d.pz, &p, l, h, rng)
                } else {
                    draw_scalar(d.family, d.pz, &p, rng)
                });
            } else {
                values.extend(draw_vector(d.family, d.pz, &params, event, rng));
            }
        }
        let mut shape: Vec<usize> = site_lay.plates.iter().map(|p| p.1).collect();
        shape.extend(value_shape);
        out.push(Drawn {
            name,
            kind: "predictive",
            shape,
            values,
        });
    }
    out
}

/// Posterior draws from CAVI's saved q factors (`q.NAME.mean`, `q.NAME.shape`, ...).
pub(super) fn cavi_draws(
    s: &Session,
    loaded: &Loaded,
    state: &[NamedTensor],
    n: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Option<Value>>, Diagnostics> {
    use rand_distr::{Beta, Gamma};
    let model = &loaded.model;
    let get = |latent: &str, what: &str| -> Option<&NamedTensor> {
        state.iter().find(|t| t.name == format!("q.{latent}.{what}"))
    };
    let mut out = Vec::new();
    for l in &model.latents {
        let plate_len = |p: &crate::graph::PlateId| model.plate(*p).size.value().expect("bound");
        let mut shape: Vec<usize> = l.plates.iter().map(plate_len).collect();
        shape.extend(dims(&l.shape));
        let per: usize = shape.iter().product();
        let missing = || {
            Diagnostics::from(
                Diagnostic::new(
                    "vi::sample::state",
                    format!("the saved fit has no variational factor for `{}`", l.name),
                )
                .help("the model changed since it was fitted; fit it again"),
            )
        };
        let mut vals = Vec::with_capacity(n * per);
        if let (Some(m), Some(v)) = (get(&l.name, "mean"), get(&l.name, "var")) {
            for _ in 0..n {
                for i in 0..per {
                    let z: f64 = StandardNormal.sample(rng);
                    vals.push(m.values[i] + v.values[i].sqrt() * z);
                }
            }
        } else if let (Some(m), Some(c)) = (get(&l.name, "mean"), get(&l.name, "cov")) {
            let d = m.values.len();
            let chol = crate::linalg::cholesky(&c.values, d).ok_or_else(missing)?;
            for _ in 0..n {
                let z: Vec<f64> = (0..d).map(|_| StandardNormal.sample(rng)).collect();
                vals.extend(
                    (0..d).map(|i| m.values[i] + (0..=i).map(|j| chol[i * d + j] * z[j]).sum::<f64>()),
                );
            }
        } else if let (Some(a), Some(b)) = (get(&l.name, "shape"), get(&l.name, "rate")) {
            for _ in 0..n {
                for i in 0..per {
                    vals.push(Gamma::new(a.values[i], 1.0 / b.values[i]).map_or(f64::NAN, |g| g.sample(rng)));
                }
            }
        } else if let (Some(a), Some(b)) = (get(&l.name, "shape"), get(&l.name, "scale")) {
            for _ in 0..n {
                for i in 0..per {
                    vals.push(
                        Gamma::new(a.values[i], 1.0 / b.values[i]).map_or(f64::NAN, |g| 1.0 / g.sample(rng)),
                    );
                }
            }
        } else if let (Some(a), Some(b)) = (get(&l.name, "a"), get(&l.name, "b")) {
            for _ in 0..n {
                for i in 0..per {
                    vals.push(Beta::new(a.values[i], b.values[i]).map_or(f64::NAN, |g| g.sample(rng)));
                }
            }
        } else if let Some(a) = get(&l.name, "alpha") {
            let kk = *shape.last().expect("categories");
            for _ in 0..n {
                for row in a.values.chunks(kk) {
                    vals.extend(draw_vector(
                        Family::Dirichlet,
                        crate::dist::Parameterization::Standard,
                        &[row],
                        kk,
                        rng,
                    ));
                }
            }
        } else if let Some(p) = get(&l.name, "probs") {
            let kk = *p.shape.last().expect("categories");
            for _ in 0..n {
                for row in p.values.chunks(kk) {
                    vals.push(categorical(row, rng) as f64);
                }
            }
        } else {
            return Err(missing());
        }
        let lay = Layout {
            samples: Some(n),
            plates: l.plates.iter().map(|p| (*p, plate_len(p))).collect(),
            shape: dims(&l.shape),
        };
        out.push(Some(Value::new(s.array(&vals, &lay.dims()), lay)));
    }
    Ok(out)
}

/// The observed data arrays, each once (ArviZ's `observed_data`): the data that some `~`
/// statement observes directly.
pub fn observed(loaded: &Loaded) -> Vec<NamedTensor> {
    let m = &loaded.model;
    let mut out: Vec<NamedTensor> = Vec::new();
    for site in &m.sites {
        if let Target::Data { data, .. } = site.target {
            let name = &m.data[data.index()].name;
            if out.iter().any(|t| &t.name == name) {
                continue;
            }
            if let Some(a) = loaded.data.get(name) {
                out.push(NamedTensor {
                    name: name.clone(),
                    shape: a.shape.clone(),
                    values: a.values.clone(),
                });
            }
        }
    }
    out
}

/// The draws in CmdStan's CSV layout, one row per draw, so that `arviz.from_cmdstan` and
/// CmdStanPy's readers take them: `#` comment lines (the model, the method), then `lp__` (0,
/// as CmdStan's variational output writes it: no log density is evaluated here) and one column
/// per element named Stan's way, `theta.1`, `beta.2.1` (1-based, row-major). Posterior
/// predictive replicates are named `NAME_rep`, as Stan programs name them.
pub fn to_cmdstan(draws: &[Drawn], n: usize, model: &str, method: &str) -> String {
    use std::fmt::Write;
    let mut out = format!(
        "# model = {model}\n# method = variational\n#   algorithm = {method} (vinf)\n#   output_samples = {n}\n# written by vinf {}\n",
        env!("CARGO_PKG_VERSION")
    );
    let mut header = vec!["lp__".to_string()];
    for d in draws {
        let base = if d.kind == "predictive" {
            format!("{}_rep", d.name)
        } else {
            d.name.clone()
        };
        let per: usize = d.shape.iter().product::<usize>().max(1);
        for i in 0..per {
            if d.shape.is_empty() {
                header.push(base.clone());
                continue;
            }
            let mut idx = Vec::with_capacity(d.shape.len());
            let mut rest = i;
            for k in (0..d.shape.len()).rev() {
                idx.push(rest % d.shape[k] + 1);
                rest /= d.shape[k];
            }
            idx.reverse();
            let idx: Vec<String> = idx.iter().map(ToString::to_string).collect();
            header.push(format!("{base}.{}", idx.join(".")));
        }
    }
    out.push_str(&header.join(","));
    out.push('\n');
    for r in 0..n {
        out.push('0');
        for d in draws {
            let per: usize = d.shape.iter().product::<usize>().max(1);
            for v in &d.values[r * per..(r + 1) * per] {
                let _ = write!(out, ",{v}");
            }
        }
        out.push('\n');
    }
    out
}

/// The draws as a long CSV: `draw,variable,kind,index,value`, index as `i;j;...`.
pub fn to_csv(draws: &[Drawn], n: usize) -> String {
    use std::fmt::Write;
    let mut out = String::from("draw,variable,kind,index,value\n");
    for d in draws {
        let per: usize = d.shape.iter().product::<usize>().max(1);
        for r in 0..n {
            for i in 0..per {
                let mut idx = Vec::with_capacity(d.shape.len());
                let mut rest = i;
                for k in (0..d.shape.len()).rev() {
                    idx.push(rest % d.shape[k]);
                    rest /= d.shape[k];
                }
                idx.reverse();
                let idx: Vec<String> = idx.iter().map(ToString::to_string).collect();
                let _ = writeln!(
                    out,
                    "{},{},{},{},{}",
                    r,
                    d.name,
                    d.kind,
                    idx.join(";"),
                    d.values[r * per + i]
                );
            }
        }
    }
    out
}
