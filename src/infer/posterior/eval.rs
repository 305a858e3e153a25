//! `vinf eval`: importance-weighted estimates of log p(x) for the rows of a fitted model.
//!
//! For each row, k draws from the amortised guide give log (1/k) Σ p(x, z_i) / q(z_i | x), a
//! lower bound on log p(x) that tightens as k grows (Burda, Grosse & Salakhutdinov 2016); the
//! IWAE paper's held-out figures use k = 5000. The mean log weight of the same draws is the
//! ELBO, reported beside it.

use std::collections::HashMap;
use std::time::Instant;

use crate::backend::{Precision, Session};
use crate::diag::Diagnostics;
use crate::infer::{FitOptions, NamedTensor};
use crate::Loaded;

/// Values held in memory at once while evaluating (draws × rows × widest layer).
const WORKING_VALUES: usize = 1 << 24;

/// The outcome of `vinf eval`.
#[derive(Clone, Debug)]
pub struct Evaluation {
    pub k: usize,
    pub rows: usize,
    /// Which rows: `held-out rows` of the fit's split, or `all rows` of the data given.
    pub which: &'static str,
    /// Mean over rows of the importance-weighted bound, and its standard error.
    pub log_px: f64,
    pub se: f64,
    /// Mean over rows of the mean log weight: the ELBO.
    pub elbo: f64,
    pub seconds: f64,
}

impl Evaluation {
    pub fn describe(&self) -> String {
        format!(
            "log p(x) >= {:.3} ± {:.3} per row (importance-weighted, k = {}), ELBO {:.3}; {} {} in {:.1} s",
            self.log_px, self.se, self.k, self.elbo, self.rows, self.which, self.seconds
        )
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&serde_json::json!({
            "k": self.k,
            "rows": self.rows,
            "which": self.which,
            "log_px": self.log_px,
            "log_px_se": self.se,
            "elbo": self.elbo,
            "seconds": self.seconds,
        }))
        .expect("JSON of plain values")
    }
}

/// Evaluate a fit saved as `state`: every row of the data when the data were given on the
/// command line (`given`), else the held-out rows of the fit's split (all rows without one);
/// at most `max_rows` of them.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    loaded: &Loaded,
    state: &[NamedTensor],
    meta: &HashMap<String, String>,
    given: bool,
    k: usize,
    max_rows: Option<usize>,
    seed: u64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Evaluation, Diagnostics> {
    let start = Instant::now();
    let model = &loaded.model;
    let mut opts = FitOptions::from_settings(&model.settings, model);
    opts.guide = crate::infer::Guide::from_saved(meta);
    opts.reparam = crate::infer::Reparam::from_saved(meta);
    opts.precision = Precision::F32;
    opts.seed = seed;
    let n = crate::infer::epoch::batched_plate(model).map_or(0, |(_, n, _)| n);
    let split = crate::infer::epoch::split(model, opts.holdout).filter(|_| !given);
    let (rows, which): (Vec<usize>, _) = match split {
        Some(sp) => ((sp.train..sp.train + sp.heldout).collect(), "held-out rows"),
        None => ((0..n).collect(), "all rows"),
    };
    let rows: Vec<usize> = rows.into_iter().take(max_rows.unwrap_or(usize::MAX)).collect();
    let k = k.max(1);
    let width = widest(model);
    let chunk = (WORKING_VALUES / (k * width).max(1)).max(1);
    let mut s = Session::new(opts.precision);
    let total = rows.len();
    let per_row =
        crate::infer::svi::iw_per_row(&mut s, loaded, &opts, state, &rows, k, chunk, &mut |done| {
            progress(done, total)
        })?;
    let m = per_row.len().max(1) as f64;
    let log_px = per_row.iter().map(|r| r.0).sum::<f64>() / m;
    let var = per_row.iter().map(|r| (r.0 - log_px).powi(2)).sum::<f64>() / (m - 1.0).max(1.0);
    Ok(Evaluation {
        k,
        rows: per_row.len(),
        which,
        log_px,
        se: (var / m).sqrt(),
        elbo: per_row.iter().map(|r| r.1).sum::<f64>() / m,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The widest value one row makes: a network layer or a statement's value.
fn widest(model: &crate::graph::Model) -> usize {
    let nets = model
        .nets
        .iter()
        .flat_map(|n| n.widths.iter().filter_map(|d| d.value()));
    let sites = model.sites.iter().map(|s| {
        s.dist
            .value_shape()
            .iter()
            .filter_map(|d| d.value())
            .product::<usize>()
    });
    nets.chain(sites).max().unwrap_or(1)
}
