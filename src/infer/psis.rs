//! Pareto-smoothed importance sampling (Vehtari, Simpson, Gelman, Yao & Gabry 2024) and the
//! importance-weighted bound: how far a variational fit can be trusted.
//!
//! With draws z_s ~ q and log weights log w_s = log p(x, z_s) − log q(z_s), the largest weights
//! are fitted by a generalised Pareto distribution; its shape k̂ says whether importance
//! sampling from q — and so q itself — is reliable (Yao et al. 2018, "Yes, but did it work?").

/// The generalised Pareto fit of the sorted exceedances `x` (ascending, positive), by Zhang &
/// Stephens' (2009) profile posterior, with the weakly informative prior on k that PSIS uses.
/// Returns (k, σ).
pub fn gpd_fit(x: &[f64]) -> (f64, f64) {
    const PRIOR_BS: f64 = 3.0;
    const PRIOR_K: f64 = 10.0;
    let n = x.len();
    let nf = n as f64;
    let m = 30 + (nf.sqrt() as usize);
    let quartile = x[((nf / 4.0 + 0.5) as usize).saturating_sub(1).min(n - 1)];
    let last = x[n - 1];
    let b: Vec<f64> = (1..=m)
        .map(|j| (1.0 - (m as f64 / (j as f64 - 0.5)).sqrt()) / (PRIOR_BS * quartile) + 1.0 / last)
        .collect();
    let k: Vec<f64> = b
        .iter()
        .map(|bj| x.iter().map(|xi| (-bj * xi).ln_1p()).sum::<f64>() / nf)
        .collect();
    let len_scale: Vec<f64> = b
        .iter()
        .zip(&k)
        .map(|(bj, kj)| nf * ((-bj / kj).ln() - kj - 1.0))
        .collect();
    // weights_j = 1 / Σ_i exp(L_i − L_j)
    let mut w: Vec<f64> = len_scale
        .iter()
        .map(|lj| 1.0 / len_scale.iter().map(|li| (li - lj).exp()).sum::<f64>())
        .collect();
    for wj in &mut w {
        if !wj.is_finite() || *wj < 10.0 * f64::EPSILON {
            *wj = 0.0;
        }
    }
    let total: f64 = w.iter().sum();
    let b_post: f64 = b.iter().zip(&w).map(|(bj, wj)| bj * wj).sum::<f64>() / total;
    let k_post = x.iter().map(|xi| (-b_post * xi).ln_1p()).sum::<f64>() / nf;
    // σ from the profile estimate of k, before the prior shrinks k (as loo and ArviZ do).
    let sigma = -k_post / b_post;
    let k_post = (nf * k_post + PRIOR_K * 0.5) / (nf + PRIOR_K);
    (k_post, sigma)
}

/// The generalised Pareto quantile function.
fn gpd_quantile(p: f64, k: f64, sigma: f64) -> f64 {
    if k.abs() < 1e-12 {
        -sigma * (-p).ln_1p()
    } else {
        sigma * (-k * (-p).ln_1p()).exp_m1() / k
    }
}

/// The outcome of Pareto smoothing.
#[derive(Clone, Debug)]
pub struct Smoothed {
    /// The Pareto shape of the weights' tail (∞ when the tail is too short to fit).
    pub khat: f64,
    /// Normalised log weights after smoothing (log-sum-exp = 0).
    pub log_weights: Vec<f64>,
}

/// Pareto-smooth log importance weights.
pub fn smooth(log_w: &[f64]) -> Smoothed {
    let n = log_w.len();
    let mut x: Vec<f64> = log_w.to_vec();
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    for v in &mut x {
        *v -= max;
    }
    // The tail: the largest min(0.2 S, 3 √S) weights.
    let tail_len = ((0.2 * n as f64).min(3.0 * (n as f64).sqrt())).ceil() as usize;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| x[*a].total_cmp(&x[*b]));
    let mut khat = f64::INFINITY;
    let min = x.iter().copied().fold(f64::INFINITY, f64::min);
    if min > -1e-9 {
        // Every weight equal to rounding error: q is the target itself (an exact posterior).
        // The tail fit would divide rounding noise by rounding noise.
        khat = 0.0;
    } else if tail_len > 4 && n > tail_len + 1 {
        let cutoff = x[order[n - tail_len - 1]].exp().max(f64::MIN_POSITIVE);
        let tail: Vec<usize> = order[n - tail_len..]
            .iter()
            .copied()
            .filter(|&i| x[i].exp() > cutoff)
            .collect();
        if tail.len() > 4 {
            let exceed: Vec<f64> = tail.iter().map(|&i| x[i].exp() - cutoff).collect();
            let (k, sigma) = gpd_fit(&exceed);
            khat = k;
            if k.is_finite() {
                let m = tail.len() as f64;
                for (j, &i) in tail.iter().enumerate() {
                    let q = gpd_quantile((j as f64 + 0.5) / m, k, sigma);
                    x[i] = (q + cutoff).ln().min(0.0);
                }
            }
        }
    }
    let lse = log_sum_exp(&x);
    for v in &mut x {
        *v -= lse;
    }
    Smoothed { khat, log_weights: x }
}

/// PSIS leave-one-out (Vehtari, Gelman & Gabry 2017) from draws with log importance ratios
/// `log_r` to the posterior (p(x, z) / q(z) for draws of a variational q; all zero for exact
/// posterior draws): for each observation's log-likelihoods `log_lik[i]` (one per draw), its
/// elpd (log of the smoothed importance-weighted predictive density with that observation left
/// out), its k̂, and its lppd (the full-data predictive density). With `log_r` all zero this is
/// `az.loo` on the same draws.
pub fn loo(log_lik: &[Vec<f64>], log_r: &[f64]) -> Vec<PointLoo> {
    let posterior = smooth(log_r);
    log_lik
        .iter()
        .map(|ll| {
            let lw: Vec<f64> = log_r.iter().zip(ll).map(|(r, l)| r - l).collect();
            let left_out = smooth(&lw);
            let at = |w: &[f64]| log_sum_exp(&w.iter().zip(ll).map(|(w, l)| w + l).collect::<Vec<_>>());
            PointLoo {
                elpd: at(&left_out.log_weights),
                khat: left_out.khat,
                lppd: at(&posterior.log_weights),
            }
        })
        .collect()
}

/// One observation's PSIS-LOO: see [`loo`].
#[derive(Clone, Copy, Debug)]
pub struct PointLoo {
    pub elpd: f64,
    pub khat: f64,
    pub lppd: f64,
}

pub fn log_sum_exp(x: &[f64]) -> f64 {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// The importance-weighted bound log (1/k) Σ w_i from k log weights.
pub fn iw_bound(log_w: &[f64]) -> f64 {
    log_sum_exp(log_w) - (log_w.len() as f64).ln()
}

/// The importance-weighted bound's standard error in nats, by the delta method: the relative
/// standard error of the mean weight, sd(w) / (√S · mean(w)). With k̂ above 0.5 the weights'
/// variance is itself noisy, so this is a floor on the uncertainty, not a confidence interval.
pub fn iw_bound_se(log_w: &[f64]) -> f64 {
    let n = log_w.len();
    if n < 2 {
        return f64::INFINITY;
    }
    let top = log_w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !top.is_finite() {
        return f64::INFINITY;
    }
    let w: Vec<f64> = log_w.iter().map(|l| (l - top).exp()).collect();
    let mean = w.iter().sum::<f64>() / n as f64;
    let var = w.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (var / n as f64).sqrt() / mean
}

/// The largest k̂ that can be trusted with S draws: min(0.7, 1 − 1/log10 S).
pub fn threshold(draws: usize) -> f64 {
    0.7f64.min(1.0 - 1.0 / (draws as f64).log10())
}

/// How to read k̂ for S draws (Vehtari et al.): below 0.5 good; up to 0.7 usable; above 0.7
/// the importance ratios' variance is too large to trust; also above 1 − 1/log10 S the sample
/// is too small for the estimate.
pub fn reading(khat: f64, draws: usize) -> &'static str {
    if !khat.is_finite() {
        "unreliable"
    } else if khat < 0.5 {
        "good"
    } else if khat <= threshold(draws) {
        "usable"
    } else {
        "poor"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    /// The bound's standard error: 0 for equal weights, sd(w) / (√S mean(w)) by hand for two,
    /// and within 15% of the spread of the bound itself over 400 independent sets of draws.
    #[test]
    fn the_iw_bound_standard_error_matches_the_bounds_spread() {
        assert_eq!(iw_bound_se(&[0.7; 10]), 0.0);
        // w = 1, 3: mean 2, sample variance 2, se = √(2 / 2) / 2.
        assert!((iw_bound_se(&[0.0, 3f64.ln()]) - 0.5).abs() < 1e-12);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let normal = Normal::new(0.0, 0.6).unwrap();
        let (sets, n) = (400, 1000);
        let mut bounds = Vec::new();
        let mut ses = Vec::new();
        for _ in 0..sets {
            let lw: Vec<f64> = (0..n).map(|_| normal.sample(&mut rng)).collect();
            bounds.push(iw_bound(&lw));
            ses.push(iw_bound_se(&lw));
        }
        let mean = bounds.iter().sum::<f64>() / sets as f64;
        let spread = (bounds.iter().map(|b| (b - mean).powi(2)).sum::<f64>() / (sets - 1) as f64).sqrt();
        let se = ses.iter().sum::<f64>() / sets as f64;
        assert!(
            (se / spread - 1.0).abs() < 0.15,
            "se {se:.4} vs spread {spread:.4}"
        );
    }

    #[test]
    fn equal_weights_read_as_a_perfect_proposal() {
        // Log weights of an exact posterior differ only by rounding.
        let lw: Vec<f64> = (0..1000).map(|i| -23.14 + 1e-14 * ((i % 3) as f64)).collect();
        let s = smooth(&lw);
        assert_eq!(s.khat, 0.0);
        assert!(s.log_weights.iter().all(|w| (w + (1000f64).ln()).abs() < 1e-9));
    }

    #[test]
    fn recovers_the_shape_of_a_pareto_tail() {
        // Exceedances of a GPD with k = 0.5, σ = 1, by inverse transform.
        let n = 4000;
        let mut x: Vec<f64> = (0..n)
            .map(|i| gpd_quantile((i as f64 + 0.5) / n as f64, 0.5, 1.0))
            .collect();
        x.sort_by(f64::total_cmp);
        let (k, sigma) = gpd_fit(&x);
        assert!((k - 0.5).abs() < 0.05, "k = {k}");
        assert!((sigma - 1.0).abs() < 0.1, "sigma = {sigma}");
    }

    #[test]
    fn khat_is_small_for_a_good_proposal_and_large_for_a_bad_one() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let n = 4000;
        // Target N(0, 1): proposal N(0, 1.2) is wider (bounded weights), N(0, 0.5) too narrow.
        let lp = |x: f64, s: f64| -0.5 * (x / s).powi(2) - s.ln();
        let good: Vec<f64> = (0..n)
            .map(|_| {
                let z = Normal::new(0.0, 1.2).unwrap().sample(&mut rng);
                lp(z, 1.0) - lp(z, 1.2)
            })
            .collect();
        let bad: Vec<f64> = (0..n)
            .map(|_| {
                let z = Normal::new(0.0, 0.5).unwrap().sample(&mut rng);
                lp(z, 1.0) - lp(z, 0.5)
            })
            .collect();
        let kg = smooth(&good).khat;
        let kb = smooth(&bad).khat;
        assert!(kg < 0.5, "good proposal k = {kg}");
        assert!(kb > 0.7, "narrow proposal k = {kb}");
    }

    #[test]
    fn the_iw_bound_of_exact_weights_is_the_log_evidence() {
        // Constant weights log w = c give exactly c.
        assert!((iw_bound(&[-3.0; 10]) + 3.0).abs() < 1e-12);
        let s = smooth(&[-1.0, -2.0, -0.5, -3.0, -1.5, -2.5, -0.7, -1.1, -0.9, -2.2]);
        assert!((log_sum_exp(&s.log_weights)).abs() < 1e-12);
        assert_eq!(reading(0.3, 1000), "good");
        assert_eq!(reading(0.6, 1000), "usable");
        assert_eq!(reading(0.9, 1000), "poor");
    }
}
