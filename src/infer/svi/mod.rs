//! Black-box reparameterised variational inference.
//!
//! Each step draws S samples from the guide (the automatic Gaussian over unconstrained values,
//! or the model's `guide` block), evaluates every statement of the model on all of them at once,
//! and climbs the ELBO estimate by stochastic gradients:
//!
//! * L^A (`estimator = mc`): mean over samples of log p(x, z) − log q(z);
//! * L^B (`estimator = analytic`): the expected log-likelihood minus KL(q ‖ prior), the KL in
//!   closed form where guide and prior are both Normal with fixed prior parameters, and by
//!   Monte Carlo otherwise.
//!
//! Batched plates are subsampled each step (a fresh permutation each epoch) and their
//! statements scaled by N/M. Objectives other than the ELBO (`objective` lines) each get their
//! own forward pass, backward pass and optimiser over their own parameter groups.
//!
//! The rooms, each below the ones that use it:
//! * `engine` (with `engine/auto`): batches, the forward pass, draws, log densities;
//! * `guide`, `optim`: the learnables and the automatic guide; the optimisers;
//! * `restored`: the after-fit tools' engine, built from a fit's saved tensors;
//! * `objective`: what a step climbs, and the faults a step ends in;
//! * `state`: the `TrainerState`, saved and restored whole through
//!   `checkpoint` (the file format);
//! * `trainer`: one step at a time, back-off, epochs, the result (`finish`);
//! * this file: [`fit`], the loop on top of the trainer.
//!
//! Nothing here imports `report/` or the posterior tools (`trust`, `sample`, `eval`,
//! `pictures`; `restored` calls `psis::iw_bound`, a log-mean-exp); they import `restored`,
//! never the trainer.

pub mod checkpoint;
mod compiled;
mod engine;
mod finish;
pub mod guide;
mod objective;
pub mod optim;
pub mod pathfinder;
pub mod reparam;
mod restored;
mod state;
mod support;
mod trainer;

pub(super) use engine::{mv_normal, site_log_prob};
pub use restored::{draw_guide, draw_guide_at, iw_per_row, log_weights, Restored};
pub use support::check_supported;

use super::{FitOptions, FitOutput, Progress, Status};
use crate::diag::Diagnostics;
use crate::Loaded;
// The engine's tests name `epoch` from here (`super::super::epoch`).
#[cfg(test)]
use crate::infer::epoch;
use trainer::Trainer;

/// Looks at a deep generative model's decoded prior draws after an epoch, given the
/// learnables as they stand and how many draws to decode (the caller's: the tools that decode
/// sit above the engine).
pub type SampleProbe<'a> =
    dyn Fn(&[crate::infer::NamedTensor], usize) -> Option<crate::infer::epoch::SampleCheck> + 'a;

/// Fit by stochastic gradients: step until the stop rule fires, the steps run out, the fit is
/// interrupted (Ctrl-C: checkpointed to resume) or a fault outlasts the back-offs.
pub fn fit(
    loaded: &Loaded,
    opts: &FitOptions,
    progress: &mut dyn FnMut(Progress),
    probe: &SampleProbe,
) -> Result<FitOutput, Diagnostics> {
    let mut t = Trainer::new(loaded, opts)?;
    let plan = opts.checkpoint.as_ref();
    if let Some(p) = plan {
        if let Some(ck) = &p.resume {
            t.resume(ck)?;
            if p.extend {
                t.restart_stop_rule();
            }
        }
    }
    let mut status = Status::at_step_limit(t.tol);
    while t.state.step < t.steps {
        let elbo = match t.step() {
            Ok(elbo) => elbo,
            Err(fault) => {
                let d = fault.diagnostic(&loaded.model, &t.eng.learn);
                if t.state.backoffs < opts.backoff {
                    let lr = t.back_off(&d);
                    progress(Progress::Backoff {
                        step: t.state.step + 1,
                        lr,
                        reason: d.message,
                    });
                    continue;
                }
                // The checkpoint, if any, stays: the fit can resume from before the fault.
                return Ok(t.diverge(d, progress));
            }
        };
        let step = t.state.step;
        progress(Progress::Step {
            step,
            total: t.steps,
            elbo,
            unit: "step",
        });
        let converged = t.state.stop.active() && step % crate::infer::stop::WINDOW == 0 && {
            let score = t.score_average();
            let drift = t.guide_drift();
            t.state.stop.observe(score, drift)
        };
        let last = step == t.steps || converged;
        if step % t.per_epoch == 0 || last {
            t.report_epoch(progress, probe, last);
        }
        if converged {
            status = Status::Converged;
            break;
        }
        if let Some(p) = plan {
            let interrupted = p.interrupted();
            if (step % p.every.max(1) == 0 && step < t.steps) || interrupted {
                t.save(p, None).map_err(Diagnostics::from)?;
                progress(Progress::Checkpoint { step });
            }
            if interrupted {
                status = Status::Interrupted;
                break;
            }
        }
    }
    if let Some(p) = plan {
        // A finished fit's final state stays, marked as ended, so that `--resume DIR --steps N`
        // can extend it; an interrupted fit's checkpoint is already there to resume from.
        if p.keep_final && status != Status::Interrupted && t.state.step > 0 {
            t.save(p, Some(status)).map_err(Diagnostics::from)?;
        }
    }
    Ok(t.finish(status))
}
