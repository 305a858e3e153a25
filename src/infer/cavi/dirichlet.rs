//! The Dirichlet family (α) on a Categorical's or Multinomial's probability vector, the last
//! axis its categories. Its update adds the (expected) counts of every statement it is the
//! probability vector of, or a fused mixture's Σ_i φ_ik.
//!
//! Never imports another family's file, `svi` or the posterior tools.

use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta as BetaD, Distribution};

use super::expect::Stat;
use super::messages::Conjugate;
use super::summary::{draw_each, draws_for, exact_moments, Sink};
use super::variational::{Start, Variational};
use super::Ctx;
use crate::dist::Family;
use crate::graph::{LatentId, MapFn};
use crate::infer::plan::{ArgForm, SitePlan, ValueForm};
use crate::infer::LatentSummary;
use crate::interpret::{expand, Layout, Value};

#[derive(Clone, Debug)]
pub(super) struct Dirichlet {
    alpha: Value,
}

impl Variational for Dirichlet {
    fn init(cx: &mut Ctx, at: &mut Start) -> Self {
        let a = cx.arg_stat(&at.prior.args[0], Stat::Mean);
        let base = expand(&mut cx.s, &a, &at.lay);
        // Break the symmetry between components a little.
        let n = base.arr.len();
        let jitter: Vec<f64> = (0..n)
            .map(|_| 1.0 + 0.1 * rand::Rng::gen::<f64>(&mut *at.rng))
            .collect();
        let j = cx.host(&jitter, &at.lay);
        Dirichlet {
            alpha: cx.mul(&base, &j),
        }
    }

    fn update(cx: &mut Ctx, l: LatentId, prior: &SitePlan, lay: &Layout) -> Self {
        let acc = cx.accumulate::<Self>(l, prior, lay);
        let [alpha] = &acc[..] else {
            unreachable!("one natural parameter")
        };
        Dirichlet {
            alpha: expand(&mut cx.s, alpha, lay),
        }
    }

    fn expect(&self, cx: &mut Ctx, _l: LatentId, stat: Stat) -> Value {
        let alpha = &self.alpha;
        match stat {
            Stat::Mean => {
                let tot = cx.sum_last(alpha);
                cx.div(alpha, &tot)
            }
            Stat::Log => {
                let tot = cx.sum_last(alpha);
                let d = cx.f(MapFn::Digamma, alpha);
                let dt = cx.f(MapFn::Digamma, &tot);
                cx.sub(&d, &dt)
            }
            _ => unreachable!("{stat:?} expectations are not needed of Dirichlet latents"),
        }
    }

    /// ln B(α) + (α0 − K) ψ(α0) − Σ (α_k − 1) ψ(α_k)
    fn entropy(&self, cx: &mut Ctx, _l: LatentId) -> f64 {
        let alpha = &self.alpha;
        let k = *alpha.lay.shape.last().expect("categories") as f64;
        let a0 = cx.sum_last(alpha);
        let ga = cx.f(MapFn::LGamma, alpha);
        let ga = cx.sum_last(&ga);
        let ga0 = cx.f(MapFn::LGamma, &a0);
        let lb = cx.sub(&ga, &ga0);
        let d0 = cx.f(MapFn::Digamma, &a0);
        let a0k = cx.shift(&a0, -k);
        let t2 = cx.mul(&a0k, &d0);
        let da = cx.f(MapFn::Digamma, alpha);
        let am1 = cx.shift(alpha, -1.0);
        let t3 = cx.mul(&am1, &da);
        let t3 = cx.sum_last(&t3);
        let r = cx.add(&lb, &t2);
        let r = cx.sub(&r, &t3);
        cx.total(&r)
    }

    fn summary(&self, cx: &mut Ctx, out: &mut Sink, rng: &mut ChaCha8Rng) -> LatentSummary {
        let al = cx.s.values(&self.alpha.arr);
        out.put("alpha", al.clone(), out.shape.clone());
        let kk = *out.shape.last().expect("categories");
        // Marginals are Beta(α_k, α0 − α_k), each built once (a row's total read once).
        let totals: Vec<f64> = al.chunks(kk).map(|row| row.iter().sum()).collect();
        let tot = |i: usize| totals[i / kk];
        let marginals: Vec<Option<BetaD<f64>>> = al
            .iter()
            .enumerate()
            .map(|(i, a)| BetaD::new(*a, tot(i) - a).ok())
            .collect();
        let draws = draw_each(
            &al,
            |i, r| marginals[i].as_ref().map_or(f64::NAN, |g| g.sample(r)),
            rng,
        );
        exact_moments(
            LatentSummary::from_draws(
                &out.name,
                out.shape.clone(),
                &draws,
                draws_for(al.len()),
                al.len(),
            ),
            |i| {
                let m = al[i] / tot(i);
                (m, (m * (1.0 - m) / (tot(i) + 1.0)).sqrt())
            },
        )
    }
}

impl Conjugate for Dirichlet {
    /// The counts carry the categories axis.
    const EVENT_RANK: usize = 1;

    fn prior(cx: &mut Ctx, prior: &SitePlan, lay: &Layout) -> Vec<Value> {
        let a0 = cx.arg_stat(&prior.args[0], Stat::Mean);
        vec![expand(&mut cx.s, &a0, lay)]
    }

    /// α_k += Σ_i φ_ik
    fn fused(cx: &mut Ctx, k: usize, lay: &Layout) -> Option<Vec<Value>> {
        let f = cx.fast_prior_at(k)?;
        let counts: Vec<f64> = (0..f.k).map(|j| f.sums(j).0).collect();
        Some(vec![cx.host(&counts, lay)])
    }

    /// Observed categories counted straight into the latent's table: per component row k
    /// and category c, Σ over members with value c of their responsibility φ_k (or 1 without
    /// a mixture index). Members × components work, where the one-hot message in the
    /// statement's frame is members × components × categories (tokens × topics × vocabulary
    /// for LDA).
    fn direct(cx: &mut Ctx, sp: &SitePlan, slot: usize, lay: &Layout) -> Option<Vec<Value>> {
        let ValueForm::Data(id) = &sp.value else {
            return None;
        };
        if cx.model.sites[sp.site].dist.family != Family::Categorical {
            return None;
        }
        let x = cx.constant(*id);
        if x.lay.samples.is_some() || !x.lay.shape.is_empty() {
            return None;
        }
        let kk = *lay.shape.last()?;
        let rows = lay.dims().iter().product::<usize>() / kk;
        let values = cx.s.values(&x.arr);
        let weights = match (&sp.args[slot], sp.index) {
            (ArgForm::Mix { index, .. }, Some(c)) if *index == c => {
                let phi = cx.latent_stat(c, Stat::Mean);
                let fits =
                    phi.lay.samples.is_none() && phi.lay.plates == x.lay.plates && phi.lay.shape == [rows];
                if !fits {
                    return None;
                }
                cx.s.values(&phi.arr)
            }
            (ArgForm::Latent(_), None) if rows == 1 && lay.plates.is_empty() => vec![1.0; values.len()],
            _ => return None,
        };
        let mut counts = vec![0.0; rows * kk];
        for (t, c) in values.iter().enumerate() {
            let c = (c.round().max(0.0) as usize).min(kk - 1);
            for (r, w) in weights[t * rows..(t + 1) * rows].iter().enumerate() {
                counts[r * kk + c] += w;
            }
        }
        Some(vec![cx.host(&counts, lay)])
    }

    /// The statement's counts: a Multinomial's value, or a categorical value one-hot.
    fn message(cx: &mut Ctx, sp: &SitePlan, _slot: usize, lay: &Layout) -> Vec<Value> {
        let kk = *lay.shape.last().expect("a Dirichlet has categories");
        let counts = if cx.model.sites[sp.site].dist.family == Family::Multinomial {
            cx.value_stat(sp, Stat::Mean)
        } else {
            cx.value_one_hot(sp, kk)
        };
        vec![counts]
    }
}
