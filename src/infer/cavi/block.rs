//! The multivariate Normal family over a latent's vector (regression weights seen through
//! `dot(X[i], w)`), kept on the host as a mean and a D×D covariance. Its update is
//! Λ = Λ0 + Σ E[τ] x xᵀ, h = Λ0 μ0 + Σ E[τ] x y, S = Λ⁻¹, m = S h; it also gives the linear
//! predictor's expectations E[x·w] and E[(x·w)²].
//!
//! Never imports another family's file, `svi` or the posterior tools.

use rand_chacha::ChaCha8Rng;

use super::expect::Stat;
use super::summary::{normal_summary, Sink};
use super::variational::{Start, Variational};
use super::{v, Ctx, LN_2PI};
use crate::graph::{LatentId, MapFn, NodeId, ZipFn};
use crate::infer::plan::{ArgForm, SitePlan};
use crate::infer::LatentSummary;
use crate::interpret::{expand, joint_layout, Layout, Value};
use crate::linalg;

#[derive(Clone, Debug)]
pub(super) struct Block {
    mean: Vec<f64>,
    cov: Vec<f64>,
    d: usize,
}

impl Variational for Block {
    fn init(_cx: &mut Ctx, at: &mut Start) -> Self {
        let d = at.lay.shape[0];
        let mut cov = vec![0.0; d * d];
        for i in 0..d {
            cov[i * d + i] = 1.0;
        }
        Block {
            mean: vec![0.0; d],
            cov,
            d,
        }
    }

    fn update(cx: &mut Ctx, l: LatentId, prior: &SitePlan, lay: &Layout) -> Self {
        let d = lay.shape[0];
        let tau0 = cx.precision(prior);
        let tau0 = expand(&mut cx.s, &tau0, &Layout::of_shape(vec![d]));
        let mu0 = cx.arg_stat(&prior.args[0], Stat::Mean);
        let mu0 = expand(&mut cx.s, &mu0, &Layout::of_shape(vec![d]));
        let t0 = cx.s.values(&tau0.arr);
        let m0 = cx.s.values(&mu0.arr);
        let mut lam = vec![0.0; d * d];
        let mut h = vec![0.0; d];
        for i in 0..d {
            lam[i * d + i] = t0[i];
            h[i] = t0[i] * m0[i];
        }
        for (k, _) in cx.uses(l) {
            let sp = cx.plan.sites[k].clone();
            let ArgForm::Linear { covariates, .. } = sp.args[0].clone() else {
                unreachable!("block latents appear linearly")
            };
            let x = cx.constant(covariates);
            let etau = cx.precision(&sp);
            let y = cx.value_stat(&sp, Stat::Mean);
            let wt = cx.weighted(&sp, &etau, 0);
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
            let wt = expand(&mut cx.s, &wt, &pred_lay);
            let y = expand(&mut cx.s, &y, &pred_lay);
            let xr = x.arr.reshaped(&[lead_n, d]);
            let wcol = wt.arr.reshaped(&[lead_n, 1]);
            let wx = {
                let wb = cx.s.insert_axis(&wt.arr.reshaped(&[lead_n]), 1, d);
                cx.s.zip(ZipFn::Mul, &wb, &xr)
            };
            let xtx = cx.s.matmul_tn(&xr, &wx);
            let wy =
                cx.s.zip(ZipFn::Mul, &wcol.reshaped(&[lead_n]), &y.arr.reshaped(&[lead_n]));
            let xty = cx.s.matmul_tn(&xr, &wy.reshaped(&[lead_n, 1]));
            for (a, b) in lam.iter_mut().zip(cx.s.values(&xtx)) {
                *a += b;
            }
            for (a, b) in h.iter_mut().zip(cx.s.values(&xty)) {
                *a += b;
            }
        }
        let chol = linalg::cholesky(&lam, d).expect("a posterior precision is positive definite");
        let cov = linalg::spd_inverse(&chol, d);
        let mean = linalg::mat_vec(&cov, &h, d);
        Block { mean, cov, d }
    }

    fn expect(&self, cx: &mut Ctx, l: LatentId, stat: Stat) -> Value {
        let d = self.d;
        match stat {
            Stat::Mean => v(cx.s.array(&self.mean, &[d]), cx.latent_layout(l)),
            Stat::Second => {
                let vals: Vec<f64> = (0..d)
                    .map(|i| self.mean[i] * self.mean[i] + self.cov[i * d + i])
                    .collect();
                v(cx.s.array(&vals, &[d]), cx.latent_layout(l))
            }
            _ => unreachable!("{stat:?} expectations are not needed of Normal latents"),
        }
    }

    fn entropy(&self, _cx: &mut Ctx, _l: LatentId) -> f64 {
        let d = self.d;
        let chol = linalg::cholesky(&self.cov, d).expect("a covariance is positive definite");
        0.5 * linalg::log_det(&chol, d) + 0.5 * d as f64 * (LN_2PI + 1.0)
    }

    fn summary(&self, _cx: &mut Ctx, out: &mut Sink, _rng: &mut ChaCha8Rng) -> LatentSummary {
        let d = self.d;
        let sd: Vec<f64> = (0..d).map(|i| self.cov[i * d + i].sqrt()).collect();
        out.put("mean", self.mean.clone(), vec![d]);
        out.put("cov", self.cov.clone(), vec![d, d]);
        normal_summary(&out.name, out.shape.clone(), &self.mean, &sd)
    }
}

impl Block {
    /// E[x·w] or E[(x·w)²] of the linear predictor with covariates `covariates` and this
    /// latent (`latent`) as weights.
    pub(super) fn linear(&self, cx: &mut Ctx, latent: LatentId, covariates: NodeId, stat: Stat) -> Value {
        let (mean, cov, d) = (&self.mean, &self.cov, self.d);
        let m = v(cx.s.array(mean, &[d]), cx.latent_layout(latent));
        let x = cx.constant(covariates);
        let pred = crate::interpret::matmul(&mut cx.s, &x, &m);
        match stat {
            Stat::Mean => pred,
            Stat::Second => {
                // E[(x·w)²] = (x·m)² + xᵀ S x, row by row.
                let rows = x.arr.len() / d;
                let xr = x.arr.reshaped(&[rows, d]);
                let s_arr = cx.s.array(cov, &[d, d]);
                let xs = cx.s.matmul(&xr, &s_arr);
                let prod = cx.s.zip(ZipFn::Mul, &xs, &xr);
                let quad = cx.s.sum_axes(&prod, 1, 2);
                let quad = v(quad.reshaped(&pred.lay.dims()), pred.lay.clone());
                let p2 = cx.f(MapFn::Square, &pred);
                cx.add(&p2, &quad)
            }
            _ => unreachable!("linear predictors are Normal locations"),
        }
    }
}
