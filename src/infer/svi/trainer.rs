//! Training: an engine, a session and a [`TrainerState`], moved one step at a time.
//!
//! [`Trainer::step`] draws the next minibatches, runs one forward and backward pass per
//! objective and, when every ELBO estimate and gradient is finite, moves each objective's
//! learnables with its optimiser and updates the tail average, the trace and the epoch's sums.
//! Otherwise it changes nothing but the shuffler and returns the [`Fault`]. The fit loop
//! (`mod.rs`) decides what follows: back off ([`Trainer::back_off`]), stop ([`Trainer::diverge`]),
//! report an epoch, checkpoint, or finish ([`Trainer::finish`]).
//!
//! Never imports the after-fit tools (`restored.rs`), `report/` or the posterior tools.

use std::time::Instant;

use super::checkpoint::{Checkpoint, Plan};
use super::compiled::{agree, Compiled, Pass, Planned};
use super::engine::{sample_mean, Engine};
use super::finish::finish;
use super::objective::{objectives, Fault, Objective};
use super::optim::{self, Optimizer};
use super::pathfinder;
use super::state::{TrainerState, SNAPSHOT_EVERY};
use super::support::{check_split, check_supported};
use crate::backend::{Array, Grads, Recording, Session};
use crate::diag::{Diagnostic, Diagnostics};
use crate::graph::ZipFn;
use crate::infer::epoch::{self, EpochReport, PerRow, Split};
use crate::infer::memory::{work_per_draw, WORK_PER_CHUNK};
use crate::infer::svi::SampleProbe;
use crate::infer::{FitOptions, FitOutput, Init, Progress, Status, StopRule};
use crate::interpret::PlateState;
use crate::Loaded;

/// Draws used to choose between the averaged and the last parameters.
const COMPARE_DRAWS: usize = 100;
/// Most draws of the stop rule's score at the end of each window; fewer (down to 8) where a
/// draw evaluates many values, so that one score stays within a few chunks' work.
const STOP_DRAWS: usize = 128;
/// Decoded prior draws looked at after each epoch: a class share's sd is then at most 2.2
/// points, enough to see a collapse (a class near 0%).
const EPOCH_CHECK_DRAWS: usize = 500;
/// And after the last, the figure the fit is judged by: an sd of at most 1.1 points, and 0.6
/// near the 5% that counts a class as lost.
const FINAL_CHECK_DRAWS: usize = 2000;

pub(super) struct Trainer<'a> {
    pub(super) s: Session,
    pub(super) eng: Engine<'a>,
    pub(super) state: TrainerState,
    opts: &'a FitOptions,
    objectives: Vec<Objective>,
    /// The most steps.
    pub(super) steps: usize,
    /// The stop rule's tolerance.
    pub(super) tol: f64,
    /// The held-out rows, if any.
    split: Option<Split>,
    /// Steps per epoch, and epochs in all.
    pub(super) per_epoch: usize,
    epochs_total: usize,
    /// What the start cost (Pathfinder's points), and what it said.
    start_evals: usize,
    start_notes: Vec<String>,
    /// Draws of each stop-rule score.
    stop_draws: usize,
    /// After a Pathfinder start, its marginal sds: the guide's location steps are scaled by the
    /// larger of these and the guide's own sds.
    preconditioned: Option<crate::infer::pathfinder::Gaussian>,
    /// When the fit began, and when this run's loop did.
    start: Instant,
    loop_start: Instant,
    /// Whether steps run as a compiled plan.
    compiled: Compiled,
}

impl<'a> Trainer<'a> {
    /// A trainer before its first step, or a refusal of the model.
    pub(super) fn new(loaded: &'a Loaded, opts: &'a FitOptions) -> Result<Trainer<'a>, Diagnostics> {
        let model = &loaded.model;
        check_supported(model)?;
        let split = epoch::split(model, opts.holdout);
        if let Some(sp) = split {
            check_split(model, sp)?;
        }
        let start = Instant::now();
        let s = Session::new(opts.precision);
        let (mut eng, shuffler) = Engine::with_shuffler(loaded, opts, &s);
        let (start_evals, start_notes, preconditioned) = initialise(loaded, opts, &s, &mut eng);
        let objectives = objectives(model, &eng.learn);
        let config = optim::Config {
            kind: opts.optimizer,
            lr: opts.lr,
            decay: opts.decay,
            momentum: opts.momentum,
            clip: opts.clip,
        };
        let optimizers: Vec<Optimizer> = objectives
            .iter()
            .map(|o| {
                Optimizer::new(
                    config.clone(),
                    &o.members
                        .iter()
                        .map(|&i| eng.learn.entries[i].host.len())
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        let steps = opts.steps.unwrap_or(crate::infer::SVI_STEPS);
        let tol = opts.tol.unwrap_or(crate::infer::SVI_TOL);
        // The values move into the state; the engine keeps their tensors.
        let params = eng
            .learn
            .entries
            .iter_mut()
            .map(|e| std::mem::take(&mut e.host))
            .collect();
        let state = TrainerState::new(params, optimizers, shuffler, tol, steps, opts.backoff > 0);
        let per_epoch = epoch::steps_per_epoch(model, split);
        let mut start_notes = start_notes;
        let compiled = match super::compiled::unsupported(model, &objectives) {
            _ if !opts.compiled => Compiled::Off,
            Some(why) => {
                start_notes.push(format!("every step ran eagerly: {why}"));
                Compiled::Off
            }
            None => Compiled::Untried,
        };
        Ok(Trainer {
            s,
            eng,
            state,
            opts,
            objectives,
            steps,
            tol,
            split,
            start_evals,
            start_notes,
            preconditioned,
            stop_draws: ((4.0 * WORK_PER_CHUNK / work_per_draw(model)) as usize).clamp(8, STOP_DRAWS),
            per_epoch,
            epochs_total: steps.div_ceil(per_epoch),
            start,
            loop_start: Instant::now(),
            compiled,
        })
    }

    /// Continue from a checkpoint of the same fit.
    pub(super) fn resume(&mut self, ck: &Checkpoint) -> Result<(), Diagnostics> {
        self.state.resume(ck, &self.eng.learn, self.opts.backoff > 0)?;
        self.upload();
        if self.preconditioned.is_some() {
            self.refresh_step_scales();
        }
        self.loop_start = Instant::now();
        Ok(())
    }

    /// Write the state's values into the engine's tensors.
    fn upload(&mut self) {
        self.eng.learn.upload(&self.s, &self.state.params);
    }

    /// Loop seconds so far, earlier runs included.
    fn loop_seconds(&self) -> f64 {
        self.state.loop_s + self.loop_start.elapsed().as_secs_f64()
    }

    /// Save the state as the plan's checkpoint.
    /// Write a checkpoint; `ended` names how the fit ended when this is its final state.
    pub(super) fn save(&self, plan: &Plan, ended: Option<Status>) -> Result<(), Diagnostic> {
        let mut ck = self
            .state
            .checkpoint(&self.eng.learn, plan.record.clone(), self.loop_seconds());
        ck.state.ended = ended.map(|s| s.name().to_string());
        ck.save(&plan.path())
    }

    /// A fresh stop rule, for a finished fit extended by more steps.
    pub(super) fn restart_stop_rule(&mut self) {
        self.state.stop = StopRule::new(self.tol);
    }

    /// One step: the finite ELBO estimate it climbed from, or the fault that stopped it (then
    /// nothing but the minibatch shuffler has moved).
    pub(super) fn step(&mut self) -> Result<f64, Fault> {
        let step_start = Instant::now();
        let step = self.state.step;
        if self.preconditioned.is_some() && step.is_multiple_of(crate::infer::stop::WINDOW) {
            self.refresh_step_scales();
        }
        let plates: Vec<PlateState> = self.eng.next_batches(&mut self.state.shuffler);
        let noise_seed = self
            .opts
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(step as u64 + 1);
        let pass = match &mut self.compiled {
            Compiled::Off => self.eager_pass(&plates, noise_seed, false)?.0,
            Compiled::Running(planned) => {
                let noise = planned.noise(noise_seed);
                let members = &self.objectives[0].members;
                match planned.run(&self.state.params, &noise, members) {
                    Some(pass) => pass,
                    // The eager pass locates what is not finite.
                    None => self.eager_pass(&plates, noise_seed, false)?.0,
                }
            }
            Compiled::Checking(_) => {
                let (eager, _) = self.eager_pass(&plates, noise_seed, false)?;
                let Compiled::Checking(mut planned) = std::mem::replace(&mut self.compiled, Compiled::Off)
                else {
                    unreachable!("matched above")
                };
                let noise = planned.noise(noise_seed);
                let members = &self.objectives[0].members;
                let verdict = match planned.run(&self.state.params, &noise, members) {
                    Some(p) => agree(&p, &eager, self.opts.precision).map(|()| p),
                    None => Err("the plan's pass is not finite where the eager one is".to_string()),
                };
                // Once the plan is trusted, its pass moves the params, on this step as on
                // every later one: a fit resumed mid-way (recording afresh) then takes the very
                // steps the unbroken fit took, not ones rounded the eager way.
                match verdict {
                    Ok(p) => {
                        self.compiled = Compiled::Running(planned);
                        p
                    }
                    Err(why) => {
                        self.plan_off(&why);
                        eager
                    }
                }
            }
            Compiled::Untried => {
                let (eager, recorded) = self.eager_pass(&plates, noise_seed, true)?;
                match recorded
                    .expect("recorded")
                    .and_then(|(rec, outs)| self.check_plan(&rec, &outs, noise_seed, &eager))
                {
                    Ok((planned, p)) => {
                        self.compiled = Compiled::Checking(Box::new(planned));
                        p
                    }
                    Err(why) => {
                        self.plan_off(&why);
                        eager
                    }
                }
            }
        };
        self.update(pass.grads, pass.elbo);
        self.state.epoch_acc.add(
            pass.parts.0,
            pass.parts.1,
            &pass.terms,
            step_start.elapsed().as_secs_f64(),
        );
        Ok(pass.elbo)
    }

    /// Give up on the plan: every step from here runs eagerly, and the notes say why.
    fn plan_off(&mut self, why: &str) {
        self.compiled = Compiled::Off;
        self.start_notes.push(format!("every step ran eagerly: {why}"));
    }

    /// The plan of a recorded pass, with its own pass, if it reproduces that pass (its ELBO,
    /// parts and gradients at the same params and noise) and its noise is the guide's stream for
    /// `noise_seed`.
    fn check_plan(
        &self,
        rec: &Recording,
        outs: &[usize],
        noise_seed: u64,
        eager: &Pass,
    ) -> Result<(Planned, Pass), String> {
        let mut planned = Planned::new(rec, outs, self.opts.precision, &self.eng.learn)?;
        let noise = planned.noise(noise_seed);
        if noise.as_slice() != rec.noise_values() {
            return Err("the pass draws noise the plan cannot replay".to_string());
        }
        let members = &self.objectives[0].members;
        let p = planned
            .run(&self.state.params, &noise, members)
            .ok_or_else(|| "the plan's pass is not finite where the eager one is".to_string())?;
        agree(&p, eager, self.opts.precision)?;
        Ok((planned, p))
    }

    /// One eager pass per objective (recording the first with `record`: then also the
    /// recording, or why it cannot be replayed). Moves nothing.
    #[allow(clippy::type_complexity)]
    fn eager_pass(
        &mut self,
        plates: &[PlateState],
        noise_seed: u64,
        record: bool,
    ) -> Result<(Pass, Option<Result<(Recording, Vec<usize>), String>>), Fault> {
        let step = self.state.step;
        let model = self.eng.model;
        let s = &mut self.s;
        let eng = &mut self.eng;
        let mut parts = (f64::NAN, f64::NAN);
        let mut term_values: Vec<f64> = Vec::new();
        let mut elbo_now = f64::NAN;
        let mut all_grads: Vec<Vec<Vec<f64>>> = Vec::new();
        let mut recorded = None;
        for (g, o) in self.objectives.iter().enumerate() {
            s.begin();
            let record = record && g == 0;
            if record {
                s.start_recording();
            }
            let (totals, _) = eng.forward(s, plates, self.opts.samples, noise_seed, step, true);
            let ll = sample_mean(s, &totals.loglik);
            let lat = sample_mean(s, &totals.latent);
            let elbo = s.zip(ZipFn::Add, &ll, &lat);
            let term_means: Vec<Array> = if g == 0 {
                totals.terms.iter().map(|t| sample_mean(s, t)).collect()
            } else {
                Vec::new()
            };
            let loss = o.loss(s, model, &totals, &ll, &lat, elbo.clone(), step);
            if record {
                let outs: Vec<&Array> = [&loss, &elbo, &ll, &lat].into_iter().chain(&term_means).collect();
                recorded = Some(s.finish_recording(&outs));
            }
            elbo_now = s.value(&elbo);
            if g == 0 {
                parts = (s.value(&ll), s.value(&lat));
                term_values = term_means.iter().map(|m| s.value(m)).collect();
            }
            if !elbo_now.is_finite() {
                let site = totals
                    .per_site
                    .iter()
                    .find(|(_, v)| s.values(&v.arr).iter().any(|x| !x.is_finite()))
                    .map(|(k, _)| *k);
                return Err(Fault::Elbo { step, site });
            }
            let mut grads: Grads = s.backward(&loss);
            let gs: Vec<Vec<f64>> = o
                .members
                .iter()
                .map(|&i| s.grad(&mut grads, &eng.learn.entries[i].tensor))
                .collect();
            if let Some(k) = gs.iter().position(|g| g.iter().any(|x| !x.is_finite())) {
                return Err(Fault::Gradient {
                    step,
                    learnable: o.members[k],
                    elbo: elbo_now,
                });
            }
            all_grads.push(gs);
        }
        let pass = Pass {
            elbo: elbo_now,
            parts,
            terms: term_values,
            grads: all_grads,
        };
        Ok((pass, recorded))
    }

    /// A finite step: remember the values, move every objective's learnables by its own
    /// gradients (`grads`, per objective per member), then the average, trace and snapshots.
    fn update(&mut self, grads: Vec<Vec<Vec<f64>>>, elbo: f64) {
        let st = &mut self.state;
        for (p, v) in st.params.iter().zip(st.last_good.iter_mut()) {
            v.clone_from(p);
        }
        for ((o, opt), gs) in self.objectives.iter().zip(&mut st.optimizers).zip(grads) {
            let mut hosts: Vec<Vec<f64>> = o
                .members
                .iter()
                .map(|&i| std::mem::take(&mut st.params[i]))
                .collect();
            {
                let mut refs: Vec<&mut Vec<f64>> = hosts.iter_mut().collect();
                opt.step(&mut refs, &gs);
            }
            for (&i, h) in o.members.iter().zip(hosts) {
                st.params[i] = h;
            }
        }
        self.eng.learn.upload(&self.s, &st.params);
        let w = 1.0 / average_horizon(st.step);
        for (avg, p) in st.average.iter_mut().zip(&st.params) {
            for (a, x) in avg.iter_mut().zip(p) {
                *a += w * (x - *a);
            }
        }
        let guide = self.eng.auto().learnables();
        st.stop
            .track(st.step, guide.iter().flat_map(|&i| st.params[i].iter()));
        st.trace.push(elbo);
        st.step += 1;
        if self.opts.backoff > 0 && st.step.is_multiple_of(SNAPSHOT_EVERY) {
            let newer = st.params.clone();
            st.snapshots[0] = std::mem::replace(&mut st.snapshots[1], newer);
        }
    }

    /// After a fault: go back to values at least one snapshot window old (the steps just before
    /// a blow-up are usually already bad), with half the learning rate, fresh optimiser moments
    /// and a fresh stop rule (its windows hold the blow-up). Returns the new learning rate.
    pub(super) fn back_off(&mut self, fault: &Diagnostic) -> f64 {
        let st = &mut self.state;
        for (p, v) in st.params.iter_mut().zip(&st.snapshots[0]) {
            p.clone_from(v);
        }
        self.eng.learn.upload(&self.s, &st.params);
        st.snapshots[1] = st.snapshots[0].clone();
        st.average.clone_from(&st.snapshots[0]);
        st.last_good.clone_from(&st.snapshots[0]);
        st.stop = StopRule::new(self.tol);
        st.backoffs += 1;
        for o in &mut st.optimizers {
            o.config.lr *= 0.5;
            o.forget_moments();
        }
        let lr = st.optimizers[0].config.lr;
        st.backoff_notes.push(format!(
            "step {}: {}; learning rate halved to {lr:e}",
            st.step + 1,
            fault.message
        ));
        lr
    }

    /// Stop on a fault, keeping the last finite values: the fit as it stands, diverged.
    pub(super) fn diverge(mut self, fault: Diagnostic, progress: &mut dyn FnMut(Progress)) -> FitOutput {
        self.state.params.clone_from(&self.state.last_good);
        self.upload();
        let d = fault.help(if self.opts.backoff > 0 {
            format!(
                "the learning rate was halved {} times and the fit still failed; check priors and data scales, \
                 or clip gradients (`--clip`); the last finite parameters are kept",
                self.opts.backoff
            )
        } else {
            "lower the learning rate (`--lr`), let vi halve it on such faults (`--lr-backoff 5`), clip gradients \
             (`--clip`), or check priors and data scales; the last finite parameters are kept"
                .to_string()
        });
        progress(Progress::Diverged(d.clone()));
        let loop_s = self.loop_seconds();
        let mut out = self.output(Status::Diverged, loop_s);
        out.diverged = Some(d);
        out
    }

    /// Report the epoch just ended (models with a batched plate): the training estimates'
    /// means and, with held-out rows, the ELBO on them; after the `last`, the decoded prior
    /// draws looked at more closely.
    pub(super) fn report_epoch(
        &mut self,
        progress: &mut dyn FnMut(Progress),
        probe: &SampleProbe,
        last: bool,
    ) {
        let model = self.eng.model;
        let Some((plate, _, _)) = epoch::batched_plate(model) else {
            return;
        };
        let st = &mut self.state;
        if st.epoch_acc.is_empty() {
            return;
        }
        let (train, terms, seconds) = st.epoch_acc.take(self.eng.train_len[plate.index()]);
        let terms = model.terms.iter().map(|t| t.name.clone()).zip(terms).collect();
        let heldout = self
            .split
            .map(|sp| heldout_elbo(&mut self.eng, &mut self.s, sp, self.opts.seed ^ 0x4e1d, st.step));
        let samples = if model.nets.is_empty() {
            None
        } else {
            let draws = if last {
                FINAL_CHECK_DRAWS
            } else {
                EPOCH_CHECK_DRAWS
            };
            probe(&self.eng.learn.named(&st.params), draws)
        };
        let report = EpochReport {
            epoch: st.epochs.len() + 1,
            epochs: self.epochs_total,
            step: st.step,
            seconds,
            train,
            heldout,
            terms,
            samples,
        };
        progress(Progress::Epoch(report.clone()));
        st.epochs.push(report);
    }

    /// The fit's result, ended with `status` (not diverged): the tail average unless it scores
    /// clearly worse than the last iterate, the guide's summaries and the tensors to save.
    pub(super) fn finish(mut self, status: Status) -> FitOutput {
        let loop_s = self.loop_seconds();
        // Custom objectives (adversarial ones) have no single score to compare: they keep the
        // last iterate.
        if status != Status::Diverged && self.eng.model.objectives.is_empty() {
            self.keep_the_better_of_average_and_last();
        }
        self.output(status, loop_s)
    }

    /// Scale the guide's location steps by its sds as they stand (every window: the guide's
    /// sds move slowly).
    fn refresh_step_scales(&mut self) {
        let Some(start) = &self.preconditioned else { return };
        let floor = start.sd();
        let scales = pathfinder::step_scales(self.eng.auto(), &self.state.params, &floor);
        let whitening = pathfinder::whitening(self.eng.auto(), &self.state.params, start);
        for (o, opt) in self.objectives.iter().zip(&mut self.state.optimizers) {
            for (k, &i) in o.members.iter().enumerate() {
                if let Some((_, sc)) = scales.iter().find(|(j, _)| *j == i) {
                    opt.set_step_scales(k, sc.clone());
                }
            }
            if let Some((locs, chol)) = &whitening {
                let members: Option<Vec<usize>> = locs
                    .iter()
                    .map(|l| o.members.iter().position(|m| m == l))
                    .collect();
                if let Some(members) = members {
                    opt.set_whitening(members, chol.clone());
                }
            }
        }
    }

    /// The stop rule's score: the ELBO of the tail-averaged parameters under the same draws
    /// and rows at every call (common random numbers), so that differences between calls are
    /// the parameters' progress rather than Monte-Carlo noise.
    pub(super) fn score_average(&mut self) -> f64 {
        let seed = self.opts.seed ^ 0x5c0e;
        self.eng.learn.upload(&self.s, &self.state.average);
        let plates = self.eng.next_batches_from(0);
        self.s.no_grad();
        let (t, _) = self
            .eng
            .forward(&mut self.s, &plates, self.stop_draws, seed, self.state.step, true);
        let e = crate::interpret::zip(&mut self.s, ZipFn::Add, &t.loglik, &t.latent);
        let m = sample_mean(&mut self.s, &e);
        let score = self.s.value(&m);
        self.state.stop_evals += self.stop_draws;
        self.upload();
        score
    }

    /// How far the guide is still travelling: the stop rule's [`StopRule::drift`] at the tail
    /// average, locations (and a full-rank factor's rows) in units of the guide's sd there, raw
    /// scales in their own units (about relative changes of the sd).
    pub(super) fn guide_drift(&self) -> f64 {
        let auto = self.eng.auto();
        let guide = auto.learnables();
        let sds = pathfinder::step_scales(auto, &self.state.average, &[]);
        let units: Vec<f64> = guide
            .iter()
            .flat_map(|&i| match sds.iter().find(|(j, _)| *j == i) {
                Some((_, sd)) => sd.clone(),
                None => vec![1.0; self.state.average[i].len()],
            })
            .collect();
        self.state.stop.drift(
            guide.iter().flat_map(|&i| self.state.average[i].iter()),
            units.iter(),
        )
    }

    fn keep_the_better_of_average_and_last(&mut self) {
        let (step, seed) = (self.state.step, self.opts.seed);
        let last = self.state.params.clone();
        let score = |eng: &mut Engine, s: &mut Session| {
            // The same draws (and batches) for both candidates.
            let plates = eng.next_batches_from(step);
            s.no_grad();
            let (t, _) = eng.forward(s, &plates, COMPARE_DRAWS, seed ^ 0xa11e, step, true);
            let e = crate::interpret::zip(s, ZipFn::Add, &t.loglik, &t.latent);
            let m = sample_mean(s, &e);
            s.value(&m)
        };
        let at_last = score(&mut self.eng, &mut self.s);
        for (p, avg) in self.state.params.iter_mut().zip(&self.state.average) {
            p.clone_from(avg);
        }
        self.upload();
        let at_average = score(&mut self.eng, &mut self.s);
        // The average unless it scores clearly worse: within 0.1 nat the two are as good, and the average carries far less of the optimiser's jitter (picking
        // the last iterate on a tie would put that jitter back into the answer). A NaN score
        // for the average also falls back to the last iterate.
        let keep_average = at_average >= at_last - 0.1;
        if !keep_average {
            self.state.params = last;
            self.upload();
        }
    }

    /// The output for the values as they stand, after `loop_s` seconds of steps.
    fn output(self, status: Status, loop_s: f64) -> FitOutput {
        let Trainer {
            mut s,
            mut eng,
            state,
            opts,
            start,
            start_evals,
            start_notes,
            ..
        } = self;
        let mut out = finish(
            &mut s,
            &mut eng,
            &state.params,
            opts,
            state.trace,
            status,
            state.step,
            start,
        );
        out.loop_s = loop_s;
        out.epochs = state.epochs;
        out.notes.extend(start_notes);
        out.notes.extend(state.backoff_notes);
        out.grad_evals = start_evals + state.step * opts.samples + state.stop_evals;
        out
    }
}

/// The tail average's horizon after `step` steps: half the steps so far (at least 10).
///
/// Tail averaging (an exponential moving average of the iterates) removes the optimiser's
/// jitter around the optimum; at the end it is kept unless it scores clearly worse than the
/// last iterate (networks, whose weights do not average, keep the last). The stop rule scores
/// the average, so a lagging average only delays the stop, and one over half the fit leaves a
/// few hundredths of a posterior sd of jitter where a 100-step one left a tenth or more. It
/// depends on the step alone, so `--tol 0 --steps n` repeats a fit that stopped at n.
fn average_horizon(step: usize) -> f64 {
    (step as f64 / 2.0).max(10.0).min(step as f64 + 1.0)
}

/// Start the automatic guide where single-path Pathfinder puts it (unless asked not to, or it
/// cannot see the whole posterior): its best normal approximation gives the locations and
/// scales. Returns the points it scored, a note, and (when it started there) the approximation,
/// whose marginal sds scale the guide's steps and whose factor whitens a mean-field guide's.
fn initialise(
    loaded: &Loaded,
    opts: &FitOptions,
    s: &Session,
    eng: &mut Engine,
) -> (usize, Vec<String>, Option<crate::infer::pathfinder::Gaussian>) {
    if opts.init != Init::Pathfinder
        || eng.auto().latents().is_empty()
        || pathfinder::unsupported(eng.model).is_some()
    {
        return (0, Vec::new(), None);
    }
    match pathfinder::start(loaded, opts) {
        Ok(st) => {
            for (k, values) in pathfinder::initial_guide(eng.auto(), &st.approx) {
                eng.learn.entries[k].host = values;
            }
            eng.learn.sync(s);
            let steps = if pathfinder::whitens(eng.auto(), &st.approx) {
                "the locations stepped jointly in coordinates whitened by its Cholesky factor"
            } else {
                "each location's steps scaled by the larger of its sd and the guide's"
            };
            let note = format!(
                "started from Pathfinder's best normal approximation ({} L-BFGS iterations, {} gradient and {} density evaluations, ELBO {:.4}); {steps}",
                st.iterations, st.grad_evals, st.density_evals, st.fit_elbo
            );
            (st.grad_evals + st.density_evals, vec![note], Some(st.approx))
        }
        Err(why) => (
            0,
            vec![format!("started at the origin: Pathfinder failed ({why})")],
            None,
        ),
    }
}

/// The ELBO per row on the held-out rows, one draw per row, in chunks.
fn heldout_elbo(eng: &mut Engine, s: &mut Session, split: Split, seed: u64, step: usize) -> PerRow {
    const CHUNK: usize = 1000;
    let model = eng.model;
    eng.only_plate = Some(split.plate);
    let (mut loglik, mut latent) = (0.0, 0.0);
    let end = split.train + split.heldout;
    let mut start = split.train;
    while start < end {
        let rows: Vec<usize> = (start..(start + CHUNK).min(end)).collect();
        let plates = PlateState::rows_of(model, split.plate, &rows);
        s.no_grad();
        let (t, _) = eng.forward(s, &plates, 1, seed ^ start as u64, step, true);
        let ll = sample_mean(s, &t.loglik);
        let lat = sample_mean(s, &t.latent);
        loglik += s.value(&ll);
        latent += s.value(&lat);
        start += rows.len();
    }
    eng.only_plate = None;
    PerRow::new(loglik, latent, split.heldout)
}
