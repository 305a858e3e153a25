//! Black-box reparameterised variational inference.
//!
//! Each step draws S samples from the guide (the automatic Gaussian over unconstrained values,
//! or the model's `guide` block), evaluates every statement of the model on all of them at once,
//! and climbs the ELBO estimate by stochastic gradients:
//!
//! * L^A (`estimator = mc`): mean over samples of log p(x, z) − log q(z);
//! * L^B (`estimator = analytic`): the expected log-likelihood minus KL(q ‖ prior), the KL in
//!   closed form where guide and prior are both Normal with fixed prior parameters, and by
//!   Monte Carlo otherwise.
//!
//! Batched plates are subsampled each step (a fresh permutation each epoch) and their
//! statements scaled by N/M. Objectives other than the ELBO (`objective` lines) each get their
//! own forward pass, backward pass and optimiser over their own parameter groups.

use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::guide::{self, AutoGuide, AutoLatent, Learnables};
use super::optim::{self, Optimizer};
use super::{FitOptions, FitOutput, LatentSummary, NamedTensor, Progress, Status};
use crate::backend::eval::{expand, map, sum_shape, zip, Evaluator, Layout, PlateState, Value};
use crate::backend::{Array, Grads, Session};
use crate::diag::{Diagnostic, Diagnostics};
use crate::dist::density::{kl_normal, log_prob};
use crate::dist::Family;
use crate::graph::{Group, LatentId, MapFn, Model, NodeId, Op, PlateId, Quantity, Site, Target, ZipFn};
use crate::transform::Bijection;
use crate::Loaded;

/// Draws used to choose between the averaged and the last parameters.
const COMPARE_DRAWS: usize = 100;

/// Refuse models SVI cannot fit, pointing at the statement that stops it.
pub fn check_supported(model: &Model) -> Result<(), Diagnostics> {
    let mut diags = Diagnostics::new();
    for l in &model.latents {
        if l.support.is_discrete() {
            let site = &model.sites[l.site];
            diags.push(
                Diagnostic::new("vi::svi::discrete_latent", format!("`{}` is discrete: gradients cannot pass through it", l.name))
                    .primary(site.span, format!("a {} latent", site.dist.family))
                    .help("fit the model with `--method cavi` (mixtures through a categorical index are conjugate), or marginalise the discrete variable out")
                    .with_source(&model.source),
            );
        }
    }
    for s in model.guide.iter().flatten() {
        if !matches!(s.dist.family, Family::Normal | Family::LogNormal) {
            diags.push(
                Diagnostic::new("vi::svi::guide_family", format!("the guide cannot draw from {} by reparameterisation", s.dist.family))
                    .primary(s.dist.span, "not reparameterisable here")
                    .help("write guide distributions as Normal or LogNormal, or leave this latent to the automatic guide")
                    .with_source(&model.source),
            );
        }
    }
    for n in &model.nodes {
        if let Op::Draw(app) = &n.op {
            if app.family != Family::Normal {
                diags.push(
                    Diagnostic::new(
                        "vi::svi::draw_family",
                        format!("`draw` supports Normal, not {}", app.family),
                    )
                    .primary(app.span, "not supported")
                    .help("draw standard normals and transform them")
                    .with_source(&model.source),
                );
            }
        }
    }
    for site in model.sites.iter() {
        let m = site.dist.args.get(1).map(|a| model.node(*a));
        let fixed =
            m.is_some_and(|n| n.ty.plates.is_empty()) && model.latents_of(site.dist.args[1]).is_empty();
        if site.dist.family == Family::MvNormal && !fixed {
            diags.push(
                Diagnostic::new("vi::svi::mvnormal", "an MvNormal's covariance must be fixed for SVI")
                    .primary(model.node(site.dist.args[1]).span, "depends on a latent or a plate")
                    .help("give it a constant or data covariance (one for all plate members), or write independent Normals")
                    .with_source(&model.source),
            );
        }
    }
    diags.into_result(())
}

/// Per-step totals, each with one value per sample (or none when they do not vary).
struct StepTotals {
    loglik: Value,
    /// log p(z) + log |J| − log q(z) over the latents, or −KL where it is analytic.
    latent: Value,
    terms: Vec<Value>,
    /// Each model statement's total, for locating non-finite values.
    per_site: Vec<(usize, Value)>,
}

struct Engine<'a> {
    model: &'a Model,
    data: Vec<Option<Array>>,
    data_host: Vec<Option<Vec<f64>>>,
    learn: Learnables,
    params: Vec<(usize, Bijection)>,
    nets: Vec<Vec<(usize, usize)>>,
    auto: AutoGuide,
    /// Per plate: the shuffled order and the position in it, for minibatches.
    orders: Vec<(Vec<usize>, usize)>,
    /// Per plate: the rows that train the model (all but the held-out ones).
    train_len: Vec<usize>,
    /// Per plate, for the pass under way: what its statements are multiplied by (N/M for a
    /// minibatch of a training plate, 1 for rows evaluated as they are).
    scales: Vec<f64>,
    /// Count only the statements and guide terms inside this plate (held-out evaluation).
    only_plate: Option<PlateId>,
    /// With `only_plate`: keep that plate's axis in the totals, one value per row and draw.
    per_row: bool,
    rng: ChaCha8Rng,
    analytic: bool,
}

impl<'a> Engine<'a> {
    fn new(loaded: &'a Loaded, opts: &'a FitOptions, s: &Session) -> Engine<'a> {
        let model = &loaded.model;
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let (data, data_host) = super::upload_data(s, loaded);
        let mut learn = Learnables::default();
        let params = guide::init_params(s, model, &mut learn);
        let nets = guide::init_nets(s, model, &mut rng, &mut learn);
        let guided: Vec<LatentId> = model
            .guide
            .iter()
            .flatten()
            .filter_map(|g| match g.target {
                Target::Latent(l) => Some(l),
                _ => None,
            })
            .collect();
        let auto_latents: Vec<LatentId> = (0..model.latents.len())
            .map(|k| LatentId(k as u32))
            .filter(|l| !guided.contains(l))
            .collect();
        let auto = guide::init_auto(
            s,
            model,
            &auto_latents,
            opts.guide == super::Guide::FullRank,
            &mut learn,
        );
        let split = super::epoch::split(model, opts.holdout);
        let train_len: Vec<usize> = model
            .plates
            .iter()
            .enumerate()
            .map(|(k, p)| match split {
                Some(sp) if sp.plate.index() == k => sp.train,
                _ => p.size.value().expect("bound"),
            })
            .collect();
        let orders = model
            .plates
            .iter()
            .zip(&train_len)
            .map(|(p, &n)| {
                let mut order: Vec<usize> = (0..n).collect();
                if p.batch.is_some() {
                    order.shuffle(&mut rng);
                }
                (order, 0)
            })
            .collect();
        Engine {
            model,
            data,
            data_host,
            learn,
            params,
            nets,
            auto,
            orders,
            scales: vec![1.0; train_len.len()],
            train_len,
            only_plate: None,
            per_row: false,
            rng,
            analytic: opts.estimator == super::Estimator::Analytic,
        }
    }

    /// The model's params in their supports.
    fn param_values(&self, s: &mut Session) -> Vec<Value> {
        self.params
            .iter()
            .map(|(li, b)| {
                let leaf = self.learn.leaf(s, *li);
                let shape = self.learn.entries[*li].shape.clone();
                let z = Value::new(leaf, Layout::of_shape(shape));
                b.forward(s, &z).0
            })
            .collect()
    }

    /// A fixed minibatch per plate (its first rows after a shuffle seeded by `salt`), without
    /// moving the epoch's order.
    fn next_batches_from(&self, salt: usize) -> Vec<PlateState> {
        let mut rng = ChaCha8Rng::seed_from_u64(salt as u64 ^ 0xba7c);
        self.model
            .plates
            .iter()
            .zip(&self.train_len)
            .map(|(p, &n)| match p.batch {
                None => PlateState { len: n, batch: None },
                Some(m) => {
                    let mut order: Vec<usize> = (0..n).collect();
                    order.shuffle(&mut rng);
                    order.truncate(m);
                    PlateState {
                        len: m,
                        batch: Some(order),
                    }
                }
            })
            .collect()
    }

    /// The minibatch of each plate for the next step.
    fn next_batches(&mut self) -> Vec<PlateState> {
        let mut out = Vec::new();
        for (k, p) in self.model.plates.iter().enumerate() {
            let n = self.train_len[k];
            match p.batch {
                None => out.push(PlateState { len: n, batch: None }),
                Some(m) => {
                    let (order, pos) = &mut self.orders[k];
                    if *pos + m > n {
                        order.shuffle(&mut self.rng);
                        *pos = 0;
                    }
                    let rows = order[*pos..*pos + m].to_vec();
                    *pos += m;
                    out.push(PlateState {
                        len: m,
                        batch: Some(rows),
                    });
                }
            }
        }
        out
    }

    /// Set each plate's scale for a pass over `plates`: N/M for a minibatch of training rows,
    /// 1 for rows evaluated as they are.
    fn set_scales(&mut self, plates: &[PlateState], minibatch: bool) {
        for (k, p) in plates.iter().enumerate() {
            self.scales[k] = match &p.batch {
                Some(rows) if minibatch => self.train_len[k] as f64 / rows.len() as f64,
                _ => 1.0,
            };
        }
    }

    /// Sum a per-member value over its plates and shape, scaled by N/M; keeps the sample axis.
    fn total(&self, s: &mut Session, v: &Value, plates: &[PlateId]) -> Value {
        if self.only_plate.is_some_and(|p| !plates.contains(&p)) {
            return Value::new(s.scalar(0.0), Layout::scalar());
        }
        let v = sum_shape(s, v);
        if self.per_row {
            // Only the one plate's statements reach here (see `iw_per_row`).
            return v;
        }
        let lead_s = usize::from(v.lay.samples.is_some());
        let n = v.lay.dims().len();
        let arr = if n > lead_s {
            s.sum_axes(&v.arr, lead_s, n)
        } else {
            v.arr.clone()
        };
        let lay = Layout {
            samples: v.lay.samples,
            plates: vec![],
            shape: vec![],
        };
        let scale: f64 = plates.iter().map(|p| self.scales[p.index()]).product();
        let arr = if scale != 1.0 { s.scale(&arr, scale) } else { arr };
        Value::new(arr, lay)
    }

    /// One forward pass: draw from the guide, score the model. `noise_seed` makes the draws of
    /// one step repeatable across its objectives.
    fn forward(
        &mut self,
        s: &mut Session,
        plates: &[PlateState],
        samples: usize,
        noise_seed: u64,
        step: usize,
        score_model: bool,
    ) -> (StepTotals, Vec<Option<Value>>) {
        let model = self.model;
        self.set_scales(plates, self.only_plate.is_none());
        let mut noise_rng = ChaCha8Rng::seed_from_u64(noise_seed);
        let mut draw_rng = ChaCha8Rng::seed_from_u64(noise_seed ^ 0x5eed_d4a3);
        let mut noise = move |shape: &[usize]| guide::normals(&mut draw_rng, shape.iter().product());
        let mut ev = Evaluator::new(
            model,
            &self.data,
            &self.data_host,
            plates.to_vec(),
            Some(samples),
            &mut noise,
        );
        ev.step = step;
        // Params (constrained) and nets.
        ev.params = self.param_values(s).into_iter().map(Some).collect();
        ev.nets = guide::net_arrays(s, &self.learn, &self.nets);

        // The automatic guide.
        let mut latent_total: Option<Value> = None;
        let add_latent = |s: &mut Session, v: Value, acc: &mut Option<Value>| {
            *acc = Some(match acc.take() {
                None => v,
                Some(a) => zip(s, ZipFn::Add, &a, &v),
            });
        };
        let mut kl_done: Vec<bool> = vec![false; model.latents.len()];
        let autos: Vec<AutoLatent> = self.auto.latents().to_vec();
        let zetas = self.draw_auto(s, plates, samples, &mut noise_rng, &mut latent_total);
        for (a, zeta) in autos.iter().zip(zetas) {
            let lat = model.latent(a.latent);
            let (x, logdet) = a.bijection.forward(s, &zeta);
            let ld = self.total(s, &logdet, &lat.plates);
            add_latent(s, ld, &mut latent_total);
            ev.latents[a.latent.index()] = Some(x);
        }
        ev.clear();

        // The user's guide block, in order.
        let guide_sites: Vec<Site> = model.guide.clone().unwrap_or_default();
        for g in &guide_sites {
            let Target::Latent(l) = g.target else { continue };
            let args: Vec<Value> = g.dist.args.iter().map(|a| ev.eval(s, *a)).collect();
            let lay = ev.layout_of(&g.plates, &model.latent(l).shape, Some(samples));
            let eps = guide::normals(&mut noise_rng, lay.dims().iter().product());
            let eps = Value::new(s.array(&eps, &lay.dims()), lay.clone());
            let scaled = zip(s, ZipFn::Mul, &args[1], &eps);
            let z = zip(s, ZipFn::Add, &args[0], &scaled);
            let z = expand(s, &z, &lay);
            let x = if g.dist.family == Family::LogNormal {
                map(s, MapFn::Exp, &z)
            } else {
                z.clone()
            };
            let prior = &model.sites[model.latent(l).site];
            let closed_form = self.analytic
                && g.dist.family == Family::Normal
                && prior.dist.family == Family::Normal
                && prior.dist.pz == crate::dist::Parameterization::Standard
                && prior.dist.args.iter().all(|a| model.latents_of(*a).is_empty());
            if closed_form {
                let pargs: Vec<Value> = prior.dist.args.iter().map(|a| ev.eval(s, *a)).collect();
                let kl = kl_normal(s, &args[0], &args[1], &pargs[0], &pargs[1]);
                let kl = expand(
                    s,
                    &kl,
                    &Layout {
                        samples: None,
                        ..lay.clone()
                    },
                );
                let kl = self.total(s, &kl, &g.plates);
                let neg = Value::new(s.scale(&kl.arr, -1.0), kl.lay.clone());
                add_latent(s, neg, &mut latent_total);
                kl_done[l.index()] = true;
            } else {
                let lq = log_prob(s, g.dist.family, g.dist.pz, &args, &x);
                let lq = self.total(s, &lq, &g.plates);
                let neg = Value::new(s.scale(&lq.arr, -1.0), lq.lay.clone());
                add_latent(s, neg, &mut latent_total);
            }
            ev.latents[l.index()] = Some(x);
        }

        // The model.
        let mut loglik: Option<Value> = None;
        let mut per_site = Vec::new();
        let sites = if score_model { model.sites.as_slice() } else { &[] };
        for (k, site) in sites.iter().enumerate() {
            let (x, is_latent) = match &site.target {
                Target::Latent(l) => {
                    if kl_done[l.index()] {
                        continue;
                    }
                    (ev.latents[l.index()].clone().expect("drawn by the guide"), true)
                }
                Target::Data { value, .. } | Target::Derived { value } => (ev.eval(s, *value), false),
            };
            let args: Vec<Value> = site.dist.args.iter().map(|a| ev.eval(s, *a)).collect();
            let lp = if site.dist.family == Family::MvNormal {
                mv_normal(s, site.dist.pz, &args, &x)
            } else {
                log_prob(s, site.dist.family, site.dist.pz, &args, &x)
            };
            let t = self.total(s, &lp, &site.plates);
            per_site.push((k, t.clone()));
            if is_latent {
                add_latent(s, t, &mut latent_total);
            } else {
                add_latent(s, t, &mut loglik);
            }
        }
        let terms: Vec<Value> = model
            .terms
            .iter()
            .filter(|_| score_model)
            .map(|t| {
                let v = ev.eval(s, t.value);
                self.total(s, &v, &t.plates)
            })
            .collect();
        let latents = ev.latents.clone();
        (
            StepTotals {
                loglik: loglik.unwrap_or_else(|| Value::new(s.scalar(0.0), Layout::scalar())),
                latent: latent_total.unwrap_or_else(|| Value::new(s.scalar(0.0), Layout::scalar())),
                terms,
                per_site,
            },
            latents,
        )
    }

    /// Draw the automatic guide's unconstrained values; adds −log q (or the entropy) to `acc`.
    fn draw_auto(
        &self,
        s: &mut Session,
        plates: &[PlateState],
        samples: usize,
        rng: &mut ChaCha8Rng,
        acc: &mut Option<Value>,
    ) -> Vec<Value> {
        let model = self.model;
        let push = |s: &mut Session, v: Value, acc: &mut Option<Value>| {
            *acc = Some(match acc.take() {
                None => v,
                Some(a) => zip(s, ZipFn::Add, &a, &v),
            });
        };
        match &self.auto {
            AutoGuide::MeanField(latents) => {
                let mut out = Vec::new();
                for a in latents {
                    let lat = model.latent(a.latent);
                    let loc = self.learn.leaf(s, a.loc);
                    let raw = self.learn.leaf(s, a.scale);
                    let sd = s.map(MapFn::Softplus, &raw);
                    // Subsample the rows of batched plates.
                    let (loc, sd) = self.rows_for_batch(s, lat.plates.as_slice(), plates, loc, sd);
                    let mut lay = Layout {
                        samples: None,
                        plates: lat.plates.iter().map(|p| (*p, plates[p.index()].len)).collect(),
                        shape: a.unconstrained[a.plates..].to_vec(),
                    };
                    let loc = Value::new(loc.reshaped(&lay.dims()), lay.clone());
                    let sd = Value::new(sd.reshaped(&lay.dims()), lay.clone());
                    lay.samples = Some(samples);
                    let eps = guide::normals(rng, lay.dims().iter().product());
                    let eps = Value::new(s.array(&eps, &lay.dims()), lay.clone());
                    let scaled = zip(s, ZipFn::Mul, &sd, &eps);
                    let zeta = zip(s, ZipFn::Add, &loc, &scaled);
                    let lsd = map(s, MapFn::Log, &sd);
                    let neg_log_q = if self.analytic {
                        // Entropy: Σ ln σ + ½ ln(2πe)
                        let h = Value::new(
                            s.shift(
                                &lsd.arr,
                                0.5 * (2.0 * std::f64::consts::PI * std::f64::consts::E).ln(),
                            ),
                            lsd.lay.clone(),
                        );
                        self.total(s, &h, &lat.plates)
                    } else {
                        // −log q(ζ) = Σ ½ ε² + ln σ + ½ ln 2π
                        let e2 = map(s, MapFn::Square, &eps);
                        let e2 = Value::new(s.scale(&e2.arr, 0.5), e2.lay.clone());
                        let t = zip(s, ZipFn::Add, &e2, &lsd);
                        let t = Value::new(
                            s.shift(&t.arr, 0.5 * (2.0 * std::f64::consts::PI).ln()),
                            t.lay.clone(),
                        );
                        self.total(s, &t, &lat.plates)
                    };
                    push(s, neg_log_q, acc);
                    out.push(zeta);
                }
                out
            }
            AutoGuide::FullRank {
                latents,
                dim,
                loc,
                off,
                diag,
            } => {
                let dim = *dim;
                let l = guide::cholesky_factor(s, &self.learn, dim, *off, *diag);
                let m = self.learn.leaf(s, *loc);
                let eps_v = guide::normals(rng, samples * dim);
                let eps = s.array(&eps_v, &[samples, dim]);
                let le = s.matmul_t(&eps, &l);
                let mb = s.insert_axis(&m, 0, samples);
                let zeta = s.zip(ZipFn::Add, &mb, &le);
                // −log q = ½ Σ ε² + Σ ln L_ii + d/2 ln 2π (or the entropy, without the ε term)
                let raw = self.learn.leaf(s, *diag);
                let d = s.map(MapFn::Softplus, &raw);
                let ld = s.map(MapFn::Log, &d);
                let sum_ld = s.sum(&ld);
                let c = if self.analytic {
                    0.5 * dim as f64 * (2.0 * std::f64::consts::PI * std::f64::consts::E).ln()
                } else {
                    0.5 * dim as f64 * (2.0 * std::f64::consts::PI).ln()
                };
                let base = s.shift(&sum_ld, c);
                let neg_log_q = if self.analytic {
                    Value::new(base, Layout::scalar())
                } else {
                    let e2 = s.map(MapFn::Square, &eps);
                    let e2 = s.sum_axes(&e2, 1, 2);
                    let e2 = s.scale(&e2, 0.5);
                    let v = Value::new(
                        e2,
                        Layout {
                            samples: Some(samples),
                            plates: vec![],
                            shape: vec![],
                        },
                    );
                    let b = Value::new(base, Layout::scalar());
                    zip(s, ZipFn::Add, &v, &b)
                };
                // One joint Gaussian is no plate's own term.
                if self.only_plate.is_none() {
                    push(s, neg_log_q, acc);
                }
                latents
                    .iter()
                    .map(|a| {
                        let n = a.len();
                        let idx: Vec<usize> = (0..samples)
                            .flat_map(|r| (0..n).map(move |j| r * dim + a.offset + j))
                            .collect();
                        let lay = Layout {
                            samples: Some(samples),
                            plates: model
                                .latent(a.latent)
                                .plates
                                .iter()
                                .map(|p| (*p, plates[p.index()].len))
                                .collect(),
                            shape: a.unconstrained[a.plates..].to_vec(),
                        };
                        let z = s.gather(&zeta, &idx, &lay.dims());
                        Value::new(z, lay)
                    })
                    .collect()
            }
        }
    }

    /// For a latent in batched plates, the rows of its variational parameters for this batch.
    fn rows_for_batch(
        &self,
        s: &mut Session,
        lat_plates: &[PlateId],
        plates: &[PlateState],
        loc: Array,
        sd: Array,
    ) -> (Array, Array) {
        let mut loc = loc;
        let mut sd = sd;
        for (j, p) in lat_plates.iter().enumerate() {
            let Some(rows) = &plates[p.index()].batch else {
                continue;
            };
            let dims = loc.shape().to_vec();
            let outer: usize = dims[..j].iter().product();
            let n = dims[j];
            let inner: usize = dims[j + 1..].iter().product();
            let mut idx = Vec::with_capacity(outer * rows.len() * inner);
            for o in 0..outer {
                for &r in rows {
                    let base = (o * n + r) * inner;
                    idx.extend(base..base + inner);
                }
            }
            let mut nd = dims.clone();
            nd[j] = rows.len();
            loc = s.gather(&loc, &idx, &nd);
            sd = s.gather(&sd, &idx, &nd);
        }
        (loc, sd)
    }
}

/// log MvNormal(x | loc, ·) with a fixed covariance (or scale_tril): its Cholesky factor and
/// the factor's inverse are computed on the host once per evaluation.
pub(super) fn mv_normal(
    s: &mut Session,
    pz: crate::dist::Parameterization,
    args: &[Value],
    x: &Value,
) -> Value {
    let m = s.values(&args[1].arr);
    let d = *args[1].lay.shape.last().expect("a matrix");
    let l = if pz == crate::dist::Parameterization::ScaleTril {
        m
    } else {
        // A covariance that is not positive definite gives a non-finite density, which the
        // engine reports against this statement.
        super::cholesky(&m, d).unwrap_or_else(|| vec![f64::NAN; d * d])
    };
    let log_det_l: f64 = (0..d).map(|i| l[i * d + i].ln()).sum();
    // L⁻¹ by forward substitution, column by column.
    let mut inv = vec![0.0; d * d];
    for c in 0..d {
        for i in c..d {
            let mut v = if i == c { 1.0 } else { 0.0 };
            for k in c..i {
                v -= l[i * d + k] * inv[k * d + c];
            }
            inv[i * d + c] = v / l[i * d + i];
        }
    }
    let l_inv = Value::new(s.array(&inv, &[d, d]), Layout::of_shape(vec![d, d]));
    crate::dist::density::mv_normal_lp(s, x, &args[0], &l_inv, log_det_l)
}

/// Draws from a fitted guide, restored from its saved tensors: per latent its values laid out
/// `[n, plates..., shape]`, the params in their supports, and the networks' layers.
pub struct Restored {
    pub latents: Vec<Option<Value>>,
    pub params: Vec<Option<Value>>,
    pub nets: Vec<Vec<(Array, Array)>>,
}

/// Restore a fit's tensors by name and draw `n` samples from its guide, every plate whole.
/// An engine whose learnables are the saved tensors of a fit.
fn restore<'a>(
    s: &mut Session,
    loaded: &'a Loaded,
    opts: &'a FitOptions,
    state: &[NamedTensor],
) -> Result<Engine<'a>, Diagnostic> {
    let mut eng = Engine::new(loaded, opts, s);
    for e in &mut eng.learn.entries {
        let saved = state.iter().find(|t| t.name == e.name).ok_or_else(|| {
            Diagnostic::new("vi::sample::state", format!("the saved fit has no tensor `{}`", e.name))
                .help("the model changed since it was fitted, or the fit used another guide (`--guide`); fit it again")
        })?;
        if saved.values.len() != e.host.len() {
            return Err(Diagnostic::new(
                "vi::sample::state",
                format!(
                    "tensor `{}` has {} values, the model needs {}",
                    e.name,
                    saved.values.len(),
                    e.host.len()
                ),
            )
            .help("the data or the model changed since the fit; fit it again"));
        }
        e.host.clone_from(&saved.values);
    }
    eng.learn.sync(s);
    Ok(eng)
}

/// Log importance weights log p(x, z) − log q(z) of `n` draws from a saved guide (drawn `chunk`
/// at a time), with each latent's draws (`n` rows of its values).
pub fn log_weights(
    s: &mut Session,
    loaded: &Loaded,
    opts: &FitOptions,
    state: &[NamedTensor],
    n: usize,
    chunk: usize,
) -> Result<(Vec<f64>, Vec<Vec<f64>>), Diagnostic> {
    let mut eng = restore(s, loaded, opts, state)?;
    // The weights need log q at each draw, never the closed-form KL.
    eng.analytic = false;
    let plates = PlateState::whole(&loaded.model);
    s.no_grad();
    let mut log_w = Vec::with_capacity(n);
    let mut draws = vec![Vec::new(); loaded.model.latents.len()];
    let mut done = 0;
    while done < n {
        let m = chunk.min(n - done);
        let (totals, latents) = eng.forward(s, &plates, m, opts.seed ^ 0x7e57 ^ done as u64, 0, true);
        let lw = zip(s, ZipFn::Add, &totals.loglik, &totals.latent);
        let lw = expand(
            s,
            &lw,
            &Layout {
                samples: Some(m),
                plates: vec![],
                shape: vec![],
            },
        );
        log_w.extend(s.values(&lw.arr));
        for (d, v) in draws.iter_mut().zip(latents) {
            if let Some(v) = v {
                d.extend(s.values(&v.arr));
            }
        }
        done += m;
    }
    Ok((log_w, draws))
}

pub fn draw_guide(
    s: &mut Session,
    loaded: &Loaded,
    opts: &FitOptions,
    state: &[NamedTensor],
    n: usize,
) -> Result<Restored, Diagnostic> {
    draw_guide_at(s, loaded, opts, state, n, &PlateState::whole(&loaded.model))
}

/// [`draw_guide`] over chosen rows of each plate.
pub fn draw_guide_at(
    s: &mut Session,
    loaded: &Loaded,
    opts: &FitOptions,
    state: &[NamedTensor],
    n: usize,
    plates: &[PlateState],
) -> Result<Restored, Diagnostic> {
    let mut eng = restore(s, loaded, opts, state)?;
    eng.only_plate = None;
    s.no_grad();
    let (_, latents) = eng.forward(s, plates, n, opts.seed ^ 0x005a_3b1e, 0, false);
    let params = eng.param_values(s).into_iter().map(Some).collect();
    let nets = guide::net_arrays(s, &eng.learn, &eng.nets);
    Ok(Restored {
        latents,
        params,
        nets,
    })
}

/// Mean over the sample axis (or the value itself when it has none).
fn sample_mean(s: &mut Session, v: &Value) -> Array {
    match v.lay.samples {
        Some(n) => {
            let t = s.sum_axes(&v.arr, 0, 1);
            s.scale(&t, 1.0 / n as f64)
        }
        None => v.arr.clone(),
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

/// Held-out rows need a guide that computes each row's parameters from its data (an encoder):
/// an automatic guide has per-row parameters that training never touches for them.
fn check_split(model: &Model, split: super::epoch::Split) -> Result<(), Diagnostics> {
    let mut diags = Diagnostics::new();
    for (k, l) in model.latents.iter().enumerate() {
        if l.plates.contains(&split.plate) && model.guide_site(LatentId(k as u32)).is_none() {
            let plate = model.plate(split.plate);
            diags.push(
                Diagnostic::new(
                    "vi::fit::holdout",
                    format!("`{}` has no amortised guide, so its held-out rows cannot be measured", l.name),
                )
                .primary(model.sites[l.site].span, format!("one value per `{}`", plate.var))
                .help("set `holdout = 0` (or `--holdout 0`), or give the latent a guide whose parameters come from the data, e.g. an encoder network")
                .with_source(&model.source),
            );
        }
    }
    diags.into_result(())
}

/// The ELBO per row on the held-out rows, one draw per row, in chunks.
fn heldout_elbo(
    eng: &mut Engine,
    s: &mut Session,
    split: super::epoch::Split,
    seed: u64,
    step: usize,
) -> super::epoch::PerRow {
    const CHUNK: usize = 1000;
    let model = eng.model;
    eng.only_plate = Some(split.plate);
    let (mut loglik, mut latent) = (0.0, 0.0);
    let end = split.train + split.heldout;
    let mut start = split.train;
    while start < end {
        let rows: Vec<usize> = (start..(start + CHUNK).min(end)).collect();
        let plates = PlateState::rows_of(model, split.plate, &rows);
        s.no_grad();
        let (t, _) = eng.forward(s, &plates, 1, seed ^ start as u64, step, true);
        let ll = sample_mean(s, &t.loglik);
        let lat = sample_mean(s, &t.latent);
        loglik += s.value(&ll);
        latent += s.value(&lat);
        start += rows.len();
    }
    eng.only_plate = None;
    super::epoch::PerRow::new(loglik, latent, split.heldout)
}

/// Importance-weighted estimates of log p(x_n) for chosen rows of a model's batched plate:
/// log (1/k) Σ_i p(x_n, z_i) / q(z_i | x_n), z_i ~ q(z | x_n), k draws per row (Burda et al.'s
/// IWAE bound; k = 1 is the ELBO), each with the mean of its k log weights (an ELBO estimate).
/// Rows are taken `chunk` at a time.
#[allow(clippy::too_many_arguments)]
pub fn iw_per_row(
    s: &mut Session,
    loaded: &Loaded,
    opts: &FitOptions,
    state: &[NamedTensor],
    rows: &[usize],
    k: usize,
    chunk: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<(f64, f64)>, Diagnostic> {
    let model = &loaded.model;
    let Some((plate, _, _)) = super::epoch::batched_plate(model) else {
        return Err(Diagnostic::new(
            "vi::eval::no_plate",
            "the model has no batched plate of rows to evaluate",
        )
        .help("`vinf eval` estimates log p(x) per row of a `for n in 1..N batch M` plate"));
    };
    if let Some(site) = model
        .sites
        .iter()
        .find(|st| st.plates.contains(&plate) && st.plates.len() > 1)
    {
        return Err(Diagnostic::new(
            "vi::eval::nested",
            "`vinf eval` needs every statement of the row plate directly inside it",
        )
        .primary(site.span, "inside a nested plate")
        .help("the per-row estimate sums each row's statements; nested plates are not supported yet")
        .with_source(&model.source));
    }
    let mut eng = restore(s, loaded, opts, state)?;
    eng.analytic = false;
    eng.only_plate = Some(plate);
    eng.per_row = true;
    s.no_grad();
    let mut out = Vec::with_capacity(rows.len());
    for part in rows.chunks(chunk.max(1)) {
        let plates = PlateState::rows_of(model, plate, part);
        let (t, _) = eng.forward(s, &plates, k, opts.seed ^ 0x1aa5 ^ part[0] as u64, 0, true);
        let lw = zip(s, ZipFn::Add, &t.loglik, &t.latent);
        let lay = Layout {
            samples: Some(k),
            plates: vec![(plate, part.len())],
            shape: vec![],
        };
        let lw = expand(s, &lw, &lay);
        let lw = s.values(&lw.arr);
        // [k, rows] → per row: log-mean-exp over the k draws.
        for r in 0..part.len() {
            let col: Vec<f64> = (0..k).map(|i| lw[i * part.len() + r]).collect();
            out.push((super::psis::iw_bound(&col), col.iter().sum::<f64>() / k as f64));
        }
        progress(out.len());
    }
    Ok(out)
}

/// Write a checkpoint of the loop (its scalars in `state`) and of every tensor it carries.
fn save_checkpoint(
    eng: &Engine,
    optimizers: &[Optimizer],
    average: &[Vec<f64>],
    mut state: super::checkpoint::LoopState,
    plan: &super::checkpoint::Plan,
) -> Result<(), Diagnostic> {
    let saved: Vec<_> = optimizers.iter().map(Optimizer::save).collect();
    state.optimizer_steps = saved.iter().map(|o| o.t).collect();
    let tensor = |name: &str, shape: &[usize], values: &[f64]| NamedTensor {
        name: name.to_string(),
        shape: shape.to_vec(),
        values: values.to_vec(),
    };
    let ck = super::checkpoint::Checkpoint {
        record: plan.record.clone(),
        state,
        learn: eng
            .learn
            .entries
            .iter()
            .map(|e| tensor(&e.name, &e.shape, &e.host))
            .collect(),
        average: eng
            .learn
            .entries
            .iter()
            .zip(average)
            .map(|(e, a)| tensor(&e.name, &e.shape, a))
            .collect(),
        moments: saved.into_iter().map(|o| o.moments).collect(),
    };
    ck.save(&plan.path())
}

/// Put a checkpoint's tensors and shuffler back into a freshly built engine.
fn resume(
    eng: &mut Engine,
    s: &Session,
    ck: &super::checkpoint::Checkpoint,
    optimizers: &mut [Optimizer],
    average: &mut [Vec<f64>],
) -> Result<(), Diagnostics> {
    let mismatch = |what: String| {
        Diagnostics::from(
            Diagnostic::new("vi::resume::mismatch", "the checkpoint does not fit this model").help(format!(
                "{what}; the model or its data changed since the checkpoint, so fit it afresh"
            )),
        )
    };
    for (e, avg) in eng.learn.entries.iter_mut().zip(average.iter_mut()) {
        let find = |list: &[NamedTensor]| list.iter().find(|t| t.name == e.name).cloned();
        let (Some(v), Some(a)) = (find(&ck.learn), find(&ck.average)) else {
            return Err(mismatch(format!("it has no tensor `{}`", e.name)));
        };
        if v.values.len() != e.host.len() || a.values.len() != e.host.len() {
            return Err(mismatch(format!("tensor `{}` has another size", e.name)));
        }
        e.host = v.values;
        *avg = a.values;
    }
    eng.learn.sync(s);
    let saved = ck.optimizers();
    if saved.len() != optimizers.len() {
        return Err(mismatch("it has another number of objectives".into()));
    }
    for (o, st) in optimizers.iter_mut().zip(saved) {
        if !o.restore(st) {
            return Err(mismatch("its optimiser moments have other sizes".into()));
        }
    }
    let orders_fit = ck.state.orders.len() == eng.orders.len()
        && ck
            .state
            .orders
            .iter()
            .zip(&eng.orders)
            .all(|((order, at), (now, _))| {
                order.len() == now.len() && *at <= order.len() && order.iter().all(|&i| i < now.len())
            });
    if !orders_fit {
        return Err(mismatch(
            "its minibatch orders do not fit this model's plates".into(),
        ));
    }
    eng.orders.clone_from(&ck.state.orders);
    let pos: u128 = ck
        .state
        .rng_word_pos
        .parse()
        .map_err(|_| mismatch("its random-stream position does not read".into()))?;
    eng.rng.set_word_pos(pos);
    Ok(())
}

/// Fit by stochastic gradients.
pub fn fit(
    loaded: &Loaded,
    opts: &FitOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<FitOutput, Diagnostics> {
    let model = &loaded.model;
    check_supported(model)?;
    let split = super::epoch::split(model, opts.holdout);
    if let Some(sp) = split {
        check_split(model, sp)?;
    }
    let start = Instant::now();
    let mut s = Session::new(opts.precision);
    let mut eng = Engine::new(loaded, opts, &s);
    let samples = opts.samples;

    // Objectives: each with the learnables it moves. Without objective lines, everything
    // maximises the ELBO.
    let groups: Vec<(Option<usize>, Vec<usize>, bool)> = if model.objectives.is_empty() {
        vec![(None, (0..eng.learn.entries.len()).collect(), true)]
    } else {
        let claimed: Vec<Group> = model.objectives.iter().flat_map(|o| o.groups.clone()).collect();
        model
            .objectives
            .iter()
            .enumerate()
            .map(|(k, o)| {
                let members: Vec<usize> = eng
                    .learn
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
                (Some(k), members, o.maximise)
            })
            .collect()
    };
    let config = optim::Config {
        kind: opts.optimizer,
        lr: opts.lr,
        decay: opts.decay,
        momentum: opts.momentum,
        clip: opts.clip,
    };
    let mut optimizers: Vec<Optimizer> = groups
        .iter()
        .map(|(_, members, _)| {
            Optimizer::new(
                config.clone(),
                &members
                    .iter()
                    .map(|&i| eng.learn.entries[i].host.len())
                    .collect::<Vec<_>>(),
            )
        })
        .collect();

    let steps = opts.steps.unwrap_or(super::SVI_STEPS);
    let mut trace: Vec<f64> = Vec::with_capacity(steps);
    let tol = opts.tol.unwrap_or(super::SVI_TOL);
    let mut status = Status::at_step_limit(tol);
    let mut last_good: Vec<Vec<f64>> = eng.learn.entries.iter().map(|e| e.host.clone()).collect();
    let mut stop = super::StopRule::new(tol);
    // Tail averaging: an exponential moving average of the iterates removes the optimiser's
    // jitter around the optimum. Its horizon is one stop-rule window, so that it does not lag far
    // behind a fit that is still moving; at the end it is kept only if it scores at least as well
    // as the last iterate.
    let horizon = (steps as f64 / 20.0).clamp(10.0, 100.0);
    let mut average: Vec<Vec<f64>> = eng.learn.entries.iter().map(|e| e.host.clone()).collect();
    // Epochs, for models with a batched plate.
    let batched = super::epoch::batched_plate(model);
    let per_epoch = super::epoch::steps_per_epoch(model, split);
    let epochs_total = steps.div_ceil(per_epoch);
    let mut epoch_acc = super::epoch::Accumulator::default();
    let mut epochs: Vec<super::epoch::EpochReport> = Vec::new();
    let report_epoch = |eng: &mut Engine,
                        s: &mut Session,
                        acc: &mut super::epoch::Accumulator,
                        epochs: &mut Vec<super::epoch::EpochReport>,
                        step: usize,
                        progress: &mut dyn FnMut(Progress)| {
        let Some((plate, _, _)) = batched else { return };
        if acc.is_empty() {
            return;
        }
        let (train, terms, seconds) = acc.take(eng.train_len[plate.index()]);
        let terms = model.terms.iter().map(|t| t.name.clone()).zip(terms).collect();
        let heldout = split.map(|sp| heldout_elbo(eng, s, sp, opts.seed ^ 0x4e1d, step));
        let report = super::epoch::EpochReport {
            epoch: epochs.len() + 1,
            epochs: epochs_total,
            step,
            seconds,
            train,
            heldout,
            terms,
        };
        progress(Progress::Epoch(report.clone()));
        epochs.push(report);
    };
    let mut step = 0;
    let mut backoffs = 0;
    // For back-off: parameters at the last two multiples of SNAPSHOT_EVERY steps, older first.
    const SNAPSHOT_EVERY: usize = 100;
    let mut snapshots: [Vec<Vec<f64>>; 2] = if opts.backoff > 0 {
        let now: Vec<Vec<f64>> = eng.learn.entries.iter().map(|e| e.host.clone()).collect();
        [now.clone(), now]
    } else {
        [Vec::new(), Vec::new()]
    };
    let mut backoff_notes: Vec<String> = Vec::new();
    let mut loop_before = 0.0;
    let plan = opts.checkpoint.as_ref();
    if let Some(ck) = plan.and_then(|p| p.resume.as_ref()) {
        resume(&mut eng, &s, ck, &mut optimizers, &mut average)?;
        let st = &ck.state;
        step = st.step;
        trace.clone_from(&st.trace);
        stop = st.stop.clone();
        epoch_acc = st.epoch_acc.clone();
        epochs.clone_from(&st.epochs);
        loop_before = st.loop_s;
        backoffs = st.backoffs;
        backoff_notes.clone_from(&st.backoff_notes);
        for o in &mut optimizers {
            o.config.lr *= 0.5f64.powi(backoffs as i32);
        }
        for (e, v) in eng.learn.entries.iter().zip(last_good.iter_mut()) {
            v.clone_from(&e.host);
        }
        if opts.backoff > 0 {
            snapshots = [last_good.clone(), last_good.clone()];
        }
    }
    let loop_start = Instant::now();
    while step < steps {
        let step_start = Instant::now();
        let mut step_terms = (f64::NAN, f64::NAN);
        let mut term_values: Vec<f64> = Vec::new();
        let plates = eng.next_batches();
        let noise_seed = opts
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(step as u64 + 1);
        let mut elbo_now = f64::NAN;
        let mut fault: Option<Diagnostic> = None;
        let mut all_grads: Vec<(usize, Vec<Vec<f64>>)> = Vec::new();
        for (g, (objective, members, maximise)) in groups.iter().enumerate() {
            s.begin();
            let (totals, _) = eng.forward(&mut s, &plates, samples, noise_seed, step, true);
            let ll = sample_mean(&mut s, &totals.loglik);
            let lat = sample_mean(&mut s, &totals.latent);
            let elbo = s.zip(ZipFn::Add, &ll, &lat);
            elbo_now = s.value(&elbo);
            if g == 0 {
                step_terms = (s.value(&ll), s.value(&lat));
                term_values = totals
                    .terms
                    .iter()
                    .map(|t| {
                        let m = sample_mean(&mut s, t);
                        s.value(&m)
                    })
                    .collect();
            }
            if !elbo_now.is_finite() {
                let culprit = totals
                    .per_site
                    .iter()
                    .find(|(_, v)| s.values(&v.arr).iter().any(|x| !x.is_finite()))
                    .map(|(k, _)| *k);
                let mut d = Diagnostic::new(
                    "vi::fit::non_finite",
                    format!("the ELBO became non-finite at step {}", step + 1),
                )
                .with_source(&model.source);
                d = match culprit {
                    Some(k) => d.primary(
                        model.sites[k].span,
                        "this statement's log density went non-finite",
                    ),
                    None => d.primary(
                        crate::syntax::Span::new(0, 0),
                        "no single statement was non-finite; the guide's density was",
                    ),
                };
                fault = Some(d);
                break;
            }
            let loss = match objective {
                None => elbo,
                Some(k) => {
                    let o = &model.objectives[*k];
                    let terms: Vec<Array> = totals.terms.iter().map(|t| sample_mean(&mut s, t)).collect();
                    let kl = s.scale(&lat, -1.0);
                    let q = |q: Quantity| match q {
                        Quantity::Elbo => elbo.clone(),
                        Quantity::LogLik => ll.clone(),
                        Quantity::Kl => kl.clone(),
                        Quantity::Term(t) => terms[t.index()].clone(),
                    };
                    objective_value(&mut s, model, o.expr, &q, step)
                }
            };
            let loss = if *maximise { loss } else { s.scale(&loss, -1.0) };
            let mut grads: Grads = s.backward(&loss);
            let gs: Vec<Vec<f64>> = members
                .iter()
                .map(|&i| s.grad(&mut grads, &eng.learn.entries[i].tensor))
                .collect();
            if let Some(k) = gs.iter().position(|g| g.iter().any(|x| !x.is_finite())) {
                let entry = &eng.learn.entries[members[k]];
                fault = Some(
                    Diagnostic::new(
                        "vi::fit::non_finite",
                        format!(
                            "the gradient of `{}` became non-finite at step {} (the ELBO was {elbo_now})",
                            entry.name,
                            step + 1
                        ),
                    )
                    .primary(learnable_span(model, entry), "its gradient went non-finite")
                    .with_source(&model.source),
                );
                break;
            }
            all_grads.push((g, gs));
        }
        if let Some(d) = fault.take() {
            if backoffs < opts.backoff {
                // The steps just before a blow-up are usually already bad: go back to parameters
                // at least one window old (or the initial ones), with half the learning rate and
                // fresh optimiser moments.
                for (e, v) in eng.learn.entries.iter_mut().zip(&snapshots[0]) {
                    e.host.clone_from(v);
                }
                eng.learn.sync(&s);
                snapshots[1] = snapshots[0].clone();
                average.clone_from(&snapshots[0]);
                last_good.clone_from(&snapshots[0]);
                // The stop rule's windows hold the blow-up: start them again.
                stop = super::StopRule::new(tol);
                backoffs += 1;
                for o in &mut optimizers {
                    o.config.lr *= 0.5;
                    o.forget_moments();
                }
                let lr = optimizers[0].config.lr;
                progress(Progress::Backoff {
                    step: step + 1,
                    lr,
                    reason: d.message.clone(),
                });
                backoff_notes.push(format!(
                    "step {}: {}; learning rate halved to {lr:e}",
                    step + 1,
                    d.message
                ));
                continue;
            }
            // Stop with the last finite parameters.
            for (e, v) in eng.learn.entries.iter_mut().zip(&last_good) {
                e.host.clone_from(v);
            }
            eng.learn.sync(&s);
            let d = d.help(if opts.backoff > 0 {
                format!(
                    "the learning rate was halved {} times and the fit still failed; check priors and data scales, \
                     or clip gradients (`--clip`); the last finite parameters are kept",
                    opts.backoff
                )
            } else {
                "lower the learning rate (`--lr`), let vi halve it on such faults (`--lr-backoff 5`), clip gradients \
                 (`--clip`), or check priors and data scales; the last finite parameters are kept"
                    .to_string()
            });
            status = Status::Diverged;
            progress(Progress::Diverged(d.clone()));
            let mut out = finish(&mut s, &mut eng, loaded, opts, trace, status, step, start);
            out.loop_s = loop_before + loop_start.elapsed().as_secs_f64();
            out.epochs = epochs;
            out.notes.extend(backoff_notes);
            out.diverged = Some(d);
            return Ok(out);
        }
        // Finite step: remember it, then move every group by its own gradients.
        for (e, v) in eng.learn.entries.iter().zip(last_good.iter_mut()) {
            v.clone_from(&e.host);
        }
        for (g, gs) in all_grads {
            let members = &groups[g].1;
            let mut hosts: Vec<Vec<f64>> = members
                .iter()
                .map(|&i| std::mem::take(&mut eng.learn.entries[i].host))
                .collect();
            {
                let mut refs: Vec<&mut Vec<f64>> = hosts.iter_mut().collect();
                optimizers[g].step(&mut refs, &gs);
            }
            for (&i, h) in members.iter().zip(hosts) {
                eng.learn.entries[i].host = h;
            }
        }
        eng.learn.sync(&s);
        let w = 1.0 / horizon.min(step as f64 + 1.0);
        for (avg, e) in average.iter_mut().zip(&eng.learn.entries) {
            for (a, x) in avg.iter_mut().zip(&e.host) {
                *a += w * (x - *a);
            }
        }
        trace.push(elbo_now);
        step += 1;
        if opts.backoff > 0 && step % SNAPSHOT_EVERY == 0 {
            let newer = eng.learn.entries.iter().map(|e| e.host.clone()).collect();
            snapshots[0] = std::mem::replace(&mut snapshots[1], newer);
        }
        epoch_acc.add(
            step_terms.0,
            step_terms.1,
            &term_values,
            step_start.elapsed().as_secs_f64(),
        );
        progress(Progress::Step {
            step,
            total: steps,
            elbo: elbo_now,
            unit: "step",
        });
        let converged = stop.update(elbo_now);
        if step % per_epoch == 0 || step == steps || converged {
            report_epoch(&mut eng, &mut s, &mut epoch_acc, &mut epochs, step, progress);
        }
        if converged {
            status = Status::Converged;
            break;
        }
        if let Some(p) = plan {
            let interrupted = p.interrupted();
            if (step % p.every.max(1) == 0 && step < steps) || interrupted {
                let state = super::checkpoint::LoopState {
                    step,
                    trace: trace.clone(),
                    stop: stop.clone(),
                    epoch_acc: epoch_acc.clone(),
                    epochs: epochs.clone(),
                    optimizer_steps: Vec::new(),
                    orders: eng.orders.clone(),
                    rng_word_pos: eng.rng.get_word_pos().to_string(),
                    backoffs,
                    backoff_notes: backoff_notes.clone(),
                    loop_s: loop_before + loop_start.elapsed().as_secs_f64(),
                };
                save_checkpoint(&eng, &optimizers, &average, state, p).map_err(Diagnostics::from)?;
                progress(Progress::Checkpoint { step });
            }
            if interrupted {
                status = Status::Interrupted;
                break;
            }
        }
    }
    let loop_s = loop_before + loop_start.elapsed().as_secs_f64();
    if let Some(p) = plan {
        // A finished fit needs no checkpoint; an interrupted one keeps it to resume from.
        if status != Status::Interrupted {
            let _ = std::fs::remove_file(p.path());
        }
    }
    // Custom objectives (adversarial ones) have no single score to compare: they keep the last
    // iterate, as does a diverged fit (its last finite parameters).
    if status != Status::Diverged && model.objectives.is_empty() {
        let last: Vec<Vec<f64>> = eng.learn.entries.iter().map(|e| e.host.clone()).collect();
        let score = |eng: &mut Engine, s: &mut Session| {
            // The same draws (and batches) for both candidates.
            let plates = eng.next_batches_from(step);
            s.no_grad();
            let (t, _) = eng.forward(s, &plates, COMPARE_DRAWS, opts.seed ^ 0xa11e, step, true);
            let e = zip(s, ZipFn::Add, &t.loglik, &t.latent);
            let m = sample_mean(s, &e);
            s.value(&m)
        };
        let at_last = score(&mut eng, &mut s);
        for (e, avg) in eng.learn.entries.iter_mut().zip(&average) {
            e.host.clone_from(avg);
        }
        eng.learn.sync(&s);
        let at_average = score(&mut eng, &mut s);
        // A NaN score for the average also falls back to the last iterate.
        let average_is_better = at_average >= at_last;
        if !average_is_better {
            for (e, v) in eng.learn.entries.iter_mut().zip(last) {
                e.host = v;
            }
            eng.learn.sync(&s);
        }
    }
    let mut out = finish(&mut s, &mut eng, loaded, opts, trace, status, step, start);
    out.loop_s = loop_s;
    out.epochs = epochs;
    out.notes.extend(backoff_notes);
    Ok(out)
}

/// Where a learnable was declared: its latent, network or parameter.
fn learnable_span(model: &crate::graph::Model, entry: &super::guide::Learnable) -> crate::syntax::Span {
    match entry.owner {
        super::guide::Owner::Net(n) => model.nets[n.index()].span,
        super::guide::Owner::Param(p) => model.params[p.index()].span,
        super::guide::Owner::Guide => model
            .latents
            .iter()
            .find(|l| entry.name.split('.').nth(1) == Some(l.name.as_str()))
            .map_or(crate::syntax::Span::new(0, 0), |l| l.span),
    }
}

/// Summaries of the fitted guide, and the tensors to save.
#[allow(clippy::too_many_arguments)]
fn finish(
    s: &mut Session,
    eng: &mut Engine,
    loaded: &Loaded,
    opts: &FitOptions,
    trace: Vec<f64>,
    status: Status,
    iterations: usize,
    start: Instant,
) -> FitOutput {
    let model = &loaded.model;
    let time_s = start.elapsed().as_secs_f64();
    // Summaries come from draws of the guide with every plate whole. Latents with more than
    // SUMMARY_ELEMENTS values, and the codes of models with networks (whose guide would run the
    // encoder on every data point for every draw), are left to params.safetensors.
    const DRAWS: usize = 1000;
    const SUMMARY_ELEMENTS: usize = 10_000;
    let draws = DRAWS;
    let plates = PlateState::whole(model);
    let summarise: Vec<bool> = model
        .latents
        .iter()
        .map(|l| {
            let shape = model.full_shape(&l.plates, &l.shape);
            shape.iter().map(|&d| d as f64).product::<f64>() <= SUMMARY_ELEMENTS as f64
        })
        .collect();
    let mut latents_out = Vec::new();
    if summarise.iter().any(|b| *b) && model.nets.is_empty() {
        s.begin();
        let (_, values) = eng.forward(s, &plates, draws, opts.seed ^ 0xabcdef, iterations, false);
        for (k, l) in model.latents.iter().enumerate() {
            if !summarise[k] {
                continue;
            }
            let Some(v) = &values[k] else { continue };
            let vals = s.values(&v.arr);
            let per = vals.len() / draws;
            let shape = model.full_shape(&l.plates, &l.shape);
            latents_out.push(LatentSummary::from_draws(&l.name, shape, &vals, draws, per));
        }
    }
    s.begin();
    let params = eng
        .params
        .iter()
        .enumerate()
        .map(|(k, (li, b))| {
            let e = &eng.learn.entries[*li];
            let z = Value::new(s.array(&e.host, &e.shape), Layout::of_shape(e.shape.clone()));
            let (x, _) = b.forward(s, &z);
            NamedTensor {
                name: model.params[k].name.clone(),
                shape: x.lay.shape.clone(),
                values: s.values(&x.arr),
            }
        })
        .collect();
    let state = eng
        .learn
        .entries
        .iter()
        .map(|e| NamedTensor {
            name: e.name.clone(),
            shape: e.shape.clone(),
            values: e.host.clone(),
        })
        .collect();
    let window = super::StopRule::window_for(trace.len());
    let tail = &trace[trace.len().saturating_sub(window)..];
    let elbo = if tail.is_empty() {
        f64::NAN
    } else {
        tail.iter().sum::<f64>() / tail.len() as f64
    };
    FitOutput {
        method: super::Method::Svi,
        reasons: Vec::new(),
        status,
        iterations,
        elbo_trace: trace,
        elbo,
        time_s,
        latents: latents_out,
        params,
        state,
        notes: Vec::new(),
        diverged: None,
        guide: None,
        loop_s: 0.0,
        trust: None,
        epochs: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Precision;

    /// L^B's closed-form KL(q(z|x) ‖ p(z)) for the VAE's encoder equals the Monte-Carlo
    /// estimate of E_q[log q(z|x) − log p(z)] from 10^5 draws, within 3 standard errors.
    #[test]
    fn analytic_kl_matches_its_monte_carlo_estimate() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/vae.vi");
        let loaded = crate::load(&path, &crate::LoadOptions::default()).expect("vae.vi loads");
        let model = &loaded.model;
        let mut opts = FitOptions::from_settings(&model.settings, model);
        opts.precision = Precision::F64;
        let mut s = Session::new(Precision::F64);
        let mut eng = Engine::new(&loaded, &opts, &s);
        let (plate, _, _) = super::super::epoch::batched_plate(model).unwrap();
        // One row, scored as it is; only the code's terms and the likelihood count.
        eng.only_plate = Some(plate);
        let plates = vec![PlateState {
            len: 1,
            batch: Some(vec![3]),
        }];
        s.no_grad();
        let draws = 100_000;
        eng.analytic = true;
        let (t, _) = eng.forward(&mut s, &plates, 1, 11, 0, true);
        let m = sample_mean(&mut s, &t.latent);
        let neg_kl = s.value(&m);
        eng.analytic = false;
        let (t, _) = eng.forward(&mut s, &plates, draws, 11, 0, true);
        let lay = Layout {
            samples: Some(draws),
            plates: vec![],
            shape: vec![],
        };
        let v = expand(&mut s, &t.latent, &lay);
        let v = s.values(&v.arr);
        let mean = v.iter().sum::<f64>() / draws as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (draws - 1) as f64;
        let se = (var / draws as f64).sqrt();
        assert!(neg_kl < 0.0, "a KL is positive: {neg_kl}");
        assert!(
            (mean - neg_kl).abs() < 3.0 * se,
            "Monte Carlo {mean} ± {se} vs closed form {neg_kl}"
        );
    }
}
