//! Exact draws from every family on the host, for posterior predictive samples.
//!
//! Parameters arrive elementwise (one value per draw for scalar families, one row per draw for
//! vector families); these are not differentiated, so `rand_distr` does the work.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{
    Beta, Binomial, Cauchy, Distribution, Exp, Gamma, Gumbel, LogNormal, Normal, Poisson, StudentT, Weibull,
};

use crate::dist::{Family, Parameterization};

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// One draw of a scalar-event family from its parameter values; NaN where the parameters are
/// outside their supports.
pub fn draw_scalar(family: Family, pz: Parameterization, p: &[f64], rng: &mut ChaCha8Rng) -> f64 {
    use Family as F;
    let nan = f64::NAN;
    match (family, pz) {
        (F::Normal, Parameterization::Precision) => {
            Normal::new(p[0], 1.0 / p[1].sqrt()).map_or(nan, |d| d.sample(rng))
        }
        (F::Normal, Parameterization::Variance) => {
            Normal::new(p[0], p[1].sqrt()).map_or(nan, |d| d.sample(rng))
        }
        (F::Normal, _) => Normal::new(p[0], p[1]).map_or(nan, |d| d.sample(rng)),
        (F::HalfNormal, _) => Normal::new(0.0, p[0]).map_or(nan, |d| d.sample(rng).abs()),
        (F::LogNormal, _) => LogNormal::new(p[0], p[1]).map_or(nan, |d| d.sample(rng)),
        (F::Gamma, _) => Gamma::new(p[0], 1.0 / p[1]).map_or(nan, |d| d.sample(rng)),
        (F::InverseGamma, _) => Gamma::new(p[0], 1.0 / p[1]).map_or(nan, |d| 1.0 / d.sample(rng)),
        (F::Exponential, _) => Exp::new(p[0]).map_or(nan, |d| d.sample(rng)),
        (F::Beta, _) => Beta::new(p[0], p[1]).map_or(nan, |d| d.sample(rng)),
        (F::Uniform, _) => p[0] + (p[1] - p[0]) * rng.gen::<f64>(),
        (F::StudentT, _) => StudentT::new(p[0]).map_or(nan, |d| p[1] + p[2] * d.sample(rng)),
        (F::Cauchy, _) => Cauchy::new(p[0], p[1]).map_or(nan, |d| d.sample(rng)),
        (F::HalfCauchy, _) => Cauchy::new(0.0, p[0]).map_or(nan, |d| d.sample(rng).abs()),
        (F::Laplace, _) => {
            let u: f64 = rng.gen::<f64>() - 0.5;
            p[0] - p[1] * u.signum() * (1.0 - 2.0 * u.abs()).ln()
        }
        (F::Bernoulli, pz) => {
            let q = if pz == Parameterization::Logits {
                sigmoid(p[0])
            } else {
                p[0]
            };
            f64::from(u8::from(rng.gen::<f64>() < q))
        }
        (F::Binomial, pz) => {
            let q = if pz == Parameterization::Logits {
                sigmoid(p[1])
            } else {
                p[1]
            };
            Binomial::new(p[0].max(0.0) as u64, q.clamp(0.0, 1.0)).map_or(nan, |d| d.sample(rng) as f64)
        }
        (F::Poisson, Parameterization::LogRate) => {
            Poisson::new(p[0].exp()).map_or(nan, |d: Poisson<f64>| d.sample(rng))
        }
        (F::Poisson, _) => Poisson::new(p[0]).map_or(nan, |d: Poisson<f64>| d.sample(rng)),
        (F::Dirichlet | F::MvNormal | F::Categorical | F::Multinomial, _) => {
            unreachable!("vector families draw with draw_vector")
        }
        // Nothing draws from an improper density: the checker refuses it as a likelihood, a
        // guide and a `draw`.
        (F::Flat | F::HalfFlat, _) => nan,
        (F::HalfStudentT, _) => StudentT::new(p[0]).map_or(nan, |d| (p[1] * d.sample(rng)).abs()),
        (F::NegativeBinomial, pz) => {
            // A Poisson whose rate is Gamma(φ, φ / μ).
            let mu = if pz == Parameterization::LogRate {
                p[0].exp()
            } else {
                p[0]
            };
            let rate = Gamma::new(p[1], mu / p[1]).map_or(nan, |d| d.sample(rng));
            Poisson::new(rate).map_or(nan, |d: Poisson<f64>| d.sample(rng))
        }
        (F::Weibull, _) => Weibull::new(p[1], p[0]).map_or(nan, |d| d.sample(rng)),
        (F::Gumbel, _) => Gumbel::new(p[0], p[1]).map_or(nan, |d| d.sample(rng)),
        (F::BetaBinomial, _) => {
            let q = Beta::new(p[1], p[2]).map_or(nan, |d| d.sample(rng));
            Binomial::new(p[0].max(0.0) as u64, q.clamp(0.0, 1.0)).map_or(nan, |d| d.sample(rng) as f64)
        }
        // A `target +=` term is not drawn: it observes nothing.
        (F::Factor, _) => nan,
        (F::Mixture, _) => unreachable!("a mixture's parameters are vectors: draw_vector"),
        // Only a declared latent's prior; nothing observed is drawn from it.
        (F::LkjCholesky, _) => nan,
    }
}

/// (F(x), 1 − F(x)) of a truncatable family (`Family::truncatable`), each accurate in its
/// own tail.
fn cdf_pair(family: Family, pz: Parameterization, p: &[f64], x: f64) -> (f64, f64) {
    use libm::erfc;
    let normal = |z: f64| {
        (
            0.5 * erfc(-z / std::f64::consts::SQRT_2),
            0.5 * erfc(z / std::f64::consts::SQRT_2),
        )
    };
    match family {
        Family::Normal => {
            let sigma = match pz {
                Parameterization::Precision => 1.0 / p[1].sqrt(),
                Parameterization::Variance => p[1].sqrt(),
                _ => p[1],
            };
            normal((x - p[0]) / sigma)
        }
        Family::LogNormal if x <= 0.0 => (0.0, 1.0),
        Family::LogNormal => normal((x.ln() - p[0]) / p[1]),
        Family::HalfNormal => {
            let q = erfc(x.max(0.0) / p[0] / std::f64::consts::SQRT_2);
            (1.0 - q, q)
        }
        Family::Exponential | Family::Weibull => {
            let u = if family == Family::Exponential {
                p[0] * x.max(0.0)
            } else {
                (x.max(0.0) / p[1]).powf(p[0])
            };
            (-(-u).exp_m1(), (-u).exp())
        }
        Family::Gumbel => {
            let e = (-(x - p[0]) / p[1]).exp();
            ((-e).exp(), -(-e).exp_m1())
        }
        _ => (f64::NAN, f64::NAN),
    }
}

/// One draw of a truncated scalar family by inverting its CDF between the bounds (bisection,
/// on whichever tail keeps the target accurate); NaN for bad parameters.
pub fn draw_truncated(
    family: Family,
    pz: Parameterization,
    p: &[f64],
    lo: Option<f64>,
    hi: Option<f64>,
    rng: &mut ChaCha8Rng,
) -> f64 {
    let (f_lo, s_lo) = lo.map_or((0.0, 1.0), |l| cdf_pair(family, pz, p, l));
    let (f_hi, s_hi) = hi.map_or((1.0, 0.0), |h| cdf_pair(family, pz, p, h));
    let u: f64 = rng.gen();
    // From the upper tail when the mass lies past the median, where F would round to 1.
    let upper = f_lo > 0.5;
    let target = if upper {
        s_lo - u * (s_lo - s_hi)
    } else {
        f_lo + u * (f_hi - f_lo)
    };
    if !target.is_finite() {
        return f64::NAN;
    }
    // Below the value: F(x) < target (or S(x) > target).
    let below = |x: f64| {
        let (f, s) = cdf_pair(family, pz, p, x);
        if upper {
            s > target
        } else {
            f < target
        }
    };
    let start = lo.or(hi).unwrap_or(0.0);
    let (mut a, mut b) = (lo.unwrap_or(f64::NAN), hi.unwrap_or(f64::NAN));
    let mut step = 1.0f64.max(start.abs());
    while a.is_nan() {
        let x = start - step;
        if below(x) {
            a = x;
        }
        step *= 2.0;
        if !step.is_finite() {
            return f64::NAN;
        }
    }
    step = 1.0f64.max(start.abs());
    while b.is_nan() {
        let x = start + step;
        if !below(x) {
            b = x;
        }
        step *= 2.0;
        if !step.is_finite() {
            return f64::NAN;
        }
    }
    for _ in 0..200 {
        let m = 0.5 * (a + b);
        if m <= a || m >= b {
            break;
        }
        if below(m) {
            a = m;
        } else {
            b = m;
        }
    }
    0.5 * (a + b)
}

/// One draw of a vector family: `params` are the rows of each parameter (scalars as one-element
/// rows), `k` the event length. Categorical returns one value.
pub fn draw_vector(
    family: Family,
    pz: Parameterization,
    params: &[&[f64]],
    k: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<f64> {
    match family {
        Family::Categorical => {
            let p = probabilities(params[0], pz == Parameterization::Logits);
            vec![categorical(&p, rng) as f64]
        }
        Family::Mixture => {
            // A component by its weight, then a draw of it.
            let Parameterization::MixtureOf(c) = pz else {
                return vec![f64::NAN];
            };
            let j = categorical(params[0], rng);
            let p: Vec<f64> = params[1..].iter().map(|row| row[j.min(row.len() - 1)]).collect();
            vec![draw_scalar(c, Parameterization::Standard, &p, rng)]
        }
        Family::Dirichlet => {
            let g: Vec<f64> = params[0]
                .iter()
                .map(|a| Gamma::new(*a, 1.0).map_or(f64::NAN, |d| d.sample(rng)))
                .collect();
            let total: f64 = g.iter().sum();
            g.iter().map(|x| x / total).collect()
        }
        Family::Multinomial => {
            let n = params[0][0].max(0.0) as usize;
            let mut counts = vec![0.0; k];
            for _ in 0..n {
                counts[categorical(params[1], rng)] += 1.0;
            }
            counts
        }
        Family::MvNormal => {
            // loc + L z, with L a scale_tril, or the Cholesky factor of a covariance.
            let loc = params[0];
            let m = params[1];
            let l = if pz == Parameterization::ScaleTril {
                m.to_vec()
            } else {
                crate::linalg::cholesky(m, k).unwrap_or_else(|| vec![f64::NAN; k * k])
            };
            let z: Vec<f64> = (0..k).map(|_| rand_distr::StandardNormal.sample(rng)).collect();
            (0..k)
                .map(|i| loc[i] + (0..=i).map(|j| l[i * k + j] * z[j]).sum::<f64>())
                .collect()
        }
        f => unreachable!("{f} draws with draw_scalar"),
    }
}

fn probabilities(p: &[f64], logits: bool) -> Vec<f64> {
    if !logits {
        return p.to_vec();
    }
    let m = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = p.iter().map(|x| (x - m).exp()).collect();
    let t: f64 = e.iter().sum();
    e.iter().map(|x| x / t).collect()
}

/// An index drawn with probabilities proportional to `p`.
pub fn categorical(p: &[f64], rng: &mut ChaCha8Rng) -> usize {
    let total: f64 = p.iter().sum();
    let mut u = rng.gen::<f64>() * total;
    for (j, q) in p.iter().enumerate() {
        u -= q;
        if u <= 0.0 {
            return j;
        }
    }
    p.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Truncated draws have scipy's truncated means (by quadrature), in the far tail too.
    #[test]
    fn truncated_draws_have_the_truncated_means() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let st = Parameterization::Standard;
        // (family, parameters, lower bound, upper bound, mean, tolerance)
        type Case = (Family, &'static [f64], Option<f64>, Option<f64>, f64, f64);
        let cases: &[Case] = &[
            (
                Family::Normal,
                &[0.0, 1.0],
                Some(1.0),
                Some(2.0),
                1.383_169_046_631_552_5,
                0.02,
            ),
            (
                Family::Normal,
                &[0.0, 1.0],
                Some(8.0),
                Some(9.0),
                8.121_188_992_979_867,
                0.01,
            ),
            (
                Family::Weibull,
                &[1.5, 2.0],
                Some(0.5),
                Some(3.0),
                1.575_925_381_845_735_7,
                0.03,
            ),
            (
                Family::Gumbel,
                &[1.0, 2.0],
                None,
                Some(0.0),
                -0.836_177_186_097_329_6,
                0.05,
            ),
        ];
        for (family, p, lo, hi, mean, tol) in cases {
            let n = 20_000;
            let draws: Vec<f64> = (0..n)
                .map(|_| draw_truncated(*family, st, p, *lo, *hi, &mut rng))
                .collect();
            assert!(draws
                .iter()
                .all(|x| lo.is_none_or(|l| *x >= l) && hi.is_none_or(|h| *x <= h)));
            let m = draws.iter().sum::<f64>() / n as f64;
            assert!((m - mean).abs() < *tol, "{family:?}: {m} vs {mean}");
        }
    }

    #[test]
    fn draws_have_the_right_means() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let st = Parameterization::Standard;
        let cases: &[(Family, &[f64], f64)] = &[
            (Family::Normal, &[2.0, 1.0], 2.0),
            (Family::Gamma, &[3.0, 2.0], 1.5),
            (Family::Beta, &[2.0, 6.0], 0.25),
            (Family::Poisson, &[4.0], 4.0),
            (Family::Exponential, &[2.0], 0.5),
            (Family::Laplace, &[-1.0, 0.5], -1.0),
            (Family::NegativeBinomial, &[4.0, 2.5], 4.0),
            // λ Γ(1 + 1/k); μ + β γ (Euler's constant); n α / (α + β)
            (Family::Weibull, &[1.7, 2.0], 1.784_489_004_998_648_6),
            (Family::Gumbel, &[0.5, 2.0], 1.654_431_329_803_066),
            (Family::BetaBinomial, &[10.0, 2.0, 3.5], 10.0 * 2.0 / 5.5),
            // 2 σ √ν Γ((ν+1)/2) / (√π Γ(ν/2) (ν − 1)) at ν = 3, σ = 1.5: 3√3 / π
            (Family::HalfStudentT, &[3.0, 1.5], 1.653_986_686_265_376_2),
        ];
        for (f, p, want) in cases {
            let n = 40_000;
            let m: f64 = (0..n).map(|_| draw_scalar(*f, st, p, &mut rng)).sum::<f64>() / n as f64;
            assert!(
                (m - want).abs() < 0.03 * want.abs().max(1.0),
                "{f}: {m} vs {want}"
            );
        }
        let d = draw_vector(Family::Dirichlet, st, &[&[1.0, 2.0, 3.0]], 3, &mut rng);
        assert!((d.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
}
