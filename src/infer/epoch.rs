//! Passes over the data: which rows train the model, which are held out to measure it, and what
//! each epoch reports.
//!
//! A model with a batched plate (`for n in 1..N batch M`) trains on minibatches of that plate.
//! With a `holdout` fraction h, the last ⌊hN⌋ rows are kept out of training (no shuffling: put a
//! fixed test split at the end of the file, or shuffle the file first) and the ELBO on them is
//! reported after every epoch, beside the training ELBO split into its rate (the KL term) and
//! distortion (the negative expected log-likelihood), all per row.

use crate::graph::{Model, PlateId};

/// Holdout applies by default to models with networks (amortised guides generalise to unseen
/// rows), as a tenth of the rows.
pub const DEFAULT_HOLDOUT: f64 = 0.1;

/// The rows of the first batched plate used for training and those held out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    pub plate: PlateId,
    /// Rows 0..train train the model.
    pub train: usize,
    /// Rows train..train + heldout measure it.
    pub heldout: usize,
}

/// The first batched plate, with its size and batch.
pub fn batched_plate(model: &Model) -> Option<(PlateId, usize, usize)> {
    model
        .plates
        .iter()
        .enumerate()
        .find_map(|(k, p)| Some((PlateId(k as u32), p.size.value()?, p.batch?)))
}

/// The holdout fraction when the model does not set one: a tenth for models with networks
/// whose codes in the batched plate all have amortised guides, else none.
pub fn default_holdout(model: &Model) -> f64 {
    let Some((plate, _, _)) = batched_plate(model) else {
        return 0.0;
    };
    let amortised = model
        .latents
        .iter()
        .enumerate()
        .filter(|(_, l)| l.plates.contains(&plate))
        .all(|(k, _)| model.guide_site(crate::graph::LatentId(k as u32)).is_some());
    if !model.nets.is_empty() && amortised {
        DEFAULT_HOLDOUT
    } else {
        0.0
    }
}

/// The split for a holdout fraction; none when there is nothing to hold out or too little left
/// to fill a batch.
pub fn split(model: &Model, fraction: f64) -> Option<Split> {
    let (plate, n, batch) = batched_plate(model)?;
    let heldout = (n as f64 * fraction).floor() as usize;
    let train = n - heldout.min(n);
    (heldout > 0 && train >= batch).then_some(Split {
        plate,
        train,
        heldout,
    })
}

/// The first batched plate's training rows under `split`, and its batch size.
fn train_rows(model: &Model, split: Option<Split>) -> Option<(usize, usize)> {
    let (plate, n, batch) = batched_plate(model)?;
    let rows = match split {
        Some(s) if s.plate == plate => s.train,
        _ => n,
    };
    Some((rows, batch))
}

/// Steps in one pass over the training rows: ⌊N/M⌋ for the first batched plate (a partial last
/// batch is dropped, and the next epoch reshuffles), 1 without batches.
pub fn steps_per_epoch(model: &Model, split: Option<Split>) -> usize {
    train_rows(model, split).map_or(1, |(rows, batch)| (rows / batch).max(1))
}

/// The rows a minibatched model's step ELBO is scaled to (the training rows of its first
/// batched plate); `None` without batches.
pub fn training_rows(model: &Model, fraction: f64) -> Option<usize> {
    train_rows(model, split(model, fraction)).map(|(rows, _)| rows)
}

/// ELBO, rate and distortion per row.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PerRow {
    pub elbo: f64,
    /// KL(q(z|x) ‖ p(z)), or its Monte-Carlo estimate.
    pub rate: f64,
    /// −E_q[log p(x|z)].
    pub distortion: f64,
}

impl PerRow {
    pub fn new(loglik: f64, latent: f64, rows: usize) -> PerRow {
        let n = rows as f64;
        PerRow {
            elbo: (loglik + latent) / n,
            rate: -latent / n,
            distortion: -loglik / n,
        }
    }
}

/// What one epoch reports.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochReport {
    /// 1-based.
    pub epoch: usize,
    pub epochs: usize,
    /// Steps done so far.
    pub step: usize,
    /// Wall seconds of this epoch's steps (held-out evaluation excluded).
    pub seconds: f64,
    /// The mean of this epoch's minibatch estimates.
    pub train: PerRow,
    /// On the held-out rows, one draw per row, after the epoch's last step.
    pub heldout: Option<PerRow>,
    /// The model's `term`s, the epoch's mean per row.
    pub terms: Vec<(String, f64)>,
    /// Decoded prior draws after the epoch (deep generative models).
    #[serde(default)]
    pub samples: Option<SampleCheck>,
}

/// Decoded draws from the prior, looked at after an epoch: how varied they are and, given a
/// classifier, how confidently and how evenly it reads them.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SampleCheck {
    pub draws: usize,
    /// The pixels' sd across the draws over their sd across data rows, averaged over pixels:
    /// near 1 for draws as varied as the data, near 0 when they collapse onto a few images.
    pub diversity: f64,
    pub classes: Option<ClassScore>,
}

/// A fixed classifier's reading of decoded draws (an Inception-Score analogue).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClassScore {
    /// The mean of each draw's largest class probability.
    pub confidence: f64,
    /// The entropy (nats) of the predicted classes' histogram: ln(classes) when even.
    pub entropy: f64,
    /// Each class's share of the draws.
    pub shares: Vec<f64>,
}

/// Below this share of the draws, a class counts as lost.
pub const LOST_CLASS: f64 = 0.05;
/// Below this diversity, the draws count as collapsed.
pub const COLLAPSED: f64 = 0.25;

impl SampleCheck {
    /// Why the draws look collapsed, if they do.
    pub fn collapse(&self) -> Option<String> {
        if self.diversity < COLLAPSED {
            return Some(format!(
                "decoded prior draws vary {:.0}% as much as the data: collapsed onto a few images, or not yet learned",
                100.0 * self.diversity
            ));
        }
        let c = self.classes.as_ref()?;
        let lost: Vec<String> = c
            .shares
            .iter()
            .enumerate()
            .filter(|(_, &s)| s < LOST_CLASS)
            .map(|(k, s)| format!("{k} ({:.1}%)", 100.0 * s))
            .collect();
        (!lost.is_empty()).then(|| {
            format!(
                "the classifier reads class{} {} in under {:.0}% of decoded prior draws: collapsed onto the others, or not yet learned",
                if lost.len() > 1 { "es" } else { "" },
                lost.join(", "),
                100.0 * LOST_CLASS
            )
        })
    }
}

/// Running sums of one epoch's minibatch estimates.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Accumulator {
    loglik: f64,
    latent: f64,
    terms: Vec<f64>,
    steps: usize,
    seconds: f64,
}

impl Accumulator {
    pub fn add(&mut self, loglik: f64, latent: f64, terms: &[f64], seconds: f64) {
        self.loglik += loglik;
        self.latent += latent;
        self.terms.resize(terms.len(), 0.0);
        for (a, t) in self.terms.iter_mut().zip(terms) {
            *a += t;
        }
        self.steps += 1;
        self.seconds += seconds;
    }

    pub fn is_empty(&self) -> bool {
        self.steps == 0
    }

    /// The epoch's means per row (the estimates are already scaled to `rows` rows): ELBO, the
    /// terms, and the seconds spent; then reset.
    pub fn take(&mut self, rows: usize) -> (PerRow, Vec<f64>, f64) {
        let k = self.steps.max(1) as f64;
        let out = (
            PerRow::new(self.loglik / k, self.latent / k, rows),
            self.terms.iter().map(|t| t / k / rows as f64).collect(),
            self.seconds,
        );
        *self = Accumulator::default();
        out
    }
}
