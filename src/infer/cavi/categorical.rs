//! The categorical family of a mixture's assignments (responsibilities φ, the last axis its
//! components): log φ = E[ln p] from its prior plus, per component, the expected
//! log-likelihood of every mixture statement it indexes. (A Normal mixture that a fused pass
//! can handle keeps its responsibilities in [`super::mixture`] instead.)
//!
//! Never imports another family's file, `svi` or the posterior tools.

use rand_chacha::ChaCha8Rng;

use super::expect::Stat;
use super::messages::reduce_to;
use super::summary::{categorical_summary, Sink};
use super::variational::{Start, Variational};
use super::{v, Ctx};
use crate::graph::{LatentId, MapFn, ZipFn};
use crate::infer::plan::{ArgForm, SitePlan};
use crate::infer::LatentSummary;
use crate::interpret::{expand, Layout, Value};

#[derive(Clone, Debug)]
pub(super) struct Categorical {
    probs: Value,
}

impl Variational for Categorical {
    fn init(cx: &mut Ctx, at: &mut Start) -> Self {
        let kk = cx.categories(at.l);
        let clay = Layout {
            shape: vec![kk],
            ..at.lay.clone()
        };
        Categorical {
            probs: v(cx.s.full(1.0 / kk as f64, &clay.dims()), clay),
        }
    }

    /// log φ = E[ln p] (prior) + Σ mixture statements' expected log-likelihoods.
    fn update(cx: &mut Ctx, l: LatentId, prior: &SitePlan, lay: &Layout) -> Self {
        let kk = cx.categories(l);
        let mut logits = match &prior.args[0] {
            ArgForm::Const(_) => cx.arg_stat(&prior.args[0], Stat::Log),
            form => cx.arg_stat(form, Stat::Log),
        };
        let clay = Layout {
            shape: vec![kk],
            ..lay.clone()
        };
        logits = expand(&mut cx.s, &logits, &clay);
        for sp in cx.plan.sites.clone() {
            if sp.index != Some(l) {
                continue;
            }
            let ell = cx.expected_loglik(&sp);
            // Sum the member's own axes (after the component axis) and extra plates.
            let r = cx.value_rank(&sp);
            let ell = if r > 0 {
                let n = ell.lay.dims().len();
                let arr = cx.s.sum_axes(&ell.arr, n - r, n);
                let mut lay2 = ell.lay.clone();
                lay2.shape.truncate(lay2.shape.len() - r);
                v(arr, lay2)
            } else {
                ell
            };
            let m = reduce_to(&mut cx.s, &ell, &clay, false);
            logits = cx.add(&logits, &m);
        }
        let probs = v(cx.s.softmax(&logits.arr, false), logits.lay.clone());
        Categorical { probs }
    }

    fn expect(&self, _cx: &mut Ctx, _l: LatentId, stat: Stat) -> Value {
        match stat {
            Stat::Mean => self.probs.clone(),
            _ => unreachable!("{stat:?} expectations are not needed of categorical latents"),
        }
    }

    /// −Σ φ ln φ (0 ln 0 = 0)
    fn entropy(&self, cx: &mut Ctx, _l: LatentId) -> f64 {
        let probs = &self.probs;
        let floor = cx.s.clamp(&probs.arr, 1e-300, 1.0);
        let lp = cx.s.map(MapFn::Log, &floor);
        let t = cx.s.zip(ZipFn::Mul, &probs.arr, &lp);
        let t = cx.s.sum(&t);
        -cx.s.value(&t)
    }

    fn summary(&self, cx: &mut Ctx, out: &mut Sink, _rng: &mut ChaCha8Rng) -> LatentSummary {
        let p = cx.s.values(&self.probs.arr);
        let kk = *self.probs.lay.shape.last().expect("categories");
        let mut pshape = out.shape.clone();
        pshape.push(kk);
        out.put("probs", p.clone(), pshape);
        categorical_summary(&out.name, out.shape.clone(), &p, kk)
    }
}
