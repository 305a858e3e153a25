//! The loop: restarts, sweeps of updates, the exact ELBO after each, the stop rule and
//! progress; the best restart is kept.
//!
//! It knows no family: it calls [`Ctx::init`], [`Ctx::update`] and [`Ctx::elbo`]. Never
//! imports a family's file, `svi`, the posterior tools or anything that prints.

use std::time::Instant;

use rand_chacha::ChaCha8Rng;

use super::family::Q;
use super::Ctx;
use crate::graph::LatentId;
use crate::infer::{FitOptions, Progress, Status};

/// One restart's outcome.
pub(super) struct Run {
    pub elbo: f64,
    pub q: Vec<Option<Q>>,
    pub trace: Vec<f64>,
    pub status: Status,
    pub sweeps: usize,
}

/// Run every restart (updates in `order` each sweep) and return the best, with the seconds
/// spent sweeping.
pub(super) fn best_run(
    ctx: &mut Ctx,
    order: &[LatentId],
    opts: &FitOptions,
    rng: &mut ChaCha8Rng,
    progress: &mut dyn FnMut(Progress),
) -> (Run, f64) {
    let mut best: Option<Run> = None;
    let mut loop_s = 0.0;
    for restart in 0..opts.restarts.max(1) {
        if opts.restarts > 1 {
            progress(Progress::Restart {
                restart: restart + 1,
                restarts: opts.restarts,
            });
        }
        ctx.init(restart, rng);
        let sweeps_start = Instant::now();
        let mut trace = Vec::new();
        let mut sweeps = 0;
        let mut prev = f64::NEG_INFINITY;
        let max_sweeps = opts.steps.unwrap_or(crate::infer::CAVI_SWEEPS);
        let tol = opts.tol.unwrap_or(crate::infer::CAVI_TOL);
        let mut status = Status::at_step_limit(tol);
        while sweeps < max_sweeps {
            for &l in order {
                ctx.update(l);
            }
            let elbo = ctx.elbo();
            sweeps += 1;
            trace.push(elbo);
            progress(Progress::Step {
                step: sweeps,
                total: max_sweeps,
                elbo,
                unit: "sweep",
            });
            if !elbo.is_finite() {
                status = Status::Diverged;
                break;
            }
            if tol > 0.0 && prev.is_finite() && (elbo - prev).abs() <= tol * elbo.abs() {
                status = Status::Converged;
                break;
            }
            prev = elbo;
            if opts.checkpoint.as_ref().is_some_and(|p| p.interrupted()) {
                status = Status::Interrupted;
                break;
            }
        }
        loop_s += sweeps_start.elapsed().as_secs_f64();
        let last = *trace.last().unwrap_or(&f64::NAN);
        if best.as_ref().is_none_or(|b| last > b.elbo || !b.elbo.is_finite()) {
            best = Some(Run {
                elbo: last,
                q: ctx.q.clone(),
                trace,
                status,
                sweeps,
            });
        }
        if status == Status::Interrupted {
            break;
        }
    }
    (best.expect("at least one restart"), loop_s)
}
