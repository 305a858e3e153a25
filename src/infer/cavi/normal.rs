//! The Normal family: independent Normals, one per element, on a Normal statement's
//! location. Its update adds η1 = E[τ] E[x] and η2 = E[τ] from every statement it is the
//! location of (or from a fused mixture's sums); its init spreads mixture components over the
//! data's quantiles.
//!
//! Never imports another family's file, `svi` or the posterior tools.

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::expect::Stat;
use super::messages::Conjugate;
use super::summary::{normal_summary, Sink};
use super::variational::{Start, Variational};
use super::{v, Ctx, LN_2PI};
use crate::graph::{LatentId, MapFn};
use crate::infer::plan::{ArgForm, SitePlan, ValueForm};
use crate::infer::LatentSummary;
use crate::interpret::{expand, Layout, Value};

#[derive(Clone, Debug)]
pub(super) struct Normal {
    mean: Value,
    var: Value,
}

impl Variational for Normal {
    fn init(cx: &mut Ctx, at: &mut Start) -> Self {
        let lay = &at.lay;
        let mean = match mixture_data(cx, at.l) {
            Some(x) => {
                let kk = lay.shape.first().copied().unwrap_or(1);
                let picks: Vec<f64> = if at.restart == 0 {
                    // Evenly spaced data quantiles: deterministic and spread out.
                    let mut work = x.clone();
                    (0..kk)
                        .map(|j| {
                            let pos = ((j as f64 + 0.5) / kk as f64 * (work.len() - 1) as f64) as usize;
                            *work.select_nth_unstable_by(pos, f64::total_cmp).1
                        })
                        .collect()
                } else {
                    x.choose_multiple(&mut *at.rng, kk).copied().collect()
                };
                let n = lay.dims().iter().product::<usize>();
                let vals: Vec<f64> = (0..n).map(|i| picks[(i / (n / kk).max(1)).min(kk - 1)]).collect();
                cx.host(&vals, lay)
            }
            None => {
                let mu0 = cx.arg_stat(&at.prior.args[0], Stat::Mean);
                expand(&mut cx.s, &mu0, lay)
            }
        };
        let var = v(cx.s.full(1.0, &lay.dims()), lay.clone());
        Normal { mean, var }
    }

    fn update(cx: &mut Ctx, l: LatentId, prior: &SitePlan, lay: &Layout) -> Self {
        let acc = cx.accumulate::<Self>(l, prior, lay);
        let [eta1, eta2] = &acc[..] else {
            unreachable!("two natural parameters")
        };
        let var = {
            let one = cx.sc(1.0);
            cx.div(&one, eta2)
        };
        let mean = cx.mul(eta1, &var);
        let mean = expand(&mut cx.s, &mean, lay);
        let var = expand(&mut cx.s, &var, lay);
        Normal { mean, var }
    }

    fn expect(&self, cx: &mut Ctx, _l: LatentId, stat: Stat) -> Value {
        match stat {
            Stat::Mean => self.mean.clone(),
            Stat::Second => {
                let m2 = cx.f(MapFn::Square, &self.mean);
                cx.add(&m2, &self.var)
            }
            _ => unreachable!("{stat:?} expectations are not needed of Normal latents"),
        }
    }

    fn entropy(&self, cx: &mut Ctx, _l: LatentId) -> f64 {
        let lv = cx.f(MapFn::Log, &self.var);
        let t = cx.total(&lv);
        0.5 * t + 0.5 * self.var.arr.len() as f64 * (LN_2PI + 1.0)
    }

    fn summary(&self, cx: &mut Ctx, out: &mut Sink, _rng: &mut ChaCha8Rng) -> LatentSummary {
        let m = cx.s.values(&self.mean.arr);
        let sd: Vec<f64> = cx.s.values(&self.var.arr).iter().map(|x| x.sqrt()).collect();
        out.put("mean", m.clone(), out.shape.clone());
        out.put("var", sd.iter().map(|x| x * x).collect(), out.shape.clone());
        normal_summary(&out.name, out.shape.clone(), &m, &sd)
    }
}

impl Conjugate for Normal {
    /// η1 = E[τ0] E[μ0], η2 = E[τ0].
    fn prior(cx: &mut Ctx, prior: &SitePlan, lay: &Layout) -> Vec<Value> {
        let tau0 = cx.precision(prior);
        let mu0 = cx.arg_stat(&prior.args[0], Stat::Mean);
        let eta1 = cx.mul(&tau0, &mu0);
        let eta1 = expand(&mut cx.s, &eta1, lay);
        let eta2 = expand(&mut cx.s, &tau0, lay);
        vec![eta1, eta2]
    }

    /// η1_k += E[τ_k] Σφx, η2_k += E[τ_k] Σφ.
    fn fused(cx: &mut Ctx, k: usize, lay: &Layout) -> Option<Vec<Value>> {
        let f = cx.fast_at(k)?;
        let tau = cx.fast_precision(&f).0;
        let (m1, m2): (Vec<f64>, Vec<f64>) = (0..f.k)
            .map(|j| (tau[j] * f.sums(j).1, tau[j] * f.sums(j).0))
            .unzip();
        Some(vec![cx.host(&m1, lay), cx.host(&m2, lay)])
    }

    /// η1 += E[τ] E[x], η2 += E[τ] from a statement it is the location of.
    fn message(cx: &mut Ctx, sp: &SitePlan, slot: usize, _lay: &Layout) -> Vec<Value> {
        debug_assert_eq!(slot, 0);
        let etau = cx.precision(sp);
        let ex = cx.value_stat(sp, Stat::Mean);
        let w1 = cx.mul(&etau, &ex);
        vec![w1, etau]
    }
}

/// For a Normal latent used as mixture components, the data its mixture observes.
fn mixture_data(cx: &mut Ctx, l: LatentId) -> Option<Vec<f64>> {
    for sp in cx.plan.sites.clone() {
        if matches!(sp.args.first(), Some(ArgForm::Mix { latent, .. }) if *latent == l) {
            if let ValueForm::Data(id) = sp.value {
                let x = cx.constant(id);
                return Some(cx.s.values(&x.arr));
            }
        }
    }
    None
}
