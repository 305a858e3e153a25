//! Summaries: the loop that asks every latent's family for its summary and its q's
//! parameters (the saved state `q.<latent>.<param>`), and the helpers the families share:
//! draws for quantiles, exact moments, the Normal and categorical summaries.
//!
//! Never imports a family's file, `svi` or the posterior tools.

use rand_chacha::ChaCha8Rng;

use super::Ctx;
use crate::graph::LatentId;
use crate::infer::{LatentSummary, NamedTensor};

/// Draws per element for sampled quantiles.
pub(super) const DRAWS: usize = 4000;
/// Values drawn for one latent's quantiles at most (its means and sds are exact): a
/// 50-topic, 5,000-word LDA's topics get 160 draws each rather than 4,000, seconds rather than
/// an hour and 80 MB rather than 8 GB.
const DRAWN_VALUES: usize = 40_000_000;

/// Draws per element for a latent of `n` elements: [`DRAWS`], fewer for the largest.
pub(super) fn draws_for(n: usize) -> usize {
    (DRAWN_VALUES / n.max(1)).clamp(100, DRAWS)
}

/// Where a family puts its q's parameters: `q.<latent>.<param>` tensors, in order.
pub(super) struct Sink<'s> {
    /// The latent's name, and its full shape (plates, then its own axes).
    pub name: String,
    pub shape: Vec<usize>,
    state: &'s mut Vec<NamedTensor>,
}

impl Sink<'_> {
    pub(super) fn put(&mut self, param: &str, values: Vec<f64>, shape: Vec<usize>) {
        self.state.push(NamedTensor {
            name: format!("q.{}.{param}", self.name),
            shape,
            values,
        });
    }
}

impl Ctx<'_> {
    /// Every latent's summary, and the fitted q's parameters to save.
    pub(super) fn summaries(&mut self, rng: &mut ChaCha8Rng) -> (Vec<LatentSummary>, Vec<NamedTensor>) {
        let mut out = Vec::new();
        let mut state = Vec::new();
        let model = self.model;
        for (k, lat) in model.latents.iter().enumerate() {
            let l = LatentId(k as u32);
            let lay = self.latent_layout(l);
            let shape = {
                let mut s: Vec<usize> = lay.plates.iter().map(|p| p.1).collect();
                s.extend(lay.shape.iter().copied());
                s
            };
            let mut sink = Sink {
                name: lat.name.clone(),
                shape,
                state: &mut state,
            };
            out.push(self.summary_of(l, &mut sink, rng));
        }
        (out, state)
    }
}

/// [`draws_for`] draws of each element, sample-major.
pub(super) fn draw_each(
    params: &[f64],
    f: impl Fn(usize, &mut ChaCha8Rng) -> f64,
    rng: &mut ChaCha8Rng,
) -> Vec<f64> {
    let n = params.len();
    let draws = draws_for(n);
    let mut out = vec![0.0; draws * n];
    for d in 0..draws {
        for i in 0..n {
            out[d * n + i] = f(i, rng);
        }
    }
    out
}

/// Replace sampled means and sds by exact ones (quantiles stay sampled).
pub(super) fn exact_moments(mut s: LatentSummary, f: impl Fn(usize) -> (f64, f64)) -> LatentSummary {
    for i in 0..s.mean.len() {
        let (m, sd) = f(i);
        s.mean[i] = m;
        s.sd[i] = sd;
    }
    s
}

pub(super) fn normal_summary(name: &str, shape: Vec<usize>, m: &[f64], sd: &[f64]) -> LatentSummary {
    const Z95: f64 = 1.644_853_626_951_472_2;
    LatentSummary {
        name: name.to_string(),
        shape,
        mean: m.to_vec(),
        sd: sd.to_vec(),
        q05: m.iter().zip(sd).map(|(m, s)| m - Z95 * s).collect(),
        q95: m.iter().zip(sd).map(|(m, s)| m + Z95 * s).collect(),
        categories: None,
    }
}

/// A categorical's summary: its probabilities, and (for summary.json's readers of old) the
/// expected category, its sd, and the 5% / 95% categories.
pub(super) fn categorical_summary(name: &str, shape: Vec<usize>, p: &[f64], k: usize) -> LatentSummary {
    let n = p.len() / k;
    let mut s = LatentSummary {
        name: name.to_string(),
        shape,
        mean: vec![0.0; n],
        sd: vec![0.0; n],
        q05: vec![0.0; n],
        q95: vec![0.0; n],
        categories: Some(crate::infer::CategoryProbs { k, probs: p.to_vec() }),
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
