//! What a fit can be told: typed options, filled from the checked settings (the model's `fit`
//! block merged with the command line's flags) with each engine's defaults.
//!
//! Words become enums here, at the first boundary; nothing past it matches a setting's string.

use crate::backend::Precision;
use crate::settings::{per_engine, Settings};

use super::svi::reparam::Reparam;
use super::{checkpoint, epoch, optim};

/// Defaults of the two engines, from the settings table.
pub const SVI_STEPS: usize = per_engine("steps").1 as usize;
pub const SVI_TOL: f64 = per_engine("tol").1;
pub const CAVI_SWEEPS: usize = per_engine("steps").0 as usize;
pub const CAVI_TOL: f64 = per_engine("tol").0;

/// Which engine to use: `Auto` chooses CAVI where every latent is conjugate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodChoice {
    Auto,
    Cavi,
    Svi,
    /// Multi-path Pathfinder alone.
    Pathfinder,
}

impl std::str::FromStr for MethodChoice {
    type Err = String;

    /// `auto`, `cavi` or `svi`, as the settings table spells them.
    fn from_str(word: &str) -> Result<MethodChoice, String> {
        match word {
            "auto" => Ok(MethodChoice::Auto),
            "cavi" => Ok(MethodChoice::Cavi),
            "svi" => Ok(MethodChoice::Svi),
            "pathfinder" => Ok(MethodChoice::Pathfinder),
            other => Err(format!("`{other}` is not a method (auto, cavi, svi, pathfinder)")),
        }
    }
}

/// The automatic guide's covariance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guide {
    MeanField,
    FullRank,
}

impl Guide {
    /// The word saved with a fit (`params.safetensors` metadata) and read back.
    pub fn name(self) -> &'static str {
        match self {
            Guide::MeanField => "mean_field",
            Guide::FullRank => "full_rank",
        }
    }

    /// The guide a saved fit's metadata names (mean field when it names none).
    pub fn from_saved(meta: &std::collections::HashMap<String, String>) -> Guide {
        match meta.get("guide").map(String::as_str) {
            Some("full_rank") => Guide::FullRank,
            _ => Guide::MeanField,
        }
    }

    /// For people: `mean-field`, `full-rank`.
    pub fn label(self) -> &'static str {
        match self {
            Guide::MeanField => "mean-field",
            Guide::FullRank => "full-rank",
        }
    }
}

/// How the ELBO's entropy/KL part is estimated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Estimator {
    /// L^A: Monte-Carlo log p − log q.
    MonteCarlo,
    /// L^B: the KL to the prior in closed form where it exists.
    Analytic,
}

/// Everything a fit can be told, with defaults; the CLI and the `fit` block fill it.
#[derive(Clone, Debug)]
pub struct FitOptions {
    pub method: MethodChoice,
    /// The most steps (SVI) or sweeps (CAVI); each engine has its default.
    pub steps: Option<usize>,
    pub samples: usize,
    pub lr: f64,
    pub optimizer: optim::Kind,
    pub estimator: Estimator,
    pub guide: Guide,
    /// Relative ELBO change that counts as converged; each engine has its default.
    pub tol: Option<f64>,
    pub seed: u64,
    pub restarts: usize,
    pub clip: Option<f64>,
    pub decay: f64,
    pub momentum: f64,
    pub precision: Precision,
    /// Checkpoints (SVI): where, how often, and whether to resume from one.
    pub checkpoint: Option<checkpoint::Plan>,
    /// How many times a non-finite ELBO or gradient may halve the learning rate before the fit
    /// stops as diverged (0: stop at the first).
    pub backoff: usize,
    /// The fraction of the batched plate's rows held out of training (see [`epoch`]).
    pub holdout: f64,
    /// A fixed image classifier (see `posterior::classify`) that reads decoded prior draws
    /// after every epoch of a deep generative model.
    pub classifier: Option<std::path::PathBuf>,
    /// Draws from the fitted q for the PSIS k̂ and the importance-weighted bound (0: none).
    pub diagnostic_draws: usize,
    /// Pathfinder's paths (`--method pathfinder`, and `auto`'s escalation).
    pub paths: usize,
    /// Where gradient VI starts.
    pub init: Init,
    /// Whether hierarchical latents are fitted in non-centred form.
    pub reparam: Reparam,
    /// Whether SVI steps run as a compiled plan where the pass can be traced (not a setting:
    /// the eager path is the reference that tests compare the plan with).
    pub compiled: bool,
}

/// Where gradient VI starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// The best normal approximation along an L-BFGS path (single-path Pathfinder), which also
    /// sets each variational parameter's step scale; the origin where it cannot run.
    Pathfinder,
    /// Locations 0 and scales 0.1 in unconstrained space (NumPyro's AutoNormal default).
    Origin,
}

impl FitOptions {
    /// Defaults, overridden by the model's `fit` block (already merged with flags).
    pub fn from_settings(settings: &Settings, model: &crate::graph::Model) -> FitOptions {
        let holdout = settings
            .number("holdout")
            .unwrap_or_else(|| epoch::default_holdout(model));
        let split = epoch::split(model, holdout);
        let steps = match (settings.count("steps"), settings.count("epochs")) {
            (Some(s), _) => Some(s),
            (None, Some(e)) => Some(e * epoch::steps_per_epoch(model, split)),
            (None, None) => None,
        };
        // Networks train for the epochs asked: a convergence test on minibatch estimates
        // would stop them on a plateau that more epochs get past.
        let tol = settings.number("tol").or((!model.nets.is_empty()).then_some(0.0));
        let word = |key| settings.word_or_default(key).expect("a word with a default");
        let number = |key| settings.number_or_default(key).expect("a number with a default");
        FitOptions {
            method: word("method").parse().expect("checked against the table"),
            steps,
            samples: number("samples") as usize,
            lr: number("lr"),
            optimizer: optim::Kind::parse(word("optimizer")).expect("checked against the table"),
            estimator: match word("estimator") {
                "analytic" => Estimator::Analytic,
                _ => Estimator::MonteCarlo,
            },
            guide: match word("guide") {
                "full_rank" => Guide::FullRank,
                _ => Guide::MeanField,
            },
            tol,
            holdout,
            classifier: None,
            checkpoint: None,
            backoff: number("backoff") as usize,
            seed: number("seed") as u64,
            restarts: number("restarts") as usize,
            clip: settings.number("clip"),
            decay: number("decay"),
            momentum: number("momentum"),
            // Gradient estimates are noisy far above f32's rounding; CAVI always uses f64.
            precision: Precision::F32,
            diagnostic_draws: 1000,
            paths: number("paths") as usize,
            init: match word("init") {
                "origin" => Init::Origin,
                _ => Init::Pathfinder,
            },
            reparam: match word("reparam") {
                "none" => Reparam::None,
                _ => Reparam::Auto,
            },
            compiled: true,
        }
    }
}
