//! Mean-field coordinate-ascent VI with closed-form updates (variational message passing).
//!
//! Each latent's q is in its prior's exponential family. An update collects the prior's
//! natural parameters and one message from every statement that uses the latent (expected
//! sufficient statistics of its neighbours under q), vectorised over the statement's plates
//! and reduced to the latent's own plates. Categorical assignments get responsibilities from
//! each mixture statement's expected log-likelihood per component. After every sweep the exact
//! ELBO (every constant included) is computed from the same expectations; it never decreases.

use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::linalg;
use super::plan::{ArgForm, Plan, QFamily, SitePlan, ValueForm};
use super::{FitOptions, FitOutput, LatentSummary, Method, NamedTensor, Progress, Status};
use crate::backend::eval::{expand, joint_layout, map, zip, Evaluator, Layout, PlateState, Value};
use crate::backend::{Array, Precision, Session};
use crate::diag::Diagnostics;
use crate::dist::{Family, Parameterization};
use crate::graph::{LatentId, MapFn, Model, NodeId, Op, ZipFn};
use crate::Loaded;

const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// One latent's variational distribution.
#[derive(Clone, Debug)]
enum Q {
    Normal {
        mean: Value,
        var: Value,
    },
    /// A multivariate Normal over the latent's vector (host, D×D).
    Block {
        mean: Vec<f64>,
        cov: Vec<f64>,
        d: usize,
    },
    Gamma {
        shape: Value,
        rate: Value,
    },
    /// On a Normal variance: shape α, scale β.
    InverseGamma {
        shape: Value,
        scale: Value,
    },
    Beta {
        a: Value,
        b: Value,
    },
    Dirichlet {
        alpha: Value,
    },
    Categorical {
        probs: Value,
    },
    /// Responsibilities kept on the host by a fused mixture update.
    Responsibilities {
        probs: crate::backend::kernels::Blocked,
        lay: Layout,
    },
}

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

/// A categorical index whose one mixture statement is `x[i] ~ Normal(μ[c[i]], τ[c[i]])` on
/// scalar data (means and precisions each a mixture latent, a constant, or one latent): its
/// log-likelihood is η_k · T(x_i) with T(x) = (x, x², 1), so its responsibilities, and every
/// message its statements send, follow from the sums Σ_i φ_ik T(x_i) of one fused pass.
#[derive(Clone, Debug)]
struct FastMixture {
    /// The mixture statement's and the index's prior statement's plan indices.
    site: usize,
    prior: usize,
    k: usize,
    /// T(x_i) for every data point by column, `[3, N]` (shared: the struct is cloned freely).
    t: std::sync::Arc<Vec<f64>>,
    /// After the last update: Σ_i φ_ik T(x_i) as `[K, 3]`, and the entropy of q(c).
    stats: Vec<f64>,
    entropy: f64,
}

impl FastMixture {
    /// (Σφ, Σφx, Σφx²) for component j.
    fn sums(&self, j: usize) -> (f64, f64, f64) {
        (self.stats[j * 3 + 2], self.stats[j * 3], self.stats[j * 3 + 1])
    }
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

    /// Evaluate a latent-free node (cached).
    fn constant(&mut self, id: NodeId) -> Value {
        if let Some(c) = self.consts.get(&id) {
            return c.clone();
        }
        let mut noise = |_: &[usize]| -> Vec<f64> { unreachable!("constants draw nothing") };
        let mut ev = Evaluator::new(
            self.model,
            &self.data,
            &self.data_host,
            self.plates.clone(),
            None,
            &mut noise,
        );
        let val = ev.eval(&mut self.s, id);
        self.consts.insert(id, val.clone());
        val
    }

    /// Evaluate a node with latent `l` replaced by `stat` (a linear view of a latent).
    fn through(&mut self, id: NodeId, l: LatentId, stat: Value) -> Value {
        let mut noise = |_: &[usize]| -> Vec<f64> { unreachable!("views draw nothing") };
        let mut ev = Evaluator::new(
            self.model,
            &self.data,
            &self.data_host,
            self.plates.clone(),
            None,
            &mut noise,
        );
        ev.latents[l.index()] = Some(stat);
        ev.eval(&mut self.s, id)
    }

    // ------------------------------------------------------------------ expectations

    fn q(&self, l: LatentId) -> &Q {
        self.q[l.index()].as_ref().expect("initialised")
    }

    fn mean(&mut self, l: LatentId) -> Value {
        match self.q(l).clone() {
            Q::Normal { mean, .. } => mean,
            Q::Block { mean, d, .. } => v(self.s.array(&mean, &[d]), self.latent_layout(l)),
            Q::Gamma { shape, rate } => self.div(&shape, &rate),
            Q::InverseGamma { shape, scale } => {
                let am1 = self.shift(&shape, -1.0);
                self.div(&scale, &am1)
            }
            Q::Beta { a, b } => {
                let ab = self.add(&a, &b);
                self.div(&a, &ab)
            }
            Q::Dirichlet { alpha } => {
                let tot = self.sum_last(&alpha);
                self.div(&alpha, &tot)
            }
            Q::Categorical { probs } => probs,
            Q::Responsibilities { probs, lay } => v(self.s.array(&probs.to_row_major(), &lay.dims()), lay),
        }
    }

    /// E[x²], elementwise.
    fn second(&mut self, l: LatentId) -> Value {
        match self.q(l).clone() {
            Q::Normal { mean, var } => {
                let m2 = self.f(MapFn::Square, &mean);
                self.add(&m2, &var)
            }
            Q::Block { mean, cov, d } => {
                let vals: Vec<f64> = (0..d).map(|i| mean[i] * mean[i] + cov[i * d + i]).collect();
                v(self.s.array(&vals, &[d]), self.latent_layout(l))
            }
            Q::Gamma { shape, rate } => {
                // a(a+1)/b²
                let a1 = self.shift(&shape, 1.0);
                let num = self.mul(&shape, &a1);
                let b2 = self.f(MapFn::Square, &rate);
                self.div(&num, &b2)
            }
            _ => unreachable!("second moments are needed for Normal and Gamma latents"),
        }
    }

    /// E[ln x] (Gamma, Beta, Dirichlet).
    fn log(&mut self, l: LatentId) -> Value {
        match self.q(l).clone() {
            Q::Gamma { shape, rate } => {
                let d = self.f(MapFn::Digamma, &shape);
                let lb = self.f(MapFn::Log, &rate);
                self.sub(&d, &lb)
            }
            Q::InverseGamma { shape, scale } => {
                // ln β − ψ(α)
                let d = self.f(MapFn::Digamma, &shape);
                let lb = self.f(MapFn::Log, &scale);
                self.sub(&lb, &d)
            }
            Q::Beta { a, b } => {
                let ab = self.add(&a, &b);
                let d = self.f(MapFn::Digamma, &a);
                let dab = self.f(MapFn::Digamma, &ab);
                self.sub(&d, &dab)
            }
            Q::Dirichlet { alpha } => {
                let tot = self.sum_last(&alpha);
                let d = self.f(MapFn::Digamma, &alpha);
                let dt = self.f(MapFn::Digamma, &tot);
                self.sub(&d, &dt)
            }
            _ => unreachable!("log expectations are needed for Gamma, Beta and Dirichlet latents"),
        }
    }

    /// E[1/x] (InverseGamma).
    fn inverse(&mut self, l: LatentId) -> Value {
        match self.q(l).clone() {
            Q::InverseGamma { shape, scale } => self.div(&shape, &scale),
            _ => unreachable!("inverse expectations are needed for InverseGamma latents"),
        }
    }

    /// E[ln(1 − x)] (Beta).
    fn log1m(&mut self, l: LatentId) -> Value {
        match self.q(l).clone() {
            Q::Beta { a, b } => {
                let ab = self.add(&a, &b);
                let d = self.f(MapFn::Digamma, &b);
                let dab = self.f(MapFn::Digamma, &ab);
                self.sub(&d, &dab)
            }
            _ => unreachable!("only Beta latents"),
        }
    }

    /// Sum over the last axis, keeping it as length 1 (for broadcasting back).
    fn sum_last(&mut self, a: &Value) -> Value {
        let n = a.lay.dims().len();
        let arr = self.s.sum_axes(&a.arr, n - 1, n);
        let mut lay = a.lay.clone();
        *lay.shape.last_mut().expect("an axis") = 1;
        v(arr.reshaped(&lay.dims()), lay)
    }

    // ------------------------------------------------------------------ statement frames

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

    /// A statistic of one argument in a statement's frame. `stat` picks which expectation.
    fn arg_stat(&mut self, form: &ArgForm, stat: Stat) -> Value {
        match form {
            ArgForm::Const(id) => {
                let c = self.constant(*id);
                match stat {
                    Stat::Mean => c,
                    Stat::Second => self.f(MapFn::Square, &c),
                    Stat::Log => self.f(MapFn::Log, &c),
                    Stat::Log1m => self.f(MapFn::Log1m, &c),
                    Stat::Inverse => {
                        let one = self.sc(1.0);
                        self.div(&one, &c)
                    }
                }
            }
            ArgForm::Latent(l) => self.latent_stat(*l, stat),
            ArgForm::Mix { latent, .. } => {
                // Components along the latent's first axis (or its plate); trailing axes stay
                // the member's.
                let st = self.latent_stat(*latent, stat);
                let whole = unplated(&st.lay);
                v(st.arr, whole)
            }
            ArgForm::Gather { latent, node } => {
                let s = self.latent_stat(*latent, stat);
                self.through(*node, *latent, s)
            }
            ArgForm::Linear { latent, covariates } => {
                let (mean, cov, d) = match self.q(*latent).clone() {
                    Q::Block { mean, cov, d } => (mean, cov, d),
                    _ => unreachable!("linear forms have block q"),
                };
                let m = v(self.s.array(&mean, &[d]), self.latent_layout(*latent));
                let x = self.constant(*covariates);
                let pred = crate::backend::eval::matmul(&mut self.s, &x, &m);
                match stat {
                    Stat::Mean => pred,
                    Stat::Second => {
                        // E[(x·w)²] = (x·m)² + xᵀ S x, row by row.
                        let rows = x.arr.len() / d;
                        let xr = x.arr.reshaped(&[rows, d]);
                        let s_arr = self.s.array(&cov, &[d, d]);
                        let xs = self.s.matmul(&xr, &s_arr);
                        let prod = self.s.zip(ZipFn::Mul, &xs, &xr);
                        let quad = self.s.sum_axes(&prod, 1, 2);
                        let quad = v(quad.reshaped(&pred.lay.dims()), pred.lay.clone());
                        let p2 = self.f(MapFn::Square, &pred);
                        self.add(&p2, &quad)
                    }
                    _ => unreachable!("linear predictors are Normal locations"),
                }
            }
        }
    }

    fn latent_stat(&mut self, l: LatentId, stat: Stat) -> Value {
        match stat {
            Stat::Mean => self.mean(l),
            Stat::Second => self.second(l),
            Stat::Log => self.log(l),
            Stat::Log1m => self.log1m(l),
            Stat::Inverse => self.inverse(l),
        }
    }

    /// The statement's observed value (data) or the expectation of its latent value.
    fn value_stat(&mut self, sp: &SitePlan, stat: Stat) -> Value {
        match &sp.value {
            ValueForm::Data(id) => {
                let x = self.constant(*id);
                match stat {
                    Stat::Mean => x,
                    Stat::Second => self.f(MapFn::Square, &x),
                    Stat::Log => self.f(MapFn::Log, &x),
                    Stat::Log1m => self.f(MapFn::Log1m, &x),
                    Stat::Inverse => {
                        let one = self.sc(1.0);
                        self.div(&one, &x)
                    }
                }
            }
            ValueForm::Latent(l) => self.latent_stat(*l, stat),
        }
    }

    /// A one-hot encoding of the statement's categorical value along `k` categories (data), or
    /// its responsibilities (a categorical latent).
    fn value_one_hot(&mut self, sp: &SitePlan, k: usize) -> Value {
        match &sp.value {
            ValueForm::Data(id) => {
                let x = self.constant(*id);
                crate::dist::density::one_hot(&mut self.s, &x, k)
            }
            ValueForm::Latent(l) => self.mean(*l),
        }
    }

    /// The responsibilities of a statement's mixture index, shaped to broadcast against arrays
    /// with `rank` axes after the component axis.
    fn weights(&mut self, sp: &SitePlan, rank: usize) -> Option<Value> {
        let c = sp.index?;
        let probs = self.mean(c);
        let mut lay = probs.lay.clone();
        lay.shape.extend(std::iter::repeat_n(1, rank));
        Some(v(probs.arr.reshaped(&lay.dims()), lay))
    }

    /// Expected log-likelihood of a statement per plate member (and per component for a
    /// mixture): E_q[log p(x | args)] with the component axis kept.
    fn expected_loglik(&mut self, sp: &SitePlan) -> Value {
        let site = &self.model.sites[sp.site];
        let (family, pz) = (site.dist.family, site.dist.pz);
        let a = |k: usize| sp.args[k].clone();
        match (family, pz) {
            (Family::Normal, _) => {
                let (etau, elogtau) = match pz {
                    Parameterization::Precision => {
                        (self.arg_stat(&a(1), Stat::Mean), self.arg_stat(&a(1), Stat::Log))
                    }
                    Parameterization::Variance => {
                        let inv = self.arg_stat(&a(1), Stat::Inverse);
                        let lv = self.arg_stat(&a(1), Stat::Log);
                        (inv, self.scale(&lv, -1.0))
                    }
                    _ => {
                        // A fixed scale: τ = 1/σ², ln τ = −2 ln σ.
                        let sd = self.arg_stat(&a(1), Stat::Mean);
                        let var = self.f(MapFn::Square, &sd);
                        let lvar = self.f(MapFn::Log, &var);
                        let ltau = self.scale(&lvar, -1.0);
                        let tau = self.f(MapFn::Exp, &ltau);
                        (tau, ltau)
                    }
                };
                let sq = self.expected_square_error(sp);
                let t = self.mul(&etau, &sq);
                let t = self.scale(&t, -0.5);
                let h = self.scale(&elogtau, 0.5);
                let r = self.add(&h, &t);
                self.shift(&r, -0.5 * LN_2PI)
            }
            (Family::Poisson, _) => {
                // x E[ln λ] − E[λ] − lgamma(x + 1)
                let x = self.value_stat(sp, Stat::Mean);
                let el = self.arg_stat(&a(0), Stat::Mean);
                let ell = self.arg_stat(&a(0), Stat::Log);
                let t = self.mul(&x, &ell);
                let t = self.sub(&t, &el);
                let x1 = self.shift(&x, 1.0);
                let g = self.f(MapFn::LGamma, &x1);
                self.sub(&t, &g)
            }
            (Family::Exponential, _) => {
                let x = self.value_stat(sp, Stat::Mean);
                let el = self.arg_stat(&a(0), Stat::Mean);
                let ell = self.arg_stat(&a(0), Stat::Log);
                let t = self.mul(&el, &x);
                self.sub(&ell, &t)
            }
            (Family::Gamma, _) => {
                // latent child λ ~ Gamma(α, β): α E[ln β] − lgamma(α) + (α−1) E[ln λ] − E[β] E[λ]
                let alpha = self.arg_stat(&a(0), Stat::Mean);
                let eb = self.arg_stat(&a(1), Stat::Mean);
                let elb = self.arg_stat(&a(1), Stat::Log);
                let el = self.value_stat(sp, Stat::Mean);
                let ell = self.value_stat(sp, Stat::Log);
                let t1 = self.mul(&alpha, &elb);
                let g = self.f(MapFn::LGamma, &alpha);
                let am1 = self.shift(&alpha, -1.0);
                let t3 = self.mul(&am1, &ell);
                let t4 = self.mul(&eb, &el);
                let r = self.sub(&t1, &g);
                let r = self.add(&r, &t3);
                self.sub(&r, &t4)
            }
            (Family::InverseGamma, _) => {
                // a ln b − lgamma(a) − (a+1) E[ln v] − b E[1/v]
                let (ca, cb) = (self.arg_stat(&a(0), Stat::Mean), self.arg_stat(&a(1), Stat::Mean));
                let elv = self.value_stat(sp, Stat::Log);
                let einv = self.value_stat(sp, Stat::Inverse);
                let lb = self.f(MapFn::Log, &cb);
                let t1 = self.mul(&ca, &lb);
                let g = self.f(MapFn::LGamma, &ca);
                let ap1 = self.shift(&ca, 1.0);
                let t3 = self.mul(&ap1, &elv);
                let t4 = self.mul(&cb, &einv);
                let r = self.sub(&t1, &g);
                let r = self.sub(&r, &t3);
                self.sub(&r, &t4)
            }
            (Family::Bernoulli | Family::Binomial, _) => {
                let (n, xs, pslot) = if family == Family::Binomial {
                    (Some(a(0)), self.value_stat(sp, Stat::Mean), a(1))
                } else {
                    (None, self.value_stat(sp, Stat::Mean), a(0))
                };
                let elp = self.arg_stat(&pslot, Stat::Log);
                let el1p = self.arg_stat(&pslot, Stat::Log1m);
                let nn = match &n {
                    Some(f) => self.arg_stat(f, Stat::Mean),
                    None => self.sc(1.0),
                };
                let fail = self.sub(&nn, &xs);
                let t1 = self.mul(&xs, &elp);
                let t2 = self.mul(&fail, &el1p);
                let r = self.add(&t1, &t2);
                if n.is_some() {
                    let n1 = self.shift(&nn, 1.0);
                    let x1 = self.shift(&xs, 1.0);
                    let f1 = self.shift(&fail, 1.0);
                    let g1 = self.f(MapFn::LGamma, &n1);
                    let g2 = self.f(MapFn::LGamma, &x1);
                    let g3 = self.f(MapFn::LGamma, &f1);
                    let c = self.sub(&g1, &g2);
                    let c = self.sub(&c, &g3);
                    self.add(&r, &c)
                } else {
                    r
                }
            }
            (Family::Categorical, _) => {
                let elp = self.arg_stat(&a(0), Stat::Log);
                let k = *elp.lay.shape.last().expect("a probability vector");
                let oh = self.value_one_hot(sp, k);
                let t = self.mul(&oh, &elp);
                self.sum_event(&t)
            }
            (Family::Multinomial, _) => {
                let elp = self.arg_stat(&a(1), Stat::Log);
                let x = self.value_stat(sp, Stat::Mean);
                let t = self.mul(&x, &elp);
                let t = self.sum_event(&t);
                let n = self.arg_stat(&a(0), Stat::Mean);
                let n1 = self.shift(&n, 1.0);
                let gn = self.f(MapFn::LGamma, &n1);
                let x1 = self.shift(&x, 1.0);
                let gx = self.f(MapFn::LGamma, &x1);
                let gx = self.sum_event(&gx);
                let r = self.sub(&gn, &gx);
                self.add(&r, &t)
            }
            (Family::Beta, _) => {
                // (a−1) E[ln p] + (b−1) E[ln(1−p)] − ln B(a, b)
                let (ca, cb) = (self.arg_stat(&a(0), Stat::Mean), self.arg_stat(&a(1), Stat::Mean));
                let elp = self.value_stat(sp, Stat::Log);
                let el1p = self.value_stat(sp, Stat::Log1m);
                let am1 = self.shift(&ca, -1.0);
                let bm1 = self.shift(&cb, -1.0);
                let t1 = self.mul(&am1, &elp);
                let t2 = self.mul(&bm1, &el1p);
                let lb = self.log_beta(&ca, &cb);
                let r = self.add(&t1, &t2);
                self.sub(&r, &lb)
            }
            (Family::Dirichlet, _) => {
                let alpha = self.arg_stat(&a(0), Stat::Mean);
                let elp = self.value_stat(sp, Stat::Log);
                let am1 = self.shift(&alpha, -1.0);
                let t = self.mul(&am1, &elp);
                let t = self.sum_event(&t);
                let tot = self.sum_event(&alpha);
                let gt = self.f(MapFn::LGamma, &tot);
                let ga = self.f(MapFn::LGamma, &alpha);
                let ga = self.sum_event(&ga);
                let r = self.add(&t, &gt);
                self.sub(&r, &ga)
            }
            (f, _) => unreachable!("{f} statements are not part of a conjugate plan"),
        }
    }

    /// The rank of the statement's value per member.
    fn value_rank(&self, sp: &SitePlan) -> usize {
        self.model.sites[sp.site].dist.value_shape().len()
    }

    /// Sum the last axis (an event axis), dropping it.
    fn sum_event(&mut self, a: &Value) -> Value {
        let n = a.lay.dims().len();
        let arr = self.s.sum_axes(&a.arr, n - 1, n);
        let mut lay = a.lay.clone();
        lay.shape.pop();
        v(arr, lay)
    }

    fn log_beta(&mut self, a: &Value, b: &Value) -> Value {
        let ga = self.f(MapFn::LGamma, a);
        let gb = self.f(MapFn::LGamma, b);
        let ab = self.add(a, b);
        let gab = self.f(MapFn::LGamma, &ab);
        let r = self.add(&ga, &gb);
        self.sub(&r, &gab)
    }

    /// E[(x − μ)²] for a Normal statement: E[x²] − 2 E[x] E[μ] + E[μ²].
    fn expected_square_error(&mut self, sp: &SitePlan) -> Value {
        let ex = self.value_stat(sp, Stat::Mean);
        let ex2 = self.value_stat(sp, Stat::Second);
        let loc = sp.args[0].clone();
        let em = self.arg_stat(&loc, Stat::Mean);
        let em2 = self.arg_stat(&loc, Stat::Second);
        let cross = self.mul(&ex, &em);
        let cross = self.scale(&cross, 2.0);
        let r = self.sub(&ex2, &cross);
        self.add(&r, &em2)
    }

    /// Weight a per-member (and per-component) array by the statement's responsibilities.
    fn weighted(&mut self, sp: &SitePlan, a: &Value, rank: usize) -> Value {
        match self.weights(sp, rank) {
            Some(w) => self.mul(&w, a),
            None => a.clone(),
        }
    }

    /// Sum a message in a statement's frame down to a latent's layout, following the form in
    /// which the latent appears.
    fn message_to(&mut self, msg: &Value, form: &ArgForm, l: LatentId) -> Value {
        let target = self.latent_layout(l);
        match form {
            ArgForm::Gather { node, .. } => {
                // Rows were chosen by data: scatter them back with a one-hot matrix product.
                let (rows, index) = self.gather_index(*node);
                let lat = self.model.latent(l);
                let row_shape = if lat.plates.is_empty() {
                    target.shape[1..].to_vec()
                } else {
                    target.shape.clone()
                };
                let row_target = Layout {
                    samples: None,
                    plates: msg.lay.plates.clone(),
                    shape: row_shape,
                };
                let m = reduce_to(&mut self.s, msg, &row_target, true);
                let n = index.len();
                let width = m.arr.len() / n.max(1);
                let mut oh = vec![0.0; rows * n];
                for (t, r) in index.iter().enumerate() {
                    oh[r * n + t] = 1.0;
                }
                let oh = self.s.array(&oh, &[rows, n]);
                let out = self.s.matmul(&oh, &m.arr.reshaped(&[n, width]));
                // The latent's first axis (or its plate) is the gathered one.
                v(out.reshaped(&target.dims()), target)
            }
            ArgForm::Mix { .. } if !self.model.latent(l).plates.is_empty() => {
                // Components drawn in a plate: the plate is the component axis.
                let whole = unplated(&target);
                let m = reduce_to(&mut self.s, msg, &whole, false);
                v(m.arr.reshaped(&target.dims()), target)
            }
            _ => reduce_to(&mut self.s, msg, &target, false),
        }
    }

    /// For a `latent[data]` node: the latent's first-axis length and the data indices (one per
    /// plate member of the statement).
    fn gather_index(&mut self, node: NodeId) -> (usize, Vec<usize>) {
        let Op::Select { src, index, .. } = &self.model.node(node).op else {
            unreachable!("a gather is a select")
        };
        let idx = self.constant(*index);
        let rows = match &self.model.node(*src).op {
            Op::Unplate { src } => {
                let Op::Latent(l) = self.model.node(*src).op else {
                    unreachable!()
                };
                self.latent_layout(l).plates.first().map_or(1, |p| p.1)
            }
            Op::Latent(l) => self.latent_layout(*l).shape[0],
            _ => unreachable!("gathers read a latent"),
        };
        let vals = self.s.values(&idx.arr);
        (rows, vals.iter().map(|x| x.round().max(0.0) as usize).collect())
    }

    // ------------------------------------------------------------------ updates

    /// Statements that use latent `l` as an argument, with the slot.
    fn uses(&self, l: LatentId) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (k, sp) in self.plan.sites.iter().enumerate() {
            for (slot, a) in sp.args.iter().enumerate() {
                if a.latent() == Some(l) {
                    out.push((k, slot));
                }
            }
        }
        out
    }

    fn prior_plan(&self, l: LatentId) -> SitePlan {
        let site = self.model.latent(l).site;
        self.plan
            .sites
            .iter()
            .find(|sp| sp.site == site)
            .cloned()
            .expect("a conjugate latent's prior is planned")
    }

    fn update(&mut self, l: LatentId) {
        let q = self.plan.q(l);
        let prior = self.prior_plan(l);
        let lay = self.latent_layout(l);
        match q {
            QFamily::Normal => {
                // η2 = Σ E[τ] (precision), η1 = Σ E[τ] E[target]
                let (mut eta1, mut eta2) = self.normal_prior(&prior, &lay);
                for (k, slot) in self.uses(l) {
                    if let Some(f) = self.fast_at(k) {
                        // η1_k += E[τ_k] Σφx, η2_k += E[τ_k] Σφ
                        let tau = self.fast_precision(&f).0;
                        let (m1, m2): (Vec<f64>, Vec<f64>) = (0..f.k)
                            .map(|j| (tau[j] * f.sums(j).1, tau[j] * f.sums(j).0))
                            .unzip();
                        let m1 = v(self.s.array(&m1, &lay.dims()), lay.clone());
                        let m2 = v(self.s.array(&m2, &lay.dims()), lay.clone());
                        eta1 = self.add(&eta1, &m1);
                        eta2 = self.add(&eta2, &m2);
                        continue;
                    }
                    let sp = self.plan.sites[k].clone();
                    debug_assert_eq!(slot, 0);
                    let vr = self.value_rank(&sp);
                    let etau = self.precision(&sp);
                    let ex = self.value_stat(&sp, Stat::Mean);
                    let w1 = self.mul(&etau, &ex);
                    let w1 = self.weighted(&sp, &w1, vr);
                    let w2 = self.weighted(&sp, &etau, vr);
                    let w2 = expand(&mut self.s, &w2, &joint_layout(&w2.lay, &w1.lay));
                    let form = sp.args[0].clone();
                    let m1 = self.message_to(&w1, &form, l);
                    let m2 = self.message_to(&w2, &form, l);
                    eta1 = self.add(&eta1, &m1);
                    eta2 = self.add(&eta2, &m2);
                }
                let var = {
                    let one = self.sc(1.0);
                    self.div(&one, &eta2)
                };
                let mean = self.mul(&eta1, &var);
                let mean = expand(&mut self.s, &mean, &lay);
                let var = expand(&mut self.s, &var, &lay);
                self.q[l.index()] = Some(Q::Normal { mean, var });
            }
            QFamily::NormalBlock => self.update_block(l, &prior),
            QFamily::Gamma => {
                let a0 = self.arg_stat(&prior.args[0], Stat::Mean);
                let b0 = self.arg_stat(&prior.args[1], Stat::Mean);
                let mut shape = expand(&mut self.s, &a0, &lay);
                let mut rate = expand(&mut self.s, &b0, &lay);
                for (k, slot) in self.uses(l) {
                    if let Some(f) = self.fast_at(k) {
                        // shape += ½Σφ, rate += ½(Σφx² − 2E[μ]Σφx + E[μ²]Σφ), per component or
                        // summed when the precision is shared.
                        let (em, em2) = self.fast_loc(&f);
                        let (ds, dr): (Vec<f64>, Vec<f64>) = (0..f.k)
                            .map(|j| {
                                let (s0, s1, s2) = f.sums(j);
                                (0.5 * s0, 0.5 * (s2 - 2.0 * em[j] * s1 + em2[j] * s0))
                            })
                            .unzip();
                        let n = lay.dims().iter().product::<usize>();
                        let (ds, dr) = if n == f.k {
                            (ds, dr)
                        } else {
                            (vec![ds.iter().sum()], vec![dr.iter().sum()])
                        };
                        let ds = v(self.s.array(&ds, &lay.dims()), lay.clone());
                        let dr = v(self.s.array(&dr, &lay.dims()), lay.clone());
                        shape = self.add(&shape, &ds);
                        rate = self.add(&rate, &dr);
                        continue;
                    }
                    let sp = self.plan.sites[k].clone();
                    let site_family = self.model.sites[sp.site].dist.family;
                    let vr = self.value_rank(&sp);
                    let (ds, dr) = match site_family {
                        Family::Normal => {
                            let sq = self.expected_square_error(&sp);
                            let half = self.scale(&sq, 0.5);
                            let ones = v(self.s.full(0.5, &half.lay.dims()), half.lay.clone());
                            (ones, half)
                        }
                        Family::Poisson => {
                            let x = self.value_stat(&sp, Stat::Mean);
                            let one = v(self.s.full(1.0, &x.lay.dims()), x.lay.clone());
                            (x, one)
                        }
                        Family::Exponential => {
                            let x = self.value_stat(&sp, Stat::Mean);
                            let one = v(self.s.full(1.0, &x.lay.dims()), x.lay.clone());
                            (one, x)
                        }
                        Family::Gamma => {
                            debug_assert_eq!(slot, 1);
                            let alpha = self.arg_stat(&sp.args[0], Stat::Mean);
                            let el = self.value_stat(&sp, Stat::Mean);
                            let alpha = expand(&mut self.s, &alpha, &joint_layout(&alpha.lay, &el.lay));
                            (alpha, el)
                        }
                        f => unreachable!("{f} is not conjugate to a Gamma"),
                    };
                    let ds = self.weighted(&sp, &ds, vr);
                    let dr = self.weighted(&sp, &dr, vr);
                    let form = sp.args[slot].clone();
                    let ms = self.message_to(&ds, &form, l);
                    let mr = self.message_to(&dr, &form, l);
                    shape = self.add(&shape, &ms);
                    rate = self.add(&rate, &mr);
                }
                let shape = expand(&mut self.s, &shape, &lay);
                let rate = expand(&mut self.s, &rate, &lay);
                self.q[l.index()] = Some(Q::Gamma { shape, rate });
            }
            QFamily::InverseGamma => {
                // α = α0 + Σ ½, β = β0 + Σ ½ E[(x − μ)²] over the Normal statements it is the
                // variance of.
                let a0 = self.arg_stat(&prior.args[0], Stat::Mean);
                let b0 = self.arg_stat(&prior.args[1], Stat::Mean);
                let mut shape = expand(&mut self.s, &a0, &lay);
                let mut scale = expand(&mut self.s, &b0, &lay);
                for (k, slot) in self.uses(l) {
                    let sp = self.plan.sites[k].clone();
                    let vr = self.value_rank(&sp);
                    let sq = self.expected_square_error(&sp);
                    let dr = self.scale(&sq, 0.5);
                    let ds = v(self.s.full(0.5, &dr.lay.dims()), dr.lay.clone());
                    let ds = self.weighted(&sp, &ds, vr);
                    let dr = self.weighted(&sp, &dr, vr);
                    let form = sp.args[slot].clone();
                    let ms = self.message_to(&ds, &form, l);
                    let mr = self.message_to(&dr, &form, l);
                    shape = self.add(&shape, &ms);
                    scale = self.add(&scale, &mr);
                }
                let shape = expand(&mut self.s, &shape, &lay);
                let scale = expand(&mut self.s, &scale, &lay);
                self.q[l.index()] = Some(Q::InverseGamma { shape, scale });
            }
            QFamily::Beta => {
                let a0 = self.arg_stat(&prior.args[0], Stat::Mean);
                let b0 = self.arg_stat(&prior.args[1], Stat::Mean);
                let mut a = expand(&mut self.s, &a0, &lay);
                let mut b = expand(&mut self.s, &b0, &lay);
                for (k, slot) in self.uses(l) {
                    let sp = self.plan.sites[k].clone();
                    let vr = self.value_rank(&sp);
                    let x = self.value_stat(&sp, Stat::Mean);
                    let n = if self.model.sites[sp.site].dist.family == Family::Binomial {
                        self.arg_stat(&sp.args[0], Stat::Mean)
                    } else {
                        self.sc(1.0)
                    };
                    let fail = self.sub(&n, &x);
                    let x = expand(&mut self.s, &x, &joint_layout(&x.lay, &fail.lay));
                    let da = self.weighted(&sp, &x, vr);
                    let db = self.weighted(&sp, &fail, vr);
                    let form = sp.args[slot].clone();
                    let ma = self.message_to(&da, &form, l);
                    let mb = self.message_to(&db, &form, l);
                    a = self.add(&a, &ma);
                    b = self.add(&b, &mb);
                }
                let a = expand(&mut self.s, &a, &lay);
                let b = expand(&mut self.s, &b, &lay);
                self.q[l.index()] = Some(Q::Beta { a, b });
            }
            QFamily::Dirichlet => {
                let a0 = self.arg_stat(&prior.args[0], Stat::Mean);
                let mut alpha = expand(&mut self.s, &a0, &lay);
                for (k, slot) in self.uses(l) {
                    if let Some(f) = self.fast_prior_at(k) {
                        // α_k += Σ_i φ_ik
                        let counts: Vec<f64> = (0..f.k).map(|j| f.sums(j).0).collect();
                        let m = v(self.s.array(&counts, &lay.dims()), lay.clone());
                        alpha = self.add(&alpha, &m);
                        continue;
                    }
                    let sp = self.plan.sites[k].clone();
                    let vr = self.value_rank(&sp);
                    let kk = *lay.shape.last().expect("a Dirichlet has categories");
                    let counts = if self.model.sites[sp.site].dist.family == Family::Multinomial {
                        self.value_stat(&sp, Stat::Mean)
                    } else {
                        self.value_one_hot(&sp, kk)
                    };
                    let d = self.weighted(&sp, &counts, vr + 1);
                    let form = sp.args[slot].clone();
                    let m = self.message_to(&d, &form, l);
                    alpha = self.add(&alpha, &m);
                }
                let alpha = expand(&mut self.s, &alpha, &lay);
                self.q[l.index()] = Some(Q::Dirichlet { alpha });
            }
            QFamily::Categorical if self.fast[l.index()].is_some() => self.update_fast(l),
            QFamily::Categorical => {
                // log φ = E[ln p] (prior) + Σ mixture statements' expected log-likelihoods.
                let kk = self.categories(l);
                let mut logits = match &prior.args[0] {
                    ArgForm::Const(_) => self.arg_stat(&prior.args[0], Stat::Log),
                    form => self.arg_stat(form, Stat::Log),
                };
                let clay = Layout {
                    shape: vec![kk],
                    ..lay.clone()
                };
                logits = expand(&mut self.s, &logits, &clay);
                for sp in self.plan.sites.clone() {
                    if sp.index != Some(l) {
                        continue;
                    }
                    let ell = self.expected_loglik(&sp);
                    // Sum the member's own axes (after the component axis) and extra plates.
                    let r = self.value_rank(&sp);
                    let ell = if r > 0 {
                        let n = ell.lay.dims().len();
                        let arr = self.s.sum_axes(&ell.arr, n - r, n);
                        let mut lay2 = ell.lay.clone();
                        lay2.shape.truncate(lay2.shape.len() - r);
                        v(arr, lay2)
                    } else {
                        ell
                    };
                    let m = reduce_to(&mut self.s, &ell, &clay, false);
                    logits = self.add(&logits, &m);
                }
                let probs = v(self.s.softmax(&logits.arr, false), logits.lay.clone());
                self.q[l.index()] = Some(Q::Categorical { probs });
            }
        }
    }

    /// A Normal latent's prior natural parameters (η1 = E[τ0] E[μ0], η2 = E[τ0]).
    fn normal_prior(&mut self, prior: &SitePlan, lay: &Layout) -> (Value, Value) {
        let tau0 = self.precision(prior);
        let mu0 = self.arg_stat(&prior.args[0], Stat::Mean);
        let eta1 = self.mul(&tau0, &mu0);
        let eta1 = expand(&mut self.s, &eta1, lay);
        let eta2 = expand(&mut self.s, &tau0, lay);
        (eta1, eta2)
    }

    /// E[τ] of a Normal statement: its precision, or 1/scale².
    fn precision(&mut self, sp: &SitePlan) -> Value {
        let pz = self.model.sites[sp.site].dist.pz;
        match pz {
            Parameterization::Precision => self.arg_stat(&sp.args[1], Stat::Mean),
            Parameterization::Variance => self.arg_stat(&sp.args[1], Stat::Inverse),
            _ => {
                let sd = self.arg_stat(&sp.args[1], Stat::Mean);
                let var = self.f(MapFn::Square, &sd);
                let one = self.sc(1.0);
                self.div(&one, &var)
            }
        }
    }

    /// The multivariate Normal update of regression weights: Λ = Λ0 + Σ E[τ] x xᵀ,
    /// h = Λ0 μ0 + Σ E[τ] x y, S = Λ⁻¹, m = S h.
    fn update_block(&mut self, l: LatentId, prior: &SitePlan) {
        let d = self.latent_layout(l).shape[0];
        let tau0 = self.precision(prior);
        let tau0 = expand(&mut self.s, &tau0, &Layout::of_shape(vec![d]));
        let mu0 = self.arg_stat(&prior.args[0], Stat::Mean);
        let mu0 = expand(&mut self.s, &mu0, &Layout::of_shape(vec![d]));
        let t0 = self.s.values(&tau0.arr);
        let m0 = self.s.values(&mu0.arr);
        let mut lam = vec![0.0; d * d];
        let mut h = vec![0.0; d];
        for i in 0..d {
            lam[i * d + i] = t0[i];
            h[i] = t0[i] * m0[i];
        }
        for (k, _) in self.uses(l) {
            let sp = self.plan.sites[k].clone();
            let ArgForm::Linear { covariates, .. } = sp.args[0].clone() else {
                unreachable!("block latents appear linearly")
            };
            let x = self.constant(covariates);
            let etau = self.precision(&sp);
            let y = self.value_stat(&sp, Stat::Mean);
            let wt = self.weighted(&sp, &etau, 0);
            let lead = Layout {
                shape: vec![],
                ..x.lay.clone()
            };
            let lead_n = lead.lead_len() * x.lay.shape[..x.lay.shape.len() - 1].iter().product::<usize>();
            let pred_lay = joint_layout(
                &y.lay,
                &Layout {
                    shape: x.lay.shape[..x.lay.shape.len() - 1].to_vec(),
                    ..lead.clone()
                },
            );
            let wt = expand(&mut self.s, &wt, &pred_lay);
            let y = expand(&mut self.s, &y, &pred_lay);
            let xr = x.arr.reshaped(&[lead_n, d]);
            let wcol = wt.arr.reshaped(&[lead_n, 1]);
            let wx = {
                let wb = self.s.insert_axis(&wt.arr.reshaped(&[lead_n]), 1, d);
                self.s.zip(ZipFn::Mul, &wb, &xr)
            };
            let xtx = self.s.matmul_tn(&xr, &wx);
            let wy = self
                .s
                .zip(ZipFn::Mul, &wcol.reshaped(&[lead_n]), &y.arr.reshaped(&[lead_n]));
            let xty = self.s.matmul_tn(&xr, &wy.reshaped(&[lead_n, 1]));
            for (a, b) in lam.iter_mut().zip(self.s.values(&xtx)) {
                *a += b;
            }
            for (a, b) in h.iter_mut().zip(self.s.values(&xty)) {
                *a += b;
            }
        }
        let chol = linalg::cholesky(&lam, d).expect("a posterior precision is positive definite");
        let cov = linalg::spd_inverse(&chol, d);
        let mean = linalg::mat_vec(&cov, &h, d);
        self.q[l.index()] = Some(Q::Block { mean, cov, d });
    }

    // ------------------------------------------------------------------ fused mixtures

    /// The fused mixture whose mixture statement is plan site `k`.
    fn fast_at(&self, k: usize) -> Option<FastMixture> {
        self.fast.iter().flatten().find(|f| f.site == k).cloned()
    }

    /// The fused mixture whose index's prior statement is plan site `k`.
    fn fast_prior_at(&self, k: usize) -> Option<FastMixture> {
        self.fast.iter().flatten().find(|f| f.prior == k).cloned()
    }

    /// An argument's statistic as K host numbers (a scalar repeated).
    fn per_component(&mut self, form: &ArgForm, stat: Stat, k: usize) -> Vec<f64> {
        let val = self.arg_stat(form, stat);
        let xs = self.s.values(&val.arr);
        if xs.len() == k {
            xs
        } else {
            vec![xs[0]; k]
        }
    }

    /// (E[τ_k], E[ln τ_k]) of the mixture statement.
    fn fast_precision(&mut self, f: &FastMixture) -> (Vec<f64>, Vec<f64>) {
        let sp = self.plan.sites[f.site].clone();
        match self.model.sites[sp.site].dist.pz {
            Parameterization::Precision => (
                self.per_component(&sp.args[1], Stat::Mean, f.k),
                self.per_component(&sp.args[1], Stat::Log, f.k),
            ),
            _ => {
                let sd = self.per_component(&sp.args[1], Stat::Mean, f.k);
                (
                    sd.iter().map(|s| 1.0 / (s * s)).collect(),
                    sd.iter().map(|s| -2.0 * s.ln()).collect(),
                )
            }
        }
    }

    /// (E[μ_k], E[μ_k²]) of the mixture statement.
    fn fast_loc(&mut self, f: &FastMixture) -> (Vec<f64>, Vec<f64>) {
        let loc = self.plan.sites[f.site].args[0].clone();
        (
            self.per_component(&loc, Stat::Mean, f.k),
            self.per_component(&loc, Stat::Second, f.k),
        )
    }

    /// E[ln p_k] of the index's prior.
    fn fast_prior_logp(&mut self, f: &FastMixture) -> Vec<f64> {
        let p = self.plan.sites[f.prior].args[0].clone();
        self.per_component(&p, Stat::Log, f.k)
    }

    /// η as `[3, K]`: the natural parameters of each component's expected log-likelihood in
    /// T(x) = (x, x², 1), plus the prior's E[ln p_k] in the constant row when `with_prior`.
    fn fast_eta(&mut self, f: &FastMixture, with_prior: bool) -> Vec<f64> {
        let (tau, ltau) = self.fast_precision(f);
        let (em, em2) = self.fast_loc(f);
        let prior = if with_prior {
            self.fast_prior_logp(f)
        } else {
            vec![0.0; f.k]
        };
        let k = f.k;
        let mut eta = vec![0.0; 3 * k];
        for j in 0..k {
            eta[j] = tau[j] * em[j];
            eta[k + j] = -0.5 * tau[j];
            eta[2 * k + j] = 0.5 * ltau[j] - 0.5 * LN_2PI - 0.5 * tau[j] * em2[j] + prior[j];
        }
        eta
    }

    fn update_fast(&mut self, c: LatentId) {
        let mut f = self.fast[c.index()].take().expect("a fused mixture");
        let eta = self.fast_eta(&f, true);
        let Some(Q::Responsibilities { mut probs, lay }) = self.q[c.index()].take() else {
            unreachable!("fused mixtures start from allocated responsibilities")
        };
        let sums = crate::backend::kernels::responsibilities(&f.t, 3, &eta, &mut probs);
        f.stats = sums.stats;
        f.entropy = sums.entropy;
        self.q[c.index()] = Some(Q::Responsibilities { probs, lay });
        self.fast[c.index()] = Some(f);
    }

    /// Find the categorical latents whose mixture a fused update can handle.
    fn find_fast_mixtures(&mut self) {
        for c in 0..self.model.latents.len() {
            let c = LatentId(c as u32);
            if self.plan.verdicts[c.index()].q != Some(QFamily::Categorical) {
                continue;
            }
            let mixes: Vec<usize> = (0..self.plan.sites.len())
                .filter(|k| self.plan.sites[*k].index == Some(c))
                .collect();
            let [site] = mixes[..] else { continue };
            let sp = self.plan.sites[site].clone();
            let model_site = &self.model.sites[sp.site];
            let lat = self.model.latent(c);
            let component_ok = |form: &ArgForm, want: QFamily, plan: &Plan| match form {
                ArgForm::Const(id) => {
                    self.model.node(*id).ty.plates.is_empty() && self.model.node(*id).ty.shape.is_empty()
                }
                ArgForm::Mix { index, latent } => *index == c && plan.q(*latent) == want,
                ArgForm::Latent(l) => {
                    plan.q(*l) == want
                        && self.model.latent(*l).shape.is_empty()
                        && self.model.latent(*l).plates.is_empty()
                }
                _ => false,
            };
            let ok = model_site.dist.family == Family::Normal
                && model_site.plates == lat.plates
                && model_site.dist.value_shape().is_empty()
                && matches!(sp.value, ValueForm::Data(_))
                && component_ok(&sp.args[0], QFamily::Normal, self.plan)
                && match model_site.dist.pz {
                    Parameterization::Precision => component_ok(&sp.args[1], QFamily::Gamma, self.plan),
                    Parameterization::Variance => false,
                    _ => {
                        matches!(sp.args[1], ArgForm::Const(_))
                            && component_ok(&sp.args[1], QFamily::Gamma, self.plan)
                    }
                };
            let Some(prior) = self.plan.sites.iter().position(|p| p.site == lat.site) else {
                continue;
            };
            let prior_ok = match &self.plan.sites[prior].args[0] {
                ArgForm::Const(id) => self.model.node(*id).ty.plates.is_empty(),
                ArgForm::Latent(l) => self.model.latent(*l).plates.is_empty(),
                _ => false,
            };
            if !ok || !prior_ok {
                continue;
            }
            let ValueForm::Data(x) = sp.value else { continue };
            let xv = self.constant(x);
            let xs = self.s.values(&xv.arr);
            let mut t = xs.clone();
            t.extend(xs.iter().map(|x| x * x));
            t.extend(std::iter::repeat_n(1.0, xs.len()));
            let k = self.categories(c);
            self.fast[c.index()] = Some(FastMixture {
                site,
                prior,
                k,
                t: std::sync::Arc::new(t),
                stats: vec![0.0; 3 * k],
                entropy: 0.0,
            });
        }
    }

    // ------------------------------------------------------------------ the ELBO

    fn entropy(&mut self, l: LatentId) -> f64 {
        if let Some(f) = &self.fast[l.index()] {
            return f.entropy;
        }
        match self.q(l).clone() {
            Q::Normal { var, .. } => {
                let lv = self.f(MapFn::Log, &var);
                let t = self.total(&lv);
                0.5 * t + 0.5 * var.arr.len() as f64 * (LN_2PI + 1.0)
            }
            Q::Block { cov, d, .. } => {
                let chol = linalg::cholesky(&cov, d).expect("a covariance is positive definite");
                0.5 * linalg::log_det(&chol, d) + 0.5 * d as f64 * (LN_2PI + 1.0)
            }
            Q::Gamma { shape, rate } => {
                // a − ln b + lgamma(a) + (1 − a) ψ(a)
                let lb = self.f(MapFn::Log, &rate);
                let ga = self.f(MapFn::LGamma, &shape);
                let da = self.f(MapFn::Digamma, &shape);
                let oma = self.scale(&shape, -1.0);
                let oma = self.shift(&oma, 1.0);
                let t4 = self.mul(&oma, &da);
                let r = self.sub(&shape, &lb);
                let r = self.add(&r, &ga);
                let r = self.add(&r, &t4);
                self.total(&r)
            }
            Q::InverseGamma { shape, scale } => {
                // α + ln β + lgamma(α) − (1 + α) ψ(α)
                let lb = self.f(MapFn::Log, &scale);
                let ga = self.f(MapFn::LGamma, &shape);
                let da = self.f(MapFn::Digamma, &shape);
                let opa = self.shift(&shape, 1.0);
                let t4 = self.mul(&opa, &da);
                let r = self.add(&shape, &lb);
                let r = self.add(&r, &ga);
                let r = self.sub(&r, &t4);
                self.total(&r)
            }
            Q::Beta { a, b } => {
                // ln B(a, b) − (a−1)ψ(a) − (b−1)ψ(b) + (a+b−2)ψ(a+b)
                let lb = self.log_beta(&a, &b);
                let ab = self.add(&a, &b);
                let da = self.f(MapFn::Digamma, &a);
                let db = self.f(MapFn::Digamma, &b);
                let dab = self.f(MapFn::Digamma, &ab);
                let am1 = self.shift(&a, -1.0);
                let bm1 = self.shift(&b, -1.0);
                let abm2 = self.shift(&ab, -2.0);
                let t1 = self.mul(&am1, &da);
                let t2 = self.mul(&bm1, &db);
                let t3 = self.mul(&abm2, &dab);
                let r = self.sub(&lb, &t1);
                let r = self.sub(&r, &t2);
                let r = self.add(&r, &t3);
                self.total(&r)
            }
            Q::Dirichlet { alpha } => {
                // ln B(α) + (α0 − K) ψ(α0) − Σ (α_k − 1) ψ(α_k)
                let k = *alpha.lay.shape.last().expect("categories") as f64;
                let a0 = self.sum_last(&alpha);
                let ga = self.f(MapFn::LGamma, &alpha);
                let ga = self.sum_last(&ga);
                let ga0 = self.f(MapFn::LGamma, &a0);
                let lb = self.sub(&ga, &ga0);
                let d0 = self.f(MapFn::Digamma, &a0);
                let a0k = self.shift(&a0, -k);
                let t2 = self.mul(&a0k, &d0);
                let da = self.f(MapFn::Digamma, &alpha);
                let am1 = self.shift(&alpha, -1.0);
                let t3 = self.mul(&am1, &da);
                let t3 = self.sum_last(&t3);
                let r = self.add(&lb, &t2);
                let r = self.sub(&r, &t3);
                self.total(&r)
            }
            Q::Responsibilities { .. } => unreachable!("fused updates cache their entropy"),
            Q::Categorical { probs } => {
                // −Σ φ ln φ (0 ln 0 = 0)
                let floor = self.s.clamp(&probs.arr, 1e-300, 1.0);
                let lp = self.s.map(MapFn::Log, &floor);
                let t = self.s.zip(ZipFn::Mul, &probs.arr, &lp);
                let t = self.s.sum(&t);
                -self.s.value(&t)
            }
        }
    }

    /// The exact ELBO: Σ statements E_q[log p] + Σ latents H[q].
    fn elbo(&mut self) -> f64 {
        let mut total = 0.0;
        for (k, sp) in self.plan.sites.clone().into_iter().enumerate() {
            if let Some(f) = self.fast_at(k) {
                // Σ_k η_k · Σ_i φ_ik T(x_i), with the current expectations.
                let eta = self.fast_eta(&f, false);
                total += (0..f.k)
                    .map(|j| (0..3).map(|q| eta[q * f.k + j] * f.stats[j * 3 + q]).sum::<f64>())
                    .sum::<f64>();
                continue;
            }
            if let Some(f) = self.fast_prior_at(k) {
                let prior = self.fast_prior_logp(&f);
                total += (0..f.k).map(|j| prior[j] * f.sums(j).0).sum::<f64>();
                continue;
            }
            let ell = self.expected_loglik(&sp);
            let vr = self.value_rank(&sp);
            let w = self.weighted(&sp, &ell, vr);
            total += self.total(&w);
        }
        for k in 0..self.model.latents.len() {
            total += self.entropy(LatentId(k as u32));
        }
        total
    }

    // ------------------------------------------------------------------ initialisation

    fn init(&mut self, restart: usize, rng: &mut ChaCha8Rng) {
        for k in 0..self.model.latents.len() {
            let l = LatentId(k as u32);
            let lay = self.latent_layout(l);
            let prior = self.prior_plan(l);
            let q = match self.plan.q(l) {
                QFamily::Normal => {
                    let mean = match self.mixture_data(l) {
                        Some(x) => {
                            let kk = lay.shape.first().copied().unwrap_or(1);
                            let picks: Vec<f64> = if restart == 0 {
                                // Evenly spaced data quantiles: deterministic and spread out.
                                let mut work = x.clone();
                                (0..kk)
                                    .map(|j| {
                                        let at =
                                            ((j as f64 + 0.5) / kk as f64 * (work.len() - 1) as f64) as usize;
                                        *work.select_nth_unstable_by(at, f64::total_cmp).1
                                    })
                                    .collect()
                            } else {
                                x.choose_multiple(rng, kk).copied().collect()
                            };
                            let n = lay.dims().iter().product::<usize>();
                            let vals: Vec<f64> =
                                (0..n).map(|i| picks[(i / (n / kk).max(1)).min(kk - 1)]).collect();
                            v(self.s.array(&vals, &lay.dims()), lay.clone())
                        }
                        None => {
                            let mu0 = self.arg_stat(&prior.args[0], Stat::Mean);
                            expand(&mut self.s, &mu0, &lay)
                        }
                    };
                    let var = v(self.s.full(1.0, &lay.dims()), lay.clone());
                    Q::Normal { mean, var }
                }
                QFamily::NormalBlock => {
                    let d = lay.shape[0];
                    let mut cov = vec![0.0; d * d];
                    for i in 0..d {
                        cov[i * d + i] = 1.0;
                    }
                    Q::Block {
                        mean: vec![0.0; d],
                        cov,
                        d,
                    }
                }
                QFamily::Gamma => {
                    let a = self.arg_stat(&prior.args[0], Stat::Mean);
                    let b = match &prior.args[1] {
                        ArgForm::Const(_) => self.arg_stat(&prior.args[1], Stat::Mean),
                        _ => self.sc(1.0),
                    };
                    Q::Gamma {
                        shape: expand(&mut self.s, &a, &lay),
                        rate: expand(&mut self.s, &b, &lay),
                    }
                }
                QFamily::InverseGamma => {
                    let a = self.arg_stat(&prior.args[0], Stat::Mean);
                    let b = self.arg_stat(&prior.args[1], Stat::Mean);
                    Q::InverseGamma {
                        shape: expand(&mut self.s, &a, &lay),
                        scale: expand(&mut self.s, &b, &lay),
                    }
                }
                QFamily::Beta => {
                    let a = self.arg_stat(&prior.args[0], Stat::Mean);
                    let b = self.arg_stat(&prior.args[1], Stat::Mean);
                    Q::Beta {
                        a: expand(&mut self.s, &a, &lay),
                        b: expand(&mut self.s, &b, &lay),
                    }
                }
                QFamily::Dirichlet => {
                    let a = self.arg_stat(&prior.args[0], Stat::Mean);
                    let base = expand(&mut self.s, &a, &lay);
                    // Break the symmetry between components a little.
                    let n = base.arr.len();
                    let jitter: Vec<f64> = (0..n).map(|_| 1.0 + 0.1 * rand::Rng::gen::<f64>(rng)).collect();
                    let j = v(self.s.array(&jitter, &lay.dims()), lay.clone());
                    Q::Dirichlet {
                        alpha: self.mul(&base, &j),
                    }
                }
                QFamily::Categorical if self.fast[k].is_some() => {
                    // Allocated once here and rewritten in place by every sweep.
                    let kk = self.categories(l);
                    let clay = Layout {
                        shape: vec![kk],
                        ..lay.clone()
                    };
                    let n = clay.lead_len();
                    match self.q[k].take() {
                        Some(Q::Responsibilities { mut probs, .. }) => {
                            probs.data.fill(1.0 / kk as f64);
                            Q::Responsibilities { probs, lay: clay }
                        }
                        _ => Q::Responsibilities {
                            probs: crate::backend::kernels::Blocked::uniform(n, kk),
                            lay: clay,
                        },
                    }
                }
                QFamily::Categorical => {
                    let kk = self.categories(l);
                    let clay = Layout {
                        shape: vec![kk],
                        ..lay.clone()
                    };
                    Q::Categorical {
                        probs: v(self.s.full(1.0 / kk as f64, &clay.dims()), clay),
                    }
                }
            };
            self.q[k] = Some(q);
        }
    }

    /// For a Normal latent used as mixture components, the data its mixture observes.
    fn mixture_data(&mut self, l: LatentId) -> Option<Vec<f64>> {
        for sp in self.plan.sites.clone() {
            if matches!(sp.args.first(), Some(ArgForm::Mix { latent, .. }) if *latent == l) {
                if let ValueForm::Data(id) = sp.value {
                    let x = self.constant(id);
                    return Some(self.s.values(&x.arr));
                }
            }
        }
        None
    }

    // ------------------------------------------------------------------ summaries

    fn summaries(&mut self, rng: &mut ChaCha8Rng) -> (Vec<LatentSummary>, Vec<NamedTensor>) {
        use rand_distr::{Beta as BetaD, Distribution, Gamma as GammaD};
        let mut out = Vec::new();
        let mut state = Vec::new();
        for (k, lat) in self.model.latents.iter().enumerate() {
            let l = LatentId(k as u32);
            let lay = self.latent_layout(l);
            let shape = {
                let mut s: Vec<usize> = lay.plates.iter().map(|p| p.1).collect();
                s.extend(lay.shape.iter().copied());
                s
            };
            let q = self.q(l).clone();
            let mut put = |name: &str, vals: Vec<f64>, shape: Vec<usize>| {
                state.push(NamedTensor {
                    name: format!("q.{}.{name}", lat.name),
                    shape,
                    values: vals,
                });
            };
            let summary = match q {
                Q::Normal { mean, var } => {
                    let m = self.s.values(&mean.arr);
                    let sd: Vec<f64> = self.s.values(&var.arr).iter().map(|x| x.sqrt()).collect();
                    put("mean", m.clone(), shape.clone());
                    put("var", sd.iter().map(|x| x * x).collect(), shape.clone());
                    normal_summary(&lat.name, shape, &m, &sd)
                }
                Q::Block { mean, cov, d } => {
                    let sd: Vec<f64> = (0..d).map(|i| cov[i * d + i].sqrt()).collect();
                    put("mean", mean.clone(), vec![d]);
                    put("cov", cov.clone(), vec![d, d]);
                    normal_summary(&lat.name, shape, &mean, &sd)
                }
                Q::Gamma { shape: a, rate: b } => {
                    let (a, b) = (self.s.values(&a.arr), self.s.values(&b.arr));
                    put("shape", a.clone(), shape.clone());
                    put("rate", b.clone(), shape.clone());
                    let draws = draw_each(
                        &a,
                        |i, r| GammaD::new(a[i], 1.0 / b[i]).map_or(f64::NAN, |g| g.sample(r)),
                        rng,
                    );
                    exact_moments(
                        LatentSummary::from_draws(&lat.name, shape, &draws, DRAWS, a.len()),
                        |i| (a[i] / b[i], (a[i] / (b[i] * b[i])).sqrt()),
                    )
                }
                Q::InverseGamma { shape: a, scale: b } => {
                    let (a, b) = (self.s.values(&a.arr), self.s.values(&b.arr));
                    put("shape", a.clone(), shape.clone());
                    put("scale", b.clone(), shape.clone());
                    let draws = draw_each(
                        &a,
                        |i, r| GammaD::new(a[i], 1.0 / b[i]).map_or(f64::NAN, |g| 1.0 / g.sample(r)),
                        rng,
                    );
                    let summary = LatentSummary::from_draws(&lat.name, shape, &draws, DRAWS, a.len());
                    // The mean needs α > 1 and the sd α > 2; otherwise keep the sampled figures.
                    let sampled = summary.clone();
                    exact_moments(summary, |i| {
                        if a[i] > 2.0 {
                            let m = b[i] / (a[i] - 1.0);
                            (m, m / (a[i] - 2.0).sqrt())
                        } else {
                            (sampled.mean[i], sampled.sd[i])
                        }
                    })
                }
                Q::Beta { a, b } => {
                    let (a, b) = (self.s.values(&a.arr), self.s.values(&b.arr));
                    put("a", a.clone(), shape.clone());
                    put("b", b.clone(), shape.clone());
                    let draws = draw_each(
                        &a,
                        |i, r| BetaD::new(a[i], b[i]).map_or(f64::NAN, |g| g.sample(r)),
                        rng,
                    );
                    exact_moments(
                        LatentSummary::from_draws(&lat.name, shape, &draws, DRAWS, a.len()),
                        |i| {
                            let s = a[i] + b[i];
                            (a[i] / s, (a[i] * b[i] / (s * s * (s + 1.0))).sqrt())
                        },
                    )
                }
                Q::Dirichlet { alpha } => {
                    let al = self.s.values(&alpha.arr);
                    put("alpha", al.clone(), shape.clone());
                    let kk = *shape.last().expect("categories");
                    // Marginals are Beta(α_k, α0 − α_k).
                    let draws = draw_each(
                        &al,
                        |i, r| {
                            let row = i / kk;
                            let tot: f64 = al[row * kk..(row + 1) * kk].iter().sum();
                            BetaD::new(al[i], tot - al[i]).map_or(f64::NAN, |g| g.sample(r))
                        },
                        rng,
                    );
                    exact_moments(
                        LatentSummary::from_draws(&lat.name, shape, &draws, DRAWS, al.len()),
                        |i| {
                            let row = i / kk;
                            let tot: f64 = al[row * kk..(row + 1) * kk].iter().sum();
                            let m = al[i] / tot;
                            (m, (m * (1.0 - m) / (tot + 1.0)).sqrt())
                        },
                    )
                }
                Q::Responsibilities { probs, lay } => {
                    let kk = *lay.shape.last().expect("categories");
                    let mut pshape = shape.clone();
                    pshape.push(kk);
                    let rows = probs.to_row_major();
                    let summary = categorical_summary(&lat.name, shape, &rows, kk);
                    put("probs", rows, pshape);
                    summary
                }
                Q::Categorical { probs } => {
                    let p = self.s.values(&probs.arr);
                    let kk = *probs.lay.shape.last().expect("categories");
                    let mut pshape = shape.clone();
                    pshape.push(kk);
                    put("probs", p.clone(), pshape);
                    categorical_summary(&lat.name, shape, &p, kk)
                }
            };
            out.push(summary);
        }
        (out, state)
    }
}

const DRAWS: usize = 4000;

/// One restart's outcome: final ELBO, fitted q, trace, status, sweeps.
type Run = (f64, Vec<Option<Q>>, Vec<f64>, Status, usize);

/// `DRAWS` draws of each element, sample-major.
fn draw_each(params: &[f64], f: impl Fn(usize, &mut ChaCha8Rng) -> f64, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let n = params.len();
    let mut out = vec![0.0; DRAWS * n];
    for d in 0..DRAWS {
        for i in 0..n {
            out[d * n + i] = f(i, rng);
        }
    }
    out
}

/// Replace sampled means and sds by exact ones (quantiles stay sampled).
fn exact_moments(mut s: LatentSummary, f: impl Fn(usize) -> (f64, f64)) -> LatentSummary {
    for i in 0..s.mean.len() {
        let (m, sd) = f(i);
        s.mean[i] = m;
        s.sd[i] = sd;
    }
    s
}

fn normal_summary(name: &str, shape: Vec<usize>, m: &[f64], sd: &[f64]) -> LatentSummary {
    const Z95: f64 = 1.644_853_626_951_472_2;
    LatentSummary {
        name: name.to_string(),
        shape,
        mean: m.to_vec(),
        sd: sd.to_vec(),
        q05: m.iter().zip(sd).map(|(m, s)| m - Z95 * s).collect(),
        q95: m.iter().zip(sd).map(|(m, s)| m + Z95 * s).collect(),
    }
}

/// A categorical's summary: the expected category, its sd, and the 5% / 95% categories.
fn categorical_summary(name: &str, shape: Vec<usize>, p: &[f64], k: usize) -> LatentSummary {
    let n = p.len() / k;
    let mut s = LatentSummary {
        name: name.to_string(),
        shape,
        mean: vec![0.0; n],
        sd: vec![0.0; n],
        q05: vec![0.0; n],
        q95: vec![0.0; n],
    };
    for i in 0..n {
        let row = &p[i * k..(i + 1) * k];
        let m: f64 = row.iter().enumerate().map(|(j, q)| j as f64 * q).sum();
        let v: f64 = row
            .iter()
            .enumerate()
            .map(|(j, q)| (j as f64 - m).powi(2) * q)
            .sum();
        let mut cdf = 0.0;
        let (mut lo, mut hi) = (None, None);
        for (j, q) in row.iter().enumerate() {
            cdf += q;
            if lo.is_none() && cdf >= 0.05 {
                lo = Some(j as f64);
            }
            if hi.is_none() && cdf >= 0.95 {
                hi = Some(j as f64);
            }
        }
        s.mean[i] = m;
        s.sd[i] = v.sqrt();
        s.q05[i] = lo.unwrap_or(0.0);
        s.q95[i] = hi.unwrap_or((k - 1) as f64);
    }
    s
}

/// A layout with its plates turned into leading value axes (the same data).
fn unplated(lay: &Layout) -> Layout {
    let mut shape: Vec<usize> = lay.plates.iter().map(|p| p.1).collect();
    shape.extend(lay.shape.iter().copied());
    Layout {
        samples: lay.samples,
        plates: Vec::new(),
        shape,
    }
}

/// Which expectation of an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stat {
    Mean,
    Second,
    Log,
    Log1m,
    /// E[1/x]
    Inverse,
}

/// Sum `v` down to `target`: plates the target lacks, and leading value axes it lacks. With
/// `keep_plates`, the value's plates are kept (for scattering).
fn reduce_to(s: &mut Session, val: &Value, target: &Layout, keep_plates: bool) -> Value {
    let mut cur = val.clone();
    // Plates not in the target, from the innermost.
    let drop: Vec<usize> = cur
        .lay
        .plates
        .iter()
        .enumerate()
        .filter(|(_, p)| !keep_plates && !target.plates.iter().any(|q| q.0 == p.0))
        .map(|(i, _)| i)
        .collect();
    for &i in drop.iter().rev() {
        let ax = usize::from(cur.lay.samples.is_some()) + i;
        let arr = s.sum_axes(&cur.arr, ax, ax + 1);
        let mut lay = cur.lay.clone();
        lay.plates.remove(i);
        cur = Value::new(arr, lay);
    }
    // Leading value axes beyond the target's rank.
    let extra = cur.lay.shape.len().saturating_sub(target.shape.len());
    if extra > 0 {
        let lead = cur.lay.lead();
        let arr = s.sum_axes(&cur.arr, lead, lead + extra);
        let mut lay = cur.lay.clone();
        lay.shape.drain(..extra);
        cur = Value::new(arr, lay);
    }
    // Axes where the target is 1 but the value is longer (broadcast in the forward direction).
    for k in 0..cur.lay.shape.len() {
        if target.shape.get(k) == Some(&1) && cur.lay.shape[k] != 1 {
            let ax = cur.lay.lead() + k;
            let arr = s.sum_axes(&cur.arr, ax, ax + 1);
            let mut lay = cur.lay.clone();
            lay.shape[k] = 1;
            cur = Value::new(arr.reshaped(&lay.dims()), lay);
        }
    }
    let want = if keep_plates {
        Layout {
            plates: cur.lay.plates.clone(),
            ..target.clone()
        }
    } else {
        target.clone()
    };
    expand(s, &cur, &want)
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

    let mut best: Option<Run> = None;
    let mut loop_s = 0.0;
    for restart in 0..opts.restarts.max(1) {
        ctx.init(restart, &mut rng);
        let sweeps_start = Instant::now();
        let mut trace = Vec::new();
        let mut sweeps = 0;
        let mut prev = f64::NEG_INFINITY;
        let max_sweeps = opts.steps.unwrap_or(super::CAVI_SWEEPS);
        let tol = opts.tol.unwrap_or(super::CAVI_TOL);
        let mut status = Status::at_step_limit(tol);
        while sweeps < max_sweeps {
            for &l in &order {
                ctx.update(l);
            }
            let elbo = ctx.elbo();
            sweeps += 1;
            trace.push(elbo);
            if restart == 0 || opts.restarts > 1 {
                progress(Progress::Step {
                    step: sweeps,
                    total: max_sweeps,
                    elbo,
                    unit: "sweep",
                });
            }
            if !elbo.is_finite() {
                status = Status::Diverged;
                break;
            }
            if tol > 0.0 && prev.is_finite() && (elbo - prev).abs() <= tol * elbo.abs() {
                status = Status::Converged;
                break;
            }
            prev = elbo;
            if opts.checkpoint.as_ref().is_some_and(|p| p.interrupted()) {
                status = Status::Interrupted;
                break;
            }
        }
        loop_s += sweeps_start.elapsed().as_secs_f64();
        let last = *trace.last().unwrap_or(&f64::NAN);
        if best.as_ref().is_none_or(|b| last > b.0 || !b.0.is_finite()) {
            best = Some((last, ctx.q.clone(), trace, status, sweeps));
        }
        if status == Status::Interrupted {
            break;
        }
    }
    let (elbo, q, trace, status, iterations) = best.expect("at least one restart");
    ctx.q = q;
    let (latents, state) = ctx.summaries(&mut rng);
    Ok(FitOutput {
        method: Method::Cavi,
        reasons: plan.verdicts.iter().map(|v| v.reason.clone()).collect(),
        status,
        iterations,
        elbo_trace: trace,
        elbo,
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
    })
}
