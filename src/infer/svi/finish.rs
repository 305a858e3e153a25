//! What a gradient fit returns: summaries from draws of the fitted guide, the params in their
//! supports, the learnables to save, and the reported ELBO (the trace's last window).
//!
//! Never imports the trainer's loop, the checkpoint, `report/` or the posterior tools.

use std::time::Instant;

use super::engine::Engine;
use crate::backend::Session;
use crate::infer::{FitOptions, FitOutput, LatentSummary, Method, NamedTensor, Status, StopRule};
use crate::interpret::{Layout, PlateState, Value};

/// Summaries of the fitted guide (`values` its learnables'), and the tensors to save.
#[allow(clippy::too_many_arguments)]
pub(super) fn finish(
    s: &mut Session,
    eng: &mut Engine,
    values: &[Vec<f64>],
    opts: &FitOptions,
    trace: Vec<f64>,
    status: Status,
    iterations: usize,
    start: Instant,
) -> FitOutput {
    let model = eng.model;
    let time_s = start.elapsed().as_secs_f64();
    // Summaries come from draws of the guide with every plate whole. Latents with more than
    // SUMMARY_ELEMENTS values, and the codes of models with networks (whose guide would run the
    // encoder on every data point for every draw), are left to params.safetensors.
    const DRAWS: usize = 1000;
    const SUMMARY_ELEMENTS: usize = 10_000;
    let draws = DRAWS;
    let plates = PlateState::whole(model);
    let summarise: Vec<bool> = model
        .latents
        .iter()
        .map(|l| {
            let shape = model.full_shape(&l.plates, &l.shape);
            shape.iter().map(|&d| d as f64).product::<f64>() <= SUMMARY_ELEMENTS as f64
        })
        .collect();
    let mut latents_out = Vec::new();
    if summarise.iter().any(|b| *b) && model.nets.is_empty() {
        s.begin();
        let (_, values) = eng.forward(s, &plates, draws, opts.seed ^ 0xabcdef, iterations, false);
        for (k, l) in model.latents.iter().enumerate() {
            if !summarise[k] {
                continue;
            }
            let Some(v) = &values[k] else { continue };
            let vals = s.values(&v.arr);
            let per = vals.len() / draws;
            let shape = model.full_shape(&l.plates, &l.shape);
            latents_out.push(LatentSummary::from_draws(&l.name, shape, &vals, draws, per));
        }
    }
    s.begin();
    let params = eng
        .params
        .iter()
        .enumerate()
        .map(|(k, (li, b))| {
            let e = &eng.learn.entries[*li];
            let z = Value::new(s.array(&values[*li], &e.shape), Layout::of_shape(e.shape.clone()));
            let (x, _) = b.forward(s, &z);
            NamedTensor {
                name: model.params[k].name.clone(),
                shape: x.lay.shape.clone(),
                values: s.values(&x.arr),
            }
        })
        .collect();
    let state = eng.learn.named(values);
    let window = StopRule::window_for(trace.len());
    let tail = &trace[trace.len().saturating_sub(window)..];
    let elbo = if tail.is_empty() {
        f64::NAN
    } else {
        tail.iter().sum::<f64>() / tail.len() as f64
    };
    FitOutput {
        method: Method::Svi,
        reasons: Vec::new(),
        status,
        iterations,
        elbo_trace: trace,
        elbo,
        time_s,
        latents: latents_out,
        params,
        state,
        notes: Vec::new(),
        diverged: None,
        guide: None,
        loop_s: 0.0,
        trust: None,
        epochs: Vec::new(),
        grad_evals: 0,
        escalation: None,
        rows: None,
        marginals: Vec::new(),
        reparam: Some(opts.reparam.name()),
        noncentred: eng
            .auto()
            .latents()
            .iter()
            .filter(|a| a.noncentred.is_some())
            .map(|a| model.latent(a.latent).name.clone())
            .collect(),
        derived: Vec::new(),
    }
}
