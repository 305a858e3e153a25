//! The exact ELBO: every statement's expected log-likelihood E_q[log p(x | args)] (per plate
//! member, and per component for a mixture, every constant included) plus every latent's
//! entropy. A statement's expectation is its distribution's knowledge, keyed by the
//! statement's family; the entropies are the variational families' own.
//!
//! Never imports a family's file, `svi` or the posterior tools.

use super::expect::Stat;
use super::{v, Ctx, LN_2PI};
use crate::dist::{Family, Parameterization};
use crate::graph::{LatentId, MapFn};
use crate::infer::plan::{SitePlan, ValueForm};
use crate::interpret::{Layout, Value};

impl Ctx<'_> {
    /// E[ln p_x] of observed categories read straight from `elp` (per member, and per
    /// component row of a table of probability vectors), where `elp` shares no plate with the
    /// data: members × components values, where the one-hot product would build members ×
    /// components × categories (tokens × topics × vocabulary for LDA). None otherwise.
    fn observed_category_terms(&mut self, sp: &SitePlan, elp: &Value) -> Option<Value> {
        let ValueForm::Data(id) = &sp.value else {
            return None;
        };
        let x = self.constant(*id);
        if elp.lay.samples.is_some()
            || x.lay.samples.is_some()
            || !elp.lay.plates.is_empty()
            || !x.lay.shape.is_empty()
        {
            return None;
        }
        let (&k, rows) = elp.lay.shape.split_last()?;
        let per: usize = rows.iter().product();
        let picks: Vec<usize> = self
            .s
            .values(&x.arr)
            .iter()
            .flat_map(|c| {
                let c = (c.round().max(0.0) as usize).min(k - 1);
                (0..per).map(move |r| r * k + c)
            })
            .collect();
        let lay = Layout {
            samples: None,
            plates: x.lay.plates.clone(),
            shape: rows.to_vec(),
        };
        let arr = self.s.gather(&elp.arr, &picks, &lay.dims());
        Some(v(arr, lay))
    }

    /// Expected log-likelihood of a statement per plate member (and per component for a
    /// mixture): E_q[log p(x | args)] with the component axis kept.
    pub(super) fn expected_loglik(&mut self, sp: &SitePlan) -> Value {
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
                if let Some(picked) = self.observed_category_terms(sp, &elp) {
                    return picked;
                }
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
            (f, _) => {
                // A statement of data and constants alone (a StudentT likelihood with fixed
                // arguments): a latent in it would have sent the model to gradients, so its
                // expectation is its density as it stands, a constant of the ELBO.
                let args: Vec<Value> = (0..sp.args.len())
                    .map(|k| self.arg_stat(&a(k), Stat::Mean))
                    .collect();
                let x = self.value_stat(sp, Stat::Mean);
                crate::dist::density::log_prob(&mut self.s, f, pz, &args, &x)
            }
        }
    }

    /// The exact ELBO: Σ statements E_q[log p] + Σ latents H[q].
    pub(super) fn elbo(&mut self) -> f64 {
        let mut total = 0.0;
        for (k, sp) in self.plan.sites.clone().into_iter().enumerate() {
            if let Some(t) = self.fused_loglik(k) {
                total += t;
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
}
