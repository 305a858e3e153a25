//! The SVI engine: one forward pass of the model under draws from its guide.
//!
//! [`Engine`] holds what a pass needs (the bound data, the learnables' tensors, the automatic
//! guide, the plates' training rows) and computes, for chosen rows of each plate and S draws,
//! the ELBO's parts: log p(x | z), log p(z) + log |J| − log q(z) (or −KL where it is analytic),
//! each `term`, and every statement's total. Minibatches come from a [`Shuffler`], which the
//! trainer owns; draws come from seeds the caller passes, so a pass is a pure function of its
//! seed, its rows and the learnables.
//!
//! Training (`trainer.rs`) and the after-fit tools (`restored.rs`) both drive an engine. This
//! file never imports either of them, nor `report/` or the posterior tools.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::guide::{self, AutoGuide, AutoLatent, Learnables};
use super::reparam::NonCentred;
use crate::backend::{Array, Param, Session};
use crate::dist::density::{kl_normal, log_prob};
use crate::dist::Family;
use crate::graph::{LatentId, MapFn, Model, PlateId, Site, Target, ZipFn};
use crate::infer::{Estimator, FitOptions, Guide};
use crate::interpret::{expand, map, sum_shape, zip, Evaluator, Layout, PlateState, Value};
use crate::transform::Bijection;
use crate::Loaded;

mod auto;

/// Per-step totals, each with one value per sample (or none when they do not vary).
pub(super) struct StepTotals {
    pub(super) loglik: Value,
    /// log p(z) + log |J| − log q(z) over the latents, or −KL where it is analytic.
    pub(super) latent: Value,
    pub(super) terms: Vec<Value>,
    /// Each model statement's total, for locating non-finite values.
    pub(super) per_site: Vec<(usize, Value)>,
}

/// A model bound to its data and its learnables' tensors, ready to score draws of its guide.
///
/// While a trainer holds an engine, the learnables' values (their host copies) are the
/// trainer's: it takes them out of `learn.entries[_].host` and uploads each update into the
/// tensors, which are all a forward pass reads.
pub(super) struct Engine<'a> {
    pub(super) model: &'a Model,
    data: Vec<Option<Array>>,
    data_host: Vec<Option<Vec<f64>>>,
    pub(super) learn: Learnables,
    pub(super) params: Vec<(usize, Bijection)>,
    pub(super) nets: Vec<Vec<(usize, usize)>>,
    auto: AutoGuide,
    /// Per plate: the rows that train the model (all but the held-out ones).
    pub(super) train_len: Vec<usize>,
    /// Per plate, for the pass under way: what its statements are multiplied by (N/M for a
    /// minibatch of a training plate, 1 for rows evaluated as they are).
    scales: Vec<f64>,
    /// Count only the statements and guide terms inside this plate (held-out evaluation).
    pub(super) only_plate: Option<PlateId>,
    /// With `only_plate`: keep that plate's axis in the totals, one value per row and draw.
    pub(super) per_row: bool,
    pub(super) analytic: bool,
    /// Set while [`Engine::log_joint`] runs: the points that stand in for the guide's draws.
    points: Option<Param>,
}

/// The minibatch shuffler: per plate, the epoch's shuffled order of the training rows and the
/// position in it, and the random stream that reshuffles them. Part of the trainer's state.
#[derive(Clone, Debug)]
pub(super) struct Shuffler {
    pub(super) orders: Vec<(Vec<usize>, usize)>,
    pub(super) rng: ChaCha8Rng,
}

impl<'a> Engine<'a> {
    /// An engine with freshly initialised learnables (its shuffler dropped).
    pub(super) fn new(loaded: &'a Loaded, opts: &'a FitOptions, s: &Session) -> Engine<'a> {
        Engine::with_shuffler(loaded, opts, s).0
    }

    /// An engine with freshly initialised learnables, and the minibatch shuffler that follows
    /// the networks' initialisation in the seed's random stream.
    pub(super) fn with_shuffler(
        loaded: &'a Loaded,
        opts: &'a FitOptions,
        s: &Session,
    ) -> (Engine<'a>, Shuffler) {
        let model = &loaded.model;
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let (data, data_host) = crate::infer::upload_data(s, loaded);
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
        let full_rank = opts.guide == Guide::FullRank;
        let auto = guide::init_auto(s, model, &auto_latents, full_rank, opts.reparam, &mut learn);
        let split = crate::infer::epoch::split(model, opts.holdout);
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
        let eng = Engine {
            model,
            data,
            data_host,
            learn,
            params,
            nets,
            auto,
            scales: vec![1.0; train_len.len()],
            train_len,
            only_plate: None,
            per_row: false,
            analytic: opts.estimator == Estimator::Analytic,
            points: None,
        };
        (eng, Shuffler { orders, rng })
    }

    /// The model's params in their supports.
    pub(super) fn param_values(&self, s: &mut Session) -> Vec<Value> {
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
    pub(super) fn next_batches_from(&self, salt: usize) -> Vec<PlateState> {
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

    /// The minibatch of each plate for the next step, moving the shuffler along.
    pub(super) fn next_batches(&self, shuffler: &mut Shuffler) -> Vec<PlateState> {
        let mut out = Vec::new();
        for (k, p) in self.model.plates.iter().enumerate() {
            let n = self.train_len[k];
            match p.batch {
                None => out.push(PlateState { len: n, batch: None }),
                Some(m) => {
                    let (order, pos) = &mut shuffler.orders[k];
                    if *pos + m > n {
                        order.shuffle(&mut shuffler.rng);
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
    pub(super) fn forward(
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
        let zetas = match &self.points {
            Some(p) => {
                let leaf = s.leaf(p);
                self.at_points(s, &leaf, plates)
            }
            None => self.draw_auto(s, plates, samples, &mut noise_rng, &mut latent_total),
        };
        // Non-centred latents' standardised values, which their prior statements score.
        let mut standardised: Vec<Option<(NonCentred, Value)>> = vec![None; model.latents.len()];
        for (a, zeta) in autos.iter().zip(zetas) {
            let lat = model.latent(a.latent);
            let x = match a.noncentred {
                Some(nc) => {
                    // Every latent these arguments read was drawn above (`reparam::choose`).
                    let prior = &model.sites[lat.site];
                    let args: Vec<Value> = prior.dist.args.iter().map(|a| ev.eval(s, *a)).collect();
                    let (z, logdet) = nc.standardise(s, &zeta);
                    if let Some(logdet) = logdet {
                        let ld = self.total(s, &logdet, &lat.plates);
                        add_latent(s, ld, &mut latent_total);
                    }
                    let x = nc.latent_value(s, &args, &z);
                    standardised[a.latent.index()] = Some((nc, z));
                    x
                }
                None => {
                    let (x, logdet) = a.bijection.forward(s, &zeta);
                    let ld = self.total(s, &logdet, &lat.plates);
                    add_latent(s, ld, &mut latent_total);
                    x
                }
            };
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
            let eps = Value::new(s.noise(&eps, &lay.dims()), lay.clone());
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
            let standard = match &site.target {
                Target::Latent(l) => standardised[l.index()].as_ref(),
                _ => None,
            };
            let lp = if let Some((nc, z)) = standard {
                // log p(x) + log |dx/dz| is the standard density at z.
                let (family, std_args) = nc.standard(s, &args);
                log_prob(s, family, crate::dist::Parameterization::Standard, &std_args, z)
            } else {
                site_log_prob(s, &mut ev, site, &args, &x)
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
}

impl Engine<'_> {
    /// The length of the automatic guide's joint vector: every auto latent's unconstrained
    /// values, in order.
    pub(super) fn auto(&self) -> &AutoGuide {
        &self.auto
    }

    pub(super) fn joint_dim(&self) -> usize {
        self.auto.latents().iter().map(AutoLatent::len).sum()
    }

    /// log p(x, T(θ)) + log |J(θ)| at `points` (row-major, one θ of [`Engine::joint_dim`]
    /// unconstrained values per row), every plate whole; with `grad`, its gradient at each point
    /// too (row-major likewise; empty otherwise).
    pub(super) fn log_joint(&mut self, s: &mut Session, points: &[f64], grad: bool) -> (Vec<f64>, Vec<f64>) {
        let dim = self.joint_dim();
        let n = points.len() / dim.max(1);
        if grad {
            s.begin();
        } else {
            s.no_grad();
        }
        self.points = Some(s.param(points, &[n, dim]));
        let plates = self.next_batches_from(0);
        let (t, _) = self.forward(s, &plates, n, 0, 0, true);
        let lay = Layout {
            samples: Some(n),
            plates: vec![],
            shape: vec![],
        };
        let total = zip(s, ZipFn::Add, &t.loglik, &t.latent);
        let total = expand(s, &total, &lay);
        let values = s.values(&total.arr);
        let grads = if grad {
            let sum = s.sum(&total.arr);
            let mut g = s.backward(&sum);
            s.grad(&mut g, self.points.as_ref().expect("set above"))
        } else {
            Vec::new()
        };
        self.points = None;
        (values, grads)
    }
}

/// log p(x) under one statement's density, given its arguments' values: an MvNormal through
/// its factorised covariance, a truncated density renormalised to its bounds (and zero outside
/// them, for observations).
pub fn site_log_prob(s: &mut Session, ev: &mut Evaluator, site: &Site, args: &[Value], x: &Value) -> Value {
    let d = &site.dist;
    if d.family == Family::MvNormal {
        return mv_normal(s, d.pz, args, x);
    }
    let lp = log_prob(s, d.family, d.pz, args, x);
    let Some(t) = d.trunc else { return lp };
    let lo = t.lo.map(|b| ev.eval(s, b));
    let hi = t.hi.map(|b| ev.eval(s, b));
    let mass = crate::dist::cdf::log_mass(s, d.family, d.pz, args, lo.as_ref(), hi.as_ref());
    let lp = zip(s, ZipFn::Sub, &lp, &mass);
    if matches!(site.target, Target::Latent(_)) {
        // The bijection keeps a latent inside.
        return lp;
    }
    match crate::dist::cdf::outside(s, x, lo.as_ref(), hi.as_ref()) {
        Some(zero_density) => zip(s, ZipFn::Add, &lp, &zero_density),
        None => lp,
    }
}

/// log MvNormal(x | loc, ·) with a fixed covariance (or scale_tril): its Cholesky factor and
/// the factor's inverse are computed on the host once per evaluation.
pub fn mv_normal(s: &mut Session, pz: crate::dist::Parameterization, args: &[Value], x: &Value) -> Value {
    let m = s.values(&args[1].arr);
    let d = *args[1].lay.shape.last().expect("a matrix");
    let l = if pz == crate::dist::Parameterization::ScaleTril {
        m
    } else {
        // A covariance that is not positive definite gives a non-finite density, which the
        // engine reports against this statement.
        crate::linalg::cholesky(&m, d).unwrap_or_else(|| vec![f64::NAN; d * d])
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

/// Mean over the sample axis (or the value itself when it has none).
pub(super) fn sample_mean(s: &mut Session, v: &Value) -> Array {
    match v.lay.samples {
        Some(n) => {
            let t = s.sum_axes(&v.arr, 0, 1);
            s.scale(&t, 1.0 / n as f64)
        }
        None => v.arr.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Precision;

    /// Non-centring is exact: the log joint of eight schools written centred, at standardised
    /// values z (theta = mu + tau z), equals the log joint fitted as written at theta plus the
    /// log-Jacobian 8 log tau.
    #[test]
    fn the_non_centred_log_joint_is_the_centred_one_with_its_jacobian() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models/posteriordb/eight_schools_centered.vi");
        let loaded = crate::load(&path, &crate::LoadOptions::default()).expect("loads");
        let model = &loaded.model;
        let mut opts = FitOptions::from_settings(&model.settings, model);
        opts.precision = Precision::F64;
        let mut s = Session::new(Precision::F64);
        // mu, log tau (tau's bijection is exp), then the eight schools' z.
        let (mu, log_tau) = (1.3, 0.4f64);
        let z = [0.5, -1.0, 0.2, 1.7, -0.3, 0.0, 0.9, -2.1];
        let tau = log_tau.exp();
        let standardised: Vec<f64> = [mu, log_tau].iter().chain(&z).copied().collect();
        let centred: Vec<f64> = [mu, log_tau]
            .into_iter()
            .chain(z.iter().map(|z| mu + tau * z))
            .collect();
        opts.reparam = crate::infer::Reparam::Auto;
        let mut eng = Engine::new(&loaded, &opts, &s);
        assert!(
            eng.auto().latents()[2].noncentred.is_some(),
            "theta is non-centred"
        );
        let (non_centred, _) = eng.log_joint(&mut s, &standardised, false);
        opts.reparam = crate::infer::Reparam::None;
        let mut eng = Engine::new(&loaded, &opts, &s);
        assert!(eng.auto().latents().iter().all(|a| a.noncentred.is_none()));
        let (as_written, _) = eng.log_joint(&mut s, &centred, false);
        let expected = as_written[0] + 8.0 * log_tau;
        assert!(
            (non_centred[0] - expected).abs() < 1e-9,
            "non-centred {} vs centred + log |J| {expected}",
            non_centred[0]
        );
    }

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
