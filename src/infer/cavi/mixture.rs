//! The fused Normal mixture: a categorical index whose one mixture statement is
//! `x[i] ~ Normal(μ[c[i]], τ[c[i]])` on scalar data keeps its responsibilities on the host and
//! updates them in one pass of [`crate::backend::kernels::responsibilities`], which also
//! returns the sums Σ_i φ_ik T(x_i) that every message of the mixture follows from.
//!
//! This file finds such mixtures, holds their sums and the expectations they are weighed with,
//! gives the mixture's ELBO terms, and is the [`Variational`] family of the fused
//! responsibilities. The Normal, Gamma and Dirichlet files read the sums for their own fused
//! messages. Never imports a family's file, `svi` or the posterior tools.

use rand_chacha::ChaCha8Rng;

use super::expect::Stat;
use super::summary::{categorical_summary, Sink};
use super::variational::{Start, Variational};
use super::{v, Ctx, LN_2PI};
use crate::backend::kernels::Blocked;
use crate::dist::{Family, Parameterization};
use crate::graph::LatentId;
use crate::infer::plan::{ArgForm, Plan, QFamily, SitePlan, ValueForm};
use crate::infer::LatentSummary;
use crate::interpret::{Layout, Value};

/// A categorical index whose one mixture statement is `x[i] ~ Normal(μ[c[i]], τ[c[i]])` on
/// scalar data (means and precisions each a mixture latent, a constant, or one latent): its
/// log-likelihood is η_k · T(x_i) with T(x) = (x, x², 1), so its responsibilities, and every
/// message its statements send, follow from the sums Σ_i φ_ik T(x_i) of one fused pass.
#[derive(Clone, Debug)]
pub(super) struct FastMixture {
    /// The mixture statement's and the index's prior statement's plan indices.
    pub site: usize,
    pub prior: usize,
    pub k: usize,
    /// T(x_i) for every data point by column, `[3, N]` (shared: the struct is cloned freely).
    pub t: std::sync::Arc<Vec<f64>>,
    /// After the last update: Σ_i φ_ik T(x_i) as `[K, 3]`, and the entropy of q(c).
    pub stats: Vec<f64>,
    pub entropy: f64,
}

impl FastMixture {
    /// (Σφ, Σφx, Σφx²) for component j.
    pub(super) fn sums(&self, j: usize) -> (f64, f64, f64) {
        (self.stats[j * 3 + 2], self.stats[j * 3], self.stats[j * 3 + 1])
    }
}

/// The responsibilities of a fused mixture's index, row-blocked on the host and rewritten in
/// place by every sweep.
#[derive(Clone, Debug)]
pub(super) struct Responsibilities {
    probs: Blocked,
    lay: Layout,
}

impl Variational for Responsibilities {
    fn init(cx: &mut Ctx, at: &mut Start) -> Self {
        // Allocated once here and rewritten in place by every sweep.
        let kk = cx.categories(at.l);
        let clay = Layout {
            shape: vec![kk],
            ..at.lay.clone()
        };
        let n = clay.lead_len();
        match cx.take_responsibilities(at.l) {
            Some(Responsibilities { mut probs, .. }) => {
                probs.data.fill(1.0 / kk as f64);
                Responsibilities { probs, lay: clay }
            }
            _ => Responsibilities {
                probs: Blocked::uniform(n, kk),
                lay: clay,
            },
        }
    }

    fn update(cx: &mut Ctx, c: LatentId, _prior: &SitePlan, _lay: &Layout) -> Self {
        let mut f = cx.fast[c.index()].take().expect("a fused mixture");
        let eta = cx.fast_eta(&f, true);
        let Some(Responsibilities { mut probs, lay }) = cx.take_responsibilities(c) else {
            unreachable!("fused mixtures start from allocated responsibilities")
        };
        let sums = crate::backend::kernels::responsibilities(&f.t, 3, &eta, &mut probs);
        f.stats = sums.stats;
        f.entropy = sums.entropy;
        cx.fast[c.index()] = Some(f);
        Responsibilities { probs, lay }
    }

    fn expect(&self, cx: &mut Ctx, _l: LatentId, stat: Stat) -> Value {
        match stat {
            Stat::Mean => v(
                cx.s.array(&self.probs.to_row_major(), &self.lay.dims()),
                self.lay.clone(),
            ),
            _ => unreachable!("responsibilities have only a mean"),
        }
    }

    fn entropy(&self, cx: &mut Ctx, l: LatentId) -> f64 {
        cx.fast[l.index()].as_ref().expect("a fused mixture").entropy
    }

    fn summary(&self, _cx: &mut Ctx, out: &mut Sink, _rng: &mut ChaCha8Rng) -> LatentSummary {
        let kk = *self.lay.shape.last().expect("categories");
        let mut pshape = out.shape.clone();
        pshape.push(kk);
        let rows = self.probs.to_row_major();
        let summary = categorical_summary(&out.name, out.shape.clone(), &rows, kk);
        out.put("probs", rows, pshape);
        summary
    }
}

impl Ctx<'_> {
    /// The fused mixture whose mixture statement is plan site `k`.
    pub(super) fn fast_at(&self, k: usize) -> Option<FastMixture> {
        self.fast.iter().flatten().find(|f| f.site == k).cloned()
    }

    /// The fused mixture whose index's prior statement is plan site `k`.
    pub(super) fn fast_prior_at(&self, k: usize) -> Option<FastMixture> {
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
    pub(super) fn fast_precision(&mut self, f: &FastMixture) -> (Vec<f64>, Vec<f64>) {
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
    pub(super) fn fast_loc(&mut self, f: &FastMixture) -> (Vec<f64>, Vec<f64>) {
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

    /// Find the categorical latents whose mixture a fused update can handle.
    pub(super) fn find_fast_mixtures(&mut self) {
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

    /// Plan statement `k`'s ELBO term when it is a fused mixture's statement (Σ_k η_k ·
    /// Σ_i φ_ik T(x_i), with the current expectations) or its index's prior (Σ_k E[ln p_k]
    /// Σ_i φ_ik).
    pub(super) fn fused_loglik(&mut self, k: usize) -> Option<f64> {
        if let Some(f) = self.fast_at(k) {
            let eta = self.fast_eta(&f, false);
            return Some(
                (0..f.k)
                    .map(|j| (0..3).map(|q| eta[q * f.k + j] * f.stats[j * 3 + q]).sum::<f64>())
                    .sum::<f64>(),
            );
        }
        if let Some(f) = self.fast_prior_at(k) {
            let prior = self.fast_prior_logp(&f);
            return Some((0..f.k).map(|j| prior[j] * f.sums(j).0).sum::<f64>());
        }
        None
    }
}
