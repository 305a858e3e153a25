//! The Gamma family (shape a, rate b): on a Normal precision, a Poisson or Exponential rate,
//! or a Gamma statement's rate. Its update adds (Δshape, Δrate) from each of those
//! statements, or from a fused mixture's sums.
//!
//! Never imports another family's file, `svi` or the posterior tools.

use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma as GammaD};

use super::expect::Stat;
use super::messages::Conjugate;
use super::summary::{draw_each, draws_for, exact_moments, Sink};
use super::variational::{Start, Variational};
use super::{v, Ctx};
use crate::dist::Family;
use crate::graph::{LatentId, MapFn};
use crate::infer::plan::{ArgForm, SitePlan};
use crate::infer::LatentSummary;
use crate::interpret::{expand, Layout, Value};

#[derive(Clone, Debug)]
pub(super) struct Gamma {
    shape: Value,
    rate: Value,
}

impl Variational for Gamma {
    fn init(cx: &mut Ctx, at: &mut Start) -> Self {
        let prior = &at.prior;
        let a = cx.arg_stat(&prior.args[0], Stat::Mean);
        let b = match &prior.args[1] {
            ArgForm::Const(_) => cx.arg_stat(&prior.args[1], Stat::Mean),
            _ => cx.sc(1.0),
        };
        Gamma {
            shape: expand(&mut cx.s, &a, &at.lay),
            rate: expand(&mut cx.s, &b, &at.lay),
        }
    }

    fn update(cx: &mut Ctx, l: LatentId, prior: &SitePlan, lay: &Layout) -> Self {
        let (shape, rate) = cx.accumulate_pair::<Self>(l, prior, lay);
        Gamma { shape, rate }
    }

    fn expect(&self, cx: &mut Ctx, _l: LatentId, stat: Stat) -> Value {
        let (shape, rate) = (&self.shape, &self.rate);
        match stat {
            Stat::Mean => cx.div(shape, rate),
            Stat::Second => {
                // a(a+1)/b²
                let a1 = cx.shift(shape, 1.0);
                let num = cx.mul(shape, &a1);
                let b2 = cx.f(MapFn::Square, rate);
                cx.div(&num, &b2)
            }
            Stat::Log => {
                let d = cx.f(MapFn::Digamma, shape);
                let lb = cx.f(MapFn::Log, rate);
                cx.sub(&d, &lb)
            }
            _ => unreachable!("{stat:?} expectations are not needed of Gamma latents"),
        }
    }

    /// a − ln b + lgamma(a) + (1 − a) ψ(a)
    fn entropy(&self, cx: &mut Ctx, _l: LatentId) -> f64 {
        let (shape, rate) = (&self.shape, &self.rate);
        let lb = cx.f(MapFn::Log, rate);
        let ga = cx.f(MapFn::LGamma, shape);
        let da = cx.f(MapFn::Digamma, shape);
        let oma = cx.scale(shape, -1.0);
        let oma = cx.shift(&oma, 1.0);
        let t4 = cx.mul(&oma, &da);
        let r = cx.sub(shape, &lb);
        let r = cx.add(&r, &ga);
        let r = cx.add(&r, &t4);
        cx.total(&r)
    }

    fn summary(&self, cx: &mut Ctx, out: &mut Sink, rng: &mut ChaCha8Rng) -> LatentSummary {
        let (a, b) = (cx.s.values(&self.shape.arr), cx.s.values(&self.rate.arr));
        out.put("shape", a.clone(), out.shape.clone());
        out.put("rate", b.clone(), out.shape.clone());
        let draws = draw_each(
            &a,
            |i, r| GammaD::new(a[i], 1.0 / b[i]).map_or(f64::NAN, |g| g.sample(r)),
            rng,
        );
        exact_moments(
            LatentSummary::from_draws(&out.name, out.shape.clone(), &draws, draws_for(a.len()), a.len()),
            |i| (a[i] / b[i], (a[i] / (b[i] * b[i])).sqrt()),
        )
    }
}

impl Conjugate for Gamma {
    fn prior(cx: &mut Ctx, prior: &SitePlan, lay: &Layout) -> Vec<Value> {
        let a0 = cx.arg_stat(&prior.args[0], Stat::Mean);
        let b0 = cx.arg_stat(&prior.args[1], Stat::Mean);
        vec![expand(&mut cx.s, &a0, lay), expand(&mut cx.s, &b0, lay)]
    }

    /// shape += ½Σφ, rate += ½(Σφx² − 2E[μ]Σφx + E[μ²]Σφ), per component or summed when the
    /// precision is shared.
    fn fused(cx: &mut Ctx, k: usize, lay: &Layout) -> Option<Vec<Value>> {
        let f = cx.fast_at(k)?;
        let (em, em2) = cx.fast_loc(&f);
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
        Some(vec![cx.host(&ds, lay), cx.host(&dr, lay)])
    }

    /// (Δshape, Δrate) by the statement's family.
    fn message(cx: &mut Ctx, sp: &SitePlan, slot: usize, _lay: &Layout) -> Vec<Value> {
        let (ds, dr) = match cx.model.sites[sp.site].dist.family {
            Family::Normal => {
                let sq = cx.expected_square_error(sp);
                let half = cx.scale(&sq, 0.5);
                let ones = v(cx.s.full(0.5, &half.lay.dims()), half.lay.clone());
                (ones, half)
            }
            Family::Poisson => {
                let x = cx.value_stat(sp, Stat::Mean);
                let one = v(cx.s.full(1.0, &x.lay.dims()), x.lay.clone());
                (x, one)
            }
            Family::Exponential => {
                let x = cx.value_stat(sp, Stat::Mean);
                let one = v(cx.s.full(1.0, &x.lay.dims()), x.lay.clone());
                (one, x)
            }
            Family::Gamma => {
                // The rate of a Gamma statement: (α, E[λ]).
                debug_assert_eq!(slot, 1);
                let alpha = cx.arg_stat(&sp.args[0], Stat::Mean);
                let el = cx.value_stat(sp, Stat::Mean);
                (alpha, el)
            }
            f => unreachable!("{f} is not conjugate to a Gamma"),
        };
        vec![ds, dr]
    }
}
