//! The inverse-Gamma family (shape α, scale β) on a Normal statement's variance. Its update is
//! α = α0 + Σ ½, β = β0 + Σ ½ E[(x − μ)²] over the Normal statements it is the variance of.
//!
//! Never imports another family's file, `svi` or the posterior tools.

use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma as GammaD};

use super::expect::Stat;
use super::messages::Conjugate;
use super::summary::{draw_each, draws_for, exact_moments, Sink};
use super::variational::{Start, Variational};
use super::{v, Ctx};
use crate::graph::{LatentId, MapFn};
use crate::infer::plan::SitePlan;
use crate::infer::LatentSummary;
use crate::interpret::{expand, Layout, Value};

#[derive(Clone, Debug)]
pub(super) struct InverseGamma {
    shape: Value,
    scale: Value,
}

impl Variational for InverseGamma {
    fn init(cx: &mut Ctx, at: &mut Start) -> Self {
        let a = cx.arg_stat(&at.prior.args[0], Stat::Mean);
        let b = cx.arg_stat(&at.prior.args[1], Stat::Mean);
        InverseGamma {
            shape: expand(&mut cx.s, &a, &at.lay),
            scale: expand(&mut cx.s, &b, &at.lay),
        }
    }

    fn update(cx: &mut Ctx, l: LatentId, prior: &SitePlan, lay: &Layout) -> Self {
        let (shape, scale) = cx.accumulate_pair::<Self>(l, prior, lay);
        InverseGamma { shape, scale }
    }

    fn expect(&self, cx: &mut Ctx, _l: LatentId, stat: Stat) -> Value {
        let (shape, scale) = (&self.shape, &self.scale);
        match stat {
            Stat::Mean => {
                let am1 = cx.shift(shape, -1.0);
                cx.div(scale, &am1)
            }
            Stat::Log => {
                // ln β − ψ(α)
                let d = cx.f(MapFn::Digamma, shape);
                let lb = cx.f(MapFn::Log, scale);
                cx.sub(&lb, &d)
            }
            Stat::Inverse => cx.div(shape, scale),
            _ => unreachable!("{stat:?} expectations are not needed of InverseGamma latents"),
        }
    }

    /// α + ln β + lgamma(α) − (1 + α) ψ(α)
    fn entropy(&self, cx: &mut Ctx, _l: LatentId) -> f64 {
        let (shape, scale) = (&self.shape, &self.scale);
        let lb = cx.f(MapFn::Log, scale);
        let ga = cx.f(MapFn::LGamma, shape);
        let da = cx.f(MapFn::Digamma, shape);
        let opa = cx.shift(shape, 1.0);
        let t4 = cx.mul(&opa, &da);
        let r = cx.add(shape, &lb);
        let r = cx.add(&r, &ga);
        let r = cx.sub(&r, &t4);
        cx.total(&r)
    }

    fn summary(&self, cx: &mut Ctx, out: &mut Sink, rng: &mut ChaCha8Rng) -> LatentSummary {
        let (a, b) = (cx.s.values(&self.shape.arr), cx.s.values(&self.scale.arr));
        out.put("shape", a.clone(), out.shape.clone());
        out.put("scale", b.clone(), out.shape.clone());
        let draws = draw_each(
            &a,
            |i, r| GammaD::new(a[i], 1.0 / b[i]).map_or(f64::NAN, |g| 1.0 / g.sample(r)),
            rng,
        );
        let summary =
            LatentSummary::from_draws(&out.name, out.shape.clone(), &draws, draws_for(a.len()), a.len());
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
}

impl Conjugate for InverseGamma {
    fn prior(cx: &mut Ctx, prior: &SitePlan, lay: &Layout) -> Vec<Value> {
        let a0 = cx.arg_stat(&prior.args[0], Stat::Mean);
        let b0 = cx.arg_stat(&prior.args[1], Stat::Mean);
        vec![expand(&mut cx.s, &a0, lay), expand(&mut cx.s, &b0, lay)]
    }

    /// (½, ½ E[(x − μ)²]) from a Normal statement it is the variance of.
    fn message(cx: &mut Ctx, sp: &SitePlan, _slot: usize, _lay: &Layout) -> Vec<Value> {
        let sq = cx.expected_square_error(sp);
        let dr = cx.scale(&sq, 0.5);
        let ds = v(cx.s.full(0.5, &dr.lay.dims()), dr.lay.clone());
        vec![ds, dr]
    }
}
