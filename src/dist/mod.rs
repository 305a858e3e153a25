//! Distribution families: their names, parameterisations, parameter constraints, supports and
//! shapes, and what each may do (be truncated, observe data of a domain, be fitted non-centred).
//! This is the one table the checker, the conjugacy analysis and the engines share: a leaf that
//! imports nothing of the crate, so that `graph` and `check` read it without reaching the
//! interpreter that `density.rs`, `cdf.rs` and `sample.rs` sit on.
//!
//! Densities, sampling and KL divergences live with the engines that evaluate them; this module
//! only says what each family *is*.

pub mod cdf;
pub mod density;
pub mod sample;

use std::fmt;

/// The set of values a variable, a parameter or a data column may take.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Domain {
    Real,
    Positive,
    /// The closed unit interval [0, 1].
    Unit,
    /// An open interval with constant bounds.
    Interval(f64, f64),
    /// Non-negative vectors along the last axis that sum to one.
    Simplex,
    /// {0, 1}.
    Binary,
    /// {0, 1, 2, ...}.
    Count,
    /// Any integer.
    Int,
    /// {0, ..., K-1}, with K the length of the probability vector.
    Category,
    /// Symmetric positive-definite matrices (covariances).
    PosDef,
    /// Strictly increasing vectors along the last axis (Stan's `ordered`).
    Ordered,
    /// Strictly increasing positive vectors along the last axis (`positive_ordered`).
    PositiveOrdered,
    /// Cholesky factors of correlation matrices over the last two axes (Stan's
    /// `cholesky_factor_corr`): lower triangular, positive diagonal, rows of unit length.
    CorrCholesky,
}

impl Domain {
    pub fn is_discrete(self) -> bool {
        matches!(
            self,
            Domain::Binary | Domain::Count | Domain::Int | Domain::Category
        )
    }

    /// Whether every value of `inner` is a value of `self` (`Bernoulli` on grey levels is
    /// handled by the caller).
    pub fn contains(self, inner: Domain) -> bool {
        use Domain::*;
        match (self, inner) {
            (a, b) if a == b => true,
            (Real, PosDef | CorrCholesky) => false,
            (Real, _) => true,
            (Positive, PositiveOrdered) => true,
            (Positive, Interval(lo, _)) => lo >= 0.0,
            (Unit, Interval(lo, hi)) => lo >= 0.0 && hi <= 1.0,
            (Interval(lo, hi), Interval(a, b)) => a >= lo && b <= hi,
            (Interval(lo, hi), Unit) => lo <= 0.0 && hi >= 1.0,
            (Interval(lo, hi), Positive | PositiveOrdered) => lo <= 0.0 && hi == f64::INFINITY,
            (Interval(lo, hi), Real | Ordered) => lo == f64::NEG_INFINITY && hi == f64::INFINITY,
            (Count, Binary) | (Int, Binary) | (Int, Count) | (Int, Category) => true,
            (Category, Binary) | (Category, Count) | (Category, Int) => true,
            (Count, Category) => true,
            _ => false,
        }
    }

    /// Whether a constant value lies in the domain (for constant parameters).
    pub fn admits(self, v: f64) -> bool {
        use Domain::*;
        v.is_finite()
            && match self {
                Real => true,
                Positive => v > 0.0,
                Unit => (0.0..=1.0).contains(&v),
                Interval(lo, hi) => v > lo && v < hi,
                Binary => v == 0.0 || v == 1.0,
                Count | Category => v >= 0.0 && v.fract() == 0.0,
                Int => v.fract() == 0.0,
                Simplex | PosDef | Ordered | PositiveOrdered | CorrCholesky => true,
            }
    }

    /// The word users write for this domain in `data` and `param` declarations.
    pub fn keyword(self) -> String {
        match self {
            Domain::Real => "real".into(),
            Domain::Positive => "positive".into(),
            Domain::Unit => "unit".into(),
            Domain::Interval(a, b) => format!("bounded({a}, {b})"),
            Domain::Simplex => "simplex".into(),
            Domain::Binary => "binary".into(),
            Domain::Count => "count".into(),
            Domain::Int => "int".into(),
            Domain::Category => "category".into(),
            Domain::PosDef => "posdef".into(),
            Domain::Ordered => "ordered".into(),
            Domain::PositiveOrdered => "positive_ordered".into(),
            Domain::CorrCholesky => "cholesky_factor_corr".into(),
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Domain::Real => f.write_str("real"),
            Domain::Positive => f.write_str("positive"),
            Domain::Unit => f.write_str("[0, 1]"),
            Domain::Interval(a, b) => write!(f, "({a}, {b})"),
            Domain::Simplex => f.write_str("simplex"),
            Domain::Binary => f.write_str("{0, 1}"),
            Domain::Count => f.write_str("{0, 1, 2, ...}"),
            Domain::Int => f.write_str("integer"),
            Domain::Category => f.write_str("{0, ..., K-1}"),
            Domain::PosDef => f.write_str("positive-definite"),
            Domain::Ordered => f.write_str("ordered"),
            Domain::PositiveOrdered => f.write_str("positive ordered"),
            Domain::CorrCholesky => f.write_str("Cholesky factors of correlation matrices"),
        }
    }
}

/// The distribution families a model may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Normal,
    HalfNormal,
    LogNormal,
    Gamma,
    InverseGamma,
    Exponential,
    Beta,
    Uniform,
    StudentT,
    Cauchy,
    HalfCauchy,
    Laplace,
    Dirichlet,
    MvNormal,
    Bernoulli,
    Binomial,
    Poisson,
    Categorical,
    Multinomial,
    /// The improper uniform density over the reals (Stan's default prior): log density 0.
    Flat,
    /// The improper uniform density over the positive reals.
    HalfFlat,
    /// Half a Student t about 0: a heavy-tailed prior for scales.
    HalfStudentT,
    /// Stan's `neg_binomial_2`: mean `mu` and dispersion `phi` (variance mu + mu² / phi).
    NegativeBinomial,
    Weibull,
    Gumbel,
    /// A Binomial whose success probability is Beta(alpha, beta), summed out.
    BetaBinomial,
    /// `target += value`: a log-density term the model adds (Stan's `target +=`). Not a
    /// family a model can name; its "draw" is the term itself.
    Factor,
    /// A finite mixture of one scalar family (`Mixture(weights, Normal(mu, sigma))`): its
    /// parameterisation names the component family.
    Mixture,
    /// The LKJ density over correlation matrices, on their Cholesky factors (Stan's
    /// `lkj_corr_cholesky`): the prior of a `cholesky_factor_corr` latent.
    LkjCholesky,
}

/// One named parameter of a parameterisation.
#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub domain: Domain,
    /// How many trailing axes belong to one draw (0 scalar, 1 vector, 2 matrix).
    pub event_rank: usize,
}

const fn p(name: &'static str, domain: Domain) -> ParamSpec {
    ParamSpec {
        name,
        domain,
        event_rank: 0,
    }
}

const fn pv(name: &'static str, domain: Domain, event_rank: usize) -> ParamSpec {
    ParamSpec {
        name,
        domain,
        event_rank,
    }
}

/// Which set of parameters a call used, e.g. `Normal(loc, scale)` or `Normal(loc, precision=)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Parameterization {
    /// The family's first (standard) parameter list.
    Standard,
    /// `Normal(loc, precision = tau)`.
    Precision,
    /// `Normal(loc, variance = v)`.
    Variance,
    /// `Bernoulli(logits = ...)`, `Categorical(logits = ...)`, `Binomial(n, logits = ...)`.
    Logits,
    /// `MvNormal(loc, scale_tril = L)`.
    ScaleTril,
    /// `Poisson(log_rate = eta)`: Stan's `poisson_log`, stable for large linear predictors.
    LogRate,
    /// `Mixture(weights, C(...))`: components of family C (its standard parameters, each a
    /// vector over the K components), the component index summed out.
    MixtureOf(Family),
}

use Domain::*;

const NORMAL: &[(Parameterization, &[ParamSpec])] = &[
    (
        Parameterization::Standard,
        &[p("loc", Real), p("scale", Positive)],
    ),
    (
        Parameterization::Precision,
        &[p("loc", Real), p("precision", Positive)],
    ),
    (
        Parameterization::Variance,
        &[p("loc", Real), p("variance", Positive)],
    ),
];
const HALF_NORMAL: &[(Parameterization, &[ParamSpec])] =
    &[(Parameterization::Standard, &[p("scale", Positive)])];
const LOG_NORMAL: &[(Parameterization, &[ParamSpec])] = &[(
    Parameterization::Standard,
    &[p("loc", Real), p("scale", Positive)],
)];
const GAMMA: &[(Parameterization, &[ParamSpec])] = &[(
    Parameterization::Standard,
    &[p("shape", Positive), p("rate", Positive)],
)];
const INVERSE_GAMMA: &[(Parameterization, &[ParamSpec])] = &[(
    Parameterization::Standard,
    &[p("shape", Positive), p("scale", Positive)],
)];
const EXPONENTIAL: &[(Parameterization, &[ParamSpec])] =
    &[(Parameterization::Standard, &[p("rate", Positive)])];
const BETA: &[(Parameterization, &[ParamSpec])] = &[(
    Parameterization::Standard,
    &[p("alpha", Positive), p("beta", Positive)],
)];
const UNIFORM: &[(Parameterization, &[ParamSpec])] =
    &[(Parameterization::Standard, &[p("low", Real), p("high", Real)])];
const STUDENT_T: &[(Parameterization, &[ParamSpec])] = &[(
    Parameterization::Standard,
    &[p("df", Positive), p("loc", Real), p("scale", Positive)],
)];
const LOC_SCALE: &[(Parameterization, &[ParamSpec])] = &[(
    Parameterization::Standard,
    &[p("loc", Real), p("scale", Positive)],
)];
const HALF_CAUCHY: &[(Parameterization, &[ParamSpec])] =
    &[(Parameterization::Standard, &[p("scale", Positive)])];
const DIRICHLET: &[(Parameterization, &[ParamSpec])] =
    &[(Parameterization::Standard, &[pv("concentration", Positive, 1)])];
const MV_NORMAL: &[(Parameterization, &[ParamSpec])] = &[
    (
        Parameterization::Standard,
        &[pv("loc", Real, 1), pv("cov", PosDef, 2)],
    ),
    (
        Parameterization::ScaleTril,
        &[pv("loc", Real, 1), pv("scale_tril", Real, 2)],
    ),
];
const BERNOULLI: &[(Parameterization, &[ParamSpec])] = &[
    (Parameterization::Standard, &[p("p", Unit)]),
    (Parameterization::Logits, &[p("logits", Real)]),
];
const BINOMIAL: &[(Parameterization, &[ParamSpec])] = &[
    (Parameterization::Standard, &[p("n", Count), p("p", Unit)]),
    (Parameterization::Logits, &[p("n", Count), p("logits", Real)]),
];
const POISSON: &[(Parameterization, &[ParamSpec])] = &[
    (Parameterization::Standard, &[p("rate", Positive)]),
    (Parameterization::LogRate, &[p("log_rate", Real)]),
];
const CATEGORICAL: &[(Parameterization, &[ParamSpec])] = &[
    (Parameterization::Standard, &[pv("p", Simplex, 1)]),
    (Parameterization::Logits, &[pv("logits", Real, 1)]),
];
const FLAT: &[(Parameterization, &[ParamSpec])] = &[(Parameterization::Standard, &[])];
const HALF_STUDENT_T: &[(Parameterization, &[ParamSpec])] = &[(
    Parameterization::Standard,
    &[p("df", Positive), p("scale", Positive)],
)];
const NEGATIVE_BINOMIAL: &[(Parameterization, &[ParamSpec])] = &[
    (
        Parameterization::Standard,
        &[p("mu", Positive), p("phi", Positive)],
    ),
    (
        Parameterization::LogRate,
        &[p("log_mu", Real), p("phi", Positive)],
    ),
];
const WEIBULL: &[(Parameterization, &[ParamSpec])] = &[(
    Parameterization::Standard,
    &[p("shape", Positive), p("scale", Positive)],
)];
const BETA_BINOMIAL: &[(Parameterization, &[ParamSpec])] = &[(
    Parameterization::Standard,
    &[p("n", Count), p("alpha", Positive), p("beta", Positive)],
)];
const MIXTURE: &[(Parameterization, &[ParamSpec])] =
    &[(Parameterization::Standard, &[pv("weights", Simplex, 1)])];
const MIX_LOC_SCALE: &[ParamSpec] = &[
    pv("weights", Simplex, 1),
    pv("loc", Real, 1),
    pv("scale", Positive, 1),
];
const MIX_STUDENT_T: &[ParamSpec] = &[
    pv("weights", Simplex, 1),
    pv("df", Positive, 1),
    pv("loc", Real, 1),
    pv("scale", Positive, 1),
];
const MIX_RATE: &[ParamSpec] = &[pv("weights", Simplex, 1), pv("rate", Positive, 1)];
const MIX_GAMMA: &[ParamSpec] = &[
    pv("weights", Simplex, 1),
    pv("shape", Positive, 1),
    pv("rate", Positive, 1),
];
const LKJ_CHOLESKY: &[(Parameterization, &[ParamSpec])] =
    &[(Parameterization::Standard, &[p("concentration", Positive)])];
const MULTINOMIAL: &[(Parameterization, &[ParamSpec])] =
    &[(Parameterization::Standard, &[p("n", Count), pv("p", Simplex, 1)])];

impl Family {
    pub const ALL: [Family; 28] = [
        Family::Normal,
        Family::HalfNormal,
        Family::LogNormal,
        Family::Gamma,
        Family::InverseGamma,
        Family::Exponential,
        Family::Beta,
        Family::Uniform,
        Family::StudentT,
        Family::Cauchy,
        Family::HalfCauchy,
        Family::Laplace,
        Family::Dirichlet,
        Family::MvNormal,
        Family::Bernoulli,
        Family::Binomial,
        Family::Poisson,
        Family::Categorical,
        Family::Multinomial,
        Family::Flat,
        Family::HalfFlat,
        Family::Mixture,
        Family::HalfStudentT,
        Family::NegativeBinomial,
        Family::Weibull,
        Family::Gumbel,
        Family::BetaBinomial,
        Family::LkjCholesky,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Normal => "Normal",
            Family::HalfNormal => "HalfNormal",
            Family::LogNormal => "LogNormal",
            Family::Gamma => "Gamma",
            Family::InverseGamma => "InverseGamma",
            Family::Exponential => "Exponential",
            Family::Beta => "Beta",
            Family::Uniform => "Uniform",
            Family::StudentT => "StudentT",
            Family::Cauchy => "Cauchy",
            Family::HalfCauchy => "HalfCauchy",
            Family::Laplace => "Laplace",
            Family::Dirichlet => "Dirichlet",
            Family::MvNormal => "MvNormal",
            Family::Bernoulli => "Bernoulli",
            Family::Binomial => "Binomial",
            Family::Poisson => "Poisson",
            Family::Categorical => "Categorical",
            Family::Multinomial => "Multinomial",
            Family::Flat => "Flat",
            Family::HalfFlat => "HalfFlat",
            Family::Mixture => "Mixture",
            Family::HalfStudentT => "HalfStudentT",
            Family::NegativeBinomial => "NegativeBinomial",
            Family::Weibull => "Weibull",
            Family::Gumbel => "Gumbel",
            Family::BetaBinomial => "BetaBinomial",
            Family::LkjCholesky => "LKJCholesky",
            Family::Factor => "target +=",
        }
    }

    /// Look a family up by the name written in a model (`MultivariateNormal` is an alias).
    pub fn from_name(name: &str) -> Option<Family> {
        if name == "MultivariateNormal" {
            return Some(Family::MvNormal);
        }
        Family::ALL.into_iter().find(|f| f.name() == name)
    }

    /// All names a model may write, for suggestions.
    pub fn names() -> impl Iterator<Item = &'static str> {
        Family::ALL
            .into_iter()
            .map(Family::name)
            .chain(["MultivariateNormal"])
    }

    /// The parameterisations, the standard one first.
    pub fn parameterizations(self) -> &'static [(Parameterization, &'static [ParamSpec])] {
        match self {
            Family::Normal => NORMAL,
            Family::HalfNormal => HALF_NORMAL,
            Family::LogNormal => LOG_NORMAL,
            Family::Gamma => GAMMA,
            Family::InverseGamma => INVERSE_GAMMA,
            Family::Exponential => EXPONENTIAL,
            Family::Beta => BETA,
            Family::Uniform => UNIFORM,
            Family::StudentT => STUDENT_T,
            Family::Cauchy | Family::Laplace => LOC_SCALE,
            Family::HalfCauchy => HALF_CAUCHY,
            Family::Dirichlet => DIRICHLET,
            Family::MvNormal => MV_NORMAL,
            Family::Bernoulli => BERNOULLI,
            Family::Binomial => BINOMIAL,
            Family::Poisson => POISSON,
            Family::Categorical => CATEGORICAL,
            Family::Multinomial => MULTINOMIAL,
            Family::Flat | Family::HalfFlat | Family::Factor => FLAT,
            Family::Mixture => MIXTURE,
            Family::HalfStudentT => HALF_STUDENT_T,
            Family::NegativeBinomial => NEGATIVE_BINOMIAL,
            Family::Weibull => WEIBULL,
            Family::Gumbel => LOC_SCALE,
            Family::BetaBinomial => BETA_BINOMIAL,
            Family::LkjCholesky => LKJ_CHOLESKY,
        }
    }

    /// The families a `Mixture` may have as components: scalar ones with a closed-form
    /// density, written with their standard parameters.
    pub const MIXABLE: [Family; 8] = [
        Family::Normal,
        Family::LogNormal,
        Family::StudentT,
        Family::Cauchy,
        Family::Laplace,
        Family::Poisson,
        Family::Exponential,
        Family::Gamma,
    ];

    pub fn params(self, pz: Parameterization) -> &'static [ParamSpec] {
        if let (Family::Mixture, Parameterization::MixtureOf(c)) = (self, pz) {
            return match c {
                Family::StudentT => MIX_STUDENT_T,
                Family::Poisson | Family::Exponential => MIX_RATE,
                Family::Gamma => MIX_GAMMA,
                _ => MIX_LOC_SCALE,
            };
        }
        self.parameterizations()
            .iter()
            .find(|(k, _)| *k == pz)
            .map(|(_, ps)| *ps)
            .unwrap_or(self.parameterizations()[0].1)
    }

    /// The values a draw takes. Uniform's interval comes from its arguments.
    pub fn support(self) -> Domain {
        match self {
            Family::Normal
            | Family::StudentT
            | Family::Cauchy
            | Family::Laplace
            | Family::MvNormal
            | Family::Uniform
            | Family::Flat
            | Family::Mixture
            | Family::Factor
            | Family::Gumbel => Real,
            Family::HalfNormal
            | Family::LogNormal
            | Family::Gamma
            | Family::InverseGamma
            | Family::Exponential
            | Family::HalfCauchy
            | Family::HalfFlat
            | Family::HalfStudentT
            | Family::Weibull => Positive,
            Family::Beta => Unit,
            Family::Dirichlet => Simplex,
            Family::Bernoulli => Binary,
            Family::Binomial
            | Family::Poisson
            | Family::Multinomial
            | Family::NegativeBinomial
            | Family::BetaBinomial => Count,
            Family::Categorical => Category,
            Family::LkjCholesky => CorrCholesky,
        }
    }

    /// How many trailing axes one draw has (Dirichlet, MvNormal, Multinomial draw vectors).
    pub fn event_rank(self) -> usize {
        match self {
            Family::Dirichlet | Family::MvNormal | Family::Multinomial => 1,
            Family::LkjCholesky => 2,
            _ => 0,
        }
    }

    /// Whether the density is improper (integrates to infinity): a prior only, never a
    /// likelihood, a guide or something to draw from.
    pub fn is_improper(self) -> bool {
        matches!(self, Family::Flat | Family::HalfFlat)
    }

    /// The families a `T[lo, hi]` may truncate: those whose CDF is closed-form (`cdf.rs`).
    pub const TRUNCATABLE: [Family; 6] = [
        Family::Normal,
        Family::HalfNormal,
        Family::LogNormal,
        Family::Exponential,
        Family::Weibull,
        Family::Gumbel,
    ];

    /// Whether `T[lo, hi]` may truncate the family ([`Family::TRUNCATABLE`]).
    pub fn truncatable(self) -> bool {
        Family::TRUNCATABLE.contains(&self)
    }

    /// Whether the family can observe data declared over `data`: its support contains the
    /// domain, except that a Bernoulli may observe grey levels in [0, 1] (the usual VAE
    /// likelihood on images), the count families observe `count` or `binary` data, a
    /// Categorical category numbers, and a Uniform anything but matrices.
    pub fn observes(self, data: Domain) -> bool {
        match self {
            Family::Bernoulli => matches!(data, Domain::Binary | Domain::Unit),
            Family::Categorical => matches!(data, Domain::Int | Domain::Count | Domain::Binary),
            Family::Binomial
            | Family::Poisson
            | Family::Multinomial
            | Family::NegativeBinomial
            | Family::BetaBinomial => {
                matches!(data, Domain::Count | Domain::Binary)
            }
            Family::Uniform => data != Domain::PosDef,
            f => f.support().contains(data),
        }
    }

    /// Whether the family, with its standard parameters `(loc, scale)`, draws `loc + scale · z`
    /// (its exponential for LogNormal) with `z` from the family at (0, 1): the families a latent
    /// may be fitted non-centred in that way. (StudentT is one too, with its degrees of freedom
    /// first; Gumbel is one but is not standardised.)
    pub fn is_location_scale(self) -> bool {
        matches!(
            self,
            Family::Normal | Family::LogNormal | Family::Cauchy | Family::Laplace
        )
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_round_trips_by_name() {
        for f in Family::ALL {
            assert_eq!(Family::from_name(f.name()), Some(f));
            assert!(!f.parameterizations().is_empty());
        }
        assert_eq!(Family::from_name("MultivariateNormal"), Some(Family::MvNormal));
    }

    #[test]
    fn domains_nest() {
        assert!(Domain::Real.contains(Domain::Positive));
        assert!(Domain::Count.contains(Domain::Binary));
        assert!(!Domain::Binary.contains(Domain::Real));
        assert!(!Domain::Positive.contains(Domain::Count));
        assert!(Domain::Positive.admits(1.0) && !Domain::Positive.admits(-1.0));
    }
}
