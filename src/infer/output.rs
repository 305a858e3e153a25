//! What a fit returns: how it ended, the posterior summaries, the state to save, and the
//! progress an engine reports while it runs.
//!
//! Plain data shared by the engines, the after-fit tools and the reports; it imports no engine.

use crate::diag::Diagnostic;
use crate::store::NamedTensor;

use super::epoch;

/// Which engine fitted the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Cavi,
    Svi,
    /// Multi-path Pathfinder, saved as a full-rank Gaussian.
    Pathfinder,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Cavi => "cavi",
            Method::Svi => "svi",
            Method::Pathfinder => "pathfinder",
        }
    }
}

/// How a fit ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The stop rule was met.
    Converged,
    /// The step cap was reached while the ELBO was still moving.
    Stalled,
    /// Every requested step ran, as asked: a tolerance of zero turns the stop rule off.
    Completed,
    /// The ELBO went non-finite; the last finite parameters were kept.
    Diverged,
    /// Stopped by Ctrl-C; a checkpoint to resume from was written.
    Interrupted,
}

impl Status {
    /// Where a fit that used all its steps ends: stalled, unless the stop rule was off.
    pub fn at_step_limit(tol: f64) -> Status {
        if tol <= 0.0 {
            Status::Completed
        } else {
            Status::Stalled
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Status::Converged => "converged",
            Status::Stalled => "stalled",
            Status::Completed => "completed",
            Status::Interrupted => "interrupted",
            Status::Diverged => "diverged",
        }
    }
}

/// Posterior summary of one latent, elementwise, flattened row-major.
#[derive(Clone, Debug)]
pub struct LatentSummary {
    pub name: String,
    pub shape: Vec<usize>,
    pub mean: Vec<f64>,
    pub sd: Vec<f64>,
    pub q05: Vec<f64>,
    pub q95: Vec<f64>,
    /// A categorical latent's probabilities (the mean of a label means little).
    pub categories: Option<CategoryProbs>,
}

/// The probabilities of each element's `k` categories, row-major (`k` per element).
#[derive(Clone, Debug)]
pub struct CategoryProbs {
    pub k: usize,
    pub probs: Vec<f64>,
}

impl CategoryProbs {
    /// Element `i`'s most likely category and its probability.
    pub fn most_likely(&self, i: usize) -> (usize, f64) {
        self.probs[i * self.k..(i + 1) * self.k]
            .iter()
            .copied()
            .enumerate()
            .fold(
                (0, f64::NEG_INFINITY),
                |best, (j, p)| if p > best.1 { (j, p) } else { best },
            )
    }

    pub fn len(&self) -> usize {
        self.probs.len() / self.k.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl LatentSummary {
    /// From `draws` samples laid out sample-major, `per` values each.
    pub fn from_draws(
        name: &str,
        shape: Vec<usize>,
        values: &[f64],
        draws: usize,
        per: usize,
    ) -> LatentSummary {
        let mut mean = vec![0.0; per];
        let mut sd = vec![0.0; per];
        let mut q05 = vec![0.0; per];
        let mut q95 = vec![0.0; per];
        let mut col = vec![0.0; draws];
        for j in 0..per {
            for (i, c) in col.iter_mut().enumerate() {
                *c = values[i * per + j];
            }
            let m = col.iter().sum::<f64>() / draws as f64;
            let v = col.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (draws.max(2) - 1) as f64;
            col.sort_by(f64::total_cmp);
            mean[j] = m;
            sd[j] = v.sqrt();
            q05[j] = quantile(&col, 0.05);
            q95[j] = quantile(&col, 0.95);
        }
        LatentSummary {
            name: name.to_string(),
            shape,
            mean,
            sd,
            q05,
            q95,
            categories: None,
        }
    }
}

/// Element `flat` (row-major) of an array of `shape`, as `[i, j]`; empty for a scalar.
pub fn index_label(shape: &[usize], mut flat: usize) -> String {
    if shape.is_empty() {
        return String::new();
    }
    let mut idx = vec![0; shape.len()];
    for k in (0..shape.len()).rev() {
        idx[k] = flat % shape[k];
        flat /= shape[k];
    }
    format!(
        "[{}]",
        idx.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )
}

/// Linear-interpolated quantile of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The result of a fit.
#[derive(Clone, Debug)]
pub struct FitOutput {
    pub method: Method,
    /// One line per latent: how it was fitted and why.
    pub reasons: Vec<String>,
    /// For a minibatched model, the training rows its ELBO totals over (the ELBO and its
    /// trace are totals; per row is the ELBO over these).
    pub rows: Option<usize>,
    pub status: Status,
    pub iterations: usize,
    pub elbo_trace: Vec<f64>,
    /// The final ELBO (CAVI: exact; SVI: the mean of the last window of estimates).
    pub elbo: f64,
    pub time_s: f64,
    pub latents: Vec<LatentSummary>,
    /// The model's `param`s, constrained.
    pub params: Vec<NamedTensor>,
    /// Every learned tensor (variational parameters, params unconstrained, network weights).
    pub state: Vec<NamedTensor>,
    pub notes: Vec<String>,
    /// Set when the fit stopped on a non-finite ELBO.
    pub diverged: Option<Diagnostic>,
    /// The automatic guide's kind (`mean_field`, `full_rank`), for SVI fits.
    pub guide: Option<&'static str>,
    /// Seconds in the iterations themselves (no setup, no summaries).
    pub loop_s: f64,
    /// How far to trust the fit (k̂, the IW bound), when the diagnostics ran.
    pub trust: Option<Trust>,
    /// Per-epoch reports, for models with a batched plate.
    pub epochs: Vec<epoch::EpochReport>,
    /// Points at which the model's log density was evaluated, each draw of each step counted
    /// (gradient fits; 0 for CAVI).
    pub grad_evals: usize,
    /// Set when `auto` fitted a richer family after a poor first fit.
    pub escalation: Option<Escalation>,
    /// Gradient fits: the non-centring choice (`auto`, `none`), saved with the fit.
    pub reparam: Option<&'static str>,
    /// The latents fitted in non-centred form.
    pub noncentred: Vec<String>,
    /// The model's derived quantities, summarised from draws of q like the latents.
    pub derived: Vec<LatentSummary>,
    /// Draws of the first scalars (latent and derived elements), for their density plots.
    pub marginals: Vec<Marginal>,
}

/// What the after-fit diagnostics found (`posterior::trust::diagnose`): plain data, here
/// beside the fit it describes.
#[derive(Clone, Debug)]
pub struct Trust {
    pub draws: usize,
    /// The draws asked for (`--diagnostic-draws`): more than `draws` where each draw is large.
    pub asked: usize,
    pub khat: f64,
    pub reading: &'static str,
    /// log (1/S) Σ w_s over the same draws, and its standard error.
    pub iw_bound: f64,
    pub iw_bound_se: f64,
    /// The ELBO at the final parameters, (1/S) Σ log w_s, and its standard error.
    pub elbo: f64,
    pub elbo_se: f64,
    /// PSIS-corrected posterior means, per latent (those small enough to summarise).
    pub psis_means: Vec<(String, Vec<f64>)>,
}

/// Draws of one scalar of the posterior: a latent's or a derived quantity's element.
#[derive(Clone, Debug)]
pub struct Marginal {
    /// As the posterior table names it: `mu`, `theta[3]`.
    pub label: String,
    pub draws: Vec<f64>,
}

/// What `auto` did after a first fit whose diagnostics read poor: which richer family it
/// tried, both importance-weighted bounds, and which fit it kept.
#[derive(Clone, Debug)]
pub struct Escalation {
    pub from: &'static str,
    pub to: &'static str,
    pub from_iw_bound: f64,
    pub to_iw_bound: f64,
    /// The bounds' standard errors: the richer fit is kept when it is better by more than
    /// twice their combined error.
    pub from_iw_bound_se: f64,
    pub to_iw_bound_se: f64,
    pub kept: &'static str,
    /// Each fit's own steps (or, for Pathfinder, L-BFGS iterations): the reported fit's are
    /// its `iterations`; the progress showed both.
    pub from_iterations: usize,
    pub to_iterations: usize,
}

impl FitOutput {
    /// What `params.safetensors` records beside the tensors, for the after-fit tools to read
    /// them as they were fitted: the model's name, the method, the guide and the non-centring.
    pub fn saved_metadata(&self, model: &str) -> std::collections::HashMap<String, String> {
        let mut meta = std::collections::HashMap::new();
        meta.insert("model".to_string(), model.to_string());
        meta.insert("method".to_string(), self.method.name().to_string());
        if let Some(g) = self.guide {
            meta.insert("guide".to_string(), g.to_string());
        }
        if let Some(r) = self.reparam {
            meta.insert("reparam".to_string(), r.to_string());
        }
        meta
    }

    /// How far to trust the fit, in one word: `poor` when it diverged or stalled or its k̂
    /// reads poor, else the k̂ reading (`good`, `usable`); `None` when no diagnostics ran on a
    /// fit that ended well.
    pub fn trust_level(&self) -> Option<&'static str> {
        match self.status {
            Status::Diverged | Status::Stalled => return Some("poor"),
            _ => {}
        }
        self.trust.as_ref().map(|t| match t.reading {
            "good" => "good",
            "usable" => "usable",
            _ => "poor",
        })
    }
}

/// What an engine reports while it runs.
#[derive(Clone, Debug)]
pub enum Progress {
    /// The method chosen and why each latent is fitted as it is: sent before fitting starts.
    Plan {
        method: Method,
        reasons: Vec<String>,
        /// For a minibatched model, the rows its step ELBO totals over.
        rows: Option<usize>,
    },
    /// Restart `restart` (1-based) of `restarts` begins.
    Restart {
        restart: usize,
        restarts: usize,
    },
    /// The fit just made reads k̂ `khat` (`reading`), so `auto` tries the richer family `to`.
    Escalating {
        from: &'static str,
        to: &'static str,
        khat: f64,
        reading: &'static str,
    },
    /// One step (SVI) or sweep (CAVI) done.
    Step {
        step: usize,
        total: usize,
        elbo: f64,
        unit: &'static str,
    },
    Diverged(Diagnostic),
    /// One pass over the training rows done.
    Epoch(epoch::EpochReport),
    /// A checkpoint was written after this step.
    Checkpoint {
        step: usize,
    },
    /// A non-finite value at this step: back to the last finite parameters, at this learning rate.
    Backoff {
        step: usize,
        lr: f64,
        reason: String,
    },
}
