//! The Beta family (a, b) on a Bernoulli or Binomial probability. Its update adds the
//! successes and failures, (x, n − x), of every statement it is the probability of.
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
use crate::infer::plan::SitePlan;
use crate::infer::LatentSummary;
use crate::interpret::{expand, Layout, Value};

#[derive(Clone, Debug)]
pub(super) struct Beta {
    a: Value,
    b: Value,
}

impl Variational for Beta {
    fn init(cx: &mut Ctx, at: &mut Start) -> Self {
        let a = cx.arg_stat(&at.prior.args[0], Stat::Mean);
        let b = cx.arg_stat(&at.prior.args[1], Stat::Mean);
        Beta {
            a: expand(&mut cx.s, &a, &at.lay),
            b: expand(&mut cx.s, &b, &at.lay),
        }
    }

    fn update(cx: &mut Ctx, l: LatentId, prior: &SitePlan, lay: &Layout) -> Self {
        let (a, b) = cx.accumulate_pair::<Self>(l, prior, lay);
        Beta { a, b }
    }

    fn expect(&self, cx: &mut Ctx, _l: LatentId, stat: Stat) -> Value {
        let (a, b) = (&self.a, &self.b);
        match stat {
            Stat::Mean => {
                let ab = cx.add(a, b);
                cx.div(a, &ab)
            }
            Stat::Log => {
                let ab = cx.add(a, b);
                let d = cx.f(MapFn::Digamma, a);
                let dab = cx.f(MapFn::Digamma, &ab);
                cx.sub(&d, &dab)
            }
            Stat::Log1m => {
                let ab = cx.add(a, b);
                let d = cx.f(MapFn::Digamma, b);
                let dab = cx.f(MapFn::Digamma, &ab);
                cx.sub(&d, &dab)
            }
            _ => unreachable!("{stat:?} expectations are not needed of Beta latents"),
        }
    }

    /// ln B(a, b) − (a−1)ψ(a) − (b−1)ψ(b) + (a+b−2)ψ(a+b)
    fn entropy(&self, cx: &mut Ctx, _l: LatentId) -> f64 {
        let (a, b) = (&self.a, &self.b);
        let lb = cx.log_beta(a, b);
        let ab = cx.add(a, b);
        let da = cx.f(MapFn::Digamma, a);
        let db = cx.f(MapFn::Digamma, b);
        let dab = cx.f(MapFn::Digamma, &ab);
        let am1 = cx.shift(a, -1.0);
        let bm1 = cx.shift(b, -1.0);
        let abm2 = cx.shift(&ab, -2.0);
        let t1 = cx.mul(&am1, &da);
        let t2 = cx.mul(&bm1, &db);
        let t3 = cx.mul(&abm2, &dab);
        let r = cx.sub(&lb, &t1);
        let r = cx.sub(&r, &t2);
        let r = cx.add(&r, &t3);
        cx.total(&r)
    }

    fn summary(&self, cx: &mut Ctx, out: &mut Sink, rng: &mut ChaCha8Rng) -> LatentSummary {
        let (a, b) = (cx.s.values(&self.a.arr), cx.s.values(&self.b.arr));
        out.put("a", a.clone(), out.shape.clone());
        out.put("b", b.clone(), out.shape.clone());
        let draws = draw_each(
            &a,
            |i, r| BetaD::new(a[i], b[i]).map_or(f64::NAN, |g| g.sample(r)),
            rng,
        );
        exact_moments(
            LatentSummary::from_draws(&out.name, out.shape.clone(), &draws, draws_for(a.len()), a.len()),
            |i| {
                let s = a[i] + b[i];
                (a[i] / s, (a[i] * b[i] / (s * s * (s + 1.0))).sqrt())
            },
        )
    }
}

impl Conjugate for Beta {
    fn prior(cx: &mut Ctx, prior: &SitePlan, lay: &Layout) -> Vec<Value> {
        let a0 = cx.arg_stat(&prior.args[0], Stat::Mean);
        let b0 = cx.arg_stat(&prior.args[1], Stat::Mean);
        vec![expand(&mut cx.s, &a0, lay), expand(&mut cx.s, &b0, lay)]
    }

    /// (x, n − x), with n = 1 for a Bernoulli.
    fn message(cx: &mut Ctx, sp: &SitePlan, _slot: usize, _lay: &Layout) -> Vec<Value> {
        let x = cx.value_stat(sp, Stat::Mean);
        let n = if cx.model.sites[sp.site].dist.family == Family::Binomial {
            cx.arg_stat(&sp.args[0], Stat::Mean)
        } else {
            cx.sc(1.0)
        };
        let fail = cx.sub(&n, &x);
        vec![x, fail]
    }
}
